//! Mining from the command line. [`run_mine`] picks the run by the first `-o`: none mines on the
//! embedded node core and `http://` on a node (both in [`crate::solo`]); anything else,
//! `wgminer -o stratum+tcp://host:port -u user.worker -p x`, is pool mining, done here: check
//! the pool flags, build the selected devices, run the Stratum source under the mining layer's
//! runner until Ctrl-C. This file also holds what every run mode shares (and `solo.rs` imports
//! back): the device list, the monitoring API's start, the signals, the runtime, and the
//! display: a status line redrawn every second on a terminal, plain log lines (every 30 s and
//! one per share result) otherwise, or one JSON object per line with `--json-log`.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::sync::mpsc;
use wgminer::backend::gpu::GpuBackend;
use wgminer::backend::Backend;
use wgminer::bench::format_rate;
use wgminer::mining::{EventSink, Manager, MinerEvent, RunConfig, StratumSource, WorkSource};
use wgminer::stratum::client::{ClientConfig, PoolConfig, PoolUrl};
use wgminer::telemetry::{ApiConfig, ApiServer, ApiState};
use wgminer::text::printable;
use wgminer::work::{BlockVerdict, MiningStats, StatsSnapshot};

use crate::cli::MineArgs;
use crate::select::{Device, Inventory, UsageError};

/// Plain log lines (no terminal): a status line this often.
const LOG_EVERY: Duration = Duration::from_secs(30);

/// After Ctrl-C, how long the pool gets to answer the shares just submitted.
const DRAIN: Duration = Duration::from_secs(3);

/// How the run is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Display {
    /// A status line on stderr, redrawn every second.
    Terminal,
    /// Text lines on stdout.
    Log,
    /// JSON lines on stdout.
    Json,
}

/// Turn the pool flags into the client's configuration: every url must parse, and every pool
/// needs a user (one `-u` for all, or one per `-o`).
pub fn client_config(args: &MineArgs) -> Result<ClientConfig, UsageError> {
    if args.urls.is_empty() {
        return Err(UsageError(
            "no pool given: use -o stratum+tcp://host:port -u user.worker -p x".into(),
        ));
    }
    let per_pool = |list: &[String], what: &str| -> Result<Vec<Option<String>>, UsageError> {
        match list.len() {
            0 => Ok(vec![None; args.urls.len()]),
            1 => Ok(vec![Some(list[0].clone()); args.urls.len()]),
            n if n == args.urls.len() => Ok(list.iter().cloned().map(Some).collect()),
            n => Err(UsageError(format!(
                "{n} {what} values for {} pools: give one for all or one per -o",
                args.urls.len()
            ))),
        }
    };
    let users = per_pool(&args.users, "-u")?;
    let passwords = per_pool(&args.passwords, "-p")?;
    let mut pools = Vec::with_capacity(args.urls.len());
    for ((url, user), password) in args.urls.iter().zip(users).zip(passwords) {
        let url: PoolUrl = url.parse().map_err(|e| UsageError(format!("{e}")))?;
        let user = match user {
            Some(u) if !u.trim().is_empty() => u,
            _ => return Err(UsageError(format!("no user for {url}: use -u user.worker"))),
        };
        pools.push(PoolConfig {
            url,
            user,
            password: password.unwrap_or_else(|| "x".into()),
        });
    }
    let mut config = ClientConfig::new(pools);
    config.suggest_difficulty = args.suggest_diff;
    Ok(config)
}

/// Build one backend per selected device.
pub(crate) fn backends(args: &MineArgs) -> anyhow::Result<Vec<Box<dyn Backend>>> {
    let (inventory, backend) = if args.backend.is_none() && args.select.devices.is_empty() {
        let inventory = Inventory::scan()?;
        let choice = crate::select::default_backend(&inventory.gpus);
        (inventory, Some(choice))
    } else if Inventory::cpu_only(args.backend, &args.select) {
        (Inventory::cpu()?, args.backend)
    } else {
        (Inventory::scan()?, args.backend)
    };
    let devices = inventory.select(backend, &args.select)?;
    let mut out: Vec<Box<dyn Backend>> = Vec::with_capacity(devices.len());
    for device in devices {
        match device {
            Device::Cpu => {
                let cpu = args.cpu.backend()?;
                out.push(Box::new(cpu));
            }
            Device::Gpu(adapter) => {
                let options = args.gpu.options_for(&adapter);
                let gpu = GpuBackend::new(&adapter, options)
                    .with_context(|| format!("GPU {}", adapter.index))?;
                out.push(Box::new(gpu));
            }
        }
    }
    Ok(out)
}

/// Mine until Ctrl-C: on a pool, on a node (`-o http://…`), or on the embedded node core.
pub fn run_mine(args: &MineArgs) -> anyhow::Result<()> {
    match args.urls.first() {
        None => return crate::solo::run_embedded(args),
        Some(url) if url.starts_with("http://") || url.starts_with("https://") => {
            return crate::solo::run_node(args)
        }
        Some(_) => {}
    }
    let config = client_config(args)?;
    let backends = backends(args)?;
    let display = Display::for_args(args);
    let runtime = runtime()?;
    runtime.block_on(async move {
        let (events, events_rx) = EventSink::channel();
        let manager = Manager::start(backends, events)?;
        let stats = manager.stats();
        let labels: Vec<String> = stats.devices.iter().map(|d| d.label.clone()).collect();
        let pools: Vec<String> = config.pools.iter().map(|p| p.url.to_string()).collect();
        let source = StratumSource::new(config);
        show(
            display,
            &serde_json::json!({"event": "start", "devices": labels, "pools": pools}),
            &format!("mining on {} with {}", pools.join(", "), labels.join(", ")),
        );
        let api = start_api(args, display, &stats, pools.clone()).await?;
        let ui = tokio::spawn(render(display, Arc::clone(&stats), events_rx));
        let shutdown = stop_signal();
        let run = RunConfig {
            drain: DRAIN,
            ..RunConfig::default()
        };
        debug_assert!(!source.is_solo());
        let outcome = wgminer::mining::run(source, manager, shutdown, run).await;
        finish_display(ui).await;
        if let Some(api) = api {
            api.stop().await;
        }
        let snap = outcome.stats.snapshot();
        show_exit(display, &snap, &status_text(&snap));
        outcome.result?;
        anyhow::Ok(())
    })
}

impl Display {
    pub(crate) fn for_args(args: &MineArgs) -> Self {
        if args.json_log {
            Display::Json
        } else if std::io::stderr().is_terminal() {
            Display::Terminal
        } else {
            Display::Log
        }
    }
}

/// Start the monitoring API when `--api-bind` (or the config) asks for it.
pub(crate) async fn start_api(
    args: &MineArgs,
    display: Display,
    stats: &Arc<MiningStats>,
    sources: Vec<String>,
) -> anyhow::Result<Option<ApiServer>> {
    let Some(bind) = args.api.api_bind else {
        return Ok(None);
    };
    let token = match (&args.api.api_token, &args.api.api_token_file) {
        (Some(t), _) => Some(t.trim().to_owned()),
        (None, Some(file)) => {
            let text = std::fs::read_to_string(file).map_err(|e| {
                UsageError(format!(
                    "cannot read the API token file {}: {e}",
                    file.display()
                ))
            })?;
            Some(text.lines().next().unwrap_or("").trim().to_owned())
        }
        (None, None) => None,
    };
    if token.as_deref() == Some("") {
        return Err(UsageError(
            "the API token is empty: give a non-empty --api-token or token file".into(),
        )
        .into());
    }
    if !bind.ip().is_loopback() && token.is_none() {
        show(
            display,
            &serde_json::json!({"event": "warning", "message": "API bound beyond loopback without a token"}),
            &format!("warning: the API on {bind} is reachable from other machines and has no token: anyone there can read it (set --api-token)"),
        );
    }
    let state = ApiState {
        stats: Arc::clone(stats),
        sources,
    };
    let server = ApiServer::start(ApiConfig { bind, token }, state).await?;
    show(
        display,
        &serde_json::json!({"event": "api", "bind": server.addr().to_string()}),
        &format!(
            "monitoring API on http://{} (/api/v1/summary, /metrics)",
            server.addr()
        ),
    );
    Ok(Some(server))
}

/// The async runtime for the network side (mining itself runs on its own threads).
pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// The last line of a run: the final counters (clearing the status line on a terminal).
pub(crate) fn show_exit(display: Display, snap: &StatsSnapshot, summary: &str) {
    if display == Display::Terminal {
        write_to(Stream::Err, "\r\x1b[2K");
    }
    show(
        display,
        &serde_json::json!({"event": "exit", "status": snap}),
        &format!("stopped: {summary}"),
    );
}

/// Print one event: text (stdout for logs, stderr above the status line on a terminal) or JSON.
pub(crate) fn show(display: Display, json: &serde_json::Value, text: &str) {
    let text = printable(text);
    match display {
        Display::Json => write_to(Stream::Out, &format!("{json}\n")),
        Display::Log => write_to(Stream::Out, &format!("{text}\n")),
        Display::Terminal => write_to(Stream::Err, &format!("\r\x1b[2K{text}\n")),
    }
}

/// Where a line goes.
#[derive(Clone, Copy)]
pub(crate) enum Stream {
    Out,
    Err,
}

/// Set once output cannot be written any more (`wgminer … | head -1` closed the pipe): the run
/// then ends as on Ctrl-C, submitting what was found, instead of panicking in `println!` or
/// mining on unseen.
static OUTPUT_CLOSED: AtomicBool = AtomicBool::new(false);

fn output_closed_notify() -> &'static tokio::sync::Notify {
    static NOTIFY: std::sync::OnceLock<tokio::sync::Notify> = std::sync::OnceLock::new();
    NOTIFY.get_or_init(tokio::sync::Notify::new)
}

/// Write `text` and flush; a failure (a closed pipe or terminal) stops the run once, quietly.
/// Every command writes its stdout through here (`wgminer devices | head -1` must not panic
/// in `println!`); outside a run nothing waits for the stop, and the command just ends.
pub(crate) fn write_to(stream: Stream, text: &str) {
    if OUTPUT_CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let written = match stream {
        Stream::Out => {
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes()).and_then(|()| out.flush())
        }
        Stream::Err => {
            let mut err = std::io::stderr().lock();
            err.write_all(text.as_bytes()).and_then(|()| err.flush())
        }
    };
    if written.is_err() && !OUTPUT_CLOSED.swap(true, Ordering::Relaxed) {
        tracing::info!("output closed: stopping");
        output_closed_notify().notify_waiters();
    }
}

/// Resolves once output cannot be written any more.
async fn output_closed() {
    let notify = output_closed_notify();
    loop {
        let notified = notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if OUTPUT_CLOSED.load(Ordering::Relaxed) {
            return;
        }
        notified.await;
    }
}

/// Let the display print the events the run left queued (it ends once the run has dropped
/// every sender), but not hang on it.
pub(crate) async fn finish_display(ui: tokio::task::JoinHandle<()>) {
    let abort = ui.abort_handle();
    if tokio::time::timeout(Duration::from_secs(2), ui)
        .await
        .is_err()
    {
        abort.abort();
    }
}

/// Draw events and the periodic status until the run ends.
pub(crate) async fn render(
    display: Display,
    stats: Arc<MiningStats>,
    mut events: mpsc::Receiver<MinerEvent>,
) {
    let every = match display {
        Display::Terminal => Duration::from_secs(1),
        Display::Log | Display::Json => LOG_EVERY,
    };
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    loop {
        tokio::select! {
            ev = events.recv() => match ev {
                Some(ev) => {
                    if stats.is_solo() && display != Display::Json && matches!(ev, MinerEvent::JobSwitch { .. }) {
                        // Every block makes a clean job in solo mining: not worth a line each.
                        continue;
                    }
                    let uptime = stats.uptime().as_secs_f64();
                    let (json, text) = describe(&ev);
                    let mut json = json;
                    json["uptime_s"] = serde_json::json!(uptime);
                    show(display, &json, &format!("[{uptime:>8.1}s] {text}"));
                    if display == Display::Terminal {
                        draw_status(&stats.snapshot());
                    }
                }
                None => return,
            },
            _ = tick.tick() => {
                let snap = stats.snapshot();
                match display {
                    Display::Terminal => draw_status(&snap),
                    Display::Json => show(display, &serde_json::json!({"event": "status", "status": snap}), ""),
                    Display::Log => show(display, &serde_json::Value::Null, &format!("[{:>8.1}s] {}", snap.uptime_s, status_text(&snap))),
                }
            }
        }
    }
}

fn draw_status(snap: &StatsSnapshot) {
    write_to(Stream::Err, &format!("\r\x1b[2K{}", status_text(snap)));
}

/// "cpu 12.3 MH/s (5s) 11.9 MH/s (60s) | A 10 R 1 (low difficulty) S 0 | diff 0.001 | pool … | up 1m02s"
fn status_text(snap: &StatsSnapshot) -> String {
    let devices: Vec<String> = snap
        .devices
        .iter()
        .map(|d| {
            let hw = if d.hardware_errors > 0 {
                format!(" HW {}", d.hardware_errors)
            } else {
                String::new()
            };
            format!(
                "{} {} (5s) {} (60s){hw}",
                d.label,
                format_rate(d.rate_5s),
                format_rate(d.rate_60s)
            )
        })
        .collect();
    let reject = snap
        .last_reject
        .as_deref()
        .map(|r| format!(" ({r})"))
        .unwrap_or_default();
    let diff = snap
        .difficulty
        .map(format_difficulty)
        .unwrap_or_else(|| "-".into());
    let pool = match (&snap.pool, snap.connected) {
        (Some(p), true) => p.clone(),
        (Some(p), false) => format!("{p} (down)"),
        (None, _) => "connecting".into(),
    };
    let up = snap.uptime_s as u64;
    let counts = if snap.solo {
        format!(
            "blocks {} (R {}{reject} S {})",
            snap.blocks, snap.rejected, snap.stale
        )
    } else {
        let held = if snap.held > 0 {
            format!(" H {}", snap.held)
        } else {
            String::new()
        };
        format!(
            "A {} R {}{reject} S {}{held}",
            snap.accepted, snap.rejected, snap.stale
        )
    };
    format!(
        "{} | {counts} | diff {diff} | {pool} | up {}h{:02}m{:02}s",
        devices.join(", "),
        up / 3600,
        up / 60 % 60,
        up % 60
    )
}

/// A difficulty with a few significant digits (regtest's is about 4.66e-10).
pub(crate) fn format_difficulty(d: f64) -> String {
    if d != 0.0 && d.abs() < 1e-3 {
        format!("{d:.3e}")
    } else {
        format!("{}", (d * 1000.0).round() / 1000.0)
    }
}

/// An event as JSON and as a text line.
fn describe(ev: &MinerEvent) -> (serde_json::Value, String) {
    use serde_json::json;
    let share_json = |s: &wgminer::work::Share| {
        json!({
            "job_id": s.job_id, "extranonce2": s.extranonce2.to_hex(),
            "ntime": format!("{:08x}", s.ntime), "nonce": format!("{:08x}", s.nonce),
            "version_bits": s.version_bits.map(|v| format!("{v:08x}")),
        })
    };
    match ev {
        MinerEvent::Connected { pool } => (
            json!({"event": "connected", "pool": pool}),
            format!("connected to {pool}"),
        ),
        MinerEvent::Disconnected { reason } => (
            json!({"event": "disconnected", "reason": reason}),
            format!("disconnected: {reason}"),
        ),
        MinerEvent::NewJob {
            job_id,
            clean,
            difficulty,
        } => (
            json!({"event": "job", "job_id": job_id, "clean": clean, "difficulty": difficulty}),
            format!("new job {job_id} (clean: {clean}, difficulty {difficulty})"),
        ),
        MinerEvent::DifficultyChanged(d) => (
            json!({"event": "difficulty", "difficulty": d}),
            format!("difficulty {d} from now on"),
        ),
        MinerEvent::Submitted {
            device,
            share,
            latency,
        } => {
            let ms = latency.as_secs_f64() * 1e3;
            (
                json!({"event": "submitted", "device": device.index, "device_label": device.label,
                       "latency_ms": ms, "share": share_json(share)}),
                format!(
                    "submitted share job {} nonce {:08x} ({device}, {ms:.1} ms after it was found)",
                    share.job_id, share.nonce
                ),
            )
        }
        MinerEvent::Held { share } => (
            json!({"event": "held", "share": share_json(share)}),
            format!(
                "held share job {} nonce {:08x} (no connection: sent when the pool is back)",
                share.job_id, share.nonce
            ),
        ),
        MinerEvent::Unanswered { share, why } => (
            json!({"event": "unanswered", "reason": why, "share": share_json(share)}),
            format!(
                "no answer for share job {} nonce {:08x}: {why}",
                share.job_id, share.nonce
            ),
        ),
        MinerEvent::Accepted { share } => (
            json!({"event": "accepted", "share": share_json(share)}),
            format!(
                "accepted share job {} nonce {:08x}",
                share.job_id, share.nonce
            ),
        ),
        MinerEvent::Rejected { share, reason } => (
            json!({"event": "rejected", "reason": reason, "share": share_json(share)}),
            format!(
                "rejected share job {} nonce {:08x}: {reason}",
                share.job_id, share.nonce
            ),
        ),
        MinerEvent::Stale { share, why } => (
            json!({"event": "stale", "reason": why, "share": share_json(share)}),
            format!(
                "stale share job {} nonce {:08x}: {why}",
                share.job_id, share.nonce
            ),
        ),
        MinerEvent::HardwareError { device, error } => (
            json!({"event": "hardware_error", "device": device.index, "device_label": device.label, "error": error}),
            format!("hardware error on {device}: {error}"),
        ),
        MinerEvent::JobSwitch { job_id, latency } => {
            let ms = latency.as_secs_f64() * 1e3;
            (
                json!({"event": "job_switch", "job_id": job_id, "latency_ms": ms}),
                format!("every device on clean job {job_id} after {ms:.1} ms"),
            )
        }
        MinerEvent::DeviceFailed { device, error } => (
            json!({"event": "device_error", "device": device.index, "device_label": device.label, "error": error}),
            format!("{device}: {error}"),
        ),
        MinerEvent::SourceMessage { solo: false, text } => (
            json!({"event": "pool_message", "message": text}),
            format!("pool says: {text}"),
        ),
        MinerEvent::SourceMessage { solo: true, text } => (
            json!({"event": "node_message", "message": text}),
            format!("node: {text}"),
        ),
        MinerEvent::Notice(text) => (
            json!({"event": "notice", "message": text}),
            text.to_string(),
        ),
        MinerEvent::NewTemplate {
            height,
            prev_hash,
            transactions,
            clean,
            difficulty,
        } => (
            json!({"event": "template", "height": height, "prev_hash": prev_hash.to_string(),
                   "transactions": transactions, "clean": clean, "difficulty": difficulty}),
            if *clean {
                format!("mining height {height} on {prev_hash} ({transactions} transactions, difficulty {})", format_difficulty(*difficulty))
            } else {
                format!("template refreshed: height {height}, {transactions} transactions")
            },
        ),
        MinerEvent::BlockFound {
            device,
            height,
            hash,
            after,
        } => (
            json!({"event": "block_found", "device": device.index, "device_label": device.label,
                   "height": height, "hash": hash.to_string(), "time_to_find_s": after.as_secs_f64()}),
            format!(
                "BLOCK FOUND height {height} hash {hash} after {:.1} s ({device}), submitting",
                after.as_secs_f64()
            ),
        ),
        MinerEvent::BlockResult {
            height,
            hash,
            verdict,
        } => {
            let (status, why) = match verdict {
                BlockVerdict::Accepted => ("accepted", None),
                BlockVerdict::Stale(w) => ("stale", Some(w)),
                BlockVerdict::Rejected(w) => ("rejected", Some(w)),
                BlockVerdict::Undelivered(w) => ("not delivered", Some(w)),
            };
            let text = match why {
                None => format!("block {height} {hash} accepted"),
                Some(w) => format!("block {height} {hash} {status}: {w}"),
            };
            (
                json!({"event": "block_result", "height": height, "hash": hash.to_string(),
                       "status": status, "reason": why}),
                text,
            )
        }
        MinerEvent::SourceDown(why) => (
            json!({"event": "source_down", "reason": why}),
            format!("work source unavailable: {why}"),
        ),
    }
}

/// Resolves on Ctrl-C, or SIGTERM or SIGHUP on Unix (what systemd and container runtimes send,
/// and what a closed terminal sends), or when
/// output can no longer be written (a closed pipe), and from then on a second signal ends the
/// process at once (exit code 130) instead of waiting for the drain. The handlers are installed
/// when this is called (inside the runtime), not when the future is first polled, so a signal
/// during start-up is not lost. If no handler can be installed, mining goes on until the
/// process is killed.
pub(crate) fn stop_signal() -> impl std::future::Future<Output = ()> {
    let mut signals = Signals::install();
    async move {
        tokio::select! {
            _ = signals.next() => {}
            _ = output_closed() => {}
        }
        tokio::spawn(async move {
            signals.next().await;
            write_to(
                Stream::Err,
                "second signal: exiting now, without waiting for answers\n",
            );
            std::process::exit(130);
        });
    }
}

/// SIGINT, SIGTERM and SIGHUP streams (Ctrl-C elsewhere). SIGHUP (the terminal went away, or
/// `systemctl reload` without a reload command) is a graceful stop like the others: nothing is
/// reloaded, and the cookie file and found blocks are dealt with as on Ctrl-C.
struct Signals {
    #[cfg(unix)]
    int: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    hup: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    fn install() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Signals {
                int: signal(SignalKind::interrupt()).ok(),
                term: signal(SignalKind::terminate()).ok(),
                hup: signal(SignalKind::hangup()).ok(),
            }
        }
        #[cfg(not(unix))]
        Signals {}
    }

    async fn next(&mut self) {
        #[cfg(unix)]
        {
            async fn recv(s: &mut Option<tokio::signal::unix::Signal>) {
                match s {
                    Some(s) => {
                        if s.recv().await.is_none() {
                            std::future::pending::<()>().await;
                        }
                    }
                    None => std::future::pending::<()>().await,
                }
            }
            tokio::select! {
                _ = recv(&mut self.int) => {}
                _ = recv(&mut self.term) => {}
                _ = recv(&mut self.hup) => {}
            }
        }
        #[cfg(not(unix))]
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn peer_text_cannot_drive_the_terminal() {
        assert_eq!(
            super::printable("pool says: \x1b[2J\x1b[31mred\x07\r\nnext"),
            "pool says: ?[2J?[31mred???next"
        );
        assert_eq!(
            super::printable("plain text, ünïcode"),
            "plain text, ünïcode"
        );
        let long = "x".repeat(2000);
        assert_eq!(super::printable(&long).chars().count(), 501);
    }
}
