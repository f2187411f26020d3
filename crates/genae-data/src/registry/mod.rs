//! The data-set registry: the manifests in `datasets/<name>.toml` (embedded in the library),
//! finding a data set's files, decoding them with [`crate::formats`], checking them against
//! their manifest, and reporting on them (`genae dataset list` / `genae dataset info`).
//!
//! # Where a data set is looked for
//!
//! In this order (see [`SearchRoots`]):
//!
//! 1. the folder given explicitly (the config's `data.dir`): `<dir>/<name>/`, then `<dir>` itself;
//! 2. [`ENV_VAR`] (`GENAE_DATA_DIR`): `<dir>/<name>/`, then `<dir>` itself;
//! 3. [`SYSTEM_ROOT`]`/<name>` (`/usr/share/datasets/<name>`, where Debian's
//!    `dataset-fashion-mnist` installs Fashion-MNIST);
//! 4. the per-user cache, `dirs::cache_dir()/genae/datasets/<name>`.
//!
//! A folder holds the data set when every file of every split its manifest lists is there:
//! directly, or in the manifest's `subdir`; for IDX files also with or without `.gz`.
//!
//! ```
//! let names: Vec<String> = genae_data::registry::manifests()
//!     .unwrap()
//!     .into_iter()
//!     .map(|m| m.name)
//!     .collect();
//! assert!(names.contains(&"fashion-mnist".to_string()));
//!
//! let m = genae_data::registry::manifest("fashion-mnist").unwrap();
//! assert_eq!(m.image_shape, [1, 28, 28]);
//! assert_eq!(m.train.count, Some(60_000));
//! ```
//!
//! # Layout
//!
//! - `manifest`: the manifest schema and the embedded manifests;
//! - `validate`: the checks of a manifest beyond its schema;
//! - `roots`: where a data set is looked for, and where its files are in a folder;
//! - `load`: decoding a located data set and checking it against its manifest;
//! - `detect`: reading a folder or file given directly, guessing its format;
//! - `checksum`: sizes and SHA-256 of a data set's files against its manifest;
//! - `report`: `genae dataset info` and `genae dataset list`;
//! - `options`: the user's own data given as a path, array files, the test hold-out.

mod checksum;
mod detect;
mod load;
mod manifest;
mod options;
mod report;
mod roots;
mod validate;

pub use checksum::{sha256_file, verify, CheckStatus, FileCheck};
pub use detect::{load_path, DEFAULT_FOLDER_SIZE};
pub use load::{load, load_from_dir, load_with};
pub use manifest::{
    manifest, manifests, Cifar100Labels, DecodeOptions, FileSpec, Format, Manifest, SplitSpec,
    EMBEDDED_MANIFESTS,
};
pub use options::{info_path_with, load_path_with, PathOptions, USER_MANIFEST};
pub use report::{
    info, info_from_dir, info_path, info_with, list, list_with, DatasetInfo, ListEntry, SplitInfo,
};
pub use roots::{default_cache_root, locate, search_paths, SearchRoots, ENV_VAR, SYSTEM_ROOT};
