//! The denoising bound `L_dvae` against the ELBO and closed forms.
//!
//! Most checks use the linear-Gaussian model of `tests/bounds.rs`: `z ~ N(0, I)`,
//! `x = W z + b + ε`, `ε ~ N(0, σ² I)`, orthogonal columns in `W` (`WᵀW = diag(s²)`), so the
//! exact posterior is `N(μ(x), Σ)` with `Σ = diag(1 / (1 + s²/σ²))`, `μ(x) = Σ Wᵀ (x − b) / σ²`,
//! and the encoder is `q(z|x) = N(μ(x) + a, Σ·exp(l))` for known shifts `a`, `l`.
//!
//! For a corrupted input `x̃ = x + δ` the DVAE term is an ELBO of the clean `x` with the
//! posterior `q(z|x̃)`, so `log p(x) − L_dvae = E_δ KL(q(z|x̃) ‖ p(z|x))`. With
//! `μ(x̃) − μ(x) = Σ Wᵀ δ / σ²` this is, in closed form,
//!
//! `G(x) = KL(q(z|x) ‖ p(z|x)) + aᵀ Wᵀ E[δ] / σ² + (E[δ]ᵀ A E[δ] + Σ_i A_ii Var(δ_i)) / (2σ⁴)`,
//! `A = W Σ Wᵀ`,
//!
//! with `E[δ]`, `Var(δ_i)` per corruption: Gaussian `0`, `σ_c²`; masking `−p x`, `p(1−p) x²`;
//! salt-and-pepper `p/2 (1 − 2x)`, `p/2 (x² + (1−x)²) − E[δ]²`.

use std::cell::RefCell;
use std::sync::{Mutex, MutexGuard};

use genae_estimators::{dvae, dvae_bound, elbo, elbo_with_samples, EstimatorError, Objective};
use genae_tensor::{Corruption, DiagGaussian};
use genae_zoo::{LatentSpace, LatentVariableModel, LinearGaussian, Result, Vae, VaeConfig};
use tch::{nn, Device, Kind, Tensor};

/// libtorch's random generator is global to the process while tests run on parallel threads:
/// every test that draws random numbers holds this lock, so its draws are its own and
/// repeatable.
fn torch_rng_lock() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Closed forms these tests need beyond what [`LinearGaussian`] offers.
trait ClosedForms {
    fn dvae_gap(&self, x: &Tensor, e: &Tensor, v: &Tensor) -> Tensor;
    fn reconstruction_variance(&self, x: &Tensor) -> Tensor;
}

impl ClosedForms for LinearGaussian {
    /// The closed-form `log p(x) − L_dvae` per example (see the module docs), given the mean
    /// `e` and variance `v` of the corruption `δ = x̃ − x` per element (`[N, D]`).
    fn dvae_gap(&self, x: &Tensor, e: &Tensor, v: &Tensor) -> Tensor {
        let a_mat = (self.weight() * self.posterior_variance()).matmul(&self.weight().tr()); // W Σ Wᵀ, [D, D]
        let s4 = self.noise_variance() * self.noise_variance();
        let linear = e.matmul(self.weight()).matmul(self.mean_shift()) / self.noise_variance();
        let quad = (e.matmul(&a_mat) * e).sum_dim_intlist(-1, false, None::<Kind>)
            + v.matmul(&a_mat.diagonal(0, 0, 1));
        self.exact_gap(x).unwrap() + linear + quad / (2.0 * s4)
    }

    /// `Var_{z ~ q(z|x)} log p(x|z)` per example, in closed form: with `z = m + s∘ε`,
    /// `r = x − b − W m`, `α_j = (Wᵀ r)_j s_j`, `γ_j = s²_{W,j} s_j²`, it is
    /// `(Σ α_j² + ½ Σ γ_j²) / σ⁴`.
    fn reconstruction_variance(&self, x: &Tensor) -> Tensor {
        let q = self.encode(x).unwrap();
        let s = q.std();
        let r = x - self.bias() - q.mean().matmul(&self.weight().tr());
        let alpha = r.matmul(self.weight()) * &s;
        let gamma = self.scales().square() * s.square();
        let sum = |t: Tensor| t.sum_dim_intlist(-1, false, None::<Kind>);
        (sum(alpha.square()) + sum(gamma.square()) * 0.5)
            / (self.noise_variance() * self.noise_variance())
    }
}

/// 5-d data, 2-d latent, `q` off the posterior (ELBO gap 0.65 nats on clean data).
fn perturbed_model() -> LinearGaussian {
    LinearGaussian::new(5, &[1.5, 0.6], 0.4)
        .unwrap()
        .perturbed(&[0.4, -0.3], &[0.3, 0.2])
}

/// Records what the model is asked, to check what the encoder and the decoder see.
struct Spy<'a> {
    inner: &'a LinearGaussian,
    encoded: RefCell<Vec<Tensor>>,
    scored: RefCell<Vec<(Tensor, Tensor)>>,
}

impl<'a> Spy<'a> {
    fn new(inner: &'a LinearGaussian) -> Self {
        Self {
            inner,
            encoded: RefCell::new(Vec::new()),
            scored: RefCell::new(Vec::new()),
        }
    }
}

impl LatentSpace for Spy<'_> {
    fn latent_dim(&self) -> i64 {
        self.inner.latent_dim()
    }
}

impl LatentVariableModel for Spy<'_> {
    fn encode(&self, x: &Tensor) -> Result<DiagGaussian> {
        self.encoded.borrow_mut().push(x.copy());
        self.inner.encode(x)
    }

    fn log_likelihood(&self, x: &Tensor, z: &Tensor) -> Result<Tensor> {
        self.scored.borrow_mut().push((x.copy(), z.copy()));
        self.inner.log_likelihood(x, z)
    }
}

fn values(t: &Tensor) -> Vec<f64> {
    Vec::<f64>::try_from(&t.to_kind(Kind::Double).flatten(0, -1)).unwrap()
}

fn scalar(t: &Tensor) -> f64 {
    t.to_kind(Kind::Double).double_value(&[])
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

/// Mean and its standard error.
fn mean_se(v: &[f64]) -> (f64, f64) {
    let m = mean(v);
    let var = v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (v.len() - 1) as f64;
    (m, (var / v.len() as f64).sqrt())
}

fn small_vae(input_dim: i64, latent_dim: i64) -> (nn::VarStore, Vae) {
    let vs = nn::VarStore::new(Device::Cpu);
    let config = VaeConfig {
        input_dim,
        hidden: vec![16],
        latent_dim,
        ..Default::default()
    };
    let vae = Vae::new(&vs.root(), &config).unwrap();
    (vs, vae)
}

fn binary_data(n: i64, dim: i64) -> Tensor {
    Tensor::rand([n, dim], (Kind::Float, Device::Cpu)).round()
}

fn gaussian(sigma: f64) -> Corruption {
    Corruption::Gaussian {
        sigma,
        clamp: false,
    }
}

/// Mean and variance of `δ = x̃ − x` per element for the corruptions used here.
fn corruption_moments(c: &Corruption, x: &Tensor) -> (Tensor, Tensor) {
    match c {
        Corruption::None => (x.zeros_like(), x.zeros_like()),
        Corruption::Gaussian {
            sigma,
            clamp: false,
        } => (x.zeros_like(), x.ones_like() * (sigma * sigma)),
        Corruption::Masking { p } => (x * -*p, x.square() * (p * (1.0 - p))),
        Corruption::SaltAndPepper { p } => {
            let e = (x * -2.0 + 1.0) * (p / 2.0);
            let second = (x.square() + (x * -1.0 + 1.0).square()) * (p / 2.0);
            let v = second - e.square();
            (e, v)
        }
        // Independent steps: the noise of the last step adds to what the first left.
        Corruption::Chain { steps } if steps.len() == 2 => {
            let (e1, v1) = corruption_moments(&steps[0], x);
            let (e2, v2) = corruption_moments(&steps[1], x);
            assert!(
                matches!(steps[1], Corruption::Gaussian { .. }),
                "only masking/... then Gaussian noise is covered"
            );
            (e1 + e2, v1 + v2)
        }
        other => panic!("no closed form here for {other}"),
    }
}

// ---------------------------------------------------------------------------------------------
// The DVAE bound without corruption is the ELBO

#[test]
fn without_corruption_one_copy_is_the_elbo_draw_for_draw() {
    let _rng = torch_rng_lock();
    tch::manual_seed(1);
    let (_vs, vae) = small_vae(12, 3);
    let x = binary_data(7, 12);
    for identity in [
        Corruption::None,
        gaussian(0.0),
        Corruption::Masking { p: 0.0 },
        Corruption::chain([Corruption::SaltAndPepper { p: 0.0 }]),
    ] {
        for samples in [1, 5] {
            tch::manual_seed(10);
            let got = dvae(&vae, &x, &identity, 1, samples).unwrap();
            tch::manual_seed(10);
            let want = if samples == 1 {
                elbo(&vae, &x).unwrap()
            } else {
                elbo_with_samples(&vae, &x, samples).unwrap()
            };
            assert!(got.elbo.equal(&want.elbo), "{identity}, K = {samples}");
            assert!(got.reconstruction.equal(&want.reconstruction));
            assert!(got.kl.equal(&want.kl));
        }
    }
    // Another seed gives another value: the equality above is not a constant.
    tch::manual_seed(10);
    let a = dvae_bound(&vae, &x, &Corruption::None, 1, 1).unwrap();
    tch::manual_seed(11);
    let b = dvae_bound(&vae, &x, &Corruption::None, 1, 1).unwrap();
    assert!(!a.equal(&b));

    // The objective: Dvae without corruption is the plain ELBO objective.
    tch::manual_seed(12);
    let dvae_out = Objective::dvae(Corruption::None)
        .loss(&vae, &x, 1.0)
        .unwrap();
    tch::manual_seed(12);
    let elbo_out = Objective::default().loss(&vae, &x, 1.0).unwrap();
    let (l1, l2) = (scalar(&dvae_out.loss), scalar(&elbo_out.loss));
    assert!((l1 - l2).abs() < 1e-6 * l2.abs(), "{l1} vs {l2}");
    assert!(dvae_out.terms.elbo.equal(&elbo_out.terms.elbo));
}

// ---------------------------------------------------------------------------------------------
// What the encoder and the decoder see

#[test]
fn the_encoder_sees_corrupted_copies_and_the_decoder_the_clean_input() {
    let _rng = torch_rng_lock();
    tch::manual_seed(2);
    let model = perturbed_model();
    let x = model.sample_data(6);
    let (m, k) = (3, 4);
    let spy = Spy::new(&model);
    // Masking everything makes x̃ = 0: unmistakable.
    let terms = dvae(&spy, &x, &Corruption::Masking { p: 1.0 }, m, k).unwrap();
    assert_eq!(terms.elbo.size(), vec![6]);
    let encoded = spy.encoded.borrow();
    assert_eq!(encoded.len(), 1);
    assert_eq!(encoded[0].size(), vec![m * 6, 5]);
    assert_eq!(scalar(&encoded[0].abs().max()), 0.0);
    let scored = spy.scored.borrow();
    assert_eq!(scored.len(), 1);
    let (xs, z) = &scored[0];
    assert_eq!(z.size(), vec![k * m * 6, 2]);
    assert!(
        xs.equal(&x.repeat([k * m, 1])),
        "the decoder must score clean x"
    );
    drop((encoded, scored));

    // With x̃ = 0 every copy has the same posterior: the KL term is exactly KL(q(z|0) ‖ p(z)).
    let q0 = model.encode(&x.zeros_like()).unwrap();
    let kl0 = q0.kl_to_standard_normal();
    assert!(scalar(&(&terms.kl - kl0).abs().max()) < 1e-12);

    // Without corruption the encoder sees M exact copies of x.
    let spy = Spy::new(&model);
    dvae(&spy, &x, &Corruption::None, m, 1).unwrap();
    assert!(spy.encoded.borrow()[0].equal(&x.repeat([m, 1])));
    assert_eq!(spy.scored.borrow()[0].1.size(), vec![m * 6, 2]);
}

// ---------------------------------------------------------------------------------------------
// A valid lower bound, matching its closed form

#[test]
fn dvae_bound_matches_its_closed_form_and_stays_below_log_px() {
    let _rng = torch_rng_lock();
    tch::manual_seed(3);
    let model = perturbed_model();
    // 20 examples, each replicated 1000 times: 20 000 independent estimates per corruption.
    let base = model.sample_data(20);
    let x = base.repeat([1000, 1]);
    let log_px = model.exact_log_px(&x).unwrap();
    let cases = [
        (Corruption::None, 1, 1),
        (gaussian(0.3), 1, 1),
        (gaussian(1.0), 1, 1),
        (gaussian(1.0), 3, 2),
        (Corruption::Masking { p: 0.2 }, 1, 1),
        (Corruption::Masking { p: 0.7 }, 1, 1),
        (Corruption::SaltAndPepper { p: 0.3 }, 1, 1),
        (
            Corruption::chain([Corruption::Masking { p: 0.2 }, gaussian(0.3)]),
            2,
            1,
        ),
    ];
    let mut gaussian_gaps = Vec::new();
    for (corruption, copies, samples) in cases {
        let bound = tch::no_grad(|| dvae_bound(&model, &x, &corruption, copies, samples)).unwrap();
        let gaps = values(&(&log_px - bound));
        let (gap, se) = mean_se(&gaps);
        let (e, v) = corruption_moments(&corruption, &x);
        let want = mean(&values(&model.dvae_gap(&x, &e, &v)));
        println!("{corruption} (M = {copies}, K = {samples}): log p(x) − L_dvae = {gap:.4} ± {se:.4}, closed form {want:.4}");
        assert!(want > 0.0);
        assert!(
            gap > -3.0 * se,
            "{corruption}: L_dvae above log p(x) by {}",
            -gap
        );
        assert!(
            (gap - want).abs() < 4.5 * se,
            "{corruption} (M = {copies}, K = {samples}): gap {gap} ± {se} vs closed form {want}"
        );
        if let Corruption::Gaussian { sigma, .. } = corruption {
            if copies == 1 {
                gaussian_gaps.push((sigma, gap, se));
            }
        }
    }
    // Without corruption the gap is the ELBO gap; more Gaussian noise, a looser bound.
    let clean_gap = mean(&values(&model.exact_gap(&x).unwrap()));
    assert!(clean_gap > 0.5, "{clean_gap}");
    for pair in gaussian_gaps.windows(2) {
        let ((s_a, g_a, se_a), (s_b, g_b, se_b)) = (pair[0], pair[1]);
        assert!(
            g_b - g_a > 4.0 * (se_a * se_a + se_b * se_b).sqrt(),
            "σ {s_a} → {s_b}: gap {g_a} → {g_b}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// M and K: more samples, less variance

/// Per-example sample variances of an `[R·N]` estimate of `N` examples replicated `R` times.
fn per_example_variances(estimate: &Tensor, n: i64) -> Tensor {
    estimate
        .view([-1, n])
        .to_kind(Kind::Double)
        .var_dim(0, true, false)
}

#[test]
fn copies_and_samples_average_independent_draws() {
    let _rng = torch_rng_lock();
    tch::manual_seed(4);
    let model = perturbed_model();
    let n = 20;
    let base = model.sample_data(n);
    let x = base.repeat([2000, 1]);

    // Without corruption the KL is exact and the M·K draws of z are independent: the
    // variance is Var_q(log p(x|z)) / (M·K), known in closed form.
    let single = model.reconstruction_variance(&base);
    for (copies, samples) in [(1, 1), (1, 4), (3, 1), (2, 3)] {
        let bound =
            tch::no_grad(|| dvae_bound(&model, &x, &Corruption::None, copies, samples)).unwrap();
        let var = per_example_variances(&bound, n);
        let ratio = mean(&values(&(var * (copies * samples) as f64 / &single)));
        println!("no corruption, M = {copies}, K = {samples}: variance / closed form = {ratio:.4}");
        assert!(
            (ratio - 1.0).abs() < 0.06,
            "M = {copies}, K = {samples}: variance ratio {ratio}"
        );
    }

    // With corruption M averages independent (x̃, z) pairs (variance / M), while K only averages
    // the z draws of one x̃: the corruption's share of the variance stays.
    let noise = gaussian(0.5);
    let mean_variance = |copies, samples| {
        let bound = tch::no_grad(|| dvae_bound(&model, &x, &noise, copies, samples)).unwrap();
        mean(&values(&per_example_variances(&bound, n)))
    };
    let v11 = mean_variance(1, 1);
    let v41 = mean_variance(4, 1);
    let v14 = mean_variance(1, 4);
    println!("Gaussian noise: variance {v11:.4} (M = K = 1), {v41:.4} (M = 4), {v14:.4} (K = 4)");
    assert!(
        (v41 / v11 - 0.25).abs() < 0.03,
        "M = 4 should divide the variance by 4: {v11} → {v41}"
    );
    assert!(
        v14 < 0.9 * v11,
        "K = 4 should lower the variance: {v11} → {v14}"
    );
    assert!(
        v14 > 1.5 * v41,
        "K averages z draws only, not corruptions: {v14} vs {v41}"
    );
}

// ---------------------------------------------------------------------------------------------
// Training with the DVAE objective

#[test]
fn gradients_reach_the_encoder_and_the_decoder() {
    let _rng = torch_rng_lock();
    tch::manual_seed(5);
    let (vs, vae) = small_vae(10, 2);
    let x = binary_data(8, 10);
    let objective = Objective::Dvae {
        corruption: Corruption::chain([
            Corruption::Masking { p: 0.5 },
            Corruption::SaltAndPepper { p: 0.1 },
        ]),
        copies: 2,
        samples: 3,
    };
    let out = objective.loss(&vae, &x, 1.0).unwrap();
    assert_eq!(out.loss.dim(), 0);
    assert!(!out.terms.elbo.requires_grad());
    out.loss.backward();
    let mut names = Vec::new();
    for (name, var) in vs.variables() {
        let g = scalar(&var.grad().abs().sum(Kind::Double));
        assert!(g > 0.0, "no gradient reached {name}");
        names.push(name);
    }
    assert!(names.iter().any(|n| n.starts_with("encoder")), "{names:?}");
    assert!(names.iter().any(|n| n.starts_with("decoder")), "{names:?}");
    assert!(dvae_bound(&vae, &x, &Corruption::Masking { p: 0.5 }, 1, 1)
        .unwrap()
        .requires_grad());
}

#[test]
fn the_objective_is_minus_the_mean_bound_with_a_scalable_kl() {
    let _rng = torch_rng_lock();
    tch::manual_seed(6);
    let (_vs, vae) = small_vae(12, 3);
    let x = binary_data(10, 12);
    let corruption = Corruption::SaltAndPepper { p: 0.3 };
    let objective = Objective::Dvae {
        corruption: corruption.clone(),
        copies: 2,
        samples: 2,
    };
    tch::manual_seed(7);
    let out = objective.loss(&vae, &x, 1.0).unwrap();
    tch::manual_seed(7);
    let terms = dvae(&vae, &x, &corruption, 2, 2).unwrap();
    let want = -scalar(&terms.elbo.mean(Kind::Double));
    assert!((scalar(&out.loss) - want).abs() < 1e-5 * want.abs());
    assert!(out.terms.elbo.equal(&terms.elbo.detach()));
    assert!(out.terms.kl.equal(&terms.kl.detach()));
    let means = out.terms.means();
    assert!(means.kl > 0.0);
    assert!((means.elbo - (means.reconstruction - means.kl)).abs() < 1e-4);

    // KL warm-up scales the KL term only; the logged terms stay unweighted.
    tch::manual_seed(7);
    let base = objective.loss(&vae, &x, 0.0).unwrap();
    for scale in [0.25, 2.0] {
        tch::manual_seed(7);
        let scaled = objective.loss(&vae, &x, scale).unwrap();
        let got = scalar(&(&scaled.loss - &base.loss));
        assert!(
            (got - scale * means.kl).abs() < 1e-4,
            "scale {scale}: {got} vs {}",
            scale * means.kl
        );
        assert!(scaled.terms.elbo.equal(&out.terms.elbo));
    }
    assert_eq!(
        Objective::dvae(corruption.clone()),
        Objective::Dvae {
            corruption,
            copies: 1,
            samples: 1
        }
    );
}

#[test]
fn results_keep_the_kind_of_the_model() {
    let _rng = torch_rng_lock();
    tch::manual_seed(8);
    let model = perturbed_model();
    let x = model.sample_data(3);
    let noise = gaussian(0.2);
    assert_eq!(
        dvae_bound(&model, &x, &noise, 2, 2).unwrap().kind(),
        Kind::Double
    );
    let (_vs, vae) = small_vae(6, 2);
    let terms = dvae(&vae, &binary_data(3, 6), &noise, 2, 1).unwrap();
    assert_eq!(terms.elbo.kind(), Kind::Float);
    assert_eq!(terms.kl.size(), vec![3]);
}

// ---------------------------------------------------------------------------------------------
// Arguments

fn assert_names(result: std::result::Result<impl std::fmt::Debug, EstimatorError>, arg: &str) {
    let err = result.unwrap_err();
    match &err {
        EstimatorError::InvalidArgument { name, .. } => assert_eq!(*name, arg, "{err}"),
        other => panic!("expected InvalidArgument for `{arg}`, got {other:?}"),
    }
    assert!(err.to_string().contains(&format!("`{arg}`")), "{err}");
}

#[test]
fn invalid_arguments_name_the_argument() {
    let _rng = torch_rng_lock();
    tch::manual_seed(9);
    let model = perturbed_model();
    let x = model.sample_data(4);
    let none = Corruption::None;
    assert_names(dvae_bound(&model, &x, &none, 0, 1), "copies");
    assert_names(dvae_bound(&model, &x, &none, -2, 1), "copies");
    assert_names(dvae_bound(&model, &x, &none, 1, 0), "samples");
    assert_names(dvae(&model, &x, &none, 1, -1), "samples");
    assert_names(dvae(&model, &x.narrow(0, 0, 0), &none, 1, 1), "x");
    let bad = Corruption::chain([gaussian(0.1), Corruption::Masking { p: 1.5 }]);
    assert_names(dvae(&model, &x, &bad, 1, 1), "corruption");
    let err = dvae(&model, &x, &bad, 1, 1).unwrap_err().to_string();
    assert!(err.contains("`steps[1].p`"), "{err}");
    for (objective, arg) in [
        (
            Objective::Dvae {
                corruption: none.clone(),
                copies: 0,
                samples: 1,
            },
            "copies",
        ),
        (
            Objective::Dvae {
                corruption: none.clone(),
                copies: 1,
                samples: 0,
            },
            "samples",
        ),
        (Objective::dvae(gaussian(-0.5)), "corruption"),
    ] {
        assert_names(objective.validate(), arg);
        assert_names(objective.loss(&model, &x, 1.0), arg);
    }
    assert_names(
        Objective::dvae(none).loss(&model, &x, -1.0),
        "kl_weight_scale",
    );
}
