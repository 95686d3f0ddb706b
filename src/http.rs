//! Just enough HTTP/1.1 for JSON-RPC and the monitoring API: a client that POSTs one request per
//! connection (what bitcoind's RPC server expects) and a server side that reads one request and
//! writes one response. Every size is bounded, so a hostile or broken peer costs at most one buffer.

use std::time::Duration;

use base64::Engine as _;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};

/// The largest head (request or status line plus headers) accepted.
const MAX_HEAD: usize = 64 * 1024;

/// The largest body accepted: a full 4 MB-weight block as hex inside JSON, with room to spare.
pub const MAX_BODY: usize = 64 * 1024 * 1024;

/// Why an HTTP exchange failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    #[error("malformed HTTP: {0}")]
    Malformed(String),
    #[error("HTTP message larger than {0} bytes")]
    TooLarge(usize),
}

/// A parsed message: the first line's parts, the headers and the body.
#[derive(Clone, Debug, Default)]
pub struct Message {
    /// Request: method, path, version. Response: version, status code, reason.
    pub start: Vec<String>,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Message {
    /// A header's value, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// A response's status code.
    pub fn status(&self) -> Option<u16> {
        self.start.get(1).and_then(|s| s.parse().ok())
    }

    /// The user and password of a `Basic` Authorization header.
    pub fn basic_auth(&self) -> Option<(String, String)> {
        let value = self.header("authorization")?;
        let (scheme, token) = value.split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("basic") {
            return None;
        }
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(token.trim())
            .ok()?;
        let text = String::from_utf8(decoded).ok()?;
        let (user, pass) = text.split_once(':')?;
        Some((user.to_owned(), pass.to_owned()))
    }
}

/// The value of a `Basic` Authorization header.
pub fn basic_auth_header(user: &str, password: &str) -> String {
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {token}")
}

/// Compare secrets without an early exit that would leak how many bytes matched.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Read one message (request or response): head, then a body by Content-Length or chunked
/// encoding; a response with neither is read to the end of the connection.
pub async fn read_message<R: tokio::io::AsyncRead + Unpin>(
    reader: &mut BufReader<R>,
    is_response: bool,
) -> Result<Message, HttpError> {
    let mut msg = Message::default();
    let mut head = 0usize;
    let mut line = String::new();
    loop {
        line.clear();
        let n = (&mut *reader)
            .take((MAX_HEAD - head + 1) as u64)
            .read_line(&mut line)
            .await?;
        if n == 0 {
            return Err(HttpError::Malformed(if head == 0 {
                "connection closed before any response".into()
            } else {
                "connection closed inside the headers".into()
            }));
        }
        head += n;
        if head > MAX_HEAD {
            return Err(HttpError::TooLarge(MAX_HEAD));
        }
        let text = line.trim_end_matches(['\r', '\n']);
        if msg.start.is_empty() {
            msg.start = text.splitn(3, ' ').map(str::to_owned).collect();
            if msg.start.len() < 2 {
                return Err(HttpError::Malformed(format!("bad first line {text:?}")));
            }
            continue;
        }
        if text.is_empty() {
            break;
        }
        let (k, v) = text
            .split_once(':')
            .ok_or_else(|| HttpError::Malformed(format!("bad header line {text:?}")))?;
        msg.headers.push((k.trim().to_owned(), v.trim().to_owned()));
    }
    let chunked = msg
        .header("transfer-encoding")
        .is_some_and(|t| t.eq_ignore_ascii_case("chunked"));
    if chunked {
        msg.body = read_chunked(reader).await?;
    } else if let Some(len) = msg.header("content-length") {
        // Digits only: Rust's parser would also take "+5", which HTTP does not allow.
        let len: usize = Some(len)
            .filter(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|l| l.parse().ok())
            .ok_or_else(|| HttpError::Malformed(format!("bad Content-Length {len:?}")))?;
        if len > MAX_BODY {
            return Err(HttpError::TooLarge(MAX_BODY));
        }
        msg.body = vec![0; len];
        reader.read_exact(&mut msg.body).await?;
    } else if is_response {
        (&mut *reader)
            .take(MAX_BODY as u64 + 1)
            .read_to_end(&mut msg.body)
            .await?;
        if msg.body.len() > MAX_BODY {
            return Err(HttpError::TooLarge(MAX_BODY));
        }
    }
    Ok(msg)
}

async fn read_chunked<R: tokio::io::AsyncRead + Unpin>(
    reader: &mut BufReader<R>,
) -> Result<Vec<u8>, HttpError> {
    let mut body = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        (&mut *reader).take(128).read_line(&mut line).await?;
        let size = line.trim().split(';').next().unwrap_or("");
        let size = Some(size)
            .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit()))
            .and_then(|s| usize::from_str_radix(s, 16).ok())
            .ok_or_else(|| HttpError::Malformed(format!("bad chunk size {size:?}")))?;
        // A peer's size may be anything up to usize::MAX: never add it unchecked.
        if body
            .len()
            .checked_add(size)
            .is_none_or(|total| total > MAX_BODY)
        {
            return Err(HttpError::TooLarge(MAX_BODY));
        }
        let start = body.len();
        body.resize(start + size, 0);
        reader.read_exact(&mut body[start..]).await?;
        line.clear();
        (&mut *reader).take(128).read_line(&mut line).await?; // CRLF after the chunk
        if size == 0 {
            return Ok(body);
        }
    }
}

/// Write a response and flush it; the connection closes afterwards.
pub async fn write_response<W: AsyncWrite + Unpin>(
    writer: &mut W,
    status: u16,
    reason: &str,
    content_type: &str,
    extra_headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in extra_headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    writer.write_all(head.as_bytes()).await?;
    writer.write_all(body).await?;
    writer.flush().await
}

/// POST `body` to `host:port` with the given Authorization header and read the response, all
/// within `timeout`.
pub async fn post(
    addr: &str,
    authorization: &str,
    body: &[u8],
    timeout: Duration,
) -> Result<Message, HttpError> {
    let exchange = async {
        let stream = tokio::net::TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let (read, mut write) = stream.into_split();
        let head = format!(
            "POST / HTTP/1.1\r\nHost: {addr}\r\nAuthorization: {authorization}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\nUser-Agent: wgminer/{}\r\n\r\n",
            body.len(),
            env!("CARGO_PKG_VERSION")
        );
        write.write_all(head.as_bytes()).await?;
        write.write_all(body).await?;
        write.flush().await?;
        let mut reader = BufReader::new(read);
        read_message(&mut reader, true).await
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| HttpError::Timeout(timeout))?
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn parse(raw: &[u8], is_response: bool) -> Result<Message, HttpError> {
        let mut r = BufReader::new(raw);
        read_message(&mut r, is_response).await
    }

    /// A chunk size near usize::MAX once overflowed `body.len() + size` and panicked the reader
    /// (the solo miner exited 101, losing the block it was submitting); a signed length was
    /// taken as a number.
    #[tokio::test]
    async fn hostile_lengths_are_refused_not_panicked_on() {
        let huge = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\nffffffffffffffff\r\nx\r\n0\r\n\r\n";
        assert!(matches!(
            parse(huge, true).await,
            Err(HttpError::TooLarge(_))
        ));
        for bad in ["+5", "-1", "5 5", "0x5", ""] {
            let raw = format!("POST / HTTP/1.1\r\nContent-Length: {bad}\r\n\r\nhello");
            assert!(
                matches!(
                    parse(raw.as_bytes(), false).await,
                    Err(HttpError::Malformed(_))
                ),
                "{bad:?}"
            );
        }
        for bad in ["+3", "-3", "zz", ""] {
            let raw = format!(
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n{bad}\r\nabc\r\n0\r\n\r\n"
            );
            assert!(
                matches!(
                    parse(raw.as_bytes(), true).await,
                    Err(HttpError::Malformed(_))
                ),
                "{bad:?}"
            );
        }
    }

    #[tokio::test]
    async fn reads_content_length_chunked_and_to_eof() {
        let m = parse(
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloEXTRA",
            true,
        )
        .await
        .unwrap();
        assert_eq!((m.status(), &m.body[..]), (Some(200), &b"hello"[..]));
        let m = parse(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
            true,
        )
        .await
        .unwrap();
        assert_eq!(&m.body[..], b"abcde");
        let m = parse(b"HTTP/1.0 401 Unauthorized\r\n\r\nno", true)
            .await
            .unwrap();
        assert_eq!((m.status(), &m.body[..]), (Some(401), &b"no"[..]));
    }

    #[tokio::test]
    async fn refuses_broken_and_oversized_messages() {
        assert!(matches!(
            parse(b"", true).await,
            Err(HttpError::Malformed(_))
        ));
        assert!(matches!(
            parse(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", true).await,
            Err(HttpError::Malformed(_))
        ));
        let big = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n",
            MAX_BODY + 1
        );
        assert!(matches!(
            parse(big.as_bytes(), true).await,
            Err(HttpError::TooLarge(_))
        ));
        let mut huge_head = b"POST / HTTP/1.1\r\nX: ".to_vec();
        huge_head.extend(std::iter::repeat_n(b'a', MAX_HEAD + 10));
        assert!(matches!(
            parse(&huge_head, false).await,
            Err(HttpError::TooLarge(_))
        ));
    }

    #[test]
    fn basic_auth_round_trips() {
        let m = Message {
            headers: vec![(
                "Authorization".into(),
                basic_auth_header("__cookie__", "a:b"),
            )],
            ..Message::default()
        };
        assert_eq!(
            m.basic_auth(),
            Some(("__cookie__".to_owned(), "a:b".to_owned()))
        );
    }
}
