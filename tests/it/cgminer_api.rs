//! cgminer's TCP API read by a real client written for cgminer (pyasic's `CGMinerRPCAPI`, the
//! library farm tools use; installed by scripts/fetch-pyasic.sh), and hostile peers on raw
//! sockets: nothing they send stops the server or acts without privilege.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::mpsc;
use wgminer::telemetry::cgminer::{AllowList, CgminerConfig, CgminerServer, Control};
use wgminer::telemetry::ApiState;
use wgminer::work::stats::Verdict;
use wgminer::work::MiningStats;

/// The virtual environment's python with pyasic, or `None` (a skip outside CI).
fn pyasic_python() -> Option<PathBuf> {
    let path = std::env::var_os("WGMINER_TEST_PYASIC")
        .map(PathBuf::from)
        .or_else(|| {
            let home = std::env::var_os("HOME")?;
            Some(PathBuf::from(home).join(".cache/wgminer/pyasic/pyasic-0.79.0/bin/python"))
        })?;
    if path.exists() {
        return Some(path);
    }
    assert!(
        std::env::var("CI").is_err(),
        "CI: pyasic not found at {}: run scripts/fetch-pyasic.sh (scripts/test.sh does)",
        path.display()
    );
    eprintln!("skipped: pyasic not installed (bash scripts/fetch-pyasic.sh)");
    None
}

fn sample_state() -> ApiState {
    let stats = MiningStats::new([(0, "cpu".to_owned()), (1, "gpu1".to_owned())]);
    stats.set_pool(Some("stratum+tcp://pool.example:3333".into()), true);
    stats.devices[0]
        .hashes
        .fetch_add(2_000_000, Ordering::Relaxed);
    stats.devices[1]
        .hashes
        .fetch_add(9_000_000_000, Ordering::Relaxed);
    for _ in 0..4 {
        stats.record_hand_over(Duration::from_millis(3));
        stats.record_accept();
        stats.book(1, 512.0, Verdict::Accepted);
    }
    stats.record_hand_over(Duration::from_millis(3));
    stats.record_reject("low difficulty share");
    stats.book(1, 512.0, Verdict::Rejected);
    stats.record_best_share(1, 77_777.0);
    stats.record_job();
    stats.sample();
    ApiState {
        stats: Arc::new(stats),
        sources: vec![
            "stratum+tcp://pool.example:3333".into(),
            "stratum+tcp://backup.example:3333".into(),
        ],
    }
}

struct Running {
    rt: tokio::runtime::Runtime,
    server: Option<CgminerServer>,
    control: mpsc::Receiver<Control>,
}

impl Running {
    fn start(privileged: &str) -> Running {
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        let (tx, control) = mpsc::channel(8);
        let config = CgminerConfig {
            bind: "127.0.0.1:0".parse().expect("addr"),
            privileged: AllowList::parse(privileged).expect("allow list"),
        };
        let server = rt
            .block_on(CgminerServer::start(config, sample_state(), tx))
            .expect("bind");
        Running {
            rt,
            server: Some(server),
            control,
        }
    }

    fn addr(&self) -> SocketAddr {
        self.server.as_ref().expect("running").addr()
    }

    fn next_control(&mut self) -> Option<Control> {
        let rx = &mut self.control;
        self.rt
            .block_on(async { tokio::time::timeout(Duration::from_secs(5), rx.recv()).await })
            .ok()
            .flatten()
    }
}

/// Run a pyasic script against the server; its last stdout line is JSON.
fn pyasic(python: &PathBuf, addr: SocketAddr, body: &str) -> Value {
    let script = format!(
        "import asyncio, json\n\
         from pyasic.rpc.cgminer import CGMinerRPCAPI\n\
         async def main():\n    api = CGMinerRPCAPI('{}', port={})\n    out = {{}}\n{body}\n    print(json.dumps(out))\n\
         asyncio.run(main())\n",
        addr.ip(),
        addr.port()
    );
    let out = std::process::Command::new(python)
        .args(["-c", &script])
        .output()
        .expect("run python");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "pyasic failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.lines().last().unwrap_or_default()).expect("JSON from the script")
}

#[test]
fn pyasic_reads_every_report() {
    let Some(python) = pyasic_python() else {
        return;
    };
    let running = Running::start("");
    let v = pyasic(
        &python,
        running.addr(),
        "    for c in ['version', 'config', 'summary', 'pools', 'devs', 'stats']:\n        out[c] = await getattr(api, c)()\n    out['multi'] = await api.multicommand('summary', 'devs', 'pools')",
    );
    assert_eq!(v["version"]["VERSION"][0]["API"], "3.7");
    assert_eq!(v["config"]["CONFIG"][0]["Pool Count"], 2);
    assert_eq!(v["config"]["CONFIG"][0]["GPU Count"], 1);
    let summary = &v["summary"]["SUMMARY"][0];
    assert_eq!(summary["Accepted"], 4);
    assert_eq!(summary["Rejected"], 1);
    assert_eq!(summary["Difficulty Accepted"], 2048.0);
    assert_eq!(summary["Best Share"], 77777.0);
    assert_eq!(summary["Pool Rejected%"], 20.0);
    assert_eq!(v["summary"]["STATUS"][0]["STATUS"], "S");
    let pools = v["pools"]["POOLS"].as_array().expect("POOLS");
    assert_eq!(pools.len(), 2);
    assert_eq!(pools[0]["URL"], "stratum+tcp://pool.example:3333");
    assert_eq!(pools[0]["Status"], "Alive");
    let devs = v["devs"]["DEVS"].as_array().expect("DEVS");
    assert_eq!(devs[1]["GPU"], 0);
    assert_eq!(devs[1]["Accepted"], 4);
    assert_eq!(devs[1]["Total MH"], 9000.0);
    assert!(v["stats"]["STATS"].as_array().is_some_and(|s| s.len() == 3));
    // The joined form, parsed by pyasic itself.
    assert_eq!(v["multi"]["summary"][0]["SUMMARY"][0]["Accepted"], 4);
    assert_eq!(v["multi"]["devs"][0]["DEVS"][1]["Label"], "gpu1");
    assert_eq!(v["multi"]["multicommand"], true);
}

#[test]
fn pyasic_privileged_commands_follow_the_allow_list() {
    let Some(python) = pyasic_python() else {
        return;
    };
    // Not allowed: pyasic sees cgminer's access-denied error and nothing is asked of the miner.
    let mut denied = Running::start("10.9.9.9");
    let v = pyasic(
        &python,
        denied.addr(),
        "    from pyasic.errors import APIError\n    try:\n        await api.switchpool(1)\n        out['switched'] = True\n    except APIError as e:\n        out['error'] = str(e)",
    );
    assert!(
        v["error"]
            .as_str()
            .is_some_and(|e| e.contains("Access denied")),
        "{v}"
    );
    denied.server.take();
    assert_eq!(denied.next_control(), None);

    let mut allowed = Running::start("127.0.0.1");
    let v = pyasic(
        &python,
        allowed.addr(),
        "    out['switch'] = await api.switchpool(1)\n    out['quit'] = await api.send_command('quit', ignore_errors=True)",
    );
    assert_eq!(v["switch"]["STATUS"][0]["Code"], 27, "{v}");
    assert_eq!(v["quit"]["STATUS"], "BYE");
    assert_eq!(allowed.next_control(), Some(Control::SwitchPool(1)));
    assert_eq!(allowed.next_control(), Some(Control::Quit));
}

fn raw(addr: SocketAddr, request: &[u8], half_close: bool) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(15)))
        .expect("timeout");
    let _ = s.write_all(request);
    if half_close {
        let _ = s.shutdown(std::net::Shutdown::Write);
    }
    let mut reply = Vec::new();
    let _ = s.read_to_end(&mut reply);
    reply
}

#[test]
fn hostile_peers_get_errors_and_the_server_keeps_serving() {
    let running = Running::start("");
    let addr = running.addr();
    // Garbage, a JSON array, invalid UTF-8, a request over the limit, nothing at all.
    let invalid = raw(addr, b"{\"command\": [1,2", true);
    assert!(invalid.ends_with(b"\0"), "{invalid:?}");
    assert!(String::from_utf8_lossy(&invalid).contains("\"Code\":23"));
    let bytes = raw(addr, b"\xff\xfe\x00summary\x80", true);
    assert!(String::from_utf8_lossy(&bytes).contains("Code=14"));
    // A request still incomplete past the size limit is dropped unanswered; one that can never
    // be JSON is answered at once, however long.
    let mut huge = br#"{"command":""#.to_vec();
    huge.resize(100_000, b'a');
    let reply = raw(addr, &huge, false);
    assert!(reply.is_empty(), "{}", String::from_utf8_lossy(&reply));
    let braces = raw(addr, &[b'{'; 100_000], false);
    assert!(String::from_utf8_lossy(&braces).contains("\"Code\":23"));
    assert!(raw(addr, b"", true).starts_with(b"STATUS=E"));
    // Peers that send nothing and keep their connection open: the server goes on serving
    // others, then drops them after its request timeout.
    let idle: Vec<TcpStream> = (0..40)
        .map(|_| TcpStream::connect(addr).expect("connect"))
        .collect();
    let t = std::time::Instant::now();
    let reply = raw(addr, br#"{"command":"summary"}"#, false);
    let v: Value =
        serde_json::from_slice(reply.strip_suffix(b"\0").expect("NUL end")).expect("JSON reply");
    assert_eq!(v["SUMMARY"][0]["Accepted"], 4);
    assert!(t.elapsed() < Duration::from_secs(8), "{:?}", t.elapsed());
    drop(idle);
    // A reply is text when asked in text, JSON when asked in JSON, both NUL-terminated.
    let text = raw(addr, b"devs|\n", false);
    assert!(
        text.starts_with(b"STATUS=S,") && text.ends_with(b"|\0"),
        "{text:?}"
    );
}
