//! Where a data set is looked for: the search roots ([`SearchRoots`], [`ENV_VAR`],
//! [`SYSTEM_ROOT`], the per-user cache), and where a manifest's files are in a folder.

use std::path::{Path, PathBuf};

use super::{manifest, Format, Manifest};
use crate::DataError;

/// The environment variable naming a folder of data sets (looked in after the explicit folder).
pub const ENV_VAR: &str = "GENAE_DATA_DIR";

/// The system-wide folder of data sets (Debian's `dataset-*` packages install there).
pub const SYSTEM_ROOT: &str = "/usr/share/datasets";

impl Manifest {
    /// The folders a file or folder named `name` may be in: `dir`, then `dir/<subdir>`.
    fn bases(&self, dir: &Path) -> Vec<PathBuf> {
        let mut bases = vec![dir.to_path_buf()];
        if let Some(subdir) = &self.subdir {
            bases.push(dir.join(subdir));
        }
        bases
    }

    /// Where the file `name` is under `dir`: as named or (IDX only) with `.gz` toggled, directly
    /// in `dir` or in its `subdir`.
    pub fn find_file(&self, dir: &Path, name: &str) -> Option<PathBuf> {
        let mut names = vec![name.to_string()];
        if self.format == Format::Idx {
            names.push(match name.strip_suffix(".gz") {
                Some(stem) => stem.to_string(),
                None => format!("{name}.gz"),
            });
        }
        self.bases(dir)
            .into_iter()
            .flat_map(|base| names.iter().map(move |n| base.join(n)))
            .find(|p| p.is_file())
    }

    /// Where the image folder `name` is under `dir` (directly or in `subdir`).
    pub fn find_folder(&self, dir: &Path, name: &str) -> Option<PathBuf> {
        self.bases(dir)
            .into_iter()
            .map(|base| base.join(name))
            .find(|p| p.is_dir())
    }

    /// Whether `dir` holds every file and folder of every split.
    pub fn is_present_in(&self, dir: &Path) -> bool {
        dir.is_dir() && self.missing_in(dir).is_empty()
    }

    /// Every file and folder of every split missing from `dir` (folders with a trailing `/`).
    pub(super) fn missing_in(&self, dir: &Path) -> Vec<String> {
        let mut missing = Vec::new();
        for (_, split) in self.splits() {
            for spec in split.files() {
                if self.find_file(dir, &spec.file).is_none() {
                    missing.push(spec.file.clone());
                }
            }
            if let Some(folder) = &split.folder {
                if self.find_folder(dir, folder).is_none() {
                    missing.push(format!("{folder}/"));
                }
            }
        }
        missing
    }

    /// [`Manifest::how_to_obtain`], with the files a folder needs and where to put it.
    pub(super) fn how_to_obtain_long(&self) -> String {
        format!(
            "{}\nA folder holds `{}` when it has {}{}. Set `data.dir` in the config or {ENV_VAR} \
             to a folder holding `{}/` (or the files themselves).",
            self.how_to_obtain,
            self.name,
            self.required_files().join(", "),
            match &self.subdir {
                Some(s) => format!(" (directly or in `{s}/`)"),
                None => String::new(),
            },
            self.name,
        )
    }
}

/// The roots a data set is looked for in, in order; `None` skips a root. [`SearchRoots::from_env`]
/// fills them from the machine; tests build their own.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SearchRoots {
    /// The config's `data.dir`: `<explicit>/<name>`, then `<explicit>` itself.
    pub explicit: Option<PathBuf>,
    /// [`ENV_VAR`]: `<env_dir>/<name>`, then `<env_dir>` itself.
    pub env_dir: Option<PathBuf>,
    /// [`SYSTEM_ROOT`]: `<system_root>/<name>`.
    pub system_root: Option<PathBuf>,
    /// The per-user cache ([`default_cache_root`]): `<cache_root>/<name>`.
    pub cache_root: Option<PathBuf>,
}

/// `dirs::cache_dir()/genae/datasets`, where it exists on this platform.
pub fn default_cache_root() -> Option<PathBuf> {
    dirs::cache_dir().map(|d| d.join("genae").join("datasets"))
}

impl SearchRoots {
    /// `explicit`, [`ENV_VAR`] (when set and non-empty), [`SYSTEM_ROOT`] and
    /// [`default_cache_root`].
    pub fn from_env(explicit: Option<&Path>) -> SearchRoots {
        SearchRoots {
            explicit: explicit.map(Path::to_path_buf),
            env_dir: std::env::var_os(ENV_VAR)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from),
            system_root: Some(PathBuf::from(SYSTEM_ROOT)),
            cache_root: default_cache_root(),
        }
    }

    /// Every folder looked in for data set `name`, in order, without repeats.
    pub fn candidates(&self, name: &str) -> Vec<PathBuf> {
        let mut paths = Vec::new();
        for dir in [&self.explicit, &self.env_dir].into_iter().flatten() {
            paths.push(dir.join(name));
            paths.push(dir.clone());
        }
        for root in [&self.system_root, &self.cache_root].into_iter().flatten() {
            paths.push(root.join(name));
        }
        let mut unique: Vec<PathBuf> = Vec::new();
        for p in paths {
            if !unique.contains(&p) {
                unique.push(p);
            }
        }
        unique
    }

    /// The first candidate folder holding the data set, or a [`DataError::NotFound`] listing every
    /// folder looked in and how to obtain it.
    pub fn locate(&self, manifest: &Manifest) -> Result<PathBuf, DataError> {
        let searched = self.candidates(&manifest.name);
        match searched.iter().find(|d| manifest.is_present_in(d)) {
            Some(dir) => Ok(dir.clone()),
            None => Err(DataError::NotFound {
                name: manifest.name.clone(),
                searched,
                how_to_obtain: manifest.how_to_obtain_long(),
            }),
        }
    }
}

/// Every folder looked in for data set `name` on this machine ([`SearchRoots::from_env`]).
pub fn search_paths(name: &str, explicit: Option<&Path>) -> Vec<PathBuf> {
    SearchRoots::from_env(explicit).candidates(name)
}

/// The folder holding data set `name` on this machine.
pub fn locate(name: &str, explicit: Option<&Path>) -> Result<PathBuf, DataError> {
    SearchRoots::from_env(explicit).locate(&manifest(name)?)
}
