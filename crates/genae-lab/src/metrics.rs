//! Metrics by name: [`Record`] (named numbers in the order a model kind gives them, written as
//! a JSON object), the terms one training step reports ([`StepTerms`]), their running sums over
//! an epoch ([`RunningSums`]), and the line each epoch appends to `metrics.jsonl`
//! ([`EpochLine`]). A new objective's terms reach `metrics.jsonl`, `summary.json`,
//! `curves.png` and `report.html` by being named here, with no change to the trainer or the
//! report.

use genae_tensor::noise::{with_batch_rows, BatchRows};
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::Value;
use tch::{Device, Kind, Tensor};

use crate::data::DeviceSplit;
use crate::error::LabError;

/// One value of a [`Record`]: a number (kept as `f64` even when NaN or infinite, so the
/// non-finite guard sees it; written as `null` then) or any other JSON value.
#[derive(Clone, Debug, PartialEq)]
pub enum Entry {
    /// A real number.
    Number(f64),
    /// Anything else: an integer count, a string, a small object.
    Json(Value),
}

impl Entry {
    /// The value as a number, if it is one.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Self::Number(x) => Some(*x),
            Self::Json(v) => v.as_f64(),
        }
    }

    /// The value as JSON (non-finite numbers as `null`).
    pub fn to_json(&self) -> Value {
        match self {
            Self::Number(x) => Value::from(*x),
            Self::Json(v) => v.clone(),
        }
    }
}

impl From<f64> for Entry {
    fn from(x: f64) -> Self {
        Self::Number(x)
    }
}

impl From<usize> for Entry {
    fn from(n: usize) -> Self {
        Self::Json(Value::from(n))
    }
}

impl From<Value> for Entry {
    fn from(v: Value) -> Self {
        Self::Json(v)
    }
}

/// Named values (numbers, or small JSON objects such as a log-likelihood summary) in insertion
/// order; serialised as a JSON object.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Record(Vec<(String, Entry)>);

impl Record {
    /// An empty record.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `name` to `value` (replacing an earlier value of that name in place).
    pub fn insert(&mut self, name: &str, value: impl Into<Entry>) {
        let value = value.into();
        match self.0.iter_mut().find(|(n, _)| n == name) {
            Some((_, v)) => *v = value,
            None => self.0.push((name.to_string(), value)),
        }
    }

    /// The same, builder style.
    pub fn with(mut self, name: &str, value: impl Into<Entry>) -> Self {
        self.insert(name, value);
        self
    }

    /// Sets `name` to a serialisable value (a struct becomes a JSON object).
    pub fn insert_serialized<T: Serialize>(&mut self, name: &str, value: &T) {
        let value = serde_json::to_value(value).expect("summaries always serialise");
        self.insert(name, value);
    }

    /// The value of `name`.
    pub fn get(&self, name: &str) -> Option<&Entry> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    /// The number `name` (`None` when absent or not a number).
    pub fn number(&self, name: &str) -> Option<f64> {
        self.get(name).and_then(Entry::as_f64)
    }

    /// The number at a dotted path, e.g. `log_likelihood.value`.
    pub fn number_at(&self, path: &str) -> Option<f64> {
        let (head, rest) = path.split_once('.').unwrap_or((path, ""));
        let value = self.get(head)?.to_json();
        rest.split('.')
            .filter(|p| !p.is_empty())
            .try_fold(&value, |v, key| v.get(key))
            .and_then(Value::as_f64)
    }

    /// `(name, value)` pairs in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Entry)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v))
    }

    /// The record of a JSON object (its entries in their order; anything else: empty).
    pub fn from_json(value: &Value) -> Self {
        Self(
            value
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| (k.clone(), Entry::Json(v.clone())))
                        .collect()
                })
                .unwrap_or_default(),
        )
    }

    /// Whether the record is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The first number that is NaN or infinite, with its name.
    pub fn first_non_finite(&self) -> Option<(&str, f64)> {
        self.iter()
            .filter_map(|(n, v)| Some((n, v.as_f64()?)))
            .find(|(_, v)| !v.is_finite())
    }

    /// `name value` pairs of the first `max` numbers, for progress lines.
    pub fn brief(&self, max: usize) -> String {
        self.iter()
            .filter_map(|(n, v)| {
                Some(match v {
                    Entry::Number(x) => format!("{n} {x:.4}"),
                    Entry::Json(j) if j.is_number() => format!("{n} {j}"),
                    Entry::Json(_) => return None,
                })
            })
            .take(max)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl Serialize for Record {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (name, value) in &self.0 {
            map.serialize_entry(name, &value.to_json())?;
        }
        map.end()
    }
}

/// What one training step reports: each term as its **sum over the batch's examples**
/// (detached), so that epoch means are means over training examples, and the value the
/// progress bar shows.
pub(crate) struct StepTerms {
    pub(crate) terms: Vec<(&'static str, Tensor)>,
    /// The step's loss (a scalar), shown by the progress bar.
    pub(crate) loss: Tensor,
    /// Examples in the batch.
    pub(crate) examples: i64,
}

impl StepTerms {
    /// Terms of a batch of `examples`, shown as `loss`.
    pub(crate) fn new(loss: &Tensor, examples: i64) -> Self {
        Self {
            terms: Vec::new(),
            loss: loss.detach(),
            examples,
        }
    }

    /// A term given per example (`[B]`): summed.
    pub(crate) fn per_example(mut self, name: &'static str, values: &Tensor) -> Self {
        self.terms.push((name, values.detach().sum(Kind::Double)));
        self
    }

    /// A term given as the batch mean (a scalar): weighted by the batch size.
    pub(crate) fn batch_mean(mut self, name: &'static str, mean: &Tensor) -> Self {
        let sum = mean.detach().to_kind(Kind::Double) * self.examples as f64;
        self.terms.push((name, sum));
        self
    }
}

/// Running sums of step terms over an epoch, on the device until read.
pub(crate) struct RunningSums {
    sums: Vec<(&'static str, Tensor)>,
    examples: i64,
    device: Device,
}

impl RunningSums {
    pub(crate) fn new(device: Device) -> Self {
        Self {
            sums: Vec::new(),
            examples: 0,
            device,
        }
    }

    pub(crate) fn add(&mut self, step: &StepTerms) {
        for (name, value) in &step.terms {
            match self.sums.iter_mut().find(|(n, _)| n == name) {
                Some((_, sum)) => *sum += value,
                None => {
                    let zero = Tensor::zeros([], (Kind::Double, self.device));
                    self.sums.push((name, zero + value));
                }
            }
        }
        self.examples += step.examples;
    }

    /// The means over the epoch's examples (reads back: waits for the device).
    pub(crate) fn means(&self) -> Record {
        let n = self.examples.max(1) as f64;
        let mut record = Record::new();
        for (name, sum) in &self.sums {
            record.insert(name, sum.double_value(&[]) / n);
        }
        record
    }
}

/// Means over the rows of `x` of the per-example terms `f` gives for each batch of at most
/// `batch_size` rows (summed on the device, read once), without gradients.
pub(crate) fn split_means(
    x: &Tensor,
    batch_size: i64,
    mut f: impl FnMut(&Tensor) -> Result<Vec<(&'static str, Tensor)>, LabError>,
) -> Result<Record, LabError> {
    let n = x.size()[0];
    let mut sums = RunningSums::new(x.device());
    tch::no_grad(|| {
        for (start, len) in crate::data::batch_ranges(n, batch_size) {
            let batch = x.narrow(0, start, len);
            let terms = f(&batch)?
                .into_iter()
                .map(|(name, t)| (name, t.detach().sum(Kind::Double)))
                .collect();
            sums.add(&StepTerms {
                terms,
                loss: Tensor::zeros([], (Kind::Float, x.device())),
                examples: len,
            });
        }
        Ok(sums.means())
    })
}

/// [`split_means`] of an evaluation split. A data-parallel rank's part
/// ([`DeviceSplit::shard`]) is evaluated in its parts of the whole split's batches, each with
/// the noise one process draws for those rows ([`genae_tensor::noise::BatchRows::Range`]), so
/// the means reduced over the ranks are the one-process means up to float rounding.
pub(crate) fn evaluation_means(
    split: &DeviceSplit,
    batch_size: i64,
    mut f: impl FnMut(&Tensor) -> Result<Vec<(&'static str, Tensor)>, LabError>,
) -> Result<Record, LabError> {
    let Some(parts) = &split.parts else {
        return split_means(&split.x, batch_size, f);
    };
    let mut sums = RunningSums::new(split.x.device());
    let mut row = 0;
    tch::no_grad(|| {
        for part in parts.iter().filter(|p| p.len > 0) {
            let batch = split.x.narrow(0, row, part.len);
            row += part.len;
            let rows = BatchRows::Range {
                start: part.start,
                total: part.total,
            };
            let terms = with_batch_rows(rows, || f(&batch))?
                .into_iter()
                .map(|(name, t)| (name, t.detach().sum(Kind::Double)))
                .collect();
            sums.add(&StepTerms {
                terms,
                loss: Tensor::zeros([], (Kind::Float, split.x.device())),
                examples: part.len,
            });
        }
        Ok(sums.means())
    })
}

/// One line of `metrics.jsonl`.
#[derive(Clone, Debug, serde::Serialize)]
pub struct EpochLine {
    /// The phase (`vae`, `aae`, …; a VQ-VAE run has `vqvae`, then `prior`).
    pub phase: String,
    /// Epoch number over the whole run, from 1.
    pub epoch: usize,
    /// Epoch number within the phase, from 1.
    pub phase_epoch: usize,
    /// Optimiser steps of this phase so far.
    pub step: u64,
    /// Means over the epoch's training examples of the step terms, and epoch figures.
    pub train: Record,
    /// The validation hold-out after the epoch (when `data.validation_size > 0`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub validation: Option<Record>,
    /// The test set after the epoch.
    pub test: Record,
    /// Training seconds of this epoch (evaluation excluded).
    pub seconds: f64,
    /// Training examples per second in this epoch.
    pub examples_per_s: f64,
    /// Seconds spent evaluating after this epoch.
    pub eval_seconds: f64,
    /// The mid-run `L_k` estimate (on epochs that are multiples of `eval.every`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_likelihood: Option<Value>,
}

/// `value` as one line of JSON.
pub(crate) fn to_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("metrics always serialise")
}

/// The `(phase, epoch)` of each parsable line of a `metrics.jsonl` text.
pub(crate) fn line_epoch(line: &str) -> Option<u64> {
    serde_json::from_str::<Value>(line).ok()?["epoch"].as_u64()
}

/// An error naming the first non-finite number of `record` (a `split` record after
/// `epoch`/`step`).
pub(crate) fn check_record(
    record: &Record,
    split: &str,
    epoch: usize,
    step: u64,
    hint: &'static str,
) -> Result<(), LabError> {
    match record.first_non_finite() {
        Some((term, value)) => Err(LabError::NonFinite {
            term: format!("{split} {term}"),
            value,
            epoch,
            step,
            hint,
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_keeps_its_order_and_replaces_in_place() {
        let mut r = Record::new().with("b", 1.0).with("a", 2);
        r.insert("b", 3.0);
        assert_eq!(serde_json::to_string(&r).unwrap(), r#"{"b":3.0,"a":2}"#);
        assert_eq!(r.number("a"), Some(2.0));
        r.insert("ll", serde_json::json!({"value": -1.5}));
        assert_eq!(r.number_at("ll.value"), Some(-1.5));
        r.insert("bad", f64::NAN);
        assert_eq!(r.first_non_finite().map(|(n, _)| n), Some("bad"));
        assert!(serde_json::to_string(&r).unwrap().contains(r#""bad":null"#));
    }

    #[test]
    fn running_sums_average_over_examples() {
        let mut sums = RunningSums::new(Device::Cpu);
        let loss = Tensor::from(0.0);
        sums.add(&StepTerms::new(&loss, 2).per_example("x", &Tensor::from_slice(&[1.0, 3.0])));
        sums.add(&StepTerms::new(&loss, 1).batch_mean("x", &Tensor::from(5.0)));
        assert_eq!(sums.means().number("x"), Some(3.0));
    }
}
