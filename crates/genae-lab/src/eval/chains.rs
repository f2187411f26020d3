//! Markov-chain sampling, measured (Creswell et al., 2016): `[chain]` runs batched latent
//! chains from prior samples with the trained model, and at each listed step compares
//!
//! - the decoded samples (decoder means) with the test images through the Fréchet distance
//!   between features of a classifier trained on the data set (the FID formula; the
//!   classifier is cached, see [`crate::load_or_train_classifier`]);
//! - the chain codes with the codes of the test images (encoder draws, or means when
//!   `chain.encode = "mean"`) through the unbiased `MMD²` with a Gaussian kernel, the bandwidth
//!   fixed once by the median heuristic on the test codes.
//!
//! The model is taken as `&dyn GenerativeAutoencoder`, so every model with an encoder, a
//! decoder and a prior (VAE, DVAE, AAE, …) is evaluated by the same code.

use std::time::Instant;

use genae_estimators::{mmd_gaussian, FeatureStats};
use genae_samplers::{CorruptionError, DecodeMode, EncodeMode, MarkovChain, MarkovChainConfig};
use genae_tensor::save_image_grid;
use genae_zoo::{Classifier, GenerativeAutoencoder};
use serde::Serialize;
use tch::{Device, Kind, Tensor};

use crate::config::{ChainSection, ConfigError, ValidConfig};
use crate::data::{batch_ranges, load_dataset};
use crate::error::LabError;
use crate::eval::classifier::{images_and_labels, load_or_train_classifier};
use crate::run_dir::RunDir;

/// `chain` in `summary.json`: the arrays are aligned with `steps`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ChainSummary {
    /// The measured steps (0: the prior samples).
    pub steps: Vec<usize>,
    /// Fréchet distance between classifier features of the chains' decoder means at each step
    /// and of the reference test images (grey levels).
    pub frechet: Vec<f64>,
    /// Unbiased `MMD²` between the chain codes at each step and the encoded reference test
    /// images (encoder draws or means, as `latent_reference` says), Gaussian kernel of
    /// bandwidth `latent_mmd_bandwidth`.
    pub latent_mmd: Vec<f64>,
    /// Total-variation distance between the classifier's predicted-class frequencies on the
    /// chains' decoder means at each step and on the reference test images (0: the same mix
    /// of classes, 1: disjoint): whether the chains drift towards some classes.
    pub class_tv: Vec<f64>,
    /// The kernel bandwidth of `latent_mmd`: the median heuristic on the test codes alone,
    /// the same for every step.
    pub latent_mmd_bandwidth: f64,
    /// `MMD²` between the two halves of the test codes with that bandwidth: the value of two
    /// samples of the same distribution (noise level).
    pub latent_mmd_floor: f64,
    /// Fréchet distance between the features of `chains` real training images (grey levels)
    /// and of the reference test images: what a perfect sampler would get with this many
    /// samples.
    pub frechet_real: f64,
    /// The classifier's accuracy on the test split (grey levels).
    pub classifier_accuracy: f64,
    /// Its cache folder.
    pub classifier_dir: String,
    /// Whether the run trained the classifier (`false`: loaded from the cache).
    pub classifier_trained: bool,
    /// Chains run.
    pub chains: usize,
    /// Test images in the reference sets.
    pub reference_images: usize,
    /// `mean` or `sample`.
    pub decode: String,
    /// `mean` or `sample`.
    pub encode: String,
    /// What the test codes of `latent_mmd` are.
    pub latent_reference: String,
    /// The corruption between decoding and encoding (`none`: the plain chain).
    pub corruption: String,
    /// Seconds the evaluation took (classifier training included when it happened).
    pub seconds: f64,
}

/// Seed stream of the chain evaluation, apart from training's.
const CHAIN_DRAW: u64 = 0x6368_6169_6e00_0000;

/// Runs the `[chain]` evaluation of `model` when `config` enables it (`Ok(None)` otherwise):
/// loads or trains the classifier, runs `chain.chains` chains from prior draws, measures them
/// at `chain.steps`, writes `chain_strips.png` and `interpolations_refined.png` into
/// `run_dir`, and returns the numbers for `summary.json` (key `chain`).
///
/// `test_x` is the test split as the model was evaluated on it (`[N, D]` or `[N, C, H, W]`,
/// binarised when the data are): it is what the model encodes for the latent reference and
/// for the interpolation endpoints; the Fréchet reference uses the grey-level test images of
/// the same data set (decoder means estimate grey levels). Randomness is seeded from
/// `config.seed`, so a run repeats. Any model implementing
/// [`GenerativeAutoencoder`](genae_zoo::GenerativeAutoencoder) with a prior works.
pub fn evaluate_chains(
    model: &dyn GenerativeAutoencoder,
    config: &ValidConfig,
    test_x: &Tensor,
    run_dir: &RunDir,
    device: Device,
) -> Result<Option<ChainSummary>, LabError> {
    let section = &config.file().chain;
    if !section.enabled {
        return Ok(None);
    }
    let started = Instant::now();
    let data = load_dataset(config)?;
    let cached = load_or_train_classifier(config, &data, device)?;
    let classifier = &cached.classifier;
    let batch = config.file().eval.batch_size as i64;
    tch::manual_seed((config.file().seed ^ CHAIN_DRAW) as i64);

    let n_test = test_x.size()[0];
    let n_ref = match section.reference_images {
        0 => n_test,
        n => (n as i64).min(n_test),
    };
    if n_ref < 2 {
        return Err(LabError::Config(ConfigError::Invalid {
            field: "chain.reference_images",
            reason: format!(
                "the distances need at least 2 test images, the test split has {n_test}"
            ),
        }));
    }
    let (grey_test, _) = images_and_labels(&data.test, device)?;
    let reference_features = features(classifier, &grey_test.narrow(0, 0, n_ref), batch)?;
    let reference = FeatureStats::from_features(&reference_features)?;
    let reference_classes = class_frequencies(classifier, &reference_features)?;
    let mut real = data.train.clone();
    real.truncate(section.chains);
    let frechet_real = if real.len() >= 2 {
        let (grey_train, _) = images_and_labels(&real, device)?;
        FeatureStats::from_features(&features(classifier, &grey_train, batch)?)?
            .frechet_distance(&reference)?
    } else {
        f64::NAN
    };

    // The chain's stationary distribution: codes of (corrupted, for the denoising chain) data.
    let reference_x = test_x.narrow(0, 0, n_ref);
    let reference_x = if section.corruption.is_identity() {
        reference_x
    } else {
        section.corruption.apply(&reference_x)?
    };
    let test_codes = encode(model, &reference_x, section.encode, batch)?;
    let half = n_ref / 2;
    let halves = (
        test_codes.narrow(0, 0, half),
        test_codes.narrow(0, half, n_ref - half),
    );
    let (latent_mmd_floor, bandwidth) = if half >= 2 && n_ref - half >= 2 {
        let bandwidth = mmd_gaussian(&halves.0, &halves.1, None)?.bandwidth;
        (
            mmd_gaussian(&halves.0, &halves.1, Some(bandwidth))?.mmd2,
            bandwidth,
        )
    } else {
        (
            f64::NAN,
            mmd_gaussian(&test_codes, &test_codes, None)?.bandwidth,
        )
    };

    // The chain, in segments between the steps that are measured or drawn.
    let mut checkpoints: Vec<usize> = section
        .steps
        .iter()
        .chain(section.strip_steps.iter())
        .copied()
        .collect();
    checkpoints.sort_unstable();
    checkpoints.dedup();
    let strip_chains = (section.strip_chains as i64).min(section.chains as i64);
    let mut z = tch::no_grad(|| model.sample_prior(section.chains as i64, device))?;
    let mut at = 0usize;
    let (mut frechet, mut latent_mmd, mut class_tv) = (Vec::new(), Vec::new(), Vec::new());
    let mut strips = Vec::new();
    for &step in &checkpoints {
        let segment = configured_chain(section, step - at);
        let out = segment.run(model, &z)?;
        z = out.codes;
        at = step;
        if section.steps.contains(&step) {
            let sample_features = features(classifier, &out.images, batch)?;
            let stats = FeatureStats::from_features(&sample_features)?;
            let fd = stats.frechet_distance(&reference)?;
            let mmd = mmd_gaussian(&z, &test_codes, Some(bandwidth))?.mmd2;
            let tv = class_frequencies(classifier, &sample_features)?
                .f_sub(&reference_classes)?
                .f_abs()?
                .f_sum(Kind::Double)?
                .double_value(&[])
                / 2.0;
            note!(
                "chain step {step:>3}: Fréchet distance {fd:9.3}  latent MMD² {mmd:.5}  \
                 class TV {tv:.3}"
            );
            frechet.push(fd);
            latent_mmd.push(mmd);
            class_tv.push(tv);
        }
        if strip_chains > 0 && section.strip_steps.contains(&step) {
            strips.push(out.images.narrow(0, 0, strip_chains));
        }
    }
    let [c, h, w] = data.test.image_shape;
    let image_shape = [-1, c as i64, h as i64, w as i64];
    if !strips.is_empty() {
        let grid = Tensor::f_cat(&strips, 0)?.f_view(image_shape)?;
        save_image_grid(
            &grid,
            strip_chains as usize,
            &run_dir.file("chain_strips.png"),
        )?;
    }
    let pairs = (section.interpolations as i64).min(n_test / 2);
    if pairs > 0 {
        let refined = configured_chain(section, section.interpolation_steps).interpolate(
            model,
            &test_x.narrow(0, 0, pairs),
            &test_x.narrow(0, pairs, pairs),
            section.interpolation_points,
        )?;
        let rows: Vec<Tensor> = (0..pairs)
            .flat_map(|p| [refined.plain.get(p), refined.refined.get(p)])
            .collect();
        let grid = Tensor::f_cat(&rows, 0)?.f_view(image_shape)?;
        save_image_grid(
            &grid,
            section.interpolation_points as usize,
            &run_dir.file("interpolations_refined.png"),
        )?;
    }

    Ok(Some(ChainSummary {
        steps: section.steps.clone(),
        frechet,
        latent_mmd,
        class_tv,
        latent_mmd_bandwidth: bandwidth,
        latent_mmd_floor,
        frechet_real,
        classifier_accuracy: cached.test_accuracy,
        classifier_dir: cached.dir.display().to_string(),
        classifier_trained: cached.trained_now,
        chains: section.chains,
        reference_images: n_ref as usize,
        decode: match section.decode {
            DecodeMode::Mean => "mean".into(),
            DecodeMode::Sample => "sample".into(),
        },
        latent_reference: format!(
            "{} of each test image{}",
            match section.encode {
                EncodeMode::Sample => "one draw of q(z|x)",
                EncodeMode::Mean => "the posterior mean",
            },
            if section.corruption.is_identity() {
                String::new()
            } else {
                format!(", corrupted once by {}", section.corruption)
            }
        ),
        encode: match section.encode {
            EncodeMode::Sample => "sample".into(),
            EncodeMode::Mean => "mean".into(),
        },
        corruption: section.corruption.to_string(),
        seconds: started.elapsed().as_secs_f64(),
    }))
}

/// The configured chain with `steps` transitions (and the corruption, if any).
pub(crate) fn configured_chain(section: &ChainSection, steps: usize) -> MarkovChain<'_> {
    let chain = MarkovChain::new(MarkovChainConfig {
        steps,
        decode: section.decode,
        encode: section.encode,
        keep_trajectory: false,
    });
    if section.corruption.is_identity() {
        chain
    } else {
        let corruption = &section.corruption;
        chain.with_corruption(move |x: &Tensor| {
            corruption
                .apply(x)
                .map_err(|e| Box::new(e) as CorruptionError)
        })
    }
}

/// Classifier features `[N, F]` of images `[N, …]`, in batches, without gradient.
pub(crate) fn features(
    classifier: &Classifier,
    x: &Tensor,
    batch: i64,
) -> Result<Tensor, LabError> {
    batched(x, batch, |chunk| Ok(classifier.features(chunk)?))
}

/// The fraction of rows of `features` the classifier puts in each class, `[classes]`, `f64`.
fn class_frequencies(classifier: &Classifier, features: &Tensor) -> Result<Tensor, LabError> {
    let predicted = tch::no_grad(|| classifier.logits_of_features(features))?.f_argmax(1, false)?;
    let counts = predicted.f_bincount::<Tensor>(None, classifier.num_classes())?;
    Ok(counts.f_to_kind(Kind::Double)? / features.size()[0] as f64)
}

/// Codes `[N, d]` of data `[N, …]` by `mode`, in batches, without gradient.
fn encode(
    model: &dyn GenerativeAutoencoder,
    x: &Tensor,
    mode: EncodeMode,
    batch: i64,
) -> Result<Tensor, LabError> {
    batched(x, batch, |chunk| {
        Ok(match mode {
            EncodeMode::Sample => model.encode_sample(chunk)?,
            EncodeMode::Mean => model.encode_mean(chunk)?,
        })
    })
}

/// `f` on batches of `x` without gradients, the results concatenated (as `f32`).
pub(crate) fn batched(
    x: &Tensor,
    batch: i64,
    f: impl Fn(&Tensor) -> Result<Tensor, LabError>,
) -> Result<Tensor, LabError> {
    tch::no_grad(|| {
        let mut parts = Vec::new();
        for (start, len) in batch_ranges(x.size()[0], batch) {
            parts.push(f(&x.f_narrow(0, start, len)?)?.f_to_kind(Kind::Float)?);
        }
        Ok(Tensor::f_cat(&parts, 0)?)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use genae_tensor::Corruption;

    fn parse(text: &str) -> Result<ValidConfig, ConfigError> {
        ValidConfig::from_toml_str(text, "test.toml", &[])
    }

    #[test]
    fn the_section_is_off_by_default_and_reads_back() {
        let config = parse("").unwrap();
        assert!(!config.file().chain.enabled);
        assert_eq!(config.file().chain.steps, [0, 1, 5, 10, 20]);
        let text = "[chain]\nenabled = true\nsteps = [0, 2]\ndecode = \"mean\"\n\
                    corruption = { kind = \"masking\", p = 0.25 }\n\
                    [chain.classifier]\nfeature_dim = 64\n";
        let config = parse(text).unwrap();
        let chain = &config.file().chain;
        assert!(chain.enabled);
        assert_eq!(chain.steps, [0, 2]);
        assert_eq!(
            (chain.decode, chain.encode),
            (DecodeMode::Mean, EncodeMode::Sample)
        );
        assert_eq!(chain.corruption, Corruption::Masking { p: 0.25 });
        assert_eq!(chain.classifier.feature_dim, 64);
        assert_eq!(chain.classifier.epochs, 3);
        let again = parse(&config.to_toml()).unwrap();
        assert_eq!(again, config);
    }

    #[test]
    fn bad_values_name_their_field() {
        for (text, field) in [
            ("[chain]\nsteps = [5, 1]\n", "chain.steps"),
            ("[chain]\nsteps = []\nenabled = true\n", "chain.steps"),
            ("[chain]\nsteps = [0, 1001]\n", "chain.steps"),
            ("[chain]\nstrip_steps = [1, 1]\n", "chain.strip_steps"),
            ("[chain]\nchains = 1\n", "chain.chains"),
            ("[chain]\nreference_images = 1\n", "chain.reference_images"),
            ("[chain]\nstrip_chains = 33\n", "chain.strip_chains"),
            (
                "[chain]\ninterpolation_points = 1\n",
                "chain.interpolation_points",
            ),
            (
                "[chain]\ncorruption = { kind = \"masking\", p = 2.0 }\n",
                "chain.corruption",
            ),
            (
                "[chain.classifier]\nepochs = 0\n",
                "chain.classifier.epochs",
            ),
            (
                "[chain.classifier]\nchannels = []\n",
                "chain.classifier.channels",
            ),
            (
                "[chain.classifier]\nlearning_rate = -1.0\n",
                "chain.classifier.learning_rate",
            ),
        ] {
            let err = parse(text).unwrap_err();
            assert!(
                matches!(&err, ConfigError::Invalid { field: f, .. } if *f == field),
                "{text}: {err}"
            );
        }
        let err = parse("[chain]\nstep = [1]\n").unwrap_err().to_string();
        assert!(err.contains("step") && err.contains("chain"), "{err}");
    }
}
