//! [`BlockVerdict`]: what a node made of a block we sent (pure data, shared by the node client,
//! the embedded core and the display).

/// What became of a block.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub enum BlockVerdict {
    /// The node took it.
    Accepted,
    /// Valid but not on the best chain (`inconclusive`), or built on a tip that is gone.
    Stale(String),
    /// Refused, with the node's reason (`high-hash`, `bad-txnmrklroot`, `duplicate`, …).
    Rejected(String),
    /// No verdict: not delivered (the node could not be reached) or not answered by the time
    /// the run ended. The block is written out as hex so it can be submitted by hand.
    Undelivered(String),
}
