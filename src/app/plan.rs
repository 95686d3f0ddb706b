//! The run plan: flags, environment and config file turned once into a validated [`RunPlan`],
//! one variant per thing wgminer can do. Every check of the user's input that needs no device
//! and no network is made here and fails with a [`UsageError`] (exit code 2); the run modes in
//! [`crate::app::mode`] only carry the plan out.

use std::net::SocketAddr;
use std::path::PathBuf;

use bitcoin::ScriptBuf;
use wgminer::mining::{FailoverConfig, PoolSpec, Sv2Config};
use wgminer::node::{self, ChainParams};
use wgminer::rpc::{Auth, RpcClient};
use wgminer::stratum::client::{ClientConfig, PoolConfig, PoolUrl};
use wgminer::sv2::mining_client::ChannelKind;
use wgminer::telemetry::cgminer::{AllowList, CgminerConfig};
use wgminer::work::payout::payout_script;

use crate::app::cli::{BenchArgs, Cli, Command, ConfigCommand, MineArgs, NodeArgs};
use crate::app::config;
use crate::app::devices::DeviceRequest;
use crate::app::error::UsageError;
use crate::app::output::{Look, OutputMode};
use crate::app::settings::{self, Settings};

/// What to do, checked. Built by [`plan`].
#[derive(Debug)]
pub enum RunPlan {
    /// `wgminer -o stratum+tcp://… -o stratum2+tcp://host:port/KEY …`: mine on pools, Stratum
    /// V1 and V2 in one priority list (failover in order).
    Pool(PoolPlan),
    /// `wgminer -o http://…`: solo mining on a node over JSON-RPC.
    Node(NodePlan),
    /// Plain `wgminer`: mine on the embedded node core.
    Embedded(EmbeddedPlan),
    /// `wgminer node`: the embedded node core's JSON-RPC, no mining.
    NodeOnly(NodeOnlyPlan),
    Bench(BenchPlan),
    Devices {
        json: bool,
    },
    Doctor {
        json: bool,
        strict: bool,
    },
    ConfigExample,
    /// `config show`: the merged settings.
    ConfigShow(Box<Settings>),
}

/// A plan and the tracing filter to log with.
#[derive(Debug)]
pub struct Plan {
    pub run: RunPlan,
    pub log_level: String,
    /// `--log-file`: every line appended there too.
    pub log_file: Option<PathBuf>,
}

/// What every mining run needs besides its source.
#[derive(Clone, Debug)]
pub struct MiningPlan {
    pub devices: DeviceRequest,
    pub output: OutputMode,
    /// Colour and `-q`.
    pub look: Look,
    pub api: Option<ApiPlan>,
    /// cgminer's TCP API, if asked for.
    pub cgminer: Option<CgminerConfig>,
    /// Rest a GPU at this temperature (°C).
    pub gpu_temp_limit: Option<u32>,
}

/// The monitoring API: where, and the token (read from its file already), if any.
#[derive(Clone, Debug)]
pub struct ApiPlan {
    pub bind: SocketAddr,
    pub token: Option<String>,
}

#[derive(Debug)]
pub struct PoolPlan {
    pub mining: MiningPlan,
    /// In order of priority.
    pub pools: Vec<PoolSpec>,
    pub failover: FailoverConfig,
}

#[derive(Debug)]
pub struct NodePlan {
    pub mining: MiningPlan,
    pub client: RpcClient,
    /// The payout address, checked against the node's network once it answers.
    pub coinbase_addr: String,
    /// Settings this mode ignores, said at start (a config file may set them for the core).
    pub notes: Vec<String>,
    /// `--coinbase-sig`, checked for length.
    pub coinbase_text: Vec<u8>,
}

/// Where the embedded node core's chain lives and which rules it keeps.
#[derive(Clone, Debug)]
pub struct CorePlan {
    pub data_dir: PathBuf,
    pub params: ChainParams,
}

#[derive(Debug)]
pub struct EmbeddedPlan {
    pub mining: MiningPlan,
    pub core: CorePlan,
    /// The script every block pays and how to name it; None: the core's own key.
    pub payout: Option<(ScriptBuf, String)>,
    pub rpc_bind: Option<SocketAddr>,
    /// Serve Stratum V2 templates here.
    pub sv2_tp_bind: Option<SocketAddr>,
    /// `--coinbase-sig`, checked for length.
    pub coinbase_text: Vec<u8>,
}

#[derive(Debug)]
pub struct NodeOnlyPlan {
    pub core: CorePlan,
    pub rpc_bind: SocketAddr,
    pub sv2_tp_bind: Option<SocketAddr>,
    /// The devices `generatetoaddress` mines with.
    pub devices: DeviceRequest,
}

#[derive(Debug)]
pub struct BenchPlan {
    pub devices: DeviceRequest,
    pub seconds: f64,
    pub json: bool,
    pub plot: Option<PathBuf>,
    /// Seconds between the rate samples `--plot` draws and `--json` lists.
    pub sample_interval: f64,
}

/// Turn the parsed command line (with the config file it names) into a plan.
pub fn plan(cli: Cli) -> Result<Plan, UsageError> {
    let no_file = || settings::log_level(None);
    let mut log_file = None;
    let (run, log_level) = match cli.command {
        None => {
            let s = merged(&cli.mine)?;
            let level = s.log_level.clone();
            log_file = s.display.log_file.clone();
            (mining(s)?, level)
        }
        Some(Command::Config(ConfigCommand::Show(args))) => {
            let s = merged(&args)?;
            let level = s.log_level.clone();
            (RunPlan::ConfigShow(Box::new(s)), level)
        }
        Some(Command::Config(ConfigCommand::Example)) => (RunPlan::ConfigExample, no_file()),
        Some(Command::Node(args)) => (node_only(&args)?, no_file()),
        Some(Command::Bench(args)) => (bench(&args)?, no_file()),
        Some(Command::Devices(args)) => (RunPlan::Devices { json: args.json }, no_file()),
        Some(Command::Doctor(args)) => (
            RunPlan::Doctor {
                json: args.json,
                strict: args.strict,
            },
            no_file(),
        ),
    };
    Ok(Plan {
        run,
        log_level,
        log_file,
    })
}

/// The mining flags over the config file they name, if any.
fn merged(args: &MineArgs) -> Result<Settings, UsageError> {
    let file = match &args.config {
        Some(path) => Some(config::load(path)?),
        None => None,
    };
    Ok(Settings::merge(args, file.as_ref()))
}

/// A mining run, picked by the first `-o`: none mines on the embedded node core, `http://` on
/// a node, anything else on pools (`stratum+tcp://` and `stratum2+tcp://` in any mix).
pub fn mining(s: Settings) -> Result<RunPlan, UsageError> {
    // Checked whatever the run, so a typo in a config file is found before it matters.
    sv2_channel(&s)?;
    match s.urls.first() {
        None => embedded(s).map(RunPlan::Embedded),
        Some(url) if Settings::is_node_url(url) => node(s).map(RunPlan::Node),
        Some(_) => pool(s).map(RunPlan::Pool),
    }
}

/// `--sv2-channel` (or the config's `sv2_channel`): extended unless told otherwise.
fn sv2_channel(s: &Settings) -> Result<ChannelKind, UsageError> {
    match s.sv2_channel.as_deref() {
        None => Ok(ChannelKind::default()),
        Some(v) => v
            .parse()
            .map_err(|e: String| UsageError(format!("--sv2-channel: {e}"))),
    }
}

/// The URL scheme of Stratum V2 pools (SRI's form).
const SV2_SCHEME: &str = "stratum2+tcp://";

/// `stratum2+tcp://host:port/KEY` (or the key from `--sv2-authority`) into its parts, with a
/// clear word for each mistake.
fn parse_sv2_url(
    url: &str,
    flag: Option<&str>,
) -> Result<(String, u16, wgminer::sv2::AuthorityPublicKey), UsageError> {
    let usage = "use -o stratum2+tcp://host:port/AUTHORITY_PUBLIC_KEY or --sv2-authority KEY (the pool's authority_public_key, base58)";
    let rest = url.strip_prefix(SV2_SCHEME).unwrap_or(url);
    let (addr, in_url) = match rest.split_once('/') {
        Some((addr, key)) => (
            addr,
            Some(key.trim_end_matches('/')).filter(|k| !k.is_empty()),
        ),
        None => (rest, None),
    };
    let flag = flag.map(str::trim).filter(|k| !k.is_empty());
    let key = match (in_url, flag) {
        (Some(a), Some(b)) if a != b => {
            return Err(UsageError(format!(
                "{url} and --sv2-authority name different authority keys: give one"
            )))
        }
        (Some(k), _) | (None, Some(k)) => k,
        (None, None) => {
            return Err(UsageError(format!(
                "{url} names no authority key, and wgminer mines only on a Stratum V2 pool whose key it can check: {usage}"
            )))
        }
    };
    let (host, port) = addr
        .rsplit_once(':')
        .and_then(|(h, p)| Some((h, p.parse::<u16>().ok()?)))
        .filter(|(h, p)| !h.is_empty() && *p != 0)
        .ok_or_else(|| UsageError(format!("{url}: no host:port: {usage}")))?;
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let key = key.parse().map_err(|e| {
        UsageError(format!(
            "{url}: the authority key {key:?} is not valid ({e}): {usage}"
        ))
    })?;
    Ok((host, port, key))
}

/// What the devices hash, roughly, for the pool to set a first target from (it adjusts the
/// target to the shares it then sees): ~5 MH/s per CPU thread, ~1 GH/s for GPUs.
fn nominal_hash_rate(devices: &DeviceRequest) -> f32 {
    use crate::app::cli::BackendChoice;
    let threads =
        devices.cpu.threads.map(|t| t as f32).unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(1.0, |n| n.get() as f32)
        });
    match devices.backend {
        Some(BackendChoice::Cpu) => threads * 5e6,
        _ => 1e9,
    }
}

/// The pools of `-o`, in order: a Stratum V1 pool (`stratum+tcp://`, `stratum+ssl://`) gets
/// `-u`/`-p`, a Stratum V2 pool (`stratum2+tcp://host:port/KEY`) gets `-u` as its channel's
/// user identity (one `-u`/`-p` for all, or one per `-o`). A mistake names the `-o` it is in.
fn pool(s: Settings) -> Result<PoolPlan, UsageError> {
    if s.coinbase_sig.is_some() {
        return Err(UsageError(
            "--coinbase-sig is for solo mining: a pool builds the coinbase itself".into(),
        ));
    }
    let n = s.urls.len();
    if n == 0 {
        return Err(UsageError(
            "no pool given: use -o stratum+tcp://host:port -u user.worker -p x".into(),
        ));
    }
    let per_pool = |list: &[String], what: &str| -> Result<Vec<Option<String>>, UsageError> {
        match list.len() {
            0 => Ok(vec![None; n]),
            1 => Ok(vec![Some(list[0].clone()); n]),
            k if k == n => Ok(list.iter().cloned().map(Some).collect()),
            k => Err(UsageError(format!(
                "{k} {what} values for {n} pools: give one for all or one per -o"
            ))),
        }
    };
    let users = per_pool(&s.users, "-u")?;
    let passwords = per_pool(&s.passwords, "-p")?;
    let mining = mining_plan(&s)?;
    let nominal_hash_rate = nominal_hash_rate(&mining.devices);
    let channel = sv2_channel(&s)?;
    let mut pools = Vec::with_capacity(n);
    for (i, ((url, user), password)) in s.urls.iter().zip(users).zip(passwords).enumerate() {
        let place = |e: String| match n {
            1 => UsageError(e),
            _ => UsageError(format!("-o number {} of {n}: {e}", i + 1)),
        };
        let user = match user {
            Some(u) if !u.trim().is_empty() => u,
            _ => return Err(place(format!("no user for {url}: use -u user.worker"))),
        };
        if url.starts_with(SV2_SCHEME) {
            let (host, port, authority) =
                parse_sv2_url(url, s.sv2_authority.as_deref()).map_err(|e| place(e.0))?;
            pools.push(PoolSpec::Sv2(Sv2Config {
                host,
                port,
                authority,
                user,
                nominal_hash_rate,
                channel,
            }));
        } else {
            let url: PoolUrl = url.parse().map_err(|e| place(format!("{e}")))?;
            let mut client = ClientConfig::new(PoolConfig {
                url,
                user,
                password: password.unwrap_or_else(|| "x".into()),
            });
            client.suggest_difficulty = s.suggest_diff;
            pools.push(PoolSpec::Stratum(client));
        }
    }
    Ok(PoolPlan {
        mining,
        pools,
        failover: FailoverConfig::default(),
    })
}

fn node(s: Settings) -> Result<NodePlan, UsageError> {
    if s.urls.len() > 1 {
        return Err(UsageError(
            "solo mining uses one node: give a single -o http://host:port".into(),
        ));
    }
    if !s.users.is_empty() || !s.passwords.is_empty() {
        return Err(UsageError(
            "-u/-p are pool flags; a node takes --rpc-user/--rpc-pass or --rpc-cookie".into(),
        ));
    }
    let mut notes = Vec::new();
    if s.difficulty.is_some() || s.rpc_bind.is_some() || s.sv2_tp_bind.is_some() {
        // Not an error: a config file or WGMINER_* may set them for the embedded core.
        notes.push(
            "note: --difficulty and --rpc-bind belong to the embedded node core; a node given with -o keeps its own chain and ignores them".to_owned(),
        );
    }
    let url = &s.urls[0];
    let auth = match (&s.rpc_user, &s.rpc_pass, &s.rpc_cookie) {
        (Some(user), Some(password), None) => Auth::UserPass {
            user: user.clone(),
            password: password.clone(),
        },
        (None, None, Some(cookie)) => Auth::Cookie(cookie.clone()),
        _ => return Err(UsageError(format!(
            "the node at {url} needs credentials: --rpc-cookie FILE (bitcoind's DATADIR/.cookie) or --rpc-user USER --rpc-pass PASS"
        ))),
    };
    let Some(coinbase_addr) = s.coinbase_addr.clone() else {
        return Err(UsageError(
            "solo mining on a node needs --coinbase-addr ADDRESS: the block reward is paid there"
                .into(),
        ));
    };
    let client = RpcClient::new(url, auth).map_err(|e| UsageError(e.to_string()))?;
    Ok(NodePlan {
        mining: mining_plan(&s)?,
        client,
        coinbase_addr,
        notes,
        coinbase_text: coinbase_text(&s)?,
    })
}

fn embedded(s: Settings) -> Result<EmbeddedPlan, UsageError> {
    if !s.users.is_empty()
        || !s.passwords.is_empty()
        || s.rpc_user.is_some()
        || s.rpc_cookie.is_some()
    {
        return Err(UsageError(
            "-u/-p are for pools (-o stratum+tcp://…) and --rpc-user/--rpc-pass/--rpc-cookie for nodes (-o http://…); without -o wgminer mines on its embedded node core".into(),
        ));
    }
    // A chain worth watching by default: about one block every 5 s, unless a fixed difficulty
    // is asked for (--difficulty alone, or --block-time 0).
    let block_time = match (s.block_time, s.difficulty) {
        (Some(t), _) => t,
        (None, Some(_)) => 0,
        (None, None) => DEFAULT_BLOCK_TIME,
    };
    let core = core_plan(s.datadir.clone(), s.difficulty, block_time)?;
    let payout = match &s.coinbase_addr {
        Some(a) => Some((
            payout_script(a, bitcoin::Network::Regtest, true)
                .map_err(|e| UsageError(e.to_string()))?,
            a.clone(),
        )),
        None => None,
    };
    Ok(EmbeddedPlan {
        mining: mining_plan(&s)?,
        core,
        payout,
        rpc_bind: s.rpc_bind,
        sv2_tp_bind: s.sv2_tp_bind,
        coinbase_text: coinbase_text(&s)?,
    })
}

/// `--coinbase-sig` as bytes, refused when it would push the scriptSig past 100 bytes.
fn coinbase_text(s: &Settings) -> Result<Vec<u8>, UsageError> {
    use wgminer::work::coinbase::MAX_COINBASE_TEXT;
    let text = s.coinbase_sig.clone().unwrap_or_default().into_bytes();
    if text.len() > MAX_COINBASE_TEXT {
        return Err(UsageError(format!(
            "--coinbase-sig is {} bytes; the coinbase scriptSig holds at most 100 bytes, which \
             leaves {MAX_COINBASE_TEXT} for the text after the height, extranonce and tag",
            text.len()
        )));
    }
    Ok(text)
}

fn node_only(args: &NodeArgs) -> Result<RunPlan, UsageError> {
    Ok(RunPlan::NodeOnly(NodeOnlyPlan {
        // A node for other miners keeps regtest's rules unless told otherwise.
        core: core_plan(
            args.datadir.clone(),
            args.difficulty,
            args.block_time.unwrap_or(0),
        )?,
        rpc_bind: args.rpc_bind,
        sv2_tp_bind: args.sv2_tp_bind,
        devices: settings::device_request(
            args.backend,
            &args.select,
            &args.cpu,
            &crate::app::cli::GpuArgs::default(),
        ),
    }))
}

/// Plain `wgminer`'s block time, in seconds, when neither --block-time nor --difficulty is set.
pub const DEFAULT_BLOCK_TIME: u32 = 5;

/// The data directory (given, or the platform's) and the chain's rules (`block_time` 0: a
/// fixed difficulty).
fn core_plan(
    datadir: Option<PathBuf>,
    difficulty: Option<f64>,
    block_time: u32,
) -> Result<CorePlan, UsageError> {
    let data_dir = match datadir {
        Some(d) => d,
        None => node::default_data_dir().ok_or_else(|| {
            UsageError("no home or data directory is known here: give --datadir DIR".into())
        })?,
    };
    let mut params = match difficulty {
        Some(d) => ChainParams::with_difficulty(d).map_err(|e| UsageError(e.to_string()))?,
        None => ChainParams::regtest(),
    };
    if block_time > 0 {
        params = params
            .with_block_time(block_time)
            .map_err(|e| UsageError(e.to_string()))?;
    }
    Ok(CorePlan { data_dir, params })
}

fn mining_plan(s: &Settings) -> Result<MiningPlan, UsageError> {
    let cgminer = match s.api_cgminer_bind {
        Some(bind) => Some(CgminerConfig {
            bind,
            privileged: AllowList::parse(s.api_cgminer_allow.as_deref().unwrap_or(""))
                .map_err(|e| UsageError(format!("--api-cgminer-allow: {e}")))?,
        }),
        None if s.api_cgminer_allow.is_some() => {
            return Err(UsageError(
                "--api-cgminer-allow needs --api-cgminer-bind ADDR:PORT (the API it opens up)"
                    .into(),
            ))
        }
        None => None,
    };
    Ok(MiningPlan {
        devices: s.devices.clone(),
        output: OutputMode::choose(s.json_log),
        look: Look {
            colour: crate::app::output::colour_wanted(s.display.no_color),
            quiet: s.display.quiet,
        },
        api: api_plan(s)?,
        cgminer,
        gpu_temp_limit: s.gpu_temp_limit,
    })
}

/// The API's bind address and token (`--api-token`, or the first line of its file).
fn api_plan(s: &Settings) -> Result<Option<ApiPlan>, UsageError> {
    let Some(bind) = s.api_bind else {
        return Ok(None);
    };
    let token = match (&s.api_token, &s.api_token_file) {
        (Some(t), _) => Some(t.trim().to_owned()),
        (None, Some(file)) => {
            let text = std::fs::read_to_string(file).map_err(|e| {
                UsageError(format!(
                    "cannot read the API token file {}: {e}",
                    file.display()
                ))
            })?;
            Some(text.lines().next().unwrap_or("").trim().to_owned())
        }
        (None, None) => None,
    };
    if token.as_deref() == Some("") {
        return Err(UsageError(
            "the API token is empty: give a non-empty --api-token or token file".into(),
        ));
    }
    Ok(Some(ApiPlan { bind, token }))
}

fn bench(args: &BenchArgs) -> Result<RunPlan, UsageError> {
    // A plot that cannot be drawn is refused before the devices run.
    check_plot_args(args)?;
    Ok(RunPlan::Bench(BenchPlan {
        devices: settings::device_request(args.backend, &args.select, &args.cpu, &args.gpu),
        seconds: args.seconds,
        json: args.json,
        plot: args.plot.clone(),
        sample_interval: args
            .plot_interval
            .unwrap_or_else(|| (args.seconds / 400.0).max(0.25)),
    }))
}

/// `--plot` must name an .svg file; `--plot-interval` must leave a sane number of samples.
fn check_plot_args(args: &BenchArgs) -> Result<(), UsageError> {
    if let Some(interval) = args.plot_interval {
        if interval < 0.01 || args.seconds / interval > 100_000.0 {
            return Err(UsageError(format!(
                "--plot-interval {interval} is too short: at least 0.01 s and at most 100000 \
                 samples a run ({} s here)",
                args.seconds
            )));
        }
    }
    let Some(path) = &args.plot else {
        return Ok(());
    };
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("svg") => Ok(()),
        Some("png") => Err(UsageError(format!(
            "--plot {}: PNG needs a rasteriser that wgminer does not include; use .svg (and \
             convert it, e.g. rsvg-convert -o chart.png chart.svg)",
            path.display()
        ))),
        _ => Err(UsageError(format!(
            "--plot {}: the chart is written as SVG, so the file name must end in .svg",
            path.display()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn plan_of(flags: &[&str]) -> Result<Plan, UsageError> {
        let cli = Cli::try_parse_from(std::iter::once("wgminer").chain(flags.iter().copied()))
            .expect("flags parse");
        plan(cli)
    }

    /// The usage error a command line gets.
    fn refusal(flags: &[&str]) -> String {
        match plan_of(flags) {
            Err(e) => e.0,
            Ok(p) => panic!("{flags:?} was accepted: {:?}", p.run),
        }
    }

    /// The pools of a pool plan.
    fn pools_of(flags: &[&str]) -> Vec<PoolSpec> {
        match plan_of(flags) {
            Ok(Plan {
                run: RunPlan::Pool(p),
                ..
            }) => p.pools,
            other => panic!("{flags:?}: not a pool plan: {other:?}"),
        }
    }

    fn sv2(spec: &PoolSpec) -> &Sv2Config {
        match spec {
            PoolSpec::Sv2(c) => c,
            other => panic!("not an SV2 pool: {other:?}"),
        }
    }

    fn v1(spec: &PoolSpec) -> &PoolConfig {
        match spec {
            PoolSpec::Stratum(c) => &c.pool,
            other => panic!("not a V1 pool: {other:?}"),
        }
    }

    const KEY: &str = "9auqWEzQDVyd2oe1JVGFLMLHZtCo2FFqZwtKA5gd9xbuEu7PH72";

    #[test]
    fn a_stratum2_url_needs_a_valid_authority_key_and_a_user() {
        let key = KEY;
        let url = format!("stratum2+tcp://127.0.0.1:34254/{key}");
        let pools = pools_of(&["-o", &url, "-u", "me.rig", "--backend", "cpu", "-t", "2"]);
        let [p] = pools.as_slice() else {
            panic!("{pools:?}")
        };
        let c = sv2(p);
        assert_eq!((c.host.as_str(), c.port), ("127.0.0.1", 34254));
        assert_eq!(c.authority.to_string(), key);
        assert_eq!(c.user, "me.rig");
        assert_eq!(c.nominal_hash_rate, 1e7);
        assert_eq!(c.url(), url);
        assert_eq!(p.url(), url);

        let no_key = refusal(&["-o", "stratum2+tcp://127.0.0.1:34254", "-u", "me"]);
        assert!(no_key.contains("names no authority key"), "{no_key}");
        let bad_key = refusal(&["-o", "stratum2+tcp://127.0.0.1:34254/9auqWEzQ", "-u", "me"]);
        assert!(bad_key.contains("is not valid"), "{bad_key}");
        let no_port = refusal(&["-o", &format!("stratum2+tcp://pool/{key}"), "-u", "me"]);
        assert!(no_port.contains("no host:port"), "{no_port}");
        let bare = "stratum2+tcp://127.0.0.1:34254";
        let pools = pools_of(&["-o", bare, "--sv2-authority", key, "-u", "me"]);
        assert_eq!(sv2(&pools[0]).authority.to_string(), key);
        let other = "9bQAqTeCDSPdaSUW9jrKkmK4UfxYsDBNqcFtKdy2MWKnJpbkSph";
        let both = refusal(&["-o", &url, "--sv2-authority", other, "-u", "me"]);
        assert!(both.contains("different authority keys"), "{both}");
        let no_user = refusal(&["-o", &url]);
        assert!(no_user.contains("no user"), "{no_user}");
    }

    #[test]
    fn v1_and_v2_pools_mix_in_one_list_in_order() {
        let a = format!("stratum2+tcp://a.example:3333/{KEY}");
        // The generator point's x as a key: valid, and not the first pool's.
        let c = "stratum2+tcp://c.example:3334/9bZBweHhn6px2Quf1hADVUTrWxX65vtRBweWHP66kfkKGFTQRHs";
        let flags = [
            "-o",
            &a,
            "-o",
            "stratum+tcp://b.example:3333",
            "-o",
            c,
            "-u",
            "me",
        ];
        let pools = pools_of(&flags);
        let urls: Vec<String> = pools.iter().map(PoolSpec::url).collect();
        assert_eq!(
            urls,
            [a.clone(), "stratum+tcp://b.example:3333".into(), c.into()]
        );
        assert_eq!(sv2(&pools[0]).host, "a.example");
        assert_eq!(v1(&pools[1]).url.host, "b.example");
        assert_eq!(v1(&pools[1]).password, "x");
        assert_eq!(sv2(&pools[2]).port, 3334);
        assert!(pools.iter().all(|p| match p {
            PoolSpec::Sv2(c) => c.user == "me",
            PoolSpec::Stratum(c) => c.pool.user == "me",
        }));
        // A V1 list is the same plan: failover is one mechanism for both.
        let pools = pools_of(&["-o", "stratum+tcp://a:1,stratum+tcp://b:2", "-u", "me"]);
        assert_eq!(pools.len(), 2);
        assert_eq!(v1(&pools[1]).url.port, 2);
    }

    #[test]
    fn each_pool_of_a_mixed_list_gets_its_own_user() {
        let a = format!("stratum2+tcp://a:3333/{KEY}");
        let flags = [
            "-o",
            &a,
            "-u",
            "v2.rig",
            "-p",
            "unused",
            "-o",
            "stratum+tcp://b:3333",
            "-u",
            "v1.rig",
            "-p",
            "secret",
        ];
        let pools = pools_of(&flags);
        assert_eq!(sv2(&pools[0]).user, "v2.rig");
        assert_eq!(v1(&pools[1]).user, "v1.rig");
        assert_eq!(v1(&pools[1]).password, "secret");
        let e = refusal(&[
            "-o",
            &a,
            "-o",
            "stratum+tcp://b:1",
            "-o",
            "stratum+tcp://c:1",
            "-u",
            "x",
            "-u",
            "y",
        ]);
        assert!(e.contains("2 -u values for 3 pools"), "{e}");
    }

    #[test]
    fn a_bad_stratum2_url_second_in_the_list_is_named() {
        let e = refusal(&[
            "-o",
            "stratum+tcp://a:3333",
            "-o",
            "stratum2+tcp://b:3334/not-a-key",
            "-u",
            "me",
        ]);
        assert!(e.starts_with("-o number 2 of 2: "), "{e}");
        assert!(e.contains("stratum2+tcp://b:3334/not-a-key"), "{e}");
        assert!(e.contains("is not valid"), "{e}");
        let e = refusal(&[
            "-o",
            "stratum+tcp://a:3333",
            "-o",
            "stratum2+tcp://b:3334",
            "-u",
            "me",
        ]);
        assert!(
            e.starts_with("-o number 2 of 2: ") && e.contains("names no authority key"),
            "{e}"
        );
        let e = refusal(&["-o", "stratum+tcp://a:3333", "-o", "ftp://b:1", "-u", "me"]);
        assert!(e.starts_with("-o number 2 of 2: "), "{e}");
    }

    #[test]
    fn the_sv2_channel_is_extended_unless_told_and_checked() {
        let key = "9auqWEzQDVyd2oe1JVGFLMLHZtCo2FFqZwtKA5gd9xbuEu7PH72";
        let url = format!("stratum2+tcp://127.0.0.1:34254/{key}");
        let channel = |extra: &[&str]| {
            let mut flags = vec!["-o", url.as_str(), "-u", "me"];
            flags.extend_from_slice(extra);
            sv2(&pools_of(&flags)[0]).channel
        };
        assert_eq!(channel(&[]), ChannelKind::Extended);
        assert_eq!(
            channel(&["--sv2-channel", "standard"]),
            ChannelKind::Standard
        );
        assert_eq!(
            channel(&["--sv2-channel", "Extended"]),
            ChannelKind::Extended
        );
        let bad = refusal(&["-o", &url, "-u", "me", "--sv2-channel", "group"]);
        assert!(
            bad.contains("--sv2-channel") && bad.contains("standard or extended"),
            "{bad}"
        );
        // Also when the run is not on an SV2 pool: a typo is found before it matters.
        let bad = refusal(&["--sv2-channel", "std", "--datadir", "/tmp/x"]);
        assert!(bad.contains("standard or extended"), "{bad}");
    }

    #[test]
    fn the_first_url_picks_the_mode() {
        let p = plan_of(&["-o", "stratum+tcp://127.0.0.1:3333", "-u", "me"]).unwrap();
        assert!(matches!(p.run, RunPlan::Pool(_)));
        let p = plan_of(&[
            "-o",
            "http://127.0.0.1:18443",
            "--rpc-cookie",
            "/c",
            "--coinbase-addr",
            "bcrt1qq2yshcmzdlznnpxx258xswqlmqcxjs4dssfxt2",
        ])
        .unwrap();
        assert!(matches!(p.run, RunPlan::Node(_)));
        let p = plan_of(&["--datadir", "/tmp/x", "--difficulty", "2"]).unwrap();
        assert!(matches!(p.run, RunPlan::Embedded(_)));
        let p = plan_of(&["node", "--datadir", "/tmp/x"]).unwrap();
        assert!(matches!(p.run, RunPlan::NodeOnly(_)));
    }

    #[test]
    fn pool_flags_are_checked() {
        let e = refusal(&["-o", "stratum+tcp://127.0.0.1:3333"]);
        assert!(e.contains("no user for"), "{e}");
        let e = refusal(&[
            "-o",
            "stratum+tcp://a:1,stratum+tcp://b:2",
            "-u",
            "x",
            "-u",
            "y",
            "-u",
            "z",
        ]);
        assert!(e.contains("3 -u values for 2 pools"), "{e}");
        let e = refusal(&["-o", "ftp://a:1", "-u", "me"]);
        assert!(!e.is_empty());
    }

    #[test]
    fn node_flags_are_checked() {
        let e = refusal(&["-o", "http://a:1,http://b:2"]);
        assert!(e.contains("a single -o"), "{e}");
        let e = refusal(&["-o", "http://a:1", "-u", "me"]);
        assert!(e.contains("pool flags"), "{e}");
        let e = refusal(&["-o", "http://a:1"]);
        assert!(e.contains("needs credentials"), "{e}");
        let e = refusal(&["-o", "http://a:1", "--rpc-cookie", "/c"]);
        assert!(e.contains("--coinbase-addr"), "{e}");
    }

    #[test]
    fn node_mode_notes_core_only_settings() {
        let p = plan_of(&[
            "-o",
            "http://a:1",
            "--rpc-cookie",
            "/c",
            "--coinbase-addr",
            "x",
            "--difficulty",
            "2",
        ])
        .unwrap();
        let RunPlan::Node(node) = p.run else {
            panic!("not a node plan");
        };
        assert_eq!(node.notes.len(), 1);
    }

    #[test]
    fn embedded_refuses_pool_and_node_flags_and_bad_addresses() {
        let e = refusal(&["--datadir", "/tmp/x", "-u", "me"]);
        assert!(e.contains("embedded node core"), "{e}");
        let e = refusal(&["--datadir", "/tmp/x", "--rpc-cookie", "/c"]);
        assert!(e.contains("embedded node core"), "{e}");
        let e = refusal(&["--datadir", "/tmp/x", "--coinbase-addr", "not-an-address"]);
        assert!(!e.is_empty());
    }

    #[test]
    fn api_tokens_are_checked() {
        let e = refusal(&[
            "--datadir",
            "/tmp/x",
            "--api-bind",
            "127.0.0.1:0",
            "--api-token",
            "  ",
        ]);
        assert!(e.contains("token is empty"), "{e}");
        let e = refusal(&[
            "--datadir",
            "/tmp/x",
            "--api-bind",
            "127.0.0.1:0",
            "--api-token-file",
            "/nonexistent/token",
        ]);
        assert!(e.contains("cannot read the API token file"), "{e}");
    }

    #[test]
    fn bench_plots_must_be_svg_with_a_sane_interval() {
        let e = refusal(&["bench", "--plot", "chart.png"]);
        assert!(e.contains("PNG"), "{e}");
        let e = refusal(&["bench", "--plot", "chart.txt"]);
        assert!(e.contains(".svg"), "{e}");
        let e = refusal(&["bench", "--plot-interval", "0.001"]);
        assert!(e.contains("too short"), "{e}");
        let p = plan_of(&["bench", "-s", "400"]).unwrap();
        let RunPlan::Bench(b) = p.run else {
            panic!("not a bench plan");
        };
        assert_eq!(b.sample_interval, 1.0);
    }

    #[test]
    fn coinbase_text_is_length_checked_and_solo_only() {
        use wgminer::work::coinbase::MAX_COINBASE_TEXT;
        let fits = "x".repeat(MAX_COINBASE_TEXT);
        let p = plan_of(&["--datadir", "/tmp/x", "--coinbase-sig", &fits]).unwrap();
        let RunPlan::Embedded(e) = p.run else {
            panic!("not an embedded plan");
        };
        assert_eq!(e.coinbase_text, fits.as_bytes());
        let long = "x".repeat(MAX_COINBASE_TEXT + 1);
        let e = refusal(&["--datadir", "/tmp/x", "--coinbase-sig", &long]);
        assert!(e.contains("at most 100 bytes"), "{e}");
        let e = refusal(&[
            "-o",
            "stratum+tcp://a:1",
            "-u",
            "me",
            "--coinbase-sig",
            "hi",
        ]);
        assert!(e.contains("solo mining"), "{e}");
    }

    #[test]
    fn a_missing_config_file_is_a_usage_error() {
        let e = refusal(&["--config", "/nonexistent/wgminer.toml"]);
        assert!(e.contains("cannot read config file"), "{e}");
    }
}
