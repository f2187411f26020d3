//! # genae-tensor
//!
//! Small, dependable helpers on top of [`tch`] that every other genae crate builds on:
//!
//! - [`DeviceSpec`]: parse `auto`, `cpu`, `cuda`, `cuda:N` (from a config value or the
//!   `GENAE_DEVICE` environment variable) and resolve it to a [`tch::Device`];
//! - [`seed_everything`]: seed libtorch's CPU and CUDA generators;
//! - [`DiagGaussian`]: a diagonal Gaussian with `rsample`, `log_prob`, `mean`,
//!   `kl_to_standard_normal` and KL to another diagonal Gaussian;
//! - [`bernoulli_logits_log_prob`], [`log_mean_exp`], [`sum_except_batch`]: likelihood helpers;
//! - [`tensor_from_array`], [`array_from_tensor`], [`tensor_from_u8_images`]: conversions at the
//!   boundary with plain buffers and `ndarray`;
//! - [`save_image_grid`]: write a batch of images as one PNG grid;
//! - [`Corruption`]: the corruption processes `C(x̃|x)` of denoising autoencoders and denoising
//!   Markov chains (additive Gaussian, salt-and-pepper, masking, and chains of them), a
//!   serde-configurable enum seeded through libtorch's generator;
//! - [`noise`]: draws for one process's rows of a batch split across processes, equal to the
//!   rows a single process draws for the whole batch;
//! - [`Adam`]: PyTorch's Adam update with its moments kept as tensors, so a training loop can
//!   checkpoint and restore them.
//!
//! Everything works on whatever device its input tensors live on.
//!
//! ```
//! use genae_tensor::{seed_everything, DiagGaussian};
//! use tch::{Device, Kind, Tensor};
//!
//! seed_everything(0);
//! let mean = Tensor::zeros([4, 2], (Kind::Float, Device::Cpu));
//! let log_var = Tensor::zeros([4, 2], (Kind::Float, Device::Cpu));
//! let q = DiagGaussian::new(mean, log_var).unwrap();
//! let z = q.rsample();
//! assert_eq!(z.size(), vec![4, 2]);
//! // KL of a standard normal to itself is zero.
//! assert_eq!(q.kl_to_standard_normal().abs().max().double_value(&[]), 0.0);
//! ```

mod collective;
mod convert;
mod corruption;
mod device;
mod distributions;
mod error;
mod image_grid;
mod likelihood;
pub mod noise;
mod optim;

pub use collective::Collective;
pub use convert::{array_from_tensor, tensor_from_array, tensor_from_u8_images};
pub use corruption::Corruption;
pub use device::{seed_everything, DeviceSpec, DEVICE_ENV_VAR};
pub use distributions::DiagGaussian;
pub use error::TensorError;
pub use image_grid::save_image_grid;
pub use likelihood::{bernoulli_logits_log_prob, log_mean_exp, sum_except_batch, LOG_2PI};
pub use optim::Adam;

/// Result type of this crate.
pub type Result<T> = std::result::Result<T, TensorError>;

/// libtorch's generator is global to the process and unit tests run on parallel threads:
/// every unit test of this crate holds this lock, so a test that seeds the generator and
/// depends on its draws is not interleaved with another test's draws or seeding.
#[cfg(test)]
pub(crate) fn torch_rng_lock() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
