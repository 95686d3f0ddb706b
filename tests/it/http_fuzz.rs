//! The node RPC server's HTTP handling under 100,000 mutated requests: each input is written
//! into the server's own connection code (hyper with the server's settings, then the route's
//! credential check, body reading and the JSON-RPC dispatch on a real node core) over an
//! in-memory stream, and what comes back must be one well-formed HTTP reply or a clean close,
//! never a panic or a hang. Inputs are mutated from valid, authenticated seeds (single calls,
//! batches, chunked bodies, block submissions and proposals) so most get past the parser.
//! Seeded (rand's StdRng), so a failure names the case that reproduces it; set
//! `WGMINER_HTTP_FUZZ_CASES` and `WGMINER_HTTP_FUZZ_SEED` to run more or others.

use crate::support::solo;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bitcoin::hashes::Hash;
use bitcoin::hex::DisplayHex;
use bitcoin::ScriptBuf;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use solo::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wgminer::http::{basic_auth_header, Limits};
use wgminer::node::rpc_server::{serve_stream, COOKIE_USER};
use wgminer::node::{Chain, ChainParams, NodeCore};

const PASSWORD: &str = "fuzz-password";

/// Short timeouts: an input that stops short is cut quickly (the stream is kept open after
/// each input, as a real peer's would be, so a cut-short input waits for them).
const LIMITS: Limits = Limits {
    max_connections: 1,
    header_timeout: Duration::from_millis(20),
    body_timeout: Duration::from_millis(20),
    connection_timeout: Duration::from_secs(5),
    shutdown_grace: Duration::from_secs(1),
};

/// Bytes that mean something to an HTTP or JSON parser, spliced into inputs.
const TOKENS: &[&[u8]] = &[
    b"\r\n",
    b"\r\n\r\n",
    b"\n",
    b" ",
    b":",
    b"Content-Length: ",
    b"Content-Length: 0\r\n",
    b"Content-Length: +5\r\n",
    b"Content-Length: -1\r\n",
    b"Content-Length: 99999999999999999999\r\n",
    b"Transfer-Encoding: chunked\r\n",
    b"Transfer-Encoding: gzip, chunked\r\n",
    b"Expect: 100-continue\r\n",
    b"Connection: keep-alive\r\n",
    b"ffffffffffffffff",
    b"fffffffffffffffff",
    b"0\r\n\r\n",
    b"HTTP/1.0",
    b"HTTP/2.0",
    b"\0",
    b"\xff\xfe",
    b"{",
    b"}",
    b"[",
    b"]",
    b"\"",
    b",",
    b"null",
    b"-1",
    b"18446744073709551616",
    b"1e999",
    b"\"params\":",
    b"\"method\":\"getblocktemplate\"",
    b"\"method\":\"submitblock\"",
    b"\"method\":\"getblock\"",
    b"\"mode\":\"proposal\"",
    b"\"longpollid\":",
    b"Authorization: Basic \r\n",
    b"Authorization: bearer x\r\n",
];

/// Valid, authenticated requests to start from.
fn seeds(auth: &str, block_hex: &str, genesis: &str) -> Vec<Vec<u8>> {
    let post = |body: &str| {
        format!(
            "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {auth}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    };
    let zeros = "00".repeat(32);
    let bodies = [
        r#"{"jsonrpc":"1.0","id":1,"method":"getblockcount","params":[]}"#.to_owned(),
        r#"{"id":"x","method":"getblocktemplate","params":[{"rules":["segwit"]}]}"#.to_owned(),
        format!(r#"{{"id":2,"method":"getblocktemplate","params":[{{"longpollid":"{zeros}"}}]}}"#),
        format!(r#"{{"id":3,"method":"submitblock","params":["{block_hex}"]}}"#),
        format!(
            r#"{{"id":4,"method":"getblocktemplate","params":[{{"mode":"proposal","data":"{block_hex}"}}]}}"#
        ),
        format!(
            r#"[{{"id":1,"method":"getblockcount"}},{{"id":2,"method":"getblockhash","params":[0]}},{{"id":3,"method":"getblockheader","params":["{genesis}"]}},{{"id":4,"method":"getblock","params":["{genesis}",2]}}]"#
        ),
        format!(r#"{{"id":5,"method":"getblock","params":["{genesis}",0]}}"#),
        r#"{"id":6,"method":"getblockchaininfo"}"#.to_owned(),
        r#"{"id":7,"method":"getmininginfo","params":null}"#.to_owned(),
        r#"{"id":8,"method":"nosuchmethod","params":[1,2,3]}"#.to_owned(),
    ];
    let mut seeds: Vec<Vec<u8>> = bodies.iter().map(|b| post(b)).collect();
    let body = r#"{"id":9,"method":"getbestblockhash"}"#;
    seeds.push(
        format!(
            "POST / HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{}\r\n{:x}\r\n{}\r\n0\r\n\r\n",
            10,
            &body[..10],
            body.len() - 10,
            &body[10..]
        )
        .into_bytes(),
    );
    seeds.push(
        format!(
            "POST / HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\nExpect: 100-continue\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes(),
    );
    seeds.push(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec());
    seeds.push(
        format!(
            "POST / HTTP/1.1\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes(),
    );
    seeds
}

/// One mutation of `input`, in place.
fn mutate(rng: &mut StdRng, input: &mut Vec<u8>) {
    let len = input.len();
    let at = |rng: &mut StdRng| rng.random_range(0..=len);
    match rng.random_range(0..9) {
        0 if len > 0 => {
            let i = rng.random_range(0..len);
            input[i] = rng.random();
        }
        1 if len > 0 => {
            let i = rng.random_range(0..len);
            input[i] ^= 1 << rng.random_range(0..8);
        }
        2 => {
            let n = rng.random_range(1..16);
            let bytes: Vec<u8> = (0..n).map(|_| rng.random()).collect();
            let i = at(rng);
            input.splice(i..i, bytes);
        }
        3 if len > 0 => {
            let i = rng.random_range(0..len);
            let n = rng.random_range(1..=(len - i).min(64));
            input.drain(i..i + n);
        }
        4 if len > 0 => {
            let i = rng.random_range(0..len);
            let n = rng.random_range(1..=(len - i).min(64));
            let copy = input[i..i + n].to_vec();
            let j = at(rng);
            input.splice(j..j, copy);
        }
        5 => {
            let token = TOKENS[rng.random_range(0..TOKENS.len())];
            let i = at(rng);
            input.splice(i..i, token.iter().copied());
        }
        6 => {
            // Replace a digit run (a length, a height, a chunk size) with another number.
            if let Some(i) = (0..len).find(|&i| input[i].is_ascii_digit() && rng.random_bool(0.2)) {
                let end = (i..len)
                    .find(|&j| !input[j].is_ascii_digit())
                    .unwrap_or(len);
                let n: u64 = match rng.random_range(0..3) {
                    0 => rng.random_range(0..10),
                    1 => rng.random_range(0..100_000),
                    _ => rng.random(),
                };
                input.splice(i..end, n.to_string().into_bytes());
            }
        }
        7 if len > 0 => {
            input.truncate(rng.random_range(0..len));
        }
        _ => {
            let n = rng.random_range(0..256);
            *input = (0..n).map(|_| rng.random()).collect();
        }
    }
}

/// What came back: nothing (a clean close) or one well-formed reply, after any `100 Continue`.
/// Returns the status, or `None` for a close.
fn check_reply(raw: &[u8], head_request: bool, case: usize) -> Option<u16> {
    let mut rest = raw;
    loop {
        if rest.is_empty() {
            return None;
        }
        let split = rest
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or_else(|| panic!("case {case}: no end of head in {:?}", ascii(raw)));
        let head = std::str::from_utf8(&rest[..split])
            .unwrap_or_else(|_| panic!("case {case}: head not UTF-8: {:?}", ascii(raw)));
        let body = &rest[split + 4..];
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or("");
        let mut parts = status_line.splitn(3, ' ');
        // hyper answers an HTTP/1.0 request in HTTP/1.0.
        assert!(
            matches!(parts.next(), Some("HTTP/1.1" | "HTTP/1.0")),
            "case {case}: {status_line:?}"
        );
        let status: u16 = parts
            .next()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("case {case}: {status_line:?}"));
        let reason = parts.next().unwrap_or("");
        let canonical = http::StatusCode::from_u16(status)
            .ok()
            .and_then(|s| s.canonical_reason());
        assert_eq!(Some(reason), canonical, "case {case}: {status_line:?}");
        let mut length = None;
        for line in lines {
            let (name, value) = line
                .split_once(": ")
                .unwrap_or_else(|| panic!("case {case}: header line {line:?}"));
            if name.eq_ignore_ascii_case("content-length") {
                length = value.parse::<usize>().ok();
            }
        }
        if status == 100 {
            rest = body;
            continue;
        }
        // A HEAD reply keeps its Content-Length and sends no body.
        let length = length.unwrap_or_else(|| panic!("case {case}: no Content-Length: {head}"));
        assert!(
            body.len() == length || (head_request && body.is_empty()),
            "case {case}: Content-Length {length}, body {} bytes",
            body.len()
        );
        return Some(status);
    }
}

fn ascii(raw: &[u8]) -> String {
    raw.escape_ascii().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutated_requests_get_a_well_formed_reply_or_a_clean_close() {
    let cases: usize = std::env::var("WGMINER_HTTP_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let seed: u64 = std::env::var("WGMINER_HTTP_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x5eed_4177);
    let dir = TempDir::new("http-fuzz");
    let chain = Chain::open(&dir.0.join("chain"), ChainParams::regtest()).unwrap();
    let core = NodeCore::new(chain);
    let payout = ScriptBuf::new_p2wpkh(&bitcoin::WPubkeyHash::from_byte_array([0x33; 20]));
    let block = solo::solve(&core.template(), &payout, true);
    let genesis = core.tip().1.to_string();
    let auth = basic_auth_header(COOKIE_USER, PASSWORD);
    let seeds = seeds(&auth, &block.bytes.to_lower_hex_string(), &genesis);
    let password: Arc<str> = PASSWORD.into();

    let mut rng = StdRng::seed_from_u64(seed);
    let mut statuses = std::collections::BTreeMap::<Option<u16>, usize>::new();
    let start = Instant::now();
    // Many inputs in flight, so the ones cut short wait for their timeouts side by side.
    const IN_FLIGHT: usize = 64;
    let mut running = tokio::task::JoinSet::new();
    let mut case = 0;
    while case < cases || !running.is_empty() {
        while case < cases && running.len() < IN_FLIGHT {
            let mut input = seeds[rng.random_range(0..seeds.len())].clone();
            // Every tenth input is a seed as it is: the dispatcher must be reached.
            let mutations = if case % 10 == 0 {
                0
            } else {
                rng.random_range(1..=4)
            };
            for _ in 0..mutations {
                mutate(&mut rng, &mut input);
            }
            let (server_io, mut client) = tokio::io::duplex(1 << 20);
            let server = serve_stream(Arc::clone(&core), Arc::clone(&password), LIMITS, server_io);
            let this = case;
            running.spawn(async move {
                let exchange = async {
                    let _ = client.write_all(&input).await;
                    let mut raw = Vec::new();
                    let _ = client.read_to_end(&mut raw).await;
                    raw
                };
                // The server and its client in one task: a panic in either fails this case.
                let ((), raw) = tokio::join!(server, exchange);
                (this, input, raw)
            });
            case += 1;
        }
        let Some(done) = running.join_next().await else {
            break;
        };
        let (case, input, raw) = match done {
            Ok(d) => d,
            Err(e) => panic!("a case panicked (seed {seed}): {e}"),
        };
        let head_request = input.starts_with(b"HEAD ");
        let status = std::panic::catch_unwind(|| check_reply(&raw, head_request, case))
            .unwrap_or_else(|_| {
                panic!(
                    "case {case} (seed {seed}) got a malformed reply\n input: {}\n reply: {}",
                    ascii(&input),
                    ascii(&raw)
                )
            });
        *statuses.entry(status).or_default() += 1;
    }
    let elapsed = start.elapsed();
    println!("{cases} inputs in {elapsed:.1?}; replies by status (None = closed): {statuses:?}");
    // The seeds reach the JSON-RPC dispatcher: plenty of 200s and JSON-RPC errors.
    let ok = statuses.get(&Some(200)).copied().unwrap_or(0);
    assert!(
        ok >= cases / 10,
        "only {ok} of {cases} inputs were answered 200"
    );
    assert!(statuses.contains_key(&Some(401)));
    assert!(statuses.contains_key(&Some(400)));
}
