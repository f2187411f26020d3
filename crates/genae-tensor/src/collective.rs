//! [`Collective`]: how a data-parallel job combines tensors across its processes.

use tch::Tensor;

/// Combines tensors across the processes of a data-parallel job (genae-lab implements it over
/// genae-dist's c10d process group). Every process calls the same methods in the same order
/// with tensors of the same shapes; each call changes the tensors in place. Errors are
/// messages saying what failed (e.g. which process was lost).
///
/// [`crate::Adam::set_collective`] uses [`Collective::mean`] to average gradients; genae-samplers'
/// quantizer uses [`Collective::sum`] for its EMA statistics, [`Collective::all_gather`] for
/// the vectors of its k-means initialisation and restarts, and [`Collective::broadcast`]
/// after them.
///
/// ```
/// use genae_tensor::Collective;
/// use tch::Tensor;
///
/// /// One process: every collective leaves the tensors as they are.
/// struct Alone;
/// impl Collective for Alone {
///     fn rank(&self) -> usize { 0 }
///     fn size(&self) -> usize { 1 }
///     fn sum(&self, _: &[Tensor]) -> Result<(), String> { Ok(()) }
///     fn mean(&self, _: &[Tensor]) -> Result<(), String> { Ok(()) }
///     fn broadcast(&self, _: &[Tensor]) -> Result<(), String> { Ok(()) }
/// }
/// let t = Tensor::from_slice(&[1.0f32]);
/// Alone.mean(&[t.shallow_clone()]).unwrap();
/// assert_eq!(t.double_value(&[0]), 1.0);
/// assert!(Alone.all_gather(&t).unwrap().equal(&t));
/// ```
pub trait Collective: Send + Sync {
    /// This process, from 0.
    fn rank(&self) -> usize;
    /// The number of processes.
    fn size(&self) -> usize;
    /// Replaces each tensor by its sum over the processes.
    fn sum(&self, tensors: &[Tensor]) -> Result<(), String>;
    /// Replaces each tensor by its mean over the processes.
    fn mean(&self, tensors: &[Tensor]) -> Result<(), String>;
    /// Overwrites each tensor with the first process's (rank 0).
    fn broadcast(&self, tensors: &[Tensor]) -> Result<(), String>;

    /// Every process's `rows` (`[m, ...]`, the same `m` everywhere) stacked in rank order,
    /// `[size·m, ...]`: with equal shards of a batch, the batch one process would hold. Built
    /// from [`Collective::sum`]s: first of the row counts (a process whose `m` differs is then
    /// an error on every process), then of a zero buffer holding this process's rows at its
    /// place (adding zeros is exact).
    fn all_gather(&self, rows: &Tensor) -> Result<Tensor, String> {
        let (rank, size) = (self.rank() as i64, self.size() as i64);
        if size <= 1 {
            return Ok(rows.shallow_clone());
        }
        let fail = |e: tch::TchError| format!("gathering rows {:?}: {e}", rows.size());
        let shape = rows.size();
        let m = shape.first().copied().unwrap_or(-1);
        // The counts first, so that buffers of different sizes never meet in one sum.
        let counts = Tensor::f_zeros([size], (tch::Kind::Int64, rows.device())).map_err(fail)?;
        let _ = counts
            .f_narrow(0, rank, 1)
            .and_then(|mut c| c.f_fill_(m))
            .map_err(fail)?;
        self.sum(&[counts.shallow_clone()])?;
        let counts: Vec<i64> =
            Vec::try_from(&counts.f_to_device(tch::Device::Cpu).map_err(fail)?).map_err(fail)?;
        if counts.iter().any(|&c| c != m) || m < 0 {
            return Err(format!(
                "gathering rows: the processes hold different numbers of rows {counts:?} \
                 (-1: a scalar)"
            ));
        }
        let mut all_shape = shape.clone();
        all_shape[0] = size * m;
        let all = Tensor::f_zeros(&all_shape, (rows.kind(), rows.device())).map_err(fail)?;
        all.f_narrow(0, rank * m, m)
            .and_then(|mut mine| mine.f_copy_(rows))
            .map_err(fail)?;
        self.sum(&[all.shallow_clone()])?;
        Ok(all)
    }
}
