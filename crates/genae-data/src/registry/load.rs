//! Decoding a data set from the folder that holds it: the decoding plan built from a manifest
//! (or by `detect` from file names), the format loaders it calls, and the checks of each split
//! against the manifest ([`load`], [`load_with`], [`load_from_dir`]).

use std::path::{Path, PathBuf};

use super::{
    manifest, Cifar100Labels, FileSpec, Format, Manifest, SearchRoots, DEFAULT_FOLDER_SIZE,
};
use crate::formats::cifar::{load_cifar, CifarVariant};
use crate::formats::idx::{load_idx_pair, IdxImageOptions};
use crate::formats::image_folder::{load_image_folder, Channels, ImageFolderOptions};
use crate::formats::svhn::load_svhn_mat;
use crate::{DataError, Dataset, ImageSet};

/// The files (or folder) one split is decoded from.
#[derive(Clone, Debug)]
pub(super) enum Inputs {
    /// IDX images and labels files.
    Idx { images: PathBuf, labels: PathBuf },
    /// CIFAR batch files, concatenated in this order.
    Cifar(Vec<PathBuf>),
    /// An SVHN `.mat` file.
    Mat(PathBuf),
    /// A folder of images.
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

    /// Every file (or folder) read.
    pub(super) fn files(&self) -> Vec<PathBuf> {
        match self {
            Inputs::Idx { images, labels } => vec![images.clone(), labels.clone()],
            Inputs::Cifar(paths) => paths.clone(),
            Inputs::Mat(p) | Inputs::Folder(p) => vec![p.clone()],
        }
    }
}

/// One split to decode, with the image count expected.
#[derive(Clone, Debug)]
pub(super) struct PlannedSplit {
    pub(super) name: &'static str,
    pub(super) inputs: Inputs,
    pub(super) count: Option<usize>,
}

/// Everything needed to decode a data set's splits.
#[derive(Clone, Debug)]
pub(super) struct Plan {
    pub(super) format: Format,
    pub(super) location: PathBuf,
    pub(super) transpose: bool,
    pub(super) cifar100_labels: Cifar100Labels,
    pub(super) folder: ImageFolderOptions,
    pub(super) expected_shape: Option<[usize; 3]>,
    pub(super) classes: Vec<String>,
    /// The manifest the expectations come from (none for a detected path).
    pub(super) source: Option<PathBuf>,
    pub(super) splits: Vec<PlannedSplit>,
}

/// One decoded split, with the images skipped and the class names of a labelled image folder.
pub(super) struct DecodedSplit {
    pub(super) name: &'static str,
    pub(super) set: ImageSet,
    pub(super) skipped: Vec<(PathBuf, String)>,
    pub(super) folder_classes: Vec<String>,
}

/// The last component of `p` (all of `p` when it has none).
pub(super) fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| p.display().to_string())
}

fn shape_str(s: [usize; 3]) -> String {
    format!("{}×{}×{}", s[0], s[1], s[2])
}

impl Manifest {
    /// Resolves every input of every split under `dir` (a `NotFound` naming what is missing).
    pub(super) fn plan(&self, dir: &Path) -> Result<Plan, DataError> {
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
                Format::Npy | Format::Npz | Format::Safetensors => {
                    return Err(DataError::bad_file(
                        &self.source,
                        format!(
                            "format `{}` is read from data.path, not a manifest",
                            self.format
                        ),
                    ))
                }
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

impl Plan {
    /// Decodes every split, checking its image shape, count and labels.
    pub(super) fn decode(&self) -> Result<Vec<DecodedSplit>, DataError> {
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

    /// The manifest's class names, or else those of a labelled image folder.
    pub(super) fn class_names(&self, decoded: &[DecodedSplit]) -> Vec<String> {
        if !self.classes.is_empty() {
            return self.classes.clone();
        }
        decoded
            .iter()
            .find(|d| !d.folder_classes.is_empty())
            .map(|d| d.folder_classes.clone())
            .unwrap_or_default()
    }

    /// The data set of the decoded splits (a split not decoded is empty).
    pub(super) fn dataset(
        &self,
        name: String,
        decoded: Vec<DecodedSplit>,
    ) -> Result<Dataset, DataError> {
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

/// Finds data set `name` ([`locate`](super::locate)) and decodes it ([`load_from_dir`]).
pub fn load(name: &str, explicit_dir: Option<&Path>) -> Result<Dataset, DataError> {
    let manifest = manifest(name)?;
    let dir = SearchRoots::from_env(explicit_dir).locate(&manifest)?;
    load_from_dir(&manifest, &dir)
}

/// Loads a data set `manifest` from the first of `roots` that holds it.
pub fn load_with(manifest: &Manifest, roots: &SearchRoots) -> Result<Dataset, DataError> {
    load_from_dir(manifest, &roots.locate(manifest)?)
}
