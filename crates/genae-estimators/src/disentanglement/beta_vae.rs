//! The β-VAE score of Higgins et al. (2017), after disentanglement_lib's `beta_vae.py`.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::invalid;
use super::logistic::Logistic;
use super::oracle::{at_least, GroundTruth, Oracle};
use crate::Result;

/// The settings of [`beta_vae_score`]. The sample sizes are disentanglement_lib's
/// (`beta_vae_sklearn.batch_size = 64`, `num_train = 10000`, `num_eval = 5000`); the classifier
/// settings are this crate's (see [`beta_vae_score`]).
#[derive(Clone, Debug, PartialEq)]
pub struct BetaVaeOptions {
    /// Pairs of examples averaged into one point (64).
    pub batch_size: usize,
    /// Points the classifier is trained on (10 000).
    pub num_train: usize,
    /// Points it is evaluated on (5 000).
    pub num_eval: usize,
    /// scikit-learn's `C`, the inverse strength of the L2 penalty (1.0, its default).
    pub inverse_regularization: f64,
    /// L-BFGS iterations at most (500).
    pub max_iterations: usize,
    /// The fit stops once every gradient entry of the mean objective is below this (1e-6).
    pub tolerance: f64,
}

impl Default for BetaVaeOptions {
    fn default() -> Self {
        Self {
            batch_size: 64,
            num_train: 10_000,
            num_eval: 5_000,
            inverse_regularization: 1.0,
            max_iterations: 500,
            tolerance: 1e-6,
        }
    }
}

/// The β-VAE score and how its classifier was fitted.
#[derive(Clone, Debug, PartialEq)]
pub struct BetaVaeScore {
    /// The evaluation accuracy (0 ..= 1; chance is `1 / factors`).
    pub score: f64,
    /// Accuracy on the training points.
    pub train_accuracy: f64,
    /// Accuracy on the evaluation points (= `score`).
    pub eval_accuracy: f64,
    /// L-BFGS iterations the classifier took.
    pub iterations: usize,
    /// Whether the fit met the gradient tolerance within `max_iterations`.
    pub converged: bool,
}

/// `count` points: per point a factor `k` uniform over the factors, `batch` pairs of factor
/// vectors (the second of each pair drawn afresh, then given the first one's value of factor
/// `k`), and the mean over the pairs of `|code(a) − code(b)|` per dimension, labelled `k`.
fn points(
    oracle: &mut Oracle<'_>,
    count: usize,
    batch: usize,
    rng: &mut ChaCha8Rng,
) -> Result<(Vec<Vec<f64>>, Vec<usize>)> {
    let mut x = Vec::with_capacity(count);
    let mut y = Vec::with_capacity(count);
    oracle.votes(
        count,
        2 * batch,
        rng,
        |o, rng| {
            let k = rng.gen_range(0..o.sizes.len());
            let first = o.sample(batch, rng)?;
            let mut second = o.sample(batch, rng)?;
            second[k].clone_from(&first[k]);
            let pairs = first.into_iter().zip(second).map(|(mut a, b)| {
                a.extend(b);
                a
            });
            Ok((k, pairs.collect()))
        },
        |k, codes, range| {
            let (a, b) = (range.start, range.start + batch);
            let feature = codes
                .iter()
                .map(|c| {
                    (0..batch).map(|i| (c[a + i] - c[b + i]).abs()).sum::<f64>() / batch as f64
                })
                .collect();
            x.push(feature);
            y.push(k);
        },
    )?;
    Ok((x, y))
}

/// The β-VAE score (Higgins et al. 2017) of the codes of `gt`, drawn with a [`ChaCha8Rng`]
/// seeded by `seed`, as disentanglement_lib's `compute_beta_vae_sklearn` computes it.
///
/// Each point picks a factor `k` uniformly, draws `batch_size` pairs of factor vectors that
/// share factor `k`'s value, and takes the mean over the pairs of the absolute code difference
/// per dimension as its features, labelled `k`. A multinomial logistic regression is trained on
/// `num_train` points and the score is its accuracy on `num_eval` fresh ones (training points
/// first, then evaluation points, from the one generator).
///
/// The classifier minimises scikit-learn's objective `Σ_i −ln p(k_i | x_i) + ‖W‖²/(2C)`
/// (intercepts unpenalised, `C = inverse_regularization`) by L-BFGS (history 10, backtracking
/// Armijo line search, from zero), on features **standardised** by the training points' mean
/// and standard deviation; scikit-learn fits the raw features (with its L-BFGS capped at 100
/// iterations), so the penalty weighs the features differently there. Needs
/// `batch_size ≥ 1` and at least one training and one evaluation point.
pub fn beta_vae_score(
    gt: &mut dyn GroundTruth,
    options: &BetaVaeOptions,
    seed: u64,
) -> Result<BetaVaeScore> {
    at_least("batch_size", options.batch_size, 1)?;
    at_least("num_train", options.num_train, 1)?;
    at_least("num_eval", options.num_eval, 1)?;
    at_least("max_iterations", options.max_iterations, 1)?;
    let c = options.inverse_regularization;
    if !(c.is_finite() && c > 0.0) {
        return Err(invalid(
            "inverse_regularization",
            format!("must be positive and finite, got {c}"),
        ));
    }
    if !(options.tolerance.is_finite() && options.tolerance > 0.0) {
        return Err(invalid(
            "tolerance",
            format!("must be positive and finite, got {}", options.tolerance),
        ));
    }
    let mut oracle = Oracle::new(gt)?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (x_train, y_train) = points(&mut oracle, options.num_train, options.batch_size, &mut rng)?;
    let (x_eval, y_eval) = points(&mut oracle, options.num_eval, options.batch_size, &mut rng)?;
    let model = Logistic::fit(
        &x_train,
        &y_train,
        oracle.sizes.len(),
        c,
        options.max_iterations,
        options.tolerance,
    );
    let eval_accuracy = model.accuracy(&x_eval, &y_eval);
    Ok(BetaVaeScore {
        score: eval_accuracy,
        train_accuracy: model.accuracy(&x_train, &y_train),
        eval_accuracy,
        iterations: model.iterations,
        converged: model.converged,
    })
}
