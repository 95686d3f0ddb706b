//! The doctor's pure parts on made-up machines: parsers, judgement, the text report.

use super::facts::*;
use super::findings::*;
use super::parse::*;
use super::render;
use super::{NVIDIA_ICD_JSON, VENDOR_NVIDIA};
use std::path::{Path, PathBuf};

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
fn lavapipe_machine() -> Facts {
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
    let open = "NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  550.54.15  Release Build";
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
    let text = render::text(&f, &v);
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
