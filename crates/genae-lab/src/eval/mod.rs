//! Evaluations shared by the model kinds: pictures, likelihoods, Markov chains and the data
//! set's classifier (whose features the chains' Fréchet distance compares).

pub(crate) mod chains;
pub(crate) mod classifier;
pub(crate) mod disentanglement;
pub(crate) mod likelihood;
pub(crate) mod pictures;
pub(crate) mod prior;
