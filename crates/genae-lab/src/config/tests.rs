//! Tests of parsing, overrides and validation of the config file.

use super::*;

fn parse(text: &str, overrides: &[&str]) -> Result<ValidConfig> {
    let overrides: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
    ValidConfig::from_toml_str(text, "test.toml", &overrides)
}

#[test]
fn empty_file_gives_the_defaults_of_the_vae() {
    let config = parse("", &[]).unwrap();
    assert_eq!(config.device(), genae_tensor::DeviceSpec::Auto);
    let f = config.file();
    assert_eq!(f.model.latent_dim, Some(10));
    assert_eq!(f.train.objective, Some(ObjectiveKind::Elbo));
    assert_eq!(f.eval.log_likelihood_k, Some(5000));
    assert!(f.aae.is_none() && f.vq.is_none());
    match config.spec() {
        ModelSpec::Vae {
            networks,
            objective,
            kl_warmup_steps,
            capacity,
        } => {
            assert_eq!(capacity, &None);
            assert_eq!(networks.hidden, vec![512, 256]);
            assert_eq!(
                objective,
                &genae_estimators::Objective::Elbo {
                    beta: 1.0,
                    free_bits: 0.0
                }
            );
            assert_eq!(*kl_warmup_steps, 0);
        }
        other => panic!("expected a VAE spec, got {other:?}"),
    }
    // The resolved file reads back to the same config.
    let again = parse(&config.to_toml(), &[]).unwrap();
    assert_eq!(again, config);
}

#[test]
fn keys_of_other_kinds_are_named() {
    for (text, field) in [
        (
            "[model]\nkind = \"aae\"\n[train]\niwae_k = 3\n",
            "train.iwae_k",
        ),
        (
            "[model]\nkind = \"aae\"\n[train]\nbeta = 4.0\n",
            "train.beta",
        ),
        ("[avb]\nnoise_dim = 3\n", "avb"),
        ("[aae]\nadversarial_beta1 = 0.5\n", "aae"),
        ("[model]\nkind = \"avb\"\n[wae]\nlambda = 1.0\n", "wae"),
        (
            "[model]\nkind = \"vqvae\"\nlatent_dim = 4\n",
            "model.latent_dim",
        ),
        ("[model]\nkind = \"vqvae\"\nhidden = [3]\n", "model.hidden"),
        (
            "[model]\nkind = \"aae\"\n[eval]\nlog_likelihood_k = 100\n",
            "eval.log_likelihood_k",
        ),
        (
            "[model]\nkind = \"wae\"\n[eval]\nlog_likelihood_k = 100\n",
            "eval.log_likelihood_k",
        ),
        (
            "[model]\nkind = \"aae\"\n[eval]\nexact_log_likelihood_grid = 10\n",
            "eval.exact_log_likelihood_grid",
        ),
        (
            "[model]\nkind = \"vqvae\"\n[chain]\nenabled = true\n",
            "chain.enabled",
        ),
    ] {
        let err = parse(text, &[]).unwrap_err();
        let message = err.to_string();
        assert!(
            matches!(&err, ConfigError::Invalid { field: f, .. } if *f == field),
            "{text}: {message}"
        );
        assert!(message.contains(field), "{message}");
    }
    // A value that only turns something off is fine for every kind…
    let aae = parse(
        "[model]\nkind = \"aae\"\n[eval]\nlog_likelihood_k = 0\n",
        &[],
    )
    .unwrap();
    assert_eq!(aae.log_likelihood(), None);
    assert!(
        !aae.to_toml().contains("log_likelihood"),
        "{}",
        aae.to_toml()
    );
    // …and a Gaussian-encoder WAE has the L_k estimate.
    let wae = parse(
        "[model]\nkind = \"wae\"\n[wae]\nencoder = \"gaussian\"\n[eval]\nlog_likelihood_k = 50\n",
        &[],
    )
    .unwrap();
    assert_eq!(wae.log_likelihood().map(|l| l.k), Some(50));
}

#[test]
fn every_kind_resolves_and_reads_back() {
    for kind in ModelKind::ALL {
        let config = parse(&format!("[model]\nkind = \"{kind}\"\n"), &[]).unwrap();
        assert_eq!(config.kind(), kind);
        let again = parse(&config.to_toml(), &[]).unwrap();
        assert_eq!(again, config, "{kind}");
    }
}

#[test]
fn an_mlp_without_hidden_layers_is_refused() {
    let err = parse("[model]\nhidden = []\n", &[])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("model.hidden") && err.contains("linear"),
        "{err}"
    );
}

#[test]
fn unknown_key_is_named() {
    let err = parse("[train]\nepochs = 3\nlearnig_rate = 0.1\n", &[])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("learnig_rate") && err.contains("`train`"),
        "{err}"
    );
    let err = parse("colour = 1\n", &[]).unwrap_err().to_string();
    assert!(err.contains("colour"), "{err}");
}

#[test]
fn wrong_type_is_named_with_its_path() {
    let err = parse("[train]\nepochs = \"ten\"\n", &[]).unwrap_err();
    assert!(
        matches!(&err, ConfigError::Field { field, .. } if field == "train.epochs"),
        "{err}"
    );
    assert!(err.to_string().contains("train.epochs"));
    let err = parse("[model]\nactivation = \"swish\"\n", &[])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("model.activation") && err.contains("relu"),
        "{err}"
    );
}

#[test]
fn out_of_range_values_are_named() {
    for (text, field) in [
        ("[train]\nlearning_rate = -1.0\n", "train.learning_rate"),
        ("[train]\nepochs = 0\n", "train.epochs"),
        (
            "[data]\ntrain_size = 10\n[train]\nbatch_size = 11\n",
            "train.batch_size",
        ),
        ("[model]\nlatent_dim = 0\n", "model.latent_dim"),
        ("device = \"gpu\"\n", "device"),
    ] {
        let err = parse(text, &[]).unwrap_err();
        assert!(
            matches!(&err, ConfigError::Invalid { field: f, .. } if *f == field),
            "{text}: {err}"
        );
        assert!(err.to_string().contains(field));
    }
}

#[test]
fn datasets_are_checked_against_the_registry() {
    let err = parse("[data]\ndataset = \"fashion_mnist\"\n", &[])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("data.dataset") && err.contains("fashion-mnist") && err.contains("shapes"),
        "{err}"
    );
    let config = parse(
        "[data]\ndataset = \"fashion-mnist\"\nbinarize = \"dynamic\"\ntrain_size = 0\n",
        &[],
    )
    .unwrap();
    assert_eq!(config.file().data.binarize, Binarization::Dynamic);
    let err = parse("[data]\nbinarize = \"sometimes\"\n", &[])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("data.binarize") && err.contains("dynamic"),
        "{err}"
    );
}

#[test]
fn overrides_reach_the_resolved_config() {
    let config = parse(
        "[train]\nepochs = 3\n",
        &[
            "train.epochs=5",
            "train.learning_rate=2e-4",
            "model.activation=tanh",
            "model.hidden=[64, 32]",
            "name=quick",
        ],
    )
    .unwrap();
    let f = config.file();
    assert_eq!(f.train.epochs, 5);
    assert_eq!(f.train.learning_rate, 2e-4);
    assert_eq!(f.model.activation, Some(Activation::Tanh));
    assert_eq!(f.model.hidden, Some(vec![64, 32]));
    assert_eq!(f.name, "quick");
    let resolved: ConfigFile = toml::from_str(&config.to_toml()).unwrap();
    assert_eq!(&resolved, f);
}

#[test]
fn bad_overrides_are_reported() {
    let err = parse("", &["train.epochs"]).unwrap_err().to_string();
    assert!(
        err.contains("train.epochs") && err.contains("key=value"),
        "{err}"
    );
    let err = parse("", &["seed=18446744073709551615"])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("seed=18446744073709551615") && err.contains("does not fit a TOML integer"),
        "{err}"
    );
    let err = parse("seed = 3\n", &["seed.x=1"]).unwrap_err().to_string();
    assert!(err.contains("`seed` is a value"), "{err}");
    let err = parse("", &["train.epochz=1"]).unwrap_err().to_string();
    assert!(err.contains("epochz"), "{err}");
}

#[test]
fn syntax_errors_name_the_file() {
    let err = parse("[train\n", &[]).unwrap_err().to_string();
    assert!(err.contains("test.toml"), "{err}");
}
