//! `model.kind = "avb"`: Adversarial Variational Bayes (Mescheder et al., 2017). Every batch
//! takes `avb.dual_steps` discriminator updates (fresh codes and prior draws each), then
//! `avb.primal_steps` encoder-and-decoder updates on the ELBO estimate with the discriminator's
//! variables frozen. Each player has its own store and Adam.

use std::time::Instant;

use genae_samplers::{ais_log_likelihood, AisConfig, AisInitial};
use genae_tensor::DiagGaussian;
use genae_zoo::{
    Avb, AvbConfig, Decoder, GenerativeAutoencoder, LatentSpace, LatentVariableModel,
    NoiseInjection, ZooError,
};
use serde::Serialize;
use tch::{Kind, Tensor};

use super::{
    Estimate, Evaluation, FinalResults, PlayerOptimizers, Players, RunContext, State, Step,
    Trainable,
};
use crate::config::{AvbSection, LikelihoodEval, NetworkSpec};
use crate::error::LabError;
use crate::eval::likelihood::{exact_evaluation, proposal_log_likelihood};
use crate::metrics::{evaluation_means, Record, StepTerms};

/// `summary.json`'s `avb` section.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AvbSummary {
    /// Whether adaptive contrast was on.
    pub adaptive_contrast: bool,
    /// How the noise entered the encoder.
    pub noise_injection: NoiseInjection,
    /// The proposal of `test.log_likelihood`.
    pub log_likelihood_proposal: String,
    /// The AIS estimate of `log p(x)` (when `avb.ais_steps > 0`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ais_log_likelihood: Option<AvbAisSummary>,
}

/// `avb.ais_log_likelihood` in `summary.json`: annealed importance sampling from the
/// moment-matched Gaussian of `q(z|x)` to the posterior, genae-samplers' defaults otherwise
/// (16 chains, one HMC transition of 10 leapfrog steps per step, pilot-tuned step sizes).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AvbAisSummary {
    /// Annealing steps.
    pub steps: usize,
    /// Chains per image.
    pub chains: i64,
    /// Test images.
    pub n_images: usize,
    /// Mean estimate of `log p(x)`, nats per image (a stochastic lower bound).
    pub value: f64,
    /// Mean effective sample size of the chains' weights.
    pub mean_ess: f64,
    /// Seconds it took.
    pub seconds: f64,
}

/// AVB's generative half (`N(0, I)` prior and decoder) as a [`LatentVariableModel`], for
/// estimators that take the proposal separately: its `encode` is an error, since the implicit
/// encoder has no density.
struct GenerativeHalf<'a>(&'a Decoder);

impl LatentSpace for GenerativeHalf<'_> {
    fn latent_dim(&self) -> i64 {
        self.0.latent_dim()
    }
}

impl LatentVariableModel for GenerativeHalf<'_> {
    fn encode(&self, _x: &Tensor) -> genae_zoo::Result<DiagGaussian> {
        Err(ZooError::InvalidConfig {
            field: "model.kind",
            reason: "AVB's implicit encoder has no density: pass a proposal".into(),
        })
    }

    fn log_likelihood(&self, x: &Tensor, z: &Tensor) -> genae_zoo::Result<Tensor> {
        self.0.log_likelihood(x, z)
    }
}

/// The AVB model, its players' stores and three optimisers.
pub(super) struct AvbKind {
    players: Players,
    avb: Avb,
    section: AvbSection,
    optimizers: PlayerOptimizers,
}

impl AvbKind {
    pub(super) fn new(
        networks: &NetworkSpec,
        section: &AvbSection,
        run: &RunContext,
    ) -> Result<Self, LabError> {
        let players = Players::new(run.device);
        let [encoder, decoder, discriminator] = players.roots();
        let config = AvbConfig {
            networks: networks.vae_config(run.image_shape()),
            noise_dim: section.noise_dim,
            noise_injection: section.noise_injection,
            discriminator_hidden: section.discriminator_hidden.clone(),
            adaptive_contrast: section.adaptive_contrast,
            contrast_samples: section.contrast_samples,
        };
        let avb = Avb::new(&encoder, &decoder, &discriminator, &config)?;
        let lr = run.config.file().train.learning_rate;
        Ok(Self {
            optimizers: PlayerOptimizers::new(
                &players,
                lr,
                section.discriminator_learning_rate,
                0.9,
            ),
            players,
            avb,
            section: section.clone(),
        })
    }

    /// AIS from the moment-matched Gaussian on the first `avb.ais_images` test images.
    fn estimate_ais(&self, run: &RunContext) -> Result<AvbAisSummary, LabError> {
        let started = Instant::now();
        let n = (self.section.ais_images as i64).clamp(1, run.test.n.max(1));
        let x = run.test.head(n);
        let config = AisConfig {
            steps: self.section.ais_steps,
            ..Default::default()
        };
        let out = self.ais(&x, &config)?;
        let mean = |t: &Tensor| t.to_kind(Kind::Double).mean(Kind::Double).double_value(&[]);
        Ok(AvbAisSummary {
            steps: self.section.ais_steps,
            chains: config.chains,
            n_images: n as usize,
            value: mean(&out.log_normalizer),
            mean_ess: mean(&out.ess),
            seconds: started.elapsed().as_secs_f64(),
        })
    }

    /// AIS on `x` from the moment-matched Gaussian of `q(z|x)`.
    fn ais(&self, x: &Tensor, config: &AisConfig) -> Result<genae_samplers::AisOutput, LabError> {
        let start = self.avb.posterior_moments(x)?.gaussian()?;
        Ok(ais_log_likelihood(
            &GenerativeHalf(&self.avb.decoder),
            x,
            AisInitial::Gaussian(&start),
            config,
        )?)
    }
}

impl Trainable for AvbKind {
    fn describe(&self) -> String {
        let a = &self.section;
        format!(
            "avb ({} noise {}, {}{} dual : {} primal)",
            a.noise_dim,
            match a.noise_injection {
                NoiseInjection::Input => "at the input",
                NoiseInjection::InputAndHidden => "at the input and hidden layers",
            },
            if a.adaptive_contrast {
                "adaptive contrast, "
            } else {
                ""
            },
            a.dual_steps,
            a.primal_steps
        )
    }

    fn state(&mut self) -> State<'_> {
        self.optimizers.state(&self.players, Vec::new())
    }

    fn train_step(&mut self, step: &Step) -> Result<StepTerms, LabError> {
        let x = &step.batch.x;
        // Dual: the discriminator on fresh codes (no gradient to the encoder).
        let mut dual_loss = Tensor::zeros([], (Kind::Double, x.device()));
        let mut dual_accuracy = Tensor::zeros([], (Kind::Double, x.device()));
        for _ in 0..self.section.dual_steps {
            let codes = tch::no_grad(|| self.avb.draw_codes(x))?;
            let d_loss = self.avb.discriminator_loss(x, &codes)?;
            step.update(
                &mut self.optimizers.discriminator,
                "discriminator loss",
                &d_loss.loss,
            )?;
            dual_loss += d_loss.loss.detach().to_kind(Kind::Double);
            dual_accuracy += d_loss.accuracy.to_kind(Kind::Double);
        }
        // Primal: encoder and decoder with T frozen; the first step's terms are reported.
        self.players.discriminator.freeze();
        let primal = (|| {
            let mut first = None;
            for _ in 0..self.section.primal_steps {
                let codes = self.avb.draw_codes(x)?;
                let out = self.avb.primal(x, &codes)?;
                self.optimizers
                    .update_autoencoder(step, "ELBO estimate", &out.loss)?;
                first.get_or_insert(out);
            }
            Ok::<_, LabError>(first.expect("avb.primal_steps ≥ 1"))
        })();
        self.players.discriminator.unfreeze();
        let primal = primal?;
        let mut terms = StepTerms::new(&primal.loss, step.batch.len())
            .per_example("elbo", &primal.elbo)
            .per_example("reconstruction", &primal.reconstruction)
            .per_example("kl", &primal.kl);
        let dual = self.section.dual_steps as f64;
        if dual > 0.0 {
            terms = terms
                .batch_mean("discriminator", &(dual_loss / dual))
                .batch_mean("discriminator_accuracy", &(dual_accuracy / dual));
        }
        Ok(terms)
    }

    fn evaluate(&self, on: &Evaluation) -> Result<Record, LabError> {
        let (split, run) = (on.split, on.run);
        evaluation_means(split, run.eval_batch(), |x| {
            let out = self.avb.primal(x, &self.avb.draw_codes(x)?)?;
            Ok(vec![
                ("elbo", out.elbo),
                ("reconstruction", out.reconstruction),
                ("kl", out.kl),
            ])
        })
    }

    fn log_likelihood(&self, run: &RunContext, eval: LikelihoodEval) -> Estimate {
        let ll = proposal_log_likelihood(&GenerativeHalf(&self.avb.decoder), run, eval, |x| {
            let moments = self.avb.posterior_moments(x)?;
            Ok((moments.mean, moments.std))
        })?;
        Ok(Some(ll))
    }

    fn likelihood_proposal(&self) -> &'static str {
        "proposal: the moment-matched Gaussian of q(z|x)"
    }

    fn ais_log_likelihood(
        &self,
        x: &Tensor,
        config: &AisConfig,
    ) -> Result<Option<genae_samplers::AisOutput>, LabError> {
        Ok(Some(self.ais(x, config)?))
    }

    fn autoencoder(&self) -> Option<&dyn GenerativeAutoencoder> {
        Some(&self.avb)
    }

    fn finish(&mut self, run: &RunContext, out: &mut FinalResults) -> Result<(), LabError> {
        let exact = exact_evaluation(&self.avb.decoder, &self.avb, run)?;
        let ais = if self.section.ais_steps > 0 {
            let ais = self.estimate_ais(run)?;
            out.notes.push(format!(
                "AIS ({} steps, {} chains, moment-matched Gaussian start) = {:.4} nats on {} test images (ESS {:.1}, {:.1} s)",
                ais.steps, ais.chains, ais.value, ais.n_images, ais.mean_ess, ais.seconds
            ));
            Some(ais)
        } else {
            None
        };
        if let Some(e) = exact {
            out.notes.push(format!(
                "exact log p(x) by quadrature = {:.4} nats; aggregate KL(q(z) ‖ p(z)) ≈ {:.4}",
                e.log_likelihood, e.aggregate_kl
            ));
            out.test.insert("exact_log_likelihood", e.log_likelihood);
            out.test.insert("aggregate_kl", e.aggregate_kl);
        }
        out.section(
            "avb",
            &AvbSummary {
                adaptive_contrast: self.section.adaptive_contrast,
                noise_injection: self.section.noise_injection,
                log_likelihood_proposal: format!(
                    "moment-matched Gaussian of q(z|x) from {} draws",
                    self.section.contrast_samples
                ),
                ais_log_likelihood: ais,
            },
        );
        Ok(())
    }
}
