//! SHA-256 building blocks written for mining: the round constants, a `Word` abstraction so the
//! same unrolled code runs on one `u32` or on a vector of lanes, and a plain compression function
//! used for midstates. Reference: FIPS 180-4, sections 4.1.2, 4.2.2, 5.3.3 and 6.2.2.

/// Round constants K0..K63 (FIPS 180-4 §4.2.2).
pub const K: [u32; 64] = [
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
];

/// Initial hash value H(0) (FIPS 180-4 §5.3.3).
pub const IV: [u32; 8] = [
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
];

/// Message word 4 of the header's second block and word 8 of the second hash: the `1` padding bit.
pub const PADDING_BIT: u32 = 0x8000_0000;
/// Message word 15 of the header's second block: the header is 640 bits long.
pub const HEADER_BIT_LEN: u32 = 640;
/// Message word 15 of the second hash's block: the first hash is 256 bits long.
pub const HASH_BIT_LEN: u32 = 256;

/// A 32-bit SHA-256 word, or several of them processed side by side.
///
/// The unrolled compression code is generic over this trait, so one source serves the scalar
/// reference (`u32`) and the SIMD-friendly lane paths ([`Lanes`]). Every method is
/// `#[inline(always)]` in the implementations so that constant message words (zeros, padding)
/// fold away after unrolling.
pub trait Word: Copy {
    fn splat(v: u32) -> Self;
    fn add(self, o: Self) -> Self;
    fn xor(self, o: Self) -> Self;
    fn and(self, o: Self) -> Self;
    fn or(self, o: Self) -> Self;
    fn rotr(self, n: u32) -> Self;
    fn shr(self, n: u32) -> Self;
    /// Maj(self, b, c), written as b ^ ((a ^ b) & (b ^ c)): in consecutive rounds `b ^ c` is the
    /// previous round's `a ^ b` (same operands, same order), so the compiler shares it and Maj
    /// costs three operations instead of four (measured +2.6% on the AVX2 path). Words with a
    /// three-input logic instruction do it in one.
    #[inline(always)]
    fn maj(self, b: Self, c: Self) -> Self {
        b.xor(self.xor(b).and(b.xor(c)))
    }
}

impl Word for u32 {
    #[inline(always)]
    fn splat(v: u32) -> Self {
        v
    }
    #[inline(always)]
    fn add(self, o: Self) -> Self {
        self.wrapping_add(o)
    }
    #[inline(always)]
    fn xor(self, o: Self) -> Self {
        self ^ o
    }
    #[inline(always)]
    fn and(self, o: Self) -> Self {
        self & o
    }
    #[inline(always)]
    fn or(self, o: Self) -> Self {
        self | o
    }
    #[inline(always)]
    fn rotr(self, n: u32) -> Self {
        self.rotate_right(n)
    }
    #[inline(always)]
    fn shr(self, n: u32) -> Self {
        self >> n
    }
}

/// `L` independent SHA-256 words, one per nonce. Plain arrays with element-wise loops: LLVM turns
/// them into SSE2/AVX2/AVX-512 instructions depending on the target features of the caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lanes<const L: usize>(pub [u32; L]);

macro_rules! lanewise {
    ($self:ident, $o:ident, $f:expr) => {{
        let mut r = [0u32; L];
        let mut i = 0;
        while i < L {
            r[i] = $f($self.0[i], $o.0[i]);
            i += 1;
        }
        Lanes(r)
    }};
}

impl<const L: usize> Word for Lanes<L> {
    #[inline(always)]
    fn splat(v: u32) -> Self {
        Lanes([v; L])
    }
    #[inline(always)]
    fn add(self, o: Self) -> Self {
        lanewise!(self, o, u32::wrapping_add)
    }
    #[inline(always)]
    fn xor(self, o: Self) -> Self {
        lanewise!(self, o, |a: u32, b: u32| a ^ b)
    }
    #[inline(always)]
    fn and(self, o: Self) -> Self {
        lanewise!(self, o, |a: u32, b: u32| a & b)
    }
    #[inline(always)]
    fn or(self, o: Self) -> Self {
        lanewise!(self, o, |a: u32, b: u32| a | b)
    }
    #[inline(always)]
    fn rotr(self, n: u32) -> Self {
        let mut r = self.0;
        for x in r.iter_mut() {
            *x = x.rotate_right(n);
        }
        Lanes(r)
    }
    #[inline(always)]
    fn shr(self, n: u32) -> Self {
        let mut r = self.0;
        for x in r.iter_mut() {
            *x >>= n;
        }
        Lanes(r)
    }
}

#[inline(always)]
pub fn big_sigma0<W: Word>(x: W) -> W {
    x.rotr(2).xor(x.rotr(13)).xor(x.rotr(22))
}
#[inline(always)]
pub fn big_sigma1<W: Word>(x: W) -> W {
    x.rotr(6).xor(x.rotr(11)).xor(x.rotr(25))
}
#[inline(always)]
pub fn small_sigma0<W: Word>(x: W) -> W {
    x.rotr(7).xor(x.rotr(18)).xor(x.shr(3))
}
#[inline(always)]
pub fn small_sigma1<W: Word>(x: W) -> W {
    x.rotr(17).xor(x.rotr(19)).xor(x.shr(10))
}
/// Ch(e,f,g) = (e & f) ^ (!e & g), written as g ^ (e & (f ^ g)) to save the NOT.
#[inline(always)]
pub fn ch<W: Word>(e: W, f: W, g: W) -> W {
    g.xor(e.and(f.xor(g)))
}
/// Maj(a,b,c): see [`Word::maj`].
#[inline(always)]
pub fn maj<W: Word>(a: W, b: W, c: W) -> W {
    a.maj(b, c)
}

/// One SHA-256 round `t` on a rotating state array: at round `t` the working variable `a` lives in
/// `s[(8 - t % 8) % 8]`, `b` in the next slot, and so on. Only `d` and `h` are written, so no
/// values move; with a constant `t` after unrolling the indices are constants and the array
/// becomes registers.
#[inline(always)]
pub fn round<W: Word>(s: &mut [W; 8], t: usize, w: W) {
    let at = |i: usize| (8 + i - t % 8) % 8;
    let (a, b, c, d) = (s[at(0)], s[at(1)], s[at(2)], s[at(3)]);
    let (e, f, g, h) = (s[at(4)], s[at(5)], s[at(6)], s[at(7)]);
    let t1 = h
        .add(big_sigma1(e))
        .add(ch(e, f, g))
        .add(W::splat(K[t]))
        .add(w);
    let t2 = big_sigma0(a).add(maj(a, b, c));
    s[at(3)] = d.add(t1);
    s[at(7)] = t1.add(t2);
}

/// The state array of [`round`] after round `t - 1`, put back in a..h order.
#[inline(always)]
pub fn unrotate<W: Word>(s: [W; 8], t: usize) -> [W; 8] {
    core::array::from_fn(|i| s[(8 + i - t % 8) % 8])
}

/// Message schedule word `t >= 16` (FIPS 180-4 §6.2.2 step 1).
#[inline(always)]
pub fn schedule<W: Word>(w: &[W; 64], t: usize) -> W {
    small_sigma1(w[t - 2])
        .add(w[t - 7])
        .add(small_sigma0(w[t - 15]))
        .add(w[t - 16])
}

/// Expands to one call of `$m!(t)` per listed round number. Used to unroll round sequences
/// without relying on the optimiser's loop-unrolling heuristics.
#[macro_export]
#[doc(hidden)]
macro_rules! __unroll {
    ($m:ident; $($t:literal)*) => { $( $m!($t); )* };
}

/// The SHA-256 compression function, fully unrolled, on any [`Word`].
#[inline(always)]
pub fn compress<W: Word>(state: [W; 8], block: [W; 16]) -> [W; 8] {
    let mut w = [W::splat(0); 64];
    w[..16].copy_from_slice(&block);
    let mut s = state;
    macro_rules! step {
        ($t:literal) => {
            if $t >= 16 {
                w[$t] = schedule(&w, $t);
            }
            round(&mut s, $t, w[$t]);
        };
    }
    crate::__unroll!(step; 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27
        28 29 30 31 32 33 34 35 36 37 38 39 40 41 42 43 44 45 46 47 48 49 50 51 52 53 54 55 56 57
        58 59 60 61 62 63);
    let s = unrotate(s, 64);
    core::array::from_fn(|i| state[i].add(s[i]))
}

/// Big-endian words of a 64-byte block, as SHA-256 reads them.
pub fn block_words(bytes: &[u8; 64]) -> [u32; 16] {
    core::array::from_fn(|i| {
        u32::from_be_bytes([
            bytes[4 * i],
            bytes[4 * i + 1],
            bytes[4 * i + 2],
            bytes[4 * i + 3],
        ])
    })
}

/// The 32-byte digest for a final state (big-endian words).
pub fn state_bytes(state: &[u32; 8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (chunk, word) in out.chunks_exact_mut(4).zip(state) {
        chunk.copy_from_slice(&word.to_be_bytes());
    }
    out
}
