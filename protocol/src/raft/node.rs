//! The Raft node: a pure state machine implementing the Raft paper's Figure 2, plus pre-vote,
//! check-quorum, leader stickiness and lease reads from Ongaro's thesis.
//!
//! Inputs: [`Node::handle_tick`], [`Node::handle_message`], [`Node::handle_request`], and
//! [`RaftNode::restore`] from durable bytes after a crash. Outputs: the [`Output`] buffer (see
//! [`crate::node`] for the order the driver must release it in). The node persists its term,
//! vote and log as WAL records; everything else (commit index, KV store, dedup table) is
//! rebuilt by re-applying the log after a restart.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;
use std::fmt;

use super::config::Config;
use super::log::Log;
use super::message::{Command, ConflictHint, Entry, Message};
use crate::codec;
use crate::dedup::{DedupCheck, DedupTable};
use crate::kv::{KvStore, Op, OpResult};
use crate::node::{
    Applied, ApplyOutcome, ClientRequest, ClientResponse, Node, NodeEvent, NodeView, Output, Reply,
    Role,
};
use crate::planted::{self, Bug};
use crate::types::{ClientId, LogIndex, NodeId, Seq, Term, Tick};
use crate::wal::{self, DecodeError, RecordKind};

/// Per-follower replication state kept by a leader (§5.3's nextIndex and matchIndex).
#[derive(Debug, Clone, Copy, Default)]
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
}

/// State a leader alone needs.
#[derive(Debug, Clone)]
struct LeaderState {
    /// Indexed by `node_id - 1`; the leader's own slot is unused.
    progress: Vec<Progress>,
    heartbeat_deadline: Tick,
    quorum_check_deadline: Tick,
    /// Client requests this leader appended and has not answered yet, by log index.
    pending: BTreeMap<LogIndex, (ClientId, Seq)>,
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

/// Why a node could not be rebuilt from its durable bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RestoreError {
    /// A record before the tail failed its checksum or was malformed: bit rot. The node must not
    /// rejoin with a silently shortened log (it could forget a vote or an acknowledged entry).
    Corrupt {
        /// Byte offset of the bad record.
        offset: usize,
        /// What was wrong with it.
        error: DecodeError,
    },
    /// A record decoded but does not fit the log (for example an entry index out of sequence).
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

/// A Raft node. See the module docs.
#[derive(Debug)]
pub struct RaftNode {
    id: NodeId,
    config: Config,
    rng: ChaCha8Rng,
    /// Persistent (§5, Figure 2): current term, vote, log.
    term: Term,
    voted_for: Option<NodeId>,
    log: Log,
    /// Volatile.
    commit_index: LogIndex,
    applied_index: LogIndex,
    kv: KvStore,
    dedup: DedupTable,
    role: RoleState,
    leader_hint: Option<NodeId>,
    election_deadline: Tick,
    /// When this node last heard from a leader of its current term (leader stickiness).
    last_leader_contact: Option<Tick>,
    /// How many times this incarnation truncated its log (checkers: a leader never does).
    truncations_total: u64,
    out: Output<Message>,
    scratch: Vec<u8>,
}

const VOTE_NONE: u32 = 0;

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
            term: 0,
            voted_for: None,
            log: Log::new(),
            commit_index: 0,
            applied_index: 0,
            kv: KvStore::new(),
            dedup: DedupTable::new(config.clients_max),
            role: RoleState::Follower,
            leader_hint: None,
            election_deadline: 0,
            last_leader_contact: None,
            truncations_total: 0,
            out: Output::default(),
            scratch: Vec::new(),
            config,
        };
        let mut report = RestoreReport {
            valid_bytes: 0,
            torn_tail: false,
            records_count: 0,
        };
        let mut offset = 0usize;
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
            match record.kind {
                RecordKind::HardState => {
                    let mut r = codec::Reader::new(record.payload);
                    let vote = r
                        .u32()
                        .map_err(|e| inconsistent(format!("hard state payload: {e}")))?;
                    node.term = record.term;
                    node.voted_for = (vote != VOTE_NONE).then_some(vote);
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
                    node.log.push(Entry {
                        term: record.term,
                        command,
                    });
                }
                RecordKind::Truncate => {
                    if record.index == 0 || record.index > node.log.last_index() + 1 {
                        return Err(inconsistent(format!(
                            "truncate from {} beyond last index {}",
                            record.index,
                            node.log.last_index()
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
        report.valid_bytes = offset;
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

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    // ----- persistence -----

    fn persist_hard_state(&mut self) {
        self.scratch.clear();
        codec::put_u32(&mut self.scratch, self.voted_for.unwrap_or(VOTE_NONE));
        wal::encode_record(
            0,
            self.term,
            RecordKind::HardState,
            &self.scratch,
            &mut self.out.persist,
        );
    }

    fn persist_truncate(&mut self, from: LogIndex) {
        wal::encode_record(from, 0, RecordKind::Truncate, &[], &mut self.out.persist);
    }

    /// Append `entry` to the log and to the persist buffer.
    fn append_entry(&mut self, entry: Entry) {
        let index = self.log.last_index() + 1;
        entry.encode_record(index, &mut self.scratch, &mut self.out.persist);
        self.log.push(entry);
    }

    // ----- timers -----

    fn reset_election_deadline(&mut self, now: Tick) {
        let timeout = self.rng.gen_range(
            self.config.election_timeout_ticks_min..=self.config.election_timeout_ticks_max,
        );
        self.election_deadline = now + timeout;
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
            for (_, (client, seq)) in state.pending {
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
            };
            self.config.nodes_count as usize
        ];
        self.role = RoleState::Leader(Box::new(LeaderState {
            progress,
            heartbeat_deadline: now + self.config.heartbeat_ticks,
            quorum_check_deadline: now + self.config.election_timeout_ticks_min,
            pending: BTreeMap::new(),
        }));
        self.leader_hint = Some(self.id);
        self.out.events.push(NodeEvent::RoleChanged {
            role: Role::Leader,
            term: self.term,
        });
        self.append_entry(Entry {
            term: self.term,
            command: Command::Noop,
        });
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

    /// Send `to` the entries from its `next_index` (at most `entries_per_append_max`), or an
    /// empty heartbeat when it is caught up. Advances `next_index` optimistically (pipelining);
    /// a rejection moves it back.
    fn send_append(&mut self, now: Tick, to: NodeId) {
        let last_index = self.log.last_index();
        let max = self.config.entries_per_append_max as u64;
        let Some(state) = self.leader_mut() else {
            return;
        };
        let p = &mut state.progress[(to - 1) as usize];
        let next = p.next_index.clamp(1, last_index + 1);
        let end = (next + max - 1).min(last_index);
        p.next_index = end + 1;
        let prev_index = next - 1;
        let prev_term = self
            .log
            .term(prev_index)
            .expect("the leader holds every entry a follower can need");
        let entries = self.log.slice(next, end).to_vec();
        self.out.messages.push((
            to,
            Message::AppendEntries {
                term: self.term,
                prev_index,
                prev_term,
                entries,
                commit: self.commit_index,
                sent_at: now,
            },
        ));
    }

    fn broadcast_append(&mut self, now: Tick) {
        for peer in 1..=self.config.nodes_count {
            if peer != self.id {
                self.send_append(now, peer);
            }
        }
    }

    /// Figure 2, rules for leaders: commit the highest index replicated on a majority, but only
    /// if it belongs to the current term (§5.4.2, Figure 8).
    fn maybe_commit(&mut self, now: Tick) {
        let last_index = self.log.last_index();
        let quorum = self.config.quorum();
        let id = self.id;
        let Some(state) = self.leader_mut() else {
            return;
        };
        let mut matches = [0 as LogIndex; super::config::NODES_COUNT_MAX as usize];
        let n = state.progress.len();
        for (i, p) in state.progress.iter().enumerate() {
            matches[i] = if i as NodeId + 1 == id {
                last_index
            } else {
                p.match_index
            };
        }
        let matches = &mut matches[..n];
        matches.sort_unstable_by(|a, b| b.cmp(a));
        let candidate = matches[quorum - 1];
        let current_term =
            self.log.term(candidate) == Some(self.term) || planted::active(Bug::CommitPreviousTerm);
        if candidate > self.commit_index && current_term {
            self.commit_index = candidate;
            self.apply_committed();
            // Tell followers promptly, as etcd does, so their state machines keep up.
            self.broadcast_append(now);
        }
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
            let (command, outcome, response) = match &entry.command {
                Command::Noop => (None, None, None),
                Command::Client { client, seq, op } => {
                    // Planted bug: followers skip the session table altogether.
                    let dedup = !planted::active(Bug::DedupOnlyOnLeader)
                        || matches!(self.role, RoleState::Leader(_));
                    let (outcome, response) = apply_client(
                        &mut self.kv,
                        &mut self.dedup,
                        *client,
                        *seq,
                        op,
                        index,
                        dedup,
                    );
                    (
                        Some((*client, *seq, op.clone())),
                        Some(outcome),
                        Some(response),
                    )
                }
            };
            self.applied_index = index;
            if let (Some((client, seq, _)), Some(response)) = (&command, response) {
                let (client, seq) = (*client, *seq);
                if let RoleState::Leader(state) = &mut self.role {
                    if state.pending.get(&index) == Some(&(client, seq)) {
                        state.pending.remove(&index);
                        self.out.replies.push(Reply {
                            client,
                            seq,
                            response,
                        });
                    }
                }
            }
            self.out.applied.push(Applied {
                index,
                term,
                command,
                outcome: outcome.unwrap_or(ApplyOutcome::Applied(OpResult::Ok)),
            });
        }
    }

    // ----- message handlers -----

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
        entries: Vec<Entry>,
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

        let term = self.term;
        let reply = |success, match_index, hint| Message::AppendResponse {
            term,
            success,
            match_index,
            hint,
            echo_sent_at: sent_at,
        };
        // §5.3 consistency check, with the conflict hint for fast backup.
        if prev_index > self.log.last_index() {
            let hint = ConflictHint {
                term: None,
                index: self.log.last_index() + 1,
            };
            self.out.events.push(NodeEvent::LogConflict {
                prev_index,
                hint_index: hint.index,
            });
            let m = reply(false, 0, Some(hint));
            self.out.messages.push((from, m));
            return;
        }
        match self.log.term(prev_index) {
            Some(t) if t == prev_term => {}
            Some(t) => {
                let hint = ConflictHint {
                    term: Some(t),
                    index: self.log.first_index_of_term_run(prev_index),
                };
                self.out.events.push(NodeEvent::LogConflict {
                    prev_index,
                    hint_index: hint.index,
                });
                let m = reply(false, 0, Some(hint));
                self.out.messages.push((from, m));
                return;
            }
            None => {
                // prev_index is inside our compacted prefix, which is committed and therefore
                // matches the leader's log; accept from there.
            }
        }
        let last_new = prev_index + entries.len() as LogIndex;
        for (k, entry) in entries.into_iter().enumerate() {
            let index = prev_index + 1 + k as LogIndex;
            match self.log.term(index) {
                Some(t) if t == entry.term => continue,
                Some(_) => {
                    // §5.3 step 3: a conflicting entry and all that follow it are deleted.
                    self.log.truncate_from(index);
                    self.truncations_total += 1;
                    self.persist_truncate(index);
                    self.append_entry(entry);
                }
                None => self.append_entry(entry),
            }
        }
        // §5.3 step 5: commit = min(leaderCommit, index of last new entry).
        let new_commit = commit.min(last_new);
        if new_commit > self.commit_index {
            self.commit_index = new_commit;
            self.apply_committed();
        }
        let m = reply(true, last_new, None);
        self.out.messages.push((from, m));
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
        let resume_at = hint.map(|h| match h.term {
            // The leader has entries of the follower's conflicting term: resume after its last
            // one. Otherwise skip the follower's whole run of that term.
            Some(t) => self.log.last_index_of_term(t).map_or(h.index, |i| i + 1),
            None => h.index,
        });
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
            if match_index > p.match_index {
                p.match_index = match_index;
            }
            if p.next_index <= p.match_index {
                p.next_index = p.match_index + 1;
            }
            let behind = p.match_index < last_index && p.next_index > last_index;
            if behind {
                // Everything up to next_index was sent but the follower only confirmed less;
                // that is normal pipelining unless messages were lost, which the heartbeat
                // repairs. Nothing to do here.
            }
            let more = p.next_index <= last_index;
            self.maybe_commit(now);
            if more {
                self.send_append(now, from);
            }
        } else {
            let resume_at = resume_at.unwrap_or(p.next_index.saturating_sub(1));
            // Never go back below what the follower confirmed, never past the end.
            p.next_index = resume_at.max(p.match_index + 1).min(last_index + 1);
            self.send_append(now, from);
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
        if lost_quorum {
            let term = self.term;
            self.out.events.push(NodeEvent::QuorumLost { term });
            self.become_follower(now, term, None);
            return;
        }
        if heartbeat_due {
            self.broadcast_append(now);
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
        sent.sort_unstable_by(|a, b| b.cmp(a));
        sent[quorum - 1] + self.config.lease_ticks > now
    }

    /// The leader has committed an entry of its own term, so its commit index is as high as any
    /// earlier leader's (§6.4 step 1); before that it cannot serve reads locally.
    fn committed_in_current_term(&self) -> bool {
        self.log.term(self.commit_index) == Some(self.term)
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
) -> (ApplyOutcome, ClientResponse) {
    if op.is_read() || !deduplicate {
        let result = kv.apply(op);
        return (
            ApplyOutcome::Applied(result.clone()),
            ClientResponse::Ok { result },
        );
    }
    match dedup.check(client, seq) {
        DedupCheck::Apply => {
            let result = kv.apply(op);
            dedup.record(client, seq, result.clone(), index);
            (
                ApplyOutcome::Applied(result.clone()),
                ClientResponse::Ok { result },
            )
        }
        DedupCheck::Duplicate { cached } => (
            ApplyOutcome::Duplicate,
            ClientResponse::Duplicate {
                cached: Some(cached),
            },
        ),
        DedupCheck::Stale { .. } => (
            ApplyOutcome::Duplicate,
            ClientResponse::Duplicate { cached: None },
        ),
        DedupCheck::Gap { expected } => (ApplyOutcome::Rejected, ClientResponse::Gap { expected }),
        DedupCheck::SessionExpired => (ApplyOutcome::Rejected, ClientResponse::SessionExpired),
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

    fn handle_message(&mut self, now: Tick, from: NodeId, message: Message) {
        assert!(
            from >= 1 && from <= self.config.nodes_count && from != self.id,
            "n{}: message from invalid sender n{from}",
            self.id
        );
        let term = message.term();
        // Pre-vote requests never change anyone's term.
        if let Message::RequestVote {
            pre_vote: true,
            last_index,
            last_term,
            ..
        } = message
        {
            self.handle_pre_vote_request(now, from, term, last_index, last_term);
            return;
        }
        if term > self.term {
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
                    return;
                }
            }
            if self.is_leader() && planted::active(Bug::LeaderKeepsLeading) {
                self.term = term;
                self.voted_for = None;
                self.persist_hard_state();
            } else if !granted_pre_vote {
                // §5.1: a higher term always wins; for a leader this is the fencing point (W12
                // R5) — it stops accepting writes before handling anything else.
                let leader = matches!(message, Message::AppendEntries { .. }).then_some(from);
                self.become_follower(now, term, leader);
            }
        } else if term < self.term {
            // Fencing: a stale-term message is refused; requests get our term back so a deposed
            // leader or stale candidate learns it is out of date.
            self.out
                .events
                .push(NodeEvent::StaleTermRejected { from, term });
            match message {
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
                _ => {}
            }
            return;
        }
        match message {
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
        }
    }

    fn handle_request(&mut self, now: Tick, request: ClientRequest) {
        let ClientRequest {
            client, seq, op, ..
        } = request;
        let reply = |response| Reply {
            client,
            seq,
            response,
        };
        if !self.is_leader() {
            // W12 R4: redirect; the hint is None when no leader is known.
            let r = reply(ClientResponse::NotLeader {
                leader_hint: self.leader_hint,
            });
            self.out.replies.push(r);
            return;
        }
        if op.is_read() {
            if self.config.lease_reads {
                let lease = self.lease_valid(now) || planted::active(Bug::LeaseWithoutValidity);
                if lease
                    && self.committed_in_current_term()
                    && self.applied_index == self.commit_index
                {
                    let result = self.kv.apply(&op);
                    self.out.events.push(NodeEvent::LeaseRead { client });
                    self.out.replies.push(reply(ClientResponse::Ok { result }));
                    return;
                }
                self.out.events.push(NodeEvent::LeaseExpired);
            }
        } else {
            // An already-applied request is answered from the dedup table without a new entry:
            // it committed, whoever leads now.
            match self.dedup.check(client, seq) {
                DedupCheck::Duplicate { cached } => {
                    let r = reply(ClientResponse::Duplicate {
                        cached: Some(cached),
                    });
                    self.out.replies.push(r);
                    return;
                }
                DedupCheck::Stale { .. } => {
                    let r = reply(ClientResponse::Duplicate { cached: None });
                    self.out.replies.push(r);
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
            self.out.replies.push(reply(ClientResponse::Overloaded));
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
        self.append_entry(Entry {
            term,
            command: Command::Client { client, seq, op },
        });
        let index = self.log.last_index();
        if let Some(state) = self.leader_mut() {
            state.pending.insert(index, (client, seq));
        }
        for peer in 1..=self.config.nodes_count {
            if peer != self.id {
                // Only followers already caught up get the new entry now; a lagging one gets
                // it with its next batch.
                let caught_up = matches!(&self.role, RoleState::Leader(s)
                    if s.progress[(peer - 1) as usize].next_index == index);
                if caught_up {
                    self.send_append(now, peer);
                }
            }
        }
        self.maybe_commit(now);
    }

    fn next_deadline_tick(&self) -> Option<Tick> {
        Some(match &self.role {
            RoleState::Leader(state) => {
                if self.config.check_quorum {
                    state.heartbeat_deadline.min(state.quorum_check_deadline)
                } else {
                    state.heartbeat_deadline
                }
            }
            _ => self.election_deadline,
        })
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
