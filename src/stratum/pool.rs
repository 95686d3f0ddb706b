//! Which pool to mine on and how to reach it: the pool url, credentials, the client's timers,
//! and the reconnect backoff (exponential, capped at 15 s). Pure: the connection in `client`
//! asks it what to do next. Failing over between pools is `crate::mining::failover`'s, for V1
//! and V2 pools alike.

use std::str::FromStr;
use std::time::Duration;

use super::session::SessionConfig;
use super::MAX_LINE_LEN;

/// A pool url we cannot use.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid pool url {url:?}: {reason}")]
pub struct PoolUrlError {
    pub url: String,
    pub reason: &'static str,
}

/// Where a pool listens: `stratum+tcp://host:port`, `stratum+ssl://` or `stratum+tls://`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolUrl {
    pub host: String,
    pub port: u16,
    pub tls: bool,
}

impl FromStr for PoolUrl {
    type Err = PoolUrlError;

    fn from_str(url: &str) -> Result<Self, PoolUrlError> {
        let bad = |reason| PoolUrlError {
            url: url.to_owned(),
            reason,
        };
        let (tls, rest) = match url.split_once("://") {
            None => (false, url),
            Some(("stratum+tcp" | "stratum" | "tcp", rest)) => (false, rest),
            Some(("stratum+ssl" | "stratum+tls" | "ssl" | "tls", rest)) => (true, rest),
            Some(_) => return Err(bad("scheme is not stratum+tcp, stratum+ssl or stratum+tls")),
        };
        let rest = rest.trim_end_matches('/');
        let (host, port) = rest.rsplit_once(':').ok_or(bad("no port"))?;
        // IPv6 literals come bracketed: [::1]:3333.
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        if host.is_empty() || host.contains(['/', '@', ' ']) {
            return Err(bad("bad host"));
        }
        let port = port.parse::<u16>().map_err(|_| bad("bad port"))?;
        if port == 0 {
            return Err(bad("bad port"));
        }
        Ok(PoolUrl {
            host: host.to_owned(),
            port,
            tls,
        })
    }
}

impl std::fmt::Display for PoolUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = if self.tls {
            "stratum+ssl"
        } else {
            "stratum+tcp"
        };
        if self.host.contains(':') {
            write!(f, "{scheme}://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{scheme}://{}:{}", self.host, self.port)
        }
    }
}

/// One pool and the credentials for it.
#[derive(Clone, Debug, PartialEq)]
pub struct PoolConfig {
    pub url: PoolUrl,
    pub user: String,
    pub password: String,
}

/// Everything the client needs; [`ClientConfig::new`] gives the defaults a real miner uses, and
/// tests shorten the timers.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    pub pool: PoolConfig,
    pub user_agent: String,
    /// BIP310 mask to ask for; `None`: no `mining.configure`.
    pub version_rolling: Option<u32>,
    pub suggest_difficulty: Option<f64>,
    pub extranonce_subscribe: bool,
    pub ntime_roll: u32,
    /// No line from the pool for this long: the connection is dead.
    pub keepalive: Duration,
    pub connect_timeout: Duration,
    /// First reconnect delay; it doubles per failed attempt up to `backoff_max`.
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
    pub max_line_len: usize,
    /// Root certificates (DER) trusted for `stratum+ssl://` besides the Mozilla set, for pools
    /// behind a private CA.
    pub extra_tls_roots: Vec<Vec<u8>>,
}

/// How long a TCP connect (and TLS handshake) may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The longest wait between reconnect attempts.
pub const BACKOFF_MAX: Duration = Duration::from_secs(15);

impl ClientConfig {
    pub fn new(pool: PoolConfig) -> Self {
        let session = SessionConfig::new("", "");
        ClientConfig {
            pool,
            user_agent: session.user_agent,
            version_rolling: session.version_rolling,
            suggest_difficulty: None,
            extranonce_subscribe: false,
            ntime_roll: session.ntime_roll,
            // Pools send a notify at least every minute or two (ckpool: 30 s updates); two
            // minutes of silence is a dead connection.
            keepalive: Duration::from_secs(120),
            connect_timeout: CONNECT_TIMEOUT,
            backoff_initial: Duration::from_secs(1),
            backoff_max: BACKOFF_MAX,
            max_line_len: MAX_LINE_LEN,
            extra_tls_roots: Vec::new(),
        }
    }

    pub(crate) fn session_config(&self) -> SessionConfig {
        SessionConfig {
            user: self.pool.user.clone(),
            password: self.pool.password.clone(),
            user_agent: self.user_agent.clone(),
            version_rolling: self.version_rolling,
            suggest_difficulty: self.suggest_difficulty,
            extranonce_subscribe: self.extranonce_subscribe,
            ntime_roll: self.ntime_roll,
        }
    }

    /// The delay before reconnect attempt `attempt` (0-based): initial · 2^attempt, capped.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let factor = 1u32 << attempt.min(16);
        self.backoff_initial
            .saturating_mul(factor)
            .min(self.backoff_max)
    }
}

/// When to reconnect after connections that failed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Retry {
    /// Failed attempts since the last healthy connection.
    attempt: u32,
}

impl Retry {
    /// After a connection ended (`healthy`: it had been authorized): how long to wait before
    /// the next attempt.
    pub(crate) fn after_loss(&mut self, healthy: bool, config: &ClientConfig) -> Duration {
        if healthy {
            // It worked until now: start the backoff over.
            *self = Retry::default();
            return config.backoff(0);
        }
        self.attempt = self.attempt.saturating_add(1);
        config.backoff(self.attempt - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_urls() {
        let u: PoolUrl = "stratum+tcp://pool.example:3333".parse().unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.tls),
            ("pool.example", 3333, false)
        );
        let u: PoolUrl = "stratum+ssl://pool.example:443/".parse().unwrap();
        assert!(u.tls);
        assert!("stratum+tls://h:1".parse::<PoolUrl>().unwrap().tls);
        let u: PoolUrl = "[::1]:3333".parse().unwrap();
        assert_eq!(u.host, "::1");
        assert_eq!(u.to_string(), "stratum+tcp://[::1]:3333");
        for bad in [
            "http://h:1",
            "stratum+tcp://h",
            "stratum+tcp://:1",
            "stratum+tcp://h:0",
            "stratum+tcp://h:99999",
            "stratum+tcp://u@h:1",
        ] {
            assert!(bad.parse::<PoolUrl>().is_err(), "{bad}");
        }
    }

    fn config() -> ClientConfig {
        ClientConfig::new(PoolConfig {
            url: "stratum+tcp://pool.example:3333".parse().unwrap(),
            user: "u".into(),
            password: "x".into(),
        })
    }

    #[test]
    fn backoff_doubles_and_caps_at_fifteen_seconds() {
        let c = config();
        let secs: Vec<u64> = (0..8).map(|a| c.backoff(a).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 15, 15, 15, 15]);
        assert_eq!(c.backoff(u32::MAX), Duration::from_secs(15));
    }

    #[test]
    fn retries_back_off_and_never_spin() {
        let c = config();
        let s = Duration::from_secs;
        let mut r = Retry::default();
        let delays: Vec<Duration> = (0..6).map(|_| r.after_loss(false, &c)).collect();
        assert_eq!(delays, [s(1), s(2), s(4), s(8), s(15), s(15)]);
        // A healthy connection starts over.
        assert_eq!(r.after_loss(true, &c), s(1));
        assert_eq!(r, Retry::default());
    }
}
