//! The embedded node core as a work source: templates from the core in this process, each block
//! validated and stored the moment it is found, and the next template built right after it, so
//! the devices leave a solved tip within a millisecond or so.

use std::sync::Arc;
use std::time::Duration;

use super::manager::Found;
use super::solo::{SoloBridge, SoloConfig};
use super::source::{Fate, Solved, SourceError, SourceEvent, SourceLink, WorkSource};
use crate::node::service::{now, MAX_CLOCK_LEAD};
use crate::node::{verdict_for, NodeCore};
use crate::work::template::BlockTemplate;
use crate::work::BlockVerdict;

/// Mines on a [`NodeCore`].
pub struct CoreSource {
    core: Arc<NodeCore>,
    bridge: SoloBridge,
    /// Whether the clock-lead pause was explained already (once is enough).
    warned: bool,
}

impl CoreSource {
    pub fn new(core: Arc<NodeCore>, config: SoloConfig) -> Self {
        CoreSource {
            core,
            bridge: SoloBridge::new(config),
            warned: false,
        }
    }

    /// A template on the current tip. Each block must be later than the median of the last 11
    /// and at most two hours ahead of the clock: at regtest's difficulty a fast miner outruns
    /// the clock in seconds. Then wait for the clock instead of mining blocks the rules refuse.
    /// `None` once the runner is gone.
    async fn template(&mut self, link: &SourceLink) -> Option<BlockTemplate> {
        let c = Arc::clone(&self.core);
        let template = tokio::task::spawn_blocking(move || c.template())
            .await
            .ok()?;
        let ahead = template.min_time.saturating_sub(now());
        if ahead <= MAX_CLOCK_LEAD {
            return Some(template);
        }
        let wait = u64::from(ahead - MAX_CLOCK_LEAD);
        if !self.warned {
            self.warned = true;
            tracing::warn!(
                "blocks come faster than block times may advance (at most 2 h ahead of the clock): pausing {wait} s; --difficulty sets a steadier pace"
            );
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(wait)) => {}
            _ = link.events.closed() => return None,
        }
        let c = Arc::clone(&self.core);
        tokio::task::spawn_blocking(move || c.template()).await.ok()
    }

    /// Mine `template` unless it is the work already being mined (`force`: mine it anyway, the
    /// devices stopped on this tip). False once the runner is gone.
    async fn offer(&mut self, template: BlockTemplate, force: bool, link: &SourceLink) -> bool {
        let same = self
            .bridge
            .current()
            .is_some_and(|c| c.same_work(&template));
        if same && !force {
            return true;
        }
        link.send_all(self.bridge.start(template)).await
    }

    /// Validate and store the block for a solution; false once the runner is gone.
    async fn submit(&mut self, found: Found, link: &SourceLink) -> bool {
        let block = match self.bridge.found(found) {
            Ok((block, event)) => {
                if !link.send(event).await {
                    return false;
                }
                block
            }
            Err(stale) => return link.send(stale).await,
        };
        let verdict = match block.decode() {
            Ok(decoded) => {
                let c = Arc::clone(&self.core);
                match tokio::task::spawn_blocking(move || c.submit(&decoded)).await {
                    Ok(Ok(_)) => BlockVerdict::Accepted,
                    Ok(Err(rejected)) => verdict_for(&rejected.reason),
                    Err(e) => BlockVerdict::Undelivered(format!("node core task failed: {e}")),
                }
            }
            Err(e) => BlockVerdict::Rejected(format!("block decode failed: {e}")),
        };
        let solved = Solved::Block {
            height: block.height,
            hash: block.hash,
        };
        link.send(SourceEvent::Outcome {
            solved,
            fate: Fate::from(verdict),
        })
        .await
    }
}

impl WorkSource for CoreSource {
    fn label(&self) -> String {
        format!("node core {}", self.core.dir().display())
    }

    fn is_solo(&self) -> bool {
        true
    }

    async fn run(mut self, mut link: SourceLink) -> Result<(), SourceError> {
        let mut tips = self.core.subscribe();
        let peer = self.label();
        if !link.send(SourceEvent::Connected { peer }).await {
            return Ok(());
        }
        let mut next = Some(false);
        loop {
            if let Some(force) = next.take() {
                let Some(template) = self.template(&link).await else {
                    return Ok(());
                };
                if !self.offer(template, force, &link).await {
                    return Ok(());
                }
            }
            tokio::select! {
                found = link.solutions.recv() => {
                    let Some(found) = found else { return Ok(()) };
                    if !self.submit(found, &link).await {
                        return Ok(());
                    }
                    // The next block's template at once: on our block if it was taken, else on
                    // the same tip again (the devices stopped on it when the block was found).
                    next = Some(true);
                }
                changed = tips.changed() => {
                    if changed.is_err() {
                        return Ok(());
                    }
                    tips.borrow_and_update();
                    next = Some(false);
                }
                _ = link.events.closed() => return Ok(()),
            }
        }
    }
}

impl From<BlockVerdict> for Fate {
    fn from(v: BlockVerdict) -> Self {
        match v {
            BlockVerdict::Accepted => Fate::Accepted,
            BlockVerdict::Stale(why) => Fate::Stale { held: false, why },
            BlockVerdict::Rejected(why) => Fate::Rejected(why),
            BlockVerdict::Undelivered(why) => Fate::Unanswered(why),
        }
    }
}
