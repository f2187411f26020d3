//! The trait latent-space Markov chains program against: encode, decode, sample the prior.

use tch::{Device, Tensor};

use crate::{GenerativeDecoder, LatentSpace, Result};

/// A model with an encoder and a decoder: `x ↦ z` by `q(z|x)` and `z ↦ x` by `p(x|z)`, plus the
/// prior that chains start from (Creswell et al., 2016).
///
/// Samplers take `&impl GenerativeAutoencoder`, so any model with an encoder (VAE, DVAE, AAE,
/// AVB, the deterministic autoencoder) works with them. Shapes: `x` is `[N, ...]` (flattened by
/// the model as it needs), codes are `[N, d]`, decoded data `[N, D]`. The latent size `d` and
/// the decoder mean come from the supertraits, [`LatentSpace::latent_dim`] and
/// [`GenerativeDecoder::decode_mean`]. For a deterministic encoder
/// [`encode_sample`](Self::encode_sample) and [`encode_mean`](Self::encode_mean) both return
/// the code.
///
/// The other method names differ from [`LatentVariableModel`](crate::LatentVariableModel)'s
/// and the latent size is the supertrait both share, so a model implementing both can be
/// called with both traits in scope.
///
/// ```
/// use genae_zoo::{GenerativeAutoencoder, GenerativeDecoder, LatentSpace, Vae, VaeConfig};
/// use tch::{nn, Device, Kind, Tensor};
///
/// let vs = nn::VarStore::new(Device::Cpu);
/// let config = VaeConfig { input_dim: 6, hidden: vec![8], latent_dim: 2, ..Default::default() };
/// let vae = Vae::new(&vs.root(), &config).unwrap();
/// let z = vae.sample_prior(4, Device::Cpu).unwrap();
/// assert_eq!(z.size(), vec![4, 2]);
/// let x = vae.decode_sample(&z).unwrap(); // Bernoulli draws in {0, 1}
/// assert_eq!(x.size(), vec![4, 6]);
/// assert_eq!(vae.encode_sample(&x).unwrap().size(), vec![4, vae.latent_dim()]);
/// assert_eq!(vae.encode_mean(&x).unwrap().size(), vec![4, 2]);
/// assert_eq!(vae.decode_mean(&z).unwrap().size(), vec![4, 6]);
/// ```
pub trait GenerativeAutoencoder: GenerativeDecoder + LatentSpace {
    /// One draw `z ~ q(z|x)` per example, `[N, d]`, without gradient (the code itself for a
    /// deterministic encoder).
    fn encode_sample(&self, x: &Tensor) -> Result<Tensor>;

    /// The posterior mean `E[z|x]`, `[N, d]` (the code itself for a deterministic encoder).
    fn encode_mean(&self, x: &Tensor) -> Result<Tensor>;

    /// One draw `x ~ p(x|z)` per code, flattened to `[N, D]`, without gradient.
    fn decode_sample(&self, z: &Tensor) -> Result<Tensor>;

    /// `n` codes `[n, d]` drawn from the prior `p(z)` on `device`; an error for models without
    /// a prior (the deterministic autoencoder).
    fn sample_prior(&self, n: i64, device: Device) -> Result<Tensor>;
}

#[cfg(test)]
mod tests {
    use tch::{nn, Kind};

    use super::*;
    use crate::{Autoencoder, LatentVariableModel, Likelihood, Vae, VaeConfig};

    fn config() -> VaeConfig {
        VaeConfig {
            input_dim: 5,
            hidden: vec![7],
            latent_dim: 3,
            likelihood: Likelihood::Gaussian { variance: 0.5 },
            ..Default::default()
        }
    }

    #[test]
    fn vae_codes_come_from_its_posterior() {
        let _rng = crate::torch_rng_lock();
        let vs = nn::VarStore::new(Device::Cpu);
        let vae = Vae::new(&vs.root(), &config()).unwrap();
        let x = Tensor::rand([4, 5], (Kind::Float, Device::Cpu));
        let q = LatentVariableModel::encode(&vae, &x).unwrap();
        assert_eq!(vae.latent_dim(), 3);
        assert!(vae.encode_mean(&x).unwrap().equal(q.mean()));
        let z = vae.encode_sample(&x).unwrap();
        assert_eq!(z.size(), vec![4, 3]);
        assert!(!z.requires_grad());
        assert!(!z.equal(q.mean()), "a draw of q(z|x) equals its mean");
        let x_draw = vae.decode_sample(&z).unwrap();
        assert_eq!(x_draw.size(), vec![4, 5]);
        assert!(!x_draw.equal(&vae.decode_mean(&z).unwrap()));
        let prior = vae.sample_prior(6, Device::Cpu).unwrap();
        assert_eq!((prior.size(), prior.kind()), (vec![6, 3], Kind::Float));
    }

    #[test]
    fn autoencoder_codes_are_deterministic_and_it_has_no_prior() {
        let _rng = crate::torch_rng_lock();
        let vs = nn::VarStore::new(Device::Cpu);
        let ae = Autoencoder::new(&vs.root(), &config()).unwrap();
        let x = Tensor::rand([4, 5], (Kind::Float, Device::Cpu));
        let code = ae.encode(&x).unwrap();
        assert_eq!(ae.latent_dim(), 3);
        assert!(ae.encode_mean(&x).unwrap().equal(&code));
        let drawn = ae.encode_sample(&x).unwrap();
        assert!(drawn.equal(&code) && !drawn.requires_grad());
        assert_eq!(ae.decode_sample(&code).unwrap().size(), vec![4, 5]);
        let err = ae.sample_prior(2, Device::Cpu).unwrap_err().to_string();
        assert!(
            err.contains("`prior`") && err.contains("autoencoder"),
            "{err}"
        );
    }
}
