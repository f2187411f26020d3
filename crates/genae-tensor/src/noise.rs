//! Noise for one process's rows of a batch that is split across processes.
//!
//! In data-parallel training every process holds an equal slice of each global batch. Drawn
//! the plain way, the noise of a process (reparameterisation draws, input corruption, prior
//! draws) has nothing to do with the noise a single process would draw for the whole batch, so
//! the run cannot equal a one-process run. Inside [`with_batch_rows`], the draws of this module
//! instead draw the *global* batch's noise — the same on every process, given the same seed —
//! and keep this process's rows: a data-parallel run then draws exactly what a single process
//! with the global batch draws. Outside it (and for a shard of one process) they are plain
//! libtorch draws, so single-process code pays nothing.
//!
//! Each function takes the index of the batch dimension of the shape it draws: 0 for
//! `[n, ...]`, 1 for the `[k, n, ...]` draws of importance sampling.
//!
//! ```
//! use genae_tensor::noise::{self, BatchRows};
//! use tch::{Device, Kind, Tensor};
//!
//! let opts = (Kind::Float, Device::Cpu);
//! tch::manual_seed(3);
//! let whole = noise::randn(&[4, 2], 0, opts).unwrap();
//! // Two processes with two rows each draw the same rows, given the same seed.
//! for rank in 0..2 {
//!     tch::manual_seed(3);
//!     let rows = noise::with_batch_rows(BatchRows::Shard { rank, count: 2 }, || {
//!         noise::randn(&[2, 2], 0, opts)
//!     })
//!     .unwrap();
//!     assert!(rows.equal(&whole.narrow(0, 2 * rank as i64, 2)));
//! }
//! ```

use std::cell::Cell;

use tch::{Kind, Tensor};

use crate::{Result, TensorError};

/// Which rows of a global batch this process holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BatchRows {
    /// Slice `rank` of `count` equal slices (like genae-data's `Shard`): a draw of `n` rows
    /// is rows `rank·n ..` of a global draw of `count·n`.
    Shard {
        /// This process, from 0.
        rank: usize,
        /// The number of processes (at least 1).
        count: usize,
    },
    /// The rows from `start` of a global batch of `total` rows (unequal slices, e.g. of an
    /// evaluation batch that does not divide evenly): a draw of `n` rows is rows
    /// `start .. start + n` of a global draw of `total`.
    Range {
        /// The first row of this process.
        start: i64,
        /// The rows of the global batch.
        total: i64,
    },
}

thread_local! {
    static ROWS: Cell<Option<BatchRows>> = const { Cell::new(None) };
}

/// Runs `f` with this thread's batch draws taken as `rows` of the global batch, then restores
/// the previous setting (also when `f` panics).
pub fn with_batch_rows<R>(rows: BatchRows, f: impl FnOnce() -> R) -> R {
    let _scope = BatchRowsScope::enter(rows);
    f()
}

/// While it lives, this thread's batch draws are `rows` of the global batch; dropping it
/// restores the previous setting. For loops whose body returns early ([`with_batch_rows`]
/// otherwise).
#[must_use = "the setting ends when the scope is dropped"]
pub struct BatchRowsScope {
    previous: Option<BatchRows>,
    // The setting belongs to this thread: the scope must end on it.
    _not_send: std::marker::PhantomData<*const ()>,
}

impl BatchRowsScope {
    /// Takes this thread's batch draws as `rows` of the global batch.
    pub fn enter(rows: BatchRows) -> Self {
        Self {
            previous: ROWS.with(|r| r.replace(Some(rows))),
            _not_send: std::marker::PhantomData,
        }
    }
}

impl Drop for BatchRowsScope {
    fn drop(&mut self) {
        ROWS.with(|r| r.set(self.previous));
    }
}

/// The batch rows in force on this thread, if any ([`with_batch_rows`]; a shard of one
/// process is none).
pub fn batch_rows() -> Option<BatchRows> {
    ROWS.with(Cell::get)
        .filter(|r| !matches!(r, BatchRows::Shard { count, .. } if *count <= 1))
}

/// Draws `shape` with `draw`, or, under [`with_batch_rows`], the global shape (dimension
/// `batch_dim` times the process count) and this process's slice of it.
fn draw_rows(
    shape: &[i64],
    batch_dim: usize,
    draw: impl FnOnce(&[i64]) -> std::result::Result<Tensor, tch::TchError>,
) -> Result<Tensor> {
    if batch_dim >= shape.len() {
        return Err(TensorError::Shape {
            what: "noise draw",
            detail: format!("batch dimension {batch_dim} of a shape {shape:?}"),
        });
    }
    let Some(global_rows) = batch_rows() else {
        return Ok(draw(shape)?);
    };
    let rows = shape[batch_dim];
    let (start, total) = match global_rows {
        BatchRows::Shard { rank, count } => (rank as i64 * rows, count as i64 * rows),
        BatchRows::Range { start, total } => (start, total),
    };
    if start < 0 || start + rows > total {
        return Err(TensorError::Shape {
            what: "noise draw",
            detail: format!(
                "{rows} rows from row {start} of a global batch of {total} (shape {shape:?})"
            ),
        });
    }
    if rows == total {
        return Ok(draw(shape)?);
    }
    let mut global = shape.to_vec();
    global[batch_dim] = total;
    let all = draw(&global)?;
    let mine = all.f_narrow(batch_dim as i64, start, rows)?;
    Ok(if batch_dim == 0 {
        mine
    } else {
        mine.f_contiguous()?
    })
}

/// Standard normal draws of `shape` (see the module documentation).
pub fn randn(shape: &[i64], batch_dim: usize, options: (Kind, tch::Device)) -> Result<Tensor> {
    draw_rows(shape, batch_dim, |s| Tensor::f_randn(s, options))
}

/// Uniform draws on `[0, 1)` of `shape` (see the module documentation).
pub fn rand(shape: &[i64], batch_dim: usize, options: (Kind, tch::Device)) -> Result<Tensor> {
    draw_rows(shape, batch_dim, |s| Tensor::f_rand(s, options))
}

/// Integers uniform on `0..high` of `shape` (see the module documentation).
pub fn randint(
    high: i64,
    shape: &[i64],
    batch_dim: usize,
    options: (Kind, tch::Device),
) -> Result<Tensor> {
    draw_rows(shape, batch_dim, |s| Tensor::f_randint(high, s, options))
}

/// Standard normal draws shaped like `like` (batch dimension 0; a scalar draws plainly).
pub fn randn_like(like: &Tensor) -> Result<Tensor> {
    if like.dim() == 0 {
        return Ok(like.f_randn_like()?);
    }
    randn(&like.size(), 0, (like.kind(), like.device()))
}

/// Uniform draws on `[0, 1)` shaped like `like` (batch dimension 0; a scalar draws plainly).
pub fn rand_like(like: &Tensor) -> Result<Tensor> {
    if like.dim() == 0 {
        return Ok(like.f_rand_like()?);
    }
    rand(&like.size(), 0, (like.kind(), like.device()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    const OPTS: (Kind, Device) = (Kind::Float, Device::Cpu);

    #[test]
    fn ranks_draw_the_rows_of_the_global_batch() {
        let _lock = crate::torch_rng_lock();
        // A sequence of draws of every kind, batch dimension 0 and 1, as one process with the
        // global batch of 6 rows draws them.
        let sequence = |rows: i64| -> Vec<Tensor> {
            vec![
                randn(&[rows, 3], 0, OPTS).unwrap(),
                rand(&[2, rows, 5], 1, OPTS).unwrap(),
                randint(7, &[rows], 0, (Kind::Int64, Device::Cpu)).unwrap(),
                randn(&[rows, 40], 0, OPTS).unwrap(),
            ]
        };
        tch::manual_seed(11);
        let whole = sequence(6);
        let dims = [0, 1, 0, 0];
        for count in [2usize, 3] {
            let rows = 6 / count as i64;
            let mut parts: Vec<Vec<Tensor>> = Vec::new();
            for rank in 0..count {
                tch::manual_seed(11);
                parts.push(with_batch_rows(BatchRows::Shard { rank, count }, || {
                    sequence(rows)
                }));
            }
            for (i, w) in whole.iter().enumerate() {
                let pieces: Vec<&Tensor> = parts.iter().map(|p| &p[i]).collect();
                let joined = Tensor::cat(&pieces, dims[i]);
                assert!(joined.equal(w), "draw {i}, {count} processes");
                assert!(pieces[0].is_contiguous());
            }
        }
        // The setting is gone afterwards: plain draws of the shape asked for.
        assert_eq!(batch_rows(), None);
        assert_eq!(randn(&[2, 3], 0, OPTS).unwrap().size(), [2, 3]);
    }

    #[test]
    fn unequal_ranges_draw_their_rows_of_the_global_batch() {
        let _lock = crate::torch_rng_lock();
        tch::manual_seed(2);
        let whole = randn(&[7, 3], 0, OPTS).unwrap();
        let mut pieces = Vec::new();
        for (start, len) in [(0, 3), (3, 2), (5, 2)] {
            tch::manual_seed(2);
            pieces.push(with_batch_rows(
                BatchRows::Range { start, total: 7 },
                || randn(&[len, 3], 0, OPTS).unwrap(),
            ));
        }
        assert!(Tensor::cat(&pieces, 0).equal(&whole));
        let err = with_batch_rows(BatchRows::Range { start: 6, total: 7 }, || {
            randn(&[2, 3], 0, OPTS).unwrap_err().to_string()
        });
        assert!(
            err.contains("2 rows from row 6 of a global batch of 7"),
            "{err}"
        );
    }

    #[test]
    fn one_process_draws_plainly_and_bad_dimensions_are_errors() {
        let _lock = crate::torch_rng_lock();
        tch::manual_seed(4);
        let plain = Tensor::randn([5, 2], OPTS);
        tch::manual_seed(4);
        let one = with_batch_rows(BatchRows::Shard { rank: 0, count: 1 }, || {
            randn(&[5, 2], 0, OPTS).unwrap()
        });
        assert!(one.equal(&plain));
        let err = randn(&[5, 2], 2, OPTS).unwrap_err().to_string();
        assert!(err.contains("batch dimension 2 of a shape [5, 2]"), "{err}");
    }
}
