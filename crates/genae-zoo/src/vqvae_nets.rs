//! The encoder and decoder networks of VQ-VAE (van den Oord et al., 2017) and the discretised
//! Gaussian likelihood its bits/dim are measured with.
//!
//! The encoder maps images `[N, C, H, W]` to a grid `[N, d, H/2ˢ, W/2ˢ]` of `d`-dimensional
//! vectors with `s` strided 4×4 convolutions (stride 2, padding 1, each followed by a ReLU), a
//! 3×3 convolution, residual blocks `x + conv₁ₓ₁(ReLU(conv₃ₓ₃(ReLU(x))))`, a ReLU and a 1×1
//! convolution to `d` channels. The decoder mirrors it: a 3×3 convolution from `d` channels,
//! the residual blocks, a ReLU, then `s` transposed 4×4 convolutions (stride 2), the last one
//! to `C` raw channels (the mean of the reconstruction). 28×28 images give a 7×7 grid with two
//! stages, 32×32 images an 8×8 grid.
//!
//! The quantizer between them lives in genae-samplers (which depends on this crate), so these
//! networks know nothing of the codebook; genae-samplers' `VqVae` composes encoder, quantizer
//! and decoder into the model.

use serde::{Deserialize, Serialize};
use tch::{nn, nn::Module, Kind, Tensor};

use crate::{init, Result, ZooError};

/// Widths and depth of [`VqEncoder`] and [`VqDecoder`].
///
/// Every field has a default (a CPU-sized network: 64 hidden channels, 32 in the residual
/// branches, two residual blocks, two stride-2 stages, `d = 16`); unknown TOML fields are
/// rejected.
///
/// ```
/// let config: genae_zoo::VqNetConfig = toml::from_str("hidden_channels = 32\ncode_dim = 8").unwrap();
/// assert_eq!(config.residual_blocks, 2);
/// config.validate([1, 28, 28]).unwrap();
/// assert!(config.validate([1, 30, 30]).unwrap_err().to_string().contains("downsamples"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VqNetConfig {
    /// Channels of the strided convolutions and of the residual trunk (the paper's 256).
    pub hidden_channels: i64,
    /// Channels inside each residual block's branch, between its 3×3 and 1×1 convolutions.
    pub residual_channels: i64,
    /// Residual blocks in the encoder and in the decoder (the paper's 2).
    pub residual_blocks: usize,
    /// Stride-2 stages: the grid side is the image side over `2^downsamples` (the paper's 2).
    pub downsamples: usize,
    /// Dimension `d` of each grid vector (the quantizer's `code_dim`).
    pub code_dim: i64,
}

impl Default for VqNetConfig {
    fn default() -> Self {
        Self {
            hidden_channels: 64,
            residual_channels: 32,
            residual_blocks: 2,
            downsamples: 2,
            code_dim: 16,
        }
    }
}

impl VqNetConfig {
    /// Checks the widths and that `image_shape = [C, H, W]` halves evenly `downsamples` times;
    /// returns the grid side `[H/2ˢ, W/2ˢ]`.
    pub fn validate(&self, image_shape: [i64; 3]) -> Result<[i64; 2]> {
        for (field, v) in [
            ("hidden_channels", self.hidden_channels),
            ("residual_channels", self.residual_channels),
            ("code_dim", self.code_dim),
        ] {
            if v < 1 {
                return Err(ZooError::InvalidConfig {
                    field,
                    reason: format!("must be at least 1, got {v}"),
                });
            }
        }
        if !(1..=6).contains(&self.downsamples) {
            return Err(ZooError::InvalidConfig {
                field: "downsamples",
                reason: format!("must be in 1..=6, got {}", self.downsamples),
            });
        }
        let [c, h, w] = image_shape;
        let factor = 1i64 << self.downsamples;
        if c < 1 || h < factor || w < factor || h % factor != 0 || w % factor != 0 {
            return Err(ZooError::InvalidConfig {
                field: "downsamples",
                reason: format!(
                    "{} stride-2 stages need image sides divisible by {factor}, got shape \
                     {image_shape:?}",
                    self.downsamples
                ),
            });
        }
        Ok([h / factor, w / factor])
    }
}

/// `x + conv₁ₓ₁(ReLU(conv₃ₓ₃(ReLU(x))))`, the residual block of VQ-VAE (channels kept).
#[derive(Debug)]
struct VqResidualBlock {
    conv3: nn::Conv2D,
    conv1: nn::Conv2D,
}

impl VqResidualBlock {
    fn new(path: &nn::Path, channels: i64, inner: i64) -> Self {
        let pad1 = nn::ConvConfig {
            padding: 1,
            ..Default::default()
        };
        Self {
            conv3: init::conv2d(path / "conv3", channels, inner, 3, pad1),
            conv1: init::conv2d(path / "conv1", inner, channels, 1, Default::default()),
        }
    }
}

impl Module for VqResidualBlock {
    fn forward(&self, xs: &Tensor) -> Tensor {
        xs + xs.relu().apply(&self.conv3).relu().apply(&self.conv1)
    }
}

fn stride2() -> nn::ConvConfig {
    nn::ConvConfig {
        stride: 2,
        padding: 1,
        ..Default::default()
    }
}

fn check_images(x: &Tensor, shape: [i64; 3], what: &'static str) -> Result<Tensor> {
    let per_example: i64 = shape.iter().product();
    let n = x.size().first().copied().unwrap_or(0);
    if !x.defined() || x.dim() < 2 || n < 1 || x.numel() as i64 != n * per_example {
        return Err(ZooError::Shape {
            what,
            detail: format!(
                "expected [N, {}, {}, {}] or [N, {per_example}] with N ≥ 1, got {:?}",
                shape[0],
                shape[1],
                shape[2],
                if x.defined() { x.size() } else { vec![] }
            ),
        });
    }
    Ok(x.f_reshape([n, shape[0], shape[1], shape[2]])?)
}

/// The VQ-VAE encoder: images ↦ a grid `[N, d, H/2ˢ, W/2ˢ]` of continuous vectors `z_e`
/// (see the module docs for its layers, named `down{i}`, `conv`, `res{j}`, `out`).
///
/// ```
/// use genae_zoo::{VqEncoder, VqNetConfig};
/// use tch::{nn, Device, Kind, Tensor};
///
/// let vs = nn::VarStore::new(Device::Cpu);
/// let config = VqNetConfig { hidden_channels: 16, residual_channels: 8, code_dim: 4, ..Default::default() };
/// let enc = VqEncoder::new(&vs.root(), [1, 28, 28], &config).unwrap();
/// assert_eq!(enc.grid_shape(), [4, 7, 7]);
/// let x = Tensor::rand([3, 784], (Kind::Float, Device::Cpu)); // flat or [3, 1, 28, 28]
/// assert_eq!(enc.encode(&x).unwrap().size(), vec![3, 4, 7, 7]);
/// ```
#[derive(Debug)]
pub struct VqEncoder {
    down: Vec<nn::Conv2D>,
    conv: nn::Conv2D,
    blocks: Vec<VqResidualBlock>,
    out: nn::Conv2D,
    input_shape: [i64; 3],
    grid_shape: [i64; 3],
}

impl VqEncoder {
    /// An encoder for images of `input_shape = [C, H, W]` (sides divisible by
    /// `2^downsamples`), its layers under `path`.
    pub fn new(path: &nn::Path, input_shape: [i64; 3], config: &VqNetConfig) -> Result<Self> {
        let [gh, gw] = config.validate(input_shape)?;
        let hid = config.hidden_channels;
        let down = (0..config.downsamples)
            .map(|i| {
                let inc = if i == 0 { input_shape[0] } else { hid };
                init::conv2d(path / format!("down{i}"), inc, hid, 4, stride2())
            })
            .collect();
        let pad1 = nn::ConvConfig {
            padding: 1,
            ..Default::default()
        };
        Ok(Self {
            down,
            conv: init::conv2d(path / "conv", hid, hid, 3, pad1),
            blocks: (0..config.residual_blocks)
                .map(|j| {
                    VqResidualBlock::new(&(path / format!("res{j}")), hid, config.residual_channels)
                })
                .collect(),
            out: init::conv2d(path / "out", hid, config.code_dim, 1, Default::default()),
            input_shape,
            grid_shape: [config.code_dim, gh, gw],
        })
    }

    /// The image shape `[C, H, W]` it takes.
    pub fn input_shape(&self) -> [i64; 3] {
        self.input_shape
    }

    /// The output grid `[d, H/2ˢ, W/2ˢ]`.
    pub fn grid_shape(&self) -> [i64; 3] {
        self.grid_shape
    }

    /// `z_e` `[N, d, h, w]` for images `[N, C, H, W]` or flattened `[N, C·H·W]`.
    pub fn encode(&self, x: &Tensor) -> Result<Tensor> {
        let x = check_images(x, self.input_shape, "VqEncoder::encode")?;
        let mut h = x;
        for conv in &self.down {
            h = h.apply(conv).f_relu()?;
        }
        h = h.apply(&self.conv);
        for block in &self.blocks {
            h = block.forward(&h);
        }
        Ok(h.f_relu()?.apply(&self.out))
    }
}

/// The VQ-VAE decoder: a grid `[N, d, h, w]` (quantised vectors) ↦ reconstruction means
/// `[N, C, H, W]` (raw, not squashed), the mirror of [`VqEncoder`] (layers `conv`, `res{j}`,
/// `up{i}`).
///
/// ```
/// use genae_zoo::{VqDecoder, VqNetConfig};
/// use tch::{nn, Device, Kind, Tensor};
///
/// let vs = nn::VarStore::new(Device::Cpu);
/// let config = VqNetConfig { hidden_channels: 16, residual_channels: 8, code_dim: 4, ..Default::default() };
/// let dec = VqDecoder::new(&vs.root(), [3, 32, 32], &config).unwrap();
/// assert_eq!(dec.grid_shape(), [4, 8, 8]);
/// let z = Tensor::randn([2, 4, 8, 8], (Kind::Float, Device::Cpu));
/// assert_eq!(dec.decode(&z).unwrap().size(), vec![2, 3, 32, 32]);
/// ```
#[derive(Debug)]
pub struct VqDecoder {
    conv: nn::Conv2D,
    blocks: Vec<VqResidualBlock>,
    up: Vec<nn::ConvTranspose2D>,
    grid_shape: [i64; 3],
    output_shape: [i64; 3],
    outputs_per_channel: i64,
}

impl VqDecoder {
    /// A decoder to images of `output_shape = [C, H, W]`, its layers under `path`.
    pub fn new(path: &nn::Path, output_shape: [i64; 3], config: &VqNetConfig) -> Result<Self> {
        Self::with_outputs(path, output_shape, config, 1)
    }

    /// A decoder whose output has `outputs_per_channel · C` channels: `k` parameter maps per
    /// image channel, e.g. 2 for a location and a log-scale (a likelihood's
    /// [`num_outputs`](crate::Likelihood::num_outputs)), the first `C` channels the locations.
    pub fn with_outputs(
        path: &nn::Path,
        output_shape: [i64; 3],
        config: &VqNetConfig,
        outputs_per_channel: i64,
    ) -> Result<Self> {
        let [gh, gw] = config.validate(output_shape)?;
        if outputs_per_channel < 1 {
            return Err(ZooError::InvalidConfig {
                field: "outputs_per_channel",
                reason: format!("must be at least 1, got {outputs_per_channel}"),
            });
        }
        let hid = config.hidden_channels;
        let pad1 = nn::ConvConfig {
            padding: 1,
            ..Default::default()
        };
        let n = config.downsamples;
        let up = (0..n)
            .map(|i| {
                let outc = if i + 1 == n {
                    output_shape[0] * outputs_per_channel
                } else {
                    hid
                };
                init::conv_transpose2d(
                    path / format!("up{i}"),
                    hid,
                    outc,
                    4,
                    nn::ConvTransposeConfig {
                        stride: 2,
                        padding: 1,
                        ..Default::default()
                    },
                )
            })
            .collect();
        Ok(Self {
            conv: init::conv2d(path / "conv", config.code_dim, hid, 3, pad1),
            blocks: (0..config.residual_blocks)
                .map(|j| {
                    VqResidualBlock::new(&(path / format!("res{j}")), hid, config.residual_channels)
                })
                .collect(),
            up,
            grid_shape: [config.code_dim, gh, gw],
            output_shape,
            outputs_per_channel,
        })
    }

    /// Parameter maps per image channel (1 for [`VqDecoder::new`]).
    pub fn outputs_per_channel(&self) -> i64 {
        self.outputs_per_channel
    }

    /// The grid `[d, h, w]` it takes.
    pub fn grid_shape(&self) -> [i64; 3] {
        self.grid_shape
    }

    /// The image shape `[C, H, W]` it produces.
    pub fn output_shape(&self) -> [i64; 3] {
        self.output_shape
    }

    /// Raw outputs `[N, k·C, H, W]` of a grid `[N, d, h, w]` (`k` =
    /// [`outputs_per_channel`](Self::outputs_per_channel)): the reconstruction means when
    /// `k = 1`.
    pub fn decode(&self, z: &Tensor) -> Result<Tensor> {
        let z = check_images(z, self.grid_shape, "VqDecoder::decode")?;
        let mut h = z.apply(&self.conv);
        for block in &self.blocks {
            h = block.forward(&h);
        }
        h = h.f_relu()?;
        let last = self.up.len() - 1;
        for (i, conv) in self.up.iter().enumerate() {
            h = h.apply(conv);
            if i < last {
                h = h.f_relu()?;
            }
        }
        Ok(h)
    }
}

/// `log P(x | μ, σ)` of 8-bit data under the discretised Gaussian, summed over every dimension
/// but the first (one number per example, nats), computed in `Double`.
///
/// The data `x ∈ {0, 1/255, …, 1}` (the grey levels as genae loads them) fall in bins of width
/// `1/255` centred on the levels; a level's probability is the mass `Φ((x + δ − μ)/σ) −
/// Φ((x − δ − μ)/σ)` of `N(μ, σ²)` over its bin (`δ = 1/510`), with the bins of 0 and 1
/// extended to `−∞` and `+∞`, so the 256 probabilities sum to one for any `μ` (a proper
/// distribution over the data, whose `−log₂` per pixel is the usual bits/dim). Where a bin's
/// mass underflows (a level far in a tail), the mass is replaced by density × width.
///
/// ```
/// use tch::{Kind, Tensor};
/// // With μ = 0.5 and σ = 0.1 the 256 probabilities sum to one.
/// let levels = Tensor::arange(256, (Kind::Double, tch::Device::Cpu)) / 255.0;
/// let mu = Tensor::full([256], 0.5, (Kind::Double, tch::Device::Cpu));
/// let lp = genae_zoo::discretized_gaussian_log_prob(&mu.view([256, 1]), 0.1, &levels.view([256, 1])).unwrap();
/// assert!((lp.exp().sum(Kind::Double).double_value(&[]) - 1.0).abs() < 1e-9);
/// ```
pub fn discretized_gaussian_log_prob(mean: &Tensor, sigma: f64, x: &Tensor) -> Result<Tensor> {
    if !(sigma.is_finite() && sigma > 0.0) {
        return Err(ZooError::InvalidConfig {
            field: "sigma",
            reason: format!("must be positive and finite, got {sigma}"),
        });
    }
    if !mean.defined() || !x.defined() || mean.size() != x.size() || x.dim() < 1 {
        return Err(ZooError::Shape {
            what: "discretized_gaussian_log_prob",
            detail: format!(
                "mean {:?} and data {:?} must have the same shape [N, ...]",
                if mean.defined() { mean.size() } else { vec![] },
                if x.defined() { x.size() } else { vec![] }
            ),
        });
    }
    let half = 0.5 / 255.0;
    let mu = mean.f_to_kind(Kind::Double)?;
    let x = x.f_to_kind(Kind::Double)?;
    let lo = x.f_sub_scalar(half)?.f_sub(&mu)?.f_div_scalar(sigma)?;
    let hi = x.f_add_scalar(half)?.f_sub(&mu)?.f_div_scalar(sigma)?;
    // Mass between lo and hi, taken from the nearer tail so that it keeps its precision.
    let right_tail = lo.f_gt(0.0)?;
    let mass = lo
        .f_neg()?
        .f_special_ndtr()?
        .f_sub(&hi.f_neg()?.f_special_ndtr()?)?
        .f_where_self(
            &right_tail,
            &hi.f_special_ndtr()?.f_sub(&lo.f_special_ndtr()?)?,
        )?;
    let centre = x.f_sub(&mu)?.f_div_scalar(sigma)?;
    let log_density_times_width = centre
        .f_square()?
        .f_mul_scalar(-0.5)?
        .f_add_scalar((2.0 * half / sigma).ln() - 0.5 * genae_tensor::LOG_2PI)?;
    let middle = mass
        .f_clamp_min(1e-300)?
        .f_log()?
        .f_where_self(&mass.f_gt(1e-12)?, &log_density_times_width)?;
    let first = hi.f_special_log_ndtr()?;
    let last = lo.f_neg()?.f_special_log_ndtr()?;
    let is_first = x.f_lt(half)?;
    let is_last = x.f_gt(1.0 - half)?;
    let lp = first.f_where_self(&is_first, &last.f_where_self(&is_last, &middle)?)?;
    Ok(genae_tensor::sum_except_batch(&lp))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    fn levels() -> Tensor {
        Tensor::arange(256, (Kind::Double, Device::Cpu)) / 255.0
    }

    #[test]
    fn discretized_gaussian_sums_to_one_and_matches_the_cdf() {
        let _rng = crate::torch_rng_lock();
        for (mu, sigma) in [
            (0.5, 0.1),
            (0.0, 0.02),
            (1.3, 0.3),
            (-0.2, 0.001),
            (0.37, 1e-4),
        ] {
            let m = Tensor::full([256, 1], mu, (Kind::Double, Device::Cpu));
            let lp = discretized_gaussian_log_prob(&m, sigma, &levels().view([256, 1])).unwrap();
            let total = lp.exp().sum(Kind::Double).double_value(&[]);
            assert!((total - 1.0).abs() < 1e-9, "μ {mu} σ {sigma}: {total}");
            // An interior level by hand: Φ((x+δ−μ)/σ) − Φ((x−δ−μ)/σ) with erf from f64 maths.
            let k = 100usize;
            let x = k as f64 / 255.0;
            let phi = |t: f64| {
                Tensor::from_slice(&[t / std::f64::consts::SQRT_2])
                    .erf()
                    .double_value(&[0])
                    * 0.5
                    + 0.5
            };
            let want = phi((x + 0.5 / 255.0 - mu) / sigma) - phi((x - 0.5 / 255.0 - mu) / sigma);
            let got = lp.double_value(&[k as i64]).exp();
            if want > 1e-12 {
                assert!(
                    (got - want).abs() < 1e-9 * want.max(1e-3),
                    "{got} vs {want}"
                );
            } else {
                assert!(got < 1e-11, "{got}");
            }
        }
    }

    #[test]
    fn discretized_gaussian_tail_is_finite_and_rejects_bad_input() {
        let _rng = crate::torch_rng_lock();
        let m = Tensor::from_slice(&[0.0f64, 0.0]).view([1, 2]);
        let x = Tensor::from_slice(&[0.6f64, 1.0]).view([1, 2]);
        let lp = discretized_gaussian_log_prob(&m, 0.01, &x).unwrap();
        let v = lp.double_value(&[0]);
        assert!(v.is_finite() && v < -1000.0, "{v}");
        assert!(discretized_gaussian_log_prob(&m, 0.0, &x).is_err());
        assert!(discretized_gaussian_log_prob(&m, 0.1, &x.view([2, 1]).narrow(0, 0, 1)).is_err());
    }

    #[test]
    fn networks_round_trip_shapes_and_reject_bad_input() {
        let _rng = crate::torch_rng_lock();
        let vs = nn::VarStore::new(Device::Cpu);
        let config = VqNetConfig {
            hidden_channels: 8,
            residual_channels: 4,
            code_dim: 3,
            ..Default::default()
        };
        let enc = VqEncoder::new(&(vs.root() / "e"), [1, 28, 28], &config).unwrap();
        let dec = VqDecoder::new(&(vs.root() / "d"), [1, 28, 28], &config).unwrap();
        let x = Tensor::rand([2, 1, 28, 28], (Kind::Float, Device::Cpu));
        let z = enc.encode(&x).unwrap();
        assert_eq!(z.size(), [2, 3, 7, 7]);
        assert_eq!(dec.decode(&z).unwrap().size(), [2, 1, 28, 28]);
        assert!(enc
            .encode(&Tensor::rand([2, 100], (Kind::Float, Device::Cpu)))
            .is_err());
        assert!(dec
            .decode(&Tensor::rand([2, 3, 8, 8], (Kind::Float, Device::Cpu)))
            .is_err());
        let three = VqNetConfig {
            downsamples: 3,
            ..config
        };
        let enc = VqEncoder::new(&(vs.root() / "e3"), [3, 32, 32], &three).unwrap();
        assert_eq!(enc.grid_shape(), [3, 4, 4]);
        assert!(VqEncoder::new(&(vs.root() / "bad"), [1, 28, 28], &three).is_err());
    }
}
