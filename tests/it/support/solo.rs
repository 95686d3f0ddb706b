//! Shared by the solo-mining tests: a temporary directory, and blocks built for a template the
//! way the miner builds them (a solo job, nonces until one meets the target, the job's block
//! assembly).

use std::path::PathBuf;
use std::sync::Arc;

use bitcoin::{Block, ScriptBuf};
use wgminer::pow::hash_meets_target;
use wgminer::work::{BlockTemplate, Extranonce2, Roll, SolvedBlock};

/// A directory under the system temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!(
            "wgminer-{tag}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Mine `template` paying `payout`: extranonce2 0, 1, … and every nonce until a header meets
/// the template's target.
pub fn mine(template: &BlockTemplate, payout: &ScriptBuf, tag: [u8; 4]) -> Block {
    let template = Arc::new(template.clone());
    let solo = template.solo_job("t".into(), payout, tag).unwrap();
    for en2 in 0u64.. {
        let roll = Roll {
            extranonce2: Some(Extranonce2::new(en2, 4).unwrap()),
            ntime: solo.job.ntime,
            version_bits: 0,
        };
        let mut header = solo.job.header(&roll, 0).unwrap();
        for nonce in 0..=u32::MAX {
            header.nonce = nonce;
            if hash_meets_target(&header.block_hash(), &template.target) {
                let share = solo.job.share(&roll, nonce);
                return solo.block(&share).unwrap().decode().unwrap();
            }
        }
    }
    unreachable!("2^64 extranonces")
}

/// A solved block for an easy (regtest) template; with `meets` false, the same block with a
/// nonce whose hash misses the target (assembled by hand: the solo job refuses it).
pub fn solve(template: &BlockTemplate, payout: &ScriptBuf, meets: bool) -> SolvedBlock {
    let t = Arc::new(template.clone());
    let solo = t.solo_job("t".into(), payout, [9, 9, 9, 9]).unwrap();
    let roll = Roll {
        extranonce2: Some(Extranonce2::new(1, 4).unwrap()),
        ntime: t.start_time(),
        version_bits: 0,
    };
    let find = |want: bool| {
        (0..100_000u32)
            .find(|&n| {
                hash_meets_target(&solo.job.header(&roll, n).unwrap().block_hash(), &t.target)
                    == want
            })
            .expect("an easy target")
    };
    let mut block = solo.block(&solo.job.share(&roll, find(true))).unwrap();
    if !meets {
        let header = solo.job.header(&roll, find(false)).unwrap();
        block.bytes[..80].copy_from_slice(&bitcoin::consensus::serialize(&header));
        block.header = header;
        block.hash = header.block_hash();
    }
    block
}

/// What `tracing` writes while a guard from [`LogCapture::install`] lives on this thread (run
/// the code under test on a current-thread runtime so its tasks log here too).
#[derive(Clone, Default)]
pub struct LogCapture(Arc<std::sync::Mutex<Vec<u8>>>);

impl LogCapture {
    pub fn install(&self) -> tracing::subscriber::DefaultGuard {
        let sink = self.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || sink.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::set_default(subscriber)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl std::io::Write for LogCapture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The blocks saved in `dir` (`<height>-<hash>.hex` files), with their file names, sorted.
pub fn saved_blocks(dir: &std::path::Path) -> Vec<(String, String, Block)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<(String, String, Block)> = entries
        .map(|e| {
            let e = e.unwrap();
            let name = e.file_name().to_string_lossy().into_owned();
            let hex = std::fs::read_to_string(e.path()).unwrap().trim().to_owned();
            let bytes: Vec<u8> = bitcoin::hex::FromHex::from_hex(&hex)
                .unwrap_or_else(|err| panic!("{name} is not hex: {err}"));
            let block: Block = bitcoin::consensus::deserialize(&bytes)
                .unwrap_or_else(|err| panic!("{name} is not a block: {err}"));
            (name, hex, block)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// A small tmpfs mounted for one test: a real file system that fills up. Needs root (or
/// CAP_SYS_ADMIN); [`Tmpfs::mount`] says why not where it cannot be mounted.
pub struct Tmpfs {
    pub dir: PathBuf,
    filler: PathBuf,
}

impl Tmpfs {
    /// Mount a tmpfs of `mib` MiB on a new directory under the system temp dir.
    pub fn mount(tag: &str, mib: u32) -> Result<Tmpfs, String> {
        let dir = TempDir::new(tag);
        let path = dir.0.clone();
        // Keep the directory: it becomes the mount point, removed after unmounting.
        std::mem::forget(dir);
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs"])
            .arg(&path)
            .output();
        match out {
            Ok(o) if o.status.success() => Ok(Tmpfs {
                filler: path.join("filler"),
                dir: path,
            }),
            Ok(o) => {
                let _ = std::fs::remove_dir_all(&path);
                Err(format!(
                    "mount -t tmpfs failed ({}): {}",
                    o.status,
                    String::from_utf8_lossy(&o.stderr).trim()
                ))
            }
            Err(e) => {
                let _ = std::fs::remove_dir_all(&path);
                Err(format!("cannot run mount: {e}"))
            }
        }
    }

    pub fn path(&self) -> &str {
        self.dir.to_str().unwrap()
    }

    /// Fill the file system to the last byte with a filler file; returns its size.
    pub fn fill(&self) -> u64 {
        use std::io::Write;
        let mut f = std::fs::File::create(&self.filler).unwrap();
        let chunk = vec![0xa5u8; 64 * 1024];
        let mut written = 0u64;
        loop {
            match f.write(&chunk) {
                Ok(0) => break,
                Ok(n) => written += n as u64,
                Err(e) if e.raw_os_error() == Some(28) => break, // ENOSPC
                Err(e) => panic!("filling {}: {e}", self.filler.display()),
            }
        }
        // The last partial page, byte by byte.
        while let Ok(1) = f.write(&chunk[..1]) {
            written += 1;
        }
        let _ = f.flush();
        written
    }

    /// Free the space [`Tmpfs::fill`] took.
    pub fn free(&self) {
        std::fs::remove_file(&self.filler).unwrap();
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.dir)
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
