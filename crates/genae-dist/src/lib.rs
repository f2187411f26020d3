//! # genae-dist
//!
//! Data-parallel training for [tch](https://crates.io/crates/tch) programs, on the c10d of the
//! libtorch that tch links (PyTorch's own `torch.distributed` machinery): no MPI, no Python.
//!
//! - [`Store`]: c10d's key–value rendezvous store, over TCP ([`Store::tcp_server`],
//!   [`Store::tcp_client`]) or a shared file ([`Store::file`]);
//! - [`ProcessGroup`]: Gloo on the CPU ([`ProcessGroup::gloo`]) and, with the `nccl` feature,
//!   NCCL on CUDA ([`ProcessGroup::nccl`]): sums and means of lists of tensors (flattened into
//!   one buffer per dtype and device), broadcast, barrier, each with a timeout;
//! - [`LaunchEnv`]: the launch contract of PyTorch (`torchrun`'s `WORLD_SIZE`, `RANK`,
//!   `LOCAL_RANK`, `MASTER_ADDR`, `MASTER_PORT`, `TORCHELASTIC_USE_AGENT_STORE`) and Slurm's
//!   (`SLURM_PROCID`, `SLURM_NTASKS`, `SLURM_LOCALID`);
//! - [`World`]: the process group of a launched process, with a heartbeat through the store,
//!   so that a failed collective names the rank that was lost.
//!
//! Every C++ exception becomes a [`DistError`] naming the operation; nothing panics across the
//! FFI boundary. The `unsafe` code is in one module (`ffi`).
//!
//! ```no_run
//! use genae_dist::{LaunchEnv, World, WorldOptions};
//! use tch::Tensor;
//!
//! // Under `torchrun --nproc_per_node=2 --no-python ./my-binary`:
//! let env = LaunchEnv::from_env()?.expect("launched by torchrun");
//! let world = World::init(&env, &WorldOptions::default())?;
//! let grads = [Tensor::ones([3], (tch::Kind::Float, tch::Device::Cpu))];
//! world.allreduce_mean(&grads, "gradients")?; // the mean over ranks, in place
//! # Ok::<(), genae_dist::DistError>(())
//! ```

mod ffi;
mod group;
mod launch;
mod world;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

pub use group::{GlooDevice, ProcessGroup};
pub use launch::{LaunchEnv, StoreRole, DEFAULT_MASTER_PORT};
pub use world::{World, WorldOptions, DEBUG_ENV_VAR, DEFAULT_TIMEOUT};

/// What can go wrong.
#[derive(Debug, thiserror::Error)]
pub enum DistError {
    /// A c10d operation failed (the C++ exception's message).
    #[error("{operation}: {reason}")]
    Operation {
        /// What was being done.
        operation: String,
        /// Why it failed.
        reason: String,
    },
    /// A collective failed because other ranks are gone.
    #[error("{operation} failed: {lost} ({reason})")]
    RankLost {
        /// What was being done.
        operation: String,
        /// Which ranks stopped answering, in words.
        lost: String,
        /// The underlying failure.
        reason: String,
    },
    /// With [`WorldOptions::check_shapes`]: the ranks called a collective with tensors of
    /// different shapes or kinds (which Gloo would otherwise abort the process on).
    #[error("{operation}: the ranks' tensors differ ({detail})")]
    Mismatch {
        /// What was being done.
        operation: String,
        /// Which ranks differ, and this rank's shapes.
        detail: String,
    },
    /// A launch variable is missing or malformed.
    #[error("launch variable {var}: {reason}")]
    Launch {
        /// The environment variable.
        var: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A tensor operation of the flattening around a collective failed.
    #[error("{operation}: {source}")]
    Tensor {
        /// What was being done.
        operation: String,
        /// tch's error.
        source: tch::TchError,
    },
}

/// This crate's results.
pub type Result<T> = std::result::Result<T, DistError>;

fn op_error(operation: impl Into<String>) -> impl FnOnce(String) -> DistError {
    let operation = operation.into();
    move |reason| DistError::Operation { operation, reason }
}

fn millis(timeout: Duration) -> i64 {
    i64::try_from(timeout.as_millis()).unwrap_or(i64::MAX)
}

/// Whether this build has ProcessGroupNCCL (the `nccl` feature).
pub fn has_nccl() -> bool {
    ffi::has_nccl()
}

/// A c10d key–value store: where the ranks of a process group meet. Cheap to clone (shared).
#[derive(Clone)]
pub struct Store {
    raw: Arc<ffi::RawStore>,
    /// Where it is, for messages.
    description: String,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("at", &self.description)
            .finish()
    }
}

impl Store {
    fn wrap(raw: ffi::RawStore, description: String) -> Self {
        Self {
            raw: Arc::new(raw),
            description,
        }
    }

    /// The TCPStore server on `host:port` (port 0: a free one, see [`Store::port`]), which
    /// waits up to `timeout` for `world_size` processes (itself included) to connect.
    pub fn tcp_server(host: &str, port: u16, world_size: usize, timeout: Duration) -> Result<Self> {
        let description = format!("the TCP store served on {host}:{port}");
        let raw = ffi::RawStore::tcp(host, port, true, world_size as i32, false, millis(timeout))
            .map_err(op_error(format!("starting {description}")))?;
        Ok(Self::wrap(raw, description))
    }

    /// A client of the TCPStore on `host:port`, retrying the connection up to `timeout`.
    pub fn tcp_client(host: &str, port: u16, timeout: Duration) -> Result<Self> {
        let description = format!("the TCP store at {host}:{port}");
        let raw =
            ffi::RawStore::tcp(host, port, false, 0, false, millis(timeout)).map_err(|r| {
                DistError::Operation {
                    operation: format!(
                        "connecting to {description} (within {} s)",
                        timeout.as_secs_f64()
                    ),
                    reason: r,
                }
            })?;
        Ok(Self::wrap(raw, description))
    }

    /// A FileStore: the ranks of one machine (or of a shared file system) meet in `path`,
    /// which must not hold an old store (c10d deletes it once all `world_size` ranks are
    /// done).
    pub fn file(path: &Path, world_size: usize) -> Result<Self> {
        let description = format!("the file store {}", path.display());
        let raw = ffi::RawStore::file(&path.to_string_lossy(), world_size as i32)
            .map_err(op_error(format!("opening {description}")))?;
        Ok(Self::wrap(raw, description))
    }

    /// The same store with every key under `prefix` (c10d's PrefixStore).
    pub fn prefixed(&self, prefix: &str) -> Result<Self> {
        let raw = self
            .raw
            .prefixed(prefix)
            .map_err(op_error(format!("prefixing {}", self.description)))?;
        Ok(Self::wrap(raw, self.description.clone()))
    }

    /// A second connection to the same store (for another thread's blocking calls).
    pub fn connect_again(&self) -> Result<Self> {
        let raw = self.raw.clone_store().map_err(op_error(format!(
            "connecting again to {}",
            self.description
        )))?;
        Ok(Self::wrap(raw, self.description.clone()))
    }

    /// The TCP port (the one bound by a server asked for port 0).
    pub fn port(&self) -> Result<u16> {
        self.raw
            .port()
            .map_err(op_error(format!("the port of {}", self.description)))
    }

    /// How long [`Store::get`] waits for a key.
    pub fn set_timeout(&self, timeout: Duration) -> Result<()> {
        self.raw
            .set_timeout(millis(timeout))
            .map_err(op_error(format!(
                "setting the timeout of {}",
                self.description
            )))
    }

    /// Sets `key` to `value`.
    pub fn set(&self, key: &str, value: &[u8]) -> Result<()> {
        self.raw
            .set(key, value)
            .map_err(op_error(format!("setting `{key}` in {}", self.description)))
    }

    /// The value of `key`, waiting for it to be set (up to the store's timeout).
    pub fn get(&self, key: &str) -> Result<Vec<u8>> {
        self.raw.get(key).map_err(op_error(format!(
            "reading `{key}` from {}",
            self.description
        )))
    }

    /// Adds `delta` to the counter `key` (created at 0); its new value.
    pub fn add(&self, key: &str, delta: i64) -> Result<i64> {
        self.raw.add(key, delta).map_err(op_error(format!(
            "adding to `{key}` in {}",
            self.description
        )))
    }

    /// Where the store is, in words.
    pub fn description(&self) -> &str {
        &self.description
    }
}
