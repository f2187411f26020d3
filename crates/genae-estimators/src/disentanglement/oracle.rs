//! The ground-truth oracle the sampling metrics draw from, and MIG and SAP over it.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{invalid, mutual_information_gap, sap_score, MigScore, SapScore, DEFAULT_BINS};
use crate::Result;

/// The most factor vectors a metric hands to [`GroundTruth::codes`] in one call, unless a
/// single vote needs more (a β-VAE point needs `2 × batch_size`, a FactorVAE vote
/// `batch_size`): votes are grouped into calls of at most this many vectors.
pub const MAX_CODES_PER_CALL: usize = 4096;

/// A data set with known generative factors and a representation of its observations: what
/// disentanglement_lib's `ground_truth_data` and `representation_function` are together.
///
/// Factors and codes are laid out **by column**, like the array-level metrics of this module:
/// `factors[k][i]` is the class index (`0..factor_sizes()[k]`) of factor `k` for example `i`,
/// and `codes[j][i]` is dimension `j` of example `i`'s code (e.g. the encoder mean of the
/// observation rendered from example `i`'s factors). The trait is object safe: the metrics
/// take `&mut dyn GroundTruth`.
///
/// ```
/// use genae_estimators::disentanglement::{factor_vae_score, FactorVaeOptions, GroundTruth};
/// use genae_estimators::Result;
///
/// /// Two factors; the codes are the factors, swapped and scaled.
/// struct Swapped;
/// impl GroundTruth for Swapped {
///     fn factor_sizes(&self) -> Vec<u32> {
///         vec![3, 5]
///     }
///     fn codes(&mut self, factors: &[Vec<u32>]) -> Result<Vec<Vec<f64>>> {
///         let scaled = |k: usize, s: f64| factors[k].iter().map(|&v| s * f64::from(v)).collect();
///         Ok(vec![scaled(1, 0.5), scaled(0, -2.0)])
///     }
/// }
///
/// let options = FactorVaeOptions { num_train: 50, num_eval: 50, num_variance_estimate: 500, ..Default::default() };
/// let score = factor_vae_score(&mut Swapped, &options, 0).unwrap();
/// assert_eq!(score.score, 1.0);
/// assert_eq!(score.classifier, vec![Some(1), Some(0)]);
/// ```
pub trait GroundTruth {
    /// The number of classes of each factor (each at least 1).
    fn factor_sizes(&self) -> Vec<u32>;

    /// `n` factor vectors drawn with `rng`, by factor (`[factors][n]`). The default draws each
    /// factor uniformly and independently from its classes ([`uniform_factors`]), as
    /// disentanglement_lib does for its grid data sets; override it for a data set whose
    /// factors are not a full grid.
    fn sample_factors(&self, n: usize, rng: &mut ChaCha8Rng) -> Vec<Vec<u32>> {
        uniform_factors(&self.factor_sizes(), n, rng)
    }

    /// The codes of observations with the given factors (`[factors][m]`), by dimension
    /// (`[dims][m]`, the same number of dimensions on every call). Called with at most
    /// [`MAX_CODES_PER_CALL`] examples at a time unless one vote needs more; an error (a
    /// model's, converted with `?`) ends the metric with that error.
    fn codes(&mut self, factors: &[Vec<u32>]) -> Result<Vec<Vec<f64>>>;
}

/// `n` factor vectors by factor (`[factors][n]`), each factor uniform over its `sizes[k]`
/// classes and independent of the others: column `k` is drawn in full before column `k + 1`.
/// Every size must be at least 1.
pub fn uniform_factors(sizes: &[u32], n: usize, rng: &mut ChaCha8Rng) -> Vec<Vec<u32>> {
    sizes
        .iter()
        .map(|&s| (0..n).map(|_| rng.gen_range(0..s.max(1))).collect())
        .collect()
}

/// Codes and factors of the same examples, by column: `(codes [dims][n], factors [factors][n])`.
pub type CodesAndFactors = (Vec<Vec<f64>>, Vec<Vec<u32>>);

/// A [`GroundTruth`] whose answers are checked: factor sizes once, every sample and every
/// batch of codes as it comes.
pub(super) struct Oracle<'a> {
    gt: &'a mut dyn GroundTruth,
    pub(super) sizes: Vec<u32>,
    dims: Option<usize>,
}

impl<'a> Oracle<'a> {
    pub(super) fn new(gt: &'a mut dyn GroundTruth) -> Result<Self> {
        let sizes = gt.factor_sizes();
        if sizes.is_empty() {
            return Err(invalid("ground_truth", "has no factors".into()));
        }
        if let Some(k) = sizes.iter().position(|&s| s == 0) {
            return Err(invalid(
                "ground_truth",
                format!("factor {k} has no classes"),
            ));
        }
        Ok(Self {
            gt,
            sizes,
            dims: None,
        })
    }

    /// `n` factor vectors from the oracle, checked against the factor sizes.
    pub(super) fn sample(&self, n: usize, rng: &mut ChaCha8Rng) -> Result<Vec<Vec<u32>>> {
        let factors = self.gt.sample_factors(n, rng);
        if factors.len() != self.sizes.len() {
            return Err(invalid(
                "ground_truth",
                format!(
                    "sampled {} factors, but has {} factor sizes",
                    factors.len(),
                    self.sizes.len()
                ),
            ));
        }
        for (k, (column, &size)) in factors.iter().zip(&self.sizes).enumerate() {
            if column.len() != n {
                return Err(invalid(
                    "ground_truth",
                    format!(
                        "sampled {} values of factor {k}, asked for {n}",
                        column.len()
                    ),
                ));
            }
            if let Some(v) = column.iter().find(|&&v| v >= size) {
                return Err(invalid(
                    "ground_truth",
                    format!("sampled class {v} of factor {k}, which has {size} classes"),
                ));
            }
        }
        Ok(factors)
    }

    /// The oracle's codes for `factors`, checked: the same number of dimensions every call, one
    /// value per example, all finite.
    pub(super) fn codes(&mut self, factors: &[Vec<u32>]) -> Result<Vec<Vec<f64>>> {
        let m = factors.first().map_or(0, Vec::len);
        let codes = self.gt.codes(factors)?;
        if codes.is_empty() {
            return Err(invalid(
                "ground_truth",
                "returned codes of no dimensions".into(),
            ));
        }
        if let Some(d) = self.dims.filter(|&d| d != codes.len()) {
            return Err(invalid(
                "ground_truth",
                format!("returned {} code dimensions, earlier {d}", codes.len()),
            ));
        }
        self.dims = Some(codes.len());
        for (j, column) in codes.iter().enumerate() {
            if column.len() != m {
                return Err(invalid(
                    "ground_truth",
                    format!(
                        "returned {} values of code dimension {j} for {m} examples",
                        column.len()
                    ),
                ));
            }
            if column.iter().any(|v| !v.is_finite()) {
                return Err(invalid(
                    "ground_truth",
                    format!("returned a non-finite value in code dimension {j}"),
                ));
            }
        }
        Ok(codes)
    }

    /// `n` examples: factors drawn in one call, codes in calls of at most
    /// [`MAX_CODES_PER_CALL`]; `(codes [dims][n], factors [factors][n])`.
    pub(super) fn sample_codes(
        &mut self,
        n: usize,
        rng: &mut ChaCha8Rng,
    ) -> Result<CodesAndFactors> {
        let factors = self.sample(n, rng)?;
        let mut codes: Vec<Vec<f64>> = Vec::new();
        for start in (0..n).step_by(MAX_CODES_PER_CALL) {
            let end = (start + MAX_CODES_PER_CALL).min(n);
            let chunk: Vec<Vec<u32>> = factors.iter().map(|c| c[start..end].to_vec()).collect();
            let part = self.codes(&chunk)?;
            if codes.is_empty() {
                codes = part.iter().map(|_| Vec::with_capacity(n)).collect();
            }
            for (all, c) in codes.iter_mut().zip(part) {
                all.extend(c);
            }
        }
        Ok((codes, factors))
    }

    /// `count` votes of `per_vote` factor vectors each: `draw` picks a vote's label and its
    /// factor vectors (by factor) in order, the codes are computed for as many votes at once as
    /// fit in [`MAX_CODES_PER_CALL`] vectors, and `take` gets each vote's label, the codes of its
    /// call and the range of its examples in them. The draws do not depend on the grouping.
    pub(super) fn votes<L>(
        &mut self,
        count: usize,
        per_vote: usize,
        rng: &mut ChaCha8Rng,
        mut draw: impl FnMut(&Self, &mut ChaCha8Rng) -> Result<(L, Vec<Vec<u32>>)>,
        mut take: impl FnMut(L, &[Vec<f64>], std::ops::Range<usize>),
    ) -> Result<()> {
        let group = (MAX_CODES_PER_CALL / per_vote).max(1);
        let mut done = 0;
        while done < count {
            let size = group.min(count - done);
            let mut labels = Vec::with_capacity(size);
            let mut batch: Vec<Vec<u32>> =
                vec![Vec::with_capacity(size * per_vote); self.sizes.len()];
            for _ in 0..size {
                let (label, factors) = draw(self, rng)?;
                labels.push(label);
                for (all, c) in batch.iter_mut().zip(factors) {
                    all.extend(c);
                }
            }
            let codes = self.codes(&batch)?;
            for (i, label) in labels.into_iter().enumerate() {
                take(label, &codes, i * per_vote..(i + 1) * per_vote);
            }
            done += size;
        }
        Ok(())
    }
}

/// `n` examples drawn from `gt` with `rng`: `(codes [dims][n], factors [factors][n])`, the
/// factors from one [`GroundTruth::sample_factors`] call, the codes in calls of at most
/// [`MAX_CODES_PER_CALL`] (disentanglement_lib's `generate_batch_factor_code`).
pub fn sample_codes(
    gt: &mut dyn GroundTruth,
    n: usize,
    rng: &mut ChaCha8Rng,
) -> Result<CodesAndFactors> {
    Oracle::new(gt)?.sample_codes(n, rng)
}

/// The settings of [`mig_from_ground_truth`]; the default is disentanglement_lib's
/// (`mig.num_train = 10000`, `discretizer.num_bins = 20`).
#[derive(Clone, Debug, PartialEq)]
pub struct MigOptions {
    /// Examples drawn (10 000).
    pub num_train: usize,
    /// Histogram bins per code dimension ([`DEFAULT_BINS`] = 20).
    pub bins: usize,
}

impl Default for MigOptions {
    fn default() -> Self {
        Self {
            num_train: 10_000,
            bins: DEFAULT_BINS,
        }
    }
}

/// The settings of [`sap_from_ground_truth`]; the default draws disentanglement_lib's
/// `sap_score.num_train = 10000` examples (its `num_test = 5000` is for the SVM this module
/// does not train: the R² is computed on the one sample).
#[derive(Clone, Debug, PartialEq)]
pub struct SapOptions {
    /// Examples drawn (10 000).
    pub num_train: usize,
}

impl Default for SapOptions {
    fn default() -> Self {
        Self { num_train: 10_000 }
    }
}

/// Checks that the count `value` is at least `min`, naming it otherwise.
pub(super) fn at_least(name: &'static str, value: usize, min: usize) -> Result<()> {
    if value < min {
        return Err(invalid(
            name,
            format!("must be at least {min}, got {value}"),
        ));
    }
    Ok(())
}

/// [`mutual_information_gap`] on `num_train` examples drawn from `gt` with a [`ChaCha8Rng`]
/// seeded by `seed`.
pub fn mig_from_ground_truth(
    gt: &mut dyn GroundTruth,
    options: &MigOptions,
    seed: u64,
) -> Result<MigScore> {
    at_least("num_train", options.num_train, 2)?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (codes, factors) = sample_codes(gt, options.num_train, &mut rng)?;
    mutual_information_gap(&codes, &factors, options.bins)
}

/// [`sap_score`] on `num_train` examples drawn from `gt` with a [`ChaCha8Rng`] seeded by
/// `seed`.
pub fn sap_from_ground_truth(
    gt: &mut dyn GroundTruth,
    options: &SapOptions,
    seed: u64,
) -> Result<SapScore> {
    at_least("num_train", options.num_train, 2)?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (codes, factors) = sample_codes(gt, options.num_train, &mut rng)?;
    sap_score(&codes, &factors)
}
