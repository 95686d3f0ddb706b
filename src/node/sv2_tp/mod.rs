//! The node core as a Stratum V2 Template Provider: the Template Distribution Protocol over
//! Noise, so SRI's pool (and any SV2 pool or job declarator) builds its jobs on our chain.
//!
//! Each client connection runs the Noise NX handshake with the static authority key of the chain
//! directory ([`authority`]), then a [`session::Session`]: `SetupConnection`,
//! `CoinbaseOutputConstraints`, then a future `NewTemplate` and `SetNewPrevHash` on every tip
//! change; `RequestTransactionData` answered from the templates kept; `SubmitSolution` assembled
//! into a block ([`messages`]) and handed to [`NodeCore::submit`], the very call `submitblock`
//! makes, so it is validated and stored the same way. A bad solution is logged and counted; the
//! chain is unchanged.
//!
//! Limits (what a peer can grow): [`TpLimits`] caps connections, the handshake's and the setup's
//! time, and the size of a frame; each session keeps [`session::KEPT_TEMPLATES`] templates; frames
//! from a client wait in a queue of [`INBOUND_QUEUE`] (the reader then stops reading).
//!
//! Started beside the JSON-RPC server on the same [`NodeCore`] (by `wgminer node`, or while the
//! embedded core is mined), with the key printed so a pool can pin it:
//!
//! ```no_run
//! # async fn run(core: std::sync::Arc<wgminer::node::NodeCore>) -> Result<(), wgminer::node::sv2_tp::TpError> {
//! use wgminer::node::sv2_tp::TemplateProvider;
//! let tp = TemplateProvider::start(core, "127.0.0.1:8442".parse().unwrap()).await?;
//! println!(
//!     "SV2 template provider on {}, authority_public_key = \"{}\"{}",
//!     tp.addr(),
//!     tp.authority_public_key(),
//!     if tp.key_created() { " (new key)" } else { "" }
//! );
//! // ... serve until Ctrl-C, then:
//! tp.stop().await;
//! # Ok(())
//! # }
//! ```

pub mod authority;
pub mod messages;
pub mod session;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use self::authority::AuthorityKey;
use self::session::{Session, Step};
use super::service::NodeCore;
use super::validate::RejectReason;
use super::{BlockRejected, NodeError};
use crate::sv2::noise::{self, NoiseError, NoiseReader, NoiseWriter};
use crate::sv2::{AuthorityPublicKey, Frame};
use bitcoin::Block;

/// Frames read from a client and not yet handled; a client that sends faster waits.
pub const INBOUND_QUEUE: usize = 16;

/// Refused messages logged per connection; later ones are only counted, so a client cannot flood
/// the log.
pub const REFUSALS_LOGGED: u32 = 10;

/// What a Template Provider lets its clients use.
#[derive(Clone, Copy, Debug)]
pub struct TpLimits {
    /// Open client connections; one more is closed at once (a TP serves a pool or two).
    pub max_connections: usize,
    /// The Noise handshake, from accept.
    pub handshake_timeout: Duration,
    /// From the handshake to `SetupConnection` and the first `CoinbaseOutputConstraints`.
    pub setup_timeout: Duration,
    /// The largest frame read, encrypted: a `SubmitSolution` carries a coinbase of at most
    /// 64 KiB, every other client message is a few bytes.
    pub max_frame: usize,
    /// How long the Noise certificate we sign is valid.
    pub cert_validity: Duration,
    /// How long stopping waits for connections to finish their last step.
    pub shutdown_grace: Duration,
}

/// The limits `wgminer node --sv2-tp-bind` uses.
pub const LIMITS: TpLimits = TpLimits {
    max_connections: 16,
    handshake_timeout: Duration::from_secs(10),
    setup_timeout: Duration::from_secs(10),
    max_frame: 70 * 1024,
    cert_validity: Duration::from_secs(3600),
    shutdown_grace: Duration::from_secs(5),
};

/// Why the Template Provider cannot start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TpError {
    #[error("cannot serve the SV2 Template Provider on {addr}: {source} (is another provider or wgminer using that port? choose another --sv2-tp-bind)")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("SV2 authority key: {0}")]
    Key(#[from] NodeError),
    #[error("the SV2 authority key cannot sign Noise certificates: {0:?}")]
    Noise(noise_sv2::Error),
}

/// Counters of what clients did, for logs and tests.
#[derive(Debug, Default)]
pub struct TpStats {
    /// Clients that completed the Noise handshake.
    pub connections: AtomicU64,
    /// Connections closed at once because [`TpLimits::max_connections`] were open.
    pub connections_refused: AtomicU64,
    /// Handshake failures, undecryptable or oversized frames, protocol violations.
    pub protocol_errors: AtomicU64,
    /// `NewTemplate` messages sent.
    pub templates_sent: AtomicU64,
    /// Solutions the chain took as its new tip.
    pub blocks_accepted: AtomicU64,
    /// Solutions the chain refused (stale, invalid) or that made no block (malformed, unknown
    /// template); the chain is unchanged by each.
    pub solutions_refused: AtomicU64,
    /// Messages that did not parse, or were not for a template provider.
    pub messages_refused: AtomicU64,
}

impl TpStats {
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// A running Template Provider.
pub struct TemplateProvider {
    addr: SocketAddr,
    public: AuthorityPublicKey,
    key_created: bool,
    stats: Arc<TpStats>,
    stop: watch::Sender<bool>,
    accept_loop: tokio::task::JoinHandle<()>,
}

impl TemplateProvider {
    /// Load (or make) the authority key in the core's chain directory, bind `bind`, and serve
    /// templates of `core` until [`Self::stop`].
    pub async fn start(core: Arc<NodeCore>, bind: SocketAddr) -> Result<TemplateProvider, TpError> {
        Self::start_with_limits(core, bind, LIMITS).await
    }

    /// [`Self::start`] with other limits (tests use small ones).
    pub async fn start_with_limits(
        core: Arc<NodeCore>,
        bind: SocketAddr,
        limits: TpLimits,
    ) -> Result<TemplateProvider, TpError> {
        let (key, key_created) = AuthorityKey::load_or_create(&core.dir())?;
        // Fail now, not on the first client, if the key cannot sign.
        key.responder(limits.cert_validity)
            .map_err(TpError::Noise)?;
        let bind_err = |source| TpError::Bind { addr: bind, source };
        let listener = TcpListener::bind(bind).await.map_err(bind_err)?;
        let addr = listener.local_addr().map_err(bind_err)?;
        let stats = Arc::new(TpStats::default());
        let (stop, stopping) = watch::channel(false);
        let public = key.public();
        let accept_loop = tokio::spawn(accept_loop(
            listener,
            core,
            key,
            limits,
            Arc::clone(&stats),
            stopping,
        ));
        Ok(TemplateProvider {
            addr,
            public,
            key_created,
            stats,
            stop,
            accept_loop,
        })
    }

    /// Where it listens (the real port when bound to port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The authority public key clients pin, in SRI's configuration form.
    pub fn authority_public_key(&self) -> AuthorityPublicKey {
        self.public
    }

    /// Whether the authority key was made by this start (so the user learns its new value).
    pub fn key_created(&self) -> bool {
        self.key_created
    }

    pub fn stats(&self) -> &Arc<TpStats> {
        &self.stats
    }

    /// Stop accepting, tell every connection to finish (a solution being stored completes), and
    /// wait for them.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.accept_loop.await;
    }
}

async fn accept_loop(
    listener: TcpListener,
    core: Arc<NodeCore>,
    key: AuthorityKey,
    limits: TpLimits,
    stats: Arc<TpStats>,
    mut stopping: watch::Receiver<bool>,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = stopping.changed() => break,
            // Reap finished connections so the count below is of open ones.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => {
                let (socket, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of descriptors and the like: wait rather than spin.
                        tracing::warn!("SV2 template provider: accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                while connections.try_join_next().is_some() {}
                if connections.len() >= limits.max_connections {
                    TpStats::bump(&stats.connections_refused);
                    tracing::warn!("SV2 template provider: refused {peer}: {} connections open", limits.max_connections);
                    drop(socket);
                    continue;
                }
                let responder = match key.responder(limits.cert_validity) {
                    Ok(r) => r,
                    Err(e) => {
                        tracing::error!("SV2 template provider: cannot make a Noise responder: {e:?}");
                        continue;
                    }
                };
                connections.spawn(connection(
                    socket,
                    peer,
                    responder,
                    Arc::clone(&core),
                    limits,
                    Arc::clone(&stats),
                    stopping.clone(),
                ));
            }
        }
    }
    drop(listener);
    let wait_all = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(limits.shutdown_grace, wait_all)
        .await
        .is_err()
    {
        connections.shutdown().await;
    }
}

/// One client: handshake, then the session until either side ends it or the provider stops.
async fn connection(
    socket: TcpStream,
    peer: SocketAddr,
    responder: Box<noise_sv2::Responder>,
    core: Arc<NodeCore>,
    limits: TpLimits,
    stats: Arc<TpStats>,
    stopping: watch::Receiver<bool>,
) {
    let _ = socket.set_nodelay(true);
    let (reader, writer) = match noise::accept(
        socket,
        responder,
        limits.handshake_timeout,
        limits.max_frame,
    )
    .await
    {
        Ok(halves) => halves,
        Err(e) => {
            TpStats::bump(&stats.protocol_errors);
            tracing::info!("SV2 template provider: {peer}: handshake failed: {e}");
            return;
        }
    };
    TpStats::bump(&stats.connections);
    tracing::info!("SV2 template provider: {peer} connected (Noise handshake done)");
    let (frames_tx, frames) = mpsc::channel(INBOUND_QUEUE);
    // The reader owns the read half in a task of its own, because a read cut short loses bytes:
    // the session never cancels a read, it stops the task when the connection ends.
    let read_task = tokio::spawn(read_frames(reader, frames_tx));
    let why = serve(writer, frames, peer, &core, &limits, &stats, stopping).await;
    read_task.abort();
    tracing::info!("SV2 template provider: {peer} disconnected: {why}");
}

async fn read_frames<R: tokio::io::AsyncRead + Unpin>(
    mut reader: NoiseReader<R>,
    frames: mpsc::Sender<Result<Frame, NoiseError>>,
) {
    loop {
        let frame = reader.read_frame().await;
        let failed = frame.is_err();
        if frames.send(frame).await.is_err() || failed {
            return;
        }
    }
}

/// The session loop; returns why it ended.
async fn serve<W: tokio::io::AsyncWrite + Unpin>(
    mut writer: NoiseWriter<W>,
    mut frames: mpsc::Receiver<Result<Frame, NoiseError>>,
    peer: SocketAddr,
    core: &Arc<NodeCore>,
    limits: &TpLimits,
    stats: &TpStats,
    mut stopping: watch::Receiver<bool>,
) -> String {
    let mut session = Session::new();
    let mut refusals = 0u32;
    let mut tips = core.subscribe();
    let setup_deadline = tokio::time::Instant::now() + limits.setup_timeout;
    loop {
        let steps = tokio::select! {
            _ = stopping.changed() => return "the template provider is stopping".into(),
            // Until templates flow a client holds a connection slot for nothing.
            _ = tokio::time::sleep_until(setup_deadline), if !session.serving() => {
                TpStats::bump(&stats.protocol_errors);
                return format!("no SetupConnection and CoinbaseOutputConstraints within {:?}", limits.setup_timeout);
            }
            changed = tips.changed() => {
                if changed.is_err() {
                    return "the node core stopped".into();
                }
                if !session.serving() {
                    continue;
                }
                vec![Step::FetchTemplate]
            }
            frame = frames.recv() => match frame {
                None => return "reader ended".into(),
                Some(Err(NoiseError::Closed)) => return "closed by the client".into(),
                Some(Err(e)) => {
                    TpStats::bump(&stats.protocol_errors);
                    return e.to_string();
                }
                Some(Ok(mut frame)) => {
                    if frame.extension != 0 {
                        // Extensions are negotiated; none is, so any is ignored (SV2 spec 3.4).
                        TpStats::bump(&stats.messages_refused);
                        continue;
                    }
                    match frame.parse() {
                        Ok(message) => session.on_message(message),
                        Err(e) => {
                            TpStats::bump(&stats.messages_refused);
                            refusals += 1;
                            if refusals <= REFUSALS_LOGGED {
                                tracing::warn!("SV2 template provider: {peer}: message type {:#04x} does not parse ({e:?}); ignored", frame.msg_type);
                            }
                            continue;
                        }
                    }
                }
            },
        };
        let context = StepContext {
            peer,
            core,
            stats,
            refusals: &mut refusals,
        };
        if let Err(why) = run_steps(steps, &mut session, &mut writer, context).await {
            return why;
        }
    }
}

/// What carrying out steps needs besides the session and the writer.
struct StepContext<'a> {
    peer: SocketAddr,
    core: &'a Arc<NodeCore>,
    stats: &'a TpStats,
    /// Refusals so far on this connection (only the first [`REFUSALS_LOGGED`] are logged).
    refusals: &'a mut u32,
}

/// Carry out a session's steps, and those they lead to; an error ends the connection.
async fn run_steps<W: tokio::io::AsyncWrite + Unpin>(
    steps: Vec<Step>,
    session: &mut Session,
    writer: &mut NoiseWriter<W>,
    cx: StepContext<'_>,
) -> Result<(), String> {
    let StepContext {
        peer,
        core,
        stats,
        refusals,
    } = cx;
    let mut queue: std::collections::VecDeque<Step> = steps.into();
    while let Some(step) = queue.pop_front() {
        match step {
            Step::Send(message) => {
                if matches!(
                    message,
                    parsers_sv2::AnyMessageOwned::TemplateDistribution(
                        parsers_sv2::TemplateDistributionOwned::NewTemplate(_)
                    )
                ) {
                    TpStats::bump(&stats.templates_sent);
                }
                writer.send(message).await.map_err(|e| e.to_string())?;
            }
            Step::FetchTemplate => {
                let c = Arc::clone(core);
                let template = tokio::task::spawn_blocking(move || c.template())
                    .await
                    .map_err(|e| format!("internal error: {e}"))?;
                let more = session
                    .on_template(Arc::new(template))
                    .map_err(|e| e.to_string())?;
                queue.extend(more);
            }
            Step::Submit { template_id, block } => {
                let c = Arc::clone(core);
                let (result, block) =
                    tokio::task::spawn_blocking(move || (c.submit(&block), block))
                        .await
                        .map_err(|e| format!("internal error: {e}"))?;
                match result {
                    Ok(accepted) => {
                        TpStats::bump(&stats.blocks_accepted);
                        tracing::info!(
                            "block {} accepted at height {} from SV2 SubmitSolution (template {template_id}, {peer})",
                            accepted.hash,
                            accepted.height
                        );
                    }
                    Err(rejected) if matches!(rejected.reason, RejectReason::StoreFailed(_)) => {
                        // Valid, but the disk refused it, and the client cannot be asked to send
                        // it again: write it out so it is not lost (the chain is unchanged).
                        TpStats::bump(&stats.solutions_refused);
                        write_out_block(&unsubmitted_dir(core), &block, &rejected);
                    }
                    Err(rejected) => {
                        TpStats::bump(&stats.solutions_refused);
                        *refusals += 1;
                        if *refusals <= REFUSALS_LOGGED {
                            tracing::warn!(
                                "SV2 SubmitSolution (template {template_id}, {peer}): {rejected}; the chain is unchanged"
                            );
                        }
                    }
                }
            }
            Step::Refused(refusal) => {
                match refusal {
                    session::Refusal::UnknownTemplate(_) | session::Refusal::BadSolution { .. } => {
                        TpStats::bump(&stats.solutions_refused)
                    }
                    _ => TpStats::bump(&stats.messages_refused),
                }
                *refusals += 1;
                if *refusals <= REFUSALS_LOGGED {
                    tracing::warn!("SV2 template provider: {peer}: {refusal}");
                }
            }
            Step::Close(why) => {
                TpStats::bump(&stats.protocol_errors);
                let _ = writer.shutdown().await;
                return Err(why);
            }
        }
    }
    Ok(())
}

/// Where a block the store refused is written: `unsubmitted-blocks` in the data directory (the
/// chain directory's parent, see [`super::datadir::chain_dir`]), beside the miner's.
fn unsubmitted_dir(core: &NodeCore) -> PathBuf {
    let chain = core.dir();
    chain
        .parent()
        .unwrap_or(&chain)
        .join(super::datadir::UNSUBMITTED_BLOCKS)
}

/// Log a valid block the chain could not store, whole, and save it to
/// `dir/<height>-<hash>.hex` so it can be submitted again (`submitblock`); the hex is in the log
/// whether or not the file could be written.
pub fn write_out_block(dir: &Path, block: &Block, rejected: &BlockRejected) {
    let hex = bitcoin::consensus::encode::serialize_hex(block);
    let height = block.bip34_block_height().unwrap_or(0);
    let path = dir.join(format!("{height}-{}.hex", rejected.hash));
    let saved =
        std::fs::create_dir_all(dir).and_then(|()| std::fs::write(&path, format!("{hex}\n")));
    match saved {
        Ok(()) => tracing::error!(
            "SV2 SubmitSolution: {rejected}; the block is saved to {} (submit it again with submitblock): {hex}",
            path.display()
        ),
        Err(e) => tracing::error!(
            "SV2 SubmitSolution: {rejected}; the block could not be saved to {} either ({e}); submit it again by hand: {hex}",
            path.display()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::validate::StoreFault;

    #[test]
    fn a_block_the_store_refused_is_written_out() {
        let dir = std::env::temp_dir().join(format!("wgminer-sv2-out-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let block = bitcoin::constants::genesis_block(bitcoin::Network::Regtest);
        let rejected = BlockRejected {
            hash: block.block_hash(),
            reason: RejectReason::StoreFailed(StoreFault {
                disk_full: true,
                file: dir.join("chain.redb"),
                why: "disk full".into(),
            }),
        };
        write_out_block(&dir, &block, &rejected);
        let file = dir.join(format!("0-{}.hex", block.block_hash()));
        let hex = std::fs::read_to_string(&file).expect("written out");
        assert_eq!(
            hex.trim(),
            bitcoin::consensus::encode::serialize_hex(&block)
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
