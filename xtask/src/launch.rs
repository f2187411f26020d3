//! `cargo xtask launch --nproc N CONFIG [--set KEY=VALUE]... [--timeout-s S]`: data-parallel
//! training on one machine without Python, the contract of
//! `torchrun --nproc_per_node=N --no-python target/release/genae train CONFIG`.
//!
//! Setup and the release build as `experiment` does them, the config checked once with
//! `genae check`, then N processes `genae train CONFIG --set ...` from the workspace root, rank
//! `r` with `WORLD_SIZE=N`, `RANK=r`, `LOCAL_RANK=r`, `LOCAL_WORLD_SIZE=N`,
//! `MASTER_ADDR=127.0.0.1`, `MASTER_PORT` (a free port), `OMP_NUM_THREADS=1` when N > 1 and you
//! have not set it (as torchrun does), and `GENAE_DIST_TIMEOUT_S` with `--timeout-s`. Every
//! line a rank prints comes out prefixed `[rank r] ` (its stdout on stdout, its stderr on
//! stderr).
//!
//! When a rank fails, the others get the timeout (default 60 s) to stop on their own (their
//! collectives fail too), then the survivors are killed and the launcher exits non-zero,
//! naming the first rank that failed. Children are killed when the launcher returns or
//! panics, and are started through `setpriv --pdeathsig KILL` where `setpriv` is installed, so
//! that killing the launcher takes them along; Ctrl-C reaches them through the terminal's
//! process group.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, ExitCode, ExitStatus, Stdio};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::{experiment, process, setup};

/// What the survivors get to stop on their own after a rank failed, without `--timeout-s`.
const DEFAULT_GRACE_S: u64 = 60;
/// How often the launcher looks at its children.
const POLL: Duration = Duration::from_millis(100);
/// `setpriv`, which starts each child with a parent-death signal (no `unsafe` needed here).
const SETPRIV: &str = "/usr/bin/setpriv";

/// `cargo xtask launch` arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Processes (ranks) to start on this machine.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1024))]
    nproc: u32,
    /// A config file path, or the name of one in crates/genae-lab/configs (without .toml).
    config: String,
    /// Override a config value (repeatable), passed to every rank as `--set KEY=VALUE`.
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = crate::parse_key_value)]
    set: Vec<String>,
    /// Seconds for the ranks' collectives (`GENAE_DIST_TIMEOUT_S`), and what the other ranks
    /// get to stop after one failed before they are killed (default 60).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    timeout_s: Option<u64>,
}

/// Setup, build, check the config, then start the ranks and wait for them.
pub fn run(args: &Args) -> Result<ExitCode> {
    let config = experiment::resolve(&args.config)?;
    setup::run()?;
    let mut build = process::cargo();
    build.args(["build", "--release", "-p", "genae-lab", "--bin", "genae"]);
    process::run(&mut build).context("launch: building the genae binary failed")?;
    let genae = crate::genae_binary();
    let mut check = Command::new(&genae);
    check.current_dir(crate::root()).arg("check").arg(&config);
    for kv in &args.set {
        check.arg("--set").arg(kv);
    }
    process::capture(&mut check).context("launch: the config does not pass `genae check`")?;

    let port = free_port().context("launch: no free TCP port on 127.0.0.1")?;
    let user_omp = std::env::var_os("OMP_NUM_THREADS").is_some();
    if args.nproc > 1 && !user_omp {
        println!(
            "launch: OMP_NUM_THREADS=1 for every rank (as torchrun sets it); set it to override"
        );
    }
    let setpriv = Path::new(SETPRIV).is_file();
    let mut ranks = Ranks::default();
    for rank in 0..args.nproc {
        let mut cmd = if setpriv {
            let mut cmd = Command::new(SETPRIV);
            cmd.args(["--pdeathsig", "KILL", "--"]).arg(&genae);
            cmd
        } else {
            Command::new(&genae)
        };
        cmd.current_dir(crate::root()).arg("train").arg(&config);
        for kv in &args.set {
            cmd.arg("--set").arg(kv);
        }
        cmd.envs(rank_env(rank, args.nproc, port, args.timeout_s, user_omp));
        if rank == 0 {
            println!("$ {}", process::display(&cmd));
            println!(
                "launch: {} rank(s); the others differ in RANK and LOCAL_RANK",
                args.nproc
            );
        }
        ranks.spawn(rank, cmd)?;
    }
    let grace = Duration::from_secs(args.timeout_s.unwrap_or(DEFAULT_GRACE_S));
    let first_failure = ranks.wait(grace);
    match first_failure {
        None => {
            println!("launch: all {} rank(s) exited with status 0", args.nproc);
            Ok(ExitCode::SUCCESS)
        }
        Some((rank, status)) => {
            eprintln!(
                "xtask: launch failed: rank {rank} failed first ({})",
                process::describe(status)
            );
            Ok(ExitCode::from(process::exit_code(status)))
        }
    }
}

/// The environment of rank `rank` of `world`: torchrun's variables, `OMP_NUM_THREADS=1` for
/// several ranks unless the user set it, and `GENAE_DIST_TIMEOUT_S` when a timeout is given.
pub fn rank_env(
    rank: u32,
    world: u32,
    port: u16,
    timeout_s: Option<u64>,
    user_set_omp: bool,
) -> Vec<(&'static str, String)> {
    let mut env = vec![
        ("WORLD_SIZE", world.to_string()),
        ("RANK", rank.to_string()),
        ("LOCAL_RANK", rank.to_string()),
        ("LOCAL_WORLD_SIZE", world.to_string()),
        ("MASTER_ADDR", Ipv4Addr::LOCALHOST.to_string()),
        ("MASTER_PORT", port.to_string()),
    ];
    if world > 1 && !user_set_omp {
        env.push(("OMP_NUM_THREADS", "1".to_owned()));
    }
    if let Some(s) = timeout_s {
        env.push(("GENAE_DIST_TIMEOUT_S", s.to_string()));
    }
    env
}

/// A TCP port on 127.0.0.1 that was free a moment ago: bind port 0, read the port, let go.
pub fn free_port() -> std::io::Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(listener.local_addr()?.port())
}

/// The running ranks and their output relays; those still running are killed on drop.
#[derive(Default)]
struct Ranks {
    /// Rank, child (`None` once it has been reaped).
    children: Vec<(u32, Option<Child>)>,
    /// The threads relaying the children's pipes.
    relays: Vec<JoinHandle<()>>,
}

impl Ranks {
    /// Starts `cmd` as rank `rank`, its stdout and stderr relayed with a `[rank r] ` prefix.
    fn spawn(&mut self, rank: u32, mut cmd: Command) -> Result<()> {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("launch: could not start rank {rank}"))?;
        if let Some(out) = child.stdout.take() {
            self.relays.push(relay(rank, out, false));
        }
        if let Some(err) = child.stderr.take() {
            self.relays.push(relay(rank, err, true));
        }
        self.children.push((rank, Some(child)));
        Ok(())
    }

    /// Waits for every rank; after the first failure the others get `grace` to exit, then
    /// are killed. Returns the first failed rank and its status (`None`: all succeeded).
    fn wait(&mut self, grace: Duration) -> Option<(u32, ExitStatus)> {
        let mut first: Option<(u32, ExitStatus, Instant)> = None;
        loop {
            let mut running = 0;
            for (rank, slot) in &mut self.children {
                let Some(child) = slot else { continue };
                match child.try_wait() {
                    Ok(Some(status)) => {
                        *slot = None;
                        if !status.success() {
                            eprintln!(
                                "launch: rank {rank} exited with {}",
                                process::describe(status)
                            );
                            first.get_or_insert((*rank, status, Instant::now()));
                        }
                    }
                    Ok(None) => running += 1,
                    Err(err) => {
                        eprintln!("launch: cannot wait for rank {rank}: {err}");
                        running += 1;
                    }
                }
            }
            if running == 0 {
                break;
            }
            if let Some((rank, _, at)) = first {
                if at.elapsed() >= grace {
                    eprintln!(
                        "launch: {running} rank(s) still running {} s after rank {rank} failed: \
                         killing them",
                        grace.as_secs()
                    );
                    self.kill_all();
                    break;
                }
            }
            thread::sleep(POLL);
        }
        for relay in self.relays.drain(..) {
            let _ = relay.join();
        }
        first.map(|(rank, status, _)| (rank, status))
    }

    /// Kills (SIGKILL) and reaps every rank still running.
    fn kill_all(&mut self) {
        for (rank, slot) in &mut self.children {
            if let Some(mut child) = slot.take() {
                if let Ok(None) = child.try_wait() {
                    let _ = child.kill();
                    if let Ok(status) = child.wait() {
                        eprintln!("launch: rank {rank} killed ({})", process::describe(status));
                    }
                }
            }
        }
    }
}

impl Drop for Ranks {
    fn drop(&mut self) {
        self.kill_all();
    }
}

/// A thread copying `pipe` line by line to our stdout (or stderr), each line prefixed with
/// `[rank r] `; bytes that are not UTF-8 are replaced.
fn relay(rank: u32, pipe: impl Read + Send + 'static, to_stderr: bool) -> JoinHandle<()> {
    thread::spawn(move || {
        let mut reader = BufReader::new(pipe);
        let mut line = Vec::new();
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let text = String::from_utf8_lossy(&line);
                    let text = prefixed(rank, &text);
                    // One locked write per line, so lines of different ranks never interleave.
                    let _ = if to_stderr {
                        std::io::stderr().lock().write_all(text.as_bytes())
                    } else {
                        std::io::stdout().lock().write_all(text.as_bytes())
                    };
                }
            }
        }
    })
}

/// `[rank r] <line>` ending with exactly one newline.
fn prefixed(rank: u32, line: &str) -> String {
    let line = line.strip_suffix('\n').unwrap_or(line);
    let line = line.strip_suffix('\r').unwrap_or(line);
    format!("[rank {rank}] {line}\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get<'a>(env: &'a [(&str, String)], key: &str) -> Option<&'a str> {
        env.iter().find(|(k, _)| *k == key).map(|(_, v)| v.as_str())
    }

    #[test]
    fn rank_env_is_torchruns_contract() {
        let env = rank_env(2, 4, 29500, None, false);
        assert_eq!(get(&env, "WORLD_SIZE"), Some("4"));
        assert_eq!(get(&env, "RANK"), Some("2"));
        assert_eq!(get(&env, "LOCAL_RANK"), Some("2"));
        assert_eq!(get(&env, "LOCAL_WORLD_SIZE"), Some("4"));
        assert_eq!(get(&env, "MASTER_ADDR"), Some("127.0.0.1"));
        assert_eq!(get(&env, "MASTER_PORT"), Some("29500"));
        assert_eq!(get(&env, "OMP_NUM_THREADS"), Some("1"));
        assert_eq!(get(&env, "GENAE_DIST_TIMEOUT_S"), None);
    }

    #[test]
    fn omp_threads_only_for_several_ranks_the_user_did_not_configure() {
        assert_eq!(
            get(&rank_env(0, 1, 1, None, false), "OMP_NUM_THREADS"),
            None
        );
        assert_eq!(get(&rank_env(0, 2, 1, None, true), "OMP_NUM_THREADS"), None);
        let env = rank_env(1, 2, 1, Some(30), false);
        assert_eq!(get(&env, "GENAE_DIST_TIMEOUT_S"), Some("30"));
    }

    #[test]
    fn free_port_is_nonzero_and_bindable_again() {
        let port = free_port().unwrap();
        assert_ne!(port, 0);
        // Free again once we let go (another process could take it in between; not here).
        TcpListener::bind((Ipv4Addr::LOCALHOST, port)).unwrap();
    }

    #[test]
    fn lines_get_one_prefix_and_one_newline() {
        assert_eq!(prefixed(3, "epoch 1\n"), "[rank 3] epoch 1\n");
        assert_eq!(prefixed(0, "no newline"), "[rank 0] no newline\n");
        assert_eq!(prefixed(1, "crlf\r\n"), "[rank 1] crlf\n");
    }

    #[test]
    fn a_failed_rank_is_reported_first_and_the_others_are_killed_after_the_grace() {
        let mut ranks = Ranks::default();
        let mut sleeper = Command::new("sleep");
        sleeper.arg("30");
        ranks.spawn(0, sleeper).unwrap();
        let mut failing = Command::new("sh");
        failing.args(["-c", "echo bye; exit 3"]);
        ranks.spawn(1, failing).unwrap();
        let started = Instant::now();
        let (rank, status) = ranks.wait(Duration::from_millis(300)).unwrap();
        assert_eq!(rank, 1);
        assert_eq!(status.code(), Some(3));
        assert!(started.elapsed() < Duration::from_secs(10));
        assert!(ranks.children.iter().all(|(_, c)| c.is_none()));
    }

    #[test]
    fn ranks_that_all_succeed_report_nothing() {
        let mut ranks = Ranks::default();
        for rank in 0..3 {
            let mut ok = Command::new("true");
            ok.arg(rank.to_string());
            ranks.spawn(rank, ok).unwrap();
        }
        assert!(ranks.wait(Duration::from_secs(1)).is_none());
    }
}
