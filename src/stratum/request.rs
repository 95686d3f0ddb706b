//! Stratum V1 lines from the miner: our requests, and replies to the pool's requests.
//!
//! Each request is one JSON object on one line: `{"id": n, "method": .., "params": [..]}\n`.

use serde_json::{json, Value};

use super::message::Id;
use crate::work::Share;

/// The user agent sent in `mining.subscribe` and in answer to `client.get_version`.
pub fn user_agent() -> String {
    format!("wgminer/{}", env!("CARGO_PKG_VERSION"))
}

/// A request from the miner to the pool.
#[derive(Clone, Debug, PartialEq)]
pub enum ClientRequest {
    /// `mining.subscribe`; with the previous session's id to resume it after a reconnect
    /// (pools that support resuming keep the extranonce1).
    Subscribe {
        user_agent: String,
        session_id: Option<String>,
    },
    Authorize {
        user: String,
        password: String,
    },
    Submit {
        worker: String,
        share: Share,
    },
    /// `mining.configure` asking for version rolling (BIP310) under `mask`.
    Configure {
        version_rolling_mask: u32,
        min_bit_count: Option<u32>,
    },
    /// Ask the pool for a starting difficulty.
    SuggestDifficulty(f64),
    /// Tell the pool we understand `mining.set_extranonce`.
    ExtranonceSubscribe,
}

impl ClientRequest {
    pub fn method(&self) -> &'static str {
        match self {
            ClientRequest::Subscribe { .. } => "mining.subscribe",
            ClientRequest::Authorize { .. } => "mining.authorize",
            ClientRequest::Submit { .. } => "mining.submit",
            ClientRequest::Configure { .. } => "mining.configure",
            ClientRequest::SuggestDifficulty(_) => "mining.suggest_difficulty",
            ClientRequest::ExtranonceSubscribe => "mining.extranonce.subscribe",
        }
    }

    pub fn params(&self) -> Value {
        match self {
            ClientRequest::Subscribe {
                user_agent,
                session_id,
            } => match session_id {
                Some(id) => json!([user_agent, id]),
                None => json!([user_agent]),
            },
            ClientRequest::Authorize { user, password } => json!([user, password]),
            ClientRequest::Submit { worker, share } => json!(share.submit_params(worker)),
            ClientRequest::Configure {
                version_rolling_mask,
                min_bit_count,
            } => {
                let mut ext = serde_json::Map::new();
                ext.insert(
                    "version-rolling.mask".into(),
                    json!(format!("{version_rolling_mask:08x}")),
                );
                if let Some(n) = min_bit_count {
                    ext.insert("version-rolling.min-bit-count".into(), json!(n));
                }
                json!([["version-rolling"], ext])
            }
            ClientRequest::SuggestDifficulty(d) => json!([difficulty_json(*d)]),
            ClientRequest::ExtranonceSubscribe => json!([]),
        }
    }

    /// The request as one newline-terminated line.
    pub fn to_line(&self, id: u64) -> String {
        line(&json!({"id": id, "method": self.method(), "params": self.params()}))
    }
}

/// Whole difficulties go out as integers (`[512]`, as pools and miners write them), others as
/// floats.
fn difficulty_json(d: f64) -> Value {
    if d.fract() == 0.0 && (0.0..9.0e15).contains(&d) {
        json!(d as u64)
    } else {
        json!(d)
    }
}

/// A successful reply to a pool request (e.g. our version for `client.get_version`).
pub fn reply_line(id: &Id, result: Value) -> String {
    line(&json!({"id": id.to_json(), "result": result, "error": null}))
}

/// An error reply in Stratum V1's `[code, message, traceback]` form (20: other/unknown,
/// as in the original protocol description).
pub fn error_reply_line(id: &Id, code: i64, message: &str) -> String {
    line(&json!({"id": id.to_json(), "result": null, "error": [code, message, null]}))
}

fn line(v: &Value) -> String {
    let mut s = v.to_string();
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::work::Extranonce2;

    fn parsed(line: &str) -> Value {
        assert!(line.ends_with('\n') && !line[..line.len() - 1].contains('\n'));
        serde_json::from_str(line).unwrap()
    }

    #[test]
    fn requests_serialize_as_pools_expect() {
        let ua = user_agent();
        assert!(ua.starts_with("wgminer/"));
        let v = parsed(
            &ClientRequest::Subscribe {
                user_agent: ua.clone(),
                session_id: None,
            }
            .to_line(1),
        );
        assert_eq!(
            v,
            json!({"id": 1, "method": "mining.subscribe", "params": [ua]})
        );
        let v = parsed(
            &ClientRequest::Configure {
                version_rolling_mask: 0xffffffff,
                min_bit_count: None,
            }
            .to_line(2),
        );
        assert_eq!(
            v["params"],
            json!([["version-rolling"], {"version-rolling.mask": "ffffffff"}])
        );
        let v = parsed(&ClientRequest::SuggestDifficulty(512.0).to_line(4));
        assert_eq!(v["params"], json!([512]));
        assert_eq!(
            ClientRequest::SuggestDifficulty(0.25).params(),
            json!([0.25])
        );
        let v = parsed(&ClientRequest::ExtranonceSubscribe.to_line(5));
        assert_eq!(v["method"], "mining.extranonce.subscribe");
        let share = Share {
            job_id: "bf".into(),
            extranonce2: Some(Extranonce2::from_hex("00000001").unwrap()),
            ntime: 0x504e86ed,
            nonce: 0xb2957c02,
            version_bits: None,
        };
        let v = parsed(
            &ClientRequest::Submit {
                worker: "slush.miner1".into(),
                share,
            }
            .to_line(4),
        );
        assert_eq!(
            v["params"],
            json!(["slush.miner1", "bf", "00000001", "504e86ed", "b2957c02"])
        );
    }

    #[test]
    fn replies() {
        let v = parsed(&reply_line(&Id::Number(7), json!(user_agent())));
        assert_eq!(v["id"], 7);
        assert_eq!(v["error"], Value::Null);
        let v = parsed(&error_reply_line(&Id::Text("a".into()), 20, "no"));
        assert_eq!(v["error"], json!([20, "no", null]));
    }
}
