//! The embedded node core as the run modes use it: opening its chain from the plan and
//! serving its JSON-RPC (plain `wgminer --rpc-bind …` and `wgminer node`).

use std::sync::Arc;

use wgminer::node::sv2_tp::TemplateProvider;
use wgminer::node::{self, rpc_server, Chain, NodeCore};

use crate::app::output::{show, OutputMode};
use crate::app::plan::CorePlan;

/// Open (or create) the chain the plan names.
pub fn open(plan: &CorePlan) -> anyhow::Result<Arc<NodeCore>> {
    let chain = Chain::open(&node::chain_dir(&plan.data_dir), plan.params.clone())?;
    Ok(NodeCore::new(chain))
}

/// Serve Stratum V2 templates from the core on `bind` and say where, with the authority key a
/// pool's config needs.
pub async fn start_tp(
    mode: OutputMode,
    core: &Arc<NodeCore>,
    bind: std::net::SocketAddr,
) -> anyhow::Result<TemplateProvider> {
    let tp = TemplateProvider::start(Arc::clone(core), bind).await?;
    let key = tp.authority_public_key().to_string();
    let created = if tp.key_created() {
        " (a new key, kept in the chain directory)"
    } else {
        ""
    };
    show(
        mode,
        &serde_json::json!({"event": "sv2_tp", "bind": tp.addr().to_string(), "authority_public_key": key}),
        &format!(
            "Stratum V2 Template Provider on {}: authority_public_key = \"{key}\"{created}",
            tp.addr()
        ),
    );
    Ok(tp)
}

/// Serve the core's JSON-RPC on `bind` and say where (and where its cookie is).
pub async fn start_rpc(
    mode: OutputMode,
    core: &Arc<NodeCore>,
    bind: std::net::SocketAddr,
) -> anyhow::Result<rpc_server::RpcServer> {
    start_rpc_with(mode, core, bind, rpc_server::RpcExtras::default()).await
}

/// [`start_rpc`] with the node-developer methods `extras` makes possible.
pub async fn start_rpc_with(
    mode: OutputMode,
    core: &Arc<NodeCore>,
    bind: std::net::SocketAddr,
    extras: rpc_server::RpcExtras,
) -> anyhow::Result<rpc_server::RpcServer> {
    let server =
        rpc_server::RpcServer::start_with(Arc::clone(core), bind, rpc_server::LIMITS, extras)
            .await?;
    show(
        mode,
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
