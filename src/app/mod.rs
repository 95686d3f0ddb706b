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

/// Plan the run, start logging at the planned level, and run it.
pub fn run(cli: cli::Cli) -> anyhow::Result<()> {
    let plan = plan::plan(cli)?;
    init_logging(&plan.log_level);
    mode::run(plan.run)?;
    runtime::restart_if_asked()
}

/// Log lines (tracing) on stderr: `WGMINER_LOG`, else the planned level.
fn init_logging(level: &str) {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("WGMINER_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level)),
        )
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal, not in files and pipes.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}
