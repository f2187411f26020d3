//! Markov chains in latent space (Creswell et al., 2016): decode, optionally corrupt, encode,
//! repeat.
//!
//! The transition `T(z_{t+1} | z_t) = ∫ q(z_{t+1}|x) p(x|z_t) dx` decodes a code and encodes
//! the result again; its stationary distribution is the latent distribution the encoder
//! actually produces, so a few steps move prior samples or interpolation points to where the
//! decoder was trained. The denoising variant corrupts the decoded `x` before encoding it.

use std::fmt;

use genae_zoo::GenerativeAutoencoder;
use serde::{Deserialize, Serialize};
use tch::{Device, Tensor};

use crate::{Result, SamplerError};

/// How a step turns a code `z_t` into data `x`.
///
/// In TOML: `decode = "mean"` (the default) or `decode = "sample"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecodeMode {
    /// The decoder mean `E[x|z_t]` (pixel probabilities for Bernoulli decoders).
    #[default]
    Mean,
    /// A draw `x ~ p(x|z_t)`: the transition of the paper.
    Sample,
}

/// How a step turns data `x` into the next code `z_{t+1}`.
///
/// In TOML: `encode = "sample"` (the default) or `encode = "mean"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EncodeMode {
    /// A draw `z ~ q(z|x)`: the transition of the paper.
    #[default]
    Sample,
    /// The posterior mean `E[z|x]` (the only choice that matters for a deterministic encoder).
    Mean,
}

/// Settings of a [`MarkovChain`]; every field has a default, unknown fields are rejected.
///
/// ```
/// use genae_samplers::{DecodeMode, EncodeMode, MarkovChainConfig};
///
/// let config: MarkovChainConfig =
///     toml::from_str("steps = 20\ndecode = \"sample\"\nkeep_trajectory = true").unwrap();
/// assert_eq!(config.steps, 20);
/// assert_eq!((config.decode, config.encode), (DecodeMode::Sample, EncodeMode::Sample));
/// assert!(toml::from_str::<MarkovChainConfig>("step = 3").is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MarkovChainConfig {
    /// Number of transitions; 0 returns the starting codes (and their decoded means). Default 5.
    pub steps: usize,
    /// Decoder mean or a draw of `p(x|z)`. Default [`DecodeMode::Mean`].
    pub decode: DecodeMode,
    /// A draw of `q(z|x)` or its mean. Default [`EncodeMode::Sample`].
    pub encode: EncodeMode,
    /// Keep every step's codes and decoded means in [`ChainOutput::trajectory`]. Default false.
    pub keep_trajectory: bool,
}

impl Default for MarkovChainConfig {
    /// 5 steps, decoder mean, encoder draw, no trajectory.
    fn default() -> Self {
        Self {
            steps: 5,
            decode: DecodeMode::Mean,
            encode: EncodeMode::Sample,
            keep_trajectory: false,
        }
    }
}

/// The error a corruption step may return: any error, boxed, so `?` works on any
/// corruption operator's result inside the closure.
pub type CorruptionError = Box<dyn std::error::Error + Send + Sync>;

/// A corruption operator `x ↦ x~ ~ C(x~|x)` on decoded data `[N, D]`, for the denoising chain.
type Corruption<'a> = dyn Fn(&Tensor) -> std::result::Result<Tensor, CorruptionError> + 'a;

/// Every step of a chain, the start included: `steps + 1` entries along the leading axis.
#[derive(Debug)]
pub struct ChainTrajectory {
    /// Codes `[steps + 1, N, d]`: `codes[0]` are the starting codes, `codes[t]` those after `t`
    /// transitions.
    pub codes: Tensor,
    /// Decoder means `[steps + 1, N, D]` of those codes.
    pub images: Tensor,
}

/// What [`MarkovChain::run`] returns.
#[derive(Debug)]
pub struct ChainOutput {
    /// The codes after the last step, `[N, d]`.
    pub codes: Tensor,
    /// Their decoder means `E[x|z]`, `[N, D]` (whatever the [`DecodeMode`]: these are for
    /// looking at).
    pub images: Tensor,
    /// Every step, when [`MarkovChainConfig::keep_trajectory`] is set.
    pub trajectory: Option<ChainTrajectory>,
}

/// What [`MarkovChain::interpolate`] and [`refined_interpolation`] return, for `N` pairs of
/// endpoints and `T` points per path (rows are pairs, columns go from `a` to `b`).
#[derive(Debug)]
pub struct RefinedInterpolation {
    /// The linear path between the endpoints' posterior means, `[N, T, d]`.
    pub codes: Tensor,
    /// Decoder means along that path, `[N, T, D]`: the plain interpolation.
    pub plain: Tensor,
    /// The path's codes after the chain, `[N, T, d]`.
    pub refined_codes: Tensor,
    /// Their decoder means, `[N, T, D]`: the refined interpolation.
    pub refined: Tensor,
    /// The chain's trajectory over the `N·T` path points (pair-major), when kept.
    pub trajectory: Option<ChainTrajectory>,
}

/// A batch of Markov chains in the latent space of a [`GenerativeAutoencoder`].
///
/// Each step decodes the codes `z_t` (mean or draw, [`DecodeMode`]), passes the data through
/// the optional corruption ([`with_corruption`](Self::with_corruption)), and encodes it (draw
/// or mean, [`EncodeMode`]). All chains of a batch move together, under `tch::no_grad`;
/// randomness comes from libtorch's global generator, so `tch::manual_seed` makes a run
/// repeatable. Starts: given codes ([`run`](Self::run)), prior draws
/// ([`from_prior`](Self::from_prior)), encoded data ([`from_data`](Self::from_data)), points
/// on a linear path ([`from_interpolation`](Self::from_interpolation)).
///
/// ```
/// use std::cell::Cell;
///
/// use genae_samplers::{MarkovChain, MarkovChainConfig};
/// use genae_zoo::{Vae, VaeConfig};
/// use tch::{nn, Device, Tensor};
///
/// tch::manual_seed(0);
/// let vs = nn::VarStore::new(Device::Cpu);
/// let config = VaeConfig { input_dim: 12, hidden: vec![16], latent_dim: 2, ..Default::default() };
/// let vae = Vae::new(&vs.root(), &config).unwrap();
///
/// let calls = Cell::new(0);
/// let chain = MarkovChain::new(MarkovChainConfig {
///     steps: 3,
///     keep_trajectory: true,
///     ..Default::default()
/// })
/// .with_corruption(|x: &Tensor| {
///     calls.set(calls.get() + 1);
///     Ok(x.f_mul(&x.rand_like().ge(0.1))?) // mask 10% of the pixels
/// });
/// let out = chain.from_prior(&vae, 8, Device::Cpu).unwrap();
/// assert_eq!(out.codes.size(), [8, 2]);
/// assert_eq!(out.images.size(), [8, 12]);
/// let trajectory = out.trajectory.unwrap();
/// assert_eq!(trajectory.codes.size(), [4, 8, 2]); // the start and 3 steps
/// assert_eq!(trajectory.images.size(), [4, 8, 12]);
/// assert_eq!(calls.get(), 3);
/// ```
pub struct MarkovChain<'a> {
    config: MarkovChainConfig,
    corruption: Option<Box<Corruption<'a>>>,
}

impl fmt::Debug for MarkovChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MarkovChain")
            .field("config", &self.config)
            .field("corruption", &self.corruption.as_ref().map(|_| "Fn"))
            .finish()
    }
}

impl<'a> MarkovChain<'a> {
    /// A chain without corruption.
    pub fn new(config: MarkovChainConfig) -> Self {
        Self {
            config,
            corruption: None,
        }
    }

    /// The denoising chain: `corrupt` maps the decoded data `[N, D]` to corrupted data of the
    /// same shape before it is encoded, once per step.
    pub fn with_corruption<F>(mut self, corrupt: F) -> Self
    where
        F: Fn(&Tensor) -> std::result::Result<Tensor, CorruptionError> + 'a,
    {
        self.corruption = Some(Box::new(corrupt));
        self
    }

    /// The settings.
    pub fn config(&self) -> &MarkovChainConfig {
        &self.config
    }

    /// One transition of every chain: codes `[N, d]` to codes `[N, d]`, without gradient.
    pub fn step<M>(&self, model: &M, z: &Tensor) -> Result<Tensor>
    where
        M: GenerativeAutoencoder + ?Sized,
    {
        check_codes(z, model.latent_dim(), "z")?;
        tch::no_grad(|| self.transition(model, z, None))
    }

    /// Runs `config.steps` transitions from the codes `z0` `[N, d]`.
    pub fn run<M>(&self, model: &M, z0: &Tensor) -> Result<ChainOutput>
    where
        M: GenerativeAutoencoder + ?Sized,
    {
        check_codes(z0, model.latent_dim(), "z0")?;
        tch::no_grad(|| self.run_unchecked(model, z0))
    }

    /// Runs the chain from `n` codes drawn from the model's prior on `device`.
    pub fn from_prior<M>(&self, model: &M, n: i64, device: Device) -> Result<ChainOutput>
    where
        M: GenerativeAutoencoder + ?Sized,
    {
        if n < 1 {
            return Err(SamplerError::InvalidArgument {
                name: "n",
                reason: format!("the number of chains must be at least 1, got {n}"),
            });
        }
        let z0 = tch::no_grad(|| model.sample_prior(n, device))?;
        check_model_output(&z0, n, model.latent_dim(), "sample_prior")?;
        tch::no_grad(|| self.run_unchecked(model, &z0))
    }

    /// Runs the chain from the codes of data `x` `[N, ...]`, encoded as
    /// [`MarkovChainConfig::encode`] says (a draw of `q(z|x)` or its mean).
    pub fn from_data<M>(&self, model: &M, x: &Tensor) -> Result<ChainOutput>
    where
        M: GenerativeAutoencoder + ?Sized,
    {
        check_batch(x, "x")?;
        let z0 = tch::no_grad(|| self.encode(model, x))?;
        tch::no_grad(|| self.run_unchecked(model, &z0))
    }

    /// Runs the chain from the `N·T` points of [`interpolation_path`]`(z_a, z_b, points)`
    /// (pair-major: rows `i·T .. (i + 1)·T` are the path of pair `i`).
    pub fn from_interpolation<M>(
        &self,
        model: &M,
        z_a: &Tensor,
        z_b: &Tensor,
        points: i64,
    ) -> Result<ChainOutput>
    where
        M: GenerativeAutoencoder + ?Sized,
    {
        let d = model.latent_dim();
        check_endpoint(z_a, d, "z_a")?;
        check_endpoint(z_b, d, "z_b")?;
        let path = interpolation_path(z_a, z_b, points)?;
        let z0 = path.f_reshape([-1, d])?;
        tch::no_grad(|| self.run_unchecked(model, &z0))
    }

    /// Plain and chain-refined interpolation between the data `x_a` and `x_b` (both
    /// `[N, ...]`, the same shape): a linear path of `points` codes between their posterior
    /// means (always the mean, whatever [`EncodeMode`]), decoded as it is and after the chain.
    pub fn interpolate<M>(
        &self,
        model: &M,
        x_a: &Tensor,
        x_b: &Tensor,
        points: i64,
    ) -> Result<RefinedInterpolation>
    where
        M: GenerativeAutoencoder + ?Sized,
    {
        check_batch(x_a, "x_a")?;
        if x_b.size() != x_a.size() {
            return Err(SamplerError::InvalidArgument {
                name: "x_b",
                reason: format!(
                    "must have the shape of x_a, {:?}, got {:?}",
                    x_a.size(),
                    x_b.size()
                ),
            });
        }
        check_points(points)?;
        tch::no_grad(|| {
            let n = x_a.size()[0];
            let d = model.latent_dim();
            let z_a = model.encode_mean(x_a)?;
            check_model_output(&z_a, n, d, "encode_mean")?;
            let z_b = model.encode_mean(x_b)?;
            check_model_output(&z_b, n, d, "encode_mean")?;
            let codes = interpolation_path(&z_a, &z_b, points)?;
            let flat = codes.f_reshape([-1, d])?;
            let plain = model.decode_mean(&flat)?;
            check_model_output(&plain, n * points, -1, "decode_mean")?;
            let out = self.run_unchecked(model, &flat)?;
            let big_d = plain.size()[1];
            Ok(RefinedInterpolation {
                plain: plain.f_reshape([n, points, big_d])?,
                refined_codes: out.codes.f_reshape([n, points, d])?,
                refined: out.images.f_reshape([n, points, big_d])?,
                trajectory: out.trajectory,
                codes,
            })
        })
    }

    /// The chain proper, on checked codes `[N, d]`, inside `no_grad`.
    fn run_unchecked<M>(&self, model: &M, z0: &Tensor) -> Result<ChainOutput>
    where
        M: GenerativeAutoencoder + ?Sized,
    {
        let keep = self.config.keep_trajectory;
        let n = z0.size()[0];
        let mut z = z0.f_detach_copy()?;
        let mut codes = Vec::new();
        let mut images = Vec::new();
        for _ in 0..self.config.steps {
            let mean = if keep || self.config.decode == DecodeMode::Mean {
                let mean = model.decode_mean(&z)?;
                check_model_output(&mean, n, -1, "decode_mean")?;
                Some(mean)
            } else {
                None
            };
            if keep {
                codes.push(z.shallow_clone());
                images.push(mean.as_ref().expect("kept").shallow_clone());
            }
            z = self.transition(model, &z, mean)?;
        }
        let final_images = model.decode_mean(&z)?;
        check_model_output(&final_images, n, -1, "decode_mean")?;
        let trajectory = if keep {
            codes.push(z.shallow_clone());
            images.push(final_images.shallow_clone());
            Some(ChainTrajectory {
                codes: Tensor::f_stack(&codes, 0)?,
                images: Tensor::f_stack(&images, 0)?,
            })
        } else {
            None
        };
        Ok(ChainOutput {
            codes: z,
            images: final_images,
            trajectory,
        })
    }

    /// Decode (reusing `mean`, the decoder mean at `z`, when given), corrupt, encode.
    fn transition<M>(&self, model: &M, z: &Tensor, mean: Option<Tensor>) -> Result<Tensor>
    where
        M: GenerativeAutoencoder + ?Sized,
    {
        let n = z.size()[0];
        let x = match (self.config.decode, mean) {
            (DecodeMode::Mean, Some(mean)) => mean,
            (DecodeMode::Mean, None) => model.decode_mean(z)?,
            (DecodeMode::Sample, _) => model.decode_sample(z)?,
        };
        let what = match self.config.decode {
            DecodeMode::Mean => "decode_mean",
            DecodeMode::Sample => "decode_sample",
        };
        check_model_output(&x, n, -1, what)?;
        let x = match &self.corruption {
            Some(corrupt) => {
                let corrupted = corrupt(&x).map_err(SamplerError::Corruption)?;
                if corrupted.size() != x.size() {
                    return Err(SamplerError::InvalidArgument {
                        name: "corruption",
                        reason: format!(
                            "must keep the shape of the decoded data, {:?}, returned {:?}",
                            x.size(),
                            corrupted.size()
                        ),
                    });
                }
                corrupted
            }
            None => x,
        };
        self.encode(model, &x)
    }

    /// Codes of `x` by the configured [`EncodeMode`], checked to be `[N, d]`.
    fn encode<M>(&self, model: &M, x: &Tensor) -> Result<Tensor>
    where
        M: GenerativeAutoencoder + ?Sized,
    {
        let (z, what) = match self.config.encode {
            EncodeMode::Sample => (model.encode_sample(x)?, "encode_sample"),
            EncodeMode::Mean => (model.encode_mean(x)?, "encode_mean"),
        };
        check_model_output(&z, x.size()[0], model.latent_dim(), what)?;
        Ok(z)
    }
}

/// `points` codes evenly spaced on the segment from `z_a` to `z_b` (both `[d]` or `[N, d]`, the
/// same shape): `[N, points, d]` (`N = 1` for 1-d endpoints), with `z(α) = (1 − α) z_a + α z_b`
/// for `α = 0, 1/(T − 1), …, 1`, so the first and last points equal `z_a` and `z_b` exactly.
///
/// ```
/// use genae_samplers::interpolation_path;
/// use tch::Tensor;
///
/// let z_a = Tensor::from_slice(&[0.0f64, 2.0]);
/// let z_b = Tensor::from_slice(&[1.0f64, -2.0]);
/// let path = interpolation_path(&z_a, &z_b, 5).unwrap();
/// assert_eq!(path.size(), [1, 5, 2]);
/// let middle = Vec::<f64>::try_from(&path.get(0).get(2)).unwrap();
/// assert_eq!(middle, [0.5, 0.0]);
/// assert!(interpolation_path(&z_a, &z_b, 1).unwrap_err().to_string().contains("points"));
/// ```
pub fn interpolation_path(z_a: &Tensor, z_b: &Tensor, points: i64) -> Result<Tensor> {
    check_points(points)?;
    if !matches!(z_a.dim(), 1 | 2) || !z_a.is_floating_point() {
        return Err(SamplerError::InvalidArgument {
            name: "z_a",
            reason: format!(
                "expected floating-point codes [d] or [N, d], got {:?} of {:?}",
                z_a.size(),
                z_a.kind()
            ),
        });
    }
    if z_b.size() != z_a.size() || z_b.kind() != z_a.kind() {
        return Err(SamplerError::InvalidArgument {
            name: "z_b",
            reason: format!(
                "must have the shape and kind of z_a, {:?} {:?}, got {:?} {:?}",
                z_a.size(),
                z_a.kind(),
                z_b.size(),
                z_b.kind()
            ),
        });
    }
    let (z_a, z_b) = if z_a.dim() == 1 {
        (z_a.f_unsqueeze(0)?, z_b.f_unsqueeze(0)?)
    } else {
        (z_a.shallow_clone(), z_b.shallow_clone())
    };
    let alpha =
        Tensor::f_linspace(0.0, 1.0, points, (z_a.kind(), z_a.device()))?.f_view([1, points, 1])?;
    let start = z_a
        .f_unsqueeze(1)?
        .f_mul(&alpha.f_neg()?.f_add_scalar(1.0)?)?;
    let end = z_b.f_unsqueeze(1)?.f_mul(&alpha)?;
    Ok(start.f_add(&end)?)
}

/// [`MarkovChain::interpolate`] with the default chain of `steps` steps (decoder mean, encoder
/// draw, no corruption): plain and refined interpolation between `x_a` and `x_b`.
///
/// ```
/// use genae_samplers::refined_interpolation;
/// use genae_zoo::{Vae, VaeConfig};
/// use tch::{nn, Device, Kind, Tensor};
///
/// let vs = nn::VarStore::new(Device::Cpu);
/// let config = VaeConfig { input_dim: 10, hidden: vec![8], latent_dim: 3, ..Default::default() };
/// let vae = Vae::new(&vs.root(), &config).unwrap();
/// let x_a = Tensor::rand([2, 10], (Kind::Float, Device::Cpu)).round();
/// let x_b = Tensor::rand([2, 10], (Kind::Float, Device::Cpu)).round();
/// let out = refined_interpolation(&vae, &x_a, &x_b, 7, 4).unwrap();
/// assert_eq!(out.codes.size(), [2, 7, 3]);
/// assert_eq!(out.plain.size(), [2, 7, 10]);
/// assert_eq!(out.refined.size(), [2, 7, 10]);
/// ```
pub fn refined_interpolation<M>(
    model: &M,
    x_a: &Tensor,
    x_b: &Tensor,
    points: i64,
    steps: usize,
) -> Result<RefinedInterpolation>
where
    M: GenerativeAutoencoder + ?Sized,
{
    MarkovChain::new(MarkovChainConfig {
        steps,
        ..Default::default()
    })
    .interpolate(model, x_a, x_b, points)
}

fn check_points(points: i64) -> Result<()> {
    if points < 2 {
        return Err(SamplerError::InvalidArgument {
            name: "points",
            reason: format!("a path needs at least 2 points, got {points}"),
        });
    }
    Ok(())
}

/// `z` must be `[N, d]` with `N ≥ 1`.
fn check_codes(z: &Tensor, d: i64, name: &'static str) -> Result<()> {
    let size = z.size();
    if size.len() != 2 || size[1] != d || size[0] < 1 {
        return Err(SamplerError::InvalidArgument {
            name,
            reason: format!("expected codes [N, {d}] with N ≥ 1, got {size:?}"),
        });
    }
    Ok(())
}

/// An interpolation endpoint: `[d]` or `[N, d]`.
fn check_endpoint(z: &Tensor, d: i64, name: &'static str) -> Result<()> {
    let size = z.size();
    if !matches!(size.len(), 1 | 2) || size[size.len() - 1] != d || size[0] < 1 {
        return Err(SamplerError::InvalidArgument {
            name,
            reason: format!("expected a code [{d}] or codes [N, {d}], got {size:?}"),
        });
    }
    Ok(())
}

/// Data must be a non-empty batch `[N, ...]`.
fn check_batch(x: &Tensor, name: &'static str) -> Result<()> {
    if x.dim() < 2 || x.size()[0] < 1 {
        return Err(SamplerError::InvalidArgument {
            name,
            reason: format!("expected a batch [N, ...] with N ≥ 1, got {:?}", x.size()),
        });
    }
    Ok(())
}

/// What the model returned from `method` must be `[n, cols]` (`cols = -1`: any width).
fn check_model_output(t: &Tensor, n: i64, cols: i64, method: &str) -> Result<()> {
    let size = t.size();
    if size.len() != 2 || size[0] != n || (cols >= 0 && size[1] != cols) {
        let want = if cols >= 0 {
            format!("[{n}, {cols}]")
        } else {
            format!("[{n}, D]")
        };
        return Err(SamplerError::InvalidArgument {
            name: "model",
            reason: format!("{method} returned {size:?}, expected {want}"),
        });
    }
    Ok(())
}
