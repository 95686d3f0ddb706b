//! `kill -9` at random moments never corrupts the node core's chain.
//!
//! A child process (this test binary again, running only the ignored helper test below) opens a
//! chain directory and mines and submits blocks as fast as it can, each one a durable redb
//! commit. The parent SIGKILLs it after a random 50–400 ms, five times over the same directory,
//! and after every kill reopens the chain and checks all of it: every stored block from genesis
//! to the tip decodes, links to its parent, meets its proof of work, commits to its
//! transactions, carries its height in the coinbase and pays no more than the subsidy; and the
//! tip never goes back between rounds.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bitcoin::hashes::Hash;
use bitcoin::ScriptBuf;
use rand::Rng;
use wgminer::node::validate::{bip34_prefix, check_pow, regtest_subsidy};
use wgminer::node::{Chain, ChainParams};
use wgminer::pow::hash_meets_target;

use crate::support::solo;
use solo::mine;

/// Set in the child's environment: the chain directory it mines into.
const CHILD_DIR_VAR: &str = "WGMINER_NODE_KILL_CHILD_DIR";

/// The helper test the child runs (its full path in the one integration-test binary).
const CHILD_TEST: &str = "node_kill::child_mines_until_killed";

/// The child gives up on its own after this long, so a parent that died cannot leave it
/// running forever.
const CHILD_MAX_LIFETIME: Duration = Duration::from_secs(60);

fn now() -> u32 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as u32
}

/// The child: mine and submit blocks into the directory the parent names, until killed.
/// Ignored in a normal run; the parent runs it with `--include-ignored`.
#[test]
#[ignore = "helper process for kill_9_never_corrupts_the_chain"]
fn child_mines_until_killed() {
    let Some(dir) = std::env::var_os(CHILD_DIR_VAR) else {
        return;
    };
    let payout = ScriptBuf::new_p2wpkh(&bitcoin::WPubkeyHash::from_byte_array([0x22; 20]));
    let mut chain = Chain::open(Path::new(&dir), ChainParams::regtest()).unwrap();
    let start = Instant::now();
    while start.elapsed() < CHILD_MAX_LIFETIME {
        let t = now();
        let block = mine(&chain.template(t), &payout, [9, 9, 9, 9]);
        // Thousands of blocks a second push block times (each above the median time past)
        // ahead of the clock faster than it runs; let the clock keep up so the two-hour limit
        // never stops the child on a fast disk.
        chain
            .submit_block(&block, t.max(block.header.time))
            .unwrap();
    }
}

/// Check the whole stored chain block by block, independently of the chain's own checks.
fn check_everything(chain: &Chain) {
    let (tip_height, tip_hash) = chain.tip();
    assert_eq!(chain.block_hash_at(tip_height), Some(tip_hash));
    assert_eq!(chain.block_hash_at(tip_height + 1), None);
    let mut prev = None;
    for height in 0..=tip_height {
        let hash = chain.block_hash_at(height).unwrap();
        let block = chain
            .block(&hash)
            .unwrap()
            .unwrap_or_else(|| panic!("block {height} is missing"));
        assert_eq!(block.block_hash(), hash, "height {height}");
        assert_eq!(chain.header(&hash).unwrap(), (block.header, height));
        check_pow(&block.header, bitcoin::Target::MAX_ATTAINABLE_REGTEST).unwrap();
        assert!(hash_meets_target(&hash, &block.header.target()));
        assert!(block.check_merkle_root(), "height {height}");
        if let Some(prev) = prev {
            assert_eq!(block.header.prev_blockhash, prev, "height {height}");
            let cb = &block.txdata[0];
            assert!(cb.is_coinbase());
            assert!(cb.input[0]
                .script_sig
                .as_bytes()
                .starts_with(bip34_prefix(height).as_bytes()));
            let paid: u64 = cb.output.iter().map(|o| o.value.to_sat()).sum();
            assert!(paid <= regtest_subsidy(height).to_sat());
            assert!(block.check_witness_commitment());
        }
        prev = Some(hash);
    }
    // And the chain's own full re-validation agrees.
    assert_eq!(chain.verify_stored().unwrap(), tip_height + 1);
}

#[test]
fn kill_9_never_corrupts_the_chain() {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let dir: PathBuf =
        std::env::temp_dir().join(format!("wgminer-node-kill-{}-{nanos}", std::process::id()));
    let exe = std::env::current_exe().unwrap();
    let mut rng = rand::rng();
    let mut last_height = 0;
    for round in 0..5 {
        let mut child = Command::new(&exe)
            .args([CHILD_TEST, "--exact", "--nocapture", "--include-ignored"])
            .env(CHILD_DIR_VAR, &dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let wait = Duration::from_millis(rng.random_range(50..=400));
        std::thread::sleep(wait);
        // If the child died on its own, it failed: show why.
        if let Some(status) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            panic!(
                "the mining child exited by itself ({status}): {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        child.kill().unwrap(); // SIGKILL on Unix
        child.wait().unwrap();

        let chain = Chain::open(&dir, ChainParams::regtest())
            .unwrap_or_else(|e| panic!("round {round}: the chain does not reopen: {e}"));
        let height = chain.height();
        eprintln!("round {round}: killed after {wait:?}, tip at height {height}");
        assert!(
            height >= last_height,
            "round {round}: the tip went back from {last_height} to {height}"
        );
        check_everything(&chain);
        last_height = height;
    }
    assert!(last_height > 0, "the child never stored a block");
    let _ = std::fs::remove_dir_all(&dir);
}
