//! Colour for a person at a terminal: accepted green, rejected red, stale yellow, blocks bold.
//! Off with `--no-color` or `NO_COLOR` (no-color.org), and never in files or pipes.

use std::io::IsTerminal;

/// How a line is painted on a terminal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Paint {
    None,
    Good,
    Bad,
    Warn,
    Block,
}

impl Paint {
    /// `text` in this paint's SGR colour (reset after it).
    pub fn wrap(self, text: &str) -> String {
        let code = match self {
            Paint::None => return text.to_owned(),
            Paint::Good => "32",
            Paint::Bad => "31",
            Paint::Warn => "33",
            Paint::Block => "1;32",
        };
        format!("\x1b[{code}m{text}\x1b[0m")
    }
}

/// Whether to colour: stderr is a terminal, `--no-color` was not given and `NO_COLOR` is unset
/// or empty (the convention: any non-empty value turns colour off).
pub fn colour_wanted(no_color_flag: bool) -> bool {
    let env_says_no = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    !no_color_flag && !env_says_no && std::io::stderr().is_terminal()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paints_wrap_and_reset() {
        assert_eq!(Paint::None.wrap("x"), "x");
        assert_eq!(Paint::Good.wrap("ok"), "\x1b[32mok\x1b[0m");
        assert_eq!(Paint::Bad.wrap("no"), "\x1b[31mno\x1b[0m");
    }
}
