//! HTTP for the node client, the embedded node's JSON-RPC and the monitoring API, on hyper.
//! [`server`] is the accept loop both servers share, with its limits (connections, header and
//! body timeouts, body sizes, a bounded graceful shutdown); [`client`] is the one-request-per-
//! connection POST that bitcoind's RPC server expects. What is left here are the small
//! credential helpers both sides use.

pub mod client;
pub mod server;

use base64::Engine as _;

pub use client::{post, HttpError, HttpReply};
pub use server::{read_body, reply, serve_stream, BodyError, Limits, Reply, Server, Stopping};

/// The value of a `Basic` Authorization header.
pub fn basic_auth_header(user: &str, password: &str) -> String {
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {token}")
}

/// Compare secrets without an early exit that would leak how many bytes matched.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The credentials of an Authorization header value in `scheme`. The scheme is matched without
/// regard to case (RFC 9110 §11.1: `bearer` and `BASIC` are the same schemes).
pub fn credentials<'a>(authorization: &'a str, scheme: &str) -> Option<&'a str> {
    let (given, rest) = authorization.trim().split_once(' ')?;
    given
        .eq_ignore_ascii_case(scheme)
        .then_some(rest.trim())
        .filter(|c| !c.is_empty())
}

/// The user and password of a request's `Basic` Authorization header.
pub fn basic_auth(headers: &http::HeaderMap) -> Option<(String, String)> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let token = credentials(value, "basic")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(token)
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, pass) = text.split_once(':')?;
    Some((user.to_owned(), pass.to_owned()))
}

/// The token of a request's `Bearer` Authorization header (RFC 6750).
pub fn bearer_token(headers: &http::HeaderMap) -> Option<&str> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    credentials(value, "bearer")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(authorization: &str) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        h.insert(
            http::header::AUTHORIZATION,
            http::HeaderValue::from_str(authorization).unwrap(),
        );
        h
    }

    #[test]
    fn basic_auth_round_trips_in_any_scheme_case() {
        let value = basic_auth_header("__cookie__", "a:b");
        let want = Some(("__cookie__".to_owned(), "a:b".to_owned()));
        assert_eq!(basic_auth(&headers(&value)), want);
        let lower = value.replacen("Basic", "basic", 1);
        assert_eq!(basic_auth(&headers(&lower)), want);
        let upper = value.replacen("Basic", "BASIC", 1);
        assert_eq!(basic_auth(&headers(&upper)), want);
        assert_eq!(basic_auth(&headers("Basic !!!")), None);
        assert_eq!(basic_auth(&headers("Bearer x")), None);
    }

    /// The old API matched the literal prefix "Bearer ", so `bearer TOKEN` was refused.
    #[test]
    fn bearer_scheme_is_case_insensitive() {
        for v in ["Bearer s3cret", "bearer s3cret", "BEARER  s3cret "] {
            assert_eq!(bearer_token(&headers(v)), Some("s3cret"), "{v}");
        }
        for v in ["Basic s3cret", "Bearers3cret", "Bearer", "Bearer  "] {
            assert_eq!(bearer_token(&headers(v)), None, "{v}");
        }
    }

    #[test]
    fn constant_time_eq_compares() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
