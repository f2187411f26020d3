//! SVHN `*_32x32.mat` files (MATLAB v5, as distributed).
//!
//! The SVHN cropped-digits files (`train_32x32.mat`, `test_32x32.mat`, `extra_32x32.mat`) are
//! MATLAB level-5 MAT-files holding two variables:
//!
//! - `X`: `uint8`, dimensions `[32, 32, 3, N]` (rows, columns, channels, images) stored
//!   column-major, as MATLAB stores everything: the row index varies fastest;
//! - `y`: `double` (or any numeric class), dimensions `[N, 1]`, labels `1..=10`, where `10` is the
//!   digit 0.
//!
//! [`load_svhn_mat`] returns an [`ImageSet`] of shape `[3, 32, 32]` (row-major `[C, H, W]`, so
//! every image is transposed from MATLAB's layout) with labels `0..=9` (the digit itself).
//!
//! The reader is a small, self-contained MAT v5 parser (either byte order, compressed
//! `miCOMPRESSED` elements through `flate2`, and numeric arrays stored in any of MATLAB's
//! numeric storage types, e.g. a `double` array saved as `miUINT8`). It is used rather than the
//! `matfile` crate because that crate can panic on corrupt sizes (unchecked `u32`/`i32`
//! arithmetic), prints to stdout on unsupported elements, and reports every problem as the same
//! "error while parsing" message; this one checks every size against the bytes present and says
//! what is wrong, with the numbers. MATLAB v7.3 files (HDF5) are recognised and rejected with a
//! message saying so.

use std::borrow::Cow;
use std::ops::Range;
use std::path::Path;

use crate::{DataError, ImageSet};

/// Side of an SVHN image in pixels.
const SIDE: usize = 32;
/// Channels of an SVHN image.
const CHANNELS: usize = 3;
/// Bytes of the MAT v5 file header.
const HEADER_LEN: usize = 128;

// MAT v5 data types (the `type` field of a data element tag).
const MI_INT8: u32 = 1;
const MI_UINT8: u32 = 2;
const MI_INT16: u32 = 3;
const MI_UINT16: u32 = 4;
const MI_INT32: u32 = 5;
const MI_UINT32: u32 = 6;
const MI_SINGLE: u32 = 7;
const MI_DOUBLE: u32 = 9;
const MI_INT64: u32 = 12;
const MI_UINT64: u32 = 13;
const MI_MATRIX: u32 = 14;
const MI_COMPRESSED: u32 = 15;
const MI_UTF8: u32 = 16;

// MATLAB array classes (low byte of the array flags).
const MX_DOUBLE: u8 = 6;
const MX_UINT8: u8 = 9;

/// Reads `X` (32×32×3×N uint8) and `y` (N labels, 10 meaning digit 0) into a `[3, 32, 32]` set
/// with labels 0..=9.
pub fn load_svhn_mat(path: &Path) -> Result<ImageSet, DataError> {
    let bytes = std::fs::read(path).map_err(|err| DataError::io(path, &err))?;
    parse_svhn_mat(&bytes, path)
}

/// Decodes the bytes of an SVHN `.mat` file as [`load_svhn_mat`] does; `path` is only used in
/// error messages.
pub fn parse_svhn_mat(bytes: &[u8], path: &Path) -> Result<ImageSet, DataError> {
    let bad = |problem: String| DataError::bad_file(path, problem);
    let vars = read_mat(bytes, &["X", "y"]).map_err(bad)?;
    let found = || {
        if vars.names.is_empty() {
            "no variables".to_string()
        } else {
            format!("variables found: {}", vars.names.join(", "))
        }
    };
    let Some(x) = vars.kept.iter().find(|v| v.name == "X") else {
        return Err(bad(format!(
            "no variable `X` (the images, uint8 [32, 32, 3, N]) in the file; {}",
            found()
        )));
    };
    let Some(y) = vars.kept.iter().find(|v| v.name == "y") else {
        return Err(bad(format!(
            "no variable `y` (the labels, [N, 1] with values 1..=10) in the file; {}",
            found()
        )));
    };

    // X: uint8 [32, 32, 3, N] (MATLAB drops a trailing singleton, so N = 1 is [32, 32, 3]).
    if x.class != MX_UINT8 || x.data_type != MI_UINT8 || x.complex {
        return Err(bad(format!(
            "`X` is a {} array stored as {}: expected a real uint8 array",
            class_name(x.class, x.complex),
            type_name(x.data_type)
        )));
    }
    let n = match x.dims[..] {
        [SIDE, SIDE, CHANNELS, n] => n,
        [SIDE, SIDE, CHANNELS] => 1,
        _ => {
            return Err(bad(format!(
                "`X` has dimensions {:?}: expected [32, 32, 3, N] (rows, columns, channels, \
                 images)",
                x.dims
            )))
        }
    };
    if n == 0 {
        return Err(bad(
            "`X` has dimensions [32, 32, 3, 0]: no images".to_string()
        ));
    }

    // y: N numeric labels, [N, 1] (or [1, N]).
    if !is_numeric_class(y.class) || y.complex {
        return Err(bad(format!(
            "`y` is a {} array: expected a real numeric (double or uint8) array",
            class_name(y.class, y.complex)
        )));
    }
    let n_labels = match y.dims[..] {
        [len, 1] | [1, len] => len,
        _ => {
            return Err(bad(format!(
                "`y` has dimensions {:?}: expected [N, 1] (one label per image)",
                y.dims
            )))
        }
    };
    if n_labels != n {
        return Err(bad(format!(
            "{n} images in `X` but {n_labels} labels in `y`"
        )));
    }
    let mut labels = Vec::with_capacity(n);
    for (i, value) in numeric_values(&y.data, y.data_type, vars.little_endian).enumerate() {
        // 1..=9 are the digits themselves, 10 is the digit 0.
        let label = match value {
            v if v == v.trunc() && (1.0..=10.0).contains(&v) => (v as u32) % 10,
            v => {
                return Err(bad(format!(
                    "the label at index {i} (y({}) in MATLAB) is {v}: SVHN labels are 1..=10 \
                     (10 meaning the digit 0)",
                    i + 1
                )))
            }
        };
        labels.push(label);
    }

    // Column-major [H, W, C, N] to row-major [N, C, H, W]: X(r, c, ch, i) is at
    // r + H*c + H*W*ch + H*W*C*i, and goes to i*C*H*W + ch*H*W + r*W + c.
    let image_len = CHANNELS * SIDE * SIDE;
    let mut pixels = vec![0u8; x.data.len()];
    for (src, dst) in x
        .data
        .chunks_exact(image_len)
        .zip(pixels.chunks_exact_mut(image_len))
    {
        for (src_plane, dst_plane) in src
            .chunks_exact(SIDE * SIDE)
            .zip(dst.chunks_exact_mut(SIDE * SIDE))
        {
            for (c, src_column) in src_plane.chunks_exact(SIDE).enumerate() {
                for (r, &value) in src_column.iter().enumerate() {
                    dst_plane[r * SIDE + c] = value;
                }
            }
        }
    }
    ImageSet::new(pixels, labels, [CHANNELS, SIDE, SIDE])
}

/// The variables of a MAT-file that were asked for, and the names of all of them.
struct MatVars<'a> {
    /// The first variable with each wanted name.
    kept: Vec<MatVar<'a>>,
    /// The names of every array variable in the file, in order.
    names: Vec<String>,
    /// The file's byte order.
    little_endian: bool,
}

/// One array variable.
struct MatVar<'a> {
    name: String,
    /// MATLAB class (`mxDOUBLE_CLASS` = 6, ...).
    class: u8,
    complex: bool,
    dims: Vec<usize>,
    /// Storage type of the real part (`miUINT8`, `miDOUBLE`, ...); 0 for non-numeric classes.
    data_type: u32,
    /// The real part's bytes, exactly `product(dims) * size_of(data_type)` of them.
    data: Cow<'a, [u8]>,
}

/// What [`parse_matrix`] finds in a `miMATRIX` element.
struct MatrixInfo {
    name: String,
    class: u8,
    complex: bool,
    dims: Vec<usize>,
    data_type: u32,
    /// Where the real part is, relative to the buffer given to [`parse_matrix`].
    data: Range<usize>,
}

/// A data element: its type, where its data is, and where the next element starts.
struct Element {
    data_type: u32,
    data: Range<usize>,
    next: usize,
}

/// Parses a MAT v5 file, keeping the variables named in `wanted`. Errors are the problem text.
fn read_mat<'a>(bytes: &'a [u8], wanted: &[&str]) -> Result<MatVars<'a>, String> {
    let Some(header) = bytes.get(..HEADER_LEN) else {
        return Err(format!(
            "not a MATLAB .mat file: {} bytes, shorter than the {HEADER_LEN}-byte MAT v5 header",
            bytes.len()
        ));
    };
    if header.starts_with(b"MATLAB 7.3 MAT-file")
        || bytes.get(512..520) == Some(b"\x89HDF\r\n\x1a\n")
    {
        return Err(
            "MATLAB v7.3 (HDF5) .mat file: only MATLAB v5/v7 MAT-files are supported \
                    (re-save it with `save -v7` in MATLAB or `scipy.io.savemat`)"
                .to_string(),
        );
    }
    let little_endian = match &header[126..128] {
        b"IM" => true,
        b"MI" => false,
        other => {
            return Err(format!(
                "not a MATLAB v5 .mat file: header bytes 126..128 are {}, expected the endian \
                 indicator \"IM\" or \"MI\"",
                other
                    .iter()
                    .map(|b| format!("0x{b:02x}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            ))
        }
    };
    let version = read_u16(header, 124, little_endian).unwrap_or_default();
    if version != 0x0100 {
        return Err(format!(
            "unsupported MAT-file version 0x{version:04x} in the header: expected 0x0100 (MAT v5)"
        ));
    }

    let mut vars = MatVars {
        kept: Vec::new(),
        names: Vec::new(),
        little_endian,
    };
    let mut offset = HEADER_LEN;
    while offset < bytes.len() {
        let element = read_element(bytes, offset, little_endian).map_err(|e| {
            format!("corrupt MAT file: top-level data element at byte {offset}: {e}")
        })?;
        match element.data_type {
            MI_MATRIX => {
                let data = &bytes[element.data.clone()];
                let info = parse_matrix(data, little_endian)
                    .map_err(|e| format!("corrupt MAT file: array at byte {offset}: {e}"))?;
                if let Some(info) = info {
                    let start = element.data.start;
                    let range = start + info.data.start..start + info.data.end;
                    keep(&mut vars, wanted, info, || Cow::Borrowed(&bytes[range]));
                }
            }
            MI_COMPRESSED => {
                let compressed = &bytes[element.data.clone()];
                let buf = inflate_element(compressed, little_endian).map_err(|e| {
                    format!(
                        "corrupt zlib stream in the compressed element at byte {offset} ({} \
                         compressed bytes): {e}",
                        compressed.len()
                    )
                })?;
                let inner = read_element(&buf, 0, little_endian).map_err(|e| {
                    format!("corrupt MAT file: in the compressed element at byte {offset}: {e}")
                })?;
                if inner.data_type == MI_MATRIX {
                    let matrix = &buf[inner.data.clone()];
                    let info = parse_matrix(matrix, little_endian).map_err(|e| {
                        format!(
                            "corrupt MAT file: array in the compressed element at byte \
                             {offset}: {e}"
                        )
                    })?;
                    if let Some(info) = info {
                        let start = inner.data.start;
                        let range = start + info.data.start..start + info.data.end;
                        keep(&mut vars, wanted, info, move || {
                            let mut buf = buf;
                            buf.truncate(range.end);
                            buf.drain(..range.start);
                            Cow::Owned(buf)
                        });
                    }
                }
            }
            // Anything else at the top level (subsystem data, ...) is not an array: skip it.
            _ => {}
        }
        offset = element.next;
    }
    Ok(vars)
}

/// Records `info`'s name, and keeps it (with its data from `data`) if it is wanted and the first
/// of its name.
fn keep<'a>(
    vars: &mut MatVars<'a>,
    wanted: &[&str],
    info: MatrixInfo,
    data: impl FnOnce() -> Cow<'a, [u8]>,
) {
    vars.names.push(info.name.clone());
    if wanted.contains(&info.name.as_str()) && !vars.kept.iter().any(|v| v.name == info.name) {
        vars.kept.push(MatVar {
            name: info.name,
            class: info.class,
            complex: info.complex,
            dims: info.dims,
            data_type: info.data_type,
            data: data(),
        });
    }
}

/// Inflates a compressed element's zlib stream, reading no more than the element inside
/// declares in its tag (plus one byte, to tell trailing data): a small stream that expands to
/// gigabytes is not decompressed past the size the element claims, and a claim larger than the
/// compressed bytes could ever expand to is refused before decompressing.
fn inflate_element(compressed: &[u8], little_endian: bool) -> Result<Vec<u8>, String> {
    let mut decoder = flate2::read::ZlibDecoder::new(compressed);
    let mut out = Vec::new();
    let mut read = |out: &mut Vec<u8>, up_to: usize| -> Result<(), String> {
        super::read_up_to(&mut decoder, out, up_to)
            .map_err(|e| format!("{e} ({} bytes decompressed before the error)", out.len()))
    };
    read(&mut out, 8)?;
    let (Some(first), Some(size)) = (
        read_u32(&out, 0, little_endian),
        read_u32(&out, 4, little_endian),
    ) else {
        return Ok(out);
    };
    if first >> 16 != 0 {
        return Ok(out);
    }
    let size = size as usize;
    let most = compressed
        .len()
        .saturating_mul(super::DEFLATE_MAX_RATIO)
        .saturating_add(4096);
    if size > most {
        return Err(format!(
            "the element inside claims {size} bytes, more than {} compressed bytes can expand to",
            compressed.len()
        ));
    }
    // Up to 7 bytes of padding to a multiple of 8 are tolerated after the element.
    read(&mut out, 8 + size + 8)?;
    if out.len() > 8 + size + 7 {
        return Err(format!(
            "more data than the {size} bytes the element inside claims"
        ));
    }
    Ok(out)
}

/// Reads the data element whose tag starts at `offset` in `buf` (either tag format), checking
/// that its data fits.
fn read_element(buf: &[u8], offset: usize, little_endian: bool) -> Result<Element, String> {
    let (Some(first), Some(second)) = (
        read_u32(buf, offset, little_endian),
        read_u32(buf, offset.saturating_add(4), little_endian),
    ) else {
        return Err(format!(
            "truncated: an 8-byte data element tag needs bytes {offset}..{} but there are {}",
            offset.saturating_add(8),
            buf.len()
        ));
    };
    if first >> 16 != 0 {
        // Small data element: type and size (at most 4) in the first word, data in the second.
        let data_type = first & 0xffff;
        let size = (first >> 16) as usize;
        if size > 4 {
            return Err(format!(
                "small data element of type {data_type} claims {size} bytes: at most 4 fit"
            ));
        }
        return Ok(Element {
            data_type,
            data: offset + 4..offset + 4 + size,
            next: offset + 8,
        });
    }
    let data_type = first;
    let size = second as usize;
    let start = offset + 8;
    let available = buf.len() - start;
    if size > available {
        return Err(format!(
            "truncated: element of type {} claims {size} bytes but only {available} follow its tag",
            type_name(data_type)
        ));
    }
    let end = start + size;
    // Uncompressed elements are padded to a multiple of 8 bytes; compressed ones are not. A
    // missing final padding is tolerated.
    let next = if data_type == MI_COMPRESSED {
        end
    } else {
        start.saturating_add(size.div_ceil(8) * 8).min(buf.len())
    };
    Ok(Element {
        data_type,
        data: start..end,
        next,
    })
}

/// Parses the subelements of a `miMATRIX` element's data: array flags, dimensions, name, real
/// part. `Ok(None)` for an empty element (an empty array, no name).
fn parse_matrix(data: &[u8], le: bool) -> Result<Option<MatrixInfo>, String> {
    if data.is_empty() {
        return Ok(None);
    }
    let flags = read_element(data, 0, le).map_err(|e| format!("array flags: {e}"))?;
    let flag_word = match flags.data_type {
        MI_UINT32 => read_u32(&data[flags.data.clone()], 0, le),
        _ => None,
    };
    let Some(flag_word) = flag_word else {
        return Err(format!(
            "the array flags subelement is {} of {} bytes: expected miUINT32 of 8 bytes",
            type_name(flags.data_type),
            flags.data.len()
        ));
    };
    let class = (flag_word & 0xff) as u8;
    let complex = flag_word & 0x0800 != 0;

    let dims_el = read_element(data, flags.next, le).map_err(|e| format!("dimensions: {e}"))?;
    let dim_bytes = &data[dims_el.data.clone()];
    if dims_el.data_type != MI_INT32 || !dim_bytes.len().is_multiple_of(4) || dim_bytes.len() < 8 {
        return Err(format!(
            "the dimensions subelement is {} of {} bytes: expected miINT32, at least 2 dimensions",
            type_name(dims_el.data_type),
            dim_bytes.len()
        ));
    }
    let mut dims = Vec::with_capacity(dim_bytes.len() / 4);
    for i in 0..dim_bytes.len() / 4 {
        let d = read_u32(dim_bytes, 4 * i, le).unwrap_or_default() as i32;
        let Ok(d) = usize::try_from(d) else {
            return Err(format!("dimension {} is negative ({d})", i + 1));
        };
        dims.push(d);
    }

    let name_el = read_element(data, dims_el.next, le).map_err(|e| format!("array name: {e}"))?;
    if name_el.data_type != MI_INT8 && name_el.data_type != MI_UTF8 {
        return Err(format!(
            "the array name subelement is {}: expected miINT8",
            type_name(name_el.data_type)
        ));
    }
    let name = String::from_utf8_lossy(&data[name_el.data.clone()]).into_owned();

    if !is_numeric_class(class) {
        // Cell, struct, char, sparse, ...: not something SVHN needs; keep the name only.
        return Ok(Some(MatrixInfo {
            name,
            class,
            complex,
            dims,
            data_type: 0,
            data: 0..0,
        }));
    }
    let real =
        read_element(data, name_el.next, le).map_err(|e| format!("`{name}`: real part: {e}"))?;
    let Some(elem_size) = type_size(real.data_type) else {
        return Err(format!(
            "`{name}`: the real part is {}: expected a numeric type",
            type_name(real.data_type)
        ));
    };
    let count = dims.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d));
    let needed = count.and_then(|c| c.checked_mul(elem_size));
    if needed != Some(real.data.len()) {
        return Err(format!(
            "`{name}`: dimensions {dims:?} need {} elements of {} ({}) but the real part holds {} \
             bytes",
            count.map_or("too many".to_string(), |c| c.to_string()),
            type_name(real.data_type),
            needed.map_or("more than fit in memory".to_string(), |b| format!(
                "{b} bytes"
            )),
            real.data.len()
        ));
    }
    Ok(Some(MatrixInfo {
        name,
        class,
        complex,
        dims,
        data_type: real.data_type,
        data: real.data,
    }))
}

/// The values of numeric data of storage type `data_type`, as `f64`.
fn numeric_values(data: &[u8], data_type: u32, le: bool) -> impl Iterator<Item = f64> + '_ {
    let size = type_size(data_type).unwrap_or(1);
    data.chunks_exact(size).map(move |c| {
        let mut b = [0u8; 8];
        b[..size].copy_from_slice(c);
        if !le {
            b[..size].reverse();
        }
        // `b` now holds the little-endian bytes of the value.
        match data_type {
            MI_INT8 => f64::from(b[0] as i8),
            MI_UINT8 => f64::from(b[0]),
            MI_INT16 => f64::from(i16::from_le_bytes([b[0], b[1]])),
            MI_UINT16 => f64::from(u16::from_le_bytes([b[0], b[1]])),
            MI_INT32 => f64::from(i32::from_le_bytes([b[0], b[1], b[2], b[3]])),
            MI_UINT32 => f64::from(u32::from_le_bytes([b[0], b[1], b[2], b[3]])),
            MI_SINGLE => f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
            MI_DOUBLE => f64::from_le_bytes(b),
            MI_INT64 => i64::from_le_bytes(b) as f64,
            MI_UINT64 => u64::from_le_bytes(b) as f64,
            _ => f64::NAN,
        }
    })
}

/// Bytes per element of a numeric storage type.
fn type_size(data_type: u32) -> Option<usize> {
    match data_type {
        MI_INT8 | MI_UINT8 => Some(1),
        MI_INT16 | MI_UINT16 => Some(2),
        MI_INT32 | MI_UINT32 | MI_SINGLE => Some(4),
        MI_DOUBLE | MI_INT64 | MI_UINT64 => Some(8),
        _ => None,
    }
}

/// Whether a MATLAB class is a numeric (full, not sparse) array.
fn is_numeric_class(class: u8) -> bool {
    (MX_DOUBLE..=15).contains(&class)
}

/// The name of a storage type, for messages.
fn type_name(data_type: u32) -> String {
    let name = match data_type {
        MI_INT8 => "miINT8",
        MI_UINT8 => "miUINT8",
        MI_INT16 => "miINT16",
        MI_UINT16 => "miUINT16",
        MI_INT32 => "miINT32",
        MI_UINT32 => "miUINT32",
        MI_SINGLE => "miSINGLE",
        MI_DOUBLE => "miDOUBLE",
        MI_INT64 => "miINT64",
        MI_UINT64 => "miUINT64",
        MI_MATRIX => "miMATRIX",
        MI_COMPRESSED => "miCOMPRESSED",
        MI_UTF8 => "miUTF8",
        0 => "no data",
        other => return format!("unknown data type {other}"),
    };
    name.to_string()
}

/// The name of a MATLAB class, for messages.
fn class_name(class: u8, complex: bool) -> String {
    let name = match class {
        1 => "cell",
        2 => "struct",
        3 => "object",
        4 => "char",
        5 => "sparse",
        6 => "double",
        7 => "single",
        8 => "int8",
        9 => "uint8",
        10 => "int16",
        11 => "uint16",
        12 => "int32",
        13 => "uint32",
        14 => "int64",
        15 => "uint64",
        other => return format!("class-{other}"),
    };
    if complex {
        format!("complex {name}")
    } else {
        name.to_string()
    }
}

/// The `u32` at `offset` in the given byte order, if 4 bytes are there.
fn read_u32(buf: &[u8], offset: usize, little_endian: bool) -> Option<u32> {
    let bytes: [u8; 4] = buf.get(offset..offset.checked_add(4)?)?.try_into().ok()?;
    Some(if little_endian {
        u32::from_le_bytes(bytes)
    } else {
        u32::from_be_bytes(bytes)
    })
}

/// The `u16` at `offset` in the given byte order, if 2 bytes are there.
fn read_u16(buf: &[u8], offset: usize, little_endian: bool) -> Option<u16> {
    let bytes: [u8; 2] = buf.get(offset..offset.checked_add(2)?)?.try_into().ok()?;
    Some(if little_endian {
        u16::from_le_bytes(bytes)
    } else {
        u16::from_be_bytes(bytes)
    })
}
