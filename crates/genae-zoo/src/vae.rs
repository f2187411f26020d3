//! The variational autoencoder with MLP encoder and Bernoulli MLP decoder.

use genae_tensor::{bernoulli_logits_log_prob, DiagGaussian};
use serde::{Deserialize, Serialize};
use tch::{nn, nn::Module, Device, Kind, Tensor};

use crate::{Activation, LatentVariableModel, Mlp, Result, ZooError};

/// Hyper-parameters of [`Vae`] (and of its encoder and decoder).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VaeConfig {
    /// Size of a flattened input (`C·H·W`).
    pub input_dim: i64,
    /// Hidden widths of the encoder; the decoder uses them in reverse.
    pub hidden: Vec<i64>,
    /// Number of latent dimensions.
    pub latent_dim: i64,
    /// Nonlinearity between layers.
    pub activation: Activation,
}

impl Default for VaeConfig {
    /// A 784 → 512 → 256 → 10 → 256 → 512 → 784 ReLU VAE.
    fn default() -> Self {
        Self {
            input_dim: 784,
            hidden: vec![512, 256],
            latent_dim: 10,
            activation: Activation::Relu,
        }
    }
}

impl VaeConfig {
    /// Checks every field, naming the first bad one.
    pub fn validate(&self) -> Result<()> {
        let positive = |field: &'static str, v: i64| {
            if v > 0 {
                Ok(())
            } else {
                Err(ZooError::InvalidConfig {
                    field,
                    reason: format!("must be positive, got {v}"),
                })
            }
        };
        positive("input_dim", self.input_dim)?;
        positive("latent_dim", self.latent_dim)?;
        if let Some(&w) = self.hidden.iter().find(|&&w| w <= 0) {
            return Err(ZooError::InvalidConfig {
                field: "hidden",
                reason: format!("widths must be positive, got {w} in {:?}", self.hidden),
            });
        }
        Ok(())
    }
}

/// Flattens `[N, ...]` to `[N, D]` and checks `D`.
fn flatten_input(x: &Tensor, expected: i64, what: &'static str) -> Result<Tensor> {
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

/// `x ↦ q(z|x) = N(mean(x), diag(exp(log_var(x))))` through an MLP trunk and two linear heads.
#[derive(Debug)]
pub struct GaussianEncoder {
    trunk: Mlp,
    mean: nn::Linear,
    log_var: nn::Linear,
}

impl GaussianEncoder {
    /// An encoder `input_dim → hidden… → (mean, log_var)` of size `latent_dim`.
    pub fn new(
        path: &nn::Path,
        input_dim: i64,
        hidden: &[i64],
        latent_dim: i64,
        activation: Activation,
    ) -> Result<Self> {
        let trunk = Mlp::new(&(path / "trunk"), input_dim, hidden, activation, true)?;
        let width = trunk.output_dim();
        Ok(Self {
            mean: nn::linear(path / "mean", width, latent_dim, Default::default()),
            log_var: nn::linear(path / "log_var", width, latent_dim, Default::default()),
            trunk,
        })
    }

    /// The posterior for a batch `[N, ...]` of inputs.
    pub fn encode(&self, x: &Tensor) -> Result<DiagGaussian> {
        let h = self
            .trunk
            .forward(&flatten_input(x, self.trunk.input_dim(), "encode")?);
        Ok(DiagGaussian::new(
            h.apply(&self.mean),
            h.apply(&self.log_var),
        )?)
    }
}

/// `z ↦` logits of independent Bernoulli pixels, through an MLP.
#[derive(Debug)]
pub struct BernoulliDecoder {
    net: Mlp,
    latent_dim: i64,
}

impl BernoulliDecoder {
    /// A decoder `latent_dim → hidden… → output_dim`.
    pub fn new(
        path: &nn::Path,
        latent_dim: i64,
        hidden: &[i64],
        output_dim: i64,
        activation: Activation,
    ) -> Result<Self> {
        let widths: Vec<i64> = hidden.iter().copied().chain([output_dim]).collect();
        Ok(Self {
            net: Mlp::new(path, latent_dim, &widths, activation, false)?,
            latent_dim,
        })
    }

    /// Pixel logits `[N, D]` for codes `[N, latent_dim]`.
    pub fn logits(&self, z: &Tensor) -> Result<Tensor> {
        if z.dim() != 2 || z.size()[1] != self.latent_dim {
            return Err(ZooError::Shape {
                what: "decode",
                detail: format!(
                    "expected z of shape [N, {}], got {:?}",
                    self.latent_dim,
                    z.size()
                ),
            });
        }
        Ok(self.net.forward(z))
    }

    /// Pixel probabilities (the decoder mean) `[N, D]`.
    pub fn mean(&self, z: &Tensor) -> Result<Tensor> {
        Ok(self.logits(z)?.sigmoid())
    }

    /// `log p(x|z)` per example for `x` `[N, ...]` in `[0, 1]`.
    pub fn log_likelihood(&self, x: &Tensor, z: &Tensor) -> Result<Tensor> {
        let logits = self.logits(z)?;
        let x = flatten_input(x, self.net.output_dim(), "log_likelihood")?;
        Ok(bernoulli_logits_log_prob(&logits, &x)?)
    }
}

/// What one [`Vae::forward`] pass computes.
#[derive(Debug)]
pub struct VaeOutput {
    /// `q(z|x)`.
    pub posterior: DiagGaussian,
    /// One reparameterised sample `z ~ q(z|x)`, `[N, latent_dim]`.
    pub z: Tensor,
    /// Decoder logits at `z`, `[N, D]`.
    pub logits: Tensor,
}

/// The variational autoencoder: Gaussian MLP encoder, standard-normal prior, Bernoulli MLP
/// decoder (Kingma & Welling, 2014).
#[derive(Debug)]
pub struct Vae {
    /// The inference network.
    pub encoder: GaussianEncoder,
    /// The generative network.
    pub decoder: BernoulliDecoder,
    config: VaeConfig,
}

impl Vae {
    /// A VAE with its parameters under `path` (`encoder/…`, `decoder/…`).
    pub fn new(path: &nn::Path, config: &VaeConfig) -> Result<Self> {
        config.validate()?;
        let decoder_hidden: Vec<i64> = config.hidden.iter().rev().copied().collect();
        Ok(Self {
            encoder: GaussianEncoder::new(
                &(path / "encoder"),
                config.input_dim,
                &config.hidden,
                config.latent_dim,
                config.activation,
            )?,
            decoder: BernoulliDecoder::new(
                &(path / "decoder"),
                config.latent_dim,
                &decoder_hidden,
                config.input_dim,
                config.activation,
            )?,
            config: config.clone(),
        })
    }

    /// The config the model was built from.
    pub fn config(&self) -> &VaeConfig {
        &self.config
    }

    /// Encode, draw one reparameterised `z`, decode.
    pub fn forward(&self, x: &Tensor) -> Result<VaeOutput> {
        let posterior = self.encoder.encode(x)?;
        let z = posterior.rsample();
        let logits = self.decoder.logits(&z)?;
        Ok(VaeOutput {
            posterior,
            z,
            logits,
        })
    }

    /// Decoder means (pixel probabilities) of `n` codes drawn from the prior.
    pub fn sample(&self, n: i64, device: Device) -> Result<Tensor> {
        let z = Tensor::randn([n, self.config.latent_dim], (Kind::Float, device));
        tch::no_grad(|| self.decoder.mean(&z))
    }

    /// Decoder means at the posterior means: deterministic reconstructions `[N, D]`.
    pub fn reconstruct(&self, x: &Tensor) -> Result<Tensor> {
        tch::no_grad(|| {
            let posterior = self.encoder.encode(x)?;
            self.decoder.mean(posterior.mean())
        })
    }
}

impl LatentVariableModel for Vae {
    fn latent_dim(&self) -> i64 {
        self.config.latent_dim
    }

    fn encode(&self, x: &Tensor) -> Result<DiagGaussian> {
        self.encoder.encode(x)
    }

    fn log_likelihood(&self, x: &Tensor, z: &Tensor) -> Result<Tensor> {
        self.decoder.log_likelihood(x, z)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> (nn::VarStore, Vae) {
        let vs = nn::VarStore::new(Device::Cpu);
        let config = VaeConfig {
            input_dim: 12,
            hidden: vec![8, 6],
            latent_dim: 3,
            activation: Activation::Relu,
        };
        let vae = Vae::new(&vs.root(), &config).unwrap();
        (vs, vae)
    }

    #[test]
    fn image_shaped_input_is_flattened() {
        let (_vs, vae) = small();
        let x = Tensor::rand([4, 1, 3, 4], (Kind::Float, Device::Cpu));
        let q = vae.encode(&x).unwrap();
        assert_eq!(q.mean().size(), vec![4, 3]);
        assert_eq!(vae.log_likelihood(&x, &q.sample()).unwrap().size(), vec![4]);
        assert_eq!(vae.reconstruct(&x).unwrap().size(), vec![4, 12]);
        assert_eq!(vae.sample(7, Device::Cpu).unwrap().size(), vec![7, 12]);
    }

    #[test]
    fn wrong_input_size_is_an_error_naming_both_shapes() {
        let (_vs, vae) = small();
        let err = vae
            .encode(&Tensor::rand([4, 13], (Kind::Float, Device::Cpu)))
            .unwrap_err()
            .to_string();
        assert!(err.contains("[N, 12]") && err.contains("[4, 13]"), "{err}");
        let err = vae
            .decoder
            .logits(&Tensor::rand([4, 2], (Kind::Float, Device::Cpu)))
            .unwrap_err()
            .to_string();
        assert!(err.contains("[N, 3]"), "{err}");
    }

    #[test]
    fn parameters_are_named_by_role() {
        let (vs, _vae) = small();
        let names: Vec<String> = vs.variables().into_keys().collect();
        for expected in [
            "encoder.trunk.layer0.weight",
            "encoder.mean.bias",
            "encoder.log_var.weight",
            "decoder.layer2.weight",
        ] {
            assert!(
                names.iter().any(|n| n == expected),
                "{expected} not in {names:?}"
            );
        }
    }

    #[test]
    fn invalid_config_names_the_field() {
        let vs = nn::VarStore::new(Device::Cpu);
        let config = VaeConfig {
            latent_dim: 0,
            ..Default::default()
        };
        let err = Vae::new(&vs.root(), &config).unwrap_err().to_string();
        assert!(err.contains("latent_dim"), "{err}");
    }
}
