//! Failover between Stratum V1 and Stratum V2 pools in one `-o` list, for real: SRI's
//! `pool_sv2` 0.7 on the embedded node core's Template Provider (see `sv2_tp`) beside the
//! in-repo V1 test pool ([`TestPool`]), and wgminer's [`FailoverSource`] mining on them with the
//! CPU backend. A dead V2 primary at start: mining goes to the V1 backup, returns to V2 once its
//! pool is up, and `switchpool` moves it back to V1. A V1 primary that dies mid-run: the binary
//! moves to the V2 backup and its API says so. In each, every share ends in exactly one counter
//! and no share reaches a pool that did not give its job.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use wgminer::mining::{FailoverConfig, FailoverSource, PoolSpec, Sv2Config};
use wgminer::stratum::client::{ClientConfig, PoolConfig};
use wgminer::work::MiningStats;

use crate::support::miner::{assert_books_balance, Miner};
use crate::support::pool_server::TestPool;
use crate::sv2_tp::{pool_sv2, provider, sri_on_tp, Pool, TempDir, SRI_POOL_PUBLIC_KEY};
use wgminer::node::sv2_tp::LIMITS;

const LIMIT: Duration = Duration::from_secs(90);

fn sv2_url(port: u16) -> String {
    format!("stratum2+tcp://127.0.0.1:{port}/{SRI_POOL_PUBLIC_KEY}")
}

fn sv2_pool(port: u16) -> PoolSpec {
    PoolSpec::Sv2(Sv2Config {
        host: "127.0.0.1".into(),
        port,
        authority: SRI_POOL_PUBLIC_KEY.parse().expect("SRI's key"),
        user: "wgminer-test.rig1".into(),
        // Low, so the pool's target gives one CPU thread a share every second or so.
        nominal_hash_rate: 1e6,
        channel: wgminer::sv2::mining_client::ChannelKind::Extended,
    })
}

fn v1_pool(pool: &TestPool) -> PoolSpec {
    PoolSpec::Stratum(ClientConfig::new(PoolConfig {
        url: pool.url().parse().expect("url"),
        user: "tester.rig1".into(),
        password: "x".into(),
    }))
}

async fn wait(what: &str, f: impl Fn() -> bool) {
    let end = Instant::now() + LIMIT;
    while !f() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn on(stats: &MiningStats, url: &str) -> bool {
    let s = stats.snapshot();
    s.connected && s.pool.as_deref() == Some(url)
}

fn accepted_by(pool: &TestPool) -> usize {
    pool.submits().iter().filter(|s| s.accepted).count()
}

/// V2 primary dead at start -> V1 backup (shares accepted there) -> the V2 pool starts ->
/// mining returns to it (shares accepted there) -> `switchpool 1` -> back on V1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_sv2_primary_fails_over_to_v1_and_mining_returns_when_it_is_up() {
    let Some(bin) = pool_sv2() else { return };
    let dir = TempDir::new("failover-sv2-first");
    let (_core, tp) = provider(&dir, LIMITS).await;
    // Start SRI's pool once for its port, then take it down: the primary is dead at start.
    let mut sri = Pool::start_batched(&bin, &dir.0, &tp, 1);
    sri.until("SetNewPrevHash { template_id: 1,", 1).await;
    let port = sri.listen.port();
    sri.kill();
    let v1 = TestPool::start(1e-4).await;

    let config = FailoverConfig {
        failover_after: 2,
        primary_probe: Duration::from_millis(300),
        probe_timeout: Duration::from_secs(1),
        round_wait_max: Duration::from_secs(1),
        ..FailoverConfig::default()
    };
    let switch = config.switch.clone();
    let source = FailoverSource::new(vec![sv2_pool(port), v1_pool(&v1)], config);
    assert_eq!(source.urls(), [sv2_url(port), v1.url()]);
    let run = crate::support::cpu_run::CpuRun::start(source);
    let stats = Arc::clone(&run.stats);

    // On the V1 backup, and its shares are accepted there.
    wait("shares accepted by the V1 backup", || {
        on(&stats, &v1.url()) && accepted_by(&v1) >= 3
    })
    .await;

    // The V2 pool comes up on its port: the probe finds it and mining returns.
    sri.restart(&bin, &dir.0);
    let sv2 = sv2_url(port);
    wait("the return to the V2 primary", || on(&stats, &sv2)).await;
    let on_v1 = accepted_by(&v1);
    let before = stats.accepted.load(Ordering::Relaxed);
    wait("shares accepted by the V2 pool", || {
        stats.accepted.load(Ordering::Relaxed) >= before + 2
    })
    .await;
    let log = sri.until("Received SubmitSharesExtended", 1).await;
    assert!(log.contains("user_identity: wgminer-test.rig1"), "{log}");
    // Nothing more went to the V1 pool once it was left.
    assert_eq!(accepted_by(&v1), on_v1);

    // `switchpool 1`: back to V1, which is preferred from now on (no probe takes us away).
    switch.request(1);
    wait("shares accepted by V1 after switchpool", || {
        on(&stats, &v1.url()) && accepted_by(&v1) >= on_v1 + 3
    })
    .await;

    let outcome = run.stop().await;
    assert!(outcome.result.is_ok(), "{:?}", outcome.result);
    let s = outcome.stats.snapshot();
    eprintln!(
        "solutions {} accepted {} rejected {} stale {} unanswered {} stale reasons {:?}",
        s.solutions, s.accepted, s.rejected, s.stale, s.unanswered, s.stale_reasons
    );
    // Every share found has exactly one fate, across three switches.
    assert_eq!((s.pending, s.held), (0, 0), "{s:?}");
    assert_eq!(s.unaccounted(), 0, "{s:?}");
    assert_eq!(
        s.solutions,
        s.accepted + s.rejected + s.stale + s.unanswered,
        "{s:?}"
    );
    // The V1 pool only ever got shares for its own jobs, each valid.
    assert!(
        v1.submits().iter().all(|x| x.accepted),
        "{:?}",
        v1.submits()
    );
    drop(sri);
    tp.stop().await;
}

/// One HTTP GET of the monitoring API, as JSON.
fn get_json(addr: &str, path: &str) -> Value {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).expect("connect to the API");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .expect("request");
    let mut raw = String::new();
    s.read_to_string(&mut raw).expect("answer");
    let (_, body) = raw.split_once("\r\n\r\n").expect("a body");
    serde_json::from_str(body).expect("JSON")
}

/// The binary with `-o V1 -o V2`: the V1 primary dies mid-run, the miner moves to the SRI
/// pool, shares are accepted there, and the status and the API name the V2 pool as current.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_moves_from_a_dying_v1_primary_to_an_sv2_backup() {
    let Some((_bin, _dir, _core, tp, mut sri)) = sri_on_tp("failover-v1-first").await else {
        return;
    };
    let sv2 = sv2_url(sri.listen.port());
    let v1 = TestPool::start(1e-4).await;
    let v1_url = v1.url();
    let mut miner = Miner::spawn(&[
        "-o",
        &v1_url,
        "-o",
        &sv2,
        "-u",
        "wgminer-test.rig1",
        "--backend",
        "cpu",
        "-t",
        "1",
        "--api-bind",
        "127.0.0.1:0",
    ]);
    let api = miner
        .wait_for(LIMIT, |e| e["event"] == "api")
        .unwrap_or_else(|| panic!("no api event: {}", miner.stderr()));
    let addr = api["bind"].as_str().expect("bind").to_owned();
    let start = miner.of("start")[0].clone();
    assert_eq!(start["pools"], serde_json::json!([v1_url, sv2]), "{start}");
    miner.wait_count(2, LIMIT, |e| e["event"] == "accepted");
    let pools = get_json(&addr, "/api/v1/pools");
    assert_eq!(pools[0]["url"], v1_url.as_str(), "{pools}");
    assert_eq!(pools[0]["current"], true, "{pools}");
    assert_eq!(pools[1]["current"], false, "{pools}");

    // The V1 pool drops its connections and refuses new ones.
    v1.drop_connections();
    miner
        .wait_for(LIMIT, |e| {
            e["event"] == "connected" && e["pool"] == sv2.as_str()
        })
        .unwrap_or_else(|| panic!("never moved to {sv2}: {}", miner.stderr()));
    let moved = miner.events.len();
    let on_v1 = v1.submits().len();
    let deadline = Instant::now() + LIMIT;
    while miner.events[moved..]
        .iter()
        .filter(|e| e["event"] == "accepted")
        .count()
        < 2
    {
        assert!(Instant::now() < deadline, "no shares accepted on {sv2}");
        miner.wait_for(Duration::from_secs(1), |_| true);
    }
    let log = sri.until("Received SubmitSharesExtended", 1).await;
    assert!(log.contains("user_identity: wgminer-test.rig1"), "{log}");
    let pools = get_json(&addr, "/api/v1/pools");
    assert_eq!(pools[1]["url"], sv2.as_str(), "{pools}");
    assert_eq!(pools[1]["current"], true, "{pools}");
    assert_eq!(pools[1]["connected"], true, "{pools}");
    assert_eq!(pools[0]["current"], false, "{pools}");
    let summary = get_json(&addr, "/api/v1/summary");
    assert_eq!(summary["pool"]["url"], sv2.as_str(), "{summary}");

    miner.stop_cleanly();
    // The switch was said, with why.
    assert!(
        miner.of("disconnected").iter().any(|e| e["reason"]
            .as_str()
            .is_some_and(|r| r.contains("times in a row; moving to"))),
        "{:#?}",
        miner.of("disconnected")
    );
    let exit = miner.of("exit")[0].clone();
    assert_books_balance(&exit);
    assert!(
        exit["status"]["accepted"].as_u64().expect("accepted") >= 4,
        "{exit}"
    );
    // Nothing reached the V1 pool after it went away (it refuses connections).
    assert_eq!(v1.submits().len(), on_v1);
    drop(sri);
    tp.stop().await;
}

/// A pool that stops answering shares, then is left (`switchpool`): the shares it was sent
/// and never answered are each counted unanswered once (not dropped, not counted twice), and
/// mining goes on at the next pool with every count in balance.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shares_a_left_pool_never_answered_are_counted_unanswered_once() {
    let a = TestPool::start(1e-4).await;
    let b = TestPool::start(1e-4).await;
    let config = FailoverConfig::default();
    let switch = config.switch.clone();
    let source = FailoverSource::new(vec![v1_pool(&a), v1_pool(&b)], config);
    let run = crate::support::cpu_run::CpuRun::start(source);
    let stats = Arc::clone(&run.stats);
    wait("shares accepted by the first pool", || {
        on(&stats, &a.url()) && stats.accepted.load(Ordering::Relaxed) >= 3
    })
    .await;
    a.stop_answering_shares();
    let answered = a.submits().len();
    wait("shares the first pool does not answer", || {
        a.submits().len() >= answered + 3
    })
    .await;
    switch.request(1);
    wait("shares accepted by the second pool", || {
        on(&stats, &b.url()) && accepted_by(&b) >= 3
    })
    .await;
    let outcome = run.stop().await;
    assert!(outcome.result.is_ok(), "{:?}", outcome.result);
    let s = outcome.stats.snapshot();
    let silent = (a.submits().len() - answered) as u64;
    eprintln!(
        "silent {silent}: solutions {} accepted {} rejected {} stale {} unanswered {} {:?}",
        s.solutions, s.accepted, s.rejected, s.stale, s.unanswered, s.stale_reasons
    );
    assert_eq!((s.pending, s.held), (0, 0), "{s:?}");
    assert_eq!(s.unaccounted(), 0, "{s:?}");
    // Each share the first pool swallowed is unanswered; the second pool answers its own.
    assert!(s.unanswered >= silent, "{silent} silent, {s:?}");
    assert_eq!(s.rejected, 0, "{s:?}");
    assert!(b.submits().iter().all(|x| x.accepted), "{:?}", b.submits());
}

/// Two SV2 pools: the first is SRI's pool under a key it does not hold (as if the URL named
/// the wrong key), the second the same pool under its real key. The first is refused for good
/// and left out (never probed, never mined on); mining goes on at the second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sv2_pool_refused_for_its_key_is_left_out_and_the_next_sv2_pool_mines() {
    let Some((_bin, _dir, _core, tp, sri)) = sri_on_tp("failover-sv2-sv2").await else {
        return;
    };
    let port = sri.listen.port();
    let PoolSpec::Sv2(mut wrong) = sv2_pool(port) else {
        unreachable!()
    };
    // A real key, but the Template Provider's, not the pool's.
    wrong.authority = tp.authority_public_key();
    let wrong = PoolSpec::Sv2(wrong);
    let wrong_url = wrong.url();
    let config = FailoverConfig {
        primary_probe: Duration::from_millis(200),
        ..FailoverConfig::default()
    };
    let source = FailoverSource::new(vec![wrong, sv2_pool(port)], config);
    let run = crate::support::cpu_run::CpuRun::start(source);
    let stats = Arc::clone(&run.stats);
    let right = sv2_url(port);
    wait("shares accepted by the second SV2 pool", || {
        on(&stats, &right) && stats.accepted.load(Ordering::Relaxed) >= 2
    })
    .await;
    let outcome = run.stop().await;
    assert!(outcome.result.is_ok(), "{:?}", outcome.result);
    let s = outcome.stats.snapshot();
    assert_eq!(
        s.pool.as_deref(),
        Some(right.as_str()),
        "never went back to {wrong_url}"
    );
    assert_eq!((s.pending, s.held), (0, 0), "{s:?}");
    assert_eq!(s.unaccounted(), 0, "{s:?}");
    drop(sri);
    tp.stop().await;
}
