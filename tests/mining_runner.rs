//! The mining layer as a library: the runner with real devices (the CPU backend) on the real
//! embedded node core. Checks that blocks come as often as the hash count says they should
//! (hits stream out and a solved tip is left at once) and that every verified solution ends in
//! exactly one counter.

#[path = "common/solo.rs"]
mod solo;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use solo::TempDir;
use wgminer::backend::{Backend, CpuBackend};
use wgminer::mining::{CoreSource, EventSink, Manager, RunConfig, SoloConfig};
use wgminer::node::{chain_dir, Chain, ChainParams, NodeCore};
use wgminer::work::{NonceRange, WorkUnit};

/// One CPU thread's hash rate here, measured for a moment.
fn cpu_rate() -> f64 {
    let mut cpu = CpuBackend::new(Some(1), None).expect("cpu");
    let unit = WorkUnit::new(
        [9u8; 80],
        bitcoin::pow::Target::ZERO,
        NonceRange::new(0, 1 << 22),
    );
    let started = Instant::now();
    let report = cpu
        .scan(std::slice::from_ref(&unit), &AtomicBool::new(false))
        .expect("scan");
    report.hashes as f64 / started.elapsed().as_secs_f64()
}

/// The chance one hash meets `target`: target / 2^256.
fn hit_probability(target: &bitcoin::pow::Target) -> f64 {
    target
        .to_le_bytes()
        .iter()
        .rev()
        .fold(0.0, |acc, &b| acc * 256.0 + f64::from(b))
        / 2f64.powi(256)
}

/// A few hundred blocks on the embedded core at ~10 blocks a second: the blocks accepted are
/// what the hash count predicts, within 4 standard deviations (a pipeline that holds hits until
/// a long scan ends loses about half of them at this rate), and the books balance at the end.
#[test]
fn embedded_core_blocks_match_the_hash_count() {
    const BLOCKS: u64 = 200;
    let dir = TempDir::new("runner-efficiency");
    let difficulty = cpu_rate() / (10.0 * 4_294_967_296.0);
    let params = ChainParams::with_difficulty(difficulty).expect("difficulty");
    let chain = Chain::open(&chain_dir(std::path::Path::new(dir.path())), params).expect("chain");
    let core = NodeCore::new(chain);
    let p = hit_probability(&core.template().target);
    let cpu: Box<dyn Backend> = Box::new(CpuBackend::new(Some(1), None).expect("cpu"));
    let manager = Manager::start(vec![cpu], EventSink::discard()).expect("manager");
    let stats = manager.stats();
    let config = SoloConfig {
        payout: bitcoin::ScriptBuf::new_op_return([]),
        extranonce1: [0, 0, 0, 1],
    };
    let source = CoreSource::new(Arc::clone(&core), config);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let watched = Arc::clone(&stats);
    let enough = async move {
        let limit = Instant::now() + Duration::from_secs(240);
        while watched.blocks.load(Ordering::Relaxed) < BLOCKS && Instant::now() < limit {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    let outcome = rt.block_on(wgminer::mining::run(
        source,
        manager,
        enough,
        RunConfig::default(),
    ));
    outcome.result.expect("the core source ends cleanly");
    let snap = outcome.stats.snapshot();
    let hashes: u64 = snap.devices.iter().map(|d| d.hashes).sum();
    let predicted = hashes as f64 * p;
    let blocks = snap.blocks as f64;
    println!(
        "difficulty {difficulty:.3e}: {} blocks, {predicted:.1} predicted by {hashes} hashes (efficiency {:.3}); stale {:?}; latency {:?}",
        snap.blocks,
        blocks / predicted,
        snap.stale_reasons,
        snap.latency
    );
    assert!(snap.blocks >= BLOCKS, "{snap:?}");
    let sigma = predicted.sqrt();
    assert!(
        (blocks - predicted).abs() <= 4.0 * sigma + 1.0,
        "{blocks} blocks where the hash count predicts {predicted:.1} (4 sigma = {:.1})",
        4.0 * sigma
    );
    assert_eq!(
        core.tip().0 as u64,
        snap.blocks,
        "every accepted block is in the chain"
    );
    assert_eq!(snap.unaccounted(), 0, "{snap:?}");
    assert_eq!(snap.pending + snap.held, 0, "{snap:?}");
}
