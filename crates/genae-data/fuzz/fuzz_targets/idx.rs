//! Fuzz target: `parse_idx` on arbitrary bytes (raw, or gzip when they start with `1f 8b`).
//! It must return `Ok` or `Err`, never panic, and on `Ok` the data must match the dimensions.
#![no_main]

use std::path::Path;

use genae_data::formats::idx::parse_idx;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(array) = parse_idx(data, Path::new("fuzz.idx")) {
        let len = array
            .dims
            .iter()
            .try_fold(1usize, |acc, &d| acc.checked_mul(d));
        assert_eq!(len, Some(array.data.len()));
    }
});
