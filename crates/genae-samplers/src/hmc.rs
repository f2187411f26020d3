//! Hamiltonian Monte Carlo on batches of chains in a continuous space (latent codes, or the
//! parameters of a small Bayesian model): leapfrog integration with gradients from autograd,
//! a Metropolis correction per chain, and dual-averaging step-size adaptation during warm-up.

use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

use crate::{Result, SamplerError};

/// An unnormalised log density evaluated for a batch of chains: `z` `[C, d]` (one row per
/// chain) to `log π(z)` `[C]`.
///
/// The value must be differentiable in `z` with libtorch's autograd (the samplers call it on
/// a leaf tensor that requires grad, inside [`tch::with_grad`]); parameters of a model it
/// closes over are never updated. Any closure `Fn(&Tensor) -> genae_samplers::Result<Tensor>`
/// is a `LogDensity`; errors of libtorch and of genae-zoo models convert into
/// [`SamplerError`] with `?`.
///
/// ```
/// use genae_samplers::LogDensity;
/// use tch::{Device, Kind, Tensor};
///
/// // A standard normal in 3 dimensions, up to a constant.
/// let target = |z: &Tensor| Ok(z.f_square()?.f_sum_dim_intlist(-1, false, Kind::Double)? * -0.5);
/// let z = Tensor::ones([4, 3], (Kind::Double, Device::Cpu));
/// let lp = target.log_density(&z).unwrap();
/// assert_eq!(Vec::<f64>::try_from(&lp).unwrap(), vec![-1.5; 4]);
/// ```
pub trait LogDensity {
    /// `log π(z)` per row of `z` `[C, d]`, shape `[C]`.
    fn log_density(&self, z: &Tensor) -> Result<Tensor>;
}

impl<F> LogDensity for F
where
    F: Fn(&Tensor) -> Result<Tensor>,
{
    fn log_density(&self, z: &Tensor) -> Result<Tensor> {
        self(z)
    }
}

/// How [`Hmc`] tunes its step size during warm-up.
///
/// In TOML: `adaptation = "per_chain"` (the default), `"shared"` or `"off"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepSizeAdaptation {
    /// Every chain runs its own dual averaging on its own acceptance probability, so chains in
    /// regions of different curvature (one chain per example, say) get their own step size.
    /// One chain's acceptance probability is noisy, and, as with Stan's single-chain dual
    /// averaging, the adapted step size errs on the small side: the acceptance after warm-up
    /// typically ends 0.03–0.13 above the target (genae's tests measure it).
    #[default]
    PerChain,
    /// One step size for all chains, driven by the acceptance probability averaged over the
    /// chains: when all chains sample the same distribution, the acceptance after warm-up
    /// lands on the target (within 0.03 in genae's tests with 200 chains; on targets with very
    /// different scales only with [jitter](HmcConfig::jitter), e.g. 0.5).
    Shared,
    /// Keep [`HmcConfig::step_size`] throughout.
    Off,
}

/// Settings of [`Hmc`]; every field has a default, unknown fields are rejected.
///
/// ```
/// use genae_samplers::{HmcConfig, StepSizeAdaptation};
///
/// let config: HmcConfig =
///     toml::from_str("warmup = 200\nsamples = 500\nadaptation = \"shared\"\nmass = [1.0, 4.0]").unwrap();
/// assert_eq!(config.leapfrog_steps, 10);
/// assert_eq!(config.adaptation, StepSizeAdaptation::Shared);
/// config.validate().unwrap();
///
/// let bad = HmcConfig { target_accept: 1.5, ..Default::default() };
/// assert!(bad.validate().unwrap_err().to_string().contains("target_accept"));
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HmcConfig {
    /// The leapfrog step size `ε` (finite, > 0): the fixed step size without adaptation, the
    /// starting point of dual averaging otherwise. Default 0.1.
    pub step_size: f64,
    /// Leapfrog steps `L` per transition (at least 1). Default 10.
    pub leapfrog_steps: usize,
    /// Warm-up transitions, during which the step size adapts (and which are not counted in
    /// the acceptance statistics or the trajectory). Default 500.
    pub warmup: usize,
    /// Transitions after warm-up, at the fixed adapted step size (at least 1). Default 1000.
    pub samples: usize,
    /// The acceptance probability warm-up aims at, in `(0, 1)`. Default 0.65, the optimum for
    /// HMC with a fixed number of leapfrog steps in high dimension (Beskos et al., 2013).
    pub target_accept: f64,
    /// Per-chain, shared or no adaptation. Default [`StepSizeAdaptation::PerChain`].
    pub adaptation: StepSizeAdaptation,
    /// Diagonal mass matrix `M` (one positive entry per dimension): momenta are drawn from
    /// `N(0, M)` and the kinetic energy is `½ pᵀM⁻¹p`. Setting `M` to the inverse of the
    /// target's variances makes every direction look like unit scale. Default: the identity.
    pub mass: Option<Vec<f64>>,
    /// Step-size jitter `j` in `[0, 1)`: every transition of every chain uses
    /// `ε · (1 + j·u)`, `u ~ U(−1, 1)` drawn afresh, instead of `ε`. Drawn independently of
    /// the state, so it keeps `π` invariant; it breaks the resonances of a fixed trajectory
    /// length `L·ε` with the periods of near-Gaussian targets, which otherwise make the
    /// acceptance a bumpy function of `ε` that adaptation cannot pin down. Default 0.
    pub jitter: f64,
    /// Keep every [`thin`](Self::thin)-th state after warm-up in [`HmcOutput::trajectory`].
    /// Default false.
    pub keep_trajectory: bool,
    /// Thinning of the kept trajectory (at least 1). Default 1.
    pub thin: usize,
}

impl Default for HmcConfig {
    /// `ε = 0.1` adapted per chain towards 0.65 over 500 warm-up transitions, 10 leapfrog
    /// steps, 1000 samples, unit mass, no trajectory.
    fn default() -> Self {
        Self {
            step_size: 0.1,
            leapfrog_steps: 10,
            warmup: 500,
            samples: 1000,
            target_accept: 0.65,
            adaptation: StepSizeAdaptation::PerChain,
            mass: None,
            jitter: 0.0,
            keep_trajectory: false,
            thin: 1,
        }
    }
}

impl HmcConfig {
    /// Checks every field, naming the first bad one.
    pub fn validate(&self) -> Result<()> {
        positive_step("step_size", self.step_size)?;
        at_least_one("leapfrog_steps", self.leapfrog_steps)?;
        at_least_one("samples", self.samples)?;
        at_least_one("thin", self.thin)?;
        open_unit("target_accept", self.target_accept)?;
        if !(0.0..1.0).contains(&self.jitter) {
            return Err(SamplerError::InvalidConfig {
                field: "jitter",
                reason: format!("must be in [0, 1), got {}", self.jitter),
            });
        }
        if let Some(mass) = &self.mass {
            if mass.is_empty() || mass.iter().any(|m| !(m.is_finite() && *m > 0.0)) {
                return Err(SamplerError::InvalidConfig {
                    field: "mass",
                    reason: format!(
                        "must hold at least one finite positive entry per dimension, got {mass:?}"
                    ),
                });
            }
        }
        Ok(())
    }
}

/// What [`Hmc::run`] returns, for `C` chains in `d` dimensions.
#[derive(Debug)]
pub struct HmcOutput {
    /// The states after the last transition, `[C, d]`, in the kind of the starting states.
    pub state: Tensor,
    /// `log π` at those states, `[C]`.
    pub log_density: Tensor,
    /// The step size each chain used after warm-up, `[C]` (`f64`; equal entries unless the
    /// adaptation is per chain), before [jitter](HmcConfig::jitter).
    pub step_size: Tensor,
    /// The fraction of post-warm-up proposals each chain accepted, `[C]` (`f64`).
    pub acceptance_rate: Tensor,
    /// The Metropolis acceptance probability `min(1, exp(−ΔH))` averaged over each chain's
    /// post-warm-up transitions, `[C]` (`f64`): the statistic the adaptation aims at
    /// [`HmcConfig::target_accept`] with, and a lower-variance estimate of the acceptance
    /// rate.
    pub mean_accept_prob: Tensor,
    /// The same average over the warm-up transitions, `[C]` (`f64`; zeros without warm-up).
    pub warmup_accept_prob: Tensor,
    /// With [`HmcConfig::keep_trajectory`]: the states after post-warm-up transitions
    /// `thin, 2·thin, …`, `[⌊samples / thin⌋, C, d]`.
    pub trajectory: Option<Tensor>,
}

/// Hamiltonian Monte Carlo (Duane et al., 1987; Neal, 2011) on a batch of independent chains.
///
/// Each transition draws momenta `p ~ N(0, M)`, runs [`HmcConfig::leapfrog_steps`] leapfrog
/// steps of the Hamiltonian `H(z, p) = −log π(z) + ½ pᵀM⁻¹p` with `∇ log π` from autograd, and
/// accepts the end point with probability `min(1, exp(H_start − H_end))`, chain by chain (a
/// proposal whose energy is not finite is rejected). During the [`warmup`](HmcConfig::warmup)
/// the step size follows the dual averaging of Hoffman & Gelman (2014, §3.2: `γ = 0.05`,
/// `t₀ = 10`, `κ = 0.75`, `μ = log 10ε₀`) towards [`target_accept`](HmcConfig::target_accept),
/// per chain or shared ([`StepSizeAdaptation`]); afterwards every chain keeps its averaged step
/// size `ε̄`, so the post-warm-up chain is a fixed, reversible Markov kernel that leaves `π`
/// invariant. Randomness (momenta and the accept/reject draws) comes from libtorch's global
/// generator: `tch::manual_seed` makes a run repeatable.
///
/// A correlated Gaussian, its mean recovered from chains started far away:
///
/// ```
/// use genae_samplers::{Hmc, HmcConfig, StepSizeAdaptation};
/// use tch::{Device, Kind, Tensor};
///
/// tch::manual_seed(0);
/// // log π(z) = −½ (z − m)ᵀ P (z − m), P the inverse of [[1, 0.9], [0.9, 1]].
/// let m = Tensor::from_slice(&[1.0f64, -2.0]);
/// let p = Tensor::from_slice(&[1.0f64, 0.9, 0.9, 1.0]).view([2, 2]).inverse();
/// let target = |z: &Tensor| {
///     let c = z - &m;
///     Ok((c.matmul(&p) * &c).sum_dim_intlist(-1, false, Kind::Double) * -0.5)
/// };
/// let hmc = Hmc::new(HmcConfig {
///     warmup: 200,
///     samples: 100,
///     adaptation: StepSizeAdaptation::Shared, // all chains sample the same distribution
///     jitter: 0.5,
///     ..Default::default()
/// })
/// .unwrap();
/// let z0 = Tensor::full([200, 2], 10.0, (Kind::Double, Device::Cpu));
/// let out = hmc.run(&target, &z0).unwrap();
/// let mean = Vec::<f64>::try_from(out.state.mean_dim(0, false, Kind::Double)).unwrap();
/// assert!((mean[0] - 1.0).abs() < 0.25 && (mean[1] + 2.0).abs() < 0.25);
/// let accept = out.mean_accept_prob.mean(Kind::Double).double_value(&[]);
/// assert!((accept - 0.65).abs() < 0.05, "{accept}");
/// ```
#[derive(Clone, Debug)]
pub struct Hmc {
    config: HmcConfig,
}

impl Hmc {
    /// A sampler with these (validated) settings.
    pub fn new(config: HmcConfig) -> Result<Self> {
        config.validate()?;
        Ok(Self { config })
    }

    /// The settings.
    pub fn config(&self) -> &HmcConfig {
        &self.config
    }

    /// Runs warm-up and sampling from the states `z0` `[C, d]` (a floating-point tensor; one
    /// chain per row). `log π(z0)` must be finite for every chain.
    pub fn run<T: LogDensity + ?Sized>(&self, target: &T, z0: &Tensor) -> Result<HmcOutput> {
        let config = &self.config;
        let (chains, dim) = check_states(z0, "z0")?;
        let inv_mass = match &config.mass {
            None => None,
            Some(mass) => {
                if mass.len() as i64 != dim {
                    return Err(SamplerError::InvalidArgument {
                        name: "z0",
                        reason: format!(
                            "has {dim} dimensions but the config's mass has {} entries",
                            mass.len()
                        ),
                    });
                }
                Some(
                    Tensor::from_slice(mass)
                        .f_to_kind(z0.kind())?
                        .f_to_device(z0.device())?
                        .f_reciprocal()?,
                )
            }
        };
        let evaluate = |z: &Tensor| value_and_grad(target, z);
        let mut point = evaluate(&z0.detach())?;
        check_finite_start(&point.log_density, "z0")?;

        let adapt_chains = match config.adaptation {
            StepSizeAdaptation::PerChain => chains,
            _ => 1,
        };
        let f64_opts = (Kind::Double, z0.device());
        let like = Tensor::zeros([adapt_chains], f64_opts);
        let mut adapt = DualAveraging::new(&like, config.step_size, config.target_accept);
        let mut warmup_prob = Tensor::zeros([chains], (Kind::Double, z0.device()));
        for _ in 0..config.warmup {
            let step = match config.adaptation {
                StepSizeAdaptation::Off => Tensor::full([1], config.step_size, f64_opts),
                _ => adapt.step_size(),
            };
            let step = jittered(&step.expand([chains], false), config.jitter);
            let moved = transition(
                &evaluate,
                &mut point,
                &step_column(&step, z0.kind())?,
                config.leapfrog_steps,
                inv_mass.as_ref(),
            )?;
            match config.adaptation {
                StepSizeAdaptation::PerChain => adapt.update(&moved.accept_prob),
                StepSizeAdaptation::Shared => {
                    adapt.update(&moved.accept_prob.mean(Kind::Double).reshape([1]))
                }
                StepSizeAdaptation::Off => {}
            }
            warmup_prob += &moved.accept_prob;
        }
        if config.warmup > 0 {
            warmup_prob /= config.warmup as f64;
        }

        let step = match config.adaptation {
            StepSizeAdaptation::Off => Tensor::full([chains], config.step_size, f64_opts),
            _ if config.warmup == 0 => Tensor::full([chains], config.step_size, f64_opts),
            _ => adapt.averaged_step_size().expand([chains], false).copy(),
        };
        let mut prob_sum = Tensor::zeros([chains], f64_opts);
        let mut accepted = Tensor::zeros([chains], f64_opts);
        let mut kept = Vec::new();
        for i in 1..=config.samples {
            let moved = transition(
                &evaluate,
                &mut point,
                &step_column(&jittered(&step, config.jitter), z0.kind())?,
                config.leapfrog_steps,
                inv_mass.as_ref(),
            )?;
            prob_sum += &moved.accept_prob;
            accepted += moved.accepted.to_kind(Kind::Double);
            if config.keep_trajectory && i % config.thin == 0 {
                kept.push(point.z.copy());
            }
        }
        let n = config.samples as f64;
        Ok(HmcOutput {
            state: point.z,
            log_density: point.log_density,
            step_size: step,
            acceptance_rate: accepted / n,
            mean_accept_prob: prob_sum / n,
            warmup_accept_prob: warmup_prob,
            trajectory: config.keep_trajectory.then(|| {
                if kept.is_empty() {
                    Tensor::zeros([0, chains, dim], (z0.kind(), z0.device()))
                } else {
                    Tensor::stack(&kept, 0)
                }
            }),
        })
    }
}

/// A chain state: position, log density there, its gradient, and (for annealing) the
/// untempered log joint and its gradient, which the tempered density is built from.
#[derive(Debug)]
pub(crate) struct Point {
    /// `[C, d]`, detached.
    pub z: Tensor,
    /// `log π(z)`, `[C]`.
    pub log_density: Tensor,
    /// `∇ log π(z)`, `[C, d]`.
    pub grad: Tensor,
    /// Extra per-chain values that move with the state (accepted or rejected with it).
    pub extra: Vec<Tensor>,
}

/// The outcome of one transition of every chain.
pub(crate) struct Moved {
    /// `min(1, exp(−ΔH))`, `[C]`, `f64`.
    pub accept_prob: Tensor,
    /// Whether each chain moved, `[C]`, bool.
    pub accepted: Tensor,
}

/// `log π(z)` and `∇ log π(z)` of `target` at `z` `[C, d]`, by autograd, both detached.
pub(crate) fn value_and_grad<T: LogDensity + ?Sized>(target: &T, z: &Tensor) -> Result<Point> {
    let chains = z.size()[0];
    tch::with_grad(|| {
        let leaf = z.detach().set_requires_grad(true);
        let lp = target.log_density(&leaf)?;
        if lp.size() != [chains] {
            return Err(SamplerError::InvalidArgument {
                name: "target",
                reason: format!(
                    "must return one log density per chain, shape [{chains}], got {:?}",
                    lp.size()
                ),
            });
        }
        let grad = if lp.requires_grad() {
            let total = lp.f_sum(lp.kind())?;
            Tensor::f_run_backward(&[total], &[&leaf], false, false)?.remove(0)
        } else {
            leaf.zeros_like()
        };
        Ok(Point {
            z: leaf.detach(),
            log_density: lp.detach(),
            grad: grad.detach(),
            extra: Vec::new(),
        })
    })
}

/// One HMC transition of every chain in place: momenta, `leapfrog` leapfrog steps of size
/// `step` (`[C, 1]` or `[1, 1]`), Metropolis accept/reject per chain.
pub(crate) fn transition<F>(
    evaluate: &F,
    point: &mut Point,
    step: &Tensor,
    leapfrog: usize,
    inv_mass: Option<&Tensor>,
) -> Result<Moved>
where
    F: Fn(&Tensor) -> Result<Point>,
{
    let noise = point.z.randn_like();
    let p0 = match inv_mass {
        None => noise,
        Some(inv) => noise * inv.rsqrt(),
    };
    let kinetic = |p: &Tensor| {
        let sq = match inv_mass {
            None => p.square(),
            Some(inv) => p.square() * inv,
        };
        sq.sum_dim_intlist(-1, false, Kind::Double) * 0.5
    };
    let velocity = |p: &Tensor| match inv_mass {
        None => p.shallow_clone(),
        Some(inv) => p * inv,
    };

    let mut p = &p0 + &point.grad * step * 0.5;
    let mut z = point.z.shallow_clone();
    let mut proposal = None;
    for l in 0..leapfrog {
        z = &z + velocity(&p) * step;
        let at = evaluate(&z)?;
        let factor = if l + 1 == leapfrog { 0.5 } else { 1.0 };
        p = &p + &at.grad * step * factor;
        z = at.z.shallow_clone();
        proposal = Some(at);
    }
    let proposal = proposal.expect("leapfrog ≥ 1");

    let h_start = -point.log_density.to_kind(Kind::Double) + kinetic(&p0);
    let h_end = -proposal.log_density.to_kind(Kind::Double) + kinetic(&p);
    let finite = h_end.isfinite();
    let log_accept = (&h_start - &h_end).where_self(&finite, &h_end.full_like(f64::NEG_INFINITY));
    let accept_prob = log_accept.clamp_max(0.0).exp();
    let accepted = log_accept.rand_like().log().lt_tensor(&log_accept);

    let rows = accepted.unsqueeze(1);
    point.z = proposal.z.where_self(&rows, &point.z);
    point.grad = proposal.grad.where_self(&rows, &point.grad);
    point.log_density = proposal
        .log_density
        .where_self(&accepted, &point.log_density);
    for (mine, theirs) in point.extra.iter_mut().zip(&proposal.extra) {
        let mask = if theirs.dim() == 2 { &rows } else { &accepted };
        *mine = theirs.where_self(mask, mine);
    }
    Ok(Moved {
        accept_prob,
        accepted,
    })
}

/// Dual averaging of `log ε` (Hoffman & Gelman, 2014, algorithm 5), vectorised over chains.
struct DualAveraging {
    mu: f64,
    target: f64,
    t: f64,
    h_bar: Tensor,
    log_step: Tensor,
    log_step_bar: Tensor,
}

impl DualAveraging {
    const GAMMA: f64 = 0.05;
    const T0: f64 = 10.0;
    const KAPPA: f64 = 0.75;

    fn new(like: &Tensor, step_size: f64, target: f64) -> Self {
        Self {
            mu: (10.0 * step_size).ln(),
            target,
            t: 0.0,
            h_bar: like.zeros_like(),
            log_step: like.full_like(step_size.ln()),
            log_step_bar: like.zeros_like(),
        }
    }

    fn step_size(&self) -> Tensor {
        self.log_step.exp()
    }

    fn averaged_step_size(&self) -> Tensor {
        self.log_step_bar.exp()
    }

    fn update(&mut self, accept_prob: &Tensor) {
        self.t += 1.0;
        let eta = 1.0 / (self.t + Self::T0);
        self.h_bar = &self.h_bar * (1.0 - eta) + (accept_prob.neg() + self.target) * eta;
        self.log_step = (&self.h_bar * (-self.t.sqrt() / Self::GAMMA)) + self.mu;
        let w = self.t.powf(-Self::KAPPA);
        self.log_step_bar = &self.log_step * w + &self.log_step_bar * (1.0 - w);
    }
}

/// `step · (1 + jitter·u)`, `u ~ U(−1, 1)` per entry; `step` itself when `jitter` is 0.
fn jittered(step: &Tensor, jitter: f64) -> Tensor {
    if jitter == 0.0 {
        step.shallow_clone()
    } else {
        step * ((step.rand_like() * 2.0 - 1.0) * jitter + 1.0)
    }
}

/// A step-size vector `[C]` (or `[1]`) as a column `[C, 1]` in the states' kind.
pub(crate) fn step_column(step: &Tensor, kind: Kind) -> Result<Tensor> {
    Ok(step.f_to_kind(kind)?.f_unsqueeze(1)?)
}

/// `(C, d)` of a floating-point `[C, d]` state tensor with `C, d ≥ 1`.
pub(crate) fn check_states(z: &Tensor, name: &'static str) -> Result<(i64, i64)> {
    match z.size()[..] {
        [c, d] if c >= 1 && d >= 1 && z.is_floating_point() => Ok((c, d)),
        _ => Err(SamplerError::InvalidArgument {
            name,
            reason: format!(
                "must be a floating-point [chains, dim] tensor with at least one chain and one \
                 dimension, got {:?} of kind {:?}",
                z.size(),
                z.kind()
            ),
        }),
    }
}

/// `Err` unless every chain starts at a finite log density.
pub(crate) fn check_finite_start(log_density: &Tensor, name: &'static str) -> Result<()> {
    let bad = log_density
        .isfinite()
        .logical_not()
        .sum(Kind::Int64)
        .int64_value(&[]);
    if bad == 0 {
        Ok(())
    } else {
        Err(SamplerError::InvalidArgument {
            name,
            reason: format!("the target's log density is not finite at {bad} starting states"),
        })
    }
}

pub(crate) fn positive_step(field: &'static str, value: f64) -> Result<()> {
    if value.is_finite() && value > 0.0 {
        Ok(())
    } else {
        Err(SamplerError::InvalidConfig {
            field,
            reason: format!("must be finite and > 0, got {value}"),
        })
    }
}

pub(crate) fn at_least_one(field: &'static str, value: usize) -> Result<()> {
    if value >= 1 {
        Ok(())
    } else {
        Err(SamplerError::InvalidConfig {
            field,
            reason: "must be at least 1, got 0".into(),
        })
    }
}

pub(crate) fn open_unit(field: &'static str, value: f64) -> Result<()> {
    if value > 0.0 && value < 1.0 {
        Ok(())
    } else {
        Err(SamplerError::InvalidConfig {
            field,
            reason: format!("must be in (0, 1), got {value}"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    #[test]
    fn gradient_matches_the_closed_form() {
        // log π(z) = −½ Σ a_j z_j² + Σ b_j z_j: ∇ = −a z + b.
        let a = Tensor::from_slice(&[1.0f64, 4.0, 0.25]);
        let b = Tensor::from_slice(&[0.5f64, -1.0, 2.0]);
        let target = |z: &Tensor| {
            Ok((z.square() * &a * -0.5 + z * &b).sum_dim_intlist(-1, false, Kind::Double))
        };
        let z = Tensor::from_slice(&[1.0f64, 2.0, -3.0, 0.0, 0.5, 1.0]).view([2, 3]);
        let point = tch::no_grad(|| value_and_grad(&target, &z)).unwrap();
        let want = &z * &a * -1.0 + &b;
        assert!(point.grad.allclose(&want, 1e-12, 1e-12, false));
        assert!(!point.grad.requires_grad() && !point.log_density.requires_grad());
        let lp = Vec::<f64>::try_from(&point.log_density).unwrap();
        assert!((lp[0] - (-0.5 * (1.0 + 16.0 + 2.25) + (0.5 - 2.0 - 6.0))).abs() < 1e-12);
    }

    #[test]
    fn dual_averaging_moves_the_step_the_right_way() {
        let like = Tensor::zeros([2], (Kind::Double, Device::Cpu));
        let mut adapt = DualAveraging::new(&like, 0.1, 0.65);
        // Chain 0 always accepts (step too small), chain 1 never does (too large).
        let probs = Tensor::from_slice(&[1.0f64, 0.0]);
        for _ in 0..20 {
            adapt.update(&probs);
        }
        let step = Vec::<f64>::try_from(adapt.averaged_step_size()).unwrap();
        assert!(step[0] > 0.1 && step[1] < 0.1, "{step:?}");
    }

    #[test]
    fn a_wrong_output_shape_is_an_error() {
        let target = |z: &Tensor| Ok(z.sum(Kind::Double));
        let z = Tensor::zeros([3, 2], (Kind::Double, Device::Cpu));
        let err = value_and_grad(&target, &z).unwrap_err().to_string();
        assert!(err.contains("[3]"), "{err}");
    }
}
