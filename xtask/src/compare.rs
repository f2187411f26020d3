//! `cargo xtask compare vae [--epochs N] [--seeds N] [--k K] [--eval-images N]`: the same VAE
//! recipe trained by genae and by a PyTorch script, side by side.
//!
//! genae runs `crates/genae-lab/configs/fashion-mnist-vae.toml` (release build, `--set` for the
//! seed, the epochs and the `L_k` estimate); PyTorch runs
//! `crates/genae-lab/reference/pytorch_vae.py` with the project's venv Python, at PyTorch's own
//! defaults (`nn.Linear` initialisation, `torch.optim.Adam`). Both on the CPU, both with data
//! seed 0: the script reproduces genae's draws (its default `--draws genae`), so both sides
//! train on the same binarised batches in the same order and are tested on the same binarised
//! test images, and what differs between them is the implementation, the initial parameters
//! and the reparameterisation noise (both seeded by the seed).
//! Each process's peak RSS is measured with `/usr/bin/time -f %M` when it is there (else the
//! number the run reports, if any). The table (per seed, means, ratios against the targets) is
//! printed and written as Markdown to `runs/compare-vae-<UTC timestamp>.md`; the PyTorch reports
//! and the RSS files go to `runs/compare-vae-<UTC timestamp>/`. A number a run does not report
//! is shown as `n/a`.

use std::fmt::Write as _;
use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::SystemTime;

use anyhow::{Context, Result};

use crate::libtorch::Layout;
use crate::{process, setup};

/// The genae config the comparison runs, relative to the workspace root.
const CONFIG: &str = "crates/genae-lab/configs/fashion-mnist-vae.toml";
/// The PyTorch reference script, relative to the workspace root.
const SCRIPT: &str = "crates/genae-lab/reference/pytorch_vae.py";
/// GNU time, for each process's peak resident set size.
const TIME: &str = "/usr/bin/time";
/// Targets: at most this many nats between the two `L_k` (per seed, mean over seeds)…
const QUALITY_TARGET_NATS: f64 = 1.0;
/// …at most this many between the two sides' mean `L_k` (`|mean of genae − PyTorch|`, the
/// parity target of genae's defaults against PyTorch's)…
const PARITY_TARGET_NATS: f64 = 0.3;
/// …genae's training throughput at least this many times PyTorch's…
const THROUGHPUT_TARGET: f64 = 1.3;
/// …and PyTorch's `L_k` evaluation time at least this many times genae's.
const EVAL_TARGET: f64 = 2.0;

/// The models `compare` knows.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Model {
    /// The MLP VAE of `fashion-mnist-vae.toml` against `reference/pytorch_vae.py`.
    Vae,
}

/// `cargo xtask compare` arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Which model to compare.
    model: Model,
    /// Training epochs on each side.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..))]
    epochs: u64,
    /// Number of seeds (0, 1, …), each run once by genae and once by PyTorch.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..))]
    seeds: u64,
    /// Importance samples of the `L_k` log-likelihood estimate.
    #[arg(long, default_value_t = 5000, value_parser = clap::value_parser!(u64).range(1..))]
    k: u64,
    /// Test images `L_k` is averaged over (the first ones).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    eval_images: u64,
    /// Use only the first N training images (0: all 60 000).
    #[arg(long, default_value_t = 0)]
    train_size: u64,
    /// Use only the first N test images (0: all 10 000).
    #[arg(long, default_value_t = 0)]
    test_size: u64,
    /// Intra-op threads on both sides (0: genae's libtorch default and one per CPU for the
    /// script). Set it when other work shares the machine.
    #[arg(long, default_value_t = 0)]
    threads: u64,
}

/// What one run (one implementation, one seed) reported; `None` is shown as `n/a`.
#[derive(Clone, Debug, Default)]
struct Measured {
    elbo: Option<f64>,
    log_likelihood: Option<f64>,
    examples_per_s: Option<f64>,
    eval_seconds: Option<f64>,
    peak_mb: Option<f64>,
}

impl Measured {
    /// The numbers of a `summary.json` (genae) or of the script's report (PyTorch).
    fn from_report(report: &Json, k: u64) -> Self {
        let ll_k = num(report, "test.log_likelihood.k");
        // An `L_k` with another k than asked for is not the number the table promises.
        let ll_ok = ll_k.is_none_or(|got| got == k as f64);
        Self {
            elbo: num(report, "test.elbo"),
            log_likelihood: num(report, "test.log_likelihood.value").filter(|_| ll_ok),
            examples_per_s: num(report, "train.examples_per_s"),
            // The L_k time itself (`eval.seconds` is the script's name for the same number).
            eval_seconds: num(report, "test.log_likelihood.seconds")
                .filter(|_| ll_ok)
                .or_else(|| num(report, "eval.seconds")),
            peak_mb: num(report, "peak_rss_mb"),
        }
    }
}

/// Setup, release build, then every seed on both sides; prints the table and writes it.
pub fn run(args: &Args) -> Result<()> {
    let Model::Vae = args.model;
    let found = setup::run()?;
    let layout = Layout::new();
    let python = found
        .python(&layout)
        .or_else(|| Some(layout.venv_python()).filter(|p| p.exists()))
        .context(
            "compare: no Python with torch 2.11.0 for the PyTorch side (.genae/venv/bin/python \
             is missing; run `cargo xtask setup` without a LIBTORCH of your own)",
        )?;
    let mut build = process::cargo();
    build.args(["build", "--release", "-p", "genae-lab", "--bin", "genae"]);
    process::run(&mut build).context("compare: building the genae binary failed")?;

    let genae = crate::genae_binary();
    let root = crate::root();
    let mut check = Command::new(&genae);
    check.current_dir(root).arg("check").arg(root.join(CONFIG));
    let resolved = process::capture(&mut check).context("compare: `genae check` failed")?;
    let genae_has_lk = resolved.contains("log_likelihood_k");
    if !genae_has_lk {
        println!("note: this genae has no `eval.log_likelihood_k`; its L_k is shown as n/a");
    }
    let genae_threads = if args.threads > 0 {
        Some(args.threads.to_string())
    } else {
        genae_threads(&genae)
    };

    let stamp = utc_stamp(SystemTime::now());
    let out_dir = root
        .join("runs")
        .join(format!("compare-vae-{}", stamp.compact));
    fs::create_dir_all(&out_dir).with_context(|| format!("cannot create {}", out_dir.display()))?;
    let time = Path::new(TIME).is_file().then_some(Path::new(TIME));
    if time.is_none() {
        println!("note: {TIME} not found; peak memory is what each run reports (if anything)");
    }

    let mut genae_runs = Vec::new();
    let mut torch_runs = Vec::new();
    let mut torch_info = None;
    for seed in 0..args.seeds {
        println!("\n== seed {seed}: genae");
        genae_runs.push(run_genae(args, seed, &genae, genae_has_lk, &out_dir, time)?);
        println!("\n== seed {seed}: PyTorch");
        let (measured, info) = run_pytorch(args, seed, &python, &out_dir, time)?;
        torch_runs.push(measured);
        torch_info.get_or_insert(info);
    }

    let header = Header {
        command: command_line(args),
        date: stamp.iso,
        machine: crate::machine(),
        genae_threads,
        torch: torch_info.unwrap_or_default(),
        peak_source: if time.is_some() {
            "`/usr/bin/time -f %M` (whole process)"
        } else {
            "as reported by each run"
        },
    };
    let table = render(args, &header, &genae_runs, &torch_runs);
    println!("\n{table}");
    let md = root
        .join("runs")
        .join(format!("compare-vae-{}.md", stamp.compact));
    fs::write(&md, &table).with_context(|| format!("cannot write {}", md.display()))?;
    println!("table written to {}", md.display());
    Ok(())
}

/// `target/release/genae train` for one seed; returns what its `summary.json` says.
fn run_genae(
    args: &Args,
    seed: u64,
    genae: &Path,
    has_lk: bool,
    out_dir: &Path,
    time: Option<&Path>,
) -> Result<Measured> {
    let rss = out_dir.join(format!("genae-seed{seed}.rss"));
    let mut cmd = measured_command(time, genae, &rss);
    let root = crate::root();
    cmd.current_dir(root)
        .env("GENAE_DEVICE", "cpu")
        .arg("train")
        .arg(root.join(CONFIG));
    let mut sets = vec![
        format!("seed={seed}"),
        "data.seed=0".to_owned(),
        format!("train.epochs={}", args.epochs),
        format!("name=compare-genae-{seed}"),
        "device=cpu".to_owned(),
    ];
    if args.train_size > 0 {
        sets.push(format!("data.train_size={}", args.train_size));
    }
    if args.test_size > 0 {
        sets.push(format!("data.test_size={}", args.test_size));
    }
    if args.threads > 0 {
        sets.push(format!("threads={}", args.threads));
    }
    if has_lk {
        sets.push(format!("eval.log_likelihood_k={}", args.k));
        sets.push(format!("eval.log_likelihood_images={}", args.eval_images));
    }
    for kv in sets {
        cmd.arg("--set").arg(kv);
    }
    let stdout = process::tee_stdout(&mut cmd)?;
    let run_dir = stdout
        .lines()
        .rev()
        .find_map(|line| line.trim().strip_prefix("run directory:"))
        .map(|p| root.join(p.trim()))
        .context("compare: genae printed no `run directory: <path>` line")?;
    let summary = run_dir.join("summary.json");
    let text = fs::read_to_string(&summary)
        .with_context(|| format!("cannot read {}", summary.display()))?;
    let report = parse_json(&text).with_context(|| format!("{} is not JSON", summary.display()))?;
    let mut measured = Measured::from_report(&report, args.k);
    if let Some(mb) = read_rss_mb(time, &rss) {
        measured.peak_mb = Some(mb);
    }
    Ok(measured)
}

/// What the PyTorch reports say about their environment (for the table's header).
#[derive(Clone, Debug, Default)]
struct TorchInfo {
    version: Option<String>,
    python: Option<String>,
    threads: Option<f64>,
    /// The script's layer initialisation (`pytorch`: its own defaults).
    init: Option<String>,
}

/// The PyTorch script for one seed; returns its numbers and its environment.
fn run_pytorch(
    args: &Args,
    seed: u64,
    python: &Path,
    out_dir: &Path,
    time: Option<&Path>,
) -> Result<(Measured, TorchInfo)> {
    let rss = out_dir.join(format!("pytorch-seed{seed}.rss"));
    let json = out_dir.join(format!("pytorch-seed{seed}.json"));
    let root = crate::root();
    let mut cmd = measured_command(time, python, &rss);
    cmd.current_dir(root)
        .args(["-W", "ignore"])
        .arg(root.join(SCRIPT))
        .args(["--epochs", &args.epochs.to_string()])
        .args(["--seed", &seed.to_string()])
        .args(["--data-seed", "0", "--draws", "genae"])
        .args(["--train-size", &args.train_size.to_string()])
        .args(["--test-size", &args.test_size.to_string()])
        .args(["--k", &args.k.to_string()])
        .args(["--eval-images", &args.eval_images.to_string()])
        .args(["--threads", &args.threads.to_string()])
        .arg("--out")
        .arg(&json);
    process::tee_stdout(&mut cmd)?;
    let text =
        fs::read_to_string(&json).with_context(|| format!("cannot read {}", json.display()))?;
    let report = parse_json(&text).with_context(|| format!("{} is not JSON", json.display()))?;
    let mut measured = Measured::from_report(&report, args.k);
    if let Some(mb) = read_rss_mb(time, &rss) {
        measured.peak_mb = Some(mb);
    }
    let info = TorchInfo {
        version: string_at(&report, "torch_version").map(str::to_owned),
        python: string_at(&report, "python_version").map(str::to_owned),
        threads: num(&report, "threads"),
        init: string_at(&report, "init").map(str::to_owned),
    };
    Ok((measured, info))
}

/// `program`, wrapped in `/usr/bin/time -f %M -o <rss>` when `time` is given.
fn measured_command(time: Option<&Path>, program: &Path, rss: &Path) -> Command {
    match time {
        Some(time) => {
            let mut cmd = Command::new(time);
            cmd.args(["-f", "%M", "-o"]).arg(rss).arg(program);
            cmd
        }
        None => Command::new(program),
    }
}

/// The peak RSS GNU time wrote (KiB on its last line), in MiB.
fn read_rss_mb(time: Option<&Path>, rss: &Path) -> Option<f64> {
    time?;
    let text = fs::read_to_string(rss).ok()?;
    let kib: f64 = text.lines().last()?.trim().parse().ok()?;
    Some(kib / 1024.0)
}

/// libtorch's intra-op threads as `genae doctor` reports them, if it does.
fn genae_threads(genae: &Path) -> Option<String> {
    let out = Command::new(genae)
        .current_dir(crate::root())
        .arg("doctor")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| l.trim().strip_prefix("intra-op threads:"))
        .map(|v| v.trim().to_owned())
}

/// What the table's header says besides the numbers.
struct Header {
    command: String,
    date: String,
    machine: String,
    genae_threads: Option<String>,
    torch: TorchInfo,
    peak_source: &'static str,
}

/// The command line this comparison was run with, for the table's header.
fn command_line(args: &Args) -> String {
    let mut line = format!(
        "cargo xtask compare vae --epochs {} --seeds {} --k {} --eval-images {}",
        args.epochs, args.seeds, args.k, args.eval_images
    );
    if args.train_size > 0 {
        let _ = write!(line, " --train-size {}", args.train_size);
    }
    if args.test_size > 0 {
        let _ = write!(line, " --test-size {}", args.test_size);
    }
    if args.threads > 0 {
        let _ = write!(line, " --threads {}", args.threads);
    }
    line
}

/// The mean of all values, or `None` when any is missing (a partial mean would mislead).
fn mean(values: impl IntoIterator<Item = Option<f64>>) -> Option<f64> {
    let values: Option<Vec<f64>> = values.into_iter().collect();
    let values = values?;
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

/// A number with `decimals` decimals, or `n/a`.
fn fmt(value: Option<f64>, decimals: usize) -> String {
    match value {
        Some(v) if v.is_finite() => format!("{v:.decimals$}"),
        _ => "n/a".to_owned(),
    }
}

/// [`fmt`] followed by `unit` (`-1.23 nats`, `1.59×`), or a bare `n/a`.
fn with_unit(value: Option<f64>, decimals: usize, unit: &str) -> String {
    match fmt(value, decimals) {
        na if na == "n/a" => na,
        number => number + unit,
    }
}

/// `met` / `not met` / `n/a` for a value against a target.
fn verdict(value: Option<f64>, ok: impl Fn(f64) -> bool) -> &'static str {
    match value {
        Some(v) if v.is_finite() => {
            if ok(v) {
                "met"
            } else {
                "not met"
            }
        }
        _ => "n/a",
    }
}

/// The Markdown report: header, per-seed and mean rows for both sides, then the ratios.
fn render(args: &Args, ctx: &Header, genae: &[Measured], torch: &[Measured]) -> String {
    let mut s = String::new();
    let k = args.k;
    let count = |n: u64, all: &str| match n {
        0 => format!("all {all}"),
        n => n.to_string(),
    };
    let sizes = format!(
        "{} train / {} test images",
        count(args.train_size, "60 000"),
        count(args.test_size, "10 000")
    );
    let _ = writeln!(s, "## VAE on Fashion-MNIST: genae vs PyTorch\n");
    let _ = writeln!(s, "- Command: `{}`", ctx.command);
    let _ = writeln!(
        s,
        "- Date: {}. Machine: {}, CPU only.",
        ctx.date, ctx.machine
    );
    let _ = writeln!(
        s,
        "- genae: release build, `{CONFIG}`, libtorch intra-op threads {}. PyTorch: `{SCRIPT}`, \
         torch {} (Python {}), {} threads, initialisation: {}.",
        ctx.genae_threads.as_deref().unwrap_or("n/a"),
        ctx.torch.version.as_deref().unwrap_or("n/a"),
        ctx.torch.python.as_deref().unwrap_or("n/a"),
        fmt(ctx.torch.threads, 0),
        ctx.torch.init.as_deref().unwrap_or("n/a")
    );
    let _ = writeln!(
        s,
        "- Recipe: 784-300-300-40 ReLU MLP VAE, Bernoulli decoder, Adam 1e-3, batch 100, {} \
         epoch(s), {sizes}, dynamic binarisation (test: static), the same draws on both sides \
         (genae's, data seed 0). L_{k}: IWAE estimate with k = {k} on the first {} test images. \
         Peak memory: {}.\n",
        args.epochs, args.eval_images, ctx.peak_source
    );
    let _ = writeln!(
        s,
        "| implementation | seed | test ELBO (nats) | L_{k} (nats) | train examples/s | L_{k} eval s | peak memory (MiB) |"
    );
    let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|");
    for (name, runs) in [("genae", genae), ("PyTorch", torch)] {
        let row = |label: &str, seed: &str, m: &Measured| {
            format!(
                "| {label} | {seed} | {} | {} | {} | {} | {} |",
                fmt(m.elbo, 2),
                fmt(m.log_likelihood, 2),
                fmt(m.examples_per_s, 0),
                fmt(m.eval_seconds, 2),
                fmt(m.peak_mb, 0)
            )
        };
        for (seed, m) in runs.iter().enumerate() {
            let _ = writeln!(s, "{}", row(name, &seed.to_string(), m));
        }
        let avg = Measured {
            elbo: mean(runs.iter().map(|m| m.elbo)),
            log_likelihood: mean(runs.iter().map(|m| m.log_likelihood)),
            examples_per_s: mean(runs.iter().map(|m| m.examples_per_s)),
            eval_seconds: mean(runs.iter().map(|m| m.eval_seconds)),
            peak_mb: mean(runs.iter().map(|m| m.peak_mb)),
        };
        let _ = writeln!(s, "{}", row(&format!("**{name}**"), "mean", &avg));
    }

    let throughput = ratio(
        mean(genae.iter().map(|m| m.examples_per_s)),
        mean(torch.iter().map(|m| m.examples_per_s)),
    );
    let eval = ratio(
        mean(torch.iter().map(|m| m.eval_seconds)),
        mean(genae.iter().map(|m| m.eval_seconds)),
    );
    let delta = mean(genae.iter().zip(torch).map(|(g, t)| {
        let (g, t) = (g.log_likelihood?, t.log_likelihood?);
        Some((g - t).abs())
    }));
    let signed = |field: fn(&Measured) -> Option<f64>| {
        mean(
            genae
                .iter()
                .zip(torch)
                .map(|(g, t)| Some(field(g)? - field(t)?)),
        )
    };
    let delta_lk = signed(|m| m.log_likelihood);
    let delta_elbo = signed(|m| m.elbo);
    let _ = writeln!(s, "\n| comparison | value | target | |");
    let _ = writeln!(s, "|---|---:|---|---|");
    let _ = writeln!(
        s,
        "| quality: \\|Δ L_{k}\\| (genae − PyTorch, mean over seeds) | {} | ≤ {QUALITY_TARGET_NATS} nat | {} |",
        with_unit(delta, 2, " nats"),
        verdict(delta, |d| d <= QUALITY_TARGET_NATS)
    );
    let _ = writeln!(
        s,
        "| parity: mean Δ L_{k} (genae − PyTorch, signed) | {} | \\|·\\| ≤ {PARITY_TARGET_NATS} nats | {} |",
        with_unit(delta_lk, 2, " nats"),
        verdict(delta_lk, |d| d.abs() <= PARITY_TARGET_NATS)
    );
    let _ = writeln!(
        s,
        "| mean Δ test ELBO (genae − PyTorch, signed) | {} | — | |",
        with_unit(delta_elbo, 2, " nats")
    );
    let _ = writeln!(
        s,
        "| throughput: genae / PyTorch train examples/s | {} | ≥ {THROUGHPUT_TARGET}× | {} |",
        with_unit(throughput, 2, "×"),
        verdict(throughput, |r| r >= THROUGHPUT_TARGET)
    );
    let _ = writeln!(
        s,
        "| evaluation: PyTorch / genae L_{k} seconds | {} | ≥ {EVAL_TARGET}× | {} |",
        with_unit(eval, 2, "×"),
        verdict(eval, |r| r >= EVAL_TARGET)
    );
    s
}

/// `a / b` when both are there and `b > 0`.
fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    let (a, b) = (a?, b?);
    (b > 0.0).then(|| a / b)
}

/// A UTC time as `20261122T031920Z` (as run directories are named) and `2026-11-22 03:19:20 UTC`.
struct Stamp {
    compact: String,
    iso: String,
}

/// [`Stamp`] of `now`.
fn utc_stamp(now: SystemTime) -> Stamp {
    let at: chrono::DateTime<chrono::Utc> = now.into();
    Stamp {
        compact: at.format("%Y%m%dT%H%M%SZ").to_string(),
        iso: at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
    }
}

/// The JSON reports (`summary.json`, the script's report), read with serde_json.
type Json = serde_json::Value;

/// Parses a whole document.
fn parse_json(text: &str) -> Result<Json> {
    Ok(serde_json::from_str(text)?)
}

/// The value at a dotted path of object keys (`test.log_likelihood.value`).
fn get<'a>(doc: &'a Json, path: &str) -> Option<&'a Json> {
    path.split('.').try_fold(doc, |v, key| v.get(key))
}

/// The number at `path` (`None` when absent, `null` or not a number).
fn num(doc: &Json, path: &str) -> Option<f64> {
    get(doc, path)?.as_f64()
}

/// The string at `path`.
fn string_at<'a>(doc: &'a Json, path: &str) -> Option<&'a str> {
    get(doc, path)?.as_str()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotted_paths_read_nested_numbers_and_missing_keys() {
        let doc = parse_json(
            r#"{"model": "vae", "test": {"elbo": -250.5, "kl": 1e1,
                "log_likelihood": {"k": 100, "value": null}}}"#,
        )
        .unwrap();
        assert_eq!(num(&doc, "test.elbo"), Some(-250.5));
        assert_eq!(num(&doc, "test.kl"), Some(10.0));
        assert_eq!(num(&doc, "test.log_likelihood.k"), Some(100.0));
        assert_eq!(num(&doc, "test.log_likelihood.value"), None);
        assert_eq!(num(&doc, "train.examples_per_s"), None);
        assert_eq!(string_at(&doc, "model"), Some("vae"));
    }

    #[test]
    fn missing_numbers_make_n_a_not_errors() {
        let genae =
            parse_json(r#"{"test": {"elbo": -250.0}, "train": {"examples_per_s": 2600}}"#).unwrap();
        let m = Measured::from_report(&genae, 5000);
        assert_eq!(m.elbo, Some(-250.0));
        assert_eq!(m.log_likelihood, None);
        assert_eq!(mean([Some(1.0), None]), None);
        assert_eq!(mean([Some(1.0), Some(3.0)]), Some(2.0));
        assert_eq!(fmt(None, 2), "n/a");
        assert_eq!(verdict(None, |_| true), "n/a");
        assert_eq!(verdict(Some(1.5), |r| r >= 1.3), "met");
        // An L_k for another k is not reported as this one.
        let other_k =
            parse_json(r#"{"test": {"log_likelihood": {"k": 10, "value": -240.0}}}"#).unwrap();
        assert_eq!(Measured::from_report(&other_k, 5000).log_likelihood, None);
    }

    #[test]
    fn table_reports_signed_mean_differences_against_the_parity_target() {
        let args = Args {
            model: Model::Vae,
            epochs: 5,
            seeds: 2,
            k: 5000,
            eval_images: 1000,
            train_size: 0,
            test_size: 0,
            threads: 0,
        };
        let header = Header {
            command: command_line(&args),
            date: "2026-12-04 00:00:00 UTC".to_owned(),
            machine: "2 CPUs".to_owned(),
            genae_threads: None,
            torch: TorchInfo {
                init: Some("pytorch".to_owned()),
                ..TorchInfo::default()
            },
            peak_source: "as reported by each run",
        };
        let run = |elbo: f64, ll: f64| Measured {
            elbo: Some(elbo),
            log_likelihood: Some(ll),
            ..Measured::default()
        };
        // Per seed: ΔL = +0.5 and −0.3 (mean |Δ| 0.4, signed mean +0.1); ΔELBO = −1 and −2.
        let genae = [run(-247.0, -242.5), run(-248.0, -243.3)];
        let torch = [run(-246.0, -243.0), run(-246.0, -243.0)];
        let table = render(&args, &header, &genae, &torch);
        assert!(table.contains("initialisation: pytorch"), "{table}");
        assert!(table.contains("| 0.40 nats | ≤ 1 nat | met |"), "{table}");
        assert!(
            table.contains("signed) | 0.10 nats | \\|·\\| ≤ 0.3 nats | met |"),
            "{table}"
        );
        assert!(table.contains("signed) | -1.50 nats | — |"), "{table}");
        // A seed without L_k makes the means n/a, not partial.
        let table = render(
            &args,
            &header,
            &[run(-247.0, -242.5), Measured::default()],
            &torch,
        );
        assert!(table.contains("signed) | n/a |"), "{table}");
    }

    #[test]
    fn utc_stamp_matches_known_dates() {
        let at = |secs| utc_stamp(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs));
        assert_eq!(at(0).compact, "19700101T000000Z");
        assert_eq!(at(951_782_400).iso, "2000-02-29 00:00:00 UTC");
        assert_eq!(at(1_795_000_000).compact, "20261118T110640Z");
    }
}
