//! The one run loop: a [`WorkSource`] beside a [`Manager`]. Jobs and difficulty go to the
//! manager; each verified solution goes to the source the moment it arrives (a block for a tip
//! makes every device leave that tip at once); every solution's fate is counted in
//! [`MiningStats`] and shown through the [`EventSink`].
//!
//! Back-pressure, not deadlock: the runner never waits on the source. Solutions are offered with
//! `try_send`; beyond the source's queue, or beyond the share-rate cap ([`RunConfig::max_share_rate`],
//! pools only), they are counted stale with that reason. So a pool at a tiny difficulty costs CPU
//! time for hashing and verifying, never memory, and the source keeps reading its peer.
//!
//! Shutdown: the devices stop, the solutions they already found are handed over, then the
//! source gets up to [`RunConfig::drain`] to answer what is pending. What is still pending then
//! is counted unanswered, what is held is counted stale, and a block without a verdict is
//! written out: its hex in the log and in a file under [`RunConfig::blocks_dir`].
//!
//! A block is never lost to its source: the runner keeps each block solution it hands over
//! until the source announces the block, and the template of each solo job, so a block that
//! sits unread in a source busy retrying, or whose source stopped, failed or panicked, is
//! assembled and written out here. A source task that fails or panics ends the run (with its
//! error); it is not restarted.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bitcoin::BlockHash;
use tokio::sync::mpsc;

use super::events::{EventSink, MinerEvent};
use super::manager::{Found, Manager};
use super::solo::{solo_job_of, KEPT_JOBS};
use super::source::{self, Fate, Solved, SourceError, SourceEvent, WorkSource};
use crate::work::stats::Verdict;
use crate::work::{BlockVerdict, MiningStats, PreparedJob, Share, SoloJob};

/// Where blocks without a verdict are written, unless the run has a data directory: a folder
/// of this name in the working directory.
pub const UNSUBMITTED_BLOCKS: &str = crate::node::datadir::UNSUBMITTED_BLOCKS;

/// How a run behaves at its edges.
#[derive(Clone, Debug)]
pub struct RunConfig {
    /// After the stop signal, how long the source gets to answer what was just handed over.
    pub drain: Duration,
    /// Most shares a second handed to a pool (a burst of twice that is allowed); beyond, they
    /// are counted stale ("over the share-rate cap"). No pool credits a flood, and a pool that
    /// sets a tiny difficulty must not make the miner flood it.
    pub max_share_rate: f64,
    /// Solo: where a block without a verdict is written, as `<height>-<hash>.hex` (created
    /// when needed).
    pub blocks_dir: PathBuf,
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            drain: Duration::from_secs(3),
            max_share_rate: 200.0,
            blocks_dir: PathBuf::from(UNSUBMITTED_BLOCKS),
        }
    }
}

/// Blocks without a verdict kept for writing out (one per tip is ever sent; this bounds a
/// node that never answers).
const KEPT_BLOCKS: usize = 64;

/// Why a solution over the share-rate cap is stale.
const CAP_REASON: &str = "over the share-rate cap";

/// How often dropped solutions are summed up in one line.
const DROP_REPORT: Duration = Duration::from_secs(10);

/// How long the source task gets to end once the runner is done with it.
const SOURCE_CLOSE: Duration = Duration::from_secs(2);

/// How a run ended: its counters, and the source's error if it failed for good.
#[derive(Debug)]
pub struct RunOutcome {
    pub stats: Arc<MiningStats>,
    pub result: Result<(), SourceError>,
}

/// Mine from `source` with `manager`'s devices until `shutdown` completes or the source ends.
pub async fn run<S: WorkSource>(
    source: S,
    mut manager: Manager,
    shutdown: impl Future<Output = ()>,
    config: RunConfig,
) -> RunOutcome {
    let stats = manager.stats();
    let solo = source.is_solo();
    if solo {
        stats.set_solo();
    }
    stats.set_pool(Some(source.label()), false);
    let (mut link, source_link) = source::link(Arc::clone(&stats));
    let mut task = tokio::spawn(source.run(source_link));
    let mut runner = Runner {
        stats: Arc::clone(&stats),
        events: manager.events(),
        solo,
        solutions: Some(link.solutions.clone()),
        bucket: TokenBucket::new(config.max_share_rate),
        solved_tip: None,
        blocks: HashMap::new(),
        solo_jobs: VecDeque::new(),
        unannounced: HashMap::new(),
        in_flight: HashMap::new(),
        blocks_dir: config.blocks_dir.clone(),
        connected: false,
        dropped: 0,
        dropped_why: "",
        dropped_reported: Instant::now(),
    };
    drop(link.solutions);
    tokio::pin!(shutdown);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut ended = None;
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            _ = tick.tick() => {
                stats.sample();
                runner.report_dropped();
            }
            ev = link.events.recv() => match ev {
                Some(ev) => runner.source_event(Some(&mut manager), ev),
                None => break,
            },
            f = manager.next_found() => match f {
                Some(f) => {
                    let live = manager.is_live(&f.job);
                    runner.found(Some(&mut manager), live, f);
                }
                None => break,
            },
            r = &mut task => {
                ended = Some(r);
                break;
            }
        }
    }
    // Stop hashing (joining threads waits for at most one dispatch or slice), then hand in what
    // was already found.
    let live = manager.live_jobs().to_vec();
    let found = tokio::task::spawn_blocking(move || manager.stop())
        .await
        .unwrap_or_default();
    for f in found {
        let is_live = live.iter().any(|j| Arc::ptr_eq(j, &f.job));
        runner.found(None, is_live, f);
    }
    runner.solutions = None;
    if ended.is_none() {
        let deadline = tokio::time::Instant::now() + config.drain;
        while stats.pending.load(Ordering::Relaxed) > 0 {
            tokio::select! {
                ev = link.events.recv() => match ev {
                    Some(ev) => runner.source_event(None, ev),
                    None => break,
                },
                _ = tokio::time::sleep_until(deadline) => break,
                r = &mut task => {
                    ended = Some(r);
                    break;
                }
            }
        }
    }
    if ended.is_some() {
        // The source ended: what it said last is still queued (select! may see the task end
        // before the events it sent just before).
        while let Ok(ev) = link.events.try_recv() {
            runner.source_event(None, ev);
        }
    }
    // Done with the source: it sees its events channel close and ends.
    drop(link.events);
    let result = match ended {
        Some(r) => r,
        None => match tokio::time::timeout(SOURCE_CLOSE, &mut task).await {
            Ok(r) => r,
            Err(_) => {
                task.abort();
                Ok(Ok(()))
            }
        },
    };
    runner.settle_at_exit();
    stats.sample();
    let result = match result {
        Ok(r) => r,
        Err(e) => Err(SourceError::Failed(format!("work source task failed: {e}"))),
    };
    RunOutcome { stats, result }
}

/// The runner's state between events.
struct Runner {
    stats: Arc<MiningStats>,
    events: EventSink,
    solo: bool,
    /// To the source; `None` once the run is ending.
    solutions: Option<mpsc::Sender<Found>>,
    bucket: TokenBucket,
    /// Solo: the tip a block was sent for (later solutions on it would only compete with it).
    solved_tip: Option<BlockHash>,
    /// Solo: blocks sent and not yet answered, as hex, so none is lost without a word.
    blocks: HashMap<BlockHash, (u32, String)>,
    /// Solo: the recent jobs' templates, newest last, to assemble a block the source did not.
    solo_jobs: VecDeque<Arc<SoloJob>>,
    /// Solo: block solutions handed to the source and not yet announced by it as a block
    /// (`BlockFound`) or settled: a source busy retrying, or one that dies, may never do so.
    unannounced: HashMap<BlockHash, Found>,
    /// Solutions handed over and waiting for a verdict: who found each and its difficulty, to
    /// book it when the verdict comes (at most [`MAX_IN_FLIGHT`]; beyond, only the plain counters).
    in_flight: HashMap<InFlightKey, Credit>,
    /// Where blocks without a verdict are written.
    blocks_dir: PathBuf,
    /// Whether the source says its peer is connected.
    connected: bool,
    /// Solutions dropped without a line since the last summary, and the last reason.
    dropped: u64,
    dropped_why: &'static str,
    dropped_reported: Instant,
}

/// A handed-over solution, as its verdict names it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum InFlightKey {
    Share(Share),
    Block(BlockHash),
}

/// Who found a handed-over solution, what it is worth, and when it was handed over.
#[derive(Clone, Copy, Debug)]
struct Credit {
    device: usize,
    difficulty: f64,
    sent: Instant,
}

/// Verdicts awaited with their difficulty kept; a pool that never answers cannot grow it beyond.
const MAX_IN_FLIGHT: usize = 8192;

/// The difficulty a solution is booked at: its job's share target's.
fn found_difficulty(f: &Found) -> f64 {
    crate::pow::difficulty_of_target(&f.job.job().share_target)
}

impl Runner {
    fn emit(&self, e: MinerEvent) {
        self.events.emit(e);
    }

    fn stale(&self, f: &Found, why: &str) {
        self.stats.record_stale(why);
        self.stats
            .book(f.device.index, found_difficulty(f), Verdict::Stale);
        if !self.solo {
            self.emit(MinerEvent::Stale {
                share: f.share.clone(),
                why: why.into(),
            });
        }
    }

    /// Counted stale without a line each: a flood (a pool at a tiny difficulty) would print
    /// thousands a second. [`Runner::report_dropped`] sums them up now and then.
    fn dropped(&mut self, f: &Found, why: &'static str) {
        self.stats.record_stale(why);
        self.stats
            .book(f.device.index, found_difficulty(f), Verdict::Stale);
        self.dropped += 1;
        self.dropped_why = why;
    }

    /// One line for the solutions dropped since the last one, at most every [`DROP_REPORT`].
    fn report_dropped(&mut self) {
        if self.dropped == 0 || self.dropped_reported.elapsed() < DROP_REPORT {
            return;
        }
        let n = std::mem::take(&mut self.dropped);
        self.dropped_reported = Instant::now();
        let advice = if self.dropped_why == CAP_REASON {
            format!(
                "; the pool's difficulty is too low for this miner (at most {} shares a second are sent): ask for more with --suggest-diff",
                self.bucket.rate
            )
        } else {
            String::new()
        };
        self.emit(MinerEvent::Notice(format!(
            "{n} solutions counted stale, not sent ({}){advice}",
            self.dropped_why
        )));
    }

    /// A verified solution: to the source, or counted stale with why not.
    fn found(&mut self, manager: Option<&mut Manager>, live: bool, f: Found) {
        if !live {
            return self.stale(&f, "job replaced");
        }
        if self.solo {
            if self.solved_tip == Some(f.job.job().prev_hash) {
                return self.stale(&f, "tip already solved");
            }
        } else if !self.bucket.take() {
            return self.dropped(&f, CAP_REASON);
        }
        let Some(solutions) = &self.solutions else {
            if self.solo && f.is_block() {
                return self.save_unsent(&f, "found as the run was ending");
            }
            return self.stale(&f, "run ended");
        };
        let latency = f.started.elapsed();
        let (device, share, job) = (f.device.clone(), f.share.clone(), Arc::clone(&f.job));
        let key = if self.solo && f.is_block() {
            InFlightKey::Block(f.hash)
        } else {
            InFlightKey::Share(f.share.clone())
        };
        let credit = Credit {
            device: f.device.index,
            difficulty: found_difficulty(&f),
            sent: Instant::now(),
        };
        let block = (self.solo && f.is_block()).then(|| f.clone());
        match solutions.try_send(f) {
            Ok(()) => {
                self.stats.record_hand_over(latency);
                if self.in_flight.len() < MAX_IN_FLIGHT {
                    self.in_flight.insert(key, credit);
                }
                if let Some(b) = block {
                    self.keep_unannounced(b);
                }
                if self.solo {
                    // Every device leaves the solved tip now; the source sends the next job.
                    self.solved_tip = Some(job.job().prev_hash);
                    if let Some(m) = manager {
                        m.tip_solved(&job);
                    }
                } else if self.connected {
                    // Not "submitted" while the pool is unreachable: the client holds it, and
                    // says so.
                    self.emit(MinerEvent::Submitted {
                        device,
                        share,
                        latency,
                    });
                }
            }
            Err(mpsc::error::TrySendError::Full(f)) => match block {
                Some(_) => self.save_unsent(&f, "the work source's queue was full"),
                None => self.dropped(&f, "source queue full"),
            },
            Err(mpsc::error::TrySendError::Closed(f)) => match block {
                Some(_) => self.save_unsent(&f, "the work source had stopped"),
                None => self.stale(&f, "source stopped"),
            },
        }
    }

    /// Remember a block solution until its source announces the block; beyond
    /// [`KEPT_BLOCKS`] (a source that never reads), one is written out now instead.
    fn keep_unannounced(&mut self, f: Found) {
        if self.unannounced.len() >= KEPT_BLOCKS {
            if let Some(old) = self.unannounced.keys().next().copied() {
                if let Some(old) = self.unannounced.remove(&old) {
                    self.write_out_found(&old, "its work source has not passed it on yet");
                }
            }
        }
        self.unannounced.insert(f.hash, f);
    }

    /// A block solution the source never got: assembled and written out here, counted
    /// unanswered.
    fn save_unsent(&mut self, f: &Found, why: &str) {
        self.stats.record_unsent_block();
        self.write_out_found(f, why);
    }

    /// Assemble the block for a solution from its job's template and write it out.
    fn write_out_found(&self, f: &Found, why: &str) {
        let Some(job) = solo_job_of(&self.solo_jobs, f) else {
            tracing::error!(
                "block {} found on job {} cannot be written out ({why}): the job's template is no longer known",
                f.hash,
                f.share.job_id
            );
            return;
        };
        match job.block(&f.share) {
            Ok(block) => write_out_block(
                &self.blocks_dir,
                block.height,
                block.hash,
                &block.to_hex(),
                why,
            ),
            Err(e) => tracing::error!(
                "block {} found on job {} cannot be assembled ({why}): {e}",
                f.hash,
                f.share.job_id
            ),
        }
    }

    /// One event from the source; `manager` is `None` once the devices have stopped.
    fn source_event(&mut self, manager: Option<&mut Manager>, ev: SourceEvent) {
        match ev {
            SourceEvent::Connected { peer } => {
                self.connected = true;
                if self.solo {
                    self.stats.set_pool(None, true);
                } else {
                    self.stats.set_pool(Some(peer.clone()), true);
                    self.emit(MinerEvent::Connected { pool: peer });
                }
            }
            SourceEvent::Disconnected { reason } => {
                self.connected = false;
                self.stats.set_pool(None, false);
                self.emit(MinerEvent::Disconnected { reason });
            }
            SourceEvent::Job { job, clean, solo } => {
                if let Some(solo) = solo {
                    self.solo_jobs.push_back(solo);
                    if self.solo_jobs.len() > KEPT_JOBS {
                        self.solo_jobs.pop_front();
                    }
                }
                self.job(manager, job, clean)
            }
            SourceEvent::Difficulty(d) => {
                self.stats.set_difficulty(d);
                self.emit(MinerEvent::DifficultyChanged(d));
                match (manager, crate::pow::target_from_difficulty(d)) {
                    (Some(m), Ok(target)) => m.retarget(target),
                    (_, Err(e)) => tracing::warn!("pool difficulty {d} ignored: {e}"),
                    (None, Ok(_)) => {}
                }
            }
            SourceEvent::ClearJobs => {
                if let Some(m) = manager {
                    m.clear_jobs();
                }
            }
            SourceEvent::Outcome { solved, fate } => self.outcome(solved, fate),
            SourceEvent::Template {
                height,
                prev_hash,
                transactions,
                clean,
                difficulty,
            } => {
                self.stats.set_difficulty(difficulty);
                self.emit(MinerEvent::NewTemplate {
                    height,
                    prev_hash,
                    transactions,
                    clean,
                    difficulty,
                });
            }
            SourceEvent::BlockFound {
                device,
                height,
                hash,
                after,
                hex,
            } => {
                self.unannounced.remove(&hash);
                if self.blocks.len() >= KEPT_BLOCKS {
                    // A node that answers nothing: write the oldest out rather than hold it.
                    if let Some(old) = self.blocks.keys().next().copied() {
                        if let Some((h, hex)) = self.blocks.remove(&old) {
                            write_out_block(&self.blocks_dir, h, old, &hex, "no verdict yet");
                        }
                    }
                }
                self.blocks.insert(hash, (height, hex));
                self.emit(MinerEvent::BlockFound {
                    device,
                    height,
                    hash,
                    after,
                });
            }
            SourceEvent::Message(text) => self.emit(MinerEvent::SourceMessage {
                solo: self.solo,
                text,
            }),
            SourceEvent::Down(why) => self.emit(MinerEvent::SourceDown(why)),
        }
    }

    fn job(&mut self, manager: Option<&mut Manager>, job: Arc<PreparedJob>, clean: bool) {
        self.stats.record_job();
        if !self.solo {
            let difficulty = crate::pow::difficulty_of_target(&job.job().share_target);
            self.stats.set_difficulty(difficulty);
            self.emit(MinerEvent::NewJob {
                job_id: job.job().id.clone(),
                clean,
                difficulty,
            });
        }
        if let Some(m) = manager {
            m.new_job(job, clean);
        }
    }

    /// Count a solution's new state and show it.
    fn outcome(&mut self, solved: Solved, fate: Fate) {
        let key = match &solved {
            Solved::Share(share) => InFlightKey::Share(share.clone()),
            Solved::Block { hash, .. } => InFlightKey::Block(*hash),
        };
        // Held and Sent still wait for a verdict: the credit stays until one comes.
        let credit = if matches!(fate, Fate::Held | Fate::Sent) {
            None
        } else {
            self.in_flight.remove(&key)
        };
        if let Some(c) = credit {
            let verdict = match &fate {
                Fate::Accepted => Some(Verdict::Accepted),
                Fate::Rejected(_) => Some(Verdict::Rejected),
                Fate::Stale { .. } => Some(Verdict::Stale),
                _ => None,
            };
            if let Some(v) = verdict {
                self.stats.book(c.device, c.difficulty, v);
            }
        }
        let difficulty = credit.map(|c| c.difficulty);
        let round_trip = credit.map(|c| c.sent.elapsed());
        let stats = &self.stats;
        match &fate {
            Fate::Accepted => stats.record_accept(),
            Fate::Rejected(reason) => stats.record_reject(reason),
            Fate::Stale { held, why } => stats.record_stale_after_hand_over(*held, why),
            Fate::Held => stats.record_held(),
            Fate::Sent => stats.record_held_sent(),
            Fate::Unanswered(_) => stats.record_unanswered(),
        }
        match solved {
            Solved::Share(share) => {
                if self.solo {
                    // A solution the source could not make a block of (its job was gone).
                    self.unannounced.retain(|_, f| f.share != share);
                }
                let event = match fate {
                    Fate::Accepted => MinerEvent::Accepted {
                        share,
                        difficulty,
                        round_trip,
                    },
                    Fate::Rejected(reason) => MinerEvent::Rejected {
                        share,
                        reason,
                        difficulty,
                        round_trip,
                    },
                    Fate::Stale { why, .. } => MinerEvent::Stale { share, why },
                    Fate::Held => MinerEvent::Held { share },
                    Fate::Sent => return,
                    Fate::Unanswered(why) => MinerEvent::Unanswered { share, why },
                };
                self.emit(event);
            }
            Solved::Block { height, hash } => {
                self.unannounced.remove(&hash);
                let verdict = match fate {
                    Fate::Accepted => {
                        stats.blocks.fetch_add(1, Ordering::Relaxed);
                        BlockVerdict::Accepted
                    }
                    Fate::Rejected(why) => BlockVerdict::Rejected(why),
                    Fate::Stale { why, .. } => BlockVerdict::Stale(why),
                    Fate::Unanswered(why) => {
                        if let Some((h, hex)) = self.blocks.remove(&hash) {
                            write_out_block(&self.blocks_dir, h, hash, &hex, &why);
                        }
                        BlockVerdict::Undelivered(why)
                    }
                    Fate::Held | Fate::Sent => return,
                };
                self.blocks.remove(&hash);
                if verdict != BlockVerdict::Accepted {
                    // Let a later solution for the same tip through.
                    self.solved_tip = None;
                }
                self.emit(MinerEvent::BlockResult {
                    height,
                    hash,
                    verdict,
                });
            }
        }
    }

    /// The run is over: what is pending gets no answer now, what is held was never sent, and a
    /// block without a verdict is written out, the source's or one it never passed on.
    fn settle_at_exit(&mut self) {
        let stats = &self.stats;
        stats.settle_pending_at_exit();
        let held = stats.held.swap(0, Ordering::Relaxed);
        // Held in solo is a block the node (core) could not take yet: written out below.
        let why = if self.solo {
            "not stored: written out at exit"
        } else {
            "not sent: no connection at exit"
        };
        for _ in 0..held {
            stats.record_stale(why);
        }
        for (hash, (height, hex)) in self.blocks.drain() {
            write_out_block(
                &self.blocks_dir,
                height,
                hash,
                &hex,
                "no verdict before the run ended",
            );
        }
        for (_, f) in std::mem::take(&mut self.unannounced) {
            self.write_out_found(
                &f,
                "found, but its work source never passed it on to the node before the run ended",
            );
        }
    }
}

/// A block that may not have reached the node: logged whole, and saved to
/// `dir/<height>-<hash>.hex`, so it can be submitted by hand (`bitcoin-cli submitblock`). The
/// hex is in the log whether or not the file could be written.
fn write_out_block(dir: &Path, height: u32, hash: BlockHash, hex: &str, why: &str) {
    let path = dir.join(format!("{height}-{hash}.hex"));
    let saved =
        std::fs::create_dir_all(dir).and_then(|()| std::fs::write(&path, format!("{hex}\n")));
    // Absolute, so the pointer works from any directory.
    let path = std::path::absolute(&path).unwrap_or(path);
    match saved {
        Ok(()) => {
            tracing::error!(
                "block {hash} at height {height} has no verdict ({why}); submit it by hand: {hex}"
            );
            tracing::error!(
                "block {hash} saved to {0}; submit it with `bitcoin-cli submitblock $(cat {0})`",
                path.display()
            );
        }
        Err(e) => tracing::error!(
            "block {hash} at height {height} has no verdict ({why}) and could not be saved to {} ({e}); submit it by hand: {hex}",
            path.display()
        ),
    }
}

/// A share-rate limit: `rate` tokens a second, up to twice that banked.
struct TokenBucket {
    /// Tokens a second.
    rate: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    fn new(rate: f64) -> Self {
        TokenBucket {
            rate,
            tokens: rate * 2.0,
            last: Instant::now(),
        }
    }

    fn take(&mut self) -> bool {
        let now = Instant::now();
        let burst = self.rate * 2.0;
        self.tokens = (self.tokens + (now - self.last).as_secs_f64() * self.rate).min(burst);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_bucket_allows_a_burst_then_the_rate() {
        let mut b = TokenBucket::new(100.0);
        let burst = (0..1000).filter(|_| b.take()).count();
        assert!((200..=202).contains(&burst), "{burst}");
        std::thread::sleep(Duration::from_millis(50));
        let after = (0..1000).filter(|_| b.take()).count();
        // About 5 tokens came back in 50 ms (scheduling may add a few).
        assert!((3..=30).contains(&after), "{after}");
    }
}
