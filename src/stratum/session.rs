//! The Stratum V1 session as a pure state machine: parsed pool lines in, [`Event`]s and outgoing
//! lines out. The connection (see `client`) owns the socket and timers; this owns what the
//! protocol means, so every rule below is tested without a network.
//!
//! What it tracks, and the rules it keeps:
//! - Request ids and what each request was, so a bare `{"id": 4, "result": true}` is known to
//!   be the answer to a share.
//! - The subscribe result (extranonce1, extranonce2 size, and the `mining.notify` subscription
//!   id, offered again on reconnect so pools that support it resume the session and keep the
//!   extranonce1).
//! - The BIP310 version-rolling mask from `mining.configure` (or `mining.set_version_mask`).
//! - The share difficulty: `mining.set_difficulty` applies to work made after it arrives. Jobs
//!   notified later carry it in their share target; a job already handed out keeps the target it
//!   was built with, and the runner re-targets work on the current job at once when it sees
//!   [`Event::DifficultyChanged`] (cgminer's rule).
//! - `mining.suggest_difficulty`, when configured, goes out right before `mining.authorize`:
//!   pools such as public-pool set the connection's difficulty from it during authorization
//!   (without it they start at a default, 16384 for public-pool). A pool that refuses it before
//!   authorization (an error, or `false`) gets it once more right after authorizing.
//! - `mining.set_extranonce` (the `mining.extranonce.subscribe` extension) likewise applies from
//!   the next notify. Jobs built on the old extranonce1 stop being submittable: the pool rebuilds
//!   the coinbase of every share with the connection's current extranonce1.
//! - Live jobs: a clean notify makes every earlier job stale; a non-clean one keeps them.
//! - Shares: sent ones await their answer (accepted, or rejected with the pool's reason, from
//!   `error` or ckpool's `reject-reason`); shares found while the connection is down or not yet
//!   authorized wait in a queue (bounded) and go out once it is, if their job is still live.
//! - Every share handed to [`Session::submit`] has exactly one accounted fate, reported as
//!   events: in flight (sent: no event until its answer), accepted, rejected, stale (not sent, or
//!   no longer to be sent, with why), held (queued), held and then sent, or unanswered (the
//!   pending-request table overflowed). Events that do not come from a pool line (a share held,
//!   a share pushed out of the full queue, a connection lost) are buffered and handed out by
//!   [`Session::take_events`] or with the next [`Session::handle_line`].
//! - `client.get_version` is answered with our user agent; unknown pool requests with an error.
//! - A pool line the session cannot use changes nothing and comes back as a [`Refusal`]: what
//!   the pool sent, why it was refused and what is kept ("pool sent mining.set_difficulty with
//!   difficulty -3: …; ignored, keeping difficulty 512"). A `mining.configure` answer that cannot
//!   be used, or grants bits outside the mask asked for, is an [`Event::Refused`] beside the
//!   mask actually used. The client tells both at a bounded rate ([`super::refusal`]).

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::message::{
    parse_json, parse_value, Id, Message, MessageError, Response, ServerMethod, ServerRequest,
};
use super::refusal::{Refusal, RefusalKind};
use super::request::{error_reply_line, reply_line, ClientRequest};
use super::NotifyContext;
use crate::text::printable_cut;
use crate::work::job::DEFAULT_NTIME_ROLL;
use crate::work::{JobError, PreparedJob, Share};

/// How many live jobs are kept after non-clean notifies. Pools send a fresh job every 30-60 s and
/// keep a few minutes of them; a share for an older one would be rejected as stale anyway.
pub const MAX_LIVE_JOBS: usize = 16;

/// How many shares wait while the connection is down. A miner finds a handful per minute at a
/// sane difficulty; past this the oldest (most likely stale) are dropped, each reported as
/// [`Event::ShareStale`] ("held queue full").
pub const MAX_QUEUED_SHARES: usize = 1024;

/// Requests awaiting an answer at most: a pool that never answers must not grow the table
/// without bound. A share evicted from it is reported as [`Event::ShareUnanswered`].
pub const MAX_PENDING_REQUESTS: usize = 4096;

/// The version bits BIP320 leaves free for miners to roll (bits 13 to 28). Whatever a pool
/// grants, no other bit is rolled: the top three bits say "BIP9 versionbits" and the low bits
/// carry soft-fork signals, and a mask of `ffffffff` would otherwise have the miner hash version
/// 0 headers that no node accepts.
pub const BIP320_MASK: u32 = 0x1fff_e000;

/// Why a share went stale, for [`Event::ShareStale`].
const WHY_JOB_REPLACED: &str = "job replaced";
const WHY_EXTRANONCE_CHANGED: &str = "extranonce changed";
const WHY_QUEUE_FULL: &str = "held queue full";

/// What the miner asks of the pool.
#[derive(Clone, Debug, PartialEq)]
pub struct SessionConfig {
    /// Worker name (`mining.authorize` and the first `mining.submit` parameter).
    pub user: String,
    pub password: String,
    pub user_agent: String,
    /// Ask for version rolling (BIP310) under this mask; `None`: don't send `mining.configure`.
    pub version_rolling: Option<u32>,
    /// Send `mining.suggest_difficulty` right before `mining.authorize` (and once more after
    /// authorizing if the pool refused it before).
    pub suggest_difficulty: Option<f64>,
    /// Send `mining.extranonce.subscribe` so the pool may use `mining.set_extranonce`.
    pub extranonce_subscribe: bool,
    /// How far past the pool's nTime jobs may roll.
    pub ntime_roll: u32,
}

impl SessionConfig {
    /// Version rolling on (BIP320's bits, as far as the pool grants them), no suggested
    /// difficulty, no extranonce subscription.
    pub fn new(user: impl Into<String>, password: impl Into<String>) -> Self {
        SessionConfig {
            user: user.into(),
            password: password.into(),
            user_agent: super::user_agent(),
            version_rolling: Some(BIP320_MASK),
            suggest_difficulty: None,
            extranonce_subscribe: false,
            ntime_roll: DEFAULT_NTIME_ROLL,
        }
    }
}

/// What happened, for the work manager and the status display.
///
/// Share accounting: a share handed to [`Session::submit`] is in flight (sent, no event yet) or
/// reported by one of the share events. Replaying them, every share is at any time in exactly one
/// of: accepted, rejected, stale, unanswered (all final), held (queued) or in flight. `ShareHeld`
/// moves a share into held (new, or in flight when the connection was lost), `HeldShareSent`
/// from held to in flight, and `ShareStale { held: true, .. }` out of held.
#[derive(Clone, Debug)]
pub enum Event {
    /// The pool answered `mining.subscribe`. `resumed`: it kept the previous connection's
    /// extranonce, so jobs from before the reconnect are still live.
    Subscribed {
        extranonce1: Vec<u8>,
        extranonce2_size: usize,
        session_id: Option<String>,
        resumed: bool,
    },
    /// `mining.subscribe` failed: the connection is useless.
    SubscribeFailed { reason: String },
    /// The pool's answer to `mining.configure`: the version-rolling mask granted, if any.
    VersionRolling { mask: Option<u32> },
    /// The pool's answer to `mining.authorize`.
    Authorized(bool),
    /// The pool's new share difficulty. Jobs notified from now on carry it in their share
    /// target; the runner re-targets work on the current job at once.
    DifficultyChanged(f64),
    /// A job to mine. With `clean`, every earlier job is stale.
    NewJob { job: Arc<PreparedJob>, clean: bool },
    /// The pool accepted a share (it was in flight).
    ShareAccepted { share: Share },
    /// The pool refused a share (it was in flight), with its reason.
    ShareRejected { share: Share, reason: String },
    /// A share not sent, or no longer to be sent: `held` says whether it was held (queued) when it
    /// went stale rather than being handed in just now; `why` is a short lowercase reason for logs
    /// ("job replaced", "held queue full", "not sent: no connection at exit", ...).
    ShareStale {
        share: Share,
        held: bool,
        why: String,
    },
    /// A share that cannot go out now (not connected/authorized): queued. Also emitted for a share
    /// that was sent but not answered when the connection was lost (it goes back to the queue).
    ShareHeld { share: Share },
    /// A held share written to the pool after (re)authorization: it is in flight again.
    HeldShareSent { share: Share },
    /// A share that was sent but will never get an answer we can match (the pending-request table
    /// overflowed because the pool stopped answering).
    ShareUnanswered { share: Share },
    /// `client.reconnect`: the pool asks us to reconnect, perhaps elsewhere, after `wait`.
    Reconnect {
        host: Option<String>,
        port: Option<u16>,
        wait: Duration,
    },
    /// `client.show_message`: text for the operator.
    ShowMessage(String),
    /// A pool answer the session could use only in part or not at all (a `mining.configure`
    /// result that cannot be read, or a mask with bits outside the one asked for); what it did
    /// instead comes as its own event. For the operator's log; the work manager needs nothing.
    Refused(Refusal),
}

/// Why a line did not advance the session. None of these end the connection by itself.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    #[error("bad line from pool: {0}")]
    Message(#[from] MessageError),
    #[error("mining.notify for job {job_id}: {source}")]
    BadJob {
        job_id: String,
        #[source]
        source: JobError,
    },
    #[error("mining.notify before the subscribe result")]
    NotSubscribed,
    /// BIP310: the pool may grant only bits of the mask asked for, and BIP320 leaves only
    /// [`BIP320_MASK`] to miners.
    #[error("mask {granted:08x} has bits outside {allowed:08x} (what was asked for, within BIP320's bits)")]
    MaskOutsideRequested { granted: u32, allowed: u32 },
}

/// What [`Session::submit`] did with a share.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SubmitOutcome {
    /// Written to the outgoing lines (in flight); the answer comes as an event.
    Sent,
    /// Held until the connection is up and authorized ([`Event::ShareHeld`] is buffered).
    Queued,
    /// Its job is not live: not sent ([`Event::ShareStale`] with `held: false` is buffered).
    Stale,
}

/// What an outstanding request of ours was.
#[derive(Clone, Debug)]
enum Pending {
    Subscribe,
    Configure,
    Authorize,
    Submit(Share),
    /// `before_authorize`: the first try, sent right before `mining.authorize`.
    SuggestDifficulty {
        before_authorize: bool,
    },
    ExtranonceSubscribe,
}

/// The extranonce a connection was given.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Extranonce {
    extranonce1: Vec<u8>,
    extranonce2_size: usize,
}

/// One pool's Stratum V1 session, across reconnects to that pool.
#[derive(Debug)]
pub struct Session {
    config: SessionConfig,
    next_id: u64,
    /// Outstanding requests by id (ids grow, so the first entry is the oldest).
    pending: BTreeMap<u64, Pending>,
    outgoing: Vec<String>,
    /// Events not yet handed out (see [`Session::take_events`]).
    events: Vec<Event>,
    connected: bool,
    authorized: bool,
    /// The pool's words when it last refused `mining.authorize` (its error, or none for a
    /// plain `false`).
    authorize_refusal: Option<String>,
    /// The pool refused `mining.suggest_difficulty` before authorization: send it again once
    /// authorized (this connection only).
    suggest_after_authorize: bool,
    /// The subscription id to resume with.
    session_id: Option<String>,
    /// The current connection's extranonce; `None` until subscribed.
    extranonce: Option<Extranonce>,
    /// The previous connection's, to tell a resumed session from a new one.
    last_extranonce: Option<Extranonce>,
    version_mask: u32,
    difficulty: f64,
    /// Live jobs, oldest first.
    jobs: VecDeque<Arc<PreparedJob>>,
    queued: VecDeque<Share>,
}

impl Session {
    pub fn new(config: SessionConfig) -> Self {
        Session {
            config,
            next_id: 1,
            pending: BTreeMap::new(),
            outgoing: Vec::new(),
            events: Vec::new(),
            connected: false,
            authorized: false,
            authorize_refusal: None,
            suggest_after_authorize: false,
            session_id: None,
            extranonce: None,
            last_extranonce: None,
            version_mask: 0,
            difficulty: 1.0,
            jobs: VecDeque::new(),
            queued: VecDeque::new(),
        }
    }

    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    /// A connection is up: queue `mining.subscribe` (resuming the last session if there was one)
    /// and, when asked for, `mining.configure`. Authorization follows the subscribe result.
    pub fn connection_opened(&mut self) {
        // Normally a no-op (the previous connection was reported lost); if not, its unanswered
        // shares must go back to the queue rather than vanish with the pending table.
        self.connection_lost();
        self.connected = true;
        let subscribe = ClientRequest::Subscribe {
            user_agent: self.config.user_agent.clone(),
            session_id: self.session_id.clone(),
        };
        self.send(subscribe, Pending::Subscribe);
        // BIP310 wants the negotiation before work is handed out; sending it right after the
        // subscribe (without waiting) gets the mask back before the pool's first notify, which
        // pools send only after authorization.
        if let Some(mask) = self.config.version_rolling {
            let configure = ClientRequest::Configure {
                version_rolling_mask: mask,
                min_bit_count: None,
            };
            self.send(configure, Pending::Configure);
        }
    }

    /// The connection is gone. Shares sent but not answered go back to the queue (each reported
    /// as [`Event::ShareHeld`]): the pool may never have seen them, and they are resent after
    /// reconnect if their job is still live (a pool that did see one answers "duplicate", which
    /// is harmless). Past [`MAX_QUEUED_SHARES`] the oldest are dropped as stale.
    pub fn connection_lost(&mut self) {
        let unanswered: Vec<Share> = std::mem::take(&mut self.pending)
            .into_values()
            .filter_map(|p| match p {
                Pending::Submit(share) => Some(share),
                _ => None,
            })
            .collect();
        // Reported in the order they were found; queued ahead of the shares held since.
        for share in &unanswered {
            self.events.push(Event::ShareHeld {
                share: share.clone(),
            });
        }
        for share in unanswered.into_iter().rev() {
            self.queued.push_front(share);
        }
        while self.queued.len() > MAX_QUEUED_SHARES {
            if let Some(share) = self.queued.pop_front() {
                self.stale(share, true, WHY_QUEUE_FULL);
            }
        }
        self.reset_connection();
    }

    /// Give up on every held share (e.g. at exit, with no connection to send them on): each is
    /// reported as [`Event::ShareStale`] with `held: true` and `why`.
    pub fn abandon_queued(&mut self, why: &str) {
        for share in std::mem::take(&mut self.queued) {
            self.stale(share, true, why);
        }
    }

    fn reset_connection(&mut self) {
        self.pending.clear();
        self.outgoing.clear();
        self.connected = false;
        self.authorized = false;
        self.suggest_after_authorize = false;
        if let Some(en) = self.extranonce.take() {
            self.last_extranonce = Some(en);
        }
    }

    /// Lines to write to the pool, in order, each ending in `\n`.
    pub fn take_outgoing(&mut self) -> Vec<String> {
        std::mem::take(&mut self.outgoing)
    }

    /// Events not yet handed out, in the order they happened: those of [`Session::submit`],
    /// [`Session::connection_lost`] and [`Session::abandon_queued`].
    /// [`Session::handle_line`] returns them too, ahead of the line's own.
    pub fn take_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }

    pub fn is_connected(&self) -> bool {
        self.connected
    }

    /// What the pool said when it last refused `mining.authorize`, if it said anything.
    pub fn authorize_refusal(&self) -> Option<&str> {
        self.authorize_refusal.as_deref()
    }

    /// Subscribed and authorized: shares go out at once.
    pub fn is_ready(&self) -> bool {
        self.connected && self.authorized && self.extranonce.is_some()
    }

    /// The difficulty the next job will carry.
    pub fn difficulty(&self) -> f64 {
        self.difficulty
    }

    /// The negotiated BIP310 mask (0: no version rolling).
    pub fn version_mask(&self) -> u32 {
        self.version_mask
    }

    pub fn session_id(&self) -> Option<&str> {
        self.session_id.as_deref()
    }

    pub fn extranonce1(&self) -> Option<&[u8]> {
        self.extranonce.as_ref().map(|e| e.extranonce1.as_slice())
    }

    /// Shares waiting for the connection (held).
    pub fn queued_shares(&self) -> usize {
        self.queued.len()
    }

    /// Shares sent on this connection and not answered yet (in flight).
    pub fn pending_shares(&self) -> usize {
        self.pending
            .values()
            .filter(|p| matches!(p, Pending::Submit(_)))
            .count()
    }

    /// The live job with this id, if any.
    pub fn job(&self, job_id: &str) -> Option<&Arc<PreparedJob>> {
        self.jobs.iter().rev().find(|j| j.job().id == job_id)
    }

    /// Whether a share for this job would still be accepted by the pool as far as we know: the
    /// job is live (no clean notify since) and built on the extranonce the pool now uses for us.
    pub fn is_job_live(&self, job_id: &str) -> bool {
        self.job(job_id).is_some_and(|j| self.extranonce_matches(j))
    }

    /// Why a share for this job is not live (see [`Session::is_job_live`]).
    fn stale_why(&self, job_id: &str) -> &'static str {
        if self.job(job_id).is_some() {
            WHY_EXTRANONCE_CHANGED
        } else {
            // Replaced by a clean notify, aged out of the live jobs, or from a session the pool
            // did not resume.
            WHY_JOB_REPLACED
        }
    }

    fn extranonce_matches(&self, job: &PreparedJob) -> bool {
        // While disconnected, judge by the last extranonce we had: if the pool resumes the
        // session the jobs stay good, and the subscribe result decides otherwise.
        let current = self.extranonce.as_ref().or(self.last_extranonce.as_ref());
        current.is_some_and(|en| {
            let cb = &job.job().coinbase;
            cb.extranonce1 == en.extranonce1 && cb.extranonce2_size == en.extranonce2_size
        })
    }

    fn stale(&mut self, share: Share, held: bool, why: &str) {
        self.events.push(Event::ShareStale {
            share,
            held,
            why: why.to_owned(),
        });
    }

    /// Hand in a share found by the miner. The outcome says where it went; for `Queued` and
    /// `Stale` the matching event is buffered as well (see [`Session::take_events`]).
    pub fn submit(&mut self, share: Share) -> SubmitOutcome {
        if !self.is_job_live(&share.job_id) {
            let why = self.stale_why(&share.job_id);
            self.stale(share, false, why);
            return SubmitOutcome::Stale;
        }
        if self.is_ready() {
            self.send_share(share);
            SubmitOutcome::Sent
        } else {
            if self.queued.len() >= MAX_QUEUED_SHARES {
                if let Some(oldest) = self.queued.pop_front() {
                    self.stale(oldest, true, WHY_QUEUE_FULL);
                }
            }
            self.events.push(Event::ShareHeld {
                share: share.clone(),
            });
            self.queued.push_back(share);
            SubmitOutcome::Queued
        }
    }

    fn send_share(&mut self, share: Share) {
        let request = ClientRequest::Submit {
            worker: self.config.user.clone(),
            share: share.clone(),
        };
        self.send(request, Pending::Submit(share));
    }

    fn send(&mut self, request: ClientRequest, what: Pending) {
        let id = self.next_id;
        self.next_id += 1;
        self.outgoing.push(request.to_line(id));
        // A pool that never answers must not grow this without bound; the oldest request is
        // long lost by then. A share among them will never be matched to an answer: say so.
        if self.pending.len() >= MAX_PENDING_REQUESTS {
            if let Some((_, Pending::Submit(share))) = self.pending.pop_first() {
                self.events.push(Event::ShareUnanswered { share });
            }
        }
        self.pending.insert(id, what);
    }

    fn send_suggest_difficulty(&mut self, before_authorize: bool) {
        if let Some(d) = self.config.suggest_difficulty {
            self.send(
                ClientRequest::SuggestDifficulty(d),
                Pending::SuggestDifficulty { before_authorize },
            );
        }
    }

    /// Send the queued shares whose job is still live; the others are reported stale.
    fn flush_queue(&mut self) {
        for share in std::mem::take(&mut self.queued) {
            if self.is_job_live(&share.job_id) {
                self.events.push(Event::HeldShareSent {
                    share: share.clone(),
                });
                self.send_share(share);
            } else {
                let why = self.stale_why(&share.job_id);
                self.stale(share, true, why);
            }
        }
    }

    /// Feed one line from the pool (without its newline). Returns the events buffered before
    /// (see [`Session::take_events`]) followed by the line's own. A line refused changed
    /// nothing, and the buffered events stay buffered; the [`Refusal`] says what was refused,
    /// why, and what the session keeps.
    pub fn handle_line(&mut self, line: &[u8]) -> Result<Vec<Event>, Refusal> {
        let value = match parse_json(line) {
            Ok(v) => v,
            Err(e) => return Err(unreadable(line, e.into())),
        };
        let message = parse_value(&value).map_err(|e| self.refusal(&value, e.into()))?;
        match message {
            Message::Response(r) => self.handle_response(r),
            Message::Request(r) => {
                if let Err(e) = self.handle_request(r) {
                    return Err(self.refusal(&value, e));
                }
            }
        }
        Ok(self.take_events())
    }

    /// The refusal of the pool message `value` for `cause`, saying what the session keeps.
    fn refusal(&self, value: &Value, cause: SessionError) -> Refusal {
        let Some(method) = value.get("method").and_then(Value::as_str) else {
            return unreadable(value.to_string().as_bytes(), cause);
        };
        let kind = RefusalKind::of_method(method);
        let empty = Vec::new();
        let params = match value.get("params") {
            Some(Value::Array(a)) => a,
            _ => &empty,
        };
        let param = |i: usize| {
            params
                .get(i)
                .map_or_else(|| "nothing".to_owned(), peer_text)
        };
        let what = match kind {
            RefusalKind::Difficulty => format!("{method} with difficulty {}", param(0)),
            RefusalKind::Job => format!("{method} for job {}", param(0)),
            RefusalKind::Extranonce => format!(
                "{method} with extranonce1 {} and extranonce2 size {}",
                param(0),
                param(1)
            ),
            RefusalKind::VersionMask => format!("{method} with mask {}", param(0)),
            _ => format!(
                "{method} with {}",
                peer_text(value.get("params").unwrap_or(&Value::Null))
            ),
        };
        let kept = match kind {
            RefusalKind::Difficulty => format!("keeping difficulty {}", self.difficulty),
            RefusalKind::Job => match self.jobs.back() {
                Some(j) => format!("still mining job {}", printable_cut(&j.job().id, 40)),
                None => "no job to mine yet".to_owned(),
            },
            RefusalKind::Extranonce => match &self.extranonce {
                Some(en) => format!(
                    "keeping extranonce1 {} and extranonce2 size {}",
                    bitcoin::hex::DisplayHex::to_lower_hex_string(&en.extranonce1[..]),
                    en.extranonce2_size
                ),
                None => "no extranonce yet".to_owned(),
            },
            RefusalKind::VersionMask => format!("keeping version mask {:08x}", self.version_mask),
            RefusalKind::Reconnect => "staying connected".to_owned(),
            _ => "nothing changed".to_owned(),
        };
        refusal(kind, &what, cause, &kept)
    }

    fn handle_response(&mut self, r: Response) {
        // Responses to requests we did not make (or made on an earlier connection) are ignored.
        let Some(Id::Number(id)) = r.id else {
            return;
        };
        let Some(what) = self.pending.remove(&id) else {
            return;
        };
        match what {
            Pending::Subscribe => self.on_subscribed(&r),
            Pending::Configure => {
                // A pool that does not know `mining.configure` answers with an error: no rolling.
                // An answer without an error that cannot be read is refused: no rolling either.
                let granted = match r.configure_result() {
                    _ if r.error.is_some() => None,
                    Ok(c) => c.version_rolling_mask,
                    Err(e) => {
                        let what = format!("a mining.configure result of {}", peer_text(&r.result));
                        let kept = "not rolling the version";
                        let refused = refusal(RefusalKind::VersionMask, &what, e.into(), kept);
                        self.events.push(Event::Refused(refused));
                        None
                    }
                };
                // BIP310: the pool's mask is a subset of ours; AND them in case it is not, and
                // never roll a bit outside BIP320's.
                let requested = self.config.version_rolling.unwrap_or(0);
                if let Some(m) = granted {
                    self.refuse_mask_outside(m, "a mining.configure result granting mask");
                }
                let mask = granted
                    .map(|m| m & requested & BIP320_MASK)
                    .filter(|m| *m != 0);
                self.version_mask = mask.unwrap_or(0);
                self.events.push(Event::VersionRolling { mask });
            }
            Pending::Authorize => {
                let ok = r.is_accepted();
                self.authorized = ok;
                self.authorize_refusal = match (&r.error, ok) {
                    (Some(e), false) if !e.message.is_empty() => Some(e.message.clone()),
                    (Some(e), false) => Some(e.to_string()),
                    _ => None,
                };
                self.events.push(Event::Authorized(ok));
                if ok {
                    if self.config.extranonce_subscribe {
                        self.send(
                            ClientRequest::ExtranonceSubscribe,
                            Pending::ExtranonceSubscribe,
                        );
                    }
                    if std::mem::take(&mut self.suggest_after_authorize) {
                        self.send_suggest_difficulty(false);
                    }
                    self.flush_queue();
                }
            }
            Pending::Submit(share) => {
                if r.is_accepted() {
                    self.events.push(Event::ShareAccepted { share });
                } else {
                    let reason = reject_reason(&r);
                    self.events.push(Event::ShareRejected { share, reason });
                }
            }
            Pending::SuggestDifficulty {
                before_authorize: true,
            } => {
                // Some pools take the suggestion only from an authorized worker: try once more
                // after authorizing (at once if the authorize answer came first).
                let refused = r.error.is_some() || r.result == Value::Bool(false);
                if refused {
                    if self.authorized {
                        self.send_suggest_difficulty(false);
                    } else {
                        self.suggest_after_authorize = true;
                    }
                }
            }
            // Pools answer these with true, false, null or an error; none of it changes anything.
            Pending::SuggestDifficulty {
                before_authorize: false,
            }
            | Pending::ExtranonceSubscribe => {}
        }
    }

    fn on_subscribed(&mut self, r: &Response) {
        let result = match &r.error {
            Some(e) => Err(e.to_string()),
            None => r.subscribe_result().map_err(|e| e.to_string()),
        };
        let sub = match result {
            Ok(sub) => sub,
            Err(reason) => {
                self.events.push(Event::SubscribeFailed { reason });
                return;
            }
        };
        let en = Extranonce {
            extranonce1: sub.extranonce1.clone(),
            extranonce2_size: sub.extranonce2_size,
        };
        let resumed = self.last_extranonce.as_ref() == Some(&en);
        if !resumed {
            // A new session: old jobs were built on an extranonce the pool no longer gives us,
            // and its difficulty starts from the protocol default until it says otherwise.
            self.jobs.clear();
            self.difficulty = 1.0;
        }
        if let Some(id) = sub.session_id() {
            self.session_id = Some(id.to_owned());
        }
        self.extranonce = Some(en);
        self.events.push(Event::Subscribed {
            extranonce1: sub.extranonce1,
            extranonce2_size: sub.extranonce2_size,
            session_id: self.session_id.clone(),
            resumed,
        });
        // Before authorize: public-pool and others set the worker's difficulty from it while
        // authorizing; sent after, they first impose their default (16384) with a job.
        self.send_suggest_difficulty(true);
        let authorize = ClientRequest::Authorize {
            user: self.config.user.clone(),
            password: self.config.password.clone(),
        };
        self.send(authorize, Pending::Authorize);
    }

    fn handle_request(&mut self, r: ServerRequest) -> Result<(), SessionError> {
        match r.method {
            ServerMethod::Notify(n) => {
                let en = self
                    .extranonce
                    .as_ref()
                    .ok_or(SessionError::NotSubscribed)?;
                let ctx = NotifyContext {
                    extranonce1: en.extranonce1.clone(),
                    extranonce2_size: en.extranonce2_size,
                    difficulty: self.difficulty,
                    version_mask: self.version_mask,
                    ntime_roll: self.config.ntime_roll,
                };
                let bad_job = |source| SessionError::BadJob {
                    job_id: n.job_id.clone(),
                    source,
                };
                let job = n.to_job(&ctx).map_err(bad_job)?;
                let job = Arc::new(job.prepare().map_err(bad_job)?);
                if n.clean {
                    self.jobs.clear();
                }
                // A pool reusing a job id replaces the job.
                self.jobs.retain(|j| j.job().id != n.job_id);
                if self.jobs.len() >= MAX_LIVE_JOBS {
                    self.jobs.pop_front();
                }
                self.jobs.push_back(Arc::clone(&job));
                self.events.push(Event::NewJob {
                    job,
                    clean: n.clean,
                });
            }
            ServerMethod::SetDifficulty(d) => {
                // Jobs notified from now on carry it; jobs already out keep the share target they
                // were built with, and the runner re-targets work on the current job itself.
                self.difficulty = d;
                self.events.push(Event::DifficultyChanged(d));
            }
            ServerMethod::SetExtranonce {
                extranonce1,
                extranonce2_size,
            } => {
                self.extranonce = Some(Extranonce {
                    extranonce1,
                    extranonce2_size,
                });
            }
            ServerMethod::SetVersionMask(mask) => {
                self.refuse_mask_outside(mask, "mining.set_version_mask with mask");
                let requested = self.config.version_rolling.unwrap_or(0);
                self.version_mask = mask & requested & BIP320_MASK;
                let mask = Some(self.version_mask).filter(|m| *m != 0);
                self.events.push(Event::VersionRolling { mask });
            }
            ServerMethod::Reconnect {
                host,
                port,
                wait_secs,
            } => self.events.push(Event::Reconnect {
                host,
                port,
                wait: Duration::from_secs(wait_secs.unwrap_or(0)),
            }),
            ServerMethod::ShowMessage(text) => self.events.push(Event::ShowMessage(text)),
            ServerMethod::GetVersion => {
                if let Some(id) = &r.id {
                    let line = reply_line(id, Value::from(self.config.user_agent.as_str()));
                    self.outgoing.push(line);
                }
            }
            ServerMethod::Other { method, .. } => {
                if let Some(id) = &r.id {
                    // Some pools ping to check the miner is alive.
                    let line = if method == "mining.ping" {
                        reply_line(id, Value::from("pong"))
                    } else {
                        // 20: "Other/Unknown" in the original Stratum V1 error codes.
                        error_reply_line(id, 20, "Method not found")
                    };
                    self.outgoing.push(line);
                }
            }
        }
        Ok(())
    }
}

impl Session {
    /// A mask granted with bits outside what was asked for (BIP310) or outside BIP320's: those
    /// bits are not rolled, and the operator is told (`what` names the message).
    fn refuse_mask_outside(&mut self, granted: u32, what: &str) {
        let allowed = self.config.version_rolling.unwrap_or(0) & BIP320_MASK;
        if granted & !allowed == 0 {
            return;
        }
        let used = granted & allowed;
        let cause = SessionError::MaskOutsideRequested { granted, allowed };
        let what = format!("{what} {granted:08x}");
        let kept = format!("rolling only {used:08x}");
        let refused = refusal(RefusalKind::VersionMask, &what, cause, &kept);
        self.events.push(Event::Refused(refused));
    }
}

/// How much of one piece of peer text a refusal shows.
const PEER_TEXT_MAX: usize = 80;

/// A value the pool sent, as a refusal shows it: its JSON text (a string without its quotes),
/// printable and cut short.
fn peer_text(v: &Value) -> String {
    match v {
        Value::String(s) => printable_cut(s, PEER_TEXT_MAX),
        other => printable_cut(&other.to_string(), PEER_TEXT_MAX),
    }
}

/// The operator's line for a refused message (see [`Refusal`]).
fn refusal(kind: RefusalKind, what: &str, cause: SessionError, kept: &str) -> Refusal {
    let why = match &cause {
        // The method is in `what` already.
        SessionError::Message(MessageError::BadParams { reason, .. }) => (*reason).to_owned(),
        SessionError::Message(MessageError::BadField { source, .. }) => source.to_string(),
        SessionError::Message(MessageError::TooLong {
            field, len, max, ..
        }) => format!("{field} of {len} bytes is over the {max}-byte limit"),
        SessionError::BadJob { source, .. } => source.to_string(),
        other => other.to_string(),
    };
    // Peer text in `why` too (a serde message quoting the input): printable all of it.
    let text = crate::text::printable(&format!("pool sent {what}: {why}; ignored, {kept}"));
    Refusal { kind, cause, text }
}

/// A line that is not a Stratum message at all (`line`: what of it can be shown, if anything).
pub(crate) fn unreadable(line: &[u8], cause: SessionError) -> Refusal {
    let why = match &cause {
        SessionError::Message(m) => m.to_string(),
        other => other.to_string(),
    };
    let shown = match printable_cut(&String::from_utf8_lossy(line), PEER_TEXT_MAX) {
        s if s.is_empty() => String::new(),
        s => format!(": {s}"),
    };
    let text = crate::text::printable(&format!(
        "pool sent a line that is not a Stratum message ({why}){shown}; ignored"
    ));
    Refusal {
        kind: RefusalKind::Unreadable,
        cause,
        text,
    }
}

/// The pool's reason for rejecting a share: ckpool's `reject-reason`, the error message, or a
/// plain word when the pool gives none.
fn reject_reason(r: &Response) -> String {
    if let Some(reason) = r.reject_reason.as_deref().filter(|s| !s.is_empty()) {
        return reason.to_owned();
    }
    match &r.error {
        Some(e) if !e.message.is_empty() => e.message.clone(),
        Some(e) => e.to_string(),
        None => "rejected".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pow::target_from_difficulty;
    use crate::work::Extranonce2;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    use serde_json::json;

    // The slush documentation session (tests/data/stratum.json).
    const SLUSH_SUBSCRIBE: &str = r#"[[["mining.set_difficulty","b4b6693b72a50c7116db18d6497cac52"],["mining.notify","ae6812eb4cd7735a302a8a9dd95cf71f"]],"08000002",4]"#;
    const SLUSH_NOTIFY_PARAMS: &str = r#"["bf","4d16b6f85af6e2198f44ae2a6de67f78487ae5611b77c6c0440b921e00000000","01000000010000000000000000000000000000000000000000000000000000000000000000ffffffff20020862062f503253482f04b8864e5008","072f736c7573682f000000000100f2052a010000001976a914d23fcdf86f7e756a64a7a9688ef9903327048ed988ac00000000",[],"00000002","1c2ac4af","504e86b9",false]"#;

    fn notify_line(job_id: &str, clean: bool) -> String {
        let mut params: Value = serde_json::from_str(SLUSH_NOTIFY_PARAMS).unwrap();
        params[0] = json!(job_id);
        params[8] = json!(clean);
        json!({"id": null, "method": "mining.notify", "params": params}).to_string()
    }

    fn sent(s: &mut Session) -> Vec<Value> {
        s.take_outgoing()
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    fn feed(s: &mut Session, line: &str) -> Vec<Event> {
        s.handle_line(line.as_bytes()).unwrap()
    }

    fn reply(s: &mut Session, id: &Value, result: &str) -> Vec<Event> {
        feed(
            s,
            &format!(r#"{{"id":{id},"result":{result},"error":null}}"#),
        )
    }

    fn share(job_id: &str) -> Share {
        Share {
            job_id: job_id.into(),
            extranonce2: Some(Extranonce2::from_hex("00000001").unwrap()),
            ntime: 0x504e86ed,
            nonce: 0xb2957c02,
            version_bits: None,
        }
    }

    fn share_n(job_id: &str, nonce: u32) -> Share {
        Share {
            nonce,
            ..share(job_id)
        }
    }

    /// Replays submit outcomes and events: where every share handed in is now. Shares are told
    /// apart by their nonce (the tests give each its own).
    #[derive(Debug, Default)]
    struct Ledger {
        submitted: usize,
        accepted: usize,
        rejected: usize,
        stale: usize,
        unanswered: usize,
        held: Vec<u32>,
        in_flight: Vec<u32>,
        /// Shares that went from in flight back to held (a connection lost), and from held to
        /// in flight (sent after authorization).
        returned: usize,
        resent: usize,
    }

    fn take_nonce(from: &mut Vec<u32>, nonce: u32, what: &str) {
        let i = from
            .iter()
            .position(|n| *n == nonce)
            .unwrap_or_else(|| panic!("share {nonce} was not {what}"));
        from.swap_remove(i);
    }

    impl Ledger {
        /// `s.submit`, accounted.
        fn submit(&mut self, s: &mut Session, share: Share) -> SubmitOutcome {
            self.submitted += 1;
            let nonce = share.nonce;
            let outcome = s.submit(share);
            if outcome == SubmitOutcome::Sent {
                self.in_flight.push(nonce);
            }
            let mut new = (outcome != SubmitOutcome::Sent).then_some(nonce);
            self.replay_new(&s.take_events(), &mut new);
            assert_eq!(new, None, "no event for a share {outcome:?}");
            self.check(s);
            outcome
        }

        /// Events that are not about a share just handed in.
        fn replay(&mut self, events: &[Event]) {
            self.replay_new(events, &mut None);
        }

        /// `new`: the share just handed in (queued or stale), until its event is seen.
        fn replay_new(&mut self, events: &[Event], new: &mut Option<u32>) {
            for e in events {
                match e {
                    Event::ShareAccepted { share } => {
                        take_nonce(&mut self.in_flight, share.nonce, "in flight");
                        self.accepted += 1;
                    }
                    Event::ShareRejected { share, .. } => {
                        take_nonce(&mut self.in_flight, share.nonce, "in flight");
                        self.rejected += 1;
                    }
                    Event::ShareUnanswered { share } => {
                        take_nonce(&mut self.in_flight, share.nonce, "in flight");
                        self.unanswered += 1;
                    }
                    Event::ShareStale {
                        share, held, why, ..
                    } => {
                        assert!(!why.is_empty() && why.to_lowercase() == *why, "{why}");
                        if *held {
                            take_nonce(&mut self.held, share.nonce, "held");
                        } else {
                            assert_eq!(new.take(), Some(share.nonce), "stale, not held");
                        }
                        self.stale += 1;
                    }
                    Event::ShareHeld { share } => {
                        if *new == Some(share.nonce) {
                            *new = None;
                        } else {
                            take_nonce(&mut self.in_flight, share.nonce, "in flight");
                            self.returned += 1;
                        }
                        self.held.push(share.nonce);
                    }
                    Event::HeldShareSent { share } => {
                        take_nonce(&mut self.held, share.nonce, "held");
                        self.in_flight.push(share.nonce);
                        self.resent += 1;
                    }
                    _ => {}
                }
            }
        }

        /// Every share in exactly one place, and the session agrees on the held and in-flight
        /// ones.
        fn check(&self, s: &Session) {
            let sorted = |v: Vec<u32>| {
                let mut v = v;
                v.sort_unstable();
                v
            };
            let queued: Vec<u32> = s.queued.iter().map(|sh| sh.nonce).collect();
            let pending: Vec<u32> = s
                .pending
                .values()
                .filter_map(|p| match p {
                    Pending::Submit(sh) => Some(sh.nonce),
                    _ => None,
                })
                .collect();
            assert_eq!(sorted(self.held.clone()), sorted(queued));
            assert_eq!(sorted(self.in_flight.clone()), sorted(pending));
            assert_eq!(s.queued_shares(), self.held.len());
            assert_eq!(s.pending_shares(), self.in_flight.len());
            assert_eq!(
                self.submitted,
                self.accepted
                    + self.rejected
                    + self.stale
                    + self.unanswered
                    + self.held.len()
                    + self.in_flight.len(),
                "{self:?}"
            );
        }
    }

    fn stale_why(ev: &Event) -> Option<(bool, &str)> {
        match ev {
            Event::ShareStale { held, why, .. } => Some((*held, why.as_str())),
            _ => None,
        }
    }

    #[test]
    fn a_refused_authorization_keeps_the_pools_words() {
        let mut config = SessionConfig::new("nobody", "x");
        config.version_rolling = None;
        let mut s = Session::new(config);
        s.connection_opened();
        let out = sent(&mut s);
        reply(&mut s, &out[0]["id"], SLUSH_SUBSCRIBE);
        let out = sent(&mut s);
        let id = &out[0]["id"];
        let ev = feed(
            &mut s,
            &format!(r#"{{"id":{id},"result":null,"error":[24,"unknown worker nobody",null]}}"#),
        );
        assert!(matches!(ev[..], [Event::Authorized(false)]), "{ev:?}");
        assert_eq!(s.authorize_refusal(), Some("unknown worker nobody"));
    }

    /// A session through subscribe and authorize, no version rolling.
    fn ready() -> Session {
        let mut config = SessionConfig::new("slush.miner1", "password");
        config.version_rolling = None;
        let mut s = Session::new(config);
        s.connection_opened();
        let out = sent(&mut s);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0]["method"], "mining.subscribe");
        let ev = reply(&mut s, &out[0]["id"], SLUSH_SUBSCRIBE);
        assert!(matches!(ev[..], [Event::Subscribed { resumed: false, .. }]));
        let out = sent(&mut s);
        assert_eq!(out[0]["method"], "mining.authorize");
        assert_eq!(out[0]["params"], json!(["slush.miner1", "password"]));
        let ev = reply(&mut s, &out[0]["id"], "true");
        assert!(matches!(ev[..], [Event::Authorized(true)]));
        assert!(s.is_ready());
        s
    }

    fn new_job(ev: &[Event]) -> Arc<PreparedJob> {
        match ev {
            [Event::NewJob { job, .. }] => Arc::clone(job),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn slush_session_share_is_accepted() {
        let mut s = ready();
        let job = new_job(&feed(&mut s, &notify_line("bf", false)));
        assert_eq!(job.job().coinbase.extranonce1, vec![8, 0, 0, 2]);
        assert_eq!(job.check_share(&share("bf")).map(|_| ()), Ok(()));
        assert_eq!(s.submit(share("bf")), SubmitOutcome::Sent);
        let out = sent(&mut s);
        assert_eq!(
            out[0]["params"],
            json!(["slush.miner1", "bf", "00000001", "504e86ed", "b2957c02"])
        );
        let ev = reply(&mut s, &out[0]["id"], "true");
        assert!(matches!(&ev[..], [Event::ShareAccepted { share: sh }] if sh.job_id == "bf"));
    }

    #[test]
    fn rejections_carry_the_pools_reason() {
        let mut s = ready();
        feed(&mut s, &notify_line("bf", false));
        for (answer, want) in [
            (
                r#""result":null,"error":[21,"Job not found",null]"#,
                "Job not found",
            ),
            (
                r#""result":false,"error":null,"reject-reason":"Above target""#,
                "Above target",
            ),
            (r#""result":false,"error":null"#, "rejected"),
            (
                r#""result":null,"error":{"code":23,"message":"Low difficulty share"}"#,
                "Low difficulty share",
            ),
        ] {
            s.submit(share("bf"));
            let id = &sent(&mut s)[0]["id"];
            let ev = feed(&mut s, &format!(r#"{{"id":{id},{answer}}}"#));
            match &ev[..] {
                [Event::ShareRejected { reason, .. }] => assert_eq!(reason, want),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn difficulty_applies_to_the_next_job_only() {
        let mut s = ready();
        let a = new_job(&feed(&mut s, &notify_line("a", false)));
        let ev = feed(
            &mut s,
            r#"{"id":null,"method":"mining.set_difficulty","params":[512]}"#,
        );
        assert!(matches!(ev[..], [Event::DifficultyChanged(d)] if d == 512.0));
        assert_eq!(s.difficulty(), 512.0);
        let b = new_job(&feed(&mut s, &notify_line("b", false)));
        assert_eq!(a.job().share_target, target_from_difficulty(1.0).unwrap());
        assert_eq!(b.job().share_target, target_from_difficulty(512.0).unwrap());
        // Not clean: both jobs stay submittable.
        assert!(s.is_job_live("a") && s.is_job_live("b"));
    }

    #[test]
    fn clean_notify_makes_earlier_jobs_stale() {
        let mut s = ready();
        feed(&mut s, &notify_line("a", false));
        feed(&mut s, &notify_line("b", true));
        assert!(!s.is_job_live("a"));
        assert_eq!(s.submit(share("a")), SubmitOutcome::Stale);
        assert!(s.take_outgoing().is_empty());
        let ev = s.take_events();
        assert_eq!(
            ev.iter().map(stale_why).collect::<Vec<_>>(),
            [Some((false, "job replaced"))]
        );
        assert_eq!(s.submit(share("b")), SubmitOutcome::Sent);
        assert!(!s.is_job_live("nope"));
    }

    #[test]
    fn unanswered_requests_and_queued_shares_are_bounded() {
        let mut s = ready();
        let mut ledger = Ledger::default();
        feed(&mut s, &notify_line("bf", false));
        let mut nonce = 0;
        for _ in 0..MAX_PENDING_REQUESTS + 10 {
            nonce += 1;
            assert_eq!(
                ledger.submit(&mut s, share_n("bf", nonce)),
                SubmitOutcome::Sent
            );
        }
        assert_eq!(s.pending.len(), MAX_PENDING_REQUESTS);
        // The 10 oldest shares were pushed out of the table: reported, not lost.
        assert_eq!(ledger.unanswered, 10);
        s.take_outgoing();
        s.connection_lost();
        let ev = s.take_events();
        assert_eq!(ev.len(), MAX_PENDING_REQUESTS * 2 - MAX_QUEUED_SHARES);
        assert!(ev[..MAX_PENDING_REQUESTS]
            .iter()
            .all(|e| matches!(e, Event::ShareHeld { .. })));
        assert!(ev[MAX_PENDING_REQUESTS..]
            .iter()
            .all(|e| stale_why(e) == Some((true, "held queue full"))));
        ledger.replay(&ev);
        ledger.check(&s);
        assert_eq!(s.queued_shares(), MAX_QUEUED_SHARES);
        assert_eq!(s.pending_shares(), 0);
        let stale_before = ledger.stale;
        for _ in 0..10 {
            nonce += 1;
            assert_eq!(
                ledger.submit(&mut s, share_n("bf", nonce)),
                SubmitOutcome::Queued
            );
        }
        // Each new one pushed the oldest held share out.
        assert_eq!(ledger.stale - stale_before, 10);
        assert_eq!(s.queued_shares(), MAX_QUEUED_SHARES);
    }

    #[test]
    fn live_jobs_are_bounded() {
        let mut s = ready();
        for i in 0..MAX_LIVE_JOBS + 3 {
            feed(&mut s, &notify_line(&i.to_string(), false));
        }
        assert!(!s.is_job_live("0"));
        assert!(s.is_job_live(&(MAX_LIVE_JOBS + 2).to_string()));
    }

    #[test]
    fn set_extranonce_applies_to_later_jobs() {
        let mut s = ready();
        let a = new_job(&feed(&mut s, &notify_line("a", false)));
        feed(
            &mut s,
            r#"{"id":null,"method":"mining.set_extranonce","params":["0a0b0c0d0e",3]}"#,
        );
        assert_eq!(a.job().coinbase.extranonce1, vec![8, 0, 0, 2]);
        // The pool now builds coinbases with the new extranonce1: old work is stale.
        assert!(!s.is_job_live("a"));
        assert_eq!(s.submit(share("a")), SubmitOutcome::Stale);
        assert_eq!(
            stale_why(&s.take_events()[0]),
            Some((false, "extranonce changed"))
        );
        let b = new_job(&feed(&mut s, &notify_line("b", false)));
        assert_eq!(b.job().coinbase.extranonce1, vec![10, 11, 12, 13, 14]);
        assert_eq!(b.job().coinbase.extranonce2_size, 3);
        assert!(s.is_job_live("b"));
    }

    #[test]
    fn only_bip320_bits_are_rolled_whatever_the_pool_grants() {
        let mut config = SessionConfig::new("w", "x");
        // Even a miner configured to ask for every bit rolls only BIP320's (and says so).
        config.version_rolling = Some(0xffff_ffff);
        let mut s = Session::new(config);
        s.connection_opened();
        let out = sent(&mut s);
        let ev = reply(
            &mut s,
            &out[1]["id"],
            r#"{"version-rolling":true,"version-rolling.mask":"ffffffff"}"#,
        );
        assert!(
            matches!(
                ev[..],
                [
                    Event::Refused(_),
                    Event::VersionRolling {
                        mask: Some(BIP320_MASK)
                    }
                ]
            ),
            "{ev:?}"
        );
        assert_eq!(s.version_mask(), BIP320_MASK);
        let ev = feed(
            &mut s,
            r#"{"id":null,"method":"mining.set_version_mask","params":["ffffffff"]}"#,
        );
        assert!(
            matches!(
                ev[..],
                [
                    Event::Refused(_),
                    Event::VersionRolling {
                        mask: Some(BIP320_MASK)
                    }
                ]
            ),
            "{ev:?}"
        );
        // A grant outside BIP320's bits only: no rolling at all.
        let ev = feed(
            &mut s,
            r#"{"id":null,"method":"mining.set_version_mask","params":["e0000001"]}"#,
        );
        assert!(
            matches!(
                ev[..],
                [Event::Refused(_), Event::VersionRolling { mask: None }]
            ),
            "{ev:?}"
        );
        assert_eq!(s.version_mask(), 0);
    }

    #[test]
    fn version_rolling_is_negotiated_and_used() {
        let mut s = Session::new(SessionConfig::new("w", "x"));
        s.connection_opened();
        let out = sent(&mut s);
        assert_eq!(out[1]["method"], "mining.configure");
        assert_eq!(
            out[1]["params"],
            json!([["version-rolling"], {"version-rolling.mask": "1fffe000"}])
        );
        let ev = reply(
            &mut s,
            &out[1]["id"],
            r#"{"version-rolling":true,"version-rolling.mask":"1fffe000"}"#,
        );
        assert!(matches!(
            ev[..],
            [Event::VersionRolling {
                mask: Some(0x1fffe000)
            }]
        ));
        reply(&mut s, &out[0]["id"], SLUSH_SUBSCRIBE);
        let job = new_job(&feed(&mut s, &notify_line("v", false)));
        assert_eq!(job.job().version_mask, 0x1fffe000);
        feed(
            &mut s,
            r#"{"method":"mining.set_version_mask","params":["00ffe000"]}"#,
        );
        assert_eq!(s.version_mask(), 0x00ffe000);
        // A pool that does not know mining.configure: no rolling, nothing breaks.
        let mut s = Session::new(SessionConfig::new("w", "x"));
        s.connection_opened();
        let out = sent(&mut s);
        let ev = feed(
            &mut s,
            &format!(
                r#"{{"id":{},"result":null,"error":[20,"Method not found",null]}}"#,
                out[1]["id"]
            ),
        );
        assert!(matches!(ev[..], [Event::VersionRolling { mask: None }]));
        assert_eq!(s.version_mask(), 0);
    }

    #[test]
    fn shares_wait_for_authorization_and_survive_a_resumed_reconnect() {
        let mut s = ready();
        let mut ledger = Ledger::default();
        feed(&mut s, &notify_line("bf", false));
        ledger.submit(&mut s, share("bf"));
        let first = sent(&mut s);
        assert_eq!(s.pending_shares(), 1);
        s.connection_lost();
        assert_eq!(s.queued_shares(), 1);
        assert_eq!(s.pending_shares(), 0);
        // Sent but unanswered: back to held, and said so.
        let ev = s.take_events();
        assert!(matches!(&ev[..], [Event::ShareHeld { share: sh }] if sh.nonce == 0xb2957c02));
        ledger.replay(&ev);
        ledger.check(&s);
        // Found while down: queued too.
        let later = share_n("bf", 7);
        assert_eq!(ledger.submit(&mut s, later), SubmitOutcome::Queued);
        s.connection_opened();
        let out = sent(&mut s);
        assert_eq!(
            out[0]["params"],
            json!([
                crate::stratum::user_agent(),
                "ae6812eb4cd7735a302a8a9dd95cf71f"
            ])
        );
        let ev = reply(&mut s, &out[0]["id"], SLUSH_SUBSCRIBE);
        assert!(matches!(ev[..], [Event::Subscribed { resumed: true, .. }]));
        let auth = sent(&mut s);
        assert!(s.take_outgoing().is_empty());
        let ev = reply(&mut s, &auth[0]["id"], "true");
        assert!(matches!(
            &ev[..],
            [Event::Authorized(true), Event::HeldShareSent { share: a }, Event::HeldShareSent { share: b }]
            if a.nonce == 0xb2957c02 && b.nonce == 7
        ));
        ledger.replay(&ev);
        let resent = sent(&mut s);
        assert_eq!(resent.len(), 2);
        assert_eq!(resent[0]["params"], first[0]["params"]);
        assert_eq!(resent[1]["params"][4], "00000007");
        assert_eq!(s.queued_shares(), 0);
        ledger.check(&s);
        assert_eq!(ledger.in_flight.len(), 2);
    }

    #[test]
    fn a_new_session_after_reconnect_makes_queued_shares_stale() {
        let mut s = ready();
        feed(&mut s, &notify_line("bf", false));
        s.connection_lost();
        assert_eq!(s.submit(share("bf")), SubmitOutcome::Queued);
        assert!(matches!(&s.take_events()[..], [Event::ShareHeld { .. }]));
        s.connection_opened();
        let out = sent(&mut s);
        let other = r#"[[["mining.notify","x"]],"01020304",4]"#;
        let ev = reply(&mut s, &out[0]["id"], other);
        assert!(matches!(ev[..], [Event::Subscribed { resumed: false, .. }]));
        let auth = sent(&mut s);
        let ev = reply(&mut s, &auth[0]["id"], "true");
        assert!(matches!(ev[..], [Event::Authorized(true), _]));
        assert_eq!(stale_why(&ev[1]), Some((true, "job replaced")));
        assert!(s.take_outgoing().is_empty());
    }

    #[test]
    fn suggested_difficulty_goes_before_authorization_and_again_after_if_refused() {
        let methods = |out: &[Value]| -> Vec<String> {
            out.iter()
                .map(|m| m["method"].as_str().unwrap_or("").to_owned())
                .collect()
        };
        let refuse = |id: &Value| format!(r#"{{"id":{id},"result":null,"error":[20,"no",null]}}"#);
        let mut config = SessionConfig::new("w", "x");
        config.version_rolling = None;
        config.suggest_difficulty = Some(512.0);
        config.extranonce_subscribe = true;

        // A pool that takes it before authorize (public-pool): sent once, right before.
        let mut s = Session::new(config.clone());
        s.connection_opened();
        let out = sent(&mut s);
        reply(&mut s, &out[0]["id"], SLUSH_SUBSCRIBE);
        let out = sent(&mut s);
        assert_eq!(
            methods(&out),
            ["mining.suggest_difficulty", "mining.authorize"]
        );
        assert_eq!(out[0]["params"], json!([512]));
        assert!(reply(&mut s, &out[0]["id"], "true").is_empty());
        reply(&mut s, &out[1]["id"], "true");
        // The extranonce subscription still follows authorization.
        let after = sent(&mut s);
        assert_eq!(methods(&after), ["mining.extranonce.subscribe"]);
        // Its answer, whatever it is, changes nothing.
        assert!(feed(&mut s, &refuse(&after[0]["id"])).is_empty());
        assert!(s.is_ready());

        // A pool that refuses it before authorize: once more right after authorizing.
        let mut s = Session::new(config.clone());
        s.connection_opened();
        let out = sent(&mut s);
        reply(&mut s, &out[0]["id"], SLUSH_SUBSCRIBE);
        let out = sent(&mut s);
        assert!(feed(&mut s, &refuse(&out[0]["id"])).is_empty());
        assert!(s.take_outgoing().is_empty(), "not before authorization");
        reply(&mut s, &out[1]["id"], "true");
        let after = sent(&mut s);
        assert_eq!(
            methods(&after),
            ["mining.extranonce.subscribe", "mining.suggest_difficulty"]
        );
        assert_eq!(after[1]["params"], json!([512]));
        // Refused again: that is the last try.
        assert!(feed(&mut s, &refuse(&after[1]["id"])).is_empty());
        assert!(s.take_outgoing().is_empty());
        assert!(s.is_ready());

        // The refusal arriving after the authorize answer: resent at once, still only once.
        let mut s = Session::new(config);
        s.connection_opened();
        let out = sent(&mut s);
        reply(&mut s, &out[0]["id"], SLUSH_SUBSCRIBE);
        let out = sent(&mut s);
        reply(&mut s, &out[1]["id"], "true");
        assert_eq!(methods(&sent(&mut s)), ["mining.extranonce.subscribe"]);
        feed(&mut s, &refuse(&out[0]["id"]));
        let again = sent(&mut s);
        assert_eq!(methods(&again), ["mining.suggest_difficulty"]);
        feed(&mut s, &refuse(&again[0]["id"]));
        assert!(s.take_outgoing().is_empty());
    }

    #[test]
    fn pool_requests_are_answered() {
        let mut s = ready();
        assert!(feed(
            &mut s,
            r#"{"id":9,"method":"client.get_version","params":[]}"#
        )
        .is_empty());
        let out = sent(&mut s);
        assert_eq!(out[0]["id"], 9);
        assert_eq!(out[0]["result"], json!(crate::stratum::user_agent()));
        feed(&mut s, r#"{"id":"p","method":"mining.ping","params":[]}"#);
        assert_eq!(sent(&mut s)[0]["result"], "pong");
        feed(
            &mut s,
            r#"{"id":10,"method":"mining.frobnicate","params":[]}"#,
        );
        assert_eq!(sent(&mut s)[0]["error"][0], 20);
        // Notifications of unknown methods get no answer.
        feed(
            &mut s,
            r#"{"id":null,"method":"mining.frobnicate","params":[]}"#,
        );
        assert!(s.take_outgoing().is_empty());
        let ev = feed(
            &mut s,
            r#"{"id":null,"method":"client.reconnect","params":["pool.example",3334,5]}"#,
        );
        assert!(
            matches!(&ev[..], [Event::Reconnect { host: Some(h), port: Some(3334), wait }]
            if h == "pool.example" && *wait == Duration::from_secs(5))
        );
        let ev = feed(
            &mut s,
            r#"{"id":null,"method":"client.show_message","params":["hello"]}"#,
        );
        assert!(matches!(&ev[..], [Event::ShowMessage(m)] if m == "hello"));
    }

    #[test]
    fn subscribe_failure_and_bad_lines() {
        let mut s = Session::new(SessionConfig::new("w", "x"));
        // Notify before subscribe: an error, not a panic.
        assert_eq!(
            s.handle_line(notify_line("a", true).as_bytes())
                .unwrap_err()
                .cause,
            SessionError::NotSubscribed
        );
        s.connection_opened();
        let out = sent(&mut s);
        let ev = reply(&mut s, &out[0]["id"], r#"[[],"zz",4]"#);
        assert!(matches!(ev[..], [Event::SubscribeFailed { .. }]));
        assert!(s.handle_line(b"garbage").is_err());
        // Answers to unknown ids are ignored.
        assert!(reply(&mut s, &json!(999), "true").is_empty());
    }

    /// The refusal of `line`, which must change nothing the miner sees.
    fn refused(s: &mut Session, line: &str) -> Refusal {
        let before = (
            s.difficulty(),
            s.version_mask(),
            s.extranonce1().map(<[u8]>::to_vec),
        );
        let jobs = s.jobs.len();
        let r = s.handle_line(line.as_bytes()).expect_err(line);
        let after = (
            s.difficulty(),
            s.version_mask(),
            s.extranonce1().map(<[u8]>::to_vec),
        );
        assert_eq!(before, after, "{line} changed the session");
        assert_eq!(jobs, s.jobs.len(), "{line} changed the jobs");
        r
    }

    #[test]
    fn each_refused_message_says_what_was_wrong_and_what_is_kept() {
        let mut s = ready();
        feed(&mut s, &notify_line("bf", false));
        feed(
            &mut s,
            r#"{"id":null,"method":"mining.set_difficulty","params":[512]}"#,
        );
        let mut deep: Value = serde_json::from_str(&notify_line("deep", false)).unwrap();
        deep["params"][4] = json!(vec!["00".repeat(32); 33]);
        let deep_notify = deep.to_string();
        let cases: [(&str, _, _, _); 9] = [
            (
                r#"{"id":null,"method":"mining.set_difficulty","params":[-3]}"#,
                RefusalKind::Difficulty,
                "pool sent mining.set_difficulty with difficulty -3: share difficulty: ",
                "; ignored, keeping difficulty 512",
            ),
            (
                r#"{"id":null,"method":"mining.set_difficulty","params":["lots"]}"#,
                RefusalKind::Difficulty,
                "pool sent mining.set_difficulty with difficulty lots: expected a number",
                "; ignored, keeping difficulty 512",
            ),
            (
                r#"{"id":null,"method":"mining.notify","params":["j2","00",[],"",[],"x","y","z",true]}"#,
                RefusalKind::Job,
                "pool sent mining.notify for job j2: prevhash has 1 bytes, expected 32",
                "; ignored, still mining job bf",
            ),
            (
                &deep_notify,
                RefusalKind::Job,
                "pool sent mining.notify for job deep: merkle branch of 33 levels is deeper than any block",
                "; ignored, still mining job bf",
            ),
            (
                r#"{"id":null,"method":"mining.set_extranonce","params":["0g", 4]}"#,
                RefusalKind::Extranonce,
                "pool sent mining.set_extranonce with extranonce1 0g and extranonce2 size 4: extranonce1 is not valid hex",
                "; ignored, keeping extranonce1 08000002 and extranonce2 size 4",
            ),
            (
                r#"{"id":null,"method":"mining.set_extranonce","params":["01", 99]}"#,
                RefusalKind::Extranonce,
                "pool sent mining.set_extranonce with extranonce1 01 and extranonce2 size 99: extranonce2 size 99 is outside 1..=8",
                "; ignored, keeping extranonce1 08000002 and extranonce2 size 4",
            ),
            (
                r#"{"id":null,"method":"mining.set_version_mask","params":["1fffe00"]}"#,
                RefusalKind::VersionMask,
                "pool sent mining.set_version_mask with mask 1fffe00: version mask has 3 bytes, expected 4",
                "; ignored, keeping version mask 00000000",
            ),
            (
                r#"{"id":null,"method":"client.reconnect","params":["h", 0]}"#,
                RefusalKind::Reconnect,
                "pool sent client.reconnect with [\"h\",0]: port is not a TCP port",
                "; ignored, staying connected",
            ),
            (
                "not json",
                RefusalKind::Unreadable,
                "pool sent a line that is not a Stratum message (not JSON: ",
                "): not json; ignored",
            ),
        ];
        for (line, kind, starts, ends) in cases {
            let r = refused(&mut s, line);
            assert_eq!(r.kind, kind, "{line}");
            assert!(r.text.starts_with(starts), "{line}: {}", r.text);
            assert!(r.text.ends_with(ends), "{line}: {}", r.text);
            assert_eq!(r.to_string(), r.text);
        }
    }

    #[test]
    fn peer_text_in_a_refusal_is_printable_and_short() {
        let mut s = ready();
        let evil = format!("\u{1b}[2J\u{7}{}", "x".repeat(10_000));
        let line = json!({"id": null, "method": "mining.set_difficulty", "params": [evil]});
        let r = refused(&mut s, &line.to_string());
        assert!(!r.text.chars().any(char::is_control), "{}", r.text);
        assert!(r.text.contains("difficulty ?[2J?xxx"), "{}", r.text);
        assert!(r.text.chars().count() < 300, "{}", r.text);
        let r = refused(&mut s, &format!("{{\"id\": \u{1b}{}", "y".repeat(5000)));
        assert_eq!(r.kind, RefusalKind::Unreadable);
        assert!(!r.text.chars().any(char::is_control), "{}", r.text);
        assert!(r.text.chars().count() < 300, "{}", r.text);
    }

    #[test]
    fn version_masks_outside_what_was_asked_are_told() {
        // mining.configure granting more than BIP320's bits: only those are rolled, and said.
        let mut s = Session::new(SessionConfig::new("w", "x"));
        s.connection_opened();
        let out = sent(&mut s);
        assert_eq!(out[1]["method"], "mining.configure");
        let ev = reply(
            &mut s,
            &out[1]["id"],
            r#"{"version-rolling":true,"version-rolling.mask":"ffffffff"}"#,
        );
        match &ev[..] {
            [Event::Refused(r), Event::VersionRolling {
                mask: Some(0x1fff_e000),
            }] => {
                assert_eq!(r.kind, RefusalKind::VersionMask);
                assert_eq!(
                    r.text,
                    "pool sent a mining.configure result granting mask ffffffff: mask ffffffff has bits outside 1fffe000 (what was asked for, within BIP320's bits); ignored, rolling only 1fffe000"
                );
            }
            other => panic!("{other:?}"),
        }
        // A result that cannot be read: no rolling, and said.
        let mut s = Session::new(SessionConfig::new("w", "x"));
        s.connection_opened();
        let out = sent(&mut s);
        let ev = reply(
            &mut s,
            &out[1]["id"],
            r#"{"version-rolling":true,"version-rolling.mask":"zz"}"#,
        );
        match &ev[..] {
            [Event::Refused(r), Event::VersionRolling { mask: None }] => {
                assert_eq!(r.kind, RefusalKind::VersionMask);
                assert!(
                    r.text.ends_with("; ignored, not rolling the version"),
                    "{}",
                    r.text
                );
            }
            other => panic!("{other:?}"),
        }
        // A pool that does not know mining.configure (an error) is no refusal.
        let mut s = Session::new(SessionConfig::new("w", "x"));
        s.connection_opened();
        let out = sent(&mut s);
        let id = &out[1]["id"];
        let ev = feed(
            &mut s,
            &format!(r#"{{"id":{id},"result":null,"error":[20,"unknown method",null]}}"#),
        );
        assert!(
            matches!(ev[..], [Event::VersionRolling { mask: None }]),
            "{ev:?}"
        );
        // mining.set_version_mask outside the mask asked for: the part inside is used.
        let mut s = ready_with_rolling();
        let ev = feed(
            &mut s,
            r#"{"id":null,"method":"mining.set_version_mask","params":["e0000000"]}"#,
        );
        match &ev[..] {
            [Event::Refused(r), Event::VersionRolling { mask: None }] => {
                assert!(
                    r.text
                        .contains("mining.set_version_mask with mask e0000000"),
                    "{}",
                    r.text
                );
                assert!(r.text.ends_with("rolling only 00000000"), "{}", r.text);
            }
            other => panic!("{other:?}"),
        }
        let ev = feed(
            &mut s,
            r#"{"id":null,"method":"mining.set_version_mask","params":["00ffe000"]}"#,
        );
        assert!(
            matches!(
                ev[..],
                [Event::VersionRolling {
                    mask: Some(0x00ff_e000)
                }]
            ),
            "{ev:?}"
        );
    }

    #[test]
    fn what_a_pool_names_is_bounded() {
        use crate::stratum::{MAX_EXTRANONCE1_SIZE, MAX_JOB_ID_LEN, MAX_SESSION_ID_LEN};
        // extranonce1: at the limit it is taken; over it the subscribe fails.
        for (len, ok) in [
            (MAX_EXTRANONCE1_SIZE, true),
            (MAX_EXTRANONCE1_SIZE + 1, false),
        ] {
            let mut s = Session::new(SessionConfig::new("w", "x"));
            s.connection_opened();
            let out = sent(&mut s);
            let result = json!([[["mining.notify", "s"]], "ab".repeat(len), 4]).to_string();
            let ev = reply(&mut s, &out[0]["id"], &result);
            match (&ev[..], ok) {
                ([Event::Subscribed { extranonce1, .. }], true) => {
                    assert_eq!(extranonce1.len(), len)
                }
                ([Event::SubscribeFailed { reason }], false) => {
                    assert!(reason.contains("over the 32-byte limit"), "{reason}")
                }
                (other, _) => panic!("{len}: {other:?}"),
            }
        }
        // ... and a mining.set_extranonce over it is refused, the extranonce kept.
        let mut s = ready();
        let line = json!({"id": null, "method": "mining.set_extranonce",
                          "params": ["ab".repeat(MAX_EXTRANONCE1_SIZE + 1), 4]});
        let r = refused(&mut s, &line.to_string());
        assert_eq!(r.kind, RefusalKind::Extranonce);
        assert!(
            r.text
                .contains("extranonce1 of 33 bytes is over the 32-byte limit"),
            "{}",
            r.text
        );
        let line = json!({"id": null, "method": "mining.set_extranonce",
                          "params": ["ab".repeat(MAX_EXTRANONCE1_SIZE), 4]});
        feed(&mut s, &line.to_string());
        assert_eq!(s.extranonce1().map(<[u8]>::len), Some(MAX_EXTRANONCE1_SIZE));

        // Job ids: held with every live job and echoed in every share.
        let mut s = ready();
        let at_limit = "j".repeat(MAX_JOB_ID_LEN);
        new_job(&feed(&mut s, &notify_line(&at_limit, false)));
        assert!(s.is_job_live(&at_limit));
        let over = "j".repeat(MAX_JOB_ID_LEN + 1);
        let r = refused(&mut s, &notify_line(&over, false));
        assert_eq!(r.kind, RefusalKind::Job);
        assert!(
            r.text
                .contains("job id of 129 bytes is over the 128-byte limit"),
            "{}",
            r.text
        );
        assert!(!s.is_job_live(&over));

        // Subscription ids: offered back on reconnect only when short.
        for (len, kept) in [(MAX_SESSION_ID_LEN, true), (MAX_SESSION_ID_LEN + 1, false)] {
            let mut s = Session::new(SessionConfig::new("w", "x"));
            s.connection_opened();
            let out = sent(&mut s);
            let id = "5".repeat(len);
            let result = json!([[["mining.notify", id]], "08000002", 4]).to_string();
            reply(&mut s, &out[0]["id"], &result);
            assert_eq!(s.session_id().is_some(), kept, "{len}");
            s.connection_lost();
            s.connection_opened();
            let resume = &sent(&mut s)[0]["params"];
            assert_eq!(
                resume.as_array().map(Vec::len),
                Some(1 + usize::from(kept)),
                "{resume}"
            );
        }
    }

    /// [`ready`], with BIP320 version rolling granted.
    fn ready_with_rolling() -> Session {
        let mut s = Session::new(SessionConfig::new("w", "x"));
        s.connection_opened();
        let out = sent(&mut s);
        reply(&mut s, &out[0]["id"], SLUSH_SUBSCRIBE);
        reply(
            &mut s,
            &out[1]["id"],
            r#"{"version-rolling":true,"version-rolling.mask":"1fffe000"}"#,
        );
        let out = sent(&mut s);
        reply(&mut s, &out[0]["id"], "true");
        assert!(s.is_ready());
        assert_eq!(s.version_mask(), BIP320_MASK);
        s
    }

    #[test]
    fn shares_in_flight_when_a_connection_reopens_are_held_not_lost() {
        let mut s = ready();
        let mut ledger = Ledger::default();
        feed(&mut s, &notify_line("bf", false));
        ledger.submit(&mut s, share_n("bf", 1));
        // The client reopens without reporting the loss first.
        s.connection_opened();
        let ev = s.take_events();
        assert!(matches!(&ev[..], [Event::ShareHeld { share }] if share.nonce == 1));
        ledger.replay(&ev);
        ledger.check(&s);
    }

    #[test]
    fn abandoned_held_shares_are_stale_with_the_reason_given() {
        let mut s = ready();
        let mut ledger = Ledger::default();
        feed(&mut s, &notify_line("bf", false));
        s.connection_lost();
        ledger.submit(&mut s, share_n("bf", 1));
        s.abandon_queued("not sent: no connection at exit");
        let ev = s.take_events();
        assert_eq!(
            stale_why(&ev[0]),
            Some((true, "not sent: no connection at exit"))
        );
        ledger.replay(&ev);
        ledger.check(&s);
        assert_eq!(s.queued_shares(), 0);
    }

    /// Buffered events come out of `handle_line` ahead of the line's own.
    #[test]
    fn buffered_events_come_with_the_next_line() {
        let mut s = ready();
        feed(&mut s, &notify_line("bf", false));
        s.submit(share("zz"));
        let ev = feed(
            &mut s,
            r#"{"id":null,"method":"mining.set_difficulty","params":[2]}"#,
        );
        assert!(matches!(
            &ev[..],
            [Event::ShareStale { .. }, Event::DifficultyChanged(_)]
        ));
        assert!(s.take_events().is_empty());
    }

    /// Any sequence of submits, pool answers, notifies, lost connections and pool switches:
    /// every share handed in is, by the events, in exactly one place, and the session's held and
    /// in-flight shares are the ones the events say.
    #[test]
    fn every_share_has_exactly_one_fate() {
        const OTHER_SUBSCRIBE: &str = r#"[[["mining.notify","x"]],"01020304",4]"#;
        let mut rng = StdRng::seed_from_u64(0x5348_4152);
        let mut fates = [0usize; 6];
        for round in 0..150 {
            let mut config = SessionConfig::new("w", "x");
            config.version_rolling = None;
            config.suggest_difficulty = Some(64.0);
            config.extranonce_subscribe = rng.random();
            let mut s = Session::new(config);
            let mut ledger = Ledger::default();
            // Our requests the pool has not answered: (id, method).
            let mut asked: Vec<(Value, String)> = Vec::new();
            let mut nonce = 0u32;
            s.connection_opened();
            for _ in 0..80 {
                let events = match rng.random_range(0..100) {
                    0..=29 => {
                        // Most shares come one by one; now and then a burst past both bounds.
                        let n = if rng.random_range(0..60) == 0 {
                            MAX_PENDING_REQUESTS + 50
                        } else {
                            1
                        };
                        // A burst is for a live job, if there is one.
                        let live = ["a", "b", "c"].into_iter().find(|j| s.is_job_live(j));
                        for _ in 0..n {
                            nonce += 1;
                            let job = match live {
                                Some(job) if n > 1 => job,
                                _ => ["a", "b", "c"][rng.random_range(0..3)],
                            };
                            ledger.submit(&mut s, share_n(job, nonce));
                        }
                        Vec::new()
                    }
                    30..=64 if !asked.is_empty() => {
                        // Pools answer in order, mostly.
                        let i = if rng.random_range(0..4) == 0 {
                            rng.random_range(0..asked.len())
                        } else {
                            0
                        };
                        let (id, method) = asked.remove(i);
                        let result = match method.as_str() {
                            "mining.subscribe" if rng.random_range(0..4) == 0 => {
                                OTHER_SUBSCRIBE.to_owned()
                            }
                            "mining.subscribe" => SLUSH_SUBSCRIBE.to_owned(),
                            // Refused now and then (below): a session never authorized sends
                            // no share.
                            "mining.authorize" => "true".to_owned(),
                            _ => ["true", "false", "null"][rng.random_range(0..3)].to_owned(),
                        };
                        let line = if rng.random_range(0..8) == 0 {
                            format!(r#"{{"id":{id},"result":null,"error":[23,"nope",null]}}"#)
                        } else {
                            format!(r#"{{"id":{id},"result":{result},"error":null}}"#)
                        };
                        feed(&mut s, &line)
                    }
                    65..=79 => {
                        let job = ["a", "b", "c"][rng.random_range(0..3)];
                        s.handle_line(notify_line(job, rng.random_range(0..3) == 0).as_bytes())
                            .unwrap_or_default()
                    }
                    80..=87 => {
                        s.connection_lost();
                        asked.clear();
                        s.take_events()
                    }
                    88..=96 => {
                        // Mostly a new connection after a lost one; now and then one that
                        // replaces a connection never reported lost.
                        if !s.is_connected() || rng.random_range(0..8) == 0 {
                            s.connection_opened();
                            asked.clear();
                        }
                        s.take_events()
                    }
                    97 => feed(
                        &mut s,
                        r#"{"id":null,"method":"mining.set_extranonce","params":["0a0b0c0d",4]}"#,
                    ),
                    _ => {
                        s.abandon_queued("given up");
                        s.take_events()
                    }
                };
                ledger.replay(&events);
                for line in sent(&mut s) {
                    if let Some(method) = line["method"].as_str() {
                        asked.push((line["id"].clone(), method.to_owned()));
                    }
                }
                ledger.check(&s);
                assert!(s.queued_shares() <= MAX_QUEUED_SHARES, "round {round}");
                assert!(s.pending.len() <= MAX_PENDING_REQUESTS, "round {round}");
            }
            fates[0] += ledger.accepted + ledger.rejected;
            fates[1] += ledger.stale;
            fates[2] += ledger.unanswered;
            fates[3] += ledger.held.len() + ledger.in_flight.len();
            fates[4] += ledger.returned;
            fates[5] += ledger.resent;
        }
        // The walk reaches every fate, and every move between held and in flight.
        assert!(fates.iter().all(|n| *n > 0), "{fates:?}");
    }

    /// No sequence of lines, valid, mutated or random, panics the session.
    #[test]
    fn random_lines_never_panic() {
        let seeds = [
            notify_line("a", false),
            notify_line("b", true),
            format!(r#"{{"id":1,"result":{SLUSH_SUBSCRIBE},"error":null}}"#),
            r#"{"id":2,"result":true,"error":null}"#.to_string(),
            r#"{"id":3,"result":{"version-rolling":true,"version-rolling.mask":"1fffe000"},"error":null}"#.to_string(),
            r#"{"id":4,"result":false,"error":[21,"Job not found",null],"reject-reason":"x"}"#.to_string(),
            r#"{"id":null,"method":"mining.set_difficulty","params":[0.001]}"#.to_string(),
            r#"{"id":null,"method":"mining.set_extranonce","params":["08",8]}"#.to_string(),
            r#"{"id":null,"method":"mining.set_version_mask","params":["ffffffff"]}"#.to_string(),
            r#"{"id":5,"method":"client.get_version","params":[]}"#.to_string(),
            r#"{"id":null,"method":"client.reconnect","params":["h",1,99999999]}"#.to_string(),
        ];
        let mut rng = StdRng::seed_from_u64(0x5747_4d49);
        for round in 0..1000 {
            let mut s = Session::new(SessionConfig::new("w", "x"));
            s.connection_opened();
            for _ in 0..50 {
                let mut line = seeds[rng.random_range(0..seeds.len())].clone().into_bytes();
                match rng.random_range(0..4) {
                    0 => {}
                    1 => {
                        for _ in 0..rng.random_range(1..4) {
                            let i = rng.random_range(0..line.len());
                            line[i] = rng.random();
                        }
                    }
                    2 => line.truncate(rng.random_range(0..line.len())),
                    _ => {
                        line = (0..rng.random_range(0..64)).map(|_| rng.random()).collect();
                    }
                }
                let _ = s.handle_line(&line);
                if rng.random_range(0..10) == 0 {
                    s.submit(share("a"));
                }
                if rng.random_range(0..20) == 0 {
                    s.connection_lost();
                    s.connection_opened();
                }
                s.take_outgoing();
            }
            assert!(s.queued_shares() <= MAX_QUEUED_SHARES, "round {round}");
        }
    }
}
