//! `genae`: train and evaluate generative autoencoders from a TOML config.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use genae_lab::{
    classifier_for_config, describe, load_shipped, shipped_config, write_report_for,
    CovarianceKind, DataSource, EvaluateOptions, InterpolateOptions, SampleOptions, Sampler,
    TrainedRun, ValidConfig, SHIPPED_CONFIGS,
};
use genae_tensor::{DeviceSpec, DEVICE_ENV_VAR};

#[path = "cli/messages.rs"]
mod messages;
#[path = "cli/training.rs"]
mod training;

use messages::{chain_message, user_message};

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
        /// The config file (TOML), or the name of a shipped one (`genae config list`).
        #[arg(required_unless_present = "resume")]
        config: Option<PathBuf>,
        /// Continue the run in this directory from its last checkpoint (with its own config;
        /// `--set train.epochs=N` trains it further).
        #[arg(long, value_name = "RUN_DIR", conflicts_with = "config")]
        resume: Option<PathBuf>,
        /// Override a config value: `--set section.key=value` (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        overrides: Vec<String>,
    },
    /// Posterior inference on a small Bayesian model (eight schools): an HMC reference,
    /// mean-field VB, AVB and AVB with adaptive contrast, compared.
    Infer {
        /// The config file (TOML), or the name of a shipped one (`eight-schools`).
        config: String,
        /// Override a config value: `--set section.key=value` (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        overrides: Vec<String>,
    },
    /// Validate a config and print it resolved, every default filled in.
    Check {
        /// The config file (TOML), or the name of a shipped one (`genae config list`).
        config: PathBuf,
        /// Override a config value: `--set section.key=value` (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        overrides: Vec<String>,
    },
    /// The configs shipped with genae (`crates/genae-lab/configs/`).
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// (Re)write `report.html` of a run directory from the files in it.
    Report {
        /// The run directory.
        run_dir: PathBuf,
    },
    /// The data set's CNN classifier of `[chain.classifier]` (its features measure samples).
    Classifier {
        #[command(subcommand)]
        command: ClassifierCommand,
    },
    /// Draw images from a trained run: `samples/<sampler>-<UTC>/` with `samples.png`,
    /// `samples.safetensors` and `sampling.json`.
    Sample {
        /// The run directory.
        run_dir: PathBuf,
        /// Images to draw.
        #[arg(long, default_value_t = 64)]
        n: i64,
        /// `prior`, `gmm` (a Gaussian mixture fitted to the training codes) or `chain`
        /// (Markov chains from prior draws).
        #[arg(long, default_value = "prior")]
        sampler: String,
        /// Mixture components of the `gmm` sampler.
        #[arg(long, default_value_t = 10)]
        components: usize,
        /// Covariances of the `gmm` sampler: `full` or `diagonal`.
        #[arg(long, default_value = "full")]
        covariance: String,
        /// Transitions of the `chain` sampler.
        #[arg(long, default_value_t = 5)]
        steps: usize,
        /// Seed of every draw.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Override a value of the run's config (`device=cpu`, …; repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        overrides: Vec<String>,
    },
    /// Write the posterior means (log-variances where the encoder has them, code grids for a
    /// VQ-VAE) and labels of a split or a data file to `.npy`, `.npz` or `.safetensors`.
    Embed {
        /// The run directory.
        run_dir: PathBuf,
        /// `train`, `validation`, `test`, or a file or folder of images.
        #[arg(long, default_value = "test")]
        data: String,
        /// The output file (`.npy`: one file per array, `<stem>_<name>.npy` beside it).
        #[arg(long)]
        out: PathBuf,
        /// Override a value of the run's config (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        overrides: Vec<String>,
    },
    /// Reconstruct a split or a data file: `reconstructions/<data>-<UTC>/` with a picture and
    /// `reconstruction.json` (MSE and the model's own metrics).
    Reconstruct {
        /// The run directory.
        run_dir: PathBuf,
        /// `train`, `validation`, `test`, or a file or folder of images.
        #[arg(long, default_value = "test")]
        data: String,
        /// Images shown in the picture.
        #[arg(long, default_value_t = 16)]
        n: i64,
        /// Override a value of the run's config (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        overrides: Vec<String>,
    },
    /// Re-run the evaluations of a trained run with new settings:
    /// `evaluations/evaluation-<UTC>.json`.
    Evaluate {
        /// The run directory.
        run_dir: PathBuf,
        /// Importance samples of `L_k` (default: the run's `eval.log_likelihood_k`; 0: skip).
        #[arg(long)]
        k: Option<i64>,
        /// Test images of `L_k` (default: the run's; 0: all).
        #[arg(long)]
        images: Option<usize>,
        /// Fréchet distances of prior, GMM and chain samples to the test images (features of
        /// the data set's classifier, trained and cached on first use).
        #[arg(long)]
        frechet: bool,
        /// Samples per Fréchet distance.
        #[arg(long, default_value_t = 2000)]
        frechet_samples: i64,
        /// Components of the GMM measured by `--frechet` (0: none).
        #[arg(long, default_value_t = 10)]
        gmm_components: usize,
        /// Chain steps measured by `--frechet` (comma-separated; empty: none).
        #[arg(long, default_value = "5", value_delimiter = ',')]
        chain_steps: Vec<usize>,
        /// The run's full `[chain]` evaluation (pictures into `evaluations/<name>/`).
        #[arg(long)]
        chain: bool,
        /// Seed of the sampling.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Annealing steps of an AIS estimate of log p(x) (HMC; started from q(z|x), or AVB's
        /// moment-matched Gaussian; 0: none).
        #[arg(long, default_value_t = 0)]
        ais_steps: usize,
        /// AIS chains per test image.
        #[arg(long, default_value_t = 16)]
        ais_chains: i64,
        /// Test images of the AIS estimate (the first ones; 0: all).
        #[arg(long, default_value_t = 500)]
        ais_images: usize,
        /// Seed of the AIS estimate.
        #[arg(long, default_value_t = 0)]
        ais_seed: u64,
        /// Override a value of the run's config (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        overrides: Vec<String>,
    },
    /// Decoded paths between pairs of test codes: linear, spherical and (with `--refine`)
    /// chain-refined, in `interpolations/pairs-<UTC>/`.
    Interpolate {
        /// The run directory.
        run_dir: PathBuf,
        /// Pairs of test images.
        #[arg(long, default_value_t = 8)]
        pairs: i64,
        /// Points along each path.
        #[arg(long, default_value_t = 10)]
        points: i64,
        /// Chain steps refining each point (0: none).
        #[arg(long, default_value_t = 0)]
        refine: usize,
        /// Override a value of the run's config (repeatable).
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
    /// Train a grid of config overrides: one point per process (`--index I`, or Slurm's
    /// `SLURM_ARRAY_TASK_ID`), or every point in turn, each in its own run directory under
    /// the sweep folder; `genae sweep summarize DIR` tabulates the runs.
    #[command(args_conflicts_with_subcommands = true)]
    Sweep {
        #[command(subcommand)]
        command: Option<SweepCommand>,
        /// The config file (TOML), or the name of a shipped one (`genae config list`).
        config: Option<PathBuf>,
        /// An axis of the grid: `--grid 'train.beta=[1, 2, 4]'` (repeatable; the last varies
        /// fastest).
        #[arg(long = "grid", value_name = "KEY=[V1, V2, …]")]
        grid: Vec<String>,
        /// The point to train (default: `SLURM_ARRAY_TASK_ID`, else every point in turn).
        #[arg(long)]
        index: Option<usize>,
        /// The sweep folder (default `<output_dir>/<name>-sweep`).
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// Print the points and their count (for `sbatch --array=0-<count − 1>`) and stop.
        #[arg(long)]
        list: bool,
        /// Override a config value for every point: `--set section.key=value` (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        overrides: Vec<String>,
    },
}

#[derive(Subcommand)]
enum SweepCommand {
    /// A Markdown table of the finished runs in a sweep folder (or any folder of runs).
    Summarize {
        /// The folder.
        dir: PathBuf,
        /// Another number of `summary.json` to show, by its dotted path (repeatable).
        #[arg(long = "column", value_name = "PATH")]
        columns: Vec<String>,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Every shipped config with its one-line description.
    List,
    /// A shipped config resolved, every default filled in.
    Show {
        /// Its name (`genae config list`).
        name: String,
        /// Override a config value: `--set section.key=value` (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        overrides: Vec<String>,
    },
}

#[derive(Subcommand)]
enum ClassifierCommand {
    /// Train the classifier a config's `[chain.classifier]` and `[data]` describe, or load it
    /// from `<output_dir>/classifiers/` when cached; prints its test accuracy and folder.
    Train {
        /// The config file (TOML), or the name of a shipped one (`genae config list`).
        config: PathBuf,
        /// Override a config value: `--set section.key=value` (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        overrides: Vec<String>,
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
        /// A registry name (`fashion-mnist`) or a path to a folder or file (read as
        /// `data.path` reads it).
        name_or_path: String,
        /// Folder to look in first (as `data.dir` in a config).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// A path: force a format (as `data.format`).
        #[arg(long)]
        format: Option<String>,
        /// A path of arrays: `auto`, `nchw` or `nhwc` (as `data.layout`).
        #[arg(long)]
        layout: Option<String>,
        /// A path to an image folder: the side images are resized to (as `data.folder_size`).
        #[arg(long)]
        folder_size: Option<u32>,
        /// A path to an image folder: `gray` or `rgb` (as `data.channels`).
        #[arg(long)]
        channels: Option<String>,
        /// A path with one split: the fraction held out as the test set.
        #[arg(long, default_value_t = 0.1)]
        test_fraction: f64,
        /// A path with one split: the seed of the hold-out (as `data.seed`).
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// A path: a user manifest to check it against (as `data.manifest`).
        #[arg(long)]
        manifest: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", user_message(&chain_message(&e)));
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

/// A config file, or, when no such file exists, a shipped config of that name.
fn load_config(path: &Path, overrides: &[String]) -> anyhow::Result<ValidConfig> {
    let name = path
        .to_str()
        .filter(|n| !n.contains('/') && !n.ends_with(".toml"));
    match name {
        Some(name) if !path.exists() && shipped_config(name).is_some() => {
            Ok(load_shipped(name, overrides)?)
        }
        Some(name) if !path.exists() => {
            let names: Vec<&str> = SHIPPED_CONFIGS.iter().map(|(n, _)| *n).collect();
            anyhow::bail!(
                "no config file `{name}` and no shipped config of that name; shipped: {} \
                 (`genae config list` describes them)",
                names.join(", ")
            )
        }
        _ => Ok(ValidConfig::load(path, overrides)?),
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Train {
            config,
            resume,
            overrides,
        } => training::train(config, resume, &overrides)?,
        Command::Sweep {
            command: Some(SweepCommand::Summarize { dir, columns }),
            ..
        } => print_stdout(&genae_lab::summarize_sweep(&dir, &columns)?)?,
        Command::Sweep {
            command: None,
            config,
            grid,
            index,
            out,
            list,
            overrides,
        } => training::sweep(config, &grid, index, out.as_deref(), list, &overrides)?,
        Command::Infer { config, overrides } => {
            let config = genae_lab::InferenceConfig::load(&config, &overrides)?;
            let s = genae_lab::run_inference(&config)?;
            println!(
                "KL to the HMC reference (nats): mean-field {:.3}, AVB {:.3}, AVB+AC {:.3} \
                 (reference halves {:.3}); P(τ > 0): {:.2} / {:.2} / {:.2} (reference {:.2})",
                s.mean_field.kl_to_reference,
                s.avb.kl_to_reference,
                s.avb_adaptive_contrast.kl_to_reference,
                s.reference.kl_to_reference,
                s.mean_field.tau_positive_fraction,
                s.avb.tau_positive_fraction,
                s.avb_adaptive_contrast.tau_positive_fraction,
                s.reference.tau_positive_fraction
            );
            println!("run directory: {}", s.run_dir.display());
        }
        Command::Sample {
            run_dir,
            n,
            sampler,
            components,
            covariance,
            steps,
            seed,
            overrides,
        } => {
            let sampler = match sampler.as_str() {
                "prior" => Sampler::Prior,
                "gmm" => Sampler::Gmm {
                    components,
                    covariance: match covariance.as_str() {
                        "full" => CovarianceKind::Full,
                        "diagonal" | "diag" => CovarianceKind::Diagonal,
                        other => {
                            anyhow::bail!("--covariance {other}: expected `full` or `diagonal`")
                        }
                    },
                },
                "chain" => Sampler::Chain { steps },
                other => anyhow::bail!("--sampler {other}: expected `prior`, `gmm` or `chain`"),
            };
            let run = TrainedRun::open_with(&run_dir, &overrides)?;
            let dir = run.write_samples(&SampleOptions { n, sampler, seed })?;
            println!("samples: {}", dir.display());
        }
        Command::Embed {
            run_dir,
            data,
            out,
            overrides,
        } => {
            let run = TrainedRun::open_with(&run_dir, &overrides)?;
            let source: DataSource = data.parse()?;
            for file in run.write_embedding(&source, &out)? {
                println!("wrote {}", file.display());
            }
        }
        Command::Reconstruct {
            run_dir,
            data,
            n,
            overrides,
        } => {
            let run = TrainedRun::open_with(&run_dir, &overrides)?;
            let (dir, record) = run.write_reconstructions(&data.parse()?, n)?;
            println!(
                "{} images: MSE {:.5}{}",
                record.images,
                record.mse,
                match record.metrics.number("elbo") {
                    Some(elbo) => format!(", ELBO {elbo:.3} nats"),
                    None => String::new(),
                }
            );
            println!("reconstructions: {}", dir.display());
        }
        Command::Evaluate {
            run_dir,
            k,
            images,
            frechet,
            frechet_samples,
            gmm_components,
            chain_steps,
            chain,
            seed,
            ais_steps,
            ais_chains,
            ais_images,
            ais_seed,
            overrides,
        } => {
            let run = TrainedRun::open_with(&run_dir, &overrides)?;
            let (file, record) = run.evaluate(&EvaluateOptions {
                k,
                images,
                frechet,
                frechet_samples,
                gmm_components,
                chain_steps,
                chain,
                seed,
                ais_steps,
                ais_chains,
                ais_images,
                ais_seed,
            })?;
            println!("test {}", record.test.brief(6));
            if let Some(ais) = &record.ais {
                println!(
                    "AIS ({} steps, {} chains) log p(x) = {:.4} ± {:.4} nats on {} test images",
                    ais.steps, ais.chains, ais.value, ais.standard_error, ais.n_images
                );
            }
            println!("evaluation: {}", file.display());
        }
        Command::Interpolate {
            run_dir,
            pairs,
            points,
            refine,
            overrides,
        } => {
            let run = TrainedRun::open_with(&run_dir, &overrides)?;
            let dir = run.write_interpolations(&InterpolateOptions {
                pairs,
                points,
                refine,
            })?;
            println!("interpolations: {}", dir.display());
        }
        Command::Check { config, overrides } => {
            print!("{}", load_config(&config, &overrides)?.to_toml());
        }
        Command::Report { run_dir } => {
            println!("{}", write_report_for(&run_dir)?.display());
        }
        Command::Config { command } => match command {
            ConfigCommand::List => {
                let width = SHIPPED_CONFIGS
                    .iter()
                    .map(|(n, _)| n.len())
                    .max()
                    .unwrap_or(0);
                let lines: Vec<String> = SHIPPED_CONFIGS
                    .iter()
                    .map(|(name, text)| format!("{name:width$}  {}", describe(text)))
                    .collect();
                print_stdout(&(lines.join("\n") + "\n"))?;
            }
            ConfigCommand::Show { name, overrides } => {
                print_stdout(&load_shipped(&name, &overrides)?.to_toml())?;
            }
        },
        Command::Classifier {
            command: ClassifierCommand::Train { config, overrides },
        } => {
            let cached = classifier_for_config(&load_config(&config, &overrides)?)?;
            println!(
                "classifier test accuracy {:.4} ({}): {}",
                cached.test_accuracy,
                if cached.trained_now {
                    "trained now"
                } else {
                    "cached"
                },
                cached.dir.display()
            );
        }
        Command::Dataset { command } => match command {
            DatasetCommand::List { dir } => {
                let entries = genae_data::registry::list(dir.as_deref());
                let text: Vec<String> = entries.iter().map(ToString::to_string).collect();
                print_stdout(&(text.join("\n") + "\n"))?;
            }
            DatasetCommand::Info {
                name_or_path,
                dir,
                format,
                layout,
                folder_size,
                channels,
                test_fraction,
                seed,
                manifest,
            } => {
                use genae_data::formats::image_folder::Channels;
                use genae_data::registry::{self, PathOptions};
                let path = Path::new(&name_or_path);
                let is_name = registry::manifest(&name_or_path).is_ok() && !path.exists();
                let info = if is_name {
                    registry::info(&name_or_path, dir.as_deref())?
                } else {
                    let options = PathOptions {
                        format: format
                            .map(|f| f.parse())
                            .transpose()
                            .map_err(|e: String| anyhow::anyhow!("--format: {e}"))?,
                        layout: layout
                            .map(|l| l.parse())
                            .transpose()
                            .map_err(|e: String| anyhow::anyhow!("--layout: {e}"))?
                            .unwrap_or_default(),
                        image_size: folder_size,
                        channels: match channels.as_deref() {
                            None => None,
                            Some("gray" | "grey") => Some(Channels::Gray),
                            Some("rgb") => Some(Channels::Rgb),
                            Some(other) => {
                                anyhow::bail!("--channels {other}: expected `gray` or `rgb`")
                            }
                        },
                        test_fraction,
                        seed,
                        manifest,
                    };
                    // A name with a folder separator or an extension is a path, whether or not
                    // it exists (its error is then "no such file or folder").
                    let looks_like_path = name_or_path.contains('/') || path.extension().is_some();
                    if !path.exists()
                        && !looks_like_path
                        && registry::manifest(&name_or_path).is_err()
                    {
                        // Neither a file nor a registry name: say both.
                        registry::info(&name_or_path, dir.as_deref())?
                    } else {
                        registry::info_path_with(path, &options)?
                    }
                };
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
