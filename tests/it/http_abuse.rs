//! Memory before authentication: peers without credentials pour 64 MiB bodies and a chunk
//! size of 2^64-1 into the node's JSON-RPC and the monitoring API at once, and the servers
//! must hold no more than a read buffer each, keep answering, and leave this process's peak
//! resident memory (VmHWM) under 100 MB. The servers run in this process, and nextest (how CI
//! runs the tests) runs each test in a process of its own, so VmHWM is the servers' peak plus
//! this client's few buffers; under `cargo test` the other tests of the binary would add theirs.

use crate::support::rawhttp;

use std::net::SocketAddr;
use std::time::Duration;

use rawhttp::{api, exchange, parse, read_until_closed, Node};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use wgminer::node::rpc_server::LIMITS;

/// 64 MiB: what each hostile peer declares and tries to send.
const HOSTILE_BODY: u64 = 64 * 1024 * 1024;

/// The process's peak resident memory so far, in kB (Linux's VmHWM).
fn vm_hwm_kb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/self/status")
}

/// Send `head`, then up to `body` bytes (as `chunked` frames of 2^64-1 declared size when
/// asked) until the server stops taking them; the status it answered, 0 for none.
async fn pour(addr: SocketAddr, head: String, body: u64, chunked: bool) -> u16 {
    static ZEROS: [u8; 64 * 1024] = [b'0'; 64 * 1024];
    let Ok(mut s) = TcpStream::connect(addr).await else {
        return 0;
    };
    let mut ok = s.write_all(head.as_bytes()).await.is_ok();
    if chunked && ok {
        ok = s.write_all(b"ffffffffffffffff\r\n").await.is_ok();
    }
    let mut sent = 0u64;
    while ok && sent < body {
        ok = s.write_all(&ZEROS).await.is_ok();
        sent += ZEROS.len() as u64;
    }
    let raw = read_until_closed(&mut s, Duration::from_secs(40))
        .await
        .unwrap_or_default();
    parse(&raw).status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_bodies_without_credentials_cost_no_memory() {
    let before = vm_hwm_kb();
    let node = Node::start(LIMITS).await;
    let api = api(Some("s3cret"), wgminer::telemetry::api::LIMITS).await;

    let mut peers = tokio::task::JoinSet::new();
    for i in 0..10 {
        let head = format!(
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {HOSTILE_BODY}\r\n\r\n"
        );
        let addr = node.addr();
        peers.spawn(async move {
            (
                format!("rpc {i}"),
                pour(addr, head, HOSTILE_BODY, false).await,
            )
        });
    }
    for i in 0..8 {
        let head = format!(
            "GET /api/v1/summary HTTP/1.1\r\nHost: x\r\nContent-Length: {HOSTILE_BODY}\r\n\r\n"
        );
        let addr = api.addr();
        peers.spawn(async move {
            (
                format!("api {i}"),
                pour(addr, head, HOSTILE_BODY, false).await,
            )
        });
    }
    // A chunk of 2^64-1 bytes, without credentials and with them (then the 10 MiB body limit
    // ends it).
    for auth in [String::new(), format!("Authorization: {}\r\n", node.auth)] {
        let head =
            format!("POST / HTTP/1.1\r\nHost: x\r\n{auth}Transfer-Encoding: chunked\r\n\r\n");
        let addr = node.addr();
        let who = if auth.is_empty() {
            "chunked"
        } else {
            "chunked, authorized"
        };
        peers.spawn(async move { (who.to_owned(), pour(addr, head, HOSTILE_BODY, true).await) });
    }
    // A declared 64 MiB with credentials: refused on its length.
    let head = format!(
        "POST / HTTP/1.1\r\nHost: x\r\nAuthorization: {}\r\nContent-Length: {HOSTILE_BODY}\r\n\r\n",
        node.auth
    );
    let addr = node.addr();
    peers.spawn(async move {
        (
            "declared, authorized".to_owned(),
            pour(addr, head, HOSTILE_BODY, false).await,
        )
    });

    let mut unauthorized = 0;
    while let Some(done) = peers.join_next().await {
        let (who, status) = done.unwrap();
        if who.contains("authorized") {
            assert_eq!(status, 413, "{who}");
        } else {
            // Refused on the head, or cut when the server's reset (it closes without reading
            // what was sent) reached the peer before the answer did; never a 413, which would
            // mean the body was looked at before the credentials.
            assert!(matches!(status, 0 | 401), "{who}: {status}");
            unauthorized += usize::from(status == 401);
        }
    }
    println!("{unauthorized} of 19 peers without credentials read their 401");
    assert!(unauthorized > 0);

    // Both still serve.
    let (status, reply) = node.call("getblockcount", serde_json::json!([])).await;
    assert_eq!((status, &reply["result"]), (200, &serde_json::json!(0)));
    let a = exchange(
        api.addr(),
        b"GET /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer s3cret\r\n\r\n",
    )
    .await;
    assert_eq!(a.status, 200);

    let peak = vm_hwm_kb();
    println!("VmHWM: {before} kB before the servers started, {peak} kB after the abuse");
    assert!(
        peak < 100_000_000 / 1024,
        "peak resident memory {peak} kB is over 100 MB"
    );
    api.stop().await;
    node.server.stop().await;
}
