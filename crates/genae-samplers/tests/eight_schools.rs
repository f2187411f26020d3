//! HMC and AIS on the eight-schools model of the AVB paper (rescaled, non-centred, τ
//! unconstrained), against 2-d quadrature: integrating the η_j out analytically,
//! `y_j | μ, τ ~ N(μ, σ_j² + τ²)`, so the marginal posterior of (μ, τ) and the evidence are
//! one grid sum away.

use std::sync::{Mutex, MutexGuard};

use genae_samplers::{ais, AisConfig, Hmc, HmcConfig, StepSizeAdaptation};
use genae_tensor::{DiagGaussian, LOG_2PI};
use tch::{Device, Kind, Tensor};

const F64: (Kind, Device) = (Kind::Double, Device::Cpu);
const Y: [f64; 8] = [2.8, 0.8, -0.3, 0.7, -0.1, 0.1, 1.8, 1.2];
const SIGMA: [f64; 8] = [0.8, 0.5, 0.8, 0.6, 0.5, 0.6, 0.5, 0.4];

/// libtorch's random generator is global to the process while tests run on parallel threads:
/// every test that draws random numbers holds this lock, so its draws are its own and
/// repeatable.
fn torch_rng_lock() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// `log p(y, θ)` for θ = (μ, τ, η_1..η_8) rows `[C, 10]`, with every normalising constant.
fn log_joint(theta: &Tensor) -> genae_samplers::Result<Tensor> {
    let y = Tensor::from_slice(&Y);
    let sigma = Tensor::from_slice(&SIGMA);
    let mu = theta.f_narrow(1, 0, 1)?;
    let tau = theta.f_narrow(1, 1, 1)?;
    let eta = theta.f_narrow(1, 2, 8)?;
    let prior = (theta.square() + LOG_2PI).sum_dim_intlist(-1, false, Kind::Double) * -0.5;
    let resid = (-(mu + tau * eta) + &y) / &sigma;
    let lik =
        (resid.square() + sigma.square().log() + LOG_2PI).sum_dim_intlist(-1, false, Kind::Double)
            * -0.5;
    Ok(prior + lik)
}

/// The (μ, τ) grid, its log marginal posterior (unnormalised, `log p(y, μ, τ)`) and the cell
/// area.
fn quadrature() -> (Tensor, Tensor, Tensor, f64) {
    let n = 801;
    let axis = Tensor::linspace(-5.0, 5.0, n, F64);
    let h = 10.0 / (n - 1) as f64;
    let mu = axis.view([n, 1]).expand([n, n], false);
    let tau = axis.view([1, n]).expand([n, n], false);
    let mut log_p = (mu.square() + tau.square() + 2.0 * LOG_2PI) * -0.5;
    for (y, s) in Y.iter().zip(SIGMA) {
        let var = tau.square() + s * s;
        log_p += ((-&mu + *y).square() / &var + var.log() + LOG_2PI) * -0.5;
    }
    (mu, tau, log_p, h * h)
}

#[test]
fn hmc_samples_the_eight_schools_posterior() {
    let _rng = torch_rng_lock();
    let (mu, tau, log_p, _) = quadrature();
    let w = (&log_p - log_p.max()).exp();
    let w = &w / w.sum(Kind::Double);
    let expect = |f: &Tensor| (f * &w).sum(Kind::Double).double_value(&[]);
    let exact = [
        expect(&mu),
        expect(&tau.abs()),
        expect(&tau.square()),
        expect(&(tau.square() / -0.18).exp()),
    ];

    tch::manual_seed(70);
    let chains = 100;
    let hmc = Hmc::new(HmcConfig {
        warmup: 500,
        samples: 1000,
        adaptation: StepSizeAdaptation::Shared,
        jitter: 0.5,
        target_accept: 0.8,
        keep_trajectory: true,
        thin: 5,
        ..Default::default()
    })
    .unwrap();
    let out = hmc
        .run(&log_joint, &Tensor::randn([chains, 10], F64))
        .unwrap();
    let draws = out.trajectory.unwrap(); // [200, chains, 10]
    let (mu_s, tau_s) = (draws.select(2, 0), draws.select(2, 1));
    let stats = [
        mu_s.shallow_clone(),
        tau_s.abs(),
        tau_s.square(),
        (tau_s.square() / -0.18).exp(),
    ];
    // Smooth statistics only, so the grid sum is accurate to far below the Monte-Carlo error
    // (an indicator such as P(|τ| < 0.3) moves by 0.005 between grids); the last one
    // measures the mass near τ = 0, which chains crossing between the two signs of τ pass.
    let names = ["E[μ]", "E[|τ|]", "E[τ²]", "E[exp(−τ²/0.18)]"];
    for ((stat, want), name) in stats.iter().zip(exact).zip(names) {
        // Chains are independent: the spread of the 100 chain means gives the standard error.
        let chain_means = stat.mean_dim(0, false, Kind::Double);
        let got = chain_means.mean(Kind::Double).double_value(&[]);
        let se = chain_means.std(true).double_value(&[]) / (chains as f64).sqrt();
        eprintln!("{name}: HMC {got:.4} ± {se:.4}, quadrature {want:.4}");
        assert!(
            se < 0.02,
            "{name}: standard error {se} too large for a useful check"
        );
        assert!(
            (got - want).abs() < 4.0 * se + 1e-3,
            "{name}: HMC {got} ± {se} vs quadrature {want}"
        );
    }
    // The posterior is symmetric under (τ, η) → (−τ, −η): the chains visit both signs.
    let positive = tau_s
        .gt(0.0)
        .to_kind(Kind::Double)
        .mean(Kind::Double)
        .double_value(&[]);
    eprintln!(
        "P(τ > 0) = {positive:.3}; step size {:.3}, acceptance {:.3}",
        out.step_size.double_value(&[0]),
        out.mean_accept_prob.mean(Kind::Double).double_value(&[])
    );
    assert!((positive - 0.5).abs() < 0.05, "P(τ > 0) = {positive}");
}

#[test]
fn ais_finds_the_eight_schools_evidence() {
    let _rng = torch_rng_lock();
    let (_, _, log_p, area) = quadrature();
    let exact = (log_p.logsumexp([0, 1], false) + area.ln()).double_value(&[]);
    tch::manual_seed(71);
    let prior = DiagGaussian::standard_like(&Tensor::zeros([1, 10], F64)).unwrap();
    let config = AisConfig {
        steps: 300,
        chains: 256,
        ..Default::default()
    };
    let out = ais(&log_joint, &prior, &config).unwrap();
    let got = out.log_normalizer.double_value(&[0]);
    let spread = out.log_weights.std(true).double_value(&[]);
    eprintln!(
        "log p(y): AIS {got:.4} (log-weight spread {spread:.3}, ESS {:.1} of 256), quadrature {exact:.4}",
        out.ess.double_value(&[0])
    );
    // Standard error about spread/√64.
    assert!(spread < 1.0, "log-weight spread {spread}");
    assert!(
        (got - exact).abs() < 0.1,
        "AIS log p(y) {got} vs quadrature {exact}"
    );
}
