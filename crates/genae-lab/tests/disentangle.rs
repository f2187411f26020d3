//! The disentangling models on the single trainer: each objective's terms logged by name,
//! FactorVAE's two players saved and resumed, and `[eval.disentanglement]`'s section and
//! traversal picture.

mod common;

use std::path::Path;

use genae_lab::{resume_experiment, run_experiment, ValidConfig};

use common::{config_in, metrics, summary, torch_rng_lock};

const TINY: &str = r#"
    name = "disentangle"
    device = "cpu"
    threads = 1
    [data]
    train_size = 300
    test_size = 60
    image_size = 16
    n_positions = 6
    n_rotations = 8
    [model]
    latent_dim = 4
    hidden = [32]
    [train]
    epochs = 2
    batch_size = 30
    learning_rate = 3e-3
    [eval]
    batch_size = 25
    samples = 4
    reconstructions = 2
    interpolations = 0
    latent_points = 0
    log_likelihood_k = 0
    [eval.disentanglement]
    enabled = true
    train_points = 60
    test_points = 30
    batch_size = 8
"#;

fn config(out: &Path, extra: &[&str]) -> ValidConfig {
    config_in(TINY, "tiny-disentangle.toml", out, extra)
}

/// The summary's metrics are scores in their ranges, and the traversal picture is written.
fn check_disentanglement(dir: &Path, latent_dim: usize) {
    let s = summary(dir);
    let d = &s["disentanglement"];
    for key in [
        "beta_vae",
        "factor_vae",
        "mig",
        "sap",
        "dci_disentanglement",
        "dci_completeness",
    ] {
        let v = d[key].as_f64().unwrap_or(f64::NAN);
        assert!((0.0..=1.0).contains(&v), "{key} = {v}: {d}");
    }
    assert_eq!(d["factors"].as_array().unwrap().len(), 5, "{d}");
    assert_eq!(d["train_points"], 60);
    assert_eq!(d["traversal_rows"].as_array().unwrap().len(), latent_dim);
    let rows: Vec<f64> = d["traversal_rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r[1].as_f64().unwrap())
        .collect();
    assert!(
        rows.windows(2).all(|w| w[0] >= w[1]),
        "rows not by KL: {rows:?}"
    );
    assert!(dir.join("traversals.png").is_file());
    let report = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(report.contains("traversals.png"));
}

#[test]
fn each_objective_trains_and_logs_its_own_terms() {
    let _rng = torch_rng_lock();
    let out = tempfile::tempdir().unwrap();
    for (objective, terms) in [
        (
            "beta_tc",
            &["mutual_information", "total_correlation", "dimension_kl"][..],
        ),
        ("dip_i", &["dip_off_diagonal", "dip_diagonal"][..]),
        ("dip_ii", &["dip_off_diagonal", "dip_diagonal"][..]),
        ("annealed_capacity", &["capacity"][..]),
    ] {
        let set = format!("train.objective=\"{objective}\"");
        let mut extra = vec![set.as_str()];
        if objective == "annealed_capacity" {
            extra.push("capacity.steps=10");
            extra.push("capacity.max=5.0");
        }
        let run = run_experiment(&config(out.path(), &extra)).unwrap();
        let lines = metrics(&run.run_dir);
        for term in terms {
            let v = lines[1]["train"][term].as_f64();
            assert!(
                v.is_some_and(f64::is_finite),
                "{objective}: {term} in {}",
                lines[1]
            );
        }
        if objective == "beta_tc" {
            // The three parts add up to the KL (the analytic KL is logged; the parts are
            // Monte-Carlo, so within their noise).
            let t = &lines[1]["train"];
            let parts: f64 = terms.iter().map(|k| t[k].as_f64().unwrap()).sum();
            let kl = t["kl"].as_f64().unwrap();
            assert!(
                (parts - kl).abs() < 0.25 * kl.abs() + 0.5,
                "{parts} vs {kl}"
            );
        }
        if objective == "annealed_capacity" {
            // Epoch 2 runs steps 11..20: the capacity is at its maximum.
            assert_eq!(lines[1]["train"]["capacity"].as_f64(), Some(5.0));
            assert!(lines[0]["train"]["capacity"].as_f64().unwrap() < 5.0);
        }
        check_disentanglement(&run.run_dir, 4);
    }
}

#[test]
fn a_factor_vae_trains_saves_both_players_and_resumes_to_the_same_numbers() {
    let _rng = torch_rng_lock();
    let out = tempfile::tempdir().unwrap();
    let args = [
        "model.kind=\"factor_vae\"",
        "factor_vae.discriminator_hidden=[16, 16]",
        "factor_vae.gamma=10.0",
    ];
    let whole = run_experiment(&config(out.path(), &args)).unwrap();
    let dir = &whole.run_dir;
    let lines = metrics(dir);
    for l in &lines {
        let acc = l["train"]["discriminator_accuracy"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&acc), "{l}");
        assert!(l["train"]["total_correlation"]
            .as_f64()
            .unwrap()
            .is_finite());
        assert!(l["test"]["total_correlation"].as_f64().unwrap().is_finite());
    }
    let saved = tch::Tensor::read_safetensors(dir.join("model.safetensors")).unwrap();
    for player in ["vae.", "discriminator."] {
        assert!(saved.iter().any(|(n, _)| n.starts_with(player)), "{player}");
    }
    check_disentanglement(dir, 4);
    let mut half_args = args.to_vec();
    half_args.push("train.epochs=1");
    let half = run_experiment(&config(out.path(), &half_args)).unwrap();
    let resumed = resume_experiment(&half.run_dir, &["train.epochs=2".into()]).unwrap();
    assert_eq!(
        common::epoch_numbers(&whole.run_dir),
        common::epoch_numbers(&resumed.run_dir)
    );
    let (a, b) = (summary(&whole.run_dir), summary(&resumed.run_dir));
    for key in [
        "beta_vae",
        "factor_vae",
        "mig",
        "sap",
        "dci_disentanglement",
    ] {
        assert_eq!(
            a["disentanglement"][key], b["disentanglement"][key],
            "{key}"
        );
    }
}

#[test]
fn data_train_size_zero_trains_on_every_point_of_the_grid_once_per_epoch() {
    let _rng = torch_rng_lock();
    let out = tempfile::tempdir().unwrap();
    // 3 shapes × 2 scales × 2 rotations × 2 × 2 positions = 48 images: 2 batches of 30.
    let run = run_experiment(&config(
        out.path(),
        &[
            "data.train_size=0",
            "data.n_scales=2",
            "data.n_rotations=2",
            "data.n_positions=2",
            "eval.disentanglement.enabled=false",
        ],
    ))
    .unwrap();
    let s = summary(&run.run_dir);
    assert_eq!(s["train"]["steps"], 4, "{}", s["train"]);
    assert!(s.get("disentanglement").is_none());
}
