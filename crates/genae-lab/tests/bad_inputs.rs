//! The bad-input corpus (`tests/bad_inputs/cases.toml` at the workspace root, data files in
//! `tests/bad_inputs/files/`): every case runs the `genae` binary and must fail (or warn) as
//! the case says, naming the key or file, never panic, and leave the run directory it was given
//! unchanged (hashed before and after). All cases run; the failures are reported together.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;

use serde::Deserialize;
use sha2::{Digest, Sha256};

/// Longest a case may run.
const CASE_TIMEOUT: Duration = Duration::from_secs(300);

#[derive(Deserialize)]
struct Corpus {
    base: Base,
    case: Vec<Case>,
}

#[derive(Deserialize)]
struct Base {
    config: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    args: Vec<String>,
    #[serde(default)]
    expect: Vec<String>,
    #[serde(default)]
    absent: Vec<String>,
    #[serde(default)]
    once: Vec<String>,
    #[serde(default = "error")]
    status: String,
    config: Option<String>,
    #[serde(default)]
    damage: Vec<Damage>,
    #[serde(default)]
    env: BTreeMap<String, String>,
}

fn error() -> String {
    "error".into()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Damage {
    file: String,
    flip: Option<i64>,
    truncate: Option<u64>,
    #[serde(default)]
    remove: bool,
    write: Option<String>,
    #[serde(default)]
    from_aae: bool,
}

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/bad_inputs")
}

/// Runs `genae args` with `env`, killing it after [`CASE_TIMEOUT`]; exit code and output.
fn genae(args: &[String], env: &BTreeMap<String, String>) -> (Option<i32>, String, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_genae"));
    command
        .args(args)
        .env_remove("GENAE_DEVICE")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        if v.is_empty() {
            command.env_remove(k);
        } else {
            command.env(k, v);
        }
    }
    let mut child = command.spawn().expect("genae starts");
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > CASE_TIMEOUT {
            child.kill().unwrap();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The SHA-256 of every file under `dir` with its relative path (the lock file excluded: its
/// presence is not the run's content).
fn hash_dir(dir: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.file_name().is_some_and(|n| n != ".lock") {
                let digest = Sha256::digest(std::fs::read(&path).unwrap());
                let rel = path.strip_prefix(dir).unwrap().to_path_buf();
                out.insert(rel, format!("{digest:x}"));
            }
        }
    }
    out
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_dir(&path, &target);
        } else if path.file_name().is_some_and(|n| n != ".lock") {
            std::fs::copy(&path, &target).unwrap();
        }
    }
}

fn damage(run: &Path, aae: &Path, d: &Damage) {
    let path = run.join(&d.file);
    if d.from_aae {
        std::fs::copy(aae.join(&d.file), &path).unwrap();
    }
    if d.remove {
        std::fs::remove_file(&path).unwrap();
        return;
    }
    if let Some(text) = &d.write {
        std::fs::write(&path, text).unwrap();
    }
    let mut bytes = std::fs::read(&path).unwrap();
    if let Some(at) = d.flip {
        let i = if at < 0 {
            bytes.len() - at.unsigned_abs() as usize
        } else {
            at as usize
        };
        bytes[i] ^= 0xff;
    }
    if let Some(n) = d.truncate {
        bytes.truncate(n as usize);
    }
    std::fs::write(&path, bytes).unwrap();
}

/// Trains one fixture run from `config` (with `{dir}` → `root`) and returns its directory.
fn train_fixture(config: &str, root: &Path) -> PathBuf {
    std::fs::create_dir_all(root).unwrap();
    let file = root.join("config.toml");
    std::fs::write(&file, config.replace("{dir}", &root.display().to_string())).unwrap();
    let (code, _, err) = genae(
        &["train".into(), file.display().to_string()],
        &BTreeMap::new(),
    );
    assert_eq!(code, Some(0), "fixture run failed: {err}");
    let out = root.join("out");
    std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.is_dir())
        .expect("a run directory")
}

/// Checks one case; the problems found, if any.
fn run_case(case: &Case, base: &str, fixtures: &(PathBuf, PathBuf), root: &Path) -> Vec<String> {
    let dir = root.join(case.name.replace(|c: char| !c.is_ascii_alphanumeric(), "-"));
    std::fs::create_dir_all(&dir).unwrap();
    let files = corpus_dir().join("files").canonicalize().unwrap();
    let run = dir.join("run");
    let aae = dir.join("aae");
    let config = dir.join("config.toml");
    let fill = |s: &str| {
        s.replace("{dir}", &dir.display().to_string())
            .replace("{files}", &files.display().to_string())
            .replace("{run}", &run.display().to_string())
            .replace("{aae}", &aae.display().to_string())
            .replace("{config}", &config.display().to_string())
    };
    std::fs::write(&config, fill(case.config.as_deref().unwrap_or(base))).unwrap();
    let uses = |p: &str| case.args.iter().any(|a| a.contains(p));
    if uses("{run}") {
        copy_dir(&fixtures.0, &run);
        for d in &case.damage {
            damage(&run, &fixtures.1, d);
        }
    }
    if uses("{aae}") {
        copy_dir(&fixtures.1, &aae);
    }
    // The shared data files too: a command must not write into a folder it was pointed at.
    let before: Vec<_> = [&run, &aae, &files]
        .iter()
        .map(|d| d.is_dir().then(|| hash_dir(d)))
        .collect();

    let args: Vec<String> = case.args.iter().map(|a| fill(a)).collect();
    let (code, stdout, stderr) = genae(&args, &case.env);
    let mut problems = Vec::new();
    let output = format!("{stdout}{stderr}");
    match case.status.as_str() {
        "error" => {
            if code == Some(0) {
                problems.push("exited 0".to_string());
            }
        }
        "warning" => {
            if code != Some(0) {
                problems.push(format!("exited {code:?}"));
            }
        }
        other => problems.push(format!("unknown status `{other}`")),
    }
    if code == Some(101) || output.contains("panicked at") || code.is_none() {
        problems.push(format!("panicked or was killed (exit {code:?})"));
    }
    let searched = if case.status == "error" {
        &stderr
    } else {
        &output
    };
    for needle in &case.expect {
        if !searched.contains(&fill(needle)) {
            problems.push(format!("no `{needle}` in the output"));
        }
    }
    for needle in &case.absent {
        if output.contains(needle.as_str()) {
            problems.push(format!("`{needle}` in the output"));
        }
    }
    for needle in &case.once {
        let n = output.matches(needle.as_str()).count();
        if n != 1 {
            problems.push(format!("`{needle}` appears {n} times"));
        }
    }
    if case.status == "error" {
        for (d, hash) in [&run, &aae, &files].iter().zip(before) {
            if let Some(hash) = hash {
                if hash_dir(d) != hash {
                    problems.push(format!("{} was changed", d.display()));
                }
            }
        }
        let out = dir.join("out");
        if out.is_dir() && std::fs::read_dir(&out).unwrap().next().is_some() {
            problems.push("a failed start left a run directory behind".to_string());
        }
    }
    if !problems.is_empty() {
        problems.push(format!("exit {code:?}; output:\n{output}"));
    }
    problems
}

#[test]
fn every_bad_input_fails_clearly_and_changes_nothing() {
    let text = std::fs::read_to_string(corpus_dir().join("cases.toml")).unwrap();
    let corpus: Corpus = toml::from_str(&text).unwrap();
    assert!(corpus.case.len() >= 40, "{} cases", corpus.case.len());
    let root = tempfile::tempdir().unwrap();
    let fixtures = (
        train_fixture(&corpus.base.config, &root.path().join("fixture-vae")),
        train_fixture(
            &format!("output_dir = \"{{dir}}/out\"\n{}", common::TINY_AAE),
            &root.path().join("fixture-aae"),
        ),
    );
    let mut failures = Vec::new();
    for case in &corpus.case {
        let start = Instant::now();
        let problems = run_case(case, &corpus.base.config, &fixtures, root.path());
        eprintln!(
            "{:>6.1} s  {}  {}",
            start.elapsed().as_secs_f64(),
            if problems.is_empty() { "ok  " } else { "FAIL" },
            case.name
        );
        if !problems.is_empty() {
            failures.push(format!(
                "case `{}`:\n  {}",
                case.name,
                problems.join("\n  ")
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n\n{}",
        failures.len(),
        corpus.case.len(),
        failures.join("\n\n")
    );
}
