//! The `bench` and `devices` commands: build the selected backends, run each device on its own
//! thread (all at once, so `--backend all` measures the machine as it would mine), and print a
//! table or JSON.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use wgminer::backend::gpu::{kernel, GpuBackend, GpuTuning};
use wgminer::backend::Backend;
use wgminer::bench::{self, format_rate, BenchResult};

use crate::cli::{BenchArgs, DevicesArgs};
use crate::select::{Device, Inventory};

/// One device's benchmark figures and how it was configured.
struct Measured {
    result: BenchResult,
    kind: &'static str,
    name: String,
    detail: String,
    gpu: Option<GpuTuning>,
}

pub fn run_bench(args: &BenchArgs) -> anyhow::Result<()> {
    // A CPU-only bench never touches wgpu (no Vulkan loader, no driver probing).
    let inventory = if Inventory::cpu_only(args.backend, &args.select) {
        Inventory::cpu()?
    } else {
        Inventory::scan()?
    };
    let devices = inventory.select(args.backend, &args.select)?;
    if let Some(probe) = kernel::PROBE {
        if devices.iter().any(|d| matches!(d, Device::Gpu(_))) {
            tracing::warn!(
                "this binary's GPU kernel is the '{probe}' PROBE (WGMINER_KERNEL_PROBE at build \
                 time): its hashes are wrong on purpose, hits are hardware errors, only the rate \
                 means anything"
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
    Ok(())
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
                result,
                kind: "gpu",
                name: s.name,
                detail,
                gpu: Some(gpu.tuning()),
            })
        }
    }
}

fn print_bench(results: &[Measured], json: bool) {
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
                    "kernel_probe": m.gpu.and(kernel::PROBE),
                    "workgroup_size": m.gpu.map(|g| g.workgroup_size),
                    "nonces_per_thread": m.gpu.map(|g| g.nonces_per_thread),
                    "dispatch_nonces": m.gpu.map(|g| g.dispatch_nonces),
                })
            })
            .collect();
        println!(
            "{}",
            serde_json::json!({ "devices": rows, "total_hashes_per_second": total })
        );
        return;
    }
    println!(
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
                match kernel::PROBE {
                    Some(probe) => format!("{}+{probe}", g.kernel),
                    None => g.kernel.to_string(),
                },
                format!("{} x {}", g.workgroup_size, g.nonces_per_thread),
                g.dispatch_nonces.to_string(),
            ),
            None => ("-".into(), "-".into(), "-".into()),
        };
        println!(
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
        println!(
            "{:<6} {:<34} {:<22} {:>13}",
            "total",
            "",
            "",
            format_rate(total)
        );
    }
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
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    println!(
        "{:<5} {:<4} {:<40} {:<7} {:<10} {:<8} driver",
        "index", "kind", "name", "api", "type", "default"
    );
    println!(
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
        println!(
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
        println!(
            "(no GPU adapter found: {})",
            wgminer::backend::gpu::GpuError::NoAdapter
        );
    }
    Ok(())
}
