//! The only module with `unsafe`: the C functions of `shim/c10d_shim.cpp` and safe wrappers
//! around each.
//!
//! The contract the shim keeps, on which every `unsafe` block here relies:
//! - every function catches every C++ exception and returns it as a `malloc`'d message
//!   (NULL on success), freed here with `genae_dist_free`; nothing unwinds across the boundary;
//! - handles (`genae_store`, `genae_pg`) are heap objects owning a `c10::intrusive_ptr`,
//!   created by the shim and freed exactly once by [`RawStore`]'s and [`RawGroup`]'s `Drop`;
//! - tensor pointers are tch's `Tensor::as_ptr()` (an `at::Tensor*`), only read during the call,
//!   which borrows the `Tensor` for its whole duration.
#![allow(unsafe_code)]

use std::ffi::{c_char, c_void, CStr, CString};

use tch::Tensor;

#[repr(C)]
struct StoreHandle {
    _opaque: [u8; 0],
}

#[repr(C)]
struct GroupHandle {
    _opaque: [u8; 0],
}

extern "C" {
    fn genae_dist_free(p: *mut c_void);
    fn genae_dist_has_nccl() -> bool;
    fn genae_store_tcp(
        host: *const c_char,
        port: u16,
        is_server: bool,
        world_size: i32,
        wait_workers: bool,
        timeout_ms: i64,
        out: *mut *mut StoreHandle,
    ) -> *mut c_char;
    fn genae_store_port(s: *mut StoreHandle, port: *mut u16) -> *mut c_char;
    fn genae_store_file(
        path: *const c_char,
        world_size: i32,
        out: *mut *mut StoreHandle,
    ) -> *mut c_char;
    fn genae_store_prefix(
        prefix: *const c_char,
        inner: *mut StoreHandle,
        out: *mut *mut StoreHandle,
    ) -> *mut c_char;
    fn genae_store_clone(s: *mut StoreHandle, out: *mut *mut StoreHandle) -> *mut c_char;
    fn genae_store_set_timeout(s: *mut StoreHandle, timeout_ms: i64) -> *mut c_char;
    fn genae_store_set(
        s: *mut StoreHandle,
        key: *const c_char,
        value: *const u8,
        len: usize,
    ) -> *mut c_char;
    fn genae_store_get(
        s: *mut StoreHandle,
        key: *const c_char,
        value: *mut *mut u8,
        len: *mut usize,
    ) -> *mut c_char;
    fn genae_store_add(
        s: *mut StoreHandle,
        key: *const c_char,
        delta: i64,
        total: *mut i64,
    ) -> *mut c_char;
    fn genae_store_free(s: *mut StoreHandle);
    fn genae_pg_gloo(
        s: *mut StoreHandle,
        rank: i32,
        size: i32,
        timeout_ms: i64,
        interface: *const c_char,
        hostname: *const c_char,
        out: *mut *mut GroupHandle,
    ) -> *mut c_char;
    fn genae_pg_nccl(
        s: *mut StoreHandle,
        rank: i32,
        size: i32,
        timeout_ms: i64,
        out: *mut *mut GroupHandle,
    ) -> *mut c_char;
    fn genae_pg_allreduce_sum(
        pg: *mut GroupHandle,
        tensor: *mut c_void,
        timeout_ms: i64,
    ) -> *mut c_char;
    fn genae_pg_broadcast(
        pg: *mut GroupHandle,
        tensor: *mut c_void,
        root: i32,
        timeout_ms: i64,
    ) -> *mut c_char;
    fn genae_pg_barrier(pg: *mut GroupHandle, timeout_ms: i64) -> *mut c_char;
    fn genae_pg_free(pg: *mut GroupHandle);
}

/// A C++ exception's message.
pub(crate) type Failure = String;

/// Turns the shim's returned message into a `Result`, freeing it.
fn check(message: *mut c_char) -> Result<(), Failure> {
    if message.is_null() {
        return Ok(());
    }
    // SAFETY: a non-NULL return is a NUL-terminated string the shim malloc'd for us; it is
    // read once and freed once.
    let text = unsafe { CStr::from_ptr(message) }
        .to_string_lossy()
        .into_owned();
    // SAFETY: as above; `genae_dist_free` is `free`.
    unsafe { genae_dist_free(message.cast()) };
    Err(text)
}

fn c_string(s: &str) -> Result<CString, Failure> {
    CString::new(s).map_err(|_| format!("{s:?} contains a NUL byte"))
}

/// Whether the shim was compiled with ProcessGroupNCCL.
pub(crate) fn has_nccl() -> bool {
    // SAFETY: a constant function of the shim.
    unsafe { genae_dist_has_nccl() }
}

/// An owned c10d store.
pub(crate) struct RawStore(*mut StoreHandle);

// SAFETY: c10d's stores are used from several threads by PyTorch itself (TCPStore and
// FileStore serialise their operations with a mutex); the handle is only freed in Drop.
unsafe impl Send for RawStore {}
// SAFETY: as above.
unsafe impl Sync for RawStore {}

impl Drop for RawStore {
    fn drop(&mut self) {
        // SAFETY: created by the shim, freed exactly once here.
        unsafe { genae_store_free(self.0) }
    }
}

impl RawStore {
    fn from_out(f: impl FnOnce(*mut *mut StoreHandle) -> *mut c_char) -> Result<Self, Failure> {
        let mut out = std::ptr::null_mut();
        check(f(&mut out))?;
        Ok(Self(out))
    }

    /// A TCPStore: the server (which also serves this process) or a client.
    pub(crate) fn tcp(
        host: &str,
        port: u16,
        is_server: bool,
        world_size: i32,
        wait_workers: bool,
        timeout_ms: i64,
    ) -> Result<Self, Failure> {
        let host = c_string(host)?;
        Self::from_out(|out| {
            // SAFETY: `host` outlives the call; `out` is written only on success.
            unsafe {
                genae_store_tcp(
                    host.as_ptr(),
                    port,
                    is_server,
                    world_size,
                    wait_workers,
                    timeout_ms,
                    out,
                )
            }
        })
    }

    /// The TCPStore's port (the one bound, for a server asked for port 0).
    pub(crate) fn port(&self) -> Result<u16, Failure> {
        let mut port = 0u16;
        // SAFETY: a live handle; `port` is a valid out-pointer.
        check(unsafe { genae_store_port(self.0, &mut port) })?;
        Ok(port)
    }

    /// A FileStore at `path`.
    pub(crate) fn file(path: &str, world_size: i32) -> Result<Self, Failure> {
        let path = c_string(path)?;
        // SAFETY: `path` outlives the call.
        Self::from_out(|out| unsafe { genae_store_file(path.as_ptr(), world_size, out) })
    }

    /// A PrefixStore over this store.
    pub(crate) fn prefixed(&self, prefix: &str) -> Result<Self, Failure> {
        let prefix = c_string(prefix)?;
        // SAFETY: both live for the call; the new store holds its own reference to ours.
        Self::from_out(|out| unsafe { genae_store_prefix(prefix.as_ptr(), self.0, out) })
    }

    /// c10d's `clone()`: a new connection to the same store.
    pub(crate) fn clone_store(&self) -> Result<Self, Failure> {
        // SAFETY: a live handle.
        Self::from_out(|out| unsafe { genae_store_clone(self.0, out) })
    }

    /// The timeout of blocking gets.
    pub(crate) fn set_timeout(&self, timeout_ms: i64) -> Result<(), Failure> {
        // SAFETY: a live handle.
        check(unsafe { genae_store_set_timeout(self.0, timeout_ms) })
    }

    /// Sets `key` to `value`.
    pub(crate) fn set(&self, key: &str, value: &[u8]) -> Result<(), Failure> {
        let key = c_string(key)?;
        // SAFETY: `key` and `value` outlive the call, which copies them.
        check(unsafe { genae_store_set(self.0, key.as_ptr(), value.as_ptr(), value.len()) })
    }

    /// The value of `key`, waiting for it up to the store's timeout.
    pub(crate) fn get(&self, key: &str) -> Result<Vec<u8>, Failure> {
        let key = c_string(key)?;
        let mut value = std::ptr::null_mut();
        let mut len = 0usize;
        // SAFETY: `key` outlives the call; the out-pointers are valid.
        check(unsafe { genae_store_get(self.0, key.as_ptr(), &mut value, &mut len) })?;
        // SAFETY: on success the shim malloc'd `len` (at least 1) bytes at `value`; copied,
        // then freed once.
        let bytes = unsafe { std::slice::from_raw_parts(value, len) }.to_vec();
        // SAFETY: as above.
        unsafe { genae_dist_free(value.cast()) };
        Ok(bytes)
    }

    /// Adds `delta` to the counter `key`; its new value.
    pub(crate) fn add(&self, key: &str, delta: i64) -> Result<i64, Failure> {
        let key = c_string(key)?;
        let mut total = 0i64;
        // SAFETY: `key` outlives the call; `total` is a valid out-pointer.
        check(unsafe { genae_store_add(self.0, key.as_ptr(), delta, &mut total) })?;
        Ok(total)
    }
}

/// An owned c10d process group (backend).
pub(crate) struct RawGroup(*mut GroupHandle);

// SAFETY: the backend is an intrusive_ptr to a c10d Backend, which PyTorch drives from any
// thread: ProcessGroupGloo enqueues each collective under its own mutex and runs it on its
// worker threads, ProcessGroupNCCL serialises on its streams. Concurrent collectives from two
// threads would be ordered arbitrarily (the same in PyTorch), which is a logic error of the
// caller, not a memory-safety one.
unsafe impl Send for RawGroup {}
// SAFETY: as above.
unsafe impl Sync for RawGroup {}

impl Drop for RawGroup {
    fn drop(&mut self) {
        // SAFETY: created by the shim, freed exactly once here.
        unsafe { genae_pg_free(self.0) }
    }
}

impl RawGroup {
    /// ProcessGroupGloo over `store`, on the network interface `interface` if given, else the
    /// address of `hostname` if given, else Gloo's default device.
    pub(crate) fn gloo(
        store: &RawStore,
        rank: i32,
        size: i32,
        timeout_ms: i64,
        interface: &str,
        hostname: &str,
    ) -> Result<Self, Failure> {
        let interface = c_string(interface)?;
        let hostname = c_string(hostname)?;
        let mut out = std::ptr::null_mut();
        // SAFETY: the strings outlive the call; the group keeps its own reference to the store.
        check(unsafe {
            genae_pg_gloo(
                store.0,
                rank,
                size,
                timeout_ms,
                interface.as_ptr(),
                hostname.as_ptr(),
                &mut out,
            )
        })?;
        Ok(Self(out))
    }

    /// ProcessGroupNCCL over `store` (an error unless built with the `nccl` feature).
    pub(crate) fn nccl(
        store: &RawStore,
        rank: i32,
        size: i32,
        timeout_ms: i64,
    ) -> Result<Self, Failure> {
        let mut out = std::ptr::null_mut();
        // SAFETY: a live store; `out` is written only on success.
        check(unsafe { genae_pg_nccl(store.0, rank, size, timeout_ms, &mut out) })?;
        Ok(Self(out))
    }

    /// Sums `tensor` over the group, in place.
    pub(crate) fn allreduce_sum(&self, tensor: &Tensor, timeout_ms: i64) -> Result<(), Failure> {
        // SAFETY: `tensor` is borrowed for the call; the shim copies the at::Tensor handle.
        check(unsafe { genae_pg_allreduce_sum(self.0, tensor.as_ptr() as *mut c_void, timeout_ms) })
    }

    /// Overwrites `tensor` with rank `root`'s.
    pub(crate) fn broadcast(
        &self,
        tensor: &Tensor,
        root: i32,
        timeout_ms: i64,
    ) -> Result<(), Failure> {
        // SAFETY: as for `allreduce_sum`.
        check(unsafe {
            genae_pg_broadcast(self.0, tensor.as_ptr() as *mut c_void, root, timeout_ms)
        })
    }

    /// Waits for every rank.
    pub(crate) fn barrier(&self, timeout_ms: i64) -> Result<(), Failure> {
        // SAFETY: a live group.
        check(unsafe { genae_pg_barrier(self.0, timeout_ms) })
    }
}
