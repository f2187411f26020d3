//! Fuzz target: `parse_svhn_mat` (the MAT v5 reader) on arbitrary bytes. It must return `Ok` or
//! `Err`, never panic, and on `Ok` the labels must be digits.
#![no_main]

use std::path::Path;

use genae_data::formats::svhn::parse_svhn_mat;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(set) = parse_svhn_mat(data, Path::new("fuzz.mat")) {
        assert_eq!(set.image_shape, [3, 32, 32]);
        assert!(set.labels.iter().all(|&l| l < 10));
    }
});
