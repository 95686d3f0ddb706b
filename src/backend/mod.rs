//! Backends: the compute engines that search nonces. Each is synchronous and driven from its own
//! worker thread: it takes batches of work units from a [`WorkFeed`] and streams back what each
//! GPU dispatch or CPU slice found the moment that part completes ([`WorkFeed::progress`]), so a
//! hit never waits for the rest of its batch. The caller re-verifies every [`Hit`] on the CPU
//! ([`crate::work::verify_hits`]) before anything is submitted.
//!
//! The engines: [`cpu`] (a rayon pool over the fastest CPU scan path of [`crate::pow::scan`])
//! and [`gpu`] (wgpu and the WGSL kernels build.rs generates). How to add one:
//! docs/ARCHITECTURE.md.

pub mod cpu;
pub mod gpu;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::work::{Hit, WorkUnit};

pub use cpu::CpuBackend;
pub use gpu::GpuBackend;

/// What a backend reports for one [`Backend::scan`] call.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScanReport {
    /// Nonces believed to meet their unit's target (unverified).
    pub hits: Vec<Hit>,
    /// Nonces actually hashed (less than requested if the scan was cancelled).
    pub hashes: u64,
    /// Whether the scan stopped early because `cancel` was set.
    pub cancelled: bool,
}

/// Why a backend could not scan.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackendError {
    #[error("device lost: {0}")]
    DeviceLost(String),
    #[error("{0}")]
    Other(String),
}

/// One mining device as listed by `wgminer devices`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct DeviceInfo {
    /// Stable index for `--device`.
    pub index: usize,
    /// "cpu" or "gpu".
    pub kind: String,
    pub name: String,
    /// Extra detail: the SHA path and threads for the CPU; API, adapter type and driver for GPUs.
    pub detail: String,
}

/// Who a device is, the same everywhere: the index and label `wgminer devices` prints (0 and
/// `cpu` for the CPU, `gpu1`, `gpu2`, ... for GPU adapters). Logs, events, the API and
/// `--device` all use it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub struct DeviceId {
    pub index: usize,
    pub label: String,
}

impl DeviceId {
    pub fn cpu() -> Self {
        DeviceId {
            index: 0,
            label: "cpu".into(),
        }
    }
}

impl std::fmt::Display for DeviceId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.label)
    }
}

/// A batch of work handed to a backend by its [`WorkFeed`].
#[derive(Clone, Debug)]
pub struct Assignment {
    /// The feed's name for this batch (results are reported with it).
    pub tag: u64,
    pub units: Arc<[WorkUnit]>,
    /// Set when the work is no longer wanted (a clean job, a solved block, shutdown).
    pub cancel: Arc<AtomicBool>,
}

impl Assignment {
    pub fn is_cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }

    pub fn nonces(&self) -> u64 {
        self.units.iter().map(|u| u.nonces.count).sum()
    }
}

/// What [`WorkFeed::next`] has for a backend.
#[derive(Debug)]
pub enum Feed {
    Work(Assignment),
    /// Nothing right now (only when the backend asked not to wait).
    Empty,
    /// Mining is over: return from [`Backend::mine`].
    Stop,
}

/// Part of an assignment that is done: one GPU dispatch or one CPU slice.
#[derive(Clone, Copy, Debug)]
pub struct Progress<'a> {
    /// Nonces hashed in this part.
    pub hashes: u64,
    /// Hits in this part (unverified; `Hit::unit` indexes the assignment's units).
    pub hits: &'a [Hit],
    /// When the part started hashing: a hit in it was found between then and now.
    pub started: Instant,
}

/// Where a streaming backend gets work and hands back what it finds, as it goes. Calls may come
/// from several threads at once (the CPU backend reports from each of its threads).
pub trait WorkFeed: Sync {
    /// The next batch. With `wait`, blocks while there is no work (but returns [`Feed::Stop`]
    /// when mining ends); without, returns [`Feed::Empty`] at once.
    fn next(&self, wait: bool) -> Feed;
    /// Part of `assignment` is hashed: called the moment each dispatch or slice completes, so a
    /// hit leaves the device then, not when the batch ends.
    fn progress(&self, assignment: &Assignment, progress: Progress<'_>);
    /// Every part of `assignment` that will be hashed is hashed (`cancelled`: some were skipped).
    fn finished(&self, assignment: &Assignment, cancelled: bool);
}

/// A compute engine that searches nonce ranges of work units.
pub trait Backend: Send {
    /// Who this device is (see [`DeviceId`]).
    fn id(&self) -> DeviceId;

    /// Short label for logs and tables, e.g. `cpu` or `gpu1`.
    fn label(&self) -> String {
        self.id().label
    }

    /// Mine batches from `feed` until it says stop, reporting every dispatch or slice as it
    /// completes. A backend keeps its device busy across batches (the GPU queues the next
    /// batch's first dispatch before the last of the current one is read back).
    fn mine(&mut self, feed: &dyn WorkFeed) -> Result<(), BackendError>;

    /// Search every unit's nonce range and report the hits when done: a one-batch [`mine`]
    /// for benches and tests. Checks `cancel` between dispatches or slices and returns early,
    /// with what it found so far, once it is set.
    ///
    /// [`mine`]: Backend::mine
    fn scan(
        &mut self,
        units: &[WorkUnit],
        cancel: &AtomicBool,
    ) -> Result<ScanReport, BackendError> {
        let feed = OneBatch::new(units, cancel);
        self.mine(&feed)?;
        Ok(feed.into_report())
    }
}

/// The feed behind [`Backend::scan`]: one batch, results collected.
struct OneBatch<'a> {
    assignment: Mutex<Option<Assignment>>,
    /// The caller's flag, copied into the assignment's as parts complete.
    outer: &'a AtomicBool,
    inner: Arc<AtomicBool>,
    report: Mutex<ScanReport>,
}

impl<'a> OneBatch<'a> {
    fn new(units: &[WorkUnit], outer: &'a AtomicBool) -> Self {
        let inner = Arc::new(AtomicBool::new(outer.load(Ordering::Relaxed)));
        OneBatch {
            assignment: Mutex::new(Some(Assignment {
                tag: 0,
                units: units.into(),
                cancel: Arc::clone(&inner),
            })),
            outer,
            inner,
            report: Mutex::new(ScanReport::default()),
        }
    }

    fn into_report(self) -> ScanReport {
        let mut report = self.report.into_inner().unwrap_or_else(|e| e.into_inner());
        report.hits.sort_unstable();
        report
    }
}

impl WorkFeed for OneBatch<'_> {
    fn next(&self, _wait: bool) -> Feed {
        match self
            .assignment
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            Some(a) => Feed::Work(a),
            None => Feed::Stop,
        }
    }

    fn progress(&self, _: &Assignment, progress: Progress<'_>) {
        let mut report = self.report.lock().unwrap_or_else(|e| e.into_inner());
        report.hashes += progress.hashes;
        report.hits.extend_from_slice(progress.hits);
        if self.outer.load(Ordering::Relaxed) {
            self.inner.store(true, Ordering::Relaxed);
        }
    }

    fn finished(&self, _: &Assignment, cancelled: bool) {
        self.report
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .cancelled = cancelled;
    }
}
