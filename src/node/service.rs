//! The node core as a running service: a [`Chain`] behind a lock, shared by the in-process miner
//! (`mining::CoreSource`) and the JSON-RPC server, with a watch channel that tells both when the tip
//! moves (the longpoll of `getblocktemplate`). Chain calls write to disk, so async callers run
//! them on the blocking pool.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use bitcoin::{Block, BlockHash};
use tokio::sync::watch;

use super::chain::{Accepted, BlockRejected, Chain};
use super::validate::RejectReason;
use crate::work::template::BlockTemplate;
use crate::work::BlockVerdict;

/// How far ahead of the clock a template's earliest block time may be before the miner waits:
/// consensus allows two hours; ten minutes are left for the nTime the miner rolls.
pub const MAX_CLOCK_LEAD: u32 = 7200 - 600;

/// The chain shared by the miner and the RPC server.
pub struct NodeCore {
    chain: Mutex<Chain>,
    tip: watch::Sender<(u32, BlockHash)>,
    dir: PathBuf,
}

impl NodeCore {
    pub fn new(chain: Chain) -> Arc<NodeCore> {
        let (tip, _) = watch::channel(chain.tip());
        Arc::new(NodeCore {
            dir: chain.dir().to_owned(),
            chain: Mutex::new(chain),
            tip,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Chain> {
        // Chain methods leave it consistent at every return: a panic elsewhere while holding
        // the lock cannot leave it half-updated.
        self.chain.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The chain directory.
    pub fn dir(&self) -> PathBuf {
        self.dir.clone()
    }

    /// The pool difficulty of the target the next block must meet (it moves with `--block-time`).
    pub fn difficulty(&self) -> f64 {
        crate::pow::difficulty_of_target(&self.lock().next_target())
    }

    pub fn tip(&self) -> (u32, BlockHash) {
        *self.tip.borrow()
    }

    /// Notified whenever a block becomes the new tip.
    pub fn subscribe(&self) -> watch::Receiver<(u32, BlockHash)> {
        self.tip.subscribe()
    }

    /// A template on the current tip at the current time.
    pub fn template(&self) -> BlockTemplate {
        self.lock().template(now())
    }

    /// Validate and store a block; when the tip moves every subscriber hears of it (also when
    /// a store recovering from a failed write turns out to hold a block that write stored).
    pub fn submit(&self, block: &Block) -> Result<Accepted, BlockRejected> {
        let mut chain = self.lock();
        let result = chain.submit_block(block, now());
        let tip = chain.tip();
        drop(chain);
        self.tip
            .send_if_modified(|t| std::mem::replace(t, tip) != tip);
        result
    }

    /// Would `block` be accepted on the tip now, proof of work aside (BIP23 proposal)?
    pub fn check_proposal(&self, block: &Block) -> Result<(), RejectReason> {
        self.lock().check_proposal(block, now())
    }

    /// Read access to the chain (lookups for the RPC server).
    pub fn with_chain<R>(&self, f: impl FnOnce(&Chain) -> R) -> R {
        f(&self.lock())
    }
}

/// Now, as a block timestamp.
pub fn now() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs().min(u64::from(u32::MAX)) as u32)
        .unwrap_or(0)
}

/// A rejection as the miner shows it, with Bitcoin Core's code first: a block whose tip moved
/// on is stale rather than wrong, and a block the disk would not take was not delivered (it is
/// logged as hex so it can be submitted again).
pub fn verdict_for(reason: &RejectReason) -> BlockVerdict {
    let text = reason.to_string();
    match reason {
        RejectReason::StalePrevBlock { .. } | RejectReason::Duplicate => BlockVerdict::Stale(text),
        RejectReason::StoreFailed(_) => BlockVerdict::Undelivered(text),
        _ => BlockVerdict::Rejected(text),
    }
}
