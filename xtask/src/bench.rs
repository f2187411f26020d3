//! `cargo xtask bench [--compare]`: the criterion benches of every crate and the side-by-side
//! comparisons with PyTorch, written into the generated section of `docs/benchmarks.md`.
//!
//! Criterion leaves each benchmark's numbers in `target/criterion/<id>/new/{benchmark,estimates}
//! .json`; the generated section lists every benchmark this run measured (mean, 95% interval,
//! throughput), then the PyTorch counterparts run on the same machine right after, as ratios.
//! With `--compare`, `cargo xtask compare vae` runs too and its table is included. The rest of
//! `docs/benchmarks.md` (the narrative, older measurements) is left as it is.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

use anyhow::{Context, Result};

use crate::libtorch::Layout;
use crate::{process, setup};

/// Markers around the generated section of `docs/benchmarks.md`.
const BEGIN: &str = "<!-- cargo xtask bench: generated section, rewritten on every run -->";
const END: &str = "<!-- end of the cargo xtask bench section -->";
/// The PyTorch counterpart of the quantizer bench.
const QUANTIZER_SCRIPT: &str = "crates/genae-samplers/benches/quantizer_pytorch.py";

/// `cargo xtask bench` arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Also run `cargo xtask compare vae` (a few minutes) and include its table.
    #[arg(long)]
    compare: bool,
}

/// One criterion result.
#[derive(Clone, Debug, PartialEq)]
struct Measured {
    id: String,
    mean_ns: f64,
    low_ns: f64,
    high_ns: f64,
    elements: Option<f64>,
    bytes: Option<f64>,
}

/// Reads every `<dir>/**/new/benchmark.json` (+ `estimates.json`) under `criterion`, modified
/// at or after `since`.
fn read_criterion(criterion: &Path, since: SystemTime) -> Result<Vec<Measured>> {
    let mut found = Vec::new();
    let mut stack = vec![criterion.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.ends_with("new/estimates.json") {
                let fresh = entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .is_ok_and(|t| t >= since);
                if fresh {
                    found.push(read_one(path.parent().expect("new/ has a parent"))?);
                }
            }
        }
    }
    found.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(found)
}

fn read_json(path: &Path) -> Result<serde_json::Value> {
    let text =
        fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))
}

fn read_one(new_dir: &Path) -> Result<Measured> {
    let bench = read_json(&new_dir.join("benchmark.json"))?;
    let est = read_json(&new_dir.join("estimates.json"))?;
    let number = |v: &serde_json::Value, path: &[&str]| {
        path.iter()
            .try_fold(v, |v, k| v.get(*k))
            .and_then(serde_json::Value::as_f64)
    };
    let mean = |field: &str| {
        number(&est, &["mean", field])
            .or_else(|| number(&est, &["mean", "confidence_interval", field]))
    };
    Ok(Measured {
        id: bench["full_id"].as_str().unwrap_or("?").to_string(),
        mean_ns: mean("point_estimate").context("estimates.json without mean.point_estimate")?,
        low_ns: mean("lower_bound").unwrap_or(f64::NAN),
        high_ns: mean("upper_bound").unwrap_or(f64::NAN),
        elements: number(&bench, &["throughput", "Elements"]),
        bytes: number(&bench, &["throughput", "Bytes"]),
    })
}

/// `1.23 ms`-style durations.
fn duration(ns: f64) -> String {
    match ns {
        n if !n.is_finite() => "n/a".into(),
        n if n >= 1e9 => format!("{:.3} s", n / 1e9),
        n if n >= 1e6 => format!("{:.2} ms", n / 1e6),
        n if n >= 1e3 => format!("{:.2} µs", n / 1e3),
        n => format!("{n:.0} ns"),
    }
}

fn throughput(m: &Measured) -> String {
    let per_s = |count: f64| count / (m.mean_ns / 1e9);
    match (m.elements, m.bytes) {
        (Some(n), _) => format!("{:.3e} elements/s", per_s(n)),
        (None, Some(b)) => format!("{:.1} MiB/s", per_s(b) / (1024.0 * 1024.0)),
        _ => String::new(),
    }
}

/// `quantizer/fwd_bwd_loss_...: 12.345 ms/iter (...)` lines of the PyTorch script.
fn parse_pytorch_lines(text: &str) -> Vec<(String, f64, String)> {
    text.lines()
        .filter_map(|line| {
            let (id, rest) = line.split_once(": ")?;
            let (ms, note) = rest.split_once(" ms/iter")?;
            Some((
                id.trim().to_string(),
                ms.trim().parse().ok()?,
                note.trim().to_string(),
            ))
        })
        .collect()
}

/// Replaces the generated section of `doc` (or appends one).
fn splice(doc: &str, section: &str) -> String {
    let block = format!("{BEGIN}\n{section}{END}\n");
    match (doc.find(BEGIN), doc.find(END)) {
        (Some(b), Some(e)) if e > b => format!(
            "{}{block}{}",
            &doc[..b],
            &doc[e + END.len()..].trim_start_matches('\n')
        ),
        _ => format!("{}\n\n{block}", doc.trim_end()),
    }
}

/// Runs everything and rewrites the generated section of `docs/benchmarks.md`.
pub fn run(args: &Args) -> Result<()> {
    let found = setup::run()?;
    let root = crate::root();
    let started = SystemTime::now();
    let mut bench = process::cargo();
    bench
        .current_dir(root)
        .args(["bench", "--workspace", "--bench", "*", "--", "--noplot"]);
    process::run(&mut bench).context("bench: `cargo bench` failed")?;
    let criterion = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| root.join("target"), PathBuf::from)
        .join("criterion");
    let results = read_criterion(&criterion, started)?;

    let mut section = String::new();
    let at: chrono::DateTime<chrono::Utc> = SystemTime::now().into();
    let _ = writeln!(
        section,
        "## Latest `cargo xtask bench`\n\n{} on {} (CPU device; criterion means with 95% \
         intervals).\n",
        at.format("%Y-%m-%d %H:%M UTC"),
        crate::machine()
    );
    section.push_str("| benchmark | mean | 95% interval | throughput |\n|---|---:|---:|---:|\n");
    for m in &results {
        let _ = writeln!(
            section,
            "| `{}` | {} | {} – {} | {} |",
            m.id,
            duration(m.mean_ns),
            duration(m.low_ns),
            duration(m.high_ns),
            throughput(m)
        );
    }

    let layout = Layout::new();
    if let Some(python) = found
        .python(&layout)
        .or_else(|| Some(layout.venv_python()).filter(|p| p.exists()))
    {
        let mut cmd = Command::new(python);
        cmd.current_dir(root)
            .args(["-W", "ignore"])
            .arg(QUANTIZER_SCRIPT);
        let text =
            process::capture(&mut cmd).context("bench: the PyTorch quantizer script failed")?;
        let _ = writeln!(
            section,
            "\n### Side by side with PyTorch (same machine, right after)\n\n\
             | operation | genae | PyTorch | PyTorch / genae |\n|---|---:|---:|---:|"
        );
        for (id, ms, note) in parse_pytorch_lines(&text) {
            let ours = results.iter().find(|m| m.id.eq_ignore_ascii_case(&id));
            let (genae, ratio) = match ours {
                Some(m) => (duration(m.mean_ns), format!("{:.2}×", ms * 1e6 / m.mean_ns)),
                None => ("n/a".into(), "n/a".into()),
            };
            let note = note.trim_start_matches('(').trim_end_matches(')');
            let _ = writeln!(
                section,
                "| `{id}` | {genae} | {ms:.3} ms ({note}) | {ratio} |"
            );
        }
    }

    if args.compare {
        let mut cmd = Command::new(std::env::current_exe()?);
        cmd.current_dir(root).args(["compare", "vae"]);
        process::run(&mut cmd).context("bench: `compare vae` failed")?;
        // compare writes its table to runs/compare-vae-<UTC>.md; take the newest.
        let newest = fs::read_dir(root.join("runs"))?
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.extension().is_some_and(|x| x == "md")
                    && p.file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with("compare-vae-"))
            })
            .max();
        if let Some(path) = newest {
            let table = fs::read_to_string(&path)?;
            let _ = writeln!(
                section,
                "\n### `cargo xtask compare vae`\n\n{}\n",
                table
                    .replace("\n# ", "\n#### ")
                    .replace("\n## ", "\n#### ")
                    .trim()
            );
        }
    }
    section.push('\n');

    let doc_path = root.join("docs/benchmarks.md");
    let doc = fs::read_to_string(&doc_path).unwrap_or_else(|_| "# Benchmarks\n".into());
    fs::write(&doc_path, splice(&doc, &section))
        .with_context(|| format!("cannot write {}", doc_path.display()))?;
    println!("wrote the generated section of {}", doc_path.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generated_section_is_replaced_not_duplicated() {
        let doc = "# Benchmarks\n\nnarrative\n";
        let once = splice(doc, "first\n");
        assert!(once.starts_with("# Benchmarks\n\nnarrative\n\n"));
        let twice = splice(&once, "second\n");
        assert_eq!(twice.matches(BEGIN).count(), 1);
        assert!(twice.contains("second") && !twice.contains("first"));
        assert!(twice.contains("narrative"));
    }

    #[test]
    fn criterion_results_and_pytorch_lines_are_read() {
        let dir = std::env::temp_dir().join(format!("genae-bench-{}", std::process::id()));
        let new = dir.join("group/f/new");
        fs::create_dir_all(&new).unwrap();
        fs::write(
            new.join("benchmark.json"),
            r#"{"full_id":"group/f","throughput":{"Elements":10}}"#,
        )
        .unwrap();
        fs::write(
            new.join("estimates.json"),
            r#"{"mean":{"confidence_interval":{"lower_bound":1.0e6,"upper_bound":3.0e6},"point_estimate":2.0e6}}"#,
        )
        .unwrap();
        let found = read_criterion(&dir, SystemTime::UNIX_EPOCH).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].id, "group/f");
        assert_eq!(found[0].mean_ns, 2.0e6);
        assert_eq!(found[0].low_ns, 1.0e6);
        assert_eq!(duration(found[0].mean_ns), "2.00 ms");
        assert_eq!(throughput(&found[0]), "5.000e3 elements/s");
        // Results older than the run are left out.
        let later = SystemTime::now() + std::time::Duration::from_secs(3600);
        assert!(read_criterion(&dir, later).unwrap().is_empty());
        fs::remove_dir_all(&dir).unwrap();

        let lines = parse_pytorch_lines(
            "quantizer/fwd_bwd_loss_x_cpu: 12.500 ms/iter (torch 2.11.0, 2 threads)\nnoise\n",
        );
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].1, 12.5);
    }
}
