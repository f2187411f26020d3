//! A gated PixelCNN (van den Oord et al., 2016, "Conditional Image Generation with PixelCNN
//! Decoders") over grids of integer codes: the autoregressive prior of VQ-VAE.
//!
//! The codes `[N, H, W]` (values in `0..K`) are embedded to `C` channels and run through
//! gated layers, each with two stacks:
//!
//! - the **vertical stack** sees a `(k/2 + 1) × k` window ending on the current row: rows
//!   `i − k/2 ..= i`, columns `j − k/2 ..= j + k/2`;
//! - the **horizontal stack** sees a `1 × (k/2 + 1)` window ending on the current column of the
//!   current row (type B), or the `k/2` columns strictly before it (type A: the first layer,
//!   which must not see the code it predicts), plus the vertical stack's pre-activation
//!   **shifted down by one row** through a 1×1 convolution, so it receives only rows above.
//!
//! Both go through the gate `tanh(a) ⊙ σ(b)` (the `2C` pre-activation split in halves); the
//! horizontal output passes a 1×1 convolution and, from the second layer on, a residual
//! connection. Masking by padding and cropping instead of zeroed kernel weights, the two
//! stacks together see every earlier position in raster order within their reach, without the
//! blind spot of the original PixelCNN's masked 3×3 kernels: after `L` layers a position sees
//! the `L + 1` rows above (`L·k/2` columns to each side) and `L·k/2` positions to its left.
//!
//! Output: ReLU, a 1×1 convolution, ReLU, a 1×1 convolution to `K` logits per position.

use serde::{Deserialize, Serialize};
use tch::{nn, Kind, Tensor};

use crate::{init, Result, ZooError};

/// Hyper-parameters of [`GatedPixelCnn`]; every field has a default, unknown TOML fields are
/// rejected.
///
/// ```
/// let config: genae_zoo::PixelCnnConfig = toml::from_str("num_codes = 64\nlayers = 4").unwrap();
/// assert_eq!(config.kernel_size, 3);
/// config.validate().unwrap();
/// let even = genae_zoo::PixelCnnConfig { kernel_size: 4, ..config };
/// assert!(even.validate().unwrap_err().to_string().contains("kernel_size"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PixelCnnConfig {
    /// Number of codes `K` (the output has `K` logits per position).
    pub num_codes: i64,
    /// Channels `C` of the embedding and of both stacks.
    pub channels: i64,
    /// Gated layers (the first of type A, the rest of type B); at least 1.
    pub layers: usize,
    /// Kernel side `k` (odd, ≥ 3) of the vertical stack; the horizontal stack spans
    /// `k/2 + 1` columns.
    pub kernel_size: i64,
    /// Channels of the hidden 1×1 output layer.
    pub output_channels: i64,
}

impl Default for PixelCnnConfig {
    fn default() -> Self {
        Self {
            num_codes: 512,
            channels: 64,
            layers: 8,
            kernel_size: 3,
            output_channels: 128,
        }
    }
}

impl PixelCnnConfig {
    /// Checks every field, naming the first bad one.
    pub fn validate(&self) -> Result<()> {
        for (field, v) in [
            ("num_codes", self.num_codes),
            ("channels", self.channels),
            ("output_channels", self.output_channels),
            ("layers", self.layers as i64),
        ] {
            if v < 1 {
                return Err(ZooError::InvalidConfig {
                    field,
                    reason: format!("must be at least 1, got {v}"),
                });
            }
        }
        if self.kernel_size < 3 || self.kernel_size % 2 == 0 {
            return Err(ZooError::InvalidConfig {
                field: "kernel_size",
                reason: format!("must be odd and at least 3, got {}", self.kernel_size),
            });
        }
        Ok(())
    }
}

/// One gated layer: vertical and horizontal convolutions, the vertical-to-horizontal link and
/// the horizontal output projection.
#[derive(Debug)]
struct GatedLayer {
    vertical: nn::Conv2D,
    horizontal: nn::Conv2D,
    link: nn::Conv2D,
    h_out: nn::Conv2D,
    /// Type A (the first layer): the horizontal window stops before the current column and
    /// there is no residual connection.
    type_a: bool,
    half: i64,
}

/// A convolution with a rectangular `[kh, kw]` kernel, stride 1, no padding.
fn rect_conv(path: nn::Path, c_in: i64, c_out: i64, kernel: [i64; 2]) -> nn::Conv2D {
    init::conv2d_rect(path, c_in, c_out, kernel, Default::default())
}

impl GatedLayer {
    fn new(path: &nn::Path, c: i64, k: i64, type_a: bool) -> Self {
        let half = k / 2;
        let hw = if type_a { half } else { half + 1 };
        Self {
            vertical: rect_conv(path / "vertical", c, 2 * c, [half + 1, k]),
            horizontal: rect_conv(path / "horizontal", c, 2 * c, [1, hw]),
            link: init::conv2d(path / "link", 2 * c, 2 * c, 1, Default::default()),
            h_out: init::conv2d(path / "h_out", c, c, 1, Default::default()),
            type_a,
            half,
        }
    }

    fn gate(x: &Tensor) -> Result<Tensor> {
        let parts = x.f_chunk(2, 1)?;
        Ok(parts[0].f_tanh()?.f_mul(&parts[1].f_sigmoid()?)?)
    }

    /// `(v, h)` ↦ `(v', h')`, both `[N, C, H, W]`.
    fn forward(&self, v: &Tensor, h: &Tensor) -> Result<(Tensor, Tensor)> {
        let (rows, cols) = (v.size()[2], v.size()[3]);
        let half = self.half;
        // Vertical: pad `half` rows on top and `half` columns on each side; a (half+1) × k
        // kernel then covers rows i−half..=i, columns j−half..=j+half.
        let v_pre = v
            .f_constant_pad_nd([half, half, half, 0])?
            .apply(&self.vertical);
        // Down-shift by one row: the horizontal stack at row i gets the vertical stack of row
        // i − 1 (which itself saw rows ≤ i − 1 only).
        let shifted = v_pre
            .f_constant_pad_nd([0, 0, 1, 0])?
            .f_narrow(2, 0, rows)?;
        let link = shifted.apply(&self.link);
        // Horizontal: type B pads `half` on the left, the kernel of width half+1 covers
        // j−half..=j; type A pads `half` on the left, the kernel of width half covers
        // j−half..=j−1, and the extra last output column (which would see j) is dropped.
        let h_pre = if self.type_a {
            h.f_constant_pad_nd([half, 0, 0, 0])?
                .apply(&self.horizontal)
                .f_narrow(3, 0, cols)?
        } else {
            h.f_constant_pad_nd([half, 0, 0, 0])?
                .apply(&self.horizontal)
        };
        let v_out = Self::gate(&v_pre)?;
        let h_gated = Self::gate(&h_pre.f_add(&link)?)?.apply(&self.h_out);
        let h_out = if self.type_a {
            h_gated
        } else {
            h_gated.f_add(h)?
        };
        Ok((v_out, h_out))
    }
}

/// A gated PixelCNN over `[N, H, W]` grids of codes in `0..K` (see the module docs).
///
/// ```
/// use genae_zoo::{GatedPixelCnn, PixelCnnConfig};
/// use tch::{nn, Device, Kind, Tensor};
///
/// let vs = nn::VarStore::new(Device::Cpu);
/// let config = PixelCnnConfig { num_codes: 8, channels: 16, layers: 3, output_channels: 16, ..Default::default() };
/// let prior = GatedPixelCnn::new(&vs.root(), &config).unwrap();
/// let codes = Tensor::randint(8, [2, 5, 5], (Kind::Int64, Device::Cpu));
/// assert_eq!(prior.logits(&codes).unwrap().size(), vec![2, 8, 5, 5]);
/// let nll = prior.nll(&codes).unwrap(); // nats per grid, [2]
/// assert_eq!(nll.size(), vec![2]);
/// let grids = prior.sample(4, [5, 5], 7, Device::Cpu).unwrap();
/// assert_eq!(grids.size(), vec![4, 5, 5]);
/// assert!(grids.equal(&prior.sample(4, [5, 5], 7, Device::Cpu).unwrap()));
/// ```
#[derive(Debug)]
pub struct GatedPixelCnn {
    config: PixelCnnConfig,
    embedding: nn::Embedding,
    layers: Vec<GatedLayer>,
    out1: nn::Conv2D,
    out2: nn::Conv2D,
}

impl GatedPixelCnn {
    /// Builds the network under `path` (layers `embedding`, `layer{i}`, `out1`, `out2`).
    pub fn new(path: &nn::Path, config: &PixelCnnConfig) -> Result<Self> {
        config.validate()?;
        let c = config.channels;
        Ok(Self {
            config: config.clone(),
            embedding: nn::embedding(path / "embedding", config.num_codes, c, Default::default()),
            layers: (0..config.layers)
                .map(|i| {
                    GatedLayer::new(&(path / format!("layer{i}")), c, config.kernel_size, i == 0)
                })
                .collect(),
            out1: init::conv2d(
                path / "out1",
                c,
                config.output_channels,
                1,
                Default::default(),
            ),
            out2: init::conv2d(
                path / "out2",
                config.output_channels,
                config.num_codes,
                1,
                Default::default(),
            ),
        })
    }

    /// The config it was built with.
    pub fn config(&self) -> &PixelCnnConfig {
        &self.config
    }

    fn check_codes(&self, codes: &Tensor) -> Result<()> {
        let bad = |detail: String| ZooError::Shape {
            what: "GatedPixelCnn",
            detail,
        };
        if !codes.defined() || codes.dim() != 3 || codes.numel() == 0 {
            return Err(bad(format!(
                "codes must be a non-empty [N, H, W] grid, got {:?}",
                if codes.defined() {
                    codes.size()
                } else {
                    vec![]
                }
            )));
        }
        if codes.kind() != Kind::Int64 {
            return Err(bad(format!("codes must be Int64, got {:?}", codes.kind())));
        }
        let (lo, hi) = (
            codes.f_min()?.f_int64_value(&[])?,
            codes.f_max()?.f_int64_value(&[])?,
        );
        if lo < 0 || hi >= self.config.num_codes {
            return Err(bad(format!(
                "codes must lie in 0..{}, found values in {lo}..={hi}",
                self.config.num_codes
            )));
        }
        Ok(())
    }

    /// Logits `[N, K, H, W]` of `p(code_{i} | codes before i in raster order)` for every
    /// position of `codes` (`Int64`, `[N, H, W]`, values in `0..K`).
    pub fn logits(&self, codes: &Tensor) -> Result<Tensor> {
        self.check_codes(codes)?;
        // [N, H, W, C] → [N, C, H, W]
        let x = codes.apply(&self.embedding).f_permute([0, 3, 1, 2])?;
        let (mut v, mut h) = (x.shallow_clone(), x);
        for layer in &self.layers {
            (v, h) = layer.forward(&v, &h)?;
        }
        Ok(h.f_relu()?.apply(&self.out1).f_relu()?.apply(&self.out2))
    }

    /// `−log p(codes)` per grid (nats, `[N]`): the summed cross-entropy of every position.
    pub fn nll(&self, codes: &Tensor) -> Result<Tensor> {
        let logits = self.logits(codes)?;
        let log_p = logits.f_log_softmax(1, Kind::Float)?;
        let picked = log_p.f_gather(1, &codes.f_unsqueeze(1)?, false)?;
        Ok(picked
            .f_neg()?
            .f_flatten(1, -1)?
            .f_sum_dim_intlist(1, false, None::<Kind>)?)
    }

    /// `n` grids of side `[H, W]` drawn ancestrally, position by position in raster order
    /// (`H·W` passes of the network, no gradients). The categorical draws come from a
    /// SplitMix64 stream seeded by `seed`, not from libtorch's generator, so the same seed
    /// gives the same grids whatever else uses libtorch's RNG.
    pub fn sample(&self, n: i64, grid: [i64; 2], seed: u64, device: tch::Device) -> Result<Tensor> {
        let [rows, cols] = grid;
        if n < 1 || rows < 1 || cols < 1 {
            return Err(ZooError::Shape {
                what: "GatedPixelCnn::sample",
                detail: format!("need n ≥ 1 and a non-empty grid, got n = {n}, grid {grid:?}"),
            });
        }
        let mut rng = SplitMix64(seed);
        let k = self.config.num_codes as usize;
        let codes = Tensor::f_zeros([n, rows, cols], (Kind::Int64, device))?;
        tch::no_grad(|| -> Result<()> {
            for i in 0..rows {
                for j in 0..cols {
                    let probs = self
                        .logits(&codes)?
                        .f_select(3, j)?
                        .f_select(2, i)?
                        .f_softmax(1, Kind::Double)?
                        .f_to_device(tch::Device::Cpu)?
                        .f_contiguous()?;
                    let probs = Vec::<f64>::try_from(&probs.f_view([-1])?)?;
                    let drawn: Vec<i64> = probs
                        .chunks_exact(k)
                        .map(|p| draw_categorical(p, rng.uniform()))
                        .collect();
                    let column = Tensor::from_slice(&drawn).f_to_device(device)?;
                    codes.f_select(2, j)?.f_select(1, i)?.f_copy_(&column)?;
                }
            }
            Ok(())
        })?;
        Ok(codes)
    }
}

/// The index `k` with `Σ_{j<k} p_j ≤ u < Σ_{j≤k} p_j` (the last index with positive mass when
/// rounding leaves `u` beyond the total).
fn draw_categorical(p: &[f64], u: f64) -> i64 {
    let total: f64 = p.iter().sum();
    let target = u * total;
    let mut acc = 0.0;
    let mut last_positive = 0;
    for (k, &pk) in p.iter().enumerate() {
        if pk > 0.0 {
            last_positive = k;
        }
        acc += pk;
        if target < acc {
            return k as i64;
        }
    }
    last_positive as i64
}

/// SplitMix64 (Steele, Lea & Flood 2014): a small seeded generator for the categorical draws.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)` with 53 random bits.
    fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    #[test]
    fn categorical_draws_follow_the_cumulative_sums() {
        let _rng = crate::torch_rng_lock();
        let p = [0.2, 0.0, 0.5, 0.3];
        assert_eq!(draw_categorical(&p, 0.0), 0);
        assert_eq!(draw_categorical(&p, 0.19), 0);
        assert_eq!(draw_categorical(&p, 0.2), 2);
        assert_eq!(draw_categorical(&p, 0.69), 2);
        assert_eq!(draw_categorical(&p, 0.71), 3);
        assert_eq!(draw_categorical(&[0.5, 0.5, 0.0], 1.0), 1);
        // Frequencies of many draws match p.
        let mut rng = SplitMix64(3);
        let mut counts = [0usize; 4];
        for _ in 0..100_000 {
            counts[draw_categorical(&p, rng.uniform()) as usize] += 1;
        }
        for (c, want) in counts.iter().zip(p) {
            assert!((*c as f64 / 1e5 - want).abs() < 0.01, "{counts:?}");
        }
    }

    #[test]
    fn bad_codes_are_rejected() {
        let _rng = crate::torch_rng_lock();
        let vs = nn::VarStore::new(Device::Cpu);
        let config = PixelCnnConfig {
            num_codes: 4,
            channels: 4,
            layers: 1,
            output_channels: 4,
            ..Default::default()
        };
        let prior = GatedPixelCnn::new(&vs.root(), &config).unwrap();
        let opts = (Kind::Int64, Device::Cpu);
        assert!(prior.logits(&Tensor::full([1, 3, 3], 4, opts)).is_err());
        assert!(prior.logits(&Tensor::full([1, 3, 3], -1, opts)).is_err());
        assert!(prior.logits(&Tensor::zeros([3, 3], opts)).is_err());
        assert!(prior
            .logits(&Tensor::zeros([1, 3, 3], (Kind::Float, Device::Cpu)))
            .is_err());
        assert!(prior.sample(0, [3, 3], 0, Device::Cpu).is_err());
    }
}
