//! Work as backends see it: a [`WorkUnit`] (one header with its nonce open, a target and a nonce
//! range), the [`Hit`]s a backend reports, and the CPU re-verification every hit goes through
//! before anything leaves the miner.

mod unit;

pub use unit::{verify_hits, Hit, HitError, NonceRange, Solution, Verified, WorkUnit};
