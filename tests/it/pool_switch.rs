//! The cgminer API's `switchpool` reaches the Stratum client: asked to, it leaves the pool it is
//! on for the named one (real sockets; the "pools" here only accept connections, which is all
//! a switch needs) and prefers it from then on.

use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use wgminer::stratum::client::{self, ClientConfig, ClientEvent, PoolConfig};

const LIMIT: Duration = Duration::from_secs(10);

#[tokio::test]
async fn a_switch_request_moves_the_client_to_the_named_pool() {
    let a = TcpListener::bind("127.0.0.1:0").await.expect("bind a");
    let b = TcpListener::bind("127.0.0.1:0").await.expect("bind b");
    let pool = |l: &TcpListener| PoolConfig {
        url: format!("stratum+tcp://{}", l.local_addr().expect("addr"))
            .parse()
            .expect("url"),
        user: "u".into(),
        password: "x".into(),
    };
    let config = ClientConfig::new(vec![pool(&a), pool(&b)]);
    let switch = config.switch.clone();
    let (events_tx, mut events) = mpsc::channel(64);
    let (_shares_tx, shares_rx) = mpsc::channel(8);
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let client = tokio::spawn(client::run(config, events_tx, shares_rx, async {
        let _ = stop_rx.await;
    }));

    let (mut on_a, _) = tokio::time::timeout(LIMIT, a.accept())
        .await
        .expect("the client connects to the first pool")
        .expect("accept");
    switch.request(1);
    let (_on_b, _) = tokio::time::timeout(LIMIT, b.accept())
        .await
        .expect("the client moved to the second pool")
        .expect("accept");
    // The first pool's connection was closed, not left open beside the new one.
    let mut rest = Vec::new();
    tokio::time::timeout(LIMIT, on_a.read_to_end(&mut rest))
        .await
        .expect("the old connection ends")
        .expect("read");
    let mut said = Vec::new();
    while let Ok(ev) = events.try_recv() {
        if let ClientEvent::Disconnected { pool, reason } = ev {
            said.push((pool, reason));
        }
    }
    assert!(
        said.iter()
            .any(|(pool, why)| *pool == 0 && why.contains("switching to pool 1")),
        "{said:?}"
    );
    // An index beyond the list is ignored: the client stays where it is.
    switch.request(7);
    assert!(
        tokio::time::timeout(Duration::from_millis(500), a.accept())
            .await
            .is_err(),
        "the client left the pool for a pool that does not exist"
    );
    let _ = stop_tx.send(());
    let _ = tokio::time::timeout(LIMIT, client).await;
}
