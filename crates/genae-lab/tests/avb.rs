//! Adversarial Variational Bayes runs on the toy data set: the run directory, the summary's
//! keys (exact log-likelihood by quadrature, aggregate KL, importance-sampled `L_k`), the
//! frozen discriminator during primal steps, and resuming.

mod common;

use std::path::Path;

use genae_lab::{resume_experiment, run_experiment, ValidConfig};

use common::{config_in, metrics, summary, torch_rng_lock};

const TINY: &str = r#"
    name = "avb"
    device = "cpu"
    threads = 1
    [data]
    dataset = "avb-toy"
    train_size = 512
    test_size = 40
    [model]
    kind = "avb"
    latent_dim = 2
    hidden = [32, 32]
    activation = "elu"
    [avb]
    noise_dim = 4
    discriminator_hidden = [32]
    adaptive_contrast = true
    contrast_samples = 8
    ais_steps = 20
    ais_images = 4
    [train]
    epochs = 3
    batch_size = 64
    learning_rate = 3e-3
    [eval]
    batch_size = 25
    samples = 4
    reconstructions = 4
    interpolations = 1
    latent_points = 200
    log_likelihood_k = 64
    log_likelihood_chunk = 32
    exact_log_likelihood_grid = 120
"#;

fn config(out: &Path, extra: &[&str]) -> ValidConfig {
    config_in(TINY, "tiny-avb.toml", out, extra)
}

#[test]
fn an_avb_run_writes_its_summary_and_pictures() {
    let _rng = torch_rng_lock();
    let out = tempfile::tempdir().unwrap();
    let result = run_experiment(&config(out.path(), &[])).unwrap();
    let dir = &result.run_dir;
    let lines = metrics(dir);
    assert_eq!(lines.len(), 3);
    for l in &lines {
        let acc = l["train"]["discriminator_accuracy"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&acc), "{l}");
        let elbo = l["test"]["elbo"].as_f64().unwrap();
        let parts =
            l["test"]["reconstruction"].as_f64().unwrap() - l["test"]["kl"].as_f64().unwrap();
        assert!((elbo - parts).abs() < 1e-4, "{l}");
    }
    let s = summary(dir);
    assert_eq!(s["model"], "avb");
    assert_eq!(s["dataset"], "avb-toy");
    assert_eq!(s["avb"]["adaptive_contrast"], true);
    let last = &s["train"]["last_epoch"];
    assert!(last["discriminator"].as_f64().unwrap() > 0.0, "{s}");
    assert_eq!(last, &lines[2]["train"]);
    // Four equally likely images: no model beats −ln 4 (up to the grid's error).
    let exact = s["test"]["exact_log_likelihood"].as_f64().unwrap();
    assert!(
        exact < -(4f64.ln()) + 1e-6 && exact > -4.0 * 2f64.ln(),
        "{s}"
    );
    // Importance sampling is, in expectation, below the exact value; with 64 draws and an
    // untrained model it must at least be in the same range.
    let is = s["test"]["log_likelihood"]["value"].as_f64().unwrap();
    assert!(
        is < exact + 0.05 && is > exact - 2.0,
        "IS {is} vs exact {exact}"
    );
    assert!(
        s["test"]["aggregate_kl"].as_f64().unwrap().is_finite(),
        "{s}"
    );
    // AIS from the moment-matched Gaussian: also below the exact value, on 4 images.
    let ais = &s["avb"]["ais_log_likelihood"];
    assert_eq!(ais["n_images"], 4);
    let ais = ais["value"].as_f64().unwrap();
    assert!(
        ais < exact + 0.05 && ais > exact - 2.0,
        "AIS {ais} vs exact {exact}"
    );
    for file in [
        "reconstructions.png",
        "samples.png",
        "interpolations.png",
        "latents.png",
        "posterior.png",
        "report.html",
        "model.safetensors",
    ] {
        assert!(dir.join(file).is_file(), "{file}");
    }
    let saved = tch::Tensor::read_safetensors(dir.join("model.safetensors")).unwrap();
    for player in ["encoder.", "decoder.", "discriminator."] {
        assert!(saved.iter().any(|(n, _)| n.starts_with(player)), "{player}");
    }
}

#[test]
fn a_resumed_avb_run_gives_the_uninterrupted_numbers() {
    let _rng = torch_rng_lock();
    let out = tempfile::tempdir().unwrap();
    let extra = [
        "avb.adaptive_contrast=false",
        "eval.exact_log_likelihood_grid=0",
        "eval.log_likelihood_k=0",
    ];
    let whole = run_experiment(&config(out.path(), &extra)).unwrap();
    let mut half_extra = extra.to_vec();
    half_extra.push("train.epochs=1");
    let half = run_experiment(&config(out.path(), &half_extra)).unwrap();
    let resumed = resume_experiment(&half.run_dir, &["train.epochs=3".into()]).unwrap();
    assert_eq!(
        common::epoch_numbers(&whole.run_dir),
        common::epoch_numbers(&resumed.run_dir)
    );
    assert_eq!(whole.test.number("elbo"), resumed.test.number("elbo"));
}

#[test]
fn a_vae_on_the_toy_set_reports_the_exact_log_likelihood_too() {
    let _rng = torch_rng_lock();
    let out = tempfile::tempdir().unwrap();
    // The same config as a VAE: without the [avb] section, which a VAE does not read.
    let start = TINY.find("    [avb]").unwrap();
    let end = TINY.find("    [train]").unwrap();
    let text = format!("{}{}", &TINY[..start], &TINY[end..]);
    let result = run_experiment(&config_in(
        &text,
        "tiny-vae.toml",
        out.path(),
        &["model.kind=\"vae\"", "eval.log_likelihood_k=256"],
    ))
    .unwrap();
    let s = summary(&result.run_dir);
    let exact = s["test"]["exact_log_likelihood"].as_f64().unwrap();
    // For a VAE, L_256 is a stochastic lower bound close to log p(x) in 2-d, and the ELBO
    // lies below both.
    let l_k = s["test"]["log_likelihood"]["value"].as_f64().unwrap();
    let elbo = s["test"]["elbo"].as_f64().unwrap();
    assert!((l_k - exact).abs() < 0.05, "L_k {l_k} vs exact {exact}");
    assert!(elbo < exact, "ELBO {elbo} above log p(x) {exact}");
    assert!(result.run_dir.join("posterior.png").is_file());
}

#[test]
fn avb_settings_are_validated_by_name() {
    let out = tempfile::tempdir().unwrap();
    for (set, field) in [
        ("avb.contrast_samples=1", "avb.contrast_samples"),
        ("avb.noise_dim=0", "avb.noise_dim"),
        ("avb.primal_steps=0", "avb.primal_steps"),
        ("avb.ais_images=0", "avb.ais_images"),
        ("model.latent_dim=4", "eval.exact_log_likelihood_grid"),
        ("avb.noise_injection=\"everywhere\"", "avb.noise_injection"),
    ] {
        let err = ValidConfig::from_toml_str(
            TINY,
            "tiny-avb.toml",
            &[
                format!("output_dir=\"{}\"", out.path().display()),
                set.into(),
            ],
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains(field), "{set}: {err}");
    }
}
