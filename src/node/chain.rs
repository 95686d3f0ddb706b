//! The chain: regtest rules, one chain from the regtest genesis block, kept in the
//! [block store](super::store).
//!
//! All headers live in memory (80 bytes a block: a million blocks is 80 MB); block bodies are
//! read from the database on demand. The in-memory index changes only after the block's write
//! transaction has committed, so memory never runs ahead of disk.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::pow::asert::{self, Anchor, Schedule};
use bitcoin::block::{Header, Version};
use bitcoin::pow::{CompactTarget, Target};
use bitcoin::{Block, BlockHash, Network};

use super::store::{Loaded, Store};
use super::validate::{self, BlockContext, RejectReason, StoreFault};
use super::NodeError;
use crate::work::BlockTemplate;

/// After a failed write, the database is reopened before the next write, but at most this
/// often: a peer submitting blocks as fast as it can while the disk is full must not make the
/// node reopen the file thousands of times a second.
pub const STORE_RETRY: Duration = Duration::from_secs(1);

/// The version templates ask for: BIP9's top bits with no deployment signalled.
pub const TEMPLATE_VERSION: i32 = 0x2000_0000;

/// The retarget's half-life in ideal block times: 20 blocks behind (or ahead of) schedule
/// double (or halve) the target. Short, so a miner started on a faster GPU settles in a minute
/// or two, yet long enough that one lucky block moves the difficulty by only ~3.5 %.
pub const HALFLIFE_BLOCKS: i64 = 20;

/// The consensus parameters this core enforces.
#[derive(Clone, Debug, PartialEq)]
pub struct ChainParams {
    /// The nBits every new block must carry (regtest's `fPowNoRetargeting`, with a target of
    /// the user's choosing), or with [`Self::retarget`] the difficulty the schedule starts at.
    pub bits: CompactTarget,
    /// The target `bits` encode, the one block hashes are held to.
    pub target: Target,
    /// The easiest target allowed: regtest's proof-of-work limit.
    pub pow_limit: Target,
    /// Blocks between subsidy halvings (150 on regtest).
    pub halving_interval: u32,
    /// `--block-time`: retarget every block with aserti3-2d to this schedule, starting from
    /// [`Self::bits`]; `None`: every block carries [`Self::bits`].
    pub retarget: Option<Schedule>,
}

impl ChainParams {
    /// Bitcoin Core's regtest: nBits 0x207fffff (the proof-of-work limit, about every other hash
    /// solves a block), halving every 150 blocks.
    pub fn regtest() -> ChainParams {
        let bits = CompactTarget::from_consensus(0x207f_ffff);
        ChainParams {
            bits,
            target: Target::from_compact(bits),
            pow_limit: Target::MAX_ATTAINABLE_REGTEST,
            halving_interval: validate::REGTEST_HALVING_INTERVAL,
            retarget: None,
        }
    }

    /// These params, retargeting to one block every `seconds` (aserti3-2d with a half-life of
    /// [`HALFLIFE_BLOCKS`] ideal block times) from their difficulty as the start.
    pub fn with_block_time(mut self, seconds: u32) -> Result<ChainParams, NodeError> {
        if seconds == 0 {
            return Err(NodeError::BadDifficulty {
                value: 0.0,
                why: "the block time must be at least 1 second".into(),
            });
        }
        let spacing = i64::from(seconds);
        self.retarget = Some(Schedule {
            spacing,
            halflife: spacing * HALFLIFE_BLOCKS,
        });
        Ok(self)
    }

    /// Regtest with a fixed target for pool difficulty `difficulty` (so `--difficulty 1` is
    /// mainnet's difficulty 1). The target goes through compact nBits, which keep 23 bits of
    /// mantissa, so [`Self::target`] is at most 2^-15 harder than asked. Refuses difficulties
    /// that are not finite and positive, easier than the regtest limit (about 4.66e-10), or so
    /// hard that no nBits encode them.
    pub fn with_difficulty(difficulty: f64) -> Result<ChainParams, NodeError> {
        let bad = |why: String| NodeError::BadDifficulty {
            value: difficulty,
            why,
        };
        let wanted = crate::pow::target_from_difficulty(difficulty)
            .map_err(|_| bad("the difficulty must be a finite number greater than zero".into()))?;
        let mut params = ChainParams::regtest();
        if wanted > params.pow_limit {
            let min = crate::pow::difficulty_of_target(&params.pow_limit);
            return Err(bad(format!(
                "it is easier than regtest's proof-of-work limit allows; the lowest difficulty is {min:e}"
            )));
        }
        let bits = wanted.to_compact_lossy();
        let target = validate::target_of_bits(bits, params.pow_limit)
            .ok_or_else(|| bad("it is too high: no nBits encode a target that small".into()))?;
        params.bits = bits;
        params.target = target;
        Ok(params)
    }

    /// The pool difficulty of [`Self::target`].
    pub fn difficulty(&self) -> f64 {
        crate::pow::difficulty_of_target(&self.target)
    }

    /// The network addresses and keys use: always regtest.
    pub fn network(&self) -> Network {
        Network::Regtest
    }
}

/// A block taken into the chain as its new tip.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Accepted {
    pub height: u32,
    pub hash: BlockHash,
}

/// A block the chain refused, and why. The chain is unchanged.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("block {hash} rejected: {reason}")]
pub struct BlockRejected {
    /// The refused block's hash.
    pub hash: BlockHash,
    pub reason: RejectReason,
}

/// The node core's chain, opened on a directory.
///
/// One chain only: a block must extend the tip, and a block on any other known block is
/// refused as stale (`stale-prevblk`) rather than kept as a side chain, since a single local
/// miner has nobody to race. Reopening with other [`ChainParams`] (another `--difficulty`) is
/// allowed: the blocks already stored stay valid, and blocks accepted from then on must carry
/// the new params' nBits (with `--block-time`, the retarget's: see [`Chain::next_bits`]).
pub struct Chain {
    params: ChainParams,
    store: Store,
    dir: PathBuf,
    /// Headers by height, genesis first.
    headers: Vec<Header>,
    /// Their hashes, by height.
    hashes: Vec<BlockHash>,
    /// Height by hash.
    index: HashMap<BlockHash, u32>,
    /// With a retarget schedule: where it starts, the first block accepted after opening (until
    /// then the next block carries [`Chain::start_bits`]).
    anchor: Option<Anchor>,
    /// The first block's nBits under a schedule: the tip's when it was mined under the same
    /// schedule (a restart continues its difficulty), else the params' starting difficulty.
    start_bits: CompactTarget,
    /// The last failed write and when the store was last tried: until a reopen succeeds,
    /// writes first reopen the database (at most every [`STORE_RETRY`]).
    store_fault: Option<(StoreFault, Instant)>,
}

impl std::fmt::Debug for Chain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chain")
            .field("dir", &self.dir)
            .field("params", &self.params)
            .field("tip", &self.tip())
            .finish()
    }
}

impl Chain {
    /// Open the chain in `dir`, creating the directory and a chain holding only the regtest
    /// genesis block if there is none. On reopen the stored headers are checked (genesis, links,
    /// proof of work, the recorded tip); any mismatch is [`NodeError::Corrupt`] naming the file.
    pub fn open(dir: &Path, params: ChainParams) -> Result<Chain, NodeError> {
        match std::fs::metadata(dir) {
            Ok(m) if !m.is_dir() => {
                return Err(NodeError::NotADirectory {
                    path: dir.to_owned(),
                })
            }
            Ok(_) => {}
            Err(_) => std::fs::create_dir_all(dir)
                .map_err(|e| NodeError::io("create the data directory", dir, e))?,
        }
        let genesis = bitcoin::blockdata::constants::genesis_block(Network::Regtest);
        let store = Store::open(dir, &genesis)?;
        let headers = match store.load()? {
            Some(loaded) => loaded_headers(&store, loaded)?,
            // A redb file without tables (made by an older wgminer that stopped before its
            // first commit): nothing to lose, so the genesis block goes in.
            None => {
                let hash = genesis.block_hash();
                store.append(
                    0,
                    &genesis.header,
                    &hash,
                    &bitcoin::consensus::serialize(&genesis),
                )?;
                vec![genesis.header]
            }
        };
        let (hashes, index) = index_headers(&store, &headers, &params)?;
        let start_bits = start_bits(&store, &params, &headers)?;
        Ok(Chain {
            params,
            store,
            dir: dir.to_owned(),
            headers,
            hashes,
            index,
            anchor: None,
            start_bits,
            store_fault: None,
        })
    }

    /// The nBits the next block must carry: the fixed ones, or the retarget's for this tip.
    pub fn next_bits(&self) -> CompactTarget {
        match (&self.params.retarget, &self.anchor) {
            (Some(schedule), Some(anchor)) => {
                let (height, _) = self.tip();
                let time = self.headers[height as usize].time;
                asert::next_bits(
                    anchor,
                    schedule,
                    height,
                    i64::from(time),
                    &self.params.pow_limit,
                )
            }
            (Some(_), None) => self.start_bits,
            (None, _) => self.params.bits,
        }
    }

    /// The target [`Self::next_bits`] encode.
    pub fn next_target(&self) -> Target {
        validate::target_of_bits(self.next_bits(), self.params.pow_limit)
            .unwrap_or(self.params.target)
    }

    /// The parameters blocks are accepted under.
    pub fn params(&self) -> &ChainParams {
        &self.params
    }

    /// The chain directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The database file.
    pub fn db_file(&self) -> &Path {
        self.store.file()
    }

    /// Height and hash of the tip.
    pub fn tip(&self) -> (u32, BlockHash) {
        let height = self.height();
        (height, self.hashes[height as usize])
    }

    /// Height of the tip (0: only the genesis block).
    pub fn height(&self) -> u32 {
        // Never empty: open() always has the genesis block.
        (self.hashes.len() - 1) as u32
    }

    /// The hash of the block at `height`, if the chain is that long.
    pub fn block_hash_at(&self, height: u32) -> Option<BlockHash> {
        self.hashes.get(height as usize).copied()
    }

    /// A block's header and height.
    pub fn header(&self, hash: &BlockHash) -> Option<(Header, u32)> {
        let height = *self.index.get(hash)?;
        Some((self.headers[height as usize], height))
    }

    /// A whole block, read from the database. `Ok(None)` for a block not in the chain.
    pub fn block(&self, hash: &BlockHash) -> Result<Option<Block>, NodeError> {
        if !self.index.contains_key(hash) {
            return Ok(None);
        }
        let bytes = self.store.block_bytes(hash)?.ok_or_else(|| {
            self.store
                .corrupt(format!("the body of block {hash} is missing"))
        })?;
        let block: Block = bitcoin::consensus::deserialize(&bytes).map_err(|e| {
            self.store
                .corrupt(format!("block {hash} does not decode: {e}"))
        })?;
        if block.block_hash() != *hash {
            return Err(self.store.corrupt(format!(
                "the body stored for block {hash} has another header"
            )));
        }
        Ok(Some(block))
    }

    /// Median time past of the tip: the median of its last 11 block times. A new block's time
    /// must be above it.
    pub fn median_time_past(&self) -> u32 {
        self.median_time_past_at(self.height())
    }

    /// Median time past of the block at `height` (it and up to 10 ancestors).
    fn median_time_past_at(&self, height: u32) -> u32 {
        let end = (height as usize + 1).min(self.headers.len());
        let start = end.saturating_sub(validate::MEDIAN_TIME_SPAN);
        let times: Vec<u32> = self.headers[start..end].iter().map(|h| h.time).collect();
        validate::median_time_past(&times)
    }

    /// What to mine next: a coinbase-only block on the tip at the params' nBits, its time at
    /// least the median time past + 1, paying the subsidy. Segwit is on, so the coinbase built
    /// from it ([`BlockTemplate::solo_job`]) carries a witness commitment.
    pub fn template(&self, now_unix: u32) -> BlockTemplate {
        let (tip_height, tip) = self.tip();
        let height = tip_height.saturating_add(1);
        let min_time = self.median_time_past().saturating_add(1);
        BlockTemplate {
            version: Version::from_consensus(TEMPLATE_VERSION),
            prev_hash: tip,
            height,
            bits: self.next_bits(),
            target: self.next_target(),
            cur_time: now_unix.max(min_time),
            min_time,
            coinbase_value: validate::subsidy(height, self.params.halving_interval),
            coinbase_aux: Vec::new(),
            transactions: Vec::new(),
            segwit: true,
            default_witness_commitment: None,
            longpoll_id: Some(tip.to_string()),
        }
    }

    /// Validate `block` against the tip and, if it passes, store it durably as the new tip.
    /// `now_unix` is the node's clock, for the two-hour future limit. On refusal nothing
    /// changes; [`RejectReason::StoreFailed`] means the block was valid but the disk refused it.
    pub fn submit_block(
        &mut self,
        block: &Block,
        now_unix: u32,
    ) -> Result<Accepted, BlockRejected> {
        let hash = block.block_hash();
        let reject = |reason| BlockRejected { hash, reason };
        // After a failed write: reopen the store first (it may even hold more than memory,
        // if that write landed after all), or refuse at once while it cannot be.
        self.recover_store()
            .map_err(|fault| reject(RejectReason::StoreFailed(fault)))?;
        if self.index.contains_key(&hash) {
            return Err(reject(RejectReason::Duplicate));
        }
        validate::check_pow(&block.header, self.params.pow_limit).map_err(reject)?;
        let ctx = self.context_on_tip(block, now_unix).map_err(reject)?;
        validate::check_block(block, &ctx).map_err(reject)?;

        let bytes = bitcoin::consensus::serialize(block);
        if let Err(e) = self.store.append(ctx.height, &block.header, &hash, &bytes) {
            let fault = StoreFault {
                disk_full: e.is_disk_full(),
                file: self.store.file().to_owned(),
                why: e.to_string(),
            };
            self.store_fault = Some((fault.clone(), Instant::now()));
            return Err(reject(RejectReason::StoreFailed(fault)));
        }
        self.headers.push(block.header);
        self.hashes.push(hash);
        self.index.insert(hash, ctx.height);
        if let (Some(schedule), None) = (self.params.retarget, self.anchor) {
            // The first block under the schedule counts as on time: the retarget starts here.
            self.anchor = Some(Anchor {
                height: ctx.height,
                bits: block.header.bits,
                parent_time: i64::from(block.header.time) - schedule.spacing,
            });
        }
        Ok(Accepted {
            height: ctx.height,
            hash,
        })
    }

    /// The last write failure, while the store has not recovered from it.
    pub fn store_fault(&self) -> Option<&StoreFault> {
        self.store_fault.as_ref().map(|(fault, _)| fault)
    }

    /// After a failed write, reopen the database (at most every [`STORE_RETRY`]) and follow
    /// what it holds; the fault, refreshed, while that fails.
    fn recover_store(&mut self) -> Result<(), StoreFault> {
        let Some((fault, tried)) = &self.store_fault else {
            return Ok(());
        };
        if tried.elapsed() < STORE_RETRY {
            return Err(fault.clone());
        }
        match self.reopen_store() {
            Ok(()) => {
                self.store_fault = None;
                Ok(())
            }
            Err(e) => {
                let fault = StoreFault {
                    disk_full: e.is_disk_full(),
                    file: self.store.file().to_owned(),
                    why: e.to_string(),
                };
                self.store_fault = Some((fault.clone(), Instant::now()));
                Err(fault)
            }
        }
    }

    /// Reopen the database. A write reported as failed may have committed all the same (an
    /// error after the data was written): then the stored chain is longer, and memory follows
    /// it. One that holds less than memory, or another chain, is corrupt.
    fn reopen_store(&mut self) -> Result<(), NodeError> {
        self.store.reopen()?;
        if self.store.tip()? == Some(self.tip()) {
            return Ok(());
        }
        let loaded = self
            .store
            .load()?
            .ok_or_else(|| self.store.corrupt("its chain is gone".into()))?;
        let headers = loaded_headers(&self.store, loaded)?;
        let (hashes, index) = index_headers(&self.store, &headers, &self.params)?;
        let (height, tip) = self.tip();
        if hashes.get(height as usize) != Some(&tip) {
            return Err(self.store.corrupt(format!(
                "it no longer holds the tip {tip} at height {height} it held before"
            )));
        }
        self.headers = headers;
        self.hashes = hashes;
        self.index = index;
        Ok(())
    }

    /// A BIP23 block proposal: every check [`Self::submit_block`] makes except proof of work
    /// (a miner asks before it grinds), storing nothing.
    pub fn check_proposal(&self, block: &Block, now_unix: u32) -> Result<(), RejectReason> {
        if self.index.contains_key(&block.block_hash()) {
            return Err(RejectReason::Duplicate);
        }
        let ctx = self.context_on_tip(block, now_unix)?;
        validate::check_header_contextual(&block.header, &ctx)?;
        validate::check_block_structure(block)?;
        validate::check_block_contextual(block, ctx.height)?;
        validate::check_block_connect(block, &ctx)
    }

    /// What validation needs for `block` as the next block; refused unless it extends the tip.
    fn context_on_tip(&self, block: &Block, now_unix: u32) -> Result<BlockContext, RejectReason> {
        let (tip_height, tip) = self.tip();
        let prev = block.header.prev_blockhash;
        if prev != tip {
            return Err(match self.index.get(&prev) {
                None => RejectReason::BadPrevBlock(prev),
                Some(&prev_height) => RejectReason::StalePrevBlock {
                    prev,
                    prev_height,
                    tip_height,
                },
            });
        }
        Ok(BlockContext {
            height: tip_height.saturating_add(1),
            median_time_past: self.median_time_past(),
            required_bits: Some(self.next_bits()),
            now: Some(now_unix),
            halving_interval: self.params.halving_interval,
        })
    }

    /// Re-read every stored block from genesis to the tip and check it again: it decodes, its
    /// header is the indexed one, it links to its parent, and it passes every consensus check
    /// with its own nBits (blocks stored under an earlier difficulty stay valid). Returns the
    /// number of blocks checked. For `wgminer` self-checks and the crash tests.
    pub fn verify_stored(&self) -> Result<u32, NodeError> {
        let genesis = bitcoin::blockdata::constants::genesis_block(Network::Regtest);
        for (height, hash) in self.hashes.iter().enumerate() {
            let block = self.block(hash)?.ok_or_else(|| {
                self.store
                    .corrupt(format!("block {hash} at height {height} is missing"))
            })?;
            if height == 0 {
                if block != genesis {
                    return Err(self
                        .store
                        .corrupt("the genesis block is not regtest's".into()));
                }
                continue;
            }
            let height = height as u32;
            if block.header.prev_blockhash != self.hashes[height as usize - 1] {
                return Err(self.store.corrupt(format!(
                    "block {hash} at height {height} does not link to its parent"
                )));
            }
            let ctx = BlockContext {
                height,
                median_time_past: self.median_time_past_at(height - 1),
                required_bits: None,
                now: None,
                halving_interval: self.params.halving_interval,
            };
            validate::check_block(&block, &ctx).map_err(|r| {
                self.store
                    .corrupt(format!("block {hash} at height {height} is invalid: {r}"))
            })?;
        }
        Ok(self.height() + 1)
    }
}

/// The nBits the first block after opening carries: under the schedule the tip was mined with,
/// the tip's (a restart continues the difficulty, without counting the time the miner was off
/// as blocks owed); under a new schedule, the params' starting difficulty, and the schedule is
/// recorded. A fixed difficulty removes the record.
fn start_bits(
    store: &Store,
    params: &ChainParams,
    headers: &[Header],
) -> Result<CompactTarget, NodeError> {
    let recorded = store.retarget()?;
    let Some(schedule) = params.retarget else {
        if recorded.is_some() {
            store.set_retarget(None)?;
        }
        return Ok(params.bits);
    };
    match headers.last() {
        Some(tip) if recorded == Some(schedule) && headers.len() > 1 => Ok(tip.bits),
        _ => {
            if recorded != Some(schedule) {
                store.set_retarget(Some(schedule))?;
            }
            Ok(params.bits)
        }
    }
}

/// The stored headers, once the recorded tip is checked to be the last of them.
fn loaded_headers(store: &Store, loaded: Loaded) -> Result<Vec<Header>, NodeError> {
    let tip = loaded.tip;
    let headers = loaded.headers;
    let last = headers.len().checked_sub(1).map(|h| h as u32);
    let last_hash = headers.last().map(Header::block_hash);
    if Some(tip.0) != last || Some(tip.1) != last_hash {
        return Err(store.corrupt(format!(
            "its recorded tip {} at height {} is not its last header",
            tip.1, tip.0
        )));
    }
    Ok(headers)
}

/// Hashes by height and heights by hash for stored headers, checking each links to the one
/// before (the first is regtest's genesis block) and meets its proof of work.
fn index_headers(
    store: &Store,
    headers: &[Header],
    params: &ChainParams,
) -> Result<(Vec<BlockHash>, HashMap<BlockHash, u32>), NodeError> {
    let genesis = bitcoin::blockdata::constants::genesis_block(Network::Regtest).block_hash();
    let mut hashes: Vec<BlockHash> = Vec::with_capacity(headers.len());
    let mut index = HashMap::with_capacity(headers.len());
    for (height, header) in headers.iter().enumerate() {
        let hash = header.block_hash();
        let linked = match hashes.last() {
            None => hash == genesis,
            Some(prev) => header.prev_blockhash == *prev,
        };
        if !linked {
            return Err(store.corrupt(format!(
                "the block {hash} at height {height} does not follow the block before it (or is not the regtest genesis block)"
            )));
        }
        if validate::check_pow(header, params.pow_limit).is_err() {
            return Err(store.corrupt(format!(
                "the block {hash} at height {height} fails its proof of work"
            )));
        }
        hashes.push(hash);
        index.insert(hash, height as u32);
    }
    Ok((hashes, index))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::work::{Extranonce2, Roll};

    struct Dir(PathBuf);

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn temp_dir(name: &str) -> Dir {
        let dir = std::env::temp_dir().join(format!("wgminer-chain-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        Dir(dir)
    }

    /// Mine the chain's next block with header time `time` and submit it.
    fn mine_at(chain: &mut Chain, time: u32) -> Block {
        let template = Arc::new(chain.template(time));
        let payout = bitcoin::ScriptBuf::new_op_return([1]);
        let solo = template
            .solo_job("t".into(), &payout, [1, 2, 3, 4])
            .unwrap();
        let roll = Roll {
            extranonce2: Some(Extranonce2::new(0, 4).unwrap()),
            ntime: time,
            version_bits: 0,
        };
        let nonce = (0..=u32::MAX)
            .find(|&n| {
                let hash = solo.job.header(&roll, n).unwrap().block_hash();
                crate::pow::hash_meets_target(&hash, &template.target)
            })
            .unwrap();
        let block = solo
            .block(&solo.job.share(&roll, nonce))
            .unwrap()
            .decode()
            .unwrap();
        chain.submit_block(&block, time).unwrap();
        block
    }

    fn difficulty(bits: CompactTarget) -> f64 {
        crate::pow::difficulty_of_target(&Target::from_compact(bits))
    }

    /// `--block-time`: on schedule the difficulty holds, fast blocks raise it by 2^(time ahead /
    /// half-life), a block with other bits is refused, and a reopen under the same schedule
    /// continues the difficulty while another schedule or a fixed one starts from the params.
    #[test]
    fn block_time_retargets_each_block_and_a_restart_continues() {
        let dir = temp_dir("asert");
        let params = ChainParams::with_difficulty(1e-6)
            .unwrap()
            .with_block_time(5)
            .unwrap();
        let start = params.bits;
        let mut chain = Chain::open(&dir.0, params.clone()).unwrap();
        let mut t = 1_700_000_000u32;
        for _ in 0..10 {
            let block = mine_at(&mut chain, t);
            assert_eq!(block.header.bits, start, "on schedule the difficulty holds");
            t += 5;
        }
        // 20 more blocks, the first on time, then 19 a second apart: 76 s ahead of schedule,
        // half-life 100 s: 2^0.76 harder.
        let mut last = difficulty(start);
        for _ in 0..20 {
            let block = mine_at(&mut chain, t);
            let d = difficulty(block.header.bits);
            assert!(d >= last, "the difficulty fell while blocks came fast");
            last = d;
            t += 1;
        }
        let rise = difficulty(chain.next_bits()) / difficulty(start);
        assert!((rise - 2f64.powf(0.76)).abs() < 0.005, "{rise}");
        // The old bits are no longer accepted.
        let mut stale = chain.template(t);
        stale.bits = start;
        stale.target = Target::from_compact(start);
        let before = chain.tip();
        let payout = bitcoin::ScriptBuf::new_op_return([1]);
        let solo = Arc::new(stale)
            .solo_job("s".into(), &payout, [9; 4])
            .unwrap();
        let roll = Roll {
            extranonce2: Some(Extranonce2::new(0, 4).unwrap()),
            ntime: t,
            version_bits: 0,
        };
        let nonce = (0..=u32::MAX)
            .find(|&n| {
                let h = solo.job.header(&roll, n).unwrap().block_hash();
                crate::pow::hash_meets_target(&h, &Target::from_compact(start))
            })
            .unwrap();
        let block = solo
            .block(&solo.job.share(&roll, nonce))
            .unwrap()
            .decode()
            .unwrap();
        let err = chain.submit_block(&block, t).unwrap_err();
        assert_eq!(err.reason.code(), "bad-diffbits", "{err}");
        assert_eq!(chain.tip(), before);
        let tip_bits = chain.headers.last().unwrap().bits;
        let next = chain.next_bits();
        drop(chain);

        // Same schedule: the tip's difficulty carries on, even after a long pause.
        let mut chain = Chain::open(&dir.0, params.clone()).unwrap();
        assert_eq!(chain.next_bits(), tip_bits);
        let block = mine_at(&mut chain, t + 3600);
        assert_eq!(block.header.bits, tip_bits);
        let after_pause = chain.next_bits();
        assert_eq!(
            after_pause, tip_bits,
            "the first block after a restart is on time"
        );
        assert_ne!(next, start);
        drop(chain);
        // Another schedule starts from the params' difficulty.
        let other = ChainParams::with_difficulty(1e-6)
            .unwrap()
            .with_block_time(7)
            .unwrap();
        let chain = Chain::open(&dir.0, other).unwrap();
        assert_eq!(chain.next_bits(), start);
        drop(chain);
        // A fixed difficulty removes the record: a later --block-time 5 starts afresh too.
        let chain = Chain::open(&dir.0, ChainParams::with_difficulty(1e-6).unwrap()).unwrap();
        assert_eq!(chain.next_bits(), start);
        drop(chain);
        let chain = Chain::open(&dir.0, params).unwrap();
        assert_eq!(chain.next_bits(), start);
        assert_eq!(chain.verify_stored().unwrap(), chain.height() + 1);
    }

    #[test]
    fn a_block_time_of_zero_is_refused() {
        let err = ChainParams::regtest().with_block_time(0).unwrap_err();
        assert!(err.to_string().contains("block time"), "{err}");
    }
}
