//! The denoising variational lower bound `L_dvae` (Im, Ahn, Memisevic & Bengio, 2017).

use genae_tensor::{Corruption, DiagGaussian, TensorError};
use genae_zoo::LatentVariableModel;
use tch::{Kind, Tensor};

use crate::sampling::{at_least_one, non_empty};
use crate::{ElboTerms, EstimatorError, Result};

/// The denoising lower bound and its two terms, one value per example (`[N]`, nats): the
/// encoder sees corrupted copies `x̃ ~ C(x̃|x)`, the decoder scores the **clean** `x`,
///
/// `L_dvae(x) = E_{C(x̃|x)} E_{q(z|x̃)}[log p(x|z)] − E_{C(x̃|x)} KL(q(z|x̃) ‖ p(z))`,
///
/// estimated with `copies` (M) corrupted copies per example and `samples` (K) reparameterised
/// latent samples per copy: `reconstruction` is the mean of `log p(x|z)` over the M·K draws,
/// `kl` the mean over the M copies of the closed-form KL, `elbo = reconstruction − kl`. Since
/// `log p(x) = L_dvae + E_{C(x̃|x)} KL(q(z|x̃) ‖ p(z|x))`, it is a lower bound on `log p(x)` for
/// every corruption (usually looser than the ELBO on clean inputs). Differentiable in the
/// model's parameters; Im et al. recommend `M = K = 1`.
///
/// The copies are drawn in one batch of `M·N` inputs (copy-major: copy `m` of example `i` is
/// row `m·N + i`) and the corruption is drawn before the latent noise. An identity corruption
/// draws no random numbers, so with [`Corruption::None`] and `copies = 1` this is
/// [`elbo_with_samples`](crate::elbo_with_samples)`(model, x, samples)` draw for draw.
///
/// ```
/// use genae_estimators::dvae;
/// use genae_tensor::Corruption;
/// use genae_zoo::{Vae, VaeConfig};
/// use tch::{nn, Device, Kind, Tensor};
///
/// let vs = nn::VarStore::new(Device::Cpu);
/// let vae = Vae::new(&vs.root(), &VaeConfig { input_dim: 8, hidden: vec![16], latent_dim: 2, ..Default::default() }).unwrap();
/// let x = Tensor::rand([4, 8], (Kind::Float, Device::Cpu)).round();
/// let noise = Corruption::SaltAndPepper { p: 0.25 };
/// let terms = dvae(&vae, &x, &noise, 2, 3).unwrap(); // M = 2 copies, K = 3 samples each
/// assert_eq!(terms.elbo.size(), vec![4]);
/// (-terms.elbo.mean(Kind::Float)).backward();
/// ```
pub fn dvae<M: LatentVariableModel + ?Sized>(
    model: &M,
    x: &Tensor,
    corruption: &Corruption,
    copies: i64,
    samples: i64,
) -> Result<ElboTerms> {
    check_dvae_arguments(corruption, copies, samples)?;
    let n = non_empty("x", x)?;
    // [M·N, ...], copy-major.
    let clean = if copies == 1 {
        x.shallow_clone()
    } else {
        x.f_repeat(repeat_leading(copies, x.dim()))?
    };
    // Corrupted as [M, N, ...]: the examples run along dimension 1 (data-parallel noise).
    let mut grouped = vec![copies, n];
    grouped.extend(&x.size()[1..]);
    let corrupted = corruption
        .apply_with_batch_dim(&clean.f_reshape(grouped.as_slice())?, 1)?
        .f_reshape(clean.size().as_slice())?;
    let posterior = model.encode(&corrupted)?;
    let prior = model.prior(posterior.mean())?;
    let kl = posterior
        .kl(&prior)?
        .f_view([copies, n])?
        .f_mean_dim(0, false, None::<Kind>)?;
    let per_copy = if samples == 1 {
        model.log_likelihood(&clean, &codes(&posterior, 1, copies, n)?)?
    } else {
        let z = codes(&posterior, samples, copies, n)?; // [K·M·N, d]
        let xs = clean.f_repeat(repeat_leading(samples, clean.dim()))?; // sample-major like z
        model
            .log_likelihood(&xs, &z)?
            .f_view([samples, copies * n])?
            .f_mean_dim(0, false, None::<Kind>)?
    };
    let reconstruction = per_copy
        .f_view([copies, n])?
        .f_mean_dim(0, false, None::<Kind>)?;
    Ok(ElboTerms {
        elbo: &reconstruction - &kl,
        reconstruction,
        kl,
    })
}

/// `k` reparameterised codes of the copy-major `[M·N, d]` posterior, `[k·M·N, d]`
/// (sample-major), their noise drawn as `[k, M, N, d]` with the examples along dimension 2, so
/// a data-parallel process draws its examples' part of the global batch's noise
/// (`genae_tensor::noise`). One process draws exactly what `rsample`/`rsample_n` draw.
fn codes(posterior: &DiagGaussian, k: i64, copies: i64, n: i64) -> Result<Tensor> {
    let mean = posterior.mean();
    let mut grouped = vec![k, copies, n];
    grouped.extend(&mean.size()[1..]);
    let mut stacked = vec![k];
    stacked.extend(mean.size());
    let eps = genae_tensor::noise::randn(&grouped, 2, (mean.kind(), mean.device()))?
        .f_reshape(stacked.as_slice())?;
    let z = mean
        .f_unsqueeze(0)?
        .f_add(&posterior.std().f_unsqueeze(0)?.f_mul(&eps)?)?;
    Ok(z.f_flatten(0, 1)?)
}

/// `L_dvae(x)` per example (`[N]`): the `elbo` field of [`dvae`], with `copies` (M) corrupted
/// copies per example and `samples` (K) latent samples per copy.
///
/// ```
/// use genae_estimators::{dvae_bound, elbo};
/// use genae_tensor::Corruption;
/// use genae_zoo::{Vae, VaeConfig};
/// use tch::{nn, Device, Kind, Tensor};
///
/// let vs = nn::VarStore::new(Device::Cpu);
/// let vae = Vae::new(&vs.root(), &VaeConfig { input_dim: 8, hidden: vec![16], latent_dim: 2, ..Default::default() }).unwrap();
/// let x = Tensor::rand([4, 8], (Kind::Float, Device::Cpu)).round();
/// // Without corruption, one copy and one sample: the ELBO, draw for draw.
/// tch::manual_seed(1);
/// let bound = dvae_bound(&vae, &x, &Corruption::None, 1, 1).unwrap();
/// tch::manual_seed(1);
/// assert!(bound.equal(&elbo(&vae, &x).unwrap().elbo));
/// ```
pub fn dvae_bound<M: LatentVariableModel + ?Sized>(
    model: &M,
    x: &Tensor,
    corruption: &Corruption,
    copies: i64,
    samples: i64,
) -> Result<Tensor> {
    Ok(dvae(model, x, corruption, copies, samples)?.elbo)
}

/// Checks `copies ≥ 1`, `samples ≥ 1` and the corruption's parameters; a bad corruption is
/// reported as the argument `corruption`, with the field in the reason.
pub(crate) fn check_dvae_arguments(
    corruption: &Corruption,
    copies: i64,
    samples: i64,
) -> Result<()> {
    at_least_one("copies", copies)?;
    at_least_one("samples", samples)?;
    corruption.validate().map_err(|err| match err {
        TensorError::InvalidArgument { name, reason } => EstimatorError::InvalidArgument {
            name: "corruption",
            reason: format!("`{name}` {reason}"),
        },
        other => other.into(),
    })
}

/// `[times, 1, 1, ...]` for a tensor of `dim` dimensions.
fn repeat_leading(times: i64, dim: usize) -> Vec<i64> {
    let mut repeat = vec![times];
    repeat.extend(std::iter::repeat_n(1, dim.saturating_sub(1)));
    repeat
}
