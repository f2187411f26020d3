//! `model.kind = "aae"`: the adversarial autoencoder of Makhzani et al. (2016). Every step
//! takes its three updates on one batch, each player with its own Adam: (1) reconstruction,
//! encoder and decoder on `−log p(x|f(x))`; (2) the discriminator, prior samples as real and
//! codes as fake; (3) the generator, the encoder on `−log D(f(x))`.

use genae_zoo::{Aae, AaeConfig, GenerativeAutoencoder, GenerativeDecoder};
use serde::Serialize;
use tch::{Kind, Tensor};

use super::{
    Evaluation, FinalResults, PlayerOptimizers, Players, RunContext, State, Step, Trainable,
};
use crate::config::{AaeSection, ConfigError, NetworkSpec};
use crate::error::LabError;
use crate::eval::prior::{prior_fit_points, prior_mmd, PriorMmd};
use crate::metrics::{evaluation_means, Record, StepTerms};
use crate::Adam;

/// `summary.json`'s `aae` section: how close the codes came to the prior.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AaeSummary {
    /// The prior's config name.
    pub prior: String,
    /// The MMD² between test codes and prior draws.
    #[serde(flatten)]
    pub fit: PriorMmd,
    /// Label-conditioned only: how the test codes sit on their classes' components.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub components: Option<ComponentFit>,
}

/// Where a label-conditioned AAE put each class: the test codes (encoder means) nearest their
/// own class's mixture component.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ComponentFit {
    /// Fraction of the test codes whose nearest component is their label's.
    pub own_component_fraction: f64,
    /// The same fraction per class, in class order.
    pub own_component_fraction_by_class: Vec<f64>,
    /// Test codes counted.
    pub points: i64,
}

/// The fraction of `codes` `[n, d]` nearest their own `labels`' component of `prior`, overall
/// and per class (`classes` of them; a class without codes gets `NaN`).
pub(crate) fn component_fit(
    prior: &genae_zoo::LatentPrior,
    codes: &Tensor,
    labels: &Tensor,
    classes: i64,
) -> Result<ComponentFit, LabError> {
    let labels = labels.to_kind(Kind::Int64);
    let hit = prior
        .nearest_component(codes)?
        .eq_tensor(&labels)
        .to_kind(Kind::Double);
    let by_class = (0..classes)
        .map(|k| {
            let mask = labels.eq(k).to_kind(Kind::Double);
            let n = mask.sum(Kind::Double).double_value(&[]);
            (&hit * mask).sum(Kind::Double).double_value(&[]) / n
        })
        .collect();
    Ok(ComponentFit {
        own_component_fraction: hit.mean(Kind::Double).double_value(&[]),
        own_component_fraction_by_class: by_class,
        points: codes.size()[0],
    })
}

/// The AAE, its three players' stores and four optimisers.
pub(super) struct AaeKind {
    players: Players,
    aae: Aae,
    section: AaeSection,
    optimizers: PlayerOptimizers,
    generate: Adam,
}

impl AaeKind {
    pub(super) fn new(
        networks: &NetworkSpec,
        section: &AaeSection,
        run: &RunContext,
    ) -> Result<Self, LabError> {
        let n_classes = run.data.class_names.len() as i64;
        if section.condition_on_labels && n_classes == 0 {
            return Err(ConfigError::Invalid {
                field: "aae.condition_on_labels",
                reason: format!(
                    "data set `{}` has no class names to condition on",
                    run.data.name
                ),
            }
            .into());
        }
        let players = Players::new(run.device);
        let [encoder, decoder, discriminator] = players.roots();
        let config = AaeConfig {
            networks: networks.vae_config(run.image_shape()),
            encoder: section.encoder,
            discriminator_hidden: section.discriminator_hidden.clone(),
            prior: section.prior.clone(),
            label_classes: if section.condition_on_labels {
                n_classes
            } else {
                0
            },
            discriminator_r1: section.discriminator_r1,
            discriminator_gp: section.discriminator_gp,
            label_smoothing: section.label_smoothing,
        };
        let aae = Aae::new(&encoder, &decoder, &discriminator, &config)?;
        let lr = run.config.file().train.learning_rate;
        let beta1 = section.adversarial_beta1;
        Ok(Self {
            optimizers: PlayerOptimizers::new(
                &players,
                lr,
                section.discriminator_learning_rate,
                beta1,
            ),
            generate: Adam::new(&players.encoder, section.generator_learning_rate)
                .with_beta1(beta1),
            players,
            aae,
            section: section.clone(),
        })
    }

    fn labels<'a>(&self, labels: &'a Tensor) -> Option<&'a Tensor> {
        self.section.condition_on_labels.then_some(labels)
    }
}

impl Trainable for AaeKind {
    fn describe(&self) -> String {
        format!(
            "aae ({} encoder, {} prior{})",
            format!("{:?}", self.section.encoder).to_lowercase(),
            self.section.prior.name(),
            if self.section.condition_on_labels {
                ", label-conditioned"
            } else {
                ""
            }
        )
    }

    fn state(&mut self) -> State<'_> {
        let generator = vec![("generator", &mut self.generate)];
        self.optimizers.state(&self.players, generator)
    }

    fn train_step(&mut self, step: &Step) -> Result<StepTerms, LabError> {
        let x = &step.batch.x;
        let labels = self.labels(&step.batch.labels);
        // (1) Reconstruction: encoder and decoder.
        let code = self.aae.code(x)?;
        let log_lik = self.aae.reconstruction_log_likelihood(x, &code)?;
        let reconstruction_loss = -log_lik.mean(Kind::Float);
        self.optimizers
            .update_autoencoder(step, "reconstruction loss", &reconstruction_loss)?;

        // (2) Discriminator, then (3) generator, on the updated encoder's codes.
        let code = self.aae.code(x)?;
        let prior = self
            .aae
            .sample_prior_codes(step.batch.len(), labels, x.device())?;
        let d_loss = self.aae.discriminator_loss(&code, &prior, labels)?;
        step.update(
            &mut self.optimizers.discriminator,
            "discriminator loss",
            &d_loss.loss,
        )?;
        let generator_loss = self.aae.generator_loss(&code, labels)?;
        step.update(&mut self.generate, "generator loss", &generator_loss)?;
        let mut terms = StepTerms::new(&reconstruction_loss, step.batch.len())
            .per_example("reconstruction", &log_lik)
            .batch_mean("discriminator", &d_loss.loss)
            .batch_mean("generator", &generator_loss)
            .batch_mean("discriminator_accuracy", &d_loss.accuracy);
        if let Some(sq) = &d_loss.prior_gradient_sq {
            terms = terms.batch_mean("discriminator_gradient_sq", &sq.detach());
        }
        if let Some(penalty) = &d_loss.interpolate_penalty {
            terms = terms.batch_mean("discriminator_gradient_penalty", &penalty.detach());
        }
        Ok(terms)
    }

    fn evaluate(&self, on: &Evaluation) -> Result<Record, LabError> {
        let (split, run) = (on.split, on.run);
        let d = run.input_dim() as f64;
        evaluation_means(split, run.eval_batch(), |x| {
            let code = self.aae.code_mean(x)?;
            let log_lik = self.aae.reconstruction_log_likelihood(x, &code)?;
            let x_hat = self.aae.decode_mean(&code)?;
            let mse = (x_hat - x).square().sum_dim_intlist(1, false, Kind::Double) / d;
            Ok(vec![
                ("reconstruction", log_lik),
                ("reconstruction_mse", mse),
            ])
        })
    }

    fn autoencoder(&self) -> Option<&dyn GenerativeAutoencoder> {
        Some(&self.aae)
    }

    fn prior_backdrop(&self, run: &RunContext, n: i64) -> Result<Option<Tensor>, LabError> {
        Ok(Some(self.prior_draws(run, n)?))
    }

    fn finish(&mut self, run: &RunContext, out: &mut FinalResults) -> Result<(), LabError> {
        // How far the test codes are from the prior (labelled draws when conditioned).
        let Some(n) = prior_fit_points(run) else {
            return Ok(());
        };
        let draws = self.prior_draws(run, n)?;
        let fit = prior_mmd(&self.aae, &draws, run)?;
        out.prior_fit(&fit);
        let components = if self.section.condition_on_labels {
            let codes = tch::no_grad(|| self.aae.code_mean(&run.test.head(n)))?;
            let labels = run.test.labels.narrow(0, 0, n);
            let classes = run.data.class_names.len() as i64;
            let fit = component_fit(&self.section.prior, &codes, &labels, classes)?;
            out.notes.push(format!(
                "{:.1}% of {} test codes nearest their own class's component",
                100.0 * fit.own_component_fraction,
                fit.points
            ));
            Some(fit)
        } else {
            None
        };
        out.section(
            "aae",
            &AaeSummary {
                prior: self.section.prior.name().to_string(),
                fit,
                components,
            },
        );
        Ok(())
    }
}

impl AaeKind {
    /// `n` prior draws, by the labels of the first `n` test images when label-conditioned.
    fn prior_draws(&self, run: &RunContext, n: i64) -> Result<Tensor, LabError> {
        let labels = self
            .section
            .condition_on_labels
            .then(|| run.test.labels.narrow(0, 0, n));
        Ok(self
            .aae
            .sample_prior_codes(n, labels.as_ref(), run.device)?)
    }
}
