//! Shutdown while a block waits for its verdict: one signal drains (waits a bounded time for the
//! node's answer, then exits 0); a second signal exits at once with code 130.
//!
//! The node here is a stand-in (a mock, said plainly): a real node always answers submitblock
//! at once, and this test needs one that does not. It serves a real recorded Bitcoin Core
//! regtest template (tests/data/gbt) and holds submitblock and longpoll requests open.

use crate::support::miner;
use crate::support::wait::wait_until;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

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
fn serve(stream: TcpStream, template: &Value, submits: &AtomicUsize) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().unwrap();
        }
        if line == "\r\n" {
            break;
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    let req: Value = serde_json::from_slice(&body).unwrap();
    let result = match req["method"].as_str().unwrap() {
        "getblockchaininfo" => json!({"chain": "regtest"}),
        "getblocktemplate" if req["params"][0]["longpollid"].is_null() => template.clone(),
        "submitblock" => {
            submits.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(Duration::from_secs(60));
            return;
        }
        _ => {
            std::thread::sleep(Duration::from_secs(60));
            return;
        }
    };
    let body = json!({"result": result, "error": null, "id": req["id"]}).to_string();
    let mut out = stream;
    let _ = write!(
        out,
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
}

fn silent_node() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let submits = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&submits);
    let template = template();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let template = template.clone();
            let counter = Arc::clone(&counter);
            std::thread::spawn(move || serve(stream, &template, &counter));
        }
    });
    (url, submits)
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
    let (url, submits) = silent_node();
    let mut m = start(&url);
    wait_until(
        "the block to reach the node",
        Duration::from_secs(10),
        || submits.load(Ordering::SeqCst) > 0,
    );
    assert!(
        submits.load(Ordering::SeqCst) >= 1,
        "the block reached the node"
    );
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
    let (url, submits) = silent_node();
    let mut m = start(&url);
    wait_until(
        "the block to reach the node",
        Duration::from_secs(10),
        || submits.load(Ordering::SeqCst) > 0,
    );
    m.interrupt();
    // The first signal must be taken before the second is sent, and the miner says nothing when
    // it takes one (it is waiting for the node's answer): give it a moment, the one fixed wait.
    std::thread::sleep(Duration::from_millis(500));
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
