//! The SHA-NI scan: x86 SHA extensions (`sha256rnds2`, `sha256msg1`, `sha256msg2`), with
//! [`STREAMS`] nonces interleaved so that one nonce's dependent round instructions overlap the
//! others' (each `sha256rnds2` waits several cycles for the previous one of its own stream).
//!
//! Register layout follows Intel's SHA extensions guide: the state lives in two vectors, ABEF and
//! CDGH (A in the top lane), and `sha256rnds2` does two rounds with the low two lanes of the
//! message-plus-constant vector.

use core::arch::x86_64::*;

use super::Precomputed;
use crate::pow::sha256::{HASH_BIT_LEN, HEADER_BIT_LEN, IV, K, PADDING_BIT};

/// Nonces hashed side by side. Four covers `sha256rnds2` latency on recent AMD and Intel cores
/// without spilling too many of the sixteen XMM registers (see BENCHMARKS.md for the measurement).
const STREAMS: usize = 4;

/// State words a..h to (ABEF, CDGH).
#[inline(always)]
unsafe fn pack_state(s: &[u32; 8]) -> (__m128i, __m128i) {
    let [a, b, c, d, e, f, g, h] = s.map(|x| x as i32);
    (_mm_set_epi32(a, b, e, f), _mm_set_epi32(c, d, g, h))
}

/// (ABEF, CDGH) back to message vectors [A,B,C,D] and [E,F,G,H] (lane 0 first).
#[inline(always)]
unsafe fn unpack_state(abef: __m128i, cdgh: __m128i) -> (__m128i, __m128i) {
    let feba = _mm_shuffle_epi32(abef, 0x1B); // lanes: A B E F
    let hgdc = _mm_shuffle_epi32(cdgh, 0xB1); // lanes: G H C D
    let abcd = _mm_blend_epi16(feba, hgdc, 0xF0); // A B C D
    let efgh = _mm_alignr_epi8(hgdc, feba, 8); // E F G H
    (abcd, efgh)
}

#[inline(always)]
unsafe fn k4(group: usize) -> __m128i {
    _mm_loadu_si128(K.as_ptr().add(4 * group) as *const __m128i)
}

/// Next schedule group: W[t..t+4] from the four previous groups.
#[inline(always)]
unsafe fn next_group(m0: __m128i, m1: __m128i, m2: __m128i, m3: __m128i) -> __m128i {
    let w9_12 = _mm_alignr_epi8(m3, m2, 4);
    _mm_sha256msg2_epu32(_mm_add_epi32(_mm_sha256msg1_epu32(m0, m1), w9_12), m3)
}

/// Last state word of the second hash for STREAMS nonce words (early exit after round 61).
#[inline(always)]
unsafe fn final_h7(
    pre: &Precomputed,
    abef_r2: __m128i,
    cdgh_r2: __m128i,
    mid_abef: __m128i,
    mid_cdgh: __m128i,
    w3: [u32; STREAMS],
) -> [u32; STREAMS] {
    let [t0, t1, t2] = pre.tail.map(|x| x as i32);
    // ---- first hash, second block; rounds 0 and 1 are precomputed.
    let mut m: [[__m128i; 4]; STREAMS] = [[_mm_setzero_si128(); 4]; STREAMS];
    let mut abef = [_mm_setzero_si128(); STREAMS];
    let mut cdgh = [_mm_setzero_si128(); STREAMS];
    let k0 = k4(0);
    for i in 0..STREAMS {
        m[i][0] = _mm_set_epi32(w3[i] as i32, t2, t1, t0);
        m[i][1] = _mm_set_epi32(0, 0, 0, PADDING_BIT as i32);
        m[i][2] = _mm_setzero_si128();
        m[i][3] = _mm_set_epi32(HEADER_BIT_LEN as i32, 0, 0, 0);
        let wk = _mm_shuffle_epi32(_mm_add_epi32(m[i][0], k0), 0x0E);
        abef[i] = _mm_sha256rnds2_epu32(cdgh_r2, abef_r2, wk);
        cdgh[i] = abef_r2;
    }
    macro_rules! group {
        ($g:literal) => {
            group!($g, false)
        };
        ($g:literal, $last:expr) => {
            for i in 0..STREAMS {
                if $g >= 4 {
                    m[i][$g % 4] = next_group(
                        m[i][$g % 4],
                        m[i][($g + 1) % 4],
                        m[i][($g + 2) % 4],
                        m[i][($g + 3) % 4],
                    );
                }
                let wk = _mm_add_epi32(m[i][$g % 4], k4($g));
                let t = _mm_sha256rnds2_epu32(cdgh[i], abef[i], wk);
                if $last {
                    // Only rounds 60 and 61 are needed: F after round 61 is E after round 60.
                    abef[i] = t;
                } else {
                    let u = _mm_sha256rnds2_epu32(abef[i], t, _mm_shuffle_epi32(wk, 0x0E));
                    cdgh[i] = t;
                    abef[i] = u;
                }
            }
        };
    }
    crate::__unroll!(group; 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15);

    // ---- second hash over the 32-byte first hash.
    let (iv_abef, iv_cdgh) = pack_state(&IV);
    for i in 0..STREAMS {
        let (abcd, efgh) = unpack_state(
            _mm_add_epi32(abef[i], mid_abef),
            _mm_add_epi32(cdgh[i], mid_cdgh),
        );
        m[i] = [
            abcd,
            efgh,
            _mm_set_epi32(0, 0, 0, PADDING_BIT as i32),
            _mm_set_epi32(HASH_BIT_LEN as i32, 0, 0, 0),
        ];
        abef[i] = iv_abef;
        cdgh[i] = iv_cdgh;
    }
    crate::__unroll!(group; 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14);
    group!(15, true);
    let iv7 = IV[7];
    core::array::from_fn(|i| (_mm_cvtsi128_si32(abef[i]) as u32).wrapping_add(iv7))
}

/// # Safety
/// The CPU must support SHA, SSSE3 and SSE4.1.
#[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
pub(super) unsafe fn scan(pre: &Precomputed, start: u32, count: u64, hits: &mut Vec<u32>) {
    // Rounds 0 and 1 of the first hash's second block do not involve the nonce.
    let (mid_abef, mid_cdgh) = pack_state(&pre.midstate);
    let [t0, t1, _] = pre.tail;
    let wk01 = _mm_set_epi32(
        0,
        0,
        t1.wrapping_add(K[1]) as i32,
        t0.wrapping_add(K[0]) as i32,
    );
    let abef_r2 = _mm_sha256rnds2_epu32(mid_cdgh, mid_abef, wk01);
    let cdgh_r2 = mid_abef;

    let mut done = 0u64;
    while done < count {
        let base = start.wrapping_add(done as u32);
        let nonces: [u32; STREAMS] = core::array::from_fn(|i| base.wrapping_add(i as u32));
        let h7 = final_h7(
            pre,
            abef_r2,
            cdgh_r2,
            mid_abef,
            mid_cdgh,
            nonces.map(u32::swap_bytes),
        );
        let live = (count - done).min(STREAMS as u64) as usize;
        for i in 0..live {
            if pre.h7_may_meet(h7[i]) {
                pre.confirm(nonces[i], hits);
            }
        }
        done += STREAMS as u64;
    }
}
