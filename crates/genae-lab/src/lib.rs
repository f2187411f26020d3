//! # genae-lab
//!
//! The experiment engine of genae and the `genae` binary. A run is described by a TOML config
//! (see [`ConfigFile`] for every field and its default), validated once into a
//! [`ValidConfig`], and executed by [`run_experiment`], which trains the model, evaluates it
//! every epoch and writes a run directory:
//!
//! | file | content |
//! |---|---|
//! | `config.toml` | the resolved config, every default written out |
//! | `metrics.jsonl` | one JSON line per epoch: train and test ELBO, reconstruction, KL, seconds, examples/s |
//! | `summary.json` | final numbers: `model`, `dataset`, `test.elbo`, `test.kl`, `test.reconstruction`, `train.examples_per_s`, `train.seconds`, … |
//! | `reconstructions.png` | test images (top) over their reconstructions (bottom) |
//! | `samples.png` | decoder means of prior samples |
//! | `interpolations.png` | decoded linear and spherical paths between test codes |
//! | `latents.png` | test codes coloured by label (2-d, or their first two principal components) |
//! | `curves.png` | training curves |
//! | `report.html` | all of the above on one self-contained page ([`write_report`]) |
//! | `model.safetensors` | the parameters (at the end, and every `eval.every` epochs) |
//! | `chain_strips.png`, `interpolations_refined.png` | with `[chain]` enabled: the same Markov chains at several steps, plain vs chain-refined interpolations ([`evaluate_chains`]) |
//!
//! With `[chain] enabled = true` ([`ChainSection`]), `summary.json` also has `chain`: the
//! Fréchet distance (features of the data set's own CNN classifier, cached under
//! `<output_dir>/classifiers/`, see [`load_or_train_classifier`]) and the latent MMD of
//! Markov-chain samples at each listed step, as arrays aligned with `chain.steps`.
//!
//! With `model.kind = "vqvae"` the engine trains a VQ-VAE (`[vq]`, the quantizer of
//! genae-samplers) and then a gated PixelCNN prior over its code grids (`[prior]`); the run
//! directory then holds one `metrics.jsonl` line per epoch of each phase (`"phase": "vqvae"` or
//! `"prior"`), `summary.json` with `vq` ([`VqSummary`]), `prior` ([`PriorSummary`]) and
//! `test.{reconstruction_mse, bits_per_dim, prior_nll}`, `samples.png` (decoded PixelCNN
//! samples), `reconstructions.png`, `model.safetensors` and `prior.safetensors`.
//!
//! ```no_run
//! use genae_lab::{run_experiment, ValidConfig};
//! let config = ValidConfig::from_toml_str("[train]\nepochs = 2\n", "inline", &[]).unwrap();
//! let summary = run_experiment(&config).unwrap();
//! println!("test ELBO {:.2} nats, run in {}", summary.test.elbo.unwrap(), summary.run_dir.display());
//! ```

mod aae_run;
mod avb_run;
mod catalog;
mod chains;
mod classifier_cache;
mod config;
mod engine;
mod inference;
mod optim;
mod plots;
mod progress;
mod report;
mod run_dir;
mod vq_config;
mod vqvae_run;

pub use aae_run::{AaeSection, AaeSummary, AaeTestMetrics, AdversarialMetrics};
pub use avb_run::{AvbAisSummary, AvbSection, AvbSummary, AvbTrainMetrics};
pub use catalog::{describe, load_shipped, shipped_config, SHIPPED_CONFIGS};
pub use chains::{evaluate_chains, ChainSection, ChainSummary, MAX_CHAIN_STEPS};
pub use classifier_cache::{
    classifier_cache_dir, classifier_for_config, load_or_train_classifier, CachedClassifier,
    ClassifierSection,
};
pub use config::{
    apply_override, ConfigError, ConfigFile, DataSection, EvalSection, ModelKind, ModelSection,
    ObjectiveKind, TrainSection, ValidConfig, AVB_TOY, SHAPES,
};
pub use engine::{
    resume_experiment, run_experiment, EpochMetrics, LabError, LogLikelihoodSummary, RunSummary,
    SplitMetrics, TestSummary, TrainTotals,
};
pub use inference::{
    run_inference, AvbSection as InferenceAvbSection, EightSchools, InferenceConfig,
    InferenceEvalSection, InferenceSummary, MeanFieldSection, PosteriorSummary, ReferenceSection,
    SHIPPED_INFERENCE_CONFIGS,
};
pub use optim::Adam;
pub use report::{write_report, write_report_for};
pub use run_dir::RunDir;

/// libtorch's generator is global: unit tests of this crate that seed it take turns.
#[cfg(test)]
pub(crate) fn torch_rng_lock() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
pub use vq_config::{PriorSection, VqSection};
pub use vqvae_run::{PriorSummary, VqSummary};
