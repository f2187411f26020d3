//! Variational inference on a small Bayesian model, non-amortised: AVB as a general inference
//! engine (Mescheder et al., 2017, §5.2), beside mean-field Gaussian VB, both measured against a
//! long HMC run of genae's own sampler.
//!
//! The model is the "eight schools" hierarchy in the AVB paper's rescaled, non-centred form:
//! `θ = (μ, τ, η₁…η₈)`, all `N(0, 1)` a priori, `yⱼ ~ N(μ + τ·ηⱼ, σⱼ)`, `τ` unconstrained. Flipping
//! the signs of `τ` and every `ηⱼ` leaves the likelihood unchanged, so the posterior is
//! symmetric in `τ` and bimodal when the data favour `|τ| > 0`: a Gaussian `q` sits on one mode,
//! an implicit `q = g(ε)` can cover both. `genae infer eight-schools` runs it.

use std::f64::consts::PI;
use std::path::PathBuf;
use std::time::Instant;

use genae_estimators::knn_kl_divergence;
use genae_samplers::{Hmc, HmcConfig, SamplerError};
use genae_tensor::{seed_everything, DeviceSpec};
use genae_zoo::{Activation, ImplicitPosterior, ImplicitPosteriorConfig};
use serde::{Deserialize, Serialize};
use tch::{nn, Device, Kind, Tensor};

use crate::config::{parse_with_overrides, ConfigError};
use crate::error::LabError;
use crate::metrics::to_json;
use crate::run_dir::RunDir;
use crate::Adam;

/// The rescaled eight-schools data of the AVB paper: effects `y`.
pub const EIGHT_SCHOOLS_Y: [f64; 8] = [2.8, 0.8, -0.3, 0.7, -0.1, 0.1, 1.8, 1.2];
/// … and their standard errors `σ`.
pub const EIGHT_SCHOOLS_SIGMA: [f64; 8] = [0.8, 0.5, 0.8, 0.6, 0.5, 0.6, 0.5, 0.4];

/// The eight-schools model, non-centred: `θ = (μ, τ, η₁…η_J)`, a standard-normal prior on
/// every coordinate and `yⱼ ~ N(μ + τ·ηⱼ, σⱼ)`.
///
/// ```
/// use genae_lab::EightSchools;
/// use tch::{Device, Kind, Tensor};
///
/// let model = EightSchools::rescaled();
/// assert_eq!(model.dim(), 10);
/// let theta = Tensor::zeros([3, 10], (Kind::Double, Device::Cpu));
/// assert_eq!(model.log_joint(&theta).size(), vec![3]);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EightSchools {
    /// Observed effects `yⱼ`.
    pub y: Vec<f64>,
    /// Their standard errors `σⱼ`.
    pub sigma: Vec<f64>,
}

impl EightSchools {
    /// The paper's rescaled data ([`EIGHT_SCHOOLS_Y`], [`EIGHT_SCHOOLS_SIGMA`]).
    pub fn rescaled() -> Self {
        Self {
            y: EIGHT_SCHOOLS_Y.to_vec(),
            sigma: EIGHT_SCHOOLS_SIGMA.to_vec(),
        }
    }

    /// Parameters: `2 + J`.
    pub fn dim(&self) -> i64 {
        2 + self.y.len() as i64
    }

    /// `log p(θ)` per row of `θ` `[C, 2 + J]` (the standard normal), `[C]`.
    pub fn log_prior(&self, theta: &Tensor) -> Tensor {
        (theta.square().sum_dim_intlist(-1, false, theta.kind())
            + self.dim() as f64 * (2.0 * PI).ln())
            * -0.5
    }

    /// `log p(y | θ)` per row, `[C]`.
    pub fn log_likelihood(&self, theta: &Tensor) -> Tensor {
        let opts = (theta.kind(), theta.device());
        let y = Tensor::from_slice(&self.y)
            .to_kind(opts.0)
            .to_device(opts.1);
        let sigma = Tensor::from_slice(&self.sigma)
            .to_kind(opts.0)
            .to_device(opts.1);
        let j = self.y.len() as i64;
        let mu = theta.narrow(-1, 0, 1);
        let tau = theta.narrow(-1, 1, 1);
        let eta = theta.narrow(-1, 2, j);
        let resid = (y - (mu + tau * eta)) / &sigma;
        let log_norm: f64 = self
            .sigma
            .iter()
            .map(|s| s.ln() + 0.5 * (2.0 * PI).ln())
            .sum();
        resid.square().sum_dim_intlist(-1, false, opts.0) * -0.5 - log_norm
    }

    /// `log p(y, θ)` per row, `[C]`.
    pub fn log_joint(&self, theta: &Tensor) -> Tensor {
        self.log_prior(theta) + self.log_likelihood(theta)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.y.is_empty() || self.y.len() != self.sigma.len() {
            return Err(ConfigError::Invalid {
                field: "target.y",
                reason: format!(
                    "needs one σ per y and at least one school, got {} y and {} σ",
                    self.y.len(),
                    self.sigma.len()
                ),
            });
        }
        if let Some(s) = self.sigma.iter().find(|s| !(s.is_finite() && **s > 0.0)) {
            return Err(ConfigError::Invalid {
                field: "target.sigma",
                reason: format!("standard errors must be positive, got {s}"),
            });
        }
        Ok(())
    }
}

impl Default for EightSchools {
    fn default() -> Self {
        Self::rescaled()
    }
}

/// `[reference]`: the HMC run the variational posteriors are measured against.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReferenceSection {
    /// Independent chains, started from prior draws.
    pub chains: i64,
    /// The sampler's settings (warm-up, samples per chain, leapfrog steps, adaptation, thinning).
    pub hmc: HmcConfig,
}

impl Default for ReferenceSection {
    fn default() -> Self {
        Self {
            chains: 200,
            hmc: HmcConfig {
                step_size: 0.1,
                leapfrog_steps: 20,
                warmup: 1000,
                samples: 2000,
                adaptation: genae_samplers::StepSizeAdaptation::Shared,
                keep_trajectory: true,
                thin: 10,
                ..HmcConfig::default()
            },
        }
    }
}

/// `[mean_field]`: a fully factorised Gaussian `q`, fitted by the reparameterised ELBO.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MeanFieldSection {
    /// Adam steps.
    pub steps: usize,
    /// Monte-Carlo draws per step.
    pub samples: i64,
    /// Adam learning rate.
    pub learning_rate: f64,
}

impl Default for MeanFieldSection {
    fn default() -> Self {
        Self {
            steps: 5000,
            samples: 64,
            learning_rate: 1e-2,
        }
    }
}

/// `[avb]`: the implicit `q(θ) = g(ε)` and its discriminator, used with and without adaptive
/// contrast.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AvbSection {
    /// Primal (generator) steps.
    pub steps: usize,
    /// Discriminator (dual) steps per primal step (the paper's code: 2).
    pub dual_steps: usize,
    /// Draws of `q` (and of the reference distribution) per step; with adaptive contrast also
    /// the sample the moments of `q` are estimated from.
    pub batch: i64,
    /// Dimensions of the noise `ε` fed to `g`.
    pub noise_dim: i64,
    /// Hidden widths of `g`.
    pub hidden: Vec<i64>,
    /// Hidden widths of the discriminator `T`.
    pub discriminator_hidden: Vec<i64>,
    /// Adam learning rate of `g`.
    pub learning_rate: f64,
    /// Adam learning rate of `T`.
    pub discriminator_learning_rate: f64,
}

impl Default for AvbSection {
    fn default() -> Self {
        Self {
            steps: 4000,
            dual_steps: 2,
            batch: 256,
            noise_dim: 10,
            hidden: vec![64, 64],
            discriminator_hidden: vec![128, 128],
            learning_rate: 1e-3,
            discriminator_learning_rate: 1e-3,
        }
    }
}

/// `[eval]`: how the posteriors are compared.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InferenceEvalSection {
    /// Draws of each posterior (and of the reference, subsampled) for the comparisons.
    pub samples: i64,
    /// Neighbour order of the nearest-neighbour KL estimate.
    pub knn_k: i64,
}

impl Default for InferenceEvalSection {
    fn default() -> Self {
        Self {
            samples: 5000,
            knn_k: 1,
        }
    }
}

/// A `genae infer` config. Every field has a default; unknown keys are errors.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InferenceConfig {
    /// Run name (the run directory is `<output_dir>/<name>-<UTC timestamp>`).
    pub name: String,
    /// Seed of libtorch's generators.
    pub seed: u64,
    /// Folder that receives run directories.
    pub output_dir: PathBuf,
    /// libtorch intra-op threads (0: libtorch's default).
    pub threads: usize,
    /// The model whose posterior is sought.
    pub target: EightSchools,
    /// The HMC reference.
    pub reference: ReferenceSection,
    /// Mean-field Gaussian VB.
    pub mean_field: MeanFieldSection,
    /// AVB, plain and with adaptive contrast.
    pub avb: AvbSection,
    /// The comparisons.
    pub eval: InferenceEvalSection,
}

impl Default for InferenceConfig {
    fn default() -> Self {
        Self {
            name: "eight-schools".into(),
            seed: 0,
            output_dir: "runs".into(),
            threads: 0,
            target: EightSchools::rescaled(),
            reference: ReferenceSection::default(),
            mean_field: MeanFieldSection::default(),
            avb: AvbSection::default(),
            eval: InferenceEvalSection::default(),
        }
    }
}

/// The shipped `genae infer` configs (`crates/genae-lab/configs/inference/`).
pub const SHIPPED_INFERENCE_CONFIGS: &[(&str, &str)] = &[(
    "eight-schools",
    include_str!("../configs/inference/eight-schools.toml"),
)];

impl InferenceConfig {
    /// Parses `text` (named `source_name` in errors), applies `--set` style `overrides` and
    /// validates; errors name the field.
    pub fn from_toml_str(
        text: &str,
        source_name: &str,
        overrides: &[String],
    ) -> Result<Self, ConfigError> {
        let config: Self = parse_with_overrides(text, source_name, overrides)?;
        config.validate()?;
        Ok(config)
    }

    /// A shipped config (see [`SHIPPED_INFERENCE_CONFIGS`]) or a file.
    pub fn load(name_or_path: &str, overrides: &[String]) -> Result<Self, ConfigError> {
        if let Some((name, text)) = SHIPPED_INFERENCE_CONFIGS
            .iter()
            .find(|(n, _)| *n == name_or_path)
        {
            return Self::from_toml_str(text, &format!("{name}.toml"), overrides);
        }
        let path = std::path::Path::new(name_or_path);
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_toml_str(&text, &path.display().to_string(), overrides)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let check = |ok: bool, field: &'static str, reason: String| {
            if ok {
                Ok(())
            } else {
                Err(ConfigError::Invalid { field, reason })
            }
        };
        self.target.validate()?;
        check(
            self.reference.chains >= 1,
            "reference.chains",
            format!("must be at least 1, got {}", self.reference.chains),
        )?;
        self.reference
            .hmc
            .validate()
            .map_err(|e| ConfigError::Invalid {
                field: "reference.hmc",
                reason: e.to_string(),
            })?;
        let kept = self.reference.hmc.samples / self.reference.hmc.thin;
        check(
            self.reference.hmc.keep_trajectory && kept >= 1,
            "reference.hmc.keep_trajectory",
            "the reference needs its trajectory (keep_trajectory = true, thin ≤ samples)".into(),
        )?;
        for (field, lr) in [
            ("mean_field.learning_rate", self.mean_field.learning_rate),
            ("avb.learning_rate", self.avb.learning_rate),
            (
                "avb.discriminator_learning_rate",
                self.avb.discriminator_learning_rate,
            ),
        ] {
            check(
                lr.is_finite() && lr > 0.0,
                field,
                format!("must be a positive finite number, got {lr}"),
            )?;
        }
        check(
            self.mean_field.samples >= 1,
            "mean_field.samples",
            format!("must be at least 1, got {}", self.mean_field.samples),
        )?;
        check(
            self.avb.batch >= 2,
            "avb.batch",
            format!("must be at least 2, got {}", self.avb.batch),
        )?;
        check(
            self.avb.noise_dim >= 1,
            "avb.noise_dim",
            format!("must be at least 1, got {}", self.avb.noise_dim),
        )?;
        check(
            self.avb.dual_steps >= 1,
            "avb.dual_steps",
            format!("must be at least 1, got {}", self.avb.dual_steps),
        )?;
        check(
            self.eval.knn_k >= 1 && self.eval.samples > self.eval.knn_k,
            "eval.samples",
            format!(
                "must exceed eval.knn_k ({}) which must be at least 1, got {}",
                self.eval.knn_k, self.eval.samples
            ),
        )?;
        Ok(())
    }
}

/// What one posterior looks like in `summary.json`.
#[derive(Clone, Debug, Serialize)]
pub struct PosteriorSummary {
    /// Nearest-neighbour estimate of `KL(q ‖ reference)` (nats).
    pub kl_to_reference: f64,
    /// Posterior mean of `μ`.
    pub mu_mean: f64,
    /// Posterior standard deviation of `μ`.
    pub mu_std: f64,
    /// Posterior mean of `|τ|`.
    pub abs_tau_mean: f64,
    /// Posterior standard deviation of `τ`.
    pub tau_std: f64,
    /// Fraction of draws with `τ > 0` (½ for the true, sign-symmetric posterior; 0 or 1 for
    /// a `q` that covers one mode).
    pub tau_positive_fraction: f64,
    /// Seconds of fitting (or sampling, for the reference).
    pub seconds: f64,
}

/// `summary.json` of an inference run.
#[derive(Clone, Debug, Serialize)]
pub struct InferenceSummary {
    /// The run directory.
    pub run_dir: PathBuf,
    /// The HMC reference (its `kl_to_reference` compares two independent halves of it: the
    /// estimator's floor).
    pub reference: PosteriorSummary,
    /// HMC's mean acceptance probability after warm-up.
    pub reference_accept_prob: f64,
    /// Mean-field Gaussian VB.
    pub mean_field: PosteriorSummary,
    /// AVB without adaptive contrast.
    pub avb: PosteriorSummary,
    /// AVB with adaptive contrast.
    pub avb_adaptive_contrast: PosteriorSummary,
}

fn stats(
    draws: &Tensor,
    reference: &Tensor,
    k: i64,
    seconds: f64,
) -> Result<PosteriorSummary, LabError> {
    let d = draws.to_kind(Kind::Double);
    let mu = d.select(1, 0);
    let tau = d.select(1, 1);
    let value = |t: Tensor| t.double_value(&[]);
    Ok(PosteriorSummary {
        kl_to_reference: knn_kl_divergence(&d, reference, k)?,
        mu_mean: value(mu.mean(Kind::Double)),
        mu_std: value(mu.std(true)),
        abs_tau_mean: value(tau.abs().mean(Kind::Double)),
        tau_std: value(tau.std(true)),
        tau_positive_fraction: value(tau.gt(0.0).to_kind(Kind::Double).mean(Kind::Double)),
        seconds,
    })
}

/// Runs the reference sampler; returns all kept draws `[S·C, d]` and the mean acceptance.
fn hmc_reference(config: &InferenceConfig, device: Device) -> Result<(Tensor, f64), LabError> {
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
fn mean_field(config: &InferenceConfig, n: i64, device: Device) -> Result<Tensor, LabError> {
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
        adam.backward_step(&loss);
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
fn avb(
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
            t_adam.backward_step(&posterior.discriminator_loss(&draws)?.loss);
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
        g_adam.backward_step(&loss);
        t_store.unfreeze();
    }
    Ok(posterior.sample(n, device)?)
}

/// A histogram density of `τ` on `bins` bins over `[lo, hi]`, as chart points.
fn tau_histogram(draws: &Tensor, lo: f64, hi: f64, bins: i64) -> Vec<(f64, f64)> {
    let tau = Vec::<f64>::try_from(&draws.select(1, 1).to_kind(Kind::Double)).unwrap_or_default();
    let width = (hi - lo) / bins as f64;
    let mut counts = vec![0.0; bins as usize];
    for t in &tau {
        let bin = ((t - lo) / width).floor();
        if bin >= 0.0 && bin < bins as f64 {
            counts[bin as usize] += 1.0;
        }
    }
    let n = tau.len().max(1) as f64;
    counts
        .iter()
        .enumerate()
        .map(|(i, c)| (lo + (i as f64 + 0.5) * width, c / (n * width)))
        .collect()
}

/// Runs the whole comparison: the HMC reference, mean-field VB, AVB and AVB with adaptive
/// contrast; writes `config.toml`, `summary.json`, `tau.png` (the posterior of `τ` under each)
/// and `samples.safetensors` (every method's draws) into a new run directory.
pub fn run_inference(config: &InferenceConfig) -> Result<InferenceSummary, LabError> {
    let run_dir = RunDir::create(&config.output_dir, &config.name)?;
    let text = toml::to_string_pretty(config).expect("an inference config always serialises");
    run_dir.write_atomic("config.toml", text.as_bytes())?;
    if config.threads > 0 {
        tch::set_num_threads(config.threads as i32);
    }
    let device = DeviceSpec::Cpu.resolve()?;
    seed_everything(config.seed);
    let (n, k) = (config.eval.samples, config.eval.knn_k);

    let started = Instant::now();
    let (reference_all, accept) = hmc_reference(config, device)?;
    let reference_seconds = started.elapsed().as_secs_f64();
    let total = reference_all.size()[0];
    // Two disjoint random halves: one is the yardstick, the other measures the estimator's floor.
    let order = Tensor::randperm(total, (Kind::Int64, device));
    let half = (total / 2).min(n.max(k + 1));
    let reference = reference_all.index_select(0, &order.narrow(0, 0, half));
    let reference_other = reference_all.index_select(0, &order.narrow(0, half, half));
    note!(
        "HMC reference: {total} draws from {} chains, acceptance {accept:.3}, {reference_seconds:.1} s",
        config.reference.chains
    );

    let timed =
        |f: &mut dyn FnMut() -> Result<Tensor, LabError>| -> Result<(Tensor, f64), LabError> {
            let t = Instant::now();
            let draws = f()?;
            Ok((draws, t.elapsed().as_secs_f64()))
        };
    let (mf, mf_s) = timed(&mut || mean_field(config, n, device))?;
    note!("mean-field VB: {mf_s:.1} s");
    let (plain, plain_s) = timed(&mut || avb(config, false, n, device))?;
    note!("AVB: {plain_s:.1} s");
    let (ac, ac_s) = timed(&mut || avb(config, true, n, device))?;
    note!("AVB with adaptive contrast: {ac_s:.1} s");

    let summary = InferenceSummary {
        run_dir: run_dir.path().to_path_buf(),
        reference: stats(&reference_other, &reference, k, reference_seconds)?,
        reference_accept_prob: accept,
        mean_field: stats(&mf, &reference, k, mf_s)?,
        avb: stats(&plain, &reference, k, plain_s)?,
        avb_adaptive_contrast: stats(&ac, &reference, k, ac_s)?,
    };
    run_dir.write_atomic("summary.json", to_json(&summary).as_bytes())?;

    let named = [
        ("reference", reference.to_kind(Kind::Float)),
        ("mean_field", mf.shallow_clone()),
        ("avb", plain.shallow_clone()),
        ("avb_adaptive_contrast", ac.shallow_clone()),
    ];
    let tmp = run_dir.temporary("samples.safetensors");
    Tensor::write_safetensors(&named, &tmp)?;
    std::fs::rename(&tmp, run_dir.file("samples.safetensors"))
        .map_err(|e| LabError::io("writing", &run_dir.file("samples.safetensors"), e))?;

    let lines: Vec<crate::plots::Line> = named
        .iter()
        .zip(0..)
        .map(|((name, draws), colour)| crate::plots::Line {
            name: name.to_string(),
            colour,
            points: tau_histogram(draws, -3.0, 3.0, 60),
        })
        .collect();
    let panel = crate::plots::Panel {
        title: "Eight schools: posterior density of τ".into(),
        lines,
    };
    crate::plots::line_charts(&[panel], "τ", &run_dir.file("tau.png"))?;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_joint_matches_a_hand_computation() {
        let model = EightSchools {
            y: vec![1.0, -1.0],
            sigma: vec![0.5, 2.0],
        };
        // θ = (μ, τ, η₁, η₂) = (0.5, 2, 0.25, −1): means 1.0 and −1.5.
        let theta = Tensor::from_slice(&[0.5f64, 2.0, 0.25, -1.0]).view([1, 4]);
        let log_prior = -0.5 * (0.25 + 4.0 + 0.0625 + 1.0) - 2.0 * (2.0 * PI).ln();
        let log_lik = -0.5 * (0.0f64 + 0.0625) - (0.5f64.ln() + 2.0f64.ln()) - (2.0 * PI).ln();
        let got = model.log_joint(&theta).double_value(&[0]);
        assert!((got - (log_prior + log_lik)).abs() < 1e-12, "{got}");
    }

    #[test]
    fn the_likelihood_is_symmetric_in_the_sign_of_tau() {
        let model = EightSchools::rescaled();
        let _rng = crate::torch_rng_lock();
        tch::manual_seed(8);
        let theta = Tensor::randn([5, 10], (Kind::Double, Device::Cpu));
        let flip =
            Tensor::from_slice(&[1.0f64, -1.0, -1.0, -1.0, -1.0, -1.0, -1.0, -1.0, -1.0, -1.0]);
        let a = model.log_joint(&theta);
        let b = model.log_joint(&(&theta * flip));
        assert!(a.allclose(&b, 1e-12, 1e-12, false));
    }

    #[test]
    fn shipped_configs_parse_and_bad_fields_are_named() {
        for (name, text) in SHIPPED_INFERENCE_CONFIGS {
            let c = InferenceConfig::from_toml_str(text, name, &[]).unwrap();
            assert_eq!(c.name, *name);
        }
        let err = InferenceConfig::from_toml_str("", "x.toml", &["avb.batch=1".into()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("avb.batch"), "{err}");
        let err =
            InferenceConfig::from_toml_str("[target]\ny = [1.0]\nsigma = [0.0]", "x.toml", &[])
                .unwrap_err()
                .to_string();
        assert!(err.contains("target.sigma"), "{err}");
    }

    /// A short run of every method: finite numbers, every file, and mean-field VB closer to
    /// the HMC reference than the prior is.
    #[test]
    fn a_small_run_writes_its_summary_and_methods_beat_nothing() {
        let _rng = crate::torch_rng_lock();
        let out = tempfile::tempdir().unwrap();
        let config = InferenceConfig::from_toml_str(
            "name = \"tiny\"\nthreads = 1\n[reference]\nchains = 20\n[reference.hmc]\nwarmup = 100\nsamples = 200\nthin = 2\nkeep_trajectory = true\nleapfrog_steps = 10\nadaptation = \"shared\"\n[mean_field]\nsteps = 300\n[avb]\nsteps = 150\nbatch = 64\nhidden = [16]\ndiscriminator_hidden = [16]\n[eval]\nsamples = 500\n",
            "tiny.toml",
            &[format!("output_dir=\"{}\"", out.path().display())],
        )
        .unwrap();
        let s = run_inference(&config).unwrap();
        for p in [
            &s.reference,
            &s.mean_field,
            &s.avb,
            &s.avb_adaptive_contrast,
        ] {
            assert!(p.kl_to_reference.is_finite() && p.mu_std > 0.0, "{p:?}");
        }
        // The fitted Gaussian is much closer to the posterior than the prior is.
        tch::manual_seed(9);
        let prior = Tensor::randn([500, 10], (Kind::Double, Device::Cpu));
        let prior_kl = knn_kl_divergence(
            &prior,
            &Tensor::read_safetensors(s.run_dir.join("samples.safetensors"))
                .unwrap()
                .into_iter()
                .find(|(n, _)| n == "reference")
                .unwrap()
                .1
                .to_kind(Kind::Double),
            1,
        )
        .unwrap();
        assert!(
            s.mean_field.kl_to_reference < prior_kl,
            "{} vs prior {prior_kl}",
            s.mean_field.kl_to_reference
        );
        for f in [
            "summary.json",
            "tau.png",
            "config.toml",
            "samples.safetensors",
        ] {
            assert!(s.run_dir.join(f).is_file(), "{f}");
        }
    }
}
