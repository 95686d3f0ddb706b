//! `wgminer -o stratum+tcp://host:port -o stratum2+tcp://host:port/KEY … -u user.worker`: mine
//! on pools, Stratum V1 and V2 in one priority list, with the failover source under the mining
//! layer's runner until Ctrl-C. One pool is a list of one.

use wgminer::mining::{EventSink, FailoverSource, PoolSpec, RunConfig, WorkSource};

use crate::app::output::status_text;
use crate::app::plan::PoolPlan;
use crate::app::runtime::{self, Session, DRAIN};

pub fn run(plan: PoolPlan) -> anyhow::Result<()> {
    let switch = plan.failover.switch.clone();
    // The channel kind of the SV2 pools in the list (one flag for all), if any.
    let sv2_channel = plan.pools.iter().find_map(|p| match p {
        PoolSpec::Sv2(c) => Some(c.channel.to_string()),
        _ => None,
    });
    let source = FailoverSource::new(plan.pools, plan.failover);
    debug_assert!(!source.is_solo());
    let pools = source.urls();
    let start_pools = pools.clone();
    let session = Session {
        start: Box::new(move |labels| {
            let channel = sv2_channel
                .as_ref()
                .map(|c| format!(" (SV2: {c} channel)"))
                .unwrap_or_default();
            (
                serde_json::json!({"event": "start", "devices": labels, "pools": start_pools,
                                   "sv2_channel": sv2_channel}),
                format!(
                    "mining on {}{channel} with {}",
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
