//! A folder or file given directly ([`load_path`]): its format guessed from the file names (or
//! sizes), or a registry data set recognised by folder name or checksums.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use super::load::{file_name, Inputs, Plan, PlannedSplit};
use super::{
    load_from_dir, manifests, verify, CheckStatus, Cifar100Labels, FileCheck, Format, Manifest,
};
use crate::formats::image_folder::{Channels, ImageFolderOptions, OnUnreadable};
use crate::{DataError, Dataset};

/// Image folders found by [`load_path`] are read at this side (the CelebA convention), in RGB.
pub const DEFAULT_FOLDER_SIZE: u32 = 64;

/// What a path given directly holds.
pub(super) enum PathSource {
    /// A folder that holds a registry data set (identified by folder name or by checksums).
    Known {
        manifest: Box<Manifest>,
        dir: PathBuf,
        checks: Option<Vec<FileCheck>>,
    },
    /// Anything else, decoded by what its files look like.
    Detected(Plan),
}

fn strip_gz(name: &str) -> &str {
    name.strip_suffix(".gz").unwrap_or(name)
}

fn split_of(name: &str) -> Option<&'static str> {
    let lower = name.to_ascii_lowercase();
    if lower.contains("train") {
        Some("train")
    } else if lower.contains("t10k") || lower.contains("test") {
        Some("test")
    } else {
        None
    }
}

fn list_files(dir: &Path) -> Result<Vec<String>, DataError> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| DataError::io(dir, &e))? {
        let entry = entry.map_err(|e| DataError::io(dir, &e))?;
        if entry.path().is_file() {
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    names.sort();
    Ok(names)
}

fn is_image_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower.ends_with(".png") || lower.ends_with(".jpg") || lower.ends_with(".jpeg")
}

/// Whether an image file is somewhere under `dir` (stops at the first one).
fn has_image(dir: &Path, depth: usize) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    let mut subdirs = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_file() && is_image_name(&entry.file_name().to_string_lossy()) {
            return true;
        }
        if path.is_dir() {
            subdirs.push(path);
        }
    }
    depth > 0 && subdirs.iter().any(|d| has_image(d, depth - 1))
}

fn detected_plan(format: Format, location: &Path, splits: Vec<PlannedSplit>) -> Plan {
    Plan {
        format,
        location: location.to_path_buf(),
        transpose: false,
        cifar100_labels: Cifar100Labels::Fine,
        folder: ImageFolderOptions {
            size: DEFAULT_FOLDER_SIZE,
            channels: Channels::Rgb,
            labels_from_subfolders: false,
            on_unreadable: OnUnreadable::Fail,
        },
        expected_shape: None,
        classes: Vec::new(),
        source: None,
        splits,
    }
}

fn unknown_format(path: &Path) -> DataError {
    DataError::bad_file(
        path,
        "cannot tell the format: expected IDX files (*-images-idx3-ubyte[.gz] with \
         *-labels-idx1-ubyte[.gz]), SVHN .mat files, CIFAR .bin batches or PNG/JPEG images",
    )
}

/// The labels file next to IDX images file `images` (same folder, `.gz` or not).
fn idx_labels_for(dir: &Path, images: &str, names: &[String]) -> Result<PathBuf, DataError> {
    let stem = strip_gz(images).replace("images-idx3-ubyte", "labels-idx1-ubyte");
    let gz = format!("{stem}.gz");
    names
        .iter()
        .find(|n| **n == gz || **n == stem)
        .map(|n| dir.join(n))
        .ok_or_else(|| {
            DataError::bad_file(
                dir.join(images),
                format!("no labels file `{gz}` (or `{stem}`) next to it"),
            )
        })
}

fn detect_idx(dir: &Path, names: &[String], images: &[&String]) -> Result<Plan, DataError> {
    let mut by_split: BTreeMap<&'static str, Vec<&String>> = BTreeMap::new();
    for name in images {
        by_split
            .entry(split_of(name).unwrap_or("train"))
            .or_default()
            .push(name);
    }
    let mut splits = Vec::new();
    let mut transpose = false;
    for split in ["train", "test"] {
        let Some(files) = by_split.get(split) else {
            continue;
        };
        // `x` and `x.gz` are the same file twice.
        let mut stems: Vec<&str> = files.iter().map(|n| strip_gz(n)).collect();
        stems.dedup();
        if stems.len() > 1 {
            return Err(DataError::bad_file(
                dir,
                format!(
                    "holds several IDX image files for the {split} split ({}): give a registry \
                     name, or the path of one file",
                    files
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        let images = files[0];
        transpose |= images.starts_with("emnist");
        splits.push(PlannedSplit {
            name: split,
            inputs: Inputs::Idx {
                images: dir.join(images),
                labels: idx_labels_for(dir, images, names)?,
            },
            count: None,
        });
    }
    let mut plan = detected_plan(Format::Idx, dir, splits);
    plan.transpose = transpose;
    Ok(plan)
}

fn batch_number(name: &str) -> Option<u32> {
    name.strip_prefix("data_batch_")?
        .strip_suffix(".bin")?
        .parse()
        .ok()
}

fn detect_cifar(dir: &Path) -> Result<Option<Plan>, DataError> {
    for base in [
        dir.to_path_buf(),
        dir.join("cifar-10-batches-bin"),
        dir.join("cifar-100-binary"),
    ] {
        if !base.is_dir() {
            continue;
        }
        let names = list_files(&base)?;
        let mut batches: Vec<(u32, &String)> = names
            .iter()
            .filter_map(|n| batch_number(n).map(|k| (k, n)))
            .collect();
        batches.sort();
        let has = |n: &str| names.iter().any(|x| x == n);
        let mut splits = Vec::new();
        let format = if !batches.is_empty() || has("test_batch.bin") {
            if !batches.is_empty() {
                splits.push(PlannedSplit {
                    name: "train",
                    inputs: Inputs::Cifar(batches.iter().map(|(_, n)| base.join(n)).collect()),
                    count: None,
                });
            }
            Format::Cifar10
        } else if has("train.bin") || has("test.bin") {
            if has("train.bin") {
                splits.push(PlannedSplit {
                    name: "train",
                    inputs: Inputs::Cifar(vec![base.join("train.bin")]),
                    count: None,
                });
            }
            Format::Cifar100
        } else {
            continue;
        };
        let test = if format == Format::Cifar10 {
            "test_batch.bin"
        } else {
            "test.bin"
        };
        if has(test) {
            splits.push(PlannedSplit {
                name: "test",
                inputs: Inputs::Cifar(vec![base.join(test)]),
                count: None,
            });
        }
        return Ok(Some(detected_plan(format, &base, splits)));
    }
    Ok(None)
}

/// Refuses a folder (or other non-file) under an IDX file's name: it would otherwise be
/// skipped and its split silently dropped.
fn check_idx_entries_are_files(dir: &Path) -> Result<(), DataError> {
    for entry in std::fs::read_dir(dir).map_err(|e| DataError::io(dir, &e))? {
        let entry = entry.map_err(|e| DataError::io(dir, &e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let stem = strip_gz(&name);
        let idx_name = stem.ends_with("-idx3-ubyte") || stem.ends_with("-idx1-ubyte");
        if idx_name && !entry.path().is_file() {
            let what = if entry.path().is_dir() {
                "is a folder, not an IDX file"
            } else {
                "is not a regular file (a device, pipe, socket or broken link)"
            };
            return Err(DataError::bad_file(entry.path(), what));
        }
    }
    Ok(())
}

/// Refuses an IDX labels file whose images file is missing (its split would be dropped).
fn check_idx_labels_have_images(dir: &Path, names: &[String]) -> Result<(), DataError> {
    for labels in names
        .iter()
        .filter(|n| strip_gz(n).ends_with("labels-idx1-ubyte"))
    {
        let stem = strip_gz(labels).replace("labels-idx1-ubyte", "images-idx3-ubyte");
        if !names.iter().any(|n| strip_gz(n) == stem) {
            return Err(DataError::bad_file(
                dir.join(labels),
                format!("no images file `{stem}.gz` (or `{stem}`) next to it"),
            ));
        }
    }
    Ok(())
}

fn detect_dir(dir: &Path) -> Result<Plan, DataError> {
    let names = list_files(dir)?;
    check_idx_entries_are_files(dir)?;
    let idx: Vec<&String> = names
        .iter()
        .filter(|n| strip_gz(n).ends_with("images-idx3-ubyte"))
        .collect();
    if !idx.is_empty() {
        check_idx_labels_have_images(dir, &names)?;
        return detect_idx(dir, &names, &idx);
    }
    let mats: Vec<&String> = names
        .iter()
        .filter(|n| n.to_ascii_lowercase().ends_with(".mat") && split_of(n).is_some())
        .collect();
    if !mats.is_empty() {
        let mut splits = Vec::new();
        for split in ["train", "test"] {
            let files: Vec<&&String> = mats.iter().filter(|n| split_of(n) == Some(split)).collect();
            match files.as_slice() {
                [] => {}
                [one] => splits.push(PlannedSplit {
                    name: split,
                    inputs: Inputs::Mat(dir.join(one)),
                    count: None,
                }),
                many => {
                    return Err(DataError::bad_file(
                        dir,
                        format!(
                            "holds several .mat files for the {split} split ({}): give the path \
                             of one file",
                            many.iter()
                                .map(|s| s.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    ))
                }
            }
        }
        return Ok(detected_plan(Format::SvhnMat, dir, splits));
    }
    if let Some(plan) = detect_cifar(dir)? {
        return Ok(plan);
    }
    if !has_image(dir, 8) {
        return Err(unknown_format(dir));
    }
    let top_images = names.iter().any(|n| is_image_name(n));
    let subdirs = std::fs::read_dir(dir)
        .map_err(|e| DataError::io(dir, &e))?
        .flatten()
        .filter(|e| e.path().is_dir())
        .count();
    let mut plan = detected_plan(
        Format::ImageFolder,
        dir,
        vec![PlannedSplit {
            name: "train",
            inputs: Inputs::Folder(dir.to_path_buf()),
            count: None,
        }],
    );
    plan.folder.labels_from_subfolders = !top_images && subdirs >= 2;
    Ok(plan)
}

fn detect_file(path: &Path) -> Result<Plan, DataError> {
    let name = file_name(path);
    let dir = path.parent().unwrap_or(Path::new("."));
    let stem = strip_gz(&name);
    let split = split_of(&name).unwrap_or("train");
    let lower = name.to_ascii_lowercase();
    let planned = |inputs| {
        vec![PlannedSplit {
            name: split,
            inputs,
            count: None,
        }]
    };
    if stem.ends_with("images-idx3-ubyte") || stem.ends_with("labels-idx1-ubyte") {
        let names = list_files(dir)?;
        let images = if stem.ends_with("images-idx3-ubyte") {
            name.clone()
        } else {
            let want = stem.replace("labels-idx1-ubyte", "images-idx3-ubyte");
            names
                .iter()
                .find(|n| strip_gz(n) == want)
                .cloned()
                .ok_or_else(|| {
                    DataError::bad_file(path, format!("no images file `{want}[.gz]` next to it"))
                })?
        };
        let labels = idx_labels_for(dir, &images, &names)?;
        let mut plan = detected_plan(
            Format::Idx,
            dir,
            planned(Inputs::Idx {
                images: dir.join(&images),
                labels,
            }),
        );
        plan.transpose = images.starts_with("emnist");
        return Ok(plan);
    }
    if lower.ends_with(".mat") {
        return Ok(detected_plan(
            Format::SvhnMat,
            dir,
            planned(Inputs::Mat(path.to_path_buf())),
        ));
    }
    if lower.ends_with(".bin") {
        let format = if batch_number(&name).is_some() || name == "test_batch.bin" {
            Format::Cifar10
        } else if name == "train.bin" || name == "test.bin" {
            Format::Cifar100
        } else {
            let len = std::fs::metadata(path)
                .map_err(|e| DataError::io(path, &e))?
                .len();
            if len > 0 && len % 3073 == 0 {
                Format::Cifar10
            } else if len > 0 && len % 3074 == 0 {
                Format::Cifar100
            } else {
                return Err(unknown_format(path));
            }
        };
        return Ok(detected_plan(
            format,
            dir,
            planned(Inputs::Cifar(vec![path.to_path_buf()])),
        ));
    }
    Err(unknown_format(path))
}

/// A registry manifest of `format` whose files are all in `dir`, named like the folder or
/// matching every SHA-256 it lists.
fn identify(dir: &Path, format: Format) -> Option<(Manifest, Option<Vec<FileCheck>>)> {
    let candidates: Vec<Manifest> = manifests()
        .ok()?
        .into_iter()
        .filter(|m| m.format == format && m.is_present_in(dir))
        .collect();
    let folder = dir.file_name().map(|n| n.to_string_lossy().into_owned());
    if let Some(m) = candidates.iter().find(|m| Some(&m.name) == folder.as_ref()) {
        return Some((m.clone(), None));
    }
    for m in candidates {
        let listed = m
            .splits()
            .iter()
            .flat_map(|(_, s)| s.files())
            .any(|f| f.sha256.is_some() || f.unpacked_sha256.is_some());
        if !listed {
            continue;
        }
        let checks = verify(&m, dir);
        let all_ok = checks
            .iter()
            .all(|c| matches!(c.status, CheckStatus::Ok | CheckStatus::NotListed));
        let hashed = checks
            .iter()
            .any(|c| c.status == CheckStatus::Ok && c.expected_sha256.is_some());
        if all_ok && hashed {
            return Some((m, Some(checks)));
        }
    }
    None
}

/// What `path` holds: a registry data set, or files whose format is guessed.
pub(super) fn resolve_path(path: &Path) -> Result<PathSource, DataError> {
    if path.is_dir() {
        let plan = detect_dir(path)?;
        // A detected CIFAR folder may be the archive's subfolder; identify from the folder given.
        if let Some((manifest, checks)) = identify(path, plan.format) {
            return Ok(PathSource::Known {
                manifest: Box::new(manifest),
                dir: path.to_path_buf(),
                checks,
            });
        }
        Ok(PathSource::Detected(plan))
    } else if path.is_file() {
        detect_file(path).map(PathSource::Detected)
    } else {
        Err(not_a_file_or_folder(path))
    }
}

/// The error for a path that is neither a regular file nor a folder: missing, or a device,
/// pipe or socket (`/dev/zero`).
pub(super) fn not_a_file_or_folder(path: &Path) -> DataError {
    if path.exists() {
        DataError::bad_file(
            path,
            "is not a regular file or folder (a device, pipe or socket): give a data file or folder",
        )
    } else {
        DataError::io(
            path,
            &io::Error::new(io::ErrorKind::NotFound, "no such file or folder"),
        )
    }
}

/// The name a path given directly is reported under: its last component.
pub(super) fn path_label(path: &Path) -> String {
    let name = file_name(path);
    if name.is_empty() {
        path.display().to_string()
    } else {
        name
    }
}

/// Decodes a folder or file given directly, guessing its format: IDX files
/// (`*-images-idx3-ubyte[.gz]` with their `*-labels-idx1-ubyte[.gz]`; `train` / `t10k` / `test`
/// in the name picks the split, an `emnist` prefix transposes), SVHN `.mat` files, CIFAR batches
/// (also in `cifar-10-batches-bin/` / `cifar-100-binary/`), otherwise an image folder read as
/// [`DEFAULT_FOLDER_SIZE`]² RGB (labelled by subfolder when it holds only subfolders, two or more).
/// A folder holding a registry data set (named like it, or matching its checksums) is loaded with
/// its manifest. A missing split is empty.
pub fn load_path(path: &Path) -> Result<Dataset, DataError> {
    match resolve_path(path)? {
        PathSource::Known { manifest, dir, .. } => load_from_dir(&manifest, &dir),
        PathSource::Detected(plan) => {
            let decoded = plan.decode()?;
            plan.dataset(path_label(path), decoded)
        }
    }
}
