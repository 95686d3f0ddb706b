//! Stratum V2 transport on the reference implementation's crates (SRI: `noise_sv2`, `codec_sv2`,
//! `framing_sv2`, `parsers_sv2`, pinned in Cargo.toml to the versions the released `pool_sv2`
//! locks): the Noise NX handshake, encrypted frames with a size limit, and the authority key's
//! text form. Used by the node core's Template Provider ([`crate::node::sv2_tp`]) as the
//! responder and by the SV2 mining client (`crate::mining::sv2_pool`) as the initiator.
//!
//! Only glue lives here: the handshake, the ciphers, the frame layout and every message's bytes
//! are SRI's. What is ours is the I/O around them (tokio), the limits, and the errors.
//!
//! - [`noise`]: a Noise connection over any tokio byte stream, as responder or initiator.
//! - [`key`]: the authority public key as SRI's configuration files write it.
//! - [`mining_client`]: the Mining Protocol on one channel, extended or standard, as a miner
//!   speaks it (sans-IO: messages in, jobs and share verdicts out).

pub mod key;
pub mod mining_client;
pub mod noise;

pub use key::{AuthorityPublicKey, KeyError};
pub use noise::{Frame, NoiseError, NoiseReader, NoiseWriter};

/// SRI's message types, re-exported so callers name the same crate versions as this module.
pub use common_messages_sv2;
pub use mining_sv2;
pub use parsers_sv2;
pub use template_distribution_sv2;
