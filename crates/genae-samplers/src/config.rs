//! The quantizer's hyper-parameters: [`QuantizerConfig`], [`CodebookUpdate`],
//! [`LossReduction`].

use serde::{Deserialize, Serialize};

use crate::{Result, SamplerError};

/// How the codebook learns.
///
/// In TOML: `update = { kind = "loss" }` (the default) or
/// `update = { kind = "ema", decay = 0.99, epsilon = 1e-5 }`.
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", deny_unknown_fields)]
pub enum CodebookUpdate {
    /// The paper's codebook loss `‖sg[z_e] − z_q‖²` (weighted by
    /// [`QuantizerConfig::codebook_weight`]) moves the codes through the optimiser; the codebook
    /// is a trainable variable.
    #[default]
    Loss,
    /// Exponential moving averages of the cluster sizes `N_k` and sums `m_k` (van den Oord et
    /// al. 2017, appendix A.1): on every training call, under no-grad,
    /// `N_k ← γ N_k + (1 − γ) n_k`, `m_k ← γ m_k + (1 − γ) Σ_{i: k_i = k} z_e,i` and
    /// `e_k ← m_k / Ñ_k` with the Laplace-smoothed sizes `Ñ_k = (N_k + ε) / (n + K ε) · n`,
    /// `n = Σ_k N_k`. The codebook is then a non-trainable variable and no codebook loss is
    /// returned.
    Ema {
        /// The decay `γ`, in `[0, 1)` (default 0.99).
        #[serde(default = "default_decay")]
        decay: f64,
        /// The Laplace smoothing `ε ≥ 0` of the cluster sizes (default 1e-5).
        #[serde(default = "default_epsilon")]
        epsilon: f64,
    },
}

fn default_decay() -> f64 {
    0.99
}

fn default_epsilon() -> f64 {
    1e-5
}

impl CodebookUpdate {
    /// EMA updates with the default decay (0.99) and smoothing (1e-5).
    pub fn ema() -> Self {
        Self::Ema {
            decay: default_decay(),
            epsilon: default_epsilon(),
        }
    }

    /// The config name (`loss` or `ema`).
    pub fn name(&self) -> &'static str {
        match self {
            Self::Loss => "loss",
            Self::Ema { .. } => "ema",
        }
    }
}

/// How the squared errors of the codebook and commitment losses are reduced.
///
/// In TOML: `reduction = "per_example"` (the default) or `reduction = "mean"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LossReduction {
    /// Summed over each example's vectors and channels, averaged over the batch (dimension 0):
    /// the scale of a reconstruction term summed over pixels, genae's convention.
    #[default]
    PerExample,
    /// Averaged over every element (PyTorch's `F.mse_loss`).
    Mean,
}

/// Hyper-parameters of [`VectorQuantizer`](crate::VectorQuantizer).
///
/// Every field has a default (the paper's quantizer: K = 512, d = 64, β = 0.25, codebook loss,
/// no k-means, no dead-code restart), so a TOML table only names what it changes; unknown
/// fields are rejected.
///
/// ```
/// use genae_samplers::{CodebookUpdate, QuantizerConfig};
///
/// let config: QuantizerConfig =
///     toml::from_str("num_codes = 256\nupdate = { kind = \"ema\" }\ndead_code_steps = 100").unwrap();
/// assert_eq!(config.update, CodebookUpdate::Ema { decay: 0.99, epsilon: 1e-5 });
/// assert_eq!(config.commitment_weight, 0.25);
/// config.validate().unwrap();
///
/// let bad = QuantizerConfig { num_codes: 0, ..Default::default() };
/// assert!(bad.validate().unwrap_err().to_string().contains("num_codes"));
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QuantizerConfig {
    /// Number of codes `K` (at least 1). Default 512.
    pub num_codes: i64,
    /// Dimension `d` of a code, the encoder's channel count (at least 1). Default 64.
    pub code_dim: i64,
    /// Weight `β` of the commitment loss `β ‖z_e − sg[z_q]‖²` (finite, ≥ 0). Default 0.25.
    pub commitment_weight: f64,
    /// Weight of the codebook loss `‖sg[z_e] − z_q‖²` (finite, ≥ 0); unused with
    /// [`CodebookUpdate::Ema`]. Default 1.
    pub codebook_weight: f64,
    /// Codebook loss or EMA updates. Default [`CodebookUpdate::Loss`].
    pub update: CodebookUpdate,
    /// Reduction of both losses. Default [`LossReduction::PerExample`].
    pub reduction: LossReduction,
    /// Run k-means on the first training batch's encoder outputs before quantising it
    /// (unless the codebook was already initialised: k-means, `set_codebook` or a loaded
    /// checkpoint). Default false.
    pub kmeans_init: bool,
    /// Lloyd iterations of the k-means initialisation. Default 10.
    pub kmeans_iters: usize,
    /// Re-seed a code from the current batch's encoder outputs once it has gone unused for this
    /// many consecutive training calls; 0 turns restarts off. Default 0.
    pub dead_code_steps: u64,
}

impl Default for QuantizerConfig {
    /// 512 codes of dimension 64, β = 0.25, codebook loss of weight 1, per-example reduction.
    fn default() -> Self {
        Self {
            num_codes: 512,
            code_dim: 64,
            commitment_weight: 0.25,
            codebook_weight: 1.0,
            update: CodebookUpdate::Loss,
            reduction: LossReduction::PerExample,
            kmeans_init: false,
            kmeans_iters: 10,
            dead_code_steps: 0,
        }
    }
}

impl QuantizerConfig {
    /// Checks every field, naming the first bad one.
    pub fn validate(&self) -> Result<()> {
        let at_least_one = |field: &'static str, v: i64| {
            if v >= 1 {
                Ok(())
            } else {
                Err(SamplerError::InvalidConfig {
                    field,
                    reason: format!("must be at least 1, got {v}"),
                })
            }
        };
        let weight = |field: &'static str, v: f64| {
            if v.is_finite() && v >= 0.0 {
                Ok(())
            } else {
                Err(SamplerError::InvalidConfig {
                    field,
                    reason: format!("must be finite and ≥ 0, got {v}"),
                })
            }
        };
        at_least_one("num_codes", self.num_codes)?;
        at_least_one("code_dim", self.code_dim)?;
        weight("commitment_weight", self.commitment_weight)?;
        weight("codebook_weight", self.codebook_weight)?;
        if let CodebookUpdate::Ema { decay, epsilon } = self.update {
            if !(0.0..1.0).contains(&decay) {
                return Err(SamplerError::InvalidConfig {
                    field: "update.decay",
                    reason: format!("must be in [0, 1), got {decay}"),
                });
            }
            weight("update.epsilon", epsilon)?;
        }
        Ok(())
    }
}
