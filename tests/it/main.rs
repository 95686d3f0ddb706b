//! The integration tests, one binary with one module per area (as ripgrep does): one link
//! instead of one per file, and the helpers in `support/` compiled once.
//!
//! CI runs them with `cargo nextest`, which runs every test in its own process. Some tests
//! depend on that: the memory ceilings in `http_abuse` and `node_fuzz` read the process's peak
//! resident size (VmHWM), which other tests running in the same process would raise; and
//! `node_kill` runs this binary again as a child process. Under `cargo test` (all tests in one
//! process) those ceilings measure more than their own test.

mod support;

mod api;
mod bench_plot;
mod bitcoind_harness;
mod cgminer_api;
mod cli;
mod config;
mod cpu_paths;
mod doctor;
mod gpu;
mod http_abuse;
mod http_fuzz;
mod http_server;
mod mining_runner;
mod node_cli;
mod node_core;
mod node_core_mining;
mod node_fuzz;
mod node_kill;
mod operator;
mod pool_failover;
mod pool_mining;
mod real_headers;
mod shutdown;
mod solo_assembly;
mod solo_node;
mod stratum_client;
mod stratum_fuzz;
mod stratum_vectors;
mod sv2_client;
mod sv2_tp;
mod sv2_translator;
mod ux_output;
