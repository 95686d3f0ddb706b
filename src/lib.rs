//! wgminer: a SHA-256d (Bitcoin) proof-of-work mining engine.
//!
//! Layers, from the bottom: [`pow`] (pure hashing and target math), [`work`] (jobs, work units,
//! hits and their verification), [`backend`] (CPU and GPU compute engines), [`stratum`] (the
//! Stratum V1 pool protocol: pure messages and session, and the tokio client), [`mod@bench`]
//! (the hash-rate benchmark). See DESIGN.md for the whole picture.

pub mod backend;
pub mod bench;
pub mod node;
pub mod pow;
pub mod rpc;
pub mod stratum;
pub mod work;
