//! Targets and difficulties: compact nBits, the 256-bit target, block difficulty and pool
//! (share) difficulty, and the "does this hash meet this target" test.
//!
//! rust-bitcoin's [`Target`] and [`CompactTarget`] carry the values; this module adds what mining
//! needs on top: pool difficulty as a float (shares below difficulty 1 exist), and the target as
//! eight little-endian 32-bit limbs, the form the hashing kernels compare against.

use bitcoin::hashes::Hash;
use bitcoin::pow::{CompactTarget, Target};
use bitcoin::BlockHash;

/// Why a difficulty cannot be turned into a target.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum DifficultyError {
    #[error("difficulty must be a finite number greater than zero, got {0}")]
    NotPositive(f64),
}

/// The target of pool difficulty 1: 0x00000000FFFF0000…0000 (Bitcoin's `Target::MAX`, the
/// mainnet proof-of-work limit).
pub const DIFF1_TARGET: Target = Target::MAX;

/// The target a 256-bit hash must not exceed for pool difficulty `difficulty`:
/// floor(DIFF1_TARGET / difficulty), saturating at 2^256 - 1 for tiny difficulties. Exact for
/// integer difficulties; fractional ones carry the full 53-bit precision of the float.
pub fn target_from_difficulty(difficulty: f64) -> Result<Target, DifficultyError> {
    if !(difficulty.is_finite() && difficulty > 0.0) {
        return Err(DifficultyError::NotPositive(difficulty));
    }
    // difficulty = divisor / 2^shift with a divisor of about 2^62 (exact for integers below
    // 2^62), so target = (DIFF1 << shift) / divisor, computed in 512 bits.
    let shift = 62 - difficulty.log2().floor() as i32;
    let divisor = (difficulty * 2f64.powi(shift)).round().max(1.0) as u64;
    let mut wide = [0u64; 8];
    wide[..4].copy_from_slice(&to_u64_limbs(&DIFF1_TARGET));
    let wide = if shift >= 0 {
        if shift > 250 {
            return Ok(Target::from_le_bytes([0xff; 32]));
        }
        shl(wide, shift as u32)
    } else {
        shr(wide, (-shift) as u32)
    };
    let quotient = div_u64(wide, divisor);
    if quotient[4..].iter().any(|&l| l != 0) {
        return Ok(Target::from_le_bytes([0xff; 32]));
    }
    Ok(from_u64_limbs([
        quotient[0],
        quotient[1],
        quotient[2],
        quotient[3],
    ]))
}

/// Pool difficulty of a target: DIFF1_TARGET / target, as a float.
pub fn difficulty_of_target(target: &Target) -> f64 {
    ratio(&DIFF1_TARGET, target)
}

/// Difficulty a hash achieves (DIFF1_TARGET / hash): what pools and miners report as a share's
/// difficulty.
pub fn hash_difficulty(hash: &BlockHash) -> f64 {
    let t = Target::from_le_bytes(hash.to_byte_array());
    ratio(&DIFF1_TARGET, &t)
}

/// The target encoded by compact nBits.
pub fn target_from_bits(bits: u32) -> Target {
    Target::from_compact(CompactTarget::from_consensus(bits))
}

/// Whether a block hash meets a target (hash <= target, both as 256-bit integers).
pub fn hash_meets_target(hash: &BlockHash, target: &Target) -> bool {
    target.is_met_by(*hash)
}

/// The target as eight 32-bit limbs, least significant first: limb `j` is the little-endian
/// value of bytes `4j..4j+4`. A SHA-256 output word `H[j]` compares against limb `j` after a
/// byte swap.
pub fn target_limbs(target: &Target) -> [u32; 8] {
    let b = target.to_le_bytes();
    core::array::from_fn(|j| {
        u32::from_le_bytes([b[4 * j], b[4 * j + 1], b[4 * j + 2], b[4 * j + 3]])
    })
}

/// Whether a final SHA-256 state (the second hash of sha256d) meets a target given as limbs.
#[inline]
pub fn state_meets_limbs(state: &[u32; 8], limbs: &[u32; 8]) -> bool {
    for j in (0..8).rev() {
        let h = state[j].swap_bytes();
        if h != limbs[j] {
            return h < limbs[j];
        }
    }
    true
}

fn ratio(num: &Target, den: &Target) -> f64 {
    let to_f = |t: &Target| {
        t.to_le_bytes()
            .iter()
            .rev()
            .fold(0.0f64, |acc, &b| acc * 256.0 + f64::from(b))
    };
    let d = to_f(den);
    if d == 0.0 {
        f64::INFINITY
    } else {
        to_f(num) / d
    }
}

// --- minimal 256-bit arithmetic on little-endian u64 limbs (rust-bitcoin keeps its U256 private)

fn to_u64_limbs(t: &Target) -> [u64; 4] {
    let b = t.to_le_bytes();
    core::array::from_fn(|i| {
        let mut x = [0u8; 8];
        x.copy_from_slice(&b[8 * i..8 * i + 8]);
        u64::from_le_bytes(x)
    })
}

fn from_u64_limbs(l: [u64; 4]) -> Target {
    let mut b = [0u8; 32];
    for (i, limb) in l.iter().enumerate() {
        b[8 * i..8 * i + 8].copy_from_slice(&limb.to_le_bytes());
    }
    Target::from_le_bytes(b)
}

fn shl(l: [u64; 8], n: u32) -> [u64; 8] {
    let mut out = [0u64; 8];
    for bit in 0..512u32 {
        let src = bit as i64 - n as i64;
        if src >= 0 && (l[(src / 64) as usize] >> (src % 64)) & 1 == 1 {
            out[(bit / 64) as usize] |= 1 << (bit % 64);
        }
    }
    out
}

fn shr(l: [u64; 8], n: u32) -> [u64; 8] {
    let mut out = [0u64; 8];
    for bit in 0..512u32 {
        let src = bit + n;
        if src < 512 && (l[(src / 64) as usize] >> (src % 64)) & 1 == 1 {
            out[(bit / 64) as usize] |= 1 << (bit % 64);
        }
    }
    out
}

fn div_u64(l: [u64; 8], d: u64) -> [u64; 8] {
    let mut out = [0u64; 8];
    let mut rem: u128 = 0;
    for i in (0..8).rev() {
        let cur = (rem << 64) | u128::from(l[i]);
        out[i] = (cur / u128::from(d)) as u64;
        rem = cur % u128::from(d);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn difficulty_one_is_the_pow_limit() {
        let t = target_from_difficulty(1.0).unwrap();
        assert_eq!(t, DIFF1_TARGET);
        assert_eq!(target_limbs(&t)[7], 0);
        assert_eq!(target_limbs(&t)[6], 0xFFFF_0000);
        assert_eq!(target_from_bits(0x1d00ffff), DIFF1_TARGET);
    }

    #[test]
    fn integer_difficulty_is_exact_floor() {
        // DIFF1 / 3 = 0x0000000055550000...0000 with remainder 0 in the top limbs
        let t = target_from_difficulty(3.0).unwrap();
        let l = target_limbs(&t);
        assert_eq!(l[7], 0);
        assert_eq!(l[6], 0x5555_0000);
        let t = target_from_difficulty(65536.0).unwrap();
        assert_eq!(target_limbs(&t)[6], 0x0000_FFFF);
        assert!(
            (difficulty_of_target(&target_from_difficulty(1234.0).unwrap()) - 1234.0).abs() < 1e-9
        );
    }

    #[test]
    fn fractional_and_huge_difficulties() {
        let t = target_from_difficulty(0.5).unwrap();
        assert_eq!(target_limbs(&t)[7], 0x1);
        assert_eq!(target_limbs(&t)[6], 0xFFFE_0000);
        for d in [1e-9, 0.001, 0.37, 1.5, 1e6, 1e15, 1e30] {
            let back = difficulty_of_target(&target_from_difficulty(d).unwrap());
            assert!((back / d - 1.0).abs() < 1e-9, "{d} -> {back}");
        }
        // Below 2^-32 the target passes 2^256 and saturates.
        assert_eq!(
            target_from_difficulty(1e-12).unwrap(),
            Target::from_le_bytes([0xff; 32])
        );
        assert!(target_from_difficulty(0.0).is_err());
        assert!(target_from_difficulty(-1.0).is_err());
        assert!(target_from_difficulty(f64::NAN).is_err());
    }

    #[test]
    fn limbs_compare_like_targets() {
        let t = target_from_difficulty(1.0).unwrap();
        let limbs = target_limbs(&t);
        // A state whose byte-swapped words equal the limbs is exactly the target: it meets it.
        let state: [u32; 8] = core::array::from_fn(|j| limbs[j].swap_bytes());
        assert!(state_meets_limbs(&state, &limbs));
        let mut above = state;
        above[6] = (limbs[6] + 1).swap_bytes();
        assert!(!state_meets_limbs(&above, &limbs));
        let mut below = state;
        below[0] = 0;
        below[6] = (limbs[6] - 1).swap_bytes();
        assert!(state_meets_limbs(&below, &limbs));
    }
}
