//! The data set's own image classifier, trained once and cached: its penultimate features are
//! the feature space of the Fréchet distance in chain evaluations (`[chain]`, see
//! [`crate::evaluate_chains`]).
//!
//! A classifier is identified by its settings ([`ClassifierSection`]) and the data settings that
//! decide its training and test images; it lives in
//! `<output_dir>/classifiers/<dataset>-<16 hex digits of SHA-256 of those settings>/` as
//! `classifier.safetensors` (the parameters) and `classifier.json` (settings, network config,
//! test accuracy), both written atomically, the JSON last: a folder with a JSON record is
//! complete. Runs with the same settings load it instead of training again.

use std::path::{Path, PathBuf};
use std::time::Instant;

use genae_data::{Dataset, ImageSet};
use genae_tensor::tensor_from_u8_images;
use genae_zoo::{Activation, Classifier, ClassifierConfig};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tch::{nn, Device, Kind, Tensor};

use crate::config::{ClassifierSection, ValidConfig, SHAPES};
use crate::context::run_device;
use crate::data::{batch_ranges, load_dataset};
use crate::error::LabError;
use crate::run_dir::RunDir;
use crate::Adam;

/// What identifies a cached classifier: its settings and the data settings that decide its
/// images (the shapes generator's settings only for `shapes`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct CacheKey {
    dataset: String,
    train_size: usize,
    test_size: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    shapes: Option<[u64; 5]>,
    classifier: ClassifierSection,
}

impl CacheKey {
    fn of(config: &ValidConfig) -> Self {
        let f = config.file();
        let d = &f.data;
        Self {
            dataset: d.source_name(),
            train_size: d.train_limit(),
            test_size: d.test_limit(),
            shapes: (d.dataset == SHAPES).then_some([
                d.seed,
                d.image_size as u64,
                d.n_scales as u64,
                d.n_rotations as u64,
                d.n_positions as u64,
            ]),
            classifier: f.chain.classifier.clone(),
        }
    }

    /// The first 16 hex digits of the SHA-256 of the key's JSON.
    fn hash(&self) -> String {
        let json = serde_json::to_string(self).expect("the key always serialises");
        let digest = Sha256::digest(json.as_bytes());
        digest[..8].iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// `classifier.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct CacheRecord {
    key: CacheKey,
    config: ClassifierConfig,
    test_accuracy: f64,
    test_images: usize,
    train_images: usize,
    train_seconds: f64,
    created: String,
}

const WEIGHTS: &str = "classifier.safetensors";
const RECORD: &str = "classifier.json";

/// A classifier ready for feature extraction, with where it came from.
#[derive(Debug)]
pub struct CachedClassifier {
    /// The network (in evaluation use: call it under `tch::no_grad`).
    pub classifier: Classifier,
    /// Its accuracy on the test split of the data set (grey levels).
    pub test_accuracy: f64,
    /// The cache folder holding `classifier.safetensors` and `classifier.json`.
    pub dir: PathBuf,
    /// Whether this call trained it (`false`: loaded from the cache).
    pub trained_now: bool,
    _vs: nn::VarStore,
}

/// The cache folder of the classifier `config` asks for:
/// `<output_dir>/classifiers/<dataset>-<hash>`.
pub fn classifier_cache_dir(config: &ValidConfig) -> PathBuf {
    let key = CacheKey::of(config);
    config.file().output_dir.join("classifiers").join(format!(
        "{}-{}",
        key.dataset
            .trim_start_matches('/')
            .replace(|c: char| !c.is_ascii_alphanumeric() && c != '-', "_"),
        key.hash()
    ))
}

/// The classifier of `config`'s `[chain.classifier]` on `data` (the configured data set as
/// stored: grey levels, truncated to `data.train_size` / `data.test_size`), loaded from
/// [`classifier_cache_dir`] when a complete record is there, trained (seeded by
/// `chain.classifier.seed`, on `device`) and cached otherwise. A record or weights file that
/// cannot be read is an error naming the file (delete the folder to retrain). Training moves
/// libtorch's global generator; callers that need repeatable randomness seed afterwards.
pub fn load_or_train_classifier(
    config: &ValidConfig,
    data: &Dataset,
    device: Device,
) -> Result<CachedClassifier, LabError> {
    let key = CacheKey::of(config);
    let dir = classifier_cache_dir(config);
    if dir.join(RECORD).exists() {
        return load_cached(&dir, &key, device);
    }
    let section = &key.classifier;
    let [c, h, w] = data.train.image_shape;
    let num_classes = data.class_names.len().max(
        data.train
            .labels
            .iter()
            .max()
            .map_or(0, |&l| l as usize + 1),
    );
    let net = ClassifierConfig {
        input_shape: [c as i64, h as i64, w as i64],
        num_classes: num_classes as i64,
        channels: section.channels.clone(),
        feature_dim: section.feature_dim,
        activation: Activation::Relu,
    };
    note!(
        "training the {} classifier ({} epochs on {} images, cached in {}) ...",
        data.name,
        section.epochs,
        data.train.len(),
        dir.display()
    );
    let started = Instant::now();
    tch::manual_seed(section.seed as i64);
    let vs = nn::VarStore::new(device);
    let classifier = Classifier::new(&vs.root(), &net)?;
    let (x, y) = images_and_labels(&data.train, device)?;
    let mut optimizer = Adam::new(&vs, section.learning_rate);
    let n = x.size()[0];
    let batch = section.batch_size as i64;
    for epoch in 1..=section.epochs {
        let order = Tensor::f_randperm(n, (Kind::Int64, device))?;
        let mut total = 0.0;
        for (start, len) in batch_ranges(n, batch) {
            let index = order.f_narrow(0, start, len)?;
            let loss =
                classifier.loss(&x.f_index_select(0, &index)?, &y.f_index_select(0, &index)?)?;
            optimizer.backward_step(&loss)?;
            total += loss.double_value(&[]) * len as f64;
        }
        note!(
            "classifier epoch {epoch}/{}: train cross-entropy {:.4} ({:.0} s)",
            section.epochs,
            total / n as f64,
            started.elapsed().as_secs_f64()
        );
    }
    let train_seconds = started.elapsed().as_secs_f64();
    let (x_test, y_test) = images_and_labels(&data.test, device)?;
    let test_accuracy = classifier.accuracy(&x_test, &y_test, 1000)?;
    note!(
        "classifier test accuracy {:.4} on {} images",
        test_accuracy,
        data.test.len()
    );
    std::fs::create_dir_all(&dir).map_err(|e| LabError::io("creating", &dir, e))?;
    let folder = RunDir::open(&dir)?;
    let tmp = folder.temporary(WEIGHTS);
    vs.save(&tmp)?;
    std::fs::rename(&tmp, dir.join(WEIGHTS))
        .map_err(|e| LabError::io("writing", &dir.join(WEIGHTS), e))?;
    let record = CacheRecord {
        key,
        config: net,
        test_accuracy,
        test_images: data.test.len(),
        train_images: data.train.len(),
        train_seconds,
        created: chrono::Utc::now().to_rfc3339(),
    };
    let json = serde_json::to_string_pretty(&record).expect("the record always serialises");
    folder.write_atomic(RECORD, json.as_bytes())?;
    Ok(CachedClassifier {
        classifier,
        test_accuracy,
        dir,
        trained_now: true,
        _vs: vs,
    })
}

/// [`load_or_train_classifier`] for `config` alone, as `genae classifier train` runs it: the
/// device and threads resolved as a run resolves them, the data set loaded.
pub fn classifier_for_config(config: &ValidConfig) -> Result<CachedClassifier, LabError> {
    let device = run_device(config)?;
    let data = load_dataset(config)?;
    load_or_train_classifier(config, &data, device)
}

fn load_cached(dir: &Path, key: &CacheKey, device: Device) -> Result<CachedClassifier, LabError> {
    let record_path = dir.join(RECORD);
    let bad = |path: &Path, reason: String| LabError::Checkpoint {
        path: path.to_path_buf(),
        reason: format!(
            "{reason} (a cached classifier; delete `{}` to train it again)",
            dir.display()
        ),
    };
    let text = std::fs::read_to_string(&record_path)
        .map_err(|e| bad(&record_path, format!("cannot be read: {e}")))?;
    let record: CacheRecord = serde_json::from_str(&text)
        .map_err(|e| bad(&record_path, format!("is not a classifier record: {e}")))?;
    if &record.key != key {
        return Err(bad(
            &record_path,
            format!(
                "was written for other settings ({}), not these ({})",
                serde_json::to_string(&record.key).unwrap_or_default(),
                serde_json::to_string(key).unwrap_or_default()
            ),
        ));
    }
    let weights = dir.join(WEIGHTS);
    let mut vs = nn::VarStore::new(device);
    let classifier = Classifier::new(&vs.root(), &record.config).map_err(|e| {
        bad(
            &record_path,
            format!("holds an invalid network config: {e}"),
        )
    })?;
    vs.load(&weights)
        .map_err(|e| bad(&weights, format!("cannot be loaded: {e}")))?;
    note!(
        "classifier loaded from {} (test accuracy {:.4})",
        dir.display(),
        record.test_accuracy
    );
    Ok(CachedClassifier {
        classifier,
        test_accuracy: record.test_accuracy,
        dir: dir.to_path_buf(),
        trained_now: false,
        _vs: vs,
    })
}

/// Grey-level images `[N, C, H, W]` in `[0, 1]` and labels `[N]` (`i64`) on `device`.
pub(crate) fn images_and_labels(
    set: &ImageSet,
    device: Device,
) -> Result<(Tensor, Tensor), LabError> {
    let [c, h, w] = set.image_shape;
    let n = set.len() as i64;
    let x = tensor_from_u8_images(&set.pixels, &[n, c as i64, h as i64, w as i64], device)?;
    let labels: Vec<i64> = set.labels.iter().map(|&l| l as i64).collect();
    let y = Tensor::f_from_slice(&labels)?.f_to_device(device)?;
    Ok((x, y))
}
