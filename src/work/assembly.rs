//! Block assembly for solo mining: a template becomes a [`SoloJob`] (an ordinary [`Job`] plus
//! the template), and a solution's [`Share`] becomes the [`SolvedBlock`] to submit: header, our
//! coinbase for the solution's extranonce2 (with BIP141's witness reserved value when the block
//! commits to witnesses), then the template's transactions byte for byte as the node sent them.

use std::sync::Arc;

use bitcoin::block::Header;
use bitcoin::consensus::{deserialize, serialize, Encodable};
use bitcoin::hex::DisplayHex;
use bitcoin::{Block, BlockHash, ScriptBuf, Transaction, Witness};

use super::coinbase::SOLO_EXTRANONCE1_SIZE;
use super::job::{Job, DEFAULT_NTIME_ROLL};
use super::share::Share;
use super::template::{BlockTemplate, TemplateError};

impl BlockTemplate {
    /// A job for the work manager: the coinbase pays `payout`; `extranonce1` tells this miner's
    /// instance apart. The result's [`SoloJob::block`] assembles the block for a solution.
    pub fn solo_job(
        self: &Arc<Self>,
        id: String,
        payout: &ScriptBuf,
        extranonce1: [u8; SOLO_EXTRANONCE1_SIZE],
    ) -> Result<SoloJob, TemplateError> {
        self.solo_job_with_text(id, payout, extranonce1, &[])
    }

    /// [`BlockTemplate::solo_job`] with the miner's `text` in the coinbase scriptSig after the
    /// tag (`--coinbase-sig`; at most [`super::coinbase::MAX_COINBASE_TEXT`] bytes).
    pub fn solo_job_with_text(
        self: &Arc<Self>,
        id: String,
        payout: &ScriptBuf,
        extranonce1: [u8; SOLO_EXTRANONCE1_SIZE],
        text: &[u8],
    ) -> Result<SoloJob, TemplateError> {
        let coinbase = self.coinbase(payout, extranonce1, text)?;
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
            fixed_merkle_root: None,
            share_target: self.target,
            clean: true,
        };
        job.validate()?;
        Ok(SoloJob {
            template: Arc::clone(self),
            job,
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
        // A template's job always rolls our coinbase, so a share on it names an extranonce2.
        let e2 = share
            .extranonce2
            .as_ref()
            .ok_or(crate::work::JobError::MissingExtranonce2)?;
        let legacy = self.job.coinbase.build(e2)?;
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
        bytes.extend_from_slice(&serialize(&header));
        let count = bitcoin::VarInt(1 + self.template.transactions.len() as u64);
        count
            .consensus_encode(&mut bytes)
            .expect("writing to a Vec cannot fail");
        if self.template.witness_commitment().is_some() {
            bytes.extend_from_slice(&with_reserved_witness(&legacy)?);
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

/// The coinbase's witness serialization (BIP144: marker and flag, and its one input's witness of
/// one 32-byte zero item, BIP141's witness reserved value), encoded by rust-bitcoin. Once per
/// block found, so decoding the legacy bytes again costs nothing that matters.
fn with_reserved_witness(legacy: &[u8]) -> Result<Vec<u8>, TemplateError> {
    let mut tx: Transaction = deserialize(legacy).map_err(|e| TemplateError::Invalid {
        field: "coinbase",
        why: format!("our own coinbase does not decode: {e}"),
    })?;
    let input = tx.input.first_mut().ok_or(TemplateError::Invalid {
        field: "coinbase",
        why: "our own coinbase has no input".into(),
    })?;
    input.witness = Witness::from_slice(&[[0u8; 32]]);
    Ok(serialize(&tx))
}
