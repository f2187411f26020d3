//! [`RunContext`]: what the trainer, the model kinds and the shared evaluations see of a run;
//! the run's device and the seed of each epoch.

use genae_tensor::DeviceSpec;
use tch::Device;

use crate::config::ValidConfig;
use crate::data::{DeviceSplit, PreparedData};
use crate::error::LabError;
use crate::run_dir::RunDir;

/// What every kind sees of the run.
pub(crate) struct RunContext<'a> {
    pub(crate) config: &'a ValidConfig,
    pub(crate) device: Device,
    pub(crate) data: &'a PreparedData,
    pub(crate) test: &'a DeviceSplit,
    pub(crate) run_dir: &'a RunDir,
}

impl RunContext<'_> {
    /// `[C, H, W]` of one image.
    pub(crate) fn image_shape(&self) -> [i64; 3] {
        self.data.image_shape()
    }

    /// `C·H·W`.
    pub(crate) fn input_dim(&self) -> i64 {
        self.image_shape().iter().product()
    }

    /// `eval.batch_size`.
    pub(crate) fn eval_batch(&self) -> i64 {
        self.config.file().eval.batch_size as i64
    }
}

/// The seed of epoch `epoch`'s generator (epoch 0: the final evaluation's).
pub(crate) fn epoch_seed(seed: u64, epoch: usize) -> u64 {
    seed.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(epoch as u64)
        .rotate_left(17)
}

/// The seed of the `L_k` estimate after epoch `epoch` (epoch 0: the final one), so that a
/// later `genae evaluate` with the same settings repeats the training-time number.
pub(crate) fn likelihood_seed(seed: u64, epoch: usize) -> u64 {
    epoch_seed(seed, epoch) ^ 0x5EED
}

/// The run's device (`device`, or `GENAE_DEVICE`), with libtorch's threads set from
/// `threads`.
pub(crate) fn run_device(config: &ValidConfig) -> Result<Device, LabError> {
    let device = DeviceSpec::from_config_or_env(config.device())?.resolve()?;
    if config.file().threads > 0 {
        tch::set_num_threads(config.file().threads as i32);
    }
    Ok(device)
}
