//! # genae-build
//!
//! The build-script step every crate, test or binary that links libtorch through
//! [`tch`](https://crates.io/crates/tch) needs, so that what it builds starts on its own:
//!
//! - a **RUNPATH** to libtorch's library folder (otherwise every binary needs
//!   `LD_LIBRARY_PATH`), and
//! - `--no-as-needed -ltorch`, so the linker keeps `libtorch_cuda.so` (otherwise it drops it
//!   as unused and CUDA is silently unavailable).
//!
//! torch-sys tells the folder to the build scripts of the crates that depend on it
//! **directly**, as `DEP_TCH_LIBTORCH_LIB`; so a downstream crate lists `torch-sys` among its
//! dependencies (the same version tch uses) and this crate among its build-dependencies:
//!
//! ```toml
//! [dependencies]
//! tch = "=0.24.0"
//! torch-sys = "=0.24.0"
//! genae-zoo = "0.1"
//!
//! [build-dependencies]
//! genae-build = "0.1"
//! ```
//!
//! and its `build.rs` is one line, `fn main() { genae_build::link_libtorch(); }`:
//!
//! ```no_run
//! genae_build::link_libtorch();
//! ```
//!
//! libtorch itself comes from `LIBTORCH` (e.g. the `torch` folder of `pip install
//! torch==2.11.0`), as torch-sys expects.

/// The variable torch-sys sets for direct dependents' build scripts: libtorch's `lib/` folder.
pub const LIBTORCH_LIB_VAR: &str = "DEP_TCH_LIBTORCH_LIB";

/// The `cargo:` lines [`link_libtorch`] prints for libtorch's library folder `lib`.
pub fn link_directives(lib: &str) -> Vec<String> {
    vec![
        format!("cargo:rustc-link-arg=-Wl,-rpath={lib}"),
        "cargo:rustc-link-arg=-Wl,--no-as-needed".to_string(),
        "cargo:rustc-link-arg=-ltorch".to_string(),
    ]
}

/// Prints the link arguments (RUNPATH to libtorch, libtorch_cuda kept) for every target of
/// the calling package; call it from `build.rs`. Without `DEP_TCH_LIBTORCH_LIB` (torch-sys is
/// not a direct dependency) it prints a cargo warning saying so and what to add.
pub fn link_libtorch() {
    println!("cargo:rerun-if-env-changed={LIBTORCH_LIB_VAR}");
    match std::env::var(LIBTORCH_LIB_VAR) {
        Ok(lib) if !lib.is_empty() => {
            for line in link_directives(&lib) {
                println!("{line}");
            }
        }
        _ => println!(
            "cargo:warning={LIBTORCH_LIB_VAR} is not set: add torch-sys (the version tch uses) \
             to [dependencies]; binaries will need LD_LIBRARY_PATH and may lose CUDA."
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_directives_carry_the_folder_and_keep_libtorch() {
        let lines = link_directives("/opt/torch/lib");
        assert_eq!(lines[0], "cargo:rustc-link-arg=-Wl,-rpath=/opt/torch/lib");
        assert!(lines.iter().any(|l| l.ends_with("--no-as-needed")));
        assert!(lines.last().unwrap().ends_with("-ltorch"));
    }
}
