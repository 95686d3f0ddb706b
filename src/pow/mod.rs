//! Pure proof-of-work math: SHA-256 pieces ([`sha256`]), the header layout ([`header`]),
//! targets and difficulties ([`target`]), the aserti3-2d retarget ([`asert`]), and the CPU nonce-scanning paths ([`scan`]). No I/O,
//! no async, no threads: functions over bytes and numbers.

pub mod asert;
pub mod header;
pub mod scan;
pub mod sha256;
pub mod target;

pub use header::{header_bytes, midstate, nonce_word, tail_words, with_nonce, HEADER_LEN};
pub use scan::{Precomputed, ScanPath};
pub use target::{
    difficulty_of_target, hash_difficulty, hash_meets_target, target_from_bits,
    target_from_difficulty, target_limbs, DifficultyError, DIFF1_TARGET,
};

/// Double SHA-256 of a serialized header, via rust-bitcoin (independent of our own kernels).
pub fn block_hash(header: &[u8; HEADER_LEN]) -> bitcoin::BlockHash {
    use bitcoin::hashes::{sha256d, Hash};
    bitcoin::BlockHash::from_raw_hash(sha256d::Hash::hash(header))
}
