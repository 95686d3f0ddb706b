//! Shared by the HTTP server tests: the embedded node's JSON-RPC and the monitoring API started
//! in this process on 127.0.0.1:0, and a raw client that writes exact bytes over a real socket
//! and reads the answer until the server closes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use wgminer::http::{basic_auth_header, Limits};
use wgminer::node::rpc_server::RpcServer;
use wgminer::node::{Chain, ChainParams, NodeCore};
use wgminer::telemetry::{ApiConfig, ApiServer, ApiState};
use wgminer::work::MiningStats;

use super::solo::TempDir;

/// A node core on a fresh regtest chain with its JSON-RPC server.
pub struct Node {
    pub core: Arc<NodeCore>,
    pub server: RpcServer,
    /// `Authorization` header value from the cookie.
    pub auth: String,
    /// Holds the chain directory until the node is dropped.
    _dir: TempDir,
}

impl Node {
    pub async fn start(limits: Limits) -> Node {
        let dir = TempDir::new("http");
        let chain = Chain::open(&dir.0.join("chain"), ChainParams::regtest()).unwrap();
        let core = NodeCore::new(chain);
        let server =
            RpcServer::start_with_limits(Arc::clone(&core), "127.0.0.1:0".parse().unwrap(), limits)
                .await
                .unwrap();
        let cookie = std::fs::read_to_string(server.cookie_file()).unwrap();
        let (user, password) = cookie.trim().split_once(':').unwrap();
        let auth = basic_auth_header(user, password);
        Node {
            core,
            server,
            auth,
            _dir: dir,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// A POST of `body` with the cookie's credentials.
    pub fn post(&self, body: &str) -> Vec<u8> {
        post_raw(&self.auth, body)
    }

    /// One JSON-RPC call over a real socket: the HTTP status and the reply object.
    pub async fn call(&self, method: &str, params: Value) -> (u16, Value) {
        let body = serde_json::json!({"id": 1, "method": method, "params": params}).to_string();
        let a = exchange(self.addr(), &self.post(&body)).await;
        (
            a.status,
            serde_json::from_slice(&a.body).unwrap_or(Value::Null),
        )
    }
}

/// A POST request's bytes with an Authorization value.
pub fn post_raw(auth: &str, body: &str) -> Vec<u8> {
    format!(
        "POST / HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// The monitoring API on empty counters for one CPU device.
pub async fn api(token: Option<&str>, limits: Limits) -> ApiServer {
    let state = ApiState {
        stats: Arc::new(MiningStats::new([(0, "cpu".to_owned())])),
        sources: vec!["node core".to_owned()],
    };
    let config = ApiConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        token: token.map(str::to_owned),
    };
    ApiServer::start_with_limits(config, state, limits)
        .await
        .unwrap()
}

/// An answer as it came over the wire.
#[derive(Debug, Default)]
pub struct Answer {
    pub status: u16,
    /// The status line's reason phrase.
    pub reason: String,
    /// Status line and headers.
    pub head: String,
    pub body: Vec<u8>,
    /// Nothing came back before the connection closed.
    pub closed_silently: bool,
}

impl Answer {
    /// A header's value, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_owned())
        })
    }
}

/// Split raw bytes into an [`Answer`] (our servers close after one reply with a Content-Length,
/// so the body is everything after the head).
pub fn parse(raw: &[u8]) -> Answer {
    let Some(split) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Answer {
            closed_silently: raw.is_empty(),
            head: String::from_utf8_lossy(raw).into_owned(),
            ..Answer::default()
        };
    };
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let first = head.lines().next().unwrap_or("");
    let mut parts = first.splitn(3, ' ');
    let _version = parts.next();
    let status = parts.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    let reason = parts.next().unwrap_or("").to_owned();
    Answer {
        status,
        reason,
        head,
        body: raw[split + 4..].to_vec(),
        closed_silently: false,
    }
}

/// Read until the server closes (a reset counts as a close: it may come when the server did not
/// read what was sent) or `wait` passes; `None` if it was still open then.
pub async fn read_until_closed(stream: &mut TcpStream, wait: Duration) -> Option<Vec<u8>> {
    let mut raw = Vec::new();
    let read = async {
        let mut buf = [0u8; 16 * 1024];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => raw.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(wait, read).await.ok()?;
    Some(raw)
}

/// Write `raw` on a new connection and read the answer (10 s at most).
pub async fn exchange(addr: SocketAddr, raw: &[u8]) -> Answer {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    // The server may answer and close before taking all of it: that is its right.
    let _ = stream.write_all(raw).await;
    let raw = read_until_closed(&mut stream, Duration::from_secs(10))
        .await
        .expect("the server neither answered nor closed within 10 s");
    parse(&raw)
}
