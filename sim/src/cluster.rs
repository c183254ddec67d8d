//! The cluster: nodes, their disks, the network and the event queue, and the rules that move an
//! event to a node and the node's outputs back out.
//!
//! One input at a time: pop an event, hand it to a node (`handle_tick`, `handle_message`,
//! `handle_wire`, `handle_request`), then drain the node's output:
//! 1. `persist` is written to the node's [`Disk`] — appended, or, after log compaction
//!    (`persist_replace`), as a new file that replaces the old one once synced. With
//!    `disk_sync_ticks == 0` it is synced at once; otherwise a sync completes
//!    `disk_sync_ticks` later and everything else from this output (and from any later
//!    output, FIFO) waits for it. This is etcd's "persist before
//!    send": a crash before the sync loses the writes *and* the messages, replies and
//!    applications that depended on them, so no peer or client ever saw a forgotten vote.
//! 2. Messages go to the [`Network`], which decides delay, loss, duplication and corruption;
//!    replies go to clients the same way (without corruption).
//! 3. Applications and role changes are recorded as [`Observation`]s for the checkers, and
//!    everything is traced.
//!
//! Nodes get ticks only when they asked for one (`next_deadline_tick`), on their own clock:
//! a node with clock drift `d` ppm reads `local = global + global * d / 1e6`.

use std::collections::VecDeque;

use raftsim_protocol::node::{Applied, ClientRequest, NodeEvent, Reply, Role};
use raftsim_protocol::raft;
use raftsim_protocol::types::{LogIndex, NodeId, Term, Tick};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::disk::Disk;
use crate::network::{DropReason, Fate, Network, NetworkConfig};
use crate::node::{AnyMessage, AnyNode, Drained, ProtocolConfig, KIND_NAMES};
use crate::queue::{fill_empty, Due, EventQueue};
use crate::rng::{stream, Stream};
use crate::trace::{Trace, TraceEvent};

/// Largest clock drift a node may be given, in parts per million (±10%).
pub const DRIFT_PPM_MAX: i32 = 100_000;
/// Protocol notes kept for scenario expectations.
pub const NOTES_MAX: usize = 10_000;
/// Bound on queued events; a run that needs more has a feedback loop.
pub const QUEUED_EVENTS_MAX: usize = 4_000_000;

/// What the cluster is built from.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// The protocol every node runs, with its configuration.
    pub protocol: ProtocolConfig,
    /// Network knobs.
    pub network: NetworkConfig,
    /// Ticks from a write to its sync completing (0: synchronous).
    pub disk_sync_ticks: Tick,
    /// Whether a crash may keep a torn prefix of unsynced writes.
    pub torn_writes: bool,
}

/// Message bytes on the wire: intact (kept decoded, since encode→decode is the identity) or
/// with a flipped bit (kept as bytes, for the receiver's CRC check to catch).
#[derive(Debug)]
pub enum Payload {
    /// An intact message.
    Intact(AnyMessage),
    /// A corrupted encoding.
    Corrupt(Vec<u8>),
}

impl Payload {
    fn kind_name(&self) -> &'static str {
        match self {
            Payload::Intact(m) => m.kind_name(),
            Payload::Corrupt(_) => "corrupt-bytes",
        }
    }
}

/// Most spare output buffers a cluster keeps (one per output held back at once is plenty).
const DRAINED_SPARE_MAX: usize = 64;

/// A fault or operator action, applied by [`Cluster::apply_fault`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultAction {
    /// Kill a node: volatile state and unsynced writes are lost (a torn prefix of them may
    /// survive when the cluster has torn writes on).
    Crash(NodeId),
    /// Kill a node and keep a torn prefix of its unsynced writes, whatever the cluster setting.
    CrashTorn(NodeId),
    /// Boot a crashed node from its disk.
    Restart(NodeId),
    /// Freeze a node (a GC pause): no ticks, no handling; arrivals queue up.
    Pause(NodeId),
    /// Unfreeze a node; queued arrivals are handled.
    Resume(NodeId),
    /// Split the nodes into groups (unnamed nodes form one more group).
    Partition(Vec<Vec<NodeId>>),
    /// Cut one direction of one link.
    Cut(NodeId, NodeId),
    /// Remove all partitions and cuts.
    Heal,
    /// Flip a bit in a random durable record of a node's disk.
    Rot(NodeId),
    /// Set a node's clock drift in ppm.
    Drift(NodeId, i32),
}

/// A scheduled event.
#[derive(Debug)]
pub enum Event {
    /// A node's timer (stale if the node has rescheduled since).
    NodeTimer {
        /// The node.
        node: NodeId,
    },
    /// A tick in the current instant for a node whose deadline is now (a Raft leader with
    /// entries to send asks for one): it leaves the node's pending timer alone, so asking for
    /// it does not strand a stale timer event in the queue.
    NodeFlush {
        /// The node.
        node: NodeId,
    },
    /// A message arrives at a node.
    Deliver {
        /// Receiver.
        to: NodeId,
        /// Sender.
        from: NodeId,
        /// The bytes on the wire.
        payload: Payload,
    },
    /// A client request arrives at a node.
    Request {
        /// Receiver.
        to: NodeId,
        /// The request.
        request: ClientRequest,
    },
    /// A node's reply arrives at its client.
    Response {
        /// The node that answered.
        from: NodeId,
        /// The reply.
        reply: Reply,
    },
    /// A disk sync completes.
    SyncDone {
        /// The node.
        node: NodeId,
        /// The node's incarnation when the sync started (a crash cancels it).
        incarnation: u32,
        /// Bytes made durable.
        watermark: usize,
    },
    /// The workload's timer.
    ClientTimer,
    /// The fault scheduler's timer.
    FaultTimer,
    /// A scheduled fault action (e.g. the restart that follows a crash).
    Fault(FaultAction),
    /// End of a phase (run loop bookkeeping).
    PhaseEnd,
}

/// What [`Cluster::pop_and_dispatch`] popped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Popped {
    /// A node-side event, handled: the node it was for.
    Node {
        /// The node.
        node: NodeId,
        /// Whether it was the node's timer.
        timer: bool,
    },
    /// An event that belongs to the caller (client timer, responses, fault timer, phase ends):
    /// take it with [`Cluster::take_caller_event`].
    Caller,
}

/// Something checkers need to know about, recorded as it happens.
#[derive(Debug, Clone)]
pub enum Observation {
    /// A node applied an entry (released after its sync, like a message).
    Applied {
        /// The node.
        node: NodeId,
        /// What it applied.
        applied: Applied,
    },
    /// A node changed role or term.
    Role {
        /// The node.
        node: NodeId,
        /// New role.
        role: Role,
        /// Its term.
        term: Term,
    },
    /// A node crashed (its state machine is gone).
    Crashed {
        /// The node.
        node: NodeId,
    },
    /// A node booted from its disk.
    Restarted {
        /// The node.
        node: NodeId,
    },
    /// A node installed a leader's snapshot, durably (released after its sync, like an
    /// application): its state machine now holds everything up to `index`.
    SnapshotInstalled {
        /// The node.
        node: NodeId,
        /// The snapshot's last included index (LSN).
        index: LogIndex,
    },
}

/// Outputs of a node waiting for a sync.
#[derive(Debug)]
struct Held {
    watermark: usize,
    drained: Box<Drained>,
}

struct NodeSlot {
    node: Option<AnyNode>,
    disk: Disk,
    incarnation: u32,
    paused: bool,
    /// Events that arrived while paused, in arrival order.
    paused_inbox: Vec<Event>,
    /// Global tick of the pending timer event, if any.
    timer_at: Option<Tick>,
    /// The node's clock one tick before `timer_at` (when that is `Some` and not 0), read when
    /// the timer was set (and again if the drift changes): `reschedule_timer` compares it with
    /// every new deadline, and reading a drifting clock multiplies and divides.
    timer_clock_before: Tick,
    /// A `NodeFlush` event for this node is in the queue.
    flush_queued: bool,
    drift_ppm: i32,
    /// The last deadline converted to global time, as (local, global): a leader's deadline
    /// stays put across the many inputs between two heartbeats, and the conversion divides.
    deadline_memo: (Tick, Tick),
    held: VecDeque<Held>,
    /// Recovery found a corrupt record: the node must stay down.
    disk_corrupt: bool,
}

impl NodeSlot {
    /// Record that the node's timer event is queued for global tick `at`.
    fn set_timer(&mut self, at: Tick) {
        self.timer_at = Some(at);
        self.timer_clock_before = local_time(at.saturating_sub(1), self.drift_ppm);
    }
}

/// Counters for reports and fuzz coverage.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterStats {
    /// Events handled.
    pub events: u64,
    /// Messages handed to the network.
    pub messages_sent: u64,
    /// Messages delivered intact.
    pub messages_delivered: u64,
    /// Messages dropped (loss, partition, crashed receiver).
    pub messages_dropped: u64,
    /// Extra copies delivered.
    pub messages_duplicated: u64,
    /// Copies corrupted in flight.
    pub messages_corrupted: u64,
    /// Corrupted messages the receiver's CRC rejected.
    pub corrupt_rejected: u64,
    /// Elections started (candidate role entered).
    pub elections: u64,
    /// Leaders elected.
    pub leaders_elected: u64,
    /// Elections that timed out without a winner.
    pub split_votes: u64,
    /// Leaders fenced by a higher term.
    pub stale_leaders_fenced: u64,
    /// Stale-term messages rejected.
    pub stale_messages_rejected: u64,
    /// Entries applied by leaders (commits as the client sees them).
    pub commits: u64,
    /// Client commands deduplicated when applied.
    pub duplicates_applied: u64,
    /// Client commands rejected as gaps or expired sessions.
    pub rejected_applied: u64,
    /// Crashes.
    pub crashes: u64,
    /// Restarts.
    pub restarts: u64,
    /// Restarts that found and dropped a torn tail.
    pub torn_writes_recovered: u64,
    /// Restarts refused because recovery found a rotten record.
    pub corruption_detected: u64,
    /// Pauses.
    pub pauses: u64,
    /// Partitions formed.
    pub partitions: u64,
    /// One-way cuts made.
    pub one_way_cuts: u64,
    /// Lease reads served.
    pub lease_reads: u64,
    /// Log conflicts repaired.
    pub log_conflicts: u64,
    /// Snapshots taken (Raft log compaction).
    pub snapshots_taken: u64,
    /// Snapshots installed from a leader (Raft InstallSnapshot, or the leader-follower store's
    /// catch-up).
    pub snapshots_installed: u64,
    /// The most bytes one node's disk held at once (its WAL, plus a replacement waiting for
    /// its sync): what log compaction keeps bounded.
    pub disk_bytes_max: u64,
}

/// Nodes, disks, network, queue and trace.
pub struct Cluster {
    config: ClusterConfig,
    slots: Vec<NodeSlot>,
    network: Network,
    queue: EventQueue<Event>,
    trace: Trace,
    timer_rng: ChaCha8Rng,
    disk_rng: ChaCha8Rng,
    now: Tick,
    observations: Vec<Observation>,
    stats: ClusterStats,
    /// Messages sent per type, by [`AnyMessage::kind_index`] (scenario expectations count
    /// them): one indexed add per message instead of a search by name.
    sent_by_kind: [u64; KIND_NAMES.len()],
    /// Protocol status notes, newest last, at most `NOTES_MAX` (older ones are dropped).
    notes: VecDeque<(Tick, NodeId, String)>,
    /// Emptied output buffers, reused when output is held back for a sync (at most
    /// `DRAINED_SPARE_MAX`). Boxed on purpose: buffers move between `scratch`, `Held` and this
    /// pool as pointers.
    #[allow(clippy::vec_box)]
    drained_spare: Vec<Box<Drained>>,
    /// Where a node's output lands after each input. Boxed and taken out while in use, so
    /// moving it in and out of `self` (to release it through `&mut self` methods, or to hold
    /// it back for a sync) moves a pointer, not five vectors.
    scratch: Option<Box<Drained>>,
    wire_scratch: Vec<u8>,
    /// The caller's event popped by `pop_and_dispatch`, until `take_caller_event`.
    caller_event: Option<Event>,
}

/// What [`Cluster::pop_and_dispatch`] leaves in a slot whose Raft message it moved out: a
/// message that owns nothing, forgotten with the slot.
const MOVED_OUT: raft::Message = raft::Message::Vote {
    term: 0,
    granted: false,
    pre_vote: false,
};

/// Whether a message from `from` reaches `to` now: the receiver is up, not paused, and the link
/// is whole. Over the fields it reads, so the dispatch can ask while it holds the message's
/// slot in the queue.
#[inline(always)]
fn arrives_now(slots: &[NodeSlot], network: &Network, to: NodeId, from: NodeId) -> bool {
    let slot = &slots[(to - 1) as usize];
    slot.node.is_some() && !slot.paused && network.connected(from, to)
}

fn local_time(global: Tick, drift_ppm: i32) -> Tick {
    if drift_ppm == 0 {
        return global;
    }
    if global < 1 << 40 {
        // Fits in 64 bits (|drift| ≤ 10^6): avoid the slow 128-bit division on the hot path.
        let g = global as i64;
        return (g + g * i64::from(drift_ppm) / 1_000_000).max(0) as Tick;
    }
    let g = i128::from(global);
    (g + g * i128::from(drift_ppm) / 1_000_000).max(0) as Tick
}

/// The first global tick at which a clock with `drift_ppm` reads at least `local`.
fn global_time(local: Tick, drift_ppm: i32) -> Tick {
    if drift_ppm == 0 {
        return local;
    }
    let mut g = if local < 1 << 40 {
        (local as i64 * 1_000_000 / (1_000_000 + i64::from(drift_ppm))) as Tick
    } else {
        (i128::from(local) * 1_000_000 / (1_000_000 + i128::from(drift_ppm))) as Tick
    };
    while local_time(g, drift_ppm) < local {
        g += 1;
    }
    while g > 0 && local_time(g - 1, drift_ppm) >= local {
        g -= 1;
    }
    g
}

impl Cluster {
    /// Build a cluster of fresh nodes at tick 0.
    pub fn new(config: ClusterConfig, seed: u64, trace: Trace) -> Result<Cluster, String> {
        config.protocol.validate()?;
        config.network.validate()?;
        let n = config.protocol.nodes_count();
        let mut timer_rng = stream(seed, Stream::Timers);
        let mut slots = Vec::with_capacity(n as usize);
        for id in 1..=n {
            let node = AnyNode::new(&config.protocol, id, timer_rng.gen(), 0);
            slots.push(NodeSlot {
                node: Some(node),
                disk: Disk::new(),
                incarnation: 0,
                paused: false,
                paused_inbox: Vec::new(),
                flush_queued: false,
                timer_at: None,
                timer_clock_before: 0,
                drift_ppm: 0,
                deadline_memo: (0, 0),
                held: VecDeque::new(),
                disk_corrupt: false,
            });
        }
        let mut cluster = Cluster {
            network: Network::new(config.network.clone(), stream(seed, Stream::Network), n),
            queue: EventQueue::new(QUEUED_EVENTS_MAX),
            trace,
            timer_rng,
            disk_rng: stream(seed, Stream::Disk),
            now: 0,
            observations: Vec::new(),
            stats: ClusterStats::default(),
            sent_by_kind: [0; KIND_NAMES.len()],
            notes: VecDeque::new(),
            slots,
            config,
            scratch: Some(Box::default()),
            drained_spare: Vec::new(),
            wire_scratch: Vec::new(),
            caller_event: None,
        };
        for id in 1..=n {
            cluster.reschedule_timer(id, false, 0);
        }
        Ok(cluster)
    }

    // ----- accessors -----

    /// Current virtual time.
    pub fn now(&self) -> Tick {
        self.now
    }

    /// Number of nodes.
    pub fn nodes_count(&self) -> u32 {
        self.config.protocol.nodes_count()
    }

    /// The configuration.
    pub fn config(&self) -> &ClusterConfig {
        &self.config
    }

    /// A running node (None while crashed).
    pub fn node(&self, id: NodeId) -> Option<&AnyNode> {
        self.slots[(id - 1) as usize].node.as_ref()
    }

    /// Whether a node is up (running or paused).
    pub fn is_up(&self, id: NodeId) -> bool {
        self.slots[(id - 1) as usize].node.is_some()
    }

    /// A node's clock now.
    fn clock_now(&self, id: NodeId) -> Tick {
        local_time(self.now, self.slots[(id - 1) as usize].drift_ppm)
    }

    /// Whether a node is paused.
    pub fn is_paused(&self, id: NodeId) -> bool {
        self.slots[(id - 1) as usize].paused
    }

    /// Whether a node's disk was found corrupt (it cannot restart).
    pub fn is_disk_corrupt(&self, id: NodeId) -> bool {
        self.slots[(id - 1) as usize].disk_corrupt
    }

    /// A node's clock drift in ppm.
    pub fn drift_ppm(&self, id: NodeId) -> i32 {
        self.slots[(id - 1) as usize].drift_ppm
    }

    /// The network.
    pub fn network(&self) -> &Network {
        &self.network
    }

    /// Replace the network knobs.
    pub fn set_network_config(&mut self, config: NetworkConfig) {
        self.network.set_config(config);
    }

    /// The most recent protocol notes: (tick, node, text).
    pub fn notes(&self) -> &VecDeque<(Tick, NodeId, String)> {
        &self.notes
    }

    /// Messages sent so far, by type.
    pub fn messages_sent_by_kind(&self) -> std::collections::BTreeMap<&'static str, u64> {
        KIND_NAMES
            .iter()
            .zip(self.sent_by_kind)
            .filter(|&(_, count)| count > 0)
            .map(|(&kind, count)| (kind, count))
            .collect()
    }

    /// Messages sent so far of a type (`AppendEntries`, `RequestVote`, ...).
    pub fn messages_sent_of_kind(&self, kind: &str) -> u64 {
        KIND_NAMES
            .iter()
            .position(|&k| k == kind)
            .map_or(0, |i| self.sent_by_kind[i])
    }

    /// Counters.
    pub fn stats(&self) -> &ClusterStats {
        &self.stats
    }

    /// The trace.
    pub fn trace(&self) -> &Trace {
        &self.trace
    }

    /// Mutable trace (for run-level lines).
    pub fn trace_mut(&mut self) -> &mut Trace {
        &mut self.trace
    }

    /// Take the trace out (end of run).
    pub fn into_trace(self) -> Trace {
        self.trace
    }

    /// Record a run-level trace event at the current tick.
    pub fn record(&mut self, event: &TraceEvent<'_>) {
        self.trace.record(self.now, event);
    }

    /// Observations since the last drain.
    pub fn drain_observations(&mut self) -> std::vec::Drain<'_, Observation> {
        self.observations.drain(..)
    }

    /// Observations since the last drain or clear, oldest first.
    pub fn observations(&self) -> &[Observation] {
        &self.observations
    }

    /// Forget the observations (after the checkers have read them).
    pub fn clear_observations(&mut self) {
        self.observations.clear();
    }

    /// Current leaders (nodes up and in the leader role), by id.
    pub fn leaders(&self) -> Vec<NodeId> {
        (1..=self.nodes_count())
            .filter(|&id| self.node(id).is_some_and(|n| n.is_leader()))
            .collect()
    }

    /// The running leader of the highest term, if any (a deposed leader that has not heard
    /// of the new term yet still counts as a leader in `leaders`, not here).
    pub fn current_leader(&self) -> Option<NodeId> {
        (1..=self.nodes_count())
            .filter(|&id| !self.is_paused(id))
            .filter_map(|id| {
                let node = self.node(id)?;
                node.is_leader().then(|| (node.term(), id))
            })
            .max()
            .map(|(_, id)| id)
    }

    // ----- the queue -----

    /// Schedule an event.
    pub fn schedule(&mut self, tick: Tick, event: Event) {
        debug_assert!(tick >= self.now, "scheduling into the past");
        self.queue.push(tick, event);
    }

    /// Tick of the next event.
    pub fn next_event_tick(&self) -> Option<Tick> {
        self.queue.peek_tick()
    }

    /// Move time forward to `tick` when no event is due before it (time passes even when
    /// nothing happens).
    pub fn advance_to(&mut self, tick: Tick) {
        assert!(
            self.queue.peek_tick().is_none_or(|t| t >= tick),
            "advancing past a pending event"
        );
        self.now = self.now.max(tick);
    }

    /// Advance time to the next event, removing it from the queue's order (it is then taken
    /// with `EventQueue::take`, in the frame that handles it: see `EventQueue::pop_due`).
    #[inline(always)]
    fn advance_to_next_event(&mut self) -> Option<Due> {
        let due = self.queue.pop_due()?;
        let tick = due.tick();
        assert!(
            tick >= self.now,
            "time went backwards: {tick} < {}",
            self.now
        );
        self.now = tick;
        self.stats.events += 1;
        Some(due)
    }

    /// Pop the next event, advance time to it and, if it is a node's (timer, flush, message,
    /// client request, sync completion), hand it to the node. An event that belongs to the
    /// caller (client timer, responses, fault timer, phase ends) waits in the cluster for
    /// [`Cluster::take_caller_event`]: the result is two words, where an `Option<Event>` would
    /// be copied through every frame on the way to the run loop for the rare event it needs.
    ///
    /// The event is matched where it sits in the queue's slab (`EventQueue::due_event`):
    /// timers, flushes and sync completions are read there and never copied out, and a Raft
    /// message that arrives now is moved straight from its slot into the frame that hands it
    /// to its node: taken out whole and matched, it was copied three times on the way
    /// (measured: -0.7% instructions on fuzz-standard).
    pub fn pop_and_dispatch(&mut self) -> Option<Popped> {
        let due = self.advance_to_next_event()?;
        let node = match self.queue.due_event(&due) {
            &mut Event::NodeTimer { node } => {
                self.queue.forget_due(due);
                self.handle_timer(node);
                return Some(Popped::Node { node, timer: true });
            }
            &mut Event::NodeFlush { node } => {
                self.queue.forget_due(due);
                self.handle_flush(node);
                node
            }
            &mut Event::SyncDone {
                node,
                incarnation,
                watermark,
            } => {
                self.queue.forget_due(due);
                self.handle_sync_done(node, incarnation, watermark);
                node
            }
            Event::Deliver {
                to,
                from,
                payload: Payload::Intact(AnyMessage::Raft(message)),
            } if arrives_now(&self.slots, &self.network, *to, *from) => {
                let (to, from) = (*to, *from);
                // Moved out in place; what is left in the slot owns nothing.
                let message = std::mem::replace(message, MOVED_OUT);
                self.queue.forget_due(due);
                self.handle_raft_message(to, from, message);
                to
            }
            &mut Event::Deliver { to, from, .. } => {
                let Event::Deliver { payload, .. } = self.queue.take(due) else {
                    unreachable!("matched in its slot")
                };
                self.deliver_rarely(to, from, payload);
                to
            }
            &mut Event::Request { to, .. } => {
                let Event::Request { request, .. } = self.queue.take(due) else {
                    unreachable!("matched in its slot")
                };
                self.handle_request(to, request);
                to
            }
            _ => {
                // The rare path (client and fault events): a hard check costs nothing here.
                assert!(
                    self.caller_event.is_none(),
                    "the last caller event was taken"
                );
                let event = self.queue.take(due);
                fill_empty(&mut self.caller_event, event);
                return Some(Popped::Caller);
            }
        };
        Some(Popped::Node { node, timer: false })
    }

    /// The caller's event that [`Cluster::pop_and_dispatch`] returned as [`Popped::Caller`].
    pub fn take_caller_event(&mut self) -> Event {
        self.caller_event
            .take()
            .expect("take_caller_event follows Popped::Caller")
    }

    fn handle_timer(&mut self, node: NodeId) {
        let slot = &mut self.slots[(node - 1) as usize];
        if slot.timer_at != Some(self.now) || slot.node.is_none() {
            return; // stale timer
        }
        slot.timer_at = None;
        if slot.paused {
            return; // rescheduled on resume
        }
        let local = local_time(self.now, slot.drift_ppm);
        if let Some(n) = slot.node.as_mut() {
            n.handle_tick(local);
        }
        self.after_input(node, local);
    }

    fn handle_flush(&mut self, node: NodeId) {
        let slot = &mut self.slots[(node - 1) as usize];
        slot.flush_queued = false;
        if slot.node.is_none() || slot.paused {
            return; // a paused node asks again when it resumes
        }
        let local = local_time(self.now, slot.drift_ppm);
        if let Some(n) = slot.node.as_mut() {
            n.handle_tick(local);
        }
        self.after_input(node, local);
    }

    /// A message that arrives now (see [`arrives_now`]) is handed to its node: a
    /// leader-follower message (a Raft one goes through [`Cluster::handle_raft_message`]).
    fn handle_message(&mut self, to: NodeId, from: NodeId, message: AnyMessage) {
        let (node, local) = self.arrival(to);
        node.handle_message(local, from, message);
        self.after_input(to, local);
    }

    /// [`Cluster::handle_message`] for a Raft message moved out of its event in place (see
    /// [`Cluster::pop_and_dispatch`]).
    #[inline(always)]
    fn handle_raft_message(&mut self, to: NodeId, from: NodeId, message: raft::Message) {
        let (node, local) = self.arrival(to);
        node.handle_raft_message(local, from, message);
        self.after_input(to, local);
    }

    /// Count a message delivered to `to`, which is up (see [`arrives_now`]): its node and its
    /// clock now.
    #[inline(always)]
    fn arrival(&mut self, to: NodeId) -> (&mut AnyNode, Tick) {
        self.stats.messages_delivered += 1;
        let slot = &mut self.slots[(to - 1) as usize];
        let local = local_time(self.now, slot.drift_ppm);
        let node = slot.node.as_mut().expect("arrives_now checked it");
        (node, local)
    }

    /// The messages [`Cluster::pop_and_dispatch`] does not move out in place: dropped because
    /// the receiver is down or cut off, parked while it is paused, corrupt (handed over as
    /// bytes for its CRC check), or the leader-follower store's.
    #[inline(never)]
    fn deliver_rarely(&mut self, to: NodeId, from: NodeId, payload: Payload) {
        let slot = &mut self.slots[(to - 1) as usize];
        if slot.node.is_none() {
            self.stats.messages_dropped += 1;
            let kind = payload.kind_name();
            self.trace_lost(from, to, kind, DropReason::Crashed);
            return;
        }
        if slot.paused {
            slot.paused_inbox.push(Event::Deliver { to, from, payload });
            return;
        }
        if !self.network.connected(from, to) {
            self.stats.messages_dropped += 1;
            let kind = payload.kind_name();
            self.trace_lost(from, to, kind, DropReason::Partition);
            return;
        }
        match payload {
            Payload::Intact(message) => self.handle_message(to, from, message),
            Payload::Corrupt(bytes) => {
                let slot = &mut self.slots[(to - 1) as usize];
                let local = local_time(self.now, slot.drift_ppm);
                let node = slot.node.as_mut().expect("checked above");
                node.handle_wire(local, from, &bytes);
                self.after_input(to, local);
            }
        }
    }

    fn handle_request(&mut self, to: NodeId, request: ClientRequest) {
        let slot = &mut self.slots[(to - 1) as usize];
        if slot.paused {
            slot.paused_inbox.push(Event::Request { to, request });
            return;
        }
        let local = local_time(self.now, slot.drift_ppm);
        match slot.node.as_mut() {
            Some(node) => node.handle_request(local, request),
            None => return, // connection refused: the client times out
        }
        self.after_input(to, local);
    }

    fn handle_sync_done(&mut self, node: NodeId, incarnation: u32, watermark: usize) {
        let slot = &mut self.slots[(node - 1) as usize];
        if slot.incarnation != incarnation || slot.node.is_none() {
            return;
        }
        if slot.paused {
            slot.paused_inbox.push(Event::SyncDone {
                node,
                incarnation,
                watermark,
            });
            return;
        }
        slot.disk.sync_to(watermark);
        self.release_synced(node);
    }

    // ----- outputs -----

    fn trace_lost(&mut self, from: NodeId, to: NodeId, kind: &'static str, reason: DropReason) {
        self.trace.record(
            self.now,
            &TraceEvent::LostInFlight {
                from,
                to,
                kind,
                reason,
            },
        );
    }

    /// Drain a node's output after an input, and reschedule its timer. `local` is the node's
    /// clock now, which the caller read for the input: the node's ticks in this instant, and
    /// its timer, read the same clock.
    #[inline(always)]
    fn after_input(&mut self, id: NodeId, local: Tick) {
        self.after_ticks(id, local, 0);
    }

    /// [`Cluster::after_input`] after the node's `ticks`-th extra tick in this instant.
    ///
    /// A node due again in this very instant (a leader with entries to flush) gets its tick
    /// right here when nothing else is queued for this instant: the queued flush event would
    /// have been the next one popped anyway, so the schedule is the same, minus a queue round
    /// trip per batch. That rare tick is a call out (`tick_again`, which comes back here)
    /// rather than a loop: in a loop, the output collection's field addresses were hoisted out
    /// of it and spilled to the stack on every input. (Each extra tick nests one frame, a
    /// few hundred bytes; the bound of 1,000 ticks keeps that well inside a thread's stack.)
    #[inline(never)]
    fn after_ticks(&mut self, id: NodeId, local: Tick, ticks: u32) {
        if self.collect_output(id, local) {
            self.tick_again(id, local, ticks + 1);
        }
    }

    /// See [`Cluster::after_ticks`].
    #[inline(never)]
    fn tick_again(&mut self, id: NodeId, local: Tick, ticks: u32) {
        assert!(
            ticks < 1_000,
            "n{id} is still due after {ticks} ticks in the instant {}: its tick must move its \
             deadline past now",
            self.now
        );
        match self.slots[(id - 1) as usize].node.as_mut() {
            Some(node) => node.handle_tick(local),
            None => return,
        }
        self.after_ticks(id, local, ticks);
    }

    /// Take a node's output after an input; returns true when the node wants a tick now and
    /// may have it at once (see `after_input`). `local` is the node's clock now.
    fn collect_output(&mut self, id: NodeId, local: Tick) -> bool {
        let i = (id - 1) as usize;
        let slot = &mut self.slots[i];
        let Some(node) = slot.node.as_mut() else {
            return false;
        };
        let mut out = self
            .scratch
            .take()
            .expect("collect_output is never re-entered");
        let watermark = node.drain_output(&mut slot.disk, &mut out);
        // Only a write grows the disk (syncs, crashes and recovery shrink it), and summing
        // its files after every input cost a loop over the pending replacements.
        if watermark.is_some() {
            let held_bytes = slot.disk.held_bytes() as u64;
            self.stats.disk_bytes_max = self.stats.disk_bytes_max.max(held_bytes);
        }
        // Events are internal state changes: trace them now.
        let Drained {
            events,
            snapshots_installed,
            ..
        } = &mut *out;
        if !events.is_empty() {
            for event in events.drain(..) {
                if let NodeEvent::SnapshotInstalled { index } = event {
                    // Durable only once synced: observed when released, like an application.
                    snapshots_installed.push(index);
                }
                self.note_event(id, &event);
            }
        }

        let slot = &mut self.slots[i];
        let must_wait =
            !slot.held.is_empty() || (watermark.is_some() && self.config.disk_sync_ticks > 0);
        if must_wait {
            let incarnation = slot.incarnation;
            let wait_for = watermark
                .or_else(|| slot.held.back().map(|h| h.watermark))
                .expect("waiting needs a watermark");
            if out.is_empty() && watermark.is_none() {
                // Nothing to hold back.
            } else {
                let spare = self.drained_spare.pop().unwrap_or_default();
                slot.held.push_back(Held {
                    watermark: wait_for,
                    drained: std::mem::replace(&mut out, spare),
                });
            }
            if watermark.is_some() {
                self.queue.push(
                    self.now + self.config.disk_sync_ticks,
                    Event::SyncDone {
                        node: id,
                        incarnation,
                        watermark: wait_for,
                    },
                );
            }
        } else {
            if let Some(w) = watermark {
                slot.disk.sync_to(w);
            }
            self.release(id, &mut out);
        }
        // Put back where `take` left `None` (`collect_output` is never re-entered).
        fill_empty(&mut self.scratch, out);
        self.reschedule_timer(id, true, local)
    }

    fn release_synced(&mut self, id: NodeId) {
        let i = (id - 1) as usize;
        loop {
            let slot = &mut self.slots[i];
            let synced = slot.disk.synced_watermark();
            match slot.held.front() {
                Some(h) if h.watermark <= synced => {}
                _ => break,
            }
            let mut held = slot.held.pop_front().expect("checked");
            self.release(id, &mut held.drained);
            // Emptied, its buffers keep their capacity for the next output held back.
            if self.drained_spare.len() < DRAINED_SPARE_MAX {
                self.drained_spare.push(held.drained);
            }
        }
    }

    fn release(&mut self, id: NodeId, drained: &mut Drained) {
        // Each buffer is usually empty: the guards skip setting up and tearing down a drain.
        if !drained.snapshots_installed.is_empty() {
            for index in drained.snapshots_installed.drain(..) {
                self.observations
                    .push(Observation::SnapshotInstalled { node: id, index });
            }
        }
        if !drained.applied.is_empty() {
            self.release_applied(id, drained);
        }
        // A node emits messages of its own protocol only, so one of these two is empty and
        // the send order is the node's.
        if !drained.raft_messages.is_empty() {
            for (to, message) in drained.raft_messages.drain(..) {
                self.send(id, to, AnyMessage::Raft(message));
            }
        }
        if !drained.replication_messages.is_empty() {
            for (to, message) in drained.replication_messages.drain(..) {
                self.send(id, to, AnyMessage::Replication(message));
            }
        }
        if !drained.replies.is_empty() {
            self.release_replies(id, drained);
        }
    }

    fn release_applied(&mut self, id: NodeId, drained: &mut Drained) {
        for a in drained.applied.drain(..) {
            self.trace.record(
                self.now,
                &TraceEvent::Apply {
                    node: id,
                    applied: &a,
                },
            );
            if a.command.is_some() {
                match &a.outcome {
                    raftsim_protocol::node::ApplyOutcome::Applied(_) => {
                        if self.node(id).is_some_and(|n| n.is_leader()) {
                            self.stats.commits += 1;
                        }
                    }
                    raftsim_protocol::node::ApplyOutcome::Duplicate => {
                        self.stats.duplicates_applied += 1
                    }
                    raftsim_protocol::node::ApplyOutcome::Rejected => {
                        self.stats.rejected_applied += 1
                    }
                }
            }
            self.observations.push(Observation::Applied {
                node: id,
                applied: a,
            });
        }
    }

    fn release_replies(&mut self, id: NodeId, drained: &mut Drained) {
        for reply in drained.replies.drain(..) {
            let fate = self.network.route_client(reply.client, id, false);
            self.trace.record(
                self.now,
                &TraceEvent::Response {
                    from: id,
                    reply: &reply,
                    fate,
                    now: self.now,
                },
            );
            match fate {
                Fate::Dropped(_) => {}
                Fate::Deliver(a, b) => {
                    if let Some(b) = b {
                        self.queue.push(
                            self.now + b.delay_ticks,
                            Event::Response {
                                from: id,
                                reply: reply.clone(),
                            },
                        );
                    }
                    self.queue.push(
                        self.now + a.delay_ticks,
                        Event::Response { from: id, reply },
                    );
                }
            }
        }
    }

    /// Hand a node's message to the network, trace it, and queue what arrives.
    ///
    /// Inlined into `release`'s loops over a node's messages, so each message moves from the
    /// node's output buffer into its event without a stop in a call's argument (measured:
    /// -0.5% instructions on fuzz-standard, -0.6% on commit-batch1).
    #[inline(always)]
    fn send(&mut self, from: NodeId, to: NodeId, message: AnyMessage) {
        self.stats.messages_sent += 1;
        self.sent_by_kind[message.kind_index()] += 1;
        let fate = self.network.route(from, to);
        self.trace.record(
            self.now,
            &TraceEvent::Send {
                from,
                to,
                message: &message,
                fate,
                now: self.now,
            },
        );
        match fate {
            Fate::Dropped(_) => self.stats.messages_dropped += 1,
            Fate::Deliver(first, second) => {
                if let Some(copy) = second {
                    self.stats.messages_duplicated += 1;
                    let at = self.now + copy.delay_ticks;
                    self.deliver_copy(at, from, to, &message, copy.corrupt);
                }
                let at = self.now + first.delay_ticks;
                if first.corrupt {
                    self.deliver_copy(at, from, to, &message, true);
                } else {
                    // The common case on its own: the message moves into its event once.
                    let payload = Payload::Intact(message);
                    self.queue.push(at, Event::Deliver { to, from, payload });
                }
            }
        }
    }

    /// Queue a copy of a message for delivery at `at`: a duplicate, or a corrupted encoding.
    #[inline(never)]
    fn deliver_copy(
        &mut self,
        at: Tick,
        from: NodeId,
        to: NodeId,
        message: &AnyMessage,
        corrupt: bool,
    ) {
        let payload = if corrupt {
            self.stats.messages_corrupted += 1;
            self.wire_scratch.clear();
            message.encode_wire(&mut self.wire_scratch);
            let mut bytes = self.wire_scratch.clone();
            self.network.flip_bit(&mut bytes);
            Payload::Corrupt(bytes)
        } else {
            Payload::Intact(message.clone())
        };
        self.queue.push(at, Event::Deliver { to, from, payload });
    }

    fn note_event(&mut self, id: NodeId, event: &NodeEvent) {
        match event {
            NodeEvent::RoleChanged { role, term } => {
                match role {
                    Role::Candidate => self.stats.elections += 1,
                    Role::Leader => self.stats.leaders_elected += 1,
                    _ => {}
                }
                self.observations.push(Observation::Role {
                    node: id,
                    role: *role,
                    term: *term,
                });
            }
            NodeEvent::ElectionTimedOut { .. } => self.stats.split_votes += 1,
            NodeEvent::SteppedDown { .. } => self.stats.stale_leaders_fenced += 1,
            NodeEvent::StaleTermRejected { .. } => self.stats.stale_messages_rejected += 1,
            NodeEvent::CorruptRejected { .. } => self.stats.corrupt_rejected += 1,
            NodeEvent::LeaseRead { .. } => self.stats.lease_reads += 1,
            NodeEvent::LogConflict { .. } => self.stats.log_conflicts += 1,
            NodeEvent::SnapshotTaken { .. } => self.stats.snapshots_taken += 1,
            NodeEvent::SnapshotInstalled { .. } => self.stats.snapshots_installed += 1,
            NodeEvent::Note(text) => {
                if self.notes.len() == NOTES_MAX {
                    self.notes.pop_front();
                }
                self.notes.push_back((self.now, id, text.clone()));
            }
            _ => {}
        }
        self.trace
            .record(self.now, &TraceEvent::Node { node: id, event });
    }

    /// Queue the node's next timer (or flush) event for its current deadline; returns true
    /// when the node is due in this instant and may have its tick at once (`after_input`).
    /// `clock_now` is the node's clock now (`local_time(now, drift)`, which its caller has
    /// read already).
    ///
    /// Inlined: its hot caller, `collect_output`, runs after every input and has the node's
    /// slot at hand (measured: -0.7% instructions on fuzz-standard, -1.3% on commit-batch1).
    #[inline(always)]
    fn reschedule_timer(&mut self, id: NodeId, inline_ok: bool, clock_now: Tick) -> bool {
        let now = self.now;
        let slot = &mut self.slots[(id - 1) as usize];
        let Some(node) = slot.node.as_ref() else {
            return false;
        };
        if slot.paused {
            return false;
        }
        let Some(local) = node.next_deadline_tick() else {
            slot.timer_at = None;
            return false;
        };
        // The deadline's global tick is the first at which the node's clock reads `local`; the
        // clock never runs backwards, so comparing a global tick with it takes one reading of
        // the clock (`local_time`), where finding it takes a division and a search
        // (`global_time`), left for when a timer event must be pushed.
        debug_assert_eq!(clock_now, local_time(now, slot.drift_ppm));
        if local <= clock_now {
            if slot.timer_at == Some(now) {
                return false; // its timer event for this instant is queued
            }
            // Due in this instant: a tick after what is already queued for now. With nothing
            // queued for now, the caller gives it at once.
            if slot.flush_queued {
                return false;
            }
            if inline_ok && self.queue.peek_tick() != Some(now) {
                return true;
            }
            slot.flush_queued = true;
            self.queue.push(now, Event::NodeFlush { node: id });
            return false;
        }
        // A Raft node's tick only acts on deadlines that have passed, so an earlier timer
        // event can stay: it fires as a no-op and re-arms for the real deadline. That saves a
        // queue push for every heartbeat a follower receives (each one moves its election
        // deadline later), the commonest input there is. The leader-follower node does work on
        // every tick, so it gets exact timers. `at` is no later than the deadline's global
        // tick when the clock had not reached the deadline by `at - 1`.
        let keep_earlier = matches!(node, AnyNode::Raft(_))
            && slot
                .timer_at
                .is_some_and(|at| at >= now && (at == 0 || slot.timer_clock_before < local));
        if keep_earlier {
            return false;
        }
        if slot.deadline_memo.0 != local {
            slot.deadline_memo = (local, global_time(local, slot.drift_ppm));
        }
        let global = slot.deadline_memo.1;
        debug_assert!(global > now, "a deadline not due now is in the future");
        if slot.timer_at != Some(global) {
            slot.set_timer(global);
            self.queue.push(global, Event::NodeTimer { node: id });
        }
        false
    }

    // ----- client side -----

    /// A client sends a request; the network decides its fate.
    pub fn send_request(&mut self, client: u64, to: NodeId, request: ClientRequest) {
        let fate = self.network.route_client(client, to, true);
        self.trace.record(
            self.now,
            &TraceEvent::Request {
                client,
                to,
                request: &request,
                fate,
                now: self.now,
            },
        );
        if let Fate::Deliver(a, b) = fate {
            if let Some(b) = b {
                self.queue.push(
                    self.now + b.delay_ticks,
                    Event::Request {
                        to,
                        request: request.clone(),
                    },
                );
            }
            self.queue
                .push(self.now + a.delay_ticks, Event::Request { to, request });
        }
    }

    // ----- faults -----

    /// Apply a fault or operator action now. Returns a description when it had no effect (for
    /// scenario errors), `Ok` otherwise.
    pub fn apply_fault(&mut self, action: &FaultAction) -> Result<(), String> {
        let n = self.nodes_count();
        let check = |id: NodeId| {
            if id == 0 || id > n {
                Err(format!("no node n{id} (cluster has n1..n{n})"))
            } else {
                Ok(())
            }
        };
        let text = match action {
            FaultAction::Crash(id) | FaultAction::CrashTorn(id) => {
                check(*id)?;
                let tear = self.config.torn_writes || matches!(action, FaultAction::CrashTorn(_));
                let slot = &mut self.slots[(*id - 1) as usize];
                if slot.node.is_none() {
                    return Err(format!("n{id} is already down"));
                }
                slot.node = None;
                slot.incarnation += 1;
                slot.paused = false;
                slot.paused_inbox.clear();
                slot.held.clear();
                slot.timer_at = None;
                let loss = slot.disk.crash(&mut self.disk_rng, tear);
                self.stats.crashes += 1;
                self.observations.push(Observation::Crashed { node: *id });
                if loss.unsynced_bytes > 0 {
                    format!(
                        "n{id} crash (lost {} of {} unsynced bytes)",
                        loss.unsynced_bytes - loss.kept_bytes,
                        loss.unsynced_bytes
                    )
                } else {
                    format!("n{id} crash")
                }
            }
            FaultAction::Restart(id) => {
                check(*id)?;
                self.restart(*id)?
            }
            FaultAction::Pause(id) => {
                check(*id)?;
                let slot = &mut self.slots[(*id - 1) as usize];
                if slot.node.is_none() || slot.paused {
                    return Err(format!("n{id} is not running"));
                }
                slot.paused = true;
                slot.timer_at = None;
                self.stats.pauses += 1;
                format!("n{id} pause")
            }
            FaultAction::Resume(id) => {
                check(*id)?;
                let slot = &mut self.slots[(*id - 1) as usize];
                if !slot.paused {
                    return Err(format!("n{id} is not paused"));
                }
                slot.paused = false;
                let inbox = std::mem::take(&mut slot.paused_inbox);
                let count = inbox.len();
                for event in inbox {
                    self.queue.push(self.now, event);
                }
                self.reschedule_timer(*id, false, self.clock_now(*id));
                format!("n{id} resume ({count} queued arrivals)")
            }
            FaultAction::Partition(groups) => {
                for g in groups {
                    for &id in g {
                        check(id)?;
                    }
                }
                self.network.partition(groups);
                self.stats.partitions += 1;
                let shown: Vec<String> = groups
                    .iter()
                    .map(|g| {
                        g.iter()
                            .map(|id| format!("n{id}"))
                            .collect::<Vec<_>>()
                            .join(",")
                    })
                    .collect();
                format!("partition {{{}}} | rest", shown.join("} | {"))
            }
            FaultAction::Cut(from, to) => {
                check(*from)?;
                check(*to)?;
                self.network.cut(*from, *to);
                self.stats.one_way_cuts += 1;
                format!("cut n{from}->n{to}")
            }
            FaultAction::Heal => {
                self.network.heal();
                "heal network".to_string()
            }
            FaultAction::Rot(id) => {
                check(*id)?;
                let slot = &mut self.slots[(*id - 1) as usize];
                match slot.disk.rot(&mut self.disk_rng) {
                    Some(at) => format!("n{id} disk bit rot at byte {at}"),
                    None => format!("n{id} disk bit rot: no durable record to rot"),
                }
            }
            FaultAction::Drift(id, ppm) => {
                check(*id)?;
                if ppm.abs() > DRIFT_PPM_MAX {
                    return Err(format!("drift {ppm} ppm is beyond ±{DRIFT_PPM_MAX}"));
                }
                // Changing the rate mid-run would make the node's clock jump; only allowed on
                // a node whose clock has not started being compared (set at run start).
                let slot = &mut self.slots[(*id - 1) as usize];
                slot.drift_ppm = *ppm;
                slot.deadline_memo = (0, 0);
                if let Some(at) = slot.timer_at {
                    slot.set_timer(at); // the clock before it reads differently now
                }
                self.reschedule_timer(*id, false, self.clock_now(*id));
                format!("n{id} clock drift {ppm} ppm")
            }
        };
        self.trace
            .record(self.now, &TraceEvent::Fault { text: &text });
        Ok(())
    }

    fn restart(&mut self, id: NodeId) -> Result<String, String> {
        let i = (id - 1) as usize;
        if self.slots[i].node.is_some() {
            return Err(format!("n{id} is already up"));
        }
        let seed = self.timer_rng.gen();
        let local = local_time(self.now, self.slots[i].drift_ppm);
        let restored = AnyNode::restore(
            &self.config.protocol,
            id,
            seed,
            local,
            self.slots[i].disk.contents(),
        );
        let text = match restored {
            Ok(report) => {
                let slot = &mut self.slots[i];
                if report.torn_tail {
                    slot.disk.truncate(report.valid_bytes);
                    self.stats.torn_writes_recovered += 1;
                }
                slot.node = Some(report.node);
                slot.disk_corrupt = false;
                self.stats.restarts += 1;
                self.observations.push(Observation::Restarted { node: id });
                self.reschedule_timer(id, false, local);
                format!(
                    "n{id} restart (recovered {} records{})",
                    report.records_count,
                    if report.torn_tail {
                        ", torn tail dropped"
                    } else {
                        ""
                    }
                )
            }
            Err(e) => {
                self.slots[i].disk_corrupt = true;
                self.stats.corruption_detected += 1;
                format!("n{id} cannot restart, stays down: {e}")
            }
        };
        Ok(text)
    }

    /// Render a compact state line for every node (for failure reports).
    pub fn state_summary(&self) -> String {
        let mut s = String::new();
        for id in 1..=self.nodes_count() {
            let slot = &self.slots[(id - 1) as usize];
            match &slot.node {
                None if slot.disk_corrupt => s.push_str(&format!("n{id}: down (corrupt disk)\n")),
                None => s.push_str(&format!("n{id}: down\n")),
                Some(n) => {
                    let v = n.view();
                    s.push_str(&format!(
                        "n{id}: {} term={} commit={} applied={} last={}/{}{}\n",
                        v.role,
                        v.term,
                        v.commit_index,
                        v.applied_index,
                        v.last_term,
                        v.last_index,
                        if slot.paused { " (paused)" } else { "" }
                    ));
                }
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drift_maps_both_ways() {
        for ppm in [-100_000, -1, 0, 7, 50_000, 100_000] {
            for local in [0u64, 1, 2, 99, 150, 1_000, 123_457] {
                let g = global_time(local, ppm);
                assert!(local_time(g, ppm) >= local, "ppm {ppm} local {local}");
                assert!(g == 0 || local_time(g - 1, ppm) < local);
            }
        }
        assert_eq!(local_time(1_000_000, 10_000), 1_010_000);
    }

    /// `reschedule_timer` orders global ticks against a deadline by reading the clock at them
    /// instead of converting the deadline: both ways must agree, on either side of the switch
    /// to 128-bit arithmetic too.
    #[test]
    fn clock_readings_order_ticks_as_the_converted_deadline_does() {
        for ppm in [-100_000, -7, 0, 3, 99_999, 100_000] {
            for base in [0u64, (1 << 40) - 300] {
                for local in base..base + 400 {
                    let global = global_time(local, ppm);
                    for at in base.saturating_sub(50)..base + 500 {
                        assert_eq!(global <= at, local <= local_time(at, ppm));
                        assert_eq!(
                            at <= global,
                            at == 0 || local_time(at - 1, ppm) < local,
                            "ppm {ppm} local {local} at {at}"
                        );
                    }
                }
            }
        }
    }
}
