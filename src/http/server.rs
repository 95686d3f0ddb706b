//! The accept loop under the node's JSON-RPC and the monitoring API: hyper's HTTP/1.1 with a
//! limit on everything a peer can hold. A connection takes a slot from a semaphore before it is
//! accepted (when all are taken, new connections wait in the kernel's listen backlog until one
//! frees); the request head must arrive within a time limit; each whole connection has a hard
//! time cap; bodies are read by the route, after it has checked the credentials, through
//! [`read_body`] with its own size and time limits. One request per connection (no keep-alive):
//! an idle client cannot keep a slot.
//!
//! Shutdown is a signal into the loop and into each handler ([`Stopping`]): the listener closes,
//! idle connections close, requests in flight get [`Limits::shutdown_grace`] to finish, and
//! whatever is left then is aborted.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::{Body, Incoming};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;

/// What a handler answers with: the whole body in memory.
pub type Reply = Response<Full<Bytes>>;

/// The largest request head (request line and headers) a peer can send, and hyper's
/// per-connection read buffer: larger heads are answered 431 and the connection closed.
const MAX_HEAD: usize = 64 * 1024;

/// The limits of one server. The body size limit is each route's own, given to [`read_body`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Connections served at once. Further connections are not accepted until one ends: they
    /// wait in the listen backlog (the kernel's queue), they are not refused.
    pub max_connections: usize,
    /// Time from accepting a connection to having its whole request head.
    pub header_timeout: Duration,
    /// Time from the head to the whole body, for routes that read one (the handler passes it
    /// to [`read_body`]).
    pub body_timeout: Duration,
    /// Hard cap on one connection's life, head to last byte of the reply, whatever it does.
    pub connection_timeout: Duration,
    /// At shutdown, how long requests in flight may take to finish before they are cut.
    pub shutdown_grace: Duration,
}

/// Why a request body was not read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BodyError {
    #[error("the body is larger than {0} bytes")]
    TooLarge(usize),
    #[error("the body did not arrive within {0:?}")]
    Timeout(Duration),
    #[error("the body is malformed: {0}")]
    Malformed(String),
}

impl BodyError {
    /// The status to answer with.
    pub fn status(&self) -> StatusCode {
        match self {
            BodyError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            BodyError::Timeout(_) => StatusCode::REQUEST_TIMEOUT,
            BodyError::Malformed(_) => StatusCode::BAD_REQUEST,
        }
    }
}

/// Read a whole body of at most `limit` bytes within `timeout`. A declared Content-Length over
/// the limit is refused before a byte of the body is read; a chunked body is cut off by
/// [`Limited`] as soon as it passes the limit. Memory: at most `limit` plus one read buffer.
pub async fn read_body<B>(body: B, limit: usize, timeout: Duration) -> Result<Vec<u8>, BodyError>
where
    B: Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let declared = body.size_hint().lower();
    if declared > limit as u64 {
        return Err(BodyError::TooLarge(limit));
    }
    // `declared` is at most `limit` here: the buffer is allocated once for an honest sender.
    let mut out = Vec::with_capacity(usize::try_from(declared).unwrap_or(0));
    let mut body = std::pin::pin!(Limited::new(body, limit));
    let read = async {
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| {
                if e.is::<LengthLimitError>() {
                    BodyError::TooLarge(limit)
                } else {
                    BodyError::Malformed(e.to_string())
                }
            })?;
            if let Ok(data) = frame.into_data() {
                out.extend_from_slice(&data);
            }
        }
        Ok(())
    };
    tokio::time::timeout(timeout, read)
        .await
        .map_err(|_| BodyError::Timeout(timeout))??;
    Ok(out)
}

/// A reply with a body, its type and extra headers (hyper adds Content-Length and the reason
/// phrase, and sends no body for HEAD).
pub fn reply(
    status: StatusCode,
    content_type: &'static str,
    extra: &[(http::header::HeaderName, &'static str)],
    body: impl Into<Bytes>,
) -> Reply {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    let headers = r.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static(content_type),
    );
    for (name, value) in extra {
        headers.insert(name.clone(), HeaderValue::from_static(value));
    }
    r
}

/// Given to every request: resolves once the server is stopping, so a handler that waits
/// (a longpoll) can answer at once instead of holding the shutdown up.
#[derive(Clone, Debug)]
pub struct Stopping(watch::Receiver<bool>);

impl Stopping {
    /// A signal that never fires: for handlers driven without a server (fuzzing, tests).
    pub fn never() -> Stopping {
        static NEVER: std::sync::OnceLock<watch::Sender<bool>> = std::sync::OnceLock::new();
        Stopping(NEVER.get_or_init(|| watch::channel(false).0).subscribe())
    }

    /// Wait until the server stops.
    pub async fn wait(mut self) {
        // An error means the server is gone: as good as stopping.
        let _ = self.0.wait_for(|s| *s).await;
    }
}

/// A running server; [`Self::stop`] stops it gracefully, dropping it aborts it.
pub struct Server {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Server {
    /// Serve `listener` with `handler` within `limits` until [`Self::stop`].
    pub fn serve<H, F>(listener: TcpListener, limits: Limits, handler: H) -> std::io::Result<Server>
    where
        H: Fn(Request<Incoming>, Stopping) -> F + Send + Sync + 'static,
        F: Future<Output = Reply> + Send + 'static,
    {
        let addr = listener.local_addr()?;
        let (stop, stopping) = watch::channel(false);
        let task = tokio::spawn(accept_loop(listener, limits, Arc::new(handler), stopping));
        Ok(Server {
            addr,
            stop,
            task: Some(task),
        })
    }

    /// Where it listens (the real port when bound to port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stop accepting, let requests in flight finish within the grace period, then cut the rest.
    pub async fn stop(mut self) {
        self.stop.send_replace(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            // Aborting the loop drops its JoinSet, which aborts every connection.
            task.abort();
        }
    }
}

async fn accept_loop<H, F>(
    listener: TcpListener,
    limits: Limits,
    handler: Arc<H>,
    mut stop: watch::Receiver<bool>,
) where
    H: Fn(Request<Incoming>, Stopping) -> F + Send + Sync + 'static,
    F: Future<Output = Reply> + Send + 'static,
{
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let mut connections = JoinSet::new();
    let http = http1(&limits);
    loop {
        let (slot, stream) = tokio::select! {
            _ = stop.wait_for(|s| *s) => break,
            // Reap finished connections so the set does not grow.
            Some(_) = connections.join_next() => continue,
            accepted = accept(&listener, &slots) => match accepted {
                Some(a) => a,
                None => continue,
            },
        };
        let _ = stream.set_nodelay(true);
        let handler = Arc::clone(&handler);
        let service = service(handler, stop.clone());
        let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        let cap = limits.connection_timeout;
        connections.spawn(async move {
            // A peer's broken HTTP ends its own connection and nothing else.
            let _ = tokio::time::timeout(cap, connection).await;
            drop(slot);
        });
    }
    drop(listener);
    // Idle connections close now; requests in flight finish within the grace period.
    let _ = tokio::time::timeout(limits.shutdown_grace, graceful.shutdown()).await;
    connections.shutdown().await;
}

/// hyper's HTTP/1.1 as every connection gets it.
fn http1(limits: &Limits) -> hyper::server::conn::http1::Builder {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        // One request per connection: an idle client cannot keep a slot.
        .keep_alive(false)
        // Naive clients (and old miners) look for `Content-Length`, not `content-length`.
        .title_case_headers(true)
        .max_header_size(MAX_HEAD)
        .max_buf_size(MAX_HEAD);
    http
}

/// The handler as a hyper service, each request given the stop signal.
fn service<H, F>(
    handler: Arc<H>,
    stop: watch::Receiver<bool>,
) -> impl hyper::service::Service<
    Request<Incoming>,
    Response = Reply,
    Error = Infallible,
    Future = impl Future<Output = Result<Reply, Infallible>> + Send,
> + Send
where
    H: Fn(Request<Incoming>, Stopping) -> F + Send + Sync + 'static,
    F: Future<Output = Reply> + Send + 'static,
{
    hyper::service::service_fn(move |request| {
        let reply = handler(request, Stopping(stop.clone()));
        async move { Ok::<_, Infallible>(reply.await) }
    })
}

/// Serve one connection over any byte stream exactly as the accept loop serves a TCP
/// connection (same HTTP settings, same time cap), never signalled to stop. For tests that
/// drive the server from memory (the HTTP fuzz test).
pub async fn serve_stream<IO, H, F>(io: IO, limits: Limits, handler: H)
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    H: Fn(Request<Incoming>, Stopping) -> F + Send + Sync + 'static,
    F: Future<Output = Reply> + Send + 'static,
{
    let (_never, stop) = watch::channel(false);
    let service = service(Arc::new(handler), stop);
    let connection = http1(&limits).serve_connection(TokioIo::new(io), service);
    let _ = tokio::time::timeout(limits.connection_timeout, connection).await;
}

/// A free slot, then a connection; `None` after a failed accept (out of file descriptors and
/// the like), once a short pause has passed so the loop does not spin.
async fn accept(
    listener: &TcpListener,
    slots: &Arc<Semaphore>,
) -> Option<(OwnedSemaphorePermit, TcpStream)> {
    let slot = Arc::clone(slots).acquire_owned().await.ok()?;
    match listener.accept().await {
        Ok((stream, _)) => Some((slot, stream)),
        Err(_) => {
            tokio::time::sleep(Duration::from_millis(100)).await;
            None
        }
    }
}
