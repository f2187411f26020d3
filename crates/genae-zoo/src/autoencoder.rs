//! The deterministic autoencoder, the baseline beside the VAE.

use tch::{nn, Device, Kind, Tensor};

use crate::networks::flatten_input;
use crate::{
    Decoder, DecoderDistribution, DeterministicEncoder, GenerativeAutoencoder, GenerativeDecoder,
    LatentSpace, Result, VaeConfig, ZooError,
};

/// The [`Autoencoder`]'s config: the same fields as the VAE's (`latent_dim` is the code size).
pub type AutoencoderConfig = VaeConfig;

/// What one [`Autoencoder::forward`] pass computes.
#[derive(Debug)]
pub struct AutoencoderOutput {
    /// The codes `[N, latent_dim]`.
    pub code: Tensor,
    /// `p(x|code)`.
    pub decoded: DecoderDistribution,
}

/// A deterministic autoencoder: `x ↦ code ↦ p(x|code)`, trained by maximising the
/// reconstruction log-likelihood under the configured [`Likelihood`](crate::Likelihood)
/// (for Bernoulli, minimising the binary cross-entropy; for a fixed-variance Gaussian, the
/// squared error). Parameters under `encoder/…` and `decoder/…`.
///
/// ```
/// use genae_zoo::{Autoencoder, AutoencoderConfig};
/// use tch::{nn, nn::OptimizerConfig, Device, Kind, Tensor};
///
/// let vs = nn::VarStore::new(Device::Cpu);
/// let config = AutoencoderConfig { input_dim: 8, hidden: vec![16], latent_dim: 2, ..Default::default() };
/// let ae = Autoencoder::new(&vs.root(), &config).unwrap();
/// let x = Tensor::rand([10, 8], (Kind::Float, Device::Cpu)).round();
/// assert_eq!(ae.encode(&x).unwrap().size(), vec![10, 2]);
/// assert_eq!(ae.reconstruction_log_likelihood(&x).unwrap().size(), vec![10]);
/// let mut opt = nn::Adam::default().build(&vs, 1e-3).unwrap();
/// opt.backward_step(&ae.loss(&x).unwrap());
/// assert_eq!(ae.reconstruct(&x).unwrap().size(), vec![10, 8]);
/// ```
#[derive(Debug)]
pub struct Autoencoder {
    /// `x ↦ code`.
    pub encoder: DeterministicEncoder,
    /// `code ↦ p(x|code)`.
    pub decoder: Decoder,
    config: AutoencoderConfig,
}

impl Autoencoder {
    /// An autoencoder with its parameters under `path`.
    pub fn new(path: &nn::Path, config: &AutoencoderConfig) -> Result<Self> {
        config.validate()?;
        Ok(Self {
            encoder: DeterministicEncoder::from_config(&(path / "encoder"), config)?,
            decoder: Decoder::new(&(path / "decoder"), config)?,
            config: config.clone(),
        })
    }

    /// The config the model was built from.
    pub fn config(&self) -> &AutoencoderConfig {
        &self.config
    }

    /// Codes `[N, latent_dim]` for inputs `[N, ...]`.
    pub fn encode(&self, x: &Tensor) -> Result<Tensor> {
        self.encoder.encode(x)
    }

    /// Encode and decode.
    pub fn forward(&self, x: &Tensor) -> Result<AutoencoderOutput> {
        let code = self.encoder.encode(x)?;
        let decoded = self.decoder.distribution(&code)?;
        Ok(AutoencoderOutput { code, decoded })
    }

    /// Decoder means of the codes: reconstructions `[N, D]` (no gradient).
    pub fn reconstruct(&self, x: &Tensor) -> Result<Tensor> {
        tch::no_grad(|| Ok(self.forward(x)?.decoded.mean()))
    }

    /// `log p(x | code(x))` per example, `[N]` (differentiable): the negative of the
    /// per-example reconstruction loss.
    pub fn reconstruction_log_likelihood(&self, x: &Tensor) -> Result<Tensor> {
        let flat = flatten_input(x, self.config.input_dim, "reconstruction_log_likelihood")?;
        self.forward(x)?.decoded.log_prob(&flat)
    }

    /// The training loss: the negative reconstruction log-likelihood averaged over the batch
    /// (a scalar, nats per example).
    pub fn loss(&self, x: &Tensor) -> Result<Tensor> {
        Ok(-self.reconstruction_log_likelihood(x)?.mean(None::<Kind>))
    }
}

impl GenerativeDecoder for Autoencoder {
    fn decode_mean(&self, z: &Tensor) -> Result<Tensor> {
        self.decoder.mean(z)
    }
}

impl LatentSpace for Autoencoder {
    fn latent_dim(&self) -> i64 {
        self.config.latent_dim
    }
}

/// Deterministic codes (`encode_sample` = `encode_mean` = [`Autoencoder::encode`], without
/// gradient), data from the configured likelihood, and no prior: `sample_prior` is an error
/// naming `prior` (start chains from encoded data or interpolations instead).
impl GenerativeAutoencoder for Autoencoder {
    fn encode_sample(&self, x: &Tensor) -> Result<Tensor> {
        self.encode_mean(x)
    }

    fn encode_mean(&self, x: &Tensor) -> Result<Tensor> {
        tch::no_grad(|| self.encoder.encode(x))
    }

    fn decode_sample(&self, z: &Tensor) -> Result<Tensor> {
        self.decoder.sample(z)
    }

    fn sample_prior(&self, _n: i64, _device: Device) -> Result<Tensor> {
        Err(ZooError::InvalidConfig {
            field: "prior",
            reason: "is not defined for a deterministic autoencoder: it has no prior over codes \
                     to sample (start from encoded data or an interpolation)"
                .into(),
        })
    }
}
