//! `[eval.disentanglement]`: the disentanglement metrics of genae-estimators on a trained
//! encoder, with the shapes generator as the ground truth (images rendered on demand from
//! factor vectors, so the full grid is never held in memory), and `traversals.png`.

use std::time::Instant;

use genae_data::shapes::{Factors, Shape, ShapesSpec, FACTOR_NAMES};
use genae_estimators::disentanglement::{
    beta_vae_score, dci_from_ground_truth, factor_vae_score, gaussian_total_correlation,
    mig_from_ground_truth, sample_codes, sap_from_ground_truth, BetaVaeOptions, ChaCha8Rng,
    DciOptions, FactorVaeOptions, GroundTruth, MigOptions, SapOptions,
};
use genae_estimators::EstimatorError;
use genae_tensor::{save_image_grid, tensor_from_u8_images};
use genae_zoo::GenerativeAutoencoder;
use rand::SeedableRng;
use serde::Serialize;
use tch::{Device, Kind, Tensor};

use super::super::context::RunContext;
use crate::config::DisentanglementEval;
use crate::error::LabError;

/// The shapes generator and an encoder as a [`GroundTruth`]: codes are the encoder means of
/// the images rendered from the factors.
pub(crate) struct ShapesOracle<'a> {
    spec: ShapesSpec,
    model: &'a dyn GenerativeAutoencoder,
    device: Device,
    batch: i64,
    /// Images encoded so far.
    pub(crate) images: u64,
}

impl<'a> ShapesOracle<'a> {
    /// Codes of `model` for images of `spec`, encoded `batch` at a time on `device`.
    pub(crate) fn new(
        spec: ShapesSpec,
        model: &'a dyn GenerativeAutoencoder,
        device: Device,
        batch: i64,
    ) -> Self {
        Self {
            spec,
            model,
            device,
            batch: batch.max(1),
            images: 0,
        }
    }
}

impl GroundTruth for ShapesOracle<'_> {
    fn factor_sizes(&self) -> Vec<u32> {
        self.spec.factor_sizes().map(|c| c as u32).to_vec()
    }

    fn codes(&mut self, factors: &[Vec<u32>]) -> genae_estimators::Result<Vec<Vec<f64>>> {
        let n = factors.first().map_or(0, Vec::len);
        let points: Vec<Factors> = (0..n)
            .map(|i| Factors {
                shape: Shape::from_index(factors[0][i] as usize).unwrap_or(Shape::Square),
                scale: factors[1][i] as usize,
                rotation: factors[2][i] as usize,
                pos_x: factors[3][i] as usize,
                pos_y: factors[4][i] as usize,
            })
            .collect();
        let side = self.spec.image_size as i64;
        let mut columns: Vec<Vec<f64>> = Vec::new();
        for chunk in points.chunks(self.batch as usize) {
            let set = self.spec.images_from_factors(chunk);
            let x = tensor_from_u8_images(
                &set.pixels,
                &[chunk.len() as i64, side * side],
                self.device,
            )?;
            let z = tch::no_grad(|| self.model.encode_mean(&x))?.f_to_kind(Kind::Double)?;
            let z = z
                .f_to_device(Device::Cpu)?
                .f_transpose(0, 1)?
                .f_contiguous()?;
            let d = z.size()[0];
            columns.resize_with(d as usize, Vec::new);
            for (j, column) in columns.iter_mut().enumerate() {
                let values =
                    Vec::<f64>::try_from(&z.get(j as i64)).map_err(EstimatorError::from)?;
                column.extend(values);
            }
            self.images += chunk.len() as u64;
        }
        Ok(columns)
    }
}

/// `summary.json`'s `disentanglement` section.
#[derive(Clone, Debug, Serialize)]
pub struct DisentanglementSummary {
    /// The factors, in order.
    pub factors: Vec<&'static str>,
    /// β-VAE score (Higgins et al. 2017): evaluation accuracy of the factor classifier.
    pub beta_vae: f64,
    /// Its training accuracy.
    pub beta_vae_train: f64,
    /// FactorVAE score (Kim & Mnih 2018): evaluation accuracy of the majority vote.
    pub factor_vae: f64,
    /// Its training accuracy.
    pub factor_vae_train: f64,
    /// Code dimensions the FactorVAE score kept (standard deviation ≥ 0.05).
    pub factor_vae_active_dims: usize,
    /// Mutual Information Gap (Chen et al. 2018).
    pub mig: f64,
    /// MIG per factor.
    pub mig_per_factor: Vec<f64>,
    /// SAP score (Kumar et al. 2018).
    pub sap: f64,
    /// DCI disentanglement (Eastwood & Williams 2018, Lasso importances).
    pub dci_disentanglement: f64,
    /// DCI completeness.
    pub dci_completeness: f64,
    /// DCI informativeness: mean test NRMSE of the Lasso (lower is better).
    pub dci_informativeness_nrmse: f64,
    /// Total correlation of a Gaussian with the codes' covariance (unsupervised).
    pub gaussian_total_correlation: f64,
    /// Training points / votes per metric.
    pub train_points: usize,
    /// Held-out points / votes per metric.
    pub test_points: usize,
    /// Images rendered and encoded.
    pub images_encoded: u64,
    /// Wall time of the metrics.
    pub seconds: f64,
    /// `traversals.png`'s rows: latent dimension and its mean KL to the prior (nats) or,
    /// for encoders without a variance, the variance of its means, in row order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub traversal_rows: Vec<(usize, f64)>,
}

/// The metrics of `settings` for `model` on the shapes grid of the run's data.
pub(crate) fn evaluate(
    model: &dyn GenerativeAutoencoder,
    settings: &DisentanglementEval,
    run: &RunContext,
) -> Result<DisentanglementSummary, LabError> {
    let d = &run.config.file().data;
    let spec = ShapesSpec {
        image_size: d.image_size,
        n_scales: d.n_scales,
        n_rotations: d.n_rotations,
        n_positions: d.n_positions,
    };
    let start = Instant::now();
    let mut oracle = ShapesOracle::new(spec, model, run.device, run.eval_batch());
    let (train, test, batch) = (
        settings.train_points,
        settings.test_points,
        settings.batch_size,
    );
    let seed = settings.seed;
    let beta = beta_vae_score(
        &mut oracle,
        &BetaVaeOptions {
            batch_size: batch,
            num_train: train,
            num_eval: test,
            ..Default::default()
        },
        seed,
    )?;
    let factor = factor_vae_score(
        &mut oracle,
        &FactorVaeOptions {
            batch_size: batch,
            num_train: train,
            num_eval: test,
            num_variance_estimate: train,
            ..Default::default()
        },
        seed,
    )?;
    let mig = mig_from_ground_truth(
        &mut oracle,
        &MigOptions {
            num_train: train,
            ..Default::default()
        },
        seed,
    )?;
    let sap = sap_from_ground_truth(&mut oracle, &SapOptions { num_train: train }, seed)?;
    let dci = dci_from_ground_truth(
        &mut oracle,
        &DciOptions {
            num_train: train,
            num_test: test,
            ..Default::default()
        },
        seed,
    )?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x7c);
    let (codes, _) = sample_codes(&mut oracle, train, &mut rng)?;
    let columns: Vec<Tensor> = codes.iter().map(|c| Tensor::from_slice(c)).collect();
    let tc = gaussian_total_correlation(&Tensor::stack(&columns, 1)).unwrap_or(f64::NAN);
    Ok(DisentanglementSummary {
        factors: FACTOR_NAMES.to_vec(),
        beta_vae: beta.score,
        beta_vae_train: beta.train_accuracy,
        factor_vae: factor.score,
        factor_vae_train: factor.train_accuracy,
        factor_vae_active_dims: factor.num_active_dims,
        mig: mig.score,
        mig_per_factor: mig.gaps,
        sap: sap.score,
        dci_disentanglement: dci.disentanglement,
        dci_completeness: dci.completeness,
        dci_informativeness_nrmse: dci.informativeness,
        gaussian_total_correlation: tc,
        train_points: train,
        test_points: test,
        images_encoded: oracle.images,
        seconds: start.elapsed().as_secs_f64(),
        traversal_rows: Vec::new(),
    })
}

/// Columns of `traversals.png`: values of the swept dimension from −2 to 2 (two prior sd).
const TRAVERSAL_STEPS: i64 = 10;

/// `traversals.png`: the code of the first test image with one latent dimension at a time
/// swept over `[−2, 2]` (the `N(0, I)` prior's ±2 sd), decoded, one row per dimension, rows
/// ordered by the dimension's mean KL to the prior over the test codes (`mean` and `log_var`
/// of the kind's embedding), or by the variance of the means for encoders without a
/// variance. Returns the rows' dimensions and their ordering values.
pub(crate) fn write_traversals(
    model: &dyn GenerativeAutoencoder,
    embedding: &[(&'static str, Tensor)],
    run: &RunContext,
) -> Result<Vec<(usize, f64)>, LabError> {
    let find = |name: &str| embedding.iter().find(|(n, _)| *n == name).map(|(_, t)| t);
    let Some(mean) = find("mean") else {
        return Ok(Vec::new());
    };
    let mean = mean.to_kind(Kind::Double);
    let per_dim = match find("log_var") {
        Some(log_var) => {
            let log_var = log_var.to_kind(Kind::Double);
            ((mean.square() + log_var.exp() - &log_var - 1.0) * 0.5).mean_dim(
                0,
                false,
                Kind::Double,
            )
        }
        None => mean.var_dim(0, false, false),
    };
    let values = Vec::<f64>::try_from(&per_dim.to_device(Device::Cpu))?;
    let mut order: Vec<(usize, f64)> = values.into_iter().enumerate().collect();
    order.sort_by(|a, b| b.1.total_cmp(&a.1));
    let base = tch::no_grad(|| model.encode_mean(&run.test.head(1)))?; // [1, d]
    let sweep = Tensor::linspace(-2.0, 2.0, TRAVERSAL_STEPS, (base.kind(), base.device()));
    let rows: Vec<Tensor> = order
        .iter()
        .map(|&(j, _)| {
            let codes = base.repeat([TRAVERSAL_STEPS, 1]);
            codes.narrow(1, j as i64, 1).copy_(&sweep.unsqueeze(1));
            codes
        })
        .collect();
    let codes = Tensor::cat(&rows, 0);
    let [c, h, w] = run.image_shape();
    let images = tch::no_grad(|| model.decode_mean(&codes))?.view([-1, c, h, w]);
    save_image_grid(
        &images,
        TRAVERSAL_STEPS as usize,
        &run.run_dir.file("traversals.png"),
    )?;
    Ok(order)
}
