//! The real `wgminer` binary as a child process with `--json-log`: its events read line by line
//! on a thread, waited for with a deadline, and the process stopped with SIGINT (as Ctrl-C) or
//! SIGKILL.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

pub struct Miner {
    child: Child,
    lines: mpsc::Receiver<Value>,
    /// Every event read so far, in order.
    pub events: Vec<Value>,
    stderr: Arc<Mutex<String>>,
    stderr_reader: Option<std::thread::JoinHandle<()>>,
    /// The working directory made for it when none was given (removed on drop): blocks a run
    /// leaves without a verdict are saved there, not in the source tree.
    scratch: Option<std::path::PathBuf>,
}

impl Miner {
    /// Start `wgminer ARGS --json-log`.
    pub fn spawn(args: &[&str]) -> Miner {
        let mut all = args.to_vec();
        all.push("--json-log");
        Self::spawn_plain(&all)
    }

    /// Start `wgminer ARGS --json-log` in the working directory `dir`.
    pub fn spawn_in(dir: &std::path::Path, args: &[&str]) -> Miner {
        let mut all = args.to_vec();
        all.push("--json-log");
        Self::start(Command::new(env!("CARGO_BIN_EXE_wgminer")), &all, Some(dir))
    }

    /// Start `wgminer ARGS --json-log` at the default log level, whatever `WGMINER_LOG` the tests
    /// run with.
    pub fn spawn_at_default_log_level(args: &[&str]) -> Miner {
        let mut all = args.to_vec();
        all.push("--json-log");
        let mut command = Command::new(env!("CARGO_BIN_EXE_wgminer"));
        command.env_remove("WGMINER_LOG");
        Self::start(command, &all, None)
    }

    /// Start `wgminer ARGS`; lines that are not JSON become `{"event": "text", "line": …}`.
    pub fn spawn_plain(args: &[&str]) -> Miner {
        Self::start(Command::new(env!("CARGO_BIN_EXE_wgminer")), args, None)
    }

    /// Start `wgminer ARGS --json-log` from bash after running `prelude` there (`trap`,
    /// `ulimit`: what the process inherits). `exec` keeps the pid wgminer's.
    pub fn spawn_after(prelude: &str, args: &[&str]) -> Miner {
        let mut bash = Command::new("bash");
        bash.arg("-c")
            .arg(format!("{prelude}; exec \"$0\" \"$@\""))
            .arg(env!("CARGO_BIN_EXE_wgminer"));
        let mut all = args.to_vec();
        all.push("--json-log");
        Self::start(bash, &all, None)
    }

    fn start(mut command: Command, args: &[&str], dir: Option<&std::path::Path>) -> Miner {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let scratch = dir.is_none().then(|| {
            let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let d = std::env::temp_dir().join(format!("wgminer-run-{}-{n}", std::process::id()));
            std::fs::create_dir_all(&d).unwrap();
            d
        });
        if let Some(dir) = dir.or(scratch.as_deref()) {
            command.current_dir(dir);
        }
        let mut child = command
            .args(args)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the wgminer binary starts");
        let (tx, lines) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                let v = serde_json::from_str(&line)
                    .unwrap_or_else(|_| serde_json::json!({"event": "text", "line": line}));
                if tx.send(v).is_err() {
                    return;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&stderr);
        let mut err = child.stderr.take().unwrap();
        let stderr_reader = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err.read(&mut buf) {
                if n == 0 {
                    return;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Miner {
            child,
            lines,
            events: Vec::new(),
            stderr,
            stderr_reader: Some(stderr_reader),
            scratch,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Read events until one matches `pred` (returned) or `timeout` passes (None).
    pub fn wait_for(&mut self, timeout: Duration, pred: impl Fn(&Value) -> bool) -> Option<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(v) => {
                    self.events.push(v.clone());
                    if pred(&v) {
                        return Some(v);
                    }
                }
                Err(_) => return None,
            }
        }
    }

    /// Wait until `n` events match `pred`, panicking with the output if they do not come.
    pub fn wait_count(&mut self, n: usize, timeout: Duration, pred: impl Fn(&Value) -> bool) {
        let deadline = Instant::now() + timeout;
        while self.events.iter().filter(|e| pred(e)).count() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || self.wait_for(left, |_| true).is_none() {
                panic!(
                    "expected {n} matching events; got {:#?}\nstderr: {}",
                    &self.events[self.events.len().saturating_sub(20)..],
                    self.stderr()
                );
            }
        }
    }

    /// Events of one kind so far.
    pub fn of(&self, event: &str) -> Vec<&Value> {
        self.events.iter().filter(|e| e["event"] == event).collect()
    }

    /// Wait until the node accepted `n` blocks (`block_result` events with status accepted).
    pub fn wait_blocks(&mut self, n: usize) {
        self.wait_count(n, Duration::from_secs(60), accepted);
    }

    /// Ctrl-C, then wait for a clean exit (code 0), panicking with stderr otherwise.
    pub fn stop_cleanly(&mut self) {
        self.interrupt();
        let status = self.wait_exit(Duration::from_secs(20));
        assert!(status.success(), "exit {status:?}: {}", self.stderr());
    }

    /// SIGINT, as Ctrl-C.
    pub fn interrupt(&self) {
        signal(self.pid(), "-INT");
    }

    /// SIGTERM, as systemd and container runtimes stop a service.
    pub fn terminate(&self) {
        signal(self.pid(), "-TERM");
    }

    /// SIGKILL, with no chance to clean up.
    pub fn kill_hard(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Wait for the process to exit (reading the rest of its events); panics after `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // Drain what it printed before exiting.
                while self
                    .wait_for(Duration::from_millis(300), |_| false)
                    .is_some()
                {}
                if let Some(r) = self.stderr_reader.take() {
                    let _ = r.join();
                }
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!(
                    "wgminer did not exit within {timeout:?}; stderr: {}",
                    self.stderr()
                );
            }
            let _ = self.wait_for(Duration::from_millis(50), |_| false);
        }
    }
}

impl Drop for Miner {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(d) = self.scratch.take() {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

/// A block the node accepted.
pub fn accepted(e: &Value) -> bool {
    e["event"] == "block_result" && e["status"] == "accepted"
}

pub fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(ok, "kill {sig} {pid} failed");
}

/// The exit line's counters add up: every verified solution is in exactly one of them.
pub fn assert_books_balance(exit: &Value) {
    let st = &exit["status"];
    let n = |k: &str| st[k].as_u64().unwrap_or_else(|| panic!("no {k} in {exit}"));
    let solutions: u64 = st["devices"]
        .as_array()
        .expect("devices")
        .iter()
        .map(|d| d["solutions"].as_u64().expect("solutions"))
        .sum();
    assert_eq!(n("solutions"), solutions, "{exit}");
    assert_eq!(
        solutions,
        n("accepted") + n("rejected") + n("stale") + n("unanswered") + n("held") + n("pending"),
        "every solution in exactly one counter: {exit}"
    );
    assert_eq!(
        n("held") + n("pending"),
        0,
        "nothing waits once the run is over: {exit}"
    );
}
