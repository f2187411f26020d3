//! The traits estimators and samplers program against, and the latent size they share.

use genae_tensor::DiagGaussian;
use tch::Tensor;

use crate::Result;

/// Anything with a latent space of a fixed number of dimensions: the one place the latent size
/// is named, shared by [`LatentVariableModel`] and
/// [`GenerativeAutoencoder`](crate::GenerativeAutoencoder) (both require it), so a model that
/// implements both has one `latent_dim` and calls to it are never ambiguous.
///
/// ```
/// use genae_zoo::{LatentSpace, Vae, VaeConfig};
/// use tch::{nn, Device};
///
/// let vs = nn::VarStore::new(Device::Cpu);
/// let config = VaeConfig { input_dim: 6, hidden: vec![8], latent_dim: 3, ..Default::default() };
/// assert_eq!(Vae::new(&vs.root(), &config).unwrap().latent_dim(), 3);
/// ```
pub trait LatentSpace {
    /// The number of latent dimensions `d`: codes and posterior draws are `[N, d]`.
    fn latent_dim(&self) -> i64;
}

/// A latent-variable model `p(z) p(x|z)` with an amortised Gaussian posterior `q(z|x)`.
///
/// Estimators (ELBO, importance-weighted bounds) and samplers take `&impl LatentVariableModel`,
/// so a model written in a downstream crate works with them by implementing these methods.
/// Shapes: `x` is `[N, ...]` (flattened by the model as it needs), `z` is `[N, latent_dim]`;
/// per-example quantities are `[N]`. The latent size comes from the supertrait,
/// [`LatentSpace::latent_dim`].
pub trait LatentVariableModel: LatentSpace {
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
