// sha256d_host_check.cpp: checks the hashing code that sha256d_ref.cu runs
// on the GPU (sha256d_core.h), on the CPU, with no CUDA needed.
//   g++ -O2 -Wall -Wextra -o /tmp/sha256d_host_check benches/cuda/sha256d_host_check.cpp && /tmp/sha256d_host_check
// Checks: SHA-256("abc") and the 2-block NIST vector through sha256_compress;
// the genesis block header's sha256d; the midstate path the kernel uses over
// 2^16 nonces around the genesis nonce at the genesis target, which must hit
// exactly once, at the genesis nonce.  Prints "N passed, N failed".
#include <cstdio>
#include <cstring>
#include <string>

#include "sha256d_core.h"

static int passed = 0, failed = 0;

static void check(bool ok, const char *what) {
    printf("%s: %s\n", ok ? "ok  " : "FAIL", what);
    (ok ? passed : failed)++;
}

static std::string hex_words(const uint32_t s[8]) {
    char buf[65];
    for (int i = 0; i < 8; i++) snprintf(buf + 8 * i, 9, "%08x", s[i]);
    return buf;
}

// Plain SHA-256 of a short message (up to 119 bytes) through sha256_compress.
static std::string sha256_hex(const char *msg) {
    size_t n = strlen(msg);
    uint8_t buf[128] = {0};
    memcpy(buf, msg, n);
    buf[n] = 0x80;
    size_t blocks = (n + 9 <= 64) ? 1 : 2;
    uint64_t bitlen = (uint64_t)n * 8;
    for (int i = 0; i < 8; i++) buf[blocks * 64 - 1 - i] = (uint8_t)(bitlen >> (8 * i));
    uint32_t st[8];
    sha256_init(st);
    for (size_t b = 0; b < blocks; b++) {
        uint32_t w[16];
        for (int i = 0; i < 16; i++) w[i] = sha_be32(buf + 64 * b + 4 * i);
        sha256_compress(st, w);
    }
    return hex_words(st);
}

int main() {
    check(sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", "sha256(\"abc\")");
    check(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq") ==
              "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
          "sha256 of the 56-byte NIST vector (2 blocks)");

    const char *hdr_hex =
        "0100000000000000000000000000000000000000000000000000000000000000"
        "000000003ba3edfd7a7b12b27ac72c3e67768f617fc81bc3888a51323a9fb8aa"
        "4b1e5e4a29ab5f49ffff001d1dac2b7c";
    uint8_t header[80];
    for (int i = 0; i < 80; i++) {
        unsigned v;
        sscanf(hdr_hex + 2 * i, "%2x", &v);
        header[i] = (uint8_t)v;
    }
    uint32_t mid[8], tail[3], target[8], out[8];
    sha256d_prepare(header, mid, tail);
    sha256d_bits_to_target(sha_le32(header + 72), target);
    uint32_t nonce = sha_le32(header + 76);
    check(nonce == 0x7c2bac1du, "genesis nonce read little-endian = 0x7c2bac1d");
    check(target[7] == 0 && target[6] == 0xffff0000u && target[5] == 0 && target[0] == 0,
          "bits 0x1d00ffff -> target 0x00000000ffff0000...");

    sha256d_header_nonce(mid, tail, nonce, out);
    char disp[65];
    for (int i = 0; i < 32; i++) {  // display = hash bytes reversed
        int j = 31 - i;
        snprintf(disp + 2 * i, 3, "%02x", (out[j / 4] >> (8 * (3 - j % 4))) & 0xff);
    }
    printf("      genesis sha256d (display) = %s\n", disp);
    check(strcmp(disp, "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f") == 0,
          "genesis header sha256d through midstate + two compressions");
    check(sha256d_meets_target(out, target), "genesis hash meets the genesis target");

    // Same as the kernel: scan a range, count hits.
    int hits = 0;
    bool found = false;
    uint32_t base = nonce - 30000;
    for (uint32_t k = 0; k < (1u << 16); k++) {
        uint32_t n = base + k;
        sha256d_header_nonce(mid, tail, n, out);
        if (sha256d_meets_target(out, target)) {
            hits++;
            found = found || n == nonce;
        }
    }
    check(hits == 1 && found, "scan of 2^16 nonces around it hits once, at the genesis nonce");

    // Target compare edges.
    uint32_t t[8] = {0, 0, 0, 0, 0, 0, 0xffff0000u, 0};
    uint32_t h[8] = {0};
    h[6] = sha_bswap32(0xffff0000u);  // equal to the target
    check(sha256d_meets_target(h, t), "hash == target meets it");
    h[6] = sha_bswap32(0xffff0001u);
    check(!sha256d_meets_target(h, t), "hash == target + 2^192 does not");
    h[6] = sha_bswap32(0xffff0000u);
    h[0] = 1;
    check(!sha256d_meets_target(h, t), "hash == target + small does not");

    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
