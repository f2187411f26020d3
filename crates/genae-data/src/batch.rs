//! Mini-batches: a seeded order per epoch, `drop_last`, optional dynamic binarisation, and a
//! background thread that prepares the next batch while the current one trains.
//!
//! ```
//! use std::sync::Arc;
//! use genae_data::batch::{BatchOptions, Prefetcher};
//! use genae_data::ImageSet;
//!
//! let set = Arc::new(ImageSet::new(vec![7; 10 * 4], (0..10).collect(), [1, 2, 2]).unwrap());
//! let options = BatchOptions { batch_size: 4, shuffle: true, drop_last: false, seed: 1, binarize: false };
//! let sizes: Vec<usize> = Prefetcher::epoch(set, options, 0).map(|b| b.len()).collect();
//! assert_eq!(sizes, vec![4, 4, 2]);
//! ```

use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;
use std::thread::JoinHandle;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::transforms::{binarize_at, binarize_in_place, binarize_words, permutation};
use crate::ImageSet;

/// How an epoch is cut into batches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchOptions {
    /// Examples per batch (at least 1).
    pub batch_size: usize,
    /// Visit the examples in a fresh seeded order every epoch (else in stored order).
    pub shuffle: bool,
    /// Leave out a last batch smaller than `batch_size`.
    pub drop_last: bool,
    /// Seed of the order and of the binarisation draws.
    pub seed: u64,
    /// Binarise each batch with a fresh draw (dynamic binarisation).
    pub binarize: bool,
}

/// One batch of images, gathered into its own buffers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Batch {
    /// `len · C·H·W` bytes.
    pub pixels: Vec<u8>,
    /// `len` labels.
    pub labels: Vec<u32>,
    /// `[C, H, W]`.
    pub image_shape: [usize; 3],
}

impl Batch {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether the batch holds no image.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
}

/// Number of batches an epoch of `n` examples gives.
pub fn batches_per_epoch(n: usize, batch_size: usize, drop_last: bool) -> usize {
    let batch_size = batch_size.max(1);
    if drop_last {
        n / batch_size
    } else {
        n.div_ceil(batch_size)
    }
}

/// This process's part of each batch in data-parallel training: `count` processes each take
/// an equal, disjoint slice of every global batch (`count · batch_size` examples of the
/// epoch's order, slice `rank`), like PyTorch's `DistributedSampler` with the batch size per
/// process. The union of the slices of a step is the batch a single process with batch size
/// `count · batch_size` would see. A last global batch smaller than that is split equally
/// (its at most `count − 1` leftover examples skipped), or dropped with `drop_last`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    /// This process, from 0.
    pub rank: usize,
    /// The number of processes (at least 1).
    pub count: usize,
}

impl Default for Shard {
    /// One process: the whole batch.
    fn default() -> Self {
        Self { rank: 0, count: 1 }
    }
}

impl Shard {
    /// `(start, len)` of this shard's batches, as positions in an epoch's order of `n`
    /// examples.
    ///
    /// ```
    /// use genae_data::batch::Shard;
    /// // 10 examples, 2 per process, 2 processes: global batches 0..4, 4..8, 8..10.
    /// let r1 = Shard { rank: 1, count: 2 }.ranges(10, 2, false);
    /// assert_eq!(r1, vec![(2, 2), (6, 2), (9, 1)]);
    /// assert_eq!(Shard::default().ranges(10, 4, true), vec![(0, 4), (4, 4)]);
    /// ```
    pub fn ranges(&self, n: usize, batch_size: usize, drop_last: bool) -> Vec<(usize, usize)> {
        let count = self.count.max(1);
        let global = batch_size.max(1) * count;
        let mut out = Vec::new();
        let mut start = 0;
        while start < n {
            let len = global.min(n - start);
            if len < global && drop_last {
                break;
            }
            let each = len / count;
            if each == 0 {
                break;
            }
            out.push((start + self.rank * each, each));
            start += global;
        }
        out
    }
}

/// The batches of one epoch, prepared on the calling thread. The order depends only on
/// `(seed, epoch)`, and so do the binarisation draws, so a run repeats exactly.
pub struct BatchIter {
    set: Arc<ImageSet>,
    order: Option<Vec<usize>>,
    options: BatchOptions,
    /// `(start, len)` of the batches left, in the order's positions.
    ranges: std::vec::IntoIter<(usize, usize)>,
    rng: ChaCha8Rng,
    shard: Shard,
    /// Examples in the epoch.
    len: usize,
}

impl BatchIter {
    /// The batches of epoch `epoch` (any number; epochs differ only by their seeds).
    pub fn new(set: Arc<ImageSet>, options: BatchOptions, epoch: u64) -> Self {
        Self::sharded(set, options, epoch, Shard::default())
    }

    /// This process's [`Shard`] of the batches of epoch `epoch`: the order is the same on
    /// every process, and so are the binarisation draws, each process binarising its rows as a
    /// single process binarises them in the whole global batch.
    pub fn sharded(set: Arc<ImageSet>, options: BatchOptions, epoch: u64, shard: Shard) -> Self {
        let options = BatchOptions {
            batch_size: options.batch_size.max(1),
            ..options
        };
        let n = set.len();
        let order = options.shuffle.then(|| permutation(n, options.seed, epoch));
        let ranges = shard.ranges(n, options.batch_size, options.drop_last);
        let mut rng = ChaCha8Rng::seed_from_u64(options.seed ^ 0x6269_6E61_7269_7A65);
        rng.set_stream(epoch);
        Self {
            set,
            order,
            options,
            ranges: ranges.into_iter(),
            rng,
            shard,
            len: n,
        }
    }
}

impl Iterator for BatchIter {
    type Item = Batch;

    fn next(&mut self) -> Option<Batch> {
        let (start, len) = self.ranges.next()?;
        let stop = start + len;
        let image_len = self.set.image_len();
        let mut batch = match &self.order {
            // Stored order: one contiguous copy of the slice.
            None => Batch {
                pixels: self.set.pixels[start * image_len..stop * image_len].to_vec(),
                labels: self.set.labels[start..stop].to_vec(),
                image_shape: self.set.image_shape,
            },
            Some(order) => {
                let picks = &order[start..stop];
                let mut pixels = Vec::with_capacity(picks.len() * image_len);
                for &i in picks {
                    pixels.extend_from_slice(self.set.image(i));
                }
                Batch {
                    pixels,
                    labels: picks.iter().map(|&i| self.set.labels[i]).collect(),
                    image_shape: self.set.image_shape,
                }
            }
        };
        if self.options.binarize {
            if self.shard.count <= 1 {
                binarize_in_place(&mut batch.pixels, &mut self.rng);
            } else {
                // The global batch starts `rank` slices of `len` earlier; a single process
                // binarises all of it (up to the epoch's end) from where the stream stands.
                let global_start = start - self.shard.rank * len;
                let global_len =
                    (self.options.batch_size * self.shard.count).min(self.len - global_start);
                let batch_start = self.rng.get_word_pos();
                binarize_at(
                    &mut batch.pixels,
                    self.shard.rank * len * image_len,
                    &mut self.rng,
                );
                self.rng
                    .set_word_pos(batch_start + binarize_words(global_len * image_len));
            }
        }
        Some(batch)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.ranges.size_hint()
    }
}

/// Batches needed ahead of the consumer.
const PREFETCH_DEPTH: usize = 2;

/// [`BatchIter`] run on a background thread, two batches ahead: iterate it like
/// the plain iterator. Dropping it stops the thread.
pub struct Prefetcher {
    receiver: Option<Receiver<Batch>>,
    worker: Option<JoinHandle<()>>,
    remaining: usize,
}

impl Prefetcher {
    /// Starts preparing the batches of epoch `epoch`.
    pub fn epoch(set: Arc<ImageSet>, options: BatchOptions, epoch: u64) -> Self {
        Self::sharded(set, options, epoch, Shard::default())
    }

    /// This process's [`Shard`] of the batches of epoch `epoch` ([`BatchIter::sharded`]).
    pub fn sharded(set: Arc<ImageSet>, options: BatchOptions, epoch: u64, shard: Shard) -> Self {
        let batches = BatchIter::sharded(set, options, epoch, shard);
        let remaining = batches.size_hint().0;
        let (sender, receiver) = sync_channel(PREFETCH_DEPTH);
        let worker = std::thread::Builder::new()
            .name("genae-batches".into())
            .spawn(move || {
                for batch in batches {
                    if sender.send(batch).is_err() {
                        break; // the consumer went away
                    }
                }
            })
            .expect("spawning the batch thread");
        Self {
            receiver: Some(receiver),
            worker: Some(worker),
            remaining,
        }
    }
}

impl Iterator for Prefetcher {
    type Item = Batch;

    fn next(&mut self) -> Option<Batch> {
        let batch = self.receiver.as_ref()?.recv().ok();
        self.remaining = self.remaining.saturating_sub(batch.is_some() as usize);
        batch
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl Drop for Prefetcher {
    fn drop(&mut self) {
        self.receiver.take(); // unblocks a worker waiting to send
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numbered(n: usize) -> Arc<ImageSet> {
        // Image i is [i, i, i] (mod 256) with label i.
        let pixels = (0..n).flat_map(|i| [i as u8; 3]).collect();
        Arc::new(ImageSet::new(pixels, (0..n as u32).collect(), [1, 1, 3]).unwrap())
    }

    fn options(batch_size: usize, shuffle: bool, drop_last: bool) -> BatchOptions {
        BatchOptions {
            batch_size,
            shuffle,
            drop_last,
            seed: 11,
            binarize: false,
        }
    }

    #[test]
    fn an_epoch_visits_every_example_once_and_pixels_follow_labels() {
        let set = numbered(103);
        let batches: Vec<Batch> =
            BatchIter::new(set.clone(), options(10, true, false), 0).collect();
        assert_eq!(batches.len(), 11);
        assert_eq!(batches.last().unwrap().len(), 3);
        let mut seen: Vec<u32> = batches.iter().flat_map(|b| b.labels.clone()).collect();
        assert_ne!(seen, (0..103).collect::<Vec<_>>(), "shuffled");
        for b in &batches {
            for (k, &l) in b.labels.iter().enumerate() {
                assert_eq!(&b.pixels[k * 3..k * 3 + 3], &[l as u8; 3]);
            }
        }
        seen.sort_unstable();
        assert_eq!(seen, (0..103).collect::<Vec<_>>());
    }

    #[test]
    fn drop_last_and_stored_order() {
        let set = numbered(25);
        let sizes: Vec<usize> = BatchIter::new(set.clone(), options(10, false, true), 0)
            .map(|b| b.len())
            .collect();
        assert_eq!(sizes, vec![10, 10]);
        let first = BatchIter::new(set, options(10, false, false), 3)
            .next()
            .unwrap();
        assert_eq!(first.labels, (0..10).collect::<Vec<_>>());
        assert_eq!(batches_per_epoch(25, 10, true), 2);
        assert_eq!(batches_per_epoch(25, 10, false), 3);
    }

    #[test]
    fn order_and_binarisation_depend_only_on_seed_and_epoch() {
        let grey = Arc::new(ImageSet::new(vec![128; 40 * 16], vec![0; 40], [1, 4, 4]).unwrap());
        let opts = BatchOptions {
            binarize: true,
            ..options(8, true, false)
        };
        let a: Vec<Batch> = BatchIter::new(grey.clone(), opts, 2).collect();
        let b: Vec<Batch> = Prefetcher::epoch(grey.clone(), opts, 2).collect();
        assert_eq!(a, b, "the background thread gives the same batches");
        let c: Vec<Batch> = BatchIter::new(grey.clone(), opts, 3).collect();
        assert_ne!(a, c, "a new epoch draws afresh");
        let on: usize = a
            .iter()
            .map(|b| b.pixels.iter().filter(|&&p| p == 255).count())
            .sum();
        assert!(
            (250..390).contains(&on),
            "about half of 640 pixels on, got {on}"
        );
    }

    #[test]
    fn shards_binarise_their_rows_as_one_process_binarises_the_global_batch() {
        // Odd image sizes (pixel offsets inside a word) and images longer than one draw chunk;
        // 23 examples leave a short last global batch.
        for shape in [[1, 3, 5], [1, 20, 20]] {
            let len: usize = shape.iter().product();
            let pixels = (0..23 * len).map(|i| (i * 37 % 251) as u8).collect();
            let set = Arc::new(ImageSet::new(pixels, (0..23).collect(), shape).unwrap());
            for count in [2, 3] {
                let per_rank = 3;
                let opts = |batch_size| BatchOptions {
                    binarize: true,
                    ..options(batch_size, true, false)
                };
                let whole: Vec<Batch> =
                    BatchIter::new(set.clone(), opts(per_rank * count), 4).collect();
                let ranks: Vec<Vec<Batch>> = (0..count)
                    .map(|rank| {
                        BatchIter::sharded(set.clone(), opts(per_rank), 4, Shard { rank, count })
                            .collect()
                    })
                    .collect();
                for (b, global) in whole.iter().enumerate() {
                    let each = ranks[0][b].len();
                    for (rank, batches) in ranks.iter().enumerate() {
                        let mine = &batches[b];
                        assert_eq!(mine.labels, global.labels[rank * each..][..each]);
                        assert_eq!(
                            mine.pixels,
                            global.pixels[rank * each * len..][..each * len],
                            "{shape:?}, {count} processes, batch {b}, rank {rank}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn dropping_a_prefetcher_early_stops_its_thread() {
        let set = numbered(10_000);
        let mut p = Prefetcher::epoch(set, options(1, true, false), 0);
        assert_eq!(p.size_hint().0, 10_000);
        assert!(p.next().is_some());
        drop(p); // must not hang
    }

    #[test]
    fn shards_split_each_global_batch_into_equal_disjoint_slices() {
        let (n, b, w) = (103, 8, 3);
        let single = Shard::default().ranges(n, b * w, false);
        let shards: Vec<_> = (0..w)
            .map(|rank| Shard { rank, count: w }.ranges(n, b, false))
            .collect();
        assert!(shards.iter().all(|s| s.len() == single.len()));
        for (step, &(start, len)) in single.iter().enumerate() {
            let each = shards[0][step].1;
            assert!(shards.iter().all(|s| s[step].1 == each), "equal slices");
            let mut covered: Vec<usize> = shards
                .iter()
                .flat_map(|s| s[step].0..s[step].0 + s[step].1)
                .collect();
            covered.sort();
            // The union is the single process's batch, less at most w − 1 leftovers.
            assert_eq!(covered, (start..start + each * w).collect::<Vec<_>>());
            assert!(len - each * w < w);
        }
        assert!(Shard { rank: 2, count: 3 }.ranges(103, 8, true).len() == 4);
    }
}
