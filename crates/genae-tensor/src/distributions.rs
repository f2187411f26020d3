//! The diagonal Gaussian, the distribution every VAE-family encoder returns.

use tch::{Kind, Tensor};

use crate::likelihood::LOG_2PI;
use crate::{Result, TensorError};

/// A Gaussian with diagonal covariance over the **last** dimension of its parameters
/// (`[batch, latent]`, or any leading shape), parameterised by mean and log-variance.
///
/// Densities and KL divergences are summed over the last dimension, so a `[N, d]` Gaussian gives
/// one number per example (shape `[N]`).
#[derive(Debug)]
pub struct DiagGaussian {
    mean: Tensor,
    log_var: Tensor,
}

impl DiagGaussian {
    /// A Gaussian with this mean and log-variance (same shape, at least one dimension).
    pub fn new(mean: Tensor, log_var: Tensor) -> Result<Self> {
        if mean.size() != log_var.size() || mean.dim() == 0 {
            return Err(TensorError::Shape {
                what: "DiagGaussian::new",
                detail: format!(
                    "mean {:?} and log_var {:?} must have the same shape, with at least one dimension",
                    mean.size(),
                    log_var.size()
                ),
            });
        }
        Ok(Self { mean, log_var })
    }

    /// The standard normal `N(0, I)` with the shape, kind and device of `like`.
    pub fn standard_like(like: &Tensor) -> Result<Self> {
        Self::new(like.zeros_like(), like.zeros_like())
    }

    /// The mean (also the mode).
    pub fn mean(&self) -> &Tensor {
        &self.mean
    }

    /// The log-variance.
    pub fn log_var(&self) -> &Tensor {
        &self.log_var
    }

    /// The standard deviation, `exp(log_var / 2)`.
    pub fn std(&self) -> Tensor {
        (&self.log_var * 0.5).exp()
    }

    /// The variance, `exp(log_var)`.
    pub fn variance(&self) -> Tensor {
        self.log_var.exp()
    }

    /// A reparameterised sample `mean + std * eps`, `eps ~ N(0, I)`: gradients flow to the
    /// parameters.
    pub fn rsample(&self) -> Tensor {
        &self.mean + self.std() * noise_of_shape(&self.mean.size(), &self.mean)
    }

    /// `k` reparameterised samples stacked along a new leading dimension: shape `[k, ...]`.
    pub fn rsample_n(&self, k: i64) -> Tensor {
        let mut shape = vec![k];
        shape.extend(self.mean.size());
        let eps = noise_of_shape(&shape, &self.mean);
        self.mean.unsqueeze(0) + self.std().unsqueeze(0) * eps
    }

    /// A sample with no gradient attached.
    pub fn sample(&self) -> Tensor {
        tch::no_grad(|| self.rsample())
    }

    /// `log N(z; mean, diag(var))`, summed over the last dimension. `z` may carry extra leading
    /// dimensions (e.g. `[k, N, d]` for `k` samples of an `[N, d]` Gaussian).
    pub fn log_prob(&self, z: &Tensor) -> Result<Tensor> {
        let diff = z.f_sub(&self.mean).map_err(|_| TensorError::Shape {
            what: "DiagGaussian::log_prob",
            detail: format!(
                "z {:?} does not broadcast against the Gaussian's {:?}",
                z.size(),
                self.mean.size()
            ),
        })?;
        let per_dim = (&diff * &diff) * (-&self.log_var).exp() + &self.log_var + LOG_2PI;
        Ok(per_dim.sum_dim_intlist(-1, false, None::<Kind>) * -0.5)
    }

    /// `KL(self || N(0, I)) = ½ Σ (mean² + var − log var − 1)`, summed over the last dimension.
    pub fn kl_to_standard_normal(&self) -> Tensor {
        let per_dim = self.mean.square() + self.variance() - &self.log_var - 1.0;
        per_dim.sum_dim_intlist(-1, false, None::<Kind>) * 0.5
    }

    /// `KL(self || other)` for another diagonal Gaussian of a broadcast-compatible shape:
    /// `½ Σ (log var_o − log var_s + (var_s + (mean_s − mean_o)²) / var_o − 1)`.
    pub fn kl(&self, other: &DiagGaussian) -> Result<Tensor> {
        let diff = self
            .mean
            .f_sub(&other.mean)
            .map_err(|_| TensorError::Shape {
                what: "DiagGaussian::kl",
                detail: format!(
                    "means {:?} and {:?} do not broadcast",
                    self.mean.size(),
                    other.mean.size()
                ),
            })?;
        let per_dim = &other.log_var - &self.log_var
            + (self.variance() + diff.square()) * (-&other.log_var).exp()
            - 1.0;
        Ok(per_dim.sum_dim_intlist(-1, false, None::<Kind>) * 0.5)
    }

    /// Moves both parameters to `device`.
    pub fn to_device(&self, device: tch::Device) -> Self {
        Self {
            mean: self.mean.to_device(device),
            log_var: self.log_var.to_device(device),
        }
    }
}

/// Standard normal noise of `shape` for a Gaussian whose parameters are shaped like `like`
/// (`shape` = extra leading sample dimensions + `like`'s): the first dimension of `like` is the
/// batch, so a data-parallel process draws its rows of the global batch ([`crate::noise`]).
fn noise_of_shape(shape: &[i64], like: &Tensor) -> Tensor {
    let options = (like.kind(), like.device());
    if like.dim() == 0 {
        return Tensor::randn(shape, options);
    }
    let batch_dim = shape.len() - like.dim();
    crate::noise::randn(shape, batch_dim, options).unwrap_or_else(|_| Tensor::randn(shape, options))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    fn gaussian(mean: &[f32], log_var: &[f32]) -> DiagGaussian {
        DiagGaussian::new(
            Tensor::from_slice(mean).view([1, -1]),
            Tensor::from_slice(log_var).view([1, -1]),
        )
        .unwrap()
    }

    fn scalar(t: &Tensor) -> f64 {
        t.double_value(&[0])
    }

    #[test]
    fn log_prob_matches_hand_computed_values() {
        let _rng = crate::torch_rng_lock();
        // N(z; 1, 4) at z = 3 in 1-d: -½ ln(2π·4) − (3−1)²/(2·4) = -0.5 ln(8π) − 0.5.
        let q = gaussian(&[1.0], &[4f32.ln()]);
        let got = scalar(
            &q.log_prob(&Tensor::from_slice(&[3f32]).view([1, 1]))
                .unwrap(),
        );
        let want = -0.5 * (8.0 * std::f64::consts::PI).ln() - 0.5;
        assert!((got - want).abs() < 1e-5, "{got} vs {want}");

        // 2-d standard normal at the origin: -ln(2π).
        let p = gaussian(&[0.0, 0.0], &[0.0, 0.0]);
        let got = scalar(
            &p.log_prob(&Tensor::zeros([1, 2], (Kind::Float, Device::Cpu)))
                .unwrap(),
        );
        assert!((got + (2.0 * std::f64::consts::PI).ln()).abs() < 1e-5);
    }

    #[test]
    fn log_prob_rejects_a_wrong_latent_size() {
        let _rng = crate::torch_rng_lock();
        let q = gaussian(&[0.0, 0.0], &[0.0, 0.0]);
        let err = q
            .log_prob(&Tensor::zeros([1, 3], (Kind::Float, Device::Cpu)))
            .unwrap_err();
        assert!(err.to_string().contains("[1, 3]"), "{err}");
    }

    #[test]
    fn new_rejects_mismatched_parameters() {
        let _rng = crate::torch_rng_lock();
        let err = DiagGaussian::new(
            Tensor::zeros([2, 3], (Kind::Float, Device::Cpu)),
            Tensor::zeros([2, 4], (Kind::Float, Device::Cpu)),
        )
        .unwrap_err();
        assert!(err.to_string().contains("[2, 3]") && err.to_string().contains("[2, 4]"));
    }

    #[test]
    fn analytic_kl_to_standard_normal_matches_monte_carlo() {
        let _rng = crate::torch_rng_lock();
        tch::manual_seed(7);
        let q = gaussian(&[0.5, -1.0, 2.0], &[0.3, -0.7, 1.1]);
        let p = DiagGaussian::standard_like(q.mean()).unwrap();
        let z = q.rsample_n(200_000); // [k, 1, 3]
        let mc = (q.log_prob(&z).unwrap() - p.log_prob(&z).unwrap()).mean(Kind::Double);
        let analytic = scalar(&q.kl_to_standard_normal());
        // Hand value: ½ Σ (μ² + e^s − s − 1).
        let hand: f64 = [(0.5f64, 0.3f64), (-1.0, -0.7), (2.0, 1.1)]
            .iter()
            .map(|&(m, s)| 0.5 * (m * m + s.exp() - s - 1.0))
            .sum();
        assert!((analytic - hand).abs() < 1e-5, "{analytic} vs {hand}");
        let mc = mc.double_value(&[]);
        assert!(
            (mc - analytic).abs() < 0.02,
            "MC {mc} vs analytic {analytic}"
        );
    }

    #[test]
    fn kl_between_diagonal_gaussians_matches_its_formula_and_monte_carlo() {
        let _rng = crate::torch_rng_lock();
        tch::manual_seed(11);
        let (m1, s1) = ([0.2f64, -0.4], [0.5f64, -0.3]);
        let (m2, s2) = ([1.0f64, 0.3], [-0.2f64, 0.8]);
        let q = gaussian(&[0.2, -0.4], &[0.5, -0.3]);
        let r = gaussian(&[1.0, 0.3], &[-0.2, 0.8]);
        let formula: f64 = (0..2)
            .map(|j| {
                0.5 * (s2[j] - s1[j] + (s1[j].exp() + (m1[j] - m2[j]).powi(2)) / s2[j].exp() - 1.0)
            })
            .sum();
        let analytic = scalar(&q.kl(&r).unwrap());
        assert!((analytic - formula).abs() < 1e-5, "{analytic} vs {formula}");
        let z = q.rsample_n(200_000);
        let mc = (q.log_prob(&z).unwrap() - r.log_prob(&z).unwrap())
            .mean(Kind::Double)
            .double_value(&[]);
        assert!((mc - analytic).abs() < 0.02, "MC {mc} vs {analytic}");
        // KL to N(0, I) is the special case of KL to another Gaussian.
        let p = DiagGaussian::standard_like(q.mean()).unwrap();
        let a = scalar(&q.kl(&p).unwrap());
        assert!((a - scalar(&q.kl_to_standard_normal())).abs() < 1e-6);
    }

    #[test]
    fn rsample_has_the_right_moments_and_carries_gradients() {
        let _rng = crate::torch_rng_lock();
        tch::manual_seed(3);
        let mean = Tensor::from_slice(&[1.5f32, -2.0])
            .view([1, 2])
            .set_requires_grad(true);
        let log_var = Tensor::from_slice(&[0.0f32, 2.0]).view([1, 2]);
        let q = DiagGaussian::new(mean.shallow_clone(), log_var).unwrap();
        let z = q.rsample_n(100_000);
        let m = z.mean_dim(0, false, Kind::Double);
        let v = z.var_dim(0, false, false).to_kind(Kind::Double);
        assert!((m.double_value(&[0, 0]) - 1.5).abs() < 0.02);
        assert!((m.double_value(&[0, 1]) + 2.0).abs() < 0.03);
        assert!((v.double_value(&[0, 0]) - 1.0).abs() < 0.02);
        assert!((v.double_value(&[0, 1]) - 2f64.exp()).abs() < 0.1);
        z.sum(Kind::Float).backward();
        // d/dmean of Σ_k z_k is k for each coordinate.
        assert_eq!(mean.grad().double_value(&[0, 0]), 100_000.0);
    }
}
