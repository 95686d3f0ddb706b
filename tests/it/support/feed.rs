//! A [`WorkFeed`] that hands a backend fixed batches and records, in order, everything the
//! backend reports: for checking that hits stream out per dispatch or slice (order of events,
//! not wall time).

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use wgminer::backend::{Assignment, Feed, Progress, WorkFeed};
use wgminer::work::{Hit, WorkUnit};

/// What the backend reported, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Report {
    /// A dispatch or slice of batch `tag` completed, with these hits.
    Progress {
        tag: u64,
        hashes: u64,
        hits: Vec<Hit>,
    },
    /// Batch `tag` is done.
    Finished { tag: u64, cancelled: bool },
}

pub struct RecordingFeed {
    batches: Mutex<Vec<Assignment>>,
    pub reports: Mutex<Vec<Report>>,
}

impl RecordingFeed {
    /// One batch per entry of `batches`, handed out in order.
    pub fn new(batches: Vec<Vec<WorkUnit>>) -> Self {
        let mut assignments: Vec<Assignment> = batches
            .into_iter()
            .enumerate()
            .map(|(tag, units)| Assignment {
                tag: tag as u64,
                units: units.into(),
                cancel: Arc::new(AtomicBool::new(false)),
            })
            .collect();
        assignments.reverse();
        RecordingFeed {
            batches: Mutex::new(assignments),
            reports: Mutex::new(Vec::new()),
        }
    }

    pub fn reports(&self) -> Vec<Report> {
        self.reports.lock().unwrap().clone()
    }
}

impl WorkFeed for RecordingFeed {
    fn next(&self, _wait: bool) -> Feed {
        match self.batches.lock().unwrap().pop() {
            Some(a) => Feed::Work(a),
            None => Feed::Stop,
        }
    }

    fn progress(&self, a: &Assignment, p: Progress<'_>) {
        let mut hits = p.hits.to_vec();
        hits.sort_unstable();
        self.reports.lock().unwrap().push(Report::Progress {
            tag: a.tag,
            hashes: p.hashes,
            hits,
        });
    }

    fn finished(&self, a: &Assignment, cancelled: bool) {
        self.reports.lock().unwrap().push(Report::Finished {
            tag: a.tag,
            cancelled,
        });
    }
}
