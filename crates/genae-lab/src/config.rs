//! Experiment configs: the TOML file format, `--set` overrides, and validation into
//! [`ValidConfig`], the only form the engine accepts.

use std::fmt;
use std::path::{Path, PathBuf};

use genae_data::transforms::Binarization;
use genae_tensor::{Corruption, DeviceSpec};
use genae_zoo::{Activation, Architecture, Likelihood, VaeConfig};
use serde::{Deserialize, Serialize};

pub use crate::aae_run::AaeSection;
pub use crate::avb_run::AvbSection;
use crate::chains::ChainSection;
use crate::vq_config::{PriorSection, VqSection};

/// A config problem, always naming the file or field concerned.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file could not be read.
    #[error("cannot read config `{path}`: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML.
    #[error("config `{source_name}` is not valid TOML: {message}")]
    Syntax {
        /// The file (or `<string>`).
        source_name: String,
        /// The parser's message, with line and column.
        message: String,
    },
    /// A key that does not exist or a value of the wrong type.
    #[error("config `{source_name}`, field `{field}`: {message}")]
    Field {
        /// The file (or `<string>`).
        source_name: String,
        /// The dotted path of the field (the enclosing table for an unknown key).
        field: String,
        /// What was wrong.
        message: String,
    },
    /// A config name that is not among the shipped ones.
    #[error("no shipped config `{name}` (known: {known})")]
    UnknownConfig {
        /// The name asked for.
        name: String,
        /// The shipped names, comma-separated.
        known: String,
    },
    /// A value of the right type outside its allowed range.
    #[error("config field `{field}`: {reason}")]
    Invalid {
        /// The dotted path of the field.
        field: &'static str,
        /// What was expected and what was found.
        reason: String,
    },
    /// A malformed `--set key=value` argument.
    #[error("override `{arg}`: {reason}")]
    Override {
        /// The argument as given.
        arg: String,
        /// What was wrong.
        reason: String,
    },
}

/// Result type of config handling.
pub type Result<T> = std::result::Result<T, ConfigError>;

/// The name of the built-in procedural data set (everything else comes from the registry).
pub const SHAPES: &str = "shapes";

/// The built-in toy data set of AVB's Table 1: the four 2×2 images with one pixel on
/// (`data.train_size` drawn by `data.seed`, a balanced test set of `data.test_size`).
pub const AVB_TOY: &str = "avb-toy";

/// The models the engine can train.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelKind {
    /// The VAE of genae-zoo (Gaussian encoder, Bernoulli decoder).
    Vae,
    /// The adversarial autoencoder of genae-zoo (settings in `[aae]`).
    Aae,
    /// VQ-VAE (van den Oord et al., 2017): the networks of `[vq]`, the straight-through
    /// quantizer of genae-samplers, then a gated PixelCNN prior over the code grids (`[prior]`).
    Vqvae,
    /// Adversarial Variational Bayes of genae-zoo (settings in `[avb]`).
    Avb,
}

impl fmt::Display for ModelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Vae => f.write_str("vae"),
            Self::Aae => f.write_str("aae"),
            Self::Vqvae => f.write_str("vqvae"),
            Self::Avb => f.write_str("avb"),
        }
    }
}

/// What the optimiser minimises.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ObjectiveKind {
    /// The negative ELBO (with `beta`, `free_bits` and KL warm-up).
    Elbo,
    /// The negative importance-weighted bound `L_k` with `iwae_k` samples (Burda et al., 2016).
    Iwae,
    /// The negative denoising bound `L_dvae` (Im et al., 2017): the encoder sees inputs
    /// corrupted by `corruption` (`dvae_copies` copies, `dvae_samples` codes each), the decoder
    /// scores the clean ones.
    Dvae,
}

/// An experiment config as written in TOML. Every field has a default, so a file only lists
/// what it changes; unknown keys are errors.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConfigFile {
    /// Run name: the run directory is `<output_dir>/<name>-<UTC timestamp>`.
    pub name: String,
    /// Seed of libtorch's generators (initialisation, sampling, shuffling).
    pub seed: u64,
    /// `auto`, `cpu`, `cuda` or `cuda:N`; the `GENAE_DEVICE` environment variable wins.
    pub device: String,
    /// Folder that receives run directories (relative to the working directory).
    pub output_dir: PathBuf,
    /// libtorch intra-op threads (0: libtorch's default, one per core).
    pub threads: usize,
    /// The data set.
    pub data: DataSection,
    /// The model.
    pub model: ModelSection,
    /// Optimisation.
    pub train: TrainSection,
    /// Evaluation and pictures.
    pub eval: EvalSection,
    /// The adversarial autoencoder's prior, encoder and discriminator (`model.kind = "aae"`).
    #[serde(skip_serializing_if = "AaeSection::is_default")]
    pub aae: AaeSection,
    /// Adversarial Variational Bayes: noise, discriminator, step ratio, adaptive contrast
    /// (`model.kind = "avb"`).
    #[serde(skip_serializing_if = "AvbSection::is_default")]
    pub avb: AvbSection,
    /// Markov-chain sampling from the trained model, measured (off unless `enabled`).
    pub chain: ChainSection,
    /// VQ-VAE networks and quantizer (`model.kind = "vqvae"` only; defaults filled in then).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vq: Option<VqSection>,
    /// The VQ-VAE's PixelCNN prior (`model.kind = "vqvae"` only; defaults filled in then).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prior: Option<PriorSection>,
}

/// `[data]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DataSection {
    /// `shapes` (generated, the default), `avb-toy` (built in) or a registry name (`fashion-mnist`, `mnist`, …; see
    /// `genae dataset list`).
    pub dataset: String,
    /// Folder to look in first for a registry data set (before `GENAE_DATA_DIR`,
    /// `/usr/share/datasets/<name>` and the user cache).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dir: Option<PathBuf>,
    /// `none` (grey levels as Bernoulli probabilities), `static` (one seeded draw) or `dynamic`
    /// (a fresh draw of the training set every epoch; the test set drawn once).
    pub binarize: Binarization,
    /// Examples held out from the training set for validation (0: none).
    pub validation_size: usize,
    /// Seed of the shapes generator, the binarisation draws, the validation split and the batch
    /// order (kept apart from `seed` so models can be compared on the same data).
    pub seed: u64,
    /// Shapes: training examples. Registry data sets: at most this many (0: all).
    pub train_size: usize,
    /// Shapes: test examples. Registry data sets: at most this many (0: all).
    pub test_size: usize,
    /// Shapes: image side in pixels.
    pub image_size: usize,
    /// Shapes: number of scale values.
    pub n_scales: usize,
    /// Shapes: number of rotation values.
    pub n_rotations: usize,
    /// Shapes: number of positions along each axis.
    pub n_positions: usize,
}

/// `[model]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelSection {
    /// Which model.
    pub kind: ModelKind,
    /// Latent dimensions.
    pub latent_dim: i64,
    /// Encoder hidden widths (the decoder mirrors them).
    pub hidden: Vec<i64>,
    /// Nonlinearity.
    pub activation: Activation,
    /// Encoder and decoder networks: `{ kind = "mlp" }` (default) or
    /// `{ kind = "conv", channels = [32, 64], residual_blocks = 1 }` (28×28, 32×32, 64×64).
    pub architecture: Architecture,
    /// The decoder's `p(x|z)`: `{ kind = "bernoulli" }` (default), `{ kind = "gaussian",
    /// variance = 0.1 }`, `{ kind = "gaussian_learned" }`, `{ kind = "discretized_logistic" }`.
    pub likelihood: Likelihood,
}

/// `[train]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainSection {
    /// Passes over the training set.
    pub epochs: usize,
    /// Examples per step.
    pub batch_size: usize,
    /// Adam learning rate.
    pub learning_rate: f64,
    /// Leave out the last, smaller batch of each epoch.
    pub drop_last: bool,
    /// `elbo`, `iwae` or `dvae`.
    pub objective: ObjectiveKind,
    /// Importance samples per example for `objective = "iwae"`.
    pub iwae_k: i64,
    /// The corruption of `objective = "dvae"`, e.g. `{ kind = "salt_and_pepper", p = 0.1 }`,
    /// `{ kind = "gaussian", sigma = 0.2 }`, `{ kind = "masking", p = 0.3 }` or a
    /// `{ kind = "chain", steps = [...] }` of them (default: none).
    pub corruption: Corruption,
    /// Corrupted copies per example (`M`) for `objective = "dvae"`.
    pub dvae_copies: i64,
    /// Codes per corrupted copy (`K`) for `objective = "dvae"`.
    pub dvae_samples: i64,
    /// Weight of the KL term (β-VAE; 1 is the ELBO).
    pub beta: f64,
    /// Free bits λ (nats per latent dimension; 0: off).
    pub free_bits: f64,
    /// Steps over which the KL weight rises linearly from 0 to `beta` (0: no warm-up).
    pub kl_warmup_steps: u64,
    /// Write `checkpoint.safetensors` (parameters, Adam state, epoch, step) every this many
    /// epochs and after the last (0: never; then the run cannot be resumed).
    pub checkpoint_every: usize,
}

/// `[eval]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EvalSection {
    /// Examples per evaluation batch.
    pub batch_size: usize,
    /// Prior samples drawn into `samples.png`.
    pub samples: usize,
    /// Test images (and their reconstructions) in `reconstructions.png`.
    pub reconstructions: usize,
    /// Importance samples of the final log-likelihood estimate `L_k` (0: skip it).
    pub log_likelihood_k: i64,
    /// Test images the log-likelihood is estimated on (0: the whole test set).
    pub log_likelihood_images: usize,
    /// Samples per example drawn at once while estimating `L_k` (bounds memory).
    pub log_likelihood_chunk: i64,
    /// Pairs of test images in `interpolations.png` (0: no picture).
    pub interpolations: usize,
    /// Test codes drawn in `latents.png` (0: no picture).
    pub latent_points: usize,
    /// Every this many epochs, estimate `L_k` mid-run (logged in `metrics.jsonl`) and save
    /// `model.safetensors`, so a long run that is stopped early still says where it got
    /// (0: only at the end).
    pub every: usize,
    /// Cells per latent axis of the quadrature grid for the exact `log p(x)`
    /// (`test.exact_log_likelihood`; latent spaces of at most 3 dimensions; 0: skip it).
    pub exact_log_likelihood_grid: i64,
    /// The grid covers `[−w, w]^d` of the `N(0, I)` prior.
    pub exact_log_likelihood_half_width: f64,
}

impl Default for ConfigFile {
    fn default() -> Self {
        Self {
            name: "default".into(),
            seed: 0,
            device: "auto".into(),
            output_dir: "runs".into(),
            threads: 0,
            data: DataSection::default(),
            model: ModelSection::default(),
            train: TrainSection::default(),
            eval: EvalSection::default(),
            aae: AaeSection::default(),
            avb: AvbSection::default(),
            chain: ChainSection::default(),
            vq: None,
            prior: None,
        }
    }
}

impl Default for DataSection {
    fn default() -> Self {
        Self {
            dataset: SHAPES.into(),
            dir: None,
            binarize: Binarization::None,
            validation_size: 0,
            seed: 0,
            train_size: genae_data::DEFAULT_N_TRAIN,
            test_size: genae_data::DEFAULT_N_TEST,
            image_size: 32,
            n_scales: 6,
            n_rotations: 40,
            n_positions: 16,
        }
    }
}

impl Default for ModelSection {
    fn default() -> Self {
        Self {
            kind: ModelKind::Vae,
            latent_dim: 10,
            hidden: vec![512, 256],
            activation: Activation::Relu,
            architecture: Architecture::Mlp,
            likelihood: Likelihood::Bernoulli,
        }
    }
}

impl Default for TrainSection {
    fn default() -> Self {
        Self {
            epochs: 30,
            batch_size: 100,
            learning_rate: 1e-3,
            drop_last: false,
            objective: ObjectiveKind::Elbo,
            iwae_k: 5,
            corruption: Corruption::None,
            dvae_copies: 1,
            dvae_samples: 1,
            beta: 1.0,
            free_bits: 0.0,
            kl_warmup_steps: 0,
            checkpoint_every: 1,
        }
    }
}

impl Default for EvalSection {
    fn default() -> Self {
        Self {
            batch_size: 1000,
            samples: 64,
            reconstructions: 16,
            log_likelihood_k: 5000,
            log_likelihood_images: 1000,
            log_likelihood_chunk: 1280,
            interpolations: 4,
            latent_points: 2000,
            every: 0,
            exact_log_likelihood_grid: 0,
            exact_log_likelihood_half_width: 6.0,
        }
    }
}

/// A config that passed validation: the only form [`crate::run_experiment`] accepts.
#[derive(Clone, Debug, PartialEq)]
pub struct ValidConfig {
    file: ConfigFile,
    device: DeviceSpec,
}

impl ValidConfig {
    /// The validated values (defaults filled in).
    pub fn file(&self) -> &ConfigFile {
        &self.file
    }

    /// The configured device (before `GENAE_DEVICE` is applied).
    pub fn device(&self) -> DeviceSpec {
        self.device
    }

    /// The model config for genae-zoo, with the input shape `[C, H, W]` of the data set.
    pub fn vae_config(&self, image_shape: [i64; 3]) -> VaeConfig {
        let m = &self.file.model;
        VaeConfig {
            input_dim: image_shape.iter().product(),
            input_shape: Some(image_shape),
            hidden: m.hidden.clone(),
            latent_dim: m.latent_dim,
            activation: m.activation,
            architecture: m.architecture.clone(),
            likelihood: m.likelihood.clone(),
        }
    }

    /// The resolved config as TOML, every default written out.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(&self.file).expect("a validated config always serialises")
    }

    /// Reads `path`, applies `overrides` (`key=value`, dotted keys) and validates.
    pub fn load(path: &Path, overrides: &[String]) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_toml_str(&text, &path.display().to_string(), overrides)
    }

    /// Parses `text` (named `source_name` in errors), applies `overrides` and validates.
    pub fn from_toml_str(text: &str, source_name: &str, overrides: &[String]) -> Result<Self> {
        parse_with_overrides::<ConfigFile>(text, source_name, overrides)?.validate()
    }
}

impl ConfigFile {
    /// Checks ranges and cross-field constraints once, naming the first bad field.
    pub fn validate(mut self) -> Result<ValidConfig> {
        fn check(ok: bool, field: &'static str, reason: impl FnOnce() -> String) -> Result<()> {
            if ok {
                Ok(())
            } else {
                Err(ConfigError::Invalid {
                    field,
                    reason: reason(),
                })
            }
        }
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
        let d = &self.data;
        let shapes = d.dataset == SHAPES || d.dataset == AVB_TOY;
        if !shapes {
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
        check(!shapes || d.train_size >= 1, "data.train_size", || {
            format!("must be at least 1 for shapes, got {}", d.train_size)
        })?;
        check(!shapes || d.test_size >= 1, "data.test_size", || {
            format!("must be at least 1 for shapes, got {}", d.test_size)
        })?;
        check(
            d.train_size == 0 || d.validation_size < d.train_size,
            "data.validation_size",
            || {
                format!(
                    "must be smaller than data.train_size ({}), got {}",
                    d.train_size, d.validation_size
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
        let m = &self.model;
        check(m.latent_dim >= 1, "model.latent_dim", || {
            format!("must be at least 1, got {}", m.latent_dim)
        })?;
        check(m.hidden.iter().all(|&w| w >= 1), "model.hidden", || {
            format!("widths must be at least 1, got {:?}", m.hidden)
        })?;
        let t = &self.train;
        check(t.epochs >= 1, "train.epochs", || {
            format!("must be at least 1, got {}", t.epochs)
        })?;
        let max_batch = if d.train_size == 0 {
            usize::MAX
        } else {
            d.train_size
        };
        check(
            (1..=max_batch).contains(&t.batch_size),
            "train.batch_size",
            || {
                format!(
                    "must be in 1..=data.train_size ({}), got {}",
                    d.train_size, t.batch_size
                )
            },
        )?;
        check(
            t.learning_rate.is_finite() && t.learning_rate > 0.0,
            "train.learning_rate",
            || format!("must be a positive finite number, got {}", t.learning_rate),
        )?;
        check(t.iwae_k >= 1, "train.iwae_k", || {
            format!("must be at least 1, got {}", t.iwae_k)
        })?;
        check(t.dvae_copies >= 1, "train.dvae_copies", || {
            format!("must be at least 1, got {}", t.dvae_copies)
        })?;
        check(t.dvae_samples >= 1, "train.dvae_samples", || {
            format!("must be at least 1, got {}", t.dvae_samples)
        })?;
        if let Err(e) = t.corruption.validate() {
            return Err(ConfigError::Invalid {
                field: "train.corruption",
                reason: e.to_string(),
            });
        }
        check(t.beta.is_finite() && t.beta >= 0.0, "train.beta", || {
            format!("must be a finite number ≥ 0, got {}", t.beta)
        })?;
        check(
            t.free_bits.is_finite() && t.free_bits >= 0.0,
            "train.free_bits",
            || format!("must be a finite number ≥ 0, got {}", t.free_bits),
        )?;
        if m.kind == ModelKind::Aae {
            self.aae.validate(m.latent_dim)?;
        }
        if m.kind == ModelKind::Avb {
            self.avb.validate()?;
            check(
                m.architecture == Architecture::Mlp,
                "model.architecture",
                || "AVB's implicit encoder is an MLP: use `{ kind = \"mlp\" }`".into(),
            )?;
        }
        let e = &self.eval;
        check(e.log_likelihood_k >= 0, "eval.log_likelihood_k", || {
            format!(
                "must be ≥ 0 (0 skips the estimate), got {}",
                e.log_likelihood_k
            )
        })?;
        check(
            e.exact_log_likelihood_grid >= 0
                && (e.exact_log_likelihood_grid == 0 || m.latent_dim <= 3),
            "eval.exact_log_likelihood_grid",
            || {
                format!(
                    "must be ≥ 0, and 0 unless model.latent_dim ≤ 3 (got {} with latent_dim {})",
                    e.exact_log_likelihood_grid, m.latent_dim
                )
            },
        )?;
        check(
            e.exact_log_likelihood_half_width.is_finite()
                && e.exact_log_likelihood_half_width > 0.0,
            "eval.exact_log_likelihood_half_width",
            || {
                format!(
                    "must be positive and finite, got {}",
                    e.exact_log_likelihood_half_width
                )
            },
        )?;
        check(
            e.log_likelihood_chunk >= 1,
            "eval.log_likelihood_chunk",
            || format!("must be at least 1, got {}", e.log_likelihood_chunk),
        )?;
        check(e.interpolations <= 32, "eval.interpolations", || {
            format!("must be at most 32, got {}", e.interpolations)
        })?;
        check(e.batch_size >= 1, "eval.batch_size", || {
            format!("must be at least 1, got {}", e.batch_size)
        })?;
        check((1..=1024).contains(&e.samples), "eval.samples", || {
            format!("must be in 1..=1024, got {}", e.samples)
        })?;
        let max_reconstructions = if d.test_size == 0 {
            256
        } else {
            d.test_size.min(256)
        };
        check(
            (1..=max_reconstructions).contains(&e.reconstructions),
            "eval.reconstructions",
            || {
                format!(
                    "must be in 1..={max_reconstructions}, got {}",
                    e.reconstructions
                )
            },
        )?;
        self.chain.validate()?;
        match self.model.kind {
            ModelKind::Vae | ModelKind::Aae | ModelKind::Avb => {
                check(self.vq.is_none(), "vq", || {
                    "applies only to model.kind = \"vqvae\"".into()
                })?;
                check(self.prior.is_none(), "prior", || {
                    "applies only to model.kind = \"vqvae\"".into()
                })?;
            }
            ModelKind::Vqvae => {
                check(d.binarize == Binarization::None, "data.binarize", || {
                    "must be \"none\" for model.kind = \"vqvae\" (it models 8-bit grey levels)"
                        .into()
                })?;
                let vq = self.vq.get_or_insert_with(VqSection::default);
                vq.validate(shapes.then_some(d.image_size as i64))?;
                let num_codes = vq.quantizer.num_codes;
                self.prior
                    .get_or_insert_with(PriorSection::default)
                    .validate(num_codes)?;
            }
        }
        Ok(ValidConfig { file: self, device })
    }
}

/// Parses TOML `text` (named `source_name` in errors), applies `--set` style `overrides` and
/// deserialises it, naming the file and the dotted field of the first problem.
pub(crate) fn parse_with_overrides<T: serde::de::DeserializeOwned>(
    text: &str,
    source_name: &str,
    overrides: &[String],
) -> Result<T> {
    let mut table: toml::Table =
        text.parse()
            .map_err(|e: toml::de::Error| ConfigError::Syntax {
                source_name: source_name.to_string(),
                message: e.to_string().trim().to_string(),
            })?;
    for arg in overrides {
        apply_override(&mut table, arg)?;
    }
    serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| ConfigError::Field {
        source_name: source_name.to_string(),
        field: e.path().to_string(),
        message: e.inner().to_string().trim().replace('\n', " "),
    })
}

/// Applies one `section.key=value` override to a parsed TOML table. The value is read as a TOML
/// value (`3`, `1e-3`, `true`, `[256, 128]`, `"text"`); anything that is not valid TOML is taken
/// as a plain string, so `--set model.activation=tanh` works unquoted.
pub fn apply_override(table: &mut toml::Table, arg: &str) -> Result<()> {
    let fail = |reason: String| ConfigError::Override {
        arg: arg.to_string(),
        reason,
    };
    let (key, raw) = arg
        .split_once('=')
        .ok_or_else(|| fail("expected `section.key=value`".into()))?;
    let path: Vec<&str> = key.trim().split('.').collect();
    if path.iter().any(|p| p.is_empty()) {
        return Err(fail(format!("`{key}` is not a dotted key")));
    }
    let raw = raw.trim();
    let value = format!("v = {raw}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_string()));
    let (last, parents) = path.split_last().expect("split yields at least one part");
    let mut current = table;
    for (depth, part) in parents.iter().enumerate() {
        let entry = current
            .entry(part.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        current = entry.as_table_mut().ok_or_else(|| {
            fail(format!(
                "`{}` is a value, not a section",
                path[..=depth].join(".")
            ))
        })?;
    }
    current.insert(last.to_string(), value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str, overrides: &[&str]) -> Result<ValidConfig> {
        let overrides: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
        ValidConfig::from_toml_str(text, "test.toml", &overrides)
    }

    #[test]
    fn empty_file_gives_the_defaults() {
        let config = parse("", &[]).unwrap();
        assert_eq!(config.file(), &ConfigFile::default());
        assert_eq!(config.device(), DeviceSpec::Auto);
    }

    #[test]
    fn unknown_key_is_named() {
        let err = parse("[train]\nepochs = 3\nlearnig_rate = 0.1\n", &[])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("learnig_rate") && err.contains("`train`"),
            "{err}"
        );
        let err = parse("colour = 1\n", &[]).unwrap_err().to_string();
        assert!(err.contains("colour"), "{err}");
    }

    #[test]
    fn wrong_type_is_named_with_its_path() {
        let err = parse("[train]\nepochs = \"ten\"\n", &[]).unwrap_err();
        assert!(
            matches!(&err, ConfigError::Field { field, .. } if field == "train.epochs"),
            "{err}"
        );
        assert!(err.to_string().contains("train.epochs"));
        let err = parse("[model]\nactivation = \"swish\"\n", &[])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("model.activation") && err.contains("relu"),
            "{err}"
        );
    }

    #[test]
    fn out_of_range_values_are_named() {
        for (text, field) in [
            ("[train]\nlearning_rate = -1.0\n", "train.learning_rate"),
            ("[train]\nepochs = 0\n", "train.epochs"),
            (
                "[data]\ntrain_size = 10\n[train]\nbatch_size = 11\n",
                "train.batch_size",
            ),
            ("[model]\nlatent_dim = 0\n", "model.latent_dim"),
            ("device = \"gpu\"\n", "device"),
        ] {
            let err = parse(text, &[]).unwrap_err();
            assert!(
                matches!(&err, ConfigError::Invalid { field: f, .. } if *f == field),
                "{text}: {err}"
            );
            assert!(err.to_string().contains(field));
        }
    }

    #[test]
    fn datasets_are_checked_against_the_registry() {
        let err = parse("[data]\ndataset = \"fashion_mnist\"\n", &[])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("data.dataset") && err.contains("fashion-mnist") && err.contains("shapes"),
            "{err}"
        );
        let config = parse(
            "[data]\ndataset = \"fashion-mnist\"\nbinarize = \"dynamic\"\ntrain_size = 0\n",
            &[],
        )
        .unwrap();
        assert_eq!(config.file().data.binarize, Binarization::Dynamic);
        let err = parse("[data]\nbinarize = \"sometimes\"\n", &[])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("data.binarize") && err.contains("dynamic"),
            "{err}"
        );
    }

    #[test]
    fn overrides_reach_the_resolved_config() {
        let config = parse(
            "[train]\nepochs = 3\n",
            &[
                "train.epochs=5",
                "train.learning_rate=2e-4",
                "model.activation=tanh",
                "model.hidden=[64, 32]",
                "name=quick",
            ],
        )
        .unwrap();
        let f = config.file();
        assert_eq!(f.train.epochs, 5);
        assert_eq!(f.train.learning_rate, 2e-4);
        assert_eq!(f.model.activation, Activation::Tanh);
        assert_eq!(f.model.hidden, vec![64, 32]);
        assert_eq!(f.name, "quick");
        let resolved: ConfigFile = toml::from_str(&config.to_toml()).unwrap();
        assert_eq!(&resolved, f);
    }

    #[test]
    fn bad_overrides_are_reported() {
        let err = parse("", &["train.epochs"]).unwrap_err().to_string();
        assert!(
            err.contains("train.epochs") && err.contains("key=value"),
            "{err}"
        );
        let err = parse("seed = 3\n", &["seed.x=1"]).unwrap_err().to_string();
        assert!(err.contains("`seed` is a value"), "{err}");
        let err = parse("", &["train.epochz=1"]).unwrap_err().to_string();
        assert!(err.contains("epochz"), "{err}");
    }

    #[test]
    fn syntax_errors_name_the_file() {
        let err = parse("[train\n", &[]).unwrap_err().to_string();
        assert!(err.contains("test.toml"), "{err}");
    }
}
