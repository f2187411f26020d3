//! # genae-zoo
//!
//! Models of the genae toolkit, built the tch way: a serialisable config, a constructor taking an
//! [`nn::Path`](tch::nn::Path) into a `VarStore`, and plain methods.
//!
//! - [`Mlp`] with a configurable [`Activation`]: the building block;
//! - [`GaussianEncoder`]: `x ↦ q(z|x)`, returned as a [`DiagGaussian`];
//! - [`BernoulliDecoder`]: `z ↦` pixel logits and `log p(x|z)`;
//! - [`Vae`]: the variational autoencoder of Kingma & Welling (2014);
//! - [`LatentVariableModel`]: the small trait that estimators and samplers program against, so
//!   they work with any model that can encode and score data, not just the ones named here.
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
//! assert_eq!(out.logits.size(), vec![5, 16]);
//! assert_eq!(vae.log_likelihood(&x, &out.z).unwrap().size(), vec![5]);
//! ```
//!
//! [`DiagGaussian`]: genae_tensor::DiagGaussian

mod error;
mod mlp;
mod model;
mod vae;

pub use error::ZooError;
pub use mlp::{Activation, Mlp};
pub use model::LatentVariableModel;
pub use vae::{BernoulliDecoder, GaussianEncoder, Vae, VaeConfig, VaeOutput};

/// Result type of this crate.
pub type Result<T> = std::result::Result<T, ZooError>;
