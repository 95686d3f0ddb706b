//! Stratum V1, the pool protocol. [`message`] parses the pool's lines into typed
//! messages and turns `mining.notify` into a [`crate::work::Job`]; [`request`] writes the miner's
//! lines; [`codec`] frames the byte stream into lines and [`session`] is the protocol's state
//! machine (ids, subscribe, difficulty, jobs, shares), and [`refusal`] tells the operator what it
//! refused, at a bounded rate; [`pool`] names the pools and the retry
//! policy. All of that is pure. [`client`] is the only async part: the tokio connection with
//! reconnect, keepalive and failover that drives a session.

pub mod client;
pub mod codec;
pub mod message;
pub mod pool;
pub mod refusal;
pub mod request;
pub mod session;

pub use message::{
    parse_json, parse_line, parse_value, ConfigureResult, Id, Message, MessageError, Notify,
    NotifyContext, Response, RpcError, ServerMethod, ServerRequest, SubscribeResult,
    MAX_EXTRANONCE1_SIZE, MAX_JOB_ID_LEN, MAX_LINE_LEN, MAX_SESSION_ID_LEN,
};
pub use refusal::{Refusal, RefusalKind, RefusalLog};
pub use request::{error_reply_line, reply_line, user_agent, ClientRequest};
pub use session::{Event, Session, SessionConfig, SessionError, SubmitOutcome};
