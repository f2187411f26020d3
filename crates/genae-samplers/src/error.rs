//! The error type of genae-samplers.

/// Everything that can go wrong building or running a sampler.
#[derive(Debug, thiserror::Error)]
pub enum SamplerError {
    /// A config value outside what the sampler accepts.
    #[error("invalid sampler config: `{field}` {reason}")]
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
    /// An error from the model a sampler runs (its encoder, decoder or prior).
    #[error("model: {0}")]
    Model(#[from] genae_zoo::ZooError),
    /// An error returned by the corruption step of a denoising Markov chain.
    #[error("corruption: {0}")]
    Corruption(#[source] crate::CorruptionError),
    /// An error from genae-tensor (a distribution built from bad parameters).
    #[error("tensor: {0}")]
    Tensor(#[from] genae_tensor::TensorError),
    /// An error reported by libtorch.
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
}
