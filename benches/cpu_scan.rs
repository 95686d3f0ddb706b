//! CPU hashing throughput, one thread, per scan path, next to the baseline every figure is
//! compared with: a plain `sha2::compress256` loop over the same header with a midstate.
//! Also the cost of deriving a work unit (midstate + nonce-independent precomputation).
//!
//! `cargo bench --bench cpu_scan`; results are recorded in BENCHMARKS.md.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use sha2::digest::generic_array::GenericArray;
use std::hint::black_box;
use wgminer::pow::scan::scan;
use wgminer::pow::sha256::IV;
use wgminer::pow::{target_from_bits, target_limbs, Precomputed, ScanPath};
use wgminer::work::{NonceRange, WorkUnit};

const GENESIS: &str = "0100000000000000000000000000000000000000000000000000000000000000000000003ba3edfd7a7b12b27ac72c3e67768f617fc81bc3888a51323a9fb8aa4b1e5e4a29ab5f49ffff001d1dac2b7c";
const NONCES: u64 = 1 << 16;

fn header() -> [u8; 80] {
    let mut h = [0u8; 80];
    for (i, b) in h.iter_mut().enumerate() {
        *b = u8::from_str_radix(&GENESIS[2 * i..2 * i + 2], 16).unwrap();
    }
    h
}

/// The baseline: sha256d of each nonce with the `sha2` crate's compression function (which uses
/// SHA-NI itself where the CPU has it), resuming from a midstate, with a full target compare.
fn sha2_loop(header: &[u8; 80], start: u32, count: u64, limbs: &[u32; 8]) -> usize {
    let mut mid = IV;
    sha2::compress256(&mut mid, &[*GenericArray::from_slice(&header[..64])]);
    let mut block = [0u8; 64];
    block[..16].copy_from_slice(&header[64..80]);
    block[16] = 0x80;
    block[62] = 0x02;
    block[63] = 0x80;
    let mut second = [0u8; 64];
    second[32] = 0x80;
    second[62] = 0x01;
    let mut found = 0;
    for i in 0..count {
        block[12..16].copy_from_slice(&start.wrapping_add(i as u32).to_le_bytes());
        let mut s = mid;
        sha2::compress256(&mut s, &[*GenericArray::from_slice(&block)]);
        for (j, w) in s.iter().enumerate() {
            second[4 * j..4 * j + 4].copy_from_slice(&w.to_be_bytes());
        }
        let mut s2 = IV;
        sha2::compress256(&mut s2, &[*GenericArray::from_slice(&second)]);
        if wgminer::pow::target::state_meets_limbs(&s2, limbs) {
            found += 1;
        }
    }
    found
}

fn scan_paths(c: &mut Criterion) {
    let header = header();
    let limbs = target_limbs(&target_from_bits(0x1d00ffff));
    let pre = Precomputed::from_header(&header, limbs);
    let mut group = c.benchmark_group("sha256d_scan_1_thread");
    group.throughput(Throughput::Elements(NONCES));
    group.bench_function("sha2-compress256-baseline", |b| {
        b.iter(|| black_box(sha2_loop(&header, 0, NONCES, &limbs)))
    });
    for path in ScanPath::available() {
        group.bench_with_input(
            BenchmarkId::from_parameter(path.name()),
            &path,
            |b, &path| {
                let mut hits = Vec::new();
                b.iter(|| {
                    hits.clear();
                    scan(path, black_box(&pre), 0, NONCES, &mut hits);
                    black_box(hits.len())
                })
            },
        );
    }
    group.finish();
}

fn unit_derivation(c: &mut Criterion) {
    let header = header();
    let target = target_from_bits(0x1d00ffff);
    let mut group = c.benchmark_group("work_unit");
    group.throughput(Throughput::Elements(1));
    group.bench_function("derive_from_header", |b| {
        let mut h = header;
        let mut n = 0u32;
        b.iter(|| {
            n = n.wrapping_add(1);
            h[68..72].copy_from_slice(&n.to_le_bytes());
            black_box(WorkUnit::new(black_box(h), target, NonceRange::FULL))
        })
    });
    group.finish();
}

criterion_group!(benches, scan_paths, unit_derivation);
criterion_main!(benches);
