//! The portable scan: the double hash written once, generic over [`Word`], run on lanes of
//! nonces. The same source is compiled three times: for the baseline target (SSE2 on x86-64,
//! or whatever the target has) and, on x86-64, with AVX2 and with AVX-512 enabled.

use super::Precomputed;
use crate::pow::sha256::{
    round, schedule, small_sigma0, unrotate, Lanes, Word, HASH_BIT_LEN, IV, PADDING_BIT,
};

/// The last state word of the second hash for the nonce words in `w3`, stopping after round 60.
#[inline(always)]
pub(crate) fn final_h7<W: Word>(pre: &Precomputed, w3: W) -> W {
    // --- first hash, second block: header tail, nonce, padding. W5..W14 are zero.
    let mut w = [W::splat(0); 64];
    w[0] = W::splat(pre.tail[0]);
    w[1] = W::splat(pre.tail[1]);
    w[2] = W::splat(pre.tail[2]);
    w[3] = w3;
    w[4] = W::splat(PADDING_BIT);
    w[15] = W::splat(crate::pow::sha256::HEADER_BIT_LEN);
    w[16] = W::splat(pre.w16);
    w[17] = W::splat(pre.w17);
    w[18] = W::splat(pre.w18_base).add(small_sigma0(w3));
    w[19] = W::splat(pre.w19_base).add(w3);

    // Round 3 from its precomputed halves; the state array uses the rotating layout of `round`.
    let [a, b, c, d, e, f, g, _h] = pre.state3;
    let t1 = W::splat(pre.round3_t1).add(w3);
    let mut s = [W::splat(0); 8];
    let at = |i: usize| (8 + i - 4) % 8; // slot of working variable i at round 4
    s[at(0)] = t1.add(W::splat(pre.round3_t2));
    s[at(1)] = W::splat(a);
    s[at(2)] = W::splat(b);
    s[at(3)] = W::splat(c);
    s[at(4)] = W::splat(d).add(t1);
    s[at(5)] = W::splat(e);
    s[at(6)] = W::splat(f);
    s[at(7)] = W::splat(g);

    macro_rules! first {
        ($t:literal) => {
            if $t >= 20 {
                w[$t] = schedule(&w, $t);
            }
            round(&mut s, $t, w[$t]);
        };
    }
    crate::__unroll!(first; 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28
        29 30 31 32 33 34 35 36 37 38 39 40 41 42 43 44 45 46 47 48 49 50 51 52 53 54 55 56 57 58
        59 60 61 62 63);
    let s1 = unrotate(s, 64);

    // --- second hash: the 32-byte first hash, padding, length 256. W9..W14 are zero.
    let mut w = [W::splat(0); 64];
    for i in 0..8 {
        w[i] = W::splat(pre.midstate[i]).add(s1[i]);
    }
    w[8] = W::splat(PADDING_BIT);
    w[15] = W::splat(HASH_BIT_LEN);
    let mut s: [W; 8] = IV.map(W::splat);
    macro_rules! second {
        ($t:literal) => {
            if $t >= 16 {
                w[$t] = schedule(&w, $t);
            }
            round(&mut s, $t, w[$t]);
        };
    }
    crate::__unroll!(second; 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25
        26 27 28 29 30 31 32 33 34 35 36 37 38 39 40 41 42 43 44 45 46 47 48 49 50 51 52 53 54 55
        56 57 58 59 60);
    // H7 = IV7 + h after round 63 = IV7 + e after round 60; `e` is in slot (8 + 4 - 61 % 8) % 8
    // = 7 of the rotating layout at round 61.
    s[7].add(W::splat(IV[7]))
}

/// A word type that holds `L` nonces and can be built from and read back as arrays.
pub(crate) trait LaneWord<const L: usize>: Word {
    fn from_array(a: [u32; L]) -> Self;
    fn to_array(self) -> [u32; L];
    /// Whether any lane, byte-swapped, is at most `limit`: the early-exit filter
    /// ([`Precomputed::h7_may_meet`]) for all lanes at once. Vector words answer it in registers,
    /// so a batch without a candidate costs no scalar work.
    #[inline(always)]
    fn any_swapped_at_most(self, limit: u32) -> bool {
        self.to_array().iter().any(|h| h.swap_bytes() <= limit)
    }
}

impl<const L: usize> LaneWord<L> for Lanes<L> {
    #[inline(always)]
    fn from_array(a: [u32; L]) -> Self {
        Lanes(a)
    }
    #[inline(always)]
    fn to_array(self) -> [u32; L] {
        self.0
    }
}

#[cfg(target_arch = "x86_64")]
macro_rules! lane_word {
    ($t:ty, $l:literal, $v:ty $(, $filter:ident)?) => {
        impl LaneWord<$l> for $t {
            $(
                #[inline(always)]
                fn any_swapped_at_most(self, limit: u32) -> bool {
                    self.$filter(limit)
                }
            )?
            #[inline(always)]
            fn from_array(a: [u32; $l]) -> Self {
                // SAFETY: same size, every bit pattern valid.
                Self(unsafe { core::mem::transmute::<[u32; $l], $v>(a) })
            }
            #[inline(always)]
            fn to_array(self) -> [u32; $l] {
                // SAFETY: as above.
                unsafe { core::mem::transmute::<$v, [u32; $l]>(self.0) }
            }
        }
    };
}
#[cfg(target_arch = "x86_64")]
lane_word!(super::simd::Sse2, 4, core::arch::x86_64::__m128i);
#[cfg(target_arch = "x86_64")]
lane_word!(
    super::simd::Avx2,
    8,
    core::arch::x86_64::__m256i,
    swapped_at_most
);
#[cfg(target_arch = "x86_64")]
lane_word!(
    super::simd::Avx512,
    16,
    core::arch::x86_64::__m512i,
    swapped_at_most
);

/// Scan with `L` lanes of word type `V`, then finish the ragged end one nonce at a time.
#[inline(always)]
fn scan_lanes<V: LaneWord<L>, const L: usize>(
    pre: &Precomputed,
    start: u32,
    count: u64,
    hits: &mut Vec<u32>,
) {
    // Nonce words are big-endian: while the nonces of a batch share all but their low byte,
    // lane i's word is the first one plus i << 24 (one vector add instead of L byte swaps).
    let steps = V::from_array(core::array::from_fn(|i| (i as u32) << 24));
    let mut done = 0u64;
    while done + L as u64 <= count {
        let base = start.wrapping_add(done as u32);
        let w3 = if (base & 0xFF) as usize <= 256 - L {
            V::splat(base.swap_bytes()).add(steps)
        } else {
            V::from_array(core::array::from_fn(|i| {
                base.wrapping_add(i as u32).swap_bytes()
            }))
        };
        let h7 = final_h7(pre, w3);
        if h7.any_swapped_at_most(pre.target_limbs[7]) {
            for (i, h7) in h7.to_array().into_iter().enumerate() {
                if pre.h7_may_meet(h7) {
                    pre.confirm(base.wrapping_add(i as u32), hits);
                }
            }
        }
        done += L as u64;
    }
    while done < count {
        let nonce = start.wrapping_add(done as u32);
        if pre.h7_may_meet(final_h7(pre, nonce.swap_bytes())) {
            pre.confirm(nonce, hits);
        }
        done += 1;
    }
}

pub(super) fn scan_portable(pre: &Precomputed, start: u32, count: u64, hits: &mut Vec<u32>) {
    #[cfg(target_arch = "x86_64")]
    scan_lanes::<super::simd::Sse2, 4>(pre, start, count, hits);
    #[cfg(not(target_arch = "x86_64"))]
    scan_lanes::<Lanes<4>, 4>(pre, start, count, hits);
}

/// # Safety
/// The CPU must support AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
pub(super) unsafe fn scan_avx2(pre: &Precomputed, start: u32, count: u64, hits: &mut Vec<u32>) {
    scan_lanes::<super::simd::Avx2, 8>(pre, start, count, hits)
}

/// # Safety
/// The CPU must support AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn scan_avx512(pre: &Precomputed, start: u32, count: u64, hits: &mut Vec<u32>) {
    scan_lanes::<super::simd::Avx512, 16>(pre, start, count, hits)
}
