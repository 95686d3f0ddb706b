//! `wgminer devices`: every device that can mine, numbered as `--device` takes them (0 is the
//! CPU), with the ones plain mining uses marked; a table or JSON.

use std::fmt::Write as _;

use crate::app::devices::Inventory;
use crate::app::output::{truncate, write_to, Stream};

pub fn run(json: bool) -> anyhow::Result<()> {
    let inventory = Inventory::scan()?;
    // What plain `wgminer` mines on (as `doctor` says): every real GPU, else the CPU alone.
    let defaults = crate::app::devices::mining_default_gpus(&inventory.gpus);
    let cpu_default = defaults.is_empty();
    if json {
        let mut rows = vec![serde_json::json!({
            "index": 0, "kind": "cpu", "name": inventory.cpu.name, "detail": inventory.cpu.detail,
            "default": cpu_default,
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
    // One write at the end (as bench does).
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<5} {:<4} {:<40} {:<7} {:<10} {:<8} detail",
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
        if cpu_default { "yes" } else { "no" },
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
