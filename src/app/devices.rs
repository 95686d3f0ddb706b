//! The one place that opens devices: the inventory (one numbering for everything, as
//! `wgminer devices` prints it: 0 is the CPU, GPU adapters count from 1), the selection by
//! `--backend`/`--device`/`--allow-software`, and building a backend for each device chosen.
//! A new backend gets a [`Device`] variant here (and a `BackendChoice` in the CLI).

use anyhow::Context as _;
use wgminer::backend::gpu::{self, GpuAdapter, GpuBackend, GpuOptions, GpuTuning, KernelShape};
use wgminer::backend::{Backend, CpuBackend, DeviceInfo};
use wgminer::pow::ScanPath;
use wgminer::telemetry::sensors::{PciAddress, WatchedGpu};

use crate::app::cli::BackendChoice;
use crate::app::error::UsageError;

/// Which devices a run asks for and how to set them up: flags and config file merged, not yet
/// checked against the machine (that needs the inventory).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DeviceRequest {
    /// `--backend`; None: every real GPU, or the CPU when there is none (mining), the CPU (bench).
    pub backend: Option<BackendChoice>,
    /// `--device` selectors: an index or a case-insensitive name substring.
    pub selectors: Vec<String>,
    /// `--allow-software`: software GPU adapters join the default GPU set.
    pub allow_software: bool,
    pub cpu: CpuSettings,
    pub gpu: GpuSettings,
}

/// CPU backend settings (None: the backend's default).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CpuSettings {
    pub threads: Option<u32>,
    pub path: Option<ScanPath>,
}

/// GPU launch settings (None: the adapter's default, see [`GpuSettings::options_for`]).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GpuSettings {
    pub kernel: Option<KernelShape>,
    pub workgroup_size: Option<u32>,
    pub nonces_per_thread: Option<u32>,
}

impl CpuSettings {
    /// The CPU backend these settings ask for.
    pub fn backend(&self) -> Result<CpuBackend, wgminer::backend::cpu::CpuBackendError> {
        CpuBackend::new(self.threads.map(|t| t as usize), self.path)
    }
}

impl GpuSettings {
    /// The adapter's default GPU options (the kernel measured fastest on its vendor), with
    /// whatever these settings override.
    pub fn options_for(&self, adapter: &GpuAdapter) -> GpuOptions {
        let defaults = GpuOptions::for_adapter(adapter);
        GpuOptions {
            kernel: self.kernel.unwrap_or(defaults.kernel),
            workgroup_size: self.workgroup_size.unwrap_or(defaults.workgroup_size),
            nonces_per_thread: self.nonces_per_thread.unwrap_or(defaults.nonces_per_thread),
            ..defaults
        }
    }
}

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
pub fn default_backend(gpus: &[GpuAdapter]) -> BackendChoice {
    if gpus.iter().any(|g| !g.is_software()) {
        BackendChoice::Gpu
    } else {
        BackendChoice::Cpu
    }
}

impl Device {
    pub fn is_gpu(&self) -> bool {
        matches!(self, Device::Gpu(_))
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
    pub fn cpu_only(request: &DeviceRequest) -> bool {
        matches!(request.backend, None | Some(BackendChoice::Cpu))
            && request
                .selectors
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
    pub fn select(&self, request: &DeviceRequest) -> Result<Vec<Device>, UsageError> {
        let backend = request.backend;
        if request.selectors.is_empty() {
            let mut out = Vec::new();
            let choice = backend.unwrap_or(BackendChoice::Cpu);
            if matches!(choice, BackendChoice::Cpu | BackendChoice::All) {
                out.push(Device::Cpu);
            }
            if matches!(choice, BackendChoice::Gpu | BackendChoice::All) {
                let gpus = gpu::default_selection(&self.gpus, request.allow_software);
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
        for sel in &request.selectors {
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

/// An opened device, one variant per kind of backend (a closed enum, as ripgrep dispatches
/// its engines): mining and `bench` use it without matching on the kind themselves.
pub enum AnyBackend {
    Cpu(CpuBackend),
    Gpu(Box<GpuBackend>),
}

impl AnyBackend {
    /// Build the backend for `device` with the request's settings.
    pub fn open(device: &Device, request: &DeviceRequest) -> anyhow::Result<Self> {
        Ok(match device {
            Device::Cpu => AnyBackend::Cpu(request.cpu.backend()?),
            Device::Gpu(adapter) => AnyBackend::Gpu(Box::new(open_gpu(adapter, &request.gpu)?)),
        })
    }

    pub fn backend_mut(&mut self) -> &mut dyn Backend {
        match self {
            AnyBackend::Cpu(b) => b,
            AnyBackend::Gpu(b) => b.as_mut(),
        }
    }

    pub fn into_backend(self) -> Box<dyn Backend> {
        match self {
            AnyBackend::Cpu(b) => Box::new(b),
            AnyBackend::Gpu(b) => b,
        }
    }

    /// "cpu" or "gpu", as `wgminer devices` and `bench --json` say it.
    pub fn kind(&self) -> &'static str {
        match self {
            AnyBackend::Cpu(_) => "cpu",
            AnyBackend::Gpu(_) => "gpu",
        }
    }

    /// The device's name (CPU model, GPU adapter).
    pub fn name(&self) -> String {
        match self {
            AnyBackend::Cpu(b) => b.device_info().name,
            AnyBackend::Gpu(b) => b.adapter().name.clone(),
        }
    }

    /// How it is set up: threads and hashing path, or graphics API and device type.
    pub fn detail(&self) -> String {
        match self {
            AnyBackend::Cpu(b) => format!("{} threads, {} path", b.threads(), b.path()),
            AnyBackend::Gpu(b) => {
                let s = b.adapter();
                format!("{}, {}", s.backend, s.device_type)
            }
        }
    }

    /// A GPU's launch shape (read after a run: the dispatch size is tuned while it runs).
    pub fn tuning(&self) -> Option<GpuTuning> {
        match self {
            AnyBackend::Cpu(_) => None,
            AnyBackend::Gpu(b) => Some(b.tuning()),
        }
    }
}

/// Open the devices a mining run asks for and build one backend each. With no backend and no
/// device named, plain mining uses [`default_backend`].
pub fn mining_backends(request: &DeviceRequest) -> anyhow::Result<Vec<Box<dyn Backend>>> {
    open_for_mining(request).map(|(backends, _)| backends)
}

/// Backends opened for mining, and the GPUs among them with their PCI address (their sensors).
pub type Opened = (Vec<Box<dyn Backend>>, Vec<WatchedGpu>);

/// [`mining_backends`], and the GPUs among them to watch.
pub fn open_for_mining(request: &DeviceRequest) -> anyhow::Result<Opened> {
    let (inventory, backend) = if request.backend.is_none() && request.selectors.is_empty() {
        let inventory = Inventory::scan()?;
        let choice = default_backend(&inventory.gpus);
        (inventory, Some(choice))
    } else if Inventory::cpu_only(request) {
        (Inventory::cpu()?, request.backend)
    } else {
        (Inventory::scan()?, request.backend)
    };
    let request = DeviceRequest {
        backend,
        ..request.clone()
    };
    let devices = inventory.select(&request)?;
    let gpus = devices
        .iter()
        .filter_map(|d| match d {
            Device::Gpu(a) => Some(WatchedGpu {
                index: a.index,
                label: a.label(),
                pci: PciAddress::parse(&a.info.device_pci_bus_id)?,
            }),
            Device::Cpu => None,
        })
        .collect();
    let backends = devices
        .iter()
        .map(|d| AnyBackend::open(d, &request).map(AnyBackend::into_backend))
        .collect::<anyhow::Result<_>>()?;
    Ok((backends, gpus))
}

/// The adapters plain `wgminer` mines on (as [`mining_backends`] chooses them): every real GPU
/// in the default selection, none when there is no real GPU (the CPU mines then).
pub fn mining_default_gpus(gpus: &[GpuAdapter]) -> Vec<usize> {
    if default_backend(gpus) == BackendChoice::Cpu {
        return Vec::new();
    }
    gpu::default_selection(gpus, false)
        .iter()
        .map(|g| g.index)
        .collect()
}

/// Why the adapter does not open with its default settings, if it does not (`doctor`'s test
/// that the driver really works).
pub fn gpu_open_error(adapter: &GpuAdapter) -> Option<String> {
    GpuBackend::new(adapter, GpuOptions::for_adapter(adapter))
        .err()
        .map(|e| crate::app::error::error_text(&anyhow::Error::new(e)))
}

/// The GPU backend for one adapter, the error naming the device.
fn open_gpu(adapter: &GpuAdapter, settings: &GpuSettings) -> anyhow::Result<GpuBackend> {
    GpuBackend::new(adapter, settings.options_for(adapter))
        .with_context(|| format!("GPU {}", adapter.index))
}

fn backend_name(b: Option<BackendChoice>) -> &'static str {
    match b {
        Some(BackendChoice::Cpu) | None => "cpu",
        Some(BackendChoice::Gpu) => "gpu",
        Some(BackendChoice::All) => "all",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A machine with a CPU and no GPU adapter (GPU adapters need a driver to exist).
    fn cpu_only_machine() -> Inventory {
        Inventory {
            cpu: DeviceInfo {
                index: 0,
                kind: "cpu".into(),
                name: "Test CPU 9000".into(),
                detail: String::new(),
            },
            gpus: Vec::new(),
        }
    }

    fn request(backend: Option<BackendChoice>, selectors: &[&str]) -> DeviceRequest {
        DeviceRequest {
            backend,
            selectors: selectors.iter().map(|s| s.to_string()).collect(),
            ..DeviceRequest::default()
        }
    }

    #[test]
    fn the_cpu_is_found_by_index_name_and_default() {
        let machine = cpu_only_machine();
        for sel in [&[][..], &["0"], &["cpu"], &["test CPU 9"]] {
            let devices = machine.select(&request(None, sel)).unwrap();
            assert!(matches!(devices[..], [Device::Cpu]), "{sel:?}");
        }
    }

    #[test]
    fn selectors_that_match_nothing_list_what_exists() {
        let machine = cpu_only_machine();
        let e = machine.select(&request(None, &["3"])).unwrap_err();
        assert!(e.0.contains("no device matches '3'"), "{e}");
        assert!(e.0.contains("0 cpu Test CPU 9000"), "{e}");
        let e = machine.select(&request(None, &["  "])).unwrap_err();
        assert!(e.0.contains("no device matches"), "{e}");
    }

    #[test]
    fn backend_and_device_must_agree() {
        let machine = cpu_only_machine();
        let e = machine
            .select(&request(Some(BackendChoice::Gpu), &["0"]))
            .unwrap_err();
        assert!(e.0.contains("--backend gpu excludes"), "{e}");
        let e = machine
            .select(&request(Some(BackendChoice::Gpu), &[]))
            .unwrap_err();
        assert!(e.0.contains("devices: 0 cpu"), "{e}");
        let all = machine
            .select(&request(Some(BackendChoice::All), &[]))
            .unwrap();
        assert!(matches!(all[..], [Device::Cpu]));
    }

    #[test]
    fn only_cpu_runs_skip_the_gpu_inventory() {
        assert!(Inventory::cpu_only(&request(None, &[])));
        assert!(Inventory::cpu_only(&request(
            Some(BackendChoice::Cpu),
            &["0"]
        )));
        assert!(!Inventory::cpu_only(&request(None, &["cpu"])));
        assert!(!Inventory::cpu_only(&request(
            Some(BackendChoice::All),
            &[]
        )));
    }
}
