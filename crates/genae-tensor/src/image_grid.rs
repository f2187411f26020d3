//! Writing a batch of images as one PNG grid.

use std::path::{Path, PathBuf};

use tch::{Device, Kind, Tensor};

use crate::{Result, TensorError};

/// Pixels of padding between and around grid cells.
const PAD: usize = 2;
/// Grey level of the padding, so binary images stay distinguishable from the frame.
const PAD_LEVEL: u8 = 128;
/// Images smaller than this many pixels on their longer side are enlarged (nearest neighbour,
/// by an integer factor) so that small images stay readable.
const MIN_CELL: usize = 64;

/// Writes `images` (`[N, C, H, W]`, `C` = 1 or 3, values in `[0, 1]`, clamped) as a PNG grid
/// with `ncol` images per row. Images smaller than 64 pixels are enlarged by the largest
/// integer factor that keeps them within 64 pixels (nearest neighbour). The file is written to a temporary name and renamed, so a reader
/// never sees a half-written image.
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("grid.png");
/// let images = tch::Tensor::rand([6, 1, 8, 8], (tch::Kind::Float, tch::Device::Cpu));
/// genae_tensor::save_image_grid(&images, 3, &path).unwrap();
/// assert!(path.exists());
/// ```
pub fn save_image_grid(images: &Tensor, ncol: usize, path: &Path) -> Result<()> {
    let size = images.size();
    let shape_err = |detail: String| TensorError::Shape {
        what: "save_image_grid",
        detail,
    };
    if size.len() != 4 || !(size[1] == 1 || size[1] == 3) || size[0] == 0 || ncol == 0 {
        return Err(shape_err(format!(
            "expected [N>0, 1|3, H, W] images and ncol > 0, got {size:?} and ncol = {ncol}"
        )));
    }
    let (n, c, h, w) = (
        size[0] as usize,
        size[1] as usize,
        size[2] as usize,
        size[3] as usize,
    );
    let bytes: Vec<u8> = {
        let t = images
            .f_detach()?
            .f_to_device(Device::Cpu)?
            .f_to_kind(Kind::Float)?
            .f_clamp(0.0, 1.0)?
            .f_mul_scalar(255.0)?
            .f_round()?
            .f_to_kind(Kind::Uint8)?
            .f_permute([0, 2, 3, 1])? // N, H, W, C
            .f_contiguous()?
            .f_view([-1])?;
        Vec::<u8>::try_from(&t)?
    };
    let zoom = (MIN_CELL / h.max(w)).max(1);
    let (cell_h, cell_w) = (h * zoom, w * zoom);
    let ncol = ncol.min(n);
    let nrow = n.div_ceil(ncol);
    let width = ncol * (cell_w + PAD) + PAD;
    let height = nrow * (cell_h + PAD) + PAD;
    let mut canvas = vec![PAD_LEVEL; width * height * 3];
    for (index, image) in bytes.chunks_exact(h * w * c).enumerate() {
        let (row, col) = (index / ncol, index % ncol);
        for y in 0..cell_h {
            for x in 0..cell_w {
                let dst =
                    ((PAD + row * (cell_h + PAD) + y) * width + PAD + col * (cell_w + PAD) + x) * 3;
                let src = ((y / zoom) * w + x / zoom) * c;
                for channel in 0..3 {
                    canvas[dst + channel] = image[src + if c == 3 { channel } else { 0 }];
                }
            }
        }
    }
    let tmp = temporary_sibling(path);
    let write = image::save_buffer_with_format(
        &tmp,
        &canvas,
        width as u32,
        height as u32,
        image::ExtendedColorType::Rgb8,
        image::ImageFormat::Png,
    );
    if let Err(source) = write {
        let _ = std::fs::remove_file(&tmp);
        return Err(TensorError::Image {
            path: path.to_path_buf(),
            source,
        });
    }
    std::fs::rename(&tmp, path).map_err(|source| TensorError::Io {
        action: "renaming the finished image to",
        path: path.to_path_buf(),
        source,
    })
}

/// `dir/.name.tmp` next to `path`.
fn temporary_sibling(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_has_the_expected_size_and_pixels() {
        let _rng = crate::torch_rng_lock();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("g.png");
        // Five 4x3 images (enlarged 16 times to 64x48), the k-th filled with k/4.
        let images = Tensor::arange(5, (Kind::Float, Device::Cpu)).view([5, 1, 1, 1]) / 4.0;
        let images = images.expand([5, 1, 4, 3], false);
        save_image_grid(&images, 2, &path).unwrap();
        let png = image::open(&path).unwrap().to_rgb8();
        let (cell_w, cell_h) = (48 + PAD as u32, 64 + PAD as u32);
        assert_eq!(png.dimensions(), (2 * cell_w + 2, 3 * cell_h + 2));
        // Image 3 sits at row 1, column 1; its value is 3/4 → 191.
        assert_eq!(png.get_pixel(2 + cell_w, 2 + cell_h)[0], 191);
        assert_eq!(
            png.get_pixel(2 + 2 * cell_w - 3, 2 + 2 * cell_h - 3)[0],
            191
        );
        assert_eq!(png.get_pixel(0, 0)[0], PAD_LEVEL);
        assert!(!dir.path().join(".g.png.tmp").exists());
    }

    #[test]
    fn rejects_a_flat_batch() {
        let _rng = crate::torch_rng_lock();
        let err = save_image_grid(
            &Tensor::zeros([4, 784], (Kind::Float, Device::Cpu)),
            2,
            Path::new("/nonexistent/x.png"),
        )
        .unwrap_err();
        assert!(err.to_string().contains("[4, 784]"));
    }
}
