//! The `[vq]` and `[prior]` sections of a `model.kind = "vqvae"` config.

use genae_samplers::QuantizerConfig;
use genae_zoo::{Likelihood, PixelCnnConfig, VqNetConfig};
use serde::{Deserialize, Serialize};

use crate::config::ConfigError;

/// `[vq]`: the VQ-VAE's networks, with the quantizer in `[vq.quantizer]`.
///
/// ```toml
/// [vq]
/// hidden_channels = 64
/// residual_channels = 32
/// residual_blocks = 2
/// downsamples = 2          # 28×28 → 7×7 grid
/// likelihood = { kind = "discretized_logistic", bins = 256 }  # omit for the squared error
///
/// [vq.quantizer]
/// num_codes = 128          # K
/// code_dim = 16            # d, also the encoder's output channels
/// commitment_weight = 0.25 # β
/// update = { kind = "ema", decay = 0.99 }  # or { kind = "loss" } (the codebook loss)
/// kmeans_init = true
/// dead_code_steps = 200
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VqSection {
    /// Channels of the strided convolutions and the residual trunk.
    pub hidden_channels: i64,
    /// Channels inside each residual block's branch.
    pub residual_channels: i64,
    /// Residual blocks in the encoder and in the decoder.
    pub residual_blocks: usize,
    /// Stride-2 stages (the grid side is the image side over `2^downsamples`).
    pub downsamples: usize,
    /// The quantizer (genae-samplers' [`QuantizerConfig`]; its `code_dim` is the encoder's
    /// output width).
    pub quantizer: QuantizerConfig,
    /// The decoder likelihood `p(x | z_q)`: omitted, the squared error `Σ (x − x̂)²` (and, for
    /// bits/dim, a discretised Gaussian with one σ fitted after training);
    /// `{ kind = "discretized_logistic", bins = 256 }`, a discretised logistic with a learned
    /// location and scale per pixel, trained by its likelihood.
    pub likelihood: Option<Likelihood>,
}

impl Default for VqSection {
    fn default() -> Self {
        let net = VqNetConfig::default();
        Self {
            hidden_channels: net.hidden_channels,
            residual_channels: net.residual_channels,
            residual_blocks: net.residual_blocks,
            downsamples: net.downsamples,
            quantizer: QuantizerConfig {
                num_codes: 128,
                code_dim: net.code_dim,
                update: genae_samplers::CodebookUpdate::ema(),
                kmeans_init: true,
                dead_code_steps: 200,
                ..Default::default()
            },
            likelihood: None,
        }
    }
}

impl VqSection {
    /// The networks' config (with the quantizer's `code_dim`).
    pub fn network(&self) -> VqNetConfig {
        VqNetConfig {
            hidden_channels: self.hidden_channels,
            residual_channels: self.residual_channels,
            residual_blocks: self.residual_blocks,
            downsamples: self.downsamples,
            code_dim: self.quantizer.code_dim,
        }
    }

    /// Checks the networks against the image shape and the quantizer.
    pub(crate) fn validate(&self, image_side: Option<i64>) -> Result<(), ConfigError> {
        if let Some(l) = &self.likelihood {
            let reason = match l {
                Likelihood::DiscretizedLogistic { .. } => l.validate().err().map(|e| e.to_string()),
                other => Some(format!(
                    "a VQ-VAE takes `discretized_logistic` (or no likelihood: the squared error),                      not `{}`",
                    other.name()
                )),
            };
            if let Some(reason) = reason {
                return Err(ConfigError::Invalid {
                    field: "vq.likelihood",
                    reason,
                });
            }
        }
        self.quantizer
            .validate()
            .map_err(|e| ConfigError::Invalid {
                field: "vq.quantizer",
                reason: e.to_string(),
            })?;
        // The channel count does not matter for the geometry; the side does when known.
        let side = image_side.unwrap_or(1 << self.downsamples.min(6));
        self.network()
            .validate([1, side, side])
            .map_err(|e| ConfigError::Invalid {
                field: "vq",
                reason: e.to_string(),
            })?;
        Ok(())
    }
}

/// `[prior]`: the gated PixelCNN over code grids and its training (phase 2).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PriorSection {
    /// Channels of the embedding and of both stacks.
    pub channels: i64,
    /// Gated layers (the first of type A).
    pub layers: usize,
    /// Kernel side of the vertical stack (odd, ≥ 3).
    pub kernel_size: i64,
    /// Channels of the hidden 1×1 output layer.
    pub output_channels: i64,
    /// Passes over the encoded training set.
    pub epochs: usize,
    /// Code grids per step.
    pub batch_size: usize,
    /// Adam learning rate.
    pub learning_rate: f64,
}

impl Default for PriorSection {
    fn default() -> Self {
        Self {
            channels: 32,
            layers: 6,
            kernel_size: 3,
            output_channels: 64,
            epochs: 5,
            batch_size: 64,
            learning_rate: 1e-3,
        }
    }
}

impl PriorSection {
    /// The PixelCNN config for `num_codes` codes.
    pub fn pixelcnn(&self, num_codes: i64) -> PixelCnnConfig {
        PixelCnnConfig {
            num_codes,
            channels: self.channels,
            layers: self.layers,
            kernel_size: self.kernel_size,
            output_channels: self.output_channels,
        }
    }

    pub(crate) fn validate(&self, num_codes: i64) -> Result<(), ConfigError> {
        self.pixelcnn(num_codes)
            .validate()
            .map_err(|e| ConfigError::Invalid {
                field: "prior",
                reason: e.to_string(),
            })?;
        let bad = |field: &'static str, reason: String| Err(ConfigError::Invalid { field, reason });
        if self.epochs < 1 {
            return bad(
                "prior.epochs",
                format!("must be at least 1, got {}", self.epochs),
            );
        }
        if self.batch_size < 1 {
            return bad(
                "prior.batch_size",
                format!("must be at least 1, got {}", self.batch_size),
            );
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return bad(
                "prior.learning_rate",
                format!(
                    "must be a positive finite number, got {}",
                    self.learning_rate
                ),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{ConfigError, ModelKind, ValidConfig};

    fn parse(text: &str) -> Result<ValidConfig, ConfigError> {
        ValidConfig::from_toml_str(text, "test.toml", &[])
    }

    fn field_of(err: ConfigError) -> String {
        match err {
            ConfigError::Invalid { field, .. } => field.to_string(),
            other => panic!("expected an Invalid error, got {other}"),
        }
    }

    #[test]
    fn vqvae_gets_default_sections_and_vae_gets_none() {
        let config = parse("[model]\nkind = \"vqvae\"\n").unwrap();
        let f = config.file();
        assert_eq!(f.model.kind, ModelKind::Vqvae);
        assert_eq!(f.vq.as_ref().unwrap(), &super::VqSection::default());
        assert_eq!(f.prior.as_ref().unwrap(), &super::PriorSection::default());
        // The resolved TOML names them, and reads back to the same config.
        let text = config.to_toml();
        assert!(
            text.contains("[vq.quantizer]") && text.contains("[prior]"),
            "{text}"
        );
        assert_eq!(parse(&text).unwrap().file(), f);
        let vae = parse("").unwrap();
        assert!(vae.file().vq.is_none() && !vae.to_toml().contains("[vq"));
    }

    #[test]
    fn vqvae_fields_are_checked_and_named() {
        for (text, field) in [
            (
                "[model]\nkind = \"vqvae\"\n[data]\nbinarize = \"static\"\n",
                "data.binarize",
            ),
            ("[vq]\nhidden_channels = 8\n", "vq"),
            ("[prior]\nepochs = 2\n", "prior"),
            (
                "[model]\nkind = \"vqvae\"\n[vq.quantizer]\nnum_codes = 0\n",
                "vq.quantizer",
            ),
            (
                "[model]\nkind = \"vqvae\"\n[vq]\nhidden_channels = 0\n",
                "vq",
            ),
            ("[model]\nkind = \"vqvae\"\n[data]\nimage_size = 18\n", "vq"),
            (
                "[model]\nkind = \"vqvae\"\n[prior]\nkernel_size = 4\n",
                "prior",
            ),
            (
                "[model]\nkind = \"vqvae\"\n[prior]\nepochs = 0\n",
                "prior.epochs",
            ),
            (
                "[model]\nkind = \"vqvae\"\n[prior]\nlearning_rate = -1.0\n",
                "prior.learning_rate",
            ),
        ] {
            let err = parse(text).unwrap_err();
            let message = err.to_string();
            assert_eq!(field_of(err), field, "{text}: {message}");
        }
        let err = parse("[model]\nkind = \"vqvae\"\n[vq]\nwidth = 3\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("width") && err.contains("vq"), "{err}");
    }
}
