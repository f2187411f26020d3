//! Principal component analysis in closed form: the linear baseline.

use tch::{Kind, Tensor};

use crate::networks::flatten_input;
use crate::{GenerativeDecoder, Result, ZooError};

/// PCA fitted by the singular value decomposition of the centred data, in `f64`
/// (`torch.linalg.svd` on CUDA, `torch.svd` on the CPU, where tch cannot call `linalg.svd`
/// without a driver argument that libtorch refuses for CPU tensors).
///
/// With `X − mean = U S Vᵀ` (`N` examples), the components are the first `n_components` rows
/// of `Vᵀ` (each with its largest-magnitude entry made positive, so fits are reproducible),
/// and the explained variances are `S² / (N − 1)`, the leading eigenvalues of the sample
/// covariance. Codes are `(x − mean) Vₖ`, reconstructions `code Vₖᵀ + mean`. Tensors are kept
/// on the data's device; results come back in the kind of the input.
///
/// ```
/// use genae_zoo::Pca;
/// use tch::{Device, Kind, Tensor};
///
/// // Points on a line in 3-d: one component explains everything.
/// let t = Tensor::randn([50, 1], (Kind::Double, Device::Cpu));
/// let data = t * Tensor::from_slice(&[1.0f64, 2.0, -2.0]).view([1, 3]);
/// let pca = Pca::fit(&data, 1).unwrap();
/// assert!(pca.explained_variance_ratio().double_value(&[0]) > 1.0 - 1e-9);
/// assert_eq!(pca.encode(&data).unwrap().size(), vec![50, 1]);
/// assert!(pca.mean_squared_error(&data).unwrap() < 1e-20);
/// ```
#[derive(Debug)]
pub struct Pca {
    mean: Tensor,               // [D], f64
    components: Tensor,         // [k, D], f64
    explained_variance: Tensor, // [k], f64
    total_variance: f64,
    n_samples: i64,
}

impl Pca {
    /// Fits `n_components` components (`1 ≤ n_components ≤ min(N, D)`) to `data` `[N, ...]`
    /// (`N ≥ 2`).
    pub fn fit(data: &Tensor, n_components: i64) -> Result<Self> {
        if data.dim() < 2 || data.size()[0] < 2 {
            return Err(ZooError::Shape {
                what: "Pca::fit",
                detail: format!("expected [N, D] data with N ≥ 2, got {:?}", data.size()),
            });
        }
        let x = data.f_flatten(1, -1)?.f_to_kind(Kind::Double)?;
        let (n, d) = (x.size()[0], x.size()[1]);
        if n_components < 1 || n_components > n.min(d) {
            return Err(ZooError::InvalidConfig {
                field: "n_components",
                reason: format!(
                    "must be between 1 and min(N, D) = {} for data of shape [{n}, {d}], got \
                     {n_components}",
                    n.min(d)
                ),
            });
        }
        let mean = x.f_mean_dim(0, false, None::<Kind>)?;
        let centred = x.f_sub(&mean)?;
        let (_u, s, vh) = svd(&centred)?;
        let components = vh.f_narrow(0, 0, n_components)?;
        // Sign convention: the largest-magnitude entry of each component is positive.
        let largest = components.f_abs()?.f_argmax(1, true)?;
        let signs = components.f_gather(1, &largest, false)?.f_sign()?;
        let components = components.f_mul(&signs)?;
        let variances = s.f_square()? / (n - 1) as f64;
        let total_variance = variances.f_sum(Kind::Double)?.f_double_value(&[])?;
        Ok(Self {
            mean,
            components,
            explained_variance: variances.f_narrow(0, 0, n_components)?,
            total_variance,
            n_samples: n,
        })
    }

    /// The number of components `k`.
    pub fn n_components(&self) -> i64 {
        self.components.size()[0]
    }

    /// The data dimension `D`.
    pub fn input_dim(&self) -> i64 {
        self.components.size()[1]
    }

    /// The number of examples it was fitted on.
    pub fn n_samples(&self) -> i64 {
        self.n_samples
    }

    /// The data mean `[D]` (f64).
    pub fn mean(&self) -> &Tensor {
        &self.mean
    }

    /// The principal axes `[k, D]` (orthonormal rows, f64), by decreasing variance.
    pub fn components(&self) -> &Tensor {
        &self.components
    }

    /// The variance of the data along each component `[k]` (f64): `S² / (N − 1)`.
    pub fn explained_variance(&self) -> &Tensor {
        &self.explained_variance
    }

    /// The fraction of the total variance along each component `[k]` (f64).
    pub fn explained_variance_ratio(&self) -> Tensor {
        &self.explained_variance / self.total_variance
    }

    /// The total variance of the data (the sum over all `min(N, D)` components).
    pub fn total_variance(&self) -> f64 {
        self.total_variance
    }

    /// Codes `[N, k]` for data `[N, ...]`.
    pub fn encode(&self, x: &Tensor) -> Result<Tensor> {
        let flat = flatten_input(x, self.input_dim(), "Pca::encode")?;
        let codes = flat
            .f_to_kind(Kind::Double)?
            .f_sub(&self.mean)?
            .f_matmul(&self.components.tr())?;
        Ok(codes.f_to_kind(x.kind())?)
    }

    /// Data `[N, D]` for codes `[N, k]`.
    pub fn decode(&self, codes: &Tensor) -> Result<Tensor> {
        let k = self.n_components();
        if codes.dim() != 2 || codes.size()[1] != k {
            return Err(ZooError::Shape {
                what: "Pca::decode",
                detail: format!("expected codes of shape [N, {k}], got {:?}", codes.size()),
            });
        }
        let x = codes
            .f_to_kind(Kind::Double)?
            .f_matmul(&self.components)?
            .f_add(&self.mean)?;
        Ok(x.f_to_kind(codes.kind())?)
    }

    /// The projection of `x` onto the principal subspace, `[N, D]`.
    pub fn reconstruct(&self, x: &Tensor) -> Result<Tensor> {
        self.decode(&self.encode(x)?)
    }

    /// `mean((x − reconstruct(x))²)` over all examples and dimensions, computed in f64.
    pub fn mean_squared_error(&self, data: &Tensor) -> Result<f64> {
        let flat = flatten_input(data, self.input_dim(), "Pca::mean_squared_error")?
            .f_to_kind(Kind::Double)?;
        let centred = flat.f_sub(&self.mean)?;
        let projected = centred
            .f_matmul(&self.components.tr())?
            .f_matmul(&self.components)?;
        Ok(centred
            .f_sub(&projected)?
            .f_square()?
            .f_mean(Kind::Double)?
            .f_double_value(&[])?)
    }
}

impl GenerativeDecoder for Pca {
    fn decode_mean(&self, z: &Tensor) -> Result<Tensor> {
        self.decode(z)
    }
}

/// The thin SVD `(U, S, Vᵀ)`. On CUDA through `torch.linalg.svd` with the `gesvd` driver (the
/// accurate one); elsewhere through `torch.svd` (the same LAPACK routine behind
/// `torch.linalg.svd`), because tch always passes a driver string and libtorch accepts one only
/// for CUDA tensors.
fn svd(a: &Tensor) -> Result<(Tensor, Tensor, Tensor)> {
    if a.device().is_cuda() {
        Ok(Tensor::f_linalg_svd(a, false, "gesvd")?)
    } else {
        let (u, s, v) = a.f_svd(true, true)?;
        Ok((u, s, v.f_transpose(0, 1)?))
    }
}
