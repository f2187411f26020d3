//! The terms of the objectives that push a VAE towards factorised (disentangled) codes.
//!
//! - [`kl_decomposition`]: β-TC-VAE's split of the KL term (Chen et al. 2018) into the index–code
//!   mutual information, the total correlation of the aggregate posterior and the dimension-wise
//!   KL, each estimated per example from the batch's posteriors ([`AggregateEstimator`]:
//!   minibatch-weighted or minibatch-stratified sampling), the same for each marginal `q(z_id)`;
//! - [`dip_penalty`]: DIP-VAE's moment matching (Kumar et al. 2018) of the aggregate posterior's
//!   covariance to the identity, from the encoder means (DIP-VAE-I) or the whole posterior
//!   (DIP-VAE-II);
//! - [`permute_dims`], [`density_ratio_total_correlation`] and [`tc_discriminator_loss`]:
//!   FactorVAE's total correlation by a discriminator between codes and codes whose dimensions
//!   were shuffled independently across the batch (Kim & Mnih 2018);
//! - [`CapacitySchedule`]: the linearly raised KL target `C` of the annealed-capacity β-VAE
//!   (Burgess et al. 2018), whose loss is `γ |KL − C|` in place of `β KL`.
//!
//! The [`Objective`](crate::Objective) variants `AnnealedCapacity`, `BetaTc` and `Dip` train on
//! these; the FactorVAE needs its own discriminator and optimiser, so it is a model kind of the
//! lab that calls the functions here.

use genae_tensor::{DiagGaussian, LOG_2PI};
use tch::{Kind, Tensor};

use crate::{EstimatorError, Result};

/// β-TC-VAE's three parts of the Monte-Carlo KL `log q(z|x) − log p(z)`, per example (`[M]`).
/// They add up to it exactly: `mutual_information + total_correlation + dimension_kl`.
#[derive(Debug)]
pub struct KlDecomposition {
    /// `log q(z|x) − log q(z)`: the index–code mutual information term.
    pub mutual_information: Tensor,
    /// `log q(z) − Σ_d log q(z_d)`: the total correlation of the aggregate posterior.
    pub total_correlation: Tensor,
    /// `Σ_d log q(z_d) − log p(z_d)`: the dimension-wise KL.
    pub dimension_kl: Tensor,
}

/// How `log q(z_i)` of the aggregate posterior `q(z) = (1/N) Σ_n q(z|x_n)` is estimated from
/// the `M` posteriors of a batch (Chen et al. 2018, appendix C).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AggregateEstimator {
    /// Minibatch-weighted sampling: every posterior of the batch weighs `1/M`,
    /// `log q(z_i) ≈ log Σ_j q(z_i|x_j) − log M`, exact when the batch is the whole data set.
    /// Chen et al.'s code subtracts `log(N·M)` instead, a constant that changes no gradient but
    /// shifts the logged terms (MI by `+log N`, TC by `(d − 1) log N`, dimension-wise KL by
    /// `−d log N`); here the logged terms are estimates of the quantities themselves. The code's
    /// own posterior is over-weighted (`1/M` instead of `1/N`), so MI is at most about `log M`.
    Weighted,
    /// Minibatch-stratified sampling with the training set's size `N ≥ M`: the code's own
    /// posterior weighs `1/N`, each of the other `M − 1` weighs `(N − 1)/(N (M − 1))`.
    Stratified {
        /// Size `N` of the training set.
        dataset_size: i64,
    },
}

/// `log q(z_i,d | x_j)` for every pair `(i, j)` of the batch and every dimension `d`:
/// `[M, M, d]`, `i` indexing the codes `z` (`[M, d]`) and `j` the posteriors.
fn pairwise_log_density(posterior: &DiagGaussian, z: &Tensor) -> Result<Tensor> {
    let diff = z.f_unsqueeze(1)?.f_sub(&posterior.mean().f_unsqueeze(0)?)?;
    let log_var = posterior.log_var().f_unsqueeze(0)?;
    let per_dim = diff.square() * (-&log_var).exp() + log_var + LOG_2PI;
    Ok(per_dim * -0.5)
}

fn check_codes(posterior: &DiagGaussian, z: &Tensor) -> Result<()> {
    let (want, got) = (posterior.mean().size(), z.size());
    if want.len() != 2 || want != got {
        return Err(EstimatorError::InvalidArgument {
            name: "z",
            reason: format!("must be [M, d] like the posterior {want:?}, got {got:?}"),
        });
    }
    Ok(())
}

/// The log weights `[M, M, 1]` of the posteriors `j` in the estimate of `log q(z_i)`.
fn log_weights(estimator: AggregateEstimator, m: i64, like: &Tensor) -> Result<Tensor> {
    let options = (like.kind(), like.device());
    let weights = match estimator {
        AggregateEstimator::Weighted => Tensor::f_full([m, m], -(m as f64).ln(), options)?,
        AggregateEstimator::Stratified { dataset_size } => {
            if dataset_size < m || m < 2 {
                return Err(EstimatorError::InvalidArgument {
                    name: "dataset_size",
                    reason: format!(
                        "stratified sampling needs a batch of M ≥ 2 and N ≥ M, got M = {m}, \
                         N = {dataset_size}"
                    ),
                });
            }
            let n = dataset_size as f64;
            let other = ((n - 1.0) / (n * (m - 1) as f64)).ln();
            let own = -n.ln();
            let eye = Tensor::f_eye(m, options)?;
            eye.f_mul_scalar(own - other)?.f_add_scalar(other)?
        }
    };
    Ok(weights.f_unsqueeze(-1)?)
}

/// The estimates of β-TC-VAE's KL decomposition for codes `z` (`[M, d]`, `z_i` drawn from the
/// `i`-th row of `posterior`) under the factorised `prior` (same shape), the aggregate
/// posterior estimated by `estimator`. Differentiable.
///
/// ```
/// use genae_estimators::factorised::{kl_decomposition, AggregateEstimator};
/// use genae_tensor::DiagGaussian;
/// use tch::{Device, Kind, Tensor};
/// let opts = (Kind::Double, Device::Cpu);
/// let q = DiagGaussian::new(Tensor::randn([8, 3], opts), Tensor::zeros([8, 3], opts) - 1.0).unwrap();
/// let p = DiagGaussian::standard_like(q.mean()).unwrap();
/// let z = q.sample();
/// let parts = kl_decomposition(&q, &z, &p, AggregateEstimator::Weighted).unwrap();
/// let sum = &parts.mutual_information + &parts.total_correlation + &parts.dimension_kl;
/// let kl = q.log_prob(&z).unwrap() - p.log_prob(&z).unwrap();
/// assert!(sum.allclose(&kl, 1e-10, 1e-10, false));
/// ```
pub fn kl_decomposition(
    posterior: &DiagGaussian,
    z: &Tensor,
    prior: &DiagGaussian,
    estimator: AggregateEstimator,
) -> Result<KlDecomposition> {
    check_codes(posterior, z)?;
    let m = z.size()[0];
    let pairs = pairwise_log_density(posterior, z)?; // [M, M, d]
    let weights = log_weights(estimator, m, z)?; // [M, M, 1]
    let joint = pairs
        .f_sum_dim_intlist(-1, false, None::<Kind>)?
        .f_add(&weights.f_squeeze_dim(-1)?)?;
    let weighted = pairs.f_add(&weights)?;
    let log_q_joint = joint.f_logsumexp(1, false)?;
    let log_q_marginals =
        weighted
            .f_logsumexp(1, false)?
            .f_sum_dim_intlist(-1, false, None::<Kind>)?;
    let log_q_given_x = posterior.log_prob(z)?;
    let log_prior = prior.log_prob(z)?;
    Ok(KlDecomposition {
        mutual_information: log_q_given_x - &log_q_joint,
        total_correlation: &log_q_joint - &log_q_marginals,
        dimension_kl: log_q_marginals - log_prior,
    })
}

/// Which covariance DIP-VAE matches to the identity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DipVariant {
    /// DIP-VAE-I: the covariance of the encoder means over the batch, `Cov[μ(x)]`.
    I,
    /// DIP-VAE-II: the covariance of the aggregate posterior, `E[diag σ²(x)] + Cov[μ(x)]`.
    Ii,
}

/// DIP-VAE's penalty on a batch and its two parts (scalars).
#[derive(Debug)]
pub struct DipPenalty {
    /// `λ_od Σ_{i≠j} C_ij² + λ_d Σ_i (C_ii − 1)²`: what is added to the loss.
    pub penalty: Tensor,
    /// `Σ_{i≠j} C_ij²`, unweighted.
    pub off_diagonal: Tensor,
    /// `Σ_i (C_ii − 1)²`, unweighted.
    pub diagonal: Tensor,
}

/// DIP-VAE's moment-matching penalty for the `[M, d]` `posterior` of a batch (`M ≥ 2`), with
/// `C` the batch covariance of [`DipVariant`] (divided by `M`, as disentanglement_lib does).
///
/// ```
/// use genae_estimators::factorised::{dip_penalty, DipVariant};
/// use genae_tensor::DiagGaussian;
/// use tch::{Device, Kind, Tensor};
/// let opts = (Kind::Double, Device::Cpu);
/// // Means ±1 in each dimension independently: Cov[μ] = I, so DIP-VAE-I has nothing to add.
/// let mean = Tensor::from_slice(&[1.0, 1.0, 1.0, -1.0, -1.0, 1.0, -1.0, -1.0]).view([4, 2]);
/// let q = DiagGaussian::new(mean, Tensor::zeros([4, 2], opts)).unwrap();
/// let out = dip_penalty(&q, DipVariant::I, 10.0, 100.0).unwrap();
/// assert!(out.penalty.double_value(&[]).abs() < 1e-12);
/// ```
pub fn dip_penalty(
    posterior: &DiagGaussian,
    variant: DipVariant,
    lambda_off_diagonal: f64,
    lambda_diagonal: f64,
) -> Result<DipPenalty> {
    let size = posterior.mean().size();
    if size.len() != 2 || size[0] < 2 {
        return Err(EstimatorError::InvalidArgument {
            name: "posterior",
            reason: format!("must be [M, d] with M ≥ 2 for a covariance, got {size:?}"),
        });
    }
    for (name, value) in [
        ("lambda_off_diagonal", lambda_off_diagonal),
        ("lambda_diagonal", lambda_diagonal),
    ] {
        crate::sampling::non_negative(name, value)?;
    }
    let mean = posterior.mean();
    let centred = mean.f_sub(&mean.f_mean_dim(0, true, None::<Kind>)?)?;
    let mut cov = centred.f_transpose(0, 1)?.f_matmul(&centred)? / size[0] as f64;
    if variant == DipVariant::Ii {
        let expected_var = posterior.variance().f_mean_dim(0, false, None::<Kind>)?;
        cov = cov.f_add(&expected_var.f_diag_embed(0, -2, -1)?)?;
    }
    let diag = cov.f_diagonal(0, 0, 1)?;
    let off_diagonal = cov.square().f_sum(None::<Kind>)? - diag.square().f_sum(None::<Kind>)?;
    let diagonal = (diag - 1.0).square().f_sum(None::<Kind>)?;
    Ok(DipPenalty {
        penalty: &off_diagonal * lambda_off_diagonal + &diagonal * lambda_diagonal,
        off_diagonal,
        diagonal,
    })
}

/// FactorVAE's draws from the product of the marginals: each column of `z` (`[M, d]`) shuffled
/// by its own random permutation of the batch (libtorch's generator). No gradient flows back.
pub fn permute_dims(z: &Tensor) -> Result<Tensor> {
    let size = z.size();
    if size.len() != 2 || size[0] < 1 {
        return Err(EstimatorError::InvalidArgument {
            name: "z",
            reason: format!("must be [M, d] with M ≥ 1, got {size:?}"),
        });
    }
    let (m, d) = (size[0], size[1]);
    let index = Tensor::f_rand([m, d], (Kind::Float, z.device()))?.f_argsort(0, false)?;
    Ok(z.detach().f_gather(0, &index, false)?)
}

/// FactorVAE's estimate of the total correlation from the discriminator's logits (`[M]`,
/// positive for "a code of the joint") at the batch's codes: `log D/(1 − D)` per example,
/// which is the logit itself. Its mean times `γ` is added to the VAE's loss.
pub fn density_ratio_total_correlation(joint_logits: &Tensor) -> Result<Tensor> {
    Ok(joint_logits.f_reshape([-1])?)
}

/// The FactorVAE discriminator's loss: binary cross-entropy with codes of the joint (`joint`
/// logits) as class 1 and permuted codes (`permuted` logits) as class 0, each averaged over its
/// batch and the two halves averaged (as Kim & Mnih's `0.5·(CE(D(z), 1) + CE(D(z̃), 0))`).
///
/// ```
/// use genae_estimators::factorised::tc_discriminator_loss;
/// use tch::Tensor;
/// // A discriminator that knows nothing (logit 0) pays ln 2.
/// let loss = tc_discriminator_loss(&Tensor::zeros([5], tch::kind::FLOAT_CPU), &Tensor::zeros([7], tch::kind::FLOAT_CPU)).unwrap();
/// assert!((loss.double_value(&[]) - 2f64.ln()).abs() < 1e-6);
/// ```
pub fn tc_discriminator_loss(joint: &Tensor, permuted: &Tensor) -> Result<Tensor> {
    // −log σ(a) = softplus(−a); −log(1 − σ(b)) = softplus(b).
    let real = joint.f_neg()?.f_softplus()?.f_mean(None::<Kind>)?;
    let fake = permuted.f_softplus()?.f_mean(None::<Kind>)?;
    Ok((real + fake) * 0.5)
}

/// The annealed-capacity β-VAE's KL target: `C = max · min(1, step / steps)` nats (Burgess et
/// al. 2018 raise it to 25 nats over 100 000 steps on dSprites, with `γ = 1000`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CapacitySchedule {
    /// The final capacity `C_max` in nats.
    pub max: f64,
    /// Steps over which `C` rises from 0 to `max` (0: `max` from the start).
    pub steps: u64,
}

impl CapacitySchedule {
    /// The capacity at optimisation step `step` (from 0).
    ///
    /// ```
    /// use genae_estimators::factorised::CapacitySchedule;
    /// let c = CapacitySchedule { max: 25.0, steps: 100 };
    /// assert_eq!(c.capacity(0), 0.0);
    /// assert_eq!(c.capacity(40), 10.0);
    /// assert_eq!(c.capacity(1000), 25.0);
    /// ```
    pub fn capacity(&self, step: u64) -> f64 {
        if self.steps == 0 || step >= self.steps {
            self.max
        } else {
            self.max * step as f64 / self.steps as f64
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    const OPTS: (Kind, Device) = (Kind::Double, Device::Cpu);

    fn gaussian(mean: &[f64], log_var: &[f64], d: i64) -> DiagGaussian {
        let m = mean.len() as i64 / d;
        DiagGaussian::new(
            Tensor::from_slice(mean).view([m, d]),
            Tensor::from_slice(log_var).view([m, d]),
        )
        .unwrap()
    }

    fn normal_log_density(x: f64, mean: f64, log_var: f64) -> f64 {
        -0.5 * (LOG_2PI + log_var + (x - mean).powi(2) / log_var.exp())
    }

    fn log_sum_exp(v: &[f64]) -> f64 {
        let top = v.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        top + v.iter().map(|x| (x - top).exp()).sum::<f64>().ln()
    }

    #[test]
    fn decomposition_matches_loops_over_a_tiny_batch() {
        let _rng = crate::torch_rng_lock();
        let (mean, log_var) = (
            [0.3, -1.0, 1.2, 0.4, -0.5, 0.9],
            [-0.2, 0.1, -1.0, 0.3, 0.5, -0.4],
        );
        let z = [0.1, -0.7, 1.5, 0.0, -0.2, 1.4];
        let (m, d, n) = (3usize, 2usize, 50i64);
        let q = gaussian(&mean, &log_var, 2);
        let p = DiagGaussian::standard_like(q.mean()).unwrap();
        let zt = Tensor::from_slice(&z).view([3, 2]);
        let stratified = AggregateEstimator::Stratified { dataset_size: n };
        for estimator in [AggregateEstimator::Weighted, stratified] {
            let parts = kl_decomposition(&q, &zt, &p, estimator).unwrap();
            // The weight of posterior j in the estimate of q(z_i).
            let weight = |i: usize, j: usize| match estimator {
                AggregateEstimator::Weighted => 1.0 / m as f64,
                AggregateEstimator::Stratified { .. } if i == j => 1.0 / n as f64,
                AggregateEstimator::Stratified { .. } => {
                    (n - 1) as f64 / (n as f64 * (m - 1) as f64)
                }
            };
            for i in 0..m {
                let comp = |j: usize, k: usize| {
                    normal_log_density(z[i * d + k], mean[j * d + k], log_var[j * d + k])
                };
                let joint: Vec<f64> = (0..m)
                    .map(|j| weight(i, j).ln() + (0..d).map(|k| comp(j, k)).sum::<f64>())
                    .collect();
                let log_qz = log_sum_exp(&joint);
                let log_marg: f64 = (0..d)
                    .map(|k| {
                        log_sum_exp(
                            &(0..m)
                                .map(|j| weight(i, j).ln() + comp(j, k))
                                .collect::<Vec<_>>(),
                        )
                    })
                    .sum();
                let log_q_given_x: f64 = (0..d).map(|k| comp(i, k)).sum();
                let log_p: f64 = (0..d)
                    .map(|k| normal_log_density(z[i * d + k], 0.0, 0.0))
                    .sum();
                let want = [log_q_given_x - log_qz, log_qz - log_marg, log_marg - log_p];
                let got = [
                    &parts.mutual_information,
                    &parts.total_correlation,
                    &parts.dimension_kl,
                ];
                for (w, g) in want.iter().zip(got) {
                    let g = g.double_value(&[i as i64]);
                    assert!((g - w).abs() < 1e-12, "{estimator:?} {i}: {g} vs {w}");
                }
            }
        }
        let small = AggregateEstimator::Stratified { dataset_size: 2 };
        let bad = kl_decomposition(&q, &zt, &p, small)
            .unwrap_err()
            .to_string();
        assert!(bad.contains("dataset_size"), "{bad}");
        let bad = kl_decomposition(&q, &zt.narrow(0, 0, 2), &p, AggregateEstimator::Weighted)
            .unwrap_err()
            .to_string();
        assert!(bad.contains("z"), "{bad}");
    }

    /// Posteriors `N(μ_j, s² I)` with means from a correlated 2-d Gaussian: the aggregate is
    /// (nearly) `N(0, Σ_μ + s² I)`, whose total correlation is `−½ ln(1 − r²)`; with the whole
    /// data set as the batch the MWS estimate is that mixture's, so its mean TC is the closed form.
    #[test]
    fn total_correlation_of_a_correlated_gaussian_aggregate_is_the_closed_form() {
        let _rng = crate::torch_rng_lock();
        tch::manual_seed(21);
        let (n, rho, s): (i64, f64, f64) = (3000, 0.8, 0.5);
        let e = Tensor::randn([n, 2], OPTS);
        let e1 = e.narrow(1, 0, 1);
        let e2 = e.narrow(1, 1, 1);
        let mu = Tensor::cat(&[&e1, &(&e1 * rho + e2 * (1.0 - rho * rho).sqrt())], 1);
        let q = DiagGaussian::new(mu, Tensor::full([n, 2], (s * s).ln(), OPTS)).unwrap();
        let p = DiagGaussian::standard_like(q.mean()).unwrap();
        let z = q.sample();
        let parts = kl_decomposition(&q, &z, &p, AggregateEstimator::Weighted).unwrap();
        let r = rho / (1.0 + s * s);
        let want = -0.5 * (1.0 - r * r).ln();
        let got = parts.total_correlation.mean(Kind::Double).double_value(&[]);
        assert!((got - want).abs() < 0.03, "TC {got} vs closed form {want}");
        // Uncorrelated means: no total correlation.
        let q0 = DiagGaussian::new(e, Tensor::full([n, 2], (s * s).ln(), OPTS)).unwrap();
        let parts = kl_decomposition(&q0, &q0.sample(), &p, AggregateEstimator::Weighted).unwrap();
        let got = parts.total_correlation.mean(Kind::Double).double_value(&[]);
        assert!(got.abs() < 0.03, "TC of independent dimensions {got}");
    }

    #[test]
    fn dip_penalties_match_a_hand_covariance() {
        let _rng = crate::torch_rng_lock();
        let mean = [1.0, 2.0, 3.0, 0.0, -1.0, 1.0];
        let log_var = [
            0.0,
            (0.5f64).ln(),
            (2.0f64).ln(),
            0.0,
            (3.0f64).ln(),
            (0.5f64).ln(),
        ];
        let q = gaussian(&mean, &log_var, 2);
        // Means (1,2), (3,0), (−1,1): mean (1,1); centred (0,1), (2,−1), (−2,0).
        let cov_mu = [[8.0 / 3.0, -2.0 / 3.0], [-2.0 / 3.0, 2.0 / 3.0]];
        let ev = [(1.0 + 2.0 + 3.0) / 3.0, (0.5 + 1.0 + 0.5) / 3.0];
        for (variant, cov) in [
            (DipVariant::I, cov_mu),
            (
                DipVariant::Ii,
                [
                    [cov_mu[0][0] + ev[0], cov_mu[0][1]],
                    [cov_mu[1][0], cov_mu[1][1] + ev[1]],
                ],
            ),
        ] {
            let out = dip_penalty(&q, variant, 3.0, 7.0).unwrap();
            let off = 2.0 * cov[0][1] * cov[0][1];
            let diag = (cov[0][0] - 1.0f64).powi(2) + (cov[1][1] - 1.0f64).powi(2);
            let v = |t: &Tensor| t.double_value(&[]);
            assert!((v(&out.off_diagonal) - off).abs() < 1e-12, "{variant:?}");
            assert!((v(&out.diagonal) - diag).abs() < 1e-12, "{variant:?}");
            assert!((v(&out.penalty) - (3.0 * off + 7.0 * diag)).abs() < 1e-12);
        }
        let one = gaussian(&[1.0, 2.0], &[0.0, 0.0], 2);
        assert!(dip_penalty(&one, DipVariant::I, 1.0, 1.0)
            .unwrap_err()
            .to_string()
            .contains("posterior"));
        assert!(dip_penalty(&q, DipVariant::I, -1.0, 1.0)
            .unwrap_err()
            .to_string()
            .contains("lambda_off_diagonal"));
    }

    #[test]
    fn permuted_codes_keep_each_marginal_and_lose_the_correlation() {
        let _rng = crate::torch_rng_lock();
        tch::manual_seed(5);
        let e = Tensor::randn([20_000, 1], OPTS);
        let z = Tensor::cat(&[&e, &(&e * 2.0 + 1.0)], 1).set_requires_grad(true);
        let p = permute_dims(&z).unwrap();
        assert!(!p.requires_grad());
        let sorted = |t: &Tensor| t.sort(0, false).0;
        assert!(
            sorted(&p).equal(&sorted(&z.detach())),
            "a column lost or gained values"
        );
        let c = Tensor::stack(&[p.select(1, 0), p.select(1, 1)], 0).corrcoef();
        assert!(c.double_value(&[0, 1]).abs() < 0.03, "{c}");
        assert!(permute_dims(&Tensor::zeros([3], OPTS)).is_err());
    }

    #[test]
    fn discriminator_loss_is_the_mean_cross_entropy() {
        let _rng = crate::torch_rng_lock();
        let joint = [2.0, -1.0];
        let permuted = [0.5, -3.0, 1.0];
        let sig = |a: f64| 1.0 / (1.0 + (-a).exp());
        let real: f64 = joint.iter().map(|&a| -sig(a).ln()).sum::<f64>() / 2.0;
        let fake: f64 = permuted.iter().map(|&b| -(1.0 - sig(b)).ln()).sum::<f64>() / 3.0;
        let got =
            tc_discriminator_loss(&Tensor::from_slice(&joint), &Tensor::from_slice(&permuted))
                .unwrap()
                .double_value(&[]);
        assert!((got - 0.5 * (real + fake)).abs() < 1e-12);
        let tc = density_ratio_total_correlation(&Tensor::from_slice(&joint).view([2, 1])).unwrap();
        assert_eq!(tc.size(), vec![2]);
    }
}
