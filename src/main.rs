//! The `wgminer` binary: parse the command line, run the command (or mine on a pool with `-o`),
//! map failures to exit codes (2 for bad usage, 1 for everything else).

mod cli;
mod commands;
mod config;
mod doctor;
mod mine;
mod select;
mod solo;

use std::process::ExitCode;

use clap::Parser;
use cli::{Cli, Command, ConfigCommand};

/// Mesa's Vulkan device-select layer only reorders devices (wgminer numbers and picks them
/// itself), and probing Wayland it prints a misleading `error: XDG_RUNTIME_DIR is invalid ...`
/// line wherever no session runs. `NODEVICE_SELECT=1` turns the layer off; a value the user set
/// is kept. Runs first in `main`, before any thread exists or wgpu is touched.
fn quiet_device_select() {
    if std::env::var_os("NODEVICE_SELECT").is_none() {
        // SAFETY (set_var is unsafe from the 2024 edition): no other thread exists yet.
        std::env::set_var("NODEVICE_SELECT", "1");
    }
}

fn main() -> ExitCode {
    quiet_device_select();
    let mut cli = Cli::parse();
    let level = match configure(&mut cli) {
        Ok(level) => level,
        Err(e) => return fail(&e),
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("WGMINER_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&level)),
        )
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal, not in files and pipes.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let result = match cli.command {
        Some(Command::Bench(args)) => commands::run_bench(&args),
        Some(Command::Devices(args)) => commands::run_devices(&args),
        Some(Command::Doctor(args)) => doctor::run_doctor(&args),
        Some(Command::Node(args)) => solo::run_node_server(&args),
        // Output goes through mine::write_to: a reader that closed early ends the command
        // quietly, where println! panics.
        Some(Command::Config(ConfigCommand::Example)) => {
            mine::write_to(mine::Stream::Out, config::EXAMPLE);
            Ok(())
        }
        Some(Command::Config(ConfigCommand::Show(args))) => {
            mine::write_to(mine::Stream::Out, &config::effective(&args, &level));
            Ok(())
        }
        None => mine::run_mine(&cli.mine),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

/// Merge the configuration file (if any) into the mining flags; the log level to use
/// (`WGMINER_LOG`, else the file's, else warn).
fn configure(cli: &mut Cli) -> anyhow::Result<String> {
    let args = match &mut cli.command {
        None => &mut cli.mine,
        Some(Command::Config(ConfigCommand::Show(args))) => args,
        _ => return Ok(log_level(None)),
    };
    let Some(path) = args.config.clone() else {
        return Ok(log_level(None));
    };
    let file = config::load(&path)?;
    config::apply(args, &file);
    Ok(log_level(file.log.level.map(|l| l.0)))
}

fn log_level(from_file: Option<String>) -> String {
    std::env::var("WGMINER_LOG")
        .ok()
        .or(from_file)
        .unwrap_or_else(|| "warn".into())
}

fn fail(e: &anyhow::Error) -> ExitCode {
    eprintln!("error: {}", error_text(e));
    if e.downcast_ref::<select::UsageError>().is_some() {
        ExitCode::from(2)
    } else {
        ExitCode::FAILURE
    }
}

/// The error and its causes on one line, each cause only if the message does not already say
/// it (many of our errors include their source's text).
fn error_text(e: &anyhow::Error) -> String {
    let mut text = e.to_string();
    for cause in e.chain().skip(1) {
        let c = cause.to_string();
        if !text.contains(&c) {
            text.push_str(": ");
            text.push_str(&c);
        }
    }
    text
}
