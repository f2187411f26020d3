//! Data-parallel training: `genae train` under `torchrun`, `srun` or `cargo xtask launch`.
//!
//! When the launch variables say `WORLD_SIZE > 1` (see [`genae_dist::LaunchEnv`]), every
//! process joins one c10d process group ([`DataParallel::join`]) and the single trainer
//! ([`crate::trainer`]) runs as DDP does:
//!
//! - rank 0's parameters, optimiser state and progress (after a resume, the checkpoint's) are
//!   broadcast to every rank before the first step;
//! - each rank trains on its [`Shard`] of every global batch (the batch size is per process:
//!   the global batch is `WORLD_SIZE × train.batch_size`), with its own noise stream;
//! - every optimiser (every player of AAE/AVB/FactorVAE) averages the gradients over the
//!   ranks before its step; the VQ-VAE's EMA statistics, k-means initialisation and dead-code
//!   restarts are synchronised;
//! - evaluation is sharded and reduced (kinds whose figures are means over examples), else
//!   done on rank 0;
//! - only rank 0 writes the run directory; the other ranks keep a scratch folder that is
//!   removed at the end, and stop after the last epoch.
//!
//! Settings from the environment: `GENAE_DIST_TIMEOUT_S` (default 600), `GENAE_DIST_BACKEND`
//! (`gloo` or `nccl`; default NCCL on CUDA, Gloo on the CPU), `GENAE_DIST_FORCE=1` (form a
//! group of one, to test the path with a single process).

use std::sync::Arc;
use std::time::Duration;

use genae_data::batch::Shard;
use genae_dist::{LaunchEnv, World, WorldOptions, DEFAULT_TIMEOUT};
use genae_tensor::Collective;
use tch::{Device, Kind, Tensor};

use crate::config::ConfigError;
use crate::error::LabError;
use crate::metrics::{Entry, Record};

/// The variable that sets the collectives' timeout, in seconds.
pub const TIMEOUT_VAR: &str = "GENAE_DIST_TIMEOUT_S";
/// The variable that picks the backend (`gloo` or `nccl`).
pub const BACKEND_VAR: &str = "GENAE_DIST_BACKEND";
/// The variable that forms a group even of one process (`1`).
pub const FORCE_VAR: &str = "GENAE_DIST_FORCE";

/// This process's membership of a data-parallel job.
pub(crate) struct DataParallel {
    world: World,
}

fn bad_var(var: &'static str, reason: String) -> LabError {
    LabError::Distributed(genae_dist::DistError::Launch { var, reason })
}

impl DataParallel {
    /// Joins the job the launch variables describe, on `device` (CUDA: the caller has already
    /// picked `cuda:LOCAL_RANK`); `None` when the process runs alone.
    pub(crate) fn join(
        env: Option<LaunchEnv>,
        device: Device,
    ) -> Result<Option<Arc<Self>>, LabError> {
        let Some(env) = env else {
            return Ok(None);
        };
        let forced = std::env::var(FORCE_VAR).is_ok_and(|v| v.trim() == "1");
        if !env.is_parallel() && !forced {
            return Ok(None);
        }
        let timeout = match std::env::var(TIMEOUT_VAR) {
            Ok(v) => match v.trim().parse::<f64>() {
                Ok(s) if s > 0.0 && s.is_finite() => Duration::from_secs_f64(s),
                _ => {
                    return Err(bad_var(
                        TIMEOUT_VAR,
                        format!("{v:?} is not a positive number of seconds"),
                    ))
                }
            },
            Err(_) => DEFAULT_TIMEOUT,
        };
        let nccl = match std::env::var(BACKEND_VAR).ok().as_deref().map(str::trim) {
            None | Some("") => device.is_cuda(),
            Some("gloo") => false,
            Some("nccl") => true,
            Some(other) => {
                return Err(bad_var(
                    BACKEND_VAR,
                    format!("{other:?} is neither `gloo` nor `nccl`"),
                ))
            }
        };
        if nccl && !device.is_cuda() {
            return Err(bad_var(
                BACKEND_VAR,
                "`nccl` needs CUDA tensors: set `device = \"cuda\"` (or use `gloo`)".into(),
            ));
        }
        let options = WorldOptions {
            timeout,
            nccl,
            ..Default::default()
        };
        Ok(Some(Arc::new(Self {
            world: World::init(&env, &options)?,
        })))
    }

    /// The launch variables, read once: `None` outside a launched job.
    pub(crate) fn launch_env() -> Result<Option<LaunchEnv>, LabError> {
        Ok(LaunchEnv::from_env()?)
    }

    /// `gloo` or `nccl`.
    pub(crate) fn backend(&self) -> &'static str {
        self.world.group().backend()
    }

    /// This rank.
    pub(crate) fn rank(&self) -> usize {
        self.world.rank()
    }

    /// The number of ranks.
    pub(crate) fn world_size(&self) -> usize {
        self.world.world_size()
    }

    /// Whether this rank writes the run directory (rank 0).
    pub(crate) fn is_writer(&self) -> bool {
        self.rank() == 0
    }

    /// This rank's part of every batch.
    pub(crate) fn shard(&self) -> Shard {
        Shard {
            rank: self.rank(),
            count: self.world_size(),
        }
    }

    /// `tensors` from rank 0.
    pub(crate) fn broadcast(&self, tensors: &[Tensor], what: &str) -> Result<(), LabError> {
        Ok(self.world.broadcast(tensors, 0, what)?)
    }

    /// The record of every rank's shard of a split, reduced: each number weighted by its
    /// shard's `n` examples (the figures are means over examples).
    pub(crate) fn reduce_means(&self, record: &Record, n: i64) -> Result<Record, LabError> {
        let names: Vec<(&str, f64)> = record
            .iter()
            .filter_map(|(name, e)| e.as_f64().map(|v| (name, v)))
            .collect();
        let mut values: Vec<f64> = names.iter().map(|(_, v)| v * n as f64).collect();
        values.push(n as f64);
        let t = Tensor::from_slice(&values).to_kind(Kind::Double);
        self.world
            .allreduce_sum(&[t.shallow_clone()], "the evaluation figures")?;
        let sums = Vec::<f64>::try_from(&t).map_err(genae_tensor::TensorError::from)?;
        let total = sums[names.len()];
        let mut out = Record::new();
        for (i, (name, _)) in names.iter().enumerate() {
            out.insert(name, Entry::from(sums[i] / total));
        }
        Ok(out)
    }
}

impl Collective for DataParallel {
    fn sum(&self, tensors: &[Tensor]) -> Result<(), String> {
        self.world
            .allreduce_sum(tensors, "a sum")
            .map_err(|e| e.to_string())
    }

    fn mean(&self, tensors: &[Tensor]) -> Result<(), String> {
        self.world
            .allreduce_mean(tensors, "a mean")
            .map_err(|e| e.to_string())
    }

    fn broadcast(&self, tensors: &[Tensor]) -> Result<(), String> {
        self.world
            .broadcast(tensors, 0, "a broadcast")
            .map_err(|e| e.to_string())
    }
}

/// The device of this rank: `cuda:LOCAL_RANK` when the run asks for CUDA in a launched job.
pub(crate) fn rank_device(device: Device, env: Option<&LaunchEnv>) -> Result<Device, LabError> {
    match (device, env) {
        (Device::Cuda(_), Some(env)) if env.is_parallel() => {
            let available = tch::Cuda::device_count() as usize;
            if env.local_rank >= available {
                return Err(ConfigError::Invalid {
                    field: "device",
                    reason: format!(
                        "LOCAL_RANK {} needs GPU cuda:{}, but this machine has {available}",
                        env.local_rank, env.local_rank
                    ),
                }
                .into());
            }
            Ok(Device::Cuda(env.local_rank))
        }
        (device, _) => Ok(device),
    }
}
