//! The Raft paper's five safety properties (Figure 3), checked online and incrementally.
//!
//! - **Election Safety**: at most one leader per term — a map term → leader, updated on every
//!   role change. A map, not a vector by term: a corrupted record (planted `SkipCrc`) can carry
//!   any term, and one wild term must not allocate without bound. While a node keeps leading
//!   the term it was checked for, it is not looked up again (the map never forgets a term).
//! - **Leader Append-Only**: a leader never overwrites or deletes entries — while a node leads
//!   a term, its truncation counter never moves and its last index never falls.
//! - **Log Matching**: if two logs hold an entry with the same index and term, they are
//!   identical up to it. Checked by induction: every (index, term) ever seen must always come
//!   with the same command and the same predecessor term. Then two entries with equal
//!   (index, term) have equal predecessors, and so on down to index 1. The records are kept
//!   by index (see `DenseMap`), each index with the terms seen there: almost always one, a
//!   second only where a deposed leader's uncommitted entry was overwritten. Each node's log is
//!   walked only past what was verified at its last check, so a node whose last index and
//!   truncation count did not move costs no log access at all. The command fingerprints come
//!   from a cache, since every node holds the same entries (see `FingerprintCache`).
//!
//! A node whose state (role, term, indexes, truncation count) is the one its last check saw
//! is not checked again: Leader Append-Only and Log Matching would compare the same numbers.
//! - **Leader Completeness**: an entry committed in a term is in the log of every leader of a
//!   later term — every new leader's log is compared with every entry known committed. An
//!   index below the leader's snapshot index counts as present: log compaction (§7) only
//!   discards applied entries, and the snapshot's state machine holds them.
//! - **State Machine Safety**: no two nodes apply different commands at the same index — one
//!   record per index, kept by index like Log Matching's.

use std::collections::BTreeMap;

use raftsim_protocol::node::{Applied, Role};
use raftsim_protocol::types::{LogIndex, NodeId, Term, Tick};

use super::dense::DenseMap;
use super::{ClusterView, FingerprintCache, NodeState, Violation};
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

/// What [`RaftSafety::check_node`] remembers of one node between its checks.
#[derive(Debug, Clone, Copy, Default)]
struct NodeWatch {
    /// The state the last passing check saw, while nothing else touched the watches below
    /// (an observation of the node clears it). The next check of the same state would
    /// compare the same numbers again and change nothing, so it is skipped: most inputs
    /// (heartbeats, votes, acknowledgements) leave a node's role, term and log as they were.
    checked: Option<NodeState>,
    leader: Option<LeaderWatch>,
    matched: MatchWatch,
}

#[derive(Debug, Clone, Copy, Default)]
struct LeaderWatch {
    term: Term,
    truncations_total: u64,
    last_index: LogIndex,
}

#[derive(Debug, Clone, Copy, Default)]
struct MatchWatch {
    /// Entries up to here were verified against the records of every node's entries.
    verified_last: LogIndex,
    /// Commit index at the last check; entries below it do not change in a correct run.
    commit_index: LogIndex,
    truncations_total: u64,
}

/// What Log Matching remembers of one (index, term): the first node's entry, which every
/// later one with the same index and term must equal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct EntryRecord {
    term: Term,
    prev_term: Term,
    fingerprint: u64,
    first: NodeId,
}

/// The entry records at one index, one per term seen there. The first sits inline because
/// nearly every index only ever holds one term; `more` (empty, so not allocated, until then)
/// takes the terms of overwritten entries.
#[derive(Debug, Clone)]
struct IndexEntries {
    first: EntryRecord,
    more: Vec<EntryRecord>,
}

impl IndexEntries {
    /// The record for `record.term` if one exists; otherwise `record` is kept and `None`.
    fn get_or_insert(&mut self, record: EntryRecord) -> Option<EntryRecord> {
        if self.first.term == record.term {
            return Some(self.first);
        }
        match self.more.iter().find(|r| r.term == record.term) {
            Some(&r) => Some(r),
            None => {
                self.more.push(record);
                None
            }
        }
    }
}

/// What State Machine Safety and Leader Completeness remember of one applied index.
#[derive(Debug, Clone, Copy)]
struct AppliedRecord {
    /// Term of the entry, as first applied.
    term: Term,
    /// Command fingerprint, as first applied.
    fingerprint: u64,
    /// The first node that applied it.
    first: NodeId,
    /// An upper bound on the term in which the entry was committed: the smallest current term
    /// of any node seen applying it. (The leader that commits an entry applies it in its own
    /// term; a follower learns of the commit from a leader of its term, so never earlier.)
    /// Leader Completeness binds leaders of *later* terms than the commit's.
    committed_by: Term,
}

/// The five properties' state.
#[derive(Debug, Default)]
pub struct RaftSafety {
    leaders_by_term: BTreeMap<Term, NodeId>,
    /// Per node (index `node - 1`).
    watches: Vec<NodeWatch>,
    /// index → one record per term seen there (Log Matching).
    entries: DenseMap<IndexEntries>,
    /// index → what was applied there first, and a bound on its commit term.
    applied: DenseMap<AppliedRecord>,
    /// Every node logs and applies the same entries: each command is hashed once, not by each.
    fingerprints: FingerprintCache,
}

impl RaftSafety {
    /// Fresh state for `nodes_count` nodes.
    pub fn new(nodes_count: u32) -> RaftSafety {
        RaftSafety {
            watches: vec![NodeWatch::default(); nodes_count as usize],
            ..RaftSafety::default()
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
                let w = &mut self.watches[(*node - 1) as usize];
                w.leader = None;
                w.checked = None;
            }
            // The log change an install makes (compaction, a discarded tail counted as a
            // truncation) is checked by `check_node` after the input, like any other.
            Observation::SnapshotInstalled { .. } => {}
            Observation::Restarted { node } => {
                self.watches[(*node - 1) as usize] = NodeWatch::default();
            }
            Observation::Applied { node, applied } => {
                return self.applied(now, *node, applied, view.node_term(*node));
            }
        }
        Ok(())
    }

    /// State Machine Safety for `node` applying `applied`, with `term_now` the term the node
    /// holds now (`None`: not running), which bounds the term the entry was committed in.
    /// [`super::Checkers`] reads that term once for every checker that wants it. Always
    /// inlined: it runs for every application every node makes.
    #[inline(always)]
    pub fn applied(
        &mut self,
        now: Tick,
        node: NodeId,
        applied: &Applied,
        term_now: Option<Term>,
    ) -> Result<(), Violation> {
        let fingerprint = self.fingerprints.applied(applied.index, &applied.command);
        let applier_term = term_now.unwrap_or(applied.term);
        // Made before, and moved into the closure: a closure that borrowed these locals
        // would have them stored to memory on every call, not only on the first at an index.
        let made = AppliedRecord {
            term: applied.term,
            fingerprint,
            first: node,
            committed_by: applier_term,
        };
        let record = self.applied.get_or_insert_with(applied.index, move || made);
        record.committed_by = record.committed_by.min(applier_term);
        let &mut AppliedRecord {
            term,
            fingerprint: fp,
            first,
            ..
        } = record;
        if term != applied.term || fp != fingerprint {
            return Err(applied_differently(
                now,
                (node, applied, fingerprint),
                (first, term, fp),
            ));
        }
        Ok(())
    }

    fn check_election_safety(
        &mut self,
        now: Tick,
        node: NodeId,
        term: Term,
    ) -> Result<(), Violation> {
        let other = *self.leaders_by_term.entry(term).or_insert(node);
        if other != node {
            return Err(Violation {
                property: ELECTION_SAFETY,
                tick: now,
                nodes: vec![other, node],
                detail: format!("two leaders in term {term}: n{other} and n{node}"),
            });
        }
        Ok(())
    }

    fn check_leader_completeness<V: ClusterView + ?Sized>(
        &mut self,
        now: Tick,
        node: NodeId,
        term: Term,
        view: &V,
    ) -> Result<(), Violation> {
        // Every applied entry is committed; entries committed in a term below this leader's
        // must be in its log (a leader of an older term, elected late, is bound by nothing).
        // Indexes below the snapshot index are held by the snapshot, so the walk starts there.
        let snapshot_index = view.node_state(node).map_or(0, |s| s.snapshot_index);
        for (index, record) in self.applied.iter_from(snapshot_index) {
            let &AppliedRecord {
                term: entry_term,
                first,
                committed_by: committed_in,
                ..
            } = record;
            if committed_in >= term {
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
    /// Runs after every event, and most leave the node as the last check saw it: that case
    /// reads the node's state, finds it equal and returns; the checks are out of line.
    #[inline(always)]
    pub fn check_node<V: ClusterView + ?Sized>(
        &mut self,
        now: Tick,
        node: NodeId,
        view: &V,
    ) -> Result<(), Violation> {
        match self.moved_state(node, view) {
            Some(state) => self.check_moved_state(now, node, &state, view),
            None => Ok(()),
        }
    }

    /// [`RaftSafety::check_node`] of `state`, the state [`RaftSafety::moved_state`] read: for
    /// the run loop, which asks for it after every event and then needs not read it twice.
    /// A move of the commit index alone is taken in at once ([`RaftSafety::absorb_commit_move`]);
    /// any other goes to the full check, out of line.
    #[inline(always)]
    pub fn check_moved_state<V: ClusterView + ?Sized>(
        &mut self,
        now: Tick,
        node: NodeId,
        state: &NodeState,
        view: &V,
    ) -> Result<(), Violation> {
        if self.absorb_commit_move(node, state) {
            return Ok(());
        }
        self.check_changed_node(now, node, state, view)
    }

    /// The state of `node` when it is up and moved since its last passing check, else `None`
    /// (then [`RaftSafety::check_node`] would return at once, changing nothing). The run loop
    /// asks after every event and hands a moved state to [`RaftSafety::check_moved_state`].
    #[inline(always)]
    pub fn moved_state<V: ClusterView + ?Sized>(
        &self,
        node: NodeId,
        view: &V,
    ) -> Option<NodeState> {
        let state = view.node_state(node)?;
        (self.watches[(node - 1) as usize].checked != Some(state)).then_some(state)
    }

    /// Takes in `state`, a moved state of `node` ([`RaftSafety::moved_state`]), if only its
    /// commit index moved; then nothing is left to check. Else `false`: the moved state wants
    /// [`RaftSafety::check_changed_node`].
    ///
    /// Nearly half the moves are of the commit index alone (a follower learned of commits, a
    /// leader counted acknowledgements). The full check would compare the same numbers and
    /// walk no entry (its last index did not move), and only remember the new commit index;
    /// that is done here, without the call.
    #[inline(always)]
    fn absorb_commit_move(&mut self, node: NodeId, state: &NodeState) -> bool {
        let w = &mut self.watches[(node - 1) as usize];
        let Some(checked) = &mut w.checked else {
            return false;
        };
        let commit_moved = NodeState {
            commit_index: checked.commit_index,
            ..*state
        };
        if commit_moved != *checked {
            return false;
        }
        checked.commit_index = state.commit_index;
        w.matched.commit_index = state.commit_index;
        true
    }

    /// [`RaftSafety::check_node`] of a node whose state moved since its last check (and not
    /// by its commit index alone: see [`RaftSafety::absorb_commit_move`]).
    #[inline(never)]
    fn check_changed_node<V: ClusterView + ?Sized>(
        &mut self,
        now: Tick,
        node: NodeId,
        state: &NodeState,
        view: &V,
    ) -> Result<(), Violation> {
        let i = (node - 1) as usize;
        if state.role == Role::Leader {
            self.check_leader(now, node, state)?;
        } else {
            self.watches[i].leader = None;
        }
        // Log Matching, incrementally over entries not verified yet (after a truncation, from
        // the commit index seen last time: a correct node never truncates below it). Indexes a
        // snapshot covers have no entry to compare (the snapshot's last index keeps its term,
        // so the entry after it still has its predecessor's term checked); they are skipped.
        // A node whose last index and truncation count did not move (its commit index did)
        // starts past its last index: no entry to read.
        let w = self.watches[i].matched;
        let mut from = w.verified_last + 1;
        if state.truncations_total != w.truncations_total {
            from = from.min(w.commit_index + 1);
        }
        from = from
            .min(state.last_index + 1)
            .max(state.snapshot_index)
            .max(1);
        if from <= state.last_index {
            let entries = &mut self.entries;
            view.walk_entries(
                node,
                from,
                state.last_index,
                &mut self.fingerprints,
                |index, prev_term, term, fingerprint| {
                    let seen = EntryRecord {
                        term,
                        prev_term,
                        fingerprint,
                        first: node,
                    };
                    let mut inserted = false;
                    let at = entries.get_or_insert_with(index, || {
                        inserted = true;
                        IndexEntries {
                            first: seen,
                            more: Vec::new(),
                        }
                    });
                    let known = if inserted {
                        None
                    } else {
                        at.get_or_insert(seen)
                    };
                    match known {
                        // First seen: recorded.
                        None => Ok(()),
                        Some(known)
                            if known.prev_term != prev_term || known.fingerprint != fingerprint =>
                        {
                            Err(entries_differ(now, index, &known, &seen))
                        }
                        Some(_) => Ok(()),
                    }
                },
            )?;
        }
        let w = &mut self.watches[i];
        w.matched = MatchWatch {
            verified_last: state.last_index,
            commit_index: state.commit_index,
            truncations_total: state.truncations_total,
        };
        w.checked = Some(*state);
        Ok(())
    }

    /// Leader Append-Only for a leader (and Election Safety for a leader whose term moved
    /// without a role change, which no correct node does).
    fn check_leader(
        &mut self,
        now: Tick,
        node: NodeId,
        state: &NodeState,
    ) -> Result<(), Violation> {
        let i = (node - 1) as usize;
        match self.watches[i].leader {
            // A watch on this very term was set after Election Safety passed for it, and the
            // map never changes a term's leader: looking it up again would find this node.
            Some(w) if w.term == state.term => {
                if state.truncations_total != w.truncations_total || state.last_index < w.last_index
                {
                    return Err(leader_removed_entries(now, node, &w, state));
                }
            }
            _ => self.check_election_safety(now, node, state.term)?,
        }
        self.watches[i].leader = Some(LeaderWatch {
            term: state.term,
            truncations_total: state.truncations_total,
            last_index: state.last_index,
        });
        Ok(())
    }
}

/// The Leader Append-Only violation of leader `node`, watched as `w`, now in `state`. Out of
/// line: building it is never on the path of a passing run.
#[cold]
#[inline(never)]
fn leader_removed_entries(
    now: Tick,
    node: NodeId,
    w: &LeaderWatch,
    state: &NodeState,
) -> Violation {
    Violation {
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
    }
}

/// The State Machine Safety violation of `node` applying `applied` (with `fingerprint`) at an
/// index `first` applied first as `term` (with `first_fingerprint`). Out of line, like
/// [`leader_removed_entries`].
#[cold]
#[inline(never)]
fn applied_differently(
    now: Tick,
    (node, applied, fingerprint): (NodeId, &Applied, u64),
    (first, term, first_fingerprint): (NodeId, Term, u64),
) -> Violation {
    Violation {
        property: STATE_MACHINE_SAFETY,
        tick: now,
        nodes: vec![first, node],
        detail: format!(
            "index {} applied as term {term} on n{first} but as term {} \
             with {} command on n{node}",
            applied.index,
            applied.term,
            if first_fingerprint == fingerprint {
                "the same"
            } else {
                "a different"
            }
        ),
    }
}

/// The Log Matching violation of entry `seen` at `index` disagreeing with the `known` record
/// of the same index and term. Out of line, like [`leader_removed_entries`].
#[cold]
#[inline(never)]
fn entries_differ(
    now: Tick,
    index: LogIndex,
    known: &EntryRecord,
    seen: &EntryRecord,
) -> Violation {
    let (first, node, term) = (known.first, seen.first, seen.term);
    Violation {
        property: LOG_MATCHING,
        tick: now,
        nodes: vec![first, node],
        detail: format!(
            "entry {index}/term {term} differs between n{first} and n{node}: {}",
            if known.fingerprint != seen.fingerprint {
                "different commands".to_string()
            } else {
                format!(
                    "predecessor terms {} vs {}",
                    known.prev_term, seen.prev_term
                )
            }
        ),
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
        // A failed check does not count as seen: the unchanged node fails again.
        let v = c.check_node(3, 2, &fake).unwrap_err();
        assert_eq!((v.property, v.tick), (LOG_MATCHING, 3));
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

    /// An index that held entries of several terms (overwritten, uncommitted entries) keeps a
    /// record per term: each later term is checked against its own first record.
    #[test]
    fn log_matching_checks_every_term_seen_at_one_index() {
        let mut fake = FakeCluster::default();
        fake.set(1, Role::Follower, 1, vec![(1, 10), (1, 11)]);
        fake.set(2, Role::Follower, 2, vec![(1, 10), (2, 20)]);
        fake.set(3, Role::Follower, 3, vec![(1, 10), (3, 30)]);
        fake.set(4, Role::Follower, 3, vec![(1, 10), (3, 30)]);
        let mut c = RaftSafety::new(5);
        for node in 1..=4 {
            c.check_node(1, node, &fake).unwrap();
        }
        // Same index, the second term seen there, a different command.
        fake.set(5, Role::Follower, 3, vec![(1, 10), (2, 21)]);
        let v = c.check_node(2, 5, &fake).unwrap_err();
        assert_eq!(v.property, LOG_MATCHING);
        assert_eq!(v.nodes, vec![2, 5]);
        assert_eq!(
            v.detail,
            "entry 2/term 2 differs between n2 and n5: different commands"
        );
        // The third term there, a different predecessor term.
        let mut c2 = RaftSafety::new(5);
        for node in 1..=3 {
            c2.check_node(1, node, &fake).unwrap();
        }
        fake.set(5, Role::Follower, 3, vec![(2, 10), (3, 30)]);
        let v = c2.check_node(2, 5, &fake).unwrap_err();
        assert_eq!(v.property, LOG_MATCHING);
        assert_eq!(v.nodes, vec![3, 5]);
        assert!(
            v.detail.contains("predecessor terms 1 vs 2"),
            "{}",
            v.detail
        );
    }

    #[test]
    fn leader_append_only_fires_when_a_leader_drops_entries() {
        let mut fake = FakeCluster::default();
        fake.set(1, Role::Leader, 2, vec![(1, 10), (2, 20), (2, 21)]);
        let mut c = RaftSafety::new(1);
        c.check_node(1, 1, &fake).unwrap();
        c.check_node(2, 1, &fake).unwrap();
        // An observation of the node (a crash takes a leader's watch) makes its next check
        // a full one, which watches it again.
        c.observe(3, &Observation::Crashed { node: 1 }, &fake)
            .unwrap();
        c.check_node(4, 1, &fake).unwrap();
        fake.set(1, Role::Leader, 2, vec![(1, 10), (2, 20)]);
        let v = c.check_node(5, 1, &fake).unwrap_err();
        assert_eq!(v.property, LEADER_APPEND_ONLY);
        // A follower may truncate.
        let mut c = RaftSafety::new(1);
        fake.set(1, Role::Follower, 2, vec![(1, 10), (2, 20), (2, 21)]);
        c.check_node(1, 1, &fake).unwrap();
        fake.set(1, Role::Follower, 2, vec![(1, 10)]);
        c.check_node(2, 1, &fake).unwrap();
    }
}
