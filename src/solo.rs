//! Solo mining from the command line: `wgminer -o http://host:port --rpc-cookie FILE
//! --coinbase-addr ADDR` mines on a node over JSON-RPC; plain `wgminer` mines on the embedded
//! node core; `wgminer node` serves the core's JSON-RPC without mining. Everything that can be
//! checked is checked before any device starts (flags, credentials, the node's network against
//! the payout address); then the mining layer's runner ([`wgminer::mining::run`]) runs the node
//! or core source with the status display of [`crate::mine`].

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use wgminer::mining::runner::UNSUBMITTED_BLOCKS;
use wgminer::mining::{
    instance_extranonce1, CoreSource, EventSink, Manager, MinerEvent, NodeGbtSource, RunConfig,
    SoloConfig, SourceError, WorkSource,
};
use wgminer::node::{self, rpc_server, Chain, ChainParams, NodeCore};
use wgminer::rpc::{node_network, Auth, NodeSource, RpcClient, RpcError};
use wgminer::work::payout::payout_script;

use crate::cli::{MineArgs, NodeArgs};
use crate::mine::{
    backends, finish_display, format_difficulty, render, runtime, show, show_exit, start_api,
    stop_signal, Display,
};
use crate::select::UsageError;

/// After Ctrl-C, how long the node gets to answer the blocks just submitted.
const DRAIN: Duration = Duration::from_secs(3);

/// Waits between attempts while the node is unreachable at start.
const BACKOFF: [u64; 5] = [1, 2, 4, 8, 15];

/// The node's credentials from the flags.
fn node_auth(args: &MineArgs, url: &str) -> Result<Auth, UsageError> {
    let s = &args.solo;
    match (&s.rpc_user, &s.rpc_pass, &s.rpc_cookie) {
        (Some(user), Some(password), None) => Ok(Auth::UserPass {
            user: user.clone(),
            password: password.clone(),
        }),
        (None, None, Some(cookie)) => Ok(Auth::Cookie(cookie.clone())),
        _ => Err(UsageError(format!(
            "the node at {url} needs credentials: --rpc-cookie FILE (bitcoind's DATADIR/.cookie) or --rpc-user USER --rpc-pass PASS"
        ))),
    }
}

/// `wgminer -o http://host:port …`: solo mining on a node.
pub fn run_node(args: &MineArgs) -> anyhow::Result<()> {
    if args.urls.len() > 1 {
        return Err(usage(
            "solo mining uses one node: give a single -o http://host:port",
        ));
    }
    if !args.users.is_empty() || !args.passwords.is_empty() {
        return Err(usage(
            "-u/-p are pool flags; a node takes --rpc-user/--rpc-pass or --rpc-cookie",
        ));
    }
    if args.solo.difficulty.is_some() || args.solo.rpc_bind.is_some() {
        // Not an error: a config file or WGMINER_* may set them for the embedded core.
        eprintln!(
            "note: --difficulty and --rpc-bind belong to the embedded node core; a node given with -o keeps its own chain and ignores them"
        );
    }
    let url = &args.urls[0];
    let auth = node_auth(args, url)?;
    let Some(addr) = args.solo.coinbase_addr.clone() else {
        return Err(usage(
            "solo mining on a node needs --coinbase-addr ADDRESS: the block reward is paid there",
        ));
    };
    let client = RpcClient::new(url, auth).map_err(|e| UsageError(e.to_string()))?;
    let display = Display::for_args(args);
    runtime()?.block_on(async move {
        let stop = stop_signal();
        tokio::pin!(stop);
        let (events, events_rx) = EventSink::channel();
        // The network and whether segwit is enforced decide which addresses are safe to pay.
        let network = until_ready(display, stop.as_mut(), || {
            let c = client.clone();
            async move { node_network(&c).await }
        })
        .await?;
        let Some(network) = network else {
            return Ok(());
        };
        let first = until_ready(display, stop.as_mut(), || {
            let mut s = NodeSource::new(client.clone()).with_network(network);
            async move { s.fetch(None).await }
        })
        .await?;
        let Some(first) = first else {
            return Ok(());
        };
        let payout =
            payout_script(&addr, network, first.segwit).map_err(|e| UsageError(e.to_string()))?;
        let config = SoloConfig {
            payout,
            extranonce1: instance_extranonce1(),
        };
        let source = NodeGbtSource::new(NodeSource::new(client), network, config);
        let start = format!("paying {addr}");
        // No data directory: blocks without a verdict go to the working directory.
        let blocks_dir = PathBuf::from(UNSUBMITTED_BLOCKS);
        let events = (events, events_rx);
        mine_solo(args, display, start, source, events, blocks_dir, stop).await
    })
}

/// Plain `wgminer`: mine on the embedded node core.
pub fn run_embedded(args: &MineArgs) -> anyhow::Result<()> {
    let s = &args.solo;
    if !args.users.is_empty()
        || !args.passwords.is_empty()
        || s.rpc_user.is_some()
        || s.rpc_cookie.is_some()
    {
        return Err(usage(
            "-u/-p are for pools (-o stratum+tcp://…) and --rpc-user/--rpc-pass/--rpc-cookie for nodes (-o http://…); without -o wgminer mines on its embedded node core",
        ));
    }
    let (core, data_dir) = open_core(s.datadir.as_deref(), s.difficulty)?;
    let dir = core.dir();
    let display = Display::for_args(args);
    let (payout, payout_text) = match &s.coinbase_addr {
        Some(a) => (
            payout_script(a, bitcoin::Network::Regtest, true)
                .map_err(|e| UsageError(e.to_string()))?,
            a.clone(),
        ),
        None => {
            let (address, created) = node::load_or_create_payout(&dir, bitcoin::Network::Regtest)?;
            let key = dir.join(node::PAYOUT_KEY_FILE);
            let what = if created { "new key" } else { "key" };
            (
                address.script_pubkey(),
                format!("{address} ({what} in {})", key.display()),
            )
        }
    };
    let config = SoloConfig {
        payout,
        extranonce1: instance_extranonce1(),
    };
    let (height, tip) = core.tip();
    let start = format!(
        "embedded node core in {} at height {height} ({tip}), difficulty {}; paying {payout_text}",
        dir.display(),
        format_difficulty(core.difficulty())
    );
    runtime()?.block_on(async move {
        let stop = stop_signal();
        tokio::pin!(stop);
        let server = match s.rpc_bind {
            Some(bind) => Some(start_rpc(display, &core, bind).await?),
            None => None,
        };
        let source = CoreSource::new(Arc::clone(&core), config);
        let blocks_dir = data_dir.join(UNSUBMITTED_BLOCKS);
        let events = EventSink::channel();
        let result = mine_solo(args, display, start, source, events, blocks_dir, stop).await;
        if let Some(server) = server {
            server.stop().await;
        }
        let (height, tip) = core.tip();
        show(
            display,
            &serde_json::json!({"event": "chain", "height": height, "tip": tip.to_string()}),
            &format!("chain at height {height} ({tip}) in {}", dir.display()),
        );
        result
    })
}

/// `wgminer node`: the embedded node core's JSON-RPC, no mining, until Ctrl-C.
pub fn run_node_server(args: &NodeArgs) -> anyhow::Result<()> {
    let (core, _) = open_core(args.datadir.as_deref(), args.difficulty)?;
    let (height, tip) = core.tip();
    show(
        Display::Log,
        &serde_json::Value::Null,
        &format!(
            "embedded node core in {} at height {height} ({tip}), difficulty {}",
            core.dir().display(),
            format_difficulty(core.difficulty())
        ),
    );
    runtime()?.block_on(async move {
        // Handlers first: a signal sent as soon as the rpc line is out must stop gracefully,
        // not meet the default action (SIGHUP killed the process, exit 129).
        let stop = stop_signal();
        let server = start_rpc(Display::Log, &core, args.rpc_bind).await?;
        stop.await;
        server.stop().await;
        let (height, tip) = core.tip();
        show(
            Display::Log,
            &serde_json::Value::Null,
            &format!("stopped at height {height} ({tip})"),
        );
        anyhow::Ok(())
    })
}

/// The node core in `datadir` (or the default data directory), and that directory.
fn open_core(
    datadir: Option<&std::path::Path>,
    difficulty: Option<f64>,
) -> anyhow::Result<(Arc<NodeCore>, PathBuf)> {
    let data_dir = match datadir {
        Some(d) => d.to_owned(),
        None => node::default_data_dir()
            .ok_or_else(|| usage("no home or data directory is known here: give --datadir DIR"))?,
    };
    let params = match difficulty {
        Some(d) => ChainParams::with_difficulty(d).map_err(|e| UsageError(e.to_string()))?,
        None => ChainParams::regtest(),
    };
    let chain = Chain::open(&node::chain_dir(&data_dir), params)?;
    Ok((NodeCore::new(chain), data_dir))
}

async fn start_rpc(
    display: Display,
    core: &Arc<NodeCore>,
    bind: std::net::SocketAddr,
) -> anyhow::Result<rpc_server::RpcServer> {
    let server = rpc_server::RpcServer::start(Arc::clone(core), bind).await?;
    show(
        display,
        &serde_json::json!({"event": "rpc", "bind": server.addr().to_string(),
                            "cookie": server.cookie_file().display().to_string()}),
        &format!(
            "JSON-RPC on http://{} (cookie auth: {})",
            server.addr(),
            server.cookie_file().display()
        ),
    );
    Ok(server)
}

/// Start the devices, the display and the source, and mine until `stop` or the source ends.
/// Blocks left without a verdict are written to `blocks_dir`.
async fn mine_solo(
    args: &MineArgs,
    display: Display,
    start: String,
    source: impl WorkSource,
    (events, events_rx): (EventSink, tokio::sync::mpsc::Receiver<MinerEvent>),
    blocks_dir: PathBuf,
    stop: Pin<&mut impl Future<Output = ()>>,
) -> anyhow::Result<()> {
    let backends = backends(args)?;
    let manager = Manager::start(backends, events)?;
    let stats = manager.stats();
    let label = source.label();
    let labels: Vec<String> = stats.devices.iter().map(|d| d.label.clone()).collect();
    show(
        display,
        &serde_json::json!({"event": "start", "devices": labels, "source": label, "detail": start}),
        &format!("solo mining on {label} with {}: {start}", labels.join(", ")),
    );
    let api = start_api(args, display, &stats, vec![label.clone()]).await?;
    let ui = tokio::spawn(render(display, Arc::clone(&stats), events_rx));
    let config = RunConfig {
        drain: DRAIN,
        blocks_dir,
        ..RunConfig::default()
    };
    let outcome = wgminer::mining::run(source, manager, stop, config).await;
    finish_display(ui).await;
    if let Some(api) = api {
        api.stop().await;
    }
    let snap = outcome.stats.snapshot();
    let summary = format!(
        "{} blocks accepted, {} rejected, {} stale, {} without a verdict",
        snap.blocks, snap.rejected, snap.stale, snap.unanswered
    );
    show_exit(display, &snap, &summary);
    match outcome.result {
        Ok(()) => Ok(()),
        Err(SourceError::Node(e @ (RpcError::Unauthorized { .. } | RpcError::Cookie { .. }))) => {
            Err(UsageError(e.to_string()).into())
        }
        Err(e) => Err(e.into()),
    }
}

/// Run `f` until it succeeds, retrying (with backoff, saying why) while the node is down or not
/// ready. `None` when stopped first; an error for what retrying cannot fix.
async fn until_ready<T, Fut>(
    display: Display,
    mut stop: Pin<&mut impl Future<Output = ()>>,
    mut f: impl FnMut() -> Fut,
) -> anyhow::Result<Option<T>>
where
    Fut: Future<Output = Result<T, RpcError>>,
{
    let mut attempt = 0usize;
    loop {
        let result = tokio::select! {
            r = f() => r,
            _ = stop.as_mut() => return Ok(None),
        };
        match result {
            Ok(v) => return Ok(Some(v)),
            Err(e) if e.is_transient() => {
                let wait = BACKOFF[attempt.min(BACKOFF.len() - 1)];
                attempt += 1;
                show(
                    display,
                    &serde_json::json!({"event": "source_down", "reason": e.to_string(), "retry_in_s": wait}),
                    &format!("{e}; retrying in {wait} s"),
                );
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(wait)) => {}
                    _ = stop.as_mut() => return Ok(None),
                }
            }
            Err(
                e @ (RpcError::Unauthorized { .. }
                | RpcError::Cookie { .. }
                | RpcError::BadUrl { .. }),
            ) => return Err(UsageError(e.to_string()).into()),
            Err(e) => return Err(e.into()),
        }
    }
}

fn usage(msg: &str) -> anyhow::Error {
    UsageError(msg.to_owned()).into()
}
