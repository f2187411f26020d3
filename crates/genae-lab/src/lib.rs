//! # genae-lab
//!
//! The experiment engine of genae and the `genae` binary. A run is described by a TOML config
//! (see [`ConfigFile`] for every field and its default), validated once into a
//! [`ValidConfig`] holding a typed [`ModelSpec`], and executed by [`run_experiment`]: one
//! trainer drives every model kind (VAE, AAE, AVB, WAE, VQ-VAE) through the same loop and
//! writes a run directory:
//!
//! | file | content |
//! |---|---|
//! | `config.toml` | the resolved config: every key the model kind reads, defaults written out |
//! | `metrics.jsonl` | one JSON line per epoch: `phase`, `epoch`, `step`, the named `train`, `validation` and `test` terms, seconds, examples/s |
//! | `summary.json` | final numbers: `model`, `dataset`, named `test` figures (`elbo`, `reconstruction_mse`, `log_likelihood`, …), `train` totals, and the kind's sections (`aae`, `avb`, `wae`, `vq`, `prior`, `chain`) |
//! | `reconstructions.png` | test images (top) over their reconstructions (bottom) |
//! | `samples.png` | decoder means of prior samples |
//! | `interpolations.png` | decoded linear and spherical paths between test codes |
//! | `latents.png` | test codes coloured by label (2-d, or their first two principal components) |
//! | `curves.png` | every named term per epoch, train and test |
//! | `report.html` | all of the above on one self-contained page ([`write_report`]) |
//! | `model.safetensors` | the parameters (at the end, and every `eval.every` epochs); a VQ-VAE also writes `prior.safetensors` |
//! | `checkpoint.safetensors` | parameters, optimiser state and progress, every `train.checkpoint_every` epochs ([`resume_experiment`]) |
//! | `chain_strips.png`, `interpolations_refined.png` | with `[chain]` enabled: the same Markov chains at several steps, plain vs chain-refined interpolations ([`evaluate_chains`]) |
//!
//! With `[chain] enabled = true` ([`ChainSection`]), `summary.json` also has `chain`: the
//! Fréchet distance (features of the data set's own CNN classifier, cached under
//! `<output_dir>/classifiers/`, see [`load_or_train_classifier`]) and the latent MMD of
//! Markov-chain samples at each listed step, as arrays aligned with `chain.steps`.
//!
//! How a run flows through the modules, and how to add a model kind: `docs/architecture.md`.
//!
//! ```no_run
//! use genae_lab::{run_experiment, ValidConfig};
//! let config = ValidConfig::from_toml_str("[train]\nepochs = 2\n", "inline", &[]).unwrap();
//! let summary = run_experiment(&config).unwrap();
//! println!("test ELBO {:.2} nats, run in {}", summary.test.number("elbo").unwrap(), summary.run_dir.display());
//! ```

#[macro_use]
mod progress;
mod arrays;
mod catalog;
mod checkpoint;
mod config;
mod context;
mod data;
mod error;
mod eval;
mod inference;
mod kinds;
mod memory;
mod metrics;
mod parallel;
mod plots;
mod report;
mod run_dir;
mod safetensors_file;
mod summary;
mod sweep;
mod trained;
mod trainer;

pub use catalog::{describe, load_shipped, shipped_config, SHIPPED_CONFIGS};
pub use config::{
    apply_override, AaeSection, AvbSection, BetaTcSection, CapacitySection, ChainSection,
    ClassifierSection, ConfigFile, DataSection, DipSection, DisentanglementEval, EvalSection,
    FactorVaeSection, LikelihoodEval, ModelKind, ModelSection, ModelSpec, NetworkSpec,
    ObjectiveKind, ParallelNoise, PriorSection, TcEstimator, TrainSection, ValidConfig, VqSection,
    WaeKernel, WaeSection, AVB_TOY, MAX_CHAIN_STEPS, SHAPES,
};
pub use error::{ConfigError, LabError};
pub use eval::chains::{evaluate_chains, ChainSummary};
pub use eval::classifier::{
    classifier_cache_dir, classifier_for_config, load_or_train_classifier, CachedClassifier,
};
pub use eval::likelihood::LogLikelihoodSummary;
/// The checkpointable Adam every kind trains with (genae-tensor's).
pub use genae_tensor::Adam;
pub use inference::{
    run_inference, AvbSection as InferenceAvbSection, EightSchools, InferenceConfig,
    InferenceEvalSection, InferenceSummary, MeanFieldSection, PosteriorSummary, ReferenceSection,
    SHIPPED_INFERENCE_CONFIGS,
};
pub use metrics::{Entry, EpochLine, Record};
pub use parallel::{data_parallel_follower, BACKEND_VAR, FORCE_VAR, TIMEOUT_VAR};
pub use report::{write_report, write_report_for};
pub use run_dir::RunDir;
pub use summary::{PhaseSummary, RunSummary, TrainTotals};
pub use sweep::{
    array_index, run_sweep, summarize_sweep, Grid, SweepFile, ARRAY_INDEX_VAR, SUMMARY_COLUMNS,
    SWEEP_FILE,
};
pub use trained::evaluate::{AisSummary, EvaluateOptions, EvaluationRecord, FrechetSummary};
pub use trained::ops::{
    CovarianceKind, InterpolateOptions, ReconstructionRecord, SampleOptions, Sampler, Samples,
};
pub use trained::{DataSource, SourceImages, TrainedRun};
pub use trainer::{resume_experiment, run_experiment};

/// libtorch's generator is global: unit tests of this crate that seed it take turns.
#[cfg(test)]
pub(crate) fn torch_rng_lock() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
