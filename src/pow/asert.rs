//! aserti3-2d, the difficulty adjustment Bitcoin Cash has used since November 2020 (the
//! "ASERT DAA" specification by freetrader, Toomim, Culianu, Lundeberg and Ruck, 2020): the
//! target for the next block is the anchor block's target times 2^((time behind schedule) /
//! half-life), in fixed point with a cubic approximation of 2^x, so every node computes the same
//! bits. It needs no window of past blocks, only the anchor and the tip, and it holds the
//! average block time at the ideal one whatever the hash rate does. The embedded node core uses
//! it for `--block-time`.

use bitcoin::pow::{CompactTarget, Target};

/// Where the schedule starts: the anchor block's height, its nBits, and its parent's time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Anchor {
    pub height: u32,
    pub bits: CompactTarget,
    pub parent_time: i64,
}

/// The schedule: the ideal seconds between blocks, and the seconds behind (or ahead of)
/// schedule that double (or halve) the target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Schedule {
    pub spacing: i64,
    pub halflife: i64,
}

/// The nBits the block after the tip (at `tip_height`, timestamp `tip_time`) must carry, never
/// easier than `pow_limit`.
pub fn next_bits(
    anchor: &Anchor,
    schedule: &Schedule,
    tip_height: u32,
    tip_time: i64,
    pow_limit: &Target,
) -> CompactTarget {
    let time_delta = i128::from(tip_time) - i128::from(anchor.parent_time);
    let height_delta = i128::from(tip_height) - i128::from(anchor.height);
    let halflife = i128::from(schedule.halflife.max(1));
    // Fixed point with 16 fractional bits; the division truncates towards zero, as the
    // specification's reference code does.
    let exponent =
        (time_delta - i128::from(schedule.spacing) * (height_delta + 1)) * 65536 / halflife;
    let shifts = exponent >> 16;
    let frac = (exponent - shifts * 65536) as u128;
    // 2^(frac / 65536) * 65536, within 0.013 % (the specification's cubic).
    let factor = ((195_766_423_245_049 * frac
        + 971_821_376 * frac * frac
        + 5_127 * frac * frac * frac
        + (1u128 << 47))
        >> 48)
        + 65_536;
    let limit = Wide::from_target(pow_limit);
    let mut target = Wide::from_target(&Target::from_compact(anchor.bits));
    target.mul_small(factor as u64);
    if shifts < 0 {
        target.shr((-shifts).min(400) as u32);
    } else if shifts > 300 {
        return pow_limit.to_compact_lossy();
    } else {
        target.shl(shifts as u32);
    }
    target.shr(16);
    if target.is_zero() {
        return Target::from_le_bytes(one_le()).to_compact_lossy();
    }
    if target.gt(&limit) {
        return pow_limit.to_compact_lossy();
    }
    target.to_target().to_compact_lossy()
}

fn one_le() -> [u8; 32] {
    let mut b = [0u8; 32];
    b[0] = 1;
    b
}

/// A 320-bit unsigned integer, little-endian limbs: room for a 256-bit target times a 17-bit
/// factor, shifted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Wide([u64; 5]);

impl Wide {
    fn from_target(t: &Target) -> Wide {
        let bytes = t.to_le_bytes();
        let mut limbs = [0u64; 5];
        for (i, chunk) in bytes.chunks_exact(8).enumerate() {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            limbs[i] = u64::from_le_bytes(word);
        }
        Wide(limbs)
    }

    /// The low 256 bits as a target (callers check the value fits first).
    fn to_target(self) -> Target {
        let mut bytes = [0u8; 32];
        for (i, limb) in self.0[..4].iter().enumerate() {
            bytes[i * 8..i * 8 + 8].copy_from_slice(&limb.to_le_bytes());
        }
        Target::from_le_bytes(bytes)
    }

    fn is_zero(&self) -> bool {
        self.0.iter().all(|&l| l == 0)
    }

    fn gt(&self, other: &Wide) -> bool {
        for i in (0..5).rev() {
            if self.0[i] != other.0[i] {
                return self.0[i] > other.0[i];
            }
        }
        false
    }

    fn mul_small(&mut self, m: u64) {
        let mut carry = 0u128;
        for limb in &mut self.0 {
            let v = u128::from(*limb) * u128::from(m) + carry;
            *limb = v as u64;
            carry = v >> 64;
        }
    }

    fn bit_len(&self) -> u32 {
        (0..5)
            .rev()
            .find(|&i| self.0[i] != 0)
            .map_or(0, |i| i as u32 * 64 + 64 - self.0[i].leading_zeros())
    }

    /// Shift left; a value pushed past 320 bits (only far beyond any limit) saturates.
    fn shl(&mut self, n: u32) {
        if self.is_zero() {
            return;
        }
        if self.bit_len().saturating_add(n) > 320 {
            self.0 = [u64::MAX; 5];
            return;
        }
        let (words, bits) = ((n / 64) as usize, n % 64);
        let mut out = [0u64; 5];
        for i in (words..5).rev() {
            let src = i - words;
            out[i] = self.0[src] << bits;
            if bits > 0 && src > 0 {
                out[i] |= self.0[src - 1] >> (64 - bits);
            }
        }
        self.0 = out;
    }

    fn shr(&mut self, n: u32) {
        if n >= 320 {
            self.0 = [0; 5];
            return;
        }
        let (words, bits) = ((n / 64) as usize, n % 64);
        let mut out = [0u64; 5];
        for (i, o) in out.iter_mut().enumerate().take(5 - words) {
            let src = i + words;
            *o = self.0[src] >> bits;
            if bits > 0 && src + 1 < 5 {
                *o |= self.0[src + 1] << (64 - bits);
            }
        }
        self.0 = out;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: Target = Target::MAX_ATTAINABLE_REGTEST;
    const SCHEDULE: Schedule = Schedule {
        spacing: 5,
        halflife: 300,
    };

    fn anchor(bits: u32) -> Anchor {
        Anchor {
            height: 100,
            bits: CompactTarget::from_consensus(bits),
            parent_time: 1_700_000_000,
        }
    }

    fn target_at(tip_height: u32, tip_time: i64) -> Target {
        Target::from_compact(next_bits(
            &anchor(0x1d00_ffff),
            &SCHEDULE,
            tip_height,
            tip_time,
            &LIMIT,
        ))
    }

    /// How many times larger (easier) target `b` is than `a`.
    fn ratio(a: Target, b: Target) -> f64 {
        crate::pow::difficulty_of_target(&a) / crate::pow::difficulty_of_target(&b)
    }

    #[test]
    fn on_schedule_the_target_stays() {
        // The anchor itself came 5 s after its parent: on schedule.
        for (h, t) in [(100, 5), (101, 10), (1100, 5005)] {
            let bits = next_bits(
                &anchor(0x1d00_ffff),
                &SCHEDULE,
                h,
                1_700_000_000 + t,
                &LIMIT,
            );
            assert_eq!(bits.to_consensus(), 0x1d00_ffff, "height {h}");
        }
    }

    #[test]
    fn a_halflife_behind_doubles_and_ahead_halves() {
        let on = target_at(200, 1_700_000_000 + 505);
        let slow = target_at(200, 1_700_000_000 + 505 + 300);
        let fast = target_at(200, 1_700_000_000 + 505 - 300);
        assert!((ratio(on, slow) - 2.0).abs() < 1e-4, "{}", ratio(on, slow));
        assert!((ratio(on, fast) - 0.5).abs() < 1e-4, "{}", ratio(on, fast));
        // Half a half-life: the cubic's 2^0.5, within the specification's 0.013 %.
        let half = target_at(200, 1_700_000_000 + 505 + 150);
        assert!(
            (ratio(on, half) - 2f64.sqrt()).abs() < 2e-4,
            "{}",
            ratio(on, half)
        );
    }

    #[test]
    fn later_tips_mean_easier_targets() {
        let mut last = target_at(150, 1_700_000_000);
        for dt in (0..5000).step_by(7) {
            let t = target_at(150, 1_700_000_000 + dt);
            assert!(t >= last, "not monotonic at {dt}");
            last = t;
        }
    }

    #[test]
    fn extremes_are_clamped() {
        // Years without a block: the easiest target allowed, not an overflow.
        let easy = next_bits(
            &anchor(0x1d00_ffff),
            &SCHEDULE,
            101,
            i64::from(u32::MAX) * 4,
            &LIMIT,
        );
        assert_eq!(easy, LIMIT.to_compact_lossy());
        // Thousands of blocks in no time: the hardest target, 1, not zero.
        let hard = next_bits(
            &anchor(0x1d00_ffff),
            &SCHEDULE,
            1_000_000,
            1_700_000_000,
            &LIMIT,
        );
        assert_eq!(Target::from_compact(hard), Target::from_le_bytes(one_le()));
        // Starting at the limit and slow: stays there.
        let at_limit = next_bits(&anchor(0x207f_ffff), &SCHEDULE, 101, 1_800_000_000, &LIMIT);
        assert_eq!(at_limit, LIMIT.to_compact_lossy());
    }

    #[test]
    fn wide_shifts_round_trip() {
        let t = Target::from_compact(CompactTarget::from_consensus(0x1d00_ffff));
        // 0x1d00ffff's target is 224 bits long: 96 more fit.
        for n in [0, 1, 13, 64, 65, 96] {
            let mut w = Wide::from_target(&t);
            w.shl(n);
            w.shr(n);
            assert_eq!(w.to_target(), t, "{n}");
        }
        let mut w = Wide::from_target(&t);
        w.shl(400);
        assert!(w.gt(&Wide::from_target(&LIMIT)));
    }
}
