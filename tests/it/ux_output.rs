//! What a person sees from a run (issue 14): one line per block with bursts summed up, a
//! timestamp on every line, a rate line every 10 s in logs, `--log-file`, the status line on a
//! pseudo-terminal (with and without colour), `timeout -s INT` ending with the summary,
//! `--coinbase-sig`'s length check, `-c`, and `node --help` listing every RPC method. Each test
//! runs the real binary; the helpers here are this file's own so it can move as a module.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_wgminer");

/// A fresh data directory for one test.
fn datadir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wgminer-ux-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// The binary with a clean environment for these tests: one CPU thread, no colour.
fn wgminer() -> Command {
    let mut c = Command::new(BIN);
    for (k, _) in std::env::vars() {
        if k.starts_with("WGMINER_") {
            c.env_remove(k);
        }
    }
    c.env("NO_COLOR", "1");
    c
}

/// `2026-11-27T15:43:12Z ` at the start of a line.
fn has_timestamp(line: &str) -> bool {
    let b = line.as_bytes();
    b.len() > 21
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && b[19] == b'Z'
        && b[20] == b' '
        && b[..4].iter().all(u8::is_ascii_digit)
}

/// Run plain `wgminer` on the CPU for `secs`, then SIGINT it; its stdout, stderr and the
/// status.
fn run_for(secs: f64, extra: &[&str], name: &str) -> (String, String, std::process::ExitStatus) {
    let dir = datadir(name);
    let child = wgminer()
        .args(["--datadir", dir.to_str().expect("utf-8 path")])
        .args(["--backend", "cpu", "-t", "1"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("wgminer starts");
    std::thread::sleep(Duration::from_secs_f64(secs));
    let killed = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    let out = child.wait_with_output().expect("wgminer ends");
    let _ = std::fs::remove_dir_all(&dir);
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status,
    )
}

#[test]
fn a_plain_run_prints_blocks_without_flooding_and_a_rate_line_every_10_s() {
    let (out, err, status) = run_for(11.5, &[], "plain");
    assert!(status.success(), "{status:?} {err}");
    let lines: Vec<&str> = out.lines().collect();
    // Regtest finds thousands of blocks here; the display shows a few a second.
    assert!(lines.len() < 120, "{} lines:\n{out}", lines.len());
    for l in &lines {
        assert!(has_timestamp(l), "no timestamp: {l}");
    }
    let blocks: Vec<&&str> = lines
        .iter()
        .filter(|l| l[21..].starts_with("block "))
        .collect();
    assert!(!blocks.is_empty(), "{out}");
    for b in &blocks {
        assert!(
            b.contains(" found in ") && b.contains("diff ") && b.ends_with("cpu"),
            "{b}"
        );
    }
    assert!(
        lines.iter().any(|l| l.contains(" more blocks (heights ")),
        "a burst is summed up: {out}"
    );
    let rates: Vec<&&str> = lines.iter().filter(|l| l.contains(" (5s) ")).collect();
    assert_eq!(rates.len(), 1, "one rate line in 11 s: {out}");
    assert!(
        rates[0].contains("blocks ") && rates[0].contains("up 0h00m1"),
        "{}",
        rates[0]
    );
    let last = lines
        .iter()
        .rev()
        .find(|l| l.contains("stopped: "))
        .expect("summary");
    assert!(last.contains("best share"), "{last}");
}

#[test]
fn timeout_sending_int_twice_still_ends_with_the_summary() {
    // GNU timeout signals the child and then its own process group: two SIGINTs at once.
    let dir = datadir("timeout");
    let started = Instant::now();
    let out = Command::new("timeout")
        .args(["-s", "INT", "3", BIN, "--datadir"])
        .arg(&dir)
        .args(["--backend", "cpu", "-t", "1"])
        .env("NO_COLOR", "1")
        .env_remove("WGMINER_URL")
        .output()
        .expect("timeout runs");
    let _ = std::fs::remove_dir_all(&dir);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(124), "timed out: {stderr}");
    assert!(!stderr.contains("second signal"), "{stderr}");
    assert!(stdout.contains("stopped: "), "{stdout}");
    assert!(stdout.contains("chain at height "), "{stdout}");
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn the_log_file_gets_every_line_without_colour() {
    let log = std::env::temp_dir().join(format!("wgminer-ux-{}.log", std::process::id()));
    let _ = std::fs::remove_file(&log);
    std::fs::write(&log, "an earlier run\n").expect("write");
    let path = log.to_str().expect("utf-8 path");
    let (out, err, status) = run_for(1.5, &["--log-file", path, "-q"], "logfile");
    assert!(status.success(), "{err}");
    let text = std::fs::read_to_string(&log).expect("log file");
    let _ = std::fs::remove_file(&log);
    assert!(text.starts_with("an earlier run\n"), "appended: {text}");
    assert!(
        text.contains(" block 1 ") && text.contains("stopped: "),
        "{text}"
    );
    assert!(!text.contains('\u{1b}'), "{text}");
    // -q: no template line, and stdout has what the file has.
    assert!(!out.contains("mining height"), "{out}");
    assert!(out.lines().all(|l| text.contains(l)), "{out}\n---\n{text}");
}

/// Run the miner under `script` (a pseudo-terminal) for a few seconds; what the terminal got.
fn on_a_terminal(extra: &str, name: &str) -> Option<String> {
    let dir = datadir(name);
    let cmd = format!(
        "timeout -s INT 3 {BIN} --datadir {} --backend cpu -t 1 --difficulty 0.00001 {extra}",
        dir.display()
    );
    let out = Command::new("script")
        .args(["-qfec", &cmd, "/dev/null"])
        .env_remove("NO_COLOR")
        .env("TERM", "xterm")
        .stdin(Stdio::null())
        .output()
        .ok()?;
    let _ = std::fs::remove_dir_all(&dir);
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn the_status_line_is_redrawn_on_a_terminal_and_colour_can_be_turned_off() {
    let Some(tty) = on_a_terminal("", "tty") else {
        eprintln!("skipped: no `script` (util-linux) here");
        return;
    };
    // Redrawn in place: clear-line before each draw, the counters and the uptime in it.
    assert!(tty.matches("\r\u{1b}[2K").count() >= 2, "{tty:?}");
    assert!(
        tty.contains("\r\ncpu ") && tty.contains(" | blocks "),
        "{tty:?}"
    );
    assert!(tty.contains(" | up "), "{tty:?}");
    assert!(
        tty.contains("\u{1b}[1;32m") || tty.contains("\u{1b}[32m"),
        "coloured blocks: {tty:?}"
    );
    let plain = on_a_terminal("--no-color", "tty-plain").expect("script ran before");
    assert!(plain.contains(" | up "), "{plain:?}");
    assert!(
        !plain.contains("\u{1b}[1;32m") && !plain.contains("\u{1b}[32m"),
        "{plain:?}"
    );
}

#[test]
fn coinbase_sig_is_length_checked() {
    let dir = datadir("sig");
    let long = "x".repeat(200);
    let out = wgminer()
        .args([
            "--datadir",
            dir.to_str().expect("utf-8 path"),
            "--coinbase-sig",
            &long,
        ])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--coinbase-sig is 200 bytes") && err.contains("100 bytes"),
        "{err}"
    );
}

#[test]
fn c_is_short_for_config() {
    let file = std::env::temp_dir().join(format!("wgminer-ux-{}.toml", std::process::id()));
    std::fs::write(&file, "[devices]\nthreads = 3\n").expect("write");
    let out = wgminer()
        .args(["config", "show", "-c", file.to_str().expect("utf-8 path")])
        .output()
        .expect("runs");
    let _ = std::fs::remove_file(&file);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("threads = 3"), "{text}");
}

#[test]
fn node_help_lists_every_rpc_method_the_readme_lists() {
    let out = wgminer().args(["node", "--help"]).output().expect("runs");
    let help = String::from_utf8_lossy(&out.stdout);
    let readme = include_str!("../../README.md");
    for method in [
        "getblocktemplate",
        "submitblock",
        "getblockcount",
        "getbestblockhash",
        "getblockhash",
        "getblockheader",
        "getblock",
        "getblockchaininfo",
        "getmininginfo",
        "getdifficulty",
        "getnetworkinfo",
        "validateaddress",
        "getnewaddress",
        "generatetoaddress",
        "help",
        "stop",
    ] {
        assert!(help.contains(&format!("\n  {method} ")), "{method}: {help}");
        assert!(
            readme.contains(&format!("`{method}`")),
            "README lacks {method}"
        );
    }
}

#[test]
fn wgminer_node_prints_the_blocks_another_miner_finds() {
    use std::io::BufRead;
    let dir = datadir("node");
    let mut node = wgminer()
        .args(["node", "--datadir", dir.to_str().expect("utf-8 path")])
        .args(["--rpc-bind", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("wgminer node starts");
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let stdout = node.stdout.take().expect("piped");
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let next = |what: &str, pred: &dyn Fn(&str) -> bool| -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match rx.recv_timeout(left) {
                Ok(line) if pred(&line) => return line,
                Ok(_) => {}
                Err(_) => break,
            }
        }
        panic!("no {what} line from wgminer node");
    };
    let rpc = next("JSON-RPC", &|l| l.contains("JSON-RPC on http://"));
    let url = rpc
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .expect("a url")
        .to_owned();
    let cookie = dir.join("regtest").join(".cookie");
    let mut miner = wgminer()
        .args([
            "-o",
            &url,
            "--rpc-cookie",
            cookie.to_str().expect("utf-8 path"),
        ])
        .args([
            "--coinbase-addr",
            "bcrt1qq2yshcmzdlznnpxx258xswqlmqcxjs4dssfxt2",
        ])
        .args(["--backend", "cpu", "-t", "1"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the miner starts");
    let block = next("block", &|l| {
        l.len() > 21 && (l[21..].starts_with("block ") || l[21..].starts_with("blocks "))
    });
    assert!(
        has_timestamp(&block) && block.contains(", diff "),
        "{block}"
    );
    for p in [miner.id(), node.id()] {
        let _ = Command::new("kill").args(["-INT", &p.to_string()]).status();
    }
    let _ = miner.wait();
    let _ = node.wait();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn coinbase_sig_lands_in_every_mined_blocks_coinbase() {
    use wgminer::node::{chain_dir, Chain, ChainParams};
    let dir = datadir("sig-mined");
    let mut child = wgminer()
        .args(["--datadir", dir.to_str().expect("utf-8 path")])
        .args([
            "--backend",
            "cpu",
            "-t",
            "1",
            "--coinbase-sig",
            "ux test rig",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("wgminer starts");
    std::thread::sleep(Duration::from_millis(1500));
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let status = child.wait().expect("ends");
    assert!(status.success(), "{status:?}");
    let chain = Chain::open(&chain_dir(&dir), ChainParams::regtest()).expect("the chain opens");
    assert!(chain.height() >= 1);
    for height in 1..=chain.height().min(5) {
        let hash = chain.block_hash_at(height).expect("a block");
        let block = chain.block(&hash).expect("readable").expect("stored");
        let sig = block.txdata[0].input[0].script_sig.as_bytes().to_vec();
        assert!(
            sig.windows(11).any(|w| w == b"ux test rig"),
            "height {height}: {sig:02x?}"
        );
    }
    drop(chain);
    let _ = std::fs::remove_dir_all(&dir);
}
