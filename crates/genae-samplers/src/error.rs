//! The error type of genae-samplers.

/// Everything that can go wrong building or running a sampler.
#[derive(Debug, thiserror::Error)]
pub enum SamplerError {
    /// A config value outside what the sampler accepts.
    #[error("invalid quantizer config: `{field}` {reason}")]
    InvalidConfig {
        /// The config field, e.g. `num_codes`.
        field: &'static str,
        /// What was expected and what was found.
        reason: String,
    },
    /// An argument (usually a tensor of the wrong shape, kind or device).
    #[error("invalid argument `{name}`: {reason}")]
    InvalidArgument {
        /// The argument, e.g. `z_e`.
        name: &'static str,
        /// What was expected and what was given.
        reason: String,
    },
    /// An error reported by libtorch.
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
}
