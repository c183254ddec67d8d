//! Client-visible guarantees: exactly-once application and durability of acknowledged writes.
//!
//! - **Exactly-once**: on every replica, a write `(client, seq)` changes the store at most once.
//!   Sequence numbers of one client must be applied in increasing order, so it is enough to
//!   remember the last applied one per client per replica. A restarted replica rebuilds its
//!   state machine from the log, so its record starts over.
//! - **Durability**: a write acknowledged to a client is in the log of every later leader, at
//!   the index and term where it was applied — or below the leader's snapshot index, whose
//!   state machine holds it (log compaction only discards applied entries).

use raftsim_protocol::node::{Applied, ApplyOutcome, Role};
use raftsim_protocol::types::{ClientId, LogIndex, NodeId, Seq, Term, Tick};

use super::dense::{DenseMap, WriteTable};
use super::{ClusterView, Violation};
use crate::cluster::Observation;

/// Property name.
pub const EXACTLY_ONCE: &str = "Exactly-Once";
/// Property name.
pub const DURABILITY: &str = "Durability";
/// Property name.
pub const QUORUM_DURABILITY: &str = "Quorum Durability";

/// See the module docs.
#[derive(Debug, Default)]
pub struct ExactlyOnce {
    /// Per replica: client → (last applied seq, index it was applied at).
    last: Vec<DenseMap<(Seq, LogIndex)>>,
}

impl ExactlyOnce {
    /// Fresh state for `nodes_count` replicas.
    pub fn new(nodes_count: u32) -> ExactlyOnce {
        ExactlyOnce {
            last: (0..nodes_count).map(|_| DenseMap::default()).collect(),
        }
    }

    /// Feed one observation. Inlined into the caller so that the many observations this
    /// checker ignores cost a match, not a call.
    #[inline]
    pub fn observe(&mut self, now: Tick, observation: &Observation) -> Result<(), Violation> {
        match observation {
            Observation::Restarted { node } => self.last[(*node - 1) as usize].clear(),
            Observation::Applied { node, applied } => return self.applied(now, *node, applied),
            _ => {}
        }
        Ok(())
    }

    fn applied(&mut self, now: Tick, node: NodeId, applied: &Applied) -> Result<(), Violation> {
        match store_write(applied) {
            Some((client, seq)) => self.write_applied(now, node, (client, seq, applied.index)),
            None => Ok(()),
        }
    }

    /// `node` applied write `(client, seq)` at `index`, changing its store (see
    /// [`store_write`]).
    #[inline]
    pub fn write_applied(
        &mut self,
        now: Tick,
        node: NodeId,
        (client, seq, index): (ClientId, Seq, LogIndex),
    ) -> Result<(), Violation> {
        // One lookup: the new record goes in, and the one it replaces is checked.
        let table = &mut self.last[(node - 1) as usize];
        match table.replace(client, (seq, index)) {
            Some((last_seq, last_index)) if seq <= last_seq => {
                // The record stays the last write applied in order.
                table.replace(client, (last_seq, last_index));
                Err(reapplied(
                    now,
                    node,
                    (client, seq, index),
                    (last_seq, last_index),
                ))
            }
            _ => Ok(()),
        }
    }
}

/// The write `(client, seq)` an application carried, if it changed the store: a client
/// command, not a read, applied rather than answered from the dedup table or rejected. The
/// only applications exactly-once and durability track, so [`super::Checkers`] sorts them
/// out once for both.
#[inline]
pub fn store_write(applied: &Applied) -> Option<(ClientId, Seq)> {
    let (client, seq, op) = applied.command.as_ref()?;
    (!op.is_read() && matches!(applied.outcome, ApplyOutcome::Applied(_)))
        .then_some((*client, *seq))
}

/// The violation of `node` applying `(client, seq)` at `index` after `(client, last_seq)` at
/// `last_index`. Out of line: building it is never on the path of a passing run.
#[cold]
#[inline(never)]
fn reapplied(
    now: Tick,
    node: NodeId,
    (client, seq, index): (ClientId, Seq, LogIndex),
    (last_seq, last_index): (Seq, LogIndex),
) -> Violation {
    Violation {
        property: EXACTLY_ONCE,
        tick: now,
        nodes: vec![node],
        detail: format!(
            "n{node} applied c{client}#{seq} at index {index} after already \
             applying c{client}#{last_seq} at index {last_index}"
        ),
    }
}

/// See the module docs.
#[derive(Debug, Default)]
pub struct Durability {
    /// Where each write took effect: (client, seq) → (index, entry term, upper bound on the
    /// term it was committed in: the smallest current term of a node seen applying it).
    /// Looked up once per application per replica and grows all run.
    applied_at: WriteTable<(LogIndex, Term, Term)>,
    /// Acknowledged writes: (index, entry term, commit term bound, client, seq).
    acknowledged: Vec<(LogIndex, Term, Term, ClientId, Seq)>,
}

impl Durability {
    /// Feed one observation. Inlined into the caller so that the many observations this
    /// checker ignores cost a match, not a call.
    #[inline]
    pub fn observe<V: ClusterView + ?Sized>(
        &mut self,
        now: Tick,
        observation: &Observation,
        view: &V,
    ) -> Result<(), Violation> {
        match observation {
            Observation::Applied { node, applied } => self.applied(*node, applied, view),
            Observation::Role {
                node,
                role: Role::Leader,
                term,
            } => return self.leader(now, *node, *term, view),
            _ => {}
        }
        Ok(())
    }

    fn applied<V: ClusterView + ?Sized>(&mut self, node: NodeId, applied: &Applied, view: &V) {
        if let Some((client, seq)) = store_write(applied) {
            let term_now = view.node_term(node).unwrap_or(applied.term);
            self.write_applied((client, seq), applied, term_now);
        }
    }

    /// Write `(client, seq)` took effect as `applied` (see [`store_write`]) on a node whose
    /// current term is `term_now`.
    #[inline]
    pub fn write_applied(
        &mut self,
        (client, seq): (ClientId, Seq),
        applied: &Applied,
        term_now: Term,
    ) {
        // Moved into the closure, not borrowed (see `RaftSafety::applied`).
        let made = (applied.index, applied.term, term_now);
        let at = self
            .applied_at
            .get_or_insert_with(client, seq, move || made);
        at.2 = at.2.min(term_now);
    }

    /// `node` became leader of `term`: it must hold every write acknowledged before.
    fn leader<V: ClusterView + ?Sized>(
        &self,
        now: Tick,
        node: NodeId,
        term: Term,
        view: &V,
    ) -> Result<(), Violation> {
        let snapshot_index = view.node_state(node).map_or(0, |s| s.snapshot_index);
        for &(index, entry_term, committed_in, client, seq) in &self.acknowledged {
            // Only leaders of later terms than the commit's are bound (a stale-term
            // leader elected late can commit nothing).
            if term <= committed_in || index < snapshot_index {
                continue;
            }
            if view.log_term(node, index) != Some(entry_term) {
                return Err(Violation {
                    property: DURABILITY,
                    tick: now,
                    nodes: vec![node],
                    detail: format!(
                        "n{node} leads term {term} without acknowledged write \
                         c{client}#{seq} (index {index}, term {entry_term})"
                    ),
                });
            }
        }
        Ok(())
    }

    /// A client got an acknowledgement of `(client, seq)`.
    pub fn acknowledged<V: ClusterView + ?Sized>(
        &mut self,
        now: Tick,
        client: ClientId,
        seq: Seq,
        _view: &V,
    ) -> Result<(), Violation> {
        match self.applied_at.get(client, seq) {
            Some(&(index, term, committed_in)) => {
                self.acknowledged
                    .push((index, term, committed_in, client, seq));
                Ok(())
            }
            None => Err(Violation {
                property: DURABILITY,
                tick: now,
                nodes: vec![],
                detail: format!("c{client}#{seq} was acknowledged but no replica has applied it"),
            }),
        }
    }

    /// Number of acknowledged writes tracked.
    pub fn acknowledged_count(&self) -> usize {
        self.acknowledged.len()
    }
}

/// Leader-follower store: when a client is told a write succeeded, at least `quorum` replicas
/// hold it durably. A replica holds LSN `l` durably once it reported applying `l` (nodes report
/// applications only after syncing them), installed a snapshot through `l` (observed after its
/// sync too), or, while running, holds a log through `l`.
#[derive(Debug, Default)]
pub struct QuorumDurability {
    quorum: u32,
    /// Highest LSN each replica reported applying (index `node - 1`).
    durable_lsn: Vec<LogIndex>,
    /// Where each write was committed: (client, seq) → LSN.
    committed_at: WriteTable<LogIndex>,
}

impl QuorumDurability {
    /// Fresh state for `nodes_count` replicas and a write quorum of `quorum`.
    pub fn new(nodes_count: u32, quorum: u32) -> QuorumDurability {
        QuorumDurability {
            quorum,
            durable_lsn: vec![0; nodes_count as usize],
            committed_at: WriteTable::default(),
        }
    }

    /// Feed one observation.
    pub fn observe(&mut self, observation: &Observation) {
        if let Observation::SnapshotInstalled { node, index } = observation {
            let slot = &mut self.durable_lsn[(*node - 1) as usize];
            *slot = (*slot).max(*index);
        }
        if let Observation::Applied { node, applied } = observation {
            self.applied(*node, applied);
        }
    }

    /// `node` applied `applied`.
    pub fn applied(&mut self, node: NodeId, applied: &Applied) {
        let slot = &mut self.durable_lsn[(node - 1) as usize];
        *slot = (*slot).max(applied.index);
        if let Some((client, seq, op)) = &applied.command {
            if !op.is_read() {
                self.committed_at
                    .get_or_insert_with(*client, *seq, || applied.index);
            }
        }
    }

    /// A client got an acknowledgement of `(client, seq)`.
    pub fn acknowledged<V: ClusterView + ?Sized>(
        &mut self,
        now: Tick,
        client: ClientId,
        seq: Seq,
        view: &V,
    ) -> Result<(), Violation> {
        let Some(&lsn) = self.committed_at.get(client, seq) else {
            return Err(Violation {
                property: QUORUM_DURABILITY,
                tick: now,
                nodes: vec![],
                detail: format!("c{client}#{seq} was acknowledged but no replica applied it"),
            });
        };
        let holds = |n: u32| {
            self.durable_lsn[(n - 1) as usize] >= lsn
                || view.node_state(n).is_some_and(|s| s.last_index >= lsn)
        };
        let nodes = 1..=self.durable_lsn.len() as u32;
        // Counted first: the list of holders is wanted only for a violation's message.
        if (nodes.clone().filter(|&n| holds(n)).count() as u32) < self.quorum {
            let holders: Vec<u32> = nodes.filter(|&n| holds(n)).collect();
            return Err(Violation {
                property: QUORUM_DURABILITY,
                tick: now,
                nodes: holders.clone(),
                detail: format!(
                    "c{client}#{seq} (lsn {lsn}) was acknowledged while only {} replicas hold it \
                     ({holders:?}); the quorum is {}",
                    holders.len(),
                    self.quorum
                ),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checker::fake::FakeCluster;
    use raftsim_protocol::kv::{Op, OpResult};

    fn put_applied(node: NodeId, index: LogIndex, seq: Seq) -> Observation {
        Observation::Applied {
            node,
            applied: Applied {
                index,
                term: 1,
                command: Some((
                    7,
                    seq,
                    Op::Put {
                        key: "k".into(),
                        value: "v".into(),
                    }
                    .into(),
                )),
                outcome: ApplyOutcome::Applied(OpResult::Ok),
            },
        }
    }

    #[test]
    fn exactly_once_fires_on_a_second_application() {
        let mut c = ExactlyOnce::new(2);
        c.observe(1, &put_applied(1, 3, 1)).unwrap();
        c.observe(1, &put_applied(2, 3, 1)).unwrap();
        c.observe(2, &put_applied(1, 4, 2)).unwrap();
        let v = c.observe(3, &put_applied(1, 5, 2)).unwrap_err();
        assert_eq!(v.property, EXACTLY_ONCE);
        // After a restart the replica re-applies its log: allowed.
        c.observe(4, &Observation::Restarted { node: 2 }).unwrap();
        c.observe(5, &put_applied(2, 3, 1)).unwrap();
    }

    #[test]
    fn quorum_durability_fires_on_an_ack_held_by_too_few() {
        let mut fake = FakeCluster::default();
        fake.set(1, Role::Leader, 1, vec![(1, 0), (1, 0)]);
        fake.set(2, Role::Follower, 1, vec![(1, 0)]);
        fake.set(3, Role::Follower, 1, vec![(1, 0)]);
        let mut q = QuorumDurability::new(3, 2);
        q.observe(&put_applied(1, 2, 1));
        let v = q.acknowledged(1, 7, 1, &fake).unwrap_err();
        assert_eq!(v.property, QUORUM_DURABILITY);
        // Once a follower reports holding lsn 2, the ack is backed by a quorum.
        q.observe(&put_applied(2, 2, 1));
        q.acknowledged(2, 7, 1, &fake).unwrap();
    }

    #[test]
    fn durability_fires_when_a_leader_lacks_an_acknowledged_write() {
        let mut fake = FakeCluster::default();
        fake.set(1, Role::Follower, 1, vec![(1, 0), (1, 0)]);
        fake.set(2, Role::Leader, 2, vec![(1, 0)]);
        let mut d = Durability::default();
        d.observe(1, &put_applied(1, 2, 1), &fake).unwrap();
        d.acknowledged(2, 7, 1, &fake).unwrap();
        let v = d
            .observe(
                3,
                &Observation::Role {
                    node: 2,
                    role: Role::Leader,
                    term: 2,
                },
                &fake,
            )
            .unwrap_err();
        assert_eq!(v.property, DURABILITY);
        // An acknowledgement of something never applied is a violation too.
        assert!(d.acknowledged(4, 9, 9, &fake).is_err());
    }
}
