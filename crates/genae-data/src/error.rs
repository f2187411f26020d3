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
    /// A file that could not be opened or read.
    #[error("cannot read `{path}`: {message}")]
    Io {
        /// The file or folder.
        path: std::path::PathBuf,
        /// The operating system's message.
        message: String,
    },
    /// A file whose content is not what its format requires (truncated, wrong magic number,
    /// corrupt compressed stream, wrong dimensions, image/label count mismatch, ...).
    #[error("`{path}`: {problem}")]
    BadFile {
        /// The file (or folder, for an image folder).
        path: std::path::PathBuf,
        /// What is wrong, with the numbers involved.
        problem: String,
    },
    /// A data set that is in none of the places looked in.
    #[error("data set `{name}` not found; looked in:\n{}\n{how_to_obtain}", searched.iter().map(|p| format!("  - {}", p.display())).collect::<Vec<_>>().join("\n"))]
    NotFound {
        /// The data set's name.
        name: String,
        /// Every folder looked in, in order.
        searched: Vec<std::path::PathBuf>,
        /// How to get it (from its manifest).
        how_to_obtain: String,
    },
    /// A data set name with no manifest.
    #[error("unknown data set `{name}`; known: {known}")]
    UnknownDataset {
        /// The name asked for.
        name: String,
        /// The known names, comma-separated.
        known: String,
    },
    /// A bad argument (split size, batch size, transform parameter).
    #[error("invalid `{name}`: {reason}")]
    InvalidArgument {
        /// The argument.
        name: &'static str,
        /// What was expected and what was given.
        reason: String,
    },
}

impl DataError {
    /// A [`DataError::BadFile`] for `path`.
    pub fn bad_file(path: impl Into<std::path::PathBuf>, problem: impl Into<String>) -> Self {
        Self::BadFile {
            path: path.into(),
            problem: problem.into(),
        }
    }

    /// A [`DataError::Io`] for `path`.
    pub fn io(path: impl Into<std::path::PathBuf>, error: &std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            message: error.to_string(),
        }
    }
}
