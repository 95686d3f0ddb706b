//! `bitcoin-cli` (the real one, from the test node's package) against the embedded node core's
//! JSON-RPC with the node-developer methods: help, getnetworkinfo, -getinfo, getblockchaininfo,
//! getmininginfo, getdifficulty, getnewaddress, generatetoaddress (mined by the CPU backend),
//! validateaddress and stop.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use bitcoin::hashes::Hash;
use serde_json::Value;

use crate::support::bitcoind::bitcoin_cli;
use wgminer::backend::{Backend, CpuBackend};
use wgminer::mining::generate::generate;
use wgminer::node::rpc_server::{GenerateHook, RpcExtras, RpcServer, LIMITS};
use wgminer::node::{chain_dir, Chain, ChainParams, NodeCore};

struct Node {
    rt: tokio::runtime::Runtime,
    core: Arc<NodeCore>,
    server: Option<RpcServer>,
    stop: tokio::sync::mpsc::Receiver<()>,
    dir: PathBuf,
    address: String,
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(s) = self.server.take() {
            self.rt.block_on(s.stop());
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn start_node() -> Node {
    let dir = std::env::temp_dir().join(format!("wgminer-node-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let chain = Chain::open(&chain_dir(&dir), ChainParams::regtest()).expect("chain");
    let core = NodeCore::new(chain);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let address = bitcoin::Address::from_script(
        &bitcoin::ScriptBuf::new_p2wpkh(&bitcoin::WPubkeyHash::from_byte_array([7; 20])),
        bitcoin::Network::Regtest,
    )
    .expect("address")
    .to_string();
    let (stop_tx, stop) = tokio::sync::mpsc::channel(1);
    let gen_core = Arc::clone(&core);
    let blocks_dir = dir.join("unsubmitted-blocks");
    let hook: GenerateHook = Arc::new(move |count, script| {
        let core = Arc::clone(&gen_core);
        let blocks_dir = blocks_dir.clone();
        Box::pin(async move {
            let cpu: Box<dyn Backend> =
                Box::new(CpuBackend::new(Some(1), None).map_err(|e| e.to_string())?);
            generate(core, vec![cpu], count, script, blocks_dir)
                .await
                .map_err(|e| e.to_string())
        })
    });
    let extras = RpcExtras {
        payout_address: Some(address.clone()),
        generate: Some(hook),
        stop: Some(stop_tx),
    };
    let server = rt
        .block_on(RpcServer::start_with(
            Arc::clone(&core),
            "127.0.0.1:0".parse().expect("addr"),
            LIMITS,
            extras,
        ))
        .expect("rpc server");
    Node {
        rt,
        core,
        server: Some(server),
        stop,
        dir,
        address,
    }
}

fn cli(bin: &Path, node: &Node, args: &[&str]) -> (bool, String) {
    let server = node.server.as_ref().expect("running");
    let out = Command::new(bin)
        .arg("-regtest")
        .arg(format!("-rpcport={}", server.addr().port()))
        .arg("-rpcconnect=127.0.0.1")
        .arg(format!("-rpccookiefile={}", server.cookie_file().display()))
        .args(args)
        .output()
        .expect("run bitcoin-cli");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

#[test]
fn bitcoin_cli_works_against_wgminer_node() {
    let bin = bitcoin_cli();
    let mut node = start_node();
    let (ok, help) = cli(&bin, &node, &["help"]);
    assert!(
        ok && help.contains("generatetoaddress") && help.contains("getblocktemplate"),
        "{help}"
    );
    let (ok, info) = cli(&bin, &node, &["getnetworkinfo"]);
    assert!(ok, "{info}");
    assert!(json(&info)["subversion"]
        .as_str()
        .is_some_and(|s| s.starts_with("/wgminer:")));
    // `-getinfo` (Bitcoin Core 0.16+) batches getnetworkinfo, getblockchaininfo and the
    // wallet's info; this package's bitcoin-cli (Bitcoin SV's) predates it, so only where it has it.
    let (_, usage) = cli(&bin, &node, &["-?"]);
    if usage.contains("-getinfo") {
        let (ok, info) = cli(&bin, &node, &["-getinfo"]);
        assert!(ok, "bitcoin-cli -getinfo: {info}");
        assert_eq!(json(&info)["blocks"], 0, "{info}");
    }
    let (ok, address) = cli(&bin, &node, &["getnewaddress"]);
    assert!(ok, "{address}");
    assert_eq!(address.trim(), node.address);
    let (ok, valid) = cli(&bin, &node, &["validateaddress", &node.address]);
    assert!(ok && json(&valid)["isvalid"] == true, "{valid}");

    let (ok, hashes) = cli(&bin, &node, &["generatetoaddress", "3", &node.address]);
    assert!(ok, "{hashes}");
    let hashes = json(&hashes);
    assert_eq!(hashes.as_array().map(Vec::len), Some(3), "{hashes}");
    let (ok, count) = cli(&bin, &node, &["getblockcount"]);
    assert!(ok);
    let height: u32 = count.trim().parse().expect("a number");
    assert!(height >= 3, "{count}");
    let (ok, hash3) = cli(&bin, &node, &["getblockhash", "3"]);
    assert!(ok);
    assert!(hashes
        .as_array()
        .is_some_and(|h| h.iter().any(|x| x == hash3.trim())));
    let (ok, chain) = cli(&bin, &node, &["getblockchaininfo"]);
    assert!(ok && json(&chain)["chain"] == "regtest", "{chain}");
    let (ok, mining) = cli(&bin, &node, &["getmininginfo"]);
    assert!(
        ok && json(&mining)["blocks"].as_u64() >= Some(3),
        "{mining}"
    );
    let (ok, difficulty) = cli(&bin, &node, &["getdifficulty"]);
    assert!(
        ok && difficulty.trim().parse::<f64>().is_ok(),
        "{difficulty}"
    );

    // Bad input: clear errors, nothing mined.
    let (ok, err) = cli(&bin, &node, &["generatetoaddress", "1", "not-an-address"]);
    assert!(!ok && err.contains("Invalid address"), "{err}");
    let mainnet = "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4";
    let (ok, err) = cli(&bin, &node, &["generatetoaddress", "1", mainnet]);
    assert!(!ok && err.contains("Invalid address"), "{err}");
    let (ok, err) = cli(&bin, &node, &["generatetoaddress", "-1", &node.address]);
    assert!(!ok && err.contains("nblocks"), "{err}");
    assert_eq!(node.core.tip().0, height, "a refused call mined nothing");

    let (ok, bye) = cli(&bin, &node, &["stop"]);
    assert!(ok && bye.contains("stopping"), "{bye}");
    assert!(node.stop.try_recv().is_ok(), "stop was not passed on");
}
