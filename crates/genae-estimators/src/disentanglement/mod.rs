//! Disentanglement metrics over codes and ground-truth factors: pure functions, no model.
//!
//! Codes are given **by latent dimension** (`codes[j][i]` is dimension `j` of example `i`) and
//! factors likewise (`factors[k][i]` is the class index of factor `k` for example `i`), all
//! columns of the same length `n`. The settings follow disentanglement_lib's defaults
//! (Locatello et al. 2019):
//!
//! - [`mutual_information_gap`] (Chen et al. 2018): codes discretised into
//!   [`DEFAULT_BINS`] = 20 equal-width bins per dimension over its range
//!   ([`histogram_discretize`]), the discrete mutual information `I(z_j; v_k)` in nats
//!   ([`mutual_information`]), and per factor the gap between its two most informative
//!   dimensions over the factor's entropy, averaged over factors;
//! - [`sap_score`] (Kumar et al. 2018): per factor the gap between the two largest
//!   predictabilities of that factor from one code dimension, averaged over factors. Here the
//!   predictability is the R² of a least-squares line (Kumar et al.'s score for continuous
//!   factors; disentanglement_lib's default for discrete factors trains a linear SVM instead);
//! - [`gaussian_total_correlation`]: the total correlation `Σ_j H(z_j) − H(z)` of a Gaussian
//!   with the codes' covariance, `½ (Σ_j ln Σ_jj − ln det Σ)`, an unsupervised score;
//! - [`dci`] (Eastwood & Williams 2018): disentanglement, completeness and informativeness
//!   from the importance matrix of a Lasso regression of each factor on the codes
//!   ([`lasso`], cyclic coordinate descent).
//!
//! The sampling metrics draw factors and codes from a [`GroundTruth`] oracle (a data set
//! whose observations are rendered from known factors, and a model that encodes them), with a
//! [`ChaCha8Rng`] seeded from a `u64`, so a metric repeats exactly:
//!
//! - [`beta_vae_score`] (Higgins et al. 2017): accuracy of a multinomial logistic regression
//!   predicting which factor a batch of pairs shared from the mean absolute code differences
//!   ([`BetaVaeOptions`]: 64 pairs per point, 10 000 training and 5 000 evaluation points);
//! - [`factor_vae_score`] (Kim & Mnih 2018): accuracy of the majority vote from the code
//!   dimension of least normalised variance to the factor held fixed ([`FactorVaeOptions`]:
//!   batches of 64, 10 000 training and 5 000 evaluation votes, 10 000 points for the global
//!   variances, dimensions with a global standard deviation below 0.05 pruned);
//! - [`dci_from_ground_truth`] (10 000 training and 5 000 test points),
//!   [`mig_from_ground_truth`] and [`sap_from_ground_truth`] (10 000 points each): the
//!   array-level metrics on codes drawn with [`sample_codes`].
//!
//! ```
//! use genae_estimators::disentanglement::mutual_information_gap;
//!
//! // Two factors on a full 4 × 3 grid, repeated; the codes are the factors, scaled and swapped.
//! let (a, b): (Vec<u32>, Vec<u32>) = (0..120).map(|i| ((i % 4) as u32, (i / 4 % 3) as u32)).unzip();
//! let codes = vec![b.iter().map(|&v| 0.5 * v as f64).collect(), a.iter().map(|&v| -2.0 * v as f64).collect()];
//! let mig = mutual_information_gap(&codes, &[a, b], 20).unwrap();
//! assert!((mig.score - 1.0).abs() < 1e-12);
//! ```

mod beta_vae;
mod dci;
mod factor_vae;
mod logistic;
mod oracle;
#[cfg(test)]
mod synthetic_tests;

pub use beta_vae::{beta_vae_score, BetaVaeOptions, BetaVaeScore};
pub use dci::{dci, dci_from_ground_truth, lasso, DciOptions, DciScore, LassoFit, LassoOptions};
pub use factor_vae::{factor_vae_score, FactorVaeOptions, FactorVaeScore};
pub use oracle::{
    mig_from_ground_truth, sample_codes, sap_from_ground_truth, uniform_factors, CodesAndFactors,
    GroundTruth, MigOptions, SapOptions, MAX_CODES_PER_CALL,
};
pub use rand_chacha::ChaCha8Rng;

use tch::{Kind, Tensor};

use crate::{EstimatorError, Result};

/// disentanglement_lib's number of histogram bins per code dimension for MIG.
pub const DEFAULT_BINS: usize = 20;

fn invalid(name: &'static str, reason: String) -> EstimatorError {
    EstimatorError::InvalidArgument { name, reason }
}

/// Checks that `columns` is non-empty and every column has `n ≥ 2` entries; returns `n`.
fn column_length<T>(name: &'static str, columns: &[Vec<T>]) -> Result<usize> {
    let n = columns
        .first()
        .map(Vec::len)
        .ok_or_else(|| invalid(name, "needs at least one column".into()))?;
    if n < 2 {
        return Err(invalid(name, format!("needs at least 2 examples, got {n}")));
    }
    if let Some((j, c)) = columns.iter().enumerate().find(|(_, c)| c.len() != n) {
        return Err(invalid(
            name,
            format!("column {j} has {} entries, column 0 has {n}", c.len()),
        ));
    }
    Ok(n)
}

/// Codes and factors of the same `n`; returns `n`.
fn check(codes: &[Vec<f64>], factors: &[Vec<u32>]) -> Result<usize> {
    check_named(("codes", codes), ("factors", factors))
}

/// [`check`] with the names the errors give the two arguments.
fn check_named(
    (codes_name, codes): (&'static str, &[Vec<f64>]),
    (factors_name, factors): (&'static str, &[Vec<u32>]),
) -> Result<usize> {
    let n = column_length(codes_name, codes)?;
    let m = column_length(factors_name, factors)?;
    if n != m {
        return Err(invalid(
            factors_name,
            format!("{m} examples, but the codes have {n}"),
        ));
    }
    if let Some(j) = codes.iter().position(|c| c.iter().any(|v| !v.is_finite())) {
        return Err(invalid(
            codes_name,
            format!("column {j} holds a non-finite value"),
        ));
    }
    Ok(n)
}

/// The mean and the population standard deviation of `column` (non-empty).
fn mean_std(column: &[f64]) -> (f64, f64) {
    let n = column.len() as f64;
    let mean = column.iter().sum::<f64>() / n;
    let var = column.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
    (mean, var.sqrt())
}

/// `bins` equal-width bins over `[min, max]` of `column`: bin indices `0..bins` (the maximum in
/// the last bin), as `np.digitize` against `np.histogram`'s edges does in disentanglement_lib
/// (there counted from 1). A constant column falls in bin 0.
pub fn histogram_discretize(column: &[f64], bins: usize) -> Vec<u32> {
    let (lo, hi) = column
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        });
    let width = (hi - lo) / bins as f64;
    column
        .iter()
        .map(|&v| {
            if width > 0.0 {
                (((v - lo) / width).floor() as usize).min(bins - 1) as u32
            } else {
                0
            }
        })
        .collect()
}

/// Relabels `values` as `0..m` in order of first appearance; `(labels, m)`.
fn compact(values: &[u32]) -> (Vec<usize>, usize) {
    let mut seen = std::collections::HashMap::new();
    let labels = values
        .iter()
        .map(|v| {
            let next = seen.len();
            *seen.entry(*v).or_insert(next)
        })
        .collect();
    (labels, seen.len())
}

/// The entropy of the empirical distribution of `values`, in nats.
pub fn entropy(values: &[u32]) -> f64 {
    let (labels, m) = compact(values);
    let mut counts = vec![0usize; m];
    for l in labels {
        counts[l] += 1;
    }
    let n = values.len() as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f64 / n;
            -p * p.ln()
        })
        .sum()
}

/// The mutual information `I(a; b)` of two discrete columns of equal length under their
/// empirical joint distribution, in nats (scikit-learn's `mutual_info_score`).
///
/// ```
/// use genae_estimators::disentanglement::{entropy, mutual_information};
/// let a = [0, 1, 2, 0, 1, 2];
/// assert!((mutual_information(&a, &a) - entropy(&a)).abs() < 1e-12); // I(a; a) = H(a)
/// assert!(mutual_information(&a, &[7, 7, 7, 7, 7, 7]).abs() < 1e-12);
/// ```
pub fn mutual_information(a: &[u32], b: &[u32]) -> f64 {
    assert_eq!(
        a.len(),
        b.len(),
        "mutual_information needs columns of equal length"
    );
    let (la, ma) = compact(a);
    let (lb, mb) = compact(b);
    let mut joint = vec![0usize; ma * mb];
    let (mut ca, mut cb) = (vec![0usize; ma], vec![0usize; mb]);
    for (&i, &j) in la.iter().zip(&lb) {
        joint[i * mb + j] += 1;
        ca[i] += 1;
        cb[j] += 1;
    }
    let n = a.len() as f64;
    let mut mi = 0.0;
    for i in 0..ma {
        for j in 0..mb {
            let c = joint[i * mb + j];
            if c > 0 {
                let c = c as f64;
                mi += c / n * (c * n / (ca[i] as f64 * cb[j] as f64)).ln();
            }
        }
    }
    mi.max(0.0)
}

/// The Mutual Information Gap and what it was computed from.
#[derive(Clone, Debug, PartialEq)]
pub struct MigScore {
    /// The mean over factors of the normalised gaps (0 ..= 1).
    pub score: f64,
    /// Per factor: `(I(z_a; v_k) − I(z_b; v_k)) / H(v_k)` for its two most informative code
    /// dimensions `a`, `b` (0 for a factor with a single value).
    pub gaps: Vec<f64>,
    /// `I(z_j; v_k)` in nats, `[dims][factors]`.
    pub mutual_information: Vec<Vec<f64>>,
    /// `H(v_k)` in nats.
    pub factor_entropy: Vec<f64>,
}

/// The Mutual Information Gap of Chen et al. (2018) with codes discretised into `bins`
/// equal-width bins per dimension ([`DEFAULT_BINS`] in disentanglement_lib). Needs at least
/// two code dimensions.
pub fn mutual_information_gap(
    codes: &[Vec<f64>],
    factors: &[Vec<u32>],
    bins: usize,
) -> Result<MigScore> {
    check(codes, factors)?;
    if codes.len() < 2 {
        return Err(invalid(
            "codes",
            "the gap needs at least 2 code dimensions".into(),
        ));
    }
    if bins < 2 {
        return Err(invalid("bins", format!("must be at least 2, got {bins}")));
    }
    let discrete: Vec<Vec<u32>> = codes
        .iter()
        .map(|c| histogram_discretize(c, bins))
        .collect();
    let mutual_information: Vec<Vec<f64>> = discrete
        .iter()
        .map(|z| factors.iter().map(|v| mutual_information(z, v)).collect())
        .collect();
    let factor_entropy: Vec<f64> = factors.iter().map(|v| entropy(v)).collect();
    let gaps: Vec<f64> = (0..factors.len())
        .map(|k| {
            let mut column: Vec<f64> = mutual_information.iter().map(|row| row[k]).collect();
            column.sort_by(|a, b| b.total_cmp(a));
            let h = factor_entropy[k];
            if h > 0.0 {
                (column[0] - column[1]) / h
            } else {
                0.0
            }
        })
        .collect();
    Ok(MigScore {
        score: gaps.iter().sum::<f64>() / gaps.len() as f64,
        gaps,
        mutual_information,
        factor_entropy,
    })
}

/// The SAP score and its predictability matrix.
#[derive(Clone, Debug, PartialEq)]
pub struct SapScore {
    /// The mean over factors of the gap between the two largest predictabilities (0 ..= 1).
    pub score: f64,
    /// R² of the least-squares line predicting factor `k` from code dimension `j`,
    /// `[dims][factors]` (0 where either is constant).
    pub r_squared: Vec<Vec<f64>>,
}

/// The squared Pearson correlation of two columns (0 if either is constant).
fn r_squared(x: &[f64], y: &[f64]) -> f64 {
    let n = x.len() as f64;
    let (mx, my) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in x.iter().zip(y) {
        let (dx, dy) = (a - mx, b - my);
        sxy += dx * dy;
        sxx += dx * dx;
        syy += dy * dy;
    }
    if sxx > 0.0 && syy > 0.0 {
        sxy * sxy / (sxx * syy)
    } else {
        0.0
    }
}

/// The Separated Attribute Predictability score of Kumar et al. (2018) with the R² of a
/// least-squares line as the predictability of each factor from each code dimension (their
/// score for continuous factors; factor classes are taken as numbers). Needs at least two
/// code dimensions.
///
/// ```
/// use genae_estimators::disentanglement::sap_score;
/// let v: Vec<u32> = (0..60).map(|i| i % 6).collect();
/// let codes = vec![v.iter().map(|&x| x as f64).collect(), vec![0.3; 60]];
/// assert!((sap_score(&codes, &[v]).unwrap().score - 1.0).abs() < 1e-12);
/// ```
pub fn sap_score(codes: &[Vec<f64>], factors: &[Vec<u32>]) -> Result<SapScore> {
    check(codes, factors)?;
    if codes.len() < 2 {
        return Err(invalid(
            "codes",
            "the gap needs at least 2 code dimensions".into(),
        ));
    }
    let factors_f: Vec<Vec<f64>> = factors
        .iter()
        .map(|v| v.iter().map(|&x| f64::from(x)).collect())
        .collect();
    let r2: Vec<Vec<f64>> = codes
        .iter()
        .map(|z| factors_f.iter().map(|v| r_squared(z, v)).collect())
        .collect();
    let gaps: Vec<f64> = (0..factors.len())
        .map(|k| {
            let mut column: Vec<f64> = r2.iter().map(|row| row[k]).collect();
            column.sort_by(|a, b| b.total_cmp(a));
            column[0] - column[1]
        })
        .collect();
    Ok(SapScore {
        score: gaps.iter().sum::<f64>() / gaps.len() as f64,
        r_squared: r2,
    })
}

/// The total correlation of a Gaussian with the covariance of `codes` (`[N, d]`, `N > d`):
/// `½ (Σ_j ln Σ_jj − ln det Σ)` in nats, 0 exactly when the dimensions are uncorrelated.
///
/// ```
/// use genae_estimators::disentanglement::gaussian_total_correlation;
/// use tch::{Device, Kind, Tensor};
/// tch::manual_seed(0);
/// // z2 = z1 + noise: correlation ρ = 1/√2, TC = −½ ln(1 − ρ²) = ½ ln 2.
/// let z1 = Tensor::randn([200_000, 1], (Kind::Double, Device::Cpu));
/// let z = Tensor::cat(&[&z1, &(&z1 + Tensor::randn([200_000, 1], (Kind::Double, Device::Cpu)))], 1);
/// let tc = gaussian_total_correlation(&z).unwrap();
/// assert!((tc - 0.5 * 2f64.ln()).abs() < 0.01, "{tc}");
/// ```
pub fn gaussian_total_correlation(codes: &Tensor) -> Result<f64> {
    let size = codes.size();
    if size.len() != 2 || size[0] <= size[1] {
        return Err(invalid(
            "codes",
            format!("must be [N, d] with N > d, got {size:?}"),
        ));
    }
    let z = codes.f_to_kind(Kind::Double)?;
    let centred = z.f_sub(&z.f_mean_dim(0, true, Kind::Double)?)?;
    let cov = centred.f_transpose(0, 1)?.f_matmul(&centred)? / (size[0] - 1) as f64;
    let log_diag = cov.f_diagonal(0, 0, 1)?.f_log()?.f_sum(Kind::Double)?;
    let (sign, log_det) = cov.f_slogdet()?;
    if sign.f_double_value(&[])? <= 0.0 {
        return Err(invalid(
            "codes",
            "their covariance is singular (a constant or repeated dimension)".into(),
        ));
    }
    Ok(0.5 * (log_diag.f_double_value(&[])? - log_det.f_double_value(&[])?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// Three independent factors on a full 3 × 4 × 5 grid, each cell `reps` times.
    fn grid(reps: usize) -> Vec<Vec<u32>> {
        let mut f = vec![Vec::new(), Vec::new(), Vec::new()];
        for _ in 0..reps {
            for a in 0..3 {
                for b in 0..4 {
                    for c in 0..5 {
                        f[0].push(a);
                        f[1].push(b);
                        f[2].push(c);
                    }
                }
            }
        }
        f
    }

    fn noise(n: usize, seed: u64) -> Vec<f64> {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        (0..n).map(|_| rng.gen::<f64>()).collect()
    }

    #[test]
    fn codes_equal_to_the_factors_up_to_permutation_and_scale_score_one() {
        let _rng = crate::torch_rng_lock();
        let f = grid(50);
        let n = f[0].len();
        // Codes: factor 2 × 0.1, factor 0 × −3 + 7, factor 1 × 2, and one noise dimension,
        // plus jitter well inside a bin.
        let jitter = noise(n, 1);
        let code = |k: usize, s: f64, o: f64| -> Vec<f64> {
            f[k].iter()
                .zip(&jitter)
                .map(|(&v, &e)| s * v as f64 + o + 1e-3 * s.abs() * e)
                .collect()
        };
        let codes = vec![
            code(2, 0.1, 0.0),
            noise(n, 2),
            code(0, -3.0, 7.0),
            code(1, 2.0, 0.0),
        ];
        let mig = mutual_information_gap(&codes, &f, DEFAULT_BINS).unwrap();
        // The factors are independent on the full grid and the noise column is uniform, so
        // every other dimension's information about a factor is the small plug-in bias of
        // a 20-bin histogram against a few classes over 3 000 examples.
        assert!(mig.score > 0.95, "{mig:?}");
        for (k, h) in mig.factor_entropy.iter().enumerate() {
            let levels = [3.0f64, 4.0, 5.0][k];
            assert!((h - levels.ln()).abs() < 1e-12);
        }
        assert!((mig.mutual_information[2][0] - 3f64.ln()).abs() < 1e-12);
        let sap = sap_score(&codes, &f).unwrap();
        assert!(sap.score > 0.99, "{sap:?}");
    }

    #[test]
    fn codes_independent_of_the_factors_score_near_zero() {
        let _rng = crate::torch_rng_lock();
        let f = grid(20);
        let n = f[0].len();
        let codes: Vec<Vec<f64>> = (0..4).map(|j| noise(n, 10 + j)).collect();
        let mig = mutual_information_gap(&codes, &f, DEFAULT_BINS).unwrap();
        assert!(mig.score < 0.05, "{mig:?}");
        let sap = sap_score(&codes, &f).unwrap();
        assert!(sap.score < 0.02, "{sap:?}");
    }

    #[test]
    fn codes_mixing_two_factors_lose_the_gap() {
        let _rng = crate::torch_rng_lock();
        // z0 = a + b and z1 = a − b for factors a, b on a 4 × 4 grid: each dimension knows part
        // of both factors and neither knows one alone, so the gaps collapse, while the aligned
        // codes z0 = a, z1 = b score 1.
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for _ in 0..25 {
            for i in 0..4u32 {
                for j in 0..4u32 {
                    a.push(i);
                    b.push(j);
                }
            }
        }
        let f = vec![a.clone(), b.clone()];
        let col = |g: &dyn Fn(f64, f64) -> f64| -> Vec<f64> {
            a.iter()
                .zip(&b)
                .map(|(&x, &y)| g(x as f64, y as f64))
                .collect()
        };
        let aligned = vec![col(&|x, _| x), col(&|_, y| y)];
        let mixed = vec![col(&|x, y| x + y), col(&|x, y| x - y)];
        let mig_aligned = mutual_information_gap(&aligned, &f, DEFAULT_BINS).unwrap();
        let mig_mixed = mutual_information_gap(&mixed, &f, DEFAULT_BINS).unwrap();
        assert!((mig_aligned.score - 1.0).abs() < 1e-12, "{mig_aligned:?}");
        // By symmetry I(a+b; a) = I(a−b; a): the gap is exactly zero.
        assert!(mig_mixed.score.abs() < 1e-12, "{mig_mixed:?}");
        // I(a + b; a) by hand: a + b takes 7 values with counts 1,2,3,4,3,2,1 (of 16);
        // H(a + b) − H(a + b | a) = H(a + b) − H(b) = H(a + b) − ln 4.
        let counts = [1.0f64, 2.0, 3.0, 4.0, 3.0, 2.0, 1.0];
        let h_sum: f64 = counts.iter().map(|c| -(c / 16.0) * (c / 16.0).ln()).sum();
        let want = h_sum - 4f64.ln();
        assert!((mig_mixed.mutual_information[0][0] - want).abs() < 1e-12);
        let sap_mixed = sap_score(&mixed, &f).unwrap();
        assert!(sap_mixed.score.abs() < 1e-12, "{sap_mixed:?}");
        // One code carrying two factors: z0 = a + b/4 (16 values, each in its own bin) knows
        // a and b entirely, z1 = b knows b. Factor a keeps its full gap, factor b's gap is
        // H(b) − H(b) = 0: MIG drops to exactly ½.
        let partly = vec![col(&|x, y| x + 0.25 * y), col(&|_, y| y)];
        let mig_partly = mutual_information_gap(&partly, &f, DEFAULT_BINS).unwrap();
        assert!((mig_partly.gaps[0] - 1.0).abs() < 1e-12, "{mig_partly:?}");
        assert!(mig_partly.gaps[1].abs() < 1e-12, "{mig_partly:?}");
        assert!((mig_partly.score - 0.5).abs() < 1e-12);
    }

    #[test]
    fn gaussian_total_correlation_matches_the_closed_form() {
        let _rng = crate::torch_rng_lock();
        tch::manual_seed(3);
        // Three dimensions, z = L ε with a known covariance Σ = L Lᵀ.
        let l = Tensor::from_slice(&[1.0f64, 0.0, 0.0, 0.6, 0.8, 0.0, -0.3, 0.2, 0.9]).view([3, 3]);
        let sigma = l.matmul(&l.tr());
        let diag: f64 = Vec::<f64>::try_from(sigma.diagonal(0, 0, 1))
            .unwrap()
            .iter()
            .map(|v| v.ln())
            .sum();
        let want = 0.5 * (diag - sigma.det().double_value(&[]).ln());
        let eps = Tensor::randn([400_000, 3], (Kind::Double, tch::Device::Cpu));
        let z = eps.matmul(&l.tr());
        let tc = gaussian_total_correlation(&z).unwrap();
        assert!((tc - want).abs() < 0.01, "{tc} vs {want}");
        // Independent dimensions: zero up to sampling error.
        let indep = gaussian_total_correlation(&eps).unwrap();
        assert!(indep.abs() < 1e-3, "{indep}");
        // A repeated dimension makes the covariance singular: an error, not a number.
        let repeated = Tensor::cat(&[&eps.narrow(1, 0, 1), &eps.narrow(1, 0, 1)], 1);
        assert!(gaussian_total_correlation(&repeated).is_err());
    }

    #[test]
    fn mismatched_or_degenerate_input_is_an_error_naming_it() {
        let _rng = crate::torch_rng_lock();
        let f = grid(1);
        let codes = vec![vec![0.0; 60], vec![1.0; 59]];
        let err = mutual_information_gap(&codes, &f, 20)
            .unwrap_err()
            .to_string();
        assert!(err.contains("codes") && err.contains("column 1"), "{err}");
        let err = mutual_information_gap(&[vec![0.0; 60]], &f, 20)
            .unwrap_err()
            .to_string();
        assert!(err.contains("2 code dimensions"), "{err}");
        let codes = vec![vec![0.0; 61], vec![1.0; 61]];
        let err = sap_score(&codes, &f).unwrap_err().to_string();
        assert!(err.contains("factors") && err.contains("61"), "{err}");
        let codes = vec![vec![f64::NAN; 60], vec![1.0; 60]];
        let err = sap_score(&codes, &f).unwrap_err().to_string();
        assert!(err.contains("non-finite"), "{err}");
    }

    #[test]
    fn histogram_bins_cover_the_range_with_the_maximum_in_the_last() {
        let _rng = crate::torch_rng_lock();
        let column = [0.0, 0.049, 0.05, 0.5, 0.999, 1.0];
        assert_eq!(histogram_discretize(&column, 20), vec![0, 0, 1, 10, 19, 19]);
        assert_eq!(histogram_discretize(&[2.0, 2.0], 20), vec![0, 0]);
    }
}
