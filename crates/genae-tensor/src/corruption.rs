//! Input corruption `C(x̃|x)` for denoising autoencoders (DVAE) and denoising Markov chains:
//! additive Gaussian noise, salt-and-pepper noise, masking, and chains of them.

use std::fmt;

use serde::{Deserialize, Serialize};
use tch::Tensor;

use crate::{Result, TensorError};

/// A corruption process `C(x̃|x)` for data with values in `[0, 1]` (tensors of any shape, on any
/// device), drawing its randomness from libtorch's global generator (so
/// [`seed_everything`](crate::seed_everything) makes it repeat).
///
/// In TOML: `corruption = { kind = "none" }` (the default),
/// `{ kind = "gaussian", sigma = 0.1 }` (add `clamp = true` to clip to `[0, 1]`),
/// `{ kind = "salt_and_pepper", p = 0.2 }`, `{ kind = "masking", p = 0.5 }`, or a chain applied
/// in order, `{ kind = "chain", steps = [{ kind = "masking", p = 0.25 }, { kind = "gaussian",
/// sigma = 0.05 }] }`.
///
/// A corruption at level zero (`sigma = 0`, `p = 0`, an empty chain) is the identity and draws
/// no random numbers, so it leaves the generator exactly where it was.
///
/// ```
/// use genae_tensor::Corruption;
/// use tch::{Device, Kind, Tensor};
///
/// let c: Corruption = toml::from_str(r#"
///     kind = "chain"
///     steps = [{ kind = "masking", p = 0.5 }, { kind = "gaussian", sigma = 0.1, clamp = true }]
/// "#).unwrap();
/// c.validate().unwrap();
/// assert_eq!(c.to_string(), "chain[masking(p=0.5), gaussian(sigma=0.1, clamp)]");
///
/// tch::manual_seed(0);
/// let x = Tensor::rand([8, 1, 28, 28], (Kind::Float, Device::Cpu));
/// let noisy = c.apply(&x).unwrap();
/// assert_eq!(noisy.size(), x.size());
/// assert!(noisy.min().double_value(&[]) >= 0.0 && noisy.max().double_value(&[]) <= 1.0);
///
/// let bad = Corruption::Masking { p: 1.5 };
/// assert!(bad.validate().unwrap_err().to_string().contains("`p`"));
/// ```
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", deny_unknown_fields)]
pub enum Corruption {
    /// No corruption: `x̃ = x`.
    #[default]
    None,
    /// Additive Gaussian noise `x̃ = x + σ·ε`, `ε ~ N(0, I)`.
    ///
    /// Unclamped by default, so the corruption is unbiased (`E[x̃] = x`) with variance exactly
    /// `σ²`, as in Im et al. (2017); `clamp = true` clips `x̃` to `[0, 1]`, for consumers that
    /// need data in range (a Bernoulli-likelihood score, an image grid), at the price of a bias
    /// near 0 and 1.
    Gaussian {
        /// The standard deviation `σ` of the noise (finite, ≥ 0).
        sigma: f64,
        /// Clip the result to `[0, 1]` (default `false`).
        #[serde(default)]
        clamp: bool,
    },
    /// Salt-and-pepper noise: each element independently, with probability `p`, is replaced by
    /// 0 or 1 with equal probability (so with probability `p/2` each); the rest are kept.
    SaltAndPepper {
        /// The probability that an element is replaced (in `[0, 1]`).
        p: f64,
    },
    /// Masking noise: each element independently, with probability `p`, is set to 0.
    Masking {
        /// The probability that an element is zeroed (in `[0, 1]`).
        p: f64,
    },
    /// Several corruptions applied one after the other, in order.
    Chain {
        /// The corruptions, first applied first.
        steps: Vec<Corruption>,
    },
}

impl Corruption {
    /// A chain of `steps`, applied in order.
    pub fn chain(steps: impl IntoIterator<Item = Corruption>) -> Self {
        Self::Chain {
            steps: steps.into_iter().collect(),
        }
    }

    /// The config name (`none`, `gaussian`, `salt_and_pepper`, `masking`, `chain`).
    pub fn name(&self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Gaussian { .. } => "gaussian",
            Self::SaltAndPepper { .. } => "salt_and_pepper",
            Self::Masking { .. } => "masking",
            Self::Chain { .. } => "chain",
        }
    }

    /// Checks the parameters (`p` in `[0, 1]`, `sigma` finite and ≥ 0), naming the bad field;
    /// inside a chain the name carries the path, e.g. `steps[1].p`.
    pub fn validate(&self) -> Result<()> {
        self.validate_at("")
    }

    fn validate_at(&self, prefix: &str) -> Result<()> {
        let invalid = |field: &str, reason: String| TensorError::InvalidArgument {
            name: format!("{prefix}{field}"),
            reason,
        };
        match self {
            Self::None => Ok(()),
            Self::Gaussian { sigma, .. } => {
                if sigma.is_finite() && *sigma >= 0.0 {
                    Ok(())
                } else {
                    Err(invalid(
                        "sigma",
                        format!("must be a finite number ≥ 0, got {sigma}"),
                    ))
                }
            }
            Self::SaltAndPepper { p } | Self::Masking { p } => {
                if (0.0..=1.0).contains(p) {
                    Ok(())
                } else {
                    Err(invalid(
                        "p",
                        format!("must be a probability in [0, 1], got {p}"),
                    ))
                }
            }
            Self::Chain { steps } => steps
                .iter()
                .enumerate()
                .try_for_each(|(i, step)| step.validate_at(&format!("{prefix}steps[{i}]."))),
        }
    }

    /// Whether this corruption leaves every input unchanged (no corruption, level zero, or a
    /// chain of such). [`apply`](Self::apply) then draws no random numbers.
    pub fn is_identity(&self) -> bool {
        match self {
            Self::None => true,
            Self::Gaussian { sigma, .. } => *sigma == 0.0,
            Self::SaltAndPepper { p } | Self::Masking { p } => *p == 0.0,
            Self::Chain { steps } => steps.iter().all(Self::is_identity),
        }
    }

    /// A corrupted copy `x̃ ~ C(x̃|x)` of `x` (a floating-point tensor of any shape, values
    /// expected in `[0, 1]`), with the shape, kind and device of `x`; every element is corrupted
    /// independently. An identity corruption returns `x` itself (a shallow clone sharing its
    /// storage) without drawing random numbers.
    pub fn apply(&self, x: &Tensor) -> Result<Tensor> {
        self.apply_with_batch_dim(x, 0)
    }

    /// [`apply`](Self::apply) to an `x` whose batch (examples) runs along `batch_dim`, e.g. 1
    /// for `[copies, n, ...]`: a data-parallel process then draws its examples' part of the
    /// global batch's noise ([`crate::noise`]).
    pub fn apply_with_batch_dim(&self, x: &Tensor, batch_dim: usize) -> Result<Tensor> {
        self.validate()?;
        if !x.is_floating_point() {
            return Err(TensorError::InvalidArgument {
                name: "x".to_string(),
                reason: format!("must be a floating-point tensor, got {:?}", x.kind()),
            });
        }
        if batch_dim >= x.dim().max(1) {
            return Err(TensorError::Shape {
                what: "Corruption::apply_with_batch_dim",
                detail: format!("batch dimension {batch_dim} of x {:?}", x.size()),
            });
        }
        self.apply_valid(x, batch_dim)
    }

    fn apply_valid(&self, x: &Tensor, batch_dim: usize) -> Result<Tensor> {
        if self.is_identity() {
            return Ok(x.shallow_clone());
        }
        match self {
            Self::None => Ok(x.shallow_clone()),
            Self::Gaussian { sigma, clamp } => {
                let noisy = x.f_add(&(noise_like(x, batch_dim, Draw::Normal)? * *sigma))?;
                Ok(if *clamp {
                    noisy.f_clamp(0.0, 1.0)?
                } else {
                    noisy
                })
            }
            Self::SaltAndPepper { p } => {
                // One uniform per element: u < p/2 is pepper (0), p/2 ≤ u < p is salt (1).
                let u = noise_like(x, batch_dim, Draw::Uniform)?;
                let pepper = u.f_lt(p / 2.0)?;
                let salt = u.f_lt(*p)?.f_logical_xor(&pepper)?;
                Ok(x.f_masked_fill(&salt, 1.0)?.f_masked_fill(&pepper, 0.0)?)
            }
            Self::Masking { p } => {
                let masked = noise_like(x, batch_dim, Draw::Uniform)?.f_lt(*p)?;
                Ok(x.f_masked_fill(&masked, 0.0)?)
            }
            Self::Chain { steps } => {
                let mut out = x.shallow_clone();
                for step in steps {
                    out = step.apply_valid(&out, batch_dim)?;
                }
                Ok(out)
            }
        }
    }
}

/// The two kinds of noise a corruption draws.
enum Draw {
    Normal,
    Uniform,
}

/// Noise shaped like `x`, whose examples run along `batch_dim` ([`crate::noise`]).
fn noise_like(x: &Tensor, batch_dim: usize, draw: Draw) -> Result<Tensor> {
    let options = (x.kind(), x.device());
    if x.dim() == 0 {
        return Ok(match draw {
            Draw::Normal => x.f_randn_like()?,
            Draw::Uniform => x.f_rand_like()?,
        });
    }
    match draw {
        Draw::Normal => crate::noise::randn(&x.size(), batch_dim, options),
        Draw::Uniform => crate::noise::rand(&x.size(), batch_dim, options),
    }
}

impl fmt::Display for Corruption {
    /// A short label for logs and reports: `none`, `gaussian(sigma=0.1)`,
    /// `gaussian(sigma=0.1, clamp)`, `salt_and_pepper(p=0.2)`, `masking(p=0.5)`,
    /// `chain[masking(p=0.5), gaussian(sigma=0.1)]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::None => f.write_str("none"),
            Self::Gaussian { sigma, clamp } => {
                write!(
                    f,
                    "gaussian(sigma={sigma}{})",
                    if *clamp { ", clamp" } else { "" }
                )
            }
            Self::SaltAndPepper { p } => write!(f, "salt_and_pepper(p={p})"),
            Self::Masking { p } => write!(f, "masking(p={p})"),
            Self::Chain { steps } => {
                f.write_str("chain[")?;
                for (i, step) in steps.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{step}")?;
                }
                f.write_str("]")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::torch_rng_lock;
    use tch::{Device, Kind};

    const OPTS: (Kind, Device) = (Kind::Double, Device::Cpu);

    fn scalar(t: &Tensor) -> f64 {
        t.to_kind(Kind::Double).double_value(&[])
    }

    /// Fraction of elements of a boolean tensor that are true.
    fn fraction(mask: &Tensor) -> f64 {
        scalar(&mask.to_kind(Kind::Double).mean(Kind::Double))
    }

    /// Asserts that an observed fraction of `n` Bernoulli trials is within 5 binomial standard
    /// deviations of `p` (a false alarm about once in 3.5 million runs).
    fn assert_binomial(observed: f64, p: f64, n: i64, what: &str) {
        let sd = (p * (1.0 - p) / n as f64).sqrt();
        assert!(
            (observed - p).abs() <= 5.0 * sd + 1e-12,
            "{what}: fraction {observed} vs p = {p} (sd {sd})"
        );
    }

    /// Elements strictly inside (0, 1), so that setting them to 0 or 1 always changes them.
    fn interior(shape: &[i64]) -> Tensor {
        Tensor::rand(shape, OPTS) * 0.8 + 0.1
    }

    #[test]
    fn masking_zeroes_a_fraction_p_and_never_increases_values() {
        let _rng = torch_rng_lock();
        tch::manual_seed(1);
        let x = interior(&[50, 4, 25, 20]); // 100 000 elements
        let n = x.numel() as i64;
        for p in [0.1, 0.5, 0.9] {
            let y = Corruption::Masking { p }.apply(&x).unwrap();
            assert_eq!(y.size(), x.size());
            assert_eq!(y.kind(), Kind::Double);
            assert_binomial(fraction(&y.ne_tensor(&x)), p, n, "masking");
            // Every changed element is now 0; nothing increased.
            assert_eq!(
                scalar(&y.ne_tensor(&x).logical_and(&y.ne(0.0)).sum(Kind::Int64)),
                0.0
            );
            assert!(scalar(&(&y - &x).max()) <= 0.0);
        }
        // p = 1 zeroes everything.
        let y = Corruption::Masking { p: 1.0 }.apply(&x).unwrap();
        assert_eq!(scalar(&y.abs().max()), 0.0);
    }

    #[test]
    fn salt_and_pepper_replaces_a_fraction_p_half_by_zero_half_by_one() {
        let _rng = torch_rng_lock();
        tch::manual_seed(2);
        let x = interior(&[200_000]);
        let n = x.numel() as i64;
        for p in [0.05, 0.3, 1.0] {
            let y = Corruption::SaltAndPepper { p }.apply(&x).unwrap();
            let zeros = y.eq(0.0);
            let ones = y.eq(1.0);
            let changed = y.ne_tensor(&x);
            // Changed elements are exactly the zeros and the ones.
            assert!(changed.equal(&zeros.logical_or(&ones)));
            assert_binomial(fraction(&changed), p, n, "salt-and-pepper changed");
            assert_binomial(fraction(&zeros), p / 2.0, n, "pepper");
            assert_binomial(fraction(&ones), p / 2.0, n, "salt");
            // Among the replaced elements, half are 0 (a binomial with n·p trials).
            let replaced = scalar(&changed.sum(Kind::Int64));
            let share = scalar(&zeros.sum(Kind::Int64)) / replaced;
            assert_binomial(share, 0.5, replaced as i64, "pepper share");
        }
    }

    #[test]
    fn gaussian_noise_has_mean_zero_and_variance_sigma_squared() {
        let _rng = torch_rng_lock();
        tch::manual_seed(3);
        let x = interior(&[400, 500]); // 200 000 elements
        let n = x.numel() as f64;
        for sigma in [0.01, 0.3, 2.0] {
            let y = Corruption::Gaussian {
                sigma,
                clamp: false,
            }
            .apply(&x)
            .unwrap();
            let noise = &y - &x;
            let mean = scalar(&noise.mean(Kind::Double));
            let var = scalar(&noise.var(true));
            // Standard errors: σ/√n for the mean, σ²·√(2/n) for the sample variance.
            assert!(
                mean.abs() < 5.0 * sigma / n.sqrt(),
                "sigma {sigma}: mean {mean}"
            );
            let want = sigma * sigma;
            assert!(
                (var - want).abs() < 5.0 * want * (2.0 / n).sqrt(),
                "sigma {sigma}: variance {var} vs {want}"
            );
        }
        // Clamped noise stays in [0, 1] and differs from the unclamped draw only where that
        // left the range.
        tch::manual_seed(4);
        let raw = Corruption::Gaussian {
            sigma: 0.5,
            clamp: false,
        }
        .apply(&x)
        .unwrap();
        tch::manual_seed(4);
        let clamped = Corruption::Gaussian {
            sigma: 0.5,
            clamp: true,
        }
        .apply(&x)
        .unwrap();
        assert!(clamped.equal(&raw.clamp(0.0, 1.0)));
        assert!(fraction(&raw.lt(0.0).logical_or(&raw.gt(1.0))) > 0.1);
    }

    #[test]
    fn zero_levels_are_the_identity_and_draw_nothing() {
        let _rng = torch_rng_lock();
        tch::manual_seed(5);
        let x = interior(&[3, 7]);
        for c in [
            Corruption::None,
            Corruption::Gaussian {
                sigma: 0.0,
                clamp: true,
            },
            Corruption::SaltAndPepper { p: 0.0 },
            Corruption::Masking { p: 0.0 },
            Corruption::chain([]),
            Corruption::chain([Corruption::Masking { p: 0.0 }, Corruption::None]),
        ] {
            assert!(c.is_identity(), "{c}");
            tch::manual_seed(6);
            let y = c.apply(&x).unwrap();
            assert!(y.equal(&x), "{c}");
            // The generator is where the seed left it: the next draw is the seeded one.
            let next = Tensor::rand([4], OPTS);
            tch::manual_seed(6);
            assert!(
                next.equal(&Tensor::rand([4], OPTS)),
                "{c} drew random numbers"
            );
        }
        assert!(!Corruption::Masking { p: 0.1 }.is_identity());
    }

    #[test]
    fn a_chain_applies_its_steps_in_order() {
        let _rng = torch_rng_lock();
        tch::manual_seed(7);
        let x = interior(&[100, 100]);
        let mask = Corruption::Masking { p: 0.5 };
        let noise = Corruption::Gaussian {
            sigma: 0.1,
            clamp: false,
        };
        tch::manual_seed(8);
        let chained = Corruption::chain([mask.clone(), noise.clone()])
            .apply(&x)
            .unwrap();
        tch::manual_seed(8);
        let by_hand = noise.apply(&mask.apply(&x).unwrap()).unwrap();
        assert!(chained.equal(&by_hand));
        // The other order gives another result: masked elements are exactly 0 only when the
        // mask comes last.
        tch::manual_seed(8);
        let reversed = Corruption::chain([noise, mask]).apply(&x).unwrap();
        let exact_zeros = |t: &Tensor| fraction(&t.eq(0.0));
        assert!(exact_zeros(&chained) < 1e-3);
        assert_binomial(exact_zeros(&reversed), 0.5, x.numel() as i64, "mask last");
    }

    #[test]
    fn the_same_seed_gives_the_same_corruption() {
        let _rng = torch_rng_lock();
        let x = Tensor::rand([16, 32], (Kind::Float, Device::Cpu));
        let c = Corruption::chain([
            Corruption::SaltAndPepper { p: 0.2 },
            Corruption::Gaussian {
                sigma: 0.2,
                clamp: true,
            },
            Corruption::Masking { p: 0.3 },
        ]);
        tch::manual_seed(9);
        let a = c.apply(&x).unwrap();
        tch::manual_seed(9);
        let b = c.apply(&x).unwrap();
        assert!(a.equal(&b));
        assert_eq!(a.kind(), Kind::Float);
        tch::manual_seed(10);
        assert!(!c.apply(&x).unwrap().equal(&a));
    }

    #[test]
    fn invalid_parameters_name_the_field() {
        let _rng = crate::torch_rng_lock();
        let x = Tensor::rand([2, 2], OPTS);
        let name = |c: &Corruption| match c.validate().unwrap_err() {
            TensorError::InvalidArgument { name, .. } => name,
            other => panic!("{other:?}"),
        };
        for (c, field) in [
            (Corruption::Masking { p: -0.1 }, "p"),
            (Corruption::Masking { p: f64::NAN }, "p"),
            (Corruption::SaltAndPepper { p: 1.01 }, "p"),
            (
                Corruption::Gaussian {
                    sigma: -1.0,
                    clamp: false,
                },
                "sigma",
            ),
            (
                Corruption::Gaussian {
                    sigma: f64::INFINITY,
                    clamp: false,
                },
                "sigma",
            ),
            (
                Corruption::chain([
                    Corruption::None,
                    Corruption::chain([Corruption::Masking { p: 2.0 }]),
                ]),
                "steps[1].steps[0].p",
            ),
        ] {
            assert_eq!(name(&c), field, "{c:?}");
            let err = c.apply(&x).unwrap_err().to_string();
            assert!(err.contains(&format!("`{field}`")), "{err}");
        }
        let ints = Tensor::zeros([2, 2], (Kind::Int64, Device::Cpu));
        let err = Corruption::Masking { p: 0.5 }.apply(&ints).unwrap_err();
        assert!(err.to_string().contains("`x`"), "{err}");
    }

    #[test]
    fn configs_round_trip_through_toml_and_reject_unknown_fields() {
        let _rng = crate::torch_rng_lock();
        let c = Corruption::chain([
            Corruption::SaltAndPepper { p: 0.25 },
            Corruption::Gaussian {
                sigma: 0.5,
                clamp: true,
            },
        ]);
        #[derive(Serialize, Deserialize)]
        struct Wrapper {
            corruption: Corruption,
        }
        let text = toml::to_string(&Wrapper {
            corruption: c.clone(),
        })
        .unwrap();
        let back: Wrapper = toml::from_str(&text).unwrap();
        assert_eq!(back.corruption, c);
        let read = |s: &str| toml::from_str::<Corruption>(s);
        assert_eq!(read(r#"kind = "none""#).unwrap(), Corruption::None);
        assert_eq!(
            read("kind = \"gaussian\"\nsigma = 0.3").unwrap(),
            Corruption::Gaussian {
                sigma: 0.3,
                clamp: false
            }
        );
        assert!(read("kind = \"masking\"\np = 0.3\nsigma = 1.0").is_err());
        assert!(read("kind = \"masking\"").is_err());
        assert!(read("kind = \"dropout\"\np = 0.3").is_err());
        assert_eq!(Corruption::default(), Corruption::None);
        assert_eq!(c.name(), "chain");
    }
}
