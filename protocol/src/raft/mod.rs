//! Simplified Raft (Ongaro & Ousterhout, "In Search of an Understandable Consensus Algorithm",
//! and Ongaro's thesis for pre-vote, check-quorum and leases) as a pure state machine.
//!
//! - [`config`]: timings and feature flags, validated up front.
//! - [`message`]: log entries, messages and their CRC-checked wire form.
//! - [`log`]: the in-memory log.
//! - [`node`]: the node itself, implementing [`crate::node::Node`].

pub mod config;
pub mod log;
pub mod message;
pub mod node;

pub use config::{Config, ConfigError, NODES_COUNT_MAX};
pub use message::{Command, ConflictHint, Entry, Message};
pub use node::{RaftNode, RestoreError, RestoreReport};
