//! Data-parallel training: `genae train` under `torchrun`, `srun` or `cargo xtask launch`.
//!
//! When the launch variables say `WORLD_SIZE > 1` (see [`genae_dist::LaunchEnv`]), every
//! process joins one c10d process group ([`DataParallel::join`]) and the single trainer
//! ([`crate::trainer`]) runs as DDP does:
//!
//! - rank 0's parameters, optimiser state and progress (after a resume, the checkpoint's) are
//!   broadcast to every rank before the first step;
//! - each rank trains on its [`Shard`] of every global batch (the batch size is per process:
//!   the global batch is `WORLD_SIZE × train.batch_size`), drawing its rows of the global
//!   batch's noise (`train.parallel_noise = "global_batch"`, [`genae_tensor::noise`]) or a
//!   noise stream of its own (`"per_rank"`, [`rank_seed`]);
//! - every optimiser (every player of AAE/AVB/FactorVAE) averages the gradients over the
//!   ranks before its step; the VQ-VAE's EMA statistics and code usage are summed, its k-means
//!   initialisation and dead-code restarts draw from every rank's vectors;
//! - evaluation is sharded (each rank its slice of every evaluation batch, with that batch's
//!   noise) and reduced (kinds whose figures are means over examples), else done on rank 0;
//! - only rank 0 writes the run directory; the other ranks keep a scratch folder that is
//!   removed at the end, and stop after the last epoch.
//!
//! Settings from the environment: `GENAE_DIST_TIMEOUT_S` (default 600), `GENAE_DIST_BACKEND`
//! (`gloo` or `nccl`; default NCCL on CUDA, Gloo on the CPU), `GENAE_DIST_FORCE=1` (form a
//! group of one, to test the path with a single process), `GENAE_DIST_DEBUG=1` (check the
//! shapes of every collective's tensors across the ranks).

use std::sync::Arc;
use std::time::Duration;

use crate::checkpoint::{PhaseTotals, StoreFile};
use crate::kinds::Trainable;
use crate::run_dir::RunDir;
use crate::summary::RunSummary;

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

/// `GENAE_DIST_FORCE=1`: a group is formed even of one process.
fn forced_group() -> bool {
    std::env::var(FORCE_VAR).is_ok_and(|v| v.trim() == "1")
}

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
        let forced = forced_group();
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
    fn rank(&self) -> usize {
        Collective::rank(&self.world)
    }

    fn size(&self) -> usize {
        Collective::size(&self.world)
    }

    fn sum(&self, tensors: &[Tensor]) -> Result<(), String> {
        self.world.sum(tensors)
    }

    fn mean(&self, tensors: &[Tensor]) -> Result<(), String> {
        self.world.mean(tensors)
    }

    fn broadcast(&self, tensors: &[Tensor]) -> Result<(), String> {
        Collective::broadcast(&self.world, tensors)
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

/// `Some(rank)` when this process is a rank other than 0 of a data-parallel launch (it
/// trains but does not write the run directory); an error names a malformed launch variable.
pub fn data_parallel_follower() -> Result<Option<usize>, LabError> {
    Ok(follower(DataParallel::launch_env()?.as_ref()))
}

/// `Some(rank)` for a rank other than 0 of a data-parallel launch (it does not write the run).
pub(crate) fn follower(launch: Option<&LaunchEnv>) -> Option<usize> {
    let env = launch?;
    let forced = forced_group();
    ((env.is_parallel() || forced) && env.rank != 0).then_some(env.rank)
}

/// Runs `f` in a scratch run directory of rank `rank`, removed afterwards.
pub(crate) fn in_scratch(
    rank: usize,
    f: impl FnOnce(&RunDir) -> Result<RunSummary, LabError>,
) -> Result<RunSummary, LabError> {
    let name = format!("genae-rank{rank}-{}", std::process::id());
    let scratch = RunDir::create(&std::env::temp_dir(), &name)?;
    let result = f(&scratch);
    let _ = std::fs::remove_dir_all(scratch.path());
    result
}

/// The start of a data-parallel run: every optimiser averages its gradients over the ranks,
/// the kind synchronises its own statistics, and rank 0's parameters, optimiser state and
/// progress `totals` (after a resume, the checkpoint's) are broadcast to every rank.
pub(crate) fn start(
    model: &mut dyn Trainable,
    totals: &mut [PhaseTotals],
    dp: &Arc<DataParallel>,
) -> Result<(), LabError> {
    let collective: Arc<dyn Collective> = dp.clone();
    model.data_parallel(&collective);
    let mut state = model.state();
    dp.broadcast(&named_variables(&state.files), "the parameters")?;
    for (name, adam) in state.optimizers.iter_mut() {
        adam.set_collective(collective.clone());
        let saved = adam.state();
        let tensors: Vec<Tensor> = saved.iter().map(|(_, t)| t.shallow_clone()).collect();
        dp.broadcast(&tensors, &format!("the state of the optimiser `{name}`"))?;
        adam.load_state(&saved.into_iter().collect())?;
    }
    let flat: Vec<f64> = totals
        .iter()
        .flat_map(|t| {
            [
                t.epochs as f64,
                t.steps as f64,
                t.examples as f64,
                t.seconds,
            ]
        })
        .collect();
    let progress = Tensor::from_slice(&flat);
    dp.broadcast(&[progress.shallow_clone()], "the progress")?;
    let v = Vec::<f64>::try_from(&progress).map_err(genae_tensor::TensorError::from)?;
    for (t, row) in totals.iter_mut().zip(v.chunks(4)) {
        *t = PhaseTotals {
            epochs: row[0] as usize,
            steps: row[1] as u64,
            examples: row[2] as u64,
            seconds: row[3],
        };
    }
    Ok(())
}

/// The seed of rank `rank`'s noise in an epoch whose (rank 0) seed is `seed`.
pub(crate) fn rank_seed(seed: u64, rank: usize) -> u64 {
    (seed ^ (rank as u64).wrapping_mul(0xD1B5_4A32_D192_ED03)).rotate_left(7)
}

/// Every variable of the parameter files, in name order (the same on every rank).
fn named_variables(files: &[StoreFile]) -> Vec<Tensor> {
    let mut named: Vec<(String, Tensor)> = Vec::new();
    for file in files {
        for (prefix, store) in &file.stores {
            for (name, t) in store.variables() {
                named.push((format!("{}/{prefix}/{name}", file.file), t));
            }
        }
    }
    named.sort_by(|a, b| a.0.cmp(&b.0));
    named.into_iter().map(|(_, t)| t).collect()
}

/// An error unless every rank holds rank 0's parameters (a sum per variable is compared).
pub(crate) fn check_replicas(model: &mut dyn Trainable, dp: &DataParallel) -> Result<(), LabError> {
    let sums: Vec<f64> = named_variables(&model.state().files)
        .iter()
        .map(|t| t.sum(Kind::Double).double_value(&[]))
        .collect();
    let rank0 = Tensor::from_slice(&sums);
    dp.broadcast(&[rank0.shallow_clone()], "the parameter checksums")?;
    let rank0 = Vec::<f64>::try_from(&rank0).map_err(genae_tensor::TensorError::from)?;
    let differing = sums
        .iter()
        .zip(&rank0)
        .filter(|(a, b)| a.to_bits() != b.to_bits())
        .count();
    if differing > 0 {
        return Err(genae_dist::DistError::Operation {
            operation: format!("checking the replica of rank {}", dp.rank()),
            reason: format!("{differing} of its variables differ from rank 0's"),
        }
        .into());
    }
    Ok(())
}
