//! Likelihood-type evaluations shared by the model kinds: the importance-sampled `L_k` (with
//! the model's own encoder or a given Gaussian proposal), the exact `log p(x)` by quadrature
//! with the aggregate posterior's KL for low-dimensional latent spaces, and the reconstruction
//! error.

use std::time::Instant;

use genae_estimators::{
    bits_per_dim, evaluate_log_likelihood, gaussian_proposal_log_likelihood,
    knn_kl_to_standard_normal, quadrature_log_likelihood, LogLikelihoodOptions, QuadratureOptions,
};
use genae_zoo::{Decoder, GenerativeAutoencoder, LatentVariableModel};
use serde::Serialize;
use tch::{Kind, Tensor};

use crate::config::LikelihoodEval;
use crate::context::RunContext;
use crate::data::{batch_ranges, mean_over_batches, DeviceSplit};
use crate::error::LabError;
use crate::eval::pictures::cycled_test;

/// `test.log_likelihood` in `summary.json` (and `log_likelihood` of mid-run metrics lines).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LogLikelihoodSummary {
    /// Importance samples per image.
    pub k: i64,
    /// Test images it was estimated on.
    pub n_images: usize,
    /// Mean `L_k`, nats per image.
    pub value: f64,
    /// The same in bits per dimension (positive).
    pub bits_per_dim: f64,
    /// Seconds the estimate took.
    pub seconds: f64,
}

/// (image, sample) pairs per decoder pass while estimating `L_k`. On the 2-core machine this
/// project measures on, passes of 1 280 samples of one image ran a 784-300-300-40 decoder about
/// 1.4× faster per image than passes of 500 with two threads (the same with one thread), and
/// 10 000-row passes were slower again (out of cache); see docs/benchmarks.md.
const LOG_LIKELIHOOD_ROWS: i64 = 1280;

/// Test images per batch while estimating `L_k`: as many as fill [`LOG_LIKELIHOOD_ROWS`] with
/// `min(k, chunk)` samples each, at least one.
fn log_likelihood_batch(k: i64, chunk: i64) -> i64 {
    (LOG_LIKELIHOOD_ROWS / k.min(chunk).max(1)).max(1)
}

/// Test images `L_k` is estimated on: `eval.log_likelihood_images`, 0 meaning all.
fn images(eval: LikelihoodEval, test: &DeviceSplit) -> i64 {
    match eval.images {
        0 => test.n,
        n => (n as i64).min(test.n),
    }
}

fn summary(
    eval: LikelihoodEval,
    n: i64,
    value: f64,
    run: &RunContext,
    started: Instant,
) -> LogLikelihoodSummary {
    LogLikelihoodSummary {
        k: eval.k,
        n_images: n as usize,
        value,
        bits_per_dim: bits_per_dim(value, run.input_dim() as usize),
        seconds: started.elapsed().as_secs_f64(),
    }
}

/// `L_k` of a model with an encoder density (its `q(z|x)` as the proposal).
pub(crate) fn encoder_log_likelihood<M: LatentVariableModel + ?Sized>(
    model: &M,
    run: &RunContext,
    eval: LikelihoodEval,
) -> Result<LogLikelihoodSummary, LabError> {
    let n = images(eval, run.test);
    let started = Instant::now();
    let value = evaluate_log_likelihood(
        model,
        &run.test.head(n),
        LogLikelihoodOptions {
            k: eval.k,
            chunk_size: eval.chunk,
            batch_size: log_likelihood_batch(eval.k, eval.chunk),
        },
    )?;
    Ok(summary(eval, n, value, run, started))
}

/// `L_k` of a model whose proposal `(mean, std)` per image comes from `proposal` (e.g. the
/// moment-matched Gaussian of an implicit encoder).
pub(crate) fn proposal_log_likelihood<M: LatentVariableModel + ?Sized>(
    model: &M,
    run: &RunContext,
    eval: LikelihoodEval,
    mut proposal: impl FnMut(&Tensor) -> Result<(Tensor, Tensor), LabError>,
) -> Result<LogLikelihoodSummary, LabError> {
    let n = images(eval, run.test);
    let started = Instant::now();
    let mut total = 0.0;
    for (start, len) in batch_ranges(n, log_likelihood_batch(eval.k, eval.chunk)) {
        let x = run.test.x.narrow(0, start, len);
        let (mean, std) = proposal(&x)?;
        let ll = gaussian_proposal_log_likelihood(model, &x, &mean, &std, eval.k, eval.chunk)?;
        total += ll.sum(Kind::Double).double_value(&[]);
    }
    Ok(summary(eval, n, total / n.max(1) as f64, run, started))
}

/// Mean squared error per pixel between the test images and the decoder means at their
/// codes' means, in batches (pixel values in `[0, 1]`).
pub(crate) fn reconstruction_mse(
    model: &dyn GenerativeAutoencoder,
    split: &DeviceSplit,
    batch_size: i64,
) -> Result<f64, LabError> {
    let per_example = mean_over_batches(&split.x, batch_size, |x| {
        let x_hat = model.decode_mean(&model.encode_mean(x)?)?;
        Ok((x_hat - x).square().sum(Kind::Double))
    })?;
    Ok(per_example / split.x.size()[1] as f64)
}

/// The exact evaluations of a model with at most a 3-d latent space.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct ExactEvaluation {
    pub(crate) log_likelihood: f64,
    pub(crate) aggregate_kl: f64,
}

/// Points of the aggregate posterior drawn for its KL estimate.
const AGGREGATE_KL_POINTS: i64 = 5000;
/// Neighbours of the k-NN entropy estimate.
const AGGREGATE_KL_NEIGHBOURS: i64 = 5;

/// `test.exact_log_likelihood` (quadrature on the `eval.exact_log_likelihood_grid` grid,
/// over the distinct test images weighted by their counts) and `test.aggregate_kl` (k-NN
/// entropy of 5 000 draws of `q(z|x)` over the cycled test set); `None` when the grid is off.
pub(crate) fn exact_evaluation(
    decoder: &Decoder,
    model: &dyn GenerativeAutoencoder,
    run: &RunContext,
) -> Result<Option<ExactEvaluation>, LabError> {
    let test = run.test;
    let Some((grid, half_width)) = run.config.exact_log_likelihood() else {
        return Ok(None);
    };
    if test.n == 0 {
        return Ok(None);
    }
    let options = QuadratureOptions {
        points_per_axis: grid,
        half_width,
        chunk: 1 << 18,
    };
    let (unique, _inverse, counts) = test.x.unique_dim(0, true, false, true);
    let ll = quadrature_log_likelihood(
        |x, z| decoder.log_likelihood(x, z),
        &unique,
        decoder.latent_dim(),
        options,
    )?;
    let log_likelihood = (ll.to_kind(Kind::Double) * counts.to_kind(Kind::Double))
        .sum(Kind::Double)
        .double_value(&[])
        / test.n as f64;
    let (x, _) = cycled_test(test, AGGREGATE_KL_POINTS);
    let z = tch::no_grad(|| model.encode_sample(&x))?;
    let aggregate_kl = knn_kl_to_standard_normal(&z, AGGREGATE_KL_NEIGHBOURS)?;
    Ok(Some(ExactEvaluation {
        log_likelihood,
        aggregate_kl,
    }))
}
