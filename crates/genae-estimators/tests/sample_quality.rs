//! Sample-quality metrics against closed forms and independent computations.
//!
//! - Fréchet distance between Gaussians: with diagonal covariances it is
//!   `‖μa − μb‖² + Σ_j (σa_j − σb_j)²`; in two dimensions, for any covariances,
//!   `Tr (Σa^{1/2} Σb Σa^{1/2})^{1/2} = sqrt(Tr(Σa Σb) + 2 sqrt(det Σa det Σb))`; in general the
//!   trace is `Σ sqrt(λ)` over the (real, non-negative) eigenvalues of the non-symmetric `Σa Σb`.
//! - MMD with the kernel `exp(−‖x − y‖² / 2h²)` between `N(μa, s² I_d)` and `N(μb, s² I_d)`:
//!   `E k(X, Y) = (h² / (h² + 2s²))^{d/2} exp(−‖μa − μb‖² / 2(h² + 2s²))`, so
//!   `MMD² = 2 (h² / (h² + 2s²))^{d/2} (1 − exp(−‖μa − μb‖² / 2(h² + 2s²)))`; the distance
//!   between two independent points of `N(0, s² I_2)` is `s·√2` times a Rayleigh(1) variable,
//!   whose median is `√(2 ln 2)`.

use std::sync::{Mutex, MutexGuard};

use genae_estimators::{
    frechet_distance, mmd_gaussian, EstimatorError, FeatureStats, MEDIAN_HEURISTIC_MAX_POINTS,
};
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
    Vec::<f64>::try_from(&t.to_kind(Kind::Double).flatten(0, -1)).unwrap()
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

/// A random symmetric positive-definite `[f, f]` matrix with a spread of eigenvalues.
fn random_spd(f: i64) -> Tensor {
    let g = Tensor::randn([f, f], OPTS);
    g.matmul(&g.tr()) / f as f64 + Tensor::eye(f, OPTS) * 0.1
}

fn diag_stats(mean: &[f64], std: &[f64]) -> FeatureStats {
    let var: Vec<f64> = std.iter().map(|s| s * s).collect();
    FeatureStats::new(Tensor::from_slice(mean), Tensor::from_slice(&var).diag(0)).unwrap()
}

fn full_stats(mean: &[f64], cov: &[[f64; 2]; 2]) -> FeatureStats {
    let flat = [cov[0][0], cov[0][1], cov[1][0], cov[1][1]];
    FeatureStats::new(
        Tensor::from_slice(mean),
        Tensor::from_slice(&flat).view([2, 2]),
    )
    .unwrap()
}

fn sq_dist(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum()
}

// ---------------------------------------------------------------------------------------------
// Fréchet distance

#[test]
fn frechet_of_diagonal_gaussians_is_the_closed_form() {
    let (ma, sa) = ([0.5, -1.0, 2.0, 0.0], [1.0, 2.0, 0.3, 1.5]);
    let (mb, sb) = ([0.0, -1.0, 1.0, 0.25], [1.5, 1.0, 0.3, 0.1]);
    let want = sq_dist(&ma, &mb) + sq_dist(&sa, &sb);
    let got = diag_stats(&ma, &sa)
        .frechet_distance(&diag_stats(&mb, &sb))
        .unwrap();
    assert!((got - want).abs() < 1e-10, "{got} vs {want}");

    // Singular covariances (a rank-deficient feature set) are fine: roots of 0 are 0.
    let got = diag_stats(&[0.0; 3], &[1.0, 0.0, 2.0])
        .frechet_distance(&diag_stats(&[0.0; 3], &[0.0, 0.0, 1.0]))
        .unwrap();
    assert!((got - 2.0).abs() < 1e-10, "{got}");
}

#[test]
fn frechet_of_correlated_two_dimensional_gaussians_is_the_closed_form() {
    // Covariances that do not commute, so no diagonal shortcut applies.
    let ca = [[2.0, 0.8], [0.8, 1.0]];
    let cb = [[0.5, -0.3], [-0.3, 1.5]];
    let (ma, mb) = ([1.0, 2.0], [0.0, 2.5]);
    let det = |c: &[[f64; 2]; 2]| c[0][0] * c[1][1] - c[0][1] * c[1][0];
    let tr_ab: f64 = (0..2)
        .map(|i| (0..2).map(|k| ca[i][k] * cb[k][i]).sum::<f64>())
        .sum();
    let cross = (tr_ab + 2.0 * (det(&ca) * det(&cb)).sqrt()).sqrt();
    let want = sq_dist(&ma, &mb) + ca[0][0] + ca[1][1] + cb[0][0] + cb[1][1] - 2.0 * cross;
    let a = full_stats(&ma, &ca);
    let b = full_stats(&mb, &cb);
    let ab = a.frechet_distance(&b).unwrap();
    let ba = b.frechet_distance(&a).unwrap();
    assert!((ab - want).abs() < 1e-10, "{ab} vs {want}");
    assert!((ba - want).abs() < 1e-10, "{ba} vs {want}");
}

#[test]
fn frechet_matches_the_eigenvalues_of_the_covariance_product_and_is_symmetric() {
    let _rng = torch_rng_lock();
    tch::manual_seed(1);
    let f = 6;
    let (ca, cb) = (random_spd(f), random_spd(f));
    let (ma, mb) = (Tensor::randn([f], OPTS), Tensor::randn([f], OPTS));
    // Independent route: Tr (Σa^{1/2} Σb Σa^{1/2})^{1/2} = Σ √λ(Σa Σb), by a general
    // (non-symmetric) eigen-solver.
    let eig = Tensor::linalg_eigvals(&ca.matmul(&cb));
    let eig_values = values(&eig.real());
    assert!(values(&eig.imag()).iter().all(|v| v.abs() < 1e-9));
    let cross: f64 = eig_values.iter().map(|l| l.sqrt()).sum();
    let trace = |c: &Tensor| c.trace().double_value(&[]);
    let diff = &ma - &mb;
    let want = diff.dot(&diff).double_value(&[]) + trace(&ca) + trace(&cb) - 2.0 * cross;
    let a = FeatureStats::new(ma, ca).unwrap();
    let b = FeatureStats::new(mb, cb).unwrap();
    let ab = a.frechet_distance(&b).unwrap();
    let ba = b.frechet_distance(&a).unwrap();
    assert!((ab - want).abs() < 1e-9 * want, "{ab} vs {want}");
    assert!((ab - ba).abs() < 1e-9 * want, "not symmetric: {ab} vs {ba}");

    // The same from samples: the two orders agree.
    let xa = Tensor::randn([300, f], OPTS).matmul(&random_spd(f));
    let xb = Tensor::randn([200, f], OPTS) * 2.0 + 0.3;
    let ab = frechet_distance(&xa, &xb).unwrap();
    let ba = frechet_distance(&xb, &xa).unwrap();
    assert!(ab > 1.0 && (ab - ba).abs() < 1e-9 * ab, "{ab} vs {ba}");
}

#[test]
fn frechet_of_a_set_with_itself_is_zero_and_a_shift_costs_its_squared_norm() {
    let _rng = torch_rng_lock();
    tch::manual_seed(2);
    let f = 8;
    let a = Tensor::randn([500, f], OPTS).matmul(&random_spd(f)) + 3.0;
    let stats = FeatureStats::from_features(&a).unwrap();
    let scale = stats.cov().trace().double_value(&[]);
    let itself = frechet_distance(&a, &a).unwrap();
    assert!(itself < 1e-9 * scale, "{itself}");
    let c = Tensor::randn([f], OPTS);
    let want = c.dot(&c).double_value(&[]);
    let shifted = frechet_distance(&a, &(&a + &c)).unwrap();
    assert!(
        (shifted - want).abs() < 1e-9 * scale.max(want),
        "{shifted} vs {want}"
    );
    // f32 features give the same answer to f32 precision.
    let a32 = a.to_kind(Kind::Float);
    let shifted32 = frechet_distance(&a32, &(&a32 + c.to_kind(Kind::Float))).unwrap();
    assert!(
        (shifted32 - want).abs() < 1e-3 * scale,
        "{shifted32} vs {want}"
    );
}

#[test]
fn frechet_from_samples_approaches_the_closed_form() {
    let _rng = torch_rng_lock();
    tch::manual_seed(3);
    let n = 40_000;
    let (ma, sa) = ([1.0, 0.0, 0.0, -0.5], [1.0, 2.0, 0.5, 1.0]);
    let (mb, sb) = ([0.0, 0.0, 0.0, 0.0], [1.5, 1.0, 0.5, 1.0]);
    let draw = |m: &[f64], s: &[f64]| {
        Tensor::randn([n, 4], OPTS) * Tensor::from_slice(s) + Tensor::from_slice(m)
    };
    let want = sq_dist(&ma, &mb) + sq_dist(&sa, &sb); // 2.5
    let got = frechet_distance(&draw(&ma, &sa), &draw(&mb, &sb)).unwrap();
    // The mean term alone has a standard deviation of about 0.013 here.
    assert!((got - want).abs() < 0.06, "{got} vs {want}");
    // Two samples of one distribution: only the O(F/N) estimation bias remains.
    let same = frechet_distance(&draw(&ma, &sa), &draw(&ma, &sa)).unwrap();
    assert!(same < 0.01, "{same}");
}

#[test]
fn feature_stats_are_the_mean_and_unbiased_covariance_and_can_be_reused() {
    let _rng = torch_rng_lock();
    tch::manual_seed(4);
    let (n, f) = (13usize, 3usize);
    let x = Tensor::randn([n as i64, f as i64], (Kind::Float, Device::Cpu));
    let rows = values(&x);
    let stats = FeatureStats::from_features(&x).unwrap();
    assert_eq!((stats.dim(), stats.count()), (3, Some(13)));
    assert_eq!(stats.mean().kind(), Kind::Double);
    let m: Vec<f64> = (0..f)
        .map(|j| (0..n).map(|i| rows[i * f + j]).sum::<f64>() / n as f64)
        .collect();
    let got_mean = values(stats.mean());
    let got_cov = values(stats.cov());
    for j in 0..f {
        assert!((got_mean[j] - m[j]).abs() < 1e-12);
        for k in 0..f {
            let c = (0..n)
                .map(|i| (rows[i * f + j] - m[j]) * (rows[i * f + k] - m[k]))
                .sum::<f64>()
                / (n - 1) as f64;
            assert!((got_cov[j * f + k] - c).abs() < 1e-12, "cov[{j}][{k}]");
        }
    }
    // Statistics computed once give exactly the one-shot distance.
    let y = Tensor::randn([20, 3], (Kind::Float, Device::Cpu)) + 0.5;
    let reused = FeatureStats::from_features(&y)
        .unwrap()
        .frechet_distance(&stats)
        .unwrap();
    assert_eq!(reused, frechet_distance(&y, &x).unwrap());
    let given = FeatureStats::new(stats.mean().copy(), stats.cov().copy()).unwrap();
    assert_eq!(given.count(), None);
}

// ---------------------------------------------------------------------------------------------
// MMD

/// `MMD²` (unbiased) and the median-heuristic bandwidth by plain loops over the rows.
fn mmd_by_hand(a: &[Vec<f64>], b: &[Vec<f64>], h: Option<f64>) -> (f64, f64) {
    let h = h.unwrap_or_else(|| {
        let pooled: Vec<&Vec<f64>> = a.iter().chain(b).collect();
        let mut d = Vec::new();
        for i in 0..pooled.len() {
            for j in i + 1..pooled.len() {
                d.push(sq_dist(pooled[i], pooled[j]).sqrt());
            }
        }
        d.sort_by(f64::total_cmp);
        d[(d.len() - 1) / 2]
    });
    let k = |x: &[f64], y: &[f64]| (-sq_dist(x, y) / (2.0 * h * h)).exp();
    let within = |s: &[Vec<f64>]| {
        let mut total = 0.0;
        for i in 0..s.len() {
            for j in 0..s.len() {
                if i != j {
                    total += k(&s[i], &s[j]);
                }
            }
        }
        total / (s.len() * (s.len() - 1)) as f64
    };
    let mut between = 0.0;
    for x in a {
        for y in b {
            between += k(x, y);
        }
    }
    let between = between / (a.len() * b.len()) as f64;
    (within(a) + within(b) - 2.0 * between, h)
}

fn rows(t: &Tensor) -> Vec<Vec<f64>> {
    let d = t.size()[1] as usize;
    values(t).chunks(d).map(<[f64]>::to_vec).collect()
}

#[test]
fn mmd_matches_a_direct_computation() {
    let _rng = torch_rng_lock();
    tch::manual_seed(5);
    // Small sets, median heuristic.
    let a = Tensor::randn([7, 3], OPTS);
    let b = Tensor::randn([5, 3], OPTS) + 0.7;
    let got = mmd_gaussian(&a, &b, None).unwrap();
    let (want, h) = mmd_by_hand(&rows(&a), &rows(&b), None);
    assert!(
        (got.bandwidth - h).abs() < 1e-12,
        "{} vs {h}",
        got.bandwidth
    );
    assert!((got.mmd2 - want).abs() < 1e-12, "{} vs {want}", got.mmd2);
    // Sets larger than one block of kernel rows, a given bandwidth, f32 input.
    let a = Tensor::randn([1100, 2], (Kind::Float, Device::Cpu));
    let b = Tensor::randn([300, 2], (Kind::Float, Device::Cpu)) * 1.3;
    let got = mmd_gaussian(&a, &b, Some(0.8)).unwrap();
    let (want, _) = mmd_by_hand(&rows(&a), &rows(&b), Some(0.8));
    assert_eq!(got.bandwidth, 0.8);
    assert!((got.mmd2 - want).abs() < 1e-10, "{} vs {want}", got.mmd2);
}

#[test]
fn mmd_is_unbiased_when_both_samples_come_from_one_distribution() {
    let _rng = torch_rng_lock();
    tch::manual_seed(6);
    let n = 100;
    let estimates: Vec<f64> = (0..100)
        .map(|_| {
            let a = Tensor::randn([n, 2], OPTS);
            let b = Tensor::randn([n, 2], OPTS);
            mmd_gaussian(&a, &b, Some(1.0)).unwrap().mmd2
        })
        .collect();
    let (m, se) = mean_se(&estimates);
    println!("null MMD² = {m:.5} ± {se:.5}");
    // The biased (V-statistic) estimate would sit near 2(1 − 1/3)/n = 0.013 here, more than
    // 20 standard errors away. (The estimates are skewed, so the tolerance is generous.)
    assert!(m.abs() < 5.0 * se, "{m} ± {se}");
    assert!(se < 0.001, "{se}");
    assert!(estimates.iter().all(|v| v.abs() < 0.03), "{estimates:?}");
}

#[test]
fn mmd_grows_with_the_shift_as_its_closed_form() {
    let _rng = torch_rng_lock();
    tch::manual_seed(7);
    let (n, h, s) = (400, 1.0f64, 1.0f64);
    let closed = |shift: f64| {
        let v = h * h + 2.0 * s * s;
        2.0 * (h * h / v) * (1.0 - (-shift * shift / (2.0 * v)).exp())
    };
    let mut previous: Option<(f64, f64)> = None;
    let mut previous_median = 0.0;
    for shift in [0.5, 1.0, 2.0] {
        let c = Tensor::from_slice(&[shift / 2f64.sqrt(), shift / 2f64.sqrt()]);
        let mut fixed = Vec::new();
        let mut median = Vec::new();
        for _ in 0..25 {
            let a = Tensor::randn([n, 2], OPTS) * s;
            let b = Tensor::randn([n, 2], OPTS) * s + &c;
            fixed.push(mmd_gaussian(&a, &b, Some(h)).unwrap().mmd2);
            median.push(mmd_gaussian(&a, &b, None).unwrap().mmd2);
        }
        let (m, se) = mean_se(&fixed);
        let want = closed(shift);
        println!("shift {shift}: MMD² = {m:.4} ± {se:.4}, closed form {want:.4}");
        assert!((m - want).abs() < 5.0 * se + 1e-3, "{m} ± {se} vs {want}");
        // Clearly positive: far above the null spread (about 0.002 at n = 100, less here).
        assert!(fixed.iter().all(|v| *v > 0.01), "{fixed:?}");
        if let Some((m_prev, se_prev)) = previous {
            assert!(m - m_prev > 4.0 * (se * se + se_prev * se_prev).sqrt());
        }
        previous = Some((m, se));
        // With the median heuristic too, larger shifts give larger values.
        let m_median = mean(&median);
        assert!(m_median > previous_median + 0.01, "{m_median}");
        previous_median = m_median;
    }
}

#[test]
fn median_heuristic_estimates_the_median_pairwise_distance() {
    let _rng = torch_rng_lock();
    tch::manual_seed(8);
    let s = 1.5;
    let want = s * 2f64.sqrt() * (2.0 * 2f64.ln()).sqrt();
    // Below and above the cap on pooled points.
    for (n, m) in [(600, 400), (3 * MEDIAN_HEURISTIC_MAX_POINTS, 1000)] {
        let a = Tensor::randn([n, 2], OPTS) * s;
        let b = Tensor::randn([m, 2], OPTS) * s;
        let h = mmd_gaussian(&a, &b, None).unwrap().bandwidth;
        assert!(
            (h - want).abs() < 0.03 * want,
            "{n} + {m} points: {h} vs {want}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Arguments

fn assert_names(result: std::result::Result<impl std::fmt::Debug, EstimatorError>, arg: &str) {
    let err = result.unwrap_err();
    match &err {
        EstimatorError::InvalidArgument { name, .. } => assert_eq!(*name, arg, "{err}"),
        other => panic!("expected InvalidArgument for `{arg}`, got {other:?}"),
    }
    assert!(err.to_string().contains(&format!("`{arg}`")), "{err}");
}

#[test]
fn bad_inputs_name_the_argument() {
    let good = Tensor::ones([4, 3], OPTS).cumsum(0, Kind::Double);
    let flat = Tensor::ones([12], OPTS);
    let one_row = Tensor::ones([1, 3], OPTS);
    let other_width = Tensor::ones([4, 2], OPTS).cumsum(0, Kind::Double);
    let ints = Tensor::ones([4, 3], (Kind::Int64, Device::Cpu));
    let nan = good.copy();
    let _ = nan.get(2).get(1).fill_(f64::NAN);

    assert_names(frechet_distance(&flat, &good), "features_a");
    assert_names(frechet_distance(&one_row, &good), "features_a");
    assert_names(frechet_distance(&ints, &good), "features_a");
    assert_names(frechet_distance(&good, &other_width), "features_b");
    assert_names(frechet_distance(&good, &nan), "features_b");
    assert_names(FeatureStats::from_features(&flat), "features");
    let stats = FeatureStats::from_features(&good).unwrap();
    let narrow = FeatureStats::from_features(&other_width).unwrap();
    assert_names(stats.frechet_distance(&narrow), "other");
    let v = Tensor::zeros([3], OPTS);
    assert_names(FeatureStats::new(good.copy(), good.copy()), "mean");
    assert_names(FeatureStats::new(v.copy(), Tensor::eye(2, OPTS)), "cov");
    assert_names(
        FeatureStats::new(v.copy(), Tensor::ones([3, 4], OPTS)),
        "cov",
    );
    let asymmetric = Tensor::eye(3, OPTS) + Tensor::ones([3, 3], OPTS).triu(1);
    assert_names(FeatureStats::new(v.copy(), asymmetric), "cov");
    assert_names(
        FeatureStats::new(v.copy() + f64::INFINITY, Tensor::eye(3, OPTS)),
        "mean",
    );

    assert_names(mmd_gaussian(&flat, &good, None), "a");
    assert_names(mmd_gaussian(&one_row, &good, None), "a");
    assert_names(mmd_gaussian(&good, &one_row, None), "b");
    assert_names(mmd_gaussian(&good, &other_width, None), "b");
    assert_names(mmd_gaussian(&good, &nan, Some(1.0)), "b");
    for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        assert_names(mmd_gaussian(&good, &good, Some(bad)), "bandwidth");
    }
    // Identical points leave the median heuristic without a scale.
    let same = Tensor::ones([5, 3], OPTS);
    assert_names(mmd_gaussian(&same, &same, None), "bandwidth");
}
