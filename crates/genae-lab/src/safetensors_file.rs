//! Named tensors as safetensors bytes, serialised in memory with the `safetensors` crate, so
//! that every file a run writes (checkpoints, model files, samples, embeddings) goes through
//! one temporary-file-then-rename path with real I/O errors ("No space left on device"),
//! rather than libtorch's writer, whose failures arrive as a debug dump of a C++ error.

use safetensors::tensor::{Dtype, TensorView};
use tch::{Device, Kind, Tensor};

use crate::error::LabError;

/// The safetensors dtype of a tch kind, when the format has one.
fn dtype(kind: Kind) -> Option<Dtype> {
    Some(match kind {
        Kind::Uint8 => Dtype::U8,
        Kind::Int8 => Dtype::I8,
        Kind::Int16 => Dtype::I16,
        Kind::Int => Dtype::I32,
        Kind::Int64 => Dtype::I64,
        Kind::Half => Dtype::F16,
        Kind::BFloat16 => Dtype::BF16,
        Kind::Float => Dtype::F32,
        Kind::Double => Dtype::F64,
        Kind::Bool => Dtype::BOOL,
        _ => return None,
    })
}

/// The bytes of a safetensors file holding `named` (copied to the CPU).
pub(crate) fn safetensors_bytes(named: &[(String, Tensor)]) -> Result<Vec<u8>, LabError> {
    let mut raw: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = Vec::with_capacity(named.len());
    for (name, tensor) in named {
        let t = tensor.f_to_device(Device::Cpu)?.f_contiguous()?;
        let kind = t.f_kind()?;
        let dtype = dtype(kind).ok_or_else(|| LabError::Run {
            path: name.into(),
            reason: format!("tensor `{name}` has kind {kind:?}, which safetensors cannot hold"),
        })?;
        let numel = t.numel();
        let mut bytes = vec![0u8; numel * kind.elt_size_in_bytes()];
        t.f_copy_data_u8(&mut bytes, numel)?;
        let shape = t.size().iter().map(|&d| d as usize).collect();
        raw.push((name.clone(), dtype, shape, bytes));
    }
    let views = raw
        .iter()
        .map(|(name, dtype, shape, bytes)| {
            TensorView::new(*dtype, shape.clone(), bytes)
                .map(|v| (name.as_str(), v))
                .map_err(|e| LabError::Run {
                    path: name.into(),
                    reason: format!("tensor `{name}`: {e}"),
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    safetensors::serialize(views, &None).map_err(|e| LabError::Run {
        path: "safetensors".into(),
        reason: format!("cannot serialise the tensors: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_read_back_through_libtorch_unchanged() {
        let named = vec![
            (
                "w".to_string(),
                Tensor::from_slice(&[1.5f32, -2.0, 3.25, 0.0, 7.0, 9.5]).view([2, 3]),
            ),
            ("d".to_string(), Tensor::from_slice(&[0.1f64, 1e300])),
            ("i".to_string(), Tensor::from_slice(&[-3i64, 5])),
            ("b".to_string(), Tensor::from_slice(&[7u8])),
        ];
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.safetensors");
        std::fs::write(&path, safetensors_bytes(&named).unwrap()).unwrap();
        let back = Tensor::read_safetensors(&path).unwrap();
        assert_eq!(back.len(), named.len());
        for (name, t) in &named {
            let (_, b) = back.iter().find(|(n, _)| n == name).unwrap();
            assert_eq!(b.kind(), t.kind(), "{name}");
            assert_eq!(b.size(), t.size(), "{name}");
            assert!(b.equal(t), "{name}");
        }
    }
}
