//! The error type of genae-estimators.

/// Everything that can go wrong computing a bound.
#[derive(Debug, thiserror::Error)]
pub enum EstimatorError {
    /// An argument outside its allowed range.
    #[error("invalid argument `{name}`: {reason}")]
    InvalidArgument {
        /// The argument.
        name: &'static str,
        /// What was expected and what was given.
        reason: String,
    },
    /// An error from the model.
    #[error(transparent)]
    Model(#[from] genae_zoo::ZooError),
    /// An error from genae-tensor.
    #[error(transparent)]
    Tensor(#[from] genae_tensor::TensorError),
    /// An error reported by libtorch.
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
}
