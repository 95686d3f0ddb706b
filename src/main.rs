//! The `wgminer` binary: parse the command line and hand it to the application layer
//! ([`app`]), which plans and runs it; exit 2 for bad usage, 1 for any other failure.

mod app;

use std::process::ExitCode;

use clap::FromArgMatches;

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
    let matches = app::cli::command().get_matches();
    let cli = app::cli::Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    app::error::exit_code(app::run(cli))
}
