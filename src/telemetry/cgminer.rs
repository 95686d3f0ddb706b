//! cgminer's API, for the farm tools, exporters and dashboards that speak it: one request per
//! TCP connection (`{"command":"summary","parameter":""}` or the text form `summary|`), one
//! reply ended by a NUL byte, then the connection closes. The commands, section names, field
//! names and STATUS envelope are cgminer's (its API-README, API version 3.7); the numbers come
//! from the same [`MiningStats`](crate::work::MiningStats) as the HTTP API. Report commands can be joined with `+`.
//!
//! Privileged commands (`switchpool`, `restart`, `quit`, `privileged`) are answered only for
//! addresses on the allow-list; they are handed to the application as a [`Control`].
//!
//! Limits: at most [`MAX_CONNECTIONS`] at once (more wait in the listen backlog), a request of
//! at most [`MAX_REQUEST`] bytes that must arrive within [`REQUEST_TIMEOUT`], replies written
//! within [`REPLY_TIMEOUT`].

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde_json::{json, Map, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinHandle;

use super::api::ApiState;
use crate::work::stats::{DeviceSnapshot, SensorReading};
use crate::work::StatsSnapshot;

/// The cgminer API version whose commands and fields these are.
pub const API_VERSION: &str = "3.7";
/// Connections served at once; a dashboard polls one or two commands every few seconds.
pub const MAX_CONNECTIONS: usize = 16;
/// The longest request read: cgminer's commands are a few dozen bytes.
pub const MAX_REQUEST: usize = 8 * 1024;
/// The whole request must arrive within this (clients send it at once; a silent peer holds a
/// slot no longer).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// A reply not taken within this is dropped with its connection.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(10);
/// A text request without a newline is taken as whole after this much quiet.
const TEXT_QUIET: Duration = Duration::from_millis(100);

/// What a privileged command asks the application to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Control {
    /// Mine on the pool at this index of the configured list (0 first).
    SwitchPool(usize),
    /// Stop the run and start it again with the same settings.
    Restart,
    /// Stop the run.
    Quit,
}

/// Addresses allowed the privileged commands: single addresses or prefixes (`10.0.0.0/24`,
/// `::1`), written as a comma-separated list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AllowList(Vec<(IpAddr, u8)>);

impl AllowList {
    pub fn parse(text: &str) -> Result<AllowList, String> {
        let mut nets = Vec::new();
        for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (addr, bits) = match item.split_once('/') {
                Some((a, b)) => (a, Some(b)),
                None => (item, None),
            };
            let addr: IpAddr = addr.parse().map_err(|_| {
                format!("`{item}` is not an IP address or prefix (e.g. 127.0.0.1 or 10.0.0.0/24)")
            })?;
            let max = if addr.is_ipv4() { 32 } else { 128 };
            let bits = match bits {
                None => max,
                Some(b) => match b.parse::<u8>() {
                    Ok(n) if n <= max => n,
                    _ => return Err(format!("`{item}`: the prefix length must be 0 to {max}")),
                },
            };
            nets.push((addr, bits));
        }
        Ok(AllowList(nets))
    }

    pub fn allows(&self, peer: IpAddr) -> bool {
        let peer = canonical(peer);
        self.0
            .iter()
            .any(|&(net, bits)| match (canonical(net), peer) {
                (IpAddr::V4(n), IpAddr::V4(p)) => prefix_eq(&n.octets(), &p.octets(), bits),
                (IpAddr::V6(n), IpAddr::V6(p)) => prefix_eq(&n.octets(), &p.octets(), bits),
                _ => false,
            })
    }
}

/// An IPv4 peer on a dual-stack socket arrives as `::ffff:a.b.c.d`.
fn canonical(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
        v4 => v4,
    }
}

fn prefix_eq(a: &[u8], b: &[u8], bits: u8) -> bool {
    let (whole, rest) = (usize::from(bits / 8), bits % 8);
    if a[..whole] != b[..whole] {
        return false;
    }
    rest == 0 || {
        let mask = 0xffu8 << (8 - rest);
        a[whole] & mask == b[whole] & mask
    }
}

/// Where to listen and who may use the privileged commands.
#[derive(Clone, Debug)]
pub struct CgminerConfig {
    pub bind: SocketAddr,
    pub privileged: AllowList,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CgminerError {
    #[error(
        "cannot serve the cgminer API on {addr}: {source} (is the port in use? choose another --api-cgminer-bind)"
    )]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// A running cgminer API server; dropping it (or [`Self::stop`]) stops accepting.
pub struct CgminerServer {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl CgminerServer {
    /// Listen on `config.bind`; privileged commands from allowed peers go to `control`.
    pub async fn start(
        config: CgminerConfig,
        state: ApiState,
        control: mpsc::Sender<Control>,
    ) -> Result<CgminerServer, CgminerError> {
        let bind_err = |source| CgminerError::Bind {
            addr: config.bind,
            source,
        };
        let listener = TcpListener::bind(config.bind).await.map_err(bind_err)?;
        let addr = listener.local_addr().map_err(bind_err)?;
        let shared = Arc::new((config, state, control));
        let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        let task = tokio::spawn(async move {
            loop {
                // Wait for a free slot before accepting: extra peers wait in the backlog.
                let Ok(permit) = Arc::clone(&slots).acquire_owned().await else {
                    return;
                };
                let (stream, peer) = match listener.accept().await {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::debug!("cgminer API: accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let shared = Arc::clone(&shared);
                tokio::spawn(async move {
                    let (config, state, control) = &*shared;
                    serve(stream, peer.ip(), config, state, control).await;
                    drop(permit);
                });
            }
        });
        Ok(CgminerServer { addr, task })
    }

    /// Where it listens (the real port when bound to port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn stop(self) {
        self.task.abort();
    }
}

impl Drop for CgminerServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(
    mut stream: TcpStream,
    peer: IpAddr,
    config: &CgminerConfig,
    state: &ApiState,
    control: &mpsc::Sender<Control>,
) {
    let request = match tokio::time::timeout(REQUEST_TIMEOUT, read_request(&mut stream)).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => return tracing::debug!("cgminer API: {peer}: {e}"),
        Err(_) => return tracing::debug!("cgminer API: {peer}: no whole request in time"),
    };
    let context = Context {
        state,
        snap: state.stats.snapshot(),
        privileged: config.privileged.allows(peer),
        now: unix_now(),
    };
    let (mut reply, action) = answer(&request, &context);
    reply.push('\0');
    let written = tokio::time::timeout(REPLY_TIMEOUT, async {
        stream.write_all(reply.as_bytes()).await?;
        stream.shutdown().await
    })
    .await;
    if let Some(action) = action {
        tracing::info!("cgminer API: {peer} asked to {action:?}");
        // The reply is out first: `quit` answers BYE before the miner stops.
        let _ = control.send(action).await;
    }
    if !matches!(written, Ok(Ok(()))) {
        tracing::debug!("cgminer API: {peer}: the reply was not taken");
    }
}

/// Read one request: a JSON object as soon as it is complete, else text up to a newline, the
/// end of the stream or a short quiet; never more than [`MAX_REQUEST`] bytes.
async fn read_request(stream: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(256);
    let mut chunk = [0u8; 1024];
    loop {
        let read = if buf.is_empty() || starts_json(&buf) {
            stream.read(&mut chunk).await?
        } else {
            match tokio::time::timeout(TEXT_QUIET, stream.read(&mut chunk)).await {
                Ok(r) => r?,
                Err(_) => return Ok(buf),
            }
        };
        if read == 0 {
            return Ok(buf);
        }
        buf.extend_from_slice(&chunk[..read]);
        if buf.len() > MAX_REQUEST {
            return Err(std::io::Error::other(format!(
                "request over {MAX_REQUEST} bytes: refused"
            )));
        }
        if starts_json(&buf) {
            match serde_json::from_slice::<Value>(&buf) {
                Err(e) if e.is_eof() => continue,
                // Whole, or never valid: either way it is answered now.
                _ => return Ok(buf),
            }
        }
        if buf.contains(&b'\n') {
            return Ok(buf);
        }
    }
}

fn starts_json(buf: &[u8]) -> bool {
    buf.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{')
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// What an answer is made from.
pub struct Context<'a> {
    pub state: &'a ApiState,
    pub snap: StatsSnapshot,
    /// Whether the peer may use the privileged commands.
    pub privileged: bool,
    /// cgminer's `When`: the time of the request, Unix seconds.
    pub now: u64,
}

/// A field's value: numbers, text, or cgminer's JSON booleans.
#[derive(Clone, Debug, PartialEq)]
enum Field {
    Int(i64),
    Real(f64),
    Text(String),
    Bool(bool),
}

impl Field {
    fn json(&self) -> Value {
        match self {
            Field::Int(i) => json!(i),
            // Rounded as cgminer prints them; NaN and infinity are not JSON.
            Field::Real(r) if r.is_finite() => json!((r * 1e4).round() / 1e4),
            Field::Real(_) => json!(0),
            Field::Text(t) => json!(t),
            Field::Bool(b) => json!(b),
        }
    }

    fn text(&self) -> String {
        match self {
            Field::Int(i) => i.to_string(),
            Field::Real(r) if r.is_finite() => format!("{r:.4}"),
            Field::Real(_) => "0".into(),
            Field::Bool(b) => if *b { "true" } else { "false" }.into(),
            // The text form escapes its separators, as cgminer does from API 1.7.
            Field::Text(t) => t
                .chars()
                .flat_map(|c| {
                    let escape = matches!(c, '|' | ',' | '=' | '\\');
                    escape.then_some('\\').into_iter().chain(std::iter::once(c))
                })
                .collect(),
        }
    }
}

type Record = Vec<(&'static str, Field)>;

/// One report section (`SUMMARY`, `POOLS`…): its records, and in the text form the word
/// before the fields when the first field does not already name the record (`SUMMARY,` but
/// `POOL=0,`).
struct Section {
    name: &'static str,
    text_head: Option<&'static str>,
    records: Vec<Record>,
}

/// cgminer's STATUS: severity letter, message code and text.
struct Status {
    severity: char,
    code: i64,
    msg: String,
}

impl Status {
    fn ok(code: i64, msg: impl Into<String>) -> Status {
        Status {
            severity: 'S',
            code,
            msg: msg.into(),
        }
    }

    fn error(code: i64, msg: impl Into<String>) -> Status {
        Status {
            severity: 'E',
            code,
            msg: msg.into(),
        }
    }
}

/// One command's reply: the STATUS, then its section if any; `Bye` and `Restart` are
/// cgminer's bare `{"STATUS":"BYE"}` replies.
enum Reply {
    Report(Status, Option<Section>),
    Bye,
    Restart,
}

// cgminer's message codes (api.c), for the replies clients match on.
const MSG_POOL: i64 = 7;
const MSG_NOPOOL: i64 = 8;
const MSG_DEVS: i64 = 9;
const MSG_NODEVS: i64 = 10;
const MSG_SUMM: i64 = 11;
const MSG_INVCMD: i64 = 14;
const MSG_VERSION: i64 = 22;
const MSG_INVJSON: i64 = 23;
const MSG_MISCMD: i64 = 24;
const MSG_MISPID: i64 = 25;
const MSG_INVPID: i64 = 26;
const MSG_SWITCHP: i64 = 27;
const MSG_MINECONFIG: i64 = 33;
const MSG_ACCDENY: i64 = 45;
const MSG_ACCOK: i64 = 46;
const MSG_MINESTATS: i64 = 70;
const MSG_CHECK: i64 = 72;
const MSG_MISCHK: i64 = 71;

/// Report commands that may be joined with `+`.
const REPORTS: [&str; 8] = [
    "version", "config", "summary", "pools", "devs", "edevs", "stats", "estats",
];
const PRIVILEGED: [&str; 4] = ["switchpool", "restart", "quit", "privileged"];

/// The reply to one request and what it asks the application to do.
pub fn answer(request: &[u8], cx: &Context) -> (String, Option<Control>) {
    let text = String::from_utf8_lossy(request);
    let text = text.trim_matches(|c: char| c.is_whitespace() || c == '\0');
    let json = text.starts_with('{');
    let (command, parameter) = if json {
        match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(o)) => match o.get("command").and_then(Value::as_str) {
                Some(c) => (c.to_owned(), o.get("parameter").map(parameter_text)),
                None => {
                    let r =
                        Reply::Report(Status::error(MSG_MISCMD, "Missing JSON 'command'"), None);
                    return (render_one(&r, cx, true), None);
                }
            },
            _ => {
                let r = Reply::Report(Status::error(MSG_INVJSON, "Invalid JSON"), None);
                return (render_one(&r, cx, true), None);
            }
        }
    } else {
        match text.split_once('|') {
            Some((c, p)) => (c.to_owned(), Some(p.to_owned())),
            None => (text.to_owned(), None),
        }
    };
    if command.contains('+') {
        return (joined(&command, cx, json), None);
    }
    let (reply, action) = run(&command, parameter.as_deref(), cx);
    (render_one(&reply, cx, json), action)
}

fn parameter_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `summary+devs`: each report under its own name, a command given twice answered once.
fn joined(commands: &str, cx: &Context, json: bool) -> String {
    let mut seen: Vec<&str> = Vec::new();
    for c in commands.split('+').filter(|c| !c.is_empty()) {
        if !seen.contains(&c) {
            seen.push(c);
        }
    }
    let replies = seen.iter().map(|&c| {
        let reply = if REPORTS.contains(&c) {
            run(c, None, cx).0
        } else {
            Reply::Report(Status::error(MSG_INVCMD, "Invalid command"), None)
        };
        (c, reply)
    });
    if json {
        let mut all = Map::new();
        for (c, reply) in replies {
            all.insert(c.to_owned(), json!([reply_json(&reply, cx)]));
        }
        all.insert("id".into(), json!(1));
        Value::Object(all).to_string()
    } else {
        replies
            .map(|(c, reply)| {
                format!(
                    "CMD={}|{}",
                    Field::Text(c.into()).text(),
                    reply_text(&reply, cx)
                )
            })
            .collect()
    }
}

fn render_one(reply: &Reply, cx: &Context, json: bool) -> String {
    if json {
        reply_json(reply, cx).to_string()
    } else {
        reply_text(reply, cx)
    }
}

fn description() -> String {
    format!("wgminer {}", env!("CARGO_PKG_VERSION"))
}

fn status_record(status: &Status, cx: &Context) -> Record {
    vec![
        ("STATUS", Field::Text(status.severity.to_string())),
        ("When", Field::Int(cx.now as i64)),
        ("Code", Field::Int(status.code)),
        ("Msg", Field::Text(status.msg.clone())),
        ("Description", Field::Text(description())),
    ]
}

fn record_json(record: &Record) -> Value {
    Value::Object(
        record
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.json()))
            .collect(),
    )
}

fn record_text(record: &Record) -> String {
    record
        .iter()
        .map(|(k, v)| format!("{k}={}", v.text()))
        .collect::<Vec<_>>()
        .join(",")
}

fn reply_json(reply: &Reply, cx: &Context) -> Value {
    match reply {
        Reply::Bye => json!({ "STATUS": "BYE", "id": 1 }),
        Reply::Restart => json!({ "STATUS": "RESTART", "id": 1 }),
        Reply::Report(status, section) => {
            let mut o = Map::new();
            o.insert(
                "STATUS".into(),
                json!([record_json(&status_record(status, cx))]),
            );
            if let Some(s) = section {
                o.insert(
                    s.name.into(),
                    Value::Array(s.records.iter().map(record_json).collect()),
                );
            }
            o.insert("id".into(), json!(1));
            Value::Object(o)
        }
    }
}

fn reply_text(reply: &Reply, cx: &Context) -> String {
    match reply {
        Reply::Bye => "BYE".into(),
        Reply::Restart => "RESTART".into(),
        Reply::Report(status, section) => {
            let mut out = format!("{}|", record_text(&status_record(status, cx)));
            for record in section
                .iter()
                .flat_map(|s| s.records.iter().map(move |r| (s, r)))
            {
                let (s, r) = record;
                match s.text_head {
                    Some(head) => out.push_str(&format!("{head},{}|", record_text(r))),
                    None => out.push_str(&format!("{}|", record_text(r))),
                }
            }
            out
        }
    }
}

/// One command: its reply, and the action a privileged one asks for.
fn run(command: &str, parameter: Option<&str>, cx: &Context) -> (Reply, Option<Control>) {
    if PRIVILEGED.contains(&command) && !cx.privileged {
        let status = Status::error(MSG_ACCDENY, format!("Access denied to '{command}' command"));
        return (Reply::Report(status, None), None);
    }
    let report = |status, section| (Reply::Report(status, Some(section)), None);
    match command {
        "version" => report(Status::ok(MSG_VERSION, "CGMiner versions"), version()),
        "config" => report(Status::ok(MSG_MINECONFIG, "CGMiner config"), config(cx)),
        "summary" => report(Status::ok(MSG_SUMM, "Summary"), summary(&cx.snap)),
        "pools" => pools_reply(cx),
        "devs" | "edevs" => devs_reply(&cx.snap),
        "stats" | "estats" => report(Status::ok(MSG_MINESTATS, "CGMiner stats"), stats(cx)),
        "check" => (check(parameter, cx), None),
        "privileged" => (
            Reply::Report(Status::ok(MSG_ACCOK, "Privileged access OK"), None),
            None,
        ),
        "switchpool" => switch_pool(parameter, cx),
        "quit" => (Reply::Bye, Some(Control::Quit)),
        "restart" => (Reply::Restart, Some(Control::Restart)),
        _ => (
            Reply::Report(Status::error(MSG_INVCMD, "Invalid command"), None),
            None,
        ),
    }
}

fn version() -> Section {
    Section {
        name: "VERSION",
        text_head: Some("VERSION"),
        records: vec![vec![
            ("CGMiner", Field::Text(description())),
            ("API", Field::Text(API_VERSION.into())),
            ("wgminer", Field::Text(env!("CARGO_PKG_VERSION").into())),
        ]],
    }
}

fn is_gpu(d: &DeviceSnapshot) -> bool {
    d.label.starts_with("gpu")
}

fn config(cx: &Context) -> Section {
    let gpus = cx.snap.devices.iter().filter(|d| is_gpu(d)).count();
    let cpus = cx.snap.devices.len() - gpus;
    Section {
        name: "CONFIG",
        text_head: Some("CONFIG"),
        records: vec![vec![
            ("GPU Count", Field::Int(gpus as i64)),
            ("CPU Count", Field::Int(cpus as i64)),
            ("ASC Count", Field::Int(0)),
            ("PGA Count", Field::Int(0)),
            ("Pool Count", Field::Int(cx.state.sources.len() as i64)),
            ("Strategy", Field::Text("Failover".into())),
            ("Log Interval", Field::Int(5)),
            ("Device Code", Field::Text("GPU CPU".into())),
            ("OS", Field::Text(std::env::consts::OS.into())),
            ("Hotplug", Field::Text("None".into())),
        ]],
    }
}

/// Mega-hashes a second.
fn mhs(hps: f64) -> Field {
    Field::Real(hps / 1e6)
}

fn percent(part: f64, whole: f64) -> Field {
    Field::Real(if whole > 0.0 {
        part / whole * 100.0
    } else {
        0.0
    })
}

fn per_minute(count: f64, seconds: f64) -> Field {
    Field::Real(if seconds > 0.0 {
        count / seconds * 60.0
    } else {
        0.0
    })
}

/// Difficulty-1 shares the hashes done are worth: 2^32 hashes each on average.
fn diff1_work(hashes: u64) -> f64 {
    hashes as f64 / 4_294_967_296.0
}

fn summary(s: &StatsSnapshot) -> Section {
    let sum = |f: fn(&DeviceSnapshot) -> f64| s.devices.iter().map(f).sum::<f64>();
    let hashes: u64 = s.devices.iter().map(|d| d.hashes).sum();
    let booked = s.difficulty_accepted + s.difficulty_rejected + s.difficulty_stale;
    let diff1 = diff1_work(hashes);
    Section {
        name: "SUMMARY",
        text_head: Some("SUMMARY"),
        records: vec![vec![
            ("Elapsed", Field::Int(s.uptime_s as i64)),
            (
                "MHS av",
                mhs(if s.uptime_s > 0.0 {
                    hashes as f64 / s.uptime_s
                } else {
                    0.0
                }),
            ),
            ("MHS 5s", mhs(sum(|d| d.rate_5s))),
            ("MHS 1m", mhs(sum(|d| d.rate_60s))),
            ("MHS 5m", mhs(sum(|d| d.rate_5m))),
            ("MHS 15m", mhs(sum(|d| d.rate_15m))),
            ("Found Blocks", Field::Int(s.blocks as i64)),
            ("Getworks", Field::Int(s.jobs as i64)),
            ("Accepted", Field::Int(s.accepted as i64)),
            ("Rejected", Field::Int(s.rejected as i64)),
            ("Hardware Errors", Field::Int(s.hardware_errors as i64)),
            ("Utility", per_minute(s.accepted as f64, s.uptime_s)),
            ("Discarded", Field::Int(0)),
            ("Stale", Field::Int(s.stale as i64)),
            ("Get Failures", Field::Int(0)),
            ("Local Work", Field::Int(s.jobs as i64)),
            ("Remote Failures", Field::Int(0)),
            ("Network Blocks", Field::Int(0)),
            ("Total MH", Field::Real(hashes as f64 / 1e6)),
            ("Work Utility", per_minute(diff1, s.uptime_s)),
            ("Difficulty Accepted", Field::Real(s.difficulty_accepted)),
            ("Difficulty Rejected", Field::Real(s.difficulty_rejected)),
            ("Difficulty Stale", Field::Real(s.difficulty_stale)),
            ("Best Share", Field::Real(s.best_share)),
            (
                "Device Hardware%",
                percent(
                    s.hardware_errors as f64,
                    (s.hardware_errors + s.solutions) as f64,
                ),
            ),
            ("Device Rejected%", percent(s.difficulty_rejected, booked)),
            ("Pool Rejected%", percent(s.difficulty_rejected, booked)),
            ("Pool Stale%", percent(s.difficulty_stale, booked)),
            (
                "Last getwork",
                Field::Int(s.last_job_unix.unwrap_or(0) as i64),
            ),
        ]],
    }
}

fn pools_reply(cx: &Context) -> (Reply, Option<Control>) {
    let sources = &cx.state.sources;
    if sources.is_empty() {
        return (
            Reply::Report(Status::error(MSG_NOPOOL, "No pools"), None),
            None,
        );
    }
    let s = &cx.snap;
    let booked = s.difficulty_accepted + s.difficulty_rejected + s.difficulty_stale;
    let records = sources
        .iter()
        .enumerate()
        .map(|(i, url)| {
            let current =
                s.pool.as_deref() == Some(url.as_str()) || (s.pool.is_none() && sources.len() == 1);
            // The run's counters belong to the pool in use: wgminer counts per run.
            let n = |v: u64| Field::Int(if current { v as i64 } else { 0 });
            let d = |v: f64| Field::Real(if current { v } else { 0.0 });
            let status = match (current, s.connected) {
                (true, true) => "Alive",
                (true, false) => "Dead",
                (false, _) => "Standby",
            };
            let stratum = url.starts_with("stratum");
            vec![
                ("POOL", Field::Int(i as i64)),
                ("URL", Field::Text(url.clone())),
                ("Status", Field::Text(status.into())),
                ("Priority", Field::Int(i as i64)),
                ("Quota", Field::Int(1)),
                (
                    "Long Poll",
                    Field::Text(if stratum { "N" } else { "Y" }.into()),
                ),
                ("Getworks", n(s.jobs)),
                ("Accepted", n(s.accepted)),
                ("Rejected", n(s.rejected)),
                ("Works", n(s.submitted)),
                ("Discarded", Field::Int(0)),
                ("Stale", n(s.stale)),
                ("Get Failures", Field::Int(0)),
                ("Remote Failures", Field::Int(0)),
                ("Last Share Time", n(s.last_accepted_unix.unwrap_or(0))),
                (
                    "Diff1 Shares",
                    d(diff1_work(s.devices.iter().map(|d| d.hashes).sum())),
                ),
                ("Difficulty Accepted", d(s.difficulty_accepted)),
                ("Difficulty Rejected", d(s.difficulty_rejected)),
                ("Difficulty Stale", d(s.difficulty_stale)),
                ("Last Share Difficulty", d(s.difficulty.unwrap_or(0.0))),
                ("Work Difficulty", d(s.difficulty.unwrap_or(0.0))),
                ("Has Stratum", Field::Bool(stratum)),
                (
                    "Stratum Active",
                    Field::Bool(stratum && current && s.connected),
                ),
                (
                    "Stratum URL",
                    Field::Text(if stratum { url.clone() } else { String::new() }),
                ),
                ("Stratum Difficulty", d(s.difficulty.unwrap_or(0.0))),
                ("Has GBT", Field::Bool(!stratum)),
                ("Best Share", d(s.best_share)),
                (
                    "Pool Rejected%",
                    if current {
                        percent(s.difficulty_rejected, booked)
                    } else {
                        Field::Real(0.0)
                    },
                ),
                (
                    "Pool Stale%",
                    if current {
                        percent(s.difficulty_stale, booked)
                    } else {
                        Field::Real(0.0)
                    },
                ),
            ]
        })
        .collect::<Vec<_>>();
    let status = Status::ok(MSG_POOL, format!("{} Pool(s)", records.len()));
    let section = Section {
        name: "POOLS",
        text_head: None,
        records,
    };
    (Reply::Report(status, Some(section)), None)
}

fn devs_reply(s: &StatsSnapshot) -> (Reply, Option<Control>) {
    if s.devices.is_empty() {
        return (
            Reply::Report(Status::error(MSG_NODEVS, "No GPUs/CPUs"), None),
            None,
        );
    }
    let (mut gpus, mut cpus) = (0, 0);
    let records = s
        .devices
        .iter()
        .map(|d| {
            // cgminer numbers devices from 0 within their kind; `Label` is wgminer's name.
            let (kind, id) = if is_gpu(d) {
                gpus += 1;
                ("GPU", gpus - 1)
            } else {
                cpus += 1;
                ("CPU", cpus - 1)
            };
            let booked = d.difficulty_accepted + d.difficulty_rejected;
            // cgminer reports 0 for a sensor it cannot read.
            let sensor = |read: fn(&SensorReading) -> Option<f64>| {
                d.sensors.as_ref().and_then(read).unwrap_or(0.0)
            };
            vec![
                (kind, Field::Int(id as i64)),
                ("Name", Field::Text(kind.into())),
                ("ID", Field::Int(d.index as i64)),
                ("Label", Field::Text(d.label.clone())),
                (
                    "Enabled",
                    Field::Text(if d.resting { "N" } else { "Y" }.into()),
                ),
                ("Status", Field::Text("Alive".into())),
                (
                    "Temperature",
                    Field::Real(sensor(|r| r.temperature_c.map(f64::from))),
                ),
                (
                    "Fan Percent",
                    Field::Int(sensor(|r| r.fan_percent.map(f64::from)) as i64),
                ),
                (
                    "GPU Clock",
                    Field::Int(sensor(|r| r.sm_clock_mhz.map(f64::from)) as i64),
                ),
                (
                    "GPU Activity",
                    Field::Int(sensor(|r| r.utilization_percent.map(f64::from)) as i64),
                ),
                ("Power", Field::Real(sensor(|r| r.power_w))),
                (
                    "MHS av",
                    mhs(if s.uptime_s > 0.0 {
                        d.hashes as f64 / s.uptime_s
                    } else {
                        0.0
                    }),
                ),
                ("MHS 5s", mhs(d.rate_5s)),
                ("MHS 1m", mhs(d.rate_60s)),
                ("MHS 5m", mhs(d.rate_5m)),
                ("MHS 15m", mhs(d.rate_15m)),
                ("Accepted", Field::Int(d.accepted as i64)),
                ("Rejected", Field::Int(d.rejected as i64)),
                ("Hardware Errors", Field::Int(d.hardware_errors as i64)),
                ("Utility", per_minute(d.accepted as f64, s.uptime_s)),
                (
                    "Last Share Time",
                    Field::Int(d.last_accepted_unix.unwrap_or(0) as i64),
                ),
                ("Total MH", Field::Real(d.hashes as f64 / 1e6)),
                ("Diff1 Work", Field::Real(diff1_work(d.hashes))),
                ("Difficulty Accepted", Field::Real(d.difficulty_accepted)),
                ("Difficulty Rejected", Field::Real(d.difficulty_rejected)),
                ("Best Share", Field::Real(d.best_share)),
                (
                    "Device Hardware%",
                    percent(
                        d.hardware_errors as f64,
                        (d.hardware_errors + d.solutions) as f64,
                    ),
                ),
                ("Device Rejected%", percent(d.difficulty_rejected, booked)),
                ("Device Elapsed", Field::Int(s.uptime_s as i64)),
            ]
        })
        .collect::<Vec<_>>();
    let status = Status::ok(MSG_DEVS, format!("{} GPU/CPU(s)", records.len()));
    let section = Section {
        name: "DEVS",
        text_head: None,
        records,
    };
    (Reply::Report(status, Some(section)), None)
}

fn stats(cx: &Context) -> Section {
    let s = &cx.snap;
    let mut records: Vec<Record> = s
        .devices
        .iter()
        .map(|d| {
            vec![
                ("ID", Field::Text(d.label.to_uppercase())),
                ("Elapsed", Field::Int(s.uptime_s as i64)),
                ("MHS 15m", mhs(d.rate_15m)),
                ("Hardware Errors", Field::Int(d.hardware_errors as i64)),
                ("Solutions", Field::Int(d.solutions as i64)),
            ]
        })
        .collect();
    let latency = s.latency;
    records.push(vec![
        ("ID", Field::Text("POOL0".into())),
        ("Elapsed", Field::Int(s.uptime_s as i64)),
        ("Work Diff", Field::Real(s.difficulty.unwrap_or(0.0))),
        (
            "Find To Submit Median ms",
            Field::Real(latency.map_or(0.0, |l| l.median_ms)),
        ),
        (
            "Find To Submit P99 ms",
            Field::Real(latency.map_or(0.0, |l| l.p99_ms)),
        ),
        (
            "Job Switch Max ms",
            Field::Real(s.max_switch_ms.unwrap_or(0.0)),
        ),
        ("Pending", Field::Int(s.pending as i64)),
        ("Held", Field::Int(s.held as i64)),
        ("Unanswered", Field::Int(s.unanswered as i64)),
    ]);
    let records = records
        .into_iter()
        .enumerate()
        .map(|(i, mut r)| {
            r.insert(0, ("STATS", Field::Int(i as i64)));
            r
        })
        .collect();
    Section {
        name: "STATS",
        text_head: None,
        records,
    }
}

fn check(parameter: Option<&str>, cx: &Context) -> Reply {
    let Some(cmd) = parameter.filter(|p| !p.is_empty()) else {
        return Reply::Report(Status::error(MSG_MISCHK, "Missing check cmd"), None);
    };
    let exists = REPORTS.contains(&cmd) || PRIVILEGED.contains(&cmd) || cmd == "check";
    let access = exists && (!PRIVILEGED.contains(&cmd) || cx.privileged);
    let yn = |b: bool| Field::Text(if b { "Y" } else { "N" }.into());
    let section = Section {
        name: "CHECK",
        text_head: Some("CHECK"),
        records: vec![vec![("Exists", yn(exists)), ("Access", yn(access))]],
    };
    Reply::Report(Status::ok(MSG_CHECK, "Check command"), Some(section))
}

fn switch_pool(parameter: Option<&str>, cx: &Context) -> (Reply, Option<Control>) {
    let sources = &cx.state.sources;
    if sources.is_empty() {
        return (
            Reply::Report(Status::error(MSG_NOPOOL, "No pools"), None),
            None,
        );
    }
    let Some(p) = parameter.map(str::trim).filter(|p| !p.is_empty()) else {
        let status = Status::error(MSG_MISPID, "Missing pool id parameter");
        return (Reply::Report(status, None), None);
    };
    match p.parse::<usize>() {
        Ok(id) if id < sources.len() => {
            let msg = format!("Switching to pool {id}:'{}'", sources[id]);
            (
                Reply::Report(Status::ok(MSG_SWITCHP, msg), None),
                Some(Control::SwitchPool(id)),
            )
        }
        _ => {
            let msg = format!("Invalid pool id {p} - range is 0 - {}", sources.len() - 1);
            (Reply::Report(Status::error(MSG_INVPID, msg), None), None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::work::MiningStats;

    fn state(sources: &[&str]) -> ApiState {
        let stats = MiningStats::new([(0, "cpu".to_owned()), (1, "gpu1".to_owned())]);
        stats.set_pool(
            Some(sources.first().copied().unwrap_or("").to_owned()),
            true,
        );
        stats.devices[1]
            .hashes
            .fetch_add(8_000_000_000, std::sync::atomic::Ordering::Relaxed);
        stats
            .accepted
            .fetch_add(3, std::sync::atomic::Ordering::Relaxed);
        stats.book(1, 64.0, crate::work::stats::Verdict::Accepted);
        stats.book(1, 64.0, crate::work::stats::Verdict::Rejected);
        stats.record_best_share(1, 1234.5);
        ApiState {
            stats: Arc::new(stats),
            sources: sources.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn ask(request: &str, privileged: bool, state: &ApiState) -> (String, Option<Control>) {
        let cx = Context {
            state,
            snap: state.stats.snapshot(),
            privileged,
            now: 1_700_000_000,
        };
        answer(request.as_bytes(), &cx)
    }

    fn ask_json(request: &str, privileged: bool, state: &ApiState) -> (Value, Option<Control>) {
        let (text, action) = ask(request, privileged, state);
        (serde_json::from_str(&text).expect("a JSON reply"), action)
    }

    const POOLS: [&str; 2] = ["stratum+tcp://a:3333", "stratum+tcp://b:3333"];

    #[test]
    fn summary_has_cgminer_envelope_and_fields() {
        let st = state(&POOLS);
        let (v, action) = ask_json(r#"{"command":"summary"}"#, false, &st);
        assert_eq!(action, None);
        let status = &v["STATUS"][0];
        assert_eq!(status["STATUS"], "S");
        assert_eq!(status["Code"], 11);
        assert_eq!(status["Msg"], "Summary");
        assert_eq!(status["When"], 1_700_000_000u64);
        assert_eq!(v["id"], 1);
        let s = &v["SUMMARY"][0];
        assert_eq!(s["Accepted"], 3);
        assert_eq!(s["Difficulty Accepted"], 64.0);
        assert_eq!(s["Difficulty Rejected"], 64.0);
        assert_eq!(s["Best Share"], 1234.5);
        assert_eq!(s["Pool Rejected%"], 50.0);
        assert_eq!(s["Total MH"], 8000.0);
        for field in [
            "Elapsed",
            "MHS av",
            "MHS 5s",
            "Found Blocks",
            "Hardware Errors",
            "Stale",
        ] {
            assert!(s.get(field).is_some(), "SUMMARY lacks {field}");
        }
    }

    #[test]
    fn devs_number_each_kind_and_book_per_device() {
        let st = state(&POOLS);
        let (v, _) = ask_json(r#"{"command":"devs"}"#, false, &st);
        let devs = v["DEVS"].as_array().expect("DEVS");
        assert_eq!(devs.len(), 2);
        assert_eq!(devs[0]["CPU"], 0);
        assert_eq!(devs[1]["GPU"], 0);
        assert_eq!(devs[1]["Label"], "gpu1");
        assert_eq!(devs[1]["Accepted"], 1);
        assert_eq!(devs[1]["Rejected"], 1);
        assert_eq!(devs[1]["Best Share"], 1234.5);
        assert_eq!(devs[0]["Accepted"], 0);
        assert_eq!(v["STATUS"][0]["Code"], 9);
    }

    #[test]
    fn pools_mark_the_pool_in_use() {
        let st = state(&POOLS);
        let (v, _) = ask_json(r#"{"command":"pools"}"#, false, &st);
        let pools = v["POOLS"].as_array().expect("POOLS");
        assert_eq!(pools[0]["POOL"], 0);
        assert_eq!(pools[0]["Status"], "Alive");
        assert_eq!(pools[0]["Stratum Active"], true);
        assert_eq!(pools[0]["Accepted"], 3);
        assert_eq!(pools[1]["Status"], "Standby");
        assert_eq!(pools[1]["Accepted"], 0);
        assert_eq!(v["STATUS"][0]["Msg"], "2 Pool(s)");
    }

    #[test]
    fn joined_reports_answer_each_once() {
        let st = state(&POOLS);
        let (v, _) = ask_json(r#"{"command":"summary+devs+devs+quit"}"#, true, &st);
        assert_eq!(v["summary"][0]["SUMMARY"][0]["Accepted"], 3);
        assert_eq!(v["devs"][0]["DEVS"].as_array().map(Vec::len), Some(2));
        // Not a report: refused within the joined reply, and never acted on.
        assert_eq!(v["quit"][0]["STATUS"][0]["Code"], 14);
        assert_eq!(v["id"], 1);
    }

    #[test]
    fn bad_requests_get_cgminer_errors() {
        let st = state(&POOLS);
        let (v, _) = ask_json("{not json", false, &st);
        assert_eq!(v["STATUS"][0]["STATUS"], "E");
        assert_eq!(v["STATUS"][0]["Code"], 23);
        let (v, _) = ask_json(r#"{"parameter":"1"}"#, false, &st);
        assert_eq!(v["STATUS"][0]["Code"], 24);
        let (v, _) = ask_json(r#"{"command":"frobnicate"}"#, false, &st);
        assert_eq!(v["STATUS"][0]["Code"], 14);
        let (v, _) = ask_json(r#"{"command":7}"#, false, &st);
        assert_eq!(v["STATUS"][0]["Code"], 24);
    }

    #[test]
    fn privileged_commands_need_the_allow_list() {
        let st = state(&POOLS);
        for cmd in ["quit", "restart", "privileged", "switchpool"] {
            let req = format!(r#"{{"command":"{cmd}","parameter":"1"}}"#);
            let (v, action) = ask_json(&req, false, &st);
            assert_eq!(action, None, "{cmd} acted without privilege");
            assert_eq!(v["STATUS"][0]["Code"], 45, "{cmd}");
        }
        let (v, action) = ask_json(r#"{"command":"quit"}"#, true, &st);
        assert_eq!(v["STATUS"], "BYE");
        assert_eq!(action, Some(Control::Quit));
        let (v, action) = ask_json(r#"{"command":"switchpool","parameter":1}"#, true, &st);
        assert_eq!(v["STATUS"][0]["Code"], 27);
        assert_eq!(action, Some(Control::SwitchPool(1)));
        let (v, action) = ask_json(r#"{"command":"switchpool","parameter":"2"}"#, true, &st);
        assert_eq!(v["STATUS"][0]["Code"], 26);
        assert_eq!(action, None);
        let (v, _) = ask_json(r#"{"command":"check","parameter":"quit"}"#, false, &st);
        assert_eq!(v["CHECK"][0]["Exists"], "Y");
        assert_eq!(v["CHECK"][0]["Access"], "N");
    }

    #[test]
    fn text_form_escapes_separators() {
        let st = state(&["stratum+tcp://a,b=c|d:1"]);
        let (text, _) = ask("pools|", false, &st);
        assert!(
            text.starts_with("STATUS=S,When=1700000000,Code=7,Msg=1 Pool(s),"),
            "{text}"
        );
        assert!(text.contains(r"URL=stratum+tcp://a\,b\=c\|d:1,"), "{text}");
        let (text, _) = ask("summary", false, &st);
        assert!(text.contains("|SUMMARY,Elapsed="), "{text}");
        let (text, _) = ask("version+config", false, &st);
        assert!(text.starts_with("CMD=version|STATUS=S"), "{text}");
    }

    #[test]
    fn allow_list_matches_prefixes() {
        let list = AllowList::parse("127.0.0.1, 10.1.0.0/16,::1,fd00::/8").expect("valid");
        let yes = [
            "127.0.0.1",
            "10.1.200.3",
            "::1",
            "fd12::5",
            "::ffff:10.1.2.3",
        ];
        for ip in yes {
            assert!(list.allows(ip.parse().expect("ip")), "{ip}");
        }
        for ip in ["127.0.0.2", "10.2.0.1", "::2", "fe80::1"] {
            assert!(!list.allows(ip.parse().expect("ip")), "{ip}");
        }
        assert!(AllowList::parse("0.0.0.0/0")
            .expect("all")
            .allows("8.8.8.8".parse().expect("ip")));
        assert!(!AllowList::default().allows("127.0.0.1".parse().expect("ip")));
        for bad in ["10.0.0.0/33", "nonsense", "::/129", "1.2.3.4/x"] {
            assert!(AllowList::parse(bad).is_err(), "{bad}");
        }
    }
}
