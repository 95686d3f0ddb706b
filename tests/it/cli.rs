//! The `wgminer` binary as a user runs it: bench output, JSON, device listing, and bad input
//! (a clear one-line error and exit code 2, never a panic).

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

#[test]
fn bench_json_reports_a_rate() {
    let out = wgminer(&[
        "bench",
        "--backend",
        "cpu",
        "--threads",
        "1",
        "--seconds",
        "0.5",
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    let devices = json["devices"].as_array().expect("devices array");
    assert_eq!(devices.len(), 1);
    assert_eq!(devices[0]["backend"], "cpu");
    assert!(devices[0]["hashes"].as_u64().unwrap() > 10_000);
    assert!(devices[0]["hashes_per_second"].as_f64().unwrap() > 0.0);
    assert_eq!(devices[0]["hardware_errors"], 0);
    assert!(json["total_hashes_per_second"].as_f64().unwrap() > 0.0);
}

#[test]
fn bench_table_has_units() {
    let out = wgminer(&["bench", "-t", "1", "-s", "0.3", "--cpu-path", "portable"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("H/s"), "{text}");
    assert!(text.contains("portable"), "{text}");
}

#[test]
fn devices_lists_the_cpu() {
    let out = wgminer(&["devices", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert!(json.as_array().unwrap().iter().any(|d| d["kind"] == "cpu"));
}

#[test]
fn bad_input_is_a_clear_error_with_exit_code_2() {
    for args in [
        &["bench", "--threads", "0"][..],
        &["bench", "--seconds", "-1"],
        &["bench", "--seconds", "soon"],
        &["bench", "--backend", "fpga"],
        &["bench", "--cpu-path", "sse9"],
        &["bench", "--gpu-kernel", "x9"],
        &["bench", "--frobnicate"],
        &["no-such-command"],
    ] {
        let out = wgminer(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(err.contains("error"), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

/// `wgminer devices | head -1` and `wgminer bench … | head -1`: a reader that closes early ends
/// the command cleanly (exit 0, no "failed printing to stdout" panic). Deterministic: the pipe
/// is closed before the command writes anything; then the literal shell pipeline.
#[test]
fn a_closed_stdout_ends_devices_bench_and_config_cleanly() {
    use std::process::Stdio;
    let commands: [&[&str]; 5] = [
        &["devices"],
        &["devices", "--json"],
        &["bench", "--backend", "cpu", "-t", "1", "-s", "0.2"],
        &[
            "bench",
            "--backend",
            "cpu",
            "-t",
            "1",
            "-s",
            "0.2",
            "--json",
        ],
        &["config", "example"],
    ];
    for args in commands {
        let mut child = Command::new(env!("CARGO_BIN_EXE_wgminer"))
            .args(args)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert!(!err.contains("failed printing"), "{args:?}: {err}");
    }
    for args in ["devices", "bench --backend cpu -t 1 -s 0.2"] {
        let script = format!("set -o pipefail; \"$0\" {args} | head -1");
        let out = Command::new("bash")
            .args(["-c", &script, env!("CARGO_BIN_EXE_wgminer")])
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        let err = stderr(&out);
        assert!(out.status.success(), "{args}: {:?} {err}", out.status);
        assert!(!err.contains("panicked"), "{args}: {err}");
        assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 1);
    }
}

/// A lab kernel in a build without the feature is refused before any device opens, naming the
/// feature and the kernels that ship; with the feature it parses.
#[test]
fn lab_kernels_need_the_feature() {
    let out = wgminer(&["config", "show", "--gpu-kernel", "M2X2"]);
    let err = stderr(&out);
    if cfg!(feature = "kernel-lab") {
        assert!(out.status.success(), "{err}");
        assert!(String::from_utf8_lossy(&out.stdout).contains("gpu_kernel = \"m2x2\""));
    } else {
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(
            err.contains(
                "kernel m2x2 is a lab variant: build with `--features kernel-lab` to use it; \
                 shipped: x1, m4"
            ),
            "{err}"
        );
    }
    // The shipped names, as a user types them, round-trip through `config show`.
    for name in ["x1", "M4"] {
        let out = wgminer(&["config", "show", "--gpu-kernel", name]);
        assert!(out.status.success(), "{}", stderr(&out));
        let want = format!("gpu_kernel = \"{}\"", name.to_lowercase());
        assert!(String::from_utf8_lossy(&out.stdout).contains(&want));
    }
}
