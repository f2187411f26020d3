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
//! - [`elbo_with_samples`]: the same with the reconstruction term averaged over `S` samples;
//! - [`elbo_monte_carlo`]: the ELBO with the KL estimated by Monte Carlo
//!   (`log q(z|x) − log p(z)` at the sampled `z`), for priors without a closed-form KL;
//! - [`iwae_log_weights`], [`iwae_bound`]: the importance-weighted bound `L_k` (Burda et al.),
//!   differentiable, by log-sum-exp;
//! - [`log_likelihood_estimate`], [`evaluate_log_likelihood`]: `L_5000` without gradients, in
//!   chunks of bounded memory, per batch or over a whole data set; [`bits_per_dim`];
//! - [`gaussian_proposal_log_likelihood`]: the same chunked importance-sampling estimate of
//!   `log p(x)` with a given Gaussian proposal (mean and std per example) instead of the
//!   model's `q(z|x)`, for encoders without a density (AVB's moment-matched Gaussian);
//! - [`dvae`], [`dvae_bound`]: the denoising bound `L_dvae` of the DVAE (Im et al., 2017):
//!   the encoder sees `M` corrupted copies `x̃ ~ C(x̃|x)` (a [`Corruption`](genae_tensor::Corruption)),
//!   the decoder scores the clean `x` with `K` latent samples per copy;
//! - [`quadrature_log_likelihood`] (exact `log p(x)` on a latent grid), [`knn_entropy`] and
//!   [`knn_kl_to_standard_normal`] (k-nearest-neighbour estimates, using the known density of
//!   `N(0, I)`, for distributions known only by samples): for encoders without a density;
//! - [`active_units`]: the number of latent dimensions the encoder actually uses;
//! - [`Objective`] (β-VAE ELBO with free bits, IWAE, DVAE, annealed capacity, β-TC-VAE,
//!   DIP-VAE) and [`KlWarmup`]: training losses; [`factorised`]: the terms of the disentangling
//!   objectives (β-TC-VAE's KL decomposition, DIP-VAE's penalty, FactorVAE's permuted codes and
//!   discriminator loss, the capacity schedule);
//! - sample quality: [`frechet_distance`] and [`FeatureStats`] (the FID formula on any feature
//!   set, with reusable reference statistics), [`mmd_gaussian`] (unbiased `MMD²` with a
//!   Gaussian kernel, median-heuristic bandwidth);
//! - [`disentanglement`]: metrics over codes and ground-truth factors (β-VAE score, FactorVAE
//!   score, Mutual Information Gap, SAP, DCI with Lasso importances, Gaussian total
//!   correlation), with disentanglement_lib's sample sizes and discretisation, over a
//!   [`GroundTruth`](disentanglement::GroundTruth) oracle or arrays of codes and factors.
//!
//! Every tensor keeps the float kind of the model's output (`f64` in, `f64` out).
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

mod active_units;
pub mod disentanglement;
mod divergence;
mod dvae;
mod elbo;
mod error;
pub mod factorised;
pub mod gmm;
mod iwae;
mod latent_integrals;
mod objective;
mod proposal;
mod sample_quality;
mod sampling;
mod wasserstein;

pub use active_units::{active_units, ActiveUnits, ACTIVE_UNIT_THRESHOLD};
pub use divergence::knn_kl_divergence;
pub use dvae::{dvae, dvae_bound};
pub use elbo::{elbo, elbo_monte_carlo, elbo_with_samples, ElboMeans, ElboTerms};
pub use error::EstimatorError;
pub use iwae::{
    bits_per_dim, evaluate_log_likelihood, iwae_bound, iwae_log_weights, log_likelihood_estimate,
    LogLikelihoodOptions,
};
pub use latent_integrals::{
    knn_entropy, knn_kl_to_standard_normal, quadrature_log_likelihood, QuadratureOptions,
    MAX_QUADRATURE_POINTS,
};
pub use objective::{KlWarmup, Objective, ObjectiveOutput};
pub use proposal::gaussian_proposal_log_likelihood;
pub use sample_quality::{
    frechet_distance, mmd_gaussian, FeatureStats, MmdEstimate, MEDIAN_HEURISTIC_MAX_POINTS,
};
pub use wasserstein::{mmd_penalty, MmdKernel, IMQ_SCALES};

/// libtorch's generator is global to the process and unit tests run on parallel threads:
/// every unit test of this crate holds this lock, so a test that seeds the generator and
/// depends on its draws is not interleaved with another test's draws or seeding.
#[cfg(test)]
pub(crate) fn torch_rng_lock() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Result type of this crate.
pub type Result<T> = std::result::Result<T, EstimatorError>;
