//! Folders of PNG/JPEG images (e.g. CelebA), centre-cropped and resized.
//! STUB: signatures fixed, bodies to be written.
#![allow(missing_docs, unused_variables)]

use std::path::{Path, PathBuf};

use crate::{DataError, ImageSet};

/// What to do with a file that cannot be decoded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnUnreadable {
    /// Stop with an error naming the file (the default).
    #[default]
    Fail,
    /// Skip it with a warning on stderr (and list it in [`ImageFolder::skipped`]).
    Skip,
}

/// Channels to decode to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channels {
    /// 1 channel.
    Gray,
    /// 3 channels.
    #[default]
    Rgb,
}

/// How to read an image folder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageFolderOptions {
    /// Output side in pixels (square): centre crop to a square, then resize (64 = CelebA convention).
    pub size: u32,
    /// Channels of the output.
    pub channels: Channels,
    /// Label each image by its immediate subfolder (sorted names → 0, 1, …); otherwise all labels 0.
    pub labels_from_subfolders: bool,
    /// Unreadable files: fail (default) or skip.
    pub on_unreadable: OnUnreadable,
}

/// A decoded image folder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageFolder {
    pub images: ImageSet,
    /// Subfolder names by label (empty without `labels_from_subfolders`).
    pub class_names: Vec<String>,
    /// Files skipped under [`OnUnreadable::Skip`], with the reason.
    pub skipped: Vec<(PathBuf, String)>,
}

/// Reads every `.png`, `.jpg` and `.jpeg` (any case) under `dir` (one level of subfolders when
/// `labels_from_subfolders`, else the folder itself and its subfolders recursively), in sorted
/// path order.
pub fn load_image_folder(dir: &Path, options: &ImageFolderOptions) -> Result<ImageFolder, DataError> {
    unimplemented!()
}
