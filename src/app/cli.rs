//! Command-line definitions (clap): the flags, their `WGMINER_*` variables and the checks of
//! single values. Combinations and the config file are [`crate::app::plan`]'s business.

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser, Debug)]
#[command(
    name = "wgminer",
    version,
    about = "GPU-accelerated SHA-256d (Bitcoin) proof-of-work miner"
)]
#[command(args_conflicts_with_subcommands = true)]
#[command(
    after_help = "With no command and no -o, wgminer mines on its embedded node core \
(a regtest chain in --datadir) with every usable device."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Mining, when no command is given: on the embedded node core (no -o), on a node
    /// (`-o http://host:port`) or on a pool (`-o stratum+tcp://host:port -u user.worker`).
    #[command(flatten)]
    pub mine: MineArgs,
}

/// Mining: the flags every miner user knows (cpuminer, cgminer, xmrig), plus solo mining's.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct MineArgs {
    /// Where the work comes from: a pool, stratum+tcp://host:port (or stratum+ssl:// /
    /// stratum+tls://) or stratum2+tcp://host:port/AUTHORITY_KEY (repeat for failover pools, V1
    /// and V2 in any mix, in order of preference), or a node's JSON-RPC, http://host:port (solo
    /// mining with getblocktemplate). None: the embedded node core.
    #[arg(
        short = 'o',
        long = "url",
        value_name = "URL",
        env = "WGMINER_URL",
        value_delimiter = ','
    )]
    pub urls: Vec<String>,
    #[command(flatten)]
    pub solo: SoloArgs,
    /// Pool user, usually `address.worker` (one for every pool, or one per -o, in order).
    #[arg(short = 'u', long = "user", value_name = "USER", env = "WGMINER_USER")]
    pub users: Vec<String>,
    /// Pool password (most pools ignore it; default x).
    #[arg(
        short = 'p',
        long = "pass",
        value_name = "PASS",
        env = "WGMINER_PASS",
        hide_env_values = true
    )]
    pub passwords: Vec<String>,
    /// Ask the pool for this share difficulty (mining.suggest_difficulty).
    #[arg(long, value_name = "D", value_parser = parse_difficulty, env = "WGMINER_SUGGEST_DIFF")]
    pub suggest_diff: Option<f64>,
    /// A Stratum V2 pool's authority public key (base58, as SRI's pool configuration writes
    /// it), for `-o stratum2+tcp://host:port` without the key in the URL.
    #[arg(long, value_name = "KEY", env = "WGMINER_SV2_AUTHORITY")]
    pub sv2_authority: Option<String>,
    /// The Stratum V2 channel to open: `extended` (default; we roll part of the extranonce) or
    /// `standard` (header-only: the pool fixes the merkle root, we roll version bits and nTime).
    #[arg(long, value_name = "KIND", env = "WGMINER_SV2_CHANNEL")]
    pub sv2_channel: Option<String>,
    /// Which backend mines (default: every real GPU, or the CPU when there is none; with
    /// --device, the kinds of the devices named).
    #[arg(long, value_enum, env = "WGMINER_BACKEND")]
    pub backend: Option<BackendChoice>,
    #[command(flatten)]
    pub select: DeviceArgs,
    #[command(flatten)]
    pub gpu: GpuArgs,
    #[command(flatten)]
    pub cpu: CpuArgs,
    /// One JSON object per line for every event and status report, instead of text.
    #[arg(long, env = "WGMINER_JSON_LOG")]
    pub json_log: bool,
    /// A TOML configuration file (`wgminer config example` prints one). Environment variables
    /// (WGMINER_*) override it, and flags override both.
    #[arg(short = 'c', long, value_name = "FILE", env = "WGMINER_CONFIG")]
    pub config: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub api: ApiArgs,
    #[command(flatten)]
    pub display: DisplayArgs,
}

/// How the run is shown and logged.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct DisplayArgs {
    /// Quiet: rates and results only (shares, blocks, errors), no job, template or connection
    /// lines.
    #[arg(short = 'q', long, env = "WGMINER_QUIET")]
    pub quiet: bool,
    /// Also append every line to FILE (plain text, no colour).
    #[arg(long, value_name = "PATH", env = "WGMINER_LOG_FILE")]
    pub log_file: Option<std::path::PathBuf>,
    /// Which diagnostics to log: error, warn, info, debug, trace, or a filter such as
    /// `wgminer=debug` (default warn; wins over WGMINER_LOG and the config file).
    #[arg(long, value_name = "LEVEL", value_parser = parse_log_level)]
    pub log_level: Option<String>,
    /// No colour on the terminal (the NO_COLOR environment variable does the same).
    #[arg(long)]
    pub no_color: bool,
}

/// The monitoring API (off unless a bind address is given).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ApiArgs {
    /// Serve the HTTP monitoring API (JSON and Prometheus /metrics) here, e.g. 127.0.0.1:4028.
    #[arg(long, value_name = "ADDR:PORT", env = "WGMINER_API_BIND")]
    pub api_bind: Option<std::net::SocketAddr>,
    /// Require `Authorization: Bearer TOKEN` on every API request.
    #[arg(
        long,
        value_name = "TOKEN",
        env = "WGMINER_API_TOKEN",
        hide_env_values = true,
        conflicts_with = "api_token_file"
    )]
    pub api_token: Option<String>,
    /// Read the API token from this file (its first line).
    #[arg(long, value_name = "FILE", env = "WGMINER_API_TOKEN_FILE")]
    pub api_token_file: Option<std::path::PathBuf>,
    /// Serve cgminer's TCP API here (for farm tools and exporters that speak it), e.g.
    /// 127.0.0.1:4028.
    #[arg(long, value_name = "ADDR:PORT", env = "WGMINER_API_CGMINER_BIND")]
    pub api_cgminer_bind: Option<std::net::SocketAddr>,
    /// Addresses allowed cgminer's privileged commands (switchpool, restart, quit): IPs or
    /// prefixes, comma-separated (e.g. 127.0.0.1,10.0.0.0/24). Default: nobody.
    #[arg(long, value_name = "LIST", env = "WGMINER_API_CGMINER_ALLOW")]
    pub api_cgminer_allow: Option<String>,
    /// Rest a GPU that reaches this temperature (°C, read through NVML on NVIDIA GPUs) until
    /// it is 5 °C cooler, before the GPU throttles itself.
    #[arg(long, value_name = "C", value_parser = clap::value_parser!(u32).range(30..=110), env = "WGMINER_GPU_TEMP_LIMIT")]
    pub gpu_temp_limit: Option<u32>,
}

/// Solo mining: the node's credentials, the payout address, the embedded node core's place.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct SoloArgs {
    /// Node RPC user (with --rpc-pass), as in the node's rpcuser.
    #[arg(
        long,
        value_name = "USER",
        requires = "rpc_pass",
        env = "WGMINER_RPC_USER"
    )]
    pub rpc_user: Option<String>,
    /// Node RPC password, as in the node's rpcpassword.
    #[arg(
        long,
        value_name = "PASS",
        requires = "rpc_user",
        env = "WGMINER_RPC_PASS",
        hide_env_values = true
    )]
    pub rpc_pass: Option<String>,
    /// The node's cookie file (bitcoind writes DATADIR/.cookie, or DATADIR/<chain>/.cookie).
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with = "rpc_user",
        env = "WGMINER_RPC_COOKIE"
    )]
    pub rpc_cookie: Option<std::path::PathBuf>,
    /// Address every block pays: checked against the node's network before mining starts.
    /// The embedded node core generates and keeps one when none is given.
    #[arg(long, value_name = "ADDRESS", env = "WGMINER_COINBASE_ADDR")]
    pub coinbase_addr: Option<String>,
    /// Solo mining: text put in every block's coinbase scriptSig, after the height and
    /// extranonce (the scriptSig must stay within 100 bytes: about 80 bytes of text).
    #[arg(long, value_name = "TEXT", env = "WGMINER_COINBASE_SIG")]
    pub coinbase_sig: Option<String>,
    /// Embedded node core: where its chain lives (default: the platform data dir, e.g.
    /// ~/.local/share/wgminer).
    #[arg(long, value_name = "DIR", env = "WGMINER_DATADIR")]
    pub datadir: Option<std::path::PathBuf>,
    /// Embedded node core: a fixed block difficulty instead of regtest's (which makes about
    /// every other hash a block). 1 is Bitcoin's minimum: about 4.3 billion hashes a block.
    #[arg(long, value_name = "D", value_parser = parse_difficulty, env = "WGMINER_DIFFICULTY")]
    pub difficulty: Option<f64>,
    /// Embedded node core: also serve its JSON-RPC (getblocktemplate, submitblock, …) here,
    /// with cookie auth (DATADIR/regtest/.cookie).
    #[arg(long, value_name = "ADDR:PORT", env = "WGMINER_RPC_BIND")]
    pub rpc_bind: Option<std::net::SocketAddr>,
    /// Embedded node core: retarget every block (aserti3-2d) for one block every SECONDS,
    /// starting from --difficulty (default: 5 when mining without --difficulty; 0 = a fixed
    /// difficulty).
    #[arg(long, value_name = "SECONDS", env = "WGMINER_BLOCK_TIME")]
    pub block_time: Option<u32>,
    /// Embedded node core: also serve Stratum V2's Template Distribution Protocol here (a
    /// Template Provider for SRI's pool; its authority key is printed at start). Bind it to
    /// loopback or a trusted network: any client may connect.
    #[arg(long, value_name = "ADDR:PORT", env = "WGMINER_SV2_TP_BIND")]
    pub sv2_tp_bind: Option<std::net::SocketAddr>,
}

// Parsed once per run: the size of the mining flags in a variant costs nothing worth boxing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the embedded node core without mining: serve its JSON-RPC (the methods below) for
    /// other miners and tools, and print each new block.
    Node(NodeArgs),
    /// Measure hash rate with no network (a fixed header at difficulty 1).
    Bench(BenchArgs),
    /// List the devices that can mine.
    Devices(DevicesArgs),
    /// Check the GPU set-up (Vulkan loader, driver manifests, NVIDIA driver, adapters) and say
    /// why a GPU is not used and how to fix it. Exits 0 whenever the report is made.
    Doctor(DoctorArgs),
    /// Configuration: print a commented example file, or what a run would use.
    #[command(subcommand)]
    Config(ConfigCommand),
}

#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
pub enum ConfigCommand {
    /// Print a commented example configuration file (use it with --config FILE).
    Example,
    /// Print the configuration a run with these flags would use (file < WGMINER_* environment
    /// < flags), secrets masked.
    Show(MineArgs),
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackendChoice {
    /// The CPU only.
    Cpu,
    /// Every GPU adapter (software ones only with --allow-software or when there is no GPU).
    Gpu,
    /// The CPU and every GPU, measured at the same time.
    All,
}

/// Which devices to use: `--device` picks by index or name, `--allow-software` widens the
/// default GPU set.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct DeviceArgs {
    /// Device to use, by index (as `wgminer devices` lists them; 0 is the CPU) or by a
    /// case-insensitive substring of its name. Repeatable.
    #[arg(
        short = 'd',
        long = "device",
        value_name = "IDX|NAME",
        env = "WGMINER_DEVICE",
        value_delimiter = ','
    )]
    pub devices: Vec<String>,
    /// Also use software GPU adapters (llvmpipe/lavapipe) when a real GPU exists.
    #[arg(long, env = "WGMINER_ALLOW_SOFTWARE")]
    pub allow_software: bool,
}

/// Kernel geometry for GPUs (defaults suit a large discrete GPU).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct GpuArgs {
    /// Invocations per workgroup.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub gpu_workgroup_size: Option<u32>,
    /// Nonces each GPU invocation hashes.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub gpu_nonces_per_thread: Option<u32>,
    /// GPU kernel: x1 (the plain kernel, the default on all but NVIDIA) or m4 (most additions
    /// written as multiply-adds by a runtime 1, for NVIDIA's FMA pipe; NVIDIA's default).
    /// Builds with `--features kernel-lab` add the variants measured slower (x2, m1..m3,
    /// m1x2..m4x2) and the probes (x1-rotshift, x2-rotshift).
    #[arg(long, value_name = "NAME", value_parser = parse_kernel)]
    pub gpu_kernel: Option<wgminer::backend::gpu::KernelShape>,
}

/// CPU backend settings, shared by mining and the benchmark.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct CpuArgs {
    /// CPU worker threads (default: one per logical core).
    #[arg(short = 't', long, value_parser = clap::value_parser!(u32).range(1..=4096), env = "WGMINER_THREADS")]
    pub threads: Option<u32>,
    /// CPU hashing path (default: the fastest this CPU has): sha-ni, avx512, avx2, portable.
    #[arg(long, value_parser = parse_path)]
    pub cpu_path: Option<wgminer::pow::ScanPath>,
}

#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// Which backend to measure (default: cpu, or the kinds of the devices named by --device).
    #[arg(long, value_enum)]
    pub backend: Option<BackendChoice>,
    #[command(flatten)]
    pub select: DeviceArgs,
    #[command(flatten)]
    pub gpu: GpuArgs,
    #[command(flatten)]
    pub cpu: CpuArgs,
    /// How long to run, in seconds.
    #[arg(short = 's', long, default_value = "10", value_parser = parse_seconds, allow_negative_numbers = true)]
    pub seconds: f64,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Also draw each device's hash rate over time into FILE (an .svg chart).
    #[arg(long, value_name = "FILE")]
    pub plot: Option<std::path::PathBuf>,
    /// Seconds between the rate samples --plot draws and --json lists (default: 0.25, or
    /// seconds/400 for long runs).
    #[arg(long, value_name = "SECS", value_parser = parse_seconds)]
    pub plot_interval: Option<f64>,
}

#[derive(clap::Args, Debug)]
pub struct NodeArgs {
    /// Where the chain lives (default: the platform data dir).
    #[arg(long, value_name = "DIR")]
    pub datadir: Option<std::path::PathBuf>,
    /// Fixed block difficulty instead of regtest's.
    #[arg(long, value_name = "D", value_parser = parse_difficulty)]
    pub difficulty: Option<f64>,
    /// Retarget every block (aserti3-2d) for one block every SECONDS, from --difficulty.
    #[arg(long, value_name = "SECONDS")]
    pub block_time: Option<u32>,
    /// Also serve Stratum V2's Template Distribution Protocol here (a Template Provider for
    /// SRI's pool; its authority key is printed at start). Any client may connect: bind it to
    /// loopback or a trusted network.
    #[arg(long, value_name = "ADDR:PORT")]
    pub sv2_tp_bind: Option<std::net::SocketAddr>,
    /// Which backend mines for generatetoaddress (default: every real GPU, else the CPU).
    #[arg(long, value_enum)]
    pub backend: Option<BackendChoice>,
    #[command(flatten)]
    pub select: DeviceArgs,
    #[command(flatten)]
    pub cpu: CpuArgs,
    /// Address to serve JSON-RPC on (cookie auth: DATADIR/regtest/.cookie).
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:18443")]
    pub rpc_bind: std::net::SocketAddr,
}

#[derive(clap::Args, Debug)]
pub struct DevicesArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args, Debug)]
pub struct DoctorArgs {
    /// Print one JSON object instead of the report.
    #[arg(long)]
    pub json: bool,
    /// Exit with code 1 when no real GPU is usable (for scripts and health checks).
    #[arg(long)]
    pub strict: bool,
}

/// The command line's definition with what clap's derive cannot hold: `node --help` lists
/// the RPC methods from the server's own table.
pub fn command() -> clap::Command {
    use clap::CommandFactory;
    Cli::command().mut_subcommand("node", |c| c.after_help(node_methods_help()))
}

/// "RPC methods:" and one line per method.
pub fn node_methods_help() -> String {
    let mut text = String::from("RPC methods (bitcoin-cli -rpcport=PORT help lists them too):\n");
    for (name, args) in wgminer::node::rpc_server::method_list() {
        text.push_str(&format!("  {name:<18} {}\n", args.trim_start()));
    }
    text
}

fn parse_seconds(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .parse()
        .map_err(|_| format!("'{s}' is not a number of seconds"))?;
    if v.is_finite() && v > 0.0 && v <= 86_400.0 {
        Ok(v)
    } else {
        Err(format!(
            "seconds must be greater than 0 and at most 86400, got {s}"
        ))
    }
}

/// A tracing filter that parses (`warn`, `wgminer=debug,info`).
fn parse_log_level(s: &str) -> Result<String, String> {
    tracing_subscriber::EnvFilter::try_new(s)
        .map(|_| s.to_owned())
        .map_err(|e| format!("'{s}' is not a log level or filter: {e}"))
}

pub fn parse_difficulty(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(format!("'{s}' is not a positive difficulty")),
    }
}

/// A kernel this build carries; a lab variant in a build without `kernel-lab` is refused with
/// the feature named.
pub fn parse_kernel(s: &str) -> Result<wgminer::backend::gpu::KernelShape, String> {
    wgminer::backend::gpu::kernel::parse(s).map_err(|e| e.to_string())
}

pub fn parse_path(s: &str) -> Result<wgminer::pow::ScanPath, String> {
    wgminer::pow::ScanPath::from_name(s).ok_or_else(|| {
        let names: Vec<_> = wgminer::pow::ScanPath::ALL
            .iter()
            .map(|p| p.name())
            .collect();
        format!(
            "unknown CPU path '{s}' (expected one of: {})",
            names.join(", ")
        )
    })
}
