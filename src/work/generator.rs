//! [`WorkGenerator`]: turns one [`PreparedJob`] into a stream of [`WorkUnit`]s that never
//! overlap, however many devices draw from it. Pure: the work manager holds one behind a lock and
//! every device worker takes its next batch from it, so the extranonce2 counter is shared and two
//! devices can never hash the same header and nonce.
//!
//! Order of rolling, cheapest first: the nonce range of one header is cut into pieces as large as
//! the caller asks for; once a header's 2^32 nonces are handed out, the next version bits under the
//! job's mask (BIP310/BIP320: only the header's midstate changes); once the mask is spent, the next
//! extranonce2 (one coinbase hash and the merkle branch). nTime follows the clock through
//! [`NtimeWindow::at_elapsed`](super::NtimeWindow::at_elapsed) as each unit is made; that changes only the header's tail, so pieces
//! of one header made at different seconds still never overlap (their nonce ranges differ).
//!
//! A header-only job (fixed merkle root: a Stratum V2 standard channel) has no extranonce2, so
//! nTime takes its place as the outer field: a header is (nTime, version bits), the version bits
//! run through the mask under one nTime, then nTime steps up by one. nTime only ever rises: it
//! follows the clock, and runs ahead of it when a fast device spends every version of a second
//! early (always, with version rolling off), up to the end of the job's window. So no two units
//! of the job share a header, and work runs out only at the window's end.

use std::sync::Arc;

use super::job::{CoinbaseRoot, JobError, PreparedJob};
use super::rolling::{Extranonce2Roller, Roll, VersionRoller};
use super::unit::{NonceRange, WorkUnit};

/// Nonces in one header.
const NONCES_PER_HEADER: u64 = 1 << 32;

/// The most nonces one batch may ask for: 64 headers, seconds of work for the fastest GPUs.
/// More would only delay how soon a device sees a fresh nTime.
pub const MAX_BATCH_NONCES: u64 = 64 * NONCES_PER_HEADER;

/// Why no more work can be made from a job: every extranonce2 and version value is spent (with a
/// 4-byte extranonce2 that is 2^64 headers, so in practice only tiny test sizes reach it), or,
/// for a header-only job, every version value of every nTime in its window (2^32 nonces per
/// second of the window without version rolling: a fast GPU does reach that before the pool's
/// next job, and waits for it).
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum GeneratorError {
    #[error("every header of job {job_id} is spent (extranonce2, version bits, nTime window); waiting for the next job")]
    Exhausted { job_id: String },
    #[error("job {job_id}: {source}")]
    Job {
        job_id: String,
        #[source]
        source: JobError,
    },
}

/// A unit and the rolled fields it was made from (the share for a hit needs them).
#[derive(Clone, Debug)]
pub struct RolledUnit {
    pub unit: WorkUnit,
    pub roll: Roll,
}

/// The header being cut into nonce ranges.
#[derive(Clone, Debug)]
struct Cursor {
    root: CoinbaseRoot,
    version_bits: u32,
    /// Header-only jobs: the header's nTime (part of what makes it distinct). Unused otherwise:
    /// there nTime follows the clock unit by unit.
    ntime: u32,
    /// Nonces of this header already handed out, from 0.
    next_nonce: u64,
}

/// What tells one header's merkle root (or nTime) from the next once the version bits are spent.
#[derive(Clone, Debug)]
enum Outer {
    /// A coinbase job: the next extranonce2.
    Extranonce2(Extranonce2Roller),
    /// A header-only job: the next nTime.
    Ntime,
}

/// Non-overlapping work units from one job.
#[derive(Clone, Debug)]
pub struct WorkGenerator {
    job: Arc<PreparedJob>,
    outer: Outer,
    versions: VersionRoller,
    cursor: Option<Cursor>,
    /// Headers started so far (for logs and tests).
    headers: u64,
}

impl WorkGenerator {
    pub fn new(job: Arc<PreparedJob>) -> Result<Self, GeneratorError> {
        let j = job.job();
        let outer = if j.is_header_only() {
            Outer::Ntime
        } else {
            Outer::Extranonce2(Extranonce2Roller::new(j.coinbase.extranonce2_size).map_err(
                |source| GeneratorError::Job {
                    job_id: j.id.clone(),
                    source,
                },
            )?)
        };
        let versions = VersionRoller::new(j.version_mask);
        Ok(WorkGenerator {
            job,
            outer,
            versions,
            cursor: None,
            headers: 0,
        })
    }

    pub fn job(&self) -> &Arc<PreparedJob> {
        &self.job
    }

    /// Go on with `job`, the same job under another share target (see
    /// [`PreparedJob::with_share_target`]): the rolling counters continue, so no header is cut
    /// twice. Units made from now on carry the new target.
    pub fn retarget(&mut self, job: Arc<PreparedJob>) {
        debug_assert_eq!(job.job().id, self.job.job().id);
        self.job = job;
    }

    /// Headers started so far.
    pub fn headers_started(&self) -> u64 {
        self.headers
    }

    /// Units covering `nonces` nonces (at least one unit; at most [`MAX_BATCH_NONCES`]), with
    /// nTime for `elapsed_secs` after the job arrived.
    pub fn take(
        &mut self,
        nonces: u64,
        elapsed_secs: u64,
    ) -> Result<Vec<RolledUnit>, GeneratorError> {
        let mut wanted = nonces.clamp(1, MAX_BATCH_NONCES);
        let clock = self.job.job().ntime_window().at_elapsed(elapsed_secs);
        let header_only = matches!(self.outer, Outer::Ntime);
        let mut out = Vec::new();
        while wanted > 0 {
            // A header-only job's header carries its nTime: a header started before the clock
            // moved on is left for a fresh one at the clock's nTime.
            let spent = self.cursor.as_ref().is_none_or(|c| {
                c.next_nonce >= NONCES_PER_HEADER || (header_only && c.ntime < clock)
            });
            if spent {
                let next = self.next_header(clock)?;
                self.cursor = Some(next);
            }
            let Some(cursor) = self.cursor.as_mut() else {
                break;
            };
            let count = wanted.min(NONCES_PER_HEADER - cursor.next_nonce);
            let range = NonceRange::new(cursor.next_nonce as u32, count);
            let (root, bits) = (cursor.root, cursor.version_bits);
            let ntime = if header_only { cursor.ntime } else { clock };
            cursor.next_nonce += count;
            wanted -= count;
            let unit = self
                .job
                .work_unit_for(&root, ntime, bits, range)
                .map_err(|source| self.job_error(source))?;
            out.push(RolledUnit {
                unit,
                roll: PreparedJob::roll_for(&root, ntime, bits),
            });
        }
        Ok(out)
    }

    /// The next header to cut: the next version bits under the current extranonce2, else the
    /// next extranonce2 with the mask started over. A header-only job: the next version bits
    /// under the current nTime while the clock has not passed it, else the next nTime (the
    /// clock's, or one past the current when running ahead of it) with the mask started over.
    fn next_header(&mut self, clock: u32) -> Result<Cursor, GeneratorError> {
        let exhausted = || GeneratorError::Exhausted {
            job_id: self.job.job().id.clone(),
        };
        let current = self.cursor.as_ref().map(|c| (c.root, c.ntime));
        let (root, ntime) = match &mut self.outer {
            Outer::Extranonce2(extranonce2) => {
                if let (Some((root, _)), Some(bits)) = (current, self.versions.next()) {
                    self.headers += 1;
                    return Ok(Cursor {
                        root,
                        version_bits: bits,
                        ntime: 0,
                        next_nonce: 0,
                    });
                }
                let e2 = extranonce2.next().ok_or_else(exhausted)?;
                let root = self
                    .job
                    .coinbase_root(&e2)
                    .map_err(|source| self.job_error(source))?;
                (root, 0)
            }
            Outer::Ntime => {
                match current {
                    Some((root, ntime)) if ntime >= clock => {
                        if let Some(bits) = self.versions.next() {
                            self.headers += 1;
                            return Ok(Cursor {
                                root,
                                version_bits: bits,
                                ntime,
                                next_nonce: 0,
                            });
                        }
                        // Every version of this second is spent: run ahead of the clock.
                        let next = ntime.checked_add(1).ok_or_else(exhausted)?;
                        if !self.job.job().ntime_window().contains(next) {
                            return Err(exhausted());
                        }
                        (root, next)
                    }
                    // The clock moved past the current nTime (or nothing is cut yet): its nTime,
                    // never lower than one already used, so no (nTime, version) comes twice.
                    _ => {
                        let root = self
                            .job
                            .root(None)
                            .map_err(|source| self.job_error(source))?;
                        (root, clock)
                    }
                }
            }
        };
        self.versions = VersionRoller::new(self.job.job().version_mask);
        // The roller's first value is 0: the pool's own version.
        let bits = self.versions.next().unwrap_or(0);
        self.headers += 1;
        Ok(Cursor {
            root,
            version_bits: bits,
            ntime,
            next_nonce: 0,
        })
    }

    fn job_error(&self, source: JobError) -> GeneratorError {
        GeneratorError::Job {
            job_id: self.job.job().id.clone(),
            source,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::HashSet;

    use bitcoin::block::Version;
    use bitcoin::hashes::Hash;
    use bitcoin::pow::CompactTarget;
    use bitcoin::{BlockHash, TxMerkleNode};

    use super::*;
    use crate::pow::DIFF1_TARGET;
    use crate::work::job::{CoinbaseTemplate, Job};

    pub(crate) fn job(mask: u32, extranonce2_size: usize) -> Arc<PreparedJob> {
        let job = Job {
            id: "g1".into(),
            prev_hash: BlockHash::from_byte_array([3; 32]),
            version: Version::from_consensus(0x2000_0000),
            version_mask: mask,
            bits: CompactTarget::from_consensus(0x1d00_ffff),
            ntime: 1_700_000_000,
            ntime_roll: 600,
            coinbase: CoinbaseTemplate {
                prefix: (0..70u8).collect(),
                extranonce1: vec![1, 2, 3, 4],
                extranonce2_size,
                suffix: (0..40u8).collect(),
            },
            merkle_branch: vec![TxMerkleNode::from_byte_array([9; 32])],
            fixed_merkle_root: None,
            share_target: DIFF1_TARGET,
            clean: true,
        };
        Arc::new(job.prepare().expect("valid job"))
    }

    /// Every (header, nonce) handed out is distinct, across batch sizes and nTime changes, and
    /// every unit's header is what the reference path builds for its roll.
    #[test]
    fn units_never_overlap_and_match_their_rolls() {
        let prepared = job(0b1_0000_0000_0000_0000_0000, 4);
        let mut g = WorkGenerator::new(Arc::clone(&prepared)).unwrap();
        let mut seen: HashSet<([u8; 76], u32)> = HashSet::new();
        let mut total = 0u64;
        for (i, size) in [1u64 << 30, 3 << 31, 1 << 32, 5 << 32, 7]
            .iter()
            .enumerate()
        {
            let batch = g.take(*size, i as u64).unwrap();
            let covered: u64 = batch.iter().map(|u| u.unit.nonces.count).sum();
            assert_eq!(covered, *size);
            total += covered;
            for RolledUnit { unit, roll } in &batch {
                let reference = prepared.job().header(roll, unit.nonces.start).unwrap();
                assert_eq!(
                    unit.header_with_nonce(unit.nonces.start),
                    crate::pow::header_bytes(&reference)
                );
                // Header without nTime and nonce: (root, version) identifies the header.
                let mut key = [0u8; 76];
                key[..68].copy_from_slice(&unit.header[..68]);
                key[68..72].copy_from_slice(&unit.header[72..76]);
                // Sample the range's ends: overlapping ranges would share one of them.
                for nonce in [
                    unit.nonces.start,
                    unit.nonces
                        .start
                        .wrapping_add((unit.nonces.count - 1) as u32),
                ] {
                    assert!(
                        seen.insert((key, nonce)),
                        "nonce {nonce:#x} handed out twice"
                    );
                }
            }
        }
        // With a 1-bit mask, each extranonce2 gives two headers.
        assert_eq!(g.headers_started(), total.div_ceil(1 << 32));
    }

    /// A header-only job (fixed merkle root, as a Stratum V2 standard channel sends).
    fn header_only(mask: u32, ntime_roll: u32) -> Arc<PreparedJob> {
        let job = Job {
            id: "h1".into(),
            coinbase: CoinbaseTemplate::none(),
            merkle_branch: Vec::new(),
            fixed_merkle_root: Some(TxMerkleNode::from_byte_array([0x5a; 32])),
            version_mask: mask,
            ntime_roll,
            ..job(mask, 4).job().clone()
        };
        Arc::new(job.prepare().expect("valid header-only job"))
    }

    /// Devices drawing in turn from a header-only job, with the clock moving, standing still
    /// and going back (a slower device's reading): no (header, nonce) twice, nTime never falls
    /// and stays in the window, no unit carries an extranonce2, and every unit's header is the
    /// one rust-bitcoin builds from the job's fields.
    #[test]
    fn header_only_units_never_overlap_and_match_rust_bitcoin() {
        let prepared = header_only(0b11 << 13, 600);
        let j = prepared.job().clone();
        let mut g = WorkGenerator::new(Arc::clone(&prepared)).unwrap();
        let mut seen: HashSet<([u8; 76], u32)> = HashSet::new();
        let mut last_ntime = 0;
        for (size, elapsed) in [
            (3u64 << 31, 0u64),
            (1 << 32, 0),
            (9 << 32, 0),
            (1 << 30, 5),
            (5 << 32, 4),
            (7, 5),
            (2 << 32, 9),
        ] {
            let batch = g.take(size, elapsed).unwrap();
            assert_eq!(batch.iter().map(|u| u.unit.nonces.count).sum::<u64>(), size);
            for RolledUnit { unit, roll } in &batch {
                assert_eq!(roll.extranonce2, None);
                assert!(roll.ntime >= last_ntime && j.ntime_window().contains(roll.ntime));
                last_ntime = roll.ntime;
                let nonce = unit.nonces.start;
                let reference = bitcoin::block::Header {
                    version: Version::from_consensus(0x2000_0000 | roll.version_bits as i32),
                    prev_blockhash: j.prev_hash,
                    merkle_root: TxMerkleNode::from_byte_array([0x5a; 32]),
                    time: roll.ntime,
                    bits: j.bits,
                    nonce,
                };
                assert_eq!(
                    unit.header_with_nonce(nonce),
                    crate::pow::header_bytes(&reference)
                );
                assert_eq!(j.header(roll, nonce).unwrap(), reference);
                let mut key = [0u8; 76];
                key.copy_from_slice(&unit.header[..76]);
                for nonce in [
                    unit.nonces.start,
                    unit.nonces
                        .start
                        .wrapping_add((unit.nonces.count - 1) as u32),
                ] {
                    assert!(seen.insert((key, nonce)), "{roll:?} nonce {nonce:#x} twice");
                }
            }
        }
        // The last batch follows the clock to its ninth second.
        assert!(last_ntime >= j.ntime + 9);
    }

    /// Without version rolling each second is one header: a fast device runs ahead of the
    /// clock through the window, then gets the exhaustion error (never a header twice).
    #[test]
    fn header_only_without_version_rolling_runs_ahead_then_runs_out() {
        let prepared = header_only(0, 3);
        let start = prepared.job().ntime;
        let mut g = WorkGenerator::new(prepared).unwrap();
        let batch = g.take(4 << 32, 0).unwrap();
        let ntimes: Vec<u32> = batch.iter().map(|u| u.roll.ntime).collect();
        assert_eq!(ntimes, [start, start + 1, start + 2, start + 3]);
        assert!(batch.iter().all(|u| u.roll.version_bits == 0));
        assert!(matches!(
            g.take(1, 1),
            Err(GeneratorError::Exhausted { .. })
        ));
    }

    #[test]
    fn a_tiny_extranonce2_space_runs_out_as_an_error() {
        let mut g = WorkGenerator::new(job(0, 1)).unwrap();
        // 256 extranonce2 values, one header each: four of the largest batches.
        for _ in 0..4 {
            assert!(g.take(MAX_BATCH_NONCES, 0).is_ok());
        }
        assert!(matches!(
            g.take(1, 0),
            Err(GeneratorError::Exhausted { .. })
        ));
    }
}
