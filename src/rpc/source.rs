//! A node as a block source for [`run_solo`](crate::work::run_solo): `getblocktemplate` (with
//! the segwit rule, falling back for nodes that know no rules), longpoll so a new tip arrives at
//! once, a periodic refresh for new transactions, `submitblock` with the node's verdict, and a
//! fresh template right after each accepted block. A node that goes away is retried with
//! backoff; every failure is reported with the node's own words.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::client::{RpcClient, RpcError};
use crate::work::template::BlockTemplate;
use crate::work::{BlockResult, MinerEvent, SourceLink, TemplateUpdate, Verdict};

/// How often the template is refreshed for new transactions (longpoll brings new tips sooner).
pub const REFRESH: Duration = Duration::from_secs(30);

/// How long one longpoll request may wait before it is sent again. Long: a request given up
/// on keeps one of the node's RPC threads until its tip or mempool changes.
const LONGPOLL_TIMEOUT: Duration = Duration::from_secs(3600);

/// Waits between attempts while the node is unreachable or not ready.
const BACKOFF: [u64; 5] = [1, 2, 4, 8, 15];

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

/// Templates from one node.
pub struct NodeSource {
    client: RpcClient,
    params: GbtParams,
    events: mpsc::UnboundedSender<MinerEvent>,
}

/// Why the node cannot be used at all (retrying will not help).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SourceError(#[from] pub RpcError);

impl NodeSource {
    pub fn new(client: RpcClient, events: mpsc::UnboundedSender<MinerEvent>) -> Self {
        NodeSource {
            client,
            params: GbtParams::Segwit,
            events,
        }
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
        BlockTemplate::from_gbt(&value).map_err(|e| RpcError::BadResponse {
            method: "getblocktemplate".into(),
            why: e.to_string(),
        })
    }

    /// A template, retrying with backoff while the node is down or not ready; each failure is
    /// reported. Errors only for failures that retrying cannot fix, or when `link` closes.
    pub async fn fetch_retrying(&mut self, link: &SourceLink) -> Result<BlockTemplate, RpcError> {
        let mut attempt = 0usize;
        loop {
            match self.fetch(None).await {
                Ok(t) => return Ok(t),
                // A template we cannot use may be followed by one we can: keep asking.
                Err(e) if e.is_transient() || matches!(e, RpcError::BadResponse { .. }) => {
                    let wait = BACKOFF[attempt.min(BACKOFF.len() - 1)];
                    attempt += 1;
                    let _ = self
                        .events
                        .send(MinerEvent::SourceDown(format!("{e}; retrying in {wait} s")));
                    if link.results.is_closed() {
                        return Err(e);
                    }
                    tokio::time::sleep(Duration::from_secs(wait)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// `submitblock`, with the node's answer as a verdict.
    pub async fn submit(&self, hex: &str) -> Verdict {
        match self.client.call("submitblock", json!([hex])).await {
            Ok(Value::Null) => Verdict::Accepted,
            Ok(Value::String(s)) if s == "inconclusive" => Verdict::Stale(
                "inconclusive: valid, but not on the node's best chain (another block came first)"
                    .into(),
            ),
            Ok(Value::String(s)) => Verdict::Rejected(s),
            Ok(other) => Verdict::Rejected(other.to_string()),
            Err(e @ RpcError::Rpc { .. }) => Verdict::Rejected(e.to_string()),
            Err(e) => Verdict::Failed(e.to_string()),
        }
    }

    /// Serve `link` until the miner closes its block channel: templates in, blocks out. Blocks
    /// still queued when it ends (the node was down at shutdown) are logged as hex, never lost
    /// silently.
    pub async fn run(mut self, mut link: SourceLink) -> Result<(), SourceError> {
        let result = self.serve(&mut link).await;
        while let Ok(block) = link.blocks.try_recv() {
            tracing::error!(
                "block {} at height {} was not delivered to the node; submit it by hand: {}",
                block.hash,
                block.height,
                block.to_hex()
            );
        }
        if link.results.is_closed() {
            // The miner stopped first: what the node was doing then no longer matters.
            return Ok(());
        }
        result
    }

    async fn serve(&mut self, link: &mut SourceLink) -> Result<(), SourceError> {
        let mut current = self.fetch_retrying(link).await?;
        if link
            .templates
            .send(TemplateUpdate {
                template: Arc::new(current.clone()),
            })
            .await
            .is_err()
        {
            return Ok(());
        }
        let mut refresh = tokio::time::interval(REFRESH);
        refresh.tick().await;
        // Longpoll runs as its own task on its own connection, so submissions never wait behind
        // it. It is replaced only when the longpoll id changes (the node then answers the old
        // one anyway): an abandoned request would hold one of the node's few RPC threads.
        let (poll_tx, mut poll_rx) = mpsc::channel::<(String, Result<BlockTemplate, RpcError>)>(4);
        let mut poll: Option<LongPoll> = None;
        loop {
            let in_flight = poll.as_ref().map(|p| &p.id);
            if in_flight != current.longpoll_id.as_ref() {
                poll = current
                    .longpoll_id
                    .clone()
                    .map(|id| self.longpoll(id, poll_tx.clone()));
            }
            let next = tokio::select! {
                block = link.blocks.recv() => {
                    let Some(block) = block else { return Ok(()) };
                    let verdict = self.submit(&block.to_hex()).await;
                    if let Verdict::Failed(why) = &verdict {
                        tracing::error!(
                            "block {} at height {} could not be delivered ({why}); submit it by hand: {}",
                            block.hash, block.height, block.to_hex()
                        );
                    }
                    let accepted = verdict == Verdict::Accepted;
                    let _ = link.results.send(BlockResult { hash: block.hash, height: block.height, verdict }).await;
                    if !accepted {
                        continue;
                    }
                    // Our block is the new tip: mine on it at once.
                    self.fetch_retrying(link).await?
                }
                    Some((id, t)) = poll_rx.recv() => {
                    if poll.as_ref().map(|p| &p.id) != Some(&id) {
                        continue; // the answer to a poll already replaced
                    }
                    poll = None;
                    match t {
                        Ok(t) => t,
                        Err(e) => {
                            if !e.is_transient() && !matches!(e, RpcError::BadResponse { .. }) {
                                return Err(e.into());
                            }
                            // A longpoll that timed out or failed: a plain refresh instead,
                            // a moment later so a node that fails every poll is not hammered.
                            tokio::time::sleep(Duration::from_secs(1)).await;
                            self.fetch_retrying(link).await?
                        }
                    }
                },
                _ = refresh.tick() => match self.fetch(None).await {
                    Ok(t) => t,
                    Err(e) if e.is_transient() || matches!(e, RpcError::BadResponse { .. }) => {
                        let _ = self.events.send(MinerEvent::SourceDown(e.to_string()));
                        self.fetch_retrying(link).await?
                    }
                    Err(e) => return Err(e.into()),
                },
            };
            if same_work(&next, &current) {
                current.longpoll_id = next.longpoll_id;
                continue;
            }
            current = next;
            if link
                .templates
                .send(TemplateUpdate {
                    template: Arc::new(current.clone()),
                })
                .await
                .is_err()
            {
                return Ok(());
            }
        }
    }
}

/// A longpoll request in flight; aborted (its connection closed) when dropped.
struct LongPoll {
    id: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for LongPoll {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl NodeSource {
    /// Start a longpoll for `id`; its answer arrives on `tx` tagged with the id.
    fn longpoll(
        &self,
        id: String,
        tx: mpsc::Sender<(String, Result<BlockTemplate, RpcError>)>,
    ) -> LongPoll {
        let mut poller = NodeSource {
            client: self.client.clone(),
            params: self.params,
            events: self.events.clone(),
        };
        let tag = id.clone();
        let task = tokio::spawn(async move {
            let result = poller.fetch(Some(&tag)).await;
            let _ = tx.send((tag, result)).await;
        });
        LongPoll { id, task }
    }
}

/// Whether two templates would give the same block (only the node's clock moved).
fn same_work(a: &BlockTemplate, b: &BlockTemplate) -> bool {
    a.prev_hash == b.prev_hash
        && a.coinbase_value == b.coinbase_value
        && a.bits == b.bits
        && a.version == b.version
        && a.transactions.len() == b.transactions.len()
        && a.transactions
            .iter()
            .zip(&b.transactions)
            .all(|(x, y)| x.txid == y.txid)
}
