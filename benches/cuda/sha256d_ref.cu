// sha256d_ref.cu: a plain CUDA sha256d (Bitcoin) nonce search, the native
// reference that wgminer's GPU backend is measured against.
//
// Per nonce it does what a miner with a midstate does: two SHA-256
// compressions (the header's second block with the nonce, then the 32-byte
// first hash), then a full 256-bit compare with the target.  The hashing is
// in sha256d_core.h, shared with the CPU check sha256d_host_check.cpp.
// Written straightforwardly (one nonce per thread, `#pragma unroll` loops),
// no precomputed rounds, no early exit, no hand-written PTX.
//
// Build and run (on a machine with an NVIDIA GPU):
//   nvcc -O3 -arch=sm_90 -o /tmp/sha256d_ref benches/cuda/sha256d_ref.cu
//   /tmp/sha256d_ref [runs=7] [log2_nonces_per_run=32]
// It first checks the Bitcoin genesis block on the CPU and on the GPU (a
// search over 2^21 nonces around the known one, at the genesis target, must
// find it), then times `runs` sweeps of 2^log2 nonces each (after one
// warm-up sweep) with CUDA events and prints, as its last line, one JSON
// object whose first key is "cuda_ref_hashes_per_second" (the median sweep).
// Every full 2^32 sweep must also find the genesis nonce again.
// Exit status: 0 when all checks passed, 1 otherwise.

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "sha256d_core.h"

#define CK(call)                                                                              \
    do {                                                                                      \
        cudaError_t err_ = (call);                                                            \
        if (err_ != cudaSuccess) {                                                            \
            fprintf(stderr, "CUDA error %s (%d) at %s:%d: %s\n", cudaGetErrorName(err_),      \
                    (int)err_, __FILE__, __LINE__, #call);                                    \
            fprintf(stderr, "  %s\n", cudaGetErrorString(err_));                               \
            exit(1);                                                                          \
        }                                                                                     \
    } while (0)

static const char *GENESIS_HEADER_HEX =
    "0100000000000000000000000000000000000000000000000000000000000000"
    "000000003ba3edfd7a7b12b27ac72c3e67768f617fc81bc3888a51323a9fb8aa"
    "4b1e5e4a29ab5f49ffff001d1dac2b7c";
static const uint32_t GENESIS_NONCE = 0x7c2bac1du;
static const char *GENESIS_HASH_DISPLAY = "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f";

static const int MAX_HITS = 64;

struct Job {
    uint32_t midstate[8];
    uint32_t tail[3];
    uint32_t target[8];
};

struct Hits {
    unsigned int count;
    unsigned int nonce[MAX_HITS];
};

// One nonce per thread: nonce = base + global thread index (wraps mod 2^32).
__global__ void sha256d_search(Job job, uint32_t base, Hits *hits) {
    uint32_t nonce = base + (uint32_t)(blockIdx.x * blockDim.x + threadIdx.x);
    uint32_t out[8];
    sha256d_header_nonce(job.midstate, job.tail, nonce, out);
    if (sha256d_meets_target(out, job.target)) {
        unsigned int slot = atomicAdd(&hits->count, 1u);
        if (slot < (unsigned int)MAX_HITS) hits->nonce[slot] = nonce;
    }
}

static const int THREADS_PER_BLOCK = 256;

// Launches the search over [base, base + count), count a multiple of 256
// and at most 2^31; no synchronisation here.
static void launch_search(const Job &job, uint32_t base, uint64_t count, Hits *d_hits) {
    uint64_t blocks = count / THREADS_PER_BLOCK;
    sha256d_search<<<(unsigned int)blocks, THREADS_PER_BLOCK>>>(job, base, d_hits);
    CK(cudaGetLastError());
}

static bool parse_hex(const char *hex, uint8_t *out, size_t n) {
    if (strlen(hex) != 2 * n) return false;
    for (size_t i = 0; i < n; i++) {
        unsigned int v;
        if (sscanf(hex + 2 * i, "%2x", &v) != 1) return false;
        out[i] = (uint8_t)v;
    }
    return true;
}

// Display form: the hash bytes reversed, as hex.
static std::string display_hex(const uint32_t out[8]) {
    uint8_t bytes[32];
    for (int i = 0; i < 8; i++) {
        bytes[4 * i + 0] = (uint8_t)(out[i] >> 24);
        bytes[4 * i + 1] = (uint8_t)(out[i] >> 16);
        bytes[4 * i + 2] = (uint8_t)(out[i] >> 8);
        bytes[4 * i + 3] = (uint8_t)(out[i]);
    }
    std::string s;
    char buf[3];
    for (int i = 31; i >= 0; i--) {
        snprintf(buf, sizeof buf, "%02x", bytes[i]);
        s += buf;
    }
    return s;
}

static bool host_nonce_ok(const Job &job, uint32_t nonce) {
    uint32_t out[8];
    sha256d_header_nonce(job.midstate, job.tail, nonce, out);
    return sha256d_meets_target(out, job.target);
}

// Reads the hits back, checks each on the CPU; returns the number of valid
// hits, sets *found when `want` is among them, *bad to the invalid ones.
static unsigned int collect_hits(const Job &job, Hits *d_hits, uint32_t want, bool *found, unsigned int *bad) {
    Hits h;
    CK(cudaMemcpy(&h, d_hits, sizeof h, cudaMemcpyDeviceToHost));
    unsigned int n = std::min(h.count, (unsigned int)MAX_HITS);
    unsigned int good = 0;
    *found = false;
    *bad = 0;
    for (unsigned int i = 0; i < n; i++) {
        if (host_nonce_ok(job, h.nonce[i])) {
            good++;
        } else {
            (*bad)++;
            fprintf(stderr, "invalid hit reported: nonce 0x%08x\n", h.nonce[i]);
        }
        if (h.nonce[i] == want) *found = true;
    }
    return good;
}

int main(int argc, char **argv) {
    int runs = argc > 1 ? atoi(argv[1]) : 7;
    int log2_nonces = argc > 2 ? atoi(argv[2]) : 32;
    if (runs < 1 || runs > 100 || log2_nonces < 20 || log2_nonces > 40) {
        fprintf(stderr, "usage: %s [runs 1..100] [log2_nonces_per_run 20..40]\n", argv[0]);
        return 2;
    }
    const uint64_t nonces_per_run = 1ull << log2_nonces;
    const uint64_t chunk = std::min<uint64_t>(nonces_per_run, 1ull << 30);  // per launch

    // ---- CPU check of the hashing code against the genesis block ----
    uint8_t header[80];
    if (!parse_hex(GENESIS_HEADER_HEX, header, 80)) {
        fprintf(stderr, "bad genesis header hex\n");
        return 1;
    }
    Job job;
    sha256d_prepare(header, job.midstate, job.tail);
    uint32_t bits = sha_le32(header + 72);
    sha256d_bits_to_target(bits, job.target);
    uint32_t header_nonce = sha_le32(header + 76);
    uint32_t out[8];
    sha256d_header_nonce(job.midstate, job.tail, header_nonce, out);
    std::string disp = display_hex(out);
    bool cpu_ok = header_nonce == GENESIS_NONCE && disp == GENESIS_HASH_DISPLAY &&
                  sha256d_meets_target(out, job.target) && !host_nonce_ok(job, GENESIS_NONCE + 1);
    printf("cpu check: nonce 0x%08x hash %s -> %s\n", header_nonce, disp.c_str(), cpu_ok ? "PASS" : "FAIL");
    if (!cpu_ok) return 1;

    // ---- device ----
    int dev = 0;
    CK(cudaSetDevice(dev));
    cudaDeviceProp prop;
    CK(cudaGetDeviceProperties(&prop, dev));
    int driver_version = 0, runtime_version = 0;
    CK(cudaDriverGetVersion(&driver_version));
    CK(cudaRuntimeGetVersion(&runtime_version));
    printf("device: %s, sm_%d%d, %d SMs, driver API %d, runtime %d\n", prop.name, prop.major, prop.minor,
           prop.multiProcessorCount, driver_version, runtime_version);

    Hits *d_hits = nullptr;
    CK(cudaMalloc(&d_hits, sizeof(Hits)));

    // ---- GPU known answer: 2^21 nonces around the genesis nonce ----
    const uint64_t kat_count = 1ull << 21;
    const uint32_t kat_base = GENESIS_NONCE - (uint32_t)(kat_count / 2 - 12345);
    CK(cudaMemset(d_hits, 0, sizeof(Hits)));
    launch_search(job, kat_base, kat_count, d_hits);
    CK(cudaDeviceSynchronize());
    bool found = false;
    unsigned int bad = 0;
    unsigned int good = collect_hits(job, d_hits, GENESIS_NONCE, &found, &bad);
    bool gpu_ok = found && bad == 0;
    printf("gpu check: searched 0x%08x..+%llu at the genesis target: %u valid hit(s), %u invalid, genesis nonce %s -> %s\n",
           kat_base, (unsigned long long)kat_count, good, bad, found ? "found" : "NOT found", gpu_ok ? "PASS" : "FAIL");
    if (!gpu_ok) {
        printf("{\"cuda_ref_hashes_per_second\": null, \"error\": \"gpu known-answer check failed\"}\n");
        return 1;
    }

    // ---- timing ----
    cudaEvent_t ev_start, ev_stop;
    CK(cudaEventCreate(&ev_start));
    CK(cudaEventCreate(&ev_stop));

    auto sweep = [&](uint32_t base, float *ms) {
        CK(cudaMemset(d_hits, 0, sizeof(Hits)));
        CK(cudaEventRecord(ev_start));
        for (uint64_t done = 0; done < nonces_per_run; done += chunk)
            launch_search(job, base + (uint32_t)done, chunk, d_hits);
        CK(cudaEventRecord(ev_stop));
        CK(cudaEventSynchronize(ev_stop));
        CK(cudaEventElapsedTime(ms, ev_start, ev_stop));
    };

    float warm_ms = 0;
    sweep(0, &warm_ms);  // warm-up: module load, clocks ramp
    printf("warm-up sweep: %.1f ms for %llu nonces\n", warm_ms, (unsigned long long)nonces_per_run);

    std::vector<double> rates;
    bool sweeps_ok = true;
    for (int r = 0; r < runs; r++) {
        float ms = 0;
        sweep(0, &ms);
        bool f = false;
        unsigned int b = 0;
        unsigned int g = collect_hits(job, d_hits, GENESIS_NONCE, &f, &b);
        double rate = (double)nonces_per_run / (ms / 1000.0);
        rates.push_back(rate);
        bool must_find = log2_nonces >= 32;
        bool ok = b == 0 && (!must_find || f);
        sweeps_ok = sweeps_ok && ok;
        printf("run %d: %.2f ms, %.3f GH/s, %u valid hit(s)%s%s\n", r, ms, rate / 1e9, g,
               must_find ? (f ? ", genesis nonce found" : ", genesis nonce NOT found") : "",
               b ? ", INVALID HITS" : "");
    }
    CK(cudaEventDestroy(ev_start));
    CK(cudaEventDestroy(ev_stop));
    CK(cudaFree(d_hits));

    std::vector<double> sorted = rates;
    std::sort(sorted.begin(), sorted.end());
    double median = sorted.size() % 2 ? sorted[sorted.size() / 2]
                                      : 0.5 * (sorted[sorted.size() / 2 - 1] + sorted[sorted.size() / 2]);

    printf("{\"cuda_ref_hashes_per_second\": %.0f, \"min\": %.0f, \"max\": %.0f, \"runs\": %d, "
           "\"nonces_per_run\": %llu, \"device\": \"%s\", \"sm\": %d, \"checks\": \"%s\"}\n",
           median, sorted.front(), sorted.back(), runs, (unsigned long long)nonces_per_run, prop.name,
           prop.major * 10 + prop.minor, sweeps_ok ? "pass" : "FAIL");
    return sweeps_ok ? 0 : 1;
}
