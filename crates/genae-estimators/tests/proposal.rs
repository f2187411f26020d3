//! Importance sampling with a given Gaussian proposal against the exact evidence of the
//! linear-Gaussian model and against `L_k` with the model's own encoder.

use std::sync::{Mutex, MutexGuard};

use genae_estimators::{gaussian_proposal_log_likelihood, log_likelihood_estimate, EstimatorError};
use genae_zoo::{LatentVariableModel, LinearGaussian};
use tch::{Device, Kind, Tensor};

const OPTS: (Kind, Device) = (Kind::Double, Device::Cpu);

/// libtorch's random generator is global to the process while tests run on parallel threads:
/// every test that draws random numbers holds this lock, so its draws are its own and
/// repeatable.
fn torch_rng_lock() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn values(t: &Tensor) -> Vec<f64> {
    Vec::<f64>::try_from(&t.to_kind(Kind::Double)).unwrap()
}

#[test]
fn the_exact_posterior_as_proposal_gives_the_exact_evidence_with_zero_variance() {
    let _rng = torch_rng_lock();
    tch::manual_seed(10);
    let model = LinearGaussian::new(6, &[2.0, 0.7, 1.3], 0.5).unwrap();
    let x = model.sample_data(5);
    let exact = model.exact_log_px(&x).unwrap();
    let posterior = model.exact_posterior(&x).unwrap();
    let (mean, std) = (posterior.mean(), posterior.std());
    let mut runs = Vec::new();
    for (seed, k, chunk) in [(1, 1, 1), (2, 300, 64), (3, 300, 300), (4, 1000, 129)] {
        tch::manual_seed(seed);
        let estimate = gaussian_proposal_log_likelihood(&model, &x, mean, &std, k, chunk).unwrap();
        assert_eq!(estimate.size(), [5]);
        let deviation = (&estimate - &exact).abs().max().double_value(&[]);
        assert!(deviation < 1e-9, "k {k}, chunk {chunk}: off by {deviation}");
        runs.push(estimate);
    }
    // Zero variance: different seeds and sample counts give the same numbers.
    for run in &runs[1..] {
        assert!((run - &runs[0]).abs().max().double_value(&[]) < 1e-9);
    }
}

#[test]
fn the_models_own_encoder_as_proposal_reproduces_l_k() {
    let _rng = torch_rng_lock();
    tch::manual_seed(11);
    let model = LinearGaussian::new(5, &[1.5, 0.6], 0.4)
        .unwrap()
        .perturbed(&[0.4, -0.3], &[0.3, 0.2]);
    let x = model.sample_data(4);
    let q = model.encode(&x).unwrap();
    tch::manual_seed(12);
    let l_k = log_likelihood_estimate(&model, &x, 700, 128).unwrap();
    tch::manual_seed(12);
    let is = gaussian_proposal_log_likelihood(&model, &x, q.mean(), &q.std(), 700, 50).unwrap();
    assert!((&l_k - &is).abs().max().double_value(&[]) < 1e-9);
    // And the perturbed proposal's estimate is close to, and on average below, the exact value
    // (Var(w)/p(x)² = 1.21 for this model, so the standard deviation of L_700 is about 0.04).
    let exact = values(&model.exact_log_px(&x).unwrap());
    let got = values(&is);
    let mean_error: f64 = exact.iter().zip(&got).map(|(e, g)| e - g).sum::<f64>() / 4.0;
    assert!(
        exact.iter().zip(&got).all(|(e, g)| (e - g).abs() < 0.15),
        "{got:?} vs {exact:?}"
    );
    assert!(mean_error > -0.06, "mean error {mean_error}");
}

#[test]
fn a_poorer_proposal_needs_more_samples() {
    // A proposal twice as wide as the posterior and shifted: L_k rises with k towards log p(x).
    let _rng = torch_rng_lock();
    tch::manual_seed(13);
    let model = LinearGaussian::new(6, &[2.0, 0.7, 1.3], 0.5).unwrap();
    let x = model.sample_data(6);
    let exact = values(&model.exact_log_px(&x).unwrap());
    let posterior = model.exact_posterior(&x).unwrap();
    let mean = posterior.mean() + 0.3;
    let std = posterior.std() * 2.0;
    let mut gaps = Vec::new();
    for k in [1, 10, 5000] {
        tch::manual_seed(14);
        let est =
            values(&gaussian_proposal_log_likelihood(&model, &x, &mean, &std, k, 1000).unwrap());
        let gap: f64 = exact.iter().zip(&est).map(|(e, g)| e - g).sum::<f64>() / 6.0;
        gaps.push(gap);
    }
    assert!(gaps[0] > gaps[1] && gaps[1] > gaps[2], "gaps {gaps:?}");
    assert!(gaps[0] > 0.5, "single-sample gap {}", gaps[0]);
    assert!(gaps[2].abs() < 0.03, "L_5000 gap {}", gaps[2]);
}

#[test]
fn bad_arguments_are_errors_naming_the_argument() {
    let _rng = torch_rng_lock();
    tch::manual_seed(15);
    let model = LinearGaussian::new(4, &[1.0, 0.5], 0.3).unwrap();
    let x = model.sample_data(3);
    let mean = Tensor::zeros([3, 2], OPTS);
    let std = Tensor::ones([3, 2], OPTS);
    let name = |r: genae_estimators::Result<Tensor>| match r {
        Err(EstimatorError::InvalidArgument { name, .. }) => name,
        other => panic!("expected InvalidArgument, got {other:?}"),
    };
    let is = gaussian_proposal_log_likelihood;
    assert_eq!(name(is(&model, &x, &mean, &std, 0, 10)), "k");
    assert_eq!(name(is(&model, &x, &mean, &std, 10, 0)), "chunk_size");
    assert_eq!(
        name(is(&model, &x, &Tensor::zeros([3, 3], OPTS), &std, 10, 10)),
        "mean"
    );
    assert_eq!(
        name(is(&model, &x, &mean, &Tensor::ones([2, 2], OPTS), 10, 10)),
        "std"
    );
    assert_eq!(name(is(&model, &x, &mean, &(&std * 0.0), 10, 10)), "std");
    assert_eq!(
        name(is(&model, &x, &mean, &(&std * f64::NAN), 10, 10)),
        "std"
    );
    assert_eq!(
        name(is(&model, &x.narrow(0, 0, 0), &mean, &std, 10, 10)),
        "x"
    );
    assert!(is(&model, &x, &mean, &std, 10, 10).is_ok());
}
