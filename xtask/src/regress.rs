//! `cargo xtask regress [--bless]`: short fixed-seed experiments, one per model family, whose
//! `summary.json` numbers are compared with the baselines committed in `tests/baselines/`.
//!
//! Each suite member is a shipped config `crates/genae-lab/configs/regress-*.toml` (a few seconds
//! to under a minute on a 2-core CPU) and has a baseline `tests/baselines/<name>.toml`:
//!
//! ```toml
//! [metrics."test.elbo"]
//! value = -76.719     # what the blessed run gave
//! tolerance = 1.5     # how far below it a result may fall (nats; higher is better)
//! ```
//!
//! The check is two-sided: a result outside `value ± tolerance` fails whichever side it is on
//! (a bug that inflates a likelihood — a dropped `−ln k` — is as much a failure as one that
//! lowers it); an intended change is blessed. `--bless` rewrites every baseline's values from
//! this run, keeping tolerances already set.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{bail, Context, Result};

use crate::{process, setup};

/// Numbers a likelihood-based run is compared on, with the tolerance a fresh baseline gets.
const BOUNDS: &[(&str, f64)] = &[("test.elbo", 1.5), ("test.log_likelihood.value", 1.5)];

/// The suite: shipped configs, one per model family the engine trains, each with the dotted
/// `summary.json` paths it is compared on and the tolerance a fresh baseline gets.
const SUITE: [(&str, &[(&str, f64)]); 7] = [
    ("regress-vae", BOUNDS),
    ("regress-iwae", BOUNDS),
    ("regress-conv-logistic", BOUNDS),
    (
        "regress-dvae",
        &[("test.elbo", 1.5), ("test.dvae_bound", 1.5)],
    ),
    (
        "regress-aae",
        &[
            ("test.reconstruction", 1.5),
            ("test.reconstruction_mse", 0.005),
        ],
    ),
    ("regress-avb", BOUNDS),
    (
        "regress-vqvae",
        &[
            ("test.bits_per_dim", 0.03),
            ("test.prior_nll", 1.5),
            ("vq.perplexity", 2.0),
        ],
    ),
];
/// Where baselines live, relative to the workspace root.
const BASELINES: &str = "tests/baselines";

/// `cargo xtask regress` arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Rewrite the baselines from this run's numbers (keeping their tolerances).
    #[arg(long)]
    bless: bool,
}

/// How one number compares with its baseline.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Verdict {
    /// Within the tolerance.
    Ok,
    /// Above the baseline by more than the tolerance (bless it if the change is intended).
    Above,
    /// Below the baseline by more than the tolerance.
    Below,
    /// The run did not report it.
    Missing,
}

impl Verdict {
    fn text(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Above => "ABOVE (bless if intended)",
            Self::Below => "BELOW",
            Self::Missing => "MISSING",
        }
    }

    fn fails(self) -> bool {
        !matches!(self, Self::Ok)
    }
}

/// Judges `value` against `baseline ± tolerance` (outside it on either side fails).
pub fn judge(value: Option<f64>, baseline: f64, tolerance: f64) -> Verdict {
    match value {
        Some(v) if v.is_finite() && v < baseline - tolerance => Verdict::Below,
        Some(v) if v.is_finite() && v > baseline + tolerance => Verdict::Above,
        Some(v) if v.is_finite() => Verdict::Ok,
        _ => Verdict::Missing,
    }
}

/// One baseline entry.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Expected {
    value: f64,
    tolerance: f64,
}

fn baseline_path(name: &str) -> PathBuf {
    crate::root().join(BASELINES).join(format!("{name}.toml"))
}

/// The `[metrics."<path>"]` entries of a baseline file.
fn read_baseline(path: &Path) -> Result<Vec<(String, Expected)>> {
    let text = fs::read_to_string(path).with_context(|| {
        format!(
            "no baseline {} (run `cargo xtask regress --bless` to create it)",
            path.display()
        )
    })?;
    let table: toml::Table = text
        .parse()
        .with_context(|| format!("{} is not valid TOML", path.display()))?;
    let metrics = table
        .get("metrics")
        .and_then(toml::Value::as_table)
        .with_context(|| format!("{}: no [metrics] table", path.display()))?;
    let mut out = Vec::new();
    for (key, entry) in metrics {
        let number = |field: &str| {
            entry
                .get(field)
                .and_then(|v| v.as_float().or_else(|| v.as_integer().map(|i| i as f64)))
                .with_context(|| {
                    format!(
                        "{}: metrics.\"{key}\".{field} is missing or not a number",
                        path.display()
                    )
                })
        };
        let expected = Expected {
            value: number("value")?,
            tolerance: number("tolerance")?,
        };
        if expected.tolerance.is_nan() || expected.tolerance < 0.0 {
            bail!(
                "{}: metrics.\"{key}\".tolerance must be ≥ 0",
                path.display()
            );
        }
        out.push((key.clone(), expected));
    }
    Ok(out)
}

fn write_baseline(path: &Path, name: &str, entries: &[(String, Expected)]) -> Result<()> {
    let mut text = format!(
        "# Baseline of the `{name}` regression run (crates/genae-lab/configs/{name}.toml),\n\
         # written by `cargo xtask regress --bless` on {}. A result outside value ± tolerance fails.\n",
        chrono::Utc::now().format("%Y-%m-%d")
    );
    for (key, e) in entries {
        let _ = write!(
            text,
            "\n[metrics.\"{key}\"]\nvalue = {:.3}\ntolerance = {}\n",
            e.value, e.tolerance
        );
    }
    fs::create_dir_all(path.parent().expect("baselines live in a folder"))?;
    fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

/// The number at a dotted path of `summary.json`.
fn number_at(summary: &serde_json::Value, path: &str) -> Option<f64> {
    path.split('.')
        .try_fold(summary, |v, key| v.get(key))?
        .as_f64()
}

/// Runs one suite member; returns its `summary.json`.
fn run_member(genae: &Path, name: &str) -> Result<serde_json::Value> {
    let root = crate::root();
    let mut cmd = Command::new(genae);
    cmd.current_dir(root).env("GENAE_DEVICE", "cpu").args([
        "train",
        name,
        "--set",
        "output_dir=runs/regress",
    ]);
    let stdout = process::tee_stdout(&mut cmd)?;
    let run_dir = stdout
        .lines()
        .rev()
        .find_map(|line| line.trim().strip_prefix("run directory:"))
        .map(|p| root.join(p.trim()))
        .context("regress: genae printed no `run directory: <path>` line")?;
    let path = run_dir.join("summary.json");
    let text =
        fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))
}

/// Setup, release build, the suite, the table; `Ok(FAILURE)` on a regression.
pub fn run(args: &Args) -> Result<ExitCode> {
    setup::run()?;
    let mut build = process::cargo();
    build.args(["build", "--release", "-p", "genae-lab", "--bin", "genae"]);
    process::run(&mut build).context("regress: building the genae binary failed")?;
    let genae = crate::genae_binary();

    let mut rows = Vec::new();
    for (name, metrics) in SUITE {
        println!("\n== {name}");
        let summary = run_member(&genae, name)?;
        let path = baseline_path(name);
        if args.bless {
            let old = read_baseline(&path).unwrap_or_default();
            let entries: Vec<(String, Expected)> = metrics
                .iter()
                .filter_map(|&(key, default_tolerance)| {
                    let value = number_at(&summary, key)?;
                    let tolerance = old
                        .iter()
                        .find(|(k, _)| k == key)
                        .map_or(default_tolerance, |(_, e)| e.tolerance);
                    Some((key.to_string(), Expected { value, tolerance }))
                })
                .collect();
            write_baseline(&path, name, &entries)?;
            println!("blessed {}", path.display());
        }
        for (key, expected) in read_baseline(&path)? {
            let value = number_at(&summary, &key);
            let verdict = judge(value, expected.value, expected.tolerance);
            rows.push((name, key, expected, value, verdict));
        }
    }

    let mut table = String::from(
        "| run | metric | baseline | tolerance | this run | Δ | verdict |\n|---|---|---:|---:|---:|---:|---|\n",
    );
    for (name, key, e, value, verdict) in &rows {
        let (shown, delta) = match value {
            Some(v) => (format!("{v:.3}"), format!("{:+.3}", v - e.value)),
            None => ("n/a".into(), "n/a".into()),
        };
        let _ = writeln!(
            table,
            "| {name} | {key} | {:.3} | {} | {shown} | {delta} | {} |",
            e.value,
            e.tolerance,
            verdict.text()
        );
    }
    println!("\n{table}");
    let failed = rows.iter().filter(|r| r.4.fails()).count();
    if failed > 0 {
        eprintln!(
            "xtask: regress: {failed} number(s) outside their baselines or missing (bless \
             intended changes with `cargo xtask regress --bless`)"
        );
        return Ok(ExitCode::FAILURE);
    }
    println!("regress: all {} numbers within their baselines", rows.len());
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_follow_the_tolerance_band() {
        assert_eq!(judge(Some(-76.0), -76.5, 1.5), Verdict::Ok);
        assert_eq!(judge(Some(-78.1), -76.5, 1.5), Verdict::Below);
        assert_eq!(judge(Some(-74.9), -76.5, 1.5), Verdict::Above);
        assert_eq!(judge(None, -76.5, 1.5), Verdict::Missing);
        assert_eq!(judge(Some(f64::NAN), -76.5, 1.5), Verdict::Missing);
        // A baseline tightened past the result turns the same number red.
        assert_eq!(judge(Some(-76.0), -74.0, 1.0), Verdict::Below);
        // Two-sided: a likelihood inflated by a dropped −ln k (≈ 5.3 nats at k = 200) fails.
        assert_eq!(judge(Some(-76.5 + 200f64.ln()), -76.5, 1.5), Verdict::Above);
        assert!(Verdict::Below.fails() && Verdict::Above.fails() && Verdict::Missing.fails());
        assert!(!Verdict::Ok.fails());
    }

    #[test]
    fn baselines_round_trip_and_bad_ones_are_named() {
        let dir = std::env::temp_dir().join(format!("genae-regress-{}", std::process::id()));
        let path = dir.join("x.toml");
        let entries = vec![
            (
                "test.elbo".to_string(),
                Expected {
                    value: -76.719,
                    tolerance: 1.5,
                },
            ),
            (
                "test.log_likelihood.value".to_string(),
                Expected {
                    value: -71.8,
                    tolerance: 2.0,
                },
            ),
        ];
        write_baseline(&path, "x", &entries).unwrap();
        let mut read = read_baseline(&path).unwrap();
        read.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(read, entries);

        fs::write(&path, "[metrics.\"test.elbo\"]\nvalue = -1.0\n").unwrap();
        let err = format!("{:#}", read_baseline(&path).unwrap_err());
        assert!(err.contains("metrics.\"test.elbo\".tolerance"), "{err}");
        let err = format!("{:#}", read_baseline(&dir.join("none.toml")).unwrap_err());
        assert!(err.contains("--bless"), "{err}");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn every_suite_member_is_a_shipped_config_with_a_baseline() {
        for (name, metrics) in SUITE {
            let config = crate::root()
                .join("crates/genae-lab/configs")
                .join(format!("{name}.toml"));
            assert!(config.is_file(), "{}", config.display());
            let baseline = read_baseline(&baseline_path(name)).unwrap();
            for (key, _) in metrics {
                assert!(baseline.iter().any(|(k, _)| k == key), "{name}: {key}");
            }
        }
    }
}
