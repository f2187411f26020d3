//! Stable, time-boxed fuzzing of every decoder, run by `cargo test` (and so by CI): valid seed
//! files (`tests/fuzz/seeds/`, written by `tests/fuzz/make_seeds.py`) are mutated by proptest
//! — bit flips, overwritten bytes, boundary integers in headers, truncation, insertions,
//! deletions, and for compressed formats mutations of the payload before recompressing — and
//! each decoder must return `Ok` or `Err`, never panic (debug builds also trap integer
//! overflow), and on `Ok` give a result consistent with itself.
//!
//! Runs are deterministic: the generator's seed is fixed, `GENAE_FUZZ_CASES` sets the cases per
//! target (default 5000), and `GENAE_FUZZ_SEED` a different seed for a longer exploratory run.
//! A failure is shrunk and its seed saved to `tests/fuzz/regressions.txt` (replayed first on
//! every run: commit it); inputs that once found a bug go in `tests/fuzz/found/<target>/` and
//! are replayed by [`found_inputs_stay_fixed`]. The cargo-fuzz targets in `fuzz/` run the same
//! decoders under libFuzzer for longer searches (docs/fuzzing.md).

use std::io::Write;
use std::path::{Path, PathBuf};

use genae_data::formats::arrays::{parse_npy, parse_npz, parse_safetensors, RawArray};
use genae_data::formats::cifar::{parse_cifar, CifarVariant};
use genae_data::formats::idx::parse_idx;
use genae_data::formats::image_folder::{decode_image, Channels};
use genae_data::formats::svhn::parse_svhn_mat;
use genae_data::registry::Manifest;
use proptest::prelude::*;
use proptest::sample::{select, Index};
use proptest::test_runner::{Config, FileFailurePersistence, RngAlgorithm, RngSeed, TestRunner};

/// A decoder check: panics when the decoder misbehaves on the input.
type Check = fn(&[u8]);

/// One edit of an input.
#[derive(Clone, Debug)]
enum Mutation {
    /// Flip one bit.
    Flip(Index, u8),
    /// Overwrite one byte.
    Set(Index, u8),
    /// Overwrite four bytes with a boundary value, big- or little-endian.
    Boundary(Index, u32, bool),
    /// Cut the input at a point.
    Truncate(Index),
    /// Insert bytes.
    Insert(Index, Vec<u8>),
    /// Remove up to 16 bytes.
    Remove(Index, u8),
    /// Copy a run of bytes over another place (repeats header-like structure).
    Splice(Index, Index, u8),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let boundary = select(vec![
        0u32,
        1,
        2,
        3,
        4,
        8,
        0x7f,
        0x80,
        0xff,
        0x100,
        0xffff,
        0x10000,
        0x7fff_ffff,
        0x8000_0000,
        0xffff_fffe,
        0xffff_ffff,
    ]);
    prop_oneof![
        3 => (any::<Index>(), 0u8..8).prop_map(|(i, b)| Mutation::Flip(i, b)),
        3 => (any::<Index>(), any::<u8>()).prop_map(|(i, v)| Mutation::Set(i, v)),
        3 => (any::<Index>(), boundary, any::<bool>()).prop_map(|(i, v, be)| Mutation::Boundary(i, v, be)),
        1 => any::<Index>().prop_map(Mutation::Truncate),
        1 => (any::<Index>(), prop::collection::vec(any::<u8>(), 1..24))
            .prop_map(|(i, v)| Mutation::Insert(i, v)),
        1 => (any::<Index>(), 1u8..16).prop_map(|(i, n)| Mutation::Remove(i, n)),
        1 => (any::<Index>(), any::<Index>(), 1u8..32).prop_map(|(a, b, n)| Mutation::Splice(a, b, n)),
    ]
}

fn apply(mut bytes: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for m in mutations {
        let len = bytes.len();
        if len == 0 {
            if let Mutation::Insert(_, v) = m {
                bytes.extend_from_slice(v);
            }
            continue;
        }
        match m {
            Mutation::Flip(i, bit) => bytes[i.index(len)] ^= 1 << bit,
            Mutation::Set(i, v) => bytes[i.index(len)] = *v,
            Mutation::Boundary(i, v, big) => {
                let at = i.index(len);
                let word = if *big {
                    v.to_be_bytes()
                } else {
                    v.to_le_bytes()
                };
                for (k, b) in word.iter().enumerate() {
                    if let Some(slot) = bytes.get_mut(at + k) {
                        *slot = *b;
                    }
                }
            }
            Mutation::Truncate(i) => bytes.truncate(i.index(len)),
            Mutation::Insert(i, v) => {
                let at = i.index(len + 1);
                bytes.splice(at..at, v.iter().copied());
            }
            Mutation::Remove(i, n) => {
                let at = i.index(len);
                bytes.drain(at..(at + usize::from(*n)).min(len));
            }
            Mutation::Splice(from, to, n) => {
                let (a, b) = (from.index(len), to.index(len));
                let run: Vec<u8> = bytes[a..(a + usize::from(*n)).min(len)].to_vec();
                for (k, v) in run.into_iter().enumerate() {
                    if let Some(slot) = bytes.get_mut(b + k) {
                        *slot = v;
                    }
                }
            }
        }
    }
    bytes
}

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz")
}

/// The seed files of one target, by name.
fn seeds(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = fuzz_dir().join("seeds").join(target);
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| {
            let path = e.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&path).unwrap())
        })
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no seeds in {}", dir.display());
    out
}

fn runner() -> TestRunner {
    let cases = std::env::var("GENAE_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5000);
    let seed = std::env::var("GENAE_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20261203);
    TestRunner::new(Config {
        cases,
        rng_algorithm: RngAlgorithm::ChaCha,
        rng_seed: RngSeed::Fixed(seed),
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "tests/fuzz/regressions.txt",
        ))),
        max_shrink_iters: 2000,
        ..Config::default()
    })
}

/// Runs `check` on `cases` mutations of the seeds of `target`; `wrap` may post-process each
/// mutated input (e.g. compress it). A panic in `check` fails the test with the shrunk input.
fn fuzz(target: &str, wrap: fn(Vec<u8>, bool) -> Vec<u8>, check: Check) {
    let seeds: Vec<Vec<u8>> = seeds(target).into_iter().map(|(_, b)| b).collect();
    let strategy = (
        select(seeds),
        prop::collection::vec(mutation(), 1..6),
        any::<bool>(),
    );
    runner()
        .run(&strategy, |(seed, mutations, flag)| {
            check(&wrap(apply(seed, &mutations), flag));
            Ok(())
        })
        .unwrap_or_else(|e| panic!("fuzz target `{target}`: {e}"));
}

fn as_is(bytes: Vec<u8>, _: bool) -> Vec<u8> {
    bytes
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// Half the cases: mutated raw IDX bytes are gzipped (the mutation then reaches the header
/// inside a valid stream, not only the stream's own framing); mutated gzip seeds stay as they
/// are.
fn maybe_gzip(bytes: Vec<u8>, flag: bool) -> Vec<u8> {
    if flag && !bytes.starts_with(&[0x1f, 0x8b]) {
        gzip(&bytes)
    } else {
        bytes
    }
}

fn check_idx(bytes: &[u8]) {
    if let Ok(a) = parse_idx(bytes, Path::new("fuzz-idx")) {
        assert_eq!(a.data.len(), a.dims.iter().product::<usize>());
    }
}

fn check_cifar(bytes: &[u8]) {
    for variant in [
        CifarVariant::Cifar10,
        CifarVariant::Cifar100Fine,
        CifarVariant::Cifar100Coarse,
    ] {
        if let Ok(set) = parse_cifar(bytes, variant, Path::new("fuzz.bin")) {
            assert_eq!(set.len() * variant.record_len(), bytes.len());
            assert!(set
                .labels
                .iter()
                .all(|&l| (l as usize) < variant.num_classes()));
        }
    }
}

fn check_svhn(bytes: &[u8]) {
    if let Ok(set) = parse_svhn_mat(bytes, Path::new("fuzz.mat")) {
        assert_eq!(set.image_shape, [3, 32, 32]);
        assert!(set.labels.iter().all(|&l| l <= 9));
        assert_eq!(set.pixels.len(), set.len() * 3 * 32 * 32);
    }
}

fn raw_len(a: &RawArray) -> Option<usize> {
    match a {
        RawArray::U8(a) => Some(a.len()),
        RawArray::Float(a) => Some(a.len()),
        RawArray::Int(a) => Some(a.len()),
        RawArray::Other(..) => None,
    }
}

fn check_raw(a: &RawArray) {
    if let Some(n) = raw_len(a) {
        assert_eq!(n, a.shape().iter().product::<usize>());
    }
}

fn check_npy(bytes: &[u8]) {
    if let Ok(a) = parse_npy(bytes, Path::new("fuzz.npy")) {
        check_raw(&a);
    }
}

/// Half the cases: the mutated bytes are the first member of a fresh archive (stored or
/// deflated), so the `.npy` header inside is what the mutation reaches.
fn maybe_rezip(bytes: Vec<u8>, flag: bool) -> Vec<u8> {
    if !flag {
        return bytes;
    }
    let Ok(mut archive) = zip::ZipArchive::new(std::io::Cursor::new(bytes.clone())) else {
        return bytes;
    };
    let mut members = Vec::new();
    for i in 0..archive.len() {
        let Ok(mut f) = archive.by_index(i) else {
            return bytes;
        };
        let mut data = Vec::new();
        if std::io::Read::read_to_end(&mut f, &mut data).is_err() {
            return bytes;
        }
        members.push((f.name().to_string(), f.compression(), data));
    }
    let mut out = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (k, (name, method, data)) in members.into_iter().enumerate() {
        let data = if k == 0 {
            // Flip a header byte of the first member, deterministically from its length.
            let mut d = data;
            let at = d.len() / 3;
            if let Some(b) = d.get_mut(at) {
                *b ^= 0x20;
            }
            d
        } else {
            data
        };
        let options = zip::write::SimpleFileOptions::default().compression_method(method);
        out.start_file(name, options).unwrap();
        out.write_all(&data).unwrap();
    }
    out.finish().unwrap().into_inner()
}

fn check_npz(bytes: &[u8]) {
    if let Ok(arrays) = parse_npz(bytes, Path::new("fuzz.npz")) {
        arrays.values().for_each(check_raw);
    }
}

fn check_safetensors(bytes: &[u8]) {
    if let Ok(arrays) = parse_safetensors(bytes, Path::new("fuzz.safetensors")) {
        arrays.values().for_each(check_raw);
    }
}

fn check_image(bytes: &[u8]) {
    for (side, channels) in [(4, Channels::Gray), (3, Channels::Rgb)] {
        if let Ok(pixels) = decode_image(bytes, side, channels) {
            assert_eq!(
                pixels.len(),
                channels.count() * side as usize * side as usize
            );
        }
    }
}

fn check_manifest(bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    let _ = Manifest::from_toml_str(&text, Path::new("fuzz-manifest.toml"));
}

/// Every seed decodes: the mutations start from valid files (else the fuzzing would only ever
/// test the first check of each decoder).
#[test]
fn every_seed_is_a_valid_file() {
    let p = Path::new("seed");
    for (name, b) in seeds("idx") {
        parse_idx(&b, p).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    let (_, c10) = &seeds("cifar")[1];
    parse_cifar(c10, CifarVariant::Cifar10, p).unwrap();
    for (name, b) in seeds("svhn") {
        parse_svhn_mat(&b, p).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    for (name, b) in seeds("npy") {
        parse_npy(&b, p).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    for (name, b) in seeds("npz") {
        assert_eq!(
            parse_npz(&b, p)
                .unwrap_or_else(|e| panic!("{name}: {e}"))
                .len(),
            4
        );
    }
    for (name, b) in seeds("safetensors") {
        parse_safetensors(&b, p).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    for (name, b) in seeds("image") {
        decode_image(&b, 2, Channels::Rgb).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    for (name, b) in manifest_seeds() {
        Manifest::from_toml_str(&String::from_utf8(b).unwrap(), Path::new(&name))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

/// The shipped manifests (`datasets/*.toml`) are the manifest target's seeds.
fn manifest_seeds() -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("datasets");
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .map(|p| (p.display().to_string(), std::fs::read(&p).unwrap()))
        .collect();
    out.sort();
    out
}

#[test]
fn fuzz_idx() {
    fuzz("idx", maybe_gzip, check_idx);
}

#[test]
fn fuzz_cifar() {
    fuzz("cifar", as_is, check_cifar);
}

#[test]
fn fuzz_svhn() {
    fuzz("svhn", as_is, check_svhn);
}

#[test]
fn fuzz_npy() {
    fuzz("npy", as_is, check_npy);
}

#[test]
fn fuzz_npz() {
    fuzz("npz", maybe_rezip, check_npz);
}

#[test]
fn fuzz_safetensors() {
    fuzz("safetensors", as_is, check_safetensors);
}

#[test]
fn fuzz_image() {
    fuzz("image", as_is, check_image);
}

#[test]
fn fuzz_manifest() {
    let seeds: Vec<Vec<u8>> = manifest_seeds().into_iter().map(|(_, b)| b).collect();
    let strategy = (select(seeds), prop::collection::vec(mutation(), 1..6));
    runner()
        .run(&strategy, |(seed, mutations)| {
            check_manifest(&apply(seed, &mutations));
            Ok(())
        })
        .unwrap_or_else(|e| panic!("fuzz target `manifest`: {e}"));
}

/// Inputs that once made a decoder fail (`tests/fuzz/found/<target>/<file>`) stay fixed.
#[test]
fn found_inputs_stay_fixed() {
    let checks: [(&str, Check); 8] = [
        ("idx", check_idx),
        ("cifar", check_cifar),
        ("svhn", check_svhn),
        ("npy", check_npy),
        ("npz", check_npz),
        ("safetensors", check_safetensors),
        ("image", check_image),
        ("manifest", check_manifest),
    ];
    for (target, check) in checks {
        let dir = fuzz_dir().join("found").join(target);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            let bytes = std::fs::read(&path).unwrap();
            eprintln!("replaying {}", path.display());
            check(&bytes);
        }
    }
}
