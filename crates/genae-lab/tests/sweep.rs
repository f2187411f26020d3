//! `genae sweep`: points run one per call or all in turn, finished points skipped, the
//! summary table, and the index from Slurm's job array.

mod common;

use std::path::Path;
use std::process::Command;

use genae_lab::{run_sweep, summarize_sweep, Grid, LabError, ValidConfig};

use common::torch_rng_lock;

const TINY: &str = r#"
    name = "tiny-sweep"
    device = "cpu"
    threads = 1
    [data]
    train_size = 120
    test_size = 30
    image_size = 16
    n_positions = 6
    [model]
    latent_dim = 2
    hidden = [16]
    [train]
    epochs = 1
    batch_size = 40
    [eval]
    batch_size = 30
    samples = 4
    reconstructions = 2
    interpolations = 0
    latent_points = 0
    log_likelihood_k = 10
    log_likelihood_images = 10
"#;

fn load(out: &Path) -> impl Fn(&[String]) -> Result<ValidConfig, LabError> + '_ {
    move |point: &[String]| {
        let mut overrides = vec![format!("output_dir=\"{}\"", out.display())];
        overrides.extend_from_slice(point);
        Ok(ValidConfig::from_toml_str(
            TINY,
            "tiny-sweep.toml",
            &overrides,
        )?)
    }
}

fn grid() -> Grid {
    Grid::parse(&[
        "train.learning_rate=[1e-3, 3e-3]".into(),
        "seed=[0, 1]".into(),
    ])
    .unwrap()
}

#[test]
fn one_point_then_the_rest_each_in_its_own_run_and_a_table_of_them() {
    let _rng = torch_rng_lock();
    let out = tempfile::tempdir().unwrap();
    let (one, dir) = run_sweep(&load(out.path()), &grid(), Some(2), None).unwrap();
    assert_eq!(dir, out.path().join("tiny-sweep-sweep"));
    assert_eq!(one.len(), 1);
    let name = one[0]
        .run_dir
        .file_name()
        .unwrap()
        .to_string_lossy()
        .to_string();
    assert!(name.starts_with("tiny-sweep-p2-"), "{name}");
    let config = std::fs::read_to_string(one[0].run_dir.join("config.toml")).unwrap();
    assert!(
        config.contains("learning_rate = 0.003") && config.contains("seed = 0"),
        "{config}"
    );
    // Every point in turn: the finished one is skipped.
    let (rest, _) = run_sweep(&load(out.path()), &grid(), None, None).unwrap();
    assert_eq!(rest.len(), 3);
    let (none, _) = run_sweep(&load(out.path()), &grid(), None, None).unwrap();
    assert!(none.is_empty(), "a finished sweep trains nothing");
    let table = summarize_sweep(&dir, &["train.steps".into()]).unwrap();
    let rows: Vec<&str> = table.lines().skip(2).collect();
    assert_eq!(rows.len(), 4, "{table}");
    assert!(
        table.contains("test.elbo") && table.contains("train.steps"),
        "{table}"
    );
    assert!(
        rows[2].contains("train.learning_rate=0.003 seed=0"),
        "{table}"
    );
    assert!(
        !table.contains("disentanglement"),
        "columns no run has: {table}"
    );
    // An index past the grid is named.
    let err = run_sweep(&load(out.path()), &grid(), Some(4), None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("--index") && err.contains("4 points"), "{err}");
}

#[test]
fn the_binary_takes_the_point_from_a_slurm_array_and_names_a_bad_one() {
    let out = tempfile::tempdir().unwrap();
    let config = out.path().join("tiny.toml");
    std::fs::write(
        &config,
        TINY.replace(
            "[data]",
            &format!("output_dir = \"{}\"\n[data]", out.path().display()),
        ),
    )
    .unwrap();
    let sweep = |task: &str| {
        Command::new(env!("CARGO_BIN_EXE_genae"))
            .args(["sweep", config.to_str().unwrap(), "--grid", "seed=[0, 1]"])
            .env("SLURM_ARRAY_TASK_ID", task)
            .output()
            .unwrap()
    };
    let bad = sweep("x");
    let text = String::from_utf8_lossy(&bad.stderr);
    assert!(
        !bad.status.success() && text.contains("SLURM_ARRAY_TASK_ID"),
        "{text}"
    );
    let past = sweep("2");
    let text = String::from_utf8_lossy(&past.stderr);
    assert!(
        !past.status.success() && text.contains("2 points"),
        "{text}"
    );
    let listed = Command::new(env!("CARGO_BIN_EXE_genae"))
        .args([
            "sweep",
            config.to_str().unwrap(),
            "--grid",
            "seed=[0, 1]",
            "--grid",
            "train.beta=[1, 4]",
            "--list",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&listed.stdout);
    assert!(
        text.contains("3\tseed=1 train.beta=4") && text.contains("4 points"),
        "{text}"
    );
}
