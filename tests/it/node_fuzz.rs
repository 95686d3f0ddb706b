//! Fuzzing what a node's peers send, in-process, with a fixed seed (docs/FUZZING.md):
//!
//! - the embedded node core's JSON-RPC dispatcher ([`handle_json_rpc`], what an authenticated
//!   POST reaches) gets mutated calls: every real method and some that do not exist,
//!   `getblocktemplate` with odd requests, `submitblock` with mutated hex of real blocks (a
//!   mainnet block from tests/data and blocks mined here for the chain's tip), lookups with odd
//!   heights, hashes and verbosities, batches, wrong types, huge numbers, deep nesting, and
//!   bodies that are not JSON. Properties: nothing panics (a panic in a blocking task would come
//!   back as an "internal error" reply, which fails too); every reply is a JSON-RPC reply object
//!   (`result` and `error` both present, `error` null or `{code, message}`, never both set, the
//!   call's `id` echoed) under the HTTP status bitcoind gives; the chain moves only when a
//!   `submitblock` says the block was accepted; and afterwards the chain is whole (the store
//!   verifies, the lookups agree) and still takes a valid block.
//! - the `getblocktemplate` decoder ([`BlockTemplate::from_gbt`]) gets the real captures in
//!   tests/data/gbt mutated: fields deleted, retyped, cut, given random hex or numeric edge values,
//!   transactions dropped, repeated, swapped or corrupted, fields swapped between captures.
//!   Properties: nothing panics, and every template it accepts keeps its invariants (target is
//!   the target of bits and within the chains' limits, the coinbase value at most 21 million
//!   BTC, each transaction's ids match its data), its solo job builds or is refused for a stated
//!   reason, the job's coinbase decodes and its merkle branch gives the root of the whole tree,
//!   a solved block (for easy targets) is a valid block, and `to_gbt` reads back as the same
//!   template.
//!
//! Per CI run: 100,000 bodies for the dispatcher (4.5 s in release on the 2-core dev machine)
//! and 100,000 templates for the decoder (13.5 s); see docs/FUZZING.md. `WGMINER_FUZZ_CASES=n`
//! runs n times as many, `WGMINER_FUZZ_SEED` another stream.
//!
//! The decoder target found `from_gbt` trusting a `default_witness_commitment` that is not
//! BIP141's for the transactions (every block mined on it invalid); such templates are refused
//! now, and every accepted segwit template's solved block must carry a valid commitment.

use crate::support::fuzz;
use crate::support::solo;

use std::sync::Arc;

use bitcoin::consensus::{deserialize, serialize};
use bitcoin::hex::{DisplayHex, FromHex};
use bitcoin::pow::{CompactTarget, Target};
use bitcoin::{Amount, Block, BlockHash, ScriptBuf, Transaction, TxMerkleNode};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use serde_json::{json, Map, Value};
use solo::TempDir;
use wgminer::node::rpc_server::handle_json_rpc;
use wgminer::node::{chain_dir, Chain, ChainParams, NodeCore};
use wgminer::pow::hash_meets_target;
use wgminer::work::template::TemplateError;
use wgminer::work::{BlockTemplate, Extranonce2, Roll};

/// JSON-RPC bodies fed to the dispatcher per CI run (4.5 s in release).
const RPC_BODIES: u32 = 100_000;

/// Mutated templates fed to the decoder per CI run (13.5 s in release).
const TEMPLATES: u32 = 100_000;

// ---------------------------------------------------------------------------------------------
// Shared generators

/// Numbers at the edges of every type a field might be read as.
fn edge_number(rng: &mut StdRng) -> Value {
    let n: &[Value] = &[
        json!(0),
        json!(1),
        json!(-1),
        json!(2),
        json!(i32::MAX),
        json!(i32::MIN),
        json!(u32::MAX),
        json!(u64::from(u32::MAX) + 1),
        json!(i64::MAX),
        json!(i64::MIN),
        json!(u64::MAX),
        json!(0.5),
        json!(-0.0),
        json!(1e300),
        json!(-1e300),
        json!(2.5e-320),
        json!(21_000_000u64 * 100_000_000),
        json!(21_000_000u64 * 100_000_000 + 1),
    ];
    n.choose(rng).cloned().unwrap_or(Value::Null)
}

fn random_hex(rng: &mut StdRng, len: usize) -> String {
    let bytes: Vec<u8> = (0..len.div_ceil(2)).map(|_| rng.random()).collect();
    let mut s = bytes.to_lower_hex_string();
    s.truncate(len);
    s
}

/// Hex of a random length below `max`.
fn some_hex(rng: &mut StdRng, max: usize) -> String {
    let len = rng.random_range(0..max);
    random_hex(rng, len)
}

/// A short string of anything: hex, text, control characters, non-ASCII.
fn odd_string(rng: &mut StdRng) -> String {
    match rng.random_range(0..8) {
        0 => String::new(),
        1 => some_hex(rng, 80),
        2 => random_hex(rng, 64),
        3 => "zz".repeat(32),
        4 => "\u{0}\u{1b}[2J\u{7}é中\u{10ffff}".to_owned(),
        5 => "x".repeat(rng.random_range(100..5000)),
        6 => random_hex(rng, 64).to_uppercase(),
        _ => (0..rng.random_range(0..20))
            .map(|_| char::from(rng.random_range(0x20u8..0x7f)))
            .collect(),
    }
}

/// Any JSON value, nested at most `depth` deep.
fn odd_value(rng: &mut StdRng, depth: u32) -> Value {
    match rng.random_range(0..if depth == 0 { 5 } else { 8 }) {
        0 => Value::Null,
        1 => Value::Bool(rng.random()),
        2 => edge_number(rng),
        3 => json!(rng.random::<i64>()),
        4 => Value::String(odd_string(rng)),
        5 => Value::Array(
            (0..rng.random_range(0..4))
                .map(|_| odd_value(rng, depth - 1))
                .collect(),
        ),
        6 => {
            let mut m = Map::new();
            for _ in 0..rng.random_range(0..4) {
                let k = [
                    "mode",
                    "rules",
                    "longpollid",
                    "data",
                    "id",
                    "",
                    "capabilities",
                ]
                .choose(rng)
                .copied()
                .unwrap_or("");
                m.insert(k.to_owned(), odd_value(rng, depth - 1));
            }
            Value::Object(m)
        }
        _ => nested(rng.random_range(1..40), odd_value(rng, 0)),
    }
}

/// `inner` inside `depth` arrays or objects.
fn nested(depth: usize, inner: Value) -> Value {
    (0..depth).fold(inner, |v, i| {
        if i % 2 == 0 {
            json!([v])
        } else {
            json!({ "a": v })
        }
    })
}

/// Byte edits: replace, insert, delete, truncate.
fn mutate_bytes(rng: &mut StdRng, bytes: &mut Vec<u8>, edits: usize) {
    for _ in 0..edits {
        let at = rng.random_range(0..=bytes.len());
        match rng.random_range(0..4) {
            0 if at < bytes.len() => bytes[at] ^= 1 << rng.random_range(0..8),
            1 => bytes.insert(at, rng.random()),
            2 if at < bytes.len() => {
                bytes.remove(at);
            }
            3 => bytes.truncate(at),
            _ => {}
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The JSON-RPC dispatcher

const METHODS: [&str; 9] = [
    "getblocktemplate",
    "submitblock",
    "getblockcount",
    "getbestblockhash",
    "getblockhash",
    "getblockheader",
    "getblock",
    "getblockchaininfo",
    "getmininginfo",
];

/// What the generator knows of the chain, to aim some inputs at real blocks.
struct ChainView {
    height: u32,
    tip: BlockHash,
    genesis: BlockHash,
    /// A valid block for the tip, to mutate (and to submit at the end).
    next_block: Vec<u8>,
    /// A real mainnet block (tests/data/blocks, height 170).
    mainnet: Vec<u8>,
}

fn hash_param(rng: &mut StdRng, view: &ChainView) -> Value {
    match rng.random_range(0..6) {
        0 => json!(view.tip.to_string()),
        1 => json!(view.genesis.to_string()),
        2 => json!(random_hex(rng, 64)),
        3 => {
            let mut s = view.tip.to_string();
            s.truncate(rng.random_range(0..64));
            json!(s)
        }
        _ => odd_value(rng, 2),
    }
}

fn block_hex(rng: &mut StdRng, view: &ChainView) -> Value {
    let mut bytes = if rng.random_bool(0.7) {
        view.next_block.clone()
    } else {
        view.mainnet.clone()
    };
    match rng.random_range(0..10) {
        // The block as it is: the valid one is accepted, the mainnet one refused.
        0 => {}
        // Hex that is not quite hex.
        1 => {
            let mut text = bytes.to_lower_hex_string().into_bytes();
            mutate_bytes(rng, &mut text, 2);
            return json!(String::from_utf8_lossy(&text));
        }
        2 => return json!(some_hex(rng, 400)),
        3 => return odd_value(rng, 2),
        // A header field changed: the header's proof of work may still hold.
        4 => {
            let at = rng.random_range(0..80.min(bytes.len()));
            bytes[at] ^= 1 << rng.random_range(0..8);
        }
        _ => {
            let edits = rng.random_range(1..4);
            mutate_bytes(rng, &mut bytes, edits);
        }
    }
    json!(bytes.to_lower_hex_string())
}

fn params_for(rng: &mut StdRng, method: &str, view: &ChainView) -> Option<Value> {
    // Now and then params that are not an array, or none at all.
    match rng.random_range(0..20) {
        0 => return None,
        1 => return Some(odd_value(rng, 2)),
        _ => {}
    }
    let mut p: Vec<Value> = match method {
        "getblocktemplate" => match rng.random_range(0..4) {
            0 => vec![],
            1 => vec![odd_value(rng, 3)],
            _ => {
                let mut req = Map::new();
                if rng.random_bool(0.7) {
                    let mode = match rng.random_range(0..4) {
                        0 => json!("proposal"),
                        1 => odd_value(rng, 1),
                        _ => json!("template"),
                    };
                    req.insert("mode".into(), mode);
                }
                if rng.random_bool(0.5) {
                    req.insert("rules".into(), json!(["segwit"]));
                }
                if rng.random_bool(0.3) {
                    // Never the current tip's id: that longpoll rightly waits for a new block
                    // (up to two minutes), which the generator cannot promise.
                    let id = match rng.random_range(0..3) {
                        0 => json!(view.genesis.to_string()),
                        1 => json!(random_hex(rng, 64)),
                        _ => odd_value(rng, 1),
                    };
                    if id != json!(view.tip.to_string()) {
                        req.insert("longpollid".into(), id);
                    }
                }
                vec![Value::Object(req)]
            }
        },
        "submitblock" => vec![block_hex(rng, view)],
        "getblockhash" => vec![match rng.random_range(0..4) {
            0 => json!(view.height),
            1 => json!(view.height + 1),
            2 => json!(rng.random_range(0..=view.height)),
            _ => odd_value(rng, 1),
        }],
        "getblockheader" | "getblock" => {
            let mut p = vec![hash_param(rng, view)];
            if rng.random_bool(0.6) {
                p.push(match rng.random_range(0..5) {
                    0 => json!(0),
                    1 => json!(1),
                    2 => json!(2),
                    3 => json!(rng.random::<bool>()),
                    _ => odd_value(rng, 1),
                });
            }
            p
        }
        _ => (0..rng.random_range(0..3))
            .map(|_| odd_value(rng, 2))
            .collect(),
    };
    // Extra parameters nobody asked for.
    if rng.random_range(0..10) == 0 {
        p.push(odd_value(rng, 2));
    }
    Some(Value::Array(p))
}

fn call(rng: &mut StdRng, view: &ChainView) -> Value {
    if rng.random_range(0..30) == 0 {
        // Not an object at all.
        return odd_value(rng, 3);
    }
    let method = match rng.random_range(0..12) {
        0 => json!([
            "getblockcount ",
            "GETBLOCKCOUNT",
            "stop",
            "",
            "help",
            "getblock\u{0}"
        ]
        .choose(rng)
        .copied()
        .unwrap_or("")),
        1 => odd_value(rng, 1),
        _ => json!(METHODS.choose(rng).copied().unwrap_or("getblockcount")),
    };
    let mut c = Map::new();
    if rng.random_range(0..20) != 0 {
        c.insert("method".into(), method.clone());
    }
    if let Some(p) = params_for(rng, method.as_str().unwrap_or(""), view) {
        c.insert("params".into(), p);
    }
    match rng.random_range(0..6) {
        0 => {}
        1 => {
            c.insert("id".into(), odd_value(rng, 3));
        }
        _ => {
            c.insert("id".into(), json!(rng.random::<u32>()));
        }
    }
    if rng.random_bool(0.3) {
        c.insert("jsonrpc".into(), json!(["1.0", "2.0", "x"].choose(rng)));
    }
    Value::Object(c)
}

/// A request body: one call, a batch, deep nesting, or bytes that are not JSON.
fn body(rng: &mut StdRng, view: &ChainView) -> Vec<u8> {
    match rng.random_range(0..40) {
        0..=29 => serde_json::to_vec(&call(rng, view)).unwrap_or_default(),
        30..=34 => {
            let calls: Vec<Value> = (0..rng.random_range(0..8))
                .map(|_| call(rng, view))
                .collect();
            serde_json::to_vec(&calls).unwrap_or_default()
        }
        // Nested past serde_json's recursion limit (128) as well as within it.
        35 => {
            let depth = rng.random_range(1..300);
            let mut s = "[".repeat(depth);
            s.push_str(&"]".repeat(depth));
            s.into_bytes()
        }
        36 => {
            let inner = json!({"method": "getblockcount", "id": 1});
            serde_json::to_vec(&nested(rng.random_range(1..120), inner)).unwrap_or_default()
        }
        37 => (0..rng.random_range(0..200))
            .map(|_| rng.random())
            .collect(),
        _ => {
            let mut b = serde_json::to_vec(&call(rng, view)).unwrap_or_default();
            let edits = rng.random_range(1..4);
            mutate_bytes(rng, &mut b, edits);
            b
        }
    }
}

/// The id a reply must carry for `call`.
fn expected_id(call: &Value) -> Value {
    call.get("id").cloned().unwrap_or(Value::Null)
}

/// One reply object's shape; returns whether it is a success (error null).
fn check_reply(reply: &Value, call: Option<&Value>) -> Result<bool, String> {
    let o = reply.as_object().ok_or("reply is not an object")?;
    let (Some(result), Some(error)) = (o.get("result"), o.get("error")) else {
        return Err("reply lacks result or error".into());
    };
    if !o.contains_key("id") {
        return Err("reply has no id".into());
    }
    if let Some(call) = call {
        if o["id"] != expected_id(call) {
            return Err(format!("id {} echoed as {}", expected_id(call), o["id"]));
        }
    }
    match error {
        Value::Null => Ok(true),
        Value::Object(e) => {
            if !result.is_null() {
                return Err("both result and error".into());
            }
            if !e.get("code").is_some_and(Value::is_i64) {
                return Err("error code is not an integer".into());
            }
            let message = e
                .get("message")
                .and_then(Value::as_str)
                .ok_or("no message")?;
            // `blocking` turns a panicked task into this: a panic all the same.
            if message.starts_with("internal error") {
                return Err(format!("a task failed: {message}"));
            }
            Ok(false)
        }
        other => Err(format!("error is {other}")),
    }
}

/// The status bitcoind gives a single call's reply.
fn expected_status(reply: &Value) -> u16 {
    match reply["error"]["code"].as_i64() {
        None => 200,
        Some(-32601) => 404,
        Some(-32600) => 400,
        Some(_) => 500,
    }
}

/// Check a whole answer; returns how many `submitblock` calls in it were answered with null
/// (accepted).
fn check_answer(body: &[u8], status: u16, reply: &[u8]) -> Result<u32, String> {
    let reply: Value =
        serde_json::from_slice(reply).map_err(|e| format!("reply is not JSON: {e}"))?;
    let accepted = |call: &Value, r: &Value| {
        // bitcoind's submitblock: null when accepted, else the reason as a string.
        call.get("method") == Some(&json!("submitblock"))
            && r["error"].is_null()
            && r["result"].is_null()
    };
    match serde_json::from_slice::<Value>(body) {
        Err(_) => {
            check_reply(&reply, None)?;
            if status != 500 || reply["error"]["code"] != -32700 || !reply["id"].is_null() {
                return Err(format!("a parse error answered {status} {reply}"));
            }
            Ok(0)
        }
        Ok(Value::Array(calls)) => {
            let replies = reply.as_array().ok_or("a batch answered with no array")?;
            if status != 200 || replies.len() != calls.len() {
                return Err(format!(
                    "batch of {} answered {status} {reply}",
                    calls.len()
                ));
            }
            let mut n = 0;
            for (c, r) in calls.iter().zip(replies) {
                check_reply(r, Some(c))?;
                n += u32::from(accepted(c, r));
            }
            Ok(n)
        }
        Ok(c) => {
            check_reply(&reply, Some(&c))?;
            if status != expected_status(&reply) {
                return Err(format!("status {status} for {reply}"));
            }
            Ok(u32::from(accepted(&c, &reply)))
        }
    }
}

async fn rpc(core: &Arc<NodeCore>, body: Value) -> Value {
    let (status, reply) = handle_json_rpc(core, &serde_json::to_vec(&body).unwrap()).await;
    assert_eq!(status, 200, "{body} → {}", String::from_utf8_lossy(&reply));
    serde_json::from_slice(&reply).unwrap()
}

/// A valid block for the core's tip, serialized.
fn next_block(core: &NodeCore) -> Vec<u8> {
    let payout = ScriptBuf::new_op_return([0x42; 4]);
    serialize(&solo::mine(&core.template(), &payout, [1, 2, 3, 4]))
}

/// The lookups agree with the tip, and the store verifies.
async fn check_chain(core: &Arc<NodeCore>, height: u32) {
    let (h, tip) = core.tip();
    assert_eq!(h, height, "the chain moved without an accepted submitblock");
    let count = rpc(core, json!({"method": "getblockcount", "id": 1})).await;
    assert_eq!(count["result"], json!(height));
    let best = rpc(core, json!({"method": "getbestblockhash", "id": 2})).await;
    assert_eq!(best["result"], json!(tip.to_string()));
    let at = rpc(
        core,
        json!({"method": "getblockhash", "params": [height], "id": 3}),
    )
    .await;
    assert_eq!(at["result"], json!(tip.to_string()));
    let header = rpc(
        core,
        json!({"method": "getblockheader", "params": [tip.to_string()]}),
    )
    .await;
    assert_eq!(header["result"]["height"], json!(height));
    let stored = core
        .with_chain(|c| c.verify_stored())
        .expect("the store verifies");
    assert_eq!(
        stored,
        height + 1,
        "every block from genesis to the tip is stored"
    );
}

#[test]
fn rpc_dispatcher_survives_mutated_calls() {
    let dir = TempDir::new("rpc-fuzz");
    let chain = Chain::open(&chain_dir(&dir.0), ChainParams::regtest()).expect("chain opens");
    let core = NodeCore::new(chain);
    let mainnet = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/blocks/0000170.hex"
    ))
    .expect("tests/data/blocks/0000170.hex");
    let mainnet = Vec::from_hex(mainnet.trim()).expect("hex");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let cases = fuzz::cases(RPC_BODIES);
    let seed = fuzz::seed(1);
    let mut rng = StdRng::seed_from_u64(seed);
    let (height, tip) = core.tip();
    let mut view = ChainView {
        height,
        tip,
        genesis: tip,
        next_block: next_block(&core),
        mainnet,
    };
    let mut accepted_blocks = 0;
    runtime.block_on(async {
        for i in 0..cases {
            let input = body(&mut rng, &view);
            // Its own task, so a panic is caught and shown with its input.
            let task = {
                let core = Arc::clone(&core);
                let input = input.clone();
                tokio::spawn(async move { handle_json_rpc(&core, &input).await })
            };
            let shown = String::from_utf8_lossy(&input[..input.len().min(2000)]).into_owned();
            let (status, reply) = match task.await {
                Ok(r) => r,
                Err(e) => panic!("input {i} (seed {seed}) panicked: {e}\n{shown}"),
            };
            let accepted = check_answer(&input, status, &reply).unwrap_or_else(|e| {
                panic!(
                    "input {i} (seed {seed}): {e}\n{shown}\n→ {status} {}",
                    String::from_utf8_lossy(&reply)
                )
            });
            if accepted > 0 {
                accepted_blocks += accepted;
                view.height += accepted;
                (_, view.tip) = core.tip();
                view.next_block = next_block(&core);
            }
            if i % 5000 == 0 || accepted > 0 {
                check_chain(&core, view.height).await;
            }
        }
        check_chain(&core, view.height).await;
        // It still takes a valid block.
        let hex = view.next_block.to_lower_hex_string();
        let r = rpc(
            &core,
            json!({"method": "submitblock", "params": [hex], "id": 9}),
        )
        .await;
        assert_eq!(r["result"], Value::Null, "{r}");
        assert_eq!(r["error"], Value::Null, "{r}");
        check_chain(&core, view.height + 1).await;
    });
    println!(
        "{cases} bodies from seed {seed}; {accepted_blocks} blocks accepted along the way (mutated header fields that still met the target)"
    );
}

// ---------------------------------------------------------------------------------------------
// The getblocktemplate decoder

/// The templates recorded from real nodes (tests/data/gbt).
fn real_templates() -> Vec<Value> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/gbt");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("tests/data/gbt")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    files
        .iter()
        .map(|p| {
            let v: Value = serde_json::from_str(&std::fs::read_to_string(p).expect("read"))
                .expect("capture is JSON");
            v["template"].clone()
        })
        .collect()
}

const FIELDS: [&str; 12] = [
    "version",
    "previousblockhash",
    "height",
    "bits",
    "target",
    "curtime",
    "mintime",
    "coinbasevalue",
    "coinbaseaux",
    "rules",
    "default_witness_commitment",
    "transactions",
];

/// Bits at the edges of what `from_gbt` accepts, and the target of each.
fn edge_bits(rng: &mut StdRng) -> u32 {
    *[
        0x207f_ffff,
        0x2080_0000,
        0x2100_0001,
        0x1d00_ffff,
        0x1e03_77ae,
        0x0300_0001,
        0x0100_0001,
        0x0000_0000,
        0x0080_0000,
        0x2000_0001,
        0xff7f_ffff,
        0x1700_0000,
        rng.random(),
    ]
    .choose(rng)
    .unwrap_or(&0)
}

fn mutate_template(rng: &mut StdRng, t: &mut Value, all: &[Value]) {
    let Some(o) = t.as_object_mut() else { return };
    let field = *FIELDS.choose(rng).unwrap_or(&"bits");
    match rng.random_range(0..12) {
        0 => {
            o.remove(field);
        }
        1 => {
            o.insert(field.into(), odd_value(rng, 2));
        }
        2 => {
            o.insert(field.into(), edge_number(rng));
        }
        3 => {
            let len = *[0, 1, 7, 8, 9, 63, 64, 65, 200].choose(rng).unwrap_or(&8);
            o.insert(field.into(), json!(random_hex(rng, len)));
        }
        4 => {
            if let Some(Value::String(s)) = o.get_mut(field) {
                let cut = rng.random_range(0..=s.chars().count());
                *s = s.chars().take(cut).collect();
            }
        }
        // Bits at an edge, with the target that matches them (so the rest is reached) or not.
        5 => {
            let bits = edge_bits(rng);
            o.insert("bits".into(), json!(format!("{bits:08x}")));
            let target = Target::from_compact(CompactTarget::from_consensus(bits));
            if rng.random_bool(0.7) {
                o.insert(
                    "target".into(),
                    json!(target.to_be_bytes().to_lower_hex_string()),
                );
            }
        }
        6 => {
            let flags = match rng.random_range(0..3) {
                0 => some_hex(rng, 250),
                1 => odd_string(rng),
                _ => String::new(),
            };
            o.insert("coinbaseaux".into(), json!({ "flags": flags }));
        }
        7 => {
            let rules = match rng.random_range(0..4) {
                0 => json!(["csv", "segwit"]),
                1 => json!(["!segwit", "taproot"]),
                2 => json!([]),
                _ => odd_value(rng, 2),
            };
            o.insert("rules".into(), rules);
        }
        // The transactions: drop, repeat, swap, corrupt one, or many copies.
        8 => {
            if let Some(Value::Array(txs)) = o.get_mut("transactions") {
                if !txs.is_empty() {
                    let i = rng.random_range(0..txs.len());
                    match rng.random_range(0..6) {
                        0 => {
                            txs.remove(i);
                        }
                        1 => {
                            let tx = txs[i].clone();
                            txs.push(tx);
                        }
                        2 => {
                            let j = rng.random_range(0..txs.len());
                            txs.swap(i, j);
                        }
                        3 => {
                            let key = *["data", "txid", "hash", "fee"]
                                .choose(rng)
                                .unwrap_or(&"data");
                            txs[i][key] = odd_value(rng, 1);
                        }
                        4 => {
                            let tx = txs[i].clone();
                            let n = rng.random_range(1..3000);
                            txs.extend(std::iter::repeat_n(tx, n));
                        }
                        _ => {
                            if let Some(data) = txs[i]["data"].as_str() {
                                let mut bytes = Vec::from_hex(data).unwrap_or_default();
                                let edits = rng.random_range(1..3);
                                mutate_bytes(rng, &mut bytes, edits);
                                txs[i]["data"] = json!(bytes.to_lower_hex_string());
                            }
                        }
                    }
                }
            }
        }
        // A field from another capture.
        9 => {
            if let Some(other) = all.choose(rng).and_then(|a| a.get(field)).cloned() {
                o.insert(field.into(), other);
            }
        }
        10 => {
            let s = o.get(field).map(Value::to_string).unwrap_or_default();
            o.insert(field.into(), json!(s));
        }
        _ => {
            o.insert("longpollid".into(), odd_value(rng, 1));
        }
    }
}

/// The invariants of an accepted template; `Err` says which one broke.
fn check_template(t: &BlockTemplate) -> Result<(), String> {
    // The target is the one bits encode, within what any chain allows.
    if t.target != Target::from_compact(t.bits) {
        return Err(format!(
            "target {:?} is not that of bits {:08x}",
            t.target,
            t.bits.to_consensus()
        ));
    }
    if t.target == Target::ZERO || t.target > Target::MAX_ATTAINABLE_REGTEST {
        return Err(format!(
            "target of bits {:08x} accepted",
            t.bits.to_consensus()
        ));
    }
    if t.coinbase_value > Amount::MAX_MONEY {
        return Err(format!("coinbase value {}", t.coinbase_value));
    }
    for (i, tx) in t.transactions.iter().enumerate() {
        let decoded: Transaction =
            deserialize(&tx.data).map_err(|e| format!("tx {i} does not decode: {e}"))?;
        if decoded.compute_txid() != tx.txid || decoded.compute_wtxid() != tx.wtxid {
            return Err(format!("tx {i}'s ids do not match its data"));
        }
    }
    // Its solo job: built, or refused for a reason the miner can state.
    let template = Arc::new(t.clone());
    let payout = ScriptBuf::new_op_return([7; 8]);
    let solo = match template.solo_job("f".into(), &payout, [1, 2, 3, 4]) {
        Ok(s) => s,
        Err(TemplateError::ScriptSigTooLong(_)) => return Ok(()),
        Err(e) => return Err(format!("no job: {e}")),
    };
    let roll = Roll {
        extranonce2: Some(Extranonce2::new(5, 4).map_err(|e| e.to_string())?),
        ntime: solo.job.ntime,
        version_bits: 0,
    };
    let header = solo
        .job
        .header(&roll, 0)
        .map_err(|e| format!("no header: {e}"))?;
    // The coinbase decodes, pays the whole value, and the branch gives the whole tree's root.
    let coinbase_bytes = solo
        .job
        .coinbase
        .build(
            &roll
                .extranonce2
                .ok_or("a template's roll names no extranonce2")?,
        )
        .map_err(|e| format!("no coinbase: {e}"))?;
    let coinbase: Transaction =
        deserialize(&coinbase_bytes).map_err(|e| format!("coinbase does not decode: {e}"))?;
    if !coinbase.is_coinbase() {
        return Err("the coinbase is not a coinbase".into());
    }
    let paid: u64 = coinbase.output.iter().map(|o| o.value.to_sat()).sum();
    if paid != t.coinbase_value.to_sat() {
        return Err("the coinbase does not pay the coinbase value".into());
    }
    let leaves = std::iter::once(coinbase.compute_txid())
        .chain(t.transactions.iter().map(|tx| tx.txid))
        .map(|txid| TxMerkleNode::from_raw_hash(txid.to_raw_hash()));
    let root = bitcoin::merkle_tree::calculate_root(leaves);
    if root != Some(header.merkle_root) {
        return Err("the merkle branch does not give the tree's root".into());
    }
    // An easy target: solve it, and the block is a valid block.
    if t.target >= Target::from_compact(CompactTarget::from_consensus(0x2000_ffff)) {
        let solved = (0..200u32).find(|&nonce| {
            let mut h = header;
            h.nonce = nonce;
            hash_meets_target(&h.block_hash(), &t.target)
        });
        if let Some(nonce) = solved {
            let share = solo.job.share(&roll, nonce);
            let block: Block = solo
                .block(&share)
                .map_err(|e| format!("no block: {e}"))?
                .decode()
                .map_err(|e| format!("block does not decode: {e}"))?;
            if !block.check_merkle_root() {
                return Err("block's merkle root is wrong".into());
            }
            if t.segwit && !block.check_witness_commitment() {
                return Err("block's witness commitment is wrong".into());
            }
        }
    }
    // What the node core serves reads back as the same template.
    {
        let again =
            BlockTemplate::from_gbt(&t.to_gbt()).map_err(|e| format!("to_gbt unreadable: {e}"))?;
        let same = again.same_work(t)
            && again.height == t.height
            && again.cur_time == t.cur_time
            && again.min_time == t.min_time
            && again.coinbase_aux == t.coinbase_aux
            && again.segwit == t.segwit
            && again.witness_commitment() == t.witness_commitment()
            && again.longpoll_id == t.longpoll_id;
        if !same {
            return Err(format!("to_gbt reads back differently: {}", t.to_gbt()));
        }
    }
    Ok(())
}

#[test]
fn template_decoder_survives_mutated_templates() {
    let real = real_templates();
    assert!(real.len() >= 9, "the captures in tests/data/gbt");
    let cases = fuzz::cases(TEMPLATES);
    let seed = fuzz::seed(2);
    let mut rng = StdRng::seed_from_u64(seed);
    let (mut accepted, mut refused) = (0u32, 0u32);
    for i in 0..cases {
        let mut gbt = real.choose(&mut rng).cloned().unwrap_or(Value::Null);
        match rng.random_range(0..20) {
            // Not an object, or a cut-down serialization of one.
            0 => gbt = odd_value(&mut rng, 3),
            1 => {
                let mut text = gbt.to_string().into_bytes();
                let cut = rng.random_range(0..=text.len());
                text.truncate(cut);
                gbt = serde_json::from_slice(&text).unwrap_or(Value::Null);
            }
            _ => {
                for _ in 0..rng.random_range(1..5) {
                    mutate_template(&mut rng, &mut gbt, &real);
                }
            }
        }
        match BlockTemplate::from_gbt(&gbt) {
            Ok(t) => {
                accepted += 1;
                if let Err(e) = check_template(&t) {
                    let shown: String = gbt.to_string().chars().take(3000).collect();
                    panic!("input {i} (seed {seed}): accepted, but {e}\n{shown}");
                }
            }
            Err(_) => refused += 1,
        }
    }
    println!("{cases} templates from seed {seed}: {accepted} accepted, {refused} refused");
    // Both paths are exercised, not just the refusals.
    assert!(accepted > cases / 20, "only {accepted} of {cases} accepted");
    assert!(refused > cases / 20, "only {refused} of {cases} refused");
}
