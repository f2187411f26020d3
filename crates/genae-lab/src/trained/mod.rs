//! A trained run opened again: [`TrainedRun`] reads a run directory's `config.toml`, rebuilds
//! the model kind it describes and loads its weights (`model.safetensors`, and
//! `prior.safetensors` for a VQ-VAE; a run that never finished is opened from its
//! `checkpoint.safetensors`). The `genae sample / embed / reconstruct / evaluate /
//! interpolate` commands are methods of it ([`crate::trained::ops`], `evaluate` in
//! [`crate::trained::evaluate`]); each writes into its own
//! subfolder of the run and never touches the training files.
//!
//! ```no_run
//! use genae_lab::{SampleOptions, Sampler, TrainedRun};
//! let run = TrainedRun::open("runs/fashion-mnist-vae-20261203T120000Z".as_ref()).unwrap();
//! println!("{} on {}", run.config().kind(), run.dataset_name());
//! let samples = run
//!     .sample(&SampleOptions { n: 64, sampler: Sampler::Prior, seed: 1 })
//!     .unwrap();
//! assert_eq!(samples.images.size()[0], 64);
//! ```

pub(crate) mod evaluate;
pub(crate) mod ops;

use std::path::{Path, PathBuf};

use genae_data::registry;
use genae_data::transforms::{binarize_static, Binarization};
use genae_data::ImageSet;
use genae_zoo::GenerativeAutoencoder;
use tch::{Device, Tensor};

use crate::checkpoint::{load_model_files, Checkpoint};
use crate::config::{ModelKind, ValidConfig};
use crate::context::{run_device, RunContext};
use crate::data::{prepare_data, DeviceSplit, PreparedData, TEST_DRAW};
use crate::error::LabError;
use crate::kinds::{self, Trainable};
use crate::run_dir::RunDir;

/// Which images a command works on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DataSource {
    /// The run's training split (after its validation hold-out).
    Train,
    /// The run's validation split (`data.validation_size > 0`).
    Validation,
    /// The run's test split.
    Test,
    /// Every image (training split, then test split) of a file or folder in any format
    /// `genae dataset info` reads, prepared like the run's test split (binarised when the run
    /// binarises). Its image shape must be the run's.
    Path(PathBuf),
}

impl std::str::FromStr for DataSource {
    type Err = std::convert::Infallible;

    /// `train`, `validation`, `test`, or anything else as a path.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "train" => Self::Train,
            "validation" => Self::Validation,
            "test" => Self::Test,
            path => Self::Path(PathBuf::from(path)),
        })
    }
}

impl std::fmt::Display for DataSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Train => f.write_str("train"),
            Self::Validation => f.write_str("validation"),
            Self::Test => f.write_str("test"),
            Self::Path(p) => write!(f, "{}", p.display()),
        }
    }
}

/// Images of a [`DataSource`] on the run's device: `x` `[N, C·H·W]` in `[0, 1]`, `labels`
/// `[N]` (int64).
pub struct SourceImages {
    /// The images, flattened.
    pub x: Tensor,
    /// Their labels (0 for unlabelled data).
    pub labels: Tensor,
}

/// A finished (or checkpointed) run, its model rebuilt and its weights loaded.
pub struct TrainedRun {
    dir: RunDir,
    config: ValidConfig,
    device: Device,
    data: PreparedData,
    test: DeviceSplit,
    model: Box<dyn Trainable>,
    summary: Option<serde_json::Value>,
    weights: PathBuf,
}

impl std::fmt::Debug for TrainedRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrainedRun")
            .field("dir", &self.dir.path())
            .field("kind", &self.config.kind())
            .field("weights", &self.weights)
            .finish()
    }
}

impl TrainedRun {
    /// Opens the run in `dir` with its own config, on its configured device.
    pub fn open(dir: &Path) -> Result<Self, LabError> {
        Self::open_with(dir, &[])
    }

    /// Opens the run with `overrides` applied to its config (`section.key=value`; e.g.
    /// `device=cpu`, `eval.log_likelihood_k=5000`). Overrides that change the model's shape
    /// make the weights fail to load, with an error naming the first mismatched tensor.
    pub fn open_with(dir: &Path, overrides: &[String]) -> Result<Self, LabError> {
        let run_dir = RunDir::open(dir)?;
        let config_path = run_dir.file("config.toml");
        if !config_path.is_file() {
            return Err(LabError::Run {
                path: dir.to_path_buf(),
                reason: "no config.toml: not a genae run directory".into(),
            });
        }
        let config = ValidConfig::load(&config_path, overrides)?;
        let device = run_device(&config)?;
        let data = prepare_data(&config)?;
        let test = DeviceSplit::new(&data.test, device)?;
        tch::manual_seed(config.file().seed as i64);
        let mut model = {
            let run = RunContext {
                config: &config,
                device,
                data: &data,
                test: &test,
                run_dir: &run_dir,
            };
            kinds::build(config.spec(), &run)?
        };
        let weights = {
            let state = model.state();
            let files: Vec<&str> = state.files.iter().map(|f| f.file).collect();
            if files.iter().all(|f| run_dir.file(f).is_file()) {
                load_model_files(&state.files, &run_dir)?;
                run_dir.file(files[0])
            } else if run_dir.file(crate::checkpoint::CHECKPOINT).is_file() {
                Checkpoint::read(&run_dir)?.restore_params(&state.files)?;
                run_dir.file(crate::checkpoint::CHECKPOINT)
            } else {
                return Err(LabError::Run {
                    path: run_dir.file(files[0]),
                    reason: format!(
                        "missing, and no checkpoint.safetensors either: the run saved no \
                         weights (a {} run writes {})",
                        config.kind(),
                        files.join(" and ")
                    ),
                });
            }
        };
        let summary = std::fs::read_to_string(run_dir.file("summary.json"))
            .ok()
            .and_then(|text| serde_json::from_str(&text).ok());
        Ok(Self {
            dir: run_dir,
            config,
            device,
            data,
            test,
            model,
            summary,
            weights,
        })
    }

    /// The run directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The resolved config (with any overrides given to [`TrainedRun::open_with`]).
    pub fn config(&self) -> &ValidConfig {
        &self.config
    }

    /// The model kind.
    pub fn kind(&self) -> ModelKind {
        self.config.kind()
    }

    /// The device the model lives on.
    pub fn device(&self) -> Device {
        self.device
    }

    /// The data set's name.
    pub fn dataset_name(&self) -> &str {
        &self.data.name
    }

    /// `[C, H, W]` of one image.
    pub fn image_shape(&self) -> [i64; 3] {
        self.data.image_shape()
    }

    /// The file the weights were loaded from (`model.safetensors`, or
    /// `checkpoint.safetensors` for a run that never finished).
    pub fn weights_file(&self) -> &Path {
        &self.weights
    }

    /// `summary.json` as written at the end of training (`None` for a run that never
    /// finished).
    pub fn summary(&self) -> Option<&serde_json::Value> {
        self.summary.as_ref()
    }

    /// The model as an encoder–decoder with a prior (`None` for a VQ-VAE).
    pub fn autoencoder(&self) -> Option<&dyn GenerativeAutoencoder> {
        self.model.autoencoder()
    }

    /// The images of `source` on the run's device, prepared like the run's own splits.
    pub fn images(&self, source: &DataSource) -> Result<SourceImages, LabError> {
        let from_set = |set: &ImageSet| -> Result<SourceImages, LabError> {
            let split = DeviceSplit::new(set, self.device)?;
            Ok(SourceImages {
                x: split.x,
                labels: split.labels,
            })
        };
        match source {
            DataSource::Test => Ok(SourceImages {
                x: self.test.x.shallow_clone(),
                labels: self.test.labels.shallow_clone(),
            }),
            DataSource::Train => {
                if self.data.dynamic {
                    // A dynamically binarised run trains on fresh draws: use one fixed draw.
                    let d = &self.config.file().data;
                    from_set(&binarize_static(&self.data.train, d.seed ^ TEST_DRAW))
                } else {
                    from_set(&self.data.train)
                }
            }
            DataSource::Validation => match &self.data.validation {
                Some(set) => from_set(set),
                None => Err(LabError::Run {
                    path: self.dir().to_path_buf(),
                    reason: "the run has no validation split (data.validation_size = 0)".into(),
                }),
            },
            DataSource::Path(path) => {
                let options = registry::PathOptions {
                    test_fraction: 0.5,
                    ..self.config.file().data.path_options()
                };
                let dataset = registry::load_path_with(path, &options)?;
                let mut set = dataset.train;
                if set.image_shape != dataset.test.image_shape && !dataset.test.is_empty() {
                    return Err(LabError::Run {
                        path: path.clone(),
                        reason: "its train and test images differ in shape".into(),
                    });
                }
                set.pixels.extend_from_slice(&dataset.test.pixels);
                set.labels.extend_from_slice(&dataset.test.labels);
                if set.is_empty() {
                    return Err(LabError::Run {
                        path: path.clone(),
                        reason: "holds no images".into(),
                    });
                }
                let want = self.image_shape().map(|v| v as usize);
                if set.image_shape != want {
                    return Err(LabError::Run {
                        path: path.clone(),
                        reason: format!(
                            "its images are {:?} (C, H, W); the run's model takes {want:?}",
                            set.image_shape
                        ),
                    });
                }
                let d = &self.config.file().data;
                if d.binarize != Binarization::None && self.config.kind() != ModelKind::Vqvae {
                    set = binarize_static(&set, d.seed ^ TEST_DRAW);
                }
                from_set(&set)
            }
        }
    }

    /// What the kinds and shared evaluations see, writing into `out`.
    fn context<'a>(&'a self, out: &'a RunDir) -> RunContext<'a> {
        RunContext {
            config: &self.config,
            device: self.device,
            data: &self.data,
            test: &self.test,
            run_dir: out,
        }
    }

    /// The error for an operation the run's kind does not have.
    fn unsupported(&self, reason: impl Into<String>) -> LabError {
        LabError::Unsupported {
            kind: self.config.kind().to_string(),
            reason: reason.into(),
        }
    }

    /// A fresh subfolder `<run>/<folder>/<name>-<UTC timestamp>` for a command's output.
    fn output_dir(&self, folder: &str, name: &str) -> Result<RunDir, LabError> {
        RunDir::create(&self.dir.file(folder), name)
    }
}
