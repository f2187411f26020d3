//! Decoders for the formats data sets are distributed in. Each returns plain buffers
//! ([`ImageSet`](crate::ImageSet)) and fails with an error naming the file and the problem.

pub mod arrays;
pub mod cifar;
pub mod idx;
pub mod image_folder;
pub mod svhn;
