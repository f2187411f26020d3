//! `[chain]` and `[chain.classifier]`: Markov-chain sampling from the trained model, measured
//! (run by [`crate::evaluate_chains`]), and the classifier whose features measure it.

use genae_samplers::{DecodeMode, EncodeMode};
use genae_tensor::Corruption;
use serde::{Deserialize, Serialize};

use crate::error::ConfigError;

/// The largest chain step `[chain]` accepts.
pub const MAX_CHAIN_STEPS: usize = 1000;

/// `[chain]`: Markov-chain sampling from the trained model, measured. Off by default
/// (`enabled = false`), so configs without the section run as before.
///
/// ```toml
/// [chain]
/// enabled = true
/// steps = [0, 1, 5, 10, 20]
/// chains = 2000
/// decode = "sample"          # or "mean"
/// encode = "sample"          # or "mean"
/// corruption = { kind = "salt_and_pepper", p = 0.1 }   # the denoising chain (default none)
/// [chain.classifier]
/// epochs = 3
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChainSection {
    /// Run the chain evaluation after training (default false).
    pub enabled: bool,
    /// The steps at which samples are measured, strictly increasing, 0 being the prior samples
    /// themselves (default `[0, 1, 5, 10, 20]`).
    pub steps: Vec<usize>,
    /// Chains run at once, from as many prior draws (default 2000).
    pub chains: usize,
    /// Each step decodes with the decoder mean or a draw of `p(x|z)` (default `sample`, the
    /// transition of the paper).
    pub decode: DecodeMode,
    /// Each step encodes with a draw of `q(z|x)` or its mean (default `sample`); the test codes
    /// the latent MMD compares with are encoded the same way (after the corruption, if any).
    pub encode: EncodeMode,
    /// Corruption applied to decoded data before encoding it: the denoising chain (default
    /// none). The test images of the latent reference are corrupted the same way.
    pub corruption: Corruption,
    /// Test images used as the reference of both distances (0: the whole test set).
    pub reference_images: usize,
    /// Chains shown in `chain_strips.png` (0: no picture; default 10).
    pub strip_chains: usize,
    /// Steps shown in `chain_strips.png`, one row each (default `[0, 1, 5, 10]`).
    pub strip_steps: Vec<usize>,
    /// Pairs of test images in `interpolations_refined.png` (0: no picture; default 4).
    pub interpolations: usize,
    /// Points per interpolation path, endpoints included (default 10).
    pub interpolation_points: i64,
    /// Chain steps run on every path point for the refined interpolation (default 10).
    pub interpolation_steps: usize,
    /// The classifier whose features the Fréchet distance compares.
    pub classifier: ClassifierSection,
}

impl Default for ChainSection {
    fn default() -> Self {
        Self {
            enabled: false,
            steps: vec![0, 1, 5, 10, 20],
            chains: 2000,
            decode: DecodeMode::Sample,
            encode: EncodeMode::Sample,
            corruption: Corruption::None,
            reference_images: 0,
            strip_chains: 10,
            strip_steps: vec![0, 1, 5, 10],
            interpolations: 4,
            interpolation_points: 10,
            interpolation_steps: 10,
            classifier: ClassifierSection::default(),
        }
    }
}

impl ChainSection {
    /// Checks ranges, naming the field (`chain.…`), enabled or not.
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        let fail =
            |field: &'static str, reason: String| Err(ConfigError::Invalid { field, reason });
        let increasing = |steps: &[usize]| {
            steps.windows(2).all(|w| w[0] < w[1])
                && steps.last().is_none_or(|&s| s <= MAX_CHAIN_STEPS)
        };
        if self.steps.is_empty() || !increasing(&self.steps) {
            return fail(
                "chain.steps",
                format!(
                    "must be a non-empty, strictly increasing list of steps ≤ {MAX_CHAIN_STEPS}, \
                     got {:?}",
                    self.steps
                ),
            );
        }
        if !increasing(&self.strip_steps) {
            return fail(
                "chain.strip_steps",
                format!(
                    "must be a strictly increasing list of steps ≤ {MAX_CHAIN_STEPS}, got {:?}",
                    self.strip_steps
                ),
            );
        }
        if !(2..=100_000).contains(&self.chains) {
            return fail(
                "chain.chains",
                format!("must be in 2..=100000, got {}", self.chains),
            );
        }
        if self.reference_images == 1 {
            return fail(
                "chain.reference_images",
                "must be 0 (the whole test set) or at least 2, got 1".into(),
            );
        }
        if self.strip_chains > 32 {
            return fail(
                "chain.strip_chains",
                format!("must be at most 32, got {}", self.strip_chains),
            );
        }
        if self.interpolations > 32 {
            return fail(
                "chain.interpolations",
                format!("must be at most 32, got {}", self.interpolations),
            );
        }
        if !(2..=32).contains(&self.interpolation_points) {
            return fail(
                "chain.interpolation_points",
                format!("must be in 2..=32, got {}", self.interpolation_points),
            );
        }
        if self.interpolation_steps > MAX_CHAIN_STEPS {
            return fail(
                "chain.interpolation_steps",
                format!(
                    "must be at most {MAX_CHAIN_STEPS}, got {}",
                    self.interpolation_steps
                ),
            );
        }
        if let Err(e) = self.corruption.validate() {
            return fail("chain.corruption", e.to_string());
        }
        self.classifier.validate()
    }
}

/// `[chain.classifier]`: the CNN trained on the run's data set (grey levels, whatever
/// `data.binarize` says) whose features the Fréchet distance compares.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClassifierSection {
    /// Output channels of each stride-2 convolution (default `[32, 64]`).
    pub channels: Vec<i64>,
    /// Width of the penultimate (feature) layer (default 128).
    pub feature_dim: i64,
    /// Passes over the training set (default 3).
    pub epochs: usize,
    /// Images per Adam step (default 128).
    pub batch_size: usize,
    /// Adam learning rate (default 1e-3).
    pub learning_rate: f64,
    /// Seed of the initialisation and the batch order (default 0).
    pub seed: u64,
}

impl Default for ClassifierSection {
    fn default() -> Self {
        Self {
            channels: vec![32, 64],
            feature_dim: 128,
            epochs: 3,
            batch_size: 128,
            learning_rate: 1e-3,
            seed: 0,
        }
    }
}

impl ClassifierSection {
    /// Checks ranges, naming the field (`chain.classifier.…`).
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        let fail =
            |field: &'static str, reason: String| Err(ConfigError::Invalid { field, reason });
        if self.channels.is_empty() || self.channels.iter().any(|&c| c < 1) {
            return fail(
                "chain.classifier.channels",
                format!(
                    "must be a non-empty list of positive counts, got {:?}",
                    self.channels
                ),
            );
        }
        if self.feature_dim < 1 {
            return fail(
                "chain.classifier.feature_dim",
                format!("must be at least 1, got {}", self.feature_dim),
            );
        }
        if self.epochs < 1 {
            return fail(
                "chain.classifier.epochs",
                format!("must be at least 1, got {}", self.epochs),
            );
        }
        if self.batch_size < 1 {
            return fail(
                "chain.classifier.batch_size",
                format!("must be at least 1, got {}", self.batch_size),
            );
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return fail(
                "chain.classifier.learning_rate",
                format!(
                    "must be a positive finite number, got {}",
                    self.learning_rate
                ),
            );
        }
        Ok(())
    }
}
