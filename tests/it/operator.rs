//! What operators and node developers run, through the real binary: cgminer's API (`quit` and
//! `restart` over the socket), the default run's block-time retarget (and a restart continuing
//! it), and `wgminer node` driven by the real `bitcoin-cli` (`getnewaddress`,
//! `generatetoaddress` mined by the CPU, `stop`).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::bitcoind::{bitcoin_cli, free_port};
use crate::support::miner::Miner;

const LIMIT: Duration = Duration::from_secs(60);

struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let d = std::env::temp_dir().join(format!("wgminer-op-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("scratch dir");
        Scratch(d)
    }

    fn path(&self) -> &str {
        self.0.to_str().expect("utf-8 path")
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One cgminer API request; the reply without its NUL.
fn cgminer(port: u16, request: &str) -> Value {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to the cgminer API");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    s.write_all(request.as_bytes()).expect("send");
    let mut reply = Vec::new();
    s.read_to_end(&mut reply).expect("read");
    let text = String::from_utf8_lossy(&reply);
    serde_json::from_str(text.trim_end_matches('\0')).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// A CPU miner on its own chain with cgminer's API on a free port (`allow`: the privileged
/// list, if any), once the API is up; its port.
fn miner_with_cgminer_api(dir: &Scratch, allow: Option<&str>) -> (Miner, u16) {
    let port = free_port();
    let bind = format!("127.0.0.1:{port}");
    let mut args = vec![
        "--backend",
        "cpu",
        "-t",
        "1",
        "--datadir",
        dir.path(),
        "--difficulty",
        "1e-4",
        "--api-cgminer-bind",
        &bind,
    ];
    if let Some(allow) = allow {
        args.extend(["--api-cgminer-allow", allow]);
    }
    let mut miner = Miner::spawn(&args);
    miner
        .wait_for(LIMIT, |e| e["event"] == "api_cgminer")
        .expect("the cgminer API starts");
    (miner, port)
}

/// `quit` over cgminer's API ends the run as Ctrl-C does (summary, exit 0); `restart` brings
/// the same miner back with the same arguments, its API answering again.
#[test]
fn cgminer_api_restart_and_quit_drive_the_miner() {
    let dir = Scratch::new("cgminer");
    let (mut miner, port) = miner_with_cgminer_api(&dir, Some("127.0.0.1"));
    let summary = cgminer(port, r#"{"command":"summary"}"#);
    assert_eq!(summary["STATUS"][0]["STATUS"], "S", "{summary}");
    assert!(summary["SUMMARY"][0]["Elapsed"].is_number(), "{summary}");
    let devs = cgminer(port, r#"{"command":"devs"}"#);
    assert_eq!(devs["DEVS"][0]["CPU"], 0, "{devs}");

    let restart = cgminer(port, r#"{"command":"restart"}"#);
    assert_eq!(restart["STATUS"], "RESTART");
    miner
        .wait_for(LIMIT, |e| e["event"] == "exit")
        .expect("the first run ends with its summary");
    miner
        .wait_for(LIMIT, |e| e["event"] == "api_cgminer")
        .expect("the restarted miner serves the API again");
    let again = cgminer(port, r#"{"command":"summary+devs"}"#);
    assert_eq!(again["summary"][0]["STATUS"][0]["STATUS"], "S", "{again}");

    let bye = cgminer(port, r#"{"command":"quit"}"#);
    assert_eq!(bye["STATUS"], "BYE");
    let status = miner.wait_exit(LIMIT);
    assert!(status.success(), "{status:?}: {}", miner.stderr());
    assert_eq!(miner.of("exit").len(), 2, "one summary per run");
}

/// Privileged commands from an address not on the list are refused, and the miner goes on.
#[test]
fn cgminer_api_refuses_quit_without_the_allow_list() {
    let dir = Scratch::new("cgminer-deny");
    let (mut miner, port) = miner_with_cgminer_api(&dir, None);
    let denied = cgminer(port, r#"{"command":"quit"}"#);
    assert_eq!(denied["STATUS"][0]["Code"], 45, "{denied}");
    std::thread::sleep(Duration::from_millis(500));
    let still = cgminer(port, r#"{"command":"summary"}"#);
    assert_eq!(
        still["STATUS"][0]["STATUS"], "S",
        "the miner stopped: {still}"
    );
    miner.stop_cleanly();
}

/// A bad allow-list is bad usage, said before anything starts.
#[test]
fn a_bad_allow_list_is_a_usage_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_wgminer"))
        .args([
            "--api-cgminer-bind",
            "127.0.0.1:0",
            "--api-cgminer-allow",
            "10.0.0.0/40",
        ])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--api-cgminer-allow") && err.contains("prefix"),
        "{err}"
    );
}

fn difficulty(e: &Value) -> f64 {
    e["difficulty"].as_f64().unwrap_or(0.0)
}

/// Plain `wgminer` holds a block time: from regtest's easiest target the difficulty climbs to
/// what the CPU finds every few seconds, and a restart on the same chain starts there again.
#[test]
fn the_default_run_retargets_and_a_restart_continues() {
    let dir = Scratch::new("block-time");
    let args = [
        "--backend",
        "cpu",
        "-t",
        "1",
        "--datadir",
        dir.path(),
        "--block-time",
        "2",
    ];
    let mut miner = Miner::spawn(&args);
    let first = miner
        .wait_for(LIMIT, |e| e["event"] == "template")
        .expect("a template");
    let start = difficulty(&first);
    // The retarget has caught up once blocks come about as often as asked.
    let caught_up = miner.wait_for(Duration::from_secs(120), |e| {
        e["event"] == "template" && difficulty(e) > start * 1e4
    });
    let caught_up = caught_up.expect("the difficulty rose with the blocks");
    miner.stop_cleanly();
    let last = miner
        .of("template")
        .last()
        .map(|e| difficulty(e))
        .unwrap_or(0.0);
    assert!(last >= difficulty(&caught_up) / 4.0, "{last}");

    let mut again = Miner::spawn(&args);
    let resumed = again
        .wait_for(LIMIT, |e| e["event"] == "template")
        .expect("a template after the restart");
    let ratio = difficulty(&resumed) / last;
    assert!(
        (0.25..4.0).contains(&ratio),
        "the restart did not continue the difficulty: {} after {last}",
        difficulty(&resumed)
    );
    again.stop_cleanly();
}

fn cli(bin: &Path, port: u16, cookie: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(bin)
        .arg("-regtest")
        .arg(format!("-rpcport={port}"))
        .arg("-rpcconnect=127.0.0.1")
        .arg(format!("-rpccookiefile={}", cookie.display()))
        .args(args)
        .output()
        .expect("run bitcoin-cli");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text.trim().to_owned())
}

/// `wgminer node` for node developers, driven by `bitcoin-cli`: its payout address, blocks
/// mined on request with the selected device, and `stop` ending it cleanly.
#[test]
fn wgminer_node_generates_blocks_for_bitcoin_cli() {
    let bin = bitcoin_cli();
    let dir = Scratch::new("node-cli");
    let port = free_port();
    let bind = format!("127.0.0.1:{port}");
    let mut node = Miner::spawn_plain(&[
        "node",
        "--datadir",
        dir.path(),
        "--rpc-bind",
        &bind,
        "--backend",
        "cpu",
        "-t",
        "1",
    ]);
    let cookie = dir.0.join("regtest").join(".cookie");
    let deadline = Instant::now() + LIMIT;
    while !cookie.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(cookie.exists(), "no cookie: {}", node.stderr());
    let (ok, address) = cli(&bin, port, &cookie, &["getnewaddress"]);
    assert!(ok && address.starts_with("bcrt1"), "{address}");
    let (ok, hashes) = cli(&bin, port, &cookie, &["generatetoaddress", "2", &address]);
    assert!(ok, "{hashes}");
    let hashes: Value = serde_json::from_str(&hashes).expect("JSON");
    assert_eq!(hashes.as_array().map(Vec::len), Some(2), "{hashes}");
    // Exactly two blocks, as Bitcoin Core would add, and they are the ones returned.
    let (ok, count) = cli(&bin, port, &cookie, &["getblockcount"]);
    assert!(ok && count == "2", "{count}");
    for (height, hash) in hashes.as_array().unwrap().iter().enumerate() {
        let (ok, at) = cli(
            &bin,
            port,
            &cookie,
            &["getblockhash", &(height + 1).to_string()],
        );
        assert!(ok && Some(at.as_str()) == hash.as_str(), "{at} != {hash}");
    }
    let (ok, bye) = cli(&bin, port, &cookie, &["stop"]);
    assert!(ok && bye.contains("stopping"), "{bye}");
    let status = node.wait_exit(LIMIT);
    assert!(status.success(), "{status:?}: {}", node.stderr());
}
