//! `genae sweep`: a grid of config overrides, one point per process on a cluster's scheduler
//! (`--index I` or Slurm's `SLURM_ARRAY_TASK_ID`) or every point in turn, each in its own run
//! directory under one sweep folder, and a table of the runs' summaries.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::{ConfigError, ValidConfig};
use crate::error::LabError;
use crate::summary::RunSummary;
use crate::{resume_experiment, run_experiment};

/// The environment variable a Slurm job array sets to the task's index.
pub const ARRAY_INDEX_VAR: &str = "SLURM_ARRAY_TASK_ID";

/// The file in a sweep folder that lists the grid and its points.
pub const SWEEP_FILE: &str = "sweep.json";

/// The axes of a sweep: config keys and the values each takes. Points enumerate the product,
/// the last axis fastest.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Grid {
    /// `(key, values)` per axis, values as TOML literals (`4.0`, `"gaussian"`, `[32, 64]`).
    pub axes: Vec<(String, Vec<String>)>,
}

impl Grid {
    /// Axes from `key=[v1, v2, …]` specs (a value without brackets is a one-point axis); an
    /// error names the spec that does not parse or gives no value.
    ///
    /// ```
    /// use genae_lab::Grid;
    /// let grid = Grid::parse(&["train.beta=[1, 4]".into(), "seed=[0, 1, 2]".into()]).unwrap();
    /// assert_eq!(grid.len(), 6);
    /// assert_eq!(grid.overrides(4).unwrap(), vec!["train.beta=4", "seed=1"]);
    /// ```
    pub fn parse(specs: &[String]) -> Result<Self, ConfigError> {
        let mut axes = Vec::new();
        for spec in specs {
            let fail = |reason: &str| ConfigError::Override {
                arg: spec.clone(),
                reason: format!("--grid {reason}"),
            };
            let (key, raw) = spec
                .split_once('=')
                .ok_or_else(|| fail("expects `section.key=[value, …]`"))?;
            let key = key.trim();
            if key.is_empty() || key.split('.').any(str::is_empty) {
                return Err(fail("needs a key before `=`"));
            }
            let table: toml::Table = format!("v = {raw}")
                .parse()
                .map_err(|_| fail("values must be TOML, e.g. `[1, 2.5, \"text\"]`"))?;
            let values = match &table["v"] {
                toml::Value::Array(values) => values.iter().map(ToString::to_string).collect(),
                one => vec![one.to_string()],
            };
            if Vec::is_empty(&values) {
                return Err(fail("has no values"));
            }
            axes.push((key.to_string(), values));
        }
        Ok(Self { axes })
    }

    /// The number of points (1 for no axes).
    pub fn len(&self) -> usize {
        self.axes.iter().map(|(_, v)| v.len()).product()
    }

    /// Whether the grid has no points (never: an axis has at least one value).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The `key=value` overrides of point `index` (`None` past the last point).
    pub fn overrides(&self, index: usize) -> Option<Vec<String>> {
        if index >= self.len() {
            return None;
        }
        let mut rest = index;
        let mut out: Vec<String> = self
            .axes
            .iter()
            .rev()
            .map(|(key, values)| {
                let value = &values[rest % values.len()];
                rest /= values.len();
                format!("{key}={value}")
            })
            .collect();
        out.reverse();
        Some(out)
    }
}

/// `sweep.json`: what a sweep folder holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SweepFile {
    /// The base config's run name.
    pub name: String,
    /// The grid.
    pub grid: Grid,
    /// Each point's run name and overrides, by index.
    pub points: Vec<(String, Vec<String>)>,
}

/// The point to run: `--index` when given, else `SLURM_ARRAY_TASK_ID` when set, else `None`
/// (every point in turn).
pub fn array_index(index: Option<usize>) -> Result<Option<usize>, ConfigError> {
    if index.is_some() {
        return Ok(index);
    }
    match std::env::var(ARRAY_INDEX_VAR) {
        Ok(text) => text
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| ConfigError::Invalid {
                field: ARRAY_INDEX_VAR,
                reason: format!("must be a point index (0, 1, …), got `{text}`"),
            }),
        Err(_) => Ok(None),
    }
}

/// The run name of point `index` of a sweep of `name`.
fn point_name(name: &str, index: usize) -> String {
    format!("{name}-p{index}")
}

/// Runs point `index` of `grid` (every point in turn for `None`), each `load`ed with the
/// point's overrides and trained into `<sweep>/<name>-p<index>-<time>`, the sweep folder being
/// `out` or `<output_dir>/<name>-sweep`. A point whose run finished is skipped, one that was
/// stopped after a checkpoint is resumed. Writes `sweep.json`; returns the summaries of the
/// runs it trained and the sweep folder.
pub fn run_sweep(
    load: &dyn Fn(&[String]) -> Result<ValidConfig, LabError>,
    grid: &Grid,
    index: Option<usize>,
    out: Option<&Path>,
) -> Result<(Vec<RunSummary>, PathBuf), LabError> {
    let base = load(&[])?;
    let name = base.file().name.clone();
    let dir = out.map_or_else(
        || base.file().output_dir.join(format!("{name}-sweep")),
        Path::to_path_buf,
    );
    let n = grid.len();
    let indices: Vec<usize> = match index {
        Some(i) if i >= n => {
            return Err(ConfigError::Invalid {
                field: "--index",
                reason: format!("the grid has {n} points (0..={}), got {i}", n - 1),
            }
            .into())
        }
        Some(i) => vec![i],
        None => (0..n).collect(),
    };
    let points: Vec<(String, Vec<String>)> = (0..n)
        .map(|i| (point_name(&name, i), grid.overrides(i).expect("i < n")))
        .collect();
    // Every point's config is checked before anything is trained.
    let output_dir = toml::Value::String(dir.display().to_string());
    let mut configs = Vec::new();
    for &i in &indices {
        let (run_name, overrides) = &points[i];
        let mut all = overrides.clone();
        all.push(format!("name=\"{run_name}\""));
        all.push(format!("output_dir={output_dir}"));
        configs.push((i, load(&all)?));
    }
    std::fs::create_dir_all(&dir)
        .map_err(|e| LabError::io("creating the sweep folder", &dir, e))?;
    let file = SweepFile {
        name,
        grid: grid.clone(),
        points,
    };
    let json = serde_json::to_string_pretty(&file).expect("a sweep file serialises");
    let tmp = dir.join(format!(".{SWEEP_FILE}.tmp{}", std::process::id()));
    std::fs::write(&tmp, json).map_err(|e| LabError::io("writing", &tmp, e))?;
    std::fs::rename(&tmp, dir.join(SWEEP_FILE))
        .map_err(|e| LabError::io("writing sweep.json in", &dir, e))?;
    let mut summaries = Vec::new();
    for (i, config) in configs {
        let existing = runs_of(&dir, &file.points[i].0)?;
        if existing.iter().any(|d| d.join("summary.json").is_file()) {
            continue;
        }
        let summary = match existing
            .iter()
            .find(|d| d.join("checkpoint.safetensors").is_file())
        {
            Some(run_dir) => resume_experiment(run_dir, &[])?,
            None => run_experiment(&config)?,
        };
        summaries.push(summary);
    }
    Ok((summaries, dir))
}

/// The run directories `<dir>/<run_name>-<time>` of one point.
fn runs_of(dir: &Path, run_name: &str) -> Result<Vec<PathBuf>, LabError> {
    let prefix = format!("{run_name}-");
    let mut runs: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| LabError::io("listing", dir, e))?
        .filter_map(|e| e.ok())
        .filter(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.strip_prefix(&prefix)
                .is_some_and(|time| time.starts_with(|c: char| c.is_ascii_digit()))
        })
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    runs.sort();
    Ok(runs)
}

/// The numbers `genae sweep summarize` shows when a summary has them, by their path in
/// `summary.json`.
pub const SUMMARY_COLUMNS: [&str; 12] = [
    "test.elbo",
    "test.log_likelihood.value",
    "test.reconstruction",
    "test.reconstruction_mse",
    "disentanglement.beta_vae",
    "disentanglement.factor_vae",
    "disentanglement.mig",
    "disentanglement.sap",
    "disentanglement.dci_disentanglement",
    "disentanglement.dci_completeness",
    "train.seconds",
    "peak_rss_mb",
];

/// A Markdown table of the finished runs in `dir` (a sweep folder, or any folder of run
/// directories): one row per run with its point's overrides (from `sweep.json`), the columns of
/// [`SUMMARY_COLUMNS`] and `extra` that at least one summary has.
pub fn summarize_sweep(dir: &Path, extra: &[String]) -> Result<String, LabError> {
    let sweep: Option<SweepFile> = match std::fs::read_to_string(dir.join(SWEEP_FILE)) {
        Ok(text) => Some(
            serde_json::from_str(&text).map_err(|e| ConfigError::Invalid {
                field: SWEEP_FILE,
                reason: format!("{}: {e}", dir.join(SWEEP_FILE).display()),
            })?,
        ),
        Err(_) => None,
    };
    let mut runs: Vec<(String, serde_json::Value)> = Vec::new();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| LabError::io("listing", dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("summary.json").is_file())
        .collect();
    entries.sort();
    for path in entries {
        let file = path.join("summary.json");
        let text = std::fs::read_to_string(&file).map_err(|e| LabError::io("reading", &file, e))?;
        let value = serde_json::from_str(&text).map_err(|e| ConfigError::Invalid {
            field: "summary.json",
            reason: format!("{}: {e}", file.display()),
        })?;
        let name = path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into();
        runs.push((name, value));
    }
    if runs.is_empty() {
        return Err(ConfigError::Invalid {
            field: "DIR",
            reason: format!(
                "{} holds no finished run (no */summary.json)",
                dir.display()
            ),
        }
        .into());
    }
    let lookup = |v: &serde_json::Value, path: &str| -> Option<f64> {
        path.split('.').try_fold(v, |v, key| v.get(key))?.as_f64()
    };
    let columns: Vec<&str> = SUMMARY_COLUMNS
        .iter()
        .copied()
        .chain(extra.iter().map(String::as_str))
        .filter(|c| runs.iter().any(|(_, v)| lookup(v, c).is_some()))
        .collect();
    let point_of = |run: &str| -> String {
        sweep
            .as_ref()
            .and_then(|s| {
                s.points.iter().find(|(name, _)| {
                    run.strip_prefix(name.as_str())
                        .is_some_and(|t| t.starts_with('-'))
                })
            })
            .map_or_else(String::new, |(_, o)| o.join(" "))
    };
    let mut table = format!("| run | point | {} |\n", columns.join(" | "));
    table.push_str(&format!("|---|---|{}\n", "---|".repeat(columns.len())));
    for (name, value) in &runs {
        let cells: Vec<String> = columns
            .iter()
            .map(|c| match lookup(value, c) {
                None => "–".into(),
                Some(x) if x.fract() == 0.0 && x.abs() < 1e15 => format!("{x:.0}"),
                Some(x) => format!("{x:.4}"),
            })
            .collect();
        table.push_str(&format!(
            "| {name} | {} | {} |\n",
            point_of(name),
            cells.join(" | ")
        ));
    }
    Ok(table)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_enumerate_the_product_last_axis_fastest() {
        let grid = Grid::parse(&[
            "train.beta=[1, 4.5]".into(),
            "model.activation=[\"relu\", \"tanh\", \"elu\"]".into(),
            "seed=7".into(),
        ])
        .unwrap();
        assert_eq!(grid.len(), 6);
        assert_eq!(
            grid.overrides(0).unwrap(),
            ["train.beta=1", "model.activation=\"relu\"", "seed=7"]
        );
        assert_eq!(
            grid.overrides(5).unwrap(),
            ["train.beta=4.5", "model.activation=\"elu\"", "seed=7"]
        );
        assert!(grid.overrides(6).is_none());
        assert_eq!(Grid::parse(&[]).unwrap().len(), 1);
    }

    #[test]
    fn bad_specs_are_named() {
        for spec in [
            "beta",
            "=[1]",
            "train.beta=[]",
            "train.beta=[1,",
            "train..beta=[1]",
        ] {
            let err = Grid::parse(&[spec.to_string()]).unwrap_err().to_string();
            assert!(
                err.contains(spec) && err.contains("--grid"),
                "{spec}: {err}"
            );
        }
    }
}
