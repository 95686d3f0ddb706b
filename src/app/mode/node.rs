//! `wgminer -o http://host:port --rpc-cookie FILE --coinbase-addr ADDR`: solo mining on a node
//! over JSON-RPC (getblocktemplate/submitblock). Waits for the node while it is unreachable or
//! not ready, checks the payout address against the node's network, and only then starts the
//! devices.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::time::Duration;

use wgminer::mining::runner::UNSUBMITTED_BLOCKS;
use wgminer::mining::{instance_extranonce1, EventSink, NodeGbtSource, SoloConfig, WorkSource};
use wgminer::rpc::{node_network, NodeSource, RpcError};
use wgminer::work::payout::payout_script;

use crate::app::error::UsageError;
use crate::app::mode::solo;
use crate::app::output::{show, write_to, OutputMode, Stream};
use crate::app::plan::NodePlan;
use crate::app::runtime;

/// Waits between attempts while the node is unreachable at start.
const BACKOFF: [u64; 5] = [1, 2, 4, 8, 15];

pub fn run(plan: NodePlan) -> anyhow::Result<()> {
    for note in &plan.notes {
        write_to(Stream::Err, &format!("{note}\n"));
    }
    let mode = plan.mining.output;
    let client = plan.client.clone();
    let addr = plan.coinbase_addr.clone();
    runtime::runtime()?.block_on(async move {
        let stop = runtime::stop_signal();
        tokio::pin!(stop);
        // The network and whether segwit is enforced decide which addresses are safe to pay.
        let network = until_ready(mode, stop.as_mut(), || {
            let c = client.clone();
            async move { node_network(&c).await }
        })
        .await?;
        let Some(network) = network else {
            return Ok(());
        };
        let first = until_ready(mode, stop.as_mut(), || {
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
        let source = NodeGbtSource::new(NodeSource::new(client), network, config)
            .with_coinbase_text(plan.coinbase_text.clone());
        // No data directory: blocks without a verdict go to the working directory.
        let session = solo::session(
            source.label(),
            format!("paying {addr}"),
            PathBuf::from(UNSUBMITTED_BLOCKS),
        );
        let result = runtime::mine(&plan.mining, source, EventSink::channel(), session, stop);
        solo::outcome(result.await?)
    })
}

/// Run `f` until it succeeds, retrying (with backoff, saying why) while the node is down or not
/// ready. `None` when stopped first; an error for what retrying cannot fix.
async fn until_ready<T, Fut>(
    mode: OutputMode,
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
                    mode,
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
