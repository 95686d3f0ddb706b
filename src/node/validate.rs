//! Block validation for the node core: pure functions over a block and the facts about the chain
//! it extends ([`BlockContext`]). No disk, no clock: the caller passes the time, so every rule is
//! testable on its own.
//!
//! The rules are Bitcoin Core's for a regtest block, in Core's order (header, then block
//! structure, then contextual checks, then the coinbase amount), and a refusal carries Core's
//! reject code ([`RejectReason::code`]) so a `submitblock` caller sees what bitcoind would say.
//! Two rules are this core's own, because it keeps no UTXO set and no mempool: a block may hold
//! only its coinbase ([`RejectReason::TxnsUnsupported`]), and the previous block must be the tip
//! (the chain layer's [`RejectReason::StalePrevBlock`]).

use bitcoin::block::{Header, Version};
use bitcoin::pow::{CompactTarget, Target};
use bitcoin::script::Builder;
use bitcoin::{Amount, Block, BlockHash, ScriptBuf, Transaction, Weight};

/// Blocks between subsidy halvings on regtest (Bitcoin Core's `nSubsidyHalvingInterval`).
pub const REGTEST_HALVING_INTERVAL: u32 = 150;

/// Blocks between subsidy halvings on mainnet, testnet and signet.
pub const MAINNET_HALVING_INTERVAL: u32 = 210_000;

/// The first block's subsidy: 50 BTC.
pub const INITIAL_SUBSIDY: Amount = Amount::from_sat(50 * 100_000_000);

/// How far past the validating node's clock a block's time may be (Core's
/// `MAX_FUTURE_BLOCK_TIME`, two hours).
pub const MAX_FUTURE_BLOCK_TIME: u32 = 2 * 60 * 60;

/// Blocks whose times make the median time past (Core's `nMedianTimeSpan`).
pub const MEDIAN_TIME_SPAN: usize = 11;

/// The lowest block version accepted: BIP34, BIP66 and BIP65 are active from height 1 on
/// regtest (Core's `BIP34Height = BIP65Height = BIP66Height = 1`), which makes versions below 4
/// invalid there.
pub const MIN_BLOCK_VERSION: i32 = 4;

/// Consensus: the largest block weight.
pub const MAX_BLOCK_WEIGHT: Weight = Weight::MAX_BLOCK;

/// Consensus: no amount above 21 million BTC.
const MAX_MONEY: Amount = Amount::MAX_MONEY;

/// Why a block is refused. [`Self::code`] is Bitcoin Core's reject reason; `Display` gives the
/// code and a plain sentence.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RejectReason {
    /// The block is already in the chain.
    #[error("duplicate: the block is already in the chain")]
    Duplicate,
    /// The previous block is unknown.
    #[error("bad-prevblk: the previous block {0} is not known")]
    BadPrevBlock(BlockHash),
    /// The previous block is known but is not the tip. This core keeps a single chain (no side
    /// chains, no reorganisations), so such a block can never become part of it.
    #[error("stale-prevblk: the previous block {prev} is at height {prev_height}, not the tip at {tip_height}; this node core keeps one chain, so the block is stale")]
    StalePrevBlock {
        prev: BlockHash,
        prev_height: u32,
        tip_height: u32,
    },
    /// The hash does not meet the target of the block's own nBits, or the nBits are not a valid
    /// target within the regtest proof-of-work limit.
    #[error("high-hash: proof of work failed (the hash {hash} does not meet the target of nBits {bits:#010x}, or the nBits are invalid)")]
    HighHash { hash: BlockHash, bits: u32 },
    /// nBits differ from what the chain requires.
    #[error("bad-diffbits: nBits {got:#010x} is not the chain's {expected:#010x}")]
    BadDiffBits { got: u32, expected: u32 },
    /// nTime is not after the median time past of the last 11 blocks.
    #[error(
        "time-too-old: block time {time} is not after the median time past {median_time_past}"
    )]
    TimeTooOld { time: u32, median_time_past: u32 },
    /// nTime is more than two hours ahead of the node's clock.
    #[error("time-too-new: block time {time} is more than two hours after the node's time {now}")]
    TimeTooNew { time: u32, now: u32 },
    /// The version predates BIP34/65/66, which regtest enforces from height 1.
    #[error("bad-version({0:#010x}): block versions below 4 are obsolete (BIP34, BIP65, BIP66 are active)")]
    BadVersion(i32),
    /// The header's merkle root is not the root of the block's transactions.
    #[error("bad-txnmrklroot: the header's merkle root does not match the transactions")]
    BadMerkleRoot,
    /// The transaction list repeats a transaction (CVE-2012-2459 mutation).
    #[error("bad-txns-duplicate: the block lists a transaction twice")]
    DuplicateTx,
    /// No transactions, or too many bytes.
    #[error("bad-blk-length: the block has no transactions or is too large")]
    BadLength,
    /// The block weighs more than 4,000,000 weight units.
    #[error("bad-blk-weight: the block weighs {0} WU, more than 4,000,000")]
    BadWeight(u64),
    /// The first transaction is not a coinbase.
    #[error("bad-cb-missing: the first transaction is not a coinbase")]
    CoinbaseMissing,
    /// A transaction after the first is a coinbase.
    #[error("bad-cb-multiple: transaction {0} is a second coinbase")]
    CoinbaseMultiple(usize),
    /// The coinbase scriptSig is not 2 to 100 bytes.
    #[error("bad-cb-length: the coinbase scriptSig has {0} bytes, not 2 to 100")]
    CoinbaseLength(usize),
    /// The coinbase has no outputs.
    #[error("bad-txns-vout-empty: the coinbase has no outputs")]
    NoOutputs,
    /// An output or the outputs' sum is above 21 million BTC.
    #[error(
        "bad-txns-txouttotal-toolarge: the coinbase outputs add up to more than 21 million BTC"
    )]
    OutputTooLarge,
    /// The coinbase scriptSig does not start with the block height (BIP34).
    #[error("bad-cb-height: the coinbase scriptSig does not start with the height {0} (BIP34)")]
    CoinbaseHeight(u32),
    /// The witness reserved value is not a single 32-byte item.
    #[error("bad-witness-nonce-size: the coinbase witness is not one 32-byte reserved value")]
    WitnessNonceSize,
    /// The witness commitment does not match the block's witnesses.
    #[error("bad-witness-merkle-match: the coinbase's witness commitment does not match the block's witnesses")]
    WitnessMerkleMatch,
    /// Witness data without a commitment.
    #[error("unexpected-witness: a transaction has witness data but the coinbase commits to none")]
    UnexpectedWitness,
    /// A non-coinbase transaction: this core has no UTXO set to check it against.
    #[error("bad-txns-unsupported: the block has {0} transaction(s) besides the coinbase; this node core has no UTXO set or mempool and accepts only coinbase-only blocks")]
    TxnsUnsupported(usize),
    /// The coinbase pays more than the subsidy (there are no fees here).
    #[error("bad-cb-amount: the coinbase pays {paid}, more than the {allowed} subsidy")]
    CoinbaseAmount { paid: Amount, allowed: Amount },
    /// Not the block's fault: the data directory refused the write. The chain is unchanged.
    #[error(
        "store-failed: the block is valid but could not be stored ({0}); the chain is unchanged"
    )]
    StoreFailed(StoreFault),
}

/// Why a valid block could not be stored ([`RejectReason::StoreFailed`]): not the block's
/// fault, and something the operator can fix (free space, fix permissions).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{why}")]
pub struct StoreFault {
    /// The disk (or the user's quota) is full: freeing space fixes it.
    pub disk_full: bool,
    /// The database file that refused the write.
    pub file: std::path::PathBuf,
    /// The store's error, in words.
    pub why: String,
}

impl RejectReason {
    /// Bitcoin Core's reject code for this reason (what `submitblock` returns).
    pub fn code(&self) -> String {
        use RejectReason::*;
        match self {
            Duplicate => "duplicate".into(),
            BadPrevBlock(_) => "bad-prevblk".into(),
            StalePrevBlock { .. } => "stale-prevblk".into(),
            HighHash { .. } => "high-hash".into(),
            BadDiffBits { .. } => "bad-diffbits".into(),
            TimeTooOld { .. } => "time-too-old".into(),
            TimeTooNew { .. } => "time-too-new".into(),
            BadVersion(v) => format!("bad-version({v:#010x})"),
            BadMerkleRoot => "bad-txnmrklroot".into(),
            DuplicateTx => "bad-txns-duplicate".into(),
            BadLength => "bad-blk-length".into(),
            BadWeight(_) => "bad-blk-weight".into(),
            CoinbaseMissing => "bad-cb-missing".into(),
            CoinbaseMultiple(_) => "bad-cb-multiple".into(),
            CoinbaseLength(_) => "bad-cb-length".into(),
            NoOutputs => "bad-txns-vout-empty".into(),
            OutputTooLarge => "bad-txns-txouttotal-toolarge".into(),
            CoinbaseHeight(_) => "bad-cb-height".into(),
            WitnessNonceSize => "bad-witness-nonce-size".into(),
            WitnessMerkleMatch => "bad-witness-merkle-match".into(),
            UnexpectedWitness => "unexpected-witness".into(),
            TxnsUnsupported(_) => "bad-txns-unsupported".into(),
            CoinbaseAmount { .. } => "bad-cb-amount".into(),
            StoreFailed(_) => "store-failed".into(),
        }
    }

    /// Whether the block itself is at fault (everything but [`Self::StoreFailed`]).
    pub fn is_block_fault(&self) -> bool {
        !matches!(self, RejectReason::StoreFailed(_))
    }
}

/// What validation needs to know about the chain a block extends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockContext {
    /// The height the block would have.
    pub height: u32,
    /// Median time past of the block's ancestors (the last 11).
    pub median_time_past: u32,
    /// nBits the block must carry; `None` skips the check (re-verifying stored blocks that were
    /// accepted under an earlier `--difficulty`).
    pub required_bits: Option<CompactTarget>,
    /// The validating node's clock; `None` skips the time-too-new check (re-verifying stored
    /// blocks, which were checked against the clock when they came in).
    pub now: Option<u32>,
    /// Blocks between subsidy halvings.
    pub halving_interval: u32,
}

/// The block subsidy at `height`: 50 BTC, halved every `halving_interval` blocks, zero after 64
/// halvings (Core's `GetBlockSubsidy`).
pub fn subsidy(height: u32, halving_interval: u32) -> Amount {
    let halvings = height.checked_div(halving_interval).unwrap_or(0);
    if halvings >= 64 {
        return Amount::ZERO;
    }
    Amount::from_sat(INITIAL_SUBSIDY.to_sat() >> halvings)
}

/// The regtest subsidy at `height` (halving every 150 blocks).
pub fn regtest_subsidy(height: u32) -> Amount {
    subsidy(height, REGTEST_HALVING_INTERVAL)
}

/// Median of up to the last 11 block times (Core's `GetMedianTimePast`: sort, take the middle,
/// the upper one of an even count).
pub fn median_time_past(times: &[u32]) -> u32 {
    let start = times.len().saturating_sub(MEDIAN_TIME_SPAN);
    let mut last: Vec<u32> = times[start..].to_vec();
    if last.is_empty() {
        return 0;
    }
    last.sort_unstable();
    last[last.len() / 2]
}

/// What BIP34 requires a coinbase scriptSig to start with: `CScript() << height`
/// (OP_0, OP_1..OP_16, or a minimal script-number push).
pub fn bip34_prefix(height: u32) -> ScriptBuf {
    Builder::new().push_int(i64::from(height)).into_script()
}

/// The target nBits encode, or `None` when Core's `SetCompact` calls them negative, zero or
/// overflowing, or the target is above `pow_limit` (what `CheckProofOfWork` refuses).
pub fn target_of_bits(bits: CompactTarget, pow_limit: Target) -> Option<Target> {
    let b = bits.to_consensus();
    let size = b >> 24;
    let word = b & 0x007f_ffff;
    let negative = word != 0 && b & 0x0080_0000 != 0;
    let overflow =
        word != 0 && (size > 34 || (word > 0xff && size > 33) || (word > 0xffff && size > 32));
    if negative || overflow || word == 0 {
        return None;
    }
    let target = Target::from_compact(bits);
    (target != Target::ZERO && target <= pow_limit).then_some(target)
}

/// Proof of work against the header's own nBits (Core's `CheckProofOfWork`): `high-hash`.
pub fn check_pow(header: &Header, pow_limit: Target) -> Result<(), RejectReason> {
    let hash = header.block_hash();
    match target_of_bits(header.bits, pow_limit) {
        Some(t) if t.is_met_by(hash) => Ok(()),
        _ => Err(RejectReason::HighHash {
            hash,
            bits: header.bits.to_consensus(),
        }),
    }
}

/// The header checks that need the chain: nBits, time against the median time past and the
/// clock, and the version (Core's `ContextualCheckBlockHeader`).
pub fn check_header_contextual(header: &Header, ctx: &BlockContext) -> Result<(), RejectReason> {
    if let Some(required) = ctx.required_bits {
        if header.bits != required {
            return Err(RejectReason::BadDiffBits {
                got: header.bits.to_consensus(),
                expected: required.to_consensus(),
            });
        }
    }
    if header.time <= ctx.median_time_past {
        return Err(RejectReason::TimeTooOld {
            time: header.time,
            median_time_past: ctx.median_time_past,
        });
    }
    if let Some(now) = ctx.now {
        if u64::from(header.time) > u64::from(now) + u64::from(MAX_FUTURE_BLOCK_TIME) {
            return Err(RejectReason::TimeTooNew {
                time: header.time,
                now,
            });
        }
    }
    if header.version < Version::from_consensus(MIN_BLOCK_VERSION) {
        return Err(RejectReason::BadVersion(header.version.to_consensus()));
    }
    Ok(())
}

/// The block's structure, independent of the chain (Core's `CheckBlock` after the header):
/// merkle root, size, exactly one coinbase first, the coinbase's own sanity.
pub fn check_block_structure(block: &Block) -> Result<(), RejectReason> {
    if block.txdata.is_empty() {
        return Err(RejectReason::BadLength);
    }
    match block.compute_merkle_root() {
        Some(root) if root == block.header.merkle_root => {}
        _ => return Err(RejectReason::BadMerkleRoot),
    }
    let mut seen = std::collections::HashSet::with_capacity(block.txdata.len());
    if !block.txdata.iter().all(|t| seen.insert(t.compute_txid())) {
        return Err(RejectReason::DuplicateTx);
    }
    let base_size = bitcoin::consensus::serialize(&StrippedBlock(block)).len() as u64;
    if base_size * 4 > MAX_BLOCK_WEIGHT.to_wu() {
        return Err(RejectReason::BadLength);
    }
    if !block.txdata[0].is_coinbase() {
        return Err(RejectReason::CoinbaseMissing);
    }
    if let Some(i) = block.txdata.iter().skip(1).position(|t| t.is_coinbase()) {
        return Err(RejectReason::CoinbaseMultiple(i + 1));
    }
    check_coinbase_sanity(&block.txdata[0])
}

/// The block's checks that need its height (Core's `ContextualCheckBlock`): BIP34, the witness
/// commitment, the weight.
pub fn check_block_contextual(block: &Block, height: u32) -> Result<(), RejectReason> {
    let coinbase = block.txdata.first().ok_or(RejectReason::CoinbaseMissing)?;
    let script_sig = coinbase
        .input
        .first()
        .map(|i| i.script_sig.as_bytes())
        .unwrap_or_default();
    if !script_sig.starts_with(bip34_prefix(height).as_bytes()) {
        return Err(RejectReason::CoinbaseHeight(height));
    }
    check_witness(block)?;
    let weight = block.weight();
    if weight > MAX_BLOCK_WEIGHT {
        return Err(RejectReason::BadWeight(weight.to_wu()));
    }
    Ok(())
}

/// What only a UTXO set could check, done as far as this core can: no transactions besides the
/// coinbase, and the coinbase pays at most the subsidy (Core's `ConnectBlock`: `bad-cb-amount`).
pub fn check_block_connect(block: &Block, ctx: &BlockContext) -> Result<(), RejectReason> {
    if block.txdata.len() > 1 {
        return Err(RejectReason::TxnsUnsupported(block.txdata.len() - 1));
    }
    let coinbase = block.txdata.first().ok_or(RejectReason::CoinbaseMissing)?;
    let paid = output_total(coinbase)?;
    let allowed = subsidy(ctx.height, ctx.halving_interval);
    if paid > allowed {
        return Err(RejectReason::CoinbaseAmount { paid, allowed });
    }
    Ok(())
}

/// Every check of a block against the chain it extends, in Core's order, except the ones about
/// where it attaches (duplicate, unknown or stale previous block), which need the chain.
pub fn check_block(block: &Block, ctx: &BlockContext) -> Result<(), RejectReason> {
    check_pow(&block.header, Target::MAX_ATTAINABLE_REGTEST)?;
    check_header_contextual(&block.header, ctx)?;
    check_block_structure(block)?;
    check_block_contextual(block, ctx.height)?;
    check_block_connect(block, ctx)
}

fn check_coinbase_sanity(coinbase: &Transaction) -> Result<(), RejectReason> {
    let len = coinbase.input[0].script_sig.len();
    if !(2..=100).contains(&len) {
        return Err(RejectReason::CoinbaseLength(len));
    }
    if coinbase.output.is_empty() {
        return Err(RejectReason::NoOutputs);
    }
    output_total(coinbase).map(|_| ())
}

fn output_total(tx: &Transaction) -> Result<Amount, RejectReason> {
    let mut total = Amount::ZERO;
    for out in &tx.output {
        if out.value > MAX_MONEY {
            return Err(RejectReason::OutputTooLarge);
        }
        total = total
            .checked_add(out.value)
            .filter(|t| *t <= MAX_MONEY)
            .ok_or(RejectReason::OutputTooLarge)?;
    }
    Ok(total)
}

/// BIP141 as Core checks it: a commitment in the coinbase needs a 32-byte reserved value and a
/// matching witness root; without one, no transaction may carry witness data.
fn check_witness(block: &Block) -> Result<(), RejectReason> {
    let coinbase = &block.txdata[0];
    if crate::work::merkle::find_witness_commitment(coinbase).is_some() {
        let witness = &coinbase.input[0].witness;
        if witness.len() != 1 || witness.iter().next().map(<[u8]>::len) != Some(32) {
            return Err(RejectReason::WitnessNonceSize);
        }
        // rust-bitcoin's check returns true without looking when no transaction carries a
        // witness, but the coinbase's reserved value is one, so it always looks here.
        if !block.check_witness_commitment() {
            return Err(RejectReason::WitnessMerkleMatch);
        }
        return Ok(());
    }
    if block
        .txdata
        .iter()
        .any(|t| t.input.iter().any(|i| !i.witness.is_empty()))
    {
        return Err(RejectReason::UnexpectedWitness);
    }
    Ok(())
}

/// A block serialized without witnesses (Core's `TX_NO_WITNESS(block)`), for the size rule.
struct StrippedBlock<'a>(&'a Block);

impl bitcoin::consensus::Encodable for StrippedBlock<'_> {
    fn consensus_encode<W: bitcoin::io::Write + ?Sized>(
        &self,
        w: &mut W,
    ) -> Result<usize, bitcoin::io::Error> {
        let mut len = self.0.header.consensus_encode(w)?;
        len += bitcoin::VarInt(self.0.txdata.len() as u64).consensus_encode(w)?;
        for tx in &self.0.txdata {
            let mut stripped = tx.clone();
            for input in &mut stripped.input {
                input.witness.clear();
            }
            len += stripped.consensus_encode(w)?;
        }
        Ok(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subsidy_halves_every_150_blocks() {
        assert_eq!(regtest_subsidy(0), INITIAL_SUBSIDY);
        assert_eq!(regtest_subsidy(149), INITIAL_SUBSIDY);
        assert_eq!(regtest_subsidy(150), Amount::from_sat(25 * 100_000_000));
        assert_eq!(regtest_subsidy(300), Amount::from_sat(1_250_000_000));
        assert_eq!(regtest_subsidy(150 * 64), Amount::ZERO);
        assert_eq!(regtest_subsidy(u32::MAX), Amount::ZERO);
        assert_eq!(subsidy(5, 0), INITIAL_SUBSIDY);
    }

    #[test]
    fn median_time_past_is_cores() {
        assert_eq!(median_time_past(&[]), 0);
        assert_eq!(median_time_past(&[5]), 5);
        assert_eq!(median_time_past(&[1, 2]), 2);
        let times: Vec<u32> = (0..20).rev().collect();
        // The last 11 are 10..=0, median 5.
        assert_eq!(median_time_past(&times), 5);
    }

    #[test]
    fn bip34_prefix_uses_small_int_opcodes() {
        assert_eq!(bip34_prefix(0).as_bytes(), [0x00]);
        assert_eq!(bip34_prefix(1).as_bytes(), [0x51]);
        assert_eq!(bip34_prefix(16).as_bytes(), [0x60]);
        assert_eq!(bip34_prefix(17).as_bytes(), [0x01, 17]);
        assert_eq!(bip34_prefix(128).as_bytes(), [0x02, 0x80, 0x00]);
        assert_eq!(bip34_prefix(500_000).as_bytes(), [0x03, 0x20, 0xa1, 0x07]);
    }

    #[test]
    fn bits_outside_the_pow_limit_are_refused() {
        let limit = Target::MAX_ATTAINABLE_REGTEST;
        let ok = |b: u32| target_of_bits(CompactTarget::from_consensus(b), limit).is_some();
        assert!(ok(0x207f_ffff));
        assert!(ok(0x1d00_ffff));
        assert!(!ok(0x2080_0000)); // above the limit (and negative)
        assert!(!ok(0x2100_ffff)); // above the limit
        assert!(!ok(0x1d80_ffff)); // negative
        assert!(!ok(0x0000_0000)); // zero
        assert!(!ok(0xff7f_ffff)); // overflow
    }
}
