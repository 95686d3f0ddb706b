//! One module per run mode, each carrying out its part of the [`RunPlan`]. The mining modes
//! share their plumbing through [`crate::app::runtime`], never through each other.

mod bench;
mod config;
mod core;
mod devices;
mod embedded;
mod node;
mod node_only;
mod pool;
mod solo;

use crate::app::plan::RunPlan;

/// Do what the plan says.
pub fn run(plan: RunPlan) -> anyhow::Result<()> {
    match plan {
        RunPlan::Pool(p) => pool::run(p),
        RunPlan::Node(p) => node::run(p),
        RunPlan::Embedded(p) => embedded::run(p),
        RunPlan::NodeOnly(p) => node_only::run(p),
        RunPlan::Bench(p) => bench::run(&p),
        RunPlan::Devices { json } => devices::run(json),
        RunPlan::Doctor { json, strict } => crate::app::doctor::run(json, strict),
        RunPlan::ConfigExample => {
            config::example();
            Ok(())
        }
        RunPlan::ConfigShow(settings) => {
            config::show(&settings);
            Ok(())
        }
    }
}
