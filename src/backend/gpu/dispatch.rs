//! Cutting work into dispatches and sizing them: the [`Planner`] packs work units' nonce ranges
//! into rows (one dispatch holds up to [`MAX_ROWS`] rows, from one unit or many), and the
//! [`Tuner`] sizes dispatches toward a target GPU time from the rate it measures. Pure logic,
//! no wgpu, so it is tested on its own.

use std::time::Duration;

use super::kernel::{MAX_ROWS, MAX_ROW_NONCES};
use crate::work::{NonceRange, WorkUnit};

/// A run of nonces of one work unit, as one row of a dispatch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RowSpec {
    pub unit: usize,
    pub nonces: NonceRange,
}

/// Most nonces one row may hold: a row of `count` nonces runs `ceil(count / per_group)`
/// workgroups along x, and no dispatch dimension may exceed the device's `max_groups`
/// (`max_compute_workgroups_per_dimension`, 65,535 on most). `per_group` is the nonces one
/// workgroup hashes (workgroup size x nonces per invocation).
pub fn row_limit(per_group: u64, max_groups: u32) -> u64 {
    per_group
        .max(1)
        .saturating_mul(u64::from(max_groups.max(1)))
        .min(MAX_ROW_NONCES)
}

/// Workgroups along x for rows of at most `longest` nonces.
pub fn groups_along_row(longest: u64, per_group: u64) -> u64 {
    longest.div_ceil(per_group.max(1)).max(1)
}

/// Walks the units' nonce ranges in order and hands out dispatch-sized batches of rows.
pub struct Planner {
    /// Each unit's nonce range, in order.
    ranges: Vec<NonceRange>,
    unit: usize,
    /// Nonces of `units[unit]` already handed out.
    done: u64,
}

impl Planner {
    pub fn new(units: &[WorkUnit]) -> Self {
        let mut p = Planner {
            ranges: units.iter().map(|u| u.nonces).collect(),
            unit: 0,
            done: 0,
        };
        p.skip_finished();
        p
    }

    fn skip_finished(&mut self) {
        while self.unit < self.ranges.len() && self.done >= self.ranges[self.unit].count {
            self.unit += 1;
            self.done = 0;
        }
    }

    pub fn is_done(&self) -> bool {
        self.unit >= self.ranges.len()
    }

    /// Up to `budget` nonces as rows of at most `row_max` nonces each (and at most
    /// [`MAX_ROWS`] rows). Empty once every unit is handed out.
    pub fn next_batch(&mut self, budget: u64, row_max: u64) -> Vec<RowSpec> {
        let row_max = row_max.clamp(1, MAX_ROW_NONCES);
        let mut left = budget.max(1);
        let mut rows = Vec::new();
        while left > 0 && rows.len() < MAX_ROWS && !self.is_done() {
            let range = self.ranges[self.unit];
            let take = (range.count - self.done).min(row_max).min(left);
            let (_, rest) = range.split_at(self.done);
            rows.push(RowSpec {
                unit: self.unit,
                nonces: NonceRange::new(rest.start, take),
            });
            self.done += take;
            left -= take;
            self.skip_finished();
        }
        rows
    }
}

/// Sizes dispatches so each takes about `target` on the GPU: long enough that launch and
/// readback overheads vanish, short enough that cancellation and new work are prompt.
#[derive(Clone, Debug)]
pub struct Tuner {
    nonces: u64,
    target: Duration,
    /// Dispatch sizes are multiples of this (one workgroup's worth of nonces).
    quantum: u64,
    max: u64,
}

impl Tuner {
    pub fn new(initial: u64, target: Duration, quantum: u64, max: u64) -> Self {
        let quantum = quantum.max(1);
        let max = max.max(quantum);
        Tuner {
            nonces: round_to(initial, quantum).clamp(quantum, max),
            target,
            quantum,
            max,
        }
    }

    /// The size of the next dispatch.
    pub fn nonces(&self) -> u64 {
        self.nonces
    }

    /// Learn from a dispatch of `nonces` that kept the GPU busy for `busy`. Moves at most a
    /// factor of two at a time, so one noisy measurement cannot swing the size far.
    pub fn observe(&mut self, nonces: u64, busy: Duration) {
        // A dispatch much smaller than planned (the ragged end of a scan) says little.
        if nonces < self.nonces / 2 || busy.is_zero() {
            return;
        }
        let ideal = nonces as f64 * self.target.as_secs_f64() / busy.as_secs_f64();
        let bounded = ideal.clamp(self.nonces as f64 / 2.0, self.nonces as f64 * 2.0);
        self.nonces = round_to(bounded as u64, self.quantum).clamp(self.quantum, self.max);
    }
}

fn round_to(n: u64, quantum: u64) -> u64 {
    n.div_ceil(quantum) * quantum
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pow::DIFF1_TARGET;

    fn unit(start: u32, count: u64) -> WorkUnit {
        WorkUnit::new([7u8; 80], DIFF1_TARGET, NonceRange::new(start, count))
    }

    #[test]
    fn planner_covers_every_nonce_once_across_units_and_wraps() {
        let units = vec![
            unit(u32::MAX - 10, 100),
            unit(0, 0),
            unit(5, 1000),
            unit(9, 1 << 32),
        ];
        let mut p = Planner::new(&units);
        let mut seen = vec![0u64; units.len()];
        let mut batches = 0;
        while !p.is_done() {
            let rows = p.next_batch(1 << 30, 1 << 24);
            assert!(!rows.is_empty() && rows.len() <= MAX_ROWS);
            assert!(rows.iter().map(|r| r.nonces.count).sum::<u64>() <= 1 << 30);
            for r in rows {
                let u = &units[r.unit];
                // Rows are consecutive pieces of their unit's range.
                assert_eq!(
                    r.nonces.start,
                    u.nonces.start.wrapping_add(seen[r.unit] as u32)
                );
                assert!(r.nonces.count <= 1 << 24);
                seen[r.unit] += r.nonces.count;
            }
            batches += 1;
        }
        assert_eq!(seen, vec![100, 0, 1000, 1 << 32]);
        assert_eq!(
            batches, 5,
            "4 GiB of nonces in 1 GiB batches, the first batch packs the small units"
        );
        assert!(p.next_batch(100, 100).is_empty());
    }

    #[test]
    fn rows_never_need_more_workgroups_than_the_device_allows() {
        // The H100 failure: 64 x 1 nonces per workgroup, 2^24-nonce rows, 65,536 groups.
        assert_eq!(row_limit(64, 65_535), 64 * 65_535);
        assert!(groups_along_row(row_limit(64, 65_535), 64) <= 65_535);
        assert_eq!(row_limit(256 * 8, 65_535), MAX_ROW_NONCES);
        assert_eq!(row_limit(1024 * 1024, 65_535), MAX_ROW_NONCES);
        assert_eq!(row_limit(0, 0), 1);
        // Against a small limit: every row of every batch fits.
        for (per_group, max_groups) in [(1u64, 7u32), (3, 5), (64, 100), (100, 1)] {
            let limit = row_limit(per_group, max_groups);
            let units = [unit(0, 1000), unit(0, 1 << 20), unit(77, 33)];
            let mut p = Planner::new(&units);
            let mut seen = 0u64;
            while !p.is_done() {
                let rows = p.next_batch(1 << 30, limit);
                let longest = rows.iter().map(|r| r.nonces.count).max().unwrap_or(0);
                assert!(
                    groups_along_row(longest, per_group) <= u64::from(max_groups),
                    "{per_group} x {max_groups}: a row of {longest}"
                );
                seen += rows.iter().map(|r| r.nonces.count).sum::<u64>();
            }
            assert_eq!(seen, 1000 + (1 << 20) + 33);
        }
    }

    #[test]
    fn tuner_converges_and_stays_on_quantum() {
        let mut t = Tuner::new(4096, Duration::from_millis(30), 2048, 1 << 32);
        // A device doing 1e9 nonces/s should settle near 30e6 per dispatch.
        for _ in 0..40 {
            let n = t.nonces();
            t.observe(n, Duration::from_secs_f64(n as f64 / 1e9));
        }
        assert!(
            (t.nonces() as f64 / 30e6 - 1.0).abs() < 0.01,
            "{}",
            t.nonces()
        );
        assert_eq!(t.nonces() % 2048, 0);
        // A small ragged dispatch is ignored.
        let before = t.nonces();
        t.observe(100, Duration::from_secs(1));
        assert_eq!(t.nonces(), before);
    }
}
