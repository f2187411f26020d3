//! The adversarial autoencoder (Makhzani et al., 2016): an autoencoder whose codes are pushed
//! towards a prior by a discriminator on the latent space.

use serde::{Deserialize, Serialize};
use tch::{nn, nn::Module, Device, Kind, Tensor};

use crate::networks::flatten_input;
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

fn bce_with_logits(logits: &Tensor, target: f64) -> Tensor {
    logits.binary_cross_entropy_with_logits::<Tensor>(
        &logits.full_like(target),
        None,
        None,
        tch::Reduction::Mean,
    )
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
mod tests {
    use super::*;

    fn stores() -> [nn::VarStore; 3] {
        [(); 3].map(|_| nn::VarStore::new(Device::Cpu))
    }

    fn config(latent_dim: i64) -> AaeConfig {
        AaeConfig {
            networks: VaeConfig {
                input_dim: 6,
                hidden: vec![16],
                latent_dim,
                ..Default::default()
            },
            discriminator_hidden: vec![32, 32],
            ..Default::default()
        }
    }

    #[test]
    fn parameters_live_in_the_three_players_stores() {
        let _rng = crate::torch_rng_lock();
        let [e, d, c] = stores();
        let _aae = Aae::new(&e.root(), &d.root(), &c.root(), &config(2)).unwrap();
        assert!(!e.variables().is_empty() && !d.variables().is_empty());
        // The discriminator: 2 → 32 → 32 → 1.
        let n: i64 = c.variables().values().map(|t| t.numel() as i64).sum();
        assert_eq!(n, 2 * 32 + 32 + 32 * 32 + 32 + 32 + 1);
    }

    #[test]
    fn discriminator_loss_reaches_only_the_discriminator() {
        let _rng = crate::torch_rng_lock();
        let [e, d, c] = stores();
        let aae = Aae::new(&e.root(), &d.root(), &c.root(), &config(2)).unwrap();
        let x = Tensor::rand([8, 6], (Kind::Float, Device::Cpu));
        let codes = aae.code(&x).unwrap();
        let prior = aae.sample_prior_codes(8, None, Device::Cpu).unwrap();
        let d_loss = aae.discriminator_loss(&codes, &prior, None).unwrap();
        d_loss.loss.backward();
        assert!(e.trainable_variables().iter().all(|t| !t.grad().defined()));
        assert!(c.trainable_variables().iter().all(|t| t.grad().defined()));
        aae.generator_loss(&codes, None).unwrap().backward();
        assert!(e.trainable_variables().iter().all(|t| t.grad().defined()));
    }

    #[test]
    fn discriminator_learns_the_log_density_ratio_of_two_gaussians() {
        let _rng = crate::torch_rng_lock();
        // Real N(1, 1), fake N(−1, 1) in 1-d: the optimal logit is log p_real/p_fake = 2z.
        tch::manual_seed(31);
        let [e, d, c] = stores();
        let mut cfg = config(1);
        cfg.discriminator_hidden = vec![32];
        let aae = Aae::new(&e.root(), &d.root(), &c.root(), &cfg).unwrap();
        let mut opt = nn::OptimizerConfig::build(nn::Adam::default(), &c, 3e-3).unwrap();
        for _ in 0..1500 {
            let real = Tensor::randn([256, 1], (Kind::Float, Device::Cpu)) + 1.0;
            let fake = Tensor::randn([256, 1], (Kind::Float, Device::Cpu)) - 1.0;
            let d_loss = aae.discriminator_loss(&fake, &real, None).unwrap();
            opt.backward_step(&d_loss.loss);
        }
        let z = Tensor::linspace(-1.5, 1.5, 7, (Kind::Float, Device::Cpu)).unsqueeze(1);
        let logits = tch::no_grad(|| aae.discriminator_logits(&z, None)).unwrap();
        let err = (logits - z.squeeze_dim(1) * 2.0)
            .abs()
            .max()
            .double_value(&[]);
        assert!(err < 0.35, "max |T(z) − 2z| = {err}");
    }

    #[test]
    fn r1_penalty_of_a_linear_discriminator_is_its_weight_norm() {
        let _rng = crate::torch_rng_lock();
        // D(z) = w·z + b: ∇_z D = w everywhere, so E‖∇D‖² = ‖w‖² and the penalty's gradient
        // with respect to w is γ·w.
        tch::manual_seed(12);
        let [e, d, c] = stores();
        let mut cfg = config(3);
        cfg.discriminator_hidden = vec![];
        cfg.discriminator_r1 = 10.0;
        let aae = Aae::new(&e.root(), &d.root(), &c.root(), &cfg).unwrap();
        let (w, _) = c
            .variables()
            .into_iter()
            .find(|(name, _)| name.ends_with("weight"))
            .map(|(_, t)| (t.shallow_clone(), ()))
            .unwrap();
        let w_sq = w.square().sum(Kind::Double).double_value(&[]);
        let codes = Tensor::randn([16, 3], (Kind::Float, Device::Cpu));
        let prior = Tensor::randn([16, 3], (Kind::Float, Device::Cpu));
        let with = aae.discriminator_loss(&codes, &prior, None).unwrap();
        let sq = with.prior_gradient_sq.as_ref().unwrap().double_value(&[]);
        assert!((sq - w_sq).abs() < 1e-5 * w_sq.max(1.0));
        // The loss without the penalty, by hand.
        let real = tch::no_grad(|| aae.discriminator_logits(&prior, None)).unwrap();
        let fake = tch::no_grad(|| aae.discriminator_logits(&codes, None)).unwrap();
        let softplus = |t: Tensor| t.exp().log1p().mean(Kind::Double).double_value(&[]);
        let bce = 0.5 * (softplus(-real) + softplus(fake));
        let total = with.loss.double_value(&[]);
        assert!(
            (total - (bce + 5.0 * w_sq)).abs() < 1e-4,
            "{total} vs {bce} + 5·{w_sq}"
        );
        // The penalty's gradient on w is γ·w (the BCE part is measured by subtraction).
        with.loss.backward();
        let grad_with = w.grad().copy();
        cfg.discriminator_r1 = 0.0;
        let [e2, d2, mut c2] = stores();
        let plain = Aae::new(&e2.root(), &d2.root(), &c2.root(), &cfg).unwrap();
        c2.copy(&c).unwrap();
        let without = plain.discriminator_loss(&codes, &prior, None).unwrap();
        assert!(without.prior_gradient_sq.is_none());
        without.loss.backward();
        let w2 = c2
            .variables()
            .into_iter()
            .find(|(name, _)| name.ends_with("weight"))
            .unwrap()
            .1;
        let penalty_grad = grad_with - w2.grad();
        let err = (penalty_grad - &w * 10.0).abs().max().double_value(&[]);
        assert!(err < 1e-4, "∂penalty/∂w − γw = {err}");
    }

    #[test]
    fn interpolate_penalty_of_a_linear_discriminator_is_its_weight_norm_minus_one() {
        let _rng = crate::torch_rng_lock();
        // D(z) = w·z + b has ∇D = w at every interpolate: the penalty is (‖w‖ − 1)² and the
        // loss grows by λ times it.
        tch::manual_seed(13);
        let [e, d, c] = stores();
        let mut cfg = config(3);
        cfg.discriminator_hidden = vec![];
        cfg.discriminator_gp = 10.0;
        let aae = Aae::new(&e.root(), &d.root(), &c.root(), &cfg).unwrap();
        let w = c
            .variables()
            .into_iter()
            .find(|(name, _)| name.ends_with("weight"))
            .unwrap()
            .1;
        let norm = w.square().sum(Kind::Double).sqrt().double_value(&[]);
        let codes = Tensor::randn([16, 3], (Kind::Float, Device::Cpu));
        let prior = Tensor::randn([16, 3], (Kind::Float, Device::Cpu));
        let out = aae.discriminator_loss(&codes, &prior, None).unwrap();
        let penalty = out.interpolate_penalty.unwrap().double_value(&[]);
        let want = (norm - 1.0).powi(2);
        assert!(
            (penalty - want).abs() < 1e-5,
            "{penalty} vs (‖w‖ − 1)² = {want}"
        );
        let real = tch::no_grad(|| aae.discriminator_logits(&prior, None)).unwrap();
        let fake = tch::no_grad(|| aae.discriminator_logits(&codes, None)).unwrap();
        let softplus = |t: Tensor| t.exp().log1p().mean(Kind::Double).double_value(&[]);
        let bce = 0.5 * (softplus(-real) + softplus(fake));
        let total = out.loss.double_value(&[]);
        assert!((total - (bce + 10.0 * want)).abs() < 1e-4, "{total}");
        cfg.discriminator_gp = f64::NAN;
        let err = cfg.validate().unwrap_err().to_string();
        assert!(err.contains("discriminator_gp"), "{err}");
    }

    #[test]
    fn label_smoothing_moves_the_real_target() {
        let _rng = crate::torch_rng_lock();
        // With s = 0.2 the real half of the loss is BCE(logit, 0.8) = softplus(−l) + 0.2·l.
        let [e, d, c] = stores();
        let mut cfg = config(2);
        cfg.label_smoothing = 0.2;
        let aae = Aae::new(&e.root(), &d.root(), &c.root(), &cfg).unwrap();
        let codes = Tensor::randn([8, 2], (Kind::Float, Device::Cpu));
        let prior = Tensor::randn([8, 2], (Kind::Float, Device::Cpu));
        let loss = aae
            .discriminator_loss(&codes, &prior, None)
            .unwrap()
            .loss
            .double_value(&[]);
        let real = tch::no_grad(|| aae.discriminator_logits(&prior, None)).unwrap();
        let fake = tch::no_grad(|| aae.discriminator_logits(&codes, None)).unwrap();
        let softplus = |t: &Tensor| t.exp().log1p();
        let real_half = (softplus(&-&real) + &real * 0.2).mean(Kind::Double);
        let fake_half = softplus(&fake).mean(Kind::Double);
        let expected = ((real_half + fake_half) * 0.5).double_value(&[]);
        assert!((loss - expected).abs() < 1e-5, "{loss} vs {expected}");
        cfg.label_smoothing = 0.5;
        let err = cfg.validate().unwrap_err().to_string();
        assert!(err.contains("label_smoothing"), "{err}");
        cfg.label_smoothing = 0.0;
        cfg.discriminator_r1 = -1.0;
        let err = cfg.validate().unwrap_err().to_string();
        assert!(err.contains("discriminator_r1"), "{err}");
    }

    #[test]
    fn conditioned_codes_move_to_their_own_components() {
        let _rng = crate::torch_rng_lock();
        // Inputs that show their class (one-hot rows): the label-conditioned game alone (no
        // reconstruction) must carry each class's codes onto that class's component.
        tch::manual_seed(14);
        let [e, d, c] = stores();
        let mut cfg = config(2);
        cfg.networks.input_dim = 3;
        cfg.label_classes = 3;
        cfg.discriminator_r1 = 1.0;
        cfg.prior = LatentPrior::GaussianMixture {
            components: 3,
            radius: 2.0,
            std: 0.3,
        };
        let aae = Aae::new(&e.root(), &d.root(), &c.root(), &cfg).unwrap();
        let mut d_opt = nn::OptimizerConfig::build(nn::Adam::default(), &c, 1e-3).unwrap();
        let mut g_opt = nn::OptimizerConfig::build(nn::Adam::default(), &e, 1e-3).unwrap();
        for _ in 0..600 {
            let labels = Tensor::randint(3, [64], (Kind::Int64, Device::Cpu));
            let x = labels.one_hot(3).to_kind(Kind::Float);
            let codes = aae.code(&x).unwrap();
            let prior = aae
                .sample_prior_codes(64, Some(&labels), Device::Cpu)
                .unwrap();
            let d_loss = aae
                .discriminator_loss(&codes, &prior, Some(&labels))
                .unwrap();
            d_opt.backward_step(&d_loss.loss);
            g_opt.backward_step(&aae.generator_loss(&codes, Some(&labels)).unwrap());
        }
        let labels = Tensor::from_slice(&[0i64, 1, 2]);
        let codes = tch::no_grad(|| aae.code(&labels.one_hot(3).to_kind(Kind::Float))).unwrap();
        let nearest = cfg.prior.nearest_component(&codes).unwrap();
        assert!(
            nearest.equal(&labels),
            "codes {codes:?} nearest {nearest:?}"
        );
        // And close to it: within 3 sd of the mean (the means are 3.5 apart).
        let means = cfg.prior.component_means(2, Device::Cpu).unwrap();
        let far = (codes - means)
            .square()
            .sum_dim_intlist(1, false, Kind::Float)
            .sqrt();
        assert!(far.max().double_value(&[]) < 0.9, "distances {far:?}");
    }

    #[test]
    fn label_conditioning_needs_a_matching_mixture() {
        let _rng = crate::torch_rng_lock();
        let mut cfg = config(2);
        cfg.label_classes = 3;
        let err = cfg.validate().unwrap_err().to_string();
        assert!(
            err.contains("label_classes") && err.contains("gaussian_mixture"),
            "{err}"
        );
        cfg.prior = LatentPrior::GaussianMixture {
            components: 3,
            radius: 2.0,
            std: 0.5,
        };
        let [e, d, c] = stores();
        let aae = Aae::new(&e.root(), &d.root(), &c.root(), &cfg).unwrap();
        let labels = Tensor::from_slice(&[0i64, 2, 1]);
        let z = aae
            .sample_prior_codes(3, Some(&labels), Device::Cpu)
            .unwrap();
        assert_eq!(
            aae.discriminator_logits(&z, Some(&labels)).unwrap().size(),
            vec![3]
        );
        let err = aae.discriminator_logits(&z, None).unwrap_err().to_string();
        assert!(err.contains("label_classes"), "{err}");
    }

    #[test]
    fn gaussian_encoder_draws_around_its_mean() {
        let _rng = crate::torch_rng_lock();
        let [e, d, c] = stores();
        let mut cfg = config(3);
        cfg.encoder = AaeEncoderKind::Gaussian;
        let aae = Aae::new(&e.root(), &d.root(), &c.root(), &cfg).unwrap();
        let x = Tensor::rand([4, 6], (Kind::Float, Device::Cpu));
        let mean = aae.encode_mean(&x).unwrap();
        let draw = aae.encode_sample(&x).unwrap();
        assert_eq!(draw.size(), vec![4, 3]);
        assert!(!draw.equal(&mean));
        assert!(!draw.requires_grad());
    }
}
