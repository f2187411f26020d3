//! The `genae infer` config: [`InferenceConfig`] and its sections, the shipped configs, loading
//! and validation.

use std::path::PathBuf;

use genae_samplers::HmcConfig;
use serde::{Deserialize, Serialize};

use super::EightSchools;
use crate::config::{parse_with_overrides, ConfigError};

/// `[reference]`: the HMC run the variational posteriors are measured against.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReferenceSection {
    /// Independent chains, started from prior draws.
    pub chains: i64,
    /// The sampler's settings (warm-up, samples per chain, leapfrog steps, adaptation, thinning).
    pub hmc: HmcConfig,
}

impl Default for ReferenceSection {
    fn default() -> Self {
        Self {
            chains: 200,
            hmc: HmcConfig {
                step_size: 0.1,
                leapfrog_steps: 20,
                warmup: 1000,
                samples: 2000,
                adaptation: genae_samplers::StepSizeAdaptation::Shared,
                keep_trajectory: true,
                thin: 10,
                ..HmcConfig::default()
            },
        }
    }
}

/// `[mean_field]`: a fully factorised Gaussian `q`, fitted by the reparameterised ELBO.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MeanFieldSection {
    /// Adam steps.
    pub steps: usize,
    /// Monte-Carlo draws per step.
    pub samples: i64,
    /// Adam learning rate.
    pub learning_rate: f64,
}

impl Default for MeanFieldSection {
    fn default() -> Self {
        Self {
            steps: 5000,
            samples: 64,
            learning_rate: 1e-2,
        }
    }
}

/// `[avb]`: the implicit `q(θ) = g(ε)` and its discriminator, used with and without adaptive
/// contrast.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AvbSection {
    /// Primal (generator) steps.
    pub steps: usize,
    /// Discriminator (dual) steps per primal step (the paper's code: 2).
    pub dual_steps: usize,
    /// Draws of `q` (and of the reference distribution) per step; with adaptive contrast also
    /// the sample the moments of `q` are estimated from.
    pub batch: i64,
    /// Dimensions of the noise `ε` fed to `g`.
    pub noise_dim: i64,
    /// Hidden widths of `g`.
    pub hidden: Vec<i64>,
    /// Hidden widths of the discriminator `T`.
    pub discriminator_hidden: Vec<i64>,
    /// Adam learning rate of `g`.
    pub learning_rate: f64,
    /// Adam learning rate of `T`.
    pub discriminator_learning_rate: f64,
}

impl Default for AvbSection {
    fn default() -> Self {
        Self {
            steps: 4000,
            dual_steps: 2,
            batch: 256,
            noise_dim: 10,
            hidden: vec![64, 64],
            discriminator_hidden: vec![128, 128],
            learning_rate: 1e-3,
            discriminator_learning_rate: 1e-3,
        }
    }
}

/// `[eval]`: how the posteriors are compared.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InferenceEvalSection {
    /// Draws of each posterior (and of the reference, subsampled) for the comparisons.
    pub samples: i64,
    /// Neighbour order of the nearest-neighbour KL estimate.
    pub knn_k: i64,
}

impl Default for InferenceEvalSection {
    fn default() -> Self {
        Self {
            samples: 5000,
            knn_k: 1,
        }
    }
}

/// A `genae infer` config. Every field has a default; unknown keys are errors.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InferenceConfig {
    /// Run name (the run directory is `<output_dir>/<name>-<UTC timestamp>`).
    pub name: String,
    /// Seed of libtorch's generators.
    pub seed: u64,
    /// Folder that receives run directories.
    pub output_dir: PathBuf,
    /// libtorch intra-op threads (0: libtorch's default).
    pub threads: usize,
    /// The model whose posterior is sought.
    pub target: EightSchools,
    /// The HMC reference.
    pub reference: ReferenceSection,
    /// Mean-field Gaussian VB.
    pub mean_field: MeanFieldSection,
    /// AVB, plain and with adaptive contrast.
    pub avb: AvbSection,
    /// The comparisons.
    pub eval: InferenceEvalSection,
}

impl Default for InferenceConfig {
    fn default() -> Self {
        Self {
            name: "eight-schools".into(),
            seed: 0,
            output_dir: "runs".into(),
            threads: 0,
            target: EightSchools::rescaled(),
            reference: ReferenceSection::default(),
            mean_field: MeanFieldSection::default(),
            avb: AvbSection::default(),
            eval: InferenceEvalSection::default(),
        }
    }
}

/// The shipped `genae infer` configs (`crates/genae-lab/configs/inference/`).
pub const SHIPPED_INFERENCE_CONFIGS: &[(&str, &str)] = &[(
    "eight-schools",
    include_str!("../../configs/inference/eight-schools.toml"),
)];

impl InferenceConfig {
    /// Parses `text` (named `source_name` in errors), applies `--set` style `overrides` and
    /// validates; errors name the field.
    pub fn from_toml_str(
        text: &str,
        source_name: &str,
        overrides: &[String],
    ) -> Result<Self, ConfigError> {
        let config: Self = parse_with_overrides(text, source_name, overrides)?;
        config.validate()?;
        Ok(config)
    }

    /// A shipped config (see [`SHIPPED_INFERENCE_CONFIGS`]) or a file.
    pub fn load(name_or_path: &str, overrides: &[String]) -> Result<Self, ConfigError> {
        if let Some((name, text)) = SHIPPED_INFERENCE_CONFIGS
            .iter()
            .find(|(n, _)| *n == name_or_path)
        {
            return Self::from_toml_str(text, &format!("{name}.toml"), overrides);
        }
        let path = std::path::Path::new(name_or_path);
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            error: source,
        })?;
        Self::from_toml_str(&text, &path.display().to_string(), overrides)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let check = |ok: bool, field: &'static str, reason: String| {
            if ok {
                Ok(())
            } else {
                Err(ConfigError::Invalid { field, reason })
            }
        };
        self.target.validate()?;
        check(
            self.reference.chains >= 1,
            "reference.chains",
            format!("must be at least 1, got {}", self.reference.chains),
        )?;
        self.reference
            .hmc
            .validate()
            .map_err(|e| ConfigError::Invalid {
                field: "reference.hmc",
                reason: e.to_string(),
            })?;
        let kept = self.reference.hmc.samples / self.reference.hmc.thin;
        check(
            self.reference.hmc.keep_trajectory && kept >= 1,
            "reference.hmc.keep_trajectory",
            "the reference needs its trajectory (keep_trajectory = true, thin ≤ samples)".into(),
        )?;
        for (field, lr) in [
            ("mean_field.learning_rate", self.mean_field.learning_rate),
            ("avb.learning_rate", self.avb.learning_rate),
            (
                "avb.discriminator_learning_rate",
                self.avb.discriminator_learning_rate,
            ),
        ] {
            check(
                lr.is_finite() && lr > 0.0,
                field,
                format!("must be a positive finite number, got {lr}"),
            )?;
        }
        check(
            self.mean_field.samples >= 1,
            "mean_field.samples",
            format!("must be at least 1, got {}", self.mean_field.samples),
        )?;
        check(
            self.avb.batch >= 2,
            "avb.batch",
            format!("must be at least 2, got {}", self.avb.batch),
        )?;
        check(
            self.avb.noise_dim >= 1,
            "avb.noise_dim",
            format!("must be at least 1, got {}", self.avb.noise_dim),
        )?;
        check(
            self.avb.dual_steps >= 1,
            "avb.dual_steps",
            format!("must be at least 1, got {}", self.avb.dual_steps),
        )?;
        check(
            self.eval.knn_k >= 1 && self.eval.samples > self.eval.knn_k,
            "eval.samples",
            format!(
                "must exceed eval.knn_k ({}) which must be at least 1, got {}",
                self.eval.knn_k, self.eval.samples
            ),
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_configs_parse_and_bad_fields_are_named() {
        for (name, text) in SHIPPED_INFERENCE_CONFIGS {
            let c = InferenceConfig::from_toml_str(text, name, &[]).unwrap();
            assert_eq!(c.name, *name);
        }
        let err = InferenceConfig::from_toml_str("", "x.toml", &["avb.batch=1".into()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("avb.batch"), "{err}");
        let err =
            InferenceConfig::from_toml_str("[target]\ny = [1.0]\nsigma = [0.0]", "x.toml", &[])
                .unwrap_err()
                .to_string();
        assert!(err.contains("target.sigma"), "{err}");
    }
}
