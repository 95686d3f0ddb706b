//! The payout key: when the user gives no `--coinbase-addr`, the node core pays a key it makes
//! once and keeps, so the coins mined are the user's to spend (import the WIF into any wallet,
//! e.g. `bitcoin-cli -regtest importprivkey $(cat payout-key.wif)`).
//!
//! The key is written atomically (temporary file, fsync, link into place, fsync of the
//! directory) with mode 0600, so a crash never leaves a half-written or world-readable key, and
//! two processes racing to create it end up with the same one.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use bitcoin::secp256k1::{Secp256k1, SecretKey};
use bitcoin::{Address, CompressedPublicKey, Network, NetworkKind, PrivateKey};

use super::NodeError;

/// The key file's name inside the directory given to [`load_or_create_payout`].
pub const PAYOUT_KEY_FILE: &str = "payout-key.wif";

/// The P2WPKH address of the key in `dir/payout-key.wif`, creating the key (and `dir`) first if
/// there is none. Returns whether it was created now, so the caller can tell the user where the
/// key is. A key file that exists but does not hold a compressed WIF key for `network`'s kind
/// (mainnet or test networks) is an error, never overwritten.
pub fn load_or_create_payout(dir: &Path, network: Network) -> Result<(Address, bool), NodeError> {
    let path = dir.join(PAYOUT_KEY_FILE);
    match fs::read_to_string(&path) {
        Ok(text) => return Ok((parse_key(&path, &text, network)?, false)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(NodeError::io("read the payout key", &path, e)),
    }
    fs::create_dir_all(dir).map_err(|e| NodeError::io("create the data directory", dir, e))?;
    let key = PrivateKey::new(random_secret_key(&path)?, network);
    let address = address_of(&path, &key, network)?;
    if write_new(dir, &path, &format!("{}\n", key.to_wif()))? {
        Ok((address, true))
    } else {
        // Another process created it first: use theirs.
        let text = fs::read_to_string(&path)
            .map_err(|e| NodeError::io("read the payout key", &path, e))?;
        Ok((parse_key(&path, &text, network)?, false))
    }
}

fn parse_key(path: &Path, text: &str, network: Network) -> Result<Address, NodeError> {
    let bad = |why: String| NodeError::KeyFile {
        path: path.to_owned(),
        why,
    };
    let key = PrivateKey::from_wif(text.trim()).map_err(|e| {
        bad(format!(
            "it does not hold a WIF private key ({e}); move it away to have a new key made"
        ))
    })?;
    if key.network != NetworkKind::from(network) {
        return Err(bad(format!(
            "it holds a key for {:?} networks, not {network}; move it away to have a new key made",
            key.network
        )));
    }
    address_of(path, &key, network)
}

fn address_of(path: &Path, key: &PrivateKey, network: Network) -> Result<Address, NodeError> {
    let secp = Secp256k1::signing_only();
    let public = CompressedPublicKey::from_private_key(&secp, key).map_err(|_| NodeError::KeyFile {
        path: path.to_owned(),
        why: "the key is uncompressed and cannot pay a P2WPKH address; move the file away to have a new key made".into(),
    })?;
    Ok(Address::p2wpkh(&public, network))
}

/// 32 random bytes that make a valid secp256k1 key (a random 32 bytes fails only with
/// probability about 2^-128, so a few tries are plenty).
pub(super) fn random_secret_key(path: &Path) -> Result<SecretKey, NodeError> {
    for _ in 0..8 {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| NodeError::KeyFile {
            path: path.to_owned(),
            why: format!("the system has no randomness to make a key: {e}"),
        })?;
        if let Ok(key) = SecretKey::from_slice(&bytes) {
            return Ok(key);
        }
    }
    Err(NodeError::KeyFile {
        path: path.to_owned(),
        why: "the system's randomness gave no valid key in 8 tries".into(),
    })
}

/// Write `contents` to `path` only if it does not exist, atomically: temporary file (0600),
/// fsync, hard link into place (fails if another process got there first), directory fsync.
/// Falls back to rename where hard links are unsupported. Returns false if `path` appeared
/// meanwhile.
pub(super) fn write_new(dir: &Path, path: &Path, contents: &str) -> Result<bool, NodeError> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| PAYOUT_KEY_FILE.to_owned());
    let tmp: PathBuf = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut options = OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options
            .open(&tmp)
            .map_err(|e| NodeError::io("create", &tmp, e))?;
        file.write_all(contents.as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(|e| NodeError::io("write", &tmp, e))?;
        drop(file);
        let created = match fs::hard_link(&tmp, path) {
            Ok(()) => true,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => false,
            Err(_) => {
                if path.exists() {
                    false
                } else {
                    fs::rename(&tmp, path).map_err(|e| NodeError::io("write the key", path, e))?;
                    true
                }
            }
        };
        sync_dir(dir);
        Ok(created)
    })();
    let _ = fs::remove_file(&tmp);
    result
}

/// Make the new directory entry durable (Unix; elsewhere the rename is as durable as it gets).
fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    #[cfg(not(unix))]
    let _ = dir;
}
