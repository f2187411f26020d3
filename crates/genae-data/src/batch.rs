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

use crate::transforms::{binarize_in_place, permutation};
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

/// The batches of one epoch, prepared on the calling thread. The order depends only on
/// `(seed, epoch)`, and so do the binarisation draws, so a run repeats exactly.
pub struct BatchIter {
    set: Arc<ImageSet>,
    order: Option<Vec<usize>>,
    options: BatchOptions,
    next: usize,
    end: usize,
    rng: ChaCha8Rng,
}

impl BatchIter {
    /// The batches of epoch `epoch` (any number; epochs differ only by their seeds).
    pub fn new(set: Arc<ImageSet>, options: BatchOptions, epoch: u64) -> Self {
        let options = BatchOptions {
            batch_size: options.batch_size.max(1),
            ..options
        };
        let n = set.len();
        let order = options.shuffle.then(|| permutation(n, options.seed, epoch));
        let end = batches_per_epoch(n, options.batch_size, options.drop_last) * options.batch_size;
        let mut rng = ChaCha8Rng::seed_from_u64(options.seed ^ 0x6269_6E61_7269_7A65);
        rng.set_stream(epoch);
        Self {
            set,
            order,
            options,
            next: 0,
            end: end.min(n),
            rng,
        }
    }
}

impl Iterator for BatchIter {
    type Item = Batch;

    fn next(&mut self) -> Option<Batch> {
        if self.next >= self.end {
            return None;
        }
        let start = self.next;
        let stop = (start + self.options.batch_size).min(self.end);
        self.next = stop;
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
            binarize_in_place(&mut batch.pixels, &mut self.rng);
        }
        Some(batch)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = (self.end - self.next).div_ceil(self.options.batch_size);
        (left, Some(left))
    }
}

/// Batches needed ahead of the consumer.
const PREFETCH_DEPTH: usize = 2;

/// [`BatchIter`] run on a background thread, [`PREFETCH_DEPTH`] batches ahead: iterate it like
/// the plain iterator. Dropping it stops the thread.
pub struct Prefetcher {
    receiver: Option<Receiver<Batch>>,
    worker: Option<JoinHandle<()>>,
    remaining: usize,
}

impl Prefetcher {
    /// Starts preparing the batches of epoch `epoch`.
    pub fn epoch(set: Arc<ImageSet>, options: BatchOptions, epoch: u64) -> Self {
        let batches = BatchIter::new(set, options, epoch);
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
    fn dropping_a_prefetcher_early_stops_its_thread() {
        let set = numbered(10_000);
        let mut p = Prefetcher::epoch(set, options(1, true, false), 0);
        assert_eq!(p.size_hint().0, 10_000);
        assert!(p.next().is_some());
        drop(p); // must not hang
    }
}
