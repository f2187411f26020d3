//! Fashion-MNIST: find the IDX files (`GENAE_DATA_DIR`, or Debian's `dataset-fashion-mnist`
//! package in `/usr/share/datasets/fashion-mnist`), or install that package when running as
//! root. Nothing here is fatal: the data is only needed to train.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::libtorch::Layout;
use crate::process;

/// Where Debian's `dataset-fashion-mnist` package puts the IDX files.
pub const SYSTEM_DIR: &str = "/usr/share/datasets/fashion-mnist";

/// The Debian package holding Fashion-MNIST.
const PACKAGE: &str = "dataset-fashion-mnist";

/// Marker left in `.genae` after a failed `apt-get install`, so later setups do not retry it
/// (and stay fast); delete it to retry.
const FAILED_MARKER: &str = "fashion-mnist-apt.failed";

/// A folder holding the Fashion-MNIST IDX files, and how it was found.
pub struct Found {
    /// The folder.
    pub dir: PathBuf,
    /// `GENAE_DATA_DIR` or the Debian package.
    pub via: &'static str,
}

/// Looks for the IDX files: in `$GENAE_DATA_DIR` (or its `fashion-mnist` subfolder), then in
/// [`SYSTEM_DIR`].
pub fn find() -> Option<Found> {
    if let Some(data) = std::env::var_os("GENAE_DATA_DIR").filter(|v| !v.is_empty()) {
        let data = PathBuf::from(data);
        for dir in [data.clone(), data.join("fashion-mnist")] {
            if has_idx(&dir) {
                return Some(Found {
                    dir,
                    via: "GENAE_DATA_DIR",
                });
            }
        }
    }
    let system = PathBuf::from(SYSTEM_DIR);
    has_idx(&system).then_some(Found {
        dir: system,
        via: "package dataset-fashion-mnist",
    })
}

/// Whether `dir` holds `train-images-idx3-ubyte` (plain or gzipped).
fn has_idx(dir: &Path) -> bool {
    ["train-images-idx3-ubyte", "train-images-idx3-ubyte.gz"]
        .iter()
        .any(|name| dir.join(name).is_file())
}

/// Setup's dataset step: reports the data, or installs the Debian package (as root, with
/// apt-get), or says how to get it. Returns a few words for setup's summary line.
pub fn setup(layout: &Layout) -> String {
    if let Some(found) = find() {
        println!(
            "Fashion-MNIST found in {} ({})",
            found.dir.display(),
            found.via
        );
        return found.dir.display().to_string();
    }
    let marker = layout.dir.join(FAILED_MARKER);
    if marker.exists() {
        println!(
            "warning: Fashion-MNIST not found; an earlier `apt-get install {PACKAGE}` failed, so \
             setup does not retry it (delete {} to retry)",
            marker.display()
        );
        print_hint();
        return "not found".to_owned();
    }
    if !is_root() || !on_path("apt-get") {
        println!("Fashion-MNIST not found.");
        print_hint();
        return "not found".to_owned();
    }
    println!("Fashion-MNIST not found: installing the Debian package {PACKAGE}");
    match apt_install(PACKAGE) {
        Ok(()) => match find() {
            Some(found) => {
                println!("Fashion-MNIST installed in {}", found.dir.display());
                found.dir.display().to_string()
            }
            None => {
                println!(
                    "warning: {PACKAGE} installed, but {SYSTEM_DIR} holds no \
                     train-images-idx3-ubyte(.gz)"
                );
                print_hint();
                "not found".to_owned()
            }
        },
        Err(e) => {
            println!("warning: could not install Fashion-MNIST: {e:#}");
            if fs::create_dir_all(&layout.dir).is_ok() {
                let _ = fs::write(&marker, format!("{e:#}\n"));
            }
            print_hint();
            "not found (apt-get failed)".to_owned()
        }
    }
}

/// The font plots use for their text (Debian's `fonts-dejavu-core`); genae-lab looks for it in
/// the same place.
const FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";
/// The Debian package holding [`FONT`].
const FONT_PACKAGE: &str = "fonts-dejavu-core";

/// Setup's font step: plots are drawn with [`FONT`]; install it as root when it is missing
/// (not fatal: plots are then drawn without text).
pub fn ensure_font() {
    if Path::new(FONT).is_file() {
        return;
    }
    if !is_root() || !on_path("apt-get") {
        println!("note: {FONT} not found; plots will have no text (`sudo apt-get install {FONT_PACKAGE}`)");
        return;
    }
    println!("{FONT} not found: installing the Debian package {FONT_PACKAGE}");
    if let Err(e) = apt_install(FONT_PACKAGE) {
        println!("warning: could not install {FONT_PACKAGE}: {e:#}; plots will have no text");
    }
}

/// `apt-get update` then `apt-get install -y <package>`, non-interactively.
fn apt_install(package: &str) -> anyhow::Result<()> {
    let apt = |args: &[&str]| {
        let mut cmd = Command::new("apt-get");
        cmd.current_dir(crate::root())
            .env("DEBIAN_FRONTEND", "noninteractive")
            .args(args);
        cmd
    };
    process::run(&mut apt(&["update"]))?;
    process::run(&mut apt(&["install", "-y", package]))
}

/// Prints how to get the data by hand.
fn print_hint() {
    println!(
        "  To get Fashion-MNIST: `sudo apt-get install {PACKAGE}` (Debian/Ubuntu; installs it in \
         {SYSTEM_DIR}), or set GENAE_DATA_DIR to a folder holding the IDX files \
         (train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], t10k-...)."
    );
}

/// Whether this process runs as root (`id -u` prints 0).
fn is_root() -> bool {
    let mut id = Command::new("id");
    id.arg("-u");
    process::capture(&mut id).is_ok_and(|out| out.trim() == "0")
}

/// Whether `program` is an executable file in a `PATH` folder.
fn on_path(program: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| {
            fs::metadata(dir.join(program))
                .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
        })
    })
}
