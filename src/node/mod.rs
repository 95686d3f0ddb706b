//! The embedded node core: a regtest-rules chain on disk that wgminer mines against by default,
//! so a user with no node and no pool still mines real, verifiable blocks.
//!
//! The chain itself is synchronous: [`service::NodeCore`] shares a [`Chain`] (behind a mutex)
//! between the in-process miner (`mining::CoreSource`) and the JSON-RPC server ([`rpc_server`]),
//! which call [`Chain::template`] and [`Chain::submit_block`].
//!
//! - [`chain`]: the chain itself (open, tip, lookups, templates, block acceptance).
//! - [`validate`]: the consensus checks, pure functions testable without disk.
//! - [`store`]: the redb database file under the chain directory.
//! - [`wallet`]: the payout key the core pays when no `--coinbase-addr` is given.
//! - [`datadir`]: where the data directory lives by default.
//! - [`service`]: the chain as a running service ([`NodeCore`]), shared by the miner and the
//!   RPC server, with a watch channel for the tip (the longpoll).
//! - [`sv2_tp`]: the Stratum V2 Template Provider (Template Distribution over Noise), which
//!   hands solutions to the same [`NodeCore::submit`] as `submitblock`.
//! - [`rpc_server`]: the network side: JSON-RPC over HTTP in Bitcoin Core's dialect
//!   (`getblocktemplate`, `submitblock` and the chain lookups), cookie auth, within the limits
//!   of [`crate::http`].
//!
//! What this core is not: it keeps one chain (no side chains or reorganisations: a block must
//! build on the tip), and it has no UTXO set or mempool, so it accepts coinbase-only blocks.

pub mod chain;
pub mod datadir;
pub mod rpc_server;
pub mod service;
pub mod store;
pub mod sv2_tp;
pub mod validate;
pub mod wallet;

use std::path::{Path, PathBuf};

pub use chain::{Accepted, BlockRejected, Chain, ChainParams};
pub use datadir::{chain_dir, default_data_dir};
pub use service::{verdict_for, NodeCore};
pub use validate::{regtest_subsidy, RejectReason, StoreFault};
pub use wallet::{load_or_create_payout, PAYOUT_KEY_FILE};

/// Why the node core cannot open, read or write its data, or cannot use a parameter. Each
/// message names the path involved and what the user can do about it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeError {
    /// The data directory path names something that is not a directory.
    #[error("data directory {path} exists but is not a directory: give the path of a directory (it is created if missing)")]
    NotADirectory { path: PathBuf },
    /// The file system refused a write for lack of permission or because it is read-only.
    #[error("cannot {action} {path}: it is read-only or not writable by this user ({source}); give a writable data directory")]
    ReadOnly {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// The disk (or the user's quota) is full.
    #[error("cannot {action} {path}: the disk is full ({source}); free some space or give a data directory on another disk")]
    Full {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// Any other I/O failure.
    #[error("cannot {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// Another process holds the chain database's lock.
    #[error("another wgminer is using {dir} (its chain database is locked): stop that one, or give this one another data directory")]
    Locked { dir: PathBuf },
    /// The database file exists but is empty: not a chain (only a missing file is a new one).
    #[error("chain.redb at {file} is empty (0 bytes): it is not a chain; delete it to start a new chain, or restore it from a backup")]
    Empty { file: PathBuf },
    /// The database file cannot be read as a wgminer chain.
    #[error("{file} is unreadable or corrupt ({why}): move it away (wgminer then starts a new chain from the genesis block) or give another data directory")]
    Corrupt { file: PathBuf, why: String },
    /// Any other database failure.
    #[error("chain database {file}: {why}")]
    Database { file: PathBuf, why: String },
    /// A `--difficulty` that cannot be a fixed regtest target.
    #[error("invalid difficulty {value}: {why}")]
    BadDifficulty { value: f64, why: String },
    /// The payout key file cannot be read, parsed or written.
    #[error("payout key file {path}: {why}")]
    KeyFile { path: PathBuf, why: String },
}

impl NodeError {
    /// Whether it is a full disk (or quota): what the miner waits out rather than gives up on.
    pub fn is_disk_full(&self) -> bool {
        matches!(self, NodeError::Full { .. })
    }

    /// Classify an I/O error on `path`: read-only and full disks get their own variants, since
    /// they are what a user most often has to fix.
    pub fn io(action: &'static str, path: &Path, source: std::io::Error) -> NodeError {
        use std::io::ErrorKind::*;
        let path = path.to_owned();
        match source.kind() {
            PermissionDenied | ReadOnlyFilesystem => NodeError::ReadOnly {
                action,
                path,
                source,
            },
            StorageFull | QuotaExceeded => NodeError::Full {
                action,
                path,
                source,
            },
            _ => NodeError::Io {
                action,
                path,
                source,
            },
        }
    }
}
