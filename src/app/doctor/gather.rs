//! The doctor's probes, the only I/O in `doctor`: the dynamic linker's search, the Vulkan ICD
//! manifests, NVIDIA's driver files and `nvidia-smi`, and wgpu's adapters (opening the ones
//! that would mine). Nothing here prints.

use std::collections::HashSet;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use wgminer::backend::gpu::GpuAdapter;

use super::facts::*;
use super::findings::adapter_note;
use super::parse::*;
use super::LOADER;
use crate::app::devices::{gpu_open_error, mining_default_gpus, Inventory};

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

fn gather_adapters(gpus: &[GpuAdapter]) -> Vec<AdapterFinding> {
    let defaults = mining_default_gpus(gpus);
    let mut out: Vec<AdapterFinding> = gpus
        .iter()
        .map(|g| {
            let s = g.summary();
            let used_by_default = defaults.contains(&g.index);
            // Open the real GPUs that would mine: the one test that the driver really works.
            let open_error = if used_by_default && !s.software {
                gpu_open_error(g)
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
pub fn gather() -> anyhow::Result<Facts> {
    let linux = cfg!(target_os = "linux");
    let mut f = Facts {
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
