//! `cargo xtask package`: every library crate packaged as for crates.io, with verification
//! (each packaged crate builds on its own, its workspace dependencies taken from the other
//! packaged crates), so that a crate that reaches outside its folder fails here, not on
//! publication.

use anyhow::{Context, Result};

use crate::{process, setup};

/// The crates published (the binaries' test crate and xtask are not).
pub const LIBRARY_CRATES: &[&str] = &[
    "genae-build",
    "genae-data",
    "genae-tensor",
    "genae-zoo",
    "genae-estimators",
    "genae-samplers",
    "genae-lab",
];

/// Setup, then `cargo package` of every library crate with verification.
pub fn run() -> Result<()> {
    setup::run().context("`cargo xtask package`: setup failed")?;
    let mut cmd = process::cargo();
    cmd.args(["package", "--allow-dirty"]);
    for name in LIBRARY_CRATES {
        cmd.args(["--package", name]);
    }
    process::run(&mut cmd).context(
        "`cargo xtask package`: a library crate does not package or does not build on its own",
    )?;
    println!("packaged and verified: {}", LIBRARY_CRATES.join(", "));
    Ok(())
}
