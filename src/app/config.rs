//! The TOML configuration file (`--config FILE`): its keys and reading it (`config show`
//! writes settings back in the same shape). Every value is checked while the file is read, so a wrong type,
//! an unknown key or a bad value is an error naming the key and its line. How the file meets
//! the flags is [`crate::app::settings`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::app::cli::{parse_kernel, parse_path, BackendChoice};
use crate::app::error::UsageError;

/// The commented example `wgminer config example` prints (and the tests parse).
pub const EXAMPLE: &str = include_str!("wgminer.example.toml");

/// What a secret shows as in `config show`.
pub const MASK: &str = "********";

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub coinbase_addr: Option<String>,
    /// `--coinbase-sig`: text in every solo coinbase scriptSig.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub coinbase_sig: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suggest_difficulty: Option<Difficulty>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sv2_authority: Option<String>,
    /// `--sv2-channel`: `standard` or `extended`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sv2_channel: Option<String>,
    #[serde(default, rename = "pool", skip_serializing_if = "Vec::is_empty")]
    pub pools: Vec<PoolEntry>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<NodeEntry>,
    #[serde(default)]
    pub core: CoreEntry,
    #[serde(default)]
    pub devices: DevicesEntry,
    #[serde(default)]
    pub api: ApiEntry,
    #[serde(default)]
    pub log: LogEntry,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PoolEntry {
    pub url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NodeEntry {
    pub url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rpc_user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rpc_password: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rpc_cookie: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CoreEntry {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub datadir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub difficulty: Option<Difficulty>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rpc_bind: Option<SocketAddr>,
    /// Seconds per block to retarget for (0: a fixed difficulty).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub block_time: Option<u32>,
    /// Where to serve Stratum V2's Template Distribution Protocol.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sv2_tp_bind: Option<SocketAddr>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DevicesEntry {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backend: Option<Backend>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub select: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_software: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threads: Option<Threads>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_path: Option<CpuPath>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gpu_kernel: Option<GpuKernel>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gpu_workgroup_size: Option<LaunchSize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gpu_nonces_per_thread: Option<LaunchSize>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ApiEntry {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bind: Option<SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_file: Option<PathBuf>,
    /// cgminer's TCP API.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cgminer_bind: Option<SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cgminer_allow: Option<String>,
    /// GPU temperature limit, °C.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gpu_temp_limit: Option<u32>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LogEntry {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub json: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub level: Option<Level>,
    /// `--log-file`: every line appended there too.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<std::path::PathBuf>,
    /// `-q`: rates and results only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quiet: Option<bool>,
}

/// `cpu`, `gpu` or `all`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Cpu,
    Gpu,
    All,
}

impl From<Backend> for BackendChoice {
    fn from(b: Backend) -> Self {
        match b {
            Backend::Cpu => BackendChoice::Cpu,
            Backend::Gpu => BackendChoice::Gpu,
            Backend::All => BackendChoice::All,
        }
    }
}

impl From<BackendChoice> for Backend {
    fn from(b: BackendChoice) -> Self {
        match b {
            BackendChoice::Cpu => Backend::Cpu,
            BackendChoice::Gpu => Backend::Gpu,
            BackendChoice::All => Backend::All,
        }
    }
}

/// Values checked as they are read, so toml reports a bad one with its key and line.
macro_rules! checked {
    ($name:ident, $raw:ty, $raw_name:literal, |$v:ident| $check:expr) => {
        #[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
        #[serde(try_from = $raw_name, into = $raw_name)]
        pub struct $name(pub $raw);

        impl TryFrom<$raw> for $name {
            type Error = String;
            fn try_from($v: $raw) -> Result<Self, String> {
                $check.map(|()| $name($v))
            }
        }

        impl From<$name> for $raw {
            fn from(v: $name) -> $raw {
                v.0
            }
        }
    };
}

checked!(Difficulty, f64, "f64", |v| if v.is_finite() && v > 0.0 {
    Ok(())
} else {
    Err(format!("{v} is not a positive difficulty"))
});
checked!(Threads, u32, "u32", |v| if (1..=4096).contains(&v) {
    Ok(())
} else {
    Err(format!("{v} threads: give 1 to 4096"))
});
checked!(LaunchSize, u32, "u32", |v| if (1..=1024).contains(&v) {
    Ok(())
} else {
    Err(format!("{v}: give 1 to 1024"))
});
checked!(CpuPath, String, "String", |v| parse_path(&v).map(|_| ()));
checked!(GpuKernel, String, "String", |v| parse_kernel(&v)
    .map(|_| ()));
checked!(
    Level,
    String,
    "String",
    |v| if ["error", "warn", "info", "debug", "trace"].contains(&v.as_str()) {
        Ok(())
    } else {
        Err(format!(
            "log level {v:?}: give error, warn, info, debug or trace"
        ))
    }
);

/// Read and check a configuration file.
pub fn load(path: &Path) -> Result<ConfigFile, UsageError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| UsageError(format!("cannot read config file {}: {e}", path.display())))?;
    parse(&text).map_err(|e| UsageError(format!("config file {}: {e}", path.display())))
}

/// Parse configuration text; the error names the key and line.
pub fn parse(text: &str) -> Result<ConfigFile, String> {
    let cfg: ConfigFile = toml::from_str(text).map_err(|e| e.to_string().trim().to_owned())?;
    if !cfg.pools.is_empty() && cfg.node.is_some() {
        return Err(
            "both [[pool]] and [node] are set: mine on pools or on a node, not both".into(),
        );
    }
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_parses() {
        let cfg = parse(EXAMPLE).unwrap();
        assert!(cfg.pools.is_empty() && cfg.node.is_none());
    }

    #[test]
    fn wrong_types_and_unknown_keys_name_the_key_and_line() {
        let e = parse("[devices]\nthreads = \"eight\"\n").unwrap_err();
        assert!(e.contains("line 2") && e.contains("threads"), "{e}");
        let e = parse("[devices]\nthread = 8\n").unwrap_err();
        assert!(
            e.contains("line 2") && e.contains("unknown field `thread`"),
            "{e}"
        );
        let e = parse("\n\n[devices]\nthreads = 0\n").unwrap_err();
        assert!(e.contains("line 4") && e.contains("1 to 4096"), "{e}");
        let e = parse("[devices]\nbackend = \"fpga\"\n").unwrap_err();
        assert!(e.contains("fpga") && e.contains("line 2"), "{e}");
        let e = parse("[devices]\ncpu_path = \"sse9\"\n").unwrap_err();
        assert!(e.contains("sse9") && e.contains("line 2"), "{e}");
        let e = parse("[core]\ndifficulty = -1.0\n").unwrap_err();
        assert!(e.contains("positive") && e.contains("line 2"), "{e}");
        let e = parse("[api]\nbind = \"nowhere\"\n").unwrap_err();
        assert!(e.contains("line 2"), "{e}");
        let e = parse("[[pool]]\nurl = \"stratum+tcp://a:1\"\n[node]\nurl = \"http://b:2\"\n")
            .unwrap_err();
        assert!(e.contains("not both"), "{e}");
        let e = parse("[log]\nlevel = \"loud\"\n").unwrap_err();
        assert!(e.contains("loud"), "{e}");
    }
}
