//! Talking to a Bitcoin node over JSON-RPC (HTTP from [`crate::http`]): the
//! client ([`client`]: auth by user/password or cookie, errors that say what failed), and the
//! node as a block source for solo mining ([`source`]: getblocktemplate with longpoll,
//! submitblock).

pub mod client;
pub mod source;

pub use client::{Auth, RpcClient, RpcError};
pub use source::{node_network, LongPoll, NodeSource, BACKOFF};
