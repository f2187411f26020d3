//! Transforms on plain image buffers: Bernoulli binarisation (static or per epoch) and a seeded
//! validation hold-out. Scaling to `[0, 1]` happens where tensors are made (bytes / 255).

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::{DataError, ImageSet};

/// How grey levels become binary pixels.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Binarization {
    /// Keep grey levels (a Bernoulli decoder then treats them as probabilities).
    #[default]
    None,
    /// Draw every pixel once with a fixed seed, for train and test alike.
    Static,
    /// Train: a fresh draw every epoch (seeded, so runs repeat); test: a static draw, as papers
    /// evaluate.
    Dynamic,
}

/// Replaces each byte `v` by 255 with probability `v / 255` and by 0 otherwise, drawing from
/// `rng` (16-bit thresholds, so the probability is exact to within 2⁻¹⁶).
pub fn binarize_in_place(pixels: &mut [u8], rng: &mut impl RngCore) {
    let mut noise = [0u8; 2 * BINARIZE_CHUNK];
    for chunk in pixels.chunks_mut(BINARIZE_CHUNK) {
        let noise = &mut noise[..chunk.len() * 2];
        rng.fill_bytes(noise);
        binarize_with(chunk, noise);
    }
}

/// Pixels binarised per `fill_bytes` call of [`binarize_in_place`].
const BINARIZE_CHUNK: usize = 256;

/// The 32-bit words of a ChaCha stream that [`binarize_in_place`] uses for `pixels` pixels
/// (each call of `fill_bytes` starts on a fresh word).
pub(crate) fn binarize_words(pixels: usize) -> u128 {
    let full = pixels / BINARIZE_CHUNK;
    let rest = pixels % BINARIZE_CHUNK;
    (full * BINARIZE_CHUNK / 2 + (2 * rest).div_ceil(4)) as u128
}

/// Binarises `pixels` as [`binarize_in_place`] would binarise them from pixel `offset` of a
/// longer buffer, `rng` standing where that buffer's draws start: one process's rows of a batch
/// binarised exactly as in the whole batch. Leaves `rng` after the rows' draws.
pub(crate) fn binarize_at(pixels: &mut [u8], offset: usize, rng: &mut ChaCha8Rng) {
    // Within one batch the draws are one contiguous byte stream, two bytes per pixel (only the
    // last `fill_bytes` call can end inside a word).
    let start = rng.get_word_pos() + (2 * offset / 4) as u128;
    let skip = (2 * offset) % 4;
    rng.set_word_pos(start);
    let mut noise = vec![0u8; skip + 2 * pixels.len()];
    rng.fill_bytes(&mut noise);
    binarize_with(pixels, &noise[skip..]);
}

/// Thresholds each pixel against its two noise bytes (`noise.len() == 2 * pixels.len()`).
fn binarize_with(pixels: &mut [u8], noise: &[u8]) {
    for (p, r) in pixels.iter_mut().zip(noise.chunks_exact(2)) {
        let u = u16::from_le_bytes([r[0], r[1]]) as u32; // uniform in 0..65536
                                                         // P(u * 255 < v * 65536) = v / 255 up to rounding of the threshold.
        *p = if u * 255 < (*p as u32) * 65536 {
            255
        } else {
            0
        };
    }
}

/// A copy of `set` binarised once with a generator seeded by `seed` (static binarisation).
///
/// ```
/// use genae_data::{ImageSet, transforms::binarize_static};
/// let set = ImageSet::new(vec![0, 255, 128, 7], vec![0], [1, 2, 2]).unwrap();
/// let b = binarize_static(&set, 1);
/// assert_eq!(&b.pixels[..2], &[0, 255]);
/// assert!(b.pixels.iter().all(|&p| p == 0 || p == 255));
/// assert_eq!(b, binarize_static(&set, 1));
/// ```
pub fn binarize_static(set: &ImageSet, seed: u64) -> ImageSet {
    let mut out = set.clone();
    binarize_in_place(&mut out.pixels, &mut ChaCha8Rng::seed_from_u64(seed));
    out
}

/// A seeded random permutation of `0..n` (Fisher–Yates on a ChaCha8 stream, the same on every
/// platform).
pub fn permutation(n: usize, seed: u64, stream: u64) -> Vec<usize> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    let mut order: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        // Unbiased draw from 0..=i by rejection.
        let bound = i as u64 + 1;
        let zone = u64::MAX - u64::MAX % bound;
        let j = loop {
            let r = rng.next_u64();
            if r < zone {
                break (r % bound) as usize;
            }
        };
        order.swap(i, j);
    }
    order
}

/// Splits `set` into `(train, validation)`, the validation part being `validation_size`
/// examples chosen by a seeded permutation; both keep the original relative order.
pub fn split_validation(
    set: &ImageSet,
    validation_size: usize,
    seed: u64,
) -> Result<(ImageSet, ImageSet), DataError> {
    if validation_size >= set.len() {
        return Err(DataError::InvalidArgument {
            name: "validation_size",
            reason: format!(
                "must be smaller than the training set ({} examples), got {validation_size}",
                set.len()
            ),
        });
    }
    let mut is_validation = vec![false; set.len()];
    for &i in &permutation(set.len(), seed, u64::MAX)[..validation_size] {
        is_validation[i] = true;
    }
    let image_len = set.image_len();
    let mut parts = [
        (Vec::new(), Vec::new()), // train
        (Vec::new(), Vec::new()), // validation
    ];
    for (i, &label) in set.labels.iter().enumerate() {
        let (pixels, labels) = &mut parts[is_validation[i] as usize];
        pixels.extend_from_slice(&set.pixels[i * image_len..(i + 1) * image_len]);
        labels.push(label);
    }
    let [(tp, tl), (vp, vl)] = parts;
    Ok((
        ImageSet::new(tp, tl, set.image_shape)?,
        ImageSet::new(vp, vl, set.image_shape)?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binarisation_frequency_matches_the_grey_level() {
        // 200k pixels at each of a few grey levels: the fraction set to 255 is v/255 within
        // 4 standard errors.
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        for v in [0u8, 1, 51, 128, 200, 254, 255] {
            let mut px = vec![v; 200_000];
            binarize_in_place(&mut px, &mut rng);
            let on = px.iter().filter(|&&p| p == 255).count() as f64 / px.len() as f64;
            let p = v as f64 / 255.0;
            let se = (p * (1.0 - p) / px.len() as f64).sqrt();
            assert!((on - p).abs() <= 4.0 * se + 1e-4, "v={v}: {on} vs {p}");
            assert!(px.iter().all(|&q| q == 0 || q == 255));
        }
    }

    #[test]
    fn permutation_is_a_seeded_permutation() {
        let a = permutation(1000, 5, 0);
        let mut sorted = a.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..1000).collect::<Vec<_>>());
        assert_eq!(a, permutation(1000, 5, 0));
        assert_ne!(a, permutation(1000, 5, 1));
        assert_ne!(a, permutation(1000, 6, 0));
        assert!(permutation(0, 1, 0).is_empty());
    }

    /// `crates/genae-lab/reference/pytorch_vae.py --draws genae` reproduces these draws in
    /// PyTorch (its `check_draws` holds the same numbers), so that `cargo xtask compare vae`
    /// trains and tests both implementations on the same binarised images in the same order.
    /// A change here must be made there too.
    #[test]
    fn draws_python_reproduces() {
        // Σ (31 i + 1) over the pixels i set to 255.
        let digest = |px: &[u8]| -> u64 {
            px.iter()
                .enumerate()
                .filter(|(_, &p)| p == 255)
                .map(|(i, _)| 31 * i as u64 + 1)
                .sum()
        };
        assert_eq!(permutation(10, 7, 3), [1, 6, 3, 5, 0, 4, 7, 2, 8, 9]);
        assert_eq!(permutation(60_000, 0, 1)[..4], [42637, 24822, 25612, 14814]);
        let mut ramp: Vec<u8> = (0..777u32).map(|i| (i % 256) as u8).collect();
        binarize_in_place(&mut ramp, &mut ChaCha8Rng::seed_from_u64(11));
        assert_eq!(digest(&ramp), 4_962_115);
        // Two calls on one stream, the first with an odd number of pixels.
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        rng.set_stream(2);
        let mut first: Vec<u8> = (0..301u32).map(|i| (i * 7 % 256) as u8).collect();
        let mut second: Vec<u8> = (0..300u32).map(|i| (i * 11 % 256) as u8).collect();
        binarize_in_place(&mut first, &mut rng);
        binarize_in_place(&mut second, &mut rng);
        assert_eq!([digest(&first), digest(&second)], [739_842, 658_453]);
    }

    #[test]
    fn validation_split_partitions_the_set() {
        let n = 50;
        let pixels: Vec<u8> = (0..n as u8).flat_map(|i| [i, i]).collect();
        let set = ImageSet::new(pixels, (0..n as u32).collect(), [1, 1, 2]).unwrap();
        let (train, val) = split_validation(&set, 10, 9).unwrap();
        assert_eq!((train.len(), val.len()), (40, 10));
        let mut all: Vec<u32> = train.labels.iter().chain(&val.labels).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..n as u32).collect::<Vec<_>>());
        for part in [&train, &val] {
            assert!(part.labels.windows(2).all(|w| w[0] < w[1]), "order kept");
            for (i, &l) in part.labels.iter().enumerate() {
                assert_eq!(part.image(i), &[l as u8, l as u8], "pixels follow labels");
            }
        }
        assert_eq!(split_validation(&set, 10, 9).unwrap().1, val);
        let err = split_validation(&set, 50, 9).unwrap_err().to_string();
        assert!(
            err.contains("validation_size") && err.contains("50"),
            "{err}"
        );
    }
}
