//! The Stratum V1 connection: the one async part of the pool client. It owns the sockets and the
//! timers and drives a [`Session`] (the pure protocol state machine) with the lines it reads.
//!
//! What it adds to the session is staying up:
//! - connect to `stratum+tcp://host:port`, or over TLS (rustls, webpki roots) for
//!   `stratum+ssl://` and `stratum+tls://`; subscribe (resuming the last session id), configure
//!   (BIP310 version rolling), authorize; all of that is the session's, started on connect;
//! - keepalive: a pool that sends no line for [`ClientConfig::keepalive`] is taken for dead and
//!   the connection is dropped (a half-open TCP connection can otherwise stay "up" for hours);
//! - reconnect with exponential backoff capped at [`ClientConfig::backoff_max`] (15 s);
//! - one pool: failing over to another (and `switchpool`) is `crate::mining::failover`'s, the
//!   one place that handles V1 and V2 pools alike; it runs a client per pool;
//! - shares handed in while the connection is down are queued by the session and sent after the
//!   reconnect if their job is still live;
//! - every share handed in is accounted for: the session's share events (held, sent, stale,
//!   answered, unanswered) are forwarded as they happen, and at exit the shares still held are
//!   reported stale;
//! - reads never wait on shares: each turn of the connection loop takes at most
//!   [`SHARE_BATCH`] shares from the channel and writes them, and the socket is polled before
//!   the channel, so a flood of shares (a pool at a tiny difficulty) cannot hide a new job;
//! - a line over the limit (see [`LineDecoder`]) drops the connection without buffering it;
//! - every pool line the session refuses is logged at warn level (the default) with what was
//!   wrong and what was kept, at most one line per kind per 10 s with a count of the rest
//!   ([`RefusalLog`]), so a pool flooding bad lines cannot flood the log.
//!
//! The work manager calls [`run`] in a task with a channel of [`Share`]s in and one of
//! [`ClientEvent`]s out (new jobs, share results), and a shutdown future.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TryRecvError;
use tokio::time::{sleep_until, timeout, Instant};
use tokio_rustls::rustls;

use super::codec::{CodecError, LineDecoder};
use super::message::MessageError;
use super::pool::Retry;
use super::refusal::{Refusal, RefusalLog};
use super::session::{unreadable, Event, Session, SessionError};
use crate::work::Share;

pub use super::pool::{ClientConfig, PoolConfig, PoolUrl, PoolUrlError};

/// The longest pause a `client.reconnect` may impose before we reconnect.
const MAX_REDIRECT_WAIT: Duration = Duration::from_secs(60);

/// A connection that lasted this long ends a run of `client.reconnect` requests.
const REDIRECT_RESET: Duration = Duration::from_secs(60);

/// The least we wait before the `n`th `client.reconnect` in a row: none for the first (a pool
/// restarting for maintenance), then 1, 2, 4 … s up to [`MAX_REDIRECT_WAIT`], so a pool that asks
/// again at once on every connection is not reconnected to hundreds of times a second.
fn redirect_floor(n: u32) -> Duration {
    match n {
        0 | 1 => Duration::ZERO,
        n => Duration::from_secs(1u64 << (n - 2).min(6)).min(MAX_REDIRECT_WAIT),
    }
}

/// Shares taken from the channel per turn of the connection loop at most. The turn then writes
/// them and polls the socket, so shares keep going out while the pool streams lines, and lines
/// keep being read while shares pour in.
pub const SHARE_BATCH: usize = 64;

/// Why the shares still held at exit were not sent.
const WHY_NO_CONNECTION_AT_EXIT: &str = "not sent: no connection at exit";

/// Why the client cannot start. Once running, connection trouble is reported as events and
/// retried, never returned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    #[error("tls setup: {0}")]
    Tls(String),
}

/// What the client tells the work manager.
#[derive(Clone, Debug)]
pub enum ClientEvent {
    /// A connection is up (the handshake follows as [`Event`]s).
    Connected { url: PoolUrl },
    /// A connection attempt failed or a connection ended.
    Disconnected { reason: String },
    /// Everything the session reports: `NewJob`, share fates, difficulty, messages. Every share
    /// handed in is reported as the session's [`Event`] docs describe (a share sent gets no
    /// event until it is answered). At exit, shares still held (not connected, or not yet
    /// authorized) come back as [`Event::ShareStale`] ("not sent: no connection at exit");
    /// shares written and not answered by then get no event: they are unanswered.
    Stratum(Event),
}

/// Run the client until `shutdown` completes, the share sender is dropped or the event receiver
/// is dropped. On shutdown the share channel is closed, and the shares already in it are written
/// to the pool before returning when the connection is up (else reported stale, see
/// [`ClientEvent::Stratum`]); keep receiving events until `run` returns.
pub async fn run(
    config: ClientConfig,
    events: mpsc::Sender<ClientEvent>,
    shares: mpsc::Receiver<Share>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ClientError> {
    let tls = if config.pool.url.tls {
        Some(tls_connector(&config.extra_tls_roots).map_err(ClientError::Tls)?)
    } else {
        None
    };
    let session = Session::new(config.session_config());
    let mut client = Client {
        config,
        session,
        events,
        shares,
        shutdown: Box::pin(shutdown),
        tls,
        refusals: RefusalLog::new(),
    };
    client.run().await;
    Ok(())
}

/// Why a step of the loop ended.
enum Flow {
    /// Shutdown, or the manager went away: stop.
    Stop,
    Continue,
}

/// Why a connection ended.
enum ConnEnd {
    Stop,
    /// Lost or failed; `healthy`: it had been authorized.
    Lost {
        reason: String,
        healthy: bool,
    },
    /// The pool asked us to reconnect (perhaps to another port), after `wait`.
    Redirect {
        target: Option<PoolUrl>,
        wait: Duration,
    },
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

struct Client<'a> {
    config: ClientConfig,
    session: Session,
    events: mpsc::Sender<ClientEvent>,
    shares: mpsc::Receiver<Share>,
    shutdown: Pin<Box<dyn Future<Output = ()> + Send + 'a>>,
    /// Built once, when some pool uses TLS.
    tls: Option<tokio_rustls::TlsConnector>,
    /// What the pools sent that was refused, told at a bounded rate.
    refusals: RefusalLog,
}

impl Client<'_> {
    async fn run(&mut self) {
        self.run_pools().await;
        self.finish().await;
    }

    /// At exit, account for every share handed in: nothing more may come (the channel is
    /// closed), what is in the channel goes to the session, and what the session still holds had
    /// no connection to go out on. Shares written and not answered need no event.
    async fn finish(&mut self) {
        self.shares.close();
        // After a connection's own stop (see `stop`) the channel is empty already; otherwise
        // the session is disconnected, so these are held (or stale), never sent unwritten (or
        // the manager is gone, and nobody is listening).
        while let Ok(share) = self.shares.try_recv() {
            self.session.submit(share);
        }
        self.session.abandon_queued(WHY_NO_CONNECTION_AT_EXIT);
        // False only when the manager is gone, and then there is nobody left to tell.
        let _ = self.forward().await;
    }

    /// Connect, run and reconnect until told to stop.
    async fn run_pools(&mut self) {
        let mut retry = Retry::default();
        let mut redirect: Option<PoolUrl> = None;
        // `client.reconnect` requests in a row (see `redirect_floor`).
        let mut redirects = 0u32;
        loop {
            let url = redirect
                .take()
                .unwrap_or_else(|| self.config.pool.url.clone());
            let connected = tokio::select! {
                biased;
                _ = &mut self.shutdown => return,
                r = connect(&url, self.tls.as_ref(), self.config.connect_timeout) => r,
            };
            let end = match connected {
                Ok(stream) => {
                    if !self.emit(ClientEvent::Connected { url }).await {
                        return;
                    }
                    let opened = Instant::now();
                    let end = self.connection(stream).await;
                    if opened.elapsed() >= REDIRECT_RESET {
                        redirects = 0;
                    }
                    end
                }
                Err(reason) => ConnEnd::Lost {
                    reason,
                    healthy: false,
                },
            };
            let delay = match end {
                // The session keeps its state: shares written and not answered stay in flight
                // (they are unanswered, not held), and `finish` reports the held ones.
                ConnEnd::Stop => return,
                ConnEnd::Redirect { target, wait } => {
                    if !self.disconnected("pool asked to reconnect").await {
                        return;
                    }
                    redirect = target;
                    redirects += 1;
                    let floor = redirect_floor(redirects);
                    if wait < floor {
                        tracing::warn!(
                            pool = %self.config.pool.url,
                            "pool asked to reconnect {redirects} times in a row; waiting {} s",
                            floor.as_secs()
                        );
                    }
                    // A pool may ask for a pause (maintenance), but not park the miner for long.
                    wait.max(floor).min(MAX_REDIRECT_WAIT)
                }
                ConnEnd::Lost { reason, healthy } => {
                    tracing::warn!(pool = %self.config.pool.url, "{reason}");
                    if !self.disconnected(&reason).await {
                        return;
                    }
                    retry.after_loss(healthy, &self.config)
                }
            };
            if let Flow::Stop = self.wait(delay).await {
                return;
            }
        }
    }

    /// A connection ended (or was never made): say so, then tell the session, whose shares
    /// written but not answered go back to its queue (reported as held).
    async fn disconnected(&mut self, reason: &str) -> bool {
        let event = ClientEvent::Disconnected {
            reason: reason.to_owned(),
        };
        if !self.emit(event).await {
            return false;
        }
        self.session.connection_lost();
        self.forward().await
    }

    /// Send the session's buffered events (share fates from `submit`, `connection_lost`,
    /// `reset`); false when the manager is gone.
    async fn forward(&mut self) -> bool {
        for event in self.session.take_events() {
            if !self.emit(ClientEvent::Stratum(event)).await {
                return false;
            }
        }
        true
    }

    /// Send an event; false when the manager is gone.
    async fn emit(&mut self, event: ClientEvent) -> bool {
        self.events.send(event).await.is_ok()
    }

    /// A share from the manager, to the session: sent (written with the next lines), held or
    /// stale, the last two reported at once.
    async fn hand_in(&mut self, share: Share) -> bool {
        self.session.submit(share);
        self.forward().await
    }

    /// Shutdown with the connection up: hand the pool every share the manager already gave us
    /// (the channel is closed first, so that is a bounded number). A share the session still
    /// holds (not authorized yet) is reported by `finish`.
    async fn stop(&mut self, stream: &mut Box<dyn Io>) -> ConnEnd {
        self.shares.close();
        while let Ok(share) = self.shares.try_recv() {
            self.session.submit(share);
        }
        let lines = self.session.take_outgoing();
        // A failed write changes nothing now: those shares are in flight, and unanswered.
        let _ = self.write_lines(stream, &lines).await;
        ConnEnd::Stop
    }

    /// Sleep while still taking shares in (they queue in the session).
    async fn wait(&mut self, delay: Duration) -> Flow {
        let deadline = Instant::now() + delay;
        loop {
            tokio::select! {
                biased;
                _ = &mut self.shutdown => return Flow::Stop,
                _ = sleep_until(deadline) => return Flow::Continue,
                share = self.shares.recv() => match share {
                    Some(share) => {
                        if !self.hand_in(share).await {
                            return Flow::Stop;
                        }
                    }
                    None => return Flow::Stop,
                },
            }
        }
    }

    /// Drive one connection until it ends.
    async fn connection(&mut self, mut stream: Box<dyn Io>) -> ConnEnd {
        self.session.connection_opened();
        let mut decoder = LineDecoder::new(self.config.max_line_len);
        let mut buf = vec![0u8; 16 * 1024];
        let mut last_line = Instant::now();
        let mut healthy = false;
        let lost = |reason: String, healthy: bool| ConnEnd::Lost { reason, healthy };
        loop {
            // The shares already waiting, a bounded batch: a pool streaming lines must not delay
            // a share, and a flood of shares must not delay reading (see below).
            for _ in 0..SHARE_BATCH {
                match self.shares.try_recv() {
                    Ok(share) => {
                        if !self.hand_in(share).await {
                            return ConnEnd::Stop;
                        }
                    }
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => return self.stop(&mut stream).await,
                }
            }
            let lines = self.session.take_outgoing();
            if let Err(e) = self.write_lines(&mut stream, &lines).await {
                return lost(e, healthy);
            }
            let keepalive_deadline = last_line + self.config.keepalive;
            tokio::select! {
                biased;
                _ = &mut self.shutdown => return self.stop(&mut stream).await,
                // Reads before shares: with shares always waiting, a share branch polled first
                // would win every turn and a new job would never be read. Shares still move:
                // the batch above takes them every turn.
                read = stream.read(&mut buf) => {
                    let n = match read {
                        Ok(0) => return lost("pool closed the connection".into(), healthy),
                        Ok(n) => n,
                        Err(e) => return lost(format!("read: {e}"), healthy),
                    };
                    decoder.extend(&buf[..n]);
                    loop {
                        let line = match decoder.next_line() {
                            Ok(Some(line)) => line,
                            Ok(None) => break,
                            Err(e @ CodecError::LineTooLong { .. }) => {
                                return lost(e.to_string(), healthy);
                            }
                            Err(_) => {
                                // Not UTF-8 (the only error that keeps the connection).
                                last_line = Instant::now();
                                let cause = SessionError::Message(MessageError::NotUtf8);
                                self.tell(&unreadable(b"", cause));
                                continue;
                            }
                        };
                        last_line = Instant::now();
                        let events = match self.session.handle_line(line.as_bytes()) {
                            Ok(events) => events,
                            Err(refused) => {
                                self.tell(&refused);
                                continue;
                            }
                        };
                        // Every event of the line goes out (share fates among them) before an
                        // event that ends the connection takes effect.
                        let mut end = None;
                        for event in events {
                            let ends = match &event {
                                Event::Authorized(true) => {
                                    healthy = true;
                                    None
                                }
                                Event::Authorized(false) => {
                                    // The pool's own words say which: unknown user, bad
                                    // address, wrong password.
                                    let why = match self.session.authorize_refusal() {
                                        Some(said) => format!(
                                            "authorization refused: {}",
                                            crate::text::printable(said)
                                        ),
                                        None => "authorization refused".into(),
                                    };
                                    Some(lost(why, false))
                                }
                                Event::SubscribeFailed { reason } => {
                                    Some(lost(format!("subscribe failed: {reason}"), false))
                                }
                                Event::Reconnect { host, port, wait } => Some(ConnEnd::Redirect {
                                    target: self.redirect_target(host.as_deref(), *port),
                                    wait: *wait,
                                }),
                                Event::ShowMessage(m) => {
                                    tracing::info!("pool says: {}", crate::text::printable(m));
                                    None
                                }
                                // Told here, and nothing for the work manager.
                                Event::Refused(refused) => {
                                    self.tell(refused);
                                    continue;
                                }
                                _ => None,
                            };
                            end = end.or(ends);
                            if !self.emit(ClientEvent::Stratum(event)).await {
                                return ConnEnd::Stop;
                            }
                        }
                        if let Some(end) = end {
                            // Answers owed to the pool (e.g. get_version) still go out.
                            let lines = self.session.take_outgoing();
                            let _ = self.write_lines(&mut stream, &lines).await;
                            return end;
                        }
                    }
                    self.tell_hidden();
                }
                share = self.shares.recv() => match share {
                    Some(share) => {
                        if !self.hand_in(share).await {
                            return ConnEnd::Stop;
                        }
                    }
                    None => return self.stop(&mut stream).await,
                },
                _ = sleep_until(keepalive_deadline) => {
                    let secs = self.config.keepalive.as_secs_f64();
                    return lost(format!("no line from the pool for {secs} s"), healthy);
                }
            }
        }
    }

    /// Log a refused pool line at warn level, unless one of its kind was logged just now.
    fn tell(&mut self, refused: &Refusal) {
        if let Some(line) = self.refusals.admit(refused, Instant::now().into_std()) {
            tracing::warn!(pool = %self.config.pool.url, "{line}");
        }
    }

    /// Log the count of refusals not shown, for kinds whose interval is over.
    fn tell_hidden(&mut self) {
        for line in self.refusals.due(Instant::now().into_std()) {
            tracing::warn!(pool = %self.config.pool.url, "{line}");
        }
    }

    /// Where `client.reconnect` may send us. Only to the same host: a pool (or whoever
    /// took over its connection) must not steer the miner's hash rate elsewhere; cgminer keeps
    /// the same rule.
    fn redirect_target(&self, host: Option<&str>, port: Option<u16>) -> Option<PoolUrl> {
        let current = &self.config.pool.url;
        if let Some(h) = host {
            if !h.eq_ignore_ascii_case(&current.host) {
                tracing::warn!("pool asked to reconnect to {h}; reconnecting to {current} instead");
                return None;
            }
        }
        port.map(|port| PoolUrl {
            port,
            ..current.clone()
        })
    }

    async fn write_lines(
        &mut self,
        stream: &mut Box<dyn Io>,
        lines: &[String],
    ) -> Result<(), String> {
        if lines.is_empty() {
            return Ok(());
        }
        let write = async {
            for line in lines {
                stream.write_all(line.as_bytes()).await?;
            }
            stream.flush().await
        };
        // A pool that stops reading must not hold the miner forever.
        match timeout(self.config.keepalive, write).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(format!("write: {e}")),
            Err(_) => Err("write timed out".into()),
        }
    }
}

/// Open a connection (TCP, then TLS if the url asks for it).
async fn connect(
    url: &PoolUrl,
    tls: Option<&tokio_rustls::TlsConnector>,
    limit: Duration,
) -> Result<Box<dyn Io>, String> {
    let open = async {
        let tcp = TcpStream::connect((url.host.as_str(), url.port))
            .await
            .map_err(|e| format!("connect to {url}: {e}"))?;
        // Stratum lines are small and latency matters (a share delayed is a share staled).
        let _ = tcp.set_nodelay(true);
        if !url.tls {
            return Ok(Box::new(tcp) as Box<dyn Io>);
        }
        let server_name = rustls::pki_types::ServerName::try_from(url.host.clone())
            .map_err(|e| format!("tls server name {}: {e}", url.host))?;
        let connector = tls.ok_or_else(|| format!("{url}: no tls configuration"))?;
        let tls = connector
            .connect(server_name, tcp)
            .await
            .map_err(|e| format!("tls handshake with {url}: {e}"))?;
        Ok(Box::new(tls) as Box<dyn Io>)
    };
    match timeout(limit, open).await {
        Ok(r) => r,
        Err(_) => Err(format!("connect to {url}: timed out")),
    }
}

/// A TLS client trusting the Mozilla root set (webpki-roots) and `extra_roots`, with rustls'
/// ring provider.
fn tls_connector(extra_roots: &[Vec<u8>]) -> Result<tokio_rustls::TlsConnector, String> {
    let mut roots =
        rustls::RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    for der in extra_roots {
        roots
            .add(rustls::pki_types::CertificateDer::from(der.clone()))
            .map_err(|e| format!("extra root certificate: {e}"))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("tls setup: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_reconnect_requests_back_off() {
        let floors: Vec<u64> = (1..=10).map(|n| redirect_floor(n).as_secs()).collect();
        assert_eq!(floors, [0, 1, 2, 4, 8, 16, 32, 60, 60, 60]);
    }

    #[test]
    fn tls_config_builds() {
        assert!(tls_connector(&[]).is_ok());
        assert!(tls_connector(&[vec![1, 2, 3]]).is_err());
    }
}
