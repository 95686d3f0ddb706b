//! Which pools to mine on and how to reach them: pool urls, credentials, the client's timers,
//! and the retry policy (exponential backoff capped at 15 s, failover to the next pool after a
//! few failed attempts). Pure: the connection in `client` asks it what to do next.

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
    /// In order of preference: the first is the primary.
    pub pools: Vec<PoolConfig>,
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
    /// Failed attempts in a row before moving to the next pool.
    pub failover_after: u32,
    /// While on a backup pool, how often to check whether the primary is back.
    pub primary_probe: Duration,
    pub max_line_len: usize,
    /// Root certificates (DER) trusted for `stratum+ssl://` besides the Mozilla set, for pools
    /// behind a private CA.
    pub extra_tls_roots: Vec<Vec<u8>>,
    /// Requests to mine on another of the pools (the cgminer API's `switchpool`).
    pub switch: PoolSwitch,
}

/// Asks a running client to move to another of its pools, which becomes the one it prefers
/// (it goes back there after a failover, as it would to the first). Clones share the request.
#[derive(Clone, Debug, Default)]
pub struct PoolSwitch(std::sync::Arc<SwitchInner>);

#[derive(Debug, Default)]
struct SwitchInner {
    wanted: std::sync::Mutex<Option<usize>>,
    notify: tokio::sync::Notify,
}

impl PoolSwitch {
    /// Mine on pool `index` (of [`ClientConfig::pools`]) from now on.
    pub fn request(&self, index: usize) {
        *self.0.wanted.lock().unwrap_or_else(|e| e.into_inner()) = Some(index);
        self.0.notify.notify_one();
    }

    /// The pool asked for since the last take, if any.
    pub(crate) fn take(&self) -> Option<usize> {
        self.0
            .wanted
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }

    /// Resolves when a request may have come (then [`Self::take`] it).
    pub(crate) async fn requested(&self) {
        self.0.notify.notified().await;
    }
}

impl ClientConfig {
    pub fn new(pools: Vec<PoolConfig>) -> Self {
        let session = SessionConfig::new("", "");
        ClientConfig {
            pools,
            user_agent: session.user_agent,
            version_rolling: session.version_rolling,
            suggest_difficulty: None,
            extranonce_subscribe: false,
            ntime_roll: session.ntime_roll,
            // Pools send a notify at least every minute or two (ckpool: 30 s updates); two
            // minutes of silence is a dead connection.
            keepalive: Duration::from_secs(120),
            connect_timeout: Duration::from_secs(10),
            backoff_initial: Duration::from_secs(1),
            backoff_max: Duration::from_secs(15),
            failover_after: 3,
            primary_probe: Duration::from_secs(60),
            max_line_len: MAX_LINE_LEN,
            extra_tls_roots: Vec::new(),
            switch: PoolSwitch::default(),
        }
    }

    pub(crate) fn session_config(&self, pool: &PoolConfig) -> SessionConfig {
        SessionConfig {
            user: pool.user.clone(),
            password: pool.password.clone(),
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

/// When to reconnect and when to move to the next pool, after connections that failed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Retry {
    /// Failed attempts since the last healthy connection, over every pool.
    attempt: u32,
    /// Failed attempts on the current pool.
    failures: u32,
}

impl Retry {
    /// After a connection ended (`healthy`: it had been authorized): whether to move to the next
    /// of `pools` pools, and how long to wait first.
    pub(crate) fn after_loss(
        &mut self,
        healthy: bool,
        pools: usize,
        config: &ClientConfig,
    ) -> (bool, Duration) {
        if healthy {
            // It worked until now: start the backoff over.
            *self = Retry::default();
            return (false, config.backoff(0));
        }
        self.attempt = self.attempt.saturating_add(1);
        self.failures += 1;
        let failover_after = config.failover_after.max(1);
        if pools > 1 && self.failures >= failover_after {
            self.failures = 0;
            // The first pass over the pools tries each new one at once; after that the backoff
            // spans the rotation, so with every pool down the miner settles at one attempt per
            // `backoff_max` instead of spinning.
            let first_pass = u64::from(self.attempt) < pools as u64 * u64::from(failover_after);
            let delay = if first_pass {
                Duration::ZERO
            } else {
                config.backoff(self.attempt - 1)
            };
            return (true, delay);
        }
        (false, config.backoff(self.attempt - 1))
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

    #[test]
    fn backoff_doubles_and_caps_at_fifteen_seconds() {
        let c = ClientConfig::new(vec![]);
        let secs: Vec<u64> = (0..8).map(|a| c.backoff(a).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 15, 15, 15, 15]);
        assert_eq!(c.backoff(u32::MAX), Duration::from_secs(15));
    }

    #[test]
    fn retries_back_off_fail_over_and_never_spin() {
        let mut c = ClientConfig::new(vec![]);
        c.failover_after = 2;
        let s = Duration::from_secs;
        // One pool: plain exponential backoff up to the cap.
        let mut r = Retry::default();
        let one: Vec<(bool, Duration)> = (0..6).map(|_| r.after_loss(false, 1, &c)).collect();
        let delays: Vec<Duration> = one.iter().map(|x| x.1).collect();
        assert_eq!(delays, [s(1), s(2), s(4), s(8), s(15), s(15)]);
        assert!(one.iter().all(|x| !x.0));
        // Two pools: switch after two failures, the first switch at once, later ones backed off.
        let mut r = Retry::default();
        let two: Vec<(bool, Duration)> = (0..8).map(|_| r.after_loss(false, 2, &c)).collect();
        assert_eq!(
            two,
            [
                (false, s(1)),
                (true, Duration::ZERO),
                (false, s(4)),
                (true, s(8)),
                (false, s(15)),
                (true, s(15)),
                (false, s(15)),
                (true, s(15)),
            ]
        );
        // A healthy connection starts over.
        assert_eq!(r.after_loss(true, 2, &c), (false, s(1)));
        assert_eq!(r, Retry::default());
    }
}
