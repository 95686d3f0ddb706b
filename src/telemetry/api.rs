//! The monitoring API: `GET /api/v1/summary`, `/api/v1/devices`, `/api/v1/pools` (JSON) and
//! `/metrics` (Prometheus), read-only, from the live [`MiningStats`]. With a token every request
//! needs `Authorization: Bearer <token>` (scheme in any case, token compared in constant time).
//! One request per connection, served by [`crate::http::Server`] within [`LIMITS`]; no request
//! takes a body, so none is ever read.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ::http::{header, Method, Request, StatusCode};
use hyper::body::Body;
use serde_json::{json, Value};
use tokio::net::TcpListener;

use super::metrics;
use crate::http::{self, Limits, Reply, Server};
use crate::work::{MiningStats, StatsSnapshot};

/// The server's connection limits: a few scrapers and dashboards, each answered at once.
pub const LIMITS: Limits = Limits {
    max_connections: 32,
    header_timeout: Duration::from_secs(10),
    // Unused: the API reads no body.
    body_timeout: Duration::from_secs(10),
    connection_timeout: Duration::from_secs(30),
    shutdown_grace: Duration::from_secs(2),
};

/// Where to listen and who may ask.
#[derive(Clone, Debug)]
pub struct ApiConfig {
    pub bind: SocketAddr,
    pub token: Option<String>,
}

/// What the API reports on.
#[derive(Clone, Debug)]
pub struct ApiState {
    pub stats: Arc<MiningStats>,
    /// The configured work sources in order of preference (pool URLs, or the node).
    pub sources: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    #[error(
        "cannot serve the API on {addr}: {source} (is the port in use? choose another --api-bind)"
    )]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// A running API server; [`Self::stop`] stops it gracefully, dropping it aborts it.
pub struct ApiServer {
    server: Server,
}

impl ApiServer {
    pub async fn start(config: ApiConfig, state: ApiState) -> Result<ApiServer, ApiError> {
        Self::start_with_limits(config, state, LIMITS).await
    }

    /// [`Self::start`] with other connection limits (tests use small ones).
    pub async fn start_with_limits(
        config: ApiConfig,
        state: ApiState,
        limits: Limits,
    ) -> Result<ApiServer, ApiError> {
        let bind_err = |source| ApiError::Bind {
            addr: config.bind,
            source,
        };
        let listener = TcpListener::bind(config.bind).await.map_err(bind_err)?;
        let shared = Arc::new((config.clone(), state));
        let server = Server::serve(listener, limits, move |request, _| {
            let reply = respond(&shared.0, &shared.1, &request);
            async move { reply }
        })
        .map_err(bind_err)?;
        Ok(ApiServer { server })
    }

    /// Where it listens (the real port when bound to port 0).
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// Stop accepting and let answers being written finish.
    pub async fn stop(self) {
        self.server.stop().await;
    }
}

const JSON: &str = "application/json";

fn error_body(message: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({ "error": message })).unwrap_or_default()
}

/// The reply to one request, from its head alone: credentials, method, then path. A request
/// that carries a body is refused unread (413): the API takes none.
pub fn respond<B: Body>(config: &ApiConfig, state: &ApiState, request: &Request<B>) -> Reply {
    if let Some(token) = &config.token {
        let given = http::bearer_token(request.headers());
        if !given.is_some_and(|g| http::constant_time_eq(g.as_bytes(), token.as_bytes())) {
            return http::reply(
                StatusCode::UNAUTHORIZED,
                JSON,
                &[(header::WWW_AUTHENTICATE, "Bearer")],
                error_body("missing or wrong bearer token"),
            );
        }
    }
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return http::reply(
            StatusCode::METHOD_NOT_ALLOWED,
            JSON,
            &[(header::ALLOW, "GET, HEAD")],
            error_body("the API is read-only: use GET"),
        );
    }
    if !request.body().is_end_stream() {
        return http::reply(
            StatusCode::PAYLOAD_TOO_LARGE,
            JSON,
            &[],
            error_body("the API takes no request body"),
        );
    }
    let snap = state.stats.snapshot();
    let json_body = |v: Value| serde_json::to_vec_pretty(&v).unwrap_or_default();
    let ok = |content_type, body| http::reply(StatusCode::OK, content_type, &[], body);
    match request.uri().path() {
        "/api/v1/summary" => ok(JSON, json_body(summary(state, &snap))),
        "/api/v1/devices" => ok(JSON, json_body(devices(&snap))),
        "/api/v1/pools" => ok(JSON, json_body(pools(state, &snap))),
        "/metrics" => ok(
            metrics::CONTENT_TYPE,
            metrics::render(&snap, snap.pool.as_deref()).into_bytes(),
        ),
        _ => http::reply(
            StatusCode::NOT_FOUND,
            JSON,
            &[],
            error_body(
                "unknown path: try /api/v1/summary, /api/v1/devices, /api/v1/pools or /metrics",
            ),
        ),
    }
}

fn total(snap: &StatsSnapshot, f: impl Fn(&crate::work::stats::DeviceSnapshot) -> f64) -> f64 {
    snap.devices.iter().map(f).sum()
}

/// The whole run at a glance.
pub fn summary(state: &ApiState, snap: &StatsSnapshot) -> Value {
    json!({
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_s": snap.uptime_s,
        "mode": if snap.solo { "solo" } else { "pool" },
        "hashrate": {
            "5s": total(snap, |d| d.rate_5s),
            "1m": total(snap, |d| d.rate_60s),
            "15m": total(snap, |d| d.rate_15m),
        },
        "hashes": snap.devices.iter().map(|d| d.hashes).sum::<u64>(),
        "devices": devices(snap),
        "shares": {
            "solutions": snap.solutions,
            "submitted": snap.submitted,
            "accepted": snap.accepted,
            "rejected": snap.rejected,
            "stale": snap.stale,
            "held": snap.held,
            "pending": snap.pending,
            "unanswered": snap.unanswered,
            "reject_reasons": snap.reject_reasons,
            "stale_reasons": snap.stale_reasons,
            "last_reject": snap.last_reject,
        },
        "latency_ms": snap.latency.map(|l| json!({
            "samples": l.samples, "median": l.median_ms, "p99": l.p99_ms, "max": l.max_ms,
        })),
        "hardware_errors": snap.hardware_errors,
        "blocks": snap.blocks,
        "difficulty": {
            "accepted": snap.difficulty_accepted,
            "rejected": snap.difficulty_rejected,
            "stale": snap.difficulty_stale,
        },
        "best_share": snap.best_share,
        "jobs": snap.jobs,
        "pool": {
            "url": snap.pool,
            "connected": snap.connected,
            "difficulty": snap.difficulty,
        },
        "sources": state.sources,
        "job_switch_ms": { "last": snap.last_switch_ms, "max": snap.max_switch_ms },
    })
}

/// Every device's counters and rates.
pub fn devices(snap: &StatsSnapshot) -> Value {
    Value::Array(
        snap.devices
            .iter()
            .map(|d| {
                json!({
                    "index": d.index,
                    "label": d.label,
                    "hashes": d.hashes,
                    "hashrate": { "5s": d.rate_5s, "1m": d.rate_60s, "15m": d.rate_15m },
                    "hardware_errors": d.hardware_errors,
                    "solutions": d.solutions,
                    "accepted": d.accepted,
                    "rejected": d.rejected,
                    "difficulty_accepted": d.difficulty_accepted,
                    "best_share": d.best_share,
                    "sensors": d.sensors,
                    "resting": d.resting,
                })
            })
            .collect(),
    )
}

/// The configured sources, which one is in use, and whether it is connected.
pub fn pools(state: &ApiState, snap: &StatsSnapshot) -> Value {
    Value::Array(
        state
            .sources
            .iter()
            .enumerate()
            .map(|(priority, url)| {
                let current = snap.pool.as_deref() == Some(url.as_str());
                json!({
                    "url": url,
                    "priority": priority,
                    "current": current,
                    "connected": current && snap.connected,
                    "difficulty": if current { snap.difficulty } else { None },
                })
            })
            .collect(),
    )
}
