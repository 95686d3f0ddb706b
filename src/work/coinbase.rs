//! The coinbase a solo job pays out with, split around its extranonce area the way a pool splits
//! coinb1 and coinb2, so the work manager rolls it like any pool job's.
//!
//! The scriptSig and the outputs are encoded by rust-bitcoin (`script::Builder`, `TxOut`); the
//! transaction's frame around them is laid out by hand, because rust-bitcoin serializes whole
//! transactions and a job needs the two halves around the extranonce hole.

use bitcoin::consensus::Encodable;
use bitcoin::script::PushBytesBuf;
use bitcoin::{Amount, ScriptBuf, TxOut};

use super::job::CoinbaseTemplate;
use super::template::{BlockTemplate, TemplateError};

/// Bytes of the extranonce area the work manager rolls (extranonce2 in Stratum terms).
pub const SOLO_EXTRANONCE2_SIZE: usize = 4;

/// Bytes before it that tell this miner's instance apart (extranonce1 in Stratum terms), so two
/// miners paying the same address never hash the same headers.
pub const SOLO_EXTRANONCE1_SIZE: usize = 4;

/// Written into every coinbase scriptSig after the extranonce area.
pub const COINBASE_TAG: &[u8] = b"/wgminer/";

/// Consensus: a coinbase scriptSig has 2 to 100 bytes.
const MAX_COINBASE_SCRIPT_SIG: usize = 100;

impl BlockTemplate {
    /// The coinbase, split around the extranonce area:
    /// version 1 | one input spending nothing | scriptSig = height (BIP34), coinbaseaux flags,
    /// push of extranonce1 + extranonce2, tag | outputs: `payout` gets the whole coinbase value,
    /// then the witness commitment if any | lock time 0.
    pub(super) fn coinbase(
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
        push_output(&mut suffix, self.coinbase_value, payout);
        if let Some(c) = &commitment {
            push_output(&mut suffix, Amount::ZERO, c);
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

/// One output, consensus-encoded by rust-bitcoin (value, compact size, script).
fn push_output(out: &mut Vec<u8>, value: Amount, script: &ScriptBuf) {
    TxOut {
        value,
        script_pubkey: script.clone(),
    }
    .consensus_encode(out)
    .expect("writing to a Vec cannot fail");
}
