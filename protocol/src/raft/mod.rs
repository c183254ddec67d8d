//! Simplified Raft (Ongaro & Ousterhout, "In Search of an Understandable Consensus Algorithm",
//! and Ongaro's thesis for pre-vote, check-quorum and leases) as a pure state machine.
//!
//! - [`config`]: timings and feature flags, validated up front.
//! - [`message`]: log entries, messages and their CRC-checked wire form.
//! - [`log`]: the in-memory log, compactable from the front.
//! - [`snapshot`]: state-machine snapshots (§7), their CRC-framed chunks and reassembly.
//! - [`node`]: the node itself, implementing [`crate::node::Node`].

pub mod config;
pub mod log;
pub mod message;
pub mod node;
pub mod snapshot;

pub use config::{Config, ConfigError, NODES_COUNT_MAX, SNAPSHOT_CHUNK_BYTES_MAX};
pub use message::{Command, ConflictHint, Entries, Entry, Message};
pub use node::{RaftNode, RestoreError, RestoreReport};
pub use snapshot::{Snapshot, SnapshotChunk};
