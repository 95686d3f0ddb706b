//! The monitoring API over real HTTP on 127.0.0.1, served by the real binary while it mines on
//! the embedded node core: every endpoint, the bearer token, and /metrics parsed by a real
//! Prometheus text-format parser (the prometheus-parse crate).

use crate::support::miner;
use crate::support::solo;
use crate::support::wait::wait_until;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use miner::Miner;
use serde_json::Value;
use solo::TempDir;

/// One HTTP request; (status, headers+body text split).
fn request(addr: &str, method: &str, path: &str, token: Option<&str>) -> (u16, String, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, head.to_owned(), body.to_owned())
}

fn get_json(addr: &str, path: &str, token: Option<&str>) -> Value {
    let (status, head, body) = request(addr, "GET", path, token);
    assert_eq!(status, 200, "{path}: {head}\n{body}");
    assert!(
        head.to_lowercase()
            .contains("content-type: application/json"),
        "{head}"
    );
    serde_json::from_str(&body).unwrap()
}

fn start(extra: &[&str]) -> (Miner, String, TempDir) {
    let data = TempDir::new("run");
    let mut args = vec![
        "--datadir",
        data.path(),
        "--difficulty",
        "0.0001",
        "--backend",
        "cpu",
        "-t",
        "1",
        "--api-bind",
        "127.0.0.1:0",
    ];
    args.extend_from_slice(extra);
    let mut m = Miner::spawn(&args);
    let api = m
        .wait_for(Duration::from_secs(30), |e| e["event"] == "api")
        .unwrap_or_else(|| panic!("no api event: {}", m.stderr()));
    let addr = api["bind"].as_str().unwrap().to_owned();
    (m, addr, data)
}

#[test]
fn every_endpoint_answers_with_live_figures() {
    let (mut m, addr, _data) = start(&[]);
    // Difficulty 1e-4 is ~430k hashes a block: a few blocks a second on one core.
    m.wait_blocks(2);
    // Past a second of uptime, for the uptime check below.
    wait_until("an uptime over 1 s", Duration::from_secs(30), || {
        get_json(&addr, "/api/v1/summary", None)["uptime_s"]
            .as_f64()
            .is_some_and(|up| up > 1.0)
    });

    let summary = get_json(&addr, "/api/v1/summary", None);
    assert_eq!(summary["mode"], "solo");
    assert!(summary["uptime_s"].as_f64().unwrap() > 1.0);
    assert!(
        summary["hashrate"]["5s"].as_f64().unwrap() > 0.0,
        "{summary}"
    );
    assert!(summary["hashrate"]["1m"].as_f64().unwrap() > 0.0);
    assert!(summary["hashrate"]["15m"].as_f64().unwrap() > 0.0);
    assert!(summary["blocks"].as_u64().unwrap() >= 2);
    assert_eq!(summary["hardware_errors"], 0);
    assert!(summary["pool"]["url"]
        .as_str()
        .unwrap()
        .starts_with("node core"));
    assert_eq!(summary["pool"]["connected"], true);
    assert!((summary["pool"]["difficulty"].as_f64().unwrap() - 1e-4).abs() < 1e-6);
    for key in [
        "accepted",
        "rejected",
        "stale",
        "submitted",
        "reject_reasons",
    ] {
        assert!(!summary["shares"][key].is_null(), "{key}");
    }

    let devices = get_json(&addr, "/api/v1/devices", None);
    assert_eq!(devices[0]["label"], "cpu");
    assert!(devices[0]["hashes"].as_u64().unwrap() > 100_000);
    assert!(devices[0]["hashrate"]["5s"].as_f64().unwrap() > 0.0);

    let pools = get_json(&addr, "/api/v1/pools", None);
    assert_eq!(pools.as_array().unwrap().len(), 1);
    assert_eq!(pools[0]["current"], true);
    assert_eq!(pools[0]["connected"], true);

    let (status, head, body) = request(&addr, "GET", "/metrics", None);
    assert_eq!(status, 200);
    assert!(head.contains("text/plain; version=0.0.4"), "{head}");
    let lines = body.lines().map(|l| Ok(l.to_owned()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("valid Prometheus text");
    let value = |name: &str, labels: &[(&str, &str)]| -> f64 {
        let s = scrape
            .samples
            .iter()
            .find(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
            .unwrap_or_else(|| panic!("{name} {labels:?} missing:\n{body}"));
        match s.value {
            prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => panic!("{name}: unexpected type"),
        }
    };
    assert_eq!(value("wgminer_up", &[]), 1.0);
    for window in ["5s", "1m", "15m"] {
        assert!(
            value(
                "wgminer_hashrate_hashes_per_second",
                &[("device", "cpu"), ("window", window)]
            ) > 0.0
        );
    }
    assert!(value("wgminer_hashes_total", &[("device", "cpu")]) > 100_000.0);
    assert!(value("wgminer_blocks_total", &[]) >= 2.0);
    assert!(value("wgminer_shares_total", &[("result", "accepted")]) >= 2.0);
    assert_eq!(
        value("wgminer_hardware_errors_total", &[("device", "cpu")]),
        0.0
    );
    assert_eq!(value("wgminer_source_connected", &[]), 1.0);
    assert!(value("wgminer_difficulty", &[]) > 0.0);
    // Types are declared for every family.
    assert!(scrape.docs.contains_key("wgminer_hashes_total"));

    let (status, _, body) = request(&addr, "GET", "/nope", None);
    assert_eq!(status, 404);
    assert!(body.contains("/api/v1/summary"));
    let (status, _, _) = request(&addr, "POST", "/api/v1/summary", None);
    assert_eq!(status, 405);

    m.stop_cleanly();
}

#[test]
fn a_token_guards_every_endpoint() {
    let (mut m, addr, _data) = start(&["--api-token", "s3cret"]);
    for path in [
        "/api/v1/summary",
        "/api/v1/devices",
        "/api/v1/pools",
        "/metrics",
        "/nope",
    ] {
        let (status, head, _) = request(&addr, "GET", path, None);
        assert_eq!(status, 401, "{path}");
        // Header names are case-insensitive (hyper writes `Www-Authenticate`).
        assert!(
            head.to_ascii_lowercase()
                .contains("www-authenticate: bearer"),
            "{head}"
        );
        assert_eq!(request(&addr, "GET", path, Some("wrong")).0, 401, "{path}");
    }
    assert_eq!(
        get_json(&addr, "/api/v1/summary", Some("s3cret"))["mode"],
        "solo"
    );
    assert_eq!(request(&addr, "GET", "/metrics", Some("s3cret")).0, 200);
    m.stop_cleanly();

    // The same from a token file.
    let dir = TempDir::new("token");
    let file = dir.0.join("token");
    std::fs::write(&file, "from-file\n").unwrap();
    let (mut m, addr, _data) = start(&["--api-token-file", file.to_str().unwrap()]);
    assert_eq!(request(&addr, "GET", "/metrics", None).0, 401);
    assert_eq!(request(&addr, "GET", "/metrics", Some("from-file")).0, 200);
    m.stop_cleanly();
}

#[test]
fn api_flag_errors_are_clear() {
    let data = TempDir::new("bad");
    let run = |args: &[&str]| {
        let mut m = Miner::spawn(args);
        let status = m.wait_exit(Duration::from_secs(20));
        (status.code(), m.stderr())
    };
    let (code, err) = run(&[
        "--datadir",
        data.path(),
        "--backend",
        "cpu",
        "--api-bind",
        "localhost",
    ]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--api-bind"), "{err}");
    let (code, err) = run(&[
        "--datadir",
        data.path(),
        "--backend",
        "cpu",
        "--api-bind",
        "127.0.0.1:0",
        "--api-token-file",
        "/nonexistent/token",
    ]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("/nonexistent/token"), "{err}");
    // A port already taken.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().to_string();
    let (code, err) = run(&[
        "--datadir",
        data.path(),
        "--backend",
        "cpu",
        "--api-bind",
        &port,
    ]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("cannot serve the API"), "{err}");
}
