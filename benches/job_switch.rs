//! Clean-job switch latency with the CPU backend (and the first GPU adapter, if any): the time from the work manager receiving a
//! clean job (`Manager::new_job(job, true)`) to every worker having taken a batch of it, i.e. to
//! every device scanning the new job. The manager measures it itself (the `JobSwitch` event); the
//! bench switches back and forth between two real jobs (the Bitaxe/Public-Pool notify in
//! tests/data/stratum.json, 12-level merkle branch, at two difficulties) while the CPU hashes
//! with one worker per core. The target from issue 4 is at most 50 ms.
//!
//! `cargo bench --bench job_switch`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use wgminer::backend::gpu::{GpuBackend, GpuOptions};
use wgminer::backend::{Backend, CpuBackend};
use wgminer::mining::{EventSink, Manager, MinerEvent};
use wgminer::stratum::NotifyContext;
use wgminer::work::PreparedJob;

// Shared with the integration tests; a bench uses only part of it.
#[allow(dead_code)]
#[path = "../tests/it/support/vectors.rs"]
mod vectors;

fn bitaxe_job(id: &str, difficulty: f64) -> Arc<PreparedJob> {
    let mut notify = vectors::recorded_notify("bitaxe-publicpool-mainnet-2025-06-19");
    notify.job_id = id.into();
    let mut ctx = NotifyContext::new(vec![0x41, 0x28, 0x06, 0x4f], 4);
    ctx.difficulty = difficulty;
    ctx.version_mask = 0x1fffe000;
    Arc::new(
        notify
            .to_job(&ctx)
            .expect("job")
            .prepare()
            .expect("valid job"),
    )
}

fn job_switch(c: &mut Criterion) {
    let cpu: Box<dyn Backend> = Box::new(CpuBackend::new(None, None).expect("cpu backend"));
    switch_bench(c, "cpu", cpu);
    // The first GPU adapter, when there is one (lavapipe on a machine without a GPU).
    match GpuBackend::first_available(GpuOptions::default()) {
        Ok(gpu) => switch_bench(c, "gpu", Box::new(gpu)),
        Err(e) => eprintln!("no GPU switch bench: {e}"),
    }
}

fn switch_bench(c: &mut Criterion, name: &str, backend: Box<dyn Backend>) {
    let jobs = [bitaxe_job("a", 1.0), bitaxe_job("b", 2.0)];
    let (events_tx, mut events) = EventSink::channel();
    let mut manager = Manager::start(vec![backend], events_tx).expect("manager");
    manager.new_job(Arc::clone(&jobs[0]), true);
    // Let the worker size its batches to its speed first.
    std::thread::sleep(Duration::from_secs(2));
    let mut next = 1;
    let mut g = c.benchmark_group("job_switch");
    g.sample_size(30);
    g.bench_function(format!("{name}/clean_job_to_every_worker"), |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                // Mine the current job a moment, as between real notifies.
                std::thread::sleep(Duration::from_millis(20));
                let sent = Instant::now();
                manager.new_job(Arc::clone(&jobs[next]), true);
                next ^= 1;
                loop {
                    match events.blocking_recv() {
                        Some(MinerEvent::JobSwitch { latency, .. }) => {
                            total += latency;
                            break;
                        }
                        Some(_) => {}
                        None => panic!("manager stopped"),
                    }
                }
                assert!(sent.elapsed() < Duration::from_secs(10));
            }
            total
        })
    });
    g.finish();
    drop(manager.stop());
}

criterion_group!(benches, job_switch);
criterion_main!(benches);
