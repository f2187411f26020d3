//! The model kinds and the one trait through which the trainer drives them.
//!
//! A kind ([`Trainable`]) owns its networks, parameter stores and optimisers. The trainer
//! ([`crate::trainer`]) owns everything else: seeding by `(seed, epoch)`, batching, the
//! non-finite guard, running sums, progress output, `metrics.jsonl`, the evaluation schedule,
//! checkpoints and resume, the shared pictures and chains, and `summary.json`. Adding a kind
//! is one module here and one variant of [`crate::ModelSpec`]; see `docs/architecture.md`.

mod aae;
mod avb;
mod vae;
mod vqvae;
mod wae;

use genae_zoo::GenerativeAutoencoder;
use tch::{nn, Tensor};

use crate::checkpoint::StoreFile;
use crate::config::{LikelihoodEval, ModelSpec};
pub(crate) use crate::context::RunContext;
use crate::data::{Batch, DeviceSplit, TrainingData};
use crate::error::LabError;
use crate::eval::likelihood::LogLikelihoodSummary;
use crate::metrics::{Record, StepTerms};
use crate::Adam;

/// One phase of training: its name (the `phase` of `metrics.jsonl`), its epochs and the
/// config key of its learning rate (named when it diverges).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Phase {
    pub(crate) name: &'static str,
    pub(crate) epochs: usize,
    pub(crate) learning_rate_key: &'static str,
}

/// The step being taken: where it is (for errors) and whether to read its loss now.
pub(crate) struct StepContext {
    /// The epoch over the whole run, from 1.
    pub(crate) epoch: usize,
    /// The phase's step being taken, from 1.
    pub(crate) step: u64,
    /// Read the loss back and check it (every step on the CPU, where it costs nothing; on a
    /// GPU only when the progress bar shows it).
    pub(crate) check: bool,
    /// The config key of the phase's learning rate.
    pub(crate) hint: &'static str,
}

impl StepContext {
    /// `Err(NonFinite)` when `loss` is NaN or infinite (when checking this step), naming the
    /// first non-finite of `terms` (per-example or scalar tensors), else `name`.
    pub(crate) fn guard(
        &self,
        name: &str,
        loss: &Tensor,
        terms: &[(&str, &Tensor)],
    ) -> Result<(), LabError> {
        if !self.check {
            return Ok(());
        }
        let value = loss.double_value(&[]);
        if value.is_finite() {
            return Ok(());
        }
        let sum = |t: &Tensor| t.sum(tch::Kind::Double).double_value(&[]);
        let (term, value) = terms
            .iter()
            .map(|(n, t)| (*n, sum(t)))
            .find(|(_, v)| !v.is_finite())
            .unwrap_or((name, value));
        Err(LabError::NonFinite {
            term: term.to_string(),
            value,
            epoch: self.epoch,
            step: self.step,
            hint: self.hint,
        })
    }

    /// Checks `loss` (as [`StepContext::guard`]) before `optimizer` takes a step on it.
    pub(crate) fn update(
        &self,
        optimizer: &mut Adam,
        name: &str,
        loss: &Tensor,
    ) -> Result<(), LabError> {
        self.guard(name, loss, &[])?;
        optimizer.backward_step(loss);
        Ok(())
    }
}

/// What a kind adds at the end of a run.
#[derive(Default)]
pub(crate) struct FinalResults {
    /// Final test numbers (starts as the last epoch's test record).
    pub(crate) test: Record,
    /// Top-level sections of `summary.json` (`aae`, `vq`, …).
    pub(crate) sections: Vec<(String, serde_json::Value)>,
    /// Lines for the progress output.
    pub(crate) notes: Vec<String>,
}

impl FinalResults {
    /// Adds the section `name`.
    pub(crate) fn section<T: serde::Serialize>(&mut self, name: &str, value: &T) {
        let value = serde_json::to_value(value).expect("summaries always serialise");
        self.sections.push((name.to_string(), value));
    }
}

/// A model kind as the trainer drives it.
pub(crate) trait Trainable {
    /// One line saying what is trained (the first progress line's middle part).
    fn describe(&self) -> String;

    /// The phases, in order (most kinds have one).
    fn phases(&self) -> Vec<Phase>;

    /// The parameter files and the stores they hold (checkpoints hold them all).
    fn store_files(&self) -> Vec<StoreFile<'_>>;

    /// Every optimiser, by a name unique within the kind (their state is checkpointed).
    fn optimizers(&mut self) -> Vec<(&'static str, &mut Adam)>;

    /// Prepares phase `phase` (from 0) and returns what it trains on; called before its first
    /// epoch, also when a run resumes inside the phase.
    fn begin_phase(&mut self, phase: usize, run: &RunContext) -> Result<TrainingData, LabError>;

    /// One training step on `batch`, updating the kind's parameters; its terms by name.
    fn train_step(
        &mut self,
        phase: usize,
        batch: &Batch,
        step: &StepContext,
    ) -> Result<StepTerms, LabError>;

    /// Figures of the epoch's training that are not means of step terms (e.g. codebook
    /// usage); called once after each epoch.
    fn end_epoch(&mut self, _phase: usize) -> Result<Record, LabError> {
        Ok(Record::new())
    }

    /// Metrics of the model on `split` after an epoch of phase `phase`, by name.
    fn evaluate(
        &self,
        phase: usize,
        split: &DeviceSplit,
        run: &RunContext,
    ) -> Result<Record, LabError>;

    /// The importance-sampled `L_k` on the first test images, for kinds that have it.
    fn log_likelihood(
        &self,
        _run: &RunContext,
        _eval: LikelihoodEval,
    ) -> Result<Option<LogLikelihoodSummary>, LabError> {
        Ok(None)
    }

    /// The model as an encoder–decoder with a prior, for the shared pictures, reconstruction
    /// error and Markov chains (`None`: the kind draws its own pictures).
    fn autoencoder(&self) -> Option<&dyn GenerativeAutoencoder> {
        None
    }

    /// Prior draws `[n, d]` drawn in grey behind the codes of `latents.png` (labelled draws
    /// for a label-conditioned prior); `None` for none.
    fn prior_backdrop(&self, _run: &RunContext, _n: i64) -> Result<Option<Tensor>, LabError> {
        Ok(None)
    }

    /// The kind's own final evaluations, after the shared ones.
    fn finish(&mut self, run: &RunContext, out: &mut FinalResults) -> Result<(), LabError>;
}

/// The parameter stores of an adversarial model's players (AAE, AVB), each with its own
/// optimisers, written to `model.safetensors` as `encoder.…`, `decoder.…`, `discriminator.…`.
pub(crate) struct Players {
    pub(crate) encoder: nn::VarStore,
    pub(crate) decoder: nn::VarStore,
    pub(crate) discriminator: nn::VarStore,
}

impl Players {
    /// Three empty stores on `device`.
    pub(crate) fn new(device: tch::Device) -> Self {
        Self {
            encoder: nn::VarStore::new(device),
            decoder: nn::VarStore::new(device),
            discriminator: nn::VarStore::new(device),
        }
    }

    /// `model.safetensors` with the three stores.
    pub(crate) fn store_files(&self) -> Vec<StoreFile<'_>> {
        vec![StoreFile {
            file: "model.safetensors",
            stores: vec![
                ("encoder", &self.encoder),
                ("decoder", &self.decoder),
                ("discriminator", &self.discriminator),
            ],
        }]
    }
}

/// The kind the config's spec asks for, its model initialised from libtorch's generator.
pub(crate) fn build(spec: &ModelSpec, run: &RunContext) -> Result<Box<dyn Trainable>, LabError> {
    Ok(match spec {
        ModelSpec::Vae {
            networks,
            objective,
            kl_warmup_steps,
        } => Box::new(vae::VaeKind::new(
            networks,
            objective.clone(),
            *kl_warmup_steps,
            run,
        )?),
        ModelSpec::Aae { networks, aae } => Box::new(aae::AaeKind::new(networks, aae, run)?),
        ModelSpec::Avb { networks, avb } => Box::new(avb::AvbKind::new(networks, avb, run)?),
        ModelSpec::Wae { networks, wae } => Box::new(wae::WaeKind::new(networks, wae, run)?),
        ModelSpec::Vqvae { vq, prior } => Box::new(vqvae::VqVaeKind::new(vq, prior, run)?),
    })
}
