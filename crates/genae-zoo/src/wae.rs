//! The Wasserstein autoencoder's networks (Tolstikhin et al., 2018): an encoder (deterministic
//! `z = f(x)` or Gaussian `q(z|x)`), a decoder `p(x|z)` and the `N(0, I)` prior. The WAE
//! penalty itself (an MMD between the codes and prior draws) lives in genae-estimators
//! (`mmd_penalty`), so the same model can be trained with any divergence.

use tch::{nn, Device, Kind, Tensor};

use crate::networks::flatten_input;
use crate::{
    AaeEncoder, AaeEncoderKind, Decoder, GenerativeAutoencoder, GenerativeDecoder, LatentSpace,
    LatentVariableModel, Result, VaeConfig, ZooError,
};
use genae_tensor::{noise, DiagGaussian};

/// An encoder, a decoder and the `N(0, I)` prior.
///
/// ```
/// use genae_zoo::{AaeEncoderKind, GenerativeAutoencoder, VaeConfig, Wae};
/// use tch::{nn, Device, Kind, Tensor};
///
/// let vs = nn::VarStore::new(Device::Cpu);
/// let networks = VaeConfig { input_dim: 6, hidden: vec![8], latent_dim: 2, ..Default::default() };
/// let wae = Wae::new(&vs.root(), &networks, AaeEncoderKind::Deterministic).unwrap();
/// let x = Tensor::rand([4, 6], (Kind::Float, Device::Cpu));
/// assert_eq!(wae.code(&x).unwrap().size(), vec![4, 2]);
/// assert_eq!(wae.sample_prior(3, Device::Cpu).unwrap().size(), vec![3, 2]);
/// ```
#[derive(Debug)]
pub struct Wae {
    /// `x ↦ z`.
    pub encoder: AaeEncoder,
    /// `z ↦ p(x|z)`.
    pub decoder: Decoder,
    networks: VaeConfig,
}

impl Wae {
    /// A WAE for `networks` with an encoder of `kind`, its parameters under `path`
    /// (`encoder/…`, `decoder/…`).
    pub fn new(path: &nn::Path, networks: &VaeConfig, kind: AaeEncoderKind) -> Result<Self> {
        networks.validate()?;
        Ok(Self {
            encoder: AaeEncoder::new(&(path / "encoder"), networks, kind)?,
            decoder: Decoder::new(&(path / "decoder"), networks)?,
            networks: networks.clone(),
        })
    }

    /// Codes `[N, d]` with gradients: `f(x)`, or a reparameterised draw of `q(z|x)`.
    pub fn code(&self, x: &Tensor) -> Result<Tensor> {
        self.encoder.code(x)
    }

    /// `log p(x|z)` per example `[N]` (differentiable; the negative reconstruction cost).
    pub fn reconstruction_log_likelihood(&self, x: &Tensor, z: &Tensor) -> Result<Tensor> {
        let flat = flatten_input(x, self.networks.input_dim, "reconstruction_log_likelihood")?;
        self.decoder.log_likelihood(&flat, z)
    }
}

impl GenerativeDecoder for Wae {
    fn decode_mean(&self, z: &Tensor) -> Result<Tensor> {
        self.decoder.mean(z)
    }
}

impl LatentSpace for Wae {
    fn latent_dim(&self) -> i64 {
        self.networks.latent_dim
    }
}

impl GenerativeAutoencoder for Wae {
    fn encode_sample(&self, x: &Tensor) -> Result<Tensor> {
        tch::no_grad(|| self.encoder.code(x))
    }

    fn encode_mean(&self, x: &Tensor) -> Result<Tensor> {
        tch::no_grad(|| self.encoder.code_mean(x))
    }

    fn decode_sample(&self, z: &Tensor) -> Result<Tensor> {
        self.decoder.sample(z)
    }

    fn sample_prior(&self, n: i64, device: Device) -> Result<Tensor> {
        Ok(noise::randn(
            &[n, self.networks.latent_dim],
            0,
            (Kind::Float, device),
        )?)
    }
}

/// With a Gaussian encoder, `q(z|x)` is a density and the importance-sampled estimators
/// apply; a deterministic encoder's `encode` is an error.
impl LatentVariableModel for Wae {
    fn encode(&self, x: &Tensor) -> Result<DiagGaussian> {
        match &self.encoder {
            AaeEncoder::Gaussian(e) => e.encode(x),
            AaeEncoder::Deterministic(_) => Err(ZooError::InvalidConfig {
                field: "encoder",
                reason: "a deterministic encoder has no density q(z|x)".into(),
            }),
        }
    }

    fn log_likelihood(&self, x: &Tensor, z: &Tensor) -> Result<Tensor> {
        self.reconstruction_log_likelihood(x, z)
    }
}
