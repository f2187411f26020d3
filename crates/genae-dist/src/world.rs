//! [`World`]: the process group of a launched process, with a heartbeat that names lost ranks.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tch::Tensor;

use crate::group::GlooDevice;
use crate::launch::{LaunchEnv, StoreRole};
use crate::{DistError, ProcessGroup, Result, Store};

/// How long a collective or the rendezvous waits by default (the `timeout` of
/// [`WorldOptions`]).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

/// How a [`World`] is set up.
#[derive(Clone, Debug)]
pub struct WorldOptions {
    /// How long the rendezvous and every collective may wait before failing.
    pub timeout: Duration,
    /// NCCL (CUDA tensors, needs the `nccl` feature) rather than Gloo.
    pub nccl: bool,
    /// Where Gloo listens; `None`: `GLOO_SOCKET_IFNAME` if set, 127.0.0.1 when `MASTER_ADDR`
    /// is a loopback address, else Gloo's default.
    pub gloo_device: Option<GlooDevice>,
    /// Before every collective, compare the shapes and kinds of every rank's tensors (one
    /// small extra allreduce each), so that a mismatch is an error naming the ranks
    /// ([`DistError::Mismatch`]) instead of a Gloo abort or a hang; the `GENAE_DIST_DEBUG=1`
    /// of [`WorldOptions::default`] (like PyTorch's `TORCH_DISTRIBUTED_DEBUG=DETAIL`).
    pub check_shapes: bool,
    /// How often each rank tells the store it is alive.
    pub heartbeat: Duration,
}

/// The environment variable that turns [`WorldOptions::check_shapes`] on by default (`1`).
pub const DEBUG_ENV_VAR: &str = "GENAE_DIST_DEBUG";

impl Default for WorldOptions {
    fn default() -> Self {
        Self {
            timeout: DEFAULT_TIMEOUT,
            nccl: false,
            gloo_device: None,
            check_shapes: std::env::var(DEBUG_ENV_VAR).is_ok_and(|v| v == "1"),
            heartbeat: Duration::from_secs(1),
        }
    }
}

/// The process group of a launched job, with a heartbeat through the store: when a collective
/// fails, [`World`] finds which ranks stopped beating and names them in the error
/// ([`DistError::RankLost`]).
pub struct World {
    group: ProcessGroup,
    env: LaunchEnv,
    store: Store,
    heartbeat: Duration,
    check_shapes: bool,
    stop: Arc<AtomicBool>,
}

impl std::fmt::Debug for World {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("World")
            .field("rank", &self.env.rank)
            .field("world_size", &self.env.world_size)
            .field("backend", &self.group.backend())
            .finish()
    }
}

impl Drop for World {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn heartbeat_key(rank: usize) -> String {
    format!("heartbeat/{rank}")
}

impl World {
    /// Meets the other ranks: rank 0 serves the TCP store on `MASTER_PORT` (or torchrun's agent
    /// does), the others connect to `MASTER_ADDR:MASTER_PORT`, then the process group is
    /// formed. Fails within `options.timeout` when the store cannot be reached or the ranks do
    /// not all arrive, naming the address.
    pub fn init(env: &LaunchEnv, options: &WorldOptions) -> Result<Self> {
        let timeout = options.timeout;
        let (host, port) = (env.master_addr.as_str(), env.master_port);
        let root = match (env.store_role, env.rank) {
            (StoreRole::RankZeroServes, 0) => {
                Store::tcp_server(host, port, env.world_size, timeout).map_err(|e| match e {
                    DistError::Operation { operation, reason } => DistError::Operation {
                        operation: format!(
                            "{operation} (rank 0 serves the store on MASTER_PORT = {port}; is \
                             the port free?)"
                        ),
                        reason,
                    },
                    other => other,
                })?
            }
            _ => Store::tcp_client(host, port, timeout).map_err(|e| match e {
                DistError::Operation { operation, reason } => DistError::Operation {
                    operation: format!(
                        "rank {}: {operation}; check MASTER_ADDR and MASTER_PORT ({} launch) and \
                         that rank 0 runs",
                        env.rank, env.source
                    ),
                    reason,
                },
                other => other,
            })?,
        };
        root.set_timeout(timeout)?;
        let store = root.prefixed(&format!("genae/attempt_{}", env.restart))?;
        let group = if options.nccl {
            ProcessGroup::nccl(&store, env.rank, env.world_size, timeout)?
        } else {
            let device = options.gloo_device.clone().unwrap_or_else(|| {
                match std::env::var("GLOO_SOCKET_IFNAME") {
                    Ok(name) if !name.is_empty() => GlooDevice::Interface(name),
                    _ if env.is_loopback() => GlooDevice::Hostname("127.0.0.1".into()),
                    _ => GlooDevice::Default,
                }
            });
            ProcessGroup::gloo(&store, env.rank, env.world_size, timeout, &device)?
        };
        let stop = Arc::new(AtomicBool::new(false));
        let beat_store = store.connect_again()?;
        beat_store.add(&heartbeat_key(env.rank), 1)?;
        let (flag, key, every) = (stop.clone(), heartbeat_key(env.rank), options.heartbeat);
        std::thread::Builder::new()
            .name("genae-dist-heartbeat".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(every);
                    if beat_store.add(&key, 1).is_err() {
                        break;
                    }
                }
            })
            .map_err(|e| DistError::Operation {
                operation: "starting the heartbeat thread".into(),
                reason: e.to_string(),
            })?;
        Ok(Self {
            group,
            env: env.clone(),
            store,
            heartbeat: options.heartbeat,
            check_shapes: options.check_shapes,
            stop,
        })
    }

    /// This process's rank.
    pub fn rank(&self) -> usize {
        self.env.rank
    }

    /// The number of processes.
    pub fn world_size(&self) -> usize {
        self.env.world_size
    }

    /// The rank on this machine.
    pub fn local_rank(&self) -> usize {
        self.env.local_rank
    }

    /// The launch this world was formed from.
    pub fn launch(&self) -> &LaunchEnv {
        &self.env
    }

    /// The process group.
    pub fn group(&self) -> &ProcessGroup {
        &self.group
    }

    /// The job's store (keys under this attempt's prefix).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Sums `tensors` over the ranks in place; `what` names them in errors.
    pub fn allreduce_sum(&self, tensors: &[Tensor], what: &str) -> Result<()> {
        self.same_shapes(tensors, what)?;
        self.checked(what, || self.group.allreduce_sum(tensors))
    }

    /// Replaces `tensors` by their means over the ranks; `what` names them in errors.
    pub fn allreduce_mean(&self, tensors: &[Tensor], what: &str) -> Result<()> {
        self.same_shapes(tensors, what)?;
        self.checked(what, || self.group.allreduce_mean(tensors))
    }

    /// Overwrites `tensors` with rank `root`'s; `what` names them in errors.
    pub fn broadcast(&self, tensors: &[Tensor], root: usize, what: &str) -> Result<()> {
        self.same_shapes(tensors, what)?;
        self.checked(what, || self.group.broadcast(tensors, root))
    }

    /// With `check_shapes`: every rank's fingerprint of the kinds and shapes of `tensors` in
    /// its own slot of a `[world_size]` sum (the same size everywhere), then compared.
    fn same_shapes(&self, tensors: &[Tensor], what: &str) -> Result<()> {
        if !self.check_shapes {
            return Ok(());
        }
        let described: Vec<String> = tensors
            .iter()
            .map(|t| format!("{:?}{:?}", t.kind(), t.size()))
            .collect();
        let mine = fingerprint(&described.join(","));
        let device = tensors.first().map_or(tch::Device::Cpu, Tensor::device);
        let tensor_error = |source| DistError::Tensor {
            operation: format!("checking the shapes of {what}"),
            source,
        };
        let n = self.env.world_size as i64;
        let all = Tensor::f_zeros([n], (tch::Kind::Int64, device)).map_err(tensor_error)?;
        let _ = all
            .f_narrow(0, self.env.rank as i64, 1)
            .and_then(|mut slot| slot.f_fill_(mine))
            .map_err(tensor_error)?;
        let operation = format!("checking the shapes of {what}");
        self.checked(&operation, || {
            self.group.allreduce_sum(&[all.shallow_clone()])
        })?;
        let all: Vec<i64> =
            Vec::try_from(&all.f_to_device(tch::Device::Cpu).map_err(tensor_error)?)
                .map_err(tensor_error)?;
        let differ: Vec<String> = (0..all.len())
            .filter(|&r| all[r] != mine)
            .map(|r| r.to_string())
            .collect();
        if differ.is_empty() {
            return Ok(());
        }
        Err(DistError::Mismatch {
            operation: format!("rank {}: {what}", self.env.rank),
            detail: format!(
                "rank{} {} differ from this rank's [{}]",
                if differ.len() > 1 { "s" } else { "" },
                differ.join(", "),
                described.join(", ")
            ),
        })
    }

    /// Waits for every rank; `what` says where, in errors.
    pub fn barrier(&self, what: &str) -> Result<()> {
        self.checked(what, || self.group.barrier())
    }

    /// Runs a collective; on failure, finds the ranks whose heartbeat stopped.
    fn checked(&self, what: &str, op: impl FnOnce() -> Result<()>) -> Result<()> {
        op().map_err(|e| {
            let reason = e.to_string();
            match self.lost_ranks() {
                Some(lost) => DistError::RankLost {
                    operation: format!("rank {}: {what}", self.env.rank),
                    lost,
                    reason,
                },
                None => e,
            }
        })
    }

    /// Which ranks stopped beating, in words (`None`: every rank still beats).
    fn lost_ranks(&self) -> Option<String> {
        let read = |store: &Store| -> Result<Vec<i64>> {
            (0..self.env.world_size)
                .map(|r| store.add(&heartbeat_key(r), 0))
                .collect()
        };
        let first = match read(&self.store) {
            Ok(v) => v,
            Err(_) => return Some(self.store_gone()),
        };
        std::thread::sleep(self.heartbeat * 3);
        let second = match read(&self.store) {
            Ok(v) => v,
            Err(_) => return Some(self.store_gone()),
        };
        let lost: Vec<String> = (0..self.env.world_size)
            .filter(|&r| r != self.env.rank && first[r] == second[r])
            .map(|r| r.to_string())
            .collect();
        match lost.len() {
            0 => None,
            1 => Some(format!("rank {} was lost (no heartbeat)", lost[0])),
            _ => Some(format!(
                "ranks {} were lost (no heartbeat)",
                lost.join(", ")
            )),
        }
    }

    fn store_gone(&self) -> String {
        match self.env.store_role {
            StoreRole::RankZeroServes => format!(
                "rank 0 was lost (the store it served at {}:{} is unreachable)",
                self.env.master_addr, self.env.master_port
            ),
            StoreRole::AgentServes => format!(
                "torchrun's agent store at {}:{} is unreachable (the agent or its machine is \
                 gone)",
                self.env.master_addr, self.env.master_port
            ),
        }
    }
}

/// A 62-bit FNV-1a hash of `text` (positive, so that sums of one slot stay exact).
fn fingerprint(text: &str) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
    }
    (h >> 2) as i64
}

/// genae-tensor's [`Collective`](genae_tensor::Collective) over the world: give it to
/// [`genae_tensor::Adam::set_collective`] and every step averages the gradients over the ranks.
impl genae_tensor::Collective for World {
    fn rank(&self) -> usize {
        World::rank(self)
    }

    fn size(&self) -> usize {
        self.world_size()
    }

    fn sum(&self, tensors: &[Tensor]) -> std::result::Result<(), String> {
        self.allreduce_sum(tensors, "a sum")
            .map_err(|e| e.to_string())
    }

    fn mean(&self, tensors: &[Tensor]) -> std::result::Result<(), String> {
        self.allreduce_mean(tensors, "a mean")
            .map_err(|e| e.to_string())
    }

    fn broadcast(&self, tensors: &[Tensor]) -> std::result::Result<(), String> {
        World::broadcast(self, tensors, 0, "a broadcast").map_err(|e| e.to_string())
    }
}
