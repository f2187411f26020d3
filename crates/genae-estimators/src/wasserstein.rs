//! The WAE-MMD penalty (Tolstikhin et al., 2018): a differentiable, unbiased estimate of
//! `MMD²` between a batch of codes and as many prior draws, with the inverse multiquadratic
//! kernel of the paper or a Gaussian kernel.

use tch::{Kind, Tensor};

use crate::{EstimatorError, Result};

/// The scales `s` of the inverse multiquadratic kernel's sum, `C = 2 d σ² · s`.
pub const IMQ_SCALES: [f64; 7] = [0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0];

/// The kernel of [`mmd_penalty`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum MmdKernel {
    /// `Σ_s C_s / (C_s + ‖x − y‖²)` with `C_s = 2 d σ² s` over [`IMQ_SCALES`], `σ²` the
    /// prior's variance per dimension (1 for `N(0, I)`), as in the WAE paper.
    InverseMultiquadratic {
        /// The prior's variance per latent dimension.
        prior_variance: f64,
    },
    /// `exp(−‖x − y‖² / (2h²))`; `h² = 2 d σ²` (the scale the WAE paper's RBF variant uses).
    Gaussian {
        /// The prior's variance per latent dimension.
        prior_variance: f64,
    },
}

/// The sum over `i ≠ j` (when `exclude_diagonal`) or over all `i, j` of `k(a_i, b_j)`.
fn kernel_sum(a: &Tensor, b: &Tensor, kernel: MmdKernel, exclude_diagonal: bool) -> Result<Tensor> {
    let d = a.size()[1] as f64;
    let sq = a
        .f_unsqueeze(1)?
        .f_sub(&b.f_unsqueeze(0)?)?
        .f_square()?
        .f_sum_dim_intlist(-1, false, None::<Kind>)?;
    let k = match kernel {
        MmdKernel::InverseMultiquadratic { prior_variance } => {
            let mut total = sq.f_zeros_like()?;
            for s in IMQ_SCALES {
                let c = 2.0 * d * prior_variance * s;
                total = total.f_add(&sq.f_add_scalar(c)?.f_reciprocal()?.f_mul_scalar(c)?)?;
            }
            total
        }
        MmdKernel::Gaussian { prior_variance } => {
            let h2 = 2.0 * d * prior_variance;
            sq.f_mul_scalar(-1.0 / (2.0 * h2))?.f_exp()?
        }
    };
    let total = k.f_sum(k.kind())?;
    Ok(if exclude_diagonal {
        total.f_sub(&k.f_diagonal(0, 0, 1)?.f_sum(k.kind())?)?
    } else {
        total
    })
}

/// The unbiased `MMD²` between `codes` (`[N, d]`, with gradients) and `prior` draws
/// (`[M, d]`), `N, M ≥ 2`, as a differentiable scalar:
///
/// `Σ_{i≠j} k(z_i, z_j) / (N(N−1)) + Σ_{i≠j} k(z̃_i, z̃_j) / (M(M−1)) − 2 Σ_{i,j} k(z_i, z̃_j) / (NM)`.
///
/// ```
/// use genae_estimators::{mmd_penalty, MmdKernel};
/// use tch::{Device, Kind, Tensor};
///
/// tch::manual_seed(0);
/// let opts = (Kind::Double, Device::Cpu);
/// let kernel = MmdKernel::InverseMultiquadratic { prior_variance: 1.0 };
/// let prior = Tensor::randn([200, 4], opts);
/// let near = mmd_penalty(&Tensor::randn([200, 4], opts), &prior, kernel).unwrap();
/// let far = mmd_penalty(&(Tensor::randn([200, 4], opts) + 3.0), &prior, kernel).unwrap();
/// assert!(near.double_value(&[]).abs() < 0.05 && far.double_value(&[]) > 1.0);
/// ```
pub fn mmd_penalty(codes: &Tensor, prior: &Tensor, kernel: MmdKernel) -> Result<Tensor> {
    let shape_error = |name: &'static str, t: &Tensor| EstimatorError::InvalidArgument {
        name,
        reason: format!("must be [N ≥ 2, d], got {:?}", t.size()),
    };
    if codes.dim() != 2 || codes.size()[0] < 2 {
        return Err(shape_error("codes", codes));
    }
    if prior.dim() != 2 || prior.size()[0] < 2 || prior.size()[1] != codes.size()[1] {
        return Err(shape_error("prior", prior));
    }
    let variance = match kernel {
        MmdKernel::InverseMultiquadratic { prior_variance }
        | MmdKernel::Gaussian { prior_variance } => prior_variance,
    };
    if !(variance.is_finite() && variance > 0.0) {
        return Err(EstimatorError::InvalidArgument {
            name: "prior_variance",
            reason: format!("must be a finite number > 0, got {variance}"),
        });
    }
    let (n, m) = (codes.size()[0] as f64, prior.size()[0] as f64);
    let prior = prior.f_to_kind(codes.kind())?;
    let k_zz = kernel_sum(codes, codes, kernel, true)?.f_div_scalar(n * (n - 1.0))?;
    let k_pp = kernel_sum(&prior, &prior, kernel, true)?.f_div_scalar(m * (m - 1.0))?;
    let k_zp = kernel_sum(codes, &prior, kernel, false)?.f_div_scalar(n * m / 2.0)?;
    Ok(k_zz.f_add(&k_pp)?.f_sub(&k_zp)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    /// The same estimate by explicit loops over pairs, in f64.
    fn by_loops(a: &[[f64; 2]], b: &[[f64; 2]], k: impl Fn(f64) -> f64) -> f64 {
        let sq = |x: &[f64; 2], y: &[f64; 2]| (x[0] - y[0]).powi(2) + (x[1] - y[1]).powi(2);
        let within = |s: &[[f64; 2]]| {
            let mut t = 0.0;
            for (i, x) in s.iter().enumerate() {
                for (j, y) in s.iter().enumerate() {
                    if i != j {
                        t += k(sq(x, y));
                    }
                }
            }
            t / (s.len() * (s.len() - 1)) as f64
        };
        let mut cross = 0.0;
        for x in a {
            for y in b {
                cross += k(sq(x, y));
            }
        }
        within(a) + within(b) - 2.0 * cross / (a.len() * b.len()) as f64
    }

    fn tensor(rows: &[[f64; 2]]) -> Tensor {
        let flat: Vec<f64> = rows.iter().flatten().copied().collect();
        Tensor::from_slice(&flat).view([rows.len() as i64, 2])
    }

    #[test]
    fn both_kernels_match_explicit_sums() {
        let _rng = crate::torch_rng_lock();
        let a = [[0.0, 1.0], [2.0, -1.0], [0.5, 0.5]];
        let b = [[1.0, 1.0], [-1.0, 0.0]];
        let imq = |sq: f64| {
            IMQ_SCALES
                .iter()
                .map(|s| 4.0 * s / (4.0 * s + sq))
                .sum::<f64>()
        };
        let got = mmd_penalty(
            &tensor(&a),
            &tensor(&b),
            MmdKernel::InverseMultiquadratic {
                prior_variance: 1.0,
            },
        )
        .unwrap()
        .double_value(&[]);
        assert!((got - by_loops(&a, &b, imq)).abs() < 1e-12, "{got}");
        let rbf = |sq: f64| (-sq / 8.0).exp();
        let got = mmd_penalty(
            &tensor(&a),
            &tensor(&b),
            MmdKernel::Gaussian {
                prior_variance: 1.0,
            },
        )
        .unwrap()
        .double_value(&[]);
        assert!((got - by_loops(&a, &b, rbf)).abs() < 1e-12, "{got}");
    }

    #[test]
    fn the_gradient_pulls_codes_towards_the_prior() {
        let _rng = crate::torch_rng_lock();
        tch::manual_seed(3);
        let opts = (Kind::Double, Device::Cpu);
        let codes = (Tensor::randn([64, 2], opts) + 2.0).set_requires_grad(true);
        let prior = Tensor::randn([64, 2], opts);
        let kernel = MmdKernel::InverseMultiquadratic {
            prior_variance: 1.0,
        };
        let before = mmd_penalty(&codes, &prior, kernel).unwrap();
        before.backward();
        let moved = tch::no_grad(|| &codes - codes.grad() * 5.0);
        let after = mmd_penalty(&moved, &prior, kernel).unwrap();
        assert!(after.double_value(&[]) < before.double_value(&[]));
        // The mean gradient points away from the prior's centre (+2 along both axes).
        let mean_grad = codes.grad().mean_dim(0, false, Kind::Double);
        assert!(mean_grad.double_value(&[0]) > 0.0 && mean_grad.double_value(&[1]) > 0.0);
    }

    #[test]
    fn bad_shapes_are_named() {
        let _rng = crate::torch_rng_lock();
        let kernel = MmdKernel::Gaussian {
            prior_variance: 1.0,
        };
        let one = Tensor::zeros([1, 2], (Kind::Float, Device::Cpu));
        let two = Tensor::zeros([2, 2], (Kind::Float, Device::Cpu));
        let err = mmd_penalty(&one, &two, kernel).unwrap_err().to_string();
        assert!(err.contains("codes"), "{err}");
        let three = Tensor::zeros([2, 3], (Kind::Float, Device::Cpu));
        let err = mmd_penalty(&two, &three, kernel).unwrap_err().to_string();
        assert!(err.contains("prior"), "{err}");
    }
}
