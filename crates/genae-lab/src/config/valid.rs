//! Validation: a [`ConfigFile`] becomes a [`ValidConfig`] holding one typed [`ModelSpec`] per
//! model kind, every default filled in and every key the kind does not read rejected by name.

use std::path::Path;

use genae_data::transforms::Binarization;
use genae_estimators::factorised::CapacitySchedule;
use genae_estimators::Objective;
use genae_tensor::{Corruption, DeviceSpec};
use genae_zoo::{Activation, Architecture, Likelihood, VaeConfig};

use super::{
    parse_with_overrides, AaeSection, AvbSection, ConfigError, ConfigFile, FactorVaeSection,
    ModelKind, ObjectiveKind, PriorSection, Result, VqSection, WaeSection, AVB_TOY, SHAPES,
};

/// The encoder and decoder networks of `[model]` (every kind but `vqvae`).
#[derive(Clone, Debug, PartialEq)]
pub struct NetworkSpec {
    /// Latent dimensions.
    pub latent_dim: i64,
    /// Encoder hidden widths (the decoder mirrors them).
    pub hidden: Vec<i64>,
    /// Nonlinearity.
    pub activation: Activation,
    /// MLP or convolutional.
    pub architecture: Architecture,
    /// The decoder's `p(x|z)`.
    pub likelihood: Likelihood,
}

impl NetworkSpec {
    /// genae-zoo's config of these networks for images of shape `[C, H, W]`.
    pub fn vae_config(&self, image_shape: [i64; 3]) -> VaeConfig {
        VaeConfig {
            input_dim: image_shape.iter().product(),
            input_shape: Some(image_shape),
            hidden: self.hidden.clone(),
            latent_dim: self.latent_dim,
            activation: self.activation,
            architecture: self.architecture.clone(),
            likelihood: self.likelihood.clone(),
        }
    }
}

/// The importance-sampled `L_k` settings of `[eval]`, for kinds that have the estimate.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LikelihoodEval {
    /// Importance samples per image.
    pub k: i64,
    /// Test images (0: all).
    pub images: usize,
    /// Samples per image drawn at once.
    pub chunk: i64,
}

/// One phase of training: its name (the `phase` of `metrics.jsonl`), its epochs and the
/// config key of its learning rate (named when it diverges).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Phase {
    /// The phase's name.
    pub name: &'static str,
    /// Its epochs.
    pub epochs: usize,
    /// The config key of its learning rate.
    pub learning_rate_key: &'static str,
}

/// One typed model spec per kind, each with only the settings that kind reads.
#[derive(Clone, Debug, PartialEq)]
pub enum ModelSpec {
    /// A VAE trained on `objective` (ELBO with β and free bits, IWAE or DVAE).
    Vae {
        /// The networks.
        networks: NetworkSpec,
        /// The training objective.
        objective: Objective,
        /// Steps of linear KL warm-up (0: none).
        kl_warmup_steps: u64,
        /// The annealed-capacity β-VAE's capacity schedule (`None` for other objectives).
        capacity: Option<CapacitySchedule>,
    },
    /// FactorVAE: the VAE's networks and a total-correlation discriminator.
    FactorVae {
        /// The networks.
        networks: NetworkSpec,
        /// `[factor_vae]`.
        factor_vae: FactorVaeSection,
    },
    /// An adversarial autoencoder.
    Aae {
        /// The networks (encoder and decoder; the discriminator is in `aae`).
        networks: NetworkSpec,
        /// `[aae]`.
        aae: AaeSection,
    },
    /// Adversarial Variational Bayes.
    Avb {
        /// The networks (the encoder gets the noise inputs of `avb`).
        networks: NetworkSpec,
        /// `[avb]`.
        avb: AvbSection,
    },
    /// The Wasserstein autoencoder with an MMD penalty.
    Wae {
        /// The networks.
        networks: NetworkSpec,
        /// `[wae]`.
        wae: WaeSection,
    },
    /// VQ-VAE and its PixelCNN prior.
    Vqvae {
        /// `[vq]`.
        vq: VqSection,
        /// `[prior]`.
        prior: PriorSection,
    },
}

impl ModelSpec {
    /// The kind this spec is for.
    pub fn kind(&self) -> ModelKind {
        match self {
            Self::Vae { .. } => ModelKind::Vae,
            Self::Aae { .. } => ModelKind::Aae,
            Self::Avb { .. } => ModelKind::Avb,
            Self::Wae { .. } => ModelKind::Wae,
            Self::FactorVae { .. } => ModelKind::FactorVae,
            Self::Vqvae { .. } => ModelKind::Vqvae,
        }
    }

    /// The phases a run of this spec trains, in order, with `train.epochs` for the first: one
    /// named after the kind, and for a VQ-VAE then `prior` (`prior.epochs`).
    pub fn phases(&self, train_epochs: usize) -> Vec<Phase> {
        let first = Phase {
            name: self.kind().name(),
            epochs: train_epochs,
            learning_rate_key: "train.learning_rate",
        };
        match self {
            Self::Vqvae { prior, .. } => vec![
                first,
                Phase {
                    name: "prior",
                    epochs: prior.epochs,
                    learning_rate_key: "prior.learning_rate",
                },
            ],
            _ => vec![first],
        }
    }

    /// The `[model]` networks (`None` for VQ-VAE, whose networks are in `[vq]`).
    pub fn networks(&self) -> Option<&NetworkSpec> {
        match self {
            Self::Vae { networks, .. }
            | Self::Aae { networks, .. }
            | Self::Avb { networks, .. }
            | Self::Wae { networks, .. }
            | Self::FactorVae { networks, .. } => Some(networks),
            Self::Vqvae { .. } => None,
        }
    }
}

/// A config that passed validation: the only form [`crate::run_experiment`] accepts.
#[derive(Clone, Debug, PartialEq)]
pub struct ValidConfig {
    file: ConfigFile,
    device: DeviceSpec,
    spec: ModelSpec,
    log_likelihood: Option<LikelihoodEval>,
    exact_grid: Option<(i64, f64)>,
}

impl ValidConfig {
    /// The validated values (defaults filled in for the keys the kind reads).
    pub fn file(&self) -> &ConfigFile {
        &self.file
    }

    /// The configured device (before `GENAE_DEVICE` is applied).
    pub fn device(&self) -> DeviceSpec {
        self.device
    }

    /// The model kind and its settings.
    pub fn spec(&self) -> &ModelSpec {
        &self.spec
    }

    /// The model kind.
    pub fn kind(&self) -> ModelKind {
        self.spec.kind()
    }

    /// The `L_k` estimate's settings (`None` when `eval.log_likelihood_k = 0` or the kind has
    /// no such estimate).
    pub fn log_likelihood(&self) -> Option<LikelihoodEval> {
        self.log_likelihood
    }

    /// The exact `log p(x)` quadrature: cells per axis and half width (`None`: skip it).
    pub fn exact_log_likelihood(&self) -> Option<(i64, f64)> {
        self.exact_grid
    }

    /// The resolved config as TOML: every key the kind reads, defaults written out.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(&self.file).expect("a validated config always serialises")
    }

    /// Reads `path`, applies `overrides` (`key=value`, dotted keys) and validates.
    pub fn load(path: &Path, overrides: &[String]) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            error: source,
        })?;
        Self::from_toml_str(&text, &path.display().to_string(), overrides)
    }

    /// Parses `text` (named `source_name` in errors), applies `overrides` and validates.
    pub fn from_toml_str(text: &str, source_name: &str, overrides: &[String]) -> Result<Self> {
        parse_with_overrides::<ConfigFile>(text, source_name, overrides)?.validate()
    }
}

/// The `L_k` settings and the exact-quadrature grid `(cells, half width)`, where they apply.
pub(super) type EvalSettings = (Option<LikelihoodEval>, Option<(i64, f64)>);

pub(super) fn check(ok: bool, field: &'static str, reason: impl FnOnce() -> String) -> Result<()> {
    if ok {
        Ok(())
    } else {
        Err(ConfigError::Invalid {
            field,
            reason: reason(),
        })
    }
}

/// `Err` naming `field` when it is set although `kind` does not read it.
fn not_for<T>(value: &Option<T>, field: &'static str, kind: ModelKind) -> Result<()> {
    check(value.is_none(), field, || {
        format!("does not apply to model.kind = \"{kind}\"; remove it")
    })
}

/// `value` or its default where `applies`; otherwise `None`, after checking that it was not
/// set (or set to `off`, a value that only turns the feature off).
pub(super) fn for_kinds<T: PartialEq>(
    value: Option<T>,
    applies: bool,
    default: T,
    off: Option<T>,
    field: &'static str,
    kind: ModelKind,
) -> Result<Option<T>> {
    if applies {
        return Ok(Some(value.unwrap_or(default)));
    }
    match value {
        Some(v) if off.as_ref() != Some(&v) => Err(ConfigError::Invalid {
            field,
            reason: format!("does not apply to model.kind = \"{kind}\"; remove it"),
        }),
        _ => Ok(None),
    }
}

impl ConfigFile {
    /// Checks ranges, cross-field constraints and which keys the kind reads, naming the first
    /// bad field; fills in the defaults of the keys the kind reads.
    pub fn validate(mut self) -> Result<ValidConfig> {
        self.data.train_size = Some(self.data.train_limit());
        self.data.test_size = Some(self.data.test_limit());
        let name_ok = !self.name.is_empty()
            && self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        check(name_ok, "name", || {
            format!(
                "must be non-empty letters, digits, `-` or `_`, got {:?}",
                self.name
            )
        })?;
        let device = self
            .device
            .parse::<DeviceSpec>()
            .map_err(|e| ConfigError::Invalid {
                field: "device",
                reason: e.to_string(),
            })?;
        check(
            !self.output_dir.as_os_str().is_empty(),
            "output_dir",
            || "must not be empty".into(),
        )?;
        let builtin = self.validate_data()?;
        self.validate_train()?;
        let kind = self.model.kind;
        let spec = self.model_spec(builtin)?;
        let (log_likelihood, exact_grid) = self.validate_eval(&spec)?;
        check(
            !(kind == ModelKind::Vqvae && self.chain.enabled),
            "chain.enabled",
            || {
                "Markov chains need a continuous latent space; not for model.kind = \"vqvae\""
                    .into()
            },
        )?;
        self.chain.validate()?;
        Ok(ValidConfig {
            file: self,
            device,
            spec,
            log_likelihood,
            exact_grid,
        })
    }

    /// `[data]`; returns whether the data set is built in (shapes or the AVB toy).
    fn validate_data(&self) -> Result<bool> {
        let d = &self.data;
        let builtin = d.is_builtin();
        if d.path.is_some() {
            check(d.dataset == SHAPES, "data.dataset", || {
                format!(
                    "give either data.dataset (`{}`) or data.path, not both",
                    d.dataset
                )
            })?;
            check(d.dir.is_none(), "data.dir", || {
                "is where registry data sets are looked for; with data.path, remove it".into()
            })?;
            if let Some(f) = d.test_fraction {
                check(f > 0.0 && f < 1.0, "data.test_fraction", || {
                    format!("must be in (0, 1), got {f}")
                })?;
            }
            if let Some(s) = d.folder_size {
                check((8..=1024).contains(&s), "data.folder_size", || {
                    format!("must be in 8..=1024, got {s}")
                })?;
            }
        } else {
            for (field, set) in [
                ("data.format", d.format.is_some()),
                ("data.layout", d.layout.is_some()),
                ("data.folder_size", d.folder_size.is_some()),
                ("data.channels", d.channels.is_some()),
                ("data.test_fraction", d.test_fraction.is_some()),
                ("data.manifest", d.manifest.is_some()),
            ] {
                check(!set, field, || {
                    "applies to data given by data.path only; remove it".into()
                })?;
            }
        }
        if d.path.is_none() && !builtin {
            if let Some(dir) = &d.dir {
                check(dir.is_dir(), "data.dir", || {
                    format!("`{}` is not a folder", dir.display())
                })?;
            }
            let known = genae_data::registry::manifests().map_err(|e| ConfigError::Invalid {
                field: "data.dataset",
                reason: e.to_string(),
            })?;
            check(
                known.iter().any(|m| m.name == d.dataset),
                "data.dataset",
                || {
                    let names: Vec<&str> = [SHAPES, AVB_TOY]
                        .into_iter()
                        .chain(known.iter().map(|m| m.name.as_str()))
                        .collect();
                    format!("must be one of {}, got `{}`", names.join(", "), d.dataset)
                },
            )?;
        }
        let (train_size, test_size) = (d.train_limit(), d.test_limit());
        // Shapes: 0 is every point of the grid once.
        check(
            !builtin || train_size >= 1 || d.dataset == SHAPES,
            "data.train_size",
            || format!("must be at least 1 for {}, got {train_size}", d.dataset),
        )?;
        check(!builtin || test_size >= 1, "data.test_size", || {
            format!("must be at least 1 for {}, got {test_size}", d.dataset)
        })?;
        check(
            train_size == 0 || d.validation_size < train_size,
            "data.validation_size",
            || {
                format!(
                    "must be smaller than data.train_size ({train_size}), got {}",
                    d.validation_size
                )
            },
        )?;
        check((8..=256).contains(&d.image_size), "data.image_size", || {
            format!("must be in 8..=256, got {}", d.image_size)
        })?;
        for (field, v) in [
            ("data.n_scales", d.n_scales),
            ("data.n_rotations", d.n_rotations),
            ("data.n_positions", d.n_positions),
        ] {
            check(v >= 1, field, || format!("must be at least 1, got {v}"))?;
        }
        Ok(builtin)
    }

    /// The `[train]` keys every kind reads.
    fn validate_train(&self) -> Result<()> {
        let t = &self.train;
        let d = &self.data;
        check(t.epochs >= 1, "train.epochs", || {
            format!("must be at least 1, got {}", t.epochs)
        })?;
        let train_size = d.train_limit();
        let max_batch = if train_size == 0 {
            usize::MAX
        } else {
            train_size
        };
        check(
            (1..=max_batch).contains(&t.batch_size),
            "train.batch_size",
            || {
                format!(
                    "must be in 1..=data.train_size ({train_size}), got {}",
                    t.batch_size
                )
            },
        )?;
        check(
            t.learning_rate.is_finite() && t.learning_rate > 0.0,
            "train.learning_rate",
            || format!("must be a positive finite number, got {}", t.learning_rate),
        )
    }

    /// `[model]` and the kind's own sections into the typed spec.
    fn model_spec(&mut self, builtin: bool) -> Result<ModelSpec> {
        let kind = self.model.kind;
        // Sections of other kinds.
        if kind != ModelKind::Aae {
            not_for(&self.aae, "aae", kind)?;
        }
        if kind != ModelKind::Avb {
            not_for(&self.avb, "avb", kind)?;
        }
        if kind != ModelKind::Wae {
            not_for(&self.wae, "wae", kind)?;
        }
        if kind != ModelKind::FactorVae {
            not_for(&self.factor_vae, "factor_vae", kind)?;
        }
        if kind != ModelKind::Vqvae {
            not_for(&self.vq, "vq", kind)?;
            not_for(&self.prior, "prior", kind)?;
        }
        let vae_only = self.vae_train_keys(kind)?;
        if kind == ModelKind::Vqvae {
            let m = &self.model;
            not_for(&m.latent_dim, "model.latent_dim", kind)?;
            not_for(&m.hidden, "model.hidden", kind)?;
            not_for(&m.activation, "model.activation", kind)?;
            not_for(&m.architecture, "model.architecture", kind)?;
            not_for(&m.likelihood, "model.likelihood", kind)?;
            check(
                self.data.binarize == Binarization::None,
                "data.binarize",
                || {
                    "must be \"none\" for model.kind = \"vqvae\" (it models 8-bit grey levels)"
                        .into()
                },
            )?;
            let vq = self.vq.get_or_insert_with(VqSection::default).clone();
            vq.validate(builtin.then_some(self.data.image_size as i64))?;
            let prior = self.prior.get_or_insert_with(PriorSection::default).clone();
            prior.validate(vq.quantizer.num_codes)?;
            return Ok(ModelSpec::Vqvae { vq, prior });
        }
        let networks = self.networks()?;
        Ok(match kind {
            ModelKind::Vae => {
                let (objective, kl_warmup_steps, capacity) =
                    vae_only.expect("filled in for the VAE");
                ModelSpec::Vae {
                    networks,
                    objective,
                    kl_warmup_steps,
                    capacity,
                }
            }
            ModelKind::Aae => {
                let aae = self.aae.get_or_insert_with(AaeSection::default).clone();
                aae.validate(networks.latent_dim)?;
                ModelSpec::Aae { networks, aae }
            }
            ModelKind::Avb => {
                let avb = self.avb.get_or_insert_with(AvbSection::default).clone();
                avb.validate()?;
                check(
                    networks.architecture == Architecture::Mlp,
                    "model.architecture",
                    || "AVB's implicit encoder is an MLP: use `{ kind = \"mlp\" }`".into(),
                )?;
                ModelSpec::Avb { networks, avb }
            }
            ModelKind::Wae => {
                let wae = self.wae.get_or_insert_with(WaeSection::default).clone();
                wae.validate()?;
                ModelSpec::Wae { networks, wae }
            }
            ModelKind::FactorVae => {
                let factor_vae = self.factor_vae.get_or_insert_with(Default::default).clone();
                factor_vae.validate()?;
                ModelSpec::FactorVae {
                    networks,
                    factor_vae,
                }
            }
            ModelKind::Vqvae => unreachable!("returned above"),
        })
    }

    /// `[model]`'s networks with their defaults filled in.
    fn networks(&mut self) -> Result<NetworkSpec> {
        let m = &mut self.model;
        let latent_dim = *m.latent_dim.get_or_insert(10);
        let hidden = m.hidden.get_or_insert_with(|| vec![512, 256]).clone();
        let activation = *m.activation.get_or_insert(Activation::Relu);
        let architecture = m.architecture.get_or_insert(Architecture::Mlp).clone();
        let likelihood = m.likelihood.get_or_insert(Likelihood::Bernoulli).clone();
        check(
            (1..=65_536).contains(&latent_dim),
            "model.latent_dim",
            || format!("must be in 1..=65536, got {latent_dim}"),
        )?;
        check(hidden.iter().all(|&w| w >= 1), "model.hidden", || {
            format!("widths must be at least 1, got {hidden:?}")
        })?;
        check(
            !(hidden.is_empty() && architecture == Architecture::Mlp),
            "model.hidden",
            || "an MLP needs at least one hidden layer (`[]` would be a linear model)".into(),
        )?;
        Ok(NetworkSpec {
            latent_dim,
            hidden,
            activation,
            architecture,
            likelihood,
        })
    }

    /// The VAE's `[train]` keys: `(objective, kl_warmup_steps)` for the VAE, `None` (after
    /// checking that none is set) for the other kinds.
    fn vae_train_keys(
        &mut self,
        kind: ModelKind,
    ) -> Result<Option<(Objective, u64, Option<CapacitySchedule>)>> {
        let vae = kind == ModelKind::Vae;
        let t = &mut self.train;
        let objective = for_kinds(
            t.objective,
            vae,
            ObjectiveKind::Elbo,
            None,
            "train.objective",
            kind,
        )?;
        let iwae_k = for_kinds(t.iwae_k, vae, 5, None, "train.iwae_k", kind)?;
        let corruption = for_kinds(
            t.corruption.take(),
            vae,
            Corruption::None,
            Some(Corruption::None),
            "train.corruption",
            kind,
        )?;
        let copies = for_kinds(t.dvae_copies, vae, 1, None, "train.dvae_copies", kind)?;
        let samples = for_kinds(t.dvae_samples, vae, 1, None, "train.dvae_samples", kind)?;
        let beta = for_kinds(t.beta, vae, 1.0, None, "train.beta", kind)?;
        let free_bits = for_kinds(t.free_bits, vae, 0.0, Some(0.0), "train.free_bits", kind)?;
        let warmup = for_kinds(
            t.kl_warmup_steps,
            vae,
            0,
            Some(0),
            "train.kl_warmup_steps",
            kind,
        )?;
        t.objective = objective;
        t.iwae_k = iwae_k;
        t.corruption = corruption.clone();
        t.dvae_copies = copies;
        t.dvae_samples = samples;
        t.beta = beta;
        t.free_bits = free_bits;
        t.kl_warmup_steps = warmup;
        if !vae {
            return Ok(None);
        }
        let (iwae_k, copies, samples) = (iwae_k.unwrap(), copies.unwrap(), samples.unwrap());
        let (beta, free_bits) = (beta.unwrap(), free_bits.unwrap());
        let corruption = corruption.unwrap();
        check(iwae_k >= 1, "train.iwae_k", || {
            format!("must be at least 1, got {iwae_k}")
        })?;
        check(copies >= 1, "train.dvae_copies", || {
            format!("must be at least 1, got {copies}")
        })?;
        check(samples >= 1, "train.dvae_samples", || {
            format!("must be at least 1, got {samples}")
        })?;
        if let Err(e) = corruption.validate() {
            return Err(ConfigError::Invalid {
                field: "train.corruption",
                reason: e.to_string(),
            });
        }
        check(beta.is_finite() && beta >= 0.0, "train.beta", || {
            format!("must be a finite number ≥ 0, got {beta}")
        })?;
        check(
            free_bits.is_finite() && free_bits >= 0.0,
            "train.free_bits",
            || format!("must be a finite number ≥ 0, got {free_bits}"),
        )?;
        let objective = objective.unwrap();
        if let Some((objective, capacity)) =
            super::disentangle::vae_objective(self, objective, beta)?
        {
            return Ok(Some((objective, warmup.unwrap(), capacity)));
        }
        let objective = match objective {
            ObjectiveKind::Elbo => Objective::Elbo { beta, free_bits },
            ObjectiveKind::Iwae => Objective::Iwae { k: iwae_k },
            ObjectiveKind::Dvae => Objective::Dvae {
                corruption,
                copies,
                samples,
            },
            _ => unreachable!("the disentangling objectives returned above"),
        };
        Ok(Some((objective, warmup.unwrap(), None)))
    }
}
