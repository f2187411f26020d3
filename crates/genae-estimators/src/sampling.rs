//! Shared machinery of the sampling estimators: chunk-invariant noise and per-sample log terms.

use genae_tensor::DiagGaussian;
use genae_zoo::LatentVariableModel;
use tch::{Device, Kind, Tensor};

use crate::{EstimatorError, Result};

/// Samples per block of standard-normal noise. Noise is always drawn in blocks of this many
/// samples (the last block of a call holds what is left), whatever the consumer asks for at a
/// time, so the draws depend only on the seed, the total number of samples and the posterior's
/// shape: a chunked estimate sees exactly the same `z` as an unchunked one.
pub(crate) const NOISE_BLOCK: i64 = 128;

/// `total` samples of `N(0, I)` noise shaped like an `[N, d]` posterior, handed out in pieces.
pub(crate) struct NoiseStream {
    shape: Vec<i64>,
    options: (Kind, Device),
    left_to_draw: i64,
    buffer: Option<Tensor>,
}

impl NoiseStream {
    /// A stream of `total` samples with the shape, kind and device of `like`.
    pub(crate) fn new(like: &Tensor, total: i64) -> Self {
        Self {
            shape: like.size(),
            options: (like.kind(), like.device()),
            left_to_draw: total,
            buffer: None,
        }
    }

    /// The next `count` samples, `[count, N, d]`.
    pub(crate) fn take(&mut self, count: i64) -> Tensor {
        let mut pieces = Vec::new();
        let mut have = 0;
        if count <= 0 {
            let mut shape = vec![0];
            shape.extend(&self.shape);
            return Tensor::zeros(&shape, self.options);
        }
        if let Some(buffer) = self.buffer.take() {
            have += buffer.size()[0];
            pieces.push(buffer);
        }
        while have < count {
            let mut block = NOISE_BLOCK.min(self.left_to_draw);
            if block <= 0 {
                // Only reachable if a caller takes more than it announced; draw what is missing.
                block = count - have;
            }
            let mut shape = vec![block];
            shape.extend(&self.shape);
            // The examples run along dimension 1 (data-parallel noise: `genae_tensor::noise`).
            let draw = genae_tensor::noise::randn(&shape, 1, self.options)
                .unwrap_or_else(|_| Tensor::randn(&shape, self.options));
            pieces.push(draw);
            self.left_to_draw -= block;
            have += block;
        }
        let all = if pieces.len() == 1 {
            pieces.swap_remove(0)
        } else {
            Tensor::cat(&pieces, 0)
        };
        if have > count {
            self.buffer = Some(all.narrow(0, count, have - count));
            all.narrow(0, 0, count)
        } else {
            all
        }
    }
}

/// The three log densities of `S` samples per example, each `[S, N]`.
pub(crate) struct SampleTerms {
    /// `log p(x|z_s)`.
    pub log_likelihood: Tensor,
    /// `log q(z_s|x)`.
    pub log_q: Tensor,
    /// `log p(z_s)`.
    pub log_prior: Tensor,
}

impl SampleTerms {
    /// `log p(x|z) + log p(z) − log q(z|x)`, `[S, N]`.
    pub(crate) fn log_weights(&self) -> Tensor {
        &self.log_likelihood + &self.log_prior - &self.log_q
    }
}

/// Scores reparameterised samples `z = μ + σ·eps` (`eps` `[S, N, d]`) under the model.
pub(crate) fn sample_terms<M: LatentVariableModel + ?Sized>(
    model: &M,
    x: &Tensor,
    posterior: &DiagGaussian,
    prior: &DiagGaussian,
    eps: &Tensor,
) -> Result<SampleTerms> {
    let samples = eps.size()[0];
    let n = posterior.mean().size()[0];
    let z = posterior.mean().unsqueeze(0) + posterior.std().unsqueeze(0) * eps; // [S, N, d]
                                                                                // [S·N, ...], sample-major like z: a view without copying when N = 1 (the cache-friendly
                                                                                // way to estimate L_k), one copy otherwise.
    let xs = if samples == 1 {
        x.shallow_clone()
    } else {
        let mut expanded = vec![samples];
        expanded.extend(x.size());
        x.unsqueeze(0).f_expand(&expanded, false)?.f_flatten(0, 1)?
    };
    let log_likelihood = model
        .log_likelihood(&xs, &z.flatten(0, 1))?
        .f_view([samples, n])?;
    Ok(SampleTerms {
        log_likelihood,
        log_q: posterior.log_prob(&z)?,
        log_prior: prior.log_prob(&z)?,
    })
}

/// `Err(InvalidArgument)` unless `value ≥ 1`.
pub(crate) fn at_least_one(name: &'static str, value: i64) -> Result<()> {
    if value >= 1 {
        Ok(())
    } else {
        Err(EstimatorError::InvalidArgument {
            name,
            reason: format!("must be at least 1, got {value}"),
        })
    }
}

/// `Err(InvalidArgument)` unless `value` is finite and `≥ 0`.
pub(crate) fn non_negative(name: &'static str, value: f64) -> Result<()> {
    if value.is_finite() && value >= 0.0 {
        Ok(())
    } else {
        Err(EstimatorError::InvalidArgument {
            name,
            reason: format!("must be a finite number ≥ 0, got {value}"),
        })
    }
}

/// `Err(InvalidArgument)` unless the tensor holds at least one example.
pub(crate) fn non_empty(name: &'static str, data: &Tensor) -> Result<i64> {
    match data.size().first() {
        Some(&n) if n >= 1 => Ok(n),
        _ => Err(EstimatorError::InvalidArgument {
            name,
            reason: format!(
                "must be [N, ...] with at least one example, got shape {:?}",
                data.size()
            ),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn noise_does_not_depend_on_how_it_is_taken() {
        let like = Tensor::zeros([3, 2], (Kind::Float, Device::Cpu));
        let total = 2 * NOISE_BLOCK + 37;
        let _rng = crate::torch_rng_lock();
        tch::manual_seed(5);
        let whole = NoiseStream::new(&like, total).take(total);
        assert_eq!(whole.size(), vec![total, 3, 2]);
        for pieces in [
            vec![1; total as usize],
            vec![100, 100, total - 200],
            vec![NOISE_BLOCK, 5, total - NOISE_BLOCK - 5],
        ] {
            tch::manual_seed(5);
            let mut stream = NoiseStream::new(&like, total);
            let parts: Vec<Tensor> = pieces.iter().map(|&c| stream.take(c)).collect();
            let joined = Tensor::cat(&parts, 0);
            assert!(
                joined.equal(&whole),
                "pieces {:?}",
                &pieces[..pieces.len().min(4)]
            );
        }
    }
}
