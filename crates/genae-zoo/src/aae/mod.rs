//! The adversarial autoencoder (Makhzani et al., 2016): an autoencoder whose codes are pushed
//! towards a prior by a discriminator on the latent space.

use serde::{Deserialize, Serialize};
use tch::{nn, nn::Module, Device, Kind, Tensor};

use crate::networks::{bce_with_logits, flatten_input};
use crate::{
    Activation, Decoder, DeterministicEncoder, GaussianEncoder, GenerativeAutoencoder,
    GenerativeDecoder, LatentPrior, LatentSpace, Mlp, Result, VaeConfig, ZooError,
};

/// What the AAE's encoder outputs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AaeEncoderKind {
    /// `z = f(x)`.
    #[default]
    Deterministic,
    /// `z ~ N(μ(x), σ²(x))`, drawn with the reparameterisation trick.
    Gaussian,
}

/// The [`Aae`]'s config.
///
/// ```
/// use genae_zoo::{AaeConfig, LatentPrior, VaeConfig};
///
/// let config = AaeConfig {
///     networks: VaeConfig { input_dim: 16, hidden: vec![8], latent_dim: 2, ..Default::default() },
///     prior: LatentPrior::Uniform { half_width: 1.0 },
///     ..Default::default()
/// };
/// config.validate().unwrap();
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AaeConfig {
    /// Encoder and decoder networks, latent size and likelihood (as for the VAE).
    pub networks: VaeConfig,
    /// Deterministic or Gaussian encoder.
    #[serde(default)]
    pub encoder: AaeEncoderKind,
    /// Hidden widths of the discriminator `D(z)` (one logit out).
    pub discriminator_hidden: Vec<i64>,
    /// The prior the codes are matched to.
    #[serde(default)]
    pub prior: LatentPrior,
    /// Number of classes whose one-hot label the discriminator also sees (0: none). With
    /// labels, prior samples come from the mixture component of each example's label
    /// (needs `prior = gaussian_mixture` with as many components).
    #[serde(default)]
    pub label_classes: i64,
    /// Weight `γ` of the R1 gradient penalty on the discriminator (Mescheder et al. 2018):
    /// `γ/2 · E‖∇_z D(z)‖²` over prior draws, added to its loss (0: none). It keeps `D`
    /// smooth where the prior is, so it cannot grow arbitrarily sharp against codes the
    /// encoder cannot move (for example misclassified ones in a label-conditioned AAE).
    #[serde(default)]
    pub discriminator_r1: f64,
    /// Weight `λ` of the gradient penalty of Gulrajani et al. (2017) on the discriminator:
    /// `λ · E(‖∇_z D(ẑ)‖ − 1)²` at points `ẑ = u·prior + (1 − u)·code`, `u ~ U(0, 1)`, on the
    /// segments between each code and its prior draw (same label), added to its loss (0:
    /// none). Unlike R1 it shapes `D` between the codes and the prior, so the generator gets a
    /// gradient of about unit size towards the prior even where `D` is sure.
    #[serde(default)]
    pub discriminator_gp: f64,
    /// One-sided label smoothing `s` (Salimans et al. 2016): the discriminator's target for
    /// prior draws is `1 − s` instead of 1 (codes stay 0). In `[0, 0.5)`.
    #[serde(default)]
    pub label_smoothing: f64,
}

impl Default for AaeConfig {
    fn default() -> Self {
        Self {
            networks: VaeConfig::default(),
            encoder: AaeEncoderKind::Deterministic,
            discriminator_hidden: vec![512, 512],
            prior: LatentPrior::Gaussian,
            label_classes: 0,
            discriminator_r1: 0.0,
            discriminator_gp: 0.0,
            label_smoothing: 0.0,
        }
    }
}

impl AaeConfig {
    /// Checks every field, naming the first bad one.
    pub fn validate(&self) -> Result<()> {
        self.networks.validate()?;
        self.prior.validate(self.networks.latent_dim)?;
        if let Some(w) = self.discriminator_hidden.iter().find(|&&w| w <= 0) {
            return Err(ZooError::InvalidConfig {
                field: "discriminator_hidden",
                reason: format!(
                    "widths must be positive, got {w} in {:?}",
                    self.discriminator_hidden
                ),
            });
        }
        if self.label_classes < 0 {
            return Err(ZooError::InvalidConfig {
                field: "label_classes",
                reason: format!("must be ≥ 0, got {}", self.label_classes),
            });
        }
        if !(self.discriminator_r1.is_finite() && self.discriminator_r1 >= 0.0) {
            return Err(ZooError::InvalidConfig {
                field: "discriminator_r1",
                reason: format!("must be a finite number ≥ 0, got {}", self.discriminator_r1),
            });
        }
        if !(self.discriminator_gp.is_finite() && self.discriminator_gp >= 0.0) {
            return Err(ZooError::InvalidConfig {
                field: "discriminator_gp",
                reason: format!("must be a finite number ≥ 0, got {}", self.discriminator_gp),
            });
        }
        if !(0.0..0.5).contains(&self.label_smoothing) {
            return Err(ZooError::InvalidConfig {
                field: "label_smoothing",
                reason: format!("must be in [0, 0.5), got {}", self.label_smoothing),
            });
        }
        if self.label_classes > 0 {
            match self.prior {
                LatentPrior::GaussianMixture { components, .. }
                    if components == self.label_classes => {}
                _ => {
                    return Err(ZooError::InvalidConfig {
                        field: "label_classes",
                        reason: format!(
                            "conditioning on {} labels needs a `gaussian_mixture` prior with \
                             {} components, got {:?}",
                            self.label_classes, self.label_classes, self.prior
                        ),
                    })
                }
            }
        }
        Ok(())
    }
}

/// The AAE's encoder.
#[derive(Debug)]
pub enum AaeEncoder {
    /// `z = f(x)`.
    Deterministic(DeterministicEncoder),
    /// `q(z|x) = N(μ(x), σ²(x))`.
    Gaussian(GaussianEncoder),
}

impl AaeEncoder {
    /// The encoder of `kind` for `networks`, its parameters under `path`.
    pub fn new(path: &nn::Path, networks: &VaeConfig, kind: AaeEncoderKind) -> Result<Self> {
        Ok(match kind {
            AaeEncoderKind::Deterministic => {
                Self::Deterministic(DeterministicEncoder::from_config(path, networks)?)
            }
            AaeEncoderKind::Gaussian => {
                Self::Gaussian(GaussianEncoder::from_config(path, networks)?)
            }
        })
    }

    /// Codes `[N, d]` with gradients: `f(x)`, or a reparameterised draw of `q(z|x)`.
    pub fn code(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            Self::Deterministic(e) => e.encode(x),
            Self::Gaussian(e) => Ok(e.encode(x)?.rsample()),
        }
    }

    /// `f(x)`, or the mean of `q(z|x)`, with gradients.
    pub fn code_mean(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            Self::Deterministic(e) => e.encode(x),
            Self::Gaussian(e) => Ok(e.encode(x)?.mean().shallow_clone()),
        }
    }
}

/// The discriminator's side of an AAE step.
#[derive(Debug)]
pub struct DiscriminatorLoss {
    /// Binary cross-entropy with prior samples as 1 and codes as 0 (the mean of both
    /// halves' means; `ln 2` when it cannot tell them apart). A scalar.
    pub loss: Tensor,
    /// Fraction of prior samples and codes classified correctly (a scalar, no gradient).
    pub accuracy: Tensor,
    /// `E‖∇_z D(z)‖²` over the prior draws (a scalar, part of `loss`) when
    /// `discriminator_r1 > 0`; `None` otherwise (not computed).
    pub prior_gradient_sq: Option<Tensor>,
    /// `E(‖∇_z D(ẑ)‖ − 1)²` at the interpolates (a scalar, part of `loss`) when
    /// `discriminator_gp > 0`; `None` otherwise.
    pub interpolate_penalty: Option<Tensor>,
}

/// An adversarial autoencoder: encoder `x ↦ z`, decoder `z ↦ p(x|z)` and a discriminator
/// `D(z)` (or `D(z, label)`) on the latent space. Its three parts live under three paths, so
/// each player can have its own `VarStore` and optimiser: reconstruction updates encoder and
/// decoder, the discriminator update separates prior samples (real) from codes (fake), and the
/// generator update moves the encoder to fool the discriminator.
///
/// ```
/// use genae_zoo::{Aae, AaeConfig, VaeConfig};
/// use tch::{nn, Device, Kind, Tensor};
///
/// let (enc, dec, disc) = (
///     nn::VarStore::new(Device::Cpu),
///     nn::VarStore::new(Device::Cpu),
///     nn::VarStore::new(Device::Cpu),
/// );
/// let config = AaeConfig {
///     networks: VaeConfig { input_dim: 12, hidden: vec![8], latent_dim: 2, ..Default::default() },
///     discriminator_hidden: vec![16],
///     ..Default::default()
/// };
/// let aae = Aae::new(&enc.root(), &dec.root(), &disc.root(), &config).unwrap();
/// let x = Tensor::rand([5, 12], (Kind::Float, Device::Cpu)).round();
/// let code = aae.code(&x).unwrap();
/// assert_eq!(aae.reconstruction_log_likelihood(&x, &code).unwrap().size(), vec![5]);
/// let prior = aae.sample_prior_codes(5, None, Device::Cpu).unwrap();
/// let d = aae.discriminator_loss(&code, &prior, None).unwrap();
/// assert!(d.loss.double_value(&[]) > 0.0);
/// let g = aae.generator_loss(&code, None).unwrap();
/// assert_eq!(g.size(), Vec::<i64>::new());
/// ```
#[derive(Debug)]
pub struct Aae {
    /// `x ↦ z`.
    pub encoder: AaeEncoder,
    /// `z ↦ p(x|z)`.
    pub decoder: Decoder,
    /// `z (⊕ one-hot label) ↦ logit` that `z` came from the prior.
    pub discriminator: Mlp,
    config: AaeConfig,
}

impl Aae {
    /// An AAE with encoder, decoder and discriminator parameters under the three paths.
    pub fn new(
        encoder: &nn::Path,
        decoder: &nn::Path,
        discriminator: &nn::Path,
        config: &AaeConfig,
    ) -> Result<Self> {
        config.validate()?;
        let encoder = AaeEncoder::new(encoder, &config.networks, config.encoder)?;
        let mut widths = config.discriminator_hidden.clone();
        widths.push(1);
        let discriminator = Mlp::new(
            discriminator,
            config.networks.latent_dim + config.label_classes,
            &widths,
            Activation::LeakyRelu,
            false,
        )?;
        Ok(Self {
            encoder,
            decoder: Decoder::new(decoder, &config.networks)?,
            discriminator,
            config: config.clone(),
        })
    }

    /// The config the model was built from.
    pub fn config(&self) -> &AaeConfig {
        &self.config
    }

    /// Codes `[N, d]` with gradients: `f(x)`, or a reparameterised draw of `q(z|x)`.
    pub fn code(&self, x: &Tensor) -> Result<Tensor> {
        self.encoder.code(x)
    }

    /// `f(x)`, or the mean of `q(z|x)`, with gradients.
    pub fn code_mean(&self, x: &Tensor) -> Result<Tensor> {
        self.encoder.code_mean(x)
    }

    /// `log p(x|z)` per example `[N]` (differentiable; the negative reconstruction loss).
    pub fn reconstruction_log_likelihood(&self, x: &Tensor, z: &Tensor) -> Result<Tensor> {
        let flat = flatten_input(
            x,
            self.config.networks.input_dim,
            "reconstruction_log_likelihood",
        )?;
        self.decoder.log_likelihood(&flat, z)
    }

    /// `n` prior draws `[n, d]`; with `labels` (`[n]`), each from its label's component.
    pub fn sample_prior_codes(
        &self,
        n: i64,
        labels: Option<&Tensor>,
        device: Device,
    ) -> Result<Tensor> {
        let d = self.config.networks.latent_dim;
        match labels {
            Some(l) => self.config.prior.sample_for_labels(l, d),
            None => self.config.prior.sample(n, d, device),
        }
    }

    /// Discriminator logits `[N]` for codes `[N, d]` (and labels `[N]` when the model is
    /// label-conditioned).
    pub fn discriminator_logits(&self, z: &Tensor, labels: Option<&Tensor>) -> Result<Tensor> {
        let d = self.config.networks.latent_dim;
        if z.dim() != 2 || z.size()[1] != d {
            return Err(ZooError::Shape {
                what: "discriminator_logits",
                detail: format!("codes must be [N, {d}], got {:?}", z.size()),
            });
        }
        let input = match (self.config.label_classes, labels) {
            (0, _) => z.shallow_clone(),
            (k, Some(l)) => {
                let one_hot = l.f_to_kind(Kind::Int64)?.f_one_hot(k)?.to_kind(z.kind());
                Tensor::f_cat(&[z, &one_hot], 1)?
            }
            (k, None) => {
                return Err(ZooError::InvalidConfig {
                    field: "label_classes",
                    reason: format!(
                        "the discriminator is conditioned on {k} labels, but none were given"
                    ),
                })
            }
        };
        Ok(self.discriminator.forward(&input).squeeze_dim(1))
    }

    /// The discriminator's loss for `codes` (from the encoder; used detached, so the
    /// gradient reaches only the discriminator) against `prior_codes`.
    pub fn discriminator_loss(
        &self,
        codes: &Tensor,
        prior_codes: &Tensor,
        labels: Option<&Tensor>,
    ) -> Result<DiscriminatorLoss> {
        let r1 = self.config.discriminator_r1;
        // With R1 the prior draws are a leaf that takes gradients, for ∇_z D(z).
        let prior_codes = prior_codes.detach().f_set_requires_grad(r1 > 0.0)?;
        let real = self.discriminator_logits(&prior_codes, labels)?;
        let fake = self.discriminator_logits(&codes.detach(), labels)?;
        let real_target = 1.0 - self.config.label_smoothing;
        let mut loss = (bce_with_logits(&real, real_target) + bce_with_logits(&fake, 0.0)) * 0.5;
        let prior_gradient_sq = if r1 > 0.0 {
            let gradient =
                Tensor::f_run_backward(&[real.f_sum(Kind::Float)?], &[&prior_codes], true, true)?;
            let sq = gradient[0]
                .f_square()?
                .f_sum_dim_intlist(1, false, Kind::Float)?
                .f_mean(Kind::Float)?;
            loss += &sq * (0.5 * r1);
            Some(sq)
        } else {
            None
        };
        let gp = self.config.discriminator_gp;
        let interpolate_penalty = if gp > 0.0 {
            let penalty = self.interpolate_penalty(codes, &prior_codes, labels)?;
            loss += &penalty * gp;
            Some(penalty)
        } else {
            None
        };
        let accuracy = tch::no_grad(|| {
            let right = real.gt(0.0).to_kind(Kind::Float).sum(Kind::Float)
                + fake.le(0.0).to_kind(Kind::Float).sum(Kind::Float);
            right / (real.size()[0] + fake.size()[0]) as f64
        });
        Ok(DiscriminatorLoss {
            loss,
            accuracy,
            prior_gradient_sq,
            interpolate_penalty,
        })
    }

    /// `E(‖∇_z D(ẑ)‖ − 1)²` at `ẑ = u·prior + (1 − u)·code` (one `u ~ U(0, 1)` per row), with
    /// the graph kept so that it trains the discriminator.
    fn interpolate_penalty(
        &self,
        codes: &Tensor,
        prior_codes: &Tensor,
        labels: Option<&Tensor>,
    ) -> Result<Tensor> {
        let n = codes.size()[0];
        let u = genae_tensor::noise::rand(&[n, 1], 0, (codes.kind(), codes.device()))?;
        let fake = codes.detach();
        let between: Tensor = &fake + (prior_codes.detach() - &fake) * &u;
        let between = between.f_set_requires_grad(true)?;
        let logits = self.discriminator_logits(&between, labels)?;
        let gradient =
            Tensor::f_run_backward(&[logits.f_sum(Kind::Float)?], &[&between], true, true)?;
        let norm = gradient[0]
            .f_square()?
            .f_sum_dim_intlist(1, false, Kind::Float)?
            .f_add_scalar(1e-12)?
            .f_sqrt()?;
        Ok((norm - 1.0).f_square()?.f_mean(Kind::Float)?)
    }

    /// The generator's (encoder's) non-saturating loss `−log D(codes)`, averaged: its gradient
    /// reaches the encoder through `codes` (and the discriminator, whose optimiser must not
    /// step on it).
    pub fn generator_loss(&self, codes: &Tensor, labels: Option<&Tensor>) -> Result<Tensor> {
        Ok(bce_with_logits(
            &self.discriminator_logits(codes, labels)?,
            1.0,
        ))
    }

    /// Decoder means at [`Aae::code_mean`]: deterministic reconstructions `[N, D]`.
    pub fn reconstruct(&self, x: &Tensor) -> Result<Tensor> {
        tch::no_grad(|| self.decoder.mean(&self.code_mean(x)?))
    }
}

impl GenerativeDecoder for Aae {
    fn decode_mean(&self, z: &Tensor) -> Result<Tensor> {
        self.decoder.mean(z)
    }
}

impl LatentSpace for Aae {
    fn latent_dim(&self) -> i64 {
        self.config.networks.latent_dim
    }
}

/// Codes from the encoder (a draw of `q(z|x)` for the Gaussian encoder, `f(x)` otherwise),
/// data from the decoder's likelihood, and prior draws from the configured [`LatentPrior`]
/// (unconditioned).
impl GenerativeAutoencoder for Aae {
    fn encode_sample(&self, x: &Tensor) -> Result<Tensor> {
        tch::no_grad(|| self.code(x))
    }

    fn encode_mean(&self, x: &Tensor) -> Result<Tensor> {
        tch::no_grad(|| self.code_mean(x))
    }

    fn decode_sample(&self, z: &Tensor) -> Result<Tensor> {
        self.decoder.sample(z)
    }

    fn sample_prior(&self, n: i64, device: Device) -> Result<Tensor> {
        self.sample_prior_codes(n, None, device)
    }
}

#[cfg(test)]
mod tests;
