//! `model.kind = "vae"`: a VAE (genae-zoo's [`Vae`]) trained with Adam on the negative ELBO
//! (β, free bits, KL warm-up), the IWAE bound or the denoising bound.

use genae_estimators::factorised::{AggregateEstimator, CapacitySchedule};
use genae_estimators::{active_units, dvae_bound, elbo, KlWarmup, Objective};
use genae_zoo::{GenerativeAutoencoder, Vae};
use tch::{nn, Tensor};

use super::{Estimate, Evaluation, FinalResults, RunContext, State, Step, Trainable};
use crate::config::{LikelihoodEval, NetworkSpec};
use crate::data::mean_over_batches;
use crate::error::LabError;
use crate::eval::likelihood::{encoder_log_likelihood, exact_evaluation};
use crate::metrics::{evaluation_means, Record, StepTerms};
use crate::Adam;

/// The VAE, its store and its optimiser.
pub(super) struct VaeKind {
    store: nn::VarStore,
    vae: Vae,
    adam: Adam,
    objective: Objective,
    warmup: KlWarmup,
    capacity: Option<CapacitySchedule>,
}

impl VaeKind {
    pub(super) fn new(
        networks: &NetworkSpec,
        mut objective: Objective,
        kl_warmup_steps: u64,
        capacity: Option<CapacitySchedule>,
        run: &RunContext,
    ) -> Result<Self, LabError> {
        if let Objective::BetaTc {
            estimator: AggregateEstimator::Stratified { dataset_size },
            ..
        } = &mut objective
        {
            *dataset_size = run.data.train.len() as i64;
        }
        let store = nn::VarStore::new(run.device);
        let vae = Vae::new(&store.root(), &networks.vae_config(run.image_shape()))?;
        let adam = Adam::new(&store, run.config.file().train.learning_rate);
        Ok(Self {
            store,
            vae,
            adam,
            objective,
            warmup: KlWarmup {
                steps: kl_warmup_steps,
            },
            capacity,
        })
    }
}

impl Trainable for VaeKind {
    fn describe(&self) -> String {
        let objective = match &self.objective {
            Objective::Elbo { beta, .. } if *beta == 1.0 => "ELBO".to_string(),
            Objective::Elbo { beta, .. } => format!("β-ELBO (β = {beta})"),
            Objective::Iwae { k } => format!("IWAE bound (k = {k})"),
            Objective::Dvae { .. } => "denoising bound".to_string(),
            Objective::AnnealedCapacity { gamma, .. } => {
                let c = self.capacity.map_or(0.0, |c| c.max);
                format!("annealed capacity (γ = {gamma}, C → {c} nats)")
            }
            Objective::BetaTc { beta, .. } => format!("β-TC-VAE (β = {beta})"),
            Objective::Dip {
                variant,
                lambda_off_diagonal,
                lambda_diagonal,
            } => format!(
                "DIP-VAE-{} (λ_od = {lambda_off_diagonal}, λ_d = {lambda_diagonal})",
                match variant {
                    genae_estimators::factorised::DipVariant::I => "I",
                    genae_estimators::factorised::DipVariant::Ii => "II",
                }
            ),
        };
        format!("vae ({objective})")
    }

    fn state(&mut self) -> State<'_> {
        State::single(&self.store, &mut self.adam)
    }

    fn train_step(&mut self, step: &Step) -> Result<StepTerms, LabError> {
        if let (Objective::AnnealedCapacity { capacity, .. }, Some(schedule)) =
            (&mut self.objective, &self.capacity)
        {
            *capacity = schedule.capacity(step.step - 1);
        }
        let out =
            self.objective
                .loss(&self.vae, &step.batch.x, self.warmup.scale(step.step - 1))?;
        step.guard(
            "loss",
            &out.loss,
            &[
                ("reconstruction term", &out.terms.reconstruction),
                ("KL term", &out.terms.kl),
            ],
        )?;
        self.adam.backward_step(&out.loss)?;
        let terms = StepTerms::new(&out.loss, step.batch.len())
            .per_example("elbo", &out.terms.elbo)
            .per_example("reconstruction", &out.terms.reconstruction)
            .per_example("kl", &out.terms.kl);
        Ok(out.extra.iter().fold(terms, |terms, (name, value)| {
            if value.dim() == 0 {
                terms.batch_mean(name, value)
            } else {
                terms.per_example(name, value)
            }
        }))
    }

    fn evaluate(&self, on: &Evaluation) -> Result<Record, LabError> {
        let (split, run) = (on.split, on.run);
        evaluation_means(split, run.eval_batch(), |x| {
            let terms = elbo(&self.vae, x)?;
            Ok(vec![
                ("elbo", terms.elbo),
                ("reconstruction", terms.reconstruction),
                ("kl", terms.kl),
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
        vae_final_evaluations(&self.vae, run, out)?;
        if let Objective::Dvae {
            corruption,
            copies,
            samples,
        } = &self.objective
        {
            let bound = mean_over_batches(&run.test.x, run.eval_batch(), |x| {
                Ok(dvae_bound(&self.vae, x, corruption, *copies, *samples)?)
            })?;
            out.test.insert("dvae_bound", bound);
        }
        Ok(())
    }
}

/// AIS of `log p(x)` from the VAE's encoder (genae-samplers), for the VAE-based kinds.
pub(super) fn vae_ais(
    vae: &Vae,
    x: &Tensor,
    config: &genae_samplers::AisConfig,
) -> Result<Option<genae_samplers::AisOutput>, LabError> {
    let out =
        genae_samplers::ais_log_likelihood(vae, x, genae_samplers::AisInitial::Encoder, config)?;
    Ok(Some(out))
}

/// `genae embed`'s `mean` and `log_var` of a VAE's Gaussian posterior.
pub(super) fn gaussian_embedding(
    vae: &Vae,
    x: &Tensor,
) -> Result<Vec<(&'static str, Tensor)>, LabError> {
    let q = tch::no_grad(|| vae.encoder.encode(x))?;
    Ok(vec![
        ("mean", q.mean().shallow_clone()),
        ("log_var", q.log_var().shallow_clone()),
    ])
}

/// The final evaluations every VAE-based kind shares: active units and, for small latent
/// spaces, the exact `log p(x)` and aggregate KL.
pub(super) fn vae_final_evaluations(
    vae: &Vae,
    run: &RunContext,
    out: &mut FinalResults,
) -> Result<(), LabError> {
    let exact = exact_evaluation(&vae.decoder, vae, run)?;
    let au = active_units(vae, &run.test.x, run.eval_batch(), 0.01)?;
    out.test.insert("active_units", au.count);
    out.notes
        .push(format!("{} active units (Cov > 0.01)", au.count));
    if let Some(e) = exact {
        out.test.insert("exact_log_likelihood", e.log_likelihood);
        out.test.insert("aggregate_kl", e.aggregate_kl);
    }
    Ok(())
}
