//! GPU hashing throughput per kernel this build carries (the shipped x1 and m4; with
//! `--features kernel-lab` also x2, m1..m3, m1x2..m4x2 and the rotshift probes): one `scan`
//! call over a difficulty-1 unit on the first GPU adapter (lavapipe where there is no GPU),
//! counted in hashes. Skipped, with a note, when wgpu finds no adapter.
//!
//! `cargo bench --bench gpu_scan [--features kernel-lab]`; results are recorded in
//! BENCHMARKS.md.

use std::sync::atomic::AtomicBool;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use wgminer::backend::gpu::{GpuBackend, GpuOptions, KERNELS};
use wgminer::backend::Backend;
use wgminer::pow::DIFF1_TARGET;
use wgminer::work::{NonceRange, WorkUnit};

fn gpu_scan(c: &mut Criterion) {
    let mut group = c.benchmark_group("gpu_scan");
    group.sample_size(10);
    for kernel in KERNELS.iter().map(|k| k.shape) {
        let mut gpu = match GpuBackend::first_available(GpuOptions {
            kernel,
            ..GpuOptions::default()
        }) {
            Ok(gpu) => gpu,
            Err(e) => {
                eprintln!("note: skipping the GPU benchmark: {e}");
                return;
            }
        };
        let name = gpu.adapter().name.clone();
        let software = gpu.adapter().software;
        // Enough nonces for many tuned dispatches: ~0.1 s on lavapipe, ~0.6 s on a large GPU.
        let nonces: u64 = if software { 1 << 22 } else { 1 << 32 };
        let unit = WorkUnit::new([0x5a; 80], DIFF1_TARGET, NonceRange::new(0, nonces));
        let cancel = AtomicBool::new(false);
        // Let the dispatch size settle before measuring.
        gpu.scan(std::slice::from_ref(&unit), &cancel)
            .expect("warm-up scan");

        group.throughput(Throughput::Elements(nonces));
        let id = BenchmarkId::new(format!("sha256d-{kernel}"), &name);
        group.bench_with_input(id, &unit, |b, unit| {
            b.iter(|| {
                gpu.scan(std::slice::from_ref(unit), &cancel)
                    .expect("scan")
                    .hashes
            })
        });
        let t = gpu.tuning();
        eprintln!(
            "{name}: kernel {kernel}, workgroup {} x {} nonces per thread, {} nonces per dispatch",
            t.workgroup_size, t.nonces_per_thread, t.dispatch_nonces
        );
    }
    group.finish();
}

criterion_group!(benches, gpu_scan);
criterion_main!(benches);
