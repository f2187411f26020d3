//! Helpers the lab's integration tests share (each test binary uses some of them).
#![allow(dead_code)]

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use genae_lab::ValidConfig;

/// A one-epoch AAE with a deterministic encoder on 200 tiny shapes images (no `output_dir`).
pub const TINY_AAE: &str = r#"
    name = "tiny-aae"
    device = "cpu"
    threads = 1
    [data]
    train_size = 200
    test_size = 40
    image_size = 16
    n_positions = 6
    [model]
    kind = "aae"
    latent_dim = 2
    hidden = [32]
    [aae]
    discriminator_hidden = [16]
    [train]
    epochs = 1
    batch_size = 50
    [eval]
    batch_size = 20
    samples = 4
    reconstructions = 2
    interpolations = 0
    latent_points = 0
"#;

/// libtorch's generator is global: tests that train in this process take turns.
pub fn torch_rng_lock() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// `text` (named `name`) with `output_dir` set to `out` and the `extra` overrides, validated.
pub fn config_in(text: &str, name: &str, out: &Path, extra: &[&str]) -> ValidConfig {
    let mut overrides = vec![format!("output_dir=\"{}\"", out.display())];
    overrides.extend(extra.iter().map(|s| s.to_string()));
    ValidConfig::from_toml_str(text, name, &overrides).unwrap()
}

/// The lines of a run's `metrics.jsonl`.
pub fn metrics(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Each epoch's numbers of a run as text (epoch, train and test records), to compare a
/// resumed run with an uninterrupted one digit for digit.
pub fn epoch_numbers(dir: &Path) -> Vec<String> {
    metrics(dir)
        .iter()
        .map(|l| format!("{} {} {}", l["epoch"], l["train"], l["test"]))
        .collect()
}

/// The test-set MSE of the best constant guess, the training split's mean image, on the
/// images the run's model sees: a trained model's reconstruction MSE must beat it (a bound
/// like `mse < 1.0` on [0, 1] pixels cannot fail).
pub fn mean_image_mse(run_dir: &Path) -> f64 {
    mean_image_mse_on(run_dir, &genae_lab::DataSource::Test)
}

/// [`mean_image_mse`] on the images of `split`.
pub fn mean_image_mse_on(run_dir: &Path, split: &genae_lab::DataSource) -> f64 {
    use genae_lab::{DataSource, TrainedRun};
    let run = TrainedRun::open(run_dir).unwrap();
    let train = run.images(&DataSource::Train).unwrap().x;
    let test = run.images(split).unwrap().x;
    let mean = train.mean_dim(0, true, tch::Kind::Double);
    (test.to_kind(tch::Kind::Double) - mean)
        .square()
        .mean(tch::Kind::Double)
        .double_value(&[])
}

/// The test reconstructions of a finished run, computed anew through [`genae_lab::TrainedRun`]:
/// their MSE to their own images, and to the next image's (a reconstruction that carries its
/// input is closer to its own image).
pub fn test_reconstruction_mse(run_dir: &Path) -> (f64, f64) {
    use genae_lab::{DataSource, TrainedRun};
    let run = TrainedRun::open(run_dir).unwrap();
    let x = run.images(&DataSource::Test).unwrap().x;
    let rec = run.reconstruct(&x).unwrap().view([x.size()[0], -1]);
    let mse_to = |y: &tch::Tensor| {
        (&rec - y)
            .square()
            .mean(tch::Kind::Double)
            .double_value(&[])
    };
    (mse_to(&x), mse_to(&x.roll([1], [0])))
}

/// A run's `summary.json`.
pub fn summary(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap()
}
