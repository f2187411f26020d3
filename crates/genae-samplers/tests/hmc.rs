//! Hamiltonian Monte Carlo against a correlated Gaussian whose moments are known exactly:
//! invariance (chains started from exact draws stay exact), convergence from far away, and
//! the step-size adaptation reaching its target acceptance.

use std::sync::{Mutex, MutexGuard};

use genae_samplers::{Hmc, HmcConfig, SamplerError, StepSizeAdaptation};
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

/// `N(m, Σ)` in 3-d with standard deviations (1, 2, 0.5) and correlations ρ₁₂ = 0.8,
/// ρ₂₃ = −0.5, ρ₁₃ = 0.
struct Gaussian {
    mean: Tensor,
    cov: Tensor,
    precision: Tensor,
    chol: Tensor,
}

impl Gaussian {
    fn new() -> Self {
        let sd = [1.0, 2.0, 0.5];
        let rho = [[1.0, 0.8, 0.0], [0.8, 1.0, -0.5], [0.0, -0.5, 1.0]];
        let mut cov = Vec::new();
        for i in 0..3 {
            for j in 0..3 {
                cov.push(rho[i][j] * sd[i] * sd[j]);
            }
        }
        let cov = Tensor::from_slice(&cov).view([3, 3]);
        Self {
            mean: Tensor::from_slice(&[1.0f64, -2.0, 0.5]),
            precision: cov.inverse(),
            chol: cov.linalg_cholesky(false),
            cov,
        }
    }

    /// `log N(z; m, Σ)` up to a constant, per row.
    fn log_density(&self, z: &Tensor) -> genae_samplers::Result<Tensor> {
        let c = z.f_sub(&self.mean)?;
        Ok((c.f_matmul(&self.precision)? * &c).sum_dim_intlist(-1, false, Kind::Double) * -0.5)
    }

    fn exact_draws(&self, n: i64) -> Tensor {
        Tensor::randn([n, 3], F64).matmul(&self.chol.tr()) + &self.mean
    }

    /// Asserts that the rows of `z` (independent draws) have mean `m` and covariance `Σ` within
    /// `z_score` Monte-Carlo standard errors: `√(Σ_ii/n)` for means,
    /// `√((Σ_ii Σ_jj + Σ_ij²)/n)` for covariances (the Gaussian fourth-moment formula).
    fn assert_moments(&self, z: &Tensor, z_score: f64, what: &str) {
        let n = z.size()[0] as f64;
        let mean = values(&z.mean_dim(0, false, Kind::Double));
        let c = z - z.mean_dim(0, true, Kind::Double);
        let cov = values(&(c.tr().matmul(&c) / (n - 1.0)));
        let want_mean = values(&self.mean);
        let want_cov = values(&self.cov);
        for i in 0..3 {
            let se = (want_cov[4 * i] / n).sqrt();
            assert!(
                (mean[i] - want_mean[i]).abs() < z_score * se,
                "{what}: mean[{i}] = {} vs {} (se {se})",
                mean[i],
                want_mean[i]
            );
            for j in 0..3 {
                let (sii, sjj, sij) = (want_cov[4 * i], want_cov[4 * j], want_cov[3 * i + j]);
                let se = ((sii * sjj + sij * sij) / n).sqrt();
                assert!(
                    (cov[3 * i + j] - sij).abs() < z_score * se,
                    "{what}: cov[{i}{j}] = {} vs {sij} (se {se})",
                    cov[3 * i + j]
                );
            }
        }
    }
}

#[test]
fn hmc_leaves_a_correlated_gaussian_invariant() {
    let _rng = torch_rng_lock();
    let g = Gaussian::new();
    let target = |z: &Tensor| g.log_density(z);
    for (seed, mass, jitter) in [(11, None, 0.0), (12, Some(vec![1.0, 0.25, 4.0]), 0.5)] {
        tch::manual_seed(seed);
        let chains = 4000;
        let z0 = g.exact_draws(chains);
        g.assert_moments(&z0, 4.0, "the exact draws themselves");
        let hmc = Hmc::new(HmcConfig {
            step_size: 0.2,
            leapfrog_steps: 8,
            warmup: 0,
            samples: 40,
            adaptation: StepSizeAdaptation::Off,
            mass: mass.clone(),
            jitter,
            ..Default::default()
        })
        .unwrap();
        let out = hmc.run(&target, &z0).unwrap();
        let what = format!("after 40 transitions, mass {mass:?}, jitter {jitter}");
        g.assert_moments(&out.state, 4.0, &what);
        // The chains really moved: most proposals were accepted, and the final states are far
        // from the starting ones (squared displacement comparable to the variance).
        let rate = out.acceptance_rate.mean(Kind::Double).double_value(&[]);
        assert!(rate > 0.6, "{what}: acceptance {rate}");
        let disp = values(&(&out.state - &z0).square().mean_dim(0, false, Kind::Double));
        let var = values(&g.cov.diag(0));
        for i in 0..3 {
            assert!(disp[i] > 0.5 * var[i], "{what}: displacement {disp:?}");
        }
        // The reported log density is the target's at the final state.
        let lp = g.log_density(&out.state).unwrap();
        assert!(lp.allclose(&out.log_density, 1e-10, 1e-10, false));
    }
}

#[test]
fn an_incorrect_energy_would_fail_the_invariance_check() {
    // The check above can fail: a sampler that targets the wrong density (here the right shape
    // but twice the precision, as a kinetic-energy bug of a factor 2 would give) is caught.
    let _rng = torch_rng_lock();
    let g = Gaussian::new();
    let wrong = |z: &Tensor| Ok(g.log_density(z)? * 2.0);
    tch::manual_seed(13);
    let z0 = g.exact_draws(4000);
    let hmc = Hmc::new(HmcConfig {
        step_size: 0.15,
        warmup: 0,
        samples: 40,
        adaptation: StepSizeAdaptation::Off,
        ..Default::default()
    })
    .unwrap();
    let out = hmc.run(&wrong, &z0).unwrap();
    let failed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        g.assert_moments(&out.state, 4.0, "wrong target")
    }));
    assert!(failed.is_err());
}

#[test]
fn hmc_started_far_away_converges_to_the_gaussian() {
    let _rng = torch_rng_lock();
    let g = Gaussian::new();
    let target = |z: &Tensor| g.log_density(z);
    for (seed, adaptation) in [
        (21, StepSizeAdaptation::PerChain),
        (22, StepSizeAdaptation::Shared),
    ] {
        tch::manual_seed(seed);
        let z0 = Tensor::from_slice(&[30.0f64, -30.0, 30.0])
            .view([1, 3])
            .repeat([2000, 1]);
        let hmc = Hmc::new(HmcConfig {
            step_size: 1.0,
            warmup: 300,
            samples: 50,
            adaptation,
            ..Default::default()
        })
        .unwrap();
        let out = hmc.run(&target, &z0).unwrap();
        g.assert_moments(&out.state, 4.0, &format!("{adaptation:?}"));
        let steps = values(&out.step_size);
        if adaptation == StepSizeAdaptation::Shared {
            assert!(steps.iter().all(|s| *s == steps[0]));
        }
        // A step of 1 would be unstable along the narrowest direction (the smallest standard
        // deviation of Σ's principal axes is about 0.33): adaptation shrank it.
        assert!(
            steps.iter().all(|s| *s < 0.6),
            "{adaptation:?}: {:?}",
            &steps[..4]
        );
    }
}

#[test]
fn step_size_adaptation_reaches_the_target_acceptance() {
    let _rng = torch_rng_lock();
    // An independent Gaussian in 10-d with standard deviations from 0.5 to 1.
    let sd = Tensor::linspace(0.5, 1.0, 10, F64);
    let target =
        |z: &Tensor| Ok((z / &sd).square().sum_dim_intlist(-1, false, Kind::Double) * -0.5);
    let mut seed = 30;
    for adaptation in [StepSizeAdaptation::PerChain, StepSizeAdaptation::Shared] {
        for goal in [0.5, 0.65, 0.9] {
            seed += 1;
            tch::manual_seed(seed);
            let z0 = Tensor::randn([200, 10], F64) * &sd;
            let hmc = Hmc::new(HmcConfig {
                step_size: 0.01,
                leapfrog_steps: 5,
                warmup: 400,
                samples: 200,
                target_accept: goal,
                adaptation,
                ..Default::default()
            })
            .unwrap();
            let out = hmc.run(&target, &z0).unwrap();
            let prob = out.mean_accept_prob.mean(Kind::Double).double_value(&[]);
            let rate = out.acceptance_rate.mean(Kind::Double).double_value(&[]);
            // Shared adaptation averages the acceptance over 200 chains and lands on the
            // target. A single chain's acceptance is noisy, so its log step size fluctuates
            // during warm-up and the averaged step ends on the small side: like Stan's
            // (single-chain) dual averaging, per-chain adaptation overshoots the target
            // (by 0.03–0.13 here, most at low targets), never undershoots it.
            let (below, above) = match adaptation {
                StepSizeAdaptation::Shared => (0.03, 0.03),
                _ => (0.02, 0.15),
            };
            assert!(
                prob > goal - below && prob < goal + above,
                "{adaptation:?}, target {goal}: mean acceptance probability {prob}"
            );
            // The accepted fraction estimates the same thing (4000+ accept/reject draws).
            assert!(
                (rate - prob).abs() < 0.03,
                "rate {rate} vs probability {prob}"
            );
        }
    }
    // A harder target (standard deviations 0.1 to 1): with a fixed step size the acceptance
    // is a bumpy function of ε (the trajectory length resonates with the periods of the
    // narrow directions) and shared adaptation misses by up to 0.12; a jittered step size
    // smooths it out and lands on the target.
    let sd = Tensor::linspace(0.1, 1.0, 10, F64);
    let target =
        |z: &Tensor| Ok((z / &sd).square().sum_dim_intlist(-1, false, Kind::Double) * -0.5);
    for goal in [0.5, 0.65, 0.9] {
        seed += 1;
        tch::manual_seed(seed);
        let z0 = Tensor::randn([200, 10], F64) * &sd;
        let hmc = Hmc::new(HmcConfig {
            warmup: 300,
            samples: 100,
            target_accept: goal,
            adaptation: StepSizeAdaptation::Shared,
            jitter: 0.5,
            ..Default::default()
        })
        .unwrap();
        let prob = hmc
            .run(&target, &z0)
            .unwrap()
            .mean_accept_prob
            .mean(Kind::Double);
        let prob = prob.double_value(&[]);
        assert!(
            (prob - goal).abs() < 0.03,
            "jittered, target {goal}: {prob}"
        );
    }
}

#[test]
fn without_adaptation_the_step_size_stays_put() {
    let _rng = torch_rng_lock();
    tch::manual_seed(40);
    let target = |z: &Tensor| Ok(z.square().sum_dim_intlist(-1, false, Kind::Double) * -0.5);
    let hmc = Hmc::new(HmcConfig {
        step_size: 0.3,
        warmup: 20,
        samples: 7,
        adaptation: StepSizeAdaptation::Off,
        keep_trajectory: true,
        thin: 2,
        ..Default::default()
    })
    .unwrap();
    let z0 = Tensor::randn([5, 4], F64);
    let out = hmc.run(&target, &z0).unwrap();
    assert_eq!(values(&out.step_size), vec![0.3; 5]);
    let trajectory = out.trajectory.unwrap();
    assert_eq!(trajectory.size(), [3, 5, 4]); // transitions 2, 4, 6
    assert_eq!(out.state.size(), [5, 4]);
    assert_eq!(out.warmup_accept_prob.size(), [5]);
}

#[test]
fn a_seed_makes_a_run_repeatable_and_float_states_stay_float() {
    let _rng = torch_rng_lock();
    let target = |z: &Tensor| Ok(z.square().sum_dim_intlist(-1, false, Kind::Float) * -0.5);
    let hmc = Hmc::new(HmcConfig {
        warmup: 10,
        samples: 10,
        ..Default::default()
    })
    .unwrap();
    let run = || {
        tch::manual_seed(50);
        let z0 = Tensor::randn([6, 2], (Kind::Float, Device::Cpu));
        hmc.run(&target, &z0).unwrap()
    };
    let (a, b) = (run(), run());
    assert_eq!(a.state.kind(), Kind::Float);
    assert!(a.state.equal(&b.state));
    assert!(a.step_size.equal(&b.step_size));
}

#[test]
fn hmc_runs_inside_no_grad() {
    // Evaluation code often runs under no_grad; the sampler turns gradients back on.
    let _rng = torch_rng_lock();
    tch::manual_seed(60);
    let target = |z: &Tensor| Ok(z.square().sum_dim_intlist(-1, false, Kind::Double) * -0.5);
    let hmc = Hmc::new(HmcConfig {
        warmup: 0,
        samples: 5,
        ..Default::default()
    })
    .unwrap();
    let out = tch::no_grad(|| hmc.run(&target, &Tensor::randn([3, 2], F64))).unwrap();
    assert!(out.acceptance_rate.sum(Kind::Double).double_value(&[]) > 0.0);
}

#[test]
fn bad_configs_and_arguments_are_errors_naming_the_culprit() {
    let field = |config: HmcConfig| match Hmc::new(config) {
        Err(SamplerError::InvalidConfig { field, .. }) => field,
        other => panic!("expected InvalidConfig, got {other:?}"),
    };
    let base = HmcConfig::default();
    assert_eq!(
        field(HmcConfig {
            step_size: 0.0,
            ..base.clone()
        }),
        "step_size"
    );
    assert_eq!(
        field(HmcConfig {
            step_size: f64::NAN,
            ..base.clone()
        }),
        "step_size"
    );
    assert_eq!(
        field(HmcConfig {
            leapfrog_steps: 0,
            ..base.clone()
        }),
        "leapfrog_steps"
    );
    assert_eq!(
        field(HmcConfig {
            samples: 0,
            ..base.clone()
        }),
        "samples"
    );
    assert_eq!(
        field(HmcConfig {
            thin: 0,
            ..base.clone()
        }),
        "thin"
    );
    assert_eq!(
        field(HmcConfig {
            target_accept: 1.0,
            ..base.clone()
        }),
        "target_accept"
    );
    assert_eq!(
        field(HmcConfig {
            mass: Some(vec![1.0, -1.0]),
            ..base.clone()
        }),
        "mass"
    );
    assert_eq!(
        field(HmcConfig {
            mass: Some(vec![]),
            ..base.clone()
        }),
        "mass"
    );
    assert_eq!(
        field(HmcConfig {
            jitter: 1.0,
            ..base.clone()
        }),
        "jitter"
    );
    assert_eq!(
        field(HmcConfig {
            jitter: -0.1,
            ..base.clone()
        }),
        "jitter"
    );

    let target = |z: &Tensor| Ok(z.square().sum_dim_intlist(-1, false, Kind::Double) * -0.5);
    let argument = |config: HmcConfig, z0: &Tensor| match Hmc::new(config).unwrap().run(&target, z0)
    {
        Err(SamplerError::InvalidArgument { name, reason }) => format!("{name}: {reason}"),
        other => panic!("expected InvalidArgument, got {other:?}"),
    };
    let ok = Tensor::zeros([2, 3], F64);
    let small = HmcConfig {
        warmup: 1,
        samples: 1,
        ..base.clone()
    };
    assert!(argument(small.clone(), &Tensor::zeros([3], F64)).starts_with("z0"));
    assert!(argument(small.clone(), &Tensor::zeros([0, 3], F64)).starts_with("z0"));
    assert!(argument(
        small.clone(),
        &Tensor::zeros([2, 3], (Kind::Int64, Device::Cpu))
    )
    .starts_with("z0"));
    let wrong_mass = HmcConfig {
        mass: Some(vec![1.0, 1.0]),
        ..small.clone()
    };
    assert!(argument(wrong_mass, &ok).contains("mass"));
    // A start where the density is not finite.
    let log_of_first = |z: &Tensor| Ok(z.select(1, 0).log());
    match Hmc::new(small.clone()).unwrap().run(&log_of_first, &ok) {
        Err(SamplerError::InvalidArgument { name: "z0", reason }) => {
            assert!(reason.contains("not finite"), "{reason}")
        }
        other => panic!("expected a non-finite start error, got {other:?}"),
    }
    // A target returning the wrong shape.
    let summed = |z: &Tensor| Ok(z.sum(Kind::Double));
    match Hmc::new(small).unwrap().run(&summed, &ok) {
        Err(SamplerError::InvalidArgument { name: "target", .. }) => {}
        other => panic!("expected a target shape error, got {other:?}"),
    }
}
