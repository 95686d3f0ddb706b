//! The SHA-NI scan: x86 SHA extensions (`sha256rnds2`, `sha256msg1`, `sha256msg2`), with
//! [`STREAMS`] nonces interleaved so that one nonce's dependent round instructions overlap the
//! others' (each `sha256rnds2` waits several cycles for the previous one of its own stream).
//!
//! Register layout follows Intel's SHA extensions guide: the state lives in two vectors, ABEF and
//! CDGH (A in the top lane), and `sha256rnds2` does two rounds with the low two lanes of the
//! message-plus-constant vector.
//!
//! On the CPUs measured (BENCHMARKS.md, issue 15) this path is bound by `sha256rnds2` throughput,
//! so the work per nonce is cut where it costs `sha256rnds2` or other vector instructions:
//! - rounds 0..3 of the header's second block are not run: the state after round 3 is the
//!   precomputed state plus the nonce word in lanes A and E (round 3 adds `W3` to both), which
//!   saves one `sha256rnds2` and starts the rounds on an even pair;
//! - rounds whose message word is a constant (4..15 of the first hash, 8..15 of the second) take
//!   their `W + K` pairs from precomputed vectors: no add, no shuffle;
//! - the second hash stops after rounds 60 and 61, the pair that fixes `H7`.

use core::arch::x86_64::*;

use super::Precomputed;
use crate::pow::sha256::{HASH_BIT_LEN, HEADER_BIT_LEN, IV, K, PADDING_BIT};

/// Nonces hashed side by side. 2, 3, 4 and 6 measured the same on an Intel Xeon (family 6
/// model 167, where `sha256rnds2` issues every ~3 cycles with 4 cycles latency); four also
/// covers the latency on AMD cores without spilling much (see BENCHMARKS.md).
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

/// Per-unit vectors: everything the rounds need that does not depend on the nonce.
struct Consts {
    /// (ABEF, CDGH) after round 3 of the header's second block, without the nonce word.
    abef3: __m128i,
    cdgh3: __m128i,
    mid_abef: __m128i,
    mid_cdgh: __m128i,
    /// Message words 0..3 of the second block with a zero nonce word.
    m0: __m128i,
    /// `W + K` pairs (low two lanes) for the first hash's rounds 4..15.
    wk1: [__m128i; 6],
    /// `W + K` pairs for the second hash's rounds 8..15.
    wk2: [__m128i; 4],
}

impl Consts {
    #[inline(always)]
    unsafe fn new(pre: &Precomputed) -> Self {
        // Round 3 without its message word W3; W3 enters a and e only, by addition.
        let [a, b, c, d, e, f, g, _h] = pre.state3;
        let t1 = pre.round3_t1;
        let after3 = [
            t1.wrapping_add(pre.round3_t2),
            a,
            b,
            c,
            d.wrapping_add(t1),
            e,
            f,
            g,
        ];
        let (abef3, cdgh3) = pack_state(&after3);
        let (mid_abef, mid_cdgh) = pack_state(&pre.midstate);
        let mut w1 = [0u32; 16];
        w1[4] = PADDING_BIT;
        w1[15] = HEADER_BIT_LEN;
        let mut w2 = [0u32; 16];
        w2[8] = PADDING_BIT;
        w2[15] = HASH_BIT_LEN;
        let pair = |w: &[u32; 16], t: usize| {
            let lo = w[t].wrapping_add(K[t]) as i32;
            let hi = w[t + 1].wrapping_add(K[t + 1]) as i32;
            _mm_set_epi32(0, 0, hi, lo)
        };
        let [t0, t1, t2] = pre.tail.map(|x| x as i32);
        Consts {
            abef3,
            cdgh3,
            mid_abef,
            mid_cdgh,
            m0: _mm_set_epi32(0, t2, t1, t0),
            wk1: core::array::from_fn(|j| pair(&w1, 4 + 2 * j)),
            wk2: core::array::from_fn(|j| pair(&w2, 8 + 2 * j)),
        }
    }
}

/// Next schedule group: W[t..t+4] from the four previous groups.
#[inline(always)]
unsafe fn next_group(m0: __m128i, m1: __m128i, m2: __m128i, m3: __m128i) -> __m128i {
    let w9_12 = _mm_alignr_epi8(m3, m2, 4);
    _mm_sha256msg2_epu32(_mm_add_epi32(_mm_sha256msg1_epu32(m0, m1), w9_12), m3)
}

/// Last state word of the second hash for STREAMS nonce words (early exit after round 61).
#[inline(always)]
unsafe fn final_h7(c: &Consts, w3: [u32; STREAMS]) -> [u32; STREAMS] {
    let mut m: [[__m128i; 4]; STREAMS] = [[_mm_setzero_si128(); 4]; STREAMS];
    let mut abef = [_mm_setzero_si128(); STREAMS];
    let mut cdgh = [c.cdgh3; STREAMS];
    for i in 0..STREAMS {
        let n = w3[i] as i32;
        abef[i] = _mm_add_epi32(c.abef3, _mm_set_epi32(n, 0, n, 0));
        m[i] = [
            _mm_insert_epi32(c.m0, n, 3),
            _mm_set_epi32(0, 0, 0, PADDING_BIT as i32),
            _mm_setzero_si128(),
            _mm_set_epi32(HEADER_BIT_LEN as i32, 0, 0, 0),
        ];
    }
    // Two rounds with a ready `W + K` pair (an expression of the stream index), every stream.
    macro_rules! pair {
        ($i:ident => $wk:expr) => {
            for $i in 0..STREAMS {
                let t = _mm_sha256rnds2_epu32(cdgh[$i], abef[$i], $wk);
                cdgh[$i] = abef[$i];
                abef[$i] = t;
            }
        };
    }
    // Four rounds whose message words come from the schedule.
    macro_rules! group {
        ($g:literal) => {
            group!($g, false)
        };
        ($g:literal, $last:expr) => {
            for i in 0..STREAMS {
                m[i][$g % 4] = next_group(
                    m[i][$g % 4],
                    m[i][($g + 1) % 4],
                    m[i][($g + 2) % 4],
                    m[i][($g + 3) % 4],
                );
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
    // ---- first hash, second block: rounds 4..15 have constant message words.
    for j in 0..6 {
        pair!(i => c.wk1[j]);
    }
    crate::__unroll!(group; 4 5 6 7 8 9 10 11 12 13 14 15);

    // ---- second hash over the 32-byte first hash.
    let (iv_abef, iv_cdgh) = pack_state(&IV);
    // `W + K` pairs for rounds 0..7, pair-major: wk0[pair][stream].
    let mut wk0 = [[_mm_setzero_si128(); STREAMS]; 4];
    for i in 0..STREAMS {
        let (abcd, efgh) = unpack_state(
            _mm_add_epi32(abef[i], c.mid_abef),
            _mm_add_epi32(cdgh[i], c.mid_cdgh),
        );
        m[i] = [
            abcd,
            efgh,
            _mm_set_epi32(0, 0, 0, PADDING_BIT as i32),
            _mm_set_epi32(HASH_BIT_LEN as i32, 0, 0, 0),
        ];
        let (lo, hi) = (_mm_add_epi32(abcd, k4(0)), _mm_add_epi32(efgh, k4(1)));
        wk0[0][i] = lo;
        wk0[1][i] = _mm_shuffle_epi32(lo, 0x0E);
        wk0[2][i] = hi;
        wk0[3][i] = _mm_shuffle_epi32(hi, 0x0E);
        abef[i] = iv_abef;
        cdgh[i] = iv_cdgh;
    }
    for wk in &wk0 {
        pair!(i => wk[i]);
    }
    for j in 0..4 {
        pair!(i => c.wk2[j]);
    }
    crate::__unroll!(group; 4 5 6 7 8 9 10 11 12 13 14);
    group!(15, true);
    let iv7 = IV[7];
    core::array::from_fn(|i| (_mm_cvtsi128_si32(abef[i]) as u32).wrapping_add(iv7))
}

/// # Safety
/// The CPU must support SHA, SSSE3 and SSE4.1.
#[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
pub(super) unsafe fn scan(pre: &Precomputed, start: u32, count: u64, hits: &mut Vec<u32>) {
    let c = Consts::new(pre);
    let mut done = 0u64;
    while done < count {
        let base = start.wrapping_add(done as u32);
        let nonces: [u32; STREAMS] = core::array::from_fn(|i| base.wrapping_add(i as u32));
        let h7 = final_h7(&c, nonces.map(u32::swap_bytes));
        let live = (count - done).min(STREAMS as u64) as usize;
        for i in 0..live {
            if pre.h7_may_meet(h7[i]) {
                pre.confirm(nonces[i], hits);
            }
        }
        done += STREAMS as u64;
    }
}
