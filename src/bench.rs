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
        progress(hashes, started.elapsed().as_secs_f64());
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
    Ok(BenchResult {
        backend: backend.label(),
        hashes,
        seconds: secs,
        hashes_per_second: hashes as f64 / secs,
        hits,
        hardware_errors: hw,
    })
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
    fn bench_header_is_genesis() {
        let h = bench_header(0);
        assert_eq!(
            crate::pow::block_hash(&h).to_string(),
            "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f"
        );
    }
}
