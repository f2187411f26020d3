//! `cargo xtask experiment [CONFIG] [--set key=value]...`: setup, build `genae`, and run
//! `genae train <config>` from the workspace root, forwarding its exit status.

use std::fs;
use std::path::PathBuf;
use std::process::{Command, ExitCode};

use anyhow::{bail, Context, Result};

use crate::{process, setup};

/// The folder of named configs, relative to the workspace root.
const CONFIGS: &str = "crates/genae-lab/configs";

/// Resolves the config, runs setup and the build, then `genae train`; returns its exit code.
pub fn run(config: &str, set: &[String]) -> Result<ExitCode> {
    let config = resolve(config)?;
    setup::run()?;
    let mut build = process::cargo();
    build.args(["build", "--release", "-p", "genae-lab", "--bin", "genae"]);
    process::run(&mut build).context("experiment: building the genae binary failed")?;

    let mut train = Command::new(crate::genae_binary());
    train.current_dir(crate::root()).arg("train").arg(&config);
    for kv in set {
        train.arg("--set").arg(kv);
    }
    let status = process::status(&mut train)?;
    if !status.success() {
        eprintln!(
            "xtask: `{}` failed with {}",
            process::display(&train),
            process::describe(status)
        );
    }
    Ok(ExitCode::from(process::exit_code(status)))
}

/// The config file for `name`: an existing file path (made absolute), else
/// `crates/genae-lab/configs/<name>.toml`; an error listing the named configs otherwise.
pub(crate) fn resolve(name: &str) -> Result<PathBuf> {
    let as_path = PathBuf::from(name);
    if as_path.is_file() {
        return std::path::absolute(&as_path)
            .with_context(|| format!("cannot resolve config path {name}"));
    }
    let dir = crate::root().join(CONFIGS);
    let stem = name.strip_suffix(".toml").unwrap_or(name);
    let candidate = dir.join(format!("{stem}.toml"));
    if candidate.is_file() {
        return Ok(candidate);
    }
    if !dir.is_dir() {
        bail!(
            "no config `{name}`: it is not a file, and the configs folder {CONFIGS} does not exist \
             (yet), so there are no named configs to pick from"
        );
    }
    let mut names: Vec<String> = fs::read_dir(&dir)
        .with_context(|| format!("cannot list {CONFIGS}"))?
        .flatten()
        .map(|entry| entry.path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "toml"))
        .filter_map(|p| Some(p.file_stem()?.to_string_lossy().into_owned()))
        .collect();
    names.sort();
    if names.is_empty() {
        bail!("no config `{name}`: it is not a file, and {CONFIGS} holds no .toml configs");
    }
    bail!(
        "no config `{name}`: it is not a file, and there is no {CONFIGS}/{stem}.toml; available \
         configs: {}",
        names.join(", ")
    )
}
