//! What solo mining adds to a block source (a node over JSON-RPC, or the embedded node core):
//! [`SoloBridge`] turns templates into jobs whose coinbase pays us (a new previous block is a
//! clean job, a refresh of the same tip is not) and a verified solution into the full block for
//! the node. Both block sources use it, so the runner sees jobs and solutions like any source's.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bitcoin::{BlockHash, ScriptBuf};

use super::manager::Found;
use super::source::{Fate, Solved, SourceEvent, SourceLink};
use crate::work::template::{BlockTemplate, SoloJob, SolvedBlock, SOLO_EXTRANONCE1_SIZE};

/// Solo jobs remembered for assembling blocks (older ones are no longer live in the manager).
pub(crate) const KEPT_JOBS: usize = 16;

/// The runner has stopped listening: the source should end.
#[derive(Debug)]
pub struct RunnerGone;

/// How to build coinbases.
#[derive(Clone, Debug)]
pub struct SoloConfig {
    /// The output script every coinbase pays (checked against the node's network beforehand).
    pub payout: ScriptBuf,
    /// Tells this miner instance's coinbases apart from any other's.
    pub extranonce1: [u8; SOLO_EXTRANONCE1_SIZE],
}

/// Four bytes that differ between miner processes (the clock and the process id, hashed).
pub fn instance_extranonce1() -> [u8; SOLO_EXTRANONCE1_SIZE] {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    let v = h.finish().to_le_bytes();
    [v[0], v[1], v[2], v[3]]
}

/// Templates to jobs, solutions to blocks.
pub struct SoloBridge {
    config: SoloConfig,
    /// The miner's text in every coinbase scriptSig (`--coinbase-sig`), often empty.
    coinbase_text: Vec<u8>,
    /// Recent jobs, newest last (shared with the runner, which can assemble blocks too).
    jobs: VecDeque<Arc<SoloJob>>,
    next_id: u64,
    /// The previous block the current job builds on.
    tip: Option<BlockHash>,
    /// When mining on the current tip started: the "time to find" of its block.
    tip_since: Instant,
    /// The template the current job came from.
    current: Option<Arc<BlockTemplate>>,
}

impl SoloBridge {
    pub fn new(config: SoloConfig) -> Self {
        SoloBridge {
            config,
            coinbase_text: Vec::new(),
            jobs: VecDeque::new(),
            next_id: 0,
            tip: None,
            tip_since: Instant::now(),
            current: None,
        }
    }

    /// Put `text` in every coinbase scriptSig after the tag (checked for length by the
    /// caller; a template it does not fit is refused with the scriptSig's length).
    pub fn with_coinbase_text(mut self, text: Vec<u8>) -> Self {
        self.coinbase_text = text;
        self
    }

    /// This job's extranonce1: the instance's, mixed with the job's sequence number. Every job
    /// rolls extranonce2 from 0 again, so two jobs made from the same template (a refresh, the
    /// node's template after our own empty one, a tip mined again after a refused block) would
    /// otherwise hash the very same headers and find the very same blocks twice.
    fn job_extranonce1(&self) -> [u8; SOLO_EXTRANONCE1_SIZE] {
        let instance = u32::from_le_bytes(self.config.extranonce1);
        // An odd multiplier spreads consecutive numbers over all 32 bits (Knuth's golden ratio).
        let mixed = instance ^ (self.next_id as u32).wrapping_mul(0x9e37_79b1);
        mixed.to_le_bytes()
    }

    /// The template the current job came from.
    pub fn current(&self) -> Option<&Arc<BlockTemplate>> {
        self.current.as_ref()
    }

    /// A template as the events that start mining it (the display's `Template`, then the
    /// `Job`); an error says why it cannot be mined (e.g. coinbase flags too long).
    pub fn job_for(&mut self, template: Arc<BlockTemplate>) -> Result<[SourceEvent; 2], String> {
        let height = template.height;
        self.next_id += 1;
        let id = format!("{:x}", self.next_id);
        let solo = template
            .solo_job_with_text(
                id,
                &self.config.payout,
                self.job_extranonce1(),
                &self.coinbase_text,
            )
            .map_err(|e| format!("template for height {height} cannot be mined: {e}"))?;
        let prepared = solo
            .job
            .clone()
            .prepare()
            .map_err(|e| format!("template for height {height} cannot be mined: {e}"))?;
        let clean = self.tip != Some(template.prev_hash);
        if clean {
            self.tip = Some(template.prev_hash);
            self.tip_since = Instant::now();
        }
        let solo = Arc::new(solo);
        self.jobs.push_back(Arc::clone(&solo));
        if self.jobs.len() > KEPT_JOBS {
            self.jobs.pop_front();
        }
        let shown = SourceEvent::Template {
            height,
            prev_hash: template.prev_hash,
            transactions: template.transactions.len(),
            clean,
            difficulty: crate::pow::difficulty_of_target(&template.target),
        };
        self.current = Some(template);
        let job = SourceEvent::Job {
            job: Arc::new(prepared),
            clean,
            solo: Some(solo),
        };
        Ok([shown, job])
    }

    /// The events that start mining `template`: the display's `Template` and the `Job`, or a
    /// message saying why it cannot be mined.
    pub fn start(&mut self, template: BlockTemplate) -> Vec<SourceEvent> {
        match self.job_for(Arc::new(template)) {
            Ok(events) => events.into(),
            Err(why) => vec![SourceEvent::Message(why)],
        }
    }

    /// The block a solution makes, with the `BlockFound` event that announces it; or, when there
    /// is none, the outcome that says why (the solution is stale).
    pub fn found(&self, found: Found) -> Result<(SolvedBlock, SourceEvent), SourceEvent> {
        match self.block_for(&found) {
            Ok((block, after)) => {
                let event = SourceEvent::BlockFound {
                    device: found.device,
                    height: block.height,
                    hash: block.hash,
                    after,
                    hex: block.to_hex(),
                };
                Ok((block, event))
            }
            Err(why) => Err(SourceEvent::Outcome {
                solved: Solved::Share(found.share),
                fate: Fate::Stale { held: false, why },
            }),
        }
    }

    /// Tell the runner what a solution makes: the block (`BlockFound`), returned for the source
    /// to store or submit, or, when there is none, the solution's stale outcome (`Ok(None)`).
    /// `Err(RunnerGone)` once the runner no longer listens.
    pub async fn announce(
        &self,
        found: Found,
        link: &SourceLink,
    ) -> Result<Option<SolvedBlock>, RunnerGone> {
        let (block, event) = match self.found(found) {
            Ok(made) => made,
            Err(stale) => {
                return link.send(stale).await.then_some(None).ok_or(RunnerGone);
            }
        };
        link.send(event)
            .await
            .then_some(Some(block))
            .ok_or(RunnerGone)
    }

    /// The block a solution makes, and how long its tip was mined; an error if the job is gone
    /// or the block cannot be assembled (a bug: the hit was verified against this job).
    fn block_for(&self, found: &Found) -> Result<(SolvedBlock, Duration), String> {
        let job = solo_job_of(&self.jobs, found)
            .ok_or_else(|| format!("job {} is no longer known", found.share.job_id))?;
        let block = job
            .block(&found.share)
            .map_err(|e| format!("cannot assemble the block for a verified solution: {e}"))?;
        let after = if self.tip == Some(job.template.prev_hash) {
            self.tip_since.elapsed()
        } else {
            Duration::ZERO
        };
        Ok((block, after))
    }
}

/// The job among `jobs` (newest last) that a solution was found for.
pub(crate) fn solo_job_of<'a>(
    jobs: &'a VecDeque<Arc<SoloJob>>,
    found: &Found,
) -> Option<&'a Arc<SoloJob>> {
    jobs.iter()
        .rev()
        .find(|j| j.job.id == found.share.job_id && j.job.prev_hash == found.job.job().prev_hash)
}
