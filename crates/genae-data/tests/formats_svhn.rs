//! SVHN `.mat` decoding. The test files are written by a minimal MATLAB v5 writer below (the
//! 128-byte header, `miMATRIX` elements, optionally wrapped in zlib-compressed `miCOMPRESSED`
//! elements as MATLAB `-v7` and the real SVHN files store them), in either byte order.

use std::io::Write;
use std::path::{Path, PathBuf};

use flate2::write::ZlibEncoder;
use flate2::Compression;
use genae_data::formats::svhn::{load_svhn_mat, parse_svhn_mat};
use genae_data::DataError;

// MAT v5 storage types and array classes used below.
const MI_INT8: u32 = 1;
const MI_UINT8: u32 = 2;
const MI_INT32: u32 = 5;
const MI_UINT32: u32 = 6;
const MI_DOUBLE: u32 = 9;
const MI_MATRIX: u32 = 14;
const MI_COMPRESSED: u32 = 15;
const MX_CHAR: u32 = 4;
const MX_DOUBLE: u32 = 6;
const MX_UINT8: u32 = 9;

/// A minimal MATLAB level-5 MAT-file writer.
struct MatWriter {
    little_endian: bool,
    bytes: Vec<u8>,
}

impl MatWriter {
    fn new(little_endian: bool) -> Self {
        let mut text =
            b"MATLAB 5.0 MAT-file, Platform: genae tests, Created on: 2026-11-22".to_vec();
        text.resize(116, b' ');
        let mut bytes = text;
        bytes.extend_from_slice(&[0; 8]); // subsystem data offset
        if little_endian {
            bytes.extend_from_slice(&[0x00, 0x01]);
            bytes.extend_from_slice(b"IM");
        } else {
            bytes.extend_from_slice(&[0x01, 0x00]);
            bytes.extend_from_slice(b"MI");
        }
        assert_eq!(bytes.len(), 128);
        Self {
            little_endian,
            bytes,
        }
    }

    fn u32(&self, v: u32) -> [u8; 4] {
        if self.little_endian {
            v.to_le_bytes()
        } else {
            v.to_be_bytes()
        }
    }

    fn f64(&self, v: f64) -> [u8; 8] {
        if self.little_endian {
            v.to_le_bytes()
        } else {
            v.to_be_bytes()
        }
    }

    /// A data element: small format when `data` fits in 4 bytes, else long, padded to 8.
    fn element(&self, data_type: u32, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        if data.len() <= 4 && !data.is_empty() {
            out.extend(self.u32(((data.len() as u32) << 16) | data_type));
            out.extend_from_slice(data);
            out.resize(8, 0);
        } else {
            out.extend(self.u32(data_type));
            out.extend(self.u32(data.len() as u32));
            out.extend_from_slice(data);
            out.resize(8 + data.len().div_ceil(8) * 8, 0);
        }
        out
    }

    /// A `miMATRIX` element of `class` with the real part stored as `data_type`.
    fn matrix(&self, name: &str, class: u32, dims: &[i32], data_type: u32, real: &[u8]) -> Vec<u8> {
        let mut body = Vec::new();
        let mut flags = self.u32(class).to_vec();
        flags.extend([0; 4]);
        body.extend(self.element(MI_UINT32, &flags));
        let dim_bytes: Vec<u8> = dims.iter().flat_map(|&d| self.u32(d as u32)).collect();
        body.extend(self.element(MI_INT32, &dim_bytes));
        body.extend(self.element(MI_INT8, name.as_bytes()));
        body.extend(self.element(data_type, real));
        let mut out = self.u32(MI_MATRIX).to_vec();
        out.extend(self.u32(body.len() as u32));
        out.extend(body);
        out
    }

    /// Appends a variable, zlib-compressed in a `miCOMPRESSED` element or not.
    fn add(&mut self, matrix: Vec<u8>, compressed: bool) -> &mut Self {
        if compressed {
            let mut encoder = ZlibEncoder::new(Vec::new(), Compression::default());
            encoder.write_all(&matrix).unwrap();
            let z = encoder.finish().unwrap();
            let mut out = self.u32(MI_COMPRESSED).to_vec();
            out.extend(self.u32(z.len() as u32));
            out.extend(z);
            self.bytes.extend(out);
        } else {
            self.bytes.extend(matrix);
        }
        self
    }

    /// `X`: uint8 `[32, 32, 3, n]` column-major, pixel (i, ch, r, c) = [`pixel`].
    fn x(&self, n: usize) -> Vec<u8> {
        self.matrix(
            "X",
            MX_UINT8,
            &[32, 32, 3, n as i32],
            MI_UINT8,
            &x_column_major(n),
        )
    }

    /// `y`: double `[n, 1]` stored as `miDOUBLE`.
    fn y(&self, labels: &[f64]) -> Vec<u8> {
        let data: Vec<u8> = labels.iter().flat_map(|&v| self.f64(v)).collect();
        self.matrix("y", MX_DOUBLE, &[labels.len() as i32, 1], MI_DOUBLE, &data)
    }
}

/// The pixel of image `i`, channel `ch`, row `r`, column `c` (not symmetric in `r` and `c`).
fn pixel(i: usize, ch: usize, r: usize, c: usize) -> u8 {
    (i * 41 + ch * 83 + r * 5 + c * 2) as u8
}

/// `n` images in MATLAB's column-major `[32, 32, 3, n]` order: X(r, c, ch, i) at
/// r + 32 c + 1024 ch + 3072 i.
fn x_column_major(n: usize) -> Vec<u8> {
    let mut out = vec![0; n * 3072];
    for i in 0..n {
        for ch in 0..3 {
            for c in 0..32 {
                for r in 0..32 {
                    out[r + 32 * c + 1024 * ch + 3072 * i] = pixel(i, ch, r, c);
                }
            }
        }
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

/// Checks `set` holds `n` images of [`pixel`] in CHW order.
fn assert_images(set: &genae_data::ImageSet, n: usize) {
    assert_eq!(set.image_shape, [3, 32, 32]);
    assert_eq!(set.len(), n);
    for i in 0..n {
        let image = set.image(i);
        for ch in 0..3 {
            for r in 0..32 {
                for c in 0..32 {
                    assert_eq!(image[ch * 1024 + r * 32 + c], pixel(i, ch, r, c));
                }
            }
        }
    }
}

#[test]
fn uncompressed_round_trip_transposes_to_chw_and_maps_10_to_0() {
    let dir = tempfile::tempdir().unwrap();
    let mut mat = MatWriter::new(true);
    let (x, y) = (mat.x(3), mat.y(&[10.0, 1.0, 5.0]));
    mat.add(x, false).add(y, false);
    let path = write(dir.path(), "train_32x32.mat", &mat.bytes);
    let set = load_svhn_mat(&path).unwrap();
    assert_eq!(set.labels, vec![0, 1, 5]);
    assert_images(&set, 3);
    // Image 1, blue channel, row 3, column 30.
    assert_eq!(set.image(1)[2048 + 3 * 32 + 30], pixel(1, 2, 3, 30));
}

#[test]
fn compressed_round_trip_matches_uncompressed() {
    let mut plain = MatWriter::new(true);
    let (x, y) = (plain.x(4), plain.y(&[1.0, 2.0, 9.0, 10.0]));
    plain.add(x.clone(), false).add(y.clone(), false);
    let mut compressed = MatWriter::new(true);
    compressed.add(x.clone(), true).add(y.clone(), true);
    // One variable compressed, one not.
    let mut mixed = MatWriter::new(true);
    mixed.add(y, false).add(x, true);

    let a = parse_svhn_mat(&plain.bytes, Path::new("plain.mat")).unwrap();
    let b = parse_svhn_mat(&compressed.bytes, Path::new("compressed.mat")).unwrap();
    let c = parse_svhn_mat(&mixed.bytes, Path::new("mixed.mat")).unwrap();
    assert_eq!(a.labels, vec![1, 2, 9, 0]);
    assert_images(&b, 4);
    assert_eq!(a, b);
    assert_eq!(a, c);
}

#[test]
fn big_endian_files_are_read() {
    let mut mat = MatWriter::new(false);
    let (x, y) = (mat.x(2), mat.y(&[7.0, 10.0]));
    mat.add(x, true).add(y, false);
    let set = parse_svhn_mat(&mat.bytes, Path::new("big_endian.mat")).unwrap();
    assert_eq!(set.labels, vec![7, 0]);
    assert_images(&set, 2);
}

#[test]
fn labels_in_other_classes_and_storage_types() {
    let mut mat = MatWriter::new(true);
    let x = mat.x(3);
    // A double array stored as miUINT8 (MATLAB's compact storage), as a row vector [1, N].
    let y = mat.matrix("y", MX_DOUBLE, &[1, 3], MI_UINT8, &[10, 3, 4]);
    mat.add(x.clone(), false).add(y, false);
    let set = parse_svhn_mat(&mat.bytes, Path::new("y_compact.mat")).unwrap();
    assert_eq!(set.labels, vec![0, 3, 4]);

    // A uint8 array.
    let mut mat = MatWriter::new(true);
    let y = mat.matrix("y", MX_UINT8, &[3, 1], MI_UINT8, &[2, 2, 10]);
    mat.add(y, true).add(x, true);
    let set = parse_svhn_mat(&mat.bytes, Path::new("y_uint8.mat")).unwrap();
    assert_eq!(set.labels, vec![2, 2, 0]);
}

#[test]
fn one_image_without_the_trailing_singleton_dimension() {
    let mut mat = MatWriter::new(true);
    let x = mat.matrix("X", MX_UINT8, &[32, 32, 3], MI_UINT8, &x_column_major(1));
    let y = mat.y(&[6.0]);
    mat.add(x, false).add(y, false);
    let set = parse_svhn_mat(&mat.bytes, Path::new("one.mat")).unwrap();
    assert_eq!(set.labels, vec![6]);
    assert_images(&set, 1);
}

#[test]
fn other_variables_are_ignored() {
    let mut mat = MatWriter::new(true);
    let note = mat.matrix(
        "note",
        MX_CHAR,
        &[1, 2],
        4, /* miUINT16 */
        &[b'h', 0, b'i', 0],
    );
    // A double array named `y2` and one named `Xs`: only exact names count.
    let doubles: Vec<u8> = [1.0, 2.0, 3.0, 4.0, 5.0]
        .iter()
        .flat_map(|&v| mat.f64(v))
        .collect();
    let other = mat.matrix("y2", MX_DOUBLE, &[5, 1], MI_DOUBLE, &doubles);
    let xs = mat.matrix("Xs", MX_UINT8, &[1, 1], MI_UINT8, &[7]);
    let (x, y) = (mat.x(2), mat.y(&[3.0, 4.0]));
    mat.add(note, true).add(other, false).add(xs, false);
    mat.add(x, false).add(y, true);
    let set = parse_svhn_mat(&mat.bytes, Path::new("extra_vars.mat")).unwrap();
    assert_eq!(set.labels, vec![3, 4]);
}

#[test]
fn missing_variables_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let mut mat = MatWriter::new(true);
    let y = mat.y(&[1.0]);
    mat.add(y, false);
    let path = write(dir.path(), "only_y.mat", &mat.bytes);
    assert_error(
        &load_svhn_mat(&path).unwrap_err(),
        &path,
        &["no variable `X`", "variables found: y"],
    );

    let mut mat = MatWriter::new(true);
    let x = mat.x(1);
    mat.add(x, true);
    let path = write(dir.path(), "only_x.mat", &mat.bytes);
    assert_error(
        &load_svhn_mat(&path).unwrap_err(),
        &path,
        &["no variable `y`", "variables found: X"],
    );

    let path = write(dir.path(), "header_only.mat", &MatWriter::new(true).bytes);
    assert_error(
        &load_svhn_mat(&path).unwrap_err(),
        &path,
        &["no variable `X`", "no variables"],
    );
}

/// A file name, its `X` and `y` elements, and what the error must say.
type Case = (&'static str, Vec<u8>, Vec<u8>, &'static [&'static str]);

#[test]
fn wrong_dimensions_and_types_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let cases: Vec<Case> = {
        let m = MatWriter::new(true);
        vec![
            (
                "gray.mat",
                m.matrix("X", MX_UINT8, &[32, 32, 1, 2], MI_UINT8, &[0; 2048]),
                m.y(&[1.0, 2.0]),
                &[
                    "`X` has dimensions [32, 32, 1, 2]",
                    "expected [32, 32, 3, N]",
                ],
            ),
            (
                "small.mat",
                m.matrix("X", MX_UINT8, &[28, 28, 3, 1], MI_UINT8, &[0; 2352]),
                m.y(&[1.0]),
                &["`X` has dimensions [28, 28, 3, 1]"],
            ),
            (
                "double_x.mat",
                m.matrix("X", MX_DOUBLE, &[32, 32, 3, 1], MI_UINT8, &[0; 3072]),
                m.y(&[1.0]),
                &["`X` is a double array", "expected a real uint8 array"],
            ),
            (
                "wide_y.mat",
                m.x(2),
                m.matrix("y", MX_DOUBLE, &[2, 2], MI_UINT8, &[1, 2, 3, 4]),
                &["`y` has dimensions [2, 2]", "expected [N, 1]"],
            ),
            (
                "char_y.mat",
                m.x(1),
                m.matrix("y", MX_CHAR, &[1, 1], 4, &[b'1', 0]),
                &["`y` is a char array"],
            ),
        ]
    };
    for (name, x, y, needles) in cases {
        let mut mat = MatWriter::new(true);
        mat.add(x, false).add(y, false);
        let path = write(dir.path(), name, &mat.bytes);
        assert_error(&load_svhn_mat(&path).unwrap_err(), &path, needles);
    }
}

#[test]
fn image_and_label_counts_must_agree() {
    let dir = tempfile::tempdir().unwrap();
    let mut mat = MatWriter::new(true);
    let (x, y) = (mat.x(3), mat.y(&[1.0, 2.0]));
    mat.add(x, true).add(y, true);
    let path = write(dir.path(), "count_mismatch.mat", &mat.bytes);
    assert_error(
        &load_svhn_mat(&path).unwrap_err(),
        &path,
        &["3 images in `X` but 2 labels in `y`"],
    );
}

#[test]
fn labels_outside_1_to_10_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    for (k, (value, shown)) in [
        (0.0, "is 0"),
        (11.0, "is 11"),
        (2.5, "is 2.5"),
        (f64::NAN, "is NaN"),
    ]
    .into_iter()
    .enumerate()
    {
        let mut mat = MatWriter::new(true);
        let (x, y) = (mat.x(2), mat.y(&[1.0, value]));
        mat.add(x, false).add(y, false);
        let path = write(dir.path(), &format!("bad_label_{k}.mat"), &mat.bytes);
        assert_error(
            &load_svhn_mat(&path).unwrap_err(),
            &path,
            &["label at index 1 (y(2) in MATLAB)", shown, "1..=10"],
        );
    }
}

#[test]
fn files_that_are_not_mat_files() {
    let dir = tempfile::tempdir().unwrap();
    let short = write(dir.path(), "short.mat", b"MATLAB");
    assert_error(
        &load_svhn_mat(&short).unwrap_err(),
        &short,
        &["not a MATLAB .mat file", "6 bytes", "128-byte"],
    );

    let text = write(dir.path(), "text.mat", &[b'a'; 300]);
    assert_error(
        &load_svhn_mat(&text).unwrap_err(),
        &text,
        &["not a MATLAB v5 .mat file", "0x61 0x61", "\"IM\" or \"MI\""],
    );

    let mut v73 =
        b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Nov 22 2026 HDF5 schema 1.00 ."
            .to_vec();
    v73.resize(128, b' ');
    v73.extend_from_slice(&[0; 384]);
    v73.extend_from_slice(b"\x89HDF\r\n\x1a\n");
    let v73 = write(dir.path(), "v73.mat", &v73);
    assert_error(&load_svhn_mat(&v73).unwrap_err(), &v73, &["v7.3 (HDF5)"]);

    let mut bad_version = MatWriter::new(true).bytes;
    bad_version[124] = 0x02;
    let bad_version = write(dir.path(), "version.mat", &bad_version);
    assert_error(
        &load_svhn_mat(&bad_version).unwrap_err(),
        &bad_version,
        &["version 0x0102"],
    );

    let missing = dir.path().join("missing_32x32.mat");
    let err = load_svhn_mat(&missing).unwrap_err();
    assert!(matches!(err, DataError::Io { .. }), "{err:?}");
    assert_error(&err, &missing, &["cannot read"]);
}

#[test]
fn truncated_files_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let mut mat = MatWriter::new(true);
    let (x, y) = (mat.x(2), mat.y(&[1.0, 2.0]));
    mat.add(x, false).add(y, false);
    // Cut in the middle of X.
    let path = write(dir.path(), "cut.mat", &mat.bytes[..128 + 3000]);
    assert_error(
        &load_svhn_mat(&path).unwrap_err(),
        &path,
        &["truncated", "top-level data element at byte 128", "claims"],
    );
    // Cut in the middle of a tag.
    let path = write(dir.path(), "cut_tag.mat", &mat.bytes[..132]);
    assert_error(
        &load_svhn_mat(&path).unwrap_err(),
        &path,
        &["truncated", "8-byte data element tag"],
    );

    // Dimensions that disagree with the data: 3 images declared, 2 stored.
    let mut mat = MatWriter::new(true);
    let x = mat.matrix("X", MX_UINT8, &[32, 32, 3, 3], MI_UINT8, &x_column_major(2));
    let y = mat.y(&[1.0, 2.0, 3.0]);
    mat.add(x, true).add(y, false);
    let path = write(dir.path(), "short_x.mat", &mat.bytes);
    assert_error(
        &load_svhn_mat(&path).unwrap_err(),
        &path,
        &["`X`", "need 9216 elements", "6144 bytes"],
    );
}

#[test]
fn corrupt_compressed_elements_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let mut mat = MatWriter::new(true);
    let (x, y) = (mat.x(2), mat.y(&[1.0, 2.0]));
    mat.add(x, true).add(y, false);
    let mut bytes = mat.bytes.clone();
    // Inside the zlib stream of X (its tag is at 128, the stream starts at 136).
    for b in &mut bytes[150..170] {
        *b ^= 0x5a;
    }
    let path = write(dir.path(), "corrupt_zlib.mat", &bytes);
    assert_error(
        &load_svhn_mat(&path).unwrap_err(),
        &path,
        &["corrupt zlib stream", "compressed element at byte 128"],
    );
}

/// A compressed element whose zlib stream expands far past what its inner element claims is
/// read only as far as the claim (a zlib bomb costs a few bytes of memory, not gigabytes), and a
/// claim the compressed bytes could never hold is refused before decompressing.
#[test]
fn compressed_elements_decompress_only_as_far_as_they_claim() {
    let dir = tempfile::tempdir().unwrap();
    let mut mat = MatWriter::new(true);
    let mut x = mat.x(2);
    x.resize(x.len() + (256 << 20), 0); // 256 MiB of zeros after the matrix
    let y = mat.y(&[1.0, 2.0]);
    mat.add(x, true).add(y, false);
    let path = write(dir.path(), "bomb.mat", &mat.bytes);
    assert_error(
        &load_svhn_mat(&path).unwrap_err(),
        &path,
        &[
            "compressed element at byte 128",
            "more data than the",
            "element inside claims",
        ],
    );

    let mut mat = MatWriter::new(true);
    let mut claim = mat.u32(MI_MATRIX).to_vec();
    claim.extend(mat.u32(u32::MAX));
    let y = mat.y(&[1.0]);
    mat.add(claim, true).add(y, false);
    let path = write(dir.path(), "claim.mat", &mat.bytes);
    assert_error(
        &load_svhn_mat(&path).unwrap_err(),
        &path,
        &[
            "claims 4294967295 bytes, more than",
            "compressed bytes can expand to",
        ],
    );
}

/// Sizes that overflow 32- or 64-bit arithmetic, or ask for far more than the file holds, are
/// errors, never panics or huge allocations. (The first input makes the `matfile` 0.5 crate
/// panic with "attempt to multiply with overflow" in debug builds: one reason this reader is
/// self-contained.)
#[test]
fn hostile_sizes_are_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let m = MatWriter::new(true);

    // A top-level element claiming u32::MAX bytes.
    let mut bytes = m.bytes.clone();
    bytes.extend(m.u32(MI_MATRIX));
    bytes.extend(m.u32(u32::MAX));
    let path = write(dir.path(), "huge_tag.mat", &bytes);
    assert_error(
        &load_svhn_mat(&path).unwrap_err(),
        &path,
        &["claims 4294967295 bytes but only 0 follow"],
    );

    // Dimensions whose product overflows, over a few bytes of data.
    let mut mat = MatWriter::new(true);
    let x = mat.matrix("X", MX_UINT8, &[i32::MAX; 4], MI_UINT8, &[1, 2, 3]);
    mat.add(x, false);
    let path = write(dir.path(), "huge_dims.mat", &mat.bytes);
    assert_error(
        &load_svhn_mat(&path).unwrap_err(),
        &path,
        &["`X`", "too many"],
    );

    // A negative dimension.
    let mut mat = MatWriter::new(true);
    let x = mat.matrix("X", MX_UINT8, &[32, 32, 3, -1], MI_UINT8, &[]);
    mat.add(x, true);
    let path = write(dir.path(), "negative_dim.mat", &mat.bytes);
    assert_error(
        &load_svhn_mat(&path).unwrap_err(),
        &path,
        &["dimension 4 is negative (-1)"],
    );

    // A small-format element claiming more than the 4 bytes it can hold.
    let mut bytes = m.bytes.clone();
    bytes.extend(m.u32((9 << 16) | MI_MATRIX));
    bytes.extend([0; 4]);
    let path = write(dir.path(), "small_tag.mat", &bytes);
    assert_error(
        &load_svhn_mat(&path).unwrap_err(),
        &path,
        &["claims 9 bytes: at most 4 fit"],
    );
}
