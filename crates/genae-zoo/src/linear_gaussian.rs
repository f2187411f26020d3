//! A linear-Gaussian latent-variable model whose evidence and posterior are known exactly:
//! the reference against which estimators are checked.

use genae_tensor::{DiagGaussian, LOG_2PI};
use tch::{Device, Kind, Tensor};

use crate::{LatentSpace, LatentVariableModel, Result, ZooError};

const OPTS: (Kind, Device) = (Kind::Double, Device::Cpu);

/// `z ~ N(0, I_d)`, `x = W z + b + ε`, `ε ~ N(0, σ² I_D)` (probabilistic PCA), with orthogonal
/// columns in `W` of lengths `scales`, so that the exact posterior is diagonal:
/// `Σ = diag(1 / (1 + s²/σ²))`, `μ(x) = Σ Wᵀ(x − b)/σ²`, and `p(x) = N(b, W Wᵀ + σ² I)`.
///
/// As a [`LatentVariableModel`] its encoder is the exact posterior, optionally shifted by a
/// known mean and log-variance offset ([`LinearGaussian::perturbed`]); then
/// `log p(x) − ELBO = KL(q ‖ p(z|x))` is known in closed form ([`LinearGaussian::exact_gap`]).
/// Everything is `f64` on the CPU; `W` and `b` are drawn from libtorch's global generator.
///
/// ```
/// use genae_zoo::{LatentVariableModel, LinearGaussian};
/// tch::manual_seed(0);
/// let model = LinearGaussian::new(5, &[1.5, 0.6], 0.4).unwrap();
/// let x = model.sample_data(3);
/// // With the exact posterior, every importance weight equals p(x).
/// let q = model.encode(&x).unwrap();
/// let z = q.sample();
/// let log_w = model.log_likelihood(&x, &z).unwrap() + model.prior(q.mean()).unwrap().log_prob(&z).unwrap()
///     - q.log_prob(&z).unwrap();
/// let exact = model.exact_log_px(&x).unwrap();
/// assert!((log_w - exact).abs().max().double_value(&[]) < 1e-9);
/// ```
#[derive(Debug)]
pub struct LinearGaussian {
    w: Tensor,
    b: Tensor,
    scales: Tensor,
    sigma2: f64,
    post_var: Tensor,
    mean_shift: Tensor,
    log_var_shift: Tensor,
}

impl LinearGaussian {
    /// A model with `D = data_dim`, `d = scales.len()` and noise variance `sigma2`; `W` is a
    /// random orthonormal `[D, d]` basis scaled column-wise by `scales`, `b ~ N(0, I)`.
    pub fn new(data_dim: i64, scales: &[f64], sigma2: f64) -> Result<Self> {
        let latent = scales.len() as i64;
        if latent < 1 || data_dim < latent || !(sigma2 > 0.0 && sigma2.is_finite()) {
            return Err(ZooError::InvalidConfig {
                field: "linear_gaussian",
                reason: format!(
                    "need 1 ≤ scales.len() ≤ data_dim and a positive finite sigma2, got \
                     data_dim {data_dim}, {latent} scales, sigma2 {sigma2}"
                ),
            });
        }
        let (q, _r) = Tensor::f_linalg_qr(&Tensor::randn([data_dim, latent], OPTS), "reduced")?;
        let s = Tensor::from_slice(scales).to_kind(Kind::Double);
        let w = q * &s;
        let post_var = (s.square() / sigma2 + 1.0).reciprocal();
        Ok(Self {
            w,
            b: Tensor::randn([data_dim], OPTS),
            scales: s,
            sigma2,
            post_var,
            mean_shift: Tensor::zeros([latent], OPTS),
            log_var_shift: Tensor::zeros([latent], OPTS),
        })
    }

    /// The same model with the encoder shifted away from the exact posterior:
    /// `q(z|x) = N(μ(x) + mean_shift, Σ·exp(log_var_shift))`.
    pub fn perturbed(mut self, mean_shift: &[f64], log_var_shift: &[f64]) -> Self {
        self.mean_shift = Tensor::from_slice(mean_shift);
        self.log_var_shift = Tensor::from_slice(log_var_shift);
        self
    }

    /// The same model with `W` replaced by `weight` (`[D, d]`, `f64`). `exact_log_px` and
    /// `sample_data` follow the new `W`; the encoder and `exact_posterior` keep the formulas of
    /// the orthogonal construction, so they are no longer exact unless `WᵀW` is still
    /// `diag(scales²)`: use it for a model whose true posterior a diagonal `q` cannot reach.
    pub fn with_weight(mut self, weight: Tensor) -> Self {
        self.w = weight;
        self
    }

    /// `W`, `[D, d]`.
    pub fn weight(&self) -> &Tensor {
        &self.w
    }

    /// `b`, `[D]`.
    pub fn bias(&self) -> &Tensor {
        &self.b
    }

    /// The column lengths of `W`, `[d]`.
    pub fn scales(&self) -> &Tensor {
        &self.scales
    }

    /// The observation noise variance `σ²`.
    pub fn noise_variance(&self) -> f64 {
        self.sigma2
    }

    /// The exact posterior variances `Σ`, `[d]`.
    pub fn posterior_variance(&self) -> &Tensor {
        &self.post_var
    }

    /// The encoder's mean offset from the exact posterior, `[d]`.
    pub fn mean_shift(&self) -> &Tensor {
        &self.mean_shift
    }

    /// The encoder's log-variance offset from the exact posterior, `[d]`.
    pub fn log_var_shift(&self) -> &Tensor {
        &self.log_var_shift
    }

    /// The exact posterior `p(z|x)` for `x` `[N, D]`.
    pub fn exact_posterior(&self, x: &Tensor) -> Result<DiagGaussian> {
        let mean = x.f_sub(&self.b)?.f_matmul(&self.w)? * &self.post_var / self.sigma2;
        let log_var = self.post_var.log().expand_as(&mean);
        Ok(DiagGaussian::new(mean, log_var)?)
    }

    /// `log N(x; b, W Wᵀ + σ² I)` per example, by dense linear algebra (slogdet + solve).
    pub fn exact_log_px(&self, x: &Tensor) -> Result<Tensor> {
        let d = self.b.size()[0];
        let cov = self.w.matmul(&self.w.tr()) + Tensor::eye(d, OPTS) * self.sigma2;
        let (_sign, logdet) = Tensor::f_linalg_slogdet(&cov)?;
        let centred = x.f_sub(&self.b)?; // [N, D]
        let solved = Tensor::f_linalg_solve(&cov, &centred.tr(), true)?.tr(); // [N, D]
        let maha = (centred * solved).sum_dim_intlist(-1, false, None::<Kind>);
        Ok((maha + logdet + d as f64 * LOG_2PI) * -0.5)
    }

    /// `KL(q(z|x) ‖ p(z|x))` per example: the exact gap between `log p(x)` and the ELBO.
    pub fn exact_gap(&self, x: &Tensor) -> Result<Tensor> {
        Ok(self.encode(x)?.kl(&self.exact_posterior(x)?)?)
    }

    /// `n` draws of `x` from the model, `[n, D]`.
    pub fn sample_data(&self, n: i64) -> Tensor {
        let z = Tensor::randn([n, self.w.size()[1]], OPTS);
        z.matmul(&self.w.tr())
            + &self.b
            + Tensor::randn([n, self.b.size()[0]], OPTS) * self.sigma2.sqrt()
    }
}

impl LatentSpace for LinearGaussian {
    fn latent_dim(&self) -> i64 {
        self.w.size()[1]
    }
}

impl LatentVariableModel for LinearGaussian {
    fn encode(&self, x: &Tensor) -> Result<DiagGaussian> {
        let exact = self.exact_posterior(x)?;
        Ok(DiagGaussian::new(
            exact.mean() + &self.mean_shift,
            exact.log_var() + &self.log_var_shift,
        )?)
    }

    fn log_likelihood(&self, x: &Tensor, z: &Tensor) -> Result<Tensor> {
        let mean = z.f_matmul(&self.w.tr())? + &self.b;
        let log_var = Tensor::full_like(&mean, self.sigma2.ln());
        Ok(DiagGaussian::new(mean, log_var)?.log_prob(x)?)
    }
}
