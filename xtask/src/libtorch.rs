//! libtorch for tch 0.24: PyTorch 2.11.0 pip-installed into `.genae/venv` (or a `LIBTORCH` you
//! provide), the `.genae/libtorch` link that `.cargo/config.toml` points torch-sys at, and the
//! `.genae/setup.stamp` that lets a repeated setup finish without importing torch.

use std::fmt;
use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{anyhow, bail, Context, Result};

use crate::process;

/// The PyTorch release tch 0.24 is built against.
pub const TORCH_VERSION: &str = "2.11.0";

/// Free space (in GiB) wanted in the repository's file system before pip installs torch.
const NEEDED_GIB: u64 = 6;

/// Paths of the project's local toolchain state, all under `<root>/.genae`.
pub struct Layout {
    /// `<root>`: the workspace root.
    pub root: PathBuf,
    /// `<root>/.genae`.
    pub dir: PathBuf,
    /// `<root>/.genae/venv`: the Python virtual environment holding torch.
    pub venv: PathBuf,
    /// `<root>/.genae/libtorch`: the link torch-sys reads libtorch from.
    pub link: PathBuf,
    /// `<root>/.genae/setup.stamp`: what the last successful setup found.
    pub stamp: PathBuf,
}

impl Layout {
    /// The layout of the workspace this xtask belongs to.
    pub fn new() -> Self {
        let root = crate::root().to_path_buf();
        let dir = root.join(".genae");
        Self {
            venv: dir.join("venv"),
            link: dir.join("libtorch"),
            stamp: dir.join("setup.stamp"),
            dir,
            root,
        }
    }

    /// The venv's Python interpreter.
    pub fn venv_python(&self) -> PathBuf {
        self.venv.join("bin").join("python")
    }
}

/// Where libtorch comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// The torch package pip-installed into `.genae/venv`.
    Venv,
    /// A directory named by the `LIBTORCH` environment variable (absolute, as given).
    Env(PathBuf),
}

impl Source {
    /// The `LIBTORCH` the caller asked for: a `LIBTORCH` that is unset, empty, or the same path as
    /// `.genae/libtorch` (which cargo's `[env]` sets inside `cargo xtask`) means the venv.
    pub fn wanted(layout: &Layout) -> Self {
        match std::env::var_os("LIBTORCH") {
            Some(value) if !value.is_empty() => {
                let path = std::path::absolute(&value).unwrap_or_else(|_| PathBuf::from(&value));
                if same_path(&path, &layout.link) {
                    Source::Venv
                } else {
                    Source::Env(path)
                }
            }
            _ => Source::Venv,
        }
    }

    /// The stamp's word for this kind of source.
    fn tag(&self) -> &'static str {
        match self {
            Source::Venv => "venv",
            Source::Env(_) => "env",
        }
    }
}

/// A libtorch that passed the checks.
#[derive(Clone, Debug)]
pub struct Libtorch {
    /// Its version, e.g. `2.11.0+cu130`.
    pub version: String,
    /// `1`, `0`, or `unchecked` (a `LIBTORCH` of yours is taken as it is).
    pub abi: String,
    /// Its canonical directory (the one holding `lib/libtorch.so`).
    pub dir: PathBuf,
    /// Where it comes from.
    pub source: Source,
}

impl Libtorch {
    /// A Python interpreter whose `import torch` is this libtorch, if there is one: the venv's,
    /// or for a `LIBTORCH` that is a pip torch package, the `bin/python3` of its prefix.
    pub fn python(&self, layout: &Layout) -> Option<PathBuf> {
        match self.source {
            Source::Venv => Some(layout.venv_python()).filter(|p| p.exists()),
            Source::Env(_) => python_of_package(&self.dir),
        }
    }
}

impl fmt::Display for Libtorch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}, {}", self.version, self.dir.display())
    }
}

/// Makes sure libtorch 2.11.0 is in place: the stamp's fast path when it still holds, otherwise
/// the full setup (which may create the venv and pip-install torch).
pub fn ensure(layout: &Layout) -> Result<Libtorch> {
    let wanted = Source::wanted(layout);
    match fast_check(layout, &wanted) {
        Ok(found) => {
            println!("libtorch ok ({found})");
            Ok(found)
        }
        Err(why) => {
            println!("libtorch setup needed: {why}");
            install(layout, &wanted)
        }
    }
}

/// The fast check behind a repeated setup (no subprocess, no torch import): the stamp exists,
/// matches the wanted source, `.genae/libtorch` resolves to the stamped directory, that holds
/// `lib/libtorch.so`, and its version file still says the stamped version. `Err` says why not.
pub fn fast_check(layout: &Layout, wanted: &Source) -> Result<Libtorch, String> {
    let text = fs::read_to_string(&layout.stamp)
        .map_err(|_| "no .genae/setup.stamp (setup has not completed here yet)".to_owned())?;
    let stamp = parse_stamp(&text).ok_or("unreadable .genae/setup.stamp")?;
    if stamp.source.tag() != wanted.tag() {
        return Err(format!(
            "the stamp is for libtorch from {}, but {} is wanted now",
            stamp.source.tag(),
            describe_source(wanted)
        ));
    }
    if let Source::Env(path) = wanted {
        match path.canonicalize() {
            Ok(p) if p == stamp.dir => {}
            _ => {
                return Err(format!(
                    "LIBTORCH={} is not the stamped one",
                    path.display()
                ))
            }
        }
    }
    if let Source::Venv = wanted {
        if !layout.venv_python().exists() {
            return Err(".genae/venv/bin/python is missing".to_owned());
        }
    }
    match layout.link.canonicalize() {
        Ok(p) if p == stamp.dir => {}
        Ok(p) => {
            return Err(format!(
                ".genae/libtorch resolves to {}, not the stamped {}",
                p.display(),
                stamp.dir.display()
            ))
        }
        Err(_) => return Err(".genae/libtorch is missing or dangling".to_owned()),
    }
    if !stamp.dir.join("lib/libtorch.so").is_file() {
        return Err(format!("{} has no lib/libtorch.so", stamp.dir.display()));
    }
    match read_version(&stamp.dir) {
        Some(v) if v == stamp.version => Ok(Libtorch {
            source: wanted.clone(),
            ..stamp
        }),
        Some(v) => Err(format!(
            "libtorch is now {v}, the stamp says {}",
            stamp.version
        )),
        None => Err(format!("no version file in {}", stamp.dir.display())),
    }
}

/// The full setup for `wanted`, ending with a fresh link and stamp.
fn install(layout: &Layout, wanted: &Source) -> Result<Libtorch> {
    fs::create_dir_all(&layout.dir)
        .with_context(|| format!("cannot create {}", layout.dir.display()))?;
    // A stale stamp must not survive a failed setup.
    match fs::remove_file(&layout.stamp) {
        Err(e) if e.kind() != ErrorKind::NotFound => {
            return Err(e).with_context(|| format!("cannot remove {}", layout.stamp.display()))
        }
        _ => {}
    }
    let found = match wanted {
        Source::Venv => install_venv(layout)?,
        Source::Env(path) => use_external(path)?,
    };
    make_link(layout, &found.dir)?;
    write_stamp(layout, &found)?;
    Ok(found)
}

/// Uses the `LIBTORCH` directory the caller set: checks it and its version.
fn use_external(path: &Path) -> Result<Libtorch> {
    let shown = path.display();
    println!("using LIBTORCH={shown} (set in your environment)");
    if !path.is_dir() {
        bail!(
            "LIBTORCH={shown} is not a directory: point it at an unpacked libtorch {TORCH_VERSION} \
             (or a pip torch {TORCH_VERSION} package directory), or unset it so that setup \
             installs torch into .genae/venv"
        );
    }
    let dir = path
        .canonicalize()
        .with_context(|| format!("cannot resolve LIBTORCH={shown}"))?;
    if !dir.join("lib/libtorch.so").is_file() {
        bail!(
            "LIBTORCH={shown} has no lib/libtorch.so: point it at an unpacked libtorch \
             {TORCH_VERSION} (or a pip torch package directory), or unset it so that setup \
             installs torch into .genae/venv"
        );
    }
    let version = read_version(&dir).ok_or_else(|| {
        anyhow!(
            "LIBTORCH={shown} has neither version.py nor build-version: cannot tell its version"
        )
    })?;
    if !version_ok(&version) {
        bail!(
            "LIBTORCH={shown} is libtorch {version}, but tch 0.24 needs {TORCH_VERSION}: point \
             LIBTORCH at libtorch {TORCH_VERSION}, or unset it so that setup installs torch \
             {TORCH_VERSION} into .genae/venv"
        );
    }
    Ok(Libtorch {
        version,
        abi: "unchecked".to_owned(),
        dir,
        source: Source::Env(path.to_path_buf()),
    })
}

/// Ensures `.genae/venv` holds torch 2.11.0 (pip-installing it when not) and verifies it.
fn install_venv(layout: &Layout) -> Result<Libtorch> {
    ensure_venv(layout)?;
    let python = layout.venv_python();
    let installed = site_packages(layout)
        .iter()
        .find_map(|site| read_version(&site.join("torch")));
    match installed {
        Some(v) if version_ok(&v) => println!("torch {v} is already installed in .genae/venv"),
        other => {
            match other {
                Some(v) => println!(
                    "torch {v} in .genae/venv is not {TORCH_VERSION}: installing torch=={TORCH_VERSION}"
                ),
                None => println!(
                    "installing torch=={TORCH_VERSION} into .genae/venv (a download of a few GB)"
                ),
            }
            check_disk_space(&layout.root)?;
            let mut pip = Command::new(&python);
            pip.current_dir(&layout.root)
                .args(["-m", "pip", "install"])
                .arg(format!("torch=={TORCH_VERSION}"));
            process::run(&mut pip).with_context(|| {
                format!(
                    "pip could not install torch=={TORCH_VERSION} into .genae/venv (see pip's \
                     output above: check network access or proxy settings, free disk space, and \
                     that the Python version is one torch {TORCH_VERSION} supports), or set \
                     LIBTORCH to an existing libtorch {TORCH_VERSION}"
                )
            })?;
        }
    }
    let probe = probe_torch(&python)?;
    if !version_ok(&probe.version) {
        bail!(
            ".genae/venv imports torch {} from {}, not {TORCH_VERSION}",
            probe.version,
            probe.dir.display()
        );
    }
    if probe.abi != "True" {
        bail!(
            "torch {} in .genae/venv reports _GLIBCXX_USE_CXX11_ABI={}, but tch needs the CXX11 ABI \
             (True)",
            probe.version,
            probe.abi
        );
    }
    println!(
        "torch {} imports fine in .genae/venv (CXX11 ABI: {})",
        probe.version, probe.abi
    );
    let dir = probe
        .dir
        .canonicalize()
        .with_context(|| format!("cannot resolve {}", probe.dir.display()))?;
    if !dir.join("lib/libtorch.so").is_file() {
        bail!("{} has no lib/libtorch.so", dir.display());
    }
    Ok(Libtorch {
        version: probe.version,
        abi: "1".to_owned(),
        dir,
        source: Source::Venv,
    })
}

/// Creates `.genae/venv` with `python3 -m venv` unless a working one is there; never touches a
/// working venv.
fn ensure_venv(layout: &Layout) -> Result<()> {
    let python = layout.venv_python();
    let mut recreate = false;
    if python.exists() {
        let mut version = Command::new(&python);
        version.current_dir(&layout.root).arg("--version");
        match process::run(&mut version) {
            Ok(()) => return Ok(()),
            Err(e) => {
                println!("warning: .genae/venv is broken ({e:#}); recreating it");
                recreate = true;
            }
        }
    }

    let mut probe = Command::new("python3");
    probe
        .current_dir(&layout.root)
        .args(["-c", "import venv, ensurepip"]);
    if let Err(e) = process::run(&mut probe) {
        if process::is_not_found(&e) {
            bail!(
                "python3 is not on PATH, and setup needs it to create .genae/venv: install Python 3 \
                 (e.g. `apt-get install python3 python3-venv`), or set LIBTORCH to an existing \
                 libtorch {TORCH_VERSION}"
            );
        }
        bail!(
            "python3 cannot create virtual environments (its `venv`/`ensurepip` modules are \
             missing): install them (e.g. `apt-get install python3-venv`), or set LIBTORCH to an \
             existing libtorch {TORCH_VERSION} ({e:#})"
        );
    }

    let existed = layout.venv.exists();
    let mut venv = Command::new("python3");
    venv.current_dir(&layout.root).args(["-m", "venv"]);
    if recreate {
        venv.arg("--clear");
    }
    venv.arg(&layout.venv);
    if let Err(e) = process::run(&mut venv) {
        if !existed {
            // Only what this very command half-created.
            let _ = fs::remove_dir_all(&layout.venv);
        }
        return Err(e).context(
            "could not create .genae/venv: `python3 -m venv` failed (on Debian/Ubuntu install \
             `python3-venv`)",
        );
    }
    Ok(())
}

/// The `site-packages` folders of the venv (`lib/python3*/site-packages`).
fn site_packages(layout: &Layout) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = fs::read_dir(layout.venv.join("lib"))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|entry| entry.file_name().to_string_lossy().starts_with("python3"))
        .map(|entry| entry.path().join("site-packages"))
        .filter(|site| site.is_dir())
        .collect();
    found.sort();
    found
}

/// What `import torch` reports in a Python interpreter.
struct Probe {
    /// `torch.__version__`.
    version: String,
    /// `torch._C._GLIBCXX_USE_CXX11_ABI` as Python prints it (`True`/`False`).
    abi: String,
    /// The torch package directory (parent of `torch.__file__`).
    dir: PathBuf,
}

/// Imports torch in `python` and reads its version, CXX11 ABI flag and location.
fn probe_torch(python: &Path) -> Result<Probe> {
    let mut cmd = Command::new(python);
    cmd.current_dir(crate::root()).args([
        "-W",
        "ignore",
        "-c",
        "import torch; print(torch.__version__, torch._C._GLIBCXX_USE_CXX11_ABI, torch.__file__)",
    ]);
    let out = process::capture(&mut cmd).context("torch does not import in .genae/venv")?;
    let line = out
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    let mut fields = line.trim().splitn(3, ' ');
    match (fields.next(), fields.next(), fields.next()) {
        (Some(version), Some(abi), Some(file)) => {
            let file = PathBuf::from(file);
            let dir = file
                .parent()
                .ok_or_else(|| anyhow!("odd torch.__file__ {}", file.display()))?
                .to_path_buf();
            Ok(Probe {
                version: version.to_owned(),
                abi: abi.to_owned(),
                dir,
            })
        }
        _ => bail!("unexpected output from the torch probe: {out:?}"),
    }
}

/// Fails when the file system holding `root` has less than [`NEEDED_GIB`] free (per `df -Pk`).
fn check_disk_space(root: &Path) -> Result<()> {
    let mut df = Command::new("df");
    df.current_dir(root).arg("-Pk").arg(root);
    let out = match process::capture(&mut df) {
        Ok(out) => out,
        Err(e) => {
            println!("warning: cannot check free disk space ({e:#}); going on");
            return Ok(());
        }
    };
    let available_kib = out
        .lines()
        .nth(1)
        .and_then(|line| line.split_whitespace().nth(3))
        .and_then(|field| field.parse::<u64>().ok());
    let Some(kib) = available_kib else {
        println!("warning: cannot read free disk space from `df -Pk` output; going on");
        return Ok(());
    };
    let free_gib = kib as f64 / (1024.0 * 1024.0);
    if kib < NEEDED_GIB * 1024 * 1024 {
        bail!(
            "only {free_gib:.1} GiB free in {} but installing torch {TORCH_VERSION} needs about \
             {NEEDED_GIB} GiB: free some space, or set LIBTORCH to an existing libtorch \
             {TORCH_VERSION}",
            root.display()
        );
    }
    println!(
        "disk space ok: {free_gib:.1} GiB free in {}",
        root.display()
    );
    Ok(())
}

/// Points `.genae/libtorch` at `target` (relative when it lies inside `.genae`), replacing a
/// stale link but never a real file or directory.
fn make_link(layout: &Layout, target: &Path) -> Result<()> {
    let genae = layout
        .dir
        .canonicalize()
        .with_context(|| format!("cannot resolve {}", layout.dir.display()))?;
    let link_target = match target.strip_prefix(&genae) {
        Ok(relative) => relative.to_path_buf(),
        Err(_) => target.to_path_buf(),
    };
    match fs::symlink_metadata(&layout.link) {
        Ok(meta) if meta.file_type().is_symlink() => {
            let current = fs::read_link(&layout.link)
                .with_context(|| format!("cannot read link {}", layout.link.display()))?;
            if current == link_target {
                return Ok(());
            }
            println!(
                "replacing stale link .genae/libtorch -> {}",
                current.display()
            );
            fs::remove_file(&layout.link)
                .with_context(|| format!("cannot remove {}", layout.link.display()))?;
        }
        Ok(_) => bail!(
            "{} exists and is not a link: move it away (to use it, set LIBTORCH to its new place) \
             and run `cargo xtask setup` again",
            layout.link.display()
        ),
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => {
            return Err(e).with_context(|| format!("cannot inspect {}", layout.link.display()))
        }
    }
    std::os::unix::fs::symlink(&link_target, &layout.link).with_context(|| {
        format!(
            "cannot create link {} -> {}",
            layout.link.display(),
            link_target.display()
        )
    })?;
    println!("linked .genae/libtorch -> {}", link_target.display());
    Ok(())
}

/// Writes `.genae/setup.stamp` for `found` (atomically, via a temporary file).
fn write_stamp(layout: &Layout, found: &Libtorch) -> Result<()> {
    let text = format!(
        "torch={} abi={} source={} libtorch={}\n",
        found.version,
        found.abi,
        found.source.tag(),
        found.dir.display()
    );
    let tmp = layout.stamp.with_extension("stamp.tmp");
    fs::write(&tmp, text).with_context(|| format!("cannot write {}", tmp.display()))?;
    fs::rename(&tmp, &layout.stamp)
        .with_context(|| format!("cannot write {}", layout.stamp.display()))
}

/// Parses a stamp line (`torch=V abi=A source=S libtorch=PATH`); the source's own path is not
/// stored, so an `Env` source comes back with the stamped directory.
fn parse_stamp(text: &str) -> Option<Libtorch> {
    let line = text.lines().next()?;
    let mut fields = line.splitn(4, ' ');
    let version = fields.next()?.strip_prefix("torch=")?;
    let abi = fields.next()?.strip_prefix("abi=")?;
    let source = fields.next()?.strip_prefix("source=")?;
    let dir = PathBuf::from(fields.next()?.strip_prefix("libtorch=")?);
    let source = match source {
        "venv" => Source::Venv,
        "env" => Source::Env(dir.clone()),
        _ => return None,
    };
    Some(Libtorch {
        version: version.to_owned(),
        abi: abi.to_owned(),
        dir,
        source,
    })
}

/// The version of the libtorch in `dir`: `__version__` in `version.py` (pip torch), else the
/// first line of `build-version` (libtorch archives).
pub fn read_version(dir: &Path) -> Option<String> {
    if let Ok(text) = fs::read_to_string(dir.join("version.py")) {
        let found = text.lines().find_map(|line| {
            let rest = line.trim().strip_prefix("__version__")?;
            let rest = rest.trim_start().strip_prefix('=')?.trim();
            let quote = rest.chars().next().filter(|c| *c == '\'' || *c == '"')?;
            let inner = &rest[1..];
            Some(inner[..inner.find(quote)?].to_owned())
        });
        if found.is_some() {
            return found;
        }
    }
    let text = fs::read_to_string(dir.join("build-version")).ok()?;
    let line = text.lines().next()?.trim();
    (!line.is_empty()).then(|| line.to_owned())
}

/// Whether `version` is 2.11.0 (any local suffix such as `+cu130`), but not e.g. 2.11.01.
pub fn version_ok(version: &str) -> bool {
    version
        .strip_prefix(TORCH_VERSION)
        .is_some_and(|rest| !rest.starts_with(|c: char| c.is_ascii_digit()))
}

/// Human words for a source, for messages.
fn describe_source(source: &Source) -> String {
    match source {
        Source::Venv => "the venv (.genae/venv)".to_owned(),
        Source::Env(path) => format!("LIBTORCH={}", path.display()),
    }
}

/// For a pip torch package directory `<prefix>/lib/python3.X/site-packages/torch`, the
/// interpreter `<prefix>/bin/python3` (or `python`) when it exists.
fn python_of_package(dir: &Path) -> Option<PathBuf> {
    let site = dir.parent()?;
    if site.file_name()? != "site-packages" {
        return None;
    }
    let prefix = site.parent()?.parent()?.parent()?;
    ["python3", "python"]
        .iter()
        .map(|name| prefix.join("bin").join(name))
        .find(|p| p.exists())
}

/// Whether `a` and `b` are the same path, resolving their parent directories but not a link in
/// their last component: `LIBTORCH=/x` is not `.genae/libtorch` even when that link points at
/// `/x` (cargo's `[env]` sets `LIBTORCH` only when it is unset, so an outside one stays visible).
fn same_path(a: &Path, b: &Path) -> bool {
    let resolved = |p: &Path| -> Option<PathBuf> {
        Some(p.parent()?.canonicalize().ok()?.join(p.file_name()?))
    };
    a == b || matches!((resolved(a), resolved(b)), (Some(x), Some(y)) if x == y)
}
