//! The work-source contract: what a pool, a node or the embedded core says to the runner, and
//! what the runner hands back. A source is a task with two channels: [`SourceEvent`]s out (jobs,
//! difficulty, connection state, the fate of each solution) and [`Found`] solutions in. The
//! runner never waits on a source: it offers solutions with `try_send` and counts what does not
//! fit, so a slow or jammed peer cannot stall mining or grow memory. Adding a protocol means one
//! new type that implements [`WorkSource`].

use std::future::Future;
use std::sync::Arc;

use bitcoin::BlockHash;
use tokio::sync::mpsc;

use super::manager::Found;
use crate::work::{MiningStats, PreparedJob, Share, SoloJob};

/// Solutions the runner may have handed to a source and not yet seen a fate for. Beyond this
/// the runner counts new solutions stale ("source queue full") instead of waiting.
pub const SUBMISSION_QUEUE: usize = 512;

/// Events a source may have queued for the runner.
pub const EVENT_QUEUE: usize = 1024;

/// A source of work: runs until the runner closes its side of the link (or the source cannot
/// go on: then it returns, and the run ends).
pub trait WorkSource: Send + 'static {
    /// What the status line and the API call it (`stratum+tcp://…`, `node http://…`, …).
    fn label(&self) -> String;

    /// Whether it mines blocks (solo) rather than pool shares.
    fn is_solo(&self) -> bool;

    /// Serve the runner through `link`.
    fn run(self, link: SourceLink) -> impl Future<Output = Result<(), SourceError>> + Send;
}

/// Why a source stopped for good (retrying could not help).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    #[error("stratum client: {0}")]
    Stratum(#[from] crate::stratum::client::ClientError),
    #[error("{0}")]
    Node(#[from] crate::rpc::RpcError),
    #[error("{0}")]
    Failed(String),
}

/// What a source tells the runner.
#[derive(Clone, Debug)]
pub enum SourceEvent {
    /// Connected to the peer (a pool; a node once it answers).
    Connected { peer: String },
    /// Lost the peer; it retries on its own.
    Disconnected { reason: String },
    /// Mine this from now on; with `clean`, every earlier job is dead. `solo`: a block source's
    /// template behind the job, so the runner can assemble and save a block itself when the
    /// source cannot pass it on (it stopped, failed or panicked first).
    Job {
        job: Arc<PreparedJob>,
        clean: bool,
        solo: Option<Arc<SoloJob>>,
    },
    /// The share difficulty for work made from now on, the current job's included.
    Difficulty(f64),
    /// Every job so far is unusable (a pool gave us a new extranonce1): stop until the next.
    ClearJobs,
    /// A solution handed in earlier met its fate (or changed state).
    Outcome { solved: Solved, fate: Fate },
    /// Solo: a template became a job (for the display).
    Template {
        height: u32,
        prev_hash: BlockHash,
        transactions: usize,
        clean: bool,
        difficulty: f64,
    },
    /// Solo: a solution became a block, on its way to the node. `after`: how long its tip was
    /// mined; `hex`: the block, kept by the runner until its verdict so that a block without
    /// one is written out, never lost.
    BlockFound {
        device: crate::backend::DeviceId,
        height: u32,
        hash: BlockHash,
        after: std::time::Duration,
        hex: String,
    },
    /// Text for the operator (the pool's `client.show_message`, a refused template, …).
    Message(String),
    /// The source cannot give work right now, and why (it keeps trying).
    Down(String),
}

/// What a solution was, for logs.
#[derive(Clone, Debug)]
pub enum Solved {
    Share(Share),
    Block { height: u32, hash: BlockHash },
}

/// Where a solution stands. Every solution the runner hands over ends in exactly one terminal
/// fate (accepted, rejected, stale, unanswered); `Held` and `Sent` move it between waiting for
/// a connection and waiting for an answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fate {
    Accepted,
    Rejected(String),
    /// Not sent, or no longer worth sending; `held`: it was held (queued) until now.
    Stale {
        held: bool,
        why: String,
    },
    /// Queued until the peer is reachable again (it was waiting for an answer until now).
    Held,
    /// A held solution went out: it waits for an answer again.
    Sent,
    /// Sent (or handed over at exit), but no answer came or can come any more, and why.
    Unanswered(String),
}

/// The source's end of the link.
pub struct SourceLink {
    pub events: mpsc::Sender<SourceEvent>,
    pub solutions: mpsc::Receiver<Found>,
    /// The run's counters, read-only for a source: what the devices really hash, for a pool
    /// that sets targets from a declared rate (Stratum V2's `nominal_hash_rate`).
    pub stats: Arc<MiningStats>,
}

impl SourceLink {
    /// Tell the runner something; false once the runner is gone.
    pub async fn send(&self, event: SourceEvent) -> bool {
        self.events.send(event).await.is_ok()
    }

    /// Tell the runner several things in order; false once the runner is gone.
    pub async fn send_all(&self, events: Vec<SourceEvent>) -> bool {
        for e in events {
            if !self.send(e).await {
                return false;
            }
        }
        true
    }

    /// Whether the runner has gone (closed its side).
    pub fn runner_gone(&self) -> bool {
        self.events.is_closed()
    }
}

/// The runner's end of the link.
pub struct RunnerLink {
    pub events: mpsc::Receiver<SourceEvent>,
    pub solutions: mpsc::Sender<Found>,
}

/// A connected pair of links for a run counted in `stats`.
pub fn link(stats: Arc<MiningStats>) -> (RunnerLink, SourceLink) {
    let (events_tx, events_rx) = mpsc::channel(EVENT_QUEUE);
    let (solutions_tx, solutions_rx) = mpsc::channel(SUBMISSION_QUEUE);
    (
        RunnerLink {
            events: events_rx,
            solutions: solutions_tx,
        },
        SourceLink {
            events: events_tx,
            solutions: solutions_rx,
            stats,
        },
    )
}
