//! The GPU backend: wgpu on any adapter (Vulkan, Metal, DX12, GL), running the unrolled WGSL
//! kernel that build.rs generates from `shaders/sha256d.wgsl`.
//!
//! A [`GpuBackend`] owns one device and everything built for it once (pipeline, buffers, bind
//! groups). It cuts each batch's nonces into dispatches sized toward a target GPU time and keeps
//! two in flight, across batches too: while dispatch N+1 runs, N's hits are read back and handed
//! to the feed at once. If a dispatch finds
//! more hits than its buffer holds, its rows are re-scanned on the CPU, so no hit is lost.
//!
//! - `adapters`: every adapter wgpu sees, what each is, which mine by default.
//! - `context`: what is built once per device (device, queue, pipeline, two slots of buffers).
//! - `dispatch`: packing units' nonce ranges into rows and sizing dispatches toward a GPU time.
//! - [`kernel`]: the generated WGSL as the host sees it (the table of variants from build.rs,
//!   the row parameters, the hit-buffer layout).
//! - `shape`: what tells one kernel variant from another, and their names (shared with
//!   build.rs).

mod adapters;
mod context;
mod dispatch;
pub mod kernel;
mod shape;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Assignment, Backend, BackendError, DeviceId, Feed, Progress, WorkFeed};
use crate::pow::{scan, ScanPath};
use crate::work::{Hit, WorkUnit};

pub use adapters::{default_selection, enumerate, AdapterSummary, GpuAdapter};
use context::{Context, SLOTS};
pub use dispatch::{groups_along_row, row_limit, Planner, RowSpec, Tuner};
pub use kernel::{KernelEntry, KernelError, KERNELS};
pub use shape::{KernelShape, Lanes, MadLevel, ParseKernelShapeError, Probe};

/// Why a GPU backend could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GpuError {
    #[error(
        "no GPU adapter found; wgpu saw none on Vulkan, Metal, DX12 or GL (without a GPU, \
         Mesa's lavapipe from the mesa-vulkan-drivers package provides a software one)"
    )]
    NoAdapter,
    #[error("cannot open {adapter}: {source}")]
    RequestDevice {
        adapter: String,
        #[source]
        source: wgpu::RequestDeviceError,
    },
    #[error("{adapter} rejected the kernel: {message}")]
    Pipeline { adapter: String, message: String },
    #[error("invalid GPU settings: {0}")]
    Settings(String),
    #[error(transparent)]
    Kernel(#[from] KernelError),
}

/// Knobs of the GPU backend. The defaults suit a large discrete GPU and work everywhere.
#[derive(Clone, Debug)]
pub struct GpuOptions {
    /// Shape of the kernel's nonce loop (which entry point runs).
    pub kernel: KernelShape,
    /// Invocations per workgroup (a pipeline constant of the kernel).
    pub workgroup_size: u32,
    /// Nonces each invocation hashes (a pipeline constant of the kernel).
    pub nonces_per_thread: u32,
    /// Hit records per dispatch; beyond this the dispatch is re-scanned on the CPU.
    pub hit_capacity: u32,
    /// GPU time one dispatch should take; the dispatch size is tuned toward it.
    pub target_dispatch_time: Duration,
    /// Size of the first dispatch, before any measurement (rounded to a workgroup's worth).
    pub initial_dispatch_nonces: u64,
    /// Upper bound on the tuned dispatch size.
    pub max_dispatch_nonces: u64,
}

impl Default for GpuOptions {
    fn default() -> Self {
        GpuOptions {
            kernel: KernelShape::X1,
            workgroup_size: 256,
            nonces_per_thread: 8,
            hit_capacity: 1 << 16,
            target_dispatch_time: Duration::from_millis(30),
            initial_dispatch_nonces: 1 << 16,
            max_dispatch_nonces: (kernel::MAX_ROWS as u64) * kernel::MAX_ROW_NONCES,
        }
    }
}

/// PCI vendor id of NVIDIA.
const VENDOR_NVIDIA: u32 = 0x10de;

impl GpuOptions {
    /// The defaults, with the kernel variant measured fastest on this vendor's GPUs.
    ///
    /// On an H100 (Vulkan, driver 580) the m4 kernel, which writes most additions as
    /// multiply-adds so they issue on the FMA pipe instead of the saturated integer pipe, ran
    /// 7.90 GH/s against 6.89 for x1 (BENCHMARKS.md). Elsewhere (lavapipe: 24.7 vs 36.6 MH/s)
    /// the plain kernel is faster, so it stays the default until a device says otherwise.
    pub fn for_adapter(adapter: &GpuAdapter) -> Self {
        let kernel = if adapter.info.vendor == VENDOR_NVIDIA && !adapter.is_software() {
            KernelShape::M4
        } else {
            KernelShape::X1
        };
        GpuOptions {
            kernel,
            ..GpuOptions::default()
        }
    }
}

/// Current dispatch geometry, for tables and logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct GpuTuning {
    pub kernel: KernelShape,
    pub workgroup_size: u32,
    pub nonces_per_thread: u32,
    /// Nonces per dispatch, as tuned so far.
    pub dispatch_nonces: u64,
}

/// Counters since the backend was built.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct GpuStats {
    pub dispatches: u64,
    /// Dispatches whose hits overflowed the hit buffer (and were re-scanned on the CPU).
    pub overflows: u64,
    /// Nonces re-scanned on the CPU because of overflows.
    pub rescanned_nonces: u64,
}

/// A dispatch that has been submitted and not yet read back.
struct InFlight {
    slot: usize,
    /// The batch it belongs to.
    tag: u64,
    index: wgpu::SubmissionIndex,
    rows: Vec<RowSpec>,
    nonces: u64,
    submitted: Instant,
}

pub struct GpuBackend {
    id: DeviceId,
    label: String,
    summary: AdapterSummary,
    options: GpuOptions,
    ctx: Context,
    tuner: Tuner,
    /// Most nonces per row, so no dispatch needs more workgroups along x than the device allows.
    row_max: u64,
    stats: GpuStats,
}

impl GpuBackend {
    /// Open `adapter` and build everything the kernel needs, once.
    pub fn new(adapter: &GpuAdapter, options: GpuOptions) -> Result<Self, GpuError> {
        if options.nonces_per_thread == 0 || options.nonces_per_thread > 1024 {
            return Err(GpuError::Settings(format!(
                "nonces per thread must be 1..=1024, got {}",
                options.nonces_per_thread
            )));
        }
        if options.hit_capacity == 0 {
            return Err(GpuError::Settings("hit capacity must be at least 1".into()));
        }
        let ctx = Context::new(adapter, &options)?;
        let quantum = u64::from(options.workgroup_size) * u64::from(options.nonces_per_thread);
        let row_max = row_limit(quantum, ctx.max_workgroups_per_dimension());
        // A dispatch can hold no more than MAX_ROWS full rows; a larger budget would never be
        // filled, and the tuner would never see the dispatch it asked for.
        let max_dispatch = options
            .max_dispatch_nonces
            .min(kernel::MAX_ROWS as u64 * row_max);
        let tuner = Tuner::new(
            options.initial_dispatch_nonces,
            options.target_dispatch_time,
            quantum,
            max_dispatch,
        );
        Ok(GpuBackend {
            id: DeviceId {
                index: adapter.index,
                label: adapter.label(),
            },
            label: adapter.label(),
            summary: adapter.summary(),
            options,
            ctx,
            tuner,
            row_max,
            stats: GpuStats::default(),
        })
    }

    /// The first adapter of [`default_selection`] (a software one only when there is no GPU): for tests, benches
    /// and quick use.
    pub fn first_available(options: GpuOptions) -> Result<Self, GpuError> {
        let all = enumerate();
        let adapter = default_selection(&all, false)
            .into_iter()
            .next()
            .ok_or(GpuError::NoAdapter)?;
        Self::new(&adapter, options)
    }

    pub fn adapter(&self) -> &AdapterSummary {
        &self.summary
    }

    pub fn tuning(&self) -> GpuTuning {
        GpuTuning {
            kernel: self.options.kernel,
            workgroup_size: self.options.workgroup_size,
            nonces_per_thread: self.options.nonces_per_thread,
            dispatch_nonces: self.tuner.nonces(),
        }
    }

    pub fn stats(&self) -> GpuStats {
        self.stats
    }

    fn submit(
        &mut self,
        slot: usize,
        tag: u64,
        rows: Vec<RowSpec>,
        units: &[WorkUnit],
    ) -> InFlight {
        let params: Vec<kernel::Row> = rows
            .iter()
            .map(|r| kernel::Row::new(&units[r.unit].pre, r.nonces.start, r.nonces.count as u32))
            .collect();
        let per_group =
            u64::from(self.options.workgroup_size) * u64::from(self.options.nonces_per_thread);
        let longest = rows.iter().map(|r| r.nonces.count).max().unwrap_or(0);
        let grid_x = groups_along_row(longest, per_group);
        debug_assert!(grid_x <= u64::from(self.ctx.max_workgroups_per_dimension()));
        let grid_x = grid_x as u32;
        let index = self.ctx.submit(slot, &params, grid_x);
        let nonces = rows.iter().map(|r| r.nonces.count).sum();
        InFlight {
            slot,
            tag,
            index,
            rows,
            nonces,
            submitted: Instant::now(),
        }
    }

    /// Read one dispatch back and turn its records into hits (re-scanning on the CPU if the
    /// hit buffer overflowed).
    fn complete(&mut self, job: &InFlight, units: &[WorkUnit]) -> Result<Vec<Hit>, BackendError> {
        let mut hits = Vec::new();
        let readback = self.ctx.read(job.slot, job.index.clone())?;
        self.stats.dispatches += 1;
        if readback.count > self.ctx.hit_capacity() {
            self.stats.overflows += 1;
            self.stats.rescanned_nonces += job.nonces;
            tracing::warn!(
                "{}: {} hits overflowed the {}-entry hit buffer; re-scanning {} nonces on the CPU",
                self.label,
                readback.count,
                self.ctx.hit_capacity(),
                job.nonces
            );
            for row in &job.rows {
                let mut found = Vec::new();
                scan::scan(
                    ScanPath::best(),
                    &units[row.unit].pre,
                    row.nonces.start,
                    row.nonces.count,
                    &mut found,
                );
                hits.extend(found.into_iter().map(|nonce| Hit {
                    unit: row.unit,
                    nonce,
                }));
            }
            return Ok(hits);
        }
        for (row, nonce) in readback.records {
            match job.rows.get(row as usize) {
                Some(r) => hits.push(Hit {
                    unit: r.unit,
                    nonce,
                }),
                // Only a faulty device writes a row it was not given: nothing to attribute.
                None => tracing::warn!(
                    "{}: hit names row {row} of a {}-row dispatch",
                    self.label,
                    job.rows.len()
                ),
            }
        }
        Ok(hits)
    }

    /// Keep [`SLOTS`] dispatches in flight across batches: the next batch is asked for as soon
    /// as the current one has no rows left to plan, so the GPU never idles between batches, and
    /// each dispatch's hits go to the feed the moment it is read back.
    fn mine_inner(&mut self, feed: &dyn WorkFeed) -> Result<(), BackendError> {
        let mut active: VecDeque<Active> = VecDeque::new();
        let mut in_flight: VecDeque<InFlight> = VecDeque::new();
        let mut free: Vec<usize> = (0..SLOTS).rev().collect();
        let row_max = self.row_max;
        let mut stopping = false;
        // When the previous dispatch finished: the next one was already queued, so from then on
        // the GPU was working on it.
        let mut last_done: Option<Instant> = None;
        loop {
            while let Some(&slot) = free.last() {
                let planning = active
                    .back()
                    .is_some_and(|a| !a.planner.is_done() && !a.assignment.is_cancelled());
                if !planning {
                    if stopping {
                        break;
                    }
                    match feed.next(in_flight.is_empty()) {
                        Feed::Work(assignment) => {
                            let planner = Planner::new(&assignment.units);
                            active.push_back(Active {
                                assignment,
                                planner,
                                in_flight: 0,
                            });
                            continue;
                        }
                        Feed::Empty => break,
                        Feed::Stop => {
                            stopping = true;
                            break;
                        }
                    }
                }
                let Some(current) = active.back_mut() else {
                    break;
                };
                free.pop();
                let rows = current.planner.next_batch(self.tuner.nonces(), row_max);
                current.in_flight += 1;
                let units = Arc::clone(&current.assignment.units);
                let tag = current.assignment.tag;
                in_flight.push_back(self.submit(slot, tag, rows, &units));
            }
            retire(&mut active, feed);
            let Some(job) = in_flight.pop_front() else {
                if stopping {
                    return Ok(());
                }
                continue;
            };
            let Some(owner) = active.iter_mut().find(|a| a.assignment.tag == job.tag) else {
                // Every dispatch belongs to an active assignment until it is read back.
                return Err(BackendError::Other(format!(
                    "{}: dispatch of an unknown batch",
                    self.label
                )));
            };
            let hits = self.complete(&job, &owner.assignment.units)?;
            let done = Instant::now();
            let began = last_done.map_or(job.submitted, |t| t.max(job.submitted));
            self.tuner.observe(job.nonces, done - began);
            last_done = Some(done);
            owner.in_flight -= 1;
            free.push(job.slot);
            feed.progress(
                &owner.assignment,
                Progress {
                    hashes: job.nonces,
                    hits: &hits,
                    started: began,
                },
            );
        }
    }
}

/// A batch the GPU is working on.
struct Active {
    assignment: Assignment,
    planner: Planner,
    /// Its dispatches not yet read back.
    in_flight: usize,
}

/// Tell the feed about every batch that has nothing left to plan (or was cancelled) and
/// nothing in flight, and drop it.
fn retire(active: &mut VecDeque<Active>, feed: &dyn WorkFeed) {
    active.retain(|a| {
        let planned = a.planner.is_done() || a.assignment.is_cancelled();
        if planned && a.in_flight == 0 {
            feed.finished(&a.assignment, !a.planner.is_done());
            false
        } else {
            true
        }
    });
}

impl Backend for GpuBackend {
    fn id(&self) -> DeviceId {
        self.id.clone()
    }

    fn mine(&mut self, feed: &dyn WorkFeed) -> Result<(), BackendError> {
        let result = self.mine_inner(feed);
        if result.is_err() {
            // Leave no dispatch in flight or buffer mapped for the next call.
            self.ctx.reset();
        }
        result
    }
}
