//! Integration tests of genae-zoo: likelihoods against hand computations, convolutional shapes,
//! config validation and TOML spelling, PCA against closed forms, and short training runs.

mod config;
mod conv_shapes;
mod likelihoods;
mod pca;
mod pixelcnn;
mod training;

use tch::{Device, Kind, Tensor};

/// `n` shapes-like images `[n, c, side, side]` in `[0, 1]`: an axis-aligned filled rectangle per
/// image on a black background, with an 8-bit grey level per image (so values lie on the levels
/// `k / 255`).
pub fn shapes_batch(n: i64, c: i64, side: i64) -> Tensor {
    let images = Tensor::zeros([n, c, side, side], (Kind::Float, Device::Cpu));
    let draws = Tensor::randint(1 << 20, [n, 5], (Kind::Int64, Device::Cpu));
    for i in 0..n {
        let r = |j: i64| draws.int64_value(&[i, j]);
        let h = side / 4 + r(0) % (side / 2);
        let w = side / 4 + r(1) % (side / 2);
        let top = r(2) % (side - h + 1);
        let left = r(3) % (side - w + 1);
        let level = (128 + r(4) % 128) as f64 / 255.0;
        let _ = images
            .get(i)
            .narrow(1, top, h)
            .narrow(2, left, w)
            .fill_(level);
    }
    images
}
