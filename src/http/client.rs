//! The node client's HTTP: one POST per connection (what bitcoind's RPC server expects), on
//! hyper's HTTP/1.1 client connection. The reply may come with a Content-Length, chunked (as
//! bitcoind sends large replies) or delimited by the close; it is read up to a size limit, and
//! the whole exchange, connect to last byte, runs within one time limit. Dropping the future
//! closes the connection (how a longpoll is abandoned).

use std::time::Duration;

use bytes::Bytes;
use http::{header, Method, Request, StatusCode};
use http_body_util::Full;
use hyper_util::rt::TokioIo;

use super::server::{read_body, BodyError};

/// Why an HTTP exchange failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    #[error("HTTP: {0}")]
    Protocol(#[from] hyper::Error),
    #[error("malformed HTTP: {0}")]
    Malformed(String),
    #[error("HTTP reply larger than {0} bytes")]
    TooLarge(usize),
}

/// A reply's status and body.
#[derive(Clone, Debug)]
pub struct HttpReply {
    pub status: StatusCode,
    pub body: Vec<u8>,
}

/// POST `body` to `/` on `host:port` with the given Authorization header; read a reply of at
/// most `max_reply` bytes, all within `timeout`.
pub async fn post(
    addr: &str,
    authorization: &str,
    body: Vec<u8>,
    max_reply: usize,
    timeout: Duration,
) -> Result<HttpReply, HttpError> {
    let request = Request::builder()
        .method(Method::POST)
        .uri("/")
        .header(header::HOST, addr)
        .header(header::AUTHORIZATION, authorization)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CONNECTION, "close")
        .header(
            header::USER_AGENT,
            concat!("wgminer/", env!("CARGO_PKG_VERSION")),
        )
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| HttpError::Malformed(e.to_string()))?;
    let exchange = async {
        let stream = tokio::net::TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        let call = async move {
            let response = sender.send_request(request).await?;
            let status = response.status();
            let body = read_body(response.into_body(), max_reply, timeout)
                .await
                .map_err(|e| match e {
                    BodyError::TooLarge(n) => HttpError::TooLarge(n),
                    e => HttpError::Malformed(e.to_string()),
                })?;
            Ok::<_, HttpError>(HttpReply { status, body })
        };
        // Drive the connection beside the call, in this future, so nothing outlives it. The
        // connection hands the body over before it ends, so once it has ended cleanly the call
        // finishes from what it already has.
        tokio::pin!(call);
        tokio::select! {
            reply = &mut call => reply,
            ended = connection => {
                ended?;
                call.await
            }
        }
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| HttpError::Timeout(timeout))?
}
