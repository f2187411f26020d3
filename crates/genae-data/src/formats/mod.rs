//! Decoders for the formats data sets are distributed in. Each returns plain buffers
//! ([`ImageSet`](crate::ImageSet)) and fails with an error naming the file and the problem.

pub mod arrays;
pub mod cifar;
pub mod idx;
pub mod image_folder;
mod npy_header;
pub mod svhn;

/// Bytes a deflate (gzip, zlib, zip) stream can expand to per compressed byte: its limit is
/// about 1032:1, so a header declaring more than this times the compressed size is corrupt.
pub(crate) const DEFLATE_MAX_RATIO: usize = 1100;

/// Reads from `reader` until `out` holds `up_to` bytes or the stream ends, never more: the
/// decompressors read only as far as what the data declares.
pub(crate) fn read_up_to(
    reader: &mut impl std::io::Read,
    out: &mut Vec<u8>,
    up_to: usize,
) -> std::io::Result<()> {
    use std::io::Read;
    let more = up_to.saturating_sub(out.len()) as u64;
    reader.take(more).read_to_end(out).map(drop)
}
