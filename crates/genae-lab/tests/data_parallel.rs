//! Data-parallel `genae train`: two real processes on 127.0.0.1 with Gloo (one thread each),
//! launched as torchrun would (`WORLD_SIZE`, `RANK`, `MASTER_ADDR`, `MASTER_PORT`).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const GENAE: &str = env!("CARGO_BIN_EXE_genae");
const CONFIGS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/configs");

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn rank(args: &[String], rank: usize, port: u16) -> Child {
    Command::new(GENAE)
        .args(args)
        .env("WORLD_SIZE", "2")
        .env("RANK", rank.to_string())
        .env("LOCAL_RANK", rank.to_string())
        .env("MASTER_ADDR", "127.0.0.1")
        .env("MASTER_PORT", port.to_string())
        .env("GENAE_DIST_TIMEOUT_S", "60")
        .env("OMP_NUM_THREADS", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn train_args(config: &str, out: &Path, sets: &[&str]) -> Vec<String> {
    let mut args = vec![
        "train".to_string(),
        format!("{CONFIGS}/{config}.toml"),
        "--set".into(),
        format!("output_dir={}", out.display()),
        "--set".into(),
        "threads=1".into(),
    ];
    for s in sets {
        args.push("--set".into());
        args.push(s.to_string());
    }
    args
}

/// Runs `genae args` as ranks 0 and 1 and waits for both.
fn run_two_ranks(args: &[String]) -> Vec<Output> {
    let port = free_port();
    let children: Vec<Child> = (0..2).map(|r| rank(args, r, port)).collect();
    children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect()
}

/// Trains on two ranks; both must succeed. Returns rank 0's output and run directory.
fn two_ranks(config: &str, out: &Path, sets: &[&str]) -> (String, PathBuf) {
    let args = train_args(config, out, sets);
    let outputs = run_two_ranks(&args);
    for (r, o) in outputs.iter().enumerate() {
        assert!(o.status.success(), "rank {r}: {}", text(o));
    }
    assert!(text(&outputs[1]).contains("rank 1: training done"));
    let rank0 = text(&outputs[0]);
    assert!(
        rank0.contains("the parameters of all 2 ranks are identical (checked)"),
        "{rank0}"
    );
    (rank0.clone(), run_dir_of(&rank0))
}

fn run_dir_of(output: &str) -> PathBuf {
    let line = output
        .lines()
        .find_map(|l| l.strip_prefix("run directory: "))
        .unwrap_or_else(|| panic!("no run directory in {output}"));
    PathBuf::from(line.trim())
}

fn summary(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap()
}

const SHAPES: [&str; 4] = [
    "data.train_size=400",
    "data.test_size=100",
    "train.batch_size=10",
    "train.epochs=1",
];

#[test]
fn a_vae_and_an_aae_on_two_ranks_keep_identical_parameters_for_20_steps() {
    let dir = tempfile::tempdir().unwrap();
    let sets: Vec<&str> = SHAPES
        .iter()
        .copied()
        .chain(["eval.log_likelihood_k=10", "eval.log_likelihood_images=20"])
        .collect();
    let (_, vae) = two_ranks("regress-vae", dir.path(), &sets);
    let s = summary(&vae);
    // 400 examples, 10 per rank and step: 20 steps of a global batch of 20.
    assert_eq!(s["train"]["steps"], 20, "{s}");
    assert!(s["test"]["elbo"].as_f64().unwrap().is_finite());
    // Only rank 0 wrote: one run directory, no scratch folder left by rank 1.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    let (_, aae) = two_ranks("regress-aae", dir.path(), &SHAPES);
    assert_eq!(summary(&aae)["train"]["steps"], 20);
}

#[test]
fn a_vqvae_codebook_stays_identical_on_two_ranks() {
    let dir = tempfile::tempdir().unwrap();
    // k-means initialisation, EMA updates and dead-code restarts, then the prior.
    let (out, run) = two_ranks(
        "tiny-vqvae",
        dir.path(),
        &["train.epochs=1", "prior.epochs=1"],
    );
    assert!(run.join("model.safetensors").exists(), "{out}");
}

#[test]
fn a_killed_rank_stops_the_other_with_its_number_and_the_run_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let args = train_args(
        "regress-vae",
        dir.path(),
        &[
            "data.train_size=4000",
            "train.batch_size=10",
            "train.epochs=30",
            "train.checkpoint_every=1",
            "eval.log_likelihood_k=10",
            "eval.log_likelihood_images=20",
        ],
    );
    let port = free_port();
    let rank0 = rank(&args, 0, port);
    let mut rank1 = rank(&args, 1, port);
    // Wait for rank 0's first checkpoint, then kill rank 1.
    let started = Instant::now();
    let checkpoint = loop {
        let found = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.path().join("checkpoint.safetensors"))
            .find(|p| p.exists());
        if let Some(p) = found {
            break p;
        }
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "no checkpoint"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    rank1.kill().unwrap(); // SIGKILL
    let _ = rank1.wait();
    let killed = Instant::now();
    let out = rank0.wait_with_output().unwrap();
    let t = text(&out);
    assert!(!out.status.success(), "{t}");
    assert!(t.contains("rank 1 was lost"), "{t}");
    assert!(killed.elapsed() < Duration::from_secs(60), "{t}");
    // The run directory rank 0 wrote is intact: it resumes (alone) from its checkpoint.
    let run_dir = checkpoint.parent().unwrap();
    let resumed = Command::new(GENAE)
        .args(["train", "--resume"])
        .arg(run_dir)
        .args(["--set", "train.epochs=2", "--set", "threads=1"])
        .output()
        .unwrap();
    assert!(resumed.status.success(), "{}", text(&resumed));
    assert_eq!(summary(run_dir)["train"]["epochs"], 2);
}

/// torchrun from the project's venv (`cargo xtask setup` installs it with torch).
fn torchrun() -> Option<PathBuf> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.genae/venv/bin/torchrun");
    path.is_file().then_some(path)
}

#[test]
fn torchrun_launches_two_ranks_that_agree() {
    let Some(torchrun) = torchrun() else {
        eprintln!("skipped: no .genae/venv/bin/torchrun (run `cargo xtask setup`)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let out = Command::new(torchrun)
        .args([
            "--nproc_per_node=2",
            "--master_addr=127.0.0.1",
            &format!("--master_port={port}"),
            "--no-python",
            GENAE,
        ])
        .args(train_args("regress-vae", dir.path(), &SHAPES))
        .env("OMP_NUM_THREADS", "1")
        .env("GENAE_DIST_TIMEOUT_S", "60")
        .output()
        .unwrap();
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(t.contains("data-parallel on 2 ranks"), "{t}");
    assert!(t.contains("identical (checked)"), "{t}");
    assert_eq!(summary(&run_dir_of(&t))["train"]["steps"], 20);
}

#[test]
fn a_one_process_run_resumes_on_two_ranks_and_says_the_batch_changed() {
    let dir = tempfile::tempdir().unwrap();
    let sets = [
        "data.train_size=400",
        "data.test_size=100",
        "train.batch_size=10",
        "train.epochs=1",
    ];
    let single = Command::new(GENAE)
        .args(train_args("regress-vae", dir.path(), &sets))
        .output()
        .unwrap();
    assert!(single.status.success(), "{}", text(&single));
    let run = run_dir_of(&text(&single));
    let args: Vec<String> = [
        "train",
        "--resume",
        run.to_str().unwrap(),
        "--set",
        "train.epochs=2",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let outputs = run_two_ranks(&args);
    for o in &outputs {
        assert!(o.status.success(), "{}", text(o));
    }
    let t = text(&outputs[0]);
    assert!(
        t.contains("trained by 1 process(es) (global batch 10), this run has 2 (global batch 20)"),
        "{t}"
    );
    let s = summary(&run);
    // Epoch 1: 40 steps of 10 alone; epoch 2: 20 steps of 2 × 10.
    assert_eq!(
        (s["train"]["epochs"].as_u64(), s["train"]["steps"].as_u64()),
        (Some(2), Some(60))
    );
}

/// The parameters in `run/model.safetensors`, by name.
fn parameters(run: &Path) -> Vec<(String, tch::Tensor)> {
    let mut named = tch::Tensor::read_safetensors(run.join("model.safetensors")).unwrap();
    named.sort_by(|a, b| a.0.cmp(&b.0));
    named
}

/// The lines of `run/metrics.jsonl`.
fn metrics(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The largest absolute difference between the parameters of two runs.
fn largest_gap(a: &Path, b: &Path) -> f64 {
    let (a, b) = (parameters(a), parameters(b));
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(&b)
        .map(|((na, ta), (nb, tb))| {
            assert_eq!(na, nb);
            (ta - tb).abs().max().double_value(&[])
        })
        .fold(0.0, f64::max)
}

/// Trains `config` (20 steps: 400 examples, one epoch) as one process with batches of 20 and
/// as two ranks with 10 each; returns both run directories.
fn alone_and_two_ranks(config: &str, dir: &Path, sets: &[&str]) -> (PathBuf, PathBuf) {
    let common: Vec<&str> = [
        "data.train_size=400",
        "data.test_size=100",
        "train.epochs=1",
    ]
    .into_iter()
    .chain(sets.iter().copied())
    .collect();
    // The batch of every phase (a VQ-VAE's prior has its own).
    let batch = |size: usize| -> Vec<String> {
        let mut keys = vec!["train.batch_size"];
        if config.contains("vqvae") {
            keys.push("prior.batch_size");
        }
        keys.iter().map(|k| format!("{k}={size}")).collect()
    };
    let (whole, half) = (batch(20), batch(10));
    let mut alone_sets = common.clone();
    alone_sets.extend(whole.iter().map(String::as_str));
    let alone = Command::new(GENAE)
        .args(train_args(config, &dir.join("alone"), &alone_sets))
        .output()
        .unwrap();
    assert!(alone.status.success(), "{}", text(&alone));
    let mut rank_sets = common;
    rank_sets.extend(half.iter().map(String::as_str));
    let (_, parallel) = two_ranks(config, &dir.join("ranks"), &rank_sets);
    let alone = run_dir_of(&text(&alone));
    // 20 steps a phase on both.
    let steps = summary(&alone)["train"]["steps"].as_u64().unwrap();
    assert!(steps.is_multiple_of(20), "{steps}");
    assert_eq!(summary(&parallel)["train"]["steps"], steps);
    (alone, parallel)
}

/// The acceptance of data-parallel training: two ranks on halves of each batch end where one
/// process on the whole batches does. The gradients averaged over the ranks are the gradient
/// of the whole batch's mean loss, and with `train.parallel_noise = "global_batch"` (the
/// default) every rank draws the whole batch's noise and keeps its rows, so the
/// reparameterisation draws of the VAE, the Gaussian encoder and prior draws of the AAE, the
/// corruption of the DVAE and the `k` samples of the IWAE are those of the one process; the
/// VQ-VAE's quantizer initialises and restarts codes from every rank's vectors. What is left
/// is float32 rounding, carried through 20 Adam steps (per phase).
#[test]
fn two_ranks_equal_one_process_on_the_combined_batches() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, &[&str]); 7] = [
        ("regress-vae", &[]),
        ("regress-aae", &["aae.encoder=\"gaussian\""]),
        ("regress-dvae", &[]),
        // Copy-major corrupted copies and sample-major codes: the examples along dimension 1
        // of the corruption noise and 2 of the codes' noise.
        (
            "regress-dvae",
            &["train.dvae_copies=2", "train.dvae_samples=3"],
        ),
        ("regress-iwae", &[]),
        ("regress-avb", &[]),
        // Codebook initialised from random vectors of every rank's batch, dead-code restarts
        // from every rank's vectors, usage summed, then the PixelCNN prior. (Lloyd iterations
        // are left out: identical background vectors make k-means ties that float rounding
        // of the encoder breaks either way, so they part runs by whole codes.)
        (
            "tiny-vqvae",
            &["prior.epochs=1", "vq.quantizer.kmeans_iters=0"],
        ),
    ];
    for (i, (config, sets)) in cases.into_iter().enumerate() {
        let out = dir.path().join(format!("{i}-{config}"));
        let (alone, parallel) = alone_and_two_ranks(config, &out, sets);
        let gap = largest_gap(&alone, &parallel);
        eprintln!("{config}: largest difference from one process {gap:.3e}");
        // (The IWAE's importance weights amplify rounding most: 8e-5 seen, on an AMD EPYC.)
        assert!(
            gap < 5e-4,
            "{config}: two ranks differ from one process by {gap}"
        );
        // The sharded test evaluation draws one process's noise too, and the training figures
        // are reduced over the ranks: the same figures.
        let mut pairs = vec![(
            "test".to_string(),
            summary(&alone)["test"].clone(),
            summary(&parallel)["test"].clone(),
        )];
        for (a, p) in metrics(&alone).into_iter().zip(metrics(&parallel)) {
            let name = format!("{} train", a["phase"].as_str().unwrap_or("?"));
            pairs.push((name, a["train"].clone(), p["train"].clone()));
        }
        for (what, a, p) in pairs {
            let figures = a.as_object().unwrap();
            assert!(!figures.is_empty(), "{config}: {what} {a}");
            for (name, value) in figures {
                let Some(x) = value.as_f64() else { continue };
                let y = p[name]
                    .as_f64()
                    .unwrap_or_else(|| panic!("{config}: no {name} in {p}"));
                eprintln!("  {what} {name}: one process {x:.6}, two ranks {y:.6}");
                assert!(
                    (x - y).abs() <= 1e-4 * x.abs().max(1.0),
                    "{config}: {what} {name} {x} alone, {y} on two ranks"
                );
            }
        }
        if config == "regress-vae" {
            // Controls that differ as bugs would: each rank its own noise (as PyTorch's DDP
            // draws), and one process on half batches (no averaging).
            let own = dir.path().join("own-noise");
            let (_, per_rank) = two_ranks(
                config,
                &own,
                &[
                    "data.train_size=400",
                    "data.test_size=100",
                    "train.epochs=1",
                    "train.batch_size=10",
                    "train.parallel_noise=\"per_rank\"",
                ],
            );
            let half = Command::new(GENAE)
                .args(train_args(
                    config,
                    &dir.path().join("half"),
                    &[
                        "data.train_size=200",
                        "data.test_size=100",
                        "train.epochs=1",
                        "train.batch_size=10",
                    ],
                ))
                .output()
                .unwrap();
            assert!(half.status.success(), "{}", text(&half));
            let own_gap = largest_gap(&alone, &per_rank);
            let half_gap = largest_gap(&alone, &run_dir_of(&text(&half)));
            eprintln!("controls: own noise {own_gap:.3e}, half batches {half_gap:.3e}");
            assert!(
                gap < own_gap / 100.0 && gap < half_gap / 100.0,
                "two ranks {gap}, own noise {own_gap}, half batches {half_gap}"
            );
        }
    }
}
