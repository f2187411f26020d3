//! # genae-estimators
//!
//! Losses and bounds for latent-variable models, written against
//! [`LatentVariableModel`](genae_zoo::LatentVariableModel) so they apply to any model that can
//! encode and score data.
//!
//! All quantities are **per example, in nats, summed over dimensions**; `ElboTerms` keeps the
//! per-example values (`[N]`) and [`ElboTerms::means`] averages them over the batch.
//!
//! - [`elbo`]: `E_q[log p(x|z)] − KL(q(z|x) ‖ p(z))` with one reparameterised sample and the
//!   KL in closed form;
//! - [`elbo_with_samples`]: the same with the reconstruction term averaged over `S` samples.
//!
//! ```
//! use genae_estimators::elbo;
//! use genae_zoo::{Vae, VaeConfig};
//! use tch::{nn, Device, Kind, Tensor};
//!
//! let vs = nn::VarStore::new(Device::Cpu);
//! let vae = Vae::new(&vs.root(), &VaeConfig { input_dim: 8, hidden: vec![16], latent_dim: 2, ..Default::default() }).unwrap();
//! let x = Tensor::rand([4, 8], (Kind::Float, Device::Cpu)).round();
//! let terms = elbo(&vae, &x).unwrap();
//! let loss = -terms.elbo.mean(Kind::Float); // minimise the negative ELBO
//! loss.backward();
//! let means = terms.means();
//! assert!((means.elbo - (means.reconstruction - means.kl)).abs() < 1e-4);
//! ```

mod elbo;
mod error;

pub use elbo::{elbo, elbo_with_samples, ElboMeans, ElboTerms};
pub use error::EstimatorError;

/// Result type of this crate.
pub type Result<T> = std::result::Result<T, EstimatorError>;
