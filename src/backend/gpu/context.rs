//! Everything a GPU needs to run the kernel, built once per device: the device and queue, the
//! compiled pipeline, and two slots of buffers (row parameters, hit buffer, readback staging)
//! with their bind groups, so one dispatch can run while the other is read back.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::kernel::{self, Row, HITS_HEADER_BYTES, HIT_BYTES, ROWS_BYTES};
use super::{GpuAdapter, GpuError, GpuOptions};
use crate::backend::BackendError;

/// How long one wait for the GPU may take before the device is treated as hung. Dispatches are
/// tuned to tens of milliseconds, so this is only ever reached by a broken driver.
const WAIT_LIMIT: Duration = Duration::from_secs(60);

/// Number of buffer sets: one in flight while the other is read back.
pub const SLOTS: usize = 2;

/// One set of per-dispatch buffers.
struct Slot {
    rows: wgpu::Buffer,
    hits: wgpu::Buffer,
    staging: wgpu::Buffer,
    bind_group: wgpu::BindGroup,
    /// Receives the result of the staging buffer's `map_async`.
    mapped: Option<mpsc::Receiver<Result<(), wgpu::BufferAsyncError>>>,
}

/// What one dispatch left in its hit buffer.
pub struct Readback {
    /// Hits the kernel counted; more than `records.len()` when the buffer overflowed.
    pub count: u32,
    /// (row, nonce) pairs, at most the buffer's capacity.
    pub records: Vec<(u32, u32)>,
}

pub struct Context {
    device: wgpu::Device,
    queue: wgpu::Queue,
    pipeline: wgpu::ComputePipeline,
    slots: Vec<Slot>,
    hit_capacity: u32,
    /// The device's `max_compute_workgroups_per_dimension`.
    max_groups: u32,
    /// Errors wgpu reports outside any error scope (validation, out of memory, device loss).
    errors: Arc<Mutex<Vec<String>>>,
}

impl Context {
    pub fn new(adapter: &GpuAdapter, options: &GpuOptions) -> Result<Self, GpuError> {
        let name = adapter.info.name.clone();
        let limits = adapter.adapter.limits();
        let max_groups = limits.max_compute_workgroups_per_dimension;
        let wg = options.workgroup_size;
        if wg == 0
            || wg > limits.max_compute_invocations_per_workgroup
            || wg > limits.max_compute_workgroup_size_x
        {
            return Err(GpuError::Settings(format!(
                "workgroup size {wg} is outside 1..={} on {name}",
                limits
                    .max_compute_invocations_per_workgroup
                    .min(limits.max_compute_workgroup_size_x)
            )));
        }
        // Rows run along y: a full dispatch needs MAX_ROWS workgroups there (WebGPU guarantees
        // 65,535 per dimension).
        if limits.max_compute_workgroups_per_dimension < kernel::MAX_ROWS as u32 {
            return Err(GpuError::Settings(format!(
                "{name} allows {} workgroups per dispatch dimension, the kernel needs {}",
                limits.max_compute_workgroups_per_dimension,
                kernel::MAX_ROWS
            )));
        }
        if ROWS_BYTES > limits.max_uniform_buffer_binding_size {
            return Err(GpuError::Settings(format!(
                "{name} allows uniform blocks of {} bytes, the kernel needs {ROWS_BYTES}",
                limits.max_uniform_buffer_binding_size
            )));
        }
        let hits_bytes = HITS_HEADER_BYTES + u64::from(options.hit_capacity) * HIT_BYTES;
        if hits_bytes > limits.max_storage_buffer_binding_size {
            return Err(GpuError::Settings(format!(
                "hit capacity {} is too large for {name}",
                options.hit_capacity
            )));
        }
        // A kernel this build does not carry is the user's to fix, before any device is opened.
        let kernel = kernel::lookup(options.kernel)?;
        let (device, queue) =
            pollster::block_on(adapter.adapter.request_device(&wgpu::DeviceDescriptor {
                label: Some("wgminer"),
                required_features: wgpu::Features::empty(),
                required_limits: limits,
                experimental_features: wgpu::ExperimentalFeatures::disabled(),
                memory_hints: wgpu::MemoryHints::Performance,
                trace: wgpu::Trace::Off,
            }))
            .map_err(|source| GpuError::RequestDevice {
                adapter: name.clone(),
                source,
            })?;

        let errors = Arc::new(Mutex::new(Vec::new()));
        {
            let errors = Arc::clone(&errors);
            device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
                tracing::error!("gpu error: {e}");
                if let Ok(mut v) = errors.lock() {
                    v.push(e.to_string());
                }
            }));
        }
        {
            let errors = Arc::clone(&errors);
            device.set_device_lost_callback(move |reason, message| {
                if let Ok(mut v) = errors.lock() {
                    v.push(format!("device lost ({reason:?}): {message}"));
                }
            });
        }

        let pipeline =
            build_pipeline(&device, kernel, options).map_err(|message| GpuError::Pipeline {
                adapter: name,
                message,
            })?;
        let layout = pipeline.get_bind_group_layout(0);
        let slots = (0..SLOTS)
            .map(|i| {
                let rows = device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some(&format!("rows{i}")),
                    size: ROWS_BYTES,
                    usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                });
                let hits = device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some(&format!("hits{i}")),
                    size: hits_bytes,
                    usage: wgpu::BufferUsages::STORAGE
                        | wgpu::BufferUsages::COPY_SRC
                        | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                });
                let staging = device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some(&format!("staging{i}")),
                    size: hits_bytes,
                    usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                });
                let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
                    label: Some(&format!("bind{i}")),
                    layout: &layout,
                    entries: &[
                        wgpu::BindGroupEntry {
                            binding: 0,
                            resource: rows.as_entire_binding(),
                        },
                        wgpu::BindGroupEntry {
                            binding: 1,
                            resource: hits.as_entire_binding(),
                        },
                    ],
                });
                Slot {
                    rows,
                    hits,
                    staging,
                    bind_group,
                    mapped: None,
                }
            })
            .collect();
        let ctx = Context {
            device,
            queue,
            pipeline,
            slots,
            hit_capacity: options.hit_capacity,
            max_groups,
            errors,
        };
        ctx.check_errors().map_err(|e| GpuError::Pipeline {
            adapter: adapter.info.name.clone(),
            message: e.to_string(),
        })?;
        Ok(ctx)
    }

    pub fn hit_capacity(&self) -> u32 {
        self.hit_capacity
    }

    /// Most workgroups one dispatch may run along any dimension.
    pub fn max_workgroups_per_dimension(&self) -> u32 {
        self.max_groups
    }

    /// Queue one dispatch on `slot`: write the rows, reset the hit counter, run `grid_x`
    /// workgroups along each row, copy the hits out, and ask for the copy to be mapped.
    pub fn submit(&mut self, slot: usize, rows: &[Row], grid_x: u32) -> wgpu::SubmissionIndex {
        let s = &mut self.slots[slot];
        debug_assert!(s.mapped.is_none(), "slot {slot} submitted twice");
        self.queue
            .write_buffer(&s.rows, 0, bytemuck::cast_slice(rows));
        let mut encoder = self
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("search"),
            });
        encoder.clear_buffer(&s.hits, 0, Some(HITS_HEADER_BYTES));
        {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("search"),
                timestamp_writes: None,
            });
            pass.set_pipeline(&self.pipeline);
            pass.set_bind_group(0, &s.bind_group, &[]);
            pass.dispatch_workgroups(grid_x, rows.len() as u32, 1);
        }
        encoder.copy_buffer_to_buffer(&s.hits, 0, &s.staging, 0, s.hits.size());
        let index = self.queue.submit([encoder.finish()]);
        let (tx, rx) = mpsc::channel();
        s.staging
            .slice(..)
            .map_async(wgpu::MapMode::Read, move |r| {
                // The receiver lives until the slot is read back; a failed send only means the
                // scan was abandoned.
                let _ = tx.send(r);
            });
        s.mapped = Some(rx);
        index
    }

    /// Wait for the dispatch on `slot` and read its hits.
    pub fn read(
        &mut self,
        slot: usize,
        index: wgpu::SubmissionIndex,
    ) -> Result<Readback, BackendError> {
        self.device
            .poll(wgpu::PollType::Wait {
                submission_index: Some(index),
                timeout: Some(WAIT_LIMIT),
            })
            .map_err(|e| BackendError::DeviceLost(format!("waiting for the GPU: {e}")))?;
        self.check_errors()?;
        let s = &mut self.slots[slot];
        let rx = s
            .mapped
            .take()
            .ok_or_else(|| BackendError::Other(format!("slot {slot} has no dispatch")))?;
        match rx.try_recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(BackendError::Other(format!("reading hits back: {e}"))),
            Err(_) => return Err(BackendError::Other("hit readback did not complete".into())),
        }
        let out = {
            let view = s
                .staging
                .slice(..)
                .get_mapped_range()
                .map_err(|e| BackendError::Other(format!("reading hits back: {e}")))?;
            let words: &[u32] = bytemuck::cast_slice(&view);
            let count = words[0];
            let stored = count.min(self.hit_capacity) as usize;
            let base = (HITS_HEADER_BYTES / 4) as usize;
            let records = words[base..base + 2 * stored]
                .chunks_exact(2)
                .map(|p| (p[0], p[1]))
                .collect();
            Readback { count, records }
        };
        s.staging.unmap();
        Ok(out)
    }

    /// Turn errors wgpu reported asynchronously into a scan error.
    fn check_errors(&self) -> Result<(), BackendError> {
        let errors = self
            .errors
            .lock()
            .map(|mut v| std::mem::take(&mut *v))
            .unwrap_or_default();
        match errors.first() {
            None => Ok(()),
            Some(e) if e.starts_with("device lost") => Err(BackendError::DeviceLost(e.clone())),
            Some(e) => Err(BackendError::Other(format!("gpu error: {e}"))),
        }
    }

    /// Wait for everything queued and release any mapping left by an abandoned scan, so the
    /// slots can be used again.
    pub fn reset(&mut self) {
        let _ = self.device.poll(wgpu::PollType::Wait {
            submission_index: None,
            timeout: Some(WAIT_LIMIT),
        });
        for s in &mut self.slots {
            if let Some(rx) = s.mapped.take() {
                if matches!(rx.try_recv(), Ok(Ok(()))) {
                    s.staging.unmap();
                }
            }
        }
    }
}

/// Compile the kernel's entry point for `options.kernel` with the workgroup size and nonces per invocation as pipeline constants.
/// Shader errors are caught in error scopes and returned, not left to wgpu's default handler
/// (which panics).
fn build_pipeline(
    device: &wgpu::Device,
    kernel: &kernel::KernelEntry,
    options: &GpuOptions,
) -> Result<wgpu::ComputePipeline, String> {
    let internal = device.push_error_scope(wgpu::ErrorFilter::Internal);
    let validation = device.push_error_scope(wgpu::ErrorFilter::Validation);
    let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some("sha256d"),
        source: wgpu::ShaderSource::Wgsl(kernel.source.into()),
    });
    let constants = [
        ("WG", f64::from(options.workgroup_size)),
        ("NPT", f64::from(options.nonces_per_thread)),
    ];
    let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
        label: Some("sha256d"),
        layout: None,
        module: &module,
        entry_point: Some(kernel.entry_point),
        compilation_options: wgpu::PipelineCompilationOptions {
            constants: &constants,
            // The kernel has no workgroup memory.
            zero_initialize_workgroup_memory: false,
        },
        cache: None,
    });
    let validation = pollster::block_on(validation.pop());
    let internal = pollster::block_on(internal.pop());
    match validation.or(internal) {
        Some(e) => Err(e.to_string()),
        None => Ok(pipeline),
    }
}
