//! The EM fit against closed forms and known mixtures.

use super::*;

fn normal(n: i64, d: i64, seed: i64) -> Tensor {
    tch::manual_seed(seed);
    Tensor::randn([n, d], (Kind::Double, Device::Cpu))
}

fn value(t: &Tensor) -> f64 {
    t.double_value(&[])
}

/// The three separated 2-d clusters of [`three_clusters`] (weights 0.5, 0.3, 0.2).
fn cluster_parts() -> [Tensor; 3] {
    let a = normal(1500, 2, 1) * 0.5 + Tensor::from_slice(&[-6.0, 0.0]);
    let b = normal(900, 2, 2) * Tensor::from_slice(&[1.0, 0.3]) + Tensor::from_slice(&[6.0, 0.0]);
    let c = normal(600, 2, 3) * 0.8 + Tensor::from_slice(&[0.0, 7.0]);
    [a, b, c]
}

/// Three separated 2-d clusters with weights 0.5, 0.3, 0.2.
fn three_clusters() -> Tensor {
    Tensor::cat(&cluster_parts(), 0)
}

fn options(k: usize, covariance: CovarianceKind) -> GmmOptions {
    GmmOptions {
        components: k,
        covariance,
        regularization: 0.0,
        ..Default::default()
    }
}

#[test]
fn one_component_is_the_sample_mean_and_covariance_and_its_closed_form_density() {
    let _rng = crate::torch_rng_lock();
    let x = normal(500, 2, 0) * Tensor::from_slice(&[1.0, 2.0]) + Tensor::from_slice(&[1.0, -1.0]);
    let x = Tensor::cat(
        &[
            x.narrow(1, 0, 1),
            x.narrow(1, 0, 1) * 0.5 + x.narrow(1, 1, 1),
        ],
        1,
    );
    let (gmm, report) = GaussianMixture::fit(&x, &options(1, CovarianceKind::Full)).unwrap();
    assert!(report.converged);
    let mean = x.mean_dim(0, false, Kind::Double);
    let centred = &x - &mean;
    let cov = centred.tr().matmul(&centred) / 500.0;
    assert!(gmm.means().get(0).allclose(&mean, 1e-10, 1e-10, false));
    assert!(gmm.covariance().get(0).allclose(&cov, 1e-10, 1e-10, false));
    // The 2-d normal density by hand.
    let c: Vec<f64> = Vec::try_from(cov.view([-1])).unwrap();
    let m: Vec<f64> = Vec::try_from(&mean).unwrap();
    let det = c[0] * c[3] - c[1] * c[2];
    let inv = [c[3] / det, -c[1] / det, -c[2] / det, c[0] / det];
    let points: Vec<f64> = Vec::try_from(x.narrow(0, 0, 5).reshape([-1])).unwrap();
    let lp: Vec<f64> = Vec::try_from(gmm.log_prob(&x.narrow(0, 0, 5)).unwrap()).unwrap();
    for i in 0..5 {
        let (u, v) = (points[2 * i] - m[0], points[2 * i + 1] - m[1]);
        let maha = u * (inv[0] * u + inv[1] * v) + v * (inv[2] * u + inv[3] * v);
        let expected = -0.5 * maha - (2.0 * std::f64::consts::PI).ln() - 0.5 * det.ln();
        assert!((lp[i] - expected).abs() < 1e-10, "{} vs {expected}", lp[i]);
    }
}

#[test]
fn three_separated_components_are_recovered_with_either_covariance() {
    let _rng = crate::torch_rng_lock();
    let x = three_clusters();
    for kind in [CovarianceKind::Full, CovarianceKind::Diagonal] {
        let (gmm, report) = GaussianMixture::fit(&x, &options(3, kind)).unwrap();
        assert!(report.converged, "{kind:?}");
        let w: Vec<f64> = Vec::try_from(gmm.weights()).unwrap();
        let means: Vec<f64> = Vec::try_from(gmm.means().reshape([-1])).unwrap();
        let mut found: Vec<(f64, f64, f64)> = (0..3)
            .map(|j| (means[2 * j], means[2 * j + 1], w[j]))
            .collect();
        found.sort_by(|a, b| (a.0 + a.1 * 0.1).partial_cmp(&(b.0 + b.1 * 0.1)).unwrap());
        // Each cluster's own sample mean is the answer for these draws (the clusters are
        // far apart, so every point belongs to its own component almost surely).
        let [a, b, c] = cluster_parts();
        let expected: Vec<(f64, f64, f64)> = [(a, 0.5), (c, 0.2), (b, 0.3)]
            .iter()
            .map(|(part, w)| {
                let m: Vec<f64> = Vec::try_from(part.mean_dim(0, false, Kind::Double)).unwrap();
                (m[0], m[1], *w)
            })
            .collect();
        for (f, e) in found.iter().zip(expected) {
            assert!(
                (f.0 - e.0).abs() < 1e-3 && (f.1 - e.1).abs() < 1e-3,
                "{kind:?} {f:?} vs {e:?}"
            );
            assert!((f.2 - e.2).abs() < 1e-3, "{kind:?} {f:?} vs {e:?}");
        }
    }
}

#[test]
fn the_log_likelihood_never_decreases() {
    let _rng = crate::torch_rng_lock();
    let x = three_clusters();
    for kind in [CovarianceKind::Full, CovarianceKind::Diagonal] {
        let (_, report) = GaussianMixture::fit(&x, &options(5, kind)).unwrap();
        for pair in report.log_likelihood.windows(2) {
            assert!(pair[1] >= pair[0] - 1e-9, "{kind:?}: {pair:?}");
        }
    }
}

#[test]
fn a_diagonal_fit_of_axis_aligned_data_matches_the_full_fits_diagonal() {
    let _rng = crate::torch_rng_lock();
    let x = normal(2000, 3, 9) * Tensor::from_slice(&[0.5, 1.0, 2.0]);
    let (full, _) = GaussianMixture::fit(&x, &options(1, CovarianceKind::Full)).unwrap();
    let (diag, _) = GaussianMixture::fit(&x, &options(1, CovarianceKind::Diagonal)).unwrap();
    let full_diag = full.covariance().get(0).diagonal(0, 0, 1);
    assert!(diag
        .covariance()
        .get(0)
        .allclose(&full_diag, 1e-9, 1e-9, false));
}

#[test]
fn samples_have_the_mixtures_moments_and_repeat_for_a_seed() {
    let _rng = crate::torch_rng_lock();
    let x = three_clusters();
    let (gmm, _) = GaussianMixture::fit(&x, &options(3, CovarianceKind::Full)).unwrap();
    tch::manual_seed(123);
    let z = gmm.sample(20_000, 4).unwrap();
    tch::manual_seed(999);
    assert!(
        z.equal(&gmm.sample(20_000, 4).unwrap()),
        "global generator ignored"
    );
    assert!(!z.equal(&gmm.sample(20_000, 5).unwrap()));
    // The mixture's mean Σ w μ and its per-axis variance, against the draws'.
    let w = gmm.weights().unsqueeze(1);
    let mean = (&w * gmm.means()).sum_dim_intlist(0, false, Kind::Double);
    let second = (&w * (gmm.covariance().diagonal(0, 1, 2) + gmm.means().square()))
        .sum_dim_intlist(0, false, Kind::Double);
    let var = second - mean.square();
    let sample_mean = z.mean_dim(0, false, Kind::Double);
    let se = (&var / 20_000.0).sqrt();
    let z_scores = ((sample_mean - &mean) / se).abs();
    assert!(value(&z_scores.max()) < 3.0, "{z_scores}");
    let sample_var = z.var_dim(0, false, false);
    assert!(
        sample_var.allclose(&var, 0.03, 0.0, false),
        "{sample_var} vs {var}"
    );
}

#[test]
fn the_same_seed_gives_the_same_fit() {
    let _rng = crate::torch_rng_lock();
    let x = three_clusters();
    let a = GaussianMixture::fit(&x, &options(4, CovarianceKind::Full))
        .unwrap()
        .0;
    let b = GaussianMixture::fit(&x, &options(4, CovarianceKind::Full))
        .unwrap()
        .0;
    assert!(a.means().equal(b.means()) && a.covariance().equal(b.covariance()));
}

#[test]
fn named_tensors_round_trip() {
    let _rng = crate::torch_rng_lock();
    let x = three_clusters();
    for kind in [CovarianceKind::Full, CovarianceKind::Diagonal] {
        let (gmm, _) = GaussianMixture::fit(&x, &options(3, kind)).unwrap();
        let back = GaussianMixture::from_named_tensors(&gmm.to_named_tensors()).unwrap();
        assert_eq!(back.covariance_kind(), kind);
        let probe = x.narrow(0, 0, 10);
        assert!(back.log_prob(&probe).unwrap().allclose(
            &gmm.log_prob(&probe).unwrap(),
            1e-12,
            1e-12,
            false
        ));
    }
    let mut named = GaussianMixture::fit(&x, &options(2, CovarianceKind::Full))
        .unwrap()
        .0
        .to_named_tensors();
    named[2].1 = Tensor::zeros([2, 5], (Kind::Double, Device::Cpu));
    let err = GaussianMixture::from_named_tensors(&named)
        .unwrap_err()
        .to_string();
    assert!(err.contains("gmm.covariance"), "{err}");
    let _ = named.remove(0);
    let err = GaussianMixture::from_named_tensors(&named)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("gmm.weights") && err.contains("missing"),
        "{err}"
    );
}

#[test]
fn bad_input_is_an_error_naming_it() {
    let _rng = crate::torch_rng_lock();
    let x = normal(10, 2, 0);
    let err = |x: &Tensor, o: GmmOptions| GaussianMixture::fit(x, &o).unwrap_err().to_string();
    assert!(err(&x, options(0, CovarianceKind::Full)).contains("components"));
    assert!(err(&x, options(11, CovarianceKind::Full)).contains("1..=10"));
    assert!(err(&x.view([-1]), options(1, CovarianceKind::Full)).contains("[N, d]"));
    assert!(err(&x.narrow(0, 0, 0), options(1, CovarianceKind::Full)).contains("empty"));
    let nan = x.copy();
    let _ = nan.get(3).get(1).fill_(f64::NAN);
    assert!(err(&nan, options(1, CovarianceKind::Full)).contains("NaN"));
    // Identical points with no regularisation: not positive definite.
    let flat = Tensor::ones([10, 2], (Kind::Double, Device::Cpu));
    assert!(err(&flat, options(1, CovarianceKind::Full)).contains("positive definite"));
    let (gmm, _) = GaussianMixture::fit(&x, &options(2, CovarianceKind::Full)).unwrap();
    assert!(gmm
        .log_prob(&normal(3, 4, 1))
        .unwrap_err()
        .to_string()
        .contains("[N, 2]"));
    assert!(gmm
        .sample(0, 1)
        .unwrap_err()
        .to_string()
        .contains("at least 1"));
}
