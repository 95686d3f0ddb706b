//! `wgminer -o stratum2+tcp://host:port/KEY -u user.worker`: mine on a Stratum V2 pool (its
//! Noise certificate checked against KEY) with the SV2 source under the mining layer's runner
//! until Ctrl-C.

use wgminer::mining::{EventSink, RunConfig, Sv2Source, WorkSource};

use crate::app::output::status_text;
use crate::app::plan::Sv2PoolPlan;
use crate::app::runtime::{self, Session, DRAIN};

pub fn run(plan: Sv2PoolPlan) -> anyhow::Result<()> {
    let url = plan.config.url();
    let channel = plan.config.channel.to_string();
    let source = Sv2Source::new(plan.config);
    debug_assert!(!source.is_solo());
    let start_url = url.clone();
    let session = Session {
        start: Box::new(move |labels| {
            (
                serde_json::json!({"event": "start", "devices": labels, "pools": [start_url], "sv2_channel": channel}),
                format!(
                    "mining on {} ({} channel) with {}",
                    start_url,
                    channel,
                    labels.join(", ")
                ),
            )
        }),
        sources: vec![url],
        run: RunConfig {
            drain: DRAIN,
            ..RunConfig::default()
        },
        summary: status_text,
        // One pool: nothing to switch to.
        switch: None,
    };
    runtime::runtime()?.block_on(async move {
        let stop = runtime::stop_signal();
        let result = runtime::mine(&plan.mining, source, EventSink::channel(), session, stop);
        result.await??;
        anyhow::Ok(())
    })
}
