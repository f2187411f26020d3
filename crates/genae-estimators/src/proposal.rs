//! Importance sampling of `log p(x)` with a given Gaussian proposal, for models whose encoder
//! has no density (AVB): the moment-matched Gaussian of adaptive contrast is the natural
//! proposal (methods.md §2 and §5).

use genae_tensor::DiagGaussian;
use genae_zoo::LatentVariableModel;
use tch::{Kind, Tensor};

use crate::iwae::chunked_log_mean_weight;
use crate::sampling::{at_least_one, non_empty};
use crate::{EstimatorError, Result};

/// The importance-sampling estimate `log (1/k) Σ_i p(x, z_i) / r(z_i|x)`,
/// `z_i ~ r(z|x) = N(mean, diag(std²))`, per example (`[N]`), without gradients and in chunks
/// of at most `chunk_size` samples per example, exactly like [`log_likelihood_estimate`]
/// (`L_k`) but with the proposal given instead of the model's `q(z|x)`: `mean` and `std` are
/// `[N, d]`, one row per example of `x` (`[N, ...]`), `std > 0`.
///
/// `p(x, z) = p(z) p(x|z)` comes from [`LatentVariableModel::prior`] and
/// [`LatentVariableModel::log_likelihood`]; `encode` is never called, so the model's encoder
/// may be implicit. The estimate is a stochastic lower bound of `log p(x)` for any proposal,
/// exact with zero variance when the proposal is the true posterior, and it converges to
/// `log p(x)` as `k` grows when the proposal's tails are at least as heavy as the posterior's:
/// a proposal narrower than the posterior (a moment-matched Gaussian of a sharply peaked
/// implicit `q`, say) converges slowly, and widening `std` a little is the usual remedy. With
/// the same seed and `mean`, `std` set to the model's own `q(z|x)`, the result equals
/// [`log_likelihood_estimate`]'s.
///
/// ```
/// use genae_estimators::gaussian_proposal_log_likelihood;
/// use genae_zoo::LinearGaussian;
///
/// tch::manual_seed(0);
/// let model = LinearGaussian::new(5, &[1.5, 0.6], 0.4).unwrap();
/// let x = model.sample_data(3);
/// let posterior = model.exact_posterior(&x).unwrap();
/// let estimate =
///     gaussian_proposal_log_likelihood(&model, &x, posterior.mean(), &posterior.std(), 100, 32)
///         .unwrap();
/// let exact = model.exact_log_px(&x).unwrap();
/// assert!((estimate - exact).abs().max().double_value(&[]) < 1e-9);
/// ```
///
/// [`log_likelihood_estimate`]: crate::log_likelihood_estimate
pub fn gaussian_proposal_log_likelihood<M: LatentVariableModel + ?Sized>(
    model: &M,
    x: &Tensor,
    mean: &Tensor,
    std: &Tensor,
    k: i64,
    chunk_size: i64,
) -> Result<Tensor> {
    at_least_one("k", k)?;
    at_least_one("chunk_size", chunk_size)?;
    let n = non_empty("x", x)?;
    let shape = [n, model.latent_dim()];
    for (name, t) in [("mean", mean), ("std", std)] {
        if t.size() != shape || !t.is_floating_point() {
            return Err(EstimatorError::InvalidArgument {
                name,
                reason: format!(
                    "must be a floating-point [N, d] = {shape:?} tensor, got {:?} of kind {:?}",
                    t.size(),
                    t.kind()
                ),
            });
        }
    }
    tch::no_grad(|| {
        let bad = std
            .isfinite()
            .logical_not()
            .logical_or(&std.le(0.0))
            .sum(Kind::Int64)
            .int64_value(&[]);
        if bad > 0 {
            return Err(EstimatorError::InvalidArgument {
                name: "std",
                reason: format!("must be finite and > 0 everywhere, {bad} entries are not"),
            });
        }
        let proposal = DiagGaussian::new(mean.detach(), std.detach().log() * 2.0)?;
        chunked_log_mean_weight(model, x, &proposal, k, chunk_size)
    })
}
