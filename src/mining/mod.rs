//! The mining layer: devices, work sources and the run loop between them.
//!
//! - [`manager`]: one worker thread per device, batches from the current job, hits streamed
//!   from each GPU dispatch or CPU slice and verified on the CPU the moment they land.
//! - [`source`]: the [`WorkSource`] contract (jobs in, solutions out, every solution's fate
//!   back) and the bounded link between a source task and the runner.
//! - [`runner`]: the one run loop over any source: accounting, back-pressure, shutdown.
//! - The sources: [`pool`] (Stratum V1), [`sv2_pool`] (Stratum V2), [`node`] (a node over
//!   getblocktemplate), [`core`] (the embedded node core); [`solo`] is what the two block
//!   sources share (templates to jobs, solutions to blocks); [`failover`] runs one pool source
//!   at a time from a priority list of V1 and V2 pools (every pool run goes through it).
//! - [`events`]: what a run reports for display.
//!
//! A new protocol is one new module with a type that implements [`WorkSource`].

pub mod core;
pub mod events;
pub mod failover;
pub mod generate;
pub mod manager;
pub mod node;
pub mod pool;
pub mod runner;
pub mod solo;
pub mod source;
pub mod sv2_pool;
pub mod thermal;

pub use self::core::CoreSource;
pub use events::{EventSink, MinerEvent};
pub use failover::{FailoverConfig, FailoverSource, PoolSpec, PoolSwitch};
pub use manager::{Found, Manager, ManagerError, Pauser};
pub use node::NodeGbtSource;
pub use pool::StratumSource;
pub use runner::{run, RunConfig, RunOutcome};
pub use solo::{instance_extranonce1, SoloBridge, SoloConfig};
pub use source::{Fate, Solved, SourceError, SourceEvent, SourceLink, WorkSource};
pub use sv2_pool::{Sv2Config, Sv2Source};
