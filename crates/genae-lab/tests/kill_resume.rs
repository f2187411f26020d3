//! Every model kind survives SIGKILL: a run killed mid-training (mid-phase, for both phases of
//! a VQ-VAE; the ELBO, IWAE and DVAE objectives; AVB with adaptive contrast) and resumed with
//! `genae train --resume` gives exactly the numbers of the same run left alone — every
//! `metrics.jsonl` line and every final test figure — also after twenty kills at random
//! moments of one run.

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
fn a_killed_dvae_resumes_to_the_same_numbers() {
    // The corruption noise and the copies' codes come from the epoch's generator too.
    let text = with_shapes(
        "[model]\nkind = \"vae\"\nlatent_dim = 2\nhidden = [32]\n\
         [train]\nepochs = 4\nbatch_size = 50\nlearning_rate = 3e-3\nobjective = \"dvae\"\n\
         corruption = { kind = \"salt_and_pepper\", p = 0.1 }\ndvae_copies = 2\n\
         dvae_samples = 2\n",
        "log_likelihood_k = 20\nlog_likelihood_images = 20\n",
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

/// Twenty SIGKILLs at seeded random moments of one IWAE run — while it trains, writes its
/// checkpoint (every epoch), evaluates `L_k` at the end or writes its pictures and summary —
/// each followed by `genae train --resume` (or a fresh start when the kill came before the first
/// checkpoint); the run that finally completes gives exactly the numbers of the same run left
/// alone.
#[test]
fn twenty_random_kills_end_with_the_undisturbed_numbers() {
    use rand::{Rng, SeedableRng};
    const KILLS: usize = 20;
    let text = with_shapes(
        "[model]\nkind = \"vae\"\nlatent_dim = 2\nhidden = [32]\n\
         [train]\nepochs = 8\nbatch_size = 50\nlearning_rate = 3e-3\nobjective = \"iwae\"\n\
         iwae_k = 5\ncheckpoint_every = 1\n",
        "log_likelihood_k = 3000\nlog_likelihood_images = 60\n",
    );
    let root = tempfile::tempdir().unwrap();
    let config = root.path().join("run.toml");
    std::fs::write(&config, &text).unwrap();

    let whole_out = root.path().join("whole");
    let started = Instant::now();
    assert!(train(&config, &whole_out).status().unwrap().success());
    let undisturbed = started.elapsed();
    let whole = run_dir(&whole_out).unwrap();

    // Kill moments spread over the undisturbed run's length (startup included), so some land
    // in training, some in checkpoint writes and some in the final evaluation.
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(20);
    let out = root.path().join("killed");
    let (mut kills, mut finished_early, mut attempts) = (0, 0, 0);
    // Where the kills landed: before the first checkpoint, during training, after the last
    // epoch's line (final evaluation and writing).
    let mut stages = [0usize; 3];
    let epochs = lines(&whole).len();
    while kills < KILLS {
        attempts += 1;
        assert!(attempts < 200, "only {kills} kills in {attempts} attempts");
        let mut command = match run_dir(&out) {
            Some(dir) if dir.join("checkpoint.safetensors").is_file() => {
                let mut c = Command::new(GENAE);
                c.arg("train")
                    .arg("--resume")
                    .arg(&dir)
                    .stdout(Stdio::null())
                    .stderr(Stdio::null());
                c
            }
            other => {
                // Killed before its first checkpoint: nothing to resume; start again.
                if let Some(dir) = other {
                    std::fs::remove_dir_all(dir).unwrap();
                }
                train(&config, &out)
            }
        };
        let mut child = command.spawn().unwrap();
        let delay = undisturbed.mul_f64(rng.gen_range(0.05..0.9));
        let deadline = Instant::now() + delay;
        while Instant::now() < deadline && child.try_wait().unwrap().is_none() {
            std::thread::sleep(Duration::from_millis(2));
        }
        match child.try_wait().unwrap() {
            Some(status) => {
                // It finished before the kill moment: start over from a fresh directory so
                // that every one of the KILLS lands in a live run.
                assert!(status.success(), "a resumed run failed");
                finished_early += 1;
                assert_eq!(numbers(&whole), numbers(&run_dir(&out).unwrap()));
                std::fs::remove_dir_all(run_dir(&out).unwrap()).unwrap();
            }
            None => {
                child.kill().unwrap();
                child.wait().unwrap();
                kills += 1;
                let done = run_dir(&out).map_or(0, |d| lines(&d).len());
                let checkpointed =
                    run_dir(&out).is_some_and(|d| d.join("checkpoint.safetensors").is_file());
                stages[if !checkpointed {
                    0
                } else if done < epochs {
                    1
                } else {
                    2
                }] += 1;
            }
        }
    }
    // Finish the run left by the last kill.
    if let Some(dir) = run_dir(&out).filter(|d| d.join("checkpoint.safetensors").is_file()) {
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
    eprintln!(
        "{kills} kills ({} before the first checkpoint, {} while training, {} in the final \
         evaluation), {finished_early} runs completed before their kill moment (undisturbed run \
         {:.1} s)",
        stages[0],
        stages[1],
        stages[2],
        undisturbed.as_secs_f64()
    );
}
