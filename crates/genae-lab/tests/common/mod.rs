//! Helpers the lab's integration tests share (each test binary uses some of them).
#![allow(dead_code)]

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use genae_lab::ValidConfig;

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

/// A run's `summary.json`.
pub fn summary(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap()
}
