//! The FactorVAE score of Kim & Mnih (2018), after disentanglement_lib's `factor_vae.py`.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::invalid;
use super::oracle::{at_least, GroundTruth, Oracle};
use crate::Result;

/// The settings of [`factor_vae_score`]; the default is disentanglement_lib's
/// (`factor_vae_score.batch_size = 64`, `num_train = 10000`, `num_eval = 5000`,
/// `num_variance_estimate = 10000`, `prune_dims.threshold = 0.05`).
#[derive(Clone, Debug, PartialEq)]
pub struct FactorVaeOptions {
    /// Examples per vote, all sharing the fixed factor's value (64).
    pub batch_size: usize,
    /// Votes the classifier is trained on (10 000).
    pub num_train: usize,
    /// Votes it is evaluated on (5 000).
    pub num_eval: usize,
    /// Examples for the global variance of each code dimension (10 000).
    pub num_variance_estimate: usize,
    /// Dimensions whose global **standard deviation** is below this are pruned (0.05; with
    /// codes near the `N(0, 1)` prior these are the collapsed ones). A dimension of zero
    /// variance is pruned whatever the threshold.
    pub prune_threshold: f64,
}

impl Default for FactorVaeOptions {
    fn default() -> Self {
        Self {
            batch_size: 64,
            num_train: 10_000,
            num_eval: 5_000,
            num_variance_estimate: 10_000,
            prune_threshold: 0.05,
        }
    }
}

/// The FactorVAE score, its votes and its classifier.
#[derive(Clone, Debug, PartialEq)]
pub struct FactorVaeScore {
    /// The evaluation accuracy (0 ..= 1; 0 when no dimension is active).
    pub score: f64,
    /// The fraction of training votes the majority vote gets right (0 when no dimension is
    /// active).
    pub train_accuracy: f64,
    /// The fraction of evaluation votes it gets right (= `score`).
    pub eval_accuracy: f64,
    /// Code dimensions kept after pruning; 0 means no votes were taken and the accuracies are
    /// 0, as disentanglement_lib reports.
    pub num_active_dims: usize,
    /// The global variance of each code dimension (unbiased, over `num_variance_estimate`
    /// examples).
    pub global_variances: Vec<f64>,
    /// Training votes, `[dims][factors]`: how often dimension `j` had the least normalised
    /// variance when factor `k` was fixed (all zero for pruned dimensions).
    pub train_votes: Vec<Vec<usize>>,
    /// The factor the majority vote assigns to each dimension (`None` where the dimension got
    /// no training vote).
    pub classifier: Vec<Option<usize>>,
}

/// `count` votes `(dimension, factor)` counted into `[dims][factors]`: per vote a factor `k`
/// uniform over the factors, `batch` factor vectors all given the first one's value of factor
/// `k`, and the active dimension whose unbiased variance over the batch divided by its global
/// variance is least (the first among ties).
fn votes(
    oracle: &mut Oracle<'_>,
    count: usize,
    batch: usize,
    global: &[f64],
    active: &[bool],
    rng: &mut ChaCha8Rng,
) -> Result<Vec<Vec<usize>>> {
    let mut votes = vec![vec![0usize; oracle.sizes.len()]; global.len()];
    oracle.votes(
        count,
        batch,
        rng,
        |o, rng| {
            let k = rng.gen_range(0..o.sizes.len());
            let mut factors = o.sample(batch, rng)?;
            let value = factors[k][0];
            factors[k].fill(value);
            Ok((k, factors))
        },
        |k, codes, range| {
            let mut best: Option<(usize, f64)> = None;
            for (j, column) in codes.iter().enumerate() {
                if !active[j] {
                    continue;
                }
                let ratio = variance(&column[range.clone()]) / global[j];
                if best.is_none_or(|(_, b)| ratio < b) {
                    best = Some((j, ratio));
                }
            }
            if let Some((j, _)) = best {
                votes[j][k] += 1;
            }
        },
    )?;
    Ok(votes)
}

/// The unbiased variance of `values` (0 for a single value).
fn variance(values: &[f64]) -> f64 {
    if values.len() < 2 {
        return 0.0;
    }
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / (n - 1.0)
}

/// The fraction of `votes` that go to the factor `classifier` assigns their dimension.
fn accuracy(votes: &[Vec<usize>], classifier: &[Option<usize>]) -> f64 {
    let total: usize = votes.iter().flatten().sum();
    let right: usize = votes
        .iter()
        .zip(classifier)
        .filter_map(|(row, c)| c.map(|k| row[k]))
        .sum();
    if total == 0 {
        0.0
    } else {
        right as f64 / total as f64
    }
}

/// The FactorVAE score (Kim & Mnih 2018) of the codes of `gt`, drawn with a [`ChaCha8Rng`]
/// seeded by `seed`, as disentanglement_lib's `compute_factor_vae` computes it.
///
/// The global variance of each code dimension is estimated on `num_variance_estimate`
/// examples and dimensions with a standard deviation below `prune_threshold` are pruned. Each
/// vote picks a factor `k`, draws `batch_size` factor vectors sharing one random value of
/// factor `k`, divides each active dimension's variance over the batch by its global variance
/// (the variance of the codes normalised by their global standard deviation) and votes for
/// the pair (least such dimension, `k`). The classifier maps each dimension to the factor with
/// most training votes (the lowest index among ties); the score is the fraction of evaluation
/// votes it gets right. With no active dimension no votes are drawn and everything is 0.
///
/// Where disentanglement_lib differs: its vote indexes the full dimension list with the
/// position among the *active* dimensions (the same when none is pruned), it reports
/// `num_active_dims` as the total number of dimensions, and its classifier assigns factor 0 to
/// a dimension without training votes. Needs `batch_size ≥ 2`, `num_variance_estimate ≥ 2`.
pub fn factor_vae_score(
    gt: &mut dyn GroundTruth,
    options: &FactorVaeOptions,
    seed: u64,
) -> Result<FactorVaeScore> {
    at_least("batch_size", options.batch_size, 2)?;
    at_least("num_train", options.num_train, 1)?;
    at_least("num_eval", options.num_eval, 1)?;
    at_least("num_variance_estimate", options.num_variance_estimate, 2)?;
    let threshold = options.prune_threshold;
    if !(threshold.is_finite() && threshold >= 0.0) {
        return Err(invalid(
            "prune_threshold",
            format!("must be finite and non-negative, got {threshold}"),
        ));
    }
    let mut oracle = Oracle::new(gt)?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (codes, _) = oracle.sample_codes(options.num_variance_estimate, &mut rng)?;
    let global_variances: Vec<f64> = codes.iter().map(|c| variance(c)).collect();
    let active: Vec<bool> = global_variances
        .iter()
        .map(|&v| v > 0.0 && v.sqrt() >= threshold)
        .collect();
    let num_active_dims = active.iter().filter(|&&a| a).count();
    let factors = oracle.sizes.len();
    if num_active_dims == 0 {
        return Ok(FactorVaeScore {
            score: 0.0,
            train_accuracy: 0.0,
            eval_accuracy: 0.0,
            num_active_dims,
            train_votes: vec![vec![0; factors]; global_variances.len()],
            classifier: vec![None; global_variances.len()],
            global_variances,
        });
    }
    let batch = options.batch_size;
    let train_votes = votes(
        &mut oracle,
        options.num_train,
        batch,
        &global_variances,
        &active,
        &mut rng,
    )?;
    let classifier: Vec<Option<usize>> = train_votes
        .iter()
        .map(|row| {
            let max = *row.iter().max()?;
            (max > 0)
                .then(|| row.iter().position(|&v| v == max))
                .flatten()
        })
        .collect();
    let eval_votes = votes(
        &mut oracle,
        options.num_eval,
        batch,
        &global_variances,
        &active,
        &mut rng,
    )?;
    let eval_accuracy = accuracy(&eval_votes, &classifier);
    Ok(FactorVaeScore {
        score: eval_accuracy,
        train_accuracy: accuracy(&train_votes, &classifier),
        eval_accuracy,
        num_active_dims,
        global_variances,
        train_votes,
        classifier,
    })
}
