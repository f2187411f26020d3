//! Times the gradient allreduce of data-parallel training: launch it like a training run,
//! e.g. `torchrun --nproc_per_node=2 --no-python target/release/examples/allreduce_time 688464`
//! (the number of float32 values; default: the Fashion-MNIST VAE's 688 464 parameters).
//! Rank 0 prints the mean milliseconds per allreduce (mean over ranks) over 200 calls.

use std::time::Instant;

use genae_dist::{LaunchEnv, World, WorldOptions};
use tch::{Device, Kind, Tensor};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let values: i64 = match std::env::args().nth(1) {
        Some(n) => n.parse()?,
        None => 688_464,
    };
    tch::set_num_threads(1);
    let env = LaunchEnv::from_env()?.ok_or("launch it with torchrun or WORLD_SIZE/RANK/...")?;
    let world = World::init(&env, &WorldOptions::default())?;
    let grads = [Tensor::ones([values], (Kind::Float, Device::Cpu))];
    for _ in 0..20 {
        world.allreduce_mean(&grads, "warm-up")?;
    }
    let calls = 200;
    let started = Instant::now();
    for _ in 0..calls {
        world.allreduce_mean(&grads, "timed")?;
    }
    let ms = started.elapsed().as_secs_f64() * 1e3 / f64::from(calls);
    if env.rank == 0 {
        println!(
            "{} ranks, {values} float32 values ({:.2} MB): {ms:.3} ms per allreduce (mean)",
            env.world_size,
            values as f64 * 4.0 / 1e6
        );
    }
    Ok(())
}
