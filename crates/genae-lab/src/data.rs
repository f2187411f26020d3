//! The data of a run: the configured data set loaded, binarised and split
//! ([`PreparedData`]), test and validation splits on the device ([`DeviceSplit`]), the
//! training batches of an epoch ([`TrainingData`]) and the one loop over evaluation batches
//! ([`batch_ranges`], [`mean_over_batches`]).

use std::sync::Arc;

use genae_data::batch::{batches_per_epoch, BatchOptions, Prefetcher, Shard};
use genae_data::shapes::{shapes_dataset, ShapesSpec};
use genae_data::transforms::{binarize_static, split_validation, Binarization};
use genae_data::{registry, ImageSet};
use genae_tensor::tensor_from_u8_images;
use tch::{Device, Kind, Tensor};

use crate::config::{ConfigError, ValidConfig, AVB_TOY, SHAPES};
use crate::error::LabError;

/// A data split as one `[N, D]` float tensor on the device, values in `[0, 1]`, with its
/// labels (`[N]`, int64).
pub(crate) struct DeviceSplit {
    pub(crate) x: Tensor,
    pub(crate) labels: Tensor,
    pub(crate) n: i64,
    /// For a data-parallel rank's part ([`DeviceSplit::shard`]): how its rows sit in the
    /// evaluation batches of the whole split, so that its evaluation draws the noise one
    /// process draws for them ([`crate::metrics::evaluation_means`]).
    pub(crate) parts: Option<Vec<BatchPart>>,
}

/// A rank's part of one evaluation batch of the whole split.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BatchPart {
    /// Rows of this rank in the batch (may be 0).
    pub(crate) len: i64,
    /// Its first row within the batch.
    pub(crate) start: i64,
    /// Rows in the batch.
    pub(crate) total: i64,
}

impl DeviceSplit {
    pub(crate) fn new(set: &ImageSet, device: Device) -> Result<Self, LabError> {
        let n = set.len() as i64;
        let d = set.image_len() as i64;
        Ok(Self {
            x: tensor_from_u8_images(&set.pixels, &[n, d], device)?,
            labels: labels_tensor(&set.labels, device),
            n,
            parts: None,
        })
    }

    /// A split of `x` and `labels` as they are (every row its own).
    pub(crate) fn of(x: Tensor, labels: Tensor) -> Self {
        let n = x.size()[0];
        Self {
            x,
            labels,
            n,
            parts: None,
        }
    }

    /// Rank `rank`'s part of `count` for a data-parallel evaluation in batches of
    /// `batch_size`: of every batch of `total` rows of the whole split, the near-equal
    /// contiguous slice `total·rank/count .. total·(rank+1)/count`. Together the parts cover
    /// every row once.
    pub(crate) fn shard(&self, rank: usize, count: usize, batch_size: i64) -> Self {
        let (r, c) = (rank as i64, count.max(1) as i64);
        let mut rows = Vec::new();
        let mut parts = Vec::new();
        for (start, total) in batch_ranges(self.n, batch_size) {
            let (from, to) = (total * r / c, total * (r + 1) / c);
            parts.push(BatchPart {
                len: to - from,
                start: from,
                total,
            });
            rows.extend(start + from..start + to);
        }
        let index = Tensor::from_slice(&rows).to_device(self.x.device());
        let labels = if self.labels.size().first() == Some(&self.n) {
            self.labels.index_select(0, &index)
        } else {
            self.labels.shallow_clone()
        };
        Self {
            x: self.x.index_select(0, &index),
            labels,
            n: rows.len() as i64,
            parts: Some(parts),
        }
    }

    /// The first `n` examples (all when `n` is larger).
    pub(crate) fn head(&self, n: i64) -> Tensor {
        self.x.narrow(0, 0, n.min(self.n))
    }
}

/// Labels as an int64 tensor on `device`.
pub(crate) fn labels_tensor(labels: &[u32], device: Device) -> Tensor {
    let l: Vec<i64> = labels.iter().map(|&l| i64::from(l)).collect();
    Tensor::from_slice(&l).to_device(device)
}

/// `(start, len)` of consecutive batches of at most `batch_size` covering `0..n`.
pub(crate) fn batch_ranges(n: i64, batch_size: i64) -> impl Iterator<Item = (i64, i64)> {
    let size = batch_size.max(1);
    (0..n)
        .step_by(size as usize)
        .map(move |start| (start, size.min(n - start)))
}

/// Sums `f(batch)` (a tensor of per-example values, or one value per batch already summed)
/// over the batches of `x`, without gradients, and divides by the number of rows `n`.
pub(crate) fn mean_over_batches(
    x: &Tensor,
    batch_size: i64,
    mut f: impl FnMut(&Tensor) -> Result<Tensor, LabError>,
) -> Result<f64, LabError> {
    let n = x.size()[0];
    tch::no_grad(|| {
        let mut total = 0.0;
        for (start, len) in batch_ranges(n, batch_size) {
            total += f(&x.narrow(0, start, len))?
                .sum(Kind::Double)
                .double_value(&[]);
        }
        Ok(total / n.max(1) as f64)
    })
}

/// The splits a run uses, after truncation, binarisation and the validation hold-out.
pub(crate) struct PreparedData {
    pub(crate) name: String,
    pub(crate) train: Arc<ImageSet>,
    pub(crate) validation: Option<ImageSet>,
    pub(crate) test: ImageSet,
    pub(crate) class_names: Vec<String>,
    /// Binarise every training batch afresh.
    pub(crate) dynamic: bool,
}

impl PreparedData {
    /// `[C, H, W]` of one image.
    pub(crate) fn image_shape(&self) -> [i64; 3] {
        let [c, h, w] = self.train.image_shape;
        [c as i64, h as i64, w as i64]
    }
}

use crate::memory::{available_memory, check_generated_data};

/// Seed streams kept apart so that the draws of one split never depend on another's size.
const TRAIN_DRAW: u64 = 0x7472_6169_6e00_0000;
pub(crate) const TEST_DRAW: u64 = 0x7465_7374_0000_0000;

/// The configured data set as stored (grey levels, before binarisation and the validation
/// hold-out), truncated to `data.train_size` / `data.test_size`.
pub(crate) fn load_dataset(config: &ValidConfig) -> Result<genae_data::Dataset, LabError> {
    let d = &config.file().data;
    let (train_size, test_size) = (d.train_limit(), d.test_limit());
    // A size above what the data hold is an error, not a silent clamp.
    let limit = |dataset: &mut genae_data::Dataset| -> Result<(), LabError> {
        for (field, limit, set) in [
            ("data.train_size", train_size, &mut dataset.train),
            ("data.test_size", test_size, &mut dataset.test),
        ] {
            if limit > set.len() {
                return Err(ConfigError::Invalid {
                    field,
                    reason: format!(
                        "asks for {limit} images but {} has {} (0: all of them)",
                        d.source_name(),
                        set.len()
                    ),
                }
                .into());
            }
            if limit > 0 {
                set.truncate(limit);
            }
        }
        Ok(())
    };
    Ok(if let Some(path) = &d.path {
        let mut dataset = registry::load_path_with(path, &d.path_options())?;
        limit(&mut dataset)?;
        dataset
    } else if d.dataset == SHAPES {
        let side = d.image_size;
        let spec = ShapesSpec {
            image_size: d.image_size,
            n_scales: d.n_scales,
            n_rotations: d.n_rotations,
            n_positions: d.n_positions,
        };
        // 0: every point of the grid once.
        let n_train = if train_size == 0 {
            spec.n_combinations()
        } else {
            train_size
        };
        check_generated_data(n_train, test_size, side * side, available_memory())?;
        shapes_dataset(&spec, train_size, test_size, d.seed)?
    } else if d.dataset == AVB_TOY {
        check_generated_data(train_size, test_size, 4, available_memory())?;
        genae_data::avb_toy::avb_toy_dataset(train_size, test_size, d.seed)?
    } else {
        let mut dataset = registry::load(&d.dataset, d.dir.as_deref())?;
        limit(&mut dataset)?;
        dataset
    })
}

/// Loads, binarises and splits the configured data.
pub(crate) fn prepare_data(config: &ValidConfig) -> Result<PreparedData, LabError> {
    let d = &config.file().data;
    let mut dataset = load_dataset(config)?;
    if d.binarize != Binarization::None {
        dataset.test = binarize_static(&dataset.test, d.seed ^ TEST_DRAW);
    }
    if d.binarize == Binarization::Static {
        dataset.train = binarize_static(&dataset.train, d.seed ^ TRAIN_DRAW);
    }
    let (train, validation) = if d.validation_size > 0 {
        let (train, mut validation) = split_validation(&dataset.train, d.validation_size, d.seed)?;
        if d.binarize == Binarization::Dynamic {
            validation = binarize_static(&validation, d.seed ^ TRAIN_DRAW);
        }
        (train, Some(validation))
    } else {
        (dataset.train, None)
    };
    Ok(PreparedData {
        name: dataset.name,
        train: Arc::new(train),
        validation,
        test: dataset.test,
        class_names: dataset.class_names,
        dynamic: d.binarize == Binarization::Dynamic,
    })
}

/// One training batch: inputs `[B, …]` on the device and their labels `[B]` (int64; empty for
/// data without labels, such as code grids).
pub(crate) struct Batch {
    pub(crate) x: Tensor,
    pub(crate) labels: Tensor,
}

impl Batch {
    /// Examples in the batch.
    pub(crate) fn len(&self) -> i64 {
        self.x.size()[0]
    }
}

/// What a phase trains on.
pub(crate) enum TrainingData {
    /// The prepared training images, batched on a background thread (seeded order and
    /// dynamic binarisation by `(data.seed, epoch)`).
    Images {
        /// The images.
        set: Arc<ImageSet>,
        /// Batch size, order and binarisation.
        options: BatchOptions,
    },
    /// Rows of a tensor already on the device (e.g. code grids), in an order drawn from
    /// libtorch's generator (seeded by the trainer every epoch).
    Rows {
        /// `[N, …]`.
        x: Tensor,
        /// Rows per step.
        batch_size: i64,
    },
}

impl TrainingData {
    /// The prepared training images with the `[train]` batch settings; an error naming
    /// `train.batch_size` when it exceeds the training examples or `drop_last` leaves no batch.
    pub(crate) fn images(config: &ValidConfig, data: &PreparedData) -> Result<Self, LabError> {
        let f = config.file();
        let n_train = data.train.len();
        if f.train.batch_size > n_train {
            return Err(ConfigError::Invalid {
                field: "train.batch_size",
                reason: format!(
                    "{} is larger than the {n_train} training examples",
                    f.train.batch_size
                ),
            }
            .into());
        }
        if batches_per_epoch(n_train, f.train.batch_size, f.train.drop_last) == 0 {
            return Err(ConfigError::Invalid {
                field: "train.batch_size",
                reason: format!(
                    "with drop_last, a batch of {} leaves no batch from {n_train} training examples",
                    f.train.batch_size
                ),
            }
            .into());
        }
        Ok(Self::Images {
            set: data.train.clone(),
            options: BatchOptions {
                batch_size: f.train.batch_size,
                shuffle: true,
                drop_last: f.train.drop_last,
                seed: f.data.seed,
                binarize: data.dynamic,
            },
        })
    }

    /// Steps in one epoch of `shard` (every shard takes the same number).
    pub(crate) fn steps_per_epoch(&self, shard: Shard) -> usize {
        match self {
            Self::Images { set, options } if shard.count == 1 => {
                batches_per_epoch(set.len(), options.batch_size, options.drop_last)
            }
            Self::Images { set, options } => shard
                .ranges(set.len(), options.batch_size, options.drop_last)
                .len(),
            Self::Rows { x, batch_size } => shard
                .ranges(x.size()[0] as usize, *batch_size as usize, false)
                .len(),
        }
    }

    /// The batches of epoch `epoch` that `shard` trains on, on `device` (the order of the rows
    /// is drawn here, before the first batch is taken).
    pub(crate) fn epoch(
        &self,
        epoch: usize,
        device: Device,
        shard: Shard,
    ) -> Box<dyn Iterator<Item = Result<Batch, LabError>> + '_> {
        match self {
            Self::Images { set, options } => {
                let d = set.image_len() as i64;
                let batches = Prefetcher::sharded(set.clone(), *options, epoch as u64, shard);
                Box::new(batches.map(move |batch| {
                    let len = batch.len() as i64;
                    Ok(Batch {
                        x: tensor_from_u8_images(&batch.pixels, &[len, d], device)?,
                        labels: labels_tensor(&batch.labels, device),
                    })
                }))
            }
            Self::Rows { x, batch_size } => {
                let n = x.size()[0];
                let order = Tensor::randperm(n, (Kind::Int64, x.device()));
                let ranges = shard.ranges(n as usize, *batch_size as usize, false);
                Box::new(ranges.into_iter().map(move |(start, len)| {
                    let (start, len) = (start as i64, len as i64);
                    Ok(Batch {
                        x: x.index_select(0, &order.narrow(0, start, len)),
                        labels: Tensor::zeros([0], (Kind::Int64, x.device())),
                    })
                }))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rank_parts_split_every_evaluation_batch_near_equally() {
        let x = Tensor::arange(23, (Kind::Int64, Device::Cpu)).view([23, 1]);
        let split = DeviceSplit::of(x, Tensor::arange(23, (Kind::Int64, Device::Cpu)));
        let shards: Vec<DeviceSplit> = (0..3).map(|r| split.shard(r, 3, 10)).collect();
        // Batches of 10, 10 and 3 rows: parts of 3/3/4 (10) and 1/1/1 (3).
        let lens: Vec<Vec<i64>> = shards
            .iter()
            .map(|s| s.parts.as_ref().unwrap().iter().map(|p| p.len).collect())
            .collect();
        assert_eq!(lens, [vec![3, 3, 1], vec![3, 3, 1], vec![4, 4, 1]]);
        // Taken batch by batch, rank after rank, the parts are the split in order.
        let mut rows = Vec::new();
        let mut next = [0i64; 3];
        for b in 0..3 {
            for (r, s) in shards.iter().enumerate() {
                let part = s.parts.as_ref().unwrap()[b];
                assert_eq!(part.start, rows.len() as i64 - 10 * b as i64);
                for i in 0..part.len {
                    rows.push(s.x.int64_value(&[next[r] + i, 0]));
                }
                next[r] += part.len;
            }
        }
        assert_eq!(rows, (0..23).collect::<Vec<_>>());
        assert_eq!(shards.iter().map(|s| s.n).sum::<i64>(), 23);
        assert!(shards[2].labels.equal(&shards[2].x.view([-1])));
    }

    #[test]
    fn batch_ranges_cover_every_row_once() {
        let ranges: Vec<_> = batch_ranges(10, 4).collect();
        assert_eq!(ranges, vec![(0, 4), (4, 4), (8, 2)]);
        assert_eq!(batch_ranges(0, 4).count(), 0);
        assert_eq!(batch_ranges(3, 10).collect::<Vec<_>>(), vec![(0, 3)]);
    }

    #[test]
    fn mean_over_batches_matches_the_whole_mean() {
        let x = Tensor::arange(7, (Kind::Double, Device::Cpu)).view([7, 1]);
        let mean = mean_over_batches(&x, 3, |b| Ok(b.shallow_clone())).unwrap();
        assert!((mean - 3.0).abs() < 1e-12);
    }
}
