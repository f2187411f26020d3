//! Checking a data set's files against the sizes and SHA-256 its manifest lists ([`verify`]),
//! streamed, and through the decompressed content of `.gz` files.

use std::fmt;
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::load::file_name;
use super::{FileSpec, Manifest};
use crate::DataError;

/// The outcome of checking one file against its manifest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CheckStatus {
    /// Every size and SHA-256 listed matches.
    Ok,
    /// A listed size or SHA-256 differs (or the file cannot be read).
    Mismatch,
    /// The manifest lists neither size nor SHA-256 for the file as found.
    NotListed,
    /// The file is not there.
    Missing,
}

impl fmt::Display for CheckStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CheckStatus::Ok => "ok",
            CheckStatus::Mismatch => "mismatch",
            CheckStatus::NotListed => "not listed",
            CheckStatus::Missing => "missing",
        })
    }
}

/// One file checked against its manifest by [`verify`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileCheck {
    /// The file found (or, when missing, where it was expected).
    pub file: PathBuf,
    /// Size listed in the manifest.
    pub expected_size: Option<u64>,
    /// Size measured (`None` when missing or unreadable, and for folders).
    pub actual_size: Option<u64>,
    /// SHA-256 listed in the manifest.
    pub expected_sha256: Option<String>,
    /// SHA-256 measured.
    pub actual_sha256: Option<String>,
    /// The values compared are of the decompressed content (a recompressed `.gz`, or the
    /// `.gz`-less form of a file listed as `.gz`, or the reverse).
    pub unpacked: bool,
    /// The outcome.
    pub status: CheckStatus,
    /// Anything else worth saying (a read error, "folder").
    pub note: Option<String>,
}

/// Size and SHA-256 (lowercase hex) of everything `reader` yields, streamed through a buffer.
fn hash_reader(mut reader: impl Read) -> io::Result<(u64, String)> {
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 16];
    let mut total = 0u64;
    loop {
        match reader.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => {
                hasher.update(&buffer[..n]);
                total += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok((total, format!("{:x}", hasher.finalize())))
}

/// Size in bytes and SHA-256 (lowercase hex) of a file, read through a fixed buffer.
pub fn sha256_file(path: &Path) -> Result<(u64, String), DataError> {
    let file = File::open(path).map_err(|e| DataError::io(path, &e))?;
    hash_reader(file).map_err(|e| DataError::io(path, &e))
}

fn sha256_gz_content(path: &Path) -> Result<(u64, String), DataError> {
    let file = File::open(path).map_err(|e| DataError::io(path, &e))?;
    hash_reader(flate2::read::MultiGzDecoder::new(BufReader::new(file)))
        .map_err(|e| DataError::io(path, &e))
}

type Expected<'a> = (Option<u64>, Option<&'a String>);

fn listed(e: &Expected<'_>) -> bool {
    e.0.is_some() || e.1.is_some()
}

fn matches(e: &Expected<'_>, size: u64, sha: &str) -> bool {
    e.0.is_none_or(|s| s == size) && e.1.is_none_or(|h| h == sha)
}

fn check_file(manifest: &Manifest, dir: &Path, spec: &FileSpec) -> FileCheck {
    let missing = FileCheck {
        file: dir.join(&spec.file),
        expected_size: spec.size,
        actual_size: None,
        expected_sha256: spec.sha256.clone(),
        actual_sha256: None,
        unpacked: false,
        status: CheckStatus::Missing,
        note: None,
    };
    let Some(path) = manifest.find_file(dir, &spec.file) else {
        return missing;
    };
    let named_gz = spec.file.ends_with(".gz");
    let found_gz = file_name(&path).ends_with(".gz");
    let packed: Expected = (spec.size, spec.sha256.as_ref());
    let content: Expected = (spec.unpacked_size, spec.unpacked_sha256.as_ref());
    // What the bytes as found should be, and what their decompressed content should be.
    let (as_found, inside): (Expected, Expected) = match (named_gz, found_gz) {
        (true, true) => (packed, content),
        (false, false) => (packed, (None, None)),
        (true, false) => (content, (None, None)),
        (false, true) => ((None, None), packed),
    };
    let report = |e: &Expected, size, sha, unpacked, status, note| FileCheck {
        file: path.clone(),
        expected_size: e.0,
        actual_size: size,
        expected_sha256: e.1.cloned(),
        actual_sha256: sha,
        unpacked,
        status,
        note,
    };
    let (size, sha) = match sha256_file(&path) {
        Ok(v) => v,
        Err(e) => {
            return report(
                &as_found,
                None,
                None,
                false,
                CheckStatus::Mismatch,
                Some(e.to_string()),
            )
        }
    };
    if listed(&as_found) && matches(&as_found, size, &sha) {
        return report(
            &as_found,
            Some(size),
            Some(sha),
            false,
            CheckStatus::Ok,
            None,
        );
    }
    if found_gz && listed(&inside) {
        match sha256_gz_content(&path) {
            Ok((csize, csha)) if matches(&inside, csize, &csha) => {
                return report(
                    &inside,
                    Some(csize),
                    Some(csha),
                    true,
                    CheckStatus::Ok,
                    listed(&as_found)
                        .then(|| "recompressed: the decompressed content matches".into()),
                );
            }
            Ok((csize, csha)) if !listed(&as_found) => {
                return report(
                    &inside,
                    Some(csize),
                    Some(csha),
                    true,
                    CheckStatus::Mismatch,
                    None,
                );
            }
            Ok(_) => {}
            Err(e) => {
                return report(
                    &as_found,
                    Some(size),
                    Some(sha),
                    false,
                    CheckStatus::Mismatch,
                    Some(format!("cannot decompress: {e}")),
                )
            }
        }
    }
    let status = if listed(&as_found) {
        CheckStatus::Mismatch
    } else {
        CheckStatus::NotListed
    };
    report(&as_found, Some(size), Some(sha), false, status, None)
}

/// Checks every file of `manifest` in `dir` against the sizes and SHA-256 it lists (streamed,
/// never read whole into memory). A `.gz` file whose bytes differ (or are not listed) is checked
/// by its decompressed content when the manifest lists that. Image folders are reported as
/// `NotListed` (or `Missing`), without hashing.
pub fn verify(manifest: &Manifest, dir: &Path) -> Vec<FileCheck> {
    let mut checks = Vec::new();
    for (_, split) in manifest.splits() {
        for spec in split.files() {
            checks.push(check_file(manifest, dir, spec));
        }
        if let Some(folder) = &split.folder {
            let found = manifest.find_folder(dir, folder);
            checks.push(FileCheck {
                file: found.clone().unwrap_or_else(|| dir.join(folder)),
                expected_size: None,
                actual_size: None,
                expected_sha256: None,
                actual_sha256: None,
                unpacked: false,
                status: if found.is_some() {
                    CheckStatus::NotListed
                } else {
                    CheckStatus::Missing
                },
                note: Some("folder".into()),
            });
        }
    }
    checks
}
