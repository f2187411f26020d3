#![allow(missing_docs)] // criterion_group! generates undocumented items

//! Forward and backward pass of the straight-through quantizer on a VQ-VAE-sized batch:
//! 128 encoder grids of 8×8 vectors (8192 vectors), K = 512 codes of d = 64, with the codebook
//! loss (`loss`) and with EMA updates (`ema`). One iteration: nearest codes (one matmul),
//! straight-through output, both losses, usage and perplexity, backward of
//! `mean(quantized²) + loss` into `z_e` and the codebook.
//!
//! `cargo bench -p genae-samplers --bench quantizer` (`GENAE_DEVICE=cuda` for the GPU);
//! `benches/quantizer_pytorch.py` times the same computation in PyTorch.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use genae_samplers::{CodebookUpdate, QuantizerConfig, VectorQuantizer};
use genae_tensor::DeviceSpec;
use tch::{nn, Device, Kind, Tensor};

const BATCH: i64 = 128;
const SIDE: i64 = 8;
const CODES: i64 = 512;
const DIM: i64 = 64;

fn device() -> Device {
    DeviceSpec::from_env()
        .ok()
        .flatten()
        .and_then(|spec| spec.resolve().ok())
        .unwrap_or(Device::Cpu)
}

fn forward_backward(c: &mut Criterion) {
    tch::manual_seed(0);
    let device = device();
    let mut group = c.benchmark_group("quantizer");
    group.sample_size(20);
    group.throughput(Throughput::Elements((BATCH * SIDE * SIDE) as u64));
    for update in [CodebookUpdate::Loss, CodebookUpdate::ema()] {
        let vs = nn::VarStore::new(device);
        let config = QuantizerConfig {
            num_codes: CODES,
            code_dim: DIM,
            update: update.clone(),
            ..Default::default()
        };
        let vq = VectorQuantizer::new(&vs.root(), &config).expect("a valid quantizer config");
        let mut z_e = Tensor::randn([BATCH, DIM, SIDE, SIDE], (Kind::Float, device))
            .f_mul_scalar(0.1)
            .unwrap()
            .set_requires_grad(true);
        let mut codebook = vq.codebook();
        group.bench_function(
            format!(
                "fwd_bwd_{}_b{BATCH}_{SIDE}x{SIDE}_k{CODES}_d{DIM}_{device:?}",
                update.name()
            ),
            |b| {
                b.iter(|| {
                    z_e.zero_grad();
                    if codebook.requires_grad() {
                        codebook.zero_grad();
                    }
                    let out = vq.forward_t(black_box(&z_e), true).unwrap();
                    let loss = out.quantized.square().mean(Kind::Float) + out.loss();
                    loss.backward();
                    // Reading a value back waits for the device.
                    black_box(z_e.grad().sum(Kind::Float).double_value(&[]))
                })
            },
        );
    }
    group.finish();
}

criterion_group!(benches, forward_backward);
criterion_main!(benches);
