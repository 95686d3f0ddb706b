//! The node core's Stratum V2 Template Provider, for real: an SV2 client over Noise (SRI's
//! crates, through wgminer's transport) gets templates, submits solutions that the chain takes
//! or refuses, and abuses the provider in every way a peer can (garbage before and after the
//! handshake, oversized frames, malformed and stale solutions, too many connections, random
//! messages of every type); and SRI's own pool (`pool_sv2` 0.7, built by scripts/fetch-sri.sh,
//! found through `WGMINER_TEST_POOL_SV2`) runs on the provider unchanged, and a block a miner
//! finds on it reaches the chain.
//!
//! Self-contained: its helpers are below.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bitcoin::block::{Header, Version};
use bitcoin::consensus::{deserialize, serialize, Decodable};
use bitcoin::hashes::Hash;
use bitcoin::{
    Amount, BlockHash, CompactTarget, OutPoint, ScriptBuf, Sequence, Transaction, TxIn,
    TxMerkleNode, TxOut, Witness,
};
use mining_sv2::{OpenStandardMiningChannelOwned, SubmitSharesStandardOwned};
use tokio::io::{ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use wgminer::node::sv2_tp::{TemplateProvider, TpLimits, TpStats, LIMITS};
use wgminer::node::{Chain, ChainParams, NodeCore};
use wgminer::pow::hash_meets_target;
use wgminer::sv2::common_messages_sv2::{Protocol, SetupConnectionOwned};
use wgminer::sv2::noise::{self, NoiseReader, NoiseWriter};
use wgminer::sv2::parsers_sv2::{
    AnyMessageOwned, CommonMessagesOwned, Mining, MiningOwned, TemplateDistributionOwned,
};
use wgminer::sv2::template_distribution_sv2::{
    CoinbaseOutputConstraintsOwned, NewTemplateOwned, RequestTransactionDataOwned,
    SetNewPrevHashOwned, SubmitSolutionOwned,
};

/// How long any one answer may take.
const WAIT: Duration = Duration::from_secs(20);

/// A directory under the system temp dir, removed on drop.
pub(crate) struct TempDir(pub(crate) PathBuf);

impl TempDir {
    pub(crate) fn new(tag: &str) -> TempDir {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let dir =
            std::env::temp_dir().join(format!("wgminer-sv2-{tag}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A fresh regtest node core and a template provider on a free loopback port.
pub(crate) async fn provider(dir: &TempDir, limits: TpLimits) -> (Arc<NodeCore>, TemplateProvider) {
    let chain = Chain::open(&dir.0.join("regtest"), ChainParams::regtest()).unwrap();
    let core = NodeCore::new(chain);
    let tp = TemplateProvider::start_with_limits(
        Arc::clone(&core),
        "127.0.0.1:0".parse().unwrap(),
        limits,
    )
    .await
    .unwrap();
    (core, tp)
}

fn count(counter: &AtomicU64) -> u64 {
    TpStats::get(counter)
}

/// Wait until `f` holds (the provider answers nothing to a solution; its counters tell).
async fn until(what: &str, f: impl Fn() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < WAIT, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// An SV2 template distribution client, as a pool is one.
struct Client {
    reader: NoiseReader<ReadHalf<TcpStream>>,
    writer: NoiseWriter<WriteHalf<TcpStream>>,
}

impl Client {
    /// Connect and run the Noise handshake, pinning the provider's authority key.
    async fn connect(tp: &TemplateProvider) -> Result<Client, noise::NoiseError> {
        let socket = TcpStream::connect(tp.addr()).await?;
        let initiator = noise::initiator(Some(tp.authority_public_key()))?;
        let (reader, writer) = noise::connect(socket, initiator, WAIT, 1 << 20).await?;
        Ok(Client { reader, writer })
    }

    async fn send(&mut self, m: AnyMessageOwned) {
        self.writer.send(m).await.unwrap();
    }

    async fn send_td(&mut self, m: TemplateDistributionOwned) {
        self.send(AnyMessageOwned::TemplateDistribution(m)).await;
    }

    async fn recv(&mut self) -> Result<AnyMessageOwned, noise::NoiseError> {
        let mut frame = tokio::time::timeout(WAIT, self.reader.read_frame())
            .await
            .expect("an answer in time")?;
        Ok(frame
            .parse()
            .expect("the provider's frames parse")
            .into_owned())
    }

    async fn recv_td(&mut self) -> TemplateDistributionOwned {
        match self.recv().await.unwrap() {
            AnyMessageOwned::TemplateDistribution(m) => m,
            other => panic!("expected a template distribution message, got {other}"),
        }
    }

    /// Until the provider closes the connection (an error or end of stream, not a frame).
    async fn closed(&mut self) {
        let start = Instant::now();
        loop {
            assert!(start.elapsed() < WAIT, "the provider kept the connection");
            if self.recv().await.is_err() {
                return;
            }
        }
    }

    async fn setup(&mut self, protocol: Protocol) -> CommonMessagesOwned {
        self.try_setup(protocol).await.unwrap()
    }

    /// `SetupConnection` and its answer, or why the connection failed.
    async fn try_setup(
        &mut self,
        protocol: Protocol,
    ) -> Result<CommonMessagesOwned, noise::NoiseError> {
        let s = |v: &str| v.to_owned().try_into().unwrap();
        self.writer
            .send(AnyMessageOwned::Common(
                CommonMessagesOwned::SetupConnection(SetupConnectionOwned {
                    protocol,
                    min_version: 2,
                    max_version: 2,
                    flags: 0,
                    endpoint_host: s("127.0.0.1"),
                    endpoint_port: 0,
                    vendor: s("wgminer-test"),
                    hardware_version: s(""),
                    firmware: s(""),
                    device_id: s(""),
                }),
            ))
            .await?;
        match self.recv().await? {
            AnyMessageOwned::Common(m) => Ok(m),
            other => panic!("expected a setup answer, got {other}"),
        }
    }

    /// Set up for template distribution, send constraints, and return the first template and
    /// the prev hash that makes it current.
    async fn subscribe(&mut self) -> (NewTemplateOwned, SetNewPrevHashOwned) {
        let answer = self.setup(Protocol::TemplateDistributionProtocol).await;
        assert!(
            matches!(answer, CommonMessagesOwned::SetupConnectionSuccess(ref s) if s.used_version == 2),
            "{answer}"
        );
        self.constraints().await
    }

    /// Send constraints; the first template and its prev hash.
    async fn constraints(&mut self) -> (NewTemplateOwned, SetNewPrevHashOwned) {
        self.send_td(TemplateDistributionOwned::CoinbaseOutputConstraints(
            CoinbaseOutputConstraintsOwned {
                coinbase_output_max_additional_size: 100,
                coinbase_output_max_additional_sigops: 4,
            },
        ))
        .await;
        self.next_tip().await
    }

    /// A future template and the SetNewPrevHash that makes it current.
    async fn next_tip(&mut self) -> (NewTemplateOwned, SetNewPrevHashOwned) {
        let TemplateDistributionOwned::NewTemplate(t) = self.recv_td().await else {
            panic!("expected NewTemplate")
        };
        assert!(t.future_template, "a new tip's template is a future one");
        let TemplateDistributionOwned::SetNewPrevHash(p) = self.recv_td().await else {
            panic!("expected SetNewPrevHash")
        };
        assert_eq!(p.template_id, t.template_id);
        (t, p)
    }
}

fn prev_hash(p: &SetNewPrevHashOwned) -> BlockHash {
    BlockHash::from_byte_array(*p.prev_hash.as_array())
}

/// A pool's coinbase for the template: the template's scriptSig start, our tag and
/// `extranonce`, the value paid to a P2WPKH, then the template's outputs; with the witness
/// reserved value, as SRI's pool builds it.
fn coinbase(t: &NewTemplateOwned, extranonce: u64) -> Transaction {
    let mut script_sig = t.coinbase_prefix.as_bytes().to_vec();
    script_sig.push(8);
    script_sig.extend_from_slice(&extranonce.to_le_bytes());
    let mut output = vec![TxOut {
        value: Amount::from_sat(t.coinbase_tx_value_remaining),
        script_pubkey: ScriptBuf::new_p2wpkh(&bitcoin::WPubkeyHash::from_byte_array([7; 20])),
    }];
    let mut outputs = t.coinbase_tx_outputs.as_bytes();
    for _ in 0..t.coinbase_tx_outputs_count {
        output.push(TxOut::consensus_decode(&mut outputs).unwrap());
    }
    Transaction {
        version: bitcoin::transaction::Version::non_standard(t.coinbase_tx_version as i32),
        lock_time: bitcoin::absolute::LockTime::from_consensus(t.coinbase_tx_locktime),
        input: vec![TxIn {
            previous_output: OutPoint::null(),
            script_sig: ScriptBuf::from_bytes(script_sig),
            sequence: Sequence(t.coinbase_tx_input_sequence),
            witness: Witness::from_slice(&[[0u8; 32]]),
        }],
        output,
    }
}

/// A solution for the template (proof of work done here: regtest's target is met by about
/// every other hash), and the hash of the block it makes.
fn solve(
    t: &NewTemplateOwned,
    p: &SetNewPrevHashOwned,
    extranonce: u64,
) -> (SubmitSolutionOwned, BlockHash) {
    assert_eq!(t.merkle_path.len(), 0, "coinbase-only templates");
    let cb = coinbase(t, extranonce);
    let mut header = Header {
        version: Version::from_consensus(t.version as i32),
        prev_blockhash: prev_hash(p),
        merkle_root: TxMerkleNode::from_byte_array(cb.compute_txid().to_byte_array()),
        time: p.header_timestamp,
        bits: CompactTarget::from_consensus(p.n_bits),
        nonce: 0,
    };
    let target = bitcoin::Target::from_compact(header.bits);
    while !hash_meets_target(&header.block_hash(), &target) {
        header.nonce += 1;
    }
    let solution = SubmitSolutionOwned {
        template_id: t.template_id,
        version: t.version,
        header_timestamp: header.time,
        header_nonce: header.nonce,
        coinbase_tx: serialize(&cb).try_into().unwrap(),
    };
    (solution, header.block_hash())
}

#[tokio::test]
async fn templates_flow_and_solutions_go_through_the_chain() {
    let dir = TempDir::new("flow");
    let (core, tp) = provider(&dir, LIMITS).await;
    let mut client = Client::connect(&tp).await.unwrap();
    let (t1, p1) = client.subscribe().await;
    assert_eq!(prev_hash(&p1), core.tip().1);
    assert_eq!(t1.coinbase_tx_value_remaining, 50 * 100_000_000);
    assert_eq!(t1.coinbase_tx_outputs_count, 1, "the witness commitment");

    // A valid solution becomes the tip, and the client hears of it.
    let (solution, hash) = solve(&t1, &p1, 1);
    client
        .send_td(TemplateDistributionOwned::SubmitSolution(solution))
        .await;
    let (t2, p2) = client.next_tip().await;
    assert_eq!(core.tip(), (1, hash));
    assert_eq!(prev_hash(&p2), hash);
    assert!(t2.template_id > t1.template_id);
    assert_eq!(count(&tp.stats().blocks_accepted), 1);
    let stored = core.with_chain(|c| c.block(&hash)).unwrap().unwrap();
    assert_eq!(stored.txdata.len(), 1);

    // A later CoinbaseOutputConstraints gets a fresh template for the same tip.
    client
        .send_td(TemplateDistributionOwned::CoinbaseOutputConstraints(
            CoinbaseOutputConstraintsOwned {
                coinbase_output_max_additional_size: 200,
                coinbase_output_max_additional_sigops: 4,
            },
        ))
        .await;
    let TemplateDistributionOwned::NewTemplate(t3) = client.recv_td().await else {
        panic!("expected NewTemplate")
    };
    assert!(!t3.future_template);

    // Transaction data: the current template's (none), refusals for stale and unknown ones.
    for (id, expect) in [
        (t3.template_id, None),
        (t1.template_id, Some("stale-template-id")),
        (999, Some("template-id-not-found")),
    ] {
        client
            .send_td(TemplateDistributionOwned::RequestTransactionData(
                RequestTransactionDataOwned { template_id: id },
            ))
            .await;
        match (client.recv_td().await, expect) {
            (TemplateDistributionOwned::RequestTransactionDataSuccess(s), None) => {
                assert_eq!(s.template_id, id);
                assert_eq!(s.transaction_list.len(), 0);
            }
            (TemplateDistributionOwned::RequestTransactionDataError(e), Some(code)) => {
                assert_eq!(e.template_id, id);
                assert_eq!(e.error_code.as_bytes(), code.as_bytes());
            }
            (other, _) => panic!("template {id}: unexpected {other}"),
        }
    }
    tp.stop().await;
}

#[tokio::test]
async fn bad_solutions_are_refused_and_the_chain_is_unchanged() {
    let dir = TempDir::new("bad");
    let (core, tp) = provider(&dir, LIMITS).await;
    let mut client = Client::connect(&tp).await.unwrap();
    let (t1, p1) = client.subscribe().await;
    let (solution, hash1) = solve(&t1, &p1, 1);
    client
        .send_td(TemplateDistributionOwned::SubmitSolution(solution))
        .await;
    let (t2, p2) = client.next_tip().await;
    assert_eq!(core.tip(), (1, hash1));
    let stats = tp.stats();

    // Stale: a valid block on the previous tip (another extranonce, so not a duplicate).
    let (stale, stale_hash) = solve(&t1, &p1, 2);
    assert_ne!(stale_hash, hash1);
    client
        .send_td(TemplateDistributionOwned::SubmitSolution(stale))
        .await;
    until("the stale solution's refusal", || {
        count(&stats.solutions_refused) == 1
    })
    .await;

    // Malformed: a coinbase that is no transaction; one that is not a coinbase.
    let mut garbage = SubmitSolutionOwned {
        template_id: t2.template_id,
        version: t2.version,
        header_timestamp: 0,
        header_nonce: 0,
        coinbase_tx: b"not a transaction".to_vec().try_into().unwrap(),
    };
    client
        .send_td(TemplateDistributionOwned::SubmitSolution(garbage.clone()))
        .await;
    until("the malformed solution's refusal", || {
        count(&stats.solutions_refused) == 2
    })
    .await;
    let mut spend = coinbase(&t2, 3);
    spend.input[0].previous_output.vout = 0;
    garbage.coinbase_tx = serialize(&spend).try_into().unwrap();
    client
        .send_td(TemplateDistributionOwned::SubmitSolution(garbage.clone()))
        .await;
    until("the non-coinbase's refusal", || {
        count(&stats.solutions_refused) == 3
    })
    .await;

    // Unknown template; and a solution whose proof of work fails.
    garbage.template_id = 999;
    client
        .send_td(TemplateDistributionOwned::SubmitSolution(garbage))
        .await;
    until("the unknown template's refusal", || {
        count(&stats.solutions_refused) == 4
    })
    .await;
    let (mut weak, _) = solve(&t2, &p2, 4);
    weak.header_nonce = weak.header_nonce.wrapping_add(1);
    // About half of all nonces meet regtest's target: find one that does not.
    while {
        let cb: Transaction = deserialize(weak.coinbase_tx.as_bytes()).unwrap();
        let h = Header {
            version: Version::from_consensus(weak.version as i32),
            prev_blockhash: hash1,
            merkle_root: TxMerkleNode::from_byte_array(cb.compute_txid().to_byte_array()),
            time: weak.header_timestamp,
            bits: CompactTarget::from_consensus(p1.n_bits),
            nonce: weak.header_nonce,
        };
        hash_meets_target(&h.block_hash(), &bitcoin::Target::from_compact(h.bits))
    } {
        weak.header_nonce = weak.header_nonce.wrapping_add(1);
    }
    client
        .send_td(TemplateDistributionOwned::SubmitSolution(weak))
        .await;
    until("the high hash's refusal", || {
        count(&stats.solutions_refused) == 5
    })
    .await;

    // Nothing reached the chain, and the connection still serves.
    assert_eq!(core.tip(), (1, hash1));
    assert_eq!(count(&stats.blocks_accepted), 1);
    client
        .send_td(TemplateDistributionOwned::RequestTransactionData(
            RequestTransactionDataOwned {
                template_id: t2.template_id,
            },
        ))
        .await;
    assert!(matches!(
        client.recv_td().await,
        TemplateDistributionOwned::RequestTransactionDataSuccess(_)
    ));
    tp.stop().await;
}

#[tokio::test]
async fn garbage_oversized_frames_and_floods_close_only_that_connection() {
    let dir = TempDir::new("abuse");
    let limits = TpLimits {
        max_connections: 3,
        setup_timeout: Duration::from_millis(500),
        max_frame: 4096,
        ..LIMITS
    };
    let (core, tp) = provider(&dir, limits).await;
    let stats = Arc::clone(tp.stats());
    let tip = core.tip();

    // Garbage instead of a handshake.
    let mut raw = std::net::TcpStream::connect(tp.addr()).unwrap();
    raw.write_all(&[0x5a; 300]).unwrap();
    let _ = raw.shutdown(std::net::Shutdown::Write);
    until("the garbage handshake's end", || {
        count(&stats.protocol_errors) >= 1
    })
    .await;

    // Garbage after the handshake: undecryptable, the connection ends.
    let mut client = Client::connect(&tp).await.unwrap();
    client.subscribe().await;
    client.writer.send_raw(&[0xa5; 100]).await.unwrap();
    client.closed().await;

    // An oversized frame: a 10 kB coinbase against a 4 kB frame limit.
    let mut client = Client::connect(&tp).await.unwrap();
    let (t, _) = client.subscribe().await;
    let errors = count(&stats.protocol_errors);
    client
        .send_td(TemplateDistributionOwned::SubmitSolution(
            SubmitSolutionOwned {
                template_id: t.template_id,
                version: t.version,
                header_timestamp: 0,
                header_nonce: 0,
                coinbase_tx: vec![0u8; 10_000].try_into().unwrap(),
            },
        ))
        .await;
    client.closed().await;
    until("the oversized frame's error", || {
        count(&stats.protocol_errors) > errors
    })
    .await;

    // No SetupConnection in time; no CoinbaseOutputConstraints in time; a wrong protocol.
    let mut silent = Client::connect(&tp).await.unwrap();
    silent.closed().await;
    let mut half = Client::connect(&tp).await.unwrap();
    half.setup(Protocol::TemplateDistributionProtocol).await;
    half.closed().await;
    let mut mining = Client::connect(&tp).await.unwrap();
    let answer = mining.setup(Protocol::MiningProtocol).await;
    assert!(
        matches!(answer, CommonMessagesOwned::SetupConnectionError(ref e) if e.error_code.as_bytes() == b"unsupported-protocol"),
        "{answer}"
    );
    mining.closed().await;

    // A connection past the limit is closed at once; the others keep being served.
    let mut open = Vec::new();
    for _ in 0..3 {
        let mut c = Client::connect(&tp).await.unwrap();
        c.subscribe().await;
        open.push(c);
    }
    let refused = count(&stats.connections_refused);
    let extra = Client::connect(&tp).await;
    if let Ok(mut extra) = extra {
        extra.closed().await;
    }
    until("the extra connection's refusal", || {
        count(&stats.connections_refused) == refused + 1
    })
    .await;
    drop(open);

    assert_eq!(core.tip(), tip, "the chain is unchanged");
    assert_eq!(count(&stats.blocks_accepted), 0);
    // Once the closed connections have ended, a new client is served.
    let start = Instant::now();
    let mut after = loop {
        if let Ok(mut c) = Client::connect(&tp).await {
            if c.try_setup(Protocol::TemplateDistributionProtocol)
                .await
                .is_ok()
            {
                break c;
            }
        }
        assert!(
            start.elapsed() < WAIT,
            "no connection served after the flood"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let (_, p) = after.constraints().await;
    assert_eq!(prev_hash(&p), tip.1);
    tp.stop().await;
}

#[tokio::test]
async fn the_authority_key_survives_a_restart() {
    let dir = TempDir::new("key");
    let (core, tp) = provider(&dir, LIMITS).await;
    assert!(tp.key_created());
    let key = tp.authority_public_key();
    tp.stop().await;
    let tp = TemplateProvider::start(core, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    assert!(!tp.key_created());
    assert_eq!(tp.authority_public_key(), key);
    assert_eq!(
        key.to_string()
            .parse::<wgminer::sv2::AuthorityPublicKey>()
            .unwrap(),
        key
    );
    tp.stop().await;
}

// ---- SRI's pool on the provider -------------------------------------------------------------

/// SRI's pool_sv2, or `None` (skip) outside CI when it is not installed.
pub(crate) fn pool_sv2() -> Option<PathBuf> {
    match std::env::var_os("WGMINER_TEST_POOL_SV2") {
        Some(p) if Path::new(&p).is_file() => Some(PathBuf::from(p)),
        other => {
            let why = match other {
                Some(p) => format!("WGMINER_TEST_POOL_SV2={p:?} is not a file"),
                None => "WGMINER_TEST_POOL_SV2 is not set".into(),
            };
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!(
                    "{why}: run scripts/fetch-sri.sh (scripts/test.sh does) and export its output"
                );
            }
            eprintln!("skipped: {why} (scripts/fetch-sri.sh installs SRI's pool)");
            None
        }
    }
}

/// A free loopback port (bound, then released for the pool to take).
pub(crate) fn free_port() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// SRI's pool (answering every share at once) on a fresh node core's provider, with its first
/// template handed out: the pool's binary, the folder, the core, the provider and the pool; or
/// `None` (skip) outside CI when the pool is not installed.
pub(crate) async fn sri_on_tp(
    tag: &str,
) -> Option<(PathBuf, TempDir, Arc<NodeCore>, TemplateProvider, Pool)> {
    let bin = pool_sv2()?;
    let dir = TempDir::new(tag);
    let (core, tp) = provider(&dir, LIMITS).await;
    let mut pool = Pool::start_batched(&bin, &dir.0, &tp, 1);
    pool.until("SetNewPrevHash { template_id: 1,", 1).await;
    Some((bin, dir, core, tp, pool))
}

/// A running pool, killed on drop; its log is kept in a file.
pub(crate) struct Pool {
    child: Child,
    log: PathBuf,
    /// Where it listens for miners.
    pub(crate) listen: SocketAddr,
}

impl Pool {
    fn start(bin: &Path, dir: &Path, tp: &TemplateProvider) -> Pool {
        Pool::start_batched(bin, dir, tp, 10)
    }

    /// A pool that answers shares in batches of `batch` (`SubmitSharesSuccess` after each).
    pub(crate) fn start_batched(bin: &Path, dir: &Path, tp: &TemplateProvider, batch: u32) -> Pool {
        let listen = free_port();
        let config = format!(
            r#"authority_public_key = "{SRI_POOL_PUBLIC_KEY}"
authority_secret_key = "{SRI_POOL_SECRET_KEY}"
cert_validity_sec = 3600
listen_address = "{listen}"
coinbase_reward_script = "raw(0014{payout})"
server_id = 1
pool_signature = "wgminer-test"
shares_per_minute = 6.0
share_batch_size = {batch}

[template_provider_type.Sv2Tp]
address = "{tp}"
public_key = "{key}"
"#,
            payout = "07".repeat(20),
            tp = tp.addr(),
            key = tp.authority_public_key(),
        );
        let config_file = dir.join("pool.toml");
        std::fs::write(&config_file, config).unwrap();
        let log = dir.join("pool.log");
        let child = Pool::spawn(bin, dir, &log);
        Pool { child, log, listen }
    }

    fn spawn(bin: &Path, dir: &Path, log: &Path) -> Child {
        let out = std::fs::File::create(log).unwrap();
        Command::new(bin)
            .arg("-c")
            .arg(dir.join("pool.toml"))
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap()
    }

    /// Kill the pool (as a crash would), then start it again on the same port and log file.
    pub(crate) fn restart(&mut self, bin: &Path, dir: &Path) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.child = Pool::spawn(bin, dir, &self.log);
    }

    /// Kill the pool (as a crash would).
    pub(crate) fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Wait until the log has `n` lines containing `text`.
    pub(crate) async fn until(&mut self, text: &str, n: usize) -> String {
        let start = Instant::now();
        loop {
            let log = self.log();
            if log.lines().filter(|l| l.contains(text)).count() >= n {
                return log;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("pool_sv2 exited ({status}) before logging {text:?} {n} times:\n{log}");
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "pool_sv2 did not log {text:?} {n} times in 60 s:\n{log}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A minimal Stratum V2 miner for the pool: one standard channel, CPU hashing of the header the
/// pool's job gives (test code only; wgminer's SV2 mining client is a later step).
struct TestMiner {
    reader: NoiseReader<ReadHalf<TcpStream>>,
    writer: NoiseWriter<WriteHalf<TcpStream>>,
}

impl TestMiner {
    async fn connect(pool: SocketAddr) -> TestMiner {
        let start = Instant::now();
        let socket = loop {
            match TcpStream::connect(pool).await {
                Ok(s) => break s,
                Err(e) => assert!(start.elapsed() < WAIT, "the pool does not listen: {e}"),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let key = SRI_POOL_PUBLIC_KEY.parse().unwrap();
        let initiator = noise::initiator(Some(key)).unwrap();
        let (reader, writer) = noise::connect(socket, initiator, WAIT, 1 << 20)
            .await
            .unwrap();
        TestMiner { reader, writer }
    }

    async fn recv(&mut self) -> AnyMessageOwned {
        let mut frame = tokio::time::timeout(WAIT, self.reader.read_frame())
            .await
            .expect("a message from the pool in time")
            .unwrap();
        match frame.msg_type {
            0x00..=0x04 => frame.parse().unwrap().into_owned(),
            t => AnyMessageOwned::Mining(
                Mining::try_from((t, frame.payload.as_mut_slice()))
                    .unwrap()
                    .into_owned(),
            ),
        }
    }

    /// Set up (standard jobs), open a channel, mine the first job the pool makes current until
    /// a share meets the channel's target, submit it; returns the block hash it makes.
    async fn mine_one(&mut self) -> BlockHash {
        let s = |v: &str| v.to_owned().try_into().unwrap();
        self.writer
            .send(AnyMessageOwned::Common(
                CommonMessagesOwned::SetupConnection(SetupConnectionOwned {
                    protocol: Protocol::MiningProtocol,
                    min_version: 2,
                    max_version: 2,
                    flags: 1, // REQUIRES_STANDARD_JOBS
                    endpoint_host: s("127.0.0.1"),
                    endpoint_port: 0,
                    vendor: s("wgminer-test"),
                    hardware_version: s(""),
                    firmware: s(""),
                    device_id: s(""),
                }),
            ))
            .await
            .unwrap();
        let answer = self.recv().await;
        assert!(
            matches!(
                answer,
                AnyMessageOwned::Common(CommonMessagesOwned::SetupConnectionSuccess(_))
            ),
            "{answer}"
        );
        self.writer
            .send(AnyMessageOwned::Mining(
                MiningOwned::OpenStandardMiningChannel(OpenStandardMiningChannelOwned {
                    request_id: 1,
                    user_identity: s("wgminer-test"),
                    nominal_hash_rate: 1000.0,
                    max_target: [0xff; 32].into(),
                }),
            ))
            .await
            .unwrap();
        let mut channel = None;
        let mut jobs = Vec::new();
        let mut prev = None;
        let start = Instant::now();
        let (channel_id, target, job, prev) = loop {
            assert!(start.elapsed() < WAIT, "no job from the pool");
            match self.recv().await {
                AnyMessageOwned::Mining(MiningOwned::OpenStandardMiningChannelSuccess(m)) => {
                    channel = Some((
                        m.channel_id,
                        bitcoin::Target::from_le_bytes(*m.target.as_array()),
                    ));
                }
                AnyMessageOwned::Mining(MiningOwned::NewMiningJob(j)) => jobs.push(j),
                AnyMessageOwned::Mining(MiningOwned::SetNewPrevHash(p)) => prev = Some(p),
                other => eprintln!("from the pool, not needed here: {other}"),
            }
            if let (Some((id, target)), Some(p)) = (channel, prev.as_ref()) {
                if let Some(j) = jobs.iter().find(|j| j.job_id == p.job_id) {
                    break (id, target, j.clone(), p.clone());
                }
            }
        };
        let mut header = Header {
            version: Version::from_consensus(job.version as i32),
            prev_blockhash: BlockHash::from_byte_array(*prev.prev_hash.as_array()),
            merkle_root: TxMerkleNode::from_byte_array(*job.merkle_root.as_array()),
            time: prev.min_ntime,
            bits: CompactTarget::from_consensus(prev.nbits),
            nonce: 0,
        };
        while !hash_meets_target(&header.block_hash(), &target) {
            header.nonce += 1;
        }
        self.writer
            .send(AnyMessageOwned::Mining(MiningOwned::SubmitSharesStandard(
                SubmitSharesStandardOwned {
                    channel_id,
                    sequence_number: 0,
                    job_id: job.job_id,
                    nonce: header.nonce,
                    ntime: header.time,
                    version: job.version,
                },
            )))
            .await
            .unwrap();
        header.block_hash()
    }
}

/// SRI's published example key pair, which the test pool uses for its own Noise listener.
pub(crate) const SRI_POOL_PUBLIC_KEY: &str = "9auqWEzQDVyd2oe1JVGFLMLHZtCo2FFqZwtKA5gd9xbuEu7PH72";
const SRI_POOL_SECRET_KEY: &str = "mkDLTBBRxdBv998612qipDYoTK3YUrqLe8uWw7gu3iXbSrn2n";

#[tokio::test]
async fn sri_pool_runs_on_the_template_provider_and_its_block_reaches_the_chain() {
    let Some(bin) = pool_sv2() else { return };
    let dir = TempDir::new("sri");
    let (core, tp) = provider(&dir, LIMITS).await;
    let mut pool = Pool::start(&bin, &dir.0, &tp);
    pool.until("Setup Connection done", 1).await;
    pool.until("NewTemplate(template_id: 1, future_template: true", 1)
        .await;
    pool.until("SetNewPrevHash { template_id: 1,", 1).await;
    assert_eq!(count(&tp.stats().connections), 1);

    // A miner on the pool finds a block: the pool submits it to the provider, the chain takes
    // it, and the pool hears of the new tip.
    let mut miner = TestMiner::connect(pool.listen).await;
    let hash = miner.mine_one().await;
    pool.until("Block Found", 1).await;
    until("the pool's block in the chain", || core.tip().0 == 1).await;
    assert_eq!(core.tip().1, hash);
    assert_eq!(count(&tp.stats().blocks_accepted), 1);
    assert_eq!(count(&tp.stats().solutions_refused), 0);
    let log = pool.until("SetNewPrevHash { template_id: 2,", 1).await;
    assert!(
        log.contains("NewTemplate(template_id: 2, future_template: true"),
        "{log}"
    );

    // A block from elsewhere (straight into the core): the pool hears of that tip too.
    let t = core.template();
    let new_template = wgminer::node::sv2_tp::messages::new_template(&t, 99, true).unwrap();
    let p = wgminer::node::sv2_tp::messages::set_new_prev_hash(&t, 99);
    let (solution, hash) = solve(&new_template, &p, 42);
    let block = wgminer::node::sv2_tp::messages::solution_block(
        &t,
        solution.version,
        solution.header_timestamp,
        solution.header_nonce,
        solution.coinbase_tx.as_bytes(),
    )
    .unwrap();
    core.submit(&block).unwrap();
    assert_eq!(core.tip(), (2, hash));
    let log = pool.until("SetNewPrevHash { template_id: 3,", 1).await;
    eprintln!(
        "{}",
        log.lines()
            .filter(|l| l.contains("Received")
                || l.contains("Block Found")
                || l.contains("Template Provider"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    drop(pool);
    tp.stop().await;
}

// ---- Random client messages -----------------------------------------------------------------

/// Random payloads for every message type a client can name (and mutations of real messages),
/// through SRI's parser and the provider's session, with templates arriving in between: no
/// panic, and a refusal or a close is all a bad message gets.
#[test]
fn random_client_messages_never_panic_the_session() {
    use rand::{Rng, SeedableRng};
    use wgminer::node::sv2_tp::session::{Session, Step};
    use wgminer::sv2::Frame;

    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5752_5632);
    let dir = TempDir::new("fuzz");
    let chain = Chain::open(&dir.0.join("regtest"), ChainParams::regtest()).unwrap();
    let template = Arc::new(chain.template(1_800_000_000));
    let real = binary_sv2::to_bytes(SubmitSolutionOwned {
        template_id: 1,
        version: 0x2000_0000,
        header_timestamp: 1,
        header_nonce: 2,
        coinbase_tx: serialize(&coinbase(
            &wgminer::node::sv2_tp::messages::new_template(&template, 1, true).unwrap(),
            1,
        ))
        .try_into()
        .unwrap(),
    })
    .unwrap();
    let types: Vec<u8> = (0x00..=0x04)
        .chain(0x70..=0x76)
        .chain([0x10, 0xff])
        .collect();
    let mut outcomes = [0usize; 4];
    for round in 0..20_000 {
        let mut session = Session::new();
        // Most rounds start set up and served, so deeper states are reached.
        if round % 4 != 0 {
            let mut setup = Frame {
                extension: 0,
                channel_msg: false,
                msg_type: 0x00,
                payload: binary_sv2::to_bytes(SetupConnectionOwned {
                    protocol: Protocol::TemplateDistributionProtocol,
                    min_version: 2,
                    max_version: 2,
                    flags: 0,
                    endpoint_host: "h".to_owned().try_into().unwrap(),
                    endpoint_port: 0,
                    vendor: "v".to_owned().try_into().unwrap(),
                    hardware_version: "".to_owned().try_into().unwrap(),
                    firmware: "".to_owned().try_into().unwrap(),
                    device_id: "".to_owned().try_into().unwrap(),
                })
                .unwrap(),
            };
            session.on_message(setup.parse().unwrap());
            let mut constraints = Frame {
                extension: 0,
                channel_msg: false,
                msg_type: 0x70,
                payload: vec![100, 0, 0, 0, 4, 0],
            };
            session.on_message(constraints.parse().unwrap());
            session.on_template(Arc::clone(&template)).unwrap();
        }
        for _ in 0..4 {
            let msg_type = types[rng.random_range(0..types.len())];
            let payload = if msg_type == 0x76 && rng.random_bool(0.5) {
                let mut p = real.clone();
                for _ in 0..rng.random_range(1..4) {
                    let i = rng.random_range(0..p.len());
                    p[i] = rng.random();
                }
                p.truncate(rng.random_range(0..=p.len()));
                p
            } else {
                (0..rng.random_range(0..200))
                    .map(|_| rng.random())
                    .collect()
            };
            let mut frame = Frame {
                extension: 0,
                channel_msg: false,
                msg_type,
                payload,
            };
            let Ok(message) = frame.parse() else {
                outcomes[0] += 1;
                continue;
            };
            for step in session.on_message(message) {
                match step {
                    Step::Refused(_) => outcomes[1] += 1,
                    Step::Close(_) => outcomes[2] += 1,
                    Step::Submit { .. } | Step::Send(_) | Step::FetchTemplate => outcomes[3] += 1,
                }
            }
            if rng.random_bool(0.1) {
                session.on_template(Arc::clone(&template)).unwrap();
            }
        }
    }
    eprintln!("unparsed, refused, closed, acted on: {outcomes:?}");
    // Every kind of outcome was reached.
    assert!(outcomes.iter().all(|&n| n > 0), "{outcomes:?}");
}

/// `wgminer node --sv2-tp-bind`: the binary serves templates and prints the authority key a
/// pool pins; a Noise handshake pinned to that key succeeds, one pinned to another key fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wgminer_node_serves_templates_under_the_printed_key() {
    use std::io::BufRead as _;
    let dir = TempDir::new("sv2-tp-binary");
    let tp = free_port();
    let rpc = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_wgminer"))
        .args(["node", "--datadir"])
        .arg(&dir.0)
        .args([
            "--rpc-bind",
            &rpc.to_string(),
            "--sv2-tp-bind",
            &tp.to_string(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start wgminer node");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let key = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx.recv_timeout(left).expect("the Template Provider line");
        if let Some(rest) = line.split("authority_public_key = \"").nth(1) {
            break rest.split('"').next().expect("quoted key").to_owned();
        }
    };
    let pinned: wgminer::sv2::key::AuthorityPublicKey = key.parse().expect("a valid key");
    let stream = TcpStream::connect(tp).await.expect("connect");
    let ok = noise::connect(
        stream,
        noise::initiator(Some(pinned)).expect("initiator"),
        Duration::from_secs(10),
        LIMITS.max_frame,
    )
    .await;
    assert!(ok.is_ok(), "the printed key was not the server's");
    // Another authority's key: the certificate does not verify, the miner refuses the server.
    let other_dir = TempDir::new("sv2-tp-other");
    let (_core, other) = provider(&other_dir, LIMITS).await;
    let stream = TcpStream::connect(tp).await.expect("connect");
    let wrong = noise::connect(
        stream,
        noise::initiator(Some(other.authority_public_key())).expect("initiator"),
        Duration::from_secs(10),
        LIMITS.max_frame,
    )
    .await;
    assert!(
        wrong.is_err(),
        "a server was trusted under another authority's key"
    );
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let status = child.wait().expect("wait");
    assert!(status.success(), "{status:?}");
}
