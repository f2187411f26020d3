//! The sections of the disentangling models: `[capacity]` (annealed-capacity β-VAE),
//! `[beta_tc]` (β-TC-VAE), `[dip]` (DIP-VAE-I and -II), `[factor_vae]` (FactorVAE), and
//! `[eval.disentanglement]` (the metrics on the shapes data's ground-truth factors).

use genae_estimators::factorised::CapacitySchedule;
use serde::{Deserialize, Serialize};

use crate::error::ConfigError;

/// `Err` naming `field` unless `value` is finite and `≥ 0`.
fn non_negative(field: &'static str, value: f64) -> Result<(), ConfigError> {
    if value.is_finite() && value >= 0.0 {
        Ok(())
    } else {
        Err(ConfigError::Invalid {
            field,
            reason: format!("must be a finite number ≥ 0, got {value}"),
        })
    }
}

/// `[capacity]` (`train.objective = "annealed_capacity"`): Burgess et al. (2018), the loss
/// `−E log p(x|z) + γ |KL − C|` with `C` raised linearly from 0 to `max` over `steps`.
/// Defaults are disentanglement_lib's (γ = 1000, 25 nats over 100 000 steps).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CapacitySection {
    /// The weight γ of `|KL − C|`.
    pub gamma: f64,
    /// The final capacity `C_max` in nats.
    pub max: f64,
    /// Steps over which `C` rises to `max` (0: `max` from the start).
    pub steps: u64,
}

impl Default for CapacitySection {
    fn default() -> Self {
        Self {
            gamma: 1000.0,
            max: 25.0,
            steps: 100_000,
        }
    }
}

impl CapacitySection {
    /// Checks the section, naming the first bad field.
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        non_negative("capacity.gamma", self.gamma)?;
        non_negative("capacity.max", self.max)
    }
}

/// How β-TC-VAE estimates the aggregate posterior from a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TcEstimator {
    /// Minibatch-weighted sampling (Chen et al.'s default).
    Weighted,
    /// Minibatch-stratified sampling with the training set's size.
    Stratified,
}

/// `[beta_tc]` (`train.objective = "beta_tc"`): Chen et al. (2018), the loss
/// `−E log p(x|z) + α·MI + β·TC + γ·dimension-wise KL` with `β = train.beta`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BetaTcSection {
    /// The weight α of the index–code mutual information.
    pub alpha: f64,
    /// The weight γ of the dimension-wise KL.
    pub gamma: f64,
    /// `weighted` or `stratified`.
    pub estimator: TcEstimator,
}

impl Default for BetaTcSection {
    fn default() -> Self {
        Self {
            alpha: 1.0,
            gamma: 1.0,
            estimator: TcEstimator::Weighted,
        }
    }
}

impl BetaTcSection {
    /// Checks the section, naming the first bad field.
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        non_negative("beta_tc.alpha", self.alpha)?;
        non_negative("beta_tc.gamma", self.gamma)
    }
}

/// `[dip]` (`train.objective = "dip_i"` or `"dip_ii"`): Kumar et al. (2018), the negative ELBO
/// plus `λ_od Σ_{i≠j} C_ij² + λ_d Σ_i (C_ii − 1)²` of the batch covariance `C`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DipSection {
    /// `λ_od` (default 10).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lambda_od: Option<f64>,
    /// `λ_d` (default `10 λ_od` for DIP-VAE-I, `λ_od` for DIP-VAE-II, as in Locatello et al.).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lambda_d: Option<f64>,
}

impl DipSection {
    /// Fills in the defaults for the variant (`ii`: DIP-VAE-II) and checks them; `(λ_od, λ_d)`.
    pub(crate) fn resolve(&mut self, ii: bool) -> Result<(f64, f64), ConfigError> {
        let od = *self.lambda_od.get_or_insert(10.0);
        let d = *self.lambda_d.get_or_insert(if ii { od } else { 10.0 * od });
        non_negative("dip.lambda_od", od)?;
        non_negative("dip.lambda_d", d)?;
        Ok((od, d))
    }
}

/// `[factor_vae]` (`model.kind = "factor_vae"`): Kim & Mnih (2018), the negative ELBO plus
/// `γ` times the total correlation estimated by a discriminator between the batch's codes and
/// codes with each dimension permuted across the batch; the discriminator has its own Adam.
/// Defaults are the paper's and disentanglement_lib's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FactorVaeSection {
    /// The weight γ of the total correlation.
    pub gamma: f64,
    /// The discriminator's hidden widths (leaky ReLU after each; one logit out).
    pub discriminator_hidden: Vec<i64>,
    /// The discriminator's Adam learning rate.
    pub discriminator_learning_rate: f64,
    /// The discriminator's Adam β₁.
    pub discriminator_beta1: f64,
    /// The discriminator's Adam β₂.
    pub discriminator_beta2: f64,
}

impl Default for FactorVaeSection {
    fn default() -> Self {
        Self {
            gamma: 35.0,
            discriminator_hidden: vec![1000; 6],
            discriminator_learning_rate: 1e-4,
            discriminator_beta1: 0.5,
            discriminator_beta2: 0.9,
        }
    }
}

impl FactorVaeSection {
    /// Checks the section, naming the first bad field.
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        non_negative("factor_vae.gamma", self.gamma)?;
        if self.discriminator_hidden.is_empty() || self.discriminator_hidden.iter().any(|&w| w <= 0)
        {
            return Err(ConfigError::Invalid {
                field: "factor_vae.discriminator_hidden",
                reason: format!(
                    "must be a non-empty list of positive widths, got {:?}",
                    self.discriminator_hidden
                ),
            });
        }
        let rate = self.discriminator_learning_rate;
        if !(rate.is_finite() && rate > 0.0) {
            return Err(ConfigError::Invalid {
                field: "factor_vae.discriminator_learning_rate",
                reason: format!("must be a finite number > 0, got {rate}"),
            });
        }
        for (field, beta) in [
            ("factor_vae.discriminator_beta1", self.discriminator_beta1),
            ("factor_vae.discriminator_beta2", self.discriminator_beta2),
        ] {
            if !(0.0..1.0).contains(&beta) {
                return Err(ConfigError::Invalid {
                    field,
                    reason: format!("must be in [0, 1), got {beta}"),
                });
            }
        }
        Ok(())
    }
}

/// `[eval.disentanglement]`: the disentanglement metrics of genae-estimators on the encoder
/// means of images rendered from the shapes data's ground-truth factors, at the end of a run
/// (`data.dataset = "shapes"` and a kind with an encoder), into `summary.json`'s
/// `disentanglement` section, and a latent-traversal picture. Sample sizes are
/// disentanglement_lib's defaults.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DisentanglementEval {
    /// Compute the metrics.
    pub enabled: bool,
    /// Seed of the factor draws (the metrics repeat for a seed).
    pub seed: u64,
    /// Points for MIG, SAP, DCI's training split and the Gaussian total correlation, and
    /// training votes of the β-VAE and FactorVAE scores (10 000).
    pub train_points: usize,
    /// Held-out points of DCI and evaluation votes of the β-VAE and FactorVAE scores (5 000).
    pub test_points: usize,
    /// Pairs (β-VAE score) or images (FactorVAE score) per vote (64).
    pub batch_size: usize,
    /// Write `traversals.png`: each latent dimension swept over ±2 posterior sd around a test
    /// image's code, one row each, rows ordered by their mean KL.
    pub traversal: bool,
}

impl Default for DisentanglementEval {
    fn default() -> Self {
        Self {
            enabled: false,
            seed: 0,
            train_points: 10_000,
            test_points: 5_000,
            batch_size: 64,
            traversal: true,
        }
    }
}

impl DisentanglementEval {
    /// Checks the section, naming the first bad field.
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        for (field, value, min) in [
            ("eval.disentanglement.train_points", self.train_points, 10),
            ("eval.disentanglement.test_points", self.test_points, 10),
            ("eval.disentanglement.batch_size", self.batch_size, 2),
        ] {
            if value < min {
                return Err(ConfigError::Invalid {
                    field,
                    reason: format!("must be at least {min}, got {value}"),
                });
            }
        }
        Ok(())
    }
}

/// `Err` naming the section when it is set although `train.objective` does not read it.
fn only_for<T>(
    section: &Option<T>,
    name: &'static str,
    objective: &str,
) -> Result<(), ConfigError> {
    match section {
        Some(_) => Err(ConfigError::Invalid {
            field: name,
            reason: format!("applies only to train.objective = {objective}; remove it"),
        }),
        None => Ok(()),
    }
}

/// The VAE objectives of this module from `train.objective` and their sections (defaults
/// filled in), with the capacity schedule of the annealed-capacity β-VAE; `Ok(None)` for the
/// other objectives, after checking that none of these sections is set. `beta` is
/// `train.beta`. β-TC-VAE's stratified estimator gets the training set's size when the model
/// is built (`dataset_size` 0 here).
pub(crate) fn vae_objective(
    file: &mut super::ConfigFile,
    objective: super::ObjectiveKind,
    beta: f64,
) -> Result<Option<(genae_estimators::Objective, Option<CapacitySchedule>)>, ConfigError> {
    use super::ObjectiveKind as K;
    use genae_estimators::factorised::{AggregateEstimator, DipVariant};
    use genae_estimators::Objective;
    if objective != K::AnnealedCapacity {
        only_for(&file.capacity, "capacity", "\"annealed_capacity\"")?;
    }
    if objective != K::BetaTc {
        only_for(&file.beta_tc, "beta_tc", "\"beta_tc\"")?;
    }
    if !matches!(objective, K::DipI | K::DipIi) {
        only_for(&file.dip, "dip", "\"dip_i\" or \"dip_ii\"")?;
    }
    Ok(Some(match objective {
        K::AnnealedCapacity => {
            let c = file.capacity.get_or_insert_with(Default::default).clone();
            c.validate()?;
            let objective = Objective::AnnealedCapacity {
                gamma: c.gamma,
                capacity: 0.0,
            };
            let schedule = CapacitySchedule {
                max: c.max,
                steps: c.steps,
            };
            (objective, Some(schedule))
        }
        K::BetaTc => {
            let t = file.beta_tc.get_or_insert_with(Default::default).clone();
            t.validate()?;
            let estimator = match t.estimator {
                TcEstimator::Weighted => AggregateEstimator::Weighted,
                TcEstimator::Stratified => AggregateEstimator::Stratified { dataset_size: 0 },
            };
            let objective = Objective::BetaTc {
                alpha: t.alpha,
                beta,
                gamma: t.gamma,
                estimator,
            };
            (objective, None)
        }
        K::DipI | K::DipIi => {
            let ii = objective == K::DipIi;
            let (od, d) = file.dip.get_or_insert_with(Default::default).resolve(ii)?;
            let objective = Objective::Dip {
                variant: if ii { DipVariant::Ii } else { DipVariant::I },
                lambda_off_diagonal: od,
                lambda_diagonal: d,
            };
            (objective, None)
        }
        K::Elbo | K::Iwae | K::Dvae => return Ok(None),
    }))
}

#[cfg(test)]
mod tests {
    use genae_estimators::factorised::{AggregateEstimator, CapacitySchedule, DipVariant};
    use genae_estimators::Objective;

    use crate::config::{ModelSpec, ValidConfig};

    fn spec(text: &str) -> ModelSpec {
        ValidConfig::from_toml_str(text, "test.toml", &[])
            .unwrap()
            .spec()
            .clone()
    }

    fn error(text: &str) -> String {
        ValidConfig::from_toml_str(text, "test.toml", &[])
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn each_objective_gets_its_sections_defaults() {
        let vae = |t: &str| match spec(&format!("[train]\nobjective = \"{t}\"\n")) {
            ModelSpec::Vae {
                objective,
                capacity,
                ..
            } => (objective, capacity),
            other => panic!("{other:?}"),
        };
        assert_eq!(
            vae("annealed_capacity"),
            (
                Objective::AnnealedCapacity {
                    gamma: 1000.0,
                    capacity: 0.0
                },
                Some(CapacitySchedule {
                    max: 25.0,
                    steps: 100_000
                })
            )
        );
        assert_eq!(
            vae("beta_tc").0,
            Objective::BetaTc {
                alpha: 1.0,
                beta: 1.0,
                gamma: 1.0,
                estimator: AggregateEstimator::Weighted
            }
        );
        let dip = |ii, od, d| Objective::Dip {
            variant: if ii { DipVariant::Ii } else { DipVariant::I },
            lambda_off_diagonal: od,
            lambda_diagonal: d,
        };
        assert_eq!(vae("dip_i").0, dip(false, 10.0, 100.0));
        assert_eq!(vae("dip_ii").0, dip(true, 10.0, 10.0));
        match spec("[model]\nkind = \"factor_vae\"\n") {
            ModelSpec::FactorVae { factor_vae, .. } => {
                assert_eq!(factor_vae, super::FactorVaeSection::default())
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn sections_of_other_objectives_and_bad_values_are_named() {
        for (text, field) in [
            ("[capacity]\nmax = 5.0\n", "capacity"),
            (
                "[train]\nobjective = \"dip_i\"\n[beta_tc]\nalpha = 2.0\n",
                "beta_tc",
            ),
            (
                "[train]\nobjective = \"beta_tc\"\n[dip]\nlambda_od = 2.0\n",
                "dip",
            ),
            ("[factor_vae]\ngamma = 2.0\n", "factor_vae"),
            (
                "[train]\nobjective = \"annealed_capacity\"\n[capacity]\ngamma = -1.0\n",
                "capacity.gamma",
            ),
            (
                "[train]\nobjective = \"dip_ii\"\n[dip]\nlambda_d = nan\n",
                "dip.lambda_d",
            ),
            (
                "[model]\nkind = \"factor_vae\"\n[factor_vae]\ndiscriminator_hidden = []\n",
                "factor_vae.discriminator_hidden",
            ),
            (
                "[model]\nkind = \"factor_vae\"\n[factor_vae]\ndiscriminator_beta2 = 1.0\n",
                "factor_vae.discriminator_beta2",
            ),
            (
                "[model]\nkind = \"factor_vae\"\n[train]\nobjective = \"beta_tc\"\n",
                "train.objective",
            ),
            (
                "[data]\ndataset = \"avb-toy\"\n[eval.disentanglement]\nenabled = true\n",
                "eval.disentanglement.enabled",
            ),
            (
                "[eval.disentanglement]\nenabled = true\nbatch_size = 1\n",
                "eval.disentanglement.batch_size",
            ),
        ] {
            let e = error(text);
            assert!(e.contains(field), "{text}: {e}");
        }
    }
}
