//! The sampling disentanglement metrics used from outside the crate, as the lab uses them: a
//! ground truth implemented elsewhere, behind `&mut dyn GroundTruth`, computing its codes with
//! libtorch and passing libtorch's errors on with `?`.

use genae_estimators::disentanglement::{
    beta_vae_score, dci_from_ground_truth, factor_vae_score, mig_from_ground_truth,
    sap_from_ground_truth, BetaVaeOptions, DciOptions, FactorVaeOptions, GroundTruth, MigOptions,
    SapOptions,
};
use genae_estimators::{EstimatorError, Result};
use tch::{Device, Kind, Tensor};

/// Three factors on a 3 × 4 × 6 grid; the code is a fixed linear map of the factor vector
/// (`[n, 3] @ [3, dims]`), computed by libtorch.
struct LinearCodes {
    map: Vec<f64>,
    dims: i64,
}

impl GroundTruth for LinearCodes {
    fn factor_sizes(&self) -> Vec<u32> {
        vec![3, 4, 6]
    }

    fn codes(&mut self, factors: &[Vec<u32>]) -> Result<Vec<Vec<f64>>> {
        let n = factors[0].len() as i64;
        let flat: Vec<f64> = factors.iter().flatten().map(|&v| f64::from(v)).collect();
        let f = Tensor::from_slice(&flat).view([3, n]).tr();
        let map = Tensor::from_slice(&self.map).view([-1, self.dims]);
        // A map with the wrong number of rows fails here, in libtorch: the `?` turns it into
        // `EstimatorError::Torch`.
        let z = f
            .f_matmul(&map)?
            .f_to_kind(Kind::Double)?
            .f_to_device(Device::Cpu)?;
        Ok((0..self.dims)
            .map(|j| Vec::<f64>::try_from(z.select(1, j)).expect("a column of doubles"))
            .collect())
    }
}

/// Codes = the factors, permuted (2, 0, 1) and scaled.
fn permuted() -> LinearCodes {
    LinearCodes {
        map: vec![0.0, -2.0, 0.0, 0.0, 0.0, 0.5, 3.0, 0.0, 0.0],
        dims: 3,
    }
}

#[test]
fn every_sampling_metric_runs_on_a_boxed_trait_object() {
    let mut gt: Box<dyn GroundTruth> = Box::new(permuted());
    let beta = BetaVaeOptions {
        num_train: 200,
        num_eval: 200,
        ..Default::default()
    };
    assert_eq!(beta_vae_score(gt.as_mut(), &beta, 0).unwrap().score, 1.0);
    let factor = FactorVaeOptions {
        num_train: 200,
        num_eval: 200,
        num_variance_estimate: 1_000,
        ..Default::default()
    };
    let fv = factor_vae_score(gt.as_mut(), &factor, 0).unwrap();
    assert_eq!(fv.score, 1.0);
    assert_eq!(fv.classifier, vec![Some(2), Some(0), Some(1)]);
    let dci = DciOptions {
        num_train: 2_000,
        num_test: 1_000,
        ..Default::default()
    };
    let d = dci_from_ground_truth(gt.as_mut(), &dci, 0).unwrap();
    assert!(d.disentanglement > 0.99 && d.completeness > 0.99, "{d:?}");
    let mig = mig_from_ground_truth(
        gt.as_mut(),
        &MigOptions {
            num_train: 2_000,
            bins: 20,
        },
        0,
    )
    .unwrap();
    assert!(mig.score > 0.99, "{mig:?}"); // chance dependence of the sampled factors
    let sap = sap_from_ground_truth(gt.as_mut(), &SapOptions { num_train: 2_000 }, 0).unwrap();
    assert!(sap.score > 0.99, "{sap:?}");
}

#[test]
fn a_libtorch_error_in_the_oracle_ends_the_metric_with_that_error() {
    // Two rows for three factors: the matmul fails.
    let mut gt = LinearCodes {
        map: vec![1.0; 6],
        dims: 3,
    };
    let options = FactorVaeOptions {
        num_train: 10,
        num_eval: 10,
        num_variance_estimate: 100,
        ..Default::default()
    };
    let err = factor_vae_score(&mut gt, &options, 0).unwrap_err();
    assert!(matches!(err, EstimatorError::Torch(_)), "{err}");
}
