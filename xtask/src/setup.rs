//! `cargo xtask setup`: libtorch 2.11.0 (see [`crate::libtorch`]) and Fashion-MNIST (see
//! [`crate::dataset`]), then a one-line summary.

use anyhow::Result;

use crate::dataset;
use crate::libtorch::{self, Layout, Libtorch, Source};

/// Runs the whole setup (fast when the stamp still holds) and returns the libtorch in use.
pub fn run() -> Result<Libtorch> {
    let layout = Layout::new();
    let found = libtorch::ensure(&layout)?;
    let data = dataset::setup(&layout);
    dataset::ensure_font();
    let from = match &found.source {
        Source::Venv => ".genae/venv".to_owned(),
        Source::Env(path) => format!("LIBTORCH={}", path.display()),
    };
    println!(
        "setup ok: libtorch {} at {} (from {from}, linked as .genae/libtorch); Fashion-MNIST: {data}",
        found.version,
        found.dir.display()
    );
    Ok(found)
}
