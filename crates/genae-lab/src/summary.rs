//! `summary.json`: what a finished run reports, written atomically at the end, then
//! `report.html` from it.

use std::path::PathBuf;

use serde::Serialize;
use serde_json::Value;

use crate::error::LabError;
use crate::metrics::Record;
use crate::run_dir::RunDir;

/// What a finished run reports (also written as `summary.json`).
#[derive(Clone, Debug, Serialize)]
pub struct RunSummary {
    /// The model kind.
    pub model: String,
    /// The data set.
    pub dataset: String,
    /// The device it ran on.
    pub device: String,
    /// The run directory.
    pub run_dir: PathBuf,
    /// Final test numbers by name (the last epoch's evaluation, then what the model kind adds
    /// at the end: `reconstruction_mse`, `log_likelihood`, `bits_per_dim`, …).
    pub test: Record,
    /// Training totals.
    pub train: TrainTotals,
    /// Peak resident memory of the process, in MiB (Linux; `None` elsewhere).
    pub peak_rss_mb: Option<f64>,
    /// Sections of the model kind and of the shared evaluations (`aae`, `avb`, `vq`, `prior`,
    /// `chain`, …), each a JSON object at the top level of `summary.json`.
    #[serde(flatten)]
    pub sections: std::collections::BTreeMap<String, Value>,
}

impl RunSummary {
    /// The section `name` (e.g. `"aae"`), if the run wrote one.
    pub fn section(&self, name: &str) -> Option<&Value> {
        self.sections.get(name)
    }
}

/// Training totals in [`RunSummary`] (over every phase of the run).
#[derive(Clone, Debug, Serialize)]
pub struct TrainTotals {
    /// Epochs run (all phases).
    pub epochs: usize,
    /// Optimiser steps run (all phases).
    pub steps: u64,
    /// Training seconds (evaluation excluded).
    pub seconds: f64,
    /// Training examples per second over the whole run.
    pub examples_per_s: f64,
    /// The last epoch's training terms (of the last phase), by name.
    pub last_epoch: Record,
    /// Per phase, when the run has more than one (VQ-VAE: `vqvae`, then `prior`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub phases: Vec<PhaseSummary>,
}

/// One phase's totals in [`TrainTotals`].
#[derive(Clone, Debug, Serialize)]
pub struct PhaseSummary {
    /// The phase's name.
    pub name: String,
    /// Its epochs.
    pub epochs: usize,
    /// Its optimiser steps.
    pub steps: u64,
    /// Its training seconds.
    pub seconds: f64,
}

/// Writes `summary.json` (atomically) and then `report.html`.
pub(crate) fn write_summary(run_dir: &RunDir, summary: &RunSummary) -> Result<(), LabError> {
    let json = serde_json::to_string_pretty(summary).expect("the summary always serialises");
    run_dir.write_atomic("summary.json", json.as_bytes())?;
    crate::report::write_report(run_dir)?;
    Ok(())
}

/// Peak resident set size of this process (`VmHWM`), in MiB.
pub(crate) fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}
