//! The estimators of genae-estimators against closed forms and independent computations.
//!
//! Most checks use a linear-Gaussian model, `z ~ N(0, I)`, `x = W z + b + ε`,
//! `ε ~ N(0, σ² I)`, whose evidence `p(x) = N(b, W Wᵀ + σ² I)` is known exactly. With orthogonal
//! columns in `W` (`WᵀW = diag(s²)`) the exact posterior is diagonal,
//! `Σ = diag(1 / (1 + s²/σ²))`, `μ = Σ Wᵀ (x − b) / σ²`, so a diagonal-Gaussian encoder can be
//! exact (every importance weight is then `p(x)`) or perturbed by a known mean / log-variance
//! shift (then `log p(x) − ELBO = KL(q ‖ p(z|x))` in closed form).

use std::sync::{Mutex, MutexGuard};

use genae_estimators::{
    active_units, bits_per_dim, elbo, elbo_monte_carlo, elbo_with_samples, evaluate_log_likelihood,
    iwae_bound, iwae_log_weights, log_likelihood_estimate, EstimatorError, KlWarmup,
    LogLikelihoodOptions, Objective, ACTIVE_UNIT_THRESHOLD,
};
use genae_tensor::DiagGaussian;
use genae_zoo::{LatentSpace, LatentVariableModel, LinearGaussian, Result, Vae, VaeConfig};
use tch::{nn, Device, Kind, Tensor};

const OPTS: (Kind, Device) = (Kind::Double, Device::Cpu);

/// libtorch's random generator is global to the process while tests run on parallel threads:
/// every test that draws random numbers holds this lock, so its draws are its own and
/// repeatable.
fn torch_rng_lock() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The standard perturbed model of these tests: 5-d data, 2-d latent, `q` off the posterior
/// (ELBO gap `KL(q ‖ p(z|x))` = 0.65 nats; relative variance of the importance weights
/// `Var(w)/p(x)²` = 1.21, so `L_5000` has a standard deviation of about 0.016).
fn perturbed_model() -> LinearGaussian {
    LinearGaussian::new(5, &[1.5, 0.6], 0.4)
        .unwrap()
        .perturbed(&[0.4, -0.3], &[0.3, 0.2])
}

/// A milder perturbation, a wider `q` (ELBO gap 0.22 nats, `Var(w)/p(x)²` = 0.29, so `L_5000`
/// has a standard deviation of about 0.0076).
fn mildly_perturbed_model() -> LinearGaussian {
    LinearGaussian::new(5, &[1.5, 0.6], 0.4)
        .unwrap()
        .perturbed(&[0.2, -0.15], &[0.4, 0.3])
}

fn values(t: &Tensor) -> Vec<f64> {
    Vec::<f64>::try_from(&t.to_kind(Kind::Double).flatten(0, -1)).unwrap()
}

fn scalar(t: &Tensor) -> f64 {
    t.to_kind(Kind::Double).double_value(&[])
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

/// Mean and its standard error.
fn mean_se(v: &[f64]) -> (f64, f64) {
    let m = mean(v);
    let var = v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (v.len() - 1) as f64;
    (m, (var / v.len() as f64).sqrt())
}

fn small_vae(input_dim: i64, latent_dim: i64) -> (nn::VarStore, Vae) {
    let vs = nn::VarStore::new(Device::Cpu);
    let config = VaeConfig {
        input_dim,
        hidden: vec![16],
        latent_dim,
        ..Default::default()
    };
    let vae = Vae::new(&vs.root(), &config).unwrap();
    (vs, vae)
}

fn binary_data(n: i64, dim: i64) -> Tensor {
    Tensor::rand([n, dim], (Kind::Float, Device::Cpu)).round()
}

// ---------------------------------------------------------------------------------------------
// Importance-weighted bounds

#[test]
fn iwae_bound_increases_with_k_and_stays_below_log_px() {
    let _rng = torch_rng_lock();
    tch::manual_seed(11);
    let model = perturbed_model();
    // 200 examples, each replicated 50 times: 10 000 independent estimates per k.
    let x = model.sample_data(200).repeat([50, 1]);
    let exact = values(&model.exact_log_px(&x).unwrap());
    let kl_gap = mean(&values(&model.exact_gap(&x).unwrap()));

    let mut gaps = Vec::new();
    for k in [1, 5, 50, 500] {
        let bound = if k <= 50 {
            tch::no_grad(|| iwae_bound(&model, &x, k)).unwrap()
        } else {
            // The same estimator, in chunks to bound memory (5 million samples).
            log_likelihood_estimate(&model, &x, k, 100).unwrap()
        };
        let gap: Vec<f64> = exact
            .iter()
            .zip(values(&bound))
            .map(|(e, l)| e - l)
            .collect();
        let (m, se) = mean_se(&gap);
        println!("k = {k:>3}: mean log p(x) − L_k = {m:.5} ± {se:.5}");
        gaps.push((k, m, se));
    }
    // L_1 is the ELBO: its gap is the KL to the exact posterior.
    let (_, gap_1, se_1) = gaps[0];
    assert!(
        kl_gap > 0.2,
        "the perturbed q should be visibly off ({kl_gap})"
    );
    assert!(
        (gap_1 - kl_gap).abs() < 4.0 * se_1,
        "{gap_1} vs KL {kl_gap}"
    );
    for pair in gaps.windows(2) {
        let ((k_a, gap_a, se_a), (k_b, gap_b, se_b)) = (pair[0], pair[1]);
        let margin = 4.0 * (se_a * se_a + se_b * se_b).sqrt();
        assert!(
            gap_a - gap_b > margin,
            "L_{k_b} should exceed L_{k_a}: gaps {gap_a} vs {gap_b} (margin {margin})"
        );
    }
    // Never above log p(x) (beyond noise), and already close at k = 500.
    let (_, gap_500, se_500) = gaps[3];
    assert!(
        gap_500 > -3.0 * se_500,
        "L_500 above log p(x): gap {gap_500}"
    );
    assert!(gap_500 < 0.02, "L_500 gap {gap_500}");
}

#[test]
fn l5000_approaches_log_px_with_a_perturbed_posterior() {
    let _rng = torch_rng_lock();
    tch::manual_seed(5000);
    let model = mildly_perturbed_model();
    let x = model.sample_data(20);
    let exact = values(&model.exact_log_px(&x).unwrap());
    let gaps = values(&model.exact_gap(&x).unwrap());
    let estimate = values(&log_likelihood_estimate(&model, &x, 5000, 500).unwrap());
    let mut errors = Vec::new();
    for ((l, e), g) in estimate.iter().zip(&exact).zip(&gaps) {
        assert!(*g > 0.2, "the ELBO gap should be visible, got {g}");
        // 4 standard deviations of L_5000 for this q (see `mildly_perturbed_model`).
        assert!(
            (l - e).abs() < 0.03,
            "L_5000 {l} vs log p(x) {e} (ELBO gap {g})"
        );
        errors.push(l - e);
    }
    let mean_error = mean(&errors);
    assert!(mean_error.abs() < 0.007, "mean error {mean_error}");
}

#[test]
fn exact_posterior_gives_log_weights_equal_to_log_px() {
    let _rng = torch_rng_lock();
    tch::manual_seed(3);
    let model = LinearGaussian::new(6, &[2.0, 0.7, 1.3], 0.5).unwrap();
    let x = model.sample_data(8);
    let exact = model.exact_log_px(&x).unwrap();
    let log_w = iwae_log_weights(&model, &x, 200).unwrap();
    assert_eq!(log_w.size(), vec![200, 8]);
    let err = scalar(&(log_w - exact.unsqueeze(0)).abs().max());
    assert!(err < 1e-8, "log weights differ from log p(x) by {err}");
    let err = scalar(
        &(log_likelihood_estimate(&model, &x, 1000, 64).unwrap() - &exact)
            .abs()
            .max(),
    );
    assert!(err < 1e-8, "L_1000 differs from log p(x) by {err}");
    let err = scalar(&(iwae_bound(&model, &x, 7).unwrap() - &exact).abs().max());
    assert!(err < 1e-8, "L_7 differs from log p(x) by {err}");
}

/// The largest relative difference between two per-example estimates.
fn max_rel_diff(a: &Tensor, b: &Tensor) -> f64 {
    values(a)
        .iter()
        .zip(values(b))
        .map(|(a, b)| (a - b).abs() / a.abs().max(b.abs()).max(1e-300))
        .fold(0.0, f64::max)
}

#[test]
fn chunked_and_unchunked_estimates_agree_given_the_same_seed() {
    let _rng = torch_rng_lock();
    tch::manual_seed(1);
    let model = perturbed_model();
    let x = model.sample_data(12);
    let k = 1000;
    tch::manual_seed(42);
    let unchunked = tch::no_grad(|| iwae_bound(&model, &x, k)).unwrap();
    for chunk in [1000, 5000, 500, 137, 1] {
        tch::manual_seed(42);
        let chunked = log_likelihood_estimate(&model, &x, k, chunk).unwrap();
        let diff = max_rel_diff(&unchunked, &chunked);
        assert!(diff < 1e-6, "chunk {chunk}: relative difference {diff}");
    }
    // Another seed gives other draws: the agreement above is not a coincidence.
    tch::manual_seed(43);
    let other = log_likelihood_estimate(&model, &x, k, 137).unwrap();
    assert!(max_rel_diff(&unchunked, &other) > 1e-6);
}

#[test]
fn chunked_and_unchunked_estimates_agree_for_a_float_vae() {
    let _rng = torch_rng_lock();
    tch::manual_seed(2);
    let (_vs, vae) = small_vae(20, 3);
    let x = binary_data(6, 20);
    let k = 700;
    tch::manual_seed(9);
    let unchunked = log_likelihood_estimate(&vae, &x, k, k).unwrap();
    assert_eq!(unchunked.kind(), Kind::Float);
    for chunk in [128, 100, 33] {
        tch::manual_seed(9);
        let chunked = log_likelihood_estimate(&vae, &x, k, chunk).unwrap();
        let diff = max_rel_diff(&unchunked, &chunked);
        assert!(diff < 1e-6, "chunk {chunk}: relative difference {diff}");
    }
}

#[test]
fn monte_carlo_kl_elbo_matches_the_analytic_kl_elbo_in_expectation() {
    let _rng = torch_rng_lock();
    tch::manual_seed(17);
    let model = perturbed_model();
    let x = model.sample_data(10);
    let closed_kl = values(&model.encode(&x).unwrap().kl_to_standard_normal());
    let exact_elbo: Vec<f64> = values(&model.exact_log_px(&x).unwrap())
        .iter()
        .zip(values(&model.exact_gap(&x).unwrap()))
        .map(|(lp, gap)| lp - gap)
        .collect();
    let mc = elbo_monte_carlo(&model, &x, 100_000).unwrap();
    let analytic = elbo_with_samples(&model, &x, 100_000).unwrap();
    assert_eq!(mc.elbo.kind(), Kind::Double);
    let (mc_kl, mc_elbo, mc_rec) = (values(&mc.kl), values(&mc.elbo), values(&mc.reconstruction));
    let (an_kl, an_elbo) = (values(&analytic.kl), values(&analytic.elbo));
    for i in 0..closed_kl.len() {
        assert!((an_kl[i] - closed_kl[i]).abs() < 1e-12);
        assert!(
            (mc_kl[i] - closed_kl[i]).abs() < 0.02,
            "MC KL {} vs closed form {}",
            mc_kl[i],
            closed_kl[i]
        );
        assert!((mc_elbo[i] - (mc_rec[i] - mc_kl[i])).abs() < 1e-9);
        assert!(
            (mc_elbo[i] - an_elbo[i]).abs() < 0.03,
            "MC-KL ELBO {} vs analytic-KL ELBO {}",
            mc_elbo[i],
            an_elbo[i]
        );
        assert!(
            (mc_elbo[i] - exact_elbo[i]).abs() < 0.03,
            "MC-KL ELBO {} vs exact ELBO {}",
            mc_elbo[i],
            exact_elbo[i]
        );
    }
}

#[test]
fn elbo_monte_carlo_and_iwae_bound_with_one_sample_are_the_same_draw() {
    let _rng = torch_rng_lock();
    tch::manual_seed(4);
    let model = perturbed_model();
    let x = model.sample_data(9);
    tch::manual_seed(77);
    let mc = elbo_monte_carlo(&model, &x, 1).unwrap();
    tch::manual_seed(77);
    let l1 = iwae_bound(&model, &x, 1).unwrap();
    assert!(max_rel_diff(&mc.elbo, &l1) < 1e-12);
}

#[test]
fn log_likelihood_estimate_has_no_gradient_and_iwae_bound_has_one() {
    let _rng = torch_rng_lock();
    tch::manual_seed(6);
    let (vs, vae) = small_vae(10, 2);
    let x = binary_data(4, 10);
    assert!(!log_likelihood_estimate(&vae, &x, 50, 20)
        .unwrap()
        .requires_grad());
    let bound = iwae_bound(&vae, &x, 5).unwrap();
    assert!(bound.requires_grad());
    (-bound.mean(Kind::Float)).backward();
    for (name, var) in vs.variables() {
        let g = scalar(&var.grad().abs().sum(Kind::Double));
        assert!(g > 0.0, "no gradient reached {name}");
    }
}

#[test]
fn evaluate_log_likelihood_walks_the_data_set_in_batches() {
    let _rng = torch_rng_lock();
    tch::manual_seed(8);
    // Exact posterior: every estimate is exact, so batching cannot change the mean.
    let exact_model = LinearGaussian::new(4, &[1.2, 0.8], 0.3).unwrap();
    let data = exact_model.sample_data(23);
    let want = mean(&values(&exact_model.exact_log_px(&data).unwrap()));
    let opts = LogLikelihoodOptions {
        k: 50,
        chunk_size: 20,
        batch_size: 5,
    };
    let got = evaluate_log_likelihood(&exact_model, &data, opts).unwrap();
    assert!((got - want).abs() < 1e-8, "{got} vs {want}");

    // Perturbed posterior: close to the exact mean with enough samples (standard error of
    // the mean about 0.0016 here).
    let model = mildly_perturbed_model();
    let data = model.sample_data(23);
    let want = mean(&values(&model.exact_log_px(&data).unwrap()));
    let opts = LogLikelihoodOptions {
        k: 5000,
        chunk_size: 1000,
        batch_size: 10,
    };
    let got = evaluate_log_likelihood(&model, &data, opts).unwrap();
    assert!((got - want).abs() < 0.01, "{got} vs {want}");

    // One batch holding everything is the mean of one call, draw for draw.
    let opts = LogLikelihoodOptions {
        k: 300,
        chunk_size: 64,
        batch_size: 100,
    };
    tch::manual_seed(21);
    let got = evaluate_log_likelihood(&model, &data, opts).unwrap();
    tch::manual_seed(21);
    let direct = mean(&values(
        &log_likelihood_estimate(&model, &data, 300, 300).unwrap(),
    ));
    assert!((got - direct).abs() < 1e-10, "{got} vs {direct}");
}

#[test]
fn bits_per_dim_flips_the_sign_and_converts_to_bits() {
    let dims = 784;
    let nats = -100.0;
    let bpd = bits_per_dim(nats, dims);
    assert!(bpd > 0.0);
    assert!((bpd - 100.0 / (784.0 * 2f64.ln())).abs() < 1e-15);
    // A fair coin per dimension costs exactly one bit.
    assert!((bits_per_dim(-(dims as f64) * 2f64.ln(), dims) - 1.0).abs() < 1e-12);
}

// ---------------------------------------------------------------------------------------------
// Active units

/// An encoder whose mean copies the dimensions of `x` where `mask` is 1 and is the constant 0.7
/// elsewhere; the decoder is irrelevant here.
struct MaskedEncoder {
    mask: Tensor,
}

impl LatentSpace for MaskedEncoder {
    fn latent_dim(&self) -> i64 {
        self.mask.size()[0]
    }
}

impl LatentVariableModel for MaskedEncoder {
    fn encode(&self, x: &Tensor) -> Result<DiagGaussian> {
        let mean: Tensor = x * &self.mask + (self.mask.ones_like() - &self.mask) * 0.7;
        Ok(DiagGaussian::new(mean.shallow_clone(), mean.zeros_like())?)
    }

    fn log_likelihood(&self, x: &Tensor, _z: &Tensor) -> Result<Tensor> {
        Ok(Tensor::zeros([x.size()[0]], (x.kind(), x.device())))
    }
}

/// Population variance per column of `rows` (row-major `[n, d]`), two-pass in f64.
fn column_variances(rows: &[f64], d: usize) -> Vec<f64> {
    let n = rows.len() / d;
    (0..d)
        .map(|j| {
            let col: Vec<f64> = (0..n).map(|i| rows[i * d + j]).collect();
            let m = mean(&col);
            col.iter().map(|x| (x - m).powi(2)).sum::<f64>() / n as f64
        })
        .collect()
}

#[test]
fn active_units_count_the_dimensions_the_encoder_uses() {
    let _rng = torch_rng_lock();
    tch::manual_seed(12);
    let mask = [1.0, 0.0, 1.0, 1.0, 0.0, 1.0];
    let model = MaskedEncoder {
        mask: Tensor::from_slice(&mask),
    };
    // Dimension 5 is used but varies too little (variance 0.0025 < 0.01) to count.
    let stds = Tensor::from_slice(&[1.0, 1.0, 0.5, 2.0, 1.0, 0.05]);
    let data = Tensor::randn([103, 6], OPTS) * stds + 3.0;
    let means: Vec<f64> = values(&data)
        .chunks(6)
        .flat_map(|row| {
            row.iter()
                .zip(&mask)
                .map(|(x, m)| if *m == 1.0 { *x } else { 0.7 })
                .collect::<Vec<_>>()
        })
        .collect();
    let want = column_variances(&means, 6);
    for batch_size in [10, 1, 103, 1000] {
        let au = active_units(&model, &data, batch_size, ACTIVE_UNIT_THRESHOLD).unwrap();
        assert_eq!(au.count, 3, "batch {batch_size}: {:?}", au.per_dim_variance);
        for (got, want) in au.per_dim_variance.iter().zip(&want) {
            assert!(
                (got - want).abs() <= 1e-12 * want.max(1.0),
                "batch {batch_size}: {got} vs {want}"
            );
        }
    }
    // A lower threshold counts the weakly used dimension too.
    assert_eq!(active_units(&model, &data, 10, 1e-3).unwrap().count, 4);
}

#[test]
fn active_units_variance_is_stable_under_a_large_offset() {
    let _rng = torch_rng_lock();
    tch::manual_seed(13);
    let model = MaskedEncoder {
        mask: Tensor::ones([3], OPTS),
    };
    // Means around 1e8 with unit spread: E[z²] − E[z]² would lose every digit in f64.
    let data = Tensor::randn([1000, 3], OPTS) + 1e8;
    let want = column_variances(&values(&data), 3);
    let au = active_units(&model, &data, 64, ACTIVE_UNIT_THRESHOLD).unwrap();
    assert_eq!(au.count, 3);
    for (got, want) in au.per_dim_variance.iter().zip(&want) {
        assert!((got - want).abs() < 1e-6 * want, "{got} vs {want}");
    }
}

// ---------------------------------------------------------------------------------------------
// Training objectives

/// Per-dimension analytic KL to N(0, I), averaged over the batch, computed by hand.
fn batch_mean_kl_per_dim(vae: &Vae, x: &Tensor) -> Vec<f64> {
    let q = tch::no_grad(|| vae.encode(x)).unwrap();
    let d = q.mean().size()[1] as usize;
    let mu = values(q.mean());
    let lv = values(q.log_var());
    let n = mu.len() / d;
    (0..d)
        .map(|j| {
            (0..n)
                .map(|i| {
                    let (m, s) = (mu[i * d + j], lv[i * d + j]);
                    0.5 * (m * m + s.exp() - s - 1.0)
                })
                .sum::<f64>()
                / n as f64
        })
        .collect()
}

fn encoder_params(vs: &nn::VarStore) -> Vec<Tensor> {
    vs.variables()
        .into_iter()
        .filter(|(name, _)| name.starts_with("encoder"))
        .map(|(_, v)| v)
        .collect()
}

/// The loss of `objective` with the draws of `seed`.
fn loss_with_seed(objective: Objective, vae: &Vae, x: &Tensor, scale: f64, seed: i64) -> Tensor {
    tch::manual_seed(seed);
    objective.loss(vae, x, scale).unwrap().loss
}

#[test]
fn free_bits_above_every_dimension_give_d_lambda_and_no_kl_gradient() {
    let _rng = torch_rng_lock();
    tch::manual_seed(30);
    let (vs, vae) = small_vae(12, 4);
    let x = binary_data(16, 12);
    let kl_dims = batch_mean_kl_per_dim(&vae, &x);
    let lambda = kl_dims.iter().cloned().fold(0.0, f64::max) + 1.0;

    let with = loss_with_seed(
        Objective::Elbo {
            beta: 1.0,
            free_bits: lambda,
        },
        &vae,
        &x,
        1.0,
        5,
    );
    let without_kl = loss_with_seed(
        Objective::Elbo {
            beta: 0.0,
            free_bits: lambda,
        },
        &vae,
        &x,
        1.0,
        5,
    );
    let kl_term = &with - &without_kl;
    assert!((scalar(&kl_term) - 4.0 * lambda).abs() < 1e-4);
    let params = encoder_params(&vs);
    let grads = Tensor::run_backward(&[&kl_term], &params, true, false);
    for g in grads {
        assert_eq!(
            scalar(&g.abs().max()),
            0.0,
            "free bits let a KL gradient through"
        );
    }

    // Without free bits the KL term does pull on the encoder (the check above has teeth).
    let with = loss_with_seed(Objective::default(), &vae, &x, 1.0, 5);
    let kl_term = &with - &without_kl;
    assert!((scalar(&kl_term) - kl_dims.iter().sum::<f64>()).abs() < 1e-5);
    let grads = Tensor::run_backward(&[&kl_term], &params, false, false);
    let total: f64 = grads
        .iter()
        .map(|g| scalar(&g.abs().sum(Kind::Double)))
        .sum();
    assert!(total > 1e-6, "{total}");
}

#[test]
fn free_bits_floor_each_dimension_separately() {
    let _rng = torch_rng_lock();
    tch::manual_seed(31);
    let (_vs, vae) = small_vae(12, 4);
    let x = binary_data(16, 12);
    let kl_dims = batch_mean_kl_per_dim(&vae, &x);
    let mut sorted = kl_dims.clone();
    sorted.sort_by(f64::total_cmp);
    let lambda = 0.5 * (sorted[1] + sorted[2]); // between the 2nd and 3rd dimension's KL
    let want: f64 = kl_dims.iter().map(|&k| k.max(lambda)).sum();
    let beta = 2.0;
    let with = loss_with_seed(
        Objective::Elbo {
            beta,
            free_bits: lambda,
        },
        &vae,
        &x,
        1.0,
        8,
    );
    let without = loss_with_seed(
        Objective::Elbo {
            beta: 0.0,
            free_bits: lambda,
        },
        &vae,
        &x,
        1.0,
        8,
    );
    let got = scalar(&(with - without));
    assert!((got - beta * want).abs() < 1e-5, "{got} vs {}", beta * want);
}

#[test]
fn beta_and_warmup_scale_the_kl_term_and_terms_stay_unweighted() {
    let _rng = torch_rng_lock();
    tch::manual_seed(32);
    let (_vs, vae) = small_vae(12, 3);
    let x = binary_data(10, 12);
    let kl = kl_dims_sum(&vae, &x);
    let base = loss_with_seed(
        Objective::Elbo {
            beta: 0.0,
            free_bits: 0.0,
        },
        &vae,
        &x,
        1.0,
        3,
    );
    for (beta, scale) in [(2.5, 1.0), (5.0, 0.5), (1.0, 0.0), (0.25, 0.8)] {
        let objective = Objective::Elbo {
            beta,
            free_bits: 0.0,
        };
        tch::manual_seed(3);
        let out = objective.loss(&vae, &x, scale).unwrap();
        let got = scalar(&(&out.loss - &base));
        assert!(
            (got - beta * scale * kl).abs() < 1e-5,
            "beta {beta}, scale {scale}: {got} vs {}",
            beta * scale * kl
        );
        // The logged terms are the plain ELBO, whatever the weights.
        let means = out.terms.means();
        assert!((means.kl - kl).abs() < 1e-5);
        assert!((means.elbo - (means.reconstruction - means.kl)).abs() < 1e-4);
        assert!(!out.terms.elbo.requires_grad());
    }
    // beta = 1 without free bits is the plain negative ELBO, draw for draw.
    let plain = loss_with_seed(Objective::default(), &vae, &x, 1.0, 3);
    tch::manual_seed(3);
    let reference = -elbo(&vae, &x).unwrap().elbo.mean(Kind::Float);
    assert!((scalar(&plain) - scalar(&reference)).abs() < 1e-5);
}

fn kl_dims_sum(vae: &Vae, x: &Tensor) -> f64 {
    batch_mean_kl_per_dim(vae, x).iter().sum()
}

#[test]
fn kl_warmup_rises_linearly_then_stays_at_one() {
    let warmup = KlWarmup { steps: 10 };
    let got: Vec<f64> = [0, 1, 5, 9, 10, 11, 1000]
        .iter()
        .map(|&s| warmup.scale(s))
        .collect();
    assert_eq!(got, vec![0.0, 0.1, 0.5, 0.9, 1.0, 1.0, 1.0]);
    let off = KlWarmup { steps: 0 };
    assert_eq!((off.scale(0), off.scale(7)), (1.0, 1.0));
    assert_eq!(KlWarmup::default().scale(0), 1.0);
}

#[test]
fn iwae_objective_with_one_sample_is_the_monte_carlo_elbo() {
    let _rng = torch_rng_lock();
    tch::manual_seed(33);
    let (_vs, vae) = small_vae(12, 3);
    let x = binary_data(10, 12);
    tch::manual_seed(4);
    let out = Objective::Iwae { k: 1 }.loss(&vae, &x, 1.0).unwrap();
    tch::manual_seed(4);
    let mc = elbo_monte_carlo(&vae, &x, 1).unwrap();
    let want = -scalar(&mc.elbo.mean(Kind::Double));
    // Equal up to f32 rounding of the batch mean.
    assert!(
        (scalar(&out.loss) - want).abs() < 1e-6 * want.abs(),
        "{} vs {want}",
        scalar(&out.loss)
    );
    assert!(max_rel_diff(&out.terms.elbo, &mc.elbo) < 1e-6);
    assert!(max_rel_diff(&out.terms.kl, &mc.kl) < 1e-6);

    // With k = 5: the loss is −mean L_5 and the terms are the 5-sample MC ELBO.
    tch::manual_seed(4);
    let out = Objective::Iwae { k: 5 }.loss(&vae, &x, 0.3).unwrap();
    tch::manual_seed(4);
    let l5 = iwae_bound(&vae, &x, 5).unwrap();
    tch::manual_seed(4);
    let mc5 = elbo_monte_carlo(&vae, &x, 5).unwrap();
    let want = -scalar(&l5.mean(Kind::Double));
    assert!(
        (scalar(&out.loss) - want).abs() < 1e-6 * want.abs(),
        "{} vs {want}",
        scalar(&out.loss)
    );
    assert!(max_rel_diff(&out.terms.elbo, &mc5.elbo) < 1e-6);
    // L_5 ≥ the 5-sample ELBO on the same draws (Jensen, sample by sample).
    for (l, e) in values(&l5).iter().zip(values(&mc5.elbo)) {
        assert!(*l >= e - 1e-5, "L_5 {l} < ELBO {e}");
    }
}

// ---------------------------------------------------------------------------------------------
// Kinds, arguments and errors

#[test]
fn double_precision_inputs_give_double_precision_results() {
    let _rng = torch_rng_lock();
    tch::manual_seed(40);
    let model = perturbed_model();
    let x = model.sample_data(3);
    assert_eq!(
        iwae_log_weights(&model, &x, 3).unwrap().kind(),
        Kind::Double
    );
    assert_eq!(iwae_bound(&model, &x, 3).unwrap().kind(), Kind::Double);
    assert_eq!(
        log_likelihood_estimate(&model, &x, 3, 2).unwrap().kind(),
        Kind::Double
    );
    assert_eq!(
        elbo_monte_carlo(&model, &x, 2).unwrap().kl.kind(),
        Kind::Double
    );
    for objective in [Objective::default(), Objective::Iwae { k: 3 }] {
        let out = objective.loss(&model, &x, 1.0).unwrap();
        assert_eq!(out.loss.kind(), Kind::Double);
        assert_eq!(out.terms.elbo.kind(), Kind::Double);
    }
}

fn assert_names(result: std::result::Result<impl std::fmt::Debug, EstimatorError>, arg: &str) {
    let err = result.unwrap_err();
    match &err {
        EstimatorError::InvalidArgument { name, .. } => assert_eq!(*name, arg, "{err}"),
        other => panic!("expected InvalidArgument for `{arg}`, got {other:?}"),
    }
    assert!(err.to_string().contains(&format!("`{arg}`")), "{err}");
}

#[test]
fn invalid_arguments_name_the_argument() {
    let _rng = torch_rng_lock();
    tch::manual_seed(41);
    let model = perturbed_model();
    let x = model.sample_data(4);
    assert_names(elbo_monte_carlo(&model, &x, 0), "n_samples");
    assert_names(iwae_log_weights(&model, &x, 0), "k");
    assert_names(iwae_bound(&model, &x, -3), "k");
    assert_names(log_likelihood_estimate(&model, &x, 0, 10), "k");
    assert_names(log_likelihood_estimate(&model, &x, 10, 0), "chunk_size");
    let opts = LogLikelihoodOptions::default();
    for (bad, name) in [
        (LogLikelihoodOptions { k: 0, ..opts }, "k"),
        (
            LogLikelihoodOptions {
                chunk_size: -1,
                ..opts
            },
            "chunk_size",
        ),
        (
            LogLikelihoodOptions {
                batch_size: 0,
                ..opts
            },
            "batch_size",
        ),
    ] {
        assert_names(evaluate_log_likelihood(&model, &x, bad), name);
    }
    let empty = x.narrow(0, 0, 0);
    assert_names(evaluate_log_likelihood(&model, &empty, opts), "data");
    assert_names(active_units(&model, &x, 0, 0.01), "batch_size");
    assert_names(active_units(&model, &x, 2, 0.0), "threshold");
    assert_names(active_units(&model, &x, 2, f64::NAN), "threshold");
    assert_names(active_units(&model, &empty, 2, 0.01), "data");
    let elbo_with = |beta, free_bits| Objective::Elbo { beta, free_bits };
    assert_names(elbo_with(-0.5, 0.0).loss(&model, &x, 1.0), "beta");
    assert_names(elbo_with(f64::INFINITY, 0.0).loss(&model, &x, 1.0), "beta");
    assert_names(elbo_with(1.0, -1.0).loss(&model, &x, 1.0), "free_bits");
    assert_names(elbo_with(1.0, f64::NAN).validate(), "free_bits");
    assert_names(Objective::Iwae { k: 0 }.loss(&model, &x, 1.0), "k");
    assert_names(
        Objective::default().loss(&model, &x, -0.1),
        "kl_weight_scale",
    );
}

#[test]
fn shape_errors_come_from_the_model() {
    let _rng = torch_rng_lock();
    tch::manual_seed(42);
    let (_vs, vae) = small_vae(12, 3);
    let wrong = binary_data(4, 13);
    let check = |err: EstimatorError| {
        assert!(matches!(err, EstimatorError::Model(_)), "{err:?}");
        assert!(err.to_string().contains("[4, 13]"), "{err}");
    };
    check(iwae_bound(&vae, &wrong, 5).unwrap_err());
    check(log_likelihood_estimate(&vae, &wrong, 5, 2).unwrap_err());
    check(elbo_monte_carlo(&vae, &wrong, 2).unwrap_err());
    check(active_units(&vae, &wrong, 4, 0.01).unwrap_err());
    check(
        Objective::Iwae { k: 2 }
            .loss(&vae, &wrong, 1.0)
            .unwrap_err(),
    );
    check(Objective::default().loss(&vae, &wrong, 1.0).unwrap_err());
}
