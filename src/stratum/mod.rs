//! Stratum V1, the pool protocol: the pure part. [`message`] parses the pool's lines into typed
//! messages and turns `mining.notify` into a [`crate::work::Job`]; [`request`] writes the miner's
//! lines. No sockets, no tokio: the connection and session that drive these live beside them and
//! own the I/O.

pub mod message;
pub mod request;

pub use message::{
    parse_line, parse_value, ConfigureResult, Id, Message, MessageError, Notify, NotifyContext,
    Response, RpcError, ServerMethod, ServerRequest, SubscribeResult, MAX_LINE_LEN,
};
pub use request::{error_reply_line, reply_line, user_agent, ClientRequest};
