//! A small convolutional image classifier whose penultimate layer serves as the feature space
//! of a Fréchet distance between generated and real images (the FID formula on a classifier
//! trained on the data set itself, instead of an Inception network).

use serde::{Deserialize, Serialize};
use tch::{nn, nn::Module, Kind, Tensor};

use crate::config::{validate_channels, validate_conv_shape};
use crate::networks::flatten_input;
use crate::{init, Activation, ConvEncoder, Result, ZooError};

/// Hyper-parameters of a [`Classifier`]; every field but the data-dependent `input_shape` and
/// `num_classes` has a default, unknown fields are rejected.
///
/// ```
/// use genae_zoo::ClassifierConfig;
///
/// let config = ClassifierConfig::new([1, 28, 28], 10);
/// assert_eq!((config.channels.clone(), config.feature_dim), (vec![32, 64], 128));
/// config.validate().unwrap();
/// let bad = ClassifierConfig { num_classes: 1, ..config };
/// assert!(bad.validate().unwrap_err().to_string().contains("num_classes"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassifierConfig {
    /// The image shape `[C, H, W]`, `H = W` one of
    /// [`CONV_IMAGE_SIZES`](crate::CONV_IMAGE_SIZES) (any `C ≥ 1`).
    pub input_shape: [i64; 3],
    /// The number of classes (at least 2); labels are `0..num_classes`.
    pub num_classes: i64,
    /// Output channels of each stride-2 convolution, from the input side (default `[32, 64]`).
    #[serde(default = "default_channels")]
    pub channels: Vec<i64>,
    /// Width of the penultimate layer, the features [`Classifier::features`] returns
    /// (default 128).
    #[serde(default = "default_feature_dim")]
    pub feature_dim: i64,
    /// Nonlinearity after every convolution and after the feature layer (default ReLU).
    #[serde(default)]
    pub activation: Activation,
}

fn default_channels() -> Vec<i64> {
    vec![32, 64]
}

fn default_feature_dim() -> i64 {
    128
}

impl ClassifierConfig {
    /// The default network for `[C, H, W]` images of `num_classes` classes.
    pub fn new(input_shape: [i64; 3], num_classes: i64) -> Self {
        Self {
            input_shape,
            num_classes,
            channels: default_channels(),
            feature_dim: default_feature_dim(),
            activation: Activation::Relu,
        }
    }

    /// Checks every field, naming the first bad one.
    pub fn validate(&self) -> Result<()> {
        validate_conv_shape(self.input_shape)?;
        validate_channels(&self.channels)?;
        if self.num_classes < 2 {
            return Err(ZooError::InvalidConfig {
                field: "num_classes",
                reason: format!(
                    "a classifier needs at least 2 classes, got {}",
                    self.num_classes
                ),
            });
        }
        if self.feature_dim < 1 {
            return Err(ZooError::InvalidConfig {
                field: "feature_dim",
                reason: format!("must be positive, got {}", self.feature_dim),
            });
        }
        Ok(())
    }
}

/// A convolutional classifier: stride-2 convolutions (a [`ConvEncoder`] without residual
/// blocks, `conv/…`), a fully connected feature layer of
/// [`feature_dim`](ClassifierConfig::feature_dim) units (`features`) with the nonlinearity, and
/// a linear layer to the class logits (`head`). It takes 1- or 3-channel (any `C`) images of
/// side 28, 32 or 64, as `[N, C, H, W]` or flattened `[N, C·H·W]`, values in `[0, 1]`.
///
/// ```
/// use genae_zoo::{Classifier, ClassifierConfig};
/// use tch::{nn, Device, Kind, Tensor};
///
/// let vs = nn::VarStore::new(Device::Cpu);
/// let config = ClassifierConfig { feature_dim: 16, ..ClassifierConfig::new([3, 32, 32], 10) };
/// let classifier = Classifier::new(&vs.root(), &config).unwrap();
/// let x = Tensor::rand([4, 3, 32, 32], (Kind::Float, Device::Cpu));
/// assert_eq!(classifier.features(&x).unwrap().size(), vec![4, 16]);
/// assert_eq!(classifier.logits(&x).unwrap().size(), vec![4, 10]);
/// let labels = Tensor::from_slice(&[0i64, 3, 9, 1]);
/// assert!(classifier.loss(&x, &labels).unwrap().double_value(&[]) > 0.0);
/// ```
#[derive(Debug)]
pub struct Classifier {
    conv: ConvEncoder,
    features: nn::Linear,
    head: nn::Linear,
    config: ClassifierConfig,
}

impl Classifier {
    /// A classifier with its parameters under `path`.
    pub fn new(path: &nn::Path, config: &ClassifierConfig) -> Result<Self> {
        config.validate()?;
        let conv = ConvEncoder::new(
            &(path / "conv"),
            config.input_shape,
            &config.channels,
            0,
            config.activation,
        )?;
        let features = init::linear(path / "features", conv.output_dim(), config.feature_dim);
        let head = init::linear(path / "head", config.feature_dim, config.num_classes);
        Ok(Self {
            conv,
            features,
            head,
            config: config.clone(),
        })
    }

    /// The config it was built from.
    pub fn config(&self) -> &ClassifierConfig {
        &self.config
    }

    /// The width of [`features`](Self::features).
    pub fn feature_dim(&self) -> i64 {
        self.config.feature_dim
    }

    /// The number of classes.
    pub fn num_classes(&self) -> i64 {
        self.config.num_classes
    }

    /// The penultimate-layer activations `[N, feature_dim]` of images `[N, C, H, W]` (or
    /// flattened `[N, C·H·W]`).
    pub fn features(&self, x: &Tensor) -> Result<Tensor> {
        let [c, h, w] = self.config.input_shape;
        let flat = flatten_input(x, c * h * w, "classifier features")?;
        let conv = self.conv.encode(&flat)?;
        Ok(self.config.activation.apply(&conv.apply(&self.features)))
    }

    /// Class logits `[N, num_classes]`.
    pub fn logits(&self, x: &Tensor) -> Result<Tensor> {
        self.logits_of_features(&self.features(x)?)
    }

    /// Class logits `[N, num_classes]` from features `[N, feature_dim]` already computed by
    /// [`features`](Self::features) (the last layer alone).
    pub fn logits_of_features(&self, features: &Tensor) -> Result<Tensor> {
        if features.dim() != 2 || features.size()[1] != self.config.feature_dim {
            return Err(ZooError::Shape {
                what: "classifier logits_of_features",
                detail: format!(
                    "expected features [N, {}], got {:?}",
                    self.config.feature_dim,
                    features.size()
                ),
            });
        }
        Ok(self.head.forward(features))
    }

    /// The mean cross-entropy of the logits against integer `labels` `[N]` in
    /// `0..num_classes` (a scalar, differentiable).
    pub fn loss(&self, x: &Tensor, labels: &Tensor) -> Result<Tensor> {
        let logits = self.logits(x)?;
        self.check_labels(labels, logits.size()[0])?;
        Ok(logits.f_log_softmax(1, Kind::Float)?.f_nll_loss::<Tensor>(
            &labels.f_to_kind(Kind::Int64)?,
            None,
            tch::Reduction::Mean,
            -100,
        )?)
    }

    /// The fraction of `x` (`[N, …]`) whose most probable class is the label (`[N]`),
    /// computed in batches of `batch_size` without gradient.
    pub fn accuracy(&self, x: &Tensor, labels: &Tensor, batch_size: i64) -> Result<f64> {
        let n = x.size().first().copied().unwrap_or(0);
        self.check_labels(labels, n)?;
        if batch_size < 1 {
            return Err(ZooError::InvalidConfig {
                field: "batch_size",
                reason: format!("must be positive, got {batch_size}"),
            });
        }
        let labels = labels.f_to_kind(Kind::Int64)?.f_to_device(x.device())?;
        tch::no_grad(|| {
            let mut correct = 0i64;
            let mut start = 0;
            while start < n {
                let len = batch_size.min(n - start);
                let predicted = self
                    .logits(&x.f_narrow(0, start, len)?)?
                    .f_argmax(1, false)?;
                correct += predicted
                    .f_eq_tensor(&labels.f_narrow(0, start, len)?)?
                    .f_sum(Kind::Int64)?
                    .int64_value(&[]);
                start += len;
            }
            Ok(correct as f64 / n as f64)
        })
    }

    fn check_labels(&self, labels: &Tensor, n: i64) -> Result<()> {
        if labels.size() != [n] || labels.is_floating_point() {
            return Err(ZooError::Shape {
                what: "classifier labels",
                detail: format!(
                    "expected integer labels [{n}] (one per image), got {:?} of {:?}",
                    labels.size(),
                    labels.kind()
                ),
            });
        }
        if n > 0 {
            let (lo, hi) = (
                labels.f_min()?.int64_value(&[]),
                labels.f_max()?.int64_value(&[]),
            );
            if lo < 0 || hi >= self.config.num_classes {
                return Err(ZooError::Shape {
                    what: "classifier labels",
                    detail: format!(
                        "labels must lie in 0..{}, found values in {lo}..={hi}",
                        self.config.num_classes
                    ),
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use tch::{nn::OptimizerConfig, Device};

    use super::*;

    #[test]
    fn shapes_and_parameter_names() {
        let _rng = crate::torch_rng_lock();
        let vs = nn::VarStore::new(Device::Cpu);
        let config = ClassifierConfig {
            channels: vec![4, 8],
            feature_dim: 12,
            ..ClassifierConfig::new([1, 28, 28], 3)
        };
        let classifier = Classifier::new(&vs.root(), &config).unwrap();
        let x = Tensor::rand([5, 784], (Kind::Float, Device::Cpu));
        assert_eq!(classifier.features(&x).unwrap().size(), vec![5, 12]);
        assert_eq!(classifier.logits(&x).unwrap().size(), vec![5, 3]);
        let features = classifier.features(&x).unwrap();
        let logits = classifier.logits_of_features(&features).unwrap();
        assert!(logits.equal(&classifier.logits(&x).unwrap()));
        assert!(classifier.logits_of_features(&x).is_err());
        assert!(features.min().double_value(&[]) >= 0.0, "ReLU features");
        let mut names: Vec<String> = vs.variables().into_keys().collect();
        names.sort();
        assert_eq!(
            names,
            [
                "conv.down0.bias",
                "conv.down0.weight",
                "conv.down1.bias",
                "conv.down1.weight",
                "features.bias",
                "features.weight",
                "head.bias",
                "head.weight"
            ]
        );
    }

    #[test]
    fn bad_inputs_are_errors_not_panics() {
        let _rng = crate::torch_rng_lock();
        let vs = nn::VarStore::new(Device::Cpu);
        let classifier =
            Classifier::new(&vs.root(), &ClassifierConfig::new([1, 28, 28], 3)).unwrap();
        let err = classifier
            .features(&Tensor::rand([2, 100], (Kind::Float, Device::Cpu)))
            .unwrap_err()
            .to_string();
        assert!(err.contains("784") && err.contains("[2, 100]"), "{err}");
        let x = Tensor::rand([2, 1, 28, 28], (Kind::Float, Device::Cpu));
        let err = classifier
            .loss(&x, &Tensor::from_slice(&[0i64, 3]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("0..3") && err.contains("0..=3"), "{err}");
        let err = classifier
            .accuracy(&x, &Tensor::from_slice(&[0i64]), 10)
            .unwrap_err()
            .to_string();
        assert!(err.contains("[2]"), "{err}");
        let err = Classifier::new(&vs.root(), &ClassifierConfig::new([1, 20, 20], 3))
            .unwrap_err()
            .to_string();
        assert!(err.contains("input_shape"), "{err}");
    }

    /// Three classes told apart by where the bright square is (top-left, centre, bottom-right),
    /// on noisy backgrounds: a few Adam steps reach near-perfect accuracy on fresh images.
    fn separable(n: i64, channels: i64, side: i64) -> (Tensor, Tensor) {
        let labels = Tensor::randint(3, [n], (Kind::Int64, Device::Cpu));
        let x = Tensor::rand([n, channels, side, side], (Kind::Float, Device::Cpu)) * 0.3;
        let patch = side / 4;
        for i in 0..n {
            let offset = labels.int64_value(&[i]) * (side - patch) / 2;
            let _ = x
                .get(i)
                .narrow(1, offset, patch)
                .narrow(2, offset, patch)
                .fill_(1.0);
        }
        (x, labels)
    }

    #[test]
    fn a_few_steps_separate_separable_classes() {
        let _rng = crate::torch_rng_lock();
        for (channels, side) in [(1, 28), (3, 32)] {
            tch::manual_seed(7);
            let vs = nn::VarStore::new(Device::Cpu);
            let config = ClassifierConfig {
                channels: vec![8, 16],
                feature_dim: 32,
                ..ClassifierConfig::new([channels, side, side], 3)
            };
            let classifier = Classifier::new(&vs.root(), &config).unwrap();
            let (x, labels) = separable(96, channels, side);
            let (x_test, labels_test) = separable(60, channels, side);
            let before = classifier.accuracy(&x_test, &labels_test, 25).unwrap();
            let mut opt = nn::Adam::default().build(&vs, 3e-3).unwrap();
            for _ in 0..30 {
                opt.backward_step(&classifier.loss(&x, &labels).unwrap());
            }
            let after = classifier.accuracy(&x_test, &labels_test, 25).unwrap();
            // The batched count against one pass by hand.
            let by_hand = tch::no_grad(|| classifier.logits(&x_test).unwrap())
                .argmax(1, false)
                .eq_tensor(&labels_test)
                .sum(Kind::Int64)
                .int64_value(&[]) as f64
                / 60.0;
            assert!((after - by_hand).abs() < 1e-12, "{after} vs {by_hand}");
            assert!(
                after >= 0.95,
                "{channels}x{side}: accuracy {before} → {after}"
            );
            assert!(
                classifier.loss(&x, &labels).unwrap().double_value(&[]) < 0.2,
                "{channels}x{side}: training loss stays high"
            );
        }
    }
}
