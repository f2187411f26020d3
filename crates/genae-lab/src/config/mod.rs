//! Experiment configs: the TOML file format ([`ConfigFile`] and its sections), `--set`
//! overrides, and validation into [`ValidConfig`] with its typed [`ModelSpec`], the only form
//! the trainer accepts.
//!
//! Keys that only some model kinds use are `Option`s in the file format: validation fills in
//! their defaults for the kinds that use them and rejects them, naming the key, for the kinds
//! that do not (a value that only turns something off, such as `eval.log_likelihood_k = 0`,
//! is accepted everywhere). The resolved `config.toml` of a run therefore lists exactly the
//! keys its kind reads.

mod chain;
mod disentangle;
mod sections;
mod valid;
mod valid_eval;
mod vq;

use std::fmt;
use std::path::PathBuf;

use genae_data::transforms::Binarization;
use genae_tensor::Corruption;
use genae_zoo::{Activation, Architecture, Likelihood};
use serde::{Deserialize, Serialize};

pub use crate::error::ConfigError;
pub use chain::{ChainSection, ClassifierSection, MAX_CHAIN_STEPS};
pub use disentangle::{
    BetaTcSection, CapacitySection, DipSection, DisentanglementEval, FactorVaeSection, TcEstimator,
};
pub use sections::{AaeSection, AvbSection, WaeKernel, WaeSection};
pub use valid::{LikelihoodEval, ModelSpec, NetworkSpec, Phase, ValidConfig};
pub use vq::{PriorSection, VqSection};

/// Result type of config handling.
pub type Result<T> = std::result::Result<T, ConfigError>;

/// The name of the built-in procedural data set (everything else comes from the registry).
pub const SHAPES: &str = "shapes";

/// The built-in toy data set of AVB's Table 1: the four 2×2 images with one pixel on
/// (`data.train_size` drawn by `data.seed`, a balanced test set of `data.test_size`).
pub const AVB_TOY: &str = "avb-toy";

/// The models the trainer can train.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelKind {
    /// The VAE of genae-zoo (Gaussian encoder; objective `train.objective`).
    Vae,
    /// The adversarial autoencoder of genae-zoo (settings in `[aae]`).
    Aae,
    /// VQ-VAE (van den Oord et al., 2017): the networks of `[vq]`, the straight-through
    /// quantizer of genae-samplers, then a gated PixelCNN prior over the code grids (`[prior]`).
    Vqvae,
    /// Adversarial Variational Bayes of genae-zoo (settings in `[avb]`).
    Avb,
    /// The Wasserstein autoencoder with an MMD penalty (settings in `[wae]`).
    Wae,
    /// FactorVAE (Kim & Mnih, 2018): the VAE of genae-zoo plus a total-correlation
    /// discriminator (settings in `[factor_vae]`).
    FactorVae,
}

impl ModelKind {
    /// Every kind, in the order the docs list them.
    pub const ALL: [ModelKind; 6] = [
        Self::Vae,
        Self::Aae,
        Self::Avb,
        Self::Wae,
        Self::FactorVae,
        Self::Vqvae,
    ];

    /// The name used in configs and summaries.
    pub fn name(self) -> &'static str {
        match self {
            Self::Vae => "vae",
            Self::Aae => "aae",
            Self::Vqvae => "vqvae",
            Self::Avb => "avb",
            Self::Wae => "wae",
            Self::FactorVae => "factor_vae",
        }
    }
}

impl fmt::Display for ModelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a VAE's optimiser minimises.
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
    /// The annealed-capacity β-VAE (Burgess et al., 2018; settings in `[capacity]`).
    AnnealedCapacity,
    /// β-TC-VAE (Chen et al., 2018): `train.beta` weighs the total correlation (settings in
    /// `[beta_tc]`).
    BetaTc,
    /// DIP-VAE-I (Kumar et al., 2018; settings in `[dip]`).
    DipI,
    /// DIP-VAE-II (Kumar et al., 2018; settings in `[dip]`).
    DipIi,
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
    /// The adversarial autoencoder's prior, encoder and discriminator (`model.kind = "aae"`
    /// only; defaults filled in then).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aae: Option<AaeSection>,
    /// Adversarial Variational Bayes: noise, discriminator, step ratio, adaptive contrast
    /// (`model.kind = "avb"` only; defaults filled in then).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub avb: Option<AvbSection>,
    /// The Wasserstein autoencoder's encoder and MMD penalty (`model.kind = "wae"` only;
    /// defaults filled in then).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wae: Option<WaeSection>,
    /// Markov-chain sampling from the trained model, measured (off unless `enabled`; not for
    /// `model.kind = "vqvae"`).
    pub chain: ChainSection,
    /// VQ-VAE networks and quantizer (`model.kind = "vqvae"` only; defaults filled in then).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vq: Option<VqSection>,
    /// The VQ-VAE's PixelCNN prior (`model.kind = "vqvae"` only; defaults filled in then).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prior: Option<PriorSection>,
    /// The annealed-capacity β-VAE's schedule (`train.objective = "annealed_capacity"` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capacity: Option<CapacitySection>,
    /// β-TC-VAE's weights and estimator (`train.objective = "beta_tc"` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub beta_tc: Option<BetaTcSection>,
    /// DIP-VAE's weights (`train.objective = "dip_i"` or `"dip_ii"` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dip: Option<DipSection>,
    /// FactorVAE's γ and discriminator (`model.kind = "factor_vae"` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub factor_vae: Option<FactorVaeSection>,
}

/// `[data]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DataSection {
    /// `shapes` (generated, the default), `avb-toy` (built in) or a registry name
    /// (`fashion-mnist`, `mnist`, …; see `genae dataset list`). Not with `path`.
    pub dataset: String,
    /// The user's own data: a file or folder in any format `genae dataset info` reads (IDX
    /// files, CIFAR batches, an image folder, `.npy` / `.npz` arrays, a safetensors file),
    /// with an optional manifest beside it. Relative paths are relative to the working
    /// directory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    /// With `path`: force a format (`idx`, `cifar10`, `cifar100`, `svhn_mat`,
    /// `image_folder`, `npy`, `npz`, `safetensors`) instead of detecting it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format: Option<genae_data::registry::Format>,
    /// With `path`: where the channel axis of 4-d image arrays is (`auto`, `nchw`, `nhwc`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layout: Option<genae_data::formats::arrays::ArrayLayout>,
    /// With `path`: the side image folders are centre-cropped and resized to (default 64).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub folder_size: Option<u32>,
    /// With `path`: image folders read as `gray` or `rgb` (default `rgb`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channels: Option<genae_data::formats::image_folder::Channels>,
    /// With `path`: the fraction of one-split data held out as the test set (default 0.1,
    /// drawn with `data.seed`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test_fraction: Option<f64>,
    /// With `path`: a user manifest (name, format, counts, checksums; the shipped manifests'
    /// schema) to check the data against; by default `genae-dataset.toml` in the folder.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manifest: Option<PathBuf>,
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
    /// Shapes: training examples drawn from the grid (default 40 000; 0: every point of the
    /// grid once, 737 280 at dSprites' 64×64 grid). Other data: at most this many (default 0:
    /// all).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub train_size: Option<usize>,
    /// Shapes: test examples (default 2 000). Other data: at most this many (default 0: all).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test_size: Option<usize>,
    /// Shapes: image side in pixels.
    pub image_size: usize,
    /// Shapes: number of scale values.
    pub n_scales: usize,
    /// Shapes: number of rotation values.
    pub n_rotations: usize,
    /// Shapes: number of positions along each axis.
    pub n_positions: usize,
}

/// `[model]`. Every key but `kind` is for the kinds with an encoder–decoder pair of
/// `[model]` networks (all but `vqvae`, whose networks are in `[vq]`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelSection {
    /// Which model.
    pub kind: ModelKind,
    /// Latent dimensions (default 10).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latent_dim: Option<i64>,
    /// Encoder hidden widths; the decoder mirrors them (default `[512, 256]`; an MLP needs at
    /// least one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hidden: Option<Vec<i64>>,
    /// Nonlinearity (default `relu`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub activation: Option<Activation>,
    /// Encoder and decoder networks: `{ kind = "mlp" }` (default) or
    /// `{ kind = "conv", channels = [32, 64], residual_blocks = 1 }` (28×28, 32×32, 64×64).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub architecture: Option<Architecture>,
    /// The decoder's `p(x|z)`: `{ kind = "bernoulli" }` (default), `{ kind = "gaussian",
    /// variance = 0.1 }`, `{ kind = "gaussian_learned" }`, `{ kind = "discretized_logistic" }`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub likelihood: Option<Likelihood>,
}

/// `[train]`. The keys from `objective` on are the VAE's (`model.kind = "vae"`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainSection {
    /// Passes over the training set.
    pub epochs: usize,
    /// Examples per step.
    pub batch_size: usize,
    /// Adam learning rate (of the encoder and decoder of adversarial kinds).
    pub learning_rate: f64,
    /// Leave out the last, smaller batch of each epoch.
    pub drop_last: bool,
    /// Write `checkpoint.safetensors` (parameters, optimiser state, phase, epoch, step) every
    /// this many epochs and after the last of each phase (0: never; then the run cannot be
    /// resumed).
    pub checkpoint_every: usize,
    /// VAE: `elbo` (default), `iwae` or `dvae`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub objective: Option<ObjectiveKind>,
    /// VAE: importance samples per example for `objective = "iwae"` (default 5).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iwae_k: Option<i64>,
    /// VAE: the corruption of `objective = "dvae"`, e.g. `{ kind = "salt_and_pepper", p = 0.1 }`,
    /// `{ kind = "gaussian", sigma = 0.2 }`, `{ kind = "masking", p = 0.3 }` or a
    /// `{ kind = "chain", steps = [...] }` of them (default: none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub corruption: Option<Corruption>,
    /// VAE: corrupted copies per example (`M`) for `objective = "dvae"` (default 1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dvae_copies: Option<i64>,
    /// VAE: codes per corrupted copy (`K`) for `objective = "dvae"` (default 1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dvae_samples: Option<i64>,
    /// VAE: weight of the KL term (β-VAE; default 1, the ELBO).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub beta: Option<f64>,
    /// VAE: free bits λ (nats per latent dimension; default 0: off).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub free_bits: Option<f64>,
    /// VAE: steps over which the KL weight rises linearly from 0 to `beta` (default 0: none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kl_warmup_steps: Option<u64>,
    /// Data-parallel runs: how the processes draw their noise (default `global_batch`).
    #[serde(skip_serializing_if = "ParallelNoise::is_default")]
    pub parallel_noise: ParallelNoise,
}

/// How the processes of a data-parallel run draw their noise (reparameterisation, corruption,
/// prior draws, dynamic binarisation): `train.parallel_noise`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ParallelNoise {
    /// Every process draws the noise of the whole global batch and keeps its rows, so the run
    /// draws what one process with the global batch draws and, up to float rounding, ends
    /// where it ends (for losses that are means over examples).
    #[default]
    GlobalBatch,
    /// Every process draws for its own rows from a stream of its own, as PyTorch's DDP does:
    /// the same statistics, fewer draws with many processes, but a different run.
    PerRank,
}

impl ParallelNoise {
    /// Whether this is the default (left out of written configs).
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

/// `[eval]`. The `log_likelihood_*` keys are for kinds with an encoder density or a proposal
/// for it (VAE, AVB, WAE with a Gaussian encoder), the `exact_*` keys for VAE and AVB.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EvalSection {
    /// Examples per evaluation batch.
    pub batch_size: usize,
    /// Prior samples drawn into `samples.png`.
    pub samples: usize,
    /// Test images (and their reconstructions) in `reconstructions.png`.
    pub reconstructions: usize,
    /// Pairs of test images in `interpolations.png` (0: no picture).
    pub interpolations: usize,
    /// Test codes drawn in `latents.png` (0: no picture).
    pub latent_points: usize,
    /// Every this many epochs, save `model.safetensors` and (where the kind has one) estimate
    /// `L_k` mid-run, logged in `metrics.jsonl`, so a long run that is stopped early still
    /// says where it got (0: only at the end).
    pub every: usize,
    /// Importance samples of the log-likelihood estimate `L_k` (0: skip it; default 5000).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_likelihood_k: Option<i64>,
    /// Test images the log-likelihood is estimated on (0: the whole test set; default 1000).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_likelihood_images: Option<usize>,
    /// Samples per example drawn at once while estimating `L_k` (bounds memory; default 1280).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_likelihood_chunk: Option<i64>,
    /// Cells per latent axis of the quadrature grid for the exact `log p(x)`
    /// (`test.exact_log_likelihood`; latent spaces of at most 3 dimensions; 0: skip it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exact_log_likelihood_grid: Option<i64>,
    /// The grid covers `[−w, w]^d` of the `N(0, I)` prior (default 6).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exact_log_likelihood_half_width: Option<f64>,
    /// The disentanglement metrics on the shapes data's factors (off unless `enabled`).
    pub disentanglement: DisentanglementEval,
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
            aae: None,
            avb: None,
            wae: None,
            chain: ChainSection::default(),
            vq: None,
            prior: None,
            capacity: None,
            beta_tc: None,
            dip: None,
            factor_vae: None,
        }
    }
}

impl DataSection {
    /// Whether the data are built in (shapes or the AVB toy), not read from files.
    pub fn is_builtin(&self) -> bool {
        self.path.is_none() && (self.dataset == SHAPES || self.dataset == AVB_TOY)
    }

    /// `train_size` with its default filled in (0: all).
    pub fn train_limit(&self) -> usize {
        self.train_size.unwrap_or(if self.is_builtin() {
            genae_data::DEFAULT_N_TRAIN
        } else {
            0
        })
    }

    /// `test_size` with its default filled in (0: all).
    pub fn test_limit(&self) -> usize {
        self.test_size.unwrap_or(if self.is_builtin() {
            genae_data::DEFAULT_N_TEST
        } else {
            0
        })
    }

    /// How `path` is read.
    pub fn path_options(&self) -> genae_data::registry::PathOptions {
        let default = genae_data::registry::PathOptions::default();
        genae_data::registry::PathOptions {
            format: self.format,
            layout: self.layout.unwrap_or_default(),
            image_size: self.folder_size,
            channels: self.channels,
            test_fraction: self.test_fraction.unwrap_or(default.test_fraction),
            seed: self.seed,
            manifest: self.manifest.clone(),
        }
    }

    /// What the data are called in a run's header and summary: the registry name, or the
    /// path.
    pub fn source_name(&self) -> String {
        match &self.path {
            Some(p) => p.display().to_string(),
            None => self.dataset.clone(),
        }
    }
}

impl Default for DataSection {
    fn default() -> Self {
        Self {
            dataset: SHAPES.into(),
            dir: None,
            path: None,
            format: None,
            layout: None,
            folder_size: None,
            channels: None,
            test_fraction: None,
            manifest: None,
            binarize: Binarization::None,
            validation_size: 0,
            seed: 0,
            train_size: None,
            test_size: None,
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
            latent_dim: None,
            hidden: None,
            activation: None,
            architecture: None,
            likelihood: None,
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
            checkpoint_every: 1,
            objective: None,
            iwae_k: None,
            corruption: None,
            dvae_copies: None,
            dvae_samples: None,
            beta: None,
            free_bits: None,
            kl_warmup_steps: None,
            parallel_noise: ParallelNoise::default(),
        }
    }
}

impl Default for EvalSection {
    fn default() -> Self {
        Self {
            batch_size: 1000,
            samples: 64,
            reconstructions: 16,
            interpolations: 4,
            latent_points: 2000,
            every: 0,
            log_likelihood_k: None,
            log_likelihood_images: None,
            log_likelihood_chunk: None,
            exact_log_likelihood_grid: None,
            exact_log_likelihood_half_width: None,
            disentanglement: DisentanglementEval::default(),
        }
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
    let digits = raw.strip_prefix(['-', '+']).unwrap_or(raw);
    if !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && raw.parse::<i64>().is_err()
    {
        return Err(fail(format!(
            "{raw} does not fit a TOML integer (from {} to {})",
            i64::MIN,
            i64::MAX
        )));
    }
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
mod tests;
