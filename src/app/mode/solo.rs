//! What the two solo modes (a node over JSON-RPC, the embedded node core) share: how their run
//! starts and ends on screen, and which of the source's failures are the user's to fix.

use std::path::PathBuf;

use wgminer::mining::{RunConfig, SourceError};
use wgminer::rpc::RpcError;
use wgminer::work::StatsSnapshot;

use crate::app::error::UsageError;
use crate::app::runtime::{Session, DRAIN};

/// The session of a solo run on `label` (the source's), `detail` saying what it pays; blocks
/// left without a verdict go to `blocks_dir`.
pub fn session(label: String, detail: String, blocks_dir: PathBuf) -> Session {
    let sources = vec![label.clone()];
    Session {
        start: Box::new(move |labels| {
            (
                serde_json::json!({"event": "start", "devices": labels, "source": label, "detail": detail}),
                format!(
                    "solo mining on {label} with {}: {detail}",
                    labels.join(", ")
                ),
            )
        }),
        sources,
        run: RunConfig {
            drain: DRAIN,
            blocks_dir,
            ..RunConfig::default()
        },
        summary,
        switch: None,
    }
}

fn summary(snap: &StatsSnapshot) -> String {
    format!(
        "{} blocks accepted, {} rejected, {} stale, {} without a verdict",
        snap.blocks, snap.rejected, snap.stale, snap.unanswered
    )
}

/// The run's end: wrong credentials are bad usage (exit 2), anything else a failure.
pub fn outcome(result: Result<(), SourceError>) -> anyhow::Result<()> {
    match result {
        Ok(()) => Ok(()),
        Err(SourceError::Node(e @ (RpcError::Unauthorized { .. } | RpcError::Cookie { .. }))) => {
            Err(UsageError(e.to_string()).into())
        }
        Err(e) => Err(e.into()),
    }
}
