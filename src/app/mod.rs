//! The application layer of the `wgminer` binary: the command line, environment and config
//! file become one checked [`plan::RunPlan`], which one mode module carries out. Output, device
//! opening, errors and exit codes each live in one module here.

pub mod cli;
mod config;
mod devices;
mod doctor;
pub mod error;
mod mode;
mod output;
mod plan;
mod runtime;
mod settings;

/// Plan the run, open the log file, start logging at the planned level, and run it.
pub fn run(cli: cli::Cli) -> anyhow::Result<()> {
    let plan = plan::plan(cli)?;
    if let Some(path) = &plan.log_file {
        output::logging::open_log_file(path).map_err(|e| {
            error::UsageError(format!("cannot open the log file {}: {e}", path.display()))
        })?;
    }
    output::logging::init(&plan.log_level);
    mode::run(plan.run)?;
    runtime::restart_if_asked()
}
