//! Stable, time-boxed fuzzing of the lab's inputs, run by `cargo test` (the decoders' own
//! harness is genae-data's `tests/fuzz_decoders.rs`):
//!
//! - **configs**: every shipped config with 1–4 random `--set` overrides, each a key that
//!   exists in the resolved configs (or a misspelt one) and a hostile value (zero, negative,
//!   NaN, infinity, huge, empty, wrong type). Validation returns `Ok` or `Err`, never panics,
//!   and an accepted config survives its own `config.toml` round trip unchanged.
//! - **checkpoints and model files**: a trained tiny run whose `checkpoint.safetensors` or
//!   `model.safetensors` has flipped or overwritten bytes (mostly in the safetensors header,
//!   where the structure is), boundary values in the header length, or is truncated. Resuming
//!   and opening the run return `Ok` or `Err`, never panic.
//!
//! Deterministic (fixed seed); `GENAE_FUZZ_CASES` scales the number of cases.

mod common;

use std::path::{Path, PathBuf};

use genae_lab::{resume_experiment, run_experiment, TrainedRun, ValidConfig, SHIPPED_CONFIGS};
use proptest::prelude::*;
use proptest::sample::{select, Index};
use proptest::test_runner::{Config, FileFailurePersistence, RngAlgorithm, RngSeed, TestRunner};

use common::{config_in, torch_rng_lock};

fn runner(default_cases: u32) -> TestRunner {
    let scale: f64 = std::env::var("GENAE_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        .map_or(1.0, |n| n / 5000.0);
    TestRunner::new(Config {
        cases: ((f64::from(default_cases) * scale).ceil() as u32).max(1),
        rng_algorithm: RngAlgorithm::ChaCha,
        rng_seed: RngSeed::Fixed(20261203),
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "tests/fuzz-regressions.txt",
        ))),
        max_shrink_iters: 500,
        ..Config::default()
    })
}

/// Every leaf key of a TOML table, dotted.
fn leaf_keys(table: &toml::Table, prefix: &str, out: &mut Vec<String>) {
    for (k, v) in table {
        let key = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            toml::Value::Table(t) => leaf_keys(t, &key, out),
            _ => out.push(key),
        }
    }
}

/// The keys of every shipped config once resolved (all defaults filled in), plus misspellings.
fn config_keys() -> Vec<String> {
    let mut keys = Vec::new();
    for (name, text) in SHIPPED_CONFIGS {
        let config = ValidConfig::from_toml_str(text, name, &[]).unwrap();
        let table: toml::Table = toml::from_str(&config.to_toml()).unwrap();
        leaf_keys(&table, "", &mut keys);
    }
    keys.extend(["train.epochz", "model", "data.path.x", "eval.chain.steps"].map(String::from));
    keys.sort();
    keys.dedup();
    keys
}

const HOSTILE_VALUES: &[&str] = &[
    "0",
    "1",
    "-1",
    "2",
    "65537",
    "9223372036854775807",
    "-9223372036854775808",
    "18446744073709551615",
    "1e308",
    "-1e308",
    "1e-320",
    "nan",
    "inf",
    "-inf",
    "0.5",
    "\"\"",
    "\"cuda:99\"",
    "\"../../etc\"",
    "[]",
    "[0]",
    "[-1, 3]",
    "[1e9]",
    "true",
    "{ kind = \"x\" }",
    "\"vae\"",
    "\"aae\"",
    "\"vqvae\"",
    "\"iwae\"",
    "\"conv\"",
];

#[test]
fn fuzz_config_overrides() {
    let keys = config_keys();
    let configs: Vec<(&str, &str)> = SHIPPED_CONFIGS.to_vec();
    let strategy = (
        select(configs),
        prop::collection::vec((select(keys), select(HOSTILE_VALUES.to_vec())), 1..5),
    );
    runner(3000)
        .run(&strategy, |((name, text), sets)| {
            let overrides: Vec<String> = sets.iter().map(|(k, v)| format!("{k}={v}")).collect();
            if let Ok(config) = ValidConfig::from_toml_str(text, name, &overrides) {
                let again = ValidConfig::from_toml_str(&config.to_toml(), "round-trip", &[])
                    .unwrap_or_else(|e| panic!("{overrides:?}: the resolved config fails: {e}"));
                prop_assert_eq!(again.file(), config.file(), "{:?}", overrides);
            }
            Ok(())
        })
        .unwrap_or_else(|e| panic!("fuzz target `config`: {e}"));
}

/// One edit of a safetensors file.
#[derive(Clone, Debug)]
enum Edit {
    /// Flip a bit within the first 4 KiB (the header and the start of the data).
    HeaderFlip(u16, u8),
    /// Overwrite a byte anywhere.
    Set(Index, u8),
    /// Write a boundary value into the 8-byte header length.
    HeaderLength(u64),
    /// Keep only a prefix.
    Truncate(Index),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        4 => (0u16..4096, 0u8..8).prop_map(|(i, b)| Edit::HeaderFlip(i, b)),
        2 => (any::<Index>(), any::<u8>()).prop_map(|(i, v)| Edit::Set(i, v)),
        1 => select(vec![0u64, 1, 7, 8, 1 << 20, 1 << 40, u64::MAX]).prop_map(Edit::HeaderLength),
        1 => any::<Index>().prop_map(Edit::Truncate),
    ]
}

fn apply(mut bytes: Vec<u8>, edits: &[Edit]) -> Vec<u8> {
    for e in edits {
        let len = bytes.len();
        if len == 0 {
            break;
        }
        match e {
            Edit::HeaderFlip(i, bit) => bytes[usize::from(*i) % len] ^= 1 << bit,
            Edit::Set(i, v) => bytes[i.index(len)] = *v,
            Edit::HeaderLength(v) => {
                for (k, b) in v.to_le_bytes().iter().enumerate() {
                    if let Some(slot) = bytes.get_mut(k) {
                        *slot = *b;
                    }
                }
            }
            Edit::Truncate(i) => bytes.truncate(i.index(len)),
        }
    }
    bytes
}

const TINY: &str = r#"
    name = "fuzz"
    device = "cpu"
    threads = 1
    [data]
    train_size = 100
    test_size = 20
    image_size = 16
    n_positions = 6
    [model]
    latent_dim = 2
    hidden = [16]
    [train]
    epochs = 1
    batch_size = 50
    [eval]
    batch_size = 20
    samples = 2
    reconstructions = 1
    interpolations = 0
    latent_points = 0
    log_likelihood_k = 4
    log_likelihood_images = 4
"#;

fn copy_run(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() && path.file_name().is_some_and(|n| n != ".lock") {
            std::fs::copy(&path, to.join(path.file_name().unwrap())).unwrap();
        }
    }
}

#[test]
fn fuzz_checkpoint_and_model_files() {
    let _lock = torch_rng_lock();
    let out = tempfile::tempdir().unwrap();
    let config = config_in(TINY, "fuzz.toml", out.path(), &[]);
    let run: PathBuf = run_experiment(&config).unwrap().run_dir;
    let files = ["checkpoint.safetensors", "model.safetensors"];
    let originals: Vec<Vec<u8>> = files
        .iter()
        .map(|f| std::fs::read(run.join(f)).unwrap())
        .collect();
    let work = out.path().join("work");
    let strategy = (0..2usize, prop::collection::vec(edit(), 1..4));
    runner(60)
        .run(&strategy, |(which, edits)| {
            let _ = std::fs::remove_dir_all(&work);
            copy_run(&run, &work);
            let damaged = apply(originals[which].clone(), &edits);
            std::fs::write(work.join(files[which]), &damaged).unwrap();
            if which == 0 {
                let _ = resume_experiment(&work, &[]);
            } else {
                let _ = TrainedRun::open(&work);
            }
            Ok(())
        })
        .unwrap_or_else(|e| panic!("fuzz target `checkpoint`: {e}"));
}
