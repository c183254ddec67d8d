//! One node of either protocol, behind one type, so the cluster, the checkers and the scenario
//! interpreter are written once. Enum dispatch: a `match` per call, no boxing, no generics
//! spreading through every file.

use std::fmt;

use raftsim_protocol::kv::KvStore;
use raftsim_protocol::node::WireMessage;
use raftsim_protocol::node::{Applied, ClientRequest, Node, NodeEvent, NodeView, Reply, Role};
use raftsim_protocol::raft::{self, RaftNode};
use raftsim_protocol::replication::{self, ReplicaNode};
use raftsim_protocol::types::{LogIndex, NodeId, Term, Tick};

use crate::disk::Disk;

/// Which protocol a cluster runs, with its configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProtocolConfig {
    /// Raft.
    Raft(raft::Config),
    /// The leader-follower replicated store.
    Replication(replication::Config),
}

impl ProtocolConfig {
    /// Number of nodes.
    pub fn nodes_count(&self) -> u32 {
        match self {
            ProtocolConfig::Raft(c) => c.nodes_count,
            ProtocolConfig::Replication(c) => c.nodes_count,
        }
    }

    /// The protocol's name, as traces and flags spell it.
    pub fn name(&self) -> &'static str {
        match self {
            ProtocolConfig::Raft(_) => "raft",
            ProtocolConfig::Replication(_) => "replication",
        }
    }

    /// Check the configuration.
    pub fn validate(&self) -> Result<(), String> {
        match self {
            ProtocolConfig::Raft(c) => c.validate().map_err(|e| e.to_string()),
            ProtocolConfig::Replication(c) => c.validate().map_err(|e| e.to_string()),
        }
    }

    /// The Raft configuration, if this is Raft.
    pub fn raft(&self) -> Option<&raft::Config> {
        match self {
            ProtocolConfig::Raft(c) => Some(c),
            ProtocolConfig::Replication(_) => None,
        }
    }

    /// The replication configuration, if this is the leader-follower store.
    pub fn replication(&self) -> Option<&replication::Config> {
        match self {
            ProtocolConfig::Raft(_) => None,
            ProtocolConfig::Replication(c) => Some(c),
        }
    }
}

/// The message type names of both protocols, by [`AnyMessage::kind_index`].
pub const KIND_NAMES: [&str; 15] = [
    "RequestVote",
    "PreVote",
    "Vote",
    "PreVoteResponse",
    "AppendEntries",
    "AppendResponse",
    "InstallSnapshot",
    "SnapshotResponse",
    "Heartbeat",
    "HeartbeatAck",
    "Ship",
    "Ack",
    "Nack",
    "Rejoin",
    "Snapshot",
];

/// A message of either protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnyMessage {
    /// Raft.
    Raft(raft::Message),
    /// Leader-follower.
    Replication(replication::Message),
}

impl AnyMessage {
    /// Stable type name (`AppendEntries`, `Ship`, ...).
    pub fn kind_name(&self) -> &'static str {
        match self {
            AnyMessage::Raft(m) => m.kind_name(),
            AnyMessage::Replication(m) => m.kind_name(),
        }
    }

    /// Dense index of the message's type, in `0..KIND_NAMES.len()`, with
    /// `KIND_NAMES[m.kind_index()] == m.kind_name()`: the cluster counts messages by type in an
    /// array instead of searching a list of names for every message.
    pub fn kind_index(&self) -> usize {
        use raft::Message as R;
        use replication::Message as L;
        let index = match self {
            AnyMessage::Raft(m) => match m {
                R::RequestVote {
                    pre_vote: false, ..
                } => 0,
                R::RequestVote { pre_vote: true, .. } => 1,
                R::Vote {
                    pre_vote: false, ..
                } => 2,
                R::Vote { pre_vote: true, .. } => 3,
                R::AppendEntries { .. } => 4,
                R::AppendResponse { .. } => 5,
                R::InstallSnapshot { .. } => 6,
                R::SnapshotResponse { .. } => 7,
            },
            AnyMessage::Replication(m) => match m {
                L::Heartbeat { .. } => 8,
                L::HeartbeatAck { .. } => 9,
                L::Ship { .. } => 10,
                L::Ack { .. } => 11,
                L::Nack { .. } => 12,
                L::Rejoin { .. } => 13,
                L::Snapshot { .. } => 14,
            },
        };
        debug_assert_eq!(KIND_NAMES[index], self.kind_name());
        index
    }

    /// The term (epoch) the message carries.
    pub fn term(&self) -> Term {
        match self {
            AnyMessage::Raft(m) => m.term(),
            AnyMessage::Replication(m) => m.term(),
        }
    }

    /// The wire form.
    pub fn encode_wire(&self, out: &mut Vec<u8>) {
        match self {
            AnyMessage::Raft(m) => m.encode_wire(out),
            AnyMessage::Replication(m) => m.encode_wire(out),
        }
    }
}

impl fmt::Display for AnyMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AnyMessage::Raft(m) => m.fmt(f),
            AnyMessage::Replication(m) => m.fmt(f),
        }
    }
}

/// Everything a node produced for one input, drained out of its output buffer. Reused between
/// inputs so the hot path keeps its capacity.
#[derive(Debug, Default)]
pub struct Drained {
    /// Messages to peers from a Raft node. Kept in the protocol's own type (wrapped as
    /// [`AnyMessage`] when sent) so draining moves the whole buffer instead of each message.
    pub raft_messages: Vec<(NodeId, raft::Message)>,
    /// Messages to peers from a leader-follower node (see `raft_messages`).
    pub replication_messages: Vec<(NodeId, replication::Message)>,
    /// Client replies.
    pub replies: Vec<Reply>,
    /// State-machine applications.
    pub applied: Vec<Applied>,
    /// Notable events.
    pub events: Vec<NodeEvent>,
    /// Snapshots installed (their last index), observed by the checkers once synced.
    pub snapshots_installed: Vec<LogIndex>,
}

impl Drained {
    /// True when nothing is held.
    pub fn is_empty(&self) -> bool {
        self.raft_messages.is_empty()
            && self.replication_messages.is_empty()
            && self.replies.is_empty()
            && self.applied.is_empty()
            && self.events.is_empty()
            && self.snapshots_installed.is_empty()
    }
}

/// What a restart recovered.
#[derive(Debug)]
pub struct Recovered {
    /// The rebuilt node.
    pub node: AnyNode,
    /// Length of the valid WAL prefix.
    pub valid_bytes: usize,
    /// Whether a torn tail was dropped.
    pub torn_tail: bool,
    /// Records replayed.
    pub records_count: usize,
}

/// A node of either protocol.
///
/// The variants differ in size; a cluster holds a handful of nodes in a `Vec`, so the unused
/// bytes cost nothing worth an extra pointer chase on every event.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum AnyNode {
    /// Raft.
    Raft(RaftNode),
    /// Leader-follower.
    Replication(ReplicaNode),
}

macro_rules! each {
    ($self:expr, $n:ident => $body:expr) => {
        match $self {
            AnyNode::Raft($n) => $body,
            AnyNode::Replication($n) => $body,
        }
    };
}

impl AnyNode {
    /// A fresh node.
    pub fn new(config: &ProtocolConfig, id: NodeId, seed: u64, now: Tick) -> AnyNode {
        match config {
            ProtocolConfig::Raft(c) => AnyNode::Raft(RaftNode::new(id, c.clone(), seed, now)),
            ProtocolConfig::Replication(c) => {
                AnyNode::Replication(ReplicaNode::new(id, c.clone(), now))
            }
        }
    }

    /// Rebuild a node from its durable bytes; `Err` describes the corruption that stops it.
    pub fn restore(
        config: &ProtocolConfig,
        id: NodeId,
        seed: u64,
        now: Tick,
        durable: &[u8],
    ) -> Result<Recovered, String> {
        match config {
            ProtocolConfig::Raft(c) => RaftNode::restore(id, c.clone(), seed, now, durable)
                .map(|(node, r)| Recovered {
                    node: AnyNode::Raft(node),
                    valid_bytes: r.valid_bytes,
                    torn_tail: r.torn_tail,
                    records_count: r.records_count,
                })
                .map_err(|e| e.to_string()),
            ProtocolConfig::Replication(c) => ReplicaNode::restore(id, c.clone(), now, durable)
                .map(|(node, r)| Recovered {
                    node: AnyNode::Replication(node),
                    valid_bytes: r.valid_bytes,
                    torn_tail: r.torn_tail,
                    records_count: r.records_count,
                })
                .map_err(|e| e.to_string()),
        }
    }

    /// Time passed.
    pub fn handle_tick(&mut self, now: Tick) {
        each!(self, n => n.handle_tick(now))
    }

    /// An intact message arrived. Panics on a message of the other protocol (a simulator bug).
    ///
    /// Inlined into the cluster's `deliver`, its one caller: as a call, the message (72
    /// bytes) was copied once more into its argument on the way to the protocol's handler.
    #[inline(always)]
    pub fn handle_message(&mut self, now: Tick, from: NodeId, message: AnyMessage) {
        // Matched one at a time rather than as a tuple, which would copy the message once more.
        match self {
            AnyNode::Raft(n) => match message {
                AnyMessage::Raft(m) => n.handle_message(now, from, m),
                m => panic!("n{} got a message of the other protocol: {m}", n.id()),
            },
            AnyNode::Replication(n) => match message {
                AnyMessage::Replication(m) => n.handle_message(now, from, m),
                m => panic!("n{} got a message of the other protocol: {m}", n.id()),
            },
        }
    }

    /// A Raft message arrived, moved out of its event (see the cluster's `pop_and_dispatch`).
    /// Panics on a leader-follower node (a simulator bug).
    #[inline(always)]
    pub fn handle_raft_message(&mut self, now: Tick, from: NodeId, message: raft::Message) {
        match self {
            AnyNode::Raft(n) => n.handle_message(now, from, message),
            // Not printed: a message lent to the panic is staged on the stack on every call.
            AnyNode::Replication(n) => panic!("n{} got a Raft message", n.id()),
        }
    }

    /// Bytes arrived (possibly corrupt).
    pub fn handle_wire(&mut self, now: Tick, from: NodeId, bytes: &[u8]) {
        each!(self, n => n.handle_wire(now, from, bytes))
    }

    /// A client request arrived.
    pub fn handle_request(&mut self, now: Tick, request: ClientRequest) {
        each!(self, n => n.handle_request(now, request))
    }

    /// When the node next needs a tick.
    pub fn next_deadline_tick(&self) -> Option<Tick> {
        each!(self, n => n.next_deadline_tick())
    }

    /// The node's id.
    pub fn id(&self) -> NodeId {
        each!(self, n => n.id())
    }

    /// Read-only summary.
    pub fn view(&self) -> NodeView {
        each!(self, n => n.view())
    }

    /// Write the node's pending persist bytes to `disk` — appended, or as a whole new file when
    /// the node set `persist_replace` (see [`Disk::replace`]) — returning the watermark a sync
    /// must reach, if anything was written, and move everything else into `drained`.
    ///
    /// Inlined into the cluster's `collect_output`, which runs after every input: most of the
    /// buffers are empty most of the time, and the checks are cheaper than the call (measured:
    /// -1.0% instructions on fuzz-standard, -1.5% on commit-batch1).
    #[inline(always)]
    pub fn drain_output(&mut self, disk: &mut Disk, drained: &mut Drained) -> Option<usize> {
        /// Move everything from `from` to the end of `to`. Into an empty buffer (the usual
        /// case: `to` was released since the last input) the two swap, a few words instead of
        /// a copy of every element; the capacities circulate between node and cluster. Most
        /// buffers are empty after most inputs: nothing to do then.
        fn move_all<T>(from: &mut Vec<T>, to: &mut Vec<T>) {
            if from.is_empty() {
                return;
            }
            if to.is_empty() {
                std::mem::swap(from, to);
            } else {
                to.append(from);
            }
        }
        macro_rules! drain {
            ($n:expr, $messages:ident) => {{
                let out = $n.output();
                let watermark = if out.persist_replace {
                    let w = disk.replace(&out.persist);
                    out.persist.clear();
                    out.persist_replace = false;
                    Some(w)
                } else if out.persist.is_empty() {
                    None
                } else {
                    let w = disk.write(&out.persist);
                    out.persist.clear();
                    Some(w)
                };
                move_all(&mut out.messages, &mut drained.$messages);
                move_all(&mut out.replies, &mut drained.replies);
                move_all(&mut out.applied, &mut drained.applied);
                move_all(&mut out.events, &mut drained.events);
                watermark
            }};
        }
        match self {
            AnyNode::Raft(n) => drain!(n, raft_messages),
            AnyNode::Replication(n) => drain!(n, replication_messages),
        }
    }

    /// Current role.
    pub fn role(&self) -> Role {
        match self {
            AnyNode::Raft(n) => n.role(),
            AnyNode::Replication(n) => n.role(),
        }
    }

    /// Whether the node leads.
    pub fn is_leader(&self) -> bool {
        self.role() == Role::Leader
    }

    /// Current term (the leader-follower store's epoch is always 1).
    pub fn term(&self) -> Term {
        match self {
            AnyNode::Raft(n) => n.term(),
            AnyNode::Replication(_) => 1,
        }
    }

    /// Highest committed index (LSN) this node knows.
    pub fn commit_index(&self) -> LogIndex {
        match self {
            AnyNode::Raft(n) => n.commit_index(),
            AnyNode::Replication(n) => n.commit_lsn(),
        }
    }

    /// Highest index (LSN) applied to the store.
    pub fn applied_index(&self) -> LogIndex {
        match self {
            AnyNode::Raft(n) => n.applied_index(),
            AnyNode::Replication(n) => n.applied_lsn(),
        }
    }

    /// Last index (LSN) held.
    pub fn last_index(&self) -> LogIndex {
        match self {
            AnyNode::Raft(n) => n.log().last_index(),
            AnyNode::Replication(n) => n.last_lsn(),
        }
    }

    /// The KV store as clients see it.
    pub fn kv(&self) -> &KvStore {
        match self {
            AnyNode::Raft(n) => n.kv(),
            AnyNode::Replication(n) => n.store(),
        }
    }

    /// The Raft node, if this is Raft.
    pub fn as_raft(&self) -> Option<&RaftNode> {
        match self {
            AnyNode::Raft(n) => Some(n),
            AnyNode::Replication(_) => None,
        }
    }

    /// The leader-follower node, if this is one.
    pub fn as_replica(&self) -> Option<&ReplicaNode> {
        match self {
            AnyNode::Raft(_) => None,
            AnyNode::Replication(n) => Some(n),
        }
    }
}
