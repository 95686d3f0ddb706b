//! Pool messages the session refuses, told to the operator: each [`Refusal`] says what the pool
//! sent (printable, cut short), why it was refused and what the session keeps instead, e.g.
//! "pool sent mining.set_difficulty with difficulty -3: not a positive finite number; ignored,
//! keeping difficulty 512".
//!
//! A pool can send thousands of bad lines a second, so the telling is rate-limited by kind
//! ([`RefusalLog`]): at most one line per kind per [`REFUSAL_LOG_INTERVAL`]; the refusals not
//! shown are counted and the count goes with the next line of that kind (or, once the interval
//! is over, a line of its own). Policy in docs/LIMITS.md ("Stratum").
//!
//! Pure: the caller passes the time.

use std::time::{Duration, Instant};

use super::session::SessionError;

/// At most one line per kind of refusal in this long.
pub const REFUSAL_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// What a refused message was meant to change: each kind has its own rate limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RefusalKind {
    /// `mining.set_difficulty`.
    Difficulty,
    /// `mining.notify`.
    Job,
    /// `mining.set_extranonce`.
    Extranonce,
    /// The BIP310 mask: `mining.configure`'s result or `mining.set_version_mask`.
    VersionMask,
    /// `client.reconnect`.
    Reconnect,
    /// `client.show_message`.
    Message,
    /// A line that is not a Stratum message at all (not UTF-8, not JSON, no method nor result).
    Unreadable,
}

impl RefusalKind {
    const ALL: [RefusalKind; 7] = [
        RefusalKind::Difficulty,
        RefusalKind::Job,
        RefusalKind::Extranonce,
        RefusalKind::VersionMask,
        RefusalKind::Reconnect,
        RefusalKind::Message,
        RefusalKind::Unreadable,
    ];

    /// The kind of a refused request for `method`.
    pub fn of_method(method: &str) -> RefusalKind {
        match method {
            "mining.set_difficulty" => RefusalKind::Difficulty,
            "mining.notify" => RefusalKind::Job,
            "mining.set_extranonce" => RefusalKind::Extranonce,
            "mining.set_version_mask" | "mining.configure" => RefusalKind::VersionMask,
            "client.reconnect" => RefusalKind::Reconnect,
            "client.show_message" => RefusalKind::Message,
            _ => RefusalKind::Unreadable,
        }
    }

    /// How the count of refusals not shown names them.
    fn plural(self) -> &'static str {
        match self {
            RefusalKind::Difficulty => "mining.set_difficulty messages",
            RefusalKind::Job => "mining.notify messages",
            RefusalKind::Extranonce => "mining.set_extranonce messages",
            RefusalKind::VersionMask => "version masks",
            RefusalKind::Reconnect => "client.reconnect messages",
            RefusalKind::Message => "client.show_message messages",
            RefusalKind::Unreadable => "unreadable lines",
        }
    }

    fn index(self) -> usize {
        Self::ALL.iter().position(|k| *k == self).unwrap_or(0)
    }
}

/// A pool message the session refused (or, for a version mask, took only in part). Its
/// `Display` is the line for the operator, peer text made printable.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{text}")]
pub struct Refusal {
    pub kind: RefusalKind,
    /// Why, as a value.
    #[source]
    pub cause: SessionError,
    /// The whole line: what was sent, why it was refused, what is kept.
    pub text: String,
}

/// Tells refusals at a bounded rate (see the module docs). One per client, across its pools.
#[derive(Debug, Default)]
pub struct RefusalLog {
    kinds: [KindLog; RefusalKind::ALL.len()],
}

#[derive(Clone, Copy, Debug, Default)]
struct KindLog {
    /// When the last line of this kind was told.
    told: Option<Instant>,
    /// Refusals of this kind not told since then.
    hidden: u64,
}

impl RefusalLog {
    pub fn new() -> Self {
        Self::default()
    }

    /// The line to log for `refusal` at `now`, or `None` when a line of its kind was told less
    /// than [`REFUSAL_LOG_INTERVAL`] ago (it is counted instead, and the count told later).
    pub fn admit(&mut self, refusal: &Refusal, now: Instant) -> Option<String> {
        let k = &mut self.kinds[refusal.kind.index()];
        if k.told
            .is_some_and(|t| now.duration_since(t) < REFUSAL_LOG_INTERVAL)
        {
            k.hidden = k.hidden.saturating_add(1);
            return None;
        }
        let line = match k.hidden {
            0 => refusal.text.clone(),
            n => format!(
                "{} ({n} more {} refused before it, not shown)",
                refusal.text,
                refusal.kind.plural()
            ),
        };
        *k = KindLog {
            told: Some(now),
            hidden: 0,
        };
        Some(line)
    }

    /// Lines for the refusals counted and not told, of each kind whose interval is over; call
    /// now and then (the client does after every read) so a flood that stops is still told.
    pub fn due(&mut self, now: Instant) -> Vec<String> {
        let mut lines = Vec::new();
        for (kind, k) in RefusalKind::ALL.iter().zip(self.kinds.iter_mut()) {
            let over = k
                .told
                .is_none_or(|t| now.duration_since(t) >= REFUSAL_LOG_INTERVAL);
            if k.hidden > 0 && over {
                lines.push(format!(
                    "pool sent {} more {} that were refused (not shown: at most one line per {} s)",
                    k.hidden,
                    kind.plural(),
                    REFUSAL_LOG_INTERVAL.as_secs()
                ));
                *k = KindLog {
                    told: Some(now),
                    hidden: 0,
                };
            }
        }
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stratum::MessageError;

    fn refusal(kind: RefusalKind, text: &str) -> Refusal {
        Refusal {
            kind,
            cause: SessionError::Message(MessageError::NotObject),
            text: text.to_owned(),
        }
    }

    #[test]
    fn one_line_per_kind_per_interval_with_the_count_of_the_rest() {
        let mut log = RefusalLog::new();
        let t0 = Instant::now();
        let diff = refusal(RefusalKind::Difficulty, "bad difficulty");
        let job = refusal(RefusalKind::Job, "bad job");
        assert_eq!(log.admit(&diff, t0).as_deref(), Some("bad difficulty"));
        // Another kind has its own limit.
        assert_eq!(log.admit(&job, t0).as_deref(), Some("bad job"));
        // A flood inside the interval: counted, not told.
        for i in 0..10_000u64 {
            let at = t0 + Duration::from_micros(i * 900);
            assert_eq!(log.admit(&diff, at), None);
        }
        assert!(log.due(t0 + Duration::from_secs(9)).is_empty(), "not yet");
        // The next one after the interval carries the count.
        let line = log.admit(&diff, t0 + REFUSAL_LOG_INTERVAL).expect("told");
        assert_eq!(
            line,
            "bad difficulty (10000 more mining.set_difficulty messages refused before it, not shown)"
        );
        assert_eq!(log.admit(&diff, t0 + REFUSAL_LOG_INTERVAL), None);
        // A flood that stops is told by `due` once its interval is over, once.
        let later = t0 + REFUSAL_LOG_INTERVAL * 2;
        assert_eq!(
            log.due(later),
            ["pool sent 1 more mining.set_difficulty messages that were refused (not shown: at most one line per 10 s)"]
        );
        assert!(log.due(later + REFUSAL_LOG_INTERVAL).is_empty());
    }

    #[test]
    fn a_clock_going_backwards_does_not_panic() {
        let mut log = RefusalLog::new();
        let t0 = Instant::now() + Duration::from_secs(100);
        let r = refusal(RefusalKind::Unreadable, "x");
        assert!(log.admit(&r, t0).is_some());
        // duration_since saturates at zero: inside the interval.
        assert!(log.admit(&r, t0 - Duration::from_secs(50)).is_none());
        assert!(log.due(t0 - Duration::from_secs(50)).is_empty());
    }

    #[test]
    fn every_method_has_its_kind() {
        assert_eq!(
            RefusalKind::of_method("mining.set_difficulty"),
            RefusalKind::Difficulty
        );
        assert_eq!(RefusalKind::of_method("mining.notify"), RefusalKind::Job);
        assert_eq!(
            RefusalKind::of_method("mining.set_version_mask"),
            RefusalKind::VersionMask
        );
        assert_eq!(RefusalKind::of_method("x"), RefusalKind::Unreadable);
        for (i, k) in RefusalKind::ALL.iter().enumerate() {
            assert_eq!(k.index(), i);
        }
    }
}
