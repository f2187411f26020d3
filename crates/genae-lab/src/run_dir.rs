//! The run directory and atomic writes into it.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::LabError;

/// The lock file of a run directory being trained.
pub(crate) const LOCK: &str = ".lock";

/// A held lock on a run directory ([`RunDir::lock`]).
#[derive(Debug)]
pub(crate) struct RunLock {
    _file: File,
}

/// A fresh directory `<output_dir>/<name>-<UTC timestamp>` holding one run's files.
#[derive(Clone, Debug)]
pub struct RunDir {
    path: PathBuf,
}

impl RunDir {
    /// Creates the directory (and `output_dir` if needed). Two runs started in the same second
    /// get `-2`, `-3`, … suffixes instead of sharing a directory.
    pub fn create(output_dir: &Path, name: &str) -> Result<Self, LabError> {
        fs::create_dir_all(output_dir).map_err(|e| LabError::io("creating", output_dir, e))?;
        let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
        for attempt in 1.. {
            let leaf = if attempt == 1 {
                format!("{name}-{stamp}")
            } else {
                format!("{name}-{stamp}-{attempt}")
            };
            let path = output_dir.join(leaf);
            match fs::create_dir(&path) {
                Ok(()) => return Ok(Self { path }),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(LabError::io("creating", &path, e)),
            }
        }
        unreachable!("the attempt counter is unbounded")
    }

    /// An existing run directory (to write a report into, or resume from).
    pub fn open(path: &Path) -> Result<Self, LabError> {
        match fs::metadata(path) {
            Ok(m) if m.is_dir() => Ok(Self {
                path: path.to_path_buf(),
            }),
            Ok(_) => Err(LabError::io(
                "opening run directory",
                path,
                std::io::Error::other("not a directory"),
            )),
            Err(e) => Err(LabError::io("opening run directory", path, e)),
        }
    }

    /// Locks the directory for this process (an OS lock on `.lock`, released when the lock
    /// is dropped or the process ends, also by SIGKILL); an error says so when another process
    /// holds it.
    pub(crate) fn lock(&self) -> Result<RunLock, LabError> {
        let path = self.file(LOCK);
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| LabError::io("creating", &path, e))?;
        match file.try_lock() {
            Ok(()) => {
                let _ = file.set_len(0);
                let _ = writeln!(file, "{}", std::process::id());
                Ok(RunLock { _file: file })
            }
            Err(fs::TryLockError::WouldBlock) => {
                let holder = fs::read_to_string(&path).unwrap_or_default();
                Err(LabError::Run {
                    path: self.path.clone(),
                    reason: format!(
                        "another genae process{} is training in this run directory (it holds \
                         {LOCK}); wait for it to finish or stop it, then resume",
                        match holder.trim() {
                            "" => String::new(),
                            pid => format!(" (pid {pid})"),
                        }
                    ),
                })
            }
            Err(fs::TryLockError::Error(e)) => Err(LabError::io("locking", &path, e)),
        }
    }

    /// Whether the directory holds nothing.
    pub(crate) fn is_empty(&self) -> bool {
        fs::read_dir(&self.path).is_ok_and(|mut entries| entries.next().is_none())
    }

    /// Whether the directory holds nothing but `config.toml` (a run that failed before its
    /// first epoch).
    pub(crate) fn holds_only_config(&self) -> bool {
        fs::read_dir(&self.path).is_ok_and(|entries| {
            entries
                .filter_map(Result::ok)
                .all(|e| e.file_name() == "config.toml" || e.file_name() == LOCK)
        })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `path/name`.
    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Writes `name` atomically: a temporary file in the same directory, synced, then renamed.
    pub fn write_atomic(&self, name: &str, bytes: &[u8]) -> Result<(), LabError> {
        let tmp = self.temporary(name);
        let result = (|| {
            let mut f = File::create(&tmp)?;
            f.write_all(bytes)?;
            f.sync_all()?;
            fs::rename(&tmp, self.file(name))
        })();
        result.map_err(|e| {
            let _ = fs::remove_file(&tmp);
            LabError::io("writing", &self.file(name), e)
        })
    }

    /// Appends one line to `name` and flushes it to disk, so a killed run keeps what it logged.
    pub fn append_line(&self, name: &str, line: &str) -> Result<(), LabError> {
        let path = self.file(name);
        let result = (|| {
            let mut f = OpenOptions::new().create(true).append(true).open(&path)?;
            writeln!(f, "{line}")?;
            f.sync_data()
        })();
        result.map_err(|e| LabError::io("appending to", &path, e))
    }

    /// A hidden temporary path next to `name` with the same extension (libtorch picks the
    /// checkpoint format from it).
    pub fn temporary(&self, name: &str) -> PathBuf {
        self.path.join(format!(".tmp-{name}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_second_runs_get_distinct_directories() {
        let root = tempfile::tempdir().unwrap();
        let a = RunDir::create(root.path(), "x").unwrap();
        let b = RunDir::create(root.path(), "x").unwrap();
        assert_ne!(a.path(), b.path());
        assert!(a
            .path()
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("x-"));
    }

    #[test]
    fn atomic_write_leaves_no_temporary_and_replaces_content() {
        let root = tempfile::tempdir().unwrap();
        let dir = RunDir::create(root.path(), "x").unwrap();
        dir.write_atomic("a.json", b"1").unwrap();
        dir.write_atomic("a.json", b"22").unwrap();
        assert_eq!(fs::read(dir.file("a.json")).unwrap(), b"22");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
        dir.append_line("m.jsonl", "{}").unwrap();
        dir.append_line("m.jsonl", "{}").unwrap();
        assert_eq!(fs::read_to_string(dir.file("m.jsonl")).unwrap(), "{}\n{}\n");
    }
}
