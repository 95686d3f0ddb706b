//! The `wgminer` binary: parse the command line, run the command, map failures to exit codes
//! (2 for bad usage, 1 for everything else).

mod cli;

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use clap::Parser;
use cli::{BackendChoice, BenchArgs, Cli, Command, DevicesArgs};
use wgminer::backend::{Backend, CpuBackend, DeviceInfo};
use wgminer::bench::{self, format_rate};

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("WGMINER_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Bench(args) => run_bench(&args),
        Command::Devices(args) => run_devices(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run_bench(args: &BenchArgs) -> anyhow::Result<()> {
    let mut backends: Vec<Box<dyn Backend>> = Vec::new();
    let mut details = Vec::new();
    match args.backend {
        BackendChoice::Cpu => {
            let cpu = CpuBackend::new(args.threads.map(|t| t as usize), args.cpu_path)?;
            details.push(format!("{} threads, {} path", cpu.threads(), cpu.path()));
            backends.push(Box::new(cpu));
        }
    }
    let live = std::io::stderr().is_terminal() && !args.json;
    let mut results = Vec::new();
    for backend in backends.iter_mut() {
        let label = backend.label();
        let result = bench::run(backend.as_mut(), args.seconds, |hashes, secs| {
            if live {
                eprint!(
                    "\r{label}: {:>5.1}/{:.0} s  {}   ",
                    secs,
                    args.seconds,
                    format_rate(hashes as f64 / secs.max(1e-9))
                );
                let _ = std::io::stderr().flush();
            }
        })?;
        if live {
            eprint!("\r\x1b[2K");
        }
        results.push(result);
    }
    if args.json {
        let rows: Vec<_> = results
            .iter()
            .zip(&details)
            .map(|(r, d)| {
                serde_json::json!({
                    "backend": r.backend, "detail": d, "hashes": r.hashes, "seconds": r.seconds,
                    "hashes_per_second": r.hashes_per_second, "hits": r.hits,
                    "hardware_errors": r.hardware_errors,
                })
            })
            .collect();
        let total: f64 = results.iter().map(|r| r.hashes_per_second).sum();
        println!("{}", serde_json::json!({ "devices": rows, "total_hashes_per_second": total }));
    } else {
        println!("{:<8} {:<28} {:>14} {:>16} {:>8} {:>5} {:>7}", "backend", "detail", "rate", "hashes", "seconds", "hits", "hw-err");
        for (r, d) in results.iter().zip(&details) {
            println!(
                "{:<8} {:<28} {:>14} {:>16} {:>8.2} {:>5} {:>7}",
                r.backend,
                d,
                format_rate(r.hashes_per_second),
                r.hashes,
                r.seconds,
                r.hits,
                r.hardware_errors
            );
        }
    }
    Ok(())
}

fn run_devices(args: &DevicesArgs) -> anyhow::Result<()> {
    let cpu = CpuBackend::new(None, None)?;
    let devices: Vec<DeviceInfo> = vec![cpu.device_info()];
    if args.json {
        println!("{}", serde_json::to_string_pretty(&devices)?);
    } else {
        println!("{:<5} {:<5} {:<40} detail", "index", "kind", "name");
        for d in &devices {
            println!("{:<5} {:<5} {:<40} {}", d.index, d.kind, d.name, d.detail);
        }
    }
    Ok(())
}
