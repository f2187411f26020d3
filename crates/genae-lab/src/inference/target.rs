//! The target model: [`EightSchools`], its data, log prior, likelihood and log joint.

use std::f64::consts::PI;

use serde::{Deserialize, Serialize};
use tch::Tensor;

use crate::config::ConfigError;

/// The rescaled eight-schools data of the AVB paper: effects `y`.
pub const EIGHT_SCHOOLS_Y: [f64; 8] = [2.8, 0.8, -0.3, 0.7, -0.1, 0.1, 1.8, 1.2];
/// … and their standard errors `σ`.
pub const EIGHT_SCHOOLS_SIGMA: [f64; 8] = [0.8, 0.5, 0.8, 0.6, 0.5, 0.6, 0.5, 0.4];

/// The eight-schools model, non-centred: `θ = (μ, τ, η₁…η_J)`, a standard-normal prior on
/// every coordinate and `yⱼ ~ N(μ + τ·ηⱼ, σⱼ)`.
///
/// ```
/// use genae_lab::EightSchools;
/// use tch::{Device, Kind, Tensor};
///
/// let model = EightSchools::rescaled();
/// assert_eq!(model.dim(), 10);
/// let theta = Tensor::zeros([3, 10], (Kind::Double, Device::Cpu));
/// assert_eq!(model.log_joint(&theta).size(), vec![3]);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EightSchools {
    /// Observed effects `yⱼ`.
    pub y: Vec<f64>,
    /// Their standard errors `σⱼ`.
    pub sigma: Vec<f64>,
}

impl EightSchools {
    /// The paper's rescaled data (`EIGHT_SCHOOLS_Y`, `EIGHT_SCHOOLS_SIGMA`).
    pub fn rescaled() -> Self {
        Self {
            y: EIGHT_SCHOOLS_Y.to_vec(),
            sigma: EIGHT_SCHOOLS_SIGMA.to_vec(),
        }
    }

    /// Parameters: `2 + J`.
    pub fn dim(&self) -> i64 {
        2 + self.y.len() as i64
    }

    /// `log p(θ)` per row of `θ` `[C, 2 + J]` (the standard normal), `[C]`.
    pub fn log_prior(&self, theta: &Tensor) -> Tensor {
        (theta.square().sum_dim_intlist(-1, false, theta.kind())
            + self.dim() as f64 * (2.0 * PI).ln())
            * -0.5
    }

    /// `log p(y | θ)` per row, `[C]`.
    pub fn log_likelihood(&self, theta: &Tensor) -> Tensor {
        let opts = (theta.kind(), theta.device());
        let y = Tensor::from_slice(&self.y)
            .to_kind(opts.0)
            .to_device(opts.1);
        let sigma = Tensor::from_slice(&self.sigma)
            .to_kind(opts.0)
            .to_device(opts.1);
        let j = self.y.len() as i64;
        let mu = theta.narrow(-1, 0, 1);
        let tau = theta.narrow(-1, 1, 1);
        let eta = theta.narrow(-1, 2, j);
        let resid = (y - (mu + tau * eta)) / &sigma;
        let log_norm: f64 = self
            .sigma
            .iter()
            .map(|s| s.ln() + 0.5 * (2.0 * PI).ln())
            .sum();
        resid.square().sum_dim_intlist(-1, false, opts.0) * -0.5 - log_norm
    }

    /// `log p(y, θ)` per row, `[C]`.
    pub fn log_joint(&self, theta: &Tensor) -> Tensor {
        self.log_prior(theta) + self.log_likelihood(theta)
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.y.is_empty() || self.y.len() != self.sigma.len() {
            return Err(ConfigError::Invalid {
                field: "target.y",
                reason: format!(
                    "needs one σ per y and at least one school, got {} y and {} σ",
                    self.y.len(),
                    self.sigma.len()
                ),
            });
        }
        if let Some(s) = self.sigma.iter().find(|s| !(s.is_finite() && **s > 0.0)) {
            return Err(ConfigError::Invalid {
                field: "target.sigma",
                reason: format!("standard errors must be positive, got {s}"),
            });
        }
        Ok(())
    }
}

impl Default for EightSchools {
    fn default() -> Self {
        Self::rescaled()
    }
}

#[cfg(test)]
mod tests {
    use tch::{Device, Kind};

    use super::*;

    #[test]
    fn log_joint_matches_a_hand_computation() {
        let model = EightSchools {
            y: vec![1.0, -1.0],
            sigma: vec![0.5, 2.0],
        };
        // θ = (μ, τ, η₁, η₂) = (0.5, 2, 0.25, −1): means 1.0 and −1.5.
        let theta = Tensor::from_slice(&[0.5f64, 2.0, 0.25, -1.0]).view([1, 4]);
        let log_prior = -0.5 * (0.25 + 4.0 + 0.0625 + 1.0) - 2.0 * (2.0 * PI).ln();
        let log_lik = -0.5 * (0.0f64 + 0.0625) - (0.5f64.ln() + 2.0f64.ln()) - (2.0 * PI).ln();
        let got = model.log_joint(&theta).double_value(&[0]);
        assert!((got - (log_prior + log_lik)).abs() < 1e-12, "{got}");
    }

    #[test]
    fn the_likelihood_is_symmetric_in_the_sign_of_tau() {
        let model = EightSchools::rescaled();
        let _rng = crate::torch_rng_lock();
        tch::manual_seed(8);
        let theta = Tensor::randn([5, 10], (Kind::Double, Device::Cpu));
        let flip =
            Tensor::from_slice(&[1.0f64, -1.0, -1.0, -1.0, -1.0, -1.0, -1.0, -1.0, -1.0, -1.0]);
        let a = model.log_joint(&theta);
        let b = model.log_joint(&(&theta * flip));
        assert!(a.allclose(&b, 1e-12, 1e-12, false));
    }
}
