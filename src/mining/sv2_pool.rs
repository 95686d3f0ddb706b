//! A Stratum V2 pool as a work source: TCP, the Noise NX handshake pinned to the pool's
//! authority key, `SetupConnection` for the Mining Protocol, one channel (extended, or standard
//! for header-only mining), and the [`MiningSession`] between the pool's messages and the
//! runner.
//!
//! A pool whose certificate the pinned key did not sign is refused for good (the run ends with
//! that error: mining on it would hand our work to whoever sits in between). Any other failure
//! (refused connection, a pool that closes mid-handshake, garbage, silence) is a disconnect: the
//! shares waiting for an answer end unanswered, and the source reconnects after a wait that
//! doubles from [`BACKOFF_FIRST`] to [`BACKOFF_MAX`].
//!
//! Frames are read by their own task (a Noise read cannot be abandoned half-way) into a bounded
//! queue, so this loop can wait on the pool and the runner at once.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use super::source::{Fate, Solved, SourceError, SourceEvent, SourceLink, WorkSource};
use crate::sv2::common_messages_sv2::{Protocol, SetupConnectionOwned};
use crate::sv2::mining_client::{ChannelKind, MiningSession, Output, SessionError};
use crate::sv2::noise::{self, NoiseError, NoiseReader, NoiseWriter};
use crate::sv2::parsers_sv2::{AnyMessage, AnyMessageOwned, CommonMessages, MiningOwned};
use crate::sv2::AuthorityPublicKey;
use crate::work::Share;

/// The largest frame we take from a pool (a job's coinbase halves are at most 64 KiB each in
/// SV2's encoding, and a coinbase is far smaller in practice).
pub const MAX_FRAME: usize = 70 * 1024;

/// How long the TCP connect, the handshake and `SetupConnection` may take, each.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a write to the pool may take before the connection counts as lost.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// The first wait before reconnecting, doubled after each failure up to [`BACKOFF_MAX`].
pub const BACKOFF_FIRST: Duration = Duration::from_secs(1);
pub const BACKOFF_MAX: Duration = Duration::from_secs(60);

/// Frames read ahead of this loop.
const FRAME_QUEUE: usize = 64;

/// How long unanswered shares may wait for their answers once the run ends.
const CLOSE_WAIT: Duration = Duration::from_secs(1);

/// How often the measured hash rate is compared with what the pool was told.
const RATE_CHECK: Duration = Duration::from_secs(10);

/// The window the hash rate is measured over.
const RATE_WINDOW: Duration = Duration::from_secs(60);

/// The pool is told again only when the measured rate is off by more than this factor either
/// way (each update makes it send a new target).
const RATE_SLACK: f64 = 1.25;

/// Where and how to mine.
#[derive(Clone, Debug)]
pub struct Sv2Config {
    pub host: String,
    pub port: u16,
    /// The key the pool's Noise certificate must be signed with.
    pub authority: AuthorityPublicKey,
    /// `user_identity` of the channel (the pool's account, e.g. `user.worker`).
    pub user: String,
    /// What the devices hash per second before it is measured (a rough guess from the device
    /// kinds): the pool sets the channel's first target from it. Once the run has measured its
    /// rate, the channel is opened with that, and `UpdateChannel` tells the pool when it moves.
    pub nominal_hash_rate: f32,
    /// Which channel to open (`--sv2-channel`).
    pub channel: ChannelKind,
}

impl Sv2Config {
    /// The URL in SRI's form, `stratum2+tcp://host:port/KEY`.
    pub fn url(&self) -> String {
        format!(
            "stratum2+tcp://{}:{}/{}",
            self.host, self.port, self.authority
        )
    }
}

/// Mines on one Stratum V2 pool.
pub struct Sv2Source {
    config: Sv2Config,
}

impl Sv2Source {
    pub fn new(config: Sv2Config) -> Self {
        Sv2Source { config }
    }
}

/// How one connection ended.
enum End {
    /// The runner is done (and what was pending got its fate).
    RunnerGone,
    /// Lost the pool; try again.
    Lost(String),
}

type Reader = NoiseReader<ReadHalf<TcpStream>>;
type Writer = NoiseWriter<WriteHalf<TcpStream>>;

impl WorkSource for Sv2Source {
    fn label(&self) -> String {
        format!("stratum2+tcp://{}:{}", self.config.host, self.config.port)
    }

    fn is_solo(&self) -> bool {
        false
    }

    async fn run(self, mut link: SourceLink) -> Result<(), SourceError> {
        let mut wait = BACKOFF_FIRST;
        loop {
            let mut session = MiningSession::with_kind(self.config.channel);
            let reason = match connection(&self.config, &mut session, &mut link).await? {
                End::RunnerGone => return Ok(()),
                End::Lost(reason) => reason,
            };
            let opened = session.is_open();
            // Whatever was sent on that connection gets no answer now.
            for share in session.take_pending() {
                let fate = Fate::Unanswered(format!("the connection was lost: {reason}"));
                if !link.send(outcome(share, fate)).await {
                    return Ok(());
                }
            }
            if opened {
                wait = BACKOFF_FIRST;
                let events = vec![
                    SourceEvent::ClearJobs,
                    SourceEvent::Disconnected {
                        reason: reason.clone(),
                    },
                ];
                if !link.send_all(events).await {
                    return Ok(());
                }
            }
            let down = format!("{reason}; retrying in {} s", wait.as_secs());
            if !link.send(SourceEvent::Down(down)).await {
                return Ok(());
            }
            if !idle(wait, &mut link).await {
                return Ok(());
            }
            wait = (wait * 2).min(BACKOFF_MAX);
        }
    }
}

/// Wait `wait`, calling every solution that arrives stale; false once the runner is gone.
async fn idle(wait: Duration, link: &mut SourceLink) -> bool {
    let sleep = tokio::time::sleep(wait);
    tokio::pin!(sleep);
    loop {
        tokio::select! {
            _ = &mut sleep => return true,
            found = link.solutions.recv() => match found {
                Some(found) => {
                    let fate = Fate::Stale { held: false, why: "not connected to the pool".into() };
                    if !link.send(outcome(found.share, fate)).await {
                        return false;
                    }
                }
                None => return false,
            },
            _ = link.events.closed() => return false,
        }
    }
}

fn outcome(share: Share, fate: Fate) -> SourceEvent {
    SourceEvent::Outcome {
        solved: Solved::Share(share),
        fate,
    }
}

/// Connect, authenticate, set up and open a channel (fatal errors are returned).
async fn open(
    config: &Sv2Config,
    session: &mut MiningSession,
    nominal_hash_rate: f32,
) -> Result<Result<(Reader, Writer), String>, SourceError> {
    let addr = format!("{}:{}", config.host, config.port);
    let socket = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(&addr)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return Ok(Err(format!("cannot connect to {addr}: {e}"))),
        Err(_) => {
            return Ok(Err(format!(
                "no connection to {addr} in {CONNECT_TIMEOUT:?}"
            )))
        }
    };
    let _ = socket.set_nodelay(true);
    let initiator = noise::initiator(Some(config.authority))
        .map_err(|e| SourceError::Failed(format!("authority key {}: {e}", config.authority)))?;
    let (mut reader, mut writer) =
        match noise::connect(socket, initiator, CONNECT_TIMEOUT, MAX_FRAME).await {
            Ok(halves) => halves,
            // The certificate did not verify under the pinned key: never mine there.
            // Signed by the pinned key, but expired or not yet valid: as fatal (the pool or
            // one of the clocks needs fixing), and said as such.
            Err(NoiseError::CertificateTime(e)) => {
                return Err(SourceError::Failed(format!(
                    "the pool at {addr} answered for authority key {}, but {e}",
                    config.authority
                )))
            }
            Err(NoiseError::Handshake(e)) => {
                return Err(SourceError::Failed(format!(
                    "the pool at {addr} did not prove it holds authority key {} ({e}): check the key in the URL or --sv2-authority",
                    config.authority
                )))
            }
            Err(e) => return Ok(Err(format!("Noise handshake with {addr}: {e}"))),
        };
    let text = |v: &str| v.to_owned().try_into();
    let setup = (|| {
        Ok::<_, binary_sv2::Error>(SetupConnectionOwned {
            protocol: Protocol::MiningProtocol,
            min_version: 2,
            max_version: 2,
            // Extended: no flag (extended jobs are fine, version rolling is optional, no work
            // selection). Standard: REQUIRES_STANDARD_JOBS, so the pool sends `NewMiningJob`s
            // for our channel rather than extended jobs for a group channel.
            flags: session.kind().setup_flags(),
            endpoint_host: text(&config.host)?,
            endpoint_port: config.port,
            vendor: text("wgminer")?,
            hardware_version: text("")?,
            firmware: text(env!("CARGO_PKG_VERSION"))?,
            device_id: text("")?,
        })
    })()
    .map_err(|e| SourceError::Failed(format!("SetupConnection for {addr}: {e:?}")))?;
    if let Err(e) = write(&mut writer, AnyMessageOwned::Common(setup.into())).await {
        return Ok(Err(e));
    }
    let frame = match tokio::time::timeout(CONNECT_TIMEOUT, reader.read_frame()).await {
        Ok(Ok(f)) => f,
        Ok(Err(e)) => return Ok(Err(format!("SetupConnection: {e}"))),
        Err(_) => {
            return Ok(Err(format!(
                "no answer to SetupConnection in {CONNECT_TIMEOUT:?}"
            )))
        }
    };
    let mut frame = frame;
    match frame.parse() {
        Ok(AnyMessage::Common(CommonMessages::SetupConnectionSuccess(ok))) => {
            if let Err(e) = session.on_setup_success(ok.flags) {
                return Err(SourceError::Failed(format!("the pool at {addr}: {e}")));
            }
        }
        Ok(AnyMessage::Common(CommonMessages::SetupConnectionError(e))) => {
            return Err(SourceError::Failed(format!(
                "the pool at {addr} refused the connection: {}",
                String::from_utf8_lossy(e.error_code.as_bytes())
            )))
        }
        Ok(other) => {
            return Ok(Err(format!(
                "the pool answered SetupConnection with {other:?}"
            )))
        }
        Err(e) => return Ok(Err(format!("unreadable answer to SetupConnection: {e:?}"))),
    }
    let open = session
        .open_request(&config.user, nominal_hash_rate)
        .map_err(|e| SourceError::Failed(e.to_string()))?;
    let message = AnyMessageOwned::Mining(open);
    if let Err(e) = write(&mut writer, message).await {
        return Ok(Err(e));
    }
    Ok(Ok((reader, writer)))
}

async fn write(writer: &mut Writer, message: AnyMessageOwned) -> Result<(), String> {
    match tokio::time::timeout(WRITE_TIMEOUT, writer.send(message)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(format!("writing to the pool: {e}")),
        Err(_) => Err(format!("the pool took no data for {WRITE_TIMEOUT:?}")),
    }
}

/// Read frames into `tx` until the connection fails or this loop stops listening.
async fn read_frames(mut reader: Reader, tx: mpsc::Sender<Result<noise::Frame, NoiseError>>) {
    loop {
        let frame = reader.read_frame().await;
        let failed = frame.is_err();
        if tx.send(frame).await.is_err() || failed {
            return;
        }
    }
}

/// One connection, from TCP connect to its end.
async fn connection(
    config: &Sv2Config,
    session: &mut MiningSession,
    link: &mut SourceLink,
) -> Result<End, SourceError> {
    let mut declared = measured_rate(&link.stats).unwrap_or(config.nominal_hash_rate);
    let (reader, mut writer) = match open(config, session, declared).await? {
        Ok(halves) => halves,
        Err(reason) => return Ok(End::Lost(reason)),
    };
    let (frames_tx, mut frames) = mpsc::channel(FRAME_QUEUE);
    let reading = tokio::spawn(read_frames(reader, frames_tx));
    let _abort = AbortOnDrop(reading);
    let label = format!("stratum2+tcp://{}:{}", config.host, config.port);
    let mut taking = true;
    let mut closing: Option<tokio::time::Instant> = None;
    let mut rate_check =
        tokio::time::interval_at(tokio::time::Instant::now() + RATE_CHECK, RATE_CHECK);
    loop {
        let deadline = closing.unwrap_or_else(|| tokio::time::Instant::now() + BACKOFF_MAX);
        tokio::select! {
            frame = frames.recv() => {
                let mut frame = match frame {
                    Some(Ok(f)) => f,
                    Some(Err(e)) => return Ok(End::Lost(e.to_string())),
                    None => return Ok(End::Lost("the reader stopped".into())),
                };
                let message = match frame.parse() {
                    Ok(AnyMessage::Mining(m)) => m,
                    Ok(other) => {
                        tracing::debug!("from the SV2 pool, not for the mining protocol: {other:?}");
                        continue;
                    }
                    Err(e) => return Ok(End::Lost(format!("undecodable message from the pool: {e:?}"))),
                };
                let outputs = match session.on_message(message) {
                    Ok(o) => o,
                    Err(e @ (SessionError::ChannelRefused(_) | SessionError::StandardChannelsRefused)) => {
                        return Err(SourceError::Failed(e.to_string()))
                    }
                    Err(e) => return Ok(End::Lost(e.to_string())),
                };
                for o in outputs {
                    let ev = match o {
                        Output::Opened { channel_id } => {
                            tracing::debug!("SV2 channel {channel_id} open");
                            SourceEvent::Connected { peer: label.clone() }
                        }
                        Output::Job { job, clean } => match job.prepare() {
                            Ok(job) => SourceEvent::Job { job: Arc::new(job), clean, solo: None },
                            Err(e) => return Ok(End::Lost(format!("unusable job from the pool: {e}"))),
                        },
                        // A hair above the pool's difficulty, so the target the runner derives
                        // from it is never easier than the pool's (floating point).
                        Output::Target(t) => SourceEvent::Difficulty(
                            crate::pow::difficulty_of_target(&t) * (1.0 + 1e-9),
                        ),
                        Output::Accepted(share) => outcome(share, Fate::Accepted),
                        Output::Rejected { share, reason } => outcome(share, Fate::Rejected(reason)),
                        Output::Note(n) => {
                            tracing::debug!("SV2 pool: {n}");
                            continue;
                        }
                    };
                    if !link.send(ev).await {
                        return Ok(End::RunnerGone);
                    }
                }
                if closing.is_some() && session.pending() == 0 {
                    let _ = writer.shutdown().await;
                    return Ok(End::RunnerGone);
                }
            }
            found = link.solutions.recv(), if taking => match found {
                Some(found) => {
                    let version = found
                        .job
                        .job()
                        .rolled_version(found.share.version_bits.unwrap_or(0));
                    let version = match version {
                        Ok(v) => v,
                        Err(e) => {
                            let fate = Fate::Stale { held: false, why: e.to_string() };
                            if !link.send(outcome(found.share, fate)).await {
                                return Ok(End::RunnerGone);
                            }
                            continue;
                        }
                    };
                    match session.submit(found.share, version) {
                        Ok(m) => {
                            let m = AnyMessageOwned::Mining(MiningOwned::from(m));
                            if let Err(e) = write(&mut writer, m).await {
                                return Ok(End::Lost(e));
                            }
                        }
                        Err((share, why)) => {
                            let fate = Fate::Stale { held: false, why: why.0 };
                            if !link.send(outcome(share, fate)).await {
                                return Ok(End::RunnerGone);
                            }
                        }
                    }
                }
                // The run is ending: wait a moment for the answers still due.
                None if session.pending() == 0 => {
                    let _ = writer.shutdown().await;
                    return Ok(End::RunnerGone);
                }
                None => {
                    taking = false;
                    closing = Some(tokio::time::Instant::now() + CLOSE_WAIT);
                }
            },
            _ = tokio::time::sleep_until(deadline), if closing.is_some() => {
                for share in session.take_pending() {
                    let fate = Fate::Unanswered("the run ended before the pool answered".into());
                    if !link.send(outcome(share, fate)).await {
                        break;
                    }
                }
                let _ = writer.shutdown().await;
                return Ok(End::RunnerGone);
            }
            _ = rate_check.tick(), if closing.is_none() => {
                let Some(measured) = measured_rate(&link.stats) else { continue };
                let off = f64::from(measured) / f64::from(declared.max(1.0));
                if (1.0 / RATE_SLACK..=RATE_SLACK).contains(&off) {
                    continue;
                }
                let Some(update) = session.update_channel(measured) else { continue };
                tracing::info!(
                    "told the pool we hash {} (measured; it was told {})",
                    crate::bench::format_rate(f64::from(measured)),
                    crate::bench::format_rate(f64::from(declared))
                );
                declared = measured;
                let m = AnyMessageOwned::Mining(MiningOwned::UpdateChannel(update));
                if let Err(e) = write(&mut writer, m).await {
                    return Ok(End::Lost(e));
                }
            }
            _ = link.events.closed() => return Ok(End::RunnerGone),
        }
    }
}

/// What the devices have hashed per second over the last minute, once the run has measured
/// for [`RATE_CHECK`] (too early, start-up makes it look slower than it is).
fn measured_rate(stats: &crate::work::MiningStats) -> Option<f32> {
    if stats.uptime() < RATE_CHECK {
        return None;
    }
    let rate = stats.hash_rate(RATE_WINDOW);
    (rate.is_finite() && rate > 0.0).then_some(rate as f32)
}

/// Stops the reading task when the connection ends.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
