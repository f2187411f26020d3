//! Images stored as arrays: NumPy `.npy` / `.npz` files (read with `ndarray-npy`) and
//! safetensors files (read with `safetensors`).
//!
//! **Images**: `uint8` (0–255) or `float32` / `float64` in `[0, 1]` (converted to bytes by
//! `round(255·x)`), shaped `N×H×W` (grey), `N×C×H×W` or `N×H×W×C` with `C ∈ {1, 3}` (the
//! channel axis is found from the shape; when both readings fit, [`ArrayLayout`] decides).
//! **Labels**: an optional integer array of length `N`, non-negative. **Names** inside an
//! `.npz` or safetensors file: `x_train` / `y_train` / `x_test` / `y_test` (the Keras
//! convention), `train` / `train_labels` / `test` / `test_labels`, or `images` / `labels` (one
//! split). A `.npy` file holds one split; its labels are `<stem>_labels.npy` or `labels.npy`
//! beside it when there.

use std::collections::BTreeMap;
use std::io::Cursor;
use std::path::{Path, PathBuf};

use ndarray::{ArrayD, IxDyn};
use ndarray_npy::{ReadNpyError, ReadNpyExt, ReadableElement};

use super::npy_header::{check_declared_size, parse_npy_header, read_npz_members};

use crate::{DataError, ImageSet};

/// Where the channel axis of a 4-d image array is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ArrayLayout {
    /// From the shape: the axis (1 or 3) of size 1 or 3 (an error when both are).
    #[default]
    Auto,
    /// `N×C×H×W` (PyTorch).
    Nchw,
    /// `N×H×W×C` (NumPy, TensorFlow).
    Nhwc,
}

impl std::str::FromStr for ArrayLayout {
    type Err = String;

    /// `auto`, `nchw` or `nhwc`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(Self::Auto),
            "nchw" => Ok(Self::Nchw),
            "nhwc" => Ok(Self::Nhwc),
            other => Err(format!("expected auto, nchw or nhwc, got `{other}`")),
        }
    }
}

/// An array as read, before it is taken as images or labels.
#[derive(Clone, Debug, PartialEq)]
pub enum RawArray {
    /// `uint8` values.
    U8(ArrayD<u8>),
    /// Floating values (`float32` or `float64`), widened.
    Float(ArrayD<f64>),
    /// Integer values of another width, widened.
    Int(ArrayD<i64>),
    /// Any other type, by name.
    Other(String, Vec<usize>),
}

impl RawArray {
    /// The shape.
    pub fn shape(&self) -> Vec<usize> {
        match self {
            Self::U8(a) => a.shape().to_vec(),
            Self::Float(a) => a.shape().to_vec(),
            Self::Int(a) => a.shape().to_vec(),
            Self::Other(_, s) => s.clone(),
        }
    }

    fn dtype(&self) -> &str {
        match self {
            Self::U8(_) => "uint8",
            Self::Float(_) => "float",
            Self::Int(_) => "integer",
            Self::Other(t, _) => t,
        }
    }
}

/// The element types tried, in order.
#[derive(Clone, Copy, Debug)]
enum ElementKind {
    U8,
    F32,
    F64,
    I64,
    I32,
    I16,
    I8,
    U16,
    U32,
    U64,
}

const KINDS: [ElementKind; 10] = [
    ElementKind::U8,
    ElementKind::F32,
    ElementKind::F64,
    ElementKind::I64,
    ElementKind::I32,
    ElementKind::I16,
    ElementKind::I8,
    ElementKind::U16,
    ElementKind::U32,
    ElementKind::U64,
];

fn widen<T: Copy, U>(a: ArrayD<T>, f: impl Fn(T) -> U) -> ArrayD<U> {
    a.mapv(f)
}

/// Reads one `.npy` payload from `bytes`, trying each supported element type.
fn npy_from_bytes(bytes: &[u8]) -> Result<RawArray, String> {
    let header = parse_npy_header(bytes)?;
    let available = bytes.len().saturating_sub(header.data_offset) as u64;
    check_declared_size(&header, available)?;
    fn one<T: ReadableElement>(bytes: &[u8]) -> Result<Option<ArrayD<T>>, String> {
        match ArrayD::<T>::read_npy(Cursor::new(bytes)) {
            Ok(a) => Ok(Some(a)),
            Err(ReadNpyError::WrongDescriptor(_)) => Ok(None),
            Err(e) => Err(e.to_string()),
        }
    }
    for kind in KINDS {
        let found = match kind {
            ElementKind::U8 => one::<u8>(bytes)?.map(RawArray::U8),
            ElementKind::F32 => one::<f32>(bytes)?.map(|a| RawArray::Float(widen(a, f64::from))),
            ElementKind::F64 => one::<f64>(bytes)?.map(RawArray::Float),
            ElementKind::I64 => one::<i64>(bytes)?.map(RawArray::Int),
            ElementKind::I32 => one::<i32>(bytes)?.map(|a| RawArray::Int(widen(a, i64::from))),
            ElementKind::I16 => one::<i16>(bytes)?.map(|a| RawArray::Int(widen(a, i64::from))),
            ElementKind::I8 => one::<i8>(bytes)?.map(|a| RawArray::Int(widen(a, i64::from))),
            ElementKind::U16 => one::<u16>(bytes)?.map(|a| RawArray::Int(widen(a, i64::from))),
            ElementKind::U32 => one::<u32>(bytes)?.map(|a| RawArray::Int(widen(a, i64::from))),
            ElementKind::U64 => one::<u64>(bytes)?
                .map(|a| RawArray::Int(widen(a, |v| i64::try_from(v).unwrap_or(-1)))),
        };
        if let Some(array) = found {
            return Ok(array);
        }
    }
    Ok(RawArray::Other(
        format!("dtype {}", header.descr),
        header.shape,
    ))
}

fn read_bytes(path: &Path) -> Result<Vec<u8>, DataError> {
    if path.is_dir() {
        return Err(DataError::bad_file(path, "is a folder, expected a file"));
    }
    std::fs::read(path).map_err(|e| DataError::io(path, &e))
}

/// Decodes the bytes of one `.npy` file (`path` names it in errors). The header's declared
/// size is checked against the bytes there before the array is allocated.
pub fn parse_npy(bytes: &[u8], path: &Path) -> Result<RawArray, DataError> {
    if !bytes.starts_with(b"\x93NUMPY") {
        return Err(DataError::bad_file(
            path,
            "not a NumPy .npy file (no \\x93NUMPY magic)",
        ));
    }
    npy_from_bytes(bytes)
        .map_err(|e| DataError::bad_file(path, format!("unreadable .npy file: {e}")))
}

/// The arrays of a `.npy` file: `images` (and `labels` from a sibling file).
pub fn read_npy(path: &Path) -> Result<BTreeMap<String, RawArray>, DataError> {
    let images = parse_npy(&read_bytes(path)?, path)?;
    let mut arrays = BTreeMap::from([("images".to_string(), images)]);
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let siblings: Vec<PathBuf> = [format!("{stem}_labels.npy"), "labels.npy".to_string()]
        .iter()
        .map(|name| path.with_file_name(name))
        .filter(|p| p.as_path() != path && p.is_file())
        .collect();
    if let Some(labels_path) = siblings.first() {
        let labels = parse_npy(&read_bytes(labels_path)?, labels_path)?;
        arrays.insert("labels".to_string(), labels);
    }
    Ok(arrays)
}

/// The arrays of a `.npz` file, by name (without `.npy`).
pub fn read_npz(path: &Path) -> Result<BTreeMap<String, RawArray>, DataError> {
    parse_npz(&read_bytes(path)?, path)
}

/// Decodes the bytes of an `.npz` archive (`path` names it in errors): each member is
/// decompressed only as far as its `.npy` header declares.
pub fn parse_npz(bytes: &[u8], path: &Path) -> Result<BTreeMap<String, RawArray>, DataError> {
    if !bytes.starts_with(b"PK") {
        return Err(DataError::bad_file(
            path,
            "not a NumPy .npz file (not a zip archive)",
        ));
    }
    let members = read_npz_members(bytes)
        .map_err(|e| DataError::bad_file(path, format!("unreadable .npz file: {e}")))?;
    let mut arrays = BTreeMap::new();
    for (name, data) in members {
        let key = name.strip_suffix(".npy").unwrap_or(&name).to_string();
        let array = npy_from_bytes(&data).map_err(|e| {
            DataError::bad_file(path, format!("unreadable .npz file: array `{key}`: {e}"))
        })?;
        arrays.insert(key, array);
    }
    Ok(arrays)
}

/// The tensors of a safetensors file, by name.
pub fn read_safetensors(path: &Path) -> Result<BTreeMap<String, RawArray>, DataError> {
    parse_safetensors(&read_bytes(path)?, path)
}

/// Decodes the bytes of a safetensors file (`path` names it in errors).
pub fn parse_safetensors(
    bytes: &[u8],
    path: &Path,
) -> Result<BTreeMap<String, RawArray>, DataError> {
    use safetensors::tensor::Dtype;
    let tensors = safetensors::SafeTensors::deserialize(bytes)
        .map_err(|e| DataError::bad_file(path, format!("not a readable safetensors file ({e})")))?;
    let mut arrays = BTreeMap::new();
    for (name, view) in tensors.tensors() {
        let shape = view.shape().to_vec();
        let data = view.data();
        let bad = |e: String| DataError::bad_file(path, format!("tensor `{name}`: {e}"));
        let make = |values: Vec<f64>| {
            ArrayD::from_shape_vec(IxDyn(&shape), values).map_err(|e| bad(e.to_string()))
        };
        let array = match view.dtype() {
            Dtype::U8 => RawArray::U8(
                ArrayD::from_shape_vec(IxDyn(&shape), data.to_vec())
                    .map_err(|e| bad(e.to_string()))?,
            ),
            Dtype::F32 => RawArray::Float(make(
                data.chunks_exact(4)
                    .map(|c| f64::from(f32::from_le_bytes([c[0], c[1], c[2], c[3]])))
                    .collect(),
            )?),
            Dtype::F64 => RawArray::Float(make(
                data.chunks_exact(8)
                    .map(|c| {
                        let mut b = [0u8; 8];
                        b.copy_from_slice(c);
                        f64::from_le_bytes(b)
                    })
                    .collect(),
            )?),
            Dtype::I64 | Dtype::I32 | Dtype::I16 | Dtype::I8 => {
                let width = match view.dtype() {
                    Dtype::I64 => 8,
                    Dtype::I32 => 4,
                    Dtype::I16 => 2,
                    _ => 1,
                };
                let values: Vec<i64> = data
                    .chunks_exact(width)
                    .map(|c| {
                        let mut b = [0u8; 8];
                        b[..width].copy_from_slice(c);
                        // Sign-extend from the top byte of the value.
                        if c[width - 1] & 0x80 != 0 {
                            for byte in b.iter_mut().skip(width) {
                                *byte = 0xff;
                            }
                        }
                        i64::from_le_bytes(b)
                    })
                    .collect();
                RawArray::Int(
                    ArrayD::from_shape_vec(IxDyn(&shape), values)
                        .map_err(|e| bad(e.to_string()))?,
                )
            }
            other => RawArray::Other(format!("dtype {other:?}"), shape),
        };
        arrays.insert(name.to_string(), array);
    }
    Ok(arrays)
}

/// Images `[N, C, H, W]` bytes from an image array; `what` names it in errors.
pub fn images_from_array(
    array: &RawArray,
    layout: ArrayLayout,
    path: &Path,
    what: &str,
) -> Result<(Vec<u8>, [usize; 3]), DataError> {
    let shape = array.shape();
    let bad = |problem: String| DataError::bad_file(path, format!("array `{what}`: {problem}"));
    let is_channels = |c: usize| c == 1 || c == 3;
    // (n, c, h, w) and whether the channel axis is last.
    let (dims, channels_last) = match (shape.as_slice(), layout) {
        ([n, h, w], _) => ([*n, 1, *h, *w], false),
        ([n, c, h, w], ArrayLayout::Nchw) => ([*n, *c, *h, *w], false),
        ([n, h, w, c], ArrayLayout::Nhwc) => ([*n, *c, *h, *w], true),
        ([n, a, h, b], ArrayLayout::Auto) => match (is_channels(*a), is_channels(*b)) {
            (true, false) => ([*n, *a, *h, *b], false),
            (false, true) => ([*n, *b, *a, *h], true),
            (true, true) => {
                return Err(bad(format!(
                    "shape {shape:?} reads as N×C×H×W or N×H×W×C; set data.layout \
                     (\"nchw\" or \"nhwc\")"
                )))
            }
            (false, false) => {
                return Err(bad(format!(
                    "shape {shape:?} has no channel axis of size 1 or 3 (expected N×H×W, \
                     N×C×H×W or N×H×W×C)"
                )))
            }
        },
        _ => {
            return Err(bad(format!(
                "shape {shape:?}: expected N×H×W, N×C×H×W or N×H×W×C images"
            )))
        }
    };
    let [n, c, h, w] = dims;
    if !is_channels(c) {
        return Err(bad(format!(
            "{c} channels in shape {shape:?}: expected 1 (grey) or 3 (RGB)"
        )));
    }
    if n == 0 || h == 0 || w == 0 {
        return Err(bad(format!("shape {shape:?} holds no images")));
    }
    let bytes: Vec<u8> = match array {
        RawArray::U8(a) => a.iter().copied().collect(),
        RawArray::Float(a) => {
            if let Some((i, v)) = a
                .iter()
                .enumerate()
                .find(|(_, v)| !(v.is_finite() && (0.0..=1.0).contains(*v)))
            {
                return Err(bad(format!(
                    "value {v} at flat index {i}: float images must be finite and in [0, 1] \
                     (or store uint8 0–255)"
                )));
            }
            a.iter().map(|v| (v * 255.0).round() as u8).collect()
        }
        other => {
            return Err(bad(format!(
                "{} images: expected uint8 (0–255) or float32/float64 (0–1)",
                other.dtype()
            )))
        }
    };
    let pixels = if channels_last && c > 1 {
        // N×H×W×C → N×C×H×W.
        let mut out = vec![0u8; bytes.len()];
        for i in 0..n {
            for y in 0..h {
                for x in 0..w {
                    for ch in 0..c {
                        out[((i * c + ch) * h + y) * w + x] = bytes[((i * h + y) * w + x) * c + ch];
                    }
                }
            }
        }
        out
    } else {
        bytes
    };
    Ok((pixels, [c, h, w]))
}

/// Labels from an integer array of length `n`.
pub fn labels_from_array(
    array: &RawArray,
    n: usize,
    path: &Path,
    what: &str,
) -> Result<Vec<u32>, DataError> {
    let bad = |problem: String| DataError::bad_file(path, format!("array `{what}`: {problem}"));
    let shape = array.shape();
    let flat_len: usize = shape.iter().product();
    if !(shape.len() == 1 || (shape.len() == 2 && shape[1] == 1)) {
        return Err(bad(format!(
            "shape {shape:?}: expected one label per image, [N]"
        )));
    }
    if flat_len != n {
        return Err(bad(format!("{flat_len} labels for {n} images")));
    }
    let values: Vec<i64> = match array {
        RawArray::U8(a) => a.iter().map(|&v| i64::from(v)).collect(),
        RawArray::Int(a) => a.iter().copied().collect(),
        other => {
            return Err(bad(format!(
                "{} labels: expected an integer type",
                other.dtype()
            )))
        }
    };
    values
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            u32::try_from(v).map_err(|_| {
                bad(format!(
                    "label {v} at index {i}: expected 0 ..= {}",
                    u32::MAX
                ))
            })
        })
        .collect()
}

/// The splits in a file's arrays: `(split name, images key, labels key)`.
fn split_keys(arrays: &BTreeMap<String, RawArray>) -> Vec<(&'static str, String, Option<String>)> {
    let has = |k: &str| arrays.contains_key(k);
    let label = |k: &str| has(k).then(|| k.to_string());
    let mut out = Vec::new();
    for (split, images, labels) in [
        ("train", "x_train", "y_train"),
        ("test", "x_test", "y_test"),
        ("train", "train", "train_labels"),
        ("test", "test", "test_labels"),
        ("train", "images", "labels"),
    ] {
        if has(images) && !out.iter().any(|(s, _, _)| *s == split) {
            out.push((split, images.to_string(), label(labels)));
        }
    }
    out
}

/// The train and test sets (test possibly empty) of an array file's arrays.
pub fn image_sets(
    arrays: &BTreeMap<String, RawArray>,
    layout: ArrayLayout,
    path: &Path,
) -> Result<(ImageSet, Option<ImageSet>), DataError> {
    let splits = split_keys(arrays);
    if splits.is_empty() {
        let names: Vec<&str> = arrays.keys().map(String::as_str).collect();
        return Err(DataError::bad_file(
            path,
            format!(
                "holds arrays {names:?}; expected `x_train` (and `y_train`, `x_test`, \
                 `y_test`), `train` / `test` (with `train_labels` / `test_labels`), or \
                 `images` (with `labels`)"
            ),
        ));
    }
    let mut train = None;
    let mut test = None;
    for (split, images_key, labels_key) in splits {
        let (pixels, shape) = images_from_array(&arrays[&images_key], layout, path, &images_key)?;
        let n = pixels.len() / shape.iter().product::<usize>();
        let labels = match &labels_key {
            Some(k) => labels_from_array(&arrays[k], n, path, k)?,
            None => vec![0; n],
        };
        let set = ImageSet::new(pixels, labels, shape)?;
        if split == "train" {
            train = Some(set);
        } else {
            test = Some(set);
        }
    }
    let train = train.ok_or_else(|| {
        DataError::bad_file(
            path,
            "has a test split but no training images (`x_train`, `train` or `images`)",
        )
    })?;
    if let Some(t) = &test {
        if t.image_shape != train.image_shape {
            return Err(DataError::bad_file(
                path,
                format!(
                    "train images are {:?} but test images {:?} (C, H, W)",
                    train.image_shape, t.image_shape
                ),
            ));
        }
    }
    Ok((train, test))
}
