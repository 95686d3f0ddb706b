//! `wgminer bench`: open the selected devices, run each on its own thread (all at once, so
//! `--backend all` measures the machine as it would mine), print a table or JSON, and draw
//! the rates over time with `--plot`.

use std::fmt::Write as _;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use wgminer::backend::gpu::GpuTuning;
use wgminer::bench::{self, format_rate, BenchResult, RateSample};

use crate::app::devices::{AnyBackend, Device, Inventory};
use crate::app::output::{truncate, write_to, Stream};
use crate::app::plan::BenchPlan;

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

pub fn run(args: &BenchPlan) -> anyhow::Result<()> {
    // A plot that cannot be drawn was refused by the plan; one that cannot be written fails
    // after the results are printed.
    // A CPU-only bench never touches wgpu (no Vulkan loader, no driver probing).
    let inventory = if Inventory::cpu_only(&args.devices) {
        Inventory::cpu()?
    } else {
        Inventory::scan()?
    };
    let devices = inventory.select(&args.devices)?;
    if let Some(probe) = args.devices.gpu.kernel.and_then(|k| k.probe.suffix()) {
        if devices.iter().any(Device::is_gpu) {
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
                    let rate = format_rate(total as f64 / secs.max(1e-9));
                    let line = format!("\r{secs:>5.1}/{:.0} s  {rate}   ", args.seconds);
                    write_to(Stream::Err, &line);
                }
                write_to(Stream::Err, "\r\x1b[2K");
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

/// Draw every device's samples (and their total) into `path` as SVG.
fn write_plot(
    path: &std::path::Path,
    results: &[Measured],
    args: &BenchPlan,
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
        args.sample_interval
    );
    let svg = wgminer::plot::rate_chart_svg(&series, &title);
    std::fs::write(path, svg)
        .with_context(|| format!("cannot write the plot to {}", path.display()))?;
    write_to(
        Stream::Err,
        &format!("plot written to {}\n", path.display()),
    );
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
    args: &BenchPlan,
    device: Device,
    mut progress: impl FnMut(u64),
) -> anyhow::Result<Measured> {
    let mut engine = AnyBackend::open(&device, &args.devices)?;
    let (name, detail) = (engine.name(), engine.detail());
    let label = engine.backend_mut().label();
    let result = bench::run(engine.backend_mut(), args.seconds, |h, _| progress(h))
        .with_context(|| format!("benchmarking {label} ({name})"))?;
    Ok(Measured {
        samples: bench::rate_samples(&result.trace, args.sample_interval),
        result,
        kind: engine.kind(),
        name,
        detail,
        gpu: engine.tuning(),
    })
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
