//! Variational inference on a small Bayesian model, non-amortised: AVB as a general inference
//! engine (Mescheder et al., 2017, §5.2), beside mean-field Gaussian VB, both measured against a
//! long HMC run of genae's own sampler.
//!
//! The model is the "eight schools" hierarchy in the AVB paper's rescaled, non-centred form:
//! `θ = (μ, τ, η₁…η₈)`, all `N(0, 1)` a priori, `yⱼ ~ N(μ + τ·ηⱼ, σⱼ)`, `τ` unconstrained. Flipping
//! the signs of `τ` and every `ηⱼ` leaves the likelihood unchanged, so the posterior is
//! symmetric in `τ` and bimodal when the data favour `|τ| > 0`: a Gaussian `q` sits on one mode,
//! an implicit `q = g(ε)` can cover both. `genae infer eight-schools` runs it.

mod config;
mod methods;
mod target;

use std::path::PathBuf;
use std::time::Instant;

use genae_estimators::knn_kl_divergence;
use genae_tensor::{seed_everything, DeviceSpec};
use serde::Serialize;
use tch::{Kind, Tensor};

use crate::error::LabError;
use crate::metrics::to_json;
use crate::run_dir::RunDir;
use methods::{avb, hmc_reference, mean_field};

pub use config::{
    AvbSection, InferenceConfig, InferenceEvalSection, MeanFieldSection, ReferenceSection,
    SHIPPED_INFERENCE_CONFIGS,
};
pub use target::EightSchools;

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
    use tch::Device;

    use super::*;

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
