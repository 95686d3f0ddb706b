//! `wgminer doctor`: why this machine can (or cannot) mine on its GPU, and what to fix.
//!
//! The usual failure on a rented NVIDIA machine: `nvidia-smi` works but wgpu sees no Vulkan
//! adapter, because the Vulkan loader (`libvulkan.so.1`) is missing, or NVIDIA's ICD manifest
//! (`nvidia_icd.json`) is, or the container was started without the `graphics` driver capability
//! (the one that mounts NVIDIA's Vulkan library, `libGLX_nvidia.so.0`). The command gathers
//! [`Facts`](facts::Facts) (files, environment, `nvidia-smi`, wgpu's adapter list: the only I/O, in
//! [`gather`]), judges them into a [`Verdict`](findings::Verdict) with pure functions ([`findings`]), and prints
//! both as text or one JSON object ([`render`]). It exits 0 whenever the report could be made; `--strict` exits 1 when no real GPU
//! is usable.

mod facts;
mod findings;
#[cfg(test)]
mod fixtures;
mod gather;
mod parse;
mod render;

use findings::verdict;

use crate::app::output::{write_to, Stream};

/// The Vulkan loader's soname: what wgpu (through ash) opens.
const LOADER: &str = "libvulkan.so.1";
/// NVIDIA's ICD manifest as the driver installs it; containers with the `graphics` capability
/// get the library it names mounted, not always the manifest.
pub const NVIDIA_ICD_JSON: &str = r#"{"file_format_version":"1.0.0","ICD":{"library_path":"libGLX_nvidia.so.0","api_version":"1.3"}}"#;
/// PCI vendor id of NVIDIA, as wgpu reports it.
const VENDOR_NVIDIA: u32 = 0x10de;

/// `wgminer doctor`: gather, judge, print; with `strict`, fail when no real GPU is usable.
pub fn run(json: bool, strict: bool) -> anyhow::Result<()> {
    let facts = gather::gather()?;
    let v = verdict(&facts);
    let text = if json {
        render::json(&facts, &v)?
    } else {
        render::text(&facts, &v)
    };
    write_to(Stream::Out, &text);
    if strict && !v.ready {
        anyhow::bail!("no real GPU is usable (--strict)");
    }
    Ok(())
}
