//! `model.kind = "factor_vae"`: FactorVAE (Kim & Mnih, 2018). Every step takes two updates on
//! one batch: (1) the VAE (encoder and decoder, Adam at `train.learning_rate`) on the negative
//! ELBO plus `γ` times the total correlation the discriminator reads off the batch's codes;
//! (2) the discriminator (its own Adam) on codes of the joint against the same codes with each
//! dimension permuted across the batch (genae-estimators' `factorised` functions).

use genae_estimators::elbo;
use genae_estimators::factorised::{
    density_ratio_total_correlation, permute_dims, tc_discriminator_loss,
};
use genae_zoo::{Activation, GenerativeAutoencoder, LatentVariableModel, Mlp, Vae};
use tch::nn::Module;
use tch::{nn, Kind, Tensor};

use super::vae::{gaussian_embedding, vae_ais, vae_final_evaluations};
use super::{Estimate, Evaluation, FinalResults, RunContext, State, Step, Trainable};
use crate::checkpoint::StoreFile;
use crate::config::{FactorVaeSection, LikelihoodEval, NetworkSpec};
use crate::error::LabError;
use crate::eval::likelihood::encoder_log_likelihood;
use crate::metrics::{evaluation_means, Record, StepTerms};
use crate::Adam;

/// The VAE and the discriminator, their stores and optimisers.
pub(super) struct FactorVaeKind {
    vae_store: nn::VarStore,
    discriminator_store: nn::VarStore,
    vae: Vae,
    discriminator: Mlp,
    adam: Adam,
    discriminator_adam: Adam,
    gamma: f64,
}

impl FactorVaeKind {
    pub(super) fn new(
        networks: &NetworkSpec,
        section: &FactorVaeSection,
        run: &RunContext,
    ) -> Result<Self, LabError> {
        let vae_store = nn::VarStore::new(run.device);
        let discriminator_store = nn::VarStore::new(run.device);
        let vae = Vae::new(&vae_store.root(), &networks.vae_config(run.image_shape()))?;
        let mut widths = section.discriminator_hidden.clone();
        widths.push(1);
        let discriminator = Mlp::new(
            &discriminator_store.root(),
            networks.latent_dim,
            &widths,
            Activation::LeakyRelu,
            false,
        )?;
        let adam = Adam::new(&vae_store, run.config.file().train.learning_rate);
        let discriminator_adam =
            Adam::new(&discriminator_store, section.discriminator_learning_rate)
                .with_beta1(section.discriminator_beta1)
                .with_beta2(section.discriminator_beta2);
        Ok(Self {
            vae_store,
            discriminator_store,
            vae,
            discriminator,
            adam,
            discriminator_adam,
            gamma: section.gamma,
        })
    }

    /// The discriminator's logits `[M]` at codes `z` (`[M, d]`).
    fn logits(&self, z: &Tensor) -> Tensor {
        self.discriminator.forward(z).squeeze_dim(-1)
    }
}

impl Trainable for FactorVaeKind {
    fn describe(&self) -> String {
        format!("factor_vae (ELBO + γ·TC, γ = {})", self.gamma)
    }

    fn state(&mut self) -> State<'_> {
        State {
            files: vec![StoreFile {
                file: "model.safetensors",
                stores: vec![
                    ("vae", &self.vae_store),
                    ("discriminator", &self.discriminator_store),
                ],
            }],
            optimizers: vec![
                ("adam", &mut self.adam),
                ("discriminator", &mut self.discriminator_adam),
            ],
        }
    }

    fn train_step(&mut self, step: &Step) -> Result<StepTerms, LabError> {
        let x = &step.batch.x;
        // (1) The VAE: −ELBO + γ·TC, the TC read by the discriminator at the sampled codes.
        let posterior = self.vae.encoder.encode(x)?;
        let z = posterior.rsample();
        let reconstruction = self.vae.log_likelihood(x, &z)?;
        let kl = posterior.kl(&self.vae.prior(posterior.mean())?)?;
        let tc = density_ratio_total_correlation(&self.logits(&z))?;
        let vae_loss =
            (&kl - &reconstruction).mean(Kind::Float) + tc.mean(Kind::Float) * self.gamma;
        step.guard(
            "VAE loss",
            &vae_loss,
            &[
                ("reconstruction term", &reconstruction),
                ("KL term", &kl),
                ("total correlation", &tc),
            ],
        )?;
        self.adam.zero_grad();
        self.discriminator_adam.zero_grad();
        vae_loss.backward();
        self.adam.step()?;
        // (2) The discriminator: the batch's codes (detached) against their permutation.
        let z = z.detach();
        let d_joint = self.logits(&z);
        let d_permuted = self.logits(&permute_dims(&z)?);
        let d_loss = tc_discriminator_loss(&d_joint, &d_permuted)?;
        step.update(&mut self.discriminator_adam, "discriminator loss", &d_loss)?;
        let accuracy = (d_joint.gt(0.0).to_kind(Kind::Float).mean(Kind::Float)
            + d_permuted.le(0.0).to_kind(Kind::Float).mean(Kind::Float))
            * 0.5;
        Ok(StepTerms::new(&vae_loss, step.batch.len())
            .per_example("elbo", &(&reconstruction - &kl))
            .per_example("reconstruction", &reconstruction)
            .per_example("kl", &kl)
            .per_example("total_correlation", &tc)
            .batch_mean("discriminator", &d_loss)
            .batch_mean("discriminator_accuracy", &accuracy))
    }

    fn evaluate(&self, on: &Evaluation) -> Result<Record, LabError> {
        let (split, run) = (on.split, on.run);
        evaluation_means(split, run.eval_batch(), |x| {
            let terms = elbo(&self.vae, x)?;
            let q = self.vae.encoder.encode(x)?;
            let tc = density_ratio_total_correlation(&self.logits(&q.sample()))?;
            Ok(vec![
                ("elbo", terms.elbo),
                ("reconstruction", terms.reconstruction),
                ("kl", terms.kl),
                ("total_correlation", tc),
            ])
        })
    }

    fn log_likelihood(&self, run: &RunContext, eval: LikelihoodEval) -> Estimate {
        Ok(Some(encoder_log_likelihood(&self.vae, run, eval)?))
    }

    fn ais_log_likelihood(
        &self,
        x: &Tensor,
        config: &genae_samplers::AisConfig,
    ) -> Result<Option<genae_samplers::AisOutput>, LabError> {
        vae_ais(&self.vae, x, config)
    }

    fn embed(&self, x: &Tensor) -> Result<Vec<(&'static str, Tensor)>, LabError> {
        gaussian_embedding(&self.vae, x)
    }

    fn autoencoder(&self) -> Option<&dyn GenerativeAutoencoder> {
        Some(&self.vae)
    }

    fn finish(&mut self, run: &RunContext, out: &mut FinalResults) -> Result<(), LabError> {
        vae_final_evaluations(&self.vae, run, out)
    }
}
