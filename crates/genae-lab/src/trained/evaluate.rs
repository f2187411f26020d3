//! `genae evaluate`: the training-time evaluations of a trained run again, with new settings
//! (`L_k`, Fréchet distances of its samplers, the `[chain]` evaluation, AIS).

use std::path::PathBuf;
use std::time::Instant;

use genae_estimators::FeatureStats;
use serde::Serialize;
use tch::{Kind, Tensor};

use super::ops::{pretty, CovarianceKind, SampleOptions, Sampler};
use super::TrainedRun;
use crate::context::likelihood_seed;
use crate::data::load_dataset;
use crate::error::LabError;
use crate::eval::chains::{evaluate_chains, features};
use crate::eval::classifier::{images_and_labels, load_or_train_classifier};
use crate::eval::likelihood::LogLikelihoodSummary;
use crate::kinds::Evaluation;
use crate::metrics::Record;
use crate::run_dir::RunDir;

/// What [`TrainedRun::evaluate`] computes besides the kind's own test metrics.
#[derive(Clone, Debug, PartialEq)]
pub struct EvaluateOptions {
    /// `L_k` with this many importance samples (`None`: the run's `eval.log_likelihood_k`;
    /// `Some(0)`: skip).
    pub k: Option<i64>,
    /// Test images of `L_k` (`None`: the run's `eval.log_likelihood_images`; 0: all).
    pub images: Option<usize>,
    /// Fréchet distances (features of the data set's classifier) of prior, GMM and chain
    /// samples to the test images.
    pub frechet: bool,
    /// Samples per Fréchet distance.
    pub frechet_samples: i64,
    /// Components of the GMM sampler measured with `frechet`.
    pub gmm_components: usize,
    /// Chain steps measured with `frechet` (empty: none).
    pub chain_steps: Vec<usize>,
    /// Run the run's full `[chain]` evaluation (pictures included) with it enabled.
    pub chain: bool,
    /// Seed of the sampling (not of `L_k`, which uses the run's own evaluation seed so that
    /// the same settings repeat the training-time number).
    pub seed: u64,
    /// Annealing steps of an AIS estimate of `log p(x)` (0: none).
    pub ais_steps: usize,
    /// AIS chains per image.
    pub ais_chains: i64,
    /// Test images of the AIS estimate (the first ones; 0: all).
    pub ais_images: usize,
    /// Seed of the AIS estimate.
    pub ais_seed: u64,
}

/// The AIS estimate of one evaluation (`ais` in its JSON).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AisSummary {
    /// Annealing steps (HMC transitions, 10 leapfrog steps each, adapted step size).
    pub steps: usize,
    /// Chains per image.
    pub chains: i64,
    /// Test images (the first ones).
    pub n_images: usize,
    /// Mean estimate of `log p(x)`, nats per image (a stochastic lower bound).
    pub value: f64,
    /// Standard error of that mean over the images.
    pub standard_error: f64,
    /// Mean effective sample size of the chains' weights (out of `chains`).
    pub mean_ess: f64,
    /// The seed.
    pub seed: u64,
    /// Seconds it took.
    pub seconds: f64,
}

impl Default for EvaluateOptions {
    /// The run's `L_k` settings, no Fréchet distances, no chains, seed 0.
    fn default() -> Self {
        Self {
            k: None,
            images: None,
            frechet: false,
            frechet_samples: 2000,
            gmm_components: 10,
            chain_steps: vec![5],
            chain: false,
            seed: 0,
            ais_steps: 0,
            ais_chains: 16,
            ais_images: 500,
            ais_seed: 0,
        }
    }
}

/// The Fréchet distances of one evaluation.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FrechetSummary {
    /// Samples per distance.
    pub samples: i64,
    /// Test images in the reference.
    pub reference_images: i64,
    /// Prior samples.
    pub prior: f64,
    /// Samples of the ex-post GMM (`None` for a VQ-VAE).
    pub gmm: Option<f64>,
    /// GMM components.
    pub gmm_components: usize,
    /// Chain samples at each of `chain_steps`.
    pub chain: Vec<f64>,
    /// The chain steps.
    pub chain_steps: Vec<usize>,
    /// Real training images against the reference: what a perfect sampler gets.
    pub real: f64,
    /// The classifier's test accuracy.
    pub classifier_accuracy: f64,
}

/// `evaluations/<UTC>.json`.
#[derive(Clone, Debug, Serialize)]
pub struct EvaluationRecord {
    /// The run directory.
    pub run_dir: PathBuf,
    /// The weights evaluated.
    pub weights: PathBuf,
    /// The kind's test metrics (as after every training epoch), `reconstruction_mse`, and
    /// `log_likelihood` when computed.
    pub test: Record,
    /// Fréchet distances, when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frechet: Option<FrechetSummary>,
    /// The `[chain]` evaluation, when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chain: Option<crate::ChainSummary>,
    /// The AIS estimate of `log p(x)`, when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ais: Option<AisSummary>,
    /// Seconds it took.
    pub seconds: f64,
}

impl TrainedRun {
    /// The phase whose evaluation applies to the finished model (a VQ-VAE: the prior's).
    pub(super) fn last_phase(&self) -> usize {
        self.config.spec().phases(1).len() - 1
    }

    /// `L_k` on the first test images with the run's settings, or `k` / `images` where
    /// given, drawn from the run's final evaluation seed: with the training-time settings
    /// this is the training-time `test.log_likelihood`. `None` for kinds without it.
    pub fn log_likelihood(
        &self,
        k: Option<i64>,
        images: Option<usize>,
    ) -> Result<Option<LogLikelihoodSummary>, LabError> {
        let mut eval = match (self.config.log_likelihood(), k) {
            (_, Some(0)) => return Ok(None),
            (Some(eval), _) => eval,
            (None, None) => return Ok(None),
            (None, Some(_)) => crate::config::LikelihoodEval {
                k: 0,
                images: 1000,
                chunk: 500,
            },
        };
        if let Some(k) = k {
            if k < 1 {
                return Err(LabError::Run {
                    path: self.dir().to_path_buf(),
                    reason: format!("--k {k}: the importance samples must be at least 1"),
                });
            }
            eval.k = k;
        }
        if let Some(images) = images {
            eval.images = images;
        }
        let out = self.dir.clone();
        let run = self.context(&out);
        tch::manual_seed(likelihood_seed(self.config.file().seed, 0) as i64);
        self.model.log_likelihood(&run, eval)
    }

    /// Re-runs the evaluations of the training-time summary with `options`, written as
    /// `<run>/evaluations/<UTC>.json` (the `[chain]` pictures, with `options.chain`, into
    /// `<run>/evaluations/<UTC>/`). Returns the file and the record.
    pub fn evaluate(
        &self,
        options: &EvaluateOptions,
    ) -> Result<(PathBuf, EvaluationRecord), LabError> {
        let started = Instant::now();
        let out = self.output_dir("evaluations", "evaluation")?;
        let result = self.evaluate_into(options, &out, started);
        let path = out.path().with_extension("json");
        match result {
            Ok(record) => {
                let text = pretty(&serde_json::to_value(&record).expect("records serialise"));
                let parent = RunDir::open(&self.dir.file("evaluations"))?;
                let leaf = path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or("x.json");
                parent.write_atomic(leaf, text.as_bytes())?;
                if out.is_empty() {
                    let _ = std::fs::remove_dir(out.path());
                }
                Ok((path, record))
            }
            Err(e) => {
                let _ = std::fs::remove_dir_all(out.path());
                Err(e)
            }
        }
    }

    fn evaluate_into(
        &self,
        options: &EvaluateOptions,
        out: &RunDir,
        started: Instant,
    ) -> Result<EvaluationRecord, LabError> {
        let mut test = {
            let run = self.context(out);
            tch::manual_seed(likelihood_seed(self.config.file().seed, 0) as i64);
            self.model.evaluate(&Evaluation {
                phase: self.last_phase(),
                split: &self.test,
                run: &run,
            })?
        };
        if let Some(ae) = self.autoencoder() {
            let run = self.context(out);
            let mse =
                crate::eval::likelihood::reconstruction_mse(ae, &self.test, run.eval_batch())?;
            test.insert("reconstruction_mse", mse);
        }
        if let Some(ll) = self.log_likelihood(options.k, options.images)? {
            note!(
                "L_{} = {:.4} nats ({:.4} bits/dim) on {} test images in {:.1} s",
                ll.k,
                ll.value,
                ll.bits_per_dim,
                ll.n_images,
                ll.seconds
            );
            test.insert_serialized("log_likelihood", &ll);
        } else if options.k.is_some_and(|k| k > 0) {
            return Err(self.unsupported(
                "no importance-sampled L_k: the model has no encoder density to propose from",
            ));
        }
        let frechet = if options.frechet {
            Some(self.frechet(options)?)
        } else {
            None
        };
        let chain = if options.chain {
            let ae = self.need_autoencoder("the chain evaluation")?;
            let mut file = self.config.file().clone();
            file.chain.enabled = true;
            let config = file.validate()?;
            evaluate_chains(ae, &config, &self.test.x, out, self.device)?
        } else {
            None
        };
        let ais = if options.ais_steps > 0 {
            Some(self.ais(options)?)
        } else {
            None
        };
        Ok(EvaluationRecord {
            run_dir: self.dir().to_path_buf(),
            weights: self.weights_file().to_path_buf(),
            test,
            frechet,
            chain,
            ais,
            seconds: started.elapsed().as_secs_f64(),
        })
    }

    /// AIS on the first `ais_images` test images, in batches of images (all chains of an
    /// image in one batch), seeded by `ais_seed`.
    fn ais(&self, options: &EvaluateOptions) -> Result<AisSummary, LabError> {
        let started = Instant::now();
        let n = match options.ais_images {
            0 => self.test.n,
            m => (m as i64).min(self.test.n),
        };
        let config = genae_samplers::AisConfig {
            steps: options.ais_steps,
            chains: options.ais_chains,
            ..Default::default()
        };
        tch::manual_seed(options.ais_seed as i64);
        // About 4 096 chains per batch keeps the decoder passes large and the memory small.
        let per_batch = (4096 / options.ais_chains.max(1)).max(1);
        let (mut values, mut ess) = (Vec::new(), Vec::new());
        for (start, len) in crate::data::batch_ranges(n, per_batch) {
            let x = self.test.x.f_narrow(0, start, len)?;
            let out = self.model.ais_log_likelihood(&x, &config)?.ok_or_else(|| {
                self.unsupported(
                    "no AIS estimate: the model has no decoder density with a Gaussian start",
                )
            })?;
            values.push(out.log_normalizer.to_kind(Kind::Double));
            ess.push(out.ess.to_kind(Kind::Double));
        }
        let values = Tensor::f_cat(&values, 0)?;
        let ess = Tensor::f_cat(&ess, 0)?;
        let mean = values.mean(Kind::Double).double_value(&[]);
        let sd = if n > 1 {
            values.std(true).double_value(&[])
        } else {
            0.0
        };
        let summary = AisSummary {
            steps: options.ais_steps,
            chains: options.ais_chains,
            n_images: n as usize,
            value: mean,
            standard_error: sd / (n as f64).sqrt(),
            mean_ess: ess.mean(Kind::Double).double_value(&[]),
            seed: options.ais_seed,
            seconds: started.elapsed().as_secs_f64(),
        };
        note!(
            "AIS ({} steps, {} chains) = {:.4} ± {:.4} nats on {} test images (ESS {:.1}) in {:.1} s",
            summary.steps,
            summary.chains,
            summary.value,
            summary.standard_error,
            summary.n_images,
            summary.mean_ess,
            summary.seconds
        );
        Ok(summary)
    }

    /// Fréchet distances of prior, GMM and chain samples to the test images.
    fn frechet(&self, options: &EvaluateOptions) -> Result<FrechetSummary, LabError> {
        if options.frechet_samples < 2 {
            return Err(LabError::Run {
                path: self.dir().to_path_buf(),
                reason: "the Fréchet distance needs at least 2 samples".into(),
            });
        }
        let data = load_dataset(&self.config)?;
        let cached = load_or_train_classifier(&self.config, &data, self.device)?;
        let classifier = &cached.classifier;
        let batch = self.batch();
        let (grey_test, _) = images_and_labels(&data.test, self.device)?;
        let reference = FeatureStats::from_features(&features(classifier, &grey_test, batch)?)?;
        let mut real = data.train.clone();
        real.truncate(options.frechet_samples as usize);
        let (grey_train, _) = images_and_labels(&real, self.device)?;
        let real = FeatureStats::from_features(&features(classifier, &grey_train, batch)?)?
            .frechet_distance(&reference)?;
        let distance = |sampler: Sampler| -> Result<f64, LabError> {
            let samples = self.sample(&SampleOptions {
                n: options.frechet_samples,
                sampler,
                seed: options.seed,
            })?;
            let stats =
                FeatureStats::from_features(&features(classifier, &samples.images, batch)?)?;
            let fd = stats.frechet_distance(&reference)?;
            Ok(fd)
        };
        let prior = distance(Sampler::Prior)?;
        note!("Fréchet distance of prior samples: {prior:.3}");
        let gmm = if self.autoencoder().is_some() && options.gmm_components > 0 {
            let fd = distance(Sampler::Gmm {
                components: options.gmm_components,
                covariance: CovarianceKind::Full,
            })?;
            note!(
                "Fréchet distance of GMM samples ({} components): {fd:.3}",
                options.gmm_components
            );
            Some(fd)
        } else {
            None
        };
        let mut chain = Vec::new();
        if self.autoencoder().is_some() {
            for &steps in &options.chain_steps {
                let fd = distance(Sampler::Chain { steps })?;
                note!("Fréchet distance of chain samples after {steps} steps: {fd:.3}");
                chain.push(fd);
            }
        }
        Ok(FrechetSummary {
            samples: options.frechet_samples,
            reference_images: data.test.len() as i64,
            prior,
            gmm,
            gmm_components: options.gmm_components,
            chain_steps: if self.autoencoder().is_some() {
                options.chain_steps.clone()
            } else {
                Vec::new()
            },
            chain,
            real,
            classifier_accuracy: cached.test_accuracy,
        })
    }
}
