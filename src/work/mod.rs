//! Work as backends see it: a [`WorkUnit`] (one header with its nonce open, a target and a nonce
//! range), the [`Hit`]s a backend reports, and the CPU re-verification every hit goes through
//! before anything leaves the miner; and the [`Job`]s sources hand in, from which units are
//! derived by rolling extranonce2, version bits and nTime, and the [`Share`]s that go back.
//! [`generator`] cuts a job into non-overlapping units, [`manager`] drives the devices with them,
//! [`pool_mining`] connects the manager to a Stratum pool, [`stats`] counts what happens.

pub mod generator;
pub mod job;
pub mod manager;
pub mod pool_mining;
pub mod rolling;
pub mod share;
pub mod solo_mining;
pub mod stats;
pub mod template;
mod unit;

pub use generator::{GeneratorError, RolledUnit, WorkGenerator};
pub use job::{CoinbaseRoot, CoinbaseTemplate, Job, JobError, PreparedJob};
pub use manager::{Found, Manager, ManagerError, MinerEvent};
pub use pool_mining::run_pool;
pub use rolling::{Extranonce2, Extranonce2Roller, NtimeWindow, Roll, VersionRoller};
pub use share::Share;
pub use solo_mining::{
    run_solo, solo_link, BlockResult, SoloConfig, SoloLink, SourceLink, TemplateUpdate, Verdict,
};
pub use stats::{MiningStats, RateMeter, StatsSnapshot};
pub use template::{BlockTemplate, SoloJob, SolvedBlock, TemplateError, TemplateTx};
pub use unit::{verify_hits, Hit, HitError, NonceRange, Solution, Verified, WorkUnit};
