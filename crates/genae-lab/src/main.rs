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
    /// Data sets: what genae knows and what is on this machine.
    Dataset {
        #[command(subcommand)]
        command: DatasetCommand,
    },
}

#[derive(Subcommand)]
enum DatasetCommand {
    /// Every known data set and where it was found (if anywhere).
    List {
        /// Folder to look in first (as `data.dir` in a config).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Format, counts per split, image shape, pixel range, label histogram, checksum status.
    Info {
        /// A registry name (`fashion-mnist`) or a path to a folder or file.
        name_or_path: String,
        /// Folder to look in first (as `data.dir` in a config).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
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

/// Writes a report to stdout; a closed pipe (`genae dataset info x | head`) is not an error.
fn print_stdout(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
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
        Command::Dataset { command } => match command {
            DatasetCommand::List { dir } => {
                let entries = genae_data::registry::list(dir.as_deref());
                let text: Vec<String> = entries.iter().map(ToString::to_string).collect();
                print_stdout(&(text.join("\n") + "\n"))?;
            }
            DatasetCommand::Info { name_or_path, dir } => {
                let info = genae_data::registry::info(&name_or_path, dir.as_deref())?;
                print_stdout(&info.to_string())?;
            }
        },
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
