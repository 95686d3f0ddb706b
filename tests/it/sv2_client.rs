//! wgminer's Stratum V2 mining client ([`Sv2Source`]) for real: the embedded node core's
//! Template Provider feeds SRI's `pool_sv2` 0.7 (see `sv2_tp`), and our source mines on the
//! pool under the runner with the CPU backend: shares the pool accepts and blocks that reach the
//! chain, on an extended channel and on a standard one (header-only: the pool fixes the merkle
//! root, we roll version bits and nTime). And the failures: a pool that does not hold the pinned
//! authority key is refused and never mined on; a pool that closes mid-handshake or sends
//! garbage is a disconnect, retried; a pool that talks about channels and shares we do not have
//! is ignored, never mined on, never a panic.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;
use tokio::io::{ReadHalf, WriteHalf};
use tokio::net::{TcpListener, TcpStream};
use wgminer::backend::{Backend, CpuBackend};
use wgminer::mining::{EventSink, Manager, RunConfig, RunOutcome, Sv2Config, Sv2Source};
use wgminer::node::sv2_tp::authority::AuthorityKey;
use wgminer::node::sv2_tp::LIMITS;
use wgminer::sv2::mining_client::ChannelKind;
use wgminer::sv2::{noise, AuthorityPublicKey, NoiseReader, NoiseWriter};

use crate::sv2_tp::{pool_sv2, provider, sri_on_tp, Pool, TempDir, SRI_POOL_PUBLIC_KEY};

fn config(port: u16, authority: AuthorityPublicKey) -> Sv2Config {
    Sv2Config {
        host: "127.0.0.1".into(),
        port,
        authority,
        user: "wgminer-test".into(),
        // Low, so the pool's target gives one CPU thread a share every second or so.
        nominal_hash_rate: 1e6,
        channel: ChannelKind::Extended,
    }
}

fn standard(port: u16, authority: AuthorityPublicKey) -> Sv2Config {
    Sv2Config {
        channel: ChannelKind::Standard,
        ..config(port, authority)
    }
}

/// Run `source` with one CPU thread until `done` holds or `limit` passes.
async fn mine(
    source: Sv2Source,
    limit: Duration,
    done: impl Fn(&wgminer::work::MiningStats) -> bool + Send + 'static,
) -> RunOutcome {
    let cpu: Box<dyn Backend> = Box::new(CpuBackend::new(Some(1), None).expect("cpu"));
    let manager = Manager::start(vec![cpu], EventSink::discard()).expect("manager");
    let stats = manager.stats();
    let stop = async move {
        let end = Instant::now() + limit;
        while !done(&stats) && Instant::now() < end {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    wgminer::mining::run(source, manager, stop, RunConfig::default()).await
}

/// What a hostile pool gets: 2.5 s on it end cleanly, with at least two connections (once at
/// once, once after the first backoff second) and no job mined.
async fn assert_retried_never_mined_on(
    port: u16,
    key: AuthorityPublicKey,
    connections: &AtomicU64,
) {
    let source = Sv2Source::new(config(port, key));
    let outcome = mine(source, Duration::from_millis(2500), |_| false).await;
    assert!(outcome.result.is_ok(), "{:?}", outcome.result);
    assert!(get(connections) >= 2, "{} connections", get(connections));
    assert_eq!(get(&outcome.stats.jobs), 0);
}

fn get(c: &AtomicU64) -> u64 {
    c.load(Ordering::Relaxed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shares_on_sri_pool_are_accepted_and_blocks_reach_the_chain() {
    let Some((_bin, _dir, core, tp, pool)) = sri_on_tp("sv2-client").await else {
        return;
    };
    let key: AuthorityPublicKey = SRI_POOL_PUBLIC_KEY.parse().unwrap();
    let source = Sv2Source::new(config(pool.listen.port(), key));
    let watched = Arc::clone(&core);
    let outcome = mine(source, Duration::from_secs(90), move |s| {
        get(&s.accepted) >= 3 && watched.tip().0 >= 2
    })
    .await;
    let s = &outcome.stats;
    let log = pool.log();
    eprintln!(
        "{}",
        log.lines()
            .filter(|l| l.contains("hare") || l.contains("Block Found") || l.contains("xtended"))
            .take(40)
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(outcome.result.is_ok(), "{:?}", outcome.result);
    assert!(get(&s.accepted) >= 3, "accepted {}", get(&s.accepted));
    assert!(core.tip().0 >= 2, "chain at {}", core.tip().0);
    assert!(log.contains("Block Found"), "{log}");
    // Every block's coinbase is the pool's: its payout script and signature, our extranonce
    // under its prefix (the pool's config: `raw(0014 07×20)`, pool_signature "wgminer-test").
    let payout = bitcoin::ScriptBuf::from_bytes([&[0x00, 0x14][..], &[0x07; 20]].concat());
    for height in 1..=core.tip().0 {
        let block = core.with_chain(|c| {
            let hash = c.block_hash_at(height).expect("a block at every height");
            c.block(&hash).unwrap().expect("stored")
        });
        let coinbase = &block.txdata[0];
        assert!(coinbase.is_coinbase());
        assert!(
            coinbase.output.iter().any(|o| o.script_pubkey == payout),
            "height {height}: {coinbase:?}"
        );
        let sig = coinbase.input[0].script_sig.as_bytes();
        assert!(
            sig.windows(12).any(|w| w == b"wgminer-test"),
            "height {height}: scriptSig {sig:x?}"
        );
    }
    // Every share has exactly one fate once the run is over.
    let fated = get(&s.accepted) + get(&s.rejected) + get(&s.stale) + get(&s.unanswered);
    assert_eq!(get(&s.pending), 0);
    assert!(
        fated >= get(&s.submitted),
        "{fated} fates, {} submitted",
        get(&s.submitted)
    );
    drop(pool);
    tp.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_without_the_pinned_key_is_refused_and_never_mined_on() {
    let Some((_bin, _dir, _core, tp, pool)) = sri_on_tp("sv2-client-key").await else {
        return;
    };
    // The Template Provider's key is a real key, but not the pool's.
    let wrong = tp.authority_public_key();
    let source = Sv2Source::new(config(pool.listen.port(), wrong));
    let outcome = mine(source, Duration::from_secs(30), |_| false).await;
    let err = outcome.result.expect_err("a wrong key must end the run");
    let text = err.to_string();
    assert!(
        text.contains("did not prove it holds authority key") && text.contains(&wrong.to_string()),
        "{text}"
    );
    assert_eq!(get(&outcome.stats.jobs), 0);
    assert_eq!(get(&outcome.stats.submitted), 0);
    drop(pool);
    tp.stop().await;
}

/// A listener that takes each connection, reads a little, then acts as `serve` says.
async fn fake_pool<F, Fut>(serve: F) -> (u16, Arc<AtomicU64>)
where
    F: Fn(tokio::net::TcpStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let count = Arc::new(AtomicU64::new(0));
    let c = Arc::clone(&count);
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            c.fetch_add(1, Ordering::Relaxed);
            serve(socket).await;
        }
    });
    (port, count)
}

/// A fake pool that completes the Noise handshake under a fresh authority key (in `dir`), then
/// does as `serve` says on the encrypted halves: the key to pin, its port, its connections.
async fn noise_pool<F, Fut>(dir: &TempDir, serve: F) -> (AuthorityPublicKey, u16, Arc<AtomicU64>)
where
    F: Fn(NoiseReader<ReadHalf<TcpStream>>, NoiseWriter<WriteHalf<TcpStream>>) -> Fut
        + Send
        + Sync
        + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let (authority, _) = AuthorityKey::load_or_create(&dir.0).unwrap();
    let public = authority.public();
    let authority = Arc::new(authority);
    let serve = Arc::new(serve);
    let (port, connections) = fake_pool(move |socket| {
        let authority = Arc::clone(&authority);
        let serve = Arc::clone(&serve);
        async move {
            let responder = authority.responder(Duration::from_secs(3600)).unwrap();
            if let Ok((reader, writer)) =
                noise::accept(socket, responder, Duration::from_secs(5), 1 << 16).await
            {
                serve(reader, writer).await;
            }
        }
    })
    .await;
    (public, port, connections)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_closing_mid_handshake_is_retried_and_never_mined_on() {
    let (port, connections) = fake_pool(|mut socket| async move {
        let mut buf = [0u8; 16];
        let _ = socket.read(&mut buf).await;
    })
    .await;
    let key: AuthorityPublicKey = SRI_POOL_PUBLIC_KEY.parse().unwrap();
    assert_retried_never_mined_on(port, key, &connections).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_after_the_handshake_is_a_disconnect_never_mined_on() {
    let dir = TempDir::new("sv2-client-garbage");
    let (public, port, connections) = noise_pool(&dir, |mut reader, mut writer| async move {
        // Its SetupConnection, then bytes that are no frame under the cipher.
        let _ = reader.read_frame().await;
        let _ = writer.send_raw(&[0x5a; 300]).await;
        let _ = reader.read_frame().await;
    })
    .await;
    assert_retried_never_mined_on(port, public, &connections).await;
}

/// A pool whose certificate the right key signed, but that expired two days ago: refused for
/// good, with a word about the clock, and never mined on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_certificate_is_refused_and_never_mined_on() {
    let dir = TempDir::new("sv2-client-expired");
    let (authority, _) = AuthorityKey::load_or_create(&dir.0).unwrap();
    let public = authority.public();
    let authority = Arc::new(authority);
    let (port, _) = fake_pool(move |mut socket| {
        let authority = Arc::clone(&authority);
        async move {
            use tokio::io::AsyncWriteExt;
            // The initiator's ephemeral key comes unframed (64 bytes); answer as a responder
            // whose clock says two days ago, with a certificate valid for an hour from then.
            let mut first = [0u8; 64];
            if socket.read_exact(&mut first).await.is_err() {
                return;
            }
            let then = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs() as u32
                - 2 * 86_400;
            let mut responder = authority.responder(Duration::from_secs(3600)).unwrap();
            let (second, _) = responder
                .step_1_with_now_rng(first, then, &mut rand08::thread_rng())
                .unwrap();
            let _ = socket.write_all(&second).await;
            let mut rest = Vec::new();
            let _ = socket.read_to_end(&mut rest).await;
        }
    })
    .await;
    let source = Sv2Source::new(config(port, public));
    let outcome = mine(source, Duration::from_secs(20), |_| false).await;
    let err = outcome
        .result
        .expect_err("an expired certificate must end the run");
    let text = err.to_string();
    assert!(
        text.contains(&public.to_string()) && text.contains("expired"),
        "{text}"
    );
    assert_eq!(get(&outcome.stats.jobs), 0);
    assert_eq!(get(&outcome.stats.submitted), 0);
}

/// A frame over the client's limit (a job with two 64 KiB coinbase halves against the 70 KiB
/// cap) is a disconnect: it is not buffered, nothing is mined, the source retries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_frame_is_a_disconnect_never_mined_on() {
    use wgminer::sv2::mining_sv2::NewExtendedMiningJobOwned;
    use wgminer::sv2::parsers_sv2::{AnyMessageOwned, MiningOwned};
    let dir = TempDir::new("sv2-client-oversized");
    let (public, port, connections) = noise_pool(&dir, |mut reader, mut writer| async move {
        let _ = reader.read_frame().await;
        let job = NewExtendedMiningJobOwned {
            channel_id: 1,
            job_id: 1,
            min_ntime: binary_sv2::Sv2OptionOwned::new(Some(1_700_000_000)),
            version: 0x2000_0000,
            version_rolling_allowed: true,
            merkle_path: binary_sv2::Seq0255Owned::new(Vec::new()).unwrap(),
            coinbase_tx_prefix: vec![0u8; 65_000].try_into().unwrap(),
            coinbase_tx_suffix: vec![0u8; 65_000].try_into().unwrap(),
        };
        let big = AnyMessageOwned::Mining(MiningOwned::NewExtendedMiningJob(job));
        let _ = writer.send(big).await;
        let _ = reader.read_frame().await;
    })
    .await;
    assert_retried_never_mined_on(port, public, &connections).await;
}

/// The binary, as a user runs it: `wgminer -o stratum2+tcp://host:port/KEY -u user`. Shares are
/// accepted (the pool's log and our counters agree), a block reaches the chain, Ctrl-C exits
/// cleanly with the books balanced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_mines_on_sri_pool_with_the_url_key() {
    use crate::support::miner::{assert_books_balance, Miner};
    let Some((_bin, _dir, core, tp, mut pool)) = sri_on_tp("sv2-client-bin").await else {
        return;
    };
    let url = format!(
        "stratum2+tcp://127.0.0.1:{}/{SRI_POOL_PUBLIC_KEY}",
        pool.listen.port()
    );
    let mut miner = Miner::spawn(&[
        "-o",
        &url,
        "-u",
        "wgminer-test.rig1",
        "--backend",
        "cpu",
        "-t",
        "1",
    ]);
    miner.wait_count(1, Duration::from_secs(90), |e| e["event"] == "accepted");
    let log = pool.until("Received SubmitSharesExtended", 1).await;
    assert!(log.contains("user_identity: wgminer-test.rig1"), "{log}");
    assert!(log.contains("Block Found"), "{log}");
    miner.stop_cleanly();
    let exit = miner.of("exit")[0].clone();
    assert!(exit["status"]["accepted"].as_u64().unwrap() >= 1, "{exit}");
    assert_books_balance(&exit);
    // The pool hands the block to the Template Provider on its own time: wait for the chain.
    let end = Instant::now() + Duration::from_secs(30);
    while core.tip().0 < 1 && Instant::now() < end {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        core.tip().0 >= 1,
        "the pool found a block, the chain is at {}",
        core.tip().0
    );
    drop(pool);
    tp.stop().await;
}

/// The pool dies mid-run: the source says so, the shares it was waiting on end unanswered (none
/// is lost or counted twice), and once the pool is back on its port the source reconnects on
/// its own and the pool accepts shares again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_that_dies_is_reconnected_with_backoff() {
    let Some((bin, dir, _core, tp, mut pool)) = sri_on_tp("sv2-client-reconnect").await else {
        return;
    };
    let key: AuthorityPublicKey = SRI_POOL_PUBLIC_KEY.parse().unwrap();
    let source = Sv2Source::new(config(pool.listen.port(), key));
    let run = crate::support::cpu_run::CpuRun::start(source);
    let stats = Arc::clone(&run.stats);
    let wait = |what: &'static str, f: Box<dyn Fn() -> bool + Send>| async move {
        let end = Instant::now() + Duration::from_secs(60);
        while !f() {
            assert!(Instant::now() < end, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let s = Arc::clone(&stats);
    wait("accepted shares", Box::new(move || get(&s.accepted) >= 2)).await;
    pool.kill();
    let s = Arc::clone(&stats);
    wait("the disconnect", Box::new(move || !s.snapshot().connected)).await;
    let before = get(&stats.accepted);
    pool.restart(&bin, &dir.0);
    pool.until("SetNewPrevHash { template_id:", 1).await;
    let s = Arc::clone(&stats);
    wait(
        "accepted shares after the restart",
        Box::new(move || get(&s.accepted) >= before + 2),
    )
    .await;
    let outcome = run.stop().await;
    assert!(outcome.result.is_ok(), "{:?}", outcome.result);
    let s = &outcome.stats;
    assert_eq!(get(&s.pending), 0);
    let fated = get(&s.accepted) + get(&s.rejected) + get(&s.stale) + get(&s.unanswered);
    assert!(
        fated >= get(&s.submitted),
        "{fated} fates, {} submitted",
        get(&s.submitted)
    );
    let log = pool.log();
    assert!(log.contains("Received OpenExtendedMiningChannel"), "{log}");
    drop(pool);
    tp.stop().await;
}

/// The channel opens at the configured guess; once the run has measured what the devices hash,
/// the pool is told with `UpdateChannel` and answers with a harder target.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pool_is_told_the_measured_hash_rate() {
    let Some((_bin, dir, _core, tp, pool)) = sri_on_tp("sv2-client-rate").await else {
        return;
    };
    let key: AuthorityPublicKey = SRI_POOL_PUBLIC_KEY.parse().unwrap();
    let mut config = config(pool.listen.port(), key);
    // Far below what one CPU thread hashes, so the measured rate is well off.
    config.nominal_hash_rate = 1e5;
    let first = Arc::new(std::sync::Mutex::new(None));
    let seen = Arc::clone(&first);
    let log_file = dir.0.join("pool.log");
    let outcome = mine(Sv2Source::new(config), Duration::from_secs(60), move |s| {
        let Some(difficulty) = s.snapshot().difficulty else {
            return false;
        };
        let first = *seen.lock().unwrap().get_or_insert(difficulty);
        let log = std::fs::read_to_string(&log_file).unwrap_or_default();
        log.contains("UpdateChannel") && difficulty > first
    })
    .await;
    assert!(outcome.result.is_ok(), "{:?}", outcome.result);
    let log = pool.log();
    let update = log
        .lines()
        .find(|l| l.contains("UpdateChannel"))
        .unwrap_or_else(|| panic!("the pool got no UpdateChannel:\n{log}"));
    eprintln!("{update}");
    let first = first.lock().unwrap().expect("a first difficulty");
    let last = outcome.stats.snapshot().difficulty.expect("a difficulty");
    assert!(last > first * 1.2, "difficulty {first} -> {last}");
    drop(pool);
    tp.stop().await;
}

/// A standard channel on SRI's pool: SetupConnection asks for standard jobs, the pool sends
/// `NewMiningJob`s with its merkle root, our devices roll version bits and nTime on it, and
/// `SubmitSharesStandard` shares are accepted (our counters and the pool's log agree); a block
/// found this way is the pool's coinbase under our header, and it reaches the node core's chain.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standard_channel_on_sri_pool_gets_shares_accepted_and_blocks_on_the_chain() {
    let Some((_bin, _dir, core, tp, pool)) = sri_on_tp("sv2-client-standard").await else {
        return;
    };
    let key: AuthorityPublicKey = SRI_POOL_PUBLIC_KEY.parse().unwrap();
    let source = Sv2Source::new(standard(pool.listen.port(), key));
    let watched = Arc::clone(&core);
    let outcome = mine(source, Duration::from_secs(90), move |s| {
        get(&s.accepted) >= 3 && watched.tip().0 >= 2
    })
    .await;
    let s = &outcome.stats;
    let log = pool.log();
    assert!(outcome.result.is_ok(), "{:?}", outcome.result);
    assert!(get(&s.accepted) >= 3, "accepted {}", get(&s.accepted));
    assert!(core.tip().0 >= 2, "chain at {}", core.tip().0);
    assert!(log.contains("Received OpenStandardMiningChannel"), "{log}");
    assert!(log.contains("SubmitSharesStandard"), "{log}");
    assert!(!log.contains("SubmitSharesExtended"), "{log}");
    assert!(log.contains("Block Found"), "{log}");
    // The pool logs each share it takes (batch 1): a success, or (regtest's target is easier
    // than the share target, so nearly every share) a block.
    let pool_accepted = log
        .lines()
        .filter(|l| {
            l.contains("SubmitSharesStandard: SubmitSharesSuccess")
                || l.contains("SubmitSharesStandard: 💰 Block Found")
        })
        .count();
    assert!(
        pool_accepted >= 3,
        "{pool_accepted} acknowledged in the pool's log:\n{log}"
    );
    assert_eq!(get(&s.pending), 0);
    let fated = get(&s.accepted) + get(&s.rejected) + get(&s.stale) + get(&s.unanswered);
    assert!(
        fated >= get(&s.submitted),
        "{fated} fates, {} submitted",
        get(&s.submitted)
    );
    drop(pool);
    tp.stop().await;
}

/// The binary on a standard channel: `--sv2-channel standard`. The pool's log shows the
/// standard channel and its shares; ours shows them accepted; the books balance at Ctrl-C.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_mines_on_a_standard_channel() {
    use crate::support::miner::{assert_books_balance, Miner};
    let Some((_bin, _dir, _core, tp, mut pool)) = sri_on_tp("sv2-client-bin-standard").await else {
        return;
    };
    let url = format!(
        "stratum2+tcp://127.0.0.1:{}/{SRI_POOL_PUBLIC_KEY}",
        pool.listen.port()
    );
    let mut miner = Miner::spawn(&[
        "-o",
        &url,
        "-u",
        "wgminer-test.std",
        "--sv2-channel",
        "standard",
        "--backend",
        "cpu",
        "-t",
        "1",
    ]);
    miner.wait_count(2, Duration::from_secs(90), |e| e["event"] == "accepted");
    let log = pool.until("Received SubmitSharesStandard", 2).await;
    assert!(log.contains("Received OpenStandardMiningChannel"), "{log}");
    assert!(log.contains("user_identity: wgminer-test.std"), "{log}");
    miner.stop_cleanly();
    assert_eq!(miner.of("start")[0]["sv2_channel"], "standard");
    let exit = miner.of("exit")[0].clone();
    assert!(exit["status"]["accepted"].as_u64().unwrap() >= 2, "{exit}");
    assert_books_balance(&exit);
    drop(pool);
    tp.stop().await;
}

/// A pool that opens our standard channel, then sends a job and a new block for a channel we do
/// not have and verdicts for shares we never sent: the source stays connected, mines nothing,
/// and never panics; the run ends cleanly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_talking_about_strangers_channels_is_ignored() {
    use wgminer::sv2::common_messages_sv2::SetupConnectionSuccess;
    use wgminer::sv2::mining_sv2::*;
    use wgminer::sv2::parsers_sv2::{AnyMessageOwned, CommonMessagesOwned, MiningOwned};
    let dir = TempDir::new("sv2-client-strangers");
    let (public, port, connections) = noise_pool(&dir, |mut reader, mut writer| async move {
        // Its SetupConnection; the channel request comes once the setup is answered.
        let _setup = reader.read_frame().await;
        let ok = SetupConnectionSuccess {
            used_version: 2,
            flags: 0,
        };
        let mining = |m: MiningOwned| AnyMessageOwned::Mining(m);
        let messages = vec![
            AnyMessageOwned::Common(CommonMessagesOwned::SetupConnectionSuccess(ok)),
            mining(MiningOwned::OpenStandardMiningChannelSuccess(
                OpenStandardMiningChannelSuccessOwned {
                    request_id: 1,
                    channel_id: 1,
                    target: [0xff; 32].into(),
                    extranonce_prefix: vec![0, 0, 0, 1].try_into().unwrap(),
                    group_channel_id: 0,
                },
            )),
            mining(MiningOwned::NewMiningJob(NewMiningJobOwned {
                channel_id: 77,
                job_id: 1,
                min_ntime: binary_sv2::Sv2OptionOwned::new(Some(1_700_000_000)),
                version: 0x2000_0000,
                merkle_root: [1; 32].into(),
            })),
            mining(MiningOwned::SetNewPrevHash(SetNewPrevHashOwned {
                channel_id: 77,
                job_id: 1,
                prev_hash: [2; 32].into(),
                min_ntime: 1_700_000_000,
                nbits: 0x207f_ffff,
            })),
            mining(MiningOwned::SubmitSharesError(SubmitSharesErrorOwned {
                channel_id: 1,
                sequence_number: 4_000_000_000,
                error_code: "stale-share".to_owned().try_into().unwrap(),
            })),
            mining(MiningOwned::SubmitSharesSuccess(SubmitSharesSuccessOwned {
                channel_id: 1,
                last_sequence_number: u32::MAX,
                new_submits_accepted_count: 1,
                new_shares_sum: 1,
            })),
        ];
        let mut messages = messages.into_iter();
        if let Some(setup_ok) = messages.next() {
            if writer.send(setup_ok).await.is_err() {
                return;
            }
        }
        let _open = reader.read_frame().await;
        for m in messages {
            if writer.send(m).await.is_err() {
                return;
            }
        }
        // Hold the connection while the client keeps it (it has nothing to send).
        while reader.read_frame().await.is_ok() {}
    })
    .await;
    let source = Sv2Source::new(standard(port, public));
    let outcome = mine(source, Duration::from_millis(2500), |_| false).await;
    assert!(outcome.result.is_ok(), "{:?}", outcome.result);
    assert_eq!(get(&connections), 1, "the connection was kept");
    assert_eq!(get(&outcome.stats.jobs), 0);
    assert_eq!(get(&outcome.stats.submitted), 0);
    assert_eq!(get(&outcome.stats.accepted), 0);
}

/// The SV2 client with the GPU backend on lavapipe (Mesa's software Vulkan driver; a real GPU
/// where there is one). The channel opens at the binary's first guess for a GPU (1 GH/s, far
/// above lavapipe's few MH/s, so the pool's first target would take lavapipe an hour a share);
/// the measured rate goes to the pool, and shares are then accepted and blocks reach the chain.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gpu_backend_mines_on_sri_pool_after_declaring_its_measured_rate() {
    use wgminer::backend::gpu::{GpuBackend, GpuOptions};
    let Some(bin) = pool_sv2() else { return };
    let gpu = match GpuBackend::first_available(GpuOptions::default()) {
        Ok(b) => b,
        Err(e) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("CI=true but the GPU backend is unavailable: {e}")
        }
        Err(e) => {
            eprintln!("note: skipping the GPU SV2 test: {e}");
            return;
        }
    };
    let dir = TempDir::new("sv2-client-gpu");
    let (core, tp) = provider(&dir, LIMITS).await;
    let mut pool = Pool::start_batched(&bin, &dir.0, &tp, 1);
    pool.until("SetNewPrevHash { template_id: 1,", 1).await;
    let key: AuthorityPublicKey = SRI_POOL_PUBLIC_KEY.parse().unwrap();
    let mut config = config(pool.listen.port(), key);
    config.nominal_hash_rate = 1e9;
    let manager = Manager::start(vec![Box::new(gpu)], EventSink::discard()).expect("manager");
    let stats = manager.stats();
    let watched = Arc::clone(&core);
    let stop = async move {
        let end = Instant::now() + Duration::from_secs(120);
        while !(get(&stats.accepted) >= 2 && watched.tip().0 >= 1) && Instant::now() < end {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let outcome =
        wgminer::mining::run(Sv2Source::new(config), manager, stop, RunConfig::default()).await;
    let log = pool.log();
    assert!(outcome.result.is_ok(), "{:?}", outcome.result);
    let s = &outcome.stats;
    assert!(
        get(&s.accepted) >= 2,
        "accepted {}:\n{log}",
        get(&s.accepted)
    );
    assert!(core.tip().0 >= 1, "chain at {}", core.tip().0);
    assert!(log.contains("UpdateChannel"), "{log}");
    assert_eq!(get(&s.pending), 0);
    drop(pool);
    tp.stop().await;
}
