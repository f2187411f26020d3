//! Latent priors as pluggable samplers: what an adversarial autoencoder matches its codes to.

use std::f64::consts::PI;

use genae_tensor::noise;
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

use crate::{Result, ZooError};

/// A distribution over codes `z ∈ R^d` that can be sampled (and, except for the swiss roll,
/// evaluated). Written in configs as a table with a `kind`:
///
/// - `{ kind = "gaussian" }`: `N(0, I)`;
/// - `{ kind = "gaussian_mixture", components = 10, radius = 4.0, std = 0.5 }`: equal-weight
///   Gaussians with means evenly spaced on a circle of `radius` in the first two dimensions
///   (zero in the others) and isotropic standard deviation `std`; component `k` can also be
///   asked for by label ([`LatentPrior::sample_for_labels`]);
/// - `{ kind = "uniform", half_width = 1.0 }`: the hypercube `[−a, a]^d`;
/// - `{ kind = "swiss_roll", turns = 1.5, noise = 0.05 }`: a 2-d spiral, `r = √u`,
///   angle `2π·turns·√u`, `u ~ U(0, 1)`, plus Gaussian noise (2-d codes only).
///
/// ```
/// use genae_zoo::LatentPrior;
/// use tch::Device;
///
/// let prior: LatentPrior = toml::from_str("kind = \"gaussian_mixture\"\ncomponents = 4").unwrap();
/// prior.validate(2).unwrap();
/// let z = prior.sample(100, 2, Device::Cpu).unwrap();
/// assert_eq!(z.size(), vec![100, 2]);
/// assert_eq!(prior.log_density(&z).unwrap().size(), vec![100]);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum LatentPrior {
    /// The standard normal `N(0, I)`.
    #[default]
    Gaussian,
    /// Gaussians on a circle in the first two dimensions.
    GaussianMixture {
        /// Number of components (also the number of labels it can condition on).
        #[serde(default = "default_components")]
        components: i64,
        /// Radius of the circle the means lie on.
        #[serde(default = "default_radius")]
        radius: f64,
        /// Standard deviation of every component, in every dimension.
        #[serde(default = "default_mixture_std")]
        std: f64,
    },
    /// Uniform on `[−half_width, half_width]^d`.
    Uniform {
        /// Half the side of the hypercube.
        #[serde(default = "default_half_width")]
        half_width: f64,
    },
    /// A 2-d swiss roll (spiral).
    SwissRoll {
        /// Turns of the spiral.
        #[serde(default = "default_turns")]
        turns: f64,
        /// Standard deviation of the Gaussian noise around the spiral.
        #[serde(default = "default_noise")]
        noise: f64,
    },
}

fn default_components() -> i64 {
    10
}
fn default_radius() -> f64 {
    4.0
}
fn default_mixture_std() -> f64 {
    0.5
}
fn default_half_width() -> f64 {
    1.0
}
fn default_turns() -> f64 {
    1.5
}
fn default_noise() -> f64 {
    0.05
}

/// `‖z_i − m_k‖²` for codes `[n, d]` and means `[K, d]`: `[n, K]`.
fn squared_distances(z: &Tensor, means: &Tensor) -> Tensor {
    (z.unsqueeze(1) - means.unsqueeze(0))
        .square()
        .sum_dim_intlist(2, false, Kind::Float)
}

fn invalid(field: &'static str, reason: String) -> ZooError {
    ZooError::InvalidConfig { field, reason }
}

impl LatentPrior {
    /// The config name (`gaussian`, `gaussian_mixture`, `uniform`, `swiss_roll`).
    pub fn name(&self) -> &'static str {
        match self {
            Self::Gaussian => "gaussian",
            Self::GaussianMixture { .. } => "gaussian_mixture",
            Self::Uniform { .. } => "uniform",
            Self::SwissRoll { .. } => "swiss_roll",
        }
    }

    /// Checks the parameters and that the prior exists in `latent_dim` dimensions; the error
    /// names the field.
    pub fn validate(&self, latent_dim: i64) -> Result<()> {
        if latent_dim < 1 {
            return Err(invalid(
                "latent_dim",
                format!("must be positive, got {latent_dim}"),
            ));
        }
        let positive = |field: &'static str, v: f64| {
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                Err(invalid(field, format!("must be positive, got {v}")))
            }
        };
        match *self {
            Self::Gaussian => Ok(()),
            Self::GaussianMixture {
                components,
                radius,
                std,
            } => {
                if components < 1 {
                    return Err(invalid(
                        "prior.components",
                        format!("must be at least 1, got {components}"),
                    ));
                }
                if latent_dim < 2 && components > 1 {
                    return Err(invalid(
                        "prior",
                        format!("a mixture on a circle needs at least 2 latent dimensions, got {latent_dim}"),
                    ));
                }
                if !(radius.is_finite() && radius >= 0.0) {
                    return Err(invalid(
                        "prior.radius",
                        format!("must be ≥ 0, got {radius}"),
                    ));
                }
                positive("prior.std", std)
            }
            Self::Uniform { half_width } => positive("prior.half_width", half_width),
            Self::SwissRoll { turns, noise } => {
                if latent_dim != 2 {
                    return Err(invalid(
                        "prior",
                        format!("the swiss roll is 2-d, but latent_dim is {latent_dim}"),
                    ));
                }
                positive("prior.turns", turns)?;
                if !(noise.is_finite() && noise >= 0.0) {
                    return Err(invalid("prior.noise", format!("must be ≥ 0, got {noise}")));
                }
                Ok(())
            }
        }
    }

    /// The mixture's component means `[components, d]` (one row per label).
    fn mixture_means(components: i64, radius: f64, d: i64, device: Device) -> Tensor {
        let angle =
            Tensor::arange(components, (Kind::Float, device)) * (2.0 * PI / components as f64);
        let means = Tensor::zeros([components, d], (Kind::Float, device));
        means
            .narrow(1, 0, 1)
            .copy_(&(angle.cos() * radius).unsqueeze(1));
        if d > 1 {
            means
                .narrow(1, 1, 1)
                .copy_(&(angle.sin() * radius).unsqueeze(1));
        }
        means
    }

    /// The mixture's component means `[components, latent_dim]`, row `k` for label `k`; an
    /// error for the other priors, naming `prior`.
    pub fn component_means(&self, latent_dim: i64, device: Device) -> Result<Tensor> {
        self.validate(latent_dim)?;
        match *self {
            Self::GaussianMixture {
                components, radius, ..
            } => Ok(Self::mixture_means(components, radius, latent_dim, device)),
            _ => Err(invalid(
                "prior",
                format!(
                    "only `gaussian_mixture` has components, not `{}`",
                    self.name()
                ),
            )),
        }
    }

    /// The component whose mean is nearest each code of `z` `[n, d]` (`[n]`, int64): for this
    /// mixture of equal weights and one isotropic `std`, the component of highest posterior
    /// probability. An error for priors without components.
    pub fn nearest_component(&self, z: &Tensor) -> Result<Tensor> {
        if z.dim() != 2 {
            return Err(ZooError::Shape {
                what: "nearest_component",
                detail: format!("codes must be [n, d], got {:?}", z.size()),
            });
        }
        let means = self.component_means(z.size()[1], z.device())?;
        Ok(squared_distances(&z.to_kind(Kind::Float), &means).argmin(1, false))
    }

    /// `n` independent draws `[n, latent_dim]` (libtorch's generator, so `tch::manual_seed`
    /// makes them reproducible; `n` counts a batch's rows, see [`genae_tensor::noise`]).
    pub fn sample(&self, n: i64, latent_dim: i64, device: Device) -> Result<Tensor> {
        self.validate(latent_dim)?;
        let opts = (Kind::Float, device);
        Ok(match *self {
            Self::Gaussian => noise::randn(&[n, latent_dim], 0, opts)?,
            Self::GaussianMixture { components, .. } => {
                let labels = noise::randint(components, &[n], 0, (Kind::Int64, device))?;
                return self.sample_for_labels(&labels, latent_dim);
            }
            Self::Uniform { half_width } => {
                (noise::rand(&[n, latent_dim], 0, opts)? * 2.0 - 1.0) * half_width
            }
            Self::SwissRoll {
                turns,
                noise: spread,
            } => {
                let r = noise::rand(&[n], 0, opts)?.sqrt();
                let angle = &r * (2.0 * PI * turns);
                let xy = Tensor::stack(&[angle.cos() * &r, angle.sin() * &r], 1);
                xy + noise::randn(&[n, 2], 0, opts)? * spread
            }
        })
    }

    /// One draw per label from the mixture component of that label (`labels`: `[n]` integers
    /// in `0..components`); an error for the other priors, naming `prior`.
    pub fn sample_for_labels(&self, labels: &Tensor, latent_dim: i64) -> Result<Tensor> {
        self.validate(latent_dim)?;
        let Self::GaussianMixture {
            components,
            radius,
            std,
        } = *self
        else {
            return Err(invalid(
                "prior",
                format!(
                    "only `gaussian_mixture` can be sampled by label, not `{}`",
                    self.name()
                ),
            ));
        };
        let labels = labels.f_to_kind(Kind::Int64)?;
        if labels.dim() != 1 {
            return Err(ZooError::Shape {
                what: "sample_for_labels",
                detail: format!("labels must be [n], got {:?}", labels.size()),
            });
        }
        if labels.numel() > 0 {
            let (lo, hi) = (labels.min().int64_value(&[]), labels.max().int64_value(&[]));
            if lo < 0 || hi >= components {
                return Err(invalid(
                    "prior.components",
                    format!(
                        "labels run from {lo} to {hi}, but the mixture has {components} components"
                    ),
                ));
            }
        }
        let device = labels.device();
        let means = Self::mixture_means(components, radius, latent_dim, device);
        let n = labels.size()[0];
        Ok(means.index_select(0, &labels)
            + noise::randn(&[n, latent_dim], 0, (Kind::Float, device))? * std)
    }

    /// `log p(z)` per row of `z` `[n, d]`, `[n]`; an error for the swiss roll, which has no
    /// density formula here. The uniform gives `−∞` outside the cube.
    pub fn log_density(&self, z: &Tensor) -> Result<Tensor> {
        if z.dim() != 2 {
            return Err(ZooError::Shape {
                what: "log_density",
                detail: format!("codes must be [n, d], got {:?}", z.size()),
            });
        }
        let d = z.size()[1];
        self.validate(d)?;
        let log_2pi = (2.0 * PI).ln();
        Ok(match *self {
            Self::Gaussian => {
                (z.square().sum_dim_intlist(1, false, Kind::Float) + d as f64 * log_2pi) * -0.5
            }
            Self::GaussianMixture {
                components,
                radius,
                std,
            } => {
                let means = Self::mixture_means(components, radius, d, z.device());
                let log_component = squared_distances(z, &means) * (-0.5 / (std * std))
                    - d as f64 * (std.ln() + 0.5 * log_2pi)
                    - (components as f64).ln();
                log_component.logsumexp([1], false)
            }
            Self::Uniform { half_width } => {
                let inside = z.abs().le(half_width).all_dim(1, false);
                let log_volume = d as f64 * (2.0 * half_width).ln();
                Tensor::full([z.size()[0]], -log_volume, (Kind::Float, z.device())).where_self(
                    &inside,
                    &Tensor::full([], f64::NEG_INFINITY, (Kind::Float, z.device())),
                )
            }
            Self::SwissRoll { .. } => {
                return Err(invalid(
                    "prior",
                    "the swiss roll has no density formula; use it only as a sampler".into(),
                ))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mean_and_var(z: &Tensor) -> (Vec<f64>, Vec<f64>) {
        let z = z.to_kind(Kind::Double);
        let m = Vec::<f64>::try_from(z.mean_dim(0, false, Kind::Double)).unwrap();
        let v = Vec::<f64>::try_from(z.var_dim(0, false, false)).unwrap();
        (m, v)
    }

    #[test]
    fn gaussian_and_uniform_have_their_moments() {
        let _rng = crate::torch_rng_lock();
        tch::manual_seed(5);
        let n = 200_000;
        let (m, v) = mean_and_var(&LatentPrior::Gaussian.sample(n, 3, Device::Cpu).unwrap());
        for j in 0..3 {
            assert!(
                m[j].abs() < 0.01 && (v[j] - 1.0).abs() < 0.02,
                "{m:?} {v:?}"
            );
        }
        let uniform = LatentPrior::Uniform { half_width: 2.0 };
        let z = uniform.sample(n, 3, Device::Cpu).unwrap();
        assert!(z.abs().max().double_value(&[]) <= 2.0);
        let (m, v) = mean_and_var(&z);
        for j in 0..3 {
            // Var U(−a, a) = a²/3.
            assert!(
                m[j].abs() < 0.02 && (v[j] - 4.0 / 3.0).abs() < 0.02,
                "{m:?} {v:?}"
            );
        }
    }

    #[test]
    fn nearest_component_finds_the_component_a_draw_came_from() {
        let _rng = crate::torch_rng_lock();
        tch::manual_seed(8);
        let prior = LatentPrior::GaussianMixture {
            components: 6,
            radius: 5.0,
            std: 0.3,
        };
        let labels = Tensor::randint(6, [2000], (Kind::Int64, Device::Cpu));
        let z = prior.sample_for_labels(&labels, 3).unwrap();
        // Neighbouring means are 2·5·sin(π/6) = 5 apart, 8.3 standard deviations: a draw is
        // nearer another mean only with probability ≈ 2·Φ(−8.3) ≈ 1e-16.
        let nearest = prior.nearest_component(&z).unwrap();
        assert!(nearest.equal(&labels));
        // The means themselves, one per angle 2πk/6 on the circle of radius 5.
        let means = prior.component_means(3, Device::Cpu).unwrap();
        let m2 = Vec::<f32>::try_from(means.get(2)).unwrap();
        let angle = 2.0 * PI * 2.0 / 6.0;
        assert!((m2[0] as f64 - 5.0 * angle.cos()).abs() < 1e-5, "{m2:?}");
        assert!((m2[1] as f64 - 5.0 * angle.sin()).abs() < 1e-5, "{m2:?}");
        assert_eq!(m2[2], 0.0);
        let err = LatentPrior::Gaussian
            .nearest_component(&z)
            .unwrap_err()
            .to_string();
        assert!(err.contains("gaussian_mixture"), "{err}");
    }

    #[test]
    fn labelled_mixture_draws_come_from_the_labels_component() {
        let _rng = crate::torch_rng_lock();
        tch::manual_seed(6);
        let prior = LatentPrior::GaussianMixture {
            components: 8,
            radius: 5.0,
            std: 0.3,
        };
        let labels = Tensor::arange(8, (Kind::Int64, Device::Cpu)).repeat([500]);
        let z = prior.sample_for_labels(&labels, 3).unwrap();
        for k in 0..8 {
            let rows = z.index_select(0, &labels.eq(k).nonzero().squeeze_dim(1));
            let (m, v) = mean_and_var(&rows);
            let angle = 2.0 * PI * k as f64 / 8.0;
            let want = [5.0 * angle.cos(), 5.0 * angle.sin(), 0.0];
            for j in 0..3 {
                assert!((m[j] - want[j]).abs() < 0.05, "component {k}: {m:?}");
                assert!((v[j] - 0.09).abs() < 0.02, "component {k}: {v:?}");
            }
        }
        let err = prior
            .sample_for_labels(&Tensor::from_slice(&[0i64, 8]), 2)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("prior.components") && err.contains("8"),
            "{err}"
        );
    }

    #[test]
    fn densities_integrate_to_one_on_a_grid() {
        let _rng = crate::torch_rng_lock();
        // Riemann sum over [−L, L]² with step h.
        let (l, steps) = (8.0, 801);
        let axis = Tensor::linspace(-l, l, steps, (Kind::Double, Device::Cpu));
        let h = 2.0 * l / (steps - 1) as f64;
        let xs = axis.repeat_interleave_self_int(steps, 0, None);
        let ys = axis.repeat([steps]);
        let grid = Tensor::stack(&[xs, ys], 1).to_kind(Kind::Float);
        for prior in [
            LatentPrior::Gaussian,
            LatentPrior::GaussianMixture {
                components: 10,
                radius: 4.0,
                std: 0.5,
            },
            LatentPrior::Uniform { half_width: 1.5 },
        ] {
            let mass = prior
                .log_density(&grid)
                .unwrap()
                .to_kind(Kind::Double)
                .exp()
                .sum(Kind::Double)
                .double_value(&[])
                * h
                * h;
            // The uniform's edges fall between grid points: allow the border cells' mass.
            let tol = if prior.name() == "uniform" {
                0.02
            } else {
                1e-3
            };
            assert!((mass - 1.0).abs() < tol, "{}: {mass}", prior.name());
        }
    }

    #[test]
    fn mixture_density_matches_a_hand_computation() {
        let _rng = crate::torch_rng_lock();
        let prior = LatentPrior::GaussianMixture {
            components: 2,
            radius: 1.0,
            std: 1.0,
        };
        // Means (1, 0) and (−1, 0); at z = (0, 1) both are at squared distance 2.
        let z = Tensor::from_slice(&[0.0f32, 1.0]).view([1, 2]);
        let got = prior.log_density(&z).unwrap().double_value(&[0]);
        let want = -1.0 - (2.0 * PI).ln();
        assert!((got - want).abs() < 1e-5, "{got} vs {want}");
    }

    #[test]
    fn swiss_roll_is_two_dimensional_and_bounded() {
        let _rng = crate::torch_rng_lock();
        tch::manual_seed(7);
        let roll = LatentPrior::SwissRoll {
            turns: 1.5,
            noise: 0.0,
        };
        let z = roll.sample(1000, 2, Device::Cpu).unwrap();
        let r = z.square().sum_dim_intlist(1, false, Kind::Float).sqrt();
        assert!(r.max().double_value(&[]) <= 1.0 + 1e-6);
        // r = √u with u uniform: E r = 2/3.
        assert!((r.mean(Kind::Float).double_value(&[]) - 2.0 / 3.0).abs() < 0.03);
        let err = roll.validate(3).unwrap_err().to_string();
        assert!(err.contains("prior") && err.contains("2-d"), "{err}");
        assert!(roll.log_density(&z).is_err());
    }

    #[test]
    fn configs_parse_with_defaults_and_reject_unknown_keys() {
        let _rng = crate::torch_rng_lock();
        let p: LatentPrior = toml::from_str("kind = \"uniform\"").unwrap();
        assert_eq!(p, LatentPrior::Uniform { half_width: 1.0 });
        assert!(toml::from_str::<LatentPrior>("kind = \"uniform\"\nradius = 2.0").is_err());
        let bad = LatentPrior::GaussianMixture {
            components: 0,
            radius: 1.0,
            std: 1.0,
        };
        assert!(bad
            .validate(2)
            .unwrap_err()
            .to_string()
            .contains("prior.components"));
    }
}
