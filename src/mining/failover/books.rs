//! The supervisor's books on the pool in use: the shares it owes a final fate (so leaving it
//! settles each exactly once) and its recent jobs (so a solution for another pool's job never
//! reaches it). Pure: no I/O, no tasks.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use crate::mining::source::{Fate, Solved, SourceEvent};
use crate::work::{Job, PreparedJob, Share};

/// Shares owed an answer by the pool in use that are tracked here (the runner's own bound on
/// verdicts it waits for); beyond, a share the pool never answers is settled by the runner at
/// exit instead.
pub(super) const MAX_OWED: usize = 8192;

/// Recent jobs of the pool in use remembered to tell its shares from another pool's (four
/// times what the manager keeps live, retargeted copies included).
pub(super) const KEPT_JOBS: usize = 64;

pub(super) fn outcome(share: Share, fate: Fate) -> SourceEvent {
    SourceEvent::Outcome {
        solved: Solved::Share(share),
        fate,
    }
}

/// The shares handed to the pool in use that have no final fate yet, and whether each is held
/// (queued while the pool is unreachable) or sent.
#[derive(Debug, Default)]
pub(super) struct Owed(HashMap<Share, bool>);

impl Owed {
    pub(super) fn handed(&mut self, share: &Share) {
        if self.0.len() < MAX_OWED {
            self.0.insert(share.clone(), false);
        }
    }

    pub(super) fn update(&mut self, share: &Share, fate: &Fate) {
        match fate {
            Fate::Held | Fate::Sent => {
                if let Some(held) = self.0.get_mut(share) {
                    *held = *fate == Fate::Held;
                }
            }
            _ => {
                self.0.remove(share);
            }
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Each share still owed, with its fate now that `pool` is left: held ones were never
    /// sent (stale), sent ones will not be answered.
    pub(super) fn settle(&mut self, pool: &str) -> Vec<SourceEvent> {
        self.0
            .drain()
            .map(|(share, held)| {
                let fate = if held {
                    Fate::Stale {
                        held: true,
                        why: format!("not sent: {pool} was left"),
                    }
                } else {
                    Fate::Unanswered(format!("{pool} was left before it answered"))
                };
                outcome(share, fate)
            })
            .collect()
    }
}

/// The pool in use's recent jobs, to tell its solutions from another pool's.
#[derive(Debug, Default)]
pub(super) struct RecentJobs(VecDeque<Arc<PreparedJob>>);

impl RecentJobs {
    pub(super) fn note(&mut self, job: &Arc<PreparedJob>, clean: bool) {
        if clean {
            self.0.clear();
        }
        self.0.push_back(Arc::clone(job));
        if self.0.len() > KEPT_JOBS {
            self.0.pop_front();
        }
    }

    pub(super) fn clear(&mut self) {
        self.0.clear();
    }

    /// Whether `job` is one of these, or one the manager made from one of these with another
    /// share target (a difficulty change).
    pub(super) fn knows(&self, job: &Arc<PreparedJob>) -> bool {
        self.0
            .iter()
            .any(|j| Arc::ptr_eq(j, job) || same_work(j.job(), job.job()))
    }
}

/// Whether two jobs ask for the same header and coinbase (their share targets aside).
fn same_work(a: &Job, b: &Job) -> bool {
    a.id == b.id
        && a.prev_hash == b.prev_hash
        && a.version == b.version
        && a.bits == b.bits
        && a.ntime == b.ntime
        && a.coinbase == b.coinbase
        && a.merkle_branch == b.merkle_branch
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::work::Extranonce2;

    /// The generator tests' job (id "g1"), no version rolling, 4-byte extranonce2.
    fn job() -> Arc<PreparedJob> {
        crate::work::generator::tests::job(0, 4)
    }

    fn share(nonce: u32) -> Share {
        Share {
            job_id: "g1".into(),
            extranonce2: Some(Extranonce2::new(nonce.into(), 4).expect("fits")),
            ntime: 1,
            nonce,
            version_bits: None,
        }
    }

    fn fate_of(ev: &SourceEvent) -> (u32, Fate) {
        match ev {
            SourceEvent::Outcome {
                solved: Solved::Share(s),
                fate,
            } => (s.nonce, fate.clone()),
            other => panic!("not an outcome: {other:?}"),
        }
    }

    #[test]
    fn a_share_left_behind_gets_one_fate_held_or_sent() {
        let mut owed = Owed::default();
        for n in 1..=4 {
            owed.handed(&share(n));
        }
        owed.update(&share(1), &Fate::Accepted);
        owed.update(&share(2), &Fate::Held);
        owed.update(&share(3), &Fate::Held);
        owed.update(&share(3), &Fate::Sent);
        // A fate for a share never handed over changes nothing.
        owed.update(&share(9), &Fate::Held);
        let mut settled: Vec<(u32, Fate)> = owed.settle("pool-a").iter().map(fate_of).collect();
        settled.sort_by_key(|s| s.0);
        assert_eq!(
            settled,
            [
                (
                    2,
                    Fate::Stale {
                        held: true,
                        why: "not sent: pool-a was left".into()
                    }
                ),
                (
                    3,
                    Fate::Unanswered("pool-a was left before it answered".into())
                ),
                (
                    4,
                    Fate::Unanswered("pool-a was left before it answered".into())
                ),
            ]
        );
        assert!(owed.is_empty());
        assert!(owed.settle("pool-a").is_empty(), "settled twice");
    }

    #[test]
    fn owed_shares_are_bounded() {
        let mut owed = Owed::default();
        for n in 0..(MAX_OWED as u32 + 10) {
            owed.handed(&share(n));
        }
        assert_eq!(owed.0.len(), MAX_OWED);
    }

    #[test]
    fn jobs_are_told_apart_by_pool_not_by_id() {
        let mine = job();
        let mut jobs = RecentJobs::default();
        jobs.note(&mine, true);
        assert!(jobs.knows(&mine));
        // The manager's copy after a difficulty change is the same work.
        let retargeted = Arc::new(
            mine.with_share_target(crate::pow::target_from_difficulty(2.0).expect("valid")),
        );
        assert!(jobs.knows(&retargeted));
        // Another pool's job with the same id is not.
        let mut other = mine.job().clone();
        other.coinbase.extranonce1 = vec![9, 9, 9, 9];
        let other = Arc::new(other.prepare().expect("valid"));
        assert_eq!(other.job().id, mine.job().id);
        assert!(!jobs.knows(&other));
        // A clean job ends the earlier ones; so does clearing; the list is bounded.
        jobs.note(&other, true);
        assert!(!jobs.knows(&mine));
        jobs.clear();
        assert!(!jobs.knows(&other));
        for _ in 0..KEPT_JOBS * 2 {
            jobs.note(&mine, false);
        }
        assert_eq!(jobs.0.len(), KEPT_JOBS);
    }
}
