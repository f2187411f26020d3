//! PyTorch's default initialisation for every layer the zoo creates.
//!
//! tch's layer constructors do not initialise the way PyTorch's modules do:
//!
//! | layer | tch 0.24 default | PyTorch default (`reset_parameters`) |
//! |---|---|---|
//! | `nn::linear` weight | `U(±√(6/fan_in))` (Kaiming-uniform, ReLU gain √2) | `U(±1/√fan_in)` (`kaiming_uniform_(a=√5)`) |
//! | `nn::linear` bias | `U(±1/√fan_in)` | `U(±1/√fan_in)` |
//! | `nn::conv*` weight | `U(±√(6/fan_in))` | `U(±1/√fan_in)` |
//! | `nn::conv*` bias | `0` | `U(±1/√fan_in)` |
//! | `nn::embedding` | `N(0, 1)` | `N(0, 1)` |
//!
//! tch's weights are √6 ≈ 2.45 times wider. Trained with the same recipe and data, genae's
//! `fashion-mnist-vae` with tch's initialisation ended 1.2–1.4 nats (test ELBO, 5 epochs) below the
//! same network at PyTorch's initialisation, in genae and in plain PyTorch alike
//! (docs/results.md, "Parity with PyTorch at its defaults"), so the zoo builds its layers
//! through the functions here, which keep tch's layer types and parameter names and only
//! replace the two initialisers with PyTorch's. (The same section shows the other side: MLPs
//! on the 32×32 shapes data learn markedly faster from tch's wider weights.)
//!
//! `fan_in` is PyTorch's (`torch.nn.init._calculate_fan_in_and_fan_out`): the weight's
//! second dimension times the kernel size. For a convolution that is
//! `in_channels / groups · kh · kw`; for a transposed convolution, whose weight is
//! `[in, out / groups, kh, kw]`, it is `out_channels / groups · kh · kw`.
//!
//! ```
//! use genae_zoo::init;
//! use tch::{nn, Device};
//!
//! let vs = nn::VarStore::new(Device::Cpu);
//! let layer = init::linear(vs.root() / "fc", 100, 20);
//! let bound = init::pytorch_bound(100); // 1/√100 = 0.1
//! assert!(layer.ws.abs().max().double_value(&[]) <= bound);
//! ```

use std::borrow::Borrow;

use tch::nn::{self, Init};

/// The bound `b = 1/√fan_in` of PyTorch's default `U(−b, b)` for weights and biases.
pub fn pytorch_bound(fan_in: i64) -> f64 {
    assert!(fan_in > 0, "fan_in must be positive, got {fan_in}");
    1.0 / (fan_in as f64).sqrt()
}

/// `U(−1/√fan_in, 1/√fan_in)`, PyTorch's default for the weights and biases of its linear and
/// convolution layers.
pub fn pytorch_uniform(fan_in: i64) -> Init {
    let bound = pytorch_bound(fan_in);
    Init::Uniform {
        lo: -bound,
        up: bound,
    }
}

/// `nn::linear` with a bias, initialised as PyTorch's `nn.Linear(in_dim, out_dim)`.
pub fn linear<'a, T: Borrow<nn::Path<'a>>>(path: T, in_dim: i64, out_dim: i64) -> nn::Linear {
    nn::linear(path, in_dim, out_dim, linear_config(in_dim, true))
}

/// `nn::linear` without a bias, initialised as PyTorch's `nn.Linear(in_dim, out_dim,
/// bias=False)`.
pub fn linear_no_bias<'a, T: Borrow<nn::Path<'a>>>(
    path: T,
    in_dim: i64,
    out_dim: i64,
) -> nn::Linear {
    nn::linear(path, in_dim, out_dim, linear_config(in_dim, false))
}

/// The `LinearConfig` of a PyTorch-initialised linear layer with `in_dim` inputs.
fn linear_config(in_dim: i64, bias: bool) -> nn::LinearConfig {
    nn::LinearConfig {
        ws_init: pytorch_uniform(in_dim),
        bs_init: Some(pytorch_uniform(in_dim)),
        bias,
    }
}

/// `nn::conv2d` with a square `kernel`, initialised as PyTorch's `nn.Conv2d`; stride, padding,
/// groups and bias come from `config`, whose `ws_init` and `bs_init` are replaced.
pub fn conv2d<'a, T: Borrow<nn::Path<'a>>>(
    path: T,
    in_channels: i64,
    out_channels: i64,
    kernel: i64,
    config: nn::ConvConfig,
) -> nn::Conv2D {
    let fan_in = in_channels / config.groups * kernel * kernel;
    let config = nn::ConvConfig {
        ws_init: pytorch_uniform(fan_in),
        bs_init: pytorch_uniform(fan_in),
        ..config
    };
    nn::conv2d(path, in_channels, out_channels, kernel, config)
}

/// `nn::conv` with a rectangular `[kh, kw]` kernel, initialised as PyTorch's `nn.Conv2d`;
/// `config`'s `ws_init` and `bs_init` are replaced.
pub fn conv2d_rect<'a, T: Borrow<nn::Path<'a>>>(
    path: T,
    in_channels: i64,
    out_channels: i64,
    kernel: [i64; 2],
    config: nn::ConvConfigND<[i64; 2]>,
) -> nn::Conv2D {
    let fan_in = in_channels / config.groups * kernel[0] * kernel[1];
    let config = nn::ConvConfigND::<[i64; 2]> {
        ws_init: pytorch_uniform(fan_in),
        bs_init: pytorch_uniform(fan_in),
        ..config
    };
    nn::conv(path, in_channels, out_channels, kernel, config)
}

/// `nn::conv_transpose2d` with a square `kernel`, initialised as PyTorch's
/// `nn.ConvTranspose2d` (fan-in `out_channels / groups · kernel²`, from the weight's second
/// dimension); `config`'s `ws_init` and `bs_init` are replaced.
pub fn conv_transpose2d<'a, T: Borrow<nn::Path<'a>>>(
    path: T,
    in_channels: i64,
    out_channels: i64,
    kernel: i64,
    config: nn::ConvTransposeConfig,
) -> nn::ConvTranspose2D {
    let fan_in = out_channels / config.groups * kernel * kernel;
    let config = nn::ConvTransposeConfig {
        ws_init: pytorch_uniform(fan_in),
        bs_init: pytorch_uniform(fan_in),
        ..config
    };
    nn::conv_transpose2d(path, in_channels, out_channels, kernel, config)
}

#[cfg(test)]
mod tests {
    use tch::{Device, Kind, Tensor};

    use super::*;

    /// Checks that `t` looks like `U(−b, b)` with `b = 1/√fan_in`: inside the bound, reaching
    /// close to it, mean ≈ 0 and variance ≈ b²/3 (the closed form), within `rel` of it.
    fn assert_pytorch_uniform(what: &str, t: &Tensor, fan_in: i64, rel: f64) {
        let b = 1.0 / (fan_in as f64).sqrt();
        let n = t.numel() as f64;
        let t = t.to_kind(Kind::Double);
        let max = t.abs().max().double_value(&[]);
        let mean = t.mean(Kind::Double).double_value(&[]);
        let var = t.square().mean(Kind::Double).double_value(&[]) - mean * mean;
        let expected_var = b * b / 3.0;
        assert!(max <= b, "{what}: max |w| = {max} > bound {b}");
        // With n draws the largest |w| is within b·(1 − 20/n) of b but for a 1-in-e^20 chance.
        assert!(
            max >= b * (1.0 - 20.0 / n),
            "{what}: max |w| = {max}, bound {b}"
        );
        // Var(w) = b²/3 and sd(w) = b/√3: the sample mean is within 6 standard errors of 0.
        let mean_tol = 6.0 * b / (3.0 * n).sqrt();
        assert!(
            mean.abs() <= mean_tol,
            "{what}: mean {mean} (tol {mean_tol})"
        );
        assert!(
            (var / expected_var - 1.0).abs() <= rel,
            "{what}: variance {var}, closed form b²/3 = {expected_var}"
        );
    }

    #[test]
    fn linear_matches_pytorchs_nn_linear() {
        let _rng = crate::torch_rng_lock();
        tch::manual_seed(11);
        let vs = nn::VarStore::new(Device::Cpu);
        let layer = linear(vs.root() / "fc", 784, 3000);
        assert_eq!(layer.ws.size(), vec![3000, 784]);
        // 2.35 M weights: relative sd of the variance estimate √(0.8/n) ≈ 0.06 %.
        assert_pytorch_uniform("weight", &layer.ws, 784, 0.01);
        // 3000 biases: relative sd √(0.8/3000) ≈ 1.6 %.
        assert_pytorch_uniform("bias", layer.bs.as_ref().unwrap(), 784, 0.1);
        // tch's default would be √6 times wider: the variance alone rules it out.
        let tch = nn::linear(vs.root() / "tch", 784, 3000, Default::default());
        let ratio = tch.ws.var(false).double_value(&[]) / layer.ws.var(false).double_value(&[]);
        assert!((ratio - 6.0).abs() < 0.1, "tch / PyTorch variance {ratio}");

        let no_bias = linear_no_bias(vs.root() / "nb", 50, 40);
        assert!(no_bias.bs.is_none());
        assert_pytorch_uniform("no-bias weight", &no_bias.ws, 50, 0.1);
    }

    #[test]
    fn convolutions_match_pytorchs_conv2d_and_conv_transpose2d() {
        let _rng = crate::torch_rng_lock();
        tch::manual_seed(12);
        let vs = nn::VarStore::new(Device::Cpu);
        let config = nn::ConvConfig {
            stride: 2,
            padding: 1,
            ..Default::default()
        };
        // Conv2d: fan-in = in · k² = 64 · 9.
        let conv = conv2d(vs.root() / "conv", 64, 256, 3, config);
        assert_eq!(conv.ws.size(), vec![256, 64, 3, 3]);
        assert_pytorch_uniform("conv weight", &conv.ws, 64 * 9, 0.02);
        // A 0-initialised bias (tch's default) has variance 0 and fails here.
        assert_pytorch_uniform("conv bias", conv.bs.as_ref().unwrap(), 64 * 9, 0.5);

        // Grouped: fan-in = in / groups · k².
        let grouped = conv2d(
            vs.root() / "grouped",
            64,
            128,
            3,
            nn::ConvConfig {
                groups: 4,
                ..Default::default()
            },
        );
        assert_pytorch_uniform("grouped weight", &grouped.ws, 16 * 9, 0.05);

        // Rectangular kernel: fan-in = in · kh · kw.
        let rect = conv2d_rect(vs.root() / "rect", 32, 256, [2, 5], Default::default());
        assert_eq!(rect.ws.size(), vec![256, 32, 2, 5]);
        assert_pytorch_uniform("rect weight", &rect.ws, 32 * 10, 0.02);

        // ConvTranspose2d: weight [in, out, k, k], fan-in = out · k² (256 · 16), not
        // in · k² (16 · 16, a bound 4 times wider).
        let up = conv_transpose2d(
            vs.root() / "up",
            16,
            256,
            4,
            nn::ConvTransposeConfig {
                stride: 2,
                padding: 1,
                ..Default::default()
            },
        );
        assert_eq!(up.ws.size(), vec![16, 256, 4, 4]);
        assert_pytorch_uniform("transposed weight", &up.ws, 256 * 16, 0.02);
        assert_pytorch_uniform("transposed bias", up.bs.as_ref().unwrap(), 256 * 16, 0.5);
    }

    #[test]
    fn seeded_initialisation_repeats() {
        let _rng = crate::torch_rng_lock();
        let draw = || {
            tch::manual_seed(3);
            let vs = nn::VarStore::new(Device::Cpu);
            let layer = linear(vs.root() / "fc", 8, 4);
            (layer.ws.copy(), layer.bs.unwrap().copy())
        };
        let (w1, b1) = draw();
        let (w2, b2) = draw();
        assert!(w1.equal(&w2) && b1.equal(&b2));
    }
}
