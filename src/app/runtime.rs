//! What every run shares: the async runtime, the stop signal (Ctrl-C, SIGTERM, SIGHUP, or a
//! closed output), the monitoring API's start, and [`mine`], one mining session from devices
//! to the last line, which the pool, node and embedded modes each call with their source.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::sync::mpsc;
use wgminer::mining::thermal::{self, TemperatureGuard};
use wgminer::mining::PoolSwitch;
use wgminer::mining::{EventSink, Manager, MinerEvent, RunConfig, SourceError, WorkSource};
use wgminer::telemetry::cgminer::{CgminerServer, Control};
use wgminer::telemetry::sensors::{GpuSensors, WatchedGpu};
use wgminer::telemetry::{ApiConfig, ApiServer, ApiState};
use wgminer::work::{MiningStats, StatsSnapshot};

use crate::app::devices;
use crate::app::output::{self, show, show_exit, write_to, OutputMode, Stream};
use crate::app::plan::{ApiPlan, MiningPlan};

/// The async runtime for the network side (mining itself runs on its own threads).
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// After Ctrl-C, how long the source gets to answer the solutions just submitted.
pub const DRAIN: Duration = Duration::from_secs(3);

/// Start the monitoring API when the plan asks for it.
pub async fn start_api(
    api: Option<&ApiPlan>,
    mode: OutputMode,
    stats: &Arc<MiningStats>,
    sources: Vec<String>,
) -> anyhow::Result<Option<ApiServer>> {
    let Some(ApiPlan { bind, token }) = api.cloned() else {
        return Ok(None);
    };
    if !bind.ip().is_loopback() && token.is_none() {
        show(
            mode,
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
        mode,
        &serde_json::json!({"event": "api", "bind": server.addr().to_string()}),
        &format!(
            "monitoring API on http://{} (/api/v1/summary, /metrics)",
            server.addr()
        ),
    );
    Ok(Some(server))
}

/// The first line of a run, given the device labels: (JSON, text).
pub type StartLine = Box<dyn FnOnce(&[String]) -> (serde_json::Value, String)>;

/// How a mining mode introduces and sums up its run.
pub struct Session {
    pub start: StartLine,
    /// What the API lists as the run's sources.
    pub sources: Vec<String>,
    /// The runner's settings (drain time, where unsubmitted blocks go).
    pub run: RunConfig,
    /// The last line's summary of the final counters.
    pub summary: fn(&StatsSnapshot) -> String,
    /// Where the cgminer API's `switchpool` goes (pool mining; `None` for one source).
    pub switch: Option<PoolSwitch>,
}

/// Set when the cgminer API asked for `restart`: once the run has ended cleanly, the process
/// starts itself again with the same arguments ([`restart_if_asked`]).
static RESTART: AtomicBool = AtomicBool::new(false);

/// After a run that the cgminer API's `restart` ended: replace this process with a fresh one,
/// same program and arguments (Unix); returns only if that fails, with why.
pub fn restart_if_asked() -> anyhow::Result<()> {
    if !RESTART.load(Ordering::Relaxed) {
        return Ok(());
    }
    let exe = std::env::current_exe().context("restart: finding this program")?;
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        let e = std::process::Command::new(&exe)
            .args(std::env::args_os().skip(1))
            .exec();
        Err(anyhow::anyhow!(
            "restart: cannot start {} again: {e}",
            exe.display()
        ))
    }
    #[cfg(not(unix))]
    {
        let status = std::process::Command::new(&exe)
            .args(std::env::args_os().skip(1))
            .status()
            .context("restart")?;
        std::process::exit(status.code().unwrap_or(1));
    }
}

/// cgminer's API, if the plan asks for it, and what its privileged commands ask for. `quit`
/// and `restart` end the run as a signal would.
async fn start_cgminer(
    plan: &MiningPlan,
    mode: OutputMode,
    state: ApiState,
) -> anyhow::Result<Option<(CgminerServer, mpsc::Receiver<Control>)>> {
    let Some(config) = plan.cgminer.clone() else {
        return Ok(None);
    };
    let (tx, rx) = mpsc::channel(8);
    let server = CgminerServer::start(config, state, tx).await?;
    show(
        mode,
        &serde_json::json!({"event": "api_cgminer", "bind": server.addr().to_string()}),
        &format!(
            "cgminer API on {} (summary, devs, pools, stats)",
            server.addr()
        ),
    );
    Ok(Some((server, rx)))
}

/// Until a privileged command ends the run: `switchpool` is passed on and waited past.
async fn controlled(rx: Option<mpsc::Receiver<Control>>, switch: Option<PoolSwitch>) {
    let Some(mut rx) = rx else {
        return std::future::pending().await;
    };
    while let Some(control) = rx.recv().await {
        match control {
            Control::Quit => return,
            Control::Restart => {
                RESTART.store(true, Ordering::Relaxed);
                return;
            }
            Control::SwitchPool(n) => {
                if let Some(s) = &switch {
                    s.request(n);
                }
            }
        }
    }
    std::future::pending().await
}

/// Read the GPUs' sensors into the run's counters (and guard their temperature) while it runs;
/// where there is no NVML, say so once in the log and carry on.
fn start_sensors(
    gpus: &[WatchedGpu],
    manager: &Manager,
    limit: Option<u32>,
) -> Option<(Arc<AtomicBool>, std::thread::JoinHandle<()>)> {
    if gpus.is_empty() {
        return None;
    }
    let sensors = match GpuSensors::open(gpus) {
        Ok(s) => s,
        Err(why) => {
            if limit.is_some() {
                tracing::warn!("--gpu-temp-limit cannot work: {why}");
            } else {
                tracing::info!("{why}");
            }
            return None;
        }
    };
    let guard = limit.map(|l| (TemperatureGuard::new(l), manager.pauser()));
    let stop = Arc::new(AtomicBool::new(false));
    match thermal::spawn_sampler(
        sensors,
        manager.stats(),
        guard,
        manager.events(),
        Arc::clone(&stop),
    ) {
        Ok(handle) => Some((stop, handle)),
        Err(e) => {
            tracing::warn!("no GPU sensor readings: cannot start their thread: {e}");
            None
        }
    }
}

/// One mining session: open the devices, show the start, start the API and the display, run
/// `source` under the mining layer's runner until `stop` or the source ends, then stop the API
/// and show the final counters. The source's own failure is returned as it is, for the mode to
/// classify.
pub async fn mine(
    plan: &MiningPlan,
    source: impl WorkSource,
    (events, events_rx): (EventSink, tokio::sync::mpsc::Receiver<MinerEvent>),
    session: Session,
    stop: impl std::future::Future<Output = ()>,
) -> anyhow::Result<Result<(), SourceError>> {
    let mode = plan.output;
    let (backends, gpus) = devices::open_for_mining(&plan.devices)?;
    let manager = Manager::start(backends, events)?;
    let stats = manager.stats();
    // Before the APIs start, so their first answer already says what kind of run this is.
    if source.is_solo() {
        stats.set_solo();
    }
    let labels: Vec<String> = stats.devices.iter().map(|d| d.label.clone()).collect();
    let (json, text) = (session.start)(&labels);
    show(mode, &json, &text);
    let state = ApiState {
        stats: Arc::clone(&stats),
        sources: session.sources.clone(),
    };
    let api = start_api(plan.api.as_ref(), mode, &stats, session.sources).await?;
    let (cgminer, control) = match start_cgminer(plan, mode, state).await? {
        Some((server, rx)) => (Some(server), Some(rx)),
        None => (None, None),
    };
    let sensors = start_sensors(&gpus, &manager, plan.gpu_temp_limit);
    let ui = tokio::spawn(output::render(
        mode,
        plan.look,
        Arc::clone(&stats),
        events_rx,
    ));
    let stop = async move {
        tokio::select! {
            _ = stop => {}
            _ = controlled(control, session.switch) => {}
        }
    };
    let outcome = wgminer::mining::run(source, manager, stop, session.run).await;
    if let Some((flag, thread)) = sensors {
        flag.store(true, Ordering::Relaxed);
        let _ = tokio::task::spawn_blocking(move || thread.join()).await;
    }
    finish_display(ui).await;
    if let Some(api) = api {
        api.stop().await;
    }
    if let Some(cgminer) = cgminer {
        cgminer.stop();
    }
    let snap = outcome.stats.snapshot();
    show_exit(mode, &snap, &(session.summary)(&snap));
    Ok(outcome.result)
}

/// Let the display print the events the run left queued (it ends once the run has dropped
/// every sender), but not hang on it.
pub async fn finish_display(ui: tokio::task::JoinHandle<()>) {
    let abort = ui.abort_handle();
    if tokio::time::timeout(Duration::from_secs(2), ui)
        .await
        .is_err()
    {
        abort.abort();
    }
}

/// Resolves on Ctrl-C, or SIGTERM or SIGHUP on Unix (what systemd and container runtimes send,
/// and what a closed terminal sends), or when output can no longer be written (a closed pipe).
/// From then on a second signal ends the process at once (exit code 130) instead of waiting
/// for the drain, unless it comes within [`SAME_REQUEST`] of the first: GNU `timeout` and a
/// terminal signal the process and then its group, one request arriving twice. The handlers
/// are installed when this is called (inside the runtime), not when the future is first
/// polled, so a signal during start-up is not lost. If no handler can be installed, mining
/// goes on until the process is killed.
pub fn stop_signal() -> impl std::future::Future<Output = ()> {
    let mut signals = Signals::install();
    async move {
        tokio::select! {
            _ = signals.next() => {}
            _ = output::output_closed() => {}
        }
        let first = tokio::time::Instant::now();
        tokio::spawn(async move {
            loop {
                signals.next().await;
                if first.elapsed() >= SAME_REQUEST {
                    break;
                }
            }
            write_to(
                Stream::Err,
                "second signal: exiting now, without waiting for answers\n",
            );
            std::process::exit(130);
        });
    }
}

/// A signal this soon after the first is the same request, not an impatient second one.
pub const SAME_REQUEST: Duration = Duration::from_secs(1);

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
