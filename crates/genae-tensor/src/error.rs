//! The error type of genae-tensor.

use std::path::PathBuf;

/// Everything that can go wrong in genae-tensor.
#[derive(Debug, thiserror::Error)]
pub enum TensorError {
    /// A device string that is not `auto`, `cpu`, `cuda` or `cuda:N`.
    #[error("invalid device `{spec}`: expected one of `auto`, `cpu`, `cuda`, `cuda:N`")]
    InvalidDevice {
        /// The string that was given.
        spec: String,
    },
    /// A CUDA device was asked for that libtorch cannot see.
    #[error("device `{spec}` requested but {reason}")]
    DeviceUnavailable {
        /// The device that was asked for.
        spec: String,
        /// Why it cannot be used.
        reason: String,
    },
    /// Tensors whose shapes do not fit together.
    #[error("shape mismatch in {what}: {detail}")]
    Shape {
        /// The operation or argument concerned.
        what: &'static str,
        /// The shapes involved.
        detail: String,
    },
    /// An argument or config field outside its allowed range (e.g. a corruption probability).
    #[error("invalid argument `{name}`: {reason}")]
    InvalidArgument {
        /// The argument or field, e.g. `p` or `steps[1].sigma`.
        name: String,
        /// What was expected and what was given.
        reason: String,
    },
    /// An optimiser state (e.g. from a checkpoint) that does not fit the optimiser: an entry
    /// missing, of the wrong shape, or out of range.
    #[error("optimiser state `{key}`: {reason}")]
    OptimizerState {
        /// The entry concerned, e.g. `adam.m.encoder.layer0.weight`.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A collective across the processes of a data-parallel job failed ([`crate::Collective`]).
    #[error("{what} across processes: {reason}")]
    Collective {
        /// What was being combined, e.g. `the gradients of 12 variables`.
        what: String,
        /// Why it failed (e.g. which rank was lost).
        reason: String,
    },
    /// An error reported by libtorch.
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
    /// A PNG that could not be written.
    #[error("writing image `{path}`: {source}")]
    Image {
        /// The file concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: image::ImageError,
    },
    /// A file-system error.
    #[error("{action} `{path}`: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}
