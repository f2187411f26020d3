//! Encoders and the decoder, built from a [`VaeConfig`] with either architecture.

use genae_tensor::DiagGaussian;
use tch::{nn, nn::Module, Tensor};

use crate::{
    init, Activation, Architecture, ConvDecoder, ConvEncoder, DecoderDistribution,
    GenerativeDecoder, Likelihood, Mlp, Result, VaeConfig, ZooError,
};

/// Flattens `[N, ...]` to `[N, D]` and checks `D`.
pub(crate) fn flatten_input(x: &Tensor, expected: i64, what: &'static str) -> Result<Tensor> {
    let shape_error = || ZooError::Shape {
        what,
        detail: format!(
            "expected [N, {expected}] (or [N, ...] with {expected} values per example), got {:?}",
            x.size()
        ),
    };
    if x.dim() < 2 {
        return Err(shape_error());
    }
    let flat = x.f_flatten(1, -1)?;
    if flat.size()[1] != expected {
        return Err(shape_error());
    }
    Ok(flat)
}

/// Checks that `z` is `[N, latent_dim]`.
fn check_codes(z: &Tensor, latent_dim: i64) -> Result<()> {
    if z.dim() != 2 || z.size()[1] != latent_dim {
        return Err(ZooError::Shape {
            what: "decode",
            detail: format!("expected z of shape [N, {latent_dim}], got {:?}", z.size()),
        });
    }
    Ok(())
}

/// The encoder body: data `[N, ...]` ↦ features `[N, F]` (before the latent heads).
#[derive(Debug)]
enum Trunk {
    Mlp(Mlp),
    Conv { conv: ConvEncoder, fc: Mlp },
}

impl Trunk {
    /// Under `path`: `layer{i}` for the MLP; `conv/…` and `fc/…` for the convolutional one.
    fn new(path: &nn::Path, config: &VaeConfig) -> Result<Self> {
        Ok(match &config.architecture {
            Architecture::Mlp => Self::Mlp(Mlp::new(
                path,
                config.input_dim,
                &config.hidden,
                config.activation,
                true,
            )?),
            Architecture::Conv {
                channels,
                residual_blocks,
            } => {
                let shape = config
                    .input_shape
                    .expect("validated: conv has an input shape");
                let conv = ConvEncoder::new(
                    &(path / "conv"),
                    shape,
                    channels,
                    *residual_blocks,
                    config.activation,
                )?;
                let fc = Mlp::new(
                    &(path / "fc"),
                    conv.output_dim(),
                    &config.hidden,
                    config.activation,
                    true,
                )?;
                Self::Conv { conv, fc }
            }
        })
    }

    fn input_dim(&self) -> i64 {
        match self {
            Self::Mlp(mlp) => mlp.input_dim(),
            Self::Conv { conv, .. } => conv.input_shape().iter().product(),
        }
    }

    fn output_dim(&self) -> i64 {
        match self {
            Self::Mlp(mlp) => mlp.output_dim(),
            Self::Conv { fc, .. } => fc.output_dim(),
        }
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let flat = flatten_input(x, self.input_dim(), "encode")?;
        Ok(match self {
            Self::Mlp(mlp) => mlp.forward(&flat),
            Self::Conv { conv, fc } => fc.forward(&conv.encode(&flat)?),
        })
    }
}

/// `x ↦ q(z|x) = N(mean(x), diag(exp(log_var(x))))` through an MLP or convolutional trunk and
/// two linear heads (`trunk/…`, `mean`, `log_var`).
///
/// ```
/// use genae_zoo::{Architecture, GaussianEncoder, VaeConfig};
/// use tch::{nn, Device, Kind, Tensor};
///
/// let vs = nn::VarStore::new(Device::Cpu);
/// let config = VaeConfig {
///     architecture: Architecture::Conv { channels: vec![8, 16], residual_blocks: 1 },
///     hidden: vec![],
///     latent_dim: 4,
///     ..VaeConfig::default().with_input_shape([3, 32, 32])
/// };
/// let encoder = GaussianEncoder::from_config(&vs.root(), &config).unwrap();
/// let q = encoder.encode(&Tensor::rand([2, 3, 32, 32], (Kind::Float, Device::Cpu))).unwrap();
/// assert_eq!(q.mean().size(), vec![2, 4]);
/// ```
#[derive(Debug)]
pub struct GaussianEncoder {
    trunk: Trunk,
    mean: nn::Linear,
    log_var: nn::Linear,
}

impl GaussianEncoder {
    /// An MLP encoder `input_dim → hidden… → (mean, log_var)` of size `latent_dim`.
    pub fn new(
        path: &nn::Path,
        input_dim: i64,
        hidden: &[i64],
        latent_dim: i64,
        activation: Activation,
    ) -> Result<Self> {
        let config = VaeConfig {
            input_dim,
            hidden: hidden.to_vec(),
            latent_dim,
            activation,
            ..VaeConfig::default()
        };
        Self::from_config(path, &config)
    }

    /// The encoder `config` describes (its architecture; the likelihood plays no part).
    pub fn from_config(path: &nn::Path, config: &VaeConfig) -> Result<Self> {
        config.validate()?;
        let trunk = Trunk::new(&(path / "trunk"), config)?;
        let width = trunk.output_dim();
        Ok(Self {
            mean: init::linear(path / "mean", width, config.latent_dim),
            log_var: init::linear(path / "log_var", width, config.latent_dim),
            trunk,
        })
    }

    /// The number of input values per example.
    pub fn input_dim(&self) -> i64 {
        self.trunk.input_dim()
    }

    /// The number of latent dimensions.
    pub fn latent_dim(&self) -> i64 {
        self.mean.ws.size()[0]
    }

    /// The posterior for a batch `[N, ...]` of inputs (`[N, D]` or `[N, C, H, W]`).
    pub fn encode(&self, x: &Tensor) -> Result<DiagGaussian> {
        let h = self.trunk.forward(x)?;
        Ok(DiagGaussian::new(
            h.apply(&self.mean),
            h.apply(&self.log_var),
        )?)
    }
}

/// `x ↦ code(x)`: the deterministic encoder of the [`Autoencoder`](crate::Autoencoder), an
/// MLP or convolutional trunk and one linear head (`trunk/…`, `code`).
#[derive(Debug)]
pub struct DeterministicEncoder {
    trunk: Trunk,
    code: nn::Linear,
}

impl DeterministicEncoder {
    /// The encoder `config` describes, with codes of size `latent_dim`.
    pub fn from_config(path: &nn::Path, config: &VaeConfig) -> Result<Self> {
        config.validate()?;
        let trunk = Trunk::new(&(path / "trunk"), config)?;
        let width = trunk.output_dim();
        Ok(Self {
            code: init::linear(path / "code", width, config.latent_dim),
            trunk,
        })
    }

    /// The number of input values per example.
    pub fn input_dim(&self) -> i64 {
        self.trunk.input_dim()
    }

    /// The code size.
    pub fn latent_dim(&self) -> i64 {
        self.code.ws.size()[0]
    }

    /// Codes `[N, latent_dim]` for inputs `[N, ...]`.
    pub fn encode(&self, x: &Tensor) -> Result<Tensor> {
        Ok(self.trunk.forward(x)?.apply(&self.code))
    }
}

/// The decoder body: codes `[N, d]` ↦ raw outputs `[N, k·D]`.
#[derive(Debug)]
enum DecoderNet {
    Mlp(Mlp),
    Conv { fc: Mlp, conv: ConvDecoder },
}

/// `z ↦ p(x|z)`: an MLP or transposed-convolution network whose outputs parameterise the
/// configured [`Likelihood`], returned as a [`DecoderDistribution`].
///
/// Parameters: `layer{i}` under `path` for the MLP (the last layer outputs
/// `num_outputs · D` values; with the Bernoulli likelihood these are exactly the names and
/// shapes of the original MLP decoder); `fc/…` and `conv/…` for the convolutional one.
///
/// ```
/// use genae_zoo::{Decoder, Likelihood, VaeConfig};
/// use tch::{nn, Device, Kind, Tensor};
///
/// let vs = nn::VarStore::new(Device::Cpu);
/// let config = VaeConfig {
///     input_dim: 6,
///     hidden: vec![8],
///     latent_dim: 2,
///     likelihood: Likelihood::DiscretizedLogistic { bins: 256 },
///     ..VaeConfig::default()
/// };
/// let decoder = Decoder::new(&vs.root(), &config).unwrap();
/// let z = Tensor::randn([3, 2], (Kind::Float, Device::Cpu));
/// assert_eq!(decoder.mean(&z).unwrap().size(), vec![3, 6]);
/// let x = (Tensor::rand([3, 6], (Kind::Float, Device::Cpu)) * 255.0).round() / 255.0;
/// assert_eq!(decoder.log_likelihood(&x, &z).unwrap().size(), vec![3]);
/// ```
#[derive(Debug)]
pub struct Decoder {
    net: DecoderNet,
    likelihood: Likelihood,
    latent_dim: i64,
    output_dim: i64,
    output_shape: Option<[i64; 3]>,
}

impl Decoder {
    /// The decoder `config` describes: `latent_dim → reversed hidden… → input_dim` values per
    /// parameter of `config.likelihood`.
    pub fn new(path: &nn::Path, config: &VaeConfig) -> Result<Self> {
        config.validate()?;
        let k = config.likelihood.num_outputs();
        let reversed: Vec<i64> = config.hidden.iter().rev().copied().collect();
        let net = match &config.architecture {
            Architecture::Mlp => {
                let widths: Vec<i64> = reversed
                    .iter()
                    .copied()
                    .chain([k * config.input_dim])
                    .collect();
                DecoderNet::Mlp(Mlp::new(
                    path,
                    config.latent_dim,
                    &widths,
                    config.activation,
                    false,
                )?)
            }
            Architecture::Conv {
                channels,
                residual_blocks,
            } => {
                let [c, h, w] = config
                    .input_shape
                    .expect("validated: conv has an input shape");
                let conv = ConvDecoder::new(
                    &(path / "conv"),
                    [k * c, h, w],
                    channels,
                    *residual_blocks,
                    config.activation,
                )?;
                let widths: Vec<i64> = reversed.into_iter().chain([conv.input_dim()]).collect();
                let fc = Mlp::new(
                    &(path / "fc"),
                    config.latent_dim,
                    &widths,
                    config.activation,
                    true,
                )?;
                DecoderNet::Conv { fc, conv }
            }
        };
        Ok(Self {
            net,
            likelihood: config.likelihood.clone(),
            latent_dim: config.latent_dim,
            output_dim: config.input_dim,
            output_shape: config.input_shape,
        })
    }

    /// The observation model.
    pub fn likelihood(&self) -> &Likelihood {
        &self.likelihood
    }

    /// The number of latent dimensions it decodes.
    pub fn latent_dim(&self) -> i64 {
        self.latent_dim
    }

    /// The number of data dimensions `D` it produces.
    pub fn output_dim(&self) -> i64 {
        self.output_dim
    }

    /// The data shape `[C, H, W]`, when the config gave one.
    pub fn output_shape(&self) -> Option<[i64; 3]> {
        self.output_shape
    }

    /// Raw network outputs `[N, k·D]` (`k` = [`Likelihood::num_outputs`]), laid out as
    /// [`Likelihood::distribution`] reads them.
    pub fn outputs(&self, z: &Tensor) -> Result<Tensor> {
        check_codes(z, self.latent_dim)?;
        Ok(match &self.net {
            DecoderNet::Mlp(mlp) => mlp.forward(z),
            DecoderNet::Conv { fc, conv } => {
                let images = conv.decode(&fc.forward(z))?; // [N, k·C, H, W]
                let heads = images.chunk(self.likelihood.num_outputs(), 1);
                Tensor::cat(
                    &heads.iter().map(|t| t.flatten(1, -1)).collect::<Vec<_>>(),
                    1,
                )
            }
        })
    }

    /// `p(x|z)` for codes `[N, latent_dim]`.
    pub fn distribution(&self, z: &Tensor) -> Result<DecoderDistribution> {
        self.likelihood.distribution(&self.outputs(z)?)
    }

    /// The decoder mean `[N, D]` (see [`DecoderDistribution::mean`]).
    pub fn mean(&self, z: &Tensor) -> Result<Tensor> {
        Ok(self.distribution(z)?.mean())
    }

    /// A draw `x ~ p(x|z)`, `[N, D]`, without gradient.
    pub fn sample(&self, z: &Tensor) -> Result<Tensor> {
        Ok(self.distribution(z)?.sample())
    }

    /// `log p(x|z)` per example (`[N]`) for `x` `[N, ...]` with `D` values per example.
    pub fn log_likelihood(&self, x: &Tensor, z: &Tensor) -> Result<Tensor> {
        let x = flatten_input(x, self.output_dim, "log_likelihood")?;
        self.distribution(z)?.log_prob(&x)
    }
}

impl GenerativeDecoder for Decoder {
    fn decode_mean(&self, z: &Tensor) -> Result<Tensor> {
        self.mean(z)
    }
}

/// The mean binary cross-entropy of `logits` against a constant label `target` (a
/// discriminator's loss on all-real or all-fake inputs).
pub(crate) fn bce_with_logits(logits: &Tensor, target: f64) -> Tensor {
    logits.binary_cross_entropy_with_logits::<Tensor>(
        &logits.full_like(target),
        None,
        None,
        tch::Reduction::Mean,
    )
}
