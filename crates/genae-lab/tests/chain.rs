//! The `[chain]` evaluation end to end on a tiny shapes run, and the classifier cache: trained
//! once, reused, and a corrupt cache file is an error naming it.

mod common;

use std::path::Path;

use genae_lab::{classifier_cache_dir, load_or_train_classifier, run_experiment, ValidConfig};

use common::{config_in, torch_rng_lock};
use tch::{Device, Kind, Tensor};

const TINY: &str = r#"
    name = "chain"
    device = "cpu"
    threads = 1
    [data]
    train_size = 300
    test_size = 80
    image_size = 28
    n_positions = 6
    [model]
    latent_dim = 3
    hidden = [32]
    [train]
    epochs = 1
    batch_size = 50
    [eval]
    batch_size = 40
    samples = 4
    reconstructions = 2
    interpolations = 0
    latent_points = 0
    log_likelihood_k = 0
    [chain]
    enabled = true
    steps = [0, 1, 3]
    chains = 40
    strip_chains = 4
    strip_steps = [0, 1, 3]
    interpolations = 2
    interpolation_points = 5
    interpolation_steps = 2
    [chain.classifier]
    channels = [4, 8]
    feature_dim = 8
    epochs = 1
    batch_size = 50
"#;

fn config(out: &Path, extra: &[&str]) -> ValidConfig {
    config_in(TINY, "tiny.toml", out, extra)
}

/// The data set of `TINY`, as the engine loads it (grey levels).
fn shapes() -> genae_data::Dataset {
    genae_data::shapes::shapes_dataset(
        &genae_data::shapes::ShapesSpec {
            image_size: 28,
            n_scales: 6,
            n_rotations: 40,
            n_positions: 6,
        },
        300,
        80,
        0,
    )
    .unwrap()
}

fn floats(v: &serde_json::Value) -> Vec<f64> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|x| x.as_f64().unwrap_or_else(|| panic!("not a number: {x}")))
        .collect()
}

#[test]
fn a_chain_run_writes_aligned_finite_arrays_and_reuses_its_classifier() {
    let _rng = torch_rng_lock();
    let out = tempfile::tempdir().unwrap();
    let first = run_experiment(&config(out.path(), &[])).unwrap();
    let text = std::fs::read_to_string(first.run_dir.join("summary.json")).unwrap();
    let summary: serde_json::Value = serde_json::from_str(&text).unwrap();
    let chain = &summary["chain"];
    let steps: Vec<u64> = chain["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_u64().unwrap())
        .collect();
    assert_eq!(steps, [0, 1, 3]);
    let frechet = floats(&chain["frechet"]);
    let mmd = floats(&chain["latent_mmd"]);
    let tv = floats(&chain["class_tv"]);
    assert_eq!((frechet.len(), mmd.len(), tv.len()), (3, 3, 3), "{chain}");
    assert!(tv.iter().all(|t| (0.0..=1.0).contains(t)), "{tv:?}");
    assert!(
        frechet.iter().all(|d| d.is_finite() && *d >= 0.0),
        "{frechet:?}"
    );
    assert!(mmd.iter().all(|m| m.is_finite()), "{mmd:?}");
    for key in ["frechet_real", "latent_mmd_bandwidth", "latent_mmd_floor"] {
        assert!(chain[key].as_f64().unwrap().is_finite(), "{key}: {chain}");
    }
    let accuracy = chain["classifier_accuracy"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&accuracy), "{accuracy}");
    assert_eq!(chain["classifier_trained"], true);
    assert_eq!(chain["chains"], 40);
    assert_eq!(chain["reference_images"], 80);
    for picture in [
        "chain_strips.png",
        "interpolations_refined.png",
        "report.html",
    ] {
        assert!(first.run_dir.join(picture).is_file(), "{picture} missing");
    }
    let report = std::fs::read_to_string(first.run_dir.join("report.html")).unwrap();
    assert!(report.contains("Markov chains") && report.contains("chain_strips.png"));

    // `frechet_real` recomputed independently: the cached classifier's features of the first
    // `chains` grey-level training images against those of all grey-level test images.
    let cached =
        load_or_train_classifier(&config(out.path(), &[]), &shapes(), Device::Cpu).unwrap();
    assert!(!cached.trained_now);
    let data = shapes();
    let grey = |set: &genae_data::ImageSet, n: usize| {
        let [c, h, w] = set.image_shape;
        let bytes = &set.pixels[..n * c * h * w];
        let x = Tensor::from_slice(bytes).to_kind(Kind::Float) / 255.0;
        tch::no_grad(|| {
            cached
                .classifier
                .features(&x.view([n as i64, c as i64, h as i64, w as i64]))
                .unwrap()
        })
    };
    let expected =
        genae_estimators::frechet_distance(&grey(&data.train, 40), &grey(&data.test, 80)).unwrap();
    let reported = chain["frechet_real"].as_f64().unwrap();
    assert!(
        (reported - expected).abs() < 1e-6 * expected.max(1.0),
        "frechet_real {reported} vs {expected}"
    );

    // The same config again: the classifier comes from the cache, and since the chain is
    // seeded on its own, every number repeats.
    let cache = classifier_cache_dir(&config(out.path(), &[]));
    let weights = cache.join("classifier.safetensors");
    let written = std::fs::metadata(&weights).unwrap().modified().unwrap();
    let second = run_experiment(&config(out.path(), &[])).unwrap();
    let again = second.section("chain").expect("chain enabled");
    assert_eq!(again["classifier_trained"], false);
    assert_eq!(
        std::fs::metadata(&weights).unwrap().modified().unwrap(),
        written
    );
    assert_eq!(again["classifier_accuracy"].as_f64().unwrap(), accuracy);
    assert_eq!(floats(&again["frechet"]), frechet);
    assert_eq!(floats(&again["latent_mmd"]), mmd);
    // Only classifier folders of this data set and these settings exist.
    let folders: Vec<_> = std::fs::read_dir(out.path().join("classifiers"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(folders.len(), 1, "{folders:?}");
    assert!(folders[0].starts_with("shapes-"), "{folders:?}");
}

#[test]
fn chain_off_by_default_leaves_the_summary_as_before() {
    let _rng = torch_rng_lock();
    let out = tempfile::tempdir().unwrap();
    let summary = run_experiment(&config(out.path(), &["chain.enabled=false"])).unwrap();
    assert!(summary.section("chain").is_none());
    let text = std::fs::read_to_string(summary.run_dir.join("summary.json")).unwrap();
    assert!(!text.contains("\"chain\""), "{text}");
    assert!(!summary.run_dir.join("chain_strips.png").exists());
    assert!(!out.path().join("classifiers").exists());
}

#[test]
fn the_classifier_cache_is_reused_and_corrupt_files_are_named() {
    let _rng = torch_rng_lock();
    let out = tempfile::tempdir().unwrap();
    let config = config(out.path(), &[]);
    let data = shapes();
    let trained = load_or_train_classifier(&config, &data, Device::Cpu).unwrap();
    assert!(trained.trained_now);
    assert_eq!(trained.dir, classifier_cache_dir(&config));
    let loaded = load_or_train_classifier(&config, &data, Device::Cpu).unwrap();
    assert!(!loaded.trained_now);
    assert_eq!(loaded.test_accuracy, trained.test_accuracy);
    tch::manual_seed(3);
    let x = Tensor::rand([6, 1, 28, 28], (Kind::Float, Device::Cpu));
    let a = tch::no_grad(|| trained.classifier.features(&x).unwrap());
    let b = tch::no_grad(|| loaded.classifier.features(&x).unwrap());
    assert!(a.equal(&b), "loaded weights differ from the trained ones");

    // Other classifier settings: another folder, trained afresh.
    let other = genae_lab::ValidConfig::from_toml_str(
        TINY,
        "tiny.toml",
        &[
            format!("output_dir=\"{}\"", out.path().display()),
            "chain.classifier.feature_dim=6".into(),
        ],
    )
    .unwrap();
    assert_ne!(classifier_cache_dir(&other), classifier_cache_dir(&config));
    // Settings that do not touch the classifier's images or network: the same folder.
    let same = genae_lab::ValidConfig::from_toml_str(
        TINY,
        "tiny.toml",
        &[
            format!("output_dir=\"{}\"", out.path().display()),
            "data.binarize=\"static\"".into(),
            "model.latent_dim=5".into(),
            "chain.chains=99".into(),
        ],
    )
    .unwrap();
    assert_eq!(classifier_cache_dir(&same), classifier_cache_dir(&config));

    let weights = trained.dir.join("classifier.safetensors");
    let record = trained.dir.join("classifier.json");
    std::fs::write(&weights, b"not a safetensors file").unwrap();
    let err = load_or_train_classifier(&config, &data, Device::Cpu)
        .unwrap_err()
        .to_string();
    assert!(err.contains(&weights.display().to_string()), "{err}");
    let text = std::fs::read_to_string(&record).unwrap();
    std::fs::write(&record, &text[..text.len() / 2]).unwrap();
    let err = load_or_train_classifier(&config, &data, Device::Cpu)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&record.display().to_string()) && err.contains("delete"),
        "{err}"
    );
}
