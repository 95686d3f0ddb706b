//! Nonce scanning on the CPU: the per-unit precomputation shared by every path, the scalar
//! reference that hashes one nonce the long way, and the dispatch to the fastest path this CPU
//! has (SHA-NI, AVX-512, AVX2, or the portable lane code).
//!
//! Every path answers the same question, "which nonces in this range give a double-SHA-256
//! header hash at or below the target?", and they are tested against each other and against the
//! `sha2` crate. The fast paths stop the second hash after round 60: the last state word `H7`
//! is fixed by then (it is the `e` of round 60 plus the IV), and for any target at or below pool
//! difficulty 1 its byte-swapped value must be 0. Nonces that pass that filter are re-hashed in
//! full by [`Precomputed::final_state`] and compared against the whole target, so easy targets
//! (regtest's 0x207fffff, pool difficulty below 1) are exact too.

mod lanes;
#[cfg(target_arch = "x86_64")]
mod shani;
#[cfg(target_arch = "x86_64")]
mod simd;

use super::header::{midstate, nonce_word, tail_words, HEADER_LEN};
use super::sha256::{
    big_sigma0, big_sigma1, block_words, ch, compress, maj, round, small_sigma0, small_sigma1,
    unrotate, HASH_BIT_LEN, HEADER_BIT_LEN, IV, K, PADDING_BIT,
};
use super::target::state_meets_limbs;

/// What hashing a nonce of one header needs that does not depend on the nonce.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Precomputed {
    /// SHA-256 state after header bytes 0..64.
    pub midstate: [u32; 8],
    /// Second-block message words 0..2 (merkle tail, nTime, nBits).
    pub tail: [u32; 3],
    /// Target as little-endian limbs, least significant first.
    pub target_limbs: [u32; 8],
    /// Second-block state (a..h) after rounds 0..2; the nonce enters at round 3.
    pub state3: [u32; 8],
    /// Round 3 without its message word: `h + Σ1(e) + Ch(e,f,g) + K3` and `Σ0(a) + Maj(a,b,c)`.
    pub round3_t1: u32,
    pub round3_t2: u32,
    /// Nonce-independent message words W16, W17 and the constant parts of W18 (add σ0(W3)) and
    /// W19 (add W3).
    pub w16: u32,
    pub w17: u32,
    pub w18_base: u32,
    pub w19_base: u32,
}

impl Precomputed {
    /// Precompute from the midstate, the tail words and the target limbs.
    pub fn new(midstate: [u32; 8], tail: [u32; 3], target_limbs: [u32; 8]) -> Self {
        let mut s = midstate;
        for (t, &w) in tail.iter().enumerate() {
            round(&mut s, t, w);
        }
        let state3 = unrotate(s, 3);
        let [a, b, c, _d, e, f, g, h] = state3;
        let round3_t1 = h
            .wrapping_add(big_sigma1(e))
            .wrapping_add(ch(e, f, g))
            .wrapping_add(K[3]);
        let round3_t2 = big_sigma0(a).wrapping_add(maj(a, b, c));
        // W4 = padding bit, W5..W14 = 0, W15 = bit length.
        let w16 = small_sigma0(tail[1]).wrapping_add(tail[0]);
        let w17 = small_sigma1(HEADER_BIT_LEN)
            .wrapping_add(small_sigma0(tail[2]))
            .wrapping_add(tail[1]);
        let w18_base = small_sigma1(w16).wrapping_add(tail[2]);
        let w19_base = small_sigma1(w17).wrapping_add(small_sigma0(PADDING_BIT));
        Precomputed {
            midstate,
            tail,
            target_limbs,
            state3,
            round3_t1,
            round3_t2,
            w16,
            w17,
            w18_base,
            w19_base,
        }
    }

    /// Precompute for an 80-byte header (its nonce field is ignored).
    pub fn from_header(header: &[u8; HEADER_LEN], target_limbs: [u32; 8]) -> Self {
        Self::new(midstate(header), tail_words(header), target_limbs)
    }

    /// The final SHA-256 state of the double hash for `nonce`, computed the long way (two plain
    /// compressions, no shortcuts). The reference the fast paths are held to.
    pub fn final_state(&self, nonce: u32) -> [u32; 8] {
        let mut block = [0u32; 16];
        block[..3].copy_from_slice(&self.tail);
        block[3] = nonce_word(nonce);
        block[4] = PADDING_BIT;
        block[15] = HEADER_BIT_LEN;
        let first = compress(self.midstate, block);
        let mut block = [0u32; 16];
        block[..8].copy_from_slice(&first);
        block[8] = PADDING_BIT;
        block[15] = HASH_BIT_LEN;
        compress(IV, block)
    }

    /// Whether `nonce` meets the full target.
    pub fn meets_target(&self, nonce: u32) -> bool {
        state_meets_limbs(&self.final_state(nonce), &self.target_limbs)
    }

    /// The early-exit filter: can a hash whose last state word is `h7` meet the target?
    #[inline(always)]
    pub fn h7_may_meet(&self, h7: u32) -> bool {
        h7.swap_bytes() <= self.target_limbs[7]
    }

    /// Called for every nonce that passes the early-exit filter.
    #[inline]
    fn confirm(&self, nonce: u32, hits: &mut Vec<u32>) {
        if self.meets_target(nonce) {
            hits.push(nonce);
        }
    }
}

/// The header's first block in message words (for callers holding raw bytes).
pub fn first_block_words(header: &[u8; HEADER_LEN]) -> [u32; 16] {
    let mut first = [0u8; 64];
    first.copy_from_slice(&header[..64]);
    block_words(&first)
}

/// A CPU hashing path. Paths differ only in speed, never in results.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ScanPath {
    /// x86 SHA extensions, several nonces interleaved to hide instruction latency.
    ShaNi,
    /// 16 nonces per AVX-512 vector.
    Avx512,
    /// 8 nonces per AVX2 vector.
    Avx2,
    /// 4 nonces per SSE2 vector on x86-64 (plain Rust lanes elsewhere); runs on any CPU.
    Portable,
}

impl ScanPath {
    pub const ALL: [ScanPath; 4] = [
        ScanPath::ShaNi,
        ScanPath::Avx512,
        ScanPath::Avx2,
        ScanPath::Portable,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ScanPath::ShaNi => "sha-ni",
            ScanPath::Avx512 => "avx512",
            ScanPath::Avx2 => "avx2",
            ScanPath::Portable => "portable",
        }
    }

    /// Parse a path name as printed by [`ScanPath::name`].
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.name() == name)
    }

    /// Whether this CPU can run the path.
    pub fn is_available(self) -> bool {
        match self {
            ScanPath::Portable => true,
            #[cfg(target_arch = "x86_64")]
            ScanPath::ShaNi => {
                std::arch::is_x86_feature_detected!("sha")
                    && std::arch::is_x86_feature_detected!("sse4.1")
                    && std::arch::is_x86_feature_detected!("ssse3")
            }
            #[cfg(target_arch = "x86_64")]
            ScanPath::Avx512 => std::arch::is_x86_feature_detected!("avx512f"),
            #[cfg(target_arch = "x86_64")]
            ScanPath::Avx2 => std::arch::is_x86_feature_detected!("avx2"),
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }

    /// Every path this CPU can run, fastest first.
    pub fn available() -> Vec<ScanPath> {
        Self::ALL.into_iter().filter(|p| p.is_available()).collect()
    }

    /// The fastest path this CPU can run.
    pub fn best() -> ScanPath {
        Self::available()
            .first()
            .copied()
            .unwrap_or(ScanPath::Portable)
    }
}

impl std::fmt::Display for ScanPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Scan `count` nonces starting at `start` (wrapping past u32::MAX) and append every nonce
/// whose double hash meets the target to `hits`. `count` may be up to 2^32.
///
/// A path the CPU lacks falls back to the portable path.
pub fn scan(path: ScanPath, pre: &Precomputed, start: u32, count: u64, hits: &mut Vec<u32>) {
    debug_assert!(count <= 1 << 32);
    let path = if path.is_available() {
        path
    } else {
        ScanPath::Portable
    };
    match path {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: availability of the CPU features was checked just above.
        ScanPath::ShaNi => unsafe { shani::scan(pre, start, count, hits) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above.
        ScanPath::Avx512 => unsafe { lanes::scan_avx512(pre, start, count, hits) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above.
        ScanPath::Avx2 => unsafe { lanes::scan_avx2(pre, start, count, hits) },
        _ => lanes::scan_portable(pre, start, count, hits),
    }
}
