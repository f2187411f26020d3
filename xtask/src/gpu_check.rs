//! `cargo xtask gpu-check`: a CUDA smoke check for a GPU machine with no Rust toolchain and no
//! network, in two halves.
//!
//! `--prepare OUT_DIR` (here, on the build machine): the test executables with CUDA cases (test
//! targets whose sources name `Device::Cuda` or `Cuda::`; without any, genae-tensor's unit tests)
//! and, built last, the release `genae` with genae-lab's `nccl` feature (it replaces
//! `target/release/genae`; when that build fails, a WARNING and `genae` without NCCL, whose NCCL
//! check then fails), stripped, plus Fashion-MNIST, the configs `fashion-mnist-vae` and `*vqvae*`,
//! `reference/pytorch_vae.py` and `gpu-check.sh` (from the template `gpu-check.sh.in`); fails if the
//! bundle is 64 MiB or more (what a device call can carry, the working tree included). On the GPU
//! machine, `bash OUT_DIR/gpu-check.sh [--dry-run]` (with python3's torch 2.11.0): without CUDA it
//! says "no CUDA here: dry run", lists the checks and exits 0; with CUDA it runs, within 450 s, the
//! CUDA tests, `genae train fashion-mnist-vae` (2 epochs, `L_5000`) and the PyTorch script on the
//! same recipe (`--device cuda`), one VQ-VAE epoch, and one rank of the NCCL path (which must print
//! `data-parallel: 1 ranks (nccl backend)`), then prints a Markdown table (also `gpu-check.md` in
//! `$GPU_CHECK_OUT`, else `$OUT`, else `./gpu-check-results`, with the log and summaries). For the
//! device tool: `cargo xtask gpu-check --prepare target/gpu-check`, then run `bash
//! target/gpu-check/gpu-check.sh` there with `target/gpu-check` carried.
//!
//! Without `--prepare` it prepares a temporary bundle (or takes `--bin-dir DIR`) and runs the
//! script on this machine, results in `runs/gpu-check-<UTC>/`.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{bail, Context, Result};

use crate::{dataset, process, setup};

/// Most bytes a bundle may have.
const LIMIT: u64 = 64 << 20;
/// The generated script's file name inside a bundle.
const SCRIPT: &str = "gpu-check.sh";
/// The configs folder, relative to the workspace root.
const CONFIGS: &str = "crates/genae-lab/configs";
/// The PyTorch reference script, relative to the workspace root.
const REFERENCE: &str = "crates/genae-lab/reference/pytorch_vae.py";
/// genae-lab's feature that gives `genae` NCCL.
const NCCL_FEATURE: &str = "nccl";
/// What marks a test source as holding CUDA cases.
const CUDA_MARKS: [&str; 2] = ["Device::Cuda", "Cuda::"];

/// `cargo xtask gpu-check` arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only build the bundle into OUT_DIR (on the build machine), to run
    /// `bash OUT_DIR/gpu-check.sh` on the GPU machine.
    #[arg(long, value_name = "OUT_DIR", conflicts_with_all = ["bin_dir", "dry_run"])]
    prepare: Option<PathBuf>,
    /// Run the script of a bundle prepared earlier instead of preparing a fresh one.
    #[arg(long, value_name = "DIR")]
    bin_dir: Option<PathBuf>,
    /// List the checks without running any, even where CUDA is present.
    #[arg(long)]
    dry_run: bool,
}

/// A test executable to bundle: `cargo test -p <package> --test <name>` (or `--lib`).
#[derive(Clone, Debug, PartialEq)]
struct TestTarget {
    package: String,
    name: String,
    lib: bool,
}

/// Prepares (or takes) a bundle and runs its script here unless only `--prepare` is asked.
pub fn run(args: &Args) -> Result<ExitCode> {
    if let Some(out) = &args.prepare {
        prepare(out)?;
        return Ok(ExitCode::SUCCESS);
    }
    let (dir, temporary) = match &args.bin_dir {
        Some(dir) => (dir.clone(), false),
        None => {
            let dir = std::env::temp_dir().join(format!("genae-gpu-check-{}", std::process::id()));
            prepare(&dir)?;
            (dir, true)
        }
    };
    let mut cmd = Command::new("bash");
    cmd.arg(dir.join(SCRIPT));
    if args.dry_run {
        cmd.arg("--dry-run");
    }
    if std::env::var_os("GPU_CHECK_OUT").is_none() {
        let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
        cmd.env(
            "GPU_CHECK_OUT",
            crate::root().join(format!("runs/gpu-check-{stamp}")),
        );
    }
    let status = process::status(&mut cmd);
    if temporary {
        let _ = fs::remove_dir_all(&dir);
    }
    Ok(ExitCode::from(process::exit_code(status?)))
}

/// Builds the bundle into `out` (emptied first if it holds an earlier bundle).
fn prepare(out: &Path) -> Result<()> {
    if out.exists() && fs::read_dir(out)?.next().is_some() && !out.join(SCRIPT).is_file() {
        bail!(
            "gpu-check: {} is neither empty nor a bundle; not touching it",
            out.display()
        );
    }
    setup::run()?;
    let mut cmd = process::cargo();
    cmd.args(["metadata", "--no-deps", "--format-version", "1"]);
    let meta: serde_json::Value = serde_json::from_str(&process::capture(&mut cmd)?)?;
    let mut built = Vec::new();
    for target in cuda_test_targets(&meta) {
        built.push((
            format!("{}-{}", target.package, target.name),
            build_test(&target)?,
        ));
    }
    // Last: a genae-lab test build would replace target/release/genae with one without NCCL.
    let nccl = build_genae()?;
    // Everything is built: only now is an earlier bundle replaced.
    if out.exists() {
        fs::remove_dir_all(out).with_context(|| format!("cannot empty {}", out.display()))?;
    }
    let root = crate::root();
    strip_copy(&crate::genae_binary(), &out.join("bin/genae"))?;
    let mut tests = Vec::new();
    for (file, exe) in built {
        strip_copy(&exe, &out.join("tests").join(&file))?;
        tests.push(file);
    }
    copy(&root.join(REFERENCE), &out.join("pytorch_vae.py"))?;
    for entry in fs::read_dir(root.join(CONFIGS))? {
        let path = entry?.path();
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        if name == "fashion-mnist-vae.toml" || (name.contains("vqvae") && name.ends_with(".toml")) {
            copy(&path, &out.join("configs").join(&*name))?;
        }
    }
    match dataset::find() {
        Some(found) => {
            for entry in fs::read_dir(&found.dir)? {
                let path = entry?.path();
                let name = path.file_name().unwrap_or_default().to_string_lossy();
                if name.starts_with("train-") || name.starts_with("t10k-") {
                    copy(&path, &out.join("data/fashion-mnist").join(&*name))?;
                }
            }
        }
        None => println!("note: no Fashion-MNIST here; the script will look on the GPU machine"),
    }
    let made = made_stamp();
    let script_path = out.join(SCRIPT);
    let made = format!("{made}; NCCL: {}", if nccl { "yes" } else { "no" });
    fs::write(&script_path, script(&tests, &made))?;
    fs::set_permissions(&script_path, fs::Permissions::from_mode(0o755))?;

    let size = files_under(out)
        .iter()
        .filter_map(|f| f.metadata().ok())
        .map(|m| m.len())
        .sum();
    println!(
        "gpu-check bundle: {} ({}, {} test executable(s): {})",
        out.display(),
        mib(size),
        tests.len(),
        tests.join(", ")
    );
    check_size(size)?;
    println!(
        "on the GPU machine: bash {}/{SCRIPT} [--dry-run]",
        out.display()
    );
    Ok(())
}

/// Builds the release `genae` with NCCL, else (when that fails) without, with a WARNING;
/// whether it has NCCL.
fn build_genae() -> Result<bool> {
    ensure_cccl_headers();
    let build = |features: &[&str]| {
        let mut cmd = process::cargo();
        cmd.args(["build", "--release", "-p", "genae-lab", "--bin", "genae"]);
        cmd.args(features);
        process::run(&mut cmd)
    };
    match build(&["--features", NCCL_FEATURE]) {
        Ok(()) => return Ok(true),
        Err(err) => {
            println!("WARNING: genae with NCCL did not build ({err:#}); building it without")
        }
    }
    build(&[]).context("gpu-check: building the genae binary failed")?;
    println!("WARNING: this bundle's genae has no NCCL: its NCCL check will fail");
    Ok(false)
}

/// The `nccl` feature compiles against the CUDA headers of the pip wheels; CCCL's (`nv/target`)
/// come in a small wheel torch does not pull in: pip-installs it into `.genae/venv` when that
/// venv lacks it (a WARNING when that fails; the NCCL build then fails with a clear message).
fn ensure_cccl_headers() {
    let layout = crate::libtorch::Layout::new();
    let python = layout.venv_python();
    let Ok(torch) = std::fs::canonicalize(layout.root.join(".genae/libtorch")) else {
        return;
    };
    let Some(site) = torch.parent() else { return };
    if site.join("nvidia/cu13/include/nv/target").is_file() || !python.is_file() {
        return;
    }
    println!("gpu-check: installing nvidia-cuda-cccl 13.0 (CUDA's CCCL headers, for NCCL)");
    let mut cmd = std::process::Command::new(&python);
    cmd.args(["-m", "pip", "install", "-q", "nvidia-cuda-cccl==13.0.*"]);
    if let Err(err) = process::run(&mut cmd) {
        println!("WARNING: pip could not install nvidia-cuda-cccl ({err:#})");
    }
}

/// The test targets whose sources hold CUDA cases; genae-tensor's unit tests if none does.
fn cuda_test_targets(meta: &serde_json::Value) -> Vec<TestTarget> {
    let mut found = Vec::new();
    for package in meta["packages"].as_array().into_iter().flatten() {
        for target in package["targets"].as_array().into_iter().flatten() {
            let is_test = target["kind"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|k| k == "test");
            let src = Path::new(target["src_path"].as_str().unwrap_or_default());
            if is_test && sources_of(src).iter().any(|f| mentions_cuda(f)) {
                found.push(TestTarget {
                    package: package["name"].as_str().unwrap_or_default().to_owned(),
                    name: target["name"].as_str().unwrap_or_default().to_owned(),
                    lib: false,
                });
            }
        }
    }
    if found.is_empty() {
        found.push(TestTarget {
            package: "genae-tensor".to_owned(),
            name: "genae_tensor".to_owned(),
            lib: true,
        });
    }
    found
}

/// The text of a test target's sources: its file, or every `.rs` file in its folder when the
/// target is a `main.rs` (a test split into modules).
fn sources_of(src: &Path) -> Vec<String> {
    let files = match src.parent() {
        Some(dir) if src.ends_with("main.rs") => files_under(dir),
        _ => vec![src.to_path_buf()],
    };
    let rust = files
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "rs"));
    rust.filter_map(|f| fs::read_to_string(f).ok()).collect()
}

/// Every file under `dir`, in sub-folders too (unreadable folders skipped).
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let (mut files, mut stack) = (Vec::new(), vec![dir.to_path_buf()]);
    while let Some(dir) = stack.pop() {
        for path in fs::read_dir(&dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
        {
            if path.is_dir() {
                stack.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files
}

/// Whether a source names CUDA the way a CUDA test does (not a `"cuda:99"` string in a fuzz case).
fn mentions_cuda(text: &str) -> bool {
    CUDA_MARKS.iter().any(|mark| text.contains(mark))
}

/// Builds one test executable in release mode and returns its path.
fn build_test(target: &TestTarget) -> Result<PathBuf> {
    let mut cmd = process::cargo();
    cmd.args([
        "test",
        "--release",
        "--no-run",
        "--message-format=json",
        "-p",
        &target.package,
    ]);
    if target.lib {
        cmd.arg("--lib");
    } else {
        cmd.args(["--test", &target.name]);
    }
    let out = process::capture(&mut cmd)?;
    test_executable(&out, &target.name)
        .with_context(|| format!("cargo reported no test executable for {}", target.name))
}

/// The test executable of target `name` in cargo's `--message-format=json` output.
fn test_executable(json_lines: &str, name: &str) -> Option<PathBuf> {
    json_lines
        .lines()
        .rev()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["profile"]["test"] == true)
        .filter(|m| m["target"]["name"] == name)
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
}

/// Copies `from` to `to` without debug information and symbols (`strip`, else
/// `objcopy --strip-debug`, else a plain copy), executable.
fn strip_copy(from: &Path, to: &Path) -> Result<()> {
    fs::create_dir_all(to.parent().unwrap_or(to))?;
    let stripped = Command::new("strip").arg("-o").arg(to).arg(from).status();
    if !stripped.is_ok_and(|s| s.success()) {
        let objcopy = Command::new("objcopy")
            .arg("--strip-debug")
            .arg(from)
            .arg(to)
            .status();
        if !objcopy.is_ok_and(|s| s.success()) {
            println!(
                "note: neither strip nor objcopy worked; {} copied as it is",
                from.display()
            );
            copy(from, to)?;
        }
    }
    fs::set_permissions(to, fs::Permissions::from_mode(0o755))?;
    Ok(())
}

/// `fs::copy` that creates the folder and names both files in its error.
fn copy(from: &Path, to: &Path) -> Result<()> {
    fs::create_dir_all(to.parent().unwrap_or(to))?;
    fs::copy(from, to)
        .with_context(|| format!("cannot copy {} to {}", from.display(), to.display()))?;
    Ok(())
}

/// `12.3 MiB`.
fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1u64 << 20) as f64)
}

/// An error when a bundle of `bytes` is over [`LIMIT`].
fn check_size(bytes: u64) -> Result<()> {
    if bytes >= LIMIT {
        bail!(
            "gpu-check: the bundle is {}, not below the {} a device call can carry (with the \
             working tree): bundle fewer test executables",
            mib(bytes),
            mib(LIMIT)
        );
    }
    Ok(())
}

/// "on `<UTC date>` from commit `<hash>`" for the script's header.
fn made_stamp() -> String {
    let commit = Command::new("git")
        .current_dir(crate::root())
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "unknown".to_owned());
    format!(
        "on {} from commit {commit}",
        chrono::Utc::now().format("%Y-%m-%d %H:%M UTC")
    )
}

/// The bundle's script, naming the bundled test executables (files in `tests/`).
fn script(tests: &[String], made: &str) -> String {
    TEMPLATE
        .replace("@TESTS@", &tests.join(" "))
        .replace("@MADE@", made)
}

/// `gpu-check.sh` with `@TESTS@` and `@MADE@` to fill in.
const TEMPLATE: &str = include_str!("gpu-check.sh.in");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuda_marks_find_cuda_tests_not_device_strings() {
        assert!(mentions_cuda("let gpu = x.to_device(Device::Cuda(0));"));
        assert!(mentions_cuda("if !tch::Cuda::is_available() {"));
        assert!(!mentions_cuda(r#"    "\"cuda:99\"","#));
    }

    #[test]
    fn the_test_executable_is_read_from_cargos_json() {
        let out = concat!(
            r#"{"reason":"compiler-artifact","target":{"name":"zoo","kind":["lib"]},"profile":{"test":false},"executable":null}"#,
            "\n",
            r#"{"reason":"compiler-artifact","target":{"name":"zoo","kind":["test"]},"profile":{"test":true},"executable":"/t/release/deps/zoo-1"}"#,
            "\n",
            r#"{"reason":"build-finished","success":true}"#,
        );
        assert_eq!(
            test_executable(out, "zoo"),
            Some(PathBuf::from("/t/release/deps/zoo-1"))
        );
        assert_eq!(test_executable(out, "other"), None);
    }

    #[test]
    fn bundles_over_the_limit_fail() {
        assert!(check_size(LIMIT - 1).is_ok());
        let err = check_size(LIMIT + (5 << 20)).unwrap_err().to_string();
        assert!(err.contains("69.0 MiB"), "{err}");
    }

    #[test]
    fn the_script_is_filled_in_and_valid_bash() {
        let text = script(
            &["genae-zoo-zoo".to_owned()],
            "on 2026-12-04 from commit abc",
        );
        assert!(text.contains("TESTS=(genae-zoo-zoo)"));
        assert!(!text.contains("@TESTS@") && !text.contains("@MADE@"));
        let dir = std::env::temp_dir().join(format!("gpu-check-test-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join(SCRIPT);
        fs::write(&path, &text).unwrap();
        let syntax = Command::new("bash").arg("-n").arg(&path).status().unwrap();
        fs::remove_dir_all(&dir).unwrap();
        assert!(syntax.success());
    }
}
