//! The node contract every protocol in this crate implements, and the output buffer it fills.
//!
//! A node is a pure state machine. The driver (the simulator, or a test loop) feeds it inputs —
//! [`Node::handle_tick`], [`Node::handle_message`], [`Node::handle_wire`] and
//! [`Node::handle_request`] — and after each input drains [`Node::output`]:
//!
//! 1. `persist`: WAL-framed records the node wants durable (term/vote, log entries, truncations).
//!    The driver appends them to the node's disk and **syncs them before releasing anything
//!    else from the same output** ("persist before send", as etcd's `Ready` documents). A crash
//!    before that sync loses the records *and* every message, reply and applied notice that
//!    depended on them, which is what keeps a forgotten vote from ever having been seen.
//!    When `persist_replace` is set, `persist` is instead the **complete new WAL** (after log
//!    compaction: a snapshot, the hard state, the entries the snapshot does not cover). The
//!    driver writes it as a new file and renames it over the old one once it is synced, as a
//!    real system does: a crash before the sync leaves the old file whole, a crash after it
//!    leaves the new one, never a mixture. Anything appended by later outputs goes after it.
//! 2. `messages`: `(to, message)` pairs, in the order the node produced them.
//! 3. `replies`: answers to client requests.
//! 4. `applied`: every state-machine application, for invariant checkers.
//! 5. `events`: role changes and other notable happenings, for traces and coverage.
//!
//! Time is an argument (`now`, the node's own clock in virtual ticks); a node never reads a
//! clock. Randomness comes from a ChaCha stream whose seed the driver supplies.
//! [`Node::next_deadline_tick`] tells the driver when the node next needs a tick, so the driver
//! does not have to tick idle nodes every virtual tick. A deadline can be *now*: a Raft leader
//! that appended entries or advanced its commit index asks for a tick in the same instant and
//! sends its AppendEntries then, one per follower for everything that arrived in that instant.
//! A driver gives that tick after the instant's other inputs (or at the next tick, if it only
//! ticks once per tick, at the price of a tick of latency).

use std::fmt;
use std::sync::Arc;

use crate::kv::{Op, OpResult};
use crate::types::{ClientId, LogIndex, NodeId, Seq, Term, Tick};
use crate::wal::DecodeError;

/// First sequence number of the read range (see [`ClientRequest::seq`]).
pub const READ_SEQ_BASE: Seq = 1 << 62;

/// Format `(client, seq)` as traces show it: `c1#7` for a write, `c1#r3` for a read.
pub fn request_label(client: ClientId, seq: Seq) -> String {
    if seq >= READ_SEQ_BASE {
        format!("c{client}#r{}", seq - READ_SEQ_BASE)
    } else {
        format!("c{client}#{seq}")
    }
}

/// A request from a simulated client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientRequest {
    /// Who sent it; replies go back to this client.
    pub client: ClientId,
    /// The client's sequence number for this request (see [`crate::dedup`]). Writes number
    /// 1, 2, 3, ... without gaps. Reads (`Get`) are idempotent and never deduplicated, so they
    /// take no write number: clients number them from [`READ_SEQ_BASE`] upwards, which keeps
    /// every request's `(client, seq)` unique so a late reply is never mistaken for another's.
    pub seq: Seq,
    /// What to do. Shared: the sender keeps it for retries, and a Raft leader's log entry
    /// takes it over without a copy.
    pub op: Arc<Op>,
    /// The writer's clock when it sent the request, for protocols that order writes by
    /// timestamp (last-writer-wins). Raft orders writes by its log and ignores it.
    pub timestamp: Tick,
}

/// A node's answer to a client request.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ClientResponse {
    /// The operation was applied (or the read served) with this result.
    Ok {
        /// What the KV store answered.
        result: OpResult,
    },
    /// The `(client, seq)` was already applied; `cached` is the original result when `seq` was
    /// the client's last applied sequence number, `None` for an older (stale) one.
    Duplicate {
        /// The cached reply of the original application, when still held.
        cached: Option<OpResult>,
    },
    /// The request skipped sequence numbers; nothing was applied.
    Gap {
        /// The sequence number the state machine expected next.
        expected: Seq,
    },
    /// The dedup table holds no session for this client (evicted, or never opened); whether
    /// earlier requests were applied cannot be told.
    SessionExpired,
    /// This node is not the leader (or stopped being leader before the request committed).
    /// The request *may* still commit later; retry with the same `seq` to find out.
    NotLeader {
        /// The leader this node believes in, if any.
        leader_hint: Option<NodeId>,
    },
    /// The node's bounded queue of pending requests is full; retry later.
    Overloaded,
}

impl ClientResponse {
    /// A short stable name, used by traces, histories and scenario expectations.
    pub fn kind_name(&self) -> &'static str {
        match self {
            ClientResponse::Ok { .. } => "ok",
            ClientResponse::Duplicate { .. } => "duplicate",
            ClientResponse::Gap { .. } => "gap",
            ClientResponse::SessionExpired => "session-expired",
            ClientResponse::NotLeader { .. } => "not-leader",
            ClientResponse::Overloaded => "overloaded",
        }
    }

    /// Whether the response settles the request: it took effect exactly once (`Ok`,
    /// `Duplicate`), or it certainly did not (`Gap`).
    pub fn is_definite(&self) -> bool {
        matches!(
            self,
            ClientResponse::Ok { .. }
                | ClientResponse::Duplicate { .. }
                | ClientResponse::Gap { .. }
        )
    }
}

impl fmt::Display for ClientResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientResponse::Ok { result } => write!(f, "Ok {result}"),
            ClientResponse::Duplicate { cached: Some(r) } => write!(f, "Duplicate cached={r}"),
            ClientResponse::Duplicate { cached: None } => write!(f, "Duplicate stale"),
            ClientResponse::Gap { expected } => write!(f, "Gap expected={expected}"),
            ClientResponse::SessionExpired => write!(f, "SessionExpired"),
            ClientResponse::NotLeader {
                leader_hint: Some(n),
            } => write!(f, "NotLeader hint=n{n}"),
            ClientResponse::NotLeader { leader_hint: None } => write!(f, "NotLeader hint=none"),
            ClientResponse::Overloaded => write!(f, "Overloaded"),
        }
    }
}

/// A reply to a client, as produced by a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The client to answer.
    pub client: ClientId,
    /// The request's sequence number.
    pub seq: Seq,
    /// The answer.
    pub response: ClientResponse,
}

/// What applying one committed client command did to the state machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApplyOutcome {
    /// The operation ran against the KV store with this result.
    Applied(OpResult),
    /// The dedup table recognised a duplicate; the store was not touched.
    Duplicate,
    /// The dedup table rejected the command (gap, stale or expired session); store untouched.
    Rejected,
}

/// A state-machine application, reported for checkers (exactly-once, state machine safety).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// Log index (or LSN) of the applied entry.
    pub index: LogIndex,
    /// Term of the applied entry.
    pub term: Term,
    /// The client command, or `None` for a protocol no-op.
    pub command: Option<(ClientId, Seq, Arc<Op>)>,
    /// What happened.
    pub outcome: ApplyOutcome,
}

/// A node's role, as shown to traces and checkers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Follows a leader (or waits for one).
    Follower,
    /// Raft pre-vote phase (thesis §9.6): probing whether an election could win.
    PreCandidate,
    /// Raft candidate: asking for votes in its term.
    Candidate,
    /// The leader of its term.
    Leader,
}

impl Role {
    /// Stable lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Role::Follower => "follower",
            Role::PreCandidate => "precandidate",
            Role::Candidate => "candidate",
            Role::Leader => "leader",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Something notable a node did, reported for traces and for fuzz coverage.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum NodeEvent {
    /// The node changed role (or term while keeping its role).
    RoleChanged {
        /// The new role.
        role: Role,
        /// The term the role is held in.
        term: Term,
    },
    /// The node granted its vote.
    Voted {
        /// The candidate voted for.
        candidate: NodeId,
        /// The term of the vote.
        term: Term,
    },
    /// A received message failed to decode (flipped bit, torn frame) and was dropped unseen.
    CorruptRejected {
        /// The sender, as told by the transport.
        from: NodeId,
        /// Why decoding failed.
        error: DecodeError,
    },
    /// A message from an older term was refused (fencing).
    StaleTermRejected {
        /// The sender.
        from: NodeId,
        /// The stale term the message carried.
        term: Term,
    },
    /// A leader learned of a higher term and stepped down.
    SteppedDown {
        /// The term it had led.
        old_term: Term,
        /// The higher term it saw.
        new_term: Term,
    },
    /// Check-quorum: a leader that has not heard from a majority stepped down.
    QuorumLost {
        /// The term it had led.
        term: Term,
    },
    /// An election ended without a winner and timed out again (split vote or lost votes).
    ElectionTimedOut {
        /// The term of the failed election.
        term: Term,
    },
    /// A follower rejected an append and sent a conflict hint (log repair).
    LogConflict {
        /// Index the leader tried to append after.
        prev_index: LogIndex,
        /// Where the follower told the leader to resume.
        hint_index: LogIndex,
    },
    /// The leader served a read from its lease without going through the log.
    LeaseRead {
        /// The client served.
        client: ClientId,
    },
    /// A lease read was attempted without a valid lease and went through the log instead.
    LeaseExpired,
    /// The node snapshotted its state machine at `index` and discarded the log up to it (log
    /// compaction, Raft §7).
    SnapshotTaken {
        /// The snapshot's last included index.
        index: LogIndex,
    },
    /// The node replaced its state machine with a snapshot a leader sent (Raft §7
    /// InstallSnapshot, or the leader-follower store's catch-up).
    SnapshotInstalled {
        /// The snapshot's last included index (LSN).
        index: LogIndex,
    },
    /// Free-form protocol note (the leader-follower protocol's status lines).
    Note(String),
}

/// Everything a node produced in response to inputs since the driver last drained it.
///
/// The buffers are reused across inputs (drain, don't replace) so the hot path does not
/// allocate once capacities settle.
#[derive(Debug)]
pub struct Output<M> {
    /// WAL-framed records to append to durable storage and sync before anything else below is
    /// released.
    pub persist: Vec<u8>,
    /// When true, `persist` is not an append but the complete new WAL content, which replaces
    /// the old file atomically once synced (write a new file, fsync, rename over the old one).
    /// Set by log compaction; the driver resets it when it drains `persist`.
    pub persist_replace: bool,
    /// Messages to peers, in order.
    pub messages: Vec<(NodeId, M)>,
    /// Client replies.
    pub replies: Vec<Reply>,
    /// State-machine applications.
    pub applied: Vec<Applied>,
    /// Notable events.
    pub events: Vec<NodeEvent>,
}

impl<M> Default for Output<M> {
    fn default() -> Self {
        Output {
            persist: Vec::new(),
            persist_replace: false,
            messages: Vec::new(),
            replies: Vec::new(),
            applied: Vec::new(),
            events: Vec::new(),
        }
    }
}

impl<M> Output<M> {
    /// True when nothing is waiting to be drained.
    pub fn is_empty(&self) -> bool {
        self.persist.is_empty()
            && !self.persist_replace
            && self.messages.is_empty()
            && self.replies.is_empty()
            && self.applied.is_empty()
            && self.events.is_empty()
    }

    /// Drop everything (keeping capacity).
    pub fn clear(&mut self) {
        self.persist.clear();
        self.persist_replace = false;
        self.messages.clear();
        self.replies.clear();
        self.applied.clear();
        self.events.clear();
    }
}

/// Why a node could not be rebuilt from its durable bytes (either protocol).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RestoreError {
    /// A record before the tail failed its checksum or was malformed: bit rot. The node must not
    /// rejoin with a silently shortened WAL (it could forget a vote or a record it acknowledged).
    Corrupt {
        /// Byte offset of the bad record.
        offset: usize,
        /// What was wrong with it.
        error: DecodeError,
    },
    /// A record decoded but does not fit the WAL (an index out of sequence, an unknown kind, a
    /// payload that does not parse).
    Inconsistent {
        /// Byte offset of the record.
        offset: usize,
        /// What did not fit.
        reason: String,
    },
}

impl fmt::Display for RestoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RestoreError::Corrupt { offset, error } => {
                write!(f, "corrupt WAL record at byte {offset}: {error}")
            }
            RestoreError::Inconsistent { offset, reason } => {
                write!(f, "inconsistent WAL record at byte {offset}: {reason}")
            }
        }
    }
}

impl std::error::Error for RestoreError {}

/// What recovery found on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreReport {
    /// Length of the valid prefix; the driver truncates the disk to it.
    pub valid_bytes: usize,
    /// Whether a torn (partially written) record was found and dropped at the tail.
    pub torn_tail: bool,
    /// Number of records replayed.
    pub records_count: usize,
}

/// A message type that travels on the simulated wire as bytes in WAL record framing.
pub trait WireMessage: Sized {
    /// Append this message's wire form (one WAL record of kind `Message`) to `out`.
    fn encode_wire(&self, out: &mut Vec<u8>);
    /// Decode a message from its wire form; every checksum inside is verified.
    fn decode_wire(bytes: &[u8]) -> Result<Self, DecodeError>;
}

/// A read-only summary of a node for checkers and traces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeView {
    /// The node's id.
    pub id: NodeId,
    /// Current role.
    pub role: Role,
    /// Current term (epoch).
    pub term: Term,
    /// Vote cast in the current term.
    pub voted_for: Option<NodeId>,
    /// Highest index known committed.
    pub commit_index: LogIndex,
    /// Highest index applied to the KV store.
    pub applied_index: LogIndex,
    /// Index of the last log entry.
    pub last_index: LogIndex,
    /// Term of the last log entry (0 for an empty log).
    pub last_term: Term,
    /// The leader this node believes in.
    pub leader_hint: Option<NodeId>,
    /// Digest of the KV store and dedup table (equal digests ⇒ equal state, with high
    /// probability).
    pub store_digest: u64,
}

/// The contract between a protocol node and its driver. See the module docs for the order in
/// which the driver must release outputs.
pub trait Node {
    /// The protocol's message type.
    type Message: WireMessage + fmt::Display + fmt::Debug;

    /// This node's id.
    fn id(&self) -> NodeId;
    /// Time passed: `now` is the node's clock. Called at (or after) [`Node::next_deadline_tick`].
    fn handle_tick(&mut self, now: Tick);
    /// A peer's message arrived intact.
    fn handle_message(&mut self, now: Tick, from: NodeId, message: Self::Message);
    /// A client request arrived.
    fn handle_request(&mut self, now: Tick, request: ClientRequest);
    /// The next tick at which this node needs [`Node::handle_tick`], if any; it may be the
    /// current one (see the module docs).
    fn next_deadline_tick(&self) -> Option<Tick>;
    /// The output produced so far; the driver drains it after each input.
    fn output(&mut self) -> &mut Output<Self::Message>;
    /// Read-only summary.
    fn view(&self) -> NodeView;

    /// Bytes arrived from a peer: decode them (verifying every CRC) and handle the message, or
    /// drop it and report [`NodeEvent::CorruptRejected`]. A corrupt message is never applied.
    fn handle_wire(&mut self, now: Tick, from: NodeId, bytes: &[u8]) {
        match Self::Message::decode_wire(bytes) {
            Ok(message) => self.handle_message(now, from, message),
            Err(error) => self
                .output()
                .events
                .push(NodeEvent::CorruptRejected { from, error }),
        }
    }
}
