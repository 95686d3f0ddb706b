//! `wgminer bench --plot FILE.svg` as a user runs it: a real CPU benchmark draws a valid SVG
//! chart with a line per device, `--json` gains per-device samples, and a file the chart cannot
//! be written as (another format, an unwritable place) is a clear error.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn wgminer(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wgminer"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("the wgminer binary runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A fresh directory for one test's files.
fn scratch(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("wgminer-bench-plot-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn path_arg(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 temp path")
}

/// Points of a `polyline`'s `points` attribute.
fn points(node: roxmltree::Node) -> Vec<(f64, f64)> {
    node.attribute("points")
        .expect("points")
        .split_whitespace()
        .map(|xy| {
            let (x, y) = xy.split_once(',').expect("x,y");
            (x.parse().unwrap(), y.parse().unwrap())
        })
        .collect()
}

#[test]
fn cpu_bench_draws_a_valid_svg_chart() {
    let dir = scratch("svg");
    let file = dir.join("x.svg");
    let out = wgminer(&[
        "bench",
        "--backend",
        "cpu",
        "-t",
        "1",
        "-s",
        "1.5",
        "--plot",
        path_arg(&file),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    // The table is still printed.
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("H/s"), "{table}");

    let text = std::fs::read_to_string(&file).expect("the plot was written");
    let doc = roxmltree::Document::parse(&text).expect("the plot is well-formed XML");
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "svg");
    assert_eq!(
        root.tag_name().namespace(),
        Some("http://www.w3.org/2000/svg")
    );
    let view_box: Vec<f64> = root
        .attribute("viewBox")
        .expect("viewBox")
        .split_whitespace()
        .map(|v| v.parse().unwrap())
        .collect();
    assert_eq!(view_box.len(), 4);
    let (w, h) = (view_box[2], view_box[3]);

    // One device: one line (no total), with a point for every ~0.25 s, all inside the picture.
    let lines: Vec<_> = root
        .descendants()
        .filter(|n| n.has_tag_name("polyline") || n.has_tag_name("path"))
        .collect();
    assert_eq!(lines.len(), 1, "{text}");
    let line = lines[0];
    assert_eq!(line.attribute("class"), Some("series"));
    let label = line
        .attribute("data-label")
        .expect("the line names its device");
    assert!(label.starts_with("cpu"), "{label}");
    let pts = points(line);
    assert!(pts.len() >= 3, "{pts:?}");
    assert!(
        pts.iter()
            .all(|&(x, y)| (0.0..=w).contains(&x) && (0.0..=h).contains(&y)),
        "{pts:?}"
    );
    // Time runs left to right.
    assert!(pts.windows(2).all(|p| p[0].0 < p[1].0), "{pts:?}");

    // The legend names the device and its rate.
    let legend = root
        .descendants()
        .find(|n| n.attribute("class") == Some("legend"))
        .expect("a legend");
    let legend_text: String = legend
        .descendants()
        .filter_map(|n| n.text())
        .collect::<Vec<_>>()
        .join(" ");
    assert!(legend_text.contains("cpu ·"), "{legend_text}");
    assert!(legend_text.contains("1 threads"), "{legend_text}");
    assert!(legend_text.contains("H/s"), "{legend_text}");
    // The title says what and when.
    let all_text: String = root
        .descendants()
        .filter_map(|n| n.text())
        .collect::<Vec<_>>()
        .join(" ");
    assert!(all_text.contains("hash rate over time"), "{all_text}");
    assert!(all_text.contains("UTC"), "{all_text}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn json_gains_samples_and_keeps_its_fields() {
    let dir = scratch("json");
    let file = dir.join("rate.SVG");
    let out = wgminer(&[
        "bench",
        "--backend",
        "cpu",
        "-t",
        "1",
        "-s",
        "1",
        "--json",
        "--plot",
        path_arg(&file),
        "--plot-interval",
        "0.2",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    let device = &json["devices"][0];
    for field in [
        "backend",
        "kind",
        "name",
        "detail",
        "hashes",
        "seconds",
        "hashes_per_second",
    ] {
        assert!(!device[field].is_null(), "{field} in {device}");
    }
    let samples = device["samples"].as_array().expect("a samples array");
    assert!(samples.len() >= 5, "{samples:?}");
    let mut last_t = 0.0;
    for s in samples {
        let t = s["seconds"].as_f64().unwrap();
        assert!(t > last_t, "{samples:?}");
        last_t = t;
        assert!(s["hashes_per_second"].as_f64().unwrap() > 0.0, "{s}");
    }
    // The last sample is the end of the run, with every hash.
    assert_eq!(samples.last().unwrap()["hashes"], device["hashes"]);
    assert!((last_t - device["seconds"].as_f64().unwrap()).abs() < 1e-9);
    assert!(file.exists(), "an upper-case .SVG is an SVG too");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn other_formats_are_refused_before_the_bench_runs() {
    let dir = scratch("ext");
    for name in ["x.png", "x.pdf", "x", "x.svg.txt"] {
        let file = dir.join(name);
        let started = std::time::Instant::now();
        let out = wgminer(&["bench", "-t", "1", "-s", "30", "--plot", path_arg(&file)]);
        assert_eq!(out.status.code(), Some(2), "{name}: {}", stderr(&out));
        assert!(
            started.elapsed().as_secs() < 20,
            "{name}: refused only after the bench"
        );
        let err = stderr(&out);
        assert!(
            err.contains("error") && err.contains(".svg"),
            "{name}: {err}"
        );
        assert!(!err.contains("panicked"), "{name}: {err}");
        if name.ends_with("png") {
            assert!(err.contains("PNG"), "{err}");
        }
        assert!(!file.exists());
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_unwritable_plot_is_an_error_after_the_results() {
    let dir = scratch("unwritable");
    let not_a_dir = dir.join("file");
    std::fs::write(&not_a_dir, "x").unwrap();
    let under_a_file = not_a_dir.join("x.svg");
    for target in [PathBuf::from("/proc/x.svg"), under_a_file] {
        let out = wgminer(&[
            "bench",
            "--backend",
            "cpu",
            "-t",
            "1",
            "-s",
            "0.3",
            "--plot",
            path_arg(&target),
        ]);
        assert_eq!(out.status.code(), Some(1), "{target:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(err.contains(path_arg(&target)), "{err}");
        assert!(!err.contains("panicked"), "{err}");
        // The benchmark's figures come first all the same.
        let table = String::from_utf8_lossy(&out.stdout);
        assert!(table.contains("H/s"), "{target:?}: {table}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
