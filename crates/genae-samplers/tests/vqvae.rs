//! The VQ-VAE model against an independent composition of its parts.

use std::sync::{Mutex, MutexGuard};

use genae_samplers::{CodebookUpdate, QuantizerConfig, VqVae};
use genae_zoo::{discretized_gaussian_log_prob, GenerativeDecoder, VqNetConfig};
use tch::{nn, Device, Kind, Tensor};

/// libtorch's random generator is global to the process while tests run on parallel threads:
/// every test that draws random numbers holds this lock.
fn torch_rng_lock() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

const SHAPE: [i64; 3] = [1, 8, 8];

fn net() -> VqNetConfig {
    VqNetConfig {
        hidden_channels: 8,
        residual_channels: 4,
        residual_blocks: 1,
        downsamples: 2,
        code_dim: 3,
    }
}

fn quantizer(update: CodebookUpdate, commitment_weight: f64) -> QuantizerConfig {
    QuantizerConfig {
        num_codes: 6,
        code_dim: 3,
        update,
        commitment_weight,
        ..Default::default()
    }
}

/// A model in an `f64` var store, its codebook spread like the encoder's outputs so that
/// several codes are in use.
fn model(config: &QuantizerConfig) -> (nn::VarStore, VqVae) {
    let mut vs = nn::VarStore::new(Device::Cpu);
    vs.set_kind(Kind::Double);
    let model = VqVae::new(&vs.root(), SHAPE, &net(), config).unwrap();
    let z_e = tch::no_grad(|| model.encoder.encode(&images(16)).unwrap());
    model.quantizer.kmeans_init(&z_e, 5).unwrap();
    (vs, model)
}

fn images(n: i64) -> Tensor {
    Tensor::rand([n, 64], (Kind::Double, Device::Cpu))
}

#[test]
fn shapes_follow_the_input_layout() {
    let _rng = torch_rng_lock();
    tch::manual_seed(1);
    let (_vs, m) = model(&quantizer(CodebookUpdate::Loss, 0.25));
    assert_eq!(m.image_shape(), SHAPE);
    assert_eq!(m.grid_shape(), [2, 2]);
    let flat = images(5);
    let out = m.forward_t(&flat, false).unwrap();
    assert_eq!(out.reconstruction.size(), [5, 64]);
    assert_eq!(out.quantizer.indices.size(), [5, 2, 2]);
    assert_eq!(out.batch_size, 5);
    let square = flat.view([5, 1, 8, 8]);
    assert_eq!(
        m.forward_t(&square, false).unwrap().reconstruction.size(),
        [5, 1, 8, 8]
    );
    assert_eq!(m.reconstruct(&square).unwrap().size(), [5, 1, 8, 8]);
    let codes = m.encode_codes(&flat).unwrap();
    assert_eq!((codes.size(), codes.kind()), (vec![5, 2, 2], Kind::Int64));
    assert_eq!(m.decode_codes(&codes).unwrap().size(), [5, 1, 8, 8]);
    // As a GenerativeDecoder: flattened quantised grids in, flattened images out.
    let grid = m.quantizer.lookup(&codes).unwrap().flatten(1, -1);
    assert_eq!(grid.size(), [5, 12]);
    assert_eq!(m.decode_mean(&grid).unwrap().size(), [5, 64]);
    // Wrong image size, and networks and quantizer disagreeing on d.
    assert!(m.forward_t(&images(2).narrow(1, 0, 60), false).is_err());
    let vs = nn::VarStore::new(Device::Cpu);
    let err = VqVae::new(
        &vs.root(),
        SHAPE,
        &net(),
        &QuantizerConfig {
            code_dim: 4,
            ..quantizer(CodebookUpdate::Loss, 0.25)
        },
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("code_dim") && err.contains('3') && err.contains('4'),
        "{err}"
    );
}

#[test]
fn loss_equals_an_independent_computation() {
    let _rng = torch_rng_lock();
    tch::manual_seed(2);
    let beta = 0.4;
    let (_vs, m) = model(&quantizer(CodebookUpdate::Loss, beta));
    let x = images(7);
    let out = m.forward_t(&x, false).unwrap();
    // By hand: nearest codes by brute force over the codebook, decode, sum the squares.
    let z_e = m.encoder.encode(&x).unwrap(); // [7, 3, 2, 2]
    let rows = z_e.permute([0, 2, 3, 1]).reshape([-1, 3]); // [28, 3]
    let codebook = m.quantizer.codebook();
    let dist = (rows.unsqueeze(1) - codebook.unsqueeze(0))
        .square()
        .sum_dim_intlist(-1, false, Kind::Double); // [28, 6]
    let nearest = dist.argmin(1, false);
    assert!(nearest.equal(&out.quantizer.indices.reshape([-1])));
    let z_q = codebook
        .index_select(0, &nearest)
        .view([7, 2, 2, 3])
        .permute([0, 3, 1, 2]);
    let x_hat = m.decoder.decode(&z_q).unwrap().view([7, 64]);
    let squares = (&x_hat - &x).square().sum(Kind::Double).double_value(&[]);
    let gap = (&z_e - &z_q).square().sum(Kind::Double).double_value(&[]);
    // Σ(x − x̂)²/N + ‖sg[z_e] − z_q‖²/N + β‖z_e − sg[z_q]‖²/N (per-example reduction).
    let want = squares / 7.0 + (1.0 + beta) * gap / 7.0;
    let got = out.loss().double_value(&[]);
    assert!((got - want).abs() < 1e-10 * want.abs(), "{got} vs {want}");
    assert!((out.squared_error.double_value(&[]) - squares).abs() < 1e-10 * squares);
    let rec = out.reconstruction_loss().double_value(&[]);
    assert!((rec - squares / 7.0).abs() < 1e-10 * squares);
}

#[test]
fn the_straight_through_gradient_reaches_the_encoder() {
    let _rng = torch_rng_lock();
    tch::manual_seed(3);
    // EMA codebook and β = 0: no quantizer loss, so the encoder's gradient can only come
    // through the straight-through estimator.
    let (vs, m) = model(&quantizer(CodebookUpdate::ema(), 0.0));
    let x = images(4);
    let encoder_grads = || -> Vec<Tensor> {
        let mut vars: Vec<(String, Tensor)> = vs
            .variables()
            .into_iter()
            .filter(|(n, _)| n.starts_with("encoder."))
            .collect();
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        vars.into_iter().map(|(_, t)| t.grad().copy()).collect()
    };
    let zero = || {
        for t in vs.trainable_variables() {
            let mut g = t.grad();
            if g.defined() {
                let _ = g.zero_();
            }
        }
    };
    let out = m.forward_t(&x, false).unwrap();
    assert_eq!(out.quantizer.loss().double_value(&[]), 0.0);
    out.loss().backward();
    let through_model = encoder_grads();
    assert!(through_model
        .iter()
        .all(|g| g.abs().sum(Kind::Double).double_value(&[]) > 0.0));

    // Independently: the gradient at the decoder's input z_q, pushed back through z_e.
    zero();
    let z_q = m
        .quantizer
        .lookup(&out.quantizer.indices)
        .unwrap()
        .detach()
        .set_requires_grad(true);
    let x_hat = m.decoder.decode(&z_q).unwrap().view([4, 64]);
    ((&x_hat - &x).square().sum(Kind::Double) / 4.0).backward();
    let upstream = z_q.grad().copy();
    zero();
    (m.encoder.encode(&x).unwrap() * upstream)
        .sum(Kind::Double)
        .backward();
    for (a, b) in through_model.iter().zip(encoder_grads()) {
        assert!(a.allclose(&b, 1e-9, 1e-12, false), "{a} vs {b}");
    }
}

#[test]
fn decoding_the_codes_gives_the_reconstruction() {
    let _rng = torch_rng_lock();
    tch::manual_seed(4);
    let (_vs, m) = model(&quantizer(CodebookUpdate::Loss, 0.25));
    let x = images(9);
    let codes = m.encode_codes(&x).unwrap();
    let out = m.forward_t(&x, false).unwrap();
    assert!(codes.equal(&out.quantizer.indices));
    let decoded = m.decode_codes(&codes).unwrap().view([9, 64]);
    assert!(decoded.allclose(&m.reconstruct(&x).unwrap(), 1e-10, 1e-12, false));
    // Re-encoding is not required to give the same codes, but decoding is deterministic.
    assert!(decoded.equal(&m.decode_codes(&codes).unwrap().view([9, 64])));

    // A split in batches: the same codes and sums as in one pass, whatever the batch size.
    let sigma = 0.2;
    let whole = m.encode_data(&x, 100, Some(sigma)).unwrap();
    let batched = m.encode_data(&x, 4, Some(sigma)).unwrap();
    assert!(whole.codes.equal(&codes) && batched.codes.equal(&codes));
    assert!(whole.usage.equal(&batched.usage));
    assert_eq!(whole.usage.sum(Kind::Int64).int64_value(&[]), 9 * 4);
    let squares = out.squared_error.double_value(&[]);
    assert!((batched.squared_error - squares).abs() < 1e-10 * squares);
    let log_prob = discretized_gaussian_log_prob(&out.reconstruction, sigma, &x)
        .unwrap()
        .sum(Kind::Double)
        .double_value(&[]);
    let got = batched.log_prob.unwrap();
    assert!(
        (got - log_prob).abs() < 1e-9 * log_prob.abs(),
        "{got} vs {log_prob}"
    );
    assert!(m.encode_data(&x, 0, None).is_err());
    assert!(m.encode_data(&x, 4, None).unwrap().log_prob.is_none());
}
