//! The pictures every model with an encoder, a decoder and a prior gets, through
//! [`GenerativeAutoencoder`]: `reconstructions.png`, `samples.png`, `interpolations.png`,
//! `latents.png` and (2-d latent spaces) `posterior.png`.

use genae_tensor::save_image_grid;
use genae_zoo::GenerativeAutoencoder;
use tch::{Device, Kind, Tensor};

use crate::context::RunContext;
use crate::data::DeviceSplit;
use crate::error::LabError;

/// `reconstructions.png` (test images over the decoder means at their codes' means) and
/// `samples.png` (decoder means of prior draws).
pub(crate) fn write_reconstructions_and_samples(
    model: &dyn GenerativeAutoencoder,
    run: &RunContext,
) -> Result<(), LabError> {
    let e = &run.config.file().eval;
    let [c, h, w] = run.image_shape();
    let n = (e.reconstructions as i64).min(run.test.n);
    let originals = run.test.head(n);
    let reconstructions = tch::no_grad(|| model.decode_mean(&model.encode_mean(&originals)?))?;
    let pair = Tensor::cat(&[originals, reconstructions], 0).view([-1, c, h, w]);
    save_image_grid(&pair, n as usize, &run.run_dir.file("reconstructions.png"))?;

    let z = model.sample_prior(e.samples as i64, run.device)?;
    let samples = tch::no_grad(|| model.decode_mean(&z))?.view([-1, c, h, w]);
    let ncol = (e.samples as f64).sqrt().ceil() as usize;
    save_image_grid(&samples, ncol, &run.run_dir.file("samples.png"))?;
    Ok(())
}

/// Points `t ∈ [0, 1]` along the straight line and the great circle between `a` and `b`
/// (`[d]` each); returns `(linear, spherical)`, each `[steps, d]`.
pub(crate) fn interpolate(a: &Tensor, b: &Tensor, steps: i64) -> (Tensor, Tensor) {
    let t = Tensor::linspace(0.0, 1.0, steps, (Kind::Float, a.device())).unsqueeze(1);
    let one_minus_t = t.ones_like() - &t;
    let linear = a.unsqueeze(0) * &one_minus_t + b.unsqueeze(0) * &t;
    let cos = (a.dot(b) / (a.norm() * b.norm() + 1e-12))
        .double_value(&[])
        .clamp(-1.0, 1.0);
    let omega = cos.acos();
    let spherical = if omega.sin().abs() < 1e-6 {
        linear.shallow_clone()
    } else {
        let wa = (&one_minus_t * omega).sin() / omega.sin();
        let wb = (&t * omega).sin() / omega.sin();
        a.unsqueeze(0) * wa + b.unsqueeze(0) * wb
    };
    (linear, spherical)
}

/// `interpolations.png`: for each of `eval.interpolations` pairs of test images, a row of
/// decoded linear interpolation steps between their codes' means and a row of spherical ones.
pub(crate) fn write_interpolations(
    model: &dyn GenerativeAutoencoder,
    run: &RunContext,
) -> Result<(), LabError> {
    const STEPS: i64 = 10;
    let pairs = (run.config.file().eval.interpolations as i64).min(run.test.n / 2);
    if pairs == 0 {
        return Ok(());
    }
    let [c, h, w] = run.image_shape();
    tch::no_grad(|| {
        let codes = model.encode_mean(&run.test.head(2 * pairs))?;
        let mut rows = Vec::new();
        for p in 0..pairs {
            let (a, b) = (codes.get(2 * p), codes.get(2 * p + 1));
            let (linear, spherical) = interpolate(&a, &b, STEPS);
            rows.push(model.decode_mean(&linear)?);
            rows.push(model.decode_mean(&spherical)?);
        }
        let grid = Tensor::cat(&rows, 0).view([-1, c, h, w]);
        save_image_grid(
            &grid,
            STEPS as usize,
            &run.run_dir.file("interpolations.png"),
        )?;
        Ok(())
    })
}

/// `[N, 2]` points as pairs.
fn point_pairs(t: &Tensor) -> Result<Vec<(f64, f64)>, LabError> {
    let flat = t
        .to_kind(Kind::Double)
        .to_device(Device::Cpu)
        .contiguous()
        .view([-1]);
    let xy = Vec::<f64>::try_from(&flat)?;
    Ok(xy.chunks_exact(2).map(|p| (p[0], p[1])).collect())
}

/// `latents.png`: codes' means of test images coloured by label, in 2-d directly or through
/// their first two principal components. With `backdrop` (2-d codes only), prior draws are
/// drawn in grey behind the codes.
pub(crate) fn write_latents(
    model: &dyn GenerativeAutoencoder,
    backdrop: Option<&Tensor>,
    run: &RunContext,
) -> Result<(), LabError> {
    let n = (run.config.file().eval.latent_points as i64).min(run.test.n);
    if n < 3 {
        return Ok(());
    }
    let codes = tch::no_grad(|| model.encode_mean(&run.test.head(n)))?.to_kind(Kind::Double);
    let (points, axes, how) = if codes.size()[1] == 2 {
        (codes, ("z₁", "z₂"), "latent space")
    } else {
        let pca = genae_zoo::Pca::fit(&codes, 2)?;
        (
            pca.encode(&codes)?,
            ("PC 1", "PC 2"),
            "latent space, first two principal components",
        )
    };
    let background = match backdrop {
        Some(z) if z.dim() == 2 && z.size()[1] == 2 => point_pairs(z)?,
        _ => Vec::new(),
    };
    let data = run.data;
    let labels = &data.test.labels[..n as usize];
    crate::plots::scatter_by_label(
        &point_pairs(&points)?,
        &background,
        labels,
        &data.class_names,
        &format!("{}: test posterior means ({how})", data.name),
        axes,
        &run.run_dir.file("latents.png"),
    )
}

/// `n` test images, the split repeated as needed: `(x [n, D], index of each row)`.
pub(crate) fn cycled_test(test: &DeviceSplit, n: i64) -> (Tensor, Vec<usize>) {
    let reps = (n + test.n - 1) / test.n.max(1);
    let x = test.x.repeat([reps, 1]).narrow(0, 0, n);
    let index = (0..n as usize).map(|i| i % test.n as usize).collect();
    (x, index)
}

/// `posterior.png` for 2-d latent spaces: draws of `q(z|x)` (`eval.latent_points` of them,
/// cycling through the test set) coloured by the label of their `x`.
pub(crate) fn write_posterior_samples(
    model: &dyn GenerativeAutoencoder,
    run: &RunContext,
) -> Result<(), LabError> {
    let n = run.config.file().eval.latent_points as i64;
    if model.latent_dim() != 2 || n < 3 || run.test.n == 0 {
        return Ok(());
    }
    let (x, index) = cycled_test(run.test, n);
    let z = tch::no_grad(|| model.encode_sample(&x))?;
    let data = run.data;
    let labels: Vec<u32> = index.iter().map(|&i| data.test.labels[i]).collect();
    crate::plots::scatter_by_label(
        &point_pairs(&z)?,
        &[],
        &labels,
        &data.class_names,
        &format!("{}: draws of q(z|x) for test images, by label", data.name),
        ("z₁", "z₂"),
        &run.run_dir.file("posterior.png"),
    )
}
