//! Load a trained run and draw from it, as a downstream program would:
//! `cargo run --release -p genae-lab --example sample_from_run -- runs/<run> [out.png]`.

use std::path::PathBuf;
use std::process::ExitCode;

use genae_lab::{SampleOptions, Sampler, TrainedRun};

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let Some(run_dir) = args.next().map(PathBuf::from) else {
        eprintln!("usage: sample_from_run RUN_DIR [OUT.png]");
        return ExitCode::from(2);
    };
    let out = args
        .next()
        .map_or_else(|| PathBuf::from("samples.png"), PathBuf::from);
    match sample(&run_dir, &out) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn sample(
    run_dir: &std::path::Path,
    out: &std::path::Path,
) -> Result<(), Box<dyn std::error::Error>> {
    let run = TrainedRun::open(run_dir)?;
    println!(
        "{} on {} (weights {})",
        run.kind(),
        run.dataset_name(),
        run.weights_file().display()
    );
    let samples = run.sample(&SampleOptions {
        n: 16,
        sampler: Sampler::Prior,
        seed: 0,
    })?;
    genae_tensor::save_image_grid(&samples.images, 4, out)?;
    println!("16 prior samples in {}", out.display());
    Ok(())
}
