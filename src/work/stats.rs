//! What a mining run counts: hashes per device (5 s, 60 s and 15 min rates from a [`RateMeter`]),
//! every verified solution's fate (accepted, rejected and stale with bounded reason maps, held,
//! pending, unanswered), find-to-submit latency, hardware errors, the current difficulty and
//! pool, the last clean-job switch latency, and uptime. Workers and the manager
//! update it through atomics and short locks; the status display reads a [`StatsSnapshot`].

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

/// The longest hash-rate window reported (the 15-minute average).
pub const LONGEST_WINDOW: Duration = Duration::from_secs(15 * 60);

/// Distinct reject or stale reasons kept by name; the rest are counted under [`OTHER_REASON`].
/// The reasons are a peer's text: without a bound, a pool could grow the map without limit.
pub const MAX_REASONS: usize = 16;

/// The bucket for reasons beyond [`MAX_REASONS`].
pub const OTHER_REASON: &str = "other";

/// Reasons longer than this are cut (a pool's text, shown and exported).
const MAX_REASON_LEN: usize = 80;

/// Find-to-submit latencies kept for the percentiles (the most recent ones).
const LATENCY_SAMPLES: usize = 4096;

/// One device's counters.
#[derive(Debug)]
pub struct DeviceCounters {
    /// The index `wgminer devices` shows (0: the CPU).
    pub index: usize,
    pub label: String,
    pub hashes: AtomicU64,
    pub hardware_errors: AtomicU64,
    /// Verified solutions (shares or blocks found, before any verdict).
    pub solutions: AtomicU64,
}

/// Everything counted during a run. Every verified solution is in exactly one of `accepted`,
/// `rejected`, `stale`, `unanswered`, or the two gauges `held` (waiting for a connection) and
/// `pending` (handed to the pool or node, waiting for its answer); see [`StatsSnapshot::unaccounted`].
#[derive(Debug)]
pub struct MiningStats {
    started: Instant,
    pub devices: Vec<DeviceCounters>,
    /// Solutions handed to the pool or node (whatever became of them).
    pub submitted: AtomicU64,
    pub accepted: AtomicU64,
    pub rejected: AtomicU64,
    /// Not sent, or no longer worth sending (see the reasons).
    pub stale: AtomicU64,
    /// Sent, but no answer came (the peer went away, or the run ended first).
    pub unanswered: AtomicU64,
    /// Held while the pool is unreachable (a gauge).
    pub held: AtomicU64,
    /// Handed over, waiting for an answer (a gauge).
    pub pending: AtomicU64,
    /// Blocks the node accepted (solo mining).
    pub blocks: AtomicU64,
    /// Jobs (pool jobs or block templates) received from the work source.
    pub jobs: AtomicU64,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    reject_reasons: BTreeMap<String, u64>,
    stale_reasons: BTreeMap<String, u64>,
    last_reject: Option<String>,
    difficulty: Option<f64>,
    pool: Option<String>,
    connected: bool,
    solo: bool,
    last_switch: Option<Duration>,
    max_switch: Option<Duration>,
    meters: Vec<RateMeter>,
    /// Recent find-to-submit latencies, oldest first.
    latencies: VecDeque<Duration>,
    last_job: Option<SystemTime>,
    /// Difficulty-weighted counters, all devices, then per device in worker order.
    booked: Booked,
    device_booked: Vec<Booked>,
    /// Per device in worker order: the last sensor reading, and whether it is resting.
    sensors: Vec<Option<SensorReading>>,
    resting: Vec<bool>,
}

/// Shares counted by their difficulty: what a pool credits, and what cgminer's API reports as
/// `Difficulty Accepted` and its neighbours.
#[derive(Clone, Debug, Default)]
struct Booked {
    accepted: u64,
    rejected: u64,
    difficulty_accepted: f64,
    difficulty_rejected: f64,
    difficulty_stale: f64,
    best_share: f64,
    last_accepted: Option<SystemTime>,
}

/// The verdict a share's difficulty is booked under.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Accepted,
    Rejected,
    Stale,
}

/// A copy of the counters at one moment, for display and JSON.
#[derive(Clone, Debug, serde::Serialize)]
pub struct StatsSnapshot {
    pub uptime_s: f64,
    pub devices: Vec<DeviceSnapshot>,
    /// Verified solutions, all devices.
    pub solutions: u64,
    pub submitted: u64,
    pub accepted: u64,
    pub rejected: u64,
    pub stale: u64,
    pub unanswered: u64,
    pub held: u64,
    pub pending: u64,
    pub blocks: u64,
    /// Jobs received, and when the last one came (Unix seconds).
    pub jobs: u64,
    pub last_job_unix: Option<u64>,
    /// Whether this run mines blocks (solo) rather than pool shares.
    pub solo: bool,
    pub hardware_errors: u64,
    pub reject_reasons: BTreeMap<String, u64>,
    pub stale_reasons: BTreeMap<String, u64>,
    pub last_reject: Option<String>,
    pub difficulty: Option<f64>,
    pub pool: Option<String>,
    pub connected: bool,
    pub last_switch_ms: Option<f64>,
    pub max_switch_ms: Option<f64>,
    /// Find-to-submit latency over the recent solutions: from the start of the dispatch or
    /// slice that found each one to its hand-over to the pool or node (an upper bound).
    pub latency: Option<LatencySummary>,
    /// The shares' difficulties summed by verdict (what a pool pays on), all devices.
    pub difficulty_accepted: f64,
    pub difficulty_rejected: f64,
    pub difficulty_stale: f64,
    /// The highest difficulty any verified solution reached (its hash's, not its target's).
    pub best_share: f64,
    /// When the last accepted share or block was answered (Unix seconds).
    pub last_accepted_unix: Option<u64>,
}

impl StatsSnapshot {
    /// Solutions in no counter: 0 whenever the books balance (solutions still on their way from
    /// a device to the runner show here for a moment while mining; none at the end of a run).
    pub fn unaccounted(&self) -> i64 {
        self.solutions as i64
            - (self.accepted
                + self.rejected
                + self.stale
                + self.unanswered
                + self.held
                + self.pending) as i64
    }
}

/// Percentiles of the find-to-submit latency, in milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct LatencySummary {
    pub samples: usize,
    pub median_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct DeviceSnapshot {
    pub index: usize,
    pub label: String,
    pub hashes: u64,
    pub rate_5s: f64,
    pub rate_60s: f64,
    pub rate_5m: f64,
    pub rate_15m: f64,
    pub hardware_errors: u64,
    pub solutions: u64,
    /// Accepted and rejected shares this device found, and their difficulties summed.
    pub accepted: u64,
    pub rejected: u64,
    pub difficulty_accepted: f64,
    pub difficulty_rejected: f64,
    pub best_share: f64,
    pub last_accepted_unix: Option<u64>,
    /// The GPU's sensors at the last reading (NVIDIA GPUs with NVML; else `None`).
    pub sensors: Option<SensorReading>,
    /// Rested by the temperature guard.
    pub resting: bool,
}

/// One reading of a GPU's sensors; a sensor the GPU lacks is `None`.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct SensorReading {
    pub temperature_c: Option<u32>,
    pub power_w: Option<f64>,
    pub sm_clock_mhz: Option<u32>,
    pub fan_percent: Option<u32>,
    pub utilization_percent: Option<u32>,
}

impl MiningStats {
    /// Counters for the devices `(index, label)`, in worker order.
    pub fn new(devices: impl IntoIterator<Item = (usize, String)>) -> Self {
        let devices: Vec<DeviceCounters> = devices
            .into_iter()
            .map(|(index, label)| DeviceCounters {
                index,
                label,
                hashes: AtomicU64::new(0),
                hardware_errors: AtomicU64::new(0),
                solutions: AtomicU64::new(0),
            })
            .collect();
        let started = Instant::now();
        let inner = Inner {
            meters: devices
                .iter()
                .map(|_| RateMeter::new(LONGEST_WINDOW, started))
                .collect(),
            device_booked: vec![Booked::default(); devices.len()],
            sensors: vec![None; devices.len()],
            resting: vec![false; devices.len()],
            ..Inner::default()
        };
        MiningStats {
            started,
            devices,
            submitted: AtomicU64::new(0),
            accepted: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            stale: AtomicU64::new(0),
            unanswered: AtomicU64::new(0),
            held: AtomicU64::new(0),
            pending: AtomicU64::new(0),
            blocks: AtomicU64::new(0),
            jobs: AtomicU64::new(0),
            inner: Mutex::new(inner),
        }
    }

    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// Hashes per second of every device together over the last `window` (since the start, if
    /// younger), as last sampled: what a pool should be told we hash.
    pub fn hash_rate(&self, window: Duration) -> f64 {
        let now = Instant::now();
        let inner = self.inner();
        self.devices
            .iter()
            .zip(&inner.meters)
            .map(|(d, m)| m.rate(now, d.hashes.load(Ordering::Relaxed), window))
            .sum()
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding this lock leaves plain counters behind: still fine to read.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A solution refused by the pool or node (it was pending).
    pub fn record_reject(&self, reason: &str) {
        gauge_down(&self.pending);
        self.rejected.fetch_add(1, Ordering::Relaxed);
        let mut inner = self.inner();
        let reason = count_reason(&mut inner.reject_reasons, reason);
        inner.last_reject = Some(reason);
    }

    /// A solution accepted by the pool or node (it was pending).
    pub fn record_accept(&self) {
        gauge_down(&self.pending);
        self.accepted.fetch_add(1, Ordering::Relaxed);
    }

    /// Book a share of `difficulty` (its target's) found by device `device_index` under its
    /// verdict; the plain counters above are kept by the `record_*` calls.
    pub fn book(&self, device_index: usize, difficulty: f64, verdict: Verdict) {
        let difficulty = if difficulty.is_finite() {
            difficulty.max(0.0)
        } else {
            0.0
        };
        let position = self.position(device_index);
        let now = SystemTime::now();
        let mut inner = self.inner();
        let Inner {
            booked,
            device_booked,
            ..
        } = &mut *inner;
        let device = position.and_then(|p| device_booked.get_mut(p));
        for b in std::iter::once(booked).chain(device) {
            match verdict {
                Verdict::Accepted => {
                    b.accepted += 1;
                    b.difficulty_accepted += difficulty;
                    b.last_accepted = Some(now);
                }
                Verdict::Rejected => {
                    b.rejected += 1;
                    b.difficulty_rejected += difficulty;
                }
                Verdict::Stale => b.difficulty_stale += difficulty,
            }
        }
    }

    /// A verified solution whose hash reached `difficulty`: the best share so far if higher.
    pub fn record_best_share(&self, device_index: usize, difficulty: f64) {
        if !difficulty.is_finite() {
            return;
        }
        let position = self.position(device_index);
        let mut inner = self.inner();
        let Inner {
            booked,
            device_booked,
            ..
        } = &mut *inner;
        let device = position.and_then(|p| device_booked.get_mut(p));
        for b in std::iter::once(booked).chain(device) {
            b.best_share = b.best_share.max(difficulty);
        }
    }

    /// A solution never sent, or no longer worth sending, before it was handed over.
    pub fn record_stale(&self, why: &str) {
        self.stale.fetch_add(1, Ordering::Relaxed);
        count_reason(&mut self.inner().stale_reasons, why);
    }

    /// A handed-over solution that went stale (`held`: while held; else while pending).
    pub fn record_stale_after_hand_over(&self, held: bool, why: &str) {
        gauge_down(if held { &self.held } else { &self.pending });
        self.record_stale(why);
    }

    /// A solution handed to the pool or node, `latency` after its device found it.
    pub fn record_hand_over(&self, latency: Duration) {
        self.submitted.fetch_add(1, Ordering::Relaxed);
        self.pending.fetch_add(1, Ordering::Relaxed);
        let mut inner = self.inner();
        if inner.latencies.len() >= LATENCY_SAMPLES {
            inner.latencies.pop_front();
        }
        inner.latencies.push_back(latency);
    }

    /// A pending solution is held until the peer is reachable.
    pub fn record_held(&self) {
        gauge_down(&self.pending);
        self.held.fetch_add(1, Ordering::Relaxed);
    }

    /// A held solution went out: pending again.
    pub fn record_held_sent(&self) {
        gauge_down(&self.held);
        self.pending.fetch_add(1, Ordering::Relaxed);
    }

    /// A pending solution will get no answer.
    pub fn record_unanswered(&self) {
        gauge_down(&self.pending);
        self.unanswered.fetch_add(1, Ordering::Relaxed);
    }

    /// A block that could not be handed to its source (it had stopped or was full): no answer
    /// can come; it was written out instead.
    pub fn record_unsent_block(&self) {
        self.unanswered.fetch_add(1, Ordering::Relaxed);
    }

    /// The run ends: solutions still pending will get no answer now.
    pub fn settle_pending_at_exit(&self) {
        let left = self.pending.swap(0, Ordering::Relaxed);
        self.unanswered.fetch_add(left, Ordering::Relaxed);
    }

    /// The label of the device with this index.
    pub fn label_of(&self, device_index: usize) -> Option<&str> {
        self.devices
            .iter()
            .find(|d| d.index == device_index)
            .map(|d| d.label.as_str())
    }

    fn position(&self, device_index: usize) -> Option<usize> {
        self.devices.iter().position(|d| d.index == device_index)
    }

    /// The latest sensor reading of a device.
    pub fn set_sensors(&self, device_index: usize, reading: SensorReading) {
        if let Some(p) = self.position(device_index) {
            if let Some(slot) = self.inner().sensors.get_mut(p) {
                *slot = Some(reading);
            }
        }
    }

    /// Whether the temperature guard rests a device.
    pub fn set_resting(&self, device_index: usize, resting: bool) {
        if let Some(p) = self.position(device_index) {
            if let Some(slot) = self.inner().resting.get_mut(p) {
                *slot = resting;
            }
        }
    }

    /// A job arrived from the work source.
    pub fn record_job(&self) {
        self.jobs.fetch_add(1, Ordering::Relaxed);
        self.inner().last_job = Some(SystemTime::now());
    }

    pub fn set_difficulty(&self, difficulty: f64) {
        self.inner().difficulty = Some(difficulty);
    }

    pub fn difficulty(&self) -> Option<f64> {
        self.inner().difficulty
    }

    pub fn set_pool(&self, pool: Option<String>, connected: bool) {
        let mut inner = self.inner();
        if pool.is_some() {
            inner.pool = pool;
        }
        inner.connected = connected;
    }

    /// Mark the run as solo mining (counts are blocks, not shares).
    pub fn set_solo(&self) {
        self.inner().solo = true;
    }

    pub fn is_solo(&self) -> bool {
        self.inner().solo
    }

    pub fn record_switch(&self, latency: Duration) {
        let mut inner = self.inner();
        inner.last_switch = Some(latency);
        inner.max_switch = Some(inner.max_switch.map_or(latency, |m| m.max(latency)));
    }

    pub fn last_switch(&self) -> Option<Duration> {
        self.inner().last_switch
    }

    /// Sample every device's hash counter into its rate meter; call about once a second.
    pub fn sample(&self) {
        let now = Instant::now();
        let mut inner = self.inner();
        for (meter, dev) in inner.meters.iter_mut().zip(&self.devices) {
            meter.record(now, dev.hashes.load(Ordering::Relaxed));
        }
    }

    pub fn snapshot(&self) -> StatsSnapshot {
        let now = Instant::now();
        let inner = self.inner();
        let devices: Vec<DeviceSnapshot> = self
            .devices
            .iter()
            .zip(&inner.meters)
            .zip(&inner.device_booked)
            .enumerate()
            .map(|(p, ((d, m), b))| {
                let hashes = d.hashes.load(Ordering::Relaxed);
                DeviceSnapshot {
                    sensors: inner.sensors.get(p).copied().flatten(),
                    resting: inner.resting.get(p).copied().unwrap_or(false),
                    accepted: b.accepted,
                    rejected: b.rejected,
                    difficulty_accepted: b.difficulty_accepted,
                    difficulty_rejected: b.difficulty_rejected,
                    best_share: b.best_share,
                    last_accepted_unix: b.last_accepted.map(unix_seconds),
                    index: d.index,
                    label: d.label.clone(),
                    hashes,
                    rate_5s: m.rate(now, hashes, Duration::from_secs(5)),
                    rate_60s: m.rate(now, hashes, Duration::from_secs(60)),
                    rate_5m: m.rate(now, hashes, Duration::from_secs(5 * 60)),
                    rate_15m: m.rate(now, hashes, LONGEST_WINDOW),
                    hardware_errors: d.hardware_errors.load(Ordering::Relaxed),
                    solutions: d.solutions.load(Ordering::Relaxed),
                }
            })
            .collect();
        StatsSnapshot {
            uptime_s: self.started.elapsed().as_secs_f64(),
            hardware_errors: devices.iter().map(|d| d.hardware_errors).sum(),
            solutions: devices.iter().map(|d| d.solutions).sum(),
            devices,
            submitted: self.submitted.load(Ordering::Relaxed),
            accepted: self.accepted.load(Ordering::Relaxed),
            rejected: self.rejected.load(Ordering::Relaxed),
            stale: self.stale.load(Ordering::Relaxed),
            unanswered: self.unanswered.load(Ordering::Relaxed),
            held: self.held.load(Ordering::Relaxed),
            pending: self.pending.load(Ordering::Relaxed),
            blocks: self.blocks.load(Ordering::Relaxed),
            jobs: self.jobs.load(Ordering::Relaxed),
            last_job_unix: inner.last_job.map(unix_seconds),
            solo: inner.solo,
            reject_reasons: inner.reject_reasons.clone(),
            stale_reasons: inner.stale_reasons.clone(),
            last_reject: inner.last_reject.clone(),
            difficulty: inner.difficulty,
            pool: inner.pool.clone(),
            connected: inner.connected,
            last_switch_ms: inner.last_switch.map(|d| d.as_secs_f64() * 1e3),
            max_switch_ms: inner.max_switch.map(|d| d.as_secs_f64() * 1e3),
            latency: latency_summary(&inner.latencies),
            difficulty_accepted: inner.booked.difficulty_accepted,
            difficulty_rejected: inner.booked.difficulty_rejected,
            difficulty_stale: inner.booked.difficulty_stale,
            best_share: inner.booked.best_share,
            last_accepted_unix: inner.booked.last_accepted.map(unix_seconds),
        }
    }
}

fn unix_seconds(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Lower a gauge without wrapping below zero (a peer answering a share twice must not make it
/// read 2^64).
fn gauge_down(gauge: &AtomicU64) {
    let _ = gauge.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| v.checked_sub(1));
}

/// Count `reason` in a map of at most [`MAX_REASONS`] names; returns the name it was counted
/// under (cut to a sane length; [`OTHER_REASON`] once the map is full).
fn count_reason(map: &mut BTreeMap<String, u64>, reason: &str) -> String {
    let mut name: String = reason.chars().take(MAX_REASON_LEN).collect();
    if !map.contains_key(&name) && map.len() >= MAX_REASONS - 1 {
        name = OTHER_REASON.to_owned();
    }
    *map.entry(name.clone()).or_insert(0) += 1;
    name
}

fn latency_summary(samples: &VecDeque<Duration>) -> Option<LatencySummary> {
    if samples.is_empty() {
        return None;
    }
    let mut ms: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1e3).collect();
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| ms[((ms.len() - 1) as f64 * q).round() as usize];
    Some(LatencySummary {
        samples: ms.len(),
        median_ms: at(0.5),
        p99_ms: at(0.99),
        max_ms: at(1.0),
    })
}

/// Hash rate over sliding windows: samples of a running total, kept for the longest window.
#[derive(Clone, Debug)]
pub struct RateMeter {
    keep: Duration,
    samples: VecDeque<(Instant, u64)>,
}

impl RateMeter {
    /// A meter whose counter was 0 at `start`.
    pub fn new(keep: Duration, start: Instant) -> Self {
        RateMeter {
            keep,
            samples: VecDeque::from([(start, 0)]),
        }
    }

    pub fn record(&mut self, at: Instant, total: u64) {
        self.samples.push_back((at, total));
        // Keep one sample older than the window so the full window can be measured.
        while self.samples.len() > 2
            && self
                .samples
                .get(1)
                .is_some_and(|&(t, _)| at.duration_since(t) >= self.keep)
        {
            self.samples.pop_front();
        }
    }

    /// Units per second over the last `window` (or since the first sample, if younger), ending
    /// at `now` with the counter at `total`.
    pub fn rate(&self, now: Instant, total: u64, window: Duration) -> f64 {
        // The newest sample at least `window` old, else the oldest one.
        let base = self
            .samples
            .iter()
            .rev()
            .find(|&&(t, _)| now.duration_since(t) >= window)
            .or_else(|| self.samples.front());
        match base {
            Some(&(t, v)) => {
                let secs = now.duration_since(t).as_secs_f64();
                if secs > 0.0 {
                    total.saturating_sub(v) as f64 / secs
                } else {
                    0.0
                }
            }
            None => 0.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_are_booked_by_difficulty_per_device() {
        let stats = MiningStats::new([(0, "cpu".to_owned()), (3, "gpu3".to_owned())]);
        stats.book(3, 8.0, Verdict::Accepted);
        stats.book(3, 8.0, Verdict::Accepted);
        stats.book(0, 2.0, Verdict::Rejected);
        stats.book(3, 4.0, Verdict::Stale);
        // An unknown device still counts in the totals; a nonsense difficulty counts as 0.
        stats.book(9, f64::NAN, Verdict::Accepted);
        stats.record_best_share(3, 100.0);
        stats.record_best_share(0, 50.0);
        stats.record_best_share(3, f64::INFINITY);
        let s = stats.snapshot();
        assert_eq!(s.difficulty_accepted, 16.0);
        assert_eq!(s.difficulty_rejected, 2.0);
        assert_eq!(s.difficulty_stale, 4.0);
        assert_eq!(s.best_share, 100.0);
        assert!(s.last_accepted_unix.is_some());
        let (cpu, gpu) = (&s.devices[0], &s.devices[1]);
        assert_eq!(
            (gpu.accepted, gpu.rejected, gpu.difficulty_accepted),
            (2, 0, 16.0)
        );
        assert_eq!(
            (cpu.accepted, cpu.rejected, cpu.difficulty_rejected),
            (0, 1, 2.0)
        );
        assert_eq!((cpu.best_share, gpu.best_share), (50.0, 100.0));
        assert_eq!(cpu.last_accepted_unix, None);
    }

    /// A pool's reject text keyed the map without a bound (89 MB to 959 MB in 12 s): now at most
    /// MAX_REASONS names, the rest under "other", each cut to a sane length.
    #[test]
    fn reasons_from_a_peer_cannot_grow_the_maps() {
        let stats = MiningStats::new([(0, "cpu".to_owned())]);
        for i in 0..100_000 {
            stats.record_reject(&format!("reason {i} {}", "x".repeat(1000)));
            stats.record_stale(&format!("why {i}"));
        }
        let snap = stats.snapshot();
        assert_eq!(snap.reject_reasons.len(), MAX_REASONS);
        assert_eq!(snap.stale_reasons.len(), MAX_REASONS);
        assert_eq!(snap.reject_reasons.values().sum::<u64>(), 100_000);
        assert!(snap.reject_reasons[OTHER_REASON] > 99_000);
        assert!(snap.reject_reasons.keys().all(|k| k.chars().count() <= 80));
        assert!(snap.last_reject.is_some_and(|r| r == OTHER_REASON));
        // The books still balance: every reject and stale counted once.
        assert_eq!(snap.rejected + snap.stale, 200_000);
    }

    #[test]
    fn rate_meter_windows() {
        let t0 = Instant::now();
        let mut m = RateMeter::new(Duration::from_secs(60), t0);
        for s in 1..=100u64 {
            // 10 units/s for the first 90 s, then 100 units/s.
            let total = if s <= 90 {
                s * 10
            } else {
                900 + (s - 90) * 100
            };
            m.record(t0 + Duration::from_secs(s), total);
        }
        let now = t0 + Duration::from_secs(100);
        let r5 = m.rate(now, 1900, Duration::from_secs(5));
        assert!((r5 - 100.0).abs() < 1e-9, "{r5}");
        let r60 = m.rate(now, 1900, Duration::from_secs(60));
        // From t=40 (400) to t=100 (1900).
        assert!((r60 - 25.0).abs() < 1e-9, "{r60}");
        assert!(m.samples.len() <= 62);
    }
}
