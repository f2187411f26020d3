//! Reports on data sets: per-split statistics and checksums for `genae dataset info`
//! ([`info`], [`DatasetInfo`]) and where each registry data set is for `genae dataset list`
//! ([`list`], [`ListEntry`]).

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use super::detect::{path_label, resolve_path, PathSource};
use super::load::DecodedSplit;
use super::manifest::parse_embedded;
use super::{
    manifest, sha256_file, verify, CheckStatus, FileCheck, Format, Manifest, SearchRoots,
    EMBEDDED_MANIFESTS,
};
use crate::{DataError, ImageSet};

/// Statistics of one decoded split.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SplitInfo {
    /// `train` or `test`.
    pub name: String,
    /// Number of images.
    pub count: usize,
    /// `[C, H, W]`.
    pub image_shape: [usize; 3],
    /// Smallest pixel value (0 for an empty split).
    pub pixel_min: u8,
    /// Largest pixel value (0 for an empty split).
    pub pixel_max: u8,
    /// `(label, number of images)`, by increasing label, labels with no image left out.
    pub label_histogram: Vec<(u32, usize)>,
}

impl SplitInfo {
    /// Counts, pixel range and label histogram of `set`.
    pub fn of(name: &str, set: &ImageSet) -> SplitInfo {
        let (mut lo, mut hi) = (u8::MAX, u8::MIN);
        for &p in &set.pixels {
            lo = lo.min(p);
            hi = hi.max(p);
        }
        if set.pixels.is_empty() {
            (lo, hi) = (0, 0);
        }
        let mut histogram: BTreeMap<u32, usize> = BTreeMap::new();
        for &l in &set.labels {
            *histogram.entry(l).or_default() += 1;
        }
        SplitInfo {
            name: name.to_string(),
            count: set.len(),
            image_shape: set.image_shape,
            pixel_min: lo,
            pixel_max: hi,
            label_histogram: histogram.into_iter().collect(),
        }
    }
}

/// What `genae dataset info` reports; its `Display` is the human-readable report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DatasetInfo {
    /// The registry name, or the file or folder name of a path.
    pub name: String,
    /// The manifest's description (empty for a detected path).
    pub description: String,
    /// The format decoded.
    pub format: Format,
    /// The folder (or file) read.
    pub location: PathBuf,
    /// Name of each label value (may be empty).
    pub class_names: Vec<String>,
    /// The splits decoded, train first.
    pub splits: Vec<SplitInfo>,
    /// Each file against the manifest (for a detected path: sizes and SHA-256, `NotListed`).
    pub checksums: Vec<FileCheck>,
    /// Remarks: a split not distributed, files skipped, a guessed format.
    pub notes: Vec<String>,
}

fn decoded_infos(decoded: &[DecodedSplit], notes: &mut Vec<String>) -> Vec<SplitInfo> {
    decoded
        .iter()
        .map(|d| {
            for (path, why) in &d.skipped {
                notes.push(format!("{}: skipped {}: {why}", d.name, path.display()));
            }
            SplitInfo::of(d.name, &d.set)
        })
        .collect()
}

/// Decodes data set `manifest` from `dir` and reports on it, checksums included.
pub fn info_from_dir(manifest: &Manifest, dir: &Path) -> Result<DatasetInfo, DataError> {
    info_known(manifest, dir, None)
}

fn info_known(
    manifest: &Manifest,
    dir: &Path,
    checks: Option<Vec<FileCheck>>,
) -> Result<DatasetInfo, DataError> {
    let plan = manifest.plan(dir)?;
    let decoded = plan.decode()?;
    let mut notes = Vec::new();
    let splits = decoded_infos(&decoded, &mut notes);
    if manifest.test.is_none() {
        notes.push(
            "no test split is distributed: the data layer carves one out of train".to_string(),
        );
    }
    Ok(DatasetInfo {
        name: manifest.name.clone(),
        description: manifest.description.clone(),
        format: manifest.format,
        location: dir.to_path_buf(),
        class_names: plan.class_names(&decoded),
        splits,
        checksums: checks.unwrap_or_else(|| verify(manifest, dir)),
        notes,
    })
}

/// Reports on a folder or file given directly (see [`load_path`](super::load_path) for how it is read).
pub fn info_path(path: &Path) -> Result<DatasetInfo, DataError> {
    let plan = match resolve_path(path)? {
        PathSource::Known {
            manifest,
            dir,
            checks,
        } => return info_known(&manifest, &dir, checks),
        PathSource::Detected(plan) => plan,
    };
    let decoded = plan.decode()?;
    let mut notes = vec![format!(
        "format detected from the file names{}; no manifest to check against",
        if plan.format == Format::ImageFolder {
            format!(
                " (read as {s}×{s} RGB centre crops{})",
                if plan.folder.labels_from_subfolders {
                    ", labelled by subfolder"
                } else {
                    ""
                },
                s = plan.folder.size
            )
        } else {
            String::new()
        }
    )];
    let splits = decoded_infos(&decoded, &mut notes);
    let mut checksums = Vec::new();
    if plan.format != Format::ImageFolder {
        for split in &plan.splits {
            for file in split.inputs.files() {
                let (size, sha) = match sha256_file(&file) {
                    Ok((s, h)) => (Some(s), Some(h)),
                    Err(_) => (None, None),
                };
                checksums.push(FileCheck {
                    file,
                    expected_size: None,
                    actual_size: size,
                    expected_sha256: None,
                    actual_sha256: sha,
                    unpacked: false,
                    status: CheckStatus::NotListed,
                    note: None,
                });
            }
        }
    }
    Ok(DatasetInfo {
        name: path_label(path),
        description: String::new(),
        format: plan.format,
        location: plan.location.clone(),
        class_names: plan.class_names(&decoded),
        splits,
        checksums,
        notes,
    })
}

/// [`info`] with the given roots: a registry name is looked up in `roots`; anything else is
/// taken as a path ([`info_path`]).
pub fn info_with(name_or_path: &str, roots: &SearchRoots) -> Result<DatasetInfo, DataError> {
    match manifest(name_or_path) {
        Ok(m) => info_from_dir(&m, &roots.locate(&m)?),
        Err(unknown @ DataError::UnknownDataset { .. }) => {
            let path = Path::new(name_or_path);
            if path.exists() {
                info_path(path)
            } else {
                Err(unknown)
            }
        }
        Err(e) => Err(e),
    }
}

/// Reports on a registry data set (found as [`locate`](super::locate) does) or on a folder or file given
/// directly: counts, shape, pixel range and label histogram per split, and checksums.
pub fn info(name_or_path: &str, explicit_dir: Option<&Path>) -> Result<DatasetInfo, DataError> {
    info_with(name_or_path, &SearchRoots::from_env(explicit_dir))
}

fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn short_hash(h: &str) -> &str {
    &h[..h.len().min(12)]
}

const KEY_WIDTH: usize = 11;
const LINE_WIDTH: usize = 100;

fn write_wrapped(
    f: &mut fmt::Formatter<'_>,
    first: &str,
    items: &[String],
    separator: &str,
) -> fmt::Result {
    let indent = " ".repeat(first.chars().count());
    let mut line = first.to_string();
    let mut empty = true;
    for item in items {
        if !empty && line.chars().count() + separator.len() + item.chars().count() > LINE_WIDTH {
            writeln!(f, "{}", line.trim_end())?;
            line = indent.clone();
            empty = true;
        }
        if !empty {
            line.push_str(separator);
        }
        line.push_str(item);
        empty = false;
    }
    writeln!(f, "{}", line.trim_end())
}

impl FileCheck {
    fn details(&self) -> String {
        let mut parts = Vec::new();
        match self.status {
            CheckStatus::Missing => parts.push("not found".to_string()),
            CheckStatus::Mismatch => {
                if let (Some(e), Some(a)) = (self.expected_size, self.actual_size) {
                    if e != a {
                        parts.push(format!("size {} (expected {})", thousands(a), thousands(e)));
                    }
                }
                if let (Some(e), Some(a)) = (&self.expected_sha256, &self.actual_sha256) {
                    if e != a {
                        parts.push(format!("sha256 {a} (expected {e})"));
                    }
                }
            }
            CheckStatus::Ok => {
                if let Some(s) = self.actual_size {
                    parts.push(format!("{} bytes", thousands(s)));
                }
                match (&self.expected_sha256, &self.actual_sha256) {
                    (Some(_), Some(a)) => parts.push(format!("sha256 {}…", short_hash(a))),
                    _ => parts.push("size only".to_string()),
                }
            }
            CheckStatus::NotListed => {
                if let Some(s) = self.actual_size {
                    parts.push(format!("{} bytes", thousands(s)));
                }
                if let Some(a) = &self.actual_sha256 {
                    parts.push(format!("sha256 {a}"));
                }
            }
        }
        if self.unpacked {
            parts.push("decompressed content".to_string());
        }
        if let Some(note) = &self.note {
            parts.push(note.clone());
        }
        parts.join(", ")
    }
}

impl fmt::Display for DatasetInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.description.is_empty() {
            writeln!(f, "{}", self.name)?;
        } else {
            writeln!(f, "{} — {}", self.name, self.description)?;
        }
        writeln!(f, "  {:<KEY_WIDTH$}{}", "format", self.format)?;
        writeln!(f, "  {:<KEY_WIDTH$}{}", "location", self.location.display())?;
        for split in &self.splits {
            let [c, h, w] = split.image_shape;
            writeln!(
                f,
                "  {:<KEY_WIDTH$}{} images of {c}×{h}×{w}, pixels {}–{}",
                split.name,
                thousands(split.count as u64),
                split.pixel_min,
                split.pixel_max
            )?;
            let items: Vec<String> = split
                .label_histogram
                .iter()
                .map(|&(label, n)| match self.class_names.get(label as usize) {
                    Some(class) => format!("{label} {class}: {}", thousands(n as u64)),
                    None => format!("{label}: {}", thousands(n as u64)),
                })
                .collect();
            let first = format!("  {:<KEY_WIDTH$}labels: ", "");
            write_wrapped(f, &first, &items, " · ")?;
        }
        if !self.checksums.is_empty() {
            writeln!(f, "  checksums")?;
            let width = self
                .checksums
                .iter()
                .map(|c| self.relative(&c.file).chars().count())
                .max()
                .unwrap_or(0);
            for check in &self.checksums {
                writeln!(
                    f,
                    "    {:<12}{:<width$}  {}",
                    check.status.to_string(),
                    self.relative(&check.file),
                    check.details()
                )?;
            }
        }
        for note in &self.notes {
            writeln!(f, "  note: {note}")?;
        }
        Ok(())
    }
}

impl DatasetInfo {
    fn relative(&self, file: &Path) -> String {
        file.strip_prefix(&self.location)
            .ok()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(file)
            .display()
            .to_string()
    }

    /// Whether every checksum listed matched (no `Mismatch`, no `Missing`).
    pub fn checksums_ok(&self) -> bool {
        self.checksums
            .iter()
            .all(|c| matches!(c.status, CheckStatus::Ok | CheckStatus::NotListed))
    }
}

/// One line of `genae dataset list`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListEntry {
    /// Registry name.
    pub name: String,
    /// The manifest's description (or, for a manifest that does not parse, the error).
    pub description: String,
    /// Where the data set was found, if anywhere.
    pub present_at: Option<PathBuf>,
}

impl fmt::Display for ListEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{:<16} {}", self.name, self.description)?;
        match &self.present_at {
            Some(p) => write!(f, "{:<16} found in {}", "", p.display()),
            None => write!(
                f,
                "{:<16} not found (`genae dataset info {}` says how to get it)",
                "", self.name
            ),
        }
    }
}

/// Every registry data set and where it is, with the given roots.
pub fn list_with(roots: &SearchRoots) -> Vec<ListEntry> {
    let mut entries: Vec<ListEntry> = EMBEDDED_MANIFESTS
        .iter()
        .map(|(file, text)| match parse_embedded(file, text) {
            Ok(m) => ListEntry {
                present_at: roots.locate(&m).ok(),
                name: m.name,
                description: m.description,
            },
            Err(e) => ListEntry {
                name: file.trim_end_matches(".toml").to_string(),
                description: format!("(broken manifest: {e})"),
                present_at: None,
            },
        })
        .collect();
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    entries
}

/// Every registry data set and where it is on this machine (see [`locate`](super::locate)).
pub fn list(explicit_dir: Option<&Path>) -> Vec<ListEntry> {
    list_with(&SearchRoots::from_env(explicit_dir))
}
