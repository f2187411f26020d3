//! Device selection and seeding.

use std::fmt;
use std::str::FromStr;

use tch::{Cuda, Device};

use crate::{Result, TensorError};

/// Environment variable that overrides a configured device (e.g. `GENAE_DEVICE=cpu`).
pub const DEVICE_ENV_VAR: &str = "GENAE_DEVICE";

/// A device as written in a config or in `GENAE_DEVICE`: `auto`, `cpu`, `cuda` or `cuda:N`.
///
/// ```
/// use genae_tensor::DeviceSpec;
/// assert_eq!("cuda:1".parse::<DeviceSpec>().unwrap(), DeviceSpec::Cuda(1));
/// assert_eq!("cuda".parse::<DeviceSpec>().unwrap(), DeviceSpec::Cuda(0));
/// assert!("gpu".parse::<DeviceSpec>().is_err());
/// assert_eq!(DeviceSpec::Cpu.resolve().unwrap(), tch::Device::Cpu);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum DeviceSpec {
    /// CUDA device 0 when libtorch sees a GPU, the CPU otherwise.
    #[default]
    Auto,
    /// The CPU.
    Cpu,
    /// The CUDA device with this index.
    Cuda(usize),
}

impl FromStr for DeviceSpec {
    type Err = TensorError;

    fn from_str(s: &str) -> Result<Self> {
        let lower = s.trim().to_ascii_lowercase();
        let invalid = || TensorError::InvalidDevice {
            spec: s.to_string(),
        };
        match lower.as_str() {
            "auto" => Ok(Self::Auto),
            "cpu" => Ok(Self::Cpu),
            "cuda" => Ok(Self::Cuda(0)),
            other => {
                let index = other.strip_prefix("cuda:").ok_or_else(invalid)?;
                index.parse().map(Self::Cuda).map_err(|_| invalid())
            }
        }
    }
}

impl fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Auto => f.write_str("auto"),
            Self::Cpu => f.write_str("cpu"),
            Self::Cuda(i) => write!(f, "cuda:{i}"),
        }
    }
}

impl DeviceSpec {
    /// The spec from `GENAE_DEVICE` when that variable is set and not empty.
    pub fn from_env() -> Result<Option<Self>> {
        match std::env::var(DEVICE_ENV_VAR) {
            Ok(v) if !v.trim().is_empty() => {
                v.parse().map(Some).map_err(|_| TensorError::InvalidDevice {
                    spec: format!("{DEVICE_ENV_VAR}={v}"),
                })
            }
            _ => Ok(None),
        }
    }

    /// The configured spec, unless `GENAE_DEVICE` is set, which wins (so a CI job or a shared
    /// machine can force a device without editing configs).
    pub fn from_config_or_env(configured: Self) -> Result<Self> {
        Ok(Self::from_env()?.unwrap_or(configured))
    }

    /// The [`tch::Device`] this spec names, checking that a requested GPU exists.
    pub fn resolve(self) -> Result<Device> {
        match self {
            Self::Cpu => Ok(Device::Cpu),
            Self::Auto => Ok(Device::cuda_if_available()),
            Self::Cuda(index) => {
                let count = if Cuda::is_available() {
                    Cuda::device_count()
                } else {
                    0
                };
                if (index as i64) < count {
                    Ok(Device::Cuda(index))
                } else {
                    let reason = if count == 0 {
                        "libtorch sees no CUDA device (use `cpu` or `auto`)".to_string()
                    } else {
                        format!("libtorch sees only {count} CUDA device(s)")
                    };
                    Err(TensorError::DeviceUnavailable {
                        spec: self.to_string(),
                        reason,
                    })
                }
            }
        }
    }
}

/// Seeds libtorch's random generators (CPU, and every CUDA device when there is one), so that
/// parameter initialisation, `randn`, `randperm` and dropout repeat from run to run.
///
/// The generators are global to the process: runs on parallel threads draw from the same
/// stream, so keep seeded work that must repeat on one thread at a time.
pub fn seed_everything(seed: u64) {
    tch::manual_seed(seed as i64);
    if Cuda::is_available() {
        Cuda::manual_seed_all(seed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form_and_round_trips_through_display() {
        let _rng = crate::torch_rng_lock();
        for (text, spec) in [
            ("auto", DeviceSpec::Auto),
            ("CPU", DeviceSpec::Cpu),
            (" cuda ", DeviceSpec::Cuda(0)),
            ("cuda:3", DeviceSpec::Cuda(3)),
        ] {
            let parsed: DeviceSpec = text.parse().unwrap();
            assert_eq!(parsed, spec);
            assert_eq!(parsed.to_string().parse::<DeviceSpec>().unwrap(), spec);
        }
    }

    #[test]
    fn rejects_malformed_specs_with_the_offending_text() {
        let _rng = crate::torch_rng_lock();
        for bad in ["gpu", "cuda:", "cuda:x", "cuda:-1", ""] {
            let err = bad.parse::<DeviceSpec>().unwrap_err().to_string();
            assert!(err.contains(&format!("`{bad}`")), "{err}");
        }
    }

    #[test]
    fn missing_gpu_is_an_error_not_a_panic() {
        let _rng = crate::torch_rng_lock();
        let count = if Cuda::is_available() {
            Cuda::device_count()
        } else {
            0
        };
        let err = DeviceSpec::Cuda(count as usize).resolve().unwrap_err();
        assert!(err.to_string().contains(&format!("cuda:{count}")));
    }
}
