//! Solo mining's work: a [`BlockTemplate`] (what a node's `getblocktemplate` says, BIP22/23, or
//! what the embedded node core makes), the coinbase we build for it, and the full block assembled
//! once a nonce solves it.
//!
//! The template becomes an ordinary [`Job`](super::Job) so the work manager mines it like a pool
//! job: the coinbase is split around an extranonce area in its scriptSig exactly as a pool splits
//! coinb1 and coinb2, and the merkle branch is the coinbase's path through the template's txids.
//! A solution's [`Share`](super::Share) (extranonce2, nTime, nonce) then rebuilds the coinbase,
//! and the block is header + coinbase + the template's transactions byte for byte as the node
//! sent them.
//!
//! Segwit (BIP141): when the template's rules include `segwit`, the coinbase carries the witness
//! commitment (the template's `default_witness_commitment`, or computed here from the wtxids)
//! and, in the block, the 32-byte witness reserved value as its witness.
//!
//! This module holds the template itself; the rest is split by role and re-exported here under
//! the paths callers have always used:
//! - [`super::gbt`]: the `getblocktemplate` codec and its checks ([`BlockTemplate::from_gbt`],
//!   [`BlockTemplate::from_gbt_on`], [`BlockTemplate::to_gbt`]).
//! - [`super::coinbase`]: our coinbase, split around the extranonce area.
//! - [`super::assembly`]: [`SoloJob`] and the [`SolvedBlock`] a solution makes.
//! - [`super::merkle`]: merkle branch and root, BIP141 witness commitment.
//! - [`super::payout`]: the coinbase address, checked against the node's network.

use bitcoin::block::Version;
use bitcoin::consensus::deserialize;
use bitcoin::pow::{CompactTarget, Target};
use bitcoin::{Amount, BlockHash, ScriptBuf, Transaction, TxMerkleNode, Txid, Wtxid};

use super::job::JobError;

pub use super::assembly::{SoloJob, SolvedBlock};
pub use super::coinbase::{COINBASE_TAG, SOLO_EXTRANONCE1_SIZE, SOLO_EXTRANONCE2_SIZE};
pub use super::gbt::{MAX_TEMPLATE_TRANSACTIONS, MAX_TEMPLATE_TX_BYTES};
pub use super::merkle::{
    find_witness_commitment, merkle_branch, merkle_root, witness_commitment,
    witness_commitment_script,
};
pub use super::payout::{payout_script, PayoutError};

/// Why a template cannot be mined or a block cannot be assembled.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum TemplateError {
    #[error("template field {0:?} is missing")]
    Missing(&'static str),
    #[error("template field {field:?} is invalid: {why}")]
    Invalid { field: &'static str, why: String },
    #[error("template transaction {index} is invalid: {why}")]
    BadTransaction { index: usize, why: String },
    #[error("coinbase scriptSig would be {0} bytes, more than the 100 consensus allows (coinbaseaux too long)")]
    ScriptSigTooLong(usize),
    #[error(
        "template lists {count} transactions, more than a block can hold ({limit}); refused unread"
    )]
    TooManyTransactions { count: usize, limit: usize },
    #[error("template transactions take {bytes} bytes, more than a block can hold ({limit}); refused unread")]
    TooLarge { bytes: usize, limit: usize },
    #[error("{0}")]
    Job(#[from] JobError),
}

/// A non-coinbase transaction of a template, kept as the node serialized it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TemplateTx {
    pub data: Vec<u8>,
    pub txid: Txid,
    pub wtxid: Wtxid,
    /// The fee the node reports, in satoshis (informational).
    pub fee: Option<u64>,
}

impl TemplateTx {
    /// Decode a transaction and compute its txid and wtxid.
    pub fn from_bytes(data: Vec<u8>) -> Result<Self, String> {
        let tx: Transaction = deserialize(&data).map_err(|e| e.to_string())?;
        Ok(TemplateTx {
            txid: tx.compute_txid(),
            wtxid: tx.compute_wtxid(),
            data,
            fee: None,
        })
    }
}

/// What to build a block on. Plain data, from a node's `getblocktemplate` ([`Self::from_gbt`])
/// or from the embedded node core.
#[derive(Clone, Debug, PartialEq)]
pub struct BlockTemplate {
    pub version: Version,
    pub prev_hash: BlockHash,
    pub height: u32,
    pub bits: CompactTarget,
    /// The target a block hash must meet (the template's `target`, else from `bits`).
    pub target: Target,
    /// The node's current time: the nTime to start from.
    pub cur_time: u32,
    /// The earliest nTime the node accepts (median time past + 1).
    pub min_time: u32,
    /// Subsidy plus fees: what the coinbase may pay.
    pub coinbase_value: Amount,
    /// Bytes the node asks to have in the coinbase scriptSig (`coinbaseaux.flags`).
    pub coinbase_aux: Vec<u8>,
    pub transactions: Vec<TemplateTx>,
    /// The rules include segwit: the coinbase must commit to the wtxids.
    pub segwit: bool,
    /// The node's own `default_witness_commitment` script, when it sent one.
    pub default_witness_commitment: Option<ScriptBuf>,
    /// For `getblocktemplate` longpoll: the id to wait on.
    pub longpoll_id: Option<String>,
}

impl BlockTemplate {
    /// The coinbase's witness commitment output script, when the block needs one: the node's
    /// own, or computed from the wtxids.
    pub fn witness_commitment(&self) -> Option<ScriptBuf> {
        if !self.segwit {
            return None;
        }
        Some(self.default_witness_commitment.clone().unwrap_or_else(|| {
            witness_commitment_script(self.transactions.iter().map(|t| t.wtxid))
        }))
    }

    /// The coinbase's siblings up the merkle tree, bottom first.
    pub fn merkle_branch(&self) -> Vec<TxMerkleNode> {
        merkle_branch(self.transactions.iter().map(|t| t.txid))
    }

    /// Whether `other` would give the same block (only the node's clock moved).
    pub fn same_work(&self, other: &BlockTemplate) -> bool {
        self.prev_hash == other.prev_hash
            && self.coinbase_value == other.coinbase_value
            && self.bits == other.bits
            && self.version == other.version
            && self.transactions.len() == other.transactions.len()
            && self
                .transactions
                .iter()
                .zip(&other.transactions)
                .all(|(x, y)| x.txid == y.txid)
    }

    /// The template for the block after `block`, built here without asking the node: on top of
    /// `block`, height + 1, no transactions, the coinbase paying `subsidy`, the same bits. This
    /// is what a pool mines the moment it finds a block, until the node's own template for the
    /// new tip arrives. `None` when the bits may change at the next height (a retarget every
    /// `retarget_interval` blocks; 0 for chains that never retarget, such as regtest), where
    /// only the node knows them.
    pub fn empty_successor(
        &self,
        block: &SolvedBlock,
        subsidy: Amount,
        retarget_interval: u32,
        now: u32,
    ) -> Option<BlockTemplate> {
        let height = self.height.checked_add(1)?;
        if retarget_interval != 0 && height % retarget_interval == 0 {
            return None;
        }
        let time = block.header.time;
        Some(BlockTemplate {
            version: self.version,
            prev_hash: block.hash,
            height,
            bits: self.bits,
            target: self.target,
            cur_time: now.max(time),
            // The median time past can only have moved forward, never past our block's time
            // by much; the node refuses a block otherwise, and its own template follows.
            min_time: self.min_time.max(time.saturating_sub(1)),
            coinbase_value: subsidy,
            coinbase_aux: self.coinbase_aux.clone(),
            transactions: Vec::new(),
            segwit: self.segwit,
            default_witness_commitment: None,
            longpoll_id: None,
        })
    }

    /// The nTime to start from: the node's time, never before its minimum.
    pub fn start_time(&self) -> u32 {
        self.cur_time.max(self.min_time)
    }
}
