//! Pool mining end to end: the real `wgminer` binary mines against a test pool on 127.0.0.1
//! (tests/it/support/pool_server.rs; no real pool server is installable from the package registries
//! here, so the pool is written in tests/ and speaks the protocol of the recorded sessions in
//! tests/data/stratum.json). The pool checks every share by rebuilding its header with the
//! reference path and comparing it with the target of the job the share names, at the difficulty
//! that job was sent with.
//!
//! Share difficulties are tiny (1e-4: a share every ~430,000 hashes, many per second even on one
//! CPU thread), so each test takes seconds. Every wait is bounded by a generous limit that only
//! matters when something is broken, so a loaded 2-core machine slows the tests down without
//! failing them. The miner runs with `--json-log`, whose lines come in the order the manager
//! acted, so "no old-job share submitted after the clean job" is checked on that order.

use crate::support::miner;
use crate::support::pool_server;
use crate::support::wait::wait_until_async;

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use miner::{assert_books_balance, Miner};
use pool_server::TestPool;
use serde_json::Value;

/// Bounds every wait.
const LIMIT: Duration = Duration::from_secs(60);

/// `wgminer` mining on `pool` as tester.rig1, with `extra` arguments and `--json-log`.
fn start(pool: &TestPool, extra: &[&str]) -> Miner {
    Miner::spawn(&pool_args(&pool.url(), extra))
}

/// [`start`] at the default log level, whatever `WGMINER_LOG` the tests run with.
fn start_at_default_log_level(pool: &TestPool, extra: &[&str]) -> Miner {
    Miner::spawn_at_default_log_level(&pool_args(&pool.url(), extra))
}

fn pool_args<'a>(url: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["-o", url, "-u", "tester.rig1", "-p", "x"];
    args.extend_from_slice(extra);
    args
}

/// Ctrl-C, then wait for a clean exit.
fn interrupt(miner: Miner) -> Vec<Value> {
    stop_with(miner, "-INT")
}

/// A signal (`-INT`, `-TERM`), then wait for a clean exit: every line it printed, each one JSON.
fn stop_with(mut miner: Miner, signal: &str) -> Vec<Value> {
    miner::signal(miner.pid(), signal);
    let status = miner.wait_exit(LIMIT);
    assert!(
        status.success(),
        "exit status after {signal}: {status}: {}",
        miner.stderr()
    );
    for e in &miner.events {
        assert!(
            e["event"] != "text",
            "--json-log line is not JSON: {}",
            e["line"]
        );
    }
    std::mem::take(&mut miner.events)
}

fn events<'a>(log: &'a [Value], name: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
    log.iter().filter(move |v| v["event"] == name)
}

/// Every submit the pool received was valid, and the exit report counts what the pool saw.
fn assert_all_valid(pool: &TestPool) {
    for s in pool.submits() {
        assert!(
            s.accepted,
            "pool rejected a share for {}: {:?} (job difficulty {:?})",
            s.job_id, s.reason, s.job_difficulty
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cpu_shares_are_accepted_and_ctrl_c_exits_cleanly() {
    let pool = TestPool::start(1e-4).await;
    let miner = start(&pool, &["--backend", "cpu", "-t", "1"]);
    wait_until_async("5 accepted shares", LIMIT, || {
        pool.accepted_for("job0") >= 5
    })
    .await;
    let log = interrupt(miner);
    assert_eq!(pool.authorized(), ["tester.rig1"]);
    assert_all_valid(&pool);
    let exit = events(&log, "exit").next().expect("an exit line");
    let accepted = exit["status"]["accepted"].as_u64().expect("accepted");
    assert!(accepted >= 5, "exit report: {exit}");
    assert_eq!(exit["status"]["rejected"], 0);
    assert_eq!(exit["status"]["hardware_errors"], 0);
    // Every share the miner submitted reached the pool (those found at Ctrl-C included).
    let submitted = events(&log, "submitted").count();
    assert_eq!(submitted, pool.submits().len(), "submitted vs received");
    assert!(events(&log, "accepted").count() >= 5);
    assert_books_balance(exit);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn difficulty_applies_per_job_and_clean_jobs_cut_off_old_shares() {
    // job0 at difficulty 4e-4.
    let pool = TestPool::start(4e-4).await;
    let miner = start(&pool, &["--backend", "cpu", "-t", "1"]);
    wait_until_async("shares for job0", LIMIT, || pool.accepted_for("job0") >= 3).await;

    // Easier difficulty, then a non-clean job: job0 stays valid. The new difficulty applies to
    // work made from now on, job0's included (cgminer's rule); the pool takes a share at the
    // difficulty in force when it arrives or its job's, whichever is lower.
    pool.set_difficulty(1e-4);
    let job1 = pool.notify(false);
    wait_until_async("shares for job1", LIMIT, || pool.accepted_for(&job1) >= 5).await;

    // Clean job at 2e-4: nothing for job0/job1 may be submitted once the miner has it.
    pool.set_difficulty(2e-4);
    let job2 = pool.notify(true);
    wait_until_async("shares for job2", LIMIT, || pool.accepted_for(&job2) >= 5).await;
    let log = interrupt(miner);

    for s in pool.submits() {
        // A share already on the wire when the clean job was sent is legitimately stale.
        let in_flight_stale = s.job_id != job2 && s.reason.as_deref() == Some("Stale");
        assert!(
            s.accepted || in_flight_stale,
            "pool rejected a share for {}: {:?} (job difficulty {:?})",
            s.job_id,
            s.reason,
            s.job_difficulty
        );
        if s.job_id == job2 {
            assert_eq!(s.job_difficulty, Some(2e-4));
        }
    }
    let job_difficulty = |id: &str| {
        events(&log, "job")
            .find(|v| v["job_id"] == id)
            .and_then(|v| v["difficulty"].as_f64())
    };
    let close = |a: Option<f64>, b: f64| a.is_some_and(|a| (a / b - 1.0).abs() < 1e-6);
    assert!(close(job_difficulty("job0"), 4e-4));
    assert!(close(job_difficulty(&job1), 1e-4));
    assert!(close(job_difficulty(&job2), 2e-4));

    let switch_at = log
        .iter()
        .position(|v| v["event"] == "job" && v["job_id"] == job2.as_str() && v["clean"] == true)
        .expect("the clean job in the log");
    let late: Vec<&Value> = log[switch_at..]
        .iter()
        .filter(|v| v["event"] == "submitted" && v["share"]["job_id"] != job2.as_str())
        .collect();
    assert!(
        late.is_empty(),
        "old-job shares submitted after the clean job: {late:?}"
    );
    let switch = events(&log, "job_switch")
        .find(|v| v["job_id"] == job2.as_str())
        .expect("a job_switch line for the clean job");
    let ms = switch["latency_ms"].as_f64().expect("latency_ms");
    println!("clean job switch latency (cpu, 1 thread): {ms:.2} ms");
    assert!(ms < 2000.0, "switch took {ms} ms");
}

/// The most memory the process ever held (VmHWM), in bytes.
fn peak_memory(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM");
    kb * 1024
}

/// public-pool's order after authorize: difficulty 16384, the first job, then the difficulty
/// the miner asked for. A miner that applies a difficulty only from the next job mines the first
/// job at 16384 (no share for up to a minute); it must apply it at once, to the current job.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lower_difficulty_applies_at_once_to_the_current_job() {
    let pool = TestPool::start_like_public_pool(16384.0, 1e-4).await;
    let miner = start(
        &pool,
        &["--backend", "cpu", "-t", "1", "--suggest-diff", "1e-4"],
    );
    wait_until_async("shares for the first job", LIMIT, || {
        pool.accepted_for("job0") >= 5
    })
    .await;
    let log = interrupt(miner);
    assert_all_valid(&pool);
    for s in pool.submits() {
        assert_eq!(s.job_id, "job0", "no other job was sent");
        assert_eq!(s.job_difficulty, Some(16384.0));
        assert!(s.share_difficulty.expect("parsed") >= 1e-4);
    }
    // The status shows the difficulty in force.
    let exit = events(&log, "exit").next().expect("an exit line");
    assert_eq!(exit["status"]["difficulty"], 1e-4, "{exit}");
    assert_books_balance(exit);
}

/// A pool at difficulty 1e-9 (a quarter of all hashes are shares) cannot jam the miner: shares
/// beyond the share-rate cap are counted stale, memory stays bounded, a new job is followed at
/// once, and SIGTERM ends the run within the drain time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_at_a_tiny_difficulty_cannot_jam_the_miner() {
    let pool = TestPool::start(1e-9).await;
    let miner = start(&pool, &["--backend", "cpu", "-t", "1"]);
    wait_until_async("shares for job0", LIMIT, || {
        pool.accepted_for("job0") >= 100
    })
    .await;
    // Let the flood run a while, then move on: the miner must read the new job. (A fixed wait:
    // the flood's length is the test's subject, as is the one before the memory check.)
    tokio::time::sleep(Duration::from_secs(3)).await;
    let job1 = pool.notify(true);
    wait_until_async("shares for the new job", LIMIT, || {
        pool.accepted_for(&job1) >= 100
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let peak = peak_memory(miner.pid());
    assert!(peak < 100 << 20, "peak memory {} MB", peak >> 20);
    let started = Instant::now();
    let log = stop_with(miner, "-TERM");
    let took = started.elapsed();
    assert!(took < Duration::from_secs(10), "SIGTERM took {took:?}");
    let exit = events(&log, "exit").next().expect("an exit line");
    assert_books_balance(exit);
    let capped = exit["status"]["stale_reasons"]["over the share-rate cap"]
        .as_u64()
        .unwrap_or(0);
    assert!(
        capped > 0,
        "the cap must have dropped shares at this rate: {exit}"
    );
    // The pool saw no more than the cap allows (200 a second, a burst of 400).
    let received = pool.submits().len() as f64;
    let uptime = exit["status"]["uptime_s"].as_f64().expect("uptime");
    assert!(
        received <= 200.0 * uptime + 400.0,
        "{received} shares in {uptime} s"
    );
}

/// A pool that rejects every share with a new 100 kB reason (issue 11: 89 MB -> 959 MB in 12 s,
/// and 275 MB per `/metrics` scrape) cannot grow the miner: reasons are cut and grouped in a
/// bounded map, so peak memory stays under 100 MB while more than 100 MB of reasons arrive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_reject_reasons_from_a_pool_cannot_grow_the_miners_memory() {
    const REASON: usize = 100_000;
    let pool = TestPool::start(1e-6).await;
    pool.reject_every_share_with_new_reasons(REASON);
    let miner = start(&pool, &["--backend", "cpu", "-t", "1"]);
    wait_until_async("1,200 rejected shares", LIMIT, || {
        pool.rejects_sent() >= 1_200
    })
    .await;
    let peak = peak_memory(miner.pid());
    let sent = pool.rejects_sent() as usize * REASON;
    println!("peak {} MB after {} MB of reasons", peak >> 20, sent >> 20);
    assert!(
        peak < 100 << 20,
        "peak memory {} MB after {} MB of reasons",
        peak >> 20,
        sent >> 20
    );
    let log = stop_with(miner, "-TERM");
    let exit = events(&log, "exit").next().expect("an exit line");
    assert_books_balance(exit);
    let status = &exit["status"];
    assert!(status["rejected"].as_u64().unwrap() >= 1_200, "{status}");
    let reasons = status["reject_reasons"]
        .as_object()
        .expect("reject_reasons");
    assert!(reasons.len() <= 17, "{} reasons kept", reasons.len());
    assert!(
        reasons.keys().all(|k| k.chars().count() <= 81),
        "long reasons are cut: {:?}",
        reasons.keys().map(|k| k.len()).collect::<Vec<_>>()
    );
    let counted: u64 = reasons.values().map(|v| v.as_u64().unwrap()).sum();
    assert_eq!(counted, status["rejected"].as_u64().unwrap(), "{status}");
}

/// Shares found while the pool is unreachable are held (and said to be held), then sent when it
/// is back; every solution is counted once, across the disconnect.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shares_found_while_disconnected_are_held_then_sent() {
    let pool = TestPool::start(1e-4).await;
    let mut miner = start(&pool, &["--backend", "cpu", "-t", "1"]);
    wait_until_async("shares before the outage", LIMIT, || {
        pool.accepted_for("job0") >= 5
    })
    .await;
    pool.drop_connections();
    // The test's own thread waits; the pool runs on the runtime's workers.
    miner.wait_count(3, LIMIT, |v| v["event"] == "held");
    let before = pool.submits().len();
    let accepted_before = pool.submits().iter().filter(|s| s.accepted).count();
    pool.accept_again();
    wait_until_async("held shares sent after the reconnect", LIMIT, || {
        pool.submits().len() >= before + 3
    })
    .await;
    // And answered: stopping as soon as the pool has the shares would leave its answers to
    // the drain, which a loaded machine can outrun (45 unanswered seen with two test
    // binaries on two cores).
    miner.wait_count(accepted_before + 3, LIMIT, |v| v["event"] == "accepted");
    let log = interrupt(miner);
    assert_all_valid(&pool);
    assert!(events(&log, "disconnected").count() >= 1);
    // No share was logged as submitted while the pool was down: the held ones say so.
    let exit = events(&log, "exit").next().expect("an exit line");
    assert_books_balance(exit);
    assert!(
        exit["status"]["accepted"].as_u64().unwrap() as usize >= accepted_before + 3,
        "{exit}"
    );
}

/// The GPU backend (lavapipe on a machine without a GPU) mines shares the pool accepts. Without
/// an adapter it skips, except under CI (`CI=true`), where the adapter must be there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gpu_shares_are_accepted() {
    let adapters = wgminer::backend::gpu::enumerate();
    if adapters.is_empty() {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("CI=true but no GPU adapter (install mesa-vulkan-drivers and libvulkan1)");
        }
        eprintln!("skipping: no GPU adapter (set CI=true to make this a failure)");
        return;
    }
    let pool = TestPool::start(1e-4).await;
    let miner = start(&pool, &["--backend", "gpu"]);
    wait_until_async("shares from the GPU", LIMIT, || {
        pool.accepted_for("job0") >= 5
    })
    .await;
    // SIGTERM (what systemd and container runtimes send) stops it as cleanly as Ctrl-C.
    let log = stop_with(miner, "-TERM");
    assert_all_valid(&pool);
    let exit = events(&log, "exit").next().expect("an exit line");
    assert_eq!(exit["status"]["hardware_errors"], 0, "{exit}");
    let devices = exit["status"]["devices"].as_array().expect("devices");
    assert!(
        devices.iter().all(|d| d["label"] != "cpu"),
        "only GPUs mine with --backend gpu: {exit}"
    );
}

/// A job of the recorded slush session's shape, at `difficulty`, with its own id and nTime.
fn library_job(id: &str, ntime_offset: u32, difficulty: f64) -> Arc<wgminer::work::PreparedJob> {
    use bitcoin::block::Version;
    use bitcoin::hashes::Hash;
    use bitcoin::pow::CompactTarget;
    use bitcoin::BlockHash;
    use wgminer::work::{CoinbaseTemplate, Job};
    let job = Job {
        id: id.into(),
        prev_hash: BlockHash::from_byte_array([0x42; 32]),
        version: Version::from_consensus(0x2000_0000),
        version_mask: pool_server::MASK,
        bits: CompactTarget::from_consensus(0x1d00_ffff),
        ntime: 1_700_000_000 + ntime_offset,
        ntime_roll: 600,
        coinbase: CoinbaseTemplate {
            prefix: (0..64u8).collect(),
            extranonce1: vec![8, 0, 0, 2],
            extranonce2_size: 4,
            suffix: (0..48u8).collect(),
        },
        merkle_branch: Vec::new(),
        fixed_merkle_root: None,
        share_target: wgminer::pow::target_from_difficulty(difficulty).expect("difficulty"),
        clean: true,
    };
    Arc::new(job.prepare().expect("valid job"))
}

/// The manager on its own (no network): hits are checked against the target of the job they
/// were made for, a clean job makes older jobs invalid and is timed, a non-clean one keeps them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manager_routes_hits_by_job_and_times_clean_switches() {
    use wgminer::backend::{Backend, CpuBackend};
    use wgminer::mining::{EventSink, Manager};
    let cpu: Box<dyn Backend> = Box::new(CpuBackend::new(Some(1), None).expect("cpu"));
    let mut manager = Manager::start(vec![cpu], EventSink::discard()).expect("manager");
    let a = library_job("a", 0, 1e-4);
    let b = library_job("b", 1, 4e-4);
    let c = library_job("c", 2, 1e-4);

    async fn take(manager: &mut Manager, n: usize, job: &Arc<wgminer::work::PreparedJob>) {
        let mut got = 0;
        while got < n {
            let f = tokio::time::timeout(LIMIT, manager.next_found())
                .await
                .expect("a hit in time")
                .expect("workers running");
            // Whatever job it names, it meets that job's own share target (reference path).
            f.job
                .job()
                .check_share(&f.share)
                .expect("valid for its job");
            if Arc::ptr_eq(&f.job, job) {
                got += 1;
            }
        }
    }

    manager.new_job(Arc::clone(&a), true);
    take(&mut manager, 5, &a).await;
    assert!(manager.is_live(&a));

    manager.new_job(Arc::clone(&b), true);
    assert!(!manager.is_live(&a), "a clean job ends the old one");
    take(&mut manager, 3, &b).await;
    let latency = manager.stats().last_switch().expect("switch timed");
    println!("clean job switch latency (library, cpu 1 thread): {latency:?}");
    assert!(latency < Duration::from_secs(2));

    manager.new_job(Arc::clone(&c), false);
    assert!(
        manager.is_live(&b) && manager.is_live(&c),
        "non-clean keeps b"
    );
    take(&mut manager, 3, &c).await;
    let left = tokio::task::spawn_blocking(move || manager.stop())
        .await
        .expect("stop");
    for f in left {
        f.job
            .job()
            .check_share(&f.share)
            .expect("valid for its job");
    }
}

/// Bad pool flags are a one-line usage error with exit code 2, before any device starts.
#[test]
fn bad_pool_flags_exit_with_code_2() {
    for args in [
        &["-o", "http://127.0.0.1:3333", "-u", "a.b"][..],
        &["-o", "stratum+tcp://127.0.0.1", "-u", "a.b"],
        &["-o", "stratum+tcp://127.0.0.1:3333"],
        &["-u", "a.b"],
        &["-o", "stratum+tcp://127.0.0.1:3333", "-u", "a", "-u", "b"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_wgminer"))
            .args(args)
            .output()
            .expect("run wgminer");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.starts_with("error: "), "{args:?}: {stderr}");
    }
}

/// How many refused messages the lines containing `what` account for: one for each line telling
/// a refusal plus the count of those not shown that it carries, or the count a line of its own
/// gives.
fn refusals_told(stderr: &str, what: &str) -> u64 {
    let count_before = |line: &str, marker: &str| -> Option<u64> {
        let head = &line[..line.find(marker)?];
        head.rsplit(' ').find(|w| !w.is_empty())?.parse().ok()
    };
    stderr
        .lines()
        .filter(|l| l.contains(what))
        .map(|l| {
            if l.contains("that were refused (not shown") {
                count_before(l, &format!(" more {what}")).unwrap_or(0)
            } else {
                1 + count_before(l, &format!(" more {what}")).unwrap_or(0)
            }
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_pool_messages_are_logged_once_per_kind_and_a_flood_stays_bounded() {
    let pool = TestPool::start(1e-4).await;
    let miner = start_at_default_log_level(&pool, &["--backend", "cpu", "-t", "1"]);
    wait_until_async("shares for job0", LIMIT, || pool.accepted_for("job0") >= 2).await;

    // One bad message of each kind a pool can send, with what the log must say about it.
    let bad_difficulty = r#"{"id":null,"method":"mining.set_difficulty","params":[-3]}"#;
    let unreadable = "\u{1b}[31mnot json\u{7}";
    let bad = [
        (
            bad_difficulty,
            "pool sent mining.set_difficulty with difficulty -3: share difficulty: ",
            "; ignored, keeping difficulty 0.0001",
        ),
        (
            r#"{"id":null,"method":"mining.notify","params":["evil","00","","",[],"20000000","1d00ffff","504e86b9",true]}"#,
            "pool sent mining.notify for job evil: prevhash has 1 bytes, expected 32",
            "; ignored, still mining job job0",
        ),
        (
            r#"{"id":null,"method":"mining.set_extranonce","params":["01",99]}"#,
            "pool sent mining.set_extranonce with extranonce1 01 and extranonce2 size 99:",
            "; ignored, keeping extranonce1 08000002 and extranonce2 size 4",
        ),
        (
            r#"{"id":null,"method":"mining.set_version_mask","params":["zz"]}"#,
            "pool sent mining.set_version_mask with mask zz:",
            "; ignored, keeping version mask 1fffe000",
        ),
        (
            unreadable,
            "pool sent a line that is not a Stratum message (not JSON",
            "?[31mnot json?; ignored",
        ),
    ];
    for (line, _, _) in &bad {
        pool.send_raw(line);
    }
    wait_until_async("a log line for each refused message", LIMIT, || {
        let err = miner.stderr();
        bad.iter().all(|(_, says, _)| err.contains(says))
    })
    .await;
    let err = miner.stderr();
    for (line, says, ends) in &bad {
        let told: Vec<&str> = err.lines().filter(|l| l.contains(says)).collect();
        assert_eq!(told.len(), 1, "{line}: {told:?}");
        assert!(told[0].contains(" WARN "), "at warn level: {}", told[0]);
        assert!(told[0].contains(ends), "{line}: {}", told[0]);
    }
    assert!(
        !err.contains('\u{1b}') && !err.contains('\u{7}'),
        "peer control characters reached the log"
    );

    // A flood: 10,000 bad difficulties and 10,000 unreadable lines in one burst. They are
    // counted, not told one by one, and the miner goes on mining.
    const FLOOD: u64 = 10_000;
    let flood: Vec<&str> = (0..FLOOD)
        .flat_map(|_| [bad_difficulty, unreadable])
        .collect();
    pool.send_raw(&flood.join("\n"));
    let job1 = pool.notify(true);
    wait_until_async("shares for the job after the flood", LIMIT, || {
        pool.accepted_for(&job1) >= 3
    })
    .await;
    // Once the interval is over, the refusals not shown are told as a count (the shares' answers
    // keep lines coming, which is when the client tells them).
    wait_until_async("the count of the flood", LIMIT, || {
        let err = miner.stderr();
        refusals_told(&err, "mining.set_difficulty") == FLOOD + 1
            && refusals_told(&err, "unreadable lines") + 1 == FLOOD + 1
    })
    .await;
    let err = miner.stderr();
    for what in [
        "mining.set_difficulty",
        "not a Stratum message",
        "unreadable lines",
    ] {
        let lines = err.lines().filter(|l| l.contains(what)).count();
        assert!(
            lines <= 3,
            "{lines} lines about {what} for {FLOOD} refusals:\n{err}"
        );
    }
    let log = interrupt(miner);
    for s in pool.submits() {
        // A job0 share already on the wire when the clean job went out is legitimately stale.
        let in_flight_stale = s.job_id != job1 && s.reason.as_deref() == Some("Stale");
        assert!(
            s.accepted || in_flight_stale,
            "pool rejected a share: {s:?}"
        );
    }
    let exit = events(&log, "exit").next().expect("an exit line");
    assert_books_balance(exit);
}
