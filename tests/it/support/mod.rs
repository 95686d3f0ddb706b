//! Helpers shared by the integration tests: stand-ins for the pool and the node, the real node,
//! the `wgminer` binary as a child process, and the test vectors in tests/data/.

pub mod bitcoind;
pub mod cpu_run;
pub mod fake_node;
pub mod feed;
pub mod fuzz;
pub mod headers;
pub mod miner;
pub mod pool_server;
pub mod rawhttp;
pub mod solo;
pub mod vectors;
pub mod wait;
