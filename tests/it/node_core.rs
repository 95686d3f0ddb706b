//! The embedded node core, for real: blocks mined on its templates with the miner's own
//! template → job → share → block path, stored in a real redb file, reopened, and refused for
//! every reason it knows, each with a real block modified in one way and a chain left as it was.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use bitcoin::absolute::LockTime;
use bitcoin::block::{Header, Version};
use bitcoin::hashes::Hash;
use bitcoin::pow::{CompactTarget, Target};
use bitcoin::transaction;
use bitcoin::{
    Amount, Block, BlockHash, Network, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxOut,
    Txid, Witness,
};
use wgminer::node::validate::{self, bip34_prefix, regtest_subsidy};
use wgminer::node::{
    chain_dir, load_or_create_payout, BlockRejected, Chain, ChainParams, NodeError, RejectReason,
    PAYOUT_KEY_FILE,
};
use wgminer::pow::{hash_meets_target, target_from_difficulty};
use wgminer::work::template::TemplateTx;

use crate::support::solo;
use solo::{mine, TempDir, Tmpfs};

/// The extranonce1 these tests' coinbases carry.
const TAG: [u8; 4] = [0xa1, 0xb2, 0xc3, 0xd4];

fn now() -> u32 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as u32
}

/// A P2WPKH output script (the core does not care whom a coinbase pays).
fn payout() -> ScriptBuf {
    ScriptBuf::new_p2wpkh(&bitcoin::WPubkeyHash::from_byte_array([0x11; 20]))
}

/// Mine the chain's next block and submit it; returns the block.
fn mine_next(chain: &mut Chain, payout: &ScriptBuf) -> Block {
    let t = now();
    let block = mine(&chain.template(t), payout, TAG);
    let accepted = chain
        .submit_block(&block, t)
        .expect("a mined block is accepted");
    assert_eq!(accepted.hash, block.block_hash());
    block
}

/// A nonce for `header` whose hash meets (or, with `meet = false`, misses) its own nBits.
fn grind(mut header: Header, meet: bool) -> Header {
    let target = Target::from_compact(header.bits);
    for nonce in 0..=u32::MAX {
        header.nonce = nonce;
        if hash_meets_target(&header.block_hash(), &target) == meet {
            return header;
        }
    }
    panic!("no nonce found");
}

/// After editing a block's transactions: fix the merkle root and the proof of work again, so
/// only the edit itself is wrong.
fn refix(mut block: Block) -> Block {
    if let Some(root) = block.compute_merkle_root() {
        block.header.merkle_root = root;
    }
    block.header = grind(block.header, true);
    block
}

/// A transaction spending an output that does not exist here (this core has no UTXO set).
fn spend_tx(tag: u8) -> Transaction {
    Transaction {
        version: transaction::Version::TWO,
        lock_time: LockTime::ZERO,
        input: vec![TxIn {
            previous_output: OutPoint::new(Txid::from_byte_array([tag; 32]), 0),
            script_sig: ScriptBuf::new(),
            sequence: Sequence::MAX,
            witness: Witness::new(),
        }],
        output: vec![TxOut {
            value: Amount::from_sat(1000),
            script_pubkey: ScriptBuf::new_op_return([tag]),
        }],
    }
}

fn expect_reject(chain: &mut Chain, block: &Block, now: u32, code: &str) -> BlockRejected {
    let before = chain.tip();
    let err = chain.submit_block(block, now).expect_err(&format!(
        "a block that should fail with {code} was accepted"
    ));
    assert_eq!(err.reason.code(), code, "{err}");
    assert!(err.to_string().contains(code), "{err}");
    assert_eq!(chain.tip(), before, "a refused block changed the chain");
    err
}

#[test]
fn mines_160_blocks_across_the_halving_and_reopens() {
    let dir = TempDir::new("mine");
    let chain_path = chain_dir(dir.0.as_path());
    let payout = payout();
    let mut chain = Chain::open(&chain_path, ChainParams::regtest()).unwrap();
    let genesis: BlockHash = "0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206"
        .parse()
        .unwrap();
    assert_eq!(chain.tip(), (0, genesis));
    assert_eq!(chain.block_hash_at(0), Some(genesis));
    assert_eq!(chain.block_hash_at(1), None);

    let mut mined = vec![genesis];
    for height in 1..=160u32 {
        let t = now();
        let template = chain.template(t);
        assert_eq!(template.height, height);
        assert_eq!(template.prev_hash, mined[height as usize - 1]);
        assert_eq!(template.bits.to_consensus(), 0x207f_ffff);
        assert_eq!(template.version.to_consensus(), 0x2000_0000);
        assert_eq!(template.min_time, chain.median_time_past() + 1);
        assert_eq!(template.cur_time, t.max(template.min_time));
        assert_eq!(template.coinbase_value, regtest_subsidy(height));
        assert!(template.segwit && template.transactions.is_empty());
        assert_eq!(
            template.longpoll_id.as_deref(),
            Some(mined[height as usize - 1].to_string().as_str())
        );

        let block = mine(&template, &payout, TAG);
        let accepted = chain.submit_block(&block, t).unwrap();
        assert_eq!(accepted.height, height);
        assert_eq!(accepted.hash, block.block_hash());
        assert_eq!(chain.tip(), (height, block.block_hash()));
        assert_eq!(chain.height(), height);

        // The coinbase: BIP34 height first, the whole subsidy to the payout, a witness
        // commitment that checks.
        let cb = &block.txdata[0];
        assert!(cb.input[0]
            .script_sig
            .as_bytes()
            .starts_with(bip34_prefix(height).as_bytes()));
        assert_eq!(cb.output[0].script_pubkey, payout);
        let expected = if height < 150 { 50 } else { 25 };
        assert_eq!(cb.output[0].value, Amount::from_int_btc(expected));
        assert!(block.check_witness_commitment());
        mined.push(block.block_hash());
    }
    assert_eq!(regtest_subsidy(150), Amount::from_int_btc(25));
    assert_eq!(regtest_subsidy(300), Amount::from_sat(12_5000_0000));

    for (h, hash) in mined.iter().enumerate() {
        assert_eq!(chain.block_hash_at(h as u32), Some(*hash));
        let (header, height) = chain.header(hash).unwrap();
        assert_eq!(height, h as u32);
        assert_eq!(header.block_hash(), *hash);
    }
    let tip_block = chain.block(&mined[160]).unwrap().unwrap();
    assert_eq!(tip_block.bip34_block_height().unwrap(), 160);
    assert!(chain.block(&BlockHash::all_zeros()).unwrap().is_none());
    assert!(chain.header(&BlockHash::all_zeros()).is_none());
    let mtp = chain.median_time_past();
    drop(chain);

    // Reopen: the same tip, every block readable and valid, and mining goes on from there.
    let mut chain = Chain::open(&chain_path, ChainParams::regtest()).unwrap();
    assert_eq!(chain.tip(), (160, mined[160]));
    assert_eq!(chain.median_time_past(), mtp);
    for (h, hash) in mined.iter().enumerate() {
        let block = chain.block(hash).unwrap().unwrap();
        assert_eq!(block.block_hash(), *hash);
        assert_eq!(chain.block_hash_at(h as u32), Some(*hash));
    }
    assert_eq!(chain.verify_stored().unwrap(), 161);
    let next = mine_next(&mut chain, &payout);
    assert_eq!(chain.tip(), (161, next.block_hash()));
}

#[test]
fn difficulty_params_set_the_bits_and_survive_a_change() {
    let p = ChainParams::with_difficulty(1e-6).unwrap();
    let wanted = target_from_difficulty(1e-6).unwrap();
    assert_eq!(p.bits, p.target.to_compact_lossy());
    assert_eq!(Target::from_compact(p.bits), p.target);
    assert!(p.target <= wanted);
    assert!(
        (p.difficulty() - 1e-6).abs() / 1e-6 < 1e-4,
        "{}",
        p.difficulty()
    );
    assert_eq!(
        ChainParams::with_difficulty(1.0)
            .unwrap()
            .bits
            .to_consensus(),
        0x1d00_ffff
    );
    // The easiest difficulty is regtest's proof-of-work limit (about 4.66e-10).
    let regtest_min = wgminer::pow::difficulty_of_target(&Target::MAX_ATTAINABLE_REGTEST);
    assert!((regtest_min - 4.66e-10).abs() < 0.01e-10, "{regtest_min}");
    assert!(ChainParams::with_difficulty(regtest_min * 1.001).is_ok());
    let err = ChainParams::with_difficulty(regtest_min * 0.999).unwrap_err();
    assert!(err.to_string().contains("lowest difficulty"), "{err}");

    for bad in [0.0, -1.0, f64::NAN, f64::INFINITY, 1e-12, 1e300] {
        let err = ChainParams::with_difficulty(bad).unwrap_err();
        assert!(
            matches!(err, NodeError::BadDifficulty { .. }),
            "{bad}: {err}"
        );
        assert!(err.to_string().contains("difficulty"), "{err}");
    }

    // Mine at difficulty 1e-6 (about 4,300 hashes a block).
    let dir = TempDir::new("difficulty");
    let payout = payout();
    let mut chain = Chain::open(dir.0.as_path(), p.clone()).unwrap();
    let mut blocks = Vec::new();
    for _ in 0..3 {
        let block = mine_next(&mut chain, &payout);
        assert_eq!(block.header.bits, p.bits);
        assert!(block.header.target() == p.target);
        blocks.push(block);
    }
    // A block at the regtest limit's bits is refused at this difficulty.
    let t = now();
    let mut easy = chain.template(t);
    easy.bits = CompactTarget::from_consensus(0x207f_ffff);
    easy.target = Target::from_compact(easy.bits);
    let easy = mine(&easy, &payout, TAG);
    expect_reject(&mut chain, &easy, t, "bad-diffbits");
    drop(chain);

    // Reopen at regtest difficulty: old blocks stay, new ones need the new bits.
    let mut chain = Chain::open(dir.0.as_path(), ChainParams::regtest()).unwrap();
    assert_eq!(chain.height(), 3);
    assert_eq!(chain.verify_stored().unwrap(), 4);
    let t = now();
    let mut hard = chain.template(t);
    hard.bits = p.bits;
    hard.target = p.target;
    let hard = mine(&hard, &payout, TAG);
    expect_reject(&mut chain, &hard, t, "bad-diffbits");
    let block = mine_next(&mut chain, &payout);
    assert_eq!(block.header.bits.to_consensus(), 0x207f_ffff);
    assert_eq!(chain.height(), 4);
}

#[test]
fn every_rejection_reason_leaves_the_chain_unchanged() {
    let dir = TempDir::new("reject");
    let payout = payout();
    let mut chain = Chain::open(dir.0.as_path(), ChainParams::regtest()).unwrap();
    let first = mine_next(&mut chain, &payout);
    let second = mine_next(&mut chain, &payout);
    let t = now();

    // duplicate: a block already in the chain.
    expect_reject(&mut chain, &second, t, "duplicate");
    expect_reject(&mut chain, &first, t, "duplicate");

    let good = mine(&chain.template(t), &payout, TAG);

    // high-hash: a nonce whose hash misses the target.
    let mut b = good.clone();
    b.header = grind(b.header, false);
    expect_reject(&mut chain, &b, t, "high-hash");
    // high-hash also for nBits above the regtest proof-of-work limit.
    let mut b = good.clone();
    b.header.bits = CompactTarget::from_consensus(0x2100_ffff);
    b.header = grind(b.header, true);
    expect_reject(&mut chain, &b, t, "high-hash");

    // bad-prevblk: the previous block is unknown.
    let mut b = good.clone();
    b.header.prev_blockhash = BlockHash::from_byte_array([7; 32]);
    b.header = grind(b.header, true);
    expect_reject(&mut chain, &b, t, "bad-prevblk");

    // stale-prevblk: a valid block on block 1 while the tip is block 2.
    let mut on_first = chain.template(t);
    on_first.prev_hash = first.block_hash();
    on_first.height = 2;
    on_first.min_time = 0;
    // (Another payout, or it would be block 2 itself when mined in the same second.)
    let other_payout = ScriptBuf::new_op_return([1, 2, 3]);
    let stale = mine(&on_first, &other_payout, TAG);
    let err = expect_reject(&mut chain, &stale, t, "stale-prevblk");
    assert!(
        err.to_string().contains("keeps one chain"),
        "the reason says why: {err}"
    );

    // bad-diffbits: valid proof of work for other nBits.
    let mut b = good.clone();
    b.header.bits = CompactTarget::from_consensus(0x2000_ffff);
    b.header = grind(b.header, true);
    expect_reject(&mut chain, &b, t, "bad-diffbits");

    // time-too-old: at the median time past.
    let mut b = good.clone();
    b.header.time = chain.median_time_past();
    b.header = grind(b.header, true);
    expect_reject(&mut chain, &b, t, "time-too-old");

    // time-too-new: more than two hours ahead of the node's clock.
    let mut b = good.clone();
    b.header.time = t + 2 * 60 * 60 + 1;
    b.header = grind(b.header, true);
    expect_reject(&mut chain, &b, t, "time-too-new");
    // ...but exactly two hours is fine (checked without storing: the chain's MTP would move).
    let mut ok = good.clone();
    ok.header.time = t + 2 * 60 * 60;
    ok.header = grind(ok.header, true);
    let ctx = validate::BlockContext {
        height: 3,
        median_time_past: chain.median_time_past(),
        required_bits: Some(chain.params().bits),
        now: Some(t),
        halving_interval: 150,
    };
    validate::check_block(&ok, &ctx).unwrap();

    // bad-version: below 4 (BIP34/65/66 active).
    let mut b = good.clone();
    b.header.version = Version::from_consensus(3);
    b.header = grind(b.header, true);
    let err = expect_reject(&mut chain, &b, t, "bad-version(0x00000003)");
    assert_eq!(err.reason, RejectReason::BadVersion(3));

    // bad-txnmrklroot: the header commits to other transactions.
    let mut b = good.clone();
    b.header.merkle_root = bitcoin::TxMerkleNode::from_byte_array([9; 32]);
    b.header = grind(b.header, true);
    expect_reject(&mut chain, &b, t, "bad-txnmrklroot");

    // bad-blk-length: no transactions at all.
    let mut b = good.clone();
    b.txdata.clear();
    b.header = grind(b.header, true);
    expect_reject(&mut chain, &b, t, "bad-blk-length");

    // bad-cb-missing: the first transaction is not a coinbase.
    let mut b = good.clone();
    b.txdata[0] = spend_tx(1);
    expect_reject(&mut chain, &refix(b), t, "bad-cb-missing");

    // bad-cb-multiple: a second coinbase.
    let mut b = good.clone();
    let mut second_cb = b.txdata[0].clone();
    second_cb.input[0].script_sig = bip34_prefix(99);
    second_cb.input[0].witness = Witness::new();
    b.txdata.push(second_cb);
    expect_reject(&mut chain, &refix(b), t, "bad-cb-multiple");

    // bad-cb-length: a coinbase scriptSig of 101 bytes.
    let mut b = good.clone();
    let mut sig = bip34_prefix(3).into_bytes();
    sig.resize(101, 0x51);
    b.txdata[0].input[0].script_sig = ScriptBuf::from_bytes(sig);
    expect_reject(&mut chain, &refix(b), t, "bad-cb-length");

    // bad-cb-height: the coinbase claims another height (the template is for 3).
    let mut wrong_height = chain.template(t);
    wrong_height.height = 4;
    expect_reject(
        &mut chain,
        &mine(&wrong_height, &payout, TAG),
        t,
        "bad-cb-height",
    );
    // ...and height 3 written as a push of one byte instead of OP_3 is not Core's encoding.
    let mut b = good.clone();
    let old = b.txdata[0].input[0].script_sig.as_bytes().to_vec();
    assert_eq!(old[0], 0x53, "height 3 is OP_3");
    let mut sig = vec![0x01, 0x03];
    sig.extend_from_slice(&old[1..]);
    b.txdata[0].input[0].script_sig = ScriptBuf::from_bytes(sig);
    expect_reject(&mut chain, &refix(b), t, "bad-cb-height");

    // bad-cb-amount: one satoshi more than the subsidy.
    let mut greedy = chain.template(t);
    greedy.coinbase_value += Amount::from_sat(1);
    expect_reject(&mut chain, &mine(&greedy, &payout, TAG), t, "bad-cb-amount");

    // bad-witness-merkle-match: a commitment to other witnesses.
    let mut wrong_commitment = chain.template(t);
    let mut script = vec![0x6a, 0x24, 0xaa, 0x21, 0xa9, 0xed];
    script.extend_from_slice(&[0x42; 32]);
    wrong_commitment.default_witness_commitment = Some(ScriptBuf::from_bytes(script));
    expect_reject(
        &mut chain,
        &mine(&wrong_commitment, &payout, TAG),
        t,
        "bad-witness-merkle-match",
    );

    // bad-witness-nonce-size: the witness reserved value is 31 bytes (the witness is not in
    // the txid, so merkle root and proof of work still hold).
    let mut b = good.clone();
    b.txdata[0].input[0].witness = Witness::from_slice(&[[0u8; 31]]);
    expect_reject(&mut chain, &b, t, "bad-witness-nonce-size");

    // unexpected-witness: witness data without a commitment.
    let mut no_segwit = chain.template(t);
    no_segwit.segwit = false;
    let mut b = mine(&no_segwit, &payout, TAG);
    b.txdata[0].input[0].witness = Witness::from_slice(&[[0u8; 32]]);
    expect_reject(&mut chain, &b, t, "unexpected-witness");

    // bad-txns-unsupported: a transaction besides the coinbase (no UTXO set to check it).
    let mut with_tx = chain.template(t);
    let tx = bitcoin::consensus::serialize(&spend_tx(2));
    with_tx
        .transactions
        .push(TemplateTx::from_bytes(tx.clone()).unwrap());
    let err = expect_reject(
        &mut chain,
        &mine(&with_tx.clone(), &payout, TAG),
        t,
        "bad-txns-unsupported",
    );
    assert!(err.to_string().contains("coinbase-only"), "{err}");

    // bad-txns-duplicate: the same transaction twice (the mutated-merkle-tree trick).
    with_tx
        .transactions
        .push(TemplateTx::from_bytes(tx).unwrap());
    expect_reject(
        &mut chain,
        &mine(&with_tx, &payout, TAG),
        t,
        "bad-txns-duplicate",
    );

    // After all that, the good block still goes in, and the chain reopens at it.
    assert_eq!(chain.submit_block(&good, t).unwrap().height, 3);
    drop(chain);
    let chain = Chain::open(dir.0.as_path(), ChainParams::regtest()).unwrap();
    assert_eq!(chain.tip(), (3, good.block_hash()));
    assert_eq!(chain.verify_stored().unwrap(), 4);
}

#[test]
fn chain_and_errors_cross_threads() {
    // The RPC server and the mining glue share a Chain behind a mutex across tokio tasks.
    fn send_sync<T: Send + Sync + 'static>() {}
    send_sync::<Chain>();
    send_sync::<NodeError>();
    send_sync::<BlockRejected>();
}

#[test]
fn open_errors_are_clear_and_never_panic() {
    // A data directory that is a file.
    let dir = TempDir::new("errors");
    let file = dir.0.as_path().join("not-a-dir");
    std::fs::write(&file, b"hello").unwrap();
    let err = Chain::open(&file, ChainParams::regtest()).unwrap_err();
    assert!(matches!(err, NodeError::NotADirectory { .. }), "{err}");
    eprintln!("file as datadir: {err}");
    assert!(err.to_string().contains("not-a-dir"), "{err}");
    // ...or sits under a file.
    let err = Chain::open(&file.join("regtest"), ChainParams::regtest()).unwrap_err();
    assert!(err.to_string().contains("not-a-dir"), "{err}");

    // A corrupt database file: garbage where chain.redb should be.
    let corrupt = dir.0.as_path().join("corrupt");
    std::fs::create_dir_all(&corrupt).unwrap();
    let db = corrupt.join("chain.redb");
    std::fs::write(&db, vec![0x5a; 64 * 1024]).unwrap();
    let err = Chain::open(&corrupt, ChainParams::regtest()).unwrap_err();
    assert!(matches!(err, NodeError::Corrupt { .. }), "{err:?}");
    let msg = err.to_string();
    eprintln!("garbage file: {msg}");
    assert!(msg.contains(&db.display().to_string()), "{msg}");
    assert!(msg.contains("move it away"), "{msg}");

    // A real database damaged in its middle: open fails or the damage is found, never a panic.
    let damaged = dir.0.as_path().join("damaged");
    {
        let mut chain = Chain::open(&damaged, ChainParams::regtest()).unwrap();
        let payout = payout();
        for _ in 0..5 {
            mine_next(&mut chain, &payout);
        }
    }
    let db = damaged.join("chain.redb");
    let mut bytes = std::fs::read(&db).unwrap();
    let len = bytes.len();
    for b in &mut bytes[len / 8..len] {
        *b ^= 0xff;
    }
    std::fs::write(&db, &bytes).unwrap();
    match Chain::open(&damaged, ChainParams::regtest()) {
        Err(err) => {
            eprintln!("damaged file: {err}");
            assert!(err.to_string().contains("chain.redb"), "{err}");
        }
        Ok(chain) => {
            let verified = chain.verify_stored();
            eprintln!("damaged file opened; verify: {verified:?}");
            assert!(verified.is_err(), "the damage went unnoticed");
        }
    }

    // Another wgminer (here: another handle in this process) holds the lock.
    let locked = dir.0.as_path().join("locked");
    let held = Chain::open(&locked, ChainParams::regtest()).unwrap();
    let err = Chain::open(&locked, ChainParams::regtest()).unwrap_err();
    assert!(matches!(err, NodeError::Locked { .. }), "{err}");
    eprintln!("locked: {err}");
    assert!(
        err.to_string().contains("another wgminer is using"),
        "{err}"
    );
    drop(held);
    Chain::open(&locked, ChainParams::regtest()).unwrap();

    // A directory that cannot be created. The tests run as root, for whom chmod stops nothing,
    // so use a place no one may write: sysfs (EPERM, or EROFS where it is mounted read-only).
    #[cfg(target_os = "linux")]
    if Path::new("/sys/kernel").is_dir() {
        let ro = Path::new("/sys/wgminer-node-test/regtest");
        let err = Chain::open(ro, ChainParams::regtest()).unwrap_err();
        assert!(
            matches!(err, NodeError::ReadOnly { .. } | NodeError::Io { .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("/sys/wgminer-node-test"), "{err}");
        eprintln!("unwritable: {err}");
        let err = load_or_create_payout(ro, Network::Regtest).unwrap_err();
        assert!(err.to_string().contains("/sys/wgminer-node-test"), "{err}");
    }
}

/// Only a missing `chain.redb` is a new chain: an empty one is refused and left as it is, a
/// truncated one is refused as corrupt before redb (which asserts on it) sees it, and a new
/// chain is built beside the final name so that nothing half-made is left under it.
#[test]
fn only_a_missing_chain_file_is_a_new_chain() {
    let dir = TempDir::new("edges");
    let payout = payout();

    // A new chain: the genesis block in chain.redb, no chain.redb.new left; a stale
    // chain.redb.new (a crash while creating) is simply started over.
    let fresh = dir.0.join("fresh");
    std::fs::create_dir_all(&fresh).unwrap();
    std::fs::write(fresh.join("chain.redb.new"), b"half made").unwrap();
    {
        let mut chain = Chain::open(&fresh, ChainParams::regtest()).unwrap();
        assert_eq!(chain.height(), 0);
        mine_next(&mut chain, &payout);
    }
    let mut names: Vec<_> = std::fs::read_dir(&fresh)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["chain.redb"]);
    let db = fresh.join("chain.redb");
    let good = std::fs::read(&db).unwrap();
    assert_eq!(
        Chain::open(&fresh, ChainParams::regtest())
            .unwrap()
            .height(),
        1
    );

    // Empty: refused, named, and not touched (not even opened for writing).
    let empty = dir.0.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let file = empty.join("chain.redb");
    std::fs::write(&file, b"").unwrap();
    let modified = std::fs::metadata(&file).unwrap().modified().unwrap();
    let err = Chain::open(&empty, ChainParams::regtest()).unwrap_err();
    assert!(matches!(err, NodeError::Empty { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains(&file.display().to_string()), "{msg}");
    assert!(msg.contains("is empty (0 bytes)"), "{msg}");
    assert!(msg.contains("delete it to start a new chain"), "{msg}");
    let after = std::fs::metadata(&file).unwrap();
    assert_eq!(after.len(), 0);
    assert_eq!(after.modified().unwrap(), modified);

    // Truncated anywhere: corrupt, never a panic (redb 4.1 asserted on all but the shortest).
    let cut = dir.0.join("cut");
    std::fs::create_dir_all(&cut).unwrap();
    let file = cut.join("chain.redb");
    for len in [1, 31, 100, 1000, 4096, good.len() / 2, good.len() - 1] {
        std::fs::write(&file, &good[..len]).unwrap();
        let err = Chain::open(&cut, ChainParams::regtest()).unwrap_err();
        assert!(matches!(err, NodeError::Corrupt { .. }), "{len}: {err:?}");
        let msg = err.to_string();
        assert!(msg.contains("truncated"), "{len}: {msg}");
        assert!(msg.contains(&file.display().to_string()), "{len}: {msg}");
        assert!(
            !msg.contains("panic") && !msg.contains("assert"),
            "{len}: {msg}"
        );
        assert_eq!(std::fs::metadata(&file).unwrap().len(), len as u64);
    }
    // Not a redb file at all.
    std::fs::write(&file, vec![0u8; good.len()]).unwrap();
    let err = Chain::open(&cut, ChainParams::regtest()).unwrap_err();
    assert!(err.to_string().contains("not a redb database"), "{err}");
    // The whole file again opens as before.
    std::fs::write(&file, &good).unwrap();
    assert_eq!(
        Chain::open(&cut, ChainParams::regtest()).unwrap().height(),
        1
    );
}

/// A full disk (a real one: a small tmpfs) refuses a block as `store-failed` with the disk
/// named as full, and the chain is unchanged. redb refuses every later write on a handle that
/// failed once, so the chain reopens the database before the next write, at most every
/// second; once space is back the same block is stored and survives a reopen.
#[test]
fn a_full_disk_refuses_a_block_and_the_store_recovers_when_space_is_back() {
    let fs = match Tmpfs::mount("full", 8) {
        Ok(fs) => fs,
        Err(why) => {
            eprintln!("SKIPPED: no small file system to fill here: {why}");
            return;
        }
    };
    let dir = fs.dir.join("regtest");
    let payout = payout();
    let mut chain = Chain::open(&dir, ChainParams::regtest()).unwrap();
    for _ in 0..3 {
        mine_next(&mut chain, &payout);
    }
    let filled = fs.fill();
    eprintln!("filled the tmpfs with {filled} bytes");

    // Blocks until one needs a page the disk does not have (freed pages are reused first).
    let mut refused = None;
    for _ in 0..200 {
        let t = now();
        let block = mine(&chain.template(t), &payout, TAG);
        match chain.submit_block(&block, t) {
            Ok(_) => continue,
            Err(e) => {
                refused = Some((block, e));
                break;
            }
        }
    }
    let (block, err) = refused.expect("a full disk never refused a block");
    let before = chain.tip();
    eprintln!("refused: {err}");
    let RejectReason::StoreFailed(fault) = &err.reason else {
        panic!("not store-failed: {err}");
    };
    assert!(fault.disk_full, "{fault:?}");
    assert!(err.to_string().contains("disk is full"), "{err}");
    assert!(chain.store_fault().is_some());

    // Right away again: refused at once, without touching the disk.
    let started = std::time::Instant::now();
    let again = chain.submit_block(&block, now()).unwrap_err();
    assert_eq!(again.reason.code(), "store-failed");
    assert!(started.elapsed() < std::time::Duration::from_millis(100));
    assert_eq!(chain.tip(), before);

    // Still full a second later: the reopened store refuses again.
    std::thread::sleep(wgminer::node::chain::STORE_RETRY);
    let still = chain
        .submit_block(&block, now())
        .expect_err("stored on a full disk");
    assert_eq!(still.reason.code(), "store-failed", "{still}");
    assert_eq!(chain.tip(), before);

    // Space back: the same block goes in on the next try.
    fs.free();
    std::thread::sleep(wgminer::node::chain::STORE_RETRY);
    let accepted = chain.submit_block(&block, now()).unwrap();
    assert_eq!(accepted.hash, block.block_hash());
    assert!(chain.store_fault().is_none());
    assert_eq!(chain.tip().1, block.block_hash());
    mine_next(&mut chain, &payout);
    let height = chain.height();
    drop(chain);
    let chain = Chain::open(&dir, ChainParams::regtest()).unwrap();
    assert_eq!(chain.height(), height);
    assert_eq!(chain.verify_stored().unwrap(), height + 1);
}

#[test]
fn payout_key_is_made_once_kept_private_and_spendable() {
    let dir = TempDir::new("wallet");
    let key_dir = dir.0.as_path().join("regtest");
    let (addr, created) = load_or_create_payout(&key_dir, Network::Regtest).unwrap();
    assert!(created);
    assert!(addr.to_string().starts_with("bcrt1q"), "{addr}");
    let unchecked: bitcoin::Address<bitcoin::address::NetworkUnchecked> =
        addr.to_string().parse().unwrap();
    assert!(unchecked.is_valid_for_network(Network::Regtest));
    let path = key_dir.join(PAYOUT_KEY_FILE);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // The file is a WIF key that makes this address, and the only file left behind.
    let wif = std::fs::read_to_string(&path).unwrap();
    let key = bitcoin::PrivateKey::from_wif(wif.trim()).unwrap();
    let secp = bitcoin::secp256k1::Secp256k1::new();
    let pk = bitcoin::CompressedPublicKey::from_private_key(&secp, &key).unwrap();
    assert_eq!(bitcoin::Address::p2wpkh(&pk, Network::Regtest), addr);
    let names: Vec<_> = std::fs::read_dir(&key_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, [PAYOUT_KEY_FILE]);

    // Loaded again, not remade.
    let (again, created) = load_or_create_payout(&key_dir, Network::Regtest).unwrap();
    assert!(!created);
    assert_eq!(again, addr);

    // Another directory gets another key.
    let (other, _) =
        load_or_create_payout(&dir.0.as_path().join("other"), Network::Regtest).unwrap();
    assert_ne!(other, addr);

    // A file that is not a key, or a mainnet key, is an error naming the file; never replaced.
    std::fs::write(&path, "not a key\n").unwrap();
    let err = load_or_create_payout(&key_dir, Network::Regtest).unwrap_err();
    assert!(matches!(err, NodeError::KeyFile { .. }), "{err}");
    assert!(err.to_string().contains(PAYOUT_KEY_FILE), "{err}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "not a key\n");
    let mainnet = bitcoin::PrivateKey::new(key.inner, Network::Bitcoin).to_wif();
    std::fs::write(&path, mainnet).unwrap();
    let err = load_or_create_payout(&key_dir, Network::Regtest).unwrap_err();
    assert!(err.to_string().contains("regtest"), "{err}");
}
