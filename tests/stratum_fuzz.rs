//! Property-based fuzzing (proptest) of everything a pool's bytes reach before the miner trusts
//! them: the line codec, the message parser and the session state machine. The property is the
//! one the brief asks for: no input panics, and the codec never buffers more than its limit.
//! Inputs mix arbitrary bytes with mutations of real lines from tests/data/stratum.json, so the
//! parser's deeper paths (notify, set_difficulty, responses) are reached, not just "not JSON".

use proptest::prelude::*;
use wgminer::stratum::codec::LineDecoder;
use wgminer::stratum::{parse_line, Session, SessionConfig};

/// Real server and client lines from the recorded sessions.
fn real_lines() -> Vec<String> {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/stratum.json"
    ))
    .expect("tests/data/stratum.json");
    let json: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
    json.as_array()
        .expect("array of vectors")
        .iter()
        .flat_map(|v| v["messages"].as_array().cloned().unwrap_or_default())
        .filter_map(|m| m.as_str().map(str::to_owned))
        .collect()
}

/// A real line with a few bytes replaced, inserted or cut.
fn mutated_line() -> impl Strategy<Value = Vec<u8>> {
    let lines = real_lines();
    (
        0..lines.len(),
        prop::collection::vec((any::<usize>(), any::<u8>(), 0u8..3), 0..6),
    )
        .prop_map(move |(i, edits)| {
            let mut bytes = lines[i].clone().into_bytes();
            for (pos, byte, op) in edits {
                let at = pos % (bytes.len() + 1);
                match op {
                    0 if at < bytes.len() => bytes[at] = byte,
                    1 => bytes.insert(at, byte),
                    _ => bytes.truncate(at),
                }
            }
            bytes
        })
}

fn any_line() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..300),
        mutated_line(),
        "[ -~]{0,200}".prop_map(String::into_bytes),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn parser_never_panics(line in any_line()) {
        let _ = parse_line(&line);
    }

    #[test]
    fn session_never_panics(lines in prop::collection::vec(any_line(), 1..12)) {
        let mut session = Session::new(SessionConfig::new("user.worker", "x"));
        session.connection_opened();
        for line in &lines {
            let _ = session.handle_line(line);
            let _ = session.take_outgoing();
        }
        session.connection_lost();
        let _ = session.reset();
    }

    #[test]
    fn codec_stays_bounded(chunks in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..2048), 1..20)) {
        const LIMIT: usize = 4096;
        let mut decoder = LineDecoder::new(LIMIT);
        for chunk in &chunks {
            decoder.extend(chunk);
            // Drain as the client does: until nothing is complete. A bad line (invalid UTF-8) is
            // an error for that line only; an over-long one switches the decoder to discarding.
            loop {
                match decoder.next_line() {
                    Ok(Some(line)) => prop_assert!(line.len() <= LIMIT),
                    Ok(None) => break,
                    Err(e) if e.is_fatal() => break,
                    Err(_) => continue,
                }
            }
            // Whatever arrives, the decoder never holds much more than a line and a read.
            prop_assert!(decoder.buffered() <= LIMIT + 2048 + 1);
        }
    }
}
