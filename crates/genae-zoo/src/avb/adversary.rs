//! The adversary and what it estimates: the discriminator `T` with the log prior added in, its
//! logistic loss ([`AvbDiscriminatorLoss`]), the adaptive-contrast moments
//! ([`PosteriorMoments`]) and the ELBO estimate ([`AvbPrimal`]) both AVB models share.

use genae_tensor::{DiagGaussian, LOG_2PI};
use tch::{nn, nn::Module, Kind, Tensor};

use crate::networks::bce_with_logits;
use crate::{Activation, Mlp, Result};

/// The smallest standard deviation adaptive contrast divides by.
pub const AVB_MIN_STD: f64 = 1e-4;

/// Mean and standard deviation of `q(z|x)` per example, estimated from draws (no gradient):
/// the moment-matched Gaussian of adaptive contrast.
#[derive(Debug)]
pub struct PosteriorMoments {
    /// `μ(x)`, `[N, d]`.
    pub mean: Tensor,
    /// `σ(x)` (unbiased sample variance, floored at [`AVB_MIN_STD`]), `[N, d]`.
    pub std: Tensor,
}

impl PosteriorMoments {
    /// The moments of `draws` along dimension `dim` (mean, and the unbiased standard deviation
    /// floored at [`AVB_MIN_STD`]), without gradient: `[S, N, d]` draws over `dim = 0` give
    /// `[N, d]` moments, a batch `[S, d]` of one distribution's draws gives `[d]`.
    pub fn from_draws(draws: &Tensor, dim: i64) -> Result<Self> {
        let draws = draws.f_detach()?;
        Ok(Self {
            mean: draws.f_mean_dim(dim, false, None::<Kind>)?,
            std: draws
                .f_std_dim(dim, true, false)?
                .f_clamp_min(AVB_MIN_STD)?
                .f_to_kind(draws.kind())?,
        })
    }

    /// `ẑ = (z − μ) / σ`.
    pub fn normalise(&self, z: &Tensor) -> Tensor {
        (z - &self.mean) / &self.std
    }

    /// `Σ_k log σ_k`, `[N]`.
    pub fn log_std_sum(&self) -> Tensor {
        self.std.log().sum_dim_intlist(-1, false, None::<Kind>)
    }

    /// The moment-matched Gaussian `N(μ, diag σ²)`.
    pub fn gaussian(&self) -> Result<DiagGaussian> {
        Ok(DiagGaussian::new(
            self.mean.shallow_clone(),
            self.std.log() * 2.0,
        )?)
    }
}

/// Codes for one batch: what the encoder drew and what the discriminator sees.
#[derive(Debug)]
pub struct AvbCodes {
    /// `z = g(x, ε)`, `[N, d]`, differentiable in the encoder's parameters.
    pub z: Tensor,
    /// The discriminator's input: `z` itself, or `ẑ = (z − μ)/σ` with adaptive contrast.
    pub contrast: Tensor,
    /// The moments `ẑ` was normalised with (adaptive contrast only).
    pub moments: Option<PosteriorMoments>,
}

/// The discriminator's side of an AVB step.
#[derive(Debug)]
pub struct AvbDiscriminatorLoss {
    /// Mean binary cross-entropy over both halves, posterior pairs labelled 1 and reference
    /// (prior, or `N(0, I)` with adaptive contrast) pairs labelled 0; `ln 2` when `T` cannot
    /// tell them apart. A scalar.
    pub loss: Tensor,
    /// Fraction of both halves classified correctly (no gradient).
    pub accuracy: Tensor,
    /// Mean `T` over the posterior pairs (no gradient): for the optimal `T`, the average
    /// `KL(q(z|x) ‖ p(z))` (with adaptive contrast, `KL(q̂(ẑ|x) ‖ N(0, I))`).
    pub posterior_t: Tensor,
}

/// The encoder and decoder's side of an AVB step.
#[derive(Debug)]
pub struct AvbPrimal {
    /// `−mean ELBO estimate`, to minimise (a scalar; its gradient reaches encoder and decoder,
    /// and the discriminator too unless its variables are frozen: only the encoder's and
    /// decoder's optimisers may step on it).
    pub loss: Tensor,
    /// `log p(x|z)` per example, `[N]` (for [`ImplicitPosterior`](super::ImplicitPosterior),
    /// the log-likelihood `log p(y|θ)` of each draw).
    pub reconstruction: Tensor,
    /// The estimate of `log q(z|x) − log p(z)` per example, `[N]`: `T(x, z)`, or with adaptive
    /// contrast `T(x, ẑ) − ½‖ẑ‖² − (d/2) ln 2π − Σ log σ_k − log p(z)`.
    pub kl: Tensor,
    /// `reconstruction − kl`, the ELBO estimate per example, `[N]`.
    pub elbo: Tensor,
}

/// `T_net`: an MLP from `input_dim` through `hidden` to one value, with leaky ReLUs.
pub(super) fn discriminator_net(path: &nn::Path, input_dim: i64, hidden: &[i64]) -> Result<Mlp> {
    let widths: Vec<i64> = hidden.iter().copied().chain([1]).collect();
    Mlp::new(path, input_dim, &widths, Activation::LeakyRelu, false)
}

/// `log N(z; 0, I)` per row, `[N]`.
pub(super) fn standard_normal_log_density(z: &Tensor) -> Tensor {
    let d = z.size()[1] as f64;
    z.square().sum_dim_intlist(-1, false, None::<Kind>) * -0.5 - 0.5 * d * LOG_2PI
}

/// `T = T_net(input) − log N(z; 0, I)` per row, `[N]`: the discriminator with the log prior
/// added in (`input` is `[x, z]`, or `z` alone for a non-amortised posterior).
pub(super) fn prior_added_logit(t_net: &Mlp, input: &Tensor, z: &Tensor) -> Tensor {
    t_net.forward(input).squeeze_dim(1) - standard_normal_log_density(z)
}

/// The logistic loss of `T`: its values `t_q` on posterior draws labelled 1 and `t_p` on
/// reference draws labelled 0.
pub(super) fn adversarial_loss(t_q: &Tensor, t_p: &Tensor) -> AvbDiscriminatorLoss {
    let loss = (bce_with_logits(t_q, 1.0) + bce_with_logits(t_p, 0.0)) * 0.5;
    let (accuracy, posterior_t) = tch::no_grad(|| {
        let right = t_q.gt(0.0).to_kind(Kind::Float).sum(Kind::Float)
            + t_p.le(0.0).to_kind(Kind::Float).sum(Kind::Float);
        (
            right / (t_q.size()[0] + t_p.size()[0]) as f64,
            t_q.mean(Kind::Float),
        )
    });
    AvbDiscriminatorLoss {
        loss,
        accuracy,
        posterior_t,
    }
}

/// The ELBO estimate `log-likelihood − [log q − log p]` with `t` (the discriminator at
/// `codes.contrast`) standing in for the log ratio; with adaptive contrast
/// `log q(z) = T(ẑ) + log N(ẑ; 0, I) − Σ log σ`, from which `log p(z) = log N(z; 0, I)` is
/// subtracted.
pub(super) fn elbo_estimate(log_likelihood: Tensor, t: Tensor, codes: &AvbCodes) -> AvbPrimal {
    let kl = match &codes.moments {
        None => t,
        Some(m) => {
            t + standard_normal_log_density(&codes.contrast)
                - m.log_std_sum()
                - standard_normal_log_density(&codes.z)
        }
    };
    let elbo = &log_likelihood - &kl;
    AvbPrimal {
        loss: -elbo.mean(Kind::Float),
        reconstruction: log_likelihood,
        kl,
        elbo,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adaptive_contrast_elbo_matches_the_plain_one_for_an_exact_t() {
        let _rng = crate::torch_rng_lock();
        // For a fixed encoder and T replaced by its optimum, both forms give the same
        // ELBO estimate: check the algebra with a Gaussian "q" where everything is known.
        // T*_plain(z) = log q(z) − log p(z); T*_ac(ẑ) = log q̂(ẑ) − log N(ẑ) = 0 for a Gaussian q.
        let z = Tensor::from_slice(&[0.3f64, -1.2, 0.7, 0.1]).view([2, 2]);
        let m = PosteriorMoments {
            mean: Tensor::from_slice(&[0.5f64, -1.0, 0.2, 0.0]).view([2, 2]),
            std: Tensor::from_slice(&[0.4f64, 0.8, 1.5, 0.3]).view([2, 2]),
        };
        let q = m.gaussian().unwrap();
        let plain = q.log_prob(&z).unwrap() - standard_normal_log_density(&z);
        let z_hat = m.normalise(&z);
        let ac =
            standard_normal_log_density(&z_hat) - m.log_std_sum() - standard_normal_log_density(&z);
        assert!(plain.allclose(&ac, 1e-10, 1e-10, false));
    }
}
