//! The node core's JSON-RPC, in Bitcoin Core's dialect so other miners and tools can use it:
//! `getblocktemplate` (with longpoll, and BIP23 `mode: "proposal"`), `submitblock`,
//! `getblockcount`, `getbestblockhash`, `getblockhash`, `getblockheader`, `getblock`,
//! `getblockchaininfo`, `getmininginfo`; single calls and batches.
//! Cookie auth as bitcoind does it: a fresh `__cookie__:<random>` in `<chain dir>/.cookie`
//! (mode 0600) for each run, removed on stop. One request per connection, served by
//! [`crate::http::Server`] within [`LIMITS`]; the credentials are checked on the request head,
//! before a byte of the body is read, and the body is then read up to [`MAX_REQUEST_BODY`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ::http::{header, Method, Request, StatusCode};
use bitcoin::consensus::{deserialize, serialize};
use bitcoin::hex::{DisplayHex, FromHex};
use bitcoin::{Block, BlockHash};
use hyper::body::Incoming;
use serde_json::{json, Value};
use tokio::net::TcpListener;

use super::service::NodeCore;
use super::validate::RejectReason;
use crate::http::{self, Limits, Reply, Server, Stopping};

/// The name bitcoind's cookie uses as its user.
pub const COOKIE_USER: &str = "__cookie__";

/// The cookie file's name in the chain directory.
pub const COOKIE_FILE: &str = ".cookie";

/// How long a longpoll waits for a new tip before answering with the current template.
const LONGPOLL_WAIT: Duration = Duration::from_secs(120);

/// The largest request body: a 4,000,000-weight block is at most 4,000,000 bytes, 8,000,000 as
/// hex inside a `submitblock` call; 10 MiB leaves room for the JSON around it.
pub const MAX_REQUEST_BODY: usize = 10 * 1024 * 1024;

/// The server's connection limits. The connection cap leaves room for a whole longpoll
/// (head, body, `LONGPOLL_WAIT`, and time to write a template) so it never cuts one.
pub const LIMITS: Limits = Limits {
    max_connections: 64,
    header_timeout: Duration::from_secs(10),
    body_timeout: Duration::from_secs(30),
    connection_timeout: Duration::from_secs(200),
    shutdown_grace: Duration::from_secs(5),
};

/// Why the server cannot start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RpcServerError {
    #[error("cannot serve JSON-RPC on {addr}: {source} (is another node or wgminer using that port? choose another --rpc-bind)")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot write the RPC cookie {}: {why}", path.display())]
    Cookie { path: PathBuf, why: String },
}

/// The most blocks one `generatetoaddress` mines (bitcoind has no limit; this keeps one call
/// from mining for hours by mistake).
pub const MAX_BLOCKS: u32 = 10_000;

/// Generates blocks for `generatetoaddress`: (count, payout script) to the new blocks' hashes.
pub type GenerateHook = Arc<
    dyn Fn(
            u32,
            bitcoin::ScriptBuf,
        ) -> std::pin::Pin<
            Box<dyn std::future::Future<Output = Result<Vec<BlockHash>, String>> + Send>,
        > + Send
        + Sync,
>;

/// What `wgminer node` adds to the chain's methods for node developers: the payout address
/// (`getnewaddress`), mining on request (`generatetoaddress`), and `stop`. Each is optional:
/// without it the method answers that this node cannot do it.
#[derive(Clone, Default)]
pub struct RpcExtras {
    pub payout_address: Option<String>,
    pub generate: Option<GenerateHook>,
    /// Told once when a client calls `stop`.
    pub stop: Option<tokio::sync::mpsc::Sender<()>>,
}

/// A running server.
pub struct RpcServer {
    cookie_file: PathBuf,
    server: Server,
}

impl RpcServer {
    /// Bind `bind`, write the cookie, and serve `core` until [`Self::stop`].
    pub async fn start(core: Arc<NodeCore>, bind: SocketAddr) -> Result<RpcServer, RpcServerError> {
        Self::start_with(core, bind, LIMITS, RpcExtras::default()).await
    }

    /// [`Self::start`] with other connection limits (tests use small ones).
    pub async fn start_with_limits(
        core: Arc<NodeCore>,
        bind: SocketAddr,
        limits: Limits,
    ) -> Result<RpcServer, RpcServerError> {
        Self::start_with(core, bind, limits, RpcExtras::default()).await
    }

    /// [`Self::start`] with the node-developer methods of `extras`.
    pub async fn start_with(
        core: Arc<NodeCore>,
        bind: SocketAddr,
        limits: Limits,
        extras: RpcExtras,
    ) -> Result<RpcServer, RpcServerError> {
        let bind_err = |source| RpcServerError::Bind { addr: bind, source };
        let listener = TcpListener::bind(bind).await.map_err(bind_err)?;
        let cookie_file = core.dir().join(COOKIE_FILE);
        let password = write_cookie(&cookie_file)?;
        let password: Arc<str> = password.into();
        let server = Server::serve(
            listener,
            limits,
            handler(core, password, limits, Arc::new(extras)),
        )
        .map_err(bind_err)?;
        Ok(RpcServer {
            cookie_file,
            server,
        })
    }

    /// Where it listens (the real port when bound to port 0).
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    pub fn cookie_file(&self) -> &Path {
        &self.cookie_file
    }

    /// Stop accepting, let requests in flight finish (longpolls answer at once), and remove
    /// the cookie.
    pub async fn stop(self) {
        self.server.stop().await;
        let _ = std::fs::remove_file(&self.cookie_file);
    }
}

/// Serve one connection over any byte stream exactly as the server serves a TCP connection,
/// with `password` as the cookie's; for tests that drive the server from memory (the HTTP fuzz
/// test).
pub async fn serve_stream<IO>(core: Arc<NodeCore>, password: Arc<str>, limits: Limits, io: IO)
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    http::serve_stream(io, limits, handler(core, password, limits, Arc::default())).await;
}

/// A new random cookie, written readable by this user only; returns the password.
fn write_cookie(path: &Path) -> Result<String, RpcServerError> {
    let err = |why: String| RpcServerError::Cookie {
        path: path.to_owned(),
        why,
    };
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).map_err(|e| err(e.to_string()))?;
    let password = secret.to_lower_hex_string();
    let tmp = path.with_extension("tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&tmp).map_err(|e| err(e.to_string()))?;
    std::io::Write::write_all(&mut file, format!("{COOKIE_USER}:{password}").as_bytes())
        .map_err(|e| err(e.to_string()))?;
    drop(file);
    std::fs::rename(&tmp, path).map_err(|e| err(e.to_string()))?;
    Ok(password)
}

/// The server's request handler: the node and the cookie's password, shared by every request.
fn handler(
    core: Arc<NodeCore>,
    password: Arc<str>,
    limits: Limits,
    extras: Arc<RpcExtras>,
) -> impl Fn(
    Request<Incoming>,
    Stopping,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Reply> + Send>>
       + Send
       + Sync
       + 'static {
    move |request, stopping| {
        Box::pin(handle(
            Arc::clone(&core),
            Arc::clone(&password),
            limits,
            Arc::clone(&extras),
            request,
            stopping,
        ))
    }
}

/// One request: method, then credentials from the head, then the body, then the calls.
async fn handle(
    core: Arc<NodeCore>,
    password: Arc<str>,
    limits: Limits,
    extras: Arc<RpcExtras>,
    request: Request<Incoming>,
    stopping: Stopping,
) -> Reply {
    const TEXT: &str = "text/plain; charset=utf-8";
    const JSON: &str = "application/json";
    if request.method() != Method::POST {
        return http::reply(
            StatusCode::METHOD_NOT_ALLOWED,
            TEXT,
            &[(header::ALLOW, "POST")],
            "JSON-RPC wants POST",
        );
    }
    let authorized = http::basic_auth(request.headers()).is_some_and(|(u, p)| {
        u == COOKIE_USER && http::constant_time_eq(p.as_bytes(), password.as_bytes())
    });
    if !authorized {
        return http::reply(
            StatusCode::UNAUTHORIZED,
            TEXT,
            &[(header::WWW_AUTHENTICATE, "Basic realm=\"jsonrpc\"")],
            "",
        );
    }
    let body =
        match http::read_body(request.into_body(), MAX_REQUEST_BODY, limits.body_timeout).await {
            Ok(body) => body,
            Err(e) => return http::reply(e.status(), TEXT, &[], format!("bad request: {e}")),
        };
    let (status, body) = answer(&core, &stopping, &extras, &body).await;
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    http::reply(status, JSON, &[], body)
}

/// The HTTP status and body for a request.
async fn answer(
    core: &Arc<NodeCore>,
    stopping: &Stopping,
    extras: &RpcExtras,
    body: &[u8],
) -> (u16, Vec<u8>) {
    let parsed: Result<Value, _> = serde_json::from_slice(body);
    let reply = match parsed {
        Err(_) => return (500, error_reply(&Value::Null, -32700, "Parse error")),
        Ok(Value::Array(calls)) => {
            let mut out = Vec::with_capacity(calls.len());
            for call in &calls {
                out.push(reply_for(core, stopping, extras, call).await.1);
            }
            return (200, serde_json::to_vec(&out).unwrap_or_default());
        }
        Ok(call) => reply_for(core, stopping, extras, &call).await,
    };
    (reply.0, serde_json::to_vec(&reply.1).unwrap_or_default())
}

fn error_reply(id: &Value, code: i64, message: &str) -> Vec<u8> {
    serde_json::to_vec(&error_value(id, code, message)).unwrap_or_default()
}

fn error_value(id: &Value, code: i64, message: &str) -> Value {
    json!({"result": null, "error": {"code": code, "message": message}, "id": id})
}

/// One JSON-RPC call's status and reply object (HTTP statuses as bitcoind uses them).
async fn reply_for(
    core: &Arc<NodeCore>,
    stopping: &Stopping,
    extras: &RpcExtras,
    call: &Value,
) -> (u16, Value) {
    let id = call.get("id").cloned().unwrap_or(Value::Null);
    let Some(method) = call.get("method").and_then(Value::as_str) else {
        return (400, error_value(&id, -32600, "Invalid Request: no method"));
    };
    let params = match call.get("params") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a.clone(),
        Some(_) => return (500, error_value(&id, -32602, "params must be an array")),
    };
    match dispatch(core, stopping, extras, method, &params).await {
        Ok(result) => (200, json!({"result": result, "error": null, "id": id})),
        Err((code, message)) => {
            let status = if code == -32601 { 404 } else { 500 };
            (status, error_value(&id, code, &message))
        }
    }
}

type RpcResult = Result<Value, (i64, String)>;

async fn dispatch(
    core: &Arc<NodeCore>,
    stopping: &Stopping,
    extras: &RpcExtras,
    method: &str,
    params: &[Value],
) -> RpcResult {
    match method {
        "getblocktemplate" => get_block_template(core, stopping, params.first()).await,
        "submitblock" => {
            let hex = param_str(params, 0, "hexdata")?.to_owned();
            let core = Arc::clone(core);
            blocking(move || submit_block(&core, &hex)).await
        }
        "getblockcount" => Ok(json!(core.tip().0)),
        "getbestblockhash" => Ok(json!(core.tip().1.to_string())),
        "getblockhash" => {
            let height = params
                .first()
                .and_then(Value::as_u64)
                .ok_or((-8, "height must be a non-negative integer".to_owned()))?;
            let hash = u32::try_from(height)
                .ok()
                .and_then(|h| core.with_chain(|c| c.block_hash_at(h)));
            hash.map(|h| json!(h.to_string()))
                .ok_or((-8, "Block height out of range".into()))
        }
        "getblockheader" => {
            let hash = param_hash(params, 0)?;
            let verbose = params.get(1).and_then(Value::as_bool).unwrap_or(true);
            let (header, height) = core
                .with_chain(|c| c.header(&hash))
                .ok_or((-5, "Block not found".to_owned()))?;
            if !verbose {
                return Ok(json!(serialize(&header).to_lower_hex_string()));
            }
            Ok(header_json(core, &header, height))
        }
        "getblock" => {
            let hash = param_hash(params, 0)?;
            let verbosity = match params.get(1) {
                None | Some(Value::Null) => 1,
                Some(Value::Bool(b)) => u64::from(*b),
                Some(v) => v
                    .as_u64()
                    .ok_or((-8, "verbosity must be 0, 1 or 2".to_owned()))?,
            };
            let c = Arc::clone(core);
            let block = blocking(move || {
                c.with_chain(|chain| chain.block(&hash))
                    .map_err(|e| (-1, e.to_string()))
            })
            .await?
            .ok_or((-5, "Block not found".to_owned()))?;
            block_json(core, &block, verbosity)
        }
        "getblockchaininfo" => {
            let (height, tip) = core.tip();
            let mtp = core.with_chain(|c| c.median_time_past());
            Ok(json!({
                "chain": "regtest", "blocks": height, "headers": height,
                "bestblockhash": tip.to_string(), "difficulty": core.difficulty(),
                "mediantime": mtp, "initialblockdownload": false, "warnings": "",
            }))
        }
        "getmininginfo" => {
            let (height, _) = core.tip();
            Ok(json!({
                "blocks": height, "difficulty": core.difficulty(), "chain": "regtest",
                "networkhashps": 0, "pooledtx": 0, "warnings": "",
            }))
        }
        "getdifficulty" => Ok(json!(core.difficulty())),
        "validateaddress" => {
            let address = param_str(params, 0, "address")?;
            Ok(
                match crate::work::payout::payout_script(address, bitcoin::Network::Regtest, true) {
                    Ok(script) => json!({
                        "isvalid": true, "address": address,
                        "scriptPubKey": script.as_bytes().to_lower_hex_string(),
                    }),
                    Err(e) => json!({"isvalid": false, "error": e.to_string()}),
                },
            )
        }
        "getnetworkinfo" => Ok(network_info()),
        "help" => help(params.first().and_then(Value::as_str)),
        "getnewaddress" => extras.payout_address.as_ref().map(|a| json!(a)).ok_or((
            -18,
            "this node has no payout address (run `wgminer node`)".into(),
        )),
        "generatetoaddress" => generate_to_address(extras, params).await,
        "stop" => match &extras.stop {
            Some(stop) => {
                let _ = stop.try_send(());
                Ok(json!("wgminer node stopping"))
            }
            None => Err((-32601, "stop is not available on this server".into())),
        },
        _ => Err((-32601, "Method not found".into())),
    }
}

/// The methods this node answers, with their arguments: `help`'s text.
const METHODS: [(&str, &str); 16] = [
    ("generatetoaddress", "nblocks \"address\" ( maxtries )  mine nblocks blocks paying address now, with this node's devices"),
    ("getbestblockhash", "  the tip's hash"),
    ("getblock", "\"blockhash\" ( verbosity )  a block as hex (0), JSON (1) or JSON with transactions (2)"),
    ("getblockchaininfo", "  chain, height, difficulty, median time"),
    ("getblockcount", "  the tip's height"),
    ("getblockhash", "height  the hash of the block at height"),
    ("getblockheader", "\"blockhash\" ( verbose )  a header as JSON or hex"),
    ("getblocktemplate", "( \"template_request\" )  BIP22/23 template; longpoll; mode \"proposal\""),
    ("getdifficulty", "  the difficulty the next block must meet"),
    ("getmininginfo", "  height, difficulty, chain"),
    ("getnetworkinfo", "  version and subversion (this node has no peers)"),
    ("getnewaddress", "  the address this node's own blocks pay (its payout key)"),
    ("help", "( \"command\" )  this list, or one command's line"),
    ("stop", "  stop wgminer node"),
    ("submitblock", "\"hexdata\"  validate and store a block"),
    ("validateaddress", "\"address\"  whether address is valid on regtest"),
];

fn help(command: Option<&str>) -> RpcResult {
    let line = |(name, args): &(&str, &str)| format!("{name} {args}");
    match command {
        None => Ok(json!(format!(
            "== wgminer node (regtest) ==\n{}",
            METHODS.iter().map(line).collect::<Vec<_>>().join("\n")
        ))),
        Some(c) => METHODS
            .iter()
            .find(|(name, _)| *name == c)
            .map(|m| json!(line(m)))
            .ok_or((-32601, format!("help: unknown command: {c}"))),
    }
}

/// Every method this server answers, with its arguments and what it does (`wgminer node
/// --help` lists them from here).
pub fn method_list() -> impl Iterator<Item = (&'static str, &'static str)> {
    METHODS.iter().copied()
}

/// `getnetworkinfo`, for `bitcoin-cli -getinfo` and tools that check the node's version: this
/// node has no peers and relays nothing.
fn network_info() -> Value {
    let version: Vec<u64> = env!("CARGO_PKG_VERSION")
        .split('.')
        .map(|p| p.parse().unwrap_or(0))
        .collect();
    let number = version.iter().take(3).fold(0, |n, p| n * 100 + p);
    json!({
        "version": number,
        "subversion": format!("/wgminer:{}/", env!("CARGO_PKG_VERSION")),
        "protocolversion": 70016,
        "localservices": "0000000000000000",
        "localrelay": false,
        "timeoffset": 0,
        "networkactive": false,
        "connections": 0,
        "networks": [],
        "relayfee": 0.0,
        "incrementalfee": 0.0,
        "localaddresses": [],
        "warnings": "",
    })
}

/// `generatetoaddress nblocks address ( maxtries )`: maxtries is accepted and ignored (the
/// devices mine until the blocks are found).
async fn generate_to_address(extras: &RpcExtras, params: &[Value]) -> RpcResult {
    let count = params
        .first()
        .and_then(Value::as_u64)
        .filter(|&n| n <= u64::from(MAX_BLOCKS))
        .ok_or((
            -8,
            format!("nblocks must be an integer from 0 to {MAX_BLOCKS}"),
        ))?;
    let address = param_str(params, 1, "address")?;
    let script = crate::work::payout::payout_script(address, bitcoin::Network::Regtest, true)
        .map_err(|e| (-5, format!("Invalid address: {e}")))?;
    let generate = extras.generate.as_ref().ok_or((
        -32601,
        "generatetoaddress needs devices: run `wgminer node`".to_owned(),
    ))?;
    let hashes = generate(count as u32, script).await.map_err(|e| (-1, e))?;
    Ok(json!(hashes
        .iter()
        .map(|h| h.to_string())
        .collect::<Vec<_>>()))
}

/// Run chain work that touches the disk off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, (i64, String)> + Send + 'static,
) -> Result<T, (i64, String)> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err((-1, format!("internal error: {e}"))))
}

/// BIP22/23 `getblocktemplate`; with a `longpollid` naming the current tip, waits until the tip
/// moves (or [`LONGPOLL_WAIT`] passes, or the server stops). `mode: "proposal"` checks a block.
async fn get_block_template(
    core: &Arc<NodeCore>,
    stopping: &Stopping,
    request: Option<&Value>,
) -> RpcResult {
    match request.and_then(|r| r.get("mode")).and_then(Value::as_str) {
        None | Some("template") => {}
        Some("proposal") => return proposal(core, request).await,
        Some(mode) => {
            return Err((
                -8,
                format!("mode {mode:?} is not supported; use \"template\" or \"proposal\""),
            ))
        }
    }
    let longpoll = request
        .and_then(|r| r.get("longpollid"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    if let Some(id) = longpoll {
        let mut tips = core.subscribe();
        if tips.borrow_and_update().1.to_string() == id {
            tokio::select! {
                _ = tokio::time::timeout(LONGPOLL_WAIT, tips.changed()) => {}
                // Stopping: answer with the current template now rather than hold shutdown.
                _ = stopping.clone().wait() => {}
            }
        }
    }
    let c = Arc::clone(core);
    let template = blocking(move || Ok(c.template())).await?;
    Ok(template.to_gbt())
}

/// BIP23 block proposal: would the block in `data` be accepted on the current tip, proof of
/// work aside? Null if so, else the reason, in Bitcoin Core's words (its `BIP22ValidationResult`).
async fn proposal(core: &Arc<NodeCore>, request: Option<&Value>) -> RpcResult {
    let hex = request
        .and_then(|r| r.get("data"))
        .and_then(Value::as_str)
        .ok_or((-3, "Missing data String key for proposal".to_owned()))?;
    let bytes = Vec::<u8>::from_hex(hex).map_err(|_| (-22, "Block decode failed".to_owned()))?;
    let block: Block = deserialize(&bytes).map_err(|_| (-22, "Block decode failed".to_owned()))?;
    let c = Arc::clone(core);
    let verdict = blocking(move || Ok(c.check_proposal(&block))).await?;
    Ok(match verdict {
        Ok(()) => Value::Null,
        // Core's wording: a block on another parent may yet be fine, it is not on the tip.
        Err(RejectReason::BadPrevBlock(_) | RejectReason::StalePrevBlock { .. }) => {
            json!("inconclusive-not-best-prevblk")
        }
        Err(reason) => json!(reason.code()),
    })
}

/// `submitblock`: null when accepted, else Bitcoin Core's reason code.
fn submit_block(core: &NodeCore, hex: &str) -> RpcResult {
    let bytes = Vec::<u8>::from_hex(hex).map_err(|_| (-22, "Block decode failed".to_owned()))?;
    let block: Block = deserialize(&bytes).map_err(|_| (-22, "Block decode failed".to_owned()))?;
    match core.submit(&block) {
        Ok(accepted) => {
            tracing::info!(
                "block {} accepted at height {} over RPC",
                accepted.hash,
                accepted.height
            );
            Ok(Value::Null)
        }
        Err(rejected) => {
            tracing::info!("{rejected}");
            Ok(json!(rejected.reason.code()))
        }
    }
}

fn header_json(core: &NodeCore, header: &bitcoin::block::Header, height: u32) -> Value {
    let (tip_height, _) = core.tip();
    let next = core.with_chain(|c| c.block_hash_at(height + 1));
    let mut v = json!({
        "hash": header.block_hash().to_string(),
        "confirmations": i64::from(tip_height) - i64::from(height) + 1,
        "height": height,
        "version": header.version.to_consensus(),
        "versionHex": format!("{:08x}", header.version.to_consensus()),
        "merkleroot": header.merkle_root.to_string(),
        "time": header.time,
        "nonce": header.nonce,
        "bits": format!("{:08x}", header.bits.to_consensus()),
        "difficulty": crate::pow::difficulty_of_target(&header.target()),
    });
    if height > 0 {
        v["previousblockhash"] = json!(header.prev_blockhash.to_string());
    }
    if let Some(n) = next {
        v["nextblockhash"] = json!(n.to_string());
    }
    v
}

fn block_json(core: &NodeCore, block: &Block, verbosity: u64) -> RpcResult {
    if verbosity == 0 {
        return Ok(json!(serialize(block).to_lower_hex_string()));
    }
    let hash = block.block_hash();
    let (_, height) = core
        .with_chain(|c| c.header(&hash))
        .ok_or((-5, "Block not found".to_owned()))?;
    let mut v = header_json(core, &block.header, height);
    v["size"] = json!(block.total_size());
    v["weight"] = json!(block.weight().to_wu());
    v["nTx"] = json!(block.txdata.len());
    v["tx"] = if verbosity >= 2 {
        block
            .txdata
            .iter()
            .map(|t| {
                json!({"txid": t.compute_txid().to_string(), "hash": t.compute_wtxid().to_string(),
                       "hex": serialize(t).to_lower_hex_string()})
            })
            .collect()
    } else {
        block
            .txdata
            .iter()
            .map(|t| json!(t.compute_txid().to_string()))
            .collect()
    };
    Ok(v)
}

fn param_str<'a>(params: &'a [Value], index: usize, name: &str) -> Result<&'a str, (i64, String)> {
    params
        .get(index)
        .and_then(Value::as_str)
        .ok_or((-8, format!("{name} (string) is required")))
}

fn param_hash(params: &[Value], index: usize) -> Result<BlockHash, (i64, String)> {
    param_str(params, index, "blockhash")?
        .parse()
        .map_err(|_| (-8, "blockhash must be 64 hex digits".to_owned()))
}

/// The JSON-RPC layer without HTTP: one request body (a call or a batch) in, the HTTP status and
/// reply body out, as [`RpcServer`] answers an authenticated POST. Public so the dispatcher can
/// be fuzzed in-process (tests/node_fuzz.rs); not an API.
#[doc(hidden)]
pub async fn handle_json_rpc(core: &Arc<NodeCore>, body: &[u8]) -> (u16, Vec<u8>) {
    answer(core, &Stopping::never(), &RpcExtras::default(), body).await
}
