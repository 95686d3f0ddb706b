//! The embedded node core as a work source: templates from the core in this process, each block
//! validated and stored the moment it is found, and the next template built right after it, so
//! the devices leave a solved tip within a millisecond or so.
//!
//! A block the disk will not take (full, or any other write error) pauses mining: one message
//! says so, the block is held in memory (its hex logged, so it outlives even a `kill -9`), and
//! the store is tried again after 5 s, then less often (up to every minute), without a line
//! per try. Once the kept block is stored, mining resumes with one message. Mining on while the
//! disk is full would only find blocks that cannot be kept, thousands a second at regtest's
//! difficulty.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bitcoin::hex::DisplayHex;
use bitcoin::{Block, BlockHash};

use super::manager::Found;
use super::solo::{SoloBridge, SoloConfig};
use super::source::{Fate, Solved, SourceError, SourceEvent, SourceLink, WorkSource};
use crate::node::service::{now, MAX_CLOCK_LEAD};
use crate::node::{verdict_for, BlockRejected, NodeCore, RejectReason, StoreFault};
use crate::work::template::BlockTemplate;
use crate::work::BlockVerdict;

/// The first wait before the store is tried again after it refused a block.
pub const PROBE_FIRST: Duration = Duration::from_secs(5);

/// The longest wait between tries (the wait doubles from [`PROBE_FIRST`]).
pub const PROBE_MAX: Duration = Duration::from_secs(60);

/// Blocks held in memory while paused. Mining stops at the first, so more come only from
/// solutions already on their way; beyond this they are written out as hex at once.
pub const KEPT_MAX: usize = 16;

/// Mines on a [`NodeCore`].
pub struct CoreSource {
    core: Arc<NodeCore>,
    bridge: SoloBridge,
    /// Whether the clock-lead pause was explained already (once is enough).
    warned: bool,
    /// Set while mining is paused because the store refused a block.
    paused: Option<Paused>,
    /// Blocks still to mine when the caller asked for a number (`generatetoaddress`); at zero
    /// the devices get no more work and a late solution is not submitted. `None`: no limit.
    left: Option<u32>,
}

/// Mining paused on a store that refused a block.
struct Paused {
    /// Found, valid, and not yet stored, oldest first.
    kept: Vec<Kept>,
    /// The database file, for the messages.
    file: PathBuf,
    /// The wait before the next try after this one fails.
    wait: Duration,
    next_try: tokio::time::Instant,
}

/// A block waiting for the disk.
struct Kept {
    block: Block,
    height: u32,
    hash: BlockHash,
}

impl CoreSource {
    pub fn new(core: Arc<NodeCore>, config: SoloConfig) -> Self {
        CoreSource {
            core,
            bridge: SoloBridge::new(config),
            warned: false,
            paused: None,
            left: None,
        }
    }

    /// Mine `count` blocks, then no more: Bitcoin Core's `generatetoaddress` adds exactly the
    /// blocks asked for, and scripts count on the height (coinbase maturity at 101, ...).
    pub fn with_block_limit(mut self, count: u32) -> Self {
        self.left = Some(count);
        self
    }

    /// Count an accepted block against the limit; at the last one, stop the devices. False once
    /// the runner is gone.
    async fn accepted(&mut self, link: &SourceLink) -> bool {
        let Some(left) = &mut self.left else {
            return true;
        };
        *left = left.saturating_sub(1);
        *left > 0 || link.send(SourceEvent::ClearJobs).await
    }

    /// Put `text` in every coinbase scriptSig after the tag (`--coinbase-sig`).
    pub fn with_coinbase_text(mut self, text: Vec<u8>) -> Self {
        self.bridge = self.bridge.with_coinbase_text(text);
        self
    }

    /// A template on the current tip. Each block must be later than the median of the last 11
    /// and at most two hours ahead of the clock: at regtest's difficulty a fast miner outruns
    /// the clock in seconds. Then wait for the clock instead of mining blocks the rules refuse.
    /// `None` once the runner is gone.
    async fn template(&mut self, link: &SourceLink) -> Option<BlockTemplate> {
        let c = Arc::clone(&self.core);
        let template = tokio::task::spawn_blocking(move || c.template())
            .await
            .ok()?;
        let ahead = template.min_time.saturating_sub(now());
        if ahead <= MAX_CLOCK_LEAD {
            return Some(template);
        }
        let wait = u64::from(ahead - MAX_CLOCK_LEAD);
        if !self.warned {
            self.warned = true;
            tracing::warn!(
                "blocks come faster than block times may advance (at most 2 h ahead of the clock): pausing {wait} s; --difficulty sets a steadier pace"
            );
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(wait)) => {}
            _ = link.events.closed() => return None,
        }
        let c = Arc::clone(&self.core);
        tokio::task::spawn_blocking(move || c.template()).await.ok()
    }

    /// Mine `template` unless it is the work already being mined (`force`: mine it anyway, the
    /// devices stopped on this tip). False once the runner is gone.
    async fn offer(&mut self, template: BlockTemplate, force: bool, link: &SourceLink) -> bool {
        let same = self
            .bridge
            .current()
            .is_some_and(|c| c.same_work(&template));
        if same && !force {
            return true;
        }
        link.send_all(self.bridge.start(template)).await
    }

    /// Validate and store the block for a solution (or keep it, while paused); false once the
    /// runner is gone.
    async fn submit(&mut self, found: Found, link: &SourceLink) -> bool {
        if self.left == Some(0) {
            // Found while the devices were stopping: counted as stale, never submitted.
            let fate = Fate::Stale {
                held: false,
                why: "not submitted: the blocks asked for are mined".into(),
            };
            let solved = Solved::Share(found.share);
            return link.send(SourceEvent::Outcome { solved, fate }).await;
        }
        let block = match self.bridge.announce(found, link).await {
            Ok(Some(block)) => block,
            Ok(None) => return true,
            Err(_) => return false,
        };
        let solved = Solved::Block {
            height: block.height,
            hash: block.hash,
        };
        let decoded = match block.decode() {
            Ok(decoded) => decoded,
            Err(e) => {
                let fate = Fate::Rejected(format!("block decode failed: {e}"));
                return link.send(SourceEvent::Outcome { solved, fate }).await;
            }
        };
        let kept = Kept {
            block: decoded,
            height: block.height,
            hash: block.hash,
        };
        if self.paused.is_some() {
            return self.keep(kept, link).await;
        }
        let c = Arc::clone(&self.core);
        let candidate = kept.block.clone();
        let verdict = match tokio::task::spawn_blocking(move || c.submit(&candidate)).await {
            Ok(Ok(_)) => BlockVerdict::Accepted,
            Ok(Err(BlockRejected {
                reason: RejectReason::StoreFailed(fault),
                ..
            })) => return self.pause(fault, kept, link).await,
            Ok(Err(rejected)) => verdict_for(&rejected.reason),
            Err(e) => BlockVerdict::Undelivered(format!("node core task failed: {e}")),
        };
        let accepted = verdict == BlockVerdict::Accepted;
        link.send(SourceEvent::Outcome {
            solved,
            fate: Fate::from(verdict),
        })
        .await
            && (!accepted || self.accepted(link).await)
    }

    /// The store refused `kept`: hold it, stop the devices, and say so once.
    async fn pause(&mut self, fault: StoreFault, kept: Kept, link: &SourceLink) -> bool {
        let file = fault.file.display();
        let message = if fault.disk_full {
            format!("disk full at {file}: mining paused; free space and it resumes")
        } else {
            format!(
                "cannot store blocks in {file} ({}): mining paused; it resumes once the block is stored",
                fault.why
            )
        };
        tracing::debug!("store refused block {}: {}", kept.hash, fault.why);
        self.paused = Some(Paused {
            kept: Vec::new(),
            file: fault.file.clone(),
            wait: PROBE_FIRST,
            next_try: tokio::time::Instant::now() + PROBE_FIRST,
        });
        link.send_all(vec![SourceEvent::ClearJobs, SourceEvent::Down(message)])
            .await
            && self.keep(kept, link).await
    }

    /// Hold a block while paused (its hex logged once, for a process that dies before the disk
    /// takes it), or write it out at once beyond [`KEPT_MAX`].
    async fn keep(&mut self, kept: Kept, link: &SourceLink) -> bool {
        let Some(paused) = &mut self.paused else {
            return true;
        };
        let solved = Solved::Block {
            height: kept.height,
            hash: kept.hash,
        };
        if paused.kept.len() >= KEPT_MAX {
            // The runner writes a block without a verdict out as hex.
            let fate = Fate::Unanswered("the store refuses blocks and enough are kept".into());
            return link.send(SourceEvent::Outcome { solved, fate }).await;
        }
        let hex = bitcoin::consensus::serialize(&kept.block).to_lower_hex_string();
        let line = format!(
            "block {} at height {} is kept in memory until it can be stored; if wgminer stops first, submit it by hand: {hex}",
            kept.hash, kept.height
        );
        paused.kept.push(kept);
        link.send_all(vec![
            SourceEvent::Outcome {
                solved,
                fate: Fate::Held,
            },
            SourceEvent::Message(line),
        ])
        .await
    }

    /// Paused: store the kept blocks now. `Some(true)`: all stored (or settled), mining
    /// resumes; `Some(false)`: the store still refuses, try again later; `None`: the runner is
    /// gone.
    async fn retry_store(&mut self, link: &SourceLink) -> Option<bool> {
        let paused = self.paused.as_mut()?;
        let blocks: Vec<Block> = paused.kept.iter().map(|k| k.block.clone()).collect();
        let c = Arc::clone(&self.core);
        // In order, up to the first the store refuses again.
        let results = tokio::task::spawn_blocking(move || {
            let mut results = Vec::new();
            for block in &blocks {
                let result = c.submit(block);
                let refused = matches!(
                    &result,
                    Err(BlockRejected {
                        reason: RejectReason::StoreFailed(_),
                        ..
                    })
                );
                if refused {
                    break;
                }
                results.push(result);
            }
            results
        })
        .await
        .unwrap_or_default();
        let settled: Vec<Kept> = paused.kept.drain(..results.len()).collect();
        let left = paused.kept.len();
        let file = paused.file.clone();
        if left > 0 {
            paused.wait = (paused.wait * 2).min(PROBE_MAX);
            paused.next_try = tokio::time::Instant::now() + paused.wait;
            tracing::debug!("store still refuses blocks; next try in {:?}", paused.wait);
        } else {
            self.paused = None;
        }
        for (kept, result) in settled.into_iter().zip(results) {
            let verdict = match result {
                Ok(_) => BlockVerdict::Accepted,
                // Stored by the write that reported failure after all.
                Err(BlockRejected {
                    reason: RejectReason::Duplicate,
                    ..
                }) => BlockVerdict::Accepted,
                Err(rejected) => verdict_for(&rejected.reason),
            };
            let accepted = verdict == BlockVerdict::Accepted;
            let solved = Solved::Block {
                height: kept.height,
                hash: kept.hash,
            };
            let events = vec![
                SourceEvent::Outcome {
                    solved: solved.clone(),
                    fate: Fate::Sent,
                },
                SourceEvent::Outcome {
                    solved,
                    fate: Fate::from(verdict),
                },
            ];
            if !link.send_all(events).await || (accepted && !self.accepted(link).await) {
                return None;
            }
        }
        if left > 0 {
            return Some(false);
        }
        let message = format!(
            "the chain store at {} takes blocks again: kept blocks stored, mining resumed",
            file.display()
        );
        link.send(SourceEvent::Message(message))
            .await
            .then_some(true)
    }
}

impl WorkSource for CoreSource {
    fn label(&self) -> String {
        format!("node core {}", self.core.dir().display())
    }

    fn is_solo(&self) -> bool {
        true
    }

    async fn run(mut self, mut link: SourceLink) -> Result<(), SourceError> {
        let mut tips = self.core.subscribe();
        let peer = self.label();
        if !link.send(SourceEvent::Connected { peer }).await {
            return Ok(());
        }
        let mut next = Some(false);
        loop {
            if self.paused.is_none() && self.left != Some(0) {
                if let Some(force) = next.take() {
                    let Some(template) = self.template(&link).await else {
                        return Ok(());
                    };
                    if !self.offer(template, force, &link).await {
                        return Ok(());
                    }
                }
            }
            let retry_at = self.paused.as_ref().map(|p| p.next_try);
            tokio::select! {
                found = link.solutions.recv() => {
                    let Some(found) = found else { return Ok(()) };
                    if !self.submit(found, &link).await {
                        return Ok(());
                    }
                    // The next block's template at once: on our block if it was taken, else on
                    // the same tip again (the devices stopped on it when the block was found).
                    // While paused it waits for the store.
                    next = Some(true);
                }
                changed = tips.changed() => {
                    if changed.is_err() {
                        return Ok(());
                    }
                    tips.borrow_and_update();
                    next = Some(next.unwrap_or(false));
                }
                _ = tokio::time::sleep_until(retry_at.unwrap_or_else(tokio::time::Instant::now)),
                    if retry_at.is_some() =>
                {
                    match self.retry_store(&link).await {
                        None => return Ok(()),
                        Some(true) => next = Some(true),
                        Some(false) => {}
                    }
                }
                _ = link.events.closed() => return Ok(()),
            }
        }
    }
}

impl From<BlockVerdict> for Fate {
    fn from(v: BlockVerdict) -> Self {
        match v {
            BlockVerdict::Accepted => Fate::Accepted,
            BlockVerdict::Stale(why) => Fate::Stale { held: false, why },
            BlockVerdict::Rejected(why) => Fate::Rejected(why),
            BlockVerdict::Undelivered(why) => Fate::Unanswered(why),
        }
    }
}
