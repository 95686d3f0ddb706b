//! Failover over one priority list of pools of both Stratum versions: the source every pool
//! run mines with, one pool or many, V1, V2 or mixed. Each pool is a source of its own (a
//! [`StratumSource`] with that one pool, or an [`Sv2Source`]) run as a child task, and this
//! supervisor runs one at a time; it is the one place that decides which:
//!
//! - the list's order is priority, and mining starts on the first pool;
//! - a pool that fails [`FailoverConfig::failover_after`] attempts in a row, with no job in
//!   between, is left for the next one (the V1 client's rule: each child reconnects with its
//!   own backoff, and each failed attempt or lost connection counts once);
//! - while on a backup, the pools ahead of it are probed (a TCP connect) every
//!   [`FailoverConfig::primary_probe`], and mining returns to the first that answers;
//! - the cgminer API's `switchpool` ([`PoolSwitch`]) moves to any pool, which becomes the
//!   preferred one (first in the order from then on);
//! - a pool that refuses us for good (an SV2 pool without the pinned key, or one that refuses
//!   the connection setup) is left out for the rest of the run; with none left, the run ends
//!   with that error;
//! - once every pool has failed in a row (a move wraps round to a pool ahead), each move
//!   waits first, 1 s doubling per round up to [`FailoverConfig::round_wait_max`], so a dead
//!   list is not hammered; the first job from any pool starts over.
//!
//! A switch keeps each share to one fate and each share on its own pool: the runner's jobs are
//! cleared first (`ClearJobs`); a solution whose job came from another pool is counted stale
//! here and never reaches the new pool (job ids of two pools can be equal); the pool left
//! behind gets [`SWITCH_GRACE`] to answer what it was sent, and the shares it still owes then
//! are settled here: held ones stale, sent ones unanswered.
//!
//! A V1 pool keeps its session (and its held shares) across reconnects to the same pool, not
//! across a switch: each child starts afresh.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{sleep_until, timeout, Instant};

use super::manager::Found;
use super::pool::StratumSource;
use super::source::{self, Fate, Solved, SourceError, SourceEvent, SourceLink, WorkSource};
use super::sv2_pool::{Sv2Config, Sv2Source};
use crate::stratum::client::ClientConfig;
use crate::stratum::pool::{BACKOFF_MAX, CONNECT_TIMEOUT};
use crate::work::MiningStats;

mod books;
mod switch;
use books::{outcome, Owed, RecentJobs};
pub use switch::PoolSwitch;

/// How long a pool being left gets to answer the shares it was sent.
pub const SWITCH_GRACE: Duration = Duration::from_secs(1);

/// How long a child source gets to end once it was told to.
const CHILD_CLOSE: Duration = Duration::from_secs(2);

/// One pool of the list.
#[derive(Clone, Debug)]
pub enum PoolSpec {
    /// A Stratum V1 pool: a client configuration with this one pool in `pools`.
    Stratum(ClientConfig),
    /// A Stratum V2 pool.
    Sv2(Sv2Config),
}

impl PoolSpec {
    /// The pool's URL as the status line and the APIs show it.
    pub fn url(&self) -> String {
        match self {
            PoolSpec::Stratum(c) => c.pool.url.to_string(),
            PoolSpec::Sv2(c) => c.url(),
        }
    }

    /// Where a probe connects.
    fn addr(&self) -> Option<(String, u16)> {
        match self {
            PoolSpec::Stratum(c) => Some((c.pool.url.host.clone(), c.pool.url.port)),
            PoolSpec::Sv2(c) => Some((c.host.clone(), c.port)),
        }
    }

    /// Whether `event` is one failed attempt or one lost connection on this kind of pool: the
    /// V1 client says `Disconnected` once for each; the SV2 source says `Down` once for each
    /// (after a `Disconnected` when the connection had been up).
    fn is_failure(&self, event: &SourceEvent) -> bool {
        match self {
            PoolSpec::Stratum(_) => matches!(event, SourceEvent::Disconnected { .. }),
            PoolSpec::Sv2(_) => matches!(event, SourceEvent::Down(_)),
        }
    }

    /// Start the pool's own source as a child task, counted in the run's `stats`.
    fn start(&self, stats: &Arc<MiningStats>) -> Child {
        let (runner, link) = source::link(Arc::clone(stats));
        let task = match self.clone() {
            PoolSpec::Stratum(c) => tokio::spawn(StratumSource::new(c).run(link)),
            PoolSpec::Sv2(c) => tokio::spawn(Sv2Source::new(c).run(link)),
        };
        Child {
            events: runner.events,
            solutions: Some(runner.solutions),
            task: Some(task),
        }
    }
}

/// The failover rule: [`FailoverConfig::default`] is the V1 client's (3 attempts, a probe a
/// minute); tests shorten the timers.
#[derive(Clone, Debug)]
pub struct FailoverConfig {
    /// Failed attempts in a row before moving to the next pool.
    pub failover_after: u32,
    /// While on a backup, how often the pools ahead of it are probed.
    pub primary_probe: Duration,
    /// How long a probe's TCP connect may take.
    pub probe_timeout: Duration,
    /// The longest wait between two rounds over a list of pools that all fail.
    pub round_wait_max: Duration,
    /// Requests to mine on another pool of the list (the cgminer API's `switchpool`).
    pub switch: PoolSwitch,
}

impl Default for FailoverConfig {
    fn default() -> Self {
        FailoverConfig {
            failover_after: 3,
            primary_probe: Duration::from_secs(60),
            probe_timeout: CONNECT_TIMEOUT,
            round_wait_max: BACKOFF_MAX,
            switch: PoolSwitch::default(),
        }
    }
}

/// Mines on a priority list of pools, V1 and V2 alike (see the module docs).
pub struct FailoverSource {
    pools: Vec<PoolSpec>,
    config: FailoverConfig,
}

impl FailoverSource {
    pub fn new(pools: Vec<PoolSpec>, config: FailoverConfig) -> Self {
        FailoverSource { pools, config }
    }

    /// The pools' URLs in order of priority, as the APIs list them.
    pub fn urls(&self) -> Vec<String> {
        self.pools.iter().map(PoolSpec::url).collect()
    }
}

impl WorkSource for FailoverSource {
    fn label(&self) -> String {
        self.urls().join(", ")
    }

    fn is_solo(&self) -> bool {
        false
    }

    async fn run(self, mut link: SourceLink) -> Result<(), SourceError> {
        if self.pools.is_empty() {
            return Err(SourceError::Failed("no pool configured".into()));
        }
        let n = self.pools.len();
        let mut supervisor = Supervisor {
            urls: self.urls(),
            pools: self.pools,
            config: self.config,
            preferred: 0,
            active: 0,
            out: vec![false; n],
            taking: true,
            rounds: 0,
            owed: Owed::default(),
            jobs: RecentJobs::default(),
        };
        supervisor.run(&mut link).await
    }
}

/// A pool's source running as a child task, and this side of its link.
struct Child {
    events: mpsc::Receiver<SourceEvent>,
    /// `None` once the run is ending (the child then answers what it holds and ends).
    solutions: Option<mpsc::Sender<Found>>,
    /// `None` once joined (a join handle must not be awaited twice).
    task: Option<JoinHandle<Result<(), SourceError>>>,
}

impl Child {
    /// Wait up to [`CHILD_CLOSE`] for the task to end (aborted past that): its result.
    async fn join(&mut self) -> Result<(), SourceError> {
        let Some(mut task) = self.task.take() else {
            return Ok(());
        };
        match timeout(CHILD_CLOSE, &mut task).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => Err(SourceError::Failed(format!("pool source task failed: {e}"))),
            Err(_) => {
                task.abort();
                Ok(())
            }
        }
    }
}

/// Why serving a child ended.
enum End {
    /// The runner is gone, or the run is ending and the child ended with it.
    Done,
    /// Move to pool `to`; `why` for the log and the display; `failed`: because the pool in
    /// use failed (not asked for, not a probe).
    Switch {
        to: usize,
        why: String,
        failed: bool,
    },
    /// The child failed for good.
    Out(SourceError),
}

/// A probe of the pools ahead in its own task (a connect may take a while; the pool in use
/// is served meanwhile); aborted when dropped.
#[derive(Default)]
struct Probe(Option<JoinHandle<Option<usize>>>);

impl Drop for Probe {
    fn drop(&mut self) {
        if let Some(task) = self.0.take() {
            task.abort();
        }
    }
}

struct Supervisor {
    pools: Vec<PoolSpec>,
    urls: Vec<String>,
    config: FailoverConfig,
    /// The pool first in priority: the first of the list, or the one a switch request named.
    preferred: usize,
    active: usize,
    /// Pools that refused us for good.
    out: Vec<bool>,
    /// Whether the runner still hands over solutions.
    taking: bool,
    /// Rounds over the whole list in a row with no pool giving a job.
    rounds: u32,
    /// Shares the pool in use owes a final fate.
    owed: Owed,
    /// The pool in use's recent jobs.
    jobs: RecentJobs,
}

impl Supervisor {
    async fn run(&mut self, link: &mut SourceLink) -> Result<(), SourceError> {
        loop {
            let mut child = self.pools[self.active].start(&link.stats);
            let (to, why, failed) = match self.serve(&mut child, link).await {
                End::Done => {
                    self.close(child, link).await;
                    return Ok(());
                }
                End::Switch { to, why, failed } => (to, why, failed),
                End::Out(e) => {
                    self.out[self.active] = true;
                    let url = &self.urls[self.active];
                    tracing::warn!("{url} is left out for the rest of the run: {e}");
                    match self.next_after(self.active) {
                        Some(to) => (to, format!("{url} refused us for good: {e}"), false),
                        None => {
                            self.close(child, link).await;
                            return Err(e);
                        }
                    }
                }
            };
            tracing::info!(from = %self.urls[self.active], to = %self.urls[to], "switching pool: {why}");
            // The old pool's jobs stop now, before anything of the new pool's arrives.
            let leaving = vec![
                SourceEvent::Disconnected { reason: why },
                SourceEvent::ClearJobs,
            ];
            if !link.send_all(leaving).await || !self.leave(child, link).await || !self.taking {
                return Ok(());
            }
            // Failing back to a pool ahead in priority: every pool failed once more.
            if failed && self.rank(to) < self.rank(self.active) {
                self.rounds += 1;
            } else if !failed {
                self.rounds = 0;
            }
            self.active = to;
            if self.rounds > 0 && !self.idle(self.round_wait(), link).await {
                return Ok(());
            }
        }
    }

    /// Forward between the runner and `child` until it is time to leave it.
    async fn serve(&mut self, child: &mut Child, link: &mut SourceLink) -> End {
        let mut failures = 0u32;
        let mut next_probe = Instant::now() + self.config.primary_probe;
        let mut probe = Probe::default();
        loop {
            let probe_due = probe.0.is_none() && self.taking && !self.ahead().is_empty();
            tokio::select! {
                ev = child.events.recv() => {
                    let Some(ev) = ev else {
                        return self.ended(child).await;
                    };
                    let failed = self.pools[self.active].is_failure(&ev);
                    if matches!(ev, SourceEvent::Job { .. }) {
                        failures = 0;
                        self.rounds = 0;
                    }
                    let ev = self.note(ev);
                    if !link.send(ev).await {
                        return End::Done;
                    }
                    if failed && self.taking {
                        failures += 1;
                        if failures >= self.config.failover_after.max(1) {
                            if let Some(to) = self.next_after(self.active) {
                                let why = format!(
                                    "{} failed {failures} times in a row; moving to {}",
                                    self.urls[self.active], self.urls[to]
                                );
                                return End::Switch { to, why, failed: true };
                            }
                        }
                    }
                }
                found = link.solutions.recv(), if self.taking => match found {
                    Some(found) => {
                        if !self.hand_over(child, link, found).await {
                            return End::Done;
                        }
                    }
                    // The run is ending: the child answers what it holds, then ends.
                    None => {
                        self.taking = false;
                        child.solutions = None;
                    }
                },
                _ = self.config.switch.requested() => match self.config.switch.take() {
                    Some(to) if to < self.pools.len() && to != self.active && self.taking => {
                        self.preferred = to;
                        // Asked for by name: worth another try even after a refusal.
                        self.out[to] = false;
                        let why = format!("switching to pool {to} ({}) as asked", self.urls[to]);
                        return End::Switch { to, why, failed: false };
                    }
                    // Already there: it is the preferred pool from now on.
                    Some(to) if to == self.active => self.preferred = to,
                    Some(to) => tracing::warn!(
                        "switchpool {to}: there is no such pool (0 to {})",
                        self.pools.len() - 1
                    ),
                    None => {}
                },
                _ = sleep_until(next_probe), if probe_due => {
                    next_probe = Instant::now() + self.config.primary_probe;
                    let ahead = self
                        .ahead()
                        .into_iter()
                        .map(|i| (i, self.pools[i].addr()))
                        .collect();
                    probe.0 = Some(tokio::spawn(probe_first(ahead, self.config.probe_timeout)));
                }
                answered = async {
                    match probe.0.as_mut() {
                        Some(task) => task.await,
                        None => std::future::pending().await,
                    }
                }, if probe.0.is_some() => {
                    probe.0 = None;
                    if let Ok(Some(to)) = answered {
                        if to != self.active && self.taking && !self.out[to] {
                            let why = format!("{} is back", self.urls[to]);
                            return End::Switch { to, why, failed: false };
                        }
                    }
                }
                _ = link.events.closed() => return End::Done,
            }
        }
    }

    /// The child's events ended: it stopped, for good or because the run is ending.
    async fn ended(&mut self, child: &mut Child) -> End {
        match child.join().await {
            _ if !self.taking => End::Done,
            Err(e) => End::Out(e),
            Ok(()) => End::Out(SourceError::Failed("its source stopped".into())),
        }
    }

    /// Keep the books on an event of the pool in use, and name the pool as the APIs list it.
    fn note(&mut self, ev: SourceEvent) -> SourceEvent {
        match ev {
            SourceEvent::Connected { .. } => SourceEvent::Connected {
                peer: self.urls[self.active].clone(),
            },
            SourceEvent::Job { ref job, clean, .. } => {
                self.jobs.note(job, clean);
                ev
            }
            SourceEvent::ClearJobs => {
                self.jobs.clear();
                ev
            }
            SourceEvent::Outcome {
                solved: Solved::Share(ref share),
                ref fate,
            } => {
                self.owed.update(share, fate);
                ev
            }
            ev => ev,
        }
    }

    /// A solution to the pool in use, or stale with why not; false once the runner is gone.
    async fn hand_over(&mut self, child: &Child, link: &SourceLink, found: Found) -> bool {
        let share = found.share.clone();
        let why = if !self.jobs.knows(&found.job) {
            "its job is from a pool left behind"
        } else {
            let sent = match child.solutions.as_ref() {
                Some(solutions) => solutions.try_send(found).map_err(|e| match e {
                    mpsc::error::TrySendError::Full(_) => "pool source queue full",
                    mpsc::error::TrySendError::Closed(_) => "pool source stopped",
                }),
                None => Err("pool source stopped"),
            };
            match sent {
                Ok(()) => {
                    self.owed.handed(&share);
                    return true;
                }
                Err(why) => why,
            }
        };
        let fate = Fate::Stale {
            held: false,
            why: why.into(),
        };
        link.send(outcome(share, fate)).await
    }

    /// Leave the pool in use: it gets [`SWITCH_GRACE`] to answer what it was sent (only those
    /// answers reach the runner: its jobs are no longer ours), then stops, and what it still
    /// owes is settled here. False once the runner is gone.
    async fn leave(&mut self, mut child: Child, link: &mut SourceLink) -> bool {
        child.solutions = None;
        let deadline = Instant::now() + SWITCH_GRACE;
        while !self.owed.is_empty() {
            tokio::select! {
                ev = child.events.recv() => match ev {
                    Some(SourceEvent::Outcome { solved, fate }) => {
                        if let Solved::Share(share) = &solved {
                            self.owed.update(share, &fate);
                        }
                        if !link.send(SourceEvent::Outcome { solved, fate }).await {
                            return false;
                        }
                    }
                    Some(_) => {}
                    None => break,
                },
                found = link.solutions.recv(), if self.taking => match found {
                    Some(found) => {
                        let fate = Fate::Stale { held: false, why: "switching pools".into() };
                        if !link.send(outcome(found.share, fate)).await {
                            return false;
                        }
                    }
                    None => self.taking = false,
                },
                _ = sleep_until(deadline) => break,
                _ = link.events.closed() => return false,
            }
        }
        self.close(child, link).await;
        !link.runner_gone()
    }

    /// Stop `child` and settle what it still owes (told to the runner while it listens).
    async fn close(&mut self, mut child: Child, link: &SourceLink) {
        child.solutions = None;
        // A closed event channel is the end of the run for the child: it stops.
        child.events.close();
        // Fates it sent before that still count (nothing else of the pool left behind does).
        let mut told = Vec::new();
        while let Ok(ev) = child.events.try_recv() {
            if let SourceEvent::Outcome {
                solved: Solved::Share(share),
                fate,
            } = &ev
            {
                self.owed.update(share, fate);
                told.push(ev);
            }
        }
        let _ = child.join().await;
        told.extend(self.owed.settle(&self.urls[self.active]));
        self.jobs.clear();
        // False only once the runner is gone, and it settles what it waits for itself.
        let _ = link.send_all(told).await;
    }

    /// Wait `wait` between rounds, calling every solution stale; false once the run is over.
    async fn idle(&mut self, wait: Duration, link: &mut SourceLink) -> bool {
        let end = Instant::now() + wait;
        loop {
            tokio::select! {
                _ = sleep_until(end) => return true,
                found = link.solutions.recv() => match found {
                    Some(found) => {
                        let fate = Fate::Stale { held: false, why: "no pool answers".into() };
                        if !link.send(outcome(found.share, fate)).await {
                            return false;
                        }
                    }
                    None => {
                        self.taking = false;
                        return false;
                    }
                },
                _ = link.events.closed() => return false,
            }
        }
    }

    fn round_wait(&self) -> Duration {
        let doubling = Duration::from_secs(1u64 << self.rounds.saturating_sub(1).min(16));
        doubling.min(self.config.round_wait_max)
    }

    /// A pool's place in the priority order (0: the preferred pool).
    fn rank(&self, pool: usize) -> usize {
        rank(pool, self.preferred, self.pools.len())
    }

    /// The next usable pool after `from` in priority order (wrapping), if any but `from`.
    fn next_after(&self, from: usize) -> Option<usize> {
        next_after(from, &self.out)
    }

    /// The usable pools ahead of the one in use, first in priority first.
    fn ahead(&self) -> Vec<usize> {
        ahead(self.active, self.preferred, &self.out)
    }
}

fn rank(pool: usize, preferred: usize, n: usize) -> usize {
    (pool + n - preferred) % n
}

fn next_after(from: usize, out: &[bool]) -> Option<usize> {
    let n = out.len();
    (1..n).map(|k| (from + k) % n).find(|&i| !out[i])
}

fn ahead(active: usize, preferred: usize, out: &[bool]) -> Vec<usize> {
    let n = out.len();
    (0..rank(active, preferred, n))
        .map(|r| (preferred + r) % n)
        .filter(|&i| !out[i])
        .collect()
}

/// The first of `pools` (in order) that takes a TCP connection (closed at once).
async fn probe_first(pools: Vec<(usize, Option<(String, u16)>)>, limit: Duration) -> Option<usize> {
    for (i, addr) in pools {
        let Some((host, port)) = addr else { continue };
        if let Ok(Ok(_)) = timeout(limit, TcpStream::connect((host.as_str(), port))).await {
            return Some(i);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priority_starts_at_the_preferred_pool_and_wraps() {
        assert_eq!(rank(2, 2, 4), 0);
        assert_eq!(rank(0, 2, 4), 2);
        assert_eq!(rank(1, 0, 4), 1);
        let none_out = [false; 4];
        assert_eq!(next_after(1, &none_out), Some(2));
        assert_eq!(next_after(3, &none_out), Some(0));
        // Pools left out are skipped; with none other usable there is nowhere to go.
        assert_eq!(next_after(3, &[false, true, true, false]), Some(0));
        assert_eq!(next_after(0, &[false, true, true, true]), None);
        assert_eq!(next_after(0, &[false]), None);
    }

    #[test]
    fn the_pools_ahead_are_probed_first_in_priority_first() {
        let none_out = [false; 4];
        assert_eq!(ahead(0, 0, &none_out), Vec::<usize>::new());
        assert_eq!(ahead(3, 0, &none_out), [0, 1, 2]);
        assert_eq!(ahead(3, 0, &[false, true, false, false]), [0, 2]);
        // After `switchpool 2`, pool 2 leads: on pool 1 (rank 3) all others are ahead.
        assert_eq!(ahead(1, 2, &none_out), [2, 3, 0]);
        assert_eq!(ahead(2, 2, &none_out), Vec::<usize>::new());
    }
}
