//! The model kinds and the one trait through which the trainer drives them.
//!
//! A kind ([`Trainable`]) owns its networks, parameter stores and optimisers. The trainer
//! ([`crate::trainer`]) owns everything else: seeding by `(seed, epoch)`, batching, the
//! non-finite guard, running sums, progress output, `metrics.jsonl`, the evaluation schedule,
//! checkpoints and resume, the shared pictures and chains, and `summary.json`. Adding a kind
//! is one module here and one variant of [`crate::ModelSpec`]; see `docs/architecture.md`.

mod aae;
mod avb;
mod factor_vae;
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

/// A kind's parameter files and optimisers, borrowed together (checkpoints hold them all).
pub(crate) struct State<'a> {
    /// The parameter files and the stores they hold.
    pub(crate) files: Vec<StoreFile<'a>>,
    /// Every optimiser, by a name unique within the kind.
    pub(crate) optimizers: Vec<(&'static str, &'a mut Adam)>,
}

impl<'a> State<'a> {
    /// One store in `model.safetensors` and its one optimiser (`adam`).
    pub(crate) fn single(store: &'a nn::VarStore, adam: &'a mut Adam) -> Self {
        Self {
            files: vec![StoreFile::model(store)],
            optimizers: vec![("adam", adam)],
        }
    }
}

/// Where a model is evaluated: after an epoch of `phase`, on `split`.
pub(crate) struct Evaluation<'a> {
    /// The phase (from 0).
    pub(crate) phase: usize,
    /// The split.
    pub(crate) split: &'a DeviceSplit,
    /// The run.
    pub(crate) run: &'a RunContext<'a>,
}

/// `Ok(Some(L_k))`, or `Ok(None)` for a kind without the estimate.
pub(crate) type Estimate = Result<Option<LogLikelihoodSummary>, LabError>;

/// The step being taken: its phase and batch, where it is (for errors) and whether to read
/// its loss now.
pub(crate) struct Step<'a> {
    /// The phase (from 0).
    pub(crate) phase: usize,
    /// The batch.
    pub(crate) batch: &'a Batch,
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

impl Step<'_> {
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

    /// Checks `loss` (as [`Step::guard`]) before `optimizer` takes a step on it.
    pub(crate) fn update(
        &self,
        optimizer: &mut Adam,
        name: &str,
        loss: &Tensor,
    ) -> Result<(), LabError> {
        self.guard(name, loss, &[])?;
        optimizer.backward_step(loss)?;
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
    /// Records the final `L_k` (`test.log_likelihood`) with a progress note; `proposal` says
    /// what the importance samples were drawn from.
    pub(crate) fn log_likelihood(&mut self, ll: &LogLikelihoodSummary, proposal: &str) {
        self.notes.push(format!(
            "L_{} ({proposal}) = {:.4} nats ({:.4} bits/dim) on {} test images in {:.1} s",
            ll.k, ll.value, ll.bits_per_dim, ll.n_images, ll.seconds
        ));
        self.test.insert_serialized("log_likelihood", ll);
    }

    /// Records how close the test codes are to the prior (the note; the kind puts `fit` in
    /// its section).
    pub(crate) fn prior_fit(&mut self, fit: &crate::eval::prior::PriorMmd) {
        self.notes.push(format!(
            "prior MMD² {:.4} on {} test codes (bandwidth {:.3})",
            fit.prior_mmd, fit.prior_mmd_points, fit.prior_mmd_bandwidth
        ));
    }

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

    /// The parameter files and optimisers.
    fn state(&mut self) -> State<'_>;

    /// Prepares phase `phase` (from 0) and returns what it trains on; called before its first
    /// epoch, also when a run resumes inside the phase. By default: the training images.
    fn begin_phase(&mut self, _phase: usize, run: &RunContext) -> Result<TrainingData, LabError> {
        TrainingData::images(run.config, run.data)
    }

    /// One training step, updating the kind's parameters; its terms by name.
    fn train_step(&mut self, step: &Step) -> Result<StepTerms, LabError>;

    /// Figures of the epoch's training that are not means of step terms (e.g. codebook
    /// usage); called once after each epoch.
    fn end_epoch(&mut self, _phase: usize) -> Result<Record, LabError> {
        Ok(Record::new())
    }

    /// Metrics of the model on a split after an epoch, by name.
    fn evaluate(&self, on: &Evaluation) -> Result<Record, LabError>;

    /// Whether every figure of [`Trainable::evaluate`] is a mean over the split's examples,
    /// so that a data-parallel run may evaluate shards and average them (else rank 0
    /// evaluates the whole split).
    fn evaluation_is_mean(&self) -> bool {
        true
    }

    /// Data-parallel training: synchronise what the kind keeps besides parameters and
    /// optimisers (the trainer already averages every optimiser's gradients and broadcasts
    /// the parameters), e.g. the VQ-VAE's codebook statistics.
    fn data_parallel(&mut self, _collective: &std::sync::Arc<dyn genae_tensor::Collective>) {}

    /// The importance-sampled `L_k` on the first test images, for kinds that have it (the
    /// trainer seeds libtorch's generator before calling it, so the estimate repeats).
    fn log_likelihood(&self, _run: &RunContext, _eval: LikelihoodEval) -> Estimate {
        Ok(None)
    }

    /// Annealed importance sampling of `log p(x)` for the images `x` (genae-samplers' AIS with
    /// HMC transitions), started from the kind's Gaussian proposal (the VAE's `q(z|x)`, AVB's
    /// moment-matched Gaussian), for kinds with a decoder density; `None` for the others.
    fn ais_log_likelihood(
        &self,
        _x: &Tensor,
        _config: &genae_samplers::AisConfig,
    ) -> Result<Option<genae_samplers::AisOutput>, LabError> {
        Ok(None)
    }

    /// What the importance samples of [`Trainable::log_likelihood`] are drawn from.
    fn likelihood_proposal(&self) -> &'static str {
        "proposal q(z|x)"
    }

    /// The model as an encoder–decoder with a prior, for the shared pictures, reconstruction
    /// error and Markov chains (`None`: the kind draws its own pictures).
    fn autoencoder(&self) -> Option<&dyn GenerativeAutoencoder> {
        None
    }

    /// `n` images `[n, C, H, W]` (decoder means in `[0, 1]`) from the kind's own generative
    /// path, seeded by `seed`, for kinds without an encoder–decoder view (the VQ-VAE's
    /// PixelCNN); `None`: the kind samples through [`Trainable::autoencoder`].
    fn sample_images(
        &self,
        _n: i64,
        _seed: u64,
        _run: &RunContext,
    ) -> Result<Option<Tensor>, LabError> {
        Ok(None)
    }

    /// Reconstructions `[N, C, H, W]` of `x` (`[N, C·H·W]`) for kinds without an
    /// encoder–decoder view; `None`: through [`Trainable::autoencoder`].
    fn reconstruct(&self, _x: &Tensor) -> Result<Option<Tensor>, LabError> {
        Ok(None)
    }

    /// What `genae embed` writes for `x` (`[N, C·H·W]`), by name: the posterior mean `mean`
    /// `[N, d]` (by default through [`Trainable::autoencoder`]), and where the kind has them
    /// `log_var` (a diagonal Gaussian posterior's log-variances) or `codes` (discrete code
    /// grids). Empty: the kind has no embedding.
    fn embed(&self, x: &Tensor) -> Result<Vec<(&'static str, Tensor)>, LabError> {
        match self.autoencoder() {
            Some(ae) => Ok(vec![("mean", tch::no_grad(|| ae.encode_mean(x))?)]),
            None => Ok(Vec::new()),
        }
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

    /// The three stores' root paths: encoder, decoder, discriminator.
    pub(crate) fn roots(&self) -> [nn::Path<'_>; 3] {
        [
            self.encoder.root(),
            self.decoder.root(),
            self.discriminator.root(),
        ]
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

/// The optimisers of an adversarial model's players: Adam on the encoder and on the decoder
/// (`train.learning_rate`), and on the discriminator (its own rate and β₁).
pub(crate) struct PlayerOptimizers {
    pub(crate) encoder: Adam,
    pub(crate) decoder: Adam,
    pub(crate) discriminator: Adam,
}

impl PlayerOptimizers {
    /// Adam over each player's variables (create them after the model).
    pub(crate) fn new(
        players: &Players,
        learning_rate: f64,
        discriminator_learning_rate: f64,
        discriminator_beta1: f64,
    ) -> Self {
        Self {
            encoder: Adam::new(&players.encoder, learning_rate),
            decoder: Adam::new(&players.decoder, learning_rate),
            discriminator: Adam::new(&players.discriminator, discriminator_learning_rate)
                .with_beta1(discriminator_beta1),
        }
    }

    /// One step of the encoder and the decoder on `loss` (checked first by `step`).
    pub(crate) fn update_autoencoder(
        &mut self,
        step: &Step,
        name: &str,
        loss: &Tensor,
    ) -> Result<(), LabError> {
        step.guard(name, loss, &[])?;
        self.encoder.zero_grad();
        self.decoder.zero_grad();
        loss.backward();
        self.encoder.step()?;
        self.decoder.step()?;
        Ok(())
    }

    /// The players' files and these optimisers, with `extra` ones of the kind.
    pub(crate) fn state<'a>(
        &'a mut self,
        players: &'a Players,
        extra: Vec<(&'static str, &'a mut Adam)>,
    ) -> State<'a> {
        let mut optimizers = vec![
            ("encoder", &mut self.encoder),
            ("decoder", &mut self.decoder),
            ("discriminator", &mut self.discriminator),
        ];
        optimizers.extend(extra);
        State {
            files: players.store_files(),
            optimizers,
        }
    }
}

/// The kind the config's spec asks for, its model initialised from libtorch's generator.
pub(crate) fn build(spec: &ModelSpec, run: &RunContext) -> Result<Box<dyn Trainable>, LabError> {
    Ok(match spec {
        ModelSpec::Vae {
            networks,
            objective,
            kl_warmup_steps,
            capacity,
        } => Box::new(vae::VaeKind::new(
            networks,
            objective.clone(),
            *kl_warmup_steps,
            *capacity,
            run,
        )?),
        ModelSpec::FactorVae {
            networks,
            factor_vae,
        } => Box::new(factor_vae::FactorVaeKind::new(networks, factor_vae, run)?),
        ModelSpec::Aae { networks, aae } => Box::new(aae::AaeKind::new(networks, aae, run)?),
        ModelSpec::Avb { networks, avb } => Box::new(avb::AvbKind::new(networks, avb, run)?),
        ModelSpec::Wae { networks, wae } => Box::new(wae::WaeKind::new(networks, wae, run)?),
        ModelSpec::Vqvae { vq, prior } => Box::new(vqvae::VqVaeKind::new(vq, prior, run)?),
    })
}
