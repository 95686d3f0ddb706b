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
