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
mod tests {
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
        let b =
            normal(900, 2, 2) * Tensor::from_slice(&[1.0, 0.3]) + Tensor::from_slice(&[6.0, 0.0]);
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
        let x =
            normal(500, 2, 0) * Tensor::from_slice(&[1.0, 2.0]) + Tensor::from_slice(&[1.0, -1.0]);
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
}
