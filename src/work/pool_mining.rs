//! Pool mining: [`run_pool`] runs the Stratum client beside a [`Manager`] and routes between
//! them. New jobs go to the manager (clean or not), difficulty changes and share results to the
//! counters; verified hits go to the client if their job is still valid, else they are counted
//! stale. On shutdown the hits already found are submitted before the connection closes.

use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use super::job::PreparedJob;
use super::manager::{Found, Manager, ManagerError, MinerEvent};
use super::share::Share;
use super::stats::MiningStats;
use crate::stratum::client::{self, ClientConfig, ClientEvent};
use crate::stratum::Event;

/// Mine on a pool: run the Stratum client and the manager until `shutdown` completes (or the
/// client ends). On shutdown the workers stop, every hit they already found is submitted if its
/// job is live, and the pool gets up to `drain` to answer the shares in flight before the client
/// closes the connection.
pub async fn run_pool(
    config: ClientConfig,
    mut manager: Manager,
    shutdown: impl Future<Output = ()>,
    drain: Duration,
) -> Result<Arc<MiningStats>, ManagerError> {
    let stats = manager.stats();
    let (client_tx, mut client_rx) = mpsc::channel::<ClientEvent>(256);
    let (shares_tx, shares_rx) = mpsc::channel::<Share>(1024);
    let (stop_client, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let client = tokio::spawn(client::run(config, client_tx, shares_rx, async {
        let _ = stop_rx.await;
    }));
    let mut ctx = PoolCtx {
        stats: Arc::clone(&stats),
        events: manager.events(),
        shares: shares_tx,
        answered: 0,
    };
    tokio::pin!(shutdown);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            _ = tick.tick() => stats.sample(),
            ev = client_rx.recv() => match ev {
                Some(ev) => ctx.client_event(Some(&mut manager), ev),
                None => break,
            },
            f = manager.next_found() => match f {
                Some(f) => ctx.submit(manager.live_jobs(), f).await,
                None => break,
            },
        }
    }
    // Stop hashing (joining threads blocks for at most one cancelled slice), then hand in what
    // was already found.
    let live = manager.live_jobs().to_vec();
    let found = tokio::task::spawn_blocking(move || manager.stop())
        .await
        .unwrap_or_default();
    for f in found {
        ctx.submit(&live, f).await;
    }
    let deadline = tokio::time::Instant::now() + drain;
    while ctx.outstanding() > 0 {
        match tokio::time::timeout_at(deadline, client_rx.recv()).await {
            Ok(Some(ev)) => ctx.client_event(None, ev),
            Ok(None) | Err(_) => break,
        }
    }
    let _ = stop_client.send(());
    drop(ctx.shares);
    // The client may still be emitting while it closes: keep its channel drained.
    let drain_events = async { while client_rx.recv().await.is_some() {} };
    let (res, ()) = tokio::join!(client, drain_events);
    match res {
        Ok(r) => r?,
        Err(e) => return Err(ManagerError::ClientTask(e.to_string())),
    }
    stats.sample();
    Ok(stats)
}

/// The pool side of [`run_pool`]: routes client events to the manager and the counters, and
/// verified hits to the client.
struct PoolCtx {
    stats: Arc<MiningStats>,
    events: mpsc::UnboundedSender<MinerEvent>,
    shares: mpsc::Sender<Share>,
    /// Share results the client reported (accepted, rejected, stale).
    answered: u64,
}

impl PoolCtx {
    fn emit(&self, e: MinerEvent) {
        let _ = self.events.send(e);
    }

    /// Shares handed to the client and not yet answered.
    fn outstanding(&self) -> u64 {
        self.stats
            .submitted
            .load(Ordering::Relaxed)
            .saturating_sub(self.answered)
    }

    /// Send a verified hit to the pool if its job is still valid; else count it stale.
    async fn submit(&mut self, live: &[Arc<PreparedJob>], f: Found) {
        if !live.iter().any(|j| Arc::ptr_eq(j, &f.job)) {
            self.stats.stale.fetch_add(1, Ordering::Relaxed);
            self.emit(MinerEvent::Stale { share: f.share });
            return;
        }
        let share = f.share.clone();
        if self.shares.send(f.share).await.is_ok() {
            self.stats.submitted.fetch_add(1, Ordering::Relaxed);
            self.emit(MinerEvent::Submitted {
                device: f.device,
                share,
            });
        }
    }

    /// One event from the client; `manager` is `None` once the workers have stopped.
    fn client_event(&mut self, manager: Option<&mut Manager>, ev: ClientEvent) {
        match ev {
            ClientEvent::Connected { url, .. } => {
                self.stats.set_pool(Some(url.to_string()), true);
                self.emit(MinerEvent::Connected {
                    pool: url.to_string(),
                });
            }
            ClientEvent::Disconnected { reason, .. } => {
                self.stats.set_pool(None, false);
                self.emit(MinerEvent::Disconnected { reason });
            }
            ClientEvent::Stratum { event, .. } => self.stratum_event(manager, event),
        }
    }

    fn stratum_event(&mut self, manager: Option<&mut Manager>, event: Event) {
        match event {
            Event::NewJob { job, clean } => {
                let difficulty = crate::pow::difficulty_of_target(&job.job().share_target);
                self.emit(MinerEvent::NewJob {
                    job_id: job.job().id.clone(),
                    clean,
                    difficulty,
                });
                if let Some(m) = manager {
                    m.new_job(job, clean);
                }
            }
            Event::DifficultyChanged(d) => {
                self.stats.set_difficulty(d);
                self.emit(MinerEvent::DifficultyChanged(d));
            }
            Event::ShareAccepted { share } => {
                self.answered += 1;
                self.stats.accepted.fetch_add(1, Ordering::Relaxed);
                self.emit(MinerEvent::Accepted { share });
            }
            Event::ShareRejected { share, reason } => {
                self.answered += 1;
                self.stats.record_reject(&reason);
                self.emit(MinerEvent::Rejected { share, reason });
            }
            Event::ShareStale { share, .. } => {
                self.answered += 1;
                self.stats.stale.fetch_add(1, Ordering::Relaxed);
                self.emit(MinerEvent::Stale { share });
            }
            Event::Subscribed { resumed: false, .. } => {
                // A new extranonce1: every job from the old connection builds coinbases the
                // pool no longer credits to us. Stop hashing them until the first notify.
                if let Some(m) = manager {
                    m.clear_jobs();
                }
                self.stats.set_difficulty(1.0);
            }
            Event::ShowMessage(m) => self.emit(MinerEvent::PoolMessage(m)),
            _ => {}
        }
    }
}
