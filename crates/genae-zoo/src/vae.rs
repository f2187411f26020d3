//! The variational autoencoder.

use genae_tensor::{noise, DiagGaussian};
use tch::{nn, Device, Kind, Tensor};

use crate::{
    Decoder, DecoderDistribution, GaussianEncoder, GenerativeAutoencoder, GenerativeDecoder,
    LatentSpace, LatentVariableModel, Result, VaeConfig,
};

/// What one [`Vae::forward`] pass computes.
#[derive(Debug)]
pub struct VaeOutput {
    /// `q(z|x)`.
    pub posterior: DiagGaussian,
    /// One reparameterised sample `z ~ q(z|x)`, `[N, latent_dim]`.
    pub z: Tensor,
    /// `p(x|z)` at that `z` (for the Bernoulli likelihood, `decoded.location()` are the
    /// logits).
    pub decoded: DecoderDistribution,
}

/// The variational autoencoder (Kingma & Welling, 2014): a Gaussian encoder, the
/// standard-normal prior and a decoder, each an MLP or convolutional network, with any
/// [`Likelihood`](crate::Likelihood).
///
/// ```
/// use genae_zoo::{Architecture, LatentVariableModel, Likelihood, Vae, VaeConfig};
/// use tch::{nn, Device, Kind, Tensor};
///
/// let vs = nn::VarStore::new(Device::Cpu);
/// let config = VaeConfig {
///     architecture: Architecture::Conv { channels: vec![8, 16], residual_blocks: 0 },
///     likelihood: Likelihood::GaussianLearned,
///     hidden: vec![32],
///     latent_dim: 3,
///     ..VaeConfig::default().with_input_shape([1, 28, 28])
/// };
/// let vae = Vae::new(&vs.root(), &config).unwrap();
/// let x = Tensor::rand([4, 1, 28, 28], (Kind::Float, Device::Cpu));
/// let out = vae.forward(&x).unwrap();
/// assert_eq!(out.z.size(), vec![4, 3]);
/// assert_eq!(out.decoded.log_prob(&x.flatten(1, -1)).unwrap().size(), vec![4]);
/// assert_eq!(vae.log_likelihood(&x, &out.z).unwrap().size(), vec![4]);
/// assert_eq!(vae.reconstruct(&x).unwrap().size(), vec![4, 784]);
/// assert_eq!(vae.sample(2, Device::Cpu).unwrap().size(), vec![2, 784]);
/// ```
#[derive(Debug)]
pub struct Vae {
    /// The inference network.
    pub encoder: GaussianEncoder,
    /// The generative network.
    pub decoder: Decoder,
    config: VaeConfig,
}

impl Vae {
    /// A VAE with its parameters under `path` (`encoder/…`, `decoder/…`).
    pub fn new(path: &nn::Path, config: &VaeConfig) -> Result<Self> {
        config.validate()?;
        Ok(Self {
            encoder: GaussianEncoder::from_config(&(path / "encoder"), config)?,
            decoder: Decoder::new(&(path / "decoder"), config)?,
            config: config.clone(),
        })
    }

    /// The config the model was built from.
    pub fn config(&self) -> &VaeConfig {
        &self.config
    }

    /// Encode, draw one reparameterised `z`, decode.
    pub fn forward(&self, x: &Tensor) -> Result<VaeOutput> {
        let posterior = self.encoder.encode(x)?;
        let z = posterior.rsample();
        let decoded = self.decoder.distribution(&z)?;
        Ok(VaeOutput {
            posterior,
            z,
            decoded,
        })
    }

    /// Decoder means `[n, D]` (pixel probabilities for Bernoulli) of `n` codes drawn from the
    /// prior.
    pub fn sample(&self, n: i64, device: Device) -> Result<Tensor> {
        let z = Tensor::randn([n, self.config.latent_dim], (Kind::Float, device));
        tch::no_grad(|| self.decoder.mean(&z))
    }

    /// Decoder means at the posterior means: deterministic reconstructions `[N, D]`.
    pub fn reconstruct(&self, x: &Tensor) -> Result<Tensor> {
        tch::no_grad(|| {
            let posterior = self.encoder.encode(x)?;
            self.decoder.mean(posterior.mean())
        })
    }
}

impl LatentSpace for Vae {
    fn latent_dim(&self) -> i64 {
        self.config.latent_dim
    }
}

impl LatentVariableModel for Vae {
    fn encode(&self, x: &Tensor) -> Result<DiagGaussian> {
        self.encoder.encode(x)
    }

    fn log_likelihood(&self, x: &Tensor, z: &Tensor) -> Result<Tensor> {
        self.decoder.log_likelihood(x, z)
    }
}

impl GenerativeDecoder for Vae {
    fn decode_mean(&self, z: &Tensor) -> Result<Tensor> {
        self.decoder.mean(z)
    }
}

/// Codes from `q(z|x)`, data from the configured likelihood, `N(0, I)` prior draws in `f32`
/// (the kind of [`Vae::sample`]).
impl GenerativeAutoencoder for Vae {
    fn encode_sample(&self, x: &Tensor) -> Result<Tensor> {
        Ok(self.encoder.encode(x)?.sample())
    }

    fn encode_mean(&self, x: &Tensor) -> Result<Tensor> {
        Ok(self.encoder.encode(x)?.mean().shallow_clone())
    }

    fn decode_sample(&self, z: &Tensor) -> Result<Tensor> {
        self.decoder.sample(z)
    }

    fn sample_prior(&self, n: i64, device: Device) -> Result<Tensor> {
        Ok(noise::randn(
            &[n, self.config.latent_dim],
            0,
            (Kind::Float, device),
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Activation;

    fn small() -> (nn::VarStore, Vae) {
        let vs = nn::VarStore::new(Device::Cpu);
        let config = VaeConfig {
            input_dim: 12,
            hidden: vec![8, 6],
            latent_dim: 3,
            activation: Activation::Relu,
            ..Default::default()
        };
        let vae = Vae::new(&vs.root(), &config).unwrap();
        (vs, vae)
    }

    #[test]
    fn image_shaped_input_is_flattened() {
        let _rng = crate::torch_rng_lock();
        let (_vs, vae) = small();
        let x = Tensor::rand([4, 1, 3, 4], (Kind::Float, Device::Cpu));
        let q = vae.encode(&x).unwrap();
        assert_eq!(q.mean().size(), vec![4, 3]);
        assert_eq!(vae.log_likelihood(&x, &q.sample()).unwrap().size(), vec![4]);
        assert_eq!(vae.reconstruct(&x).unwrap().size(), vec![4, 12]);
        assert_eq!(vae.sample(7, Device::Cpu).unwrap().size(), vec![7, 12]);
    }

    #[test]
    fn wrong_input_size_is_an_error_naming_both_shapes() {
        let _rng = crate::torch_rng_lock();
        let (_vs, vae) = small();
        let err = vae
            .encode(&Tensor::rand([4, 13], (Kind::Float, Device::Cpu)))
            .unwrap_err()
            .to_string();
        assert!(err.contains("[N, 12]") && err.contains("[4, 13]"), "{err}");
        let err = vae
            .decoder
            .mean(&Tensor::rand([4, 2], (Kind::Float, Device::Cpu)))
            .unwrap_err()
            .to_string();
        assert!(err.contains("[N, 3]"), "{err}");
    }

    #[test]
    fn parameters_are_named_by_role() {
        let _rng = crate::torch_rng_lock();
        let (vs, _vae) = small();
        let names: Vec<String> = vs.variables().into_keys().collect();
        for expected in [
            "encoder.trunk.layer0.weight",
            "encoder.mean.bias",
            "encoder.log_var.weight",
            "decoder.layer2.weight",
        ] {
            assert!(
                names.iter().any(|n| n == expected),
                "{expected} not in {names:?}"
            );
        }
    }

    #[test]
    fn invalid_config_names_the_field() {
        let _rng = crate::torch_rng_lock();
        let vs = nn::VarStore::new(Device::Cpu);
        let config = VaeConfig {
            latent_dim: 0,
            ..Default::default()
        };
        let err = Vae::new(&vs.root(), &config).unwrap_err().to_string();
        assert!(err.contains("latent_dim"), "{err}");
    }
}
