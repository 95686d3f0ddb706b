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

/// The most bytes of the miner's own text (`--coinbase-sig`) a scriptSig holds whatever the
/// height: 100 less the height's push (up to 5 bytes), the extranonce push (9), the tag's
/// push (10) and the text's own push opcodes (2 with OP_PUSHDATA1). A template with
/// coinbaseaux flags has less room, and says so with [`TemplateError::ScriptSigTooLong`].
pub const MAX_COINBASE_TEXT: usize = MAX_COINBASE_SCRIPT_SIG
    - 5
    - (1 + SOLO_EXTRANONCE1_SIZE + SOLO_EXTRANONCE2_SIZE)
    - (1 + COINBASE_TAG.len())
    - 2;

impl BlockTemplate {
    /// The coinbase, split around the extranonce area:
    /// version 1 | one input spending nothing | scriptSig = height (BIP34), coinbaseaux flags,
    /// push of extranonce1 + extranonce2, tag, the miner's `text` if any | outputs: `payout` gets the whole coinbase value,
    /// then the witness commitment if any | lock time 0.
    pub(super) fn coinbase(
        &self,
        payout: &ScriptBuf,
        extranonce1: [u8; SOLO_EXTRANONCE1_SIZE],
        text: &[u8],
    ) -> Result<CoinbaseTemplate, TemplateError> {
        let mut head = bitcoin::script::Builder::new().push_int(i64::from(self.height));
        if !self.coinbase_aux.is_empty() {
            let aux = PushBytesBuf::try_from(self.coinbase_aux.clone())
                .map_err(|_| TemplateError::ScriptSigTooLong(self.coinbase_aux.len()))?;
            head = head.push_slice(aux);
        }
        let head = head.into_script().into_bytes();
        let tag = <&bitcoin::script::PushBytes>::try_from(COINBASE_TAG)
            .expect("the tag is a few bytes, far below a push's limit");
        let mut tail = bitcoin::script::Builder::new().push_slice(tag);
        if !text.is_empty() {
            let text = PushBytesBuf::try_from(text.to_vec())
                .map_err(|_| TemplateError::ScriptSigTooLong(text.len()))?;
            tail = tail.push_slice(text);
        }
        let tail = tail.into_script().into_bytes();
        let extranonce_len = SOLO_EXTRANONCE1_SIZE + SOLO_EXTRANONCE2_SIZE;
        let script_sig_len = head.len() + 1 + extranonce_len + tail.len();
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
        suffix.extend_from_slice(&tail);
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

#[cfg(test)]
mod tests {
    use super::*;
    use bitcoin::block::Version;
    use bitcoin::hashes::Hash as _;
    use bitcoin::{BlockHash, CompactTarget, Target};

    fn template(height: u32) -> BlockTemplate {
        BlockTemplate {
            version: Version::TWO,
            prev_hash: BlockHash::all_zeros(),
            height,
            bits: CompactTarget::from_consensus(0x207f_ffff),
            target: Target::MAX,
            cur_time: 0,
            min_time: 0,
            coinbase_value: Amount::from_sat(50),
            coinbase_aux: Vec::new(),
            transactions: Vec::new(),
            segwit: false,
            default_witness_commitment: None,
            longpoll_id: None,
        }
    }

    /// The scriptSig of the coinbase with an all-zero extranonce.
    fn script_sig(c: &CoinbaseTemplate) -> Vec<u8> {
        // version 4, input count 1, prevout 36, then the scriptSig's length byte.
        let len = usize::from(c.prefix[41]);
        let mut whole = c.prefix.clone();
        whole.extend(std::iter::repeat_n(
            0u8,
            SOLO_EXTRANONCE1_SIZE + SOLO_EXTRANONCE2_SIZE,
        ));
        whole.extend_from_slice(&c.suffix);
        whole[42..42 + len].to_vec()
    }

    #[test]
    fn the_miners_text_follows_the_tag() {
        let c = template(1474)
            .coinbase(&ScriptBuf::new(), [1, 2, 3, 4], b"hello pool")
            .expect("fits");
        let sig = script_sig(&c);
        assert!(sig.ends_with(b"/wgminer/\x0ahello pool"), "{sig:02x?}");
        let plain = template(1474)
            .coinbase(&ScriptBuf::new(), [1, 2, 3, 4], b"")
            .expect("fits");
        assert!(script_sig(&plain).ends_with(b"\x09/wgminer/"));
    }

    #[test]
    fn the_longest_text_fits_at_any_height_and_one_more_byte_can_fail() {
        let text = vec![b'x'; MAX_COINBASE_TEXT];
        for height in [1, 500, 70_000, 8_388_608, i32::MAX as u32] {
            let c = template(height)
                .coinbase(&ScriptBuf::new(), [0; 4], &text)
                .expect("the documented room fits");
            assert!(script_sig(&c).len() <= MAX_COINBASE_SCRIPT_SIG);
        }
        let long = vec![b'x'; MAX_COINBASE_TEXT + 2];
        let e = template(i32::MAX as u32).coinbase(&ScriptBuf::new(), [0; 4], &long);
        assert!(matches!(e, Err(TemplateError::ScriptSigTooLong(_))));
    }
}
