//! 20 Adam steps per model on a small shapes-like batch: the loss stays finite and falls.

use genae_zoo::{
    Architecture, Autoencoder, GenerativeDecoder, LatentVariableModel, Likelihood, Vae, VaeConfig,
};
use tch::{nn, nn::OptimizerConfig, Device, Kind, Tensor};

use crate::shapes_batch;

const STEPS: usize = 20;

/// Runs `STEPS` Adam steps of `loss` and checks it: finite throughout, and the mean of the
/// last three below the mean of the first three.
fn check_training(what: &str, vs: &nn::VarStore, lr: f64, loss: impl Fn() -> Tensor) {
    let mut opt = nn::Adam::default().build(vs, lr).unwrap();
    let mut history = Vec::with_capacity(STEPS);
    for _ in 0..STEPS {
        let l = loss();
        opt.backward_step(&l);
        history.push(l.double_value(&[]));
    }
    assert!(history.iter().all(|l| l.is_finite()), "{what}: {history:?}");
    let first = history[..3].iter().sum::<f64>() / 3.0;
    let last = history[STEPS - 3..].iter().sum::<f64>() / 3.0;
    eprintln!("{what}: first three {first:.2}, last three {last:.2}");
    assert!(last < first, "{what}: loss did not fall: {history:?}");
}

/// The negative single-sample ELBO, averaged over the batch.
fn negative_elbo(vae: &Vae, x: &Tensor) -> Tensor {
    let q = vae.encode(x).unwrap();
    let z = q.rsample();
    let reconstruction = vae.log_likelihood(x, &z).unwrap();
    (q.kl_to_standard_normal() - reconstruction).mean(Kind::Float)
}

fn likelihoods() -> [Likelihood; 4] {
    [
        Likelihood::Bernoulli,
        Likelihood::Gaussian { variance: 0.1 },
        Likelihood::GaussianLearned,
        Likelihood::DiscretizedLogistic { bins: 256 },
    ]
}

#[test]
fn mlp_vae_trains_with_every_likelihood() {
    for likelihood in likelihoods() {
        tch::manual_seed(21);
        let x = shapes_batch(32, 1, 12).flatten(1, -1);
        let vs = nn::VarStore::new(Device::Cpu);
        let config = VaeConfig {
            hidden: vec![64, 32],
            latent_dim: 4,
            likelihood: likelihood.clone(),
            ..VaeConfig::default().with_input_shape([1, 12, 12])
        };
        let vae = Vae::new(&vs.root(), &config).unwrap();
        check_training(likelihood.name(), &vs, 2e-3, || negative_elbo(&vae, &x));
        let z = Tensor::randn([3, 4], (Kind::Float, Device::Cpu));
        assert_eq!(vae.decode_mean(&z).unwrap().size(), vec![3, 144]);
    }
}

#[test]
fn conv_vae_trains() {
    for (shape, likelihood, residual_blocks) in [
        ([1, 28, 28], Likelihood::Bernoulli, 1),
        (
            [3, 32, 32],
            Likelihood::DiscretizedLogistic { bins: 256 },
            0,
        ),
    ] {
        tch::manual_seed(22);
        let x = shapes_batch(16, shape[0], shape[1]);
        let vs = nn::VarStore::new(Device::Cpu);
        let config = VaeConfig {
            architecture: Architecture::Conv {
                channels: vec![8, 16],
                residual_blocks,
            },
            hidden: vec![32],
            latent_dim: 4,
            likelihood: likelihood.clone(),
            ..VaeConfig::default().with_input_shape(shape)
        };
        let vae = Vae::new(&vs.root(), &config).unwrap();
        check_training(
            &format!("conv {shape:?} {}", likelihood.name()),
            &vs,
            2e-3,
            || negative_elbo(&vae, &x),
        );
    }
}

#[test]
fn autoencoders_train() {
    for (architecture, likelihood) in [
        (Architecture::Mlp, Likelihood::Bernoulli),
        (Architecture::Mlp, Likelihood::Gaussian { variance: 0.1 }),
        (
            Architecture::Conv {
                channels: vec![8, 16],
                residual_blocks: 1,
            },
            Likelihood::Bernoulli,
        ),
    ] {
        tch::manual_seed(23);
        let x = shapes_batch(32, 1, 28);
        let vs = nn::VarStore::new(Device::Cpu);
        let config = VaeConfig {
            architecture: architecture.clone(),
            hidden: vec![64],
            latent_dim: 4,
            likelihood,
            ..VaeConfig::default().with_input_shape([1, 28, 28])
        };
        let ae = Autoencoder::new(&vs.root(), &config).unwrap();
        check_training(&format!("ae {}", architecture.name()), &vs, 2e-3, || {
            ae.loss(&x).unwrap()
        });
    }
}

#[test]
fn autoencoder_loss_is_the_binary_cross_entropy_for_bernoulli() {
    tch::manual_seed(24);
    let vs = nn::VarStore::new(Device::Cpu);
    let config = VaeConfig {
        input_dim: 10,
        hidden: vec![8],
        latent_dim: 2,
        ..VaeConfig::default()
    };
    let ae = Autoencoder::new(&vs.root(), &config).unwrap();
    let x = Tensor::rand([6, 10], (Kind::Float, Device::Cpu)).round();
    let logits = ae.decoder.outputs(&ae.encode(&x).unwrap()).unwrap();
    let bce =
        logits.binary_cross_entropy_with_logits::<Tensor>(&x, None, None, tch::Reduction::Sum)
            / 6.0;
    let loss = ae.loss(&x).unwrap();
    assert!((loss.double_value(&[]) - bce.double_value(&[])).abs() < 1e-4);
}
