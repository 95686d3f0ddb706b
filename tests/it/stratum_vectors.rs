//! Real Stratum V1 material (tests/data/stratum.json, copied from ../shared/vectors; every entry
//! names its public source): a full session from the original Stratum description that solved a
//! testnet block, captured public-pool and ckpool shares (some with BIP310 version rolling),
//! ESP-Miner's nonce checks and a real mainnet block split into a job.
//!
//! Each vector is replayed through the parser as a session would see it (subscribe result,
//! configure result, set_difficulty, notify), the job is built from the parsed notify, and the
//! header, hash, share and `mining.submit` must be exactly what the pool saw.

use bitcoin::consensus::encode::{deserialize, serialize};
use bitcoin::hashes::Hash;
use bitcoin::hex::{DisplayHex, FromHex};
use bitcoin::{Transaction, TxMerkleNode};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use wgminer::pow::scan::scan;
use wgminer::pow::{hash_difficulty, target_from_difficulty, ScanPath};
use wgminer::stratum::{parse_line, ClientRequest, Message, Notify, NotifyContext, ServerMethod};
use wgminer::work::{Extranonce2, Job, NonceRange, Roll, WorkUnit};

const VECTOR_COUNT: usize = 9;

fn vectors() -> Vec<Value> {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/stratum.json"
    ))
    .expect("tests/data/stratum.json is part of the repository");
    let v: Value = serde_json::from_str(&text).expect("stratum.json is valid JSON");
    let all = v.as_array().expect("an array of vectors").clone();
    assert_eq!(all.len(), VECTOR_COUNT);
    all
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} is a string"))
}

fn u32_hex(v: &Value, key: &str) -> u32 {
    u32::from_str_radix(s(v, key), 16).expect("big-endian hex u32")
}

/// What replaying a vector's pool lines leaves: the job as the session would build it, the
/// miner's roll and nonce from the recorded share, and the recorded submit params if any.
struct Replayed {
    id: String,
    job: Job,
    roll: Roll,
    nonce: u32,
    recorded_submit: Option<Vec<Value>>,
}

/// Feed every recorded line through the parser, tracking what a session tracks, and build the
/// job from the notify. Vectors whose source has no raw notify get one written from their fields.
fn replay(v: &Value) -> Replayed {
    let id = s(v, "id").to_owned();
    let en1 = Vec::<u8>::from_hex(s(v, "extranonce1")).expect("extranonce1 hex");
    let size = v["extranonce2_size"].as_u64().expect("size") as usize;
    let mut ctx = NotifyContext::new(en1, size);
    let mut difficulty_seen = false;
    let mut mask_seen = false;
    let mut notify: Option<(Notify, NotifyContext)> = None;
    let mut recorded_submit = None;
    for line in v["messages"].as_array().expect("messages") {
        let line = line.as_str().expect("a message is a line of text");
        let msg = parse_line(line.as_bytes()).unwrap_or_else(|e| panic!("{id}: {line}: {e}"));
        match msg {
            Message::Response(r) => {
                if let Ok(sub) = r.subscribe_result() {
                    assert_eq!(sub.extranonce1.to_lower_hex_string(), s(v, "extranonce1"));
                    assert_eq!(sub.extranonce2_size, size, "{id}");
                    ctx.extranonce1 = sub.extranonce1;
                    ctx.extranonce2_size = sub.extranonce2_size;
                } else if let Ok(conf) = r.configure_result() {
                    ctx.version_mask = conf.version_rolling_mask.expect("rolling accepted");
                    mask_seen = true;
                }
            }
            Message::Request(req) => match req.method {
                ServerMethod::SetDifficulty(d) => {
                    ctx.difficulty = d;
                    difficulty_seen = true;
                }
                ServerMethod::Notify(n) => notify = Some((n, ctx.clone())),
                // The miner's own requests parse as methods a miner does not serve.
                ServerMethod::Other { method, .. } => {
                    if method == "mining.submit" {
                        let raw: Value = serde_json::from_str(line).expect("json");
                        recorded_submit = Some(raw["params"].as_array().expect("params").clone());
                    }
                }
                other => panic!("{id}: unexpected {other:?}"),
            },
        }
    }
    let (notify, mut ctx) = notify.unwrap_or_else(|| {
        // No raw notify in the source: write the line a pool would have sent.
        let n = &v["notify"];
        let job_id = n["job_id"].as_str().unwrap_or(&id);
        let line = json!({"id": null, "method": "mining.notify", "params": [
            job_id, n["prevhash"], n["coinb1"], n["coinb2"], n["merkle_branch"], n["version"],
            n["nbits"], n["ntime"], n["clean_jobs"].as_bool().unwrap_or(false)]})
        .to_string();
        match parse_line(line.as_bytes()) {
            Ok(Message::Request(r)) => match r.method {
                ServerMethod::Notify(n) => (n, ctx.clone()),
                other => panic!("{other:?}"),
            },
            other => panic!("{id}: {other:?}"),
        }
    });
    // Values the source gives as constants rather than as protocol lines.
    if !mask_seen {
        if let Some(mask) = v["version_mask"].as_str() {
            ctx.version_mask = u32::from_str_radix(mask, 16).expect("mask hex");
        }
    }
    if !difficulty_seen {
        if let Some(d) = v["share_difficulty"].as_f64() {
            ctx.difficulty = d;
        } else if let Some(d) = v["expected_difficulty_from_source"].as_f64() {
            ctx.difficulty = d;
        }
    }
    let mut job = notify.to_job(&ctx).unwrap_or_else(|e| panic!("{id}: {e}"));
    if v["share_difficulty"].is_null() && v["expected_difficulty_from_source"].is_null() {
        // No pool difficulty in the source: these shares are blocks of their chain.
        job.share_target = job.network_target();
    }
    let sub = &v["submit"];
    let roll = Roll {
        extranonce2: Some(Extranonce2::from_hex(s(sub, "extranonce2")).expect("extranonce2")),
        ntime: u32_hex(sub, "ntime"),
        version_bits: sub["version_bits"]
            .as_str()
            .map(|b| u32::from_str_radix(b, 16).expect("version bits hex"))
            .unwrap_or(0),
    };
    Replayed {
        id,
        job,
        roll,
        nonce: u32_hex(sub, "nonce"),
        recorded_submit,
    }
}

fn with_coinbase(all: &[Value]) -> Vec<&Value> {
    all.iter()
        .filter(|v| v["kind"] != "header_share_check")
        .collect()
}

#[test]
fn vectors_reproduce_coinbase_merkle_root_header_and_hash() {
    let all = vectors();
    let vs = with_coinbase(&all);
    assert_eq!(vs.len(), VECTOR_COUNT - 1);
    for v in vs {
        let r = replay(v);
        let (job, x) = (&r.job, &v["expected"]);
        let e2 = r.roll.extranonce2.expect("a V1 roll names an extranonce2");
        let coinbase = job.coinbase.build(&e2).unwrap();
        assert_eq!(
            coinbase.to_lower_hex_string(),
            s(x, "coinbase_hex"),
            "{}",
            r.id
        );
        let txid = job.coinbase_txid(&e2).unwrap();
        assert_eq!(txid.to_string(), s(x, "coinbase_txid"), "{}", r.id);
        let root = job.merkle_root_from(txid);
        assert_eq!(root.to_string(), s(x, "merkle_root"), "{}", r.id);
        let header = job.header(&r.roll, r.nonce).unwrap();
        assert_eq!(
            serialize(&header).to_lower_hex_string(),
            s(x, "header_hex"),
            "{}",
            r.id
        );
        assert_eq!(header.block_hash().to_string(), s(x, "hash"), "{}", r.id);
        assert_eq!(
            job.prev_hash.to_string(),
            s(x, "prevhash_display"),
            "{}",
            r.id
        );
        if let Some(root_internal) = v["expected_merkle_root_internal_hex_from_source"].as_str() {
            assert_eq!(root.to_byte_array().to_lower_hex_string(), root_internal);
        }
        if let Some(segwit) = v["coinbase_segwit_hex_from_source"].as_str() {
            // The pool's coinbase is the witness-stripped serialization of the real one.
            let tx: Transaction = deserialize(&Vec::<u8>::from_hex(segwit).unwrap()).unwrap();
            assert_eq!(tx.compute_txid(), txid, "{}", r.id);
        }
    }
}

#[test]
fn shares_meet_their_share_target_and_blocks_the_network_target() {
    for v in with_coinbase(&vectors()) {
        let r = replay(v);
        let share = r.job.share(&r.roll, r.nonce);
        let hash = r
            .job
            .check_share(&share)
            .unwrap_or_else(|e| panic!("{}: {e}", r.id));
        let prepared = r.job.clone().prepare().unwrap();
        assert_eq!(prepared.check_share(&share), Ok(hash), "{}", r.id);
        let is_block = r.job.network_target().is_met_by(hash);
        assert_eq!(
            Some(is_block),
            v["expected"]["meets_network_target"].as_bool(),
            "{}",
            r.id
        );
        if let Some(block) = v["expected_block_hash_from_source"].as_str() {
            assert!(is_block && hash.to_string() == block, "{}", r.id);
        }
        if let Some(d) = v["expected_difficulty_from_source"].as_f64() {
            assert_eq!(hash_difficulty(&hash).floor(), d, "{}", r.id);
        }
        // One more nonce is (overwhelmingly) not a share: the check is not vacuous.
        let mut off = share.clone();
        off.nonce ^= 1;
        assert!(r.job.check_share(&off).is_err(), "{}", r.id);
    }
}

#[test]
fn submits_match_the_recorded_mining_submit() {
    let mut compared = 0;
    for v in with_coinbase(&vectors()) {
        let r = replay(v);
        let Some(recorded) = r.recorded_submit else {
            continue;
        };
        let worker = recorded[0].as_str().expect("worker").to_owned();
        let line = ClientRequest::Submit {
            worker,
            share: r.job.share(&r.roll, r.nonce),
        }
        .to_line(99);
        let ours: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(ours["method"], "mining.submit");
        assert_eq!(ours["params"].as_array(), Some(&recorded), "{}", r.id);
        compared += 1;
    }
    // slush, bitaxe/public-pool, public-pool replay and the three ckpool sessions.
    assert_eq!(compared, 6);
}

#[test]
fn work_unit_scan_finds_the_real_nonce() {
    for v in with_coinbase(&vectors()) {
        let r = replay(v);
        let prepared = r.job.clone().prepare().unwrap();
        let window = NonceRange::new(r.nonce.wrapping_sub(3000), 8192);
        let unit = prepared.work_unit(&r.roll, window).unwrap();
        assert_eq!(
            unit.header_with_nonce(r.nonce),
            wgminer::pow::header_bytes(&r.job.header(&r.roll, r.nonce).unwrap()),
            "{}",
            r.id
        );
        for path in [ScanPath::best(), ScanPath::Portable] {
            let mut hits = Vec::new();
            scan(path, &unit.pre, window.start, window.count, &mut hits);
            assert!(hits.contains(&r.nonce), "{} {path}: {hits:x?}", r.id);
            for &h in &hits {
                assert!(unit.verify(h).is_ok(), "{} {path}: {h:#x}", r.id);
            }
        }
        assert_eq!(
            unit.verify(r.nonce).unwrap().to_string(),
            s(&v["expected"], "hash")
        );
    }
}

/// The fast derivation against the reference on real jobs, over neighbouring rolls too.
#[test]
fn fast_derivation_matches_reference_on_real_jobs() {
    for v in with_coinbase(&vectors()) {
        let r = replay(v);
        let prepared = r.job.clone().prepare().unwrap();
        let e2 = r.roll.extranonce2.expect("a V1 roll names an extranonce2");
        let (start, size) = (e2.value(), e2.size());
        let span = if size == 8 {
            u64::MAX
        } else {
            (1u64 << (8 * size)) - 1
        };
        for k in 0..8u64 {
            let roll = Roll {
                extranonce2: Some(Extranonce2::new(start.wrapping_add(k) & span, size).unwrap()),
                ntime: r.roll.ntime + (k as u32 % 2),
                version_bits: if r.job.version_mask == 0 {
                    0
                } else {
                    (r.roll.version_bits ^ ((k as u32) << 13)) & r.job.version_mask
                },
            };
            let slow = wgminer::pow::header_bytes(&r.job.header(&roll, 7).unwrap());
            assert_eq!(prepared.header_bytes(&roll, 7).unwrap(), slow, "{}", r.id);
        }
    }
}

/// ESP-Miner's header-level check gives the merkle root itself, not the coinbase.
#[test]
fn header_only_vector_reproduces_hash_and_difficulty() {
    let all = vectors();
    let v = all
        .iter()
        .find(|v| v["kind"] == "header_share_check")
        .expect("one header-only vector");
    let n = &v["notify"];
    let line = json!({"id": null, "method": "mining.notify", "params": [
        "esp", n["prevhash"], "", "", [], n["version"], n["nbits"], n["ntime"], true]})
    .to_string();
    let Ok(Message::Request(req)) = parse_line(line.as_bytes()) else {
        panic!("notify parses")
    };
    let ServerMethod::Notify(notify) = req.method else {
        panic!("a notify")
    };
    let mut ctx = NotifyContext::new(vec![], 4);
    ctx.difficulty = v["expected_difficulty_from_source"].as_f64().unwrap();
    let job = notify.to_job(&ctx).unwrap();
    let root = TxMerkleNode::from_byte_array(
        <[u8; 32]>::from_hex(s(v, "merkle_root_internal_hex")).unwrap(),
    );
    let sub = &v["submit"];
    let nonce = u32_hex(sub, "nonce");
    let header = job
        .header_for_root(root, u32_hex(sub, "ntime"), 0, nonce)
        .unwrap();
    let x = &v["expected"];
    assert_eq!(serialize(&header).to_lower_hex_string(), s(x, "header_hex"));
    let hash = header.block_hash();
    assert_eq!(hash.to_string(), s(x, "hash"));
    assert_eq!(job.prev_hash.to_string(), s(x, "prevhash_display"));
    assert_eq!(hash_difficulty(&hash).floor(), 18.0);
    assert!(!job.network_target().is_met_by(hash));
    let target = target_from_difficulty(18.0).unwrap();
    let unit = WorkUnit::from_header(&header, target, NonceRange::new(nonce - 100, 1000));
    let mut hits = Vec::new();
    scan(
        ScanPath::best(),
        &unit.pre,
        unit.nonces.start,
        unit.nonces.count,
        &mut hits,
    );
    assert!(hits.contains(&nonce));
    assert_eq!(unit.verify(nonce), Ok(hash));
}

/// No input panics the parser or the job built from it: random bytes, random JSON, and real
/// lines with bytes flipped, cut or spliced.
#[test]
fn parser_never_panics_on_mutated_or_random_lines() {
    let all = vectors();
    let mut seeds: Vec<String> = all
        .iter()
        .flat_map(|v| v["messages"].as_array().cloned().unwrap_or_default())
        .filter_map(|m| m.as_str().map(str::to_owned))
        .collect();
    seeds.extend(
        [
            r#"{"id":null,"method":"mining.set_extranonce","params":["08000002",4]}"#,
            r#"{"id":null,"method":"mining.set_version_mask","params":["1fffe000"]}"#,
            r#"{"id":null,"method":"client.reconnect","params":["h",3333,5]}"#,
            r#"{"id":3,"method":"client.show_message","params":["hello"]}"#,
            r#"{"id":4,"method":"client.get_version","params":[]}"#,
        ]
        .map(str::to_owned),
    );
    let alphabet = br#"{}[]",:0123456789abcdefx.-e nulltruefalse\"#;
    let mut rng = StdRng::seed_from_u64(0x0057_474d_494e_4552);
    let mut parsed_ok = 0;
    for i in 0..60_000 {
        let line: Vec<u8> = match i % 4 {
            0 => (0..rng.random_range(0..200))
                .map(|_| rng.random())
                .collect(),
            1 => (0..rng.random_range(0..200))
                .map(|_| alphabet[rng.random_range(0..alphabet.len())])
                .collect(),
            _ => {
                let mut b = seeds[rng.random_range(0..seeds.len())].clone().into_bytes();
                for _ in 0..rng.random_range(1..6) {
                    if b.is_empty() {
                        break;
                    }
                    let at = rng.random_range(0..b.len());
                    match rng.random_range(0..4) {
                        0 => b[at] = alphabet[rng.random_range(0..alphabet.len())],
                        1 => b.truncate(at),
                        2 => {
                            b.remove(at);
                        }
                        _ => {
                            let other = seeds[rng.random_range(0..seeds.len())].as_bytes();
                            let from = rng.random_range(0..other.len());
                            b.splice(at..at, other[from..].iter().copied());
                        }
                    }
                }
                b
            }
        };
        if let Ok(msg) = parse_line(&line) {
            parsed_ok += 1;
            exercise(msg);
        }
    }
    assert!(
        parsed_ok > 1000,
        "mutations should still often parse: {parsed_ok}"
    );
}

/// Everything downstream of a parsed message must be panic-free too.
fn exercise(msg: Message) {
    match msg {
        Message::Response(r) => {
            let _ = (r.subscribe_result(), r.configure_result(), r.is_accepted());
        }
        Message::Request(req) => {
            if let ServerMethod::Notify(n) = req.method {
                let mut ctx = NotifyContext::new(vec![1, 2, 3, 4], 4);
                ctx.version_mask = 0x1fffe000;
                if let Ok(job) = n.to_job(&ctx) {
                    if let Ok(p) = job.prepare() {
                        let roll = Roll {
                            extranonce2: Some(Extranonce2::new(1, 4).unwrap()),
                            ntime: p.job().ntime,
                            version_bits: 0x2000,
                        };
                        let unit = p.work_unit(&roll, NonceRange::new(0, 16)).unwrap();
                        let _ = unit.verify(3);
                    }
                }
            }
        }
    }
}
