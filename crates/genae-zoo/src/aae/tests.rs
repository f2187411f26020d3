//! Unit tests of the adversarial autoencoder.

use super::*;

fn stores() -> [nn::VarStore; 3] {
    [(); 3].map(|_| nn::VarStore::new(Device::Cpu))
}

fn config(latent_dim: i64) -> AaeConfig {
    AaeConfig {
        networks: VaeConfig {
            input_dim: 6,
            hidden: vec![16],
            latent_dim,
            ..Default::default()
        },
        discriminator_hidden: vec![32, 32],
        ..Default::default()
    }
}

#[test]
fn parameters_live_in_the_three_players_stores() {
    let _rng = crate::torch_rng_lock();
    let [e, d, c] = stores();
    let _aae = Aae::new(&e.root(), &d.root(), &c.root(), &config(2)).unwrap();
    assert!(!e.variables().is_empty() && !d.variables().is_empty());
    // The discriminator: 2 → 32 → 32 → 1.
    let n: i64 = c.variables().values().map(|t| t.numel() as i64).sum();
    assert_eq!(n, 2 * 32 + 32 + 32 * 32 + 32 + 32 + 1);
}

#[test]
fn discriminator_loss_reaches_only_the_discriminator() {
    let _rng = crate::torch_rng_lock();
    let [e, d, c] = stores();
    let aae = Aae::new(&e.root(), &d.root(), &c.root(), &config(2)).unwrap();
    let x = Tensor::rand([8, 6], (Kind::Float, Device::Cpu));
    let codes = aae.code(&x).unwrap();
    let prior = aae.sample_prior_codes(8, None, Device::Cpu).unwrap();
    let d_loss = aae.discriminator_loss(&codes, &prior, None).unwrap();
    d_loss.loss.backward();
    assert!(e.trainable_variables().iter().all(|t| !t.grad().defined()));
    assert!(c.trainable_variables().iter().all(|t| t.grad().defined()));
    aae.generator_loss(&codes, None).unwrap().backward();
    assert!(e.trainable_variables().iter().all(|t| t.grad().defined()));
}

#[test]
fn discriminator_learns_the_log_density_ratio_of_two_gaussians() {
    let _rng = crate::torch_rng_lock();
    // Real N(1, 1), fake N(−1, 1) in 1-d: the optimal logit is log p_real/p_fake = 2z.
    tch::manual_seed(31);
    let [e, d, c] = stores();
    let mut cfg = config(1);
    cfg.discriminator_hidden = vec![32];
    let aae = Aae::new(&e.root(), &d.root(), &c.root(), &cfg).unwrap();
    let mut opt = nn::OptimizerConfig::build(nn::Adam::default(), &c, 3e-3).unwrap();
    for _ in 0..1500 {
        let real = Tensor::randn([256, 1], (Kind::Float, Device::Cpu)) + 1.0;
        let fake = Tensor::randn([256, 1], (Kind::Float, Device::Cpu)) - 1.0;
        let d_loss = aae.discriminator_loss(&fake, &real, None).unwrap();
        opt.backward_step(&d_loss.loss);
    }
    let z = Tensor::linspace(-1.5, 1.5, 7, (Kind::Float, Device::Cpu)).unsqueeze(1);
    let logits = tch::no_grad(|| aae.discriminator_logits(&z, None)).unwrap();
    let err = (logits - z.squeeze_dim(1) * 2.0)
        .abs()
        .max()
        .double_value(&[]);
    assert!(err < 0.35, "max |T(z) − 2z| = {err}");
}

#[test]
fn r1_penalty_of_a_linear_discriminator_is_its_weight_norm() {
    let _rng = crate::torch_rng_lock();
    // D(z) = w·z + b: ∇_z D = w everywhere, so E‖∇D‖² = ‖w‖² and the penalty's gradient
    // with respect to w is γ·w.
    tch::manual_seed(12);
    let [e, d, c] = stores();
    let mut cfg = config(3);
    cfg.discriminator_hidden = vec![];
    cfg.discriminator_r1 = 10.0;
    let aae = Aae::new(&e.root(), &d.root(), &c.root(), &cfg).unwrap();
    let (w, _) = c
        .variables()
        .into_iter()
        .find(|(name, _)| name.ends_with("weight"))
        .map(|(_, t)| (t.shallow_clone(), ()))
        .unwrap();
    let w_sq = w.square().sum(Kind::Double).double_value(&[]);
    let codes = Tensor::randn([16, 3], (Kind::Float, Device::Cpu));
    let prior = Tensor::randn([16, 3], (Kind::Float, Device::Cpu));
    let with = aae.discriminator_loss(&codes, &prior, None).unwrap();
    let sq = with.prior_gradient_sq.as_ref().unwrap().double_value(&[]);
    assert!((sq - w_sq).abs() < 1e-5 * w_sq.max(1.0));
    // The loss without the penalty, by hand.
    let real = tch::no_grad(|| aae.discriminator_logits(&prior, None)).unwrap();
    let fake = tch::no_grad(|| aae.discriminator_logits(&codes, None)).unwrap();
    let softplus = |t: Tensor| t.exp().log1p().mean(Kind::Double).double_value(&[]);
    let bce = 0.5 * (softplus(-real) + softplus(fake));
    let total = with.loss.double_value(&[]);
    assert!(
        (total - (bce + 5.0 * w_sq)).abs() < 1e-4,
        "{total} vs {bce} + 5·{w_sq}"
    );
    // The penalty's gradient on w is γ·w (the BCE part is measured by subtraction).
    with.loss.backward();
    let grad_with = w.grad().copy();
    cfg.discriminator_r1 = 0.0;
    let [e2, d2, mut c2] = stores();
    let plain = Aae::new(&e2.root(), &d2.root(), &c2.root(), &cfg).unwrap();
    c2.copy(&c).unwrap();
    let without = plain.discriminator_loss(&codes, &prior, None).unwrap();
    assert!(without.prior_gradient_sq.is_none());
    without.loss.backward();
    let w2 = c2
        .variables()
        .into_iter()
        .find(|(name, _)| name.ends_with("weight"))
        .unwrap()
        .1;
    let penalty_grad = grad_with - w2.grad();
    let err = (penalty_grad - &w * 10.0).abs().max().double_value(&[]);
    assert!(err < 1e-4, "∂penalty/∂w − γw = {err}");
}

#[test]
fn interpolate_penalty_of_a_linear_discriminator_is_its_weight_norm_minus_one() {
    let _rng = crate::torch_rng_lock();
    // D(z) = w·z + b has ∇D = w at every interpolate: the penalty is (‖w‖ − 1)² and the
    // loss grows by λ times it.
    tch::manual_seed(13);
    let [e, d, c] = stores();
    let mut cfg = config(3);
    cfg.discriminator_hidden = vec![];
    cfg.discriminator_gp = 10.0;
    let aae = Aae::new(&e.root(), &d.root(), &c.root(), &cfg).unwrap();
    let w = c
        .variables()
        .into_iter()
        .find(|(name, _)| name.ends_with("weight"))
        .unwrap()
        .1;
    let norm = w.square().sum(Kind::Double).sqrt().double_value(&[]);
    let codes = Tensor::randn([16, 3], (Kind::Float, Device::Cpu));
    let prior = Tensor::randn([16, 3], (Kind::Float, Device::Cpu));
    let out = aae.discriminator_loss(&codes, &prior, None).unwrap();
    let penalty = out.interpolate_penalty.unwrap().double_value(&[]);
    let want = (norm - 1.0).powi(2);
    assert!(
        (penalty - want).abs() < 1e-5,
        "{penalty} vs (‖w‖ − 1)² = {want}"
    );
    let real = tch::no_grad(|| aae.discriminator_logits(&prior, None)).unwrap();
    let fake = tch::no_grad(|| aae.discriminator_logits(&codes, None)).unwrap();
    let softplus = |t: Tensor| t.exp().log1p().mean(Kind::Double).double_value(&[]);
    let bce = 0.5 * (softplus(-real) + softplus(fake));
    let total = out.loss.double_value(&[]);
    assert!((total - (bce + 10.0 * want)).abs() < 1e-4, "{total}");
    cfg.discriminator_gp = f64::NAN;
    let err = cfg.validate().unwrap_err().to_string();
    assert!(err.contains("discriminator_gp"), "{err}");
}

#[test]
fn label_smoothing_moves_the_real_target() {
    let _rng = crate::torch_rng_lock();
    // With s = 0.2 the real half of the loss is BCE(logit, 0.8) = softplus(−l) + 0.2·l.
    let [e, d, c] = stores();
    let mut cfg = config(2);
    cfg.label_smoothing = 0.2;
    let aae = Aae::new(&e.root(), &d.root(), &c.root(), &cfg).unwrap();
    let codes = Tensor::randn([8, 2], (Kind::Float, Device::Cpu));
    let prior = Tensor::randn([8, 2], (Kind::Float, Device::Cpu));
    let loss = aae
        .discriminator_loss(&codes, &prior, None)
        .unwrap()
        .loss
        .double_value(&[]);
    let real = tch::no_grad(|| aae.discriminator_logits(&prior, None)).unwrap();
    let fake = tch::no_grad(|| aae.discriminator_logits(&codes, None)).unwrap();
    let softplus = |t: &Tensor| t.exp().log1p();
    let real_half = (softplus(&-&real) + &real * 0.2).mean(Kind::Double);
    let fake_half = softplus(&fake).mean(Kind::Double);
    let expected = ((real_half + fake_half) * 0.5).double_value(&[]);
    assert!((loss - expected).abs() < 1e-5, "{loss} vs {expected}");
    cfg.label_smoothing = 0.5;
    let err = cfg.validate().unwrap_err().to_string();
    assert!(err.contains("label_smoothing"), "{err}");
    cfg.label_smoothing = 0.0;
    cfg.discriminator_r1 = -1.0;
    let err = cfg.validate().unwrap_err().to_string();
    assert!(err.contains("discriminator_r1"), "{err}");
}

#[test]
fn conditioned_codes_move_to_their_own_components() {
    let _rng = crate::torch_rng_lock();
    // Inputs that show their class (one-hot rows): the label-conditioned game alone (no
    // reconstruction) must carry each class's codes onto that class's component.
    tch::manual_seed(14);
    let [e, d, c] = stores();
    let mut cfg = config(2);
    cfg.networks.input_dim = 3;
    cfg.label_classes = 3;
    cfg.discriminator_r1 = 1.0;
    cfg.prior = LatentPrior::GaussianMixture {
        components: 3,
        radius: 2.0,
        std: 0.3,
    };
    let aae = Aae::new(&e.root(), &d.root(), &c.root(), &cfg).unwrap();
    let mut d_opt = nn::OptimizerConfig::build(nn::Adam::default(), &c, 1e-3).unwrap();
    let mut g_opt = nn::OptimizerConfig::build(nn::Adam::default(), &e, 1e-3).unwrap();
    for _ in 0..600 {
        let labels = Tensor::randint(3, [64], (Kind::Int64, Device::Cpu));
        let x = labels.one_hot(3).to_kind(Kind::Float);
        let codes = aae.code(&x).unwrap();
        let prior = aae
            .sample_prior_codes(64, Some(&labels), Device::Cpu)
            .unwrap();
        let d_loss = aae
            .discriminator_loss(&codes, &prior, Some(&labels))
            .unwrap();
        d_opt.backward_step(&d_loss.loss);
        g_opt.backward_step(&aae.generator_loss(&codes, Some(&labels)).unwrap());
    }
    let labels = Tensor::from_slice(&[0i64, 1, 2]);
    let codes = tch::no_grad(|| aae.code(&labels.one_hot(3).to_kind(Kind::Float))).unwrap();
    let nearest = cfg.prior.nearest_component(&codes).unwrap();
    assert!(
        nearest.equal(&labels),
        "codes {codes:?} nearest {nearest:?}"
    );
    // And close to it: within 3 sd of the mean (the means are 3.5 apart).
    let means = cfg.prior.component_means(2, Device::Cpu).unwrap();
    let far = (codes - means)
        .square()
        .sum_dim_intlist(1, false, Kind::Float)
        .sqrt();
    assert!(far.max().double_value(&[]) < 0.9, "distances {far:?}");
}

#[test]
fn label_conditioning_needs_a_matching_mixture() {
    let _rng = crate::torch_rng_lock();
    let mut cfg = config(2);
    cfg.label_classes = 3;
    let err = cfg.validate().unwrap_err().to_string();
    assert!(
        err.contains("label_classes") && err.contains("gaussian_mixture"),
        "{err}"
    );
    cfg.prior = LatentPrior::GaussianMixture {
        components: 3,
        radius: 2.0,
        std: 0.5,
    };
    let [e, d, c] = stores();
    let aae = Aae::new(&e.root(), &d.root(), &c.root(), &cfg).unwrap();
    let labels = Tensor::from_slice(&[0i64, 2, 1]);
    let z = aae
        .sample_prior_codes(3, Some(&labels), Device::Cpu)
        .unwrap();
    assert_eq!(
        aae.discriminator_logits(&z, Some(&labels)).unwrap().size(),
        vec![3]
    );
    let err = aae.discriminator_logits(&z, None).unwrap_err().to_string();
    assert!(err.contains("label_classes"), "{err}");
}

#[test]
fn gaussian_encoder_draws_around_its_mean() {
    let _rng = crate::torch_rng_lock();
    let [e, d, c] = stores();
    let mut cfg = config(3);
    cfg.encoder = AaeEncoderKind::Gaussian;
    let aae = Aae::new(&e.root(), &d.root(), &c.root(), &cfg).unwrap();
    let x = Tensor::rand([4, 6], (Kind::Float, Device::Cpu));
    let mean = aae.encode_mean(&x).unwrap();
    let draw = aae.encode_sample(&x).unwrap();
    assert_eq!(draw.size(), vec![4, 3]);
    assert!(!draw.equal(&mean));
    assert!(!draw.requires_grad());
}
