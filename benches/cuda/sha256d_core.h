// sha256d_core.h: plain SHA-256 code shared by the CUDA reference
// (sha256d_ref.cu, compiled by nvcc) and its CPU check
// (sha256d_host_check.cpp, compiled by g++/clang++).
//
// Written the straightforward way: a message schedule array, a 64-round loop
// under `#pragma unroll`, the round constants in a local array.  No
// precomputed rounds, no early exit: per nonce, the miner work is exactly two
// compressions (header block 2 with the nonce on top of the midstate, then
// the 32-byte first hash).
#pragma once

#include <stdint.h>

#if defined(__CUDACC__)
#define SHA_HD __host__ __device__ __forceinline__
#else
#define SHA_HD static inline
#endif

#if defined(__CUDACC__)
#define SHA_UNROLL _Pragma("unroll")
#else
#define SHA_UNROLL
#endif

SHA_HD uint32_t sha_rotr(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

SHA_HD uint32_t sha_bswap32(uint32_t x) {
#if defined(__CUDA_ARCH__)
    return __byte_perm(x, 0, 0x0123);
#else
    return (x >> 24) | ((x >> 8) & 0x0000ff00u) | ((x << 8) & 0x00ff0000u) | (x << 24);
#endif
}

// Big-endian 32-bit read of 4 bytes.
SHA_HD uint32_t sha_be32(const uint8_t *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

// Little-endian 32-bit read of 4 bytes.
SHA_HD uint32_t sha_le32(const uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

SHA_HD void sha256_init(uint32_t state[8]) {
    state[0] = 0x6a09e667u; state[1] = 0xbb67ae85u; state[2] = 0x3c6ef372u; state[3] = 0xa54ff53au;
    state[4] = 0x510e527fu; state[5] = 0x9b05688cu; state[6] = 0x1f83d9abu; state[7] = 0x5be0cd19u;
}

// One SHA-256 compression of the 16 big-endian words `block` into `state`.
SHA_HD void sha256_compress(uint32_t state[8], const uint32_t block[16]) {
    const uint32_t K[64] = {
        0x428a2f98u, 0x71374491u, 0xb5c0fbcfu, 0xe9b5dba5u, 0x3956c25bu, 0x59f111f1u, 0x923f82a4u, 0xab1c5ed5u,
        0xd807aa98u, 0x12835b01u, 0x243185beu, 0x550c7dc3u, 0x72be5d74u, 0x80deb1feu, 0x9bdc06a7u, 0xc19bf174u,
        0xe49b69c1u, 0xefbe4786u, 0x0fc19dc6u, 0x240ca1ccu, 0x2de92c6fu, 0x4a7484aau, 0x5cb0a9dcu, 0x76f988dau,
        0x983e5152u, 0xa831c66du, 0xb00327c8u, 0xbf597fc7u, 0xc6e00bf3u, 0xd5a79147u, 0x06ca6351u, 0x14292967u,
        0x27b70a85u, 0x2e1b2138u, 0x4d2c6dfcu, 0x53380d13u, 0x650a7354u, 0x766a0abbu, 0x81c2c92eu, 0x92722c85u,
        0xa2bfe8a1u, 0xa81a664bu, 0xc24b8b70u, 0xc76c51a3u, 0xd192e819u, 0xd6990624u, 0xf40e3585u, 0x106aa070u,
        0x19a4c116u, 0x1e376c08u, 0x2748774cu, 0x34b0bcb5u, 0x391c0cb3u, 0x4ed8aa4au, 0x5b9cca4fu, 0x682e6ff3u,
        0x748f82eeu, 0x78a5636fu, 0x84c87814u, 0x8cc70208u, 0x90befffau, 0xa4506cebu, 0xbef9a3f7u, 0xc67178f2u,
    };

    uint32_t w[64];
    SHA_UNROLL
    for (int i = 0; i < 16; i++) w[i] = block[i];
    SHA_UNROLL
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = sha_rotr(w[i - 15], 7) ^ sha_rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = sha_rotr(w[i - 2], 17) ^ sha_rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }

    uint32_t a = state[0], b = state[1], c = state[2], d = state[3];
    uint32_t e = state[4], f = state[5], g = state[6], h = state[7];
    SHA_UNROLL
    for (int i = 0; i < 64; i++) {
        uint32_t S1 = sha_rotr(e, 6) ^ sha_rotr(e, 11) ^ sha_rotr(e, 25);
        uint32_t ch = (e & f) ^ (~e & g);
        uint32_t t1 = h + S1 + ch + K[i] + w[i];
        uint32_t S0 = sha_rotr(a, 2) ^ sha_rotr(a, 13) ^ sha_rotr(a, 22);
        uint32_t maj = (a & b) ^ (a & c) ^ (b & c);
        uint32_t t2 = S0 + maj;
        h = g; g = f; f = e; e = d + t1;
        d = c; c = b; b = a; a = t1 + t2;
    }
    state[0] += a; state[1] += b; state[2] += c; state[3] += d;
    state[4] += e; state[5] += f; state[6] += g; state[7] += h;
}

// The per-nonce miner work.  `midstate` is the state after the header's
// first 64 bytes, `tail` the big-endian words of header bytes 64..75
// (merkle root end, time, bits), `nonce` the header's nonce as the number
// stored little-endian at bytes 76..79.  Writes the final hash state
// (big-endian words: hash byte 4*i+j is byte j of out[i] read big-endian).
SHA_HD void sha256d_header_nonce(const uint32_t midstate[8], const uint32_t tail[3], uint32_t nonce,
                                 uint32_t out[8]) {
    uint32_t block[16];
    uint32_t st[8];

    // Second block of the 80-byte header: 16 bytes of data, then padding.
    block[0] = tail[0];
    block[1] = tail[1];
    block[2] = tail[2];
    block[3] = sha_bswap32(nonce);
    block[4] = 0x80000000u;
    SHA_UNROLL
    for (int i = 5; i < 15; i++) block[i] = 0;
    block[15] = 80 * 8;
    SHA_UNROLL
    for (int i = 0; i < 8; i++) st[i] = midstate[i];
    sha256_compress(st, block);

    // SHA-256 of the 32-byte first hash: one block.
    SHA_UNROLL
    for (int i = 0; i < 8; i++) block[i] = st[i];
    block[8] = 0x80000000u;
    SHA_UNROLL
    for (int i = 9; i < 15; i++) block[i] = 0;
    block[15] = 32 * 8;
    sha256_init(out);
    sha256_compress(out, block);
}

// Bitcoin compares the hash as a 256-bit little-endian number.  target[]
// holds that number's 32-bit limbs, least significant first.  The limb i of
// the hash is bswap(out[i]).
SHA_HD bool sha256d_meets_target(const uint32_t out[8], const uint32_t target[8]) {
    SHA_UNROLL
    for (int i = 7; i >= 0; i--) {
        uint32_t v = sha_bswap32(out[i]);
        if (v < target[i]) return true;
        if (v > target[i]) return false;
    }
    return true;  // equal counts as meeting it
}

// Compact "bits" (as stored little-endian at header bytes 72..75) to target limbs.
SHA_HD void sha256d_bits_to_target(uint32_t bits, uint32_t target[8]) {
    for (int i = 0; i < 8; i++) target[i] = 0;
    uint32_t exponent = bits >> 24;
    uint32_t mantissa = bits & 0x007fffffu;
    // target = mantissa * 256^(exponent - 3); place byte by byte.
    for (int k = 0; k < 3; k++) {
        int byte_pos = (int)exponent - 3 + k;  // position of mantissa byte k (LSB first)
        uint32_t byte = (mantissa >> (8 * k)) & 0xffu;
        if (byte_pos >= 0 && byte_pos < 32) target[byte_pos / 4] |= byte << (8 * (byte_pos % 4));
    }
}

// Midstate of the header's first 64 bytes and the tail words of bytes 64..75.
SHA_HD void sha256d_prepare(const uint8_t header[80], uint32_t midstate[8], uint32_t tail[3]) {
    uint32_t block[16];
    for (int i = 0; i < 16; i++) block[i] = sha_be32(header + 4 * i);
    sha256_init(midstate);
    sha256_compress(midstate, block);
    for (int i = 0; i < 3; i++) tail[i] = sha_be32(header + 64 + 4 * i);
}
