//! The configs shipped in `crates/genae-lab/configs/`, embedded in the binary so that
//! `genae config list` and `genae config show NAME` work from any directory.

use crate::config::{ConfigError, ValidConfig};

/// `(name, TOML text)` of every shipped config, by file name without `.toml`.
pub const SHIPPED_CONFIGS: &[(&str, &str)] = &[
    ("default", include_str!("../configs/default.toml")),
    (
        "fashion-mnist-vae",
        include_str!("../configs/fashion-mnist-vae.toml"),
    ),
    (
        "fashion-mnist-vae-long",
        include_str!("../configs/fashion-mnist-vae-long.toml"),
    ),
    (
        "fashion-vae-k1",
        include_str!("../configs/fashion-vae-k1.toml"),
    ),
    (
        "fashion-iwae-k5",
        include_str!("../configs/fashion-iwae-k5.toml"),
    ),
    (
        "fashion-iwae-k50",
        include_str!("../configs/fashion-iwae-k50.toml"),
    ),
    ("fashion-dvae", include_str!("../configs/fashion-dvae.toml")),
    ("fashion-avb", include_str!("../configs/fashion-avb.toml")),
    ("avb-toy-vae", include_str!("../configs/avb-toy-vae.toml")),
    ("avb-toy-avb", include_str!("../configs/avb-toy-avb.toml")),
    ("fashion-aae", include_str!("../configs/fashion-aae.toml")),
    ("fashion-wae", include_str!("../configs/fashion-wae.toml")),
    (
        "fashion-aae-2d",
        include_str!("../configs/fashion-aae-2d.toml"),
    ),
    (
        "fashion-aae-labels",
        include_str!("../configs/fashion-aae-labels.toml"),
    ),
    (
        "fashion-vae-logistic",
        include_str!("../configs/fashion-vae-logistic.toml"),
    ),
    (
        "fashion-vqvae-logistic",
        include_str!("../configs/fashion-vqvae-logistic.toml"),
    ),
    (
        "fashion-vae-chain",
        include_str!("../configs/fashion-vae-chain.toml"),
    ),
    (
        "fashion-dvae-chain",
        include_str!("../configs/fashion-dvae-chain.toml"),
    ),
    (
        "fashion-vqvae",
        include_str!("../configs/fashion-vqvae.toml"),
    ),
    ("regress-vae", include_str!("../configs/regress-vae.toml")),
    ("regress-iwae", include_str!("../configs/regress-iwae.toml")),
    (
        "regress-conv-logistic",
        include_str!("../configs/regress-conv-logistic.toml"),
    ),
    ("regress-dvae", include_str!("../configs/regress-dvae.toml")),
    ("regress-aae", include_str!("../configs/regress-aae.toml")),
    ("regress-avb", include_str!("../configs/regress-avb.toml")),
    (
        "regress-vqvae",
        include_str!("../configs/regress-vqvae.toml"),
    ),
    ("tiny-vqvae", include_str!("../configs/tiny-vqvae.toml")),
    (
        "dsprites-betavae",
        include_str!("../configs/dsprites-betavae.toml"),
    ),
    (
        "dsprites-betatcvae",
        include_str!("../configs/dsprites-betatcvae.toml"),
    ),
    (
        "dsprites-factorvae",
        include_str!("../configs/dsprites-factorvae.toml"),
    ),
    (
        "dsprites-dipvae",
        include_str!("../configs/dsprites-dipvae.toml"),
    ),
    (
        "dsprites-annealedvae",
        include_str!("../configs/dsprites-annealedvae.toml"),
    ),
];

/// The TOML text of a shipped config.
pub fn shipped_config(name: &str) -> Option<&'static str> {
    SHIPPED_CONFIGS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, text)| *text)
}

/// The first sentence of a config's leading comment block: its one-line description.
pub fn describe(text: &str) -> String {
    let block: Vec<&str> = text
        .lines()
        .map_while(|l| l.trim().strip_prefix('#'))
        .map(str::trim)
        .collect();
    let joined = block.join(" ");
    match joined.find(". ") {
        Some(end) => joined[..=end].to_string(),
        None => joined,
    }
}

/// A shipped config by name, with `overrides` applied and validated; an unknown name is an
/// error listing the known ones.
pub fn load_shipped(name: &str, overrides: &[String]) -> Result<ValidConfig, ConfigError> {
    let text = shipped_config(name).ok_or_else(|| ConfigError::UnknownConfig {
        name: name.to_string(),
        known: SHIPPED_CONFIGS
            .iter()
            .map(|(n, _)| *n)
            .collect::<Vec<_>>()
            .join(", "),
    })?;
    ValidConfig::from_toml_str(text, &format!("{name}.toml"), overrides)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_in_the_configs_folder_is_shipped_and_valid() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("configs");
        let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
            .collect();
        on_disk.sort();
        let mut shipped: Vec<String> = SHIPPED_CONFIGS.iter().map(|(n, _)| n.to_string()).collect();
        shipped.sort();
        assert_eq!(on_disk, shipped, "configs/ and SHIPPED_CONFIGS differ");
        for (name, text) in SHIPPED_CONFIGS {
            let config = load_shipped(name, &[]).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(
                config.file().name,
                *name,
                "{name}: `name` should match the file"
            );
            assert!(!describe(text).is_empty(), "{name}: no description comment");
        }
    }

    #[test]
    fn unknown_names_list_the_known_ones() {
        let err = load_shipped("nope", &[]).unwrap_err().to_string();
        assert!(
            err.contains("nope") && err.contains("fashion-iwae-k50"),
            "{err}"
        );
    }
}
