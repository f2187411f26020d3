//! CIFAR-10 and CIFAR-100 binary batches.
//!
//! A batch file is a sequence of fixed-size records with no header:
//!
//! - CIFAR-10 (`data_batch_1.bin`, ..., `test_batch.bin`): 1 label byte (`0..=9`) then 3072
//!   pixel bytes, 3073 bytes a record;
//! - CIFAR-100 (`train.bin`, `test.bin`): a coarse label byte (`0..=19`), a fine label byte
//!   (`0..=99`), then 3072 pixel bytes, 3074 bytes a record.
//!
//! The 3072 pixels are the red plane, then the green, then the blue, each 32×32 row-major: that
//! is already the `[C, H, W]` layout of [`ImageSet`], so they are copied as they are.
//!
//! A file that is empty, whose length is not a whole number of records, or that holds a label
//! out of range is rejected with an error naming the file and the numbers involved.

use std::path::{Path, PathBuf};

use crate::{DataError, ImageSet};

/// Pixel bytes of one CIFAR image (3 × 32 × 32).
pub const CIFAR_IMAGE_LEN: usize = 3 * 32 * 32;

/// Which CIFAR layout (and, for CIFAR-100, which label).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CifarVariant {
    /// 1 label byte + 3072 pixel bytes per record.
    Cifar10,
    /// 2 label bytes (coarse, fine) + 3072 pixel bytes; keep the fine (100-class) label.
    Cifar100Fine,
    /// As above, keeping the coarse (20-superclass) label.
    Cifar100Coarse,
}

impl CifarVariant {
    /// Label bytes at the start of each record: 1 for CIFAR-10, 2 for CIFAR-100.
    pub fn label_bytes(self) -> usize {
        match self {
            Self::Cifar10 => 1,
            Self::Cifar100Fine | Self::Cifar100Coarse => 2,
        }
    }

    /// Bytes per record: 3073 for CIFAR-10, 3074 for CIFAR-100.
    pub fn record_len(self) -> usize {
        self.label_bytes() + CIFAR_IMAGE_LEN
    }

    /// Number of classes of the label kept: 10, 100 (fine) or 20 (coarse).
    pub fn num_classes(self) -> usize {
        match self {
            Self::Cifar10 => 10,
            Self::Cifar100Fine => 100,
            Self::Cifar100Coarse => 20,
        }
    }

    /// `"CIFAR-10"` or `"CIFAR-100"`, for messages.
    fn name(self) -> &'static str {
        match self {
            Self::Cifar10 => "CIFAR-10",
            Self::Cifar100Fine | Self::Cifar100Coarse => "CIFAR-100",
        }
    }

    /// What a record holds, for messages.
    fn record_description(self) -> &'static str {
        match self {
            Self::Cifar10 => "1 label byte + 3072 pixels",
            Self::Cifar100Fine | Self::Cifar100Coarse => {
                "1 coarse label byte + 1 fine label byte + 3072 pixels"
            }
        }
    }
}

/// Decodes one batch file's bytes; `path` is only used in error messages.
pub fn parse_cifar(
    bytes: &[u8],
    variant: CifarVariant,
    path: &Path,
) -> Result<ImageSet, DataError> {
    let (pixels, labels) = decode_records(bytes, variant, path)?;
    ImageSet::new(pixels, labels, [3, 32, 32])
}

/// Reads and concatenates batch files, in the order given, into one `[3, 32, 32]` set.
pub fn load_cifar(paths: &[PathBuf], variant: CifarVariant) -> Result<ImageSet, DataError> {
    if paths.is_empty() {
        return Err(DataError::InvalidArgument {
            name: "paths",
            reason: format!("no {} batch files given", variant.name()),
        });
    }
    let mut pixels = Vec::new();
    let mut labels = Vec::new();
    for path in paths {
        let bytes = std::fs::read(path).map_err(|err| DataError::io(path, &err))?;
        let (p, l) = decode_records(&bytes, variant, path)?;
        if pixels.is_empty() {
            pixels = p;
        } else {
            pixels.extend_from_slice(&p);
        }
        labels.extend(l);
    }
    ImageSet::new(pixels, labels, [3, 32, 32])
}

/// Checks the length and every label, and splits the records into pixels and kept labels.
fn decode_records(
    bytes: &[u8],
    variant: CifarVariant,
    path: &Path,
) -> Result<(Vec<u8>, Vec<u32>), DataError> {
    let record_len = variant.record_len();
    let name = variant.name();
    if bytes.is_empty() {
        return Err(DataError::bad_file(
            path,
            format!(
                "empty file: a {name} batch is a sequence of {record_len}-byte records ({})",
                variant.record_description()
            ),
        ));
    }
    let n = bytes.len() / record_len;
    let left_over = bytes.len() % record_len;
    if left_over != 0 {
        return Err(DataError::bad_file(
            path,
            format!(
                "length {} is not a multiple of the {name} record size {record_len} ({}): {n} \
                 whole record{} and {left_over} bytes left over (truncated, or not a {name} file)",
                bytes.len(),
                variant.record_description(),
                if n == 1 { "" } else { "s" }
            ),
        ));
    }
    let mut pixels = Vec::with_capacity(n * CIFAR_IMAGE_LEN);
    let mut labels = Vec::with_capacity(n);
    for (i, record) in bytes.chunks_exact(record_len).enumerate() {
        let (label_bytes, image) = record.split_at(variant.label_bytes());
        let label = match (variant, label_bytes) {
            (CifarVariant::Cifar10, &[label]) => {
                check_label(label, 10, "CIFAR-10 label", i, i * record_len, path)?;
                label
            }
            (_, &[coarse, fine]) => {
                check_label(
                    coarse,
                    20,
                    "CIFAR-100 coarse label",
                    i,
                    i * record_len,
                    path,
                )?;
                check_label(
                    fine,
                    100,
                    "CIFAR-100 fine label",
                    i,
                    i * record_len + 1,
                    path,
                )?;
                if variant == CifarVariant::Cifar100Coarse {
                    coarse
                } else {
                    fine
                }
            }
            // `label_bytes()` is 1 for CIFAR-10 and 2 otherwise, so this is unreachable; report
            // it as a bad record rather than panicking.
            _ => {
                return Err(DataError::bad_file(
                    path,
                    format!("record {i}: cannot read its label bytes"),
                ))
            }
        };
        labels.push(u32::from(label));
        pixels.extend_from_slice(image);
    }
    Ok((pixels, labels))
}

/// An error if `label >= classes`; `offset` is the label byte's position in the file.
fn check_label(
    label: u8,
    classes: u8,
    what: &str,
    record: usize,
    offset: usize,
    path: &Path,
) -> Result<(), DataError> {
    if label < classes {
        Ok(())
    } else {
        Err(DataError::bad_file(
            path,
            format!(
                "record {record} (byte {offset}) has {what} {label}: expected 0..={}",
                classes - 1
            ),
        ))
    }
}
