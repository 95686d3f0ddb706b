//! The embedded node core end to end, through the real binary: plain `wgminer` mines into a data
//! directory and the blocks persist across restarts; `kill -9` in the middle of mining never
//! loses an accepted block nor corrupts the store; `wgminer node` serves JSON-RPC to an external
//! client (this test) and to another wgminer mining over `-o http://`; bad input is a clear error.

use crate::support::bitcoind;
use crate::support::miner;
use crate::support::solo;

use std::path::{Path, PathBuf};
use std::time::Duration;

use bitcoin::consensus::deserialize;
use bitcoin::hex::FromHex;
use bitcoin::{Address, Block, BlockHash, Network};
use miner::{accepted, Miner};
use serde_json::{json, Value};
use solo::{TempDir, Tmpfs};
use wgminer::node::{chain_dir, Chain, ChainParams};
use wgminer::pow::hash_meets_target;
use wgminer::work::BlockTemplate;

fn open_chain(data: &Path) -> Chain {
    Chain::open(&chain_dir(data), ChainParams::regtest()).expect("the chain opens")
}

#[test]
fn plain_wgminer_mines_blocks_that_persist_across_restarts() {
    let data = TempDir::new("core");
    let mut m = Miner::spawn(&["--datadir", data.path(), "--backend", "cpu", "-t", "1"]);
    m.wait_blocks(5);
    m.stop_cleanly();
    let hashes: Vec<BlockHash> = m
        .events
        .iter()
        .filter(|e| accepted(e))
        .map(|e| e["hash"].as_str().unwrap().parse().unwrap())
        .collect();
    let chain_event = m.of("chain")[0].clone();
    let height = chain_event["height"].as_u64().unwrap() as u32;
    assert_eq!(
        height as usize,
        hashes.len(),
        "every block accepted, none lost"
    );

    // The store holds exactly them, valid, paying the key the core generated and printed.
    let chain = open_chain(&data.0);
    assert_eq!(chain.height(), height);
    assert_eq!(chain.verify_stored().unwrap(), height + 1);
    for (i, hash) in hashes.iter().enumerate() {
        assert_eq!(chain.block_hash_at(i as u32 + 1), Some(*hash));
    }
    let start = m.of("start")[0]["detail"].as_str().unwrap().to_owned();
    let address = start
        .split("paying ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .unwrap()
        .parse::<Address<_>>()
        .unwrap()
        .require_network(Network::Regtest)
        .unwrap();
    let tip = chain.block(&hashes[hashes.len() - 1]).unwrap().unwrap();
    assert_eq!(
        tip.txdata[0].output[0].script_pubkey,
        address.script_pubkey()
    );
    assert!(tip.check_witness_commitment());
    drop(chain);

    // Restart: it goes on from the stored tip, with the same key.
    let mut m = Miner::spawn(&["--datadir", data.path(), "--backend", "cpu", "-t", "1"]);
    m.wait_blocks(3);
    m.stop_cleanly();
    let detail = m.of("start")[0]["detail"].as_str().unwrap().to_owned();
    assert!(detail.contains(&format!("at height {height} ")), "{detail}");
    assert!(detail.contains(&address.to_string()), "{detail}");
    let first_new = m.events.iter().find(|e| accepted(e)).unwrap();
    assert_eq!(first_new["height"].as_u64().unwrap(), u64::from(height) + 1);
    let chain = open_chain(&data.0);
    assert!(chain.height() >= height + 3);
    chain.verify_stored().unwrap();
}

#[test]
fn kill_9_while_mining_never_loses_an_accepted_block_or_corrupts_the_store() {
    let data = TempDir::new("kill");
    let mut last_height = 0;
    for round in 0..5u64 {
        let mut m = Miner::spawn(&["--datadir", data.path(), "--backend", "cpu", "-t", "1"]);
        m.wait_blocks(1);
        // Kill at a different moment each round, mid-stream of block writes.
        std::thread::sleep(Duration::from_millis(37 + round * 71));
        m.kill_hard();
        let _ = m.wait_for(Duration::from_millis(200), |_| false);
        let reported: Vec<BlockHash> = m
            .events
            .iter()
            .filter(|e| accepted(e))
            .map(|e| e["hash"].as_str().unwrap().parse().unwrap())
            .collect();
        let chain = open_chain(&data.0);
        chain
            .verify_stored()
            .unwrap_or_else(|e| panic!("round {round}: {e}"));
        assert!(
            chain.height() >= last_height,
            "round {round}: the chain went back"
        );
        for hash in &reported {
            assert!(
                chain.header(hash).is_some(),
                "round {round}: accepted block {hash} lost"
            );
        }
        last_height = chain.height();
    }
    assert!(last_height >= 5);
}

/// The external client: JSON-RPC with the cookie `wgminer node` wrote.
struct Rpc {
    port: u16,
    password: String,
}

impl Rpc {
    fn call(&self, method: &str, params: Value) -> Result<Value, bitcoind::RpcError> {
        bitcoind::rpc_call(
            self.port,
            "__cookie__",
            &self.password,
            method,
            params,
            Duration::from_secs(30),
        )
    }
    fn ok(&self, method: &str, params: Value) -> Value {
        self.call(method, params)
            .unwrap_or_else(|e| panic!("{method}: {e}"))
    }
}

/// Start `wgminer node` on a free port and read where it serves and its cookie.
fn start_node(data: &TempDir, extra: &[&str]) -> (Miner, Rpc, PathBuf) {
    let mut args = vec![
        "node",
        "--datadir",
        data.path(),
        "--rpc-bind",
        "127.0.0.1:0",
    ];
    args.extend_from_slice(extra);
    let mut m = Miner::spawn_plain(&args);
    let line = m
        .wait_for(Duration::from_secs(20), |e| {
            e["line"]
                .as_str()
                .is_some_and(|l| l.contains("JSON-RPC on http://"))
        })
        .unwrap_or_else(|| panic!("no RPC line: {:?} {}", m.events, m.stderr()));
    let line = line["line"].as_str().unwrap().to_owned();
    let port: u16 = line
        .split("127.0.0.1:")
        .nth(1)
        .and_then(|s| s.split(|c: char| !c.is_ascii_digit()).next())
        .unwrap()
        .parse()
        .unwrap();
    let cookie = PathBuf::from(
        line.split("cookie auth: ")
            .nth(1)
            .unwrap()
            .trim_end_matches(')'),
    );
    let text = std::fs::read_to_string(&cookie).unwrap();
    let password = text.split_once(':').unwrap().1.to_owned();
    (m, Rpc { port, password }, cookie)
}

fn solve(gbt: &Value, meets: bool) -> (String, BlockHash) {
    let template = BlockTemplate::from_gbt(gbt).unwrap();
    let block = solo::solve(&template, &bitcoin::ScriptBuf::new_op_return([]), meets);
    (block.to_hex(), block.hash)
}

#[test]
fn an_external_client_fetches_templates_and_submits_blocks_over_json_rpc() {
    let data = TempDir::new("rpc");
    let (mut node, rpc, cookie) = start_node(&data, &[]);
    let genesis = "0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206";
    assert_eq!(rpc.ok("getblockcount", json!([])), 0);
    assert_eq!(rpc.ok("getbestblockhash", json!([])), genesis);
    assert_eq!(rpc.ok("getblockchaininfo", json!([]))["chain"], "regtest");

    let gbt = rpc.ok("getblocktemplate", json!([{"rules": ["segwit"]}]));
    assert_eq!(gbt["height"], 1);
    assert_eq!(gbt["previousblockhash"], genesis);
    assert!(gbt["default_witness_commitment"].is_string());

    // Bad proof of work, garbage, then the real block; then the same block again.
    let (bad_hex, _) = solve(&gbt, false);
    assert_eq!(rpc.ok("submitblock", json!([bad_hex])), "high-hash");
    let e = rpc.call("submitblock", json!(["00ff"])).unwrap_err();
    assert_eq!(e.code, -22, "{e}");
    let (hex, hash) = solve(&gbt, true);
    assert_eq!(rpc.ok("submitblock", json!([hex])), Value::Null);
    assert_eq!(rpc.ok("getblockcount", json!([])), 1);
    assert_eq!(rpc.ok("getbestblockhash", json!([])), hash.to_string());
    assert_eq!(rpc.ok("submitblock", json!([hex])), "duplicate");
    // The old template's block now builds on a tip that moved.
    let (late_hex, _) = {
        let mut g = gbt.clone();
        g["curtime"] = json!(gbt["curtime"].as_u64().unwrap() + 1);
        solve(&g, true)
    };
    assert_eq!(rpc.ok("submitblock", json!([late_hex])), "stale-prevblk");

    // Lookups.
    let header = rpc.ok("getblockheader", json!([hash.to_string()]));
    assert_eq!(header["height"], 1);
    assert_eq!(header["previousblockhash"], genesis);
    let raw = rpc.ok("getblockheader", json!([hash.to_string(), false]));
    assert_eq!(raw.as_str().unwrap().len(), 160);
    let block_hex = rpc.ok("getblock", json!([hash.to_string(), 0]));
    assert_eq!(block_hex.as_str().unwrap(), hex);
    let block: Block = deserialize(&Vec::<u8>::from_hex(&hex).unwrap()).unwrap();
    let verbose = rpc.ok("getblock", json!([hash.to_string()]));
    assert_eq!(verbose["tx"][0], block.txdata[0].compute_txid().to_string());
    assert_eq!(
        rpc.call("getblock", json!(["00".repeat(32)]))
            .unwrap_err()
            .code,
        -5
    );
    assert_eq!(
        rpc.call("nosuchmethod", json!([])).unwrap_err().code,
        -32601
    );

    // Longpoll: a request naming the current tip waits until a block arrives.
    let tip_template = rpc.ok("getblocktemplate", json!([{}]));
    let id = tip_template["longpollid"].as_str().unwrap().to_owned();
    let poll = {
        let (port, password) = (rpc.port, rpc.password.clone());
        std::thread::spawn(move || {
            let started = std::time::Instant::now();
            let v = bitcoind::rpc_call(
                port,
                "__cookie__",
                &password,
                "getblocktemplate",
                json!([{"longpollid": id}]),
                Duration::from_secs(60),
            )
            .unwrap();
            (v, started.elapsed())
        })
    };
    // A fixed wait, the test's subject: the longpoll must still be waiting when the block comes
    // half a second later (it asserts below that it waited).
    std::thread::sleep(Duration::from_millis(500));
    let (hex2, hash2) = solve(&tip_template, true);
    assert_eq!(rpc.ok("submitblock", json!([hex2])), Value::Null);
    let (next, waited) = poll.join().unwrap();
    assert_eq!(next["previousblockhash"], hash2.to_string());
    assert!(
        waited >= Duration::from_millis(400),
        "it waited for the block: {waited:?}"
    );

    // Wrong cookie: refused.
    let wrong = Rpc {
        port: rpc.port,
        password: "wrong".into(),
    };
    let e = wrong.call("getblockcount", json!([])).unwrap_err();
    assert!(e.message.contains("401"), "{e}");

    node.interrupt();
    assert!(node.wait_exit(Duration::from_secs(10)).success());
    assert!(!cookie.exists(), "the cookie is removed on exit");
    let chain = open_chain(&data.0);
    assert_eq!(chain.height(), 2);
}

#[test]
fn wgminer_mines_on_wgminer_node_over_getblocktemplate() {
    let data = TempDir::new("pair");
    let (mut node, rpc, cookie) = start_node(&data, &[]);
    let address = "bcrt1qq6hag67dl53wl99vzg42z8eyzfz2xlkvwk6f7m";
    let url = format!("http://127.0.0.1:{}", rpc.port);
    let mut m = Miner::spawn(&[
        "-o",
        &url,
        "--rpc-cookie",
        cookie.to_str().unwrap(),
        "--coinbase-addr",
        address,
        "--backend",
        "cpu",
        "-t",
        "1",
    ]);
    m.wait_blocks(3);
    m.stop_cleanly();
    let blocks = m.of("exit")[0]["status"]["blocks"].as_u64().unwrap();
    assert_eq!(rpc.ok("getblockcount", json!([])).as_u64().unwrap(), blocks);
    node.interrupt();
    assert!(node.wait_exit(Duration::from_secs(10)).success());
    let chain = open_chain(&data.0);
    let payout = address
        .parse::<Address<_>>()
        .unwrap()
        .assume_checked()
        .script_pubkey();
    for h in 1..=chain.height() {
        let block = chain
            .block(&chain.block_hash_at(h).unwrap())
            .unwrap()
            .unwrap();
        assert_eq!(block.txdata[0].output[0].script_pubkey, payout);
        assert!(block.check_witness_commitment());
    }
}

#[test]
fn difficulty_flag_sets_the_target_every_block_meets() {
    let data = TempDir::new("diff");
    let mut m = Miner::spawn(&[
        "--datadir",
        data.path(),
        "--difficulty",
        "0.000001",
        "--backend",
        "cpu",
        "-t",
        "1",
    ]);
    m.wait_blocks(2);
    m.stop_cleanly();
    let params = ChainParams::with_difficulty(1e-6).unwrap();
    let chain = Chain::open(&chain_dir(&data.0), params.clone()).unwrap();
    for h in 1..=chain.height() {
        let (header, _) = chain.header(&chain.block_hash_at(h).unwrap()).unwrap();
        assert_eq!(header.bits, params.bits);
        assert!(hash_meets_target(&header.block_hash(), &params.target));
    }
}

#[test]
fn bad_data_directories_and_difficulties_are_clear_errors() {
    let data = TempDir::new("bad");
    let file = data.0.join("a-file");
    std::fs::write(&file, "x").unwrap();
    let run = |args: &[&str]| {
        let mut m = Miner::spawn(args);
        let status = m.wait_exit(Duration::from_secs(20));
        (status.code(), m.stderr())
    };
    let (code, err) = run(&["--datadir", file.to_str().unwrap(), "--backend", "cpu"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.to_lowercase().contains("not a directory"), "{err}");

    for d in ["0", "-1", "nan", "1e-20"] {
        let flag = format!("--difficulty={d}");
        let (code, err) = run(&["--datadir", data.path(), &flag, "--backend", "cpu"]);
        assert_eq!(code, Some(2), "{d}: {err}");
        assert!(err.contains("difficulty"), "{d}: {err}");
    }

    // A corrupt chain file: named, with what to do.
    let corrupt = TempDir::new("corrupt");
    let dir = chain_dir(&corrupt.0);
    std::fs::create_dir_all(&dir).unwrap();
    let db = std::fs::read_dir(&data.0).ok();
    drop(db);
    // Create a real store first to learn the file name, then overwrite it with garbage.
    drop(open_chain(&corrupt.0));
    let files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    assert!(!files.is_empty());
    for f in &files {
        std::fs::write(f, vec![0x5a; 8192]).unwrap();
    }
    let (code, err) = run(&["--datadir", corrupt.path(), "--backend", "cpu"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("move it away") || err.contains("corrupt"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");

    // Two miners on one data directory: the second is told.
    let shared = TempDir::new("shared");
    let mut first = Miner::spawn(&["--datadir", shared.path(), "--backend", "cpu", "-t", "1"]);
    first.wait_blocks(1);
    let (code, err) = run(&["--datadir", shared.path(), "--backend", "cpu", "-t", "1"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("another wgminer"), "{err}");
    first.stop_cleanly();
}

/// `wgminer` on a damaged chain file, as a user meets it (with `RUST_BACKTRACE=1` set, as many
/// shells have it): a truncated file is refused with the one-line error only, where redb's
/// assertion once printed "panicked at" and a backtrace first; an empty file is refused, not
/// taken for a new chain, and left exactly as it was.
#[test]
fn truncated_or_empty_chain_files_are_refused_with_the_clean_message_only() {
    let run = |data: &Path| {
        std::process::Command::new(env!("CARGO_BIN_EXE_wgminer"))
            .args(["--datadir", data.to_str().unwrap(), "--backend", "cpu"])
            .args(["-t", "1", "--json-log"])
            .env("RUST_BACKTRACE", "1")
            .env("NO_COLOR", "1")
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
    };
    let clean = |stderr: &str| {
        for noise in ["panicked", "backtrace", "RUST_BACKTRACE", "assertion"] {
            assert!(!stderr.contains(noise), "{noise:?} in: {stderr}");
        }
        assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    };

    let good = TempDir::new("trunc-src");
    drop(open_chain(&good.0));
    let bytes = std::fs::read(chain_dir(&good.0).join("chain.redb")).unwrap();
    for len in [1000, 4096, bytes.len() / 2, bytes.len() - 1] {
        let data = TempDir::new("trunc");
        let dir = chain_dir(&data.0);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("chain.redb"), &bytes[..len]).unwrap();
        let out = run(&data.0);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{len}: {stderr}");
        assert!(
            stderr.contains("chain.redb is unreadable or corrupt"),
            "{stderr}"
        );
        assert!(stderr.contains("truncated"), "{stderr}");
        assert!(stderr.contains("move it away"), "{stderr}");
        clean(&stderr);
    }

    let data = TempDir::new("empty");
    let dir = chain_dir(&data.0);
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("chain.redb");
    std::fs::write(&file, b"").unwrap();
    let modified = std::fs::metadata(&file).unwrap().modified().unwrap();
    let out = run(&data.0);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "chain.redb at {} is empty (0 bytes): it is not a chain; delete it to start a new chain, or restore it from a backup",
            file.display()
        )),
        "{stderr}"
    );
    clean(&stderr);
    let after = std::fs::metadata(&file).unwrap();
    assert_eq!(after.len(), 0, "the empty file was written to");
    assert_eq!(
        after.modified().unwrap(),
        modified,
        "the empty file was rewritten"
    );
    assert!(!dir.join("chain.redb.new").exists());
}

/// A full disk while mining (a real one: a small tmpfs filled to the last byte). The block the
/// disk refuses pauses mining with one message and is kept in memory (its hex logged); nothing
/// floods while paused, where the miner once printed thousands of `store-failed` results a
/// second and never stored again. Once space is freed, the next try stores the kept block and
/// mining resumes, with one message; the block is in the chain on disk.
#[test]
fn a_full_disk_pauses_mining_keeps_the_block_and_resumes_when_space_is_back() {
    let fs = match Tmpfs::mount("disk", 8) {
        Ok(fs) => fs,
        Err(why) => {
            eprintln!("SKIPPED: no small file system to fill here: {why}");
            return;
        }
    };
    let file = chain_dir(&fs.dir).join("chain.redb");
    let mut m = Miner::spawn(&["--datadir", fs.path(), "--backend", "cpu", "-t", "1"]);
    m.wait_blocks(3);
    fs.fill();
    let paused = m
        .wait_for(Duration::from_secs(60), |e| e["event"] == "source_down")
        .unwrap_or_else(|| panic!("no pause on a full disk; stderr: {}", m.stderr()));
    assert_eq!(
        paused["reason"],
        format!(
            "disk full at {}: mining paused; free space and it resumes",
            file.display()
        )
    );
    let at_pause = m.events.len();

    // Paused: a few seconds without a flood, then space back.
    let _ = m.wait_for(Duration::from_secs(3), |_| false);
    fs.free();
    m.wait_for(Duration::from_secs(30), |e| {
        e["event"] == "node_message"
            && e["message"]
                .as_str()
                .unwrap()
                .contains("takes blocks again")
    })
    .unwrap_or_else(|| panic!("mining never resumed; stderr: {}", m.stderr()));
    let during: Vec<Value> = m.events[at_pause - 1..].to_vec();
    let texts: Vec<String> = during.iter().map(|e| e.to_string()).collect();
    assert!(during.len() <= 6, "a flood while paused: {texts:#?}");
    let pauses = during
        .iter()
        .filter(|e| e["event"] == "source_down")
        .count();
    assert_eq!(pauses, 1, "{texts:#?}");
    assert!(
        !during
            .iter()
            .any(|e| e["event"] == "block_result" && e["status"] != "accepted"),
        "{texts:#?}"
    );

    // The kept block: logged as hex that decodes to it, then stored and accepted.
    let kept = during
        .iter()
        .filter_map(|e| e["message"].as_str())
        .find(|t| t.contains("is kept in memory"))
        .unwrap_or_else(|| panic!("no kept block: {texts:#?}"));
    let hash: BlockHash = kept.split(' ').nth(1).unwrap().parse().unwrap();
    let hex = kept.rsplit(' ').next().unwrap();
    let block: Block = deserialize(&Vec::<u8>::from_hex(hex).unwrap()).unwrap();
    assert_eq!(block.block_hash(), hash);
    assert!(
        during
            .iter()
            .any(|e| accepted(e) && e["hash"] == hash.to_string()),
        "the kept block {hash} was not accepted: {texts:#?}"
    );

    // Mining goes on, and everything is on disk.
    let before = m.events.iter().filter(|e| accepted(e)).count();
    m.wait_blocks(before + 3);
    m.stop_cleanly();
    miner::assert_books_balance(m.of("exit")[0]);
    let chain = open_chain(&fs.dir);
    assert!(
        chain.header(&hash).is_some(),
        "the kept block is not stored"
    );
    assert_eq!(chain.verify_stored().unwrap(), chain.height() + 1);
    assert_eq!(
        m.of("chain")[0]["height"].as_u64().unwrap(),
        u64::from(chain.height())
    );
}

/// Any other write error pauses mining the same way, with its own words; here a real one
/// without mounting anything: the process's file-size limit (`RLIMIT_FSIZE`, set from outside
/// with `prlimit`) stops the chain file from growing (EFBIG, SIGXFSZ ignored). Lifted, mining
/// resumes; set again and the run stopped while paused, the kept block is written out as hex
/// and counted without a verdict, never lost.
#[test]
fn a_store_write_error_pauses_mining_and_a_kept_block_is_written_out_at_exit() {
    let prlimit = |pid: u32, limit: &str| {
        std::process::Command::new("prlimit")
            .args(["--pid", &pid.to_string(), &format!("--fsize={limit}")])
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    };
    if !prlimit(std::process::id(), "unlimited:unlimited") {
        eprintln!("SKIPPED: prlimit (util-linux) cannot set a process's file-size limit here");
        return;
    }
    let data = TempDir::new("fsize");
    let file = chain_dir(&data.0).join("chain.redb");
    // Regtest's flood of blocks (no --block-time retarget): the file must grow past the limit
    // within seconds.
    let mut m = Miner::spawn_after(
        "trap '' XFSZ",
        &[
            "--datadir",
            data.path(),
            "--backend",
            "cpu",
            "-t",
            "1",
            "--block-time",
            "0",
        ],
    );
    let kept_hex = |m: &mut Miner| {
        let kept = m.wait_for(Duration::from_secs(10), |e| {
            e["message"]
                .as_str()
                .is_some_and(|t| t.contains("is kept in memory"))
        });
        let line = kept.unwrap_or_else(|| panic!("no kept block; stderr: {}", m.stderr()));
        let line = line["message"].as_str().unwrap();
        let hash: BlockHash = line.split(' ').nth(1).unwrap().parse().unwrap();
        (hash, line.rsplit(' ').next().unwrap().to_owned())
    };
    for round in 0..2 {
        m.wait_blocks(m.events.iter().filter(|e| accepted(e)).count() + 2);
        let size = std::fs::metadata(&file).unwrap().len();
        assert!(prlimit(m.pid(), &format!("{size}:unlimited")));
        let paused = m
            .wait_for(Duration::from_secs(60), |e| e["event"] == "source_down")
            .unwrap_or_else(|| panic!("no pause; stderr: {}", m.stderr()));
        let reason = paused["reason"].as_str().unwrap();
        assert!(
            reason.starts_with(&format!("cannot store blocks in {} (", file.display())),
            "{reason}"
        );
        assert!(reason.contains("File too large"), "{reason}");
        assert!(
            reason.ends_with("): mining paused; it resumes once the block is stored"),
            "{reason}"
        );
        let (hash, hex) = kept_hex(&mut m);
        if round == 0 {
            assert!(prlimit(m.pid(), "unlimited:unlimited"));
            m.wait_for(Duration::from_secs(30), |e| {
                accepted(e) && e["hash"] == hash.to_string()
            })
            .unwrap_or_else(|| panic!("the kept block was never stored: {}", m.stderr()));
            continue;
        }
        // Stopped while paused: the block comes out as hex on stderr, counted without a verdict.
        let _ = m.wait_for(Duration::from_millis(500), |_| false);
        m.stop_cleanly();
        let stderr = m.stderr();
        assert!(
            stderr.contains(&format!("block {hash}")) && stderr.contains(&hex),
            "the kept block was not written out: {stderr}"
        );
        let exit = m.of("exit")[0].clone();
        miner::assert_books_balance(&exit);
        assert!(
            exit["status"]["unanswered"].as_u64().unwrap()
                + exit["status"]["stale"].as_u64().unwrap()
                >= 1
        );
        let chain = open_chain(&data.0);
        assert!(chain.header(&hash).is_none());
        chain.verify_stored().unwrap();
    }
}

#[test]
fn sigterm_submits_every_block_already_found_and_exits_0_quickly() {
    let data = TempDir::new("term");
    for round in 0..3u64 {
        let mut m = Miner::spawn(&["--datadir", data.path(), "--backend", "cpu", "-t", "1"]);
        m.wait_blocks(3);
        // Signal at a different moment each round (a fixed wait, the test's subject).
        std::thread::sleep(Duration::from_millis(20 * round));
        let sent = std::time::Instant::now();
        miner::signal(m.pid(), "-TERM");
        let status = m.wait_exit(Duration::from_secs(10));
        assert!(status.success(), "round {round}: {status:?} {}", m.stderr());
        assert!(
            sent.elapsed() < Duration::from_secs(5),
            "round {round}: {:?}",
            sent.elapsed()
        );
        // Every block found, including those found as the signal came, got its verdict.
        let found: Vec<&str> = m
            .of("block_found")
            .iter()
            .map(|e| e["hash"].as_str().unwrap())
            .collect();
        let results: Vec<&Value> = m.of("block_result");
        for hash in &found {
            assert!(
                results.iter().any(|r| r["hash"] == *hash),
                "round {round}: block {hash} found but never answered"
            );
        }
        miner::assert_books_balance(m.of("exit")[0]);
        let chain = open_chain(&data.0);
        chain.verify_stored().unwrap();
        for r in results.iter().filter(|r| r["status"] == "accepted") {
            let hash: BlockHash = r["hash"].as_str().unwrap().parse().unwrap();
            assert!(
                chain.header(&hash).is_some(),
                "round {round}: accepted {hash} not stored"
            );
        }
        assert_eq!(
            m.of("chain")[0]["height"].as_u64().unwrap(),
            u64::from(chain.height())
        );
    }
}

/// `wgminer … | head -1`: once stdout is closed the run ends as on Ctrl-C (blocks found are
/// submitted, the store stays sound) and exits 0, without a panic and without mining on unseen.
#[test]
fn a_closed_stdout_ends_the_run_cleanly() {
    use std::io::BufRead;
    let data = TempDir::new("pipe");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_wgminer"))
        .args([
            "--datadir",
            data.path(),
            "--backend",
            "cpu",
            "-t",
            "1",
            "--json-log",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    assert!(first.contains("\"event\""), "{first}");
    drop(out);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("wgminer kept running after its stdout was closed");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(status.success(), "{status:?}: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let chain = open_chain(&data.0);
    chain.verify_stored().unwrap();
}

/// SIGHUP (a closed terminal, a reload request) is a graceful stop: exit 0 and the cookie file
/// removed, where it once killed the process (exit 129) and left the cookie behind.
#[test]
fn sighup_stops_the_node_gracefully_and_removes_the_cookie() {
    let data = TempDir::new("hup");
    let (mut node, _rpc, cookie) = start_node(&data, &[]);
    assert!(cookie.exists());
    miner::signal(node.pid(), "-HUP");
    let status = node.wait_exit(Duration::from_secs(10));
    assert!(status.success(), "{status:?}: {}", node.stderr());
    assert!(!cookie.exists(), "the cookie file is left behind");
}
