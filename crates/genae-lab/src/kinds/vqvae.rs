//! `model.kind = "vqvae"`: VQ-VAE training (phase `vqvae`), then a gated PixelCNN prior over
//! the encoded training set (phase `prior`), then the test figures and pictures.
//!
//! **Likelihood.** The data are the 8-bit grey levels scaled to `[0, 1]` (never binarised).
//! Phase 1 minimises `Σ_pixels (x − x̂)²` (mean over the batch) plus the quantizer's
//! commitment (and, without EMA, codebook) loss. For bits/dim the decoder's likelihood is the
//! **discretised Gaussian** `p(x|z_q)` over the 256 grey levels with mean `x̂` and one shared
//! standard deviation `σ` ([`genae_zoo::discretized_gaussian_log_prob`]); `σ²` is the
//! maximum-likelihood variance of the continuous Gaussian on the training set after phase 1,
//! i.e. the training-set mean squared error (`vq.reconstruction_sigma` in `summary.json`).
//! With `vq.likelihood = { kind = "discretized_logistic" }` the decoder instead outputs a
//! location and a log-scale per pixel, phase 1 minimises `−log p(x|z_q)` under that
//! discretised logistic (genae-zoo's, as the VAE's decoders use it), and bits/dim use it as
//! trained (no σ is fitted).
//! With the one-hot posterior of VQ-VAE (`q(z|x) = 1` at `z_q`, entropy 0), the ELBO is
//! `log p(x|z_q) + log p(z_q)` and `KL(q ‖ p) = −log p(z_q)`, the PixelCNN's NLL of the code
//! grid; `summary.json` reports them as `test.reconstruction`, `test.kl` (= `test.prior_nll`)
//! and `test.elbo`, and `test.bits_per_dim = −test.elbo / (D ln 2)`.

use std::time::Instant;

use genae_samplers::{CodebookUpdate, EncodedData, VqVae};
use genae_tensor::save_image_grid;
use genae_zoo::GatedPixelCnn;
use serde::Serialize;
use tch::{nn, Kind, Tensor};

use super::{Evaluation, FinalResults, RunContext, State, Step, Trainable};
use crate::checkpoint::StoreFile;
use crate::config::{PriorSection, VqSection};
use crate::context::epoch_seed;
use crate::data::{DeviceSplit, TrainingData};
use crate::error::LabError;
use crate::metrics::{split_means, Record, StepTerms};
use crate::Adam;

/// The phases: the VQ-VAE, then its prior.
const VQVAE: usize = 0;
const PRIOR: usize = 1;

/// `vq` in `summary.json`: the codebook on the test set.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct VqSummary {
    /// Codebook size `K`.
    pub num_codes: i64,
    /// Code dimension `d`.
    pub code_dim: i64,
    /// The code grid `[h, w]` of one image.
    pub grid: [i64; 2],
    /// `exp(entropy)` of the code frequencies over the whole test set (1 ..= K).
    pub perplexity: f64,
    /// Codes used by at least one test vector.
    pub codes_used: usize,
    /// The same perplexity over the training set (after phase 1).
    pub train_perplexity: f64,
    /// Codes used on the training set.
    pub train_codes_used: usize,
    /// `σ` of the discretised Gaussian `p(x|z_q)`: the square root of the training-set MSE
    /// (absent with a decoder likelihood, which has its own scales).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reconstruction_sigma: Option<f64>,
    /// The decoder likelihood: `discretized_gaussian` (one σ) or `discretized_logistic`.
    pub likelihood: &'static str,
    /// Mean `−log p(x|z_q)` on the test set, nats per image.
    pub reconstruction_nll: f64,
}

/// `prior` in `summary.json`: the PixelCNN over code grids.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PriorSummary {
    /// Mean test NLL `−log p(z_q)`, nats per code grid.
    pub test_nll: f64,
    /// The same in bits per code (`test_nll / (h·w·ln 2)`; `log₂ K` is a uniform prior's).
    pub test_bits_per_code: f64,
    /// Seconds to draw `eval.samples` grids ancestrally.
    pub sampling_seconds: f64,
}

/// `(perplexity, codes used)` of usage counts.
fn perplexity_and_used(usage: &Tensor) -> Result<(f64, usize), LabError> {
    let used = usage.gt(0).sum(Kind::Int64).int64_value(&[]) as usize;
    let perplexity = if used == 0 {
        0.0
    } else {
        genae_samplers::perplexity(usage)?.double_value(&[])
    };
    Ok((perplexity, used))
}

/// The VQ-VAE (encoder, quantizer, decoder), the PixelCNN prior, their stores and optimisers.
pub(super) struct VqVaeKind {
    store: nn::VarStore,
    model: VqVae,
    adam: Adam,
    prior_store: nn::VarStore,
    prior: GatedPixelCnn,
    prior_adam: Adam,
    vq: VqSection,
    prior_section: PriorSection,
    /// Code usage over the current epoch of phase 1 (this process's batches).
    usage: Option<Tensor>,
    /// The data-parallel job, if any: the epoch's usage is summed over its processes.
    collective: Option<std::sync::Arc<dyn genae_tensor::Collective>>,
}

impl VqVaeKind {
    pub(super) fn new(
        vq: &VqSection,
        prior_section: &PriorSection,
        run: &RunContext,
    ) -> Result<Self, LabError> {
        let image_shape = run.image_shape();
        let store = nn::VarStore::new(run.device);
        let model = VqVae::with_likelihood(
            &store.root(),
            image_shape,
            &vq.network(),
            &vq.quantizer,
            vq.likelihood.clone(),
        )?;
        let adam = Adam::new(&store, run.config.file().train.learning_rate);
        let prior_store = nn::VarStore::new(run.device);
        let prior = GatedPixelCnn::new(
            &(prior_store.root() / "prior"),
            &prior_section.pixelcnn(vq.quantizer.num_codes),
        )?;
        let prior_adam = Adam::new(&prior_store, prior_section.learning_rate);
        Ok(Self {
            store,
            model,
            adam,
            prior_store,
            prior,
            prior_adam,
            vq: vq.clone(),
            prior_section: prior_section.clone(),
            usage: None,
            collective: None,
        })
    }

    /// Codes, squared errors, usage and (with `sigma`) log-likelihoods of a split, no grad.
    fn encode_split(
        &self,
        x: &Tensor,
        batch_size: i64,
        sigma: Option<f64>,
    ) -> Result<EncodedData, LabError> {
        Ok(self.model.encode_data(x, batch_size, sigma)?)
    }

    /// Mean PixelCNN NLL (nats per grid) of `codes`, without gradients.
    fn mean_prior_nll(&self, codes: &Tensor, batch_size: i64) -> Result<f64, LabError> {
        let record = split_means(codes, batch_size, |c| Ok(vec![("nll", self.prior.nll(c)?)]))?;
        Ok(record.number("nll").unwrap_or(f64::NAN))
    }

    /// The training images on the device.
    fn train_images(run: &RunContext) -> Result<DeviceSplit, LabError> {
        DeviceSplit::new(&run.data.train, run.device)
    }

    /// Decoded PixelCNN samples and test reconstructions.
    fn write_pictures(&self, run: &RunContext, grid: [i64; 2]) -> Result<f64, LabError> {
        let f = run.config.file();
        let started = Instant::now();
        let grids = self.prior.sample(
            f.eval.samples as i64,
            grid,
            epoch_seed(f.seed, 0),
            run.device,
        )?;
        let sampling_seconds = started.elapsed().as_secs_f64();
        tch::no_grad(|| -> Result<(), LabError> {
            let [c, h, w] = run.image_shape();
            let samples = self.model.decode_codes(&grids)?.clamp(0.0, 1.0);
            let ncol = (f.eval.samples as f64).sqrt().ceil() as usize;
            save_image_grid(&samples, ncol, &run.run_dir.file("samples.png"))?;
            let n = (f.eval.reconstructions as i64).min(run.test.n);
            let originals = run.test.head(n).view([-1, c, h, w]);
            let rec = self.model.reconstruct(&originals)?.clamp(0.0, 1.0);
            let pair = Tensor::cat(&[originals, rec], 0);
            save_image_grid(&pair, n as usize, &run.run_dir.file("reconstructions.png"))?;
            Ok(())
        })?;
        Ok(sampling_seconds)
    }
}

impl Trainable for VqVaeKind {
    fn describe(&self) -> String {
        let [gh, gw] = self.model.grid_shape();
        format!(
            "vqvae (K = {}, d = {}, grid {gh}x{gw}) and its PixelCNN prior",
            self.vq.quantizer.num_codes, self.vq.quantizer.code_dim
        )
    }

    fn state(&mut self) -> State<'_> {
        State {
            files: vec![
                StoreFile::model(&self.store),
                StoreFile {
                    file: "prior.safetensors",
                    stores: vec![("", &self.prior_store)],
                },
            ],
            optimizers: vec![("vqvae", &mut self.adam), ("prior", &mut self.prior_adam)],
        }
    }

    fn begin_phase(&mut self, phase: usize, run: &RunContext) -> Result<TrainingData, LabError> {
        if phase != PRIOR {
            return TrainingData::images(run.config, run.data);
        }
        let train = Self::train_images(run)?;
        let codes = self.encode_split(&train.x, run.eval_batch(), None)?.codes;
        let batch_size = (self.prior_section.batch_size as i64).min(codes.size()[0]);
        Ok(TrainingData::Rows {
            x: codes,
            batch_size,
        })
    }

    fn train_step(&mut self, step: &Step) -> Result<StepTerms, LabError> {
        let x = &step.batch.x;
        if step.phase == PRIOR {
            let nll = self.prior.nll(x)?;
            let loss = nll.mean(Kind::Float);
            step.update(&mut self.prior_adam, "PixelCNN NLL", &loss)?;
            return Ok(StepTerms::new(&loss, step.batch.len()).per_example("nll", &nll));
        }
        let out = self.model.forward_t(x, true)?;
        let squares = (&out.reconstruction - x).square();
        let loss = out.loss();
        step.update(&mut self.adam, "VQ-VAE loss", &loss)?;
        let log_likelihood = out.log_likelihood;
        let out = out.quantizer;
        let usage = self.usage.get_or_insert_with(|| out.usage.zeros_like());
        *usage += &out.usage;
        let d = x.size()[1] as f64;
        let mse = squares.detach().sum_dim_intlist(1, false, Kind::Double) / d;
        let mut terms = StepTerms::new(&loss, step.batch.len())
            .per_example("reconstruction_mse", &mse)
            .batch_mean("commitment", &out.commitment_loss);
        if let Some(log_lik) = &log_likelihood {
            terms = terms.per_example("reconstruction", &log_lik.detach());
        }
        if let (Some(cb), CodebookUpdate::Loss) = (&out.codebook_loss, &self.vq.quantizer.update) {
            terms = terms.batch_mean("codebook", cb);
        }
        Ok(terms)
    }

    fn end_epoch(&mut self, phase: usize) -> Result<Record, LabError> {
        match (phase, self.usage.take()) {
            (VQVAE, Some(usage)) => {
                // Every process's batches: the usage one process with the global batch counts.
                let usage = usage.to_kind(Kind::Double);
                if let Some(c) = &self.collective {
                    c.sum(&[usage.shallow_clone()]).map_err(|reason| {
                        genae_tensor::TensorError::Collective {
                            what: "the code usage of the epoch".into(),
                            reason,
                        }
                    })?;
                }
                let (perplexity, used) = perplexity_and_used(&usage)?;
                Ok(Record::new()
                    .with("perplexity", perplexity)
                    .with("codes_used", used))
            }
            _ => Ok(Record::new()),
        }
    }

    fn evaluation_is_mean(&self) -> bool {
        false // perplexity and codes used are not means over examples
    }

    fn data_parallel(&mut self, collective: &std::sync::Arc<dyn genae_tensor::Collective>) {
        self.model.quantizer.set_collective(collective.clone());
        self.collective = Some(collective.clone());
    }

    fn evaluate(&self, on: &Evaluation) -> Result<Record, LabError> {
        let (split, run) = (on.split, on.run);
        let encoded = self.encode_split(&split.x, run.eval_batch(), None)?;
        if on.phase == PRIOR {
            let nll = self.mean_prior_nll(&encoded.codes, run.eval_batch())?;
            return Ok(Record::new().with("nll", nll));
        }
        let (perplexity, used) = perplexity_and_used(&encoded.usage)?;
        Ok(Record::new()
            .with(
                "reconstruction_mse",
                encoded.squared_error / (split.n as f64 * run.input_dim() as f64),
            )
            .with("perplexity", perplexity)
            .with("codes_used", used))
    }

    fn sample_images(
        &self,
        n: i64,
        seed: u64,
        run: &RunContext,
    ) -> Result<Option<Tensor>, LabError> {
        let grids = self
            .prior
            .sample(n, self.model.grid_shape(), seed, run.device)?;
        Ok(Some(
            tch::no_grad(|| self.model.decode_codes(&grids))?.clamp(0.0, 1.0),
        ))
    }

    fn reconstruct(&self, x: &Tensor) -> Result<Option<Tensor>, LabError> {
        let [c, h, w] = self.model.image_shape();
        let x = x.f_view([-1, c, h, w])?;
        Ok(Some(
            tch::no_grad(|| self.model.reconstruct(&x))?.clamp(0.0, 1.0),
        ))
    }

    fn embed(&self, x: &Tensor) -> Result<Vec<(&'static str, Tensor)>, LabError> {
        let mut parts = Vec::new();
        for (start, len) in crate::data::batch_ranges(x.size()[0], 256) {
            let chunk = x.f_narrow(0, start, len)?;
            parts.push(tch::no_grad(|| self.model.encode_codes(&chunk))?);
        }
        Ok(vec![("codes", Tensor::f_cat(&parts, 0)?)])
    }

    fn finish(&mut self, run: &RunContext, out: &mut FinalResults) -> Result<(), LabError> {
        let input_dim = run.input_dim() as f64;
        let batch = run.eval_batch();
        // σ of p(x|z_q) from the training set (the squared-error model only).
        let train = Self::train_images(run)?;
        let encoded_train = self.encode_split(&train.x, batch, None)?;
        let sigma = self.model.likelihood().is_none().then(|| {
            (encoded_train.squared_error / (train.n as f64 * input_dim))
                .sqrt()
                .max(1e-4)
        });
        let (train_perplexity, train_codes_used) = perplexity_and_used(&encoded_train.usage)?;
        drop(train);
        let test = run.test;
        let encoded_test = self.encode_split(&test.x, batch, sigma)?;
        let test_mse = encoded_test.squared_error / (test.n as f64 * input_dim);
        let (perplexity, codes_used) = perplexity_and_used(&encoded_test.usage)?;
        let rec_nll = -encoded_test.log_prob.unwrap_or(f64::NAN) / test.n.max(1) as f64;
        let prior_nll = self.mean_prior_nll(&encoded_test.codes, batch)?;
        let [gh, gw] = self.model.grid_shape();
        let sampling_seconds = self.write_pictures(run, [gh, gw])?;
        let bits = (rec_nll + prior_nll) / (input_dim * std::f64::consts::LN_2);
        let likelihood = match sigma {
            Some(sigma) => format!("discretised Gaussian, σ = {sigma:.4}"),
            None => "discretised logistic".to_string(),
        };
        out.notes.push(format!(
            "test: MSE {test_mse:.5}, perplexity {perplexity:.1} ({codes_used} codes), \
             −log p(x|z_q) {rec_nll:.1} nats ({likelihood}), prior NLL {prior_nll:.2} \
             nats/grid, {bits:.4} bits/dim"
        ));
        out.test = Record::new()
            .with("elbo", -(rec_nll + prior_nll))
            .with("reconstruction", -rec_nll)
            .with("kl", prior_nll)
            .with("reconstruction_mse", test_mse)
            .with("bits_per_dim", bits)
            .with("prior_nll", prior_nll);
        let q = &self.vq.quantizer;
        out.section(
            "vq",
            &VqSummary {
                num_codes: q.num_codes,
                code_dim: q.code_dim,
                grid: [gh, gw],
                perplexity,
                codes_used,
                train_perplexity,
                train_codes_used,
                reconstruction_sigma: sigma,
                likelihood: if sigma.is_some() {
                    "discretized_gaussian"
                } else {
                    "discretized_logistic"
                },
                reconstruction_nll: rec_nll,
            },
        );
        out.section(
            "prior",
            &PriorSummary {
                test_nll: prior_nll,
                test_bits_per_code: prior_nll / ((gh * gw) as f64 * std::f64::consts::LN_2),
                sampling_seconds,
            },
        );
        Ok(())
    }
}
