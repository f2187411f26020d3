//! Gaussian mixtures fitted by EM: ex-post density estimation in latent space.
//!
//! A trained autoencoder's aggregate posterior rarely matches its prior; fitting a mixture of
//! Gaussians to the posterior means of the training set and sampling codes from it instead of
//! the prior (Ghosh et al. 2020, "From variational to deterministic autoencoders"; the
//! generation step that improved FID for most models in pythae's benchmark) often gives
//! better samples. [`GaussianMixture::fit`] runs EM in `f64` on the input's device: k-means++
//! initialisation (seeded), a few Lloyd steps, then EM in the log domain with Cholesky factors
//! of full covariances or diagonal variances, each covariance regularised by adding
//! `regularization` to its diagonal (scikit-learn's `reg_covar`). A component that loses all
//! its points is re-seeded at the point the mixture explains worst.
//!
//! ```
//! use genae_estimators::gmm::{CovarianceKind, GaussianMixture, GmmOptions};
//! use tch::{Kind, Tensor};
//!
//! tch::manual_seed(0);
//! let left = Tensor::randn([200, 2], (Kind::Double, tch::Device::Cpu)) - 5.0;
//! let right = Tensor::randn([200, 2], (Kind::Double, tch::Device::Cpu)) + 5.0;
//! let x = Tensor::cat(&[left, right], 0);
//! let options = GmmOptions { components: 2, covariance: CovarianceKind::Full, ..Default::default() };
//! let (gmm, report) = GaussianMixture::fit(&x, &options).unwrap();
//! assert!(report.converged);
//! let z = gmm.sample(5, 1).unwrap();
//! assert_eq!(z.size(), [5, 2]);
//! assert_eq!(gmm.log_prob(&z).unwrap().size(), [5]);
//! ```

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tch::{Device, Kind, Tensor};

use crate::error::EstimatorError;

type Result<T> = std::result::Result<T, EstimatorError>;

/// The shape of each component's covariance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CovarianceKind {
    /// A full `d × d` covariance per component.
    Full,
    /// A diagonal covariance (one variance per dimension) per component.
    Diagonal,
}

/// Settings of [`GaussianMixture::fit`].
#[derive(Clone, Debug, PartialEq)]
pub struct GmmOptions {
    /// Mixture components `k` (1 ..= N).
    pub components: usize,
    /// Full or diagonal covariances.
    pub covariance: CovarianceKind,
    /// EM iterations at most.
    pub max_iterations: usize,
    /// Stop when the mean log-likelihood changes by less than this.
    pub tolerance: f64,
    /// Added to every covariance's diagonal (keeps them positive definite).
    pub regularization: f64,
    /// Seed of the k-means++ initialisation.
    pub seed: u64,
}

impl Default for GmmOptions {
    /// 10 full-covariance components, 200 iterations, tolerance 1e-6, regularisation 1e-6,
    /// seed 0.
    fn default() -> Self {
        Self {
            components: 10,
            covariance: CovarianceKind::Full,
            max_iterations: 200,
            tolerance: 1e-6,
            regularization: 1e-6,
            seed: 0,
        }
    }
}

/// How a fit went.
#[derive(Clone, Debug, PartialEq)]
pub struct FitReport {
    /// EM iterations run.
    pub iterations: usize,
    /// Whether the mean log-likelihood settled within the tolerance.
    pub converged: bool,
    /// The mean log-likelihood of the data after each iteration's E-step.
    pub log_likelihood: Vec<f64>,
    /// Components re-seeded because they lost all their points.
    pub reseeded: usize,
}

/// A mixture of `k` Gaussians in `d` dimensions (all tensors `f64`).
#[derive(Debug)]
pub struct GaussianMixture {
    weights: Tensor,
    means: Tensor,
    /// `[k, d, d]` covariances (full) or `[k, d]` variances (diagonal).
    covariance: Tensor,
    kind: CovarianceKind,
    /// `[k, d, d]` lower Cholesky factors (full) or `[k, d]` standard deviations (diagonal).
    factor: Tensor,
}

fn invalid(name: &'static str, reason: impl Into<String>) -> EstimatorError {
    EstimatorError::InvalidArgument {
        name,
        reason: reason.into(),
    }
}

/// Lower Cholesky factors of `[k, d, d]` covariances; an error names the first component that
/// is not positive definite.
fn cholesky(covariance: &Tensor) -> Result<Tensor> {
    let (factor, info) = covariance.f_linalg_cholesky_ex(false, false)?;
    let info = Vec::<i64>::try_from(info.f_to_kind(Kind::Int64)?.f_view([-1])?)
        .map_err(|e| invalid("covariance", e.to_string()))?;
    if let Some(k) = info.iter().position(|&i| i != 0) {
        return Err(invalid(
            "covariance",
            format!(
                "component {k} is not positive definite even after regularisation \
                 (increase `regularization`)"
            ),
        ));
    }
    Ok(factor)
}

impl GaussianMixture {
    fn from_parts(
        weights: Tensor,
        means: Tensor,
        covariance: Tensor,
        kind: CovarianceKind,
    ) -> Result<Self> {
        let factor = match kind {
            CovarianceKind::Full => cholesky(&covariance)?,
            CovarianceKind::Diagonal => {
                let min = covariance.f_min()?.f_double_value(&[])?;
                if min.is_nan() || min <= 0.0 {
                    return Err(invalid(
                        "covariance",
                        format!("a variance is not positive ({min})"),
                    ));
                }
                covariance.f_sqrt()?
            }
        };
        Ok(Self {
            weights,
            means,
            covariance,
            kind,
            factor,
        })
    }

    /// Fits a mixture to the rows of `x` (`[N, d]`, any floating kind) by EM.
    pub fn fit(x: &Tensor, options: &GmmOptions) -> Result<(Self, FitReport)> {
        if x.dim() != 2 || !x.is_floating_point() {
            return Err(invalid(
                "x",
                format!(
                    "expected a floating [N, d] tensor, got {:?} of {:?}",
                    x.size(),
                    x.kind()
                ),
            ));
        }
        let (n, d) = (x.size()[0], x.size()[1]);
        let k = options.components as i64;
        if n == 0 || d == 0 {
            return Err(invalid("x", format!("is empty ({:?})", x.size())));
        }
        if k < 1 || k > n {
            return Err(invalid(
                "components",
                format!("must be in 1..={n} (the number of points), got {k}"),
            ));
        }
        if !(options.regularization >= 0.0 && options.regularization.is_finite()) {
            return Err(invalid(
                "regularization",
                format!("must be finite and ≥ 0, got {}", options.regularization),
            ));
        }
        let x = x.f_to_kind(Kind::Double)?;
        let finite = x.f_isfinite()?.f_all()?.f_int64_value(&[])? == 1;
        if !finite {
            return Err(invalid("x", "holds NaN or infinite values"));
        }
        let device = x.device();
        let centres = kmeans_init(&x, k, options.seed)?;
        let mut resp = hard_assignments(&x, &centres)?;
        let mut report = FitReport {
            iterations: 0,
            converged: false,
            log_likelihood: Vec::new(),
            reseeded: 0,
        };
        let mut gmm = m_step(&x, &resp, options, &mut report)?;
        let mut previous = f64::NEG_INFINITY;
        for iteration in 1..=options.max_iterations.max(1) {
            let (log_resp, mean_ll) = gmm.e_step(&x)?;
            report.iterations = iteration;
            report.log_likelihood.push(mean_ll);
            resp = log_resp.f_exp()?;
            if (mean_ll - previous).abs() < options.tolerance {
                report.converged = true;
                break;
            }
            previous = mean_ll;
            gmm = m_step(&x, &resp, options, &mut report)?;
        }
        let _ = device;
        Ok((gmm, report))
    }

    /// `[N, k]` log `w_j N(x_i | μ_j, Σ_j)`.
    fn joint_log_prob(&self, x: &Tensor) -> Result<Tensor> {
        let d = self.dim();
        if x.dim() != 2 || x.size()[1] != d {
            return Err(invalid(
                "x",
                format!("expected [N, {d}] points, got {:?}", x.size()),
            ));
        }
        let x = x
            .f_to_kind(Kind::Double)?
            .f_to_device(self.means.device())?;
        let k = self.components() as i64;
        let mut columns = Vec::with_capacity(k as usize);
        let log_2pi = (2.0 * std::f64::consts::PI).ln();
        for j in 0..k {
            let diff = x.f_sub(&self.means.f_get(j)?)?;
            let (maha, log_det) = match self.kind {
                CovarianceKind::Full => {
                    let l = self.factor.f_get(j)?;
                    let y =
                        l.f_linalg_solve_triangular(&diff.f_transpose(0, 1)?, false, true, false)?;
                    (
                        y.f_square()?.f_sum_dim_intlist(0, false, Kind::Double)?,
                        l.f_diagonal(0, 0, 1)?.f_log()?.f_sum(Kind::Double)? * 2.0,
                    )
                }
                CovarianceKind::Diagonal => {
                    let var = self.covariance.f_get(j)?;
                    (
                        diff.f_square()?
                            .f_div(&var)?
                            .f_sum_dim_intlist(1, false, Kind::Double)?,
                        var.f_log()?.f_sum(Kind::Double)?,
                    )
                }
            };
            let log_normal = (maha + log_det + d as f64 * log_2pi) * -0.5;
            columns.push(log_normal + self.weights.f_get(j)?.f_log()?);
        }
        Ok(Tensor::f_stack(&columns, 1)?)
    }

    /// Log responsibilities `[N, k]` and the mean log-likelihood.
    fn e_step(&self, x: &Tensor) -> Result<(Tensor, f64)> {
        let joint = self.joint_log_prob(x)?;
        let norm = joint.f_logsumexp([1i64].as_slice(), true)?;
        let mean = norm.f_mean(Kind::Double)?.f_double_value(&[])?;
        Ok((joint.f_sub(&norm)?, mean))
    }

    /// `log p(x)` of each row of `x` (`[N, d]`), `[N]` (`f64`).
    pub fn log_prob(&self, x: &Tensor) -> Result<Tensor> {
        Ok(self
            .joint_log_prob(x)?
            .f_logsumexp([1i64].as_slice(), false)?)
    }

    /// `n` draws `[n, d]` (`f64`, on the mixture's device), the same for the same `seed`
    /// whatever libtorch's generator holds: components and standard normals are drawn by a
    /// ChaCha8 generator seeded by `seed`.
    pub fn sample(&self, n: i64, seed: u64) -> Result<Tensor> {
        if n < 1 {
            return Err(invalid("n", format!("must be at least 1, got {n}")));
        }
        let d = self.dim();
        let weights = Vec::<f64>::try_from(self.weights.f_to_device(Device::Cpu)?)
            .map_err(|e| invalid("weights", e.to_string()))?;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut components = Vec::with_capacity(n as usize);
        for _ in 0..n {
            let u: f64 = rng.gen();
            let mut acc = 0.0;
            let mut chosen = weights.len() - 1;
            for (j, w) in weights.iter().enumerate() {
                acc += w;
                if u < acc {
                    chosen = j;
                    break;
                }
            }
            components.push(chosen as i64);
        }
        let normals: Vec<f64> = (0..n * d).map(|_| standard_normal(&mut rng)).collect();
        let device = self.means.device();
        let eps = Tensor::f_from_slice(&normals)?
            .f_view([n, d])?
            .f_to_device(device)?;
        let index = Tensor::f_from_slice(&components)?.f_to_device(device)?;
        let means = self.means.f_index_select(0, &index)?;
        let offsets = match self.kind {
            CovarianceKind::Full => self
                .factor
                .f_index_select(0, &index)?
                .f_matmul(&eps.f_unsqueeze(2)?)?
                .f_squeeze_dim(2)?,
            CovarianceKind::Diagonal => self.factor.f_index_select(0, &index)?.f_mul(&eps)?,
        };
        Ok(means.f_add(&offsets)?)
    }

    /// Dimensions `d`.
    pub fn dim(&self) -> i64 {
        self.means.size()[1]
    }

    /// Components `k`.
    pub fn components(&self) -> usize {
        self.weights.size()[0] as usize
    }

    /// Mixture weights `[k]`.
    pub fn weights(&self) -> &Tensor {
        &self.weights
    }

    /// Component means `[k, d]`.
    pub fn means(&self) -> &Tensor {
        &self.means
    }

    /// Covariances `[k, d, d]` (full) or variances `[k, d]` (diagonal).
    pub fn covariance(&self) -> &Tensor {
        &self.covariance
    }

    /// Full or diagonal.
    pub fn covariance_kind(&self) -> CovarianceKind {
        self.kind
    }

    /// `gmm.weights`, `gmm.means` and `gmm.covariance` (on the CPU), e.g. for a safetensors
    /// file beside a run.
    pub fn to_named_tensors(&self) -> Vec<(String, Tensor)> {
        vec![
            ("gmm.weights".into(), self.weights.to_device(Device::Cpu)),
            ("gmm.means".into(), self.means.to_device(Device::Cpu)),
            (
                "gmm.covariance".into(),
                self.covariance.to_device(Device::Cpu),
            ),
        ]
    }

    /// A mixture from [`GaussianMixture::to_named_tensors`]' entries; the covariance's rank
    /// says full (`[k, d, d]`) or diagonal (`[k, d]`). An error names the missing or
    /// mis-shaped entry.
    pub fn from_named_tensors(named: &[(String, Tensor)]) -> Result<Self> {
        let get = |key: &'static str| -> Result<Tensor> {
            named
                .iter()
                .find(|(n, _)| n == key)
                .map(|(_, t)| t.to_kind(Kind::Double))
                .ok_or_else(|| invalid(key, "missing"))
        };
        let (weights, means, covariance) = (
            get("gmm.weights")?,
            get("gmm.means")?,
            get("gmm.covariance")?,
        );
        if weights.dim() != 1 || means.dim() != 2 || means.size()[0] != weights.size()[0] {
            return Err(invalid(
                "gmm.means",
                format!(
                    "expected [k, d] means for {:?} weights, got {:?}",
                    weights.size(),
                    means.size()
                ),
            ));
        }
        let (k, d) = (means.size()[0], means.size()[1]);
        let kind = if covariance.size() == [k, d, d] {
            CovarianceKind::Full
        } else if covariance.size() == [k, d] {
            CovarianceKind::Diagonal
        } else {
            return Err(invalid(
                "gmm.covariance",
                format!(
                    "expected [{k}, {d}, {d}] or [{k}, {d}], got {:?}",
                    covariance.size()
                ),
            ));
        };
        Self::from_parts(weights, means, covariance, kind)
    }
}

/// One standard normal draw (Box–Muller).
fn standard_normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = 1.0 - rng.gen::<f64>(); // (0, 1]
    let u2: f64 = rng.gen();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// `[N, k]` squared distances between the rows of `x` and `centres`.
fn squared_distances(x: &Tensor, centres: &Tensor) -> Result<Tensor> {
    let xx = x.f_square()?.f_sum_dim_intlist(1, true, Kind::Double)?;
    let cc = centres
        .f_square()?
        .f_sum_dim_intlist(1, false, Kind::Double)?
        .f_unsqueeze(0)?;
    let cross = x.f_matmul(&centres.f_transpose(0, 1)?)?;
    Ok((xx + cc - cross * 2.0).f_clamp_min(0.0)?)
}

/// k-means++ centres (seeded), refined by 10 Lloyd steps.
fn kmeans_init(x: &Tensor, k: i64, seed: u64) -> Result<Tensor> {
    let n = x.size()[0];
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut chosen = vec![rng.gen_range(0..n)];
    let mut nearest = squared_distances(x, &x.f_narrow(0, chosen[0], 1)?)?.f_view([-1])?;
    while (chosen.len() as i64) < k {
        let d2 = Vec::<f64>::try_from(nearest.f_to_device(Device::Cpu)?)
            .map_err(|e| invalid("x", e.to_string()))?;
        let total: f64 = d2.iter().sum();
        let next = if total > 0.0 {
            let target = rng.gen::<f64>() * total;
            let mut acc = 0.0;
            d2.iter()
                .position(|v| {
                    acc += v;
                    acc > target
                })
                .unwrap_or(d2.len() - 1) as i64
        } else {
            // Every point coincides with a centre: any point will do.
            rng.gen_range(0..n)
        };
        chosen.push(next);
        let d_new = squared_distances(x, &x.f_narrow(0, next, 1)?)?.f_view([-1])?;
        nearest = nearest.f_minimum(&d_new)?;
    }
    let index = Tensor::f_from_slice(&chosen)?.f_to_device(x.device())?;
    let mut centres = x.f_index_select(0, &index)?;
    for _ in 0..10 {
        let assign = squared_distances(x, &centres)?.f_argmin(1, false)?;
        let one_hot = assign.f_one_hot(k)?.f_to_kind(Kind::Double)?;
        let counts = one_hot.f_sum_dim_intlist(0, false, Kind::Double)?;
        let sums = one_hot.f_transpose(0, 1)?.f_matmul(x)?;
        // Keep a centre that lost its points where it was.
        let keep = counts.f_eq(0.0)?.f_unsqueeze(1)?;
        let updated = sums.f_div(&counts.f_clamp_min(1.0)?.f_unsqueeze(1)?)?;
        centres = updated.f_where_self(&keep.f_logical_not()?, &centres)?;
    }
    Ok(centres)
}

/// One-hot responsibilities `[N, k]` of the nearest centre.
fn hard_assignments(x: &Tensor, centres: &Tensor) -> Result<Tensor> {
    let k = centres.size()[0];
    Ok(squared_distances(x, centres)?
        .f_argmin(1, false)?
        .f_one_hot(k)?
        .f_to_kind(Kind::Double)?)
}

/// The M-step from responsibilities `[N, k]`; components with (almost) no points are
/// re-seeded at the point the others explain worst.
fn m_step(
    x: &Tensor,
    resp: &Tensor,
    options: &GmmOptions,
    report: &mut FitReport,
) -> Result<GaussianMixture> {
    let (n, d) = (x.size()[0], x.size()[1]);
    let k = resp.size()[1];
    let mut resp = resp.shallow_clone();
    let counts = Vec::<f64>::try_from(
        resp.f_sum_dim_intlist(0, false, Kind::Double)?
            .f_to_device(Device::Cpu)?,
    )
    .map_err(|e| invalid("x", e.to_string()))?;
    let empty: Vec<i64> = (0..k).filter(|&j| counts[j as usize] < 1e-10).collect();
    if !empty.is_empty() {
        // The points farthest from every non-empty component's mean take the empty ones.
        let totals = resp.f_transpose(0, 1)?.f_matmul(x)?;
        let means = totals.f_div(
            &resp
                .f_sum_dim_intlist(0, false, Kind::Double)?
                .f_clamp_min(1e-300)?
                .f_unsqueeze(1)?,
        )?;
        let far = squared_distances(x, &means)?
            .f_min_dim(1, false)?
            .0
            .f_argsort(0, true)?;
        let resp_new = resp.f_detach_copy()?;
        for (i, &j) in empty.iter().enumerate() {
            let point = far.f_get(i as i64)?.f_int64_value(&[])?;
            let _ = resp_new.f_get(point)?.f_fill_(0.0)?;
            let _ = resp_new.f_get(point)?.f_get(j)?.f_fill_(1.0)?;
        }
        resp = resp_new;
        report.reseeded += empty.len();
    }
    let nk = resp
        .f_sum_dim_intlist(0, false, Kind::Double)?
        .f_add_scalar(10.0 * f64::EPSILON)?;
    let weights = nk.f_div_scalar(n as f64)?;
    let means = resp
        .f_transpose(0, 1)?
        .f_matmul(x)?
        .f_div(&nk.f_unsqueeze(1)?)?;
    let reg = options.regularization;
    let covariance = match options.covariance {
        CovarianceKind::Full => {
            let eye = Tensor::f_eye(d, (Kind::Double, x.device()))?.f_mul_scalar(reg)?;
            let mut covs = Vec::with_capacity(k as usize);
            for j in 0..k {
                let diff = x.f_sub(&means.f_get(j)?)?;
                let weighted = diff.f_mul(&resp.f_select(1, j)?.f_unsqueeze(1)?)?;
                let cov = weighted
                    .f_transpose(0, 1)?
                    .f_matmul(&diff)?
                    .f_div(&nk.f_get(j)?)?
                    .f_add(&eye)?;
                // Symmetrise against rounding.
                covs.push(cov.f_add(&cov.f_transpose(0, 1)?)?.f_mul_scalar(0.5)?);
            }
            Tensor::f_stack(&covs, 0)?
        }
        CovarianceKind::Diagonal => {
            // E[x²] − μ² per component, as scikit-learn computes it.
            let second = resp
                .f_transpose(0, 1)?
                .f_matmul(&x.f_square()?)?
                .f_div(&nk.f_unsqueeze(1)?)?;
            second
                .f_sub(&means.f_square()?)?
                .f_clamp_min(0.0)?
                .f_add_scalar(reg)?
        }
    };
    GaussianMixture::from_parts(weights, means, covariance, options.covariance)
}

#[cfg(test)]
mod tests;
