//! What can be done with a trained run: sample, embed, reconstruct, interpolate (evaluate:
//! [`super::evaluate`]).
//! Each computation is a method of [`TrainedRun`]; each `write_*` method also writes its
//! result into a fresh subfolder of the run (`samples/`, `reconstructions/`,
//! `evaluations/`, `interpolations/`), never touching the training files.

use std::path::{Path, PathBuf};

use genae_samplers::MarkovChain;
use genae_tensor::save_image_grid;
use genae_zoo::GenerativeAutoencoder;
use serde::Serialize;
use tch::{Kind, Tensor};

use super::{DataSource, TrainedRun};
use crate::config::ChainSection;
use crate::context::likelihood_seed;
use crate::data::{batch_ranges, DeviceSplit};
use crate::error::LabError;
use crate::eval::chains::batched;
use crate::eval::pictures::interpolate;
use crate::kinds::Evaluation;
use crate::metrics::Record;
use crate::run_dir::RunDir;

pub use genae_estimators::gmm::CovarianceKind;

/// Where the codes of generated images come from.
#[derive(Clone, Debug, PartialEq)]
pub enum Sampler {
    /// The model's prior (a VQ-VAE: its PixelCNN over code grids).
    Prior,
    /// Ex-post density estimation: a Gaussian mixture fitted by EM to the posterior means of
    /// the training split, sampled in latent space (Ghosh et al. 2020).
    Gmm {
        /// Mixture components.
        components: usize,
        /// Full or diagonal covariances.
        covariance: CovarianceKind,
    },
    /// Markov chains in latent space from prior draws (`z → x̂ → z`, with the run's
    /// `[chain]` decode / encode / corruption settings), after `steps` transitions.
    Chain {
        /// Transitions.
        steps: usize,
    },
}

impl Sampler {
    /// `prior`, `gmm` or `chain`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Prior => "prior",
            Self::Gmm { .. } => "gmm",
            Self::Chain { .. } => "chain",
        }
    }
}

/// What [`TrainedRun::sample`] draws.
#[derive(Clone, Debug, PartialEq)]
pub struct SampleOptions {
    /// Images (≥ 1).
    pub n: i64,
    /// Where the codes come from.
    pub sampler: Sampler,
    /// Seed of every random draw (the same seed gives the same images).
    pub seed: u64,
}

/// Generated images with the codes they were decoded from.
#[derive(Debug)]
pub struct Samples {
    /// Decoder means `[n, C, H, W]` in `[0, 1]`.
    pub images: Tensor,
    /// Their codes `[n, d]` (`None` for a VQ-VAE, whose codes are grids).
    pub codes: Option<Tensor>,
}

/// `reconstruction.json` of `genae reconstruct`.
#[derive(Clone, Debug, Serialize)]
pub struct ReconstructionRecord {
    /// Where the images came from.
    pub data: String,
    /// Images reconstructed (all of the source).
    pub images: i64,
    /// Mean squared error per pixel of the reconstructions (decoder means at the posterior
    /// means; grey levels in `[0, 1]`).
    pub mse: f64,
    /// The kind's own metrics on these images (`elbo`, `reconstruction`, `kl`, … where it has
    /// them).
    pub metrics: Record,
}

/// What `genae interpolate` draws.
#[derive(Clone, Debug, PartialEq)]
pub struct InterpolateOptions {
    /// Pairs of test images (rows of the picture).
    pub pairs: i64,
    /// Points along each path, ends included (≥ 2).
    pub points: i64,
    /// Chain steps refining each point (0: only linear and spherical paths).
    pub refine: usize,
}

impl TrainedRun {
    pub(super) fn batch(&self) -> i64 {
        self.config.file().eval.batch_size as i64
    }

    pub(super) fn need_autoencoder(
        &self,
        what: &str,
    ) -> Result<&dyn GenerativeAutoencoder, LabError> {
        self.autoencoder().ok_or_else(|| {
            self.unsupported(format!(
                "{what} needs a continuous latent space with an encoder and a prior; a \
                 VQ-VAE's codes are discrete grids (use the prior sampler)"
            ))
        })
    }

    /// Decoder means `[n, C, H, W]` of codes `[n, d]`.
    fn decode(&self, ae: &dyn GenerativeAutoencoder, z: &Tensor) -> Result<Tensor, LabError> {
        let [c, h, w] = self.image_shape();
        Ok(batched(z, self.batch(), |chunk| Ok(ae.decode_mean(chunk)?))?.f_view([-1, c, h, w])?)
    }

    /// Posterior means `[N, d]` of the training split (the points a GMM sampler is fitted to).
    pub fn training_codes(&self) -> Result<Tensor, LabError> {
        let ae = self.need_autoencoder("the GMM sampler")?;
        let x = self.images(&DataSource::Train)?.x;
        batched(&x, self.batch(), |chunk| Ok(ae.encode_mean(chunk)?))
    }

    /// Draws `options.n` images.
    pub fn sample(&self, options: &SampleOptions) -> Result<Samples, LabError> {
        if options.n < 1 {
            return Err(LabError::Run {
                path: self.dir().to_path_buf(),
                reason: format!("cannot draw {} samples: --n must be at least 1", options.n),
            });
        }
        let n = options.n;
        tch::manual_seed(options.seed as i64);
        match &options.sampler {
            Sampler::Prior => {
                if let Some(ae) = self.autoencoder() {
                    let z = tch::no_grad(|| ae.sample_prior(n, self.device))?;
                    let images = self.decode(ae, &z)?;
                    return Ok(Samples {
                        images,
                        codes: Some(z),
                    });
                }
                let out = self.dir.clone();
                let run = self.context(&out);
                match self.model.sample_images(n, options.seed, &run)? {
                    Some(images) => Ok(Samples {
                        images,
                        codes: None,
                    }),
                    None => Err(self.unsupported("the model has no prior to sample from")),
                }
            }
            Sampler::Gmm {
                components,
                covariance,
            } => {
                let ae = self.need_autoencoder("the GMM sampler")?;
                let codes = self.training_codes()?;
                let gmm_options = genae_estimators::gmm::GmmOptions {
                    components: *components,
                    covariance: *covariance,
                    seed: options.seed,
                    ..Default::default()
                };
                let (gmm, _) = genae_estimators::gmm::GaussianMixture::fit(
                    &codes.f_to_kind(Kind::Double)?,
                    &gmm_options,
                )?;
                let z = gmm
                    .sample(n, options.seed)?
                    .f_to_kind(Kind::Float)?
                    .f_to_device(self.device)?;
                let images = self.decode(ae, &z)?;
                Ok(Samples {
                    images,
                    codes: Some(z),
                })
            }
            Sampler::Chain { steps } => {
                let ae = self.need_autoencoder("the chain sampler")?;
                let out = markov_chain(&self.config.file().chain, *steps).from_prior(
                    ae,
                    n,
                    self.device,
                )?;
                let [c, h, w] = self.image_shape();
                Ok(Samples {
                    images: out.images.f_view([-1, c, h, w])?,
                    codes: Some(out.codes),
                })
            }
        }
    }

    /// [`TrainedRun::sample`], written to `<run>/samples/<sampler>-<UTC>/`: `samples.png` (a
    /// square grid), `samples.safetensors` (`images` `[n, C, H, W]`, and `codes` `[n, d]`
    /// where the model has them) and `sampling.json`. Returns the folder.
    pub fn write_samples(&self, options: &SampleOptions) -> Result<PathBuf, LabError> {
        let samples = self.sample(options)?;
        let out = self.output_dir("samples", options.sampler.name())?;
        let ncol = (options.n as f64).sqrt().ceil() as usize;
        save_image_grid(&samples.images, ncol, &out.file("samples.png"))?;
        let mut named = vec![("images".to_string(), samples.images.shallow_clone())];
        if let Some(codes) = &samples.codes {
            named.push(("codes".to_string(), codes.shallow_clone()));
        }
        write_tensors_atomic(&out, "samples.safetensors", &named)?;
        let (components, covariance, steps) = match &options.sampler {
            Sampler::Gmm {
                components,
                covariance,
            } => (Some(*components), Some(format!("{covariance:?}")), None),
            Sampler::Chain { steps } => (None, None, Some(*steps)),
            Sampler::Prior => (None, None, None),
        };
        let record = serde_json::json!({
            "sampler": options.sampler.name(),
            "n": options.n,
            "seed": options.seed,
            "gmm_components": components,
            "gmm_covariance": covariance.map(|c| c.to_lowercase()),
            "chain_steps": steps,
            "weights": self.weights_file(),
        });
        out.write_atomic("sampling.json", pretty(&record).as_bytes())?;
        Ok(out.path().to_path_buf())
    }

    /// The embedding of `source`: the kind's named arrays (`mean`, and `log_var` or `codes`
    /// where it has them) and `labels`.
    pub fn embed(&self, source: &DataSource) -> Result<Vec<(String, Tensor)>, LabError> {
        let images = self.images(source)?;
        let mut parts: Vec<Vec<(&'static str, Tensor)>> = Vec::new();
        for (start, len) in batch_ranges(images.x.size()[0], self.batch()) {
            parts.push(self.model.embed(&images.x.f_narrow(0, start, len)?)?);
        }
        let Some(first) = parts.first() else {
            return Err(LabError::Run {
                path: self.dir().to_path_buf(),
                reason: format!("{source} holds no images"),
            });
        };
        if first.is_empty() {
            return Err(self.unsupported("the model has no embedding"));
        }
        let mut named = Vec::new();
        for (i, (name, _)) in first.iter().enumerate() {
            let pieces: Vec<Tensor> = parts.iter().map(|p| p[i].1.shallow_clone()).collect();
            named.push((name.to_string(), Tensor::f_cat(&pieces, 0)?));
        }
        named.push(("labels".to_string(), images.labels));
        Ok(named)
    }

    /// [`TrainedRun::embed`] written to `out`: a `.safetensors` or `.npz` file with one array
    /// per name, or for `.npy` one file per name (`<stem>.npy` holds `mean` or `codes`, the
    /// others `<stem>_<name>.npy`). Returns the files written.
    pub fn write_embedding(
        &self,
        source: &DataSource,
        out: &Path,
    ) -> Result<Vec<PathBuf>, LabError> {
        let format = ArrayFile::of(out)?;
        let named = self.embed(source)?;
        crate::arrays::write_arrays(out, format, &named)
    }

    /// Reconstructions `[N, C, H, W]` of images `x` (`[N, C·H·W]`).
    pub fn reconstruct(&self, x: &Tensor) -> Result<Tensor, LabError> {
        if let Some(rec) = self.model.reconstruct(x)? {
            return Ok(rec);
        }
        let ae = self.need_autoencoder("reconstruction")?;
        let z = batched(x, self.batch(), |chunk| Ok(ae.encode_mean(chunk)?))?;
        self.decode(ae, &z)
    }

    /// Reconstructs every image of `source`: `reconstructions.png` (the first `n` images over
    /// their reconstructions) and `reconstruction.json` (MSE and the kind's metrics over all
    /// of them) in `<run>/reconstructions/<source>-<UTC>/`. Returns the folder and the record.
    pub fn write_reconstructions(
        &self,
        source: &DataSource,
        n: i64,
    ) -> Result<(PathBuf, ReconstructionRecord), LabError> {
        if n < 1 {
            return Err(LabError::Run {
                path: self.dir().to_path_buf(),
                reason: format!("cannot show {n} reconstructions: --n must be at least 1"),
            });
        }
        let images = self.images(source)?;
        let count = images.x.size()[0];
        let rec = self.reconstruct(&images.x)?;
        let [c, h, w] = self.image_shape();
        let mse = (rec.f_view([count, -1])? - &images.x)
            .square()
            .f_mean(Kind::Double)?
            .double_value(&[]);
        let split = DeviceSplit::of(images.x.shallow_clone(), images.labels.shallow_clone());
        let label = match source {
            DataSource::Path(_) => "path".to_string(),
            s => s.to_string(),
        };
        let out = self.output_dir("reconstructions", &label)?;
        let metrics = {
            let run = self.context(&out);
            tch::manual_seed(likelihood_seed(self.config.file().seed, 0) as i64);
            self.model.evaluate(&Evaluation {
                phase: self.last_phase(),
                split: &split,
                run: &run,
            })?
        };
        let shown = n.min(count);
        let pair = Tensor::f_cat(
            &[
                images.x.f_narrow(0, 0, shown)?.f_view([-1, c, h, w])?,
                rec.f_narrow(0, 0, shown)?,
            ],
            0,
        )?;
        save_image_grid(&pair, shown as usize, &out.file("reconstructions.png"))?;
        let record = ReconstructionRecord {
            data: source.to_string(),
            images: count,
            mse,
            metrics,
        };
        out.write_atomic(
            "reconstruction.json",
            pretty(&serde_json::to_value(&record).expect("records serialise")).as_bytes(),
        )?;
        Ok((out.path().to_path_buf(), record))
    }

    /// `interpolations.png` (per pair of test images, a row of linear and a row of spherical
    /// steps between their posterior means) and, with `refine > 0`,
    /// `interpolations_refined.png` (plain over chain-refined rows) in
    /// `<run>/interpolations/pairs-<UTC>/`. Returns the folder.
    pub fn write_interpolations(&self, options: &InterpolateOptions) -> Result<PathBuf, LabError> {
        let ae = self.need_autoencoder("interpolation")?;
        let pairs = options.pairs.min(self.test.n / 2);
        if options.pairs < 1 || pairs < 1 {
            return Err(LabError::Run {
                path: self.dir().to_path_buf(),
                reason: format!(
                    "--pairs {} with {} test images: need at least one pair",
                    options.pairs, self.test.n
                ),
            });
        }
        if options.points < 2 {
            return Err(LabError::Run {
                path: self.dir().to_path_buf(),
                reason: format!(
                    "--points {}: a path needs at least 2 points",
                    options.points
                ),
            });
        }
        let [c, h, w] = self.image_shape();
        let x_a = self.test.x.f_narrow(0, 0, pairs)?;
        let x_b = self.test.x.f_narrow(0, pairs, pairs)?;
        let (z_a, z_b) = tch::no_grad(|| -> Result<_, LabError> {
            Ok((ae.encode_mean(&x_a)?, ae.encode_mean(&x_b)?))
        })?;
        let mut rows = Vec::new();
        for p in 0..pairs {
            let (a, b) = (z_a.get(p), z_b.get(p));
            let (linear, spherical) = interpolate(&a, &b, options.points);
            rows.push(self.decode(ae, &linear)?);
            rows.push(self.decode(ae, &spherical)?);
        }
        let out = self.output_dir("interpolations", "pairs")?;
        let grid = Tensor::f_cat(&rows, 0)?.f_view([-1, c, h, w])?;
        save_image_grid(
            &grid,
            options.points as usize,
            &out.file("interpolations.png"),
        )?;
        if options.refine > 0 {
            tch::manual_seed(self.config.file().seed as i64);
            let refined = markov_chain(&self.config.file().chain, options.refine).interpolate(
                ae,
                &x_a,
                &x_b,
                options.points,
            )?;
            let rows: Vec<Tensor> = (0..pairs)
                .flat_map(|p| [refined.plain.get(p), refined.refined.get(p)])
                .collect();
            let grid = Tensor::f_cat(&rows, 0)?.f_view([-1, c, h, w])?;
            save_image_grid(
                &grid,
                options.points as usize,
                &out.file("interpolations_refined.png"),
            )?;
        }
        Ok(out.path().to_path_buf())
    }
}

/// The run's chain with `steps` transitions.
fn markov_chain(section: &ChainSection, steps: usize) -> MarkovChain<'_> {
    crate::eval::chains::configured_chain(section, steps)
}

pub(super) fn pretty(value: &serde_json::Value) -> String {
    let mut text = serde_json::to_string_pretty(value).expect("JSON values serialise");
    text.push('\n');
    text
}

fn write_tensors_atomic(
    out: &RunDir,
    name: &str,
    named: &[(String, Tensor)],
) -> Result<(), LabError> {
    out.write_atomic(name, &crate::safetensors_file::safetensors_bytes(named)?)
}

/// The array-file formats `genae embed` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ArrayFile {
    Npy,
    Npz,
    Safetensors,
}

impl ArrayFile {
    fn of(path: &Path) -> Result<Self, LabError> {
        match path.extension().and_then(|e| e.to_str()) {
            Some("npy") => Ok(Self::Npy),
            Some("npz") => Ok(Self::Npz),
            Some("safetensors") => Ok(Self::Safetensors),
            _ => Err(LabError::Run {
                path: path.to_path_buf(),
                reason: "--out must end in .npy, .npz or .safetensors".into(),
            }),
        }
    }
}
