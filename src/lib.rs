//! wgminer: a SHA-256d (Bitcoin) proof-of-work mining engine.
//!
//! Layers, from the bottom: [`pow`] (pure hashing and target math), [`work`] (work units, hits
//! and their verification), [`backend`] (CPU and GPU compute engines), [`bench`] (the hash-rate
//! benchmark). See DESIGN.md for the whole picture.

pub mod backend;
pub mod bench;
pub mod pow;
pub mod stratum;
pub mod work;
