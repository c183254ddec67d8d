//! Identifiers and units shared by every protocol.
//!
//! Plain integer aliases keep the hot path free of wrappers, while the names say what a number
//! means. Durations are always virtual ticks: nothing in this crate knows about seconds.

/// A node's id. Nodes are numbered `1..=nodes_count` so traces read `n1`, `n2`, ...
pub type NodeId = u32;
/// A simulated client's id (`c1`, `c2`, ...). Ids start at 1.
pub type ClientId = u64;
/// A client's per-request sequence number. The first request of a session is 1.
pub type Seq = u64;
/// A Raft term (or, for the leader-follower protocol, the leader's epoch).
pub type Term = u64;
/// A position in a log (Raft index or WAL LSN). Index 0 is the empty prefix; entries start at 1.
pub type LogIndex = u64;
/// Virtual time: the simulator's clock counts ticks from 0.
pub type Tick = u64;
