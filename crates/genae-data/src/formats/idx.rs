//! IDX files (MNIST, Fashion-MNIST, KMNIST, EMNIST), raw or gzipped.
//! STUB: signatures fixed, bodies to be written.
#![allow(missing_docs, unused_variables)]

use std::path::Path;

use crate::{DataError, ImageSet};

/// A decoded IDX array of unsigned bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdxArray {
    pub dims: Vec<usize>,
    pub data: Vec<u8>,
}

/// Options for reading IDX image files.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IdxImageOptions {
    /// EMNIST ships its images transposed: set to store them upright.
    pub transpose: bool,
}

/// Decodes IDX bytes (gzip detected by its magic number, not the file name); `path` is only used
/// in error messages.
pub fn parse_idx(bytes: &[u8], path: &Path) -> Result<IdxArray, DataError> {
    unimplemented!()
}

/// Reads and decodes one IDX file.
pub fn read_idx(path: &Path) -> Result<IdxArray, DataError> {
    unimplemented!()
}

/// An image file (`N × rows × cols`) and its label file (`N`) as an [`ImageSet`] of shape
/// `[1, rows, cols]`.
pub fn load_idx_pair(
    images: &Path,
    labels: &Path,
    options: IdxImageOptions,
) -> Result<ImageSet, DataError> {
    unimplemented!()
}
