//! The leader-follower replica: a pure state machine implementing [`crate::node::Node`].
//!
//! Inputs: [`Node::handle_tick`], [`Node::handle_message`] / [`Node::handle_wire`],
//! [`Node::handle_request`], and [`ReplicaNode::restore`] from durable bytes after a crash.
//! Outputs: the [`Output`] buffer (see [`crate::node`] for the order the driver must release it
//! in: `persist` is synced before anything else leaves, which is what lets a follower acknowledge
//! a record in the same output that persists it).
//!
//! The role is fixed by [`Config::leader`]; see [`super`] for the protocol, its guarantees and
//! its known anomalies. Persistent state is the WAL alone: `Entry` records (the log) and
//! `Snapshot` records (a state installed from the leader). Everything else — LWW store, dedup
//! table, the leader's retained records — is rebuilt from it on restart.
//!
//! Every replica keeps its WAL bounded: once `wal_retain_records` entries follow the WAL's last
//! snapshot, it rewrites the WAL as one `Snapshot` record of its state at `last_lsn`, handed to
//! the driver as a whole-file replacement ([`Output::persist_replace`]); an installed snapshot
//! replaces a follower's WAL the same way. The leader compacts only when every record it holds
//! is committed (a restarted leader takes its snapshot's LSN as committed), and follows the
//! snapshot with a `Checkpoint` record of its highest write timestamp, which its entries no
//! longer carry (new stamps must stay above it).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use super::config::Config;
use super::message::{
    decode_message, Message, WireError, SHIP_RECORDS_BYTES_MAX, SNAPSHOT_PAYLOAD_BYTES_MAX,
};
use super::record::{LogRecord, EPOCH};
use super::store::{decode_state, encode_state, LwwStore};
use crate::dedup::{DedupCheck, DedupTable};
use crate::kv::{KvStore, Op, OpResult};
use crate::node::{
    Applied, ApplyOutcome, ClientRequest, ClientResponse, Node, NodeEvent, NodeView, Output, Reply,
    Role,
};
use crate::types::{ClientId, LogIndex, NodeId, Seq, Tick};
use crate::wal::{self, DecodeError, RecordKind};

pub use crate::node::{RestoreError, RestoreReport};

/// The leader's view of one follower.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Peer {
    /// Highest LSN the follower confirmed durable. Never decreases.
    acked_lsn: LogIndex,
    /// Next LSN to ship (optimistic: advanced on send, rewound on Nack or retransmission).
    next_lsn: LogIndex,
    /// When the leader last heard anything from it.
    last_heard: Tick,
    /// Shipped to and waited on; false once silent for `keepalive_timeout_ticks`.
    online: bool,
    /// Since when shipped records have been waiting for an acknowledgement (reset on progress);
    /// `None` when everything shipped is acknowledged. In sequential mode, `Some` means "one
    /// Ship is unacknowledged: send nothing new".
    outstanding_since: Option<Tick>,
    /// The LSN a Nack last rewound shipping to; further Nacks for it are answered already
    /// (they come from the same gap, e.g. reordered Ships), so they are not re-shipped again.
    rewound_to: Option<LogIndex>,
    /// The highest LSN shipped when the last heartbeat left, while something was outstanding.
    /// A heartbeat is a probe: on a FIFO link it overtakes no Ship, so a HeartbeatAck below
    /// this LSN means a Ship was lost or rejected, and the leader re-ships at once.
    probe_lsn: Option<LogIndex>,
}

/// A client request the leader answers once `commit_lsn` reaches the LSN it waits on.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Waiter {
    /// A write this leader logged: answer `Ok { result }`.
    Write {
        client: ClientId,
        seq: Seq,
        result: OpResult,
    },
    /// A retry of a logged write: answer `Duplicate` once the original commits.
    Duplicate {
        client: ClientId,
        seq: Seq,
        cached: Option<OpResult>,
    },
    /// A read queued behind every write accepted before it.
    Read {
        client: ClientId,
        seq: Seq,
        op: Arc<Op>,
    },
}

/// State the leader alone needs.
#[derive(Debug, Clone)]
struct LeaderState {
    /// Records `first_retained_lsn ..= last_lsn`, for shipping and for the `Applied` reports
    /// at commit. Committed records beyond `wal_retain_records` are dropped; uncommitted ones
    /// never are.
    records: VecDeque<LogRecord>,
    first_retained_lsn: LogIndex,
    peers: BTreeMap<NodeId, Peer>,
    /// Requests waiting for `commit_lsn` to reach their key.
    waiting: BTreeMap<LogIndex, Vec<Waiter>>,
    waiting_count: usize,
    heartbeat_deadline: Tick,
    rounds_total: u64,
    /// Followers heard from since the last heartbeat round.
    responded: BTreeSet<NodeId>,
    /// The last `N` reported as "N/M followers responded".
    responded_reported: Option<usize>,
    /// Lags at the previous round, to report only changes.
    lags_reported: Vec<(NodeId, u64)>,
}

/// State a follower alone needs.
#[derive(Debug, Clone)]
struct FollowerState {
    /// A restarted follower says Rejoin at its first tick.
    rejoin_due: Option<Tick>,
    /// The last LSN acknowledged (Ack, HeartbeatAck): acknowledgements never regress.
    acked_lsn: LogIndex,
}

#[derive(Debug, Clone)]
enum RoleState {
    Leader(Box<LeaderState>),
    Follower(FollowerState),
}

/// A leader-follower replica. See the module docs.
#[derive(Debug)]
pub struct ReplicaNode {
    id: NodeId,
    config: Config,
    /// The replicated state: LWW-stamped values and the client dedup table.
    store: LwwStore,
    dedup: DedupTable,
    /// Highest LSN held durably (in this node's WAL once the driver syncs `persist`).
    last_lsn: LogIndex,
    /// The highest write timestamp in this node's log: a leader stamping writes with its own
    /// clock never issues one at or below it, so timestamps grow with LSNs.
    last_stamp: Tick,
    /// Leader: highest LSN held by `quorum` replicas. Follower: the leader's commit LSN as last
    /// heard, capped at `last_lsn`.
    commit_lsn: LogIndex,
    /// Highest LSN reported through `Applied`. Leader: `== commit_lsn` after every input
    /// (effects reach its store at once, but count as applied at commit). Follower:
    /// `== last_lsn` (it applies on receipt).
    applied_lsn: LogIndex,
    role: RoleState,
    /// `Entry` records in the WAL after its last snapshot (or from its start).
    wal_entries: usize,
    out: Output<Message>,
    scratch: Vec<u8>,
}

impl ReplicaNode {
    /// A fresh replica with an empty disk.
    pub fn new(id: NodeId, config: Config, now: Tick) -> ReplicaNode {
        let (mut node, _) = match ReplicaNode::restore(id, config, now, &[]) {
            Ok(ok) => ok,
            Err(e) => unreachable!("an empty disk always restores: {e}"),
        };
        // A first start has nothing to rejoin with; the leader's heartbeats find it.
        if let RoleState::Follower(state) = &mut node.role {
            state.rejoin_due = None;
        }
        node
    }

    /// Rebuild a replica after a crash from its durable bytes: replay `Entry` records (effects
    /// into the LWW store, sessions into the dedup table) and `Snapshot` records (replace the
    /// state). A torn tail (a record cut short by the crash) is dropped and reported; corruption
    /// anywhere else is an error. A follower sends `Rejoin` at its first tick; a leader resumes
    /// Append `record` at `lsn` (the next one) to the WAL and apply it: the same on the leader
    /// that executed it and on a follower that was shipped it.
    fn persist_and_apply(&mut self, lsn: LogIndex, record: &LogRecord) {
        record.encode_record(lsn, &mut self.scratch, &mut self.out.persist);
        apply_record(
            &mut self.store,
            &mut self.dedup,
            &mut self.out.events,
            lsn,
            record,
        );
        self.last_lsn = lsn;
    }

    /// with its commit LSN unknown (0) until followers answer its first heartbeats.
    pub fn restore(
        id: NodeId,
        config: Config,
        now: Tick,
        durable: &[u8],
    ) -> Result<(ReplicaNode, RestoreReport), RestoreError> {
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
        let is_leader = id == config.leader;
        let mut node = ReplicaNode {
            id,
            store: LwwStore::new(),
            dedup: DedupTable::new(config.clients_max),
            last_lsn: 0,
            last_stamp: 0,
            commit_lsn: 0,
            applied_lsn: 0,
            role: RoleState::Follower(FollowerState {
                rejoin_due: Some(now),
                acked_lsn: 0,
            }),
            wal_entries: 0,
            out: Output::default(),
            scratch: Vec::new(),
            config,
        };
        let mut records = VecDeque::new();
        let mut snapshot_lsn: LogIndex = 0;
        let mut wal_entries = 0usize;
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
            if record.term != EPOCH {
                return Err(inconsistent(format!(
                    "record of epoch {} in a replication WAL (epoch {EPOCH})",
                    record.term
                )));
            }
            match record.kind {
                RecordKind::Entry => {
                    if record.index != node.last_lsn + 1 {
                        return Err(inconsistent(format!(
                            "entry lsn {} follows lsn {}",
                            record.index, node.last_lsn
                        )));
                    }
                    let log_record = LogRecord::decode(record.payload)
                        .map_err(|e| inconsistent(format!("entry payload: {e}")))?;
                    apply_record(
                        &mut node.store,
                        &mut node.dedup,
                        &mut node.out.events,
                        record.index,
                        &log_record,
                    );
                    node.last_stamp = node.last_stamp.max(log_record.timestamp);
                    node.last_lsn = record.index;
                    wal_entries += 1;
                    if is_leader {
                        records.push_back(log_record);
                    }
                }
                RecordKind::Snapshot => {
                    if record.index < node.last_lsn {
                        return Err(inconsistent(format!(
                            "snapshot at lsn {} after lsn {}",
                            record.index, node.last_lsn
                        )));
                    }
                    let (store, dedup) = decode_state(record.payload)
                        .map_err(|e| inconsistent(format!("snapshot payload: {e}")))?;
                    node.store = store;
                    node.dedup = dedup;
                    node.last_lsn = record.index;
                    snapshot_lsn = record.index;
                    wal_entries = 0;
                    records.clear();
                }
                RecordKind::Checkpoint => {
                    let mut r = crate::codec::Reader::new(record.payload);
                    let stamp = r
                        .u64()
                        .and_then(|stamp| r.finish().map(|()| stamp))
                        .map_err(|e| inconsistent(format!("checkpoint payload: {e}")))?;
                    node.last_stamp = node.last_stamp.max(stamp);
                }
                other => {
                    return Err(inconsistent(format!(
                        "unexpected {} record in a replication WAL",
                        other.name()
                    )))
                }
            }
            offset += used;
            report.records_count += 1;
        }
        report.valid_bytes = offset;
        if is_leader {
            // Effects of every recovered record are in the store already, but which of them
            // reached a quorum is unknown: commit (and the `Applied` reports that follow it)
            // resumes from the last snapshot as followers answer.
            node.commit_lsn = snapshot_lsn;
            node.applied_lsn = snapshot_lsn;
            node.role = RoleState::Leader(Box::new(LeaderState::new(
                &node.config,
                now,
                records,
                snapshot_lsn + 1,
                node.last_lsn,
            )));
        } else {
            node.applied_lsn = node.last_lsn;
        }
        node.wal_entries = wal_entries;
        node.assert_invariants();
        Ok((node, report))
    }

    // ----- read-only accessors for checkers and tests -----

    /// The plain KV values (state after `last_lsn`'s effects, tombstones hidden).
    pub fn store(&self) -> &KvStore {
        self.store.kv()
    }

    /// The LWW store with every key's version and the tombstones.
    pub fn lww_store(&self) -> &LwwStore {
        &self.store
    }

    /// The client dedup table.
    pub fn dedup(&self) -> &DedupTable {
        &self.dedup
    }

    /// Highest LSN held.
    pub fn last_lsn(&self) -> LogIndex {
        self.last_lsn
    }

    /// Leader: highest LSN held by a quorum. Follower: the leader's commit LSN as last heard
    /// (capped at `last_lsn`).
    pub fn commit_lsn(&self) -> LogIndex {
        self.commit_lsn
    }

    /// Highest LSN reported through `Applied`.
    pub fn applied_lsn(&self) -> LogIndex {
        self.applied_lsn
    }

    /// True for the configured leader.
    pub fn is_leader(&self) -> bool {
        matches!(self.role, RoleState::Leader(_))
    }

    /// Leader or Follower (the role never changes).
    pub fn role(&self) -> Role {
        match self.role {
            RoleState::Leader(_) => Role::Leader,
            RoleState::Follower(_) => Role::Follower,
        }
    }

    /// The followers the leader currently ships to and waits on, in id order (empty on a
    /// follower).
    pub fn online_followers(&self) -> Vec<NodeId> {
        match &self.role {
            RoleState::Leader(state) => state
                .peers
                .iter()
                .filter(|(_, p)| p.online)
                .map(|(&id, _)| id)
                .collect(),
            RoleState::Follower(_) => Vec::new(),
        }
    }

    /// Replication lag per follower, in id order: the leader's last LSN minus the follower's
    /// acknowledged LSN (empty on a follower).
    pub fn follower_lags(&self) -> Vec<(NodeId, u64)> {
        match &self.role {
            RoleState::Leader(state) => lags(state, self.last_lsn),
            RoleState::Follower(_) => Vec::new(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    // ----- invariants -----

    fn assert_invariants(&self) {
        assert!(
            self.applied_lsn <= self.commit_lsn || !self.is_leader(),
            "n{}: leader applied lsn {} beyond commit lsn {}",
            self.id,
            self.applied_lsn,
            self.commit_lsn
        );
        assert!(
            self.commit_lsn <= self.last_lsn,
            "n{}: commit lsn {} beyond last lsn {}",
            self.id,
            self.commit_lsn,
            self.last_lsn
        );
        match &self.role {
            RoleState::Leader(state) => assert_eq!(
                state.first_retained_lsn + state.records.len() as LogIndex,
                self.last_lsn + 1,
                "n{}: retained records do not end at the last lsn",
                self.id
            ),
            RoleState::Follower(state) => {
                assert_eq!(
                    self.applied_lsn, self.last_lsn,
                    "n{}: a follower applies on receipt",
                    self.id
                );
                assert!(state.acked_lsn <= self.last_lsn);
            }
        }
    }

    fn note(&mut self, text: String) {
        self.out.events.push(NodeEvent::Note(text));
    }

    fn reply(&mut self, client: ClientId, seq: Seq, response: ClientResponse) {
        self.out.replies.push(Reply {
            client,
            seq,
            response,
        });
    }

    fn leader_state(&mut self) -> &mut LeaderState {
        match &mut self.role {
            RoleState::Leader(state) => state,
            RoleState::Follower(_) => unreachable!("n{}: leader-only path on a follower", self.id),
        }
    }

    // ----- leader: client requests -----

    fn leader_request(&mut self, now: Tick, request: ClientRequest) {
        let ClientRequest {
            client,
            seq,
            op,
            timestamp,
        } = request;
        if op.is_read() {
            // Linearizable while the leader is fixed: answer once every write accepted before
            // the read has committed.
            let last_lsn = self.last_lsn;
            self.answer_after(last_lsn, Waiter::Read { client, seq, op });
            return;
        }
        match self.dedup.check(client, seq) {
            DedupCheck::Apply => {}
            // A retry: answered from the cache, but not before the original write committed,
            // or a retry could be acknowledged before a quorum holds the write.
            DedupCheck::Duplicate { cached } => {
                let lsn = self.dedup.applied_index(client).unwrap_or(0);
                let cached = Some(cached);
                self.answer_after(
                    lsn,
                    Waiter::Duplicate {
                        client,
                        seq,
                        cached,
                    },
                );
                return;
            }
            DedupCheck::Stale { .. } => {
                let lsn = self.dedup.applied_index(client).unwrap_or(0);
                self.answer_after(
                    lsn,
                    Waiter::Duplicate {
                        client,
                        seq,
                        cached: None,
                    },
                );
                return;
            }
            DedupCheck::Gap { expected } => {
                self.reply(client, seq, ClientResponse::Gap { expected });
                return;
            }
            DedupCheck::SessionExpired => {
                self.reply(client, seq, ClientResponse::SessionExpired);
                return;
            }
        }
        let pending_max = self.config.pending_requests_max;
        let uncommitted = self.last_lsn - self.commit_lsn;
        if self.leader_state().waiting_count >= pending_max || uncommitted >= pending_max as u64 {
            self.reply(client, seq, ClientResponse::Overloaded);
            return;
        }
        // Execute now, against the leader's current values, and log the outcome: followers
        // apply the effect without re-executing.
        // Last-writer-wins needs a timestamp. By default the leader stamps the write with its
        // own clock, kept strictly increasing (a clock that did not advance, or stepped back
        // after a restart, still yields a larger stamp), so LWW order is log order and the store
        // stays linearizable. With `client_timestamps` the writer's own clock decides, as in
        // systems that let clients supply timestamps: skewed or slow clients then lose
        // acknowledged writes.
        let timestamp = if self.config.client_timestamps {
            timestamp
        } else {
            now.max(self.last_stamp + 1)
        };
        self.last_stamp = self.last_stamp.max(timestamp);
        let op = Arc::unwrap_or_clone(op);
        let record = LogRecord::execute(self.store.kv(), client, seq, timestamp, op);
        let lsn = self.last_lsn + 1;
        self.persist_and_apply(lsn, &record);
        self.wal_entries += 1;
        let result = record.result.clone();
        let pipeline = self.config.pipeline;
        let state = self.leader_state();
        state.records.push_back(record);
        state.wait(
            lsn,
            Waiter::Write {
                client,
                seq,
                result,
            },
        );
        let ship_to: Vec<NodeId> = state
            .peers
            .iter()
            .filter(|(_, p)| {
                // Pipelined: a follower whose shipping is caught up gets the record at once.
                // Otherwise the record goes with the next Ship, after an acknowledgement.
                p.online && ((pipeline && p.next_lsn == lsn) || p.outstanding_since.is_none())
            })
            .map(|(&id, _)| id)
            .collect();
        for peer in ship_to {
            self.ship_next(now, peer);
        }
        self.advance_commit();
    }

    /// Answer `waiter` now if `lsn` is committed, else hold it until it is (bounded).
    fn answer_after(&mut self, lsn: LogIndex, waiter: Waiter) {
        if lsn <= self.commit_lsn {
            self.answer(waiter);
            return;
        }
        let pending_max = self.config.pending_requests_max;
        let state = self.leader_state();
        if state.waiting_count >= pending_max {
            let (client, seq) = waiter.request();
            self.reply(client, seq, ClientResponse::Overloaded);
            return;
        }
        state.wait(lsn, waiter);
    }

    fn answer(&mut self, waiter: Waiter) {
        match waiter {
            Waiter::Write {
                client,
                seq,
                result,
            } => self.reply(client, seq, ClientResponse::Ok { result }),
            Waiter::Duplicate {
                client,
                seq,
                cached,
            } => self.reply(client, seq, ClientResponse::Duplicate { cached }),
            Waiter::Read { client, seq, op } => {
                let result = self.store.read(&op);
                self.reply(client, seq, ClientResponse::Ok { result });
            }
        }
    }

    // ----- leader: commit -----

    /// Commit the highest LSN that `quorum` replicas (the leader included) hold durably, report
    /// `Applied` for every newly committed record in LSN order, and answer the requests that
    /// waited for it.
    fn advance_commit(&mut self) {
        let quorum = self.config.quorum;
        let last_lsn = self.last_lsn;
        let state = self.leader_state();
        let mut acked = [0 as LogIndex; crate::raft::NODES_COUNT_MAX as usize];
        acked[0] = last_lsn;
        let mut n = 1;
        for p in state.peers.values() {
            acked[n] = p.acked_lsn;
            n += 1;
        }
        let acked = &mut acked[..n];
        acked.sort_unstable_by(|a, b| b.cmp(a));
        let candidate = acked[quorum - 1];
        if candidate <= self.commit_lsn {
            return;
        }
        assert!(
            candidate <= last_lsn,
            "n{}: commit candidate {candidate} beyond last lsn {last_lsn}",
            self.id
        );
        self.commit_lsn = candidate;
        while self.applied_lsn < self.commit_lsn {
            let lsn = self.applied_lsn + 1;
            let state = self.leader_state();
            let at = lsn
                .checked_sub(state.first_retained_lsn)
                .expect("uncommitted records are always retained");
            let record = &state.records[at as usize];
            let applied = Applied {
                index: lsn,
                term: EPOCH,
                command: Some((record.client, record.seq, Arc::new(record.op.clone()))),
                outcome: ApplyOutcome::Applied(record.result.clone()),
            };
            self.out.applied.push(applied);
            self.applied_lsn = lsn;
        }
        let commit_lsn = self.commit_lsn;
        let mut due = Vec::new();
        let state = self.leader_state();
        while let Some(entry) = state.waiting.first_entry() {
            if *entry.key() > commit_lsn {
                break;
            }
            let waiters = entry.remove();
            state.waiting_count -= waiters.len();
            due.extend(waiters);
        }
        for waiter in due {
            self.answer(waiter);
        }
        let retain = self.config.wal_retain_records;
        let applied_lsn = self.applied_lsn;
        let state = self.leader_state();
        while state.records.len() > retain && state.first_retained_lsn <= applied_lsn {
            state.records.pop_front();
            state.first_retained_lsn += 1;
        }
        if self.commit_lsn == self.last_lsn {
            // Everything the WAL holds is committed: a snapshot of the state loses nothing a
            // restart needs (it resumes with the snapshot's LSN committed).
            self.maybe_compact_wal(0);
        }
    }

    // ----- leader: shipping -----

    /// Ship `to` the next batch from its `next_lsn` (at most `records_per_ship_max` records and
    /// [`super::message::SHIP_RECORDS_BYTES_MAX`] bytes), or the whole state when that LSN is
    /// older than the retained WAL. Advances `next_lsn` optimistically.
    fn ship_next(&mut self, now: Tick, to: NodeId) {
        let last_lsn = self.last_lsn;
        let commit_lsn = self.commit_lsn;
        let records_max = self.config.records_per_ship_max;
        let RoleState::Leader(state) = &mut self.role else {
            unreachable!("only the leader ships");
        };
        let first_retained = state.first_retained_lsn;
        let peer = state.peers.get_mut(&to).expect("ships go to followers");
        if !peer.online || peer.next_lsn > last_lsn {
            return;
        }
        if peer.next_lsn < first_retained {
            self.ship_snapshot(now, to, first_retained);
            return;
        }
        let from_lsn = peer.next_lsn;
        let mut records = Vec::new();
        let mut bytes = 0usize;
        for record in state
            .records
            .iter()
            .skip((from_lsn - first_retained) as usize)
        {
            if records.len() == records_max {
                break;
            }
            self.scratch.clear();
            record.encode(&mut self.scratch);
            let record_bytes = wal::record_encoded_len(self.scratch.len());
            if !records.is_empty() && bytes + record_bytes > SHIP_RECORDS_BYTES_MAX {
                break;
            }
            bytes += record_bytes;
            records.push(record.clone());
        }
        assert!(!records.is_empty(), "n{}: a Ship carries records", self.id);
        let peer = state.peers.get_mut(&to).expect("ships go to followers");
        peer.next_lsn = from_lsn + records.len() as LogIndex;
        peer.outstanding_since.get_or_insert(now);
        self.out.messages.push((
            to,
            Message::Ship {
                from_lsn,
                records,
                commit_lsn,
            },
        ));
    }

    /// R7/B3: the follower needs records the leader no longer retains; send the whole state at
    /// `last_lsn` instead.
    fn ship_snapshot(&mut self, now: Tick, to: NodeId, first_retained: LogIndex) {
        let lsn = self.last_lsn;
        self.scratch.clear();
        encode_state(&self.store, &self.dedup, &mut self.scratch);
        if self.scratch.len() > SNAPSHOT_PAYLOAD_BYTES_MAX {
            let bytes = self.scratch.len();
            self.note(format!(
                "n{to} is behind the retained WAL (first {first_retained}) but a snapshot of \
                 {bytes} bytes exceeds {SNAPSHOT_PAYLOAD_BYTES_MAX}: it cannot catch up"
            ));
            return;
        }
        let mut bytes = Vec::new();
        wal::encode_record(lsn, EPOCH, RecordKind::Snapshot, &self.scratch, &mut bytes);
        self.note(format!(
            "n{to} is behind the retained WAL (first {first_retained}): sending snapshot at lsn \
             {lsn}"
        ));
        let peer = self
            .leader_state()
            .peers
            .get_mut(&to)
            .expect("ships go to followers");
        peer.next_lsn = lsn + 1;
        peer.outstanding_since.get_or_insert(now);
        self.out
            .messages
            .push((to, Message::Snapshot { lsn, bytes }));
    }

    /// The follower holds `lsn` durably: record it (acknowledgements never regress) and commit
    /// what that allows.
    fn progress(&mut self, now: Tick, from: NodeId, lsn: LogIndex) {
        let last_lsn = self.last_lsn;
        let lsn = if lsn > last_lsn {
            // Only possible if this leader lost durable records its followers hold (a wiped
            // disk): there is no repair without failover; report it and count what we have.
            self.note(format!(
                "n{from} holds lsn {lsn}, beyond the leader's last lsn {last_lsn}: the leader \
                 lost records"
            ));
            last_lsn
        } else {
            lsn
        };
        let peer = self.peer(from);
        if lsn > peer.acked_lsn {
            let before = peer.acked_lsn;
            peer.acked_lsn = lsn;
            assert!(peer.acked_lsn > before, "acks never regress");
            peer.outstanding_since = (peer.acked_lsn + 1 < peer.next_lsn).then_some(now);
            if peer.rewound_to.is_some_and(|r| r <= peer.acked_lsn + 1) {
                peer.rewound_to = None;
            }
        }
        if peer.next_lsn <= peer.acked_lsn {
            peer.next_lsn = peer.acked_lsn + 1;
        }
        self.advance_commit();
    }

    fn peer(&mut self, id: NodeId) -> &mut Peer {
        self.leader_state()
            .peers
            .get_mut(&id)
            .expect("messages come from followers")
    }

    /// R1/R6: anything from a follower proves it alive; one that was offline is back and
    /// catches up from what it acknowledged.
    fn heard_from(&mut self, now: Tick, from: NodeId) {
        let state = self.leader_state();
        state.responded.insert(from);
        let peer = state
            .peers
            .get_mut(&from)
            .expect("messages come from followers");
        peer.last_heard = now;
        if !peer.online {
            peer.online = true;
            peer.next_lsn = peer.acked_lsn + 1;
            peer.outstanding_since = None;
            peer.rewound_to = None;
            self.note(format!("n{from} online"));
        }
    }

    fn leader_message(&mut self, now: Tick, from: NodeId, message: Message) {
        self.heard_from(now, from);
        let last_lsn = self.last_lsn;
        let pipeline = self.config.pipeline;
        match message {
            Message::Ack { lsn } => {
                self.progress(now, from, lsn);
                let peer = self.peer(from);
                if peer.next_lsn <= last_lsn && (pipeline || peer.outstanding_since.is_none()) {
                    self.ship_next(now, from);
                }
            }
            Message::HeartbeatAck { last_lsn: lsn } => {
                self.progress(now, from, lsn);
                let peer = self.peer(from);
                if peer.probe_lsn.take().is_some_and(|p| peer.acked_lsn < p) {
                    // The heartbeat arrived, the Ships sent before it did not (lost, corrupt,
                    // or overtaken on a reordering network, where re-shipping is harmless).
                    peer.outstanding_since = None;
                    peer.rewound_to = None;
                }
                if peer.outstanding_since.is_none() && peer.acked_lsn < last_lsn {
                    // Nothing in flight, yet the follower lacks records: ship from what it has.
                    peer.next_lsn = peer.acked_lsn + 1;
                    self.ship_next(now, from);
                }
            }
            Message::Nack { expected_lsn } => {
                let expected_lsn = expected_lsn.max(1);
                self.progress(now, from, expected_lsn - 1);
                let peer = self.peer(from);
                if peer.rewound_to == Some(expected_lsn) && peer.next_lsn > expected_lsn {
                    return; // already re-shipped from there
                }
                peer.rewound_to = Some(expected_lsn);
                peer.next_lsn = expected_lsn;
                peer.outstanding_since = None;
                self.ship_next(now, from);
            }
            Message::Rejoin { last_lsn: lsn } => {
                let catch_up = if lsn < last_lsn {
                    format!("catching up from {}", lsn + 1)
                } else {
                    "up to date".to_owned()
                };
                self.note(format!("n{from} rejoined at lsn {lsn}, {catch_up}"));
                self.progress(now, from, lsn);
                let peer = self.peer(from);
                peer.next_lsn = lsn.min(last_lsn) + 1;
                peer.outstanding_since = None;
                peer.rewound_to = None;
                self.ship_next(now, from);
            }
            // The leader is fixed: nobody else sends these. Ignore them.
            Message::Heartbeat { .. } | Message::Ship { .. } | Message::Snapshot { .. } => {}
        }
    }

    // ----- leader: timers -----

    fn leader_tick(&mut self, now: Tick) {
        // R6: failure detection. A follower silent for the keepalive timeout is offline: no
        // longer shipped to nor waited on (it cannot count toward a quorum while silent anyway).
        let keepalive = self.config.keepalive_timeout_ticks;
        let state = self.leader_state();
        let mut silent = Vec::new();
        for (&id, peer) in state.peers.iter_mut() {
            if peer.online && now >= peer.last_heard + keepalive {
                peer.online = false;
                peer.outstanding_since = None;
                silent.push((id, now - peer.last_heard));
            }
        }
        for (id, ticks) in silent {
            self.note(format!("n{id} offline: silent for {ticks} ticks"));
        }
        if now >= self.leader_state().heartbeat_deadline {
            self.heartbeat_round(now);
        }
    }

    /// R1/B4: report connectivity and lag changes, heartbeat every follower, and re-ship to
    /// online followers whatever has waited unacknowledged for a heartbeat interval.
    fn heartbeat_round(&mut self, now: Tick) {
        let heartbeat_ticks = self.config.heartbeat_ticks;
        let followers_count = self.config.followers_count();
        let last_lsn = self.last_lsn;
        let commit_lsn = self.commit_lsn;
        let RoleState::Leader(state) = &mut self.role else {
            unreachable!("only the leader sends heartbeats");
        };
        state.heartbeat_deadline = now + heartbeat_ticks;
        let mut notes = Vec::new();
        let responded = state.responded.len();
        if state.rounds_total > 0
            && followers_count > 0
            && state.responded_reported != Some(responded)
        {
            state.responded_reported = Some(responded);
            notes.push(format!("{responded}/{followers_count} followers responded"));
        }
        let lags = lags(state, last_lsn);
        if lags != state.lags_reported {
            let mut text = "lag".to_owned();
            for (id, lag) in &lags {
                text.push_str(&format!(" n{id}={lag}"));
            }
            notes.push(text);
            state.lags_reported = lags;
        }
        state.responded.clear();
        state.rounds_total += 1;
        let mut reship = Vec::new();
        for (&id, peer) in state.peers.iter_mut() {
            // Every follower, online or not: a heartbeat is how an offline one is found again.
            self.out.messages.push((
                id,
                Message::Heartbeat {
                    leader_lsn: last_lsn,
                    commit_lsn,
                },
            ));
            if !peer.online {
                continue;
            }
            let stale = peer
                .outstanding_since
                .is_some_and(|t| now >= t + heartbeat_ticks);
            if stale {
                // Lost, corrupted or overtaken, and no HeartbeatAck told us earlier: re-ship from
                // what the follower acknowledged.
                peer.next_lsn = peer.acked_lsn + 1;
                peer.outstanding_since = None;
                peer.rewound_to = None;
            }
            peer.probe_lsn = peer.outstanding_since.is_some().then(|| peer.next_lsn - 1);
            if peer.outstanding_since.is_none() && peer.next_lsn <= last_lsn {
                reship.push(id);
            }
        }
        for text in notes {
            self.note(text);
        }
        for id in reship {
            self.ship_next(now, id);
        }
    }

    // ----- follower -----

    fn follower_state(&mut self) -> &mut FollowerState {
        match &mut self.role {
            RoleState::Follower(state) => state,
            RoleState::Leader(_) => unreachable!("n{}: follower-only path on the leader", self.id),
        }
    }

    /// The LSN to acknowledge: everything up to `last_lsn` is durable once this output's
    /// `persist` is synced, which the driver does before sending the acknowledgement.
    fn ack_lsn(&mut self) -> LogIndex {
        let last_lsn = self.last_lsn;
        let state = self.follower_state();
        assert!(
            last_lsn >= state.acked_lsn,
            "acks never regress: lsn {last_lsn} after {}",
            state.acked_lsn
        );
        state.acked_lsn = last_lsn;
        last_lsn
    }

    /// The leader's commit LSN as heard, capped at what this follower holds; never decreases.
    fn learn_commit(&mut self, commit_lsn: LogIndex) {
        let heard = commit_lsn.min(self.last_lsn);
        if heard > self.commit_lsn {
            self.commit_lsn = heard;
        }
    }

    fn follower_message(&mut self, from: NodeId, message: Message) {
        if from != self.config.leader {
            return; // only the fixed leader ships
        }
        let leader = self.config.leader;
        match message {
            Message::Heartbeat { commit_lsn, .. } => {
                self.learn_commit(commit_lsn);
                let last_lsn = self.ack_lsn();
                self.out
                    .messages
                    .push((leader, Message::HeartbeatAck { last_lsn }));
            }
            Message::Ship {
                from_lsn,
                records,
                commit_lsn,
            } => self.accept_ship(from_lsn, records, commit_lsn),
            Message::Snapshot { lsn, bytes } => self.install_snapshot(lsn, &bytes),
            // Only the leader receives these.
            Message::HeartbeatAck { .. }
            | Message::Ack { .. }
            | Message::Nack { .. }
            | Message::Rejoin { .. } => {}
        }
    }

    /// R2/R3: persist, apply and acknowledge the in-order records; ignore duplicates; Nack a
    /// Ship that starts past the next LSN expected (a gap: never apply out of order).
    fn accept_ship(&mut self, from_lsn: LogIndex, records: Vec<LogRecord>, commit_lsn: LogIndex) {
        let leader = self.config.leader;
        let expected_lsn = self.last_lsn + 1;
        if from_lsn > expected_lsn {
            self.out
                .messages
                .push((leader, Message::Nack { expected_lsn }));
            return;
        }
        let mut appended = 0;
        for (k, record) in records.into_iter().enumerate() {
            let lsn = from_lsn + k as LogIndex;
            if lsn <= self.last_lsn {
                continue; // a duplicate: already durable here
            }
            appended += 1;
            assert_eq!(
                lsn,
                self.last_lsn + 1,
                "n{}: records apply in order",
                self.id
            );
            self.persist_and_apply(lsn, &record);
            self.applied_lsn = lsn;
            self.out.applied.push(Applied {
                index: lsn,
                term: EPOCH,
                command: Some((record.client, record.seq, Arc::new(record.op))),
                outcome: ApplyOutcome::Applied(record.result),
            });
        }
        self.learn_commit(commit_lsn);
        self.maybe_compact_wal(appended);
        let lsn = self.ack_lsn();
        self.out.messages.push((leader, Message::Ack { lsn }));
    }

    /// Count the entries persisted since the last snapshot and, past `wal_retain_records`,
    /// replace the WAL with one `Snapshot` record of the state at `last_lsn` (and, on the
    /// leader, a `Checkpoint` of its highest write timestamp): it restores to what replaying
    /// the entries would. The leader calls this only when everything it holds is committed.
    fn maybe_compact_wal(&mut self, appended: usize) {
        let retain = self.config.wal_retain_records;
        let last_lsn = self.last_lsn;
        self.wal_entries += appended;
        if self.wal_entries < retain {
            return;
        }
        // Compacted or not, try again only after another `retain` entries.
        self.wal_entries = 0;
        self.scratch.clear();
        encode_state(&self.store, &self.dedup, &mut self.scratch);
        if self.scratch.len() > SNAPSHOT_PAYLOAD_BYTES_MAX {
            // Too large for one record; the WAL keeps its entries (see the module's limits).
            return;
        }
        self.out.persist.clear();
        self.out.persist_replace = true;
        wal::encode_record(
            last_lsn,
            EPOCH,
            RecordKind::Snapshot,
            &self.scratch,
            &mut self.out.persist,
        );
        if self.is_leader() {
            self.scratch.clear();
            crate::codec::put_u64(&mut self.scratch, self.last_stamp);
            wal::encode_record(
                last_lsn,
                EPOCH,
                RecordKind::Checkpoint,
                &self.scratch,
                &mut self.out.persist,
            );
        }
    }

    /// B3: replace the whole state with the leader's, persist the snapshot record as received
    /// (so a restart recovers from it), and acknowledge its LSN.
    fn install_snapshot(&mut self, lsn: LogIndex, bytes: &[u8]) {
        let leader = self.config.leader;
        if lsn <= self.last_lsn {
            let lsn = self.ack_lsn();
            self.out.messages.push((leader, Message::Ack { lsn }));
            return;
        }
        let state = wal::decode_record(bytes)
            .map_err(|e| e.to_string())
            .and_then(|(record, used)| {
                if used != bytes.len()
                    || record.kind != RecordKind::Snapshot
                    || record.index != lsn
                    || record.term != EPOCH
                {
                    return Err("not a snapshot record for this lsn".to_owned());
                }
                decode_state(record.payload).map_err(|e| e.to_string())
            });
        let (store, dedup) = match state {
            Ok(state) => state,
            Err(reason) => {
                // The leader re-sends at its next heartbeat round.
                self.note(format!("rejected snapshot at lsn {lsn}: {reason}"));
                return;
            }
        };
        // The snapshot supersedes every record before it: it becomes the whole WAL.
        self.out.persist.clear();
        self.out.persist_replace = true;
        self.out.persist.extend_from_slice(bytes);
        self.wal_entries = 0;
        self.store = store;
        self.dedup = dedup;
        self.last_lsn = lsn;
        self.applied_lsn = lsn;
        self.note(format!("installed snapshot at lsn {lsn}"));
        self.out
            .events
            .push(NodeEvent::SnapshotInstalled { index: lsn });
        let lsn = self.ack_lsn();
        self.out.messages.push((leader, Message::Ack { lsn }));
    }

    fn follower_request(&mut self, request: ClientRequest) {
        let ClientRequest {
            client, seq, op, ..
        } = request;
        if op.is_read() && self.config.read_from_follower {
            // B1: served from this follower's own store; possibly stale, possibly showing a
            // write that never reaches a quorum.
            let result = self.store.read(&op);
            self.reply(client, seq, ClientResponse::Ok { result });
            return;
        }
        let leader_hint = Some(self.config.leader);
        self.reply(client, seq, ClientResponse::NotLeader { leader_hint });
    }
}

impl LeaderState {
    fn new(
        config: &Config,
        now: Tick,
        records: VecDeque<LogRecord>,
        first_retained_lsn: LogIndex,
        last_lsn: LogIndex,
    ) -> LeaderState {
        let peers: BTreeMap<NodeId, Peer> = (1..=config.nodes_count)
            .filter(|&id| id != config.leader)
            .map(|id| {
                let peer = Peer {
                    acked_lsn: 0,
                    next_lsn: last_lsn + 1,
                    last_heard: now,
                    online: true,
                    outstanding_since: None,
                    rewound_to: None,
                    probe_lsn: None,
                };
                (id, peer)
            })
            .collect();
        let mut state = LeaderState {
            records,
            first_retained_lsn,
            peers,
            waiting: BTreeMap::new(),
            waiting_count: 0,
            heartbeat_deadline: now,
            rounds_total: 0,
            responded: BTreeSet::new(),
            responded_reported: None,
            lags_reported: Vec::new(),
        };
        state.lags_reported = lags(&state, last_lsn);
        state
    }

    fn wait(&mut self, lsn: LogIndex, waiter: Waiter) {
        self.waiting.entry(lsn).or_default().push(waiter);
        self.waiting_count += 1;
    }
}

impl Waiter {
    fn request(&self) -> (ClientId, Seq) {
        match self {
            Waiter::Write { client, seq, .. }
            | Waiter::Duplicate { client, seq, .. }
            | Waiter::Read { client, seq, .. } => (*client, *seq),
        }
    }
}

fn lags(state: &LeaderState, last_lsn: LogIndex) -> Vec<(NodeId, u64)> {
    state
        .peers
        .iter()
        .map(|(&id, p)| (id, last_lsn.saturating_sub(p.acked_lsn)))
        .collect()
}

/// Apply one record to a replica's state: its effect through last-writer-wins, its session into
/// the dedup table. Every replica applies the same records in LSN order, so the dedup check is
/// always `Apply`; anything else means the replicas diverged (a leader lost records), which is
/// reported rather than asserted because it follows from a real-world fault.
fn apply_record(
    store: &mut LwwStore,
    dedup: &mut DedupTable,
    events: &mut Vec<NodeEvent>,
    lsn: LogIndex,
    record: &LogRecord,
) {
    store.apply(&record.effect, record.version());
    match dedup.check(record.client, record.seq) {
        DedupCheck::Apply => dedup.record(record.client, record.seq, record.result.clone(), lsn),
        other => events.push(NodeEvent::Note(format!(
            "record {lsn} (c{}#{}) does not follow its client's session ({other:?}): replicas \
             diverged",
            record.client, record.seq
        ))),
    }
}

impl Node for ReplicaNode {
    type Message = Message;

    fn id(&self) -> NodeId {
        self.id
    }

    fn handle_tick(&mut self, now: Tick) {
        match &mut self.role {
            RoleState::Leader(_) => self.leader_tick(now),
            RoleState::Follower(state) => {
                if state.rejoin_due.is_some_and(|t| now >= t) {
                    state.rejoin_due = None;
                    let last_lsn = self.last_lsn;
                    let leader = self.config.leader;
                    self.out
                        .messages
                        .push((leader, Message::Rejoin { last_lsn }));
                }
            }
        }
        self.assert_invariants();
    }

    fn handle_message(&mut self, now: Tick, from: NodeId, message: Message) {
        assert!(
            from >= 1 && from <= self.config.nodes_count && from != self.id,
            "n{}: message from invalid sender n{from}",
            self.id
        );
        if self.is_leader() {
            self.leader_message(now, from, message);
        } else {
            self.follower_message(from, message);
        }
        self.assert_invariants();
    }

    /// Like the default, but a Ship or Snapshot whose frame is intact while a nested record
    /// fails its check is also answered with a `Nack`, so the leader re-ships at once instead
    /// of at its next heartbeat round.
    fn handle_wire(&mut self, now: Tick, from: NodeId, bytes: &[u8]) {
        match decode_message(bytes) {
            Ok(message) => self.handle_message(now, from, message),
            Err(e) => {
                let nested = matches!(e, WireError::NestedRecord(_));
                self.out.events.push(NodeEvent::CorruptRejected {
                    from,
                    error: e.decode_error().clone(),
                });
                if nested && !self.is_leader() && from == self.config.leader {
                    let expected_lsn = self.last_lsn + 1;
                    self.out
                        .messages
                        .push((from, Message::Nack { expected_lsn }));
                }
            }
        }
    }

    fn handle_request(&mut self, now: Tick, request: ClientRequest) {
        if self.is_leader() {
            self.leader_request(now, request);
        } else {
            self.follower_request(request);
        }
        self.assert_invariants();
    }

    fn next_deadline_tick(&self) -> Option<Tick> {
        match &self.role {
            RoleState::Leader(state) => {
                let keepalive = self.config.keepalive_timeout_ticks;
                let offline_at = state
                    .peers
                    .values()
                    .filter(|p| p.online)
                    .map(|p| p.last_heard + keepalive)
                    .min();
                Some(offline_at.map_or(state.heartbeat_deadline, |t| {
                    t.min(state.heartbeat_deadline)
                }))
            }
            RoleState::Follower(state) => state.rejoin_due,
        }
    }

    fn output(&mut self) -> &mut Output<Message> {
        &mut self.out
    }

    fn view(&self) -> NodeView {
        NodeView {
            id: self.id,
            role: self.role(),
            term: EPOCH,
            voted_for: None,
            commit_index: self.commit_lsn,
            applied_index: self.applied_lsn,
            last_index: self.last_lsn,
            last_term: if self.last_lsn > 0 { EPOCH } else { 0 },
            leader_hint: Some(self.config.leader),
            store_digest: self.store.digest() ^ self.dedup.digest().rotate_left(17),
        }
    }
}
