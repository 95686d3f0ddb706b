//! Made-up machines for the doctor's unit tests: a lavapipe-only box, an H100 host, NVIDIA's
//! driver in and out of containers.

use super::facts::*;
use super::VENDOR_NVIDIA;

pub fn lvp_icd() -> IcdFinding {
    IcdFinding {
        path: "/usr/share/vulkan/icd.d/lvp_icd.x86_64.json".into(),
        library_path: Some("/usr/lib/x86_64-linux-gnu/libvulkan_lvp.so".into()),
        library_found: Some("/usr/lib/x86_64-linux-gnu/libvulkan_lvp.so".into()),
        api_version: Some("1.1.230".into()),
        kind: IcdKind::Software,
        error: None,
    }
}

pub fn nvidia_icd(found: bool) -> IcdFinding {
    IcdFinding {
        path: "/usr/share/vulkan/icd.d/nvidia_icd.json".into(),
        library_path: Some("libGLX_nvidia.so.0".into()),
        library_found: found.then(|| "/usr/lib/x86_64-linux-gnu/libGLX_nvidia.so.0".into()),
        api_version: Some("1.3".into()),
        kind: IcdKind::Nvidia,
        error: None,
    }
}

pub fn llvmpipe(index: usize) -> AdapterFinding {
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

pub fn h100(index: usize) -> AdapterFinding {
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

pub fn nvidia_driver(in_container: bool, caps: Option<&str>) -> NvidiaFinding {
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
pub fn lavapipe_machine() -> Facts {
    Facts {
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
