//! Errors and exit codes in one place: a [`UsageError`] (bad flags, config or environment) exits
//! 2, every other failure 1, and either is printed as one line, `error: …` with its causes.

use std::process::ExitCode;

/// Bad input from the user: the run exits with code 2 and prints the message.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// The exit code for a run's result, printing the error if there is one.
pub fn exit_code(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", error_text(&e));
            if e.downcast_ref::<UsageError>().is_some() {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

/// The error and its causes on one line, each cause only if the message does not already say
/// it (many of our errors include their source's text).
pub fn error_text(e: &anyhow::Error) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causes_join_on_one_line_without_repeats() {
        let e = anyhow::anyhow!("inner").context("outer");
        assert_eq!(error_text(&e), "outer: inner");
        let e = anyhow::anyhow!("inner").context("outer: inner");
        assert_eq!(error_text(&e), "outer: inner");
    }
}
