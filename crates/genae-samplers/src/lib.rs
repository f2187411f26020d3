//! # genae-samplers
//!
//! Samplers and discrete bottlenecks for generative autoencoders.
//!
//! Released:
//!
//! - the straight-through vector quantizer of VQ-VAE (van den Oord et al., 2017),
//!   [`VectorQuantizer`], described below;
//! - Markov-chain sampling in latent space (Creswell et al., 2016), [`MarkovChain`]: decode
//!   (the decoder mean or a draw, [`DecodeMode`]), optionally corrupt (the denoising chain,
//!   [`MarkovChain::with_corruption`]), encode (a draw of `q(z|x)` or its mean,
//!   [`EncodeMode`]), repeat, for a whole batch of chains at once, on any model implementing
//!   [`GenerativeAutoencoder`](genae_zoo::GenerativeAutoencoder); chains start from prior
//!   draws, encoded data or points on a linear path ([`interpolation_path`]), keep their
//!   trajectory if asked ([`MarkovChainConfig::keep_trajectory`]) and give plain and refined
//!   interpolations ([`refined_interpolation`]);
//! - Hamiltonian Monte Carlo on batches of chains, [`Hmc`]: leapfrog steps with gradients of
//!   any [`LogDensity`] (a closure over `[C, d]` states) from autograd, a Metropolis
//!   correction per chain, dual-averaging step-size adaptation (per chain or shared) during
//!   warm-up only, an optional diagonal mass, results in [`HmcOutput`];
//! - annealed importance sampling with HMC transitions, [`ais`] (from a diagonal Gaussian to
//!   any unnormalised density, for non-amortised models) and [`ais_log_likelihood`] (`log p(x)`
//!   of any [`LatentVariableModel`](genae_zoo::LatentVariableModel), starting from the prior,
//!   the model's `q(z|x)` or a given Gaussian, [`AisInitial`]), with step sizes tuned by a
//!   pilot run so the weights stay unbiased ([`AisAdaptation`]): per-example estimates, log
//!   weights and their effective sample size in [`AisOutput`];
//! - the VQ-VAE model, [`VqVae`]: genae-zoo's `VqEncoder` and `VqDecoder` around the
//!   quantizer, its loss ([`VqVaeOutput::loss`]), code grids of data for a prior
//!   ([`VqVae::encode_codes`], [`VqVae::encode_data`]) and images of code grids
//!   ([`VqVae::decode_codes`]).
//!
//! The quantizer:
//!
//! - a codebook of `K` codes of dimension `d`, stored in an [`nn::Path`](tch::nn::Path) of the
//!   model's var store (so checkpoints carry it and its statistics);
//! - nearest-code search for every vector of a channels-first encoder grid `[N, d, H, W]` (or
//!   of plain rows `[M, d]`) by `‖a‖² − 2 a·b + ‖b‖²` with one matrix product;
//! - the straight-through output `z_e + sg[z_q − z_e]`, the codebook loss `‖sg[z_e] − z_q‖²`
//!   and the commitment loss `β ‖z_e − sg[z_q]‖²` (β = 0.25), in a named [`QuantizerOutput`]
//!   with the code indices, usage counts and [`perplexity`];
//! - exponential-moving-average codebook updates with Laplace smoothing as an alternative to
//!   the codebook loss ([`CodebookUpdate::Ema`]), k-means initialisation from the first
//!   training batch ([`QuantizerConfig::kmeans_init`], [`VectorQuantizer::kmeans_init`]),
//!   restarts of codes unused for a number of steps ([`QuantizerConfig::dead_code_steps`]);
//! - [`VectorQuantizer::lookup`], from code indices back to vectors in grid layout (to decode
//!   samples of a prior over codes).
//!
//! ```
//! use genae_samplers::{CodebookUpdate, QuantizerConfig, VectorQuantizer};
//! use tch::{nn, nn::OptimizerConfig, Device, Kind, Tensor};
//!
//! tch::manual_seed(0);
//! let vs = nn::VarStore::new(Device::Cpu);
//! let config = QuantizerConfig {
//!     num_codes: 32,
//!     code_dim: 8,
//!     update: CodebookUpdate::ema(),
//!     kmeans_init: true,
//!     dead_code_steps: 50,
//!     ..Default::default()
//! };
//! let vq = VectorQuantizer::new(&vs.root().sub("vq"), &config).unwrap();
//! // An encoder's output grid: N = 4 images, d = 8 channels, 5 × 5 positions.
//! let z_e = Tensor::randn([4, 8, 5, 5], (Kind::Float, Device::Cpu)).set_requires_grad(true);
//! let out = vq.forward_t(&z_e, true).unwrap(); // k-means on this batch, then quantise
//! assert_eq!(out.indices.size(), [4, 5, 5]);
//! assert!(out.codebook_loss.is_none()); // EMA moves the codes
//! let perplexity = out.perplexity.double_value(&[]);
//! assert!((1.0..=32.0).contains(&perplexity));
//! // The decoder would see out.quantized; here a stand-in reconstruction loss.
//! let loss = out.quantized.square().mean(Kind::Float) + out.loss();
//! loss.backward();
//! assert_eq!(z_e.grad().size(), [4, 8, 5, 5]);
//! ```
//!
//! A Markov chain refining prior samples of a (here untrained) VAE:
//!
//! ```
//! use genae_samplers::{DecodeMode, MarkovChain, MarkovChainConfig};
//! use genae_zoo::{Vae, VaeConfig};
//! use tch::{nn, Device};
//!
//! let vs = nn::VarStore::new(Device::Cpu);
//! let config = VaeConfig { input_dim: 20, hidden: vec![16], latent_dim: 4, ..Default::default() };
//! let vae = Vae::new(&vs.root(), &config).unwrap();
//! let chain = MarkovChain::new(MarkovChainConfig {
//!     steps: 10,
//!     decode: DecodeMode::Sample,
//!     ..Default::default()
//! });
//! let out = chain.from_prior(&vae, 64, Device::Cpu).unwrap();
//! assert_eq!(out.codes.size(), [64, 4]);
//! assert_eq!(out.images.size(), [64, 20]); // decoder means of the final codes
//! assert!(out.trajectory.is_none());
//! ```

mod ais;
mod config;
mod error;
mod hmc;
mod kmeans;
mod markov_chain;
mod quantizer;
mod vqvae;

pub use ais::{
    ais, ais_log_likelihood, AisAdaptation, AisConfig, AisInitial, AisOutput, AnnealingSchedule,
};

pub use config::{CodebookUpdate, LossReduction, QuantizerConfig};
pub use error::SamplerError;
pub use hmc::{Hmc, HmcConfig, HmcOutput, LogDensity, StepSizeAdaptation};
pub use markov_chain::{
    interpolation_path, refined_interpolation, ChainOutput, ChainTrajectory, CorruptionError,
    DecodeMode, EncodeMode, MarkovChain, MarkovChainConfig, RefinedInterpolation,
};
pub use quantizer::{perplexity, QuantizerOutput, VectorQuantizer};
pub use vqvae::{EncodedData, VqVae, VqVaeOutput};

/// Result type of this crate.
pub type Result<T> = std::result::Result<T, SamplerError>;
