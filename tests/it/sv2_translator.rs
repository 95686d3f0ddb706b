//! wgminer's Stratum V1 client through SRI's translator: V1 miner → `translator_sv2` 0.6.0 →
//! `pool_sv2` 0.7.0 → wgminer's Template Provider, all real and on loopback. The translator
//! (built by scripts/fetch-sri.sh, found through `WGMINER_TEST_TRANSLATOR_SV2`) grants BIP310
//! version rolling; a share with rolled version bits goes all the way to the pool and is
//! accepted, and the binary mining through the translator gets shares accepted and its block
//! into the chain.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use wgminer::pow::{block_hash, hash_meets_target};
use wgminer::stratum::client::{self, ClientConfig, ClientEvent, PoolConfig};
use wgminer::stratum::Event;
use wgminer::work::rolling::Extranonce2;
use wgminer::work::{PreparedJob, Share};

use crate::sv2_tp::{free_port, sri_on_tp, Pool, SRI_POOL_PUBLIC_KEY};

/// SRI's translator, or `None` (skip) outside CI when it is not installed.
fn translator_sv2() -> Option<PathBuf> {
    match std::env::var_os("WGMINER_TEST_TRANSLATOR_SV2") {
        Some(p) if Path::new(&p).is_file() => Some(PathBuf::from(p)),
        other => {
            let why = match other {
                Some(p) => format!("WGMINER_TEST_TRANSLATOR_SV2={p:?} is not a file"),
                None => "WGMINER_TEST_TRANSLATOR_SV2 is not set".into(),
            };
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("{why}: run scripts/fetch-sri.sh translator_sv2 (scripts/test.sh does) and export its output");
            }
            eprintln!("skipped: {why} (scripts/fetch-sri.sh translator_sv2 installs it)");
            None
        }
    }
}

/// A running translator, killed on drop; its log is kept in a file.
struct Translator {
    child: Child,
    log: PathBuf,
    /// Where it listens for Stratum V1 miners.
    port: u16,
}

impl Translator {
    /// A translator in front of `pool`: one upstream channel per miner, no vardiff, and the
    /// pool's own shares-per-minute so the targets it gives miners are the pool's.
    fn start(bin: &Path, dir: &Path, pool: &Pool) -> Translator {
        let port = free_port().port();
        let config = format!(
            r#"downstream_address = "127.0.0.1"
downstream_port = {port}
max_supported_version = 2
min_supported_version = 2
downstream_extranonce2_size = 4
aggregate_channels = false

[downstream_difficulty_config]
min_individual_miner_hashrate = 100_000.0
shares_per_minute = 6.0
enable_vardiff = false
job_keepalive_interval_secs = 60

[[upstreams]]
address = "127.0.0.1"
port = {pool_port}
authority_pubkey = "{SRI_POOL_PUBLIC_KEY}"
user_identity = "wgminer-test"
"#,
            pool_port = pool.listen.port(),
        );
        let config_file = dir.join("translator.toml");
        std::fs::write(&config_file, config).unwrap();
        let log = dir.join("translator.log");
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new(bin)
            .arg("-c")
            .arg(&config_file)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap();
        Translator { child, log, port }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Wait until the translator listens for miners.
    async fn listening(&mut self) {
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("translator_sv2 exited ({status}):\n{}", self.log());
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "translator_sv2 does not listen on {} after 60 s:\n{}",
                self.port,
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Translator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The first nonce whose header, with `version_bits` rolled in, meets the job's share target.
fn find_share(job: &PreparedJob, version_bits: u32) -> Share {
    let extranonce2 = Extranonce2::new(7, job.job().coinbase.extranonce2_size).unwrap();
    let root = job.coinbase_root(&extranonce2).unwrap();
    let roll = PreparedJob::roll_for(&root, job.job().ntime, version_bits);
    let target = job.job().share_target;
    let nonce = (0..=u32::MAX)
        .find(|&n| hash_meets_target(&block_hash(&job.header_bytes(&roll, n).unwrap()), &target))
        .expect("a nonce at a share target this easy");
    let share = job.share(&roll, nonce);
    job.check_share(&share).expect("our own check passes");
    share
}

/// The translator grants version rolling; a share with rolled bits passes the translator and
/// the pool (whose log shows the rolled version), and comes back accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_rolled_shares_pass_the_translator_and_the_pool() {
    let Some(tr_bin) = translator_sv2() else {
        return;
    };
    let Some((_, dir, core, tp, mut pool)) = sri_on_tp("sv2-translator").await else {
        return;
    };
    let mut translator = Translator::start(&tr_bin, &dir.0, &pool);
    translator.listening().await;

    let url = format!("stratum+tcp://127.0.0.1:{}", translator.port)
        .parse()
        .unwrap();
    let config = ClientConfig::new(PoolConfig {
        url,
        user: "wgminer-test.rig1".into(),
        password: "x".into(),
    });
    let (events_tx, mut events) = mpsc::channel(256);
    let (shares_tx, shares_rx) = mpsc::channel(16);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let client = tokio::spawn(client::run(config, events_tx, shares_rx, async {
        let _ = stop_rx.await;
    }));

    // On regtest every share is also a block, so the pool moves to a new job after each one:
    // one share at a time, each on the newest job (one that went stale is made again).
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut mask = None;
    let mut job: Option<std::sync::Arc<PreparedJob>> = None;
    let mut to_roll: Vec<u32> = Vec::new();
    let mut in_flight: Option<Share> = None;
    let mut accepted: Vec<(Share, std::sync::Arc<PreparedJob>)> = Vec::new();
    while accepted.len() < 2 {
        let left = deadline.saturating_duration_since(Instant::now());
        let ev = tokio::time::timeout(left, events.recv())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "no accepted shares in 60 s (mask {mask:?}, accepted {accepted:?}):\n{}",
                    translator.log()
                )
            })
            .expect("the client runs");
        let ClientEvent::Stratum(event) = ev else {
            continue;
        };
        match event {
            Event::VersionRolling { mask: m } => {
                let m = m.expect("the translator grants version rolling");
                assert_ne!(m, 0, "the translator granted an empty mask");
                mask = Some(m);
                // The lowest bit of the mask rolled, then the highest.
                to_roll = vec![1 << (31 - m.leading_zeros()), m & m.wrapping_neg()];
            }
            Event::NewJob { job: j, .. } => job = Some(j),
            Event::ShareAccepted { share } => {
                assert_eq!(in_flight.take().as_ref(), Some(&share));
                to_roll.pop();
                accepted.push((share, job.clone().unwrap()));
            }
            Event::ShareStale { share, why, .. } => {
                assert_eq!(in_flight.take().as_ref(), Some(&share), "{why}");
            }
            Event::ShareRejected { share, reason } => {
                panic!("share {share:?} refused: {reason}\n{}", translator.log())
            }
            _ => {}
        }
        if let (Some(m), Some(j), None, Some(&bits)) = (mask, &job, &in_flight, to_roll.last()) {
            assert_eq!(j.job().version_mask, m);
            let share = find_share(j, bits);
            in_flight = Some(share.clone());
            shares_tx.send(share).await.unwrap();
        }
    }
    for (share, _) in &accepted {
        assert_ne!(share.version_bits, Some(0));
    }
    // The pool saw both, with the versions as rolled.
    let log = pool.until("Received SubmitSharesExtended", 2).await;
    for (share, j) in &accepted {
        let version = j.job().rolled_version(share.version_bits.unwrap()).unwrap();
        let text = format!("version={:#010x}", version.to_consensus() as u32);
        assert!(
            log.lines()
                .any(|l| l.contains("SubmitSharesExtended") && l.contains(&text)),
            "the pool did not log a share with {text}:\n{log}"
        );
    }
    // On regtest each was a block, and the chain took both.
    assert_eq!(log.matches("Block Found").count(), 2, "{log}");
    let start = Instant::now();
    while core.tip().0 < 2 {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "chain at {}",
            core.tip().0
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = stop_tx.send(());
    drop(shares_tx);
    let _ = tokio::time::timeout(Duration::from_secs(10), client).await;
    drop(translator);
    drop(pool);
    tp.stop().await;
}

/// The binary mines through the translator as on any V1 pool: shares accepted, the pool finds
/// blocks with them, and the blocks reach the node core's chain.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_mines_through_the_translator_into_the_chain() {
    use crate::support::miner::{assert_books_balance, Miner};
    let Some(tr_bin) = translator_sv2() else {
        return;
    };
    let Some((_, dir, core, tp, mut pool)) = sri_on_tp("sv2-translator-bin").await else {
        return;
    };
    let mut translator = Translator::start(&tr_bin, &dir.0, &pool);
    translator.listening().await;
    let url = format!("stratum+tcp://127.0.0.1:{}", translator.port);
    let mut miner = Miner::spawn(&[
        "-o",
        &url,
        "-u",
        "wgminer-test.rig1",
        "-p",
        "x",
        "--backend",
        "cpu",
        "-t",
        "1",
    ]);
    miner.wait_count(3, Duration::from_secs(90), |e| e["event"] == "accepted");
    let log = pool.until("Block Found", 1).await;
    let start = Instant::now();
    while core.tip().0 < 1 {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the pool found a block but the chain is at {}:\n{log}",
            core.tip().0
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    miner.stop_cleanly();
    let exit = miner.of("exit")[0].clone();
    assert!(exit["status"]["accepted"].as_u64().unwrap() >= 3, "{exit}");
    assert_books_balance(&exit);
    drop(translator);
    drop(pool);
    tp.stop().await;
}
