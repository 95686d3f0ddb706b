//! A node's mining calls: `getblocktemplate` (with the segwit rule, falling back for nodes that
//! know no rules), longpoll requests, and `submitblock` with the node's verdict. The work source
//! that schedules them (refresh, retries, the next job after a block) is
//! `mining::NodeGbtSource`.

use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::client::{RpcClient, RpcError};
use crate::work::template::BlockTemplate;
use crate::work::BlockVerdict;

/// How often the template is refreshed for new transactions (longpoll brings new tips sooner).
pub const REFRESH: Duration = Duration::from_secs(30);

/// How long one longpoll request may wait before it is sent again. Long: a request given up
/// on keeps one of the node's RPC threads until its tip or mempool changes.
const LONGPOLL_TIMEOUT: Duration = Duration::from_secs(3600);

/// Waits between attempts while the node is unreachable or not ready.
pub const BACKOFF: [u64; 5] = [1, 2, 4, 8, 15];

/// Which `getblocktemplate` parameters the node accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum GbtParams {
    /// `{"rules": ["segwit"]}`: Bitcoin Core requires it since 0.17.
    Segwit,
    /// `{}`: for nodes that refuse the rules list.
    Plain,
}

impl GbtParams {
    fn request(self, longpoll_id: Option<&str>) -> Value {
        let mut req = match self {
            GbtParams::Segwit => json!({"rules": ["segwit"]}),
            GbtParams::Plain => json!({}),
        };
        if let Some(id) = longpoll_id {
            req["longpollid"] = json!(id);
        }
        json!([req])
    }
}

/// The node's chain, from `getblockchaininfo`, as rust-bitcoin names networks.
pub async fn node_network(client: &RpcClient) -> Result<bitcoin::Network, RpcError> {
    let info = client.call("getblockchaininfo", json!([])).await?;
    let chain = info
        .get("chain")
        .and_then(Value::as_str)
        .ok_or_else(|| RpcError::BadResponse {
            method: "getblockchaininfo".into(),
            why: "no \"chain\"".into(),
        })?;
    match chain {
        "main" => Ok(bitcoin::Network::Bitcoin),
        "test" | "testnet3" => Ok(bitcoin::Network::Testnet),
        "testnet4" => Ok(bitcoin::Network::Testnet4),
        "signet" => Ok(bitcoin::Network::Signet),
        "regtest" => Ok(bitcoin::Network::Regtest),
        other => Err(RpcError::BadResponse {
            method: "getblockchaininfo".into(),
            why: format!("unknown chain {other:?}"),
        }),
    }
}

/// Templates from one node, and blocks to it.
pub struct NodeSource {
    client: RpcClient,
    params: GbtParams,
    /// The node's chain: its templates' bits are held to this chain's proof-of-work limit.
    network: bitcoin::Network,
}

impl NodeSource {
    /// A node of any chain (bits are held to regtest's limit, the easiest) until
    /// [`Self::with_network`] says which.
    pub fn new(client: RpcClient) -> Self {
        NodeSource {
            client,
            params: GbtParams::Segwit,
            network: bitcoin::Network::Regtest,
        }
    }

    /// The node is on `network` (from [`node_network`]): templates easier than its
    /// proof-of-work limit are refused.
    pub fn with_network(self, network: bitcoin::Network) -> Self {
        NodeSource { network, ..self }
    }

    pub fn client(&self) -> &RpcClient {
        &self.client
    }

    /// One template, as the node sends it. Falls back to plain parameters once if the node
    /// refuses the rules list (an invalid-parameter error).
    pub async fn fetch(&mut self, longpoll_id: Option<&str>) -> Result<BlockTemplate, RpcError> {
        let timeout = if longpoll_id.is_some() {
            LONGPOLL_TIMEOUT
        } else {
            super::client::CALL_TIMEOUT
        };
        let result = self
            .client
            .call_timeout(
                "getblocktemplate",
                self.params.request(longpoll_id),
                timeout,
            )
            .await;
        let value = match result {
            Err(RpcError::Rpc { code: -8 | -3, .. }) if self.params == GbtParams::Segwit => {
                self.params = GbtParams::Plain;
                self.client
                    .call_timeout(
                        "getblocktemplate",
                        self.params.request(longpoll_id),
                        timeout,
                    )
                    .await?
            }
            r => r?,
        };
        BlockTemplate::from_gbt_on(&value, self.network).map_err(|e| RpcError::BadResponse {
            method: "getblocktemplate".into(),
            why: e.to_string(),
        })
    }

    /// `submitblock`, with the node's answer as a verdict; an error when the block may not
    /// have reached the node (it can be sent again: a node that has it answers `duplicate`).
    pub async fn submit(&self, hex: &str) -> Result<BlockVerdict, RpcError> {
        match self.client.call("submitblock", json!([hex])).await {
            Ok(Value::Null) => Ok(BlockVerdict::Accepted),
            Ok(Value::String(s)) if s == "inconclusive" => Ok(BlockVerdict::Stale(
                "inconclusive: valid, but not on the node's best chain (another block came first)"
                    .into(),
            )),
            Ok(Value::String(s)) => Ok(BlockVerdict::Rejected(s)),
            Ok(other) => Ok(BlockVerdict::Rejected(other.to_string())),
            Err(e @ RpcError::Rpc { .. }) => Ok(BlockVerdict::Rejected(e.to_string())),
            Err(e) => Err(e),
        }
    }
}

/// A longpoll request in flight; aborted (its connection closed) when dropped.
pub struct LongPoll {
    pub id: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for LongPoll {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl NodeSource {
    /// Start a longpoll for `id`; its answer arrives on `tx` tagged with the id. The request is
    /// abandoned (its connection closed) when the returned [`LongPoll`] is dropped.
    pub fn longpoll(
        &self,
        id: String,
        tx: mpsc::Sender<(String, Result<BlockTemplate, RpcError>)>,
    ) -> LongPoll {
        let mut poller = NodeSource {
            client: self.client.clone(),
            params: self.params,
            network: self.network,
        };
        let tag = id.clone();
        let task = tokio::spawn(async move {
            let result = poller.fetch(Some(&tag)).await;
            let _ = tx.send((tag, result)).await;
        });
        LongPoll { id, task }
    }
}
