//! Parameters and training state on disk, always written atomically (a temporary file in the
//! run directory, then a rename):
//!
//! - `model.safetensors` (and `prior.safetensors` for a VQ-VAE's PixelCNN): the parameters a
//!   model kind names through its [`StoreFile`]s, `<store>.<variable>` (a store named `""`
//!   writes bare variable names, as `VarStore::save` does);
//! - `checkpoint.safetensors`: every store under `param/<file>/<store>/<variable>`, every
//!   optimiser's state under `optim/<name>/<key>`, `training.phases`, one row
//!   `[epochs, steps, examples, seconds]` per phase of the run, and `training.world_size`, the
//!   number of data-parallel processes that trained it (absent: one).

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::Adam;
use tch::{nn, Kind, Tensor};

use crate::error::LabError;
use crate::run_dir::RunDir;
use crate::safetensors_file::safetensors_bytes;

/// The checkpoint's file name.
pub(crate) const CHECKPOINT: &str = "checkpoint.safetensors";
/// The checkpoint entry holding the format version (`[1]`, int64).
const VERSION_KEY: &str = "integrity.format_version";
/// The checkpoint entry holding the SHA-256 of every other entry (`[32]`, uint8).
const CHECKSUM_KEY: &str = "integrity.sha256";
/// The checkpoint entry holding the number of data-parallel processes (`[1]`, int64).
const WORLD_SIZE_KEY: &str = "training.world_size";
/// The checkpoint layout written by this version.
const FORMAT_VERSION: i64 = 2;

/// SHA-256 over the names, kinds, shapes and values (as `f64`, which holds every value of the
/// float and integer kinds a checkpoint has) of `entries`, sorted by name, leaving out the
/// checksum entry itself.
fn checksum<'a>(
    entries: impl Iterator<Item = (&'a String, &'a Tensor)>,
) -> Result<Vec<u8>, LabError> {
    use sha2::{Digest, Sha256};
    let mut sorted: Vec<(&String, &Tensor)> = entries.filter(|(k, _)| *k != CHECKSUM_KEY).collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    let mut hasher = Sha256::new();
    for (name, t) in sorted {
        hasher.update(name.as_bytes());
        hasher.update(format!("{:?}{:?}", t.kind(), t.size()).as_bytes());
        let values = Vec::<f64>::try_from(
            t.f_to_device(tch::Device::Cpu)?
                .f_to_kind(Kind::Double)?
                .f_reshape([-1])?,
        )?;
        for v in values {
            hasher.update(v.to_le_bytes());
        }
    }
    Ok(hasher.finalize().to_vec())
}

/// One parameter file of a model kind: its name and the stores it holds, each under a prefix.
pub(crate) struct StoreFile<'a> {
    /// `model.safetensors` or `prior.safetensors`.
    pub(crate) file: &'static str,
    /// `(prefix, store)`; prefix `""` for bare variable names.
    pub(crate) stores: Vec<(&'static str, &'a nn::VarStore)>,
}

impl<'a> StoreFile<'a> {
    /// `model.safetensors` with one store, variables under their bare names.
    pub(crate) fn model(store: &'a nn::VarStore) -> Self {
        Self {
            file: "model.safetensors",
            stores: vec![("", store)],
        }
    }
}

/// Training done so far in one phase.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct PhaseTotals {
    pub(crate) epochs: usize,
    pub(crate) steps: u64,
    pub(crate) examples: u64,
    pub(crate) seconds: f64,
}

/// Writes `name` atomically from named tensors.
fn write_tensors(named: &[(String, Tensor)], name: &str, run_dir: &RunDir) -> Result<(), LabError> {
    run_dir.write_atomic(name, &safetensors_bytes(named)?)
}

/// Writes each [`StoreFile`] (e.g. `model.safetensors`).
pub(crate) fn save_model_files(files: &[StoreFile], run_dir: &RunDir) -> Result<(), LabError> {
    for file in files {
        let mut named: Vec<(String, Tensor)> = Vec::new();
        for (store, vs) in &file.stores {
            named.extend(vs.variables().into_iter().map(|(var, t)| match *store {
                "" => (var, t),
                store => (format!("{store}.{var}"), t),
            }));
        }
        write_tensors(&named, file.file, run_dir)?;
    }
    Ok(())
}

/// Loads each [`StoreFile`] (e.g. `model.safetensors`) into its stores: every variable must
/// be in the file with its shape, and the file must hold nothing else (a run of another kind
/// or shape is refused, naming the first mismatch).
pub(crate) fn load_model_files(files: &[StoreFile], run_dir: &RunDir) -> Result<(), LabError> {
    for file in files {
        let path = run_dir.file(file.file);
        let bad = |reason: String| LabError::Run {
            path: path.clone(),
            reason,
        };
        let mut saved: BTreeMap<String, Tensor> = Tensor::read_safetensors(&path)
            .map_err(|e| bad(format!("unreadable, not a complete safetensors file ({e})")))?
            .into_iter()
            .collect();
        tch::no_grad(|| -> Result<(), LabError> {
            for (store, vs) in &file.stores {
                // In name order, so that the first mismatch named is always the same one.
                let vars: BTreeMap<String, Tensor> = vs.variables().into_iter().collect();
                for (var, mut t) in vars {
                    let key = match *store {
                        "" => var,
                        store => format!("{store}.{var}"),
                    };
                    let value = saved.remove(&key).ok_or_else(|| {
                        bad(format!(
                            "has no tensor `{key}` that the config's model needs (a run of another model kind \
                             or configuration?)"
                        ))
                    })?;
                    if value.size() != t.size() {
                        return Err(bad(format!(
                            "`{key}` has shape {:?}, the config's model {:?}",
                            value.size(),
                            t.size()
                        )));
                    }
                    t.f_copy_(&value)?;
                }
            }
            Ok(())
        })?;
        if let Some(extra) = saved.keys().next() {
            return Err(bad(format!(
                "holds `{extra}` (and {} more) that the config's model does not have (a run of \
                 another model kind or configuration?)",
                saved.len() - 1
            )));
        }
    }
    Ok(())
}

fn param_key(file: &str, store: &str, var: &str) -> String {
    format!("param/{file}/{store}/{var}")
}

/// The parameters of `files` as checkpoint entries (shallow copies).
pub(crate) fn param_entries(files: &[StoreFile]) -> Vec<(String, Tensor)> {
    let mut named = Vec::new();
    for file in files {
        for (store, vs) in &file.stores {
            named.extend(
                vs.variables()
                    .into_iter()
                    .map(|(var, t)| (param_key(file.file, store, &var), t)),
            );
        }
    }
    named
}

/// The state of `optimizers` as checkpoint entries.
pub(crate) fn optimizer_entries(optimizers: &[(&'static str, &mut Adam)]) -> Vec<(String, Tensor)> {
    let mut named = Vec::new();
    for (name, optimizer) in optimizers {
        named.extend(
            optimizer
                .state()
                .into_iter()
                .map(|(key, t)| (format!("optim/{name}/{key}"), t)),
        );
    }
    named
}

/// Writes `checkpoint.safetensors` from `entries` (see [`param_entries`] and
/// [`optimizer_entries`]) and the per-phase totals.
pub(crate) fn write_checkpoint(
    mut entries: Vec<(String, Tensor)>,
    phases: &[PhaseTotals],
    world_size: usize,
    run_dir: &RunDir,
) -> Result<(), LabError> {
    entries.push((
        WORLD_SIZE_KEY.into(),
        Tensor::from_slice(&[world_size as i64]),
    ));
    let rows: Vec<f64> = phases
        .iter()
        .flat_map(|p| {
            [
                p.epochs as f64,
                p.steps as f64,
                p.examples as f64,
                p.seconds,
            ]
        })
        .collect();
    entries.push((
        "training.phases".into(),
        Tensor::from_slice(&rows).view([phases.len() as i64, 4]),
    ));
    entries.push((VERSION_KEY.into(), Tensor::from_slice(&[FORMAT_VERSION])));
    let sum = checksum(entries.iter().map(|(k, t)| (k, t)))?;
    entries.push((CHECKSUM_KEY.into(), Tensor::from_slice(&sum)));
    write_tensors(&entries, CHECKPOINT, run_dir)
}

/// A checkpoint read back, to restore from.
pub(crate) struct Checkpoint {
    path: PathBuf,
    tensors: BTreeMap<String, Tensor>,
}

impl Checkpoint {
    /// Reads the run's `checkpoint.safetensors`.
    pub(crate) fn read(run_dir: &RunDir) -> Result<Self, LabError> {
        let path = run_dir.file(CHECKPOINT);
        if !path.is_file() {
            return Err(LabError::Checkpoint {
                path,
                reason: "not found: the run saved no checkpoint yet (one is written after \
                         every `train.checkpoint_every` epochs)"
                    .into(),
            });
        }
        let damaged = |why: String| LabError::Checkpoint {
            path: path.clone(),
            reason: format!(
                "is damaged ({why}); model.safetensors, written at the end and every \
                 `eval.every` epochs, may still hold a good model, but this run cannot resume"
            ),
        };
        let tensors = Tensor::read_safetensors(&path)
            .map_err(|_| damaged("not a complete checkpoint file".into()))?;
        let saved = Self {
            path: path.clone(),
            tensors: tensors.into_iter().collect(),
        };
        match saved.tensors.get(VERSION_KEY).map(|t| t.int64_value(&[0])) {
            Some(FORMAT_VERSION) => {}
            Some(v) => {
                return Err(saved.bad(format!(
                    "has format version {v}; this genae reads version {FORMAT_VERSION}"
                )))
            }
            None => {
                return Err(saved.bad(
                    "was written by an older genae (no format version): it cannot be resumed \
                     by this one"
                        .into(),
                ))
            }
        }
        let stored = saved
            .tensors
            .get(CHECKSUM_KEY)
            .map(|t| Vec::<u8>::try_from(t).unwrap_or_default())
            .unwrap_or_default();
        if stored != checksum(saved.tensors.iter())? {
            return Err(damaged("checksum mismatch".into()));
        }
        Ok(saved)
    }

    fn bad(&self, reason: String) -> LabError {
        LabError::Checkpoint {
            path: self.path.clone(),
            reason,
        }
    }

    /// Copies the saved parameters into `files`' stores; an error names the first missing or
    /// mis-shaped entry.
    pub(crate) fn restore_params(&self, files: &[StoreFile]) -> Result<(), LabError> {
        tch::no_grad(|| {
            for file in files {
                for (store, vs) in &file.stores {
                    for (var, mut t) in vs.variables() {
                        let key = param_key(file.file, store, &var);
                        let saved = self
                            .tensors
                            .get(&key)
                            .ok_or_else(|| self.bad(format!("missing {key}")))?;
                        let finite = saved.f_isfinite()?.f_all()?.f_int64_value(&[])? == 1;
                        if !finite {
                            return Err(self.bad(format!(
                                "{key} holds NaN or infinite values: the weights were saved \
                                 broken (not a divergence of this run's training)"
                            )));
                        }
                        if saved.size() != t.size() {
                            return Err(self.bad(format!(
                                "{key}: shape {:?} in the checkpoint, {:?} in the config's model",
                                saved.size(),
                                t.size()
                            )));
                        }
                        t.f_copy_(saved)?;
                    }
                }
            }
            Ok(())
        })
    }

    /// Restores the optimisers' state.
    pub(crate) fn restore_optimizers(
        &self,
        optimizers: &mut [(&'static str, &mut Adam)],
    ) -> Result<(), LabError> {
        for (name, optimizer) in optimizers.iter_mut() {
            let prefix = format!("optim/{name}/");
            let own: BTreeMap<String, Tensor> = self
                .tensors
                .iter()
                .filter_map(|(k, t)| {
                    Some((k.strip_prefix(&prefix)?.to_string(), t.shallow_clone()))
                })
                .collect();
            optimizer
                .load_state(&own)
                .map_err(|e| self.bad(format!("optimiser `{name}`: {e}")))?;
        }
        Ok(())
    }

    /// The number of data-parallel processes that trained the checkpoint (1 when not recorded).
    pub(crate) fn world_size(&self) -> usize {
        self.tensors
            .get(WORLD_SIZE_KEY)
            .and_then(|t| t.f_int64_value(&[0]).ok())
            .map_or(1, |w| w.max(1) as usize)
    }

    /// The per-phase totals, one row per phase of a run with `n_phases`.
    pub(crate) fn phases(&self, n_phases: usize) -> Result<Vec<PhaseTotals>, LabError> {
        let phases = self
            .tensors
            .get("training.phases")
            .ok_or_else(|| self.bad("missing training.phases".into()))?;
        if phases.size() != [n_phases as i64, 4] {
            return Err(self.bad(format!(
                "training.phases has shape {:?}, expected [{n_phases}, 4]",
                phases.size()
            )));
        }
        let rows = Vec::<f64>::try_from(phases.to_kind(Kind::Double).view([-1]))
            .map_err(|e| self.bad(format!("training.phases: {e}")))?;
        rows.chunks_exact(4)
            .map(|r| {
                if r.iter().all(|v| v.is_finite() && *v >= 0.0) {
                    Ok(PhaseTotals {
                        epochs: r[0] as usize,
                        steps: r[1] as u64,
                        examples: r[2] as u64,
                        seconds: r[3],
                    })
                } else {
                    Err(self.bad(format!("training.phases holds a bad row {r:?}")))
                }
            })
            .collect()
    }
}

/// Keeps the `metrics.jsonl` lines of epochs `≤ epoch` (a resumed run redoes the rest).
pub(crate) fn truncate_metrics(run_dir: &RunDir, epoch: usize) -> Result<(), LabError> {
    let text = std::fs::read_to_string(run_dir.file("metrics.jsonl")).unwrap_or_default();
    let kept: String = text
        .lines()
        .filter(|line| crate::metrics::line_epoch(line).is_some_and(|e| e as usize <= epoch))
        .map(|line| format!("{line}\n"))
        .collect();
    run_dir.write_atomic("metrics.jsonl", kept.as_bytes())
}
