//! Multi-layer perceptrons.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use tch::{nn, Tensor};

use crate::{init, Result, ZooError};

/// A pointwise nonlinearity between layers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// `max(0, x)`.
    #[default]
    Relu,
    /// `tanh(x)`.
    Tanh,
    /// `x` for `x > 0`, `exp(x) − 1` otherwise.
    Elu,
    /// `max(0.01x, x)`.
    LeakyRelu,
    /// `ln(1 + exp(x))`.
    Softplus,
    /// The Gaussian error linear unit.
    Gelu,
}

impl Activation {
    /// Every activation, in the order of their config names.
    pub const ALL: [Activation; 6] = [
        Self::Relu,
        Self::Tanh,
        Self::Elu,
        Self::LeakyRelu,
        Self::Softplus,
        Self::Gelu,
    ];

    /// The config name (`relu`, `tanh`, `elu`, `leaky_relu`, `softplus`, `gelu`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Relu => "relu",
            Self::Tanh => "tanh",
            Self::Elu => "elu",
            Self::LeakyRelu => "leaky_relu",
            Self::Softplus => "softplus",
            Self::Gelu => "gelu",
        }
    }

    /// Applies the nonlinearity.
    pub fn apply(self, x: &Tensor) -> Tensor {
        match self {
            Self::Relu => x.relu(),
            Self::Tanh => x.tanh(),
            Self::Elu => x.elu(),
            Self::LeakyRelu => x.leaky_relu(),
            Self::Softplus => x.softplus(),
            Self::Gelu => x.gelu("none"),
        }
    }
}

impl fmt::Display for Activation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Activation {
    type Err = ZooError;

    fn from_str(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|a| a.name() == s)
            .ok_or_else(|| ZooError::InvalidConfig {
                field: "activation",
                reason: format!(
                    "must be one of {}, got `{s}`",
                    Self::ALL.map(Activation::name).join(", ")
                ),
            })
    }
}

/// Linear layers with a nonlinearity after each one (after the last one too when
/// `activate_last`). Layers are tch's `nn::Linear` initialised as PyTorch's `nn.Linear`
/// ([`init::linear`]): weights and biases `U(−1/√in, 1/√in)`.
#[derive(Debug)]
pub struct Mlp {
    layers: Vec<nn::Linear>,
    activation: Activation,
    activate_last: bool,
    input_dim: i64,
}

impl Mlp {
    /// An MLP from `input_dim` through each of `widths` (the last width is the output size);
    /// layers are named `layer0`, `layer1`, … under `path`.
    pub fn new(
        path: &nn::Path,
        input_dim: i64,
        widths: &[i64],
        activation: Activation,
        activate_last: bool,
    ) -> Result<Self> {
        if input_dim <= 0 {
            return Err(ZooError::InvalidConfig {
                field: "input_dim",
                reason: format!("must be positive, got {input_dim}"),
            });
        }
        if let Some(w) = widths.iter().find(|&&w| w <= 0) {
            return Err(ZooError::InvalidConfig {
                field: "hidden",
                reason: format!("widths must be positive, got {w} in {widths:?}"),
            });
        }
        let mut layers = Vec::with_capacity(widths.len());
        let mut fan_in = input_dim;
        for (i, &width) in widths.iter().enumerate() {
            layers.push(init::linear(path / format!("layer{i}"), fan_in, width));
            fan_in = width;
        }
        Ok(Self {
            layers,
            activation,
            activate_last,
            input_dim,
        })
    }

    /// The size of the last layer (the input size when there are no layers).
    pub fn output_dim(&self) -> i64 {
        self.layers
            .last()
            .map_or(self.input_dim, |l| l.ws.size()[0])
    }

    /// The size of the input.
    pub fn input_dim(&self) -> i64 {
        self.input_dim
    }
}

impl nn::Module for Mlp {
    fn forward(&self, xs: &Tensor) -> Tensor {
        let last = self.layers.len().saturating_sub(1);
        let mut h = xs.shallow_clone();
        for (i, layer) in self.layers.iter().enumerate() {
            h = h.apply(layer);
            if i < last || self.activate_last {
                h = self.activation.apply(&h);
            }
        }
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{nn::Module, Device, Kind};

    #[test]
    fn shapes_and_parameter_count() {
        let _rng = crate::torch_rng_lock();
        let vs = nn::VarStore::new(Device::Cpu);
        let mlp = Mlp::new(&vs.root(), 5, &[7, 3], Activation::Tanh, false).unwrap();
        assert_eq!(mlp.output_dim(), 3);
        let y = mlp.forward(&Tensor::ones([4, 5], (Kind::Float, Device::Cpu)));
        assert_eq!(y.size(), vec![4, 3]);
        let params: i64 = vs
            .trainable_variables()
            .iter()
            .map(|t| t.numel() as i64)
            .sum();
        assert_eq!(params, 5 * 7 + 7 + 7 * 3 + 3);
    }

    #[test]
    fn activation_names_round_trip_and_bad_names_are_listed() {
        let _rng = crate::torch_rng_lock();
        for a in Activation::ALL {
            assert_eq!(a.name().parse::<Activation>().unwrap(), a);
        }
        let err = "sigmoidish".parse::<Activation>().unwrap_err().to_string();
        assert!(
            err.contains("sigmoidish") && err.contains("leaky_relu"),
            "{err}"
        );
    }

    #[test]
    fn rejects_non_positive_widths() {
        let _rng = crate::torch_rng_lock();
        let vs = nn::VarStore::new(Device::Cpu);
        let err = Mlp::new(&vs.root(), 5, &[7, 0], Activation::Relu, false).unwrap_err();
        assert!(err.to_string().contains("hidden"));
    }
}
