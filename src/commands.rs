//! The `bench` and `devices` commands: build the selected backends, run each device on its own
//! thread (all at once, so `--backend all` measures the machine as it would mine), and print a
//! table or JSON.

use std::fmt::Write as _;
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use wgminer::backend::gpu::{GpuBackend, GpuTuning};
use wgminer::backend::Backend;
use wgminer::bench::{self, format_rate, BenchResult, RateSample};

use crate::cli::{BenchArgs, DevicesArgs};
use crate::mine::{write_to, Stream};
use crate::select::{Device, Inventory, UsageError};

/// One device's benchmark figures and how it was configured.
struct Measured {
    result: BenchResult,
    kind: &'static str,
    name: String,
    detail: String,
    gpu: Option<GpuTuning>,
    /// The rate at a fixed interval (`--plot`, and `samples` in `--json`).
    samples: Vec<RateSample>,
}

pub fn run_bench(args: &BenchArgs) -> anyhow::Result<()> {
    // A plot that cannot be drawn is refused before the devices run; one that cannot be
    // written fails after the results are printed.
    check_plot_args(args)?;
    // A CPU-only bench never touches wgpu (no Vulkan loader, no driver probing).
    let inventory = if Inventory::cpu_only(args.backend, &args.select) {
        Inventory::cpu()?
    } else {
        Inventory::scan()?
    };
    let devices = inventory.select(args.backend, &args.select)?;
    if let Some(probe) = args.gpu.gpu_kernel.and_then(|k| k.probe.suffix()) {
        if devices.iter().any(|d| matches!(d, Device::Gpu(_))) {
            tracing::warn!(
                "the GPU kernel is the '{probe}' PROBE: its hashes are wrong on purpose, hits \
                 are hardware errors, only the rate means anything"
            );
        }
    }
    let live = std::io::stderr().is_terminal() && !args.json;
    let progress: Arc<Vec<AtomicU64>> =
        Arc::new(devices.iter().map(|_| AtomicU64::new(0)).collect());
    let finished = Arc::new(AtomicBool::new(false));

    let results = std::thread::scope(|scope| {
        let workers: Vec<_> = devices
            .iter()
            .enumerate()
            .map(|(i, device)| {
                let progress = Arc::clone(&progress);
                let device = device.clone();
                scope.spawn(move || {
                    bench_device(args, device, |hashes| {
                        progress[i].store(hashes, Ordering::Relaxed)
                    })
                })
            })
            .collect();
        if live {
            let started = Instant::now();
            let (progress, finished) = (&progress, &finished);
            scope.spawn(move || {
                while !finished.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(250));
                    let secs = started.elapsed().as_secs_f64();
                    let total: u64 = progress.iter().map(|h| h.load(Ordering::Relaxed)).sum();
                    eprint!(
                        "\r{:>5.1}/{:.0} s  {}   ",
                        secs,
                        args.seconds,
                        format_rate(total as f64 / secs.max(1e-9))
                    );
                    let _ = std::io::stderr().flush();
                }
                eprint!("\r\x1b[2K");
            });
        }
        let results: Vec<anyhow::Result<Measured>> = workers
            .into_iter()
            .map(|w| {
                w.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("benchmark thread panicked")))
            })
            .collect();
        finished.store(true, Ordering::Relaxed);
        results
    });
    let results = results.into_iter().collect::<anyhow::Result<Vec<_>>>()?;
    print_bench(&results, args.json);
    if let Some(path) = &args.plot {
        write_plot(path, &results, args, &inventory.cpu.name)?;
    }
    Ok(())
}

/// Seconds between rate samples: `--plot-interval`, or 0.25 s (up to 400 samples a run).
fn sample_interval(args: &BenchArgs) -> f64 {
    args.plot_interval
        .unwrap_or_else(|| (args.seconds / 400.0).max(0.25))
}

/// `--plot` must name an .svg file; `--plot-interval` must leave a sane number of samples.
fn check_plot_args(args: &BenchArgs) -> Result<(), UsageError> {
    if let Some(interval) = args.plot_interval {
        if interval < 0.01 || args.seconds / interval > 100_000.0 {
            return Err(UsageError(format!(
                "--plot-interval {interval} is too short: at least 0.01 s and at most 100000 \
                 samples a run ({} s here)",
                args.seconds
            )));
        }
    }
    let Some(path) = &args.plot else {
        return Ok(());
    };
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("svg") => Ok(()),
        Some("png") => Err(UsageError(format!(
            "--plot {}: PNG needs a rasteriser that wgminer does not include; use .svg (and \
             convert it, e.g. rsvg-convert -o chart.png chart.svg)",
            path.display()
        ))),
        _ => Err(UsageError(format!(
            "--plot {}: the chart is written as SVG, so the file name must end in .svg",
            path.display()
        ))),
    }
}

/// Draw every device's samples (and their total) into `path` as SVG.
fn write_plot(
    path: &std::path::Path,
    results: &[Measured],
    args: &BenchArgs,
    cpu_name: &str,
) -> anyhow::Result<()> {
    let series: Vec<wgminer::plot::Series> = results
        .iter()
        .map(|m| wgminer::plot::Series {
            label: format!("{} · {} ({})", m.result.backend, m.name, m.detail),
            points: m
                .samples
                .iter()
                .map(|s| (s.seconds, s.hashes_per_second))
                .collect(),
        })
        .collect();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let machine = match hostname() {
        Some(host) => format!("{host}: {cpu_name}, {cores} logical CPUs"),
        None => format!("{cpu_name}, {cores} logical CPUs"),
    };
    let title = format!(
        "wgminer bench: hash rate over time\n{machine} · {} · {} s run, a sample every {} s",
        wgminer::plot::utc_timestamp(now),
        args.seconds,
        sample_interval(args)
    );
    let svg = wgminer::plot::rate_chart_svg(&series, &title);
    std::fs::write(path, svg)
        .with_context(|| format!("cannot write the plot to {}", path.display()))?;
    eprintln!("plot written to {}", path.display());
    Ok(())
}

/// This machine's name, where the system says it without a library call.
fn hostname() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
}

fn bench_device(
    args: &BenchArgs,
    device: Device,
    mut progress: impl FnMut(u64),
) -> anyhow::Result<Measured> {
    match device {
        Device::Cpu => {
            let mut cpu = args.cpu.backend()?;
            let detail = format!("{} threads, {} path", cpu.threads(), cpu.path());
            let name = cpu.device_info().name;
            let result = bench::run(&mut cpu, args.seconds, |h, _| progress(h))?;
            Ok(Measured {
                samples: bench::rate_samples(&result.trace, sample_interval(args)),
                result,
                kind: "cpu",
                name,
                detail,
                gpu: None,
            })
        }
        Device::Gpu(adapter) => {
            let options = args.gpu.options_for(&adapter);
            let mut gpu = GpuBackend::new(&adapter, options)
                .with_context(|| format!("GPU {}", adapter.index))?;
            let s = gpu.adapter().clone();
            let result = bench::run(&mut gpu, args.seconds, |h, _| progress(h))
                .with_context(|| format!("benchmarking {} ({})", gpu.label(), s.name))?;
            let detail = format!("{}, {}", s.backend, s.device_type);
            Ok(Measured {
                samples: bench::rate_samples(&result.trace, sample_interval(args)),
                result,
                kind: "gpu",
                name: s.name,
                detail,
                gpu: Some(gpu.tuning()),
            })
        }
    }
}

/// The results, written to stdout in one piece: a reader that closed early (`| head -1`) ends
/// the command quietly instead of panicking in `println!`.
fn print_bench(results: &[Measured], json: bool) {
    write_to(Stream::Out, &bench_text(results, json));
}

fn bench_text(results: &[Measured], json: bool) -> String {
    let mut out = String::new();
    let total: f64 = results.iter().map(|m| m.result.hashes_per_second).sum();
    if json {
        let rows: Vec<_> = results
            .iter()
            .map(|m| {
                let r = &m.result;
                serde_json::json!({
                    "backend": r.backend, "kind": m.kind, "name": m.name, "detail": m.detail,
                    "hashes": r.hashes, "seconds": r.seconds, "hashes_per_second": r.hashes_per_second,
                    "hits": r.hits, "hardware_errors": r.hardware_errors,
                    "kernel": m.gpu.map(|g| g.kernel),
                    "kernel_probe": m.gpu.and_then(|g| g.kernel.probe.suffix()),
                    "workgroup_size": m.gpu.map(|g| g.workgroup_size),
                    "nonces_per_thread": m.gpu.map(|g| g.nonces_per_thread),
                    "dispatch_nonces": m.gpu.map(|g| g.dispatch_nonces),
                    "samples": m.samples,
                })
            })
            .collect();
        let _ = writeln!(
            out,
            "{}",
            serde_json::json!({ "devices": rows, "total_hashes_per_second": total })
        );
        return out;
    }
    let _ = writeln!(
        out,
        "{:<6} {:<34} {:<22} {:>13} {:>14} {:>7} {:>4} {:>6} {:>11} {:>9} {:>10}",
        "device",
        "name",
        "detail",
        "rate",
        "hashes",
        "seconds",
        "hits",
        "hw-err",
        "kernel",
        "wg x npt",
        "dispatch"
    );
    for m in results {
        let r = &m.result;
        let (kernel_name, geometry, dispatch) = match m.gpu {
            Some(g) => (
                g.kernel.to_string(),
                format!("{} x {}", g.workgroup_size, g.nonces_per_thread),
                g.dispatch_nonces.to_string(),
            ),
            None => ("-".into(), "-".into(), "-".into()),
        };
        let _ = writeln!(
            out,
            "{:<6} {:<34} {:<22} {:>13} {:>14} {:>7.2} {:>4} {:>6} {:>11} {:>9} {:>10}",
            r.backend,
            truncate(&m.name, 34),
            m.detail,
            format_rate(r.hashes_per_second),
            r.hashes,
            r.seconds,
            r.hits,
            r.hardware_errors,
            kernel_name,
            geometry,
            dispatch
        );
    }
    if results.len() > 1 {
        let _ = writeln!(
            out,
            "{:<6} {:<34} {:<22} {:>13}",
            "total",
            "",
            "",
            format_rate(total)
        );
    }
    out
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        s.chars().take(n - 1).chain(std::iter::once('…')).collect()
    }
}

pub fn run_devices(args: &DevicesArgs) -> anyhow::Result<()> {
    let inventory = Inventory::scan()?;
    let defaults: Vec<usize> = wgminer::backend::gpu::default_selection(&inventory.gpus, false)
        .iter()
        .map(|g| g.index)
        .collect();
    if args.json {
        let mut rows = vec![serde_json::json!({
            "index": 0, "kind": "cpu", "name": inventory.cpu.name, "detail": inventory.cpu.detail,
            "default": true,
        })];
        for g in &inventory.gpus {
            let d = g.device_info();
            let s = g.summary();
            rows.push(serde_json::json!({
                "index": d.index, "kind": d.kind, "name": d.name, "detail": d.detail,
                "backend": s.backend, "device_type": s.device_type, "driver": s.driver,
                "driver_info": s.driver_info, "software": s.software,
                "default": defaults.contains(&g.index),
            }));
        }
        write_to(
            Stream::Out,
            &format!("{}\n", serde_json::to_string_pretty(&rows)?),
        );
        return Ok(());
    }
    // One write at the end (see print_bench).
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<5} {:<4} {:<40} {:<7} {:<10} {:<8} driver",
        "index", "kind", "name", "api", "type", "default"
    );
    let _ = writeln!(
        out,
        "{:<5} {:<4} {:<40} {:<7} {:<10} {:<8} {}",
        0,
        "cpu",
        truncate(&inventory.cpu.name, 40),
        "-",
        "cpu",
        "yes",
        inventory.cpu.detail
    );
    for g in &inventory.gpus {
        let s = g.summary();
        let _ = writeln!(
            out,
            "{:<5} {:<4} {:<40} {:<7} {:<10} {:<8} {} {}",
            s.index,
            "gpu",
            truncate(&s.name, 40),
            s.backend,
            s.device_type,
            if defaults.contains(&g.index) {
                "yes"
            } else {
                "no"
            },
            s.driver,
            s.driver_info
        );
    }
    if inventory.gpus.is_empty() {
        let _ = writeln!(
            out,
            "(no GPU adapter found: {})",
            wgminer::backend::gpu::GpuError::NoAdapter
        );
    }
    write_to(Stream::Out, &out);
    Ok(())
}
