//! The user's own data given as a path ([`load_path_with`], [`info_path_with`]): how it is
//! read ([`PathOptions`]), array files (`.npy`, `.npz`, safetensors) beside the detected
//! formats, and a seeded test hold-out for data that come as one split.
//!
//! ```
//! use genae_data::registry::{load_path_with, PathOptions};
//! use ndarray::{Array1, Array3};
//! use ndarray_npy::NpzWriter;
//!
//! let dir = tempfile::tempdir().unwrap();
//! let path = dir.path().join("mine.npz");
//! let mut npz = NpzWriter::new(std::fs::File::create(&path).unwrap());
//! npz.add_array("images", &Array3::<u8>::from_elem((50, 8, 8), 7)).unwrap();
//! npz.add_array("labels", &Array1::<i64>::from_elem(50, 1)).unwrap();
//! npz.finish().unwrap();
//!
//! let data = load_path_with(&path, &PathOptions::default()).unwrap();
//! assert_eq!(data.train.image_shape, [1, 8, 8]);
//! // One split: 10 % of it is held out as the test set (seeded).
//! assert_eq!((data.train.len(), data.test.len()), (45, 5));
//! ```

use std::io::Read;
use std::path::{Path, PathBuf};

use super::detect::{path_label, resolve_path, PathSource};
use super::report::SplitInfo;
use super::{info_path, load_from_dir, DatasetInfo, Format};
use crate::formats::arrays::{self, ArrayLayout, RawArray};
use crate::formats::image_folder::Channels;
use crate::transforms::split_validation;
use crate::{DataError, Dataset, ImageSet};

/// How a path given directly is read. `Default`: format from the content and extension,
/// the channel axis of arrays from their shape, image folders at 64×64 RGB, a 10 % test
/// hold-out (seed 0) when the data come as one split.
#[derive(Clone, Debug, PartialEq)]
pub struct PathOptions {
    /// Force a format instead of detecting it.
    pub format: Option<Format>,
    /// Where the channel axis of 4-d image arrays is.
    pub layout: ArrayLayout,
    /// Image folders: the side images are centre-cropped and resized to (default 64).
    pub image_size: Option<u32>,
    /// Image folders: grey or RGB (default RGB).
    pub channels: Option<Channels>,
    /// The fraction of a single split held out as the test set (0 < f < 1).
    pub test_fraction: f64,
    /// Seed of the hold-out.
    pub seed: u64,
    /// A user manifest ([`USER_MANIFEST`] schema: the shipped manifests'); by default
    /// `genae-dataset.toml` in the folder given, or the path itself when it is a `.toml` file.
    pub manifest: Option<PathBuf>,
}

/// The name of a user manifest found beside the data: a TOML file with the shipped manifests'
/// schema (name, format, image shape, splits with counts, file sizes and SHA-256) whose counts
/// and checksums are then verified like the shipped ones, and whose name names the data.
///
/// ```toml
/// name = "my-digits"
/// description = "Digits I scanned"
/// format = "idx"
/// image_shape = [1, 28, 28]
/// [train]
/// count = 5000
/// images = { file = "train-images-idx3-ubyte", sha256 = "…" }
/// labels = { file = "train-labels-idx1-ubyte" }
/// ```
pub const USER_MANIFEST: &str = "genae-dataset.toml";

impl Default for PathOptions {
    fn default() -> Self {
        Self {
            format: None,
            layout: ArrayLayout::Auto,
            image_size: None,
            channels: None,
            test_fraction: 0.1,
            seed: 0,
            manifest: None,
        }
    }
}

/// The array format of a file, from its first bytes, else its extension.
fn array_format(path: &Path) -> Option<Format> {
    let mut head = [0u8; 9];
    let n = std::fs::File::open(path)
        .and_then(|mut f| f.read(&mut head))
        .unwrap_or(0);
    let head = &head[..n];
    if head.starts_with(b"\x93NUMPY") {
        return Some(Format::Npy);
    }
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase());
    if head.starts_with(b"PK\x03\x04") && ext.as_deref() != Some("zip") {
        return Some(Format::Npz);
    }
    // safetensors: an 8-byte little-endian header length, then a JSON object.
    if n == 9 && head[8] == b'{' {
        return Some(Format::Safetensors);
    }
    match ext.as_deref() {
        Some("npy") => Some(Format::Npy),
        Some("npz") => Some(Format::Npz),
        Some("safetensors") => Some(Format::Safetensors),
        _ => None,
    }
}

/// Splits a single set into train and a seeded test hold-out.
fn hold_out(
    set: ImageSet,
    options: &PathOptions,
    path: &Path,
) -> Result<(ImageSet, ImageSet), DataError> {
    let f = options.test_fraction;
    if !(f > 0.0 && f < 1.0) {
        return Err(DataError::InvalidArgument {
            name: "test_fraction",
            reason: format!("must be in (0, 1), got {f}"),
        });
    }
    if set.len() < 2 {
        return Err(DataError::bad_file(
            path,
            format!(
                "holds {} image(s) and no test split: a test hold-out needs at least 2",
                set.len()
            ),
        ));
    }
    let n_test = ((set.len() as f64 * f).round() as usize).clamp(1, set.len() - 1);
    split_validation(&set, n_test, options.seed)
}

fn array_dataset(path: &Path, format: Format, options: &PathOptions) -> Result<Dataset, DataError> {
    let arrays = match format {
        Format::Npy => arrays::read_npy(path)?,
        Format::Npz => arrays::read_npz(path)?,
        _ => arrays::read_safetensors(path)?,
    };
    let (train, test) = arrays::image_sets(&arrays, options.layout, path)?;
    let labelled = arrays
        .keys()
        .any(|k| k.contains("label") || k.starts_with("y_"));
    let (train, test) = match test {
        Some(test) => (train, test),
        None => hold_out(train, options, path)?,
    };
    let classes = train
        .labels
        .iter()
        .chain(&test.labels)
        .max()
        .map_or(0, |m| m + 1);
    Ok(Dataset {
        name: path_label(path),
        train,
        test,
        class_names: if labelled {
            (0..classes).map(|c| c.to_string()).collect()
        } else {
            Vec::new()
        },
    })
}

/// The user manifest for `path` and the folder its files are in, if there is one.
fn user_manifest(
    path: &Path,
    options: &PathOptions,
) -> Result<Option<(super::Manifest, PathBuf)>, DataError> {
    let (file, dir) = match &options.manifest {
        Some(file) => (
            file.clone(),
            if path.is_dir() {
                path.to_path_buf()
            } else {
                file.parent().map(Path::to_path_buf).unwrap_or_default()
            },
        ),
        None if path.is_dir() && path.join(USER_MANIFEST).is_file() => {
            (path.join(USER_MANIFEST), path.to_path_buf())
        }
        None if path.is_file() && path.extension().is_some_and(|e| e == "toml") => (
            path.to_path_buf(),
            path.parent().map(Path::to_path_buf).unwrap_or_default(),
        ),
        None => return Ok(None),
    };
    let text = std::fs::read_to_string(&file).map_err(|e| DataError::io(&file, &e))?;
    let manifest = super::Manifest::from_toml_str(&text, &file)?;
    let dir = if dir.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        dir
    };
    Ok(Some((manifest, dir)))
}

/// The format to read `path` as, and whether it is an array file.
fn chosen_format(path: &Path, options: &PathOptions) -> Result<Option<Format>, DataError> {
    if !path.is_file() && !path.is_dir() {
        return Err(super::detect::not_a_file_or_folder(path));
    }
    let detected = if path.is_file() {
        array_format(path)
    } else {
        None
    };
    match (options.format, detected) {
        (Some(forced), _) if forced.is_array_file() => {
            if path.is_dir() {
                return Err(DataError::bad_file(
                    path,
                    format!("is a folder; format `{forced}` is one file"),
                ));
            }
            Ok(Some(forced))
        }
        (Some(_), Some(found)) => Err(DataError::bad_file(
            path,
            format!(
                "looks like a `{found}` file, not the format `{}` asked for",
                options.format.map_or("", Format::as_str)
            ),
        )),
        (_, found) => Ok(found),
    }
}

/// Decodes a folder or file given directly: array files ([`crate::formats::arrays`]) by
/// content or extension, anything else as [`super::load_path`] detects it; `options.format`
/// forces a format (an error when the path is plainly something else). Data that come as
/// one split get a seeded test hold-out of `options.test_fraction`.
pub fn load_path_with(path: &Path, options: &PathOptions) -> Result<Dataset, DataError> {
    if let Some((manifest, dir)) = user_manifest(path, options)? {
        let mut dataset = load_from_dir(&manifest, &dir)?;
        for check in super::verify(&manifest, &dir) {
            if matches!(
                check.status,
                super::CheckStatus::Mismatch | super::CheckStatus::Missing
            ) {
                let size = |s: Option<u64>| s.map_or("?".to_string(), |n| format!("{n} bytes"));
                let listed =
                    |s: Option<u64>| s.map_or("no size".to_string(), |n| format!("{n} bytes"));
                return Err(DataError::bad_file(
                    &check.file,
                    format!(
                        "does not match its manifest `{}` ({}): the file has {}, SHA-256 {}; the \
                         manifest lists {}, SHA-256 {}",
                        manifest.source.display(),
                        check.status,
                        size(check.actual_size),
                        check.actual_sha256.as_deref().unwrap_or("?"),
                        listed(check.expected_size),
                        check.expected_sha256.as_deref().unwrap_or("none")
                    ),
                ));
            }
        }
        if dataset.test.is_empty() {
            let (train, test) = hold_out(dataset.train, options, path)?;
            dataset.train = train;
            dataset.test = test;
        }
        return Ok(dataset);
    }
    if let Some(format) = chosen_format(path, options)? {
        return array_dataset(path, format, options);
    }
    let mut dataset = match resolve_path(path)? {
        PathSource::Known { manifest, dir, .. } => load_from_dir(&manifest, &dir)?,
        PathSource::Detected(mut plan) => {
            if let Some(forced) = options.format {
                if forced != plan.format {
                    return Err(DataError::bad_file(
                        path,
                        format!(
                            "looks like `{}` data, not the format `{forced}` asked for",
                            plan.format
                        ),
                    ));
                }
            }
            if let Some(size) = options.image_size {
                plan.folder.size = size;
            }
            if let Some(channels) = options.channels {
                plan.folder.channels = channels;
            }
            let decoded = plan.decode()?;
            plan.dataset(path_label(path), decoded)?
        }
    };
    if dataset.test.is_empty() && !dataset.train.is_empty() {
        let (train, test) = hold_out(dataset.train, options, path)?;
        dataset.train = train;
        dataset.test = test;
    }
    if dataset.train.is_empty() {
        return Err(DataError::bad_file(path, "holds no training images"));
    }
    Ok(dataset)
}

/// [`info_path`](super::info_path) with `options`; for an array file: its arrays, the
/// splits read from them, and a note on the hold-out.
pub fn info_path_with(path: &Path, options: &PathOptions) -> Result<DatasetInfo, DataError> {
    if let Some((manifest, dir)) = user_manifest(path, options)? {
        return super::info_from_dir(&manifest, &dir);
    }
    let Some(format) = chosen_format(path, options)? else {
        return info_path(path);
    };
    let arrays = match format {
        Format::Npy => arrays::read_npy(path)?,
        Format::Npz => arrays::read_npz(path)?,
        _ => arrays::read_safetensors(path)?,
    };
    let listed: Vec<String> = arrays
        .iter()
        .map(|(name, a)| {
            let kind = match a {
                RawArray::U8(_) => "uint8".to_string(),
                RawArray::Float(_) => "float".to_string(),
                RawArray::Int(_) => "integer".to_string(),
                RawArray::Other(t, _) => t.clone(),
            };
            format!("{name} {:?} {kind}", a.shape())
        })
        .collect();
    let held_out = arrays::image_sets(&arrays, options.layout, path)?
        .1
        .is_none();
    let data = array_dataset(path, format, options)?;
    let mut notes = vec![format!("arrays: {}", listed.join("; "))];
    if held_out {
        notes.push(format!(
            "one split: {:.0} % held out as the test set (seed {})",
            options.test_fraction * 100.0,
            options.seed
        ));
    }
    let (size, sha) = match super::sha256_file(path) {
        Ok((s, h)) => (Some(s), Some(h)),
        Err(_) => (None, None),
    };
    Ok(DatasetInfo {
        name: data.name.clone(),
        description: String::new(),
        format,
        location: path.to_path_buf(),
        class_names: data.class_names.clone(),
        splits: vec![
            SplitInfo::of("train", &data.train),
            SplitInfo::of("test", &data.test),
        ],
        checksums: vec![super::FileCheck {
            file: path.to_path_buf(),
            expected_size: None,
            actual_size: size,
            expected_sha256: None,
            actual_sha256: sha,
            unpacked: false,
            status: super::CheckStatus::NotListed,
            note: None,
        }],
        notes,
    })
}
