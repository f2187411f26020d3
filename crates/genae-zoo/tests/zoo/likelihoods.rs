//! Each likelihood's `log p(x|z)` against a computation by hand in `f64`.

use genae_zoo::{
    DecoderDistribution, Likelihood, GAUSSIAN_LOG_VAR_RANGE, LOGISTIC_LOG_SCALE_RANGE,
};
use tch::{Device, Kind, Tensor};

const LN_2PI: f64 = 1.837_877_066_409_345_5;

fn values(t: &Tensor) -> Vec<f64> {
    Vec::<f64>::try_from(t.to_kind(Kind::Double).flatten(0, -1)).unwrap()
}

fn matrix(v: &[f64], rows: i64) -> Tensor {
    Tensor::from_slice(v).view([rows, -1])
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

#[test]
fn bernoulli_matches_the_cross_entropy() {
    let logits = [2.0, -1.0, 0.5, 0.0, -3.0, 4.0];
    let x = [1.0, 0.0, 0.3, 1.0, 1.0, 0.0];
    let p = Likelihood::Bernoulli
        .distribution(&matrix(&logits, 2))
        .unwrap();
    let got = values(&p.log_prob(&matrix(&x, 2)).unwrap());
    for row in 0..2 {
        let want: f64 = (0..3)
            .map(|j| {
                let (l, x) = (logits[row * 3 + j], x[row * 3 + j]);
                x * sigmoid(l).ln() + (1.0 - x) * (1.0 - sigmoid(l)).ln()
            })
            .sum();
        assert!((got[row] - want).abs() < 1e-10, "{got:?} vs {want}");
    }
    let mean = values(&p.mean());
    assert!((mean[0] - sigmoid(2.0)).abs() < 1e-12);
}

#[test]
fn fixed_variance_gaussian_matches_the_formula() {
    tch::manual_seed(1);
    let (n, d, c) = (3i64, 5usize, 0.3f64);
    let mean = Tensor::rand([n, d as i64], (Kind::Double, Device::Cpu));
    let x = Tensor::rand([n, d as i64], (Kind::Double, Device::Cpu));
    let p = Likelihood::Gaussian { variance: c }
        .distribution(&mean)
        .unwrap();
    let got = values(&p.log_prob(&x).unwrap());
    let (m, xv) = (values(&mean), values(&x));
    for i in 0..n as usize {
        let sq: f64 = (0..d).map(|j| (xv[i * d + j] - m[i * d + j]).powi(2)).sum();
        // log p = −‖x − f(z)‖²/2c − D/2·log(2πc)
        let want = -sq / (2.0 * c) - d as f64 / 2.0 * (2.0 * std::f64::consts::PI * c).ln();
        assert!((got[i] - want).abs() < 1e-10, "{} vs {want}", got[i]);
    }
    assert_eq!(values(&p.mean()), m);
}

#[test]
fn learned_variance_gaussian_matches_the_formula_and_clamps_the_log_variance() {
    let (lo, hi) = GAUSSIAN_LOG_VAR_RANGE;
    // One example, D = 4: means, then raw log-variances (two of them outside the range).
    let means = [0.1, 0.5, 0.9, 0.0];
    let raw_log_var = [0.0, -2.0, -50.0, 30.0];
    let x = [0.2, 0.5, 0.85, 1.0];
    let outputs = matrix(&[means, raw_log_var].concat(), 1);
    let p = Likelihood::GaussianLearned.distribution(&outputs).unwrap();
    let got = values(&p.log_prob(&matrix(&x, 1)).unwrap())[0];
    let want: f64 = (0..4)
        .map(|j| {
            let lv = raw_log_var[j].clamp(lo, hi);
            -0.5 * ((x[j] - means[j]).powi(2) / lv.exp() + lv + LN_2PI)
        })
        .sum();
    assert!((got - want).abs() < 1e-9, "{got} vs {want}");
    match &p {
        DecoderDistribution::GaussianLearned { log_var, .. } => {
            assert_eq!(values(log_var), vec![0.0, -2.0, lo, hi]);
        }
        other => panic!("expected a learned-variance Gaussian, got {other:?}"),
    }
}

/// `P(level k)` of the discretised logistic in f64, straight from the logistic CDF.
fn logistic_bin_probability(k: u32, bins: u32, mu: f64, log_s: f64) -> f64 {
    let h = 0.5 / f64::from(bins - 1);
    let x = f64::from(k) / f64::from(bins - 1);
    let s = log_s.exp();
    let upper = if k == bins - 1 {
        1.0
    } else {
        sigmoid((x + h - mu) / s)
    };
    let lower = if k == 0 {
        0.0
    } else {
        sigmoid((x - h - mu) / s)
    };
    upper - lower
}

/// The discretised logistic with one pixel, evaluated at every level: `[bins]` log-probabilities.
fn all_levels(bins: u32, mu: f64, log_s: f64, kind: Kind) -> Tensor {
    let n = i64::from(bins);
    let x = Tensor::arange(n, (Kind::Double, Device::Cpu)) / f64::from(bins - 1);
    let p = DecoderDistribution::DiscretizedLogistic {
        location: Tensor::full([n, 1], mu, (kind, Device::Cpu)),
        log_scale: Tensor::full([n, 1], log_s, (kind, Device::Cpu)),
        bins,
    };
    p.log_prob(&x.view([n, 1]).to_kind(kind)).unwrap()
}

#[test]
fn discretized_logistic_probabilities_of_all_levels_sum_to_one() {
    for kind in [Kind::Float, Kind::Double] {
        for (mu, log_s) in [
            (0.3, -2.0),
            (0.5, -7.0),
            (0.02, -4.5),
            (0.999, -3.0),
            (-0.4, -1.0),
            (1.7, 0.0),
            (0.5, 3.0),
        ] {
            let log_p = all_levels(256, mu, log_s, kind);
            assert!(log_p.isfinite().all().int64_value(&[]) == 1);
            let total = log_p.to_kind(Kind::Double).exp().sum(Kind::Double);
            let total = total.double_value(&[]);
            assert!(
                (total - 1.0).abs() < 1e-4,
                "{kind:?} mu {mu} log_s {log_s}: total {total}"
            );
        }
        // Binary data: two levels.
        let total = all_levels(2, 0.3, -1.0, kind)
            .exp()
            .sum(Kind::Double)
            .double_value(&[]);
        assert!((total - 1.0).abs() < 1e-6);
    }
}

#[test]
fn discretized_logistic_levels_match_cdf_differences() {
    for (mu, log_s) in [(0.3, -2.0), (0.6, -4.0), (0.01, -5.0), (0.98, -3.5)] {
        let log_p = values(&all_levels(256, mu, log_s, Kind::Double));
        for k in [0u32, 1, 3, 77, 128, 200, 254, 255] {
            let want = logistic_bin_probability(k, 256, mu, log_s);
            let got = log_p[k as usize].exp();
            assert!(
                (got - want).abs() <= 1e-12 + 1e-9 * want,
                "mu {mu} log_s {log_s} level {k}: {got} vs {want}"
            );
        }
        // Single precision: the log-probability of a likely level to 1e-4 relative.
        let got32 = values(&all_levels(256, mu, log_s, Kind::Float));
        let k = (mu.clamp(0.0, 1.0) * 255.0).round() as usize;
        let want = logistic_bin_probability(k as u32, 256, mu, log_s).ln();
        assert!((got32[k] - want).abs() < 1e-4 * want.abs().max(1.0));
    }
}

#[test]
fn discretized_logistic_is_stable_far_from_the_data() {
    // Locations far outside [0, 1] and the smallest scale: P is tiny but log P finite, and its
    // gradient too.
    let (lo, _) = LOGISTIC_LOG_SCALE_RANGE;
    let location = Tensor::from_slice(&[30.0f32, -30.0, 0.5, 0.5])
        .view([1, 4])
        .set_requires_grad(true);
    let log_scale = Tensor::full([1, 4], lo, (Kind::Float, Device::Cpu)).set_requires_grad(true);
    let p = DecoderDistribution::DiscretizedLogistic {
        location: location.shallow_clone(),
        log_scale: log_scale.shallow_clone(),
        bins: 256,
    };
    let x = Tensor::from_slice(&[0.0f32, 1.0, 0.0, 128.0 / 255.0]).view([1, 4]);
    let per_dim = p.log_prob_elementwise(&x).unwrap();
    let v = values(&per_dim);
    assert!(v.iter().all(|v| v.is_finite()), "{v:?}");
    // Level 0 with μ = 30, s = e⁻⁷: log σ(a) ≈ a = (h − 30)/s.
    let s = lo.exp();
    let a = (0.5 / 255.0 - 30.0) / s;
    assert!((v[0] - a).abs() < 1e-3 * a.abs(), "{} vs {a}", v[0]);
    per_dim.sum(Kind::Float).backward();
    for g in [location.grad(), log_scale.grad()] {
        assert!(g.isfinite().all().int64_value(&[]) == 1);
    }
}

#[test]
fn distributions_reject_mismatched_data() {
    let p = Likelihood::Bernoulli
        .distribution(&Tensor::zeros([2, 3], (Kind::Float, Device::Cpu)))
        .unwrap();
    let err = p
        .log_prob(&Tensor::zeros([2, 4], (Kind::Float, Device::Cpu)))
        .unwrap_err()
        .to_string();
    assert!(err.contains("[2, 4]") && err.contains("[2, 3]"), "{err}");
    let err = Likelihood::GaussianLearned
        .distribution(&Tensor::zeros([2, 3], (Kind::Float, Device::Cpu)))
        .unwrap_err()
        .to_string();
    assert!(err.contains("gaussian_learned"), "{err}");
}

#[test]
fn samples_lie_where_the_distribution_lives() {
    tch::manual_seed(3);
    let loc = Tensor::rand([50, 20], (Kind::Float, Device::Cpu));
    let bern = DecoderDistribution::Bernoulli {
        logits: loc.shallow_clone(),
    }
    .sample();
    assert!(bern.eq_tensor(&bern.round()).all().int64_value(&[]) == 1);
    let logistic = DecoderDistribution::DiscretizedLogistic {
        location: loc.shallow_clone(),
        log_scale: Tensor::full([50, 20], -3.0, (Kind::Float, Device::Cpu)),
        bins: 256,
    }
    .sample();
    let levels = &logistic * 255.0;
    assert!((&levels - levels.round()).abs().max().double_value(&[]) < 1e-3);
    assert!(logistic.min().double_value(&[]) >= 0.0 && logistic.max().double_value(&[]) <= 1.0);
    // The Gaussian sample mean is near the mean.
    let gauss = DecoderDistribution::Gaussian {
        mean: Tensor::full([2000, 1], 0.25, (Kind::Double, Device::Cpu)),
        variance: 0.01,
    }
    .sample();
    assert!((gauss.mean(Kind::Double).double_value(&[]) - 0.25).abs() < 0.01);
}
