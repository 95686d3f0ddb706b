//! `wgminer doctor`: why this machine can (or cannot) mine on its GPU, and what to fix.
//!
//! The usual failure on a rented NVIDIA machine: `nvidia-smi` works but wgpu sees no Vulkan
//! adapter, because the Vulkan loader (`libvulkan.so.1`) is missing, or NVIDIA's ICD manifest
//! (`nvidia_icd.json`) is, or the container was started without the `graphics` driver capability
//! (the one that mounts NVIDIA's Vulkan library, `libGLX_nvidia.so.0`). The command gathers
//! [`Findings`] (files, environment, `nvidia-smi`, wgpu's adapter list: the only I/O here),
//! decides a [`Verdict`] from them with pure functions, and prints both as text or one JSON
//! object. It exits 0 whenever the report could be made; `--strict` exits 1 when no real GPU
//! is usable.

use std::collections::HashSet;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::Serialize;
use wgminer::backend::gpu::{self, GpuAdapter, GpuBackend, GpuOptions};

use crate::cli::DoctorArgs;
use crate::select::Inventory;

/// The Vulkan loader's soname: what wgpu (through ash) opens.
const LOADER: &str = "libvulkan.so.1";
/// NVIDIA's ICD manifest as the driver installs it; containers with the `graphics` capability
/// get the library it names mounted, not always the manifest.
pub const NVIDIA_ICD_JSON: &str = r#"{"file_format_version":"1.0.0","ICD":{"library_path":"libGLX_nvidia.so.0","api_version":"1.3"}}"#;
/// PCI vendor id of NVIDIA, as wgpu reports it.
const VENDOR_NVIDIA: u32 = 0x10de;

// ------------------------------------------------------------------------------------------
// Findings: plain data, gathered by `gather` and judged by `verdict`.
// ------------------------------------------------------------------------------------------

/// Everything the doctor found out about the machine.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Findings {
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

/// The doctor's conclusion.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Verdict {
    /// At least one real GPU mines by default.
    pub ready: bool,
    pub usable_gpus: usize,
    /// "ready: N GPU(s) usable (…)" or "CPU only: <reason>, to use the GPU: <fix>".
    pub line: String,
    pub reason: Option<String>,
    pub fix: Option<String>,
    /// Things worth knowing even when the GPU works.
    pub warnings: Vec<String>,
}

// ------------------------------------------------------------------------------------------
// Pure helpers.
// ------------------------------------------------------------------------------------------

/// The fields of an ICD manifest the doctor reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IcdManifest {
    pub file_format_version: Option<String>,
    pub library_path: String,
    pub api_version: Option<String>,
    /// "32" or "64" where the manifest says (file format 1.0.1).
    pub library_arch: Option<String>,
}

/// Parse an ICD manifest: `{"file_format_version": …, "ICD": {"library_path": …,
/// "api_version": …}}`.
pub fn parse_icd(text: &str) -> Result<IcdManifest, String> {
    let v: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))?;
    let icd = v
        .get("ICD")
        .filter(|i| i.is_object())
        .ok_or("no \"ICD\" object")?;
    let library_path = icd
        .get("library_path")
        .and_then(|p| p.as_str())
        .filter(|p| !p.trim().is_empty())
        .ok_or("no \"ICD\".\"library_path\"")?
        .to_string();
    let text_field =
        |o: &serde_json::Value, k: &str| o.get(k).and_then(|x| x.as_str()).map(String::from);
    Ok(IcdManifest {
        file_format_version: text_field(&v, "file_format_version"),
        library_path,
        api_version: text_field(icd, "api_version"),
        library_arch: text_field(icd, "library_arch"),
    })
}

/// What kind of driver a manifest is for, from its file name and library.
pub fn icd_kind(manifest_path: &str, library_path: Option<&str>) -> IcdKind {
    let file = Path::new(manifest_path)
        .file_name()
        .map(|f| f.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    let lib = library_path.unwrap_or("").to_lowercase();
    let has = |needle: &str| file.contains(needle) || lib.contains(needle);
    if has("nvidia") {
        IcdKind::Nvidia
    } else if ["lvp", "lavapipe", "llvmpipe", "swiftshader", "swrast"]
        .iter()
        .any(|n| has(n))
    {
        IcdKind::Software
    } else {
        IcdKind::Other
    }
}

/// How a manifest's `library_path` is found: a bare name goes through the dynamic linker's
/// search; a path with a slash is taken as is, relative ones from the manifest's directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LibraryRef {
    Name(String),
    File(PathBuf),
}

pub fn library_ref(manifest_path: &Path, library_path: &str) -> LibraryRef {
    if !library_path.contains('/') {
        return LibraryRef::Name(library_path.to_string());
    }
    let p = Path::new(library_path);
    if p.is_absolute() {
        LibraryRef::File(p.to_path_buf())
    } else {
        let dir = manifest_path.parent().unwrap_or(Path::new("/"));
        LibraryRef::File(dir.join(p))
    }
}

/// A colon-separated list of paths, empty entries dropped.
pub fn split_path_list(value: &str) -> Vec<PathBuf> {
    value
        .split(':')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(PathBuf::from)
        .collect()
}

/// `ldconfig -p` lines (`\tlibvulkan.so.1 (libc6,x86-64) => /lib/x86_64-linux-gnu/libvulkan.so.1`)
/// as (soname, path), keeping only libraries for `arch_tag` (e.g. "x86-64"; None keeps all).
pub fn parse_ldconfig(text: &str, arch_tag: Option<&str>) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|line| {
            let (left, path) = line.trim().split_once(" => ")?;
            let (name, flags) = left.split_once(" (")?;
            if let Some(tag) = arch_tag {
                if !flags.contains(tag) {
                    return None;
                }
            }
            Some((name.trim().to_string(), path.trim().to_string()))
        })
        .collect()
}

/// The ld.so cache's architecture tag for this build's target.
fn ldconfig_arch_tag() -> Option<&'static str> {
    match std::env::consts::ARCH {
        "x86_64" => Some("x86-64"),
        "aarch64" => Some("AArch64"),
        _ => None,
    }
}

/// The driver version in /proc/driver/nvidia/version's first line ("NVRM version: NVIDIA UNIX
/// x86_64 Kernel Module  535.129.03  Thu Oct 19 …").
pub fn parse_nvidia_version(text: &str) -> Option<String> {
    let line = text.lines().next()?;
    let rest = line
        .split_once("Kernel Module")
        .map(|(_, r)| r)
        .unwrap_or(line);
    rest.split_whitespace()
        .find(|t| {
            t.contains('.')
                && t.chars().all(|c| c.is_ascii_digit() || c == '.')
                && t.starts_with(|c: char| c.is_ascii_digit())
        })
        .map(String::from)
}

/// Whether `NVIDIA_DRIVER_CAPABILITIES` asks for the Vulkan driver (`graphics` or `all`).
/// Unset means the toolkit's default, compute and utility: no Vulkan.
pub fn capabilities_include_graphics(value: Option<&str>) -> bool {
    value.is_some_and(|v| {
        v.split(',')
            .map(|c| c.trim().to_lowercase())
            .any(|c| c == "graphics" || c == "all")
    })
}

/// Whether a `WGPU_BACKEND` value lets wgpu search Vulkan.
fn backend_var_allows_vulkan(value: &str) -> bool {
    wgpu::Backends::from_comma_list(value).contains(wgpu::Backends::VULKAN)
}

/// Why an adapter is or is not used by plain `wgminer`.
pub fn adapter_note(a: &AdapterFinding, any_real_gpu: bool, any_primary: bool) -> String {
    if let Some(e) = &a.open_error {
        return format!("NOT usable: opening it failed: {e}");
    }
    if a.used_by_default {
        return if a.software {
            "mines by default (a software adapter, chosen because no GPU adapter is on a first-class API)"
                .into()
        } else {
            "mines by default".into()
        };
    }
    if !a.primary_api && any_primary {
        return "not used: a GL adapter, and wgminer uses the Vulkan/Metal/DX12 adapters when \
                there are any (the same GPU would be counted twice)"
            .into();
    }
    if a.software {
        return if any_real_gpu {
            "not used: a software adapter (runs on the CPU), skipped while a real GPU exists \
             (--allow-software adds it)"
                .into()
        } else {
            "not used by default: a software adapter (runs on the CPU), and with no real GPU \
             plain wgminer mines with its faster CPU backend (--backend gpu would use it)"
                .into()
        };
    }
    "not in the default selection (name it with --device)".into()
}

/// Things worth saying even when the GPU works.
fn warnings(f: &Findings) -> Vec<String> {
    let mut w = Vec::new();
    if f.linux {
        for m in &f.icd_search.missing {
            w.push(format!(
                "{} names {m}, which does not exist",
                f.icd_search
                    .variable
                    .as_deref()
                    .unwrap_or("VK_ADD_DRIVER_FILES")
            ));
        }
        if let Some(ignored) = &f.icd_search.ignored {
            w.push(format!(
                "VK_ICD_FILENAMES={ignored} is ignored because VK_DRIVER_FILES is set"
            ));
        }
        for icd in &f.icds {
            if let Some(e) = &icd.error {
                w.push(format!("ICD manifest {} cannot be used: {e}", icd.path));
            } else if icd.library_found.is_none() {
                w.push(format!(
                    "ICD manifest {} names {}, which is not installed",
                    icd.path,
                    icd.library_path.as_deref().unwrap_or("?")
                ));
            }
        }
        // Two manifests for one driver library: the loader may list every GPU twice.
        let mut libraries: Vec<&str> = Vec::new();
        for icd in f.icds.iter().filter(|i| i.error.is_none()) {
            if let Some(lib) = icd.library_found.as_deref() {
                if libraries.contains(&lib) {
                    w.push(format!(
                        "{lib} is named by more than one ICD manifest ({} is one): GPUs may be \
                         listed twice; keep one manifest or point VK_DRIVER_FILES at it",
                        icd.path
                    ));
                } else {
                    libraries.push(lib);
                }
            }
        }
        let nv = &f.nvidia;
        if nv.present()
            && nv.in_container
            && !capabilities_include_graphics(nv.driver_capabilities.as_deref())
        {
            w.push(format!(
                "in a container with NVIDIA_DRIVER_CAPABILITIES={}: without `graphics` (or \
                 `all`) the NVIDIA container toolkit does not mount the Vulkan driver",
                nv.driver_capabilities
                    .as_deref()
                    .unwrap_or("(unset: compute,utility)")
            ));
        }
    }
    if let Some(b) = &f.wgpu_backend {
        w.push(format!(
            "WGPU_BACKEND={b} limits the graphics APIs wgpu searches"
        ));
    }
    w
}

/// The verdict: ready when a real GPU mines by default, else the most likely reason and fix.
pub fn verdict(f: &Findings) -> Verdict {
    let warnings = warnings(f);
    let usable: Vec<&AdapterFinding> = f
        .adapters
        .iter()
        .filter(|a| a.used_by_default && !a.software && a.open_error.is_none())
        .collect();
    if !usable.is_empty() {
        let names: Vec<String> = usable
            .iter()
            .map(|a| format!("{} {}", a.index, a.name))
            .collect();
        return Verdict {
            ready: true,
            usable_gpus: usable.len(),
            line: format!(
                "ready: {} GPU(s) usable ({})",
                usable.len(),
                names.join(", ")
            ),
            reason: None,
            fix: None,
            warnings,
        };
    }
    let (reason, fix) = diagnose(f);
    Verdict {
        ready: false,
        usable_gpus: 0,
        line: format!("CPU only: {reason}, to use the GPU: {fix}"),
        reason: Some(reason),
        fix: Some(fix),
        warnings,
    }
}

/// The container fix for a missing NVIDIA Vulkan driver.
const CONTAINER_FIX: &str = "start the container with --gpus all -e \
NVIDIA_DRIVER_CAPABILITIES=compute,utility,graphics (or =all): the graphics capability is what \
mounts NVIDIA's Vulkan driver";

/// Why no real GPU mines, and the most likely fix, most fundamental cause first.
fn diagnose(f: &Findings) -> (String, String) {
    if let Some(a) = f
        .adapters
        .iter()
        .find(|a| !a.software && a.open_error.is_some())
    {
        return (
            format!(
                "GPU {} ({}) cannot be opened: {}",
                a.index,
                a.name,
                a.open_error.as_deref().unwrap_or("")
            ),
            "update the GPU driver (its Vulkan part must match the kernel module); \
             `WGMINER_LOG=debug wgminer bench --backend gpu` shows more"
                .into(),
        );
    }
    if let Some(b) = &f.wgpu_backend {
        if f.linux && !backend_var_allows_vulkan(b) {
            return (
                format!("WGPU_BACKEND={b} keeps wgpu off Vulkan"),
                "unset WGPU_BACKEND (or include vulkan in it)".into(),
            );
        }
    }
    if !f.linux {
        return (
            "wgpu found no GPU adapter on Metal, DX12 or Vulkan".into(),
            "install or update the GPU's driver".into(),
        );
    }
    let nv = &f.nvidia;
    let version = nv.version();
    let ver_text = version
        .as_deref()
        .map(|v| format!(" {v}"))
        .unwrap_or_default();
    let major = version
        .as_deref()
        .and_then(|v| v.split('.').next())
        .unwrap_or("<version>")
        .to_string();
    let working_hw_icd = f
        .icds
        .iter()
        .any(|i| i.kind != IcdKind::Software && i.error.is_none() && i.library_found.is_some());

    let search = &f.icd_search;
    if let Some(var) = &search.variable {
        if !search.missing.is_empty() && !working_hw_icd {
            let nvidia_hint = if nv.present() {
                " (NVIDIA's is usually /usr/share/vulkan/icd.d/nvidia_icd.json or \
                 /etc/vulkan/icd.d/nvidia_icd.json)"
            } else {
                ""
            };
            let missing = search.missing.join(", ");
            let verb = if search.missing.len() == 1 {
                "does"
            } else {
                "do"
            };
            return (
                format!("{var} names {missing}, which {verb} not exist"),
                format!(
                    "unset {var} (the loader then reads the standard directories such as \
                     /usr/share/vulkan/icd.d) or point it at an existing ICD JSON{nvidia_hint}"
                ),
            );
        }
    }
    if f.loader.path.is_none() {
        return (
            format!("the Vulkan loader {LOADER} is not installed"),
            "install libvulkan1 (Debian/Ubuntu: apt-get install libvulkan1; Fedora/RHEL: dnf \
             install vulkan-loader)"
                .into(),
        );
    }
    if nv.present() {
        let graphics = capabilities_include_graphics(nv.driver_capabilities.as_deref());
        let nvidia_icds: Vec<&IcdFinding> = f
            .icds
            .iter()
            .filter(|i| i.kind == IcdKind::Nvidia)
            .collect();
        let host_fix = format!(
            "install the driver's Vulkan part, the same version as the kernel module{ver_text} \
             (Ubuntu: apt-get install libnvidia-gl-{major}), so that \
             /usr/share/vulkan/icd.d/nvidia_icd.json exists, or point VK_DRIVER_FILES at the \
             nvidia_icd.json the driver installed"
        );
        if nvidia_icds.is_empty() {
            let fix = if nv.in_container && !graphics {
                CONTAINER_FIX.to_string()
            } else if nv.in_container {
                format!(
                    "the container has the graphics capability but no ICD manifest: write \
                     {NVIDIA_ICD_JSON} to /usr/share/vulkan/icd.d/nvidia_icd.json (as \
                     contrib/Dockerfile does)"
                )
            } else {
                host_fix
            };
            return (
                format!(
                    "the NVIDIA driver{ver_text} is loaded but no NVIDIA Vulkan ICD \
                     (nvidia_icd.json) was found"
                ),
                fix,
            );
        }
        if let Some(icd) = nvidia_icds
            .iter()
            .find(|i| i.error.is_some() || i.library_found.is_none())
            .filter(|_| {
                !nvidia_icds
                    .iter()
                    .any(|i| i.error.is_none() && i.library_found.is_some())
            })
        {
            let reason = match &icd.error {
                Some(e) => format!("NVIDIA's ICD manifest {} cannot be used: {e}", icd.path),
                None => format!(
                    "NVIDIA's ICD manifest {} names {}, which is not installed",
                    icd.path,
                    icd.library_path.as_deref().unwrap_or("?")
                ),
            };
            let fix = if nv.in_container && !graphics {
                CONTAINER_FIX.to_string()
            } else if nv.in_container {
                "the NVIDIA container toolkit did not mount the driver's Vulkan library: update \
                 the toolkit on the host and check `ldconfig -p | grep libGLX_nvidia` inside"
                    .to_string()
            } else {
                host_fix
            };
            return (reason, fix);
        }
        if f.adapters.iter().any(|a| a.vendor == VENDOR_NVIDIA) {
            return (
                "wgpu sees the NVIDIA GPU but wgminer does not mine on it by default".into(),
                "name it with --device (see `wgminer devices`)".into(),
            );
        }
        let nodes = if nv.device_nodes.is_empty() {
            "no /dev/nvidia* device node exists".to_string()
        } else {
            format!(
                "{} must be readable and writable",
                nv.device_nodes.join(", ")
            )
        };
        return (
            "NVIDIA's Vulkan driver is installed but wgpu found no NVIDIA adapter".into(),
            format!(
                "check this user can open the GPU ({nodes}) and that the driver's Vulkan part \
                 matches the kernel module{ver_text}; `VK_LOADER_DEBUG=error,warn wgminer \
                 devices` prints the loader's reasons"
            ),
        );
    }
    let software: Vec<&AdapterFinding> = f.adapters.iter().filter(|a| a.software).collect();
    let reason = if let Some(a) = software.first() {
        format!(
            "no GPU driver was found, only a software adapter ({}) that runs on the CPU",
            a.name
        )
    } else if f.adapters.iter().any(|a| !a.software) {
        "no GPU adapter mines by default".to_string()
    } else {
        "no GPU driver was found and wgpu sees no adapter".to_string()
    };
    (
        reason,
        "install the GPU's driver with its Vulkan part (NVIDIA: the driver and \
         libnvidia-gl-<version>; AMD and Intel: mesa-vulkan-drivers); in a container, pass the \
         GPU in (docker run --gpus all -e NVIDIA_DRIVER_CAPABILITIES=all …)"
            .into(),
    )
}

/// The report as text.
pub fn render_text(f: &Findings, v: &Verdict) -> String {
    let mut out = String::new();
    let mut line = |s: String| {
        out.push_str(&s);
        out.push('\n');
    };
    if f.linux {
        line("Vulkan loader".into());
        match &f.loader.path {
            Some(p) => line(format!("  ok       {LOADER}: {p}")),
            None => {
                line(format!(
                    "  MISSING  {LOADER} (looked in: {})",
                    f.loader.searched.join(", ")
                ));
                line(
                    "           install libvulkan1 (Debian/Ubuntu: apt-get install libvulkan1)"
                        .into(),
                );
            }
        }
        line(String::new());
        let s = &f.icd_search;
        match (&s.variable, &s.value) {
            (Some(var), Some(value)) => line(format!(
                "Vulkan drivers (ICD manifests), from {var}={value}"
            )),
            _ => line(format!(
                "Vulkan drivers (ICD manifests), from the standard directories ({})",
                s.locations.join(", ")
            )),
        }
        if let Some(added) = &s.added {
            line(format!("  also VK_ADD_DRIVER_FILES={added}"));
        }
        if let Some(ignored) = &s.ignored {
            line(format!(
                "  note     VK_ICD_FILENAMES={ignored} is ignored: VK_DRIVER_FILES overrides it"
            ));
        }
        for m in &s.missing {
            line(format!("  MISSING  {m} does not exist"));
        }
        if f.icds.is_empty() {
            line("  none     no ICD manifest found: the loader has no Vulkan driver".into());
        }
        for icd in &f.icds {
            let tag = match icd.kind {
                IcdKind::Nvidia => "  [nvidia]",
                IcdKind::Software => "  [software]",
                IcdKind::Other => "",
            };
            let status = if icd.error.is_some() {
                "BROKEN "
            } else if icd.library_found.is_none() {
                "NO LIB "
            } else {
                "ok     "
            };
            line(format!("  {status}  {}{tag}", icd.path));
            match &icd.error {
                Some(e) => line(format!("           {e}")),
                None => line(format!(
                    "           library {} ({}), api {}",
                    icd.library_path.as_deref().unwrap_or("?"),
                    match &icd.library_found {
                        Some(p) if Some(p) != icd.library_path.as_ref() => format!("found: {p}"),
                        Some(_) => "found".to_string(),
                        None => "NOT FOUND".to_string(),
                    },
                    icd.api_version.as_deref().unwrap_or("?")
                )),
            }
        }
        line(String::new());
        line("NVIDIA".into());
        let nv = &f.nvidia;
        if nv.present() {
            line(format!(
                "  driver   {}",
                nv.version()
                    .unwrap_or_else(|| "present (version unknown)".into())
            ));
            if let Some(smi) = &nv.nvidia_smi {
                line(format!("  nvidia-smi {smi}"));
            }
            for g in &nv.smi_gpus {
                line(format!("           {g}"));
            }
            if let Some(e) = &nv.smi_error {
                line(format!("           nvidia-smi: {e}"));
            }
            line(format!(
                "  devices  {}",
                if nv.device_nodes.is_empty() {
                    "no /dev/nvidia* node".to_string()
                } else {
                    nv.device_nodes.join(", ")
                }
            ));
            if !f.icds.iter().any(|i| i.kind == IcdKind::Nvidia) {
                line("  MISSING  no NVIDIA Vulkan ICD (nvidia_icd.json)".into());
            }
        } else {
            line(
                "  none     no NVIDIA driver (no /proc/driver/nvidia/version, nvidia-smi or \
                 /dev/nvidia0)"
                    .into(),
            );
        }
        if nv.in_container && !nv.present() {
            line("  container yes".into());
        } else if nv.in_container {
            line(format!(
                "  container yes, NVIDIA_DRIVER_CAPABILITIES={}{}",
                nv.driver_capabilities.as_deref().unwrap_or("(unset)"),
                if capabilities_include_graphics(nv.driver_capabilities.as_deref()) {
                    ""
                } else {
                    " (no graphics: no Vulkan driver is mounted)"
                }
            ));
        }
        line(String::new());
    }
    match &f.wgpu_backend {
        Some(b) => line(format!(
            "Adapters (as wgpu enumerates them, WGPU_BACKEND={b})"
        )),
        None => line("Adapters (as wgpu enumerates them)".into()),
    }
    line(format!("  0 cpu    {} (mines when no GPU does)", f.cpu));
    if f.adapters.is_empty() {
        line("  none     wgpu found no GPU adapter".into());
    }
    for a in &f.adapters {
        let detail: Vec<&str> = [
            a.backend.as_str(),
            a.device_type.as_str(),
            a.driver.as_str(),
            a.driver_info.as_str(),
        ]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect();
        line(format!(
            "  {} gpu    {} ({})",
            a.index,
            a.name,
            detail.join(", ")
        ));
        line(format!("           {}", a.note));
    }
    line(String::new());
    for w in &v.warnings {
        line(format!("warning: {w}"));
    }
    line(format!("verdict: {}", v.line));
    out
}

// ------------------------------------------------------------------------------------------
// Gathering (I/O).
// ------------------------------------------------------------------------------------------

/// How the dynamic linker finds a library by name: LD_LIBRARY_PATH, the ld.so cache, the
/// usual directories.
struct LibrarySearch {
    ld_library_path: Vec<PathBuf>,
    cache: Vec<(String, String)>,
    cache_read: bool,
    dirs: Vec<PathBuf>,
}

impl LibrarySearch {
    fn from_system() -> Self {
        let ld_library_path = std::env::var("LD_LIBRARY_PATH")
            .map(|v| split_path_list(&v))
            .unwrap_or_default();
        let (cache, cache_read) = match ldconfig_p() {
            Some(text) => (parse_ldconfig(&text, ldconfig_arch_tag()), true),
            None => (Vec::new(), false),
        };
        let triplet = format!("/usr/lib/{}-linux-gnu", std::env::consts::ARCH);
        let lib_triplet = format!("/lib/{}-linux-gnu", std::env::consts::ARCH);
        let dirs = [
            triplet.as_str(),
            lib_triplet.as_str(),
            "/usr/lib64",
            "/lib64",
            "/usr/lib",
            "/lib",
            "/usr/local/lib",
        ]
        .into_iter()
        .map(PathBuf::from)
        .collect();
        LibrarySearch {
            ld_library_path,
            cache,
            cache_read,
            dirs,
        }
    }

    /// Where the search looks, for the report.
    fn describe(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .ld_library_path
            .iter()
            .map(|d| format!("LD_LIBRARY_PATH {}", d.display()))
            .collect();
        out.push(if self.cache_read {
            "ld.so cache (ldconfig -p)".into()
        } else {
            "ld.so cache (ldconfig not available)".into()
        });
        out.extend(self.dirs.iter().map(|d| d.display().to_string()));
        out
    }

    /// The file a library name resolves to.
    fn find(&self, name: &str) -> Option<PathBuf> {
        let in_dirs = |dirs: &[PathBuf]| dirs.iter().map(|d| d.join(name)).find(|p| p.exists());
        in_dirs(&self.ld_library_path)
            .or_else(|| {
                self.cache
                    .iter()
                    .filter(|(n, _)| n == name)
                    .map(|(_, p)| PathBuf::from(p))
                    .find(|p| p.exists())
            })
            .or_else(|| in_dirs(&self.dirs))
    }

    fn resolve(&self, manifest: &Path, library_path: &str) -> Option<PathBuf> {
        match library_ref(manifest, library_path) {
            LibraryRef::Name(n) => self.find(&n),
            LibraryRef::File(p) => p.exists().then_some(p),
        }
    }
}

/// `ldconfig -p`, from wherever ldconfig lives (often /sbin, off a user's PATH).
fn ldconfig_p() -> Option<String> {
    ["ldconfig", "/sbin/ldconfig", "/usr/sbin/ldconfig"]
        .iter()
        .find_map(|cmd| run_with_timeout(cmd, &["-p"], Duration::from_secs(5)).ok())
}

/// Run a program, wait at most `timeout`, and return its stdout when it exits 0.
fn run_with_timeout(program: &str, args: &[&str], timeout: Duration) -> Result<String, String> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    // Read stdout on a thread so a chatty child cannot block on a full pipe.
    let mut stdout = child.stdout.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() < timeout => {
                std::thread::sleep(Duration::from_millis(20))
            }
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "{program} did not finish in {} s",
                    timeout.as_secs()
                ));
            }
            Err(e) => return Err(format!("{program}: {e}")),
        }
    };
    let out = reader.join().unwrap_or_default();
    if status.success() {
        Ok(out)
    } else {
        let mut err = String::new();
        if let Some(mut e) = child.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        let first = err
            .lines()
            .chain(out.lines())
            .find(|l| !l.trim().is_empty())
            .unwrap_or("")
            .trim()
            .to_string();
        Err(format!(
            "{program} failed ({status}){}",
            if first.is_empty() {
                String::new()
            } else {
                format!(": {first}")
            }
        ))
    }
}

/// A program on PATH.
fn find_in_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

fn env_nonempty(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn home() -> Option<PathBuf> {
    env_nonempty("HOME").map(PathBuf::from)
}

/// The standard ICD directories in the loader's order (XDG config, /etc, XDG data).
fn standard_icd_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    let config_home = env_nonempty("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| home().map(|h| h.join(".config")));
    dirs.extend(config_home);
    dirs.extend(split_path_list(
        &env_nonempty("XDG_CONFIG_DIRS").unwrap_or_else(|| "/etc/xdg".into()),
    ));
    dirs.push("/usr/local/etc".into());
    dirs.push("/etc".into());
    let data_home = env_nonempty("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| home().map(|h| h.join(".local/share")));
    dirs.extend(data_home);
    dirs.extend(split_path_list(
        &env_nonempty("XDG_DATA_DIRS").unwrap_or_else(|| "/usr/local/share:/usr/share".into()),
    ));
    // The distribution's places, even where XDG_DATA_DIRS leaves them out.
    dirs.push("/usr/local/share".into());
    dirs.push("/usr/share".into());
    let mut seen = HashSet::new();
    dirs.into_iter()
        .map(|d| d.join("vulkan/icd.d"))
        .filter(|d| seen.insert(d.clone()))
        .collect()
}

/// The manifests in a file-or-directory entry, sorted; None when the entry does not exist.
fn manifests_in(entry: &Path) -> Option<Vec<PathBuf>> {
    if entry.is_file() {
        return Some(vec![entry.to_path_buf()]);
    }
    let rd = std::fs::read_dir(entry).ok()?;
    let mut files: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json") && p.is_file())
        .collect();
    files.sort();
    Some(files)
}

fn gather_icds(libs: &LibrarySearch) -> (IcdSearch, Vec<IcdFinding>) {
    let driver_files = env_nonempty("VK_DRIVER_FILES");
    let icd_filenames = env_nonempty("VK_ICD_FILENAMES");
    let added = env_nonempty("VK_ADD_DRIVER_FILES");
    let mut search = IcdSearch {
        added: added.clone(),
        ..Default::default()
    };
    let mut entries: Vec<(PathBuf, bool)> = Vec::new(); // (entry, from a variable)
    if let Some(v) = &driver_files {
        search.variable = Some("VK_DRIVER_FILES".into());
        search.value = Some(v.clone());
        search.ignored = icd_filenames.clone();
        entries.extend(split_path_list(v).into_iter().map(|p| (p, true)));
    } else if let Some(v) = &icd_filenames {
        search.variable = Some("VK_ICD_FILENAMES".into());
        search.value = Some(v.clone());
        entries.extend(split_path_list(v).into_iter().map(|p| (p, true)));
    } else {
        entries.extend(standard_icd_dirs().into_iter().map(|p| (p, false)));
    }
    if let Some(a) = &added {
        entries.extend(split_path_list(a).into_iter().map(|p| (p, true)));
    }
    let mut icds = Vec::new();
    let mut seen = HashSet::new();
    for (entry, from_var) in entries {
        match manifests_in(&entry) {
            None => {
                if from_var {
                    search.missing.push(entry.display().to_string());
                }
            }
            Some(files) => {
                search.locations.push(entry.display().to_string());
                for file in files {
                    let key = std::fs::canonicalize(&file).unwrap_or_else(|_| file.clone());
                    if seen.insert(key) {
                        icds.push(read_icd(&file, libs));
                    }
                }
            }
        }
    }
    if search.variable.is_none() && search.locations.is_empty() {
        // Say where we looked even when none of the standard directories exists.
        search.locations = standard_icd_dirs()
            .iter()
            .map(|d| d.display().to_string())
            .collect();
    }
    (search, icds)
}

fn read_icd(file: &Path, libs: &LibrarySearch) -> IcdFinding {
    let path = file.display().to_string();
    let parsed = std::fs::read_to_string(file)
        .map_err(|e| format!("cannot read: {e}"))
        .and_then(|t| parse_icd(&t));
    match parsed {
        Ok(m) => {
            let found = libs
                .resolve(file, &m.library_path)
                .map(|p| p.display().to_string());
            let error = match m.library_arch.as_deref() {
                Some("32") if cfg!(target_pointer_width = "64") => {
                    Some("a 32-bit driver (library_arch 32), skipped by 64-bit programs".into())
                }
                _ => None,
            };
            IcdFinding {
                kind: icd_kind(&path, Some(&m.library_path)),
                path,
                library_found: found,
                library_path: Some(m.library_path),
                api_version: m.api_version,
                error,
            }
        }
        Err(e) => IcdFinding {
            kind: icd_kind(&path, None),
            path,
            error: Some(e),
            ..Default::default()
        },
    }
}

fn gather_nvidia() -> NvidiaFinding {
    let kernel_module = std::fs::read_to_string("/proc/driver/nvidia/version")
        .ok()
        .map(|t| parse_nvidia_version(&t).unwrap_or_else(|| "unknown".into()));
    let nvidia_smi = find_in_path("nvidia-smi");
    let (smi_gpus, smi_error) = match &nvidia_smi {
        Some(smi) => match run_with_timeout(
            &smi.display().to_string(),
            &["--query-gpu=name,driver_version", "--format=csv,noheader"],
            Duration::from_secs(10),
        ) {
            Ok(out) => (
                out.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(String::from)
                    .collect(),
                None,
            ),
            Err(e) => (Vec::new(), Some(e)),
        },
        None => (Vec::new(), None),
    };
    let mut device_nodes: Vec<String> = std::fs::read_dir("/dev")
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| {
                    n.strip_prefix("nvidia")
                        .is_some_and(|d| !d.is_empty() && d.chars().all(|c| c.is_ascii_digit()))
                })
                .map(|n| format!("/dev/{n}"))
                .collect()
        })
        .unwrap_or_default();
    device_nodes.sort_by_key(|n| (n.len(), n.clone()));
    let in_container = Path::new("/.dockerenv").exists()
        || Path::new("/run/.containerenv").exists()
        || std::env::var_os("KUBERNETES_SERVICE_HOST").is_some();
    NvidiaFinding {
        kernel_module,
        nvidia_smi: nvidia_smi.map(|p| p.display().to_string()),
        smi_gpus,
        smi_error,
        device_nodes,
        in_container,
        driver_capabilities: std::env::var("NVIDIA_DRIVER_CAPABILITIES").ok(),
    }
}

/// The adapters plain `wgminer` mines on (as `mine::backends` chooses them): every real GPU in
/// the default selection, none when there is no real GPU (the CPU mines then).
fn mining_default(gpus: &[GpuAdapter]) -> Vec<usize> {
    if crate::select::default_backend(gpus) == crate::cli::BackendChoice::Cpu {
        return Vec::new();
    }
    gpu::default_selection(gpus, false)
        .iter()
        .map(|g| g.index)
        .collect()
}

fn gather_adapters(gpus: &[GpuAdapter]) -> Vec<AdapterFinding> {
    let defaults = mining_default(gpus);
    let mut out: Vec<AdapterFinding> = gpus
        .iter()
        .map(|g| {
            let s = g.summary();
            let used_by_default = defaults.contains(&g.index);
            // Open the real GPUs that would mine: the one test that the driver really works.
            let open_error = if used_by_default && !s.software {
                GpuBackend::new(g, GpuOptions::for_adapter(g))
                    .err()
                    .map(|e| crate::error_text(&anyhow::Error::new(e)))
            } else {
                None
            };
            AdapterFinding {
                index: s.index,
                primary_api: matches!(s.backend.as_str(), "vulkan" | "metal" | "dx12"),
                name: s.name,
                backend: s.backend,
                device_type: s.device_type,
                vendor: g.info.vendor,
                driver: s.driver,
                driver_info: s.driver_info,
                software: s.software,
                used_by_default,
                open_error,
                note: String::new(),
            }
        })
        .collect();
    let any_real = out.iter().any(|a| !a.software);
    let any_primary = out.iter().any(|a| a.primary_api);
    for a in &mut out {
        a.note = adapter_note(a, any_real, any_primary);
    }
    out
}

/// Look at the machine.
pub fn gather() -> anyhow::Result<Findings> {
    let linux = cfg!(target_os = "linux");
    let mut f = Findings {
        linux,
        wgpu_backend: env_nonempty("WGPU_BACKEND"),
        ..Default::default()
    };
    if linux {
        let libs = LibrarySearch::from_system();
        f.loader = LoaderFinding {
            path: libs.find(LOADER).map(|p| p.display().to_string()),
            searched: libs.describe(),
        };
        (f.icd_search, f.icds) = gather_icds(&libs);
        f.nvidia = gather_nvidia();
    }
    let inventory = Inventory::scan()?;
    f.cpu = inventory.cpu.name.clone();
    f.adapters = gather_adapters(&inventory.gpus);
    Ok(f)
}

/// `wgminer doctor`.
pub fn run_doctor(args: &DoctorArgs) -> anyhow::Result<()> {
    let findings = gather()?;
    let v = verdict(&findings);
    if args.json {
        let mut json = serde_json::to_value(&findings)?;
        json["nvidia"]["present"] = findings.nvidia.present().into();
        json["verdict"] = serde_json::to_value(&v)?;
        let text = format!("{}\n", serde_json::to_string_pretty(&json)?);
        crate::mine::write_to(crate::mine::Stream::Out, &text);
    } else {
        crate::mine::write_to(crate::mine::Stream::Out, &render_text(&findings, &v));
    }
    if args.strict && !v.ready {
        anyhow::bail!("no real GPU is usable (--strict)");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lvp_icd() -> IcdFinding {
        IcdFinding {
            path: "/usr/share/vulkan/icd.d/lvp_icd.x86_64.json".into(),
            library_path: Some("/usr/lib/x86_64-linux-gnu/libvulkan_lvp.so".into()),
            library_found: Some("/usr/lib/x86_64-linux-gnu/libvulkan_lvp.so".into()),
            api_version: Some("1.1.230".into()),
            kind: IcdKind::Software,
            error: None,
        }
    }

    fn nvidia_icd(found: bool) -> IcdFinding {
        IcdFinding {
            path: "/usr/share/vulkan/icd.d/nvidia_icd.json".into(),
            library_path: Some("libGLX_nvidia.so.0".into()),
            library_found: found.then(|| "/usr/lib/x86_64-linux-gnu/libGLX_nvidia.so.0".into()),
            api_version: Some("1.3".into()),
            kind: IcdKind::Nvidia,
            error: None,
        }
    }

    fn llvmpipe(index: usize) -> AdapterFinding {
        AdapterFinding {
            index,
            name: "llvmpipe (LLVM 15.0.6, 256 bits)".into(),
            backend: "vulkan".into(),
            device_type: "cpu".into(),
            software: true,
            primary_api: true,
            ..Default::default()
        }
    }

    fn h100(index: usize) -> AdapterFinding {
        AdapterFinding {
            index,
            name: "NVIDIA H100 80GB HBM3".into(),
            backend: "vulkan".into(),
            device_type: "discrete".into(),
            vendor: VENDOR_NVIDIA,
            primary_api: true,
            used_by_default: true,
            ..Default::default()
        }
    }

    fn nvidia_driver(in_container: bool, caps: Option<&str>) -> NvidiaFinding {
        NvidiaFinding {
            kernel_module: Some("550.54.15".into()),
            nvidia_smi: Some("/usr/bin/nvidia-smi".into()),
            smi_gpus: vec!["NVIDIA H100 80GB HBM3, 550.54.15".into()],
            device_nodes: vec!["/dev/nvidia0".into()],
            in_container,
            driver_capabilities: caps.map(String::from),
            ..Default::default()
        }
    }

    /// Linux with the loader, lavapipe's manifest and llvmpipe, no GPU driver.
    fn lavapipe_machine() -> Findings {
        Findings {
            linux: true,
            loader: LoaderFinding {
                path: Some("/lib/x86_64-linux-gnu/libvulkan.so.1".into()),
                searched: vec![],
            },
            icds: vec![lvp_icd()],
            cpu: "AMD EPYC".into(),
            adapters: vec![llvmpipe(1)],
            ..Default::default()
        }
    }

    #[test]
    fn parses_mesa_and_nvidia_manifests() {
        let mesa = r#"{
            "ICD": {"api_version": "1.1.230", "library_path": "/usr/lib/x86_64-linux-gnu/libvulkan_lvp.so"},
            "file_format_version": "1.0.0"
        }"#;
        let m = parse_icd(mesa).unwrap();
        assert_eq!(m.library_path, "/usr/lib/x86_64-linux-gnu/libvulkan_lvp.so");
        assert_eq!(m.api_version.as_deref(), Some("1.1.230"));
        assert_eq!(m.file_format_version.as_deref(), Some("1.0.0"));
        assert_eq!(m.library_arch, None);
        let n = parse_icd(NVIDIA_ICD_JSON).unwrap();
        assert_eq!(n.library_path, "libGLX_nvidia.so.0");
        assert_eq!(n.api_version.as_deref(), Some("1.3"));
        let arch = parse_icd(
            r#"{"file_format_version":"1.0.1","ICD":{"library_path":"x.so","library_arch":"32"}}"#,
        )
        .unwrap();
        assert_eq!(arch.library_arch.as_deref(), Some("32"));
        assert_eq!(arch.api_version, None);
    }

    #[test]
    fn rejects_broken_manifests() {
        assert!(parse_icd("{").unwrap_err().contains("not valid JSON"));
        assert!(parse_icd("{}").unwrap_err().contains("ICD"));
        assert!(parse_icd(r#"{"ICD":{"api_version":"1.3"}}"#)
            .unwrap_err()
            .contains("library_path"));
        assert!(parse_icd(r#"{"ICD":{"library_path":""}}"#).is_err());
        assert!(parse_icd(r#"{"ICD":{"library_path":5}}"#).is_err());
    }

    #[test]
    fn names_icd_kinds() {
        assert_eq!(
            icd_kind(
                "/usr/share/vulkan/icd.d/lvp_icd.x86_64.json",
                Some("/usr/lib/libvulkan_lvp.so")
            ),
            IcdKind::Software
        );
        assert_eq!(
            icd_kind(
                "/etc/vulkan/icd.d/nvidia_icd.json",
                Some("libGLX_nvidia.so.0")
            ),
            IcdKind::Nvidia
        );
        assert_eq!(
            icd_kind("/x/custom.json", Some("libGLX_nvidia.so.0")),
            IcdKind::Nvidia
        );
        assert_eq!(
            icd_kind(
                "/usr/share/vulkan/icd.d/radeon_icd.x86_64.json",
                Some("libvulkan_radeon.so")
            ),
            IcdKind::Other
        );
        assert_eq!(
            icd_kind("/x/vk_swiftshader_icd.json", None),
            IcdKind::Software
        );
    }

    #[test]
    fn resolves_library_references_like_the_loader() {
        let manifest = Path::new("/opt/icd/my.json");
        assert_eq!(
            library_ref(manifest, "libGLX_nvidia.so.0"),
            LibraryRef::Name("libGLX_nvidia.so.0".into())
        );
        assert_eq!(
            library_ref(manifest, "/usr/lib/libx.so"),
            LibraryRef::File("/usr/lib/libx.so".into())
        );
        assert_eq!(
            library_ref(manifest, "../lib/libx.so"),
            LibraryRef::File("/opt/icd/../lib/libx.so".into())
        );
    }

    #[test]
    fn parses_ldconfig_and_lists() {
        let text = "5 libs found in cache `/etc/ld.so.cache'\n\
            \tlibvulkan.so.1 (libc6,x86-64) => /lib/x86_64-linux-gnu/libvulkan.so.1\n\
            \tlibvulkan.so.1 (libc6) => /lib/i386-linux-gnu/libvulkan.so.1\n\
            \tlibGLX_nvidia.so.0 (libc6,x86-64, OS ABI: Linux 3.2.0) => /usr/lib/x86_64-linux-gnu/libGLX_nvidia.so.0\n";
        let all = parse_ldconfig(text, None);
        assert_eq!(all.len(), 3);
        let x86 = parse_ldconfig(text, Some("x86-64"));
        assert_eq!(
            x86,
            vec![
                (
                    "libvulkan.so.1".to_string(),
                    "/lib/x86_64-linux-gnu/libvulkan.so.1".to_string()
                ),
                (
                    "libGLX_nvidia.so.0".to_string(),
                    "/usr/lib/x86_64-linux-gnu/libGLX_nvidia.so.0".to_string()
                ),
            ]
        );
        assert_eq!(
            split_path_list("/a/icd.json::/b/ "),
            vec![PathBuf::from("/a/icd.json"), PathBuf::from("/b")]
        );
    }

    #[test]
    fn parses_driver_versions_and_capabilities() {
        let proc = "NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.129.03  Thu Oct 19 18:56:32 UTC 2023\nGCC version:  gcc version 12.2.0\n";
        assert_eq!(parse_nvidia_version(proc).as_deref(), Some("535.129.03"));
        let open =
            "NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  550.54.15  Release Build";
        assert_eq!(parse_nvidia_version(open).as_deref(), Some("550.54.15"));
        assert!(capabilities_include_graphics(Some(
            "compute,utility,graphics"
        )));
        assert!(capabilities_include_graphics(Some("all")));
        assert!(capabilities_include_graphics(Some(" compute , Graphics")));
        assert!(!capabilities_include_graphics(Some("compute,utility")));
        assert!(!capabilities_include_graphics(None));
        assert!(backend_var_allows_vulkan("vulkan,gl"));
        assert!(!backend_var_allows_vulkan("gl"));
    }

    #[test]
    fn ready_with_a_real_gpu() {
        let mut f = lavapipe_machine();
        f.nvidia = nvidia_driver(false, None);
        f.icds.push(nvidia_icd(true));
        let mut sw = llvmpipe(2);
        sw.note = adapter_note(&sw, true, true);
        f.adapters = vec![h100(1), sw];
        let v = verdict(&f);
        assert!(v.ready);
        assert_eq!(v.usable_gpus, 1);
        assert_eq!(v.line, "ready: 1 GPU(s) usable (1 NVIDIA H100 80GB HBM3)");
        assert!(v.reason.is_none() && v.fix.is_none());
        assert!(f.adapters[1].note.contains("--allow-software"));
    }

    #[test]
    fn a_gpu_that_fails_to_open_is_not_usable() {
        let mut f = lavapipe_machine();
        f.nvidia = nvidia_driver(false, None);
        f.icds.push(nvidia_icd(true));
        let mut gpu = h100(1);
        gpu.open_error = Some("cannot open NVIDIA H100: device lost".into());
        f.adapters = vec![gpu];
        let v = verdict(&f);
        assert!(!v.ready);
        assert!(v.line.contains("cannot be opened"), "{}", v.line);
    }

    #[test]
    fn lavapipe_only_is_cpu_only() {
        let f = lavapipe_machine();
        let v = verdict(&f);
        assert!(!v.ready);
        assert_eq!(v.usable_gpus, 0);
        assert!(v.line.starts_with("CPU only: "), "{}", v.line);
        assert!(v.line.contains("software adapter"), "{}", v.line);
        assert!(v.line.contains(", to use the GPU: "), "{}", v.line);
        assert!(adapter_note(&llvmpipe(1), false, true).contains("CPU backend"));
    }

    #[test]
    fn missing_env_manifest_is_named() {
        let mut f = lavapipe_machine();
        f.icd_search = IcdSearch {
            variable: Some("VK_DRIVER_FILES".into()),
            value: Some("/nonexistent/icd.json".into()),
            missing: vec!["/nonexistent/icd.json".into()],
            ..Default::default()
        };
        f.icds.clear();
        f.adapters.clear();
        let v = verdict(&f);
        assert!(!v.ready);
        assert!(
            v.line
                .contains("VK_DRIVER_FILES names /nonexistent/icd.json, which does not exist"),
            "{}",
            v.line
        );
        assert!(v.fix.unwrap().contains("unset VK_DRIVER_FILES"));
        assert!(v.warnings.iter().any(|w| w.contains("does not exist")));
    }

    #[test]
    fn missing_loader_says_install_libvulkan1() {
        let mut f = lavapipe_machine();
        f.loader.path = None;
        f.adapters.clear();
        f.nvidia = nvidia_driver(false, None);
        let v = verdict(&f);
        assert!(
            v.line.contains("libvulkan.so.1 is not installed"),
            "{}",
            v.line
        );
        assert!(v.line.contains("apt-get install libvulkan1"), "{}", v.line);
    }

    #[test]
    fn nvidia_without_icd_in_a_container_asks_for_graphics() {
        let mut f = lavapipe_machine();
        f.nvidia = nvidia_driver(true, Some("compute,utility"));
        let v = verdict(&f);
        assert!(!v.ready);
        assert!(v.line.contains("no NVIDIA Vulkan ICD"), "{}", v.line);
        assert!(
            v.line
                .contains("NVIDIA_DRIVER_CAPABILITIES=compute,utility,graphics"),
            "{}",
            v.line
        );
        assert!(v.warnings.iter().any(|w| w.contains("without `graphics`")));
        // With graphics granted but no manifest: write the manifest.
        f.nvidia.driver_capabilities = Some("all".into());
        let v = verdict(&f);
        assert!(v.line.contains("nvidia_icd.json"), "{}", v.line);
        assert!(v.line.contains("libGLX_nvidia.so.0"), "{}", v.line);
        assert!(v.warnings.iter().all(|w| !w.contains("without `graphics`")));
    }

    #[test]
    fn nvidia_without_icd_on_a_host_asks_for_the_vulkan_part() {
        let mut f = lavapipe_machine();
        f.nvidia = nvidia_driver(false, None);
        let v = verdict(&f);
        assert!(v.line.contains("libnvidia-gl-550"), "{}", v.line);
        assert!(v.line.contains("VK_DRIVER_FILES"), "{}", v.line);
    }

    #[test]
    fn nvidia_icd_without_its_library() {
        let mut f = lavapipe_machine();
        f.nvidia = nvidia_driver(true, None);
        f.icds.push(nvidia_icd(false));
        let v = verdict(&f);
        assert!(
            v.line
                .contains("names libGLX_nvidia.so.0, which is not installed"),
            "{}",
            v.line
        );
        assert!(v.line.contains("NVIDIA_DRIVER_CAPABILITIES"), "{}", v.line);
        // On a host: install the matching libnvidia-gl.
        f.nvidia.in_container = false;
        assert!(verdict(&f).line.contains("libnvidia-gl-550"));
    }

    #[test]
    fn nvidia_icd_fine_but_no_adapter_points_at_the_device_nodes() {
        let mut f = lavapipe_machine();
        f.nvidia = nvidia_driver(false, None);
        f.icds.push(nvidia_icd(true));
        let v = verdict(&f);
        assert!(v.line.contains("found no NVIDIA adapter"), "{}", v.line);
        assert!(v.line.contains("/dev/nvidia0"), "{}", v.line);
    }

    #[test]
    fn warns_about_two_manifests_for_one_driver() {
        let mut f = lavapipe_machine();
        f.nvidia = nvidia_driver(true, Some("all"));
        f.icds.push(nvidia_icd(true));
        let mut second = nvidia_icd(true);
        second.path = "/etc/vulkan/icd.d/nvidia_icd.json".into();
        f.icds.push(second);
        f.adapters = vec![h100(1), h100(2)];
        let v = verdict(&f);
        assert!(v.ready);
        assert!(
            v.warnings
                .iter()
                .any(|w| w.contains("more than one ICD manifest")),
            "{:?}",
            v.warnings
        );
        assert!(verdict(&lavapipe_machine()).warnings.is_empty());
    }

    #[test]
    fn wgpu_backend_without_vulkan_is_the_reason() {
        let mut f = lavapipe_machine();
        f.wgpu_backend = Some("gl".into());
        let v = verdict(&f);
        assert!(v.line.contains("unset WGPU_BACKEND"), "{}", v.line);
    }

    #[test]
    fn text_report_has_every_section() {
        let f = lavapipe_machine();
        let v = verdict(&f);
        let text = render_text(&f, &v);
        for needle in [
            "Vulkan loader",
            "libvulkan.so.1: /lib/x86_64-linux-gnu/libvulkan.so.1",
            "lvp_icd.x86_64.json  [software]",
            "NVIDIA",
            "Adapters",
            "1 gpu    llvmpipe",
            "verdict: CPU only: ",
        ] {
            assert!(text.contains(needle), "{needle:?} missing from:\n{text}");
        }
    }
}
