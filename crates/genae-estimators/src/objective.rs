//! Training objectives: the (β-weighted, free-bits) ELBO, the IWAE bound, the denoising bound
//! of the DVAE, the disentangling objectives (annealed capacity, β-TC-VAE, DIP-VAE) and KL
//! warm-up.

use genae_tensor::{log_mean_exp, Corruption, DiagGaussian};
use genae_zoo::LatentVariableModel;
use tch::{Kind, Tensor};

use crate::dvae::{check_dvae_arguments, dvae};
use crate::factorised::{dip_penalty, kl_decomposition, AggregateEstimator, DipVariant};
use crate::sampling::{at_least_one, non_negative, sample_terms, NoiseStream};
use crate::{ElboTerms, Result};

/// What a model is trained to maximise; [`Objective::loss`] gives the scalar to minimise.
#[derive(Clone, Debug, PartialEq)]
pub enum Objective {
    /// The single-sample ELBO with analytic KL, the KL term weighted by `beta` (β-VAE;
    /// `beta = 1` is the plain VAE) and, when `free_bits > 0`, floored per latent dimension à la
    /// Kingma et al. (2016): the KL term is `Σ_j max(λ, mean_batch KL_j)` with `λ = free_bits`
    /// nats, so dimensions below `λ` get no gradient pushing them to the prior.
    Elbo {
        /// Weight on the KL term (≥ 0).
        beta: f64,
        /// The free-bits floor `λ` per latent dimension in nats (≥ 0; 0 is off).
        free_bits: f64,
    },
    /// The importance-weighted bound `L_k` (Burda et al., 2016); the loss is `−mean L_k`.
    Iwae {
        /// Importance samples per example (≥ 1; `k = 1` is the ELBO with a Monte-Carlo KL).
        k: i64,
    },
    /// The denoising bound `L_dvae` of the DVAE (Im et al., 2017; see [`dvae`](crate::dvae)):
    /// the encoder sees `copies` corrupted copies of each example, the decoder scores the clean
    /// example with `samples` latent samples per copy; the loss is `−mean L_dvae`, with the KL
    /// term scaled by `kl_weight_scale` for warm-up. [`Objective::dvae`] gives `M = K = 1`.
    Dvae {
        /// The corruption `C(x̃|x)` the encoder's inputs go through.
        corruption: Corruption,
        /// Corrupted copies per example, M (≥ 1).
        copies: i64,
        /// Latent samples per corrupted copy, K (≥ 1).
        samples: i64,
    },
    /// The annealed-capacity β-VAE (Burgess et al. 2018): `−E log p(x|z) + γ |KL − C|`, the
    /// KL analytic; the caller raises `capacity` over training
    /// ([`CapacitySchedule`](crate::factorised::CapacitySchedule)).
    AnnealedCapacity {
        /// Weight `γ` of the distance to the capacity (≥ 0; 1000 in the paper).
        gamma: f64,
        /// The KL target `C` in nats at this step (≥ 0).
        capacity: f64,
    },
    /// β-TC-VAE (Chen et al. 2018): `−E log p(x|z) + α·MI + β·TC + γ·dimension-wise KL`, the
    /// three terms estimated on the batch
    /// ([`kl_decomposition`](crate::factorised::kl_decomposition)); `α = γ = 1` leaves the
    /// Monte-Carlo KL plus `(β − 1)·TC`.
    BetaTc {
        /// Weight `α` of the index–code mutual information (≥ 0).
        alpha: f64,
        /// Weight `β` of the total correlation (≥ 0).
        beta: f64,
        /// Weight `γ` of the dimension-wise KL (≥ 0).
        gamma: f64,
        /// How the aggregate posterior is estimated from the batch.
        estimator: AggregateEstimator,
    },
    /// DIP-VAE (Kumar et al. 2018): the negative ELBO plus
    /// [`dip_penalty`](crate::factorised::dip_penalty) of the batch's posterior.
    Dip {
        /// Which covariance is matched to the identity.
        variant: DipVariant,
        /// Weight `λ_od` of the off-diagonal entries (≥ 0).
        lambda_off_diagonal: f64,
        /// Weight `λ_d` of the diagonal's distance to 1 (≥ 0).
        lambda_diagonal: f64,
    },
}

impl Default for Objective {
    /// The plain ELBO: `beta = 1`, no free bits.
    fn default() -> Self {
        Self::Elbo {
            beta: 1.0,
            free_bits: 0.0,
        }
    }
}

/// What [`Objective::loss`] returns.
#[derive(Debug)]
pub struct ObjectiveOutput {
    /// The scalar to minimise, averaged over the batch (differentiable).
    pub loss: Tensor,
    /// The plain, unweighted ELBO terms of the batch (per example, detached), for logging: with
    /// the analytic KL for [`Objective::Elbo`], with the Monte-Carlo KL over the `k` samples for
    /// [`Objective::Iwae`], the terms of the corrupted-input bound `L_dvae` (reconstruction of
    /// the clean input, KL of `q(z|x̃)`) for [`Objective::Dvae`].
    pub terms: ElboTerms,
    /// The objective's own terms by name (detached), per example (`[N]`) or for the batch
    /// (scalars): `mutual_information`, `total_correlation` and `dimension_kl` of
    /// [`Objective::BetaTc`], `dip_off_diagonal` and `dip_diagonal` of [`Objective::Dip`],
    /// `capacity` of [`Objective::AnnealedCapacity`]; empty for the others.
    pub extra: Vec<(&'static str, Tensor)>,
}

impl Objective {
    /// The DVAE objective with the recommended `copies = samples = 1`.
    ///
    /// ```
    /// use genae_estimators::Objective;
    /// use genae_tensor::Corruption;
    /// let objective = Objective::dvae(Corruption::Masking { p: 0.3 });
    /// assert!(matches!(objective, Objective::Dvae { copies: 1, samples: 1, .. }));
    /// ```
    pub fn dvae(corruption: Corruption) -> Self {
        Self::Dvae {
            corruption,
            copies: 1,
            samples: 1,
        }
    }

    /// Checks the parameters, naming the first bad one (a bad corruption parameter is reported
    /// as `corruption`, with the field in the reason).
    pub fn validate(&self) -> Result<()> {
        match self {
            Self::Elbo { beta, free_bits } => {
                non_negative("beta", *beta)?;
                non_negative("free_bits", *free_bits)
            }
            Self::Iwae { k } => at_least_one("k", *k),
            Self::Dvae {
                corruption,
                copies,
                samples,
            } => check_dvae_arguments(corruption, *copies, *samples),
            Self::AnnealedCapacity { gamma, capacity } => {
                non_negative("gamma", *gamma)?;
                non_negative("capacity", *capacity)
            }
            Self::BetaTc {
                alpha,
                beta,
                gamma,
                estimator,
            } => {
                non_negative("alpha", *alpha)?;
                non_negative("beta", *beta)?;
                non_negative("gamma", *gamma)?;
                match estimator {
                    AggregateEstimator::Weighted => Ok(()),
                    AggregateEstimator::Stratified { dataset_size } => {
                        at_least_one("dataset_size", *dataset_size)
                    }
                }
            }
            Self::Dip {
                lambda_off_diagonal,
                lambda_diagonal,
                ..
            } => {
                non_negative("lambda_off_diagonal", *lambda_off_diagonal)?;
                non_negative("lambda_diagonal", *lambda_diagonal)
            }
        }
    }

    /// The loss of a batch `x`. `kl_weight_scale` (≥ 0) multiplies the KL term for KL warm-up
    /// (`beta` of [`Objective::Elbo`], the KL of [`Objective::Dvae`] and [`Objective::Dip`],
    /// the three KL parts of [`Objective::BetaTc`]): pass [`KlWarmup::scale`] of the step (or
    /// 1). It has no effect on [`Objective::Iwae`] and [`Objective::AnnealedCapacity`] (whose
    /// capacity is its own schedule).
    ///
    /// ```
    /// use genae_estimators::{KlWarmup, Objective};
    /// use genae_zoo::{Vae, VaeConfig};
    /// use tch::{nn, nn::OptimizerConfig, Device, Kind, Tensor};
    ///
    /// let vs = nn::VarStore::new(Device::Cpu);
    /// let vae = Vae::new(&vs.root(), &VaeConfig { input_dim: 8, hidden: vec![16], latent_dim: 2, ..Default::default() }).unwrap();
    /// let mut opt = nn::Adam::default().build(&vs, 1e-3).unwrap();
    /// let x = Tensor::rand([4, 8], (Kind::Float, Device::Cpu)).round();
    /// let objective = Objective::Elbo { beta: 4.0, free_bits: 0.1 };
    /// let warmup = KlWarmup { steps: 100 };
    /// for step in 0..3 {
    ///     let out = objective.loss(&vae, &x, warmup.scale(step)).unwrap();
    ///     opt.backward_step(&out.loss);
    ///     let logged = out.terms.means(); // plain ELBO, reconstruction, KL
    ///     assert!(logged.kl >= 0.0);
    /// }
    /// let iwae = Objective::Iwae { k: 5 }.loss(&vae, &x, 1.0).unwrap();
    /// assert_eq!(iwae.loss.dim(), 0);
    /// let noise = genae_tensor::Corruption::Gaussian { sigma: 0.2, clamp: false };
    /// let denoising = Objective::dvae(noise).loss(&vae, &x, 1.0).unwrap();
    /// assert_eq!(denoising.loss.dim(), 0);
    /// ```
    pub fn loss<M: LatentVariableModel + ?Sized>(
        &self,
        model: &M,
        x: &Tensor,
        kl_weight_scale: f64,
    ) -> Result<ObjectiveOutput> {
        self.validate()?;
        non_negative("kl_weight_scale", kl_weight_scale)?;
        match self {
            Self::Elbo { beta, free_bits } => {
                elbo_loss(model, x, beta * kl_weight_scale, *free_bits)
            }
            Self::Iwae { k } => iwae_loss(model, x, *k),
            Self::Dvae {
                corruption,
                copies,
                samples,
            } => dvae_loss(model, x, corruption, *copies, *samples, kl_weight_scale),
            Self::AnnealedCapacity { gamma, capacity } => {
                capacity_loss(model, x, *gamma, *capacity)
            }
            Self::BetaTc {
                alpha,
                beta,
                gamma,
                estimator,
            } => {
                let weights = [*alpha, *beta, *gamma].map(|w| w * kl_weight_scale);
                beta_tc_loss(model, x, weights, *estimator)
            }
            Self::Dip {
                variant,
                lambda_off_diagonal,
                lambda_diagonal,
            } => {
                let posterior = model.encode(x)?;
                let mut out = elbo_loss_given(model, x, &posterior, kl_weight_scale, 0.0)?;
                let dip =
                    dip_penalty(&posterior, *variant, *lambda_off_diagonal, *lambda_diagonal)?;
                out.loss += dip.penalty;
                out.extra = vec![
                    ("dip_off_diagonal", dip.off_diagonal.detach()),
                    ("dip_diagonal", dip.diagonal.detach()),
                ];
                Ok(out)
            }
        }
    }
}

/// `KL(q ‖ p)` per latent dimension (`[N, d]`), for diagonal Gaussians of the same shape.
fn kl_per_dim(q: &DiagGaussian, p: &DiagGaussian) -> Result<Tensor> {
    let diff = q.mean().f_sub(p.mean())?;
    let per_dim =
        p.log_var() - q.log_var() + (q.variance() + diff.square()) * (-p.log_var()).exp() - 1.0;
    Ok(per_dim * 0.5)
}

/// The logged (detached) terms: `elbo = reconstruction − kl`.
fn logged_terms(reconstruction: Tensor, kl: Tensor) -> ElboTerms {
    ElboTerms {
        elbo: &reconstruction - &kl,
        reconstruction,
        kl,
    }
}

fn elbo_loss<M: LatentVariableModel + ?Sized>(
    model: &M,
    x: &Tensor,
    kl_weight: f64,
    free_bits: f64,
) -> Result<ObjectiveOutput> {
    elbo_loss_given(model, x, &model.encode(x)?, kl_weight, free_bits)
}

fn elbo_loss_given<M: LatentVariableModel + ?Sized>(
    model: &M,
    x: &Tensor,
    posterior: &DiagGaussian,
    kl_weight: f64,
    free_bits: f64,
) -> Result<ObjectiveOutput> {
    let prior = model.prior(posterior.mean())?;
    let kl_dims = kl_per_dim(posterior, &prior)?; // [N, d]
    let kl = kl_dims.sum_dim_intlist(-1, false, None::<Kind>); // [N]
    let reconstruction = model.log_likelihood(x, &posterior.rsample())?;
    let kl_term = if free_bits > 0.0 {
        kl_dims
            .mean_dim(0, false, None::<Kind>)
            .clamp_min(free_bits)
            .sum(None::<Kind>)
    } else {
        kl.mean(None::<Kind>)
    };
    let loss = kl_term * kl_weight - reconstruction.mean(None::<Kind>);
    Ok(ObjectiveOutput {
        loss,
        terms: logged_terms(reconstruction.detach(), kl.detach()),
        extra: Vec::new(),
    })
}

fn capacity_loss<M: LatentVariableModel + ?Sized>(
    model: &M,
    x: &Tensor,
    gamma: f64,
    capacity: f64,
) -> Result<ObjectiveOutput> {
    let posterior = model.encode(x)?;
    let prior = model.prior(posterior.mean())?;
    let kl = kl_per_dim(&posterior, &prior)?.sum_dim_intlist(-1, false, None::<Kind>);
    let reconstruction = model.log_likelihood(x, &posterior.rsample())?;
    let distance = (kl.mean(None::<Kind>) - capacity).abs();
    let loss = distance * gamma - reconstruction.mean(None::<Kind>);
    Ok(ObjectiveOutput {
        loss,
        terms: logged_terms(reconstruction.detach(), kl.detach()),
        extra: vec![("capacity", Tensor::from(capacity))],
    })
}

fn beta_tc_loss<M: LatentVariableModel + ?Sized>(
    model: &M,
    x: &Tensor,
    [alpha, beta, gamma]: [f64; 3],
    estimator: AggregateEstimator,
) -> Result<ObjectiveOutput> {
    let posterior = model.encode(x)?;
    let prior = model.prior(posterior.mean())?;
    let z = posterior.rsample();
    let reconstruction = model.log_likelihood(x, &z)?;
    let parts = kl_decomposition(&posterior, &z, &prior, estimator)?;
    let weighted = &parts.mutual_information * alpha
        + &parts.total_correlation * beta
        + &parts.dimension_kl * gamma;
    let loss = (weighted - &reconstruction).mean(None::<Kind>);
    let kl = kl_per_dim(&posterior, &prior)?.sum_dim_intlist(-1, false, None::<Kind>);
    Ok(ObjectiveOutput {
        loss,
        terms: logged_terms(reconstruction.detach(), kl.detach()),
        extra: vec![
            ("mutual_information", parts.mutual_information.detach()),
            ("total_correlation", parts.total_correlation.detach()),
            ("dimension_kl", parts.dimension_kl.detach()),
        ],
    })
}

fn iwae_loss<M: LatentVariableModel + ?Sized>(
    model: &M,
    x: &Tensor,
    k: i64,
) -> Result<ObjectiveOutput> {
    let posterior = model.encode(x)?;
    let prior = model.prior(posterior.mean())?;
    let eps = NoiseStream::new(posterior.mean(), k).take(k);
    let samples = sample_terms(model, x, &posterior, &prior, &eps)?;
    let bound = log_mean_exp(&samples.log_weights(), 0);
    let loss = -bound.mean(None::<Kind>);
    let reconstruction = samples
        .log_likelihood
        .detach()
        .mean_dim(0, false, None::<Kind>);
    let kl = (samples.log_q.detach() - samples.log_prior.detach()).mean_dim(0, false, None::<Kind>);
    Ok(ObjectiveOutput {
        loss,
        terms: logged_terms(reconstruction, kl),
        extra: Vec::new(),
    })
}

fn dvae_loss<M: LatentVariableModel + ?Sized>(
    model: &M,
    x: &Tensor,
    corruption: &Corruption,
    copies: i64,
    samples: i64,
    kl_weight: f64,
) -> Result<ObjectiveOutput> {
    let terms = dvae(model, x, corruption, copies, samples)?;
    let loss = terms.kl.mean(None::<Kind>) * kl_weight - terms.reconstruction.mean(None::<Kind>);
    Ok(ObjectiveOutput {
        loss,
        terms: ElboTerms {
            elbo: terms.elbo.detach(),
            reconstruction: terms.reconstruction.detach(),
            kl: terms.kl.detach(),
        },
        extra: Vec::new(),
    })
}

/// Linear KL warm-up (Bowman et al., 2016; Sønderby et al., 2016): the KL weight rises from 0
/// to 1 over the first `steps` optimisation steps, then stays at 1.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KlWarmup {
    /// Length of the ramp in steps; 0 means no warm-up (the scale is always 1).
    pub steps: u64,
}

impl KlWarmup {
    /// `min(1, step / steps)`, or 1 when `steps = 0`: pass it as
    /// [`Objective::loss`]'s `kl_weight_scale`.
    ///
    /// ```
    /// use genae_estimators::KlWarmup;
    /// let warmup = KlWarmup { steps: 4 };
    /// assert_eq!(warmup.scale(0), 0.0);
    /// assert_eq!(warmup.scale(1), 0.25);
    /// assert_eq!(warmup.scale(10), 1.0);
    /// assert_eq!(KlWarmup { steps: 0 }.scale(0), 1.0);
    /// ```
    pub fn scale(&self, step: u64) -> f64 {
        if self.steps == 0 || step >= self.steps {
            1.0
        } else {
            step as f64 / self.steps as f64
        }
    }
}
