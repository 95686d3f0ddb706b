//! The run's events and its periodic status, as text and as JSON: the status lines (one on a
//! terminal for one device; a total line and a short line per device for several, each within
//! 80 columns, cgminer's layout), one line per share with the running count, difficulty and
//! round trip, one line per block (bursts summed up), and a rate line every 10 s in logs.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bitcoin::BlockHash;
use tokio::sync::mpsc;
use wgminer::bench::format_rate;
use wgminer::mining::MinerEvent;
use wgminer::work::stats::DeviceSnapshot;
use wgminer::work::{BlockVerdict, MiningStats, StatsSnapshot};

use super::{log_file_line, show, show_painted, timestamp, write_to, OutputMode, Paint, Stream};

/// Plain log lines (no terminal): a rate line this often.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// At most this many block lines a second; the rest are summed up in one line.
const BLOCK_LINES_PER_SECOND: u32 = 3;

/// The width every status line fits in (a terminal's usual width).
const COLUMNS: usize = 80;

/// How the display looks besides its [`OutputMode`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Look {
    /// Colour on the terminal (`--no-color` / `NO_COLOR` turn it off).
    pub colour: bool,
    /// `-q`: rates and results only (shares, blocks, errors), no jobs, templates, connects.
    pub quiet: bool,
}

/// Draw events and the periodic status until the run ends.
pub async fn render(
    mode: OutputMode,
    look: Look,
    stats: Arc<MiningStats>,
    mut events: mpsc::Receiver<MinerEvent>,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    let mut display = Display::new(mode, look);
    let mut last_rate = Instant::now();
    loop {
        tokio::select! {
            ev = events.recv() => match ev {
                Some(ev) => {
                    display.event(&ev, stats.uptime().as_secs_f64(), stats.is_solo());
                    // Redraw once a burst is drained, not after every line of it.
                    if mode == OutputMode::Terminal && events.is_empty() {
                        display.draw_status(&stats.snapshot());
                    }
                }
                None => {
                    display.flush_blocks();
                    display.erase_status();
                    return;
                }
            },
            _ = tick.tick() => {
                display.flush_blocks();
                let snap = stats.snapshot();
                let rate_due = last_rate.elapsed() >= LOG_EVERY - Duration::from_millis(100);
                if rate_due {
                    last_rate = Instant::now();
                    for line in status_lines(&snap, usize::MAX) {
                        log_file_line(&format!("{} {line}", timestamp(std::time::SystemTime::now())));
                    }
                }
                match mode {
                    OutputMode::Terminal => display.draw_status(&snap),
                    OutputMode::Json if rate_due => show(mode, &serde_json::json!({"event": "status", "status": snap}), ""),
                    OutputMode::Log if rate_due => {
                        for line in status_lines(&snap, usize::MAX) {
                            write_to(Stream::Out, &format!("{} {line}\n", timestamp(std::time::SystemTime::now())));
                        }
                    }
                    _ => {}
                }
            }
        }
    }
}

/// The display's memory between events: the running share counts, the blocks found and not
/// yet answered, the block lines shown this second and the status lines on screen.
struct Display {
    mode: OutputMode,
    look: Look,
    accepted: u64,
    rejected: u64,
    /// Found blocks by hash: (device, time to find), until the node's verdict.
    found: HashMap<BlockHash, (String, Duration)>,
    difficulty: Option<f64>,
    templates: u64,
    blocks: BlockLimiter,
}

impl Display {
    fn new(mode: OutputMode, look: Look) -> Self {
        Display {
            mode,
            look,
            accepted: 0,
            rejected: 0,
            found: HashMap::new(),
            difficulty: None,
            templates: 0,
            blocks: BlockLimiter::default(),
        }
    }

    fn paint(&self, p: Paint) -> Paint {
        if self.look.colour {
            p
        } else {
            Paint::None
        }
    }

    fn line(&mut self, json: &serde_json::Value, text: &str, paint: Paint) {
        self.erase_status();
        show_painted(self.mode, json, text, self.paint(paint));
    }

    fn event(&mut self, ev: &MinerEvent, uptime: f64, solo: bool) {
        let (mut json, text) = describe(ev);
        json["uptime_s"] = serde_json::json!(uptime);
        if self.mode == OutputMode::Json {
            show(self.mode, &json, &text);
            return;
        }
        let paint = match ev {
            MinerEvent::Accepted {
                difficulty,
                round_trip,
                ..
            } => {
                self.accepted += 1;
                let text = share_line(
                    true,
                    self.accepted,
                    self.rejected,
                    None,
                    *difficulty,
                    *round_trip,
                );
                self.line(&json, &text, Paint::Good);
                return;
            }
            MinerEvent::Rejected {
                reason,
                difficulty,
                round_trip,
                ..
            } => {
                self.rejected += 1;
                let text = share_line(
                    false,
                    self.accepted,
                    self.rejected,
                    Some(reason),
                    *difficulty,
                    *round_trip,
                );
                self.line(&json, &text, Paint::Bad);
                return;
            }
            MinerEvent::NewTemplate {
                clean, difficulty, ..
            } => {
                self.difficulty = Some(*difficulty);
                self.templates += 1;
                // Every block brings a template: the first says where mining starts, the
                // block lines say the rest.
                if self.templates > 1 || self.look.quiet || !clean {
                    return;
                }
                Paint::None
            }
            MinerEvent::BlockFound {
                device,
                hash,
                after,
                ..
            } => {
                if self.found.len() > 10_000 {
                    // Verdicts that never came: don't grow without bound.
                    self.found.clear();
                }
                self.found.insert(*hash, (device.label.clone(), *after));
                return;
            }
            MinerEvent::BlockResult {
                height,
                hash,
                verdict,
            } => {
                let (device, after) = self.found.remove(hash).unwrap_or_default();
                if matches!(verdict, BlockVerdict::Accepted) && !self.blocks.admit(*height) {
                    return;
                }
                let text = block_line(*height, hash, verdict, after, self.difficulty, &device);
                let paint = match verdict {
                    BlockVerdict::Accepted => Paint::Block,
                    BlockVerdict::Stale(_) => Paint::Warn,
                    _ => Paint::Bad,
                };
                self.line(&json, &text, paint);
                return;
            }
            MinerEvent::Stale { .. } | MinerEvent::Unanswered { .. } => Paint::Warn,
            MinerEvent::HardwareError { .. }
            | MinerEvent::DeviceFailed { .. }
            | MinerEvent::SourceDown(_) => Paint::Bad,
            MinerEvent::JobSwitch { .. } if solo => return,
            _ if self.look.quiet => return,
            _ => Paint::None,
        };
        self.line(&json, &text, paint);
    }

    /// The line for the blocks not shown this second, if any.
    fn flush_blocks(&mut self) {
        if let Some(text) = self.blocks.summary() {
            self.line(&serde_json::Value::Null, &text, Paint::None);
        }
    }

    /// Take the status lines off the terminal (the cursor ends at the start of the first).
    fn erase_status(&mut self) {
        if self.mode != OutputMode::Terminal {
            return;
        }
        let seq = super::take_status_lines();
        if !seq.is_empty() {
            write_to(Stream::Err, &seq);
        }
    }

    fn draw_status(&mut self, snap: &StatsSnapshot) {
        self.erase_status();
        let lines = status_lines(snap, COLUMNS);
        write_to(Stream::Err, &lines.join("\n"));
        super::STATUS_LINES.store(lines.len(), std::sync::atomic::Ordering::Relaxed);
    }
}

/// Block lines per second: the first few pass, the rest are counted until the next second's
/// [`BlockLimiter::summary`].
#[derive(Default, Debug)]
struct BlockLimiter {
    shown: u32,
    hidden: u64,
    heights: Option<(u32, u32)>,
    since: Option<Instant>,
}

impl BlockLimiter {
    /// Whether block `height`'s line is shown (else it is counted).
    fn admit(&mut self, height: u32) -> bool {
        if self.shown < BLOCK_LINES_PER_SECOND {
            self.shown += 1;
            return true;
        }
        self.hidden += 1;
        self.since.get_or_insert_with(Instant::now);
        self.heights = Some(match self.heights {
            None => (height, height),
            Some((lo, hi)) => (lo.min(height), hi.max(height)),
        });
        false
    }

    /// Once a second: "N more blocks (heights a–b) in the last s", if any were held back;
    /// the next second starts afresh.
    fn summary(&mut self) -> Option<String> {
        self.shown = 0;
        let (lo, hi) = self.heights.take()?;
        let n = std::mem::take(&mut self.hidden);
        let secs = self
            .since
            .take()
            .map_or(1.0, |t| t.elapsed().as_secs_f64().max(0.1));
        let s = if n == 1 { "" } else { "s" };
        Some(format!(
            "{n} more block{s} (heights {lo}\u{2013}{hi}) in the last {secs:.1} s"
        ))
    }
}

/// "accepted 12/13 (92.3%), diff 0.0312, 45 ms" or
/// "rejected 1/13 (7.7%): low difficulty share, diff 0.0312, 45 ms".
pub fn share_line(
    accepted_now: bool,
    accepted: u64,
    rejected: u64,
    reason: Option<&str>,
    difficulty: Option<f64>,
    round_trip: Option<Duration>,
) -> String {
    let total = accepted + rejected;
    let (word, count) = if accepted_now {
        ("accepted", accepted)
    } else {
        ("rejected", rejected)
    };
    let pct = if total == 0 {
        0.0
    } else {
        count as f64 * 100.0 / total as f64
    };
    let mut text = format!("{word} {count}/{total} ({pct:.1}%)");
    if let Some(r) = reason {
        text.push_str(&format!(": {r}"));
    }
    if let Some(d) = difficulty {
        text.push_str(&format!(", diff {}", format_difficulty(d)));
    }
    if let Some(rt) = round_trip {
        text.push_str(&format!(", {} ms", rt.as_millis()));
    }
    text
}

/// "block 1474 0b1013ae…8dfe found in 300 ms, diff 4.657e-10, cpu" (accepted) or
/// "block 1474 0b1013ae…8dfe stale: reason".
pub fn block_line(
    height: u32,
    hash: &BlockHash,
    verdict: &BlockVerdict,
    after: Duration,
    difficulty: Option<f64>,
    device: &str,
) -> String {
    let hex = hash.to_string();
    let short = format!("{}\u{2026}{}", &hex[..8], &hex[hex.len() - 4..]);
    match verdict {
        BlockVerdict::Accepted => {
            // Regtest finds blocks in microseconds: milliseconds say more than "0.0 s".
            let took = if after < Duration::from_secs(1) {
                format!("{} ms", after.as_millis())
            } else {
                format!("{:.1} s", after.as_secs_f64())
            };
            let mut text = format!("block {height} {short} found in {took}");
            if let Some(d) = difficulty {
                text.push_str(&format!(", diff {}", format_difficulty(d)));
            }
            if !device.is_empty() {
                text.push_str(&format!(", {device}"));
            }
            text
        }
        BlockVerdict::Stale(w) => format!("block {height} {hex} stale: {w}"),
        BlockVerdict::Rejected(w) => format!("block {height} {hex} rejected: {w}"),
        BlockVerdict::Undelivered(w) => format!("block {height} {hex} not delivered: {w}"),
    }
}

/// The status as lines of at most `width` characters: one line for one device; a total line
/// and one line per device for several.
pub fn status_lines(snap: &StatsSnapshot, width: usize) -> Vec<String> {
    let cut = |s: String| super::truncate(&s, width);
    if width == usize::MAX && snap.devices.len() <= 1 {
        return vec![status_text(snap)];
    }
    let rate5: f64 = snap.devices.iter().map(|d| d.rate_5s).sum();
    let compact = width != usize::MAX;
    if snap.devices.len() <= 1 {
        // A terminal's one line: the 5 s rate and the short counters (the 60 s rate is in
        // the log's rate line and the API).
        let label = snap.devices.first().map_or("-", |d| d.label.as_str());
        let mut text = format!("{label} {}", format_rate(rate5));
        if let Some(d) = snap.devices.first() {
            text.push_str(&device_extras(d));
        }
        return vec![cut(format!("{text} | {}", totals_text(snap, compact)))];
    }
    let rate60: f64 = snap.devices.iter().map(|d| d.rate_60s).sum();
    let mut lines = vec![cut(if compact {
        format!("total {} | {}", format_rate(rate5), totals_text(snap, true))
    } else {
        format!(
            "total {} (5s) {} (60s) | {}",
            format_rate(rate5),
            format_rate(rate60),
            totals_text(snap, false)
        )
    })];
    lines.extend(snap.devices.iter().map(|d| cut(device_line(d, snap.solo))));
    lines
}

/// " 1 NVIDIA H100 …  7.90 GH/s A 5 R 0 HW 1 71C 300W fan 45% resting"
fn device_line(d: &DeviceSnapshot, solo: bool) -> String {
    let mut text = format!(
        "{:>2} {:<22} {:>12}",
        d.index,
        super::truncate(&d.label, 22),
        format_rate(d.rate_5s)
    );
    if !solo {
        text.push_str(&format!(" A {} R {}", d.accepted, d.rejected));
    }
    text.push_str(&device_extras(d));
    text
}

/// " HW 1 71C 300W fan 45% resting": what a device line adds when there is something to say.
fn device_extras(d: &DeviceSnapshot) -> String {
    let mut text = String::new();
    if d.hardware_errors > 0 {
        text.push_str(&format!(" HW {}", d.hardware_errors));
    }
    if let Some(s) = &d.sensors {
        if let Some(t) = s.temperature_c {
            text.push_str(&format!(" {t}C"));
        }
        if let Some(p) = s.power_w {
            text.push_str(&format!(" {p:.0}W"));
        }
        if let Some(f) = s.fan_percent {
            text.push_str(&format!(" fan {f}%"));
        }
    }
    if d.resting {
        text.push_str(" resting");
    }
    text
}

/// "cpu 12.3 MH/s (5s) 11.9 MH/s (60s) | A 10 R 1 (low difficulty) S 0 | best 1.2 | diff 0.001 | pool … | up 1h01m02s"
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
            let mut text = format!(
                "{} {} (5s) {} (60s){hw}",
                d.label,
                format_rate(d.rate_5s),
                format_rate(d.rate_60s)
            );
            if let Some(t) = d.sensors.and_then(|s| s.temperature_c) {
                text.push_str(&format!(" {t}C"));
            }
            if d.resting {
                text.push_str(" resting");
            }
            text
        })
        .collect();
    format!("{} | {}", devices.join(", "), totals_text(snap, false))
}

/// The counters, best share, difficulty, uptime and source (last: on a narrow terminal the
/// source's name is what is cut). `compact`: zero counters left out and short numbers, so a
/// terminal's line fits 80 columns.
fn totals_text(snap: &StatsSnapshot, compact: bool) -> String {
    let diff_text = |d: f64| {
        if compact && d != 0.0 && d.abs() < 1e-3 {
            format!("{d:.2e}")
        } else {
            format_difficulty(d)
        }
    };
    let reject = snap
        .last_reject
        .as_deref()
        .map(|r| format!(" ({r})"))
        .unwrap_or_default();
    let diff = snap.difficulty.map(diff_text).unwrap_or_else(|| "-".into());
    let pool = match (&snap.pool, snap.connected) {
        (Some(p), true) => p.clone(),
        (Some(p), false) => format!("{p} (down)"),
        (None, _) => "connecting".into(),
    };
    let up = snap.uptime_s as u64;
    let counts = if snap.solo && compact {
        let mut c = format!("blocks {}", snap.blocks);
        if snap.rejected > 0 {
            c.push_str(&format!(" R {}", snap.rejected));
        }
        if snap.stale > 0 {
            c.push_str(&format!(" S {}", snap.stale));
        }
        c
    } else if snap.solo {
        format!(
            "blocks {} (R {}{reject} S {})",
            snap.blocks, snap.rejected, snap.stale
        )
    } else if compact {
        let held = if snap.held > 0 {
            format!(" H {}", snap.held)
        } else {
            String::new()
        };
        format!(
            "A {} R {} S {}{held}",
            snap.accepted, snap.rejected, snap.stale
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
    let best = if snap.best_share > 0.0 {
        format!(" | best {}", diff_text(snap.best_share))
    } else {
        String::new()
    };
    let uptime = if !compact {
        format!("{}h{:02}m{:02}s", up / 3600, up / 60 % 60, up % 60)
    } else if up >= 3600 {
        format!("{}h{:02}m", up / 3600, up / 60 % 60)
    } else if up >= 60 {
        format!("{}m{:02}s", up / 60, up % 60)
    } else {
        format!("{up}s")
    };
    format!("{counts}{best} | diff {diff} | up {uptime} | {pool}")
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
            "job_id": s.job_id, "extranonce2": s.extranonce2.map(|e| e.to_hex()),
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
        MinerEvent::Accepted {
            share,
            difficulty,
            round_trip,
        } => (
            json!({"event": "accepted", "share": share_json(share), "difficulty": difficulty,
                   "round_trip_ms": round_trip.map(|r| r.as_secs_f64() * 1e3)}),
            format!(
                "accepted share job {} nonce {:08x}",
                share.job_id, share.nonce
            ),
        ),
        MinerEvent::Rejected {
            share,
            reason,
            difficulty,
            round_trip,
        } => (
            json!({"event": "rejected", "reason": reason, "share": share_json(share),
                   "difficulty": difficulty,
                   "round_trip_ms": round_trip.map(|r| r.as_secs_f64() * 1e3)}),
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

#[cfg(test)]
mod tests {
    use super::*;
    use wgminer::work::stats::SensorReading;

    fn device(index: usize, label: &str) -> DeviceSnapshot {
        DeviceSnapshot {
            index,
            label: label.into(),
            hashes: 0,
            rate_5s: 7.9e9,
            rate_60s: 7.8e9,
            rate_5m: 0.0,
            rate_15m: 0.0,
            hardware_errors: 0,
            solutions: 0,
            accepted: 5,
            rejected: 1,
            difficulty_accepted: 0.0,
            difficulty_rejected: 0.0,
            best_share: 0.0,
            last_accepted_unix: None,
            sensors: None,
            resting: false,
        }
    }

    #[test]
    fn share_lines_carry_count_difficulty_and_round_trip() {
        let ms = Some(Duration::from_millis(45));
        assert_eq!(
            share_line(true, 12, 1, None, Some(0.03125), ms),
            "accepted 12/13 (92.3%), diff 0.031, 45 ms"
        );
        assert_eq!(
            share_line(false, 12, 1, Some("low difficulty share"), Some(2.0), ms),
            "rejected 1/13 (7.7%): low difficulty share, diff 2, 45 ms"
        );
        assert_eq!(
            share_line(true, 1, 0, None, None, None),
            "accepted 1/1 (100.0%)"
        );
    }

    #[test]
    fn block_lines_are_short() {
        let hash: BlockHash = "0b1013ae0e19ef1ffc8e62b1102ec4520f09b9083d4ad48f8586aaf0d9ac8dfe"
            .parse()
            .expect("hash");
        let line = block_line(
            1474,
            &hash,
            &BlockVerdict::Accepted,
            Duration::from_millis(300),
            Some(4.657e-10),
            "cpu",
        );
        assert_eq!(
            line,
            "block 1474 0b1013ae\u{2026}8dfe found in 300 ms, diff 4.657e-10, cpu"
        );
        assert!(line.chars().count() < 70, "{line}");
    }

    #[test]
    fn block_bursts_are_summed_up() {
        let mut l = BlockLimiter::default();
        let shown = (1..=10).filter(|h| l.admit(*h)).count();
        assert_eq!(shown, BLOCK_LINES_PER_SECOND as usize);
        let text = l.summary().expect("a summary");
        assert!(
            text.starts_with("7 more blocks (heights 4\u{2013}10) in the last"),
            "{text}"
        );
        assert!(l.summary().is_none());
        assert!(l.admit(11), "a new second shows lines again");
    }

    #[test]
    fn several_devices_fit_80_columns() {
        let mut gpu = device(1, "NVIDIA H100 80GB HBM3 (Vulkan, discrete)");
        gpu.sensors = Some(SensorReading {
            temperature_c: Some(71),
            power_w: Some(300.4),
            fan_percent: Some(45),
            ..SensorReading::default()
        });
        gpu.resting = true;
        let mut snap = MiningStats::new([(0, "cpu".to_owned())]).snapshot();
        snap.devices = vec![device(0, "cpu"), gpu, device(2, "llvmpipe")];
        snap.pool = Some("stratum+tcp://a-very-long-pool-name.example.com:3333".into());
        snap.connected = true;
        snap.best_share = 1234.5;
        let lines = status_lines(&snap, COLUMNS);
        assert_eq!(lines.len(), 4);
        for l in &lines {
            assert!(l.chars().count() <= COLUMNS, "{l}");
        }
        assert!(
            lines[0].starts_with("total 23.70 GH/s | A 0 R 0 S 0 |"),
            "{}",
            lines[0]
        );
        assert!(lines[0].contains("best 1234.5"), "{}", lines[0]);
        assert!(
            lines[2].contains("71C 300W fan 45% resting"),
            "{}",
            lines[2]
        );
        // One device: one line, the uptime kept whatever the pool's name.
        snap.devices.truncate(1);
        snap.solo = true;
        snap.best_share = 3.234e-4;
        snap.difficulty = Some(1e-5);
        let lines = status_lines(&snap, COLUMNS);
        assert_eq!(lines.len(), 1);
        assert!(
            lines[0].starts_with("cpu 7.90 GH/s | blocks 0 | best 3.23e-4 | diff 1.00e-5 | up "),
            "{}",
            lines[0]
        );
    }
}
