//! Folders of PNG/JPEG images (e.g. CelebA), centre-cropped and resized.
//!
//! [`load_image_folder`] finds every `.png`, `.jpg` and `.jpeg` file (any case; names starting
//! with `.`, such as macOS `._*` resource forks, are ignored), sorts the paths, decodes each one
//! with the `image` crate (the format is taken from the content, not the extension), converts it
//! to [`Channels::Gray`] (Rec. 709 luma) or [`Channels::Rgb`] (alpha dropped), crops the largest
//! centred square and resizes that to `size × size` with a triangle (bilinear, antialiased)
//! filter. The result is an [`ImageSet`] of shape `[C, size, size]` in sorted path order, so two
//! runs over the same folder give the same set.
//!
//! With [`ImageFolderOptions::labels_from_subfolders`] the immediate subfolders of `dir` are the
//! classes: their names, sorted, are labels `0, 1, …` (only subfolders holding at least one image
//! count) and the images directly inside each are read. Otherwise every label is 0 and the folder
//! is searched recursively.
//!
//! Images are decoded on several threads; the order of the output does not depend on it. A file
//! that cannot be read or decoded stops the load with an error naming it
//! ([`OnUnreadable::Fail`]), or is skipped with a warning on stderr and listed in
//! [`ImageFolder::skipped`] ([`OnUnreadable::Skip`]).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use image::imageops::{self, FilterType};

use crate::{DataError, ImageSet};

/// File extensions read, compared without regard to case.
pub const IMAGE_EXTENSIONS: [&str; 3] = ["png", "jpg", "jpeg"];

/// Deepest folder nesting searched in recursive mode (a guard against pathological trees).
const MAX_DEPTH: usize = 64;

/// What to do with a file that cannot be decoded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnUnreadable {
    /// Stop with an error naming the file (the default).
    #[default]
    Fail,
    /// Skip it with a warning on stderr (and list it in [`ImageFolder::skipped`]).
    Skip,
}

/// Channels to decode to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channels {
    /// 1 channel.
    Gray,
    /// 3 channels.
    #[default]
    Rgb,
}

impl Channels {
    /// Number of channels: 1 or 3.
    pub fn count(self) -> usize {
        match self {
            Self::Gray => 1,
            Self::Rgb => 3,
        }
    }
}

/// How to read an image folder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageFolderOptions {
    /// Output side in pixels (square): centre crop to a square, then resize (64 = CelebA convention).
    pub size: u32,
    /// Channels of the output.
    pub channels: Channels,
    /// Label each image by its immediate subfolder (sorted names → 0, 1, …); otherwise all labels 0.
    pub labels_from_subfolders: bool,
    /// Unreadable files: fail (default) or skip.
    pub on_unreadable: OnUnreadable,
}

impl Default for ImageFolderOptions {
    /// 64×64 RGB, no labels, fail on unreadable files.
    fn default() -> Self {
        Self {
            size: 64,
            channels: Channels::Rgb,
            labels_from_subfolders: false,
            on_unreadable: OnUnreadable::Fail,
        }
    }
}

/// A decoded image folder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageFolder {
    /// The images, `[C, size, size]` each, in sorted path order (skipped files left out).
    pub images: ImageSet,
    /// Subfolder names by label (empty without `labels_from_subfolders`).
    pub class_names: Vec<String>,
    /// Files skipped under [`OnUnreadable::Skip`], with the reason.
    pub skipped: Vec<(PathBuf, String)>,
}

/// Reads every `.png`, `.jpg` and `.jpeg` (any case) under `dir` (one level of subfolders when
/// `labels_from_subfolders`, else the folder itself and its subfolders recursively), in sorted
/// path order.
pub fn load_image_folder(
    dir: &Path,
    options: &ImageFolderOptions,
) -> Result<ImageFolder, DataError> {
    if options.size == 0 {
        return Err(DataError::InvalidArgument {
            name: "size",
            reason: "the output side must be at least 1 pixel, got 0".to_string(),
        });
    }
    let metadata = std::fs::metadata(dir).map_err(|err| DataError::io(dir, &err))?;
    if !metadata.is_dir() {
        return Err(DataError::bad_file(dir, "not a folder"));
    }

    let (files, class_names) = if options.labels_from_subfolders {
        let mut files = Vec::new();
        let mut class_names = Vec::new();
        for sub in sorted_entries(dir)? {
            if !sub.is_dir || is_hidden(&sub.path) {
                continue;
            }
            let images: Vec<PathBuf> = sorted_entries(&sub.path)?
                .into_iter()
                .filter(|e| !e.is_dir && is_image_path(&e.path))
                .map(|e| e.path)
                .collect();
            if images.is_empty() {
                continue;
            }
            let label = class_names.len() as u32;
            class_names.push(file_name(&sub.path));
            files.extend(images.into_iter().map(|p| (p, label)));
        }
        (files, class_names)
    } else {
        let mut files = Vec::new();
        let mut visited = HashSet::new();
        collect_recursive(dir, 0, &mut visited, &mut files)?;
        files.sort();
        (files.into_iter().map(|p| (p, 0)).collect(), Vec::new())
    };

    if files.is_empty() {
        let where_ = if options.labels_from_subfolders {
            "directly inside its immediate subfolders (labels_from_subfolders)"
        } else {
            "in it or its subfolders"
        };
        return Err(DataError::bad_file(
            dir,
            format!(
                "no images found: looked for files ending in .png, .jpg or .jpeg (any case) \
                 {where_}"
            ),
        ));
    }

    let side = options.size;
    let channels = options.channels;
    let fail_fast = options.on_unreadable == OnUnreadable::Fail;
    let shape = [channels.count(), side as usize, side as usize];
    // One buffer for every image, written in place by the decoding threads, then compacted over
    // the skipped ones: peak memory is the data set's size, not twice it.
    let too_big = || DataError::InvalidArgument {
        name: "size",
        reason: format!(
            "{} images of {}x{side}x{side} bytes do not fit in memory",
            files.len(),
            shape[0]
        ),
    };
    let total = shape
        .iter()
        .try_fold(files.len(), |acc, &d| acc.checked_mul(d))
        .ok_or_else(too_big)?;
    let image_len = total / files.len(); // `files` is not empty
    let mut pixels = Vec::new();
    pixels.try_reserve_exact(total).map_err(|_| too_big())?;
    pixels.resize(total, 0);
    let results = decode_all(
        &files,
        &mut pixels,
        image_len,
        |path, out| load_one(path, side, channels, out),
        fail_fast,
    );

    let mut labels = Vec::with_capacity(files.len());
    let mut skipped = Vec::new();
    let mut kept_len = 0;
    for (i, ((path, label), result)) in files.iter().zip(results).enumerate() {
        match result {
            Some(Ok(())) => {
                let at = i * image_len;
                if at != kept_len {
                    pixels.copy_within(at..at + image_len, kept_len);
                }
                kept_len += image_len;
                labels.push(*label);
            }
            Some(Err(Unreadable::Io(err))) if fail_fast => return Err(DataError::io(path, &err)),
            Some(Err(Unreadable::Decode(reason))) if fail_fast => {
                return Err(DataError::bad_file(path, reason))
            }
            Some(Err(err)) => {
                let reason = err.to_string();
                eprintln!("warning: skipping `{}`: {reason}", path.display());
                skipped.push((path.clone(), reason));
            }
            // Only after a failure under `Fail`, which returned above.
            None => {
                return Err(DataError::bad_file(
                    path,
                    "not decoded (an earlier file failed)",
                ))
            }
        }
    }
    pixels.truncate(kept_len);
    if !skipped.is_empty() {
        pixels.shrink_to_fit();
    }
    if labels.is_empty() {
        let (first, reason) = skipped
            .first()
            .map(|(p, r)| (p.display().to_string(), r.as_str()))
            .unwrap_or_default();
        return Err(DataError::bad_file(
            dir,
            format!(
                "all {} images were unreadable and skipped (the first, `{first}`: {reason})",
                skipped.len()
            ),
        ));
    }
    let images = ImageSet::new(pixels, labels, shape)?;
    Ok(ImageFolder {
        images,
        class_names,
        skipped,
    })
}

/// Why one file could not be used.
enum Unreadable {
    /// It could not be read.
    Io(std::io::Error),
    /// It was read but is not a decodable image.
    Decode(String),
}

impl std::fmt::Display for Unreadable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Io(err) => write!(f, "cannot read it: {err}"),
            Self::Decode(reason) => f.write_str(reason),
        }
    }
}

/// Reads, decodes, converts, centre-crops and resizes one image into `out` (`C × side × side`
/// bytes, planar).
fn load_one(path: &Path, side: u32, channels: Channels, out: &mut [u8]) -> Result<(), Unreadable> {
    let bytes = std::fs::read(path).map_err(Unreadable::Io)?;
    decode_into(&bytes, side, channels, out)
}

/// Decodes one PNG or JPEG file's bytes as the folder loader does: converted to `channels`,
/// centre-cropped to a square and resized to `side × side`, planar (`C × side × side` bytes).
/// The `image` crate's default limits bound what a header can make it allocate.
pub fn decode_image(bytes: &[u8], side: u32, channels: Channels) -> Result<Vec<u8>, String> {
    let mut out = vec![0; channels.count() * side as usize * side as usize];
    decode_into(bytes, side, channels, &mut out).map_err(|e| e.to_string())?;
    Ok(out)
}

fn decode_into(
    bytes: &[u8],
    side: u32,
    channels: Channels,
    out: &mut [u8],
) -> Result<(), Unreadable> {
    let image = image::load_from_memory(bytes)
        .map_err(|err| Unreadable::Decode(format!("cannot decode image: {err}")))?;
    let (width, height) = (image.width(), image.height());
    if width == 0 || height == 0 {
        return Err(Unreadable::Decode(format!(
            "image is {width}x{height}: nothing to crop"
        )));
    }
    let square = width.min(height);
    let (x0, y0) = ((width - square) / 2, (height - square) / 2);
    let filter = FilterType::Triangle;
    let wrong_size = |len: usize| {
        Unreadable::Decode(format!(
            "internal error: resized to {len} bytes, expected {}",
            out.len()
        ))
    };
    match channels {
        Channels::Gray => {
            let gray = image.to_luma8();
            drop(image);
            let crop = imageops::crop_imm(&gray, x0, y0, square, square).to_image();
            let resized = if square == side {
                crop
            } else {
                imageops::resize(&crop, side, side, filter)
            };
            let raw = resized.as_raw();
            if raw.len() != out.len() {
                return Err(wrong_size(raw.len()));
            }
            out.copy_from_slice(raw);
        }
        Channels::Rgb => {
            let rgb = image.to_rgb8();
            drop(image);
            let crop = imageops::crop_imm(&rgb, x0, y0, square, square).to_image();
            let resized = if square == side {
                crop
            } else {
                imageops::resize(&crop, side, side, filter)
            };
            // Interleaved HWC to planar CHW.
            let hwc = resized.as_raw();
            if hwc.len() != out.len() {
                return Err(wrong_size(hwc.len()));
            }
            let plane = hwc.len() / 3;
            let (r, gb) = out.split_at_mut(plane);
            let (g, b) = gb.split_at_mut(plane);
            for (((px, r), g), b) in hwc.chunks_exact(3).zip(r).zip(g).zip(b) {
                *r = px[0];
                *g = px[1];
                *b = px[2];
            }
        }
    }
    Ok(())
}

/// Applies `load` to every file on a few threads, each image into its own `image_len`-byte slot
/// of `pixels` (`files.len() * image_len` bytes); returns each file's outcome, in file order.
///
/// Every thread works through one contiguous run of files, in order. With `fail_fast`, a thread
/// stops at its first failure, and so does every thread working on a later run once an earlier
/// run has failed (their remaining files are `None`); threads on earlier runs carry on, so every
/// outcome up to and including the first failure in file order is there.
fn decode_all<F>(
    files: &[(PathBuf, u32)],
    pixels: &mut [u8],
    image_len: usize,
    load: F,
    fail_fast: bool,
) -> Vec<Option<Result<(), Unreadable>>>
where
    F: Fn(&Path, &mut [u8]) -> Result<(), Unreadable> + Sync,
{
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 16)
        .min(files.len().div_ceil(8).max(1));
    let first_failed_run = AtomicUsize::new(usize::MAX);
    let run = |index: usize, chunk: &[(PathBuf, u32)], slots: &mut [u8]| {
        let mut out: Vec<Option<Result<(), Unreadable>>> = Vec::with_capacity(chunk.len());
        for ((path, _), slot) in chunk.iter().zip(slots.chunks_exact_mut(image_len)) {
            if fail_fast && first_failed_run.load(Ordering::Relaxed) < index {
                break;
            }
            let result = load(path, slot);
            let failed = result.is_err();
            out.push(Some(result));
            if failed && fail_fast {
                first_failed_run.fetch_min(index, Ordering::Relaxed);
                break;
            }
        }
        out.resize_with(chunk.len(), || None);
        out
    };
    let chunk_len = files.len().div_ceil(threads).max(1);
    if threads <= 1 {
        return run(0, files, pixels);
    }
    std::thread::scope(|scope| {
        let handles: Vec<_> = files
            .chunks(chunk_len)
            .zip(pixels.chunks_mut(chunk_len * image_len))
            .enumerate()
            .map(|(index, (chunk, slots))| {
                let run = &run;
                scope.spawn(move || run(index, chunk, slots))
            })
            .collect();
        let mut results = Vec::with_capacity(files.len());
        for handle in handles {
            match handle.join() {
                Ok(part) => results.extend(part),
                // A panic inside the image decoder: re-raise it on this thread.
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        results
    })
}

/// A directory entry: its path and whether it is (or links to) a folder.
struct Entry {
    path: PathBuf,
    is_dir: bool,
}

/// The entries of `dir`, sorted by path; symbolic links are followed (broken ones are kept as
/// files, so that image-named ones are reported as unreadable).
fn sorted_entries(dir: &Path) -> Result<Vec<Entry>, DataError> {
    let read = std::fs::read_dir(dir).map_err(|err| DataError::io(dir, &err))?;
    let mut entries = Vec::new();
    for entry in read {
        let entry = entry.map_err(|err| DataError::io(dir, &err))?;
        let path = entry.path();
        let is_dir = match entry.file_type() {
            Ok(t) if t.is_symlink() => std::fs::metadata(&path).is_ok_and(|m| m.is_dir()),
            Ok(t) => t.is_dir(),
            Err(err) => return Err(DataError::io(&path, &err)),
        };
        entries.push(Entry { path, is_dir });
    }
    entries.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(entries)
}

/// Collects image files under `dir` recursively, visiting each real folder once (so symbolic
/// link cycles end).
fn collect_recursive(
    dir: &Path,
    depth: usize,
    visited: &mut HashSet<PathBuf>,
    files: &mut Vec<PathBuf>,
) -> Result<(), DataError> {
    let canonical = std::fs::canonicalize(dir).map_err(|err| DataError::io(dir, &err))?;
    if depth > MAX_DEPTH || !visited.insert(canonical) {
        return Ok(());
    }
    for entry in sorted_entries(dir)? {
        if is_hidden(&entry.path) {
            continue;
        }
        if entry.is_dir {
            collect_recursive(&entry.path, depth + 1, visited, files)?;
        } else if is_image_path(&entry.path) {
            files.push(entry.path);
        }
    }
    Ok(())
}

/// Whether the file name ends in one of [`IMAGE_EXTENSIONS`], in any case.
fn is_image_path(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.iter().any(|x| e.eq_ignore_ascii_case(x)))
}

/// Whether the file or folder name starts with `.`.
fn is_hidden(path: &Path) -> bool {
    path.file_name()
        .is_some_and(|n| n.as_encoded_bytes().first() == Some(&b'.'))
}

/// The last component of `path`, lossily as UTF-8.
fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}
