//! `wgminer doctor` as a user runs it: on this machine (the Vulkan loader and Mesa's lavapipe,
//! which `scripts/test.sh` installs), and with the loader pointed at a manifest that does not
//! exist. Under `CI=true` a machine without lavapipe fails the first test rather than skipping.

use std::process::{Command, Output};

fn doctor(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wgminer"));
    cmd.arg("doctor").args(args).env("NO_COLOR", "1");
    // The machine's own settings must not change what the test expects.
    for var in [
        "VK_DRIVER_FILES",
        "VK_ICD_FILENAMES",
        "VK_ADD_DRIVER_FILES",
        "WGPU_BACKEND",
    ] {
        cmd.env_remove(var);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("the wgminer binary runs")
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "doctor --json printed no JSON object ({e}):\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

#[test]
fn reports_this_machine() {
    let out = doctor(&["--json"], &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = json(&out);
    let has_lavapipe = report["icds"]
        .as_array()
        .is_some_and(|icds| icds.iter().any(|i| i["kind"] == "software"));
    if !has_lavapipe || report["loader"]["path"].is_null() {
        assert!(
            !in_ci(),
            "CI=true but doctor found no Vulkan loader or lavapipe: {report:#}"
        );
        eprintln!(
            "note: no Vulkan loader or lavapipe here (scripts/test.sh installs them); skipped"
        );
        return;
    }
    assert!(report["loader"]["path"]
        .as_str()
        .unwrap()
        .ends_with("libvulkan.so.1"));
    assert!(report["icd_search"]["variable"].is_null());
    let lvp = report["icds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["kind"] == "software")
        .unwrap();
    assert!(
        lvp["path"].as_str().unwrap().contains("/vulkan/icd.d/"),
        "{lvp}"
    );
    assert!(lvp["library_found"].is_string(), "{lvp}");
    assert!(lvp["api_version"].is_string(), "{lvp}");
    let adapters = report["adapters"].as_array().unwrap();
    assert!(
        adapters
            .iter()
            .any(|a| a["software"] == true && a["backend"] == "vulkan"),
        "no software Vulkan adapter: {report:#}"
    );
    let verdict = &report["verdict"];
    let line = verdict["line"].as_str().unwrap();
    assert!(
        line.starts_with("ready: ") || line.starts_with("CPU only: "),
        "{line}"
    );
    assert!(report["cpu"].as_str().is_some_and(|c| !c.is_empty()));

    // The text report says the same.
    let out = doctor(&[], &[]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "Vulkan loader",
        "[software]",
        "NVIDIA",
        "Adapters",
        "verdict: ",
    ] {
        assert!(text.contains(needle), "{needle:?} missing from:\n{text}");
    }
    assert!(text.contains(line), "{text}");
}

#[test]
fn names_a_manifest_that_does_not_exist() {
    let env = [
        ("VK_ICD_FILENAMES", "/nonexistent/icd.json"),
        ("VK_DRIVER_FILES", "/nonexistent/icd.json"),
        // Vulkan only: without a Vulkan driver wgpu would fall back to GL's llvmpipe.
        ("WGPU_BACKEND", "vulkan"),
    ];
    let out = doctor(&["--json"], &env);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = json(&out);
    assert_eq!(report["icd_search"]["variable"], "VK_DRIVER_FILES");
    assert_eq!(
        report["icd_search"]["missing"],
        serde_json::json!(["/nonexistent/icd.json"])
    );
    assert_eq!(report["icd_search"]["ignored"], "/nonexistent/icd.json");
    assert_eq!(report["icds"], serde_json::json!([]));
    assert_eq!(report["adapters"], serde_json::json!([]));
    let verdict = &report["verdict"];
    assert_eq!(verdict["ready"], false);
    assert_eq!(verdict["usable_gpus"], 0);
    let line = verdict["line"].as_str().unwrap();
    assert!(line.starts_with("CPU only: "), "{line}");
    assert!(
        line.contains("/nonexistent/icd.json, which does not exist"),
        "{line}"
    );
    assert!(line.contains("unset VK_DRIVER_FILES"), "{line}");

    let out = doctor(&[], &env);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("MISSING  /nonexistent/icd.json does not exist"),
        "{text}"
    );
    assert!(text.contains("wgpu found no GPU adapter"), "{text}");

    // --strict: the same report, and exit 1 because no real GPU is usable.
    let out = doctor(&["--strict"], &env);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("verdict: CPU only: "));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no real GPU is usable"));
}
