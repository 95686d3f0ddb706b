//! One log format for everything: `2026-11-27T15:43:12Z text` for the run's lines and
//! `2026-11-27T15:43:12Z WARN text` for tracing's, on the terminal, in pipes and in
//! `--log-file` (appended, never coloured).

use std::fmt;
use std::io::Write;
use std::sync::{Mutex, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt as _;

/// `t` as ISO 8601 UTC to the second, `2026-11-27T15:43:12Z` (no time-zone database needed,
/// and log lines from several machines sort together).
pub fn timestamp(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// Days since 1970-01-01 as (year, month, day): Howard Hinnant's `civil_from_days`.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

static LOG_FILE: OnceLock<Mutex<std::fs::File>> = OnceLock::new();

/// Append every line of the run to `path` from now on.
pub fn open_log_file(path: &std::path::Path) -> std::io::Result<()> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    // Set once, before anything logs: a second call keeps the first file.
    let _ = LOG_FILE.set(Mutex::new(file));
    Ok(())
}

/// Write one finished line (timestamp included) to the log file, if there is one. A failed
/// write is not worth stopping the run for: mining goes on, shown on the terminal.
pub fn log_file_line(line: &str) {
    if let Some(file) = LOG_FILE.get() {
        if let Ok(mut f) = file.lock() {
            let _ = writeln!(f, "{line}");
        }
    }
}

/// tracing's lines in our format: timestamp, level, message and fields.
struct LineFormat {
    /// On a terminal: erase the status lines first.
    clear_line: bool,
}

impl<S, N> FormatEvent<S, N> for LineFormat
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> fmt::Result {
        if self.clear_line {
            // Above the status lines, which the display draws again within a second.
            write!(writer, "{}", super::take_status_lines())?;
        }
        let level = event.metadata().level();
        write!(writer, "{} {level} ", timestamp(SystemTime::now()))?;
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

/// The log file as tracing's writer.
struct FileWriter;

impl Write for FileWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Some(file) = LOG_FILE.get() {
            if let Ok(mut f) = file.lock() {
                f.write_all(buf)?;
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// tracing's lines on stderr (and in the log file): `level` is the filter (`--log-level`,
/// else `WGMINER_LOG`, else the config file's, else warn).
pub fn init(level: &str) {
    let filter = || {
        tracing_subscriber::EnvFilter::try_new(level)
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"))
    };
    let on_terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let stderr = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .event_format(LineFormat {
            clear_line: on_terminal,
        })
        .with_filter(filter());
    let file = LOG_FILE.get().map(|_| {
        tracing_subscriber::fmt::layer()
            .with_writer(|| FileWriter)
            .with_ansi(false)
            .event_format(LineFormat { clear_line: false })
            .with_filter(filter())
    });
    let _ = tracing_subscriber::registry()
        .with(stderr)
        .with(file)
        .try_init();
}

use tracing_subscriber::Layer as _;

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timestamps_are_iso_utc() {
        assert_eq!(timestamp(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let t = UNIX_EPOCH + Duration::from_secs(1_795_793_592);
        assert_eq!(timestamp(t), "2026-11-27T15:33:12Z");
        // A leap day.
        let t = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(timestamp(t), "2000-02-29T00:00:00Z");
    }
}
