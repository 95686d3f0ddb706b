//! The block store: one redb database file, `chain.redb`, in the chain's directory.
//!
//! Three tables: `headers` (height → 80-byte header; the block hash is the header's hash, so
//! the height index cannot disagree with it), `blocks` (hash → the block's consensus bytes) and
//! `meta` (format version, network, tip). Each accepted block is one write transaction that
//! writes all three and commits with [`redb::Durability::Immediate`] (fsync before `commit`
//! returns). redb's commit is atomic: after a crash or `kill -9` at any moment, reopening finds
//! either the old tip or the new one, never a half-written block.
//!
//! Only a missing file is a new chain. A new chain is built in `chain.redb.new` (genesis block
//! committed) and then linked into place, so a crash while creating it leaves no half-made
//! `chain.redb`. An existing file is checked before redb sees it: an empty file is refused (it
//! is not a chain, and redb would silently start a new one in it), and a file shorter than its
//! own header says (truncated) is refused as corrupt (redb 4.1 asserts on it, a panic).
//!
//! After a failed write (a full disk) redb refuses every later write on that handle, so
//! `Store::reopen` closes and opens the file again; the chain calls it before the next write.
//!
//! redb takes an exclusive lock on the file, so a second wgminer on the same directory gets
//! [`NodeError::Locked`] instead of two writers corrupting each other.

use std::cell::Cell;
use std::io::Read;
use std::path::{Path, PathBuf};

use bitcoin::block::Header;
use bitcoin::hashes::Hash;
use bitcoin::{Block, BlockHash};
use redb::{
    DatabaseError, Durability, ReadableDatabase, ReadableTable, StorageError, TableDefinition,
    TableError,
};

use super::NodeError;
use crate::pow::asert::Schedule;

/// The database file's name inside the chain directory.
pub const DB_FILE_NAME: &str = "chain.redb";

/// Where a new chain is built before it is linked into place as [`DB_FILE_NAME`].
pub const NEW_DB_FILE_NAME: &str = "chain.redb.new";

/// Bumped when the tables change meaning; an unknown format is refused, not guessed at.
const FORMAT_VERSION: u32 = 1;

const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const HEADERS: TableDefinition<u32, &[u8]> = TableDefinition::new("headers");
const BLOCKS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("blocks");

const META_FORMAT: &str = "format";
const META_NETWORK: &str = "network";
const META_TIP: &str = "tip";
/// The `--block-time` schedule the tip's difficulty came from (absent: a fixed difficulty).
const META_RETARGET: &str = "retarget";
const NETWORK: &[u8] = b"regtest";

/// The opened database and where it lives (for error messages).
pub(crate) struct Store {
    /// `None` between closing a failed handle and opening it again ([`Store::reopen`]).
    db: Option<redb::Database>,
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
    /// Open `dir/chain.redb`, or create it holding `genesis` if (and only if) it is missing.
    /// The directory must exist.
    pub fn open(dir: &Path, genesis: &Block) -> Result<Store, NodeError> {
        let file = dir.join(DB_FILE_NAME);
        if !check_file(&file)? {
            return Store::create(dir, genesis);
        }
        Ok(Store {
            db: Some(open_existing(dir, &file)?),
            file,
            dir: dir.to_owned(),
        })
    }

    /// A new chain: built in [`NEW_DB_FILE_NAME`] with the genesis block committed, then
    /// linked to [`DB_FILE_NAME`] (never replacing a file another process made meanwhile).
    fn create(dir: &Path, genesis: &Block) -> Result<Store, NodeError> {
        let file = dir.join(DB_FILE_NAME);
        let new = dir.join(NEW_DB_FILE_NAME);
        let handle = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&new)
            .map_err(|e| NodeError::io("create", &new, e))?;
        // Lock before emptying it: another wgminer may be creating the chain right now.
        match handle.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(NodeError::Locked {
                    dir: dir.to_owned(),
                })
            }
            Err(std::fs::TryLockError::Error(e)) if e.kind() == std::io::ErrorKind::Unsupported => {
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(NodeError::io("lock", &new, e)),
        }
        // What a crash left of an earlier attempt is not a chain yet: start it over.
        handle
            .set_len(0)
            .map_err(|e| NodeError::io("create", &new, e))?;
        // redb takes the lock itself (on some systems a second lock on one handle fails).
        let _ = handle.unlock();
        let db = guarded(&new, || {
            redb::Builder::new()
                .create_file(handle)
                .map_err(|e| open_error(e, dir, &new))
        })?;
        let mut store = Store {
            db: Some(db),
            file: new.clone(),
            dir: dir.to_owned(),
        };
        let hash = genesis.block_hash();
        store.append(
            0,
            &genesis.header,
            &hash,
            &bitcoin::consensus::serialize(genesis),
        )?;
        // A hard link does not replace an existing file, unlike rename.
        match std::fs::hard_link(&new, &file) {
            Ok(()) => {
                let _ = std::fs::remove_file(&new);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                drop(store);
                let _ = std::fs::remove_file(&new);
                return Err(NodeError::Locked {
                    dir: dir.to_owned(),
                });
            }
            // File systems without hard links (FAT): rename, after checking again.
            Err(_) if !file.exists() => {
                std::fs::rename(&new, &file).map_err(|e| NodeError::io("create", &file, e))?
            }
            Err(e) => return Err(NodeError::io("create", &file, e)),
        }
        sync_dir(dir);
        store.file = file;
        Ok(store)
    }

    /// Close the database and open it again: after a failed write redb refuses every later
    /// one on the same handle ("previous I/O error"). The file must still be there and sound.
    pub fn reopen(&mut self) -> Result<(), NodeError> {
        // Dropping the handle releases the file lock, which the new handle takes.
        self.db = None;
        if !check_file(&self.file)? {
            return Err(self.corrupt("it is gone (deleted while wgminer was running)".into()));
        }
        self.db = Some(open_existing(&self.dir, &self.file)?);
        Ok(())
    }

    fn db(&self) -> Result<&redb::Database, NodeError> {
        self.db.as_ref().ok_or_else(|| NodeError::Database {
            file: self.file.clone(),
            why: "it is closed after a failed write; it is opened again on the next write".into(),
        })
    }

    /// The database file's path.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// The tip the `meta` table records, or `None` for a database without a chain.
    pub fn tip(&self) -> Result<Option<(u32, BlockHash)>, NodeError> {
        let Some(tip) = self.meta_record(META_TIP)? else {
            return Ok(None);
        };
        decode_tip(&tip)
            .map(Some)
            .ok_or_else(|| self.corrupt("the tip record is not 36 bytes".into()))
    }

    /// One record of the `meta` table, or `None` when it (or the table) is not there.
    fn meta_record(&self, key: &str) -> Result<Option<Vec<u8>>, NodeError> {
        guarded(&self.file, || {
            let txn = self.db()?.begin_read().map_err(|e| self.err(e))?;
            let meta = match txn.open_table(META) {
                Ok(t) => t,
                Err(TableError::TableDoesNotExist(_)) => return Ok(None),
                Err(e) => return Err(self.err(e)),
            };
            let record = meta.get(key).map_err(|e| self.err(e))?;
            Ok(record.map(|r| r.value().to_vec()))
        })
    }

    /// The retarget schedule recorded, if any.
    pub fn retarget(&self) -> Result<Option<Schedule>, NodeError> {
        let Some(record) = self.meta_record(META_RETARGET)? else {
            return Ok(None);
        };
        decode_retarget(&record)
            .map(Some)
            .ok_or_else(|| self.corrupt("the retarget record is not 16 bytes".into()))
    }

    /// Record the retarget schedule (`None`: remove it), durably.
    pub fn set_retarget(&self, retarget: Option<Schedule>) -> Result<(), NodeError> {
        guarded(&self.file, || {
            let mut txn = self.db()?.begin_write().map_err(|e| self.err(e))?;
            txn.set_durability(Durability::Immediate)
                .map_err(|e| self.err(e))?;
            {
                let mut meta = txn.open_table(META).map_err(|e| self.err(e))?;
                match retarget {
                    Some(schedule) => {
                        meta.insert(META_RETARGET, encode_retarget(&schedule).as_slice())
                            .map_err(|e| self.err(e))?;
                    }
                    None => {
                        meta.remove(META_RETARGET).map_err(|e| self.err(e))?;
                    }
                }
            }
            txn.commit().map_err(|e| self.err(e))
        })
    }

    /// Read the whole header chain, or `None` for a new, empty database.
    pub fn load(&self) -> Result<Option<Loaded>, NodeError> {
        guarded(&self.file, || self.load_inner())
    }

    fn load_inner(&self) -> Result<Option<Loaded>, NodeError> {
        let txn = self.db()?.begin_read().map_err(|e| self.err(e))?;
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
        let mut txn = self.db()?.begin_write().map_err(|e| self.err(e))?;
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
            let txn = self.db()?.begin_read().map_err(|e| self.err(e))?;
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
/// reports most damage as errors, but some damaged pages reach an `unreachable!()` or an
/// assertion in its code (seen with redb 4.1 on a file with flipped bytes); a user's broken
/// file must give a message, not a crash. [`check_file`] keeps the damage we know of from
/// reaching redb at all; this is for the rest. The panic is not printed (no message and no
/// backtrace on stderr): its text goes into the error instead.
fn guarded<T>(file: &Path, op: impl FnOnce() -> Result<T, NodeError>) -> Result<T, NodeError> {
    let result = {
        let _quiet = QuietPanics::enter();
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(op))
    };
    match result {
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

thread_local! {
    /// Set on a thread while [`guarded`] runs a database operation on it.
    static QUIET: Cell<bool> = const { Cell::new(false) };
}

/// While alive, a panic on this thread is not reported by the panic hook (it is caught and
/// becomes an error). Panics on other threads, and on this one outside the scope, are
/// reported as before: the hook installed once wraps whatever hook was there.
struct QuietPanics {
    was: bool,
}

impl QuietPanics {
    fn enter() -> QuietPanics {
        static INSTALL: std::sync::Once = std::sync::Once::new();
        INSTALL.call_once(|| {
            let previous = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                if !QUIET.with(Cell::get) {
                    previous(info);
                }
            }));
        });
        QuietPanics {
            was: QUIET.with(|q| q.replace(true)),
        }
    }
}

impl Drop for QuietPanics {
    fn drop(&mut self) {
        QUIET.with(|q| q.set(self.was));
    }
}

/// The bytes of redb's file header this check reads (its "super-header" starts with them).
const REDB_HEADER_LEN: usize = 32;
/// redb's magic number: the first bytes of every redb 1.0+ file.
const REDB_MAGIC: [u8; 9] = [b'r', b'e', b'd', b'b', 0x1A, 0x0A, 0xA9, 0x0D, 0x0A];
/// redb's page size (its default, the one wgminer uses).
const REDB_PAGE_SIZE: u64 = 4096;

/// Whether the chain file exists (false: missing, a new chain), refusing one redb must not be
/// handed: empty (redb would start a new database in it, silently dropping the chain the
/// user thinks is there), not a redb file, or shorter than its header says (truncated: redb
/// 4.1 asserts on it). The layout arithmetic mirrors redb 4.1's `DatabaseHeader::layout` and
/// `DatabaseLayout::len` (`tree_store/page_store/{header,layout}.rs`); the file is opened
/// read-only and never changed.
fn check_file(file: &Path) -> Result<bool, NodeError> {
    let meta = match std::fs::metadata(file) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(NodeError::io("read", file, e)),
    };
    let corrupt = |why: String| NodeError::Corrupt {
        file: file.to_owned(),
        why,
    };
    if !meta.is_file() {
        return Err(corrupt("it is not a regular file".into()));
    }
    let len = meta.len();
    if len == 0 {
        return Err(NodeError::Empty {
            file: file.to_owned(),
        });
    }
    let mut header = [0u8; REDB_HEADER_LEN];
    let read = std::fs::File::open(file).and_then(|mut f| f.read_exact(&mut header));
    match read {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            return Err(corrupt(format!(
                "it is truncated: {len} bytes, shorter than a database header"
            )))
        }
        Err(e) => return Err(NodeError::io("read", file, e)),
    }
    if header[..REDB_MAGIC.len()] != REDB_MAGIC {
        return Err(corrupt(
            "it is not a redb database (it does not start with redb's magic number)".into(),
        ));
    }
    let field = |at: usize| {
        let mut bytes = [0u8; 4];
        bytes.copy_from_slice(&header[at..at + 4]);
        u64::from(u32::from_le_bytes(bytes))
    };
    // Offsets of redb 4.1's header: page size, region header pages, region max data pages,
    // full regions, data pages in the trailing partial region.
    let (page_size, header_pages, max_pages, full_regions, trailing_pages) =
        (field(12), field(16), field(20), field(24), field(28));
    if page_size != REDB_PAGE_SIZE {
        return Err(corrupt(format!(
            "its header gives a page size of {page_size} bytes, not {REDB_PAGE_SIZE}"
        )));
    }
    if max_pages == 0 || (full_regions == 0 && trailing_pages == 0) {
        return Err(corrupt("its header describes no data regions".into()));
    }
    // The super-header page, the full regions, then the partial one (if any).
    let region = |pages: u64| header_pages.checked_add(pages)?.checked_mul(page_size);
    let expected = region(max_pages)
        .and_then(|full| full.checked_mul(full_regions))
        .and_then(|full| {
            let trailing = if trailing_pages > 0 {
                region(trailing_pages)?
            } else {
                0
            };
            full.checked_add(trailing)?.checked_add(page_size)
        });
    match expected {
        Some(expected) if len >= expected => Ok(true),
        Some(expected) => Err(corrupt(format!(
            "it is truncated: its header describes {expected} bytes, the file has {len}"
        ))),
        None => Err(corrupt("its header describes an impossible size".into())),
    }
}

/// Open a database file that exists and passed [`check_file`]; never creates one (a file
/// emptied meanwhile is an error, not a new chain).
fn open_existing(dir: &Path, file: &Path) -> Result<redb::Database, NodeError> {
    guarded(file, || {
        redb::Builder::new()
            .open(file)
            .map_err(|e| open_error(e, dir, file))
    })
}

/// Make a new directory entry durable (best effort: not every platform can open a directory).
fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    #[cfg(not(unix))]
    let _ = dir;
}

fn encode_tip(height: u32, hash: &BlockHash) -> [u8; 36] {
    let mut out = [0u8; 36];
    out[..4].copy_from_slice(&height.to_le_bytes());
    out[4..].copy_from_slice(hash.as_byte_array());
    out
}

fn encode_retarget(schedule: &Schedule) -> [u8; 16] {
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&schedule.spacing.to_le_bytes());
    out[8..].copy_from_slice(&schedule.halflife.to_le_bytes());
    out
}

fn decode_retarget(bytes: &[u8]) -> Option<Schedule> {
    let bytes: &[u8; 16] = bytes.try_into().ok()?;
    let (spacing, halflife) = bytes.split_at(8);
    Some(Schedule {
        spacing: i64::from_le_bytes(spacing.try_into().ok()?),
        halflife: i64::from_le_bytes(halflife.try_into().ok()?),
    })
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
