//! The TOML spelling of `VaeConfig` and its defaults.

use genae_zoo::{Activation, Architecture, Likelihood, VaeConfig};

#[test]
fn configs_without_the_new_fields_keep_meaning_the_mlp_bernoulli_vae() {
    let config: VaeConfig = toml::from_str(
        r#"
        input_dim = 1024
        hidden = [512, 256]
        latent_dim = 10
        activation = "relu"
        "#,
    )
    .unwrap();
    assert_eq!(config.input_shape, None);
    assert_eq!(config.architecture, Architecture::Mlp);
    assert_eq!(config.likelihood, Likelihood::Bernoulli);
    config.validate().unwrap();
}

#[test]
fn tagged_enums_read_as_documented() {
    let config: VaeConfig = toml::from_str(
        r#"
        input_dim = 3072
        input_shape = [3, 32, 32]
        hidden = []
        latent_dim = 32
        activation = "elu"
        architecture = { kind = "conv", channels = [32, 64], residual_blocks = 1 }
        likelihood = { kind = "gaussian", variance = 0.1 }
        "#,
    )
    .unwrap();
    assert_eq!(config.input_shape, Some([3, 32, 32]));
    assert_eq!(config.activation, Activation::Elu);
    assert_eq!(
        config.architecture,
        Architecture::Conv {
            channels: vec![32, 64],
            residual_blocks: 1
        }
    );
    assert_eq!(config.likelihood, Likelihood::Gaussian { variance: 0.1 });
    config.validate().unwrap();

    let read = |s: &str| toml::from_str::<Likelihood>(s).unwrap();
    assert_eq!(read(r#"kind = "bernoulli""#), Likelihood::Bernoulli);
    assert_eq!(
        read(r#"kind = "gaussian_learned""#),
        Likelihood::GaussianLearned
    );
    assert_eq!(
        read(r#"kind = "discretized_logistic""#),
        Likelihood::DiscretizedLogistic { bins: 256 }
    );
    assert_eq!(
        read("kind = \"discretized_logistic\"\nbins = 16"),
        Likelihood::DiscretizedLogistic { bins: 16 }
    );
    assert_eq!(
        toml::from_str::<Architecture>(r#"kind = "conv""#).unwrap(),
        Architecture::Conv {
            channels: vec![32, 64],
            residual_blocks: 0
        }
    );
    assert_eq!(
        toml::from_str::<Architecture>(r#"kind = "mlp""#).unwrap(),
        Architecture::Mlp
    );
}

#[test]
fn unknown_keys_and_kinds_are_errors() {
    for bad in [
        "kind = \"gaussian\"\nvariance = 0.1\nscale = 2",
        "kind = \"gaussian\"",
        "kind = \"poisson\"",
    ] {
        assert!(toml::from_str::<Likelihood>(bad).is_err(), "{bad}");
    }
    let err = toml::from_str::<Architecture>("kind = \"conv\"\nchanels = [8]")
        .unwrap_err()
        .to_string();
    assert!(err.contains("chanels"), "{err}");
    let err = toml::from_str::<VaeConfig>(
        "input_dim = 4\nhidden = []\nlatent_dim = 1\nactivation = \"relu\"\nshape = [1, 2, 2]",
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("shape"), "{err}");
}

#[test]
fn configs_round_trip_through_toml() {
    for config in [
        VaeConfig::default(),
        VaeConfig {
            architecture: Architecture::Conv {
                channels: vec![16, 32, 64],
                residual_blocks: 2,
            },
            likelihood: Likelihood::DiscretizedLogistic { bins: 256 },
            ..VaeConfig::default().with_input_shape([3, 64, 64])
        },
        VaeConfig {
            likelihood: Likelihood::Gaussian { variance: 0.05 },
            ..VaeConfig::default()
        },
    ] {
        let text = toml::to_string(&config).unwrap();
        let back: VaeConfig = toml::from_str(&text).unwrap();
        assert_eq!(back, config, "{text}");
    }
}
