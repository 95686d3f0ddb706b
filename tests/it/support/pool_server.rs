//! A small Stratum V1 pool for end-to-end mining tests, on 127.0.0.1.
//!
//! No real pool server can be installed from the package registries here (ckpool, public-pool
//! and the like are not packaged on crates.io, PyPI, npm or Debian), which is why this pool lives
//! in tests/. Its jobs are the real ones from the slush documentation session in
//! tests/data/stratum.json (testnet3 block 25096: prevhash, coinb1/coinb2, nBits, nTime), each new
//! job with its nTime moved on by its number so no two jobs share a header. It grants BIP310
//! version rolling (mask 1fffe000), sets any difficulty the test asks for, and checks every
//! `mining.submit` independently of the miner's fast paths: it rebuilds the header with the
//! reference [`Job`] path (rust-bitcoin's coinbase txid, merkle fold and header hash) and compares
//! it with the share target the job was *sent* with. Shares for unknown or replaced jobs are
//! rejected as stale, like a real pool does.
//!
//! [`MockPool`] is the same stand-in driven line by line instead: the test reads each line the
//! client sends and writes each answer itself (the Stratum client's scenarios: garbage lines,
//! half-answered submits, reconnect requests, TLS), starting from the recorded handshake.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bitcoin::block::Version;
use bitcoin::hashes::Hash;
use bitcoin::hex::FromHex;
use bitcoin::pow::CompactTarget;
use bitcoin::{BlockHash, TxMerkleNode};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::broadcast;
use tokio::time::timeout;
use tokio_rustls::TlsAcceptor;

use super::vectors;
use wgminer::pow::target_from_difficulty;
use wgminer::stratum::user_agent;
use wgminer::work::{CoinbaseTemplate, Extranonce2, Job, Share};

/// The version-rolling mask this pool grants (BIP320's general-purpose bits).
pub const MASK: u32 = 0x1fff_e000;
const EXTRANONCE1: &str = "08000002";
const EXTRANONCE2_SIZE: usize = 4;
/// Pushed to every connection to close it.
const DISCONNECT: &str = "\u{0}disconnect";

/// One `mining.submit` as the pool judged it.
#[derive(Clone, Debug)]
pub struct Submit {
    pub job_id: String,
    pub accepted: bool,
    pub reason: Option<String>,
    /// The difficulty the share's job was sent with.
    pub job_difficulty: Option<f64>,
    /// The share's own difficulty (what its hash meets), when it parsed.
    pub share_difficulty: Option<f64>,
}

#[derive(Default)]
struct PoolState {
    /// Every job sent, with its difficulty, and whether it still takes shares.
    jobs: HashMap<String, (Job, f64, bool)>,
    difficulty: f64,
    next_job: u32,
    submits: Vec<Submit>,
    authorized: Vec<String>,
    /// public-pool's order on authorize: this difficulty and the first job, then the real one.
    first_difficulty: Option<f64>,
    /// While set, connections are refused (closed at once).
    refusing: bool,
    /// While set, every share is rejected with a reason of this many bytes, new each time.
    reject_with: Option<usize>,
    rejects_sent: u64,
    /// While set, shares are judged and recorded but never answered.
    silent: bool,
}

/// The pool: the test drives it (`set_difficulty`, `notify`) and reads `submits`.
pub struct TestPool {
    pub port: u16,
    state: Arc<Mutex<PoolState>>,
    lines: broadcast::Sender<String>,
    /// The notify fields from the recorded session.
    template: Value,
}

impl TestPool {
    /// Listen on 127.0.0.1 (a free port) with `difficulty` for the first job.
    pub async fn start(difficulty: f64) -> TestPool {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let state = Arc::new(Mutex::new(PoolState {
            difficulty,
            ..PoolState::default()
        }));
        let (lines, _) = broadcast::channel(1024);
        let pool = TestPool {
            port,
            state: Arc::clone(&state),
            lines: lines.clone(),
            template: recorded_notify(),
        };
        let first = pool.make_job(true);
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                if state.lock().expect("state").refusing {
                    drop(socket);
                    continue;
                }
                let state = Arc::clone(&state);
                let rx = lines.subscribe();
                let first = first.clone();
                tokio::spawn(serve(socket, state, rx, first));
            }
        });
        pool
    }

    /// Like public-pool: on authorize, `set_difficulty first`, the first job (made at `first`),
    /// then `set_difficulty then` (the difficulty in force from then on); it judges a share by
    /// the difficulty in force when the share arrives, or its job's if that is lower.
    pub async fn start_like_public_pool(first: f64, then: f64) -> TestPool {
        let pool = TestPool::start(first).await;
        let mut st = pool.lock();
        st.first_difficulty = Some(first);
        st.difficulty = then;
        drop(st);
        pool
    }

    /// Reject every share from now on with a reason `len` bytes long that is never the same
    /// twice (a hostile pool growing the miner's reason counts).
    pub fn reject_every_share_with_new_reasons(&self, len: usize) {
        self.lock().reject_with = Some(len);
    }

    /// How many shares were rejected by [`TestPool::reject_every_share_with_new_reasons`].
    pub fn rejects_sent(&self) -> u64 {
        self.lock().rejects_sent
    }

    /// Close every connection now and refuse new ones until [`TestPool::accept_again`].
    pub fn drop_connections(&self) {
        self.lock().refusing = true;
        let _ = self.lines.send(DISCONNECT.to_owned());
    }

    /// Judge and record every share from now on, but answer none (a pool that hangs).
    pub fn stop_answering_shares(&self) {
        self.lock().silent = true;
    }

    pub fn accept_again(&self) {
        self.lock().refusing = false;
    }

    pub fn url(&self) -> String {
        format!("stratum+tcp://127.0.0.1:{}", self.port)
    }

    /// The difficulty for jobs sent from now on (sent to the miner at once, as pools do).
    pub fn set_difficulty(&self, d: f64) {
        self.lock().difficulty = d;
        let _ = self.lines.send(
            json!({"id": null, "method": "mining.set_difficulty", "params": [d]}).to_string(),
        );
    }

    /// Send a new job; with `clean`, every earlier job stops taking shares. Returns its id.
    pub fn notify(&self, clean: bool) -> String {
        let line = self.make_job(clean);
        let id = serde_json::from_str::<Value>(&line).expect("json")["params"][0]
            .as_str()
            .expect("id")
            .to_owned();
        let _ = self.lines.send(line);
        id
    }

    /// Send `lines` to every connection as they are (a newline is added after the last): a
    /// malicious pool's bytes, or many lines in one write.
    pub fn send_raw(&self, lines: &str) {
        let _ = self.lines.send(lines.to_owned());
    }

    pub fn submits(&self) -> Vec<Submit> {
        self.lock().submits.clone()
    }

    pub fn accepted_for(&self, job_id: &str) -> usize {
        self.lock()
            .submits
            .iter()
            .filter(|s| s.accepted && s.job_id == job_id)
            .count()
    }

    pub fn authorized(&self) -> Vec<String> {
        self.lock().authorized.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PoolState> {
        self.state.lock().expect("pool state")
    }

    /// Build the next job (the recorded one, nTime moved on) and its notify line.
    fn make_job(&self, clean: bool) -> String {
        let mut st = self.lock();
        let n = st.next_job;
        st.next_job += 1;
        let id = format!("job{n}");
        let t = &self.template;
        let ntime = u32::from_str_radix(t[7].as_str().expect("ntime"), 16).expect("hex") + n;
        let version = u32::from_str_radix(t[5].as_str().expect("version"), 16).expect("hex");
        let bits = u32::from_str_radix(t[6].as_str().expect("nbits"), 16).expect("hex");
        let prev = t[1].as_str().expect("prevhash");
        let coinb1 = t[2].as_str().expect("coinb1");
        let coinb2 = t[3].as_str().expect("coinb2");
        let branch: Vec<String> = t[4]
            .as_array()
            .expect("branch")
            .iter()
            .map(|b| b.as_str().expect("hex").to_owned())
            .collect();
        let job = Job {
            id: id.clone(),
            prev_hash: stratum_prevhash(prev),
            version: Version::from_consensus(version as i32),
            version_mask: MASK,
            bits: CompactTarget::from_consensus(bits),
            ntime,
            ntime_roll: 7000,
            coinbase: CoinbaseTemplate {
                prefix: Vec::from_hex(coinb1).expect("hex"),
                extranonce1: Vec::from_hex(EXTRANONCE1).expect("hex"),
                extranonce2_size: EXTRANONCE2_SIZE,
                suffix: Vec::from_hex(coinb2).expect("hex"),
            },
            merkle_branch: branch
                .iter()
                .map(|b| {
                    let bytes: [u8; 32] = <[u8; 32]>::from_hex(b).expect("32 bytes");
                    TxMerkleNode::from_byte_array(bytes)
                })
                .collect(),
            fixed_merkle_root: None,
            share_target: target_from_difficulty(st.difficulty).expect("difficulty"),
            clean,
        };
        if clean {
            for j in st.jobs.values_mut() {
                j.2 = false;
            }
        }
        let d = st.difficulty;
        st.jobs.insert(id.clone(), (job, d, true));
        json!({"id": null, "method": "mining.notify", "params": [
            id, prev, coinb1, coinb2, branch, t[5], t[6], format!("{ntime:08x}"), clean
        ]})
        .to_string()
    }
}

/// The notify params of the slush documentation session.
fn recorded_notify() -> Value {
    let line = vectors::recorded_notify_line("slush-docs-testnet3-block-25096");
    serde_json::from_str::<Value>(&line).expect("notify JSON")["params"].clone()
}

/// Stratum's prevhash: each 4-byte word of the internal byte order is byte-swapped.
fn stratum_prevhash(s: &str) -> BlockHash {
    let mut b = <[u8; 32]>::from_hex(s).expect("prevhash hex");
    for w in b.chunks_exact_mut(4) {
        w.reverse();
    }
    BlockHash::from_byte_array(b)
}

async fn serve(
    socket: tokio::net::TcpStream,
    state: Arc<Mutex<PoolState>>,
    mut pushed: broadcast::Receiver<String>,
    first_job: String,
) {
    let (read, mut write) = socket.into_split();
    let mut lines = BufReader::new(read).lines();
    loop {
        let out: Vec<String> = tokio::select! {
            line = lines.next_line() => match line {
                Ok(Some(line)) => answer(&line, &state, &first_job),
                _ => return,
            },
            p = pushed.recv() => match p {
                Ok(p) if p == DISCONNECT => return,
                Ok(p) => vec![p],
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(_) => return,
            },
        };
        for l in out {
            if write.write_all(format!("{l}\n").as_bytes()).await.is_err() {
                return;
            }
        }
    }
}

/// The pool's lines in answer to one miner line.
fn answer(line: &str, state: &Mutex<PoolState>, first_job: &str) -> Vec<String> {
    let Ok(msg) = serde_json::from_str::<Value>(line) else {
        return Vec::new();
    };
    let id = msg["id"].clone();
    let ok = |result: Value| json!({"id": id, "result": result, "error": null}).to_string();
    match msg["method"].as_str() {
        Some("mining.subscribe") => vec![ok(json!([
            [["mining.notify", "s1"]],
            EXTRANONCE1,
            EXTRANONCE2_SIZE
        ]))],
        Some("mining.configure") => vec![ok(
            json!({"version-rolling": true, "version-rolling.mask": format!("{MASK:08x}")}),
        )],
        Some("mining.authorize") => {
            let mut st = state.lock().expect("state");
            if let Some(u) = msg["params"][0].as_str() {
                st.authorized.push(u.to_owned());
            }
            let d = st.difficulty;
            let first = st.first_difficulty;
            drop(st);
            let set = |d: f64| {
                json!({"id": null, "method": "mining.set_difficulty", "params": [d]}).to_string()
            };
            match first {
                Some(first) => vec![ok(json!(true)), set(first), first_job.to_owned(), set(d)],
                None => vec![ok(json!(true)), set(d), first_job.to_owned()],
            }
        }
        Some("mining.submit") => {
            let (accepted, reason) = judge(&msg["params"], state);
            let mut st = state.lock().expect("state");
            if st.silent {
                return Vec::new();
            }
            if let Some(len) = st.reject_with {
                st.rejects_sent += 1;
                let mut reason = format!("share {} refused ", st.rejects_sent);
                reason.extend(std::iter::repeat_n('x', len.saturating_sub(reason.len())));
                return vec![
                    json!({"id": id, "result": null, "error": [23, reason, null]}).to_string(),
                ];
            }
            drop(st);
            if accepted {
                vec![ok(json!(true))]
            } else {
                let reason = reason.unwrap_or_default();
                vec![json!({"id": id, "result": null, "error": [23, reason, null]}).to_string()]
            }
        }
        Some(_) => vec![ok(json!(true))],
        None => Vec::new(),
    }
}

/// Check one submit and record the verdict.
fn judge(params: &Value, state: &Mutex<PoolState>) -> (bool, Option<String>) {
    let p = |i: usize| params[i].as_str().unwrap_or("");
    let job_id = p(1).to_owned();
    let share = (|| {
        Some(Share {
            job_id: job_id.clone(),
            extranonce2: Some(Extranonce2::from_hex(p(2)).ok()?),
            ntime: u32::from_str_radix(p(3), 16).ok()?,
            nonce: u32::from_str_radix(p(4), 16).ok()?,
            version_bits: match params.get(5).and_then(Value::as_str) {
                Some(v) => Some(u32::from_str_radix(v, 16).ok()?),
                None => None,
            },
        })
    })();
    let mut st = state.lock().expect("state");
    let job = st.jobs.get(&job_id).cloned();
    let current = st.difficulty;
    // What the share's hash meets, judged by the reference path (the job's header for it).
    let share_difficulty = match (&share, &job) {
        (Some(share), Some((job, _, _))) => job.header(&share.roll(), share.nonce).ok().map(|h| {
            wgminer::pow::difficulty_of_target(&bitcoin::pow::Target::from_le_bytes(
                h.block_hash().to_byte_array(),
            ))
        }),
        _ => None,
    };
    let (accepted, reason, job_difficulty) = match (&share, job) {
        (None, _) => (false, Some("malformed submit".to_owned()), None),
        (Some(_), None) => (false, Some("Job not found".to_owned()), None),
        (Some(_), Some((_, d, false))) => (false, Some("Stale".to_owned()), Some(d)),
        (Some(share), Some((job, d, true))) => {
            // The job's own difficulty, or the one in force now if lower (public-pool judges
            // by the client's current difficulty).
            let mut easier = job.clone();
            easier.share_target = target_from_difficulty(d.min(current)).expect("difficulty");
            match easier.check_share(share) {
                Ok(_) => (true, None, Some(d)),
                Err(e) => (false, Some(format!("Low difficulty share ({e})")), Some(d)),
            }
        }
    };
    st.submits.push(Submit {
        job_id,
        accepted,
        reason: reason.clone(),
        job_difficulty,
        share_difficulty,
    });
    (accepted, reason)
}

// ---------------------------------------------------------------------------------------------
// The pool driven line by line.

/// Bounds every wait of a scripted pool: reached only when the client is broken.
const SCRIPT_LIMIT: Duration = Duration::from_secs(15);

pub struct MockPool {
    listener: TcpListener,
    /// Serve `stratum+ssl://` with this.
    tls: Option<TlsAcceptor>,
}

pub type Reader = Box<dyn AsyncRead + Unpin + Send>;
pub type Writer = Box<dyn AsyncWrite + Unpin + Send>;

impl MockPool {
    pub async fn bind() -> Self {
        MockPool {
            listener: TcpListener::bind("127.0.0.1:0").await.expect("bind"),
            tls: None,
        }
    }

    /// Listen on a port the client is already trying (retrying while the port is briefly busy).
    pub async fn bind_port(port: u16) -> Self {
        for _ in 0..100 {
            if let Ok(listener) = TcpListener::bind(("127.0.0.1", port)).await {
                return MockPool {
                    listener,
                    tls: None,
                };
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("port {port} stays busy");
    }

    /// Serve `stratum+ssl://` with `tls` on a free port.
    pub async fn bind_tls(tls: TlsAcceptor) -> Self {
        MockPool {
            listener: TcpListener::bind("127.0.0.1:0").await.expect("bind"),
            tls: Some(tls),
        }
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().expect("addr").port()
    }

    /// The next connection that says something: the client's probes of a primary pool connect
    /// and close without a line, and are skipped.
    pub async fn accept(&self) -> PoolConn {
        timeout(SCRIPT_LIMIT, async {
            loop {
                let (stream, _) = self.listener.accept().await.expect("accept");
                let (r, w): (Reader, Writer) = match &self.tls {
                    None => {
                        let (r, w) = stream.into_split();
                        (Box::new(r), Box::new(w))
                    }
                    Some(acceptor) => match acceptor.accept(stream).await {
                        Ok(tls) => {
                            let (r, w) = tokio::io::split(tls);
                            (Box::new(r), Box::new(w))
                        }
                        // A probe, or a client that gave up on the handshake.
                        Err(_) => continue,
                    },
                };
                let mut conn = PoolConn {
                    reader: BufReader::new(r),
                    writer: Some(w),
                    first: None,
                };
                if let Some(first) = conn.read_line(SCRIPT_LIMIT).await {
                    conn.first = Some(first);
                    return conn;
                }
            }
        })
        .await
        .expect("the client connects")
    }
}

/// A port nothing listens on (bound, then released).
pub async fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    l.local_addr().expect("addr").port()
}

pub struct PoolConn {
    reader: BufReader<Reader>,
    /// Taken by a test that writes on its own (a flood).
    pub writer: Option<Writer>,
    first: Option<Value>,
}

impl PoolConn {
    /// The next line from the client as JSON; `None` at EOF or when nothing comes in `within`.
    pub async fn read_line(&mut self, within: Duration) -> Option<Value> {
        if let Some(first) = self.first.take() {
            return Some(first);
        }
        let mut line = String::new();
        match timeout(within, self.reader.read_line(&mut line)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => None,
            Ok(Ok(_)) => Some(serde_json::from_str(&line).expect("the client sends JSON lines")),
        }
    }

    pub async fn recv(&mut self) -> Value {
        self.read_line(SCRIPT_LIMIT)
            .await
            .expect("a line from the client")
    }

    pub async fn expect(&mut self, method: &str) -> Value {
        let m = self.recv().await;
        assert_eq!(m["method"], method, "{m}");
        m
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) {
        let w = self.writer.as_mut().expect("writer");
        w.write_all(bytes).await.expect("write");
        w.flush().await.expect("flush");
    }

    pub async fn send(&mut self, line: &str) {
        self.send_raw(format!("{line}\n").as_bytes()).await;
    }

    pub async fn reply(&mut self, request: &Value, result: Value) {
        let line = json!({"id": request["id"], "result": result, "error": null}).to_string();
        self.send(&line).await;
    }

    /// Whether the client closed this connection (within the limit).
    pub async fn closed_by_client(&mut self) -> bool {
        loop {
            let mut line = String::new();
            match timeout(SCRIPT_LIMIT, self.reader.read_line(&mut line)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return true,
                Ok(Ok(_)) => continue,
                Err(_) => return false,
            }
        }
    }

    /// Subscribe (answered with `subscribe_result`), configure if the client rolls versions
    /// (answered with `configure_result`), authorize (answered true). Returns the subscribe.
    pub async fn handshake(
        &mut self,
        subscribe_result: &Value,
        configure_result: Option<&Value>,
    ) -> Value {
        let sub = self.expect("mining.subscribe").await;
        assert!(
            sub["params"][0]
                .as_str()
                .is_some_and(|ua| ua == user_agent() && ua.starts_with("wgminer/")),
            "{sub}"
        );
        if let Some(result) = configure_result {
            let conf = self.expect("mining.configure").await;
            self.reply(&conf, result.clone()).await;
        }
        self.reply(&sub, subscribe_result.clone()).await;
        let auth = self.expect("mining.authorize").await;
        self.reply(&auth, json!(true)).await;
        sub
    }
}
