//! The sections of the adversarial and Wasserstein autoencoders: `[aae]`, `[avb]` and
//! `[wae]`, each valid only with its own `model.kind`.

use genae_zoo::{AaeEncoderKind, LatentPrior, NoiseInjection};
use serde::{Deserialize, Serialize};

use crate::error::ConfigError;

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
    /// Weight `γ` of the R1 gradient penalty `γ/2 · E‖∇_z D(z)‖²` on prior draws, added to the
    /// discriminator's loss (Mescheder et al. 2018; 0: none).
    pub discriminator_r1: f64,
    /// Weight `λ` of the gradient penalty `λ · E(‖∇_z D(ẑ)‖ − 1)²` at random points between
    /// codes and their prior draws (Gulrajani et al. 2017; 0: none).
    pub discriminator_gp: f64,
    /// One-sided label smoothing: the discriminator's target for prior draws is `1 − s`
    /// (Salimans et al. 2016; 0: none; below 0.5).
    pub label_smoothing: f64,
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
            discriminator_r1: 0.0,
            discriminator_gp: 0.0,
            label_smoothing: 0.0,
        }
    }
}

impl AaeSection {
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
        if !(self.discriminator_r1.is_finite() && self.discriminator_r1 >= 0.0) {
            return Err(invalid(
                "aae.discriminator_r1",
                format!("must be a finite number ≥ 0, got {}", self.discriminator_r1),
            ));
        }
        if !(self.discriminator_gp.is_finite() && self.discriminator_gp >= 0.0) {
            return Err(invalid(
                "aae.discriminator_gp",
                format!("must be a finite number ≥ 0, got {}", self.discriminator_gp),
            ));
        }
        if !(0.0..0.5).contains(&self.label_smoothing) {
            return Err(invalid(
                "aae.label_smoothing",
                format!("must be in [0, 0.5), got {}", self.label_smoothing),
            ));
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

/// The kernel of the WAE's MMD penalty.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WaeKernel {
    /// The inverse multiquadratic kernel `C / (C + ‖z − z'‖²)`, summed over the scales
    /// `C = 2 d σ² · s` for `s ∈ {0.1, 0.2, 0.5, 1, 2, 5, 10}` (Tolstikhin et al., 2018).
    InverseMultiquadratic,
    /// The Gaussian kernel `exp(−‖z − z'‖² / (2h²))` with the median-heuristic bandwidth.
    Gaussian,
}

/// `[wae]`: the Wasserstein autoencoder with the MMD penalty (WAE-MMD, Tolstikhin et al.,
/// 2018). The networks, latent size and likelihood come from `[model]`; the prior is
/// `N(0, I)`. The objective per batch is `−E log p(x|z) + λ · MMD²(q(z), p(z))`, the MMD
/// between the batch's codes and as many prior draws.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WaeSection {
    /// `deterministic` (`z = f(x)`, the paper's choice) or `gaussian` (a reparameterised draw
    /// of `q(z|x)`).
    pub encoder: AaeEncoderKind,
    /// The weight λ of the MMD term (the paper's 10).
    pub lambda: f64,
    /// The MMD kernel.
    pub kernel: WaeKernel,
}

impl Default for WaeSection {
    fn default() -> Self {
        Self {
            encoder: AaeEncoderKind::Deterministic,
            lambda: 10.0,
            kernel: WaeKernel::InverseMultiquadratic,
        }
    }
}

impl WaeSection {
    /// Checks the section, naming the first bad field.
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        if !(self.lambda.is_finite() && self.lambda >= 0.0) {
            return Err(ConfigError::Invalid {
                field: "wae.lambda",
                reason: format!("must be a finite number ≥ 0, got {}", self.lambda),
            });
        }
        Ok(())
    }
}
