//! What the doctor's probes found about the machine: plain data, no judgement. [`gather`]
//! fills it in; [`findings`] judges it.
//!
//! [`gather`]: super::gather
//! [`findings`]: super::findings

use serde::Serialize;

/// Everything the doctor found out about the machine.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Facts {
    /// Whether the Linux checks (loader, ICDs, NVIDIA driver) were made; other systems reach
    /// their GPUs through Metal or DX12 and only get the adapter list.
    pub linux: bool,
    pub loader: LoaderFinding,
    pub icd_search: IcdSearch,
    /// Every ICD manifest the Vulkan loader would read, in its order.
    pub icds: Vec<IcdFinding>,
    pub nvidia: NvidiaFinding,
    /// `WGPU_BACKEND` when set: it limits the graphics APIs wgpu searches.
    pub wgpu_backend: Option<String>,
    /// The CPU, which mines when no GPU does.
    pub cpu: String,
    /// What wgpu enumerates, numbered as `wgminer devices` numbers it.
    pub adapters: Vec<AdapterFinding>,
}

/// The Vulkan loader, `libvulkan.so.1`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LoaderFinding {
    /// Where it was found; None: nowhere.
    pub path: Option<String>,
    /// Where it was looked for: LD_LIBRARY_PATH, the ld.so cache, the usual directories.
    pub searched: Vec<String>,
}

/// Where the loader reads ICD manifests from.
#[derive(Debug, Clone, Default, Serialize)]
pub struct IcdSearch {
    /// `VK_DRIVER_FILES`, else `VK_ICD_FILENAMES`, when set: then only the files and
    /// directories it names are read. None: the standard directories.
    pub variable: Option<String>,
    /// That variable's value.
    pub value: Option<String>,
    /// `VK_ADD_DRIVER_FILES`: manifests read in addition.
    pub added: Option<String>,
    /// `VK_ICD_FILENAMES` when `VK_DRIVER_FILES` is also set, which overrides it.
    pub ignored: Option<String>,
    /// The files and directories read, in order (directories that do not exist are skipped).
    pub locations: Vec<String>,
    /// Entries of those variables that do not exist.
    pub missing: Vec<String>,
}

/// One ICD manifest (a Vulkan driver's JSON file).
#[derive(Debug, Clone, Default, Serialize)]
pub struct IcdFinding {
    pub path: String,
    /// The driver library the manifest names.
    pub library_path: Option<String>,
    /// The file `library_path` resolves to; None: not found.
    pub library_found: Option<String>,
    pub api_version: Option<String>,
    /// nvidia, software (lavapipe/llvmpipe, SwiftShader: runs on the CPU) or other.
    pub kind: IcdKind,
    /// Why the manifest could not be read or parsed.
    pub error: Option<String>,
}

/// What kind of Vulkan driver an ICD manifest is for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum IcdKind {
    Nvidia,
    Software,
    #[default]
    Other,
}

/// The NVIDIA driver, as far as it can be seen without Vulkan.
#[derive(Debug, Clone, Default, Serialize)]
pub struct NvidiaFinding {
    /// The kernel module's version, from /proc/driver/nvidia/version.
    pub kernel_module: Option<String>,
    /// `nvidia-smi` on PATH.
    pub nvidia_smi: Option<String>,
    /// The GPUs `nvidia-smi` lists ("name, driver version").
    pub smi_gpus: Vec<String>,
    /// Why `nvidia-smi` gave no list.
    pub smi_error: Option<String>,
    /// /dev/nvidia0, /dev/nvidia1, …
    pub device_nodes: Vec<String>,
    /// Running in a container (/.dockerenv, /run/.containerenv or Kubernetes).
    pub in_container: bool,
    /// `NVIDIA_DRIVER_CAPABILITIES` (the NVIDIA container toolkit mounts the Vulkan driver only
    /// with `graphics` or `all`).
    pub driver_capabilities: Option<String>,
}

impl NvidiaFinding {
    /// Whether any sign of an NVIDIA driver exists.
    pub fn present(&self) -> bool {
        self.kernel_module.is_some() || self.nvidia_smi.is_some() || !self.device_nodes.is_empty()
    }

    /// The driver version, from the kernel module or else from `nvidia-smi`.
    pub fn version(&self) -> Option<String> {
        self.kernel_module.clone().or_else(|| {
            self.smi_gpus
                .first()
                .and_then(|l| l.rsplit(',').next())
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        })
    }
}

/// One adapter wgpu enumerates.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AdapterFinding {
    /// As `wgminer devices` and `--device` number it (0 is the CPU).
    pub index: usize,
    pub name: String,
    /// vulkan, metal, dx12 or gl.
    pub backend: String,
    /// discrete, integrated, virtual, cpu (software) or other.
    pub device_type: String,
    pub vendor: u32,
    pub driver: String,
    pub driver_info: String,
    /// A software adapter (llvmpipe/lavapipe): runs on the CPU.
    pub software: bool,
    /// On Vulkan, Metal or DX12 (GL is only the fallback).
    pub primary_api: bool,
    /// Plain `wgminer` mines on it.
    pub used_by_default: bool,
    /// Why opening it failed (tried for the real GPUs that mine by default).
    pub open_error: Option<String>,
    /// Why it is or is not used, in words.
    pub note: String,
}
