//! wgminer: a SHA-256d (Bitcoin) proof-of-work mining engine.
//!
//! Layers, from the bottom: [`pow`] (pure hashing and target math), [`work`] (pure: jobs, work
//! units, hits and their verification, block templates and assembly, the run's counters),
//! [`backend`] (CPU and GPU compute engines, streaming their hits), [`stratum`] (the Stratum V1
//! pool protocol: pure messages and session, and the tokio client), [`sv2`] (the Stratum V2 Noise
//! transport on SRI's crates), [`rpc`] (a Bitcoin node over
//! JSON-RPC: getblocktemplate, submitblock), [`node`] (the embedded node core: a regtest chain on
//! disk and its JSON-RPC), [`mining`] (the work manager, the work sources and the one run loop
//! between them), [`telemetry`] (the monitoring API), [`http`] (HTTP on hyper under both: the
//! servers' limits), [`mod@bench`] and [`plot`] (the hash-rate benchmark and its chart), [`text`]
//! (peer text made safe to print). See docs/ARCHITECTURE.md for the whole picture: the layers,
//! the flow from job to counted outcome, and where each thing lives.

pub mod backend;
pub mod bench;
pub mod http;
pub mod mining;
pub mod node;
pub mod plot;
pub mod pow;
pub mod rpc;
pub mod stratum;
pub mod sv2;
pub mod telemetry;
pub mod text;
pub mod work;
