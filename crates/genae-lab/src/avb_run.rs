//! Training and evaluation of Adversarial Variational Bayes (`model.kind = "avb"`), and the
//! evaluations for models with a low-dimensional latent space that the VAE shares: the exact
//! `log p(x)` by quadrature, the aggregate posterior's KL to the prior and `posterior.png`.
//!
//! Every batch takes `avb.dual_steps` discriminator updates (fresh codes and prior draws
//! each), then `avb.primal_steps` encoder-and-decoder updates on the ELBO estimate with the
//! discriminator's variables frozen (Mescheder et al. used 2 dual steps per primal step). Each
//! player has its own `VarStore` and Adam.

use std::time::Instant;

use genae_data::batch::Prefetcher;
use genae_estimators::{
    bits_per_dim, gaussian_proposal_log_likelihood, knn_kl_to_standard_normal,
    quadrature_log_likelihood, QuadratureOptions,
};
use genae_samplers::{ais_log_likelihood, AisConfig, AisInitial};
use genae_tensor::DiagGaussian;
use genae_tensor::{seed_everything, tensor_from_u8_images};
use genae_zoo::{
    Avb, AvbConfig, Decoder, GenerativeAutoencoder, LatentSpace, LatentVariableModel,
    NoiseInjection, ZooError,
};
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

use crate::config::{ConfigError, ValidConfig};
use crate::engine::{
    epoch_seed, load_training_checkpoint, peak_rss_mb, prepare_data, reconstruction_mse,
    run_device, save_model, save_training_checkpoint, to_json, training_batches, truncate_metrics,
    write_interpolations, write_latents, write_reconstructions_and_samples, write_summary,
    DeviceSplit, LabError, LogLikelihoodSummary, Players, PreparedData, Progressed, RunSummary,
    TestSummary, TrainTotals, CHECKPOINT,
};
use crate::optim::Adam;
use crate::progress::Progress;
use crate::run_dir::RunDir;

/// `[avb]`: Adversarial Variational Bayes' settings (networks, latent size and likelihood come
/// from `[model]`, the encoder and decoder learning rate from `train.learning_rate`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AvbSection {
    /// Dimensions of the encoder noise `ε ~ N(0, I)`.
    pub noise_dim: i64,
    /// `input` (`ε` concatenated to `x`) or `input_and_hidden` (also projected into every
    /// hidden layer).
    pub noise_injection: NoiseInjection,
    /// Hidden widths of the discriminator `T(x, z)`.
    pub discriminator_hidden: Vec<i64>,
    /// Adam learning rate of the discriminator.
    pub discriminator_learning_rate: f64,
    /// Encoder-and-decoder updates per batch.
    pub primal_steps: usize,
    /// Discriminator updates per batch (before the primal ones).
    pub dual_steps: usize,
    /// Adaptive contrast: `T` compares `(z − μ(x))/σ(x)` with `N(0, I)`.
    pub adaptive_contrast: bool,
    /// Draws per example that estimate `μ(x)`, `σ(x)` (also the proposal of the
    /// importance-sampled `test.log_likelihood`, and the encoder mean); at least 2.
    pub contrast_samples: i64,
    /// Annealing steps of an AIS estimate of `log p(x)` at the end (HMC transitions, started
    /// from the moment-matched Gaussian; `avb.ais_log_likelihood` in the summary; 0: skip it).
    pub ais_steps: usize,
    /// Test images the AIS estimate runs on.
    pub ais_images: usize,
}

impl Default for AvbSection {
    fn default() -> Self {
        Self {
            noise_dim: 8,
            noise_injection: NoiseInjection::Input,
            discriminator_hidden: vec![256, 256],
            discriminator_learning_rate: 1e-3,
            primal_steps: 1,
            dual_steps: 2,
            adaptive_contrast: false,
            contrast_samples: 16,
            ais_steps: 0,
            ais_images: 100,
        }
    }
}

impl AvbSection {
    /// Whether every field has its default (then `config.toml` leaves the section out).
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }

    /// Checks the section, naming the first bad field.
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |field: &'static str, reason: String| ConfigError::Invalid { field, reason };
        if self.noise_dim < 1 {
            return Err(invalid(
                "avb.noise_dim",
                format!("must be at least 1, got {}", self.noise_dim),
            ));
        }
        if let Some(w) = self.discriminator_hidden.iter().find(|&&w| w < 1) {
            return Err(invalid(
                "avb.discriminator_hidden",
                format!("widths must be at least 1, got {w}"),
            ));
        }
        let lr = self.discriminator_learning_rate;
        if !(lr.is_finite() && lr > 0.0) {
            return Err(invalid(
                "avb.discriminator_learning_rate",
                format!("must be a positive finite number, got {lr}"),
            ));
        }
        if self.primal_steps < 1 {
            return Err(invalid(
                "avb.primal_steps",
                format!("must be at least 1, got {}", self.primal_steps),
            ));
        }
        if self.ais_steps > 0 && self.ais_images < 1 {
            return Err(invalid(
                "avb.ais_images",
                format!(
                    "must be at least 1 when avb.ais_steps > 0, got {}",
                    self.ais_images
                ),
            ));
        }
        if self.contrast_samples < 2 {
            return Err(invalid(
                "avb.contrast_samples",
                format!("must be at least 2, got {}", self.contrast_samples),
            ));
        }
        Ok(())
    }
}

/// Per-epoch averages of AVB's training terms (nats per example).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct AvbTrainMetrics {
    /// The ELBO estimate `E[log p(x|z)] − E[KL estimate]` of the primal steps.
    pub elbo: f64,
    /// `E log p(x|z)`, `z ~ q(z|x)`.
    pub reconstruction: f64,
    /// The discriminator's estimate of `E[log q(z|x) − log p(z)]`.
    pub kl: f64,
    /// The discriminator's logistic loss (`ln 2 ≈ 0.693` when it cannot tell).
    pub discriminator: f64,
    /// Fraction of posterior and reference pairs the discriminator classifies correctly.
    pub discriminator_accuracy: f64,
}

/// Test numbers after an epoch: the same ELBO estimate on the test set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct AvbTestMetrics {
    /// ELBO estimate.
    pub elbo: f64,
    /// `E log p(x|z)`.
    pub reconstruction: f64,
    /// KL estimate from `T`.
    pub kl: f64,
}

#[derive(Clone, Debug, Serialize)]
struct AvbEpochMetrics {
    epoch: usize,
    step: u64,
    train: AvbTrainMetrics,
    test: AvbTestMetrics,
    seconds: f64,
    examples_per_s: f64,
    eval_seconds: f64,
}

/// `summary.json`'s `avb` section.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AvbSummary {
    /// Whether adaptive contrast was on.
    pub adaptive_contrast: bool,
    /// How the noise entered the encoder.
    pub noise_injection: NoiseInjection,
    /// The last epoch's training terms (`None` when this process trained no epoch: a resumed
    /// run that only re-evaluates; `metrics.jsonl` has them).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_epoch: Option<AvbTrainMetrics>,
    /// The proposal of `test.log_likelihood`.
    pub log_likelihood_proposal: String,
    /// The AIS estimate of `log p(x)` (when `avb.ais_steps > 0`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ais_log_likelihood: Option<AvbAisSummary>,
}

/// `avb.ais_log_likelihood` in `summary.json`: annealed importance sampling from the
/// moment-matched Gaussian of `q(z|x)` to the posterior, genae-samplers' defaults otherwise
/// (16 chains, one HMC transition of 10 leapfrog steps per step, pilot-tuned step sizes).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AvbAisSummary {
    /// Annealing steps.
    pub steps: usize,
    /// Chains per image.
    pub chains: i64,
    /// Test images.
    pub n_images: usize,
    /// Mean estimate of `log p(x)`, nats per image (a stochastic lower bound).
    pub value: f64,
    /// Mean effective sample size of the chains' weights.
    pub mean_ess: f64,
    /// Seconds it took.
    pub seconds: f64,
}

/// AIS from the moment-matched Gaussian on the first `avb.ais_images` test images.
fn estimate_ais(avb: &Avb, test: &DeviceSplit, a: &AvbSection) -> Result<AvbAisSummary, LabError> {
    let started = Instant::now();
    let n = (a.ais_images as i64).clamp(1, test.n.max(1));
    let x = test.x.narrow(0, 0, n);
    let start = avb.posterior_moments(&x)?.gaussian()?;
    let config = AisConfig {
        steps: a.ais_steps,
        ..Default::default()
    };
    let out = ais_log_likelihood(
        &GenerativeHalf(&avb.decoder),
        &x,
        AisInitial::Gaussian(&start),
        &config,
    )?;
    let mean = |t: &Tensor| t.to_kind(Kind::Double).mean(Kind::Double).double_value(&[]);
    Ok(AvbAisSummary {
        steps: a.ais_steps,
        chains: config.chains,
        n_images: n as usize,
        value: mean(&out.log_normalizer),
        mean_ess: mean(&out.ess),
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// The exact evaluations of a model with at most a 3-d latent space.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct ExactEvaluation {
    pub(crate) log_likelihood: f64,
    pub(crate) aggregate_kl: f64,
}

/// Points of the aggregate posterior drawn for its KL estimate.
const AGGREGATE_KL_POINTS: i64 = 5000;
/// Neighbours of the k-NN entropy estimate.
const AGGREGATE_KL_NEIGHBOURS: i64 = 5;

/// `n` test images, the split repeated as needed: `(x [n, D], index of each row)`.
fn cycled_test(test: &DeviceSplit, n: i64) -> (Tensor, Vec<usize>) {
    let reps = (n + test.n - 1) / test.n.max(1);
    let x = test.x.repeat([reps, 1]).narrow(0, 0, n);
    let index = (0..n as usize).map(|i| i % test.n as usize).collect();
    (x, index)
}

/// `test.exact_log_likelihood` (quadrature on the `eval.exact_log_likelihood_grid` grid,
/// over the distinct test images weighted by their counts) and `test.aggregate_kl` (k-NN
/// entropy of 5 000 draws of `q(z|x)` over the cycled test set); `None` when the grid is 0.
pub(crate) fn exact_evaluation<M: GenerativeAutoencoder + ?Sized>(
    decoder: &Decoder,
    model: &M,
    test: &DeviceSplit,
    config: &ValidConfig,
) -> Result<Option<ExactEvaluation>, LabError> {
    let e = &config.file().eval;
    if e.exact_log_likelihood_grid == 0 || test.n == 0 {
        return Ok(None);
    }
    let options = QuadratureOptions {
        points_per_axis: e.exact_log_likelihood_grid,
        half_width: e.exact_log_likelihood_half_width,
        chunk: 1 << 18,
    };
    let (unique, _inverse, counts) = test.x.unique_dim(0, true, false, true);
    let ll = quadrature_log_likelihood(
        |x, z| decoder.log_likelihood(x, z),
        &unique,
        decoder.latent_dim(),
        options,
    )?;
    let log_likelihood = (ll.to_kind(Kind::Double) * counts.to_kind(Kind::Double))
        .sum(Kind::Double)
        .double_value(&[])
        / test.n as f64;
    let (x, _) = cycled_test(test, AGGREGATE_KL_POINTS);
    let z = tch::no_grad(|| model.encode_sample(&x))?;
    let aggregate_kl = knn_kl_to_standard_normal(&z, AGGREGATE_KL_NEIGHBOURS)?;
    Ok(Some(ExactEvaluation {
        log_likelihood,
        aggregate_kl,
    }))
}

/// `posterior.png` for 2-d latent spaces: draws of `q(z|x)` (`eval.latent_points` of them,
/// cycling through the test set) coloured by the label of their `x`.
pub(crate) fn write_posterior_samples<M: GenerativeAutoencoder + ?Sized>(
    model: &M,
    test: &DeviceSplit,
    data: &PreparedData,
    config: &ValidConfig,
    run_dir: &RunDir,
) -> Result<(), LabError> {
    let n = config.file().eval.latent_points as i64;
    if model.latent_dim() != 2 || n < 3 || test.n == 0 {
        return Ok(());
    }
    let (x, index) = cycled_test(test, n);
    let z = tch::no_grad(|| model.encode_sample(&x))?
        .to_kind(Kind::Double)
        .to_device(Device::Cpu)
        .contiguous()
        .view([-1]);
    let xy = Vec::<f64>::try_from(&z)?;
    let points: Vec<(f64, f64)> = xy.chunks_exact(2).map(|p| (p[0], p[1])).collect();
    let labels: Vec<u32> = index.iter().map(|&i| data.test.labels[i]).collect();
    crate::plots::scatter_by_label(
        &points,
        &[],
        &labels,
        &data.class_names,
        &format!("{}: draws of q(z|x) for test images, by label", data.name),
        ("z₁", "z₂"),
        &run_dir.file("posterior.png"),
    )
}

/// Running sums of the step terms, on the device until read.
struct Sums {
    elbo: Tensor,
    reconstruction: Tensor,
    kl: Tensor,
    discriminator: Tensor,
    accuracy: Tensor,
    examples: f64,
    dual_steps: f64,
}

impl Sums {
    fn new(device: Device) -> Self {
        let zero = || Tensor::zeros([], (Kind::Double, device));
        Self {
            elbo: zero(),
            reconstruction: zero(),
            kl: zero(),
            discriminator: zero(),
            accuracy: zero(),
            examples: 0.0,
            dual_steps: 0.0,
        }
    }

    fn means(&self) -> AvbTrainMetrics {
        let read = |t: &Tensor, n: f64| t.double_value(&[]) / n.max(1.0);
        AvbTrainMetrics {
            elbo: read(&self.elbo, self.examples),
            reconstruction: read(&self.reconstruction, self.examples),
            kl: read(&self.kl, self.examples),
            discriminator: read(&self.discriminator, self.dual_steps),
            discriminator_accuracy: read(&self.accuracy, self.dual_steps),
        }
    }
}

/// The ELBO estimate on a split, in batches, without gradients.
fn evaluate(avb: &Avb, split: &DeviceSplit, batch_size: i64) -> Result<AvbTestMetrics, LabError> {
    tch::no_grad(|| {
        let (mut elbo, mut rec, mut kl) = (0.0, 0.0, 0.0);
        let mut start = 0;
        while start < split.n {
            let len = batch_size.min(split.n - start);
            let x = split.x.narrow(0, start, len);
            let out = avb.primal(&x, &avb.draw_codes(&x)?)?;
            let sum = |t: &Tensor| t.sum(Kind::Double).double_value(&[]);
            elbo += sum(&out.elbo);
            rec += sum(&out.reconstruction);
            kl += sum(&out.kl);
            start += len;
        }
        let n = split.n.max(1) as f64;
        Ok(AvbTestMetrics {
            elbo: elbo / n,
            reconstruction: rec / n,
            kl: kl / n,
        })
    })
}

/// AVB's generative half (`N(0, I)` prior and decoder) as a [`LatentVariableModel`], for
/// estimators that take the proposal separately: its `encode` is an error, since the implicit
/// encoder has no density.
struct GenerativeHalf<'a>(&'a Decoder);

impl LatentSpace for GenerativeHalf<'_> {
    fn latent_dim(&self) -> i64 {
        self.0.latent_dim()
    }
}

impl LatentVariableModel for GenerativeHalf<'_> {
    fn encode(&self, _x: &Tensor) -> genae_zoo::Result<DiagGaussian> {
        Err(ZooError::InvalidConfig {
            field: "model.kind",
            reason: "AVB's implicit encoder has no density: pass a proposal".into(),
        })
    }

    fn log_likelihood(&self, x: &Tensor, z: &Tensor) -> genae_zoo::Result<Tensor> {
        self.0.log_likelihood(x, z)
    }
}

/// `L_k` with the moment-matched Gaussian of `q(z|x)` as proposal, on the first
/// `eval.log_likelihood_images` test images.
fn estimate_log_likelihood(
    avb: &Avb,
    test: &DeviceSplit,
    config: &ValidConfig,
    input_dim: i64,
) -> Result<LogLikelihoodSummary, LabError> {
    let e = &config.file().eval;
    let n_images = match e.log_likelihood_images {
        0 => test.n,
        n => (n as i64).min(test.n),
    };
    let started = Instant::now();
    let per_batch = (1280 / e.log_likelihood_k.min(e.log_likelihood_chunk).max(1)).max(1);
    let mut total = 0.0;
    let mut start = 0;
    while start < n_images {
        let len = per_batch.min(n_images - start);
        let x = test.x.narrow(0, start, len);
        let moments = avb.posterior_moments(&x)?;
        let ll = gaussian_proposal_log_likelihood(
            &GenerativeHalf(&avb.decoder),
            &x,
            &moments.mean,
            &moments.std,
            e.log_likelihood_k,
            e.log_likelihood_chunk,
        )?;
        total += ll.sum(Kind::Double).double_value(&[]);
        start += len;
    }
    let value = total / n_images.max(1) as f64;
    Ok(LogLikelihoodSummary {
        k: e.log_likelihood_k,
        n_images: n_images as usize,
        value,
        bits_per_dim: bits_per_dim(value, input_dim as usize),
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Trains and evaluates an AVB run; [`crate::run_experiment`] and
/// [`crate::resume_experiment`] come here for `model.kind = "avb"`.
pub(crate) fn train_and_evaluate(
    config: &ValidConfig,
    run_dir: RunDir,
    resume: bool,
) -> Result<RunSummary, LabError> {
    let f = config.file();
    let a = &f.avb;
    let device = run_device(config)?;
    let data = prepare_data(config)?;
    let [c, h, w] = data.train.image_shape;
    let image_shape = [c as i64, h as i64, w as i64];
    let input_dim = image_shape.iter().product::<i64>();

    seed_everything(f.seed);
    let n_train = data.train.len();
    let test = DeviceSplit::new(&data.test, device)?;
    let mut players = Players::new(device);
    let model_config = AvbConfig {
        networks: config.vae_config(image_shape),
        noise_dim: a.noise_dim,
        noise_injection: a.noise_injection,
        discriminator_hidden: a.discriminator_hidden.clone(),
        adaptive_contrast: a.adaptive_contrast,
        contrast_samples: a.contrast_samples,
    };
    let avb = Avb::new(
        &players.encoder.root(),
        &players.decoder.root(),
        &players.discriminator.root(),
        &model_config,
    )?;
    let lr = f.train.learning_rate;
    let mut encode = Adam::new(&players.encoder, lr);
    let mut decode = Adam::new(&players.decoder, lr);
    let mut discriminate = Adam::new(&players.discriminator, a.discriminator_learning_rate);

    let done = if resume {
        let done = load_training_checkpoint(
            &players.named(),
            &mut [
                ("encoder.", &mut encode),
                ("decoder.", &mut decode),
                ("discriminator.", &mut discriminate),
            ],
            &run_dir,
        )?;
        truncate_metrics(&run_dir, done.epoch)?;
        done
    } else {
        Progressed::default()
    };

    let (batch_options, steps_per_epoch) = training_batches(config, &data)?;
    let mut progress = Progress::new(f.train.epochs, steps_per_epoch as u64);
    progress.line(&format!(
        "genae: avb ({} noise {}, {}{} dual : {} primal) on {} ({n_train} train / {} test, {c}x{h}x{w}) on {device:?}, {} epochs → {}",
        a.noise_dim,
        match a.noise_injection {
            NoiseInjection::Input => "at the input",
            NoiseInjection::InputAndHidden => "at the input and hidden layers",
        },
        if a.adaptive_contrast { "adaptive contrast, " } else { "" },
        a.dual_steps,
        a.primal_steps,
        data.name,
        test.n,
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

    let mut step = done.step;
    let mut examples_trained = done.examples as usize;
    let mut train_seconds = done.seconds;
    let mut last_train = None;
    let mut last_test = AvbTestMetrics::default();
    for epoch in done.epoch + 1..=f.train.epochs {
        tch::manual_seed(epoch_seed(f.seed, epoch) as i64);
        let started = Instant::now();
        let mut sums = Sums::new(device);
        let mut seen = 0usize;
        let batches = Prefetcher::epoch(data.train.clone(), batch_options, epoch as u64);
        for (b, batch) in batches.enumerate() {
            let len = batch.len() as i64;
            let x = tensor_from_u8_images(&batch.pixels, &[len, input_dim], device)?;

            // Dual: the discriminator on fresh codes (no gradient to the encoder).
            for _ in 0..a.dual_steps {
                let codes = tch::no_grad(|| avb.draw_codes(&x))?;
                let d_loss = avb.discriminator_loss(&x, &codes)?;
                discriminate.backward_step(&d_loss.loss);
                sums.discriminator += d_loss.loss.detach().to_kind(Kind::Double);
                sums.accuracy += d_loss.accuracy.to_kind(Kind::Double);
                sums.dual_steps += 1.0;
            }
            // Primal: encoder and decoder with T frozen.
            players.discriminator.freeze();
            let mut value = f64::NAN;
            for p in 0..a.primal_steps {
                let codes = avb.draw_codes(&x)?;
                let out = avb.primal(&x, &codes)?;
                value = out.loss.double_value(&[]);
                if !value.is_finite() {
                    players.discriminator.unfreeze();
                    return Err(LabError::non_finite(
                        "ELBO estimate",
                        value,
                        epoch,
                        step + 1,
                    ));
                }
                encode.zero_grad();
                decode.zero_grad();
                out.loss.backward();
                encode.step();
                decode.step();
                if p == 0 {
                    sums.elbo += out.elbo.detach().sum(Kind::Double);
                    sums.reconstruction += out.reconstruction.detach().sum(Kind::Double);
                    sums.kl += out.kl.detach().sum(Kind::Double);
                    sums.examples += len as f64;
                }
            }
            players.discriminator.unfreeze();

            step += 1;
            seen += len as usize;
            progress.tick();
            if progress.wants_update(b as u64 + 1) {
                progress.step(
                    epoch,
                    b as u64 + 1,
                    value,
                    seen as f64 / started.elapsed().as_secs_f64(),
                );
            }
        }
        let train_metrics = sums.means();
        last_train = Some(train_metrics);
        let seconds = started.elapsed().as_secs_f64();
        train_seconds += seconds;
        examples_trained += seen;
        if !train_metrics.discriminator.is_finite() {
            return Err(LabError::non_finite(
                "discriminator loss",
                train_metrics.discriminator,
                epoch,
                step,
            ));
        }

        let eval_started = Instant::now();
        last_test = evaluate(&avb, &test, f.eval.batch_size as i64)?;
        if !last_test.elbo.is_finite() {
            return Err(LabError::non_finite(
                "test ELBO estimate",
                last_test.elbo,
                epoch,
                step,
            ));
        }
        let metrics = AvbEpochMetrics {
            epoch,
            step,
            train: train_metrics,
            test: last_test,
            seconds,
            examples_per_s: seen as f64 / seconds,
            eval_seconds: eval_started.elapsed().as_secs_f64(),
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
            save_training_checkpoint(
                &players.named(),
                &[
                    ("encoder.", &encode),
                    ("decoder.", &decode),
                    ("discriminator.", &discriminate),
                ],
                done,
                &run_dir,
            )?;
        }
        if f.eval.every > 0 && epoch % f.eval.every == 0 && epoch < f.train.epochs {
            save_model(&players.named(), &run_dir)?;
        }
        progress.line(&format!(
            "epoch {epoch:>3}/{}: train ELBO~ {:9.4} (rec {:9.4}, KL~ {:7.4})  T loss {:.3} (acc {:.2})  test ELBO~ {:9.4}  {:6.1} s",
            f.train.epochs,
            train_metrics.elbo,
            train_metrics.reconstruction,
            train_metrics.kl,
            train_metrics.discriminator,
            train_metrics.discriminator_accuracy,
            last_test.elbo,
            seconds
        ));
    }
    progress.finish();
    if done.epoch >= f.train.epochs && resume {
        last_test = evaluate(&avb, &test, f.eval.batch_size as i64)?;
    }

    tch::manual_seed(epoch_seed(f.seed, 0) as i64);
    save_model(&players.named(), &run_dir)?;
    let batch_size = f.eval.batch_size as i64;
    let mse = reconstruction_mse(&avb, &test, batch_size)?;
    write_reconstructions_and_samples(&avb, &test, image_shape, config, &run_dir, device)?;
    let chain = crate::chains::evaluate_chains(&avb, config, &test.x, &run_dir, device)?;
    write_interpolations(&avb, &test, image_shape, f.eval.interpolations, &run_dir)?;
    write_latents(&avb, None, &test, &data, config, &run_dir)?;
    write_posterior_samples(&avb, &test, &data, config, &run_dir)?;
    let exact = exact_evaluation(&avb.decoder, &avb, &test, config)?;
    let log_likelihood = if f.eval.log_likelihood_k > 0 {
        let ll = estimate_log_likelihood(&avb, &test, config, input_dim)?;
        progress.line(&format!(
            "L_{} (moment-matched Gaussian proposal) = {:.4} nats on {} test images ({:.1} s)",
            ll.k, ll.value, ll.n_images, ll.seconds
        ));
        Some(ll)
    } else {
        None
    };
    let ais = if a.ais_steps > 0 {
        let ais = estimate_ais(&avb, &test, a)?;
        progress.line(&format!(
            "AIS ({} steps, {} chains, moment-matched Gaussian start) = {:.4} nats on {} test images (ESS {:.1}, {:.1} s)",
            ais.steps, ais.chains, ais.value, ais.n_images, ais.mean_ess, ais.seconds
        ));
        Some(ais)
    } else {
        None
    };
    if let Some(e) = exact {
        progress.line(&format!(
            "exact log p(x) by quadrature = {:.4} nats; aggregate KL(q(z) ‖ p(z)) ≈ {:.4}",
            e.log_likelihood, e.aggregate_kl
        ));
    }

    let summary = RunSummary {
        model: f.model.kind.to_string(),
        dataset: data.name.clone(),
        device: format!("{device:?}").to_lowercase(),
        run_dir: run_dir.path().to_path_buf(),
        test: TestSummary {
            elbo: Some(last_test.elbo),
            reconstruction: last_test.reconstruction,
            kl: Some(last_test.kl),
            reconstruction_mse: Some(mse),
            log_likelihood,
            active_units: None,
            dvae_bound: None,
            exact_log_likelihood: exact.map(|e| e.log_likelihood),
            aggregate_kl: exact.map(|e| e.aggregate_kl),
            bits_per_dim: None,
            prior_nll: None,
        },
        aae: None,
        vq: None,
        prior: None,
        avb: Some(AvbSummary {
            adaptive_contrast: a.adaptive_contrast,
            noise_injection: a.noise_injection,
            last_epoch: last_train,
            log_likelihood_proposal: format!(
                "moment-matched Gaussian of q(z|x) from {} draws",
                a.contrast_samples
            ),
            ais_log_likelihood: ais,
        }),
        peak_rss_mb: peak_rss_mb(),
        chain,
        train: TrainTotals {
            epochs: f.train.epochs,
            steps: step,
            seconds: train_seconds,
            examples_per_s: examples_trained as f64 / train_seconds,
            last_epoch: None,
        },
    };
    write_summary(&run_dir, &summary)?;
    Ok(summary)
}
