//! The monitoring API: `GET /api/v1/summary`, `/api/v1/devices`, `/api/v1/pools` (JSON) and
//! `/metrics` (Prometheus), read-only, from the live [`MiningStats`]. With a token every request
//! needs `Authorization: Bearer <token>` (compared in constant time). One request per connection.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::BufReader;
use tokio::net::{TcpListener, TcpStream};

use super::metrics;
use crate::http;
use crate::work::{MiningStats, StatsSnapshot};

/// How long a client may take to send its request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

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

/// A running API server; stops when dropped or with [`Self::stop`].
pub struct ApiServer {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl ApiServer {
    pub async fn start(config: ApiConfig, state: ApiState) -> Result<ApiServer, ApiError> {
        let listener = TcpListener::bind(config.bind)
            .await
            .map_err(|source| ApiError::Bind {
                addr: config.bind,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| ApiError::Bind {
            addr: config.bind,
            source,
        })?;
        let shared = Arc::new((config, state));
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                };
                let shared = Arc::clone(&shared);
                tokio::spawn(async move { serve(&shared.0, &shared.1, stream).await });
            }
        });
        Ok(ApiServer { addr, task })
    }

    /// Where it listens (the real port when bound to port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn stop(self) {
        self.task.abort();
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(config: &ApiConfig, state: &ApiState, stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    let request =
        match tokio::time::timeout(REQUEST_TIMEOUT, http::read_message(&mut reader, false)).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                let body = error_body(&format!("bad request: {e}"));
                let _ =
                    http::write_response(&mut write, 400, "Bad Request", JSON, &[], &body).await;
                return;
            }
            Err(_) => return,
        };
    let (status, content_type, body) = respond(config, state, &request);
    let reason = match status {
        200 => "OK",
        401 => "Unauthorized",
        404 => "Not Found",
        _ => "Method Not Allowed",
    };
    let extra: &[(&str, &str)] = if status == 401 {
        &[("WWW-Authenticate", "Bearer")]
    } else {
        &[]
    };
    let _ = http::write_response(&mut write, status, reason, content_type, extra, &body).await;
}

const JSON: &str = "application/json";

fn error_body(message: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({ "error": message })).unwrap_or_default()
}

/// Status, content type and body for one request.
pub fn respond(
    config: &ApiConfig,
    state: &ApiState,
    request: &http::Message,
) -> (u16, &'static str, Vec<u8>) {
    if let Some(token) = &config.token {
        let given = request
            .header("authorization")
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        if !given.is_some_and(|g| http::constant_time_eq(g.as_bytes(), token.as_bytes())) {
            return (401, JSON, error_body("missing or wrong bearer token"));
        }
    }
    let method = request.start.first().map(String::as_str).unwrap_or("");
    if method != "GET" && method != "HEAD" {
        return (405, JSON, error_body("the API is read-only: use GET"));
    }
    let path = request
        .start
        .get(1)
        .map(|p| p.split('?').next().unwrap_or(""))
        .unwrap_or("");
    let snap = state.stats.snapshot();
    let json_body = |v: Value| serde_json::to_vec_pretty(&v).unwrap_or_default();
    match path {
        "/api/v1/summary" => (200, JSON, json_body(summary(state, &snap))),
        "/api/v1/devices" => (200, JSON, json_body(devices(&snap))),
        "/api/v1/pools" => (200, JSON, json_body(pools(state, &snap))),
        "/metrics" => (
            200,
            metrics::CONTENT_TYPE,
            metrics::render(&snap, snap.pool.as_deref()).into_bytes(),
        ),
        _ => (
            404,
            JSON,
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
