//! The doctor's judgement: from the gathered facts to a [`Verdict`] (ready or not, the most
//! likely reason and fix, warnings) and a note per adapter. Pure functions, unit-tested on
//! made-up machines.

use serde::Serialize;

use super::facts::*;
use super::parse::capabilities_include_graphics;
use super::{LOADER, NVIDIA_ICD_JSON, VENDOR_NVIDIA};

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

/// Whether a `WGPU_BACKEND` value lets wgpu search Vulkan.
pub fn backend_var_allows_vulkan(value: &str) -> bool {
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
fn warnings(f: &Facts) -> Vec<String> {
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
pub fn verdict(f: &Facts) -> Verdict {
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
fn diagnose(f: &Facts) -> (String, String) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::doctor::fixtures::*;

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
}
