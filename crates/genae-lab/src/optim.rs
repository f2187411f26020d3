//! The checkpointable Adam, now [`genae_tensor::Adam`]; re-exported here while the engine
//! still names it `crate::optim::Adam`.
pub use genae_tensor::Adam;
