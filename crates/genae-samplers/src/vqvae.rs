//! The VQ-VAE model (van den Oord et al., 2017): genae-zoo's [`VqEncoder`] and [`VqDecoder`]
//! around the [`VectorQuantizer`] of this crate.
//!
//! It lives here rather than in genae-zoo because this crate owns the quantizer and already
//! depends on the zoo for the networks; the prior over code grids (genae-zoo's
//! `GatedPixelCnn`) stays separate, trained on [`VqVae::encode_codes`] of the data.

use genae_zoo::{
    discretized_gaussian_log_prob, GenerativeDecoder, Likelihood, VqDecoder, VqEncoder, VqNetConfig,
};
use tch::{nn, Kind, Tensor};

use crate::{QuantizerConfig, QuantizerOutput, Result, SamplerError, VectorQuantizer};

/// What one [`VqVae::forward_t`] pass computes.
#[derive(Debug)]
pub struct VqVaeOutput {
    /// The reconstruction mean `x̂` (raw decoder output, not clamped, for the squared-error
    /// model; the likelihood's mean otherwise) in the layout of the input (`[N, C·H·W]` for
    /// flat input, `[N, C, H, W]` for images).
    pub reconstruction: Tensor,
    /// `log p(x | z_q)` per example `[N]` under the model's decoder likelihood, when it has one
    /// ([`VqVae::with_likelihood`]); `None` for the squared-error model.
    pub log_likelihood: Option<Tensor>,
    /// The quantizer's output on the encoder grid: straight-through codes, indices `[N, h, w]`,
    /// codebook and commitment losses, perplexity and usage.
    pub quantizer: QuantizerOutput,
    /// `Σ (x − x̂)²` over the whole batch (a scalar, in the input's kind).
    pub squared_error: Tensor,
    /// The batch size `N`.
    pub batch_size: i64,
}

impl VqVaeOutput {
    /// The reconstruction term of the loss: `−log p(x | z_q)` averaged over the batch with a
    /// decoder likelihood, else `Σ_pixels (x − x̂)²` averaged over the batch.
    pub fn reconstruction_loss(&self) -> Tensor {
        match &self.log_likelihood {
            Some(log_lik) => -log_lik.mean(Kind::Float),
            None => &self.squared_error / self.batch_size as f64,
        }
    }

    /// The training loss: [`reconstruction_loss`](Self::reconstruction_loss) plus the
    /// quantizer's codebook (without EMA updates) and commitment losses
    /// ([`QuantizerOutput::loss`]).
    pub fn loss(&self) -> Tensor {
        self.reconstruction_loss() + self.quantizer.loss()
    }
}

/// A whole data set passed through the model in batches, without gradients or state changes
/// ([`VqVae::encode_data`]).
#[derive(Debug)]
pub struct EncodedData {
    /// The code grid of every example, `[N, h, w]` (`Int64`), in data order.
    pub codes: Tensor,
    /// `Σ (x − x̂)²` over every example and pixel.
    pub squared_error: f64,
    /// How many grid vectors each code quantised (`Int64`, `[K]`).
    pub usage: Tensor,
    /// `Σ log p(x | z_q)`: under the model's decoder likelihood when it has one, else under
    /// the discretised Gaussian of standard deviation `σ` ([`discretized_gaussian_log_prob`])
    /// when a `σ` was given.
    pub log_prob: Option<f64>,
}

/// A VQ-VAE: `x ↦ z_e = encoder(x)` (a grid `[N, d, h, w]`), `z_q` = the nearest codebook
/// vectors (straight-through), `x̂ = decoder(z_q)`, trained on
/// `Σ_pixels (x − x̂)² / N + codebook loss + commitment loss` ([`VqVaeOutput::loss`]).
///
/// Its parameters live under `encoder/…`, `quantizer/…` and `decoder/…` of the path it is
/// built in. Images are `[N, C, H, W]` or flattened `[N, C·H·W]`; the decoder's output is the
/// raw reconstruction mean.
///
/// As a [`GenerativeDecoder`] its codes are quantised grids flattened to `[N, d·h·w]` (what
/// [`VectorQuantizer::lookup`] of an index grid gives, flattened); decoded data are
/// `[N, C·H·W]`.
///
/// ```
/// use genae_samplers::{QuantizerConfig, VqVae};
/// use genae_zoo::VqNetConfig;
/// use tch::{nn, Device, Kind, Tensor};
///
/// let vs = nn::VarStore::new(Device::Cpu);
/// let net = VqNetConfig { hidden_channels: 16, residual_channels: 8, code_dim: 4, ..Default::default() };
/// let quantizer = QuantizerConfig { num_codes: 32, code_dim: 4, ..Default::default() };
/// let model = VqVae::new(&vs.root(), [1, 28, 28], &net, &quantizer).unwrap();
/// assert_eq!(model.grid_shape(), [7, 7]);
///
/// let x = Tensor::rand([5, 784], (Kind::Float, Device::Cpu));
/// let out = model.forward_t(&x, true).unwrap();
/// assert_eq!(out.reconstruction.size(), [5, 784]);
/// out.loss().backward();
///
/// let codes = model.encode_codes(&x).unwrap(); // [5, 7, 7] indices, for a prior
/// assert_eq!(model.decode_codes(&codes).unwrap().size(), [5, 1, 28, 28]);
/// ```
#[derive(Debug)]
pub struct VqVae {
    /// Images ↦ the continuous grid `z_e` `[N, d, h, w]`.
    pub encoder: VqEncoder,
    /// The codebook and the straight-through quantizer.
    pub quantizer: VectorQuantizer,
    /// Quantised grids ↦ reconstruction means `[N, C, H, W]` (or the likelihood's parameter
    /// maps `[N, k·C, H, W]`).
    pub decoder: VqDecoder,
    likelihood: Option<Likelihood>,
}

impl VqVae {
    /// A VQ-VAE for images of `image_shape = [C, H, W]`, parameters under `path`
    /// (`encoder/…`, `quantizer/…`, `decoder/…`); `net.code_dim` and `quantizer.code_dim` must
    /// agree.
    pub fn new(
        path: &nn::Path,
        image_shape: [i64; 3],
        net: &VqNetConfig,
        quantizer: &QuantizerConfig,
    ) -> Result<Self> {
        Self::with_likelihood(path, image_shape, net, quantizer, None)
    }

    /// As [`VqVae::new`], with a decoder likelihood `p(x | z_q)` (`None`: the squared-error
    /// model of `new`). The decoder then outputs the likelihood's parameter maps (for
    /// `discretized_logistic`, a location and a log-scale per pixel), the loss's
    /// reconstruction term is `−log p(x | z_q)`, and reconstructions are the likelihood's
    /// mean. Only the discretised logistic is accepted: it is the one fit for 8-bit data in
    /// `[0, 1]` that gives a proper probability of the data (bits/dim).
    ///
    /// ```
    /// use genae_samplers::{QuantizerConfig, VqVae};
    /// use genae_zoo::{Likelihood, VqNetConfig};
    /// use tch::{nn, Device, Kind, Tensor};
    ///
    /// let vs = nn::VarStore::new(Device::Cpu);
    /// let net = VqNetConfig { hidden_channels: 16, residual_channels: 8, code_dim: 4, ..Default::default() };
    /// let quantizer = QuantizerConfig { num_codes: 32, code_dim: 4, ..Default::default() };
    /// let logistic = Likelihood::DiscretizedLogistic { bins: 256 };
    /// let model = VqVae::with_likelihood(&vs.root(), [1, 28, 28], &net, &quantizer, Some(logistic)).unwrap();
    /// let x = (Tensor::rand([5, 784], (Kind::Float, Device::Cpu)) * 255.0).round() / 255.0;
    /// let out = model.forward_t(&x, true).unwrap();
    /// assert_eq!(out.log_likelihood.as_ref().unwrap().size(), [5]);
    /// assert_eq!(out.reconstruction.size(), [5, 784]);
    /// out.loss().backward();
    /// ```
    pub fn with_likelihood(
        path: &nn::Path,
        image_shape: [i64; 3],
        net: &VqNetConfig,
        quantizer: &QuantizerConfig,
        likelihood: Option<Likelihood>,
    ) -> Result<Self> {
        if let Some(l) = &likelihood {
            if !matches!(l, Likelihood::DiscretizedLogistic { .. }) {
                return Err(SamplerError::InvalidConfig {
                    field: "likelihood",
                    reason: format!(
                        "a VQ-VAE's decoder likelihood is the squared error (none) or                          `discretized_logistic`, not `{}`",
                        l.name()
                    ),
                });
            }
            l.validate()?;
        }
        if net.code_dim != quantizer.code_dim {
            return Err(SamplerError::InvalidConfig {
                field: "code_dim",
                reason: format!(
                    "the networks' code_dim ({}) and the quantizer's ({}) must be equal",
                    net.code_dim, quantizer.code_dim
                ),
            });
        }
        Ok(Self {
            encoder: VqEncoder::new(&(path / "encoder"), image_shape, net)?,
            quantizer: VectorQuantizer::new(&(path / "quantizer"), quantizer)?,
            decoder: VqDecoder::with_outputs(
                &(path / "decoder"),
                image_shape,
                net,
                likelihood.as_ref().map_or(1, Likelihood::num_outputs),
            )?,
            likelihood,
        })
    }

    /// The decoder likelihood (`None`: the squared-error model).
    pub fn likelihood(&self) -> Option<&Likelihood> {
        self.likelihood.as_ref()
    }

    /// The reconstruction mean `[N, C, H, W]` of raw decoder outputs.
    fn mean_of(&self, raw: &Tensor) -> genae_zoo::Result<Tensor> {
        match &self.likelihood {
            None => Ok(raw.shallow_clone()),
            Some(l) => {
                let [c, h, w] = self.image_shape();
                let n = raw.size()[0];
                Ok(l.distribution(&raw.f_reshape([n, -1])?)?
                    .mean()
                    .f_reshape([n, c, h, w])?)
            }
        }
    }

    /// The image shape `[C, H, W]`.
    pub fn image_shape(&self) -> [i64; 3] {
        self.encoder.input_shape()
    }

    /// The code grid `[h, w]` of one image (the index grids of
    /// [`encode_codes`](Self::encode_codes); the vector grid is `[d, h, w]`).
    pub fn grid_shape(&self) -> [i64; 2] {
        let [_, h, w] = self.encoder.grid_shape();
        [h, w]
    }

    /// Encode, quantise (`train`: with the quantizer's training updates, see
    /// [`VectorQuantizer::forward_t`]), decode; the reconstruction and its squared error in the
    /// input's layout.
    pub fn forward_t(&self, x: &Tensor, train: bool) -> Result<VqVaeOutput> {
        let quantizer = self.quantizer.forward_t(&self.encoder.encode(x)?, train)?;
        let raw = self.decoder.decode(&quantizer.quantized)?;
        let n = x.size()[0];
        let (reconstruction, log_likelihood) = match &self.likelihood {
            None => (raw.f_view_as(x)?, None),
            Some(l) => {
                let p = l.distribution(&raw.f_reshape([n, -1])?)?;
                let log_lik = p.log_prob(&x.f_reshape([n, -1])?)?;
                (p.mean().f_reshape_as(x)?, Some(log_lik))
            }
        };
        let squared_error = reconstruction
            .f_sub(x)?
            .f_square()?
            .f_sum(reconstruction.kind())?;
        Ok(VqVaeOutput {
            reconstruction,
            log_likelihood,
            quantizer,
            squared_error,
            batch_size: x.size()[0],
        })
    }

    /// The index of the nearest code at every grid position, `[N, h, w]` (`Int64`), without
    /// gradients or quantizer state changes.
    pub fn encode_codes(&self, x: &Tensor) -> Result<Tensor> {
        tch::no_grad(|| self.quantizer.nearest_codes(&self.encoder.encode(x)?))
    }

    /// Reconstruction means `[N, C, H, W]` of index grids `[N, h, w]` (e.g. a prior's samples);
    /// differentiable in the codebook and decoder.
    pub fn decode_codes(&self, codes: &Tensor) -> Result<Tensor> {
        Ok(self.mean_of(&self.decoder.decode(&self.quantizer.lookup(codes)?)?)?)
    }

    /// Reconstruction means through the nearest codes, in the input's layout, without
    /// gradients or quantizer state changes.
    pub fn reconstruct(&self, x: &Tensor) -> Result<Tensor> {
        tch::no_grad(|| Ok(self.forward_t(x, false)?.reconstruction))
    }

    /// Passes `x` (a whole split, `[N, …]`) through the model `batch_size` examples at a time,
    /// without gradients or state changes: the code grids, the summed squared error, the code
    /// usage and, with `sigma`, the summed discretised-Gaussian `log p(x | z_q)` (data in
    /// `[0, 1]`, 8-bit levels).
    pub fn encode_data(
        &self,
        x: &Tensor,
        batch_size: i64,
        sigma: Option<f64>,
    ) -> Result<EncodedData> {
        if batch_size < 1 {
            return Err(SamplerError::InvalidArgument {
                name: "batch_size",
                reason: format!("must be at least 1, got {batch_size}"),
            });
        }
        if !x.defined() || x.dim() < 1 {
            return Err(SamplerError::InvalidArgument {
                name: "x",
                reason: "must be a batch [N, ...] of images".into(),
            });
        }
        let n = x.size()[0];
        tch::no_grad(|| {
            let mut codes = Vec::new();
            let mut squared_error = 0.0;
            let mut log_prob = 0.0;
            let mut usage =
                Tensor::f_zeros([self.quantizer.num_codes()], (Kind::Int64, x.device()))?;
            let mut start = 0;
            while start < n {
                let len = batch_size.min(n - start);
                let batch = x.f_narrow(0, start, len)?;
                let out = self.forward_t(&batch, false)?;
                squared_error += out
                    .squared_error
                    .f_to_kind(Kind::Double)?
                    .f_double_value(&[])?;
                let batch_log_prob = match (&out.log_likelihood, sigma) {
                    (Some(log_lik), _) => Some(log_lik.shallow_clone()),
                    (None, Some(sigma)) => Some(discretized_gaussian_log_prob(
                        &out.reconstruction,
                        sigma,
                        &batch,
                    )?),
                    (None, None) => None,
                };
                if let Some(lp) = batch_log_prob {
                    log_prob += lp.f_sum(Kind::Double)?.f_double_value(&[])?;
                }
                usage = usage.f_add(&out.quantizer.usage)?;
                codes.push(out.quantizer.indices);
                start += len;
            }
            let [h, w] = self.grid_shape();
            let codes = if codes.is_empty() {
                Tensor::f_zeros([0, h, w], (Kind::Int64, x.device()))?
            } else {
                Tensor::f_cat(&codes, 0)?
            };
            Ok(EncodedData {
                codes,
                squared_error,
                usage,
                log_prob: (sigma.is_some() || self.likelihood.is_some()).then_some(log_prob),
            })
        })
    }
}

/// Codes are quantised grids flattened to `[N, d·h·w]`; decoder means come flattened to
/// `[N, C·H·W]`.
impl GenerativeDecoder for VqVae {
    fn decode_mean(&self, z: &Tensor) -> genae_zoo::Result<Tensor> {
        Ok(self.mean_of(&self.decoder.decode(z)?)?.f_flatten(1, -1)?)
    }
}
