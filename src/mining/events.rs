//! [`MinerEvent`]: what the runner reports to whoever shows the run (status line, logs, JSON
//! log, tests). Counting is not done here: [`MiningStats`](crate::work::MiningStats) is the
//! record; events are for people and may be dropped when a flood outruns the display.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bitcoin::BlockHash;
use tokio::sync::mpsc;

use crate::backend::DeviceId;
pub use crate::work::BlockVerdict;
use crate::work::Share;

/// Display events of one run.
#[derive(Clone, Debug)]
pub enum MinerEvent {
    Connected {
        pool: String,
    },
    Disconnected {
        reason: String,
    },
    NewJob {
        job_id: String,
        clean: bool,
        difficulty: f64,
    },
    /// The share difficulty in force from now on (the current job's work included).
    DifficultyChanged(f64),
    /// A share handed to the pool client, `latency` after the device found it.
    Submitted {
        device: DeviceId,
        share: Share,
        latency: Duration,
    },
    /// A share that cannot go out now (no connection): held until the pool is back.
    Held {
        share: Share,
    },
    /// `difficulty`: the share's (its job's target's); `round_trip`: from handing it to the
    /// pool client to the answer. Both `None` if the runner no longer knew the share.
    Accepted {
        share: Share,
        difficulty: Option<f64>,
        round_trip: Option<Duration>,
    },
    Rejected {
        share: Share,
        reason: String,
        difficulty: Option<f64>,
        round_trip: Option<Duration>,
    },
    /// Not sent, or no longer worth sending, and why.
    Stale {
        share: Share,
        why: String,
    },
    /// Sent, but the pool's answer never came.
    Unanswered {
        share: Share,
        why: String,
    },
    HardwareError {
        device: DeviceId,
        error: String,
    },
    /// Every worker took work from the new clean job this long after it arrived.
    JobSwitch {
        job_id: String,
        latency: Duration,
    },
    DeviceFailed {
        device: DeviceId,
        error: String,
    },
    /// A message from the work source's peer: the pool's `client.show_message`, or the node
    /// core's word on its store.
    SourceMessage {
        solo: bool,
        text: String,
    },
    /// The miner's own notice (solutions dropped, …), not a peer's words.
    Notice(String),
    /// Solo mining: a template from the node (`clean`: it builds on a new previous block).
    NewTemplate {
        height: u32,
        prev_hash: BlockHash,
        transactions: usize,
        clean: bool,
        difficulty: f64,
    },
    /// Solo mining: a solution assembled into a block and sent to the node, `after` mining on
    /// its tip for this long.
    BlockFound {
        device: DeviceId,
        height: u32,
        hash: BlockHash,
        after: Duration,
    },
    /// Solo mining: what the node made of a block.
    BlockResult {
        height: u32,
        hash: BlockHash,
        verdict: BlockVerdict,
    },
    /// The work source (pool or node) cannot be used right now, and why.
    SourceDown(String),
}

/// Where display events go: a bounded queue that never blocks the sender. When a flood outruns
/// the display, events are dropped (and counted); the counters stay exact.
#[derive(Clone, Debug)]
pub struct EventSink {
    tx: mpsc::Sender<MinerEvent>,
    dropped: Arc<AtomicU64>,
}

/// Display events that may wait for the display: a few MB at most, and room for the bursts of
/// regtest-difficulty mining (thousands of blocks a second) so that a display that keeps up on
/// average shows every event.
pub const EVENT_BACKLOG: usize = 16 * 1024;

impl EventSink {
    /// A sink and the receiver the display reads.
    pub fn channel() -> (EventSink, mpsc::Receiver<MinerEvent>) {
        let (tx, rx) = mpsc::channel(EVENT_BACKLOG);
        let sink = EventSink {
            tx,
            dropped: Arc::new(AtomicU64::new(0)),
        };
        (sink, rx)
    }

    /// A sink nobody reads (benches, tests): every event is dropped at once.
    pub fn discard() -> EventSink {
        EventSink::channel().0
    }

    pub fn emit(&self, event: MinerEvent) {
        if self.tx.try_send(event).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Events dropped so far because the display was behind (or gone).
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}
