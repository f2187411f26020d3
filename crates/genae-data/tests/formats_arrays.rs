//! The user's own data given as a path: NumPy `.npy` / `.npz` and safetensors arrays, image
//! folders at a chosen size, IDX files of any size, the seeded test hold-out, and at least 15
//! bad inputs that must each be an error naming the file and the problem.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use genae_data::formats::arrays::ArrayLayout;
use genae_data::formats::image_folder::Channels;
use genae_data::registry::{info_path_with, load_path_with, Format, PathOptions};
use ndarray::{Array1, Array2, Array3, Array4, Axis, Slice};
use ndarray_npy::{NpzWriter, WriteNpyExt};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn random_images(n: usize, side: usize, seed: u64) -> (Array3<u8>, Array1<u8>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let images = Array3::from_shape_fn((n, side, side), |_| rng.gen::<u8>());
    let labels = Array1::from_shape_fn(n, |_| rng.gen_range(0..10u8));
    (images, labels)
}

/// Adds one array to an `.npz` being written.
type AddArray<'a> = &'a dyn Fn(&mut NpzWriter<std::fs::File>);

fn write_npz(path: &Path, arrays: &[(&str, AddArray)]) {
    let mut npz = NpzWriter::new(std::fs::File::create(path).unwrap());
    for (_, add) in arrays {
        add(&mut npz);
    }
    npz.finish().unwrap();
}

fn write_npy<A: WriteNpyExt>(path: &Path, array: &A) {
    array
        .write_npy(std::fs::File::create(path).unwrap())
        .unwrap();
}

/// A safetensors file of `(name, dtype, shape, little-endian bytes)`.
fn write_safetensors(path: &Path, tensors: &[(&str, &str, Vec<usize>, Vec<u8>)]) {
    let mut header = serde_json_like(tensors);
    while !(header.len() + 8).is_multiple_of(8) {
        header.push(' ');
    }
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header.as_bytes());
    for (_, _, _, data) in tensors {
        bytes.extend_from_slice(data);
    }
    std::fs::write(path, bytes).unwrap();
}

fn serde_json_like(tensors: &[(&str, &str, Vec<usize>, Vec<u8>)]) -> String {
    let mut offset = 0;
    let entries: Vec<String> = tensors
        .iter()
        .map(|(name, dtype, shape, data)| {
            let e = format!(
                "\"{name}\":{{\"dtype\":\"{dtype}\",\"shape\":{shape:?},\"data_offsets\":[{offset},{}]}}",
                offset + data.len()
            );
            offset += data.len();
            e
        })
        .collect();
    format!("{{{}}}", entries.join(","))
}

#[test]
fn a_keras_style_npz_gives_its_train_and_test_splits() {
    let dir = tempfile::tempdir().unwrap();
    let (images, labels) = random_images(1000, 28, 1);
    let path = dir.path().join("data.npz");
    let (xtr, xte) = (
        images
            .slice_axis(Axis(0), Slice::from(0..900usize))
            .to_owned(),
        images
            .slice_axis(Axis(0), Slice::from(900usize..))
            .to_owned(),
    );
    let (ytr, yte) = (
        labels
            .slice_axis(Axis(0), Slice::from(0..900usize))
            .to_owned(),
        labels
            .slice_axis(Axis(0), Slice::from(900usize..))
            .mapv(i64::from),
    );
    write_npz(
        &path,
        &[
            ("x_train", &|w| w.add_array("x_train", &xtr).unwrap()),
            ("y_train", &|w| w.add_array("y_train", &ytr).unwrap()),
            ("x_test", &|w| w.add_array("x_test", &xte).unwrap()),
            ("y_test", &|w| w.add_array("y_test", &yte).unwrap()),
        ],
    );
    let data = load_path_with(&path, &PathOptions::default()).unwrap();
    assert_eq!((data.train.len(), data.test.len()), (900, 100));
    assert_eq!(data.train.image_shape, [1, 28, 28]);
    assert_eq!(
        data.train.image(5),
        images
            .index_axis(Axis(0), 5)
            .iter()
            .copied()
            .collect::<Vec<_>>()
            .as_slice()
    );
    assert_eq!(data.test.labels[7], u32::from(labels[907]));
    assert_eq!(data.class_names.len(), 10);
    let info = info_path_with(&path, &PathOptions::default()).unwrap();
    assert_eq!(info.format, Format::Npz);
    assert_eq!(info.splits[1].count, 100);
}

#[test]
fn float_nhwc_arrays_become_bytes_in_nchw_order() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let bytes = Array4::from_shape_fn((20, 6, 5, 3), |_| rng.gen::<u8>());
    let floats = bytes.mapv(|v| f32::from(v) / 255.0);
    let path = dir.path().join("rgb.npz");
    write_npz(
        &path,
        &[("images", &|w| w.add_array("images", &floats).unwrap())],
    );
    let data = load_path_with(&path, &PathOptions::default()).unwrap();
    assert_eq!(data.train.image_shape, [3, 6, 5]);
    assert!(data.class_names.is_empty(), "no labels array: unlabelled");
    // Every image, in either split, is one of the originals with channels first.
    let all: Vec<Vec<u8>> = (0..20)
        .map(|i| {
            let mut v = Vec::new();
            for c in 0..3 {
                for y in 0..6 {
                    for x in 0..5 {
                        v.push(bytes[[i, y, x, c]]);
                    }
                }
            }
            v
        })
        .collect();
    for i in 0..data.train.len() {
        assert!(all.contains(&data.train.image(i).to_vec()));
    }
    // Forcing the layout changes the reading: NCHW of this shape has 6 channels.
    let err = load_path_with(
        &path,
        &PathOptions {
            layout: ArrayLayout::Nchw,
            ..Default::default()
        },
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("6 channels"), "{err}");
}

#[test]
fn one_split_gets_a_seeded_disjoint_hold_out() {
    let dir = tempfile::tempdir().unwrap();
    let (images, labels) = random_images(200, 8, 3);
    let path = dir.path().join("one.npz");
    write_npz(
        &path,
        &[
            ("images", &|w| w.add_array("images", &images).unwrap()),
            ("labels", &|w| w.add_array("labels", &labels).unwrap()),
        ],
    );
    let options = PathOptions {
        test_fraction: 0.25,
        seed: 9,
        ..Default::default()
    };
    let a = load_path_with(&path, &options).unwrap();
    let b = load_path_with(&path, &options).unwrap();
    assert_eq!((a.train.len(), a.test.len()), (150, 50));
    assert_eq!(a, b, "the same seed: the same split");
    let c = load_path_with(
        &path,
        &PathOptions {
            seed: 10,
            ..options.clone()
        },
    )
    .unwrap();
    assert_ne!(a.test, c.test);
    // Disjoint and complete: every original image is in exactly one split.
    let mut seen: Vec<Vec<u8>> = (0..a.train.len())
        .map(|i| a.train.image(i).to_vec())
        .collect();
    seen.extend((0..a.test.len()).map(|i| a.test.image(i).to_vec()));
    seen.sort();
    let mut originals: Vec<Vec<u8>> = (0..200)
        .map(|i| images.index_axis(Axis(0), i).iter().copied().collect())
        .collect();
    originals.sort();
    assert_eq!(seen, originals);
}

#[test]
fn npy_files_take_their_labels_from_a_sibling() {
    let dir = tempfile::tempdir().unwrap();
    let (images, labels) = random_images(30, 10, 4);
    write_npy(&dir.path().join("faces.npy"), &images);
    write_npy(
        &dir.path().join("faces_labels.npy"),
        &labels.mapv(i32::from),
    );
    let data = load_path_with(&dir.path().join("faces.npy"), &PathOptions::default()).unwrap();
    assert_eq!(data.train.len() + data.test.len(), 30);
    let total: u32 = data.train.labels.iter().chain(&data.test.labels).sum();
    assert_eq!(total, labels.iter().map(|&l| u32::from(l)).sum::<u32>());
}

#[test]
fn safetensors_files_are_read_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let pixels: Vec<u8> = (0..4 * 3 * 3).map(|i| i as u8).collect();
    let labels: Vec<u8> = [0i64, 1, 2, 1]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let test: Vec<u8> = (0..2 * 3 * 3).map(|i| 200 - i as u8).collect();
    let path = dir.path().join("data.safetensors");
    write_safetensors(
        &path,
        &[
            ("train", "U8", vec![4, 3, 3], pixels.clone()),
            ("train_labels", "I64", vec![4], labels),
            ("test", "U8", vec![2, 3, 3], test),
        ],
    );
    let data = load_path_with(&path, &PathOptions::default()).unwrap();
    assert_eq!(data.train.pixels, pixels);
    assert_eq!(data.train.labels, [0, 1, 2, 1]);
    assert_eq!(data.test.len(), 2);
    assert_eq!(data.test.labels, [0, 0], "no test labels: zeros");
}

#[test]
fn image_folders_and_idx_files_of_any_size() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("pngs");
    std::fs::create_dir(&folder).unwrap();
    for i in 0..10u8 {
        image::RgbImage::from_pixel(64, 64, image::Rgb([i * 20, 100, 200]))
            .save(folder.join(format!("{i}.png")))
            .unwrap();
    }
    let data = load_path_with(&folder, &PathOptions::default()).unwrap();
    assert_eq!(data.train.image_shape, [3, 64, 64]);
    assert_eq!(data.train.len() + data.test.len(), 10);
    assert_eq!(data.test.len(), 1);
    let small = load_path_with(
        &folder,
        &PathOptions {
            image_size: Some(32),
            channels: Some(Channels::Gray),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(small.train.image_shape, [1, 32, 32]);

    // An IDX pair of 100 images, far from any registry data set's count.
    let idx = dir.path().join("idx");
    std::fs::create_dir(&idx).unwrap();
    let mut images = vec![0, 0, 8, 3, 0, 0, 0, 100, 0, 0, 0, 5, 0, 0, 0, 5];
    images.extend((0..100 * 25).map(|i| (i % 251) as u8));
    std::fs::write(idx.join("train-images-idx3-ubyte"), images).unwrap();
    let mut labels = vec![0, 0, 8, 1, 0, 0, 0, 100];
    labels.extend((0..100).map(|i| (i % 10) as u8));
    std::fs::write(idx.join("train-labels-idx1-ubyte"), labels).unwrap();
    let data = load_path_with(&idx, &PathOptions::default()).unwrap();
    assert_eq!(data.train.len() + data.test.len(), 100);
    assert_eq!(data.train.image_shape, [1, 5, 5]);
}

/// Bad inputs: each an error naming the file and saying what is wrong.
#[test]
fn bad_files_are_errors_naming_the_file_and_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let p = |name: &str| -> PathBuf { d.join(name) };
    let (images, labels) = random_images(10, 6, 5);

    write_npz(
        &p("int64.npz"),
        &[("images", &|w| {
            w.add_array("images", &images.mapv(i64::from)).unwrap()
        })],
    );
    write_npz(
        &p("fewlabels.npz"),
        &[
            ("images", &|w| w.add_array("images", &images).unwrap()),
            ("labels", &|w| {
                w.add_array(
                    "labels",
                    &labels
                        .slice_axis(Axis(0), Slice::from(0..7usize))
                        .to_owned(),
                )
                .unwrap()
            }),
        ],
    );
    write_npz(
        &p("ndim.npz"),
        &[("images", &|w| {
            w.add_array("images", &Array2::<u8>::zeros((10, 36)))
                .unwrap()
        })],
    );
    write_npz(
        &p("ambiguous.npz"),
        &[("images", &|w| {
            w.add_array("images", &Array4::<u8>::zeros((4, 3, 5, 3)))
                .unwrap()
        })],
    );
    write_npz(
        &p("range.npz"),
        &[("images", &|w| {
            w.add_array("images", &Array3::<f32>::from_elem((2, 4, 4), 1.5))
                .unwrap()
        })],
    );
    write_npz(
        &p("nan.npz"),
        &[("images", &|w| {
            w.add_array("images", &Array3::<f64>::from_elem((2, 4, 4), f64::NAN))
                .unwrap()
        })],
    );
    write_npz(
        &p("nokey.npz"),
        &[("pictures", &|w| w.add_array("pictures", &images).unwrap())],
    );
    write_npz(
        &p("floatlabels.npz"),
        &[
            ("images", &|w| w.add_array("images", &images).unwrap()),
            ("labels", &|w| {
                w.add_array("labels", &Array1::<f32>::zeros(10)).unwrap()
            }),
        ],
    );
    write_npz(
        &p("neglabels.npz"),
        &[
            ("images", &|w| w.add_array("images", &images).unwrap()),
            ("labels", &|w| {
                w.add_array("labels", &Array1::<i64>::from_elem(10, -2))
                    .unwrap()
            }),
        ],
    );
    write_npz(
        &p("channels.npz"),
        &[("images", &|w| {
            w.add_array("images", &Array4::<u8>::zeros((2, 5, 4, 4)))
                .unwrap()
        })],
    );
    write_npz(
        &p("single.npz"),
        &[("images", &|w| {
            w.add_array("images", &Array3::<u8>::zeros((1, 4, 4)))
                .unwrap()
        })],
    );
    write_npy(&p("whole.npy"), &images);
    let whole = std::fs::read(p("whole.npy")).unwrap();
    std::fs::write(p("truncated.npy"), &whole[..whole.len() - 50]).unwrap();
    std::fs::write(p("notzip.npz"), b"hello, this is not a zip archive").unwrap();
    std::fs::write(
        p("badheader.safetensors"),
        [200, 0, 0, 0, 0, 0, 0, 0, b'{', b'x'],
    )
    .unwrap();
    write_safetensors(
        &p("complex.safetensors"),
        &[("images", "BF16", vec![1, 2, 2], vec![0; 8])],
    );
    let pngs = p("pngs");
    std::fs::create_dir(&pngs).unwrap();
    image::GrayImage::new(8, 8)
        .save(pngs.join("a.png"))
        .unwrap();
    image::GrayImage::new(8, 8)
        .save(pngs.join("b.png"))
        .unwrap();
    std::fs::write(pngs.join("c.png"), b"not a png").unwrap();
    std::fs::create_dir(p("empty")).unwrap();

    let default = PathOptions::default();
    let cases: Vec<(PathBuf, PathOptions, &str)> = vec![
        (p("int64.npz"), default.clone(), "expected uint8"),
        (
            p("fewlabels.npz"),
            default.clone(),
            "7 labels for 10 images",
        ),
        (p("ndim.npz"), default.clone(), "expected N×H×W"),
        (p("ambiguous.npz"), default.clone(), "data.layout"),
        (p("range.npz"), default.clone(), "in [0, 1]"),
        (p("nan.npz"), default.clone(), "NaN"),
        (p("nokey.npz"), default.clone(), "x_train"),
        (p("floatlabels.npz"), default.clone(), "integer"),
        (p("neglabels.npz"), default.clone(), "label -2"),
        (p("channels.npz"), default.clone(), "channel"),
        (p("single.npz"), default.clone(), "at least 2"),
        (p("truncated.npy"), default.clone(), "unreadable .npy"),
        (p("notzip.npz"), default.clone(), "not a NumPy .npz"),
        (p("badheader.safetensors"), default.clone(), "safetensors"),
        (p("complex.safetensors"), default.clone(), "BF16"),
        (pngs.clone(), default.clone(), "c.png"),
        (p("empty"), default.clone(), "empty"),
        (p("missing.npz"), default.clone(), "missing.npz"),
        (
            p("whole.npy"),
            PathOptions {
                format: Some(Format::Idx),
                ..Default::default()
            },
            "not the format `idx`",
        ),
        (
            p("empty"),
            PathOptions {
                format: Some(Format::Npz),
                ..Default::default()
            },
            "is a folder",
        ),
        (
            p("whole.npy"),
            PathOptions {
                test_fraction: 1.5,
                ..Default::default()
            },
            "test_fraction",
        ),
    ];
    assert!(cases.len() >= 15);
    let mut messages = HashMap::new();
    for (path, options, needle) in cases {
        let err = load_path_with(&path, &options)
            .err()
            .unwrap_or_else(|| panic!("{} loaded", path.display()))
            .to_string();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            err.contains(needle),
            "{}: expected `{needle}` in: {err}",
            path.display()
        );
        assert!(
            err.contains(&name) || needle == "test_fraction",
            "{}: the message does not name the file: {err}",
            path.display()
        );
        messages.insert(name, err);
    }
    assert!("idx".parse::<Format>().is_ok());
    assert!("npq".parse::<Format>().unwrap_err().contains("npz"));
}

/// An IDX pair of `n` 4×4 images in `dir`; returns the images file's SHA-256.
fn idx_pair(dir: &Path, n: u8) -> String {
    let mut images = vec![0, 0, 8, 3, 0, 0, 0, n, 0, 0, 0, 4, 0, 0, 0, 4];
    images.extend((0..usize::from(n) * 16).map(|i| (i % 256) as u8));
    std::fs::write(dir.join("train-images-idx3-ubyte"), &images).unwrap();
    let mut labels = vec![0, 0, 8, 1, 0, 0, 0, n];
    labels.extend((0..n).map(|i| i % 3));
    std::fs::write(dir.join("train-labels-idx1-ubyte"), labels).unwrap();
    genae_data::registry::sha256_file(&dir.join("train-images-idx3-ubyte"))
        .unwrap()
        .1
}

fn user_manifest(count: usize, sha: &str) -> String {
    format!(
        "name = \"my-scans\"\ndescription = \"scans\"\nformat = \"idx\"\nimage_shape = [1, 4, 4]\n\
         classes = [\"a\", \"b\", \"c\"]\n[train]\ncount = {count}\n\
         images = {{ file = \"train-images-idx3-ubyte\", sha256 = \"{sha}\" }}\n\
         labels = {{ file = \"train-labels-idx1-ubyte\" }}\n"
    )
}

#[test]
fn a_user_manifest_names_the_data_and_its_counts_and_checksums_are_verified() {
    let dir = tempfile::tempdir().unwrap();
    let sha = idx_pair(dir.path(), 40);
    let manifest = dir.path().join(genae_data::registry::USER_MANIFEST);
    std::fs::write(&manifest, user_manifest(40, &sha)).unwrap();
    let data = load_path_with(dir.path(), &PathOptions::default()).unwrap();
    assert_eq!(data.name, "my-scans");
    assert_eq!(data.class_names, ["a", "b", "c"]);
    assert_eq!(data.train.len() + data.test.len(), 40);
    // The manifest itself may be the path.
    assert_eq!(
        load_path_with(&manifest, &PathOptions::default())
            .unwrap()
            .name,
        "my-scans"
    );

    std::fs::write(&manifest, user_manifest(41, &sha)).unwrap();
    let err = load_path_with(dir.path(), &PathOptions::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("41") && err.contains("40"), "{err}");
    std::fs::write(&manifest, user_manifest(40, &"0".repeat(64))).unwrap();
    let err = load_path_with(dir.path(), &PathOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("train-images-idx3-ubyte") && err.contains("manifest"),
        "{err}"
    );
}

/// An `.npy` payload (format 1.0) with a hand-written header: `descr`, `shape`, then `data`.
fn npy_bytes(descr: &str, shape: &str, data: &[u8]) -> Vec<u8> {
    let mut text = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    while (10 + text.len() + 1) % 64 != 0 {
        text.push(' ');
    }
    text.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(text.len() as u16).to_le_bytes());
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(data);
    out
}

/// An `.npz` whose members are deflated, as `numpy.savez_compressed` writes them.
fn write_compressed_npz(path: &Path, members: &[(&str, Vec<u8>)]) {
    use std::io::Write;
    let mut zip = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .large_file(true);
    for (name, bytes) in members {
        zip.start_file(format!("{name}.npy"), options).unwrap();
        zip.write_all(bytes).unwrap();
    }
    zip.finish().unwrap();
}

/// `savez_compressed` archives load like plain ones; array headers declaring more data than
/// the file (or a zip member) holds are errors before anything that size is allocated, and a
/// member that decompresses to gigabytes of zeros is read only as far as its header allows.
#[test]
fn compressed_npz_loads_and_oversized_headers_and_zip_bombs_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (images, labels) = random_images(12, 6, 9);
    let mut image_npy = Vec::new();
    images.write_npy(&mut image_npy).unwrap();
    let mut label_npy = Vec::new();
    labels.write_npy(&mut label_npy).unwrap();
    write_compressed_npz(
        &d.join("ok.npz"),
        &[("images", image_npy), ("labels", label_npy)],
    );
    let options = PathOptions {
        test_fraction: 0.25,
        ..PathOptions::default()
    };
    let set = load_path_with(&d.join("ok.npz"), &options).unwrap();
    assert_eq!(set.train.len() + set.test.len(), 12);

    // A header declaring 10^12 images of 28×28 in a 200-byte file.
    std::fs::write(
        d.join("huge.npy"),
        npy_bytes("|u1", "(1000000000000, 28, 28)", &[0; 100]),
    )
    .unwrap();
    let err = load_path_with(&d.join("huge.npy"), &options)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("huge.npy")
            && err.contains("784000000000000 bytes")
            && err.contains("only 100"),
        "{err}"
    );

    // The same header inside a compressed archive.
    write_compressed_npz(
        &d.join("huge.npz"),
        &[("images", npy_bytes("<f4", "(100000000, 28, 28)", &[0; 64]))],
    );
    let err = load_path_with(&d.join("huge.npz"), &options)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("huge.npz") && err.contains("member `images.npy`"),
        "{err}"
    );
    assert!(err.contains("313600000000 bytes"), "{err}");

    // 64 MiB of zeros (deflated to ~64 KiB) behind a header declaring 16 bytes.
    let mut bomb = npy_bytes("|u1", "(1, 4, 4)", &[0; 16]);
    bomb.resize(bomb.len() + (64 << 20), 0);
    write_compressed_npz(&d.join("bomb.npz"), &[("images", bomb)]);
    let err = load_path_with(&d.join("bomb.npz"), &options)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("bomb.npz") && err.contains("more data than its header declares"),
        "{err}"
    );
}
