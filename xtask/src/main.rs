//! `cargo xtask`: genae's task runner.
//!
//! It links neither tch nor any workspace library crate, so it builds before libtorch exists
//! (installing libtorch is its first job). Commands:
//!
//! - `setup`: libtorch 2.11.0 (pip torch in `.genae/venv`, or your `LIBTORCH`) linked as
//!   `.genae/libtorch`, and Fashion-MNIST; idempotent and fast once done.
//! - `doctor`: what torch, Python, the data and tch see.
//! - `test`: setup, `cargo fmt --check`, clippy with `-D warnings`, `cargo doc` (warnings are
//!   errors), `cargo test --workspace`.
//! - `experiment [CONFIG] [--set key=value]...`: setup, build and run `genae train`.
//! - `regress [--bless]`: short fixed-seed runs, one per model family, checked against the
//!   baselines in `tests/baselines/`.
//! - `package`: every library crate packaged for crates.io, with verification.
//! - `bench [--compare]`: criterion benches and PyTorch counterparts into `docs/benchmarks.md`.
//! - `compare vae [--epochs N] [--seeds N] [--k K] [--eval-images N]`: genae against a PyTorch
//!   script on the same recipe: quality, throughput, evaluation time, memory.
//! - `launch --nproc N CONFIG [--set key=value]... [--timeout-s S]`: data-parallel `genae
//!   train` on this machine, N ranks with torchrun's environment, no Python.
//! - `gpu-check [--dry-run] [--bin-dir DIR] [--prepare OUT_DIR]`: a bundle of stripped
//!   binaries and a shell script that smoke-tests CUDA on a machine without Rust or network.

mod bench;
mod checks;
mod compare;
mod dataset;
mod doctor;
mod experiment;
mod gpu_check;
mod launch;
mod libtorch;
mod package;
mod process;
mod regress;
mod setup;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// genae's task runner (run it as `cargo xtask <command>`).
#[derive(Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask", version, about)]
struct Cli {
    /// What to do.
    #[command(subcommand)]
    command: Task,
}

/// The commands.
#[derive(Subcommand)]
enum Task {
    /// Install or check libtorch 2.11.0 (.genae/venv + .genae/libtorch) and Fashion-MNIST.
    ///
    /// Idempotent: once done, a rerun only checks .genae/setup.stamp. A LIBTORCH you set
    /// (other than .genae/libtorch) is used instead of the venv.
    Setup,
    /// Report torch/CUDA as Python and as tch (the `genae doctor` binary) see them.
    Doctor,
    /// Setup, then `cargo fmt --check`, clippy (-D warnings), `cargo doc` (-D warnings) and
    /// `cargo test --workspace`.
    Test,
    /// Setup, build `genae` (release) and run `genae train <config>` from the workspace root.
    Experiment {
        /// A config file path, or the name of one in crates/genae-lab/configs (without .toml).
        #[arg(default_value = "default")]
        config: String,
        /// Override a config value (repeatable), passed on as `--set KEY=VALUE`.
        #[arg(long = "set", value_name = "KEY=VALUE", value_parser = parse_key_value)]
        set: Vec<String>,
    },
    /// Setup, build `genae`, then train the same model with genae and with PyTorch and compare.
    ///
    /// Per seed: test ELBO, L_k, train examples/s, L_k seconds and peak memory of both, the
    /// ratios against the targets; the table is also written to `runs/compare-vae-<UTC>.md`.
    Compare(compare::Args),
    /// Setup, build `genae`, run the short fixed-seed regression suite and compare its numbers
    /// with the baselines in tests/baselines/ (non-zero exit on a regression).
    Regress(regress::Args),
    /// Setup, then every criterion bench and its PyTorch counterpart; writes the generated
    /// section of docs/benchmarks.md.
    Bench(bench::Args),
    /// Setup, then `cargo package` of every library crate with verification (each builds on
    /// its own from its packaged files).
    Package,
    /// Setup, build `genae`, then N ranks of `genae train CONFIG` on this machine with
    /// torchrun's environment (WORLD_SIZE, RANK, MASTER_ADDR, MASTER_PORT, ...).
    ///
    /// Each rank's output is prefixed `[rank r]`; when a rank fails, the others get the
    /// timeout to stop on their own, then they are killed and the exit is non-zero.
    Launch(launch::Args),
    /// GPU smoke check for a machine with no Rust toolchain and no network.
    ///
    /// `--prepare DIR` (here) builds and strips `genae` and the CUDA test executables and
    /// writes them, the data, configs, the PyTorch script and `gpu-check.sh` into DIR; run
    /// `bash DIR/gpu-check.sh` on the GPU machine. Without `--prepare` it prepares a temporary
    /// bundle (or uses `--bin-dir`) and runs the script here: a dry run without CUDA.
    GpuCheck(gpu_check::Args),
}

/// Accepts `key=value` with a non-empty key.
fn parse_key_value(s: &str) -> Result<String, String> {
    match s.split_once('=') {
        Some((key, _)) if !key.trim().is_empty() => Ok(s.to_owned()),
        _ => Err(format!("expected KEY=VALUE, got `{s}`")),
    }
}

/// The workspace root: the parent of this crate's manifest directory.
pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace root")
}

/// The release `genae` binary: `$CARGO_TARGET_DIR/release/genae` if that is set, else
/// `<root>/target/release/genae`.
pub fn genae_binary() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .filter(|v| !v.is_empty())
        .map(|v| root().join(v))
        .unwrap_or_else(|| root().join("target"));
    target.join("release").join("genae")
}

/// Parses the command line, runs the command, and maps errors to a non-zero exit code.
fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Task::Setup => setup::run().map(|_| ExitCode::SUCCESS),
        Task::Doctor => doctor::run().map(|()| ExitCode::SUCCESS),
        Task::Test => checks::run().map(|()| ExitCode::SUCCESS),
        Task::Experiment { config, set } => experiment::run(&config, &set),
        Task::Compare(args) => compare::run(&args).map(|()| ExitCode::SUCCESS),
        Task::Regress(args) => regress::run(&args),
        Task::Bench(args) => bench::run(&args).map(|()| ExitCode::SUCCESS),
        Task::Package => package::run().map(|()| ExitCode::SUCCESS),
        Task::Launch(args) => launch::run(&args),
        Task::GpuCheck(args) => gpu_check::run(&args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("xtask: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// "N CPUs, `<model name>`" from the standard library and `/proc/cpuinfo`.
pub fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .and_then(|rest| rest.split_once(':'))
                .map(|(_, name)| name.trim().to_owned())
        });
    match model {
        Some(model) => format!("{cpus} CPUs ({model})"),
        None => format!("{cpus} CPUs"),
    }
}
