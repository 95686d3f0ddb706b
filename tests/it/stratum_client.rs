//! The Stratum V1 client end to end, against a test pool server on 127.0.0.1.
//!
//! No real pool server can be installed from the package registries here (ckpool, public-pool
//! and the like are not packaged), so the pool is the tests' own (tests/it/support/pool_server.rs,
//! driven line by line by each scenario). It speaks the
//! protocol from the real sessions in tests/data/stratum.json: the slush documentation session
//! (subscribe result, authorize, notify, the submit that solved testnet3 block 25096) and the
//! ckpool (p2poolv2) session with BIP310 version rolling. The client must send the recorded
//! `mining.submit` parameters exactly (the JSON is compared as values, so whitespace and ids don't
//! matter).
//!
//! Timers are shortened through `ClientConfig`; every wait in the test is bounded by a generous
//! limit that only matters when something is broken, so a loaded machine slows the tests without
//! failing them. `tokio::time::pause()` is not used: these tests run real sockets, and paused time
//! would fire the client's keepalive while the kernel is still delivering bytes.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bitcoin::hex::FromHex;
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::timeout;
use tokio_rustls::TlsAcceptor;
use wgminer::pow::target_from_difficulty;
use wgminer::stratum::client::{
    run, ClientConfig, ClientError, ClientEvent, PoolConfig, PoolUrl, SHARE_BATCH,
};
use wgminer::stratum::{user_agent, Event};
use wgminer::work::{Extranonce2, PreparedJob, Roll, Share};

use crate::support::pool_server::{free_port, MockPool, PoolConn};

/// Bounds every wait: reached only when the client is broken.
const LIMIT: Duration = Duration::from_secs(15);

// ---------------------------------------------------------------------------------------------
// The recorded sessions.

struct Recorded {
    /// The pool's lines and the miner's, parsed.
    messages: Vec<Value>,
    /// The raw notify line, sent as the pool sent it.
    notify_line: String,
    submit: Value,
    worker: String,
}

fn recorded(id: &str) -> Recorded {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/stratum.json"
    ))
    .expect("tests/data/stratum.json is part of the repository");
    let all: Value = serde_json::from_str(&text).expect("valid JSON");
    let v = all
        .as_array()
        .and_then(|a| a.iter().find(|v| v["id"] == id))
        .unwrap_or_else(|| panic!("vector {id}"));
    let lines: Vec<&str> = v["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m.as_str().expect("a line"))
        .collect();
    let messages: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    let notify_line = lines
        .iter()
        .zip(&messages)
        .find(|(_, m)| m["method"] == "mining.notify")
        .map(|(l, _)| l.to_string())
        .expect("a notify");
    let submit = messages
        .iter()
        .find(|m| m["method"] == "mining.submit")
        .expect("a submit")
        .clone();
    Recorded {
        worker: submit["params"][0].as_str().expect("worker").to_owned(),
        messages,
        notify_line,
        submit,
    }
}

impl Recorded {
    /// The first response whose result satisfies `pick`.
    fn result(&self, pick: impl Fn(&Value) -> bool) -> Value {
        self.messages
            .iter()
            .find(|m| m.get("result").is_some_and(&pick))
            .map(|m| m["result"].clone())
            .expect("recorded result")
    }

    fn subscribe_result(&self) -> Value {
        self.result(Value::is_array)
    }

    fn request(&self, method: &str) -> Value {
        self.messages
            .iter()
            .find(|m| m["method"] == method)
            .unwrap_or_else(|| panic!("recorded {method}"))
            .clone()
    }

    /// The notify with another job id and clean flag.
    fn notify_as(&self, job_id: &str, clean: bool) -> String {
        let mut n: Value = serde_json::from_str(&self.notify_line).expect("json");
        n["params"][0] = json!(job_id);
        n["params"][8] = json!(clean);
        n.to_string()
    }
}

fn slush() -> Recorded {
    recorded("slush-docs-testnet3-block-25096")
}

fn ckpool_rolling() -> Recorded {
    recorded("p2poolv2-ckpool-signet-with_version_rolling")
}

/// The share the slush session submitted, for any job id.
fn slush_share(job_id: &str) -> Share {
    Share {
        job_id: job_id.into(),
        extranonce2: Some(Extranonce2::from_hex("00000001").expect("hex")),
        ntime: 0x504e86ed,
        nonce: 0xb2957c02,
        version_bits: None,
    }
}

/// The slush share with another nonce, to tell shares apart (the pool here never checks them).
fn share_n(job_id: &str, nonce: u32) -> Share {
    Share {
        nonce,
        ..slush_share(job_id)
    }
}

/// The share a share event is about, with the event's name.
fn share_event(e: &ClientEvent) -> Option<(&'static str, &Share)> {
    let ClientEvent::Stratum(event) = e else {
        return None;
    };
    match event {
        Event::ShareAccepted { share } => Some(("accepted", share)),
        Event::ShareRejected { share, .. } => Some(("rejected", share)),
        Event::ShareStale { share, .. } => Some(("stale", share)),
        Event::ShareHeld { share } => Some(("held", share)),
        Event::HeldShareSent { share } => Some(("held sent", share)),
        Event::ShareUnanswered { share } => Some(("unanswered", share)),
        _ => None,
    }
}

/// `(held, why)` of a stale-share event.
fn stale_why(e: &ClientEvent) -> Option<(bool, &str)> {
    match e {
        ClientEvent::Stratum(Event::ShareStale { held, why, .. }) => Some((*held, why.as_str())),
        _ => None,
    }
}

fn url(port: u16) -> PoolUrl {
    format!("stratum+tcp://127.0.0.1:{port}")
        .parse()
        .expect("url")
}

// ---------------------------------------------------------------------------------------------
// The miner side: the client in a task, as the work manager will run it (not the `wgminer`
// process, which support::miner::Miner runs).

struct Client {
    events: mpsc::Receiver<ClientEvent>,
    shares: mpsc::Sender<Share>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), ClientError>>,
}

fn config(port: u16, user: &str, password: &str) -> ClientConfig {
    let mut c = ClientConfig::new(PoolConfig {
        url: url(port),
        user: user.into(),
        password: password.into(),
    });
    c.version_rolling = None;
    c.keepalive = Duration::from_secs(10);
    c.connect_timeout = Duration::from_secs(3);
    c.backoff_initial = Duration::from_millis(20);
    c.backoff_max = Duration::from_millis(200);
    c
}

fn start(config: ClientConfig) -> Client {
    start_with_share_capacity(config, 64)
}

fn start_with_share_capacity(config: ClientConfig, share_capacity: usize) -> Client {
    let (events_tx, events) = mpsc::channel(1024);
    let (shares, shares_rx) = mpsc::channel(share_capacity);
    let (stop, stop_rx) = oneshot::channel::<()>();
    let task = tokio::spawn(run(config, events_tx, shares_rx, async move {
        let _ = stop_rx.await;
    }));
    Client {
        events,
        shares,
        stop: Some(stop),
        task,
    }
}

/// The start most scenarios share: a pool, the client started on it, its connection accepted
/// and the handshake answered with `rec`'s subscribe result.
async fn connected(rec: &Recorded) -> (MockPool, Client, PoolConn) {
    connected_with(rec, start).await
}

/// [`connected`], with the client started by `start` from the usual config.
async fn connected_with(
    rec: &Recorded,
    start: impl FnOnce(ClientConfig) -> Client,
) -> (MockPool, Client, PoolConn) {
    let pool = MockPool::bind().await;
    let miner = start(config(pool.port(), &rec.worker, "password"));
    let mut conn = pool.accept().await;
    conn.handshake(&rec.subscribe_result(), None).await;
    (pool, miner, conn)
}

/// Send `rec`'s recorded job and wait until the client has it.
async fn first_job(rec: &Recorded, conn: &mut PoolConn, miner: &mut Client) -> Arc<PreparedJob> {
    conn.send(&rec.notify_line).await;
    miner.new_job().await
}

impl Client {
    /// Wait for an event `pick` accepts, passing over the others.
    async fn wait_for<T>(&mut self, mut pick: impl FnMut(&ClientEvent) -> Option<T>) -> T {
        self.wait_for_seeing(|e| pick(e), |_| {}).await
    }

    /// Like `wait_for`, showing every event passed over to `seen`.
    async fn wait_for_seeing<T>(
        &mut self,
        mut pick: impl FnMut(&ClientEvent) -> Option<T>,
        mut seen: impl FnMut(&ClientEvent),
    ) -> T {
        timeout(LIMIT, async {
            loop {
                let e = self.events.recv().await.expect("the client is running");
                if let Some(t) = pick(&e) {
                    return t;
                }
                seen(&e);
            }
        })
        .await
        .expect("the expected event comes")
    }

    async fn new_job(&mut self) -> Arc<PreparedJob> {
        self.wait_for(|e| match e {
            ClientEvent::Stratum(Event::NewJob { job, .. }) => Some(Arc::clone(job)),
            _ => None,
        })
        .await
    }

    async fn share_result(&mut self) -> Result<Share, String> {
        self.wait_for(|e| match e {
            ClientEvent::Stratum(event) => match event {
                Event::ShareAccepted { share } => Some(Ok(share.clone())),
                Event::ShareRejected { reason, .. } => Some(Err(reason.clone())),
                Event::ShareStale { share, .. } => Some(Err(format!("stale {}", share.job_id))),
                _ => None,
            },
            _ => None,
        })
        .await
    }

    async fn disconnected(&mut self) -> String {
        self.wait_for(|e| match e {
            ClientEvent::Disconnected { reason, .. } => Some(reason.clone()),
            _ => None,
        })
        .await
    }

    async fn submit(&self, share: Share) {
        self.shares
            .send(share)
            .await
            .expect("the client takes shares");
    }

    /// Shut down and check the task ends cleanly.
    async fn stop(self) {
        self.stop_seeing().await;
    }

    /// Shut down, receiving events until the client ends (as the runner does: the client
    /// reports the shares it gives up at exit); returns them.
    async fn stop_seeing(self) -> Vec<ClientEvent> {
        let Client {
            mut events,
            stop,
            task,
            ..
        } = self;
        if let Some(stop) = stop {
            let _ = stop.send(());
        }
        let mut seen = Vec::new();
        let drain = async {
            while let Some(e) = events.recv().await {
                seen.push(e);
            }
        };
        let (ended, ()) = timeout(LIMIT, async { tokio::join!(task, drain) })
            .await
            .expect("the client stops");
        assert!(matches!(ended, Ok(Ok(()))), "{ended:?}");
        seen
    }
}

// ---------------------------------------------------------------------------------------------
// The tests.

#[tokio::test]
async fn slush_session_subscribe_authorize_notify_share_accepted() {
    let rec = slush();
    let pool = MockPool::bind().await;
    let mut miner = start(config(pool.port(), &rec.worker, "password"));
    let mut conn = pool.accept().await;
    let sub = conn.expect("mining.subscribe").await;
    // A first connection has no session to resume.
    assert_eq!(sub["params"], json!([user_agent()]));
    conn.reply(&sub, rec.subscribe_result()).await;
    let auth = conn.expect("mining.authorize").await;
    assert_eq!(auth["params"], rec.request("mining.authorize")["params"]);
    conn.reply(&auth, json!(true)).await;
    conn.send(&rec.notify_line).await;

    let job = miner.new_job().await;
    assert_eq!(job.job().id, "bf");
    let roll = Roll {
        extranonce2: Some(Extranonce2::from_hex("00000001").expect("hex")),
        ntime: 0x504e86ed,
        version_bits: 0,
    };
    let share = job.share(&roll, 0xb2957c02);
    assert!(job.check_share(&share).is_ok());
    miner.submit(share.clone()).await;
    let submit = conn.expect("mining.submit").await;
    assert_eq!(submit["params"], rec.submit["params"]);
    conn.reply(&submit, json!(true)).await;
    assert_eq!(miner.share_result().await, Ok(share.clone()));

    // A rejection carries the pool's reason.
    miner.submit(share).await;
    let again = conn.expect("mining.submit").await;
    let line = json!({"id": again["id"], "result": null, "error": [22, "Duplicate share", null]});
    conn.send(&line.to_string()).await;
    assert_eq!(miner.share_result().await, Err("Duplicate share".into()));
    miner.stop().await;
}

#[tokio::test]
async fn ckpool_version_rolling_submit_carries_the_sixth_parameter() {
    let rec = ckpool_rolling();
    let pool = MockPool::bind().await;
    let mut cfg = config(pool.port(), &rec.worker, "x");
    cfg.version_rolling = Some(0xffff_ffff);
    let mut miner = start(cfg);
    let mut conn = pool.accept().await;
    let sub = conn.expect("mining.subscribe").await;
    let conf = conn.expect("mining.configure").await;
    // BIP310 negotiation exactly as the recorded miner asked.
    assert_eq!(conf["params"], rec.request("mining.configure")["params"]);
    // ckpool's order: the configure answer, then the subscribe answer.
    conn.reply(&conf, rec.result(Value::is_object)).await;
    conn.reply(&sub, rec.subscribe_result()).await;
    let auth = conn.expect("mining.authorize").await;
    conn.reply(&auth, json!(true)).await;
    conn.send(&rec.notify_line).await;

    let mask = miner
        .wait_for(|e| match e {
            ClientEvent::Stratum(Event::VersionRolling { mask }) => Some(*mask),
            _ => None,
        })
        .await;
    assert_eq!(mask, Some(0x1fffe000));
    let job = miner.new_job().await;
    assert_eq!(job.job().version_mask, 0x1fffe000);
    let roll = Roll {
        extranonce2: Some(Extranonce2::from_bytes(&[0; 8]).expect("8 bytes")),
        ntime: 0x6878b602,
        version_bits: 0x083ac000,
    };
    let share = job.share(&roll, 0x58f90070);
    // The recorded share solved a signet block: our job rebuilds the same header.
    assert!(job.check_share(&share).is_ok());
    miner.submit(share).await;
    let submit = conn.expect("mining.submit").await;
    assert_eq!(submit["params"], rec.submit["params"]);
    assert_eq!(submit["params"].as_array().map(Vec::len), Some(6));
    conn.reply(&submit, json!(true)).await;
    assert!(miner.share_result().await.is_ok());
    miner.stop().await;
}

#[tokio::test]
async fn set_difficulty_between_jobs_applies_to_the_next_job_only() {
    let rec = slush();
    let (_pool, mut miner, mut conn) = connected(&rec).await;
    let old = first_job(&rec, &mut conn, &mut miner).await;
    conn.send(r#"{"id":null,"method":"mining.set_difficulty","params":[512]}"#)
        .await;
    conn.send(&rec.notify_as("c0", false)).await;
    let new = miner.new_job().await;
    assert_eq!(new.job().id, "c0");
    assert_eq!(
        new.job().share_target,
        target_from_difficulty(512.0).expect("target")
    );
    // The job already out keeps the difficulty it was sent under, and stays submittable.
    assert_eq!(
        old.job().share_target,
        target_from_difficulty(1.0).expect("target")
    );
    assert!(old.check_share(&slush_share("bf")).is_ok());
    miner.submit(slush_share("bf")).await;
    let submit = conn.expect("mining.submit").await;
    assert_eq!(submit["params"], rec.submit["params"]);
    conn.reply(&submit, json!(true)).await;
    assert!(miner.share_result().await.is_ok());
    miner.stop().await;
}

#[tokio::test]
async fn clean_job_switch_drops_the_stale_share() {
    let rec = slush();
    let (_pool, mut miner, mut conn) = connected(&rec).await;
    first_job(&rec, &mut conn, &mut miner).await;
    conn.send(&rec.notify_as("c1", true)).await;
    let job = miner.new_job().await;
    assert_eq!(job.job().id, "c1");
    miner.submit(slush_share("bf")).await;
    assert_eq!(miner.share_result().await, Err("stale bf".into()));
    miner.submit(slush_share("c1")).await;
    // The stale share never reached the pool: the next submit is the live job's.
    let submit = conn.expect("mining.submit").await;
    assert_eq!(submit["params"][1], "c1");
    miner.stop().await;
}

#[tokio::test]
async fn set_extranonce_mid_session_applies_to_later_jobs() {
    let rec = slush();
    let (_pool, mut miner, mut conn) = connected_with(&rec, |mut cfg| {
        cfg.extranonce_subscribe = true;
        start(cfg)
    })
    .await;
    let ext = conn.expect("mining.extranonce.subscribe").await;
    conn.reply(&ext, json!(true)).await;
    conn.send(&rec.notify_line).await;
    let old = miner.new_job().await;
    assert_eq!(old.job().coinbase.extranonce1, vec![8, 0, 0, 2]);
    conn.send(r#"{"id":null,"method":"mining.set_extranonce","params":["0a0b0c0d0e",3]}"#)
        .await;
    conn.send(&rec.notify_as("c2", false)).await;
    let new = miner.new_job().await;
    assert_eq!(
        new.job().coinbase.extranonce1,
        Vec::<u8>::from_hex("0a0b0c0d0e").expect("hex")
    );
    assert_eq!(new.job().coinbase.extranonce2_size, 3);
    // The old job's coinbase no longer matches what the pool builds: not submitted.
    miner.submit(slush_share("bf")).await;
    assert_eq!(miner.share_result().await, Err("stale bf".into()));
    let share = Share {
        extranonce2: Some(Extranonce2::from_hex("000001").expect("hex")),
        ..slush_share("c2")
    };
    miner.submit(share).await;
    let submit = conn.expect("mining.submit").await;
    assert_eq!(
        submit["params"],
        json!([rec.worker, "c2", "000001", "504e86ed", "b2957c02"])
    );
    miner.stop().await;
}

#[tokio::test]
async fn pool_closing_mid_submit_gets_the_share_after_reconnect() {
    let rec = slush();
    let (pool, mut miner, mut conn) = connected(&rec).await;
    first_job(&rec, &mut conn, &mut miner).await;
    miner.submit(slush_share("bf")).await;
    conn.expect("mining.submit").await;
    // The pool goes away before answering.
    drop(conn);
    miner.disconnected().await;
    // The share in flight is held again, not lost.
    let held = miner
        .wait_for(|e| share_event(e).map(|(what, sh)| (what, sh.clone())))
        .await;
    assert_eq!(held, ("held", slush_share("bf")));
    let mut conn = pool.accept().await;
    let sub = conn.handshake(&rec.subscribe_result(), None).await;
    // The client resumes its session (same extranonce1 back: the job is still live).
    assert_eq!(
        sub["params"],
        json!([user_agent(), "ae6812eb4cd7735a302a8a9dd95cf71f"])
    );
    let submit = conn.expect("mining.submit").await;
    assert_eq!(submit["params"], rec.submit["params"]);
    let resent = miner
        .wait_for(|e| share_event(e).map(|(what, _)| what))
        .await;
    assert_eq!(resent, "held sent");
    conn.reply(&submit, json!(true)).await;
    assert!(miner.share_result().await.is_ok());
    miner.stop().await;
}

#[tokio::test]
async fn connection_refused_then_the_pool_comes_up() {
    let rec = slush();
    let port = free_port().await;
    let mut miner = start(config(port, &rec.worker, "password"));
    // Two refusals at least: the client keeps retrying with backoff.
    let first = miner.disconnected().await;
    assert!(first.contains("connect"), "{first}");
    miner.disconnected().await;
    let pool = MockPool::bind_port(port).await;
    let mut conn = pool.accept().await;
    conn.handshake(&rec.subscribe_result(), None).await;
    conn.send(&rec.notify_line).await;
    assert_eq!(miner.new_job().await.job().id, "bf");
    miner.stop().await;
}

#[tokio::test]
async fn garbage_lines_are_survived() {
    let rec = slush();
    let (_pool, mut miner, mut conn) = connected(&rec).await;
    conn.send("this is not json").await;
    conn.send_raw(b"\xff\xfe\xfd\n").await;
    conn.send("[1,2,3]").await;
    conn.send(r#"{"id":null,"method":"mining.notify","params":["x"]}"#)
        .await;
    conn.send(r#"{"id":null,"method":"mining.set_difficulty","params":[-1]}"#)
        .await;
    conn.send(r#"{"id":77,"method":"client.get_version","params":[]}"#)
        .await;
    let version = conn.recv().await;
    assert_eq!(version["id"], 77);
    assert_eq!(version["result"], json!(user_agent()));
    conn.send(r#"{"id":78,"method":"mining.unheard_of","params":[]}"#)
        .await;
    let refused = conn.recv().await;
    assert_eq!(refused["id"], 78);
    assert!(refused["error"].is_array());
    conn.send(&rec.notify_line).await;
    let mut dropped = false;
    miner
        .wait_for_seeing(
            |e| matches!(e, ClientEvent::Stratum(Event::NewJob { .. })).then_some(()),
            |e| dropped |= matches!(e, ClientEvent::Disconnected { .. }),
        )
        .await;
    assert!(!dropped, "garbage must not cost the connection");
    // Same connection still works.
    miner.submit(slush_share("bf")).await;
    conn.expect("mining.submit").await;
    miner.stop().await;
}

#[tokio::test]
async fn ten_megabyte_line_drops_the_connection_and_the_client_reconnects() {
    let rec = slush();
    let (pool, mut miner, mut conn) = connected(&rec).await;
    let mut writer = conn.writer.take().expect("writer");
    // The client stops reading after about a megabyte and closes: the write fails then.
    let flood = tokio::spawn(async move {
        let chunk = vec![b'x'; 1 << 20];
        for _ in 0..10 {
            if writer.write_all(&chunk).await.is_err() {
                return;
            }
        }
        let _ = writer.write_all(b"\n").await;
    });
    let reason = miner.disconnected().await;
    assert!(reason.contains("limit"), "{reason}");
    let mut conn2 = pool.accept().await;
    conn2.handshake(&rec.subscribe_result(), None).await;
    conn2.send(&rec.notify_line).await;
    assert_eq!(miner.new_job().await.job().id, "bf");
    flood.abort();
    drop(conn);
    miner.stop().await;
}

#[tokio::test]
async fn stalling_pool_is_left_by_keepalive() {
    let rec = slush();
    let pool = MockPool::bind().await;
    let mut cfg = config(pool.port(), &rec.worker, "password");
    cfg.keepalive = Duration::from_millis(400);
    let mut miner = start(cfg);
    let mut stalled = pool.accept().await;
    stalled.handshake(&rec.subscribe_result(), None).await;
    // Then nothing: the socket stays open but silent.
    let reason = miner.disconnected().await;
    assert!(reason.contains("no line"), "{reason}");
    assert!(stalled.closed_by_client().await);
    let mut conn = pool.accept().await;
    conn.handshake(&rec.subscribe_result(), None).await;
    conn.send(&rec.notify_line).await;
    assert_eq!(miner.new_job().await.job().id, "bf");
    miner.stop().await;
}

#[tokio::test]
async fn client_reconnect_request_is_followed() {
    let rec = slush();
    let (pool, mut miner, mut conn) = connected(&rec).await;
    conn.send(r#"{"id":null,"method":"client.reconnect","params":[]}"#)
        .await;
    assert!(miner.disconnected().await.contains("reconnect"));
    assert!(conn.closed_by_client().await);
    let mut conn = pool.accept().await;
    conn.handshake(&rec.subscribe_result(), None).await;
    miner.stop().await;
}

/// A pool (or whoever holds its connection) that answers every connection with
/// `client.reconnect` and no wait once made the client reconnect hundreds of times a second.
#[tokio::test]
async fn a_pool_that_keeps_asking_to_reconnect_is_not_hammered() {
    let rec = slush();
    let pool = MockPool::bind().await;
    let miner = start(config(pool.port(), &rec.worker, "password"));
    let window = Duration::from_secs(4);
    let started = tokio::time::Instant::now();
    let mut connections = 0;
    loop {
        let left = window.saturating_sub(started.elapsed());
        let Ok(mut conn) = timeout(left, pool.accept()).await else {
            break;
        };
        connections += 1;
        conn.send(r#"{"id":null,"method":"client.reconnect","params":[]}"#)
            .await;
    }
    // At once, then after 1 s and 2 s more: 3 (4 with scheduling slack) in 4 s.
    assert!(
        (2..=4).contains(&connections),
        "{connections} connections in {window:?}"
    );
    miner.stop().await;
}

#[tokio::test]
async fn shares_found_while_down_are_sent_after_reconnect() {
    let rec = slush();
    let (pool, mut miner, mut conn) = connected(&rec).await;
    first_job(&rec, &mut conn, &mut miner).await;
    drop(conn);
    miner.disconnected().await;
    miner.submit(slush_share("bf")).await;
    let mut conn = pool.accept().await;
    conn.handshake(&rec.subscribe_result(), None).await;
    let submit = conn.expect("mining.submit").await;
    assert_eq!(submit["params"], rec.submit["params"]);
    miner.stop().await;
}

/// A pool behind TLS with a certificate for "localhost", trusted through
/// `ClientConfig::extra_tls_roots` (the Mozilla roots are trusted as well, but cannot sign a
/// test certificate).
async fn tls_pool() -> (MockPool, Vec<u8>) {
    use tokio_rustls::rustls;
    let rcgen::CertifiedKey { cert, key_pair } =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("certificate");
    let cert_der = cert.der().clone();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(rustls::pki_types::PrivatePkcs8KeyDer::from(
        key_pair.serialize_der(),
    ));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(vec![cert_der.clone()], key)
        .expect("server config");
    let pool = MockPool::bind_tls(TlsAcceptor::from(Arc::new(server))).await;
    (pool, cert_der.to_vec())
}

#[tokio::test]
async fn tls_pool_session_share_accepted() {
    let rec = slush();
    let (pool, root) = tls_pool().await;
    let mut cfg = config(pool.port(), &rec.worker, "password");
    cfg.pool.url = format!("stratum+ssl://localhost:{}", pool.port())
        .parse()
        .expect("url");
    cfg.extra_tls_roots = vec![root];
    let mut miner = start(cfg);
    let mut conn = pool.accept().await;
    conn.handshake(&rec.subscribe_result(), None).await;
    conn.send(&rec.notify_line).await;
    assert_eq!(miner.new_job().await.job().id, "bf");
    miner.submit(slush_share("bf")).await;
    let submit = conn.expect("mining.submit").await;
    assert_eq!(submit["params"], rec.submit["params"]);
    conn.reply(&submit, json!(true)).await;
    assert!(miner.share_result().await.is_ok());
    miner.stop().await;
}

#[tokio::test]
async fn tls_pool_with_an_untrusted_certificate_is_refused() {
    let rec = slush();
    let (pool, _root) = tls_pool().await;
    let mut cfg = config(pool.port(), &rec.worker, "password");
    cfg.pool.url = format!("stratum+ssl://localhost:{}", pool.port())
        .parse()
        .expect("url");
    let mut miner = start(cfg);
    let server = tokio::spawn(async move {
        // The handshake fails on the client's side; keep accepting so it can retry.
        let _ = timeout(LIMIT, pool.accept()).await;
    });
    let reason = miner.disconnected().await;
    assert!(reason.contains("tls"), "{reason}");
    server.abort();
    miner.stop().await;
}

#[tokio::test]
async fn shutdown_sends_the_shares_already_handed_in() {
    let rec = slush();
    let (_pool, mut miner, mut conn) = connected(&rec).await;
    first_job(&rec, &mut conn, &mut miner).await;
    miner.submit(slush_share("bf")).await;
    let seen = miner.stop_seeing().await;
    let submit = conn.expect("mining.submit").await;
    assert_eq!(submit["params"], rec.submit["params"]);
    assert!(conn.closed_by_client().await);
    // Written and not answered: in flight at exit, which the runner counts as unanswered.
    assert!(seen.iter().all(|e| share_event(e).is_none()), "{seen:?}");
}

#[tokio::test]
async fn shares_held_at_exit_are_reported_stale() {
    let rec = slush();
    let (pool, mut miner, mut conn) = connected(&rec).await;
    first_job(&rec, &mut conn, &mut miner).await;
    // The pool is gone for good: the client keeps trying to reconnect.
    drop(conn);
    drop(pool);
    miner.disconnected().await;
    miner.submit(share_n("bf", 1)).await;
    let held = miner
        .wait_for(|e| share_event(e).map(|(what, sh)| (what, sh.nonce)))
        .await;
    assert_eq!(held, ("held", 1));
    // Handed in but not yet taken from the channel when the run ends: accounted for as well.
    miner.submit(share_n("bf", 2)).await;
    let seen = miner.stop_seeing().await;
    // Share 2 is either held first (taken while the client waited) or taken from the channel at
    // exit (held, then given up); either way it ends stale, like share 1, and nothing else
    // happens to either.
    let fates: Vec<String> = seen
        .iter()
        .filter_map(|e| {
            let (what, share) = share_event(e)?;
            Some(match stale_why(e) {
                Some((held, why)) => format!("{} {what} held={held} {why}", share.nonce),
                None => format!("{} {what}", share.nonce),
            })
        })
        .filter(|f| f != "2 held")
        .collect();
    assert_eq!(
        fates,
        [
            "1 stale held=true not sent: no connection at exit",
            "2 stale held=true not sent: no connection at exit"
        ]
    );
}

#[tokio::test]
async fn suggested_difficulty_goes_before_authorize_and_again_after_a_refusal() {
    let rec = slush();
    let pool = MockPool::bind().await;
    let mut cfg = config(pool.port(), &rec.worker, "password");
    cfg.suggest_difficulty = Some(2048.0);
    let mut miner = start(cfg);
    let mut conn = pool.accept().await;
    let sub = conn.expect("mining.subscribe").await;
    conn.reply(&sub, rec.subscribe_result()).await;
    let suggest = conn.expect("mining.suggest_difficulty").await;
    assert_eq!(suggest["params"], json!([2048]));
    let auth = conn.expect("mining.authorize").await;
    // This pool takes the suggestion only from an authorized worker.
    let refusal =
        json!({"id": suggest["id"], "result": null, "error": [24, "Unauthorized worker", null]});
    conn.send(&refusal.to_string()).await;
    conn.reply(&auth, json!(true)).await;
    let again = conn.expect("mining.suggest_difficulty").await;
    assert_eq!(again["params"], json!([2048]));
    conn.reply(&again, json!(true)).await;
    conn.send(&rec.notify_line).await;
    assert_eq!(miner.new_job().await.job().id, "bf");
    miner.stop().await;
}

/// A pool at a tiny difficulty: the miner's shares pour in without pause. A new clean job must
/// still be read at once, i.e. within a bounded number of client events after the pool sent it,
/// while a backlog of shares far larger than that bound waits in the channel (a client that
/// served the channel before the socket would work through all of it first).
#[tokio::test]
async fn a_flood_of_shares_does_not_keep_a_new_job_from_being_read() {
    const BACKLOG: u32 = 100_000;
    // Each turn of the client's loop takes at most SHARE_BATCH + 1 shares, and each share here
    // gives at most one event; a few hundred turns is far more than reading takes.
    let bound = 200 * (SHARE_BATCH + 1);
    assert!(bound < BACKLOG as usize / 4);
    let rec = slush();
    let (_pool, mut miner, mut conn) = connected_with(&rec, |cfg| {
        start_with_share_capacity(cfg, BACKLOG as usize + 1)
    })
    .await;
    first_job(&rec, &mut conn, &mut miner).await;

    // The pool reads every submit (never answering) in a task of its own, and counts them.
    let mut writer = conn.writer.take().expect("writer");
    let submits = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&submits);
    let pool_reader = tokio::spawn(async move {
        while let Some(m) = conn.read_line(LIMIT).await {
            if m["method"] == "mining.submit" {
                counted.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
    // The backlog, then a flood that keeps the channel full.
    for nonce in 0..BACKLOG {
        miner
            .shares
            .try_send(share_n("bf", nonce))
            .expect("room for the backlog");
    }
    let flood_tx = miner.shares.clone();
    let flood = tokio::spawn(async move {
        for nonce in BACKLOG.. {
            if flood_tx.send(share_n("bf", nonce)).await.is_err() {
                return;
            }
        }
    });
    // The client is in the thick of it once the pool's silence overflows its request table:
    // from then on every share it sends pushes an unanswered one out, one event each.
    miner
        .wait_for(|e| matches!(share_event(e), Some(("unanswered", _))).then_some(()))
        .await;

    let clean = format!("{}\n", rec.notify_as("c9", true));
    writer.write_all(clean.as_bytes()).await.expect("write");
    writer.flush().await.expect("flush");
    let mut passed_over = 0;
    let job = miner
        .wait_for_seeing(
            |e| match e {
                ClientEvent::Stratum(Event::NewJob { job, clean }) => {
                    Some((job.job().id.clone(), *clean))
                }
                _ => None,
            },
            |_| {
                passed_over += 1;
                assert!(
                    passed_over <= bound,
                    "no new job after {bound} events: reading waits on shares"
                );
            },
        )
        .await;
    assert_eq!(job, ("c9".to_owned(), true));
    // Shares went out all along...
    assert!(submits.load(Ordering::Relaxed) > 4096);
    // ...and the flood's shares are for the replaced job now: stale, not sent.
    let why = miner
        .wait_for(|e| stale_why(e).map(|(held, why)| (held, why.to_owned())))
        .await;
    assert_eq!(why, (false, "job replaced".to_owned()));

    flood.abort();
    let _ = flood.await;
    // At exit the client takes what is left in the channel (stale now) and reports it.
    let seen = miner.stop_seeing().await;
    assert!(seen
        .iter()
        .all(|e| share_event(e).is_none_or(|(what, _)| what != "held")));
    drop(writer);
    pool_reader.abort();
}
