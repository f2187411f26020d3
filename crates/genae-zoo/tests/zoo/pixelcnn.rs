//! The gated PixelCNN: causality position by position (no position sees itself or a later one,
//! and every earlier one within reach is seen: no blind spot), NLL against libtorch's
//! cross-entropy, seeded sampling, and learning a deterministic pattern; the VQ-VAE networks
//! reconstruct after a few steps.

use std::sync::{Mutex, MutexGuard};

use genae_zoo::{GatedPixelCnn, PixelCnnConfig, VqDecoder, VqEncoder, VqNetConfig};
use tch::{nn, nn::OptimizerConfig, Device, Kind, Reduction, Tensor};

/// These tests seed libtorch's global generator; hold this while they do.
fn torch_rng_lock() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

fn small(num_codes: i64, layers: usize) -> PixelCnnConfig {
    PixelCnnConfig {
        num_codes,
        channels: 8,
        layers,
        kernel_size: 3,
        output_channels: 8,
    }
}

/// Logits at raster position `p` of a `[1, H, W]` grid, `[K]`.
fn logits_at(prior: &GatedPixelCnn, codes: &Tensor, p: i64) -> Tensor {
    let w = codes.size()[2];
    prior
        .logits(codes)
        .unwrap()
        .get(0)
        .select(2, p % w)
        .select(1, p / w)
}

#[test]
fn pixelcnn_is_causal_without_a_blind_spot() {
    let _rng = torch_rng_lock();
    tch::manual_seed(31);
    let (k, rows, cols) = (5i64, 4i64, 5i64);
    let mut vs = nn::VarStore::new(Device::Cpu);
    // Four layers of k = 3 reach 4 columns to each side and 5 rows up: the whole 4 × 5 past.
    let prior = GatedPixelCnn::new(&vs.root(), &small(k, 4)).unwrap();
    // In double precision, so that rounding (~1e-16) stays far below the smallest real
    // influence: at PyTorch's initialisation the four-layer path from 4 columns away moves the
    // logits by about 2e-5 only.
    vs.double();
    let base = Tensor::randint(k, [1, rows, cols], (Kind::Int64, Device::Cpu));
    let n = rows * cols;
    for p in 0..n {
        let at_p = logits_at(&prior, &base, p);
        // Every position ≥ p changed (each to a different code): the logits at p stay.
        let shift = Tensor::randint_low(1, k, [1, rows, cols], (Kind::Int64, Device::Cpu));
        let later = Tensor::arange(n, (Kind::Int64, Device::Cpu))
            .ge(p)
            .view([1, rows, cols]);
        let changed = (&base + shift.where_self(&later, &shift.zeros_like())).remainder(k);
        let diff = (logits_at(&prior, &changed, p) - &at_p)
            .abs()
            .max()
            .double_value(&[]);
        // (A tolerance only for rounding: a leak moves logits by orders of magnitude more.)
        assert!(
            diff < 1e-12,
            "position {p} depends on a position ≥ {p} ({diff})"
        );
        // Every single earlier position q, changed alone, moves the logits at p.
        for q in 0..p {
            let changed = base.copy();
            let old = base.int64_value(&[0, q / cols, q % cols]);
            let _ = changed
                .get(0)
                .get(q / cols)
                .get(q % cols)
                .fill_((old + 1) % k);
            let diff = (logits_at(&prior, &changed, p) - &at_p)
                .abs()
                .max()
                .double_value(&[]);
            assert!(
                diff > 1e-9,
                "position {p} does not see position {q} (blind spot, {diff})"
            );
        }
    }
}

#[test]
fn pixelcnn_nll_is_the_cross_entropy_of_its_logits() {
    let _rng = torch_rng_lock();
    tch::manual_seed(32);
    let vs = nn::VarStore::new(Device::Cpu);
    let prior = GatedPixelCnn::new(&vs.root(), &small(6, 2)).unwrap();
    let codes = Tensor::randint(6, [3, 4, 4], (Kind::Int64, Device::Cpu));
    let nll = prior.nll(&codes).unwrap();
    let logits = prior.logits(&codes).unwrap();
    for i in 0..3 {
        let want = logits
            .get(i)
            .unsqueeze(0)
            .cross_entropy_loss::<Tensor>(
                &codes.get(i).unsqueeze(0),
                None,
                Reduction::Sum,
                -100,
                0.0,
            )
            .double_value(&[]);
        let got = nll.double_value(&[i]);
        assert!(
            (got - want).abs() < 1e-4 * want.abs().max(1.0),
            "{got} vs {want}"
        );
    }
}

#[test]
fn pixelcnn_learns_a_deterministic_pattern_and_samples_it() {
    let _rng = torch_rng_lock();
    tch::manual_seed(33);
    // code(i, j) = (s + i + j) mod K with s uniform: the best NLL is ln K per grid (the first
    // position), against 16 ln K for a model that knows nothing.
    let (k, side) = (4i64, 4i64);
    let grid = |s: &Tensor| {
        let i = Tensor::arange(side, (Kind::Int64, Device::Cpu)).view([1, side, 1]);
        let j = Tensor::arange(side, (Kind::Int64, Device::Cpu)).view([1, 1, side]);
        (s.view([-1, 1, 1]) + i + j).remainder(k)
    };
    let vs = nn::VarStore::new(Device::Cpu);
    let config = PixelCnnConfig {
        channels: 16,
        output_channels: 16,
        ..small(k, 3)
    };
    let prior = GatedPixelCnn::new(&vs.root(), &config).unwrap();
    let mut opt = nn::Adam::default().build(&vs, 1e-2).unwrap();
    let uninformed = (side * side) as f64 * (k as f64).ln();
    for _ in 0..300 {
        let codes = grid(&Tensor::randint(k, [32], (Kind::Int64, Device::Cpu)));
        opt.backward_step(&prior.nll(&codes).unwrap().mean(Kind::Float));
    }
    let test = grid(&Tensor::arange(k, (Kind::Int64, Device::Cpu)));
    let nll = tch::no_grad(|| {
        prior
            .nll(&test)
            .unwrap()
            .mean(Kind::Float)
            .double_value(&[])
    });
    let best = (k as f64).ln();
    eprintln!("pattern NLL {nll:.3} nats/grid (best {best:.3}, uninformed {uninformed:.3})");
    assert!(
        nll < best + 0.5,
        "NLL {nll} vs best {best}, uninformed {uninformed}"
    );

    let samples = prior.sample(64, [side, side], 5, Device::Cpu).unwrap();
    assert!(samples.equal(&prior.sample(64, [side, side], 5, Device::Cpu).unwrap()));
    assert!(!samples.equal(&prior.sample(64, [side, side], 6, Device::Cpu).unwrap()));
    // The samples follow the rule from their own first code, and start from every code.
    let follows = samples.eq_tensor(&grid(&samples.select(2, 0).select(1, 0)));
    let fraction = follows
        .to_kind(Kind::Double)
        .mean(Kind::Double)
        .double_value(&[]);
    assert!(
        fraction > 0.95,
        "only {fraction} of sampled codes follow the pattern"
    );
    let firsts = samples
        .select(2, 0)
        .select(1, 0)
        .bincount::<Tensor>(None, k);
    assert!(firsts.min().int64_value(&[]) > 5, "first codes {firsts:?}");
}

#[test]
fn vq_networks_reconstruct_after_training() {
    let _rng = torch_rng_lock();
    tch::manual_seed(34);
    let x = crate::shapes_batch(16, 1, 28);
    let vs = nn::VarStore::new(Device::Cpu);
    let config = VqNetConfig {
        hidden_channels: 16,
        residual_channels: 8,
        code_dim: 4,
        ..Default::default()
    };
    let enc = VqEncoder::new(&(vs.root() / "enc"), [1, 28, 28], &config).unwrap();
    let dec = VqDecoder::new(&(vs.root() / "dec"), [1, 28, 28], &config).unwrap();
    let mut opt = nn::Adam::default().build(&vs, 3e-3).unwrap();
    let mse = || {
        (dec.decode(&enc.encode(&x).unwrap()).unwrap() - &x)
            .square()
            .mean(Kind::Float)
    };
    let first = mse().double_value(&[]);
    for _ in 0..60 {
        opt.backward_step(&mse());
    }
    let last = mse().double_value(&[]);
    eprintln!("VQ networks without the quantizer: MSE {first:.4} → {last:.4}");
    assert!(last < 0.5 * first, "{first} → {last}");
}
