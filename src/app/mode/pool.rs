//! `wgminer -o stratum+tcp://host:port -u user.worker`: mine on pools (failover in order) with
//! the Stratum source under the mining layer's runner until Ctrl-C.

use wgminer::mining::{EventSink, RunConfig, StratumSource, WorkSource};

use crate::app::output::status_text;
use crate::app::plan::PoolPlan;
use crate::app::runtime::{self, Session, DRAIN};

pub fn run(plan: PoolPlan) -> anyhow::Result<()> {
    let pools: Vec<String> = plan
        .client
        .pools
        .iter()
        .map(|p| p.url.to_string())
        .collect();
    let switch = plan.client.switch.clone();
    let source = StratumSource::new(plan.client);
    debug_assert!(!source.is_solo());
    let start_pools = pools.clone();
    let session = Session {
        start: Box::new(move |labels| {
            (
                serde_json::json!({"event": "start", "devices": labels, "pools": start_pools}),
                format!(
                    "mining on {} with {}",
                    start_pools.join(", "),
                    labels.join(", ")
                ),
            )
        }),
        sources: pools,
        run: RunConfig {
            drain: DRAIN,
            ..RunConfig::default()
        },
        summary: status_text,
        switch: Some(switch),
    };
    runtime::runtime()?.block_on(async move {
        let stop = runtime::stop_signal();
        let result = runtime::mine(&plan.mining, source, EventSink::channel(), session, stop);
        result.await??;
        anyhow::Ok(())
    })
}
