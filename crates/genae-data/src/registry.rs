//! The data-set registry: the manifests in `datasets/<name>.toml` (embedded in the library),
//! finding a data set's files, decoding them with [`crate::formats`], checking them against
//! their manifest, and reporting on them (`genae dataset list` / `genae dataset info`).
//!
//! # Where a data set is looked for
//!
//! In this order (see [`SearchRoots`]):
//!
//! 1. the folder given explicitly (the config's `data.dir`): `<dir>/<name>/`, then `<dir>` itself;
//! 2. [`ENV_VAR`] (`GENAE_DATA_DIR`): `<dir>/<name>/`, then `<dir>` itself;
//! 3. [`SYSTEM_ROOT`]`/<name>` (`/usr/share/datasets/<name>`, where Debian's
//!    `dataset-fashion-mnist` installs Fashion-MNIST);
//! 4. the per-user cache, `dirs::cache_dir()/genae/datasets/<name>`.
//!
//! A folder holds the data set when every file of every split its manifest lists is there:
//! directly, or in the manifest's `subdir`; for IDX files also with or without `.gz`.
//!
//! ```
//! let names: Vec<String> = genae_data::registry::manifests()
//!     .unwrap()
//!     .into_iter()
//!     .map(|m| m.name)
//!     .collect();
//! assert!(names.contains(&"fashion-mnist".to_string()));
//!
//! let m = genae_data::registry::manifest("fashion-mnist").unwrap();
//! assert_eq!(m.image_shape, [1, 28, 28]);
//! assert_eq!(m.train.count, Some(60_000));
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::formats::cifar::{load_cifar, CifarVariant};
use crate::formats::idx::{load_idx_pair, IdxImageOptions};
use crate::formats::image_folder::{load_image_folder, Channels, ImageFolderOptions, OnUnreadable};
use crate::formats::svhn::load_svhn_mat;
use crate::{DataError, Dataset, ImageSet};

/// The environment variable naming a folder of data sets (looked in after the explicit folder).
pub const ENV_VAR: &str = "GENAE_DATA_DIR";

/// The system-wide folder of data sets (Debian's `dataset-*` packages install there).
pub const SYSTEM_ROOT: &str = "/usr/share/datasets";

/// Every manifest of `datasets/`, embedded: `(file name, TOML text)`, sorted by file name.
///
/// A test checks that every `datasets/*.toml` file is listed here with the same text.
pub const EMBEDDED_MANIFESTS: &[(&str, &str)] = &[
    ("celeba.toml", include_str!("../../../datasets/celeba.toml")),
    (
        "cifar10.toml",
        include_str!("../../../datasets/cifar10.toml"),
    ),
    (
        "cifar100.toml",
        include_str!("../../../datasets/cifar100.toml"),
    ),
    (
        "emnist-balanced.toml",
        include_str!("../../../datasets/emnist-balanced.toml"),
    ),
    (
        "emnist-letters.toml",
        include_str!("../../../datasets/emnist-letters.toml"),
    ),
    (
        "fashion-mnist.toml",
        include_str!("../../../datasets/fashion-mnist.toml"),
    ),
    ("kmnist.toml", include_str!("../../../datasets/kmnist.toml")),
    ("mnist.toml", include_str!("../../../datasets/mnist.toml")),
    ("svhn.toml", include_str!("../../../datasets/svhn.toml")),
];

/// Image folders found by [`load_path`] are read at this side (the CelebA convention), in RGB.
pub const DEFAULT_FOLDER_SIZE: u32 = 64;

// ---------------------------------------------------------------------------------------------
// Manifest schema
// ---------------------------------------------------------------------------------------------

/// How a data set's files are encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// IDX image and label files, raw or gzipped (MNIST, Fashion-MNIST, KMNIST, EMNIST).
    Idx,
    /// CIFAR-10 binary batches.
    Cifar10,
    /// CIFAR-100 binary files.
    Cifar100,
    /// SVHN `*_32x32.mat` files.
    SvhnMat,
    /// A folder of PNG/JPEG images (CelebA).
    ImageFolder,
}

impl Format {
    /// The name used in manifests: `idx`, `cifar10`, `cifar100`, `svhn_mat`, `image_folder`.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Idx => "idx",
            Format::Cifar10 => "cifar10",
            Format::Cifar100 => "cifar100",
            Format::SvhnMat => "svhn_mat",
            Format::ImageFolder => "image_folder",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which CIFAR-100 label to keep.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cifar100Labels {
    /// The 100 fine classes (the default).
    #[default]
    Fine,
    /// The 20 superclasses.
    Coarse,
}

/// Format-specific decoding options (the `[options]` table); each is allowed only with its format.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecodeOptions {
    /// `idx`: the images are stored transposed (EMNIST); store them upright. Default `false`.
    pub transpose: Option<bool>,
    /// `cifar100`: `fine` (default) or `coarse` labels.
    pub cifar100_labels: Option<Cifar100Labels>,
    /// `image_folder`: `fail` (default) or `skip` on an unreadable image.
    pub on_unreadable: Option<OnUnreadable>,
    /// `image_folder`: label images by their subfolder. Default `false` (all labels 0).
    pub labels_from_subfolders: Option<bool>,
}

/// One file of a split, with what is known about it.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSpec {
    /// The file name as distributed, relative to the data set's folder (or its `subdir`).
    pub file: String,
    /// Size in bytes of the file as named.
    pub size: Option<u64>,
    /// SHA-256 (64 lowercase hex digits) of the file as named.
    pub sha256: Option<String>,
    /// For a `.gz` file: size of the decompressed content.
    pub unpacked_size: Option<u64>,
    /// For a `.gz` file: SHA-256 of the decompressed content (also checks the `.gz`-less file, and
    /// recompressed copies).
    pub unpacked_sha256: Option<String>,
}

/// One split (`[train]` or `[test]`): its expected size and its files, by format.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SplitSpec {
    /// Expected number of images.
    pub count: Option<usize>,
    /// `idx`: the images file.
    pub images: Option<FileSpec>,
    /// `idx`: the labels file.
    pub labels: Option<FileSpec>,
    /// `cifar10` / `cifar100`: the batch files, concatenated in this order.
    #[serde(default)]
    pub batches: Vec<FileSpec>,
    /// `svhn_mat`: the `.mat` file.
    pub mat: Option<FileSpec>,
    /// `image_folder`: the folder of images.
    pub folder: Option<String>,
}

impl SplitSpec {
    /// The split's files, in decoding order (empty for an image folder).
    pub fn files(&self) -> Vec<&FileSpec> {
        self.images
            .iter()
            .chain(self.labels.iter())
            .chain(self.batches.iter())
            .chain(self.mat.iter())
            .collect()
    }
}

/// A data set's manifest, `datasets/<name>.toml`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Short name, also the folder name looked for (`fashion-mnist`).
    pub name: String,
    /// One line about the data set.
    pub description: String,
    /// How its files are encoded.
    pub format: Format,
    /// `[C, H, W]` of one decoded image.
    pub image_shape: [usize; 3],
    /// Name of each label value, indexed by label (empty for unlabelled data).
    #[serde(default)]
    pub classes: Vec<String>,
    /// Terms of use.
    pub licence: String,
    /// Where the data set is described.
    pub homepage: String,
    /// What to download and where to put it.
    pub how_to_obtain: String,
    /// A subfolder the files may be in instead (the folder an archive extracts to).
    pub subdir: Option<String>,
    /// Format-specific decoding options.
    #[serde(default)]
    pub options: DecodeOptions,
    /// The training split.
    pub train: SplitSpec,
    /// The test split; absent when the distribution has none (the data layer then carves one
    /// out of train, and [`load`] returns an empty test set).
    pub test: Option<SplitSpec>,
    /// Where the manifest was read from (not a TOML field).
    #[serde(skip)]
    pub source: PathBuf,
}

fn manifest_error(source: &Path, field: &str, problem: impl fmt::Display) -> DataError {
    DataError::bad_file(source, format!("field `{field}`: {problem}"))
}

fn is_sha256(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

impl Manifest {
    /// Parses and checks a manifest; `source` names it in errors (which also name the field).
    pub fn from_toml_str(text: &str, source: &Path) -> Result<Manifest, DataError> {
        let deserializer = toml::Deserializer::new(text);
        let mut manifest: Manifest =
            serde_path_to_error::deserialize(deserializer).map_err(|e| {
                let path = e.path().to_string();
                let inner = e.into_inner();
                let at = inner
                    .span()
                    .map(|s| format!(" (line {})", line_of(text, s.start)))
                    .unwrap_or_default();
                let mut message = inner
                    .message()
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .collect::<Vec<_>>()
                    .join("; ");
                if message.is_empty() {
                    message = "TOML syntax error".to_string();
                }
                if path.is_empty() || path == "." {
                    DataError::bad_file(source, format!("{message}{at}"))
                } else {
                    manifest_error(source, &path, format!("{message}{at}"))
                }
            })?;
        manifest.source = source.to_path_buf();
        manifest.validate()?;
        Ok(manifest)
    }

    fn validate(&self) -> Result<(), DataError> {
        let src = self.source.as_path();
        let err = |field: &str, problem: String| Err(manifest_error(src, field, problem));
        let valid_name = !self.name.is_empty()
            && self
                .name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if !valid_name {
            return err(
                "name",
                format!(
                    "must be non-empty lowercase letters, digits, `-` or `_`, got `{}`",
                    self.name
                ),
            );
        }
        for (field, value) in [
            ("description", &self.description),
            ("licence", &self.licence),
            ("homepage", &self.homepage),
            ("how_to_obtain", &self.how_to_obtain),
        ] {
            if value.trim().is_empty() {
                return err(field, "must not be empty".into());
            }
        }
        if self.image_shape.contains(&0) {
            return err(
                "image_shape",
                format!("has a zero dimension: {:?}", self.image_shape),
            );
        }
        if let Some(subdir) = &self.subdir {
            if !is_relative_name(subdir) {
                return err(
                    "subdir",
                    format!("must be a relative path without `..`, got `{subdir}`"),
                );
            }
        }
        let [c, h, w] = self.image_shape;
        let shape_ok = match self.format {
            Format::Idx => c == 1,
            Format::Cifar10 | Format::Cifar100 | Format::SvhnMat => self.image_shape == [3, 32, 32],
            Format::ImageFolder => (c == 1 || c == 3) && h == w && u32::try_from(h).is_ok(),
        };
        if !shape_ok {
            let want = match self.format {
                Format::Idx => "[1, H, W]",
                Format::ImageFolder => "[1 or 3, S, S] (square)",
                _ => "[3, 32, 32]",
            };
            return err(
                "image_shape",
                format!(
                    "format `{}` decodes to {want}, got {:?}",
                    self.format, self.image_shape
                ),
            );
        }
        let o = &self.options;
        for (field, set, format) in [
            ("options.transpose", o.transpose.is_some(), Format::Idx),
            (
                "options.cifar100_labels",
                o.cifar100_labels.is_some(),
                Format::Cifar100,
            ),
            (
                "options.on_unreadable",
                o.on_unreadable.is_some(),
                Format::ImageFolder,
            ),
            (
                "options.labels_from_subfolders",
                o.labels_from_subfolders.is_some(),
                Format::ImageFolder,
            ),
        ] {
            if set && self.format != format {
                return err(
                    field,
                    format!("applies to format `{format}` only, not `{}`", self.format),
                );
            }
        }
        for (name, split) in self.splits() {
            self.validate_split(name, split)?;
        }
        Ok(())
    }

    fn validate_split(&self, name: &str, split: &SplitSpec) -> Result<(), DataError> {
        let src = self.source.as_path();
        let used: [(&str, bool); 5] = [
            ("images", split.images.is_some()),
            ("labels", split.labels.is_some()),
            ("batches", !split.batches.is_empty()),
            ("mat", split.mat.is_some()),
            ("folder", split.folder.is_some()),
        ];
        let needed: &[&str] = match self.format {
            Format::Idx => &["images", "labels"],
            Format::Cifar10 | Format::Cifar100 => &["batches"],
            Format::SvhnMat => &["mat"],
            Format::ImageFolder => &["folder"],
        };
        for (field, present) in used {
            let want = needed.contains(&field);
            if want && !present {
                return Err(manifest_error(
                    src,
                    &format!("{name}.{field}"),
                    format!("is required for format `{}`", self.format),
                ));
            }
            if !want && present {
                return Err(manifest_error(
                    src,
                    &format!("{name}.{field}"),
                    format!(
                        "does not apply to format `{}` (it uses {})",
                        self.format,
                        needed
                            .iter()
                            .map(|f| format!("`{f}`"))
                            .collect::<Vec<_>>()
                            .join(" and ")
                    ),
                ));
            }
        }
        if let Some(folder) = &split.folder {
            if !is_relative_name(folder) {
                return Err(manifest_error(
                    src,
                    &format!("{name}.folder"),
                    format!("must be a relative path without `..`, got `{folder}`"),
                ));
            }
        }
        let mut files: Vec<(String, &FileSpec)> = Vec::new();
        for (field, spec) in [
            ("images", &split.images),
            ("labels", &split.labels),
            ("mat", &split.mat),
        ] {
            if let Some(spec) = spec {
                files.push((format!("{name}.{field}"), spec));
            }
        }
        for (i, spec) in split.batches.iter().enumerate() {
            files.push((format!("{name}.batches[{i}]"), spec));
        }
        for (field, spec) in files {
            if !is_relative_name(&spec.file) {
                return Err(manifest_error(
                    src,
                    &format!("{field}.file"),
                    format!("must be a relative path without `..`, got `{}`", spec.file),
                ));
            }
            for (key, hash) in [
                ("sha256", &spec.sha256),
                ("unpacked_sha256", &spec.unpacked_sha256),
            ] {
                if let Some(hash) = hash {
                    if !is_sha256(hash) {
                        return Err(manifest_error(
                            src,
                            &format!("{field}.{key}"),
                            format!("must be 64 lowercase hex digits, got `{hash}`"),
                        ));
                    }
                }
            }
            let unpacked = spec.unpacked_size.is_some() || spec.unpacked_sha256.is_some();
            if unpacked && !spec.file.ends_with(".gz") {
                return Err(manifest_error(
                    src,
                    &format!("{field}.unpacked_size"),
                    format!("applies to `.gz` files only, not `{}`", spec.file),
                ));
            }
        }
        Ok(())
    }

    /// The splits the manifest lists: `("train", …)` and, when present, `("test", …)`.
    pub fn splits(&self) -> Vec<(&'static str, &SplitSpec)> {
        let mut splits = vec![("train", &self.train)];
        if let Some(test) = &self.test {
            splits.push(("test", test));
        }
        splits
    }

    /// Every file and folder name the manifest requires, in split order.
    pub fn required_files(&self) -> Vec<&str> {
        let mut names = Vec::new();
        for (_, split) in self.splits() {
            names.extend(split.files().into_iter().map(|f| f.file.as_str()));
            names.extend(split.folder.as_deref());
        }
        names
    }

    /// The folders a file or folder named `name` may be in: `dir`, then `dir/<subdir>`.
    fn bases(&self, dir: &Path) -> Vec<PathBuf> {
        let mut bases = vec![dir.to_path_buf()];
        if let Some(subdir) = &self.subdir {
            bases.push(dir.join(subdir));
        }
        bases
    }

    /// Where the file `name` is under `dir`: as named or (IDX only) with `.gz` toggled, directly
    /// in `dir` or in its `subdir`.
    pub fn find_file(&self, dir: &Path, name: &str) -> Option<PathBuf> {
        let mut names = vec![name.to_string()];
        if self.format == Format::Idx {
            names.push(match name.strip_suffix(".gz") {
                Some(stem) => stem.to_string(),
                None => format!("{name}.gz"),
            });
        }
        self.bases(dir)
            .into_iter()
            .flat_map(|base| names.iter().map(move |n| base.join(n)))
            .find(|p| p.is_file())
    }

    /// Where the image folder `name` is under `dir` (directly or in `subdir`).
    pub fn find_folder(&self, dir: &Path, name: &str) -> Option<PathBuf> {
        self.bases(dir)
            .into_iter()
            .map(|base| base.join(name))
            .find(|p| p.is_dir())
    }

    /// Whether `dir` holds every file and folder of every split.
    pub fn is_present_in(&self, dir: &Path) -> bool {
        dir.is_dir() && self.missing_in(dir).is_empty()
    }

    fn missing_in(&self, dir: &Path) -> Vec<String> {
        let mut missing = Vec::new();
        for (_, split) in self.splits() {
            for spec in split.files() {
                if self.find_file(dir, &spec.file).is_none() {
                    missing.push(spec.file.clone());
                }
            }
            if let Some(folder) = &split.folder {
                if self.find_folder(dir, folder).is_none() {
                    missing.push(format!("{folder}/"));
                }
            }
        }
        missing
    }

    fn how_to_obtain_long(&self) -> String {
        format!(
            "{}\nA folder holds `{}` when it has {}{}. Set `data.dir` in the config or {ENV_VAR} \
             to a folder holding `{}/` (or the files themselves).",
            self.how_to_obtain,
            self.name,
            self.required_files().join(", "),
            match &self.subdir {
                Some(s) => format!(" (directly or in `{s}/`)"),
                None => String::new(),
            },
            self.name,
        )
    }

    /// Resolves every input of every split under `dir` (a `NotFound` naming what is missing).
    fn plan(&self, dir: &Path) -> Result<Plan, DataError> {
        let missing = self.missing_in(dir);
        if !missing.is_empty() {
            return Err(DataError::NotFound {
                name: self.name.clone(),
                searched: vec![dir.to_path_buf()],
                how_to_obtain: format!(
                    "missing there: {}\n{}",
                    missing.join(", "),
                    self.how_to_obtain_long()
                ),
            });
        }
        let find = |spec: &FileSpec| {
            self.find_file(dir, &spec.file)
                .expect("presence checked above")
        };
        let mut splits = Vec::new();
        for (name, split) in self.splits() {
            let inputs = match self.format {
                Format::Idx => Inputs::Idx {
                    images: find(split.images.as_ref().expect("validated")),
                    labels: find(split.labels.as_ref().expect("validated")),
                },
                Format::Cifar10 | Format::Cifar100 => {
                    Inputs::Cifar(split.batches.iter().map(find).collect())
                }
                Format::SvhnMat => Inputs::Mat(find(split.mat.as_ref().expect("validated"))),
                Format::ImageFolder => Inputs::Folder(
                    self.find_folder(dir, split.folder.as_deref().expect("validated"))
                        .expect("presence checked above"),
                ),
            };
            splits.push(PlannedSplit {
                name,
                inputs,
                count: split.count,
            });
        }
        let [c, _, w] = self.image_shape;
        Ok(Plan {
            format: self.format,
            location: dir.to_path_buf(),
            transpose: self.options.transpose.unwrap_or(false),
            cifar100_labels: self.options.cifar100_labels.unwrap_or_default(),
            folder: ImageFolderOptions {
                size: u32::try_from(w).unwrap_or(DEFAULT_FOLDER_SIZE),
                channels: if c == 1 {
                    Channels::Gray
                } else {
                    Channels::Rgb
                },
                labels_from_subfolders: self.options.labels_from_subfolders.unwrap_or(false),
                on_unreadable: self.options.on_unreadable.unwrap_or_default(),
            },
            expected_shape: Some(self.image_shape),
            classes: self.classes.clone(),
            source: Some(self.source.clone()),
            splits,
        })
    }
}

fn is_relative_name(s: &str) -> bool {
    let p = Path::new(s);
    !s.is_empty()
        && p.is_relative()
        && p.components()
            .all(|c| matches!(c, std::path::Component::Normal(_)))
}

/// Every embedded manifest, parsed, sorted by name.
pub fn manifests() -> Result<Vec<Manifest>, DataError> {
    let mut all = EMBEDDED_MANIFESTS
        .iter()
        .map(|(file, text)| parse_embedded(file, text))
        .collect::<Result<Vec<_>, _>>()?;
    all.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(all)
}

fn parse_embedded(file: &str, text: &str) -> Result<Manifest, DataError> {
    let source = Path::new("datasets").join(file);
    let manifest = Manifest::from_toml_str(text, &source)?;
    let stem = file.strip_suffix(".toml").unwrap_or(file);
    if manifest.name != stem {
        return Err(manifest_error(
            &source,
            "name",
            format!("must match the file name `{stem}`, got `{}`", manifest.name),
        ));
    }
    Ok(manifest)
}

/// The manifest of data set `name` ([`DataError::UnknownDataset`] lists the known names).
pub fn manifest(name: &str) -> Result<Manifest, DataError> {
    let all = manifests()?;
    let known = all
        .iter()
        .map(|m| m.name.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    all.iter()
        .find(|m| m.name == name)
        .cloned()
        .ok_or_else(|| DataError::UnknownDataset {
            name: name.to_string(),
            known,
        })
}

// ---------------------------------------------------------------------------------------------
// Look-up
// ---------------------------------------------------------------------------------------------

/// The roots a data set is looked for in, in order; `None` skips a root. [`SearchRoots::from_env`]
/// fills them from the machine; tests build their own.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SearchRoots {
    /// The config's `data.dir`: `<explicit>/<name>`, then `<explicit>` itself.
    pub explicit: Option<PathBuf>,
    /// [`ENV_VAR`]: `<env_dir>/<name>`, then `<env_dir>` itself.
    pub env_dir: Option<PathBuf>,
    /// [`SYSTEM_ROOT`]: `<system_root>/<name>`.
    pub system_root: Option<PathBuf>,
    /// The per-user cache ([`default_cache_root`]): `<cache_root>/<name>`.
    pub cache_root: Option<PathBuf>,
}

/// `dirs::cache_dir()/genae/datasets`, where it exists on this platform.
pub fn default_cache_root() -> Option<PathBuf> {
    dirs::cache_dir().map(|d| d.join("genae").join("datasets"))
}

impl SearchRoots {
    /// `explicit`, [`ENV_VAR`] (when set and non-empty), [`SYSTEM_ROOT`] and
    /// [`default_cache_root`].
    pub fn from_env(explicit: Option<&Path>) -> SearchRoots {
        SearchRoots {
            explicit: explicit.map(Path::to_path_buf),
            env_dir: std::env::var_os(ENV_VAR)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from),
            system_root: Some(PathBuf::from(SYSTEM_ROOT)),
            cache_root: default_cache_root(),
        }
    }

    /// Every folder looked in for data set `name`, in order, without repeats.
    pub fn candidates(&self, name: &str) -> Vec<PathBuf> {
        let mut paths = Vec::new();
        for dir in [&self.explicit, &self.env_dir].into_iter().flatten() {
            paths.push(dir.join(name));
            paths.push(dir.clone());
        }
        for root in [&self.system_root, &self.cache_root].into_iter().flatten() {
            paths.push(root.join(name));
        }
        let mut unique: Vec<PathBuf> = Vec::new();
        for p in paths {
            if !unique.contains(&p) {
                unique.push(p);
            }
        }
        unique
    }

    /// The first candidate folder holding the data set, or a [`DataError::NotFound`] listing every
    /// folder looked in and how to obtain it.
    pub fn locate(&self, manifest: &Manifest) -> Result<PathBuf, DataError> {
        let searched = self.candidates(&manifest.name);
        match searched.iter().find(|d| manifest.is_present_in(d)) {
            Some(dir) => Ok(dir.clone()),
            None => Err(DataError::NotFound {
                name: manifest.name.clone(),
                searched,
                how_to_obtain: manifest.how_to_obtain_long(),
            }),
        }
    }
}

/// Every folder looked in for data set `name` on this machine ([`SearchRoots::from_env`]).
pub fn search_paths(name: &str, explicit: Option<&Path>) -> Vec<PathBuf> {
    SearchRoots::from_env(explicit).candidates(name)
}

/// The folder holding data set `name` on this machine.
pub fn locate(name: &str, explicit: Option<&Path>) -> Result<PathBuf, DataError> {
    SearchRoots::from_env(explicit).locate(&manifest(name)?)
}

// ---------------------------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
enum Inputs {
    Idx { images: PathBuf, labels: PathBuf },
    Cifar(Vec<PathBuf>),
    Mat(PathBuf),
    Folder(PathBuf),
}

impl Inputs {
    /// The file (or folder) an error about the split's images names.
    fn primary(&self) -> PathBuf {
        match self {
            Inputs::Idx { images, .. } => images.clone(),
            Inputs::Cifar(paths) if paths.len() == 1 => paths[0].clone(),
            Inputs::Cifar(paths) => paths
                .first()
                .and_then(|p| p.parent())
                .map(Path::to_path_buf)
                .unwrap_or_default(),
            Inputs::Mat(p) | Inputs::Folder(p) => p.clone(),
        }
    }

    /// The file an error about the split's labels names.
    fn label_file(&self) -> PathBuf {
        match self {
            Inputs::Idx { labels, .. } => labels.clone(),
            _ => self.primary(),
        }
    }

    fn describe(&self) -> String {
        match self {
            Inputs::Cifar(paths) if paths.len() > 1 => format!(
                " (batches {})",
                paths
                    .iter()
                    .map(|p| file_name(p))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            _ => String::new(),
        }
    }

    fn files(&self) -> Vec<PathBuf> {
        match self {
            Inputs::Idx { images, labels } => vec![images.clone(), labels.clone()],
            Inputs::Cifar(paths) => paths.clone(),
            Inputs::Mat(p) | Inputs::Folder(p) => vec![p.clone()],
        }
    }
}

#[derive(Clone, Debug)]
struct PlannedSplit {
    name: &'static str,
    inputs: Inputs,
    count: Option<usize>,
}

/// Everything needed to decode a data set's splits.
#[derive(Clone, Debug)]
struct Plan {
    format: Format,
    location: PathBuf,
    transpose: bool,
    cifar100_labels: Cifar100Labels,
    folder: ImageFolderOptions,
    expected_shape: Option<[usize; 3]>,
    classes: Vec<String>,
    /// The manifest the expectations come from (none for a detected path).
    source: Option<PathBuf>,
    splits: Vec<PlannedSplit>,
}

struct DecodedSplit {
    name: &'static str,
    set: ImageSet,
    skipped: Vec<(PathBuf, String)>,
    folder_classes: Vec<String>,
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| p.display().to_string())
}

fn shape_str(s: [usize; 3]) -> String {
    format!("{}×{}×{}", s[0], s[1], s[2])
}

impl Plan {
    fn decode(&self) -> Result<Vec<DecodedSplit>, DataError> {
        let manifest = self
            .source
            .as_ref()
            .map(|s| format!("manifest `{}`", s.display()))
            .unwrap_or_default();
        let mut out = Vec::new();
        for split in &self.splits {
            let mut skipped = Vec::new();
            let mut folder_classes = Vec::new();
            let set = match &split.inputs {
                Inputs::Idx { images, labels } => load_idx_pair(
                    images,
                    labels,
                    IdxImageOptions {
                        transpose: self.transpose,
                    },
                )?,
                Inputs::Cifar(paths) => {
                    let variant = match (self.format, self.cifar100_labels) {
                        (Format::Cifar10, _) => CifarVariant::Cifar10,
                        (_, Cifar100Labels::Fine) => CifarVariant::Cifar100Fine,
                        (_, Cifar100Labels::Coarse) => CifarVariant::Cifar100Coarse,
                    };
                    load_cifar(paths, variant)?
                }
                Inputs::Mat(path) => load_svhn_mat(path)?,
                Inputs::Folder(dir) => {
                    let folder = load_image_folder(dir, &self.folder)?;
                    skipped = folder.skipped;
                    folder_classes = folder.class_names;
                    folder.images
                }
            };
            if let Some(expected) = self.expected_shape {
                if set.image_shape != expected {
                    return Err(DataError::bad_file(
                        split.inputs.primary(),
                        format!(
                            "{} images are {} but {manifest} expects {}",
                            split.name,
                            shape_str(set.image_shape),
                            shape_str(expected)
                        ),
                    ));
                }
            }
            if let Some(expected) = split.count {
                let actual = set.len() + skipped.len();
                if actual != expected {
                    return Err(DataError::bad_file(
                        split.inputs.primary(),
                        format!(
                            "the {} split{} holds {actual} images but {manifest} expects {expected}",
                            split.name,
                            split.inputs.describe()
                        ),
                    ));
                }
            }
            if !self.classes.is_empty() {
                if let Some(&max) = set.labels.iter().max() {
                    if max as usize >= self.classes.len() {
                        return Err(DataError::bad_file(
                            split.inputs.label_file(),
                            format!(
                                "label {max} is out of range for the {} classes of {manifest}",
                                self.classes.len()
                            ),
                        ));
                    }
                }
            }
            out.push(DecodedSplit {
                name: split.name,
                set,
                skipped,
                folder_classes,
            });
        }
        Ok(out)
    }

    fn class_names(&self, decoded: &[DecodedSplit]) -> Vec<String> {
        if !self.classes.is_empty() {
            return self.classes.clone();
        }
        decoded
            .iter()
            .find(|d| !d.folder_classes.is_empty())
            .map(|d| d.folder_classes.clone())
            .unwrap_or_default()
    }

    fn dataset(&self, name: String, decoded: Vec<DecodedSplit>) -> Result<Dataset, DataError> {
        let class_names = self.class_names(&decoded);
        let shape = decoded
            .iter()
            .map(|d| d.set.image_shape)
            .next()
            .or(self.expected_shape)
            .unwrap_or([1, 1, 1]);
        let mut train = None;
        let mut test = None;
        for d in decoded {
            match d.name {
                "train" => train = Some(d.set),
                _ => test = Some(d.set),
            }
        }
        let empty = || ImageSet::new(Vec::new(), Vec::new(), shape);
        Ok(Dataset {
            name,
            train: match train {
                Some(t) => t,
                None => empty()?,
            },
            test: match test {
                Some(t) => t,
                None => empty()?,
            },
            class_names,
        })
    }
}

/// Decodes data set `manifest` from `dir` (which must hold its files), checking each split's
/// count, image shape and labels against the manifest. A manifest without a `[test]` split gives
/// an empty test set, for the data layer to carve one out of train.
pub fn load_from_dir(manifest: &Manifest, dir: &Path) -> Result<Dataset, DataError> {
    let plan = manifest.plan(dir)?;
    let decoded = plan.decode()?;
    plan.dataset(manifest.name.clone(), decoded)
}

/// Finds data set `name` ([`locate`]) and decodes it ([`load_from_dir`]).
pub fn load(name: &str, explicit_dir: Option<&Path>) -> Result<Dataset, DataError> {
    let manifest = manifest(name)?;
    let dir = SearchRoots::from_env(explicit_dir).locate(&manifest)?;
    load_from_dir(&manifest, &dir)
}

/// Loads a data set `manifest` from the first of `roots` that holds it.
pub fn load_with(manifest: &Manifest, roots: &SearchRoots) -> Result<Dataset, DataError> {
    load_from_dir(manifest, &roots.locate(manifest)?)
}

// ---------------------------------------------------------------------------------------------
// A path given directly
// ---------------------------------------------------------------------------------------------

enum PathSource {
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

fn detect_dir(dir: &Path) -> Result<Plan, DataError> {
    let names = list_files(dir)?;
    let idx: Vec<&String> = names
        .iter()
        .filter(|n| strip_gz(n).ends_with("images-idx3-ubyte"))
        .collect();
    if !idx.is_empty() {
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

fn resolve_path(path: &Path) -> Result<PathSource, DataError> {
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
        Err(DataError::io(
            path,
            &io::Error::new(io::ErrorKind::NotFound, "no such file or folder"),
        ))
    }
}

fn path_label(path: &Path) -> String {
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

// ---------------------------------------------------------------------------------------------
// Checksums
// ---------------------------------------------------------------------------------------------

/// The outcome of checking one file against its manifest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CheckStatus {
    /// Every size and SHA-256 listed matches.
    Ok,
    /// A listed size or SHA-256 differs (or the file cannot be read).
    Mismatch,
    /// The manifest lists neither size nor SHA-256 for the file as found.
    NotListed,
    /// The file is not there.
    Missing,
}

impl fmt::Display for CheckStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CheckStatus::Ok => "ok",
            CheckStatus::Mismatch => "mismatch",
            CheckStatus::NotListed => "not listed",
            CheckStatus::Missing => "missing",
        })
    }
}

/// One file checked against its manifest by [`verify`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileCheck {
    /// The file found (or, when missing, where it was expected).
    pub file: PathBuf,
    /// Size listed in the manifest.
    pub expected_size: Option<u64>,
    /// Size measured (`None` when missing or unreadable, and for folders).
    pub actual_size: Option<u64>,
    /// SHA-256 listed in the manifest.
    pub expected_sha256: Option<String>,
    /// SHA-256 measured.
    pub actual_sha256: Option<String>,
    /// The values compared are of the decompressed content (a recompressed `.gz`, or the
    /// `.gz`-less form of a file listed as `.gz`, or the reverse).
    pub unpacked: bool,
    /// The outcome.
    pub status: CheckStatus,
    /// Anything else worth saying (a read error, "folder").
    pub note: Option<String>,
}

/// Size and SHA-256 (lowercase hex) of everything `reader` yields, streamed through a buffer.
fn hash_reader(mut reader: impl Read) -> io::Result<(u64, String)> {
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 16];
    let mut total = 0u64;
    loop {
        match reader.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => {
                hasher.update(&buffer[..n]);
                total += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok((total, format!("{:x}", hasher.finalize())))
}

/// Size in bytes and SHA-256 (lowercase hex) of a file, read through a fixed buffer.
pub fn sha256_file(path: &Path) -> Result<(u64, String), DataError> {
    let file = File::open(path).map_err(|e| DataError::io(path, &e))?;
    hash_reader(file).map_err(|e| DataError::io(path, &e))
}

fn sha256_gz_content(path: &Path) -> Result<(u64, String), DataError> {
    let file = File::open(path).map_err(|e| DataError::io(path, &e))?;
    hash_reader(flate2::read::MultiGzDecoder::new(BufReader::new(file)))
        .map_err(|e| DataError::io(path, &e))
}

type Expected<'a> = (Option<u64>, Option<&'a String>);

fn listed(e: &Expected<'_>) -> bool {
    e.0.is_some() || e.1.is_some()
}

fn matches(e: &Expected<'_>, size: u64, sha: &str) -> bool {
    e.0.is_none_or(|s| s == size) && e.1.is_none_or(|h| h == sha)
}

fn check_file(manifest: &Manifest, dir: &Path, spec: &FileSpec) -> FileCheck {
    let missing = FileCheck {
        file: dir.join(&spec.file),
        expected_size: spec.size,
        actual_size: None,
        expected_sha256: spec.sha256.clone(),
        actual_sha256: None,
        unpacked: false,
        status: CheckStatus::Missing,
        note: None,
    };
    let Some(path) = manifest.find_file(dir, &spec.file) else {
        return missing;
    };
    let named_gz = spec.file.ends_with(".gz");
    let found_gz = file_name(&path).ends_with(".gz");
    let packed: Expected = (spec.size, spec.sha256.as_ref());
    let content: Expected = (spec.unpacked_size, spec.unpacked_sha256.as_ref());
    // What the bytes as found should be, and what their decompressed content should be.
    let (as_found, inside): (Expected, Expected) = match (named_gz, found_gz) {
        (true, true) => (packed, content),
        (false, false) => (packed, (None, None)),
        (true, false) => (content, (None, None)),
        (false, true) => ((None, None), packed),
    };
    let report = |e: &Expected, size, sha, unpacked, status, note| FileCheck {
        file: path.clone(),
        expected_size: e.0,
        actual_size: size,
        expected_sha256: e.1.cloned(),
        actual_sha256: sha,
        unpacked,
        status,
        note,
    };
    let (size, sha) = match sha256_file(&path) {
        Ok(v) => v,
        Err(e) => {
            return report(
                &as_found,
                None,
                None,
                false,
                CheckStatus::Mismatch,
                Some(e.to_string()),
            )
        }
    };
    if listed(&as_found) && matches(&as_found, size, &sha) {
        return report(
            &as_found,
            Some(size),
            Some(sha),
            false,
            CheckStatus::Ok,
            None,
        );
    }
    if found_gz && listed(&inside) {
        match sha256_gz_content(&path) {
            Ok((csize, csha)) if matches(&inside, csize, &csha) => {
                return report(
                    &inside,
                    Some(csize),
                    Some(csha),
                    true,
                    CheckStatus::Ok,
                    listed(&as_found)
                        .then(|| "recompressed: the decompressed content matches".into()),
                );
            }
            Ok((csize, csha)) if !listed(&as_found) => {
                return report(
                    &inside,
                    Some(csize),
                    Some(csha),
                    true,
                    CheckStatus::Mismatch,
                    None,
                );
            }
            Ok(_) => {}
            Err(e) => {
                return report(
                    &as_found,
                    Some(size),
                    Some(sha),
                    false,
                    CheckStatus::Mismatch,
                    Some(format!("cannot decompress: {e}")),
                )
            }
        }
    }
    let status = if listed(&as_found) {
        CheckStatus::Mismatch
    } else {
        CheckStatus::NotListed
    };
    report(&as_found, Some(size), Some(sha), false, status, None)
}

/// Checks every file of `manifest` in `dir` against the sizes and SHA-256 it lists (streamed,
/// never read whole into memory). A `.gz` file whose bytes differ (or are not listed) is checked
/// by its decompressed content when the manifest lists that. Image folders are reported as
/// `NotListed` (or `Missing`), without hashing.
pub fn verify(manifest: &Manifest, dir: &Path) -> Vec<FileCheck> {
    let mut checks = Vec::new();
    for (_, split) in manifest.splits() {
        for spec in split.files() {
            checks.push(check_file(manifest, dir, spec));
        }
        if let Some(folder) = &split.folder {
            let found = manifest.find_folder(dir, folder);
            checks.push(FileCheck {
                file: found.clone().unwrap_or_else(|| dir.join(folder)),
                expected_size: None,
                actual_size: None,
                expected_sha256: None,
                actual_sha256: None,
                unpacked: false,
                status: if found.is_some() {
                    CheckStatus::NotListed
                } else {
                    CheckStatus::Missing
                },
                note: Some("folder".into()),
            });
        }
    }
    checks
}

// ---------------------------------------------------------------------------------------------
// Reports
// ---------------------------------------------------------------------------------------------

/// Statistics of one decoded split.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SplitInfo {
    /// `train` or `test`.
    pub name: String,
    /// Number of images.
    pub count: usize,
    /// `[C, H, W]`.
    pub image_shape: [usize; 3],
    /// Smallest pixel value (0 for an empty split).
    pub pixel_min: u8,
    /// Largest pixel value (0 for an empty split).
    pub pixel_max: u8,
    /// `(label, number of images)`, by increasing label, labels with no image left out.
    pub label_histogram: Vec<(u32, usize)>,
}

impl SplitInfo {
    /// Counts, pixel range and label histogram of `set`.
    pub fn of(name: &str, set: &ImageSet) -> SplitInfo {
        let (mut lo, mut hi) = (u8::MAX, u8::MIN);
        for &p in &set.pixels {
            lo = lo.min(p);
            hi = hi.max(p);
        }
        if set.pixels.is_empty() {
            (lo, hi) = (0, 0);
        }
        let mut histogram: BTreeMap<u32, usize> = BTreeMap::new();
        for &l in &set.labels {
            *histogram.entry(l).or_default() += 1;
        }
        SplitInfo {
            name: name.to_string(),
            count: set.len(),
            image_shape: set.image_shape,
            pixel_min: lo,
            pixel_max: hi,
            label_histogram: histogram.into_iter().collect(),
        }
    }
}

/// What `genae dataset info` reports; its `Display` is the human-readable report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DatasetInfo {
    /// The registry name, or the file or folder name of a path.
    pub name: String,
    /// The manifest's description (empty for a detected path).
    pub description: String,
    /// The format decoded.
    pub format: Format,
    /// The folder (or file) read.
    pub location: PathBuf,
    /// Name of each label value (may be empty).
    pub class_names: Vec<String>,
    /// The splits decoded, train first.
    pub splits: Vec<SplitInfo>,
    /// Each file against the manifest (for a detected path: sizes and SHA-256, `NotListed`).
    pub checksums: Vec<FileCheck>,
    /// Remarks: a split not distributed, files skipped, a guessed format.
    pub notes: Vec<String>,
}

fn decoded_infos(decoded: &[DecodedSplit], notes: &mut Vec<String>) -> Vec<SplitInfo> {
    decoded
        .iter()
        .map(|d| {
            for (path, why) in &d.skipped {
                notes.push(format!("{}: skipped {}: {why}", d.name, path.display()));
            }
            SplitInfo::of(d.name, &d.set)
        })
        .collect()
}

/// Decodes data set `manifest` from `dir` and reports on it, checksums included.
pub fn info_from_dir(manifest: &Manifest, dir: &Path) -> Result<DatasetInfo, DataError> {
    info_known(manifest, dir, None)
}

fn info_known(
    manifest: &Manifest,
    dir: &Path,
    checks: Option<Vec<FileCheck>>,
) -> Result<DatasetInfo, DataError> {
    let plan = manifest.plan(dir)?;
    let decoded = plan.decode()?;
    let mut notes = Vec::new();
    let splits = decoded_infos(&decoded, &mut notes);
    if manifest.test.is_none() {
        notes.push(
            "no test split is distributed: the data layer carves one out of train".to_string(),
        );
    }
    Ok(DatasetInfo {
        name: manifest.name.clone(),
        description: manifest.description.clone(),
        format: manifest.format,
        location: dir.to_path_buf(),
        class_names: plan.class_names(&decoded),
        splits,
        checksums: checks.unwrap_or_else(|| verify(manifest, dir)),
        notes,
    })
}

/// Reports on a folder or file given directly (see [`load_path`] for how it is read).
pub fn info_path(path: &Path) -> Result<DatasetInfo, DataError> {
    let plan = match resolve_path(path)? {
        PathSource::Known {
            manifest,
            dir,
            checks,
        } => return info_known(&manifest, &dir, checks),
        PathSource::Detected(plan) => plan,
    };
    let decoded = plan.decode()?;
    let mut notes = vec![format!(
        "format detected from the file names{}; no manifest to check against",
        if plan.format == Format::ImageFolder {
            format!(
                " (read as {s}×{s} RGB centre crops{})",
                if plan.folder.labels_from_subfolders {
                    ", labelled by subfolder"
                } else {
                    ""
                },
                s = plan.folder.size
            )
        } else {
            String::new()
        }
    )];
    let splits = decoded_infos(&decoded, &mut notes);
    let mut checksums = Vec::new();
    if plan.format != Format::ImageFolder {
        for split in &plan.splits {
            for file in split.inputs.files() {
                let (size, sha) = match sha256_file(&file) {
                    Ok((s, h)) => (Some(s), Some(h)),
                    Err(_) => (None, None),
                };
                checksums.push(FileCheck {
                    file,
                    expected_size: None,
                    actual_size: size,
                    expected_sha256: None,
                    actual_sha256: sha,
                    unpacked: false,
                    status: CheckStatus::NotListed,
                    note: None,
                });
            }
        }
    }
    Ok(DatasetInfo {
        name: path_label(path),
        description: String::new(),
        format: plan.format,
        location: plan.location.clone(),
        class_names: plan.class_names(&decoded),
        splits,
        checksums,
        notes,
    })
}

/// [`info`] with the given roots: a registry name is looked up in `roots`; anything else is
/// taken as a path ([`info_path`]).
pub fn info_with(name_or_path: &str, roots: &SearchRoots) -> Result<DatasetInfo, DataError> {
    match manifest(name_or_path) {
        Ok(m) => info_from_dir(&m, &roots.locate(&m)?),
        Err(unknown @ DataError::UnknownDataset { .. }) => {
            let path = Path::new(name_or_path);
            if path.exists() {
                info_path(path)
            } else {
                Err(unknown)
            }
        }
        Err(e) => Err(e),
    }
}

/// Reports on a registry data set (found as [`locate`] does) or on a folder or file given
/// directly: counts, shape, pixel range and label histogram per split, and checksums.
pub fn info(name_or_path: &str, explicit_dir: Option<&Path>) -> Result<DatasetInfo, DataError> {
    info_with(name_or_path, &SearchRoots::from_env(explicit_dir))
}

fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn short_hash(h: &str) -> &str {
    &h[..h.len().min(12)]
}

const KEY_WIDTH: usize = 11;
const LINE_WIDTH: usize = 100;

fn write_wrapped(
    f: &mut fmt::Formatter<'_>,
    first: &str,
    items: &[String],
    separator: &str,
) -> fmt::Result {
    let indent = " ".repeat(first.chars().count());
    let mut line = first.to_string();
    let mut empty = true;
    for item in items {
        if !empty && line.chars().count() + separator.len() + item.chars().count() > LINE_WIDTH {
            writeln!(f, "{}", line.trim_end())?;
            line = indent.clone();
            empty = true;
        }
        if !empty {
            line.push_str(separator);
        }
        line.push_str(item);
        empty = false;
    }
    writeln!(f, "{}", line.trim_end())
}

impl FileCheck {
    fn details(&self) -> String {
        let mut parts = Vec::new();
        match self.status {
            CheckStatus::Missing => parts.push("not found".to_string()),
            CheckStatus::Mismatch => {
                if let (Some(e), Some(a)) = (self.expected_size, self.actual_size) {
                    if e != a {
                        parts.push(format!("size {} (expected {})", thousands(a), thousands(e)));
                    }
                }
                if let (Some(e), Some(a)) = (&self.expected_sha256, &self.actual_sha256) {
                    if e != a {
                        parts.push(format!("sha256 {a} (expected {e})"));
                    }
                }
            }
            CheckStatus::Ok => {
                if let Some(s) = self.actual_size {
                    parts.push(format!("{} bytes", thousands(s)));
                }
                match (&self.expected_sha256, &self.actual_sha256) {
                    (Some(_), Some(a)) => parts.push(format!("sha256 {}…", short_hash(a))),
                    _ => parts.push("size only".to_string()),
                }
            }
            CheckStatus::NotListed => {
                if let Some(s) = self.actual_size {
                    parts.push(format!("{} bytes", thousands(s)));
                }
                if let Some(a) = &self.actual_sha256 {
                    parts.push(format!("sha256 {a}"));
                }
            }
        }
        if self.unpacked {
            parts.push("decompressed content".to_string());
        }
        if let Some(note) = &self.note {
            parts.push(note.clone());
        }
        parts.join(", ")
    }
}

impl fmt::Display for DatasetInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.description.is_empty() {
            writeln!(f, "{}", self.name)?;
        } else {
            writeln!(f, "{} — {}", self.name, self.description)?;
        }
        writeln!(f, "  {:<KEY_WIDTH$}{}", "format", self.format)?;
        writeln!(f, "  {:<KEY_WIDTH$}{}", "location", self.location.display())?;
        for split in &self.splits {
            let [c, h, w] = split.image_shape;
            writeln!(
                f,
                "  {:<KEY_WIDTH$}{} images of {c}×{h}×{w}, pixels {}–{}",
                split.name,
                thousands(split.count as u64),
                split.pixel_min,
                split.pixel_max
            )?;
            let items: Vec<String> = split
                .label_histogram
                .iter()
                .map(|&(label, n)| match self.class_names.get(label as usize) {
                    Some(class) => format!("{label} {class}: {}", thousands(n as u64)),
                    None => format!("{label}: {}", thousands(n as u64)),
                })
                .collect();
            let first = format!("  {:<KEY_WIDTH$}labels: ", "");
            write_wrapped(f, &first, &items, " · ")?;
        }
        if !self.checksums.is_empty() {
            writeln!(f, "  checksums")?;
            let width = self
                .checksums
                .iter()
                .map(|c| self.relative(&c.file).chars().count())
                .max()
                .unwrap_or(0);
            for check in &self.checksums {
                writeln!(
                    f,
                    "    {:<12}{:<width$}  {}",
                    check.status.to_string(),
                    self.relative(&check.file),
                    check.details()
                )?;
            }
        }
        for note in &self.notes {
            writeln!(f, "  note: {note}")?;
        }
        Ok(())
    }
}

impl DatasetInfo {
    fn relative(&self, file: &Path) -> String {
        file.strip_prefix(&self.location)
            .ok()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(file)
            .display()
            .to_string()
    }

    /// Whether every checksum listed matched (no `Mismatch`, no `Missing`).
    pub fn checksums_ok(&self) -> bool {
        self.checksums
            .iter()
            .all(|c| matches!(c.status, CheckStatus::Ok | CheckStatus::NotListed))
    }
}

/// One line of `genae dataset list`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListEntry {
    /// Registry name.
    pub name: String,
    /// The manifest's description (or, for a manifest that does not parse, the error).
    pub description: String,
    /// Where the data set was found, if anywhere.
    pub present_at: Option<PathBuf>,
}

impl fmt::Display for ListEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{:<16} {}", self.name, self.description)?;
        match &self.present_at {
            Some(p) => write!(f, "{:<16} found in {}", "", p.display()),
            None => write!(
                f,
                "{:<16} not found (`genae dataset info {}` says how to get it)",
                "", self.name
            ),
        }
    }
}

/// Every registry data set and where it is, with the given roots.
pub fn list_with(roots: &SearchRoots) -> Vec<ListEntry> {
    let mut entries: Vec<ListEntry> = EMBEDDED_MANIFESTS
        .iter()
        .map(|(file, text)| match parse_embedded(file, text) {
            Ok(m) => ListEntry {
                present_at: roots.locate(&m).ok(),
                name: m.name,
                description: m.description,
            },
            Err(e) => ListEntry {
                name: file.trim_end_matches(".toml").to_string(),
                description: format!("(broken manifest: {e})"),
                present_at: None,
            },
        })
        .collect();
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    entries
}

/// Every registry data set and where it is on this machine (see [`locate`]).
pub fn list(explicit_dir: Option<&Path>) -> Vec<ListEntry> {
    list_with(&SearchRoots::from_env(explicit_dir))
}
