#![allow(missing_docs)] // criterion_group! generates undocumented items

//! `L_5000` on a 784-300-300-40 Bernoulli VAE (random weights), per image, for several batch and
//! chunk sizes: the cost of a run's test log-likelihood and how it depends on the pass size.
//!
//! `cargo bench -p genae-estimators --bench log_likelihood` (`GENAE_DEVICE=cuda` for the GPU).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use genae_estimators::log_likelihood_estimate;
use genae_tensor::DeviceSpec;
use genae_zoo::{Vae, VaeConfig};
use tch::{nn, Device, Kind, Tensor};

fn device() -> Device {
    DeviceSpec::from_env()
        .ok()
        .flatten()
        .and_then(|spec| spec.resolve().ok())
        .unwrap_or(Device::Cpu)
}

fn l5000(c: &mut Criterion) {
    tch::manual_seed(0);
    let device = device();
    let vs = nn::VarStore::new(device);
    let config = VaeConfig {
        input_dim: 784,
        hidden: vec![300, 300],
        latent_dim: 40,
        ..Default::default()
    };
    let vae = Vae::new(&vs.root(), &config).expect("a valid VAE config");
    let x = Tensor::rand([10, 784], (Kind::Float, device)).round();

    let mut group = c.benchmark_group("log_likelihood");
    group.sample_size(10);
    // Rows per decoder pass = images per call × chunk: small passes stay in cache.
    for (images, chunk) in [(10, 500), (1, 500), (1, 1280), (1, 250)] {
        let x = x.narrow(0, 0, images);
        group.throughput(Throughput::Elements(images as u64));
        group.bench_function(
            format!("l5000_chunk{chunk}_images{images}_{device:?}"),
            |b| {
                b.iter(|| {
                    let ll = log_likelihood_estimate(&vae, black_box(&x), 5000, chunk).unwrap();
                    // Reading the value back waits for the device.
                    black_box(ll.sum(Kind::Double).double_value(&[]))
                })
            },
        );
    }
    group.finish();
}

criterion_group!(benches, l5000);
criterion_main!(benches);
