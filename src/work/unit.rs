//! [`WorkUnit`], [`NonceRange`], [`Hit`] and hit verification.

use bitcoin::pow::Target;
use bitcoin::BlockHash;

use crate::pow::{
    block_hash, hash_meets_target, target_limbs, with_nonce, Precomputed, HEADER_LEN,
};

/// A contiguous run of nonces, wrapping past `u32::MAX` back to 0. Holds up to all 2^32 nonces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NonceRange {
    pub start: u32,
    pub count: u64,
}

impl NonceRange {
    /// Every nonce.
    pub const FULL: NonceRange = NonceRange {
        start: 0,
        count: 1 << 32,
    };

    /// `count` nonces from `start`; `count` is clamped to 2^32.
    pub fn new(start: u32, count: u64) -> Self {
        NonceRange {
            start,
            count: count.min(1 << 32),
        }
    }

    /// Whether `nonce` lies in the range (taking wrap-around into account).
    pub fn contains(&self, nonce: u32) -> bool {
        u64::from(nonce.wrapping_sub(self.start)) < self.count
    }

    /// The first `n` nonces and the rest.
    pub fn split_at(&self, n: u64) -> (NonceRange, NonceRange) {
        let n = n.min(self.count);
        (
            NonceRange {
                start: self.start,
                count: n,
            },
            NonceRange {
                start: self.start.wrapping_add(n as u32),
                count: self.count - n,
            },
        )
    }

    /// Consecutive sub-ranges of at most `size` nonces covering the range.
    pub fn chunks(&self, size: u64) -> impl Iterator<Item = NonceRange> + '_ {
        let size = size.max(1);
        (0..self.count.div_ceil(size)).map(move |i| {
            let off = i * size;
            NonceRange {
                start: self.start.wrapping_add(off as u32),
                count: size.min(self.count - off),
            }
        })
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
}

/// One header to search: the nonce field is what backends fill in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkUnit {
    /// The serialized header; its nonce bytes are ignored.
    pub header: [u8; HEADER_LEN],
    /// Hashes at or below this target are hits (a share target, or the block target).
    pub target: Target,
    /// The nonces to search.
    pub nonces: NonceRange,
    /// Midstate, tail words, target limbs and nonce-independent rounds.
    pub pre: Precomputed,
}

impl WorkUnit {
    pub fn new(header: [u8; HEADER_LEN], target: Target, nonces: NonceRange) -> Self {
        let pre = Precomputed::from_header(&header, target_limbs(&target));
        WorkUnit {
            header,
            target,
            nonces,
            pre,
        }
    }

    pub fn from_header(
        header: &bitcoin::block::Header,
        target: Target,
        nonces: NonceRange,
    ) -> Self {
        Self::new(crate::pow::header_bytes(header), target, nonces)
    }

    /// The same unit over other nonces.
    pub fn with_nonces(&self, nonces: NonceRange) -> Self {
        WorkUnit {
            nonces,
            ..self.clone()
        }
    }

    pub fn midstate(&self) -> [u32; 8] {
        self.pre.midstate
    }

    pub fn tail(&self) -> [u32; 3] {
        self.pre.tail
    }

    /// The header bytes with `nonce` filled in.
    pub fn header_with_nonce(&self, nonce: u32) -> [u8; HEADER_LEN] {
        with_nonce(&self.header, nonce)
    }

    /// Full double-SHA-256 of the header with `nonce` (rust-bitcoin's hashing, independent of
    /// every scan path), checked against the unit's target and range.
    pub fn verify(&self, nonce: u32) -> Result<BlockHash, HitError> {
        if !self.nonces.contains(nonce) {
            return Err(HitError::OutOfRange { nonce });
        }
        let hash = block_hash(&self.header_with_nonce(nonce));
        if hash_meets_target(&hash, &self.target) {
            Ok(hash)
        } else {
            Err(HitError::AboveTarget { nonce, hash })
        }
    }
}

/// A nonce a backend believes meets the target of `units[unit]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Hit {
    pub unit: usize,
    pub nonce: u32,
}

/// Why a reported hit was not a solution: a hardware (or kernel) error.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HitError {
    #[error("nonce {nonce:#010x} gives hash {hash}, above the target")]
    AboveTarget { nonce: u32, hash: BlockHash },
    #[error("nonce {nonce:#010x} is outside the unit's nonce range")]
    OutOfRange { nonce: u32 },
    #[error("hit names work unit {unit}, but only {units} were scanned")]
    NoSuchUnit { unit: usize, units: usize },
}

/// A verified hit: the nonce, and the header hash that proves it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Solution {
    pub unit: usize,
    pub nonce: u32,
    pub hash: BlockHash,
}

/// The outcome of re-verifying a batch of hits.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Verified {
    pub solutions: Vec<Solution>,
    /// Hits that failed verification: counted as hardware errors, never submitted.
    pub hardware_errors: Vec<(Hit, HitError)>,
}

/// Re-verify every hit against the unit it names. Duplicate hits are reported once.
pub fn verify_hits(units: &[WorkUnit], hits: &[Hit]) -> Verified {
    let mut sorted = hits.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut out = Verified::default();
    for hit in sorted {
        let result = match units.get(hit.unit) {
            None => Err(HitError::NoSuchUnit {
                unit: hit.unit,
                units: units.len(),
            }),
            Some(unit) => unit.verify(hit.nonce),
        };
        match result {
            Ok(hash) => out.solutions.push(Solution {
                unit: hit.unit,
                nonce: hit.nonce,
                hash,
            }),
            Err(e) => out.hardware_errors.push((hit, e)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_wrap_and_chunk() {
        let r = NonceRange::new(u32::MAX - 1, 4);
        assert!(r.contains(u32::MAX - 1) && r.contains(u32::MAX) && r.contains(0) && r.contains(1));
        assert!(!r.contains(2) && !r.contains(u32::MAX - 2));
        let chunks: Vec<_> = r.chunks(3).collect();
        assert_eq!(
            chunks,
            vec![NonceRange::new(u32::MAX - 1, 3), NonceRange::new(1, 1)]
        );
        assert!(NonceRange::FULL.contains(12345));
        assert_eq!(NonceRange::FULL.chunks(1 << 30).count(), 4);
        let (a, b) = NonceRange::new(10, 5).split_at(2);
        assert_eq!((a, b), (NonceRange::new(10, 2), NonceRange::new(12, 3)));
        assert!(NonceRange::new(0, 0).is_empty());
    }
}
