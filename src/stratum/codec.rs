//! Newline framing for Stratum V1: bytes from the socket in, one line at a time out.
//!
//! Stratum V1 is one JSON object per `\n`-terminated line (slush's original description); some
//! pools end lines with `\r\n`, so a trailing `\r` is dropped. Like mini-redis's `Connection`, an
//! incomplete line is `Ok(None)`, not an error: the caller reads more bytes and asks again.
//!
//! The decoder never holds more than the line limit plus one read's worth of bytes: a line that
//! grows past [`MAX_LINE_LEN`](super::MAX_LINE_LEN) without a newline is reported at once and its
//! bytes are discarded up to the next newline, so a hostile or broken pool cannot make the miner
//! buffer megabytes. The client treats that error as fatal for the connection. Invalid UTF-8
//! costs only the line it is in.
//!
//! Pure: no I/O, no tokio.

use std::collections::VecDeque;

/// Why a line could not be framed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// The line passed the limit; the connection should be dropped.
    #[error("line of at least {len} bytes is over the {limit}-byte limit")]
    LineTooLong { len: usize, limit: usize },
    /// The line was not UTF-8; only this line is lost.
    #[error("line is not UTF-8")]
    NotUtf8,
}

impl CodecError {
    /// Whether the connection can go on after this error.
    pub fn is_fatal(&self) -> bool {
        matches!(self, CodecError::LineTooLong { .. })
    }
}

/// Splits a byte stream into lines of at most `max_len` bytes (newline and `\r` excluded).
#[derive(Debug)]
pub struct LineDecoder {
    buf: VecDeque<u8>,
    /// How far `buf` has been searched for a newline, so a slowly arriving long line is scanned
    /// once, not once per read.
    scanned: usize,
    max_len: usize,
    /// After an over-long line: drop bytes until the next newline.
    discarding: bool,
}

impl LineDecoder {
    pub fn new(max_len: usize) -> Self {
        LineDecoder {
            buf: VecDeque::new(),
            scanned: 0,
            max_len,
            discarding: false,
        }
    }

    /// Bytes currently held (for tests and diagnostics: it stays near `max_len` at most).
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Add bytes read from the connection. Call [`LineDecoder::next_line`] until it returns
    /// `Ok(None)` before adding more, or the buffer grows by every read.
    pub fn extend(&mut self, bytes: &[u8]) {
        let bytes = if self.discarding {
            match bytes.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    self.discarding = false;
                    &bytes[i + 1..]
                }
                None => return,
            }
        } else {
            bytes
        };
        self.buf.extend(bytes);
    }

    /// The next complete line, `Ok(None)` if none is complete yet.
    ///
    /// Blank lines are skipped (some pools send a bare `\n` as a keepalive).
    pub fn next_line(&mut self) -> Result<Option<String>, CodecError> {
        loop {
            let newline = self
                .buf
                .iter()
                .skip(self.scanned)
                .position(|&b| b == b'\n')
                .map(|i| i + self.scanned);
            let Some(end) = newline else {
                self.scanned = self.buf.len();
                if self.buf.len() > self.max_len {
                    let len = self.buf.len();
                    self.buf.clear();
                    self.scanned = 0;
                    self.discarding = true;
                    return Err(CodecError::LineTooLong {
                        len,
                        limit: self.max_len,
                    });
                }
                return Ok(None);
            };
            let mut line: Vec<u8> = self.buf.drain(..=end).collect();
            self.scanned = 0;
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            if line.len() > self.max_len {
                return Err(CodecError::LineTooLong {
                    len: line.len(),
                    limit: self.max_len,
                });
            }
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            return String::from_utf8(line)
                .map(Some)
                .map_err(|_| CodecError::NotUtf8);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(d: &mut LineDecoder) -> Vec<Result<String, CodecError>> {
        let mut out = Vec::new();
        loop {
            match d.next_line() {
                Ok(Some(l)) => out.push(Ok(l)),
                Ok(None) => return out,
                Err(e) => out.push(Err(e)),
            }
        }
    }

    #[test]
    fn splits_lines_across_reads_and_tolerates_crlf() {
        let mut d = LineDecoder::new(64);
        d.extend(b"{\"a\":1}\r\n{\"b\"");
        assert_eq!(d.next_line(), Ok(Some("{\"a\":1}".into())));
        assert_eq!(d.next_line(), Ok(None));
        d.extend(b":2}");
        assert_eq!(d.next_line(), Ok(None));
        d.extend(b"\n\n  \r\nx\n");
        assert_eq!(
            lines(&mut d),
            vec![Ok("{\"b\":2}".to_string()), Ok("x".to_string())]
        );
        assert_eq!(d.buffered(), 0);
    }

    #[test]
    fn invalid_utf8_costs_only_its_line() {
        let mut d = LineDecoder::new(64);
        d.extend(b"ok1\n\xff\xfe\nok2\n");
        assert_eq!(
            lines(&mut d),
            vec![
                Ok("ok1".to_string()),
                Err(CodecError::NotUtf8),
                Ok("ok2".to_string())
            ]
        );
    }

    #[test]
    fn long_line_is_an_error_and_memory_stays_bounded() {
        const LIMIT: usize = 1 << 20;
        let mut d = LineDecoder::new(LIMIT);
        let chunk = vec![b'x'; 64 * 1024];
        let mut errors = 0;
        let mut peak = 0;
        // Ten megabytes without a newline, as a hostile pool would send them.
        for _ in 0..160 {
            d.extend(&chunk);
            peak = peak.max(d.buffered());
            match d.next_line() {
                Ok(None) => {}
                Err(e) => {
                    assert!(e.is_fatal());
                    errors += 1;
                }
                Ok(Some(_)) => panic!("no line was complete"),
            }
        }
        assert_eq!(errors, 1, "reported once, then discarded");
        assert!(peak <= LIMIT + chunk.len(), "peak {peak}");
        assert_eq!(d.buffered(), 0);
        // The end of the long line is dropped; what follows is framed again.
        d.extend(b"xxxx\nnext\n");
        assert_eq!(lines(&mut d), vec![Ok("next".to_string())]);
    }

    #[test]
    fn complete_line_over_the_limit_is_an_error() {
        let mut d = LineDecoder::new(4);
        d.extend(b"12345\nok\n");
        assert!(matches!(
            d.next_line(),
            Err(CodecError::LineTooLong { len: 5, limit: 4 })
        ));
        assert_eq!(d.next_line(), Ok(Some("ok".into())));
        // Exactly at the limit is fine, with or without CR.
        d.extend(b"1234\r\n");
        assert_eq!(d.next_line(), Ok(Some("1234".into())));
    }
}
