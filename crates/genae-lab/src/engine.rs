//! Training and evaluation of one experiment.

use std::path::{Path, PathBuf};
use std::time::Instant;

use genae_data::shapes::{shapes_dataset, ShapesSpec};
use genae_data::{Dataset, ImageSet};
use genae_estimators::{elbo, ElboTerms};
use genae_tensor::{save_image_grid, seed_everything, tensor_from_u8_images, DeviceSpec};
use genae_zoo::Vae;
use serde::Serialize;
use tch::{nn, nn::OptimizerConfig, Device, Kind, Tensor};

use crate::config::{DatasetKind, ValidConfig};
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

impl LabError {
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
    /// The test set after the epoch.
    pub test: SplitMetrics,
    /// Training seconds of this epoch (evaluation excluded).
    pub seconds: f64,
    /// Training examples per second in this epoch.
    pub examples_per_s: f64,
    /// Seconds spent evaluating after this epoch.
    pub eval_seconds: f64,
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
    pub test: SplitMetrics,
    /// Training totals.
    pub train: TrainTotals,
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
    /// Metrics of the last epoch's training batches.
    pub last_epoch: SplitMetrics,
}

/// A data split as one `[N, D]` float tensor on the device, values in `[0, 1]`.
struct DeviceSplit {
    x: Tensor,
    n: i64,
}

impl DeviceSplit {
    fn new(set: &ImageSet, device: Device) -> Result<Self, LabError> {
        let n = set.len() as i64;
        let d = set.image_len() as i64;
        Ok(Self {
            x: tensor_from_u8_images(&set.pixels, &[n, d], device)?,
            n,
        })
    }
}

fn build_dataset(config: &ValidConfig) -> Result<Dataset, LabError> {
    let d = &config.file().data;
    match d.dataset {
        DatasetKind::Shapes => {
            let spec = ShapesSpec {
                image_size: d.image_size,
                n_scales: d.n_scales,
                n_rotations: d.n_rotations,
                n_positions: d.n_positions,
            };
            Ok(shapes_dataset(&spec, d.train_size, d.test_size, d.seed)?)
        }
    }
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

fn to_json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("metrics always serialise")
}

/// Runs one experiment: builds the data and the model, trains with Adam on the negative ELBO,
/// evaluates the test set after every epoch, and writes the run directory (see the crate docs).
/// Returns the summary, whose `run_dir` says where everything went.
pub fn run_experiment(config: &ValidConfig) -> Result<RunSummary, LabError> {
    let f = config.file();
    let device = DeviceSpec::from_config_or_env(config.device())?.resolve()?;
    let dataset = build_dataset(config)?;
    let [c, h, w] = dataset.train.image_shape;
    let image_shape = [c as i64, h as i64, w as i64];
    let input_dim = (c * h * w) as i64;

    let run_dir = RunDir::create(&f.output_dir, &f.name)?;
    run_dir.write_atomic("config.toml", config.to_toml().as_bytes())?;

    seed_everything(f.seed);
    let train = DeviceSplit::new(&dataset.train, device)?;
    let test = DeviceSplit::new(&dataset.test, device)?;
    let vs = nn::VarStore::new(device);
    let vae = Vae::new(&vs.root(), &config.vae_config(input_dim))?;
    let mut optimizer = nn::Adam::default().build(&vs, f.train.learning_rate)?;

    let batch_size = f.train.batch_size as i64;
    let steps_per_epoch = (train.n + batch_size - 1) / batch_size;
    let mut progress = Progress::new(f.train.epochs, steps_per_epoch as u64);
    progress.line(&format!(
        "genae: {} on {} ({} train / {} test, {}x{}x{}) on {device:?}, {} epochs → {}",
        f.model.kind,
        dataset.name,
        train.n,
        test.n,
        c,
        h,
        w,
        f.train.epochs,
        run_dir.path().display()
    ));

    let mut step: u64 = 0;
    let mut train_seconds = 0.0;
    let mut last_train = SplitMetrics::default();
    let mut last_test = SplitMetrics::default();
    for epoch in 1..=f.train.epochs {
        let started = Instant::now();
        let mut sums = TermSums::new(device);
        let order = Tensor::randperm(train.n, (Kind::Int64, device));
        for b in 0..steps_per_epoch {
            let start = b * batch_size;
            let len = batch_size.min(train.n - start);
            let x = train.x.index_select(0, &order.narrow(0, start, len));
            let terms = elbo(&vae, &x)?;
            let loss = -terms.elbo.mean(Kind::Float);
            optimizer.backward_step(&loss);
            sums.add(&terms);
            step += 1;
            progress.tick();
            if progress.wants_update(b as u64 + 1) {
                let seen = (b * batch_size + len) as f64;
                progress.step(
                    epoch,
                    b as u64 + 1,
                    loss.double_value(&[]),
                    seen / started.elapsed().as_secs_f64(),
                );
            }
        }
        last_train = sums.means(); // reads back: waits for the device
        let seconds = started.elapsed().as_secs_f64();
        train_seconds += seconds;
        check_finite(&last_train, epoch, step)?;

        let eval_started = Instant::now();
        last_test = evaluate(&vae, &test, f.eval.batch_size as i64)?;
        check_finite(&last_test, epoch, step)?;
        let metrics = EpochMetrics {
            epoch,
            step,
            train: last_train,
            test: last_test,
            seconds,
            examples_per_s: train.n as f64 / seconds,
            eval_seconds: eval_started.elapsed().as_secs_f64(),
        };
        run_dir.append_line("metrics.jsonl", &to_json(&metrics))?;
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

    write_pictures(&vae, &test, image_shape, config, &run_dir, device)?;
    save_checkpoint(&vs, &run_dir)?;

    let summary = RunSummary {
        model: f.model.kind.to_string(),
        dataset: dataset.name.clone(),
        device: format!("{device:?}").to_lowercase(),
        run_dir: run_dir.path().to_path_buf(),
        test: last_test,
        train: TrainTotals {
            epochs: f.train.epochs,
            steps: step,
            seconds: train_seconds,
            examples_per_s: (train.n as f64 * f.train.epochs as f64) / train_seconds,
            last_epoch: last_train,
        },
    };
    let json = serde_json::to_string_pretty(&summary).expect("the summary always serialises");
    run_dir.write_atomic("summary.json", json.as_bytes())?;
    Ok(summary)
}

fn write_pictures(
    vae: &Vae,
    test: &DeviceSplit,
    image_shape: [i64; 3],
    config: &ValidConfig,
    run_dir: &RunDir,
    device: Device,
) -> Result<(), LabError> {
    let e = &config.file().eval;
    let [c, h, w] = image_shape;
    let n = e.reconstructions as i64;
    let originals = test.x.narrow(0, 0, n);
    let reconstructions = vae.reconstruct(&originals)?;
    let pair = Tensor::cat(&[originals, reconstructions], 0).view([-1, c, h, w]);
    save_image_grid(
        &pair,
        e.reconstructions,
        &run_dir.file("reconstructions.png"),
    )?;

    let samples = vae.sample(e.samples as i64, device)?.view([-1, c, h, w]);
    let ncol = (e.samples as f64).sqrt().ceil() as usize;
    save_image_grid(&samples, ncol, &run_dir.file("samples.png"))?;
    Ok(())
}

/// Saves the parameters as `model.safetensors`, through a temporary file and a rename.
fn save_checkpoint(vs: &nn::VarStore, run_dir: &RunDir) -> Result<(), LabError> {
    let name = "model.safetensors";
    let tmp = run_dir.temporary(name);
    let tmp = tmp.with_extension("safetensors");
    vs.save(&tmp)?;
    std::fs::rename(&tmp, run_dir.file(name))
        .map_err(|e| LabError::io("writing", &run_dir.file(name), e))
}
