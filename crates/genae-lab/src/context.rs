//! [`RunContext`]: what the trainer, the model kinds and the shared evaluations see of a run.

use tch::Device;

use crate::config::ValidConfig;
use crate::data::{DeviceSplit, PreparedData};
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

