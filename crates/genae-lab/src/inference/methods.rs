//! The three ways to the posterior: the HMC reference, mean-field Gaussian VB and AVB through
//! genae-zoo's [`ImplicitPosterior`].

use genae_samplers::{Hmc, SamplerError};
use genae_zoo::{Activation, ImplicitPosterior, ImplicitPosteriorConfig};
use tch::{nn, Device, Kind, Tensor};

use super::InferenceConfig;
use crate::error::LabError;
use crate::Adam;

/// Runs the reference sampler; returns all kept draws `[S·C, d]` and the mean acceptance.
pub(super) fn hmc_reference(
    config: &InferenceConfig,
    device: Device,
) -> Result<(Tensor, f64), LabError> {
    let target = config.target.clone();
    let log_density =
        move |theta: &Tensor| -> Result<Tensor, SamplerError> { Ok(target.log_joint(theta)) };
    let start = Tensor::randn(
        [config.reference.chains, config.target.dim()],
        (Kind::Double, device),
    );
    let out = Hmc::new(config.reference.hmc.clone())?.run(&log_density, &start)?;
    let trajectory = out.trajectory.expect("validation requires keep_trajectory");
    // A rejected proposal repeats the state; repeated rows would give the nearest-neighbour
    // estimator zero distances, so each distinct state is kept once.
    let (draws, _, _) = trajectory
        .reshape([-1, config.target.dim()])
        .unique_dim(0, false, false, false);
    let accept = out.mean_accept_prob.mean(Kind::Double).double_value(&[]);
    Ok((draws, accept))
}

/// Fits a fully factorised Gaussian by the reparameterised ELBO (analytic entropy); returns
/// `n` draws.
pub(super) fn mean_field(
    config: &InferenceConfig,
    n: i64,
    device: Device,
) -> Result<Tensor, LabError> {
    let d = config.target.dim();
    let vs = nn::VarStore::new(device);
    let mean = vs.root().zeros("mean", &[d]);
    let log_std = vs.root().zeros("log_std", &[d]);
    let mut adam = Adam::new(&vs, config.mean_field.learning_rate);
    for step in 0..config.mean_field.steps {
        let eps = Tensor::randn([config.mean_field.samples, d], (Kind::Float, device));
        let theta = &mean + log_std.exp() * eps;
        let elbo = config.target.log_joint(&theta).mean(Kind::Float) + log_std.sum(Kind::Float);
        let loss = -elbo;
        let value = loss.double_value(&[]);
        if !value.is_finite() {
            return Err(LabError::NonFinite {
                term: "mean-field ELBO".into(),
                value,
                epoch: 1,
                step: step as u64 + 1,
                hint: "mean_field.learning_rate",
            });
        }
        adam.backward_step(&loss)?;
    }
    Ok(tch::no_grad(|| {
        &mean + log_std.exp() * Tensor::randn([n, d], (Kind::Float, device))
    }))
}

/// Non-amortised AVB with genae-zoo's [`ImplicitPosterior`], the same implementation of the
/// implicit sampler, discriminator, adversarial loss, adaptive contrast and ELBO estimate as
/// the image model's [`Avb`](genae_zoo::Avb), without the conditioning on `x`: `θ = g(ε)`; the
/// discriminator `T(u) = T_net(u) − log N(u; 0, I)` tells draws of `q` (label 1) from draws of
/// the reference `N(0, I)` (label 0), so that `T_net` only has to learn `log q` (`u = θ`, the
/// prior being `N(0, I)`), or with adaptive contrast the log density of
/// `θ̂ = (θ − μ_q)/σ_q` (moments from the batch, held fixed). The generator then maximises
/// `E[log p(y|θ) − T(θ)]`, with adaptive contrast
/// `E[log p(y, θ) − T(θ̂) + ½‖θ̂‖² + (d/2) ln 2π + Σ log σ_q]`; both equal the ELBO at the
/// optimal `T`. Returns `n` draws of the fitted `q`.
pub(super) fn avb(
    config: &InferenceConfig,
    adaptive_contrast: bool,
    n: i64,
    device: Device,
) -> Result<Tensor, LabError> {
    let a = &config.avb;
    let g_store = nn::VarStore::new(device);
    let mut t_store = nn::VarStore::new(device);
    let posterior = ImplicitPosterior::new(
        &g_store.root(),
        &t_store.root(),
        &ImplicitPosteriorConfig {
            dim: config.target.dim(),
            noise_dim: a.noise_dim,
            hidden: a.hidden.clone(),
            activation: Activation::LeakyRelu,
            discriminator_hidden: a.discriminator_hidden.clone(),
            adaptive_contrast,
        },
    )?;
    let mut g_adam = Adam::new(&g_store, a.learning_rate);
    let mut t_adam = Adam::new(&t_store, a.discriminator_learning_rate);
    for step in 0..a.steps {
        for _ in 0..a.dual_steps {
            let draws = tch::no_grad(|| posterior.draw(a.batch, device))?;
            t_adam.backward_step(&posterior.discriminator_loss(&draws)?.loss)?;
        }
        // T is held fixed: only g's optimiser steps, and T's gradient is not computed.
        t_store.freeze();
        let draws = posterior.draw(a.batch, device)?;
        let log_likelihood = config.target.log_likelihood(&draws.z);
        let loss = posterior.primal(&draws, &log_likelihood)?.loss;
        let value = loss.double_value(&[]);
        if !value.is_finite() {
            return Err(LabError::NonFinite {
                term: "AVB objective".into(),
                value,
                epoch: 1,
                step: step as u64 + 1,
                hint: "avb.learning_rate",
            });
        }
        g_adam.backward_step(&loss)?;
        t_store.unfreeze();
    }
    Ok(posterior.sample(n, device)?)
}
