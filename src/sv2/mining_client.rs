//! The Stratum V2 Mining Protocol as a miner speaks it on one channel, extended or standard,
//! without I/O: messages from the pool in, [`Job`]s, targets and share verdicts out; shares in,
//! SRI's `SubmitSharesExtended` or `SubmitSharesStandard` out. The connection
//! ([`crate::mining::sv2_pool`]) moves the bytes.
//!
//! An extended channel maps onto the Stratum V1 shape the mining layer already rolls: the
//! pool's extranonce prefix is extranonce1, our part of the extranonce is extranonce2, so every
//! device rolls its own coinbases and none runs dry. A standard channel is header-only mining:
//! `NewMiningJob` fixes the merkle root, so its jobs are header-only [`Job`]s (no coinbase,
//! shares without extranonce2) and the devices roll version bits and nTime (see
//! [`crate::work::generator`]). Future jobs (no `min_ntime`) wait for the `SetNewPrevHash` that
//! names them; `SubmitSharesSuccess` acknowledges every share up to a sequence number at once
//! (pools batch them), `SubmitSharesError` refuses one.

use std::collections::{BTreeMap, HashMap};

use bitcoin::block::Version;
use bitcoin::hashes::Hash;
use bitcoin::pow::{CompactTarget, Target};
use bitcoin::{BlockHash, TxMerkleNode};
use mining_sv2::{
    OpenExtendedMiningChannelOwned, OpenStandardMiningChannelOwned, SubmitSharesExtendedOwned,
    SubmitSharesStandard, UpdateChannelOwned,
};
use parsers_sv2::{Mining, MiningOwned};

use crate::work::job::{CoinbaseTemplate, Job, DEFAULT_NTIME_ROLL};
use crate::work::Share;

/// The version bits a miner may roll when a job allows it (BIP320's general-purpose bits).
pub const VERSION_ROLLING_MASK: u32 = 0x1fff_e000;

/// The extranonce bytes we ask for: 8 is what one [`crate::work::rolling::Extranonce2`] holds.
pub const MIN_EXTRANONCE_SIZE: u16 = 8;

/// Jobs kept (future and current); the oldest go first beyond this.
pub const MAX_JOBS: usize = 64;

/// Shares sent and not yet answered; beyond this a new share is not sent (stale).
pub const MAX_PENDING: usize = 1024;

/// `SetupConnection.flags` for the Mining Protocol, bit 0: REQUIRES_STANDARD_JOBS (spec 5.3.1;
/// SRI's `has_requires_std_job`). Without it SRI's pool puts a standard channel into a group
/// channel and sends it extended jobs; with it, `NewMiningJob`s for the channel itself.
pub const REQUIRES_STANDARD_JOBS: u32 = 1;

/// `SetupConnection.Success.flags` for the Mining Protocol, bit 0: REQUIRES_FIXED_VERSION (the
/// pool accepts no version rolling at all).
pub const REQUIRES_FIXED_VERSION: u32 = 1;

/// `SetupConnection.Success.flags` for the Mining Protocol, bit 1: REQUIRES_EXTENDED_CHANNELS
/// (the pool opens no standard channel).
pub const REQUIRES_EXTENDED_CHANNELS: u32 = 1 << 1;

/// Which kind of channel to open: `standard` (header-only, the pool fixes the merkle root) or
/// `extended` (we roll part of the extranonce, so our coinbases differ).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ChannelKind {
    Standard,
    #[default]
    Extended,
}

impl ChannelKind {
    /// The `SetupConnection` flags this kind of channel needs.
    pub fn setup_flags(self) -> u32 {
        match self {
            ChannelKind::Standard => REQUIRES_STANDARD_JOBS,
            ChannelKind::Extended => 0,
        }
    }
}

impl std::fmt::Display for ChannelKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ChannelKind::Standard => "standard",
            ChannelKind::Extended => "extended",
        })
    }
}

impl std::str::FromStr for ChannelKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "standard" => Ok(ChannelKind::Standard),
            "extended" => Ok(ChannelKind::Extended),
            _ => Err(format!(
                "{s:?} is not a Stratum V2 channel kind: use standard or extended"
            )),
        }
    }
}

/// Why the pool's messages cannot be mined on: the connection should end.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    #[error("the pool refused to open a mining channel: {0}")]
    ChannelRefused(String),
    #[error("the pool gave an extranonce of {0} bytes to roll; at least 1 is needed")]
    NoExtranonce(usize),
    #[error("the pool's extranonce prefix and ours make {0} bytes, more than 32")]
    ExtranonceTooLong(usize),
    #[error("the pool closed our channel: {0}")]
    ChannelClosed(String),
    #[error("the pool's job {id} is unusable: {why}")]
    BadJob { id: u32, why: String },
    #[error("the pool opens no standard channels (REQUIRES_EXTENDED_CHANNELS): mine on it with --sv2-channel extended")]
    StandardChannelsRefused,
}

/// What the connection should do after a message.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// The channel is open (its target is the first [`Output::Target`]).
    Opened {
        channel_id: u32,
    },
    /// Mine this; with `clean`, every earlier job is dead.
    Job {
        job: Job,
        clean: bool,
    },
    /// The share target from now on.
    Target(Target),
    Accepted(Share),
    Rejected {
        share: Share,
        reason: String,
    },
    /// Something for the operator's log.
    Note(String),
}

/// Why a share was not sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotSent(pub String);

/// A share as the channel submits it.
#[derive(Debug, Clone)]
pub enum Submission {
    Standard(SubmitSharesStandard),
    Extended(SubmitSharesExtendedOwned),
}

impl From<Submission> for MiningOwned {
    fn from(s: Submission) -> Self {
        match s {
            Submission::Standard(m) => MiningOwned::SubmitSharesStandard(m),
            Submission::Extended(m) => MiningOwned::SubmitSharesExtended(m),
        }
    }
}

/// A job as the pool sent it, before it has a previous block.
#[derive(Debug, Clone)]
struct PoolJob {
    version: u32,
    version_rolling: bool,
    merkle_path: Vec<TxMerkleNode>,
    prefix: Vec<u8>,
    suffix: Vec<u8>,
    /// A standard job's merkle root (then there is no coinbase or path).
    merkle_root: Option<TxMerkleNode>,
    /// `None`: a future job.
    min_ntime: Option<u32>,
}

/// The current block the pool mines on.
#[derive(Debug, Clone, Copy)]
struct Tip {
    prev_hash: BlockHash,
    min_ntime: u32,
    bits: u32,
}

/// An open channel.
#[derive(Debug, Clone)]
struct Channel {
    id: u32,
    target: Target,
    /// The pool's prefix, plus zero bytes for any extranonce beyond what we roll.
    extranonce1: Vec<u8>,
    /// Zero bytes between the prefix and our part, repeated in each submission.
    padding: usize,
    /// The bytes we roll.
    rolled: usize,
}

/// One miner's view of one channel.
#[derive(Debug, Default)]
pub struct MiningSession {
    kind: ChannelKind,
    /// The pool set REQUIRES_FIXED_VERSION: no job rolls version bits.
    fixed_version: bool,
    channel: Option<Channel>,
    jobs: BTreeMap<u32, PoolJob>,
    tip: Option<Tip>,
    /// Job ids that still earn credit (on the current tip).
    live: HashMap<u32, ()>,
    pending: BTreeMap<u32, Share>,
    next_sequence: u32,
}

impl MiningSession {
    /// A session for an extended channel.
    pub fn new() -> Self {
        Self::default()
    }

    /// A session for a channel of this kind.
    pub fn with_kind(kind: ChannelKind) -> Self {
        MiningSession {
            kind,
            ..Self::default()
        }
    }

    pub fn kind(&self) -> ChannelKind {
        self.kind
    }

    /// What the pool's `SetupConnection.Success` flags say: whether versions may roll, and
    /// whether our kind of channel is possible at all.
    pub fn on_setup_success(&mut self, flags: u32) -> Result<(), SessionError> {
        self.fixed_version = flags & REQUIRES_FIXED_VERSION != 0;
        if self.kind == ChannelKind::Standard && flags & REQUIRES_EXTENDED_CHANNELS != 0 {
            return Err(SessionError::StandardChannelsRefused);
        }
        Ok(())
    }

    /// The request that opens this session's kind of channel.
    pub fn open_request(
        &self,
        user: &str,
        nominal_hash_rate: f32,
    ) -> Result<MiningOwned, SessionError> {
        Ok(match self.kind {
            ChannelKind::Extended => {
                MiningOwned::OpenExtendedMiningChannel(Self::open_channel(user, nominal_hash_rate)?)
            }
            ChannelKind::Standard => MiningOwned::OpenStandardMiningChannel(
                Self::open_standard_channel(user, nominal_hash_rate)?,
            ),
        })
    }

    /// The request that opens a standard channel.
    pub fn open_standard_channel(
        user: &str,
        nominal_hash_rate: f32,
    ) -> Result<OpenStandardMiningChannelOwned, SessionError> {
        Ok(OpenStandardMiningChannelOwned {
            request_id: 1,
            user_identity: user_identity(user)?,
            nominal_hash_rate,
            max_target: [0xff; 32].into(),
        })
    }

    /// The request that opens the channel.
    pub fn open_channel(
        user: &str,
        nominal_hash_rate: f32,
    ) -> Result<OpenExtendedMiningChannelOwned, SessionError> {
        Ok(OpenExtendedMiningChannelOwned {
            request_id: 1,
            user_identity: user_identity(user)?,
            nominal_hash_rate,
            max_target: [0xff; 32].into(),
            min_extranonce_size: MIN_EXTRANONCE_SIZE,
        })
    }

    /// Tell the pool what the channel really hashes (it sets the target from it), once open.
    pub fn update_channel(&self, nominal_hash_rate: f32) -> Option<UpdateChannelOwned> {
        let c = self.channel.as_ref()?;
        Some(UpdateChannelOwned {
            channel_id: c.id,
            nominal_hash_rate,
            maximum_target: [0xff; 32].into(),
        })
    }

    /// Whether the channel is open.
    pub fn is_open(&self) -> bool {
        self.channel.is_some()
    }

    /// One message from the pool.
    pub fn on_message(&mut self, message: Mining<'_>) -> Result<Vec<Output>, SessionError> {
        let mut out = Vec::new();
        match message {
            Mining::OpenExtendedMiningChannelSuccess(m) if self.kind == ChannelKind::Extended => {
                let rolled_total = usize::from(m.extranonce_size);
                if rolled_total == 0 {
                    return Err(SessionError::NoExtranonce(0));
                }
                let prefix = m.extranonce_prefix.as_bytes().to_vec();
                if prefix.len() + rolled_total > 32 {
                    return Err(SessionError::ExtranonceTooLong(prefix.len() + rolled_total));
                }
                let rolled = rolled_total.min(usize::from(MIN_EXTRANONCE_SIZE));
                let padding = rolled_total - rolled;
                let mut extranonce1 = prefix;
                extranonce1.resize(extranonce1.len() + padding, 0);
                let target = Target::from_le_bytes(*m.target.as_array());
                self.channel = Some(Channel {
                    id: m.channel_id,
                    target,
                    extranonce1,
                    padding,
                    rolled,
                });
                out.push(Output::Opened {
                    channel_id: m.channel_id,
                });
                out.push(Output::Target(target));
            }
            Mining::OpenStandardMiningChannelSuccess(m) if self.kind == ChannelKind::Standard => {
                // The pool's extranonce prefix is inside the roots of its jobs: nothing to keep.
                let target = Target::from_le_bytes(*m.target.as_array());
                self.channel = Some(Channel {
                    id: m.channel_id,
                    target,
                    extranonce1: Vec::new(),
                    padding: 0,
                    rolled: 0,
                });
                out.push(Output::Opened {
                    channel_id: m.channel_id,
                });
                out.push(Output::Target(target));
            }
            Mining::OpenMiningChannelError(e) => {
                return Err(SessionError::ChannelRefused(text(e.error_code.as_bytes())));
            }
            Mining::CloseChannel(c) => {
                return Err(SessionError::ChannelClosed(text(c.reason_code.as_bytes())));
            }
            Mining::SetTarget(t) => {
                if let Some(c) = &mut self.channel {
                    if c.id == t.channel_id {
                        c.target = Target::from_le_bytes(*t.maximum_target.as_array());
                        out.push(Output::Target(c.target));
                    }
                }
            }
            Mining::SetExtranoncePrefix(_) if self.kind == ChannelKind::Standard => {
                // A standard job's root already commits to the prefix; new jobs carry the new one.
                out.push(Output::Note(
                    "the pool changed our extranonce prefix (its next jobs carry it)".into(),
                ));
            }
            Mining::SetExtranoncePrefix(p) => {
                if let Some(c) = &mut self.channel {
                    let prefix = p.extranonce_prefix.as_bytes();
                    if prefix.len() + c.padding + c.rolled > 32 {
                        return Err(SessionError::ExtranonceTooLong(
                            prefix.len() + c.padding + c.rolled,
                        ));
                    }
                    let mut e1 = prefix.to_vec();
                    e1.resize(prefix.len() + c.padding, 0);
                    c.extranonce1 = e1;
                    // Every job so far builds coinbases with the old prefix.
                    self.live.clear();
                    out.push(Output::Note(
                        "the pool changed our extranonce prefix".into(),
                    ));
                    if let Some(job) = self.current_job()? {
                        out.push(Output::Job { job, clean: true });
                    }
                }
            }
            Mining::NewExtendedMiningJob(j) => {
                let job = PoolJob {
                    version: j.version,
                    version_rolling: j.version_rolling_allowed,
                    merkle_path: j
                        .merkle_path
                        .as_slice()
                        .iter()
                        .map(|h| TxMerkleNode::from_byte_array(to_array(h)))
                        .collect(),
                    prefix: j.coinbase_tx_prefix.as_bytes().to_vec(),
                    suffix: j.coinbase_tx_suffix.as_bytes().to_vec(),
                    merkle_root: None,
                    min_ntime: j.min_ntime.into_inner(),
                };
                out.extend(self.add_job(j.job_id, job)?);
            }
            Mining::NewMiningJob(j) => {
                let ours = self.kind == ChannelKind::Standard
                    && self.channel.as_ref().is_some_and(|c| c.id == j.channel_id);
                if !ours {
                    out.push(Output::Note(format!(
                        "ignored a standard job {} for channel {}, not one of ours",
                        j.job_id, j.channel_id
                    )));
                    return Ok(out);
                }
                let job = PoolJob {
                    version: j.version,
                    // A standard job may always roll BIP320's bits (unless the pool set
                    // REQUIRES_FIXED_VERSION, applied in `job`).
                    version_rolling: true,
                    merkle_path: Vec::new(),
                    prefix: Vec::new(),
                    suffix: Vec::new(),
                    merkle_root: Some(TxMerkleNode::from_byte_array(to_array(&j.merkle_root))),
                    min_ntime: j.min_ntime.into_inner(),
                };
                out.extend(self.add_job(j.job_id, job)?);
            }
            Mining::SetNewPrevHash(p)
                if self.kind == ChannelKind::Standard
                    && self.channel.as_ref().is_none_or(|c| c.id != p.channel_id) =>
            {
                out.push(Output::Note(format!(
                    "ignored a new block for channel {}, not one of ours",
                    p.channel_id
                )));
            }
            Mining::SetNewPrevHash(p) => {
                self.tip = Some(Tip {
                    prev_hash: BlockHash::from_byte_array(*p.prev_hash.as_array()),
                    min_ntime: p.min_ntime,
                    bits: p.nbits,
                });
                // Only the named job is on the new tip; earlier non-future jobs are dead.
                self.live.clear();
                self.jobs
                    .retain(|id, j| *id == p.job_id || j.min_ntime.is_none());
                if let Some(j) = self.jobs.get_mut(&p.job_id) {
                    j.min_ntime = Some(p.min_ntime);
                }
                if let Some(job) = self.job(p.job_id)? {
                    self.live.insert(p.job_id, ());
                    out.push(Output::Job { job, clean: true });
                } else {
                    out.push(Output::Note(format!(
                        "new block from the pool, but no job {} for it yet",
                        p.job_id
                    )));
                }
            }
            Mining::SubmitSharesSuccess(s) => {
                let later = self
                    .pending
                    .split_off(&s.last_sequence_number.saturating_add(1));
                let done = std::mem::replace(&mut self.pending, later);
                out.extend(done.into_values().map(Output::Accepted));
            }
            Mining::SubmitSharesError(e) => match self.pending.remove(&e.sequence_number) {
                Some(share) => out.push(Output::Rejected {
                    share,
                    reason: text(e.error_code.as_bytes()),
                }),
                None => out.push(Output::Note(format!(
                    "the pool refused share {} that we are not waiting for: {}",
                    e.sequence_number,
                    text(e.error_code.as_bytes())
                ))),
            },
            Mining::UpdateChannelError(e) => out.push(Output::Note(format!(
                "the pool refused our hash rate update: {}",
                text(e.error_code.as_bytes())
            ))),
            other => out.push(Output::Note(format!("ignored from the pool: {other:?}"))),
        }
        Ok(out)
    }

    /// Keep a job from the pool; one with `min_ntime` is mined at once, on the current tip.
    fn add_job(&mut self, id: u32, job: PoolJob) -> Result<Vec<Output>, SessionError> {
        let future = job.min_ntime.is_none();
        self.jobs.insert(id, job);
        while self.jobs.len() > MAX_JOBS {
            self.jobs.pop_first();
        }
        if !future {
            if let Some(job) = self.job(id)? {
                self.live.insert(id, ());
                return Ok(vec![Output::Job { job, clean: false }]);
            }
        }
        Ok(Vec::new())
    }

    /// The newest live job, if any (after the extranonce prefix changed).
    fn current_job(&self) -> Result<Option<Job>, SessionError> {
        match self.jobs.keys().next_back().copied() {
            Some(id) if self.tip.is_some() => self.job(id),
            _ => Ok(None),
        }
    }

    /// Job `id` as the mining layer mines it, once channel and tip are known.
    fn job(&self, id: u32) -> Result<Option<Job>, SessionError> {
        let (Some(c), Some(tip), Some(j)) = (&self.channel, self.tip, self.jobs.get(&id)) else {
            return Ok(None);
        };
        let job = Job {
            id: id.to_string(),
            prev_hash: tip.prev_hash,
            version: Version::from_consensus(j.version as i32),
            version_mask: if j.version_rolling && !self.fixed_version {
                VERSION_ROLLING_MASK
            } else {
                0
            },
            bits: CompactTarget::from_consensus(tip.bits),
            ntime: j.min_ntime.unwrap_or(tip.min_ntime).max(tip.min_ntime),
            ntime_roll: DEFAULT_NTIME_ROLL,
            coinbase: match j.merkle_root {
                Some(_) => CoinbaseTemplate::none(),
                None => CoinbaseTemplate {
                    prefix: j.prefix.clone(),
                    extranonce1: c.extranonce1.clone(),
                    extranonce2_size: c.rolled,
                    suffix: j.suffix.clone(),
                },
            },
            merkle_branch: j.merkle_path.clone(),
            fixed_merkle_root: j.merkle_root,
            share_target: c.target,
            clean: true,
        };
        job.validate().map_err(|e| SessionError::BadJob {
            id,
            why: e.to_string(),
        })?;
        Ok(Some(job))
    }

    /// The submission for a share found on one of our jobs, or why it is not worth sending.
    pub fn submit(
        &mut self,
        share: Share,
        version: Version,
    ) -> Result<Submission, (Share, NotSent)> {
        let Some(c) = &self.channel else {
            return Err((share, NotSent("no channel open".into())));
        };
        let Ok(job_id) = share.job_id.parse::<u32>() else {
            return Err((share, NotSent("not a job of this pool".into())));
        };
        if !self.live.contains_key(&job_id) {
            return Err((share, NotSent("its job is from an earlier block".into())));
        }
        if self.pending.len() >= MAX_PENDING {
            return Err((share, NotSent("too many shares without an answer".into())));
        }
        let sequence_number = self.next_sequence;
        let message = match (self.kind, share.extranonce2) {
            (ChannelKind::Standard, None) => Submission::Standard(SubmitSharesStandard {
                channel_id: c.id,
                sequence_number,
                job_id,
                nonce: share.nonce,
                ntime: share.ntime,
                version: version.to_consensus() as u32,
            }),
            (ChannelKind::Extended, Some(e2)) => {
                let mut extranonce = vec![0u8; c.padding];
                extranonce.extend_from_slice(e2.as_bytes());
                let Ok(extranonce) = extranonce.try_into() else {
                    return Err((share, NotSent("extranonce longer than 32 bytes".into())));
                };
                Submission::Extended(SubmitSharesExtendedOwned {
                    channel_id: c.id,
                    sequence_number,
                    job_id,
                    nonce: share.nonce,
                    ntime: share.ntime,
                    version: version.to_consensus() as u32,
                    extranonce,
                })
            }
            (kind, _) => {
                return Err((
                    share,
                    NotSent(format!("its extranonce does not fit a {kind} channel")),
                ))
            }
        };
        self.next_sequence = self.next_sequence.wrapping_add(1);
        self.pending.insert(sequence_number, share);
        Ok(message)
    }

    /// How many shares wait for an answer.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Every share still waiting for an answer (the connection ended).
    pub fn take_pending(&mut self) -> Vec<Share> {
        std::mem::take(&mut self.pending).into_values().collect()
    }
}

/// A channel's `user_identity` (SV2's Str0255).
fn user_identity<T: TryFrom<String>>(user: &str) -> Result<T, SessionError> {
    T::try_from(user.to_owned())
        .map_err(|_| SessionError::ChannelRefused("the user is longer than 255 bytes".into()))
}

fn to_array(h: &binary_sv2::U256<'_>) -> [u8; 32] {
    *h.as_array()
}

/// A pool's error code or reason, printable whatever its bytes.
fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    mod standard;
    use binary_sv2::{Seq0255Owned, Sv2OptionOwned};
    use mining_sv2::*;

    /// Encode an SRI message and read it back through SRI's parser, as it comes off the wire.
    pub(super) fn feed<T: binary_sv2::Serialize + binary_sv2::GetSize>(
        session: &mut MiningSession,
        msg_type: u8,
        message: T,
    ) -> Result<Vec<Output>, SessionError> {
        let mut bytes = binary_sv2::to_bytes(message).expect("encodes");
        let parsed = Mining::try_from((msg_type, bytes.as_mut_slice())).expect("parses");
        session.on_message(parsed)
    }

    /// The pool's `SubmitSharesSuccess` for `count` shares up to `last_sequence_number` on
    /// `channel`: the nonces the session reports accepted.
    pub(super) fn accepted_by_success(
        session: &mut MiningSession,
        channel: u32,
        last_sequence_number: u32,
        count: u32,
    ) -> Vec<u32> {
        let out = feed(
            session,
            MESSAGE_TYPE_SUBMIT_SHARES_SUCCESS,
            SubmitSharesSuccess {
                channel_id: channel,
                last_sequence_number,
                new_submits_accepted_count: count,
                new_shares_sum: u64::from(count),
            },
        )
        .unwrap();
        out.iter()
            .filter_map(|o| match o {
                Output::Accepted(s) => Some(s.nonce),
                _ => None,
            })
            .collect()
    }

    fn open(session: &mut MiningSession, extranonce_size: u16) -> Vec<Output> {
        let mut target = [0xffu8; 32];
        target[31] = 0x00;
        feed(
            session,
            MESSAGE_TYPE_OPEN_EXTENDED_MINING_CHANNEL_SUCCESS,
            OpenExtendedMiningChannelSuccessOwned {
                request_id: 1,
                channel_id: 7,
                target: target.into(),
                extranonce_size,
                extranonce_prefix: vec![1, 2, 3, 4].try_into().unwrap(),
                group_channel_id: 1,
            },
        )
        .unwrap()
    }

    fn new_job(session: &mut MiningSession, id: u32, min_ntime: Option<u32>) -> Vec<Output> {
        feed(
            session,
            MESSAGE_TYPE_NEW_EXTENDED_MINING_JOB,
            NewExtendedMiningJobOwned {
                channel_id: 7,
                job_id: id,
                min_ntime: Sv2OptionOwned::new(min_ntime),
                version: 0x2000_0000,
                version_rolling_allowed: true,
                merkle_path: Seq0255Owned::new(vec![[5u8; 32].into()]).unwrap(),
                coinbase_tx_prefix: vec![0xaa; 42].try_into().unwrap(),
                coinbase_tx_suffix: vec![0xbb; 60].try_into().unwrap(),
            },
        )
        .unwrap()
    }

    fn prev_hash(session: &mut MiningSession, job_id: u32) -> Vec<Output> {
        feed(
            session,
            MESSAGE_TYPE_MINING_SET_NEW_PREV_HASH,
            SetNewPrevHashOwned {
                channel_id: 7,
                job_id,
                prev_hash: [9u8; 32].into(),
                min_ntime: 1_700_000_000,
                nbits: 0x207f_ffff,
            },
        )
        .unwrap()
    }

    pub(super) fn jobs(out: &[Output]) -> Vec<(Job, bool)> {
        out.iter()
            .filter_map(|o| match o {
                Output::Job { job, clean } => Some((job.clone(), *clean)),
                _ => None,
            })
            .collect()
    }

    fn share(job_id: u32, nonce: u32) -> Share {
        Share {
            job_id: job_id.to_string(),
            extranonce2: Some(crate::work::rolling::Extranonce2::new(u64::from(nonce), 8).unwrap()),
            ntime: 1_700_000_000,
            nonce,
            version_bits: Some(0),
        }
    }

    /// A future job waits for its SetNewPrevHash; the pool's extranonce beyond our 8 bytes is
    /// zero padding after its prefix, sent back in every share.
    #[test]
    fn future_jobs_start_on_their_prev_hash_with_the_pools_extranonce() {
        let mut s = MiningSession::new();
        let out = open(&mut s, 16);
        assert!(matches!(out[0], Output::Opened { channel_id: 7 }));
        assert!(jobs(&new_job(&mut s, 1, None)).is_empty());
        let out = prev_hash(&mut s, 1);
        let [(job, true)] = &jobs(&out)[..] else {
            panic!("{out:?}")
        };
        assert_eq!(job.id, "1");
        assert_eq!(job.prev_hash, BlockHash::from_byte_array([9; 32]));
        assert_eq!(job.ntime, 1_700_000_000);
        assert_eq!(job.version_mask, VERSION_ROLLING_MASK);
        assert_eq!(
            job.coinbase.extranonce1,
            [1, 2, 3, 4, 0, 0, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!(job.coinbase.extranonce2_size, 8);
        let Submission::Extended(m) = s.submit(share(1, 3), job.version).unwrap() else {
            panic!("an extended channel submits extended shares")
        };
        assert_eq!(m.extranonce.as_bytes().len(), 16);
        assert_eq!(&m.extranonce.as_bytes()[..8], &[0; 8]);
        assert_eq!((m.channel_id, m.job_id, m.sequence_number), (7, 1, 0));
        // A job with min_ntime mines at once, on the same tip, without killing job 1.
        let out = new_job(&mut s, 2, Some(1_700_000_005));
        let [(job2, false)] = &jobs(&out)[..] else {
            panic!("{out:?}")
        };
        assert_eq!(job2.ntime, 1_700_000_005);
        assert!(s.submit(share(1, 4), job.version).is_ok());
    }

    /// One success acknowledges every share up to its sequence number; an error refuses one;
    /// a share on a job from before the last SetNewPrevHash is not sent.
    #[test]
    fn batched_success_errors_and_stale_jobs() {
        let mut s = MiningSession::new();
        open(&mut s, 8);
        new_job(&mut s, 1, None);
        let version = jobs(&prev_hash(&mut s, 1))[0].0.version;
        for n in 0..4 {
            s.submit(share(1, n), version).unwrap();
        }
        let out = feed(
            &mut s,
            MESSAGE_TYPE_SUBMIT_SHARES_ERROR,
            SubmitSharesErrorOwned {
                channel_id: 7,
                sequence_number: 1,
                error_code: "difficulty-too-low".to_owned().try_into().unwrap(),
            },
        )
        .unwrap();
        assert!(
            matches!(&out[..], [Output::Rejected { share, reason }] if share.nonce == 1 && reason == "difficulty-too-low")
        );
        let accepted = accepted_by_success(&mut s, 7, 2, 2);
        assert_eq!(accepted, [0, 2]);
        assert_eq!(s.pending(), 1);
        // A new block: job 1 is dead, its shares are not sent.
        new_job(&mut s, 2, None);
        prev_hash(&mut s, 2);
        let (_, why) = s.submit(share(1, 9), version).unwrap_err();
        assert!(why.0.contains("earlier block"), "{why:?}");
        assert_eq!(s.take_pending().len(), 1);
    }

    /// A hash rate update names the open channel; none before one is open.
    #[test]
    fn update_channel_only_for_an_open_channel() {
        let mut s = MiningSession::new();
        assert!(s.update_channel(1e9).is_none());
        open(&mut s, 8);
        let u = s.update_channel(2.5e9).unwrap();
        assert_eq!((u.channel_id, u.nominal_hash_rate), (7, 2.5e9));
        assert_eq!(u.maximum_target.as_array(), &[0xff; 32]);
        let out = feed(
            &mut s,
            MESSAGE_TYPE_UPDATE_CHANNEL_ERROR,
            UpdateChannelErrorOwned {
                channel_id: 7,
                error_code: "invalid-nominal-hashrate".to_owned().try_into().unwrap(),
            },
        )
        .unwrap();
        assert!(
            matches!(&out[..], [Output::Note(n)] if n.contains("invalid-nominal-hashrate")),
            "{out:?}"
        );
    }

    #[test]
    fn a_refused_channel_or_no_extranonce_ends_the_session() {
        let mut s = MiningSession::new();
        let e = feed(
            &mut s,
            MESSAGE_TYPE_OPEN_MINING_CHANNEL_ERROR,
            OpenMiningChannelErrorOwned {
                request_id: 1,
                error_code: "unknown-user".to_owned().try_into().unwrap(),
            },
        );
        assert_eq!(e, Err(SessionError::ChannelRefused("unknown-user".into())));
        let mut s = MiningSession::new();
        let e = feed(
            &mut s,
            MESSAGE_TYPE_OPEN_EXTENDED_MINING_CHANNEL_SUCCESS,
            OpenExtendedMiningChannelSuccessOwned {
                request_id: 1,
                channel_id: 7,
                target: [0xff; 32].into(),
                extranonce_size: 0,
                extranonce_prefix: vec![1].try_into().unwrap(),
                group_channel_id: 1,
            },
        );
        assert_eq!(e, Err(SessionError::NoExtranonce(0)));
    }
}
