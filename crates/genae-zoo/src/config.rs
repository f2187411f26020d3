//! Model configs: [`VaeConfig`] (shared by the [`Autoencoder`](crate::Autoencoder)), the
//! [`Architecture`] of encoder and decoder, and the decoder [`Likelihood`].

use serde::{Deserialize, Serialize};

use crate::{Activation, Result, ZooError};

/// The image sizes (`H = W`) the convolutional encoder and decoder accept.
pub const CONV_IMAGE_SIZES: [i64; 3] = [28, 32, 64];

/// The networks inside the encoder and the decoder.
///
/// In TOML: `architecture = { kind = "mlp" }` (the default) or
/// `architecture = { kind = "conv", channels = [32, 64], residual_blocks = 1 }`.
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", deny_unknown_fields)]
pub enum Architecture {
    /// Fully connected layers of the widths in [`VaeConfig::hidden`] (the decoder uses them in
    /// reverse).
    #[default]
    Mlp,
    /// Stride-2 convolutions (one per entry of `channels`, each halving the image side,
    /// rounding up), then the fully connected [`VaeConfig::hidden`] layers to the latent
    /// heads; the decoder mirrors it with a linear layer and transposed convolutions back to
    /// exactly `H×W` (28 → 14 → 7 → 14 → 28). Needs [`VaeConfig::input_shape`] with
    /// `H = W` one of [`CONV_IMAGE_SIZES`].
    Conv {
        /// Output channels of each stride-2 convolution, from the input side
        /// (default `[32, 64]`).
        #[serde(default = "default_channels")]
        channels: Vec<i64>,
        /// Residual blocks (two 3×3 convolutions and a skip connection) after each
        /// stride-2 convolution of the encoder, and before each transposed convolution of the
        /// decoder (default 0).
        #[serde(default)]
        residual_blocks: usize,
    },
}

fn default_channels() -> Vec<i64> {
    vec![32, 64]
}

impl Architecture {
    /// The config name (`mlp` or `conv`).
    pub fn name(&self) -> &'static str {
        match self {
            Self::Mlp => "mlp",
            Self::Conv { .. } => "conv",
        }
    }
}

/// The decoder's observation model `p(x|z)`, independent over data dimensions.
///
/// In TOML: `likelihood = { kind = "bernoulli" }` (the default),
/// `{ kind = "gaussian", variance = 0.1 }`, `{ kind = "gaussian_learned" }` or
/// `{ kind = "discretized_logistic", bins = 256 }`.
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", deny_unknown_fields)]
pub enum Likelihood {
    /// Bernoulli pixels with logits: binary (or `[0, 1]`) data, the negative binary
    /// cross-entropy.
    #[default]
    Bernoulli,
    /// Gaussian with fixed variance `c`:
    /// `log p(x|z) = −‖x − f(z)‖² / 2c − D/2 · ln(2πc)`.
    Gaussian {
        /// The variance `c` of every dimension (positive).
        variance: f64,
    },
    /// Gaussian with a learned per-dimension log-variance (a second decoder output head,
    /// clamped to [`GAUSSIAN_LOG_VAR_RANGE`](crate::GAUSSIAN_LOG_VAR_RANGE)).
    GaussianLearned,
    /// The discretised logistic of PixelCNN++ / IAF for `bins`-level data scaled to `[0, 1]`
    /// (`x = k / (bins − 1)`), with learned per-dimension location and log-scale.
    DiscretizedLogistic {
        /// Number of levels (default 256, for 8-bit images); at least 2.
        #[serde(default = "default_bins")]
        bins: u32,
    },
}

fn default_bins() -> u32 {
    256
}

impl Likelihood {
    /// The config name (`bernoulli`, `gaussian`, `gaussian_learned`, `discretized_logistic`).
    pub fn name(&self) -> &'static str {
        match self {
            Self::Bernoulli => "bernoulli",
            Self::Gaussian { .. } => "gaussian",
            Self::GaussianLearned => "gaussian_learned",
            Self::DiscretizedLogistic { .. } => "discretized_logistic",
        }
    }

    /// Checks the parameters, naming the bad field.
    pub fn validate(&self) -> Result<()> {
        match *self {
            Self::Gaussian { variance } if !(variance.is_finite() && variance > 0.0) => {
                Err(ZooError::InvalidConfig {
                    field: "likelihood.variance",
                    reason: format!("must be positive and finite, got {variance}"),
                })
            }
            Self::DiscretizedLogistic { bins } if bins < 2 => Err(ZooError::InvalidConfig {
                field: "likelihood.bins",
                reason: format!("must be at least 2, got {bins}"),
            }),
            _ => Ok(()),
        }
    }
}

/// Hyper-parameters of [`Vae`](crate::Vae) and [`Autoencoder`](crate::Autoencoder) (and of
/// their encoders and decoders).
///
/// Fields added after the first version (`input_shape`, `architecture`, `likelihood`) have
/// defaults, so `VaeConfig { input_dim, hidden, latent_dim, activation, ..Default::default() }`
/// and configs without them keep meaning the MLP/Bernoulli VAE.
///
/// ```
/// use genae_zoo::{Architecture, Likelihood, VaeConfig};
///
/// let config = VaeConfig {
///     architecture: Architecture::Conv { channels: vec![32, 64], residual_blocks: 1 },
///     likelihood: Likelihood::Gaussian { variance: 0.1 },
///     hidden: vec![],
///     ..VaeConfig::default().with_input_shape([1, 28, 28])
/// };
/// config.validate().unwrap();
/// assert_eq!(config.input_dim, 784);
///
/// let bad = VaeConfig { input_shape: Some([3, 28, 28]), ..VaeConfig::default() };
/// assert!(bad.validate().unwrap_err().to_string().contains("input_shape"));
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaeConfig {
    /// Size of a flattened input (`C·H·W`).
    pub input_dim: i64,
    /// The input as `[C, H, W]` (must multiply to `input_dim`); needed by
    /// [`Architecture::Conv`], optional for [`Architecture::Mlp`]. Default: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_shape: Option<[i64; 3]>,
    /// Hidden widths of the encoder's fully connected layers; the decoder uses them in
    /// reverse. With [`Architecture::Conv`] they sit between the convolutional features and
    /// the latent heads (empty: one linear layer).
    pub hidden: Vec<i64>,
    /// Number of latent dimensions (the code size of the autoencoder).
    pub latent_dim: i64,
    /// Nonlinearity between layers.
    pub activation: Activation,
    /// Encoder and decoder networks. Default: [`Architecture::Mlp`].
    #[serde(default)]
    pub architecture: Architecture,
    /// The decoder's `p(x|z)`. Default: [`Likelihood::Bernoulli`].
    #[serde(default)]
    pub likelihood: Likelihood,
}

impl Default for VaeConfig {
    /// A 784 → 512 → 256 → 10 → 256 → 512 → 784 ReLU MLP with Bernoulli pixels.
    fn default() -> Self {
        Self {
            input_dim: 784,
            input_shape: None,
            hidden: vec![512, 256],
            latent_dim: 10,
            activation: Activation::Relu,
            architecture: Architecture::Mlp,
            likelihood: Likelihood::Bernoulli,
        }
    }
}

impl VaeConfig {
    /// This config with `input_shape` set to `[C, H, W]` and `input_dim` to `C·H·W`.
    pub fn with_input_shape(self, shape: [i64; 3]) -> Self {
        Self {
            input_dim: shape.iter().product(),
            input_shape: Some(shape),
            ..self
        }
    }

    /// Checks every field, naming the first bad one.
    pub fn validate(&self) -> Result<()> {
        let positive = |field: &'static str, v: i64| {
            if v > 0 {
                Ok(())
            } else {
                Err(ZooError::InvalidConfig {
                    field,
                    reason: format!("must be positive, got {v}"),
                })
            }
        };
        positive("input_dim", self.input_dim)?;
        if let Some(shape) = self.input_shape {
            if shape.iter().any(|&s| s <= 0) || shape.iter().product::<i64>() != self.input_dim {
                return Err(ZooError::InvalidConfig {
                    field: "input_shape",
                    reason: format!(
                        "must be positive [C, H, W] with C·H·W = input_dim = {}, got {shape:?}",
                        self.input_dim
                    ),
                });
            }
        }
        positive("latent_dim", self.latent_dim)?;
        if let Some(&w) = self.hidden.iter().find(|&&w| w <= 0) {
            return Err(ZooError::InvalidConfig {
                field: "hidden",
                reason: format!("widths must be positive, got {w} in {:?}", self.hidden),
            });
        }
        if let Architecture::Conv { channels, .. } = &self.architecture {
            let shape = self.input_shape.ok_or_else(|| ZooError::InvalidConfig {
                field: "input_shape",
                reason: format!(
                    "is required by architecture `conv` ([C, H, W] with H = W one of \
                     {CONV_IMAGE_SIZES:?}), got none (input_dim = {})",
                    self.input_dim
                ),
            })?;
            validate_conv_shape(shape)?;
            validate_channels(channels)?;
        }
        self.likelihood.validate()
    }
}

/// `[C, H, W]` with `C ≥ 1` and `H = W` one of [`CONV_IMAGE_SIZES`].
pub(crate) fn validate_conv_shape(shape: [i64; 3]) -> Result<()> {
    let [c, h, w] = shape;
    if c <= 0 || h != w || !CONV_IMAGE_SIZES.contains(&h) {
        return Err(ZooError::InvalidConfig {
            field: "input_shape",
            reason: format!(
                "convolutional models need [C, H, W] with C ≥ 1 and H = W one of \
                 {CONV_IMAGE_SIZES:?}, got {shape:?}"
            ),
        });
    }
    Ok(())
}

/// A non-empty list of positive channel counts.
pub(crate) fn validate_channels(channels: &[i64]) -> Result<()> {
    if channels.is_empty() || channels.iter().any(|&c| c <= 0) {
        return Err(ZooError::InvalidConfig {
            field: "architecture.channels",
            reason: format!("must be a non-empty list of positive counts, got {channels:?}"),
        });
    }
    Ok(())
}
