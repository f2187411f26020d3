//! The quantizer's codebook geometry: nearest codes, random rows of a batch, Lloyd's k-means.

use tch::{Kind, Tensor};

use crate::Result;

/// Index of the nearest row of `codebook` (`[K, d]`) for every row of `rows` (`[M, d]`), by
/// `‖a‖² − 2 a·b + ‖b‖²` with one matrix product. Call without gradients.
pub(crate) fn nearest(rows: &Tensor, codebook: &Tensor) -> Result<Tensor> {
    let a2 = rows.f_square()?.f_sum_dim_intlist(1, true, None::<Kind>)?;
    let b2 = codebook
        .f_square()?
        .f_sum_dim_intlist(1, false, None::<Kind>)?;
    let minus_two_bt = codebook.f_mul_scalar(-2.0)?.f_tr()?;
    let dist = b2.f_addmm(rows, &minus_two_bt)?.f_add_(&a2)?;
    Ok(dist.f_argmin(1, false)?)
}

/// `k` row indices of an `m`-row batch: distinct (a random permutation's first `k`) when
/// `m ≥ k`, with replacement otherwise.
pub(crate) fn random_rows(m: i64, k: i64, device: tch::Device) -> Result<Tensor> {
    Ok(if m >= k {
        Tensor::f_randperm(m, (Kind::Int64, device))?.f_narrow(0, 0, k)?
    } else {
        Tensor::f_randint(m, [k], (Kind::Int64, device))?
    })
}

/// Lloyd's k-means on `data` (`[M, d]`, no gradients), starting from `k` random rows; an
/// empty cluster keeps its centroid.
pub(crate) fn kmeans(data: &Tensor, k: i64, iters: usize) -> Result<Tensor> {
    let (m, d) = (data.size()[0], data.size()[1]);
    let opts = (data.kind(), data.device());
    let mut centroids = data.f_index_select(0, &random_rows(m, k, data.device())?)?;
    let ones = Tensor::f_ones([m], opts)?;
    for _ in 0..iters {
        let idx = nearest(data, &centroids)?;
        let counts = Tensor::f_zeros([k], opts)?.f_index_add(0, &idx, &ones)?;
        let sums = Tensor::f_zeros([k, d], opts)?.f_index_add(0, &idx, data)?;
        let means = sums.f_div(&counts.f_clamp_min(1.0)?.f_unsqueeze(1)?)?;
        centroids = means.f_where_self(&counts.f_gt(0)?.f_unsqueeze(1)?, &centroids)?;
    }
    Ok(centroids)
}
