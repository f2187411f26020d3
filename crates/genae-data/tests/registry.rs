//! Tests of the data-set registry: manifests, look-up order, loading, checksums and reports.
//! Every data set used here is written into a temporary folder by the test itself, except the
//! last test, which reads the real Fashion-MNIST when `/usr/share/datasets/fashion-mnist` exists.

use std::io::Write;
use std::path::{Path, PathBuf};

use genae_data::registry::{self, CheckStatus, Format, Manifest, SearchRoots, EMBEDDED_MANIFESTS};
use genae_data::DataError;
use sha2::{Digest, Sha256};

// --- helpers ---------------------------------------------------------------------------------

fn idx_images(n: usize, rows: usize, cols: usize, pixels: &[u8]) -> Vec<u8> {
    assert_eq!(pixels.len(), n * rows * cols);
    let mut out = vec![0, 0, 0x08, 3];
    for d in [n, rows, cols] {
        out.extend_from_slice(&(d as u32).to_be_bytes());
    }
    out.extend_from_slice(pixels);
    out
}

fn idx_labels(labels: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, 0x08, 1];
    out.extend_from_slice(&(labels.len() as u32).to_be_bytes());
    out.extend_from_slice(labels);
    out
}

fn gz(bytes: &[u8], level: u32) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(level));
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn sha256_hex(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

/// Deterministic pixels in 3..=250 (both ends reached for n >= 1 images of 28x28).
fn pixels(n: usize) -> Vec<u8> {
    (0..n)
        .flat_map(|i| (0..784).map(move |j| ((i * 31 + j * 7) % 248 + 3) as u8))
        .collect()
}

const TRAIN_LABELS: [u8; 6] = [0, 1, 2, 0, 1, 0];
const TEST_LABELS: [u8; 4] = [2, 2, 1, 0];

/// The raw (uncompressed) IDX bytes of the tiny data set, by file name without `.gz`.
fn tiny_raw() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("train-images-idx3-ubyte", idx_images(6, 28, 28, &pixels(6))),
        ("train-labels-idx1-ubyte", idx_labels(&TRAIN_LABELS)),
        ("t10k-images-idx3-ubyte", idx_images(4, 28, 28, &pixels(4))),
        ("t10k-labels-idx1-ubyte", idx_labels(&TEST_LABELS)),
    ]
}

/// Writes the tiny IDX data set (6 train / 4 test 28x28 images) into `dir`, gzipped or not.
fn write_tiny(dir: &Path, gzipped: bool) {
    std::fs::create_dir_all(dir).unwrap();
    for (name, raw) in tiny_raw() {
        if gzipped {
            std::fs::write(dir.join(format!("{name}.gz")), gz(&raw, 6)).unwrap();
        } else {
            std::fs::write(dir.join(name), raw).unwrap();
        }
    }
}

fn tiny_manifest_text(name: &str, train_count: usize) -> String {
    format!(
        r#"
name = "{name}"
description = "a tiny IDX data set written by the test"
format = "idx"
image_shape = [1, 28, 28]
classes = ["zero", "one", "two"]
licence = "test"
homepage = "https://example.invalid"
how_to_obtain = "Run the test that writes it."

[train]
count = {train_count}
images = {{ file = "train-images-idx3-ubyte.gz" }}
labels = {{ file = "train-labels-idx1-ubyte.gz" }}

[test]
count = 4
images = {{ file = "t10k-images-idx3-ubyte.gz" }}
labels = {{ file = "t10k-labels-idx1-ubyte.gz" }}
"#
    )
}

fn tiny_manifest(name: &str, train_count: usize) -> Manifest {
    Manifest::from_toml_str(
        &tiny_manifest_text(name, train_count),
        Path::new("test/tiny.toml"),
    )
    .unwrap()
}

fn bad_file(result: Result<Manifest, DataError>) -> (PathBuf, String) {
    match result {
        Err(DataError::BadFile { path, problem }) => (path, problem),
        other => panic!("expected BadFile, got {other:?}"),
    }
}

fn roots(base: &Path) -> SearchRoots {
    SearchRoots {
        explicit: Some(base.join("explicit")),
        env_dir: Some(base.join("env")),
        system_root: Some(base.join("system")),
        cache_root: Some(base.join("cache")),
    }
}

// --- manifests -------------------------------------------------------------------------------

#[test]
fn every_manifest_file_is_embedded_and_parses() {
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("datasets");
    let mut on_disk: Vec<String> = std::fs::read_dir(&folder)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".toml"))
        .collect();
    on_disk.sort();
    let embedded: Vec<String> = EMBEDDED_MANIFESTS
        .iter()
        .map(|(f, _)| f.to_string())
        .collect();
    assert_eq!(
        on_disk, embedded,
        "every datasets/*.toml must be listed in EMBEDDED_MANIFESTS (registry/manifest.rs)"
    );
    for (file, text) in EMBEDDED_MANIFESTS {
        let disk = std::fs::read_to_string(folder.join(file)).unwrap();
        assert_eq!(&disk, text, "{file}: embedded text differs from the file");
        let m = Manifest::from_toml_str(text, &folder.join(file)).unwrap();
        assert_eq!(format!("{}.toml", m.name), *file);
    }
    let all = registry::manifests().unwrap();
    let names: Vec<&str> = all.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "celeba",
            "cifar10",
            "cifar100",
            "emnist-balanced",
            "emnist-letters",
            "fashion-mnist",
            "kmnist",
            "mnist",
            "svhn"
        ]
    );
}

#[test]
fn manifest_contents() {
    let f = registry::manifest("fashion-mnist").unwrap();
    assert_eq!(f.format, Format::Idx);
    assert_eq!(f.classes.len(), 10);
    assert_eq!(f.train.count, Some(60_000));
    assert_eq!(f.test.as_ref().unwrap().count, Some(10_000));
    assert!(f
        .how_to_obtain
        .contains("apt-get install dataset-fashion-mnist"));
    assert!(f.how_to_obtain.contains("cargo xtask setup"));
    for spec in f.train.files() {
        assert!(spec.size.is_some() && spec.sha256.is_some());
    }
    let e = registry::manifest("emnist-balanced").unwrap();
    assert_eq!(e.options.transpose, Some(true));
    assert_eq!(e.classes.len(), 47);
    assert_eq!(
        registry::manifest("emnist-letters").unwrap().classes.len(),
        27
    );
    let c = registry::manifest("cifar100").unwrap();
    assert_eq!((c.format, c.classes.len()), (Format::Cifar100, 100));
    assert_eq!(
        registry::manifest("cifar10").unwrap().train.batches.len(),
        5
    );
    assert_eq!(registry::manifest("svhn").unwrap().format, Format::SvhnMat);
    let celeba = registry::manifest("celeba").unwrap();
    assert_eq!(celeba.format, Format::ImageFolder);
    assert_eq!(celeba.image_shape, [3, 64, 64]);
    assert!(celeba.test.is_none() && celeba.classes.is_empty());
}

#[test]
fn unknown_dataset_lists_known_names() {
    match registry::manifest("imagenet") {
        Err(DataError::UnknownDataset { name, known }) => {
            assert_eq!(name, "imagenet");
            for m in registry::manifests().unwrap() {
                assert!(known.contains(&m.name), "{known}");
            }
        }
        other => panic!("expected UnknownDataset, got {other:?}"),
    }
    // `info` of something that is neither a name nor a path says the same.
    let err = registry::info_with("no-such-data-set-or-path", &SearchRoots::default()).unwrap_err();
    assert!(matches!(err, DataError::UnknownDataset { .. }), "{err}");
}

#[test]
fn bad_manifests_name_the_file_and_the_field() {
    let source = Path::new("datasets/broken.toml");
    let good = tiny_manifest_text("broken", 6);
    let cases: Vec<(String, &str)> = vec![
        (format!("colour = \"red\"\n{good}"), "colour"),
        (good.replace("count = 6", "count = 6\ncuont = 3"), "cuont"),
        (good.replace("count = 6", "count = \"six\""), "train.count"),
        (
            good.replace("image_shape = [1, 28, 28]", "image_shape = [28, 28]"),
            "image_shape",
        ),
        (
            good.replace("format = \"idx\"", "format = \"png\""),
            "format",
        ),
        (
            good.replace(
                "images = { file = \"train-images-idx3-ubyte.gz\" }",
                "images = { file = \"train-images-idx3-ubyte.gz\", sha256 = \"abc\" }",
            ),
            "train.images.sha256",
        ),
        (
            good.replace("images = { file = \"t10k-images-idx3-ubyte.gz\" }\n", ""),
            "test.images",
        ),
        (
            good.replace("count = 4", "count = 4\nmat = { file = \"x.mat\" }"),
            "test.mat",
        ),
        (
            format!("{good}\n[options]\ncifar100_labels = \"fine\"\n"),
            "options.cifar100_labels",
        ),
        (
            good.replace("name = \"broken\"", "name = \"Broken Name\""),
            "name",
        ),
        (good.replace("name = \"broken\"\n", ""), "name"),
    ];
    for (text, field) in cases {
        let (path, problem) = bad_file(Manifest::from_toml_str(&text, source));
        assert_eq!(path, source);
        assert!(
            problem.contains(&format!("`{field}`")),
            "expected field `{field}` in: {problem}"
        );
    }
    // A syntax error names the file and the line.
    let (path, problem) = bad_file(Manifest::from_toml_str("name = ", source));
    assert_eq!(path, source);
    assert!(problem.contains("line 1"), "{problem}");
    // The wrong type is located too.
    let text = good.replace("count = 6", "count = \"six\"");
    let (_, problem) = bad_file(Manifest::from_toml_str(&text, source));
    assert!(problem.contains("line "), "{problem}");
}

// --- look-up ---------------------------------------------------------------------------------

#[test]
fn look_up_order_explicit_env_system_cache() {
    let tmp = tempfile::tempdir().unwrap();
    let r = roots(tmp.path());
    let m = tiny_manifest("tiny", 6);
    for root in ["explicit", "env", "system", "cache"] {
        write_tiny(&tmp.path().join(root).join("tiny"), true);
    }
    assert_eq!(r.locate(&m).unwrap(), tmp.path().join("explicit/tiny"));
    let r = SearchRoots {
        explicit: None,
        ..r
    };
    assert_eq!(r.locate(&m).unwrap(), tmp.path().join("env/tiny"));
    let r = SearchRoots { env_dir: None, ..r };
    assert_eq!(r.locate(&m).unwrap(), tmp.path().join("system/tiny"));
    let r = SearchRoots {
        system_root: None,
        ..r
    };
    assert_eq!(r.locate(&m).unwrap(), tmp.path().join("cache/tiny"));

    // A later root's data does not beat an earlier root that holds it.
    let r = roots(tmp.path());
    std::fs::remove_dir_all(tmp.path().join("explicit/tiny")).unwrap();
    assert_eq!(r.locate(&m).unwrap(), tmp.path().join("env/tiny"));
}

#[test]
fn explicit_and_env_dirs_may_hold_the_files_themselves() {
    let tmp = tempfile::tempdir().unwrap();
    let m = tiny_manifest("tiny", 6);
    write_tiny(&tmp.path().join("explicit"), true);
    write_tiny(&tmp.path().join("env"), true);
    let r = roots(tmp.path());
    assert_eq!(r.locate(&m).unwrap(), tmp.path().join("explicit"));
    // `<dir>/<name>` comes before `<dir>` itself.
    write_tiny(&tmp.path().join("explicit/tiny"), true);
    assert_eq!(r.locate(&m).unwrap(), tmp.path().join("explicit/tiny"));
    let r = SearchRoots {
        explicit: None,
        ..r
    };
    assert_eq!(r.locate(&m).unwrap(), tmp.path().join("env"));
    // The system and cache roots need the `<name>` folder.
    let r = SearchRoots {
        explicit: None,
        env_dir: None,
        system_root: Some(tmp.path().join("env")),
        cache_root: None,
    };
    assert!(matches!(r.locate(&m), Err(DataError::NotFound { .. })));
}

#[test]
fn files_without_gz_are_accepted() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("explicit/tiny");
    write_tiny(&dir, false);
    let m = tiny_manifest("tiny", 6);
    assert!(m.is_present_in(&dir));
    let r = roots(tmp.path());
    assert_eq!(r.locate(&m).unwrap(), dir);
    let d = registry::load_with(&m, &r).unwrap();
    assert_eq!((d.train.len(), d.test.len()), (6, 4));
    // One file missing: not there.
    std::fs::remove_file(dir.join("t10k-labels-idx1-ubyte")).unwrap();
    assert!(!m.is_present_in(&dir));
}

#[test]
fn not_found_lists_every_place_and_how_to_obtain() {
    let tmp = tempfile::tempdir().unwrap();
    let m = tiny_manifest("tiny", 6);
    let r = roots(tmp.path());
    match r.locate(&m) {
        Err(e @ DataError::NotFound { .. }) => {
            let message = e.to_string();
            let DataError::NotFound {
                name,
                searched,
                how_to_obtain,
            } = e
            else {
                unreachable!()
            };
            assert_eq!(name, "tiny");
            let t = tmp.path();
            assert_eq!(
                searched,
                vec![
                    t.join("explicit/tiny"),
                    t.join("explicit"),
                    t.join("env/tiny"),
                    t.join("env"),
                    t.join("system/tiny"),
                    t.join("cache/tiny"),
                ]
            );
            assert!(how_to_obtain.contains("Run the test that writes it."));
            assert!(how_to_obtain.contains("train-images-idx3-ubyte.gz"));
            for p in &searched {
                assert!(message.contains(&p.display().to_string()), "{message}");
            }
        }
        other => panic!("expected NotFound, got {other:?}"),
    }
    // The machine's roots: the system folder and the cache come last.
    let paths = registry::search_paths("mnist", Some(Path::new("/data")));
    assert_eq!(paths[0], Path::new("/data/mnist"));
    assert_eq!(paths[1], Path::new("/data"));
    assert!(paths.contains(&PathBuf::from("/usr/share/datasets/mnist")));
}

// --- load and info ---------------------------------------------------------------------------

#[test]
fn load_and_info_of_a_tiny_idx_data_set() {
    let tmp = tempfile::tempdir().unwrap();
    write_tiny(tmp.path(), true);
    let m = tiny_manifest("tiny", 6);
    let r = SearchRoots {
        explicit: Some(tmp.path().to_path_buf()),
        ..SearchRoots::default()
    };
    let d = registry::load_with(&m, &r).unwrap();
    assert_eq!(d.name, "tiny");
    assert_eq!(d.class_names, ["zero", "one", "two"]);
    assert_eq!(d.train.image_shape, [1, 28, 28]);
    assert_eq!(d.train.pixels, pixels(6));
    assert_eq!(d.train.labels, [0, 1, 2, 0, 1, 0]);
    assert_eq!(d.test.pixels, pixels(4));
    assert_eq!(d.test.labels, [2, 2, 1, 0]);

    let dir = r.locate(&m).unwrap();
    let info = registry::info_from_dir(&m, &dir).unwrap();
    assert_eq!(info.name, "tiny");
    assert_eq!(info.format, Format::Idx);
    assert_eq!(info.location, tmp.path());
    assert_eq!(info.splits.len(), 2);
    let (train, test) = (&info.splits[0], &info.splits[1]);
    assert_eq!((train.name.as_str(), train.count), ("train", 6));
    assert_eq!((test.name.as_str(), test.count), ("test", 4));
    assert_eq!(train.image_shape, [1, 28, 28]);
    assert_eq!((train.pixel_min, train.pixel_max), (3, 250));
    assert_eq!((test.pixel_min, test.pixel_max), (3, 250));
    assert_eq!(train.label_histogram, [(0, 3), (1, 2), (2, 1)]);
    assert_eq!(test.label_histogram, [(0, 1), (1, 1), (2, 2)]);
    // No checksum listed: every file reported with its measured size and hash.
    assert_eq!(info.checksums.len(), 4);
    for c in &info.checksums {
        assert_eq!(c.status, CheckStatus::NotListed);
        assert!(c.actual_sha256.is_some());
    }
    let report = info.to_string();
    for needle in [
        "format     idx",
        "6 images of 1×28×28, pixels 3–250",
        "4 images of 1×28×28",
        "0 zero: 3 · 1 one: 2 · 2 two: 1",
        "not listed",
    ] {
        assert!(report.contains(needle), "`{needle}` not in:\n{report}");
    }
}

#[test]
fn count_shape_and_label_mismatches_name_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    write_tiny(tmp.path(), true);
    let m = tiny_manifest("tiny", 7);
    match registry::load_from_dir(&m, tmp.path()) {
        Err(DataError::BadFile { path, problem }) => {
            assert_eq!(path, tmp.path().join("train-images-idx3-ubyte.gz"));
            assert!(problem.contains("holds 6 images"), "{problem}");
            assert!(problem.contains("expects 7"), "{problem}");
            assert!(problem.contains("test/tiny.toml"), "{problem}");
        }
        other => panic!("expected BadFile, got {other:?}"),
    }

    let text = tiny_manifest_text("tiny", 6).replace("[1, 28, 28]", "[1, 32, 32]");
    let m = Manifest::from_toml_str(&text, Path::new("t.toml")).unwrap();
    match registry::load_from_dir(&m, tmp.path()) {
        Err(DataError::BadFile { path, problem }) => {
            assert_eq!(path, tmp.path().join("train-images-idx3-ubyte.gz"));
            assert!(
                problem.contains("1×28×28") && problem.contains("1×32×32"),
                "{problem}"
            );
        }
        other => panic!("expected BadFile, got {other:?}"),
    }

    let text = tiny_manifest_text("tiny", 6).replace(", \"two\"", "");
    let m = Manifest::from_toml_str(&text, Path::new("t.toml")).unwrap();
    match registry::load_from_dir(&m, tmp.path()) {
        Err(DataError::BadFile { path, problem }) => {
            assert_eq!(path, tmp.path().join("train-labels-idx1-ubyte.gz"));
            assert!(problem.contains("label 2"), "{problem}");
        }
        other => panic!("expected BadFile, got {other:?}"),
    }
}

#[test]
fn a_manifest_without_test_split_loads_an_empty_test_set() {
    let tmp = tempfile::tempdir().unwrap();
    write_tiny(tmp.path(), true);
    let text = tiny_manifest_text("tiny", 6);
    let text = &text[..text.find("[test]").unwrap()];
    let m = Manifest::from_toml_str(text, Path::new("t.toml")).unwrap();
    let d = registry::load_from_dir(&m, tmp.path()).unwrap();
    assert_eq!((d.train.len(), d.test.len()), (6, 0));
    assert_eq!(d.test.image_shape, [1, 28, 28]);
    let info = registry::info_from_dir(&m, tmp.path()).unwrap();
    assert_eq!(info.splits.len(), 1);
    assert!(info.to_string().contains("carves one out of train"));
}

// --- checksums -------------------------------------------------------------------------------

#[test]
fn verify_reports_ok_mismatch_missing_and_not_listed() {
    let tmp = tempfile::tempdir().unwrap();
    write_tiny(tmp.path(), true);
    let read = |n: &str| std::fs::read(tmp.path().join(n)).unwrap();
    let train_images = read("train-images-idx3-ubyte.gz");
    let train_labels = read("train-labels-idx1-ubyte.gz");
    let test_images = read("t10k-images-idx3-ubyte.gz");
    let text = tiny_manifest_text("tiny", 6)
        .replace(
            "images = { file = \"train-images-idx3-ubyte.gz\" }",
            &format!(
                "images = {{ file = \"train-images-idx3-ubyte.gz\", size = {}, sha256 = \"{}\" }}",
                train_images.len(),
                sha256_hex(&train_images)
            ),
        )
        .replace(
            "labels = { file = \"train-labels-idx1-ubyte.gz\" }",
            &format!(
                "labels = {{ file = \"train-labels-idx1-ubyte.gz\", sha256 = \"{}\" }}",
                sha256_hex(&train_labels)
            ),
        )
        .replace(
            "images = { file = \"t10k-images-idx3-ubyte.gz\" }",
            &format!(
                "images = {{ file = \"t10k-images-idx3-ubyte.gz\", size = {} }}",
                test_images.len()
            ),
        );
    let m = Manifest::from_toml_str(&text, Path::new("t.toml")).unwrap();
    let statuses = |dir: &Path| -> Vec<CheckStatus> {
        registry::verify(&m, dir).iter().map(|c| c.status).collect()
    };
    use CheckStatus::*;
    assert_eq!(statuses(tmp.path()), [Ok, Ok, Ok, NotListed]);
    let checks = registry::verify(&m, tmp.path());
    assert_eq!(
        checks[0].file,
        tmp.path().join("train-images-idx3-ubyte.gz")
    );
    assert_eq!(
        checks[0].actual_sha256.as_deref(),
        Some(&*sha256_hex(&train_images))
    );
    assert_eq!(checks[0].actual_size, Some(train_images.len() as u64));

    // One flipped byte: same size, other hash.
    let mut flipped = train_labels.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 0x01;
    std::fs::write(tmp.path().join("train-labels-idx1-ubyte.gz"), &flipped).unwrap();
    assert_eq!(statuses(tmp.path()), [Ok, Mismatch, Ok, NotListed]);
    let check = &registry::verify(&m, tmp.path())[1];
    assert_eq!(
        check.expected_sha256.as_deref(),
        Some(&*sha256_hex(&train_labels))
    );
    assert_eq!(check.actual_sha256.as_deref(), Some(&*sha256_hex(&flipped)));

    std::fs::remove_file(tmp.path().join("t10k-labels-idx1-ubyte.gz")).unwrap();
    assert_eq!(statuses(tmp.path()), [Ok, Mismatch, Ok, Missing]);
    let check = &registry::verify(&m, tmp.path())[3];
    assert_eq!(check.file, tmp.path().join("t10k-labels-idx1-ubyte.gz"));
}

#[test]
fn verify_checks_decompressed_content_of_recompressed_and_unpacked_files() {
    let tmp = tempfile::tempdir().unwrap();
    let raw = tiny_raw();
    // The manifest lists the bytes of a level-9 gzip and the hash of the content.
    let lines: Vec<String> = raw
        .iter()
        .map(|(name, bytes)| {
            let packed = gz(bytes, 9);
            format!(
                "{{ file = \"{name}.gz\", size = {}, sha256 = \"{}\", unpacked_size = {}, unpacked_sha256 = \"{}\" }}",
                packed.len(),
                sha256_hex(&packed),
                bytes.len(),
                sha256_hex(bytes)
            )
        })
        .collect();
    let text = tiny_manifest_text("tiny", 6)
        .replace("{ file = \"train-images-idx3-ubyte.gz\" }", &lines[0])
        .replace("{ file = \"train-labels-idx1-ubyte.gz\" }", &lines[1])
        .replace("{ file = \"t10k-images-idx3-ubyte.gz\" }", &lines[2])
        .replace("{ file = \"t10k-labels-idx1-ubyte.gz\" }", &lines[3]);
    let m = Manifest::from_toml_str(&text, Path::new("t.toml")).unwrap();

    // Level 9, as listed: the bytes match.
    for (name, bytes) in &raw {
        std::fs::write(tmp.path().join(format!("{name}.gz")), gz(bytes, 9)).unwrap();
    }
    for c in registry::verify(&m, tmp.path()) {
        assert_eq!((c.status, c.unpacked), (CheckStatus::Ok, false), "{c:?}");
    }
    // Level 1 (a repackaged copy): other bytes, same content.
    for (name, bytes) in &raw {
        std::fs::write(tmp.path().join(format!("{name}.gz")), gz(bytes, 1)).unwrap();
    }
    for c in registry::verify(&m, tmp.path()) {
        assert_eq!((c.status, c.unpacked), (CheckStatus::Ok, true), "{c:?}");
    }
    // Only the decompressed files: checked against the content hash.
    let plain = tmp.path().join("plain");
    write_tiny(&plain, false);
    for c in registry::verify(&m, &plain) {
        assert_eq!(c.status, CheckStatus::Ok, "{c:?}");
        assert!(!c.file.to_string_lossy().ends_with(".gz"));
    }
    // A different content: mismatch.
    std::fs::write(
        plain.join("t10k-labels-idx1-ubyte"),
        idx_labels(&[0, 0, 0, 0]),
    )
    .unwrap();
    assert_eq!(
        registry::verify(&m, &plain)[3].status,
        CheckStatus::Mismatch
    );
    // The report shows it.
    let info = registry::info_from_dir(&m, tmp.path()).unwrap();
    assert!(info.checksums_ok());
    assert!(info.to_string().contains("decompressed content"));
}

// --- paths given directly --------------------------------------------------------------------

#[test]
fn load_path_detects_idx_folders_and_files() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("some-digits");
    write_tiny(&dir, true);
    let d = registry::load_path(&dir).unwrap();
    assert_eq!(d.name, "some-digits");
    assert_eq!((d.train.len(), d.test.len()), (6, 4));
    assert_eq!(d.train.pixels, pixels(6));
    let info = registry::info_path(&dir).unwrap();
    assert_eq!(info.format, Format::Idx);
    assert_eq!(info.splits[0].label_histogram, [(0, 3), (1, 2), (2, 1)]);
    assert!(info
        .checksums
        .iter()
        .all(|c| c.status == CheckStatus::NotListed));
    // `info` takes a path when it is not a registry name.
    let by_str = registry::info_with(dir.to_str().unwrap(), &SearchRoots::default()).unwrap();
    assert_eq!(by_str, info);

    // One file: its split only, with the labels found next to it.
    let d = registry::load_path(&dir.join("t10k-images-idx3-ubyte.gz")).unwrap();
    assert_eq!((d.train.len(), d.test.len()), (0, 4));
    assert_eq!(d.test.labels, [2, 2, 1, 0]);

    // A folder named like a registry data set is read with its manifest (and its counts).
    let named = tmp.path().join("mnist");
    write_tiny(&named, true);
    match registry::load_path(&named) {
        Err(DataError::BadFile { problem, .. }) => {
            assert!(problem.contains("expects 60000"), "{problem}")
        }
        other => panic!("expected a count mismatch, got {other:?}"),
    }

    // Nothing recognisable.
    let empty = tmp.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    std::fs::write(empty.join("notes.txt"), "hello").unwrap();
    assert!(matches!(
        registry::load_path(&empty),
        Err(DataError::BadFile { .. })
    ));
}

fn cifar10_batch(n: usize, first_label: u8) -> Vec<u8> {
    (0..n)
        .flat_map(|i| {
            std::iter::once((first_label + i as u8) % 10)
                .chain((0..3072).map(move |j| ((i * 13 + j) % 256) as u8))
        })
        .collect()
}

#[test]
fn cifar_batches_in_the_folder_or_its_subfolder() {
    let tmp = tempfile::tempdir().unwrap();
    let text = r#"
name = "tiny-cifar"
description = "two tiny CIFAR-10 batches and a test batch"
format = "cifar10"
image_shape = [3, 32, 32]
subdir = "cifar-10-batches-bin"
classes = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
licence = "test"
homepage = "https://example.invalid"
how_to_obtain = "Run the test."

[train]
count = 5
batches = [{ file = "data_batch_1.bin", size = 9219 }, { file = "data_batch_2.bin" }]

[test]
count = 2
batches = [{ file = "test_batch.bin" }]
"#;
    let m = Manifest::from_toml_str(text, Path::new("t.toml")).unwrap();
    let write = |dir: &Path| {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("data_batch_1.bin"), cifar10_batch(3, 0)).unwrap();
        std::fs::write(dir.join("data_batch_2.bin"), cifar10_batch(2, 3)).unwrap();
        std::fs::write(dir.join("test_batch.bin"), cifar10_batch(2, 7)).unwrap();
    };
    let flat = tmp.path().join("flat");
    let nested = tmp.path().join("nested");
    write(&flat);
    write(&nested.join("cifar-10-batches-bin"));
    for dir in [&flat, &nested] {
        let d = registry::load_from_dir(&m, dir).unwrap();
        assert_eq!((d.train.len(), d.test.len()), (5, 2));
        assert_eq!(d.train.labels, [0, 1, 2, 3, 4]);
        assert_eq!(d.test.labels, [7, 8]);
        let statuses: Vec<CheckStatus> =
            registry::verify(&m, dir).iter().map(|c| c.status).collect();
        assert_eq!(
            statuses,
            [
                CheckStatus::Ok,
                CheckStatus::NotListed,
                CheckStatus::NotListed
            ]
        );
        // Detected from the path alone, too.
        let info = registry::info_path(dir).unwrap();
        assert_eq!(info.format, Format::Cifar10);
        assert_eq!(
            info.splits.iter().map(|s| s.count).collect::<Vec<_>>(),
            [5, 2]
        );
        assert_eq!(info.splits[0].image_shape, [3, 32, 32]);
    }
}

fn write_png(path: &Path, width: u32, height: u32, shade: u8) {
    let img = image::RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([shade, (x % 256) as u8, (y % 256) as u8])
    });
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    img.save(path).unwrap();
}

#[test]
fn image_folders_by_manifest_and_by_path() {
    let tmp = tempfile::tempdir().unwrap();
    // A CelebA-like manifest: one folder, no test split, 16x16 gray.
    let text = r#"
name = "faces"
description = "three tiny images"
format = "image_folder"
image_shape = [1, 16, 16]
licence = "test"
homepage = "https://example.invalid"
how_to_obtain = "Run the test."

[train]
count = 3
folder = "img"
"#;
    let m = Manifest::from_toml_str(text, Path::new("t.toml")).unwrap();
    let dir = tmp.path().join("faces");
    for (i, shade) in [10u8, 20, 30].into_iter().enumerate() {
        write_png(&dir.join(format!("img/{i:06}.png")), 40, 30, shade);
    }
    let d = registry::load_from_dir(&m, &dir).unwrap();
    assert_eq!((d.train.len(), d.test.len()), (3, 0));
    assert_eq!(d.train.image_shape, [1, 16, 16]);
    assert_eq!(d.test.image_shape, [1, 16, 16]);
    let checks = registry::verify(&m, &dir);
    assert_eq!(checks.len(), 1);
    assert_eq!(checks[0].status, CheckStatus::NotListed);
    assert_eq!(checks[0].file, dir.join("img"));

    // A folder of class subfolders given as a path: labelled by subfolder, 64x64 RGB.
    let classes = tmp.path().join("pets");
    write_png(&classes.join("cat/a.png"), 70, 64, 1);
    write_png(&classes.join("cat/b.png"), 64, 80, 2);
    write_png(&classes.join("dog/c.png"), 64, 64, 3);
    let d = registry::load_path(&classes).unwrap();
    assert_eq!(d.train.image_shape, [3, 64, 64]);
    assert_eq!(d.train.labels, [0, 0, 1]);
    assert_eq!(d.class_names, ["cat", "dog"]);
    let info = registry::info_path(&classes).unwrap();
    assert_eq!(info.format, Format::ImageFolder);
    assert_eq!(info.splits[0].label_histogram, [(0, 2), (1, 1)]);
    assert!(info.to_string().contains("0 cat: 2 · 1 dog: 1"), "{info}");
}

// --- list ------------------------------------------------------------------------------------

#[test]
fn list_shows_where_each_data_set_is() {
    let tmp = tempfile::tempdir().unwrap();
    // Presence only needs the files to exist.
    let fashion = tmp.path().join("cache/fashion-mnist");
    write_tiny(&fashion, true);
    let r = SearchRoots {
        cache_root: Some(tmp.path().join("cache")),
        ..SearchRoots::default()
    };
    let entries = registry::list_with(&r);
    assert_eq!(entries.len(), EMBEDDED_MANIFESTS.len());
    for e in &entries {
        if e.name == "fashion-mnist" {
            assert_eq!(e.present_at.as_deref(), Some(fashion.as_path()));
            assert!(e.to_string().contains(&fashion.display().to_string()));
        } else {
            assert_eq!(e.present_at, None, "{}", e.name);
            assert!(e.to_string().contains("not found"));
        }
        assert!(!e.description.is_empty());
    }
}

// --- the real Fashion-MNIST ------------------------------------------------------------------

#[test]
fn real_fashion_mnist_when_installed() {
    let system = Path::new("/usr/share/datasets/fashion-mnist");
    if !system.is_dir() {
        assert!(
            std::env::var_os("GENAE_REQUIRE_FASHION_MNIST").is_none(),
            "Fashion-MNIST is required here (GENAE_REQUIRE_FASHION_MNIST is set) but absent"
        );
        eprintln!(
            "note: {} is absent; skipping the real Fashion-MNIST check",
            system.display()
        );
        return;
    }
    let r = SearchRoots {
        system_root: Some(PathBuf::from("/usr/share/datasets")),
        ..SearchRoots::default()
    };
    let info = registry::info_with("fashion-mnist", &r).unwrap();
    println!("{info}");
    assert_eq!(info.location, system);
    assert_eq!(info.format, Format::Idx);
    let counts: Vec<(&str, usize)> = info
        .splits
        .iter()
        .map(|s| (s.name.as_str(), s.count))
        .collect();
    assert_eq!(counts, [("train", 60_000), ("test", 10_000)]);
    for (split, per_class) in info.splits.iter().zip([6_000, 1_000]) {
        assert_eq!(split.image_shape, [1, 28, 28]);
        assert_eq!(
            split.label_histogram,
            (0..10).map(|l| (l, per_class)).collect::<Vec<_>>()
        );
        assert_eq!((split.pixel_min, split.pixel_max), (0, 255));
    }
    assert_eq!(info.checksums.len(), 4);
    for c in &info.checksums {
        assert_eq!(c.status, CheckStatus::Ok, "{c:?}");
        assert!(!c.unpacked && c.expected_sha256.is_some());
    }
    let report = info.to_string();
    assert!(report.contains("60,000 images of 1×28×28"), "{report}");
    assert!(report.contains("0 T-shirt/top: 6,000"), "{report}");
}
