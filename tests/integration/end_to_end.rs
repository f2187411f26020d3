//! A whole (tiny) experiment through genae-lab: config with `--set` overrides, training,
//! evaluation and the run directory.

use std::path::Path;

use genae_lab::{run_experiment, ValidConfig};

fn tiny_config(output_dir: &Path, extra: &[&str]) -> ValidConfig {
    let text = r#"
        name = "tiny"
        device = "cpu"
        [data]
        train_size = 300
        test_size = 60
        image_size = 16
        n_positions = 6
        [model]
        latent_dim = 2
        hidden = [64]
        [train]
        epochs = 3
        batch_size = 30
        learning_rate = 3e-3
        [eval]
        batch_size = 25
        samples = 9
        reconstructions = 4
        log_likelihood_k = 50
        log_likelihood_images = 20
        latent_points = 60
        interpolations = 2
    "#;
    let mut overrides = vec![format!("output_dir=\"{}\"", output_dir.display())];
    overrides.extend(extra.iter().map(|s| s.to_string()));
    ValidConfig::from_toml_str(text, "tiny.toml", &overrides).unwrap()
}

fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn a_run_writes_its_directory_and_learns() {
    let _rng = crate::torch_rng_lock();
    let out = tempfile::tempdir().unwrap();
    let config = tiny_config(
        out.path(),
        &["seed=5", "train.epochs=4", "eval.log_likelihood_images=0"],
    );
    let summary = run_experiment(&config).unwrap();
    let dir = &summary.run_dir;
    assert!(dir.starts_with(out.path()));
    assert!(dir
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with("tiny-"));
    for file in [
        "config.toml",
        "metrics.jsonl",
        "summary.json",
        "reconstructions.png",
        "samples.png",
        "interpolations.png",
        "latents.png",
        "model.safetensors",
    ] {
        assert!(
            dir.join(file).is_file(),
            "{file} missing in {}",
            dir.display()
        );
    }

    // The override reached the resolved config.
    let resolved: toml::Table = std::fs::read_to_string(dir.join("config.toml"))
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(resolved["train"]["epochs"].as_integer(), Some(4));
    assert_eq!(resolved["seed"].as_integer(), Some(5));
    assert_eq!(resolved["eval"]["samples"].as_integer(), Some(9));

    // One metrics line per epoch; the test ELBO improves from the first epoch to the last.
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(dir.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4);
    let test_elbo = |l: &serde_json::Value| l["test"]["elbo"].as_f64().unwrap();
    assert!(test_elbo(&lines[3]) > test_elbo(&lines[0]), "{lines:?}");
    for l in &lines {
        let t = &l["test"];
        let (e, r, k) = (
            t["elbo"].as_f64().unwrap(),
            t["reconstruction"].as_f64().unwrap(),
            t["kl"].as_f64().unwrap(),
        );
        assert!((e - (r - k)).abs() < 1e-3 && k >= 0.0 && e < 0.0, "{t}");
        assert!(l["examples_per_s"].as_f64().unwrap() > 0.0);
    }

    let s = read_json(&dir.join("summary.json"));
    assert_eq!(s["model"], "vae");
    assert_eq!(s["dataset"], "shapes16");
    assert_eq!(s["test"]["elbo"].as_f64().unwrap(), test_elbo(&lines[3]));
    for key in ["kl", "reconstruction"] {
        assert!(s["test"][key].is_f64(), "test.{key}");
    }
    // L_50 ≥ ELBO on the same (all 60) test images, beyond the single-sample ELBO's noise
    // (about 0.2 nats for a mean over 60 images here), and the counts are as configured.
    let ll = &s["test"]["log_likelihood"];
    assert_eq!(ll["k"], 50);
    assert_eq!(ll["n_images"], 60);
    let (l_k, elbo) = (
        ll["value"].as_f64().unwrap(),
        s["test"]["elbo"].as_f64().unwrap(),
    );
    eprintln!("L_50 {l_k}, ELBO {elbo}");
    assert!(l_k > elbo + 0.1 && l_k < 0.0, "L_50 {l_k}, ELBO {elbo}");
    let bits = ll["bits_per_dim"].as_f64().unwrap();
    assert!(
        (bits - (-l_k / (256.0 * std::f64::consts::LN_2))).abs() < 1e-9,
        "{bits}"
    );
    // Both latent dimensions carry information about the images (Cov_x E[z|x] > 0.01).
    let au = s["test"]["active_units"].as_u64().unwrap();
    assert_eq!(au, 2, "2 latent dimensions, {au} active");
    for key in ["examples_per_s", "seconds"] {
        assert!(s["train"][key].as_f64().unwrap() > 0.0, "train.{key}");
    }

    // The checkpoint holds the model's parameters under their role names.
    let tensors = tch::Tensor::read_safetensors(dir.join("model.safetensors")).unwrap();
    assert!(tensors
        .iter()
        .any(|(name, _)| name == "encoder.mean.weight"));
}

#[test]
fn same_seed_gives_the_same_numbers() {
    let _rng = crate::torch_rng_lock();
    let out = tempfile::tempdir().unwrap();
    let a = run_experiment(&tiny_config(out.path(), &["train.epochs=1"])).unwrap();
    let b = run_experiment(&tiny_config(out.path(), &["train.epochs=1"])).unwrap();
    assert_ne!(a.run_dir, b.run_dir);
    // Every number but the wall-clock seconds of the L_k estimate.
    let untimed = |t: genae_lab::Record| {
        let mut kept = genae_lab::Record::new();
        for (name, value) in t.iter() {
            let mut value = value.to_json();
            if let Some(ll) = value.as_object_mut() {
                ll.remove("seconds");
            }
            kept.insert(name, value);
        }
        kept
    };
    assert_eq!(untimed(a.test), untimed(b.test));
}

fn metric_lines(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn every_architecture_likelihood_and_objective_trains_from_the_config() {
    let _rng = crate::torch_rng_lock();
    let out = tempfile::tempdir().unwrap();
    let cases: [&[&str]; 5] = [
        &[
            "model.architecture={ kind = \"conv\", channels = [8, 16], residual_blocks = 1 }",
            "data.image_size=32",
            "model.likelihood={ kind = \"gaussian\", variance = 0.1 }",
            "data.binarize=\"none\"",
        ],
        &[
            "model.likelihood={ kind = \"gaussian_learned\" }",
            "data.binarize=\"none\"",
        ],
        &[
            "model.likelihood={ kind = \"discretized_logistic\" }",
            "data.binarize=\"none\"",
        ],
        &[
            "train.objective=\"iwae\"",
            "train.iwae_k=5",
            "train.beta=1.0",
        ],
        &[
            "train.objective=\"dvae\"",
            "train.corruption={ kind = \"salt_and_pepper\", p = 0.1 }",
            "train.dvae_copies=2",
        ],
    ];
    for extra in cases {
        let mut all = vec!["train.epochs=3", "eval.log_likelihood_k=20"];
        all.extend_from_slice(extra);
        let summary = run_experiment(&tiny_config(out.path(), &all))
            .unwrap_or_else(|e| panic!("{extra:?}: {e}"));
        let lines = metric_lines(&summary.run_dir);
        let elbo = |i: usize| lines[i]["test"]["elbo"].as_f64().unwrap();
        assert!(
            elbo(2).is_finite() && elbo(2) > elbo(0),
            "{extra:?}: {lines:?}"
        );
        let ll = summary.test.number_at("log_likelihood.value").unwrap();
        assert!(ll.is_finite(), "{extra:?}");
        // The denoising bound is reported (only) for DVAE runs.
        let is_dvae = extra.iter().any(|e| e.contains("dvae"));
        let dvae_bound = summary.test.number("dvae_bound");
        assert_eq!(dvae_bound.is_some(), is_dvae, "{extra:?}");
        if let Some(bound) = dvae_bound {
            assert!(bound.is_finite() && bound < 0.0, "{bound}");
        }
        for file in ["samples.png", "reconstructions.png", "interpolations.png"] {
            assert!(summary.run_dir.join(file).is_file(), "{extra:?}: {file}");
        }
    }
}

#[test]
fn mid_run_evaluation_logs_l_k_and_saves_a_checkpoint() {
    let _rng = crate::torch_rng_lock();
    let out = tempfile::tempdir().unwrap();
    let config = tiny_config(out.path(), &["train.epochs=3", "eval.every=1"]);
    let summary = run_experiment(&config).unwrap();
    let lines = metric_lines(&summary.run_dir);
    // Epochs 1 and 2 estimate L_k; the last epoch leaves it to the summary.
    for (i, line) in lines.iter().enumerate() {
        let ll = &line["log_likelihood"];
        if i < 2 {
            assert_eq!(ll["k"], 50, "epoch {}", i + 1);
            assert!(ll["value"].as_f64().unwrap() < 0.0);
        } else {
            assert!(ll.is_null(), "epoch {}: {ll}", i + 1);
        }
    }
    assert!(summary.run_dir.join("model.safetensors").is_file());
}

#[test]
fn fashion_mnist_trains_with_dynamic_binarisation() {
    let _rng = crate::torch_rng_lock();
    if let Err(e) = genae_data::registry::locate("fashion-mnist", None) {
        // `cargo xtask setup` installs it, and `cargo xtask test` then requires it.
        assert!(
            std::env::var_os("GENAE_REQUIRE_FASHION_MNIST").is_none(),
            "Fashion-MNIST is required here (GENAE_REQUIRE_FASHION_MNIST is set) but absent"
        );
        eprintln!("skipping: {e}");
        return;
    }
    let out = tempfile::tempdir().unwrap();
    let text = r#"
        name = "fm"
        device = "cpu"
        [data]
        dataset = "fashion-mnist"
        binarize = "dynamic"
        train_size = 2000
        test_size = 500
        validation_size = 200
        [model]
        latent_dim = 4
        hidden = [64]
        [train]
        epochs = 2
        batch_size = 100
        [eval]
        samples = 4
        reconstructions = 4
        log_likelihood_k = 20
        log_likelihood_images = 10
    "#;
    let overrides = vec![format!("output_dir=\"{}\"", out.path().display())];
    let config = ValidConfig::from_toml_str(text, "fm.toml", &overrides).unwrap();
    let summary = run_experiment(&config).unwrap();
    assert_eq!(summary.dataset, "fashion-mnist");
    let lines: Vec<serde_json::Value> =
        std::fs::read_to_string(summary.run_dir.join("metrics.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(
        lines[1]["step"], 36,
        "1800 training examples in batches of 100, twice"
    );
    assert!(lines[1]["validation"]["elbo"].is_f64());
    assert!(
        lines[1]["test"]["elbo"].as_f64().unwrap() > lines[0]["test"]["elbo"].as_f64().unwrap()
    );
}
