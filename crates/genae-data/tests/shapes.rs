//! Seeded tests of the shapes data set, checked against geometry and dSprites facts.

use genae_data::shapes::{shapes_dataset, Factors, Shape, ShapesSpec};
use genae_data::{default_dataset, DataError, ImageSet};
use rand::{Rng, SeedableRng};
use std::f64::consts::PI;

fn spec(image_size: usize, n_positions: usize) -> ShapesSpec {
    ShapesSpec {
        image_size,
        n_scales: 6,
        n_rotations: 40,
        n_positions,
    }
}

fn f(shape: Shape, scale: usize, rotation: usize, pos_x: usize, pos_y: usize) -> Factors {
    Factors {
        shape,
        scale,
        rotation,
        pos_x,
        pos_y,
    }
}

fn count_on(img: &[u8]) -> usize {
    img.iter().filter(|&&p| p == 255).count()
}

/// Mean (x, y) of on-pixel centres.
fn centroid(img: &[u8], size: usize) -> (f64, f64) {
    let (mut sx, mut sy, mut n) = (0.0, 0.0, 0.0);
    for (i, _) in img.iter().enumerate().filter(|(_, &p)| p == 255) {
        sx += (i % size) as f64 + 0.5;
        sy += (i / size) as f64 + 0.5;
        n += 1.0;
    }
    (sx / n, sy / n)
}

fn transpose(img: &[u8], size: usize) -> Vec<u8> {
    (0..size * size)
        .map(|i| img[(i % size) * size + i / size])
        .collect()
}

#[test]
fn same_seed_gives_identical_bytes() {
    let s = ShapesSpec::small();
    let (a, fa) = s.generate(300, 7).unwrap();
    let (b, fb) = s.generate(300, 7).unwrap();
    assert_eq!((&a.pixels, &a.labels, &fa), (&b.pixels, &b.labels, &fb));
    assert_eq!(
        shapes_dataset(&s, 50, 20, 3).unwrap(),
        shapes_dataset(&s, 50, 20, 3).unwrap()
    );
}

#[test]
fn different_seed_or_split_gives_different_bytes() {
    let s = ShapesSpec::small();
    let (a, fa) = s.generate(300, 7).unwrap();
    let (b, fb) = s.generate(300, 8).unwrap();
    assert_ne!(a.pixels, b.pixels);
    assert_ne!(a.labels, b.labels);
    assert_ne!(fa, fb);
    // Train and test come from independent streams of the same seed.
    let d = shapes_dataset(&s, 100, 100, 7).unwrap();
    assert_ne!(d.train.pixels, d.test.pixels);
    assert_eq!(d.train.pixels, s.generate(100, 7).unwrap().0.pixels);
}

#[test]
fn sampled_factors_are_pinned_across_platforms() {
    // Regression pin of the ChaCha8 stream: changing it changes every data set.
    let s = ShapesSpec::default();
    let got: Vec<usize> = s
        .sample_factors(5, 0)
        .iter()
        .map(|f| s.index_of(f).unwrap())
        .collect();
    assert_eq!(got, PINNED);
}
const PINNED: [usize; 5] = [522_787, 515_464, 405_158, 611_193, 689_671];

#[test]
fn sampled_factors_cover_the_grid_uniformly() {
    let s = ShapesSpec::small();
    let fs = s.sample_factors(30_000, 1);
    let mut rot = vec![0usize; s.n_rotations];
    fs.iter().for_each(|f| rot[f.rotation] += 1);
    // 750 expected per rotation, sd ~27.
    assert!(rot.iter().all(|&c| (600..900).contains(&c)), "{rot:?}");
    assert!(fs.iter().any(|f| f.pos_x == 15) && fs.iter().any(|f| f.pos_y == 0));
}

#[test]
fn default_spec_matches_dsprites_grid() {
    let s = ShapesSpec::default();
    // dSprites has 737280 images: 3 shapes x 6 scales x 40 rotations x 32 x 32.
    assert_eq!(s.n_combinations(), 737_280);
    assert_eq!(ShapesSpec::small().n_combinations(), 3 * 6 * 40 * 16 * 16);
    assert_eq!(s.scale_value(0), 0.5);
    assert_eq!(s.scale_value(5), 1.0);
    assert!((s.scale_value(1) - 0.6).abs() < 1e-12);
    assert!((s.rotation_value(10) - PI / 2.0).abs() < 1e-12);
    assert_eq!((s.position_value(0), s.position_value(31)), (0.0, 1.0));
    assert_eq!(s.base_radius_px(), 0.22 * 64.0);
}

#[test]
fn factors_round_trip_small_spec_exhaustive() {
    let s = ShapesSpec {
        image_size: 8,
        n_scales: 2,
        n_rotations: 4,
        n_positions: 3,
    };
    for i in 0..s.n_combinations() {
        assert_eq!(s.index_of(&s.factors_from_index(i).unwrap()).unwrap(), i);
    }
    // latents_classes order: pos_y fastest, then pos_x, rotation, scale, shape.
    assert_eq!(
        s.factors_from_index(1).unwrap(),
        f(Shape::Square, 0, 0, 0, 1)
    );
    assert_eq!(
        s.factors_from_index(3).unwrap(),
        f(Shape::Square, 0, 0, 1, 0)
    );
    assert_eq!(
        s.factors_from_index(9).unwrap(),
        f(Shape::Square, 0, 1, 0, 0)
    );
    assert_eq!(
        s.factors_from_index(36).unwrap(),
        f(Shape::Square, 1, 0, 0, 0)
    );
    assert_eq!(
        s.factors_from_index(72).unwrap(),
        f(Shape::Ellipse, 0, 0, 0, 0)
    );
    let last = s.factors_from_index(s.n_combinations() - 1).unwrap();
    assert_eq!(last, f(Shape::Heart, 1, 3, 2, 2));
}

#[test]
fn factors_round_trip_default_spec_random() {
    let s = ShapesSpec::default();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
    for _ in 0..2000 {
        let i = rng.gen_range(0..s.n_combinations());
        assert_eq!(s.index_of(&s.factors_from_index(i).unwrap()).unwrap(), i);
    }
}

#[test]
fn out_of_range_errors_name_the_factor() {
    let s = ShapesSpec::small();
    let ok = f(Shape::Heart, 5, 39, 15, 15);
    assert!(s.index_of(&ok).is_ok());
    let cases = [
        ("scale", 6, Factors { scale: 6, ..ok }),
        ("rotation", 40, Factors { rotation: 40, ..ok }),
        ("pos_x", 16, Factors { pos_x: 16, ..ok }),
        ("pos_y", 99, Factors { pos_y: 99, ..ok }),
    ];
    for (name, value, bad) in cases {
        let msg = s.index_of(&bad).unwrap_err().to_string();
        assert!(
            msg.contains(name) && msg.contains(&value.to_string()),
            "{msg}"
        );
    }
    let n = s.n_combinations();
    let err = s.factors_from_index(n).unwrap_err();
    assert_eq!(
        err,
        DataError::IndexOutOfRange {
            index: n,
            n_combinations: n
        }
    );
    assert!(err.to_string().contains(&n.to_string()));
}

#[test]
fn shape_names_and_indices() {
    for (i, s) in Shape::ALL.iter().enumerate() {
        assert_eq!(s.index(), i);
        assert_eq!(Shape::from_index(i), Some(*s));
    }
    assert_eq!(Shape::from_index(3), None);
    let names: Vec<_> = Shape::ALL.iter().map(|s| s.name()).collect();
    assert_eq!(names, ["square", "ellipse", "heart"]);
}

#[test]
fn square_area_matches_analytic_area() {
    let s = spec(128, 7);
    for scale in 0..s.n_scales {
        for pos in [0, 2, 3, 6] {
            let img = s.render(&f(Shape::Square, scale, 0, pos, 3));
            let r = s.scale_value(scale) * 0.22 * 128.0;
            let side = PI.sqrt() * r; // same area as the disc of radius r
            let got = count_on(&img);
            let rel = got as f64 / (side * side) - 1.0;
            assert!(rel.abs() < 0.10, "scale {scale}: {got} vs {}", side * side);
            // Exactly: (pixel centres within side/2 of the centre along x) x (along y).
            let along = |c: f64| {
                (0..128)
                    .filter(|&k| (k as f64 + 0.5 - c).abs() <= side / 2.0)
                    .count()
            };
            assert_eq!(got, along(s.position_px(pos)) * along(s.position_px(3)));
        }
    }
}

#[test]
fn all_shapes_have_the_area_of_the_base_disc() {
    let s = spec(256, 3);
    let r = 0.22 * 256.0;
    for shape in Shape::ALL {
        for rot in [0, 3, 17] {
            let got = count_on(&s.render(&f(shape, 5, rot, 1, 1))) as f64;
            assert!((got / (PI * r * r) - 1.0).abs() < 0.02, "{shape:?}: {got}");
        }
    }
}

#[test]
fn square_rotated_by_90_degrees_is_identical() {
    let s = spec(32, 16);
    for scale in 0..s.n_scales {
        for (px, py) in [(0, 0), (3, 11), (15, 7), (8, 8)] {
            let base = s.render(&f(Shape::Square, scale, 0, px, py));
            for rot in [10, 20, 30] {
                assert_eq!(base, s.render(&f(Shape::Square, scale, rot, px, py)));
            }
        }
    }
}

#[test]
fn ellipse_at_90_degrees_is_its_transpose() {
    let s = spec(32, 3); // position 1 is the frame centre
    assert_eq!(s.position_px(1), 16.0);
    for scale in [0, 3, 5] {
        let a = s.render(&f(Shape::Ellipse, scale, 0, 1, 1));
        let b = s.render(&f(Shape::Ellipse, scale, 10, 1, 1));
        assert_ne!(a, b);
        assert_eq!(transpose(&a, 32), b);
        // Long axis horizontal at rotation 0: fewer on-rows than on-columns.
        let on_rows = (0..32).filter(|y| a[y * 32..(y + 1) * 32].contains(&255));
        let on_cols = (0..32).filter(|x| (0..32).any(|y| a[y * 32 + x] == 255));
        assert!(on_rows.count() * 3 / 2 <= on_cols.count());
    }
}

#[test]
fn heart_point_is_at_the_bottom_and_flips_at_180_degrees() {
    let s = spec(64, 3);
    let a = s.render(&f(Shape::Heart, 5, 0, 1, 1));
    let b = s.render(&f(Shape::Heart, 5, 20, 1, 1));
    let flipped: Vec<u8> = a.chunks(64).rev().flatten().copied().collect();
    assert_eq!(flipped, b);
    let on_rows: Vec<usize> = (0..64)
        .filter(|y| a[y * 64..(y + 1) * 64].contains(&255))
        .collect();
    let (top, bottom) = (on_rows[0] as f64, *on_rows.last().unwrap() as f64 + 1.0);
    // The point reaches further from the centre (32) than the lobes.
    assert!(
        bottom - 32.0 > 32.0 - top + 3.0,
        "top {top} bottom {bottom}"
    );
}

#[test]
fn area_grows_with_scale() {
    let s = spec(64, 3);
    for shape in Shape::ALL {
        for rot in [0, 7] {
            let counts: Vec<usize> = (0..s.n_scales)
                .map(|k| count_on(&s.render(&f(shape, k, rot, 1, 1))))
                .collect();
            assert!(
                counts.windows(2).all(|w| w[0] < w[1]),
                "{shape:?} {counts:?}"
            );
        }
    }
}

#[test]
fn centroid_matches_position() {
    let s = spec(64, 32);
    assert!(s.position_px(0) < s.position_px(1) && s.position_px(30) < s.position_px(31));
    for shape in Shape::ALL {
        for scale in [0, 5] {
            for rot in [0, 7, 13, 25] {
                for (px, py) in [(0, 31), (5, 16), (31, 0), (20, 20)] {
                    let img = s.render(&f(shape, scale, rot, px, py));
                    let (cx, cy) = centroid(&img, 64);
                    let d = (cx - s.position_px(px)).hypot(cy - s.position_px(py));
                    assert!(d < 1.0, "{shape:?} {scale} {rot} {px} {py}: {d}");
                }
            }
        }
    }
}

#[test]
fn smallest_shapes_have_dozens_of_pixels_and_none_touch_the_border() {
    for s in [ShapesSpec::small(), ShapesSpec::default()] {
        let n = s.image_size;
        let last = s.n_positions - 1;
        for shape in Shape::ALL {
            for rot in 0..s.n_rotations {
                let small = s.render(&f(shape, 0, rot, 3, 5));
                assert!(
                    count_on(&small) >= 32,
                    "{shape:?} {rot}: {}",
                    count_on(&small)
                );
                for (px, py) in [(0, 0), (0, last), (last, 0), (last, last)] {
                    let img = s.render(&f(shape, s.n_scales - 1, rot, px, py));
                    assert!(img.iter().all(|&p| p == 0 || p == 255));
                    let ring = (0..n).flat_map(|i| [i, n * i, n * i + n - 1, n * (n - 1) + i]);
                    assert!(ring.into_iter().all(|i| img[i] == 0), "{shape:?} {rot}");
                }
            }
        }
    }
}

#[test]
fn image_set_new_checks_lengths() {
    let err = ImageSet::new(vec![0; 10], vec![0, 1], [1, 2, 3]).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("10") && msg.contains("12"), "{msg}");
    assert!(ImageSet::new(vec![], vec![], [0, 2, 2]).is_err());
    let set = ImageSet::new((0..12).collect(), vec![0, 1], [1, 2, 3]).unwrap();
    assert_eq!((set.len(), set.image_len(), set.is_empty()), (2, 6, false));
    assert_eq!(set.image(1), &[6, 7, 8, 9, 10, 11]);
}

#[test]
fn validate_errors_name_the_field() {
    let ok = ShapesSpec::small();
    assert!(ok.validate().is_ok());
    let cases = [
        (
            "image_size",
            ShapesSpec {
                image_size: 7,
                ..ok.clone()
            },
        ),
        (
            "n_scales",
            ShapesSpec {
                n_scales: 0,
                ..ok.clone()
            },
        ),
        (
            "n_rotations",
            ShapesSpec {
                n_rotations: 0,
                ..ok.clone()
            },
        ),
        (
            "n_positions",
            ShapesSpec {
                n_positions: 0,
                ..ok.clone()
            },
        ),
    ];
    for (field, bad) in cases {
        let msg = bad.validate().unwrap_err().to_string();
        assert!(msg.contains(field), "{msg}");
        assert!(bad.generate(1, 0).is_err());
    }
    let huge = ShapesSpec {
        n_positions: usize::MAX / 2,
        ..ok
    };
    assert_eq!(huge.validate(), Err(DataError::GridTooLarge));
}

#[test]
fn default_dataset_has_expected_shape_and_balance() {
    let d = default_dataset();
    assert_eq!(d.name, "shapes32");
    assert_eq!(d.class_names, ["square", "ellipse", "heart"]);
    for (set, n) in [(&d.train, 40_000), (&d.test, 2_000)] {
        assert_eq!(set.image_shape, [1, 32, 32]);
        assert_eq!((set.len(), set.pixels.len()), (n, n * 32 * 32));
        let mut counts = [0usize; 3];
        set.labels.iter().for_each(|&l| counts[l as usize] += 1);
        for c in counts {
            assert!(
                (c as f64 / (n as f64 / 3.0) - 1.0).abs() < 0.1,
                "{counts:?}"
            );
        }
        assert!((0..n).all(|i| count_on(set.image(i)) >= 32));
    }
}
