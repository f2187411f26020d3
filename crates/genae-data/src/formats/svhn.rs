//! SVHN `*_32x32.mat` files (MATLAB v5, as distributed).
//! STUB: signatures fixed, bodies to be written.
#![allow(missing_docs, unused_variables)]

use std::path::Path;

use crate::{DataError, ImageSet};

/// Reads `X` (32×32×3×N uint8) and `y` (N labels, 10 meaning digit 0) into a `[3, 32, 32]` set
/// with labels 0..=9.
pub fn load_svhn_mat(path: &Path) -> Result<ImageSet, DataError> {
    unimplemented!()
}
