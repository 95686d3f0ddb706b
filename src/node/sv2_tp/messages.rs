//! The node core's templates as Template Distribution messages, and a `SubmitSolution` as the
//! block it makes. Pure: SRI's message types in, rust-bitcoin's out, no I/O.
//!
//! The coinbase split follows the Template Distribution Protocol (SV2 spec, section 7): the
//! template gives the scriptSig's start (the BIP34 height), the value the pool may pay out, and
//! the outputs that must close the coinbase (here BIP141's witness commitment); the pool builds
//! the rest and sends the whole coinbase back in `SubmitSolution`.

use binary_sv2::{B0255Owned, B064KOwned, Seq0255Owned, U256Owned};
use bitcoin::block::{Header, Version};
use bitcoin::consensus::{deserialize, Encodable};
use bitcoin::hashes::Hash;
use bitcoin::{Amount, Block, Transaction, TxMerkleNode, TxOut};
use template_distribution_sv2::{NewTemplateOwned, SetNewPrevHashOwned};

use crate::node::validate::bip34_prefix;
use crate::work::BlockTemplate;

/// The coinbase transaction version a template asks for (Bitcoin Core's TP uses 2 too).
pub const COINBASE_TX_VERSION: u32 = 2;

/// Why a solution makes no block. The chain is never asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SolutionError {
    #[error("its coinbase_tx is not a transaction ({0})")]
    CoinbaseUndecodable(String),
    #[error("its coinbase_tx is not a coinbase (it spends an output)")]
    NotCoinbase,
    #[error("template transaction {0} does not decode")]
    TemplateTx(usize),
}

/// Why a template cannot be written as Template Distribution messages (a field over the
/// protocol's size limit; the node core's own templates never are).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("template field {field} does not fit the Template Distribution message: {why}")]
pub struct TemplateEncodeError {
    pub field: &'static str,
    pub why: String,
}

fn encode_err(field: &'static str) -> impl Fn(binary_sv2::Error) -> TemplateEncodeError {
    move |e| TemplateEncodeError {
        field,
        why: format!("{e:?}"),
    }
}

/// `NewTemplate` for `template` under `template_id`; `future` when it waits for a
/// `SetNewPrevHash` (a template for a new tip), not when it replaces work on the current tip.
pub fn new_template(
    template: &BlockTemplate,
    template_id: u64,
    future: bool,
) -> Result<NewTemplateOwned, TemplateEncodeError> {
    // The outputs that must close the coinbase: BIP141's commitment when the block is segwit.
    let outputs: Vec<TxOut> = template
        .witness_commitment()
        .map(|script| TxOut {
            value: Amount::ZERO,
            script_pubkey: script,
        })
        .into_iter()
        .collect();
    let mut serialized = Vec::new();
    for output in &outputs {
        output
            .consensus_encode(&mut serialized)
            .expect("writing to a Vec cannot fail");
    }
    let merkle_path: Vec<U256Owned> = template
        .merkle_branch()
        .iter()
        .map(|node| U256Owned::from(node.to_byte_array()))
        .collect();
    Ok(NewTemplateOwned {
        template_id,
        future_template: future,
        version: template.version.to_consensus() as u32,
        coinbase_tx_version: COINBASE_TX_VERSION,
        coinbase_prefix: B0255Owned::try_from(bip34_prefix(template.height).into_bytes())
            .map_err(encode_err("coinbase_prefix"))?,
        coinbase_tx_input_sequence: u32::MAX,
        coinbase_tx_value_remaining: template.coinbase_value.to_sat(),
        coinbase_tx_outputs_count: outputs.len() as u32,
        coinbase_tx_outputs: B064KOwned::try_from(serialized)
            .map_err(encode_err("coinbase_tx_outputs"))?,
        coinbase_tx_locktime: 0,
        merkle_path: Seq0255Owned::try_from(merkle_path).map_err(encode_err("merkle_path"))?,
    })
}

/// `SetNewPrevHash` making `template_id` (a future template for `template`'s tip) current.
pub fn set_new_prev_hash(template: &BlockTemplate, template_id: u64) -> SetNewPrevHashOwned {
    SetNewPrevHashOwned {
        template_id,
        prev_hash: U256Owned::from(template.prev_hash.to_byte_array()),
        header_timestamp: template.start_time(),
        n_bits: template.bits.to_consensus(),
        target: U256Owned::from(template.target.to_le_bytes()),
    }
}

/// The block a solution makes on `template`: its header from the solution's version, time and
/// nonce and the template's previous hash and bits; its coinbase as the solution sends it (with
/// its witness, when it has one); then the template's transactions as the node made them.
pub fn solution_block(
    template: &BlockTemplate,
    version: u32,
    time: u32,
    nonce: u32,
    coinbase_tx: &[u8],
) -> Result<Block, SolutionError> {
    let coinbase: Transaction =
        deserialize(coinbase_tx).map_err(|e| SolutionError::CoinbaseUndecodable(e.to_string()))?;
    if !coinbase.is_coinbase() {
        return Err(SolutionError::NotCoinbase);
    }
    let mut txdata = Vec::with_capacity(1 + template.transactions.len());
    txdata.push(coinbase);
    for (index, tx) in template.transactions.iter().enumerate() {
        txdata.push(deserialize(&tx.data).map_err(|_| SolutionError::TemplateTx(index))?);
    }
    let mut block = Block {
        header: Header {
            version: Version::from_consensus(version as i32),
            prev_blockhash: template.prev_hash,
            merkle_root: TxMerkleNode::all_zeros(),
            time,
            bits: template.bits,
            nonce,
        },
        txdata,
    };
    // Never `None`: the list holds the coinbase.
    block.header.merkle_root = block
        .compute_merkle_root()
        .unwrap_or_else(TxMerkleNode::all_zeros);
    Ok(block)
}
