//! `cargo xtask doctor`: what libtorch, Python, the data and tch (through `genae doctor`) see.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result};

use crate::libtorch::{self, Layout, Libtorch, Source};
use crate::{dataset, process, setup};

/// What the Python side prints about torch (one line, so that its `$ ...` echo stays readable).
const PY_REPORT: &str = "import sys, torch; \
    print(\"python:\", sys.executable, sys.version.split()[0]); \
    print(\"torch version:\", torch.__version__); \
    print(\"CXX11 ABI:\", torch._C._GLIBCXX_USE_CXX11_ABI); \
    print(\"CUDA available:\", torch.cuda.is_available()); \
    print(\"CUDA devices:\", torch.cuda.device_count()); \
    print(\"threads:\", torch.get_num_threads())";

/// Runs the checks and prints the report; fails if the `genae` binary does not build or run.
pub fn run() -> Result<()> {
    let layout = Layout::new();
    println!("== setup check");
    let found = match libtorch::fast_check(&layout, &Source::wanted(&layout)) {
        Ok(found) => {
            println!("libtorch ok ({found})");
            found
        }
        Err(why) => {
            println!("setup check failed: {why}; running setup first");
            setup::run()?
        }
    };

    println!("\n== libtorch, Python side");
    python_report(&layout, &found);
    match std::env::var_os("LIBTORCH") {
        Some(v) => println!("LIBTORCH: {}", Path::new(&v).display()),
        None => println!("LIBTORCH: (not set)"),
    }
    match std::fs::read_link(&layout.link) {
        Ok(target) => println!(
            ".genae/libtorch -> {} (= {})",
            target.display(),
            found.dir.display()
        ),
        Err(_) => println!(".genae/libtorch: missing"),
    }
    match dataset::find() {
        Some(data) => println!("Fashion-MNIST: {} ({})", data.dir.display(), data.via),
        None => println!("Fashion-MNIST: not found"),
    }

    println!("\n== tch, Rust side");
    let mut build = process::cargo();
    build.args(["build", "--release", "-p", "genae-lab", "--bin", "genae"]);
    process::run(&mut build).context("doctor: building the genae binary failed")?;
    let mut genae = Command::new(crate::genae_binary());
    genae.current_dir(crate::root()).arg("doctor");
    process::run(&mut genae).context("doctor: `genae doctor` failed")?;
    Ok(())
}

/// Prints torch's own view through the matching Python, if there is one (not fatal).
fn python_report(layout: &Layout, found: &Libtorch) {
    println!("torch version (version file): {}", found.version);
    let Some(python) = found.python(layout) else {
        println!(
            "python: none for this libtorch (a plain libtorch has no Python package); CXX11 ABI: {}",
            found.abi
        );
        return;
    };
    let mut cmd = Command::new(&python);
    cmd.current_dir(crate::root())
        .args(["-W", "ignore", "-c", PY_REPORT]);
    if let Err(e) = process::run(&mut cmd) {
        println!("warning: the Python torch report failed: {e:#}");
    }
}
