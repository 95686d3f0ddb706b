//! The CPU backend: a dedicated rayon pool, nonce ranges cut into slices that threads take in
//! turn, each slice hashed by the fastest [`ScanPath`] this CPU has (or the one asked for).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use rayon::prelude::*;

use super::{Backend, BackendError, DeviceId, DeviceInfo, Feed, Progress, WorkFeed};
use crate::pow::{scan, ScanPath};
use crate::work::Hit;

/// Nonces per slice: large enough to amortise scheduling (a few microseconds a slice), small
/// enough (1 to 4 ms on one core) that a hit leaves soon after it is found and a cancel is
/// obeyed promptly.
const SLICE: u64 = 1 << 15;

/// Why the CPU backend could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CpuBackendError {
    #[error("thread count must be at least 1")]
    ZeroThreads,
    #[error("the {0} path is not supported by this CPU (available: {1})")]
    PathUnavailable(ScanPath, String),
    #[error("cannot start worker threads: {0}")]
    ThreadPool(String),
}

pub struct CpuBackend {
    path: ScanPath,
    threads: usize,
    pool: rayon::ThreadPool,
}

impl CpuBackend {
    /// A backend with `threads` workers (None: one per logical core) on `path` (None: fastest).
    pub fn new(threads: Option<usize>, path: Option<ScanPath>) -> Result<Self, CpuBackendError> {
        let threads = threads.unwrap_or_else(default_threads);
        if threads == 0 {
            return Err(CpuBackendError::ZeroThreads);
        }
        let path = match path {
            Some(p) if !p.is_available() => {
                let names: Vec<_> = ScanPath::available().iter().map(|p| p.name()).collect();
                return Err(CpuBackendError::PathUnavailable(p, names.join(", ")));
            }
            Some(p) => p,
            None => fastest_path(),
        };
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("wgminer-cpu-{i}"))
            .build()
            .map_err(|e| CpuBackendError::ThreadPool(e.to_string()))?;
        Ok(CpuBackend {
            path,
            threads,
            pool,
        })
    }

    pub fn path(&self) -> ScanPath {
        self.path
    }

    pub fn threads(&self) -> usize {
        self.threads
    }

    /// How `wgminer devices` shows the CPU.
    pub fn device_info(&self) -> DeviceInfo {
        DeviceInfo {
            index: 0,
            kind: "cpu".into(),
            name: cpu_model_name(),
            detail: format!(
                "{} threads, {} path (available: {})",
                self.threads,
                self.path,
                ScanPath::available()
                    .iter()
                    .map(|p| p.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
}

impl Backend for CpuBackend {
    fn id(&self) -> DeviceId {
        DeviceId::cpu()
    }

    fn mine(&mut self, feed: &dyn WorkFeed) -> Result<(), BackendError> {
        let path = self.path;
        loop {
            let assignment = match feed.next(true) {
                Feed::Work(a) => a,
                Feed::Empty => continue,
                Feed::Stop => return Ok(()),
            };
            let slices: Vec<(usize, crate::work::NonceRange)> = assignment
                .units
                .iter()
                .enumerate()
                .flat_map(|(i, u)| u.nonces.chunks(SLICE).map(move |r| (i, r)))
                .collect();
            let skipped = AtomicBool::new(false);
            self.pool.install(|| {
                slices.par_iter().for_each(|&(unit, range)| {
                    if assignment.is_cancelled() {
                        skipped.store(true, Ordering::Relaxed);
                        return;
                    }
                    let started = Instant::now();
                    let mut found = Vec::new();
                    scan::scan(
                        path,
                        &assignment.units[unit].pre,
                        range.start,
                        range.count,
                        &mut found,
                    );
                    let hits: Vec<Hit> =
                        found.into_iter().map(|nonce| Hit { unit, nonce }).collect();
                    feed.progress(
                        &assignment,
                        Progress {
                            hashes: range.count,
                            hits: &hits,
                            started,
                        },
                    );
                })
            });
            feed.finished(&assignment, skipped.into_inner());
        }
    }
}

/// The available path that hashes fastest here, measured: which wins depends on the core (on
/// AMD Zen 4, 16-lane AVX-512 beats SHA-NI; on many Intel cores SHA-NI wins). Takes a few
/// milliseconds.
pub fn fastest_path() -> ScanPath {
    use crate::pow::Precomputed;
    use std::time::Instant;
    let pre = Precomputed::new([0x6a09_e667; 8], [1, 2, 3], [0; 8]);
    let mut hits = Vec::new();
    let mut best = (ScanPath::best(), f64::INFINITY);
    for path in ScanPath::available() {
        let mut fastest = f64::INFINITY;
        for round in 0..3u32 {
            let started = Instant::now();
            scan::scan(path, &pre, round << 16, 1 << 13, &mut hits);
            fastest = fastest.min(started.elapsed().as_secs_f64());
        }
        if fastest < best.1 {
            best = (path, fastest);
        }
    }
    best.0
}

/// One worker per logical core.
pub fn default_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// The CPU's model name where the OS tells it, else the architecture.
fn cpu_model_name() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string())
}
