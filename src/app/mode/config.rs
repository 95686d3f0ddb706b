//! `wgminer config example` and `wgminer config show`: the commented example file, and the
//! settings a run with these flags would use, secrets masked.

use crate::app::config::EXAMPLE;
use crate::app::output::{write_to, Stream};
use crate::app::settings::Settings;

pub fn example() {
    write_to(Stream::Out, EXAMPLE);
}

pub fn show(settings: &Settings) {
    write_to(Stream::Out, &settings.to_toml());
}
