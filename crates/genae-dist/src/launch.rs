//! [`LaunchEnv`]: who this process is in a data-parallel job, from the variables `torchrun`,
//! Slurm's `srun` or a Kubernetes `PyTorchJob` set.

use crate::{DistError, Result};

/// The port of `MASTER_PORT` when Slurm launches without one (PyTorch's default).
pub const DEFAULT_MASTER_PORT: u16 = 29500;

/// Who serves the TCP store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreRole {
    /// Rank 0 serves it, the others connect (plain `WORLD_SIZE`/`RANK` launches, Slurm).
    RankZeroServes,
    /// Every rank is a client of a store someone else serves (`torchrun`'s agent:
    /// `TORCHELASTIC_USE_AGENT_STORE=True`).
    AgentServes,
}

/// A process's place in a launched job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LaunchEnv {
    /// This process's rank over the whole job, from 0.
    pub rank: usize,
    /// The number of processes.
    pub world_size: usize,
    /// The rank on this machine (picks the GPU: `cuda:LOCAL_RANK`).
    pub local_rank: usize,
    /// The store's host (`MASTER_ADDR`).
    pub master_addr: String,
    /// The store's port (`MASTER_PORT`).
    pub master_port: u16,
    /// Who serves the store.
    pub store_role: StoreRole,
    /// `TORCHELASTIC_RESTART_COUNT`: keys are kept apart between torchrun's restarts.
    pub restart: u64,
    /// Which launcher's variables were read (`torchrun/env` or `slurm`), for messages.
    pub source: &'static str,
}

fn parse<T: std::str::FromStr>(var: &'static str, value: &str, what: &str) -> Result<T> {
    value.trim().parse().map_err(|_| DistError::Launch {
        var,
        reason: format!("{value:?} is not {what}"),
    })
}

impl LaunchEnv {
    /// The job this process belongs to, from the environment: `WORLD_SIZE` (with `RANK`,
    /// `LOCAL_RANK`, `MASTER_ADDR`, `MASTER_PORT`) as torchrun sets them, else Slurm's
    /// `SLURM_NTASKS`/`SLURM_PROCID`/`SLURM_LOCALID` (with `MASTER_ADDR`, and `MASTER_PORT`
    /// defaulting to 29500). `None` when neither is set; a malformed or missing variable is
    /// an error naming it. A world of one is returned too (see [`LaunchEnv::is_parallel`]).
    pub fn from_env() -> Result<Option<Self>> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`LaunchEnv::from_env`] over any source of variables.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Option<Self>> {
        let (world_size, rank, local_rank, source) = if let Some(w) = get("WORLD_SIZE") {
            let world_size: usize = parse("WORLD_SIZE", &w, "a number of processes")?;
            let rank = get("RANK").ok_or(DistError::Launch {
                var: "RANK",
                reason: "missing (WORLD_SIZE is set)".into(),
            })?;
            let rank: usize = parse("RANK", &rank, "a rank")?;
            let local_rank = match get("LOCAL_RANK") {
                Some(l) => parse("LOCAL_RANK", &l, "a rank")?,
                None => rank,
            };
            (world_size, rank, local_rank, "torchrun/env")
        } else if let (Some(n), Some(id)) = (get("SLURM_NTASKS"), get("SLURM_PROCID")) {
            let world_size: usize = parse("SLURM_NTASKS", &n, "a number of tasks")?;
            let rank: usize = parse("SLURM_PROCID", &id, "a rank")?;
            let local_rank = match get("SLURM_LOCALID") {
                Some(l) => parse("SLURM_LOCALID", &l, "a rank")?,
                None => 0,
            };
            (world_size, rank, local_rank, "slurm")
        } else {
            return Ok(None);
        };
        if world_size == 0 {
            return Err(DistError::Launch {
                var: if source == "slurm" {
                    "SLURM_NTASKS"
                } else {
                    "WORLD_SIZE"
                },
                reason: "is 0".into(),
            });
        }
        if rank >= world_size {
            return Err(DistError::Launch {
                var: if source == "slurm" {
                    "SLURM_PROCID"
                } else {
                    "RANK"
                },
                reason: format!("{rank} is not below the world size {world_size}"),
            });
        }
        let master_addr = match get("MASTER_ADDR") {
            Some(a) if !a.trim().is_empty() => a.trim().to_string(),
            _ if world_size == 1 => "127.0.0.1".to_string(),
            _ => {
                return Err(DistError::Launch {
                    var: "MASTER_ADDR",
                    reason: format!(
                        "missing: the host of rank 0 (or of torchrun's store) is needed for a \
                         world of {world_size} ({source} launch)"
                    ),
                })
            }
        };
        let master_port = match get("MASTER_PORT") {
            Some(p) => {
                let port: u16 = parse("MASTER_PORT", &p, "a TCP port (1–65535)")?;
                if port == 0 {
                    return Err(DistError::Launch {
                        var: "MASTER_PORT",
                        reason: "0 is not a port the ranks can meet on".into(),
                    });
                }
                port
            }
            None if source == "slurm" || world_size == 1 => DEFAULT_MASTER_PORT,
            None => {
                return Err(DistError::Launch {
                    var: "MASTER_PORT",
                    reason: "missing (WORLD_SIZE is set)".into(),
                })
            }
        };
        let agent = get("TORCHELASTIC_USE_AGENT_STORE")
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
        let restart = match get("TORCHELASTIC_RESTART_COUNT") {
            Some(r) => parse("TORCHELASTIC_RESTART_COUNT", &r, "a count")?,
            None => 0,
        };
        Ok(Some(Self {
            rank,
            world_size,
            local_rank,
            master_addr,
            master_port,
            store_role: if agent {
                StoreRole::AgentServes
            } else {
                StoreRole::RankZeroServes
            },
            restart,
            source,
        }))
    }

    /// More than one process.
    pub fn is_parallel(&self) -> bool {
        self.world_size > 1
    }

    /// Whether `MASTER_ADDR` is this machine's loopback (then Gloo listens on 127.0.0.1).
    pub fn is_loopback(&self) -> bool {
        matches!(self.master_addr.as_str(), "localhost" | "::1")
            || self.master_addr.starts_with("127.")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn torchrun_variables_are_read() {
        let e = LaunchEnv::from_lookup(env(&[
            ("WORLD_SIZE", "4"),
            ("RANK", "3"),
            ("LOCAL_RANK", "1"),
            ("MASTER_ADDR", "node7"),
            ("MASTER_PORT", "29400"),
            ("TORCHELASTIC_USE_AGENT_STORE", "True"),
            ("TORCHELASTIC_RESTART_COUNT", "2"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!((e.rank, e.world_size, e.local_rank), (3, 4, 1));
        assert_eq!((e.master_addr.as_str(), e.master_port), ("node7", 29400));
        assert_eq!((e.store_role, e.restart), (StoreRole::AgentServes, 2));
        assert!(e.is_parallel() && !e.is_loopback());
    }

    #[test]
    fn slurm_variables_are_read_with_the_default_port() {
        let e = LaunchEnv::from_lookup(env(&[
            ("SLURM_NTASKS", "8"),
            ("SLURM_PROCID", "5"),
            ("SLURM_LOCALID", "1"),
            ("MASTER_ADDR", "127.0.0.1"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!((e.rank, e.world_size, e.local_rank), (5, 8, 1));
        assert_eq!(e.master_port, DEFAULT_MASTER_PORT);
        assert_eq!(e.store_role, StoreRole::RankZeroServes);
        assert!(e.is_loopback());
        assert_eq!(e.source, "slurm");
    }

    #[test]
    fn nothing_set_is_no_launch() {
        assert_eq!(LaunchEnv::from_lookup(env(&[])).unwrap(), None);
    }

    #[test]
    fn bad_variables_are_named() {
        let cases: [(&[(&str, &str)], &str); 6] = [
            (&[("WORLD_SIZE", "two")], "WORLD_SIZE"),
            (&[("WORLD_SIZE", "2")], "RANK"),
            (&[("WORLD_SIZE", "2"), ("RANK", "2")], "RANK"),
            (&[("WORLD_SIZE", "2"), ("RANK", "0")], "MASTER_ADDR"),
            (
                &[
                    ("WORLD_SIZE", "2"),
                    ("RANK", "0"),
                    ("MASTER_ADDR", "h"),
                    ("MASTER_PORT", "70000"),
                ],
                "MASTER_PORT",
            ),
            (
                &[("SLURM_NTASKS", "0"), ("SLURM_PROCID", "0")],
                "SLURM_NTASKS",
            ),
        ];
        for (vars, named) in cases {
            let err = LaunchEnv::from_lookup(env(vars)).unwrap_err();
            assert!(
                matches!(&err, DistError::Launch { var, .. } if *var == named),
                "{vars:?}: {err}"
            );
        }
    }
}
