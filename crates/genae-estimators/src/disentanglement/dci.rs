//! DCI (Eastwood & Williams 2018) with Lasso importances, and the Lasso itself.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::oracle::{at_least, GroundTruth, Oracle};
use super::{check_named, invalid, mean_std};
use crate::Result;

/// The settings of [`lasso`]. The default `alpha = 0.02` is the one Eastwood & Williams used
/// for DCI (on standardised codes and factors).
#[derive(Clone, Debug, PartialEq)]
pub struct LassoOptions {
    /// The L1 penalty `α` of `(1/2n) ‖y − Xw‖² + α ‖w‖₁` (0.02; 0 gives least squares).
    pub alpha: f64,
    /// Coordinate-descent sweeps over all weights at most (1 000, scikit-learn's `max_iter`).
    pub max_sweeps: usize,
    /// The descent stops after a sweep that changes no weight by more than this (1e-8).
    pub tolerance: f64,
}

impl Default for LassoOptions {
    fn default() -> Self {
        Self {
            alpha: 0.02,
            max_sweeps: 1_000,
            tolerance: 1e-8,
        }
    }
}

/// A Lasso solution.
#[derive(Clone, Debug, PartialEq)]
pub struct LassoFit {
    /// One weight per column.
    pub weights: Vec<f64>,
    /// Sweeps run.
    pub sweeps: usize,
    /// Whether the last sweep met the tolerance.
    pub converged: bool,
}

fn check_lasso_options(options: &LassoOptions) -> Result<()> {
    if !(options.alpha.is_finite() && options.alpha >= 0.0) {
        return Err(invalid(
            "alpha",
            format!("must be finite and non-negative, got {}", options.alpha),
        ));
    }
    at_least("max_sweeps", options.max_sweeps, 1)?;
    if !(options.tolerance.is_finite() && options.tolerance > 0.0) {
        return Err(invalid(
            "tolerance",
            format!("must be positive and finite, got {}", options.tolerance),
        ));
    }
    Ok(())
}

/// The Lasso: the weights `w` minimising `(1/2n) ‖y − Σ_j w_j x_j‖² + α Σ_j |w_j|` over the
/// `columns` `x_j` and the `target` `y` (scikit-learn's `Lasso` objective), by cyclic
/// coordinate descent from zero. No intercept is fitted: centre the columns and the target
/// first. An all-zero column gets weight 0.
///
/// With orthonormal columns (`X^T X / n = I`) the solution is the least-squares one,
/// soft-thresholded: `w_j = sign(c_j) max(|c_j| − α, 0)` with `c_j = x_j^T y / n`.
///
/// ```
/// use genae_estimators::disentanglement::{lasso, LassoOptions};
/// let columns = vec![vec![1.0, -1.0, 1.0, -1.0], vec![1.0, 1.0, -1.0, -1.0]];
/// let y = [2.0, 0.0, 1.0, -1.0]; // c = (1.0, 0.5)
/// let fit = lasso(&columns, &y, &LassoOptions { alpha: 0.6, ..Default::default() }).unwrap();
/// assert!((fit.weights[0] - 0.4).abs() < 1e-12 && fit.weights[1] == 0.0);
/// ```
pub fn lasso(columns: &[Vec<f64>], target: &[f64], options: &LassoOptions) -> Result<LassoFit> {
    check_lasso_options(options)?;
    let n = target.len();
    if n == 0 {
        return Err(invalid("target", "is empty".into()));
    }
    if target.iter().any(|v| !v.is_finite()) {
        return Err(invalid("target", "holds a non-finite value".into()));
    }
    if columns.is_empty() {
        return Err(invalid("columns", "needs at least one column".into()));
    }
    for (j, c) in columns.iter().enumerate() {
        if c.len() != n {
            return Err(invalid(
                "columns",
                format!("column {j} has {} entries, the target {n}", c.len()),
            ));
        }
        if c.iter().any(|v| !v.is_finite()) {
            return Err(invalid(
                "columns",
                format!("column {j} holds a non-finite value"),
            ));
        }
    }
    let nf = n as f64;
    let norms: Vec<f64> = columns
        .iter()
        .map(|c| c.iter().map(|v| v * v).sum::<f64>() / nf)
        .collect();
    let mut weights = vec![0.0; columns.len()];
    let mut residual = target.to_vec();
    let (mut sweeps, mut converged) = (0, false);
    while sweeps < options.max_sweeps && !converged {
        sweeps += 1;
        let mut largest_change = 0.0f64;
        for (j, column) in columns.iter().enumerate() {
            if norms[j] == 0.0 {
                continue;
            }
            let old = weights[j];
            let rho = column
                .iter()
                .zip(&residual)
                .map(|(x, r)| x * r)
                .sum::<f64>()
                / nf
                + norms[j] * old;
            let new = rho.signum() * (rho.abs() - options.alpha).max(0.0) / norms[j];
            if new != old {
                let delta = new - old;
                residual
                    .iter_mut()
                    .zip(column)
                    .for_each(|(r, x)| *r -= delta * x);
                weights[j] = new;
                largest_change = largest_change.max(delta.abs());
            }
        }
        converged = largest_change <= options.tolerance;
    }
    Ok(LassoFit {
        weights,
        sweeps,
        converged,
    })
}

/// The settings of [`dci_from_ground_truth`]: disentanglement_lib's sample sizes
/// (`dci.num_train = 10000`, `dci.num_test = 5000`) and the Lasso's settings.
#[derive(Clone, Debug, PartialEq)]
pub struct DciOptions {
    /// Examples the Lasso is fitted on (10 000).
    pub num_train: usize,
    /// Held-out examples for the informativeness (5 000).
    pub num_test: usize,
    /// The Lasso ([`LassoOptions::default`]: `alpha = 0.02`).
    pub lasso: LassoOptions,
}

impl Default for DciOptions {
    fn default() -> Self {
        Self {
            num_train: 10_000,
            num_test: 5_000,
            lasso: LassoOptions::default(),
        }
    }
}

/// DCI scores, their parts and the importance matrix.
#[derive(Clone, Debug, PartialEq)]
pub struct DciScore {
    /// `Σ_j ρ_j D_j`: the per-dimension disentanglement weighted by each dimension's share
    /// `ρ_j` of the total importance (0 ..= 1).
    pub disentanglement: f64,
    /// The mean over factors of the per-factor completeness (Eastwood & Williams; 0 ..= 1).
    pub completeness: f64,
    /// The per-factor completeness weighted by each factor's share of the total importance
    /// (disentanglement_lib's completeness).
    pub completeness_weighted: f64,
    /// The mean over factors of the test NRMSE (Eastwood & Williams' informativeness; 0 is a
    /// perfect prediction, 1 that of the mean; `R² = 1 − NRMSE²`).
    pub informativeness: f64,
    /// `D_j = 1 − H_K(P_j·)` per code dimension, `P` the row-normalised importance and `K` the
    /// number of factors (0 for a dimension of no importance).
    pub disentanglement_per_code: Vec<f64>,
    /// `ρ_j`, each dimension's share of the total importance (uniform if it is all zero).
    pub code_weights: Vec<f64>,
    /// `C_k = 1 − H_D(P̃_·k)` per factor, `P̃` the column-normalised importance and `D` the
    /// number of code dimensions (0 for a factor of no importance).
    pub completeness_per_factor: Vec<f64>,
    /// `R[j][k] = |w_jk|`, `[dims][factors]`: the absolute Lasso weight of standardised code
    /// dimension `j` for standardised factor `k`.
    pub importance: Vec<Vec<f64>>,
    /// Per factor: the root mean squared error of the Lasso's prediction on the training set
    /// over the standard deviation of the factor there.
    pub nrmse_train: Vec<f64>,
    /// The same on the test set.
    pub nrmse_test: Vec<f64>,
    /// Whether every Lasso fit converged.
    pub converged: bool,
}

/// `1 − H(p) / ln(base)` for `p` proportional to `weights`, 0 when they are all zero.
fn one_minus_normalised_entropy(weights: &[f64], base: usize) -> f64 {
    let total: f64 = weights.iter().sum();
    if total <= 0.0 {
        return 0.0;
    }
    let h: f64 = weights
        .iter()
        .filter(|&&w| w > 0.0)
        .map(|&w| {
            let p = w / total;
            -p * p.ln()
        })
        .sum();
    1.0 - h / (base as f64).ln()
}

/// Standardises each column by `stats` (mean, standard deviation; a zero deviation only
/// centres).
fn standardise(columns: &[Vec<f64>], stats: &[(f64, f64)]) -> Vec<Vec<f64>> {
    columns
        .iter()
        .zip(stats)
        .map(|(c, &(m, s))| {
            let s = if s > 0.0 { s } else { 1.0 };
            c.iter().map(|v| (v - m) / s).collect()
        })
        .collect()
}

/// The root mean squared error of `Σ_j w_j x_j` against `y` over the standard deviation of
/// `y` (which must not be 0).
fn nrmse(x: &[Vec<f64>], w: &[f64], y: &[f64]) -> f64 {
    let mse = y
        .iter()
        .enumerate()
        .map(|(i, yi)| {
            let pred: f64 = x.iter().zip(w).map(|(c, wj)| c[i] * wj).sum();
            (pred - yi) * (pred - yi)
        })
        .sum::<f64>()
        / y.len() as f64;
    mse.sqrt() / mean_std(y).1
}

/// DCI (Eastwood & Williams 2018) of codes against factors, with the importance matrix of a
/// [`lasso`] as Eastwood & Williams computed it (disentanglement_lib fits gradient-boosted
/// trees instead and reports classification accuracy as informativeness).
///
/// Codes and factors are by column (`[dims][n]`, `[factors][n]`). The training codes and each
/// factor's class indices, taken as numbers, are standardised by their training mean and
/// standard deviation (the test set by the same statistics; a constant code dimension is only
/// centred); the Lasso regresses each standardised factor on all standardised code dimensions
/// and `R[j][k] = |w_jk|`. Then, with `K` factors and `D` dimensions,
/// disentanglement `= Σ_j ρ_j (1 − H_K(R_j· / Σ_k R_jk))` with `ρ_j = Σ_k R_jk / Σ R`,
/// completeness `= mean_k (1 − H_D(R_·k / Σ_j R_jk))`, and informativeness the mean test NRMSE.
/// An all-zero row or column counts as uniform (score 0); an all-zero matrix weighs the rows
/// uniformly, so disentanglement and completeness are then 0, as in disentanglement_lib.
///
/// The scores describe how the *explained* part of the factors is spread: for codes that
/// explain nothing (NRMSE ≈ 1) the few weights above `alpha` are chance and decide them, so
/// read them with the informativeness. Needs at least 2 code dimensions and 2 factors, and
/// every factor must vary in both sets.
///
/// ```
/// use genae_estimators::disentanglement::{dci, LassoOptions};
/// // Two factors on a 5 × 4 grid; the codes are the factors, swapped and scaled.
/// let (a, b): (Vec<u32>, Vec<u32>) = (0..200).map(|i| ((i % 5) as u32, (i / 5 % 4) as u32)).unzip();
/// let codes = vec![b.iter().map(|&v| 3.0 * v as f64).collect(), a.iter().map(|&v| -(v as f64)).collect()];
/// let factors = vec![a, b];
/// let score = dci(&codes, &factors, &codes, &factors, &LassoOptions::default()).unwrap();
/// assert!((score.disentanglement - 1.0).abs() < 1e-12 && (score.completeness - 1.0).abs() < 1e-12);
/// assert!((score.informativeness - 0.02).abs() < 1e-9); // the Lasso shrinks each weight by α
/// ```
pub fn dci(
    train_codes: &[Vec<f64>],
    train_factors: &[Vec<u32>],
    test_codes: &[Vec<f64>],
    test_factors: &[Vec<u32>],
    options: &LassoOptions,
) -> Result<DciScore> {
    check_lasso_options(options)?;
    check_named(
        ("train_codes", train_codes),
        ("train_factors", train_factors),
    )?;
    check_named(("test_codes", test_codes), ("test_factors", test_factors))?;
    let (dims, factors) = (train_codes.len(), train_factors.len());
    if dims < 2 {
        return Err(invalid(
            "train_codes",
            format!("completeness needs at least 2 code dimensions, got {dims}"),
        ));
    }
    if factors < 2 {
        return Err(invalid(
            "train_factors",
            format!("disentanglement needs at least 2 factors, got {factors}"),
        ));
    }
    if test_codes.len() != dims {
        return Err(invalid(
            "test_codes",
            format!("{} dimensions, the training codes {dims}", test_codes.len()),
        ));
    }
    if test_factors.len() != factors {
        return Err(invalid(
            "test_factors",
            format!("{} factors, the training set {factors}", test_factors.len()),
        ));
    }
    let stats: Vec<(f64, f64)> = train_codes.iter().map(|c| mean_std(c)).collect();
    let (x_train, x_test) = (
        standardise(train_codes, &stats),
        standardise(test_codes, &stats),
    );
    let as_f64 = |c: &Vec<u32>| -> Vec<f64> { c.iter().map(|&v| f64::from(v)).collect() };
    let mut importance = vec![vec![0.0; factors]; dims];
    let (mut nrmse_train, mut nrmse_test) = (Vec::new(), Vec::new());
    let mut converged = true;
    for k in 0..factors {
        let (y_train, y_test) = (as_f64(&train_factors[k]), as_f64(&test_factors[k]));
        let (m, s) = mean_std(&y_train);
        if s == 0.0 {
            return Err(invalid(
                "train_factors",
                format!("factor {k} takes a single value"),
            ));
        }
        if mean_std(&y_test).1 == 0.0 {
            return Err(invalid(
                "test_factors",
                format!("factor {k} takes a single value"),
            ));
        }
        let y_train: Vec<f64> = y_train.iter().map(|v| (v - m) / s).collect();
        let y_test: Vec<f64> = y_test.iter().map(|v| (v - m) / s).collect();
        let fit = lasso(&x_train, &y_train, options)?;
        converged &= fit.converged;
        for (row, w) in importance.iter_mut().zip(&fit.weights) {
            row[k] = w.abs();
        }
        nrmse_train.push(nrmse(&x_train, &fit.weights, &y_train));
        nrmse_test.push(nrmse(&x_test, &fit.weights, &y_test));
    }
    let total: f64 = importance.iter().flatten().sum();
    let code_weights: Vec<f64> = importance
        .iter()
        .map(|row| {
            if total > 0.0 {
                row.iter().sum::<f64>() / total
            } else {
                1.0 / dims as f64
            }
        })
        .collect();
    let disentanglement_per_code: Vec<f64> = importance
        .iter()
        .map(|row| one_minus_normalised_entropy(row, factors))
        .collect();
    let completeness_per_factor: Vec<f64> = (0..factors)
        .map(|k| {
            let column: Vec<f64> = importance.iter().map(|row| row[k]).collect();
            one_minus_normalised_entropy(&column, dims)
        })
        .collect();
    let factor_weights: Vec<f64> = (0..factors)
        .map(|k| {
            let s: f64 = importance.iter().map(|row| row[k]).sum();
            if total > 0.0 {
                s / total
            } else {
                1.0 / factors as f64
            }
        })
        .collect();
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
    Ok(DciScore {
        disentanglement: dot(&disentanglement_per_code, &code_weights),
        completeness: completeness_per_factor.iter().sum::<f64>() / factors as f64,
        completeness_weighted: dot(&completeness_per_factor, &factor_weights),
        informativeness: nrmse_test.iter().sum::<f64>() / factors as f64,
        disentanglement_per_code,
        code_weights,
        completeness_per_factor,
        importance,
        nrmse_train,
        nrmse_test,
        converged,
    })
}

/// [`dci`] on `num_train` training and then `num_test` test examples drawn from `gt` with a
/// [`ChaCha8Rng`] seeded by `seed` (disentanglement_lib's `compute_dci` sampling).
pub fn dci_from_ground_truth(
    gt: &mut dyn GroundTruth,
    options: &DciOptions,
    seed: u64,
) -> Result<DciScore> {
    at_least("num_train", options.num_train, 2)?;
    at_least("num_test", options.num_test, 2)?;
    check_lasso_options(&options.lasso)?;
    let mut oracle = Oracle::new(gt)?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (train_codes, train_factors) = oracle.sample_codes(options.num_train, &mut rng)?;
    let (test_codes, test_factors) = oracle.sample_codes(options.num_test, &mut rng)?;
    dci(
        &train_codes,
        &train_factors,
        &test_codes,
        &test_factors,
        &options.lasso,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    /// Walsh functions on `n = 2^m` points: `(−1)^popcount(i & mask)`, orthogonal, mean zero
    /// and of squared norm `n` for every non-zero mask, so `X^T X / n = I`.
    fn walsh(n: usize, mask: usize) -> Vec<f64> {
        (0..n)
            .map(|i| {
                if (i & mask).count_ones().is_multiple_of(2) {
                    1.0
                } else {
                    -1.0
                }
            })
            .collect()
    }

    #[test]
    fn lasso_on_an_orthonormal_design_soft_thresholds_least_squares() {
        let _rng = crate::torch_rng_lock();
        let n = 16;
        let columns: Vec<Vec<f64>> = [1, 2, 4, 8, 3, 5].iter().map(|&m| walsh(n, m)).collect();
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let y: Vec<f64> = (0..n).map(|_| 2.0 * rng.gen::<f64>() - 1.0).collect();
        let ls: Vec<f64> = columns
            .iter()
            .map(|c| c.iter().zip(&y).map(|(a, b)| a * b).sum::<f64>() / n as f64)
            .collect();
        for alpha in [0.0, 0.05, 0.09, 0.3, 10.0] {
            let fit = lasso(
                &columns,
                &y,
                &LassoOptions {
                    alpha,
                    ..Default::default()
                },
            )
            .unwrap();
            for (w, c) in fit.weights.iter().zip(&ls) {
                let want = c.signum() * (c.abs() - alpha).max(0.0);
                assert!((w - want).abs() < 1e-12, "α = {alpha}: {w} vs {want}");
            }
            // Exact after one sweep; the second sees no change.
            assert!(fit.converged && fit.sweeps <= 2, "{fit:?}");
        }
        // For this draw α = 0.09 zeroes some weights and keeps others.
        let kept = ls.iter().filter(|c| c.abs() > 0.09).count();
        assert!(kept > 0 && kept < ls.len(), "{ls:?}");
    }

    #[test]
    fn lasso_on_correlated_columns_meets_the_optimality_conditions() {
        let _rng = crate::torch_rng_lock();
        // KKT: x_jᵀ r / n = α sign(w_j) where w_j ≠ 0, |x_jᵀ r / n| ≤ α where w_j = 0.
        let mut rng = ChaCha8Rng::seed_from_u64(12);
        let n = 200;
        let base: Vec<f64> = (0..n).map(|_| rng.gen::<f64>() - 0.5).collect();
        let columns: Vec<Vec<f64>> = (0..5)
            .map(|j| {
                base.iter()
                    .map(|b| b * j as f64 * 0.5 + rng.gen::<f64>() - 0.5)
                    .collect()
            })
            .collect();
        let y: Vec<f64> = (0..n)
            .map(|i| 2.0 * columns[1][i] - columns[3][i] + 0.3 * (rng.gen::<f64>() - 0.5))
            .collect();
        let alpha = 0.01;
        let fit = lasso(
            &columns,
            &y,
            &LassoOptions {
                alpha,
                ..Default::default()
            },
        )
        .unwrap();
        assert!(fit.converged, "{fit:?}");
        let residual: Vec<f64> = (0..n)
            .map(|i| {
                y[i] - columns
                    .iter()
                    .zip(&fit.weights)
                    .map(|(c, w)| c[i] * w)
                    .sum::<f64>()
            })
            .collect();
        for (c, w) in columns.iter().zip(&fit.weights) {
            let corr = c.iter().zip(&residual).map(|(a, b)| a * b).sum::<f64>() / n as f64;
            if *w != 0.0 {
                assert!((corr - alpha * w.signum()).abs() < 1e-6, "{corr} {w}");
            } else {
                assert!(corr.abs() <= alpha + 1e-9, "{corr}");
            }
        }
        assert!((fit.weights[1] - 2.0).abs() < 0.2 && (fit.weights[3] + 1.0).abs() < 0.2);
    }

    #[test]
    fn lasso_rejects_bad_input_naming_it() {
        let _rng = crate::torch_rng_lock();
        let o = LassoOptions::default();
        let err = |r: Result<LassoFit>| r.unwrap_err().to_string();
        assert!(err(lasso(&[], &[1.0, 2.0], &o)).contains("`columns`"));
        assert!(err(lasso(&[vec![1.0]], &[1.0, 2.0], &o)).contains("column 0 has 1"));
        assert!(err(lasso(&[vec![]], &[], &o)).contains("`target`"));
        assert!(err(lasso(&[vec![1.0]], &[f64::NAN], &o)).contains("`target`"));
        let zero = LassoOptions { max_sweeps: 0, ..o };
        assert!(err(lasso(&[vec![1.0]], &[1.0], &zero)).contains("`max_sweeps`"));
    }
}
