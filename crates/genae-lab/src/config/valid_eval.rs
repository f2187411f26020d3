//! Validation of `[eval]`: the keys every kind reads, the likelihood keys of the kinds that
//! have the estimates, and `[eval.disentanglement]`.

use genae_zoo::AaeEncoderKind;

use super::valid::{check, for_kinds, EvalSettings, LikelihoodEval, ModelSpec};
use super::{ConfigFile, ModelKind, Result, SHAPES};

impl ConfigFile {
    /// `[eval]`: the keys every kind reads, and the likelihood keys of the kinds that have
    /// the estimates.
    pub(super) fn validate_eval(&mut self, spec: &ModelSpec) -> Result<EvalSettings> {
        let kind = spec.kind();
        let latent_dim = spec.networks().map_or(0, |n| n.latent_dim);
        let has_ll = match spec {
            ModelSpec::Vae { .. } | ModelSpec::Avb { .. } | ModelSpec::FactorVae { .. } => true,
            ModelSpec::Wae { wae, .. } => wae.encoder == AaeEncoderKind::Gaussian,
            _ => false,
        };
        let has_exact = matches!(
            spec,
            ModelSpec::Vae { .. } | ModelSpec::Avb { .. } | ModelSpec::FactorVae { .. }
        );
        let disentanglement = &self.eval.disentanglement;
        if disentanglement.enabled {
            disentanglement.validate()?;
            check(
                self.data.dataset == SHAPES && self.data.path.is_none(),
                "eval.disentanglement.enabled",
                || "needs the ground-truth factors of data.dataset = \"shapes\"".into(),
            )?;
            check(
                kind != ModelKind::Vqvae,
                "eval.disentanglement.enabled",
                || "needs a continuous code; the VQ-VAE's is a grid of indices".into(),
            )?;
        }
        let e = &mut self.eval;
        let k = for_kinds(
            e.log_likelihood_k,
            has_ll,
            5000,
            Some(0),
            "eval.log_likelihood_k",
            kind,
        )?;
        let images = for_kinds(
            e.log_likelihood_images,
            has_ll,
            1000,
            None,
            "eval.log_likelihood_images",
            kind,
        )?;
        let chunk = for_kinds(
            e.log_likelihood_chunk,
            has_ll,
            1280,
            None,
            "eval.log_likelihood_chunk",
            kind,
        )?;
        let grid = for_kinds(
            e.exact_log_likelihood_grid,
            has_exact,
            0,
            Some(0),
            "eval.exact_log_likelihood_grid",
            kind,
        )?;
        let half_width = for_kinds(
            e.exact_log_likelihood_half_width,
            has_exact,
            6.0,
            None,
            "eval.exact_log_likelihood_half_width",
            kind,
        )?;
        (
            e.log_likelihood_k,
            e.log_likelihood_images,
            e.log_likelihood_chunk,
        ) = (k, images, chunk);
        (
            e.exact_log_likelihood_grid,
            e.exact_log_likelihood_half_width,
        ) = (grid, half_width);
        if let (Some(k), Some(chunk)) = (k, chunk) {
            check(k >= 0, "eval.log_likelihood_k", || {
                format!("must be ≥ 0 (0 skips the estimate), got {k}")
            })?;
            check(chunk >= 1, "eval.log_likelihood_chunk", || {
                format!("must be at least 1, got {chunk}")
            })?;
        }
        if let (Some(grid), Some(w)) = (grid, half_width) {
            check(
                grid >= 0 && (grid == 0 || latent_dim <= 3),
                "eval.exact_log_likelihood_grid",
                || {
                    format!(
                        "must be ≥ 0, and 0 unless model.latent_dim ≤ 3 (got {grid} with latent_dim {latent_dim})"
                    )
                },
            )?;
            check(
                w.is_finite() && w > 0.0,
                "eval.exact_log_likelihood_half_width",
                || format!("must be positive and finite, got {w}"),
            )?;
        }
        check(e.interpolations <= 32, "eval.interpolations", || {
            format!("must be at most 32, got {}", e.interpolations)
        })?;
        check(e.batch_size >= 1, "eval.batch_size", || {
            format!("must be at least 1, got {}", e.batch_size)
        })?;
        check((1..=1024).contains(&e.samples), "eval.samples", || {
            format!("must be in 1..=1024, got {}", e.samples)
        })?;
        let test_size = self.data.test_limit();
        let max_reconstructions = if test_size == 0 {
            256
        } else {
            test_size.min(256)
        };
        check(
            (1..=max_reconstructions).contains(&e.reconstructions),
            "eval.reconstructions",
            || {
                format!(
                    "must be in 1..={max_reconstructions}, got {}",
                    e.reconstructions
                )
            },
        )?;
        let log_likelihood = match (k, images, chunk) {
            (Some(k), Some(images), Some(chunk)) if k > 0 => {
                Some(LikelihoodEval { k, images, chunk })
            }
            _ => None,
        };
        let exact = match (grid, half_width) {
            (Some(grid), Some(w)) if grid > 0 => Some((grid, w)),
            _ => None,
        };
        Ok((log_likelihood, exact))
    }
}
