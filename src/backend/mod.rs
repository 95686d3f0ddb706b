//! Backends: the compute engines that search nonces. Each is synchronous, driven from its own
//! worker thread, and reports [`Hit`]s that the caller re-verifies on the CPU
//! ([`crate::work::verify_hits`]) before anything is submitted.

pub mod cpu;
pub mod gpu;

use std::sync::atomic::AtomicBool;

use crate::work::{Hit, WorkUnit};

pub use cpu::CpuBackend;
pub use gpu::GpuBackend;

/// What a backend reports for one scan call.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScanReport {
    /// Nonces believed to meet their unit's target (unverified).
    pub hits: Vec<Hit>,
    /// Nonces actually hashed (less than requested if the scan was cancelled).
    pub hashes: u64,
    /// Whether the scan stopped early because `cancel` was set.
    pub cancelled: bool,
}

/// Why a backend could not scan.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackendError {
    #[error("device lost: {0}")]
    DeviceLost(String),
    #[error("{0}")]
    Other(String),
}

/// One mining device as listed by `wgminer devices`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct DeviceInfo {
    /// Stable index for `--device`.
    pub index: usize,
    /// "cpu" or "gpu".
    pub kind: String,
    pub name: String,
    /// Extra detail: the SHA path and threads for the CPU; API, adapter type and driver for GPUs.
    pub detail: String,
}

/// A compute engine that searches nonce ranges of work units.
pub trait Backend: Send {
    /// Short label for logs and tables, e.g. `cpu` or `gpu0`.
    fn label(&self) -> String;

    /// Search every unit's nonce range and report hits. Checks `cancel` between slices of work
    /// (a few milliseconds apart) and returns early, with what it found so far, once it is set.
    fn scan(&mut self, units: &[WorkUnit], cancel: &AtomicBool)
        -> Result<ScanReport, BackendError>;
}
