//! The Raft node: a pure state machine implementing the Raft paper's Figure 2, plus pre-vote,
//! check-quorum, leader stickiness and lease reads from Ongaro's thesis.
//!
//! Inputs: [`Node::handle_tick`], [`Node::handle_message`], [`Node::handle_request`], and
//! [`RaftNode::restore`] from durable bytes after a crash. Outputs: the [`Output`] buffer (see
//! [`crate::node`] for the order the driver must release it in). The node persists its term,
//! vote and log as WAL records; everything else (commit index, KV store, dedup table) is
//! rebuilt by re-applying the log after a restart.
//!
//! ## Log compaction and InstallSnapshot (§7)
//!
//! Once `snapshot_entries_threshold` entries were applied since the last snapshot, the node
//! snapshots its state machine (KV store and dedup table) at its applied index and discards the
//! log up to it. The WAL is then rewritten whole — the snapshot's chunk records, the hard
//! state, the entries after the snapshot — and handed to the driver with
//! [`Output::persist_replace`], so disk use stays bounded too. A restart restores the snapshot
//! first and replays the entries after it. Invariant: snapshot index ≤ applied index ≤ commit
//! index ≤ last index.
//!
//! A leader whose follower needs an entry it has compacted away sends its snapshot instead, in
//! chunks of at most `snapshot_chunk_bytes`, one chunk in flight per follower; a chunk that got
//! no answer for a heartbeat interval goes again at the next heartbeat. The follower reassembles
//! the chunks in order, checks the whole image's CRC, installs it (keeping the log entries after
//! the snapshot only if its log holds the snapshot's last entry), persists it, and answers.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::collections::VecDeque;
use std::sync::Arc;

use super::config::Config;
use super::log::Log;
use super::message::{Command, ConflictHint, Entries, Entry, Message};
use super::snapshot::{
    Offer, Snapshot, SnapshotAssembly, SnapshotChunk, SNAPSHOT_DISK_CHUNK_BYTES,
};
use crate::codec;
use crate::dedup::{DedupCheck, DedupTable};
use crate::draw::UniformTicks;
use crate::kv::{KvStore, Op, OpResult};
use crate::node::{
    Applied, ApplyOutcome, ClientRequest, ClientResponse, Node, NodeEvent, NodeView, Output, Reply,
    Role,
};
use crate::planted::{self, Bug};
use crate::types::{ClientId, LogIndex, NodeId, Seq, Term, Tick};
use crate::wal::{self, DecodeError, RecordKind};

/// A snapshot transfer to one follower (§7): which snapshot, how far, and whether a chunk is in
/// flight. One chunk at a time: the next leaves when the follower answers the previous one.
#[derive(Debug, Clone)]
struct SnapshotSend {
    /// The snapshot being sent. The transfer keeps it even after the leader compacts again, so
    /// a compaction never restarts a transfer (with frequent compactions and a slow link it
    /// could otherwise never finish). At most one image per follower is held this way.
    snapshot: Arc<Snapshot>,
    /// Offset of the next chunk to send: what the follower has confirmed receiving.
    offset: u64,
    /// When the chunk in flight left; `None` when none is.
    sent_at: Option<Tick>,
}

/// Per-follower replication state kept by a leader (§5.3's nextIndex and matchIndex).
#[derive(Debug, Clone, Default)]
struct Progress {
    /// Next index to send.
    next_index: LogIndex,
    /// Highest index known replicated on the follower.
    match_index: LogIndex,
    /// The leader-clock send time of the newest AppendEntries this follower acknowledged in the
    /// current term; a majority of these dates the lease.
    acked_sent_at: Option<Tick>,
    /// Heard from since the last check-quorum round.
    recently_active: bool,
    /// The snapshot transfer under way, when the follower needs entries compacted away.
    snapshot: Option<SnapshotSend>,
    /// The commit index the last AppendEntries to this follower carried.
    commit_sent: LogIndex,
    /// The next flush sends this follower its entries: it was caught up when new entries were
    /// appended, or it acknowledged a batch and more are waiting. A lagging follower is not
    /// sent more on every flush; its acknowledgements pace it.
    append_due: bool,
}

/// State a leader alone needs.
#[derive(Debug, Clone)]
struct LeaderState {
    /// Indexed by `node_id - 1`; the leader's own slot is unused.
    progress: Vec<Progress>,
    heartbeat_deadline: Tick,
    quorum_check_deadline: Tick,
    /// Client requests this leader appended and has not answered yet, as `(index, client,
    /// seq)` in ascending index order. A queue, not a map: a leader appends at ever higher
    /// indexes and applies in index order, so a request is always added at the back and
    /// answered from the front.
    pending: VecDeque<(LogIndex, ClientId, Seq)>,
    /// Set when new entries or a higher commit index wait to go out: the leader asks for a
    /// tick at this time and sends one AppendEntries per follower then. Every request and
    /// response the driver delivers in the same instant lands in that one message (as etcd
    /// batches everything proposed between two `Ready`s), instead of one message each.
    flush_at: Option<Tick>,
    /// The run of entries last shipped, with the index of its first entry: the followers that
    /// stand at the same index get the same run, shared rather than copied again. A leader's
    /// log only grows while it leads (compaction drops entries but never changes one), so a
    /// run built in this leadership still holds what the log does at its indexes.
    shipped: (LogIndex, Entries),
}

#[derive(Debug, Clone)]
enum RoleState {
    Follower,
    /// Bitmask of nodes that granted the pre-vote (bit `id - 1`).
    PreCandidate {
        granted: u16,
    },
    /// Bitmask of nodes that granted their vote.
    Candidate {
        granted: u16,
    },
    Leader(Box<LeaderState>),
}

pub use crate::node::{RestoreError, RestoreReport};

/// A Raft node. See the module docs.
#[derive(Debug)]
pub struct RaftNode {
    id: NodeId,
    config: Config,
    rng: ChaCha8Rng,
    /// How `rng` draws election timeouts: `election_timeout_ticks_min..=_max` of `config`.
    election_timeout: UniformTicks,
    /// Persistent (§5, Figure 2): current term, vote, log.
    term: Term,
    voted_for: Option<NodeId>,
    log: Log,
    /// The snapshot covering the compacted prefix `1..=log.prefix_index()` (`None` while the
    /// log is uncompacted). Persistent: a compacted WAL begins with it.
    snapshot: Option<Arc<Snapshot>>,
    /// The term and vote as last written to the WAL (what a rewritten WAL must carry; it can
    /// lag the volatile pair only under a planted bug).
    durable_hard_state: (Term, Option<NodeId>),
    /// Volatile.
    commit_index: LogIndex,
    applied_index: LogIndex,
    kv: KvStore,
    dedup: DedupTable,
    role: RoleState,
    leader_hint: Option<NodeId>,
    election_deadline: Tick,
    /// The tick [`Node::next_deadline_tick`] answers: a leader's earliest timer (heartbeat,
    /// quorum check, flush), anyone else's election deadline. Kept where those timers are
    /// written, so that the question, asked after every input to every node, is a load rather
    /// than a branch on the role (which one node after another makes hard to predict).
    next_deadline: Tick,
    /// When this node last heard from a leader of its current term (leader stickiness).
    last_leader_contact: Option<Tick>,
    /// How many times this incarnation truncated its log (checkers: a leader never does).
    truncations_total: u64,
    /// A follower's snapshot being received chunk by chunk (volatile: lost in a crash).
    receiving: Option<SnapshotAssembly>,
    out: Output<Message>,
}

const VOTE_NONE: u32 = 0;

impl Progress {
    /// The follower holds the log up to `index` (from an AppendEntries or InstallSnapshot
    /// answer): match index only grows, next index stays past it, and a snapshot transfer the
    /// follower no longer needs is dropped.
    fn confirm(&mut self, index: LogIndex) {
        self.match_index = self.match_index.max(index);
        self.next_index = self.next_index.max(self.match_index + 1);
        if self
            .snapshot
            .as_ref()
            .is_some_and(|s| s.snapshot.last_index <= self.match_index)
        {
            self.snapshot = None;
        }
    }
}

impl RaftNode {
    /// A fresh node with an empty disk. `seed` seeds its election-timeout stream; the driver
    /// derives it from the run's seed.
    pub fn new(id: NodeId, config: Config, seed: u64, now: Tick) -> RaftNode {
        match RaftNode::restore(id, config, seed, now, &[]) {
            Ok((node, _)) => node,
            Err(e) => unreachable!("an empty disk always restores: {e}"),
        }
    }

    /// Rebuild a node after a crash from its durable bytes. A torn tail (a record cut short by
    /// the crash) is dropped and reported; corruption anywhere else is an error.
    ///
    /// A compacted WAL begins with the chunk records of a snapshot: the snapshot becomes the
    /// state machine and the log's prefix (applied and commit index at its last index), and the
    /// entries after it are replayed into the log. A snapshot later in the WAL is adopted the
    /// same way (§7: entries after it are kept if the log holds its last entry). A snapshot
    /// whose last chunk is missing at the end of the WAL was cut short by the crash: it is
    /// dropped like any torn tail.
    pub fn restore(
        id: NodeId,
        config: Config,
        seed: u64,
        now: Tick,
        durable: &[u8],
    ) -> Result<(RaftNode, RestoreReport), RestoreError> {
        assert!(
            config.validate().is_ok(),
            "config must be validated before building nodes: {:?}",
            config.validate()
        );
        assert!(
            id >= 1 && id <= config.nodes_count,
            "node id {id} outside 1..={}",
            config.nodes_count
        );
        let mut node = RaftNode {
            id,
            rng: ChaCha8Rng::seed_from_u64(seed),
            election_timeout: UniformTicks::new(
                config.election_timeout_ticks_min,
                config.election_timeout_ticks_max,
            ),
            term: 0,
            voted_for: None,
            log: Log::new(),
            snapshot: None,
            durable_hard_state: (0, None),
            commit_index: 0,
            applied_index: 0,
            kv: KvStore::new(),
            dedup: DedupTable::new(config.clients_max),
            role: RoleState::Follower,
            leader_hint: None,
            election_deadline: 0,
            next_deadline: 0,
            last_leader_contact: None,
            truncations_total: 0,
            receiving: None,
            out: Output::default(),
            config,
        };
        let mut report = RestoreReport {
            valid_bytes: 0,
            torn_tail: false,
            records_count: 0,
        };
        let mut offset = 0usize;
        // A snapshot being read: its chunks so far, where its first chunk starts, how many.
        let mut assembly: Option<SnapshotAssembly> = None;
        let mut snapshot_start = (0usize, 0usize);
        while offset < durable.len() {
            let (record, used) = match wal::decode_record(&durable[offset..]) {
                Ok(ok) => ok,
                Err(DecodeError::Truncated { .. }) => {
                    report.torn_tail = true;
                    break;
                }
                Err(error) => return Err(RestoreError::Corrupt { offset, error }),
            };
            let inconsistent = |reason: String| RestoreError::Inconsistent { offset, reason };
            if assembly.is_some() && record.kind != RecordKind::Snapshot {
                return Err(inconsistent(format!(
                    "{} record inside a snapshot",
                    record.kind.name()
                )));
            }
            match record.kind {
                RecordKind::HardState => {
                    let mut r = codec::Reader::new(record.payload);
                    let vote = r
                        .u32()
                        .map_err(|e| inconsistent(format!("hard state payload: {e}")))?;
                    node.term = record.term;
                    node.voted_for = (vote != VOTE_NONE).then_some(vote);
                    node.durable_hard_state = (node.term, node.voted_for);
                }
                RecordKind::Snapshot => {
                    let chunk = SnapshotChunk::from_record(&record)
                        .map_err(|e| inconsistent(format!("snapshot chunk: {e}")))?;
                    if chunk.offset == 0 {
                        if assembly.is_some() {
                            return Err(inconsistent("snapshot restarts mid-snapshot".into()));
                        }
                        snapshot_start = (offset, report.records_count);
                    }
                    match SnapshotAssembly::offer(&mut assembly, chunk) {
                        Offer::Partial { .. } => {}
                        Offer::Ignored { .. } => {
                            return Err(inconsistent("snapshot chunk out of order".into()))
                        }
                        Offer::Corrupt(error) => {
                            return Err(RestoreError::Corrupt { offset, error })
                        }
                        Offer::Complete(snapshot) => {
                            if snapshot.last_index <= node.applied_index {
                                return Err(inconsistent(format!(
                                    "snapshot at index {} does not advance past applied index {}",
                                    snapshot.last_index, node.applied_index
                                )));
                            }
                            let (kv, dedup) = snapshot
                                .decode_state()
                                .map_err(|e| inconsistent(format!("snapshot image: {e}")))?;
                            node.adopt_snapshot(snapshot, kv, dedup);
                        }
                    }
                }
                RecordKind::Entry => {
                    if record.index != node.log.last_index() + 1 {
                        return Err(inconsistent(format!(
                            "entry index {} follows last index {}",
                            record.index,
                            node.log.last_index()
                        )));
                    }
                    let command = Command::decode(record.payload)
                        .map_err(|e| inconsistent(format!("entry payload: {e}")))?;
                    node.log.push(Entry::new(record.term, command));
                }
                RecordKind::Truncate => {
                    if record.index <= node.log.prefix_index()
                        || record.index > node.log.last_index() + 1
                    {
                        return Err(inconsistent(format!(
                            "truncate from {} outside the log's {}..={}",
                            record.index,
                            node.log.first_index(),
                            node.log.last_index() + 1
                        )));
                    }
                    node.log.truncate_from(record.index);
                }
                other => {
                    return Err(inconsistent(format!(
                        "unexpected {} record in a raft WAL",
                        other.name()
                    )))
                }
            }
            offset += used;
            report.records_count += 1;
        }
        if assembly.is_some() {
            // The crash cut the snapshot short: like a torn record, it never became durable as a
            // whole, and the state before it is intact.
            report.torn_tail = true;
            (offset, report.records_count) = snapshot_start;
        }
        report.valid_bytes = offset;
        node.assert_snapshot_invariants();
        node.reset_election_deadline(now);
        Ok((node, report))
    }

    // ----- read-only accessors for checkers and tests -----

    /// The node's current term.
    pub fn term(&self) -> Term {
        self.term
    }

    /// Current role.
    pub fn role(&self) -> Role {
        match self.role {
            RoleState::Follower => Role::Follower,
            RoleState::PreCandidate { .. } => Role::PreCandidate,
            RoleState::Candidate { .. } => Role::Candidate,
            RoleState::Leader(_) => Role::Leader,
        }
    }

    /// True when this node is leader.
    pub fn is_leader(&self) -> bool {
        matches!(self.role, RoleState::Leader(_))
    }

    /// The log.
    pub fn log(&self) -> &Log {
        &self.log
    }

    /// The KV store (state after `applied_index`).
    pub fn kv(&self) -> &KvStore {
        &self.kv
    }

    /// The dedup table.
    pub fn dedup(&self) -> &DedupTable {
        &self.dedup
    }

    /// Highest committed index known to this node.
    pub fn commit_index(&self) -> LogIndex {
        self.commit_index
    }

    /// How many times this incarnation truncated its log.
    pub fn truncations_total(&self) -> u64 {
        self.truncations_total
    }

    /// Highest index applied to the KV store.
    pub fn applied_index(&self) -> LogIndex {
        self.applied_index
    }

    /// The snapshot's last included index: entries up to it were compacted away (0 when the
    /// log was never compacted).
    pub fn snapshot_index(&self) -> LogIndex {
        self.log.prefix_index()
    }

    /// The snapshot covering the compacted prefix of the log, if any.
    pub fn snapshot(&self) -> Option<&Snapshot> {
        self.snapshot.as_deref()
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    // ----- persistence -----

    fn persist_hard_state(&mut self) {
        self.durable_hard_state = (self.term, self.voted_for);
        self.write_hard_state();
    }

    /// Append the durable term and vote as a `HardState` record.
    fn write_hard_state(&mut self) {
        let (term, vote) = self.durable_hard_state;
        wal::encode_record_with(
            0,
            term,
            RecordKind::HardState,
            4,
            &mut self.out.persist,
            |out| codec::put_u32(out, vote.unwrap_or(VOTE_NONE)),
        );
    }

    /// Replace the whole WAL (after a compaction or an installed snapshot): the snapshot's
    /// chunk records, the hard state, then every entry the log still holds. What this output
    /// had appended so far is part of that state, so it is dropped from `persist`; anything the
    /// output appends later follows the new content.
    fn persist_rewrite(&mut self) {
        let snapshot = self
            .snapshot
            .as_ref()
            .expect("only a compacted log is rewritten");
        assert_eq!(
            snapshot.last_index,
            self.log.prefix_index(),
            "n{}: the WAL's snapshot must end where the log's prefix does",
            self.id
        );
        self.out.persist.clear();
        self.out.persist_replace = true;
        snapshot.encode_records(SNAPSHOT_DISK_CHUNK_BYTES, &mut self.out.persist);
        self.write_hard_state();
        let first = self.log.first_index();
        for (k, entry) in self
            .log
            .slice(first, self.log.last_index())
            .iter()
            .enumerate()
        {
            entry.encode_record(first + k as LogIndex, &mut self.out.persist);
        }
    }

    fn persist_truncate(&mut self, from: LogIndex) {
        wal::encode_record(from, 0, RecordKind::Truncate, &[], &mut self.out.persist);
    }

    /// Append `entry` to the log and to the persist buffer. The entry keeps its record, so
    /// the followers it is shipped to append the same bytes without framing them again.
    fn append_entry(&mut self, mut entry: Entry) {
        let index = self.log.last_index() + 1;
        entry.encode_record_and_keep(index, &mut self.out.persist);
        self.log.push(entry);
    }

    // ----- timers -----

    fn reset_election_deadline(&mut self, now: Tick) {
        let timeout = self.election_timeout.draw(&mut self.rng);
        self.election_deadline = now + timeout;
        if !self.is_leader() {
            self.next_deadline = self.election_deadline;
        }
    }

    /// Leader stickiness (thesis §6.2/§9.6): a node that heard from a current leader less than
    /// the minimum election timeout ago believes that leader is alive.
    fn heard_from_leader_recently(&self, now: Tick) -> bool {
        if self.is_leader() {
            return true;
        }
        self.leader_hint.is_some()
            && self
                .last_leader_contact
                .is_some_and(|t| now < t + self.config.election_timeout_ticks_min)
    }

    // ----- role changes -----

    fn peers(&self) -> impl Iterator<Item = NodeId> {
        let me = self.id;
        (1..=self.config.nodes_count).filter(move |&n| n != me)
    }

    fn bit(id: NodeId) -> u16 {
        1 << (id - 1)
    }

    fn has_quorum(&self, granted: u16) -> bool {
        granted.count_ones() as usize >= self.config.quorum()
    }

    /// Become follower in `term` (raising the term clears the vote, §5.1). A leader stepping
    /// down answers every client request it still holds with `NotLeader`: it can no longer
    /// promise they commit (W12 R5, fencing).
    fn become_follower(&mut self, now: Tick, term: Term, leader: Option<NodeId>) {
        let old_role = self.role();
        let old_term = self.term;
        if term > self.term {
            self.term = term;
            self.voted_for = None;
            self.persist_hard_state();
        }
        if let RoleState::Leader(state) = std::mem::replace(&mut self.role, RoleState::Follower) {
            for (_, client, seq) in state.pending {
                self.out.replies.push(Reply {
                    client,
                    seq,
                    response: ClientResponse::NotLeader {
                        leader_hint: leader,
                    },
                });
            }
            if term > old_term {
                self.out.events.push(NodeEvent::SteppedDown {
                    old_term,
                    new_term: term,
                });
            }
        }
        self.leader_hint = leader;
        if leader.is_some() {
            self.last_leader_contact = Some(now);
        }
        self.reset_election_deadline(now);
        if old_role != Role::Follower || old_term != self.term {
            self.out.events.push(NodeEvent::RoleChanged {
                role: Role::Follower,
                term: self.term,
            });
        }
    }

    fn start_election(&mut self, now: Tick) {
        if self.config.pre_vote {
            self.become_pre_candidate(now);
        } else {
            self.become_candidate(now);
        }
    }

    /// Pre-vote (thesis §9.6): ask whether we could win in `term + 1` without raising our term.
    fn become_pre_candidate(&mut self, now: Tick) {
        self.role = RoleState::PreCandidate {
            granted: Self::bit(self.id),
        };
        self.leader_hint = None;
        self.reset_election_deadline(now);
        self.out.events.push(NodeEvent::RoleChanged {
            role: Role::PreCandidate,
            term: self.term,
        });
        if self.has_quorum(Self::bit(self.id)) {
            self.become_candidate(now);
            return;
        }
        let request = Message::RequestVote {
            term: self.term + 1,
            last_index: self.log.last_index(),
            last_term: self.log.last_term(),
            pre_vote: true,
        };
        self.broadcast(request);
    }

    /// §5.2: increment the term, vote for self, ask everyone else.
    fn become_candidate(&mut self, now: Tick) {
        self.term += 1;
        self.voted_for = Some(self.id);
        self.persist_hard_state();
        self.role = RoleState::Candidate {
            granted: Self::bit(self.id),
        };
        self.leader_hint = None;
        self.reset_election_deadline(now);
        self.out.events.push(NodeEvent::RoleChanged {
            role: Role::Candidate,
            term: self.term,
        });
        if self.has_quorum(Self::bit(self.id)) {
            self.become_leader(now);
            return;
        }
        let request = Message::RequestVote {
            term: self.term,
            last_index: self.log.last_index(),
            last_term: self.log.last_term(),
            pre_vote: false,
        };
        self.broadcast(request);
    }

    fn broadcast(&mut self, message: Message) {
        let peers: u16 = self.peers().fold(0, |m, p| m | Self::bit(p));
        for peer in 1..=self.config.nodes_count {
            if peers & Self::bit(peer) != 0 {
                self.out.messages.push((peer, message.clone()));
            }
        }
    }

    /// §5.2/§8: the winner appends a no-op so entries of earlier terms can commit (Figure 8
    /// forbids counting replicas for them directly).
    fn become_leader(&mut self, now: Tick) {
        let next_index = self.log.last_index() + 2; // after the no-op appended below
        let progress = vec![
            Progress {
                next_index,
                match_index: 0,
                acked_sent_at: None,
                recently_active: false,
                snapshot: None,
                commit_sent: 0,
                append_due: false,
            };
            self.config.nodes_count as usize
        ];
        self.role = RoleState::Leader(Box::new(LeaderState {
            progress,
            heartbeat_deadline: now + self.config.heartbeat_ticks,
            quorum_check_deadline: now + self.config.election_timeout_ticks_min,
            pending: VecDeque::new(),
            flush_at: None,
            shipped: Default::default(),
        }));
        self.leader_timers_moved();
        self.leader_hint = Some(self.id);
        // A snapshot half-received from an earlier leader is of no use to a leader.
        self.receiving = None;
        self.out.events.push(NodeEvent::RoleChanged {
            role: Role::Leader,
            term: self.term,
        });
        self.append_entry(Entry::new(self.term, Command::Noop));
        // The no-op goes out to everyone from the start of the log tail they are believed to
        // have: next_index was set past it, so step back one to include it.
        if let RoleState::Leader(state) = &mut self.role {
            for p in state.progress.iter_mut() {
                p.next_index -= 1;
            }
        }
        self.broadcast_append(now);
        self.maybe_commit(now);
    }

    // ----- leader replication -----

    fn leader_mut(&mut self) -> Option<&mut LeaderState> {
        match &mut self.role {
            RoleState::Leader(state) => Some(state),
            _ => None,
        }
    }

    /// The tick the node's timers call for next (see `RaftNode::next_deadline`), computed
    /// from the timers themselves.
    fn deadline_of_timers(&self) -> Tick {
        match &self.role {
            RoleState::Leader(state) => {
                let timers = if self.config.check_quorum {
                    state.heartbeat_deadline.min(state.quorum_check_deadline)
                } else {
                    state.heartbeat_deadline
                };
                state.flush_at.map_or(timers, |at| at.min(timers))
            }
            _ => self.election_deadline,
        }
    }

    /// Record that a leader timer moved: `next_deadline` follows it.
    fn leader_timers_moved(&mut self) {
        debug_assert!(self.is_leader());
        self.next_deadline = self.deadline_of_timers();
    }

    /// Send `to` the entries from its `next_index` (at most `entries_per_append_max`), or an
    /// empty heartbeat when it is caught up, or the next snapshot chunk when it needs entries
    /// compacted away. Advances `next_index` optimistically (pipelining); a rejection moves it
    /// back. For the answers that call for one follower; the loops over every follower
    /// (`broadcast_append`, `flush`: nearly every AppendEntries) share one [`AppendBatch`].
    fn send_append(&mut self, now: Tick, to: NodeId) {
        let batch = AppendBatch::new(self, now);
        if let Some((mut parts, progress)) = self.append_parts() {
            batch.send(&mut parts, &mut progress[(to - 1) as usize], to);
        }
    }

    fn broadcast_append(&mut self, now: Tick) {
        let Some(state) = self.leader_mut() else {
            return;
        };
        state.flush_at = None;
        let id = self.id;
        self.send_appends(now, |peer, p| {
            p.append_due = false;
            peer != id
        });
        self.leader_timers_moved();
    }

    /// What an AppendEntries is made from, borrowed apart (see [`AppendParts`]). `None` unless
    /// leader.
    #[inline(always)]
    fn append_parts(&mut self) -> Option<(AppendParts<'_>, &mut [Progress])> {
        let RaftNode {
            log,
            role: RoleState::Leader(state),
            out,
            snapshot,
            ..
        } = self
        else {
            return None;
        };
        let LeaderState {
            progress, shipped, ..
        } = &mut **state;
        Some((
            AppendParts {
                log,
                snapshot,
                shipped,
                out,
            },
            progress,
        ))
    }

    /// Ask for a tick now to send what is waiting (see `LeaderState::flush_at`).
    fn request_flush(&mut self, now: Tick) {
        if let Some(state) = self.leader_mut() {
            state.flush_at.get_or_insert(now);
            self.leader_timers_moved();
        }
    }

    /// Send one AppendEntries to each follower that is due entries, or has an older commit
    /// index than the leader's.
    fn flush(&mut self, now: Tick) {
        let Some(state) = self.leader_mut() else {
            return;
        };
        state.flush_at = None;
        let (id, commit_index) = (self.id, self.commit_index);
        self.send_appends(now, |peer, p| {
            peer != id && {
                let due = std::mem::replace(&mut p.append_due, false);
                due || p.commit_sent < commit_index
            }
        });
        self.leader_timers_moved();
    }

    /// Offer every progress slot, in id order, to `pick` (the leader's own slot too), and send
    /// each follower it picks its AppendEntries: one [`AppendBatch`] for them all.
    #[inline(always)]
    fn send_appends(&mut self, now: Tick, mut pick: impl FnMut(NodeId, &mut Progress) -> bool) {
        let batch = AppendBatch::new(self, now);
        let id = self.id;
        let Some((mut parts, progress)) = self.append_parts() else {
            return;
        };
        for (peer, p) in (1..).zip(progress.iter_mut()) {
            if pick(peer, p) {
                debug_assert_ne!(peer, id, "a leader sends itself nothing");
                batch.send(&mut parts, p, peer);
            }
        }
    }

    /// Figure 2, rules for leaders: commit the highest index replicated on a majority, but only
    /// if it belongs to the current term (§5.4.2, Figure 8).
    fn maybe_commit(&mut self, now: Tick) {
        let Some(candidate) = self.commit_candidate() else {
            return;
        };
        self.commit_index = candidate;
        self.apply_committed();
        // Tell followers promptly, as etcd does, so their state machines keep up.
        self.request_flush(now);
    }

    /// The index a leader can commit now (see [`RaftNode::maybe_commit`]), if it is past the
    /// commit index.
    fn commit_candidate(&self) -> Option<LogIndex> {
        let RoleState::Leader(state) = &self.role else {
            return None;
        };
        let last_index = self.log.last_index();
        let quorum = self.config.quorum();
        let commit_index = self.commit_index;
        let mut matches = [0 as LogIndex; super::config::NODES_COUNT_MAX as usize];
        let n = state.progress.len();
        let mut ahead = 0;
        for (i, p) in state.progress.iter().enumerate() {
            let m = if i as NodeId + 1 == self.id {
                last_index
            } else {
                p.match_index
            };
            matches[i] = m;
            ahead += usize::from(m > commit_index);
        }
        // The quorum-th highest match index exceeds the commit index exactly when a quorum of
        // match indices do. A call that finds no quorum ahead (a client request in a cluster
        // of several nodes, an acknowledgement of what is already committed) need not sort.
        if ahead < quorum {
            return None;
        }
        let matches = &mut matches[..n];
        sort_descending(matches);
        let candidate = matches[quorum - 1];
        let current_term =
            self.log.term(candidate) == Some(self.term) || planted::active(Bug::CommitPreviousTerm);
        (candidate > commit_index && current_term).then_some(candidate)
    }

    // ----- state machine -----

    /// Apply committed entries in order through the dedup table into the KV store (§5.3: "if
    /// commitIndex > lastApplied, apply"). A leader answers the clients whose requests it
    /// appended.
    fn apply_committed(&mut self) {
        assert!(
            self.commit_index <= self.log.last_index(),
            "n{}: commit index {} beyond last index {}",
            self.id,
            self.commit_index,
            self.log.last_index()
        );
        while self.applied_index < self.commit_index {
            let index = self.applied_index + 1;
            let entry = self
                .log
                .entry(index)
                .expect("committed entries are held until applied");
            let term = entry.term;
            let applied = match &entry.command {
                Command::Noop => Applied {
                    index,
                    term,
                    command: None,
                    outcome: ApplyOutcome::Applied(OpResult::Ok),
                },
                Command::Client { client, seq, op } => {
                    let (client, seq) = (*client, *seq);
                    // Planted bug: followers skip the session table altogether.
                    let dedup = !planted::active(Bug::DedupOnlyOnLeader)
                        || matches!(self.role, RoleState::Leader(_));
                    let outcome =
                        apply_client(&mut self.kv, &mut self.dedup, client, seq, op, index, dedup);
                    // A leader answers the client whose request it appended at `index`: the
                    // oldest one it holds, as it applies in index order.
                    if let RoleState::Leader(state) = &mut self.role {
                        debug_assert!(
                            state.pending.front().is_none_or(|&(i, ..)| i >= index),
                            "n{}: a pending request below the applied index {index}",
                            self.id
                        );
                        if state.pending.front() == Some(&(index, client, seq)) {
                            state.pending.pop_front();
                            self.out.replies.push(Reply {
                                client,
                                seq,
                                response: response_to(&outcome, &self.dedup, client, seq),
                            });
                        }
                    }
                    Applied {
                        index,
                        term,
                        command: Some((client, seq, Arc::clone(op))),
                        outcome,
                    }
                }
            };
            self.applied_index = index;
            self.out.applied.push(applied);
        }
        self.maybe_compact();
        self.assert_snapshot_invariants();
    }

    // ----- log compaction and snapshots (§7) -----

    /// snapshot index ≤ applied index ≤ commit index ≤ last index, and the snapshot held is
    /// the one the log's prefix ends at.
    // Inlined: this runs after every batch of applied entries, and the check itself is a few
    // comparisons; the report of a broken invariant is out of line.
    #[inline]
    fn assert_snapshot_invariants(&self) {
        let ordered = self.log.prefix_index() <= self.applied_index
            && self.applied_index <= self.commit_index
            && self.commit_index <= self.log.last_index();
        // Compared field by field rather than as two built `Option`s.
        let prefix = (self.log.prefix_index(), self.log.prefix_term());
        let covers = match &self.snapshot {
            Some(s) => prefix.0 > 0 && (s.last_index, s.last_term) == prefix,
            None => prefix.0 == 0,
        };
        if !(ordered && covers) {
            self.snapshot_invariants_broken();
        }
    }

    /// Panic with the broken invariant of [`RaftNode::assert_snapshot_invariants`].
    #[cold]
    #[inline(never)]
    fn snapshot_invariants_broken(&self) -> ! {
        panic!(
            "n{}: snapshot index {} <= applied index {} <= commit index {} <= last index {} \
             must hold, and the snapshot held ({:?}) must cover exactly the compacted prefix \
             ({:?})",
            self.id,
            self.log.prefix_index(),
            self.applied_index,
            self.commit_index,
            self.log.last_index(),
            self.snapshot.as_ref().map(|s| (s.last_index, s.last_term)),
            (self.log.prefix_index(), self.log.prefix_term()),
        )
    }

    /// §7 log compaction: once `snapshot_entries_threshold` entries were applied since the last
    /// snapshot, snapshot the state machine at the applied index and discard the log up to it.
    /// Only applied — so committed — entries are ever discarded: no leader can ask to
    /// overwrite them.
    fn maybe_compact(&mut self) {
        if self.applied_index - self.log.prefix_index() >= self.config.snapshot_entries_threshold {
            self.compact();
        }
    }

    /// The compaction of [`RaftNode::maybe_compact`], once it is due: out of line, as it comes
    /// once per `snapshot_entries_threshold` entries, and in line it made the function that
    /// applies every committed entry several times the size.
    #[cold]
    #[inline(never)]
    fn compact(&mut self) {
        let prefix_index = self.log.prefix_index();
        let index = self.applied_index;
        let term = self
            .log
            .term(index)
            .expect("applied entries are held until compacted");
        assert!(
            prefix_index < index && index <= self.commit_index,
            "n{}: snapshot at {index} must lie past the previous one ({prefix_index}) and within \
             the commit index ({})",
            self.id,
            self.commit_index
        );
        self.snapshot = Some(Arc::new(Snapshot::capture(
            index,
            term,
            &self.kv,
            &self.dedup,
        )));
        self.log.compact(index, term);
        self.persist_rewrite();
        self.out.events.push(NodeEvent::SnapshotTaken { index });
    }

    /// §7: make `snapshot` the state machine and the log's prefix. Entries after the snapshot
    /// are kept when the log holds the snapshot's last entry (same index and term); otherwise
    /// the whole log is discarded. Returns whether entries past the snapshot were discarded.
    fn adopt_snapshot(&mut self, snapshot: Snapshot, kv: KvStore, dedup: DedupTable) -> bool {
        let (index, term) = (snapshot.last_index, snapshot.last_term);
        assert!(
            index > self.applied_index,
            "n{}: a snapshot at {index} would move the state machine back from {}",
            self.id,
            self.applied_index
        );
        let tail_discarded = if self.log.term(index) == Some(term) {
            self.log.compact(index, term);
            false
        } else {
            let had_tail = self.log.last_index() > index;
            self.log.reset_to(index, term);
            had_tail
        };
        self.kv = kv;
        self.dedup = dedup;
        self.applied_index = index;
        self.commit_index = self.commit_index.max(index);
        self.snapshot = Some(Arc::new(snapshot));
        tail_discarded
    }

    // ----- message handlers -----

    /// Fencing: a stale-term message is refused; requests get our term back so a deposed
    /// leader or stale candidate learns it is out of date.
    // Out of line and cold: outside elections and partitions heals, messages carry the
    // receiver's term, and this keeps `handle_message` small.
    #[cold]
    #[inline(never)]
    fn reject_stale_term(&mut self, from: NodeId, message: &Message) {
        let term = message.term();
        self.out
            .events
            .push(NodeEvent::StaleTermRejected { from, term });
        match *message {
            Message::AppendEntries { sent_at, .. } => self.out.messages.push((
                from,
                Message::AppendResponse {
                    term: self.term,
                    success: false,
                    match_index: 0,
                    hint: None,
                    echo_sent_at: sent_at,
                },
            )),
            Message::RequestVote { .. } => self.out.messages.push((
                from,
                Message::Vote {
                    term: self.term,
                    granted: false,
                    pre_vote: false,
                },
            )),
            Message::InstallSnapshot { ref chunk, .. } => self.out.messages.push((
                from,
                Message::SnapshotResponse {
                    term: self.term,
                    last_index: chunk.last_index,
                    last_term: chunk.last_term,
                    installed: false,
                    next_offset: 0,
                },
            )),
            _ => {}
        }
    }

    fn log_up_to_date(&self, last_index: LogIndex, last_term: Term) -> bool {
        // §5.4.1: compare last terms, then lengths.
        (last_term, last_index) >= (self.log.last_term(), self.log.last_index())
    }

    fn handle_pre_vote_request(
        &mut self,
        now: Tick,
        from: NodeId,
        term: Term,
        last_index: LogIndex,
        last_term: Term,
    ) {
        // Thesis §9.6: grant if the candidate could win — its term is ahead of ours, its log is
        // at least as up to date — and we have not heard from a live leader recently. Nothing
        // changes on our side: no term bump, no recorded vote.
        let granted = term > self.term
            && self.log_up_to_date(last_index, last_term)
            && !self.heard_from_leader_recently(now);
        self.out.messages.push((
            from,
            Message::Vote {
                term: if granted { term } else { self.term },
                granted,
                pre_vote: true,
            },
        ));
    }

    fn handle_vote_request(
        &mut self,
        now: Tick,
        from: NodeId,
        last_index: LogIndex,
        last_term: Term,
    ) {
        // Figure 2: grant if we have not voted for someone else this term and the candidate's
        // log is at least as up to date as ours. The vote is persisted before the reply leaves
        // (the driver syncs `persist` before releasing messages).
        let can_vote = self.voted_for.is_none()
            || self.voted_for == Some(from)
            || planted::active(Bug::DoubleVote);
        let granted = can_vote && !self.is_leader() && self.log_up_to_date(last_index, last_term);
        if granted {
            if self.voted_for != Some(from) {
                self.voted_for = Some(from);
                if !planted::active(Bug::VoteNotPersisted) {
                    self.persist_hard_state();
                }
            }
            // §5.2: granting a vote resets the election timer.
            self.reset_election_deadline(now);
            self.out.events.push(NodeEvent::Voted {
                candidate: from,
                term: self.term,
            });
        }
        self.out.messages.push((
            from,
            Message::Vote {
                term: self.term,
                granted,
                pre_vote: false,
            },
        ));
    }

    fn handle_vote(&mut self, now: Tick, from: NodeId, term: Term, granted: bool, pre_vote: bool) {
        match (&mut self.role, pre_vote) {
            (RoleState::PreCandidate { granted: set }, true)
                if granted && term == self.term + 1 =>
            {
                *set |= Self::bit(from);
                let set = *set;
                if self.has_quorum(set) {
                    self.become_candidate(now);
                }
            }
            (RoleState::Candidate { granted: set }, false) if granted && term == self.term => {
                *set |= Self::bit(from);
                let set = *set;
                if self.has_quorum(set) {
                    self.become_leader(now);
                }
            }
            _ => {}
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn handle_append(
        &mut self,
        now: Tick,
        from: NodeId,
        prev_index: LogIndex,
        prev_term: Term,
        entries: Entries,
        commit: LogIndex,
        sent_at: Tick,
    ) {
        // A valid current-term AppendEntries: recognise the leader (a candidate of this term
        // steps down, §5.2) and reset the election timer.
        if !matches!(self.role, RoleState::Follower) {
            self.become_follower(now, self.term, Some(from));
        }
        self.leader_hint = Some(from);
        self.last_leader_contact = Some(now);
        self.reset_election_deadline(now);

        // §5.3 consistency check (the refusal, with its conflict hint, is out of line).
        if prev_index > self.log.last_index() {
            self.refuse_append(from, prev_index, sent_at);
            return;
        }
        match self.log.term(prev_index) {
            Some(t) if t == prev_term => {}
            Some(_) => {
                self.refuse_append(from, prev_index, sent_at);
                return;
            }
            None => {
                // prev_index is inside our compacted prefix, which is committed and therefore
                // matches the leader's log; accept from there.
            }
        }
        let last_new = prev_index + entries.len() as LogIndex;
        let prefix_index = self.log.prefix_index();
        for (k, entry) in entries.iter().enumerate() {
            let index = prev_index + 1 + k as LogIndex;
            if index <= prefix_index {
                // Covered by our snapshot: committed, so the leader's entry is the same one.
                continue;
            }
            match self.log.term(index) {
                Some(t) if t == entry.term => continue,
                Some(_) => self.truncate_and_append(index, entry),
                None => self.append_entry(entry.clone()),
            }
        }
        // §5.3 step 5: commit = min(leaderCommit, index of last new entry).
        let new_commit = commit.min(last_new);
        if new_commit > self.commit_index {
            self.commit_index = new_commit;
            self.apply_committed();
        }
        let m = Message::AppendResponse {
            term: self.term,
            success: true,
            match_index: last_new,
            hint: None,
            echo_sent_at: sent_at,
        };
        self.out.messages.push((from, m));
    }

    /// §5.3: refuse an AppendEntries whose `prev_index` the log does not hold with the
    /// leader's term, with the conflict hint for fast backup: the log's end when it stops short
    /// of `prev_index`, else the start of the run of the term it holds there. Out of line and
    /// cold, as the refusals of [`RaftNode::handle_append`] are rare.
    #[cold]
    #[inline(never)]
    fn refuse_append(&mut self, from: NodeId, prev_index: LogIndex, sent_at: Tick) {
        let hint = match self.log.term(prev_index) {
            // Another term at `prev_index`: the leader may skip that term's whole run.
            Some(t) => ConflictHint {
                term: Some(t),
                index: self.log.first_index_of_term_run(prev_index),
            },
            // The log stops short of `prev_index` (a refused index is never in the compacted
            // prefix, which matches every leader's log).
            None => ConflictHint {
                term: None,
                index: self.log.last_index() + 1,
            },
        };
        self.out.events.push(NodeEvent::LogConflict {
            prev_index,
            hint_index: hint.index,
        });
        let m = Message::AppendResponse {
            term: self.term,
            success: false,
            match_index: 0,
            hint: Some(hint),
            echo_sent_at: sent_at,
        };
        self.out.messages.push((from, m));
    }

    /// §5.3 step 3: the log holds another entry at `index`; it and all that follow are deleted,
    /// and `entry` takes its place. Out of line and cold: only a follower that missed a leader
    /// change truncates.
    #[cold]
    #[inline(never)]
    fn truncate_and_append(&mut self, index: LogIndex, entry: &Entry) {
        self.log.truncate_from(index);
        self.truncations_total += 1;
        self.persist_truncate(index);
        self.append_entry(entry.clone());
    }

    fn handle_append_response(
        &mut self,
        now: Tick,
        from: NodeId,
        success: bool,
        match_index: LogIndex,
        hint: Option<ConflictHint>,
        echo_sent_at: Tick,
    ) {
        let last_index = self.log.last_index();
        let commit_index = self.commit_index;
        if success && match_index > last_index {
            // A follower cannot hold more than the leader sent; a response claiming so is not
            // from this leader's term (or not well-formed). Ignore it.
            return;
        }
        let Some(state) = self.leader_mut() else {
            return;
        };
        let p = &mut state.progress[(from - 1) as usize];
        p.recently_active = true;
        if success {
            p.acked_sent_at = Some(
                p.acked_sent_at
                    .map_or(echo_sent_at, |t| t.max(echo_sent_at)),
            );
            // Confirming less than was sent is normal pipelining (or lost messages, which the
            // heartbeat repairs).
            p.confirm(match_index);
            let more = p.next_index <= last_index;
            p.append_due |= more;
            // Every input that can let a leader commit ends with `maybe_commit`, so before
            // this answer nothing was left to commit; a follower confirming no more than is
            // committed changes no match index above the commit index, so it still is not
            // (on a healthy cluster, every acknowledgement after the quorum's is such).
            if p.match_index > commit_index {
                self.maybe_commit(now);
            } else {
                debug_assert_eq!(self.commit_candidate(), None, "n{}", self.id);
            }
            if more {
                self.request_flush(now);
            }
        } else {
            self.handle_append_refusal(now, from, hint);
        }
    }

    /// A follower refused an AppendEntries (§5.3): move its `next_index` back to where its
    /// conflict hint says the logs may agree, and send from there. Out of line and cold, as
    /// refusals are rare.
    #[cold]
    #[inline(never)]
    fn handle_append_refusal(&mut self, now: Tick, from: NodeId, hint: Option<ConflictHint>) {
        let last_index = self.log.last_index();
        let resume_at = hint.map(|h| match h.term {
            // The leader has entries of the follower's conflicting term: resume after its last
            // one. Otherwise skip the follower's whole run of that term.
            Some(t) => self.log.last_index_of_term(t).map_or(h.index, |i| i + 1),
            None => h.index,
        });
        let Some(state) = self.leader_mut() else {
            return;
        };
        let p = &mut state.progress[(from - 1) as usize];
        let resume_at = resume_at.unwrap_or(p.next_index.saturating_sub(1));
        // Never go back below what the follower confirmed, never past the end.
        p.next_index = resume_at.max(p.match_index + 1).min(last_index + 1);
        self.send_append(now, from);
    }

    /// §7, receiver side: reassemble the leader's snapshot chunk by chunk, then install it.
    fn handle_install_snapshot(&mut self, now: Tick, from: NodeId, chunk: SnapshotChunk) {
        // Like AppendEntries, a current-term InstallSnapshot comes from the leader: recognise
        // it and reset the election timer (§5.2), so a long transfer does not start elections.
        if !matches!(self.role, RoleState::Follower) {
            self.become_follower(now, self.term, Some(from));
        }
        self.leader_hint = Some(from);
        self.last_leader_contact = Some(now);
        self.reset_election_deadline(now);

        let term = self.term;
        let (last_index, last_term) = (chunk.last_index, chunk.last_term);
        let reply = |installed, next_offset| Message::SnapshotResponse {
            term,
            last_index,
            last_term,
            installed,
            next_offset,
        };
        if last_index <= self.commit_index {
            // Everything the snapshot holds is committed here already, and committed entries
            // are the leader's: acknowledge without installing, which would move the state
            // machine back. (A duplicate chunk, or a follower that caught up meanwhile.)
            if self
                .receiving
                .as_ref()
                .is_some_and(|a| a.last_index() <= self.commit_index)
            {
                self.receiving = None;
            }
            self.out.messages.push((from, reply(true, 0)));
            return;
        }
        let m = match SnapshotAssembly::offer(&mut self.receiving, chunk) {
            Offer::Partial { next_offset } | Offer::Ignored { next_offset } => {
                reply(false, next_offset)
            }
            Offer::Corrupt(error) => {
                self.out
                    .events
                    .push(NodeEvent::CorruptRejected { from, error });
                reply(false, 0)
            }
            Offer::Complete(snapshot) => match snapshot.decode_state() {
                Ok((kv, dedup)) => {
                    self.install_snapshot(snapshot, kv, dedup);
                    reply(true, 0)
                }
                Err(_) => {
                    self.out.events.push(NodeEvent::CorruptRejected {
                        from,
                        error: DecodeError::Malformed {
                            reason: "snapshot image does not parse",
                        },
                    });
                    reply(false, 0)
                }
            },
        };
        self.out.messages.push((from, m));
    }

    /// §7: replace the state machine with the snapshot, keep or discard the log after it, and
    /// persist it all before the answer leaves (the driver syncs `persist` first).
    fn install_snapshot(&mut self, snapshot: Snapshot, kv: KvStore, dedup: DedupTable) {
        let index = snapshot.last_index;
        assert!(
            index > self.commit_index,
            "n{}: installing a snapshot at {index} at or below the commit index {}",
            self.id,
            self.commit_index
        );
        if self.adopt_snapshot(snapshot, kv, dedup) {
            // Entries past the snapshot were discarded: for the checkers that is a truncation.
            self.truncations_total += 1;
        }
        self.persist_rewrite();
        self.out.events.push(NodeEvent::SnapshotInstalled { index });
        self.assert_snapshot_invariants();
    }

    /// §7, sender side: an installed (or already covered) snapshot moves the follower's
    /// progress past it; otherwise the next chunk goes from where the follower stands.
    fn handle_snapshot_response(
        &mut self,
        now: Tick,
        from: NodeId,
        last_index: LogIndex,
        installed: bool,
        next_offset: u64,
    ) {
        let log_last_index = self.log.last_index();
        let Some(state) = self.leader_mut() else {
            return;
        };
        let p = &mut state.progress[(from - 1) as usize];
        p.recently_active = true;
        if installed {
            if last_index > log_last_index {
                // Not a snapshot this leader could have sent; ignore.
                return;
            }
            p.confirm(last_index);
            let more = p.next_index <= log_last_index;
            self.maybe_commit(now);
            if more {
                self.send_append(now, from);
            }
            return;
        }
        match &mut p.snapshot {
            Some(send) if send.snapshot.last_index == last_index => {
                if next_offset == send.offset && send.sent_at.is_some() {
                    // The chunk it asks for is the one in flight (this answers a duplicate);
                    // if that chunk is lost, the heartbeat sends it again.
                    return;
                }
                send.offset = next_offset;
                send.sent_at = None;
            }
            // An answer about a transfer this leader no longer runs.
            _ => return,
        }
        self.send_append(now, from);
    }

    /// The part of [`Node::handle_message`] for a message whose term is not the receiver's:
    /// a pre-vote request is answered whatever its term; a higher term is adopted (§5.1),
    /// unless leader stickiness ignores the vote request carrying it; a lower one is refused.
    /// Returns whether the message is still to be handled, in what is now its term. The
    /// message is lent, not moved: handed back, it would be copied once more on every message
    /// of the receiver's own term, which go the same way.
    #[cold]
    #[inline(never)]
    fn screen_term(&mut self, now: Tick, from: NodeId, message: &Message) -> bool {
        let term = message.term();
        // Pre-vote requests never change anyone's term.
        if let Message::RequestVote {
            pre_vote: true,
            last_index,
            last_term,
            ..
        } = *message
        {
            self.handle_pre_vote_request(now, from, term, last_index, last_term);
            return false;
        }
        if term < self.term {
            self.reject_stale_term(from, message);
            return false;
        }
        let granted_pre_vote = matches!(
            message,
            Message::Vote {
                pre_vote: true,
                granted: true,
                ..
            }
        );
        if let Message::RequestVote { .. } = message {
            // Leader stickiness: while we believe a leader is alive, a vote request from a
            // higher term is ignored outright, term and all (thesis §4.2.3).
            if self.config.check_quorum && self.heard_from_leader_recently(now) {
                return false;
            }
        }
        if self.is_leader() && planted::active(Bug::LeaderKeepsLeading) {
            self.term = term;
            self.voted_for = None;
            self.persist_hard_state();
        } else if !granted_pre_vote {
            // §5.1: a higher term always wins; for a leader this is the fencing point (W12
            // R5) — it stops accepting writes before handling anything else.
            let leader = matches!(
                message,
                Message::AppendEntries { .. } | Message::InstallSnapshot { .. }
            )
            .then_some(from);
            self.become_follower(now, term, leader);
        }
        true
    }

    /// Election and snapshot traffic, of the receiver's term or past [`RaftNode::screen_term`]
    /// (out of line: see [`Node::handle_message`]).
    #[inline(never)]
    fn handle_rare_message(&mut self, now: Tick, from: NodeId, message: Message) {
        match message {
            Message::RequestVote {
                pre_vote: true,
                last_index,
                last_term,
                term,
            } => self.handle_pre_vote_request(now, from, term, last_index, last_term),
            Message::RequestVote {
                last_index,
                last_term,
                ..
            } => self.handle_vote_request(now, from, last_index, last_term),
            Message::Vote {
                term,
                granted,
                pre_vote,
            } => self.handle_vote(now, from, term, granted, pre_vote),
            Message::InstallSnapshot { chunk, .. } => {
                if self.is_leader() {
                    // Two leaders in one term; refused as for AppendEntries.
                    return;
                }
                self.handle_install_snapshot(now, from, *chunk)
            }
            Message::SnapshotResponse {
                last_index,
                installed,
                next_offset,
                ..
            } => self.handle_snapshot_response(now, from, last_index, installed, next_offset),
            Message::AppendEntries { .. } | Message::AppendResponse { .. } => {
                unreachable!("replication traffic is handled by handle_message")
            }
        }
    }

    // ----- leader timers -----

    fn leader_tick(&mut self, now: Tick) {
        let heartbeat_ticks = self.config.heartbeat_ticks;
        let check_quorum = self.config.check_quorum;
        let election_min = self.config.election_timeout_ticks_min;
        let quorum = self.config.quorum();
        let id = self.id;
        let Some(state) = self.leader_mut() else {
            return;
        };
        let heartbeat_due = now >= state.heartbeat_deadline;
        if heartbeat_due {
            state.heartbeat_deadline = now + heartbeat_ticks;
        }
        let mut lost_quorum = false;
        if check_quorum && now >= state.quorum_check_deadline {
            let active = state
                .progress
                .iter()
                .enumerate()
                .filter(|(i, p)| *i as NodeId + 1 == id || p.recently_active)
                .count();
            for p in state.progress.iter_mut() {
                p.recently_active = false;
            }
            state.quorum_check_deadline = now + election_min;
            lost_quorum = active < quorum;
        }
        self.leader_timers_moved();
        if lost_quorum {
            let term = self.term;
            self.out.events.push(NodeEvent::QuorumLost { term });
            self.become_follower(now, term, None);
            return;
        }
        if heartbeat_due {
            self.broadcast_append(now);
        } else if self.leader_mut().is_some_and(|s| s.flush_at.is_some()) {
            self.flush(now);
        }
    }

    /// Lease (thesis §6.4.1): valid while a majority (counting the leader) acknowledged an
    /// AppendEntries sent less than `lease_ticks` ago on the leader's clock.
    fn lease_valid(&self, now: Tick) -> bool {
        let RoleState::Leader(state) = &self.role else {
            return false;
        };
        let mut sent: [Tick; super::config::NODES_COUNT_MAX as usize] =
            [0; super::config::NODES_COUNT_MAX as usize];
        let mut count = 0;
        for (i, p) in state.progress.iter().enumerate() {
            if i as NodeId + 1 == self.id {
                sent[count] = now;
                count += 1;
            } else if let Some(t) = p.acked_sent_at {
                sent[count] = t;
                count += 1;
            }
        }
        let quorum = self.config.quorum();
        if count < quorum {
            return false;
        }
        let sent = &mut sent[..count];
        sort_descending(sent);
        sent[quorum - 1] + self.config.lease_ticks > now
    }

    /// Answer a client request without appending it (a redirect, an answer from the dedup
    /// table, a full queue). Out of line and cold: nearly every request a leader gets is
    /// appended, and the answers a follower gives are as rare as client retries to it.
    #[cold]
    #[inline(never)]
    fn answer_at_once(&mut self, client: ClientId, seq: Seq, response: ClientResponse) {
        self.out.replies.push(Reply {
            client,
            seq,
            response,
        });
    }

    /// Serve the read `op` from the leader's state machine when its lease allows (thesis
    /// §6.4.1), and say whether it did; otherwise record that the lease had expired, and the
    /// read goes through the log. Out of line: only runs with `lease_reads`.
    #[inline(never)]
    fn lease_read(&mut self, now: Tick, client: ClientId, seq: Seq, op: &Op) -> bool {
        let lease = self.lease_valid(now) || planted::active(Bug::LeaseWithoutValidity);
        if lease && self.committed_in_current_term() && self.applied_index == self.commit_index {
            let result = self.kv.apply(op);
            self.out.events.push(NodeEvent::LeaseRead { client });
            self.out.replies.push(Reply {
                client,
                seq,
                response: ClientResponse::Ok { result },
            });
            return true;
        }
        self.out.events.push(NodeEvent::LeaseExpired);
        false
    }

    /// The leader has committed an entry of its own term, so its commit index is as high as any
    /// earlier leader's (§6.4 step 1); before that it cannot serve reads locally.
    fn committed_in_current_term(&self) -> bool {
        self.log.term(self.commit_index) == Some(self.term)
    }
}

/// The parts of a leader node an AppendEntries is made from besides the follower's progress,
/// borrowed apart from one another and from the progress: the log, the snapshot (for a
/// follower that needs it instead), the leader's shipped run, and the output the message goes
/// to.
struct AppendParts<'a> {
    log: &'a Log,
    snapshot: &'a Option<Arc<Snapshot>>,
    shipped: &'a mut (LogIndex, Entries),
    out: &'a mut Output<Message>,
}

/// What the AppendEntries a leader sends in one go (a flush, a heartbeat, an answer to one
/// follower) have in common: read from the node once per batch rather than once per follower.
/// Together with the leader's state, split borrows of the node's fields, it sends each
/// follower its message.
struct AppendBatch {
    now: Tick,
    term: Term,
    commit_index: LogIndex,
    /// `entries_per_append_max` of the config.
    entries_max: u64,
    /// The leader's last log index and compacted prefix.
    last_index: LogIndex,
    prefix_index: LogIndex,
    /// For snapshot chunks: `heartbeat_ticks` and `snapshot_chunk_bytes` of the config.
    heartbeat_ticks: Tick,
    chunk_bytes: usize,
}

impl AppendBatch {
    fn new(node: &RaftNode, now: Tick) -> AppendBatch {
        AppendBatch {
            now,
            term: node.term,
            commit_index: node.commit_index,
            entries_max: node.config.entries_per_append_max as u64,
            last_index: node.log.last_index(),
            prefix_index: node.log.prefix_index(),
            heartbeat_ticks: node.config.heartbeat_ticks,
            chunk_bytes: node.config.snapshot_chunk_bytes,
        }
    }

    /// Send `to`, whose progress is `p`, the entries from its `next_index` (at most
    /// `entries_max`), or an empty heartbeat when it is caught up; advance `next_index`
    /// optimistically (pipelining; a rejection moves it back). A follower that needs entries
    /// compacted away gets the next chunk of the snapshot instead.
    #[inline(always)]
    fn send(&self, parts: &mut AppendParts<'_>, p: &mut Progress, to: NodeId) {
        let AppendParts {
            log,
            snapshot,
            shipped,
            out,
        } = parts;
        let next = p.next_index.clamp(1, self.last_index + 1);
        if next <= self.prefix_index {
            // §7: the follower needs an entry this leader compacted away (the entry before
            // `next` is gone too, so there is no consistency check to make): it gets the
            // snapshot instead.
            self.send_snapshot_chunk(snapshot, p, out, to);
            return;
        }
        // Whatever the follower needs, the log holds: no snapshot transfer (any under way was
        // overtaken by an answer that moved `next_index` past the snapshot).
        p.snapshot = None;
        let end = (next + self.entries_max - 1).min(self.last_index);
        p.next_index = end + 1;
        p.commit_sent = self.commit_index;
        let prev_index = next - 1;
        let (prev_term, wanted) = log.run_after(prev_index, end);
        // A heartbeat to a caught-up follower carries no run, and leaves the shipped one
        // for the next follower that needs it.
        let entries = if wanted.is_empty() {
            Entries::default()
        } else {
            let (first, run) = shipped;
            if (*first, run.len()) != (next, wanted.len()) {
                *first = next;
                run.refill(wanted);
            }
            debug_assert!(**run == *wanted, "the shipped run matches the log");
            run.clone()
        };
        out.messages.push((
            to,
            Message::AppendEntries {
                term: self.term,
                prev_index,
                prev_term,
                entries,
                commit: self.commit_index,
                sent_at: self.now,
            },
        ));
    }

    /// Send `to` the next chunk of a snapshot, unless one is in flight. A transfer starts with
    /// the leader's newest snapshot (`newest`) and keeps it to the end. A chunk that has waited
    /// a heartbeat interval without an answer is presumed lost and goes again (the heartbeat is
    /// what calls here), so retransmission is bounded to one chunk per follower per heartbeat.
    // Out of line and cold: a snapshot transfer is rare, and inlined it would double the size
    // of `send`, which every AppendEntries and heartbeat goes through.
    #[cold]
    #[inline(never)]
    fn send_snapshot_chunk(
        &self,
        newest: &Option<Arc<Snapshot>>,
        p: &mut Progress,
        out: &mut Output<Message>,
        to: NodeId,
    ) {
        let newest = newest.as_ref().expect("a compacted log has a snapshot");
        let next_index = p.next_index;
        let send = match &mut p.snapshot {
            // The image under way still holds the entry the follower needs next.
            Some(send) if send.snapshot.last_index >= next_index => send,
            slot => slot.insert(SnapshotSend {
                snapshot: Arc::clone(newest),
                offset: 0,
                sent_at: None,
            }),
        };
        if send
            .sent_at
            .is_some_and(|t| self.now < t + self.heartbeat_ticks)
        {
            return;
        }
        send.sent_at = Some(self.now);
        let chunk = send.snapshot.chunk(send.offset, self.chunk_bytes);
        out.messages.push((
            to,
            Message::InstallSnapshot {
                term: self.term,
                chunk: Box::new(chunk),
            },
        ));
    }
}

/// Sort one value per node (at most `NODES_COUNT_MAX`) in descending order, by insertion: for
/// so few values it takes as few steps as the library's sort, in a fraction of the code (which
/// carries its paths for large inputs along), on paths — commit, lease — that run between
/// long stretches of other code and so mostly start from a cold instruction cache.
fn sort_descending(values: &mut [u64]) {
    for i in 1..values.len() {
        let mut j = i;
        while j > 0 && values[j - 1] < values[j] {
            values.swap(j - 1, j);
            j -= 1;
        }
    }
}

/// Apply one client command through the dedup table (W12 R3) and the KV store. Reads are
/// idempotent and bypass the table; writes are applied at most once per `(client, seq)`.
fn apply_client(
    kv: &mut KvStore,
    dedup: &mut DedupTable,
    client: ClientId,
    seq: Seq,
    op: &Op,
    index: LogIndex,
    deduplicate: bool,
) -> ApplyOutcome {
    if op.is_read() || !deduplicate {
        return ApplyOutcome::Applied(kv.apply(op));
    }
    match dedup.apply_next(client, seq, index, || kv.apply(op)) {
        Ok(result) => ApplyOutcome::Applied(result),
        Err(DedupCheck::Apply) => unreachable!("apply_next applies the client's next request"),
        Err(DedupCheck::Duplicate { .. } | DedupCheck::Stale { .. }) => ApplyOutcome::Duplicate,
        Err(DedupCheck::Gap { .. } | DedupCheck::SessionExpired) => ApplyOutcome::Rejected,
    }
}

/// The answer to the client whose command `(client, seq)` was just applied with `outcome`. It
/// is built only when a leader answers (followers apply every command too, and would build and
/// drop a response each time). A command the dedup table refused left the table as it was, so
/// asking the table again gives the verdict it refused with, and the details the answer
/// carries.
fn response_to(
    outcome: &ApplyOutcome,
    dedup: &DedupTable,
    client: ClientId,
    seq: Seq,
) -> ClientResponse {
    let ApplyOutcome::Applied(result) = outcome else {
        return refusal_response(dedup, client, seq);
    };
    ClientResponse::Ok {
        result: result.clone(),
    }
}

/// See [`response_to`]: out of line, as a refused command is rare.
#[cold]
#[inline(never)]
fn refusal_response(dedup: &DedupTable, client: ClientId, seq: Seq) -> ClientResponse {
    match dedup.check(client, seq) {
        DedupCheck::Duplicate { cached } => ClientResponse::Duplicate {
            cached: Some(cached),
        },
        DedupCheck::Stale { .. } => ClientResponse::Duplicate { cached: None },
        DedupCheck::Gap { expected } => ClientResponse::Gap { expected },
        DedupCheck::SessionExpired => ClientResponse::SessionExpired,
        DedupCheck::Apply => unreachable!("c{client}#{seq} was refused, so it is not next"),
    }
}

impl Node for RaftNode {
    type Message = Message;

    fn id(&self) -> NodeId {
        self.id
    }

    fn handle_tick(&mut self, now: Tick) {
        if self.is_leader() {
            self.leader_tick(now);
            return;
        }
        if now >= self.election_deadline {
            if matches!(
                self.role,
                RoleState::Candidate { .. } | RoleState::PreCandidate { .. }
            ) {
                self.out
                    .events
                    .push(NodeEvent::ElectionTimedOut { term: self.term });
            }
            self.start_election(now);
        }
    }

    /// Replication traffic of the receiver's own term — AppendEntries to a follower, their
    /// answers to the leader — is nearly every message, and is dispatched here directly; a
    /// message of another term, and election and snapshot traffic, go through
    /// [`RaftNode::screen_term`] and [`RaftNode::handle_rare_message`], out of line, which
    /// keeps this function small and its dispatch a pair of compares rather than a jump table
    /// (a hard-to-predict indirect branch when a leader's and its followers' messages
    /// interleave).
    fn handle_message(&mut self, now: Tick, from: NodeId, message: Message) {
        assert!(
            from >= 1 && from <= self.config.nodes_count && from != self.id,
            "n{}: message from invalid sender n{from}",
            self.id
        );
        if message.term() != self.term && !self.screen_term(now, from, &message) {
            return;
        }
        match message {
            Message::AppendEntries {
                prev_index,
                prev_term,
                entries,
                commit,
                sent_at,
                ..
            } => {
                if self.is_leader() {
                    // Two leaders in one term: impossible in correct Raft (Election Safety, §5.2).
                    // Refuse the message rather than follow it; the simulator's Election Safety
                    // checker reports the broken invariant by name.
                    return;
                }
                self.handle_append(now, from, prev_index, prev_term, entries, commit, sent_at)
            }
            Message::AppendResponse {
                success,
                match_index,
                hint,
                echo_sent_at,
                ..
            } => self.handle_append_response(now, from, success, match_index, hint, echo_sent_at),
            message => self.handle_rare_message(now, from, message),
        }
    }

    fn handle_request(&mut self, now: Tick, request: ClientRequest) {
        let ClientRequest {
            client, seq, op, ..
        } = request;
        if !self.is_leader() {
            // W12 R4: redirect; the hint is None when no leader is known.
            let response = ClientResponse::NotLeader {
                leader_hint: self.leader_hint,
            };
            self.answer_at_once(client, seq, response);
            return;
        }
        if op.is_read() {
            if self.config.lease_reads && self.lease_read(now, client, seq, &op) {
                return;
            }
        } else {
            // An already-applied request is answered from the dedup table without a new entry:
            // it committed, whoever leads now.
            match self.dedup.check(client, seq) {
                DedupCheck::Duplicate { cached } => {
                    let response = ClientResponse::Duplicate {
                        cached: Some(cached),
                    };
                    self.answer_at_once(client, seq, response);
                    return;
                }
                DedupCheck::Stale { .. } => {
                    let response = ClientResponse::Duplicate { cached: None };
                    self.answer_at_once(client, seq, response);
                    return;
                }
                _ => {}
            }
        }
        let pending_max = self.config.pending_requests_max;
        let full = match &self.role {
            RoleState::Leader(state) => state.pending.len() >= pending_max,
            _ => unreachable!("checked above"),
        };
        if full {
            self.answer_at_once(client, seq, ClientResponse::Overloaded);
            return;
        }
        let term = self.term;
        // Fencing invariant (W12 R5): only a leader of the current term appends; a leader that
        // saw a higher term has already become follower above and redirected.
        assert!(
            self.is_leader() && self.log.last_term() <= term,
            "n{}: append as leader in term {term} with last term {}",
            self.id,
            self.log.last_term()
        );
        self.append_entry(Entry::new(term, Command::Client { client, seq, op }));
        let index = self.log.last_index();
        if let Some(state) = self.leader_mut() {
            debug_assert!(state.pending.back().is_none_or(|&(i, ..)| i < index));
            state.pending.push_back((index, client, seq));
            // Followers that were caught up get the entry with the next flush, together with
            // whatever else arrives in this instant; a lagging one gets it with its next batch.
            for p in state.progress.iter_mut() {
                if p.next_index == index {
                    p.append_due = true;
                }
            }
            // Ask for a tick now to send it (as `request_flush`).
            state.flush_at.get_or_insert(now);
            self.leader_timers_moved();
        }
        // Before this request nothing was left to commit (see `handle_append_response`), and
        // the new entry is held by this node alone: it commits at once only where this node
        // is a quorum by itself. Everywhere else the acknowledgements commit it.
        if self.config.quorum() == 1 {
            self.maybe_commit(now);
        } else {
            debug_assert_eq!(self.commit_candidate(), None, "n{}", self.id);
        }
    }

    fn next_deadline_tick(&self) -> Option<Tick> {
        debug_assert_eq!(
            self.next_deadline,
            self.deadline_of_timers(),
            "n{}: the kept deadline must be the timers' earliest",
            self.id
        );
        Some(self.next_deadline)
    }

    fn output(&mut self) -> &mut Output<Message> {
        &mut self.out
    }

    fn view(&self) -> NodeView {
        NodeView {
            id: self.id,
            role: self.role(),
            term: self.term,
            voted_for: self.voted_for,
            commit_index: self.commit_index,
            applied_index: self.applied_index,
            last_index: self.log.last_index(),
            last_term: self.log.last_term(),
            leader_hint: self.leader_hint,
            store_digest: self.kv.digest() ^ self.dedup.digest().rotate_left(17),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A one-node cluster: it elects itself and commits every write at once.
    struct Solo {
        node: RaftNode,
        /// The WAL as a driver that honours `persist_replace` keeps it.
        disk: Vec<u8>,
        /// The same WAL as a driver that ignores `persist_replace` and only appends.
        appended: Vec<u8>,
        now: Tick,
    }

    impl Solo {
        fn new(threshold: u64) -> Solo {
            let config = Config {
                nodes_count: 1,
                snapshot_entries_threshold: threshold,
                ..Config::default()
            };
            let mut solo = Solo {
                node: RaftNode::new(1, config, 7, 0),
                disk: Vec::new(),
                appended: Vec::new(),
                now: 0,
            };
            solo.now = solo
                .node
                .next_deadline_tick()
                .expect("a follower has a deadline");
            solo.node.handle_tick(solo.now);
            solo.drain();
            assert!(solo.node.is_leader());
            solo
        }

        fn drain(&mut self) {
            let out = self.node.output();
            if out.persist_replace {
                self.disk.clear();
            }
            self.disk.extend_from_slice(&out.persist);
            self.appended.extend_from_slice(&out.persist);
            out.clear();
        }

        fn write(&mut self, seq: Seq) {
            self.now += 1;
            let op = Op::Put {
                key: format!("k{}", seq % 3),
                value: seq.to_string(),
            };
            self.node.handle_request(
                self.now,
                ClientRequest {
                    client: 1,
                    seq,
                    op: op.into(),
                    timestamp: self.now,
                },
            );
            self.drain();
        }

        fn restore(&self, bytes: &[u8]) -> Result<(RaftNode, RestoreReport), RestoreError> {
            RaftNode::restore(1, self.node.config().clone(), 9, self.now, bytes)
        }
    }

    /// `restored` holds what `live` made durable, its state machine at the snapshot (the commit
    /// index is volatile: entries after the snapshot are applied once a leader commits them);
    /// a restarted solo node elects itself and catches up.
    fn assert_restored(mut restored: RaftNode, live: &RaftNode, now: Tick) {
        assert_eq!(restored.log(), live.log());
        assert_eq!(restored.snapshot(), live.snapshot());
        assert_eq!(
            (restored.term(), restored.view().voted_for),
            (live.term(), live.view().voted_for)
        );
        let snapshot_index = live.snapshot_index();
        assert_eq!(restored.applied_index(), snapshot_index);
        assert_eq!(
            restored.commit_index(),
            snapshot_index,
            "a snapshot covers only committed entries"
        );
        let (kv, dedup) = live.snapshot().expect("compacted").decode_state().unwrap();
        assert_eq!((restored.kv(), restored.dedup()), (&kv, &dedup));
        let deadline = restored.next_deadline_tick().unwrap().max(now);
        restored.handle_tick(deadline);
        assert!(restored.is_leader());
        assert_eq!(restored.kv(), live.kv());
        assert_eq!(restored.dedup(), live.dedup());
    }

    #[test]
    fn sort_descending_matches_the_library_sort() {
        let cases: [&[u64]; 6] = [
            &[],
            &[7],
            &[3, 9, 9],
            &[5, 1, 4, 4, 2],
            &[0, 0, 8, 6, 8, 6, 1],
            &[9, 8, 7, 6, 5, 4, 3, 2, 1],
        ];
        for values in cases {
            let mut sorted = values.to_vec();
            sort_descending(&mut sorted);
            let mut expected = values.to_vec();
            expected.sort_unstable_by(|a, b| b.cmp(a));
            assert_eq!(sorted, expected, "{values:?}");
        }
    }

    #[test]
    fn compaction_snapshots_at_the_threshold_and_rewrites_the_wal() {
        let mut solo = Solo::new(5);
        for seq in 1..=23 {
            solo.write(seq);
        }
        // The no-op is entry 1, the writes 2..=24: snapshots at 5, 10, 15, 20.
        let node = &solo.node;
        assert_eq!(node.applied_index(), 24);
        assert_eq!(node.snapshot_index(), 20);
        assert_eq!(node.log().len(), 4);
        assert_eq!(node.snapshot().map(|s| s.last_index), Some(20));
        // The WAL holds one snapshot, the hard state and the four entries after it.
        let kinds: Vec<RecordKind> = wal::recover(&solo.disk)
            .records
            .iter()
            .map(|r| r.kind)
            .collect();
        assert_eq!(
            kinds,
            [
                RecordKind::Snapshot,
                RecordKind::HardState,
                RecordKind::Entry,
                RecordKind::Entry,
                RecordKind::Entry,
                RecordKind::Entry
            ]
        );
        assert!(solo.disk.len() * 3 < solo.appended.len());
    }

    #[test]
    fn restore_from_a_compacted_wal() {
        let mut solo = Solo::new(5);
        for seq in 1..=23 {
            solo.write(seq);
        }
        let (restored, report) = solo.restore(&solo.disk).expect("restores");
        assert_eq!(report.valid_bytes, solo.disk.len());
        assert!(!report.torn_tail);
        assert_eq!(restored.snapshot_index(), 20);
        assert_restored(restored, &solo.node, solo.now);
        assert_eq!(solo.node.kv().get("k2"), Some("23"));
        // A driver that appended every output instead of replacing the file: the snapshots
        // come mid-WAL and are adopted in turn (§7: the log holds each one's last entry).
        let (appended, _) = solo.restore(&solo.appended).expect("restores");
        assert_restored(appended, &solo.node, solo.now);
    }

    #[test]
    fn a_snapshot_cut_short_at_the_tail_is_a_torn_write() {
        let mut solo = Solo::new(1_000);
        for seq in 1..=12 {
            solo.write(seq);
        }
        let before = solo.disk.clone();
        // A snapshot of many small chunks whose last record the crash did not let through.
        let node = &solo.node;
        let snapshot = Snapshot::capture(10, node.term(), node.kv(), node.dedup());
        let mut chunks = Vec::new();
        snapshot.encode_records(16, &mut chunks);
        let last = wal::recover(&chunks).records.pop().expect("chunks");
        let mut torn = before.clone();
        torn.extend_from_slice(&chunks[..chunks.len() - last.encoded_len()]);
        let (restored, report) = solo
            .restore(&torn)
            .expect("a torn snapshot is not corruption");
        assert!(report.torn_tail);
        assert_eq!(report.valid_bytes, before.len());
        assert_eq!(restored.snapshot_index(), 0);
        assert_eq!(restored.log(), solo.node.log());
        // The whole snapshot appended is adopted.
        let mut whole = before.clone();
        whole.extend_from_slice(&chunks);
        let (restored, report) = solo.restore(&whole).expect("restores");
        assert!(!report.torn_tail);
        assert_eq!(restored.snapshot_index(), 10);
        assert_eq!(restored.log().last_index(), solo.node.log().last_index());
    }

    #[test]
    fn a_rotten_snapshot_record_stops_the_restore() {
        let mut solo = Solo::new(5);
        for seq in 1..=8 {
            solo.write(seq);
        }
        let mut rotten = solo.disk.clone();
        rotten[wal::RECORD_HEADER_BYTES + 3] ^= 0x20;
        assert!(matches!(
            solo.restore(&rotten),
            Err(RestoreError::Corrupt { offset: 0, .. })
        ));
        // A record of another kind inside a snapshot, or a truncation into it, is inconsistent.
        let snapshot = solo.node.snapshot().expect("compacted").clone();
        let mut chunks = Vec::new();
        snapshot.encode_records(8, &mut chunks);
        let mut mixed = chunks[..wal::record_encoded_len(8 + 21)].to_vec();
        solo.node.persist_hard_state();
        mixed.extend_from_slice(&solo.node.output().persist);
        solo.node.output().clear();
        assert!(matches!(
            solo.restore(&mixed),
            Err(RestoreError::Inconsistent { .. })
        ));
        let mut truncating = solo.disk.clone();
        wal::encode_record(3, 0, RecordKind::Truncate, &[], &mut truncating);
        assert!(matches!(
            solo.restore(&truncating),
            Err(RestoreError::Inconsistent { .. })
        ));
    }
}
