//! Adversarial Variational Bayes (Mescheder, Nowozin & Geiger, 2017): a VAE whose encoder is an
//! implicit sampler `z = g(x, ε)`, trained with a discriminator `T(x, z)` that estimates the
//! log density ratio `log q(z|x) − log p(z)` the ELBO needs.
//!
//! Sign convention (tested): `T` is trained by logistic regression with pairs `(x, z)`,
//! `z ~ q(z|x)`, labelled **1** and pairs with `z ~ p(z)` labelled **0**, so its optimum is
//! `T*(x, z) = log q(z|x) − log p(z)` and the ELBO is `E_q[log p(x|z) − T*(x, z)]`. The
//! network is `T(x, z) = T_net(x, z) − log N(z; 0, I)`: the log prior (here `N(0, I)`) is
//! added in, so `T_net` only has to learn `log q(z|x)`.
//!
//! With adaptive contrast (AC) the codes are normalised with the moments of `q(z|x)`,
//! `ẑ = (z − μ(x)) / σ(x)` (estimated from several draws per `x`, without gradient), and `T`
//! separates `ẑ` from `N(0, I)` draws (`T* = log q̂(ẑ|x) − log N(ẑ; 0, I)`, again with
//! `−log N(ẑ; 0, I)` added in). Since `log q(z|x) = log q̂(ẑ|x) − Σ_k log σ_k`,
//! the ELBO becomes
//! `E[log p(x|z) + log p(z) − T(x, ẑ) + ½‖ẑ‖² + (d/2) ln 2π + Σ_k log σ_k(x)]`.
//!
//! Two models share this machinery (the [`ImplicitEncoder`], the discriminator logit with the
//! prior added in, the adversarial loss [`AvbDiscriminatorLoss`], the adaptive-contrast
//! [`PosteriorMoments`] and the ELBO estimate [`AvbPrimal`]):
//!
//! - [`Avb`], amortised: `z = g(x, ε)`, `T(x, z)`, a decoder `p(x|z)` (§3 of the paper);
//! - [`ImplicitPosterior`], non-amortised, AVB as a general inference engine (§5.2): one
//!   distribution `θ = g(ε)` fitted to the posterior of a model with a standard-normal prior
//!   and any likelihood `log p(y|θ)` the caller evaluates on the draws, `T(θ)`, and the
//!   adaptive-contrast moments taken from the batch of draws itself (every draw comes from the
//!   same `q`, where the amortised model needs separate draws per `x`).

mod adversary;
mod implicit;
mod model;
mod posterior;

pub use adversary::{AvbCodes, AvbDiscriminatorLoss, AvbPrimal, PosteriorMoments, AVB_MIN_STD};
pub use implicit::{ImplicitEncoder, NoiseInjection};
pub use model::{Avb, AvbConfig};
pub use posterior::{ImplicitPosterior, ImplicitPosteriorConfig};
