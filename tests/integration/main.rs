//! genae's cross-crate integration tests, gathered in one test binary.

mod ais;
mod end_to_end;
mod linear_gaussian;

use std::sync::{Mutex, MutexGuard};

/// libtorch's random generator is global to the process while tests run on parallel threads:
/// every test that seeds it holds this lock, so its draws are its own and repeatable.
pub fn torch_rng_lock() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
