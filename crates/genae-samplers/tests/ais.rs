//! Annealed importance sampling against normalising constants known in closed form: the
//! evidence `log p(x)` of a linear-Gaussian model (genae-zoo's `LinearGaussian`) and a
//! two-component Gaussian mixture.

use std::sync::{Mutex, MutexGuard};

use genae_samplers::{
    ais, ais_log_likelihood, AisAdaptation, AisConfig, AisInitial, AnnealingSchedule, SamplerError,
};
use genae_tensor::DiagGaussian;
use genae_zoo::{LatentSpace, LinearGaussian};
use tch::{Device, Kind, Tensor};

const F64: (Kind, Device) = (Kind::Double, Device::Cpu);

/// libtorch's random generator is global to the process while tests run on parallel threads:
/// every test that draws random numbers holds this lock, so its draws are its own and
/// repeatable.
fn torch_rng_lock() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn values(t: &Tensor) -> Vec<f64> {
    Vec::<f64>::try_from(&t.to_kind(Kind::Double).flatten(0, -1)).unwrap()
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

/// A 4-d latent, 8-d data linear-Gaussian model whose posterior is much narrower than the
/// prior (posterior standard deviations 0.24 to 0.71), and 8 data points drawn from it.
fn model_and_data() -> (LinearGaussian, Tensor) {
    let model = LinearGaussian::new(8, &[2.0, 1.0, 0.5, 1.5], 0.25).unwrap();
    let x = model.sample_data(8);
    (model, x)
}

#[test]
fn ais_from_the_prior_approaches_the_exact_evidence_and_improves_with_temperatures() {
    let _rng = torch_rng_lock();
    tch::manual_seed(1);
    let (model, x) = model_and_data();
    let exact = values(&model.exact_log_px(&x).unwrap());
    let mut mean_abs_errors = Vec::new();
    let mut spreads = Vec::new();
    for steps in [4, 40, 400] {
        let config = AisConfig {
            steps,
            chains: 64,
            ..Default::default()
        };
        let out = ais_log_likelihood(&model, &x, AisInitial::Prior, &config).unwrap();
        assert_eq!(out.log_weights.size(), [64, 8]);
        assert_eq!(out.samples.size(), [64, 8, 4]);
        let est = values(&out.log_normalizer);
        let errors: Vec<f64> = exact.iter().zip(&est).map(|(e, a)| e - a).collect();
        mean_abs_errors.push(mean(&errors.iter().map(|e| e.abs()).collect::<Vec<_>>()));
        // The spread of the log weights: what the estimate's Monte-Carlo error scales with.
        spreads.push(mean(&values(&out.log_weights.std_dim(0, true, false))));
        let ess = values(&out.ess);
        assert!(
            ess.iter().all(|e| (1.0 - 1e-9..=64.0 + 1e-9).contains(e)),
            "{ess:?}"
        );
        if steps == 400 {
            // Tolerances: at 400 steps the log weights of an example spread by about 0.6
            // nats, so log-mean-exp over 64 chains has a standard error of about
            // 0.6/√64 = 0.075 per example and 0.027 for the mean of 8 examples; AIS's Jensen
            // bias, about var/(2K) = 0.003, is far below that. Each example must be within
            // 0.25 (3.3 standard errors) and the mean error within 0.08 (3 standard errors).
            assert!(spreads[2] < 0.7, "log-weight spread {}", spreads[2]);
            for (e, a) in exact.iter().zip(&est) {
                assert!((e - a).abs() < 0.25, "AIS {a} vs exact log p(x) {e}");
            }
            assert!(mean(&errors).abs() < 0.08, "mean error {}", mean(&errors));
            assert!(mean(&ess) > 32.0, "ESS {ess:?}");
        }
    }
    // Measured with this seed: mean |error| 0.36, 0.15, 0.04 nats and log-weight spread 5.8,
    // 1.4, 0.57 at 4, 40, 400 steps (the estimate's error is dominated by the spread, which
    // falls with the number of temperatures like 1/√T).
    assert!(
        mean_abs_errors.windows(2).all(|w| w[1] < w[0]),
        "mean |error| at 4, 40, 400 steps: {mean_abs_errors:?}"
    );
    assert!(
        spreads.windows(2).all(|w| w[1] < 0.7 * w[0]),
        "log-weight spread at 4, 40, 400 steps: {spreads:?}"
    );
}

#[test]
fn ais_from_the_exact_posterior_is_exact_with_zero_variance() {
    // With p₀ = p(z|x), every tempered density is p(x)^β p(z|x): each weight increment is
    // exactly (β_t − β_{t−1}) log p(x), whatever the chains do.
    let _rng = torch_rng_lock();
    tch::manual_seed(2);
    let (model, x) = model_and_data();
    let exact = model.exact_log_px(&x).unwrap();
    let posterior = model.exact_posterior(&x).unwrap();
    for steps in [1, 7] {
        let config = AisConfig {
            steps,
            chains: 5,
            ..Default::default()
        };
        let out =
            ais_log_likelihood(&model, &x, AisInitial::Gaussian(&posterior), &config).unwrap();
        let deviation = (&out.log_weights - exact.unsqueeze(0)).abs().max();
        assert!(
            deviation.double_value(&[]) < 1e-9,
            "steps {steps}: {deviation}"
        );
        assert!(values(&out.ess).iter().all(|e| (e - 5.0).abs() < 1e-6));
    }
}

#[test]
fn ais_from_a_shifted_encoder_with_each_schedule_and_adaptation() {
    let _rng = torch_rng_lock();
    tch::manual_seed(3);
    let (model, x) = model_and_data();
    // q(z|x) off the exact posterior by 0.5 in the mean and a factor e^{±0.7} in variance.
    let model = model.perturbed(&[0.5, -0.5, 0.5, -0.5], &[0.7, -0.7, 0.7, -0.7]);
    let exact = values(&model.exact_log_px(&x).unwrap());
    let gap = mean(&values(&model.exact_gap(&x).unwrap()));
    assert!(
        gap > 1.0,
        "the shifted encoder should be visibly off (ELBO gap {gap})"
    );
    let mut mean_abs = Vec::new();
    for (schedule, adaptation, precondition) in [
        (AnnealingSchedule::default(), AisAdaptation::Pilot, true),
        (AnnealingSchedule::Linear, AisAdaptation::Online, true),
        (AnnealingSchedule::default(), AisAdaptation::Off, true),
        (AnnealingSchedule::default(), AisAdaptation::Pilot, false),
    ] {
        let config = AisConfig {
            steps: 200,
            chains: 32,
            schedule,
            adaptation,
            precondition,
            ..Default::default()
        };
        let out = ais_log_likelihood(&model, &x, AisInitial::Encoder, &config).unwrap();
        let est = values(&out.log_normalizer);
        let errors: Vec<f64> = exact.iter().zip(&est).map(|(e, a)| e - a).collect();
        let what = format!("{schedule:?}, {adaptation:?}, precondition {precondition}");
        mean_abs.push(mean(&errors.iter().map(|e| e.abs()).collect::<Vec<_>>()));
        if precondition {
            // Same tolerance argument as above, from a closer start (spread about 0.2 nats).
            assert!(errors.iter().all(|e| e.abs() < 0.2), "{what}: {errors:?}");
            assert!(mean(&errors).abs() < 0.05, "{what}: {errors:?}");
        } else {
            // Without the initial distribution's precision as mass, one step size has to
            // serve posterior standard deviations from 0.24 to 0.71: the chains mix worse and
            // the error grows (measured: mean |error| 0.14 against 0.03 preconditioned).
            assert!(errors.iter().all(|e| e.abs() < 0.4), "{what}: {errors:?}");
            assert!(mean_abs[3] > 2.0 * mean_abs[0], "{what}: {mean_abs:?}");
        }
        if adaptation == AisAdaptation::Pilot {
            // One fixed schedule per example: every chain of an example ends with the same
            // step size, and the pilot moved it away from the start.
            let steps = &out.step_size;
            assert!(steps.equal(&steps.get(0).expand_as(steps)), "{what}");
            assert!(
                values(steps).iter().all(|s| (s - 0.1).abs() > 1e-3),
                "{what}"
            );
        }
        if adaptation == AisAdaptation::Off {
            assert!(values(&out.step_size)
                .iter()
                .all(|s| (s - 0.1).abs() < 1e-12));
        }
    }
}

#[test]
fn ais_finds_the_normaliser_and_both_modes_of_a_mixture() {
    // γ(z) = 3 N(z; (−2, 0), 0.3² I) + N(z; (2, 1), 0.5² I): Z = 4, and a quarter of the
    // normalised mass sits in the second mode. A closure target, one problem (N = 1), as for
    // a non-amortised model.
    let _rng = torch_rng_lock();
    tch::manual_seed(4);
    let component = |z: &Tensor, centre: [f64; 2], sd: f64| {
        let c = z - Tensor::from_slice(&centre);
        (c.square().sum_dim_intlist(-1, false, Kind::Double) / (-2.0 * sd * sd))
            - (2.0 * std::f64::consts::PI * sd * sd).ln()
    };
    let target = |z: &Tensor| {
        let a = component(z, [-2.0, 0.0], 0.3) + 3f64.ln();
        let b = component(z, [2.0, 1.0], 0.5);
        Ok(Tensor::stack(&[a, b], 0).logsumexp([0], false))
    };
    let initial = DiagGaussian::new(
        Tensor::zeros([1, 2], F64),
        Tensor::full([1, 2], (9.0f64).ln(), F64),
    )
    .unwrap();
    let config = AisConfig {
        steps: 300,
        chains: 400,
        ..Default::default()
    };
    let out = ais(&target, &initial, &config).unwrap();
    let log_z = out.log_normalizer.double_value(&[0]);
    // The standard error of log Ẑ from the weights themselves (delta method):
    // √(Var(w) / (K E[w]²)) = √((K / ESS − 1) / K). The weights of a bimodal target spread
    // widely (chains commit to a mode while the tempered density is still broad), so the
    // check is "within 3 standard errors", with the standard error itself held below 0.1.
    let k = 400.0;
    let ess = out.ess.double_value(&[0]);
    let se = ((k / ess - 1.0) / k).sqrt();
    assert!(se < 0.1, "standard error {se} (ESS {ess} of 400)");
    assert!(
        (log_z - 4f64.ln()).abs() < 3.0 * se,
        "log Z {log_z} ± {se} vs {}",
        4f64.ln()
    );
    // The weighted fraction of chains ending in the second mode estimates its mass, 1/4, with
    // a binomial standard error over the effective sample, √(¼·¾ / ESS).
    let w = (out.log_weights.select(1, 0) - out.log_weights.max()).exp();
    let in_b = out
        .samples
        .select(1, 0)
        .select(1, 0)
        .gt(0.0)
        .to_kind(Kind::Double);
    let share = ((&w * in_b).sum(Kind::Double) / w.sum(Kind::Double)).double_value(&[]);
    let se = (0.1875 / ess).sqrt();
    eprintln!("mixture: log Z {log_z} (ESS {ess:.1} of 400), second mode's mass {share:.3}");
    assert!(
        (share - 0.25).abs() < 3.0 * se,
        "mass of the second mode {share} ± {se}"
    );
}

#[test]
fn a_seed_makes_ais_repeatable_and_float_models_give_f64_estimates() {
    let _rng = torch_rng_lock();
    let target = |z: &Tensor| Ok(z.square().sum_dim_intlist(-1, false, Kind::Float) * -0.5);
    let initial = DiagGaussian::new(
        Tensor::zeros([3, 2], (Kind::Float, Device::Cpu)),
        Tensor::zeros([3, 2], (Kind::Float, Device::Cpu)),
    )
    .unwrap();
    let config = AisConfig {
        steps: 10,
        chains: 4,
        ..Default::default()
    };
    let run = || {
        tch::manual_seed(5);
        ais(&target, &initial, &config).unwrap()
    };
    let (a, b) = (run(), run());
    assert!(a.log_weights.equal(&b.log_weights));
    assert_eq!(a.log_normalizer.kind(), Kind::Double);
    assert_eq!(a.samples.kind(), Kind::Float);
    // γ = (2π) · N(0, I) and p₀ = N(0, I): log Z = log 2π exactly, every weight equal.
    let deviation = (a.log_normalizer - (2.0 * std::f64::consts::PI).ln())
        .abs()
        .max();
    assert!(deviation.double_value(&[]) < 1e-5);
}

#[test]
fn bad_configs_and_arguments_are_errors_naming_the_culprit() {
    let _rng = torch_rng_lock();
    let field = |config: AisConfig| match config.validate() {
        Err(SamplerError::InvalidConfig { field, .. }) => field,
        other => panic!("expected InvalidConfig, got {other:?}"),
    };
    let base = AisConfig::default();
    assert_eq!(
        field(AisConfig {
            steps: 0,
            ..base.clone()
        }),
        "steps"
    );
    assert_eq!(
        field(AisConfig {
            chains: 0,
            ..base.clone()
        }),
        "chains"
    );
    assert_eq!(
        field(AisConfig {
            pilot_chains: 0,
            ..base.clone()
        }),
        "pilot_chains"
    );
    assert_eq!(
        field(AisConfig {
            transitions: 0,
            ..base.clone()
        }),
        "transitions"
    );
    assert_eq!(
        field(AisConfig {
            leapfrog_steps: 0,
            ..base.clone()
        }),
        "leapfrog_steps"
    );
    assert_eq!(
        field(AisConfig {
            step_size: -1.0,
            ..base.clone()
        }),
        "step_size"
    );
    assert_eq!(
        field(AisConfig {
            target_accept: 0.0,
            ..base.clone()
        }),
        "target_accept"
    );
    assert_eq!(
        field(AisConfig {
            adapt_rate: f64::INFINITY,
            ..base.clone()
        }),
        "adapt_rate"
    );
    let schedule = AnnealingSchedule::Sigmoid { delta: 0.0 };
    assert_eq!(
        field(AisConfig {
            schedule,
            ..base.clone()
        }),
        "schedule.delta"
    );
    assert!(toml_rejects_unknown_fields());

    tch::manual_seed(6);
    let (model, x) = model_and_data();
    let small = AisConfig {
        steps: 2,
        chains: 2,
        ..base
    };
    let wrong = DiagGaussian::standard_like(&Tensor::zeros([8, 3], F64)).unwrap();
    match ais_log_likelihood(&model, &x, AisInitial::Gaussian(&wrong), &small) {
        Err(SamplerError::InvalidArgument {
            name: "initial", ..
        }) => {}
        other => panic!("expected a shape error for the initial Gaussian, got {other:?}"),
    }
    match ais_log_likelihood(&model, &x.narrow(0, 0, 0), AisInitial::Prior, &small) {
        Err(SamplerError::InvalidArgument { name: "x", .. }) => {}
        other => panic!("expected an error for empty data, got {other:?}"),
    }
    // Data of the wrong width is the model's error, passed on.
    let wide = Tensor::zeros([2, 9], F64);
    assert!(ais_log_likelihood(&model, &wide, AisInitial::Prior, &small).is_err());
    assert_eq!(model.latent_dim(), 4);
}

fn toml_rejects_unknown_fields() -> bool {
    toml::from_str::<AisConfig>("temperatures = 10").is_err()
}
