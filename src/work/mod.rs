//! Work as backends see it: a [`WorkUnit`] (one header with its nonce open, a target and a nonce
//! range), the [`Hit`]s a backend reports, and the CPU re-verification every hit goes through
//! before anything leaves the miner; and the [`Job`]s sources hand in, from which units are
//! derived by rolling extranonce2, version bits and nTime, and the [`Share`]s that go back.

pub mod job;
pub mod rolling;
pub mod share;
mod unit;

pub use job::{CoinbaseRoot, CoinbaseTemplate, Job, JobError, PreparedJob};
pub use rolling::{Extranonce2, Extranonce2Roller, NtimeWindow, Roll, VersionRoller};
pub use share::Share;
pub use unit::{verify_hits, Hit, HitError, NonceRange, Solution, Verified, WorkUnit};
