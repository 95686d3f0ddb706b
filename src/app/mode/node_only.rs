//! `wgminer node`: the embedded node core's JSON-RPC for other miners and tools until Ctrl-C or
//! `stop`; it mines only when asked (`generatetoaddress`, with the selected devices), and prints
//! one line per block as the tip moves (a burst in one line).

use std::sync::Arc;
use std::time::Duration;

use wgminer::mining::generate::generate;
use wgminer::mining::runner::UNSUBMITTED_BLOCKS;
use wgminer::node::rpc_server::{GenerateHook, RpcExtras};
use wgminer::node::{self, NodeCore};

use crate::app::devices;
use crate::app::mode::core;
use crate::app::output::{format_difficulty, show, OutputMode};
use crate::app::plan::NodeOnlyPlan;
use crate::app::runtime;

pub fn run(plan: NodeOnlyPlan) -> anyhow::Result<()> {
    let core = core::open(&plan.core)?;
    let (height, tip) = core.tip();
    show(
        OutputMode::Log,
        &serde_json::Value::Null,
        &format!(
            "embedded node core in {} at height {height} ({tip}), difficulty {}",
            core.dir().display(),
            format_difficulty(core.difficulty())
        ),
    );
    runtime::runtime()?.block_on(async move {
        // Handlers first: a signal sent as soon as the rpc line is out must stop gracefully,
        // not meet the default action (SIGHUP killed the process, exit 129).
        let stop = runtime::stop_signal();
        let (extras, mut stop_rpc) = extras(&core, &plan)?;
        let server = core::start_rpc_with(OutputMode::Log, &core, plan.rpc_bind, extras).await?;
        let tp = match plan.sv2_tp_bind {
            Some(bind) => Some(core::start_tp(OutputMode::Log, &core, bind).await?),
            None => None,
        };
        let blocks = tokio::spawn(show_blocks(Arc::clone(&core)));
        tokio::select! {
            _ = stop => {}
            _ = stop_rpc.recv() => {}
        }
        blocks.abort();
        if let Some(tp) = tp {
            tp.stop().await;
        }
        server.stop().await;
        let (height, tip) = core.tip();
        show(
            OutputMode::Log,
            &serde_json::Value::Null,
            &format!("stopped at height {height} ({tip})"),
        );
        anyhow::Ok(())
    })
}

/// `getnewaddress` (the core's payout key), `generatetoaddress` (the plan's devices, opened
/// for each call) and `stop` (the receiver is told).
fn extras(
    core: &Arc<NodeCore>,
    plan: &NodeOnlyPlan,
) -> anyhow::Result<(RpcExtras, tokio::sync::mpsc::Receiver<()>)> {
    let (address, _) = node::load_or_create_payout(&core.dir(), bitcoin::Network::Regtest)?;
    let (stop_tx, stop_rx) = tokio::sync::mpsc::channel(1);
    let request = plan.devices.clone();
    let blocks_dir = plan.core.data_dir.join(UNSUBMITTED_BLOCKS);
    let core = Arc::clone(core);
    let generate_hook: GenerateHook = Arc::new(move |count, payout| {
        let (core, request, blocks_dir) = (Arc::clone(&core), request.clone(), blocks_dir.clone());
        Box::pin(async move {
            // Opening devices blocks (GPU adapters): off the async threads.
            let backends = tokio::task::spawn_blocking(move || devices::mining_backends(&request))
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| e.to_string())?;
            generate(core, backends, count, payout, blocks_dir)
                .await
                .map_err(|e| e.to_string())
        })
    });
    let extras = RpcExtras {
        payout_address: Some(address.to_string()),
        generate: Some(generate_hook),
        stop: Some(stop_tx),
    };
    Ok((extras, stop_rx))
}

/// A burst of blocks (`generatetoaddress 1000`) is read this often: one line each time.
const BLOCK_LINES_EVERY: Duration = Duration::from_millis(300);

/// Each new tip as a line: "block 12 0b1013ae…8dfe, diff 4.657e-10", or for several at once
/// "blocks 13–112 (100), tip 5d2a…", or "tip now 10 …" when it went back.
async fn show_blocks(core: Arc<NodeCore>) {
    let mut tips = core.subscribe();
    let (mut last, _) = *tips.borrow_and_update();
    while tips.changed().await.is_ok() {
        let (height, hash) = *tips.borrow_and_update();
        let hex = hash.to_string();
        let short = format!("{}\u{2026}{}", &hex[..8], &hex[hex.len() - 4..]);
        let diff = format_difficulty(core.difficulty());
        let text = if height == last + 1 {
            format!("block {height} {short}, diff {diff}")
        } else if height > last {
            format!(
                "blocks {}\u{2013}{height} ({}), tip {short}, diff {diff}",
                last + 1,
                height - last
            )
        } else {
            format!("tip now {height} {short}")
        };
        last = height;
        show(OutputMode::Log, &serde_json::Value::Null, &text);
        tokio::time::sleep(BLOCK_LINES_EVERY).await;
    }
}
