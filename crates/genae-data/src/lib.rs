//! Data sets for genae as plain byte buffers (no tch dependency).
//!
//! The main data set is the procedural **shapes** set ([`shapes`]), in the
//! spirit of dSprites: binary images of a square, an ellipse or a heart at a
//! grid of scales, rotations and positions. Each image comes with the factors
//! that generated it, so disentanglement can be measured against ground truth.
//!
//! [`default_dataset`] is the embedded default: it needs no download and is
//! regenerated bit-identically on every platform from a fixed seed.
//!
//! ```
//! use genae_data::shapes::{Factors, Shape, ShapesSpec};
//!
//! let spec = ShapesSpec::small();
//! let (images, factors) = spec.generate(8, 42).unwrap();
//! assert_eq!(images.len(), 8);
//! assert_eq!(images.image_shape, [1, 32, 32]);
//! assert_eq!(images.labels[0] as usize, factors[0].shape.index());
//!
//! // Factors <-> flat grid index, in dSprites `latents_classes` order.
//! let f = Factors { shape: Shape::Heart, scale: 5, rotation: 3, pos_x: 0, pos_y: 15 };
//! let i = spec.index_of(&f).unwrap();
//! assert_eq!(spec.factors_from_index(i).unwrap(), f);
//! ```

pub mod avb_toy;
pub mod batch;
pub mod formats;
pub mod registry;
pub mod shapes;
pub mod transforms;

mod error;

pub use error::DataError;

/// A set of images stored as plain bytes, with one integer label per image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageSet {
    /// `N * C * H * W` bytes, image-major then row-major, values `0..=255`
    /// (the shapes set uses only 0 and 255).
    pub pixels: Vec<u8>,
    /// `N` labels (for shapes: the [`shapes::Shape`] index).
    pub labels: Vec<u32>,
    /// `[C, H, W]` of one image.
    pub image_shape: [usize; 3],
}

impl ImageSet {
    /// Builds a set, checking `pixels.len() == labels.len() * C * H * W` and that
    /// no dimension of `image_shape` is zero.
    pub fn new(
        pixels: Vec<u8>,
        labels: Vec<u32>,
        image_shape: [usize; 3],
    ) -> Result<Self, DataError> {
        if image_shape.contains(&0) {
            return Err(DataError::EmptyImageShape { shape: image_shape });
        }
        let image_len = image_shape.iter().product::<usize>();
        let expected = labels.len().checked_mul(image_len);
        if expected != Some(pixels.len()) {
            return Err(DataError::LengthMismatch {
                pixels: pixels.len(),
                labels: labels.len(),
                image_len,
                expected: expected.unwrap_or(usize::MAX),
            });
        }
        Ok(Self {
            pixels,
            labels,
            image_shape,
        })
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether the set holds no images.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Bytes per image, `C * H * W`.
    pub fn image_len(&self) -> usize {
        self.image_shape.iter().product()
    }

    /// Keeps the first `n` images (all of them when there are fewer).
    pub fn truncate(&mut self, n: usize) {
        let n = n.min(self.len());
        self.pixels.truncate(n * self.image_len());
        self.labels.truncate(n);
    }

    /// The bytes of image `i`. Panics if `i >= self.len()`.
    pub fn image(&self, i: usize) -> &[u8] {
        let n = self.image_len();
        &self.pixels[i * n..(i + 1) * n]
    }
}

/// A named data set with a train and a test split.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dataset {
    /// Short name, e.g. `"shapes32"`.
    pub name: String,
    /// Training split.
    pub train: ImageSet,
    /// Test split.
    pub test: ImageSet,
    /// Name of each label value, indexed by label.
    pub class_names: Vec<String>,
}

/// Number of training images in [`default_dataset`].
pub const DEFAULT_N_TRAIN: usize = 40_000;
/// Number of test images in [`default_dataset`].
pub const DEFAULT_N_TEST: usize = 2_000;
/// Seed of [`default_dataset`].
pub const DEFAULT_SEED: u64 = 0;

/// The embedded default data set, `"shapes32"`.
///
/// Shapes rendered by [`shapes::ShapesSpec::small`] (1×32×32, 6 scales,
/// 40 rotations, 16×16 positions), with [`DEFAULT_N_TRAIN`] = 40 000 training
/// and [`DEFAULT_N_TEST`] = 2 000 test images drawn uniformly from the factor grid
/// with seed [`DEFAULT_SEED`] = 0; train and test use independent ChaCha8 streams
/// of that seed (see [`shapes::shapes_dataset`]). Labels are the shape index
/// (0 square, 1 ellipse, 2 heart). Generation is deterministic and fast (well
/// under a second in release builds).
pub fn default_dataset() -> Dataset {
    shapes::shapes_dataset(
        &shapes::ShapesSpec::small(),
        DEFAULT_N_TRAIN,
        DEFAULT_N_TEST,
        DEFAULT_SEED,
    )
    .expect("the small shapes spec is valid")
}
