//! `model.kind = "vqvae"` end to end on the tiny shipped config: the run directory, the summary
//! keys and how they add up, the metrics lines of both phases; and the VAE summary's
//! `test.reconstruction_mse` (with no VQ-VAE keys). Resuming: `resume.rs`.

mod common;

use std::path::Path;

use genae_data::shapes::{shapes_dataset, ShapesSpec};
use genae_lab::{load_shipped, run_experiment, ValidConfig};

use common::torch_rng_lock;
use genae_samplers::VectorQuantizer;
use genae_zoo::{discretized_gaussian_log_prob, Vae, VqDecoder, VqEncoder};
use serde_json::Value;
use tch::{nn, Device, Kind, Tensor};

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The run's test images `[N, D]` in `[0, 1]`, regenerated from its shapes config.
fn test_images(config: &ValidConfig) -> Tensor {
    let d = &config.file().data;
    let spec = ShapesSpec {
        image_size: d.image_size,
        n_scales: d.n_scales,
        n_rotations: d.n_rotations,
        n_positions: d.n_positions,
    };
    let set = shapes_dataset(&spec, d.train_limit(), d.test_limit(), d.seed)
        .unwrap()
        .test;
    let n = set.labels.len() as i64;
    Tensor::from_slice(&set.pixels)
        .to_kind(Kind::Float)
        .view([n, -1])
        / 255.0
}

fn number(v: &Value, path: &str) -> f64 {
    let found = path.split('.').fold(v, |v, k| &v[k]);
    found
        .as_f64()
        .unwrap_or_else(|| panic!("`{path}` missing or not a number in {v}"))
}

#[test]
fn tiny_vqvae_runs_end_to_end() {
    let _rng = torch_rng_lock();
    let out = tempfile::tempdir().unwrap();
    let config = load_shipped(
        "tiny-vqvae",
        &[format!("output_dir=\"{}\"", out.path().display())],
    )
    .unwrap();
    let summary = run_experiment(&config).unwrap();
    let dir = summary.run_dir.clone();
    for file in [
        "config.toml",
        "metrics.jsonl",
        "summary.json",
        "samples.png",
        "reconstructions.png",
        "model.safetensors",
        "prior.safetensors",
        "report.html",
    ] {
        assert!(
            dir.join(file).is_file(),
            "{file} missing in {}",
            dir.display()
        );
    }
    let s = read_json(&dir.join("summary.json"));
    assert_eq!(s["model"], "vqvae");
    let k = 16.0;
    let perplexity = number(&s, "vq.perplexity");
    assert!((1.0..=k).contains(&perplexity), "perplexity {perplexity}");
    let used = number(&s, "vq.codes_used");
    assert!(used >= perplexity.floor() && used <= k, "codes used {used}");
    // The summary's MSE is the decoder's unclamped output; recomputed from the saved model with
    // the reconstructions clamped to [0, 1] (as `genae reconstruct` shows them) it can only be
    // lower, and not by much. The reconstructions already carry their inputs a little (two
    // epochs do not beat the mean image yet; a constant output would score the same on other
    // images).
    let mse = number(&s, "test.reconstruction_mse");
    let (own, other) = common::test_reconstruction_mse(&dir);
    eprintln!("VQ-VAE reconstruction MSE {mse} (recomputed {own}, to other images {other})");
    assert!(own <= mse && own > 0.9 * mse, "MSE {mse}, recomputed {own}");
    assert!(own < 0.995 * other, "own {own}, other {other}");
    // σ² of p(x|z_q) is the training MSE: of the same order as the test MSE.
    let sigma = number(&s, "vq.reconstruction_sigma");
    assert!(
        sigma > 0.0 && (sigma * sigma / mse - 1.0).abs() < 0.5,
        "σ {sigma}, MSE {mse}"
    );
    // bits/dim = (−log p(x|z_q) − log p(z_q)) / (D ln 2), D = 16·16, and ELBO = −(both).
    let rec_nll = number(&s, "vq.reconstruction_nll");
    let prior_nll = number(&s, "test.prior_nll");
    let bpd = number(&s, "test.bits_per_dim");
    let d = 256.0;
    assert!(
        (bpd - (rec_nll + prior_nll) / (d * std::f64::consts::LN_2)).abs() < 1e-9,
        "{bpd}"
    );
    assert!((number(&s, "test.elbo") + rec_nll + prior_nll).abs() < 1e-6);
    assert_eq!(number(&s, "test.kl"), prior_nll);
    assert_eq!(number(&s, "prior.test_nll"), prior_nll);
    // A 4×4 grid of 16 codes: the prior's NLL lies between 0 and a little over 16 ln 16.
    assert!(
        prior_nll > 0.0 && prior_nll < 1.5 * 16.0 * k.ln(),
        "{prior_nll}"
    );
    assert!(bpd > 0.0 && bpd.is_finite());
    assert!(s["test"].get("active_units").is_none());

    // Independently: reload the saved VQ-VAE, reconstruct the regenerated test set, recompute
    // the MSE and −log p(x|z_q) under the discretised Gaussian with the reported σ.
    let mut vs = nn::VarStore::new(Device::Cpu);
    let f = config.file();
    let vq = f.vq.as_ref().unwrap();
    let shape = [1, 16, 16];
    let enc = VqEncoder::new(&(vs.root() / "encoder"), shape, &vq.network()).unwrap();
    let quantizer = VectorQuantizer::new(&(vs.root() / "quantizer"), &vq.quantizer).unwrap();
    let dec = VqDecoder::new(&(vs.root() / "decoder"), shape, &vq.network()).unwrap();
    vs.load(dir.join("model.safetensors")).unwrap();
    let x = test_images(&config);
    let (mse_again, nll_again) = tch::no_grad(|| {
        let out = quantizer
            .forward_t(&enc.encode(&x).unwrap(), false)
            .unwrap();
        let x_hat = dec.decode(&out.quantized).unwrap().view_as(&x);
        let mse = (&x_hat - &x).square().mean(Kind::Double).double_value(&[]);
        let nll = -discretized_gaussian_log_prob(&x_hat, sigma, &x)
            .unwrap()
            .mean(Kind::Double)
            .double_value(&[]);
        (mse, nll)
    });
    assert!((mse_again - mse).abs() < 1e-5 * mse, "{mse_again} vs {mse}");
    assert!(
        (nll_again - rec_nll).abs() < 1e-4 * rec_nll.abs(),
        "{nll_again} vs {rec_nll}"
    );
    assert!(s["test"].get("log_likelihood").is_none());

    let lines: Vec<Value> = std::fs::read_to_string(dir.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let phases: Vec<&str> = lines.iter().map(|l| l["phase"].as_str().unwrap()).collect();
    assert_eq!(phases, ["vqvae", "vqvae", "prior"]);
    let epochs: Vec<u64> = lines.iter().map(|l| l["epoch"].as_u64().unwrap()).collect();
    assert_eq!(epochs, [1, 2, 3]);
    for l in &lines[..2] {
        for key in [
            "train.reconstruction_mse",
            "train.commitment",
            "test.reconstruction_mse",
            "test.perplexity",
        ] {
            assert!(number(l, key).is_finite(), "{key} in {l}");
        }
    }
    assert_eq!(number(&lines[2], "test.nll"), prior_nll);
    let phases = &s["train"]["phases"];
    assert_eq!(phases[0]["name"], "vqvae");
    assert_eq!(
        (phases[0]["epochs"].as_u64(), phases[1]["epochs"].as_u64()),
        (Some(2), Some(1))
    );
}

#[test]
fn vae_summary_gains_the_reconstruction_mse_only() {
    let _rng = torch_rng_lock();
    let out = tempfile::tempdir().unwrap();
    let config = ValidConfig::from_toml_str(
        "name = \"tiny-vae\"\ndevice = \"cpu\"\nthreads = 1\n\
         [data]\ntrain_size = 200\ntest_size = 40\nimage_size = 16\nn_positions = 6\n\
         [model]\nlatent_dim = 2\nhidden = [32]\n\
         [train]\nepochs = 1\nbatch_size = 40\n\
         [eval]\nbatch_size = 20\nsamples = 4\nreconstructions = 2\ninterpolations = 0\n\
         latent_points = 0\nlog_likelihood_k = 0\n",
        "tiny-vae.toml",
        &[format!("output_dir=\"{}\"", out.path().display())],
    )
    .unwrap();
    let summary = run_experiment(&config).unwrap();
    let s = read_json(&summary.run_dir.join("summary.json"));
    // The summary's MSE is the one recomputed from the saved model (one epoch of five steps
    // trains nothing worth comparing with the mean image).
    let mse = number(&s, "test.reconstruction_mse");
    let (own, _) = common::test_reconstruction_mse(&summary.run_dir);
    assert!(
        mse > 0.0 && (mse - own).abs() < 1e-6,
        "MSE {mse}, recomputed {own}"
    );
    assert!(s["test"]["active_units"].is_u64());
    for key in ["bits_per_dim", "prior_nll"] {
        assert!(s["test"].get(key).is_none(), "{key} in a VAE summary");
    }
    assert!(s.get("vq").is_none() && s.get("prior").is_none());
    // Independently: the decoder mean of the encoder mean, from the saved parameters.
    let mut vs = nn::VarStore::new(Device::Cpu);
    let networks = config.spec().networks().unwrap();
    let vae = Vae::new(&vs.root(), &networks.vae_config([1, 16, 16])).unwrap();
    vs.load(summary.run_dir.join("model.safetensors")).unwrap();
    let x = test_images(&config);
    let again = (vae.reconstruct(&x).unwrap().view_as(&x) - &x)
        .square()
        .mean(Kind::Double)
        .double_value(&[]);
    assert!((again - mse).abs() < 1e-5 * mse, "{again} vs {mse}");
}

/// `log P(x)` per example of levels `x` under the discretised logistic with location `mu` and
/// scale `s` over 256 levels, straight from the logistic CDF `σ((t − μ)/s)`: bin edges at
/// `x ± 1/510`, the end bins running to `∓∞`. Double precision, written out here so that the
/// check does not call the code it checks.
fn logistic_levels_log_prob(x: &Tensor, mu: &Tensor, s: &Tensor) -> Tensor {
    let (x, mu, s) = (
        x.to_kind(Kind::Double),
        mu.to_kind(Kind::Double),
        s.to_kind(Kind::Double),
    );
    let half = 0.5 / 255.0;
    let upper = ((&x + half - &mu) / &s).sigmoid();
    let lower = ((&x - half - &mu) / &s).sigmoid();
    let upper = upper.where_self(&x.lt(1.0 - half), &upper.ones_like());
    let lower = lower.where_self(&x.gt(half), &lower.zeros_like());
    // Tiny bins far in a tail underflow to 0 in the difference: floor at the smallest double.
    (upper - lower)
        .clamp_min(f64::MIN_POSITIVE)
        .log()
        .sum_dim_intlist(1, false, Kind::Double)
}

#[test]
fn a_discretised_logistic_decoder_is_trained_and_scored_by_its_own_likelihood() {
    let _rng = torch_rng_lock();
    let out = tempfile::tempdir().unwrap();
    let config = load_shipped(
        "tiny-vqvae",
        &[
            format!("output_dir=\"{}\"", out.path().display()),
            "vq.likelihood={ kind = \"discretized_logistic\", bins = 256 }".into(),
        ],
    )
    .unwrap();
    let summary = run_experiment(&config).unwrap();
    let dir = summary.run_dir.clone();
    let s = read_json(&dir.join("summary.json"));
    assert_eq!(s["vq"]["likelihood"], "discretized_logistic");
    assert!(s["vq"].get("reconstruction_sigma").is_none(), "{s}");
    let rec_nll = number(&s, "vq.reconstruction_nll");
    let prior_nll = number(&s, "test.prior_nll");
    let bpd = number(&s, "test.bits_per_dim");
    assert!(
        (bpd - (rec_nll + prior_nll) / (256.0 * std::f64::consts::LN_2)).abs() < 1e-9,
        "{bpd}"
    );
    // Two epochs already beat a uniform distribution over the 256 levels (8 bits/dim) by far.
    assert!(bpd > 0.0 && bpd < 4.0, "{bpd} bits/dim");
    // Training logged the likelihood, and it improved.
    let lines: Vec<Value> = std::fs::read_to_string(dir.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let rec = |i: usize| number(&lines[i], "train.reconstruction");
    assert!(rec(1) > rec(0), "{lines:?}");

    // Independently: reload the saved VQ-VAE (a decoder with two maps per channel: locations,
    // then log-scales), and recompute −log p(x|z_q) from the logistic CDF.
    let mut vs = nn::VarStore::new(Device::Cpu);
    let vq = config.file().vq.as_ref().unwrap();
    let shape = [1, 16, 16];
    let enc = VqEncoder::new(&(vs.root() / "encoder"), shape, &vq.network()).unwrap();
    let quantizer = VectorQuantizer::new(&(vs.root() / "quantizer"), &vq.quantizer).unwrap();
    let dec = VqDecoder::with_outputs(&(vs.root() / "decoder"), shape, &vq.network(), 2).unwrap();
    vs.load(dir.join("model.safetensors")).unwrap();
    let x = test_images(&config);
    let nll_again = tch::no_grad(|| {
        let out = quantizer
            .forward_t(&enc.encode(&x).unwrap(), false)
            .unwrap();
        let maps = dec.decode(&out.quantized).unwrap();
        let n = x.size()[0];
        let mu = maps.narrow(1, 0, 1).reshape([n, -1]);
        let (lo, hi) = genae_zoo::LOGISTIC_LOG_SCALE_RANGE;
        let s = maps.narrow(1, 1, 1).reshape([n, -1]).clamp(lo, hi).exp();
        -logistic_levels_log_prob(&x, &mu, &s)
            .mean(Kind::Double)
            .double_value(&[])
    });
    assert!(
        (nll_again - rec_nll).abs() < 1e-3 * rec_nll.abs().max(1.0),
        "{nll_again} vs {rec_nll}"
    );
}
