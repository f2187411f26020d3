//! Placeholder (replaced by the EM implementation on branch `gmm`).
#![allow(missing_docs)]
use tch::Tensor;

use crate::EstimatorError;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CovarianceKind {
    Full,
    Diagonal,
}

#[derive(Clone, Debug)]
pub struct GmmOptions {
    pub components: usize,
    pub covariance: CovarianceKind,
    pub seed: u64,
}

impl Default for GmmOptions {
    fn default() -> Self {
        Self {
            components: 10,
            covariance: CovarianceKind::Full,
            seed: 0,
        }
    }
}

pub struct FitReport;

pub struct GaussianMixture;

impl GaussianMixture {
    pub fn fit(_x: &Tensor, _o: &GmmOptions) -> Result<(Self, FitReport), EstimatorError> {
        unimplemented!("branch gmm")
    }
    pub fn sample(&self, _n: i64, _seed: u64) -> Result<Tensor, EstimatorError> {
        unimplemented!("branch gmm")
    }
}
