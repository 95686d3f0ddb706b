//! A stand-in bitcoind for what a real one cannot be made to do on cue: stop answering right
//! after accepting a block, hold a `submitblock` without an answer, answer every longpoll at
//! once with the same template. JSON-RPC over HTTP/1.1 on 127.0.0.1 (keep-alive, one request
//! at a time per connection), served by a tokio runtime on its own thread; each request is
//! answered by a closure of its method and params, and the calls of each method are counted.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// How the fake node answers one call.
pub enum Reply {
    /// `{"result": …, "error": null}` at once.
    Result(Value),
    /// The result, then the node is gone: the listener closes and so does every connection
    /// (later calls find nothing listening, as when bitcoind stops).
    ThenGone(Value),
    /// No answer ever: the connection is held open.
    Never,
}

/// One call, as the handler sees it.
pub struct Call<'a> {
    pub method: &'a str,
    pub params: &'a Value,
}

pub struct FakeNode {
    pub addr: SocketAddr,
    calls: Arc<Mutex<HashMap<String, usize>>>,
    gone: watch::Sender<bool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

type Handler = dyn Fn(&Call) -> Reply + Send + Sync;

impl FakeNode {
    pub fn start(handler: impl Fn(&Call) -> Reply + Send + Sync + 'static) -> FakeNode {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        std_listener.set_nonblocking(true).unwrap();
        let addr = std_listener.local_addr().unwrap();
        let calls = Arc::new(Mutex::new(HashMap::new()));
        let (gone, gone_rx) = watch::channel(false);
        let handler: Arc<Handler> = Arc::new(handler);
        let (counts, switch) = (Arc::clone(&calls), gone.clone());
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(serve(std_listener, handler, counts, switch, gone_rx));
        });
        FakeNode {
            addr,
            calls,
            gone,
            thread: Some(thread),
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Calls of `method` so far.
    pub fn calls(&self, method: &str) -> usize {
        self.calls.lock().unwrap().get(method).copied().unwrap_or(0)
    }
}

impl Drop for FakeNode {
    fn drop(&mut self) {
        let _ = self.gone.send(true);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn serve(
    listener: std::net::TcpListener,
    handler: Arc<Handler>,
    calls: Arc<Mutex<HashMap<String, usize>>>,
    gone: watch::Sender<bool>,
    gone_rx: watch::Receiver<bool>,
) {
    let listener = TcpListener::from_std(listener).unwrap();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((socket, _)) = accepted else { continue };
                let (h, c, g, rx) = (Arc::clone(&handler), Arc::clone(&calls), gone.clone(), gone.subscribe());
                tokio::spawn(async move {
                    tokio::select! {
                        _ = connection(socket, h, c, g) => {}
                        _ = wait_gone(rx) => {}
                    }
                });
            }
            _ = wait_gone(gone_rx.clone()) => break,
        }
    }
    // Returning drops the listener (later connections are refused) and the runtime with every
    // connection task (their sockets close).
}

async fn wait_gone(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|g| *g).await;
}

async fn connection(
    socket: TcpStream,
    handler: Arc<Handler>,
    calls: Arc<Mutex<HashMap<String, usize>>>,
    gone: watch::Sender<bool>,
) {
    let mut reader = BufReader::new(socket);
    loop {
        let mut length = 0usize;
        let mut line = String::new();
        loop {
            line.clear();
            match reader.read_line(&mut line).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((name, value)) = l.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0u8; length];
        if reader.read_exact(&mut body).await.is_err() {
            return;
        }
        let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let method = request["method"].as_str().unwrap_or("").to_owned();
        *calls.lock().unwrap().entry(method.clone()).or_insert(0) += 1;
        let call = Call {
            method: &method,
            params: &request["params"],
        };
        let (result, then_gone) = match handler(&call) {
            Reply::Result(v) => (v, false),
            Reply::ThenGone(v) => (v, true),
            Reply::Never => std::future::pending().await,
        };
        let body = json!({"result": result, "error": null, "id": request["id"]}).to_string();
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        let socket = reader.get_mut();
        if socket.write_all(head.as_bytes()).await.is_err()
            || socket.write_all(body.as_bytes()).await.is_err()
            || socket.flush().await.is_err()
        {
            return;
        }
        if then_gone {
            let _ = gone.send(true);
            return;
        }
    }
}

/// A regtest template (bits 207fffff: any CPU finds a block at once) with no transactions, on
/// top of a made-up tip at `height - 1`; with `longpoll`, that longpoll id.
pub fn regtest_template(height: u32, longpoll: Option<&str>) -> Value {
    let mut t = json!({
        "version": 0x2000_0000,
        "rules": [],
        "previousblockhash": "0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206",
        "transactions": [],
        "coinbaseaux": {"flags": ""},
        "coinbasevalue": 5_000_000_000u64,
        "mintime": 1_700_000_000u32,
        "curtime": 1_700_000_100u32,
        "bits": "207fffff",
        "height": height,
    });
    if let Some(id) = longpoll {
        t["longpollid"] = id.into();
    }
    t
}

/// `getblockchaininfo` for `chain` ("main", "test", "signet", "regtest").
pub fn chain_info(chain: &str) -> Value {
    json!({"chain": chain, "blocks": 100, "headers": 100})
}
