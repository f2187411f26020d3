//! Training on the user's own data, then using the run, as a new user would: a `.npz` of
//! 28×28 grey images with labels, and a folder of 64×64 RGB PNGs with a convolutional model,
//! each named only by `data.path`; then `genae sample`, `embed`, `reconstruct` and
//! `evaluate --k 1000` on the run, through the binary.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use ndarray::{Array1, Array3, Array4};
use ndarray_npy::{NpzReader, NpzWriter};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn genae(args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_genae"))
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "genae {args:?} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// The path after `prefix` on a line of `stdout`.
fn printed_path(stdout: &str, prefix: &str) -> PathBuf {
    let line = stdout
        .lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no `{prefix}` line in {stdout}"));
    PathBuf::from(line[prefix.len()..].trim())
}

/// `n` grey `side`×`side` images of a bright rectangle at a random place and size, labelled
/// by which quarter of the image its centre is in.
fn rectangles(n: usize, side: usize, rng: &mut ChaCha8Rng) -> (Array3<u8>, Array1<u8>) {
    let mut images = Array3::<u8>::zeros((n, side, side));
    let mut labels = Array1::<u8>::zeros(n);
    for i in 0..n {
        let (h, w) = (rng.gen_range(3..side / 2), rng.gen_range(3..side / 2));
        let (top, left) = (rng.gen_range(0..side - h), rng.gen_range(0..side - w));
        for r in top..top + h {
            for c in left..left + w {
                images[[i, r, c]] = rng.gen_range(180..=255);
            }
        }
        labels[i] = (u8::from(top + h / 2 >= side / 2) << 1) | u8::from(left + w / 2 >= side / 2);
    }
    (images, labels)
}

/// `sample`, `embed`, `reconstruct` and `evaluate --k 1000` on `run`; checks what they wrote.
/// (The reconstruction numbers themselves are checked against independent computations in
/// `trained_run.rs`; here the models are barely trained.)
/// Uses a finished run through the CLI; with `mse_factor`, its test reconstructions must be
/// closer to their own images than `mse_factor` times their distance to other images.
fn use_the_run(run: &Path, out: &Path, n_test: usize, latent_dim: usize, mse_factor: Option<f64>) {
    let r = run.to_str().unwrap();
    let samples = printed_path(&genae(&["sample", r, "--n", "16"]), "samples: ");
    assert!(samples.join("samples.png").is_file());
    let gmm = printed_path(
        &genae(&[
            "sample",
            r,
            "--n",
            "9",
            "--sampler",
            "gmm",
            "--components",
            "3",
        ]),
        "samples: ",
    );
    assert!(gmm.join("samples.safetensors").is_file());

    let embedding = out.join("codes.npz");
    genae(&["embed", r, "--out", embedding.to_str().unwrap()]);
    let mut npz = NpzReader::new(std::fs::File::open(&embedding).unwrap()).unwrap();
    let mean: ndarray::Array2<f32> = npz.by_name("mean").unwrap();
    assert_eq!(mean.shape(), [n_test, latent_dim]);
    assert!(mean.iter().all(|v| v.is_finite()));

    let stdout = genae(&["reconstruct", r, "--n", "8"]);
    let folder = printed_path(&stdout, "reconstructions: ");
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(folder.join("reconstruction.json")).unwrap())
            .unwrap();
    let mse = record["mse"].as_f64().unwrap();
    assert!(mse.is_finite() && mse > 0.0, "MSE {mse}");
    // A short run on a few hundred images does not beat the mean image yet, but its
    // reconstructions carry their inputs: each is closer to its own image than to another's.
    let trained = genae_lab::TrainedRun::open(Path::new(r)).unwrap();
    let x = trained.images(&genae_lab::DataSource::Test).unwrap().x;
    let rec = trained.reconstruct(&x).unwrap().view([x.size()[0], -1]);
    let mse_to = |y: &tch::Tensor| {
        (&rec - y)
            .square()
            .mean(tch::Kind::Double)
            .double_value(&[])
    };
    let (own, other) = (mse_to(&x), mse_to(&x.roll([1], [0])));
    eprintln!("reconstruction MSE to its own image {own}, to another image {other}");
    if let Some(factor) = mse_factor {
        assert!(own < factor * other, "own {own}, other {other}");
    }
    assert_eq!(record["images"], n_test);

    let stdout = genae(&["evaluate", r, "--k", "1000", "--images", "10"]);
    let file = printed_path(&stdout, "evaluation: ");
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
    let ll = &record["test"]["log_likelihood"];
    assert_eq!(ll["k"], 1000);
    assert_eq!(ll["n_images"], 10);
    let value = ll["value"].as_f64().unwrap();
    assert!(value.is_finite() && value < 0.0, "L_1000 = {value}");
}

#[test]
fn a_npz_of_the_users_images_trains_and_the_run_is_usable() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let (images, labels) = rectangles(1000, 28, &mut rng);
    let data = dir.path().join("mine.npz");
    let mut npz = NpzWriter::new(std::fs::File::create(&data).unwrap());
    npz.add_array("images", &images).unwrap();
    npz.add_array("labels", &labels).unwrap();
    npz.finish().unwrap();
    // A config that names only the data.
    let config = dir.path().join("mine.toml");
    std::fs::write(
        &config,
        format!("[data]\npath = {:?}\n", data.display().to_string()),
    )
    .unwrap();
    let output_dir = format!(
        "output_dir={:?}",
        dir.path().join("runs").display().to_string()
    );
    let stdout = genae(&[
        "train",
        config.to_str().unwrap(),
        "--set",
        &output_dir,
        "--set",
        "train.epochs=3",
        // Small batches and a KL warm-up: with 9 steps an epoch the posterior collapses and
        // every reconstruction is the same picture.
        "--set",
        "train.batch_size=10",
        "--set",
        "train.kl_warmup_steps=100",
        "--set",
        "threads=1",
    ]);
    let run = printed_path(&stdout, "run directory: ");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("summary.json")).unwrap()).unwrap();
    let elbo = summary["test"]["elbo"].as_f64().unwrap();
    assert!(elbo.is_finite());
    // The seeded hold-out: 10 % of 1 000 images.
    use_the_run(&run, dir.path(), 100, 10, Some(0.9));
}

#[test]
fn a_folder_of_rgb_pngs_trains_a_convolutional_model() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("pictures");
    std::fs::create_dir(&folder).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let n = 120;
    let (grey, _) = rectangles(n, 64, &mut rng);
    let mut rgb = Array4::<u8>::zeros((n, 64, 64, 3));
    for i in 0..n {
        let colour = [rng.gen_range(0..3usize), rng.gen_range(0..3usize)];
        for r in 0..64 {
            for c in 0..64 {
                for ch in colour {
                    rgb[[i, r, c, ch]] = grey[[i, r, c]];
                }
            }
        }
        let pixels: Vec<u8> = rgb
            .index_axis(ndarray::Axis(0), i)
            .iter()
            .copied()
            .collect();
        image::RgbImage::from_raw(64, 64, pixels)
            .unwrap()
            .save(folder.join(format!("{i:04}.png")))
            .unwrap();
    }
    let config = dir.path().join("conv.toml");
    std::fs::write(
        &config,
        format!(
            "[data]\npath = {:?}\n[model]\nlatent_dim = 4\nhidden = [64]\n\
             architecture = {{ kind = \"conv\", channels = [8, 16] }}\n\
             likelihood = {{ kind = \"discretized_logistic\" }}\n[train]\nepochs = 2\nbatch_size = 20\n",
            folder.display().to_string()
        ),
    )
    .unwrap();
    let output_dir = format!(
        "output_dir={:?}",
        dir.path().join("runs").display().to_string()
    );
    let stdout = genae(&[
        "train",
        config.to_str().unwrap(),
        "--set",
        &output_dir,
        "--set",
        "threads=1",
    ]);
    let run = printed_path(&stdout, "run directory: ");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("summary.json")).unwrap()).unwrap();
    assert!(summary["test"]["elbo"].as_f64().unwrap().is_finite());
    // Not checked here: three epochs of a discretised-logistic conv model on 108 pictures still
    // ignore the code (every reconstruction is the same); the npz run above is checked.
    use_the_run(&run, dir.path(), 12, 4, None);
}

/// `genae` with `args`: its exit code and standard error.
fn genae_failing(args: &[&str]) -> (Option<i32>, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_genae"))
        .args(args)
        .output()
        .unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn sizes_and_names_that_do_not_exist_are_errors_not_silent_changes() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let (images, labels) = rectangles(50, 28, &mut rng);
    let data = dir.path().join("small.npz");
    let mut npz = NpzWriter::new(std::fs::File::create(&data).unwrap());
    npz.add_array("images", &images).unwrap();
    npz.add_array("labels", &labels).unwrap();
    npz.finish().unwrap();
    let config = dir.path().join("small.toml");
    std::fs::write(
        &config,
        format!("[data]\npath = {:?}\n", data.display().to_string()),
    )
    .unwrap();
    let c = config.to_str().unwrap();
    let out = format!(
        "output_dir={:?}",
        dir.path().join("runs").display().to_string()
    );
    let missing_dir = format!(
        "data.dir={:?}",
        dir.path().join("nowhere").display().to_string()
    );
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["train", c, "--set", &out, "--set", "data.train_size=1000"],
            "data.train_size",
        ),
        (
            vec!["train", c, "--set", &out, "--set", "data.test_size=99"],
            "data.test_size",
        ),
        (
            vec!["train", c, "--set", &out, "--set", "train.batch_size=200"],
            "train.batch_size",
        ),
        (
            vec![
                "train",
                "fashion-mnist-vae",
                "--set",
                &out,
                "--set",
                &missing_dir,
                // (tiny sizes, so that a regression of the check cannot train for long)
                "--set",
                "data.train_size=200",
                "--set",
                "train.epochs=1",
            ],
            "data.dir",
        ),
        (vec!["train", "no-such-config"], "fashion-mnist-vae"),
        (
            vec!["report", dir.path().to_str().unwrap()],
            "not a genae run",
        ),
    ];
    for (args, needle) in cases {
        let (code, stderr) = genae_failing(&args);
        assert!(
            code.is_some_and(|c| c != 0 && c != 101),
            "{args:?}: exit {code:?}: {stderr}"
        );
        assert!(
            stderr.contains(needle),
            "{args:?}: expected `{needle}` in {stderr}"
        );
    }
    // Nothing half-made was left behind by the failed starts, and no report was written.
    let runs = dir.path().join("runs");
    assert!(!runs.exists() || std::fs::read_dir(&runs).unwrap().next().is_none());
    assert!(!dir.path().join("report.html").exists());
}
