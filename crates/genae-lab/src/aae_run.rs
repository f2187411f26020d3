//! Training and evaluation of an adversarial autoencoder (`model.kind = "aae"`).
//!
//! Every step takes the three updates of Makhzani et al. (2016) on one batch, each player with
//! its own `VarStore` and Adam: (1) reconstruction, encoder and decoder on
//! `−log p(x|f(x))`; (2) the discriminator, prior samples as real and codes as fake;
//! (3) the generator, the encoder on `−log D(f(x))`.

use std::time::Instant;

use genae_data::batch::Prefetcher;
use genae_estimators::mmd_gaussian;
use genae_tensor::{seed_everything, tensor_from_u8_images};
use genae_zoo::{Aae, AaeConfig, AaeEncoderKind, GenerativeAutoencoder, LatentPrior};
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

use crate::config::{ConfigError, ValidConfig};
use crate::engine::{
    epoch_seed, load_training_checkpoint, peak_rss_mb, prepare_data, reconstruction_mse,
    run_device, save_model, save_training_checkpoint, to_json, training_batches, truncate_metrics,
    write_interpolations, write_latents, write_reconstructions_and_samples, write_summary,
    DeviceSplit, LabError, Players, Progressed, RunSummary, TestSummary, TrainTotals, CHECKPOINT,
};
use crate::optim::Adam;
use crate::progress::Progress;
use crate::run_dir::RunDir;

/// `[aae]`: the adversarial autoencoder's settings (the networks, latent size and likelihood
/// come from `[model]`, the reconstruction learning rate from `train.learning_rate`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AaeSection {
    /// `deterministic` (`z = f(x)`) or `gaussian` (a reparameterised draw of `q(z|x)`).
    pub encoder: AaeEncoderKind,
    /// The prior the codes are matched to: `{ kind = "gaussian" }`, `{ kind =
    /// "gaussian_mixture", components = 10, radius = 4.0, std = 0.5 }`, `{ kind = "uniform",
    /// half_width = 1.0 }` or `{ kind = "swiss_roll", turns = 1.5, noise = 0.05 }`.
    pub prior: LatentPrior,
    /// Hidden widths of the discriminator `D(z)`.
    pub discriminator_hidden: Vec<i64>,
    /// Adam learning rate of the discriminator.
    pub discriminator_learning_rate: f64,
    /// Adam learning rate of the generator (encoder) update.
    pub generator_learning_rate: f64,
    /// Adam's first-moment decay β₁ of the discriminator and generator updates (0.9, PyTorch's
    /// default; 0.5 is the usual choice for adversarial games).
    pub adversarial_beta1: f64,
    /// Give the discriminator each example's one-hot label and draw its prior sample from that
    /// label's mixture component (needs a `gaussian_mixture` prior with one component per
    /// class).
    pub condition_on_labels: bool,
}

impl Default for AaeSection {
    fn default() -> Self {
        Self {
            encoder: AaeEncoderKind::Deterministic,
            prior: LatentPrior::Gaussian,
            discriminator_hidden: vec![512, 512],
            discriminator_learning_rate: 1e-4,
            generator_learning_rate: 5e-4,
            adversarial_beta1: 0.9,
            condition_on_labels: false,
        }
    }
}

impl AaeSection {
    /// Whether every field has its default (then `config.toml` leaves the section out).
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }

    /// Checks the section for `latent_dim`-dimensional codes, naming the first bad field.
    pub(crate) fn validate(&self, latent_dim: i64) -> Result<(), ConfigError> {
        let invalid = |field: &'static str, reason: String| ConfigError::Invalid { field, reason };
        self.prior
            .validate(latent_dim)
            .map_err(|e| invalid("aae.prior", e.to_string()))?;
        if let Some(w) = self.discriminator_hidden.iter().find(|&&w| w < 1) {
            return Err(invalid(
                "aae.discriminator_hidden",
                format!("widths must be at least 1, got {w}"),
            ));
        }
        for (field, lr) in [
            (
                "aae.discriminator_learning_rate",
                self.discriminator_learning_rate,
            ),
            ("aae.generator_learning_rate", self.generator_learning_rate),
        ] {
            if !(lr.is_finite() && lr > 0.0) {
                return Err(invalid(
                    field,
                    format!("must be a positive finite number, got {lr}"),
                ));
            }
        }
        if !(0.0..1.0).contains(&self.adversarial_beta1) {
            return Err(invalid(
                "aae.adversarial_beta1",
                format!("must be in [0, 1), got {}", self.adversarial_beta1),
            ));
        }
        if self.condition_on_labels && !matches!(self.prior, LatentPrior::GaussianMixture { .. }) {
            return Err(invalid(
                "aae.condition_on_labels",
                format!(
                    "needs a `gaussian_mixture` prior (one component per class), got `{}`",
                    self.prior.name()
                ),
            ));
        }
        Ok(())
    }
}

/// Per-epoch averages of an AAE's training losses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct AdversarialMetrics {
    /// `E log p(x|f(x))` (nats per example).
    pub reconstruction: f64,
    /// The discriminator's binary cross-entropy (ln 2 ≈ 0.693 when it cannot tell).
    pub discriminator: f64,
    /// The generator's `−log D(f(x))`.
    pub generator: f64,
    /// Fraction of prior samples and codes the discriminator classifies correctly.
    pub discriminator_accuracy: f64,
}

/// Test numbers of an AAE after an epoch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct AaeTestMetrics {
    /// `E log p(x|f(x))` at the encoder mean (nats per example).
    pub reconstruction: f64,
    /// Mean squared error per pixel of the reconstructions.
    pub reconstruction_mse: f64,
}

/// One line of an AAE run's `metrics.jsonl`.
#[derive(Clone, Debug, Serialize)]
struct AaeEpochMetrics {
    epoch: usize,
    step: u64,
    train: AdversarialMetrics,
    test: AaeTestMetrics,
    seconds: f64,
    examples_per_s: f64,
    eval_seconds: f64,
}

/// `summary.json`'s `aae` section: how close the codes came to the prior.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AaeSummary {
    /// The prior's config name.
    pub prior: String,
    /// Unbiased MMD² (Gaussian kernel, median-heuristic bandwidth) between test codes and as
    /// many prior samples.
    pub prior_mmd: f64,
    /// Its kernel bandwidth.
    pub prior_mmd_bandwidth: f64,
    /// Test codes it was computed on.
    pub prior_mmd_points: i64,
    /// The last epoch's training losses.
    pub last_epoch: AdversarialMetrics,
}

/// Running sums of the step losses, on the device until read.
struct Sums {
    reconstruction: Tensor,
    discriminator: Tensor,
    generator: Tensor,
    accuracy: Tensor,
    steps: f64,
    examples: f64,
}

impl Sums {
    fn new(device: Device) -> Self {
        let zero = || Tensor::zeros([], (Kind::Double, device));
        Self {
            reconstruction: zero(),
            discriminator: zero(),
            generator: zero(),
            accuracy: zero(),
            steps: 0.0,
            examples: 0.0,
        }
    }

    fn means(&self) -> AdversarialMetrics {
        let read = |t: &Tensor, n: f64| t.double_value(&[]) / n.max(1.0);
        AdversarialMetrics {
            reconstruction: read(&self.reconstruction, self.examples),
            discriminator: read(&self.discriminator, self.steps),
            generator: read(&self.generator, self.steps),
            discriminator_accuracy: read(&self.accuracy, self.steps),
        }
    }
}

/// `E log p(x|f(x))` at the encoder mean, averaged over a split, in batches.
fn test_reconstruction(aae: &Aae, split: &DeviceSplit, batch_size: i64) -> Result<f64, LabError> {
    tch::no_grad(|| {
        let mut sum = 0.0;
        let mut start = 0;
        while start < split.n {
            let len = batch_size.min(split.n - start);
            let x = split.x.narrow(0, start, len);
            let ll = aae.reconstruction_log_likelihood(&x, &aae.code_mean(&x)?)?;
            sum += ll.sum(Kind::Double).double_value(&[]);
            start += len;
        }
        Ok(sum / split.n.max(1) as f64)
    })
}

/// Trains and evaluates an AAE run; the engine's [`crate::run_experiment`] and
/// [`crate::resume_experiment`] come here for `model.kind = "aae"`.
pub(crate) fn train_and_evaluate(
    config: &ValidConfig,
    run_dir: RunDir,
    resume: bool,
) -> Result<RunSummary, LabError> {
    let f = config.file();
    let a = &f.aae;
    let device = run_device(config)?;
    let data = prepare_data(config)?;
    let [c, h, w] = data.train.image_shape;
    let image_shape = [c as i64, h as i64, w as i64];
    let input_dim = image_shape.iter().product::<i64>();
    let n_classes = data.class_names.len() as i64;
    if a.condition_on_labels && n_classes == 0 {
        return Err(ConfigError::Invalid {
            field: "aae.condition_on_labels",
            reason: format!(
                "data set `{}` has no class names to condition on",
                data.name
            ),
        }
        .into());
    }

    seed_everything(f.seed);
    let n_train = data.train.len();
    let test = DeviceSplit::new(&data.test, device)?;
    let label_tensor = |labels: &[u32]| {
        let l: Vec<i64> = labels.iter().map(|&l| l as i64).collect();
        Tensor::from_slice(&l).to_device(device)
    };
    let test_labels = label_tensor(&data.test.labels);
    let players = Players::new(device);
    let model_config = AaeConfig {
        networks: config.vae_config(image_shape),
        encoder: a.encoder,
        discriminator_hidden: a.discriminator_hidden.clone(),
        prior: a.prior.clone(),
        label_classes: if a.condition_on_labels { n_classes } else { 0 },
    };
    let aae = Aae::new(
        &players.encoder.root(),
        &players.decoder.root(),
        &players.discriminator.root(),
        &model_config,
    )?;
    let lr = f.train.learning_rate;
    let mut reconstruct_encoder = Adam::new(&players.encoder, lr);
    let mut reconstruct_decoder = Adam::new(&players.decoder, lr);
    let mut discriminate = Adam::new(&players.discriminator, a.discriminator_learning_rate)
        .with_beta1(a.adversarial_beta1);
    let mut generate =
        Adam::new(&players.encoder, a.generator_learning_rate).with_beta1(a.adversarial_beta1);

    let done = if resume {
        let done = load_training_checkpoint(
            &players.named(),
            &mut [
                ("reconstruction.encoder.", &mut reconstruct_encoder),
                ("reconstruction.decoder.", &mut reconstruct_decoder),
                ("discriminator.", &mut discriminate),
                ("generator.", &mut generate),
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
        "genae: aae ({} encoder, {} prior{}) on {} ({n_train} train / {} test, {c}x{h}x{w}) on {device:?}, {} epochs → {}",
        format!("{:?}", a.encoder).to_lowercase(),
        a.prior.name(),
        if a.condition_on_labels { ", label-conditioned" } else { "" },
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
    let mut last_train = AdversarialMetrics::default();
    for epoch in done.epoch + 1..=f.train.epochs {
        tch::manual_seed(epoch_seed(f.seed, epoch) as i64);
        let started = Instant::now();
        let mut sums = Sums::new(device);
        let mut seen = 0usize;
        let batches = Prefetcher::epoch(data.train.clone(), batch_options, epoch as u64);
        for (b, batch) in batches.enumerate() {
            let len = batch.len() as i64;
            let x = tensor_from_u8_images(&batch.pixels, &[len, input_dim], device)?;
            let labels = a.condition_on_labels.then(|| label_tensor(&batch.labels));

            // (1) Reconstruction: encoder and decoder.
            let code = aae.code(&x)?;
            let log_lik = aae.reconstruction_log_likelihood(&x, &code)?;
            let reconstruction_loss = -log_lik.mean(Kind::Float);
            let value = reconstruction_loss.double_value(&[]);
            if !value.is_finite() {
                return Err(LabError::non_finite(
                    "reconstruction loss",
                    value,
                    epoch,
                    step + 1,
                ));
            }
            reconstruct_encoder.zero_grad();
            reconstruct_decoder.zero_grad();
            reconstruction_loss.backward();
            reconstruct_encoder.step();
            reconstruct_decoder.step();

            // (2) Discriminator, then (3) generator, on the updated encoder's codes.
            let code = aae.code(&x)?;
            let prior = aae.sample_prior_codes(len, labels.as_ref(), device)?;
            let d_loss = aae.discriminator_loss(&code, &prior, labels.as_ref())?;
            discriminate.backward_step(&d_loss.loss);
            let generator_loss = aae.generator_loss(&code, labels.as_ref())?;
            generate.backward_step(&generator_loss);
            let d_value = d_loss.loss.double_value(&[]);
            if !d_value.is_finite() {
                return Err(LabError::non_finite(
                    "discriminator loss",
                    d_value,
                    epoch,
                    step + 1,
                ));
            }

            sums.reconstruction += log_lik.detach().sum(Kind::Double);
            sums.discriminator += d_loss.loss.detach().to_kind(Kind::Double);
            sums.generator += generator_loss.detach().to_kind(Kind::Double);
            sums.accuracy += d_loss.accuracy.to_kind(Kind::Double);
            sums.steps += 1.0;
            sums.examples += len as f64;
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
        last_train = sums.means();
        let seconds = started.elapsed().as_secs_f64();
        train_seconds += seconds;
        examples_trained += seen;
        if !last_train.generator.is_finite() {
            return Err(LabError::non_finite(
                "generator loss",
                last_train.generator,
                epoch,
                step,
            ));
        }

        let eval_started = Instant::now();
        let batch_size = f.eval.batch_size as i64;
        let test_metrics = AaeTestMetrics {
            reconstruction: test_reconstruction(&aae, &test, batch_size)?,
            reconstruction_mse: reconstruction_mse(&aae, &test, batch_size)?,
        };
        if !test_metrics.reconstruction.is_finite() {
            return Err(LabError::non_finite(
                "test reconstruction",
                test_metrics.reconstruction,
                epoch,
                step,
            ));
        }
        let metrics = AaeEpochMetrics {
            epoch,
            step,
            train: last_train,
            test: test_metrics,
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
                    ("reconstruction.encoder.", &reconstruct_encoder),
                    ("reconstruction.decoder.", &reconstruct_decoder),
                    ("discriminator.", &discriminate),
                    ("generator.", &generate),
                ],
                done,
                &run_dir,
            )?;
        }
        if f.eval.every > 0 && epoch % f.eval.every == 0 && epoch < f.train.epochs {
            save_model(&players.named(), &run_dir)?;
        }
        progress.line(&format!(
            "epoch {epoch:>3}/{}: train rec {:9.3}  D loss {:.3} (acc {:.2})  G loss {:.3}  test rec {:9.3} (MSE {:.4})  {:6.1} s",
            f.train.epochs,
            last_train.reconstruction,
            last_train.discriminator,
            last_train.discriminator_accuracy,
            last_train.generator,
            test_metrics.reconstruction,
            test_metrics.reconstruction_mse,
            seconds
        ));
    }
    progress.finish();

    tch::manual_seed(epoch_seed(f.seed, 0) as i64);
    save_model(&players.named(), &run_dir)?;
    let batch_size = f.eval.batch_size as i64;
    let reconstruction = test_reconstruction(&aae, &test, batch_size)?;
    let mse = reconstruction_mse(&aae, &test, batch_size)?;

    // How far the test codes are from the prior (labelled draws when conditioned).
    let n_mmd = (f.eval.latent_points as i64)
        .clamp(2, test.n.max(2))
        .min(test.n);
    let (prior_mmd, prior_draws) = if n_mmd >= 2 {
        let codes = aae.encode_sample(&test.x.narrow(0, 0, n_mmd))?;
        let labels = a
            .condition_on_labels
            .then(|| test_labels.narrow(0, 0, n_mmd));
        let draws = aae.sample_prior_codes(n_mmd, labels.as_ref(), device)?;
        (Some(mmd_gaussian(&codes, &draws, None)?), Some(draws))
    } else {
        (None, None)
    };

    write_reconstructions_and_samples(&aae, &test, image_shape, config, &run_dir, device)?;
    let chain = crate::chains::evaluate_chains(&aae, config, &test.x, &run_dir, device)?;
    write_interpolations(&aae, &test, image_shape, f.eval.interpolations, &run_dir)?;
    write_latents(&aae, prior_draws.as_ref(), &test, &data, config, &run_dir)?;

    let summary = RunSummary {
        model: f.model.kind.to_string(),
        dataset: data.name.clone(),
        device: format!("{device:?}").to_lowercase(),
        run_dir: run_dir.path().to_path_buf(),
        test: TestSummary {
            elbo: None,
            reconstruction,
            kl: None,
            reconstruction_mse: Some(mse),
            log_likelihood: None,
            active_units: None,
            bits_per_dim: None,
            prior_nll: None,
            dvae_bound: None,
            exact_log_likelihood: None,
            aggregate_kl: None,
        },
        vq: None,
        prior: None,
        aae: prior_mmd.map(|m| AaeSummary {
            prior: a.prior.name().to_string(),
            prior_mmd: m.mmd2,
            prior_mmd_bandwidth: m.bandwidth,
            prior_mmd_points: n_mmd,
            last_epoch: last_train,
        }),
        avb: None,
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
    progress_summary(&summary);
    Ok(summary)
}

fn progress_summary(summary: &RunSummary) {
    if let Some(a) = &summary.aae {
        eprintln!(
            "test reconstruction {:.3} nats (MSE {:.4}); prior MMD² {:.4} on {} codes",
            summary.test.reconstruction,
            summary.test.reconstruction_mse.unwrap_or(f64::NAN),
            a.prior_mmd,
            a.prior_mmd_points
        );
    }
}
