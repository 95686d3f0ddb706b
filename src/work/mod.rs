//! Work as backends see it: a [`WorkUnit`] (one header with its nonce open, a target and a nonce
//! range), the [`Hit`]s a backend reports, and the CPU re-verification every hit goes through
//! before anything leaves the miner; and the [`Job`]s sources hand in, from which units are
//! derived by rolling extranonce2, version bits and nTime (version bits and nTime alone for a
//! header-only job, whose merkle root the source fixed), and the [`Share`]s that go back.
//! Pure: no I/O, no async, no threads.
//!
//! - `unit` (re-exported here): [`WorkUnit`], [`Hit`] and [`verify_hits`].
//! - [`job`]: jobs, their coinbase and merkle branch, prepared for fast unit derivation.
//! - [`rolling`]: extranonce2, version-bit (BIP310/BIP320) and nTime rolling.
//! - [`generator`]: cuts a job into non-overlapping units, however many devices draw from it.
//! - [`share`]: what goes back to a pool for a solution.
//! - [`template`]: a node's block template for solo mining (what to build a block on).
//! - [`gbt`]: the `getblocktemplate` codec (BIP22/23) and its checks, for the node client and
//!   the embedded node's server alike.
//! - [`coinbase`]: our coinbase for a template, split around the extranonce area.
//! - [`assembly`]: a template as a job, and the block a solution makes.
//! - [`merkle`]: merkle branch and root, BIP141 witness commitments (rust-bitcoin's where it has
//!   them).
//! - [`payout`]: the coinbase address, checked against the node's network and segwit.
//! - [`verdict`]: what a node made of a block.
//! - [`stats`]: the counters a mining run keeps (rates, every solution's fate, latency).
//!
//! The runner that drives devices with all this is [`crate::mining`].

pub mod assembly;
pub mod coinbase;
pub mod gbt;
pub mod generator;
pub mod job;
pub mod merkle;
pub mod payout;
pub mod rolling;
pub mod share;
pub mod stats;
pub mod template;
mod unit;
pub mod verdict;

pub use generator::{GeneratorError, RolledUnit, WorkGenerator};
pub use job::{CoinbaseRoot, CoinbaseTemplate, Job, JobError, PreparedJob};
pub use rolling::{Extranonce2, Extranonce2Roller, NtimeWindow, Roll, VersionRoller};
pub use share::Share;
pub use stats::{MiningStats, RateMeter, StatsSnapshot};
pub use template::{BlockTemplate, SoloJob, SolvedBlock, TemplateError, TemplateTx};
pub use unit::{verify_hits, Hit, HitError, NonceRange, Solution, Verified, WorkUnit};
pub use verdict::BlockVerdict;
