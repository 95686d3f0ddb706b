//! Solo mining: [`run_solo`] runs a block source (a node over JSON-RPC, or the embedded node
//! core) beside a [`Manager`]. Templates become jobs (a new previous block is a clean job, a
//! refresh of the same tip is not); a verified hit for a live job becomes a full block that goes
//! to the source, whose verdict is counted and shown. One block per tip is sent: later solutions
//! for a tip we already solved would only compete with our own block, so they are counted stale.
//! On shutdown the hits already found are assembled and submitted before the source closes.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bitcoin::{BlockHash, ScriptBuf};
use tokio::sync::mpsc;

use super::manager::{Found, Manager, ManagerError, MinerEvent};
use super::stats::MiningStats;
use super::template::{BlockTemplate, SoloJob, SolvedBlock, SOLO_EXTRANONCE1_SIZE};

/// Solo jobs remembered for assembling blocks (older ones are no longer live in the manager).
const KEPT_JOBS: usize = 16;

/// A template from the source.
#[derive(Clone, Debug)]
pub struct TemplateUpdate {
    pub template: Arc<BlockTemplate>,
}

/// What the source made of a submitted block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The node took it (`submitblock` answered null).
    Accepted,
    /// Valid but not on the best chain (`inconclusive`), or built on a tip that is gone.
    Stale(String),
    /// Refused, with the node's reason (`high-hash`, `bad-txnmrklroot`, `duplicate`, …).
    Rejected(String),
    /// Not delivered: the node could not be reached. The block is kept in the log as hex.
    Failed(String),
}

/// The source's answer for one block.
#[derive(Clone, Debug)]
pub struct BlockResult {
    pub hash: BlockHash,
    pub height: u32,
    pub verdict: Verdict,
}

/// The miner's end of a block source: templates in, blocks out, verdicts in.
pub struct SoloLink {
    pub templates: mpsc::Receiver<TemplateUpdate>,
    pub blocks: mpsc::Sender<SolvedBlock>,
    pub results: mpsc::Receiver<BlockResult>,
}

/// The source's end of the same channels.
pub struct SourceLink {
    pub templates: mpsc::Sender<TemplateUpdate>,
    pub blocks: mpsc::Receiver<SolvedBlock>,
    pub results: mpsc::Sender<BlockResult>,
}

/// A connected pair of links.
pub fn solo_link() -> (SoloLink, SourceLink) {
    let (t_tx, t_rx) = mpsc::channel(16);
    let (b_tx, b_rx) = mpsc::channel(64);
    let (r_tx, r_rx) = mpsc::channel(64);
    (
        SoloLink {
            templates: t_rx,
            blocks: b_tx,
            results: r_rx,
        },
        SourceLink {
            templates: t_tx,
            blocks: b_rx,
            results: r_tx,
        },
    )
}

/// How to build coinbases.
#[derive(Clone, Debug)]
pub struct SoloConfig {
    /// The output script every coinbase pays (checked against the node's network beforehand).
    pub payout: ScriptBuf,
    /// Tells this miner instance's coinbases apart from any other's.
    pub extranonce1: [u8; SOLO_EXTRANONCE1_SIZE],
    /// After shutdown, how long the source gets to answer the blocks just submitted.
    pub drain: Duration,
}

/// Four bytes that differ between miner processes (the clock and the process id, hashed).
pub fn instance_extranonce1() -> [u8; SOLO_EXTRANONCE1_SIZE] {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    let v = h.finish().to_le_bytes();
    [v[0], v[1], v[2], v[3]]
}

/// Mine blocks from `link` until `shutdown` completes or the source ends.
pub async fn run_solo(
    config: SoloConfig,
    mut link: SoloLink,
    mut manager: Manager,
    shutdown: impl Future<Output = ()>,
) -> Result<Arc<MiningStats>, ManagerError> {
    let stats = manager.stats();
    let mut ctx = SoloCtx {
        config,
        stats: Arc::clone(&stats),
        events: manager.events(),
        jobs: VecDeque::new(),
        next_id: 0,
        tip: None,
        tip_since: Instant::now(),
        solved: None,
        outstanding: 0,
        stale_reported: None,
    };
    tokio::pin!(shutdown);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            _ = tick.tick() => stats.sample(),
            t = link.templates.recv() => match t {
                Some(t) => ctx.new_template(&mut manager, t.template),
                None => break,
            },
            r = link.results.recv() => match r {
                Some(r) => ctx.result(r),
                None => break,
            },
            f = manager.next_found() => match f {
                Some(f) => ctx.found(manager.live_jobs(), f, &link.blocks).await,
                None => break,
            },
        }
    }
    // Stop hashing, then hand in every block already found and wait for the verdicts.
    let live = manager.live_jobs().to_vec();
    let found = tokio::task::spawn_blocking(move || manager.stop())
        .await
        .unwrap_or_default();
    for f in found {
        ctx.found(&live, f, &link.blocks).await;
    }
    let deadline = tokio::time::Instant::now() + ctx.config.drain;
    while ctx.outstanding > 0 {
        match tokio::time::timeout_at(deadline, link.results.recv()).await {
            Ok(Some(r)) => ctx.result(r),
            Ok(None) | Err(_) => break,
        }
    }
    stats.sample();
    Ok(stats)
}

/// The solo side of [`run_solo`].
struct SoloCtx {
    config: SoloConfig,
    stats: Arc<MiningStats>,
    events: mpsc::UnboundedSender<MinerEvent>,
    /// Recent jobs by id, newest last.
    jobs: VecDeque<SoloJob>,
    next_id: u64,
    /// The previous block the current template builds on.
    tip: Option<BlockHash>,
    /// When mining on the current tip started: the "time to find" of its block.
    tip_since: Instant,
    /// The tip a block was already sent for (later solutions on it are not sent).
    solved: Option<BlockHash>,
    /// Blocks sent and not yet answered.
    outstanding: u64,
    /// The last tip a stale solution was shown for.
    stale_reported: Option<BlockHash>,
}

impl SoloCtx {
    fn emit(&self, e: MinerEvent) {
        let _ = self.events.send(e);
    }

    fn new_template(&mut self, manager: &mut Manager, template: Arc<BlockTemplate>) {
        self.next_id += 1;
        let id = format!("{:x}", self.next_id);
        let solo = match template.solo_job(id, &self.config.payout, self.config.extranonce1) {
            Ok(s) => s,
            Err(e) => {
                // The source already checked the template parses; this is e.g. a coinbaseaux
                // too long for our scriptSig. Keep mining the previous job, say why.
                self.emit(MinerEvent::PoolMessage(format!(
                    "template for height {} cannot be mined: {e}",
                    template.height
                )));
                return;
            }
        };
        let prepared = match solo.job.clone().prepare() {
            Ok(p) => Arc::new(p),
            Err(e) => {
                self.emit(MinerEvent::PoolMessage(format!(
                    "template for height {} cannot be mined: {e}",
                    template.height
                )));
                return;
            }
        };
        let clean = self.tip != Some(template.prev_hash);
        if clean {
            self.tip = Some(template.prev_hash);
            self.tip_since = Instant::now();
        }
        let difficulty = crate::pow::difficulty_of_target(&template.target);
        self.stats.set_difficulty(difficulty);
        self.emit(MinerEvent::NewTemplate {
            height: template.height,
            prev_hash: template.prev_hash,
            transactions: template.transactions.len(),
            clean,
            difficulty,
        });
        self.jobs.push_back(solo);
        if self.jobs.len() > KEPT_JOBS {
            self.jobs.pop_front();
        }
        manager.new_job(prepared, clean);
    }

    async fn found(
        &mut self,
        live: &[Arc<super::job::PreparedJob>],
        f: Found,
        blocks: &mpsc::Sender<SolvedBlock>,
    ) {
        let prev = f.job.job().prev_hash;
        if self.solved == Some(prev) {
            // Another solution for a tip we already sent a block for (whether or not the tip
            // has moved since): it would only compete with our own block. Not sent, not
            // counted: at regtest's difficulty there is one every other hash.
            return;
        }
        let job = self.jobs.iter().find(|j| j.job.id == f.share.job_id);
        let is_live = live.iter().any(|j| Arc::ptr_eq(j, &f.job));
        let Some(job) = job.filter(|_| is_live) else {
            // Its tip is gone: the block could only be an orphan. At easy targets (regtest)
            // there are many per tip: one stale block per tip is counted and shown.
            if self.stale_reported != Some(prev) {
                self.stale_reported = Some(prev);
                self.stats.stale.fetch_add(1, Ordering::Relaxed);
                self.emit(MinerEvent::Stale { share: f.share });
            }
            return;
        };
        let block = match job.block(&f.share) {
            Ok(b) => b,
            Err(e) => {
                // The hit was verified against this job's target: a failure here is a bug.
                tracing::error!("cannot assemble the block for a verified solution: {e}");
                self.emit(MinerEvent::HardwareError {
                    device: f.device,
                    error: format!("block assembly: {e}"),
                });
                return;
            }
        };
        self.solved = Some(job.template.prev_hash);
        self.emit(MinerEvent::BlockFound {
            device: f.device,
            height: block.height,
            hash: block.hash,
            after: self.tip_since.elapsed(),
        });
        let hex_for_log = block.to_hex();
        if blocks.send(block).await.is_ok() {
            self.outstanding += 1;
            self.stats.submitted.fetch_add(1, Ordering::Relaxed);
        } else {
            // The source is gone: never lose a block silently; the hex can be submitted by hand.
            tracing::error!("block source closed; submit this block by hand: {hex_for_log}");
        }
    }

    fn result(&mut self, r: BlockResult) {
        self.outstanding = self.outstanding.saturating_sub(1);
        match &r.verdict {
            Verdict::Accepted => {
                self.stats.accepted.fetch_add(1, Ordering::Relaxed);
                self.stats.blocks.fetch_add(1, Ordering::Relaxed);
            }
            Verdict::Stale(_) => {
                self.stats.stale.fetch_add(1, Ordering::Relaxed);
            }
            Verdict::Rejected(reason) | Verdict::Failed(reason) => {
                self.stats.record_reject(reason);
                // Let a later solution for the same tip through.
                self.solved = None;
            }
        }
        self.emit(MinerEvent::BlockResult {
            height: r.height,
            hash: r.hash,
            verdict: r.verdict,
        });
    }
}
