//! The error type of genae-zoo.

/// Everything that can go wrong building or running a model.
#[derive(Debug, thiserror::Error)]
pub enum ZooError {
    /// A model config value outside what the model accepts.
    #[error("invalid model config: `{field}` {reason}")]
    InvalidConfig {
        /// The config field, e.g. `latent_dim`.
        field: &'static str,
        /// What was expected and what was found.
        reason: String,
    },
    /// Input whose shape does not match the model.
    #[error("shape mismatch in {what}: {detail}")]
    Shape {
        /// The method concerned.
        what: &'static str,
        /// Expected and actual shapes.
        detail: String,
    },
    /// An error from genae-tensor.
    #[error(transparent)]
    Tensor(#[from] genae_tensor::TensorError),
    /// An error reported by libtorch.
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
}
