//! The mining layer as a library: the runner with real devices (the CPU backend) on the real
//! embedded node core. Checks that blocks come as often as the hash count says they should
//! (hits stream out and a solved tip is left at once) and that every verified solution ends in
//! exactly one counter. And, with work sources written here to misbehave (one that never reads
//! its solutions, ones that panic), that no block is lost whatever its source does.

use crate::support::solo;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use solo::{saved_blocks, LogCapture, TempDir};
use wgminer::backend::{Backend, CpuBackend};
use wgminer::mining::{
    CoreSource, EventSink, Manager, RunConfig, RunOutcome, SoloBridge, SoloConfig, SourceError,
    SourceEvent, SourceLink, WorkSource,
};
use wgminer::node::{chain_dir, Chain, ChainParams, NodeCore};
use wgminer::work::BlockTemplate;
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

/// Mine on `core` with one CPU thread until `blocks` are accepted (or `deadline` passes), then
/// `after` longer; `limit`: the source's block limit (`generatetoaddress`).
fn mine_on_core(
    core: &Arc<NodeCore>,
    limit: Option<u32>,
    blocks: u64,
    deadline: Duration,
    after: Duration,
) -> RunOutcome {
    let cpu: Box<dyn Backend> = Box::new(CpuBackend::new(Some(1), None).expect("cpu"));
    let manager = Manager::start(vec![cpu], EventSink::discard()).expect("manager");
    let watched = manager.stats();
    let config = SoloConfig {
        payout: bitcoin::ScriptBuf::new_op_return([]),
        extranonce1: [0, 0, 0, 1],
    };
    let source = CoreSource::new(Arc::clone(core), config);
    let source = match limit {
        Some(n) => source.with_block_limit(n),
        None => source,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let enough = async move {
        let end = Instant::now() + deadline;
        while watched.blocks.load(Ordering::Relaxed) < blocks && Instant::now() < end {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokio::time::sleep(after).await;
    };
    rt.block_on(wgminer::mining::run(
        source,
        manager,
        enough,
        RunConfig::default(),
    ))
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
    let outcome = mine_on_core(
        &core,
        None,
        BLOCKS,
        Duration::from_secs(240),
        Duration::ZERO,
    );
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

/// A source asked for a number of blocks (`generatetoaddress`) submits exactly that many: at
/// regtest's difficulty about every other nonce is a block, so solutions keep arriving after
/// the last one; they are counted stale (most as "job replaced" by the runner, the rest by the
/// source), never submitted, and the chain stops at the count though the run goes on a while.
#[test]
fn a_block_limit_adds_exactly_the_blocks_asked_for() {
    const BLOCKS: u32 = 3;
    let dir = TempDir::new("runner-limit");
    let chain = Chain::open(
        &chain_dir(std::path::Path::new(dir.path())),
        ChainParams::regtest(),
    )
    .expect("chain");
    let core = NodeCore::new(chain);
    // Without the limit the source would mine on: hundreds of blocks in the extra 500 ms.
    let outcome = mine_on_core(
        &core,
        Some(BLOCKS),
        u64::from(BLOCKS),
        Duration::from_secs(60),
        Duration::from_millis(500),
    );
    outcome.result.expect("the core source ends cleanly");
    let snap = outcome.stats.snapshot();
    assert_eq!(snap.blocks, u64::from(BLOCKS), "{snap:?}");
    assert_eq!(
        core.tip().0,
        BLOCKS,
        "the chain holds exactly the blocks asked for"
    );
    assert_eq!(snap.unaccounted(), 0, "{snap:?}");
    assert_eq!(snap.pending + snap.held, 0, "{snap:?}");
}

/// How a test source lets its block down.
#[derive(Clone, Copy, Debug)]
enum Misbehaviour {
    /// Never reads its solutions, as a node source busy retrying a node that is down.
    NeverReads,
    /// Takes the block's solution, then panics before passing it on.
    PanicsHoldingIt,
    /// Announces the block (`BlockFound`, as on its way to the node), then panics.
    PanicsAfterAnnouncing,
}

/// A solo source that offers one template and then misbehaves.
struct MisbehavingSource {
    template: BlockTemplate,
    how: Misbehaviour,
}

impl WorkSource for MisbehavingSource {
    fn label(&self) -> String {
        format!("test source that {:?}", self.how)
    }

    fn is_solo(&self) -> bool {
        true
    }

    async fn run(self, mut link: SourceLink) -> Result<(), SourceError> {
        let mut bridge = SoloBridge::new(SoloConfig {
            payout: bitcoin::ScriptBuf::new_op_return([]),
            extranonce1: [0, 0, 0, 7],
        });
        let peer = "test".to_owned();
        if !link.send(SourceEvent::Connected { peer }).await
            || !link.send_all(bridge.start(self.template)).await
        {
            return Ok(());
        }
        match self.how {
            Misbehaviour::NeverReads => {
                link.events.closed().await;
                Ok(())
            }
            Misbehaviour::PanicsHoldingIt => {
                let _found = link.solutions.recv().await;
                panic!("a bug in the work source, holding a block");
            }
            Misbehaviour::PanicsAfterAnnouncing => {
                let Some(found) = link.solutions.recv().await else {
                    return Ok(());
                };
                let (_block, event) = bridge.found(found).expect("the job is known");
                link.send(event).await;
                panic!("a bug in the work source, with a block on its way");
            }
        }
    }
}

/// A recorded regtest template (207fffff: a block in a few hashes) with two transactions.
fn regtest_template() -> BlockTemplate {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/gbt/ckpool_regtest_two_txns.json"
    );
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    BlockTemplate::from_gbt(&v["template"]).unwrap()
}

/// Mine on a misbehaving source with one CPU thread until the run ends by itself (a panicked
/// source ends it) or, once a block was handed over, it is stopped. Blocks without a verdict
/// go to `dir`. Runs on a current-thread runtime so the runner's log lines are captured.
fn run_misbehaving(how: Misbehaviour, dir: &std::path::Path) -> (RunOutcome, String) {
    let log = LogCapture::default();
    let _guard = log.install();
    let cpu: Box<dyn Backend> = Box::new(CpuBackend::new(Some(1), None).expect("cpu"));
    let manager = Manager::start(vec![cpu], EventSink::discard()).expect("manager");
    let watched = manager.stats();
    let source = MisbehavingSource {
        template: regtest_template(),
        how,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let stop = async move {
        let limit = Instant::now() + Duration::from_secs(60);
        while watched.submitted.load(Ordering::Relaxed) == 0 && Instant::now() < limit {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // A panicking source ends the run by itself meanwhile.
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let config = RunConfig {
        drain: Duration::from_millis(300),
        blocks_dir: dir.to_owned(),
        ..RunConfig::default()
    };
    let outcome = rt.block_on(wgminer::mining::run(source, manager, stop, config));
    (outcome, log.text())
}

/// The one block a misbehaving source was handed is in `dir` and in the log: whole, solving
/// the template, on its tip, with a pointer to the file; it is counted without a verdict.
fn assert_block_saved(how: Misbehaviour, outcome: &RunOutcome, log: &str, dir: &std::path::Path) {
    let template = regtest_template();
    let saved = saved_blocks(dir);
    assert_eq!(saved.len(), 1, "{how:?}: {saved:?}\nlog: {log}");
    let (name, hex, block) = &saved[0];
    let hash = block.block_hash();
    assert_eq!(name, &format!("{}-{hash}.hex", template.height), "{how:?}");
    assert_eq!(block.header.prev_blockhash, template.prev_hash, "{how:?}");
    assert!(
        block.header.validate_pow(template.target).is_ok(),
        "{how:?}"
    );
    assert!(block.check_merkle_root(), "{how:?}");
    assert_eq!(
        block.txdata.len(),
        1 + template.transactions.len(),
        "{how:?}"
    );
    assert!(
        log.contains(hex.as_str()),
        "{how:?}: the hex is not in the log: {log}"
    );
    let path = std::path::absolute(dir.join(name)).unwrap();
    let pointer = format!(
        "block {hash} saved to {0}; submit it with `bitcoin-cli submitblock $(cat {0})`",
        path.display()
    );
    assert!(log.contains(&pointer), "{how:?}: no pointer line: {log}");
    let snap = outcome.stats.snapshot();
    assert_eq!(
        (snap.accepted, snap.rejected, snap.unanswered),
        (0, 0, 1),
        "{how:?}: {snap:?}"
    );
    assert_eq!(snap.unaccounted(), 0, "{how:?}: {snap:?}");
    assert_eq!(snap.pending + snap.held, 0, "{how:?}: {snap:?}");
}

/// A source that never reads its solutions (a node source retrying a node that is down): the
/// block handed to it is assembled by the runner and saved when the run is stopped.
#[test]
fn a_block_its_source_never_read_is_saved_at_exit() {
    let dir = TempDir::new("never-reads");
    let blocks = std::path::Path::new(dir.path()).join("unsubmitted-blocks");
    let how = Misbehaviour::NeverReads;
    let (outcome, log) = run_misbehaving(how, &blocks);
    assert!(outcome.result.is_ok(), "{:?}", outcome.result);
    assert_block_saved(how, &outcome, &log, &blocks);
}

/// A source task that panics, holding a block or with one on its way to the node, ends the run
/// with an error that says so, and the block is saved (the run is not restarted: a source
/// that panicked once is not trusted with the next block).
#[test]
fn a_source_that_panics_ends_the_run_with_its_block_saved() {
    for how in [
        Misbehaviour::PanicsHoldingIt,
        Misbehaviour::PanicsAfterAnnouncing,
    ] {
        let dir = TempDir::new("panics");
        let blocks = std::path::Path::new(dir.path()).join("unsubmitted-blocks");
        let (outcome, log) = run_misbehaving(how, &blocks);
        match &outcome.result {
            Err(e) => assert!(e.to_string().contains("panicked"), "{how:?}: {e}"),
            Ok(()) => panic!("{how:?}: the run ended without the source's failure"),
        }
        assert_block_saved(how, &outcome, &log, &blocks);
    }
}
