//! Hash rate over time as a standalone SVG chart (`wgminer bench --plot FILE.svg`): written by
//! hand, no plotting dependency. A linear rate axis from zero with "nice" ticks in one SI unit
//! (H/s … PH/s), a line per device, a dashed total when there is more than one, and a legend
//! under the plot that gives every series' mean rate, so a CPU drawn flat beside a GPU still
//! reads.

use std::fmt::Write as _;

use crate::bench::format_rate;

/// One line of the chart.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Series {
    /// Legend text (any characters: it is escaped).
    pub label: String,
    /// `(seconds, hashes per second)`, in increasing time: each rate is the one over the
    /// interval that ends at its time (as [`crate::bench::rate_samples`] gives them).
    pub points: Vec<(f64, f64)>,
}

/// Line colours (Tableau 10): distinct, and readable on white.
const PALETTE: [&str; 10] = [
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
    "#9c755f", "#bab0ac",
];
const TOTAL_COLOUR: &str = "#333333";
const FONT: &str = "system-ui, -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif";

const WIDTH: f64 = 820.0;
const LEFT: f64 = 76.0;
const RIGHT: f64 = 28.0;
const PLOT_HEIGHT: f64 = 300.0;
const LEGEND_ROW: f64 = 20.0;
/// Legend labels longer than this are cut (with "…").
const LABEL_CHARS: usize = 84;

/// The chart as an SVG document. `title`'s first line is the heading; any further lines (split
/// on `\n`) are a smaller subtitle (the machine, the date). Series without points get a legend
/// row and no line; a one-point series is drawn as a dot.
pub fn rate_chart_svg(series: &[Series], title: &str) -> String {
    // Only finite points with a non-negative rate are drawn.
    let series: Vec<Series> = series
        .iter()
        .map(|s| Series {
            label: s.label.clone(),
            points: s
                .points
                .iter()
                .copied()
                .filter(|(t, r)| t.is_finite() && r.is_finite() && *r >= 0.0)
                .collect(),
        })
        .collect();
    let total = (series.len() > 1).then(|| total_series(&series));
    let drawn: Vec<&Series> = series.iter().chain(total.as_ref()).collect();
    let all_points = || drawn.iter().flat_map(|s| s.points.iter().copied());

    // Axes: time from 0 (or an earlier first point) to the last point; rate from 0 to a nice
    // value just above the highest.
    let t_min = all_points().map(|p| p.0).fold(0.0f64, f64::min);
    let t_max = all_points().map(|p| p.0).fold(t_min, f64::max);
    let t_span = if t_max > t_min { t_max - t_min } else { 1.0 };
    let r_max = all_points().map(|p| p.1).fold(0.0f64, f64::max);
    let r_axis = rate_axis(r_max);

    let mut lines = title.lines().map(str::trim).filter(|l| !l.is_empty());
    let heading = lines.next().unwrap_or("hash rate");
    let subtitles: Vec<&str> = lines.collect();
    let top = 34.0 + 18.0 * subtitles.len() as f64 + 14.0;
    let plot_w = WIDTH - LEFT - RIGHT;
    let bottom = top + PLOT_HEIGHT;
    let legend_top = bottom + 56.0;
    let height = legend_top + LEGEND_ROW * drawn.len().max(1) as f64 + 8.0;
    let x = |t: f64| LEFT + (t - t_min) / t_span * plot_w;
    let y = |r: f64| bottom - r / r_axis.top * PLOT_HEIGHT;

    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="{FONT}" font-size="12">"#,
        w = WIDTH,
        h = height
    );
    let _ = writeln!(
        svg,
        "<title>{}</title>",
        escape(&title.replace('\n', " · "))
    );
    let _ = writeln!(
        svg,
        r##"<rect width="100%" height="100%" fill="#ffffff"/>"##
    );
    let _ = writeln!(
        svg,
        r##"<text x="{LEFT}" y="28" font-size="16" font-weight="bold" fill="#222222">{}</text>"##,
        escape(heading)
    );
    for (i, line) in subtitles.iter().enumerate() {
        let _ = writeln!(
            svg,
            r##"<text x="{LEFT}" y="{}" fill="#666666">{}</text>"##,
            48.0 + 18.0 * i as f64,
            escape(line)
        );
    }

    // Rate grid and ticks.
    let _ = writeln!(svg, r#"<g class="y-axis">"#);
    for &v in &r_axis.ticks {
        let yy = y(v);
        let _ = writeln!(
            svg,
            r##"<line x1="{LEFT}" y1="{yy:.1}" x2="{:.1}" y2="{yy:.1}" stroke="{}" stroke-width="1"/>"##,
            LEFT + plot_w,
            if v == 0.0 { "#888888" } else { "#e6e6e6" }
        );
        let _ = writeln!(
            svg,
            r##"<text x="{:.1}" y="{:.1}" text-anchor="end" fill="#444444">{}</text>"##,
            LEFT - 8.0,
            yy + 4.0,
            r_axis.label(v)
        );
    }
    let _ = writeln!(
        svg,
        r##"<text transform="translate(18 {:.1}) rotate(-90)" text-anchor="middle" fill="#444444">hash rate ({})</text>"##,
        top + PLOT_HEIGHT / 2.0,
        r_axis.unit
    );
    let _ = writeln!(svg, "</g>");

    // Time ticks.
    let t_step = nice_step(t_span / 6.0);
    let _ = writeln!(svg, r#"<g class="x-axis">"#);
    let _ = writeln!(
        svg,
        r##"<line x1="{LEFT}" y1="{top:.1}" x2="{LEFT}" y2="{bottom:.1}" stroke="#888888" stroke-width="1"/>"##
    );
    let decimals = decimals_for(t_step);
    let first = (t_min / t_step).ceil() as i64;
    let mut k = first;
    while (k as f64) * t_step <= t_min + t_span * (1.0 + 1e-9) && k - first < 100 {
        let t = k as f64 * t_step;
        let xx = x(t);
        let _ = writeln!(
            svg,
            r##"<line x1="{xx:.1}" y1="{bottom:.1}" x2="{xx:.1}" y2="{:.1}" stroke="#888888" stroke-width="1"/>"##,
            bottom + 5.0
        );
        let _ = writeln!(
            svg,
            r##"<text x="{xx:.1}" y="{:.1}" text-anchor="middle" fill="#444444">{t:.decimals$}</text>"##,
            bottom + 19.0
        );
        k += 1;
    }
    let _ = writeln!(
        svg,
        r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" fill="#444444">time (s)</text>"##,
        LEFT + plot_w / 2.0,
        bottom + 38.0
    );
    let _ = writeln!(svg, "</g>");

    // The lines: devices first, the total last (on top).
    for (i, s) in drawn.iter().enumerate() {
        let is_total = total.is_some() && i == drawn.len() - 1;
        let colour = if is_total {
            TOTAL_COLOUR
        } else {
            PALETTE[i % PALETTE.len()]
        };
        if s.points.is_empty() {
            continue;
        }
        let pts: Vec<String> = s
            .points
            .iter()
            .map(|&(t, r)| format!("{:.1},{:.1}", x(t), y(r)))
            .collect();
        let _ = writeln!(
            svg,
            r#"<polyline class="{}" data-label="{}" fill="none" stroke="{colour}" stroke-width="{}"{} stroke-linejoin="round" stroke-linecap="round" points="{}"><title>{}</title></polyline>"#,
            if is_total { "total" } else { "series" },
            escape(&s.label),
            if is_total { "1.5" } else { "2" },
            if is_total {
                r#" stroke-dasharray="6 4""#
            } else {
                ""
            },
            pts.join(" "),
            escape(&s.label)
        );
        if s.points.len() == 1 {
            let (t, r) = s.points[0];
            let _ = writeln!(
                svg,
                r#"<circle cx="{:.1}" cy="{:.1}" r="3.5" fill="{colour}"/>"#,
                x(t),
                y(r)
            );
        }
    }

    // A line that stays under 5 % of the axis (a CPU beside GPUs) gets its mean written just
    // above its right end, so it reads without the legend.
    let mut stacked = 0.0;
    for (i, s) in series.iter().enumerate() {
        let (Some(&(t_end, _)), Some(mean)) = (s.points.last(), mean_rate(&s.points)) else {
            continue;
        };
        let peak = s.points.iter().map(|p| p.1).fold(0.0, f64::max);
        if peak >= 0.05 * r_axis.top || r_max <= 0.0 {
            continue;
        }
        let name = s.label.split_whitespace().next().unwrap_or("");
        let _ = writeln!(
            svg,
            r#"<text class="flat-label" x="{:.1}" y="{:.1}" text-anchor="end" font-size="11" fill="{}">{}</text>"#,
            x(t_end).min(LEFT + plot_w),
            y(peak) - 5.0 - stacked,
            PALETTE[i % PALETTE.len()],
            escape(&format!("{name} {}", format_rate(mean)))
        );
        stacked += 13.0;
    }

    // Legend: swatch, label, mean rate (time-weighted: the run's rate when the points come from
    // rate_samples).
    let _ = writeln!(svg, r#"<g class="legend">"#);
    for (i, s) in drawn.iter().enumerate() {
        let is_total = total.is_some() && i == drawn.len() - 1;
        let colour = if is_total {
            TOTAL_COLOUR
        } else {
            PALETTE[i % PALETTE.len()]
        };
        let yy = legend_top + LEGEND_ROW * i as f64;
        let _ = writeln!(
            svg,
            r#"<line x1="{LEFT}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="{colour}" stroke-width="{}"{}/>"#,
            yy - 4.0,
            LEFT + 22.0,
            yy - 4.0,
            if is_total { "2" } else { "3" },
            if is_total {
                r#" stroke-dasharray="6 4""#
            } else {
                ""
            }
        );
        let _ = writeln!(
            svg,
            r##"<text x="{:.1}" y="{yy:.1}" fill="#222222">{}</text>"##,
            LEFT + 30.0,
            escape(&shorten(&s.label, LABEL_CHARS))
        );
        let mean = match mean_rate(&s.points) {
            Some(m) => format!("mean {}", format_rate(m)),
            None => "no samples".to_string(),
        };
        let _ = writeln!(
            svg,
            r##"<text x="{:.1}" y="{yy:.1}" text-anchor="end" fill="#222222">{}</text>"##,
            LEFT + plot_w,
            escape(&mean)
        );
    }
    let _ = writeln!(svg, "</g>");
    svg.push_str("</svg>\n");
    svg
}

/// The sum of every series at the times of the one with the most points (devices sampled on
/// the same grid line up exactly). Each series counts with its rate interpolated between its
/// points, held flat up to one spacing beyond its ends (devices stop a few milliseconds apart),
/// and zero further out.
fn total_series(series: &[Series]) -> Series {
    let base = series
        .iter()
        .max_by_key(|s| s.points.len())
        .map_or(&[][..], |s| &s.points[..]);
    let points = base
        .iter()
        .map(|p| p.0)
        .map(|t| (t, series.iter().map(|s| rate_at(&s.points, t)).sum()))
        .collect();
    Series {
        label: "total".into(),
        points,
    }
}

fn rate_at(points: &[(f64, f64)], t: f64) -> f64 {
    let (Some(&(t0, r0)), Some(&(t1, r1))) = (points.first(), points.last()) else {
        return 0.0;
    };
    let spacing = if points.len() > 1 {
        (t1 - t0) / (points.len() - 1) as f64
    } else {
        0.0
    };
    if t < t0 {
        return if t0 - t <= spacing { r0 } else { 0.0 };
    }
    if t > t1 {
        return if t - t1 <= spacing { r1 } else { 0.0 };
    }
    let i = points.partition_point(|p| p.0 < t);
    let (ta, ra) = points[i.saturating_sub(1)];
    let (tb, rb) = points[i];
    if tb > ta {
        ra + (rb - ra) * (t - ta) / (tb - ta)
    } else {
        rb
    }
}

/// Time-weighted mean: each rate counts for the time since the previous point (the first for
/// the time since 0, or as a plain value when it is the only point at or before 0).
fn mean_rate(points: &[(f64, f64)]) -> Option<f64> {
    let (mut prev, mut sum, mut weight) = (0.0f64, 0.0, 0.0);
    for &(t, r) in points {
        let dt = t - prev;
        if dt > 0.0 {
            sum += r * dt;
            weight += dt;
        }
        prev = t;
    }
    if weight > 0.0 {
        Some(sum / weight)
    } else {
        points.iter().map(|p| p.1).reduce(f64::max)
    }
}

/// The rate axis: its top, ticks, and the one unit every tick is written in.
struct RateAxis {
    top: f64,
    ticks: Vec<f64>,
    unit: &'static str,
    divisor: f64,
    decimals: usize,
}

impl RateAxis {
    fn label(&self, v: f64) -> String {
        format!("{:.*}", self.decimals, v / self.divisor)
    }
}

/// 0 to a nice value at or just above `max` (1 H/s when everything is zero), four to seven ticks.
fn rate_axis(max: f64) -> RateAxis {
    const UNITS: [&str; 6] = ["H/s", "kH/s", "MH/s", "GH/s", "TH/s", "PH/s"];
    let max = if max > 0.0 && max.is_finite() {
        max
    } else {
        1.0
    };
    let step = nice_step(max / 5.0);
    let top = ((max / step) - 1e-9).ceil().max(1.0) * step;
    let n = (top / step).round() as usize;
    let ticks = (0..=n).map(|k| k as f64 * step).collect();
    let mut i = 0;
    while top / 1000f64.powi(i as i32) >= 1000.0 && i < UNITS.len() - 1 {
        i += 1;
    }
    let divisor = 1000f64.powi(i as i32);
    RateAxis {
        top,
        ticks,
        unit: UNITS[i],
        divisor,
        decimals: decimals_for(step / divisor),
    }
}

/// The smallest of 1, 2, 2.5, 5 × 10^k that is at least `raw` (positive).
pub fn nice_step(raw: f64) -> f64 {
    if !(raw.is_finite() && raw > 0.0) {
        return 1.0;
    }
    let mag = 10f64.powf(raw.log10().floor());
    let norm = raw / mag;
    let m = [1.0, 2.0, 2.5, 5.0, 10.0]
        .into_iter()
        .find(|&m| m >= norm * (1.0 - 1e-9))
        .unwrap_or(10.0);
    m * mag
}

/// How many decimals print multiples of `step` exactly (0 for 5, 1 for 2.5 or 0.5, 2 for 0.25).
fn decimals_for(step: f64) -> usize {
    (0..=6)
        .find(|&d| {
            let scaled = step * 10f64.powi(d as i32);
            (scaled - scaled.round()).abs() < 1e-6 * scaled.max(1.0)
        })
        .unwrap_or(6)
}

fn shorten(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        s.chars().take(n - 1).chain(std::iter::once('…')).collect()
    }
}

/// Text for SVG text and attribute values; control characters XML does not allow are dropped.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(' '),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}

/// `2026-08-10 14:03 UTC` for a Unix time in seconds (no time-zone database needed).
pub fn utc_timestamp(unix_seconds: u64) -> String {
    let days = (unix_seconds / 86_400) as i64;
    let secs = unix_seconds % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        secs / 3600,
        secs % 3600 / 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(label: &str, points: &[(f64, f64)]) -> Series {
        Series {
            label: label.into(),
            points: points.to_vec(),
        }
    }

    fn polylines(svg: &str) -> Vec<&str> {
        svg.split("<polyline").skip(1).collect()
    }

    #[test]
    fn nice_steps() {
        assert_eq!(nice_step(1.0), 1.0);
        assert_eq!(nice_step(1.3), 2.0);
        assert_eq!(nice_step(2.2), 2.5);
        assert_eq!(nice_step(3.0), 5.0);
        assert_eq!(nice_step(7.0), 10.0);
        assert!((nice_step(0.03) - 0.05).abs() < 1e-12);
        assert_eq!(nice_step(4_100_000.0), 5_000_000.0);
        assert_eq!(nice_step(0.0), 1.0);
        assert_eq!(nice_step(f64::NAN), 1.0);
    }

    #[test]
    fn rate_axis_is_nice_and_in_one_unit() {
        let a = rate_axis(23_400_000.0);
        assert_eq!(a.unit, "MH/s");
        assert_eq!(a.top, 25_000_000.0);
        let labels: Vec<String> = a.ticks.iter().map(|&v| a.label(v)).collect();
        assert_eq!(labels, ["0", "5", "10", "15", "20", "25"]);

        let a = rate_axis(7.9e9);
        assert_eq!(a.unit, "GH/s");
        assert_eq!(a.top, 8e9);
        assert_eq!(a.label(a.ticks[1]), "2");

        let a = rate_axis(1100.0);
        assert_eq!(a.unit, "kH/s");
        assert_eq!(a.label(a.ticks[1]), "0.25");

        // Everything zero: still an axis.
        let a = rate_axis(0.0);
        assert_eq!((a.top, a.unit), (1.0, "H/s"));
        assert_eq!(a.ticks.len(), 6);
        assert_eq!(a.label(a.ticks[1]), "0.2");
    }

    #[test]
    fn decimals() {
        assert_eq!(decimals_for(5.0), 0);
        assert_eq!(decimals_for(2.5), 1);
        assert_eq!(decimals_for(0.25), 2);
        assert_eq!(decimals_for(0.001), 3);
    }

    #[test]
    fn text_is_escaped() {
        assert_eq!(
            escape(r#"A&B <gpu> "x" 'y'"#),
            "A&amp;B &lt;gpu&gt; &quot;x&quot; &apos;y&apos;"
        );
        assert_eq!(escape("a\u{1}b\nc"), "ab c");
        let svg = rate_chart_svg(
            &[series("R&D <fast> \"gpu\"", &[(0.5, 10.0), (1.0, 12.0)])],
            "t<i>tle & co",
        );
        assert!(svg.contains("R&amp;D &lt;fast&gt; &quot;gpu&quot;"));
        assert!(svg.contains("t&lt;i&gt;tle &amp; co"));
        assert!(!svg.contains("<fast>") && !svg.contains("<i>"));
    }

    #[test]
    fn standalone_svg_with_a_line_per_series_and_a_total() {
        let svg = rate_chart_svg(
            &[
                series("gpu1 big", &[(0.25, 7.9e9), (0.5, 7.8e9), (0.75, 7.9e9)]),
                series("cpu small", &[(0.25, 2.0e7), (0.5, 2.1e7), (0.75, 2.0e7)]),
            ],
            "wgminer bench\nhost · date",
        );
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        assert!(svg.contains("viewBox=\"0 0 "));
        assert!(svg.trim_end().ends_with("</svg>"));
        let lines = polylines(&svg);
        assert_eq!(lines.len(), 3);
        assert!(lines[0].contains("class=\"series\"") && lines[0].contains("gpu1 big"));
        assert!(lines[2].contains("class=\"total\""));
        // The legend still gives the small series' rate.
        assert!(svg.contains("mean 20.33 MH/s"), "{svg}");
        assert!(svg.contains("GH/s"));
        assert!(svg.contains("host · date"));
    }

    #[test]
    fn one_device_has_no_total() {
        let svg = rate_chart_svg(&[series("cpu", &[(1.0, 5.0), (2.0, 6.0)])], "t");
        assert_eq!(polylines(&svg).len(), 1);
        assert!(!svg.contains("class=\"total\""));
    }

    #[test]
    fn empty_one_point_and_zero_series() {
        // No series at all, and a series with no points: a chart, a legend row, no line.
        let svg = rate_chart_svg(&[], "");
        assert!(svg.contains("</svg>") && polylines(&svg).is_empty());
        let svg = rate_chart_svg(&[series("idle", &[])], "t");
        assert!(polylines(&svg).is_empty());
        assert!(svg.contains("no samples"));
        // One point: a dot as well as the (one-point) line.
        let svg = rate_chart_svg(&[series("once", &[(0.3, 1e6)])], "t");
        assert_eq!(polylines(&svg).len(), 1);
        assert!(svg.contains("<circle"));
        assert!(svg.contains("mean 1.00 MH/s"));
        // All zero: drawn on the zero line, nothing NaN.
        let svg = rate_chart_svg(&[series("zero", &[(0.5, 0.0), (1.0, 0.0)])], "t");
        assert!(!svg.contains("NaN") && !svg.contains("inf"));
        assert!(svg.contains("mean 0.00 H/s"));
        // Non-finite points are dropped.
        let svg = rate_chart_svg(
            &[series("bad", &[(f64::NAN, 1.0), (1.0, f64::INFINITY)])],
            "t",
        );
        assert!(!svg.contains("NaN") && polylines(&svg).is_empty());
    }

    #[test]
    fn total_sums_devices_that_stop_apart() {
        let a = series("a", &[(0.25, 10.0), (0.5, 10.0), (0.51, 10.0)]);
        let b = series("b", &[(0.25, 5.0), (0.5, 5.0), (0.53, 5.0)]);
        let t = total_series(&[a, b]);
        assert!(
            t.points.iter().all(|&(_, r)| (r - 15.0).abs() < 1e-9),
            "{t:?}"
        );
    }

    #[test]
    fn mean_is_time_weighted() {
        assert_eq!(mean_rate(&[(1.0, 10.0), (1.5, 20.0)]), Some(40.0 / 3.0));
        assert_eq!(mean_rate(&[]), None);
    }

    #[test]
    fn utc_dates() {
        assert_eq!(utc_timestamp(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc_timestamp(951_782_400), "2000-02-29 00:00 UTC");
        assert_eq!(utc_timestamp(1_700_000_000), "2023-11-14 22:13 UTC");
    }
}
