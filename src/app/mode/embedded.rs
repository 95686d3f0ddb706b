//! Plain `wgminer`: mine on the embedded node core (a regtest chain in the data directory),
//! paying the given address or the core's own key, optionally serving the core's JSON-RPC
//! beside the run.

use std::sync::Arc;

use wgminer::mining::runner::UNSUBMITTED_BLOCKS;
use wgminer::mining::{instance_extranonce1, CoreSource, EventSink, SoloConfig};
use wgminer::node;

use crate::app::mode::{core, solo};
use crate::app::output::{format_difficulty, show};
use crate::app::plan::EmbeddedPlan;
use crate::app::runtime;

pub fn run(plan: EmbeddedPlan) -> anyhow::Result<()> {
    let core = core::open(&plan.core)?;
    let dir = core.dir();
    let mode = plan.mining.output;
    let (payout, payout_text) = match plan.payout.clone() {
        Some(given) => given,
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
    let detail = format!(
        "embedded node core in {} at height {height} ({tip}), difficulty {}; paying {payout_text}",
        dir.display(),
        format_difficulty(core.difficulty())
    );
    runtime::runtime()?.block_on(async move {
        let stop = runtime::stop_signal();
        let server = match plan.rpc_bind {
            Some(bind) => Some(core::start_rpc(mode, &core, bind).await?),
            None => None,
        };
        let tp = match plan.sv2_tp_bind {
            Some(bind) => Some(core::start_tp(mode, &core, bind).await?),
            None => None,
        };
        let source = CoreSource::new(Arc::clone(&core), config)
            .with_coinbase_text(plan.coinbase_text.clone());
        let blocks_dir = plan.core.data_dir.join(UNSUBMITTED_BLOCKS);
        let session = solo::session(
            wgminer::mining::WorkSource::label(&source),
            detail,
            blocks_dir,
        );
        let result = runtime::mine(&plan.mining, source, EventSink::channel(), session, stop)
            .await
            .and_then(solo::outcome);
        if let Some(server) = server {
            server.stop().await;
        }
        if let Some(tp) = tp {
            tp.stop().await;
        }
        let (height, tip) = core.tip();
        show(
            mode,
            &serde_json::json!({"event": "chain", "height": height, "tip": tip.to_string()}),
            &format!("chain at height {height} ({tip}) in {}", dir.display()),
        );
        result
    })
}
