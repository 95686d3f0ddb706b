//! What a mining run counts: hashes per device (5 s, 60 s and 15 min rates from a [`RateMeter`]),
//! shares accepted, rejected (with the pool's reasons) and stale, hardware errors, the current
//! difficulty and pool, the last clean-job switch latency, and uptime. Workers and the manager
//! update it through atomics and short locks; the status display reads a [`StatsSnapshot`].

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The longest hash-rate window reported (the 15-minute average).
pub const LONGEST_WINDOW: Duration = Duration::from_secs(15 * 60);

/// One device's counters.
#[derive(Debug)]
pub struct DeviceCounters {
    pub label: String,
    pub hashes: AtomicU64,
    pub hardware_errors: AtomicU64,
    /// Verified hits (shares found, before the pool's verdict).
    pub solutions: AtomicU64,
}

/// Everything counted during a run.
#[derive(Debug)]
pub struct MiningStats {
    started: Instant,
    pub devices: Vec<DeviceCounters>,
    pub submitted: AtomicU64,
    pub accepted: AtomicU64,
    pub rejected: AtomicU64,
    pub stale: AtomicU64,
    /// Blocks the node accepted (solo mining).
    pub blocks: AtomicU64,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    reject_reasons: BTreeMap<String, u64>,
    last_reject: Option<String>,
    difficulty: Option<f64>,
    pool: Option<String>,
    connected: bool,
    solo: bool,
    last_switch: Option<Duration>,
    max_switch: Option<Duration>,
    meters: Vec<RateMeter>,
}

/// A copy of the counters at one moment, for display and JSON.
#[derive(Clone, Debug, serde::Serialize)]
pub struct StatsSnapshot {
    pub uptime_s: f64,
    pub devices: Vec<DeviceSnapshot>,
    pub submitted: u64,
    pub accepted: u64,
    pub rejected: u64,
    pub stale: u64,
    pub blocks: u64,
    /// Whether this run mines blocks (solo) rather than pool shares.
    pub solo: bool,
    pub hardware_errors: u64,
    pub reject_reasons: BTreeMap<String, u64>,
    pub last_reject: Option<String>,
    pub difficulty: Option<f64>,
    pub pool: Option<String>,
    pub connected: bool,
    pub last_switch_ms: Option<f64>,
    pub max_switch_ms: Option<f64>,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct DeviceSnapshot {
    pub label: String,
    pub hashes: u64,
    pub rate_5s: f64,
    pub rate_60s: f64,
    pub rate_15m: f64,
    pub hardware_errors: u64,
    pub solutions: u64,
}

impl MiningStats {
    pub fn new(labels: impl IntoIterator<Item = String>) -> Self {
        let devices: Vec<DeviceCounters> = labels
            .into_iter()
            .map(|label| DeviceCounters {
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
            ..Inner::default()
        };
        MiningStats {
            started,
            devices,
            submitted: AtomicU64::new(0),
            accepted: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            stale: AtomicU64::new(0),
            blocks: AtomicU64::new(0),
            inner: Mutex::new(inner),
        }
    }

    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding this lock leaves plain counters behind: still fine to read.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn record_reject(&self, reason: &str) {
        self.rejected.fetch_add(1, Ordering::Relaxed);
        let mut inner = self.inner();
        *inner.reject_reasons.entry(reason.to_owned()).or_insert(0) += 1;
        inner.last_reject = Some(reason.to_owned());
    }

    pub fn set_difficulty(&self, difficulty: f64) {
        self.inner().difficulty = Some(difficulty);
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
            .map(|(d, m)| {
                let hashes = d.hashes.load(Ordering::Relaxed);
                DeviceSnapshot {
                    label: d.label.clone(),
                    hashes,
                    rate_5s: m.rate(now, hashes, Duration::from_secs(5)),
                    rate_60s: m.rate(now, hashes, Duration::from_secs(60)),
                    rate_15m: m.rate(now, hashes, LONGEST_WINDOW),
                    hardware_errors: d.hardware_errors.load(Ordering::Relaxed),
                    solutions: d.solutions.load(Ordering::Relaxed),
                }
            })
            .collect();
        StatsSnapshot {
            uptime_s: self.started.elapsed().as_secs_f64(),
            hardware_errors: devices.iter().map(|d| d.hardware_errors).sum(),
            devices,
            submitted: self.submitted.load(Ordering::Relaxed),
            accepted: self.accepted.load(Ordering::Relaxed),
            rejected: self.rejected.load(Ordering::Relaxed),
            stale: self.stale.load(Ordering::Relaxed),
            blocks: self.blocks.load(Ordering::Relaxed),
            solo: inner.solo,
            reject_reasons: inner.reject_reasons.clone(),
            last_reject: inner.last_reject.clone(),
            difficulty: inner.difficulty,
            pool: inner.pool.clone(),
            connected: inner.connected,
            last_switch_ms: inner.last_switch.map(|d| d.as_secs_f64() * 1e3),
            max_switch_ms: inner.max_switch.map(|d| d.as_secs_f64() * 1e3),
        }
    }
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
