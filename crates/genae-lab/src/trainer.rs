//! The one training loop. [`run_experiment`] and [`resume_experiment`] load the data, build
//! the configured model kind ([`crate::kinds`]) and run its phases epoch by epoch:
//!
//! - every epoch reseeds libtorch's generator from `(seed, epoch)` and draws its batches from
//!   `(data.seed, epoch)`, so a resumed run gives the uninterrupted run's numbers;
//! - each step goes through the kind's `train_step`, whose loss the trainer checks before the
//!   update ([`Step`]); the step terms are summed by name into the epoch's means;
//! - after each epoch: the epoch figures, evaluation of the validation and test splits, the
//!   `eval.every` schedule (model file, mid-run `L_k`), one `metrics.jsonl` line, the
//!   checkpoint every `train.checkpoint_every` epochs and at the end of each phase, one
//!   progress line — the trainer is the only part of a run that prints;
//! - at the end: `model.safetensors`, the shared pictures and reconstruction error of any kind
//!   with an encoder–decoder view, the kind's own final evaluations, Markov chains, and
//!   `summary.json` with `report.html`.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use genae_dist::LaunchEnv;

use genae_tensor::noise::{BatchRows, BatchRowsScope};
use genae_tensor::seed_everything;
use tch::Device;

use crate::checkpoint::{
    optimizer_entries, param_entries, save_model_files, truncate_metrics, write_checkpoint,
    Checkpoint, PhaseTotals,
};
use crate::config::ValidConfig;
use crate::config::{ParallelNoise, Phase};
use crate::context::{epoch_seed, likelihood_seed, run_device};
use crate::data::{prepare_data, DeviceSplit, PreparedData};
use crate::error::LabError;
use crate::eval::{chains, likelihood, pictures};
use crate::kinds::{self, Evaluation, FinalResults, RunContext, Step, Trainable};
use crate::memory::{available_memory, check_objective_memory};
use crate::metrics::{check_record, to_json, EpochLine, Record, RunningSums};
use crate::parallel::{check_replicas, follower, in_scratch, rank_device, rank_seed, DataParallel};
use crate::progress::Progress;
use crate::run_dir::RunDir;
use crate::summary::{peak_rss_mb, write_summary, PhaseSummary, RunSummary, TrainTotals};

/// Runs one experiment: builds the data and the model, trains it, evaluates the test set after
/// every epoch, and writes the run directory (see the crate docs). Returns the summary, whose
/// `run_dir` says where everything went.
///
/// Launched data-parallel (`WORLD_SIZE > 1`: torchrun, srun, `cargo xtask launch`), every rank
/// calls it and trains as PyTorch's DDP does (README, "Data-parallel training"). Only rank 0
/// writes the run.
pub fn run_experiment(config: &ValidConfig) -> Result<RunSummary, LabError> {
    let launch = DataParallel::launch_env()?;
    if let Some(rank) = follower(launch.as_ref()) {
        return in_scratch(rank, |scratch| train(config, scratch, false, launch));
    }
    let run_dir = RunDir::create(&config.file().output_dir, &config.file().name)?;
    let _lock = run_dir.lock()?;
    run_dir.write_atomic("config.toml", config.to_toml().as_bytes())?;
    let result = train(config, &run_dir, false, launch);
    if result.is_err() && run_dir.holds_only_config() {
        // A run that failed before its first epoch leaves nothing behind.
        let _ = std::fs::remove_dir_all(run_dir.path());
    }
    result
}

/// Continues the run in `run_dir` from its `checkpoint.safetensors` (written after every
/// `train.checkpoint_every` epochs), with the run's own `config.toml` plus `overrides` (e.g.
/// `train.epochs=50` to train longer). Metrics lines of epochs after the checkpoint are dropped
/// and redone. With the same config, the numbers are those the uninterrupted run would have
/// given: parameters, optimiser moments, the phase, epoch and step are restored, and every
/// epoch draws its randomness from a generator seeded by `(seed, epoch)`. `config.toml` is
/// rewritten with the overrides only once the checkpoint has been restored under them.
///
/// Only one process trains in a run directory at a time (a second one is refused, naming the
/// first). A run with every epoch trained is re-evaluated with the run's own seeds, which
/// repeats its `summary.json` numbers.
pub fn resume_experiment(run_dir: &Path, overrides: &[String]) -> Result<RunSummary, LabError> {
    let run_dir = RunDir::open(run_dir)?;
    // The config first: a folder that is not a run is refused before anything (the lock
    // file included) is written into it.
    let config = ValidConfig::load(&run_dir.file("config.toml"), overrides)?;
    let launch = DataParallel::launch_env()?;
    if let Some(rank) = follower(launch.as_ref()) {
        // Rank 0 restores the checkpoint and broadcasts it; this rank only needs the config.
        return in_scratch(rank, |scratch| train(&config, scratch, true, launch));
    }
    let _lock = run_dir.lock()?;
    train(&config, &run_dir, true, launch).map_err(|e| match e {
        // A shape mismatch after overrides: name them, they are what changed the model.
        LabError::Checkpoint { path, reason }
            if !overrides.is_empty() && reason.contains("in the config's model") =>
        {
            LabError::Checkpoint {
                path,
                reason: format!(
                    "{reason}: the overrides {} change the model's shapes, and a run resumes \
                     only with the model it was trained with (nothing in the run was changed)",
                    overrides
                        .iter()
                        .map(|o| format!("--set {o}"))
                        .collect::<Vec<_>>()
                        .join(" ")
                ),
            }
        }
        other => other,
    })
}

/// The state of the loop between epochs.
struct Loop<'a> {
    config: &'a ValidConfig,
    run: RunContext<'a>,
    /// The data-parallel job, if any.
    dp: Option<Arc<DataParallel>>,
    /// Whether this process writes the run directory and prints (rank 0, or alone).
    writer: bool,
    validation: Option<DeviceSplit>,
    phases: Vec<Phase>,
    totals: Vec<PhaseTotals>,
    last_train: Record,
    last_test: Record,
}

fn train(
    config: &ValidConfig,
    run_dir: &RunDir,
    resume: bool,
    launch: Option<LaunchEnv>,
) -> Result<RunSummary, LabError> {
    let f = config.file();
    let device = rank_device(run_device(config)?, launch.as_ref())?;
    let dp = DataParallel::join(launch, device)?;
    let writer = dp.as_ref().is_none_or(|d| d.is_writer());
    let data = prepare_data(config)?;
    let available = (device == Device::Cpu).then(available_memory).flatten();
    check_objective_memory(config, data.image_shape(), available)?;
    seed_everything(f.seed);
    let test = DeviceSplit::new(&data.test, device)?;
    let validation = match &data.validation {
        Some(set) => Some(DeviceSplit::new(set, device)?),
        None => None,
    };
    let run = RunContext {
        config,
        device,
        data: &data,
        test: &test,
        run_dir,
    };
    let mut model = kinds::build(config.spec(), &run)?;
    let training_bytes = training_memory(&mut *model);
    let phases = config.spec().phases(f.train.epochs);
    let mut state = Loop {
        config,
        run,
        dp,
        writer,
        validation,
        totals: vec![PhaseTotals::default(); phases.len()],
        phases,
        last_train: Record::new(),
        last_test: Record::new(),
    };
    let mut printer = Progress::lines_only().silenced(!writer);
    printer.line(&header(config, &data, &*model, &state));
    if training_bytes > LARGE_MODEL_BYTES {
        printer.line(&format!(
            "warning: the model's parameters, gradients and Adam moments take {:.1} GiB \
             (model.latent_dim = {:?}, model.hidden = {:?}); is that intended?",
            training_bytes as f64 / f64::from(1u32 << 30),
            f.model.latent_dim,
            f.model.hidden
        ));
    }
    let mut trained_on = None;
    if resume && writer {
        trained_on = Some(state.restore(&mut *model)?);
        let total: usize = state.phases.iter().map(|p| p.epochs).sum();
        printer.line(&if state.epochs_done() >= total {
            format!(
                "all {total} epochs are trained: re-evaluating the final model from {} with the \
                 run's own seeds (the same numbers)",
                run_dir.file(crate::checkpoint::CHECKPOINT).display()
            )
        } else {
            format!(
                "resuming after epoch {} from {}",
                state.epochs_done(),
                run_dir.file(crate::checkpoint::CHECKPOINT).display()
            )
        });
    }
    if let Some(dp) = state.dp.clone() {
        state.join_job(&mut *model, &dp, &mut printer)?;
    }
    let world = state.dp.as_ref().map_or(1, |d| d.world_size());
    if let Some(before) = trained_on.filter(|&w| w != world) {
        let b = f.train.batch_size;
        printer.line(&format!(
            "note: the checkpoint was trained by {before} process(es) (global batch {}), this \
             run has {world} (global batch {}): the epochs left take {} steps each, so the \
             numbers will differ from an uninterrupted run",
            before * b,
            world * b,
            if world > before { "fewer" } else { "more" }
        ));
    }
    for p in 0..state.phases.len() {
        state.run_phase(&mut *model, p)?;
    }
    state.finish(&mut *model, &mut printer)
}

/// Above this, the memory a model needs for training is worth a warning.
const LARGE_MODEL_BYTES: u64 = 1 << 30;

/// Bytes of the parameters, their gradients and two Adam moments (4 copies of every value).
fn training_memory(model: &mut dyn Trainable) -> u64 {
    let state = model.state();
    let values: u64 = state
        .files
        .iter()
        .flat_map(|f| f.stores.iter())
        .flat_map(|(_, vs)| vs.variables().into_values())
        .map(|t| (t.numel() * t.kind().elt_size_in_bytes()) as u64)
        .sum();
    values * 4
}

/// The run's first progress line.
fn header(
    config: &ValidConfig,
    data: &PreparedData,
    model: &dyn Trainable,
    state: &Loop,
) -> String {
    let [c, h, w] = data.image_shape();
    let epochs: Vec<String> = state
        .phases
        .iter()
        .map(|p| format!("{} {}", p.epochs, p.name))
        .collect();
    let parallel = match &state.dp {
        Some(dp) => format!(
            ", data-parallel on {} ranks (batch {} per rank)",
            dp.world_size(),
            config.file().train.batch_size
        ),
        None => String::new(),
    };
    format!(
        "genae: {} on {} ({} train / {}{} test, {c}x{h}x{w}, binarize {}) on {:?}{parallel}, epochs: {} → {}",
        model.describe(),
        data.name,
        data.train.len(),
        state
            .validation
            .as_ref()
            .map_or(String::new(), |v| format!("{} validation / ", v.n)),
        state.run.test.n,
        format!("{:?}", config.file().data.binarize).to_lowercase(),
        state.run.device,
        epochs.join(", then "),
        state.run.run_dir.path().display()
    )
}

impl Loop<'_> {
    /// Epochs of every phase before `phase` (the offset of its epoch numbers).
    fn offset(&self, phase: usize) -> usize {
        self.phases[..phase].iter().map(|p| p.epochs).sum()
    }

    /// Epochs done over the whole run.
    fn epochs_done(&self) -> usize {
        self.totals.iter().map(|t| t.epochs).sum()
    }

    /// Restores parameters, optimisers and totals from the checkpoint; then (only then)
    /// records the resumed config and drops the metrics lines of epochs to be redone.
    /// Returns the number of processes that trained the checkpoint.
    fn restore(&mut self, model: &mut dyn Trainable) -> Result<usize, LabError> {
        let run_dir = self.run.run_dir;
        let saved = Checkpoint::read(run_dir)?;
        let trained_on = saved.world_size();
        let mut state = model.state();
        saved.restore_params(&state.files)?;
        saved.restore_optimizers(&mut state.optimizers)?;
        self.totals = saved.phases(self.phases.len())?;
        for (p, (phase, done)) in self.phases.iter().zip(&self.totals).enumerate() {
            let later_started = self.totals[p + 1..].iter().any(|t| t.epochs > 0);
            if done.epochs > phase.epochs || (later_started && done.epochs < phase.epochs) {
                return Err(LabError::Checkpoint {
                    path: run_dir.file(crate::checkpoint::CHECKPOINT),
                    reason: format!(
                        "it holds {} epochs of phase `{}`, the config asks for {}: resume with \
                         at least as many epochs",
                        done.epochs, phase.name, phase.epochs
                    ),
                });
            }
        }
        run_dir.write_atomic("config.toml", self.config.to_toml().as_bytes())?;
        truncate_metrics(run_dir, self.epochs_done())?;
        // A run with nothing left to train reports its last logged epoch.
        let text = std::fs::read_to_string(run_dir.file("metrics.jsonl")).unwrap_or_default();
        if let Some(last) = text
            .lines()
            .rev()
            .find_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        {
            self.last_train = Record::from_json(&last["train"]);
            self.last_test = Record::from_json(&last["test"]);
        }
        Ok(trained_on)
    }

    /// The start of a data-parallel run ([`crate::parallel::start`]).
    fn join_job(
        &mut self,
        model: &mut dyn Trainable,
        dp: &Arc<DataParallel>,
        printer: &mut Progress,
    ) -> Result<(), LabError> {
        crate::parallel::start(model, &mut self.totals, dp)?;
        printer.line(&format!(
            "data-parallel: {} ranks ({} backend), parameters and optimiser state taken from \
             rank 0; gradients averaged before every step",
            dp.world_size(),
            dp.backend()
        ));
        Ok(())
    }

    /// Metrics on `split`: sharded over the ranks and reduced in a data-parallel run (for
    /// kinds whose figures are means over examples; else on rank 0 alone).
    fn evaluate_split(
        &self,
        model: &dyn Trainable,
        phase: usize,
        split: &DeviceSplit,
    ) -> Result<Record, LabError> {
        let on = |split| Evaluation {
            phase,
            split,
            run: &self.run,
        };
        match &self.dp {
            None => model.evaluate(&on(split)),
            Some(dp) if model.evaluation_is_mean() => {
                let shard = split.shard(dp.rank(), dp.world_size(), self.run.eval_batch());
                let record = model.evaluate(&on(&shard))?;
                dp.reduce_means(&record, shard.n)
            }
            Some(_) if self.writer => model.evaluate(&on(split)),
            Some(_) => Ok(Record::new()),
        }
    }

    /// Runs the epochs of phase `p` that are left.
    fn run_phase(&mut self, model: &mut dyn Trainable, p: usize) -> Result<(), LabError> {
        let phase = self.phases[p];
        let done = self.totals[p].epochs;
        if done >= phase.epochs {
            return Ok(());
        }
        let f = self.config.file();
        let device = self.run.device;
        let training = model.begin_phase(p, &self.run)?;
        let shard = self.dp.as_ref().map(|d| d.shard()).unwrap_or_default();
        let steps_per_epoch = training.steps_per_epoch(shard) as u64;
        let mut progress = Progress::new(phase.epochs, steps_per_epoch).silenced(!self.writer);
        let last_phase = p + 1 == self.phases.len();
        for phase_epoch in done + 1..=phase.epochs {
            let epoch = self.offset(p) + phase_epoch;
            tch::manual_seed(epoch_seed(f.seed, epoch) as i64);
            let batches = training.epoch(epoch, device, shard);
            // Data-parallel noise: every rank the global batch's draws, keeping its rows (a
            // one-process run's noise), or each rank a stream of its own (rank 0 keeps the
            // single-process stream).
            let noise_scope = match f.train.parallel_noise {
                ParallelNoise::GlobalBatch => (shard.count > 1).then(|| {
                    BatchRowsScope::enter(BatchRows::Shard {
                        rank: shard.rank,
                        count: shard.count,
                    })
                }),
                ParallelNoise::PerRank => {
                    if shard.rank > 0 {
                        tch::manual_seed(rank_seed(epoch_seed(f.seed, epoch), shard.rank) as i64);
                    }
                    None
                }
            };
            let started = Instant::now();
            let mut sums = RunningSums::new(device);
            let mut seen = 0i64;
            for (b, batch) in batches.enumerate() {
                let batch = batch?;
                let wants_update = self.writer && progress.wants_update(b as u64 + 1);
                let step = Step {
                    phase: p,
                    batch: &batch,
                    epoch,
                    step: self.totals[p].steps + 1,
                    check: device == Device::Cpu || wants_update,
                    hint: phase.learning_rate_key,
                };
                let terms = model.train_step(&step)?;
                sums.add(&terms);
                self.totals[p].steps += 1;
                seen += batch.len() * shard.count as i64;
                progress.tick();
                if wants_update {
                    progress.step(
                        phase_epoch,
                        b as u64 + 1,
                        terms.loss.double_value(&[]),
                        seen as f64 / started.elapsed().as_secs_f64(),
                    );
                }
            }
            drop(noise_scope); // evaluation sets its own rows (metrics::evaluation_means)
            let mut train = sums.means(); // reads back: waits for the device
            if let Some(dp) = &self.dp {
                train = dp.reduce_means(&train, seen)?;
            }
            for (name, value) in model.end_epoch(p)?.iter() {
                train.insert(name, value.clone());
            }
            let seconds = started.elapsed().as_secs_f64();
            let t = &mut self.totals[p];
            t.epochs = phase_epoch;
            t.examples += seen as u64;
            t.seconds += seconds;
            let step = t.steps;
            check_record(&train, "train", epoch, step, phase.learning_rate_key)?;

            let eval_started = Instant::now();
            let validation = match &self.validation {
                Some(split) => Some(self.evaluate_split(model, p, split)?),
                None => None,
            };
            let test = self.evaluate_split(model, p, self.run.test)?;
            check_record(&test, "test", epoch, step, phase.learning_rate_key)?;
            if let Some(v) = &validation {
                check_record(v, "validation", epoch, step, phase.learning_rate_key)?;
            }
            let final_epoch = last_phase && phase_epoch == phase.epochs;
            let log_likelihood = if self.writer
                && f.eval.every > 0
                && epoch.is_multiple_of(f.eval.every)
                && !final_epoch
            {
                self.mid_run(model, epoch, &mut progress)?
            } else {
                None
            };
            let line = EpochLine {
                phase: phase.name.to_string(),
                epoch,
                phase_epoch,
                step,
                train,
                validation,
                test,
                seconds,
                examples_per_s: seen as f64 / seconds,
                eval_seconds: eval_started.elapsed().as_secs_f64(),
                log_likelihood,
            };
            if self.writer {
                self.run
                    .run_dir
                    .append_line("metrics.jsonl", &to_json(&line))?;
            }
            let every = f.train.checkpoint_every;
            if self.writer
                && every > 0
                && (epoch.is_multiple_of(every) || phase_epoch == phase.epochs)
            {
                let state = model.state();
                let mut entries = param_entries(&state.files);
                entries.extend(optimizer_entries(&state.optimizers));
                let world = self.dp.as_ref().map_or(1, |d| d.world_size());
                write_checkpoint(entries, &self.totals, world, self.run.run_dir)?;
            }
            progress.line(&format!(
                "epoch {epoch:>3} ({} {phase_epoch}/{}): train {}  test {}  {seconds:6.1} s  {:7.0} ex/s",
                phase.name,
                phase.epochs,
                line.train.brief(4),
                line.test.brief(4),
                line.examples_per_s
            ));
            self.last_train = line.train;
            self.last_test = line.test;
        }
        progress.finish();
        Ok(())
    }

    /// The `eval.every` schedule: the model file, and `L_k` where the kind has it.
    fn mid_run(
        &self,
        model: &mut dyn Trainable,
        epoch: usize,
        progress: &mut Progress,
    ) -> Result<Option<serde_json::Value>, LabError> {
        save_model_files(&model.state().files, self.run.run_dir)?;
        let Some(eval) = self.config.log_likelihood() else {
            return Ok(None);
        };
        tch::manual_seed(likelihood_seed(self.config.file().seed, epoch) as i64);
        let Some(ll) = model.log_likelihood(&self.run, eval)? else {
            return Ok(None);
        };
        progress.line(&format!(
            "epoch {epoch:>3}: L_{} = {:.3} nats on {} test images ({:.1} s); model saved",
            ll.k, ll.value, ll.n_images, ll.seconds
        ));
        Ok(Some(
            serde_json::to_value(&ll).expect("summaries serialise"),
        ))
    }

    /// The end of the run: model files, shared and kind evaluations, chains, the summary.
    fn finish(
        mut self,
        model: &mut dyn Trainable,
        printer: &mut Progress,
    ) -> Result<RunSummary, LabError> {
        let config = self.config;
        if let Some(dp) = &self.dp {
            check_replicas(model, dp)?;
            printer.line(&format!(
                "data-parallel: the parameters of all {} ranks are identical (checked)",
                dp.world_size()
            ));
        }
        let mut out = FinalResults {
            test: std::mem::take(&mut self.last_test),
            ..Default::default()
        };
        if self.writer {
            self.final_evaluations(model, &mut out, printer)?;
        }
        let run = &self.run;
        let totals = &self.totals;
        let seconds: f64 = totals.iter().map(|t| t.seconds).sum();
        let examples: u64 = totals.iter().map(|t| t.examples).sum();
        let summary = RunSummary {
            model: config.kind().to_string(),
            dataset: run.data.name.clone(),
            device: format!("{:?}", run.device).to_lowercase(),
            run_dir: run.run_dir.path().to_path_buf(),
            test: out.test,
            train: TrainTotals {
                epochs: totals.iter().map(|t| t.epochs).sum(),
                steps: totals.iter().map(|t| t.steps).sum(),
                seconds,
                examples_per_s: examples as f64 / seconds.max(1e-9),
                last_epoch: self.last_train,
                phases: if self.phases.len() > 1 {
                    self.phases
                        .iter()
                        .zip(totals)
                        .map(|(p, t)| PhaseSummary {
                            name: p.name.to_string(),
                            epochs: t.epochs,
                            steps: t.steps,
                            seconds: t.seconds,
                        })
                        .collect()
                } else {
                    Vec::new()
                },
            },
            peak_rss_mb: peak_rss_mb(),
            sections: out.sections.into_iter().collect(),
        };
        if self.writer {
            write_summary(run.run_dir, &summary)?;
        }
        Ok(summary)
    }

    /// The model files and every evaluation after training (rank 0 of a data-parallel run).
    fn final_evaluations(
        &self,
        model: &mut dyn Trainable,
        out: &mut FinalResults,
        printer: &mut Progress,
    ) -> Result<(), LabError> {
        let config = self.config;
        let f = config.file();
        let run = &self.run;
        save_model_files(&model.state().files, run.run_dir)?;
        if let Some(eval) = config.log_likelihood() {
            tch::manual_seed(likelihood_seed(f.seed, 0) as i64);
            if let Some(ll) = model.log_likelihood(run, eval)? {
                out.log_likelihood(&ll, model.likelihood_proposal());
            }
        }
        tch::manual_seed(epoch_seed(f.seed, 0) as i64);
        if let Some(ae) = model.autoencoder() {
            pictures::write_reconstructions_and_samples(ae, run)?;
            pictures::write_interpolations(ae, run)?;
            let n = f.eval.latent_points as i64;
            let backdrop = model.prior_backdrop(run, n.min(run.test.n))?;
            pictures::write_latents(ae, backdrop.as_ref(), run)?;
            pictures::write_posterior_samples(ae, run)?;
            let mse = likelihood::reconstruction_mse(ae, run.test, run.eval_batch())?;
            out.test.insert("reconstruction_mse", mse);
        }
        model.finish(run, out)?;
        if f.eval.disentanglement.enabled {
            disentanglement_metrics(&*model, run, out)?;
        }
        if let Some(ae) = model.autoencoder() {
            if let Some(chain) =
                chains::evaluate_chains(ae, config, &run.test.x, run.run_dir, run.device)?
            {
                out.section("chain", &chain);
            }
        }
        for note in &out.notes {
            printer.line(note);
        }
        Ok(())
    }
}

/// `[eval.disentanglement]`: the metrics into the `disentanglement` section and
/// `traversals.png`.
fn disentanglement_metrics(
    model: &dyn Trainable,
    run: &RunContext,
    out: &mut FinalResults,
) -> Result<(), LabError> {
    use crate::eval::disentanglement::{evaluate, write_traversals};
    let settings = &run.config.file().eval.disentanglement;
    let Some(ae) = model.autoencoder() else {
        return Err(crate::config::ConfigError::Invalid {
            field: "eval.disentanglement.enabled",
            reason: format!(
                "model.kind = \"{}\" has no encoder mean to score",
                run.config.kind()
            ),
        }
        .into());
    };
    let mut summary = evaluate(ae, settings, run)?;
    if settings.traversal {
        let embedding = model.embed(&run.test.x)?;
        summary.traversal_rows = write_traversals(ae, &embedding, run)?;
    }
    out.notes.push(format!(
        "disentanglement: β-VAE {:.3}, FactorVAE {:.3}, MIG {:.3}, SAP {:.3}, DCI D {:.3} C {:.3} \
         ({} images encoded in {:.0} s)",
        summary.beta_vae,
        summary.factor_vae,
        summary.mig,
        summary.sap,
        summary.dci_disentanglement,
        summary.dci_completeness,
        summary.images_encoded,
        summary.seconds
    ));
    out.section("disentanglement", &summary);
    Ok(())
}
