//! Pure parsers of what the doctor's probes read: ICD manifests, the ld.so cache listing,
//! NVIDIA's driver version, path lists and capability strings.

use std::path::{Path, PathBuf};

use super::facts::*;

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
pub fn ldconfig_arch_tag() -> Option<&'static str> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::doctor::findings::backend_var_allows_vulkan;
    use crate::app::doctor::NVIDIA_ICD_JSON;

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
}
