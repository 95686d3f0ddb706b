//! Watching a run from elsewhere: the HTTP monitoring API ([`api`]: JSON endpoints and a
//! Prometheus `/metrics`, served within [`crate::http`]'s limits), cgminer's TCP API
//! ([`cgminer`], for the farm tools that speak it) and the Prometheus text
//! format of the counters ([`metrics`]), both built on [`crate::work::MiningStats`]. What each
//! endpoint and metric means is in docs/API.md.

pub mod api;
pub mod cgminer;
pub mod metrics;
pub mod sensors;

pub use api::{ApiConfig, ApiError, ApiServer, ApiState};
