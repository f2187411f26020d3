//! [`Collective`]: how a data-parallel job combines tensors across its processes.

use tch::Tensor;

/// Combines tensors across the processes of a data-parallel job (genae-lab implements it over
/// genae-dist's c10d process group). Every process calls the same methods in the same order
/// with tensors of the same shapes; each call changes the tensors in place. Errors are
/// messages saying what failed (e.g. which process was lost).
///
/// [`crate::Adam::set_collective`] uses [`Collective::mean`] to average gradients; genae-samplers'
/// quantizer uses [`Collective::sum`] for its EMA statistics and [`Collective::broadcast`]
/// after codebook initialisations and restarts.
///
/// ```
/// use genae_tensor::Collective;
/// use tch::Tensor;
///
/// /// One process: every collective leaves the tensors as they are.
/// struct Alone;
/// impl Collective for Alone {
///     fn sum(&self, _: &[Tensor]) -> Result<(), String> { Ok(()) }
///     fn mean(&self, _: &[Tensor]) -> Result<(), String> { Ok(()) }
///     fn broadcast(&self, _: &[Tensor]) -> Result<(), String> { Ok(()) }
/// }
/// let t = Tensor::from_slice(&[1.0f32]);
/// Alone.mean(&[t.shallow_clone()]).unwrap();
/// assert_eq!(t.double_value(&[0]), 1.0);
/// ```
pub trait Collective: Send + Sync {
    /// Replaces each tensor by its sum over the processes.
    fn sum(&self, tensors: &[Tensor]) -> Result<(), String>;
    /// Replaces each tensor by its mean over the processes.
    fn mean(&self, tensors: &[Tensor]) -> Result<(), String>;
    /// Overwrites each tensor with the first process's (rank 0).
    fn broadcast(&self, tensors: &[Tensor]) -> Result<(), String>;
}
