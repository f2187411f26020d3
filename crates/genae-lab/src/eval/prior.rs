//! How close a model's codes are to its prior: the unbiased `MMD²` between test codes and as
//! many prior draws (genae-estimators' `mmd_gaussian`, median-heuristic bandwidth).

use genae_estimators::mmd_gaussian;
use genae_zoo::GenerativeAutoencoder;
use serde::Serialize;
use tch::Tensor;

use crate::context::RunContext;
use crate::error::LabError;

/// The prior-fit figures of an AAE or WAE summary section.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PriorMmd {
    /// Unbiased MMD² (Gaussian kernel, median-heuristic bandwidth) between test codes (encoder
    /// draws) and as many prior samples.
    pub prior_mmd: f64,
    /// Its kernel bandwidth.
    pub prior_mmd_bandwidth: f64,
    /// Test codes it was computed on.
    pub prior_mmd_points: i64,
}

/// The number of test codes the prior fit uses: `eval.latent_points`, at least 2, at most
/// the test set (`None` when the test set has fewer than 2 images).
pub(crate) fn prior_fit_points(run: &RunContext) -> Option<i64> {
    let n = (run.config.file().eval.latent_points as i64)
        .max(2)
        .min(run.test.n);
    (n >= 2).then_some(n)
}

/// The MMD² between the codes of the first `draws.size()[0]` test images and `draws`.
pub(crate) fn prior_mmd(
    model: &dyn GenerativeAutoencoder,
    draws: &Tensor,
    run: &RunContext,
) -> Result<PriorMmd, LabError> {
    let n = draws.size()[0];
    let codes = tch::no_grad(|| model.encode_sample(&run.test.head(n)))?;
    let mmd = mmd_gaussian(&codes, draws, None)?;
    Ok(PriorMmd {
        prior_mmd: mmd.mmd2,
        prior_mmd_bandwidth: mmd.bandwidth,
        prior_mmd_points: n,
    })
}
