//! `model.kind = "vqvae"`: VQ-VAE training (phase 1), then a gated PixelCNN prior over the
//! encoded training set (phase 2), then the test figures, pictures and `summary.json`.
//!
//! The composition lives here, in the engine, because genae-samplers (the quantizer) depends
//! on genae-zoo (the networks and the PixelCNN): the engine is the first crate that sees both.
//!
//! **Likelihood.** The data are the 8-bit grey levels scaled to `[0, 1]` (never binarised).
//! Phase 1 minimises `Σ_pixels (x − x̂)²` (mean over the batch) plus the quantizer's
//! commitment (and, without EMA, codebook) loss. For bits/dim the decoder's likelihood is the
//! **discretised Gaussian** `p(x|z_q)` over the 256 grey levels with mean `x̂` and one shared
//! standard deviation `σ` ([`genae_zoo::discretized_gaussian_log_prob`]), a proper
//! distribution over the data; `σ²` is the maximum-likelihood variance of the continuous
//! Gaussian on the training set after phase 1, i.e. the training-set mean squared error
//! (`vq.reconstruction_sigma` in `summary.json`). With the one-hot posterior of VQ-VAE
//! (`q(z|x) = 1` at `z_q`, entropy 0), the ELBO is `log p(x|z_q) + log p(z_q)` and
//! `KL(q ‖ p) = −log p(z_q)`, the PixelCNN's NLL of the code grid; `summary.json` reports
//! them as `test.reconstruction`, `test.kl` (= `test.prior_nll`) and `test.elbo`, and
//! `test.bits_per_dim = −test.elbo / (D ln 2)`.

use std::time::Instant;

use genae_data::batch::Prefetcher;
use genae_samplers::VectorQuantizer;
use genae_tensor::{save_image_grid, seed_everything, tensor_from_u8_images};
use genae_zoo::{discretized_gaussian_log_prob, GatedPixelCnn, VqDecoder, VqEncoder};
use serde::Serialize;
use tch::{nn, Device, Kind, Tensor};

use crate::config::ValidConfig;
use crate::engine::{
    epoch_seed, peak_rss_mb, prepare_data, run_device, save_model, to_json, training_batches,
    write_summary, DeviceSplit, LabError, RunSummary, SplitMetrics, TestSummary, TrainTotals,
};
use crate::optim::Adam;
use crate::progress::Progress;
use crate::run_dir::RunDir;

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
    /// `σ` of the discretised Gaussian `p(x|z_q)`: the square root of the training-set MSE.
    pub reconstruction_sigma: f64,
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
    /// Running mean of the last epoch's training NLL, nats per grid.
    pub train_nll: f64,
    /// Epochs of phase 2.
    pub epochs: usize,
    /// Training seconds of phase 2 (evaluation excluded).
    pub seconds: f64,
    /// Seconds to draw `eval.samples` grids ancestrally.
    pub sampling_seconds: f64,
}

/// One `metrics.jsonl` line of phase 1 (`"phase": "vqvae"`).
#[derive(Clone, Debug, Serialize)]
struct VqEpochMetrics {
    phase: &'static str,
    epoch: usize,
    step: u64,
    train: VqSplitMetrics,
    test: VqSplitMetrics,
    seconds: f64,
    examples_per_s: f64,
    eval_seconds: f64,
}

#[derive(Clone, Copy, Debug, Default, Serialize)]
struct VqSplitMetrics {
    /// Mean `(x − x̂)²` per pixel.
    reconstruction_mse: f64,
    /// Mean commitment loss per example (training only).
    #[serde(skip_serializing_if = "Option::is_none")]
    commitment: Option<f64>,
    /// Mean codebook loss per example (training with the codebook loss only).
    #[serde(skip_serializing_if = "Option::is_none")]
    codebook: Option<f64>,
    perplexity: f64,
    codes_used: usize,
}

/// One `metrics.jsonl` line of phase 2 (`"phase": "prior"`); `epoch` continues phase 1's count.
#[derive(Clone, Debug, Serialize)]
struct PriorEpochMetrics {
    phase: &'static str,
    epoch: usize,
    prior_epoch: usize,
    step: u64,
    train_nll: f64,
    test_nll: f64,
    seconds: f64,
    grids_per_s: f64,
}

/// The three parts of phase 1.
struct VqModel {
    encoder: VqEncoder,
    quantizer: VectorQuantizer,
    decoder: VqDecoder,
}

/// What one pass over a split gives: the code grids, the squared-error sum, usage counts, and
/// (with a `σ`) the summed `log p(x|z_q)`.
struct EncodedSplit {
    codes: Tensor,
    sse: f64,
    usage: Tensor,
    log_prob: Option<f64>,
}

impl VqModel {
    /// Codes, squared errors, usage and (with `sigma`) log-likelihoods of a split, no grad.
    fn encode_split(
        &self,
        split: &DeviceSplit,
        batch_size: i64,
        sigma: Option<f64>,
    ) -> Result<EncodedSplit, LabError> {
        tch::no_grad(|| {
            let mut codes = Vec::new();
            let mut sse = 0.0;
            let mut log_prob = 0.0;
            let mut usage = Tensor::zeros(
                [self.quantizer.num_codes()],
                (Kind::Int64, split.x.device()),
            );
            let mut start = 0;
            while start < split.n {
                let len = batch_size.min(split.n - start);
                let x = split.x.narrow(0, start, len);
                let out = self.quantizer.forward_t(&self.encoder.encode(&x)?, false)?;
                let x_hat = self.decoder.decode(&out.quantized)?.view_as(&x);
                sse += (&x_hat - &x).square().sum(Kind::Double).double_value(&[]);
                if let Some(sigma) = sigma {
                    log_prob += discretized_gaussian_log_prob(&x_hat, sigma, &x)?
                        .sum(Kind::Double)
                        .double_value(&[]);
                }
                usage += &out.usage;
                codes.push(out.indices);
                start += len;
            }
            Ok(EncodedSplit {
                codes: Tensor::cat(&codes, 0),
                sse,
                usage,
                log_prob: sigma.map(|_| log_prob),
            })
        })
    }
}

fn perplexity_and_used(usage: &Tensor) -> Result<(f64, usize), LabError> {
    let used = usage.gt(0).sum(Kind::Int64).int64_value(&[]) as usize;
    let perplexity = if used == 0 {
        0.0
    } else {
        genae_samplers::perplexity(usage)?.double_value(&[])
    };
    Ok((perplexity, used))
}

/// Mean PixelCNN NLL (nats per grid) of `codes` in batches, without gradients.
fn mean_prior_nll(prior: &GatedPixelCnn, codes: &Tensor, batch_size: i64) -> Result<f64, LabError> {
    tch::no_grad(|| {
        let n = codes.size()[0];
        let mut total = 0.0;
        let mut start = 0;
        while start < n {
            let len = batch_size.min(n - start);
            total += prior
                .nll(&codes.narrow(0, start, len))?
                .sum(Kind::Double)
                .double_value(&[]);
            start += len;
        }
        Ok(total / n.max(1) as f64)
    })
}

/// Trains and evaluates a VQ-VAE and its PixelCNN prior into `run_dir` (see the module docs).
/// `resume` is refused: a VQ-VAE run cannot be continued yet.
pub(crate) fn train_vqvae(
    config: &ValidConfig,
    run_dir: RunDir,
    resume: bool,
) -> Result<RunSummary, LabError> {
    if resume {
        return Err(LabError::Checkpoint {
            path: run_dir.path().to_path_buf(),
            reason: "runs with model.kind = \"vqvae\" cannot be resumed yet; start a new run"
                .into(),
        });
    }
    let f = config.file();
    let vq_section = f.vq.clone().unwrap_or_default();
    let prior_section = f.prior.clone().unwrap_or_default();
    let device = run_device(config)?;
    let data = prepare_data(config)?;
    let [c, h, w] = data.train.image_shape;
    let image_shape = [c as i64, h as i64, w as i64];
    let input_dim = (c * h * w) as i64;

    seed_everything(f.seed);
    let n_train = data.train.len();
    let train_split = DeviceSplit::new(&data.train, device)?;
    let test = DeviceSplit::new(&data.test, device)?;

    // Phase 1: the VQ-VAE.
    let vs = nn::VarStore::new(device);
    let net = vq_section.network();
    let model = VqModel {
        encoder: VqEncoder::new(&(vs.root() / "encoder"), image_shape, &net)?,
        quantizer: VectorQuantizer::new(&(vs.root() / "quantizer"), &vq_section.quantizer)?,
        decoder: VqDecoder::new(&(vs.root() / "decoder"), image_shape, &net)?,
    };
    let [_, gh, gw] = model.encoder.grid_shape();
    let mut optimizer = Adam::new(&vs, f.train.learning_rate);
    // Grey levels only (validation requires `data.binarize = "none"`).
    let (batch_options, steps_per_epoch) = training_batches(config, &data)?;
    let eval_batch = f.eval.batch_size as i64;
    let mut progress = Progress::new(f.train.epochs, steps_per_epoch as u64);
    progress.line(&format!(
        "genae: vqvae on {} ({n_train} train / {} test, {c}x{h}x{w} grey levels) on {device:?}: \
         {} epochs, then the prior for {} epochs; K = {}, d = {}, grid {gh}x{gw} → {}",
        data.name,
        test.n,
        f.train.epochs,
        prior_section.epochs,
        vq_section.quantizer.num_codes,
        vq_section.quantizer.code_dim,
        run_dir.path().display()
    ));
    let mut step: u64 = 0;
    let mut train_seconds = 0.0;
    let mut examples_trained = 0usize;
    for epoch in 1..=f.train.epochs {
        tch::manual_seed(epoch_seed(f.seed, epoch) as i64);
        let started = Instant::now();
        let mut sse = Tensor::zeros([], (Kind::Double, device));
        let mut commitment = Tensor::zeros([], (Kind::Double, device));
        let mut codebook = Tensor::zeros([], (Kind::Double, device));
        let mut usage = Tensor::zeros([vq_section.quantizer.num_codes], (Kind::Int64, device));
        let mut seen = 0usize;
        let batches = Prefetcher::epoch(data.train.clone(), batch_options, epoch as u64);
        for (b, batch) in batches.enumerate() {
            let len = batch.len();
            let x = tensor_from_u8_images(&batch.pixels, &[len as i64, input_dim], device)?;
            let out = model
                .quantizer
                .forward_t(&model.encoder.encode(&x)?, true)?;
            let x_hat = model.decoder.decode(&out.quantized)?.view_as(&x);
            let squares = (&x_hat - &x).square().sum(Kind::Float);
            let loss = &squares / len as f64 + out.loss();
            if device == Device::Cpu || progress.wants_update(b as u64 + 1) {
                let value = loss.double_value(&[]);
                if !value.is_finite() {
                    return Err(LabError::non_finite("VQ-VAE loss", value, epoch, step + 1));
                }
            }
            optimizer.backward_step(&loss);
            sse += squares.detach().to_kind(Kind::Double);
            commitment += out.commitment_loss.detach().to_kind(Kind::Double) * len as f64;
            if let Some(cb) = &out.codebook_loss {
                codebook += cb.detach().to_kind(Kind::Double) * len as f64;
            }
            usage += &out.usage;
            step += 1;
            seen += len;
            progress.tick();
            if progress.wants_update(b as u64 + 1) {
                progress.step(
                    epoch,
                    b as u64 + 1,
                    loss.double_value(&[]),
                    seen as f64 / started.elapsed().as_secs_f64(),
                );
            }
        }
        let seconds = started.elapsed().as_secs_f64();
        train_seconds += seconds;
        examples_trained += seen;
        let (perplexity, codes_used) = perplexity_and_used(&usage)?;
        let train_metrics = VqSplitMetrics {
            reconstruction_mse: sse.double_value(&[]) / (seen as f64 * input_dim as f64),
            commitment: Some(commitment.double_value(&[]) / seen as f64),
            codebook: vq_section
                .quantizer
                .update
                .eq(&genae_samplers::CodebookUpdate::Loss)
                .then(|| codebook.double_value(&[]) / seen as f64),
            perplexity,
            codes_used,
        };
        if !train_metrics.reconstruction_mse.is_finite() {
            return Err(LabError::non_finite(
                "reconstruction error",
                train_metrics.reconstruction_mse,
                epoch,
                step,
            ));
        }
        let eval_started = Instant::now();
        let encoded = model.encode_split(&test, eval_batch, None)?;
        let (perplexity, codes_used) = perplexity_and_used(&encoded.usage)?;
        let test_metrics = VqSplitMetrics {
            reconstruction_mse: encoded.sse / (test.n as f64 * input_dim as f64),
            commitment: None,
            codebook: None,
            perplexity,
            codes_used,
        };
        let metrics = VqEpochMetrics {
            phase: "vqvae",
            epoch,
            step,
            train: train_metrics,
            test: test_metrics,
            seconds,
            examples_per_s: seen as f64 / seconds,
            eval_seconds: eval_started.elapsed().as_secs_f64(),
        };
        run_dir.append_line("metrics.jsonl", &to_json(&metrics))?;
        if f.train.checkpoint_every > 0
            && (epoch % f.train.checkpoint_every == 0 || epoch == f.train.epochs)
        {
            save_model(&[("", &vs)], &run_dir)?;
        }
        progress.line(&format!(
            "epoch {epoch:>3}/{}: train MSE {:.5}  test MSE {:.5}  perplexity {:.1} ({} codes used on test)  {:6.1} s  {:6.0} ex/s",
            f.train.epochs,
            train_metrics.reconstruction_mse,
            test_metrics.reconstruction_mse,
            test_metrics.perplexity,
            test_metrics.codes_used,
            seconds,
            metrics.examples_per_s
        ));
    }
    progress.finish();
    save_model(&[("", &vs)], &run_dir)?;

    // Encode both splits; σ of p(x|z_q) from the training set.
    let encoded_train = model.encode_split(&train_split, eval_batch, None)?;
    let train_mse = encoded_train.sse / (train_split.n as f64 * input_dim as f64);
    let sigma = train_mse.sqrt().max(1e-4);
    let (train_perplexity, train_codes_used) = perplexity_and_used(&encoded_train.usage)?;
    let encoded_test = model.encode_split(&test, eval_batch, Some(sigma))?;
    let test_mse = encoded_test.sse / (test.n as f64 * input_dim as f64);
    let (test_perplexity, test_codes_used) = perplexity_and_used(&encoded_test.usage)?;
    let test_rec_nll = -encoded_test.log_prob.unwrap_or(f64::NAN) / test.n as f64;
    // The training set's log p(x|z_q) with the same σ, for train.last_epoch.
    let train_rec_nll = -model
        .encode_split(&train_split, eval_batch, Some(sigma))?
        .log_prob
        .unwrap_or(f64::NAN)
        / train_split.n as f64;
    drop(train_split);

    // Phase 2: the PixelCNN prior over the training codes.
    let prior_vs = nn::VarStore::new(device);
    let prior = GatedPixelCnn::new(
        &(prior_vs.root() / "prior"),
        &prior_section.pixelcnn(vq_section.quantizer.num_codes),
    )?;
    let mut prior_optimizer = Adam::new(&prior_vs, prior_section.learning_rate);
    let train_codes = encoded_train.codes;
    let test_codes = encoded_test.codes;
    let n_codes = train_codes.size()[0];
    let prior_batch = (prior_section.batch_size as i64).min(n_codes);
    let prior_steps = (n_codes + prior_batch - 1) / prior_batch;
    let mut prior_progress = Progress::new(prior_section.epochs, prior_steps as u64);
    let mut prior_seconds = 0.0;
    let mut prior_step: u64 = 0;
    let mut last_prior_train = f64::NAN;
    let mut last_prior_test = f64::NAN;
    for prior_epoch in 1..=prior_section.epochs {
        let epoch = f.train.epochs + prior_epoch;
        tch::manual_seed(epoch_seed(f.seed, epoch) as i64);
        let started = Instant::now();
        let order = Tensor::randperm(n_codes, (Kind::Int64, device));
        let mut total = Tensor::zeros([], (Kind::Double, device));
        for b in 0..prior_steps {
            let start = b * prior_batch;
            let len = prior_batch.min(n_codes - start);
            let codes = train_codes.index_select(0, &order.narrow(0, start, len));
            let nll = prior.nll(&codes)?;
            let loss = nll.mean(Kind::Float);
            if device == Device::Cpu {
                let value = loss.double_value(&[]);
                if !value.is_finite() {
                    return Err(LabError::non_finite(
                        "PixelCNN NLL",
                        value,
                        epoch,
                        prior_step + 1,
                    ));
                }
            }
            prior_optimizer.backward_step(&loss);
            total += nll.detach().sum(Kind::Double);
            prior_step += 1;
            prior_progress.tick();
            if prior_progress.wants_update(b as u64 + 1) {
                prior_progress.step(
                    prior_epoch,
                    b as u64 + 1,
                    loss.double_value(&[]),
                    (start + len) as f64 / started.elapsed().as_secs_f64(),
                );
            }
        }
        let seconds = started.elapsed().as_secs_f64();
        prior_seconds += seconds;
        last_prior_train = total.double_value(&[]) / n_codes as f64;
        last_prior_test = mean_prior_nll(&prior, &test_codes, eval_batch)?;
        if !last_prior_train.is_finite() || !last_prior_test.is_finite() {
            return Err(LabError::non_finite(
                "PixelCNN NLL",
                last_prior_test,
                epoch,
                prior_step,
            ));
        }
        let line = PriorEpochMetrics {
            phase: "prior",
            epoch,
            prior_epoch,
            step: prior_step,
            train_nll: last_prior_train,
            test_nll: last_prior_test,
            seconds,
            grids_per_s: n_codes as f64 / seconds,
        };
        run_dir.append_line("metrics.jsonl", &to_json(&line))?;
        prior_progress.line(&format!(
            "prior epoch {prior_epoch:>3}/{}: train NLL {:.3}  test NLL {:.3} nats/grid ({:.3} bits/code)  {:6.1} s",
            prior_section.epochs,
            last_prior_train,
            last_prior_test,
            last_prior_test / ((gh * gw) as f64 * std::f64::consts::LN_2),
            seconds
        ));
    }
    prior_progress.finish();
    save_prior(&prior_vs, &run_dir)?;

    // Pictures: decoded prior samples and test reconstructions.
    tch::manual_seed(epoch_seed(f.seed, 0) as i64);
    let sampling_started = Instant::now();
    let grids = prior.sample(
        f.eval.samples as i64,
        [gh, gw],
        epoch_seed(f.seed, 0),
        device,
    )?;
    let sampling_seconds = sampling_started.elapsed().as_secs_f64();
    tch::no_grad(|| -> Result<(), LabError> {
        let [c, h, w] = image_shape;
        let samples = model
            .decoder
            .decode(&model.quantizer.lookup(&grids)?)?
            .clamp(0.0, 1.0);
        let ncol = (f.eval.samples as f64).sqrt().ceil() as usize;
        save_image_grid(&samples, ncol, &run_dir.file("samples.png"))?;
        let n = (f.eval.reconstructions as i64).min(test.n);
        let originals = test.x.narrow(0, 0, n).view([-1, c, h, w]);
        let out = model
            .quantizer
            .forward_t(&model.encoder.encode(&originals)?, false)?;
        let rec = model.decoder.decode(&out.quantized)?.clamp(0.0, 1.0);
        let pair = Tensor::cat(&[originals, rec], 0);
        save_image_grid(&pair, n as usize, &run_dir.file("reconstructions.png"))?;
        Ok(())
    })?;

    let bits = |nats: f64| nats / (input_dim as f64 * std::f64::consts::LN_2);
    let summary = RunSummary {
        model: f.model.kind.to_string(),
        dataset: data.name.clone(),
        device: format!("{device:?}").to_lowercase(),
        run_dir: run_dir.path().to_path_buf(),
        test: TestSummary {
            elbo: Some(-(test_rec_nll + last_prior_test)),
            reconstruction: -test_rec_nll,
            kl: Some(last_prior_test),
            log_likelihood: None,
            active_units: None,
            reconstruction_mse: Some(test_mse),
            bits_per_dim: Some(bits(test_rec_nll + last_prior_test)),
            prior_nll: Some(last_prior_test),
            dvae_bound: None,
            exact_log_likelihood: None,
            aggregate_kl: None,
        },
        avb: None,
        train: TrainTotals {
            epochs: f.train.epochs,
            steps: step,
            seconds: train_seconds,
            examples_per_s: examples_trained as f64 / train_seconds,
            last_epoch: Some(SplitMetrics {
                elbo: -(train_rec_nll + last_prior_train),
                reconstruction: -train_rec_nll,
                kl: last_prior_train,
            }),
        },
        peak_rss_mb: peak_rss_mb(),
        aae: None,
        chain: None,
        vq: Some(VqSummary {
            num_codes: vq_section.quantizer.num_codes,
            code_dim: vq_section.quantizer.code_dim,
            grid: [gh, gw],
            perplexity: test_perplexity,
            codes_used: test_codes_used,
            train_perplexity,
            train_codes_used,
            reconstruction_sigma: sigma,
            reconstruction_nll: test_rec_nll,
        }),
        prior: Some(PriorSummary {
            test_nll: last_prior_test,
            test_bits_per_code: last_prior_test / ((gh * gw) as f64 * std::f64::consts::LN_2),
            train_nll: last_prior_train,
            epochs: prior_section.epochs,
            seconds: prior_seconds,
            sampling_seconds,
        }),
    };
    eprintln!(
        "test: MSE {test_mse:.5}, perplexity {test_perplexity:.1} ({test_codes_used} codes), \
         −log p(x|z_q) {test_rec_nll:.1} nats (σ = {sigma:.4}), prior NLL {last_prior_test:.2} \
         nats/grid, {:.4} bits/dim",
        bits(test_rec_nll + last_prior_test)
    );
    write_summary(&run_dir, &summary)?;
    Ok(summary)
}

/// Saves the prior's parameters as `prior.safetensors`, through a temporary file and a rename.
fn save_prior(vs: &nn::VarStore, run_dir: &RunDir) -> Result<(), LabError> {
    let name = "prior.safetensors";
    let tmp = run_dir.temporary(name);
    vs.save(&tmp)?;
    std::fs::rename(&tmp, run_dir.file(name))
        .map_err(|e| LabError::io("writing", &run_dir.file(name), e))
}
