//! The manifest schema (`datasets/<name>.toml`): its types and parsing (the checks are in
//! `validate`), and the manifests embedded in the library ([`EMBEDDED_MANIFESTS`], [`manifests`],
//! [`manifest`]).

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::validate::manifest_error;
use crate::formats::image_folder::OnUnreadable;
use crate::DataError;

/// Every manifest of `datasets/`, embedded: `(file name, TOML text)`, sorted by file name.
///
/// A test checks that every `datasets/*.toml` file is listed here with the same text.
pub const EMBEDDED_MANIFESTS: &[(&str, &str)] = &[
    ("celeba.toml", include_str!("../../datasets/celeba.toml")),
    ("cifar10.toml", include_str!("../../datasets/cifar10.toml")),
    (
        "cifar100.toml",
        include_str!("../../datasets/cifar100.toml"),
    ),
    (
        "emnist-balanced.toml",
        include_str!("../../datasets/emnist-balanced.toml"),
    ),
    (
        "emnist-letters.toml",
        include_str!("../../datasets/emnist-letters.toml"),
    ),
    (
        "fashion-mnist.toml",
        include_str!("../../datasets/fashion-mnist.toml"),
    ),
    ("kmnist.toml", include_str!("../../datasets/kmnist.toml")),
    ("mnist.toml", include_str!("../../datasets/mnist.toml")),
    ("svhn.toml", include_str!("../../datasets/svhn.toml")),
];

/// How a data set's files are encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize, serde::Serialize)]
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
    /// A NumPy `.npy` array (given as a path; see [`crate::formats::arrays`]).
    Npy,
    /// A NumPy `.npz` archive of arrays (given as a path).
    Npz,
    /// A safetensors file of tensors (given as a path).
    Safetensors,
}

impl Format {
    /// The name used in manifests and `data.format`: `idx`, `cifar10`, `cifar100`,
    /// `svhn_mat`, `image_folder`, `npy`, `npz`, `safetensors`.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Idx => "idx",
            Format::Cifar10 => "cifar10",
            Format::Cifar100 => "cifar100",
            Format::SvhnMat => "svhn_mat",
            Format::ImageFolder => "image_folder",
            Format::Npy => "npy",
            Format::Npz => "npz",
            Format::Safetensors => "safetensors",
        }
    }

    /// Every format, in the order of [`Format::as_str`]'s list.
    pub const ALL: [Format; 8] = [
        Format::Idx,
        Format::Cifar10,
        Format::Cifar100,
        Format::SvhnMat,
        Format::ImageFolder,
        Format::Npy,
        Format::Npz,
        Format::Safetensors,
    ];

    /// Whether the format is an array file ([`crate::formats::arrays`]).
    pub fn is_array_file(self) -> bool {
        matches!(self, Format::Npy | Format::Npz | Format::Safetensors)
    }
}

impl std::str::FromStr for Format {
    type Err = String;

    /// A name of [`Format::as_str`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Format::ALL
            .into_iter()
            .find(|f| f.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Format::ALL.iter().map(|f| f.as_str()).collect();
                format!("unknown format `{s}`; expected one of {}", names.join(", "))
            })
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
    /// Terms of use (required in shipped manifests, optional in a user's).
    #[serde(default)]
    pub licence: String,
    /// Where the data set is described (required in shipped manifests).
    #[serde(default)]
    pub homepage: String,
    /// What to download and where to put it (required in shipped manifests).
    #[serde(default)]
    pub how_to_obtain: String,
    /// A subfolder the files may be in instead (the folder an archive extracts to).
    pub subdir: Option<String>,
    /// Format-specific decoding options.
    #[serde(default)]
    pub options: DecodeOptions,
    /// The training split.
    pub train: SplitSpec,
    /// The test split; absent when the distribution has none (the data layer then carves one
    /// out of train, and [`load`](super::load()) returns an empty test set).
    pub test: Option<SplitSpec>,
    /// Where the manifest was read from (not a TOML field).
    #[serde(skip)]
    pub source: PathBuf,
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

/// Parses embedded manifest `file`, checking that its name matches the file name.
pub(super) fn parse_embedded(file: &str, text: &str) -> Result<Manifest, DataError> {
    let source = Path::new("datasets").join(file);
    let manifest = Manifest::from_toml_str(text, &source)?;
    let stem = file.strip_suffix(".toml").unwrap_or(file);
    for (field, value) in [
        ("licence", &manifest.licence),
        ("homepage", &manifest.homepage),
        ("how_to_obtain", &manifest.how_to_obtain),
    ] {
        if value.trim().is_empty() {
            return Err(manifest_error(
                &source,
                field,
                "a shipped manifest must give it",
            ));
        }
    }
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
