//! Invariant checkers. Each property has its own file; [`Checkers`] runs them all after every
//! event and stops the run at the first violation.
//!
//! Checkers see the cluster only through [`ClusterView`], so tests can hand them a made-up,
//! violating state and show that they fire.

pub mod client;
mod dense;
pub mod linearizability;
pub mod raft;

use std::fmt;
use std::sync::Arc;

use raftsim_protocol::kv::Op;
use raftsim_protocol::node::{Applied, Role};
use raftsim_protocol::raft::Command;
use raftsim_protocol::types::{ClientId, LogIndex, NodeId, Seq, Term, Tick};

use crate::cluster::{Cluster, Observation};
use crate::node::{AnyNode, ProtocolConfig};
use crate::trace::TraceHasher;

/// A broken property.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The property's name, e.g. "Election Safety".
    pub property: &'static str,
    /// When it was detected.
    pub tick: Tick,
    /// The nodes involved.
    pub nodes: Vec<NodeId>,
    /// What exactly went wrong.
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let nodes: Vec<String> = self.nodes.iter().map(|n| format!("n{n}")).collect();
        write!(
            f,
            "{} violated at t={} (nodes {}): {}",
            self.property,
            self.tick,
            nodes.join(","),
            self.detail
        )
    }
}

/// What checkers may read of a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeState {
    /// Role.
    pub role: Role,
    /// Term.
    pub term: Term,
    /// Last log index.
    pub last_index: LogIndex,
    /// Commit index.
    pub commit_index: LogIndex,
    /// Truncations of this incarnation's log.
    pub truncations_total: u64,
    /// Last index covered by the node's snapshot: entries up to it were compacted away (their
    /// `log_term` and `entry_fingerprint` are `None` below it), and they are committed and
    /// held in the snapshot's state machine. 0 when the log was never compacted.
    pub snapshot_index: LogIndex,
}

/// Read access to the cluster, for checkers. The checkers take it as a type parameter, not as
/// `dyn`: they ask it something after every event, and a virtual call per question, with a
/// [`NodeState`] built in full where one field is wanted, cost more than the checks themselves.
pub trait ClusterView {
    /// Number of nodes.
    fn nodes_count(&self) -> u32;
    /// State of a running node.
    fn node_state(&self, node: NodeId) -> Option<NodeState>;
    /// Term of a running node: `node_state(node)`'s `term`, without building the rest (the
    /// durability checker asks at every application).
    fn node_term(&self, node: NodeId) -> Option<Term> {
        self.node_state(node).map(|s| s.term)
    }
    /// Term of a node's log entry (`None` beyond its log, and below its snapshot index).
    fn log_term(&self, node: NodeId, index: LogIndex) -> Option<Term>;
    /// Fingerprint of a node's log entry's command (`None` where the log holds no entry,
    /// including compacted indexes). A view that holds real commands looks them up in `cache`
    /// (see [`FingerprintCache`]); a made-up one may ignore it.
    fn entry_fingerprint(
        &self,
        node: NodeId,
        index: LogIndex,
        cache: &mut FingerprintCache,
    ) -> Option<u64>;
    /// Whether a node is running.
    fn is_up(&self, node: NodeId) -> bool {
        self.node_state(node).is_some()
    }
    /// Hands `visit` every entry of `node`'s log from `from` (at least 1) through `to`, in
    /// order, as `(index, term of the entry before it, term, fingerprint)`, and stops at the
    /// first error it returns. Entries the log does not hold (compacted ones, or beyond its
    /// end) are skipped; the term before an entry is 0 where it is unknown. Log Matching walks
    /// each new entry of every node this way, so a view that holds real logs answers it in
    /// one pass over the log rather than with two lookups per entry, as this default does.
    fn walk_entries<E>(
        &self,
        node: NodeId,
        from: LogIndex,
        to: LogIndex,
        cache: &mut FingerprintCache,
        mut visit: impl FnMut(LogIndex, Term, Term, u64) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut prev = self.log_term(node, from - 1);
        for index in from..=to {
            let prev_term = prev.unwrap_or(0);
            prev = self.log_term(node, index);
            let Some(term) = prev else {
                continue;
            };
            let Some(fingerprint) = self.entry_fingerprint(node, index, cache) else {
                continue;
            };
            visit(index, prev_term, term, fingerprint)?;
        }
        Ok(())
    }
}

/// A stable fingerprint of a command (what a log entry does).
pub fn command_fingerprint(command: &Command) -> u64 {
    match command {
        Command::Noop => client_command_fingerprint(None),
        Command::Client { client, seq, op } => {
            client_command_fingerprint(Some((*client, *seq, op)))
        }
    }
}

/// The fingerprint of a command given by parts (`None`: the no-op), as an applied record
/// carries them; equal to [`command_fingerprint`] of the same command. Hashed field by field
/// in 64-bit words, without encoding or allocating.
pub fn client_command_fingerprint(command: Option<(ClientId, Seq, &Op)>) -> u64 {
    let mut h = TraceHasher::new();
    match command {
        None => h.write_u64(0),
        Some((client, seq, op)) => {
            h.write_u64(1);
            h.write_u64(client);
            h.write_u64(seq);
            std::hash::Hash::hash(op, &mut h);
        }
    }
    h.finish()
}

/// How many entries [`FingerprintCache`] remembers: one slot per index modulo this. An entry is
/// fingerprinted by every node, as its log takes it and again as it applies it, mostly within
/// a few dozen indexes of the newest; a node that lags further only misses and hashes.
const FINGERPRINT_SLOTS: usize = 1024;

/// The fingerprints of recently seen log entries' commands. Every node's copy of an entry
/// shares one `Arc<Op>` (AppendEntries messages and applied records copy the pointer), so a
/// command whose client, seq and operation pointer equal a slot's has that slot's fingerprint,
/// found without hashing the operation's strings again. The slot holds its `Arc`, so the
/// pointer cannot be reused by another operation while it is there. A copy that does not
/// share the pointer (decoded from a disk after a restart) is simply hashed.
#[derive(Debug)]
pub struct FingerprintCache {
    /// Slot `index % FINGERPRINT_SLOTS`: the last command fingerprinted at such an index.
    slots: Vec<Option<CachedFingerprint>>,
    /// The no-op's fingerprint, which is the same everywhere.
    noop: u64,
}

#[derive(Debug)]
struct CachedFingerprint {
    client: ClientId,
    seq: Seq,
    op: Arc<Op>,
    fingerprint: u64,
}

impl Default for FingerprintCache {
    fn default() -> Self {
        FingerprintCache {
            slots: (0..FINGERPRINT_SLOTS).map(|_| None).collect(),
            noop: client_command_fingerprint(None),
        }
    }
}

impl FingerprintCache {
    /// [`command_fingerprint`] of `command`, the entry at `index` of some log.
    pub fn command(&mut self, index: LogIndex, command: &Command) -> u64 {
        match command {
            Command::Noop => self.noop,
            Command::Client { client, seq, op } => self.client_command(index, *client, *seq, op),
        }
    }

    /// [`client_command_fingerprint`] of a client command applied (or logged) at `index`.
    ///
    /// Inlined: the checkers ask once per application and per logged entry, and most asks hit,
    /// which costs fewer instructions than the call that would wrap them; a miss hashes out of
    /// line ([`FingerprintCache::fill`]).
    #[inline]
    pub fn client_command(
        &mut self,
        index: LogIndex,
        client: ClientId,
        seq: Seq,
        op: &Arc<Op>,
    ) -> u64 {
        let slot = (index % FINGERPRINT_SLOTS as LogIndex) as usize;
        if let Some(c) = &self.slots[slot] {
            if c.client == client && c.seq == seq && Arc::ptr_eq(&c.op, op) {
                return c.fingerprint;
            }
        }
        self.fill(slot, client, seq, op)
    }

    /// Hashes a command [`FingerprintCache::client_command`] missed, and keeps it in `slot`.
    ///
    /// A miss on a copy of the slot's command (a restarted node's log, decoded from its disk,
    /// holds copies, which it walks and applies again) takes the slot's fingerprint after
    /// comparing the operations, which costs less than hashing one; the slot then holds the
    /// copy, which that node looks up next.
    #[inline(never)]
    fn fill(&mut self, slot: usize, client: ClientId, seq: Seq, op: &Arc<Op>) -> u64 {
        let fingerprint = match &self.slots[slot] {
            Some(c) if c.client == client && c.seq == seq && *c.op == **op => c.fingerprint,
            _ => client_command_fingerprint(Some((client, seq, op))),
        };
        self.slots[slot] = Some(CachedFingerprint {
            client,
            seq,
            op: Arc::clone(op),
            fingerprint,
        });
        fingerprint
    }

    /// The fingerprint of an applied command (`None`: the no-op) at `index`.
    pub fn applied(&mut self, index: LogIndex, command: &Option<(ClientId, Seq, Arc<Op>)>) -> u64 {
        match command {
            None => self.noop,
            Some((client, seq, op)) => self.client_command(index, *client, *seq, op),
        }
    }
}

impl ClusterView for Cluster {
    fn nodes_count(&self) -> u32 {
        Cluster::nodes_count(self)
    }

    #[inline]
    fn node_state(&self, node: NodeId) -> Option<NodeState> {
        // One match on the protocol, not one per field.
        Some(match self.node(node)? {
            AnyNode::Raft(r) => NodeState {
                role: r.role(),
                term: r.term(),
                last_index: r.log().last_index(),
                commit_index: r.commit_index(),
                truncations_total: r.truncations_total(),
                snapshot_index: r.snapshot_index(),
            },
            n @ AnyNode::Replication(_) => NodeState {
                role: n.role(),
                term: n.term(),
                last_index: n.last_index(),
                commit_index: n.commit_index(),
                truncations_total: 0,
                snapshot_index: 0,
            },
        })
    }

    fn node_term(&self, node: NodeId) -> Option<Term> {
        self.node(node).map(|n| n.term())
    }

    fn log_term(&self, node: NodeId, index: LogIndex) -> Option<Term> {
        self.node(node)
            .and_then(|n| n.as_raft())
            .and_then(|n| n.log().term(index))
    }

    fn entry_fingerprint(
        &self,
        node: NodeId,
        index: LogIndex,
        cache: &mut FingerprintCache,
    ) -> Option<u64> {
        self.node(node)
            .and_then(|n| n.as_raft())
            .and_then(|n| n.log().entry(index))
            .map(|e| cache.command(index, &e.command))
    }

    /// The trait's walk, over the log's slice. It visits what the default visits: the
    /// entries held, from the first held one at or after `from`, the term before which is
    /// `log_term` of the index before it (0 below the compacted prefix).
    fn walk_entries<E>(
        &self,
        node: NodeId,
        from: LogIndex,
        to: LogIndex,
        cache: &mut FingerprintCache,
        mut visit: impl FnMut(LogIndex, Term, Term, u64) -> Result<(), E>,
    ) -> Result<(), E> {
        let Some(log) = self.node(node).and_then(|n| n.as_raft()).map(|n| n.log()) else {
            return Ok(());
        };
        let start = from.max(log.first_index());
        let mut prev_term = log.term(start - 1).unwrap_or(0);
        for (index, entry) in (start..).zip(log.slice(start, to)) {
            visit(
                index,
                prev_term,
                entry.term,
                cache.command(index, &entry.command),
            )?;
            prev_term = entry.term;
        }
        Ok(())
    }
}

/// Every online checker that applies to the run's protocol, run together.
#[derive(Debug, Default)]
pub struct Checkers {
    /// The Raft paper's five properties (Raft only).
    pub raft: Option<raft::RaftSafety>,
    /// Exactly-once application per replica.
    pub exactly_once: client::ExactlyOnce,
    /// Acknowledged writes survive in every later leader (Raft only).
    pub durability: Option<client::Durability>,
    /// Acknowledged writes are on a quorum of replicas (leader-follower store only).
    pub quorum_durability: Option<client::QuorumDurability>,
}

impl Checkers {
    /// Fresh checkers for a cluster running `protocol`.
    pub fn new(protocol: &ProtocolConfig) -> Checkers {
        let n = protocol.nodes_count();
        Checkers {
            raft: protocol.raft().map(|_| raft::RaftSafety::new(n)),
            exactly_once: client::ExactlyOnce::new(n),
            durability: protocol.raft().map(|_| client::Durability::default()),
            quorum_durability: protocol
                .replication()
                .map(|c| client::QuorumDurability::new(n, c.quorum as u32)),
        }
    }

    /// Feed one observation.
    pub fn observe<V: ClusterView + ?Sized>(
        &mut self,
        now: Tick,
        observation: &Observation,
        view: &V,
    ) -> Result<(), Violation> {
        match observation {
            Observation::Applied { node, applied } => self.applied(now, *node, applied, view),
            _ => self.observe_change(now, observation, view),
        }
    }

    /// [`Checkers::observe`] of a role change, crash, restart or snapshot install: one
    /// observation in thirty, so out of line, where the checkers' handling of them does not
    /// crowd the loop that feeds applications.
    #[inline(never)]
    fn observe_change<V: ClusterView + ?Sized>(
        &mut self,
        now: Tick,
        observation: &Observation,
        view: &V,
    ) -> Result<(), Violation> {
        if let Some(r) = self.raft.as_mut() {
            r.observe(now, observation, view)?;
        }
        self.exactly_once.observe(now, observation)?;
        if let Some(d) = self.durability.as_mut() {
            d.observe(now, observation, view)?;
        }
        if let Some(q) = self.quorum_durability.as_mut() {
            q.observe(observation);
        }
        Ok(())
    }

    /// Feed `node`'s application of `applied`: most observations are applications, and each
    /// checker wants part of the same work, done here once for all (the applier's term read,
    /// the write sorted out from reads, no-ops and duplicates). In the order
    /// [`Checkers::observe`] feeds the checkers, so the same violation comes out first.
    /// Always inlined into the run loop's feed, which exists for it.
    #[inline(always)]
    fn applied<V: ClusterView + ?Sized>(
        &mut self,
        now: Tick,
        node: NodeId,
        applied: &Applied,
        view: &V,
    ) -> Result<(), Violation> {
        let term_now = if self.raft.is_some() || self.durability.is_some() {
            view.node_term(node)
        } else {
            None
        };
        if let Some(r) = self.raft.as_mut() {
            r.applied(now, node, applied, term_now)?;
        }
        if let Some(write) = client::store_write(applied) {
            self.exactly_once
                .write_applied(now, node, (write.0, write.1, applied.index))?;
            if let Some(d) = self.durability.as_mut() {
                d.write_applied(write, applied, term_now.unwrap_or(applied.term));
            }
        }
        if let Some(q) = self.quorum_durability.as_mut() {
            q.applied(node, applied);
        }
        Ok(())
    }

    /// Check a node's state after it handled an input.
    #[inline]
    pub fn check_node<V: ClusterView + ?Sized>(
        &mut self,
        now: Tick,
        node: NodeId,
        view: &V,
    ) -> Result<(), Violation> {
        match self.raft.as_mut() {
            Some(r) => r.check_node(now, node, view),
            None => Ok(()),
        }
    }

    /// The state of `node` if [`Checkers::check_node`] would find something to check: the
    /// node is up and its state is not the one its last passing check saw. Reads the node's
    /// state and changes nothing, so the run loop asks it inline after every event (and
    /// checks a moved state with [`raft::RaftSafety`]'s own steps, without reading it again).
    #[inline(always)]
    pub fn moved_state<V: ClusterView + ?Sized>(
        &self,
        node: NodeId,
        view: &V,
    ) -> Option<NodeState> {
        self.raft.as_ref()?.moved_state(node, view)
    }

    /// A client received an acknowledgement for a write.
    pub fn write_acknowledged<V: ClusterView + ?Sized>(
        &mut self,
        now: Tick,
        client: ClientId,
        seq: Seq,
        view: &V,
    ) -> Result<(), Violation> {
        if let Some(d) = self.durability.as_mut() {
            d.acknowledged(now, client, seq, view)?;
        }
        if let Some(q) = self.quorum_durability.as_mut() {
            q.acknowledged(now, client, seq, view)?;
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod fake {
    //! A hand-made cluster state for checker tests.
    use super::*;
    use std::collections::BTreeMap;

    /// Nodes with explicit logs: (term, fingerprint) per index starting at 1. A node's log
    /// can be compacted up to an index (`compact`): below it, terms and fingerprints are gone.
    #[derive(Default)]
    pub struct FakeCluster {
        pub states: BTreeMap<NodeId, NodeState>,
        pub logs: BTreeMap<NodeId, Vec<(Term, u64)>>,
    }

    impl FakeCluster {
        pub fn set(&mut self, node: NodeId, role: Role, term: Term, log: Vec<(Term, u64)>) {
            let prev = self.states.get(&node).map_or(0, |s| s.truncations_total);
            self.states.insert(
                node,
                NodeState {
                    role,
                    term,
                    last_index: log.len() as LogIndex,
                    commit_index: 0,
                    truncations_total: prev,
                    snapshot_index: 0,
                },
            );
            self.logs.insert(node, log);
        }

        /// Discard `node`'s log up to `index`, as a snapshot would.
        pub fn compact(&mut self, node: NodeId, index: LogIndex) {
            self.states
                .get_mut(&node)
                .expect("set the node first")
                .snapshot_index = index;
        }

        fn compacted(&self, node: NodeId, index: LogIndex) -> bool {
            self.states
                .get(&node)
                .is_some_and(|s| index < s.snapshot_index)
        }
    }

    impl ClusterView for FakeCluster {
        fn nodes_count(&self) -> u32 {
            self.states.len() as u32
        }
        fn node_state(&self, node: NodeId) -> Option<NodeState> {
            self.states.get(&node).copied()
        }
        fn log_term(&self, node: NodeId, index: LogIndex) -> Option<Term> {
            if self.compacted(node, index) {
                return None;
            }
            if index == 0 {
                return Some(0);
            }
            self.logs.get(&node)?.get(index as usize - 1).map(|e| e.0)
        }
        fn entry_fingerprint(
            &self,
            node: NodeId,
            index: LogIndex,
            _cache: &mut FingerprintCache,
        ) -> Option<u64> {
            if self.compacted(node, index)
                || self
                    .states
                    .get(&node)
                    .is_some_and(|s| s.snapshot_index == index)
            {
                return None;
            }
            self.logs
                .get(&node)?
                .get((index as usize).checked_sub(1)?)
                .map(|e| e.1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::Sim;
    use crate::trace::Trace;

    /// A cluster seen through the trait's default walk: two lookups per index.
    struct PerIndex<'a>(&'a Cluster);

    impl ClusterView for PerIndex<'_> {
        fn nodes_count(&self) -> u32 {
            ClusterView::nodes_count(self.0)
        }
        fn node_state(&self, node: NodeId) -> Option<NodeState> {
            self.0.node_state(node)
        }
        fn log_term(&self, node: NodeId, index: LogIndex) -> Option<Term> {
            self.0.log_term(node, index)
        }
        fn entry_fingerprint(
            &self,
            node: NodeId,
            index: LogIndex,
            cache: &mut FingerprintCache,
        ) -> Option<u64> {
            self.0.entry_fingerprint(node, index, cache)
        }
    }

    fn walked(
        view: &impl ClusterView,
        node: NodeId,
        from: LogIndex,
        to: LogIndex,
    ) -> Vec<(LogIndex, Term, Term, u64)> {
        let mut seen = Vec::new();
        let mut cache = FingerprintCache::default();
        let walk = view.walk_entries(node, from, to, &mut cache, |index, prev, term, fp| {
            seen.push((index, prev, term, fp));
            Ok::<(), ()>(())
        });
        assert_eq!(walk, Ok(()));
        seen
    }

    /// The cluster's one-pass walk visits exactly what the per-index default visits, over
    /// logs compacted by snapshots, cut by crashes and overwritten by new leaders, from below
    /// the snapshot index, inside the log and past its end.
    #[test]
    fn cluster_walk_agrees_with_the_per_index_walk() {
        let mut args = crate::bench::fuzz_standard_args(3);
        args.snapshot_every = 8;
        let mut sim = Sim::new(args.to_config().unwrap(), Trace::off()).unwrap();
        let mut compacted = false;
        for stop in (50..=1500).step_by(50) {
            let _ = sim.run_until(stop);
            let c = sim.cluster();
            for node in 1..=ClusterView::nodes_count(c) {
                let Some(state) = c.node_state(node) else {
                    continue;
                };
                compacted |= state.snapshot_index > 0;
                let last = state.last_index;
                let snapshot = state.snapshot_index;
                for (from, to) in [
                    (1, last),
                    (snapshot.max(1), last),
                    (snapshot + 1, last),
                    (last.max(1), last + 3),
                    (last / 2 + 1, last),
                ] {
                    assert_eq!(
                        walked(c, node, from, to),
                        walked(&PerIndex(c), node, from, to),
                        "n{node} from {from} to {to} (snapshot {snapshot}, last {last})"
                    );
                }
            }
        }
        assert!(
            compacted,
            "no log was compacted: the walk's skip went untested"
        );
    }

    fn put(value: &str) -> Arc<Op> {
        Arc::new(Op::Put {
            key: "k".into(),
            value: value.into(),
        })
    }

    /// The cache answers what [`command_fingerprint`] would, whether it hits (the same `Arc`),
    /// misses on an equal copy, or sees a command that shares the operation but not the seq.
    #[test]
    fn fingerprint_cache_agrees_with_hashing() {
        let mut cache = FingerprintCache::default();
        let op = put("a");
        let command = |seq, op: &Arc<Op>| Command::Client {
            client: 1,
            seq,
            op: Arc::clone(op),
        };
        let expected = command_fingerprint(&command(1, &op));
        assert_eq!(cache.command(5, &command(1, &op)), expected);
        assert_eq!(cache.command(5, &command(1, &op)), expected, "hit");
        assert_eq!(
            cache.applied(5, &Some((1, 1, Arc::clone(&op)))),
            expected,
            "an applied record shares the entry's slot"
        );
        assert_eq!(cache.command(5, &command(1, &put("a"))), expected, "copy");
        let other_seq = command(2, &op);
        assert_eq!(
            cache.command(5, &other_seq),
            command_fingerprint(&other_seq)
        );
        assert_ne!(command_fingerprint(&other_seq), expected);
        let other_op = command(1, &put("b"));
        assert_eq!(
            cache.command(5 + FINGERPRINT_SLOTS as LogIndex, &other_op),
            command_fingerprint(&other_op),
            "same slot, another operation"
        );
        assert_eq!(
            cache.command(9, &Command::Noop),
            command_fingerprint(&Command::Noop)
        );
        assert_eq!(cache.applied(9, &None), command_fingerprint(&Command::Noop));
    }
}
