//! The procedural shapes data set, in the spirit of dSprites.
//!
//! Each 1×H×W binary image shows one [`Shape`] at one point of a factor grid:
//! `n_scales` scales (linspace 0.5..=1), `n_rotations` rotations (multiples of
//! 2π / `n_rotations`) and `n_positions`² centre positions. The flat grid index
//! uses dSprites' `latents_classes` order (shape, scale, rotation, pos_x, pos_y,
//! pos_y fastest).
//!
//! Geometry: a pixel is on iff its centre lies inside the shape. All three shapes
//! have the area of a disc of radius `scale × 0.22 × image_size` (so at scale 1
//! the equal-area disc spans 44% of the frame). Shapes are centred on their area
//! centroid, and centres are kept far enough from the border (shape extent plus
//! one pixel) that no shape at any rotation reaches the outermost pixel ring.
//!
//! Sampled factors are bit-identical on every platform (ChaCha8 stream of a `u64`
//! seed); pixels are plain IEEE arithmetic apart from one `sin`/`cos` per image.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::{DataError, Dataset, ImageSet};

/// The five factors of a shapes image, in dSprites' order (the order of [`Factors`]' fields
/// and of the flat grid index).
pub const FACTOR_NAMES: [&str; 5] = ["shape", "scale", "rotation", "pos_x", "pos_y"];

/// Radius of the equal-area disc of a scale-1 shape, as a fraction of the image size.
pub const BASE_RADIUS_FRACTION: f64 = 0.22;
/// Pixels kept free between any shape and the frame edge.
const BORDER_PX: f64 = 1.0;
/// Half side of the unit-area-π square: 4h² = π.
const SQUARE_HALF: f64 = 0.886_226_925_452_758; // sqrt(pi) / 2
/// Semi-major axis of the area-π ellipse with aspect 2:1: π a²/2 = π.
const ELLIPSE_A: f64 = std::f64::consts::SQRT_2;
/// y of the area centroid of that heart (y up, point at y = −1).
const HEART_CENTROID_Y: f64 = 0.2935;
/// sqrt(A / π) with A ≈ 3.662 the area inside (x²+y²−1)³ − x²y³ = 0: raw heart
/// units per normalised unit (checked by numerical integration in the tests).
const HEART_K: f64 = 1.079_653_093_917;
/// Farthest point of the normalised heart from its centroid (raw 1.290 × sqrt(π/area)).
const HEART_EXTENT: f64 = 1.195;
/// Largest distance of any normalised shape point from the shape centre.
const MAX_EXTENT: f64 = ELLIPSE_A;

/// The three shapes, with labels 0, 1, 2.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Shape {
    /// An axis-aligned square at rotation 0.
    Square,
    /// A 2:1 ellipse, long axis horizontal at rotation 0.
    Ellipse,
    /// A heart, point down at rotation 0.
    Heart,
}

impl Shape {
    /// All shapes in label order.
    pub const ALL: [Shape; 3] = [Shape::Square, Shape::Ellipse, Shape::Heart];

    /// The label of this shape (0 square, 1 ellipse, 2 heart).
    pub fn index(self) -> usize {
        self as usize
    }

    /// The shape with label `i`, if `i < 3`.
    pub fn from_index(i: usize) -> Option<Shape> {
        Self::ALL.get(i).copied()
    }

    /// Lower-case name: `"square"`, `"ellipse"` or `"heart"`.
    pub fn name(self) -> &'static str {
        match self {
            Shape::Square => "square",
            Shape::Ellipse => "ellipse",
            Shape::Heart => "heart",
        }
    }

    /// Distance of the farthest point from the centre, in normalised units.
    fn extent(self) -> f64 {
        match self {
            Shape::Square => SQUARE_HALF * std::f64::consts::SQRT_2,
            Shape::Ellipse => ELLIPSE_A,
            Shape::Heart => HEART_EXTENT,
        }
    }

    /// Whether normalised shape-local point (u, v) (v pointing down) is inside.
    #[inline]
    fn contains(self, u: f64, v: f64) -> bool {
        match self {
            Shape::Square => u.abs() <= SQUARE_HALF && v.abs() <= SQUARE_HALF,
            Shape::Ellipse => {
                let (x, y) = (u / ELLIPSE_A, v / (0.5 * ELLIPSE_A));
                x * x + y * y <= 1.0
            }
            Shape::Heart => {
                let (x, y) = (u * HEART_K, HEART_CENTROID_Y - v * HEART_K);
                let (x2, r) = (x * x, x * x + y * y - 1.0);
                r * r * r - x2 * y * y * y <= 0.0
            }
        }
    }
}

/// The factor grid and image size of a shapes data set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ShapesSpec {
    /// Height and width in pixels (at least 8).
    pub image_size: usize,
    /// Number of scales, linspace 0.5..=1.
    pub n_scales: usize,
    /// Number of rotations, multiples of 2π / `n_rotations`.
    pub n_rotations: usize,
    /// Number of positions per axis.
    pub n_positions: usize,
}

impl Default for ShapesSpec {
    /// dSprites-like: 64×64, 6 scales, 40 rotations, 32×32 positions.
    fn default() -> Self {
        Self {
            image_size: 64,
            n_scales: 6,
            n_rotations: 40,
            n_positions: 32,
        }
    }
}

/// One point of the factor grid: indices, not values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Factors {
    /// The shape.
    pub shape: Shape,
    /// Scale index in `0..n_scales`.
    pub scale: usize,
    /// Rotation index in `0..n_rotations`.
    pub rotation: usize,
    /// Horizontal position index in `0..n_positions` (left to right).
    pub pos_x: usize,
    /// Vertical position index in `0..n_positions` (top to bottom).
    pub pos_y: usize,
}

/// `lo + (hi - lo) * i / (n - 1)`, or `single` when `n <= 1`.
fn linspace(i: usize, n: usize, lo: f64, hi: f64, single: f64) -> f64 {
    if n <= 1 {
        return single;
    }
    lo + (hi - lo) * i as f64 / (n - 1) as f64
}

/// Rounds values within 1e-12 of an integer (exact 0/±1 for right angles).
fn snap(x: f64) -> f64 {
    if (x - x.round()).abs() < 1e-12 {
        x.round()
    } else {
        x
    }
}

impl ShapesSpec {
    /// Smaller grid used by [`crate::default_dataset`]: 32×32, 6 scales,
    /// 40 rotations, 16×16 positions.
    pub fn small() -> Self {
        Self {
            image_size: 32,
            n_scales: 6,
            n_rotations: 40,
            n_positions: 16,
        }
    }

    /// Checks `image_size >= 8`, every count `>= 1` and that the grid size fits in `usize`.
    pub fn validate(&self) -> Result<(), DataError> {
        let fields = [
            ("image_size", self.image_size, 8),
            ("n_scales", self.n_scales, 1),
            ("n_rotations", self.n_rotations, 1),
            ("n_positions", self.n_positions, 1),
        ];
        for (field, value, min) in fields {
            if value < min {
                return Err(DataError::InvalidSpec { field, value, min });
            }
        }
        self.counts()
            .iter()
            .try_fold(1usize, |acc, &c| acc.checked_mul(c))
            .map(|_| ())
            .ok_or(DataError::GridTooLarge)
    }

    /// The number of values of each factor, in [`FACTOR_NAMES`] order:
    /// `[3, n_scales, n_rotations, n_positions, n_positions]`.
    pub fn factor_sizes(&self) -> [usize; 5] {
        self.counts()
    }

    fn counts(&self) -> [usize; 5] {
        [
            Shape::ALL.len(),
            self.n_scales,
            self.n_rotations,
            self.n_positions,
            self.n_positions,
        ]
    }

    /// `3 * n_scales * n_rotations * n_positions²` (saturating).
    pub fn n_combinations(&self) -> usize {
        self.counts()
            .iter()
            .fold(1, |acc, &c| acc.saturating_mul(c))
    }

    /// Factors of flat grid index `index` (order shape, scale, rotation, pos_x,
    /// pos_y with pos_y fastest, as dSprites `latents_classes`).
    pub fn factors_from_index(&self, index: usize) -> Result<Factors, DataError> {
        let n_combinations = self.n_combinations();
        if index >= n_combinations {
            return Err(DataError::IndexOutOfRange {
                index,
                n_combinations,
            });
        }
        let mut digits = [0usize; 5];
        let mut rest = index;
        for (d, c) in digits.iter_mut().zip(self.counts()).rev() {
            *d = rest % c;
            rest /= c;
        }
        Ok(Factors {
            shape: Shape::ALL[digits[0]],
            scale: digits[1],
            rotation: digits[2],
            pos_x: digits[3],
            pos_y: digits[4],
        })
    }

    /// Flat grid index of `f`, the inverse of [`Self::factors_from_index`];
    /// errors name the first factor out of range.
    pub fn index_of(&self, f: &Factors) -> Result<usize, DataError> {
        let names = ["shape", "scale", "rotation", "pos_x", "pos_y"];
        let digits = [f.shape.index(), f.scale, f.rotation, f.pos_x, f.pos_y];
        let mut index = 0usize;
        for ((factor, value), count) in names.into_iter().zip(digits).zip(self.counts()) {
            if value >= count {
                return Err(DataError::FactorOutOfRange {
                    factor,
                    value,
                    count,
                });
            }
            index = index
                .checked_mul(count)
                .and_then(|x| x.checked_add(value))
                .ok_or(DataError::GridTooLarge)?;
        }
        Ok(index)
    }

    /// Scale of index `i`: linspace 0.5..=1 (1 when there is one scale).
    pub fn scale_value(&self, i: usize) -> f64 {
        linspace(i, self.n_scales, 0.5, 1.0, 1.0)
    }

    /// Rotation of index `i` in radians: `i * 2π / n_rotations` (counter-clockwise
    /// on screen).
    pub fn rotation_value(&self, i: usize) -> f64 {
        i as f64 * std::f64::consts::TAU / self.n_rotations as f64
    }

    /// Position of index `i` in [0, 1]: linspace 0..=1 (0.5 when there is one
    /// position). See [`Self::position_px`] for the pixel coordinate.
    pub fn position_value(&self, i: usize) -> f64 {
        linspace(i, self.n_positions, 0.0, 1.0, 0.5)
    }

    /// Radius in pixels of the equal-area disc of a scale-1 shape.
    pub fn base_radius_px(&self) -> f64 {
        BASE_RADIUS_FRACTION * self.image_size as f64
    }

    /// Centre coordinate in pixels (0 = left/top edge of the frame) of position
    /// index `i`: position 0.5 is the frame centre, and 0 and 1 keep the largest
    /// shape at any rotation one pixel inside the frame.
    pub fn position_px(&self, i: usize) -> f64 {
        let size = self.image_size as f64;
        let margin = MAX_EXTENT * self.base_radius_px() + BORDER_PX;
        0.5 * size + (self.position_value(i) - 0.5) * (size - 2.0 * margin).max(0.0)
    }

    /// Renders one 1×H×W image (row-major, y down), pixels 0 or 255: a pixel is
    /// on iff its centre is inside the shape. Factor indices beyond the grid
    /// extrapolate; pixels outside the frame are clipped.
    pub fn render(&self, f: &Factors) -> Vec<u8> {
        let size = self.image_size;
        let mut img = vec![0u8; size * size];
        self.render_into(f, &mut img);
        img
    }

    fn render_into(&self, f: &Factors, img: &mut [u8]) {
        let size = self.image_size;
        let s = self.scale_value(f.scale) * self.base_radius_px();
        let theta = self.rotation_value(f.rotation);
        let (c, sn) = (snap(theta.cos()), snap(theta.sin()));
        let (cx, cy) = (self.position_px(f.pos_x), self.position_px(f.pos_y));
        let reach = f.shape.extent() * s + 1.0;
        let range = |centre: f64| {
            let lo = (centre - reach).floor().max(0.0) as usize;
            let hi = ((centre + reach).ceil().max(0.0) as usize).min(size);
            lo..hi
        };
        // Shape-local (u, v): the pixel offset rotated by -θ (as seen on screen,
        // i.e. the shape turns counter-clockwise by θ) and divided by the scale.
        // With y down, that is the matrix [[c, -s], [s, c]].
        let (c, sn) = (c / s, sn / s);
        for iy in range(cy) {
            let dy = iy as f64 + 0.5 - cy;
            let row = &mut img[iy * size..(iy + 1) * size];
            for ix in range(cx) {
                let dx = ix as f64 + 0.5 - cx;
                let u = c * dx - sn * dy;
                let v = sn * dx + c * dy;
                if f.shape.contains(u, v) {
                    row[ix] = 255;
                }
            }
        }
    }

    /// `n` factors drawn uniformly from the grid with a ChaCha8 generator seeded
    /// by `seed`; identical on every platform. Panics if the grid is empty.
    pub fn sample_factors(&self, n: usize, seed: u64) -> Vec<Factors> {
        self.sample_factors_stream(n, seed, 0)
    }

    fn sample_factors_stream(&self, n: usize, seed: u64, stream: u64) -> Vec<Factors> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(stream);
        let total = self.n_combinations() as u64;
        (0..n)
            .map(|_| {
                let i = rng.gen_range(0..total) as usize;
                self.factors_from_index(i)
                    .expect("sampled index is in range")
            })
            .collect()
    }

    /// Every point of the grid once, in flat index order (dSprites' order). The grid must fit
    /// in memory: 737 280 points for [`ShapesSpec::default`].
    pub fn all_factors(&self) -> Vec<Factors> {
        (0..self.n_combinations())
            .map(|i| self.factors_from_index(i).expect("index is in range"))
            .collect()
    }

    /// `n` factors drawn uniformly from the grid with factor `factor` (an index into
    /// [`FACTOR_NAMES`]) held at `value`: the observations the β-VAE and FactorVAE scores
    /// compare. Identical on every platform for a `seed`; errors name a factor or value out of
    /// range.
    ///
    /// ```
    /// use genae_data::shapes::ShapesSpec;
    /// let spec = ShapesSpec::small();
    /// let same_scale = spec.sample_factors_fixing(50, 1, 4, 7).unwrap();
    /// assert!(same_scale.iter().all(|f| f.scale == 4));
    /// assert!(spec.sample_factors_fixing(5, 1, 6, 7).is_err()); // 6 scales: 0..=5
    /// ```
    pub fn sample_factors_fixing(
        &self,
        n: usize,
        factor: usize,
        value: usize,
        seed: u64,
    ) -> Result<Vec<Factors>, DataError> {
        let counts = self.counts();
        let Some(&count) = counts.get(factor) else {
            return Err(DataError::FactorOutOfRange {
                factor: "factor",
                value: factor,
                count: counts.len(),
            });
        };
        if value >= count {
            return Err(DataError::FactorOutOfRange {
                factor: FACTOR_NAMES[factor],
                value,
                count,
            });
        }
        let mut factors = self.sample_factors(n, seed);
        for f in &mut factors {
            match factor {
                0 => f.shape = Shape::ALL[value],
                1 => f.scale = value,
                2 => f.rotation = value,
                3 => f.pos_x = value,
                _ => f.pos_y = value,
            }
        }
        Ok(factors)
    }

    /// Renders every factor; labels are the shape index.
    pub fn images_from_factors(&self, factors: &[Factors]) -> ImageSet {
        let len = self.image_size * self.image_size;
        let mut pixels = vec![0u8; factors.len() * len];
        for (f, img) in factors.iter().zip(pixels.chunks_exact_mut(len)) {
            self.render_into(f, img);
        }
        let labels = factors.iter().map(|f| f.shape.index() as u32).collect();
        ImageSet {
            pixels,
            labels,
            image_shape: [1, self.image_size, self.image_size],
        }
    }

    /// Validates the spec, then [`Self::sample_factors`] and
    /// [`Self::images_from_factors`].
    pub fn generate(&self, n: usize, seed: u64) -> Result<(ImageSet, Vec<Factors>), DataError> {
        self.validate()?;
        let factors = self.sample_factors(n, seed);
        Ok((self.images_from_factors(&factors), factors))
    }
}

/// A shapes [`Dataset`] named `"shapes{image_size}"`. The train split is
/// `spec.generate(n_train, seed)` (ChaCha8 stream 0 of `seed`), or with `n_train = 0` every
/// point of the grid once ([`ShapesSpec::all_factors`]: dSprites' full data set for the
/// default spec); the test split is drawn from the independent stream 1 of the same seed.
pub fn shapes_dataset(
    spec: &ShapesSpec,
    n_train: usize,
    n_test: usize,
    seed: u64,
) -> Result<Dataset, DataError> {
    let train = if n_train == 0 {
        spec.validate()?;
        spec.images_from_factors(&spec.all_factors())
    } else {
        spec.generate(n_train, seed)?.0
    };
    let test = spec.images_from_factors(&spec.sample_factors_stream(n_test, seed, 1));
    Ok(Dataset {
        name: format!("shapes{}", spec.image_size),
        train,
        test,
        class_names: Shape::ALL.iter().map(|s| s.name().to_string()).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_full_grid_lists_every_point_once_and_fixing_holds_one_factor() {
        let spec = ShapesSpec {
            image_size: 8,
            n_scales: 2,
            n_rotations: 3,
            n_positions: 2,
        };
        let all = spec.all_factors();
        assert_eq!(all.len(), spec.n_combinations());
        for (i, f) in all.iter().enumerate() {
            assert_eq!(spec.index_of(f).unwrap(), i);
        }
        let set = shapes_dataset(&spec, 0, 5, 1).unwrap();
        assert_eq!(set.train.len(), 3 * 2 * 3 * 2 * 2);
        assert_eq!(spec.factor_sizes(), [3, 2, 3, 2, 2]);
        for factor in 0..5 {
            let fixed = spec.sample_factors_fixing(40, factor, 1, 3).unwrap();
            let digit = |f: &Factors| [f.shape.index(), f.scale, f.rotation, f.pos_x, f.pos_y];
            assert!(fixed.iter().all(|f| digit(f)[factor] == 1));
            // The other factors still vary.
            let other = (factor + 1) % 5;
            assert!(fixed
                .iter()
                .any(|f| digit(f)[other] != digit(&fixed[0])[other]));
        }
        let err = spec
            .sample_factors_fixing(1, 2, 3, 0)
            .unwrap_err()
            .to_string();
        assert!(err.contains("rotation"), "{err}");
        assert!(spec.sample_factors_fixing(1, 5, 0, 0).is_err());
    }

    /// Midpoint-rule integration of the raw heart on a fine grid.
    #[test]
    fn heart_constants_match_numerical_integration() {
        let (n, half) = (2000, 1.5);
        let h = 2.0 * half / n as f64;
        let (mut count, mut sum_y, mut inside) = (0usize, 0.0, Vec::new());
        for i in 0..n {
            let y = -half + (i as f64 + 0.5) * h;
            for j in 0..n {
                let x = -half + (j as f64 + 0.5) * h;
                if (x * x + y * y - 1.0).powi(3) - x * x * y.powi(3) <= 0.0 {
                    count += 1;
                    sum_y += y;
                    inside.push((x, y));
                }
            }
        }
        let area = count as f64 * h * h;
        let cy = sum_y / count as f64;
        let extent = inside
            .iter()
            .map(|&(x, y)| x.hypot(y - cy))
            .fold(0.0, f64::max);
        assert!((HEART_K - (area / std::f64::consts::PI).sqrt()).abs() < 1e-3);
        assert!((HEART_CENTROID_Y - cy).abs() < 1e-3, "centroid {cy}");
        assert!(extent / HEART_K <= HEART_EXTENT + 1e-3, "extent {extent}");
        assert!(HEART_EXTENT < MAX_EXTENT && Shape::Square.extent() < MAX_EXTENT);
    }
}
