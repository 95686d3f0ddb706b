//! The block store: one redb database file, `chain.redb`, in the chain's directory.
//!
//! Three tables: `headers` (height → 80-byte header; the block hash is the header's hash, so
//! the height index cannot disagree with it), `blocks` (hash → the block's consensus bytes) and
//! `meta` (format version, network, tip). Each accepted block is one write transaction that
//! writes all three and commits with [`redb::Durability::Immediate`] (fsync before `commit`
//! returns). redb's commit is atomic: after a crash or `kill -9` at any moment, reopening finds
//! either the old tip or the new one, never a half-written block.
//!
//! redb takes an exclusive lock on the file, so a second wgminer on the same directory gets
//! [`NodeError::Locked`] instead of two writers corrupting each other.

use std::path::{Path, PathBuf};

use bitcoin::block::Header;
use bitcoin::hashes::Hash;
use bitcoin::BlockHash;
use redb::{
    DatabaseError, Durability, ReadableDatabase, ReadableTable, StorageError, TableDefinition,
    TableError,
};

use super::NodeError;

/// The database file's name inside the chain directory.
pub const DB_FILE_NAME: &str = "chain.redb";

/// Bumped when the tables change meaning; an unknown format is refused, not guessed at.
const FORMAT_VERSION: u32 = 1;

const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const HEADERS: TableDefinition<u32, &[u8]> = TableDefinition::new("headers");
const BLOCKS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("blocks");

const META_FORMAT: &str = "format";
const META_NETWORK: &str = "network";
const META_TIP: &str = "tip";
const NETWORK: &[u8] = b"regtest";

/// The opened database and where it lives (for error messages).
pub(crate) struct Store {
    db: redb::Database,
    file: PathBuf,
    dir: PathBuf,
}

/// What a stored chain holds, as read at open.
pub(crate) struct Loaded {
    /// Every header from genesis, by height.
    pub headers: Vec<Header>,
    /// The tip the `meta` table records (checked against `headers` by the caller).
    pub tip: (u32, BlockHash),
}

impl Store {
    /// Open `dir/chain.redb`, creating it if missing. The directory must exist.
    pub fn open(dir: &Path) -> Result<Store, NodeError> {
        let file = dir.join(DB_FILE_NAME);
        let db = guarded(&file, || {
            redb::Database::create(&file).map_err(|e| open_error(e, dir, &file))
        })?;
        Ok(Store {
            db,
            file,
            dir: dir.to_owned(),
        })
    }

    /// The database file's path.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// Read the whole header chain, or `None` for a new, empty database.
    pub fn load(&self) -> Result<Option<Loaded>, NodeError> {
        guarded(&self.file, || self.load_inner())
    }

    fn load_inner(&self) -> Result<Option<Loaded>, NodeError> {
        let txn = self.db.begin_read().map_err(|e| self.err(e))?;
        let meta = match txn.open_table(META) {
            Ok(t) => t,
            Err(TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(self.err(e)),
        };
        let get = |key: &str| -> Result<Vec<u8>, NodeError> {
            meta.get(key)
                .map_err(|e| self.err(e))?
                .map(|v| v.value().to_vec())
                .ok_or_else(|| self.corrupt(format!("the {key:?} record is missing")))
        };
        let format = get(META_FORMAT)?;
        if format != FORMAT_VERSION.to_le_bytes() {
            return Err(self.corrupt(format!(
                "it is in storage format {format:02x?}, this wgminer reads format {FORMAT_VERSION}"
            )));
        }
        let network = get(META_NETWORK)?;
        if network != NETWORK {
            return Err(self.corrupt(format!(
                "it holds a {:?} chain, not regtest",
                String::from_utf8_lossy(&network)
            )));
        }
        let tip = decode_tip(&get(META_TIP)?)
            .ok_or_else(|| self.corrupt("the tip record is not 36 bytes".into()))?;

        let headers_table = txn.open_table(HEADERS).map_err(|e| self.err(e))?;
        let mut headers = Vec::with_capacity(tip.0 as usize + 1);
        for entry in headers_table.iter().map_err(|e| self.err(e))? {
            let (height, bytes) = entry.map_err(|e| self.err(e))?;
            let height = height.value();
            if height as usize != headers.len() {
                return Err(self.corrupt(format!(
                    "the header index jumps from height {} to {height}",
                    headers.len() as i64 - 1
                )));
            }
            let header: Header = bitcoin::consensus::deserialize(bytes.value())
                .map_err(|e| self.corrupt(format!("the header at height {height}: {e}")))?;
            headers.push(header);
        }
        Ok(Some(Loaded { headers, tip }))
    }

    /// Store one block as the new tip, in one durable write transaction.
    pub fn append(
        &self,
        height: u32,
        header: &Header,
        hash: &BlockHash,
        block_bytes: &[u8],
    ) -> Result<(), NodeError> {
        guarded(&self.file, || {
            self.append_inner(height, header, hash, block_bytes)
        })
    }

    fn append_inner(
        &self,
        height: u32,
        header: &Header,
        hash: &BlockHash,
        block_bytes: &[u8],
    ) -> Result<(), NodeError> {
        let mut txn = self.db.begin_write().map_err(|e| self.err(e))?;
        txn.set_durability(Durability::Immediate)
            .map_err(|e| self.err(e))?;
        {
            let mut meta = txn.open_table(META).map_err(|e| self.err(e))?;
            if height == 0 {
                meta.insert(META_FORMAT, FORMAT_VERSION.to_le_bytes().as_slice())
                    .map_err(|e| self.err(e))?;
                meta.insert(META_NETWORK, NETWORK)
                    .map_err(|e| self.err(e))?;
            }
            meta.insert(META_TIP, encode_tip(height, hash).as_slice())
                .map_err(|e| self.err(e))?;
            let mut headers = txn.open_table(HEADERS).map_err(|e| self.err(e))?;
            headers
                .insert(height, bitcoin::consensus::serialize(header).as_slice())
                .map_err(|e| self.err(e))?;
            let mut blocks = txn.open_table(BLOCKS).map_err(|e| self.err(e))?;
            blocks
                .insert(hash.as_byte_array().as_slice(), block_bytes)
                .map_err(|e| self.err(e))?;
        }
        txn.commit().map_err(|e| self.err(e))
    }

    /// A stored block's consensus bytes.
    pub fn block_bytes(&self, hash: &BlockHash) -> Result<Option<Vec<u8>>, NodeError> {
        guarded(&self.file, || {
            let txn = self.db.begin_read().map_err(|e| self.err(e))?;
            let blocks = txn.open_table(BLOCKS).map_err(|e| self.err(e))?;
            let value = blocks
                .get(hash.as_byte_array().as_slice())
                .map_err(|e| self.err(e))?;
            Ok(value.map(|v| v.value().to_vec()))
        })
    }

    /// The error for a database that opened but holds something it should not.
    pub fn corrupt(&self, why: String) -> NodeError {
        NodeError::Corrupt {
            file: self.file.clone(),
            why,
        }
    }

    fn err(&self, e: impl Into<redb::Error>) -> NodeError {
        db_error(e.into(), &self.dir, &self.file)
    }
}

/// Run a database operation, turning a panic inside redb into [`NodeError::Corrupt`]. redb
/// reports most damage as errors, but some damaged pages reach an `unreachable!()` in its
/// B-tree code (seen with redb 4.1 on a file with flipped bytes); a user's broken file must
/// give a message, not a crash.
fn guarded<T>(file: &Path, op: impl FnOnce() -> Result<T, NodeError>) -> Result<T, NodeError> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(op)) {
        Ok(result) => result,
        Err(payload) => {
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic".into());
            Err(NodeError::Corrupt {
                file: file.to_owned(),
                why: format!("the database library failed on its contents: {what}"),
            })
        }
    }
}

fn encode_tip(height: u32, hash: &BlockHash) -> [u8; 36] {
    let mut out = [0u8; 36];
    out[..4].copy_from_slice(&height.to_le_bytes());
    out[4..].copy_from_slice(hash.as_byte_array());
    out
}

fn decode_tip(bytes: &[u8]) -> Option<(u32, BlockHash)> {
    let height = u32::from_le_bytes(bytes.get(..4)?.try_into().ok()?);
    let hash: [u8; 32] = bytes.get(4..)?.try_into().ok()?;
    Some((height, BlockHash::from_byte_array(hash)))
}

/// Errors of `Database::create`, in words a user can act on.
fn open_error(e: DatabaseError, dir: &Path, file: &Path) -> NodeError {
    match e {
        DatabaseError::DatabaseAlreadyOpen => NodeError::Locked {
            dir: dir.to_owned(),
        },
        DatabaseError::UpgradeRequired(v) => NodeError::Corrupt {
            file: file.to_owned(),
            why: format!("it is in the old redb file format {v}, which this wgminer cannot read"),
        },
        DatabaseError::RepairAborted => NodeError::Corrupt {
            file: file.to_owned(),
            why: "it was not closed cleanly and could not be repaired".into(),
        },
        DatabaseError::Storage(s) => storage_error(s, dir, file, "open"),
        other => NodeError::Database {
            file: file.to_owned(),
            why: other.to_string(),
        },
    }
}

fn storage_error(e: StorageError, _dir: &Path, file: &Path, action: &'static str) -> NodeError {
    match e {
        StorageError::Corrupted(why) => NodeError::Corrupt {
            file: file.to_owned(),
            why,
        },
        StorageError::Io(io)
            if matches!(
                io.kind(),
                std::io::ErrorKind::InvalidData | std::io::ErrorKind::UnexpectedEof
            ) =>
        {
            NodeError::Corrupt {
                file: file.to_owned(),
                why: io.to_string(),
            }
        }
        StorageError::Io(io) => NodeError::io(action, file, io),
        other => NodeError::Database {
            file: file.to_owned(),
            why: other.to_string(),
        },
    }
}

fn db_error(e: redb::Error, dir: &Path, file: &Path) -> NodeError {
    match e {
        redb::Error::DatabaseAlreadyOpen => NodeError::Locked {
            dir: dir.to_owned(),
        },
        redb::Error::Corrupted(why) => NodeError::Corrupt {
            file: file.to_owned(),
            why,
        },
        redb::Error::Io(io) => storage_error(StorageError::Io(io), dir, file, "write"),
        redb::Error::TableDoesNotExist(name) => NodeError::Corrupt {
            file: file.to_owned(),
            why: format!("its {name} table is missing"),
        },
        other => NodeError::Database {
            file: file.to_owned(),
            why: other.to_string(),
        },
    }
}
