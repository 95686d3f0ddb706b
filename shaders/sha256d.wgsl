// SHA-256d nonce search: the TEMPLATE of the mining kernel.
//
// build.rs replaces each generate-marker line (see MARKER in build.rs) with straight-line
// code (every round unrolled, K constants inlined, constant message words folded away,
// row-invariant values hoisted above the nonce loop) and validates the result with naga. Each
// kernel variant is written to OUT_DIR/sha256d_<name>.wgsl (sha256d_x1.wgsl, sha256d_m4.wgsl,
// ...); read those files to see what the GPU runs. The variants are listed once, in build.rs.
//
// One dispatch covers up to MAX_ROWS rows; a row is a run of nonces of one work unit, with
// everything that does not depend on the nonce precomputed on the host (see `Row`). The grid is
// (x: workgroups along the row, y: row). Each invocation hashes NPT consecutive nonces.
//
// Two entry points, the same search in two loop shapes; a variant's module keeps only its own
// (see LANES_MARKER in build.rs):
//   search     (x1, m1..m4): one nonce per loop iteration;
//   search_x2  (x2, m1x2..m4x2): two nonces per loop iteration, as two independent SHA-256d
//                    chains whose lines are interleaved, for more instruction-level parallelism.
//
// The multiply-add variants (m1..m4) write some additions `x * one + y` (`one` being knobs.x of
// the row, always 1), so that NVIDIA compilers emit IMAD on the FMA pipe for them instead of
// IADD3 on the integer ALU pipe. Same hashes, different instruction mix.
//
// Early exit: the second hash stops once round 60's `e` is known, because the last state word
// H7 = IV7 + e(after round 60). Only a nonce whose byte-swapped H7 is at or below target limb 7
// (for any target at or below difficulty 1 that means H7 == 0) finishes rounds 61..63 and is
// compared against the full 256-bit target, so easy targets return exactly the right set.

// Invocations per workgroup and nonces per invocation: pipeline-overridable, set by the host.
override WG: u32 = 256u;
override NPT: u32 = 8u;

// Rows per dispatch; the host's `kernel::MAX_ROWS` must match.
const MAX_ROWS: u32 = 256u;

// Everything about one row that does not depend on the nonce (host: `kernel::Row`).
struct Row {
    // SHA-256 state after header bytes 0..64.
    midstate_lo: vec4<u32>,
    midstate_hi: vec4<u32>,
    // State a..h of the header's second block after rounds 0..2.
    state3_lo: vec4<u32>,
    state3_hi: vec4<u32>,
    // Target limbs, least significant first (limb j compares with byteswap(H[j])).
    target_lo: vec4<u32>,
    target_hi: vec4<u32>,
    // W16, W17, W18 - sigma0(W3), W19 - W3.
    sched: vec4<u32>,
    // Round 3's nonce-independent halves of T1 and T2, then the row's first nonce and length.
    misc: vec4<u32>,
    // x: always 1, the runtime `one` of the multiply-add variants (the generated prelude of
    // sha256d_m*.wgsl reads it), which no compiler can fold; y, z, w: reserved, 0.
    knobs: vec4<u32>,
}

// Hits: an atomic counter and (row, nonce) pairs. The counter keeps counting past the
// capacity, so the host knows when hits were dropped and re-scans that dispatch on the CPU.
struct Hits {
    count: atomic<u32>,
    reserved: u32,
    items: array<vec2<u32>>,
}

@group(0) @binding(0) var<uniform> rows: array<Row, MAX_ROWS>;
@group(0) @binding(1) var<storage, read_write> hits: Hits;

fn bswap(x: u32) -> u32 {
    return (x << 24u) | ((x & 0xff00u) << 8u) | ((x >> 8u) & 0xff00u) | (x >> 24u);
}

// The early-exit filter: can a hash whose last state word is `h7` meet a target whose top limb
// is `lim7`? For lim7 == 0 (difficulty >= 1, the common case) the byte swap is skipped; lim7 is
// the same for the whole row, so the branch does not diverge.
fn may_meet(h7: u32, lim7: u32) -> bool {
    if (lim7 == 0u) {
        return h7 == 0u;
    }
    return bswap(h7) <= lim7;
}

// Full comparison, byteswap(H) <= target as 256-bit numbers. Walks from the least significant
// limb up so that the most significant differing limb decides.
fn meets_target(h_lo: vec4<u32>, h_hi: vec4<u32>, t_lo: vec4<u32>, t_hi: vec4<u32>) -> bool {
    var ok = true;
    for (var j = 0u; j < 8u; j++) {
        var v: u32;
        var l: u32;
        if (j < 4u) {
            v = bswap(h_lo[j]);
            l = t_lo[j];
        } else {
            v = bswap(h_hi[j - 4u]);
            l = t_hi[j - 4u];
        }
        if (v != l) {
            ok = v < l;
        }
    }
    return ok;
}

fn record(row: u32, nonce: u32) {
    let slot = atomicAdd(&hits.count, 1u);
    if (slot < arrayLength(&hits.items)) {
        hits.items[slot] = vec2<u32>(row, nonce);
    }
}

//@lanes x1
@compute @workgroup_size(WG)
fn search(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let ri = wid.y;
    let misc = rows[ri].misc;
    let first = (wid.x * WG + lid) * NPT;
    if (first >= misc.w) {
        return;
    }
    let n = min(NPT, misc.w - first);
    let base = misc.z + first;

    let mid_lo = rows[ri].midstate_lo;
    let mid_hi = rows[ri].midstate_hi;
    let st_lo = rows[ri].state3_lo;
    let st_hi = rows[ri].state3_hi;
    let sched = rows[ri].sched;
    let lim7 = rows[ri].target_hi.w;
    let r3t1 = misc.x;
    let r3t2 = misc.y;

    //@generate prelude

    for (var k = 0u; k < n; k++) {
        let nonce = base + k;
        // The nonce is serialized little-endian and read big-endian by SHA-256.
        let w3 = bswap(nonce);

        //@generate body

        if (may_meet(h7, lim7)) {
            //@generate finish
            if (meets_target(fin_lo, fin_hi, rows[ri].target_lo, rows[ri].target_hi)) {
                record(ri, nonce);
            }
        }
    }
}

//@lanes all

//@lanes x2
// x2: nonces k and k + 1 of the invocation in one iteration. The second of an odd count is
// hashed but never reported.
@compute @workgroup_size(WG)
fn search_x2(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let ri = wid.y;
    let misc = rows[ri].misc;
    let first = (wid.x * WG + lid) * NPT;
    if (first >= misc.w) {
        return;
    }
    let n = min(NPT, misc.w - first);
    let base = misc.z + first;

    let mid_lo = rows[ri].midstate_lo;
    let mid_hi = rows[ri].midstate_hi;
    let st_lo = rows[ri].state3_lo;
    let st_hi = rows[ri].state3_hi;
    let sched = rows[ri].sched;
    let lim7 = rows[ri].target_hi.w;
    let r3t1 = misc.x;
    let r3t2 = misc.y;

    //@generate prelude

    for (var k = 0u; k < n; k += 2u) {
        let nonce_a = base + k;
        let nonce_b = nonce_a + 1u;
        let w3_a = bswap(nonce_a);
        let w3_b = bswap(nonce_b);

        //@generate body_x2

        if (may_meet(h7_a, lim7)) {
            //@generate finish_x2_a
            if (meets_target(fin_lo_a, fin_hi_a, rows[ri].target_lo, rows[ri].target_hi)) {
                record(ri, nonce_a);
            }
        }
        if (k + 1u < n && may_meet(h7_b, lim7)) {
            //@generate finish_x2_b
            if (meets_target(fin_lo_b, fin_hi_b, rows[ri].target_lo, rows[ri].target_hi)) {
                record(ri, nonce_b);
            }
        }
    }
}
//@lanes all
