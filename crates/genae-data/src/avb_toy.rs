//! The toy data set of Adversarial Variational Bayes (Mescheder et al., 2017, Table 1): the four
//! 2×2 binary images with exactly one pixel on, each with probability ¼. The best possible
//! log-likelihood of a model is `−ln 4 ≈ −1.386` nats per image.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::{DataError, Dataset, ImageSet};

/// The label names: which pixel is on.
pub const AVB_TOY_CLASSES: [&str; 4] = ["top-left", "top-right", "bottom-left", "bottom-right"];

fn images(labels: Vec<u32>) -> Result<ImageSet, DataError> {
    let mut pixels = vec![0u8; labels.len() * 4];
    for (i, &l) in labels.iter().enumerate() {
        pixels[4 * i + l as usize] = 255;
    }
    ImageSet::new(pixels, labels, [1, 2, 2])
}

/// `n_train` training images drawn independently and uniformly from the four (ChaCha8 seeded
/// by `seed`), and a balanced test set of `n_test` images (image `i` is pattern `i mod 4`), so
/// a test-set average is the expectation under the data distribution whenever `n_test` is a
/// multiple of 4. Labels are the index of the pixel that is on (row-major).
///
/// ```
/// use genae_data::avb_toy::avb_toy_dataset;
///
/// let data = avb_toy_dataset(100, 8, 0).unwrap();
/// assert_eq!(data.train.image_shape, [1, 2, 2]);
/// assert_eq!(data.test.image(5), &[0, 255, 0, 0]);
/// assert!((0..100).all(|i| data.train.image(i).iter().filter(|&&p| p == 255).count() == 1));
/// ```
pub fn avb_toy_dataset(n_train: usize, n_test: usize, seed: u64) -> Result<Dataset, DataError> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let train = (0..n_train).map(|_| rng.gen_range(0..4u32)).collect();
    let test = (0..n_test).map(|i| (i % 4) as u32).collect();
    Ok(Dataset {
        name: "avb-toy".into(),
        train: images(train)?,
        test: images(test)?,
        class_names: AVB_TOY_CLASSES.iter().map(|s| s.to_string()).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn training_draws_are_uniform_and_seeded() {
        let a = avb_toy_dataset(40_000, 4, 3).unwrap();
        let mut counts = [0usize; 4];
        for &l in &a.train.labels {
            counts[l as usize] += 1;
        }
        // Each count is Binomial(40000, ¼): sd ≈ 87.
        assert!(
            counts.iter().all(|&c| c.abs_diff(10_000) < 400),
            "{counts:?}"
        );
        assert_eq!(a, avb_toy_dataset(40_000, 4, 3).unwrap());
        assert_ne!(a.train, avb_toy_dataset(40_000, 4, 4).unwrap().train);
        assert_eq!(a.test.labels, vec![0, 1, 2, 3]);
    }
}
