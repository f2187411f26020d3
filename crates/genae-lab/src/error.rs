//! The error types of the lab: [`ConfigError`] for configs, [`LabError`] for everything that
//! can stop a run. A leaf module: it imports nothing else of the crate.

use std::path::{Path, PathBuf};

/// A config problem, always naming the file or field concerned.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file could not be read.
    #[error("cannot read config `{path}`: {error}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The underlying error (in the message, so not also a `source()`: printed once).
        error: std::io::Error,
    },
    /// The file is not valid TOML.
    #[error("config `{source_name}` is not valid TOML: {message}")]
    Syntax {
        /// The file (or `<string>`).
        source_name: String,
        /// The parser's message, with line and column.
        message: String,
    },
    /// A key that does not exist or a value of the wrong type.
    #[error("config `{source_name}`, field `{field}`: {message}")]
    Field {
        /// The file (or `<string>`).
        source_name: String,
        /// The dotted path of the field (the enclosing table for an unknown key).
        field: String,
        /// What was wrong.
        message: String,
    },
    /// A config name that is not among the shipped ones.
    #[error("no shipped config `{name}` (known: {known})")]
    UnknownConfig {
        /// The name asked for.
        name: String,
        /// The shipped names, comma-separated.
        known: String,
    },
    /// A value of the right type outside its allowed range.
    #[error("config field `{field}`: {reason}")]
    Invalid {
        /// The dotted path of the field.
        field: &'static str,
        /// What was expected and what was found.
        reason: String,
    },
    /// A malformed `--set key=value` argument.
    #[error("override `{arg}`: {reason}")]
    Override {
        /// The argument as given.
        arg: String,
        /// What was wrong.
        reason: String,
    },
}

/// Everything that can stop a run.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// A config problem.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A data-set problem.
    #[error(transparent)]
    Data(#[from] genae_data::DataError),
    /// A device or tensor-helper problem.
    #[error(transparent)]
    Tensor(#[from] genae_tensor::TensorError),
    /// A data-parallel problem: the launch variables, the store, a lost rank.
    #[error("data-parallel: {0}")]
    Distributed(#[from] genae_dist::DistError),
    /// A model problem.
    #[error(transparent)]
    Model(#[from] genae_zoo::ZooError),
    /// An estimator problem.
    #[error(transparent)]
    Estimator(#[from] genae_estimators::EstimatorError),
    /// A sampler problem (Markov chains, HMC and AIS, the VQ-VAE quantizer).
    #[error("sampler: {0}")]
    Sampler(#[from] genae_samplers::SamplerError),
    /// An error reported by libtorch.
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
    /// A file-system problem.
    #[error("{action} `{path}`: {error}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file or folder.
        path: PathBuf,
        /// The underlying error (in the message, so not also a `source()`: printed once).
        error: std::io::Error,
    },
    /// A checkpoint that cannot be resumed from.
    #[error("checkpoint `{path}`: {reason}")]
    Checkpoint {
        /// The checkpoint file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// Training diverged.
    #[error("the {term} became {value} at epoch {epoch}, step {step}; stopping (lower {hint}?)")]
    NonFinite {
        /// The loss term.
        term: String,
        /// Its value.
        value: f64,
        /// The epoch (from 1).
        epoch: usize,
        /// The global step (from 1).
        step: u64,
        /// The config key most likely to help (the phase's learning rate).
        hint: &'static str,
    },
    /// A trained run that cannot be used as asked (`genae sample`, `embed`, … and
    /// [`crate::TrainedRun`]): a missing or mismatched file, a bad option.
    #[error("run `{path}`: {reason}")]
    Run {
        /// The run directory or the file in it.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A setting whose estimated memory exceeds what the machine has, refused before
    /// allocating it.
    #[error("{reason}")]
    Memory {
        /// The config key(s) that set the size.
        key: &'static str,
        /// The estimate against what is available, and what to lower.
        reason: String,
    },
    /// A model kind asked for something it cannot do (e.g. `genae` evaluating `L_k` for a
    /// model without an encoder density).
    #[error("model.kind = \"{kind}\": {reason}")]
    Unsupported {
        /// The model kind.
        kind: String,
        /// What it cannot do.
        reason: String,
    },
}

impl LabError {
    /// A file-system error while `action` on `path`.
    pub(crate) fn io(action: &'static str, path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            action,
            path: path.to_path_buf(),
            error: source,
        }
    }
}
