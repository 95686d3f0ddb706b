//! The hash-rate benchmark behind `wgminer bench`: no network, a fixed header at pool difficulty
//! 1 (so hits are rare, as in real mining), the nonce space walked in calls sized to about a
//! quarter of a second, every hit re-verified.

use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use crate::backend::{Backend, BackendError};
use crate::pow::DIFF1_TARGET;
use crate::work::{verify_hits, NonceRange, WorkUnit};

/// The genesis block header: real data, and nothing special about it for hashing speed.
const BENCH_HEADER: &str = "0100000000000000000000000000000000000000000000000000000000000000000000003ba3edfd7a7b12b27ac72c3e67768f617fc81bc3888a51323a9fb8aa4b1e5e4a29ab5f49ffff001d1dac2b7c";

/// The figures of one benchmark run.
#[derive(Clone, Debug, serde::Serialize)]
pub struct BenchResult {
    pub backend: String,
    pub hashes: u64,
    pub seconds: f64,
    pub hashes_per_second: f64,
    /// Verified hits at difficulty 1 (expect about one per 4.3 GH).
    pub hits: usize,
    pub hardware_errors: usize,
    /// `(seconds since the start, hashes so far)` after every scan call: the exact record the
    /// time series of [`rate_samples`] is taken from. Not part of the serialised figures.
    #[serde(skip)]
    pub trace: Vec<(f64, u64)>,
}

/// One point of a device's hash-rate time series: at `seconds` after the start it had done
/// `hashes`, and `hashes_per_second` is its rate over the interval that ends there.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct RateSample {
    pub seconds: f64,
    pub hashes: u64,
    pub hashes_per_second: f64,
}

fn bench_header(ntime_bump: u32) -> [u8; 80] {
    let mut h = [0u8; 80];
    for (i, byte) in h.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&BENCH_HEADER[2 * i..2 * i + 2], 16).expect("constant hex");
    }
    let t = u32::from_le_bytes([h[68], h[69], h[70], h[71]]).wrapping_add(ntime_bump);
    h[68..72].copy_from_slice(&t.to_le_bytes());
    h
}

/// Run `backend` for about `seconds`, calling `progress(hashes_so_far, elapsed_seconds)` after
/// every scan call.
pub fn run(
    backend: &mut dyn Backend,
    seconds: f64,
    mut progress: impl FnMut(u64, f64),
) -> Result<BenchResult, BackendError> {
    let cancel = AtomicBool::new(false);
    let budget = Duration::from_secs_f64(seconds);
    let mut batch: u64 = 1 << 16;
    let mut ntime_bump = 0u32;
    let mut next_nonce: u64 = 0;
    let (mut hashes, mut hits, mut hw) = (0u64, 0usize, 0usize);
    // One entry per ~250 ms call: a few hundred bytes for a long run, nothing in the hot loop.
    let mut trace = Vec::with_capacity((seconds * 8.0).clamp(16.0, 65536.0) as usize);
    let started = Instant::now();
    while started.elapsed() < budget {
        if next_nonce >= 1 << 32 {
            ntime_bump += 1;
            next_nonce = 0;
        }
        let count = batch.min((1 << 32) - next_nonce);
        let unit = WorkUnit::new(
            bench_header(ntime_bump),
            DIFF1_TARGET,
            NonceRange::new(next_nonce as u32, count),
        );
        let call = Instant::now();
        let report = backend.scan(std::slice::from_ref(&unit), &cancel)?;
        let took = call.elapsed().as_secs_f64();
        let verified = verify_hits(std::slice::from_ref(&unit), &report.hits);
        hits += verified.solutions.len();
        hw += verified.hardware_errors.len();
        hashes += report.hashes;
        next_nonce += count;
        let now = started.elapsed().as_secs_f64();
        trace.push((now, hashes));
        progress(hashes, now);
        // Aim for ~250 ms per call, without overshooting the remaining time.
        let left = budget.saturating_sub(started.elapsed()).as_secs_f64();
        let want = (0.25f64).min(left.max(0.01));
        if took > 0.0 {
            let scaled = (count as f64 * want / took).clamp(1024.0, (1u64 << 32) as f64);
            batch = scaled as u64;
        } else {
            batch = (batch * 2).min(1 << 32);
        }
    }
    let secs = started.elapsed().as_secs_f64();
    // The trace ends where the measurement does, so the samples add up to its rate exactly.
    trace.push((secs, hashes));
    Ok(BenchResult {
        backend: backend.label(),
        hashes,
        seconds: secs,
        hashes_per_second: hashes as f64 / secs,
        hits,
        hardware_errors: hw,
        trace,
    })
}

/// A device's rate at a fixed `interval` (seconds), from the `trace` of [`run`]. The cumulative
/// hash count is taken at `interval`, `2 * interval`, … and at the end of the run (which
/// replaces the last grid instant when it comes less than a quarter of an interval after it),
/// interpolated linearly between the two scan calls around each instant (a call hashes at an
/// even pace); each sample's rate is the hashes since the previous sample over the time since
/// it. Built on exact call boundaries, so a ~250 ms call never makes one sample zero and the
/// next double, and the rates' time-weighted mean is the run's rate.
pub fn rate_samples(trace: &[(f64, u64)], interval: f64) -> Vec<RateSample> {
    let Some(&(end, _)) = trace.last() else {
        return Vec::new();
    };
    if interval.is_nan() || interval <= 0.0 || end.is_nan() || end <= 0.0 {
        return Vec::new();
    }
    // Cumulative hashes at time t (asked for in increasing t), with (0 s, 0 hashes) as the first
    // known point: `next` is the first trace entry at or after the last t asked for.
    let mut next = 0;
    let mut at = |t: f64| -> f64 {
        while next < trace.len() && trace[next].0 < t {
            next += 1;
        }
        let (t0, h0) = match next {
            0 => (0.0, 0.0),
            i => (trace[i - 1].0, trace[i - 1].1 as f64),
        };
        match trace.get(next) {
            Some(&(t1, h1)) if t1 > t0 => h0 + (h1 as f64 - h0) * (t - t0) / (t1 - t0),
            Some(&(_, h1)) => h1 as f64,
            None => h0,
        }
    };
    let mut out = Vec::new();
    let (mut prev_t, mut prev_h) = (0.0f64, 0.0f64);
    let mut k = 1u64;
    loop {
        let grid = k as f64 * interval;
        // The last sample ends at the run's end; the few milliseconds a run overshoots (under
        // a quarter of an interval) join the sample before it instead of standing alone.
        let t = if grid >= end - interval * 0.25 {
            end
        } else {
            grid
        };
        let h = at(t);
        out.push(RateSample {
            seconds: t,
            hashes: h.round() as u64,
            hashes_per_second: (h - prev_h) / (t - prev_t),
        });
        if t >= end {
            return out;
        }
        (prev_t, prev_h) = (t, h);
        k += 1;
    }
}

/// "12.34 MH/s"-style rate.
pub fn format_rate(hps: f64) -> String {
    const UNITS: [&str; 6] = ["H/s", "kH/s", "MH/s", "GH/s", "TH/s", "PH/s"];
    let mut v = hps;
    let mut i = 0;
    while v >= 1000.0 && i < UNITS.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    format!("{v:.2} {}", UNITS[i])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_get_units() {
        assert_eq!(format_rate(950.0), "950.00 H/s");
        assert_eq!(format_rate(18_400_000.0), "18.40 MH/s");
        assert_eq!(format_rate(7.5e9), "7.50 GH/s");
    }

    #[test]
    fn samples_sit_on_a_fixed_grid_and_add_up() {
        // Calls of 0.3 s at 1000 H/s, then one of 0.2 s at 2000 H/s.
        let trace = [(0.3, 300), (0.6, 600), (0.9, 900), (1.1, 1300)];
        let s = rate_samples(&trace, 0.25);
        let times: Vec<f64> = s.iter().map(|s| s.seconds).collect();
        assert_eq!(times, [0.25, 0.5, 0.75, 1.0, 1.1]);
        for r in &s[..3] {
            assert!((r.hashes_per_second - 1000.0).abs() < 1e-6, "{s:?}");
        }
        // 0.75..1.0: 0.15 s at 1000 H/s, 0.1 s at 2000 H/s.
        assert!((s[3].hashes_per_second - 1400.0).abs() < 1e-6, "{s:?}");
        assert!((s[4].hashes_per_second - 2000.0).abs() < 1e-6, "{s:?}");
        assert_eq!(s.last().unwrap().hashes, 1300);
        // Time-weighted, the samples give the run's rate.
        let (mut prev, mut hashes) = (0.0, 0.0);
        for r in &s {
            hashes += r.hashes_per_second * (r.seconds - prev);
            prev = r.seconds;
        }
        assert!((hashes - 1300.0).abs() < 1e-6);
    }

    #[test]
    fn samples_edge_cases() {
        assert!(rate_samples(&[], 0.25).is_empty());
        assert!(rate_samples(&[(1.0, 10)], 0.0).is_empty());
        assert!(rate_samples(&[(0.0, 0)], 0.25).is_empty());
        // One call shorter than the interval: one sample.
        let s = rate_samples(&[(0.1, 50)], 0.25);
        assert_eq!(s.len(), 1);
        assert_eq!((s[0].seconds, s[0].hashes), (0.1, 50));
        assert!((s[0].hashes_per_second - 500.0).abs() < 1e-9);
        // An end a hair past the grid joins the last grid sample.
        let s = rate_samples(&[(0.5001, 500)], 0.25);
        assert_eq!(s.len(), 2);
        assert_eq!(s[1].seconds, 0.5001);
    }

    #[test]
    fn bench_header_is_genesis() {
        let h = bench_header(0);
        assert_eq!(
            crate::pow::block_hash(&h).to_string(),
            "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f"
        );
    }
}
