//! A bitcoind JSON-RPC client: one HTTP POST per call, Basic auth from `--rpc-user/--rpc-pass`
//! or from the node's cookie file (re-read on every call, since bitcoind writes a new cookie each
//! time it starts). Errors say which part failed: the address, the credentials (and which
//! kind), the HTTP layer, or the node's own RPC error.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{json, Value};

use crate::http;

/// How long an ordinary call may take.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// The largest reply read from the node. A getblocktemplate with a full mempool is a block's
/// transactions as hex (at most 8 MB: templates over 4 MB of transactions are refused anyway,
/// see `work::template`) plus their JSON; this bounds the memory a node's reply can take.
pub const MAX_REPLY: usize = 16 * 1024 * 1024;

/// How the client proves itself to the node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Auth {
    UserPass {
        user: String,
        password: String,
    },
    /// bitcoind's `.cookie` file: one line `__cookie__:<password>`.
    Cookie(PathBuf),
}

impl Auth {
    fn describe(&self) -> String {
        match self {
            Auth::UserPass { user, .. } => {
                format!("user/password (--rpc-user {user:?} and --rpc-pass)")
            }
            Auth::Cookie(p) => format!("cookie file {}", p.display()),
        }
    }

    fn header(&self) -> Result<String, RpcError> {
        match self {
            Auth::UserPass { user, password } => Ok(http::basic_auth_header(user, password)),
            Auth::Cookie(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| RpcError::Cookie {
                    path: path.clone(),
                    why: e.to_string(),
                })?;
                let line = text.lines().next().unwrap_or("").trim();
                let (user, password) = line.split_once(':').ok_or_else(|| RpcError::Cookie {
                    path: path.clone(),
                    why: "it does not hold user:password".into(),
                })?;
                Ok(http::basic_auth_header(user, password))
            }
        }
    }
}

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RpcError {
    #[error("node URL {url:?}: {why}")]
    BadUrl { url: String, why: String },
    #[error("cannot reach the node at {url}: {why} (is bitcoind running with -server, and is the RPC port right?)")]
    Unreachable { url: String, why: String },
    #[error("the node at {url} refused the {how}: check them against the node's rpcuser/rpcpassword or its current .cookie")]
    Unauthorized { url: String, how: String },
    #[error("cannot read cookie file {}: {why} (bitcoind writes it to its data directory while it runs; or use --rpc-user/--rpc-pass)", path.display())]
    Cookie { path: PathBuf, why: String },
    #[error("the node at {url} answered HTTP {status}: {body}")]
    Http {
        url: String,
        status: u16,
        body: String,
    },
    #[error("{method}: the node says: {message} (code {code})")]
    Rpc {
        method: String,
        code: i64,
        message: String,
    },
    #[error("{method}: unexpected answer from the node: {why}")]
    BadResponse { method: String, why: String },
}

impl RpcError {
    /// Whether trying again later may help (the node is down, starting or busy); wrong
    /// credentials or a wrong URL will not fix themselves.
    pub fn is_transient(&self) -> bool {
        match self {
            RpcError::Unreachable { .. } | RpcError::Http { .. } => true,
            // -28: warming up; -9: not connected; -10: initial block download.
            RpcError::Rpc { code, .. } => matches!(code, -28 | -9 | -10),
            _ => false,
        }
    }
}

/// A client for one node.
#[derive(Clone, Debug)]
pub struct RpcClient {
    /// `host:port` to connect to.
    addr: String,
    /// As the user wrote it, for messages.
    url: String,
    auth: Auth,
}

impl RpcClient {
    /// `url`: `http://host:port` (the path is ignored; bitcoind serves RPC at `/`).
    pub fn new(url: &str, auth: Auth) -> Result<Self, RpcError> {
        let bad = |why: &str| RpcError::BadUrl {
            url: url.to_owned(),
            why: why.to_owned(),
        };
        let rest = if let Some(r) = url.strip_prefix("http://") {
            r
        } else if url.starts_with("https://") {
            return Err(bad(
                "bitcoind's RPC has no TLS: use http:// (through an SSH tunnel when remote)",
            ));
        } else {
            return Err(bad("expected http://host:port"));
        };
        let authority = rest.split('/').next().unwrap_or("");
        let (host, port) = authority.rsplit_once(':').ok_or_else(|| {
            bad("no port: bitcoind listens on 8332 (mainnet), 18332 (testnet), 18443 (regtest)")
        })?;
        if host.is_empty() || port.parse::<u16>().map_or(true, |p| p == 0) {
            return Err(bad("expected http://host:port with a port from 1 to 65535"));
        }
        Ok(RpcClient {
            addr: authority.to_owned(),
            url: format!("http://{authority}"),
            auth,
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Call `method` with positional `params`; the result, or the node's error.
    pub async fn call(&self, method: &str, params: Value) -> Result<Value, RpcError> {
        self.call_timeout(method, params, CALL_TIMEOUT).await
    }

    /// [`Self::call`] with its own time limit (longpoll waits for minutes).
    pub async fn call_timeout(
        &self,
        method: &str,
        params: Value,
        timeout: Duration,
    ) -> Result<Value, RpcError> {
        let body = json!({"jsonrpc": "1.0", "id": "wgminer", "method": method, "params": params});
        let body = serde_json::to_vec(&body).expect("a JSON value serializes");
        let authorization = self.auth.header()?;
        let response = http::post(&self.addr, &authorization, body, MAX_REPLY, timeout)
            .await
            .map_err(|e| RpcError::Unreachable {
                url: self.url.clone(),
                why: e.to_string(),
            })?;
        let status = response.status.as_u16();
        if status == 401 || status == 403 {
            return Err(RpcError::Unauthorized {
                url: self.url.clone(),
                how: self.auth.describe(),
            });
        }
        // bitcoind answers RPC errors with HTTP 500 (or 404 for an unknown method) and a JSON
        // body: read the body first.
        let parsed: Option<Value> = serde_json::from_slice(&response.body).ok();
        let Some(reply) = parsed.filter(|v| v.is_object()) else {
            return Err(RpcError::Http {
                url: self.url.clone(),
                status,
                body: String::from_utf8_lossy(&response.body[..response.body.len().min(200)])
                    .trim()
                    .to_owned(),
            });
        };
        match reply.get("error") {
            Some(e) if !e.is_null() => Err(RpcError::Rpc {
                method: method.to_owned(),
                code: e.get("code").and_then(Value::as_i64).unwrap_or(0),
                message: e
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("(no message)")
                    .to_owned(),
            }),
            _ => reply
                .get("result")
                .cloned()
                .ok_or_else(|| RpcError::BadResponse {
                    method: method.to_owned(),
                    why: "neither result nor error".into(),
                }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked_with_a_reason() {
        let auth = Auth::Cookie("x".into());
        assert!(RpcClient::new("http://127.0.0.1:18443", auth.clone()).is_ok());
        assert_eq!(
            RpcClient::new("http://node:8332/wallet/x", auth.clone())
                .unwrap()
                .url(),
            "http://node:8332"
        );
        for bad in [
            "127.0.0.1:8332",
            "https://node:8332",
            "http://node",
            "http://:8332",
            "http://node:0",
            "http://node:99999",
        ] {
            let e = RpcClient::new(bad, auth.clone()).unwrap_err();
            assert!(matches!(e, RpcError::BadUrl { .. }), "{bad}: {e}");
        }
    }

    #[tokio::test]
    async fn a_missing_cookie_file_is_named() {
        let c = RpcClient::new(
            "http://127.0.0.1:1",
            Auth::Cookie("/nonexistent/.cookie".into()),
        )
        .unwrap();
        let e = c.call("getblockcount", json!([])).await.unwrap_err();
        assert!(e.to_string().contains("/nonexistent/.cookie"), "{e}");
    }

    #[tokio::test]
    async fn a_dead_port_is_unreachable_and_transient() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let c = RpcClient::new(
            &format!("http://127.0.0.1:{port}"),
            Auth::UserPass {
                user: "u".into(),
                password: "p".into(),
            },
        )
        .unwrap();
        let e = c.call("getblockcount", json!([])).await.unwrap_err();
        assert!(matches!(e, RpcError::Unreachable { .. }), "{e}");
        assert!(e.is_transient());
    }
}
