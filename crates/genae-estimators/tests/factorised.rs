//! The disentangling objectives (annealed capacity, β-TC-VAE, DIP-VAE) against the ELBO terms
//! they are built from, on the same draws, and FactorVAE's discriminator against the closed-form
//! total correlation of a correlated Gaussian.

use std::sync::{Mutex, MutexGuard};

use genae_estimators::factorised::{
    density_ratio_total_correlation, dip_penalty, kl_decomposition, permute_dims,
    tc_discriminator_loss, AggregateEstimator, DipVariant,
};
use genae_estimators::{elbo, elbo_monte_carlo, Objective};
use genae_tensor::Adam;
use genae_zoo::{Activation, LatentVariableModel, Mlp, Vae, VaeConfig};
use tch::{nn, nn::Module, Device, Kind, Tensor};

/// libtorch's generator is global to the process and tests run on parallel threads: every
/// test here holds this lock.
fn torch_rng_lock() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn small_vae() -> (nn::VarStore, Vae, Tensor) {
    let vs = nn::VarStore::new(Device::Cpu);
    let config = VaeConfig {
        input_dim: 12,
        hidden: vec![16],
        latent_dim: 3,
        ..Default::default()
    };
    let vae = Vae::new(&vs.root(), &config).unwrap();
    let x = Tensor::rand([10, 12], (Kind::Float, Device::Cpu)).round();
    (vs, vae, x)
}

fn scalar(t: &Tensor) -> f64 {
    t.to_kind(Kind::Double).double_value(&[])
}

fn mean(t: &Tensor) -> f64 {
    scalar(&t.mean(Kind::Double))
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-5 * a.abs().max(b.abs()).max(1.0)
}

#[test]
fn beta_tc_with_unit_weights_is_the_monte_carlo_elbo_and_beta_weighs_the_tc() {
    let _rng = torch_rng_lock();
    tch::manual_seed(3);
    let (_vs, vae, x) = small_vae();
    let objective = |beta| Objective::BetaTc {
        alpha: 1.0,
        beta,
        gamma: 1.0,
        estimator: AggregateEstimator::Stratified { dataset_size: 1000 },
    };
    tch::manual_seed(9);
    let out = objective(1.0).loss(&vae, &x, 1.0).unwrap();
    tch::manual_seed(9);
    let mc = elbo_monte_carlo(&vae, &x, 1).unwrap();
    assert!(
        close(scalar(&out.loss), -mean(&mc.elbo)),
        "{} vs {}",
        scalar(&out.loss),
        -mean(&mc.elbo)
    );
    let names: Vec<&str> = out.extra.iter().map(|(n, _)| *n).collect();
    assert_eq!(
        names,
        ["mutual_information", "total_correlation", "dimension_kl"]
    );
    let tc = &out.extra[1].1;
    assert_eq!(tc.size(), vec![10]);
    tch::manual_seed(9);
    let six = objective(6.0).loss(&vae, &x, 1.0).unwrap();
    assert!(close(scalar(&six.loss), -mean(&mc.elbo) + 5.0 * mean(tc)));
    // Warm-up scales all three KL parts.
    tch::manual_seed(9);
    let half = objective(1.0).loss(&vae, &x, 0.5).unwrap();
    assert!(close(
        scalar(&half.loss),
        -mean(&mc.reconstruction) + 0.5 * mean(&mc.kl)
    ));
}

#[test]
fn annealed_capacity_is_gamma_times_the_distance_of_the_kl_to_c() {
    let _rng = torch_rng_lock();
    tch::manual_seed(4);
    let (_vs, vae, x) = small_vae();
    for capacity in [0.0, 0.5, 25.0] {
        tch::manual_seed(10);
        let out = Objective::AnnealedCapacity {
            gamma: 1000.0,
            capacity,
        }
        .loss(&vae, &x, 1.0)
        .unwrap();
        tch::manual_seed(10);
        let terms = elbo(&vae, &x).unwrap();
        let want = 1000.0 * (mean(&terms.kl) - capacity).abs() - mean(&terms.reconstruction);
        assert!(
            close(scalar(&out.loss), want),
            "C = {capacity}: {} vs {want}",
            scalar(&out.loss)
        );
        assert_eq!(scalar(&out.extra[0].1), capacity);
    }
    let bad = Objective::AnnealedCapacity {
        gamma: 1.0,
        capacity: -1.0,
    }
    .loss(&vae, &x, 1.0)
    .unwrap_err()
    .to_string();
    assert!(bad.contains("capacity"), "{bad}");
}

#[test]
fn dip_is_the_negative_elbo_plus_the_penalty_of_the_batch() {
    let _rng = torch_rng_lock();
    tch::manual_seed(5);
    let (_vs, vae, x) = small_vae();
    for variant in [DipVariant::I, DipVariant::Ii] {
        tch::manual_seed(11);
        let out = Objective::Dip {
            variant,
            lambda_off_diagonal: 10.0,
            lambda_diagonal: 100.0,
        }
        .loss(&vae, &x, 1.0)
        .unwrap();
        tch::manual_seed(11);
        let terms = elbo(&vae, &x).unwrap();
        let penalty = dip_penalty(&vae.encode(&x).unwrap(), variant, 10.0, 100.0).unwrap();
        let want = -mean(&terms.elbo) + scalar(&penalty.penalty);
        assert!(close(scalar(&out.loss), want), "{variant:?}");
        assert!(close(
            scalar(&out.extra[0].1),
            scalar(&penalty.off_diagonal)
        ));
    }
}

#[test]
fn the_decomposition_of_a_vae_adds_up_to_its_monte_carlo_kl() {
    let _rng = torch_rng_lock();
    tch::manual_seed(6);
    let (_vs, vae, x) = small_vae();
    let q = vae.encode(&x).unwrap();
    let p = vae.prior(q.mean()).unwrap();
    let z = q.rsample();
    let parts = kl_decomposition(&q, &z, &p, AggregateEstimator::Weighted).unwrap();
    let sum = &parts.mutual_information + &parts.total_correlation + &parts.dimension_kl;
    let kl = q.log_prob(&z).unwrap() - p.log_prob(&z).unwrap();
    assert!(sum.allclose(&kl, 1e-5, 1e-5, false));
    // Gradients reach the encoder through every part.
    sum.sum(Kind::Float).backward();
}

/// A discriminator between codes of `N(0, [[1, ρ], [ρ, 1]])` and their permuted copies learns
/// the log density ratio, so its mean logit estimates the total correlation `−½ ln(1 − ρ²)`.
#[test]
fn a_trained_discriminator_estimates_the_total_correlation_of_a_correlated_gaussian() {
    let _rng = torch_rng_lock();
    tch::manual_seed(7);
    let rho: f64 = 0.8;
    let want = -0.5 * (1.0 - rho * rho).ln();
    let vs = nn::VarStore::new(Device::Cpu);
    let net = Mlp::new(&vs.root(), 2, &[64, 64, 1], Activation::LeakyRelu, false).unwrap();
    let draw = |n: i64| {
        let e = Tensor::randn([n, 2], (Kind::Float, Device::Cpu));
        let e1 = e.narrow(1, 0, 1);
        Tensor::cat(
            &[
                &e1,
                &(&e1 * rho + e.narrow(1, 1, 1) * (1.0 - rho * rho).sqrt()),
            ],
            1,
        )
    };
    // A fast phase, then a slow one with larger batches to settle the SGD noise.
    tch::manual_seed(7);
    for (learning_rate, steps, batch) in [(3e-3, 1000, 256), (3e-4, 500, 1024)] {
        let mut adam = Adam::new(&vs, learning_rate);
        for _ in 0..steps {
            let z = draw(batch);
            let joint = net.forward(&z);
            let permuted = net.forward(&permute_dims(&z).unwrap());
            adam.backward_step(&tc_discriminator_loss(&joint, &permuted).unwrap())
                .unwrap();
        }
    }
    let z = draw(50_000);
    let tc = tch::no_grad(|| density_ratio_total_correlation(&net.forward(&z)).unwrap());
    let got = mean(&tc);
    assert!(
        (got - want).abs() < 0.06,
        "TC by the discriminator {got} vs {want}"
    );
}
