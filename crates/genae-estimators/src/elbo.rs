//! The evidence lower bound, with the KL term in closed form or estimated by Monte Carlo.

use genae_zoo::LatentVariableModel;
use tch::{Kind, Tensor};

use crate::sampling::{at_least_one, sample_terms, NoiseStream};
use crate::Result;

/// The ELBO and its two terms, one value per example (`[N]`, nats).
#[derive(Debug)]
pub struct ElboTerms {
    /// `reconstruction − kl`.
    pub elbo: Tensor,
    /// The Monte-Carlo estimate of `E_q[log p(x|z)]`.
    pub reconstruction: Tensor,
    /// `KL(q(z|x) ‖ p(z))`: in closed form from [`elbo`] and [`elbo_with_samples`], the
    /// Monte-Carlo estimate `log q(z|x) − log p(z)` from [`elbo_monte_carlo`].
    pub kl: Tensor,
}

/// Batch averages of [`ElboTerms`], as plain numbers.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ElboMeans {
    /// Mean ELBO.
    pub elbo: f64,
    /// Mean reconstruction term.
    pub reconstruction: f64,
    /// Mean KL term.
    pub kl: f64,
}

impl ElboTerms {
    /// Averages over the batch (this reads the values back from the device).
    pub fn means(&self) -> ElboMeans {
        let mean = |t: &Tensor| t.mean(Kind::Double).double_value(&[]);
        ElboMeans {
            elbo: mean(&self.elbo),
            reconstruction: mean(&self.reconstruction),
            kl: mean(&self.kl),
        }
    }
}

/// The single-sample reparameterised ELBO (the SGVB estimator of Kingma & Welling with the KL
/// in closed form): differentiable in the model's parameters.
pub fn elbo<M: LatentVariableModel + ?Sized>(model: &M, x: &Tensor) -> Result<ElboTerms> {
    elbo_with_samples(model, x, 1)
}

/// The ELBO with `E_q[log p(x|z)]` averaged over `n_samples` reparameterised samples per
/// example; the KL term is exact either way.
pub fn elbo_with_samples<M: LatentVariableModel + ?Sized>(
    model: &M,
    x: &Tensor,
    n_samples: i64,
) -> Result<ElboTerms> {
    at_least_one("n_samples", n_samples)?;
    let posterior = model.encode(x)?;
    let prior = model.prior(posterior.mean())?;
    let kl = posterior.kl(&prior)?;
    let reconstruction = if n_samples == 1 {
        model.log_likelihood(x, &posterior.rsample())?
    } else {
        let n = x.size()[0];
        let z = posterior.rsample_n(n_samples).flatten(0, 1); // [S·N, d]
        let mut repeat = vec![n_samples];
        repeat.extend(std::iter::repeat_n(1, x.dim() - 1));
        let xs = x.repeat(&repeat); // [S·N, ...], sample-major like z
        model
            .log_likelihood(&xs, &z)?
            .view([n_samples, n])
            .mean_dim(0, false, None::<Kind>)
    };
    Ok(ElboTerms {
        elbo: &reconstruction - &kl,
        reconstruction,
        kl,
    })
}

/// The ELBO with **both** terms estimated by Monte Carlo over `n_samples` reparameterised
/// samples `z_s ~ q(z|x)`: `reconstruction = mean_s log p(x|z_s)` and
/// `kl = mean_s [log q(z_s|x) − log p(z_s)]`, for priors and posteriors whose KL has no closed
/// form. Unbiased for the same ELBO as [`elbo_with_samples`], with more variance; differentiable
/// in the model's parameters.
///
/// The samples are drawn exactly as [`iwae_log_weights`](crate::iwae_log_weights) draws them, so
/// with the same seed `elbo_monte_carlo(model, x, 1)` and
/// [`iwae_bound`](crate::iwae_bound)`(model, x, 1)` are the same number.
///
/// ```
/// use genae_estimators::elbo_monte_carlo;
/// use genae_zoo::{Vae, VaeConfig};
/// use tch::{nn, Device, Kind, Tensor};
///
/// let vs = nn::VarStore::new(Device::Cpu);
/// let vae = Vae::new(&vs.root(), &VaeConfig { input_dim: 8, hidden: vec![16], latent_dim: 2, ..Default::default() }).unwrap();
/// let x = Tensor::rand([4, 8], (Kind::Float, Device::Cpu)).round();
/// let terms = elbo_monte_carlo(&vae, &x, 10).unwrap();
/// assert_eq!(terms.kl.size(), vec![4]);
/// (-terms.elbo.mean(Kind::Float)).backward();
/// ```
pub fn elbo_monte_carlo<M: LatentVariableModel + ?Sized>(
    model: &M,
    x: &Tensor,
    n_samples: i64,
) -> Result<ElboTerms> {
    at_least_one("n_samples", n_samples)?;
    let posterior = model.encode(x)?;
    let prior = model.prior(posterior.mean())?;
    let eps = NoiseStream::new(posterior.mean(), n_samples).take(n_samples);
    let terms = sample_terms(model, x, &posterior, &prior, &eps)?;
    let reconstruction = terms.log_likelihood.mean_dim(0, false, None::<Kind>);
    let kl = (&terms.log_q - &terms.log_prior).mean_dim(0, false, None::<Kind>);
    Ok(ElboTerms {
        elbo: &reconstruction - &kl,
        reconstruction,
        kl,
    })
}
