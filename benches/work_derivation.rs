//! Work-unit derivation rate: how many [`WorkUnit`]s per second one core derives from a real
//! mainnet job with a 12-level merkle branch (a Bitaxe share on Public-Pool, from
//! tests/data/stratum.json), rolling extranonce2 for every unit: one coinbase hash resumed from
//! the coinb1 + extranonce1 midstate, 12 merkle levels, the header and its precomputation.
//! Beside it: rolling only the version bits under one coinbase root, and the plain reference path.
//!
//! `cargo bench --bench work_derivation`; results are recorded in BENCHMARKS.md. The target is
//! at least 100,000 units/s on one core.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;
use wgminer::pow::header_bytes;
use wgminer::stratum::NotifyContext;
use wgminer::work::{Extranonce2Roller, Job, NonceRange, Roll, VersionRoller, WorkUnit};

// Shared with the integration tests; a bench uses only part of it.
#[allow(dead_code)]
#[path = "../tests/it/support/vectors.rs"]
mod vectors;

fn bitaxe_job() -> Job {
    let notify = vectors::recorded_notify("bitaxe-publicpool-mainnet-2025-06-19");
    assert_eq!(notify.merkle_branch.len(), 12);
    let mut ctx = NotifyContext::new(vec![0x41, 0x28, 0x06, 0x4f], 4);
    ctx.difficulty = 8192.0;
    ctx.version_mask = 0x1fffe000;
    notify.to_job(&ctx).expect("job")
}

fn derivation(c: &mut Criterion) {
    let job = bitaxe_job();
    let prepared = job.clone().prepare().expect("valid job");
    let mut g = c.benchmark_group("work_derivation");
    g.throughput(Throughput::Elements(1));

    let mut extranonces = Extranonce2Roller::new(4).expect("size 4");
    g.bench_function("extranonce2_roll/12_levels", |b| {
        b.iter(|| {
            let e2 = extranonces.next().expect("2^32 values outlast the bench");
            let roll = Roll {
                extranonce2: Some(e2),
                ntime: job.ntime,
                version_bits: 0,
            };
            black_box(prepared.work_unit(&roll, NonceRange::FULL).expect("unit"))
        })
    });

    let root = prepared
        .coinbase_root(&wgminer::work::Extranonce2::new(0, 4).expect("e2"))
        .expect("root");
    let mut versions = VersionRoller::new(job.version_mask).cycle();
    g.bench_function("version_roll/same_root", |b| {
        b.iter(|| {
            let bits = versions.next().expect("cycled");
            black_box(
                prepared
                    .work_unit_for(&root, job.ntime, bits, NonceRange::FULL)
                    .expect("unit"),
            )
        })
    });

    let mut extranonces = Extranonce2Roller::new(4).expect("size 4");
    g.bench_function("reference_path/12_levels", |b| {
        b.iter(|| {
            let e2 = extranonces.next().expect("2^32 values outlast the bench");
            let roll = Roll {
                extranonce2: Some(e2),
                ntime: job.ntime,
                version_bits: 0,
            };
            let header = job.header(&roll, 0).expect("header");
            black_box(WorkUnit::new(
                header_bytes(&header),
                job.share_target,
                NonceRange::FULL,
            ))
        })
    });
    g.finish();
}

criterion_group!(benches, derivation);
criterion_main!(benches);
