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

use raftsim_protocol::kv::Op;
use raftsim_protocol::node::Role;
use raftsim_protocol::raft::Command;
use raftsim_protocol::types::{ClientId, LogIndex, NodeId, Seq, Term, Tick};

use crate::cluster::{Cluster, Observation};
use crate::node::ProtocolConfig;
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

/// Read access to the cluster, for checkers.
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
    /// including compacted indexes).
    fn entry_fingerprint(&self, node: NodeId, index: LogIndex) -> Option<u64>;
    /// Whether a node is running.
    fn is_up(&self, node: NodeId) -> bool {
        self.node_state(node).is_some()
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

impl ClusterView for Cluster {
    fn nodes_count(&self) -> u32 {
        Cluster::nodes_count(self)
    }

    fn node_state(&self, node: NodeId) -> Option<NodeState> {
        self.node(node).map(|n| NodeState {
            role: n.role(),
            term: n.term(),
            last_index: n.last_index(),
            commit_index: n.commit_index(),
            truncations_total: n.as_raft().map_or(0, |r| r.truncations_total()),
            snapshot_index: n.as_raft().map_or(0, |r| r.snapshot_index()),
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

    fn entry_fingerprint(&self, node: NodeId, index: LogIndex) -> Option<u64> {
        self.node(node)
            .and_then(|n| n.as_raft())
            .and_then(|n| n.log().entry(index))
            .map(|e| command_fingerprint(&e.command))
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
    pub fn observe(
        &mut self,
        now: Tick,
        observation: &Observation,
        view: &dyn ClusterView,
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

    /// Check a node's state after it handled an input.
    pub fn check_node(
        &mut self,
        now: Tick,
        node: NodeId,
        view: &dyn ClusterView,
    ) -> Result<(), Violation> {
        match self.raft.as_mut() {
            Some(r) => r.check_node(now, node, view),
            None => Ok(()),
        }
    }

    /// A client received an acknowledgement for a write.
    pub fn write_acknowledged(
        &mut self,
        now: Tick,
        client: ClientId,
        seq: Seq,
        view: &dyn ClusterView,
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
        fn entry_fingerprint(&self, node: NodeId, index: LogIndex) -> Option<u64> {
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
