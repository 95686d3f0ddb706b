//! A node over JSON-RPC as a work source (`-o http://…`): `getblocktemplate` with longpoll so a
//! new tip arrives at once, a refresh every [`REFRESH`] for new transactions, `submitblock` with
//! the node's verdict. A node that goes away is retried with backoff, and so is a block that
//! could not be delivered: it is sent again until the node answers or the run ends (then the
//! runner writes it out).
//!
//! A node that answers longpoll at once with the same work (one that ignores the longpoll id)
//! is asked less and less often, up to 5 s apart, instead of hundreds of times a second.
//!
//! A solved tip is left at once: the moment a block is found, the next job is built here from
//! that block (height + 1, an empty block paying the subsidy, the same bits) and mined until the
//! node's own template for the new tip arrives, as pools do.

use std::time::Duration;

use bitcoin::Network;
use tokio::sync::mpsc;

use super::manager::Found;
use super::solo::{SoloBridge, SoloConfig};
use super::source::{Fate, Solved, SourceError, SourceEvent, SourceLink, WorkSource};
use crate::rpc::source::REFRESH;
use crate::rpc::{LongPoll, NodeSource, RpcError, BACKOFF};
use crate::work::template::{BlockTemplate, SolvedBlock};
use crate::work::BlockVerdict;

/// Blocks between retargets on every chain but regtest (Bitcoin Core's
/// `DifficultyAdjustmentInterval()`: two weeks of ten-minute blocks).
const RETARGET_INTERVAL: u32 = 2016;

/// A node's templates, mined with a coinbase paying us.
pub struct NodeGbtSource {
    node: NodeSource,
    network: Network,
    bridge: SoloBridge,
}

/// A block's verdict, from the submission task.
struct Submitted {
    block: SolvedBlock,
    verdict: BlockVerdict,
}

/// Blocks waiting for the submission task (one per tip is ever sent: a few at most).
const SUBMIT_QUEUE: usize = 16;

/// A longpoll answered sooner than this with the same work did not really wait (a node that
/// ignores the longpoll id answers at once, and was asked hundreds of times a second).
const LONGPOLL_REAL_WAIT: Duration = Duration::from_secs(1);

/// The longest wait between longpolls that come back at once without new work.
const LONGPOLL_MAX_PACE: Duration = Duration::from_secs(5);

/// Longpolls answered at once in a row before the operator is told (then at most every
/// [`STORM_NOTE_EVERY`]).
const STORM_NOTE_AFTER: u32 = 5;
const STORM_NOTE_EVERY: Duration = Duration::from_secs(60);

/// Paces longpolls that come back at once with the same work: 0, 0.1, 0.2, 0.4 … up to 5 s
/// between them, back to none once the work changes or a longpoll really waits.
#[derive(Debug, Default)]
struct LongpollPacing {
    /// Longpolls in a row that came back at once with the same work.
    quick: u32,
}

impl LongpollPacing {
    /// A longpoll came back after `waited`, with new work or not: the wait before the next.
    fn answered(&mut self, waited: Duration, new_work: bool) -> Duration {
        if new_work || waited >= LONGPOLL_REAL_WAIT {
            self.quick = 0;
        } else {
            self.quick = self.quick.saturating_add(1);
        }
        self.pace()
    }

    /// The wait before the next longpoll.
    fn pace(&self) -> Duration {
        match self.quick {
            0 | 1 => Duration::ZERO,
            n => Duration::from_millis(100)
                .saturating_mul(1 << (n - 2).min(16))
                .min(LONGPOLL_MAX_PACE),
        }
    }
}

impl NodeGbtSource {
    /// `network`: the node's chain (it decides the subsidy and whether bits can change at the
    /// next height).
    pub fn new(node: NodeSource, network: Network, config: SoloConfig) -> Self {
        NodeGbtSource {
            node: node.with_network(network),
            network,
            bridge: SoloBridge::new(config),
        }
    }

    /// Put `text` in every coinbase scriptSig after the tag (`--coinbase-sig`).
    pub fn with_coinbase_text(mut self, text: Vec<u8>) -> Self {
        self.bridge = self.bridge.with_coinbase_text(text);
        self
    }

    /// A template, retrying with backoff while the node is down or not ready; each failure is
    /// reported. `Ok(None)` once the runner is gone; errors for what retrying cannot fix.
    async fn fetch_retrying(
        &mut self,
        link: &SourceLink,
    ) -> Result<Option<BlockTemplate>, RpcError> {
        let mut attempt = 0usize;
        loop {
            match self.node.fetch(None).await {
                Ok(t) => return Ok(Some(t)),
                // A template we cannot use may be followed by one we can: keep asking.
                Err(e) if e.is_transient() || matches!(e, RpcError::BadResponse { .. }) => {
                    let wait = BACKOFF[attempt.min(BACKOFF.len() - 1)];
                    attempt += 1;
                    if !link
                        .send(SourceEvent::Down(format!("{e}; retrying in {wait} s")))
                        .await
                    {
                        return Ok(None);
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(wait)) => {}
                        _ = link.events.closed() => return Ok(None),
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Mine `template` if it is new work; false once the runner is gone.
    async fn offer(&mut self, template: &BlockTemplate, link: &SourceLink) -> bool {
        if self.bridge.current().is_some_and(|c| c.same_work(template)) {
            return true;
        }
        self.mine(template.clone(), link).await
    }

    /// Mine `template` from now on; false once the runner is gone.
    async fn mine(&mut self, template: BlockTemplate, link: &SourceLink) -> bool {
        link.send_all(self.bridge.start(template)).await
    }

    /// A solution: the block goes to the submission task, and the next job (on top of it) to
    /// the devices at once. False once the runner is gone.
    async fn found(
        &mut self,
        found: Found,
        node_tip: bitcoin::BlockHash,
        link: &SourceLink,
        submit: &mpsc::Sender<SolvedBlock>,
    ) -> bool {
        let block = match self.bridge.announce(found, link).await {
            Ok(Some(block)) => block,
            Ok(None) => return true,
            Err(_) => return false,
        };
        // One block ahead of the node at most: a block on our own not-yet-answered block waits
        // for the node (a refused parent would make the whole private chain worthless).
        if block.header.prev_blockhash == node_tip {
            if let Some(next) = self.successor(&block) {
                if !self.mine(next, link).await {
                    return false;
                }
            }
        }
        if let Err(e) = submit.try_send(block) {
            let block = match e {
                mpsc::error::TrySendError::Full(b) | mpsc::error::TrySendError::Closed(b) => b,
            };
            let solved = Solved::Block {
                height: block.height,
                hash: block.hash,
            };
            let fate = Fate::Unanswered("too many blocks waiting for the node".into());
            return link.send(SourceEvent::Outcome { solved, fate }).await;
        }
        true
    }

    /// The empty block after `block`, where this chain lets us know its bits.
    fn successor(&self, block: &SolvedBlock) -> Option<BlockTemplate> {
        let current = self.bridge.current()?;
        let interval = if self.network == Network::Regtest {
            0
        } else {
            RETARGET_INTERVAL
        };
        // testnet's 20-minute rule: a minimum-difficulty template says nothing about the bits
        // the next block needs.
        let testnet = matches!(self.network, Network::Testnet | Network::Testnet4);
        if testnet && current.bits.to_consensus() == 0x1d00_ffff {
            return None;
        }
        let halving = if self.network == Network::Regtest {
            crate::node::validate::REGTEST_HALVING_INTERVAL
        } else {
            crate::node::validate::MAINNET_HALVING_INTERVAL
        };
        let subsidy = crate::node::validate::subsidy(current.height + 1, halving);
        current.empty_successor(block, subsidy, interval, crate::node::service::now())
    }
}

/// `submitblock`, sent again with backoff while the node cannot be reached, until it answers or
/// the runner is gone (then the runner writes the block out).
async fn submit_retrying(
    node: &NodeSource,
    block: &SolvedBlock,
    events: &mpsc::Sender<SourceEvent>,
) -> BlockVerdict {
    let hex = block.to_hex();
    let mut attempt = 0usize;
    loop {
        let error = match node.submit(&hex).await {
            Ok(verdict) => return verdict,
            Err(e) if e.is_transient() => e,
            Err(e) => return BlockVerdict::Undelivered(e.to_string()),
        };
        let wait = BACKOFF[attempt.min(BACKOFF.len() - 1)];
        attempt += 1;
        let why = format!(
            "block {} at height {} not delivered ({error}); sending it again in {wait} s",
            block.hash, block.height
        );
        if events.send(SourceEvent::Down(why)).await.is_err() {
            return BlockVerdict::Undelivered(error.to_string());
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(wait)) => {}
            _ = events.closed() => return BlockVerdict::Undelivered(error.to_string()),
        }
    }
}

impl WorkSource for NodeGbtSource {
    fn label(&self) -> String {
        format!("node {} ({})", self.node.client().url(), self.network)
    }

    fn is_solo(&self) -> bool {
        true
    }

    async fn run(mut self, mut link: SourceLink) -> Result<(), SourceError> {
        let Some(mut current) = self.fetch_retrying(&link).await? else {
            return Ok(());
        };
        let peer = self.node.client().url().to_string();
        if !link.send(SourceEvent::Connected { peer }).await
            || !self.mine(current.clone(), &link).await
        {
            return Ok(());
        }
        let mut refresh = tokio::time::interval(REFRESH);
        refresh.tick().await;
        // One task sends the blocks, in the order they were found: a block's parent reaches the
        // node before the block does.
        let (submit_tx, mut submit_rx) = mpsc::channel::<SolvedBlock>(SUBMIT_QUEUE);
        let (verdict_tx, mut verdicts) = mpsc::channel::<Submitted>(SUBMIT_QUEUE);
        let submitter = NodeSource::new(self.node.client().clone());
        let events = link.events.clone();
        let submissions = tokio::spawn(async move {
            while let Some(block) = submit_rx.recv().await {
                let verdict = submit_retrying(&submitter, &block, &events).await;
                if verdict_tx.send(Submitted { block, verdict }).await.is_err() {
                    return;
                }
            }
        });
        let _stop_submissions = AbortOnDrop(submissions);
        // Longpoll runs as its own task on its own connection, so submissions never wait behind
        // it. It is replaced only when the longpoll id changes (the node then answers the old
        // one anyway): an abandoned request would hold one of the node's few RPC threads.
        let (poll_tx, mut poll_rx) = mpsc::channel::<(String, Result<BlockTemplate, RpcError>)>(4);
        let mut poll: Option<LongPoll> = None;
        let mut pacing = LongpollPacing::default();
        // The next longpoll waits until then (see `LongpollPacing`).
        let mut poll_at = tokio::time::Instant::now();
        let mut poll_sent = tokio::time::Instant::now();
        let mut storm_noted: Option<tokio::time::Instant> = None;
        let mut taking = true;
        loop {
            let in_flight = poll.as_ref().map(|p| &p.id);
            let paced = current.longpoll_id.is_some() && tokio::time::Instant::now() < poll_at;
            if in_flight != current.longpoll_id.as_ref() && !paced {
                poll = current
                    .longpoll_id
                    .clone()
                    .map(|id| self.node.longpoll(id, poll_tx.clone()));
                poll_sent = tokio::time::Instant::now();
            }
            let next = tokio::select! {
                _ = tokio::time::sleep_until(poll_at), if paced => continue,
                found = link.solutions.recv(), if taking => {
                    match found {
                        Some(found) => {
                            if !self.found(found, current.prev_hash, &link, &submit_tx).await {
                                return Ok(());
                            }
                        }
                        // The run is ending: no more blocks, but verdicts still count.
                        None => taking = false,
                    }
                    continue;
                }
                Some(s) = verdicts.recv() => {
                    let accepted = s.verdict == BlockVerdict::Accepted;
                    let solved = Solved::Block { height: s.block.height, hash: s.block.hash };
                    let fate = Fate::from(s.verdict);
                    if !link.send(SourceEvent::Outcome { solved, fate }).await {
                        return Ok(());
                    }
                    if !taking {
                        continue;
                    }
                    // Accepted: the node's template for our block (fuller than the empty one
                    // we mine now). Otherwise the tip we mined on is not the node's: back to
                    // the node's.
                    let Some(t) = self.fetch_retrying(&link).await? else { return Ok(()) };
                    if !accepted {
                        current = t;
                        if !self.mine(current.clone(), &link).await {
                            return Ok(());
                        }
                        continue;
                    }
                    t
                }
                Some((id, t)) = poll_rx.recv() => {
                    if poll.as_ref().map(|p| &p.id) != Some(&id) {
                        continue; // the answer to a poll already replaced
                    }
                    poll = None;
                    match t {
                        Ok(t) => {
                            let wait = pacing.answered(poll_sent.elapsed(), !current.same_work(&t));
                            poll_at = tokio::time::Instant::now() + wait;
                            let due = storm_noted.is_none_or(|at| at.elapsed() >= STORM_NOTE_EVERY);
                            if pacing.quick >= STORM_NOTE_AFTER && due {
                                storm_noted = Some(tokio::time::Instant::now());
                                tracing::warn!(
                                    "the node at {} answers longpoll at once without a new template ({} times in a row): waiting up to {} s between longpolls until its template changes",
                                    self.node.client().url(),
                                    pacing.quick,
                                    LONGPOLL_MAX_PACE.as_secs()
                                );
                            }
                            t
                        }
                        Err(e) => {
                            if !e.is_transient() && !matches!(e, RpcError::BadResponse { .. }) {
                                return Err(e.into());
                            }
                            // A longpoll that timed out or failed: a plain refresh instead,
                            // a moment later so a node that fails every poll is not hammered.
                            tokio::time::sleep(Duration::from_secs(1)).await;
                            let Some(t) = self.fetch_retrying(&link).await? else { return Ok(()) };
                            t
                        }
                    }
                },
                _ = refresh.tick() => match self.node.fetch(None).await {
                    Ok(t) => t,
                    Err(e) if e.is_transient() || matches!(e, RpcError::BadResponse { .. }) => {
                        let _ = link.send(SourceEvent::Down(e.to_string())).await;
                        let Some(t) = self.fetch_retrying(&link).await? else { return Ok(()) };
                        t
                    }
                    Err(e) => return Err(e.into()),
                },
                _ = link.events.closed() => return Ok(()),
            };
            let same = current.same_work(&next);
            if !same {
                pacing = LongpollPacing::default();
                poll_at = tokio::time::Instant::now();
            }
            current = if same {
                BlockTemplate {
                    longpoll_id: next.longpoll_id,
                    ..current
                }
            } else {
                next
            };
            if !same && taking && !self.offer(&current, &link).await {
                return Ok(());
            }
        }
    }
}

/// Aborts a task when dropped (the source's helpers end with it).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longpolls_answered_at_once_are_paced_up_to_five_seconds_and_reset_by_new_work() {
        let mut p = LongpollPacing::default();
        let at_once = Duration::from_millis(2);
        let waits: Vec<u64> = (0..10)
            .map(|_| p.answered(at_once, false).as_millis() as u64)
            .collect();
        assert_eq!(waits, [0, 100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000]);
        // Thousands in a row stay at the cap (no overflow).
        for _ in 0..100_000 {
            p.answered(at_once, false);
        }
        assert_eq!(p.pace(), LONGPOLL_MAX_PACE);
        // New work, or a longpoll that really waited, ends the pacing.
        assert_eq!(p.answered(at_once, true), Duration::ZERO);
        assert_eq!(p.answered(at_once, false), Duration::ZERO);
        assert_eq!(p.answered(at_once, false), Duration::from_millis(100));
        assert_eq!(p.answered(Duration::from_secs(30), false), Duration::ZERO);
        assert_eq!(p.quick, 0);
    }
}
