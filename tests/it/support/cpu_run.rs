//! A library mining run on one CPU thread in its own task, stopped when the test says: for
//! tests that watch a source's counters while they change its pools.

use std::sync::Arc;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use wgminer::backend::{Backend, CpuBackend};
use wgminer::mining::{EventSink, Manager, RunConfig, RunOutcome, WorkSource};
use wgminer::work::MiningStats;

pub struct CpuRun {
    /// The run's counters, live.
    pub stats: Arc<MiningStats>,
    stop: oneshot::Sender<()>,
    task: JoinHandle<RunOutcome>,
}

impl CpuRun {
    /// Start mining `source` with one CPU thread.
    pub fn start(source: impl WorkSource) -> CpuRun {
        let cpu: Box<dyn Backend> = Box::new(CpuBackend::new(Some(1), None).expect("cpu"));
        let manager = Manager::start(vec![cpu], EventSink::discard()).expect("manager");
        let stats = manager.stats();
        let (stop, stopped) = oneshot::channel::<()>();
        let shutdown = async {
            let _ = stopped.await;
        };
        let task = tokio::spawn(wgminer::mining::run(
            source,
            manager,
            shutdown,
            RunConfig::default(),
        ));
        CpuRun { stats, stop, task }
    }

    /// End the run as Ctrl-C would, and wait for its outcome.
    pub async fn stop(self) -> RunOutcome {
        let _ = self.stop.send(());
        self.task.await.expect("the run task")
    }
}
