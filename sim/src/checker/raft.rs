//! The Raft paper's five safety properties (Figure 3), checked online and incrementally.
//!
//! - **Election Safety**: at most one leader per term — a map term → leader, updated on every
//!   role change.
//! - **Leader Append-Only**: a leader never overwrites or deletes entries — while a node leads
//!   a term, its truncation counter never moves and its last index never falls.
//! - **Log Matching**: if two logs hold an entry with the same index and term, they are
//!   identical up to it. Checked by induction: every (index, term) ever seen must always come
//!   with the same command and the same predecessor term. Then two entries with equal
//!   (index, term) have equal predecessors, and so on down to index 1.
//! - **Leader Completeness**: an entry committed in a term is in the log of every leader of a
//!   later term — every new leader's log is compared with every entry known committed. An
//!   index below the leader's snapshot index counts as present: log compaction (§7) only
//!   discards applied entries, and the snapshot's state machine holds them.
//! - **State Machine Safety**: no two nodes apply different commands at the same index.

use std::collections::BTreeMap;

use raftsim_protocol::node::Role;
use raftsim_protocol::types::{LogIndex, NodeId, Term, Tick};

use super::{client_command_fingerprint, ClusterView, Violation};
use crate::cluster::Observation;

/// Name constants, used in reports and by the planted-bug tests.
pub const ELECTION_SAFETY: &str = "Election Safety";
/// See the module docs.
pub const LEADER_APPEND_ONLY: &str = "Leader Append-Only";
/// See the module docs.
pub const LOG_MATCHING: &str = "Log Matching";
/// See the module docs.
pub const LEADER_COMPLETENESS: &str = "Leader Completeness";
/// See the module docs.
pub const STATE_MACHINE_SAFETY: &str = "State Machine Safety";

#[derive(Debug, Clone, Copy, Default)]
struct LeaderWatch {
    term: Term,
    truncations_total: u64,
    last_index: LogIndex,
}

#[derive(Debug, Clone, Copy, Default)]
struct MatchWatch {
    /// Entries up to here were verified against the global map.
    verified_last: LogIndex,
    /// Commit index at the last check; entries below it do not change in a correct run.
    commit_index: LogIndex,
    truncations_total: u64,
}

/// The five properties' state.
#[derive(Debug, Default)]
pub struct RaftSafety {
    leaders_by_term: BTreeMap<Term, NodeId>,
    leader_watch: Vec<Option<LeaderWatch>>,
    match_watch: Vec<MatchWatch>,
    /// (index, term) → (predecessor term, command fingerprint, first node seen with it).
    entries: BTreeMap<(LogIndex, Term), (Term, u64, NodeId)>,
    /// index → (term, command fingerprint, first node that applied it).
    applied: BTreeMap<LogIndex, (Term, u64, NodeId)>,
    /// index → an upper bound on the term in which the entry was committed: the smallest
    /// current term of any node seen applying it. (The leader that commits an entry applies it
    /// in its own term; a follower learns of the commit from a leader of its term, so never
    /// earlier.) Leader Completeness binds leaders of *later* terms than the commit's.
    commit_term: BTreeMap<LogIndex, Term>,
}

impl RaftSafety {
    /// Fresh state for `nodes_count` nodes.
    pub fn new(nodes_count: u32) -> RaftSafety {
        RaftSafety {
            leader_watch: vec![None; nodes_count as usize],
            match_watch: vec![MatchWatch::default(); nodes_count as usize],
            ..RaftSafety::default()
        }
    }

    /// Feed one observation.
    pub fn observe(
        &mut self,
        now: Tick,
        observation: &Observation,
        view: &dyn ClusterView,
    ) -> Result<(), Violation> {
        match observation {
            Observation::Role {
                node,
                role: Role::Leader,
                term,
            } => {
                self.check_election_safety(now, *node, *term)?;
                self.check_leader_completeness(now, *node, *term, view)?;
                self.check_node(now, *node, view)?;
            }
            Observation::Role { node, .. } | Observation::Crashed { node } => {
                self.leader_watch[(*node - 1) as usize] = None;
            }
            // The log change an install makes (compaction, a discarded tail counted as a
            // truncation) is checked by `check_node` after the input, like any other.
            Observation::SnapshotInstalled { .. } => {}
            Observation::Restarted { node } => {
                self.leader_watch[(*node - 1) as usize] = None;
                self.match_watch[(*node - 1) as usize] = MatchWatch::default();
            }
            Observation::Applied { node, applied } => {
                let fingerprint = client_command_fingerprint(
                    applied
                        .command
                        .as_ref()
                        .map(|(client, seq, op)| (*client, *seq, &**op)),
                );
                let applier_term = view.node_state(*node).map_or(applied.term, |s| s.term);
                let bound = self
                    .commit_term
                    .entry(applied.index)
                    .or_insert(applier_term);
                *bound = (*bound).min(applier_term);
                match self.applied.get(&applied.index) {
                    None => {
                        self.applied
                            .insert(applied.index, (applied.term, fingerprint, *node));
                    }
                    Some(&(term, fp, first)) => {
                        if term != applied.term || fp != fingerprint {
                            return Err(Violation {
                                property: STATE_MACHINE_SAFETY,
                                tick: now,
                                nodes: vec![first, *node],
                                detail: format!(
                                    "index {} applied as term {term} on n{first} but as term {} \
                                     with {} command on n{node}",
                                    applied.index,
                                    applied.term,
                                    if fp == fingerprint {
                                        "the same"
                                    } else {
                                        "a different"
                                    }
                                ),
                            });
                        }
                    }
                }
            }
        }
        Ok(())
    }

    fn check_election_safety(
        &mut self,
        now: Tick,
        node: NodeId,
        term: Term,
    ) -> Result<(), Violation> {
        match self.leaders_by_term.get(&term) {
            Some(&other) if other != node => Err(Violation {
                property: ELECTION_SAFETY,
                tick: now,
                nodes: vec![other, node],
                detail: format!("two leaders in term {term}: n{other} and n{node}"),
            }),
            _ => {
                self.leaders_by_term.insert(term, node);
                Ok(())
            }
        }
    }

    fn check_leader_completeness(
        &mut self,
        now: Tick,
        node: NodeId,
        term: Term,
        view: &dyn ClusterView,
    ) -> Result<(), Violation> {
        // Every applied entry is committed; entries committed in a term below this leader's
        // must be in its log (a leader of an older term, elected late, is bound by nothing).
        let snapshot_index = view.node_state(node).map_or(0, |s| s.snapshot_index);
        for (&index, &(entry_term, _, first)) in &self.applied {
            let committed_in = self.commit_term.get(&index).copied().unwrap_or(entry_term);
            if committed_in >= term || index < snapshot_index {
                continue;
            }
            let has = view.log_term(node, index);
            if has != Some(entry_term) {
                return Err(Violation {
                    property: LEADER_COMPLETENESS,
                    tick: now,
                    nodes: vec![node, first],
                    detail: format!(
                        "n{node} became leader of term {term} without entry {index} (term \
                         {entry_term}, committed by term {committed_in}, applied on n{first}); its \
                         log has {}",
                        has.map_or("nothing there".to_string(), |t| format!("term {t}"))
                    ),
                });
            }
        }
        Ok(())
    }

    /// Check a node's log after it handled an input: Leader Append-Only and Log Matching.
    pub fn check_node(
        &mut self,
        now: Tick,
        node: NodeId,
        view: &dyn ClusterView,
    ) -> Result<(), Violation> {
        let Some(state) = view.node_state(node) else {
            return Ok(());
        };
        let i = (node - 1) as usize;
        // Leader Append-Only (and Election Safety for a leader whose term moved without a
        // role change, which no correct node does).
        if state.role == Role::Leader {
            self.check_election_safety(now, node, state.term)?;
            if let Some(w) = self.leader_watch[i] {
                if w.term == state.term
                    && (state.truncations_total != w.truncations_total
                        || state.last_index < w.last_index)
                {
                    return Err(Violation {
                        property: LEADER_APPEND_ONLY,
                        tick: now,
                        nodes: vec![node],
                        detail: format!(
                            "leader n{node} of term {} removed entries: last index {} -> {}, \
                                 truncations {} -> {}",
                            state.term,
                            w.last_index,
                            state.last_index,
                            w.truncations_total,
                            state.truncations_total
                        ),
                    });
                }
            }
            self.leader_watch[i] = Some(LeaderWatch {
                term: state.term,
                truncations_total: state.truncations_total,
                last_index: state.last_index,
            });
        } else {
            self.leader_watch[i] = None;
        }
        // Log Matching, incrementally over entries not verified yet (after a truncation, from
        // the commit index seen last time: a correct node never truncates below it). Indexes a
        // snapshot covers have no entry to compare (the snapshot's last index keeps its term, so
        // the entry after it still has its predecessor's term checked); they are skipped.
        let w = &mut self.match_watch[i];
        let mut from = w.verified_last + 1;
        if state.truncations_total != w.truncations_total {
            from = from.min(w.commit_index + 1);
        }
        from = from
            .min(state.last_index + 1)
            .max(state.snapshot_index)
            .max(1);
        for index in from..=state.last_index {
            let (Some(term), Some(fingerprint)) = (
                view.log_term(node, index),
                view.entry_fingerprint(node, index),
            ) else {
                continue; // compacted
            };
            let prev_term = view.log_term(node, index - 1).unwrap_or(0);
            match self.entries.get(&(index, term)) {
                None => {
                    self.entries
                        .insert((index, term), (prev_term, fingerprint, node));
                }
                Some(&(p, fp, first)) => {
                    if p != prev_term || fp != fingerprint {
                        return Err(Violation {
                            property: LOG_MATCHING,
                            tick: now,
                            nodes: vec![first, node],
                            detail: format!(
                                "entry {index}/term {term} differs between n{first} and n{node}: \
                                 {}",
                                if fp != fingerprint {
                                    "different commands".to_string()
                                } else {
                                    format!("predecessor terms {p} vs {prev_term}")
                                }
                            ),
                        });
                    }
                }
            }
        }
        let w = &mut self.match_watch[i];
        w.verified_last = state.last_index;
        w.commit_index = state.commit_index;
        w.truncations_total = state.truncations_total;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checker::fake::FakeCluster;
    use raftsim_protocol::kv::{Op, OpResult};
    use raftsim_protocol::node::{Applied, ApplyOutcome};

    fn leader(node: NodeId, term: Term) -> Observation {
        Observation::Role {
            node,
            role: Role::Leader,
            term,
        }
    }

    fn applied(node: NodeId, index: LogIndex, term: Term, value: &str) -> Observation {
        Observation::Applied {
            node,
            applied: Applied {
                index,
                term,
                command: Some((
                    1,
                    index,
                    Op::Put {
                        key: "k".into(),
                        value: value.into(),
                    }
                    .into(),
                )),
                outcome: ApplyOutcome::Applied(OpResult::Ok),
            },
        }
    }

    #[test]
    fn election_safety_fires_on_two_leaders_in_a_term() {
        let mut fake = FakeCluster::default();
        fake.set(1, Role::Leader, 2, vec![]);
        fake.set(2, Role::Leader, 2, vec![]);
        let mut c = RaftSafety::new(2);
        assert!(c.observe(5, &leader(1, 2), &fake).is_ok());
        assert!(
            c.observe(6, &leader(1, 2), &fake).is_ok(),
            "same leader again is fine"
        );
        let v = c.observe(7, &leader(2, 2), &fake).unwrap_err();
        assert_eq!(v.property, ELECTION_SAFETY);
        assert_eq!(v.nodes, vec![1, 2]);
        fake.set(2, Role::Leader, 3, vec![]);
        assert!(c.observe(8, &leader(2, 3), &fake).is_ok());
    }

    #[test]
    fn state_machine_safety_fires_on_different_applies_at_one_index() {
        let fake = FakeCluster::default();
        let mut c = RaftSafety::new(3);
        c.observe(1, &applied(1, 1, 1, "a"), &fake).unwrap();
        c.observe(2, &applied(2, 1, 1, "a"), &fake).unwrap();
        let v = c.observe(3, &applied(3, 1, 1, "b"), &fake).unwrap_err();
        assert_eq!(v.property, STATE_MACHINE_SAFETY);
        let v = c.observe(3, &applied(3, 1, 2, "a"), &fake).unwrap_err();
        assert_eq!(v.property, STATE_MACHINE_SAFETY);
    }

    #[test]
    fn leader_completeness_fires_when_a_leader_lacks_a_committed_entry() {
        let mut fake = FakeCluster::default();
        fake.set(1, Role::Follower, 1, vec![(1, 10), (1, 11)]);
        fake.set(2, Role::Leader, 2, vec![(1, 10)]);
        let mut c = RaftSafety::new(2);
        c.observe(1, &applied(1, 2, 1, "x"), &fake).unwrap();
        let v = c.observe(2, &leader(2, 2), &fake).unwrap_err();
        assert_eq!(v.property, LEADER_COMPLETENESS);
        assert!(v.detail.contains("entry 2"), "{}", v.detail);
    }

    /// After log compaction a leader's log no longer holds old committed entries; its snapshot
    /// does, so no false alarm — but an entry past the snapshot is still required.
    #[test]
    fn leader_completeness_counts_the_snapshot_as_holding_compacted_entries() {
        let mut fake = FakeCluster::default();
        let log = vec![(1, 10), (1, 11), (1, 12), (1, 13)];
        fake.set(1, Role::Follower, 1, log.clone());
        fake.set(2, Role::Leader, 2, log[..3].to_vec());
        fake.compact(2, 3);
        let mut c = RaftSafety::new(2);
        for index in 1..=3 {
            c.observe(1, &applied(1, index, 1, "x"), &fake).unwrap();
        }
        c.observe(2, &leader(2, 2), &fake).unwrap();
        // Entry 4, committed too, is beyond the leader's log: a real violation.
        c.observe(3, &applied(1, 4, 1, "x"), &fake).unwrap();
        fake.set(2, Role::Leader, 3, log[..3].to_vec());
        fake.compact(2, 3);
        let v = c.observe(4, &leader(2, 3), &fake).unwrap_err();
        assert_eq!(v.property, LEADER_COMPLETENESS);
        assert!(v.detail.contains("entry 4"), "{}", v.detail);
    }

    #[test]
    fn log_matching_skips_compacted_entries_and_still_checks_the_rest() {
        let mut fake = FakeCluster::default();
        fake.set(
            1,
            Role::Follower,
            2,
            vec![(1, 10), (1, 11), (2, 20), (2, 21)],
        );
        fake.set(
            2,
            Role::Follower,
            2,
            vec![(1, 10), (1, 11), (2, 20), (2, 22)],
        );
        fake.compact(2, 3);
        let mut c = RaftSafety::new(2);
        c.check_node(1, 1, &fake).unwrap();
        let v = c.check_node(2, 2, &fake).unwrap_err();
        assert_eq!(v.property, LOG_MATCHING);
        assert!(v.detail.contains("entry 4"), "{}", v.detail);
        // A compacted node that agrees raises nothing.
        fake.set(
            2,
            Role::Follower,
            2,
            vec![(1, 10), (1, 11), (2, 20), (2, 21)],
        );
        fake.compact(2, 3);
        let mut c = RaftSafety::new(2);
        c.check_node(1, 1, &fake).unwrap();
        c.check_node(2, 2, &fake).unwrap();
    }

    #[test]
    fn log_matching_fires_on_same_index_and_term_with_different_content() {
        let mut fake = FakeCluster::default();
        fake.set(1, Role::Follower, 2, vec![(1, 10), (2, 20)]);
        fake.set(2, Role::Follower, 2, vec![(1, 10), (2, 21)]);
        let mut c = RaftSafety::new(2);
        c.check_node(1, 1, &fake).unwrap();
        let v = c.check_node(2, 2, &fake).unwrap_err();
        assert_eq!(v.property, LOG_MATCHING);
        // Same index and term, different predecessor term.
        let mut fake = FakeCluster::default();
        fake.set(1, Role::Follower, 3, vec![(1, 10), (3, 30)]);
        fake.set(2, Role::Follower, 3, vec![(2, 10), (3, 30)]);
        let mut c = RaftSafety::new(2);
        c.check_node(1, 1, &fake).unwrap();
        let v = c.check_node(2, 2, &fake).unwrap_err();
        assert_eq!(v.property, LOG_MATCHING);
        assert!(v.detail.contains("predecessor"));
    }

    #[test]
    fn leader_append_only_fires_when_a_leader_drops_entries() {
        let mut fake = FakeCluster::default();
        fake.set(1, Role::Leader, 2, vec![(1, 10), (2, 20), (2, 21)]);
        let mut c = RaftSafety::new(1);
        c.check_node(1, 1, &fake).unwrap();
        fake.set(1, Role::Leader, 2, vec![(1, 10), (2, 20)]);
        let v = c.check_node(2, 1, &fake).unwrap_err();
        assert_eq!(v.property, LEADER_APPEND_ONLY);
        // A follower may truncate.
        let mut c = RaftSafety::new(1);
        fake.set(1, Role::Follower, 2, vec![(1, 10), (2, 20), (2, 21)]);
        c.check_node(1, 1, &fake).unwrap();
        fake.set(1, Role::Follower, 2, vec![(1, 10)]);
        c.check_node(2, 1, &fake).unwrap();
    }
}
