//! Turning `--backend`, `--device` and `--allow-software` into the list of devices to run: one
//! numbering for everything (`wgminer devices`: 0 is the CPU, GPU adapters count from 1), and a
//! one-line usage error that lists what exists when a selector matches nothing.

use wgminer::backend::gpu::{self, GpuAdapter};
use wgminer::backend::{CpuBackend, DeviceInfo};

use crate::cli::{BackendChoice, DeviceArgs};

/// Bad input: main exits with code 2 and prints the message.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// A device to run.
#[derive(Clone, Debug)]
pub enum Device {
    Cpu,
    Gpu(Box<GpuAdapter>),
}

/// Everything the machine has, as `wgminer devices` lists it.
pub struct Inventory {
    pub cpu: DeviceInfo,
    pub gpus: Vec<GpuAdapter>,
}

/// What plain mining uses when no backend or device is named: every real GPU, or the CPU when
/// there is none (a software adapter would only compete with the CPU backend for its cores).
pub fn default_backend(gpus: &[wgminer::backend::gpu::GpuAdapter]) -> crate::cli::BackendChoice {
    if gpus.iter().any(|g| !g.is_software()) {
        crate::cli::BackendChoice::Gpu
    } else {
        crate::cli::BackendChoice::Cpu
    }
}

impl Inventory {
    /// The CPU and every GPU adapter (this loads the Vulkan/Metal/DX12 drivers).
    pub fn scan() -> anyhow::Result<Self> {
        let mut inventory = Self::cpu()?;
        inventory.gpus = gpu::enumerate();
        Ok(inventory)
    }

    /// The CPU alone, without touching wgpu: for runs that can only select the CPU.
    pub fn cpu() -> anyhow::Result<Self> {
        let cpu = CpuBackend::new(None, None)?.device_info();
        Ok(Inventory {
            cpu,
            gpus: Vec::new(),
        })
    }

    /// Whether `select` can only ever pick the CPU, whatever GPUs exist: `--backend cpu` (or
    /// no backend) with no `--device`, or only `--device 0`. Such runs need no GPU inventory.
    /// (`--device cpu` is a name substring that may also match a GPU, so it still looks.)
    pub fn cpu_only(backend: Option<BackendChoice>, args: &DeviceArgs) -> bool {
        matches!(backend, None | Some(BackendChoice::Cpu))
            && args
                .devices
                .iter()
                .all(|sel| sel.trim().parse::<usize>() == Ok(0))
    }

    /// "0 cpu Intel Xeon …; 1 gpu llvmpipe … (vulkan)" for error messages.
    pub fn describe(&self) -> String {
        let mut parts = vec![format!("0 cpu {}", self.cpu.name)];
        parts.extend(self.gpus.iter().map(|g| {
            format!(
                "{} gpu {} ({})",
                g.index,
                g.info.name,
                g.info.backend.to_str()
            )
        }));
        parts.join("; ")
    }

    /// The devices to run for a backend choice and device selectors.
    pub fn select(
        &self,
        backend: Option<BackendChoice>,
        args: &DeviceArgs,
    ) -> Result<Vec<Device>, UsageError> {
        if args.devices.is_empty() {
            let mut out = Vec::new();
            let choice = backend.unwrap_or(BackendChoice::Cpu);
            if matches!(choice, BackendChoice::Cpu | BackendChoice::All) {
                out.push(Device::Cpu);
            }
            if matches!(choice, BackendChoice::Gpu | BackendChoice::All) {
                let gpus = gpu::default_selection(&self.gpus, args.allow_software);
                if gpus.is_empty() && choice == BackendChoice::Gpu {
                    return Err(UsageError(format!(
                        "{} (devices: {})",
                        gpu::GpuError::NoAdapter,
                        self.describe()
                    )));
                }
                out.extend(gpus.into_iter().map(|g| Device::Gpu(Box::new(g))));
            }
            return Ok(out);
        }
        let mut chosen: Vec<usize> = Vec::new();
        for sel in &args.devices {
            let matched = self.matching(sel);
            if matched.is_empty() {
                return Err(UsageError(format!(
                    "no device matches '{sel}' (devices: {})",
                    self.describe()
                )));
            }
            for i in matched {
                if !chosen.contains(&i) {
                    chosen.push(i);
                }
            }
        }
        chosen.sort_unstable();
        let devices: Vec<Device> = chosen
            .into_iter()
            .map(|i| match i {
                0 => Device::Cpu,
                i => Device::Gpu(Box::new(self.gpus[i - 1].clone())),
            })
            .collect();
        let wrong_kind = devices.iter().find(|d| {
            matches!(
                (backend, d),
                (Some(BackendChoice::Cpu), Device::Gpu(_))
                    | (Some(BackendChoice::Gpu), Device::Cpu)
            )
        });
        if let Some(d) = wrong_kind {
            let what = match d {
                Device::Cpu => "the CPU (device 0)".to_string(),
                Device::Gpu(g) => format!("GPU {} ({})", g.index, g.info.name),
            };
            return Err(UsageError(format!(
                "--device selects {what}, which --backend {} excludes",
                backend_name(backend)
            )));
        }
        Ok(devices)
    }

    /// Device indices a selector names: an index, or a case-insensitive name substring.
    fn matching(&self, sel: &str) -> Vec<usize> {
        if let Ok(i) = sel.trim().parse::<usize>() {
            return if i <= self.gpus.len() {
                vec![i]
            } else {
                Vec::new()
            };
        }
        let needle = sel.trim().to_lowercase();
        if needle.is_empty() {
            return Vec::new();
        }
        let mut out = Vec::new();
        if needle == "cpu" || self.cpu.name.to_lowercase().contains(&needle) {
            out.push(0);
        }
        out.extend(
            self.gpus
                .iter()
                .filter(|g| g.info.name.to_lowercase().contains(&needle))
                .map(|g| g.index),
        );
        out
    }
}

fn backend_name(b: Option<BackendChoice>) -> &'static str {
    match b {
        Some(BackendChoice::Cpu) | None => "cpu",
        Some(BackendChoice::Gpu) => "gpu",
        Some(BackendChoice::All) => "all",
    }
}
