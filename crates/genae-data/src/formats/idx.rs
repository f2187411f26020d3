//! IDX files (MNIST, Fashion-MNIST, KMNIST, EMNIST), raw or gzipped.
//!
//! An IDX file is a 4-byte magic number (two zero bytes, a data-type byte, the number of
//! dimensions), one big-endian `u32` per dimension, then the data in row-major order. Only the
//! unsigned-byte type (`0x08`) is supported: it is the one every image and label file of the MNIST
//! family uses. A file starting with the gzip magic bytes `1f 8b` is decompressed first (whatever
//! its name), in one pass into a buffer sized from the gzip trailer.
//!
//! Every size taken from a header is checked against the bytes actually present (with checked
//! arithmetic) before anything is allocated from it, so a corrupt or hostile header produces an
//! error naming the file and the numbers involved, never a panic or a huge allocation.
//!
//! ```no_run
//! use std::path::Path;
//! use genae_data::formats::idx::{load_idx_pair, IdxImageOptions};
//!
//! let train = load_idx_pair(
//!     Path::new("train-images-idx3-ubyte.gz"),
//!     Path::new("train-labels-idx1-ubyte.gz"),
//!     IdxImageOptions::default(),
//! )?;
//! assert_eq!(train.image_shape, [1, 28, 28]);
//! # Ok::<(), genae_data::DataError>(())
//! ```

use std::path::Path;

use crate::{DataError, ImageSet};

/// The IDX data-type byte of unsigned bytes, the only type supported.
pub const IDX_UNSIGNED_BYTE: u8 = 0x08;

/// The two magic bytes every gzip stream starts with.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// A decoded IDX array of unsigned bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdxArray {
    /// The dimensions from the header, outermost first (e.g. `[60000, 28, 28]`).
    pub dims: Vec<usize>,
    /// The elements in row-major order; `data.len()` is the product of `dims`.
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
    if bytes.starts_with(&GZIP_MAGIC) {
        let decoded = gunzip(bytes, path)?;
        let (dims, header_len) = parse_header(&decoded, path, " (after gzip decompression)")?;
        let mut data = decoded;
        data.drain(..header_len);
        Ok(IdxArray { dims, data })
    } else {
        let (dims, header_len) = parse_header(bytes, path, "")?;
        let data = bytes.get(header_len..).unwrap_or_default().to_vec();
        Ok(IdxArray { dims, data })
    }
}

/// Reads and decodes one IDX file.
pub fn read_idx(path: &Path) -> Result<IdxArray, DataError> {
    let bytes = std::fs::read(path).map_err(|err| DataError::io(path, &err))?;
    parse_idx(&bytes, path)
}

/// An image file (`N × rows × cols`) and its label file (`N`) as an [`ImageSet`] of shape
/// `[1, rows, cols]`.
///
/// With [`IdxImageOptions::transpose`] every image is transposed, giving shape `[1, cols, rows]`.
/// Labels are copied as they are (`0..=9` for MNIST, `1..=26` for EMNIST letters, ...).
pub fn load_idx_pair(
    images: &Path,
    labels: &Path,
    options: IdxImageOptions,
) -> Result<ImageSet, DataError> {
    let image_array = read_idx(images)?;
    let label_array = read_idx(labels)?;
    let (n, rows, cols) = match image_array.dims[..] {
        [n, rows, cols] => (n, rows, cols),
        _ => {
            return Err(DataError::bad_file(
                images,
                format!(
                    "wrong magic number {}: expected 0x{:08x} (unsigned bytes, 3 dimensions) for \
                     an image file, got {} dimensions {}",
                    magic_string(image_array.dims.len()),
                    0x0800 | 3,
                    image_array.dims.len(),
                    dims_string(&image_array.dims),
                ),
            ))
        }
    };
    let n_labels = match label_array.dims[..] {
        [n_labels] => n_labels,
        _ => {
            return Err(DataError::bad_file(
                labels,
                format!(
                    "wrong magic number {}: expected 0x{:08x} (unsigned bytes, 1 dimension) for a \
                     label file, got {} dimensions {}",
                    magic_string(label_array.dims.len()),
                    0x0800 | 1,
                    label_array.dims.len(),
                    dims_string(&label_array.dims),
                ),
            ))
        }
    };
    if rows == 0 || cols == 0 {
        return Err(DataError::bad_file(
            images,
            format!("header says images of {rows}x{cols}: an image dimension is zero"),
        ));
    }
    if n == 0 {
        return Err(DataError::bad_file(
            images,
            "header says 0 images: the file holds no data",
        ));
    }
    if n != n_labels {
        return Err(DataError::bad_file(
            images,
            format!("{n} images but {n_labels} labels in `{}`", labels.display()),
        ));
    }
    let (pixels, image_shape) = if options.transpose {
        (
            transpose_images(&image_array.data, rows, cols),
            [1, cols, rows],
        )
    } else {
        (image_array.data, [1, rows, cols])
    };
    let labels = label_array.data.into_iter().map(u32::from).collect();
    ImageSet::new(pixels, labels, image_shape)
}

/// Decompresses a gzip stream (all members), reading no more than the IDX header inside
/// declares (plus one byte, to tell trailing data), so a small file that expands to gigabytes
/// is refused after a few bytes of output, not after exhausting memory. A header declaring
/// more than the compressed bytes could ever expand to is refused before decompressing it.
fn gunzip(bytes: &[u8], path: &Path) -> Result<Vec<u8>, DataError> {
    let mut decoder = flate2::bufread::MultiGzDecoder::new(bytes);
    let mut out = Vec::new();
    let mut read = |out: &mut Vec<u8>, up_to: usize| -> Result<(), DataError> {
        super::read_up_to(&mut decoder, out, up_to).map_err(|err| {
            DataError::bad_file(
                path,
                format!(
                    "corrupt gzip stream: {err} ({} compressed bytes, {} decompressed before the \
                     error)",
                    bytes.len(),
                    out.len()
                ),
            )
        })
    };
    read(&mut out, 4)?;
    let ndims = match out.as_slice() {
        [0, 0, _, n] => usize::from(*n),
        // Not an IDX header: `parse_header` names what is wrong with it.
        _ => return Ok(out),
    };
    let header_len = 4 + 4 * ndims;
    read(&mut out, header_len)?;
    let Some(dims) = out.get(4..header_len) else {
        return Ok(out);
    };
    let expected = dims.chunks_exact(4).try_fold(1usize, |acc, c| {
        acc.checked_mul(u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
    });
    let Some(expected) = expected else {
        return Ok(out);
    };
    let most = bytes
        .len()
        .saturating_mul(super::DEFLATE_MAX_RATIO)
        .saturating_add(4096);
    if expected > most {
        return Err(DataError::bad_file(
            path,
            format!(
                "truncated: the header (after gzip decompression) declares {expected} bytes of \
                 data, more than {} compressed bytes can expand to",
                bytes.len()
            ),
        ));
    }
    read(&mut out, header_len + expected + 1)?;
    if out.len() > header_len + expected {
        return Err(DataError::bad_file(
            path,
            format!(
                "trailing data: the header says {} ({expected} bytes) but more bytes follow \
                 (after gzip decompression)",
                describe(&dims_of(&out[4..header_len]))
            ),
        ));
    }
    Ok(out)
}

/// The dimensions in an IDX header's dimension bytes.
fn dims_of(bytes: &[u8]) -> Vec<usize> {
    bytes
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect()
}

/// Parses and checks the header; returns the dimensions and the header length. Checks that
/// exactly the number of bytes the header describes follow it.
fn parse_header(
    bytes: &[u8],
    path: &Path,
    context: &str,
) -> Result<(Vec<usize>, usize), DataError> {
    let bad = |problem: String| DataError::bad_file(path, problem);
    let Some(&[z0, z1, dtype, ndims]) = bytes.get(..4) else {
        return Err(bad(format!(
            "truncated: {} bytes{context}, but an IDX header needs at least 4 (the magic number)",
            bytes.len()
        )));
    };
    let magic = u32::from_be_bytes([z0, z1, dtype, ndims]);
    if z0 != 0 || z1 != 0 {
        return Err(bad(format!(
            "wrong magic number 0x{magic:08x}{context}: not an IDX file (an IDX magic number is \
             two zero bytes, the data type, then the number of dimensions, e.g. 0x00000803 for \
             unsigned-byte images and 0x00000801 for labels)"
        )));
    }
    if dtype != IDX_UNSIGNED_BYTE {
        return Err(bad(format!(
            "wrong magic number 0x{magic:08x}: unsupported IDX data type 0x{dtype:02x} ({}); \
             only 0x08 (unsigned bytes) is supported (e.g. 0x00000803 for images, 0x00000801 \
             for labels)",
            type_name(dtype)
        )));
    }
    if ndims == 0 {
        return Err(bad(format!(
            "wrong magic number 0x{magic:08x}: 0 dimensions (expected 0x00000803 for images or \
             0x00000801 for labels)"
        )));
    }
    let ndims = usize::from(ndims);
    let header_len = 4 + 4 * ndims;
    let Some(dim_bytes) = bytes.get(4..header_len) else {
        return Err(bad(format!(
            "truncated: the magic number 0x{magic:08x} declares {ndims} dimensions ({} bytes) but \
             only {} bytes follow it{context}",
            4 * ndims,
            bytes.len() - 4
        )));
    };
    let dims = dims_of(dim_bytes);
    let payload = bytes.len() - header_len;
    let Some(expected) = dims.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d)) else {
        return Err(bad(format!(
            "header dimensions {} multiply to more than {} bytes: corrupt header ({payload} bytes \
             follow it{context})",
            dims_string(&dims),
            usize::MAX
        )));
    };
    if payload < expected {
        return Err(bad(format!(
            "truncated: header says {} ({expected} bytes) but only {payload} bytes follow{context}",
            describe(&dims)
        )));
    }
    if payload > expected {
        return Err(bad(format!(
            "{} bytes of trailing data: header says {} ({expected} bytes) but {payload} bytes \
             follow{context}",
            payload - expected,
            describe(&dims)
        )));
    }
    Ok((dims, header_len))
}

/// Transposes every `rows × cols` image of `data` (whose length is a multiple of `rows * cols`).
fn transpose_images(data: &[u8], rows: usize, cols: usize) -> Vec<u8> {
    let image_len = rows * cols;
    let mut out = vec![0u8; data.len()];
    for (src, dst) in data
        .chunks_exact(image_len)
        .zip(out.chunks_exact_mut(image_len))
    {
        for (r, src_row) in src.chunks_exact(cols).enumerate() {
            for (c, &value) in src_row.iter().enumerate() {
                dst[c * rows + r] = value;
            }
        }
    }
    out
}

/// `60000 images of 28x28`, `60000 labels`, or `an array of 2x3x4x5`.
fn describe(dims: &[usize]) -> String {
    match dims {
        [n] => format!("{n} labels"),
        [n, rows, cols] => format!("{n} images of {rows}x{cols}"),
        _ => format!("an array of {}", dims_string(dims)),
    }
}

/// `[60000, 28, 28]`.
fn dims_string(dims: &[usize]) -> String {
    format!("{dims:?}")
}

/// The magic number of an unsigned-byte file with `ndims` dimensions, as `0x000008NN`.
fn magic_string(ndims: usize) -> String {
    format!("0x{:08x}", 0x0800 | ndims)
}

/// The name of an IDX data-type byte.
fn type_name(dtype: u8) -> &'static str {
    match dtype {
        0x08 => "unsigned bytes",
        0x09 => "signed bytes",
        0x0b => "16-bit integers",
        0x0c => "32-bit integers",
        0x0d => "32-bit floats",
        0x0e => "64-bit floats",
        _ => "not an IDX type",
    }
}
