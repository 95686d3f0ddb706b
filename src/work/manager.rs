//! The work manager: one worker thread per backend (backends are synchronous), all drawing
//! batches of work units from the current job's [`WorkGenerator`] behind one lock, so devices
//! never duplicate work; every hit re-verified on the CPU against the units it was found in (and
//! so against the share target of the job it was made for: the target travels in each unit).
//! The async glue that connects it to the Stratum client is [`run_pool`](super::run_pool).
//!
//! Clean jobs: each batch carries the cancel flag of the epoch it belongs to. A clean job sets the
//! current epoch's flag (backends check it every few milliseconds) and starts a new epoch, so
//! every device drops stale work at once; the time until every worker has taken a batch of the
//! new job is measured and kept as the switch latency. A non-clean job only replaces the job new
//! batches are made from: work in flight stays valid and finishes.
//!
//! Shares: a verified hit becomes `job.share(roll, nonce)`. [`Manager::is_live`] decides whether
//! the job it was made for is still valid (no clean job since); a dead one is counted stale and
//! never sent. [`super::pool_mining::run_pool`] connects all this to the Stratum client.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::generator::{GeneratorError, RolledUnit, WorkGenerator, MAX_BATCH_NONCES};
use super::job::PreparedJob;
use super::rolling::Roll;
use super::share::Share;
use super::stats::MiningStats;
use super::unit::{verify_hits, WorkUnit};
use crate::backend::{Backend, BackendError};
use crate::stratum::client::ClientError;

/// How long one scan call should take. Short enough that a new nTime and the status line stay
/// fresh; long enough that a fast GPU (several GH/s) gets more than one 2^32-nonce unit per call.
/// A clean job does not wait for it: the cancel flag stops a scan within milliseconds.
const TARGET_SCAN: Duration = Duration::from_secs(1);

/// Nonces in a worker's first batch, before its speed is known (a few ms on any device).
const FIRST_BATCH_NONCES: u64 = 1 << 18;

/// Expected hits per batch at most: at regtest's difficulty every other hash is a block, and a
/// batch sized for speed alone would return millions of hits (and overflow a GPU's hit buffer).
const MAX_EXPECTED_HITS: f64 = 64.0;

/// The smallest batch, however easy the target.
const MIN_BATCH_NONCES: u64 = 256;

/// Jobs kept valid after non-clean notifies (the session keeps as many; older ones are stale).
const MAX_LIVE_JOBS: usize = 16;

/// Why the manager or a pool run could not start or went wrong.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ManagerError {
    #[error("no device to mine with")]
    NoDevices,
    #[error("cannot start worker thread: {0}")]
    Spawn(#[source] std::io::Error),
    #[error("stratum client: {0}")]
    Client(#[from] ClientError),
    #[error("stratum client task failed: {0}")]
    ClientTask(String),
}

/// A verified hit, with the job it was made for.
#[derive(Clone, Debug)]
pub struct Found {
    pub device: usize,
    pub job: Arc<PreparedJob>,
    pub share: Share,
    pub hash: bitcoin::BlockHash,
}

/// What the manager reports to whoever shows the run (status line, logs, tests).
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
    DifficultyChanged(f64),
    /// A share handed to the client.
    Submitted {
        device: usize,
        share: Share,
    },
    Accepted {
        share: Share,
    },
    Rejected {
        share: Share,
        reason: String,
    },
    /// Not sent (its job was replaced by a clean one) or refused by the session as stale.
    Stale {
        share: Share,
    },
    HardwareError {
        device: usize,
        error: String,
    },
    /// Every worker took work from the new clean job this long after it arrived.
    JobSwitch {
        job_id: String,
        latency: Duration,
    },
    DeviceFailed {
        device: usize,
        error: String,
    },
    PoolMessage(String),
    /// Solo mining: a template from the node (`clean`: it builds on a new previous block).
    NewTemplate {
        height: u32,
        prev_hash: bitcoin::BlockHash,
        transactions: usize,
        clean: bool,
        difficulty: f64,
    },
    /// Solo mining: a solution assembled into a block and sent to the node, `after` mining on
    /// its tip for this long.
    BlockFound {
        device: usize,
        height: u32,
        hash: bitcoin::BlockHash,
        after: Duration,
    },
    /// Solo mining: what the node made of a block.
    BlockResult {
        height: u32,
        hash: bitcoin::BlockHash,
        verdict: super::solo_mining::Verdict,
    },
    /// The work source (pool or node) cannot be used right now, and why.
    SourceDown(String),
}

/// The batch a worker scans next.
struct Batch {
    job: Arc<PreparedJob>,
    cancel: Arc<AtomicBool>,
    units: Vec<WorkUnit>,
    rolls: Vec<Roll>,
}

/// The clean-job switch being timed.
struct Switch {
    job_id: String,
    started: Instant,
    /// Workers that have not yet taken a batch of the new job.
    waiting: Vec<bool>,
}

/// What the workers share, behind one lock.
struct State {
    generator: Option<WorkGenerator>,
    /// When the current job arrived: nTime is rolled from here.
    arrived: Instant,
    cancel: Arc<AtomicBool>,
    /// The largest batch for the current job's share target (see [`MAX_EXPECTED_HITS`]).
    max_batch: u64,
    switch: Option<Switch>,
    /// Workers still running (a failed device drops out and no longer holds up a switch).
    alive: Vec<bool>,
    stop: bool,
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
    stats: Arc<MiningStats>,
    events: mpsc::UnboundedSender<MinerEvent>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Workers never panic while holding the lock except on a bug; the state stays usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The next batch for `worker`, waiting while there is no job; `None` once stopping.
    fn next_batch(&self, worker: usize, nonces: u64) -> Option<Batch> {
        let mut state = self.lock();
        loop {
            if state.stop {
                return None;
            }
            if state.generator.is_some() {
                break;
            }
            state = self
                .wake
                .wait_timeout(state, Duration::from_millis(200))
                .map(|(g, _)| g)
                .unwrap_or_else(|e| e.into_inner().0);
        }
        let elapsed = state.arrived.elapsed().as_secs();
        let nonces = nonces.min(state.max_batch);
        let cancel = Arc::clone(&state.cancel);
        let generator = state.generator.as_mut()?;
        let job = Arc::clone(generator.job());
        let rolled = match generator.take(nonces, elapsed) {
            Ok(r) => r,
            Err(e @ GeneratorError::Exhausted { .. }) | Err(e @ GeneratorError::Job { .. }) => {
                // Nothing more to mine on this job: wait for the next one.
                tracing::warn!("{e}");
                state.generator = None;
                drop(state);
                return self.next_batch(worker, nonces);
            }
        };
        if let Some(sw) = state.switch.as_mut() {
            if let Some(w) = sw.waiting.get_mut(worker) {
                *w = false;
            }
        }
        self.finish_switch(&mut state);
        let (units, rolls) = rolled
            .into_iter()
            .map(|RolledUnit { unit, roll }| (unit, roll))
            .unzip();
        Some(Batch {
            job,
            cancel,
            units,
            rolls,
        })
    }

    /// Record the switch latency once no live worker is still on the old job.
    fn finish_switch(&self, state: &mut State) {
        let done = state.switch.as_ref().is_some_and(|sw| {
            sw.waiting
                .iter()
                .zip(&state.alive)
                .all(|(&waiting, &alive)| !waiting || !alive)
        });
        if done {
            if let Some(sw) = state.switch.take() {
                let latency = sw.started.elapsed();
                self.stats.record_switch(latency);
                let _ = self.events.send(MinerEvent::JobSwitch {
                    job_id: sw.job_id,
                    latency,
                });
            }
        }
    }
}

/// Owns the worker threads and the set of valid jobs.
pub struct Manager {
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
    found: mpsc::UnboundedReceiver<Found>,
    /// Jobs whose shares are still worth sending, newest last.
    live: Vec<Arc<PreparedJob>>,
}

impl Manager {
    /// Start one worker thread per backend; they idle until the first job. Events for display
    /// go to `events`.
    pub fn start(
        backends: Vec<Box<dyn Backend>>,
        events: mpsc::UnboundedSender<MinerEvent>,
    ) -> Result<Self, ManagerError> {
        if backends.is_empty() {
            return Err(ManagerError::NoDevices);
        }
        let stats = Arc::new(MiningStats::new(backends.iter().map(|b| b.label())));
        let n = backends.len();
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                generator: None,
                arrived: Instant::now(),
                cancel: Arc::new(AtomicBool::new(false)),
                max_batch: MAX_BATCH_NONCES,
                switch: None,
                alive: vec![true; n],
                stop: false,
            }),
            wake: Condvar::new(),
            stats,
            events,
        });
        let (found_tx, found) = mpsc::unbounded_channel();
        let mut manager = Manager {
            shared: Arc::clone(&shared),
            workers: Vec::with_capacity(n),
            found,
            live: Vec::new(),
        };
        for (index, backend) in backends.into_iter().enumerate() {
            let shared = Arc::clone(&shared);
            let found_tx = found_tx.clone();
            let handle = std::thread::Builder::new()
                .name(format!("wgminer-worker-{index}"))
                .spawn(move || worker(index, backend, &shared, &found_tx));
            match handle {
                Ok(h) => manager.workers.push(h),
                Err(e) => {
                    manager.stop_workers();
                    return Err(ManagerError::Spawn(e));
                }
            }
        }
        Ok(manager)
    }

    pub fn stats(&self) -> Arc<MiningStats> {
        Arc::clone(&self.shared.stats)
    }

    /// Where this manager's display events go (the pool glue reports through it too).
    pub(crate) fn events(&self) -> mpsc::UnboundedSender<MinerEvent> {
        self.shared.events.clone()
    }

    /// Mine `job` from now on. `clean`: every earlier job is invalid and work on it is cancelled.
    pub fn new_job(&mut self, job: Arc<PreparedJob>, clean: bool) {
        let generator = match WorkGenerator::new(Arc::clone(&job)) {
            Ok(g) => g,
            Err(e) => {
                tracing::warn!("job {} cannot be mined: {e}", job.job().id);
                return;
            }
        };
        if clean {
            self.live.clear();
        }
        self.live.push(Arc::clone(&job));
        if self.live.len() > MAX_LIVE_JOBS {
            self.live.remove(0);
        }
        let mut state = self.shared.lock();
        let first = state.generator.is_none();
        state.generator = Some(generator);
        state.arrived = Instant::now();
        state.max_batch = max_batch_for(&job.job().share_target);
        if clean && !first {
            // Tell every device to drop its batch, then give the new epoch a fresh flag.
            state.cancel.store(true, Ordering::Relaxed);
            state.cancel = Arc::new(AtomicBool::new(false));
            let n = state.alive.len();
            state.switch = Some(Switch {
                job_id: job.job().id.clone(),
                started: Instant::now(),
                waiting: vec![true; n],
            });
        }
        drop(state);
        self.shared.wake.notify_all();
    }

    /// Whether shares for `job` are still worth sending (no clean job since it arrived).
    pub fn is_live(&self, job: &Arc<PreparedJob>) -> bool {
        self.live.iter().any(|j| Arc::ptr_eq(j, job))
    }

    /// Forget every job (e.g. the pool connection was replaced): mining pauses until the next.
    pub fn clear_jobs(&mut self) {
        self.live.clear();
        let mut state = self.shared.lock();
        state.generator = None;
        state.cancel.store(true, Ordering::Relaxed);
        state.cancel = Arc::new(AtomicBool::new(false));
    }

    /// Jobs whose shares are still worth sending, oldest first.
    pub fn live_jobs(&self) -> &[Arc<PreparedJob>] {
        &self.live
    }

    /// The next verified hit from any worker.
    pub async fn next_found(&mut self) -> Option<Found> {
        self.found.recv().await
    }

    /// Stop and join every worker, and return the hits they found that were not yet taken.
    pub fn stop(mut self) -> Vec<Found> {
        self.stop_workers();
        for w in self.workers.drain(..) {
            if w.join().is_err() {
                tracing::error!("a mining worker panicked");
            }
        }
        let mut out = Vec::new();
        while let Ok(f) = self.found.try_recv() {
            out.push(f);
        }
        out
    }

    fn stop_workers(&self) {
        let mut state = self.shared.lock();
        state.stop = true;
        state.cancel.store(true, Ordering::Relaxed);
        drop(state);
        self.shared.wake.notify_all();
    }
}

impl Drop for Manager {
    fn drop(&mut self) {
        // Threads left running would keep hashing: always tell them to stop.
        self.stop_workers();
    }
}

/// The most nonces a batch may hold so that it yields about [`MAX_EXPECTED_HITS`] hits at most:
/// a hash meets difficulty `d` with probability about 1 / (d * 2^32).
fn max_batch_for(target: &bitcoin::pow::Target) -> u64 {
    let difficulty = crate::pow::difficulty_of_target(target);
    let nonces = MAX_EXPECTED_HITS * difficulty * 4_294_967_296.0;
    if nonces >= MAX_BATCH_NONCES as f64 {
        MAX_BATCH_NONCES
    } else {
        (nonces as u64).max(MIN_BATCH_NONCES)
    }
}

/// One device: take a batch, scan it, verify the hits, send the solutions; until stopped.
fn worker(
    index: usize,
    mut backend: Box<dyn Backend>,
    shared: &Shared,
    found: &mpsc::UnboundedSender<Found>,
) {
    let stats = &shared.stats;
    let counters = &stats.devices[index];
    let mut nonces = FIRST_BATCH_NONCES;
    let mut failures = 0u32;
    while let Some(batch) = shared.next_batch(index, nonces) {
        let started = Instant::now();
        let report = match backend.scan(&batch.units, &batch.cancel) {
            Ok(r) => r,
            Err(e) => {
                let error = e.to_string();
                let _ = shared.events.send(MinerEvent::DeviceFailed {
                    device: index,
                    error: error.clone(),
                });
                failures += 1;
                if matches!(e, BackendError::DeviceLost(_)) || failures >= 5 {
                    tracing::error!("{}: {error}; this device stops mining", backend.label());
                    break;
                }
                std::thread::sleep(Duration::from_secs(1));
                continue;
            }
        };
        failures = 0;
        counters.hashes.fetch_add(report.hashes, Ordering::Relaxed);
        let secs = started.elapsed().as_secs_f64();
        if !report.cancelled && report.hashes > 0 && secs > 0.0 {
            // Size the next batch to take about TARGET_SCAN at the speed just seen.
            let rate = report.hashes as f64 / secs;
            let want = (rate * TARGET_SCAN.as_secs_f64()) as u64;
            nonces = want.clamp(FIRST_BATCH_NONCES, MAX_BATCH_NONCES);
        }
        let verified = verify_hits(&batch.units, &report.hits);
        for (hit, error) in verified.hardware_errors {
            counters.hardware_errors.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                "{}: hardware error on unit {}: {error}",
                backend.label(),
                hit.unit
            );
            let _ = shared.events.send(MinerEvent::HardwareError {
                device: index,
                error: error.to_string(),
            });
        }
        for sol in verified.solutions {
            let Some(roll) = batch.rolls.get(sol.unit) else {
                continue;
            };
            counters.solutions.fetch_add(1, Ordering::Relaxed);
            let share = batch.job.share(roll, sol.nonce);
            let f = Found {
                device: index,
                job: Arc::clone(&batch.job),
                share,
                hash: sol.hash,
            };
            if found.send(f).is_err() {
                return;
            }
        }
    }
    // A device that stops no longer holds up a job switch.
    let mut state = shared.lock();
    if let Some(a) = state.alive.get_mut(index) {
        *a = false;
    }
    shared.finish_switch(&mut state);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_shrink_at_easy_targets_so_hits_stay_few() {
        let d = |x: f64| crate::pow::target_from_difficulty(x).unwrap();
        // Difficulty 1 and harder: speed alone sizes the batch.
        assert_eq!(max_batch_for(&d(1.0)), MAX_BATCH_NONCES);
        assert_eq!(max_batch_for(&d(1e6)), MAX_BATCH_NONCES);
        // 1e-6: about 64 expected hits in 64e-6 * 2^32 nonces.
        let n = max_batch_for(&d(1e-6));
        assert!((274_000..275_500).contains(&n), "{n}");
        // Regtest: every other hash is a hit; the floor applies.
        let regtest =
            bitcoin::pow::Target::from_compact(bitcoin::CompactTarget::from_consensus(0x207f_ffff));
        assert_eq!(max_batch_for(&regtest), MIN_BATCH_NONCES);
    }
}
