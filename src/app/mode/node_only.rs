//! `wgminer node`: the embedded node core's JSON-RPC for other miners and tools, no mining,
//! until Ctrl-C.

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
        let server = core::start_rpc(OutputMode::Log, &core, plan.rpc_bind).await?;
        stop.await;
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
