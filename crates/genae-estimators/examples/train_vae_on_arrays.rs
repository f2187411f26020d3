//! A downstream program: train a VAE on your own data held in an `ndarray`, with genae-zoo and
//! genae-estimators only (no genae-lab). Run with
//! `cargo run --release -p genae-estimators --example train_vae_on_arrays`.
//!
//! The data here are 16×16 binary images of a horizontal or vertical bar at a random place,
//! generated with a fixed seed; replace `my_data` with yours (an `Array2<f32>`, one flattened
//! image per row, values in [0, 1]).

use genae_estimators::{elbo, evaluate_log_likelihood, LogLikelihoodOptions};
use genae_tensor::{seed_everything, tensor_from_array, Adam};
use genae_zoo::{Vae, VaeConfig};
use ndarray::Array2;
use tch::{nn, Device, Kind};

const SIDE: usize = 16;

/// `n` flattened 16×16 images: a 2-pixel-wide bar, horizontal or vertical, at a seeded place.
fn my_data(n: usize, seed: u64) -> Array2<f32> {
    let mut state = seed;
    let mut next = move |m: u64| {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((state >> 33) % m) as usize
    };
    let mut images = Array2::<f32>::zeros((n, SIDE * SIDE));
    for mut row in images.rows_mut() {
        let (vertical, at) = (next(2) == 1, next(SIDE as u64 - 1));
        for i in 0..SIDE {
            for w in at..at + 2 {
                let (r, c) = if vertical { (i, w) } else { (w, i) };
                row[r * SIDE + c] = 1.0;
            }
        }
    }
    images
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    seed_everything(0);
    let train = tensor_from_array(&my_data(4000, 1))?;
    let test = tensor_from_array(&my_data(500, 2))?;
    let vs = nn::VarStore::new(Device::Cpu);
    let config = VaeConfig {
        input_dim: (SIDE * SIDE) as i64,
        hidden: vec![128],
        latent_dim: 4,
        ..Default::default()
    };
    let vae = Vae::new(&vs.root(), &config)?;
    let mut adam = Adam::new(&vs, 1e-3);
    for epoch in 1..=8 {
        let order = tch::Tensor::randperm(4000, (Kind::Int64, Device::Cpu));
        for b in 0..40 {
            let x = train.index_select(0, &order.narrow(0, b * 100, 100));
            let loss = -elbo(&vae, &x)?.elbo.mean(Kind::Float);
            adam.backward_step(&loss)?;
        }
        let test_elbo = tch::no_grad(|| elbo(&vae, &test))?.means().elbo;
        println!("epoch {epoch}: test ELBO {test_elbo:.3} nats");
    }
    let options = LogLikelihoodOptions {
        k: 500,
        chunk_size: 500,
        batch_size: 100,
    };
    let ll = evaluate_log_likelihood(&vae, &test, options)?;
    println!("test L_500 = {ll:.3} nats (≥ the ELBO: a tighter bound on log p(x))");
    Ok(())
}
