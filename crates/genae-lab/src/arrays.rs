//! Named tensors written as array files for other tools: NumPy `.npy` (one file per array)
//! and `.npz`, or safetensors. Floating tensors are written as `float32`, integer ones as
//! `int64`.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use ndarray::{ArrayD, IxDyn};
use ndarray_npy::{NpzWriter, WriteNpyExt};
use tch::{Device, Kind, Tensor};

use crate::error::LabError;
use crate::trained::ops::ArrayFile;

/// One tensor as an ndarray: `float32` or `int64`.
enum Array {
    F32(ArrayD<f32>),
    I64(ArrayD<i64>),
}

fn to_array(name: &str, t: &Tensor, path: &Path) -> Result<Array, LabError> {
    let shape: Vec<usize> = t.size().iter().map(|&d| d as usize).collect();
    let flat = t.f_to_device(Device::Cpu)?.f_contiguous()?.f_view([-1])?;
    let bad = |e: String| LabError::Run {
        path: path.to_path_buf(),
        reason: format!("array `{name}`: {e}"),
    };
    if t.is_floating_point() {
        let v =
            Vec::<f32>::try_from(flat.f_to_kind(Kind::Float)?).map_err(|e| bad(e.to_string()))?;
        Ok(Array::F32(
            ArrayD::from_shape_vec(IxDyn(&shape), v).map_err(|e| bad(e.to_string()))?,
        ))
    } else {
        let v =
            Vec::<i64>::try_from(flat.f_to_kind(Kind::Int64)?).map_err(|e| bad(e.to_string()))?;
        Ok(Array::I64(
            ArrayD::from_shape_vec(IxDyn(&shape), v).map_err(|e| bad(e.to_string()))?,
        ))
    }
}

/// A temporary name beside `path` (renamed over it once complete).
fn temporary(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".tmp-{name}"))
}

/// Writes `write` to a temporary file, then renames it to `path`.
fn atomic(path: &Path, write: impl FnOnce(File) -> Result<(), String>) -> Result<(), LabError> {
    let tmp = temporary(path);
    let file = File::create(&tmp).map_err(|e| LabError::io("creating", &tmp, e))?;
    if let Err(reason) = write(file) {
        let _ = std::fs::remove_file(&tmp);
        return Err(LabError::Run {
            path: path.to_path_buf(),
            reason: format!("writing failed: {reason}"),
        });
    }
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        LabError::io("writing", path, e)
    })
}

fn write_npy(path: &Path, array: &Array) -> Result<(), LabError> {
    atomic(path, |file| {
        let w = BufWriter::new(file);
        match array {
            Array::F32(a) => a.write_npy(w),
            Array::I64(a) => a.write_npy(w),
        }
        .map_err(|e| e.to_string())
    })
}

/// Writes `named` to `path` in `format`; for `.npy` the first array goes to `path` and each
/// other to `<stem>_<name>.npy` beside it. Returns the files written.
pub(crate) fn write_arrays(
    path: &Path,
    format: ArrayFile,
    named: &[(String, Tensor)],
) -> Result<Vec<PathBuf>, LabError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| LabError::io("creating", parent, e))?;
    }
    match format {
        ArrayFile::Safetensors => {
            let bytes = crate::safetensors_file::safetensors_bytes(named)?;
            atomic(path, |mut file| {
                use std::io::Write;
                file.write_all(&bytes)
                    .and_then(|()| file.sync_all())
                    .map_err(|e| e.to_string())
            })?;
            Ok(vec![path.to_path_buf()])
        }
        ArrayFile::Npz => {
            let arrays: Vec<(String, Array)> = named
                .iter()
                .map(|(n, t)| Ok((n.clone(), to_array(n, t, path)?)))
                .collect::<Result<_, LabError>>()?;
            atomic(path, |file| {
                let mut npz = NpzWriter::new(BufWriter::new(file));
                for (name, array) in &arrays {
                    match array {
                        Array::F32(a) => npz.add_array(name.as_str(), a),
                        Array::I64(a) => npz.add_array(name.as_str(), a),
                    }
                    .map_err(|e| e.to_string())?;
                }
                npz.finish().map(|_| ()).map_err(|e| e.to_string())
            })?;
            Ok(vec![path.to_path_buf()])
        }
        ArrayFile::Npy => {
            let stem = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let mut written = Vec::new();
            for (i, (name, t)) in named.iter().enumerate() {
                let target = if i == 0 {
                    path.to_path_buf()
                } else {
                    path.with_file_name(format!("{stem}_{name}.npy"))
                };
                write_npy(&target, &to_array(name, t, path)?)?;
                written.push(target);
            }
            Ok(written)
        }
    }
}
