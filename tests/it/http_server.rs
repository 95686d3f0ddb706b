//! The HTTP servers' limits and manners, over real sockets against the embedded node's JSON-RPC
//! and the monitoring API running in this process: credentials before bodies, body and head
//! limits, timeouts that cut a stalled peer but never a longpoll, the connection limit and what
//! a client meets when it is full, graceful shutdown, reason phrases, HEAD, the bearer scheme in
//! any case, BIP23 block proposals, and the node client's reading of replies.

use crate::support::rawhttp;
use crate::support::solo;

use std::time::{Duration, Instant};

use bitcoin::consensus::serialize;
use bitcoin::hashes::Hash;
use bitcoin::hex::DisplayHex;
use bitcoin::ScriptBuf;
use rawhttp::{api, exchange, parse, read_until_closed, Node};
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use wgminer::http::Limits;
use wgminer::node::rpc_server::{LIMITS, MAX_REQUEST_BODY};
use wgminer::rpc::{Auth, RpcClient, RpcError};

/// Short timeouts, so the tests that wait for them are quick.
const QUICK: Limits = Limits {
    max_connections: 64,
    header_timeout: Duration::from_millis(700),
    body_timeout: Duration::from_millis(700),
    connection_timeout: Duration::from_secs(200),
    shutdown_grace: Duration::from_secs(5),
};

fn payout() -> ScriptBuf {
    ScriptBuf::new_p2wpkh(&bitcoin::WPubkeyHash::from_byte_array([0x22; 20]))
}

/// The old server read the whole body before it looked at the credentials: a peer without
/// them could make it wait for (and hold) 64 MiB. Now the 401 comes from the head alone.
#[tokio::test]
async fn credentials_are_checked_before_a_byte_of_body_is_read() {
    let node = Node::start(LIMITS).await;
    let wrong = wgminer::http::basic_auth_header("__cookie__", "wrong");
    for auth in [String::new(), format!("Authorization: {wrong}\r\n")] {
        let mut s = TcpStream::connect(node.addr()).await.unwrap();
        let head = format!("POST / HTTP/1.1\r\nHost: x\r\n{auth}Content-Length: 67108864\r\n\r\n");
        s.write_all(head.as_bytes()).await.unwrap();
        // No body is sent: the answer must not wait for one.
        let raw = read_until_closed(&mut s, Duration::from_secs(3))
            .await
            .expect("no 401 without the body");
        let a = parse(&raw);
        assert_eq!(
            (a.status, a.reason.as_str()),
            (401, "Unauthorized"),
            "{a:?}"
        );
        assert_eq!(
            a.header("www-authenticate").as_deref(),
            Some("Basic realm=\"jsonrpc\"")
        );
    }
    // The scheme in lower case is the same scheme.
    let lower = node.auth.replacen("Basic", "basic", 1);
    let body = r#"{"id":1,"method":"getblockcount","params":[]}"#;
    let a = exchange(node.addr(), &rawhttp::post_raw(&lower, body)).await;
    assert_eq!(a.status, 200, "{a:?}");
}

/// A declared length over the limit is refused at once (the old limit was 64 MiB and the server
/// waited for all of it); a chunked body is cut at the limit; a chunk size past 2^64 is refused
/// and one of 2^64-1 waits only for the body timeout; the server goes on serving.
#[tokio::test]
async fn bodies_over_the_limit_are_refused_before_they_arrive() {
    let limits = Limits {
        body_timeout: Duration::from_secs(3),
        ..LIMITS
    };
    let node = Node::start(limits).await;
    let mut s = TcpStream::connect(node.addr()).await.unwrap();
    let head = format!(
        "POST / HTTP/1.1\r\nHost: x\r\nAuthorization: {}\r\nContent-Length: {}\r\n\r\n",
        node.auth,
        MAX_REQUEST_BODY + 1
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let raw = read_until_closed(&mut s, Duration::from_secs(3))
        .await
        .expect("no 413 without the body");
    let a = parse(&raw);
    assert_eq!((a.status, a.reason.as_str()), (413, "Payload Too Large"));

    for (size, status) in [("fffffffffffffffff", 400), ("ffffffffffffffff", 408)] {
        let huge_chunk = format!(
            "POST / HTTP/1.1\r\nHost: x\r\nAuthorization: {}\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n{size}\r\nx\r\n0\r\n\r\n",
            node.auth
        );
        let a = exchange(node.addr(), huge_chunk.as_bytes()).await;
        assert_eq!(a.status, status, "{size}: {a:?}");
    }

    // Chunks that add up to one byte over the limit.
    let mut s = TcpStream::connect(node.addr()).await.unwrap();
    let head = format!(
        "POST / HTTP/1.1\r\nHost: x\r\nAuthorization: {}\r\nTransfer-Encoding: chunked\r\n\r\n",
        node.auth
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let chunk = vec![b' '; 1024 * 1024];
    let mut sent = 0;
    while sent <= MAX_REQUEST_BODY {
        let n = chunk.len().min(MAX_REQUEST_BODY + 1 - sent);
        let frame = [format!("{n:x}\r\n").as_bytes(), &chunk[..n], b"\r\n"].concat();
        if s.write_all(&frame).await.is_err() {
            break;
        }
        sent += n;
    }
    let a = parse(
        &read_until_closed(&mut s, Duration::from_secs(5))
            .await
            .unwrap(),
    );
    assert_eq!(a.status, 413, "{a:?}");

    assert_eq!(node.call("getblockcount", json!([])).await.0, 200);
}

/// A block-sized call is within the limit: 9 MiB of hex reaches `submitblock`.
#[tokio::test]
async fn a_block_sized_body_reaches_the_dispatcher() {
    let node = Node::start(LIMITS).await;
    let hex = "00".repeat(9 * 512 * 1024);
    let (status, reply) = node.call("submitblock", json!([hex])).await;
    assert_eq!(status, 500);
    assert_eq!(reply["error"]["code"], -22, "{reply}");
    assert_eq!(reply["error"]["message"], "Block decode failed");
}

/// Reason phrases match the status: the old server called every status it had no name for
/// (400 among them) "Internal Server Error". A signed Content-Length is refused, and so is a
/// head over 64 KiB.
#[tokio::test]
async fn statuses_carry_their_own_reason_phrases() {
    let node = Node::start(LIMITS).await;
    let cases: [(&str, u16, &str); 4] = [
        (r#"{"id":1}"#, 400, "Bad Request"),
        (r#"{"id":1,"method":"nosuch"}"#, 404, "Not Found"),
        (
            r#"{"id":1,"method":"getblockhash","params":[99]}"#,
            500,
            "Internal Server Error",
        ),
        ("not json", 500, "Internal Server Error"),
    ];
    for (body, status, reason) in cases {
        let a = exchange(node.addr(), &node.post(body)).await;
        assert_eq!((a.status, a.reason.as_str()), (status, reason), "{body}");
        let reply: Value = serde_json::from_slice(&a.body).unwrap();
        assert!(!reply["error"].is_null(), "{reply}");
    }
    let a = exchange(node.addr(), b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert_eq!((a.status, a.reason.as_str()), (405, "Method Not Allowed"));
    assert_eq!(String::from_utf8_lossy(&a.body), "JSON-RPC wants POST");

    let plus = format!(
        "POST / HTTP/1.1\r\nHost: x\r\nAuthorization: {}\r\nContent-Length: +5\r\n\r\nhello",
        node.auth
    );
    let a = exchange(node.addr(), plus.as_bytes()).await;
    assert_eq!((a.status, a.reason.as_str()), (400, "Bad Request"), "{a:?}");
    let big_head = format!(
        "POST / HTTP/1.1\r\nHost: x\r\nX-Filler: {}\r\n\r\n",
        "a".repeat(70 * 1024)
    );
    let a = exchange(node.addr(), big_head.as_bytes()).await;
    assert_eq!(
        (a.status, a.reason.as_str()),
        (431, "Request Header Fields Too Large")
    );
    // A batch is one HTTP 200 with a reply per call, in order.
    let batch = r#"[{"id":1,"method":"getblockcount"},{"id":2,"method":"nosuch"}]"#;
    let a = exchange(node.addr(), &node.post(batch)).await;
    assert_eq!(a.status, 200);
    let replies: Value = serde_json::from_slice(&a.body).unwrap();
    assert_eq!(replies[0]["result"], 0);
    assert_eq!(replies[1]["error"]["code"], -32601);
}

/// A peer that stalls in its head is closed; one that stalls in its body is told 408.
#[tokio::test]
async fn a_stalled_head_or_body_is_cut() {
    let node = Node::start(QUICK).await;
    for partial in ["", "POST / HTTP/1.1\r\nHost: x\r\n"] {
        let mut s = TcpStream::connect(node.addr()).await.unwrap();
        s.write_all(partial.as_bytes()).await.unwrap();
        let start = Instant::now();
        let raw = read_until_closed(&mut s, Duration::from_secs(5))
            .await
            .expect("a silent peer is never cut");
        assert!(start.elapsed() >= Duration::from_millis(500), "{partial:?}");
        let a = parse(&raw);
        assert!(a.closed_silently || a.status == 408, "{partial:?}: {a:?}");
    }
    let mut s = TcpStream::connect(node.addr()).await.unwrap();
    let head = format!(
        "POST / HTTP/1.1\r\nHost: x\r\nAuthorization: {}\r\nContent-Length: 100\r\n\r\n{{\"id\":",
        node.auth
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let a = parse(
        &read_until_closed(&mut s, Duration::from_secs(5))
            .await
            .unwrap(),
    );
    assert_eq!((a.status, a.reason.as_str()), (408, "Request Timeout"));
}

/// When every slot is taken, a new connection waits (in the listen backlog) and is served when
/// one frees: it is neither refused nor served beyond the limit. The old server had no limit.
#[tokio::test]
async fn a_full_server_makes_new_connections_wait_their_turn() {
    let limits = Limits {
        max_connections: 2,
        header_timeout: Duration::from_millis(1500),
        ..QUICK
    };
    let node = Node::start(limits).await;
    let mut idle = Vec::new();
    for _ in 0..2 {
        idle.push(TcpStream::connect(node.addr()).await.unwrap());
    }
    // Let the server take both (a fixed wait: it tells no one how many connections it holds).
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut s = TcpStream::connect(node.addr()).await.unwrap();
    s.write_all(&node.post(r#"{"id":1,"method":"getblockcount"}"#))
        .await
        .unwrap();
    let start = Instant::now();
    assert!(
        read_until_closed(&mut s, Duration::from_millis(700))
            .await
            .is_none(),
        "served beyond the connection limit"
    );
    let raw = read_until_closed(&mut s, Duration::from_secs(5))
        .await
        .expect("never served after the idle connections were cut");
    assert_eq!(parse(&raw).status, 200);
    // It waited for the header timeout of the connections ahead of it.
    assert!(start.elapsed() >= Duration::from_millis(1000));
    for mut s in idle {
        assert!(read_until_closed(&mut s, Duration::from_secs(1))
            .await
            .is_some());
    }
}

/// A longpoll is held past the head and body timeouts until the tip moves; at shutdown a held
/// longpoll is answered at once and the server then stops listening.
#[tokio::test]
async fn longpolls_outlive_the_timeouts_and_are_answered_at_shutdown() {
    let node = Node::start(QUICK).await;
    let tip = node.core.tip().1.to_string();
    let longpoll =
        json!({"id": 1, "method": "getblocktemplate", "params": [{"longpollid": tip}]}).to_string();
    let mut s = TcpStream::connect(node.addr()).await.unwrap();
    s.write_all(&node.post(&longpoll)).await.unwrap();
    assert!(
        read_until_closed(&mut s, Duration::from_millis(2500))
            .await
            .is_none(),
        "the longpoll was answered or cut before the tip moved"
    );
    let block = solo::mine(&node.core.template(), &payout(), [1, 2, 3, 4]);
    node.core.submit(&block).unwrap();
    let a = parse(
        &read_until_closed(&mut s, Duration::from_secs(5))
            .await
            .unwrap(),
    );
    assert_eq!(a.status, 200);
    let reply: Value = serde_json::from_slice(&a.body).unwrap();
    assert_eq!(
        reply["result"]["previousblockhash"],
        block.block_hash().to_string()
    );

    let tip = node.core.tip().1.to_string();
    let longpoll =
        json!({"id": 1, "method": "getblocktemplate", "params": [{"longpollid": tip}]}).to_string();
    let mut s = TcpStream::connect(node.addr()).await.unwrap();
    s.write_all(&node.post(&longpoll)).await.unwrap();
    // Let the longpoll park (a fixed wait: the server gives no sign that it has).
    tokio::time::sleep(Duration::from_millis(300)).await;
    let addr = node.addr();
    let start = Instant::now();
    node.server.stop().await;
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    let a = parse(
        &read_until_closed(&mut s, Duration::from_secs(2))
            .await
            .unwrap(),
    );
    assert_eq!(a.status, 200, "{a:?}");
    assert!(TcpStream::connect(addr).await.is_err());
}

/// BIP23: `mode: "proposal"` was advertised but refused. Now a block is checked as submitblock
/// would, proof of work aside, and nothing is stored.
#[tokio::test]
async fn proposals_are_checked_without_their_proof_of_work() {
    let node = Node::start(LIMITS).await;
    let propose = |hex: String| json!([{"mode": "proposal", "data": hex}]);
    let template = node.core.template();
    let unsolved = solo::solve(&template, &payout(), false);
    let hex = unsolved.bytes.to_lower_hex_string();
    let (status, reply) = node.call("getblocktemplate", propose(hex.clone())).await;
    assert_eq!((status, &reply["result"]), (200, &Value::Null), "{reply}");
    assert_eq!(node.core.tip().0, 0, "a proposal changed the chain");
    let (_, reply) = node.call("submitblock", json!([hex])).await;
    assert_eq!(reply["result"], "high-hash");

    let mut bad_root = unsolved.decode().unwrap();
    bad_root.header.merkle_root = bitcoin::TxMerkleNode::all_zeros();
    let (_, reply) = node
        .call(
            "getblocktemplate",
            propose(serialize(&bad_root).to_lower_hex_string()),
        )
        .await;
    assert_eq!(reply["result"], "bad-txnmrklroot");

    let solved = solo::solve(&template, &payout(), true);
    node.core.submit(&solved.decode().unwrap()).unwrap();
    let (_, reply) = node.call("getblocktemplate", propose(hex)).await;
    assert_eq!(reply["result"], "inconclusive-not-best-prevblk");
    let (_, reply) = node
        .call(
            "getblocktemplate",
            propose(solved.bytes.to_lower_hex_string()),
        )
        .await;
    assert_eq!(reply["result"], "duplicate");

    let (status, reply) = node
        .call("getblocktemplate", json!([{"mode": "proposal"}]))
        .await;
    assert_eq!((status, &reply["error"]["code"]), (500, &json!(-3)));
    let (_, reply) = node.call("getblocktemplate", propose("zz".into())).await;
    assert_eq!(reply["error"]["message"], "Block decode failed");
    let (_, reply) = node
        .call("getblocktemplate", json!([{"mode": "other"}]))
        .await;
    assert_eq!(reply["error"]["code"], -8);
    let (_, reply) = node.call("getblocktemplate", json!([{}])).await;
    assert_eq!(reply["result"]["capabilities"], json!(["proposal"]));
}

/// HEAD answers with the head only (the old server sent the body too); the bearer scheme is
/// matched in any case (the old one wanted "Bearer " exactly); a request with a body is
/// refused unread; reason phrases are right.
#[tokio::test]
async fn the_api_answers_head_lowercase_bearer_and_refuses_bodies() {
    let server = api(Some("s3cret"), wgminer::telemetry::api::LIMITS).await;
    let addr = server.addr();
    let get = |method: &str, auth: &str, extra: &str| {
        format!("{method} /api/v1/summary HTTP/1.1\r\nHost: x\r\n{auth}{extra}\r\n").into_bytes()
    };
    let token = "Authorization: bearer s3cret\r\n";
    let a = exchange(addr, &get("GET", token, "")).await;
    assert_eq!((a.status, a.reason.as_str()), (200, "OK"), "{a:?}");
    let summary: Value = serde_json::from_slice(&a.body).unwrap();
    assert_eq!(summary["devices"][0]["label"], "cpu");
    let length: usize = a.header("content-length").unwrap().parse().unwrap();
    assert_eq!(length, a.body.len());

    let a = exchange(addr, &get("HEAD", token, "")).await;
    assert_eq!(a.status, 200, "{a:?}");
    assert!(a.body.is_empty(), "HEAD sent a body: {a:?}");
    assert!(a.header("content-length").is_some(), "{a:?}");

    let a = exchange(addr, &get("GET", "Authorization: Bearer wrong\r\n", "")).await;
    assert_eq!((a.status, a.reason.as_str()), (401, "Unauthorized"));
    let a = exchange(addr, &get("POST", token, "")).await;
    assert_eq!((a.status, a.reason.as_str()), (405, "Method Not Allowed"));
    let a = exchange(addr, &get("GET", token, "Content-Length: 5\r\n")).await;
    assert_eq!((a.status, a.reason.as_str()), (413, "Payload Too Large"));
    let a = exchange(addr, &get("GET", token, "Transfer-Encoding: chunked\r\n")).await;
    assert_eq!(a.status, 413, "{a:?}");
    let a = exchange(
        addr,
        b"GET /nope HTTP/1.1\r\nHost: x\r\nAuthorization: BEARER s3cret\r\n\r\n",
    )
    .await;
    assert_eq!((a.status, a.reason.as_str()), (404, "Not Found"));
    let a = exchange(addr, b"GET /a HTTP/1.1\r\nContent-Length: +5\r\n\r\nhello").await;
    assert_eq!((a.status, a.reason.as_str()), (400, "Bad Request"));
    server.stop().await;
    assert!(TcpStream::connect(addr).await.is_err());
}

/// A one-shot HTTP server for the client: answers the first request with `reply` and closes.
async fn one_reply(reply: Vec<u8>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        if let Ok((mut s, _)) = listener.accept().await {
            let mut buf = [0u8; 4096];
            let _ = tokio::io::AsyncReadExt::read(&mut s, &mut buf).await;
            let _ = s.write_all(&reply).await;
        }
    });
    format!("http://{addr}")
}

fn client(url: &str) -> RpcClient {
    let auth = Auth::UserPass {
        user: "u".into(),
        password: "p".into(),
    };
    RpcClient::new(url, auth).unwrap()
}

/// The node client reads chunked and close-delimited replies, and refuses hostile lengths with
/// an error rather than a panic (a chunk size near 2^64 once overflowed and killed the miner).
#[tokio::test]
async fn the_node_client_reads_every_reply_framing_and_survives_hostile_ones() {
    let ok = r#"{"result":7,"error":null,"id":"wgminer"}"#;
    let chunked = format!(
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{}\r\n{:x}\r\n{}\r\n0\r\n\r\n",
        &ok[..5],
        ok.len() - 5,
        &ok[5..]
    );
    let to_close = format!("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n{ok}");
    for reply in [chunked, to_close] {
        let url = one_reply(reply.into_bytes()).await;
        assert_eq!(
            client(&url).call("getblockcount", json!([])).await.unwrap(),
            7
        );
    }
    let hostile = [
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\nffffffffffffffff\r\nx\r\n0\r\n\r\n".to_owned(),
        "HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\nhello".to_owned(),
        format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", 1u64 << 40),
        "garbage\r\n\r\n".to_owned(),
        String::new(),
    ];
    for reply in hostile {
        let url = one_reply(reply.clone().into_bytes()).await;
        let e = client(&url)
            .call("getblockcount", json!([]))
            .await
            .unwrap_err();
        assert!(
            matches!(e, RpcError::Unreachable { .. } | RpcError::Http { .. }),
            "{reply:?}: {e}"
        );
    }
    let url = one_reply(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n".to_vec()).await;
    let e = client(&url)
        .call("getblockcount", json!([]))
        .await
        .unwrap_err();
    assert!(matches!(e, RpcError::Unauthorized { .. }), "{e}");
}
