//! Multinomial logistic regression with an L2 penalty, fitted by L-BFGS: the classifier of the
//! β-VAE score (disentanglement_lib uses scikit-learn's `LogisticRegression()`).

use super::mean_std;

/// L-BFGS history length.
const MEMORY: usize = 10;
/// Armijo's sufficient-decrease constant.
const ARMIJO: f64 = 1e-4;
/// Step halvings before a line search gives up.
const MAX_HALVINGS: usize = 60;

/// A fitted classifier: standardisation, weights and how the fit ended.
#[derive(Clone, Debug)]
pub(super) struct Logistic {
    mean: Vec<f64>,
    std: Vec<f64>,
    classes: usize,
    /// `[classes][dims + 1]`, flattened; the last entry of each row is the intercept.
    theta: Vec<f64>,
    /// L-BFGS iterations run.
    pub(super) iterations: usize,
    /// Whether the largest gradient entry fell below the tolerance.
    pub(super) converged: bool,
}

/// The mean cross-entropy plus `λ/2 ‖W‖²` (intercepts unpenalised) and its gradient.
fn objective(
    theta: &[f64],
    x: &[Vec<f64>],
    y: &[usize],
    classes: usize,
    lambda: f64,
) -> (f64, Vec<f64>) {
    let d = x[0].len();
    let w = d + 1;
    let mut f = 0.0;
    let mut g = vec![0.0; theta.len()];
    let mut logits = vec![0.0; classes];
    for (xi, &yi) in x.iter().zip(y) {
        for (k, l) in logits.iter_mut().enumerate() {
            let row = &theta[k * w..(k + 1) * w];
            *l = row[d] + row[..d].iter().zip(xi).map(|(a, b)| a * b).sum::<f64>();
        }
        let max = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let lse = max + logits.iter().map(|l| (l - max).exp()).sum::<f64>().ln();
        f += lse - logits[yi];
        for (k, l) in logits.iter().enumerate() {
            let p = (l - lse).exp() - if k == yi { 1.0 } else { 0.0 };
            let row = &mut g[k * w..(k + 1) * w];
            for (gj, xj) in row[..d].iter_mut().zip(xi) {
                *gj += p * xj;
            }
            row[d] += p;
        }
    }
    let n = x.len() as f64;
    f /= n;
    for gi in &mut g {
        *gi /= n;
    }
    for k in 0..classes {
        for j in 0..d {
            let t = theta[k * w + j];
            f += 0.5 * lambda * t * t;
            g[k * w + j] += lambda * t;
        }
    }
    (f, g)
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

impl Logistic {
    /// Fits `classes` classes to the rows `x` (`[n][dims]`, `n ≥ 1`, `dims ≥ 1`) with labels
    /// `y < classes`. Features are standardised by their mean and population standard deviation
    /// (a constant feature is only centred); the objective is scikit-learn's
    /// `Σ_i −ln p(y_i | x_i) + ‖W‖² / (2C)` divided by `n`, minimised by L-BFGS from zero until
    /// the largest gradient entry is below `tolerance` or after `max_iterations` iterations.
    pub(super) fn fit(
        x: &[Vec<f64>],
        y: &[usize],
        classes: usize,
        c: f64,
        max_iterations: usize,
        tolerance: f64,
    ) -> Self {
        let d = x[0].len();
        let (mean, std): (Vec<f64>, Vec<f64>) = (0..d)
            .map(|j| {
                let column: Vec<f64> = x.iter().map(|r| r[j]).collect();
                let (m, s) = mean_std(&column);
                (m, if s > 0.0 { s } else { 1.0 })
            })
            .unzip();
        let mut model = Self {
            mean,
            std,
            classes,
            theta: vec![0.0; classes * (d + 1)],
            iterations: 0,
            converged: false,
        };
        let xs: Vec<Vec<f64>> = x.iter().map(|r| model.standardise(r)).collect();
        let lambda = 1.0 / (c * x.len() as f64);
        let eval = |t: &[f64]| objective(t, &xs, y, classes, lambda);
        let (mut theta, (mut f, mut g)) = (model.theta.clone(), eval(&model.theta));
        let mut history: Vec<(Vec<f64>, Vec<f64>, f64)> = Vec::new();
        while model.iterations < max_iterations {
            if g.iter().all(|v| v.abs() < tolerance) {
                model.converged = true;
                break;
            }
            model.iterations += 1;
            // Two-loop recursion: direction = −H g.
            let mut q = g.clone();
            let mut alphas = Vec::with_capacity(history.len());
            for (s, yv, rho) in history.iter().rev() {
                let a = rho * dot(s, &q);
                q.iter_mut().zip(yv).for_each(|(qi, yi)| *qi -= a * yi);
                alphas.push(a);
            }
            if let Some((s, yv, _)) = history.last() {
                let gamma = dot(s, yv) / dot(yv, yv);
                q.iter_mut().for_each(|qi| *qi *= gamma);
            }
            for ((s, yv, rho), a) in history.iter().zip(alphas.into_iter().rev()) {
                let b = rho * dot(yv, &q);
                q.iter_mut().zip(s).for_each(|(qi, si)| *qi += (a - b) * si);
            }
            let mut direction: Vec<f64> = q.iter().map(|v| -v).collect();
            let mut slope = dot(&g, &direction);
            if slope >= 0.0 {
                history.clear();
                direction = g.iter().map(|v| -v).collect();
                slope = dot(&g, &direction);
            }
            let mut step = if history.is_empty() {
                (1.0 / dot(&g, &g).sqrt()).min(1.0)
            } else {
                1.0
            };
            let mut accepted = None;
            for _ in 0..MAX_HALVINGS {
                let trial: Vec<f64> = theta
                    .iter()
                    .zip(&direction)
                    .map(|(t, p)| t + step * p)
                    .collect();
                let (ft, gt) = eval(&trial);
                if ft <= f + ARMIJO * step * slope {
                    accepted = Some((trial, ft, gt));
                    break;
                }
                step *= 0.5;
            }
            let Some((next, f_next, g_next)) = accepted else {
                break; // No decrease left at floating-point precision.
            };
            let s: Vec<f64> = next.iter().zip(&theta).map(|(a, b)| a - b).collect();
            let yv: Vec<f64> = g_next.iter().zip(&g).map(|(a, b)| a - b).collect();
            let sy = dot(&s, &yv);
            if sy > 1e-12 {
                history.push((s, yv, 1.0 / sy));
                if history.len() > MEMORY {
                    history.remove(0);
                }
            }
            (theta, f, g) = (next, f_next, g_next);
        }
        if !model.converged && g.iter().all(|v| v.abs() < tolerance) {
            model.converged = true;
        }
        model.theta = theta;
        model
    }

    fn standardise(&self, row: &[f64]) -> Vec<f64> {
        row.iter()
            .zip(&self.mean)
            .zip(&self.std)
            .map(|((v, m), s)| (v - m) / s)
            .collect()
    }

    /// The most probable class of `row` (the lowest index among ties).
    pub(super) fn predict(&self, row: &[f64]) -> usize {
        let x = self.standardise(row);
        let w = x.len() + 1;
        let mut best = (0, f64::NEG_INFINITY);
        for k in 0..self.classes {
            let t = &self.theta[k * w..(k + 1) * w];
            let l = t[w - 1] + dot(&t[..w - 1], &x);
            if l > best.1 {
                best = (k, l);
            }
        }
        best.0
    }

    /// The fraction of `x`'s rows predicted as their label in `y`.
    pub(super) fn accuracy(&self, x: &[Vec<f64>], y: &[usize]) -> f64 {
        let right = x
            .iter()
            .zip(y)
            .filter(|(r, &l)| self.predict(r) == l)
            .count();
        right as f64 / x.len() as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    #[test]
    fn gradient_matches_finite_differences() {
        let _rng = crate::torch_rng_lock();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let x: Vec<Vec<f64>> = (0..30)
            .map(|_| (0..3).map(|_| rng.gen::<f64>() - 0.5).collect())
            .collect();
        let y: Vec<usize> = (0..30).map(|_| rng.gen_range(0..4)).collect();
        let theta: Vec<f64> = (0..16).map(|_| rng.gen::<f64>() - 0.5).collect();
        let (_, g) = objective(&theta, &x, &y, 4, 0.3);
        for i in 0..theta.len() {
            let (mut up, mut down) = (theta.clone(), theta.clone());
            up[i] += 1e-6;
            down[i] -= 1e-6;
            let numeric =
                (objective(&up, &x, &y, 4, 0.3).0 - objective(&down, &x, &y, 4, 0.3).0) / 2e-6;
            assert!((numeric - g[i]).abs() < 1e-7, "{i}: {numeric} vs {}", g[i]);
        }
    }

    #[test]
    fn fits_separable_classes_and_stops_at_a_stationary_point() {
        let _rng = crate::torch_rng_lock();
        // Three classes, each a blob around its own corner in 2-D, on a scale of 100.
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(6);
        let centres = [[0.0, 0.0], [100.0, 0.0], [0.0, 100.0]];
        let (mut x, mut y) = (Vec::new(), Vec::new());
        for i in 0..300 {
            let k = i % 3;
            x.push(
                centres[k]
                    .iter()
                    .map(|c| c + 10.0 * (rng.gen::<f64>() - 0.5))
                    .collect(),
            );
            y.push(k);
        }
        let model = Logistic::fit(&x, &y, 3, 1.0, 500, 1e-6);
        assert_eq!(model.accuracy(&x, &y), 1.0);
        assert!(model.converged, "{} iterations", model.iterations);
        // A stationary point of the penalised objective: the gradient vanishes there.
        let xs: Vec<Vec<f64>> = x.iter().map(|r| model.standardise(r)).collect();
        let (_, g) = objective(&model.theta, &xs, &y, 3, 1.0 / 300.0);
        assert!(g.iter().all(|v| v.abs() < 1e-6), "{g:?}");
    }
}
