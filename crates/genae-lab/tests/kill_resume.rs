//! Every model kind survives SIGKILL: a run killed mid-training (mid-phase, for both phases of
//! a VQ-VAE) and resumed with `genae train --resume` gives exactly the numbers of the same run
//! left alone — every `metrics.jsonl` line and every final test figure.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const GENAE: &str = env!("CARGO_BIN_EXE_genae");

/// The lines of a run's `metrics.jsonl` (none when it does not exist yet).
fn lines(dir: &Path) -> Vec<Value> {
    std::fs::read_to_string(dir.join("metrics.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// The run directory inside `out` (the only folder there but `classifiers/`).
fn run_dir(out: &Path) -> Option<PathBuf> {
    std::fs::read_dir(out).ok()?.find_map(|e| {
        let p = e.ok()?.path();
        (p.is_dir() && p.file_name()? != "classifiers").then_some(p)
    })
}

fn train(config: &Path, out: &Path) -> Command {
    let mut command = Command::new(GENAE);
    command
        .arg("train")
        .arg(config)
        .args(["--set", &format!("output_dir=\"{}\"", out.display())])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    command
}

/// The numbers of a finished run that must not depend on interruptions: each metrics line's
/// phase, epoch, step and named terms, and the summary's test figures (timings dropped).
fn numbers(dir: &Path) -> (Vec<String>, Value) {
    let per_epoch = lines(dir)
        .iter()
        .map(|l| {
            format!(
                "{} {} {} {} {}",
                l["phase"], l["epoch"], l["step"], l["train"], l["test"]
            )
        })
        .collect();
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    let mut test = summary["test"].clone();
    if let Some(ll) = test
        .get_mut("log_likelihood")
        .and_then(Value::as_object_mut)
    {
        ll.remove("seconds");
    }
    (per_epoch, test)
}

/// Runs `config_text` once undisturbed and once killed with SIGKILL as soon as `kill_when`
/// holds for its metrics lines (and a checkpoint exists), then resumes the killed run; the
/// two must agree.
fn killed_and_resumed_matches_undisturbed(config_text: &str, kill_when: impl Fn(&[Value]) -> bool) {
    let root = tempfile::tempdir().unwrap();
    let config = root.path().join("run.toml");
    std::fs::write(&config, config_text).unwrap();

    let whole_out = root.path().join("whole");
    assert!(train(&config, &whole_out).status().unwrap().success());
    let whole = run_dir(&whole_out).unwrap();

    let killed_out = root.path().join("killed");
    let mut child = train(&config, &killed_out).spawn().unwrap();
    let started = Instant::now();
    let dir = loop {
        if let Some(dir) = run_dir(&killed_out) {
            if kill_when(&lines(&dir)) && dir.join("checkpoint.safetensors").is_file() {
                break dir;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "the kill point never came"
        );
        std::thread::sleep(Duration::from_millis(5));
    };
    child.kill().unwrap(); // SIGKILL on Unix
    child.wait().unwrap();
    assert!(
        !dir.join("summary.json").exists(),
        "the run finished before it was killed"
    );

    let status = Command::new(GENAE)
        .arg("train")
        .arg("--resume")
        .arg(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(numbers(&whole), numbers(&dir));
}

const SHAPES: &str = r#"
    seed = 3
    device = "cpu"
    threads = 1
    [data]
    train_size = 1500
    test_size = 60
    image_size = 16
    n_positions = 6
"#;

/// A shapes config with the `model` sections and `eval` keys beside the shared ones.
fn with_shapes(model: &str, eval: &str) -> String {
    format!(
        "name = \"kill\"\n{SHAPES}\n{model}\n[eval]\nbatch_size = 30\nsamples = 4\n\
         reconstructions = 2\ninterpolations = 1\nlatent_points = 40\n{eval}"
    )
}

#[test]
fn a_killed_vae_resumes_to_the_same_numbers() {
    let text = with_shapes(
        "[model]\nkind = \"vae\"\nlatent_dim = 2\nhidden = [32]\n\
         [train]\nepochs = 5\nbatch_size = 50\nlearning_rate = 3e-3\nkl_warmup_steps = 40\n\
",
        "log_likelihood_k = 20\nlog_likelihood_images = 20\n",
    );
    killed_and_resumed_matches_undisturbed(&text, |l| !l.is_empty());
}

#[test]
fn a_killed_aae_resumes_to_the_same_numbers() {
    let text = with_shapes(
        "[model]\nkind = \"aae\"\nlatent_dim = 2\nhidden = [32]\n\
         [aae]\ndiscriminator_hidden = [16]\nencoder = \"gaussian\"\n\
         [train]\nepochs = 4\nbatch_size = 50\nlearning_rate = 3e-3\n",
        "",
    );
    killed_and_resumed_matches_undisturbed(&text, |l| !l.is_empty());
}

#[test]
fn a_killed_wae_resumes_to_the_same_numbers() {
    let text = with_shapes(
        "[model]\nkind = \"wae\"\nlatent_dim = 2\nhidden = [32]\n\
         [train]\nepochs = 4\nbatch_size = 50\nlearning_rate = 3e-3\n",
        "",
    );
    killed_and_resumed_matches_undisturbed(&text, |l| !l.is_empty());
}

#[test]
fn a_killed_avb_resumes_to_the_same_numbers() {
    let text = r#"
        name = "kill-avb"
        device = "cpu"
        threads = 1
        [data]
        dataset = "avb-toy"
        train_size = 4096
        test_size = 40
        [model]
        kind = "avb"
        latent_dim = 2
        hidden = [32]
        [avb]
        noise_dim = 4
        discriminator_hidden = [32]
        adaptive_contrast = true
        contrast_samples = 4
        [train]
        epochs = 4
        batch_size = 64
        [eval]
        batch_size = 20
        samples = 4
        reconstructions = 4
        interpolations = 1
        latent_points = 40
        log_likelihood_k = 16
        log_likelihood_images = 10
    "#;
    killed_and_resumed_matches_undisturbed(text, |l| !l.is_empty());
}

const VQVAE: &str = r#"
    name = "kill-vqvae"
    seed = 1
    device = "cpu"
    threads = 1
    [data]
    train_size = 600
    test_size = 40
    image_size = 16
    n_positions = 6
    [model]
    kind = "vqvae"
    [train]
    epochs = 3
    batch_size = 30
    learning_rate = 2e-3
    [eval]
    batch_size = 40
    samples = 4
    reconstructions = 2
    [vq]
    hidden_channels = 8
    residual_channels = 4
    residual_blocks = 1
    downsamples = 2
    [vq.quantizer]
    num_codes = 8
    code_dim = 4
    update = { kind = "ema", decay = 0.9 }
    kmeans_init = true
    dead_code_steps = 4
    [prior]
    channels = 8
    layers = 2
    output_channels = 8
    epochs = 3
    batch_size = 20
    learning_rate = 3e-3
"#;

#[test]
fn a_vqvae_killed_in_its_first_phase_resumes_to_the_same_numbers() {
    killed_and_resumed_matches_undisturbed(VQVAE, |l| !l.is_empty());
}

#[test]
fn a_vqvae_killed_while_training_its_prior_resumes_to_the_same_numbers() {
    killed_and_resumed_matches_undisturbed(VQVAE, |l| l.iter().any(|l| l["phase"] == "prior"));
}
