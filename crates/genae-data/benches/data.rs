#![allow(missing_docs)] // criterion_group! generates undocumented items

//! Data-layer benchmarks: decoding Fashion-MNIST and iterating over in-memory batches.
//!
//! `cargo bench -p genae-data --bench data`. The decode bench needs the Fashion-MNIST files
//! (`cargo xtask setup` installs them) and is skipped with a note when they are absent.

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use genae_data::batch::{BatchIter, BatchOptions, Prefetcher};
use genae_data::formats::idx::{load_idx_pair, IdxImageOptions};
use genae_data::ImageSet;

const FASHION: &str = "/usr/share/datasets/fashion-mnist";

fn decode(c: &mut Criterion) {
    let dir = Path::new(FASHION);
    let images = dir.join("train-images-idx3-ubyte.gz");
    let labels = dir.join("train-labels-idx1-ubyte.gz");
    if !images.exists() {
        eprintln!("skipping decode bench: {} not found", images.display());
        return;
    }
    let mut group = c.benchmark_group("decode");
    group.sample_size(20);
    group.throughput(Throughput::Elements(60_000));
    group.bench_function("fashion_mnist_train_gz", |b| {
        b.iter(|| {
            let set = load_idx_pair(&images, &labels, IdxImageOptions::default()).unwrap();
            assert_eq!(set.len(), 60_000);
            black_box(set)
        })
    });
    group.finish();
}

fn iterate(c: &mut Criterion) {
    // 60k images of 28x28 with varied bytes, like Fashion-MNIST in memory.
    let n = 60_000;
    let pixels: Vec<u8> = (0..n * 784).map(|i| (i * 31 % 251) as u8).collect();
    let set = Arc::new(ImageSet::new(pixels, vec![0; n], [1, 28, 28]).unwrap());
    let mut group = c.benchmark_group("batches_28x28");
    group.sample_size(20);
    group.throughput(Throughput::Elements(n as u64));
    for (name, shuffle, binarize) in [
        ("stored_order", false, false),
        ("shuffled", true, false),
        ("shuffled_binarised", true, true),
    ] {
        let options = BatchOptions {
            batch_size: 100,
            shuffle,
            drop_last: false,
            seed: 0,
            binarize,
        };
        group.bench_function(format!("{name}_same_thread"), |b| {
            b.iter(|| {
                BatchIter::new(set.clone(), options, 1)
                    .map(|b| black_box(b).len())
                    .sum::<usize>()
            })
        });
        group.bench_function(format!("{name}_prefetch_thread"), |b| {
            b.iter(|| {
                Prefetcher::epoch(set.clone(), options, 1)
                    .map(|b| black_box(b).len())
                    .sum::<usize>()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, decode, iterate);
criterion_main!(benches);
