//! `model.kind = "wae"`: the Wasserstein autoencoder with the MMD penalty (WAE-MMD,
//! Tolstikhin et al., 2018). Each step minimises `−mean log p(x|z) + λ · MMD²(codes, prior
//! draws)` over the batch with one Adam, `z` the encoder's code (deterministic or a
//! reparameterised Gaussian draw) and the prior `N(0, I)`.

use genae_estimators::{mmd_penalty, MmdKernel};
use genae_zoo::{AaeEncoderKind, GenerativeAutoencoder, GenerativeDecoder, Wae};
use serde::Serialize;
use tch::{nn, Kind, Tensor};

use super::{Estimate, Evaluation, FinalResults, RunContext, State, Step, Trainable};
use crate::config::{LikelihoodEval, NetworkSpec, WaeKernel, WaeSection};
use crate::error::LabError;
use crate::eval::likelihood::encoder_log_likelihood;
use crate::eval::prior::{prior_fit_points, prior_mmd, PriorMmd};
use crate::metrics::{evaluation_means, Record, StepTerms};
use crate::Adam;

/// `summary.json`'s `wae` section.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WaeSummary {
    /// The weight λ of the MMD term.
    pub lambda: f64,
    /// The MMD² between test codes and prior draws.
    #[serde(flatten)]
    pub fit: PriorMmd,
}

/// The WAE, its store and optimiser.
pub(super) struct WaeKind {
    store: nn::VarStore,
    wae: Wae,
    adam: Adam,
    section: WaeSection,
    kernel: MmdKernel,
}

impl WaeKind {
    pub(super) fn new(
        networks: &NetworkSpec,
        section: &WaeSection,
        run: &RunContext,
    ) -> Result<Self, LabError> {
        let store = nn::VarStore::new(run.device);
        let wae = Wae::new(
            &store.root(),
            &networks.vae_config(run.image_shape()),
            section.encoder,
        )?;
        let adam = Adam::new(&store, run.config.file().train.learning_rate);
        let kernel = match section.kernel {
            WaeKernel::InverseMultiquadratic => MmdKernel::InverseMultiquadratic {
                prior_variance: 1.0,
            },
            WaeKernel::Gaussian => MmdKernel::Gaussian {
                prior_variance: 1.0,
            },
        };
        Ok(Self {
            store,
            wae,
            adam,
            section: section.clone(),
            kernel,
        })
    }

    /// `(log p(x|z) [N], MMD² scalar)` of a batch, with gradients.
    fn terms(&self, x: &Tensor) -> Result<(Tensor, Tensor), LabError> {
        let z = self.wae.code(x)?;
        let log_lik = self.wae.reconstruction_log_likelihood(x, &z)?;
        let prior = self.wae.sample_prior(z.size()[0], z.device())?;
        let mmd = mmd_penalty(&z, &prior, self.kernel)?;
        Ok((log_lik, mmd))
    }
}

impl Trainable for WaeKind {
    fn describe(&self) -> String {
        format!(
            "wae ({} encoder, λ = {}, {:?} kernel)",
            format!("{:?}", self.section.encoder).to_lowercase(),
            self.section.lambda,
            self.section.kernel
        )
    }

    fn state(&mut self) -> State<'_> {
        State::single(&self.store, &mut self.adam)
    }

    fn train_step(&mut self, step: &Step) -> Result<StepTerms, LabError> {
        let (log_lik, mmd) = self.terms(&step.batch.x)?;
        let loss = -log_lik.mean(Kind::Float) + &mmd * self.section.lambda;
        step.guard(
            "loss",
            &loss,
            &[("reconstruction term", &log_lik), ("MMD term", &mmd)],
        )?;
        self.adam.backward_step(&loss)?;
        Ok(StepTerms::new(&loss, step.batch.len())
            .per_example("reconstruction", &log_lik)
            .batch_mean("mmd", &mmd))
    }

    fn evaluate(&self, on: &Evaluation) -> Result<Record, LabError> {
        let (split, run) = (on.split, on.run);
        let d = run.input_dim() as f64;
        evaluation_means(split, run.eval_batch(), |x| {
            let (log_lik, mmd) = self.terms(x)?;
            let x_hat = self.wae.decode_mean(&self.wae.encode_mean(x)?)?;
            let mse = (x_hat - x).square().sum_dim_intlist(1, false, Kind::Double) / d;
            let batch_mmd = mmd.to_kind(Kind::Double) * x.size()[0] as f64;
            Ok(vec![
                ("reconstruction", log_lik),
                ("mmd", batch_mmd),
                ("reconstruction_mse", mse),
            ])
        })
    }

    fn log_likelihood(&self, run: &RunContext, eval: LikelihoodEval) -> Estimate {
        if self.section.encoder != AaeEncoderKind::Gaussian {
            return Ok(None);
        }
        Ok(Some(encoder_log_likelihood(&self.wae, run, eval)?))
    }

    fn embed(&self, x: &Tensor) -> Result<Vec<(&'static str, Tensor)>, LabError> {
        Ok(match &self.wae.encoder {
            genae_zoo::AaeEncoder::Gaussian(encoder) => {
                let q = tch::no_grad(|| encoder.encode(x))?;
                vec![
                    ("mean", q.mean().shallow_clone()),
                    ("log_var", q.log_var().shallow_clone()),
                ]
            }
            genae_zoo::AaeEncoder::Deterministic(_) => {
                vec![("mean", tch::no_grad(|| self.wae.encoder.code_mean(x))?)]
            }
        })
    }

    fn autoencoder(&self) -> Option<&dyn GenerativeAutoencoder> {
        Some(&self.wae)
    }

    fn finish(&mut self, run: &RunContext, out: &mut FinalResults) -> Result<(), LabError> {
        let Some(n) = prior_fit_points(run) else {
            return Ok(());
        };
        let draws = self.wae.sample_prior(n, run.device)?;
        let fit = prior_mmd(&self.wae, &draws, run)?;
        out.prior_fit(&fit);
        out.section(
            "wae",
            &WaeSummary {
                lambda: self.section.lambda,
                fit,
            },
        );
        Ok(())
    }
}
