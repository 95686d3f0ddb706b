//! Flags, `WGMINER_*` environment and the config file merged into one set of raw [`Settings`]
//! (flags and environment win over the file, which wins over the defaults), without touching
//! the parsed flags. `config show` prints them; [`crate::app::plan`] checks them into a run plan.

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::app::cli::{BackendChoice, CpuArgs, DeviceArgs, GpuArgs, MineArgs};
use crate::app::config::{
    ApiEntry, Backend, ConfigFile, CoreEntry, CpuPath, DevicesEntry, Difficulty, GpuKernel,
    LaunchSize, Level, LogEntry, NodeEntry, PoolEntry, Threads, MASK,
};
use crate::app::devices::{CpuSettings, DeviceRequest, GpuSettings};

/// Everything a mining run (or `config show`) is told, before it is checked.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Settings {
    /// `-o`: pools, or one node (`http://`), or none (the embedded node core).
    pub urls: Vec<String>,
    pub users: Vec<String>,
    pub passwords: Vec<String>,
    pub suggest_diff: Option<f64>,
    /// The Stratum V2 pool's authority key, when the URL does not carry it.
    pub sv2_authority: Option<String>,
    /// The Stratum V2 channel kind, unchecked (`standard` or `extended`).
    pub sv2_channel: Option<String>,
    pub rpc_user: Option<String>,
    pub rpc_pass: Option<String>,
    pub rpc_cookie: Option<PathBuf>,
    pub coinbase_addr: Option<String>,
    pub datadir: Option<PathBuf>,
    pub difficulty: Option<f64>,
    pub rpc_bind: Option<SocketAddr>,
    pub devices: DeviceRequest,
    pub json_log: bool,
    pub api_bind: Option<SocketAddr>,
    pub api_token: Option<String>,
    pub api_token_file: Option<PathBuf>,
    pub api_cgminer_bind: Option<SocketAddr>,
    pub api_cgminer_allow: Option<String>,
    pub gpu_temp_limit: Option<u32>,
    pub block_time: Option<u32>,
    pub sv2_tp_bind: Option<SocketAddr>,
    /// The tracing filter: `--log-level`, else `WGMINER_LOG`, else the file's `[log] level`,
    /// else warn.
    pub log_level: String,
    pub coinbase_sig: Option<String>,
    pub display: DisplaySettings,
}

/// `-q`, `--no-color`, `--log-file`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DisplaySettings {
    pub quiet: bool,
    pub no_color: bool,
    pub log_file: Option<PathBuf>,
}

/// The device flags as a request (shared by mining and `bench`).
pub fn device_request(
    backend: Option<BackendChoice>,
    select: &DeviceArgs,
    cpu: &CpuArgs,
    gpu: &GpuArgs,
) -> DeviceRequest {
    DeviceRequest {
        backend,
        selectors: select.devices.clone(),
        allow_software: select.allow_software,
        cpu: CpuSettings {
            threads: cpu.threads,
            path: cpu.cpu_path,
        },
        gpu: GpuSettings {
            kernel: gpu.gpu_kernel,
            workgroup_size: gpu.gpu_workgroup_size,
            nonces_per_thread: gpu.gpu_nonces_per_thread,
        },
    }
}

/// The tracing filter: `WGMINER_LOG`, else the file's, else warn.
pub fn log_level(from_file: Option<&str>) -> String {
    std::env::var("WGMINER_LOG")
        .ok()
        .or(from_file.map(str::to_owned))
        .unwrap_or_else(|| "warn".into())
}

impl Settings {
    /// The flags (clap has already put `WGMINER_*` under them) over the file, if any.
    pub fn merge(args: &MineArgs, file: Option<&ConfigFile>) -> Self {
        let mut s = Settings {
            urls: args.urls.clone(),
            users: args.users.clone(),
            passwords: args.passwords.clone(),
            suggest_diff: args.suggest_diff,
            sv2_authority: args.sv2_authority.clone(),
            sv2_channel: args.sv2_channel.clone(),
            rpc_user: args.solo.rpc_user.clone(),
            rpc_pass: args.solo.rpc_pass.clone(),
            rpc_cookie: args.solo.rpc_cookie.clone(),
            coinbase_addr: args.solo.coinbase_addr.clone(),
            datadir: args.solo.datadir.clone(),
            difficulty: args.solo.difficulty,
            rpc_bind: args.solo.rpc_bind,
            devices: device_request(args.backend, &args.select, &args.cpu, &args.gpu),
            json_log: args.json_log,
            api_bind: args.api.api_bind,
            api_token: args.api.api_token.clone(),
            api_token_file: args.api.api_token_file.clone(),
            api_cgminer_bind: args.api.api_cgminer_bind,
            api_cgminer_allow: args.api.api_cgminer_allow.clone(),
            gpu_temp_limit: args.api.gpu_temp_limit,
            block_time: args.solo.block_time,
            sv2_tp_bind: args.solo.sv2_tp_bind,
            log_level: log_level(None),
            coinbase_sig: args.solo.coinbase_sig.clone(),
            display: DisplaySettings {
                quiet: args.display.quiet,
                no_color: args.display.no_color,
                log_file: args.display.log_file.clone(),
            },
        };
        if let Some(file) = file {
            s.fill_from(file);
        }
        if let Some(level) = &args.display.log_level {
            s.log_level = level.clone();
        }
        s
    }

    /// Fill in from the file whatever neither the flags nor the environment gave.
    fn fill_from(&mut self, cfg: &ConfigFile) {
        if self.urls.is_empty() {
            if let Some(node) = &cfg.node {
                self.urls = vec![node.url.clone()];
            } else if !cfg.pools.is_empty() {
                self.urls = cfg.pools.iter().map(|p| p.url.clone()).collect();
                if self.users.is_empty() && cfg.pools.iter().any(|p| p.user.is_some()) {
                    self.users = cfg
                        .pools
                        .iter()
                        .map(|p| p.user.clone().unwrap_or_default())
                        .collect();
                }
                if self.passwords.is_empty() && cfg.pools.iter().any(|p| p.password.is_some()) {
                    self.passwords = cfg
                        .pools
                        .iter()
                        .map(|p| p.password.clone().unwrap_or_else(|| "x".into()))
                        .collect();
                }
            }
        }
        fill(
            &mut self.suggest_diff,
            cfg.suggest_difficulty.clone().map(|d| d.0),
        );
        fill(&mut self.coinbase_addr, cfg.coinbase_addr.clone());
        fill(&mut self.sv2_authority, cfg.sv2_authority.clone());
        fill(&mut self.sv2_channel, cfg.sv2_channel.clone());
        if let Some(node) = &cfg.node {
            // Credentials come as a set: a user/password from the flags is not mixed with a
            // cookie from the file.
            if self.rpc_user.is_none() && self.rpc_pass.is_none() && self.rpc_cookie.is_none() {
                self.rpc_user = node.rpc_user.clone();
                self.rpc_pass = node.rpc_password.clone();
                self.rpc_cookie = node.rpc_cookie.clone();
            }
        }
        fill(&mut self.datadir, cfg.core.datadir.clone());
        fill(
            &mut self.difficulty,
            cfg.core.difficulty.clone().map(|d| d.0),
        );
        fill(&mut self.rpc_bind, cfg.core.rpc_bind);
        fill(&mut self.block_time, cfg.core.block_time);
        fill(&mut self.sv2_tp_bind, cfg.core.sv2_tp_bind);
        fill(&mut self.api_cgminer_bind, cfg.api.cgminer_bind);
        fill(&mut self.api_cgminer_allow, cfg.api.cgminer_allow.clone());
        fill(&mut self.gpu_temp_limit, cfg.api.gpu_temp_limit);
        let d = &cfg.devices;
        let dev = &mut self.devices;
        fill(&mut dev.backend, d.backend.map(BackendChoice::from));
        if dev.selectors.is_empty() {
            dev.selectors = d.select.clone().unwrap_or_default();
        }
        dev.allow_software |= d.allow_software.unwrap_or(false);
        fill(&mut dev.cpu.threads, d.threads.clone().map(|t| t.0));
        // The file's values were checked when it was read; these parses cannot fail.
        fill(
            &mut dev.cpu.path,
            d.cpu_path
                .as_ref()
                .and_then(|p| crate::app::cli::parse_path(&p.0).ok()),
        );
        fill(
            &mut dev.gpu.kernel,
            d.gpu_kernel
                .as_ref()
                .and_then(|k| crate::app::cli::parse_kernel(&k.0).ok()),
        );
        fill(
            &mut dev.gpu.workgroup_size,
            d.gpu_workgroup_size.clone().map(|s| s.0),
        );
        fill(
            &mut dev.gpu.nonces_per_thread,
            d.gpu_nonces_per_thread.clone().map(|s| s.0),
        );
        fill(&mut self.api_bind, cfg.api.bind);
        if self.api_token.is_none() && self.api_token_file.is_none() {
            self.api_token = cfg.api.token.clone();
            self.api_token_file = cfg.api.token_file.clone();
        }
        self.json_log |= cfg.log.json.unwrap_or(false);
        fill(&mut self.coinbase_sig, cfg.coinbase_sig.clone());
        fill(&mut self.display.log_file, cfg.log.file.clone());
        self.display.quiet |= cfg.log.quiet.unwrap_or(false);
        self.log_level = log_level(cfg.log.level.as_ref().map(|l| l.0.as_str()));
    }

    /// Whether `-o` names a node (solo mining over JSON-RPC) rather than pools.
    pub fn is_node_url(url: &str) -> bool {
        url.starts_with("http://") || url.starts_with("https://")
    }

    /// These settings as a configuration file, every secret masked (`config show`).
    pub fn to_toml(&self) -> String {
        effective(self)
    }
}

/// The configuration a run with these settings uses, as TOML with every secret masked.
fn effective(args: &Settings) -> String {
    let mask = |s: &Option<String>| s.as_ref().map(|_| MASK.to_owned());
    let is_node = args.urls.first().is_some_and(|u| Settings::is_node_url(u));
    let mut cfg = ConfigFile {
        coinbase_addr: args.coinbase_addr.clone(),
        coinbase_sig: args.coinbase_sig.clone(),
        suggest_difficulty: args.suggest_diff.map(Difficulty),
        sv2_authority: args.sv2_authority.clone(),
        sv2_channel: args.sv2_channel.clone(),
        ..ConfigFile::default()
    };
    if is_node {
        cfg.node = Some(NodeEntry {
            url: args.urls[0].clone(),
            rpc_user: args.rpc_user.clone(),
            rpc_password: mask(&args.rpc_pass),
            rpc_cookie: args.rpc_cookie.clone(),
        });
    } else {
        cfg.pools = args
            .urls
            .iter()
            .enumerate()
            .map(|(i, url)| PoolEntry {
                url: url.clone(),
                user: args.users.get(i).or(args.users.first()).cloned(),
                password: mask(&args.passwords.get(i).or(args.passwords.first()).cloned()),
            })
            .collect();
    }
    cfg.core = CoreEntry {
        datadir: args
            .datadir
            .clone()
            .or_else(wgminer::node::default_data_dir),
        difficulty: args.difficulty.map(Difficulty),
        rpc_bind: args.rpc_bind,
        block_time: args.block_time,
        sv2_tp_bind: args.sv2_tp_bind,
    };
    cfg.devices = DevicesEntry {
        backend: args.devices.backend.map(Backend::from),
        select: (!args.devices.selectors.is_empty()).then(|| args.devices.selectors.clone()),
        allow_software: Some(args.devices.allow_software),
        threads: args.devices.cpu.threads.map(Threads),
        cpu_path: args.devices.cpu.path.map(|p| CpuPath(p.name().to_owned())),
        gpu_kernel: args.devices.gpu.kernel.map(|k| GpuKernel(k.to_string())),
        gpu_workgroup_size: args.devices.gpu.workgroup_size.map(LaunchSize),
        gpu_nonces_per_thread: args.devices.gpu.nonces_per_thread.map(LaunchSize),
    };
    cfg.api = ApiEntry {
        bind: args.api_bind,
        token: mask(&args.api_token),
        token_file: args.api_token_file.clone(),
        cgminer_bind: args.api_cgminer_bind,
        cgminer_allow: args.api_cgminer_allow.clone(),
        gpu_temp_limit: args.gpu_temp_limit,
    };
    cfg.log = LogEntry {
        json: Some(args.json_log),
        level: Some(Level(args.log_level.clone())),
        file: args.display.log_file.clone(),
        quiet: Some(args.display.quiet),
    };
    let mut out = String::from(
        "# The configuration this run would use (file < WGMINER_* environment < flags).\n",
    );
    out.push_str(
        &toml::to_string_pretty(&cfg).unwrap_or_else(|e| format!("# cannot print: {e}\n")),
    );
    out
}

fn fill<T>(slot: &mut Option<T>, from_file: Option<T>) {
    if slot.is_none() {
        *slot = from_file;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn merged(flags: &[&str], file: &str) -> Settings {
        let cli = crate::app::cli::Cli::try_parse_from(
            std::iter::once("wgminer").chain(flags.iter().copied()),
        )
        .expect("flags parse");
        let file = crate::app::config::parse(file).expect("file parses");
        Settings::merge(&cli.mine, Some(&file))
    }

    #[test]
    fn the_sv2_channel_comes_from_the_file_unless_a_flag_names_it() {
        let file = "sv2_channel = \"standard\"\n";
        assert_eq!(merged(&[], file).sv2_channel.as_deref(), Some("standard"));
        let s = merged(&["--sv2-channel", "extended"], file);
        assert_eq!(s.sv2_channel.as_deref(), Some("extended"));
    }

    #[test]
    fn flags_win_over_the_file_and_the_file_over_defaults() {
        let s = merged(
            &["-t", "3"],
            "[devices]\nthreads = 8\nbackend = \"cpu\"\n[core]\ndifficulty = 2.0\n",
        );
        assert_eq!(s.devices.cpu.threads, Some(3));
        assert_eq!(s.devices.backend, Some(BackendChoice::Cpu));
        assert_eq!(s.difficulty, Some(2.0));
    }

    #[test]
    fn display_settings_come_from_the_file_unless_flagged() {
        let file = "coinbase_sig = \"rig 7\"\n[log]\nfile = \"/var/log/w.log\"\nquiet = true\n";
        let s = merged(&[], file);
        assert_eq!(s.coinbase_sig.as_deref(), Some("rig 7"));
        assert_eq!(s.display.log_file, Some(PathBuf::from("/var/log/w.log")));
        assert!(s.display.quiet);
        let s = merged(&["--log-file", "/tmp/a.log", "--coinbase-sig", "x"], file);
        assert_eq!(s.display.log_file, Some(PathBuf::from("/tmp/a.log")));
        assert_eq!(s.coinbase_sig.as_deref(), Some("x"));
        assert!(s.to_toml().contains("file = \"/tmp/a.log\""));
    }

    #[test]
    fn node_credentials_come_as_a_set() {
        let file = "[node]\nurl = \"http://127.0.0.1:1\"\nrpc_cookie = \"/c\"\n";
        let s = merged(&["--rpc-user", "u", "--rpc-pass", "p"], file);
        assert_eq!(s.urls, ["http://127.0.0.1:1"]);
        assert_eq!(s.rpc_cookie, None);
        let s = merged(&[], file);
        assert_eq!(s.rpc_cookie, Some(PathBuf::from("/c")));
    }

    #[test]
    fn pool_users_and_passwords_follow_the_pools() {
        let file = "[[pool]]\nurl = \"stratum+tcp://a:1\"\nuser = \"ua\"\n\
                    [[pool]]\nurl = \"stratum+tcp://b:2\"\npassword = \"pb\"\n";
        let s = merged(&[], file);
        assert_eq!(s.users, ["ua", ""]);
        assert_eq!(s.passwords, ["x", "pb"]);
        let s = merged(&["-o", "stratum+tcp://c:3", "-u", "me"], file);
        assert_eq!(s.urls, ["stratum+tcp://c:3"]);
        assert_eq!(s.users, ["me"]);
    }
}
