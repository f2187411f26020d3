//! Image folders: exact round trips (HWC to CHW, gray and RGB), the centre crop, sorted order,
//! subfolder labels, unreadable files under both policies, and folder errors.

use std::path::{Path, PathBuf};

use genae_data::formats::image_folder::{
    load_image_folder, Channels, ImageFolderOptions, OnUnreadable,
};
use genae_data::DataError;
use image::{GrayImage, Luma, Rgb, RgbImage, Rgba, RgbaImage};

fn options(size: u32, channels: Channels) -> ImageFolderOptions {
    ImageFolderOptions {
        size,
        channels,
        labels_from_subfolders: false,
        on_unreadable: OnUnreadable::Fail,
    }
}

/// A `w × h` RGB image with pixel (x, y) = (10 x + y, 100 + x, 200 + y).
fn gradient(w: u32, h: u32) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| {
        Rgb([(10 * x + y) as u8, (100 + x) as u8, (200 + y) as u8])
    })
}

fn solid(w: u32, h: u32, value: u8) -> RgbImage {
    RgbImage::from_pixel(w, h, Rgb([value, value, value]))
}

/// Saves `image` at `dir/name` (format from the extension), creating folders.
fn save(dir: &Path, name: &str, image: &RgbImage) -> PathBuf {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let format = image::ImageFormat::from_path(&path).unwrap();
    image.save_with_format(&path, format).unwrap();
    path
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, bytes).unwrap();
    path
}

/// Asserts that the error names `path` (by file name) and contains every one of `needles`.
fn assert_error(err: &DataError, path: &Path, needles: &[&str]) {
    let message = err.to_string();
    eprintln!("{message}");
    let name = path.file_name().unwrap().to_str().unwrap();
    assert!(message.contains(name), "`{message}` does not name `{name}`");
    for needle in needles {
        assert!(
            message.contains(needle),
            "`{message}` does not contain `{needle}`"
        );
    }
}

#[test]
fn rgb_round_trip_is_exact_and_planar() {
    let dir = tempfile::tempdir().unwrap();
    save(dir.path(), "a.png", &gradient(4, 4));
    let folder = load_image_folder(dir.path(), &options(4, Channels::Rgb)).unwrap();
    let set = &folder.images;
    assert_eq!(set.image_shape, [3, 4, 4]);
    assert_eq!(set.labels, vec![0]);
    assert!(folder.class_names.is_empty() && folder.skipped.is_empty());
    let image = set.image(0);
    for y in 0..4 {
        for x in 0..4 {
            assert_eq!(image[y * 4 + x] as usize, 10 * x + y);
            assert_eq!(image[16 + y * 4 + x] as usize, 100 + x);
            assert_eq!(image[32 + y * 4 + x] as usize, 200 + y);
        }
    }
    // Green plane, row 1, column 3.
    assert_eq!(image[16 + 4 + 3], 103);
}

#[test]
fn gray_round_trip_is_exact() {
    let dir = tempfile::tempdir().unwrap();
    let gray = GrayImage::from_fn(3, 3, |x, y| Luma([(20 * y + x) as u8]));
    gray.save(dir.path().join("g.png")).unwrap();
    let folder = load_image_folder(dir.path(), &options(3, Channels::Gray)).unwrap();
    assert_eq!(folder.images.image_shape, [1, 3, 3]);
    assert_eq!(folder.images.pixels, vec![0, 1, 2, 20, 21, 22, 40, 41, 42]);
    // A gray image read as RGB: three equal planes.
    let rgb = load_image_folder(dir.path(), &options(3, Channels::Rgb)).unwrap();
    assert_eq!(rgb.images.image_shape, [3, 3, 3]);
    assert_eq!(&rgb.images.pixels[..9], &rgb.images.pixels[18..]);
    assert_eq!(rgb.images.pixels[9 + 3 + 2], 22); // green, row 1, column 2
}

#[test]
fn centre_crop_keeps_the_middle_square() {
    let dir = tempfile::tempdir().unwrap();
    // 40 wide x 20 high: black sides, white middle 20x20 square (x in 10..30).
    let wide = RgbImage::from_fn(40, 20, |x, _| {
        if (10..30).contains(&x) {
            Rgb([255; 3])
        } else {
            Rgb([0; 3])
        }
    });
    save(dir.path(), "wide.png", &wide);
    // 20 wide x 40 high: black top and bottom, white middle.
    let tall = RgbImage::from_fn(20, 40, |_, y| {
        if (10..30).contains(&y) {
            Rgb([255; 3])
        } else {
            Rgb([0; 3])
        }
    });
    save(dir.path(), "tall.png", &tall);
    for channels in [Channels::Rgb, Channels::Gray] {
        let folder = load_image_folder(dir.path(), &options(10, channels)).unwrap();
        assert_eq!(folder.images.len(), 2);
        assert_eq!(folder.images.image_shape, [channels.count(), 10, 10]);
        assert!(
            folder.images.pixels.iter().all(|&p| p == 255),
            "{:?}",
            folder.images.pixels
        );
    }
}

#[test]
fn resizing_averages_down_and_scales_up() {
    let dir = tempfile::tempdir().unwrap();
    // Left half 0, right half 200: downscaled to 2x2 the halves stay apart.
    let halves = RgbImage::from_fn(8, 8, |x, _| Rgb([if x < 4 { 0 } else { 200 }; 3]));
    save(dir.path(), "halves.png", &halves);
    let folder = load_image_folder(dir.path(), &options(2, Channels::Gray)).unwrap();
    let p = &folder.images.pixels;
    assert!(p[0] < 40 && p[2] < 40, "{p:?}");
    assert!(p[1] > 160 && p[3] > 160, "{p:?}");

    let dir = tempfile::tempdir().unwrap();
    save(dir.path(), "tiny.png", &solid(2, 2, 77));
    let folder = load_image_folder(dir.path(), &options(5, Channels::Rgb)).unwrap();
    assert_eq!(folder.images.image_shape, [3, 5, 5]);
    assert!(folder.images.pixels.iter().all(|&p| p == 77));
}

#[test]
fn files_are_read_recursively_in_sorted_order_with_any_extension_case() {
    let dir = tempfile::tempdir().unwrap();
    save(dir.path(), "b.png", &solid(4, 4, 2));
    save(dir.path(), "a.PNG", &solid(4, 4, 1));
    save(dir.path(), "c/d.png", &solid(4, 4, 3));
    save(dir.path(), "c/e/f.JpEg", &solid(8, 8, 120));
    save(dir.path(), "c/z.jpg", &solid(8, 8, 60));
    write(dir.path(), "notes.txt", b"not an image");
    write(dir.path(), ".hidden.png", b"ignored, even though broken");
    write(dir.path(), ".cache/x.png", b"ignored, in a hidden folder");
    let folder = load_image_folder(dir.path(), &options(4, Channels::Gray)).unwrap();
    let firsts: Vec<u8> = (0..folder.images.len())
        .map(|i| folder.images.image(i)[0])
        .collect();
    assert_eq!(firsts.len(), 5);
    assert_eq!(&firsts[..3], &[1, 2, 3]);
    // JPEG is lossy: close, not exact. c/e/f.JpEg sorts before c/z.jpg.
    assert!(firsts[3].abs_diff(120) <= 3, "{firsts:?}");
    assert!(firsts[4].abs_diff(60) <= 3, "{firsts:?}");
    assert_eq!(folder.images.labels, vec![0; 5]);
}

#[test]
fn many_files_keep_their_order_across_threads() {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..100u8 {
        save(dir.path(), &format!("img_{i:03}.png"), &solid(3, 5, i));
    }
    let folder = load_image_folder(dir.path(), &options(3, Channels::Gray)).unwrap();
    assert_eq!(folder.images.len(), 100);
    for i in 0..100 {
        assert!(folder.images.image(i).iter().all(|&p| p as usize == i));
    }
}

#[test]
fn alpha_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let rgba = RgbaImage::from_pixel(2, 2, Rgba([10, 20, 30, 0]));
    rgba.save(dir.path().join("transparent.png")).unwrap();
    let folder = load_image_folder(dir.path(), &options(2, Channels::Rgb)).unwrap();
    assert_eq!(
        folder.images.pixels,
        vec![10, 10, 10, 10, 20, 20, 20, 20, 30, 30, 30, 30]
    );
}

#[test]
fn labels_come_from_sorted_subfolder_names() {
    let dir = tempfile::tempdir().unwrap();
    save(dir.path(), "dogs/1.png", &solid(4, 4, 30));
    save(dir.path(), "cats/2.png", &solid(4, 4, 20));
    save(dir.path(), "cats/1.png", &solid(4, 4, 10));
    save(dir.path(), "top_level.png", &solid(4, 4, 99)); // not in a class folder: ignored
    std::fs::create_dir_all(dir.path().join("empty")).unwrap(); // no images: not a class
    write(dir.path(), "birds/readme.txt", b"no images here either");
    let mut opts = options(4, Channels::Gray);
    opts.labels_from_subfolders = true;
    let folder = load_image_folder(dir.path(), &opts).unwrap();
    assert_eq!(
        folder.class_names,
        vec!["cats".to_string(), "dogs".to_string()]
    );
    assert_eq!(folder.images.labels, vec![0, 0, 1]);
    let firsts: Vec<u8> = (0..3).map(|i| folder.images.image(i)[0]).collect();
    assert_eq!(firsts, vec![10, 20, 30]);
}

#[test]
fn unreadable_image_fails_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    save(dir.path(), "good.png", &solid(4, 4, 1));
    let broken = write(
        dir.path(),
        "broken.png",
        b"\x89PNG\r\n\x1a\nthis is not really a png",
    );
    let err = load_image_folder(dir.path(), &options(4, Channels::Rgb)).unwrap_err();
    assert!(matches!(err, DataError::BadFile { .. }), "{err:?}");
    assert_error(&err, &broken, &["cannot decode image"]);

    // A text file with an image name.
    let dir = tempfile::tempdir().unwrap();
    let text = write(dir.path(), "text.jpg", b"plain text");
    let err = load_image_folder(dir.path(), &options(4, Channels::Rgb)).unwrap_err();
    assert_error(&err, &text, &["cannot decode image"]);
}

#[test]
fn the_first_unreadable_file_in_order_is_reported_among_many() {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..64u8 {
        save(dir.path(), &format!("img_{i:03}.png"), &solid(2, 2, i));
    }
    // Broken files late and early: the earliest in sorted order is the one reported.
    write(dir.path(), "img_050.png", b"garbage");
    write(dir.path(), "img_020.png", b"garbage");
    let err = load_image_folder(dir.path(), &options(2, Channels::Gray)).unwrap_err();
    assert_error(
        &err,
        &dir.path().join("img_020.png"),
        &["cannot decode image"],
    );
    assert!(!err.to_string().contains("img_050"), "{err}");
}

#[test]
fn unreadable_images_are_skipped_and_listed_under_skip() {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..30u8 {
        save(dir.path(), &format!("img_{i:03}.png"), &solid(2, 2, i));
    }
    let late = write(dir.path(), "img_025.png", b"garbage");
    let early = write(dir.path(), "img_003.png", b"");
    let mut opts = options(2, Channels::Gray);
    opts.on_unreadable = OnUnreadable::Skip;
    let folder = load_image_folder(dir.path(), &opts).unwrap();
    assert_eq!(folder.images.len(), 28);
    let skipped: Vec<&PathBuf> = folder.skipped.iter().map(|(p, _)| p).collect();
    assert_eq!(skipped, vec![&early, &late]);
    assert!(
        folder.skipped[0].1.contains("cannot decode image"),
        "{:?}",
        folder.skipped
    );
    let firsts: Vec<u8> = (0..28).map(|i| folder.images.image(i)[0]).collect();
    let expected: Vec<u8> = (0..30).filter(|&i| i != 3 && i != 25).collect();
    assert_eq!(firsts, expected);
}

#[test]
fn all_images_skipped_is_an_error() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("all_broken");
    let first = write(&dir, "a.png", b"garbage");
    write(&dir, "b.jpg", b"garbage");
    let mut opts = options(8, Channels::Rgb);
    opts.on_unreadable = OnUnreadable::Skip;
    let err = load_image_folder(&dir, &opts).unwrap_err();
    assert_error(&err, &dir, &["all 2 images were unreadable"]);
    assert_error(&err, &first, &[]);
}

#[test]
fn empty_folder_says_what_was_looked_for() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("nothing_here");
    write(&dir, "notes.txt", b"no images");
    let err = load_image_folder(&dir, &options(8, Channels::Rgb)).unwrap_err();
    assert!(matches!(err, DataError::BadFile { .. }), "{err:?}");
    assert_error(&err, &dir, &["no images found", ".png, .jpg or .jpeg"]);

    let mut opts = options(8, Channels::Rgb);
    opts.labels_from_subfolders = true;
    save(&dir, "top.png", &solid(2, 2, 0));
    let err = load_image_folder(&dir, &opts).unwrap_err();
    assert_error(&err, &dir, &["no images found", "subfolders"]);
}

#[test]
fn missing_folder_not_a_folder_and_bad_sizes() {
    let parent = tempfile::tempdir().unwrap();
    let missing = parent.path().join("no_such_folder");
    let err = load_image_folder(&missing, &options(8, Channels::Rgb)).unwrap_err();
    assert!(matches!(err, DataError::Io { .. }), "{err:?}");
    assert_error(&err, &missing, &["cannot read"]);

    let file = save(parent.path(), "single.png", &solid(2, 2, 0));
    let err = load_image_folder(&file, &options(8, Channels::Rgb)).unwrap_err();
    assert_error(&err, &file, &["not a folder"]);

    let err = load_image_folder(parent.path(), &options(0, Channels::Rgb)).unwrap_err();
    assert!(
        matches!(err, DataError::InvalidArgument { name: "size", .. }),
        "{err:?}"
    );

    // A side so large that one image overflows usize: an error before anything is decoded.
    let err = load_image_folder(parent.path(), &options(u32::MAX, Channels::Rgb)).unwrap_err();
    assert!(
        matches!(err, DataError::InvalidArgument { name: "size", .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("do not fit in memory"), "{err}");
}
