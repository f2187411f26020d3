//! The amortised image model [`Avb`]: implicit encoder, decoder and discriminator under three
//! paths, and its config [`AvbConfig`].

use genae_tensor::noise;
use serde::{Deserialize, Serialize};
use tch::{nn, Device, Kind, Tensor};

use super::adversary::{adversarial_loss, discriminator_net, elbo_estimate, prior_added_logit};
use super::implicit::check_widths;
use super::{
    AvbCodes, AvbDiscriminatorLoss, AvbPrimal, ImplicitEncoder, NoiseInjection, PosteriorMoments,
};
use crate::networks::flatten_input;
use crate::{
    Architecture, Decoder, GenerativeAutoencoder, GenerativeDecoder, LatentSpace, Mlp, Result,
    VaeConfig, ZooError,
};

/// The [`Avb`]'s config.
///
/// ```
/// use genae_zoo::{AvbConfig, VaeConfig};
///
/// let config = AvbConfig {
///     networks: VaeConfig { input_dim: 4, hidden: vec![16], latent_dim: 2, ..Default::default() },
///     noise_dim: 3,
///     adaptive_contrast: true,
///     ..Default::default()
/// };
/// config.validate().unwrap();
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AvbConfig {
    /// Encoder and decoder widths, latent size and likelihood (as for the VAE). The implicit
    /// encoder is an MLP (`architecture = "mlp"`); the decoder may be convolutional.
    pub networks: VaeConfig,
    /// Dimensions of the encoder noise `ε ~ N(0, I)`.
    pub noise_dim: i64,
    /// How `ε` enters the encoder.
    #[serde(default)]
    pub noise_injection: NoiseInjection,
    /// Hidden widths of the discriminator `T_net` on `[x, z]` (one output).
    pub discriminator_hidden: Vec<i64>,
    /// Adaptive contrast: `T` compares normalised codes with `N(0, I)`.
    #[serde(default)]
    pub adaptive_contrast: bool,
    /// Draws per example that estimate `μ(x)`, `σ(x)` (adaptive contrast, [`Avb::encode_mean`]
    /// and the moment-matched Gaussian); at least 2.
    pub contrast_samples: i64,
}

impl Default for AvbConfig {
    fn default() -> Self {
        Self {
            networks: VaeConfig::default(),
            noise_dim: 8,
            noise_injection: NoiseInjection::Input,
            discriminator_hidden: vec![256, 256],
            adaptive_contrast: false,
            contrast_samples: 16,
        }
    }
}

impl AvbConfig {
    /// Checks every field, naming the first bad one.
    pub fn validate(&self) -> Result<()> {
        self.networks.validate()?;
        if self.networks.architecture != Architecture::Mlp {
            return Err(ZooError::InvalidConfig {
                field: "architecture",
                reason: format!(
                    "the implicit AVB encoder is an MLP, got `{}`",
                    self.networks.architecture.name()
                ),
            });
        }
        if self.noise_dim < 1 {
            return Err(ZooError::InvalidConfig {
                field: "noise_dim",
                reason: format!("must be at least 1, got {}", self.noise_dim),
            });
        }
        check_widths("discriminator_hidden", &self.discriminator_hidden)?;
        if self.contrast_samples < 2 {
            return Err(ZooError::InvalidConfig {
                field: "contrast_samples",
                reason: format!(
                    "must be at least 2 (a standard deviation needs two draws), got {}",
                    self.contrast_samples
                ),
            });
        }
        Ok(())
    }
}

/// Adversarial Variational Bayes: an implicit encoder `z = g(x, ε)`, a decoder `p(x|z)` and a
/// discriminator `T(x, z)` (see the module docs for its sign convention), the prior `N(0, I)`.
/// The three parts live under three paths, so each player can have its own `VarStore` and
/// optimiser: the dual step trains `T` on [`Avb::discriminator_loss`], the primal step
/// trains encoder and decoder on [`Avb::primal`] with `T` held fixed.
///
/// ```
/// use genae_zoo::{Avb, AvbConfig, GenerativeAutoencoder, VaeConfig};
/// use tch::{nn, Device, Kind, Tensor};
///
/// let [enc, dec, disc] = [(); 3].map(|_| nn::VarStore::new(Device::Cpu));
/// let config = AvbConfig {
///     networks: VaeConfig { input_dim: 4, hidden: vec![16], latent_dim: 2, ..Default::default() },
///     discriminator_hidden: vec![16],
///     adaptive_contrast: true,
///     ..Default::default()
/// };
/// let avb = Avb::new(&enc.root(), &dec.root(), &disc.root(), &config).unwrap();
/// let x = Tensor::rand([5, 4], (Kind::Float, Device::Cpu)).round();
/// let codes = avb.draw_codes(&x).unwrap();
/// let dual = avb.discriminator_loss(&x, &codes).unwrap();
/// assert!(dual.loss.double_value(&[]) > 0.0);
/// let primal = avb.primal(&x, &codes).unwrap();
/// assert_eq!(primal.elbo.size(), vec![5]);
/// assert_eq!(avb.encode_mean(&x).unwrap().size(), vec![5, 2]);
/// ```
#[derive(Debug)]
pub struct Avb {
    /// `(x, ε) ↦ z`.
    pub encoder: ImplicitEncoder,
    /// `z ↦ p(x|z)`.
    pub decoder: Decoder,
    /// `T_net`: `[x, z] ↦` one value (`T` adds `−log N(z; 0, I)`).
    pub discriminator: Mlp,
    config: AvbConfig,
}

impl Avb {
    /// An AVB model with encoder, decoder and discriminator parameters under the three paths.
    pub fn new(
        encoder: &nn::Path,
        decoder: &nn::Path,
        discriminator: &nn::Path,
        config: &AvbConfig,
    ) -> Result<Self> {
        config.validate()?;
        let n = &config.networks;
        Ok(Self {
            encoder: ImplicitEncoder::new(encoder, config)?,
            decoder: Decoder::new(decoder, n)?,
            discriminator: discriminator_net(
                discriminator,
                n.input_dim + n.latent_dim,
                &config.discriminator_hidden,
            )?,
            config: config.clone(),
        })
    }

    /// The config the model was built from.
    pub fn config(&self) -> &AvbConfig {
        &self.config
    }

    fn flat(&self, x: &Tensor, what: &'static str) -> Result<Tensor> {
        flatten_input(x, self.config.networks.input_dim, what)
    }

    /// One code per example, `z = g(x, ε)` with fresh noise, differentiable.
    pub fn code(&self, x: &Tensor) -> Result<Tensor> {
        let flat = self.flat(x, "Avb::code")?;
        let eps = noise::randn(
            &[flat.size()[0], self.config.noise_dim],
            0,
            (flat.kind(), flat.device()),
        )?;
        self.encoder.forward(&flat, &eps)
    }

    /// `samples` codes per example without gradient, `[samples, N, d]`.
    pub fn code_samples(&self, x: &Tensor, samples: i64) -> Result<Tensor> {
        let flat = self.flat(x, "Avb::code_samples")?;
        let [n, dim] = [flat.size()[0], flat.size()[1]];
        tch::no_grad(|| {
            let repeated = flat.unsqueeze(0).expand([samples, n, dim], false);
            // The examples run along dimension 1 of the noise (data-parallel noise).
            let eps = noise::randn(
                &[samples, n, self.config.noise_dim],
                1,
                (flat.kind(), flat.device()),
            )?;
            let z = self.encoder.forward(
                &repeated.reshape([samples * n, dim]),
                &eps.reshape([samples * n, self.config.noise_dim]),
            )?;
            Ok(z.view([samples, n, -1]))
        })
    }

    /// Mean and standard deviation of `q(z|x)` from `config.contrast_samples` draws per
    /// example, without gradient.
    pub fn posterior_moments(&self, x: &Tensor) -> Result<PosteriorMoments> {
        PosteriorMoments::from_draws(&self.code_samples(x, self.config.contrast_samples)?, 0)
    }

    /// `T(x, z) = T_net([x, z]) − log N(z; 0, I)` per example, `[N]`. With adaptive contrast
    /// pass normalised codes `ẑ`.
    pub fn discriminator_logit(&self, x: &Tensor, z: &Tensor) -> Result<Tensor> {
        let flat = self.flat(x, "Avb::discriminator_logit")?;
        let d = self.config.networks.latent_dim;
        if z.dim() != 2 || z.size() != [flat.size()[0], d] {
            return Err(ZooError::Shape {
                what: "Avb::discriminator_logit",
                detail: format!(
                    "codes must be [{}, {d}], got {:?}",
                    flat.size()[0],
                    z.size()
                ),
            });
        }
        let input = Tensor::f_cat(&[&flat, &z.to_kind(flat.kind())], 1)?;
        Ok(prior_added_logit(&self.discriminator, &input, z))
    }

    /// Codes for a batch: `z = g(x, ε)` with gradient and, with adaptive contrast, the
    /// moments (from separate draws, without gradient) and `ẑ`.
    pub fn draw_codes(&self, x: &Tensor) -> Result<AvbCodes> {
        let z = self.code(x)?;
        if !self.config.adaptive_contrast {
            return Ok(AvbCodes {
                contrast: z.shallow_clone(),
                z,
                moments: None,
            });
        }
        let moments = self.posterior_moments(x)?;
        Ok(AvbCodes {
            contrast: moments.normalise(&z),
            z,
            moments: Some(moments),
        })
    }

    /// The discriminator's logistic loss: `(x, codes.contrast)` (detached, so no gradient
    /// reaches the encoder) labelled 1 against `(x, ζ)`, `ζ ~ N(0, I)` (the prior, or the
    /// reference of adaptive contrast), labelled 0.
    pub fn discriminator_loss(&self, x: &Tensor, codes: &AvbCodes) -> Result<AvbDiscriminatorLoss> {
        let q = codes.contrast.detach();
        let reference = noise::randn_like(&q)?;
        let t_q = self.discriminator_logit(x, &q)?;
        let t_p = self.discriminator_logit(x, &reference)?;
        Ok(adversarial_loss(&t_q, &t_p))
    }

    /// The primal objective at `codes` (from [`Avb::draw_codes`] on the same `x`): the ELBO
    /// estimate `log p(x|z) − [log q(z|x) − log p(z)]` with `T` standing in for the log ratio.
    pub fn primal(&self, x: &Tensor, codes: &AvbCodes) -> Result<AvbPrimal> {
        let flat = self.flat(x, "Avb::primal")?;
        let reconstruction = self.decoder.log_likelihood(&flat, &codes.z)?;
        let t = self.discriminator_logit(&flat, &codes.contrast)?;
        Ok(elbo_estimate(reconstruction, t, codes))
    }

    /// Decoder means at [`GenerativeAutoencoder::encode_mean`]: reconstructions `[N, D]`.
    pub fn reconstruct(&self, x: &Tensor) -> Result<Tensor> {
        tch::no_grad(|| self.decoder.mean(&self.encode_mean(x)?))
    }
}

impl GenerativeDecoder for Avb {
    fn decode_mean(&self, z: &Tensor) -> Result<Tensor> {
        self.decoder.mean(z)
    }
}

impl LatentSpace for Avb {
    fn latent_dim(&self) -> i64 {
        self.config.networks.latent_dim
    }
}

/// Codes are draws of `g(x, ε)` (the mean: the average of `contrast_samples` draws), data come
/// from the decoder's likelihood, prior draws from `N(0, I)`.
impl GenerativeAutoencoder for Avb {
    fn encode_sample(&self, x: &Tensor) -> Result<Tensor> {
        tch::no_grad(|| self.code(x))
    }

    fn encode_mean(&self, x: &Tensor) -> Result<Tensor> {
        Ok(self
            .code_samples(x, self.config.contrast_samples)?
            .mean_dim(0, false, None::<Kind>))
    }

    fn decode_sample(&self, z: &Tensor) -> Result<Tensor> {
        self.decoder.sample(z)
    }

    fn sample_prior(&self, n: i64, device: Device) -> Result<Tensor> {
        Ok(noise::randn(
            &[n, self.config.networks.latent_dim],
            0,
            (Kind::Float, device),
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stores() -> [nn::VarStore; 3] {
        [(); 3].map(|_| nn::VarStore::new(Device::Cpu))
    }

    fn config(input_dim: i64, latent_dim: i64) -> AvbConfig {
        AvbConfig {
            networks: VaeConfig {
                input_dim,
                hidden: vec![32, 32],
                latent_dim,
                ..Default::default()
            },
            noise_dim: 4,
            discriminator_hidden: vec![64, 64],
            ..Default::default()
        }
    }
    #[test]
    fn encoder_noise_changes_the_code() {
        let _rng = crate::torch_rng_lock();
        tch::manual_seed(5);
        for injection in [NoiseInjection::Input, NoiseInjection::InputAndHidden] {
            let [e, d, c] = stores();
            let mut cfg = config(6, 3);
            cfg.noise_injection = injection;
            let avb = Avb::new(&e.root(), &d.root(), &c.root(), &cfg).unwrap();
            let x = Tensor::rand([4, 6], (Kind::Float, Device::Cpu));
            // Same x, two noise draws: different codes; same noise: the same code.
            let eps = Tensor::randn([4, 4], (Kind::Float, Device::Cpu));
            let a = avb.encoder.forward(&x, &eps).unwrap();
            let b = avb.encoder.forward(&x, &(&eps + 1.0)).unwrap();
            assert!(
                (&a - &b).abs().min().double_value(&[]) > 1e-6,
                "{injection:?}"
            );
            assert!(a.equal(&avb.encoder.forward(&x, &eps).unwrap()));
            // Draws of q(z|x) spread: every dimension has a positive standard deviation.
            let m = avb.posterior_moments(&x).unwrap();
            assert!(m.std.min().double_value(&[]) > 1e-3, "{injection:?}");
            let n_noise = e
                .variables()
                .keys()
                .filter(|k| k.starts_with("noise"))
                .count();
            assert_eq!(
                n_noise,
                if injection == NoiseInjection::Input {
                    0
                } else {
                    2
                }
            );
        }
    }

    #[test]
    fn adaptive_contrast_normalises_to_zero_mean_unit_std() {
        let _rng = crate::torch_rng_lock();
        tch::manual_seed(6);
        let [e, d, c] = stores();
        let mut cfg = config(5, 3);
        cfg.contrast_samples = 4000;
        cfg.noise_injection = NoiseInjection::InputAndHidden;
        let avb = Avb::new(&e.root(), &d.root(), &c.root(), &cfg).unwrap();
        let x = Tensor::rand([3, 5], (Kind::Float, Device::Cpu));
        let m = avb.posterior_moments(&x).unwrap();
        // Fresh draws, normalised with the estimated moments.
        let z = avb.code_samples(&x, 4000).unwrap(); // [S, N, d]
        let z_hat = m.normalise(&z);
        let mean = z_hat.mean_dim(0, false, None::<Kind>);
        let std = z_hat.std_dim(0, true, false);
        assert!(mean.abs().max().double_value(&[]) < 0.08, "{mean}");
        assert!((std - 1.0).abs().max().double_value(&[]) < 0.08);
        // The moment-matched Gaussian has those moments.
        let g = m.gaussian().unwrap();
        assert!(g.std().allclose(&m.std, 1e-5, 1e-6, false));
    }

    #[test]
    fn discriminator_learns_the_log_density_ratio_of_two_gaussians() {
        // "Posterior" q(z|x) = N(x, 0.5²) in 1-d, prior N(0, 1): the optimal T is
        // log q(z|x) − log p(z) = −(z − x)²/(2·0.25) − ln 0.5 + z²/2.
        let _rng = crate::torch_rng_lock();
        tch::manual_seed(31);
        let [e, d, c] = stores();
        let mut cfg = config(1, 1);
        cfg.discriminator_hidden = vec![64, 64];
        let avb = Avb::new(&e.root(), &d.root(), &c.root(), &cfg).unwrap();
        let mut opt = nn::OptimizerConfig::build(nn::Adam::default(), &c, 3e-3).unwrap();
        let opts = (Kind::Float, Device::Cpu);
        let optimum = |x: &Tensor, z: &Tensor| {
            let dz = (z - x).squeeze_dim(1);
            dz.square() * -2.0 - 0.5f64.ln() + z.squeeze_dim(1).square() * 0.5
        };
        for _ in 0..1500 {
            let x = Tensor::rand([256, 1], opts) * 2.0 - 1.0;
            let z = &x + Tensor::randn([256, 1], opts) * 0.5;
            let codes = AvbCodes {
                contrast: z.shallow_clone(),
                z,
                moments: None,
            };
            let loss = avb.discriminator_loss(&x, &codes).unwrap();
            opt.backward_step(&loss.loss);
        }
        // Where q has its mass (|z − x| ≤ 1): T ≈ the log ratio.
        let x = Tensor::from_slice(&[-0.5f32, -0.5, 0.0, 0.0, 0.5, 0.5, 0.3]).unsqueeze(1);
        let z = Tensor::from_slice(&[-0.9f32, 0.0, -0.4, 0.4, 0.1, 1.0, 0.3]).unsqueeze(1);
        let t = tch::no_grad(|| avb.discriminator_logit(&x, &z)).unwrap();
        let want = optimum(&x, &z);
        let err = (&t - &want).abs().max().double_value(&[]);
        assert!(err < 0.3, "T {t} vs optimum {want}");
        // The sign convention: posterior pairs score positive where q > p.
        assert!(t.double_value(&[6]) > 0.0);
    }

    #[test]
    fn primal_gradient_leaves_a_frozen_discriminator_alone() {
        let _rng = crate::torch_rng_lock();
        tch::manual_seed(7);
        for ac in [false, true] {
            let [e, d, mut c] = stores();
            let mut cfg = config(6, 2);
            cfg.adaptive_contrast = ac;
            let avb = Avb::new(&e.root(), &d.root(), &c.root(), &cfg).unwrap();
            let x = Tensor::rand([8, 6], (Kind::Float, Device::Cpu)).round();
            c.freeze();
            let codes = avb.draw_codes(&x).unwrap();
            avb.primal(&x, &codes).unwrap().loss.backward();
            assert!(c.trainable_variables().iter().all(|t| !t.grad().defined()));
            assert!(e.trainable_variables().iter().all(|t| t.grad().defined()));
            assert!(d.trainable_variables().iter().all(|t| t.grad().defined()));
            c.unfreeze();
            // The dual loss reaches only the discriminator.
            for t in e.trainable_variables() {
                let _ = t.grad().zero_();
            }
            let codes = avb.draw_codes(&x).unwrap();
            avb.discriminator_loss(&x, &codes).unwrap().loss.backward();
            assert!(c.trainable_variables().iter().all(|t| t.grad().defined()));
            let enc_grad: f64 = e
                .trainable_variables()
                .iter()
                .map(|t| t.grad().abs().sum(Kind::Double).double_value(&[]))
                .sum();
            assert_eq!(enc_grad, 0.0, "ac = {ac}");
        }
    }
    #[test]
    fn bad_configs_name_the_field() {
        let _rng = crate::torch_rng_lock();
        let mut cfg = config(4, 2);
        cfg.contrast_samples = 1;
        assert!(cfg
            .validate()
            .unwrap_err()
            .to_string()
            .contains("contrast_samples"));
        let mut cfg = config(4, 2);
        cfg.noise_dim = 0;
        assert!(cfg
            .validate()
            .unwrap_err()
            .to_string()
            .contains("noise_dim"));
        let mut cfg = config(4, 2);
        cfg.networks.architecture = Architecture::Conv {
            channels: vec![8],
            residual_blocks: 0,
        };
        cfg.networks.input_shape = Some([1, 28, 28]);
        cfg.networks.input_dim = 784;
        assert!(cfg
            .validate()
            .unwrap_err()
            .to_string()
            .contains("architecture"));
    }
}
