//! Stratum V1 lines from the pool, parsed into typed messages: responses to our requests, and the
//! pool's notifications and requests (`mining.notify`, `mining.set_difficulty`,
//! `mining.set_extranonce`, `mining.set_version_mask`, `client.reconnect`,
//! `client.show_message`, `client.get_version`).
//!
//! Field conventions (slush's original Stratum V1 description, as every pool implements it):
//! `prevhash` is the internal byte order with each 4-byte word byte-swapped; version, nBits and
//! nTime are big-endian hex of the u32; merkle branch entries are internal byte order.
//!
//! Pure: bytes in, values out. Any input, however malformed, gives a [`MessageError`], never a
//! panic; a method we do not know is a value ([`ServerMethod::Other`]), for the session to answer.

use bitcoin::block::Version;
use bitcoin::hashes::Hash;
use bitcoin::hex::FromHex;
use bitcoin::pow::CompactTarget;
use bitcoin::{BlockHash, TxMerkleNode};
use serde_json::{Map, Value};

use crate::pow::target_from_difficulty;
use crate::work::job::{CoinbaseTemplate, Job, JobError, DEFAULT_NTIME_ROLL};
use crate::work::rolling::check_extranonce2_size;

/// The longest line accepted from a pool. A notify with a 12-level branch is about 2 KB; pools
/// that pay many outputs from the coinbase send tens of KB. Anything near a megabyte is an attack
/// or a broken pool.
pub const MAX_LINE_LEN: usize = 1 << 20;

/// The longest extranonce1 taken from a pool. Pools give 4 to 8 bytes (proxies that split it
/// further, a few more); it goes into every coinbase with the extranonce2 after it, and the whole
/// scriptSig has 100 bytes at most (consensus). Longer is refused (subscribe fails; a
/// `mining.set_extranonce` is ignored).
pub const MAX_EXTRANONCE1_SIZE: usize = 32;

/// The longest job id taken from a pool. Pools use a few hex digits or a counter; the id is kept
/// with every live job and echoed in every share, held ones included, so a pool must not make it
/// megabytes. A notify with a longer one is refused.
pub const MAX_JOB_ID_LEN: usize = 128;

/// The longest subscription id kept to resume a session with. Pools use 8 to 32 hex digits; a
/// longer one is not offered back (the session is not resumed, which is harmless).
pub const MAX_SESSION_ID_LEN: usize = 128;

/// Why a line is not a Stratum message we can use.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum MessageError {
    #[error("line of {0} bytes is over the {MAX_LINE_LEN}-byte limit")]
    LineTooLong(usize),
    #[error("line is not UTF-8")]
    NotUtf8,
    #[error("not JSON: {0}")]
    NotJson(String),
    #[error("not a JSON object")]
    NotObject,
    #[error("neither a request (method) nor a response (result or error)")]
    NotAMessage,
    #[error("id is neither a non-negative integer, a string nor null")]
    BadId,
    #[error("{method}: {reason}")]
    BadParams {
        method: &'static str,
        reason: &'static str,
    },
    #[error("{method}: {source}")]
    BadField {
        method: &'static str,
        #[source]
        source: JobError,
    },
    #[error("unexpected result for {0}")]
    BadResult(&'static str),
    #[error("{method}: {field} of {len} bytes is over the {max}-byte limit")]
    TooLong {
        method: &'static str,
        field: &'static str,
        len: usize,
        max: usize,
    },
}

/// A JSON-RPC id. We send integers; pools echo them, and their own requests may use either.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Id {
    Number(u64),
    Text(String),
}

impl Id {
    fn from_json(v: Option<&Value>) -> Result<Option<Id>, MessageError> {
        match v {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(Id::Text(s.clone()))),
            Some(Value::Number(n)) => n
                .as_u64()
                .map(|n| Some(Id::Number(n)))
                .ok_or(MessageError::BadId),
            Some(_) => Err(MessageError::BadId),
        }
    }

    pub fn to_json(&self) -> Value {
        match self {
            Id::Number(n) => Value::from(*n),
            Id::Text(s) => Value::from(s.as_str()),
        }
    }
}

/// One line from the pool.
#[derive(Clone, Debug, PartialEq)]
pub enum Message {
    /// The answer to one of our requests.
    Response(Response),
    /// A notification (id null) or a request the pool expects an answer to.
    Request(ServerRequest),
}

/// The pool's answer to a request of ours.
#[derive(Clone, Debug, PartialEq)]
pub struct Response {
    pub id: Option<Id>,
    pub result: Value,
    pub error: Option<RpcError>,
    /// Some pools (ckpool and its descendants) give the reason for a rejected share here rather
    /// than in `error`.
    pub reject_reason: Option<String>,
}

/// An error object. Stratum V1 pools send `[code, "message", traceback]`; JSON-RPC 2.0-style
/// pools send `{"code": .., "message": ..}`; a few send a bare string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RpcError {
    pub code: Option<i64>,
    pub message: String,
}

impl std::fmt::Display for RpcError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.code {
            Some(code) => write!(f, "{} (code {code})", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl RpcError {
    fn from_json(v: &Value) -> Option<RpcError> {
        let code_of = |v: Option<&Value>| v.and_then(Value::as_i64);
        let text_of = |v: Option<&Value>| match v {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Null) | None => String::new(),
            Some(other) => other.to_string(),
        };
        match v {
            Value::Null => None,
            Value::Array(a) => Some(RpcError {
                code: code_of(a.first()),
                message: text_of(a.get(1)),
            }),
            Value::Object(o) => Some(RpcError {
                code: code_of(o.get("code")),
                message: text_of(o.get("message")),
            }),
            Value::String(s) => Some(RpcError {
                code: None,
                message: s.clone(),
            }),
            other => Some(RpcError {
                code: None,
                message: other.to_string(),
            }),
        }
    }
}

/// What `mining.subscribe` answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubscribeResult {
    /// (method, subscription id) pairs; the `mining.notify` id is the session to resume.
    pub subscriptions: Vec<(String, String)>,
    pub extranonce1: Vec<u8>,
    pub extranonce2_size: usize,
}

impl SubscribeResult {
    /// The subscription id to offer when resuming the session after a reconnect (none when the
    /// pool's is over [`MAX_SESSION_ID_LEN`]).
    pub fn session_id(&self) -> Option<&str> {
        self.subscriptions
            .iter()
            .find(|(m, _)| m == "mining.notify")
            .map(|(_, id)| id.as_str())
            .filter(|id| id.len() <= MAX_SESSION_ID_LEN)
    }
}

/// What `mining.configure` answers about version rolling (BIP310).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigureResult {
    /// The mask the pool allows, if it accepted version rolling.
    pub version_rolling_mask: Option<u32>,
}

impl Response {
    /// Whether the pool accepted the request: no error, and a result that is not `false`/null.
    pub fn is_accepted(&self) -> bool {
        self.error.is_none() && !matches!(self.result, Value::Null | Value::Bool(false))
    }

    /// The result of `mining.subscribe`: `[subscriptions, extranonce1, extranonce2_size]`.
    pub fn subscribe_result(&self) -> Result<SubscribeResult, MessageError> {
        const WHAT: &str = "mining.subscribe";
        let a = self
            .result
            .as_array()
            .ok_or(MessageError::BadResult(WHAT))?;
        let (subs, en1, size) = match a.as_slice() {
            [subs, en1, size, ..] => (subs, en1, size),
            _ => return Err(MessageError::BadResult(WHAT)),
        };
        let extranonce1 = en1
            .as_str()
            .and_then(|s| Vec::<u8>::from_hex(s).ok())
            .ok_or(MessageError::BadResult(WHAT))?;
        check_extranonce1(&extranonce1, WHAT)?;
        let extranonce2_size = size
            .as_u64()
            .and_then(|s| usize::try_from(s).ok())
            .ok_or(MessageError::BadResult(WHAT))?;
        check_extranonce2_size(extranonce2_size).map_err(|source| MessageError::BadField {
            method: WHAT,
            source,
        })?;
        let mut subscriptions = Vec::new();
        collect_subscriptions(subs, &mut subscriptions, 0);
        Ok(SubscribeResult {
            subscriptions,
            extranonce1,
            extranonce2_size,
        })
    }

    /// The result of `mining.configure`, e.g. `{"version-rolling": true,
    /// "version-rolling.mask": "1fffe000"}`.
    pub fn configure_result(&self) -> Result<ConfigureResult, MessageError> {
        const WHAT: &str = "mining.configure";
        let o = self
            .result
            .as_object()
            .ok_or(MessageError::BadResult(WHAT))?;
        let accepted = o.get("version-rolling").and_then(Value::as_bool) == Some(true);
        let version_rolling_mask = if accepted {
            let mask = o
                .get("version-rolling.mask")
                .and_then(Value::as_str)
                .ok_or(MessageError::BadResult(WHAT))?;
            Some(hex_u32(mask, "version-rolling.mask").map_err(|source| {
                MessageError::BadField {
                    method: WHAT,
                    source,
                }
            })?)
        } else {
            None
        };
        Ok(ConfigureResult {
            version_rolling_mask,
        })
    }
}

/// Subscriptions come as `[[m, id], [m, id]]` from most pools and as a bare `[m, id]` from some.
fn collect_subscriptions(v: &Value, out: &mut Vec<(String, String)>, depth: usize) {
    let Some(a) = v.as_array() else { return };
    if let [Value::String(m), Value::String(id)] = a.as_slice() {
        out.push((m.clone(), id.clone()));
    } else if depth < 2 {
        for item in a {
            collect_subscriptions(item, out, depth + 1);
        }
    }
}

/// A notification or request from the pool.
#[derive(Clone, Debug, PartialEq)]
pub struct ServerRequest {
    /// `None` for notifications; otherwise the pool expects a reply with this id.
    pub id: Option<Id>,
    pub method: ServerMethod,
}

/// The pool-to-miner methods of Stratum V1 and its common extensions.
#[derive(Clone, Debug, PartialEq)]
pub enum ServerMethod {
    Notify(Notify),
    /// Applies to jobs notified after it, never to work already handed out.
    SetDifficulty(f64),
    /// New extranonce1 and extranonce2 size (`mining.extranonce.subscribe` extension); like a
    /// difficulty change, applies from the next job.
    SetExtranonce {
        extranonce1: Vec<u8>,
        extranonce2_size: usize,
    },
    /// A new BIP310 version-rolling mask.
    SetVersionMask(u32),
    /// Reconnect, to another host/port if given, after `wait_secs` if given.
    Reconnect {
        host: Option<String>,
        port: Option<u16>,
        wait_secs: Option<u64>,
    },
    /// A message for the operator.
    ShowMessage(String),
    /// The pool asks for our user agent.
    GetVersion,
    /// A method this miner does not know: answer "method not found" if it has an id.
    Other {
        method: String,
        params: Value,
    },
}

/// `mining.notify`, with its hex fields decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notify {
    pub job_id: String,
    pub prev_hash: BlockHash,
    pub coinb1: Vec<u8>,
    pub coinb2: Vec<u8>,
    pub merkle_branch: Vec<TxMerkleNode>,
    pub version: Version,
    pub bits: CompactTarget,
    pub ntime: u32,
    pub clean: bool,
}

/// What the session knows when a notify arrives, and what the job takes from it: the
/// extranonce1 and size, the difficulty set *before* this notify, the negotiated mask.
#[derive(Clone, Debug, PartialEq)]
pub struct NotifyContext {
    pub extranonce1: Vec<u8>,
    pub extranonce2_size: usize,
    /// Pool share difficulty (1 until the pool says otherwise).
    pub difficulty: f64,
    /// BIP310 mask from `mining.configure` or `mining.set_version_mask`; 0: no rolling.
    pub version_mask: u32,
    pub ntime_roll: u32,
}

impl NotifyContext {
    /// The context right after `mining.subscribe`: difficulty 1, no version rolling.
    pub fn new(extranonce1: Vec<u8>, extranonce2_size: usize) -> Self {
        NotifyContext {
            extranonce1,
            extranonce2_size,
            difficulty: 1.0,
            version_mask: 0,
            ntime_roll: DEFAULT_NTIME_ROLL,
        }
    }
}

impl Notify {
    /// The job this notify describes under the session's current context.
    pub fn to_job(&self, ctx: &NotifyContext) -> Result<Job, JobError> {
        let job = Job {
            id: self.job_id.clone(),
            prev_hash: self.prev_hash,
            version: self.version,
            version_mask: ctx.version_mask,
            bits: self.bits,
            ntime: self.ntime,
            ntime_roll: ctx.ntime_roll,
            coinbase: CoinbaseTemplate {
                prefix: self.coinb1.clone(),
                extranonce1: ctx.extranonce1.clone(),
                extranonce2_size: ctx.extranonce2_size,
                suffix: self.coinb2.clone(),
            },
            merkle_branch: self.merkle_branch.clone(),
            fixed_merkle_root: None,
            share_target: target_from_difficulty(ctx.difficulty)?,
            clean: self.clean,
        };
        job.validate()?;
        Ok(job)
    }
}

/// Parse one line (without or with its trailing newline).
pub fn parse_line(line: &[u8]) -> Result<Message, MessageError> {
    parse_value(&parse_json(line)?)
}

/// The JSON value of one line, not yet read as a message (see [`parse_value`]).
pub fn parse_json(line: &[u8]) -> Result<Value, MessageError> {
    if line.len() > MAX_LINE_LEN {
        return Err(MessageError::LineTooLong(line.len()));
    }
    let text = std::str::from_utf8(line).map_err(|_| MessageError::NotUtf8)?;
    serde_json::from_str(text).map_err(|e| MessageError::NotJson(e.to_string()))
}

/// Parse an already-decoded JSON value.
pub fn parse_value(value: &Value) -> Result<Message, MessageError> {
    let obj = value.as_object().ok_or(MessageError::NotObject)?;
    let id = Id::from_json(obj.get("id"))?;
    match obj.get("method") {
        Some(Value::String(method)) => Ok(Message::Request(ServerRequest {
            id,
            method: parse_method(method, obj)?,
        })),
        // A few pools send `"method": null` on responses.
        Some(Value::Null) | None if obj.contains_key("result") || obj.contains_key("error") => {
            Ok(Message::Response(Response {
                id,
                result: obj.get("result").cloned().unwrap_or(Value::Null),
                error: obj.get("error").and_then(RpcError::from_json),
                reject_reason: obj
                    .get("reject-reason")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
            }))
        }
        _ => Err(MessageError::NotAMessage),
    }
}

fn parse_method(method: &str, obj: &Map<String, Value>) -> Result<ServerMethod, MessageError> {
    let empty = Vec::new();
    let params = match obj.get("params") {
        Some(Value::Array(a)) => a,
        None | Some(Value::Null) => &empty,
        Some(other) => {
            return match KNOWN.iter().find(|m| **m == method) {
                Some(known) => Err(bad(known, "params is not an array")),
                None => Ok(ServerMethod::Other {
                    method: method.to_owned(),
                    params: other.clone(),
                }),
            }
        }
    };
    Ok(match method {
        "mining.notify" => ServerMethod::Notify(parse_notify(params)?),
        "mining.set_difficulty" => {
            const M: &str = "mining.set_difficulty";
            let d = params
                .first()
                .and_then(number)
                .ok_or(bad(M, "expected a number"))?;
            target_from_difficulty(d).map_err(|e| MessageError::BadField {
                method: M,
                source: e.into(),
            })?;
            ServerMethod::SetDifficulty(d)
        }
        "mining.set_extranonce" => {
            const M: &str = "mining.set_extranonce";
            let en1 = str_at(params, 0, M)?;
            let extranonce1 = Vec::<u8>::from_hex(en1).map_err(|_| field(M, "extranonce1"))?;
            check_extranonce1(&extranonce1, M)?;
            let size = params
                .get(1)
                .and_then(Value::as_u64)
                .and_then(|s| usize::try_from(s).ok())
                .ok_or(bad(M, "extranonce2_size is not an integer"))?;
            check_extranonce2_size(size)
                .map_err(|source| MessageError::BadField { method: M, source })?;
            ServerMethod::SetExtranonce {
                extranonce1,
                extranonce2_size: size,
            }
        }
        "mining.set_version_mask" => {
            const M: &str = "mining.set_version_mask";
            let mask = hex_u32(str_at(params, 0, M)?, "version mask")
                .map_err(|source| MessageError::BadField { method: M, source })?;
            ServerMethod::SetVersionMask(mask)
        }
        "client.reconnect" => {
            const M: &str = "client.reconnect";
            let host = match params.first() {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) if s.is_empty() => None,
                Some(Value::String(s)) => Some(s.clone()),
                Some(_) => return Err(bad(M, "host is not a string")),
            };
            let port = match params.get(1) {
                None | Some(Value::Null) => None,
                Some(v) => Some(
                    number(v)
                        .filter(|p| p.fract() == 0.0 && (1.0..=65535.0).contains(p))
                        .map(|p| p as u16)
                        .ok_or(bad(M, "port is not a TCP port"))?,
                ),
            };
            let wait_secs = match params.get(2) {
                None | Some(Value::Null) => None,
                Some(v) => Some(
                    number(v)
                        .filter(|w| w.is_finite() && *w >= 0.0)
                        // A pool cannot make us wait more than a day.
                        .map(|w| w.min(86_400.0) as u64)
                        .ok_or(bad(M, "wait is not a number of seconds"))?,
                ),
            };
            ServerMethod::Reconnect {
                host,
                port,
                wait_secs,
            }
        }
        "client.show_message" => {
            ServerMethod::ShowMessage(str_at(params, 0, "client.show_message")?.to_owned())
        }
        "client.get_version" => ServerMethod::GetVersion,
        other => ServerMethod::Other {
            method: other.to_owned(),
            params: Value::Array(params.clone()),
        },
    })
}

const KNOWN: [&str; 7] = [
    "mining.notify",
    "mining.set_difficulty",
    "mining.set_extranonce",
    "mining.set_version_mask",
    "client.reconnect",
    "client.show_message",
    "client.get_version",
];

fn parse_notify(params: &[Value]) -> Result<Notify, MessageError> {
    const M: &str = "mining.notify";
    if params.len() < 9 {
        return Err(bad(M, "expected 9 parameters"));
    }
    // Job ids are strings; a pool sending a number gets it echoed as its decimal text.
    let job_id = match &params[0] {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => return Err(bad(M, "job id is not a string")),
    };
    if job_id.len() > MAX_JOB_ID_LEN {
        return Err(MessageError::TooLong {
            method: M,
            field: "job id",
            len: job_id.len(),
            max: MAX_JOB_ID_LEN,
        });
    }
    let with = |source| MessageError::BadField { method: M, source };
    let prev_hash = parse_prevhash(str_at(params, 1, M)?).map_err(with)?;
    let coinb1 = Vec::<u8>::from_hex(str_at(params, 2, M)?).map_err(|_| field(M, "coinb1"))?;
    let coinb2 = Vec::<u8>::from_hex(str_at(params, 3, M)?).map_err(|_| field(M, "coinb2"))?;
    let merkle_branch = params[4]
        .as_array()
        .ok_or(bad(M, "merkle branch is not an array"))?
        .iter()
        .map(|v| {
            v.as_str()
                .ok_or(bad(M, "merkle branch entry is not a string"))
                .and_then(|s| parse_merkle_node(s).map_err(with))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let version = hex_u32(str_at(params, 5, M)?, "version").map_err(with)?;
    let bits = hex_u32(str_at(params, 6, M)?, "nbits").map_err(with)?;
    let ntime = hex_u32(str_at(params, 7, M)?, "ntime").map_err(with)?;
    let clean = params[8]
        .as_bool()
        .ok_or(bad(M, "clean_jobs is not a boolean"))?;
    Ok(Notify {
        job_id,
        prev_hash,
        coinb1,
        coinb2,
        merkle_branch,
        version: Version::from_consensus(version as i32),
        bits: CompactTarget::from_consensus(bits),
        ntime,
        clean,
    })
}

fn check_extranonce1(extranonce1: &[u8], method: &'static str) -> Result<(), MessageError> {
    if extranonce1.len() > MAX_EXTRANONCE1_SIZE {
        return Err(MessageError::TooLong {
            method,
            field: "extranonce1",
            len: extranonce1.len(),
            max: MAX_EXTRANONCE1_SIZE,
        });
    }
    Ok(())
}

fn bad(method: &'static str, reason: &'static str) -> MessageError {
    MessageError::BadParams { method, reason }
}

fn field(method: &'static str, name: &'static str) -> MessageError {
    MessageError::BadField {
        method,
        source: JobError::BadHex { field: name },
    }
}

fn str_at<'a>(
    params: &'a [Value],
    i: usize,
    method: &'static str,
) -> Result<&'a str, MessageError> {
    params
        .get(i)
        .and_then(Value::as_str)
        .ok_or(bad(method, "expected a string parameter"))
}

/// A JSON number, or a string holding one (some pools quote difficulties and ports).
fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    }
    .filter(|x| x.is_finite())
}

/// A u32 in Stratum's big-endian hex (exactly 8 digits).
pub fn hex_u32(s: &str, field: &'static str) -> Result<u32, JobError> {
    if s.len() != 8 {
        return Err(JobError::WrongLength {
            field,
            expected: 4,
            got: s.len() / 2,
        });
    }
    <[u8; 4]>::from_hex(s)
        .map(u32::from_be_bytes)
        .map_err(|_| JobError::BadHex { field })
}

fn hex32(s: &str, field: &'static str) -> Result<[u8; 32], JobError> {
    let bytes = Vec::<u8>::from_hex(s).map_err(|_| JobError::BadHex { field })?;
    <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| JobError::WrongLength {
        field,
        expected: 32,
        got: bytes.len(),
    })
}

/// Stratum's `prevhash`: internal byte order with every 4-byte word byte-swapped.
pub fn parse_prevhash(s: &str) -> Result<BlockHash, JobError> {
    let mut b = hex32(s, "prevhash")?;
    for word in b.chunks_exact_mut(4) {
        word.reverse();
    }
    Ok(BlockHash::from_byte_array(b))
}

/// The inverse of [`parse_prevhash`], for a pool (test server) building notifies.
pub fn prevhash_to_stratum(hash: &BlockHash) -> String {
    use bitcoin::hex::DisplayHex;
    let mut b = hash.to_byte_array();
    for word in b.chunks_exact_mut(4) {
        word.reverse();
    }
    b.to_lower_hex_string()
}

/// A merkle branch entry: 32 bytes in internal byte order.
pub fn parse_merkle_node(s: &str) -> Result<TxMerkleNode, JobError> {
    hex32(s, "merkle branch").map(TxMerkleNode::from_byte_array)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(line: &str) -> ServerRequest {
        match parse_line(line.as_bytes()) {
            Ok(Message::Request(r)) => r,
            other => panic!("{line}: {other:?}"),
        }
    }

    fn response(line: &str) -> Response {
        match parse_line(line.as_bytes()) {
            Ok(Message::Response(r)) => r,
            other => panic!("{line}: {other:?}"),
        }
    }

    #[test]
    fn responses_and_their_results() {
        let r = response(
            r#"{"id": 1, "result": [ [ ["mining.set_difficulty", "b4b6693b72a50c7116db18d6497cac52"], ["mining.notify", "ae6812eb4cd7735a302a8a9dd95cf71f"]], "08000002", 4], "error": null}"#,
        );
        assert_eq!(r.id, Some(Id::Number(1)));
        let s = r.subscribe_result().unwrap();
        assert_eq!(s.extranonce1, vec![8, 0, 0, 2]);
        assert_eq!(s.extranonce2_size, 4);
        assert_eq!(s.session_id(), Some("ae6812eb4cd7735a302a8a9dd95cf71f"));
        // The flat form some pools send.
        let r = response(r#"{"id":1,"result":[["mining.notify","ab"],"00",8]}"#);
        assert_eq!(r.subscribe_result().unwrap().session_id(), Some("ab"));
        let r = response(
            r#"{"id":2,"error":null,"result":{"version-rolling":true,"version-rolling.mask":"1fffe000"}}"#,
        );
        assert_eq!(
            r.configure_result().unwrap().version_rolling_mask,
            Some(0x1fffe000)
        );
        let r = response(r#"{"id":5,"result":null,"error":[23,"Low difficulty share",null]}"#);
        assert!(!r.is_accepted());
        assert_eq!(
            r.error,
            Some(RpcError {
                code: Some(23),
                message: "Low difficulty share".into()
            })
        );
        let r = response(r#"{"id":"x","result":false,"error":null,"reject-reason":"Stale"}"#);
        assert_eq!(r.id, Some(Id::Text("x".into())));
        assert_eq!(r.reject_reason.as_deref(), Some("Stale"));
        assert!(response(r#"{"id":3,"result":true,"error":null}"#).is_accepted());
        assert!(response(r#"{"id":3,"result":true}"#)
            .subscribe_result()
            .is_err());
    }

    #[test]
    fn pool_requests() {
        let r = request(r#"{"id":null,"method":"mining.set_difficulty","params":[512]}"#);
        assert_eq!(r.method, ServerMethod::SetDifficulty(512.0));
        assert_eq!(
            request(r#"{"method":"mining.set_difficulty","params":[0.5]}"#).method,
            ServerMethod::SetDifficulty(0.5)
        );
        assert_eq!(
            request(r#"{"id":null,"method":"mining.set_extranonce","params":["08000002",4]}"#)
                .method,
            ServerMethod::SetExtranonce {
                extranonce1: vec![8, 0, 0, 2],
                extranonce2_size: 4
            }
        );
        assert_eq!(
            request(r#"{"method":"mining.set_version_mask","params":["1fffe000"]}"#).method,
            ServerMethod::SetVersionMask(0x1fffe000)
        );
        assert_eq!(
            request(r#"{"method":"client.reconnect","params":["pool.example",3333,5]}"#).method,
            ServerMethod::Reconnect {
                host: Some("pool.example".into()),
                port: Some(3333),
                wait_secs: Some(5)
            }
        );
        assert_eq!(
            request(r#"{"method":"client.reconnect","params":[]}"#).method,
            ServerMethod::Reconnect {
                host: None,
                port: None,
                wait_secs: None
            }
        );
        assert_eq!(
            request(r#"{"method":"client.show_message","params":["hi"]}"#).method,
            ServerMethod::ShowMessage("hi".into())
        );
        let r = request(r#"{"id":7,"method":"client.get_version","params":[]}"#);
        assert_eq!(
            (r.id, r.method),
            (Some(Id::Number(7)), ServerMethod::GetVersion)
        );
        assert!(matches!(
            request(r#"{"id":8,"method":"mining.ping","params":{}}"#).method,
            ServerMethod::Other { .. }
        ));
    }

    #[test]
    fn malformed_lines_are_errors() {
        for (line, want) in [
            ("", "NotJson"),
            ("{", "NotJson"),
            ("[1,2]", "NotObject"),
            (r#"{"id":1}"#, "NotAMessage"),
            (r#"{"id":-1,"result":true}"#, "BadId"),
            (
                r#"{"method":"mining.set_difficulty","params":[0]}"#,
                "BadField",
            ),
            (
                r#"{"method":"mining.set_difficulty","params":["x"]}"#,
                "BadParams",
            ),
            (
                r#"{"method":"mining.set_difficulty","params":{}}"#,
                "BadParams",
            ),
            (
                r#"{"method":"mining.set_extranonce","params":["0800",0]}"#,
                "BadField",
            ),
            (
                r#"{"method":"mining.set_extranonce","params":["0g",4]}"#,
                "BadField",
            ),
            (
                r#"{"method":"mining.set_version_mask","params":["1fffe0"]}"#,
                "BadField",
            ),
            (
                r#"{"method":"client.reconnect","params":["h",70000]}"#,
                "BadParams",
            ),
            (r#"{"method":"mining.notify","params":["1"]}"#, "BadParams"),
        ] {
            let err = parse_line(line.as_bytes()).unwrap_err();
            assert!(format!("{err:?}").starts_with(want), "{line}: {err:?}");
        }
        assert_eq!(
            parse_line(&[0xff, 0xfe]).unwrap_err(),
            MessageError::NotUtf8
        );
        assert!(matches!(
            parse_line(&vec![b' '; MAX_LINE_LEN + 1]),
            Err(MessageError::LineTooLong(_))
        ));
    }

    #[test]
    fn prevhash_word_swap_round_trips() {
        let s = "4d16b6f85af6e2198f44ae2a6de67f78487ae5611b77c6c0440b921e00000000";
        let h = parse_prevhash(s).unwrap();
        assert_eq!(
            h.to_string(),
            "00000000440b921e1b77c6c0487ae5616de67f788f44ae2a5af6e2194d16b6f8"
        );
        assert_eq!(prevhash_to_stratum(&h), s);
        assert!(parse_prevhash("00").is_err());
    }
}
