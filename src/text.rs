//! Text from peers made safe to print. A pool's or a node's words (a message, a reject reason, a
//! job id, a field it sent wrong) reach the terminal and the log; they must not be able to drive
//! the terminal (escape sequences, BEL, carriage returns) nor fill the screen.

/// How many characters of one piece of peer text a line shows.
pub const MAX_PRINTABLE: usize = 500;

/// `text` safe for a terminal: control characters become `?`, and it is cut at
/// [`MAX_PRINTABLE`] characters (an ellipsis says so). JSON output needs none of this: serde
/// escapes it.
pub fn printable(text: &str) -> String {
    printable_cut(text, MAX_PRINTABLE)
}

/// [`printable`], cut at `max` characters.
pub fn printable_cut(text: &str, max: usize) -> String {
    let mut out: String = text
        .chars()
        .take(max)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if text.chars().nth(max).is_some() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_and_length_are_tamed() {
        assert_eq!(printable_cut("a\u{1b}[2Jb\u{7}", 100), "a?[2Jb?");
        assert_eq!(printable_cut("abcdef", 3), "abc…");
        assert_eq!(printable_cut("abc", 3), "abc");
        assert_eq!(
            printable(&"x".repeat(600)).chars().count(),
            MAX_PRINTABLE + 1
        );
    }
}
