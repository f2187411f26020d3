//! Convolutional encoder and decoder shapes for every supported image size, and shape errors.

use genae_zoo::{
    Activation, Architecture, Autoencoder, ConvDecoder, ConvEncoder, Decoder, LatentVariableModel,
    Likelihood, Vae, VaeConfig,
};
use tch::{nn, Device, Kind, Tensor};

#[test]
fn encoder_and_decoder_shapes_for_every_size_and_channel_count() {
    tch::manual_seed(0);
    for side in [28i64, 32, 64] {
        for c in [1i64, 3] {
            for channels in [vec![8], vec![8, 16], vec![4, 8, 16]] {
                let vs = nn::VarStore::new(Device::Cpu);
                let shape = [c, side, side];
                let enc =
                    ConvEncoder::new(&(vs.root() / "e"), shape, &channels, 1, Activation::Relu)
                        .unwrap();
                let mut s = side;
                for _ in &channels {
                    s = (s + 1) / 2;
                }
                let last = *channels.last().unwrap();
                assert_eq!(enc.feature_shape(), [last, s, s]);
                let x = Tensor::rand([2, c, side, side], (Kind::Float, Device::Cpu));
                let h = enc.encode(&x).unwrap();
                assert_eq!(h.size(), vec![2, last * s * s]);
                // Flat input gives the same features.
                let flat = enc.encode(&x.flatten(1, -1)).unwrap();
                assert_eq!(flat.size(), h.size());
                assert!(h.allclose(&flat, 1e-6, 1e-6, false));

                let dec =
                    ConvDecoder::new(&(vs.root() / "d"), shape, &channels, 1, Activation::Relu)
                        .unwrap();
                assert_eq!(dec.input_shape(), enc.feature_shape());
                let y = dec.decode(&h).unwrap();
                assert_eq!(
                    y.size(),
                    vec![2, c, side, side],
                    "side {side} channels {channels:?}"
                );
            }
        }
    }
}

#[test]
fn conv_models_decode_to_flat_images_with_every_likelihood() {
    tch::manual_seed(0);
    for likelihood in [
        Likelihood::Bernoulli,
        Likelihood::Gaussian { variance: 0.5 },
        Likelihood::GaussianLearned,
        Likelihood::DiscretizedLogistic { bins: 256 },
    ] {
        let vs = nn::VarStore::new(Device::Cpu);
        let config = VaeConfig {
            architecture: Architecture::Conv {
                channels: vec![4, 8],
                residual_blocks: 1,
            },
            likelihood: likelihood.clone(),
            hidden: vec![16],
            latent_dim: 3,
            ..VaeConfig::default().with_input_shape([3, 32, 32])
        };
        let vae = Vae::new(&vs.root(), &config).unwrap();
        let x = (Tensor::rand([2, 3, 32, 32], (Kind::Float, Device::Cpu)) * 255.0).round() / 255.0;
        let q = vae.encode(&x).unwrap();
        assert_eq!(q.mean().size(), vec![2, 3]);
        let z = q.sample();
        let outputs = vae.decoder.outputs(&z).unwrap();
        assert_eq!(
            outputs.size(),
            vec![2, likelihood.num_outputs() * 3 * 32 * 32]
        );
        assert_eq!(vae.log_likelihood(&x, &z).unwrap().size(), vec![2]);
        assert_eq!(vae.reconstruct(&x).unwrap().size(), vec![2, 3072]);
        assert_eq!(vae.sample(5, Device::Cpu).unwrap().size(), vec![5, 3072]);
        assert_eq!(vae.decoder.sample(&z).unwrap().size(), vec![2, 3072]);

        let ae = Autoencoder::new(&(vs.root() / "ae"), &config).unwrap();
        assert_eq!(ae.encode(&x).unwrap().size(), vec![2, 3]);
        assert_eq!(ae.reconstruct(&x).unwrap().size(), vec![2, 3072]);
    }
}

#[test]
fn conv_parameters_are_named_by_role() {
    let vs = nn::VarStore::new(Device::Cpu);
    let config = VaeConfig {
        architecture: Architecture::Conv {
            channels: vec![4, 8],
            residual_blocks: 1,
        },
        hidden: vec![16],
        latent_dim: 2,
        ..VaeConfig::default().with_input_shape([1, 28, 28])
    };
    Vae::new(&vs.root(), &config).unwrap();
    let names: Vec<String> = vs.variables().into_keys().collect();
    for expected in [
        "encoder.trunk.conv.down0.weight",
        "encoder.trunk.conv.res1_0.conv2.weight",
        "encoder.trunk.fc.layer0.weight",
        "encoder.mean.weight",
        "encoder.log_var.bias",
        "decoder.fc.layer1.weight",
        "decoder.conv.res0_0.conv1.bias",
        "decoder.conv.up0.weight",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} not in {names:?}"
        );
    }
}

fn error_of(config: &VaeConfig) -> String {
    let vs = nn::VarStore::new(Device::Cpu);
    let vae_err = Vae::new(&vs.root(), config).unwrap_err().to_string();
    let ae_err = Autoencoder::new(&vs.root(), config)
        .unwrap_err()
        .to_string();
    let dec_err = Decoder::new(&vs.root(), config).unwrap_err().to_string();
    assert_eq!(vae_err, ae_err);
    assert_eq!(vae_err, dec_err);
    vae_err
}

#[test]
fn invalid_shapes_are_errors_naming_the_field() {
    let conv = Architecture::Conv {
        channels: vec![8, 16],
        residual_blocks: 0,
    };
    let with = |shape: Option<[i64; 3]>, input_dim: i64, architecture: Architecture| VaeConfig {
        input_dim,
        input_shape: shape,
        architecture,
        ..VaeConfig::default()
    };
    // C·H·W ≠ input_dim.
    let err = error_of(&with(Some([3, 28, 28]), 784, Architecture::Mlp));
    assert!(err.contains("input_shape") && err.contains("784"), "{err}");
    // Conv needs a shape.
    let err = error_of(&with(None, 784, conv.clone()));
    assert!(
        err.contains("input_shape") && err.contains("required"),
        "{err}"
    );
    // Unsupported size, non-square images.
    for shape in [[1, 30, 30], [1, 28, 32], [1, 16, 16]] {
        let err = error_of(&with(Some(shape), shape.iter().product(), conv.clone()));
        assert!(
            err.contains("input_shape") && err.contains("[28, 32, 64]"),
            "{err}"
        );
    }
    // An MLP accepts any shape that matches input_dim.
    let vs = nn::VarStore::new(Device::Cpu);
    Vae::new(&vs.root(), &with(Some([1, 30, 30]), 900, Architecture::Mlp)).unwrap();
    // Channels.
    for channels in [vec![], vec![8, 0]] {
        let config = with(
            Some([1, 28, 28]),
            784,
            Architecture::Conv {
                channels,
                residual_blocks: 0,
            },
        );
        let err = error_of(&config);
        assert!(err.contains("architecture.channels"), "{err}");
    }
    // Likelihood parameters.
    for (likelihood, field) in [
        (
            Likelihood::Gaussian { variance: 0.0 },
            "likelihood.variance",
        ),
        (
            Likelihood::Gaussian { variance: f64::NAN },
            "likelihood.variance",
        ),
        (
            Likelihood::DiscretizedLogistic { bins: 1 },
            "likelihood.bins",
        ),
    ] {
        let err = error_of(&VaeConfig {
            likelihood,
            ..VaeConfig::default()
        });
        assert!(err.contains(field), "{err}");
    }
    // The building blocks check their shapes too.
    let vs = nn::VarStore::new(Device::Cpu);
    let err = ConvEncoder::new(&vs.root(), [1, 48, 48], &[8], 0, Activation::Relu)
        .unwrap_err()
        .to_string();
    assert!(err.contains("input_shape"), "{err}");
}

#[test]
fn wrong_input_sizes_are_shape_errors() {
    let vs = nn::VarStore::new(Device::Cpu);
    let enc = ConvEncoder::new(&vs.root(), [1, 28, 28], &[8], 0, Activation::Relu).unwrap();
    let err = enc
        .encode(&Tensor::zeros([2, 1, 32, 32], (Kind::Float, Device::Cpu)))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("[N, 1, 28, 28]") && err.contains("[2, 1, 32, 32]"),
        "{err}"
    );
    let config = VaeConfig {
        architecture: Architecture::Conv {
            channels: vec![4],
            residual_blocks: 0,
        },
        ..VaeConfig::default().with_input_shape([1, 28, 28])
    };
    let vae = Vae::new(&(vs.root() / "vae"), &config).unwrap();
    let err = vae
        .encode(&Tensor::zeros([2, 3, 28, 28], (Kind::Float, Device::Cpu)))
        .unwrap_err()
        .to_string();
    assert!(err.contains("[N, 784]"), "{err}");
    let err = vae
        .decoder
        .mean(&Tensor::zeros([2, 4], (Kind::Float, Device::Cpu)))
        .unwrap_err()
        .to_string();
    assert!(err.contains("[N, 10]"), "{err}");
}
