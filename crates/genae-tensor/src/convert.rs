//! Conversions at the boundary between plain buffers / `ndarray` and tensors.

use ndarray::{ArrayBase, ArrayD, Data, Dimension};
use tch::{Device, Kind, Tensor};

use crate::{Result, TensorError};

/// An `f32` tensor on the CPU holding a copy of `array` (any dimension, any layout).
///
/// ```
/// let a = ndarray::arr2(&[[1.0f32, 2.0], [3.0, 4.0]]);
/// let t = genae_tensor::tensor_from_array(&a).unwrap();
/// assert_eq!(t.size(), vec![2, 2]);
/// let back = genae_tensor::array_from_tensor(&t).unwrap();
/// assert_eq!(back, a.into_dyn());
/// ```
pub fn tensor_from_array<S, D>(array: &ArrayBase<S, D>) -> Result<Tensor>
where
    S: Data<Elem = f32>,
    D: Dimension,
{
    Ok(Tensor::try_from(array.as_standard_layout().view())?)
}

/// An `f32` `ndarray` copy of `tensor`, wherever it lives and whatever its float kind.
pub fn array_from_tensor(tensor: &Tensor) -> Result<ArrayD<f32>> {
    let t = tensor
        .f_to_device(Device::Cpu)?
        .f_to_kind(Kind::Float)?
        .f_contiguous()?;
    Ok((&t).try_into()?)
}

/// A `[shape...]` `f32` tensor in `[0, 1]` (bytes divided by 255) on `device`, from `u8`
/// pixels as data sets store them. `shape` is the full shape, e.g. `[N, C, H, W]` or
/// `[N, C*H*W]`.
///
/// ```
/// let t = genae_tensor::tensor_from_u8_images(&[0, 255, 51, 0], &[2, 2], tch::Device::Cpu).unwrap();
/// assert_eq!(t.double_value(&[0, 1]), 1.0);
/// assert!((t.double_value(&[1, 0]) - 0.2).abs() < 1e-6);
/// ```
pub fn tensor_from_u8_images(pixels: &[u8], shape: &[i64], device: Device) -> Result<Tensor> {
    let expected: i64 = shape.iter().product();
    if shape.iter().any(|&d| d < 0) || expected as usize != pixels.len() {
        return Err(TensorError::Shape {
            what: "tensor_from_u8_images",
            detail: format!(
                "{} bytes cannot fill shape {shape:?} ({expected} values)",
                pixels.len()
            ),
        });
    }
    let bytes = Tensor::from_slice(pixels).f_view(shape)?;
    Ok(bytes.f_to_device(device)?.f_to_kind(Kind::Float)? / 255.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_a_transposed_array() {
        let _rng = crate::torch_rng_lock();
        let a = ndarray::Array::from_shape_fn((2, 3, 4), |(i, j, k)| (i * 100 + j * 10 + k) as f32);
        let view = a.view().reversed_axes(); // non-standard layout
        let t = tensor_from_array(&view).unwrap();
        assert_eq!(t.size(), vec![4, 3, 2]);
        assert_eq!(t.double_value(&[3, 2, 1]), 123.0);
        assert_eq!(array_from_tensor(&t).unwrap(), view.into_dyn().to_owned());
    }

    #[test]
    fn u8_images_with_the_wrong_size_name_the_shape() {
        let _rng = crate::torch_rng_lock();
        let err = tensor_from_u8_images(&[0; 5], &[2, 3], Device::Cpu).unwrap_err();
        assert!(err.to_string().contains("[2, 3]"), "{err}");
    }
}
