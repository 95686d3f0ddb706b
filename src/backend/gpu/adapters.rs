//! Finding GPUs: every adapter wgpu can see (Vulkan, Metal, DX12, GL), what each one is, and
//! which of them mine by default.

use crate::backend::DeviceInfo;

/// One adapter as enumerated, with the index `wgminer devices` shows for it.
#[derive(Clone, Debug)]
pub struct GpuAdapter {
    /// The device index `wgminer devices` prints and `--device` takes. Index 0 is the CPU, so
    /// adapters count from 1 in enumeration order.
    pub index: usize,
    pub adapter: wgpu::Adapter,
    pub info: wgpu::AdapterInfo,
}

/// What `wgminer devices` shows for an adapter.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct AdapterSummary {
    pub index: usize,
    pub name: String,
    /// Graphics API: vulkan, metal, dx12, gl.
    pub backend: String,
    /// discrete, integrated, virtual, cpu (a software rasteriser such as llvmpipe) or other.
    pub device_type: String,
    pub driver: String,
    pub driver_info: String,
    /// A software adapter: runs on the CPU, skipped by default when a real GPU exists.
    pub software: bool,
}

impl GpuAdapter {
    /// Software adapters (llvmpipe/lavapipe, WARP, SwiftShader) report device type Cpu.
    pub fn is_software(&self) -> bool {
        self.info.device_type == wgpu::DeviceType::Cpu
    }

    /// Vulkan, Metal and DX12 are the first-class APIs; GL is the fallback.
    fn is_primary_api(&self) -> bool {
        wgpu::Backends::PRIMARY.contains(self.info.backend.into())
    }

    /// Short label for logs and tables: `gpu1`, `gpu2`, ... (the device index).
    pub fn label(&self) -> String {
        format!("gpu{}", self.index)
    }

    pub fn summary(&self) -> AdapterSummary {
        let device_type = match self.info.device_type {
            wgpu::DeviceType::DiscreteGpu => "discrete",
            wgpu::DeviceType::IntegratedGpu => "integrated",
            wgpu::DeviceType::VirtualGpu => "virtual",
            wgpu::DeviceType::Cpu => "cpu",
            wgpu::DeviceType::Other => "other",
        };
        AdapterSummary {
            index: self.index,
            name: self.info.name.clone(),
            backend: self.info.backend.to_str().to_string(),
            device_type: device_type.to_string(),
            driver: self.info.driver.clone(),
            driver_info: self.info.driver_info.clone(),
            software: self.is_software(),
        }
    }

    /// The adapter in the crate-wide device list.
    pub fn device_info(&self) -> DeviceInfo {
        let s = self.summary();
        DeviceInfo {
            index: self.index,
            kind: "gpu".into(),
            name: s.name,
            detail: [s.backend, s.device_type, s.driver, s.driver_info]
                .into_iter()
                .filter(|p| !p.is_empty())
                .collect::<Vec<_>>()
                .join(", "),
        }
    }
}

/// Every adapter on the first-class APIs (Vulkan, Metal, DX12), in enumeration order; GL only
/// when those have none (probing GL is noisy and only duplicates what Vulkan shows). The
/// `WGPU_BACKEND` variable (e.g. `vulkan,gl`) overrides the choice of APIs.
pub fn enumerate() -> Vec<GpuAdapter> {
    let found = match wgpu::Backends::from_env() {
        Some(backends) => enumerate_on(backends),
        None => {
            let primary = enumerate_on(wgpu::Backends::PRIMARY);
            if primary.is_empty() {
                enumerate_on(wgpu::Backends::SECONDARY)
            } else {
                primary
            }
        }
    };
    found
        .into_iter()
        .enumerate()
        .map(|(i, adapter)| {
            let info = adapter.get_info();
            GpuAdapter {
                index: i + 1,
                adapter,
                info,
            }
        })
        .collect()
}

fn enumerate_on(backends: wgpu::Backends) -> Vec<wgpu::Adapter> {
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
    desc.backends = backends;
    let instance = wgpu::Instance::new(desc);
    pollster::block_on(instance.enumerate_adapters(backends))
}

/// The adapters that mine when none is named: on a first-class API when there is one (the same
/// GPU through GL would be counted twice), and software adapters only when `allow_software` is
/// set or no hardware adapter exists at all.
pub fn default_selection(all: &[GpuAdapter], allow_software: bool) -> Vec<GpuAdapter> {
    let any_primary = all.iter().any(GpuAdapter::is_primary_api);
    let api_ok: Vec<&GpuAdapter> = all
        .iter()
        .filter(|a| a.is_primary_api() || !any_primary)
        .collect();
    let any_hardware = api_ok.iter().any(|a| !a.is_software());
    api_ok
        .into_iter()
        .filter(|a| allow_software || !any_hardware || !a.is_software())
        .cloned()
        .collect()
}
