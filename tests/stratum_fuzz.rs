//! Property-based fuzzing (proptest) of everything a pool's bytes reach before the miner trusts
//! them: the line codec, the message parser and the session state machine. The properties: no
//! input panics, the codec never buffers more than its limit, and whatever the pool sends, every
//! share handed to the session has exactly one accounted fate.
//! Inputs mix arbitrary bytes with mutations of real lines from tests/data/stratum.json, so the
//! parser's deeper paths (notify, set_difficulty, responses) are reached, not just "not JSON".

use proptest::prelude::*;
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
    Reset,
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
        1 => Just(Op::Reset),
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
        session.reset();
    }

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
                        extranonce2: Extranonce2::from_hex("00000001").expect("hex"),
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
                Op::Reset => {
                    session.reset();
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
