//! Likelihood helpers: Bernoulli log-likelihood from logits, log-mean-exp, reductions.

use tch::{Kind, Tensor};

use crate::{Result, TensorError};

/// `ln(2π)`.
pub const LOG_2PI: f64 = 1.837_877_066_409_345_5;

/// Sums a `[N, ...]` tensor over every dimension but the first: one number per example.
pub fn sum_except_batch(t: &Tensor) -> Tensor {
    if t.dim() <= 1 {
        t.shallow_clone()
    } else {
        t.flatten(1, -1).sum_dim_intlist(-1, false, None::<Kind>)
    }
}

/// `log p(x | logits)` of independent Bernoulli pixels, summed over all but the first
/// dimension: `Σ x·l − softplus(l)`, the negative binary cross-entropy with logits. `x` may hold
/// any value in `[0, 1]` (the usual relaxation for grey-level data).
///
/// ```
/// use tch::Tensor;
/// let logits = Tensor::from_slice(&[0.0f32, 0.0]).view([1, 2]);
/// let x = Tensor::from_slice(&[1.0f32, 0.0]).view([1, 2]);
/// let ll = genae_tensor::bernoulli_logits_log_prob(&logits, &x).unwrap();
/// assert!((ll.double_value(&[0]) - 2.0 * 0.5f64.ln()).abs() < 1e-6);
/// ```
pub fn bernoulli_logits_log_prob(logits: &Tensor, x: &Tensor) -> Result<Tensor> {
    if logits.size() != x.size() {
        return Err(TensorError::Shape {
            what: "bernoulli_logits_log_prob",
            detail: format!("logits {:?} vs data {:?}", logits.size(), x.size()),
        });
    }
    Ok(sum_except_batch(&(x * logits - logits.softplus())))
}

/// `log( mean_i exp(t_i) )` along `dim`, computed with log-sum-exp (never by exponentiating).
///
/// ```
/// use tch::Tensor;
/// let t = Tensor::from_slice(&[1000.0f64, 1000.0]);
/// let v = genae_tensor::log_mean_exp(&t, 0).double_value(&[]);
/// assert!((v - 1000.0).abs() < 1e-9);
/// ```
pub fn log_mean_exp(t: &Tensor, dim: i64) -> Tensor {
    let n = t.size()[dim.rem_euclid(t.dim() as i64) as usize] as f64;
    t.logsumexp([dim], false) - n.ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bernoulli_matches_hand_values() {
        let _rng = crate::torch_rng_lock();
        // p = sigmoid(l); log p(x) = x ln p + (1−x) ln(1−p).
        let l = [2.0f64, -1.0, 0.5];
        let x = [1.0f64, 0.0, 0.3];
        let want: f64 = l
            .iter()
            .zip(x)
            .map(|(&l, x)| {
                let p = 1.0 / (1.0 + (-l).exp());
                x * p.ln() + (1.0 - x) * (1.0 - p).ln()
            })
            .sum();
        let got = bernoulli_logits_log_prob(
            &Tensor::from_slice(&l).view([1, 3]),
            &Tensor::from_slice(&x).view([1, 3]),
        )
        .unwrap()
        .double_value(&[0]);
        assert!((got - want).abs() < 1e-6, "{got} vs {want}");
    }

    #[test]
    fn bernoulli_is_stable_for_huge_logits() {
        let _rng = crate::torch_rng_lock();
        let l = Tensor::from_slice(&[80.0f32, -80.0]).view([1, 2]);
        let x = Tensor::from_slice(&[1.0f32, 0.0]).view([1, 2]);
        let v = bernoulli_logits_log_prob(&l, &x)
            .unwrap()
            .double_value(&[0]);
        assert!(v.is_finite() && v.abs() < 1e-6);
    }

    #[test]
    fn bernoulli_rejects_mismatched_shapes() {
        let _rng = crate::torch_rng_lock();
        let err = bernoulli_logits_log_prob(
            &Tensor::zeros([2, 3], (Kind::Float, tch::Device::Cpu)),
            &Tensor::zeros([2, 4], (Kind::Float, tch::Device::Cpu)),
        )
        .unwrap_err();
        assert!(err.to_string().contains("[2, 4]"));
    }

    #[test]
    fn log_mean_exp_matches_direct_computation() {
        let _rng = crate::torch_rng_lock();
        let v = [0.1f64, -2.0, 1.5, 0.7];
        let want = (v.iter().map(|x| x.exp()).sum::<f64>() / 4.0).ln();
        let t = Tensor::from_slice(&v).view([2, 2]);
        let got = log_mean_exp(&t.view([1, 4]), -1).double_value(&[0]);
        assert!((got - want).abs() < 1e-12);
        let cols = log_mean_exp(&t, 0);
        let want0 = ((0.1f64.exp() + 1.5f64.exp()) / 2.0).ln();
        assert!((cols.double_value(&[0]) - want0).abs() < 1e-12);
    }
}
