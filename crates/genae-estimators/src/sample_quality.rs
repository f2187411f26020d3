//! Sample-quality metrics: the Fréchet distance between Gaussians fitted to two feature sets
//! (FID when the features come from an Inception network) and the kernel maximum mean
//! discrepancy with a Gaussian kernel.

use tch::{Device, Kind, Tensor};

use crate::{EstimatorError, Result};

/// Rows per block in the kernel sums of [`mmd_gaussian`], which keeps its memory at
/// `O(block · max(N, M))` whatever the sample sizes.
const KERNEL_BLOCK_ROWS: i64 = 1024;

/// The median heuristic of [`mmd_gaussian`] looks at no more than this many pooled points
/// (evenly spaced rows of `[a; b]`), so its `O(P²)` distance matrix stays small.
pub const MEDIAN_HEURISTIC_MAX_POINTS: i64 = 2048;

/// Mean and covariance of a set of feature vectors, in `f64`: compute them once for a
/// reference set (the test set) and reuse them with [`FeatureStats::frechet_distance`].
///
/// ```
/// use genae_estimators::{frechet_distance, FeatureStats};
/// use tch::{Device, Kind, Tensor};
///
/// tch::manual_seed(0);
/// let test_features = Tensor::randn([500, 4], (Kind::Float, Device::Cpu));
/// let reference = FeatureStats::from_features(&test_features).unwrap(); // once
/// let samples = Tensor::randn([300, 4], (Kind::Float, Device::Cpu)) + 1.0;
/// let d = FeatureStats::from_features(&samples).unwrap().frechet_distance(&reference).unwrap();
/// assert!((d - frechet_distance(&samples, &test_features).unwrap()).abs() < 1e-9);
/// assert!(d > 3.0); // ‖μa − μb‖² ≈ 4 for the shift by 1 in 4 dimensions
/// ```
#[derive(Debug)]
pub struct FeatureStats {
    mean: Tensor,
    cov: Tensor,
    count: Option<i64>,
}

impl FeatureStats {
    /// The mean `[F]` and unbiased covariance `[F, F]` (divided by `N − 1`) of `features`
    /// (`[N, F]`, `N ≥ 2`, finite), computed in `f64` on the features' device.
    pub fn from_features(features: &Tensor) -> Result<Self> {
        stats_of("features", features)
    }

    /// Statistics given directly: `mean` `[F]` and a symmetric `cov` `[F, F]` (converted to
    /// `f64`; `cov` should be positive semi-definite, tiny negative eigenvalues from rounding
    /// are treated as 0).
    pub fn new(mean: Tensor, cov: Tensor) -> Result<Self> {
        if mean.dim() != 1 || mean.size()[0] < 1 || !mean.is_floating_point() {
            return Err(invalid(
                "mean",
                format!(
                    "must be a non-empty floating-point vector [F], got {:?} {:?}",
                    mean.kind(),
                    mean.size()
                ),
            ));
        }
        let f = mean.size()[0];
        if cov.size() != [f, f] || !cov.is_floating_point() {
            return Err(invalid(
                "cov",
                format!(
                    "must be a floating-point [F, F] = [{f}, {f}] matrix like `mean`, got {:?} {:?}",
                    cov.kind(),
                    cov.size()
                ),
            ));
        }
        if cov.device() != mean.device() {
            return Err(invalid(
                "cov",
                format!(
                    "is on {:?} while `mean` is on {:?}",
                    cov.device(),
                    mean.device()
                ),
            ));
        }
        let mean = mean.f_to_kind(Kind::Double)?;
        let cov = cov.f_to_kind(Kind::Double)?;
        check_finite("mean", &mean)?;
        check_finite("cov", &cov)?;
        let scale = cov.f_abs()?.f_max()?.double_value(&[]);
        let asymmetry = cov
            .f_sub(&cov.f_transpose(0, 1)?)?
            .f_abs()?
            .f_max()?
            .double_value(&[]);
        if asymmetry > 1e-6 * scale.max(f64::MIN_POSITIVE) {
            return Err(invalid(
                "cov",
                format!("must be symmetric, but differs from its transpose by up to {asymmetry}"),
            ));
        }
        Ok(Self {
            mean,
            cov,
            count: None,
        })
    }

    /// The mean, `[F]`, `f64`.
    pub fn mean(&self) -> &Tensor {
        &self.mean
    }

    /// The covariance, `[F, F]`, `f64`.
    pub fn cov(&self) -> &Tensor {
        &self.cov
    }

    /// The feature dimension `F`.
    pub fn dim(&self) -> i64 {
        self.mean.size()[0]
    }

    /// How many feature vectors the statistics were computed from (`None` when given directly
    /// through [`FeatureStats::new`]).
    pub fn count(&self) -> Option<i64> {
        self.count
    }

    /// The Fréchet distance between the Gaussians `N(μa, Σa)` (self) and `N(μb, Σb)` (other):
    /// `‖μa − μb‖² + Tr(Σa + Σb − 2 (Σa^{1/2} Σb Σa^{1/2})^{1/2})`, in `f64`, the matrix square
    /// roots by symmetric eigen-decomposition with negative eigenvalues (rounding) clamped to 0;
    /// the result is clamped at 0 for the same reason. `other` is moved to this one's device
    /// if it lives elsewhere.
    pub fn frechet_distance(&self, other: &FeatureStats) -> Result<f64> {
        if other.dim() != self.dim() {
            return Err(invalid(
                "other",
                format!(
                    "has {} features, these statistics have {}",
                    other.dim(),
                    self.dim()
                ),
            ));
        }
        let device = self.mean.device();
        let other_mean = other.mean.f_to_device(device)?;
        let other_cov = other.cov.f_to_device(device)?;
        let diff = self.mean.f_sub(&other_mean)?;
        let mean_term = diff.f_dot(&diff)?.double_value(&[]);
        let sqrt_a = symmetric_sqrt(&self.cov)?;
        let product = sqrt_a.f_mm(&other_cov)?.f_mm(&sqrt_a)?;
        let product = (&product + product.f_transpose(0, 1)?) * 0.5;
        let cross = product
            .f_linalg_eigvalsh("L")?
            .f_clamp_min(0.0)?
            .f_sqrt()?
            .f_sum(Kind::Double)?
            .double_value(&[]);
        let trace_a = self.cov.f_trace()?.double_value(&[]);
        let trace_b = other_cov.f_trace()?.double_value(&[]);
        Ok((mean_term + trace_a + trace_b - 2.0 * cross).max(0.0))
    }
}

/// The Fréchet distance between Gaussians fitted to two feature sets, `features_a` `[N, F]`
/// and `features_b` `[M, F]` (`N, M ≥ 2`): the FID formula
/// `‖μa − μb‖² + Tr(Σa + Σb − 2 (Σa^{1/2} Σb Σa^{1/2})^{1/2})` with unbiased covariances, in
/// `f64` (see [`FeatureStats::frechet_distance`]). Both sets must be on the same device.
///
/// ```
/// use genae_estimators::frechet_distance;
/// use tch::{Device, Kind, Tensor};
///
/// let a = Tensor::randn([200, 3], (Kind::Double, Device::Cpu));
/// // Shifting a set by c moves only the mean: the distance is ‖c‖².
/// let c = Tensor::from_slice(&[1.0f64, -2.0, 0.5]);
/// let d = frechet_distance(&a, &(&a + &c)).unwrap();
/// assert!((d - 5.25).abs() < 1e-9);
/// assert!(frechet_distance(&a, &a).unwrap() < 1e-9);
/// ```
pub fn frechet_distance(features_a: &Tensor, features_b: &Tensor) -> Result<f64> {
    check_rows("features_a", features_a)?;
    check_rows("features_b", features_b)?;
    let (width_a, width_b) = (features_a.size()[1], features_b.size()[1]);
    if width_b != width_a {
        return Err(invalid(
            "features_b",
            format!("has {width_b} features per row, `features_a` has {width_a}"),
        ));
    }
    if features_b.device() != features_a.device() {
        return Err(invalid(
            "features_b",
            format!(
                "is on {:?} while `features_a` is on {:?}",
                features_b.device(),
                features_a.device()
            ),
        ));
    }
    let a = stats_of("features_a", features_a)?;
    let b = stats_of("features_b", features_b)?;
    a.frechet_distance(&b)
}

/// What [`mmd_gaussian`] returns.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MmdEstimate {
    /// The unbiased estimate of `MMD²` (it can be slightly negative when the two
    /// distributions are equal or close).
    pub mmd2: f64,
    /// The kernel bandwidth `h` used, given or from the median heuristic.
    pub bandwidth: f64,
}

/// The unbiased estimate of the squared maximum mean discrepancy between the samples `a`
/// (`[N, d]`) and `b` (`[M, d]`), `N, M ≥ 2`, with the Gaussian kernel
/// `k(x, y) = exp(−‖x − y‖² / (2h²))`:
///
/// `MMD² = Σ_{i≠j} k(a_i, a_j) / (N(N−1)) + Σ_{i≠j} k(b_i, b_j) / (M(M−1)) − 2 Σ_{i,j} k(a_i, b_j) / (NM)`
///
/// (Gretton et al., 2012). `bandwidth = None` picks `h` by the median heuristic: the (lower)
/// median of the pairwise distances between distinct points of the pooled sample `[a; b]`,
/// over at most [`MEDIAN_HEURISTIC_MAX_POINTS`] evenly spaced pooled rows. Computed in `f64`
/// on the samples' device (which must be the same), in row blocks of bounded memory.
///
/// ```
/// use genae_estimators::mmd_gaussian;
/// use tch::{Device, Kind, Tensor};
///
/// tch::manual_seed(0);
/// let opts = (Kind::Double, Device::Cpu);
/// let a = Tensor::randn([300, 2], opts);
/// let same = mmd_gaussian(&a, &Tensor::randn([300, 2], opts), None).unwrap();
/// let shifted = mmd_gaussian(&a, &(Tensor::randn([300, 2], opts) + 2.0), Some(1.0)).unwrap();
/// assert!(same.mmd2.abs() < 0.05 && same.bandwidth > 0.0);
/// assert!(shifted.mmd2 > 0.3 && shifted.bandwidth == 1.0);
/// ```
pub fn mmd_gaussian(a: &Tensor, b: &Tensor, bandwidth: Option<f64>) -> Result<MmdEstimate> {
    let n = check_rows("a", a)?;
    let m = check_rows("b", b)?;
    if b.size()[1] != a.size()[1] {
        return Err(invalid(
            "b",
            format!(
                "has {} dimensions per row, `a` has {}",
                b.size()[1],
                a.size()[1]
            ),
        ));
    }
    if b.device() != a.device() {
        return Err(invalid(
            "b",
            format!("is on {:?} while `a` is on {:?}", b.device(), a.device()),
        ));
    }
    let a = a.f_to_kind(Kind::Double)?;
    let b = b.f_to_kind(Kind::Double)?;
    check_finite("a", &a)?;
    check_finite("b", &b)?;
    let h = match bandwidth {
        Some(h) if h.is_finite() && h > 0.0 => h,
        Some(h) => {
            return Err(invalid(
                "bandwidth",
                format!("must be a finite number > 0, got {h}"),
            ))
        }
        None => median_heuristic(&a, &b)?,
    };
    let (n_f, m_f) = (n as f64, m as f64);
    let k_aa = kernel_sum(&a, &a, h, true)? / (n_f * (n_f - 1.0));
    let k_bb = kernel_sum(&b, &b, h, true)? / (m_f * (m_f - 1.0));
    let k_ab = kernel_sum(&a, &b, h, false)? / (n_f * m_f);
    Ok(MmdEstimate {
        mmd2: k_aa + k_bb - 2.0 * k_ab,
        bandwidth: h,
    })
}

fn invalid(name: &'static str, reason: String) -> EstimatorError {
    EstimatorError::InvalidArgument { name, reason }
}

/// Checks that `t` is a floating-point `[N, d]` matrix with `N ≥ 2`, `d ≥ 1`; returns `N`.
fn check_rows(name: &'static str, t: &Tensor) -> Result<i64> {
    let size = t.size();
    if size.len() != 2 || size[0] < 2 || size[1] < 1 || !t.is_floating_point() {
        return Err(invalid(
            name,
            format!(
                "must be a floating-point [N, d] matrix with N ≥ 2 rows and d ≥ 1, got {:?} {size:?}",
                t.kind()
            ),
        ));
    }
    Ok(size[0])
}

fn check_finite(name: &'static str, t: &Tensor) -> Result<()> {
    if bool::try_from(t.f_isfinite()?.f_all()?)? {
        Ok(())
    } else {
        Err(invalid(name, "contains NaN or infinite values".to_string()))
    }
}

fn stats_of(name: &'static str, features: &Tensor) -> Result<FeatureStats> {
    let n = check_rows(name, features)?;
    let x = features.f_to_kind(Kind::Double)?;
    check_finite(name, &x)?;
    let mean = x.f_mean_dim(0, false, None::<Kind>)?;
    let centred = x.f_sub(&mean)?;
    let cov = centred.f_transpose(0, 1)?.f_mm(&centred)? / (n - 1) as f64;
    Ok(FeatureStats {
        mean,
        cov,
        count: Some(n),
    })
}

/// `S^{1/2}` of a symmetric positive semi-definite `S`, by `eigh`, negative eigenvalues
/// clamped to 0.
fn symmetric_sqrt(s: &Tensor) -> Result<Tensor> {
    let (eigenvalues, vectors) = s.f_linalg_eigh("L")?;
    let roots = eigenvalues.f_clamp_min(0.0)?.f_sqrt()?;
    Ok((&vectors * roots.f_unsqueeze(0)?).f_mm(&vectors.f_transpose(0, 1)?)?)
}

/// `‖x_i − y_j‖²` for every pair, `[rows of x, rows of y]`, clamped at 0.
fn squared_distances(x: &Tensor, y: &Tensor) -> Result<Tensor> {
    let xx = x.f_square()?.f_sum_dim_intlist(1, false, None::<Kind>)?;
    let yy = y.f_square()?.f_sum_dim_intlist(1, false, None::<Kind>)?;
    let cross = x.f_mm(&y.f_transpose(0, 1)?)?;
    Ok((xx.f_unsqueeze(1)? + yy.f_unsqueeze(0)? - cross * 2.0).f_clamp_min(0.0)?)
}

/// `Σ_{i,j} k(x_i, y_j)`, without the `i = j` terms when `x` and `y` are the same sample.
fn kernel_sum(x: &Tensor, y: &Tensor, h: f64, same: bool) -> Result<f64> {
    let rows = x.size()[0];
    let mut total = Tensor::zeros([], (Kind::Double, x.device()));
    let mut start = 0;
    while start < rows {
        let len = KERNEL_BLOCK_ROWS.min(rows - start);
        let block = x.f_narrow(0, start, len)?;
        let k = (squared_distances(&block, y)? * (-0.5 / (h * h))).f_exp()?;
        total = total.f_add(&k.f_sum(Kind::Double)?)?;
        if same {
            let diagonal = k.f_narrow(1, start, len)?.f_diagonal(0, 0, 1)?;
            total = total.f_sub(&diagonal.f_sum(Kind::Double)?)?;
        }
        start += len;
    }
    Ok(total.f_to_device(Device::Cpu)?.double_value(&[]))
}

/// The lower median of the distances between distinct pooled points (see [`mmd_gaussian`]).
fn median_heuristic(a: &Tensor, b: &Tensor) -> Result<f64> {
    let mut pooled = Tensor::f_cat(&[a, b], 0)?;
    let total = pooled.size()[0];
    if total > MEDIAN_HEURISTIC_MAX_POINTS {
        let index = Tensor::f_linspace(
            0.0,
            (total - 1) as f64,
            MEDIAN_HEURISTIC_MAX_POINTS,
            (Kind::Double, pooled.device()),
        )?
        .f_round()?
        .f_to_kind(Kind::Int64)?;
        pooled = pooled.f_index_select(0, &index)?;
    }
    let p = pooled.size()[0];
    let upper = Tensor::f_ones([p, p], (Kind::Bool, pooled.device()))?.f_triu(1)?;
    let distances = squared_distances(&pooled, &pooled)?
        .f_masked_select(&upper)?
        .f_sqrt()?;
    let h = distances.f_median()?.double_value(&[]);
    if h.is_finite() && h > 0.0 {
        Ok(h)
    } else {
        Err(invalid(
            "bandwidth",
            format!(
                "the median heuristic gave {h} (at least half of the pooled points coincide); \
                 pass a bandwidth"
            ),
        ))
    }
}
