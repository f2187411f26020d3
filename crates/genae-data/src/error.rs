//! The error type of this crate.

/// Everything that can go wrong when building or indexing a data set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DataError {
    /// `pixels.len()` disagrees with `labels.len() * C * H * W`.
    #[error(
        "pixels has {pixels} bytes but {labels} labels x image_len {image_len} need {expected} bytes"
    )]
    LengthMismatch {
        /// Actual `pixels.len()`.
        pixels: usize,
        /// Number of labels.
        labels: usize,
        /// Bytes per image, `C * H * W`.
        image_len: usize,
        /// Bytes required, `labels * image_len`.
        expected: usize,
    },
    /// An `image_shape` with a zero dimension.
    #[error("image_shape {shape:?} has a zero dimension")]
    EmptyImageShape {
        /// The offending `[C, H, W]`.
        shape: [usize; 3],
    },
    /// A [`ShapesSpec`](crate::shapes::ShapesSpec) field below its minimum.
    #[error("ShapesSpec.{field} = {value} is invalid: it must be at least {min}")]
    InvalidSpec {
        /// Name of the field.
        field: &'static str,
        /// Its value.
        value: usize,
        /// The smallest allowed value.
        min: usize,
    },
    /// The factor grid has more combinations than fit in `usize`.
    #[error("ShapesSpec factor grid is too large: n_combinations overflows usize")]
    GridTooLarge,
    /// A factor index outside `0..count`.
    #[error("factor {factor} = {value} is out of range 0..{count}")]
    FactorOutOfRange {
        /// Name of the factor (`shape`, `scale`, `rotation`, `pos_x`, `pos_y`).
        factor: &'static str,
        /// Its value.
        value: usize,
        /// Number of values the factor can take.
        count: usize,
    },
    /// A flat grid index outside `0..n_combinations`.
    #[error("index {index} is out of range 0..{n_combinations} (n_combinations)")]
    IndexOutOfRange {
        /// The index asked for.
        index: usize,
        /// Size of the grid.
        n_combinations: usize,
    },
}
