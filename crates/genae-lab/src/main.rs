//! `genae`: train and evaluate generative autoencoders from a TOML config.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use genae_lab::{run_experiment, ValidConfig};
use genae_tensor::{DeviceSpec, DEVICE_ENV_VAR};

/// genae: generative autoencoders on libtorch.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train and evaluate the model a config describes; prints the run directory at the end.
    Train {
        /// The config file (TOML).
        config: PathBuf,
        /// Override a config value: `--set section.key=value` (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        overrides: Vec<String>,
    },
    /// Validate a config and print it resolved, every default filled in.
    Check {
        /// The config file (TOML).
        config: PathBuf,
        /// Override a config value: `--set section.key=value` (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        overrides: Vec<String>,
    },
    /// What libtorch sees from Rust: CUDA, devices, threads.
    Doctor,
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Train { config, overrides } => {
            let config = ValidConfig::load(&config, &overrides)?;
            let summary = run_experiment(&config)?;
            println!(
                "test ELBO {:.3} nats (reconstruction {:.3}, KL {:.3}); {:.0} train examples/s",
                summary.test.elbo,
                summary.test.reconstruction,
                summary.test.kl,
                summary.train.examples_per_s
            );
            println!("run directory: {}", summary.run_dir.display());
        }
        Command::Check { config, overrides } => {
            print!("{}", ValidConfig::load(&config, &overrides)?.to_toml());
        }
        Command::Doctor => {
            let cuda = tch::Cuda::is_available();
            println!("tch (Rust) view of libtorch:");
            println!("  CUDA available:   {cuda}");
            println!(
                "  CUDA devices:     {}",
                if cuda { tch::Cuda::device_count() } else { 0 }
            );
            println!("  cuDNN available:  {}", tch::Cuda::cudnn_is_available());
            println!("  intra-op threads: {}", tch::get_num_threads());
            let env = std::env::var(DEVICE_ENV_VAR).unwrap_or_default();
            println!(
                "  {DEVICE_ENV_VAR}:     {}",
                if env.is_empty() { "(unset)" } else { &env }
            );
            let auto = DeviceSpec::from_config_or_env(DeviceSpec::Auto)?.resolve()?;
            println!("  `auto` resolves to: {auto:?}");
        }
    }
    Ok(())
}
