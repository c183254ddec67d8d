//! The leader-follower replicated KV store (the "W11" protocol) as a pure state machine.
//!
//! - [`config`]: cluster settings, validated up front.
//! - [`record`]: the replicated log's records, their effects and last-writer-wins versions.
//! - [`store`]: the last-writer-wins store and the replica state snapshot.
//! - [`message`]: messages and their CRC-checked wire form.
//! - [`node`]: the replica itself, implementing [`crate::node::Node`].
//!
//! ## The protocol
//!
//! One replica, [`Config::leader`], is the leader for good; the others follow. There are no
//! elections and the epoch (term) is the constant [`EPOCH`].
//!
//! - **Writes** go to the leader. It checks the client's dedup session, *executes* the write
//!   against its own store, assigns the next LSN and persists a WAL `Entry` record holding the
//!   request, the result and the effect (`Set`, `Tombstone` or nothing). It ships the record to
//!   every online follower at once (`pipeline`), or one unacknowledged Ship per follower at a
//!   time (sequential). A follower verifies every CRC, persists, applies and acknowledges
//!   records in LSN order, and Nacks a Ship that starts past the LSN it expects. The write
//!   commits when `quorum` replicas, the leader included, hold it durably; the leader then
//!   reports `Applied` and answers `Ok` in LSN order.
//! - **Reads** at the leader wait until every write accepted before them has committed.
//!   Followers redirect (`NotLeader`), or with `read_from_follower` answer from their own store.
//! - **Heartbeats** every `heartbeat_ticks` carry the leader's LSN and commit LSN and trigger the
//!   re-shipping of anything unacknowledged for a heartbeat interval (lost or corrupted Ships).
//!   A follower silent for `keepalive_timeout_ticks` is marked offline and no longer shipped to
//!   or waited on until it is heard from again. The leader notes connectivity
//!   (`2/2 followers responded`) and lag changes (`lag n2=0 n3=7`).
//! - **Rejoin**: a restarted follower recovers its WAL and sends `Rejoin { last_lsn }`; the
//!   leader ships from there, or sends a snapshot of its whole state when those records are
//!   older than its retained WAL (`wal_retain_records`).
//!
//! ## Guarantees
//!
//! - A write acknowledged `Ok` is durable on `quorum` replicas; a retry is answered from the
//!   dedup table (`Duplicate`) only once the original has committed, and never applied twice.
//! - Corrupt bytes are never applied: every shipped record carries its own CRC.
//! - Replicas converge: effects are applied by last-writer-wins, whose order is total and
//!   independent of arrival order, and records are applied in LSN order on every replica.
//! - Reads at the leader are linearizable *with respect to the values the leader holds*, while
//!   the leader stays up (but see the first anomaly).
//!
//! ## Known anomalies and limits (deliberate: the simulator must be able to show them)
//!
//! - **Last-writer-wins with writer clocks loses acknowledged writes.** Effects are ordered by
//!   the *writer's* timestamp ([`crate::node::ClientRequest::timestamp`]). A write from a client
//!   whose clock lags is acknowledged `Ok` and logged, yet every replica — the leader included —
//!   keeps the value of an earlier-logged write with a later timestamp. The client was told its
//!   write succeeded; no replica shows it.
//! - **Equal timestamps resolve by value, not by order.** Two writes to a key with the same
//!   timestamp are ordered by their value bytes (then client, then seq), a tombstone counting as
//!   the empty value: even one client's own `Put x=1` then `Delete x` in the same tick leaves
//!   `x=1` everywhere.
//! - **Follower reads are stale** (`read_from_follower`): a follower answers from whatever it
//!   has applied, and it applies on receipt, before the quorum — so it may even show a write
//!   that is never acknowledged.
//! - **No failover.** If the leader is down, writes (and leader reads) wait for it; requests it
//!   held when it crashed are lost with it (clients retry; the dedup table, rebuilt from its WAL,
//!   answers retries of logged writes). A leader that lost durable records (a wiped disk) cannot
//!   be repaired by its followers.
//! - A follower too far behind for the retained WAL catches up only if the snapshot of the
//!   whole state fits in one record ([`message::SNAPSHOT_PAYLOAD_BYTES_MAX`]). Tombstones are
//!   never collected.

pub mod config;
pub mod message;
pub mod node;
pub mod record;
pub mod store;

pub use config::{Config, ConfigError};
pub use message::{decode_message, Message, WireError};
pub use node::{ReplicaNode, RestoreError, RestoreReport};
pub use record::{Effect, LogRecord, Stamp, Version, EPOCH};
pub use store::{LwwOutcome, LwwStore, Slot};
