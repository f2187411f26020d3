//! The implicit sampler `z = g(x, ε)` ([`ImplicitEncoder`]), where its noise enters
//! ([`NoiseInjection`]), and the width check the AVB configs share.

use serde::{Deserialize, Serialize};
use tch::{nn, Tensor};

use super::AvbConfig;
use crate::networks::flatten_input;
use crate::{init, Activation, Result, ZooError};

/// Where the implicit encoder receives its noise `ε`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoiseInjection {
    /// `ε` concatenated to the input `x`.
    #[default]
    Input,
    /// Concatenated to the input and, through a learned linear projection per hidden layer
    /// (no bias), added to every hidden layer's pre-activation.
    InputAndHidden,
}

/// The implicit encoder `z = g(x, ε)`: an MLP on `[x, ε]` (`layer{i}`), optionally with
/// `ε` projected into every hidden layer (`noise{i}`), and a linear head (`code`).
#[derive(Debug)]
pub struct ImplicitEncoder {
    layers: Vec<nn::Linear>,
    noise_projections: Vec<nn::Linear>,
    head: nn::Linear,
    activation: Activation,
    input_dim: i64,
    noise_dim: i64,
}

impl ImplicitEncoder {
    /// The encoder `config` describes, parameters under `path`.
    pub fn new(path: &nn::Path, config: &AvbConfig) -> Result<Self> {
        config.validate()?;
        let n = &config.networks;
        Self::from_widths(
            path,
            [n.input_dim, config.noise_dim, n.latent_dim],
            &n.hidden,
            n.activation,
            config.noise_injection,
        )
    }

    /// An encoder from `[input_dim, noise_dim, latent_dim]` through `hidden` widths, parameters
    /// under `path`. `input_dim` may be 0: then `g(ε)` is one unconditional distribution (feed
    /// it inputs `[N, 0]`), as in [`ImplicitPosterior`](super::ImplicitPosterior).
    pub fn from_widths(
        path: &nn::Path,
        [input_dim, noise_dim, latent_dim]: [i64; 3],
        hidden: &[i64],
        activation: Activation,
        injection: NoiseInjection,
    ) -> Result<Self> {
        for (field, value, least) in [
            ("input_dim", input_dim, 0),
            ("noise_dim", noise_dim, 1),
            ("latent_dim", latent_dim, 1),
        ] {
            if value < least {
                return Err(ZooError::InvalidConfig {
                    field,
                    reason: format!("must be at least {least}, got {value}"),
                });
            }
        }
        check_widths("hidden", hidden)?;
        let mut layers = Vec::with_capacity(hidden.len());
        let mut noise_projections = Vec::new();
        let mut fan_in = input_dim + noise_dim;
        for (i, &width) in hidden.iter().enumerate() {
            layers.push(init::linear(path / format!("layer{i}"), fan_in, width));
            if injection == NoiseInjection::InputAndHidden {
                noise_projections.push(init::linear_no_bias(
                    path / format!("noise{i}"),
                    noise_dim,
                    width,
                ));
            }
            fan_in = width;
        }
        Ok(Self {
            layers,
            noise_projections,
            head: init::linear(path / "code", fan_in, latent_dim),
            activation,
            input_dim,
            noise_dim,
        })
    }

    /// The noise size.
    pub fn noise_dim(&self) -> i64 {
        self.noise_dim
    }

    /// `g(x, ε)`, `[N, d]`, for inputs `[N, ...]` and noise `[N, noise_dim]`.
    pub fn forward(&self, x: &Tensor, eps: &Tensor) -> Result<Tensor> {
        let flat = flatten_input(x, self.input_dim, "ImplicitEncoder::forward")?;
        let n = flat.size()[0];
        if eps.size() != [n, self.noise_dim] {
            return Err(ZooError::Shape {
                what: "ImplicitEncoder::forward",
                detail: format!(
                    "noise must be [{n}, {}], got {:?}",
                    self.noise_dim,
                    eps.size()
                ),
            });
        }
        let mut h = Tensor::f_cat(&[&flat, &eps.to_kind(flat.kind())], 1)?;
        for (i, layer) in self.layers.iter().enumerate() {
            h = h.apply(layer);
            if let Some(p) = self.noise_projections.get(i) {
                h += eps.to_kind(h.kind()).apply(p);
            }
            h = self.activation.apply(&h);
        }
        Ok(h.apply(&self.head))
    }
}

/// Checks that every width of `widths` (the config field `field`) is positive.
pub(super) fn check_widths(field: &'static str, widths: &[i64]) -> Result<()> {
    match widths.iter().find(|&&w| w <= 0) {
        Some(w) => Err(ZooError::InvalidConfig {
            field,
            reason: format!("widths must be positive, got {w} in {widths:?}"),
        }),
        None => Ok(()),
    }
}
