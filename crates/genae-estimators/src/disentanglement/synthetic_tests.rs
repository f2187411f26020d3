//! The sampling metrics on synthetic ground truths whose answer is known by construction:
//! codes that are the factors up to permutation and scale, codes independent of the factors,
//! and a code dimension mixing two factors.

use rand::{Rng, SeedableRng};

use super::*;
use crate::{EstimatorError, Result};

/// A standard normal draw (Box–Muller).
fn gauss(rng: &mut ChaCha8Rng) -> f64 {
    let u: f64 = 1.0 - rng.gen::<f64>();
    let v: f64 = rng.gen();
    (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
}

/// Factors of the given sizes, and codes computed per example from its factor vector with a
/// noise generator of the oracle's own; records the largest call.
struct Synthetic {
    sizes: Vec<u32>,
    code: fn(&[u32], &mut ChaCha8Rng) -> Vec<f64>,
    noise: ChaCha8Rng,
    largest_call: usize,
}

impl Synthetic {
    fn new(sizes: &[u32], code: fn(&[u32], &mut ChaCha8Rng) -> Vec<f64>) -> Self {
        Self {
            sizes: sizes.to_vec(),
            code,
            noise: ChaCha8Rng::seed_from_u64(99),
            largest_call: 0,
        }
    }
}

impl GroundTruth for Synthetic {
    fn factor_sizes(&self) -> Vec<u32> {
        self.sizes.clone()
    }

    fn codes(&mut self, factors: &[Vec<u32>]) -> Result<Vec<Vec<f64>>> {
        let n = factors[0].len();
        self.largest_call = self.largest_call.max(n);
        let rows: Vec<Vec<f64>> = (0..n)
            .map(|i| {
                let f: Vec<u32> = factors.iter().map(|c| c[i]).collect();
                (self.code)(&f, &mut self.noise)
            })
            .collect();
        Ok((0..rows[0].len())
            .map(|j| rows.iter().map(|r| r[j]).collect())
            .collect())
    }
}

/// Factors of sizes 3, 6, 10; the codes are factor 2 × 0.5, a noise dimension, factor 0 × −2
/// + 1 and factor 1 × 3, each factor jittered by 0.1 of its class spacing.
fn disentangled() -> Synthetic {
    Synthetic::new(&[3, 6, 10], |f, rng| {
        let mut jitter = |k: usize| f64::from(f[k]) + 0.1 * gauss(rng);
        let (a, b, c) = (jitter(0), jitter(1), jitter(2));
        vec![0.5 * c, gauss(rng), -2.0 * a + 1.0, 3.0 * b]
    })
}

/// Factors of sizes 3, 6, 10; four standard normal codes independent of them.
fn independent() -> Synthetic {
    Synthetic::new(&[3, 6, 10], |_, rng| (0..4).map(|_| gauss(rng)).collect())
}

/// Factors of sizes 5, 5, 8; code 0 is factor 0 + factor 1 (one dimension carrying two
/// factors equally), code 1 is factor 2, code 2 is noise.
fn mixed() -> Synthetic {
    Synthetic::new(&[5, 5, 8], |f, rng| {
        let v = |k: usize| f64::from(f[k]);
        vec![
            v(0) + v(1) + 0.1 * gauss(rng),
            v(2) + 0.1 * gauss(rng),
            gauss(rng),
        ]
    })
}

fn beta_options() -> BetaVaeOptions {
    BetaVaeOptions {
        num_train: 600,
        num_eval: 600,
        ..Default::default()
    }
}

fn factor_options() -> FactorVaeOptions {
    FactorVaeOptions {
        num_train: 600,
        num_eval: 600,
        num_variance_estimate: 5_000,
        ..Default::default()
    }
}

fn dci_options() -> DciOptions {
    DciOptions {
        num_train: 20_000,
        num_test: 5_000,
        ..Default::default()
    }
}

#[test]
fn defaults_follow_disentanglement_lib() {
    let _rng = crate::torch_rng_lock();
    let b = BetaVaeOptions::default();
    assert_eq!((b.batch_size, b.num_train, b.num_eval), (64, 10_000, 5_000));
    let f = FactorVaeOptions::default();
    assert_eq!(
        (
            f.batch_size,
            f.num_train,
            f.num_eval,
            f.num_variance_estimate
        ),
        (64, 10_000, 5_000, 10_000)
    );
    assert_eq!(f.prune_threshold, 0.05);
    let d = DciOptions::default();
    assert_eq!(
        (d.num_train, d.num_test, d.lasso.alpha),
        (10_000, 5_000, 0.02)
    );
    assert_eq!(
        MigOptions::default(),
        MigOptions {
            num_train: 10_000,
            bins: 20
        }
    );
    assert_eq!(SapOptions::default().num_train, 10_000);
}

#[test]
fn beta_vae_score_is_one_for_disentangled_codes_and_chance_for_independent_ones() {
    let _rng = crate::torch_rng_lock();
    let mut gt = disentangled();
    let good = beta_vae_score(&mut gt, &beta_options(), 1).unwrap();
    assert!(good.score > 0.99 && good.train_accuracy > 0.99, "{good:?}");
    // 2 × 64 vectors per point: the calls are grouped up to the cap.
    assert_eq!(gt.largest_call, MAX_CODES_PER_CALL);
    // Independent codes carry nothing about which factor was shared: chance, 1/3.
    let noise = beta_vae_score(&mut independent(), &beta_options(), 2).unwrap();
    assert!((noise.score - 1.0 / 3.0).abs() < 0.07, "{noise:?}");
    // Code 0 = factor 0 + factor 1: fixing either leaves the same feature distribution, so
    // the classifier can only guess between them: 1/3 · 1 + 2/3 · 1/2 = 2/3.
    let mix = beta_vae_score(&mut mixed(), &beta_options(), 3).unwrap();
    assert!((mix.score - 2.0 / 3.0).abs() < 0.07, "{mix:?}");
}

#[test]
fn factor_vae_score_is_one_for_disentangled_codes_and_chance_for_independent_ones() {
    let _rng = crate::torch_rng_lock();
    let good = factor_vae_score(&mut disentangled(), &factor_options(), 1).unwrap();
    assert_eq!((good.score, good.train_accuracy), (1.0, 1.0), "{good:?}");
    assert_eq!(good.num_active_dims, 4);
    // Dimension 0 is factor 2, 2 is factor 0, 3 is factor 1; the noise dimension gets no vote.
    assert_eq!(good.classifier, vec![Some(2), None, Some(0), Some(1)]);
    assert!(
        (good.global_variances[0] - 0.25 * 8.26).abs() < 0.2,
        "{good:?}"
    );
    let noise = factor_vae_score(&mut independent(), &factor_options(), 2).unwrap();
    assert!((noise.score - 1.0 / 3.0).abs() < 0.07, "{noise:?}");
    // Factors 0 and 1 both vote for code 0 and the majority takes one: 2/3 of the votes right.
    let mix = factor_vae_score(&mut mixed(), &factor_options(), 3).unwrap();
    assert!((mix.score - 2.0 / 3.0).abs() < 0.07, "{mix:?}");
    assert_eq!(mix.classifier[1], Some(2));
}

#[test]
fn factor_vae_prunes_collapsed_dimensions_and_scores_zero_without_active_ones() {
    let _rng = crate::torch_rng_lock();
    // A collapsed dimension (std 0.01 < 0.05) and a constant one beside two good ones.
    let mut gt = Synthetic::new(&[4, 7], |f, rng| {
        vec![
            0.01 * gauss(rng),
            f64::from(f[1]) + 0.1 * gauss(rng),
            3.0,
            f64::from(f[0]) + 0.1 * gauss(rng),
        ]
    });
    let score = factor_vae_score(&mut gt, &factor_options(), 4).unwrap();
    assert_eq!(score.num_active_dims, 2);
    assert_eq!(score.score, 1.0, "{score:?}");
    assert_eq!(score.classifier, vec![None, Some(1), None, Some(0)]);
    assert!(score.train_votes[0]
        .iter()
        .chain(&score.train_votes[2])
        .all(|&v| v == 0));
    // Everything collapsed: no votes, all zero, said so.
    let mut flat = Synthetic::new(&[4, 7], |_, rng| vec![0.01 * gauss(rng), 0.0]);
    let none = factor_vae_score(&mut flat, &factor_options(), 5).unwrap();
    assert_eq!(none.num_active_dims, 0);
    assert_eq!(
        (none.score, none.train_accuracy, none.eval_accuracy),
        (0.0, 0.0, 0.0)
    );
    assert_eq!(none.classifier, vec![None, None]);
}

#[test]
fn dci_is_one_for_disentangled_codes() {
    let _rng = crate::torch_rng_lock();
    let score = dci_from_ground_truth(&mut disentangled(), &dci_options(), 1).unwrap();
    assert!(score.disentanglement > 0.99, "{score:?}");
    assert!(
        score.completeness > 0.99 && score.completeness_weighted > 0.99,
        "{score:?}"
    );
    assert!(score.converged);
    // The noise dimension gets no weight; each factor is read off its own dimension.
    assert!(score.importance[1].iter().all(|&w| w == 0.0), "{score:?}");
    for (j, k) in [(0, 2), (2, 0), (3, 1)] {
        assert!(score.importance[j][k] > 0.9, "{score:?}");
    }
    // NRMSE of a code = factor + 0.1 jitter: √(1 − ρ²) with ρ² = σ²/(σ² + 0.01), plus α.
    for (k, var) in [(0, 8.0 / 12.0), (1, 35.0 / 12.0), (2, 99.0 / 12.0)] {
        let want = (0.01f64 / (var + 0.01)).sqrt();
        assert!((score.nrmse_test[k] - want).abs() < 0.03, "{k}: {score:?}");
    }
}

#[test]
fn dci_is_zero_or_chance_for_codes_independent_of_the_factors() {
    let _rng = crate::torch_rng_lock();
    // With 20 000 examples chance correlations are ~0.007, far below α = 0.02: the Lasso keeps
    // no weight, the importance is all zero and D = C = 0, NRMSE = 1.
    let score = dci_from_ground_truth(&mut independent(), &dci_options(), 2).unwrap();
    assert!(
        score.importance.iter().flatten().all(|&w| w == 0.0),
        "{score:?}"
    );
    assert_eq!((score.disentanglement, score.completeness), (0.0, 0.0));
    assert!((score.informativeness - 1.0).abs() < 0.02, "{score:?}");
    // Least squares (α = 0) keeps every chance weight: the importance is spread at random
    // and D, C are at chance level (≈ 0.17 for 3 factors and 4 dimensions).
    let options = DciOptions {
        lasso: LassoOptions {
            alpha: 0.0,
            ..Default::default()
        },
        ..dci_options()
    };
    let ls = dci_from_ground_truth(&mut independent(), &options, 2).unwrap();
    assert!(
        ls.importance.iter().flatten().all(|&w| w > 0.0 && w < 0.03),
        "{ls:?}"
    );
    assert!(ls.disentanglement < 0.3 && ls.completeness < 0.3, "{ls:?}");
}

#[test]
fn dci_disentanglement_drops_where_one_code_carries_two_factors() {
    let _rng = crate::torch_rng_lock();
    let score = dci_from_ground_truth(&mut mixed(), &dci_options(), 3).unwrap();
    // Standardised, code 0 correlates ρ = √(2 / 4.01) with factors 0 and 1 and code 1
    // ρ₂ = √(5.25 / 5.26) with factor 2; the Lasso weights are ρ − α. Code 0's row is split
    // evenly over two of three factors: D₀ = 1 − ln 2 / ln 3; code 1's is pure.
    let (w, w2) = (
        (2.0f64 / 4.01).sqrt() - 0.02,
        (5.25f64 / 5.26).sqrt() - 0.02,
    );
    let d0 = 1.0 - 2f64.ln() / 3f64.ln();
    let want = (2.0 * w * d0 + w2) / (2.0 * w + w2);
    assert!(
        (score.disentanglement_per_code[0] - d0).abs() < 0.01,
        "{score:?}"
    );
    assert!(
        (score.disentanglement - want).abs() < 0.02,
        "{} vs {want}",
        score.disentanglement
    );
    // Each factor still lives in one code: completeness stays 1.
    assert!(score.completeness > 0.99, "{score:?}");
    // Factors 0 and 1 are half explained by code 0: NRMSE ≈ √(1 − ρ²) ≈ 0.71.
    assert!((score.nrmse_test[0] - 0.71).abs() < 0.03, "{score:?}");
    assert!((score.nrmse_test[1] - 0.71).abs() < 0.03, "{score:?}");
}

#[test]
fn mig_and_sap_from_ground_truth_see_the_same_three_cases() {
    let _rng = crate::torch_rng_lock();
    let mig = MigOptions {
        num_train: 5_000,
        ..Default::default()
    };
    let sap = SapOptions { num_train: 5_000 };
    let good = mig_from_ground_truth(&mut disentangled(), &mig, 1).unwrap();
    assert!(good.score > 0.9, "{good:?}");
    assert!(
        sap_from_ground_truth(&mut disentangled(), &sap, 1)
            .unwrap()
            .score
            > 0.95
    );
    let noise = mig_from_ground_truth(&mut independent(), &mig, 2).unwrap();
    assert!(noise.score < 0.05, "{noise:?}");
    assert!(
        sap_from_ground_truth(&mut independent(), &sap, 2)
            .unwrap()
            .score
            < 0.02
    );
    // Code 0 = factor 0 + factor 1 (sizes 5): I(z₀; v₀) = H(v₀ + v₁) − H(v₁), a fraction of
    // H(v₀) = ln 5; the sum of two uniform 5-class factors has counts 1,2,3,4,5,4,3,2,1 of 25.
    let counts = [1.0f64, 2.0, 3.0, 4.0, 5.0, 4.0, 3.0, 2.0, 1.0];
    let h_sum: f64 = counts.iter().map(|c| -(c / 25.0) * (c / 25.0).ln()).sum();
    let want = (h_sum - 5f64.ln()) / 5f64.ln();
    let mix = mig_from_ground_truth(&mut mixed(), &mig, 3).unwrap();
    assert!(
        (mix.gaps[0] - want).abs() < 0.03 && (mix.gaps[1] - want).abs() < 0.03,
        "{mix:?}"
    );
    assert!(mix.gaps[2] > 0.9, "{mix:?}");
    // SAP: code 0 explains R² = 2/4.01 of factors 0 and 1, code 1 all of factor 2.
    let sap_mix = sap_from_ground_truth(&mut mixed(), &sap, 3).unwrap();
    assert!(
        (sap_mix.score - (2.0 * 2.0 / 4.01 + 1.0) / 3.0).abs() < 0.03,
        "{sap_mix:?}"
    );
}

#[test]
fn metrics_repeat_exactly_for_a_seed() {
    let _rng = crate::torch_rng_lock();
    let options = BetaVaeOptions {
        num_train: 100,
        num_eval: 100,
        ..Default::default()
    };
    let a = beta_vae_score(&mut mixed(), &options, 7).unwrap();
    assert_eq!(a, beta_vae_score(&mut mixed(), &options, 7).unwrap());
    let options = FactorVaeOptions {
        num_train: 100,
        num_eval: 100,
        num_variance_estimate: 500,
        ..Default::default()
    };
    let a = factor_vae_score(&mut mixed(), &options, 7).unwrap();
    assert_eq!(a, factor_vae_score(&mut mixed(), &options, 7).unwrap());
    assert_ne!(
        a.train_votes,
        factor_vae_score(&mut mixed(), &options, 8)
            .unwrap()
            .train_votes
    );
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let first = sample_codes(&mut mixed(), 50, &mut rng).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    assert_eq!(first, sample_codes(&mut mixed(), 50, &mut rng).unwrap());
}

/// A ground truth that misbehaves in the way `fault` says.
struct Faulty {
    fault: &'static str,
}

impl GroundTruth for Faulty {
    fn factor_sizes(&self) -> Vec<u32> {
        match self.fault {
            "no factors" => vec![],
            "empty factor" => vec![3, 0],
            _ => vec![3, 4],
        }
    }

    fn sample_factors(&self, n: usize, rng: &mut ChaCha8Rng) -> Vec<Vec<u32>> {
        let mut f = uniform_factors(&self.factor_sizes(), n, rng);
        if self.fault == "class out of range" {
            f[1][0] = 4;
        }
        f
    }

    fn codes(&mut self, factors: &[Vec<u32>]) -> Result<Vec<Vec<f64>>> {
        let n = factors[0].len();
        match self.fault {
            "model" => Err(EstimatorError::InvalidArgument {
                name: "encoder",
                reason: "out of memory".into(),
            }),
            "short codes" => Ok(vec![vec![0.0; n - 1], vec![0.0; n - 1]]),
            "nan" => Ok(vec![vec![f64::NAN; n], vec![0.0; n]]),
            _ => Ok(factors
                .iter()
                .map(|c| c.iter().map(|&v| f64::from(v)).collect())
                .collect()),
        }
    }
}

#[test]
fn bad_arguments_and_bad_oracles_are_errors_naming_them() {
    let _rng = crate::torch_rng_lock();
    let err = |r: Result<BetaVaeScore>| r.unwrap_err().to_string();
    let ok = || Faulty { fault: "" };
    let beta = |batch_size| BetaVaeOptions {
        batch_size,
        num_train: 10,
        num_eval: 10,
        ..Default::default()
    };
    assert!(err(beta_vae_score(&mut ok(), &beta(0), 0)).contains("`batch_size`"));
    let no_eval = BetaVaeOptions {
        num_eval: 0,
        ..beta(4)
    };
    assert!(err(beta_vae_score(&mut ok(), &no_eval, 0)).contains("`num_eval`"));
    let no_c = BetaVaeOptions {
        inverse_regularization: 0.0,
        ..beta(4)
    };
    assert!(err(beta_vae_score(&mut ok(), &no_c, 0)).contains("`inverse_regularization`"));
    for (fault, says) in [
        ("no factors", "no factors"),
        ("empty factor", "factor 1 has no classes"),
        ("class out of range", "class 4 of factor 1"),
        ("short codes", "values of code dimension 0"),
        ("nan", "non-finite"),
    ] {
        let e = err(beta_vae_score(&mut Faulty { fault }, &beta(4), 0));
        assert!(
            e.contains("`ground_truth`") && e.contains(says),
            "{fault}: {e}"
        );
    }
    // The oracle's own error comes through unchanged.
    let e = err(beta_vae_score(&mut Faulty { fault: "model" }, &beta(4), 0));
    assert_eq!(e, "invalid argument `encoder`: out of memory");
    let small = FactorVaeOptions {
        batch_size: 1,
        ..factor_options()
    };
    let e = factor_vae_score(&mut ok(), &small, 0)
        .unwrap_err()
        .to_string();
    assert!(e.contains("`batch_size`"), "{e}");
    let nan = FactorVaeOptions {
        prune_threshold: f64::NAN,
        ..factor_options()
    };
    let e = factor_vae_score(&mut ok(), &nan, 0)
        .unwrap_err()
        .to_string();
    assert!(e.contains("`prune_threshold`"), "{e}");
    let few = DciOptions {
        num_test: 1,
        ..dci_options()
    };
    let e = dci_from_ground_truth(&mut ok(), &few, 0)
        .unwrap_err()
        .to_string();
    assert!(e.contains("`num_test`"), "{e}");
    let e = mig_from_ground_truth(
        &mut ok(),
        &MigOptions {
            num_train: 0,
            bins: 20,
        },
        0,
    )
    .unwrap_err();
    assert!(e.to_string().contains("`num_train`"), "{e}");
    let e = sap_from_ground_truth(&mut Faulty { fault: "model" }, &SapOptions::default(), 0);
    assert!(e.unwrap_err().to_string().contains("`encoder`"));
}

#[test]
fn dci_rejects_mismatched_or_degenerate_arrays_naming_them() {
    let _rng = crate::torch_rng_lock();
    let f: Vec<Vec<u32>> = vec![
        (0..40).map(|i| i % 4).collect(),
        (0..40).map(|i| i / 10).collect(),
    ];
    let codes: Vec<Vec<f64>> = f
        .iter()
        .map(|c| c.iter().map(|&v| f64::from(v)).collect())
        .collect();
    let o = LassoOptions::default();
    let err = |r: Result<DciScore>| r.unwrap_err().to_string();
    assert!(err(dci(&[], &f, &codes, &f, &o)).contains("`train_codes`"));
    assert!(err(dci(&codes, &f, &codes, &f[..1], &o)).contains("`test_factors`"));
    assert!(err(dci(&codes, &f, &codes[..1], &f, &o)).contains("`test_codes`"));
    assert!(err(dci(&codes[..1], &f, &codes, &f, &o)).contains("2 code dimensions"));
    assert!(err(dci(&codes, &f[..1], &codes, &f[..1], &o)).contains("2 factors"));
    let short: Vec<Vec<u32>> = f.iter().map(|c| c[..30].to_vec()).collect();
    let e = err(dci(&codes, &f, &codes, &short, &o));
    assert!(e.contains("`test_factors`") && e.contains("30"), "{e}");
    let constant = vec![f[0].clone(), vec![2; 40]];
    assert!(err(dci(&codes, &constant, &codes, &f, &o)).contains("factor 1 takes a single value"));
    let negative = LassoOptions { alpha: -1.0, ..o };
    assert!(err(dci(&codes, &f, &codes, &f, &negative)).contains("`alpha`"));
}
