//! The configuration file through the real binary: `config example` is a valid file, the
//! precedence file < WGMINER_* environment < flags, secrets masked in `config show`, and every
//! error naming the key and line (or the file).

use std::path::PathBuf;
use std::process::{Command, Output};

fn wgminer(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wgminer"));
    cmd.args(args);
    // A clean environment for WGMINER_*: the test runner's own must not leak in.
    for (k, _) in std::env::vars() {
        if k.starts_with("WGMINER_") {
            cmd.env_remove(k);
        }
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("the binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

struct TempFile(PathBuf);

impl TempFile {
    fn with(name: &str, text: &str) -> TempFile {
        let path = std::env::temp_dir().join(format!(
            "wgminer-config-{}-{name}-{}.toml",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::write(&path, text).unwrap();
        TempFile(path)
    }
    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn show(args: &[&str], env: &[(&str, &str)]) -> toml::Table {
    let mut all = vec!["config", "show"];
    all.extend_from_slice(args);
    let out = wgminer(&all, env);
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out).parse().expect("config show prints TOML")
}

#[test]
fn the_example_is_a_valid_config_and_show_reads_it() {
    let out = wgminer(&["config", "example"], &[]);
    assert!(out.status.success());
    let example = stdout(&out);
    assert!(example.contains("[devices]") && example.contains("# "));
    let file = TempFile::with("example", &example);
    let t = show(&["--config", file.path()], &[]);
    assert!(t.contains_key("devices") && t.contains_key("log"));
}

const FILE: &str = r#"
coinbase_addr = "bcrt1qq6hag67dl53wl99vzg42z8eyzfz2xlkvwk6f7m"

[[pool]]
url = "stratum+tcp://file-pool:3333"
user = "file.rig"
password = "file-secret"

[devices]
threads = 3
backend = "cpu"

[api]
bind = "127.0.0.1:4028"
token = "file-token"

[log]
level = "info"
"#;

#[test]
fn file_then_environment_then_flags() {
    let file = TempFile::with("precedence", FILE);
    // The file alone.
    let t = show(&["--config", file.path()], &[]);
    assert_eq!(t["devices"]["threads"].as_integer(), Some(3));
    assert_eq!(t["devices"]["backend"].as_str(), Some("cpu"));
    assert_eq!(
        t["pool"][0]["url"].as_str(),
        Some("stratum+tcp://file-pool:3333")
    );
    assert_eq!(t["pool"][0]["user"].as_str(), Some("file.rig"));
    assert_eq!(t["log"]["level"].as_str(), Some("info"));
    // Secrets masked, never printed.
    let text = stdout(&wgminer(&["config", "show", "--config", file.path()], &[]));
    assert!(
        !text.contains("file-secret") && !text.contains("file-token"),
        "{text}"
    );
    assert_eq!(t["pool"][0]["password"].as_str(), Some("********"));
    assert_eq!(t["api"]["token"].as_str(), Some("********"));

    // The environment beats the file.
    let env = [
        ("WGMINER_THREADS", "5"),
        ("WGMINER_URL", "stratum+tcp://env-pool:1"),
        ("WGMINER_API_BIND", "127.0.0.1:5000"),
        ("WGMINER_CONFIG", file.path()),
    ];
    let t = show(&[], &env);
    assert_eq!(t["devices"]["threads"].as_integer(), Some(5));
    assert_eq!(
        t["pool"][0]["url"].as_str(),
        Some("stratum+tcp://env-pool:1")
    );
    assert_eq!(t["api"]["bind"].as_str(), Some("127.0.0.1:5000"));
    assert_eq!(
        t["devices"]["backend"].as_str(),
        Some("cpu"),
        "the rest from the file"
    );

    // Flags beat both.
    let t = show(
        &[
            "-t",
            "7",
            "-o",
            "stratum+tcp://flag-pool:2",
            "--backend",
            "all",
        ],
        &env,
    );
    assert_eq!(t["devices"]["threads"].as_integer(), Some(7));
    assert_eq!(
        t["pool"][0]["url"].as_str(),
        Some("stratum+tcp://flag-pool:2")
    );
    assert_eq!(t["devices"]["backend"].as_str(), Some("all"));
    assert_eq!(t["api"]["bind"].as_str(), Some("127.0.0.1:5000"));

    // WGMINER_LOG beats the file's log level.
    let t = show(&["--config", file.path()], &[("WGMINER_LOG", "debug")]);
    assert_eq!(t["log"]["level"].as_str(), Some("debug"));
}

#[test]
fn a_node_in_the_file_brings_its_credentials() {
    let file = TempFile::with(
        "node",
        "[node]\nurl = \"http://127.0.0.1:18443\"\nrpc_user = \"u\"\nrpc_password = \"hunter2\"\n",
    );
    let out = wgminer(&["config", "show", "--config", file.path()], &[]);
    let text = stdout(&out);
    let t: toml::Table = text.parse().unwrap();
    assert_eq!(t["node"]["url"].as_str(), Some("http://127.0.0.1:18443"));
    assert_eq!(t["node"]["rpc_user"].as_str(), Some("u"));
    assert!(!text.contains("hunter2"));
}

#[test]
fn every_config_error_names_the_key_and_line() {
    let cases: &[(&str, &[&str])] = &[
        (
            "[devices]\nthreads = \"eight\"\n",
            &["line 2", "threads", "expected u32"],
        ),
        (
            "[devices]\nthread = 8\n",
            &["line 2", "unknown field `thread`"],
        ),
        ("colour = \"red\"\n", &["line 1", "unknown field `colour`"]),
        ("[devices]\nthreads = 0\n", &["line 2", "1 to 4096"]),
        ("[devices]\nbackend = \"fpga\"\n", &["line 2", "fpga"]),
        ("[devices]\ncpu_path = \"sse9\"\n", &["line 2", "sse9"]),
        ("[devices]\ngpu_kernel = \"x9\"\n", &["line 2", "x9"]),
        #[cfg(not(feature = "kernel-lab"))]
        (
            "[devices]\ngpu_kernel = \"m4x2\"\n",
            &["line 2", "m4x2 is a lab variant", "--features kernel-lab"],
        ),
        ("\n[core]\ndifficulty = 0\n", &["line 3", "positive"]),
        ("[api]\nbind = \"everywhere\"\n", &["line 2"]),
        ("[log]\nlevel = \"loud\"\n", &["line 2", "loud"]),
        ("[[pool]]\nuser = \"x\"\n", &["url"]),
        ("[devices\n", &["line 1"]),
        (
            "[[pool]]\nurl = \"stratum+tcp://a:1\"\n[node]\nurl = \"http://b:2\"\n",
            &["not both"],
        ),
    ];
    for (text, wants) in cases {
        let file = TempFile::with("bad", text);
        let out = wgminer(&["--config", file.path(), "--backend", "cpu"], &[]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{text:?}: {err}");
        assert!(err.contains(file.path()), "{text:?}: {err}");
        for want in *wants {
            assert!(err.contains(want), "{text:?}: wanted {want:?} in {err}");
        }
        assert!(!err.contains("panicked"));
    }
    let out = wgminer(&["--config", "/nonexistent/wgminer.toml"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("cannot read config file /nonexistent/wgminer.toml"));
}
