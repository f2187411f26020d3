//! Decoder observation models `p(x|z)`: the distribution a decoder outputs for given codes.

use genae_tensor::{sum_except_batch, LOG_2PI};
use tch::Tensor;

use crate::{Likelihood, Result, ZooError};

/// The range `[min, max]` the learned log-variance of [`Likelihood::GaussianLearned`] is
/// clamped to (standard deviations from about 0.011 to 12).
pub const GAUSSIAN_LOG_VAR_RANGE: (f64, f64) = (-9.0, 5.0);

/// The range `[min, max]` the log-scale of [`Likelihood::DiscretizedLogistic`] is clamped to
/// (the minimum is PixelCNN++'s).
pub const LOGISTIC_LOG_SCALE_RANGE: (f64, f64) = (-7.0, 5.0);

impl Likelihood {
    /// How many values per data dimension the decoder network outputs: 1 (Bernoulli logits,
    /// fixed-variance Gaussian mean) or 2 (a location and a log-variance / log-scale).
    pub fn num_outputs(&self) -> i64 {
        match self {
            Self::Bernoulli | Self::Gaussian { .. } => 1,
            Self::GaussianLearned | Self::DiscretizedLogistic { .. } => 2,
        }
    }

    /// The distribution for raw decoder outputs `[N, k·D]`, `k = num_outputs()`: the first
    /// `D` columns are the location (logits or mean), the next `D` (when `k = 2`) the
    /// unconstrained log-variance / log-scale, which is clamped here to
    /// [`GAUSSIAN_LOG_VAR_RANGE`] / [`LOGISTIC_LOG_SCALE_RANGE`].
    ///
    /// ```
    /// use genae_zoo::Likelihood;
    /// use tch::Tensor;
    ///
    /// let outputs = Tensor::from_slice(&[0.2f32, 0.7, 0.0, -100.0]).view([1, 4]); // D = 2
    /// let p = Likelihood::GaussianLearned.distribution(&outputs).unwrap();
    /// assert_eq!(p.mean().size(), vec![1, 2]);
    /// let x = Tensor::from_slice(&[0.2f32, 0.7]).view([1, 2]);
    /// // At the mean: −½(ln 2π + 0) − ½(ln 2π − 9), the second log-variance clamped to −9.
    /// let want = -(1.837_877_f64) + 4.5;
    /// assert!((p.log_prob(&x).unwrap().double_value(&[0]) - want).abs() < 1e-5);
    /// ```
    pub fn distribution(&self, outputs: &Tensor) -> Result<DecoderDistribution> {
        let k = self.num_outputs();
        if outputs.dim() != 2 || outputs.size()[1] % k != 0 {
            return Err(ZooError::Shape {
                what: "Likelihood::distribution",
                detail: format!(
                    "expected [N, {k}·D] outputs for likelihood `{}`, got {:?}",
                    self.name(),
                    outputs.size()
                ),
            });
        }
        let mut heads = outputs.chunk(k, 1).into_iter();
        let location = heads.next().expect("k ≥ 1 chunks");
        Ok(match *self {
            Self::Bernoulli => DecoderDistribution::Bernoulli { logits: location },
            Self::Gaussian { variance } => DecoderDistribution::Gaussian {
                mean: location,
                variance,
            },
            Self::GaussianLearned => {
                let (lo, hi) = GAUSSIAN_LOG_VAR_RANGE;
                DecoderDistribution::GaussianLearned {
                    mean: location,
                    log_var: heads.next().expect("2 chunks").clamp(lo, hi),
                }
            }
            Self::DiscretizedLogistic { bins } => {
                let (lo, hi) = LOGISTIC_LOG_SCALE_RANGE;
                DecoderDistribution::DiscretizedLogistic {
                    location,
                    log_scale: heads.next().expect("2 chunks").clamp(lo, hi),
                    bins,
                }
            }
        })
    }
}

/// `p(x|z)` for a batch of codes: independent over the `D` data dimensions, parameters
/// `[N, D]`. Built by [`Decoder::distribution`](crate::Decoder::distribution) (or
/// [`Likelihood::distribution`]), or directly.
///
/// ```
/// use genae_zoo::DecoderDistribution;
/// use tch::Tensor;
///
/// let p = DecoderDistribution::Gaussian {
///     mean: Tensor::from_slice(&[0.5f64, 0.5]).view([1, 2]),
///     variance: 0.25,
/// };
/// let x = Tensor::from_slice(&[1.0f64, 0.0]).view([1, 2]);
/// // −‖x − μ‖²/2c − D/2·ln(2πc) = −0.5/0.5 − ln(2π·0.25)
/// let want = -1.0 - (2.0 * std::f64::consts::PI * 0.25).ln();
/// assert!((p.log_prob(&x).unwrap().double_value(&[0]) - want).abs() < 1e-12);
/// ```
#[derive(Debug)]
pub enum DecoderDistribution {
    /// Bernoulli with these logits.
    Bernoulli {
        /// Logits `[N, D]`.
        logits: Tensor,
    },
    /// Gaussian with a fixed variance.
    Gaussian {
        /// Means `[N, D]`.
        mean: Tensor,
        /// The variance `c` of every dimension.
        variance: f64,
    },
    /// Gaussian with per-dimension variance.
    GaussianLearned {
        /// Means `[N, D]`.
        mean: Tensor,
        /// Log-variances `[N, D]`.
        log_var: Tensor,
    },
    /// Discretised logistic over `bins` levels `k / (bins − 1)` of `[0, 1]`.
    DiscretizedLogistic {
        /// Locations `μ` `[N, D]`.
        location: Tensor,
        /// Log-scales `ln s` `[N, D]`.
        log_scale: Tensor,
        /// Number of levels.
        bins: u32,
    },
}

impl DecoderDistribution {
    /// The parameter that plays the location: logits, mean or `μ`.
    pub fn location(&self) -> &Tensor {
        match self {
            Self::Bernoulli { logits } => logits,
            Self::Gaussian { mean, .. } | Self::GaussianLearned { mean, .. } => mean,
            Self::DiscretizedLogistic { location, .. } => location,
        }
    }

    /// The mean, for pictures: Bernoulli probabilities `sigmoid(logits)`, the Gaussian mean,
    /// and for the discretised logistic its location clamped to `[0, 1]` (the exact mean
    /// differs from it by the probability mass piled on the two edge levels).
    pub fn mean(&self) -> Tensor {
        match self {
            Self::Bernoulli { logits } => logits.sigmoid(),
            Self::Gaussian { mean, .. } | Self::GaussianLearned { mean, .. } => {
                mean.shallow_clone()
            }
            Self::DiscretizedLogistic { location, .. } => location.clamp(0.0, 1.0),
        }
    }

    /// A sample `x ~ p(x|z)` (no gradient): `{0, 1}` for Bernoulli, levels `k / (bins − 1)`
    /// for the discretised logistic.
    pub fn sample(&self) -> Tensor {
        tch::no_grad(|| match self {
            Self::Bernoulli { logits } => logits.sigmoid().bernoulli(),
            Self::Gaussian { mean, variance } => mean + mean.randn_like() * variance.sqrt(),
            Self::GaussianLearned { mean, log_var } => {
                mean + mean.randn_like() * (log_var * 0.5).exp()
            }
            Self::DiscretizedLogistic {
                location,
                log_scale,
                bins,
            } => {
                let u = location.rand_like().clamp(1e-5, 1.0 - 1e-5);
                let y = location + log_scale.exp() * (u.log() - (-&u).log1p());
                let levels = f64::from(*bins - 1);
                (y * levels).round().clamp(0.0, levels) / levels
            }
        })
    }

    /// `log p(x|z)` of every dimension, `[N, D]`; `x` is `[N, D]` (for the discretised
    /// logistic, on the levels `k / (bins − 1)`).
    pub fn log_prob_elementwise(&self, x: &Tensor) -> Result<Tensor> {
        let location = self.location();
        if x.size() != location.size() {
            return Err(ZooError::Shape {
                what: "DecoderDistribution::log_prob",
                detail: format!("data {:?} vs parameters {:?}", x.size(), location.size()),
            });
        }
        Ok(match self {
            Self::Bernoulli { logits } => x * logits - logits.softplus(),
            Self::Gaussian { mean, variance } => {
                (x - mean).square() / (-2.0 * variance) - 0.5 * (LOG_2PI + variance.ln())
            }
            Self::GaussianLearned { mean, log_var } => {
                ((x - mean).square() * (-log_var).exp() + log_var + LOG_2PI) * -0.5
            }
            Self::DiscretizedLogistic {
                location,
                log_scale,
                bins,
            } => discretized_logistic_log_prob(x, location, log_scale, *bins),
        })
    }

    /// `log p(x|z)` per example, summed over the data dimensions: `[N]`.
    pub fn log_prob(&self, x: &Tensor) -> Result<Tensor> {
        Ok(sum_except_batch(&self.log_prob_elementwise(x)?))
    }
}

/// The discretised logistic log-probability of levels `x ∈ {0, 1/(B−1), …, 1}`.
///
/// With half bin width `h = 1 / (2(B − 1))`, `a = (x + h − μ)/s`, `b = (x − h − μ)/s`:
/// the lowest level has `P = σ(a)` (`log σ(a)`), the highest `P = 1 − σ(b)` (`−softplus(b)`),
/// the others `P = σ(a) − σ(b) = (eᵃ − eᵇ) / ((1 + eᵃ)(1 + eᵇ))`, whose logarithm
/// `a + ln(−expm1(b − a)) − softplus(a) − softplus(b)` is evaluated without cancellation for
/// any `a`, `b` (and `b − a = −2h/s` is formed directly, not by subtracting).
fn discretized_logistic_log_prob(
    x: &Tensor,
    location: &Tensor,
    log_scale: &Tensor,
    bins: u32,
) -> Tensor {
    let half = 0.5 / f64::from(bins - 1);
    let inv_s = (-log_scale).exp();
    let centred = x - location;
    let a = (&centred + half) * &inv_s;
    let b = (&centred - half) * &inv_s;
    let width = &inv_s * (2.0 * half); // a − b
    let interior = &a + (-(-width).expm1()).log() - a.softplus() - b.softplus();
    let lowest = a.log_sigmoid();
    let highest = (-&b).log_sigmoid();
    let is_lowest = x.lt(half);
    let is_highest = x.gt(1.0 - half);
    highest.where_self(&is_highest, &lowest.where_self(&is_lowest, &interior))
}
