//! A Stratum V1 pool as a work source: runs the [`crate::stratum::client`] task and
//! translates between it and the runner. Jobs, difficulty and every share's fate go to the
//! runner; shares go to the client through a bounded queue that is never waited on (a share that
//! does not fit is reported stale at once), so reading the pool never waits on submitting to it.

use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::source::{Fate, Solved, SourceError, SourceEvent, SourceLink, WorkSource};
use crate::stratum::client::{self, ClientConfig, ClientEvent};
use crate::stratum::Event;
use crate::work::Share;

/// Shares waiting for the client to take them (it takes them as fast as it can write).
const SHARE_QUEUE: usize = 256;

/// Events the client may have queued for this task.
const CLIENT_EVENTS: usize = 256;

/// How long the client gets to write what it holds once the run ends.
const CLOSE_WAIT: Duration = Duration::from_secs(1);

/// Mines on one or more Stratum V1 pools (failover in order).
pub struct StratumSource {
    config: ClientConfig,
}

impl StratumSource {
    pub fn new(config: ClientConfig) -> Self {
        StratumSource { config }
    }
}

impl WorkSource for StratumSource {
    fn label(&self) -> String {
        self.config.pool.url.to_string()
    }

    fn is_solo(&self) -> bool {
        false
    }

    async fn run(self, mut link: SourceLink) -> Result<(), SourceError> {
        let (client_tx, mut client_rx) = mpsc::channel::<ClientEvent>(CLIENT_EVENTS);
        let (shares_tx, shares_rx) = mpsc::channel::<Share>(SHARE_QUEUE);
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let mut client = tokio::spawn(client::run(self.config, client_tx, shares_rx, async {
            let _ = stop_rx.await;
        }));
        // The client treats a closed share channel as the end of the run and stops reading its
        // pool; the channel stays open until the runner is done draining answers, so `taking`
        // only says whether the runner still sends solutions.
        let shares = shares_tx;
        let mut taking = true;
        let ended = loop {
            tokio::select! {
                ev = client_rx.recv() => match ev {
                    Some(ev) => {
                        if let Some(ev) = translate(ev) {
                            if !link.send(ev).await {
                                break None;
                            }
                        }
                    }
                    None => break None,
                },
                found = link.solutions.recv(), if taking => match found {
                    Some(found) => {
                        if let Err(e) = shares.try_send(found.share) {
                            let (share, why) = match e {
                                mpsc::error::TrySendError::Full(s) => (s, "pool client queue full"),
                                mpsc::error::TrySendError::Closed(s) => (s, "pool client stopped"),
                            };
                            let fate = Fate::Stale { held: false, why: why.into() };
                            if !link.send(SourceEvent::Outcome { solved: Solved::Share(share), fate }).await {
                                break None;
                            }
                        }
                    }
                    // The run is ending: no more shares, but answers still count.
                    None => taking = false,
                },
                r = &mut client => break Some(r),
                _ = link.events.closed() => break None,
            }
        };
        let result = match ended {
            Some(r) => r,
            None => {
                // The runner is done: the client writes what it holds and closes.
                let _ = stop_tx.send(());
                drop(shares);
                let drain = async { while client_rx.recv().await.is_some() {} };
                match tokio::time::timeout(CLOSE_WAIT, async { tokio::join!(&mut client, drain).0 })
                    .await
                {
                    Ok(r) => r,
                    Err(_) => {
                        client.abort();
                        return Ok(());
                    }
                }
            }
        };
        match result {
            Ok(r) => r.map_err(SourceError::from),
            Err(e) => Err(SourceError::Failed(format!(
                "stratum client task failed: {e}"
            ))),
        }
    }
}

/// A client event as the runner sees it (`None`: nothing the runner needs).
fn translate(ev: ClientEvent) -> Option<SourceEvent> {
    let outcome = |share: Share, fate: Fate| SourceEvent::Outcome {
        solved: Solved::Share(share),
        fate,
    };
    Some(match ev {
        ClientEvent::Connected { url } => SourceEvent::Connected {
            peer: url.to_string(),
        },
        ClientEvent::Disconnected { reason } => SourceEvent::Disconnected { reason },
        ClientEvent::Stratum(event) => match event {
            Event::NewJob { job, clean } => SourceEvent::Job {
                job,
                clean,
                solo: None,
            },
            Event::DifficultyChanged(d) => SourceEvent::Difficulty(d),
            Event::ShareAccepted { share } => outcome(share, Fate::Accepted),
            Event::ShareRejected { share, reason } => outcome(share, Fate::Rejected(reason)),
            Event::ShareStale { share, held, why } => outcome(share, Fate::Stale { held, why }),
            Event::ShareHeld { share } => outcome(share, Fate::Held),
            Event::HeldShareSent { share } => outcome(share, Fate::Sent),
            Event::ShareUnanswered { share } => {
                outcome(share, Fate::Unanswered("the pool stopped answering".into()))
            }
            // A new extranonce1: every job from the old connection builds coinbases the pool
            // no longer credits to us. Stop hashing them until the first notify.
            Event::Subscribed { resumed: false, .. } => SourceEvent::ClearJobs,
            Event::ShowMessage(m) => SourceEvent::Message(m),
            _ => return None,
        },
    })
}
