//! Non-amortised AVB: the [`ImplicitPosterior`] `θ = g(ε)` fitted to the posterior of a model
//! with a standard-normal prior and a likelihood the caller evaluates, and its config.

use tch::{nn, Device, Kind, Tensor};

use super::adversary::{adversarial_loss, discriminator_net, elbo_estimate, prior_added_logit};
use super::implicit::check_widths;
use super::{
    AvbCodes, AvbDiscriminatorLoss, AvbPrimal, ImplicitEncoder, NoiseInjection, PosteriorMoments,
};
use crate::{Activation, Mlp, Result, ZooError};

/// The config of an [`ImplicitPosterior`].
///
/// ```
/// use genae_zoo::ImplicitPosteriorConfig;
///
/// let config = ImplicitPosteriorConfig { dim: 10, ..Default::default() };
/// config.validate().unwrap();
/// assert!(ImplicitPosteriorConfig { noise_dim: 0, ..config }.validate().is_err());
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct ImplicitPosteriorConfig {
    /// Dimensions `d` of the parameter `θ`.
    pub dim: i64,
    /// Dimensions of the noise `ε ~ N(0, I)` fed to `g`.
    pub noise_dim: i64,
    /// Hidden widths of `g`.
    pub hidden: Vec<i64>,
    /// The nonlinearity of `g`.
    pub activation: Activation,
    /// Hidden widths of the discriminator `T_net` on `θ` (one output).
    pub discriminator_hidden: Vec<i64>,
    /// Adaptive contrast: `T` compares draws normalised with the batch's moments with
    /// `N(0, I)`.
    pub adaptive_contrast: bool,
}

impl Default for ImplicitPosteriorConfig {
    /// A two-dimensional `θ`, 10 noise dimensions, `g` of widths `[64, 64]` with leaky ReLUs,
    /// `T_net` of widths `[128, 128]`, no adaptive contrast.
    fn default() -> Self {
        Self {
            dim: 2,
            noise_dim: 10,
            hidden: vec![64, 64],
            activation: Activation::LeakyRelu,
            discriminator_hidden: vec![128, 128],
            adaptive_contrast: false,
        }
    }
}

impl ImplicitPosteriorConfig {
    /// Checks every field, naming the first bad one.
    pub fn validate(&self) -> Result<()> {
        for (field, value) in [("dim", self.dim), ("noise_dim", self.noise_dim)] {
            if value < 1 {
                return Err(ZooError::InvalidConfig {
                    field,
                    reason: format!("must be at least 1, got {value}"),
                });
            }
        }
        check_widths("hidden", &self.hidden)?;
        check_widths("discriminator_hidden", &self.discriminator_hidden)
    }
}

/// Non-amortised AVB (Mescheder et al., 2017, §5.2): an implicit distribution `θ = g(ε)`
/// fitted to the posterior `p(θ|y) ∝ N(θ; 0, I) · p(y|θ)` of a model with a standard-normal
/// prior, with a discriminator `T(θ) = T_net(θ) − log N(θ; 0, I)` estimating
/// `log q(θ) − log p(θ)`.
///
/// The same machinery as [`Avb`](super::Avb) without the conditioning on `x`: the dual step
/// trains `T` on [`discriminator_loss`](Self::discriminator_loss), the primal step trains `g` on
/// [`primal`](Self::primal), given the log-likelihood of each draw, which the caller evaluates
/// (so any differentiable model fits). With adaptive contrast the moments come from the batch
/// of draws itself. `g` and `T_net` live under two paths, so each can have its own optimiser.
///
/// ```
/// use genae_zoo::{ImplicitPosterior, ImplicitPosteriorConfig};
/// use tch::{nn, Device, Kind};
///
/// let (g, t) = (nn::VarStore::new(Device::Cpu), nn::VarStore::new(Device::Cpu));
/// let config = ImplicitPosteriorConfig { dim: 3, hidden: vec![8], discriminator_hidden: vec![8], adaptive_contrast: true, ..Default::default() };
/// let q = ImplicitPosterior::new(&g.root(), &t.root(), &config).unwrap();
/// let draws = q.draw(16, Device::Cpu).unwrap();
/// assert_eq!(draws.z.size(), [16, 3]);
/// assert!(q.discriminator_loss(&draws).unwrap().loss.double_value(&[]) > 0.0);
/// // Target: y ~ N(θ₁, 1) with y = 1 observed.
/// let log_lik = (draws.z.select(1, 0) - 1.0).square() * -0.5;
/// let primal = q.primal(&draws, &log_lik).unwrap();
/// assert_eq!(primal.elbo.size(), [16]);
/// assert_eq!(q.sample(100, Device::Cpu).unwrap().size(), [100, 3]);
/// ```
#[derive(Debug)]
pub struct ImplicitPosterior {
    /// `ε ↦ θ` (an [`ImplicitEncoder`] without input).
    pub generator: ImplicitEncoder,
    /// `T_net`: `θ ↦` one value (`T` adds `−log N(θ; 0, I)`).
    pub discriminator: Mlp,
    config: ImplicitPosteriorConfig,
    kind: Kind,
}

impl ImplicitPosterior {
    /// `g` under `generator` (layers `layer{i}`, `code`), `T_net` under `discriminator`
    /// (`layer{i}`); `g`'s noise and draws take the generator path's kind.
    pub fn new(
        generator: &nn::Path,
        discriminator: &nn::Path,
        config: &ImplicitPosteriorConfig,
    ) -> Result<Self> {
        config.validate()?;
        Ok(Self {
            generator: ImplicitEncoder::from_widths(
                generator,
                [0, config.noise_dim, config.dim],
                &config.hidden,
                config.activation,
                NoiseInjection::Input,
            )?,
            discriminator: discriminator_net(
                discriminator,
                config.dim,
                &config.discriminator_hidden,
            )?,
            config: config.clone(),
            kind: generator.kind(),
        })
    }

    /// The config it was built from.
    pub fn config(&self) -> &ImplicitPosteriorConfig {
        &self.config
    }

    fn generate(&self, n: i64, device: Device) -> Result<Tensor> {
        let eps = Tensor::f_randn([n, self.config.noise_dim], (self.kind, device))?;
        let nothing = Tensor::f_zeros([n, 0], (self.kind, device))?;
        self.generator.forward(&nothing, &eps)
    }

    /// `n` draws `θ = g(ε)`, `[n, d]` on `device`, differentiable in `g`; with adaptive
    /// contrast also their moments (no gradient; `n ≥ 2`) and the normalised draws `θ̂`.
    pub fn draw(&self, n: i64, device: Device) -> Result<AvbCodes> {
        let least = if self.config.adaptive_contrast { 2 } else { 1 };
        if n < least {
            return Err(ZooError::InvalidConfig {
                field: "n",
                reason: format!("must be at least {least} draws, got {n}"),
            });
        }
        let z = self.generate(n, device)?;
        if !self.config.adaptive_contrast {
            return Ok(AvbCodes {
                contrast: z.shallow_clone(),
                z,
                moments: None,
            });
        }
        let moments = PosteriorMoments::from_draws(&z, 0)?;
        Ok(AvbCodes {
            contrast: moments.normalise(&z),
            z,
            moments: Some(moments),
        })
    }

    /// `T(θ) = T_net(θ) − log N(θ; 0, I)` per row of `theta` `[n, d]`, `[n]`. With adaptive
    /// contrast pass normalised draws `θ̂`.
    pub fn discriminator_logit(&self, theta: &Tensor) -> Result<Tensor> {
        if theta.dim() != 2 || theta.size()[1] != self.config.dim {
            return Err(ZooError::Shape {
                what: "ImplicitPosterior::discriminator_logit",
                detail: format!(
                    "draws must be [n, {}], got {:?}",
                    self.config.dim,
                    theta.size()
                ),
            });
        }
        Ok(prior_added_logit(&self.discriminator, theta, theta))
    }

    /// The discriminator's logistic loss: `draws.contrast` (detached) labelled 1 against as
    /// many `N(0, I)` draws (the prior, or the reference of adaptive contrast) labelled 0.
    pub fn discriminator_loss(&self, draws: &AvbCodes) -> Result<AvbDiscriminatorLoss> {
        let q = draws.contrast.f_detach()?;
        let reference = q.f_randn_like()?;
        let t_q = self.discriminator_logit(&q)?;
        let t_p = self.discriminator_logit(&reference)?;
        Ok(adversarial_loss(&t_q, &t_p))
    }

    /// The primal objective at `draws` (from [`draw`](Self::draw)) given `log_likelihood`
    /// `log p(y|θ)` of each draw (`[n]`, differentiable in `draws.z`): the ELBO estimate
    /// `log p(y|θ) − [log q(θ) − log p(θ)]` with `T` standing in for the log ratio (its `loss`
    /// reaches `T_net` too unless `T_net`'s variables are frozen: only `g`'s optimiser may step
    /// on it).
    pub fn primal(&self, draws: &AvbCodes, log_likelihood: &Tensor) -> Result<AvbPrimal> {
        let n = draws.z.size()[0];
        if log_likelihood.size() != [n] {
            return Err(ZooError::Shape {
                what: "ImplicitPosterior::primal",
                detail: format!(
                    "log_likelihood must be [{n}], one value per draw, got {:?}",
                    log_likelihood.size()
                ),
            });
        }
        let t = self.discriminator_logit(&draws.contrast)?;
        Ok(elbo_estimate(log_likelihood.shallow_clone(), t, draws))
    }

    /// `n` draws of `q` without gradient, `[n, d]`.
    pub fn sample(&self, n: i64, device: Device) -> Result<Tensor> {
        tch::no_grad(|| self.generate(n, device))
    }
}

#[cfg(test)]
mod tests {
    use genae_tensor::LOG_2PI;
    use tch::nn::Module;

    use super::*;

    fn posterior(dim: i64, adaptive_contrast: bool) -> ([nn::VarStore; 2], ImplicitPosterior) {
        let [g, t] = [(); 2].map(|_| nn::VarStore::new(Device::Cpu));
        let config = ImplicitPosteriorConfig {
            dim,
            noise_dim: 4,
            hidden: vec![32, 32],
            discriminator_hidden: vec![64, 64],
            adaptive_contrast,
            ..Default::default()
        };
        let q = ImplicitPosterior::new(&g.root(), &t.root(), &config).unwrap();
        ([g, t], q)
    }

    #[test]
    fn implicit_posterior_terms_match_their_formulas() {
        let _rng = crate::torch_rng_lock();
        tch::manual_seed(11);
        for ac in [false, true] {
            let (_stores, q) = posterior(3, ac);
            let draws = q.draw(50, Device::Cpu).unwrap();
            let log_lik = draws.z.select(1, 0) * 0.5 - draws.z.select(1, 2).square();
            let primal = q.primal(&draws, &log_lik).unwrap();
            // T(u) = T_net(u) − log N(u; 0, I), written out.
            let t_net = q.discriminator.forward(&draws.contrast).squeeze_dim(1);
            let u2 = draws
                .contrast
                .square()
                .sum_dim_intlist(1, false, Kind::Float);
            let t = &t_net + &u2 * 0.5 + 1.5 * LOG_2PI;
            let kl = if ac {
                // Moments of this very batch; log q(θ) = T(θ̂) + log N(θ̂) − Σ log σ.
                let z = draws.z.detach();
                let (mu, sd) = (z.mean_dim(0, true, Kind::Float), z.std_dim(0, true, true));
                let hat = (&draws.z - &mu) / &sd;
                assert!(hat.allclose(&draws.contrast, 1e-5, 1e-6, false));
                let theta2 = draws.z.square().sum_dim_intlist(1, false, Kind::Float);
                &t - &u2 * 0.5 - sd.log().sum(Kind::Float) + theta2 * 0.5
            } else {
                t
            };
            assert!(primal.kl.allclose(&kl, 1e-4, 1e-5, false), "ac = {ac}");
            assert!(primal.elbo.allclose(&(&log_lik - &kl), 1e-4, 1e-5, false));
            let want = -(&log_lik - &kl).mean(Kind::Float).double_value(&[]);
            assert!((primal.loss.double_value(&[]) - want).abs() < 1e-4);
            assert!(q.primal(&draws, &log_lik.narrow(0, 0, 3)).is_err());
        }
        let (_stores, q) = posterior(3, true);
        assert!(q.draw(1, Device::Cpu).is_err());
        assert_eq!(q.sample(7, Device::Cpu).unwrap().size(), [7, 3]);
    }

    #[test]
    fn implicit_posterior_fits_a_conjugate_gaussian_posterior() {
        // θ ~ N(0, I₂), y ~ N(θ, s²I) with s² = 0.5 and y = (1, −2): the posterior is
        // N(y/(1 + s²), s²/(1 + s²) I) = N((2/3, −4/3), (1/3) I).
        let _rng = crate::torch_rng_lock();
        tch::manual_seed(12);
        let ([g, mut t], q) = posterior(2, true);
        let y = Tensor::from_slice(&[1.0f32, -2.0]);
        let mut g_opt = nn::OptimizerConfig::build(nn::Adam::default(), &g, 5e-3).unwrap();
        let mut t_opt = nn::OptimizerConfig::build(nn::Adam::default(), &t, 5e-3).unwrap();
        for _ in 0..800 {
            let draws = tch::no_grad(|| q.draw(128, Device::Cpu)).unwrap();
            t_opt.backward_step(&q.discriminator_loss(&draws).unwrap().loss);
            let draws = q.draw(128, Device::Cpu).unwrap();
            let log_lik = (&draws.z - &y)
                .square()
                .sum_dim_intlist(1, false, Kind::Float)
                * -1.0;
            t.freeze();
            g_opt.backward_step(&q.primal(&draws, &log_lik).unwrap().loss);
            t.unfreeze();
        }
        let theta = q.sample(20_000, Device::Cpu).unwrap();
        let mean = Vec::<f64>::try_from(&theta.mean_dim(0, false, Kind::Double)).unwrap();
        let std =
            Vec::<f64>::try_from(&theta.std_dim(0, true, false).to_kind(Kind::Double)).unwrap();
        let want_std = (1.0f64 / 3.0).sqrt();
        for (got, want) in mean.iter().zip([2.0 / 3.0, -4.0 / 3.0]) {
            assert!((got - want).abs() < 0.1, "mean {mean:?} vs {want}");
        }
        for got in &std {
            assert!((got - want_std).abs() < 0.1, "std {std:?} vs {want_std}");
        }
    }
}
