//! Active latent units (Burda, Grosse & Salakhutdinov, 2016, section 5.2).

use genae_zoo::LatentVariableModel;
use tch::{Device, Kind, Tensor};

use crate::sampling::{at_least_one, non_empty};
use crate::{EstimatorError, Result};

/// The activity threshold of Burda et al.: a unit is active when `Cov_x(E_q[z_j|x]) > 0.01`.
pub const ACTIVE_UNIT_THRESHOLD: f64 = 0.01;

/// What [`active_units`] found.
#[derive(Clone, Debug, PartialEq)]
pub struct ActiveUnits {
    /// How many latent dimensions have `per_dim_variance` above the threshold.
    pub count: usize,
    /// `Var_x(E_q[z_j|x])` per latent dimension `j` over the data set (population variance,
    /// divided by `N`).
    pub per_dim_variance: Vec<f64>,
}

/// Counts the active latent units of `model` on `data` (`[N, ...]`): the dimensions `j` whose
/// posterior mean `E_q[z_j|x]` varies across the data set with variance above `threshold`
/// (use [`ACTIVE_UNIT_THRESHOLD`], 0.01, for Burda et al.'s figure). Encodes in batches of
/// `batch_size` without gradients and merges per-batch means and squared deviations in `f64`
/// (Chan et al.'s pairwise update, two-pass within a batch), so large offsets do not cancel.
/// `data` must live where the model does.
///
/// ```
/// use genae_estimators::{active_units, ACTIVE_UNIT_THRESHOLD};
/// use genae_zoo::{Vae, VaeConfig};
/// use tch::{nn, Device, Kind, Tensor};
///
/// let vs = nn::VarStore::new(Device::Cpu);
/// let vae = Vae::new(&vs.root(), &VaeConfig { input_dim: 8, hidden: vec![16], latent_dim: 3, ..Default::default() }).unwrap();
/// let data = Tensor::rand([50, 8], (Kind::Float, Device::Cpu)).round();
/// let au = active_units(&vae, &data, 16, ACTIVE_UNIT_THRESHOLD).unwrap();
/// assert_eq!(au.per_dim_variance.len(), 3);
/// assert!(au.count <= 3);
/// ```
pub fn active_units<M: LatentVariableModel + ?Sized>(
    model: &M,
    data: &Tensor,
    batch_size: i64,
    threshold: f64,
) -> Result<ActiveUnits> {
    at_least_one("batch_size", batch_size)?;
    if !(threshold.is_finite() && threshold > 0.0) {
        return Err(EstimatorError::InvalidArgument {
            name: "threshold",
            reason: format!("must be a finite number > 0, got {threshold}"),
        });
    }
    let n_total = non_empty("data", data)?;
    let mut count = 0.0f64;
    let mut mean: Vec<f64> = Vec::new();
    let mut m2: Vec<f64> = Vec::new();
    let mut start = 0;
    while start < n_total {
        let len = batch_size.min(n_total - start);
        let batch = data.narrow(0, start, len);
        let mu = tch::no_grad(|| model.encode(&batch))?
            .mean()
            .to_kind(Kind::Double)
            .to_device(Device::Cpu);
        let batch_mean = mu.mean_dim(0, false, None::<Kind>);
        let batch_m2 = (&mu - &batch_mean)
            .square()
            .sum_dim_intlist(0, false, None::<Kind>);
        let batch_mean = Vec::<f64>::try_from(&batch_mean)?;
        let batch_m2 = Vec::<f64>::try_from(&batch_m2)?;
        let n_b = len as f64;
        if mean.is_empty() {
            mean = batch_mean;
            m2 = batch_m2;
        } else {
            let n = count + n_b;
            for j in 0..mean.len() {
                let delta = batch_mean[j] - mean[j];
                mean[j] += delta * n_b / n;
                m2[j] += batch_m2[j] + delta * delta * count * n_b / n;
            }
        }
        count += n_b;
        start += len;
    }
    let per_dim_variance: Vec<f64> = m2.iter().map(|s| s / count).collect();
    Ok(ActiveUnits {
        count: per_dim_variance.iter().filter(|&&v| v > threshold).count(),
        per_dim_variance,
    })
}
