//! The ELBO against exact log-likelihoods of a linear-Gaussian model,
//! `z ~ N(0, I)`, `x = W z + b + ε`, `ε ~ N(0, σ² I)`, so `p(x) = N(b, W Wᵀ + σ² I)`.
//!
//! With orthogonal columns in `W` (`WᵀW = diag(s²)`) the exact posterior is diagonal:
//! `Σ = diag(1 / (1 + s²/σ²))`, `μ = Σ Wᵀ (x − b) / σ²`, so a diagonal-Gaussian encoder can
//! represent it exactly and `ELBO = log p(x)`; for any other `q`,
//! `log p(x) − ELBO = KL(q ‖ p(z|x))`.

use genae_estimators::elbo_with_samples;
use genae_tensor::LOG_2PI;
use genae_zoo::{LatentVariableModel, LinearGaussian};
use tch::{Device, Kind, Tensor};

const OPTS: (Kind, Device) = (Kind::Double, Device::Cpu);

fn values(t: &Tensor) -> Vec<f64> {
    Vec::<f64>::try_from(&t.to_kind(Kind::Double)).unwrap()
}

#[test]
fn elbo_equals_log_px_when_q_is_the_exact_posterior() {
    let _rng = crate::torch_rng_lock();
    tch::manual_seed(2024);
    let model = LinearGaussian::new(6, &[2.0, 0.7, 1.3], 0.5).unwrap();
    let x = model.sample_data(8);
    let exact = values(&model.exact_log_px(&x).unwrap());

    // Closed form of the ELBO at the exact posterior, as an independent check of the algebra:
    // E_q ||x − Wz − b||² = ||x − Wμ − b||² + Σ_j s_j² Σ_jj.
    let q = model.exact_posterior(&x).unwrap();
    let resid = &x - q.mean().matmul(&model.weight().tr()) - model.bias();
    let trace = (model
        .weight()
        .square()
        .sum_dim_intlist(0, false, None::<Kind>)
        * model.posterior_variance())
    .sum(Kind::Double);
    let d = x.size()[1] as f64;
    let expected_rec = (resid.square().sum_dim_intlist(-1, false, None::<Kind>) + trace)
        / (-2.0 * model.noise_variance())
        - 0.5 * d * (LOG_2PI + model.noise_variance().ln());
    let closed = values(&(expected_rec - q.kl_to_standard_normal()));
    for (c, e) in closed.iter().zip(&exact) {
        assert!((c - e).abs() < 1e-9, "closed-form ELBO {c} vs log p(x) {e}");
    }

    // The estimator, with enough samples that Monte-Carlo noise is small.
    let terms = elbo_with_samples(&model, &x, 20_000).unwrap();
    for (got, want) in values(&terms.elbo).iter().zip(&exact) {
        assert!((got - want).abs() < 0.05, "ELBO {got} vs log p(x) {want}");
    }
}

#[test]
fn elbo_gap_is_the_kl_to_the_exact_posterior() {
    let _rng = crate::torch_rng_lock();
    tch::manual_seed(7);
    let model = LinearGaussian::new(5, &[1.5, 0.4], 0.3)
        .unwrap()
        .perturbed(&[0.6, -0.4], &[-0.8, 0.5]);
    let x = model.sample_data(6);
    let exact = values(&model.exact_log_px(&x).unwrap());
    let q = model.encode(&x).unwrap();
    let gap = values(&q.kl(&model.exact_posterior(&x).unwrap()).unwrap());
    let elbo = values(&elbo_with_samples(&model, &x, 50_000).unwrap().elbo);
    for ((e, lp), g) in elbo.iter().zip(&exact).zip(&gap) {
        assert!(
            *g > 0.1,
            "the perturbed q should be visibly worse (gap {g})"
        );
        assert!(e < lp, "ELBO {e} must stay below log p(x) {lp}");
        assert!(((lp - e) - g).abs() < 0.05, "gap {} vs KL {g}", lp - e);
    }
}

#[test]
fn elbo_stays_below_log_px_for_a_mean_field_q_of_a_correlated_posterior() {
    let _rng = crate::torch_rng_lock();
    // Non-orthogonal W: the exact posterior is correlated, so no diagonal q reaches log p(x).
    tch::manual_seed(99);
    let model = LinearGaussian::new(4, &[1.0, 1.0], 0.2)
        .unwrap()
        .with_weight(Tensor::randn([4, 2], OPTS));
    let x = model.sample_data(16);
    let exact = values(&model.exact_log_px(&x).unwrap());
    let elbo = values(&elbo_with_samples(&model, &x, 20_000).unwrap().elbo);
    for (e, lp) in elbo.iter().zip(&exact) {
        assert!(e < lp, "ELBO {e} vs log p(x) {lp}");
    }
}
