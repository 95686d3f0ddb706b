//! The work manager: one worker thread per device (backends are synchronous), all drawing
//! batches of work units from the current job's [`WorkGenerator`] behind one lock, so devices
//! never duplicate work. Backends stream: each GPU dispatch or CPU slice reports its hits the
//! moment it completes, and the worker re-verifies them on the CPU right then against the units
//! they were found in (and so against the share target the work was made with: the target
//! travels in each unit) and hands each solution to the runner as a [`Found`].
//!
//! Clean jobs: each batch carries the cancel flag of the epoch it belongs to. A clean job sets the
//! current epoch's flag (backends check it every few milliseconds) and starts a new epoch, so
//! every device drops stale work at once; the time until every worker has taken a batch of the
//! new job is measured and kept as the switch latency. A non-clean job only replaces the job new
//! batches are made from: work in flight stays valid and finishes. Hits reported for a cancelled
//! epoch are dropped unverified: the runner would only count them stale.
//!
//! Difficulty: [`Manager::retarget`] applies a new share target to work made from now on, the
//! current job's included (cgminer's rule); work already handed out keeps the target it was made
//! with, and a share is checked against that.
//!
//! Bounds: solutions wait for the runner in a queue of [`FOUND_QUEUE`]; a worker never blocks on
//! it, and a solution that does not fit is counted stale ("miner queue full"), so a flood of hits
//! (a pool at a tiny difficulty) costs CPU time, never memory or a stalled device.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bitcoin::pow::Target;
use tokio::sync::mpsc;

use super::events::MinerEvent;
use super::EventSink;
use crate::backend::{Assignment, Backend, BackendError, DeviceId, Feed, Progress, WorkFeed};
use crate::work::generator::{GeneratorError, RolledUnit, WorkGenerator, MAX_BATCH_NONCES};
use crate::work::rolling::Roll;
use crate::work::stats::MiningStats;
use crate::work::{verify_hits, PreparedJob, Share, WorkUnit};

/// How long one batch should take. The batch length no longer bounds how soon a hit leaves
/// (hits stream per dispatch or slice); it sets how often a device sees a fresh nTime.
const TARGET_BATCH: Duration = Duration::from_secs(1);

/// Nonces in a worker's first batch, before its speed is known (a few ms on any device).
const FIRST_BATCH_NONCES: u64 = 1 << 18;

/// Expected hits per batch at most: at regtest's difficulty every other hash is a block, and a
/// batch sized for speed alone would return millions of hits (and overflow a GPU's hit buffer).
const MAX_EXPECTED_HITS: f64 = 64.0;

/// The smallest batch, however easy the target.
const MIN_BATCH_NONCES: u64 = 256;

/// Jobs kept valid after non-clean notifies (the session keeps as many; older ones are stale).
const MAX_LIVE_JOBS: usize = 16;

/// Verified solutions waiting for the runner. Beyond this a new one is counted stale, not
/// queued: the runner drains thousands a second, so only a flood far beyond what any peer
/// takes reaches it.
pub const FOUND_QUEUE: usize = 4096;

/// Why the manager could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ManagerError {
    #[error("no device to mine with")]
    NoDevices,
    #[error("cannot start worker thread: {0}")]
    Spawn(#[source] std::io::Error),
}

/// A verified solution, with the job it was made for.
#[derive(Clone, Debug)]
pub struct Found {
    pub device: DeviceId,
    pub job: Arc<PreparedJob>,
    pub share: Share,
    pub hash: bitcoin::BlockHash,
    /// When the dispatch or slice that found it started hashing: the find happened after this.
    pub started: Instant,
    /// When the device handed it over (its dispatch or slice completed).
    pub delivered: Instant,
}

impl Found {
    /// Whether it meets the job's network target: a block.
    pub fn is_block(&self) -> bool {
        self.job.job().network_target().is_met_by(self.hash)
    }
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
    /// The largest batch for the current share target (see [`MAX_EXPECTED_HITS`]).
    max_batch: u64,
    switch: Option<Switch>,
    /// Workers still running (a failed device drops out and no longer holds up a switch).
    alive: Vec<bool>,
    /// Workers told to rest (a GPU over its temperature limit): they take no batches and hold
    /// up no switch until resumed.
    paused: Vec<bool>,
    stop: bool,
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
    stats: Arc<MiningStats>,
    events: EventSink,
}

/// What [`Shared::next_batch`] found.
enum Next {
    Batch(Batch),
    Empty,
    Stop,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Workers never panic while holding the lock except on a bug; the state stays usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The next batch for `worker`; with `wait`, waits while there is no job.
    fn next_batch(&self, worker: usize, nonces: u64, wait: bool) -> Next {
        let mut state = self.lock();
        loop {
            if state.stop {
                return Next::Stop;
            }
            let paused = state.paused.get(worker).copied().unwrap_or(false);
            if state.generator.is_none() || paused {
                if !wait {
                    return Next::Empty;
                }
                state = self
                    .wake
                    .wait_timeout(state, Duration::from_millis(200))
                    .map(|(g, _)| g)
                    .unwrap_or_else(|e| e.into_inner().0);
                continue;
            }
            let elapsed = state.arrived.elapsed().as_secs();
            let nonces = nonces.min(state.max_batch);
            let cancel = Arc::clone(&state.cancel);
            let Some(generator) = state.generator.as_mut() else {
                continue;
            };
            let job = Arc::clone(generator.job());
            let rolled = match generator.take(nonces, elapsed) {
                Ok(r) => r,
                Err(e @ GeneratorError::Exhausted { .. }) | Err(e @ GeneratorError::Job { .. }) => {
                    // Nothing more to mine on this job: wait for the next one.
                    tracing::warn!("{e}");
                    state.generator = None;
                    continue;
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
            return Next::Batch(Batch {
                job,
                cancel,
                units,
                rolls,
            });
        }
    }

    /// Record the switch latency once no live worker is still on the old job.
    fn finish_switch(&self, state: &mut State) {
        let done = state.switch.as_ref().is_some_and(|sw| {
            sw.waiting
                .iter()
                .zip(state.alive.iter().zip(&state.paused))
                .all(|(&waiting, (&alive, &paused))| !waiting || !alive || paused)
        });
        if done {
            if let Some(sw) = state.switch.take() {
                let latency = sw.started.elapsed();
                self.stats.record_switch(latency);
                self.events.emit(MinerEvent::JobSwitch {
                    job_id: sw.job_id,
                    latency,
                });
            }
        }
    }

    /// Drop the current epoch's work: set its cancel flag and give later batches a new one.
    fn new_epoch(state: &mut State) {
        state.cancel.store(true, Ordering::Relaxed);
        state.cancel = Arc::new(AtomicBool::new(false));
    }
}

/// Rests and resumes a manager's devices from elsewhere (see [`Manager::pauser`]). A rested
/// device finishes the batches it holds and takes no more until resumed.
#[derive(Clone)]
pub struct Pauser {
    shared: Arc<Shared>,
}

impl Pauser {
    /// Rest (`true`) or resume the device with this index (`wgminer devices`' numbering);
    /// whether it changed anything.
    pub fn set(&self, device_index: usize, paused: bool) -> bool {
        let Some(slot) = self
            .shared
            .stats
            .devices
            .iter()
            .position(|d| d.index == device_index)
        else {
            return false;
        };
        let mut state = self.shared.lock();
        let Some(p) = state.paused.get_mut(slot) else {
            return false;
        };
        let changed = *p != paused;
        *p = paused;
        if changed && !paused {
            self.shared.wake.notify_all();
        }
        if changed && paused {
            // A switch that was waiting on this device finishes without it.
            self.shared.finish_switch(&mut state);
        }
        changed
    }
}

/// Owns the worker threads and the set of valid jobs.
pub struct Manager {
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
    found: mpsc::Receiver<Found>,
    /// Jobs whose shares are still worth sending, newest last.
    live: Vec<Arc<PreparedJob>>,
}

impl Manager {
    /// Start one worker thread per backend; they idle until the first job. Events for display
    /// go to `events`.
    pub fn start(backends: Vec<Box<dyn Backend>>, events: EventSink) -> Result<Self, ManagerError> {
        if backends.is_empty() {
            return Err(ManagerError::NoDevices);
        }
        let stats = Arc::new(MiningStats::new(
            backends
                .iter()
                .map(|b| b.id())
                .map(|id| (id.index, id.label)),
        ));
        let n = backends.len();
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                generator: None,
                arrived: Instant::now(),
                cancel: Arc::new(AtomicBool::new(false)),
                max_batch: MAX_BATCH_NONCES,
                switch: None,
                alive: vec![true; n],
                paused: vec![false; n],
                stop: false,
            }),
            wake: Condvar::new(),
            stats,
            events,
        });
        let (found_tx, found) = mpsc::channel(FOUND_QUEUE);
        let mut manager = Manager {
            shared: Arc::clone(&shared),
            workers: Vec::with_capacity(n),
            found,
            live: Vec::new(),
        };
        for (slot, backend) in backends.into_iter().enumerate() {
            let shared = Arc::clone(&shared);
            let found_tx = found_tx.clone();
            let handle = std::thread::Builder::new()
                .name(format!("wgminer-{}", backend.label()))
                .spawn(move || worker(slot, backend, &shared, &found_tx));
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

    /// A handle that rests and resumes devices while the run goes on (the temperature guard).
    pub fn pauser(&self) -> Pauser {
        Pauser {
            shared: Arc::clone(&self.shared),
        }
    }

    /// Where this manager's display events go (the runner reports through it too).
    pub fn events(&self) -> EventSink {
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
        let idle = state.generator.is_none();
        state.generator = Some(generator);
        state.arrived = Instant::now();
        state.max_batch = max_batch_for(&job.job().share_target);
        if clean {
            Shared::new_epoch(&mut state);
            if !idle {
                let n = state.alive.len();
                state.switch = Some(Switch {
                    job_id: job.job().id.clone(),
                    started: Instant::now(),
                    waiting: vec![true; n],
                });
                // With every device resting or gone nothing would end it.
                self.shared.finish_switch(&mut state);
            }
        }
        drop(state);
        self.shared.wake.notify_all();
    }

    /// A new share target for work made from now on, the current job's included (the pool
    /// lowered or raised the difficulty). Work already handed out keeps its target; the jobs it
    /// was made from stay live, so its shares are still sent.
    pub fn retarget(&mut self, target: Target) {
        let mut state = self.shared.lock();
        let Some(generator) = state.generator.as_mut() else {
            return;
        };
        if generator.job().job().share_target == target {
            return;
        }
        let job = Arc::new(generator.job().with_share_target(target));
        generator.retarget(Arc::clone(&job));
        state.max_batch = max_batch_for(&target);
        drop(state);
        self.live.push(job);
        if self.live.len() > MAX_LIVE_JOBS {
            self.live.remove(0);
        }
    }

    /// The block for `job`'s tip is found: stop every device on that tip at once (they wait
    /// for the next job instead of hashing a solved tip) and no longer count its jobs live.
    pub fn tip_solved(&mut self, job: &PreparedJob) {
        let prev = job.job().prev_hash;
        self.live.retain(|j| j.job().prev_hash != prev);
        let mut state = self.shared.lock();
        let on_tip = state
            .generator
            .as_ref()
            .is_some_and(|g| g.job().job().prev_hash == prev);
        if on_tip {
            state.generator = None;
            Shared::new_epoch(&mut state);
        }
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
        Shared::new_epoch(&mut state);
    }

    /// Jobs whose shares are still worth sending, oldest first.
    pub fn live_jobs(&self) -> &[Arc<PreparedJob>] {
        &self.live
    }

    /// The next verified solution from any worker.
    pub async fn next_found(&mut self) -> Option<Found> {
        self.found.recv().await
    }

    /// Stop and join every worker, and return the solutions they found that were not yet taken.
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
fn max_batch_for(target: &Target) -> u64 {
    let difficulty = crate::pow::difficulty_of_target(target);
    let nonces = MAX_EXPECTED_HITS * difficulty * 4_294_967_296.0;
    if nonces >= MAX_BATCH_NONCES as f64 {
        MAX_BATCH_NONCES
    } else {
        (nonces as u64).max(MIN_BATCH_NONCES)
    }
}

/// What a worker remembers of a batch it handed to its backend.
struct Handed {
    tag: u64,
    job: Arc<PreparedJob>,
    rolls: Vec<Roll>,
    handed: Instant,
}

/// One worker's [`WorkFeed`]: batches from the shared generator, hits verified and sent the
/// moment the backend reports them.
struct WorkerFeed<'a> {
    slot: usize,
    device: DeviceId,
    shared: &'a Shared,
    found: &'a mpsc::Sender<Found>,
    /// Batches handed out and not finished (a GPU holds two or three).
    handed: Mutex<Vec<Handed>>,
    next_tag: AtomicU64,
    /// Nonces for the next batch, sized toward [`TARGET_BATCH`] at the speed seen.
    batch_nonces: AtomicU64,
}

impl WorkerFeed<'_> {
    fn handed(&self) -> MutexGuard<'_, Vec<Handed>> {
        self.handed.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn send(&self, found: Found) {
        let stats = &self.shared.stats;
        match self.found.try_send(found) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => stats.record_stale("miner queue full"),
            Err(mpsc::error::TrySendError::Closed(_)) => stats.record_stale("miner stopped"),
        }
    }
}

impl WorkFeed for WorkerFeed<'_> {
    fn next(&self, wait: bool) -> Feed {
        let nonces = self.batch_nonces.load(Ordering::Relaxed);
        let batch = match self.shared.next_batch(self.slot, nonces, wait) {
            Next::Batch(b) => b,
            Next::Empty => return Feed::Empty,
            Next::Stop => return Feed::Stop,
        };
        let tag = self.next_tag.fetch_add(1, Ordering::Relaxed);
        self.handed().push(Handed {
            tag,
            job: batch.job,
            rolls: batch.rolls,
            handed: Instant::now(),
        });
        Feed::Work(Assignment {
            tag,
            units: batch.units.into(),
            cancel: batch.cancel,
        })
    }

    fn progress(&self, assignment: &Assignment, progress: Progress<'_>) {
        let counters = &self.shared.stats.devices[self.slot];
        counters
            .hashes
            .fetch_add(progress.hashes, Ordering::Relaxed);
        if progress.hits.is_empty() || assignment.is_cancelled() {
            return;
        }
        let delivered = Instant::now();
        let verified = verify_hits(&assignment.units, progress.hits);
        for (hit, error) in verified.hardware_errors {
            counters.hardware_errors.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                "{}: hardware error on unit {}: {error}",
                self.device,
                hit.unit
            );
            self.shared.events.emit(MinerEvent::HardwareError {
                device: self.device.clone(),
                error: error.to_string(),
            });
        }
        if verified.solutions.is_empty() {
            return;
        }
        let (job, found) = {
            let handed = self.handed();
            let Some(h) = handed.iter().find(|h| h.tag == assignment.tag) else {
                return;
            };
            let found: Vec<(Share, bitcoin::BlockHash)> = verified
                .solutions
                .iter()
                .filter_map(|s| {
                    h.rolls
                        .get(s.unit)
                        .map(|roll| (h.job.share(roll, s.nonce), s.hash))
                })
                .collect();
            (Arc::clone(&h.job), found)
        };
        for (share, hash) in found {
            counters.solutions.fetch_add(1, Ordering::Relaxed);
            self.shared
                .stats
                .record_best_share(self.device.index, crate::pow::hash_difficulty(&hash));
            self.send(Found {
                device: self.device.clone(),
                share,
                job: Arc::clone(&job),
                hash,
                started: progress.started,
                delivered,
            });
        }
    }

    fn finished(&self, assignment: &Assignment, cancelled: bool) {
        let mut handed = self.handed();
        let Some(i) = handed.iter().position(|h| h.tag == assignment.tag) else {
            return;
        };
        let h = handed.swap_remove(i);
        drop(handed);
        let secs = h.handed.elapsed().as_secs_f64();
        let nonces = assignment.nonces();
        if !cancelled && nonces > 0 && secs > 0.0 {
            // Size the next batch to take about TARGET_BATCH at the speed just seen.
            let want = (nonces as f64 / secs * TARGET_BATCH.as_secs_f64()) as u64;
            let next = want.clamp(FIRST_BATCH_NONCES, MAX_BATCH_NONCES);
            self.batch_nonces.store(next, Ordering::Relaxed);
        }
    }
}

/// One device: mine batches from the shared generator until stopped. A failing device is
/// retried (five failures in a row, or a lost device, end it).
fn worker(
    slot: usize,
    mut backend: Box<dyn Backend>,
    shared: &Shared,
    found: &mpsc::Sender<Found>,
) {
    let device = backend.id();
    let feed = WorkerFeed {
        slot,
        device: device.clone(),
        shared,
        found,
        handed: Mutex::new(Vec::new()),
        next_tag: AtomicU64::new(0),
        batch_nonces: AtomicU64::new(FIRST_BATCH_NONCES),
    };
    let mut failures = 0u32;
    loop {
        let started = Instant::now();
        match backend.mine(&feed) {
            Ok(()) => break,
            Err(e) => {
                feed.handed().clear();
                let error = e.to_string();
                shared.events.emit(MinerEvent::DeviceFailed {
                    device: device.clone(),
                    error: error.clone(),
                });
                // A device that mined a good while before failing starts its count afresh.
                if started.elapsed() > Duration::from_secs(60) {
                    failures = 0;
                }
                failures += 1;
                if matches!(e, BackendError::DeviceLost(_)) || failures >= 5 {
                    tracing::error!("{device}: {error}; this device stops mining");
                    break;
                }
                if shared.lock().stop {
                    break;
                }
                std::thread::sleep(Duration::from_secs(1));
            }
        }
    }
    // A device that stops no longer holds up a job switch.
    let mut state = shared.lock();
    if let Some(a) = state.alive.get_mut(slot) {
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

    fn easy_job(id: &str) -> Arc<PreparedJob> {
        use bitcoin::hashes::Hash;
        let job = crate::work::Job {
            id: id.into(),
            prev_hash: bitcoin::BlockHash::from_byte_array([7; 32]),
            version: bitcoin::block::Version::from_consensus(0x2000_0000),
            version_mask: 0,
            bits: bitcoin::CompactTarget::from_consensus(0x1d00_ffff),
            ntime: 1_700_000_000,
            ntime_roll: 600,
            coinbase: crate::work::CoinbaseTemplate {
                prefix: vec![1; 42],
                extranonce1: vec![0, 0, 0, 1],
                extranonce2_size: 4,
                suffix: vec![2; 40],
            },
            merkle_branch: Vec::new(),
            fixed_merkle_root: None,
            share_target: crate::pow::target_from_difficulty(1e-3).unwrap(),
            clean: true,
        };
        Arc::new(job.prepare().unwrap())
    }

    fn hashes(manager: &Manager) -> u64 {
        manager.stats().devices[0].hashes.load(Ordering::Relaxed)
    }

    /// A rested device finishes what it holds, then hashes nothing and holds up no job switch;
    /// resumed, it mines again.
    #[test]
    fn a_rested_device_takes_no_work_until_resumed() {
        let cpu: Box<dyn crate::backend::Backend> =
            Box::new(crate::backend::CpuBackend::new(Some(1), None).unwrap());
        let mut manager = Manager::start(vec![cpu], EventSink::discard()).unwrap();
        let pauser = manager.pauser();
        manager.new_job(easy_job("a"), true);
        let until = Instant::now() + Duration::from_secs(20);
        while hashes(&manager) == 0 && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(pauser.set(0, true), "rested");
        assert!(!pauser.set(0, true), "already resting");
        assert!(!pauser.set(5, true), "no such device");
        // Batches already handed out finish (a CPU batch is well under a second, longer on a
        // loaded machine): wait until the count has held still for half a second.
        let until = Instant::now() + Duration::from_secs(30);
        let mut rested = hashes(&manager);
        loop {
            std::thread::sleep(Duration::from_millis(500));
            let now = hashes(&manager);
            if now == rested || Instant::now() > until {
                break;
            }
            rested = now;
        }
        std::thread::sleep(Duration::from_millis(1000));
        assert_eq!(hashes(&manager), rested, "a rested device hashed");
        manager.new_job(easy_job("b"), true);
        assert!(
            manager.stats().last_switch().is_some(),
            "the switch did not wait for the rested device"
        );
        assert!(pauser.set(0, false), "resumed");
        let until = Instant::now() + Duration::from_secs(20);
        while hashes(&manager) == rested && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(hashes(&manager) > rested, "a resumed device mines again");
        drop(manager.stop());
    }
}
