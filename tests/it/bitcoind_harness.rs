//! The bitcoind test harness (tests/it/support/bitcoind.rs) against the real node: a connected regtest
//! pair starts, serves block templates that track the chain and the mempool, and answers
//! `submitblock` for valid and invalid blocks; cookie auth works and bad credentials are reported.

use crate::support::bitcoind;

use std::time::{Duration, Instant};

use bitcoin::absolute::LockTime;
use bitcoin::block::{Header, Version};
use bitcoin::consensus::encode::{deserialize, serialize};
use bitcoin::hashes::Hash;
use bitcoin::pow::CompactTarget;
use bitcoin::script::Builder;
use bitcoin::{
    transaction, Amount, Block, BlockHash, OutPoint, ScriptBuf, Sequence, Transaction, TxIn,
    TxMerkleNode, TxOut, Witness,
};
use bitcoind::{start_pair, Node, RpcError};
use serde_json::{json, Value};

#[test]
fn pair_starts_and_serves_templates_for_the_tip() {
    let t0 = Instant::now();
    let (a, b) = start_pair();
    eprintln!("pair started in {:?}", t0.elapsed());
    assert!(a.url().starts_with("http://127.0.0.1:"));
    assert_eq!(a.getblockcount(), 1);
    assert_eq!(b.getbestblockhash(), a.getbestblockhash());

    for params in [json!([]), json!([{"rules": ["segwit"]}]), json!([{}])] {
        let gbt = a
            .rpc("getblocktemplate", params.clone())
            .unwrap_or_else(|e| panic!("getblocktemplate {params}: {e}"));
        assert_eq!(
            gbt["previousblockhash"],
            json!(a.getbestblockhash()),
            "{params}"
        );
        assert_eq!(gbt["height"], json!(a.getblockcount() + 1), "{params}");
        assert_eq!(gbt["bits"], json!("207fffff"), "{params}");
        assert_eq!(gbt["coinbasevalue"], json!(50 * 100_000_000u64), "{params}");
        assert!(
            gbt["transactions"].as_array().unwrap().is_empty(),
            "{params}"
        );
        for key in [
            "version",
            "curtime",
            "mintime",
            "target",
            "noncerange",
            "sizelimit",
            "longpollid",
        ] {
            assert!(gbt.get(key).is_some(), "{params}: no {key} in {gbt}");
        }
    }
    // The template follows the tip.
    a.generate(2);
    let gbt = a.getblocktemplate();
    assert_eq!(gbt["height"], json!(4));
    assert_eq!(gbt["previousblockhash"], json!(a.getbestblockhash()));
    eprintln!(
        "sample getblocktemplate response:\n{}",
        serde_json::to_string_pretty(&gbt).unwrap()
    );
}

#[test]
fn mempool_transactions_appear_in_the_template() {
    let (a, b) = start_pair();
    a.generate(101); // matures the first coinbase
    let to = b.new_address();
    let txid = a.call("sendtoaddress", json!([to, 1.0]));
    let txid = txid.as_str().expect("sendtoaddress returns a txid");

    let deadline = Instant::now() + Duration::from_secs(30);
    let gbt = loop {
        let gbt = a.getblocktemplate();
        if !gbt["transactions"].as_array().unwrap().is_empty() || Instant::now() > deadline {
            break gbt;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let txs = gbt["transactions"].as_array().unwrap();
    assert_eq!(txs.len(), 1, "{gbt}");
    assert_eq!(txs[0]["txid"], json!(txid));
    let fee = txs[0]["fee"].as_u64().expect("fee");
    assert!(fee > 0);
    assert_eq!(gbt["coinbasevalue"], json!(50 * 100_000_000u64 + fee));
    for key in ["data", "txid", "hash", "depends", "fee"] {
        assert!(txs[0].get(key).is_some(), "no {key} in {}", txs[0]);
    }
    eprintln!("template transaction: {}", txs[0]);
}

/// A block for `gbt` paying the coinbase to OP_TRUE, with a nonce that meets (`valid_pow`) or
/// misses the target.
fn block_from_template(gbt: &Value, valid_pow: bool) -> Block {
    let height = gbt["height"].as_i64().unwrap();
    let coinbase = Transaction {
        version: transaction::Version::ONE,
        lock_time: LockTime::ZERO,
        input: vec![TxIn {
            previous_output: OutPoint::null(),
            script_sig: Builder::new()
                .push_int(height)
                .push_slice(b"wgminer-test")
                .into_script(),
            sequence: Sequence::MAX,
            witness: Witness::new(),
        }],
        output: vec![TxOut {
            value: Amount::from_sat(gbt["coinbasevalue"].as_u64().unwrap()),
            script_pubkey: ScriptBuf::from_bytes(vec![0x51]),
        }],
    };
    let mut txdata = vec![coinbase];
    for tx in gbt["transactions"].as_array().unwrap() {
        let raw = hex::decode(tx["data"].as_str().unwrap()).unwrap();
        txdata.push(deserialize(&raw).unwrap());
    }
    let prev: BlockHash = gbt["previousblockhash"].as_str().unwrap().parse().unwrap();
    let bits = u32::from_str_radix(gbt["bits"].as_str().unwrap(), 16).unwrap();
    let mut block = Block {
        header: Header {
            version: Version::from_consensus(gbt["version"].as_i64().unwrap() as i32),
            prev_blockhash: prev,
            merkle_root: TxMerkleNode::all_zeros(),
            time: gbt["curtime"].as_u64().unwrap() as u32,
            bits: CompactTarget::from_consensus(bits),
            nonce: 0,
        },
        txdata,
    };
    block.header.merkle_root = block.compute_merkle_root().unwrap();
    grind(&mut block.header, valid_pow);
    block
}

fn grind(header: &mut Header, valid_pow: bool) {
    let target = header.target();
    while target.is_met_by(header.block_hash()) != valid_pow {
        header.nonce += 1;
    }
}

#[test]
fn submitblock_accepts_a_template_block_and_names_rejections() {
    let (a, b) = start_pair();
    a.generate(101);
    let to = b.new_address();
    a.call("sendtoaddress", json!([to, 1.0]));
    let gbt = a.getblocktemplate();
    assert_eq!(gbt["transactions"].as_array().unwrap().len(), 1);

    // Garbage: an RPC error, not a rejection string.
    for junk in ["zz", "00", ""] {
        let err = a.submitblock(junk).unwrap_err();
        eprintln!("submitblock {junk:?} -> {err}");
        assert_eq!(err.code, -22, "{err}");
        assert_eq!(err.message, "Block decode failed");
    }

    let answers = |block: &Block| a.submitblock(&hex::encode(serialize(block))).unwrap();

    let bad_pow = block_from_template(&gbt, false);
    assert_eq!(answers(&bad_pow).as_deref(), Some("high-hash"));

    let mut bad_merkle = block_from_template(&gbt, true);
    bad_merkle.header.merkle_root = TxMerkleNode::all_zeros();
    grind(&mut bad_merkle.header, true);
    assert_eq!(answers(&bad_merkle).as_deref(), Some("bad-txnmrklroot"));

    let mut unknown_prev = block_from_template(&gbt, true);
    unknown_prev.header.prev_blockhash = BlockHash::all_zeros();
    grind(&mut unknown_prev.header, true);
    assert_eq!(answers(&unknown_prev).as_deref(), Some("inconclusive"));

    let mut bad_coinbase = block_from_template(&gbt, true);
    bad_coinbase.txdata[0].output[0].value += Amount::from_sat(1);
    bad_coinbase.header.merkle_root = bad_coinbase.compute_merkle_root().unwrap();
    grind(&mut bad_coinbase.header, true);
    let answer = answers(&bad_coinbase);
    eprintln!("submitblock (coinbase pays 1 sat too much) -> {answer:?}");
    assert_eq!(answer.as_deref(), Some("bad-cb-amount"));

    // A valid block: accepted (null), becomes the tip, reaches B; resubmitting it is "duplicate".
    let good = block_from_template(&gbt, true);
    let height = gbt["height"].as_u64().unwrap();
    assert_eq!(answers(&good), None);
    assert_eq!(a.getbestblockhash(), good.block_hash().to_string());
    assert_eq!(a.getblockcount(), height);
    b.wait_for_height(height, Duration::from_secs(30));
    assert_eq!(b.getbestblockhash(), good.block_hash().to_string());
    assert!(a
        .call("getrawmempool", json!([]))
        .as_array()
        .unwrap()
        .is_empty());
    assert_eq!(answers(&good).as_deref(), Some("duplicate"));

    // A block on the old tip after the new one: a stale share.
    let stale = block_from_template(&gbt, true);
    let mut stale = stale;
    stale.header.time += 1;
    grind(&mut stale.header, true);
    let answer = answers(&stale);
    eprintln!("submitblock (stale: same parent as the tip) -> {answer:?}");
    assert!(
        answer.is_some(),
        "a competing block is not accepted as the tip"
    );
    assert_eq!(a.getbestblockhash(), good.block_hash().to_string());
}

#[test]
fn cookie_auth_and_bad_credentials() {
    let node = Node::start_with_cookie(&[]);
    let cookie = std::fs::read_to_string(node.cookie_file()).expect("the node writes .cookie");
    assert!(cookie.starts_with("__cookie__:"), "{cookie}");
    assert_eq!(node.user, "__cookie__");
    assert_eq!(node.getblockcount(), 0);
    // Without a peer the node refuses templates.
    let err = node.rpc("getblocktemplate", json!([])).unwrap_err();
    assert_eq!(
        err,
        RpcError {
            code: -9,
            message: "Bitcoin is not connected!".into()
        }
    );

    let err = bitcoind::rpc_call(
        node.rpc_port,
        "__cookie__",
        "wrong",
        "getblockcount",
        json!([]),
        Duration::from_secs(10),
    )
    .unwrap_err();
    assert_eq!(err.code, RpcError::HTTP);
    assert!(err.message.contains("401"), "{err}");

    let err = node.rpc("nosuchmethod", json!([])).unwrap_err();
    assert_eq!(err.code, -32601, "{err}");
}

#[test]
fn drop_stops_the_node_and_removes_its_datadir() {
    let node = Node::start(&[]);
    let (port, dir) = (node.rpc_port, node.datadir.clone());
    assert!(dir.join("regtest").is_dir());
    let t0 = Instant::now();
    drop(node);
    eprintln!("node stopped in {:?}", t0.elapsed());
    assert!(!dir.exists(), "{} left behind", dir.display());
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
}

#[test]
fn base64_matches_rfc4648_vectors() {
    for (input, out) in [
        ("", ""),
        ("f", "Zg=="),
        ("fo", "Zm8="),
        ("foo", "Zm9v"),
        ("foob", "Zm9vYg=="),
        ("fooba", "Zm9vYmE="),
        ("foobar", "Zm9vYmFy"),
    ] {
        assert_eq!(bitcoind::base64(input.as_bytes()), out);
    }
}
