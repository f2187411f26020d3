//! The evidence lower bound with the KL term in closed form.

use genae_zoo::LatentVariableModel;
use tch::{Kind, Tensor};

use crate::{EstimatorError, Result};

/// The ELBO and its two terms, one value per example (`[N]`, nats).
#[derive(Debug)]
pub struct ElboTerms {
    /// `reconstruction − kl`.
    pub elbo: Tensor,
    /// The Monte-Carlo estimate of `E_q[log p(x|z)]`.
    pub reconstruction: Tensor,
    /// `KL(q(z|x) ‖ p(z))`, in closed form.
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
    if n_samples < 1 {
        return Err(EstimatorError::InvalidArgument {
            name: "n_samples",
            reason: format!("must be at least 1, got {n_samples}"),
        });
    }
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
