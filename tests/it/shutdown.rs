//! Shutdown while a block waits for its verdict: one signal drains (waits a bounded time for the
//! node's answer, then exits 0); a second signal exits at once with code 130.
//!
//! The node here is a stand-in (a mock, said plainly): a real node always answers submitblock
//! at once, and this test needs one that does not. It serves a real recorded Bitcoin Core
//! regtest template (tests/data/gbt) and holds submitblock and longpoll requests open
//! (tests/it/support/fake_node.rs).

use crate::support::fake_node;
use crate::support::miner;
use crate::support::wait::wait_until;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use fake_node::{FakeNode, Reply};
use miner::Miner;
use serde_json::{json, Value};

fn template() -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/gbt/ckpool_regtest_one_txns.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (the recorded templates live in tests/data/gbt)",
            path.display()
        )
    });
    let v: Value = serde_json::from_str(&text).unwrap();
    let mut t = v["template"].clone();
    // Recent times, so nothing about the clock gets in the way.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    t["curtime"] = json!(now);
    t["mintime"] = json!(now - 600);
    t
}

/// Answer getblockchaininfo and getblocktemplate; hold submitblock and longpolls unanswered.
fn silent_node() -> FakeNode {
    let template = template();
    FakeNode::start(move |call| match call.method {
        "getblockchaininfo" => Reply::Result(json!({"chain": "regtest"})),
        "getblocktemplate" if call.params[0]["longpollid"].is_null() => {
            Reply::Result(template.clone())
        }
        _ => Reply::Never,
    })
}

fn start(url: &str) -> Miner {
    let mut m = Miner::spawn(&[
        "-o",
        url,
        "--rpc-user",
        "u",
        "--rpc-pass",
        "p",
        "--coinbase-addr",
        "bcrt1qq6hag67dl53wl99vzg42z8eyzfz2xlkvwk6f7m",
        "--backend",
        "cpu",
        "-t",
        "1",
    ]);
    m.wait_for(Duration::from_secs(30), |e| e["event"] == "block_found")
        .unwrap_or_else(|| panic!("no block found: {}", m.stderr()));
    m
}

#[test]
fn one_signal_waits_a_bounded_time_for_the_verdict_then_exits_0() {
    let node = silent_node();
    let mut m = start(&node.url());
    wait_until(
        "the block to reach the node",
        Duration::from_secs(10),
        || node.calls("submitblock") > 0,
    );
    assert!(node.calls("submitblock") >= 1, "the block reached the node");
    let sent = Instant::now();
    m.interrupt();
    let status = m.wait_exit(Duration::from_secs(20));
    let took = sent.elapsed();
    assert!(status.success(), "{status:?}: {}", m.stderr());
    assert!(
        took >= Duration::from_secs(2),
        "it waited for the answer: {took:?}"
    );
    assert!(took < Duration::from_secs(6), "but not forever: {took:?}");
    // The block in flight is not lost: counted as without a verdict, and written out whole.
    let exit = m.of("exit")[0].clone();
    miner::assert_books_balance(&exit);
    assert!(
        exit["status"]["unanswered"].as_u64().unwrap() >= 1,
        "{exit}"
    );
    assert!(
        m.stderr().contains("submit it by hand: "),
        "the block's hex: {}",
        m.stderr()
    );
}

#[test]
fn a_second_signal_exits_at_once() {
    let node = silent_node();
    let mut m = start(&node.url());
    wait_until(
        "the block to reach the node",
        Duration::from_secs(10),
        || node.calls("submitblock") > 0,
    );
    m.interrupt();
    // Over a second later: a second signal sooner is the same request arriving twice (GNU
    // timeout signals the process and its group), and the first must be taken before this one.
    std::thread::sleep(Duration::from_millis(1300));
    let sent = Instant::now();
    m.interrupt();
    let status = m.wait_exit(Duration::from_secs(10));
    assert_eq!(status.code(), Some(130), "{}", m.stderr());
    assert!(
        sent.elapsed() < Duration::from_secs(2),
        "{:?}",
        sent.elapsed()
    );
    assert!(m.stderr().contains("second signal"));
}
