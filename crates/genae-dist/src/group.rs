//! [`ProcessGroup`]: c10d's Gloo or NCCL backend, with collectives over lists of tensors.

use std::time::Duration;

use tch::{Device, Kind, Tensor};

use crate::{ffi, millis, op_error, DistError, Result, Store};

/// A c10d process group: `world_size` processes, this one being `rank`. Collectives over a
/// list of tensors flatten them into one buffer per (dtype, device), so a step of a model
/// with many parameters costs one collective, not one per tensor.
pub struct ProcessGroup {
    raw: ffi::RawGroup,
    rank: usize,
    world_size: usize,
    timeout: Duration,
    backend: &'static str,
    /// Keeps the store alive as long as the group.
    _store: Store,
}

impl std::fmt::Debug for ProcessGroup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessGroup")
            .field("backend", &self.backend)
            .field("rank", &self.rank)
            .field("world_size", &self.world_size)
            .finish()
    }
}

/// Where Gloo's transport listens: a named network interface, the address of a host name, or
/// Gloo's default (the address of this machine's host name).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum GlooDevice {
    /// Gloo's default device.
    #[default]
    Default,
    /// The network interface with this name (`GLOO_SOCKET_IFNAME`).
    Interface(String),
    /// The address this host name resolves to (`127.0.0.1` for one machine).
    Hostname(String),
}

impl ProcessGroup {
    /// ProcessGroupGloo (CPU tensors) of `world_size` ranks meeting in `store`; every
    /// collective fails after `timeout`.
    pub fn gloo(
        store: &Store,
        rank: usize,
        world_size: usize,
        timeout: Duration,
        device: &GlooDevice,
    ) -> Result<Self> {
        let (interface, hostname) = match device {
            GlooDevice::Default => ("", ""),
            GlooDevice::Interface(name) => (name.as_str(), ""),
            GlooDevice::Hostname(name) => ("", name.as_str()),
        };
        let raw = ffi::RawGroup::gloo(
            &store.raw,
            rank as i32,
            world_size as i32,
            millis(timeout),
            interface,
            hostname,
        )
        .map_err(op_error(format!(
            "creating the Gloo process group (rank {rank} of {world_size}) through {}",
            store.description()
        )))?;
        Ok(Self {
            raw,
            rank,
            world_size,
            timeout,
            backend: "gloo",
            _store: store.clone(),
        })
    }

    /// ProcessGroupNCCL (CUDA tensors; each rank on its own GPU). Fails with a clear error when
    /// this crate was built without the `nccl` feature ([`crate::has_nccl`]).
    pub fn nccl(store: &Store, rank: usize, world_size: usize, timeout: Duration) -> Result<Self> {
        let raw = ffi::RawGroup::nccl(&store.raw, rank as i32, world_size as i32, millis(timeout))
            .map_err(op_error(format!(
                "creating the NCCL process group (rank {rank} of {world_size})"
            )))?;
        Ok(Self {
            raw,
            rank,
            world_size,
            timeout,
            backend: "nccl",
            _store: store.clone(),
        })
    }

    /// This process's rank, from 0.
    pub fn rank(&self) -> usize {
        self.rank
    }

    /// The number of processes.
    pub fn world_size(&self) -> usize {
        self.world_size
    }

    /// `gloo` or `nccl`.
    pub fn backend(&self) -> &'static str {
        self.backend
    }

    /// Sums each tensor over the ranks, in place.
    pub fn allreduce_sum(&self, tensors: &[Tensor]) -> Result<()> {
        self.flattened(tensors, "allreduce", |flat| {
            self.raw.allreduce_sum(flat, millis(self.timeout))
        })
    }

    /// Replaces each tensor by its mean over the ranks, in place.
    pub fn allreduce_mean(&self, tensors: &[Tensor]) -> Result<()> {
        let world = self.world_size as f64;
        self.flattened(tensors, "allreduce", |flat| {
            self.raw.allreduce_sum(flat, millis(self.timeout))?;
            let mut flat = flat.shallow_clone();
            let _ = flat.f_div_scalar_(world).map_err(|e| e.to_string())?;
            Ok(())
        })
    }

    /// Overwrites each tensor with rank `root`'s.
    pub fn broadcast(&self, tensors: &[Tensor], root: usize) -> Result<()> {
        self.flattened(tensors, "broadcast", |flat| {
            self.raw.broadcast(flat, root as i32, millis(self.timeout))
        })
    }

    /// Waits until every rank has called it.
    pub fn barrier(&self) -> Result<()> {
        self.raw
            .barrier(millis(self.timeout))
            .map_err(|reason| self.failure("barrier", reason))
    }

    fn failure(&self, what: &str, reason: String) -> DistError {
        DistError::Operation {
            operation: format!(
                "{} {what} on rank {} of {}",
                self.backend, self.rank, self.world_size
            ),
            reason,
        }
    }

    /// Runs `op` on one contiguous buffer per (dtype, device) holding every tensor of that
    /// group, then copies the results back (a lone contiguous tensor is used in place).
    fn flattened(
        &self,
        tensors: &[Tensor],
        what: &str,
        op: impl Fn(&Tensor) -> std::result::Result<(), String>,
    ) -> Result<()> {
        let mut groups: Vec<((Kind, Device), Vec<&Tensor>)> = Vec::new();
        for t in tensors {
            let key = (t.kind(), t.device());
            match groups.iter_mut().find(|(k, _)| *k == key) {
                Some((_, list)) => list.push(t),
                None => groups.push((key, vec![t])),
            }
        }
        let tensor_error = |source| DistError::Tensor {
            operation: format!("flattening tensors for {what}"),
            source,
        };
        for ((kind, _), list) in groups {
            let elements: i64 = list.iter().map(|t| t.numel() as i64).sum();
            let label = format!(
                "{what} of {} tensors ({elements} {kind:?} values)",
                list.len()
            );
            if list.len() == 1 && list[0].is_contiguous() {
                op(list[0]).map_err(|reason| self.failure(&label, reason))?;
                continue;
            }
            let flat = tch::no_grad(|| {
                let views: Vec<Tensor> = list.iter().map(|t| t.reshape([-1])).collect();
                Tensor::f_cat(&views, 0)
            })
            .map_err(tensor_error)?;
            op(&flat).map_err(|reason| self.failure(&label, reason))?;
            tch::no_grad(|| -> std::result::Result<(), tch::TchError> {
                let mut offset = 0i64;
                for t in list {
                    let n = t.numel() as i64;
                    let mut target = t.shallow_clone();
                    target.f_copy_(&flat.f_narrow(0, offset, n)?.f_view_as(t)?)?;
                    offset += n;
                }
                Ok(())
            })
            .map_err(tensor_error)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_group_of_one_sums_means_and_broadcasts_to_itself() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::file(&dir.path().join("store"), 1).unwrap();
        let pg = ProcessGroup::gloo(
            &store,
            0,
            1,
            Duration::from_secs(10),
            &GlooDevice::Hostname("127.0.0.1".into()),
        )
        .unwrap();
        let a = Tensor::from_slice(&[1.0f32, 2.0]);
        let b = Tensor::from_slice(&[3.0f64]).reshape([1, 1]);
        let c = Tensor::from_slice(&[4.0f32, 5.0, 6.0])
            .reshape([3, 1])
            .t_copy();
        pg.allreduce_sum(&[a.shallow_clone(), b.shallow_clone(), c.shallow_clone()])
            .unwrap();
        pg.allreduce_mean(&[a.shallow_clone(), c.shallow_clone()])
            .unwrap();
        pg.broadcast(&[a.shallow_clone(), b.shallow_clone()], 0)
            .unwrap();
        pg.barrier().unwrap();
        assert_eq!(Vec::<f32>::try_from(&a).unwrap(), vec![1.0, 2.0]);
        assert_eq!(Vec::<f64>::try_from(b.reshape([-1])).unwrap(), vec![3.0]);
        assert_eq!(
            Vec::<f32>::try_from(c.reshape([-1])).unwrap(),
            vec![4.0, 5.0, 6.0]
        );
        assert_eq!((pg.rank(), pg.world_size(), pg.backend()), (0, 1, "gloo"));
    }

    #[test]
    fn nccl_without_the_feature_is_a_clear_error() {
        if crate::has_nccl() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let store = Store::file(&dir.path().join("store"), 1).unwrap();
        let err = ProcessGroup::nccl(&store, 0, 1, Duration::from_secs(1)).unwrap_err();
        assert!(
            err.to_string().contains("without the `nccl` feature"),
            "{err}"
        );
    }
}
