//! Adversarial autoencoder runs: the run directory, the summary's keys, and resuming.

mod common;

use std::path::Path;

use genae_lab::{resume_experiment, run_experiment, ValidConfig};

use common::{config_in, metrics, torch_rng_lock};

const TINY: &str = r#"
    name = "aae"
    device = "cpu"
    threads = 1
    [data]
    train_size = 300
    test_size = 60
    image_size = 16
    n_positions = 6
    [model]
    kind = "aae"
    latent_dim = 2
    hidden = [32]
    [aae]
    discriminator_hidden = [16]
    prior = { kind = "gaussian_mixture", components = 3, radius = 2.0, std = 0.5 }
    condition_on_labels = true
    [train]
    epochs = 3
    batch_size = 30
    learning_rate = 3e-3
    [eval]
    batch_size = 25
    samples = 4
    reconstructions = 2
    interpolations = 1
    latent_points = 50
    log_likelihood_k = 0
"#;

fn config(out: &Path, extra: &[&str]) -> ValidConfig {
    config_in(TINY, "tiny-aae.toml", out, extra)
}

#[test]
fn an_aae_run_trains_and_writes_its_summary_and_pictures() {
    let _rng = torch_rng_lock();
    let out = tempfile::tempdir().unwrap();
    // 15 epochs of 300 images: enough to beat the mean image clearly (3 are not). With the
    // R1 penalty on the discriminator, as the Fashion-MNIST config has it.
    let summary = run_experiment(&config(
        out.path(),
        &["train.epochs=15", "aae.discriminator_r1=1.0"],
    ))
    .unwrap();
    let dir = &summary.run_dir;
    let lines = metrics(dir);
    assert_eq!(lines.len(), 15);
    let rec = |i: usize| lines[i]["train"]["reconstruction"].as_f64().unwrap();
    assert!(
        rec(14) > rec(0),
        "reconstruction did not improve: {lines:?}"
    );
    for l in &lines {
        let acc = l["train"]["discriminator_accuracy"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&acc), "{l}");
        assert!(l["train"]["discriminator"].as_f64().unwrap() > 0.0, "{l}");
        assert!(
            l["train"]["discriminator_gradient_sq"].as_f64().unwrap() > 0.0,
            "{l}"
        );
    }
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    assert_eq!(s["model"], "aae");
    assert!(s["test"]["elbo"].is_null(), "an AAE has no ELBO: {s}");
    let mse = s["test"]["reconstruction_mse"].as_f64().unwrap();
    let baseline = common::mean_image_mse(dir);
    eprintln!("AAE reconstruction MSE {mse}, mean-image MSE {baseline}");
    assert!(
        mse > 0.0 && mse < 0.85 * baseline,
        "MSE {mse}, mean image {baseline}"
    );
    assert_eq!(s["aae"]["prior"], "gaussian_mixture");
    assert!(s["aae"]["prior_mmd"].as_f64().unwrap().is_finite(), "{s}");
    assert_eq!(s["aae"]["prior_mmd_points"], 50);
    // Where the test codes sit against their shapes' components (a few hundred steps on 300
    // images do not teach an MLP encoder the shapes, so this stays near chance here; that
    // the game moves codes of classes the encoder can tell apart onto their components is
    // checked in genae-zoo, `conditioned_codes_move_to_their_own_components`).
    let fit = &s["aae"]["components"];
    let own = fit["own_component_fraction"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&own), "{fit}");
    assert_eq!(fit["points"], 50);
    assert_eq!(
        fit["own_component_fraction_by_class"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    for picture in [
        "reconstructions.png",
        "samples.png",
        "interpolations.png",
        "latents.png",
        "report.html",
        "model.safetensors",
    ] {
        assert!(dir.join(picture).is_file(), "{picture}");
    }
    // The three players' parameters are saved under their names.
    let saved = tch::Tensor::read_safetensors(dir.join("model.safetensors")).unwrap();
    for player in ["encoder.", "decoder.", "discriminator."] {
        assert!(saved.iter().any(|(n, _)| n.starts_with(player)), "{player}");
    }
}

#[test]
fn a_resumed_aae_run_gives_the_uninterrupted_numbers() {
    let _rng = torch_rng_lock();
    let out = tempfile::tempdir().unwrap();
    let whole = run_experiment(&config(out.path(), &[])).unwrap();
    let half = run_experiment(&config(out.path(), &["train.epochs=1"])).unwrap();
    let resumed = resume_experiment(&half.run_dir, &["train.epochs=3".into()]).unwrap();
    assert_eq!(
        common::epoch_numbers(&whole.run_dir),
        common::epoch_numbers(&resumed.run_dir)
    );
    assert_eq!(
        whole.test.number("reconstruction"),
        resumed.test.number("reconstruction")
    );
}

#[test]
fn label_conditioning_without_a_mixture_is_refused_naming_the_field() {
    let out = tempfile::tempdir().unwrap();
    let err = ValidConfig::from_toml_str(
        TINY,
        "tiny-aae.toml",
        &[
            format!("output_dir=\"{}\"", out.path().display()),
            "aae.prior={ kind = \"uniform\" }".into(),
        ],
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("aae.condition_on_labels"), "{err}");
    let err = ValidConfig::from_toml_str(
        TINY,
        "tiny-aae.toml",
        &[
            "aae.prior={ kind = \"swiss_roll\" }".into(),
            "model.latent_dim=3".into(),
        ],
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("aae.prior") && err.contains("2-d"), "{err}");
}
