//! # genae-samplers
//!
//! Samplers for generative autoencoders. This crate is the home of:
//!
//! - Markov-chain sampling in latent space (Creswell et al., 2016): decode, (optionally corrupt),
//!   encode, repeat — working with any model through genae-zoo's `LatentVariableModel` trait;
//! - Hamiltonian Monte Carlo and annealed importance sampling in latent space;
//! - the straight-through vector quantizer of VQ-VAE (van den Oord et al., 2017).
//!
//! None of them is released yet: this version of the crate exports nothing but
//! [`PLANNED`], the list above in machine-readable form, so downstream crates can depend on
//! the name now.
//!
//! ```
//! assert!(genae_samplers::PLANNED.contains(&"markov-chain"));
//! ```

/// The samplers this crate will provide, by short name.
pub const PLANNED: [&str; 4] = ["markov-chain", "hmc", "ais", "straight-through-quantizer"];
