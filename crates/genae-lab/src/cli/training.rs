//! `genae train` and `genae sweep`: run the trainer and say where the runs went.

use std::path::{Path, PathBuf};

use genae_lab::{resume_experiment, run_experiment, ValidConfig};

use crate::{chain_message, load_config};

/// `genae train CONFIG` or `genae train --resume RUN_DIR`; a data-parallel rank other than 0
/// only says that it is done (rank 0 writes and reports the run).
pub(crate) fn train(
    config: Option<PathBuf>,
    resume: Option<PathBuf>,
    overrides: &[String],
) -> anyhow::Result<()> {
    let summary = match (resume, config) {
        (Some(run_dir), _) => resume_experiment(&run_dir, overrides)?,
        (None, Some(config)) => run_experiment(&load_config(&config, overrides)?)?,
        (None, None) => anyhow::bail!("give a config or --resume RUN_DIR"),
    };
    if let Some(rank) = genae_lab::data_parallel_follower()? {
        println!("rank {rank}: training done (rank 0 evaluates and writes the run)");
        return Ok(());
    }
    let t = &summary.test;
    match (t.number("elbo"), t.number("kl")) {
        (Some(elbo), Some(kl)) => println!(
            "test ELBO {elbo:.3} nats (reconstruction {:.3}, KL {kl:.3}); {:.0} train examples/s",
            t.number("reconstruction").unwrap_or(f64::NAN),
            summary.train.examples_per_s
        ),
        _ => println!(
            "test {}; {:.0} train examples/s",
            t.brief(3),
            summary.train.examples_per_s
        ),
    }
    println!("run directory: {}", summary.run_dir.display());
    Ok(())
}

/// `genae sweep CONFIG --grid …`: every point in turn, or one (`--index`, Slurm's array
/// index); `--list` prints the points.
pub(crate) fn sweep(
    config: Option<PathBuf>,
    grid: &[String],
    index: Option<usize>,
    out: Option<&Path>,
    list: bool,
    overrides: &[String],
) -> anyhow::Result<()> {
    let Some(config) = config else {
        anyhow::bail!("give a config: `genae sweep CONFIG --grid 'key=[…]'`");
    };
    let grid = genae_lab::Grid::parse(grid)?;
    if list {
        for i in 0..grid.len() {
            let point = grid.overrides(i).unwrap_or_default();
            println!("{i}\t{}", point.join(" "));
        }
        println!("{} points", grid.len());
        return Ok(());
    }
    let load = |point: &[String]| -> Result<ValidConfig, genae_lab::LabError> {
        let mut all = overrides.to_vec();
        all.extend_from_slice(point);
        load_config(&config, &all).map_err(|e| {
            genae_lab::ConfigError::Invalid {
                field: "sweep point",
                reason: format!(
                    "{} {}: {}",
                    config.display(),
                    point.join(" "),
                    chain_message(&e)
                ),
            }
            .into()
        })
    };
    let index = genae_lab::array_index(index)?;
    let (summaries, dir) = genae_lab::run_sweep(&load, &grid, index, out)?;
    for s in &summaries {
        println!("run directory: {}", s.run_dir.display());
    }
    println!(
        "sweep folder: {} ({} run(s) trained now; `genae sweep summarize {}`)",
        dir.display(),
        summaries.len(),
        dir.display()
    );
    Ok(())
}
