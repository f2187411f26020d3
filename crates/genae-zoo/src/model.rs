//! The trait estimators and samplers program against.

use genae_tensor::DiagGaussian;
use tch::Tensor;

use crate::Result;

/// A latent-variable model `p(z) p(x|z)` with an amortised Gaussian posterior `q(z|x)`.
///
/// Estimators (ELBO, importance-weighted bounds) and samplers take `&impl LatentVariableModel`,
/// so a model written in a downstream crate works with them by implementing these methods.
/// Shapes: `x` is `[N, ...]` (flattened by the model as it needs), `z` is `[N, latent_dim]`;
/// per-example quantities are `[N]`.
pub trait LatentVariableModel {
    /// The number of latent dimensions.
    fn latent_dim(&self) -> i64;

    /// The approximate posterior `q(z|x)`.
    fn encode(&self, x: &Tensor) -> Result<DiagGaussian>;

    /// `log p(x|z)` per example, summed over data dimensions.
    fn log_likelihood(&self, x: &Tensor, z: &Tensor) -> Result<Tensor>;

    /// The prior `p(z)` with the shape of `like` (`[N, latent_dim]`); `N(0, I)` by default.
    fn prior(&self, like: &Tensor) -> Result<DiagGaussian> {
        Ok(DiagGaussian::standard_like(like)?)
    }
}

/// Anything that maps codes `z` `[N, d]` to data: the decoder half of a model, so samplers and
/// reports can decode without naming the model (VAE, autoencoder, PCA, a bare
/// [`Decoder`](crate::Decoder)).
pub trait GenerativeDecoder {
    /// The decoder mean `E[x|z]` (pixel probabilities for Bernoulli decoders), flattened to
    /// `[N, D]`.
    fn decode_mean(&self, z: &Tensor) -> Result<Tensor>;
}
