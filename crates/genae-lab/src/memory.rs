//! Memory checked before allocating: a training objective that evaluates the decoder on many
//! samples per example (IWAE's `k`, the DVAE's copies × samples) needs activations in
//! proportion, and a setting like `train.iwae_k = 100000` would otherwise be killed by the
//! operating system or fail deep inside libtorch. [`check_objective_memory`] estimates one
//! batch's working set and refuses it, naming the keys to change, when it exceeds the memory
//! the machine has available.

use genae_estimators::Objective;
use genae_zoo::Architecture;

use crate::config::{ModelSpec, NetworkSpec, ValidConfig};
use crate::error::LabError;

/// Bytes of one `f32`.
const F32: u64 = 4;
/// Copies of the decoder's per-pixel output a training step keeps alive at its peak (logits,
/// the likelihood terms, their gradients and the backward pass's temporaries).
const PIXEL_COPIES: u64 = 6;
/// Copies of each hidden activation kept for the backward pass (pre-activation, activation,
/// gradient).
const HIDDEN_COPIES: u64 = 3;

/// The decoder evaluations one training batch makes, with the keys that set them and their
/// description, or `None` when the objective uses one sample per example.
fn samples_per_example(spec: &ModelSpec) -> Option<(u64, &'static str, String)> {
    match spec {
        ModelSpec::Vae {
            objective: Objective::Iwae { k },
            ..
        } if *k > 1 => Some((*k as u64, "train.iwae_k", format!("train.iwae_k = {k}"))),
        ModelSpec::Vae {
            objective: Objective::Dvae {
                copies, samples, ..
            },
            ..
        } if copies * samples > 1 => Some((
            (copies * samples) as u64,
            "train.dvae_copies / train.dvae_samples",
            format!("train.dvae_copies × train.dvae_samples = {copies} × {samples}"),
        )),
        _ => None,
    }
}

/// Estimated bytes of the activations of one decoder evaluation on one image of `shape`.
fn bytes_per_sample(networks: &NetworkSpec, [c, h, w]: [i64; 3]) -> u64 {
    let pixels = (c * h * w).max(1) as u64;
    let hidden: u64 = networks.hidden.iter().map(|&n| n.max(0) as u64).sum();
    let feature_maps: u64 = match &networks.architecture {
        // Each stride-2 layer halves the side: its map has a quarter of the pixels per level.
        Architecture::Conv { channels, .. } => channels
            .iter()
            .enumerate()
            .map(|(i, &ch)| ch.max(0) as u64 * (h * w).max(1) as u64 / 4u64.pow(i as u32 + 1))
            .sum(),
        Architecture::Mlp => 0,
    };
    F32 * (PIXEL_COPIES * pixels
        + HIDDEN_COPIES * (hidden + feature_maps + networks.latent_dim.max(0) as u64))
}

/// Memory the operating system says is available (`MemAvailable` of `/proc/meminfo`), when
/// it can be read.
pub fn available_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Refuses a training objective whose one-batch working set (estimated from the batch size,
/// the samples per example and the decoder's widths) exceeds `available` bytes, naming the
/// keys to lower. Always passes for objectives with one sample per example, and when
/// `available` is `None` (e.g. on CUDA, where libtorch's own out-of-memory error applies).
pub fn check_objective_memory(
    config: &ValidConfig,
    image_shape: [i64; 3],
    available: Option<u64>,
) -> Result<(), LabError> {
    let spec = config.spec();
    let (Some((samples, key, what)), Some(networks), Some(available)) =
        (samples_per_example(spec), spec.networks(), available)
    else {
        return Ok(());
    };
    let batch = config.file().train.batch_size as u64;
    let needed = batch
        .saturating_mul(samples)
        .saturating_mul(bytes_per_sample(networks, image_shape));
    if needed <= available {
        return Ok(());
    }
    let gib = |b: u64| b as f64 / f64::from(1u32 << 30);
    Err(LabError::Memory {
        key,
        reason: format!(
            "{what} with train.batch_size = {batch} evaluates the decoder {} times per batch, \
             about {:.1} GiB of activations, more than the {:.1} GiB this machine has \
             available: lower {key} or train.batch_size",
            batch.saturating_mul(samples),
            gib(needed),
            gib(available)
        ),
    })
}

/// Bytes each generated pixel takes: the byte the generator writes and the `f32` the run
/// trains on.
const GENERATED_PIXEL_BYTES: u64 = 5;

/// Refuses generated data (`data.train_size` + `data.test_size` images of `pixels` pixels) that
/// would not fit in `available` bytes, before generating it.
pub fn check_generated_data(
    train: usize,
    test: usize,
    pixels: usize,
    available: Option<u64>,
) -> Result<(), LabError> {
    let Some(available) = available else {
        return Ok(());
    };
    let needed = (train as u64)
        .saturating_add(test as u64)
        .saturating_mul(pixels as u64)
        .saturating_mul(GENERATED_PIXEL_BYTES);
    if needed <= available {
        return Ok(());
    }
    let gib = |b: u64| b as f64 / f64::from(1u32 << 30);
    Err(LabError::Memory {
        key: "data.train_size",
        reason: format!(
            "data.train_size = {train} and data.test_size = {test} generated images of {pixels} \
             pixels take about {:.1} GiB, more than the {:.1} GiB this machine has available: \
             lower data.train_size",
            gib(needed),
            gib(available)
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const IWAE: &str = "[train]\nobjective = \"iwae\"\nbatch_size = 50\n[model]\nhidden = [32]\n\
                        latent_dim = 3\n[data]\ntrain_size = 100\ntest_size = 10\n\
                        [eval]\nreconstructions = 2\n";

    fn config(extra: &[&str]) -> ValidConfig {
        let overrides: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        ValidConfig::from_toml_str(IWAE, "iwae.toml", &overrides).unwrap()
    }

    #[test]
    fn an_iwae_k_beyond_the_memory_is_refused_naming_the_keys() {
        let c = config(&["train.iwae_k=100000"]);
        // 50 × 100000 samples × (6 × 256 + 3 × 35) floats ≈ 30.6 GiB.
        let err = check_objective_memory(&c, [1, 16, 16], Some(8 << 30))
            .unwrap_err()
            .to_string();
        assert!(err.contains("train.iwae_k = 100000"), "{err}");
        assert!(err.contains("train.batch_size = 50"), "{err}");
        assert!(err.contains("5000000 times"), "{err}");
        assert!(err.contains("30.6 GiB"), "{err}");
        assert!(err.contains("8.0 GiB"), "{err}");
    }

    #[test]
    fn ordinary_settings_pass() {
        let c = config(&["train.iwae_k=50"]);
        check_objective_memory(&c, [1, 28, 28], Some(1 << 30)).unwrap();
        check_objective_memory(&config(&["train.iwae_k=100000"]), [1, 16, 16], None).unwrap();
        let elbo = config(&["train.objective=\"elbo\""]);
        check_objective_memory(&elbo, [1, 28, 28], Some(1)).unwrap();
    }

    #[test]
    fn generated_data_beyond_the_memory_is_refused() {
        let err = check_generated_data(100_000_000, 60, 256, Some(16 << 30))
            .unwrap_err()
            .to_string();
        assert!(err.contains("data.train_size = 100000000"), "{err}");
        assert!(
            err.contains("119.2 GiB") && err.contains("16.0 GiB"),
            "{err}"
        );
        check_generated_data(40_000, 2_000, 64 * 64, Some(1 << 30)).unwrap();
    }

    #[test]
    fn dvae_copies_and_samples_count_together() {
        let c = config(&[
            "train.objective=\"dvae\"",
            "train.dvae_copies=1000",
            "train.dvae_samples=1000",
        ]);
        let err = check_objective_memory(&c, [1, 16, 16], Some(1 << 30))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("train.dvae_copies × train.dvae_samples = 1000 × 1000"),
            "{err}"
        );
    }
}
