//! Importance-weighted bounds (Burda, Grosse & Salakhutdinov, 2016) and the chunked
//! log-likelihood estimate `L_5000` that papers report.

use genae_tensor::{log_mean_exp, DiagGaussian};
use genae_zoo::LatentVariableModel;
use tch::{Kind, Tensor};

use crate::sampling::{at_least_one, non_empty, sample_terms, NoiseStream};
use crate::Result;

/// The log importance weights `log w_i = log p(x|z_i) + log p(z_i) − log q(z_i|x)` of `k`
/// reparameterised samples `z_i ~ q(z|x)` per example: shape `[k, N]`, differentiable in the
/// model's parameters (the IWAE gradient flows through them).
///
/// ```
/// use genae_estimators::iwae_log_weights;
/// use genae_zoo::{Vae, VaeConfig};
/// use tch::{nn, Device, Kind, Tensor};
///
/// let vs = nn::VarStore::new(Device::Cpu);
/// let vae = Vae::new(&vs.root(), &VaeConfig { input_dim: 8, hidden: vec![16], latent_dim: 2, ..Default::default() }).unwrap();
/// let x = Tensor::rand([4, 8], (Kind::Float, Device::Cpu)).round();
/// assert_eq!(iwae_log_weights(&vae, &x, 5).unwrap().size(), vec![5, 4]);
/// ```
pub fn iwae_log_weights<M: LatentVariableModel + ?Sized>(
    model: &M,
    x: &Tensor,
    k: i64,
) -> Result<Tensor> {
    at_least_one("k", k)?;
    let posterior = model.encode(x)?;
    let prior = model.prior(posterior.mean())?;
    let eps = NoiseStream::new(posterior.mean(), k).take(k);
    Ok(sample_terms(model, x, &posterior, &prior, &eps)?.log_weights())
}

/// The importance-weighted bound `L_k(x) = log (1/k) Σ_i w_i` per example (`[N]`), computed
/// with log-sum-exp over [`iwae_log_weights`]; `L_1` is the single-sample ELBO with a
/// Monte-Carlo KL, and `L_k` increases with `k` towards `log p(x)`. Differentiable: `−mean L_k`
/// is the IWAE training loss.
///
/// ```
/// use genae_estimators::iwae_bound;
/// use genae_zoo::{Vae, VaeConfig};
/// use tch::{nn, Device, Kind, Tensor};
///
/// let vs = nn::VarStore::new(Device::Cpu);
/// let vae = Vae::new(&vs.root(), &VaeConfig { input_dim: 8, hidden: vec![16], latent_dim: 2, ..Default::default() }).unwrap();
/// let x = Tensor::rand([4, 8], (Kind::Float, Device::Cpu)).round();
/// let bound = iwae_bound(&vae, &x, 50).unwrap();
/// assert_eq!(bound.size(), vec![4]);
/// (-bound.mean(Kind::Float)).backward();
/// ```
pub fn iwae_bound<M: LatentVariableModel + ?Sized>(
    model: &M,
    x: &Tensor,
    k: i64,
) -> Result<Tensor> {
    Ok(log_mean_exp(&iwae_log_weights(model, x, k)?, 0))
}

/// `L_k(x)` per example (`[N]`) for large `k` (5000 in the papers), without gradients and in
/// chunks of at most `chunk_size` samples per example, so memory is bounded by `chunk_size`
/// whatever `k`. The chunks' log-sum-exps are combined exactly (a running log-sum-exp), and the
/// noise is drawn in fixed blocks independent of `chunk_size`: with the same seed, any
/// `chunk_size` (and [`iwae_bound`]) sees the same samples and gives the same value to float
/// precision.
///
/// ```
/// use genae_estimators::log_likelihood_estimate;
/// use genae_zoo::{Vae, VaeConfig};
/// use tch::{nn, Device, Kind, Tensor};
///
/// let vs = nn::VarStore::new(Device::Cpu);
/// let vae = Vae::new(&vs.root(), &VaeConfig { input_dim: 8, hidden: vec![16], latent_dim: 2, ..Default::default() }).unwrap();
/// let x = Tensor::rand([4, 8], (Kind::Float, Device::Cpu)).round();
/// tch::manual_seed(1);
/// let chunked = log_likelihood_estimate(&vae, &x, 1000, 100).unwrap();
/// tch::manual_seed(1);
/// let whole = log_likelihood_estimate(&vae, &x, 1000, 1000).unwrap();
/// assert!(!chunked.requires_grad());
/// assert!((chunked - whole).abs().max().double_value(&[]) < 1e-4);
/// ```
pub fn log_likelihood_estimate<M: LatentVariableModel + ?Sized>(
    model: &M,
    x: &Tensor,
    k: i64,
    chunk_size: i64,
) -> Result<Tensor> {
    at_least_one("k", k)?;
    at_least_one("chunk_size", chunk_size)?;
    tch::no_grad(|| {
        let posterior = model.encode(x)?;
        chunked_log_mean_weight(model, x, &posterior, k, chunk_size)
    })
}

/// `log (1/k) Σ_i p(x, z_i) / r(z_i)` per example with `z_i ~ r` for a diagonal-Gaussian
/// proposal `r` `[N, d]`, in chunks of at most `chunk_size` samples with a running
/// log-sum-exp and chunk-invariant noise. Call under `no_grad`; `k, chunk_size ≥ 1`.
pub(crate) fn chunked_log_mean_weight<M: LatentVariableModel + ?Sized>(
    model: &M,
    x: &Tensor,
    posterior: &DiagGaussian,
    k: i64,
    chunk_size: i64,
) -> Result<Tensor> {
    let prior = model.prior(posterior.mean())?;
    let mut noise = NoiseStream::new(posterior.mean(), k);
    let mut total: Option<Tensor> = None;
    let mut done = 0;
    while done < k {
        let size = chunk_size.min(k - done);
        let eps = noise.take(size);
        let log_w = sample_terms(model, x, posterior, &prior, &eps)?.log_weights();
        let lse = log_w.logsumexp([0], false);
        total = Some(match total {
            None => lse,
            Some(acc) => acc.logaddexp(&lse),
        });
        done += size;
    }
    let total = total.expect("k ≥ 1, so at least one chunk ran");
    Ok(total - (k as f64).ln())
}

/// Settings of [`evaluate_log_likelihood`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogLikelihoodOptions {
    /// Importance samples per example (`k` of `L_k`).
    pub k: i64,
    /// At most this many samples per example at a time.
    pub chunk_size: i64,
    /// Examples per batch.
    pub batch_size: i64,
}

impl Default for LogLikelihoodOptions {
    /// `L_5000`, 1280 samples per chunk (ten noise blocks), one example per batch: passes that
    /// stay in cache and parallelise well on a CPU.
    fn default() -> Self {
        Self {
            k: 5000,
            chunk_size: 1280,
            batch_size: 1,
        }
    }
}

impl LogLikelihoodOptions {
    /// Checks every field, naming the first bad one.
    pub fn validate(&self) -> Result<()> {
        at_least_one("k", self.k)?;
        at_least_one("chunk_size", self.chunk_size)?;
        at_least_one("batch_size", self.batch_size)
    }
}

/// The mean of [`log_likelihood_estimate`] over a whole data tensor `[N_total, ...]`, walked in
/// batches of `opts.batch_size` examples (narrow views, no copies): the test log-likelihood of a
/// run, in nats per example. `data` must live where the model does.
///
/// ```
/// use genae_estimators::{evaluate_log_likelihood, LogLikelihoodOptions};
/// use genae_zoo::{Vae, VaeConfig};
/// use tch::{nn, Device, Kind, Tensor};
///
/// let vs = nn::VarStore::new(Device::Cpu);
/// let vae = Vae::new(&vs.root(), &VaeConfig { input_dim: 8, hidden: vec![16], latent_dim: 2, ..Default::default() }).unwrap();
/// let data = Tensor::rand([25, 8], (Kind::Float, Device::Cpu)).round();
/// let opts = LogLikelihoodOptions { k: 100, chunk_size: 50, batch_size: 10 };
/// let nats = evaluate_log_likelihood(&vae, &data, opts).unwrap();
/// assert!(nats < 0.0);
/// ```
pub fn evaluate_log_likelihood<M: LatentVariableModel + ?Sized>(
    model: &M,
    data: &Tensor,
    opts: LogLikelihoodOptions,
) -> Result<f64> {
    opts.validate()?;
    let n_total = non_empty("data", data)?;
    let mut sum = 0.0;
    let mut start = 0;
    while start < n_total {
        let len = opts.batch_size.min(n_total - start);
        let batch = data.narrow(0, start, len);
        let estimate = log_likelihood_estimate(model, &batch, opts.k, opts.chunk_size)?;
        sum += estimate.sum(Kind::Double).double_value(&[]);
        start += len;
    }
    Ok(sum / n_total as f64)
}

/// Converts a log-likelihood in nats per example into **bits per dimension**:
/// `−nats / (dims · ln 2)`. The sign flips: a log-likelihood (negative for discrete data) goes
/// in, a positive code length per dimension (lower is better) comes out. `dims` is the number
/// of data dimensions per example (`C·H·W`) and must be positive.
///
/// ```
/// use genae_estimators::bits_per_dim;
/// // A uniform model of 784 binary pixels: log p(x) = −784 ln 2, i.e. exactly 1 bit/dim.
/// let bpd = bits_per_dim(-784.0 * std::f64::consts::LN_2, 784);
/// assert!((bpd - 1.0).abs() < 1e-12);
/// ```
pub fn bits_per_dim(nats_per_example: f64, dims: usize) -> f64 {
    -nats_per_example / (dims as f64 * std::f64::consts::LN_2)
}
