//! The doctor's report: the facts and the verdict as text, or as one JSON object.

use super::facts::*;
use super::findings::Verdict;
use super::parse::capabilities_include_graphics;
use super::LOADER;

/// The report as one JSON object: the facts, whether an NVIDIA driver is present, the verdict.
pub fn json(f: &Facts, v: &Verdict) -> anyhow::Result<String> {
    let mut json = serde_json::to_value(f)?;
    json["nvidia"]["present"] = f.nvidia.present().into();
    json["verdict"] = serde_json::to_value(v)?;
    Ok(format!("{}\n", serde_json::to_string_pretty(&json)?))
}

/// The report as text.
pub fn text(f: &Facts, v: &Verdict) -> String {
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

#[cfg(test)]
mod tests {
    use crate::app::doctor::findings::verdict;
    use crate::app::doctor::fixtures::*;
    use crate::app::doctor::render;

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
}
