//! CIFAR-10 / CIFAR-100 batch decoding: exact round trips (planes stay CHW), concatenation of
//! batches, and every malformed-file error.

use std::path::{Path, PathBuf};

use genae_data::formats::cifar::{load_cifar, parse_cifar, CifarVariant};
use genae_data::DataError;

/// The pixel of image `i`, channel `ch`, row `r`, column `c` in the test files.
fn pixel(i: usize, ch: usize, r: usize, c: usize) -> u8 {
    (i * 53 + ch * 101 + r * 7 + c * 3) as u8
}

/// One image's 3072 bytes: the red plane, the green, the blue, each row-major.
fn image(i: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(3072);
    for ch in 0..3 {
        for r in 0..32 {
            for c in 0..32 {
                out.push(pixel(i, ch, r, c));
            }
        }
    }
    out
}

/// CIFAR-10 records with the given labels (image `first + k` for record `k`).
fn cifar10(labels: &[u8], first: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for (k, &label) in labels.iter().enumerate() {
        out.push(label);
        out.extend(image(first + k));
    }
    out
}

/// CIFAR-100 records with the given (coarse, fine) labels.
fn cifar100(labels: &[(u8, u8)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (k, &(coarse, fine)) in labels.iter().enumerate() {
        out.push(coarse);
        out.push(fine);
        out.extend(image(k));
    }
    out
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// Asserts that the error names `path` (by file name) and contains every one of `needles`.
fn assert_error(err: &DataError, path: &Path, needles: &[&str]) {
    let message = err.to_string();
    eprintln!("{message}");
    let name = path.file_name().unwrap().to_str().unwrap();
    assert!(message.contains(name), "`{message}` does not name `{name}`");
    for needle in needles {
        assert!(
            message.contains(needle),
            "`{message}` does not contain `{needle}`"
        );
    }
}

#[test]
fn cifar10_round_trip_keeps_planes_in_chw_order() {
    let bytes = cifar10(&[3, 0, 9], 0);
    let set = parse_cifar(&bytes, CifarVariant::Cifar10, Path::new("data_batch_1.bin")).unwrap();
    assert_eq!(set.image_shape, [3, 32, 32]);
    assert_eq!(set.labels, vec![3, 0, 9]);
    assert_eq!(set.len(), 3);
    for i in 0..3 {
        assert_eq!(set.image(i), &image(i)[..]);
    }
    // Image 1, green channel, row 5, column 30.
    assert_eq!(set.image(1)[1024 + 5 * 32 + 30], pixel(1, 1, 5, 30));
    // Image 2, blue channel, row 31, column 0.
    assert_eq!(set.image(2)[2048 + 31 * 32], pixel(2, 2, 31, 0));
}

#[test]
fn cifar100_keeps_the_fine_or_the_coarse_label() {
    let bytes = cifar100(&[(19, 99), (0, 0), (7, 42)]);
    let fine = parse_cifar(&bytes, CifarVariant::Cifar100Fine, Path::new("train.bin")).unwrap();
    assert_eq!(fine.labels, vec![99, 0, 42]);
    let coarse = parse_cifar(&bytes, CifarVariant::Cifar100Coarse, Path::new("train.bin")).unwrap();
    assert_eq!(coarse.labels, vec![19, 0, 7]);
    assert_eq!(fine.pixels, coarse.pixels);
    assert_eq!(fine.image(2), &image(2)[..]);
    assert_eq!(fine.image(0)[2048 + 32 + 1], pixel(0, 2, 1, 1));
}

#[test]
fn load_cifar_concatenates_batches_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let a = write(dir.path(), "data_batch_1.bin", &cifar10(&[1, 2], 0));
    let b = write(dir.path(), "data_batch_2.bin", &cifar10(&[3, 4, 5], 2));
    let set = load_cifar(&[a.clone(), b.clone()], CifarVariant::Cifar10).unwrap();
    assert_eq!(set.labels, vec![1, 2, 3, 4, 5]);
    for i in 0..5 {
        assert_eq!(set.image(i), &image(i)[..]);
    }
    let reversed = load_cifar(&[b, a], CifarVariant::Cifar10).unwrap();
    assert_eq!(reversed.labels, vec![3, 4, 5, 1, 2]);
    assert_eq!(reversed.image(0), &image(2)[..]);
}

#[test]
fn length_not_a_multiple_of_the_record_says_what_is_left_over() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = cifar10(&[1, 2], 0);
    bytes.truncate(bytes.len() - 100);
    let path = write(dir.path(), "truncated_batch.bin", &bytes);
    let err = load_cifar(std::slice::from_ref(&path), CifarVariant::Cifar10).unwrap_err();
    assert!(matches!(err, DataError::BadFile { .. }), "{err:?}");
    assert_error(
        &err,
        &path,
        &[
            "length 6046",
            "record size 3073",
            "1 whole record and 2973 bytes left over",
        ],
    );

    // A CIFAR-10 file read as CIFAR-100.
    let path = write(dir.path(), "cifar10_as_100.bin", &cifar10(&[1, 2], 0));
    let err = load_cifar(std::slice::from_ref(&path), CifarVariant::Cifar100Fine).unwrap_err();
    assert_error(
        &err,
        &path,
        &[
            "CIFAR-100 record size 3074",
            "1 whole record and 3072 bytes left over",
        ],
    );
}

#[test]
fn labels_out_of_range_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "bad_label.bin", &cifar10(&[1, 10, 2], 0));
    let err = load_cifar(std::slice::from_ref(&path), CifarVariant::Cifar10).unwrap_err();
    assert_error(&err, &path, &["record 1", "byte 3073", "label 10", "0..=9"]);

    let path = write(dir.path(), "bad_fine.bin", &cifar100(&[(0, 0), (3, 100)]));
    for variant in [CifarVariant::Cifar100Fine, CifarVariant::Cifar100Coarse] {
        let err = load_cifar(std::slice::from_ref(&path), variant).unwrap_err();
        assert_error(&err, &path, &["record 1", "fine label 100", "0..=99"]);
    }

    let path = write(dir.path(), "bad_coarse.bin", &cifar100(&[(20, 5)]));
    for variant in [CifarVariant::Cifar100Fine, CifarVariant::Cifar100Coarse] {
        let err = load_cifar(std::slice::from_ref(&path), variant).unwrap_err();
        assert_error(&err, &path, &["record 0", "coarse label 20", "0..=19"]);
    }
}

#[test]
fn empty_file_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "empty_batch.bin", &[]);
    for variant in [
        CifarVariant::Cifar10,
        CifarVariant::Cifar100Fine,
        CifarVariant::Cifar100Coarse,
    ] {
        let err = load_cifar(std::slice::from_ref(&path), variant).unwrap_err();
        assert_error(&err, &path, &["empty file"]);
    }
}

#[test]
fn a_bad_second_batch_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let good = write(dir.path(), "good.bin", &cifar10(&[1], 0));
    let bad = write(dir.path(), "bad.bin", &cifar10(&[11], 0));
    let err = load_cifar(&[good, bad.clone()], CifarVariant::Cifar10).unwrap_err();
    assert_error(&err, &bad, &["label 11"]);
}

#[test]
fn missing_file_and_no_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing_batch.bin");
    let err = load_cifar(std::slice::from_ref(&path), CifarVariant::Cifar10).unwrap_err();
    assert!(matches!(err, DataError::Io { .. }), "{err:?}");
    assert_error(&err, &path, &["cannot read"]);

    let err = load_cifar(&[], CifarVariant::Cifar10).unwrap_err();
    assert!(
        matches!(err, DataError::InvalidArgument { name: "paths", .. }),
        "{err:?}"
    );
}
