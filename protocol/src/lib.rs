//! # raftsim-protocol: sans-IO protocol cores
//!
//! Everything here is a pure state machine: no I/O, no clock, no OS randomness, no threads.
//! A node reacts to inputs the driver hands it and returns everything it wants done. The
//! simulator in the `raftsim` crate is one driver; the tests below are another.
//!
//! - [`wal`]: the length-prefixed, CRC32-checked record codec used on disk *and* on the wire.
//! - [`kv`]: the ordered KV store and its operations.
//! - [`dedup`]: the client session table that makes retries exactly-once.
//! - [`node`]: the contract every node implements ([`node::Node`]) and its output buffer.
//! - [`raft`]: the Raft node.
//! - [`replication`]: the leader-follower replicated store (fixed leader, LWW, WAL shipping).
//!
//! ## Driving a node
//!
//! A driver owns time, the network and the disks. For each input it calls one `handle_*`
//! method, then drains the node's [`node::Output`]: first it makes `persist` durable, then it
//! delivers `messages`, `replies`, `applied` and `events`. Here three Raft nodes elect a
//! leader and commit a write over a perfect network:
//!
//! ```
//! use raftsim_protocol::kv::Op;
//! use raftsim_protocol::node::{ClientRequest, ClientResponse, Node};
//! use raftsim_protocol::raft::{Config, RaftNode};
//!
//! let config = Config::default();
//! let mut nodes: Vec<RaftNode> =
//!     (1..=3).map(|id| RaftNode::new(id, config.clone(), 1000 + id as u64, 0)).collect();
//! let mut disks: Vec<Vec<u8>> = vec![Vec::new(); 3];
//! let mut inbox = Vec::new(); // (to, from, message)
//! let mut replies = Vec::new();
//! for now in 0..2_000u64 {
//!     if now == 1_000 {
//!         let leader = nodes.iter_mut().find(|n| n.is_leader()).expect("a leader by now");
//!         let op = Op::Put { key: "x".into(), value: "1".into() };
//!         leader.handle_request(now, ClientRequest { client: 1, seq: 1, op: op.into(), timestamp: now });
//!     }
//!     for node in nodes.iter_mut() {
//!         if node.next_deadline_tick().is_some_and(|t| t <= now) {
//!             node.handle_tick(now);
//!         }
//!     }
//!     // Deliver last tick's messages (a one-tick network).
//!     for (to, from, message) in std::mem::take(&mut inbox) {
//!         nodes[to as usize - 1].handle_message(now, from, message);
//!     }
//!     for node in nodes.iter_mut() {
//!         let id = node.id();
//!         let out = node.output();
//!         disks[id as usize - 1].extend_from_slice(&out.persist); // persist first ...
//!         for (to, message) in out.messages.drain(..) {           // ... then send
//!             inbox.push((to, id, message));
//!         }
//!         replies.append(&mut out.replies);
//!         out.clear();
//!     }
//! }
//! assert!(matches!(replies[..], [ref r] if matches!(r.response, ClientResponse::Ok { .. })));
//! assert!(nodes.iter().all(|n| n.kv().get("x") == Some("1")));
//! ```

pub mod codec;
pub mod dedup;
pub mod draw;
pub mod kv;
pub mod node;
pub mod planted;
pub mod raft;
pub mod replication;
pub mod types;
pub mod wal;

pub use types::{ClientId, LogIndex, NodeId, Seq, Term, Tick};
