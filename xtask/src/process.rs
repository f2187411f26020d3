//! Subprocesses: echo each command line (`$ cargo test --workspace`), let its output stream
//! through, and turn a failure into an error that names the command and its exit status.

use std::ffi::{OsStr, OsString};
use std::io::{BufRead, BufReader, ErrorKind, Write};
use std::process::{Command, ExitStatus, Stdio};

use anyhow::{bail, Context, Result};

/// A `cargo` command: the cargo running `cargo xtask` (`$CARGO`), else `cargo` from `PATH`.
pub fn cargo() -> Command {
    let program = std::env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
    let mut cmd = Command::new(program);
    cmd.current_dir(crate::root());
    cmd
}

/// Prints `$ <command line>` and runs `cmd` with inherited stdio; fails unless it exits with 0.
pub fn run(cmd: &mut Command) -> Result<()> {
    let status = status(cmd)?;
    if !status.success() {
        bail!("`{}` failed with {}", display(cmd), describe(status));
    }
    Ok(())
}

/// Prints `$ <command line>`, runs `cmd` with inherited stdio and returns its exit status
/// (an error only if it could not be started).
pub fn status(cmd: &mut Command) -> Result<ExitStatus> {
    echo(cmd);
    cmd.status().map_err(|e| spawn_error(cmd, e))
}

/// Prints `$ <command line>`, runs `cmd` with stdout captured (stderr still streams) and
/// returns its stdout; fails unless it exits with 0.
pub fn capture(cmd: &mut Command) -> Result<String> {
    echo(cmd);
    let out = cmd
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| spawn_error(cmd, e))?;
    if !out.status.success() {
        bail!("`{}` failed with {}", display(cmd), describe(out.status));
    }
    String::from_utf8(out.stdout).with_context(|| format!("`{}` printed non-UTF-8", display(cmd)))
}

/// Whether `err` (from [`run`], [`status`] or [`capture`]) means the program was not found.
pub fn is_not_found(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == ErrorKind::NotFound)
    })
}

/// "exit status 3" or "signal 9 (killed)": how a process ended, for messages.
pub fn describe(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(sig)) => format!("signal {sig}"),
        (None, None) => format!("{status}"),
    }
}

/// The exit code to forward for a child's `status`: its own code, or 128 + signal number
/// (as shells do); never 0 for a failed child.
pub fn exit_code(status: ExitStatus) -> u8 {
    use std::os::unix::process::ExitStatusExt;
    if status.success() {
        return 0;
    }
    let code = status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(1);
    u8::try_from(code).ok().filter(|&c| c != 0).unwrap_or(1)
}

/// Shell-like one-line rendering of `cmd` (explicit env vars, program, arguments), with paths
/// inside the repository shown relative to its root and `$CARGO` shown as `cargo`.
pub fn display(cmd: &Command) -> String {
    let mut parts = Vec::new();
    for (key, value) in cmd.get_envs() {
        if let Some(value) = value {
            parts.push(format!("{}={}", key.to_string_lossy(), quote(value)));
        }
    }
    let program = cmd.get_program();
    if std::env::var_os("CARGO").is_some_and(|c| c == program) {
        parts.push("cargo".to_owned());
    } else {
        parts.push(quote(program));
    }
    parts.extend(cmd.get_args().map(quote));
    parts.join(" ")
}

/// Prints the `$ ...` echo line for `cmd` (flushed, so it precedes the child's output).
fn echo(cmd: &Command) {
    println!("$ {}", display(cmd));
    let _ = std::io::stdout().flush();
}

/// An error for a command that could not be started.
fn spawn_error(cmd: &Command, err: std::io::Error) -> anyhow::Error {
    let what = if err.kind() == ErrorKind::NotFound {
        format!(
            "could not run `{}`: program `{}` not found",
            display(cmd),
            cmd.get_program().to_string_lossy()
        )
    } else {
        format!("could not run `{}`", display(cmd))
    };
    anyhow::Error::new(err).context(what)
}

/// One argument as a shell would need it: repository paths made relative, quoted if needed.
fn quote(arg: &OsStr) -> String {
    let arg = arg.to_string_lossy();
    let root = crate::root().to_string_lossy();
    let arg = match arg.strip_prefix(&*root) {
        Some(rest) if rest.starts_with('/') && rest.len() > 1 => rest[1..].to_owned(),
        _ => arg.into_owned(),
    };
    let plain = !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-./=:+,@%^".contains(c));
    if plain {
        arg
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

/// Runs `cmd` (echoed like [`run`]) with its stdout both shown and kept; stderr streams
/// through. Fails unless it exits with 0.
pub fn tee_stdout(cmd: &mut Command) -> Result<String> {
    println!("$ {}", display(cmd));
    let _ = std::io::stdout().flush();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("could not run `{}`", display(cmd)))?;
    let mut kept = String::new();
    if let Some(out) = child.stdout.take() {
        for line in BufReader::new(out).lines() {
            let line = line.with_context(|| format!("reading `{}`", display(cmd)))?;
            println!("{line}");
            kept.push_str(&line);
            kept.push('\n');
        }
    }
    let status = child.wait()?;
    if !status.success() {
        bail!("`{}` failed with {}", display(cmd), describe(status));
    }
    Ok(kept)
}
