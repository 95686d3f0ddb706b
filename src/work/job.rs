//! A [`Job`] is what a work source says to mine: the previous block, the version and the bits
//! of it a miner may roll (BIP310), nBits, nTime and how far it may roll, the coinbase split around
//! the extranonce (Stratum V1: coinb1 + extranonce1 + extranonce2 + coinb2), the merkle branch
//! from the coinbase to the root, the share target, and whether it replaces earlier jobs.
//!
//! A job has one of two shapes. Most carry a coinbase to roll, and each extranonce2 gives a new
//! merkle root. A header-only job (a Stratum V2 standard channel) carries the root itself,
//! fixed by the pool: there is no coinbase and no extranonce2, so headers differ only by version
//! bits and nTime, and its [`Roll`]s and [`Share`]s carry no extranonce2.
//!
//! Two ways to turn a job into headers, held to each other in tests:
//! - [`Job`]'s own methods are the plain reference: build the coinbase, sha256d it with
//!   rust-bitcoin, fold the branch, serialize a [`Header`].
//! - [`PreparedJob`] is the hot path for the work manager: the coinbase hash state after
//!   coinb1 + extranonce1 and the fixed header bytes are computed once per job, so a new
//!   [`WorkUnit`] costs one short coinbase tail, two SHA-256 compressions plus one per merkle level,
//!   and the unit's midstate.

use bitcoin::block::{Header, Version};
use bitcoin::hashes::{sha256d, Hash};
use bitcoin::pow::{CompactTarget, Target};
use bitcoin::{BlockHash, TxMerkleNode, Txid};
use sha2::{Digest, Sha256};

use super::rolling::{check_extranonce2_size, Extranonce2, NtimeWindow, Roll};
use super::share::Share;
use super::unit::{NonceRange, WorkUnit};
use crate::pow::{block_hash, hash_meets_target, DifficultyError, HEADER_LEN};

/// The legacy block size limit: no coinbase transaction can be longer, so anything longer is a
/// broken or hostile job, refused before it costs hashing time.
pub const MAX_COINBASE_LEN: usize = 1_000_000;

/// A merkle branch deeper than 32 levels would mean more than 2^32 transactions in a block.
pub const MAX_MERKLE_DEPTH: usize = 32;

/// How far past the pool's nTime a miner rolls nTime by default. Pools refuse shares whose nTime
/// is too far ahead (ckpool allows +7000 s, Bitcoin Core's block rule +7200 s); jobs are
/// refreshed every minute or so, so ten minutes is ample and far inside every pool's limit.
pub const DEFAULT_NTIME_ROLL: u32 = 600;

/// Why a job, a roll or a share is not usable. Never a panic: every field may come from a pool.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum JobError {
    #[error("{field} is not valid hex")]
    BadHex { field: &'static str },
    #[error("{field} has {got} bytes, expected {expected}")]
    WrongLength {
        field: &'static str,
        expected: usize,
        got: usize,
    },
    #[error("extranonce2 size {0} is outside 1..=8")]
    Extranonce2Size(usize),
    #[error("extranonce2 value {value:#x} does not fit in {size} bytes")]
    Extranonce2Overflow { value: u64, size: usize },
    #[error("extranonce2 has {got} bytes, the job expects {expected}")]
    Extranonce2Mismatch { expected: usize, got: usize },
    #[error("version bits {bits:#010x} are outside the rolling mask {mask:#010x}")]
    VersionBitsOutsideMask { bits: u32, mask: u32 },
    #[error("ntime {ntime:#010x} is outside the job's window {earliest:#010x}..={latest:#010x}")]
    NtimeOutsideWindow {
        ntime: u32,
        earliest: u32,
        latest: u32,
    },
    #[error("coinbase of {0} bytes is longer than any block")]
    CoinbaseTooLong(usize),
    #[error("merkle branch of {0} levels is deeper than any block")]
    MerkleBranchTooDeep(usize),
    #[error("share difficulty: {0}")]
    Difficulty(#[from] DifficultyError),
    #[error("share names job {got:?}, not {expected:?}")]
    WrongJob { expected: String, got: String },
    #[error("share hash {hash} is above the share target")]
    AboveShareTarget { hash: BlockHash },
    #[error("the job's merkle root is fixed: it has no coinbase to roll and takes no extranonce2")]
    Extranonce2ForFixedRoot,
    #[error("the job rolls a coinbase: every header needs an extranonce2")]
    MissingExtranonce2,
    #[error("a job with a fixed merkle root carries no coinbase or merkle branch")]
    FixedRootWithCoinbase,
}

/// The coinbase transaction as a pool hands it out: the miner's extranonce2 goes between the
/// pool's extranonce1 and the suffix. The concatenation is the legacy (witness-free)
/// serialization, whose sha256d is the txid that enters the merkle tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CoinbaseTemplate {
    /// coinb1: from the transaction version up to the extranonce.
    pub prefix: Vec<u8>,
    /// The pool's per-connection bytes (from `mining.subscribe` or `mining.set_extranonce`).
    pub extranonce1: Vec<u8>,
    /// How many bytes the miner fills in.
    pub extranonce2_size: usize,
    /// coinb2: the rest of the scriptSig, the outputs and the lock time.
    pub suffix: Vec<u8>,
}

impl CoinbaseTemplate {
    /// Length of the complete coinbase.
    pub fn len(&self) -> usize {
        self.prefix.len() + self.extranonce1.len() + self.extranonce2_size + self.suffix.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// No coinbase at all: what a header-only job (fixed merkle root) carries.
    pub fn none() -> Self {
        CoinbaseTemplate {
            prefix: Vec::new(),
            extranonce1: Vec::new(),
            extranonce2_size: 0,
            suffix: Vec::new(),
        }
    }

    /// The complete coinbase for one extranonce2.
    pub fn build(&self, extranonce2: &Extranonce2) -> Result<Vec<u8>, JobError> {
        self.check_extranonce2(extranonce2)?;
        let mut tx = Vec::with_capacity(self.len());
        tx.extend_from_slice(&self.prefix);
        tx.extend_from_slice(&self.extranonce1);
        tx.extend_from_slice(extranonce2.as_bytes());
        tx.extend_from_slice(&self.suffix);
        Ok(tx)
    }

    fn check_extranonce2(&self, extranonce2: &Extranonce2) -> Result<(), JobError> {
        if extranonce2.size() == self.extranonce2_size {
            Ok(())
        } else {
            Err(JobError::Extranonce2Mismatch {
                expected: self.extranonce2_size,
                got: extranonce2.size(),
            })
        }
    }
}

/// What a source says to mine. Plain data; [`Job::validate`] checks it and [`Job::prepare`]
/// turns it into the fast [`PreparedJob`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Job {
    /// The source's name for the job, echoed back with every share.
    pub id: String,
    pub prev_hash: BlockHash,
    /// The version as the source gives it (bits under the mask are replaced when rolling).
    pub version: Version,
    /// The version bits the source lets the miner change (BIP310); 0: no version rolling.
    pub version_mask: u32,
    pub bits: CompactTarget,
    /// The source's nTime: the earliest the miner may use.
    pub ntime: u32,
    /// How many seconds past `ntime` the miner may roll nTime.
    pub ntime_roll: u32,
    /// The coinbase to roll; [`CoinbaseTemplate::none`] when the merkle root is fixed.
    pub coinbase: CoinbaseTemplate,
    /// Siblings of the coinbase at each level of the merkle tree, bottom first (empty when the
    /// merkle root is fixed).
    pub merkle_branch: Vec<TxMerkleNode>,
    /// Header-only work: the merkle root as the source fixed it (a Stratum V2 standard
    /// channel's `NewMiningJob`). `None`: each extranonce2 makes its own root from the coinbase.
    pub fixed_merkle_root: Option<TxMerkleNode>,
    /// Hashes at or below this target are shares (for solo mining, the block target).
    pub share_target: Target,
    /// Whether this job makes all earlier jobs of the source stale.
    pub clean: bool,
}

impl Job {
    /// Check the sizes a hostile or broken source could get wrong.
    pub fn validate(&self) -> Result<(), JobError> {
        if self.fixed_merkle_root.is_some() {
            if !self.coinbase.is_empty() || !self.merkle_branch.is_empty() {
                return Err(JobError::FixedRootWithCoinbase);
            }
            return Ok(());
        }
        check_extranonce2_size(self.coinbase.extranonce2_size)?;
        if self.coinbase.len() > MAX_COINBASE_LEN {
            return Err(JobError::CoinbaseTooLong(self.coinbase.len()));
        }
        if self.merkle_branch.len() > MAX_MERKLE_DEPTH {
            return Err(JobError::MerkleBranchTooDeep(self.merkle_branch.len()));
        }
        Ok(())
    }

    /// The block target from nBits: a share at or below it is a block.
    pub fn network_target(&self) -> Target {
        Target::from_compact(self.bits)
    }

    pub fn ntime_window(&self) -> NtimeWindow {
        NtimeWindow::new(self.ntime, self.ntime_roll)
    }

    /// The header version for some version bits: BIP310's
    /// `(job version & !mask) | (version_bits & mask)`, refusing bits outside the mask.
    pub fn rolled_version(&self, version_bits: u32) -> Result<Version, JobError> {
        if version_bits & !self.version_mask != 0 {
            return Err(JobError::VersionBitsOutsideMask {
                bits: version_bits,
                mask: self.version_mask,
            });
        }
        let base = self.version.to_consensus() as u32;
        let v = (base & !self.version_mask) | version_bits;
        Ok(Version::from_consensus(v as i32))
    }

    /// Whether the job has a fixed merkle root (header-only work: no extranonce2 to roll).
    pub fn is_header_only(&self) -> bool {
        self.fixed_merkle_root.is_some()
    }

    /// Whether a roll fits this job: an extranonce2 of the right size (none for a fixed root),
    /// version bits, nTime window.
    pub fn check_roll(&self, roll: &Roll) -> Result<(), JobError> {
        self.check_extranonce2(roll.extranonce2.as_ref())?;
        self.rolled_version(roll.version_bits)?;
        self.check_ntime(roll.ntime)
    }

    fn check_extranonce2(&self, extranonce2: Option<&Extranonce2>) -> Result<(), JobError> {
        match (self.fixed_merkle_root, extranonce2) {
            (Some(_), None) => Ok(()),
            (Some(_), Some(_)) => Err(JobError::Extranonce2ForFixedRoot),
            (None, Some(e2)) => self.coinbase.check_extranonce2(e2),
            (None, None) => Err(JobError::MissingExtranonce2),
        }
    }

    fn check_ntime(&self, ntime: u32) -> Result<(), JobError> {
        let w = self.ntime_window();
        if w.contains(ntime) {
            Ok(())
        } else {
            Err(JobError::NtimeOutsideWindow {
                ntime,
                earliest: w.earliest,
                latest: w.latest,
            })
        }
    }

    /// The txid of the coinbase for one extranonce2 (reference path).
    pub fn coinbase_txid(&self, extranonce2: &Extranonce2) -> Result<Txid, JobError> {
        let tx = self.coinbase.build(extranonce2)?;
        Ok(Txid::from_raw_hash(sha256d::Hash::hash(&tx)))
    }

    /// The merkle root with this coinbase txid at position 0: each level hashes
    /// sha256d(current || sibling), the coinbase always being the left child.
    ///
    /// Hand-written: folding a Stratum merkle branch over a leaf is not something rust-bitcoin
    /// does (it computes roots of whole lists); this is the reference the fast path in
    /// [`PreparedJob::coinbase_root`] is tested against.
    pub fn merkle_root_from(&self, coinbase_txid: Txid) -> TxMerkleNode {
        let mut cur = coinbase_txid.to_byte_array();
        let mut pair = [0u8; 64];
        for sibling in &self.merkle_branch {
            pair[..32].copy_from_slice(&cur);
            pair[32..].copy_from_slice(sibling.as_byte_array());
            cur = sha256d::Hash::hash(&pair).to_byte_array();
        }
        TxMerkleNode::from_byte_array(cur)
    }

    /// The full header for a roll and nonce (reference path).
    pub fn header(&self, roll: &Roll, nonce: u32) -> Result<Header, JobError> {
        self.check_roll(roll)?;
        let root = match (self.fixed_merkle_root, &roll.extranonce2) {
            (Some(root), _) => root,
            (None, Some(e2)) => self.merkle_root_from(self.coinbase_txid(e2)?),
            (None, None) => return Err(JobError::MissingExtranonce2),
        };
        self.header_for_root(root, roll.ntime, roll.version_bits, nonce)
    }

    /// The header over a merkle root computed elsewhere (a template's full transaction list, or
    /// a test vector that gives only the root).
    pub fn header_for_root(
        &self,
        merkle_root: TxMerkleNode,
        ntime: u32,
        version_bits: u32,
        nonce: u32,
    ) -> Result<Header, JobError> {
        self.check_ntime(ntime)?;
        Ok(Header {
            version: self.rolled_version(version_bits)?,
            prev_blockhash: self.prev_hash,
            merkle_root,
            time: ntime,
            bits: self.bits,
            nonce,
        })
    }

    /// The share to send for a nonce found under a roll. Version bits travel with it only when
    /// the job rolls versions (BIP310: then they are `mining.submit`'s sixth parameter).
    pub fn share(&self, roll: &Roll, nonce: u32) -> Share {
        Share {
            job_id: self.id.clone(),
            extranonce2: roll.extranonce2,
            ntime: roll.ntime,
            nonce,
            version_bits: (self.version_mask != 0).then_some(roll.version_bits),
        }
    }

    /// Recompute a share from scratch and check it meets the share target: the proof is its
    /// block hash. Whether it is also a block: [`Job::network_target`].
    pub fn check_share(&self, share: &Share) -> Result<BlockHash, JobError> {
        if share.job_id != self.id {
            return Err(JobError::WrongJob {
                expected: self.id.clone(),
                got: share.job_id.clone(),
            });
        }
        let header = self.header(&share.roll(), share.nonce)?;
        let hash = header.block_hash();
        if hash_meets_target(&hash, &self.share_target) {
            Ok(hash)
        } else {
            Err(JobError::AboveShareTarget { hash })
        }
    }

    /// Validate and precompute for fast work-unit derivation.
    pub fn prepare(self) -> Result<PreparedJob, JobError> {
        self.validate()?;
        let mut coinbase_prefix = Sha256::new();
        coinbase_prefix.update(&self.coinbase.prefix);
        coinbase_prefix.update(&self.coinbase.extranonce1);
        let mut header_head = [0u8; 36];
        header_head[4..].copy_from_slice(self.prev_hash.as_byte_array());
        let mut header_bits = [0u8; 4];
        header_bits.copy_from_slice(&self.bits.to_consensus().to_le_bytes());
        Ok(PreparedJob {
            branch: self
                .merkle_branch
                .iter()
                .map(|n| n.to_byte_array())
                .collect(),
            coinbase_prefix,
            header_head,
            header_bits,
            job: self,
        })
    }
}

/// The merkle root for one extranonce2, kept with the extranonce2 it was computed for so the two
/// cannot be mixed up when several units (other versions or nTimes) reuse one root. A
/// header-only job's root has no extranonce2: it is the job's fixed root.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CoinbaseRoot {
    pub extranonce2: Option<Extranonce2>,
    pub merkle_root: TxMerkleNode,
}

/// A validated job with everything that does not depend on the rolled fields precomputed.
#[derive(Clone, Debug)]
pub struct PreparedJob {
    job: Job,
    /// SHA-256 after coinb1 + extranonce1 (whole blocks compressed, the rest buffered): each
    /// coinbase hash resumes here instead of rehashing the pool's bytes.
    coinbase_prefix: Sha256,
    branch: Vec<[u8; 32]>,
    /// Header bytes 0..36: version (filled per unit) and the previous block hash.
    header_head: [u8; 36],
    header_bits: [u8; 4],
}

impl PreparedJob {
    pub fn job(&self) -> &Job {
        &self.job
    }

    pub fn into_job(self) -> Job {
        self.job
    }

    /// The same job with shares at `target` (a new pool difficulty applied to work made from
    /// now on); everything precomputed is kept.
    pub fn with_share_target(&self, target: Target) -> PreparedJob {
        let mut job = self.clone();
        job.job.share_target = target;
        job
    }

    /// The merkle root for an extranonce2 (fast path of [`Job::merkle_root_from`] +
    /// [`Job::coinbase_txid`]). Hot (once per work unit) and hand-written for it: the coinbase's
    /// hash resumes from the precomputed prefix state, and the branch is folded on raw bytes.
    pub fn coinbase_root(&self, extranonce2: &Extranonce2) -> Result<CoinbaseRoot, JobError> {
        if self.job.fixed_merkle_root.is_some() {
            return Err(JobError::Extranonce2ForFixedRoot);
        }
        self.job.coinbase.check_extranonce2(extranonce2)?;
        let mut h = self.coinbase_prefix.clone();
        h.update(extranonce2.as_bytes());
        h.update(&self.job.coinbase.suffix);
        let mut cur: [u8; 32] = Sha256::digest(h.finalize()).into();
        for sibling in &self.branch {
            let mut h = Sha256::new();
            h.update(cur);
            h.update(sibling);
            cur = Sha256::digest(h.finalize()).into();
        }
        Ok(CoinbaseRoot {
            extranonce2: Some(*extranonce2),
            merkle_root: TxMerkleNode::from_byte_array(cur),
        })
    }

    /// The root a roll's header carries: the fixed root of a header-only job, else the
    /// coinbase root for the roll's extranonce2.
    pub fn root(&self, extranonce2: Option<&Extranonce2>) -> Result<CoinbaseRoot, JobError> {
        match (self.job.fixed_merkle_root, extranonce2) {
            (Some(merkle_root), None) => Ok(CoinbaseRoot {
                extranonce2: None,
                merkle_root,
            }),
            (Some(_), Some(_)) => Err(JobError::Extranonce2ForFixedRoot),
            (None, Some(e2)) => self.coinbase_root(e2),
            (None, None) => Err(JobError::MissingExtranonce2),
        }
    }

    /// The serialized header for a coinbase root, nTime, version bits and nonce.
    pub fn header_bytes_for(
        &self,
        root: &CoinbaseRoot,
        ntime: u32,
        version_bits: u32,
        nonce: u32,
    ) -> Result<[u8; HEADER_LEN], JobError> {
        let version = self.job.rolled_version(version_bits)?;
        self.job.check_ntime(ntime)?;
        let mut h = [0u8; HEADER_LEN];
        h[..36].copy_from_slice(&self.header_head);
        h[..4].copy_from_slice(&version.to_consensus().to_le_bytes());
        h[36..68].copy_from_slice(root.merkle_root.as_byte_array());
        h[68..72].copy_from_slice(&ntime.to_le_bytes());
        h[72..76].copy_from_slice(&self.header_bits);
        h[76..].copy_from_slice(&nonce.to_le_bytes());
        Ok(h)
    }

    /// The serialized header for a roll and nonce.
    pub fn header_bytes(&self, roll: &Roll, nonce: u32) -> Result<[u8; HEADER_LEN], JobError> {
        let root = self.root(roll.extranonce2.as_ref())?;
        self.header_bytes_for(&root, roll.ntime, roll.version_bits, nonce)
    }

    /// A work unit for a roll, against the job's share target.
    pub fn work_unit(&self, roll: &Roll, nonces: NonceRange) -> Result<WorkUnit, JobError> {
        let root = self.root(roll.extranonce2.as_ref())?;
        self.work_unit_for(&root, roll.ntime, roll.version_bits, nonces)
    }

    /// A work unit reusing a coinbase root: rolling version bits or nTime under one extranonce2
    /// costs only the header's midstate.
    pub fn work_unit_for(
        &self,
        root: &CoinbaseRoot,
        ntime: u32,
        version_bits: u32,
        nonces: NonceRange,
    ) -> Result<WorkUnit, JobError> {
        let header = self.header_bytes_for(root, ntime, version_bits, 0)?;
        Ok(WorkUnit::new(header, self.job.share_target, nonces))
    }

    /// The roll behind a unit made by [`PreparedJob::work_unit_for`].
    pub fn roll_for(root: &CoinbaseRoot, ntime: u32, version_bits: u32) -> Roll {
        Roll {
            extranonce2: root.extranonce2,
            ntime,
            version_bits,
        }
    }

    /// The share for a nonce found under a roll (see [`Job::share`]).
    pub fn share(&self, roll: &Roll, nonce: u32) -> Share {
        self.job.share(roll, nonce)
    }

    /// Fast check of a share against the share target, returning its block hash.
    pub fn check_share(&self, share: &Share) -> Result<BlockHash, JobError> {
        if share.job_id != self.job.id {
            return Err(JobError::WrongJob {
                expected: self.job.id.clone(),
                got: share.job_id.clone(),
            });
        }
        let hash = block_hash(&self.header_bytes(&share.roll(), share.nonce)?);
        if hash_meets_target(&hash, &self.job.share_target) {
            Ok(hash)
        } else {
            Err(JobError::AboveShareTarget { hash })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pow::{header_bytes, DIFF1_TARGET};
    use crate::work::rolling::{Extranonce2Roller, VersionRoller};

    fn job(branch_len: usize) -> Job {
        Job {
            id: "j1".into(),
            prev_hash: BlockHash::from_byte_array([7; 32]),
            version: Version::from_consensus(0x2000_0000),
            version_mask: 0x1fff_e000,
            bits: CompactTarget::from_consensus(0x1d00_ffff),
            ntime: 1_700_000_000,
            ntime_roll: DEFAULT_NTIME_ROLL,
            coinbase: CoinbaseTemplate {
                // Long enough that the prefix midstate covers whole blocks and a tail.
                prefix: (0..150u8).collect(),
                extranonce1: vec![0xaa, 0xbb, 0xcc, 0xdd],
                extranonce2_size: 4,
                suffix: (0..90u8).rev().collect(),
            },
            merkle_branch: (0..branch_len)
                .map(|i| TxMerkleNode::from_byte_array([i as u8 + 1; 32]))
                .collect(),
            fixed_merkle_root: None,
            share_target: DIFF1_TARGET,
            clean: true,
        }
    }

    #[test]
    fn fast_path_matches_reference() {
        for depth in [0, 1, 5, 12] {
            let j = job(depth);
            let p = j.clone().prepare().unwrap();
            for (i, e2) in Extranonce2Roller::new(4).unwrap().take(20).enumerate() {
                let version_bits = VersionRoller::new(j.version_mask).nth(i * 37).unwrap();
                let roll = Roll {
                    extranonce2: Some(e2),
                    ntime: j.ntime + i as u32,
                    version_bits,
                };
                let slow = header_bytes(&j.header(&roll, 0x1234_5678).unwrap());
                assert_eq!(p.header_bytes(&roll, 0x1234_5678).unwrap(), slow);
                let unit = p.work_unit(&roll, NonceRange::FULL).unwrap();
                assert_eq!(unit.header_with_nonce(0x1234_5678), slow);
            }
        }
    }

    #[test]
    fn rolled_version_follows_bip310() {
        let j = job(0);
        assert_eq!(j.rolled_version(0).unwrap().to_consensus(), 0x2000_0000);
        assert_eq!(
            j.rolled_version(0x00b4_4000).unwrap().to_consensus(),
            0x20b4_4000
        );
        assert_eq!(
            j.rolled_version(0x4000_0000),
            Err(JobError::VersionBitsOutsideMask {
                bits: 0x4000_0000,
                mask: 0x1fff_e000
            })
        );
    }

    #[test]
    fn bad_rolls_and_jobs_are_errors() {
        let j = job(2);
        let p = j.clone().prepare().unwrap();
        let good = Roll {
            extranonce2: Some(Extranonce2::new(1, 4).unwrap()),
            ntime: j.ntime,
            version_bits: 0,
        };
        let short = Roll {
            extranonce2: Some(Extranonce2::new(1, 2).unwrap()),
            ..good
        };
        assert!(matches!(
            p.work_unit(&short, NonceRange::FULL),
            Err(JobError::Extranonce2Mismatch { .. })
        ));
        let late = Roll {
            ntime: j.ntime + DEFAULT_NTIME_ROLL + 1,
            ..good
        };
        assert!(matches!(
            j.header(&late, 0),
            Err(JobError::NtimeOutsideWindow { .. })
        ));
        let early = Roll {
            ntime: j.ntime - 1,
            ..good
        };
        assert!(p.work_unit(&early, NonceRange::FULL).is_err());
        let mut bad = job(0);
        bad.coinbase.extranonce2_size = 0;
        assert_eq!(bad.prepare().unwrap_err(), JobError::Extranonce2Size(0));
        let mut deep = job(33);
        assert_eq!(
            deep.clone().prepare().unwrap_err(),
            JobError::MerkleBranchTooDeep(33)
        );
        deep.merkle_branch.clear();
        deep.coinbase.suffix = vec![0; MAX_COINBASE_LEN];
        assert!(matches!(deep.validate(), Err(JobError::CoinbaseTooLong(_))));
    }

    /// A header-only job: the pool's root in every header, no extranonce2 in its rolls and
    /// shares, the fast path equal to rust-bitcoin's header, and a share found by scanning
    /// verifies with `check_share` on both paths.
    #[test]
    fn a_fixed_root_job_rolls_only_the_header() {
        let root = TxMerkleNode::from_byte_array([0x42; 32]);
        let mut j = Job {
            coinbase: CoinbaseTemplate::none(),
            merkle_branch: Vec::new(),
            fixed_merkle_root: Some(root),
            share_target: Target::from_le_bytes([0xff; 32]),
            ..job(0)
        };
        let p = j.clone().prepare().unwrap();
        let roll = Roll {
            extranonce2: None,
            ntime: j.ntime + 3,
            version_bits: 0x0040_2000,
        };
        let header = j.header(&roll, 77).unwrap();
        assert_eq!(header.merkle_root, root);
        assert_eq!(header.version.to_consensus(), 0x2040_2000);
        assert_eq!(p.header_bytes(&roll, 77).unwrap(), header_bytes(&header));
        let unit = p.work_unit(&roll, NonceRange::new(0, 1 << 16)).unwrap();
        let nonce = (0..1u32 << 16)
            .find(|&n| unit.verify(n).is_ok())
            .expect("the easiest target is met at once");
        let share = p.share(&roll, nonce);
        assert_eq!(share.extranonce2, None);
        assert_eq!(share.version_bits, Some(0x0040_2000));
        let hash = j.check_share(&share).unwrap();
        assert_eq!(hash, header_with(&header, nonce).block_hash());
        assert_eq!(p.check_share(&share).unwrap(), hash);
        // The wrong shape of roll for each kind of job is an error, never a wrong header.
        let with_e2 = Roll {
            extranonce2: Some(Extranonce2::new(1, 4).unwrap()),
            ..roll
        };
        assert_eq!(
            j.header(&with_e2, 0),
            Err(JobError::Extranonce2ForFixedRoot)
        );
        assert!(p.work_unit(&with_e2, NonceRange::FULL).is_err());
        assert!(p.coinbase_root(&Extranonce2::new(1, 4).unwrap()).is_err());
        assert_eq!(job(1).header(&roll, 0), Err(JobError::MissingExtranonce2));
        j.merkle_branch = job(1).merkle_branch;
        assert_eq!(j.validate(), Err(JobError::FixedRootWithCoinbase));
    }

    fn header_with(header: &Header, nonce: u32) -> Header {
        Header { nonce, ..*header }
    }

    #[test]
    fn shares_carry_version_bits_only_when_rolling() {
        let mut j = job(0);
        let roll = Roll {
            extranonce2: Some(Extranonce2::new(5, 4).unwrap()),
            ntime: j.ntime,
            version_bits: 0x2000,
        };
        assert_eq!(j.share(&roll, 9).version_bits, Some(0x2000));
        j.version_mask = 0;
        let roll = Roll {
            version_bits: 0,
            ..roll
        };
        assert_eq!(j.share(&roll, 9).version_bits, None);
        let mut other = j.share(&roll, 9);
        other.job_id = "nope".into();
        assert!(matches!(
            j.check_share(&other),
            Err(JobError::WrongJob { .. })
        ));
    }
}
