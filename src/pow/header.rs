//! The 80-byte block header as SHA-256 sees it: the first 64 bytes (version, previous hash and
//! 28 bytes of the merkle root) form the first block, whose state is the *midstate*; the last
//! 16 bytes (merkle-root tail, nTime, nBits, nonce) are the first four words of the second block.
//! Only the nonce changes while mining, so everything else is computed once per header.

use bitcoin::block::Header;
use bitcoin::consensus::encode::serialize;

use super::sha256::{block_words, compress, IV};

/// Serialized length of a block header.
pub const HEADER_LEN: usize = 80;

/// Consensus serialization of a header (all integers little-endian).
pub fn header_bytes(header: &Header) -> [u8; HEADER_LEN] {
    let bytes = serialize(header);
    let mut out = [0u8; HEADER_LEN];
    out.copy_from_slice(&bytes);
    out
}

/// SHA-256 state after compressing header bytes 0..64.
pub fn midstate(header: &[u8; HEADER_LEN]) -> [u32; 8] {
    let mut first = [0u8; 64];
    first.copy_from_slice(&header[..64]);
    compress(IV, block_words(&first))
}

/// Message words 0..3 of the second block: merkle-root tail, nTime, nBits (big-endian reads of
/// header bytes 64..76, which is how SHA-256 consumes them).
pub fn tail_words(header: &[u8; HEADER_LEN]) -> [u32; 3] {
    core::array::from_fn(|i| {
        let o = 64 + 4 * i;
        u32::from_be_bytes([header[o], header[o + 1], header[o + 2], header[o + 3]])
    })
}

/// Message word 3 of the second block for a nonce: the nonce is serialized little-endian, and
/// SHA-256 reads it big-endian.
#[inline(always)]
pub fn nonce_word(nonce: u32) -> u32 {
    nonce.swap_bytes()
}

/// The header bytes with another nonce.
pub fn with_nonce(header: &[u8; HEADER_LEN], nonce: u32) -> [u8; HEADER_LEN] {
    let mut out = *header;
    out[76..80].copy_from_slice(&nonce.to_le_bytes());
    out
}
