//! The straight-through vector quantizer of VQ-VAE (van den Oord et al., 2017).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use genae_tensor::{Collective, TensorError};

use tch::{nn, Kind, Tensor};

use crate::kmeans::{kmeans, nearest, random_rows};
use crate::{CodebookUpdate, LossReduction, QuantizerConfig, Result, SamplerError};

/// What one call of [`VectorQuantizer::forward_t`] returns.
#[derive(Debug)]
pub struct QuantizerOutput {
    /// The straight-through output `z_e + sg[z_q − z_e]`, in the input's layout: forward value
    /// `z_q` (the nearest codes), gradient that of `z_e`. Feed it to the decoder.
    pub quantized: Tensor,
    /// The index of each vector's nearest code (`Int64`): `[N, H, W]` for a grid
    /// `[N, d, H, W]` (the input without its channel dimension), `[M]` for rows `[M, d]`.
    pub indices: Tensor,
    /// `codebook_weight · ‖sg[z_e] − z_q‖²` (a scalar; its gradient reaches only the codebook);
    /// `None` with [`CodebookUpdate::Ema`], which moves the codes without a loss.
    pub codebook_loss: Option<Tensor>,
    /// `β · ‖z_e − sg[z_q]‖²` (a scalar; its gradient reaches only `z_e`).
    pub commitment_loss: Tensor,
    /// `exp(−Σ_k p_k ln p_k)` of the batch's code frequencies `p_k` (a scalar): `K` when every
    /// code is used equally often, 1 when all vectors map to one code.
    pub perplexity: Tensor,
    /// How many vectors of the batch each code quantised (`Int64`, `[K]`); sum them over
    /// batches and call [`perplexity`] for an epoch's figure.
    pub usage: Tensor,
}

impl QuantizerOutput {
    /// The quantizer's share of the training loss: codebook loss (when present) plus
    /// commitment loss. Add the reconstruction term to it.
    pub fn loss(&self) -> Tensor {
        match &self.codebook_loss {
            Some(codebook) => codebook + &self.commitment_loss,
            None => self.commitment_loss.shallow_clone(),
        }
    }

    /// How many codes quantised at least one vector of the batch.
    pub fn active_codes(&self) -> Result<i64> {
        Ok(self.usage.f_gt(0)?.f_sum(Kind::Int64)?.f_int64_value(&[])?)
    }
}

/// A codebook of `K` vectors of dimension `d` and the straight-through quantizer over it.
///
/// All its state lives in the [`nn::Path`] it was built in, so it is saved and loaded with the
/// model's [`nn::VarStore`]:
///
/// - `codebook` `[K, d]`: trainable with [`CodebookUpdate::Loss`], not trainable (moved by the
///   EMA updates) with [`CodebookUpdate::Ema`]; initialised uniformly in `[−1/K, 1/K]`;
/// - `ema_count` `[K]`, `ema_sum` `[K, d]` (EMA only, not trainable): the moving cluster sizes
///   and sums, starting at one and at the codebook (each code counts as one vector at its own
///   position, so the first update averages old code and cluster mean);
/// - `steps_unused` `[K]` (`Int64`): consecutive training calls in which each code was unused;
/// - `initialized` (`Int64` scalar): 1 once k-means or [`set_codebook`](Self::set_codebook)
///   has set the codebook, so a loaded checkpoint is not re-initialised.
///
/// ```
/// use genae_samplers::{QuantizerConfig, VectorQuantizer};
/// use tch::{nn, Device, Kind, Tensor};
///
/// let vs = nn::VarStore::new(Device::Cpu);
/// let config = QuantizerConfig { num_codes: 16, code_dim: 4, ..Default::default() };
/// let vq = VectorQuantizer::new(&vs.root().sub("vq"), &config).unwrap();
/// let z_e = Tensor::randn([2, 4, 3, 3], (Kind::Float, Device::Cpu)).set_requires_grad(true);
/// let out = vq.forward_t(&z_e, true).unwrap();
/// assert_eq!(out.quantized.size(), [2, 4, 3, 3]);
/// assert_eq!(out.indices.size(), [2, 3, 3]);
/// // The decoder's input decodes back from the indices.
/// let decoded = vq.lookup(&out.indices).unwrap();
/// assert!(decoded.allclose(&out.quantized, 1e-5, 1e-6, false));
/// out.loss().backward();
/// ```
#[derive(Debug)]
pub struct VectorQuantizer {
    config: QuantizerConfig,
    codebook: Tensor,
    ema_count: Option<Tensor>,
    ema_sum: Option<Tensor>,
    steps_unused: Tensor,
    initialized: Tensor,
    known_initialized: AtomicBool,
    collective: CollectiveSlot,
}

/// The data-parallel collective of a quantizer, once set.
#[derive(Default)]
struct CollectiveSlot(OnceLock<Arc<dyn Collective>>);

impl std::fmt::Debug for CollectiveSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}",
            if self.0.get().is_some() {
                "data-parallel"
            } else {
                "local"
            }
        )
    }
}

fn collective_error(what: &str) -> impl FnOnce(String) -> SamplerError + '_ {
    move |reason| {
        SamplerError::Tensor(TensorError::Collective {
            what: what.to_string(),
            reason,
        })
    }
}

fn invalid(name: &'static str, reason: String) -> SamplerError {
    SamplerError::InvalidArgument { name, reason }
}

/// In-place copy into a variable (under no-grad when the variable is trainable).
fn assign(var: &Tensor, value: &Tensor) -> Result<()> {
    let mut var = var.shallow_clone();
    tch::no_grad(|| var.f_copy_(value))?;
    Ok(())
}

/// Code frequencies of `counts` (`[K]`, in `kind`) to `exp(entropy)`.
fn perplexity_in(counts: &Tensor, kind: Kind) -> Result<Tensor> {
    let counts = counts.f_to_kind(kind)?;
    let p = counts.f_div(&counts.f_sum(None::<Kind>)?)?;
    Ok(p.f_xlogy(&p)?.f_sum(None::<Kind>)?.f_neg()?.f_exp()?)
}

/// The perplexity `exp(−Σ_k p_k ln p_k)` of code counts (`[K]`, non-negative, not all zero),
/// with `p_k = counts_k / Σ counts`: the effective number of codes in use, between 1 and `K`.
/// Integer counts give a `Float` result, floating-point counts keep their kind.
///
/// ```
/// use tch::Tensor;
///
/// let uniform = genae_samplers::perplexity(&Tensor::from_slice(&[5i64, 5, 5, 5])).unwrap();
/// assert!((uniform.double_value(&[]) - 4.0).abs() < 1e-6);
/// let one = genae_samplers::perplexity(&Tensor::from_slice(&[0i64, 7, 0])).unwrap();
/// assert!((one.double_value(&[]) - 1.0).abs() < 1e-6);
/// ```
pub fn perplexity(counts: &Tensor) -> Result<Tensor> {
    if !counts.defined() || counts.dim() != 1 || counts.numel() == 0 {
        return Err(invalid(
            "counts",
            format!(
                "must be a non-empty [K] tensor, got shape {:?}",
                shape_of(counts)
            ),
        ));
    }
    let counts_f = counts.f_to_kind(Kind::Double)?;
    let (lowest, total) = (
        counts_f.f_min()?.f_double_value(&[])?,
        counts_f.f_sum(None::<Kind>)?.f_double_value(&[])?,
    );
    if !(lowest >= 0.0 && total > 0.0 && total.is_finite()) {
        return Err(invalid(
            "counts",
            format!("must be finite, non-negative and not all zero (min {lowest}, sum {total})"),
        ));
    }
    let kind = if counts.is_floating_point() {
        counts.kind()
    } else {
        Kind::Float
    };
    perplexity_in(counts, kind)
}

fn shape_of(t: &Tensor) -> Vec<i64> {
    if t.defined() {
        t.size()
    } else {
        Vec::new()
    }
}

impl VectorQuantizer {
    /// Creates the codebook and its statistics under `path` (in the path's float kind and on
    /// its device), checking `config` first.
    pub fn new(path: &nn::Path, config: &QuantizerConfig) -> Result<Self> {
        config.validate()?;
        let (k, d) = (config.num_codes, config.code_dim);
        let opts = (path.kind(), path.device());
        if !matches!(
            path.kind(),
            Kind::Float | Kind::Double | Kind::Half | Kind::BFloat16
        ) {
            return Err(invalid(
                "path",
                format!(
                    "the var store's kind must be floating point, got {:?}",
                    path.kind()
                ),
            ));
        }
        let bound = 1.0 / k as f64;
        let init = Tensor::f_rand([k, d], opts)?
            .f_mul_scalar(2.0 * bound)?
            .f_sub_scalar(bound)?;
        let ema = matches!(config.update, CodebookUpdate::Ema { .. });
        let codebook = path.add("codebook", init, !ema);
        let (ema_count, ema_sum) = if ema {
            let count = path.add("ema_count", Tensor::f_ones([k], opts)?, false);
            let sum = path.add("ema_sum", codebook.f_detach_copy()?, false);
            (Some(count), Some(sum))
        } else {
            (None, None)
        };
        let steps_unused = path.add(
            "steps_unused",
            Tensor::f_zeros([k], (Kind::Int64, path.device()))?,
            false,
        );
        let initialized = path.add(
            "initialized",
            Tensor::f_zeros([], (Kind::Int64, path.device()))?,
            false,
        );
        Ok(Self {
            config: config.clone(),
            codebook,
            ema_count,
            ema_sum,
            steps_unused,
            initialized,
            known_initialized: AtomicBool::new(false),
            collective: CollectiveSlot::default(),
        })
    }

    /// Makes training data-parallel: the EMA statistics and code usage of each batch are summed
    /// over the processes before the update; the k-means initialisation and dead-code restarts
    /// draw from every process's vectors ([`Collective::all_gather`], the restarts' draw made
    /// for the whole batch on every process), and the codebook is then taken from rank 0, so
    /// every process keeps the same codebook (the gradients of a loss-trained codebook are
    /// averaged by the optimiser). With equal shards and the same generator state on every
    /// process, the codebook follows the one a single process with the whole batches keeps.
    /// Set once; later calls are ignored.
    pub fn set_collective(&self, collective: Arc<dyn Collective>) {
        let _ = self.collective.0.set(collective);
    }

    /// Every process's `rows` in rank order (data-parallel training), or `rows` itself.
    fn gather_rows(&self, rows: &Tensor, why: &str) -> Result<Tensor> {
        match self.collective.0.get() {
            None => Ok(rows.shallow_clone()),
            Some(c) => c
                .all_gather(rows)
                .map_err(collective_error(&format!("the vectors of {why}"))),
        }
    }

    /// The codebook and its EMA statistics from rank 0 (data-parallel training only).
    fn broadcast_codebook(&self, why: &str) -> Result<()> {
        let Some(c) = self.collective.0.get() else {
            return Ok(());
        };
        let mut tensors = vec![self.codebook.shallow_clone()];
        tensors.extend(self.ema_count.iter().map(Tensor::shallow_clone));
        tensors.extend(self.ema_sum.iter().map(Tensor::shallow_clone));
        c.broadcast(&tensors).map_err(collective_error(why))
    }

    /// The config it was built with.
    pub fn config(&self) -> &QuantizerConfig {
        &self.config
    }

    /// Number of codes `K`.
    pub fn num_codes(&self) -> i64 {
        self.config.num_codes
    }

    /// Dimension `d` of a code.
    pub fn code_dim(&self) -> i64 {
        self.config.code_dim
    }

    /// The codebook variable `[K, d]` (shares storage with the var store's).
    pub fn codebook(&self) -> Tensor {
        self.codebook.shallow_clone()
    }

    /// The EMA cluster sizes `N_k` (`[K]`, unsmoothed); `None` without EMA updates.
    pub fn ema_cluster_sizes(&self) -> Option<Tensor> {
        self.ema_count.as_ref().map(Tensor::shallow_clone)
    }

    /// The EMA cluster sums `m_k` (`[K, d]`); `None` without EMA updates.
    pub fn ema_sums(&self) -> Option<Tensor> {
        self.ema_sum.as_ref().map(Tensor::shallow_clone)
    }

    /// Consecutive training calls in which each code went unused (`Int64`, `[K]`).
    pub fn steps_unused(&self) -> Tensor {
        self.steps_unused.shallow_clone()
    }

    /// Whether k-means or [`set_codebook`](Self::set_codebook) has set the codebook (also
    /// true after loading a checkpoint saved once it had).
    pub fn is_initialized(&self) -> bool {
        if self.known_initialized.load(Ordering::Relaxed) {
            return true;
        }
        let done = self
            .initialized
            .f_int64_value(&[])
            .is_ok_and(|flag| flag != 0);
        if done {
            self.known_initialized.store(true, Ordering::Relaxed);
        }
        done
    }

    /// Checks that `z` is `[M, d]` or channels-first `[N, d, ...]`, non-empty, of the
    /// codebook's kind and device; returns its shape.
    fn check_vectors(&self, name: &'static str, z: &Tensor) -> Result<Vec<i64>> {
        let d = self.config.code_dim;
        if !z.defined() {
            return Err(invalid(name, "is an undefined tensor".into()));
        }
        let size = z.size();
        if size.len() < 2 {
            return Err(invalid(
                name,
                format!(
                    "must be vectors [M, d] or a channels-first grid [N, d, H, W] with d = {d}, \
                     got shape {size:?} (rank {})",
                    size.len()
                ),
            ));
        }
        if size[1] != d {
            return Err(invalid(
                name,
                format!(
                    "has {} channels (dimension 1 of shape {size:?}), the codebook's code_dim \
                     is {d}",
                    size[1]
                ),
            ));
        }
        if size.contains(&0) {
            return Err(invalid(name, format!("holds no vectors (shape {size:?})")));
        }
        let kind = self.codebook.kind();
        if z.kind() != kind {
            return Err(invalid(
                name,
                format!("is {:?}, the codebook is {kind:?}", z.kind()),
            ));
        }
        let device = self.codebook.device();
        if z.device() != device {
            return Err(invalid(
                name,
                format!("is on {:?}, the codebook on {device:?}", z.device()),
            ));
        }
        Ok(size)
    }

    /// `[N, d, ...]` → `[M, d]` rows (channels last, then flattened); `[M, d]` unchanged.
    fn layout_to_rows(&self, z: &Tensor, size: &[i64]) -> Result<Tensor> {
        if size.len() == 2 {
            return Ok(z.shallow_clone());
        }
        let last = size.len() as i64 - 1;
        Ok(z.f_movedim(1, last)?
            .f_reshape([-1, self.config.code_dim])?)
    }

    /// The inverse of [`layout_to_rows`](Self::layout_to_rows).
    fn rows_to_layout(&self, rows: &Tensor, size: &[i64]) -> Result<Tensor> {
        if size.len() == 2 {
            return Ok(rows.shallow_clone());
        }
        let mut channels_last: Vec<i64> = Vec::with_capacity(size.len());
        channels_last.push(size[0]);
        channels_last.extend_from_slice(&size[2..]);
        channels_last.push(self.config.code_dim);
        let last = size.len() as i64 - 1;
        Ok(rows.f_reshape(channels_last)?.f_movedim(last, 1)?)
    }

    /// `[M]` indices to the grid `[N, ...]` of an input of shape `size`.
    fn index_grid(indices: &Tensor, size: &[i64]) -> Result<Tensor> {
        if size.len() == 2 {
            return Ok(indices.shallow_clone());
        }
        let mut grid: Vec<i64> = Vec::with_capacity(size.len() - 1);
        grid.push(size[0]);
        grid.extend_from_slice(&size[2..]);
        Ok(indices.f_reshape(grid)?)
    }

    /// Quantises `z_e` — rows `[M, d]` or a channels-first grid `[N, d, H, W]` (any number of
    /// trailing spatial dimensions) of the codebook's kind and device — to its nearest codes.
    ///
    /// With `train`, and without gradients: before quantising, the k-means initialisation on
    /// this batch if [`QuantizerConfig::kmeans_init`] asks for it and the codebook is not
    /// initialised yet; after quantising (so the output uses the codebook as it was), the EMA
    /// update ([`CodebookUpdate::Ema`]), the unused-step counters, and restarts of codes unused
    /// for [`QuantizerConfig::dead_code_steps`] calls, each from a random vector of this batch
    /// (drawn with libtorch's generator). Without `train` nothing changes.
    pub fn forward_t(&self, z_e: &Tensor, train: bool) -> Result<QuantizerOutput> {
        let size = self.check_vectors("z_e", z_e)?;
        let rows = self.layout_to_rows(z_e, &size)?;
        let rows_detached = rows.f_detach()?;
        if train && self.config.kmeans_init && !self.is_initialized() {
            // Data-parallel: on every process's vectors (the batch one process would hold).
            let all_rows = self.gather_rows(&rows_detached, "the k-means initialisation")?;
            self.init_from_rows(&all_rows, self.config.kmeans_iters)?;
            self.broadcast_codebook("the k-means initialisation of the codebook")?;
        }
        let k = self.config.num_codes;
        let indices = tch::no_grad(|| nearest(&rows_detached, &self.codebook))?;
        let usage = Tensor::f_zeros([k], (Kind::Int64, rows.device()))?.f_index_add(
            0,
            &indices,
            &indices.f_ones_like()?,
        )?;
        let z_q_rows = self.codebook.f_index_select(0, &indices)?;
        let z_q = self.rows_to_layout(&z_q_rows, &size)?;
        let quantized = z_e.f_add(&z_q.f_sub(z_e)?.f_detach()?)?;

        let batch = size[0] as f64;
        let reduce = |squares: Tensor| -> Result<Tensor> {
            Ok(match self.config.reduction {
                LossReduction::PerExample => squares.f_sum(None::<Kind>)?.f_div_scalar(batch)?,
                LossReduction::Mean => squares.f_mean(None::<Kind>)?,
            })
        };
        let commitment_loss = reduce(rows.f_sub(&z_q_rows.f_detach()?)?.f_square()?)?
            .f_mul_scalar(self.config.commitment_weight)?;
        let codebook_loss = match self.config.update {
            CodebookUpdate::Loss => Some(
                reduce(rows_detached.f_sub(&z_q_rows)?.f_square()?)?
                    .f_mul_scalar(self.config.codebook_weight)?,
            ),
            CodebookUpdate::Ema { .. } => None,
        };
        let perplexity = perplexity_in(&usage, self.codebook.kind())?;
        if train {
            tch::no_grad(|| self.training_update(&rows_detached, &indices, &usage))?;
        }
        Ok(QuantizerOutput {
            quantized,
            indices: Self::index_grid(&indices, &size)?,
            codebook_loss,
            commitment_loss,
            perplexity,
            usage,
        })
    }

    /// EMA update, unused-step counters and dead-code restarts after a training batch.
    fn training_update(&self, rows: &Tensor, indices: &Tensor, usage: &Tensor) -> Result<()> {
        let (k, d) = (self.config.num_codes, self.config.code_dim);
        let opts = (rows.kind(), rows.device());
        // Code usage over every process's batch (only this one's without a collective).
        let usage = usage.f_to_kind(opts.0)?;
        let ema = (&self.config.update, &self.ema_count, &self.ema_sum);
        let mut batch_sums = None;
        if let (CodebookUpdate::Ema { .. }, Some(_), Some(_)) = ema {
            batch_sums = Some(Tensor::f_zeros([k, d], opts)?.f_index_add(0, indices, rows)?);
        }
        if let Some(c) = self.collective.0.get() {
            let mut stats = vec![usage.shallow_clone()];
            stats.extend(batch_sums.iter().map(Tensor::shallow_clone));
            c.sum(&stats)
                .map_err(collective_error("the codebook statistics of the batch"))?;
        }
        if let (CodebookUpdate::Ema { decay, epsilon }, Some(ema_count), Some(ema_sum)) = ema {
            let (decay, epsilon) = (*decay, *epsilon);
            let batch_sums = batch_sums.expect("computed above for the EMA update");
            let count = ema_count
                .f_mul_scalar(decay)?
                .f_add(&usage.f_mul_scalar(1.0 - decay)?)?;
            let sum = ema_sum
                .f_mul_scalar(decay)?
                .f_add(&batch_sums.f_mul_scalar(1.0 - decay)?)?;
            let n = count.f_sum(None::<Kind>)?;
            let smoothed = count
                .f_add_scalar(epsilon)?
                .f_div(&n.f_add_scalar(k as f64 * epsilon)?)?
                .f_mul(&n)?
                .f_unsqueeze(1)?;
            let codes = sum
                .f_div(&smoothed)?
                .f_where_self(&smoothed.f_gt(0)?, &self.codebook)?;
            assign(ema_count, &count)?;
            assign(ema_sum, &sum)?;
            assign(&self.codebook, &codes)?;
        }

        let zeros = self.steps_unused.f_zeros_like()?;
        let mut unused =
            zeros.f_where_self(&usage.f_gt(0)?, &self.steps_unused.f_add_scalar(1)?)?;
        let threshold = self.config.dead_code_steps;
        if threshold > 0 {
            let dead = unused.f_ge(threshold as i64)?;
            let dead_rows = dead.f_unsqueeze(1)?;
            // The candidates are drawn among every process's vectors (the same draw on every
            // process, the one a single process with the whole batch makes).
            let processes = self.collective.0.get().map_or(1, |c| c.size() as i64);
            let picks = random_rows(rows.size()[0] * processes, k, rows.device())?;
            let restart = match self.collective.0.get() {
                None => true,
                // Only then are the vectors gathered (the usage, hence `dead`, is global).
                Some(_) => dead.f_any()?.int64_value(&[]) != 0,
            };
            if restart {
                let all_rows = self.gather_rows(rows, "a dead-code restart")?;
                let candidates = all_rows.f_index_select(0, &picks)?;
                assign(
                    &self.codebook,
                    &candidates.f_where_self(&dead_rows, &self.codebook)?,
                )?;
                if let (Some(ema_count), Some(ema_sum)) = (&self.ema_count, &self.ema_sum) {
                    assign(ema_sum, &candidates.f_where_self(&dead_rows, ema_sum)?)?;
                    assign(
                        ema_count,
                        &ema_count.f_ones_like()?.f_where_self(&dead, ema_count)?,
                    )?;
                }
                self.broadcast_codebook("the dead-code restart of the codebook")?;
            }
            unused = zeros.f_where_self(&dead, &unused)?;
        }
        assign(&self.steps_unused, &unused)
    }

    /// Sets the codebook to `rows`' k-means centroids and resets the statistics.
    fn init_from_rows(&self, rows: &Tensor, iters: usize) -> Result<()> {
        let centroids = tch::no_grad(|| kmeans(rows, self.config.num_codes, iters))?;
        self.set_codebook_unchecked(&centroids)
    }

    fn set_codebook_unchecked(&self, values: &Tensor) -> Result<()> {
        assign(&self.codebook, values)?;
        if let (Some(ema_count), Some(ema_sum)) = (&self.ema_count, &self.ema_sum) {
            assign(ema_sum, values)?;
            assign(ema_count, &ema_count.f_ones_like()?)?;
        }
        assign(&self.steps_unused, &self.steps_unused.f_zeros_like()?)?;
        assign(&self.initialized, &self.initialized.f_ones_like()?)?;
        self.known_initialized.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// Initialises the codebook by k-means on `z_e` (rows `[M, d]` or a grid `[N, d, H, W]`,
    /// e.g. several batches of encoder outputs concatenated): `K` distinct random vectors
    /// (drawn with libtorch's generator; with replacement when there are fewer than `K`), then
    /// `iters` Lloyd iterations (0: the random vectors themselves); an empty cluster keeps its
    /// centroid. Resets the EMA statistics and unused-step counters and marks the codebook
    /// initialised.
    pub fn kmeans_init(&self, z_e: &Tensor, iters: usize) -> Result<()> {
        let size = self.check_vectors("z_e", z_e)?;
        let rows = self.layout_to_rows(&z_e.f_detach()?, &size)?;
        self.init_from_rows(&rows, iters)
    }

    /// Overwrites the codebook with `values` (`[K, d]`, the codebook's kind and device),
    /// resets the EMA statistics (each code counts as one vector at its new position) and the
    /// unused-step counters, and marks the codebook initialised.
    pub fn set_codebook(&self, values: &Tensor) -> Result<()> {
        let (k, d) = (self.config.num_codes, self.config.code_dim);
        if !values.defined() || values.size() != [k, d] {
            return Err(invalid(
                "values",
                format!(
                    "must be [K, d] = [{k}, {d}], got shape {:?}",
                    shape_of(values)
                ),
            ));
        }
        if values.kind() != self.codebook.kind() || values.device() != self.codebook.device() {
            return Err(invalid(
                "values",
                format!(
                    "is {:?} on {:?}, the codebook is {:?} on {:?}",
                    values.kind(),
                    values.device(),
                    self.codebook.kind(),
                    self.codebook.device()
                ),
            ));
        }
        self.set_codebook_unchecked(&values.f_detach()?)
    }

    /// The index of the nearest code of every vector of `z_e` (as [`forward_t`](Self::forward_t)
    /// would return it: `[N, H, W]` for `[N, d, H, W]`, `[M]` for `[M, d]`), without
    /// gradients or state changes: for encoding a data set to code grids for a prior.
    pub fn nearest_codes(&self, z_e: &Tensor) -> Result<Tensor> {
        let size = self.check_vectors("z_e", z_e)?;
        let indices = tch::no_grad(|| -> Result<Tensor> {
            let rows = self.layout_to_rows(z_e, &size)?;
            nearest(&rows, &self.codebook)
        })?;
        Self::index_grid(&indices, &size)
    }

    /// The codes of `indices` (integers in `[0, K)`, on the codebook's device) in the layout
    /// [`forward_t`](Self::forward_t) produces: `[N, H, W]` → `[N, d, H, W]` (channels
    /// first; any rank ≥ 2 likewise), `[M]` → `[M, d]`. Differentiable in the codebook. Checks
    /// the range (one read-back of min and max).
    pub fn lookup(&self, indices: &Tensor) -> Result<Tensor> {
        let k = self.config.num_codes;
        if !indices.defined() || indices.dim() == 0 {
            return Err(invalid(
                "indices",
                format!(
                    "must be [M] or a grid [N, H, W] of code indices, got shape {:?}",
                    shape_of(indices)
                ),
            ));
        }
        if !matches!(
            indices.kind(),
            Kind::Int64 | Kind::Int | Kind::Int16 | Kind::Int8 | Kind::Uint8
        ) {
            return Err(invalid(
                "indices",
                format!("must be integers, got {:?}", indices.kind()),
            ));
        }
        let device = self.codebook.device();
        if indices.device() != device {
            return Err(invalid(
                "indices",
                format!("is on {:?}, the codebook on {device:?}", indices.device()),
            ));
        }
        let size = indices.size();
        let flat = indices.f_to_kind(Kind::Int64)?.f_reshape([-1])?;
        if flat.numel() > 0 {
            let lo = flat.f_min()?.f_int64_value(&[])?;
            let hi = flat.f_max()?.f_int64_value(&[])?;
            if lo < 0 || hi >= k {
                return Err(invalid(
                    "indices",
                    format!("must lie in [0, {k}) (K = {k}), got values from {lo} to {hi}"),
                ));
            }
        }
        let rows = self.codebook.f_index_select(0, &flat)?;
        if size.len() == 1 {
            return Ok(rows);
        }
        let mut channels_last = size.clone();
        channels_last.push(self.config.code_dim);
        Ok(rows
            .f_reshape(channels_last)?
            .f_movedim(size.len() as i64, 1)?)
    }
}
