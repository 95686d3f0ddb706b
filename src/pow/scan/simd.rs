//! x86-64 vector words for the lane scan: 4, 8 or 16 nonces per SSE2, AVX2 or AVX-512 register.
//!
//! LLVM does not vectorise the generic array [`Lanes`](crate::pow::sha256::Lanes) code well
//! (measured: it stays scalar), so these wrap the registers directly. The methods are
//! `#[inline(always)]` and only ever run inside functions compiled with the matching
//! `#[target_feature]`, where the intrinsics inline.

use core::arch::x86_64::*;

use crate::pow::sha256::Word;

#[derive(Clone, Copy)]
pub(crate) struct Sse2(pub __m128i);
#[derive(Clone, Copy)]
pub(crate) struct Avx2(pub __m256i);
#[derive(Clone, Copy)]
pub(crate) struct Avx512(pub __m512i);

// SAFETY (for every `unsafe` block below): SSE2 is part of the x86-64 baseline; the AVX2 and
// AVX-512 words are only constructed inside functions compiled with those features, which the
// dispatcher enables only after runtime detection.
/// `Word` for a 128- or 256-bit register type from its intrinsics (shifts take a count register).
macro_rules! vector_word {
    ($t:ident, $set1:ident, $add:ident, $xor:ident, $and:ident, $or:ident, $srl:ident, $sll:ident) => {
        impl Word for $t {
            #[inline(always)]
            fn splat(v: u32) -> Self {
                unsafe { $t($set1(v as i32)) }
            }
            #[inline(always)]
            fn add(self, o: Self) -> Self {
                unsafe { $t($add(self.0, o.0)) }
            }
            #[inline(always)]
            fn xor(self, o: Self) -> Self {
                unsafe { $t($xor(self.0, o.0)) }
            }
            #[inline(always)]
            fn and(self, o: Self) -> Self {
                unsafe { $t($and(self.0, o.0)) }
            }
            #[inline(always)]
            fn or(self, o: Self) -> Self {
                unsafe { $t($or(self.0, o.0)) }
            }
            #[inline(always)]
            fn rotr(self, n: u32) -> Self {
                unsafe {
                    $t($or(
                        $srl(self.0, _mm_cvtsi32_si128(n as i32)),
                        $sll(self.0, _mm_cvtsi32_si128(32 - n as i32)),
                    ))
                }
            }
            #[inline(always)]
            fn shr(self, n: u32) -> Self {
                unsafe { $t($srl(self.0, _mm_cvtsi32_si128(n as i32))) }
            }
        }
    };
}

vector_word!(
    Sse2,
    _mm_set1_epi32,
    _mm_add_epi32,
    _mm_xor_si128,
    _mm_and_si128,
    _mm_or_si128,
    _mm_srl_epi32,
    _mm_sll_epi32
);
vector_word!(
    Avx2,
    _mm256_set1_epi32,
    _mm256_add_epi32,
    _mm256_xor_si256,
    _mm256_and_si256,
    _mm256_or_si256,
    _mm256_srl_epi32,
    _mm256_sll_epi32
);

impl Word for Avx512 {
    #[inline(always)]
    fn splat(v: u32) -> Self {
        unsafe { Avx512(_mm512_set1_epi32(v as i32)) }
    }
    #[inline(always)]
    fn add(self, o: Self) -> Self {
        unsafe { Avx512(_mm512_add_epi32(self.0, o.0)) }
    }
    #[inline(always)]
    fn xor(self, o: Self) -> Self {
        unsafe { Avx512(_mm512_xor_si512(self.0, o.0)) }
    }
    #[inline(always)]
    fn and(self, o: Self) -> Self {
        unsafe { Avx512(_mm512_and_si512(self.0, o.0)) }
    }
    #[inline(always)]
    fn or(self, o: Self) -> Self {
        unsafe { Avx512(_mm512_or_si512(self.0, o.0)) }
    }
    #[inline(always)]
    fn rotr(self, n: u32) -> Self {
        unsafe { Avx512(_mm512_rorv_epi32(self.0, _mm512_set1_epi32(n as i32))) }
    }
    #[inline(always)]
    fn shr(self, n: u32) -> Self {
        unsafe { Avx512(_mm512_srl_epi32(self.0, _mm_cvtsi32_si128(n as i32))) }
    }
    #[inline(always)]
    fn maj(self, b: Self, c: Self) -> Self {
        // 0xE8: the majority of the three input bits. LLVM fused the shared-`a ^ b` form into
        // an xor plus a `vpternlogd`; one `vpternlogd` is +2-3% (BENCHMARKS.md, issue 15).
        unsafe { Avx512(_mm512_ternarylogic_epi32(self.0, b.0, c.0, 0xE8)) }
    }
}

impl Avx2 {
    /// Whether any lane, byte-swapped, is at most `limit` (unsigned).
    #[inline(always)]
    pub(crate) fn swapped_at_most(self, limit: u32) -> bool {
        unsafe {
            let reverse = _mm256_setr_epi8(
                3, 2, 1, 0, 7, 6, 5, 4, 11, 10, 9, 8, 15, 14, 13, 12, 3, 2, 1, 0, 7, 6, 5, 4, 11,
                10, 9, 8, 15, 14, 13, 12,
            );
            let x = _mm256_shuffle_epi8(self.0, reverse);
            let at_most =
                _mm256_cmpeq_epi32(_mm256_min_epu32(x, _mm256_set1_epi32(limit as i32)), x);
            _mm256_movemask_epi8(at_most) != 0
        }
    }
}

impl Avx512 {
    /// Whether any lane, byte-swapped, is at most `limit` (unsigned). AVX-512F has no byte
    /// shuffle: bytes 0 and 2 come from a left rotation by 8, bytes 1 and 3 from a right one.
    #[inline(always)]
    pub(crate) fn swapped_at_most(self, limit: u32) -> bool {
        unsafe {
            let left = _mm512_rol_epi32(self.0, 8);
            let right = _mm512_ror_epi32(self.0, 8);
            // 0xCA: first operand ? second : third, bit by bit.
            let x = _mm512_ternarylogic_epi32(
                _mm512_set1_epi32(0xFF00_FF00u32 as i32),
                right,
                left,
                0xCA,
            );
            _mm512_cmple_epu32_mask(x, _mm512_set1_epi32(limit as i32)) != 0
        }
    }
}
