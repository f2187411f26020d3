//! The checks of a parsed manifest beyond its TOML schema: names, shapes, the fields and options
//! each format needs or forbids, relative file names and SHA-256 syntax. Errors name the field.

use std::fmt;
use std::path::Path;

use super::{FileSpec, Format, Manifest, SplitSpec};
use crate::DataError;

/// An error about field `field` of the manifest read from `source`.
pub(super) fn manifest_error(source: &Path, field: &str, problem: impl fmt::Display) -> DataError {
    DataError::bad_file(source, format!("field `{field}`: {problem}"))
}

fn is_sha256(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn is_relative_name(s: &str) -> bool {
    let p = Path::new(s);
    !s.is_empty()
        && p.is_relative()
        && p.components()
            .all(|c| matches!(c, std::path::Component::Normal(_)))
}

impl Manifest {
    /// Checks what the TOML schema cannot; the error names the first field at fault.
    pub(super) fn validate(&self) -> Result<(), DataError> {
        let src = self.source.as_path();
        let err = |field: &str, problem: String| Err(manifest_error(src, field, problem));
        let valid_name = !self.name.is_empty()
            && self
                .name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if !valid_name {
            return err(
                "name",
                format!(
                    "must be non-empty lowercase letters, digits, `-` or `_`, got `{}`",
                    self.name
                ),
            );
        }
        // (licence, homepage and how_to_obtain: required of shipped manifests only.)
        for (field, value) in [("description", &self.description)] {
            if value.trim().is_empty() {
                return err(field, "must not be empty".into());
            }
        }
        if self.image_shape.contains(&0) {
            return err(
                "image_shape",
                format!("has a zero dimension: {:?}", self.image_shape),
            );
        }
        if let Some(subdir) = &self.subdir {
            if !is_relative_name(subdir) {
                return err(
                    "subdir",
                    format!("must be a relative path without `..`, got `{subdir}`"),
                );
            }
        }
        if self.format.is_array_file() {
            return err(
                "format",
                format!(
                    "`{}` files are read from a path given directly (data.path), not through a \
                     manifest",
                    self.format
                ),
            );
        }
        let [c, h, w] = self.image_shape;
        let shape_ok = match self.format {
            Format::Idx => c == 1,
            Format::Cifar10 | Format::Cifar100 | Format::SvhnMat => self.image_shape == [3, 32, 32],
            Format::ImageFolder => (c == 1 || c == 3) && h == w && u32::try_from(h).is_ok(),
            Format::Npy | Format::Npz | Format::Safetensors => false,
        };
        if !shape_ok {
            let want = match self.format {
                Format::Idx => "[1, H, W]",
                Format::ImageFolder => "[1 or 3, S, S] (square)",
                _ => "[3, 32, 32]",
            };
            return err(
                "image_shape",
                format!(
                    "format `{}` decodes to {want}, got {:?}",
                    self.format, self.image_shape
                ),
            );
        }
        let o = &self.options;
        for (field, set, format) in [
            ("options.transpose", o.transpose.is_some(), Format::Idx),
            (
                "options.cifar100_labels",
                o.cifar100_labels.is_some(),
                Format::Cifar100,
            ),
            (
                "options.on_unreadable",
                o.on_unreadable.is_some(),
                Format::ImageFolder,
            ),
            (
                "options.labels_from_subfolders",
                o.labels_from_subfolders.is_some(),
                Format::ImageFolder,
            ),
        ] {
            if set && self.format != format {
                return err(
                    field,
                    format!("applies to format `{format}` only, not `{}`", self.format),
                );
            }
        }
        for (name, split) in self.splits() {
            self.validate_split(name, split)?;
        }
        Ok(())
    }

    fn validate_split(&self, name: &str, split: &SplitSpec) -> Result<(), DataError> {
        let src = self.source.as_path();
        let used: [(&str, bool); 5] = [
            ("images", split.images.is_some()),
            ("labels", split.labels.is_some()),
            ("batches", !split.batches.is_empty()),
            ("mat", split.mat.is_some()),
            ("folder", split.folder.is_some()),
        ];
        let needed: &[&str] = match self.format {
            Format::Idx => &["images", "labels"],
            Format::Cifar10 | Format::Cifar100 => &["batches"],
            Format::SvhnMat => &["mat"],
            Format::ImageFolder => &["folder"],
            Format::Npy | Format::Npz | Format::Safetensors => &[],
        };
        for (field, present) in used {
            let want = needed.contains(&field);
            if want && !present {
                return Err(manifest_error(
                    src,
                    &format!("{name}.{field}"),
                    format!("is required for format `{}`", self.format),
                ));
            }
            if !want && present {
                return Err(manifest_error(
                    src,
                    &format!("{name}.{field}"),
                    format!(
                        "does not apply to format `{}` (it uses {})",
                        self.format,
                        needed
                            .iter()
                            .map(|f| format!("`{f}`"))
                            .collect::<Vec<_>>()
                            .join(" and ")
                    ),
                ));
            }
        }
        if let Some(folder) = &split.folder {
            if !is_relative_name(folder) {
                return Err(manifest_error(
                    src,
                    &format!("{name}.folder"),
                    format!("must be a relative path without `..`, got `{folder}`"),
                ));
            }
        }
        let mut files: Vec<(String, &FileSpec)> = Vec::new();
        for (field, spec) in [
            ("images", &split.images),
            ("labels", &split.labels),
            ("mat", &split.mat),
        ] {
            if let Some(spec) = spec {
                files.push((format!("{name}.{field}"), spec));
            }
        }
        for (i, spec) in split.batches.iter().enumerate() {
            files.push((format!("{name}.batches[{i}]"), spec));
        }
        for (field, spec) in files {
            if !is_relative_name(&spec.file) {
                return Err(manifest_error(
                    src,
                    &format!("{field}.file"),
                    format!("must be a relative path without `..`, got `{}`", spec.file),
                ));
            }
            for (key, hash) in [
                ("sha256", &spec.sha256),
                ("unpacked_sha256", &spec.unpacked_sha256),
            ] {
                if let Some(hash) = hash {
                    if !is_sha256(hash) {
                        return Err(manifest_error(
                            src,
                            &format!("{field}.{key}"),
                            format!("must be 64 lowercase hex digits, got `{hash}`"),
                        ));
                    }
                }
            }
            let unpacked = spec.unpacked_size.is_some() || spec.unpacked_sha256.is_some();
            if unpacked && !spec.file.ends_with(".gz") {
                return Err(manifest_error(
                    src,
                    &format!("{field}.unpacked_size"),
                    format!("applies to `.gz` files only, not `{}`", spec.file),
                ));
            }
        }
        Ok(())
    }
}
