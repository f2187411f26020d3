//! Trained runs used again ([`TrainedRun`] and the `genae sample / embed / reconstruct /
//! evaluate / interpolate` commands): the numbers repeat the training-time ones, the files
//! hold what the model computes. (Bad input to these commands is in the bad-input corpus,
//! `tests/bad_inputs/cases.toml`, driven by `tests/bad_inputs.rs`.)

mod common;

use std::path::{Path, PathBuf};

use genae_lab::{
    load_shipped, run_experiment, DataSource, EvaluateOptions, InterpolateOptions, SampleOptions,
    Sampler, TrainedRun,
};
use ndarray::{ArrayD, Ix2};
use ndarray_npy::{NpzReader, ReadNpyExt};
use tch::{Kind, Tensor};

use common::{config_in, summary, torch_rng_lock, TINY_AAE};

const TINY_VAE: &str = r#"
    name = "tiny-vae"
    device = "cpu"
    threads = 1
    [data]
    train_size = 300
    test_size = 60
    image_size = 16
    n_positions = 6
    [model]
    latent_dim = 3
    hidden = [32]
    [train]
    epochs = 2
    batch_size = 50
    learning_rate = 3e-3
    [eval]
    batch_size = 25
    samples = 4
    reconstructions = 2
    interpolations = 0
    latent_points = 0
    log_likelihood_k = 30
    log_likelihood_images = 12
"#;

fn train(text: &str, out: &Path) -> PathBuf {
    let config = config_in(text, "tiny.toml", out, &[]);
    run_experiment(&config).unwrap().run_dir
}

fn tensor_of(a: ArrayD<f32>) -> Tensor {
    let shape: Vec<i64> = a.shape().iter().map(|&d| d as i64).collect();
    Tensor::from_slice(a.as_slice().unwrap()).view(shape.as_slice())
}

/// `genae evaluate --ais-steps`: AIS from `q(z|x)` on every test image agrees with the exact
/// `log p(x)` by quadrature of a 2-d latent VAE (within its Monte-Carlo error), two step
/// counts agree with each other, and both sit above the ELBO.
#[test]
fn ais_matches_the_exact_log_likelihood_of_a_two_dimensional_vae() {
    let _lock = torch_rng_lock();
    let out = tempfile::tempdir().unwrap();
    let config = config_in(
        TINY_VAE,
        "tiny.toml",
        out.path(),
        &[
            "model.latent_dim=2",
            "train.epochs=6",
            "eval.exact_log_likelihood_grid=200",
        ],
    );
    let dir = run_experiment(&config).unwrap().run_dir;
    let s = summary(&dir);
    let exact = s["test"]["exact_log_likelihood"].as_f64().unwrap();
    let elbo = s["test"]["elbo"].as_f64().unwrap();
    let run = TrainedRun::open(&dir).unwrap();
    let ais = |steps: usize| {
        run.evaluate(&EvaluateOptions {
            k: Some(0),
            ais_steps: steps,
            ais_images: 0,
            ..Default::default()
        })
        .unwrap()
        .1
        .ais
        .unwrap()
    };
    let (short, long) = (ais(100), ais(400));
    eprintln!(
        "exact {exact}, AIS 100 steps {} ± {}, 400 steps {} ± {}, ELBO {elbo}",
        short.value, short.standard_error, long.value, long.standard_error
    );
    assert_eq!(long.n_images, 60);
    assert!(
        (long.value - exact).abs() < 0.1,
        "AIS {} vs exact {exact}",
        long.value
    );
    assert!(
        (short.value - long.value).abs() < 0.2,
        "{} vs {}",
        short.value,
        long.value
    );
    assert!(long.value > elbo, "AIS {} vs ELBO {elbo}", long.value);
}

#[test]
fn evaluate_repeats_the_training_time_log_likelihood_and_sampling_repeats_for_a_seed() {
    let _lock = torch_rng_lock();
    let out = tempfile::tempdir().unwrap();
    let dir = train(TINY_VAE, out.path());
    let trained = summary(&dir)["test"]["log_likelihood"]["value"]
        .as_f64()
        .unwrap();
    let run = TrainedRun::open(&dir).unwrap();
    let (file, record) = run.evaluate(&EvaluateOptions::default()).unwrap();
    let again = record.test.number_at("log_likelihood.value").unwrap();
    // The same number (up to the last digit of its JSON round trip).
    assert!(
        (again - trained).abs() < 1e-9 * trained.abs(),
        "same settings and seed: the same L_k, {again} vs {trained}"
    );
    assert!(file.starts_with(dir.join("evaluations")) && file.is_file());
    // A larger k is a different (finite) estimate, and L_k ≥ ELBO holds on average here.
    let (_, bigger) = run
        .evaluate(&EvaluateOptions {
            k: Some(200),
            ..Default::default()
        })
        .unwrap();
    let l200 = bigger.test.number_at("log_likelihood.value").unwrap();
    assert!(l200.is_finite() && l200 != trained);
    assert_eq!(
        bigger.test.number_at("log_likelihood.k").unwrap() as i64,
        200
    );

    // Samples: the same seed gives the same images; the codes decode to them.
    let options = SampleOptions {
        n: 6,
        sampler: Sampler::Prior,
        seed: 7,
    };
    let a = run.sample(&options).unwrap();
    let b = run.sample(&options).unwrap();
    assert_eq!(a.images.size(), [6, 1, 16, 16]);
    assert!(a.images.equal(&b.images));
    let ae = run.autoencoder().unwrap();
    let decoded = ae.decode_mean(a.codes.as_ref().unwrap()).unwrap();
    assert!(decoded
        .view([6, 1, 16, 16])
        .allclose(&a.images, 1e-6, 1e-6, false));
    let c = run
        .sample(&SampleOptions {
            seed: 8,
            ..options.clone()
        })
        .unwrap();
    assert!(!a.images.equal(&c.images));
    // Chains move the prior draws.
    let chained = run
        .sample(&SampleOptions {
            sampler: Sampler::Chain { steps: 3 },
            ..options.clone()
        })
        .unwrap();
    assert_eq!(chained.images.size(), [6, 1, 16, 16]);
    let folder = run.write_samples(&options).unwrap();
    for f in ["samples.png", "samples.safetensors", "sampling.json"] {
        assert!(folder.join(f).is_file(), "{f}");
    }
    let saved: std::collections::HashMap<String, Tensor> =
        Tensor::read_safetensors(folder.join("samples.safetensors"))
            .unwrap()
            .into_iter()
            .collect();
    assert!(saved["images"].equal(&a.images));
    // The training files are untouched by all of this.
    assert_eq!(
        summary(&dir)["test"]["log_likelihood"]["value"].as_f64(),
        Some(trained)
    );
}

#[test]
fn embeddings_are_the_posterior_means_in_every_file_format() {
    let _lock = torch_rng_lock();
    let out = tempfile::tempdir().unwrap();
    let dir = train(TINY_VAE, out.path());
    let run = TrainedRun::open(&dir).unwrap();
    let test = run.images(&DataSource::Test).unwrap();
    let ae = run.autoencoder().unwrap();
    let mean = tch::no_grad(|| ae.encode_mean(&test.x)).unwrap();

    let npz = out.path().join("emb.npz");
    run.write_embedding(&DataSource::Test, &npz).unwrap();
    let mut reader = NpzReader::new(std::fs::File::open(&npz).unwrap()).unwrap();
    let mut names = reader.names().unwrap();
    names.sort();
    assert_eq!(names, ["labels", "log_var", "mean"]);
    let m: ArrayD<f32> = reader.by_name("mean").unwrap();
    assert_eq!(m.shape(), [60, 3]);
    assert!(tensor_of(m).allclose(&mean, 1e-6, 1e-6, false));
    let labels: ndarray::Array1<i64> = reader.by_name("labels").unwrap();
    let expected: Vec<i64> = Vec::try_from(&test.labels).unwrap();
    assert_eq!(labels.to_vec(), expected);

    let npy = out.path().join("emb.npy");
    let written = run.write_embedding(&DataSource::Test, &npy).unwrap();
    assert_eq!(written.len(), 3);
    let m = ndarray::Array::<f32, Ix2>::read_npy(std::fs::File::open(&npy).unwrap()).unwrap();
    assert!(tensor_of(m.into_dyn()).allclose(&mean, 1e-6, 1e-6, false));
    assert!(out.path().join("emb_log_var.npy").is_file());
    assert!(out.path().join("emb_labels.npy").is_file());

    let st = out.path().join("emb.safetensors");
    run.write_embedding(&DataSource::Train, &st).unwrap();
    let saved: std::collections::HashMap<String, Tensor> =
        Tensor::read_safetensors(&st).unwrap().into_iter().collect();
    assert_eq!(saved["mean"].size(), [300, 3]);
    assert_eq!(saved["log_var"].size(), [300, 3]);

    // Reconstructions: the MSE is the mean squared error of decoder means at the means.
    let (folder, record) = run.write_reconstructions(&DataSource::Test, 4).unwrap();
    let rec = ae.decode_mean(&mean).unwrap();
    let mse = (rec - &test.x)
        .square()
        .mean(Kind::Double)
        .double_value(&[]);
    assert!((record.mse - mse).abs() < 1e-9, "{} vs {mse}", record.mse);
    assert!(record.metrics.number("elbo").unwrap() < 0.0);
    assert!(folder.join("reconstructions.png").is_file());
    assert!(folder.join("reconstruction.json").is_file());

    let folder = run
        .write_interpolations(&InterpolateOptions {
            pairs: 2,
            points: 5,
            refine: 2,
        })
        .unwrap();
    assert!(folder.join("interpolations.png").is_file());
    assert!(folder.join("interpolations_refined.png").is_file());
}

#[test]
fn kinds_say_what_they_cannot_do() {
    let _lock = torch_rng_lock();
    let out = tempfile::tempdir().unwrap();
    let aae = train(TINY_AAE, out.path());
    let run = TrainedRun::open(&aae).unwrap();
    // A deterministic encoder: means only, and no L_k.
    let named = run.embed(&DataSource::Test).unwrap();
    let names: Vec<&str> = named.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["mean", "labels"]);
    let err = run
        .evaluate(&EvaluateOptions {
            k: Some(10),
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
    assert!(err.contains("aae") && err.contains("L_k"), "{err}");
    assert!(
        !aae.join("evaluations").read_dir().unwrap().any(|e| e
            .unwrap()
            .path()
            .extension()
            .is_some_and(|x| x == "json")),
        "a failed evaluation leaves no record"
    );

    // A VQ-VAE samples from its PixelCNN, embeds code grids, and has no GMM or chain.
    let config = load_shipped(
        "tiny-vqvae",
        &[
            format!("output_dir=\"{}\"", out.path().display()),
            "train.epochs=1".into(),
        ],
    )
    .unwrap();
    let vq = run_experiment(&config).unwrap().run_dir;
    let run = TrainedRun::open(&vq).unwrap();
    let samples = run
        .sample(&SampleOptions {
            n: 3,
            sampler: Sampler::Prior,
            seed: 1,
        })
        .unwrap();
    assert_eq!(samples.images.size()[0], 3);
    assert!(samples.codes.is_none());
    let named = run.embed(&DataSource::Test).unwrap();
    assert_eq!(named[0].0, "codes");
    assert_eq!(named[0].1.dim(), 3);
    let err = run
        .sample(&SampleOptions {
            n: 3,
            sampler: Sampler::Chain { steps: 2 },
            seed: 1,
        })
        .unwrap_err()
        .to_string();
    assert!(err.contains("vqvae") && err.contains("discrete"), "{err}");
}
