//! # genae-zoo
//!
//! Models of the genae toolkit, built the tch way: a serialisable config, a constructor taking an
//! [`nn::Path`](tch::nn::Path) into a `VarStore`, and plain methods.
//!
//! - building blocks: [`Mlp`] with a configurable [`Activation`], [`ConvEncoder`] /
//!   [`ConvDecoder`] for 28×28, 32×32 and 64×64 images, [`ResidualBlock`]; every linear and
//!   convolution layer is initialised as PyTorch initialises its own ([`init`]), not as tch does;
//! - encoders: [`GaussianEncoder`] (`x ↦ q(z|x)`, returned as a [`DiagGaussian`]) and
//!   [`DeterministicEncoder`];
//! - the [`Decoder`]: `z ↦ p(x|z)` as a [`DecoderDistribution`], for each [`Likelihood`]
//!   (Bernoulli, Gaussian with fixed or learned variance, discretised logistic);
//! - models: [`Vae`] (Kingma & Welling, 2014), the deterministic [`Autoencoder`] and [`Pca`],
//!   configured by [`VaeConfig`] (with an [`Architecture`] and a [`Likelihood`]);
//! - Adversarial Variational Bayes: the amortised [`Avb`] (implicit encoder, decoder,
//!   discriminator; [`AvbConfig`]) and the non-amortised [`ImplicitPosterior`] over any
//!   likelihood with a standard-normal prior, sharing one implementation of the adversarial
//!   loss and adaptive contrast;
//! - the adversarial autoencoder [`Aae`] (Makhzani et al., 2016; [`AaeConfig`]), encoder,
//!   decoder and latent discriminator under three paths, and the [`LatentPrior`]s it matches
//!   codes to (Gaussian, circle mixture, by label too, uniform, swiss roll);
//! - traits: [`LatentVariableModel`], which estimators and samplers program against, so they work
//!   with any model that can encode and score data, [`GenerativeDecoder`], for decoding
//!   codes without naming the model, and [`GenerativeAutoencoder`] (encode, decode, sample
//!   the prior), which latent-space Markov chains program against; the latent size is
//!   [`LatentSpace::latent_dim`], a supertrait of both model traits;
//! - a small convolutional [`Classifier`] ([`ClassifierConfig`]) whose penultimate features
//!   feed the Fréchet distance between generated and real images.
//! - VQ-VAE parts: the strided-convolution [`VqEncoder`] / [`VqDecoder`] ([`VqNetConfig`]),
//!   the [`GatedPixelCnn`] prior over code grids ([`PixelCnnConfig`]) and the
//!   [`discretized_gaussian_log_prob`] of 8-bit data (the quantizer, and the `VqVae` model
//!   composing it with these networks, are in genae-samplers).
//!
//! ```
//! use genae_zoo::{Vae, VaeConfig, LatentVariableModel};
//! use tch::{nn, Device, Kind, Tensor};
//!
//! let vs = nn::VarStore::new(Device::Cpu);
//! let config = VaeConfig { input_dim: 16, hidden: vec![32], latent_dim: 2, ..Default::default() };
//! let vae = Vae::new(&vs.root(), &config).unwrap();
//! let x = Tensor::rand([5, 16], (Kind::Float, Device::Cpu)).round();
//! let out = vae.forward(&x).unwrap();
//! assert_eq!(out.posterior.mean().size(), vec![5, 2]);
//! assert_eq!(out.decoded.location().size(), vec![5, 16]); // Bernoulli logits
//! assert_eq!(vae.log_likelihood(&x, &out.z).unwrap().size(), vec![5]);
//! ```
//!
//! Configs read from TOML (through serde) spell the enums with a `kind` tag:
//!
//! ```toml
//! input_dim = 784
//! input_shape = [1, 28, 28]
//! hidden = []
//! latent_dim = 16
//! activation = "relu"
//! architecture = { kind = "conv", channels = [32, 64], residual_blocks = 1 }
//! likelihood = { kind = "gaussian", variance = 0.1 }
//! ```
//!
//! [`DiagGaussian`]: genae_tensor::DiagGaussian

mod aae;
mod autoencoder;
mod autoencoding;
mod avb;
mod classifier;
mod config;
mod conv;
mod error;
pub mod init;
mod likelihood;
mod linear_gaussian;
mod mlp;
mod model;
mod networks;
mod pca;
mod pixelcnn;
mod prior;
mod vae;
mod vqvae_nets;
mod wae;

pub use aae::{Aae, AaeConfig, AaeEncoder, AaeEncoderKind, DiscriminatorLoss};
pub use autoencoder::{Autoencoder, AutoencoderConfig, AutoencoderOutput};
pub use autoencoding::GenerativeAutoencoder;
pub use avb::{
    Avb, AvbCodes, AvbConfig, AvbDiscriminatorLoss, AvbPrimal, ImplicitEncoder, ImplicitPosterior,
    ImplicitPosteriorConfig, NoiseInjection, PosteriorMoments, AVB_MIN_STD,
};
pub use classifier::{Classifier, ClassifierConfig};
pub use config::{Architecture, Likelihood, VaeConfig, CONV_IMAGE_SIZES};
pub use conv::{ConvDecoder, ConvEncoder, ResidualBlock};
pub use error::ZooError;
pub use likelihood::{DecoderDistribution, GAUSSIAN_LOG_VAR_RANGE, LOGISTIC_LOG_SCALE_RANGE};
pub use linear_gaussian::LinearGaussian;
pub use mlp::{Activation, Mlp};
pub use model::{GenerativeDecoder, LatentSpace, LatentVariableModel};
pub use networks::{Decoder, DeterministicEncoder, GaussianEncoder};
pub use pca::Pca;
pub use pixelcnn::{GatedPixelCnn, PixelCnnConfig};
pub use prior::LatentPrior;
pub use vae::{Vae, VaeOutput};
pub use vqvae_nets::{discretized_gaussian_log_prob, VqDecoder, VqEncoder, VqNetConfig};
pub use wae::Wae;

/// Result type of this crate.
pub type Result<T> = std::result::Result<T, ZooError>;

/// libtorch's generator is global to the process and unit tests run on parallel threads:
/// every unit test of this crate holds this lock, so a test that seeds the generator and
/// depends on its draws is not interleaved with another test's draws or seeding.
#[cfg(test)]
pub(crate) fn torch_rng_lock() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
