//! The real Stratum material in tests/data/stratum.json (copied from ../shared/vectors; each
//! vector names its public source), for tests and benches (benches/ include this file by
//! `#[path]`, so it uses nothing but the library).

use serde_json::Value;
use wgminer::stratum::{parse_line, Message, Notify, ServerMethod};

/// The vector with this `id`.
pub fn stratum_vector(id: &str) -> Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/stratum.json"
    ))
    .expect("tests/data/stratum.json is part of the repository");
    let all: Value = serde_json::from_str(&text).expect("stratum.json is valid JSON");
    all.as_array()
        .and_then(|a| a.iter().find(|v| v["id"] == id))
        .cloned()
        .unwrap_or_else(|| panic!("no stratum vector {id}"))
}

/// The first `mining.notify` line the vector recorded, as the pool sent it.
pub fn recorded_notify_line(id: &str) -> String {
    stratum_vector(id)["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter_map(|m| m.as_str())
        .find(|m| serde_json::from_str::<Value>(m).is_ok_and(|v| v["method"] == "mining.notify"))
        .unwrap_or_else(|| panic!("vector {id} recorded no mining.notify"))
        .to_string()
}

/// That notify, parsed.
#[allow(dead_code, reason = "benches/ use it; the tests use the line")]
pub fn recorded_notify(id: &str) -> Notify {
    let line = recorded_notify_line(id);
    let Ok(Message::Request(req)) = parse_line(line.as_bytes()) else {
        panic!("the recorded notify of {id} parses")
    };
    let ServerMethod::Notify(notify) = req.method else {
        panic!("a mining.notify")
    };
    notify
}
