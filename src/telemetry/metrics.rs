//! The Prometheus text exposition (format 0.0.4) of a [`StatsSnapshot`]. Metric names are
//! stable: dashboards depend on them (docs/API.md lists them).

use std::fmt::Write as _;

use crate::work::stats::SensorReading;
use crate::work::StatsSnapshot;

/// The `Content-Type` Prometheus expects for this format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Every metric, with HELP and TYPE lines.
pub fn render(snap: &StatsSnapshot, source: Option<&str>) -> String {
    let mut out = String::with_capacity(4096);
    let mut family = |name: &str, kind: &str, help: &str, samples: &[(String, f64)]| {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for (labels, value) in samples {
            let _ = writeln!(out, "{name}{labels} {}", number(*value));
        }
    };
    family(
        "wgminer_up",
        "gauge",
        "1 while wgminer runs.",
        &[(String::new(), 1.0)],
    );
    family(
        "wgminer_uptime_seconds",
        "gauge",
        "Seconds since mining started.",
        &[(String::new(), snap.uptime_s)],
    );
    let mut rates = Vec::new();
    for d in &snap.devices {
        for (window, value) in [("5s", d.rate_5s), ("1m", d.rate_60s), ("15m", d.rate_15m)] {
            rates.push((labels(&[("device", &d.label), ("window", window)]), value));
        }
    }
    family(
        "wgminer_hashrate_hashes_per_second",
        "gauge",
        "Hash rate per device, averaged over the window (5s, 1m, 15m).",
        &rates,
    );
    let per_device = |f: &dyn Fn(&crate::work::stats::DeviceSnapshot) -> f64| {
        snap.devices
            .iter()
            .map(|d| (labels(&[("device", &d.label)]), f(d)))
            .collect::<Vec<_>>()
    };
    family(
        "wgminer_hashes_total",
        "counter",
        "Nonces hashed per device.",
        &per_device(&|d| d.hashes as f64),
    );
    family(
        "wgminer_hardware_errors_total",
        "counter",
        "Hits a device reported that failed the CPU re-check.",
        &per_device(&|d| d.hardware_errors as f64),
    );
    family(
        "wgminer_solutions_total",
        "counter",
        "Verified hits per device (shares or blocks found, before the verdict).",
        &per_device(&|d| d.solutions as f64),
    );
    let results: Vec<(String, f64)> = [
        ("accepted", snap.accepted),
        ("rejected", snap.rejected),
        ("stale", snap.stale),
        ("unanswered", snap.unanswered),
    ]
    .iter()
    .map(|(r, v)| (labels(&[("result", r)]), *v as f64))
    .collect();
    family(
        "wgminer_shares_total",
        "counter",
        "Shares (pool) or blocks (solo) by final outcome; with the held and pending gauges they add up to the solutions.",
        &results,
    );
    let waiting: Vec<(String, f64)> = [("held", snap.held), ("pending", snap.pending)]
        .iter()
        .map(|(s, v)| (labels(&[("state", s)]), *v as f64))
        .collect();
    family(
        "wgminer_shares_waiting",
        "gauge",
        "Shares or blocks held while the pool is unreachable, or pending an answer.",
        &waiting,
    );
    let stale: Vec<(String, f64)> = snap
        .stale_reasons
        .iter()
        .map(|(r, n)| (labels(&[("reason", r)]), *n as f64))
        .collect();
    family(
        "wgminer_stale_total",
        "counter",
        "Stale shares or blocks by why they were not sent (or not answered in time).",
        &stale,
    );
    if let Some(l) = snap.latency {
        let q: Vec<(String, f64)> = [("0.5", l.median_ms), ("0.99", l.p99_ms), ("1", l.max_ms)]
            .iter()
            .map(|(q, ms)| (labels(&[("quantile", q)]), ms / 1e3))
            .collect();
        family(
            "wgminer_find_to_submit_seconds",
            "gauge",
            "Find-to-submit latency over recent solutions (from the start of the dispatch or slice that found each one).",
            &q,
        );
    }
    family(
        "wgminer_submitted_total",
        "counter",
        "Shares or blocks sent to the pool or node.",
        &[(String::new(), snap.submitted as f64)],
    );
    let reasons: Vec<(String, f64)> = snap
        .reject_reasons
        .iter()
        .map(|(r, n)| (labels(&[("reason", r)]), *n as f64))
        .collect();
    family(
        "wgminer_rejects_total",
        "counter",
        "Rejections by the pool's or node's reason.",
        &reasons,
    );
    family(
        "wgminer_blocks_total",
        "counter",
        "Blocks the node accepted (solo mining).",
        &[(String::new(), snap.blocks as f64)],
    );
    if let Some(d) = snap.difficulty {
        family(
            "wgminer_difficulty",
            "gauge",
            "Current share difficulty (pool) or block difficulty (solo).",
            &[(String::new(), d)],
        );
    }
    let booked: Vec<(String, f64)> = [
        ("accepted", snap.difficulty_accepted),
        ("rejected", snap.difficulty_rejected),
        ("stale", snap.difficulty_stale),
    ]
    .iter()
    .map(|(r, v)| (labels(&[("result", r)]), *v))
    .collect();
    family(
        "wgminer_share_difficulty_total",
        "counter",
        "Shares' difficulties summed by outcome (what a pool credits).",
        &booked,
    );
    family(
        "wgminer_best_share_difficulty",
        "gauge",
        "The highest difficulty a verified solution's hash reached since start.",
        &[(String::new(), snap.best_share)],
    );
    type Sensor = fn(&SensorReading) -> Option<f64>;
    let sensors: [(&str, &str, Sensor); 5] = [
        (
            "wgminer_gpu_temperature_celsius",
            "GPU die temperature (NVML).",
            |r| r.temperature_c.map(f64::from),
        ),
        (
            "wgminer_gpu_power_watts",
            "GPU board power draw (NVML).",
            |r| r.power_w,
        ),
        ("wgminer_gpu_sm_clock_mhz", "GPU SM clock (NVML).", |r| {
            r.sm_clock_mhz.map(f64::from)
        }),
        (
            "wgminer_gpu_fan_percent",
            "GPU fan speed, percent of maximum (NVML; absent on passively cooled GPUs).",
            |r| r.fan_percent.map(f64::from),
        ),
        (
            "wgminer_gpu_utilization_percent",
            "GPU busy time over the last sample period (NVML).",
            |r| r.utilization_percent.map(f64::from),
        ),
    ];
    for (name, help, read) in sensors {
        let samples: Vec<(String, f64)> = snap
            .devices
            .iter()
            .filter_map(|d| Some((labels(&[("device", &d.label)]), read(d.sensors.as_ref()?)?)))
            .collect();
        if !samples.is_empty() {
            family(name, "gauge", help, &samples);
        }
    }
    family(
        "wgminer_device_resting",
        "gauge",
        "1 while the temperature guard rests the device (--gpu-temp-limit).",
        &per_device(&|d| f64::from(u8::from(d.resting))),
    );
    let source = source.or(snap.pool.as_deref()).unwrap_or("");
    family(
        "wgminer_source_connected",
        "gauge",
        "1 when the current pool or node is connected.",
        &[(
            labels(&[("source", source)]),
            f64::from(u8::from(snap.connected)),
        )],
    );
    if let Some(ms) = snap.last_switch_ms {
        family(
            "wgminer_job_switch_seconds",
            "gauge",
            "How long the last clean job took to reach every device.",
            &[(String::new(), ms / 1e3)],
        );
    }
    out
}

/// `{k="v",…}` with Prometheus escaping (backslash, quote, newline).
fn labels(pairs: &[(&str, &str)]) -> String {
    let inner: Vec<String> = pairs
        .iter()
        .map(|(k, v)| {
            let v = v
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n");
            format!("{k}=\"{v}\"")
        })
        .collect();
    format!("{{{}}}", inner.join(","))
}

fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(
            labels(&[("reason", "bad \"share\"\\\nx")]),
            r#"{reason="bad \"share\"\\\nx"}"#
        );
        assert_eq!(number(f64::NAN), "NaN");
        assert_eq!(number(f64::INFINITY), "+Inf");
        assert_eq!(number(2.5), "2.5");
    }
}
