//! Solo mining's work: a [`BlockTemplate`] (what a node's `getblocktemplate` says, BIP22/23, or
//! what the embedded node core makes), the coinbase we build for it, and the full block assembled
//! once a nonce solves it.
//!
//! The template becomes an ordinary [`Job`] so the work manager mines it like a pool job: the
//! coinbase is split around an extranonce area in its scriptSig exactly as a pool splits coinb1
//! and coinb2, and the merkle branch is the coinbase's path through the template's txids. A
//! solution's [`Share`] (extranonce2, nTime, nonce) then rebuilds the coinbase, and the block is
//! header + coinbase + the template's transactions byte for byte as the node sent them.
//!
//! Segwit (BIP141): when the template's rules include `segwit`, the coinbase carries the witness
//! commitment (the template's `default_witness_commitment`, or computed here from the wtxids)
//! and, in the block, the 32-byte witness reserved value as its witness.

use std::sync::Arc;

use bitcoin::block::{Header, Version};
use bitcoin::consensus::{deserialize, Encodable};
use bitcoin::hashes::{sha256d, Hash};
use bitcoin::hex::{DisplayHex, FromHex};
use bitcoin::params::Params;
use bitcoin::pow::{CompactTarget, Target};
use bitcoin::script::PushBytesBuf;
use bitcoin::{
    Amount, Block, BlockHash, Network, ScriptBuf, Transaction, TxMerkleNode, Txid, Wtxid,
};

use super::job::{CoinbaseTemplate, Job, JobError, DEFAULT_NTIME_ROLL};
use super::share::Share;

/// Bytes of the extranonce area the work manager rolls (extranonce2 in Stratum terms).
pub const SOLO_EXTRANONCE2_SIZE: usize = 4;

/// Bytes before it that tell this miner's instance apart (extranonce1 in Stratum terms), so two
/// miners paying the same address never hash the same headers.
pub const SOLO_EXTRANONCE1_SIZE: usize = 4;

/// Written into every coinbase scriptSig after the extranonce area.
pub const COINBASE_TAG: &[u8] = b"/wgminer/";

/// Consensus: a coinbase scriptSig has 2 to 100 bytes.
const MAX_COINBASE_SCRIPT_SIG: usize = 100;

/// BIP141's commitment header in the coinbase output: OP_RETURN, push 36, 0xaa21a9ed.
const WITNESS_COMMITMENT_HEADER: [u8; 6] = [0x6a, 0x24, 0xaa, 0x21, 0xa9, 0xed];

/// Most bytes a template's transactions may take together: a whole block's serialization is at
/// most 4,000,000 bytes (Bitcoin Core's `MAX_BLOCK_SERIALIZED_SIZE`, witness data included), so
/// more can never be mined. Checked on the hex lengths before anything is decoded.
pub const MAX_TEMPLATE_TX_BYTES: usize = 4_000_000;

/// Most transactions a template may list: a block's serialization without witnesses is at most
/// 1,000,000 bytes (`MAX_BLOCK_WEIGHT / WITNESS_SCALE_FACTOR`, Core's `CheckBlock`) and no
/// transaction is smaller than 60 bytes without its witness (one input spending nothing with an
/// empty script, one empty output), so no block holds more than 16,666, its coinbase among
/// them (a template lists the others).
pub const MAX_TEMPLATE_TRANSACTIONS: usize = 1_000_000 / 60;

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
    /// Parse a `getblocktemplate` result from a node of any chain: bits are held to regtest's
    /// proof-of-work limit, the easiest of all. [`Self::from_gbt_on`] holds them to the node's.
    pub fn from_gbt(v: &serde_json::Value) -> Result<Self, TemplateError> {
        Self::from_gbt_on(v, Network::Regtest)
    }

    /// Parse a `getblocktemplate` result from a node on `network`. Bits easier than that
    /// chain's proof-of-work limit are refused (no block with them is valid there), and so is a
    /// template with more transactions or bytes than a block can hold, before any of them is
    /// decoded. Checks every transaction's txid (and wtxid, when the node gives `hash`) against
    /// its data, so a corrupt template is refused before mining.
    pub fn from_gbt_on(v: &serde_json::Value, network: Network) -> Result<Self, TemplateError> {
        // Bitcoin Core writes the version as a signed 32-bit number (negative from 2^31 up);
        // other nodes write it unsigned. Both are the same 32 bits.
        let version = field(v, "version")?;
        let version = version
            .as_i64()
            .and_then(|n| {
                i32::try_from(n)
                    .ok()
                    .or_else(|| u32::try_from(n).ok().map(|u| u as i32))
            })
            .map(Version::from_consensus)
            .ok_or_else(|| invalid("version", "not a 32-bit integer"))?;
        let prev_hash: BlockHash = field_str(v, "previousblockhash")?
            .parse()
            .map_err(|e| invalid("previousblockhash", e))?;
        let height =
            u32::try_from(field_u64(v, "height")?).map_err(|_| invalid("height", "above 2^32"))?;
        let bits_hex = field_str(v, "bits")?;
        let bits = u32::from_str_radix(bits_hex, 16)
            .ok()
            .filter(|_| bits_hex.len() == 8)
            .map(CompactTarget::from_consensus)
            .ok_or_else(|| invalid("bits", format!("{bits_hex:?} is not 8 hex digits")))?;
        // The block must meet `bits`, whatever else the template says: a `target` that
        // disagrees is refused rather than trusted.
        let target = target_of_bits(bits)?;
        let limit = Params::new(network).max_attainable_target;
        if target > limit {
            return Err(invalid(
                "bits",
                format!(
                    "{bits_hex} is easier than the proof-of-work limit of {network} ({:08x}): no block with it is valid there (is the node on another chain?)",
                    limit.to_compact_lossy().to_consensus()
                ),
            ));
        }
        if let Some(t) = v.get("target").and_then(|t| t.as_str()) {
            let bytes = <[u8; 32]>::from_hex(t).map_err(|e| invalid("target", e))?;
            if Target::from_be_bytes(bytes) != target {
                return Err(invalid(
                    "target",
                    format!("{t} is not the target of bits {bits_hex}, which a block must meet"),
                ));
            }
        }
        let cur_time = u32::try_from(field_u64(v, "curtime")?)
            .map_err(|_| invalid("curtime", "above 2^32"))?;
        let min_time = match v.get("mintime") {
            Some(m) => m
                .as_u64()
                .and_then(|m| u32::try_from(m).ok())
                .ok_or_else(|| invalid("mintime", "not a u32"))?,
            None => 0,
        };
        let coinbase_value = Amount::from_sat(field_u64(v, "coinbasevalue")?);
        if coinbase_value > Amount::MAX_MONEY {
            return Err(invalid(
                "coinbasevalue",
                format!("{coinbase_value} is more than the 21 million BTC that can ever exist"),
            ));
        }
        let coinbase_aux = match v.pointer("/coinbaseaux/flags").and_then(|f| f.as_str()) {
            Some(f) => Vec::from_hex(f).map_err(|e| invalid("coinbaseaux.flags", e))?,
            None => Vec::new(),
        };
        let segwit = v.get("rules").and_then(|r| r.as_array()).is_some_and(|r| {
            r.iter()
                .any(|x| matches!(x.as_str(), Some("segwit" | "!segwit")))
        });
        let default_witness_commitment = match v.get("default_witness_commitment") {
            Some(c) => {
                let s = c
                    .as_str()
                    .ok_or_else(|| invalid("default_witness_commitment", "not a string"))?;
                Some(ScriptBuf::from_bytes(
                    Vec::from_hex(s).map_err(|e| invalid("default_witness_commitment", e))?,
                ))
            }
            None => None,
        };
        let list = v
            .get("transactions")
            .and_then(|t| t.as_array())
            .ok_or(TemplateError::Missing("transactions"))?;
        check_template_size(list)?;
        let mut transactions = Vec::with_capacity(list.len());
        for (index, t) in list.iter().enumerate() {
            transactions.push(parse_template_tx(index, t)?);
        }
        if segwit {
            check_witness_commitment(default_witness_commitment.as_ref(), &transactions)?;
        }
        let longpoll_id = v
            .get("longpollid")
            .and_then(|l| l.as_str())
            .map(str::to_owned);
        Ok(BlockTemplate {
            version,
            prev_hash,
            height,
            bits,
            target,
            cur_time,
            min_time,
            coinbase_value,
            coinbase_aux,
            transactions,
            segwit,
            default_witness_commitment,
            longpoll_id,
        })
    }

    /// The template as `getblocktemplate` answers (BIP22/23, Bitcoin Core's field names), for the
    /// embedded node core's JSON-RPC. [`Self::from_gbt`] reads it back.
    pub fn to_gbt(&self) -> serde_json::Value {
        let mut rules = vec!["csv"];
        if self.segwit {
            rules.push("segwit");
        }
        let transactions: Vec<serde_json::Value> = self
            .transactions
            .iter()
            .map(|t| {
                serde_json::json!({
                    "data": t.data.to_lower_hex_string(),
                    "txid": t.txid.to_string(),
                    "hash": t.wtxid.to_string(),
                    "depends": [],
                    "fee": t.fee,
                })
            })
            .collect();
        let mut v = serde_json::json!({
            "capabilities": ["proposal"],
            "version": self.version.to_consensus(),
            "rules": rules,
            "vbavailable": {},
            "vbrequired": 0,
            "previousblockhash": self.prev_hash.to_string(),
            "transactions": transactions,
            "coinbaseaux": {"flags": self.coinbase_aux.to_lower_hex_string()},
            "coinbasevalue": self.coinbase_value.to_sat(),
            "target": self.target.to_be_bytes().to_lower_hex_string(),
            "mintime": self.min_time,
            "mutable": ["time", "transactions", "prevblock"],
            "noncerange": "00000000ffffffff",
            "sigoplimit": 80_000,
            "sizelimit": 4_000_000,
            "weightlimit": 4_000_000,
            "curtime": self.cur_time,
            "bits": format!("{:08x}", self.bits.to_consensus()),
            "height": self.height,
        });
        if let Some(id) = &self.longpoll_id {
            v["longpollid"] = id.clone().into();
        }
        if let Some(c) = self.witness_commitment() {
            v["default_witness_commitment"] = c.as_bytes().to_lower_hex_string().into();
        }
        v
    }

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

    /// A job for the work manager: the coinbase pays `payout`; `extranonce1` tells this miner's
    /// instance apart. The result's [`SoloJob::block`] assembles the block for a solution.
    pub fn solo_job(
        self: &Arc<Self>,
        id: String,
        payout: &ScriptBuf,
        extranonce1: [u8; SOLO_EXTRANONCE1_SIZE],
    ) -> Result<SoloJob, TemplateError> {
        let coinbase = self.coinbase(payout, extranonce1)?;
        let job = Job {
            id,
            prev_hash: self.prev_hash,
            version: self.version,
            version_mask: 0,
            bits: self.bits,
            ntime: self.start_time(),
            ntime_roll: DEFAULT_NTIME_ROLL,
            coinbase,
            merkle_branch: self.merkle_branch(),
            share_target: self.target,
            clean: true,
        };
        job.validate()?;
        Ok(SoloJob {
            template: Arc::clone(self),
            job,
        })
    }

    /// The coinbase, split around the extranonce area:
    /// version 1 | one input spending nothing | scriptSig = height (BIP34), coinbaseaux flags,
    /// push of extranonce1 + extranonce2, tag | outputs: `payout` gets the whole coinbase value,
    /// then the witness commitment if any | lock time 0.
    fn coinbase(
        &self,
        payout: &ScriptBuf,
        extranonce1: [u8; SOLO_EXTRANONCE1_SIZE],
    ) -> Result<CoinbaseTemplate, TemplateError> {
        let mut head = bitcoin::script::Builder::new().push_int(i64::from(self.height));
        if !self.coinbase_aux.is_empty() {
            let aux = PushBytesBuf::try_from(self.coinbase_aux.clone())
                .map_err(|_| TemplateError::ScriptSigTooLong(self.coinbase_aux.len()))?;
            head = head.push_slice(aux);
        }
        let head = head.into_script().into_bytes();
        let extranonce_len = SOLO_EXTRANONCE1_SIZE + SOLO_EXTRANONCE2_SIZE;
        let script_sig_len = head.len() + 1 + extranonce_len + 1 + COINBASE_TAG.len();
        if script_sig_len > MAX_COINBASE_SCRIPT_SIG {
            return Err(TemplateError::ScriptSigTooLong(script_sig_len));
        }

        let mut prefix = Vec::with_capacity(64);
        prefix.extend_from_slice(&1u32.to_le_bytes()); // version
        prefix.push(1); // one input
        prefix.extend_from_slice(&[0u8; 32]);
        prefix.extend_from_slice(&u32::MAX.to_le_bytes()); // prevout: none
        prefix.push(script_sig_len as u8); // < 0xfd: a one-byte compact size
        prefix.extend_from_slice(&head);
        prefix.push(extranonce_len as u8); // direct push of the extranonce bytes

        let mut suffix = Vec::with_capacity(128);
        suffix.push(COINBASE_TAG.len() as u8);
        suffix.extend_from_slice(COINBASE_TAG);
        suffix.extend_from_slice(&u32::MAX.to_le_bytes()); // sequence
        let commitment = self.witness_commitment();
        let outputs = 1 + usize::from(commitment.is_some());
        suffix.push(outputs as u8);
        push_output(&mut suffix, self.coinbase_value.to_sat(), payout);
        if let Some(c) = &commitment {
            push_output(&mut suffix, 0, c);
        }
        suffix.extend_from_slice(&0u32.to_le_bytes()); // lock time

        Ok(CoinbaseTemplate {
            prefix,
            extranonce1: extranonce1.to_vec(),
            extranonce2_size: SOLO_EXTRANONCE2_SIZE,
            suffix,
        })
    }
}

/// A template turned into a job, able to assemble the block for a solution.
#[derive(Clone, Debug)]
pub struct SoloJob {
    pub template: Arc<BlockTemplate>,
    pub job: Job,
}

/// A solved block, ready for `submitblock`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SolvedBlock {
    pub header: Header,
    pub hash: BlockHash,
    pub height: u32,
    /// The consensus serialization (with witness data when the block is segwit).
    pub bytes: Vec<u8>,
}

impl SolvedBlock {
    pub fn to_hex(&self) -> String {
        self.bytes.to_lower_hex_string()
    }

    /// The block as rust-bitcoin sees it.
    pub fn decode(&self) -> Result<Block, String> {
        deserialize(&self.bytes).map_err(|e| e.to_string())
    }
}

impl SoloJob {
    /// The block a solution makes: its header, our coinbase for the solution's extranonce2
    /// (with the witness reserved value when committing to witnesses), then every template
    /// transaction as the node sent it. The share must meet the block target.
    pub fn block(&self, share: &Share) -> Result<SolvedBlock, TemplateError> {
        let hash = self.job.check_share(share)?;
        let header = self.job.header(&share.roll(), share.nonce)?;
        let legacy = self.job.coinbase.build(&share.extranonce2)?;
        let mut bytes = Vec::with_capacity(
            80 + 9
                + legacy.len()
                + 40
                + self
                    .template
                    .transactions
                    .iter()
                    .map(|t| t.data.len())
                    .sum::<usize>(),
        );
        bytes.extend_from_slice(&bitcoin::consensus::serialize(&header));
        let count = bitcoin::VarInt(1 + self.template.transactions.len() as u64);
        count
            .consensus_encode(&mut bytes)
            .expect("writing to a Vec cannot fail");
        if self.template.witness_commitment().is_some() {
            bytes.extend_from_slice(&with_reserved_witness(&legacy));
        } else {
            bytes.extend_from_slice(&legacy);
        }
        for tx in &self.template.transactions {
            bytes.extend_from_slice(&tx.data);
        }
        Ok(SolvedBlock {
            header,
            hash,
            height: self.template.height,
            bytes,
        })
    }
}

/// The coinbase's witness serialization: marker and flag after the version, and one witness of
/// one 32-byte zero item (BIP141's witness reserved value) before the lock time.
fn with_reserved_witness(legacy: &[u8]) -> Vec<u8> {
    let (head, lock_time) = legacy.split_at(legacy.len() - 4);
    let mut out = Vec::with_capacity(legacy.len() + 2 + 34);
    out.extend_from_slice(&head[..4]);
    out.extend_from_slice(&[0x00, 0x01]);
    out.extend_from_slice(&head[4..]);
    out.push(1); // one stack item
    out.push(32);
    out.extend_from_slice(&[0u8; 32]);
    out.extend_from_slice(lock_time);
    out
}

fn push_output(out: &mut Vec<u8>, value: u64, script: &ScriptBuf) {
    out.extend_from_slice(&value.to_le_bytes());
    bitcoin::VarInt(script.len() as u64)
        .consensus_encode(out)
        .expect("writing to a Vec cannot fail");
    out.extend_from_slice(script.as_bytes());
}

/// The target `bits` encode, refusing what no chain accepts: a negative or overflowing compact
/// number, a zero target, or one easier than regtest's proof-of-work limit (`207fffff`, the
/// easiest of all chains).
fn target_of_bits(bits: CompactTarget) -> Result<Target, TemplateError> {
    let raw = bits.to_consensus();
    let why = if raw & 0x0080_0000 != 0 {
        Some("is negative")
    } else if raw >> 24 > 32 {
        Some("has an exponent above 32 (no 256-bit target needs one)")
    } else {
        None
    };
    let target = match why {
        Some(_) => Target::ZERO,
        None => Target::from_compact(bits),
    };
    let why = why.or(if target == Target::ZERO {
        Some("is zero")
    } else if target > Target::MAX_ATTAINABLE_REGTEST {
        Some("is easier than any chain allows (regtest's limit is 207fffff)")
    } else {
        None
    });
    match why {
        Some(why) => Err(invalid("bits", format!("{raw:08x} {why}"))),
        None => Ok(target),
    }
}

/// Refuse a transaction list no block can hold before decoding any of it: a peer's template
/// must not make us allocate for more than one block's worth.
fn check_template_size(list: &[serde_json::Value]) -> Result<(), TemplateError> {
    if list.len() > MAX_TEMPLATE_TRANSACTIONS {
        return Err(TemplateError::TooManyTransactions {
            count: list.len(),
            limit: MAX_TEMPLATE_TRANSACTIONS,
        });
    }
    // Entries whose data is not a string are refused later, one by one, with their index.
    let bytes = list
        .iter()
        .filter_map(|t| t.get("data").and_then(|d| d.as_str()))
        .fold(0usize, |sum, d| sum.saturating_add(d.len() / 2));
    if bytes > MAX_TEMPLATE_TX_BYTES {
        return Err(TemplateError::TooLarge {
            bytes,
            limit: MAX_TEMPLATE_TX_BYTES,
        });
    }
    Ok(())
}

/// The coinbase's siblings at each level of the merkle tree over `[coinbase] + txids`, bottom
/// first (what Stratum calls the merkle branch). An odd level pairs its last node with itself.
pub fn merkle_branch(txids: impl IntoIterator<Item = Txid>) -> Vec<TxMerkleNode> {
    // Level 0 without the coinbase, whose hash is not known yet: the coinbase's path only ever
    // needs the nodes to its right.
    let mut level: Vec<[u8; 32]> = txids.into_iter().map(|t| t.to_byte_array()).collect();
    let mut branch = Vec::new();
    while !level.is_empty() {
        branch.push(TxMerkleNode::from_byte_array(level[0]));
        // The rest of this level (after the coinbase's node and its sibling) folds in pairs.
        let rest = &level[1..];
        let mut next = Vec::with_capacity(rest.len().div_ceil(2));
        for pair in rest.chunks(2) {
            let right = pair.get(1).unwrap_or(&pair[0]);
            next.push(hash_pair(&pair[0], right));
        }
        level = next;
    }
    branch
}

/// The merkle root of a list of transaction hashes (Bitcoin's tree, the last node doubled on an
/// odd level), or `None` for an empty list.
pub fn merkle_root(hashes: impl IntoIterator<Item = [u8; 32]>) -> Option<[u8; 32]> {
    let mut level: Vec<[u8; 32]> = hashes.into_iter().collect();
    if level.is_empty() {
        return None;
    }
    while level.len() > 1 {
        level = level
            .chunks(2)
            .map(|p| hash_pair(&p[0], p.get(1).unwrap_or(&p[0])))
            .collect();
    }
    Some(level[0])
}

/// The BIP141 commitment output script for the given non-coinbase wtxids (the coinbase's wtxid
/// counts as zero) and a zero witness reserved value.
pub fn witness_commitment_script(wtxids: impl IntoIterator<Item = Wtxid>) -> ScriptBuf {
    let commitment = witness_commitment(wtxids, &[0u8; 32]);
    let mut script = WITNESS_COMMITMENT_HEADER.to_vec();
    script.extend_from_slice(&commitment);
    ScriptBuf::from_bytes(script)
}

/// BIP141's commitment: sha256d(witness merkle root || witness reserved value), the root taken
/// over the coinbase (as zero) and then the non-coinbase `wtxids`.
pub fn witness_commitment(
    wtxids: impl IntoIterator<Item = Wtxid>,
    reserved_value: &[u8; 32],
) -> [u8; 32] {
    let leaves = std::iter::once([0u8; 32]).chain(wtxids.into_iter().map(|w| w.to_byte_array()));
    let root = merkle_root(leaves).expect("the coinbase is always a leaf");
    hash_pair(&root, reserved_value)
}

/// A node's `default_witness_commitment` must be BIP141's commitment to the template's
/// transactions: a wrong one would make every block mined on the template invalid (the fuzz
/// target found the decoder trusting it). Bytes after the 38 that BIP141 fixes are allowed.
fn check_witness_commitment(
    given: Option<&ScriptBuf>,
    transactions: &[TemplateTx],
) -> Result<(), TemplateError> {
    let Some(given) = given else {
        return Ok(());
    };
    let expected = witness_commitment_script(transactions.iter().map(|t| t.wtxid));
    let given = given.as_bytes();
    if given.len() >= 38 && given[..38] == expected.as_bytes()[..] {
        return Ok(());
    }
    Err(TemplateError::Invalid {
        field: "default_witness_commitment",
        why: format!(
            "{} is not BIP141's commitment to the template's transactions ({}); refusing a template whose blocks would be invalid",
            given.to_lower_hex_string(),
            expected.as_bytes().to_lower_hex_string()
        ),
    })
}

/// The witness commitment a coinbase carries: its last output starting with BIP141's header.
pub fn find_witness_commitment(coinbase: &Transaction) -> Option<[u8; 32]> {
    coinbase.output.iter().rev().find_map(|o| {
        let s = o.script_pubkey.as_bytes();
        (s.len() >= 38 && s[..6] == WITNESS_COMMITMENT_HEADER)
            .then(|| s[6..38].try_into().expect("32 bytes"))
    })
}

fn hash_pair(left: &[u8; 32], right: &[u8; 32]) -> [u8; 32] {
    let mut pair = [0u8; 64];
    pair[..32].copy_from_slice(left);
    pair[32..].copy_from_slice(right);
    sha256d::Hash::hash(&pair).to_byte_array()
}

fn parse_template_tx(index: usize, t: &serde_json::Value) -> Result<TemplateTx, TemplateError> {
    let bad = |why: String| TemplateError::BadTransaction { index, why };
    let data = t
        .get("data")
        .and_then(|d| d.as_str())
        .ok_or_else(|| bad("no \"data\"".into()))?;
    let data = Vec::from_hex(data).map_err(|e| bad(format!("data: {e}")))?;
    let mut tx = TemplateTx::from_bytes(data).map_err(|e| bad(format!("cannot decode: {e}")))?;
    if let Some(txid) = t.get("txid").and_then(|x| x.as_str()) {
        if txid != tx.txid.to_string() {
            return Err(bad(format!(
                "txid {txid} does not match its data ({})",
                tx.txid
            )));
        }
    }
    // Pre-segwit nodes send `hash` as the txid; a segwit node sends the wtxid.
    if let Some(hash) = t.get("hash").and_then(|x| x.as_str()) {
        if hash != tx.wtxid.to_string() && hash != tx.txid.to_string() {
            return Err(bad(format!(
                "hash {hash} does not match its data ({})",
                tx.wtxid
            )));
        }
    }
    tx.fee = t.get("fee").and_then(|f| f.as_u64());
    Ok(tx)
}

fn field<'a>(
    v: &'a serde_json::Value,
    name: &'static str,
) -> Result<&'a serde_json::Value, TemplateError> {
    v.get(name).ok_or(TemplateError::Missing(name))
}

fn field_u64(v: &serde_json::Value, name: &'static str) -> Result<u64, TemplateError> {
    field(v, name)?
        .as_u64()
        .ok_or_else(|| invalid(name, "not a non-negative integer"))
}

fn field_str<'a>(v: &'a serde_json::Value, name: &'static str) -> Result<&'a str, TemplateError> {
    field(v, name)?
        .as_str()
        .ok_or_else(|| invalid(name, "not a string"))
}

fn invalid(field: &'static str, why: impl std::fmt::Display) -> TemplateError {
    TemplateError::Invalid {
        field,
        why: why.to_string(),
    }
}

/// Why a `--coinbase-addr` cannot be paid.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PayoutError {
    #[error("coinbase address {addr:?} is not a Bitcoin address ({why}); give a base58 or bech32 address of the node's network")]
    Unparseable { addr: String, why: String },
    #[error("coinbase address {addr} is a {found} address but the node runs {network}: coins paid to it would be lost there; give a {network} address")]
    WrongNetwork {
        addr: String,
        found: String,
        network: bitcoin::Network,
    },
    #[error("coinbase address {addr} is a segwit address but the node does not enforce segwit (no \"segwit\" rule in its templates): coins paid to it could be taken by anyone; give a legacy (base58) address")]
    SegwitWithoutSegwit { addr: String },
}

/// The output script paying `addr`, checked against the node's network and whether it enforces
/// segwit, so a block never pays an address that is not safely spendable there.
pub fn payout_script(
    addr: &str,
    network: bitcoin::Network,
    segwit: bool,
) -> Result<ScriptBuf, PayoutError> {
    use bitcoin::address::NetworkUnchecked;
    use bitcoin::Address;
    let unchecked: Address<NetworkUnchecked> =
        addr.trim().parse().map_err(|e| PayoutError::Unparseable {
            addr: addr.to_owned(),
            why: format!("{e}"),
        })?;
    if !unchecked.is_valid_for_network(network) {
        let found = [
            Network::Bitcoin,
            Network::Testnet,
            Network::Signet,
            Network::Regtest,
        ]
        .into_iter()
        .filter(|n| unchecked.is_valid_for_network(*n))
        .map(|n| n.to_string())
        .collect::<Vec<_>>()
        .join("/");
        return Err(PayoutError::WrongNetwork {
            addr: addr.to_owned(),
            found,
            network,
        });
    }
    let checked = unchecked.assume_checked();
    if !segwit && checked.witness_program().is_some() {
        return Err(PayoutError::SegwitWithoutSegwit {
            addr: addr.to_owned(),
        });
    }
    Ok(checked.script_pubkey())
}
