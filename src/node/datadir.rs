//! Where wgminer keeps its data when the user names no directory: each platform's usual place
//! for an application's data, found from the environment alone (no extra crate).

use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// The directory the regtest chain lives in, under a data directory.
pub const REGTEST_SUBDIR: &str = "regtest";

/// The folder, under a data directory, where a valid block that could not be stored or delivered
/// is written as `<height>-<hash>.hex` (by the miner, and by the SV2 Template Provider, whose
/// client cannot be told to send it again).
pub const UNSUBMITTED_BLOCKS: &str = "unsubmitted-blocks";

/// The default data directory: `$XDG_DATA_HOME/wgminer` or `$HOME/.local/share/wgminer` on
/// Linux and other Unixes, `$HOME/Library/Application Support/wgminer` on macOS,
/// `%APPDATA%\wgminer` on Windows. `None` when the environment names no home (the user must
/// then give a directory).
pub fn default_data_dir() -> Option<PathBuf> {
    let var = |name: &str| std::env::var_os(name);
    data_dir_from(var("XDG_DATA_HOME"), var("HOME"), var("APPDATA"))
}

/// Where the node core's chain (and its payout key) live under `data_dir`.
pub fn chain_dir(data_dir: &Path) -> PathBuf {
    data_dir.join(REGTEST_SUBDIR)
}

/// [`default_data_dir`] from given variables, so the rule is testable without touching the
/// process environment. Relative or empty values are ignored, as the XDG spec says.
fn data_dir_from(
    xdg_data_home: Option<OsString>,
    home: Option<OsString>,
    appdata: Option<OsString>,
) -> Option<PathBuf> {
    let absolute = |v: Option<OsString>| v.map(PathBuf::from).filter(|p| p.is_absolute());
    if cfg!(windows) {
        return absolute(appdata).map(|p| p.join("wgminer"));
    }
    if cfg!(target_os = "macos") {
        return absolute(home).map(|h| h.join("Library/Application Support/wgminer"));
    }
    absolute(xdg_data_home)
        .or_else(|| absolute(home).map(|h| h.join(".local/share")))
        .map(|p| p.join("wgminer"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(all(unix, not(target_os = "macos")))]
    #[test]
    fn xdg_then_home() {
        let s = |v: &str| Some(OsString::from(v));
        assert_eq!(
            data_dir_from(s("/x/data"), s("/home/u"), None),
            Some(PathBuf::from("/x/data/wgminer"))
        );
        assert_eq!(
            data_dir_from(s("relative"), s("/home/u"), None),
            Some(PathBuf::from("/home/u/.local/share/wgminer"))
        );
        assert_eq!(
            data_dir_from(None, s("/home/u"), None),
            Some(PathBuf::from("/home/u/.local/share/wgminer"))
        );
        assert_eq!(data_dir_from(None, None, None), None);
        assert_eq!(data_dir_from(s(""), s(""), None), None);
        assert_eq!(
            chain_dir(Path::new("/d")),
            PathBuf::from("/d").join("regtest")
        );
    }
}
