//! The latent-space Markov chain against a linear-Gaussian model whose encoder is the exact
//! posterior (closed forms for every step and for the stationary distribution), and on the
//! VAE and autoencoder of genae-zoo.

use std::cell::{Cell, RefCell};
use std::sync::{Mutex, MutexGuard};

use genae_samplers::{
    interpolation_path, refined_interpolation, DecodeMode, EncodeMode, MarkovChain,
    MarkovChainConfig, SamplerError,
};
use genae_zoo::{
    Autoencoder, GenerativeAutoencoder, GenerativeDecoder, LatentSpace, Likelihood, Vae, VaeConfig,
};
use tch::{nn, Device, Kind, Tensor};

const F64: (Kind, Device) = (Kind::Double, Device::Cpu);

/// libtorch's random generator is global to the process while tests run on parallel threads:
/// every test that draws random numbers holds this lock, so its draws are its own and
/// repeatable.
fn torch_rng_lock() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// `p(z) = N(0, I_d)`, `p(x|z) = N(Wz + b, σ² I_D)` and its exact posterior
/// `q(z|x) = N(A(x − b), S)` with `S = (I + WᵀW/σ²)⁻¹`, `A = S Wᵀ/σ²`.
struct LinearGaussian {
    w: Tensor,        // [D, d]
    b: Tensor,        // [D]
    sigma: f64,       // σ
    a: Tensor,        // [d, D]
    s: Tensor,        // [d, d]
    s_chol: Tensor,   // lower Cholesky factor of S
    wrong_code: bool, // a broken model: encode_mean returns [N, d + 1]
}

impl LinearGaussian {
    fn new() -> Self {
        let w = Tensor::from_slice(&[1.0, 0.5, 0.0, 1.0, 0.5, -0.5])
            .view([3, 2])
            .to_kind(Kind::Double);
        let b = Tensor::from_slice(&[0.3, -0.2, 0.1]);
        let sigma = 1.0f64;
        let s = (Tensor::eye(2, F64) + w.tr().matmul(&w) / (sigma * sigma)).inverse();
        let a = s.matmul(&w.tr()) / (sigma * sigma);
        let s_chol = s.linalg_cholesky(false);
        Self {
            w,
            b,
            sigma,
            a,
            s,
            s_chol,
            wrong_code: false,
        }
    }

    /// `AW`, the `[d, d]` map of one mean-to-mean step: `E[z_{t+1} | z_t] = AW z_t`.
    fn aw(&self) -> Tensor {
        self.a.matmul(&self.w)
    }
}

impl GenerativeDecoder for LinearGaussian {
    fn decode_mean(&self, z: &Tensor) -> genae_zoo::Result<Tensor> {
        Ok(z.matmul(&self.w.tr()) + &self.b)
    }
}

impl LatentSpace for LinearGaussian {
    fn latent_dim(&self) -> i64 {
        2
    }
}

impl GenerativeAutoencoder for LinearGaussian {
    fn encode_sample(&self, x: &Tensor) -> genae_zoo::Result<Tensor> {
        let mean = self.encode_mean(x)?;
        Ok(&mean + mean.randn_like().matmul(&self.s_chol.tr()))
    }

    fn encode_mean(&self, x: &Tensor) -> genae_zoo::Result<Tensor> {
        let z = (x - &self.b).matmul(&self.a.tr());
        Ok(if self.wrong_code {
            Tensor::cat(&[&z, &z.narrow(1, 0, 1)], 1)
        } else {
            z
        })
    }

    fn decode_sample(&self, z: &Tensor) -> genae_zoo::Result<Tensor> {
        let mean = self.decode_mean(z)?;
        Ok(&mean + mean.randn_like() * self.sigma)
    }

    fn sample_prior(&self, n: i64, device: Device) -> genae_zoo::Result<Tensor> {
        Ok(Tensor::randn([n, 2], (Kind::Double, device)))
    }
}

fn values(t: &Tensor) -> Vec<f64> {
    Vec::<f64>::try_from(&t.to_kind(Kind::Double).reshape([-1])).unwrap()
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
    (a - b).abs().max().double_value(&[])
}

fn chain(steps: usize, decode: DecodeMode, encode: EncodeMode, keep: bool) -> MarkovChain<'static> {
    MarkovChain::new(MarkovChainConfig {
        steps,
        decode,
        encode,
        keep_trajectory: keep,
    })
}

/// Sample mean `[d]` and covariance `[d, d]` (divisor N − 1) of rows `[N, d]`.
fn moments(z: &Tensor) -> (Tensor, Tensor) {
    let n = z.size()[0] as f64;
    let mean = z.mean_dim(0, false, Kind::Double);
    let centred = z - &mean;
    let cov = centred.tr().matmul(&centred) / (n - 1.0);
    (mean, cov)
}

/// Whether the rows of `z` look like draws of `N(mean, cov)`: every entry of the sample mean
/// within `tol_mean`, of the sample covariance within `tol_cov`; the error says which is off.
fn check_moments(
    z: &Tensor,
    mean: &Tensor,
    cov: &Tensor,
    tol_mean: f64,
    tol_cov: f64,
) -> Result<(), String> {
    let (m, c) = moments(z);
    let dm = max_abs_diff(&m, mean);
    let dc = max_abs_diff(&c, cov);
    if dm > tol_mean {
        return Err(format!("mean {:?} vs {:?}", values(&m), values(mean)));
    }
    if dc > tol_cov {
        return Err(format!("covariance {:?} vs {:?}", values(&c), values(cov)));
    }
    Ok(())
}

/// With 20 000 chains the standard error of a mean entry is 1/√20000 ≈ 0.007 and of a
/// covariance entry at most √(2/20000) = 0.01: the tolerances are about 5 standard errors.
const CHAINS: i64 = 20_000;
const TOL_MEAN: f64 = 0.035;
const TOL_COV: f64 = 0.05;

#[test]
fn sampling_chain_of_the_exact_posterior_has_the_prior_as_stationary_distribution() {
    let _rng = torch_rng_lock();
    tch::manual_seed(11);
    let model = LinearGaussian::new();
    let z0 = Tensor::full([CHAINS, 2], 10.0, F64);
    let zero = Tensor::zeros([2], F64);
    let eye = Tensor::eye(2, F64);

    // After 0 steps the chains sit at their start: the prior check must reject them.
    let start = chain(0, DecodeMode::Sample, EncodeMode::Sample, false)
        .run(&model, &z0)
        .unwrap();
    assert!(start.codes.equal(&z0));
    assert!(check_moments(&start.codes, &zero, &eye, TOL_MEAN, TOL_COV).is_err());

    // One step: z_1 = AW z_0 + σ A ε + S^½ η, so z_1 ~ N(AW z_0, σ² A Aᵀ + S) exactly.
    let one = chain(1, DecodeMode::Sample, EncodeMode::Sample, false)
        .run(&model, &z0)
        .unwrap();
    let mean_1 = model.aw().matmul(&Tensor::full([2], 10.0, F64));
    let cov_1 = model.a.matmul(&model.a.tr()) * model.sigma.powi(2) + &model.s;
    check_moments(&one.codes, &mean_1, &cov_1, TOL_MEAN, TOL_COV).unwrap();
    assert!(check_moments(&one.codes, &zero, &eye, TOL_MEAN, TOL_COV).is_err());

    // The contraction AW has eigenvalues λ/(1 + λ) ≤ 0.63 (λ the eigenvalues of WᵀW / σ²):
    // after 40 steps the start is forgotten to 10 · 0.63⁴⁰ < 1e-6.
    let rho = values(&model.aw().linalg_eigvals().abs())
        .into_iter()
        .fold(0.0f64, f64::max);
    assert!(rho < 0.64, "contraction {rho}");
    let stationary = chain(40, DecodeMode::Sample, EncodeMode::Sample, false)
        .run(&model, &z0)
        .unwrap();
    check_moments(&stationary.codes, &zero, &eye, TOL_MEAN, TOL_COV).unwrap();
    // The images are the decoder means of the final codes.
    assert!(stationary.images.allclose(
        &model.decode_mean(&stationary.codes).unwrap(),
        0.0,
        0.0,
        false
    ));
}

#[test]
fn mean_chain_follows_powers_of_the_linear_map_and_keeps_steps_plus_one_entries() {
    let model = LinearGaussian::new();
    let z0 = Tensor::from_slice(&[10.0, -4.0, 0.5, 2.0, 0.0, 0.0]).view([3, 2]);
    let steps = 6;
    let out = chain(steps, DecodeMode::Mean, EncodeMode::Mean, true)
        .run(&model, &z0)
        .unwrap();
    let trajectory = out.trajectory.unwrap();
    assert_eq!(trajectory.codes.size(), [steps as i64 + 1, 3, 2]);
    assert_eq!(trajectory.images.size(), [steps as i64 + 1, 3, 3]);
    // Decode to the mean, encode to the mean: z_t = (AW)^t z_0 (rows: z_0 ((AW)ᵀ)^t).
    let map = model.aw().tr();
    let mut want = z0.copy();
    for t in 0..=steps as i64 {
        let got = trajectory.codes.get(t);
        assert!(max_abs_diff(&got, &want) < 1e-12, "step {t}");
        let image = want.matmul(&model.w.tr()) + &model.b;
        assert!(
            max_abs_diff(&trajectory.images.get(t), &image) < 1e-12,
            "image {t}"
        );
        want = want.matmul(&map);
    }
    assert!(trajectory.codes.get(0).equal(&z0));
    assert!(trajectory.codes.get(steps as i64).equal(&out.codes));
    assert!(trajectory.images.get(steps as i64).equal(&out.images));
    // A step is one transition of the same map.
    let stepped = chain(steps, DecodeMode::Mean, EncodeMode::Mean, false)
        .step(&model, &z0)
        .unwrap();
    assert!(max_abs_diff(&stepped, &z0.matmul(&map)) < 1e-12);
}

#[test]
fn zero_steps_return_the_start_and_a_one_entry_trajectory() {
    let model = LinearGaussian::new();
    let z0 = Tensor::from_slice(&[1.0, 2.0]).view([1, 2]);
    let calls = Cell::new(0);
    let out = chain(0, DecodeMode::Sample, EncodeMode::Sample, true)
        .with_corruption(|x: &Tensor| {
            calls.set(calls.get() + 1);
            Ok(x.copy())
        })
        .run(&model, &z0)
        .unwrap();
    assert!(out.codes.equal(&z0));
    assert!(out.images.equal(&model.decode_mean(&z0).unwrap()));
    let trajectory = out.trajectory.unwrap();
    assert_eq!(trajectory.codes.size(), [1, 1, 2]);
    assert_eq!(trajectory.images.size(), [1, 1, 3]);
    assert_eq!(calls.get(), 0);
}

#[test]
fn chains_repeat_under_a_seed() {
    let _rng = torch_rng_lock();
    let model = LinearGaussian::new();
    let noisy = |x: &Tensor| Ok(x + x.randn_like() * 0.1);
    let sampler = chain(5, DecodeMode::Sample, EncodeMode::Sample, true).with_corruption(noisy);
    let run = |seed: i64| {
        tch::manual_seed(seed);
        sampler.from_prior(&model, 50, Device::Cpu).unwrap()
    };
    let (a, b, c) = (run(3), run(3), run(4));
    assert!(a.codes.equal(&b.codes) && a.images.equal(&b.images));
    let (ta, tb) = (a.trajectory.unwrap(), b.trajectory.unwrap());
    assert!(ta.codes.equal(&tb.codes) && ta.images.equal(&tb.images));
    assert!(!a.codes.equal(&c.codes));
}

#[test]
fn corruption_runs_once_per_step_on_the_decoded_images() {
    let model = LinearGaussian::new();
    let z0 = Tensor::from_slice(&[3.0, -1.0, 0.0, 2.0]).view([2, 2]);
    let steps = 4;
    let seen = RefCell::new(Vec::new());
    let out = chain(steps, DecodeMode::Mean, EncodeMode::Mean, true)
        .with_corruption(|x: &Tensor| {
            seen.borrow_mut().push(x.copy());
            Ok(x + 1.0)
        })
        .run(&model, &z0)
        .unwrap();
    let seen = seen.into_inner();
    assert_eq!(seen.len(), steps);
    let trajectory = out.trajectory.unwrap();
    for (t, x) in seen.iter().enumerate() {
        // The hook sees the decoder mean of the codes of step t.
        assert!(x.equal(&trajectory.images.get(t as i64)), "step {t}");
    }
    // Shifting x by 1 before encoding: z_{t+1} = AW z_t + A·1.
    let shift = model.a.sum_dim_intlist(1, false, Kind::Double);
    let mut want = z0.copy();
    for _ in 0..steps {
        want = want.matmul(&model.aw().tr()) + &shift;
    }
    assert!(max_abs_diff(&out.codes, &want) < 1e-12);
}

#[test]
fn encoded_data_start_is_the_encoder_output() {
    let _rng = torch_rng_lock();
    let model = LinearGaussian::new();
    tch::manual_seed(5);
    let x = Tensor::randn([6, 3], F64);
    let out = chain(0, DecodeMode::Mean, EncodeMode::Mean, false)
        .from_data(&model, &x)
        .unwrap();
    assert!(out.codes.equal(&model.encode_mean(&x).unwrap()));
    // With encoder draws the start is the draw made under the same seed.
    tch::manual_seed(6);
    let drawn = model.encode_sample(&x).unwrap();
    tch::manual_seed(6);
    let out = chain(2, DecodeMode::Mean, EncodeMode::Sample, true)
        .from_data(&model, &x)
        .unwrap();
    assert!(out.trajectory.unwrap().codes.get(0).equal(&drawn));
}

#[test]
fn interpolation_starts_on_the_segment_and_ends_on_the_codes() {
    let model = LinearGaussian::new();
    let z_a = Tensor::from_slice(&[0.1, -0.7, 2.0, 3.0]).view([2, 2]);
    let z_b = Tensor::from_slice(&[1.3, 0.4, -2.0, 0.3]).view([2, 2]);
    let points = 7;
    let out = chain(0, DecodeMode::Mean, EncodeMode::Mean, true)
        .from_interpolation(&model, &z_a, &z_b, points)
        .unwrap();
    let path = out.trajectory.unwrap().codes.get(0).view([2, points, 2]);
    assert!(path.select(1, 0).equal(&z_a));
    assert!(path.select(1, points - 1).equal(&z_b));
    for t in 0..points {
        let alpha = t as f64 / (points - 1) as f64;
        let want = &z_a * (1.0 - alpha) + &z_b * alpha;
        assert!(max_abs_diff(&path.select(1, t), &want) < 1e-15, "point {t}");
    }
    // A single pair of 1-d endpoints gives one path.
    let single = interpolation_path(&z_a.get(0), &z_b.get(0), points).unwrap();
    assert!(single.get(0).equal(&path.get(0)));
}

#[test]
fn refined_interpolation_decodes_the_path_before_and_after_the_chain() {
    let model = LinearGaussian::new();
    let x_a = Tensor::from_slice(&[1.0, 0.0, -1.0, 0.5, 0.5, 0.5]).view([2, 3]);
    let x_b = Tensor::from_slice(&[-2.0, 1.0, 0.0, 0.0, 0.0, 3.0]).view([2, 3]);
    let points = 5;
    let plain = refined_interpolation(&model, &x_a, &x_b, points, 0).unwrap();
    assert_eq!(plain.codes.size(), [2, points, 2]);
    assert!(plain
        .codes
        .select(1, 0)
        .equal(&model.encode_mean(&x_a).unwrap()));
    assert!(plain
        .codes
        .select(1, points - 1)
        .equal(&model.encode_mean(&x_b).unwrap()));
    let decoded = model.decode_mean(&plain.codes.view([-1, 2])).unwrap();
    assert!(plain.plain.equal(&decoded.view([2, points, 3])));
    // Zero steps refine nothing.
    assert!(plain.refined.equal(&plain.plain) && plain.refined_codes.equal(&plain.codes));
    // Three mean-to-mean steps map every path point by (AW)³.
    let refined = chain(3, DecodeMode::Mean, EncodeMode::Mean, false)
        .interpolate(&model, &x_a, &x_b, points)
        .unwrap();
    let map = model.aw().tr();
    let want = plain.codes.matmul(&map).matmul(&map).matmul(&map);
    assert!(max_abs_diff(&refined.refined_codes, &want) < 1e-12);
    assert!(refined.plain.equal(&plain.plain));
    let want_images = model.decode_mean(&want.view([-1, 2])).unwrap();
    assert!(max_abs_diff(&refined.refined, &want_images.view([2, points, 3])) < 1e-12);
}

fn invalid_argument(err: SamplerError) -> (&'static str, String) {
    let message = err.to_string();
    match err {
        SamplerError::InvalidArgument { name, .. } => (name, message),
        other => panic!("expected an invalid argument, got {other:?}"),
    }
}

#[test]
fn errors_name_the_argument() {
    let model = LinearGaussian::new();
    let sampler = chain(2, DecodeMode::Mean, EncodeMode::Mean, false);

    let (name, msg) = invalid_argument(
        sampler
            .run(&model, &Tensor::zeros([4, 3], F64))
            .unwrap_err(),
    );
    assert_eq!(name, "z0");
    assert!(msg.contains("[N, 2]") && msg.contains("[4, 3]"), "{msg}");
    let (name, _) = invalid_argument(sampler.run(&model, &Tensor::zeros([2], F64)).unwrap_err());
    assert_eq!(name, "z0");
    let (name, _) = invalid_argument(
        sampler
            .step(&model, &Tensor::zeros([0, 2], F64))
            .unwrap_err(),
    );
    assert_eq!(name, "z");
    let (name, msg) = invalid_argument(sampler.from_prior(&model, 0, Device::Cpu).unwrap_err());
    assert_eq!(name, "n");
    assert!(msg.contains("got 0"), "{msg}");
    let (name, _) = invalid_argument(
        sampler
            .from_data(&model, &Tensor::zeros([3], F64))
            .unwrap_err(),
    );
    assert_eq!(name, "x");

    let z = Tensor::zeros([2, 2], F64);
    let (name, _) = invalid_argument(sampler.from_interpolation(&model, &z, &z, 1).unwrap_err());
    assert_eq!(name, "points");
    let (name, _) = invalid_argument(
        sampler
            .from_interpolation(&model, &Tensor::zeros([2, 5], F64), &z, 3)
            .unwrap_err(),
    );
    assert_eq!(name, "z_a");
    let (name, _) = invalid_argument(
        sampler
            .from_interpolation(&model, &z, &Tensor::zeros([3, 2], F64), 3)
            .unwrap_err(),
    );
    assert_eq!(name, "z_b");
    let (name, _) = invalid_argument(
        interpolation_path(&z, &Tensor::zeros([2, 2], (Kind::Float, Device::Cpu)), 3).unwrap_err(),
    );
    assert_eq!(name, "z_b");
    let x = Tensor::zeros([2, 3], F64);
    let (name, msg) = invalid_argument(
        sampler
            .interpolate(&model, &x, &Tensor::zeros([3, 3], F64), 4)
            .unwrap_err(),
    );
    assert_eq!(name, "x_b");
    assert!(msg.contains("[2, 3]") && msg.contains("[3, 3]"), "{msg}");
    let (name, _) = invalid_argument(sampler.interpolate(&model, &x, &x, 0).unwrap_err());
    assert_eq!(name, "points");

    // The corruption must keep the shape, and its own errors come back as such.
    let shrink = chain(2, DecodeMode::Mean, EncodeMode::Mean, false)
        .with_corruption(|x: &Tensor| Ok(x.narrow(1, 0, 2)));
    let (name, msg) = invalid_argument(shrink.run(&model, &z).unwrap_err());
    assert_eq!(name, "corruption");
    assert!(msg.contains("[2, 3]") && msg.contains("[2, 2]"), "{msg}");
    let failing = chain(2, DecodeMode::Mean, EncodeMode::Mean, false)
        .with_corruption(|x: &Tensor| Ok(x.f_add(&Tensor::zeros([5], F64))?));
    match failing.run(&model, &z).unwrap_err() {
        SamplerError::Corruption(inner) => assert!(!inner.to_string().is_empty()),
        other => panic!("expected a corruption error, got {other:?}"),
    }

    // A model whose encoder returns codes of the wrong size is caught and named.
    let broken = LinearGaussian {
        wrong_code: true,
        ..LinearGaussian::new()
    };
    let (name, msg) = invalid_argument(sampler.run(&broken, &z).unwrap_err());
    assert_eq!(name, "model");
    assert!(
        msg.contains("encode_mean") && msg.contains("[2, 3]"),
        "{msg}"
    );
}

/// A small MLP model with Bernoulli pixels, so decoded draws stay in `{0, 1}` (an untrained
/// model with a learned-variance Gaussian decoder can blow up along a sampling chain: wide
/// draws of `x` give wider codes, and so on).
fn vae_config() -> VaeConfig {
    VaeConfig {
        input_dim: 12,
        hidden: vec![16],
        latent_dim: 3,
        likelihood: Likelihood::Bernoulli,
        ..Default::default()
    }
}

#[test]
fn runs_on_a_vae() {
    let _rng = torch_rng_lock();
    tch::manual_seed(2);
    let vs = nn::VarStore::new(Device::Cpu);
    let vae = Vae::new(&vs.root(), &vae_config()).unwrap();
    let calls = Cell::new(0);
    let sampler =
        chain(3, DecodeMode::Sample, EncodeMode::Sample, true).with_corruption(|x: &Tensor| {
            calls.set(calls.get() + 1);
            Ok(x.f_mul(&x.rand_like().ge(0.2))?)
        });
    let out = sampler.from_prior(&vae, 9, Device::Cpu).unwrap();
    assert_eq!(out.codes.size(), [9, 3]);
    assert_eq!(out.images.size(), [9, 12]);
    assert!(!out.codes.requires_grad() && !out.images.requires_grad());
    let trajectory = out.trajectory.unwrap();
    assert_eq!(trajectory.codes.size(), [4, 9, 3]);
    assert_eq!(trajectory.images.size(), [4, 9, 12]);
    assert_eq!(calls.get(), 3);
    assert!(bool::try_from(out.images.isfinite().all()).unwrap());

    let x = Tensor::rand([5, 12], (Kind::Float, Device::Cpu));
    let from_data = sampler.from_data(&vae, &x).unwrap();
    assert_eq!(from_data.codes.size(), [5, 3]);
    let interpolation = sampler.interpolate(&vae, &x, &x.flip([0]), 4).unwrap();
    assert_eq!(interpolation.refined.size(), [5, 4, 12]);
    assert_eq!(interpolation.trajectory.unwrap().codes.size(), [4, 20, 3]);
    assert_eq!(calls.get(), 9);

    let (name, _) = invalid_argument(
        sampler
            .run(&vae, &Tensor::zeros([2, 4], (Kind::Float, Device::Cpu)))
            .unwrap_err(),
    );
    assert_eq!(name, "z0");
}

#[test]
fn runs_on_a_deterministic_autoencoder() {
    let _rng = torch_rng_lock();
    tch::manual_seed(3);
    let vs = nn::VarStore::new(Device::Cpu);
    let ae = Autoencoder::new(&vs.root(), &vae_config()).unwrap();
    let x = Tensor::rand([4, 12], (Kind::Float, Device::Cpu));
    let sampler = chain(2, DecodeMode::Mean, EncodeMode::Mean, true);
    let out = sampler.from_data(&ae, &x).unwrap();
    let trajectory = out.trajectory.unwrap();
    // Deterministic: z_0 = enc(x), z_{t+1} = enc(dec_mean(z_t)).
    let z0 = ae.encode(&x).unwrap();
    assert!(trajectory.codes.get(0).equal(&z0));
    let z1 = ae.encode(&ae.decode_mean(&z0).unwrap()).unwrap();
    assert!(max_abs_diff(&trajectory.codes.get(1), &z1) < 1e-6);
    let again = sampler.from_data(&ae, &x).unwrap();
    assert!(again.codes.equal(&out.codes));

    // No prior to start from.
    match sampler.from_prior(&ae, 3, Device::Cpu).unwrap_err() {
        SamplerError::Model(err) => assert!(err.to_string().contains("prior"), "{err}"),
        other => panic!("expected a model error, got {other:?}"),
    }
}
