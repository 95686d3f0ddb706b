//! The run's events and its periodic status, as text and as JSON: the status line
//! (`cpu 12.3 MH/s (5s) … | A 10 R 1 S 0 | diff 0.001 | pool … | up 0h01m02s`) and one line per
//! event from the mining layer.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use wgminer::bench::format_rate;
use wgminer::mining::MinerEvent;
use wgminer::work::{BlockVerdict, MiningStats, StatsSnapshot};

use super::{show, write_to, OutputMode, Stream};

/// Plain log lines (no terminal): a status line this often.
const LOG_EVERY: Duration = Duration::from_secs(30);

/// Draw events and the periodic status until the run ends.
pub async fn render(
    mode: OutputMode,
    stats: Arc<MiningStats>,
    mut events: mpsc::Receiver<MinerEvent>,
) {
    let every = match mode {
        OutputMode::Terminal => Duration::from_secs(1),
        OutputMode::Log | OutputMode::Json => LOG_EVERY,
    };
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    loop {
        tokio::select! {
            ev = events.recv() => match ev {
                Some(ev) => {
                    if stats.is_solo() && mode != OutputMode::Json && matches!(ev, MinerEvent::JobSwitch { .. }) {
                        // Every block makes a clean job in solo mining: not worth a line each.
                        continue;
                    }
                    let uptime = stats.uptime().as_secs_f64();
                    let (json, text) = describe(&ev);
                    let mut json = json;
                    json["uptime_s"] = serde_json::json!(uptime);
                    show(mode, &json, &format!("[{uptime:>8.1}s] {text}"));
                    if mode == OutputMode::Terminal {
                        draw_status(&stats.snapshot());
                    }
                }
                None => return,
            },
            _ = tick.tick() => {
                let snap = stats.snapshot();
                match mode {
                    OutputMode::Terminal => draw_status(&snap),
                    OutputMode::Json => show(mode, &serde_json::json!({"event": "status", "status": snap}), ""),
                    OutputMode::Log => show(mode, &serde_json::Value::Null, &format!("[{:>8.1}s] {}", snap.uptime_s, status_text(&snap))),
                }
            }
        }
    }
}

fn draw_status(snap: &StatsSnapshot) {
    write_to(Stream::Err, &format!("\r\x1b[2K{}", status_text(snap)));
}

/// "cpu 12.3 MH/s (5s) 11.9 MH/s (60s) | A 10 R 1 (low difficulty) S 0 | diff 0.001 | pool … | up 1m02s"
pub fn status_text(snap: &StatsSnapshot) -> String {
    let devices: Vec<String> = snap
        .devices
        .iter()
        .map(|d| {
            let hw = if d.hardware_errors > 0 {
                format!(" HW {}", d.hardware_errors)
            } else {
                String::new()
            };
            format!(
                "{} {} (5s) {} (60s){hw}",
                d.label,
                format_rate(d.rate_5s),
                format_rate(d.rate_60s)
            )
        })
        .collect();
    let reject = snap
        .last_reject
        .as_deref()
        .map(|r| format!(" ({r})"))
        .unwrap_or_default();
    let diff = snap
        .difficulty
        .map(format_difficulty)
        .unwrap_or_else(|| "-".into());
    let pool = match (&snap.pool, snap.connected) {
        (Some(p), true) => p.clone(),
        (Some(p), false) => format!("{p} (down)"),
        (None, _) => "connecting".into(),
    };
    let up = snap.uptime_s as u64;
    let counts = if snap.solo {
        format!(
            "blocks {} (R {}{reject} S {})",
            snap.blocks, snap.rejected, snap.stale
        )
    } else {
        let held = if snap.held > 0 {
            format!(" H {}", snap.held)
        } else {
            String::new()
        };
        format!(
            "A {} R {}{reject} S {}{held}",
            snap.accepted, snap.rejected, snap.stale
        )
    };
    format!(
        "{} | {counts} | diff {diff} | {pool} | up {}h{:02}m{:02}s",
        devices.join(", "),
        up / 3600,
        up / 60 % 60,
        up % 60
    )
}

/// A difficulty with a few significant digits (regtest's is about 4.66e-10).
pub fn format_difficulty(d: f64) -> String {
    if d != 0.0 && d.abs() < 1e-3 {
        format!("{d:.3e}")
    } else {
        format!("{}", (d * 1000.0).round() / 1000.0)
    }
}

/// An event as JSON and as a text line.
fn describe(ev: &MinerEvent) -> (serde_json::Value, String) {
    use serde_json::json;
    let share_json = |s: &wgminer::work::Share| {
        json!({
            "job_id": s.job_id, "extranonce2": s.extranonce2.to_hex(),
            "ntime": format!("{:08x}", s.ntime), "nonce": format!("{:08x}", s.nonce),
            "version_bits": s.version_bits.map(|v| format!("{v:08x}")),
        })
    };
    match ev {
        MinerEvent::Connected { pool } => (
            json!({"event": "connected", "pool": pool}),
            format!("connected to {pool}"),
        ),
        MinerEvent::Disconnected { reason } => (
            json!({"event": "disconnected", "reason": reason}),
            format!("disconnected: {reason}"),
        ),
        MinerEvent::NewJob {
            job_id,
            clean,
            difficulty,
        } => (
            json!({"event": "job", "job_id": job_id, "clean": clean, "difficulty": difficulty}),
            format!("new job {job_id} (clean: {clean}, difficulty {difficulty})"),
        ),
        MinerEvent::DifficultyChanged(d) => (
            json!({"event": "difficulty", "difficulty": d}),
            format!("difficulty {d} from now on"),
        ),
        MinerEvent::Submitted {
            device,
            share,
            latency,
        } => {
            let ms = latency.as_secs_f64() * 1e3;
            (
                json!({"event": "submitted", "device": device.index, "device_label": device.label,
                       "latency_ms": ms, "share": share_json(share)}),
                format!(
                    "submitted share job {} nonce {:08x} ({device}, {ms:.1} ms after it was found)",
                    share.job_id, share.nonce
                ),
            )
        }
        MinerEvent::Held { share } => (
            json!({"event": "held", "share": share_json(share)}),
            format!(
                "held share job {} nonce {:08x} (no connection: sent when the pool is back)",
                share.job_id, share.nonce
            ),
        ),
        MinerEvent::Unanswered { share, why } => (
            json!({"event": "unanswered", "reason": why, "share": share_json(share)}),
            format!(
                "no answer for share job {} nonce {:08x}: {why}",
                share.job_id, share.nonce
            ),
        ),
        MinerEvent::Accepted { share, .. } => (
            json!({"event": "accepted", "share": share_json(share)}),
            format!(
                "accepted share job {} nonce {:08x}",
                share.job_id, share.nonce
            ),
        ),
        MinerEvent::Rejected { share, reason, .. } => (
            json!({"event": "rejected", "reason": reason, "share": share_json(share)}),
            format!(
                "rejected share job {} nonce {:08x}: {reason}",
                share.job_id, share.nonce
            ),
        ),
        MinerEvent::Stale { share, why } => (
            json!({"event": "stale", "reason": why, "share": share_json(share)}),
            format!(
                "stale share job {} nonce {:08x}: {why}",
                share.job_id, share.nonce
            ),
        ),
        MinerEvent::HardwareError { device, error } => (
            json!({"event": "hardware_error", "device": device.index, "device_label": device.label, "error": error}),
            format!("hardware error on {device}: {error}"),
        ),
        MinerEvent::JobSwitch { job_id, latency } => {
            let ms = latency.as_secs_f64() * 1e3;
            (
                json!({"event": "job_switch", "job_id": job_id, "latency_ms": ms}),
                format!("every device on clean job {job_id} after {ms:.1} ms"),
            )
        }
        MinerEvent::DeviceFailed { device, error } => (
            json!({"event": "device_error", "device": device.index, "device_label": device.label, "error": error}),
            format!("{device}: {error}"),
        ),
        MinerEvent::SourceMessage { solo: false, text } => (
            json!({"event": "pool_message", "message": text}),
            format!("pool says: {text}"),
        ),
        MinerEvent::SourceMessage { solo: true, text } => (
            json!({"event": "node_message", "message": text}),
            format!("node: {text}"),
        ),
        MinerEvent::Notice(text) => (
            json!({"event": "notice", "message": text}),
            text.to_string(),
        ),
        MinerEvent::NewTemplate {
            height,
            prev_hash,
            transactions,
            clean,
            difficulty,
        } => (
            json!({"event": "template", "height": height, "prev_hash": prev_hash.to_string(),
                   "transactions": transactions, "clean": clean, "difficulty": difficulty}),
            if *clean {
                format!("mining height {height} on {prev_hash} ({transactions} transactions, difficulty {})", format_difficulty(*difficulty))
            } else {
                format!("template refreshed: height {height}, {transactions} transactions")
            },
        ),
        MinerEvent::BlockFound {
            device,
            height,
            hash,
            after,
        } => (
            json!({"event": "block_found", "device": device.index, "device_label": device.label,
                   "height": height, "hash": hash.to_string(), "time_to_find_s": after.as_secs_f64()}),
            format!(
                "BLOCK FOUND height {height} hash {hash} after {:.1} s ({device}), submitting",
                after.as_secs_f64()
            ),
        ),
        MinerEvent::BlockResult {
            height,
            hash,
            verdict,
        } => {
            let (status, why) = match verdict {
                BlockVerdict::Accepted => ("accepted", None),
                BlockVerdict::Stale(w) => ("stale", Some(w)),
                BlockVerdict::Rejected(w) => ("rejected", Some(w)),
                BlockVerdict::Undelivered(w) => ("not delivered", Some(w)),
            };
            let text = match why {
                None => format!("block {height} {hash} accepted"),
                Some(w) => format!("block {height} {hash} {status}: {w}"),
            };
            (
                json!({"event": "block_result", "height": height, "hash": hash.to_string(),
                       "status": status, "reason": why}),
                text,
            )
        }
        MinerEvent::SourceDown(why) => (
            json!({"event": "source_down", "reason": why}),
            format!("work source unavailable: {why}"),
        ),
    }
}
