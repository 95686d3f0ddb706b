//! Property-based fuzzing (proptest) of everything a pool's bytes reach before the miner trusts
//! them: the line codec, the message parser and the session state machine. The properties: no
//! input panics, the codec never buffers more than its limit, and whatever the pool sends, every
//! share handed to the session has exactly one accounted fate.
//! Inputs mix arbitrary bytes with mutations of real lines from tests/data/stratum.json, so the
//! parser's deeper paths (notify, set_difficulty, responses) are reached, not just "not JSON".
//!
//! Each target runs a fixed number of inputs from a fixed seed, so a CI run repeats the last one
//! exactly (docs/FUZZING.md): 100,000 lines for the parser (0.5 s in release on the 2-core dev
//! machine), 100,000 sessions of 1 to 11 lines for the session (4.6 s), 100,000 streams for the
//! codec (4.1 s), and 20,000 runs of up to 80 pool and miner actions for the share ledger
//! (3.5 s). `WGMINER_FUZZ_CASES=n` runs n times as many; `WGMINER_FUZZ_SEED` another stream.

use crate::support::fuzz;

use proptest::prelude::*;
use proptest::test_runner::RngSeed;
use wgminer::stratum::codec::LineDecoder;
use wgminer::stratum::{parse_line, Event, Session, SessionConfig, SubmitOutcome};
use wgminer::work::{Extranonce2, Share};

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

/// What the pool and the miner do to a session.
#[derive(Clone, Debug)]
enum Op {
    /// Any line, mostly garbage.
    Line(Vec<u8>),
    /// The pool answers one of our requests still unanswered (the oldest, or now and then
    /// another one picked by `.0`): for a subscribe,
    /// the recorded slush result or one with another extranonce1; else, by `.1`, mostly true,
    /// else false, null or an error.
    Reply(usize, u8),
    /// The recorded slush notify as job `JOB_IDS[.0]`, clean or not.
    Notify(usize, bool),
    /// A share for job `JOB_IDS[.0]` (the last id is never notified).
    Submit(usize),
    Lost,
    /// A new connection, when there is none.
    Opened,
    /// Every held share given up (as at exit without a connection).
    Abandon,
}

const JOB_IDS: [&str; 4] = ["a", "b", "c", "never notified"];

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => any_line().prop_map(Op::Line),
        12 => (any::<usize>(), any::<u8>()).prop_map(|(i, k)| Op::Reply(i, k)),
        4 => (0..JOB_IDS.len() - 1, any::<bool>()).prop_map(|(j, c)| Op::Notify(j, c)),
        8 => (0..JOB_IDS.len()).prop_map(Op::Submit),
        1 => Just(Op::Lost),
        2 => Just(Op::Opened),
        1 => Just(Op::Abandon),
    ]
}

/// The slush session's subscribe result and notify params, from the recorded lines.
fn slush_lines() -> (serde_json::Value, serde_json::Value) {
    let lines: Vec<serde_json::Value> = real_lines()
        .iter()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let subscribe = lines
        .iter()
        .find(|m| m["result"].is_array())
        .map(|m| m["result"].clone())
        .expect("a subscribe result");
    let notify = lines
        .iter()
        .find(|m| m["method"] == "mining.notify")
        .map(|m| m["params"].clone())
        .expect("a notify");
    (subscribe, notify)
}

/// Where the shares handed in are, by replaying the submit outcomes and the events (shares are
/// told apart by their nonce).
#[derive(Debug, Default)]
struct Ledger {
    submitted: usize,
    done: usize,
    held: Vec<u32>,
    in_flight: Vec<u32>,
}

impl Ledger {
    fn take(from: &mut Vec<u32>, nonce: u32) -> Result<(), TestCaseError> {
        let i = from.iter().position(|n| *n == nonce);
        prop_assert!(i.is_some(), "share {} is not where its event says", nonce);
        if let Some(i) = i {
            from.swap_remove(i);
        }
        Ok(())
    }

    /// `new`: the share just handed in, until its event (held or stale) is seen.
    fn replay(&mut self, events: &[Event], new: &mut Option<u32>) -> Result<(), TestCaseError> {
        for e in events {
            match e {
                Event::ShareAccepted { share }
                | Event::ShareRejected { share, .. }
                | Event::ShareUnanswered { share } => {
                    Self::take(&mut self.in_flight, share.nonce)?;
                    self.done += 1;
                }
                Event::ShareStale { share, held, .. } => {
                    if *held {
                        Self::take(&mut self.held, share.nonce)?;
                    } else {
                        prop_assert_eq!(new.take(), Some(share.nonce));
                    }
                    self.done += 1;
                }
                Event::ShareHeld { share } => {
                    if *new == Some(share.nonce) {
                        *new = None;
                    } else {
                        Self::take(&mut self.in_flight, share.nonce)?;
                    }
                    self.held.push(share.nonce);
                }
                Event::HeldShareSent { share } => {
                    Self::take(&mut self.held, share.nonce)?;
                    self.in_flight.push(share.nonce);
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn check(&self, s: &Session) -> Result<(), TestCaseError> {
        prop_assert_eq!(s.queued_shares(), self.held.len());
        prop_assert_eq!(s.pending_shares(), self.in_flight.len());
        prop_assert_eq!(
            self.submitted,
            self.done + self.held.len() + self.in_flight.len()
        );
        Ok(())
    }
}

/// `ci` cases from the fixed seed (plus `offset`, one stream per target), no failure files:
/// CI runs the same inputs every time, and a failure is reproduced by running the test again.
fn config(ci: u32, offset: u64) -> ProptestConfig {
    ProptestConfig {
        cases: fuzz::cases(ci),
        failure_persistence: None,
        rng_seed: RngSeed::Fixed(fuzz::seed(offset)),
        // A failure is shrunk for at most this long (ms), so it is reported inside CI's budget.
        max_shrink_time: 30_000,
        ..ProptestConfig::default()
    }
}

/// Bytes for the codec: mostly newlines, carriage returns and JSON-ish text, so lines are short
/// enough to complete, blank, CRLF-terminated, over the limit or not UTF-8, all often. Expanded
/// from a seed: a strategy per byte would cost more than the decoder under test.
fn stream_chunk() -> impl Strategy<Value = Vec<u8>> {
    (any::<u64>(), 0usize..512).prop_map(|(seed, len)| {
        use rand::{Rng, SeedableRng};
        const TEXT: &[u8] = b"{}[]\":,0123456789abcdef";
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        (0..len)
            .map(|_| match rng.random_range(0..12) {
                0..=3 => rng.random(),
                4 | 5 => b'\n',
                6 => b'\r',
                7 => b' ',
                _ => TEXT[rng.random_range(0..TEXT.len())],
            })
            .collect()
    })
}

/// The lines a stream holds, the slow and obvious way: split on `\n`, drop one trailing `\r`,
/// skip blank lines, UTF-8 or an error; the bytes after the last newline are not a line yet.
fn reference_lines(stream: &[u8], limit: usize) -> (Vec<Result<String, bool>>, usize) {
    let mut parts: Vec<&[u8]> = stream.split(|&b| b == b'\n').collect();
    let tail = parts.pop().map_or(0, <[u8]>::len);
    let lines = parts
        .into_iter()
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .filter(|l| !l.iter().all(u8::is_ascii_whitespace) || l.len() > limit)
        .map(|l| {
            if l.len() > limit {
                Err(true)
            } else {
                String::from_utf8(l.to_vec()).map_err(|_| false)
            }
        })
        .collect();
    (lines, tail)
}

proptest! {
    #![proptest_config(config(100_000, 10))]

    #[test]
    fn parser_never_panics(line in any_line()) {
        let _ = parse_line(&line);
    }

}

proptest! {
    #![proptest_config(config(100_000, 11))]

    #[test]
    fn session_never_panics(lines in prop::collection::vec(any_line(), 1..12)) {
        let mut session = Session::new(SessionConfig::new("user.worker", "x"));
        session.connection_opened();
        for line in &lines {
            // A refusal is told to the operator: whatever the pool sent, it is printable and
            // short.
            if let Err(r) = session.handle_line(line) {
                prop_assert!(!r.text.chars().any(char::is_control), "{}", r.text);
                prop_assert!(r.text.chars().count() <= wgminer::text::MAX_PRINTABLE + 1);
            }
            let _ = session.take_outgoing();
        }
        session.connection_lost();
    }

}

proptest! {
    #![proptest_config(config(20_000, 12))]

    #[test]
    fn every_share_has_exactly_one_fate(ops in prop::collection::vec(op(), 1..80)) {
        use serde_json::{json, Value};
        let (slush_subscribe, slush_notify) = slush_lines();
        let mut config = SessionConfig::new("user.worker", "x");
        config.suggest_difficulty = Some(8.0);
        let mut session = Session::new(config);
        let mut ledger = Ledger::default();
        // Our requests not answered yet: (id, method).
        let mut asked: Vec<(Value, String)> = Vec::new();
        session.connection_opened();
        for (nonce, op) in (0u32..).zip(&ops) {
            let mut new = None;
            let mut events = match op {
                Op::Line(line) => session.handle_line(line).unwrap_or_default(),
                Op::Reply(pick, kind) if !asked.is_empty() => {
                    // Pools answer in order, mostly.
                    let i = if pick % 4 == 0 { pick / 4 % asked.len() } else { 0 };
                    let (id, method) = asked.remove(i);
                    let result = match (method.as_str(), kind % 4) {
                        ("mining.subscribe", 0) => json!([[], "0a0b0c0d", 4]),
                        ("mining.subscribe", _) => slush_subscribe.clone(),
                        // Refused now and then (below), not half the time: a session that is
                        // never authorized sends no share.
                        ("mining.authorize", _) => json!(true),
                        (_, 0 | 1) => json!(true),
                        (_, 2) => json!(false),
                        _ => Value::Null,
                    };
                    let line = if kind % 8 == 7 {
                        json!({"id": id, "result": null, "error": [23, "no", null]})
                    } else {
                        json!({"id": id, "result": result, "error": null})
                    };
                    session.handle_line(line.to_string().as_bytes()).unwrap_or_default()
                }
                Op::Reply(..) => Vec::new(),
                Op::Notify(job, clean) => {
                    let mut params = slush_notify.clone();
                    params[0] = json!(JOB_IDS[*job]);
                    params[8] = json!(clean);
                    let line = json!({"id": null, "method": "mining.notify", "params": params});
                    session.handle_line(line.to_string().as_bytes()).unwrap_or_default()
                }
                Op::Submit(job) => {
                    let share = Share {
                        job_id: JOB_IDS[*job].to_owned(),
                        extranonce2: Some(Extranonce2::from_hex("00000001").expect("hex")),
                        ntime: 0x504e86ed,
                        nonce,
                        version_bits: None,
                    };
                    ledger.submitted += 1;
                    match session.submit(share) {
                        SubmitOutcome::Sent => ledger.in_flight.push(nonce),
                        SubmitOutcome::Queued | SubmitOutcome::Stale => new = Some(nonce),
                    }
                    Vec::new()
                }
                Op::Lost => {
                    session.connection_lost();
                    asked.clear();
                    Vec::new()
                }
                Op::Opened => {
                    if !session.is_connected() {
                        session.connection_opened();
                        asked.clear();
                    }
                    Vec::new()
                }
                Op::Abandon => {
                    session.abandon_queued("not sent: no connection at exit");
                    Vec::new()
                }
            };
            events.extend(session.take_events());
            ledger.replay(&events, &mut new)?;
            prop_assert_eq!(new, None, "no event for a share that was not sent");
            for line in session.take_outgoing() {
                let m: Value = serde_json::from_str(&line).expect("we write JSON");
                if let Some(method) = m["method"].as_str() {
                    asked.push((m["id"].clone(), method.to_owned()));
                }
            }
            ledger.check(&session)?;
        }
    }

}

proptest! {
    #![proptest_config(config(100_000, 13))]

    /// The decoder against [`reference_lines`], read by read as the client drains it: the same
    /// lines, and never more held than a line and a read; an over-long line is fatal (the client
    /// drops the connection), so a stream ends there.
    #[test]
    fn codec_matches_reference_and_stays_bounded(
        chunks in prop::collection::vec(stream_chunk(), 1..12),
        limit in prop_oneof![1usize..64, 64usize..2048],
    ) {
        let mut decoder = LineDecoder::new(limit);
        let mut got: Vec<Result<String, bool>> = Vec::new();
        let mut fed: Vec<u8> = Vec::new();
        'stream: for chunk in &chunks {
            decoder.extend(chunk);
            fed.extend_from_slice(chunk);
            loop {
                match decoder.next_line() {
                    Ok(Some(line)) => {
                        prop_assert!(line.len() <= limit);
                        got.push(Ok(line));
                    }
                    Ok(None) => break,
                    Err(e) if e.is_fatal() => {
                        got.push(Err(true));
                        break 'stream;
                    }
                    Err(_) => got.push(Err(false)),
                }
            }
            // Whatever arrives, the decoder never holds much more than a line and a read.
            prop_assert!(decoder.buffered() <= limit + chunk.len() + 1);
        }
        let (want, tail) = reference_lines(&fed, limit);
        match got.last() {
            // Up to the over-long line, the same lines; an unfinished one may be the long one.
            Some(Err(true)) => {
                let n = got.len() - 1;
                prop_assert_eq!(&got[..n], &want[..n.min(want.len())]);
            }
            _ => {
                prop_assert_eq!(got, want);
                prop_assert_eq!(decoder.buffered(), tail);
            }
        }
    }
}
