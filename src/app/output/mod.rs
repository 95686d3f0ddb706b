//! All that a run shows, in one place: how ([`OutputMode`]: a status line redrawn every second
//! on a terminal, plain log lines otherwise, or one JSON object per line with `--json-log`),
//! one event at a time ([`show`]), and every write to stdout/stderr ([`write_to`]), which turns
//! a closed pipe into a quiet stop instead of a panic in `println!`. Every text line starts
//! with the same UTC timestamp ([`timestamp`]), tracing's warnings included ([`logging`]), and
//! goes to `--log-file` too, without colour.

mod events;
pub mod logging;
mod style;

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use wgminer::text::printable;
use wgminer::work::StatsSnapshot;

pub use events::{format_difficulty, render, status_text, Look};
pub use logging::{log_file_line, timestamp};
pub use style::{colour_wanted, Paint};

/// How a run is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputMode {
    /// A status line on stderr, redrawn every second.
    Terminal,
    /// Text lines on stdout.
    Log,
    /// JSON lines on stdout.
    Json,
}

impl OutputMode {
    /// JSON when asked for, else a status line for a person at a terminal, else log lines.
    pub fn choose(json_log: bool) -> Self {
        if json_log {
            OutputMode::Json
        } else if std::io::stderr().is_terminal() {
            OutputMode::Terminal
        } else {
            OutputMode::Log
        }
    }
}

/// The last line of a run: the final counters and the best share (the status lines are
/// cleared by the display as it ends).
pub fn show_exit(mode: OutputMode, snap: &StatsSnapshot, summary: &str) {
    let best = if snap.best_share > 0.0 {
        format!("; best share {}", format_difficulty(snap.best_share))
    } else {
        String::new()
    };
    show(
        mode,
        &serde_json::json!({"event": "exit", "status": snap}),
        &format!("stopped: {summary}{best}"),
    );
}

/// Print one event: text (stdout for logs, stderr above the status line on a terminal) or JSON.
pub fn show(mode: OutputMode, json: &serde_json::Value, text: &str) {
    show_painted(mode, json, text, Paint::None);
}

/// [`show`], the text painted on a terminal (the caller says whether colour is on).
pub fn show_painted(mode: OutputMode, json: &serde_json::Value, text: &str, paint: Paint) {
    let text = format!(
        "{} {}",
        timestamp(std::time::SystemTime::now()),
        printable(text)
    );
    log_file_line(&text);
    match mode {
        OutputMode::Json => write_to(Stream::Out, &format!("{json}\n")),
        OutputMode::Log => write_to(Stream::Out, &format!("{text}\n")),
        OutputMode::Terminal => write_to(Stream::Err, &format!("\r\x1b[2K{}\n", paint.wrap(&text))),
    }
}

/// How many status lines are on the terminal now (0: none); whoever prints a line there
/// (the display, tracing's warnings) takes them off first, so none is left stale above it.
pub static STATUS_LINES: AtomicUsize = AtomicUsize::new(0);

/// The escape sequence that erases the status lines now on the terminal ("" when there are
/// none), leaving the cursor at the start of the first; they count as gone from then on.
pub fn take_status_lines() -> String {
    let n = STATUS_LINES.swap(0, Ordering::Relaxed);
    if n == 0 {
        return String::new();
    }
    let mut seq = String::from("\r\x1b[2K");
    for _ in 1..n {
        seq.push_str("\x1b[1A\x1b[2K");
    }
    seq
}

/// Where a line goes.
#[derive(Clone, Copy)]
pub enum Stream {
    Out,
    Err,
}

/// Set once output cannot be written any more (`wgminer … | head -1` closed the pipe): the run
/// then ends as on Ctrl-C, submitting what was found, instead of panicking in `println!` or
/// mining on unseen.
static OUTPUT_CLOSED: AtomicBool = AtomicBool::new(false);

fn output_closed_notify() -> &'static tokio::sync::Notify {
    static NOTIFY: std::sync::OnceLock<tokio::sync::Notify> = std::sync::OnceLock::new();
    NOTIFY.get_or_init(tokio::sync::Notify::new)
}

/// Write `text` and flush; a failure (a closed pipe or terminal) stops the run once, quietly.
/// Every command writes its stdout through here (`wgminer devices | head -1` must not panic
/// in `println!`); outside a run nothing waits for the stop, and the command just ends.
pub fn write_to(stream: Stream, text: &str) {
    if OUTPUT_CLOSED.load(Ordering::Relaxed) {
        return;
    }
    let written = match stream {
        Stream::Out => {
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes()).and_then(|()| out.flush())
        }
        Stream::Err => {
            let mut err = std::io::stderr().lock();
            err.write_all(text.as_bytes()).and_then(|()| err.flush())
        }
    };
    if written.is_err() && !OUTPUT_CLOSED.swap(true, Ordering::Relaxed) {
        tracing::info!("output closed: stopping");
        output_closed_notify().notify_waiters();
    }
}

/// Resolves once output cannot be written any more.
pub async fn output_closed() {
    let notify = output_closed_notify();
    loop {
        let notified = notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if OUTPUT_CLOSED.load(Ordering::Relaxed) {
            return;
        }
        notified.await;
    }
}

/// `s` cut to `n` characters, the last one an ellipsis when cut (table columns).
pub fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        s.chars().take(n - 1).chain(std::iter::once('…')).collect()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn erasing_the_status_takes_every_line_off_once() {
        use std::sync::atomic::Ordering;
        super::STATUS_LINES.store(3, Ordering::Relaxed);
        assert_eq!(
            super::take_status_lines(),
            "\r\x1b[2K\x1b[1A\x1b[2K\x1b[1A\x1b[2K"
        );
        assert_eq!(super::take_status_lines(), "", "already gone");
    }

    #[test]
    fn peer_text_cannot_drive_the_terminal() {
        assert_eq!(
            super::printable("pool says: \x1b[2J\x1b[31mred\x07\r\nnext"),
            "pool says: ?[2J?[31mred???next"
        );
        assert_eq!(
            super::printable("plain text, ünïcode"),
            "plain text, ünïcode"
        );
        let long = "x".repeat(2000);
        assert_eq!(super::printable(&long).chars().count(), 501);
    }
}
