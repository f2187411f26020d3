//! Fuzz target: `parse_cifar` with each variant on arbitrary bytes. It must return `Ok` or
//! `Err`, never panic, and on `Ok` every label must be in range.
#![no_main]

use std::path::Path;

use genae_data::formats::cifar::{parse_cifar, CifarVariant};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for variant in [
        CifarVariant::Cifar10,
        CifarVariant::Cifar100Fine,
        CifarVariant::Cifar100Coarse,
    ] {
        if let Ok(set) = parse_cifar(data, variant, Path::new("fuzz.bin")) {
            assert_eq!(set.len() * variant.record_len(), data.len());
            assert!(set
                .labels
                .iter()
                .all(|&l| (l as usize) < variant.num_classes()));
        }
    }
});
