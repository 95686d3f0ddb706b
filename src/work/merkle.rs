//! Merkle trees and BIP141 witness commitments over a template's transactions.
//!
//! Roots and commitments are rust-bitcoin's own (`merkle_tree::calculate_root`,
//! `Block::compute_witness_commitment`), fed with hashes because a template has txids and
//! wtxids, not a `Block`. Written here only what rust-bitcoin has no equivalent for: the
//! coinbase's merkle *branch* (Stratum's list of siblings, which a job folds with each new
//! coinbase; the fold itself is in [`super::job`]) and finding a coinbase's commitment output.

use bitcoin::hashes::Hash;
use bitcoin::merkle_tree::calculate_root;
use bitcoin::{Block, ScriptBuf, Transaction, TxMerkleNode, Txid, WitnessMerkleNode, Wtxid};

/// BIP141's commitment header in the coinbase output: OP_RETURN, push 36, 0xaa21a9ed.
const WITNESS_COMMITMENT_HEADER: [u8; 6] = [0x6a, 0x24, 0xaa, 0x21, 0xa9, 0xed];

/// The coinbase's siblings at each level of the merkle tree over `[coinbase] + txids`, bottom
/// first (what Stratum calls the merkle branch). An odd level pairs its last node with itself.
///
/// Hand-written: rust-bitcoin computes whole roots (and BIP37 partial trees), never the path of
/// one leaf whose hash is not known yet.
pub fn merkle_branch(txids: impl IntoIterator<Item = Txid>) -> Vec<TxMerkleNode> {
    // Level 0 without the coinbase, whose hash is not known yet: the coinbase's path only ever
    // needs the nodes to its right.
    let mut level: Vec<TxMerkleNode> = txids.into_iter().map(TxMerkleNode::from).collect();
    let mut branch = Vec::new();
    while let Some(&sibling) = level.first() {
        branch.push(sibling);
        // The rest of this level (after the coinbase's node and its sibling) folds in pairs,
        // each pair by rust-bitcoin's own rule (an odd last node paired with itself).
        level = level[1..]
            .chunks(2)
            .map(|pair| {
                let (left, right) = (pair[0], pair[pair.len() - 1]);
                calculate_root([left, right].into_iter()).expect("two leaves")
            })
            .collect();
    }
    branch
}

/// The merkle root of a list of transaction hashes (Bitcoin's tree, the last node doubled on an
/// odd level), or `None` for an empty list.
pub fn merkle_root(hashes: impl IntoIterator<Item = [u8; 32]>) -> Option<[u8; 32]> {
    calculate_root(hashes.into_iter().map(TxMerkleNode::from_byte_array))
        .map(|root| root.to_byte_array())
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
/// over the coinbase (as zero) and then the non-coinbase `wtxids` — what `Block::witness_root`
/// and `Block::compute_witness_commitment` compute for a whole block.
pub fn witness_commitment(
    wtxids: impl IntoIterator<Item = Wtxid>,
    reserved_value: &[u8; 32],
) -> [u8; 32] {
    let leaves = std::iter::once(WitnessMerkleNode::all_zeros())
        .chain(wtxids.into_iter().map(WitnessMerkleNode::from));
    let root = calculate_root(leaves).expect("the coinbase is always a leaf");
    Block::compute_witness_commitment(&root, reserved_value).to_byte_array()
}

/// The witness commitment a coinbase carries: its last output starting with BIP141's header
/// (rust-bitcoin finds it only inside `Block::check_witness_commitment`, not on its own).
pub fn find_witness_commitment(coinbase: &Transaction) -> Option<[u8; 32]> {
    coinbase.output.iter().rev().find_map(|o| {
        let s = o.script_pubkey.as_bytes();
        (s.len() >= 38 && s[..6] == WITNESS_COMMITMENT_HEADER)
            .then(|| s[6..38].try_into().expect("32 bytes"))
    })
}
