//! Convolutional building blocks: residual blocks, a stride-2 convolutional encoder and the
//! mirrored transposed-convolution decoder.
//!
//! Each stride-2 stage maps a side `s` to `⌈s/2⌉`: a 4×4 kernel (padding 1) for even `s`, a
//! 3×3 kernel (padding 1) for odd `s`. The transposed convolution with the same kernel,
//! stride and padding maps `⌈s/2⌉` back to exactly `s`, so 28 → 14 → 7 → 4 is undone as
//! 4 → 7 → 14 → 28.

use tch::{nn, nn::Module, Tensor};

use crate::config::{validate_channels, validate_conv_shape};
use crate::{init, Activation, Result, ZooError};

/// The kernel of the stride-2 stage applied to a side of `size`.
fn stage_kernel(size: i64) -> i64 {
    if size % 2 == 0 {
        4
    } else {
        3
    }
}

/// The sides before each stage and after the last: `[H, ⌈H/2⌉, …]`, `stages + 1` entries.
fn stage_sides(side: i64, stages: usize) -> Vec<i64> {
    let mut sides = vec![side];
    for _ in 0..stages {
        let s = *sides.last().expect("non-empty");
        sides.push((s + 1) / 2);
    }
    sides
}

/// Reshapes `[N, ...]` holding `C·H·W` values per example to `[N, C, H, W]`.
fn to_image(x: &Tensor, shape: [i64; 3], what: &'static str) -> Result<Tensor> {
    let per_example: i64 = shape.iter().product();
    let n = x.size().first().copied().unwrap_or(0);
    if x.dim() < 2 || x.numel() as i64 != n * per_example {
        return Err(ZooError::Shape {
            what,
            detail: format!(
                "expected [N, {}, {}, {}] (or [N, {per_example}]), got {:?}",
                shape[0],
                shape[1],
                shape[2],
                x.size()
            ),
        });
    }
    Ok(x.f_reshape([n, shape[0], shape[1], shape[2]])?)
}

/// `x + conv₂(act(conv₁(act(x))))` with two 3×3 convolutions that keep the channel count and
/// the image size (pre-activation residual block).
///
/// ```
/// use genae_zoo::{Activation, ResidualBlock};
/// use tch::{nn, nn::Module, Device, Kind, Tensor};
///
/// let vs = nn::VarStore::new(Device::Cpu);
/// let block = ResidualBlock::new(&vs.root(), 8, Activation::Relu);
/// let x = Tensor::randn([2, 8, 7, 7], (Kind::Float, Device::Cpu));
/// assert_eq!(block.forward(&x).size(), vec![2, 8, 7, 7]);
/// ```
#[derive(Debug)]
pub struct ResidualBlock {
    conv1: nn::Conv2D,
    conv2: nn::Conv2D,
    activation: Activation,
}

impl ResidualBlock {
    /// A block on `channels` channels, its convolutions named `conv1`, `conv2` under `path`.
    pub fn new(path: &nn::Path, channels: i64, activation: Activation) -> Self {
        let config = nn::ConvConfig {
            padding: 1,
            ..Default::default()
        };
        Self {
            conv1: init::conv2d(path / "conv1", channels, channels, 3, config),
            conv2: init::conv2d(path / "conv2", channels, channels, 3, config),
            activation,
        }
    }
}

impl Module for ResidualBlock {
    fn forward(&self, xs: &Tensor) -> Tensor {
        let h = self.activation.apply(xs).apply(&self.conv1);
        xs + self.activation.apply(&h).apply(&self.conv2)
    }
}

/// Images `[N, C, H, W]` ↦ flattened features `[N, F]`: one stride-2 convolution (and its
/// nonlinearity) per entry of `channels`, each followed by `residual_blocks` [`ResidualBlock`]s.
/// Layers are named `down{i}` and `res{i}_{j}` under `path`.
///
/// ```
/// use genae_zoo::{Activation, ConvEncoder};
/// use tch::{nn, Device, Kind, Tensor};
///
/// let vs = nn::VarStore::new(Device::Cpu);
/// let enc = ConvEncoder::new(&vs.root(), [1, 28, 28], &[32, 64], 1, Activation::Relu).unwrap();
/// assert_eq!(enc.feature_shape(), [64, 7, 7]);
/// let x = Tensor::rand([5, 784], (Kind::Float, Device::Cpu)); // flat or [5, 1, 28, 28]
/// assert_eq!(enc.encode(&x).unwrap().size(), vec![5, 64 * 7 * 7]);
/// ```
#[derive(Debug)]
pub struct ConvEncoder {
    stages: Vec<(nn::Conv2D, Vec<ResidualBlock>)>,
    activation: Activation,
    input_shape: [i64; 3],
    feature_shape: [i64; 3],
}

impl ConvEncoder {
    /// An encoder for `[C, H, W]` images (`H = W` one of
    /// [`CONV_IMAGE_SIZES`](crate::CONV_IMAGE_SIZES)).
    pub fn new(
        path: &nn::Path,
        input_shape: [i64; 3],
        channels: &[i64],
        residual_blocks: usize,
        activation: Activation,
    ) -> Result<Self> {
        validate_conv_shape(input_shape)?;
        validate_channels(channels)?;
        let sides = stage_sides(input_shape[1], channels.len());
        let mut stages = Vec::with_capacity(channels.len());
        let mut in_channels = input_shape[0];
        for (i, &out_channels) in channels.iter().enumerate() {
            let conv = init::conv2d(
                path / format!("down{i}"),
                in_channels,
                out_channels,
                stage_kernel(sides[i]),
                nn::ConvConfig {
                    stride: 2,
                    padding: 1,
                    ..Default::default()
                },
            );
            let blocks = (0..residual_blocks)
                .map(|j| {
                    ResidualBlock::new(&(path / format!("res{i}_{j}")), out_channels, activation)
                })
                .collect();
            stages.push((conv, blocks));
            in_channels = out_channels;
        }
        let side = *sides.last().expect("non-empty");
        Ok(Self {
            stages,
            activation,
            input_shape,
            feature_shape: [in_channels, side, side],
        })
    }

    /// The image shape `[C, H, W]` it takes.
    pub fn input_shape(&self) -> [i64; 3] {
        self.input_shape
    }

    /// The shape `[channels, side, side]` of the last feature map.
    pub fn feature_shape(&self) -> [i64; 3] {
        self.feature_shape
    }

    /// The number of features per example, `F = Π feature_shape`.
    pub fn output_dim(&self) -> i64 {
        self.feature_shape.iter().product()
    }

    /// Features `[N, F]` for images given as `[N, C, H, W]` or flattened `[N, C·H·W]`.
    pub fn encode(&self, x: &Tensor) -> Result<Tensor> {
        Ok(self.forward(&to_image(x, self.input_shape, "encode")?))
    }
}

impl Module for ConvEncoder {
    /// `[N, C, H, W]` ↦ `[N, F]`.
    fn forward(&self, xs: &Tensor) -> Tensor {
        let mut h = xs.shallow_clone();
        for (conv, blocks) in &self.stages {
            h = self.activation.apply(&h.apply(conv));
            for block in blocks {
                h = block.forward(&h);
            }
        }
        h.flatten(1, -1)
    }
}

/// Feature maps `[N, c, s, s]` (or flattened `[N, c·s·s]`) ↦ images `[N, C, H, W]`: the mirror
/// of a [`ConvEncoder`] with the same `channels`. For each stage from the deepest:
/// `residual_blocks` [`ResidualBlock`]s, then a stride-2 transposed convolution (with the
/// nonlinearity, except after the last, which outputs `C` raw channels). Layers are named
/// `res{i}_{j}` and `up{i}` under `path` (stage `i` undoes the encoder's `down{i}`).
///
/// ```
/// use genae_zoo::{Activation, ConvDecoder};
/// use tch::{nn, Device, Kind, Tensor};
///
/// let vs = nn::VarStore::new(Device::Cpu);
/// let dec = ConvDecoder::new(&vs.root(), [3, 28, 28], &[32, 64], 0, Activation::Relu).unwrap();
/// assert_eq!(dec.input_shape(), [64, 7, 7]);
/// let h = Tensor::randn([2, 64 * 7 * 7], (Kind::Float, Device::Cpu));
/// assert_eq!(dec.decode(&h).unwrap().size(), vec![2, 3, 28, 28]);
/// ```
#[derive(Debug)]
pub struct ConvDecoder {
    stages: Vec<(Vec<ResidualBlock>, nn::ConvTranspose2D)>,
    activation: Activation,
    input_shape: [i64; 3],
    output_shape: [i64; 3],
}

impl ConvDecoder {
    /// A decoder to `output_shape = [C, H, W]` (`H = W` one of
    /// [`CONV_IMAGE_SIZES`](crate::CONV_IMAGE_SIZES)); `channels` are listed in encoder order.
    pub fn new(
        path: &nn::Path,
        output_shape: [i64; 3],
        channels: &[i64],
        residual_blocks: usize,
        activation: Activation,
    ) -> Result<Self> {
        validate_conv_shape(output_shape)?;
        validate_channels(channels)?;
        let sides = stage_sides(output_shape[1], channels.len());
        let mut stages = Vec::with_capacity(channels.len());
        for i in (0..channels.len()).rev() {
            let blocks = (0..residual_blocks)
                .map(|j| {
                    ResidualBlock::new(&(path / format!("res{i}_{j}")), channels[i], activation)
                })
                .collect();
            let out_channels = if i == 0 {
                output_shape[0]
            } else {
                channels[i - 1]
            };
            let conv = init::conv_transpose2d(
                path / format!("up{i}"),
                channels[i],
                out_channels,
                stage_kernel(sides[i]),
                nn::ConvTransposeConfig {
                    stride: 2,
                    padding: 1,
                    ..Default::default()
                },
            );
            stages.push((blocks, conv));
        }
        let side = *sides.last().expect("non-empty");
        Ok(Self {
            stages,
            activation,
            input_shape: [*channels.last().expect("non-empty"), side, side],
            output_shape,
        })
    }

    /// The feature-map shape `[c, s, s]` it takes (the matching encoder's `feature_shape`).
    pub fn input_shape(&self) -> [i64; 3] {
        self.input_shape
    }

    /// The number of input values per example, `Π input_shape`.
    pub fn input_dim(&self) -> i64 {
        self.input_shape.iter().product()
    }

    /// The image shape `[C, H, W]` it produces.
    pub fn output_shape(&self) -> [i64; 3] {
        self.output_shape
    }

    /// Images `[N, C, H, W]` for feature maps `[N, c, s, s]` or flattened `[N, c·s·s]`.
    pub fn decode(&self, h: &Tensor) -> Result<Tensor> {
        Ok(self.forward(&to_image(h, self.input_shape, "decode")?))
    }
}

impl Module for ConvDecoder {
    /// `[N, c, s, s]` ↦ `[N, C, H, W]`.
    fn forward(&self, xs: &Tensor) -> Tensor {
        let last = self.stages.len() - 1;
        let mut h = xs.shallow_clone();
        for (k, (blocks, conv)) in self.stages.iter().enumerate() {
            for block in blocks {
                h = block.forward(&h);
            }
            h = h.apply(conv);
            if k < last {
                h = self.activation.apply(&h);
            }
        }
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stage_geometry_round_trips() {
        let _rng = crate::torch_rng_lock();
        assert_eq!(stage_sides(28, 3), vec![28, 14, 7, 4]);
        assert_eq!(stage_sides(64, 2), vec![64, 32, 16]);
        assert_eq!(stage_kernel(7), 3);
        assert_eq!(stage_kernel(14), 4);
    }
}
