//! Training and evaluation of one experiment.

use std::path::{Path, PathBuf};
use std::time::Instant;

use std::sync::Arc;

use genae_data::batch::{batches_per_epoch, BatchOptions, Prefetcher};
use genae_data::shapes::{shapes_dataset, ShapesSpec};
use genae_data::transforms::{binarize_static, split_validation, Binarization};
use genae_data::{registry, ImageSet};
use genae_estimators::{
    active_units, bits_per_dim, dvae_bound, elbo, evaluate_log_likelihood, ElboTerms, KlWarmup,
    LogLikelihoodOptions, Objective, ObjectiveOutput,
};
use genae_tensor::{save_image_grid, seed_everything, tensor_from_u8_images, DeviceSpec};
use genae_zoo::{GenerativeAutoencoder, Vae};
use serde::Serialize;
use std::collections::BTreeMap;

use tch::{nn, Device, Kind, Tensor};

use crate::config::{ModelKind, ObjectiveKind, ValidConfig, AVB_TOY, SHAPES};
use crate::optim::Adam;
use crate::progress::Progress;
use crate::run_dir::RunDir;

/// Everything that can stop a run.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// A config problem.
    #[error(transparent)]
    Config(#[from] crate::ConfigError),
    /// A data-set problem.
    #[error("data: {0}")]
    Data(#[from] genae_data::DataError),
    /// A device or tensor-helper problem.
    #[error(transparent)]
    Tensor(#[from] genae_tensor::TensorError),
    /// A model problem.
    #[error(transparent)]
    Model(#[from] genae_zoo::ZooError),
    /// An estimator problem.
    #[error(transparent)]
    Estimator(#[from] genae_estimators::EstimatorError),
    /// A sampler problem (Markov chains, HMC and AIS, the VQ-VAE quantizer).
    #[error("sampler: {0}")]
    Sampler(#[from] genae_samplers::SamplerError),
    /// An error reported by libtorch.
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
    /// A file-system problem.
    #[error("{action} `{path}`: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file or folder.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A checkpoint that cannot be resumed from.
    #[error("checkpoint `{path}`: {reason}")]
    Checkpoint {
        /// The checkpoint file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// Training diverged.
    #[error("the {term} became {value} at epoch {epoch}, step {step}; stopping (lower train.learning_rate?)")]
    NonFinite {
        /// The loss term.
        term: &'static str,
        /// Its value.
        value: f64,
        /// The epoch (from 1).
        epoch: usize,
        /// The global step (from 1).
        step: u64,
    },
}

/// The parameter stores of an adversarial model's three players (AAE, AVB), each with its own
/// optimiser, under the names their checkpoints and `model.safetensors` use.
pub(crate) struct Players {
    pub(crate) encoder: nn::VarStore,
    pub(crate) decoder: nn::VarStore,
    pub(crate) discriminator: nn::VarStore,
}

impl Players {
    /// Three empty stores on `device`.
    pub(crate) fn new(device: Device) -> Self {
        Self {
            encoder: nn::VarStore::new(device),
            decoder: nn::VarStore::new(device),
            discriminator: nn::VarStore::new(device),
        }
    }

    /// `(name, store)` pairs for the checkpoint helpers.
    pub(crate) fn named(&self) -> [(&'static str, &nn::VarStore); 3] {
        [
            ("encoder", &self.encoder),
            ("decoder", &self.decoder),
            ("discriminator", &self.discriminator),
        ]
    }
}

impl LabError {
    /// Training diverged: `term` became `value`.
    pub(crate) fn non_finite(term: &'static str, value: f64, epoch: usize, step: u64) -> Self {
        Self::NonFinite {
            term,
            value,
            epoch,
            step,
        }
    }

    pub(crate) fn io(action: &'static str, path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            action,
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Averages of the ELBO terms over a data split (nats per example).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct SplitMetrics {
    /// Evidence lower bound.
    pub elbo: f64,
    /// `E_q[log p(x|z)]`.
    pub reconstruction: f64,
    /// `KL(q(z|x) ‖ p(z))`.
    pub kl: f64,
}

/// One line of `metrics.jsonl`.
#[derive(Clone, Debug, Serialize)]
pub struct EpochMetrics {
    /// Epoch number, from 1.
    pub epoch: usize,
    /// Optimiser steps so far.
    pub step: u64,
    /// Running averages over the epoch's training batches.
    pub train: SplitMetrics,
    /// The validation hold-out after the epoch (when `data.validation_size > 0`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub validation: Option<SplitMetrics>,
    /// The test set after the epoch.
    pub test: SplitMetrics,
    /// Training seconds of this epoch (evaluation excluded).
    pub seconds: f64,
    /// Training examples per second in this epoch.
    pub examples_per_s: f64,
    /// Seconds spent evaluating after this epoch.
    pub eval_seconds: f64,
    /// The mid-run `L_k` estimate (on epochs that are multiples of `eval.every`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_likelihood: Option<LogLikelihoodSummary>,
}

/// What a finished run reports (also written as `summary.json`).
#[derive(Clone, Debug, Serialize)]
pub struct RunSummary {
    /// The model kind.
    pub model: String,
    /// The data set.
    pub dataset: String,
    /// The device it ran on.
    pub device: String,
    /// The run directory.
    pub run_dir: PathBuf,
    /// Final test metrics.
    pub test: TestSummary,
    /// Training totals.
    pub train: TrainTotals,
    /// The adversarial autoencoder's numbers (`model.kind = "aae"`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aae: Option<crate::aae_run::AaeSummary>,
    /// Adversarial Variational Bayes' numbers (`model.kind = "avb"`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub avb: Option<crate::avb_run::AvbSummary>,
    /// Peak resident memory of the process, in MiB (Linux; `None` elsewhere).
    pub peak_rss_mb: Option<f64>,
    /// The Markov-chain evaluation (when `[chain]` is enabled).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chain: Option<crate::chains::ChainSummary>,
    /// Codebook figures of a VQ-VAE run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vq: Option<crate::vqvae_run::VqSummary>,
    /// The PixelCNN prior of a VQ-VAE run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prior: Option<crate::vqvae_run::PriorSummary>,
}

/// Final test numbers in [`RunSummary`].
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TestSummary {
    /// Mean ELBO (nats per example; models with an encoder density).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub elbo: Option<f64>,
    /// Mean `E_q[log p(x|z)]` (for an adversarial autoencoder: `log p(x|f(x))`).
    pub reconstruction: f64,
    /// Mean `KL(q(z|x) ‖ p(z))` (models with an encoder density).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kl: Option<f64>,
    /// Mean squared error per pixel between test images and their reconstructions (decoder
    /// mean at the encoder mean), pixel values in `[0, 1]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reconstruction_mse: Option<f64>,
    /// The importance-sampled log-likelihood estimate `L_k` (when `eval.log_likelihood_k > 0`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_likelihood: Option<LogLikelihoodSummary>,
    /// Latent dimensions whose posterior mean varies over the test set (Cov > 0.01); VAE only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active_units: Option<usize>,
    /// VQ-VAE: `(−log p(x|z_q) − log p(z_q)) / (D ln 2)` on the test set, the reconstruction
    /// under the discretised Gaussian plus the PixelCNN's code NLL, in bits per pixel.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bits_per_dim: Option<f64>,
    /// VQ-VAE: the PixelCNN prior's mean test NLL `−log p(z_q)`, nats per code grid.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prior_nll: Option<f64>,
    /// The denoising bound `L_dvae` on the test set (runs with `objective = "dvae"`), beside
    /// the clean-input ELBO above.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dvae_bound: Option<f64>,
    /// `log p(x)` by quadrature over the latent grid (`eval.exact_log_likelihood_grid > 0`),
    /// averaged over the test set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exact_log_likelihood: Option<f64>,
    /// `KL(q(z) ‖ p(z))` of the aggregate posterior `q(z) = E_x q(z|x)` over the test set, by
    /// the k-nearest-neighbour entropy estimate (computed with the exact log-likelihood).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aggregate_kl: Option<f64>,
}

/// `test.log_likelihood` in `summary.json`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LogLikelihoodSummary {
    /// Importance samples per image.
    pub k: i64,
    /// Test images it was estimated on.
    pub n_images: usize,
    /// Mean `L_k`, nats per image.
    pub value: f64,
    /// The same in bits per dimension (positive).
    pub bits_per_dim: f64,
    /// Seconds the estimate took.
    pub seconds: f64,
}

/// Training totals in [`RunSummary`].
#[derive(Clone, Debug, Serialize)]
pub struct TrainTotals {
    /// Epochs run.
    pub epochs: usize,
    /// Optimiser steps run.
    pub steps: u64,
    /// Training seconds (evaluation excluded).
    pub seconds: f64,
    /// Training examples per second over the whole run.
    pub examples_per_s: f64,
    /// ELBO terms of the last epoch's training batches (VAEs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_epoch: Option<SplitMetrics>,
}

/// A data split as one `[N, D]` float tensor on the device, values in `[0, 1]`.
pub(crate) struct DeviceSplit {
    pub(crate) x: Tensor,
    pub(crate) n: i64,
}

impl DeviceSplit {
    pub(crate) fn new(set: &ImageSet, device: Device) -> Result<Self, LabError> {
        let n = set.len() as i64;
        let d = set.image_len() as i64;
        Ok(Self {
            x: tensor_from_u8_images(&set.pixels, &[n, d], device)?,
            n,
        })
    }
}

/// The splits a run uses, after truncation, binarisation and the validation hold-out.
pub(crate) struct PreparedData {
    pub(crate) name: String,
    pub(crate) train: Arc<ImageSet>,
    pub(crate) validation: Option<ImageSet>,
    pub(crate) test: ImageSet,
    pub(crate) class_names: Vec<String>,
    /// Binarise every training batch afresh.
    pub(crate) dynamic: bool,
}

/// Seed streams kept apart so that the draws of one split never depend on another's size.
const TRAIN_DRAW: u64 = 0x7472_6169_6e00_0000;
const TEST_DRAW: u64 = 0x7465_7374_0000_0000;

/// The configured data set as stored (grey levels, before binarisation and the validation
/// hold-out), truncated to `data.train_size` / `data.test_size`.
pub(crate) fn load_dataset(config: &ValidConfig) -> Result<genae_data::Dataset, LabError> {
    let d = &config.file().data;
    Ok(if d.dataset == SHAPES {
        let spec = ShapesSpec {
            image_size: d.image_size,
            n_scales: d.n_scales,
            n_rotations: d.n_rotations,
            n_positions: d.n_positions,
        };
        shapes_dataset(&spec, d.train_size, d.test_size, d.seed)?
    } else if d.dataset == AVB_TOY {
        genae_data::avb_toy::avb_toy_dataset(d.train_size, d.test_size, d.seed)?
    } else {
        let mut dataset = registry::load(&d.dataset, d.dir.as_deref())?;
        if d.train_size > 0 {
            dataset.train.truncate(d.train_size);
        }
        if d.test_size > 0 {
            dataset.test.truncate(d.test_size);
        }
        dataset
    })
}

pub(crate) fn prepare_data(config: &ValidConfig) -> Result<PreparedData, LabError> {
    let d = &config.file().data;
    let mut dataset = load_dataset(config)?;
    if d.binarize != Binarization::None {
        dataset.test = binarize_static(&dataset.test, d.seed ^ TEST_DRAW);
    }
    if d.binarize == Binarization::Static {
        dataset.train = binarize_static(&dataset.train, d.seed ^ TRAIN_DRAW);
    }
    let (train, validation) = if d.validation_size > 0 {
        let (train, mut validation) = split_validation(&dataset.train, d.validation_size, d.seed)?;
        if d.binarize == Binarization::Dynamic {
            validation = binarize_static(&validation, d.seed ^ TRAIN_DRAW);
        }
        (train, Some(validation))
    } else {
        (dataset.train, None)
    };
    Ok(PreparedData {
        name: dataset.name,
        train: Arc::new(train),
        validation,
        test: dataset.test,
        class_names: dataset.class_names,
        dynamic: d.binarize == Binarization::Dynamic,
    })
}

/// Sums of per-example ELBO terms, kept on the device until read.
struct TermSums {
    elbo: Tensor,
    reconstruction: Tensor,
    kl: Tensor,
    count: f64,
}

impl TermSums {
    fn new(device: Device) -> Self {
        let zero = || Tensor::zeros([], (Kind::Double, device));
        Self {
            elbo: zero(),
            reconstruction: zero(),
            kl: zero(),
            count: 0.0,
        }
    }

    fn add(&mut self, terms: &ElboTerms) {
        let sum = |t: &Tensor| t.detach().sum(Kind::Double);
        self.elbo += sum(&terms.elbo);
        self.reconstruction += sum(&terms.reconstruction);
        self.kl += sum(&terms.kl);
        self.count += terms.elbo.size()[0] as f64;
    }

    fn means(&self) -> SplitMetrics {
        let mean = |t: &Tensor| t.double_value(&[]) / self.count.max(1.0);
        SplitMetrics {
            elbo: mean(&self.elbo),
            reconstruction: mean(&self.reconstruction),
            kl: mean(&self.kl),
        }
    }
}

fn evaluate(vae: &Vae, split: &DeviceSplit, batch_size: i64) -> Result<SplitMetrics, LabError> {
    tch::no_grad(|| {
        let mut sums = TermSums::new(split.x.device());
        let mut start = 0;
        while start < split.n {
            let len = batch_size.min(split.n - start);
            sums.add(&elbo(vae, &split.x.narrow(0, start, len))?);
            start += len;
        }
        Ok(sums.means())
    })
}

/// The mean denoising bound over a split, in batches, without gradients.
fn mean_dvae_bound(
    vae: &Vae,
    split: &DeviceSplit,
    corruption: &genae_tensor::Corruption,
    copies: i64,
    samples: i64,
    batch_size: i64,
) -> Result<f64, LabError> {
    tch::no_grad(|| {
        let mut total = 0.0;
        let mut start = 0;
        while start < split.n {
            let len = batch_size.min(split.n - start);
            let bound = dvae_bound(
                vae,
                &split.x.narrow(0, start, len),
                corruption,
                copies,
                samples,
            )?;
            total += bound.sum(Kind::Double).double_value(&[]);
            start += len;
        }
        Ok(total / split.n.max(1) as f64)
    })
}

/// `Err(NonFinite)` naming the term when a step's loss is NaN or infinite (before its update
/// touches the parameters).
fn check_step(out: &ObjectiveOutput, epoch: usize, step: u64) -> Result<(), LabError> {
    let loss = out.loss.double_value(&[]);
    if loss.is_finite() {
        return Ok(());
    }
    let sum = |t: &Tensor| t.sum(Kind::Double).double_value(&[]);
    let (term, value) = [
        ("reconstruction term", sum(&out.terms.reconstruction)),
        ("KL term", sum(&out.terms.kl)),
    ]
    .into_iter()
    .find(|(_, v)| !v.is_finite())
    .unwrap_or(("loss", loss));
    Err(LabError::NonFinite {
        term,
        value,
        epoch,
        step,
    })
}

fn check_finite(metrics: &SplitMetrics, epoch: usize, step: u64) -> Result<(), LabError> {
    for (term, value) in [
        ("ELBO", metrics.elbo),
        ("reconstruction term", metrics.reconstruction),
        ("KL term", metrics.kl),
    ] {
        if !value.is_finite() {
            return Err(LabError::NonFinite {
                term,
                value,
                epoch,
                step,
            });
        }
    }
    Ok(())
}

pub(crate) fn to_json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("metrics always serialise")
}

/// The run's device (`device`, or `GENAE_DEVICE`), with libtorch's threads set from
/// `threads`.
pub(crate) fn run_device(config: &ValidConfig) -> Result<Device, LabError> {
    let device = DeviceSpec::from_config_or_env(config.device())?.resolve()?;
    if config.file().threads > 0 {
        tch::set_num_threads(config.file().threads as i32);
    }
    Ok(device)
}

/// The training batches' options (shuffled, seeded by `data.seed`, binarised afresh when the
/// data are dynamic) and the steps per epoch; an error naming `train.batch_size` when
/// `drop_last` leaves no batch.
pub(crate) fn training_batches(
    config: &ValidConfig,
    data: &PreparedData,
) -> Result<(BatchOptions, usize), LabError> {
    let f = config.file();
    let n_train = data.train.len();
    let options = BatchOptions {
        batch_size: f.train.batch_size,
        shuffle: true,
        drop_last: f.train.drop_last,
        seed: f.data.seed,
        binarize: data.dynamic,
    };
    let steps = batches_per_epoch(n_train, f.train.batch_size, f.train.drop_last);
    if steps == 0 {
        return Err(LabError::Config(crate::ConfigError::Invalid {
            field: "train.batch_size",
            reason: format!(
                "with drop_last, a batch of {} leaves no batch from {n_train} training examples",
                f.train.batch_size
            ),
        }));
    }
    Ok((options, steps))
}

/// Writes `summary.json` (atomically) and then `report.html`.
pub(crate) fn write_summary(run_dir: &RunDir, summary: &RunSummary) -> Result<(), LabError> {
    let json = serde_json::to_string_pretty(summary).expect("the summary always serialises");
    run_dir.write_atomic("summary.json", json.as_bytes())?;
    crate::report::write_report(run_dir)?;
    Ok(())
}

/// Runs one experiment: builds the data and the model, trains with Adam on the negative ELBO,
/// evaluates the test set after every epoch, and writes the run directory (see the crate docs).
/// Returns the summary, whose `run_dir` says where everything went.
pub fn run_experiment(config: &ValidConfig) -> Result<RunSummary, LabError> {
    let run_dir = RunDir::create(&config.file().output_dir, &config.file().name)?;
    run_dir.write_atomic("config.toml", config.to_toml().as_bytes())?;
    train_and_evaluate(config, run_dir, false)
}

/// Continues the run in `run_dir` from its `checkpoint.safetensors` (written after every
/// `train.checkpoint_every` epochs), with the run's own `config.toml` plus `overrides` (e.g.
/// `train.epochs=50` to train longer). Metrics lines of epochs after the checkpoint are dropped
/// and redone. With the same config, the numbers are those the uninterrupted run would have
/// given: parameters, Adam's moments, the epoch and the step are restored, and every epoch
/// draws its randomness from a generator seeded by `(seed, epoch)`.
pub fn resume_experiment(run_dir: &Path, overrides: &[String]) -> Result<RunSummary, LabError> {
    let run_dir = RunDir::open(run_dir)?;
    let config = ValidConfig::load(&run_dir.file("config.toml"), overrides)?;
    if !overrides.is_empty() {
        run_dir.write_atomic("config.toml", config.to_toml().as_bytes())?;
    }
    train_and_evaluate(&config, run_dir, true)
}

/// The seed of epoch `epoch`'s generator (epoch 0: the final evaluation's).
pub(crate) fn epoch_seed(seed: u64, epoch: usize) -> u64 {
    seed.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(epoch as u64)
        .rotate_left(17)
}

/// Where training resumes: what `checkpoint.safetensors` holds besides the tensors.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Progressed {
    pub(crate) epoch: usize,
    pub(crate) step: u64,
    pub(crate) examples: u64,
    pub(crate) seconds: f64,
}

pub(crate) const CHECKPOINT: &str = "checkpoint.safetensors";

/// Writes parameters, optimiser state and progress to `checkpoint.safetensors` atomically.
/// Parameters are stored as `<store>.<variable>` for each `(store, VarStore)` of `stores`, and
/// each `(prefix, Adam)` of `optimizers` as `<prefix>adam.…` (the VAE uses `model` and `""`).
pub(crate) fn save_training_checkpoint(
    stores: &[(&str, &nn::VarStore)],
    optimizers: &[(&str, &Adam)],
    done: Progressed,
    run_dir: &RunDir,
) -> Result<(), LabError> {
    let mut named: Vec<(String, Tensor)> = Vec::new();
    for (store, vs) in stores {
        named.extend(
            vs.variables()
                .into_iter()
                .map(|(name, t)| (format!("{store}.{name}"), t)),
        );
    }
    for (prefix, optimizer) in optimizers {
        named.extend(
            optimizer
                .state()
                .into_iter()
                .map(|(name, t)| (format!("{prefix}{name}"), t)),
        );
    }
    named.push((
        "training.progress".into(),
        Tensor::from_slice(&[done.epoch as i64, done.step as i64, done.examples as i64]),
    ));
    named.push((
        "training.seconds".into(),
        Tensor::from_slice(&[done.seconds]),
    ));
    let tmp = run_dir.temporary(CHECKPOINT);
    Tensor::write_safetensors(&named, &tmp)?;
    std::fs::rename(&tmp, run_dir.file(CHECKPOINT))
        .map_err(|e| LabError::io("writing", &run_dir.file(CHECKPOINT), e))
}

/// Restores what [`save_training_checkpoint`] wrote (with the same names) into `stores` and
/// `optimizers`; returns the progress it holds. Errors name the file and the first missing or
/// mis-shaped entry.
pub(crate) fn load_training_checkpoint(
    stores: &[(&str, &nn::VarStore)],
    optimizers: &mut [(&str, &mut Adam)],
    run_dir: &RunDir,
) -> Result<Progressed, LabError> {
    let path = run_dir.file(CHECKPOINT);
    let bad = |reason: String| LabError::Checkpoint {
        path: path.clone(),
        reason,
    };
    if !path.is_file() {
        return Err(bad(
            "not found: the run saved no checkpoint yet (one is written after every \
             `train.checkpoint_every` epochs)"
                .into(),
        ));
    }
    let tensors: BTreeMap<String, Tensor> = Tensor::read_safetensors(&path)
        .map_err(|e| bad(e.to_string()))?
        .into_iter()
        .collect();
    tch::no_grad(|| -> Result<(), LabError> {
        for (store, vs) in stores {
            for (name, mut var) in vs.variables() {
                let key = format!("{store}.{name}");
                let saved = tensors
                    .get(&key)
                    .ok_or_else(|| bad(format!("missing {key}")))?;
                if saved.size() != var.size() {
                    return Err(bad(format!(
                        "{key}: shape {:?} in the checkpoint, {:?} in the config's model",
                        saved.size(),
                        var.size()
                    )));
                }
                var.copy_(saved);
            }
        }
        Ok(())
    })?;
    for (prefix, optimizer) in optimizers.iter_mut() {
        let own: BTreeMap<String, Tensor> = tensors
            .iter()
            .filter_map(|(k, t)| Some((k.strip_prefix(*prefix)?.to_string(), t.shallow_clone())))
            .collect();
        optimizer
            .load_state(&own)
            .map_err(|e| bad(format!("{prefix}{e}")))?;
    }
    let progress = tensors
        .get("training.progress")
        .ok_or_else(|| bad("missing training.progress".into()))?;
    let seconds = tensors
        .get("training.seconds")
        .map_or(0.0, |t| t.double_value(&[0]));
    Ok(Progressed {
        epoch: progress.int64_value(&[0]) as usize,
        step: progress.int64_value(&[1]) as u64,
        examples: progress.int64_value(&[2]) as u64,
        seconds,
    })
}

/// Keeps the `metrics.jsonl` lines of epochs `≤ epoch` (a resumed run redoes the rest).
pub(crate) fn truncate_metrics(run_dir: &RunDir, epoch: usize) -> Result<(), LabError> {
    let text = std::fs::read_to_string(run_dir.file("metrics.jsonl")).unwrap_or_default();
    let kept: String = text
        .lines()
        .filter(|line| {
            serde_json::from_str::<serde_json::Value>(line)
                .ok()
                .and_then(|v| v["epoch"].as_u64())
                .is_some_and(|e| e as usize <= epoch)
        })
        .map(|line| format!("{line}\n"))
        .collect();
    run_dir.write_atomic("metrics.jsonl", kept.as_bytes())
}

fn train_and_evaluate(
    config: &ValidConfig,
    run_dir: RunDir,
    resume: bool,
) -> Result<RunSummary, LabError> {
    if config.file().model.kind == ModelKind::Aae {
        return crate::aae_run::train_and_evaluate(config, run_dir, resume);
    }
    if config.file().model.kind == ModelKind::Avb {
        return crate::avb_run::train_and_evaluate(config, run_dir, resume);
    }
    let f = config.file();
    if f.model.kind == crate::ModelKind::Vqvae {
        return crate::vqvae_run::train_vqvae(config, run_dir, resume);
    }
    let device = run_device(config)?;
    let data = prepare_data(config)?;
    let [c, h, w] = data.train.image_shape;
    let image_shape = [c as i64, h as i64, w as i64];
    let input_dim = (c * h * w) as i64;

    seed_everything(f.seed);
    let n_train = data.train.len();
    let test = DeviceSplit::new(&data.test, device)?;
    let validation = match &data.validation {
        Some(set) => Some(DeviceSplit::new(set, device)?),
        None => None,
    };
    let vs = nn::VarStore::new(device);
    let vae = Vae::new(&vs.root(), &config.vae_config(image_shape))?;
    let mut optimizer = Adam::new(&vs, f.train.learning_rate);

    let done = if resume {
        let done =
            load_training_checkpoint(&[("model", &vs)], &mut [("", &mut optimizer)], &run_dir)?;
        truncate_metrics(&run_dir, done.epoch)?;
        done
    } else {
        Progressed::default()
    };

    let (batch_options, steps_per_epoch) = training_batches(config, &data)?;
    let objective = match f.train.objective {
        ObjectiveKind::Elbo => Objective::Elbo {
            beta: f.train.beta,
            free_bits: f.train.free_bits,
        },
        ObjectiveKind::Iwae => Objective::Iwae { k: f.train.iwae_k },
        ObjectiveKind::Dvae => Objective::Dvae {
            corruption: f.train.corruption.clone(),
            copies: f.train.dvae_copies,
            samples: f.train.dvae_samples,
        },
    };
    let warmup = KlWarmup {
        steps: f.train.kl_warmup_steps,
    };
    let mut progress = Progress::new(f.train.epochs, steps_per_epoch as u64);
    progress.line(&format!(
        "genae: {} on {} ({n_train} train / {}{} test, {c}x{h}x{w}, binarize {}) on {device:?}, {} epochs → {}",
        f.model.kind,
        data.name,
        validation
            .as_ref()
            .map_or(String::new(), |v| format!("{} validation / ", v.n)),
        test.n,
        format!("{:?}", f.data.binarize).to_lowercase(),
        f.train.epochs,
        run_dir.path().display()
    ));

    if resume {
        progress.line(&format!(
            "resuming after epoch {} (step {}) from {}",
            done.epoch,
            done.step,
            run_dir.file(CHECKPOINT).display()
        ));
    }
    let mut step: u64 = done.step;
    let mut examples_trained = done.examples as usize;
    let mut train_seconds = done.seconds;
    let mut last_train = SplitMetrics::default();
    let mut last_test = SplitMetrics::default();
    for epoch in done.epoch + 1..=f.train.epochs {
        tch::manual_seed(epoch_seed(f.seed, epoch) as i64);
        let started = Instant::now();
        let mut sums = TermSums::new(device);
        let mut seen = 0usize;
        let batches = Prefetcher::epoch(data.train.clone(), batch_options, epoch as u64);
        for (b, batch) in batches.enumerate() {
            let len = batch.len();
            let x = tensor_from_u8_images(&batch.pixels, &[len as i64, input_dim], device)?;
            let out = objective.loss(&vae, &x, warmup.scale(step))?;
            // On the CPU reading the loss back costs nothing, so every step is checked before
            // its update; on a GPU only the progress updates and the epoch means are.
            if device == Device::Cpu || progress.wants_update(b as u64 + 1) {
                check_step(&out, epoch, step + 1)?;
            }
            optimizer.backward_step(&out.loss);
            sums.add(&out.terms);
            let loss = out.loss;
            step += 1;
            seen += len;
            progress.tick();
            if progress.wants_update(b as u64 + 1) {
                progress.step(
                    epoch,
                    b as u64 + 1,
                    loss.double_value(&[]),
                    seen as f64 / started.elapsed().as_secs_f64(),
                );
            }
        }
        last_train = sums.means(); // reads back: waits for the device
        let seconds = started.elapsed().as_secs_f64();
        train_seconds += seconds;
        examples_trained += seen;
        check_finite(&last_train, epoch, step)?;

        let eval_started = Instant::now();
        let validation_metrics = match &validation {
            Some(v) => Some(evaluate(&vae, v, f.eval.batch_size as i64)?),
            None => None,
        };
        last_test = evaluate(&vae, &test, f.eval.batch_size as i64)?;
        check_finite(&last_test, epoch, step)?;
        let mid_run = f.eval.every > 0 && epoch % f.eval.every == 0 && epoch < f.train.epochs;
        let log_likelihood = if mid_run {
            save_model(&[("", &vs)], &run_dir)?;
            if f.eval.log_likelihood_k > 0 {
                tch::manual_seed(epoch_seed(f.seed, epoch) as i64 ^ 0x5EED);
                let ll = estimate_log_likelihood(&vae, &test, config, input_dim)?;
                progress.line(&format!(
                    "epoch {epoch:>3}: L_{} = {:.3} nats on {} test images ({:.1} s); checkpoint saved",
                    ll.k, ll.value, ll.n_images, ll.seconds
                ));
                Some(ll)
            } else {
                None
            }
        } else {
            None
        };
        let metrics = EpochMetrics {
            epoch,
            step,
            train: last_train,
            validation: validation_metrics,
            test: last_test,
            seconds,
            examples_per_s: seen as f64 / seconds,
            eval_seconds: eval_started.elapsed().as_secs_f64(),
            log_likelihood,
        };
        run_dir.append_line("metrics.jsonl", &to_json(&metrics))?;
        let every = f.train.checkpoint_every;
        if every > 0 && (epoch % every == 0 || epoch == f.train.epochs) {
            let done = Progressed {
                epoch,
                step,
                examples: examples_trained as u64,
                seconds: train_seconds,
            };
            save_training_checkpoint(&[("model", &vs)], &[("", &optimizer)], done, &run_dir)?;
        }
        progress.line(&format!(
            "epoch {epoch:>3}/{}: train ELBO {:9.3}  test ELBO {:9.3} (rec {:9.3}, KL {:7.3})  {:6.1} s  {:7.0} ex/s",
            f.train.epochs,
            last_train.elbo,
            last_test.elbo,
            last_test.reconstruction,
            last_test.kl,
            seconds,
            metrics.examples_per_s
        ));
    }
    progress.finish();
    if done.epoch >= f.train.epochs && resume {
        // Nothing was left to train: evaluate what the checkpoint holds.
        last_test = evaluate(&vae, &test, f.eval.batch_size as i64)?;
    }

    tch::manual_seed(epoch_seed(f.seed, 0) as i64);
    save_model(&[("", &vs)], &run_dir)?;
    write_reconstructions_and_samples(&vae, &test, image_shape, config, &run_dir, device)?;
    write_interpolations(&vae, &test, image_shape, f.eval.interpolations, &run_dir)?;
    write_latents(&vae, None, &test, &data, config, &run_dir)?;
    crate::avb_run::write_posterior_samples(&vae, &test, &data, config, &run_dir)?;
    let exact = crate::avb_run::exact_evaluation(&vae.decoder, &vae, &test, config)?;

    let au = active_units(&vae, &test.x, f.eval.batch_size as i64, 0.01)?;
    let log_likelihood = if f.eval.log_likelihood_k > 0 {
        progress.line(&format!(
            "estimating L_{} on {} test images ...",
            f.eval.log_likelihood_k,
            log_likelihood_images(config, &test)
        ));
        let ll = estimate_log_likelihood(&vae, &test, config, input_dim)?;
        progress.line(&format!(
            "L_{} = {:.3} nats ({:.4} bits/dim) in {:.1} s; {} active units",
            ll.k, ll.value, ll.bits_per_dim, ll.seconds, au.count
        ));
        Some(ll)
    } else {
        None
    };

    let dvae_bound = match &objective {
        Objective::Dvae {
            corruption,
            copies,
            samples,
        } => Some(mean_dvae_bound(
            &vae,
            &test,
            corruption,
            *copies,
            *samples,
            f.eval.batch_size as i64,
        )?),
        _ => None,
    };

    let chain = crate::chains::evaluate_chains(&vae, config, &test.x, &run_dir, device)?;

    let summary = RunSummary {
        model: f.model.kind.to_string(),
        dataset: data.name.clone(),
        device: format!("{device:?}").to_lowercase(),
        run_dir: run_dir.path().to_path_buf(),
        test: TestSummary {
            elbo: Some(last_test.elbo),
            reconstruction: last_test.reconstruction,
            kl: Some(last_test.kl),
            reconstruction_mse: Some(reconstruction_mse(&vae, &test, f.eval.batch_size as i64)?),
            log_likelihood,
            active_units: Some(au.count),
            bits_per_dim: None,
            prior_nll: None,
            dvae_bound,
            exact_log_likelihood: exact.map(|e| e.log_likelihood),
            aggregate_kl: exact.map(|e| e.aggregate_kl),
        },
        aae: None,
        vq: None,
        prior: None,
        avb: None,
        peak_rss_mb: peak_rss_mb(),
        chain,
        train: TrainTotals {
            epochs: f.train.epochs,
            steps: step,
            seconds: train_seconds,
            examples_per_s: examples_trained as f64 / train_seconds,
            last_epoch: Some(last_train),
        },
    };
    write_summary(&run_dir, &summary)?;
    Ok(summary)
}

/// `reconstructions.png` (test images over the decoder means at their codes' means) and
/// `samples.png` (decoder means of prior draws), for any model that encodes and decodes.
pub(crate) fn write_reconstructions_and_samples<M: GenerativeAutoencoder + ?Sized>(
    model: &M,
    test: &DeviceSplit,
    image_shape: [i64; 3],
    config: &ValidConfig,
    run_dir: &RunDir,
    device: Device,
) -> Result<(), LabError> {
    let e = &config.file().eval;
    let [c, h, w] = image_shape;
    let n = (e.reconstructions as i64).min(test.n);
    let originals = test.x.narrow(0, 0, n);
    let reconstructions = model.decode_mean(&model.encode_mean(&originals)?)?;
    let pair = Tensor::cat(&[originals, reconstructions], 0).view([-1, c, h, w]);
    save_image_grid(&pair, n as usize, &run_dir.file("reconstructions.png"))?;

    let z = model.sample_prior(e.samples as i64, device)?;
    let samples = tch::no_grad(|| model.decode_mean(&z))?.view([-1, c, h, w]);
    let ncol = (e.samples as f64).sqrt().ceil() as usize;
    save_image_grid(&samples, ncol, &run_dir.file("samples.png"))?;
    Ok(())
}

/// Saves the parameters as `model.safetensors`, through a temporary file and a rename: each
/// `(store, VarStore)` as `<store>.<variable>` (an empty store name: just `<variable>`, as
/// `VarStore::save` names them).
pub(crate) fn save_model(
    stores: &[(&str, &nn::VarStore)],
    run_dir: &RunDir,
) -> Result<(), LabError> {
    let name = "model.safetensors";
    let mut named: Vec<(String, Tensor)> = Vec::new();
    for (store, vs) in stores {
        named.extend(vs.variables().into_iter().map(|(var, t)| match *store {
            "" => (var, t),
            store => (format!("{store}.{var}"), t),
        }));
    }
    let tmp = run_dir.temporary(name).with_extension("safetensors");
    Tensor::write_safetensors(&named, &tmp)?;
    std::fs::rename(&tmp, run_dir.file(name))
        .map_err(|e| LabError::io("writing", &run_dir.file(name), e))
}

/// Test images `L_k` is estimated on: `eval.log_likelihood_images`, 0 meaning all.
fn log_likelihood_images(config: &ValidConfig, test: &DeviceSplit) -> i64 {
    match config.file().eval.log_likelihood_images {
        0 => test.n,
        n => (n as i64).min(test.n),
    }
}

/// `L_k` with the `[eval]` settings on the first test images, timed.
fn estimate_log_likelihood(
    vae: &Vae,
    test: &DeviceSplit,
    config: &ValidConfig,
    input_dim: i64,
) -> Result<LogLikelihoodSummary, LabError> {
    let eval = &config.file().eval;
    let n_images = log_likelihood_images(config, test);
    let started = Instant::now();
    let value = evaluate_log_likelihood(
        vae,
        &test.x.narrow(0, 0, n_images),
        LogLikelihoodOptions {
            k: eval.log_likelihood_k,
            chunk_size: eval.log_likelihood_chunk,
            batch_size: log_likelihood_batch(eval.log_likelihood_k, eval.log_likelihood_chunk),
        },
    )?;
    Ok(LogLikelihoodSummary {
        k: eval.log_likelihood_k,
        n_images: n_images as usize,
        value,
        bits_per_dim: bits_per_dim(value, input_dim as usize),
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// (image, sample) pairs per decoder pass while estimating `L_k`. On the 2-core machine this
/// project measures on, passes of 1 280 samples of one image ran a 784-300-300-40 decoder about
/// 1.4× faster per image than passes of 500 with two threads (the same with one thread), and
/// 10 000-row passes were slower again (out of cache); see docs/benchmarks.md.
const LOG_LIKELIHOOD_ROWS: i64 = 1280;

/// Test images per batch while estimating `L_k`: as many as fill [`LOG_LIKELIHOOD_ROWS`] with
/// `min(k, chunk)` samples each, at least one.
fn log_likelihood_batch(k: i64, chunk: i64) -> i64 {
    (LOG_LIKELIHOOD_ROWS / k.min(chunk).max(1)).max(1)
}

/// Mean squared error per pixel between the test images and the decoder means at their
/// codes' means, in batches (pixel values in `[0, 1]`).
pub(crate) fn reconstruction_mse<M: GenerativeAutoencoder + ?Sized>(
    model: &M,
    split: &DeviceSplit,
    batch_size: i64,
) -> Result<f64, LabError> {
    tch::no_grad(|| {
        let mut sum = 0.0;
        let mut start = 0;
        while start < split.n {
            let len = batch_size.min(split.n - start);
            let x = split.x.narrow(0, start, len);
            let x_hat = model.decode_mean(&model.encode_mean(&x)?)?;
            sum += (x_hat - &x).square().sum(Kind::Double).double_value(&[]);
            start += len;
        }
        Ok(sum / (split.n.max(1) * split.x.size()[1]) as f64)
    })
}

/// Peak resident set size of this process (`VmHWM`), in MiB.
pub(crate) fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// Points `t ∈ [0, 1]` along the straight line and the great circle between `a` and `b`
/// (`[d]` each); returns `(linear, spherical)`, each `[steps, d]`.
fn interpolate(a: &Tensor, b: &Tensor, steps: i64) -> (Tensor, Tensor) {
    let t = Tensor::linspace(0.0, 1.0, steps, (Kind::Float, a.device())).unsqueeze(1);
    let one_minus_t = t.ones_like() - &t;
    let linear = a.unsqueeze(0) * &one_minus_t + b.unsqueeze(0) * &t;
    let cos = (a.dot(b) / (a.norm() * b.norm() + 1e-12))
        .double_value(&[])
        .clamp(-1.0, 1.0);
    let omega = cos.acos();
    let spherical = if omega.sin().abs() < 1e-6 {
        linear.shallow_clone()
    } else {
        let wa = (&one_minus_t * omega).sin() / omega.sin();
        let wb = (&t * omega).sin() / omega.sin();
        a.unsqueeze(0) * wa + b.unsqueeze(0) * wb
    };
    (linear, spherical)
}

/// `interpolations.png`: for each pair of test images, a row of decoded linear interpolation
/// steps between their posterior means and a row of spherical ones.
pub(crate) fn write_interpolations<M: GenerativeAutoencoder + ?Sized>(
    model: &M,
    test: &DeviceSplit,
    image_shape: [i64; 3],
    pairs: usize,
    run_dir: &RunDir,
) -> Result<(), LabError> {
    const STEPS: i64 = 10;
    let pairs = (pairs as i64).min(test.n / 2);
    if pairs == 0 {
        return Ok(());
    }
    let [c, h, w] = image_shape;
    tch::no_grad(|| {
        let codes = model.encode_mean(&test.x.narrow(0, 0, 2 * pairs))?;
        let mut rows = Vec::new();
        for p in 0..pairs {
            let (a, b) = (codes.get(2 * p), codes.get(2 * p + 1));
            let (linear, spherical) = interpolate(&a, &b, STEPS);
            rows.push(model.decode_mean(&linear)?);
            rows.push(model.decode_mean(&spherical)?);
        }
        let grid = Tensor::cat(&rows, 0).view([-1, c, h, w]);
        save_image_grid(&grid, STEPS as usize, &run_dir.file("interpolations.png"))?;
        Ok(())
    })
}

/// `latents.png`: posterior means (codes) of test images coloured by label, in 2-d directly or
/// through their first two principal components. With `prior` samples (2-d codes only), they
/// are drawn in grey behind the codes.
pub(crate) fn write_latents<M: GenerativeAutoencoder + ?Sized>(
    model: &M,
    prior: Option<&Tensor>,
    test: &DeviceSplit,
    data: &PreparedData,
    config: &ValidConfig,
    run_dir: &RunDir,
) -> Result<(), LabError> {
    let n = (config.file().eval.latent_points as i64).min(test.n);
    if n < 3 {
        return Ok(());
    }
    let codes = model
        .encode_mean(&test.x.narrow(0, 0, n))?
        .to_kind(Kind::Double);
    let (points, axes, how) = if codes.size()[1] == 2 {
        (codes, ("z₁", "z₂"), "latent space")
    } else {
        let pca = genae_zoo::Pca::fit(&codes, 2)?;
        (
            pca.encode(&codes)?,
            ("PC 1", "PC 2"),
            "latent space, first two principal components",
        )
    };
    let pairs = |t: &Tensor| -> Result<Vec<(f64, f64)>, LabError> {
        let flat = t
            .to_kind(Kind::Double)
            .to_device(Device::Cpu)
            .contiguous()
            .view([-1]);
        let xy = Vec::<f64>::try_from(&flat)?;
        Ok(xy.chunks_exact(2).map(|p| (p[0], p[1])).collect())
    };
    let pts = pairs(&points)?;
    let background = match prior {
        Some(z) if z.dim() == 2 && z.size()[1] == 2 => pairs(z)?,
        _ => Vec::new(),
    };
    let labels = &data.test.labels[..n as usize];
    let title = format!("{}: test posterior means ({how})", data.name);
    crate::plots::scatter_by_label(
        &pts,
        &background,
        labels,
        &data.class_names,
        &title,
        axes,
        &run_dir.file("latents.png"),
    )
}
