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
    "genae-dist",
    "genae-lab",
];

/// Setup, then `cargo package` of every library crate with verification.
pub fn run() -> Result<()> {
    setup::run().context("`cargo xtask package`: setup failed")?;
    remove_stale_local_sources()?;
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

/// Cargo verifies a multi-crate package against a temporary local registry, but extracts its
/// crates into `$CARGO_HOME/registry/src/<local registry>/<name>-<version>` and reuses that
/// folder on the next run when the version is unchanged: a second `cargo xtask package` on
/// the same machine would verify against the sources of the first. The extracted copies of
/// our own crates are removed first (only folders named after them, outside crates.io's).
fn remove_stale_local_sources() -> Result<()> {
    let home = std::env::var_os("CARGO_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".cargo")));
    let Some(src) = home.map(|h| h.join("registry").join("src")) else {
        return Ok(());
    };
    let Ok(registries) = std::fs::read_dir(&src) else {
        return Ok(());
    };
    for registry in registries.flatten() {
        if registry
            .file_name()
            .to_string_lossy()
            .starts_with("index.crates.io")
        {
            continue;
        }
        let Ok(entries) = std::fs::read_dir(registry.path()) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let ours = LIBRARY_CRATES
                .iter()
                .any(|c| name.strip_prefix(c).is_some_and(|v| v.starts_with('-')));
            if ours && entry.path().is_dir() {
                std::fs::remove_dir_all(entry.path()).with_context(|| {
                    format!(
                        "removing the stale packaged sources {}",
                        entry.path().display()
                    )
                })?;
            }
        }
    }
    Ok(())
}
