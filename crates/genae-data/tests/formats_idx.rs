//! IDX decoding: raw and gzipped round trips, transposition, every malformed-file error, and
//! (when installed) the real Fashion-MNIST training set.

use std::io::Write;
use std::path::{Path, PathBuf};

use flate2::write::GzEncoder;
use flate2::Compression;
use genae_data::formats::idx::{load_idx_pair, parse_idx, read_idx, IdxArray, IdxImageOptions};
use genae_data::DataError;

/// An IDX file: two zero bytes, `dtype`, the number of dimensions, big-endian dims, `data`.
fn idx_bytes(dtype: u8, dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, dtype, dims.len() as u8];
    for d in dims {
        out.extend_from_slice(&d.to_be_bytes());
    }
    out.extend_from_slice(data);
    out
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// 3 images of 2 rows x 3 columns; pixel (image i, row r, column c) = 100 i + 10 r + c.
fn three_images() -> Vec<u8> {
    let mut data = Vec::new();
    for i in 0..3u8 {
        for r in 0..2u8 {
            for c in 0..3u8 {
                data.push(100 * i + 10 * r + c);
            }
        }
    }
    data
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
fn raw_round_trip_keeps_every_pixel_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let images = write(
        dir.path(),
        "images-idx3-ubyte",
        &idx_bytes(8, &[3, 2, 3], &three_images()),
    );
    let labels = write(
        dir.path(),
        "labels-idx1-ubyte",
        &idx_bytes(8, &[3], &[7, 0, 9]),
    );
    let set = load_idx_pair(&images, &labels, IdxImageOptions::default()).unwrap();
    assert_eq!(set.image_shape, [1, 2, 3]);
    assert_eq!(set.labels, vec![7, 0, 9]);
    assert_eq!(set.pixels, three_images());
    // Image 2, row 1, column 2.
    assert_eq!(set.image(2)[3 + 2], 212);
    // Image 1, row 0, column 1.
    assert_eq!(set.image(1)[1], 101);
}

#[test]
fn gzipped_round_trip_matches_raw_and_is_detected_by_content() {
    let dir = tempfile::tempdir().unwrap();
    let image_bytes = idx_bytes(8, &[3, 2, 3], &three_images());
    let label_bytes = idx_bytes(8, &[3], &[1, 2, 3]);
    // A gzipped file without a .gz name and a raw file with one: the content decides.
    let images_gz = write(dir.path(), "images-idx3-ubyte", &gzip(&image_bytes));
    let labels_raw = write(dir.path(), "labels-idx1-ubyte.gz", &label_bytes);
    let set = load_idx_pair(&images_gz, &labels_raw, IdxImageOptions::default()).unwrap();
    assert_eq!(set.pixels, three_images());
    assert_eq!(set.labels, vec![1, 2, 3]);
    assert_eq!(set.image_shape, [1, 2, 3]);

    let raw = parse_idx(&image_bytes, Path::new("raw")).unwrap();
    let gz = parse_idx(&gzip(&image_bytes), Path::new("gz")).unwrap();
    assert_eq!(raw, gz);
    assert_eq!(
        raw,
        IdxArray {
            dims: vec![3, 2, 3],
            data: three_images()
        }
    );
}

#[test]
fn multi_member_gzip_is_read_whole() {
    let bytes = idx_bytes(8, &[2, 2], &[1, 2, 3, 4]);
    let (a, b) = bytes.split_at(7);
    let mut two_members = gzip(a);
    two_members.extend(gzip(b));
    let array = parse_idx(&two_members, Path::new("two-members.gz")).unwrap();
    assert_eq!(array.dims, vec![2, 2]);
    assert_eq!(array.data, vec![1, 2, 3, 4]);
}

#[test]
fn parse_idx_reads_any_number_of_dimensions() {
    let data: Vec<u8> = (0..24).collect();
    let array = parse_idx(&idx_bytes(8, &[2, 3, 2, 2], &data), Path::new("4d")).unwrap();
    assert_eq!(array.dims, vec![2, 3, 2, 2]);
    assert_eq!(array.data, data);
    let empty = parse_idx(&idx_bytes(8, &[0], &[]), Path::new("empty")).unwrap();
    assert_eq!(empty.dims, vec![0]);
    assert!(empty.data.is_empty());
}

#[test]
fn transpose_stores_emnist_images_upright() {
    let dir = tempfile::tempdir().unwrap();
    let images = write(
        dir.path(),
        "emnist-images",
        &idx_bytes(8, &[3, 2, 3], &three_images()),
    );
    let labels = write(dir.path(), "emnist-labels", &idx_bytes(8, &[3], &[1, 2, 3]));
    let set = load_idx_pair(&images, &labels, IdxImageOptions { transpose: true }).unwrap();
    // 2 rows x 3 columns become 3 rows x 2 columns: new (r, c) = old (c, r).
    assert_eq!(set.image_shape, [1, 3, 2]);
    for i in 0..3 {
        for r in 0..3 {
            for c in 0..2 {
                assert_eq!(set.image(i)[r * 2 + c] as usize, 100 * i + 10 * c + r);
            }
        }
    }
    // Image 2: new row 2, column 1 = old row 1, column 2.
    assert_eq!(set.image(2)[2 * 2 + 1], 212);
}

#[test]
fn truncated_data_says_how_much_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "short-idx3",
        &idx_bytes(8, &[60000, 28, 28], &[0; 1000]),
    );
    let err = read_idx(&path).unwrap_err();
    assert!(matches!(err, DataError::BadFile { .. }), "{err:?}");
    assert_error(
        &err,
        &path,
        &[
            "truncated",
            "60000 images of 28x28",
            "47040000 bytes",
            "only 1000 bytes",
        ],
    );
}

#[test]
fn truncated_header_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let two_bytes = write(dir.path(), "two-bytes", &[0, 0]);
    assert_error(
        &read_idx(&two_bytes).unwrap_err(),
        &two_bytes,
        &["truncated", "2 bytes"],
    );
    let empty = write(dir.path(), "empty-file", &[]);
    assert_error(
        &read_idx(&empty).unwrap_err(),
        &empty,
        &["truncated", "0 bytes"],
    );
    // 3 dimensions declared, 1.5 given.
    let half_dims = write(dir.path(), "half-dims", &[0, 0, 8, 3, 0, 0, 0, 5, 0, 0]);
    assert_error(
        &read_idx(&half_dims).unwrap_err(),
        &half_dims,
        &["truncated", "3 dimensions (12 bytes)", "only 6 bytes"],
    );
}

#[test]
fn trailing_bytes_are_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "long-labels",
        &idx_bytes(8, &[3], &[1, 2, 3, 4, 5]),
    );
    assert_error(
        &read_idx(&path).unwrap_err(),
        &path,
        &[
            "2 bytes of trailing data",
            "3 labels (3 bytes)",
            "5 bytes follow",
        ],
    );
}

#[test]
fn huge_header_dimensions_fail_without_allocating() {
    let dir = tempfile::tempdir().unwrap();
    // 4294967295 x 65535 x 65535 overflows no u64 but asks for ~18 exabytes.
    let huge = write(
        dir.path(),
        "huge",
        &idx_bytes(8, &[u32::MAX, 65535, 65535], &[1, 2, 3]),
    );
    assert_error(
        &read_idx(&huge).unwrap_err(),
        &huge,
        &["truncated", "only 3 bytes"],
    );
    // Product overflows usize.
    let overflow = write(dir.path(), "overflow", &idx_bytes(8, &[u32::MAX; 4], &[]));
    assert_error(
        &read_idx(&overflow).unwrap_err(),
        &overflow,
        &["multiply to more than"],
    );
}

#[test]
fn wrong_magic_numbers_are_named() {
    let dir = tempfile::tempdir().unwrap();
    // Signed bytes instead of unsigned.
    let signed = write(dir.path(), "signed-idx3", &idx_bytes(9, &[1, 1, 1], &[0]));
    assert_error(
        &read_idx(&signed).unwrap_err(),
        &signed,
        &[
            "0x00000903",
            "0x09 (signed bytes)",
            "only 0x08 (unsigned bytes)",
        ],
    );
    // Floats.
    let floats = write(
        dir.path(),
        "float-idx3",
        &idx_bytes(0x0d, &[1, 1, 1], &[0; 4]),
    );
    assert_error(
        &read_idx(&floats).unwrap_err(),
        &floats,
        &["0x00000d03", "32-bit floats"],
    );
    // Not an IDX file at all (a PNG signature).
    let png = write(dir.path(), "picture.png", b"\x89PNG\r\n\x1a\n");
    assert_error(
        &read_idx(&png).unwrap_err(),
        &png,
        &["wrong magic number 0x89504e47", "not an IDX file"],
    );
    // Zero dimensions.
    let zero = write(dir.path(), "zero-dims", &[0, 0, 8, 0]);
    assert_error(
        &read_idx(&zero).unwrap_err(),
        &zero,
        &["0x00000800", "0 dimensions"],
    );
}

#[test]
fn label_file_given_as_images_and_images_as_labels_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let images = write(
        dir.path(),
        "real-images",
        &idx_bytes(8, &[3, 2, 3], &three_images()),
    );
    let labels = write(dir.path(), "real-labels", &idx_bytes(8, &[3], &[1, 2, 3]));
    let err = load_idx_pair(&labels, &images, IdxImageOptions::default()).unwrap_err();
    assert_error(
        &err,
        &labels,
        &["wrong magic number 0x00000801: expected 0x00000803 (unsigned bytes, 3 dimensions)"],
    );
    let err = load_idx_pair(&images, &images, IdxImageOptions::default()).unwrap_err();
    assert_error(
        &err,
        &images,
        &["wrong magic number 0x00000803: expected 0x00000801 (unsigned bytes, 1 dimension)"],
    );
}

#[test]
fn image_and_label_counts_must_agree() {
    let dir = tempfile::tempdir().unwrap();
    let images = write(
        dir.path(),
        "three-images",
        &idx_bytes(8, &[3, 2, 3], &three_images()),
    );
    let labels = write(dir.path(), "two-labels", &idx_bytes(8, &[2], &[1, 2]));
    let err = load_idx_pair(&images, &labels, IdxImageOptions::default()).unwrap_err();
    assert_error(&err, &images, &["3 images but 2 labels", "two-labels"]);
}

#[test]
fn empty_image_files_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let labels = write(dir.path(), "no-labels", &idx_bytes(8, &[0], &[]));
    let none = write(dir.path(), "no-images", &idx_bytes(8, &[0, 28, 28], &[]));
    let err = load_idx_pair(&none, &labels, IdxImageOptions::default()).unwrap_err();
    assert_error(&err, &none, &["0 images"]);
    let flat = write(dir.path(), "flat-images", &idx_bytes(8, &[5, 0, 28], &[]));
    let err = load_idx_pair(&flat, &labels, IdxImageOptions::default()).unwrap_err();
    assert_error(&err, &flat, &["images of 0x28", "zero"]);
}

#[test]
fn corrupt_gzip_streams_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let data: Vec<u8> = (0..5000u32).map(|i| (i * 7 % 251) as u8).collect();
    let good = gzip(&idx_bytes(8, &[5, 20, 50], &data));

    // Bytes in the middle of the deflate stream overwritten.
    let mut flipped = good.clone();
    let middle = flipped.len() / 2;
    for b in &mut flipped[middle..middle + 16] {
        *b ^= 0xa5;
    }
    let path = write(dir.path(), "flipped.gz", &flipped);
    assert_error(
        &read_idx(&path).unwrap_err(),
        &path,
        &["corrupt gzip stream"],
    );

    // Cut off half way.
    let path = write(dir.path(), "cut.gz", &good[..good.len() / 2]);
    assert_error(
        &read_idx(&path).unwrap_err(),
        &path,
        &["corrupt gzip stream"],
    );

    // Just the two magic bytes.
    let path = write(dir.path(), "magic-only.gz", &[0x1f, 0x8b]);
    assert_error(
        &read_idx(&path).unwrap_err(),
        &path,
        &["corrupt gzip stream"],
    );

    // A valid gzip stream of something that is not IDX.
    let path = write(dir.path(), "text.gz", &gzip(b"hello, world"));
    assert_error(
        &read_idx(&path).unwrap_err(),
        &path,
        &["wrong magic number 0x68656c6c", "after gzip decompression"],
    );

    // A valid gzip stream of a truncated IDX file.
    let path = write(
        dir.path(),
        "short.gz",
        &gzip(&idx_bytes(8, &[5, 20, 50], &data[..10])),
    );
    assert_error(
        &read_idx(&path).unwrap_err(),
        &path,
        &[
            "truncated",
            "5 images of 20x50 (5000 bytes)",
            "only 10 bytes",
        ],
    );
}

#[test]
fn missing_file_is_an_io_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("not-there-idx3-ubyte.gz");
    let err = read_idx(&path).unwrap_err();
    assert!(matches!(err, DataError::Io { .. }), "{err:?}");
    assert_error(&err, &path, &["cannot read"]);
}

/// A folder given as data whose train split is broken is an error, not a data set with the
/// split silently dropped: a folder under the images file's name, labels without images, and a
/// device in place of a file.
#[test]
fn a_folder_with_a_broken_split_is_refused_not_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let images = idx_bytes(8, &[3, 2, 3], &three_images());
    let labels = idx_bytes(8, &[3], &[0, 1, 2]);
    write(dir.path(), "t10k-images-idx3-ubyte", &images);
    write(dir.path(), "t10k-labels-idx1-ubyte", &labels);
    write(dir.path(), "train-labels-idx1-ubyte", &labels);
    // Labels without images.
    let err = genae_data::registry::load_path(dir.path()).unwrap_err();
    assert_error(
        &err,
        &dir.path().join("train-labels-idx1-ubyte"),
        &["no images file `train-images-idx3-ubyte.gz`"],
    );
    // A folder where the images file should be.
    let folder = dir.path().join("train-images-idx3-ubyte");
    std::fs::create_dir(&folder).unwrap();
    let err = genae_data::registry::load_path(dir.path()).unwrap_err();
    assert_error(&err, &folder, &["is a folder, not an IDX file"]);
    // With the file in place, both splits load.
    std::fs::remove_dir(&folder).unwrap();
    write(dir.path(), "train-images-idx3-ubyte", &images);
    let set = genae_data::registry::load_path(dir.path()).unwrap();
    assert_eq!(set.train.len(), 3);
    // A device is neither a file nor a folder (and not "missing").
    let err = genae_data::registry::load_path(Path::new("/dev/zero")).unwrap_err();
    assert_error(
        &err,
        Path::new("/dev/zero"),
        &["not a regular file or folder"],
    );
}

/// The one test on a real file: Fashion-MNIST's training set, where `cargo xtask setup` (or
/// `apt-get install fashion-mnist`) put it. Skipped with a note when it is not there.
#[test]
fn real_fashion_mnist_train_set_if_installed() {
    let dir = Path::new("/usr/share/datasets/fashion-mnist");
    let images = dir.join("train-images-idx3-ubyte.gz");
    let labels = dir.join("train-labels-idx1-ubyte.gz");
    if !images.exists() || !labels.exists() {
        assert!(
            std::env::var_os("GENAE_REQUIRE_FASHION_MNIST").is_none(),
            "Fashion-MNIST is required here (GENAE_REQUIRE_FASHION_MNIST is set) but absent"
        );
        eprintln!(
            "note: skipping the real Fashion-MNIST test: {} not found",
            images.display()
        );
        return;
    }
    let start = std::time::Instant::now();
    let set = load_idx_pair(&images, &labels, IdxImageOptions::default()).unwrap();
    eprintln!("decoded Fashion-MNIST train in {:?}", start.elapsed());
    assert_eq!(set.len(), 60_000);
    assert_eq!(set.image_shape, [1, 28, 28]);
    assert_eq!(set.pixels.len(), 60_000 * 28 * 28);
    let mut per_class = [0usize; 10];
    for &label in &set.labels {
        per_class[label as usize] += 1;
    }
    assert_eq!(per_class, [6000; 10]);
    // Not all black: real pictures.
    assert!(set.pixels.iter().any(|&p| p > 200));
}

/// A gzip file whose stream expands far beyond what its IDX header declares is read only as
/// far as the header allows, and a header declaring more than the compressed bytes could hold
/// is refused before decompressing.
#[test]
fn gzip_decompression_is_bounded_by_the_header() {
    let dir = tempfile::tempdir().unwrap();
    // 3 labels declared, then 256 MiB of zeros (about 256 KiB compressed).
    let mut bomb = idx_bytes(8, &[3], &[1, 2, 3]);
    bomb.resize(bomb.len() + (256 << 20), 0);
    let path = write(dir.path(), "bomb-labels.gz", &gzip(&bomb));
    drop(bomb);
    assert_error(
        &read_idx(&path).unwrap_err(),
        &path,
        &[
            "trailing data",
            "3 labels (3 bytes)",
            "after gzip decompression",
        ],
    );
    // 10^9 images of 28×28 declared in a few dozen compressed bytes.
    let path = write(
        dir.path(),
        "huge-images.gz",
        &gzip(&idx_bytes(8, &[1_000_000_000, 28, 28], &[0; 8])),
    );
    assert_error(
        &read_idx(&path).unwrap_err(),
        &path,
        &[
            "784000000000 bytes",
            "more than",
            "compressed bytes can expand to",
        ],
    );
}
