//! Checkpoints and resuming: a resumed run gives the uninterrupted run's numbers, and a run
//! killed with SIGKILL mid-training loses at most the epoch in progress.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use genae_lab::{resume_experiment, run_experiment, ValidConfig};

use common::{config_in, metrics, torch_rng_lock};

const TINY: &str = r#"
    name = "resume"
    device = "cpu"
    threads = 1
    [data]
    train_size = 400
    test_size = 60
    image_size = 16
    n_positions = 6
    [model]
    latent_dim = 2
    hidden = [32]
    [train]
    epochs = 4
    batch_size = 40
    learning_rate = 3e-3
    kl_warmup_steps = 15
    [eval]
    batch_size = 30
    samples = 4
    reconstructions = 2
    interpolations = 0
    latent_points = 0
    log_likelihood_k = 20
    log_likelihood_images = 10
"#;

fn config(out: &Path, extra: &[&str]) -> ValidConfig {
    config_in(TINY, "tiny.toml", out, extra)
}

/// The per-epoch numbers that must not depend on interruptions (no timings).
fn numbers(lines: &[serde_json::Value]) -> Vec<(u64, String, String)> {
    lines
        .iter()
        .map(|l| {
            (
                l["epoch"].as_u64().unwrap(),
                l["train"].to_string(),
                l["test"].to_string(),
            )
        })
        .collect()
}

#[test]
fn resuming_from_a_checkpoint_gives_the_uninterrupted_numbers() {
    let _rng = torch_rng_lock();
    let out = tempfile::tempdir().unwrap();
    let whole = run_experiment(&config(out.path(), &[])).unwrap();

    // The same run stopped after epoch 2, then resumed to epoch 4.
    let half = run_experiment(&config(out.path(), &["train.epochs=2"])).unwrap();
    assert_eq!(metrics(&half.run_dir).len(), 2);
    let resumed = resume_experiment(&half.run_dir, &["train.epochs=4".into()]).unwrap();
    assert_eq!(resumed.run_dir, half.run_dir);
    assert_eq!(
        numbers(&metrics(&whole.run_dir)),
        numbers(&metrics(&resumed.run_dir))
    );
    assert_eq!(whole.test.number("elbo"), resumed.test.number("elbo"));
    assert_eq!(whole.train.steps, resumed.train.steps);
    assert_eq!(
        whole.test.number_at("log_likelihood.value"),
        resumed.test.number_at("log_likelihood.value")
    );
    // The resumed run's config records the new epoch count.
    let text = std::fs::read_to_string(resumed.run_dir.join("config.toml")).unwrap();
    assert!(text.contains("epochs = 4"), "{text}");
}

#[test]
fn resuming_a_finished_run_repeats_its_summary_and_a_second_process_is_locked_out() {
    let _rng = torch_rng_lock();
    let out = tempfile::tempdir().unwrap();
    let run = run_experiment(&config(out.path(), &["train.epochs=2"])).unwrap();
    // Every number but the timings.
    let without_seconds = |mut s: serde_json::Value| {
        s["test"]["log_likelihood"]
            .as_object_mut()
            .unwrap()
            .remove("seconds");
        s
    };
    let before = without_seconds(common::summary(&run.run_dir));
    let lines = metrics(&run.run_dir).len();
    let again = resume_experiment(&run.run_dir, &[]).unwrap();
    let after = without_seconds(common::summary(&again.run_dir));
    assert_eq!(before["test"], after["test"], "the same final numbers");
    assert_eq!(before["train"]["last_epoch"], after["train"]["last_epoch"]);
    assert_eq!(before["train"]["steps"], after["train"]["steps"]);
    assert_eq!(metrics(&run.run_dir).len(), lines, "no epoch trained again");

    // While one process holds the run, another resume is refused and changes nothing.
    let lock = std::fs::File::open(run.run_dir.join(".lock")).unwrap();
    lock.try_lock().unwrap();
    let err = resume_experiment(&run.run_dir, &["train.epochs=3".into()])
        .unwrap_err()
        .to_string();
    assert!(err.contains("another genae process"), "{err}");
    let text = std::fs::read_to_string(run.run_dir.join("config.toml")).unwrap();
    assert!(text.contains("epochs = 2"), "{text}");
    drop(lock);
    resume_experiment(&run.run_dir, &["train.epochs=3".into()]).unwrap();
    assert_eq!(metrics(&run.run_dir).len(), 3);
}

#[test]
fn a_damaged_checkpoint_is_named_in_the_users_terms() {
    let _rng = torch_rng_lock();
    let out = tempfile::tempdir().unwrap();
    let run = run_experiment(&config(out.path(), &["train.epochs=1"])).unwrap();
    let path = run.run_dir.join("checkpoint.safetensors");
    let mut bytes = std::fs::read(&path).unwrap();
    // Flip one bit near the end (tensor data, not the header).
    let at = bytes.len() - 100;
    bytes[at] ^= 0x10;
    std::fs::write(&path, &bytes).unwrap();
    let err = resume_experiment(&run.run_dir, &["train.epochs=2".into()])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("damaged")
            && err.contains("checksum mismatch")
            && err.contains("model.safetensors"),
        "{err}"
    );
    // Truncated: the same words, no safetensors jargon.
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let err = resume_experiment(&run.run_dir, &["train.epochs=2".into()])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("damaged") && !err.contains("Safetensor"),
        "{err}"
    );
}

#[test]
fn resuming_without_a_checkpoint_names_the_file() {
    let _rng = torch_rng_lock();
    let out = tempfile::tempdir().unwrap();
    let run = run_experiment(&config(out.path(), &["train.epochs=1"])).unwrap();
    std::fs::remove_file(run.run_dir.join("checkpoint.safetensors")).unwrap();
    let err = resume_experiment(&run.run_dir, &[])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("checkpoint.safetensors") && err.contains("not found"),
        "{err}"
    );
}

fn run_dir_from(out: &Path) -> Option<PathBuf> {
    std::fs::read_dir(out).ok()?.find_map(|e| {
        let p = e.ok()?.path();
        p.is_dir().then_some(p)
    })
}

#[test]
fn a_run_killed_mid_training_resumes_and_loses_at_most_one_epoch() {
    let out = tempfile::tempdir().unwrap();
    let file = out.path().join("long.toml");
    std::fs::write(&file, TINY).unwrap();
    let genae = env!("CARGO_BIN_EXE_genae");
    let mut child = Command::new(genae)
        .arg("train")
        .arg(&file)
        .args(["--set", &format!("output_dir=\"{}\"", out.path().display())])
        .args(["--set", "train.epochs=400", "--set", "data.train_size=2000"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait for two finished epochs, then SIGKILL (Child::kill sends SIGKILL on Unix).
    let started = Instant::now();
    let dir = loop {
        if let Some(dir) = run_dir_from(out.path()) {
            let done = std::fs::read_to_string(dir.join("metrics.jsonl"))
                .map(|t| t.lines().count())
                .unwrap_or(0);
            if done >= 2 && dir.join("checkpoint.safetensors").is_file() {
                break dir;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "no two epochs in 5 minutes"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    child.kill().unwrap();
    child.wait().unwrap();
    let finished = metrics(&dir).len();
    assert!(finished < 400, "the run finished before it was killed");

    // Resume with fewer epochs left so the test ends quickly.
    let _rng = torch_rng_lock();
    let target = finished + 2;
    let summary = resume_experiment(&dir, &[format!("train.epochs={target}")]).unwrap();
    let lines = metrics(&summary.run_dir);
    let epochs: Vec<u64> = lines.iter().map(|l| l["epoch"].as_u64().unwrap()).collect();
    assert_eq!(
        epochs,
        (1..=target as u64).collect::<Vec<_>>(),
        "every epoch exactly once"
    );
    assert!(summary.run_dir.join("summary.json").is_file());
}

#[test]
fn a_diverging_run_stops_naming_the_term_and_keeps_the_last_good_checkpoint() {
    let _rng = torch_rng_lock();
    let out = tempfile::tempdir().unwrap();
    let good = run_experiment(&config(out.path(), &["train.epochs=1"])).unwrap();
    let checkpoint = good.run_dir.join("checkpoint.safetensors");
    let before = std::fs::read(&checkpoint).unwrap();

    // Continue with an absurd learning rate: the parameters blow up within a few steps.
    let err = resume_experiment(
        &good.run_dir,
        &["train.epochs=3".into(), "train.learning_rate=1e30".into()],
    )
    .unwrap_err();
    let message = err.to_string();
    assert!(
        matches!(err, genae_lab::LabError::NonFinite { epoch: 2, step, .. } if step > 10),
        "{message}"
    );
    assert!(
        message.contains("term") && message.contains("epoch 2, step"),
        "{message}"
    );
    // The checkpoint of epoch 1 is untouched, and resuming from it still works.
    assert_eq!(std::fs::read(&checkpoint).unwrap(), before);
    // (The resumed run's config.toml now records the bad rate, so set it back.)
    let again = resume_experiment(
        &good.run_dir,
        &["train.epochs=2".into(), "train.learning_rate=3e-3".into()],
    )
    .unwrap();
    assert_eq!(metrics(&again.run_dir).len(), 2);
}
