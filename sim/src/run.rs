//! One simulation run: build the cluster, the clients, the checkers and the fault schedule from
//! a [`RunConfig`], step to the end, and return a [`RunReport`]. `raftsim sim`, `replay`,
//! scenarios, fuzzing and benchmarks all go through [`Sim`].
//!
//! A run has two phases (TigerBeetle's simulator has the same shape):
//! 1. **Fault phase** (`fault_ticks`): clients issue operations while faults strike.
//! 2. **Heal phase**: faults stop — the network heals and stops losing, duplicating and
//!    corrupting; paused nodes resume; crashed nodes restart — and clients stop starting new
//!    operations. Within `liveness_ticks_max` a leader must exist and every pending client
//!    operation must complete, or the Liveness property fails.
//!
//! Then the client history is checked for linearizability.

use std::cell::{Cell, RefCell};
use std::panic::{catch_unwind, AssertUnwindSafe};

use raftsim_protocol::node::ApplyOutcome;
use raftsim_protocol::node::{ClientResponse, READ_SEQ_BASE};
use raftsim_protocol::types::{ClientId, NodeId, Seq, Tick};
use serde::Serialize;
use std::collections::BTreeMap;

use crate::checker::linearizability::{self, HistoryOp, Limits, Verdict};
use crate::checker::{Checkers, NodeState, Violation};
use crate::cluster::{
    Cluster, ClusterConfig, ClusterStats, Event, FaultAction, Observation, Popped,
};
use crate::faults::{FaultConfig, FaultScheduler};
use crate::network::NetworkConfig;
use crate::node::ProtocolConfig;
use crate::rng::{stream, Stream};
use crate::trace::{Trace, TraceEvent};
use crate::workload::{ClientNote, ClientSend, Workload, WorkloadConfig, WorkloadStats};

thread_local! {
    /// True while a run step executes under `catch_unwind`: a panic hook can stay quiet then,
    /// because the run reports the panic itself (with its seed and replay command).
    pub static CATCHING_PANICS: Cell<bool> = const { Cell::new(false) };
    /// Where the last caught panic happened, filled in by a panic hook that cares to.
    pub static LAST_PANIC_LOCATION: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Property name for the liveness check.
pub const LIVENESS: &str = "Liveness";
/// Property name for the convergence check (leader-follower store).
pub const CONVERGENCE: &str = "Convergence";
/// Property name for the linearizability check.
pub const LINEARIZABILITY: &str = "Linearizability";

/// Everything that determines a run, besides the seed.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// The seed every random stream derives from.
    pub seed: u64,
    /// Nodes, network, disks.
    pub cluster: ClusterConfig,
    /// Simulated clients.
    pub workload: WorkloadConfig,
    /// Fault schedule.
    pub faults: FaultConfig,
    /// Length of the fault phase.
    pub fault_ticks: Tick,
    /// Bound on the heal phase.
    pub liveness_ticks_max: Tick,
    /// Run the online checkers.
    pub checkers: bool,
    /// Check the history for linearizability at the end.
    pub linearizability: bool,
    /// Search budget of the linearizability checker, per key.
    pub linearizability_steps_max: u64,
}

/// An entry of the fault agenda.
#[derive(Debug, Clone)]
enum AgendaItem {
    /// Draw the next random fault.
    Draw,
    /// The scheduled end of a fault (a restart after a crash, a heal after a partition).
    Apply(FaultAction),
}

/// The fault agenda: entries in tick order, ties in the order they were added.
#[derive(Debug, Default)]
struct FaultAgenda {
    /// `(tick, sequence number)` → what to do.
    items: BTreeMap<(Tick, u64), AgendaItem>,
    /// The first entry's tick: the run loop asks before every event, so it is kept at hand
    /// rather than looked up in the map each time.
    first_tick: Option<Tick>,
    /// The sequence number the next entry gets.
    seq_next: u64,
}

impl FaultAgenda {
    fn push(&mut self, tick: Tick, item: AgendaItem) {
        self.items.insert((tick, self.seq_next), item);
        self.seq_next += 1;
        self.first_tick = Some(self.first_tick.map_or(tick, |first| first.min(tick)));
    }

    fn pop_first(&mut self) -> Option<(Tick, AgendaItem)> {
        let ((tick, _), item) = self.items.pop_first()?;
        self.first_tick = self.items.first_key_value().map(|(&(tick, _), _)| tick);
        Some((tick, item))
    }

    fn first_tick(&self) -> Option<Tick> {
        debug_assert_eq!(
            self.first_tick,
            self.items.first_key_value().map(|(&(tick, _), _)| tick)
        );
        self.first_tick
    }
}

/// Why a run failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// A property was violated.
    Violation(Violation),
    /// The simulator or a node panicked.
    Panic {
        /// The panic message.
        message: String,
        /// When.
        tick: Tick,
    },
}

/// A failure found inside the event loop, boxed. The loop's functions return their result
/// after every event: a one-word `Result` comes back in a register, where an unboxed
/// `Failure` (many words) would be written out through memory on every return, failing or not.
type Failed = Box<Failure>;

/// A checker's violation as a [`Failed`]. Out of line: never on the path of a passing run.
#[cold]
#[inline(never)]
fn violated(violation: Violation) -> Failed {
    Box::new(Failure::Violation(violation))
}

impl Failure {
    /// The failed property's name ("panic" for a panic).
    pub fn property(&self) -> &str {
        match self {
            Failure::Violation(v) => v.property,
            Failure::Panic { .. } => "panic",
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Violation(v) => write!(f, "{v}"),
            Failure::Panic { message, tick } => write!(f, "panic at t={tick}: {message}"),
        }
    }
}

/// The outcome of a run.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    /// The run's seed.
    pub seed: u64,
    /// Events handled.
    pub events: u64,
    /// Virtual ticks simulated.
    pub ticks: Tick,
    /// Elections started.
    pub elections: u64,
    /// Leaders elected.
    pub leaders_elected: u64,
    /// Client commands committed and applied by a leader.
    pub commits: u64,
    /// Client operations that completed ok.
    pub ops_ok: u64,
    /// Client operations that certainly failed.
    pub ops_fail: u64,
    /// Client operations with an indeterminate outcome.
    pub ops_info: u64,
    /// Ticks the heal phase needed to converge, if it did.
    pub liveness_ticks: Option<Tick>,
    /// Linearizability verdict: "linearizable", "not linearizable", "unknown" or "skipped".
    pub linearizability: String,
    /// The failure, rendered, if any.
    pub failure: Option<String>,
    /// The failed property's name, if any.
    pub failed_property: Option<String>,
    /// Trace hash (hex; empty when the run's trace kept none: [`Trace::unhashed`]).
    pub trace_hash: String,
    /// Cluster counters.
    #[serde(skip)]
    pub cluster: ClusterStats,
    /// Client counters.
    #[serde(skip)]
    pub clients: WorkloadStats,
    /// The failure itself.
    #[serde(skip)]
    pub failure_detail: Option<Failure>,
    /// Whether the linearizability checker gave up.
    pub linearizability_unknown: bool,
    /// The properties this run checked.
    pub properties: Vec<&'static str>,
    /// Leader-follower store: the largest lag (records behind the leader) each follower had
    /// at a heartbeat round.
    pub max_lag: BTreeMap<NodeId, u64>,
    /// Every fault or operator action applied during the fault phase, with its tick.
    #[serde(skip)]
    pub faults_applied: Vec<(Tick, FaultAction)>,
    /// When the run failed, if it did.
    pub failure_tick: Option<Tick>,
}

impl RunReport {
    /// Whether every check held.
    pub fn passed(&self) -> bool {
        self.failure.is_none()
    }
}

/// A simulation in progress. Scenarios drive it step by step; [`run`] drives it start to end.
pub struct Sim {
    config: RunConfig,
    cluster: Cluster,
    workload: Workload,
    checkers: Option<Checkers>,
    faults: FaultScheduler,
    /// Whether random faults are being injected (off after the heal).
    faults_active: bool,
    /// Global tick of the pending workload timer.
    client_timer_at: Option<Tick>,
    sends: Vec<ClientSend>,
    notes: Vec<ClientNote>,
    failure: Option<Failure>,
    /// Leader-follower store: largest lag seen per follower.
    max_lag: BTreeMap<NodeId, u64>,
    /// Every fault or operator action applied, with its tick (the shrinker replays them).
    fault_log: Vec<(Tick, FaultAction)>,
    /// Random faults to come. Kept apart from the event queue so that a fault always strikes
    /// *first* in its tick, before that tick's events — exactly what a script's `advance N
    /// ticks` followed by a fault line does, so a shrunk script replays the run it came from.
    fault_agenda: FaultAgenda,
    /// When on (scenarios), how many times each node's current state machine applied each
    /// write: (node, client id, seq) → count.
    applied_counts: Option<BTreeMap<(NodeId, ClientId, Seq), u64>>,
    /// Whether node timers sample followers' lag ([`Sim::sample_lag`]): only the
    /// leader-follower store has them, and a Raft run would call for nothing at every timer.
    samples_lag: bool,
}

impl Sim {
    /// Build a run at tick 0.
    pub fn new(config: RunConfig, trace: Trace) -> Result<Sim, String> {
        config.faults.validate()?;
        let mut cluster = Cluster::new(config.cluster.clone(), config.seed, trace)?;
        let workload = Workload::new(
            config.workload.clone(),
            stream(config.seed, Stream::Clients),
            0,
        );
        let n = config.cluster.protocol.nodes_count();
        let (rot_max, rot_spared) = match &config.cluster.protocol {
            ProtocolConfig::Raft(_) => ((n - 1) / 2, Vec::new()),
            ProtocolConfig::Replication(r) => (n.saturating_sub(r.quorum as u32), vec![r.leader]),
        };
        let mut faults = FaultScheduler::new(
            config.faults.clone(),
            stream(config.seed, Stream::Faults),
            rot_max,
            rot_spared,
        );
        let header = header_line(&config);
        cluster.record(&TraceEvent::Line {
            kind: "header",
            text: &header,
        });
        let mut fault_log = Vec::new();
        for (node, ppm) in faults.initial_drift(config.cluster.protocol.nodes_count()) {
            let action = FaultAction::Drift(node, ppm);
            cluster.apply_fault(&action)?;
            fault_log.push((0, action));
        }
        let mut fault_agenda = FaultAgenda::default();
        if let Some(t) = faults.next_fault_tick(0) {
            fault_agenda.push(t, AgendaItem::Draw);
        }
        let checkers = config
            .checkers
            .then(|| Checkers::new(&config.cluster.protocol));
        let mut sim = Sim {
            cluster,
            workload,
            checkers,
            faults,
            faults_active: true,
            client_timer_at: None,
            sends: Vec::new(),
            notes: Vec::new(),
            failure: None,
            max_lag: BTreeMap::new(),
            fault_log,
            fault_agenda,
            applied_counts: None,
            samples_lag: config.cluster.protocol.replication().is_some(),
            config,
        };
        sim.reschedule_client_timer();
        Ok(sim)
    }

    /// The cluster.
    pub fn cluster(&self) -> &Cluster {
        &self.cluster
    }

    /// The cluster, mutably (scenarios apply faults and settings).
    pub fn cluster_mut(&mut self) -> &mut Cluster {
        &mut self.cluster
    }

    /// The clients.
    pub fn workload(&self) -> &Workload {
        &self.workload
    }

    /// The clients, mutably.
    pub fn workload_mut(&mut self) -> &mut Workload {
        &mut self.workload
    }

    /// The run configuration.
    pub fn config(&self) -> &RunConfig {
        &self.config
    }

    /// The first failure, if any.
    pub fn failure(&self) -> Option<&Failure> {
        self.failure.as_ref()
    }

    /// Stop injecting random faults (scheduled ends of faults still happen).
    pub fn set_faults_active(&mut self, on: bool) {
        self.faults_active = on;
    }

    /// Process every event up to and including `tick`, stopping early at a failure. Time ends at
    /// `tick` even if the queue ran dry.
    pub fn run_until(&mut self, tick: Tick) -> Result<(), Failure> {
        self.run_while(tick, |_| false).map(|_| ())
    }

    /// Process every event due strictly before `tick`, then set the clock to `tick` (events due
    /// at `tick` stay queued).
    pub fn run_before(&mut self, tick: Tick) -> Result<(), Failure> {
        if tick == 0 {
            return Ok(());
        }
        self.run_while(tick - 1, |_| false)?;
        self.cluster.advance_to(tick);
        Ok(())
    }

    /// Process events up to `tick` until `stop(self)` holds after an event. Returns whether it
    /// stopped because of the condition.
    pub fn run_while(
        &mut self,
        tick: Tick,
        mut stop: impl FnMut(&Sim) -> bool,
    ) -> Result<bool, Failure> {
        if let Some(f) = &self.failure {
            return Err(f.clone());
        }
        if stop(self) {
            return Ok(true);
        }
        // One unwind guard around the whole loop (not one per event): a panic anywhere in it
        // becomes a failure of this run, at the tick it happened.
        CATCHING_PANICS.with(|c| c.set(true));
        let result = catch_unwind(AssertUnwindSafe(|| self.run_events(tick, &mut stop)));
        CATCHING_PANICS.with(|c| c.set(false));
        let result = match result {
            Ok(r) => r.map_err(|f| *f),
            Err(payload) => {
                let mut message = panic_message(&*payload);
                if let Some(at) = LAST_PANIC_LOCATION.with(|l| l.borrow_mut().take()) {
                    message.push_str(&format!(" (at {at})"));
                }
                Err(Failure::Panic {
                    message,
                    tick: self.cluster.now(),
                })
            }
        };
        match result {
            Err(f) => {
                self.fail(f.clone());
                Err(f)
            }
            Ok(true) => Ok(true),
            Ok(false) => {
                self.advance_to(tick);
                Ok(false)
            }
        }
    }

    /// The loop of [`Sim::run_while`]: faults and events up to `tick`, in order, until `stop`
    /// holds (`Ok(true)`) or nothing is left (`Ok(false)`).
    fn run_events(
        &mut self,
        tick: Tick,
        stop: &mut impl FnMut(&Sim) -> bool,
    ) -> Result<bool, Failed> {
        loop {
            // Events run up to the next fault's tick (exclusive: a fault strikes first in its
            // tick), then the fault. Only a fault adds to the agenda, so its first tick holds
            // for the whole run of events and is read once per fault, not once per event.
            let next_fault = self.fault_agenda.first_tick().filter(|&t| t <= tick);
            let events_last = match next_fault {
                Some(fault) => fault.checked_sub(1),
                None => Some(tick),
            };
            if let Some(last) = events_last {
                while self.cluster.next_event_tick().is_some_and(|t| t <= last) {
                    self.step()?;
                    if stop(self) {
                        return Ok(true);
                    }
                }
            }
            if next_fault.is_none() {
                return Ok(false);
            }
            self.step_fault()?;
            if stop(self) {
                return Ok(true);
            }
        }
    }

    fn advance_to(&mut self, tick: Tick) {
        self.cluster.advance_to(tick);
    }

    fn fail(&mut self, failure: Failure) {
        let text = failure.to_string();
        self.cluster.record(&TraceEvent::Violation { text: &text });
        self.failure.get_or_insert(failure);
    }

    /// Handle one event.
    ///
    /// Inlined into the run loop: most events cost little more here than the call, the
    /// frame and the `Result` in memory that a separate function would take.
    #[inline(always)]
    fn step(&mut self) -> Result<(), Failed> {
        let Some(popped) = self.cluster.pop_and_dispatch() else {
            return Ok(());
        };
        let now = self.cluster.now();
        let mut target = None;
        match popped {
            Popped::Node { node, timer } => {
                target = Some(node);
                if timer && self.samples_lag {
                    self.sample_lag(node);
                }
            }
            Popped::Caller => self.step_caller(now)?,
        }
        self.check(target)
    }

    /// [`Sim::step`] for an event of the run loop's own (client timer, responses).
    /// Out of line: one event in twenty is the caller's, and inlined it would widen the
    /// frame [`Sim::step`] sets up for every event.
    #[inline(never)]
    fn step_caller(&mut self, now: Tick) -> Result<(), Failed> {
        match self.cluster.take_caller_event() {
            Event::ClientTimer if self.client_timer_at == Some(now) => {
                self.client_timer_at = None;
                self.workload
                    .handle_tick(now, &mut self.sends, &mut self.notes);
                self.flush_client_output();
            }
            Event::Response { from, reply } => {
                let acknowledged_write = reply.seq < READ_SEQ_BASE
                    && matches!(
                        reply.response,
                        ClientResponse::Ok { .. } | ClientResponse::Duplicate { .. }
                    );
                if acknowledged_write {
                    if let Some(c) = self.checkers.as_mut() {
                        c.write_acknowledged(now, reply.client, reply.seq, &self.cluster)
                            .map_err(violated)?;
                    }
                }
                self.workload
                    .handle_reply(now, from, reply, &mut self.sends, &mut self.notes);
                self.flush_client_output();
            }
            _ => {}
        }
        Ok(())
    }

    /// Handle the first entry of the fault agenda, at its tick, before that tick's events.
    fn step_fault(&mut self) -> Result<(), Failed> {
        let Some((tick, item)) = self.fault_agenda.pop_first() else {
            return Ok(());
        };
        self.cluster.advance_to(tick);
        if !self.faults_active {
            return Ok(());
        }
        match item {
            AgendaItem::Draw => {
                if let Some((action, later)) = self.faults.draw(&self.cluster) {
                    self.apply_fault_now(&action);
                    for (delay, action) in later {
                        self.fault_agenda
                            .push(tick + delay, AgendaItem::Apply(action));
                    }
                }
                if let Some(t) = self.faults.next_fault_tick(tick) {
                    self.fault_agenda.push(t, AgendaItem::Draw);
                }
            }
            AgendaItem::Apply(action) => self.apply_fault_now(&action),
        }
        self.check(None)
    }

    /// At the leader-follower leader's timer (its heartbeat rounds), note each follower's lag.
    fn sample_lag(&mut self, node: NodeId) {
        let Some(replica) = self.cluster.node(node).and_then(|n| n.as_replica()) else {
            return;
        };
        if !replica.is_leader() {
            return;
        }
        for (follower, lag) in replica.follower_lags() {
            let max = self.max_lag.entry(follower).or_insert(0);
            *max = (*max).max(lag);
        }
    }

    fn apply_fault_now(&mut self, action: &FaultAction) {
        // Random faults can be moot (restarting a node a scenario already restarted): skip.
        if self.cluster.apply_fault(action).is_ok() {
            self.fault_log.push((self.cluster.now(), action.clone()));
        }
    }

    /// Every fault or operator action applied so far, with its tick.
    pub fn fault_log(&self) -> &[(Tick, FaultAction)] {
        &self.fault_log
    }

    /// Apply a fault or operator action now, as a scenario does; errors say why it is moot.
    pub fn apply_fault(&mut self, action: &FaultAction) -> Result<(), String> {
        self.cluster.apply_fault(action)?;
        self.fault_log.push((self.cluster.now(), action.clone()));
        if let Err(f) = self.check(None) {
            self.fail(*f);
        }
        Ok(())
    }

    /// Runs the checkers over what the last event or action produced (and over `target`'s
    /// state), then forgets the observations.
    ///
    /// Runs once per event, and most events observe nothing and leave their node as its last
    /// check saw it: that case is answered here, inlined into [`Sim::step`], reading the
    /// node's state and nothing else. A node that moved without observations goes out of
    /// line with the state already read ([`Sim::check_moved`]); observations go to
    /// [`Sim::check_fully`], whose frame the common case then never pays for.
    #[inline(always)]
    fn check(&mut self, target: Option<NodeId>) -> Result<(), Failed> {
        if self.cluster.observations().is_empty() && self.applied_counts.is_none() {
            let (Some(checkers), Some(node)) = (&self.checkers, target) else {
                return Ok(());
            };
            return match checkers.moved_state(node, &self.cluster) {
                None => Ok(()),
                Some(state) => self.check_moved(node, &state),
            };
        }
        self.check_fully(target)
    }

    /// [`Sim::check`] of a node whose state moved, in an event that observed nothing: only the
    /// node's check is left ([`crate::checker::raft::RaftSafety::check_moved_state`]; only the
    /// Raft checker checks node states).
    #[inline(never)]
    fn check_moved(&mut self, node: NodeId, state: &NodeState) -> Result<(), Failed> {
        let now = self.cluster.now();
        let Some(raft) = self.checkers.as_mut().and_then(|c| c.raft.as_mut()) else {
            return Ok(());
        };
        raft.check_moved_state(now, node, state, &self.cluster)
            .map_err(violated)
    }

    /// [`Sim::check`]'s work when there is some: observations to feed, a node to check.
    #[inline(never)]
    fn check_fully(&mut self, target: Option<NodeId>) -> Result<(), Failed> {
        let result = self.check_observations(target);
        // Most events observe nothing, and clearing an empty list still calls its drop.
        if !self.cluster.observations().is_empty() {
            self.cluster.clear_observations();
        }
        result
    }

    /// [`Sim::check`]'s work, reading the observations where the cluster keeps them (the
    /// checkers only read the cluster, so nothing needs copying out first).
    fn check_observations(&mut self, target: Option<NodeId>) -> Result<(), Failed> {
        if self.applied_counts.is_some() {
            self.count_applied();
        }
        let now = self.cluster.now();
        let Some(checkers) = self.checkers.as_mut() else {
            return Ok(());
        };
        for o in self.cluster.observations() {
            checkers.observe(now, o, &self.cluster).map_err(violated)?;
        }
        if let Some(node) = target {
            checkers
                .check_node(now, node, &self.cluster)
                .map_err(violated)?;
        }
        Ok(())
    }

    /// Counts the applications among the observations (scenario `expect applied`). Out of
    /// line: only scenarios turn it on, and it would bloat the per-event [`Sim::check`].
    #[inline(never)]
    fn count_applied(&mut self) {
        if let Some(counts) = self.applied_counts.as_mut() {
            for o in self.cluster.observations() {
                match o {
                    Observation::Applied { node, applied } => {
                        if let Some((client, seq, op)) = &applied.command {
                            if !op.is_read() && matches!(applied.outcome, ApplyOutcome::Applied(_))
                            {
                                *counts.entry((*node, *client, *seq)).or_insert(0) += 1;
                            }
                        }
                    }
                    Observation::Restarted { node } | Observation::Crashed { node } => {
                        counts.retain(|k, _| k.0 != *node);
                    }
                    _ => {}
                }
            }
        }
    }

    /// Start counting applications per node (scenario `expect applied`).
    pub fn record_applied_counts(&mut self) {
        self.applied_counts.get_or_insert_with(BTreeMap::new);
    }

    /// How many times `node`'s current state machine applied the write `(client, seq)`.
    pub fn applied_count(&self, node: NodeId, client: ClientId, seq: Seq) -> u64 {
        self.applied_counts
            .as_ref()
            .and_then(|c| c.get(&(node, client, seq)).copied())
            .unwrap_or(0)
    }

    fn flush_client_output(&mut self) {
        // Recorded in place and dropped together: the trace only borrows a note.
        for note in &self.notes {
            self.cluster.record(&TraceEvent::Client { note });
        }
        self.notes.clear();
        for send in self.sends.drain(..) {
            self.cluster
                .send_request(send.request.client, send.to, send.request);
        }
        self.reschedule_client_timer();
    }

    fn reschedule_client_timer(&mut self) {
        if let Some(t) = self.workload.next_deadline_tick() {
            let t = t.max(self.cluster.now());
            if self
                .client_timer_at
                .is_none_or(|at| t < at || at < self.cluster.now())
            {
                self.client_timer_at = Some(t);
                self.cluster.schedule(t, Event::ClientTimer);
            }
        }
    }

    /// Submit a scripted client operation now (scenarios).
    pub fn submit(
        &mut self,
        client: u32,
        op: raftsim_protocol::kv::Op,
        seq: Option<u64>,
        to: Option<NodeId>,
    ) -> Result<(), String> {
        let now = self.cluster.now();
        self.workload
            .submit(now, client, op, seq, to, &mut self.sends, &mut self.notes)
            .map_err(|e| e.to_string())?;
        self.flush_client_output();
        Ok(())
    }

    /// Start the heal phase: stop faults, heal the network, zero its fault rates, resume paused
    /// nodes, restart crashed ones (unless their disk is corrupt), stop new client operations.
    pub fn heal(&mut self) {
        self.faults_active = false;
        let network = NetworkConfig {
            loss_probability: 0.0,
            duplicate_probability: 0.0,
            corrupt_probability: 0.0,
            ..self.cluster.network().config().clone()
        };
        self.cluster.set_network_config(network);
        if !self.cluster.network().is_whole() {
            let _ = self.cluster.apply_fault(&FaultAction::Heal);
        }
        for id in 1..=self.cluster.nodes_count() {
            if self.cluster.is_paused(id) {
                let _ = self.cluster.apply_fault(&FaultAction::Resume(id));
            } else if !self.cluster.is_up(id) && !self.cluster.is_disk_corrupt(id) {
                let _ = self.cluster.apply_fault(&FaultAction::Restart(id));
            }
        }
        self.workload.set_generating(false);
        if let Err(f) = self.check(None) {
            self.fail(*f);
        }
    }

    /// Whether the cluster is live: one leader among the nodes up, of the highest term any
    /// of them holds, and no client operation pending.
    ///
    /// For the leader-follower store, every running follower must also hold and have applied
    /// everything the leader has (replicas caught up).
    ///
    /// The liveness phase asks this after every event, so the cheap client count goes first.
    pub fn converged(&self) -> bool {
        if self.workload.pending_count() != 0 {
            return false;
        }
        let Some(leader) = self.stable_leader() else {
            return false;
        };
        let c = &self.cluster;
        match &self.config.cluster.protocol {
            ProtocolConfig::Raft(_) => true,
            ProtocolConfig::Replication(_) => {
                let last = c.node(leader).map_or(0, |n| n.last_index());
                (1..=c.nodes_count())
                    .filter_map(|id| c.node(id))
                    .all(|n| n.last_index() == last && n.applied_index() == last)
            }
        }
    }

    /// Convergence (leader-follower store): every running replica holds the same store.
    pub fn check_convergence(&mut self) -> Result<(), Failure> {
        let c = &self.cluster;
        let digests: Vec<(NodeId, u64)> = (1..=c.nodes_count())
            .filter_map(|id| c.node(id).map(|n| (id, n.kv().digest())))
            .collect();
        if digests.windows(2).all(|w| w[0].1 == w[1].1) {
            return Ok(());
        }
        let f = Failure::Violation(Violation {
            property: CONVERGENCE,
            tick: c.now(),
            nodes: digests.iter().map(|d| d.0).collect(),
            detail: format!("replicas hold different stores after healing: digests {digests:x?}"),
        });
        self.fail(f.clone());
        Err(f)
    }

    /// The leader of the highest term any running node holds, if exactly one node leads that
    /// term. Leaders of older terms (cut off, not yet told) do not count: they are stale.
    ///
    /// One pass over the nodes, allocating nothing: the liveness phase asks after every event.
    pub fn stable_leader(&self) -> Option<NodeId> {
        let c = &self.cluster;
        let mut max_term = None;
        // The leaders of `max_term` seen so far: how many, and the last one.
        let mut leaders_count = 0u32;
        let mut leader = None;
        for id in 1..=c.nodes_count() {
            let Some(node) = c.node(id) else {
                continue;
            };
            let term = node.term();
            if max_term.is_none_or(|max| term > max) {
                max_term = Some(term);
                leaders_count = 0;
                leader = None;
            }
            if max_term == Some(term) && node.is_leader() {
                leaders_count += 1;
                leader = Some(id);
            }
        }
        leader.filter(|_| leaders_count == 1)
    }

    /// Whether there is a [`Sim::stable_leader`].
    pub fn has_stable_leader(&self) -> bool {
        self.stable_leader().is_some()
    }

    /// Run the heal phase to convergence within `liveness_ticks_max`. Returns the ticks it took.
    pub fn run_liveness(&mut self) -> Result<Tick, Failure> {
        self.run_liveness_within(self.config.liveness_ticks_max)
    }

    /// Run the heal phase to convergence within `bound` ticks. Returns the ticks it took.
    pub fn run_liveness_within(&mut self, bound: Tick) -> Result<Tick, Failure> {
        let start = self.cluster.now();
        self.heal();
        if self.run_while(start + bound, Sim::converged)? {
            if self.config.cluster.protocol.replication().is_some() {
                self.check_convergence()?;
            }
            return Ok(self.cluster.now() - start);
        }
        let f = Failure::Violation(Violation {
            property: LIVENESS,
            tick: self.cluster.now(),
            nodes: self.cluster.leaders(),
            detail: format!(
                "after healing at t={start}, no convergence within {bound} ticks: leaders {:?}, \
                 {} client operations pending\n{}",
                self.cluster.leaders(),
                self.workload.pending_count(),
                self.cluster.state_summary().trim_end()
            ),
        });
        self.fail(f.clone());
        Err(f)
    }

    /// The names of the properties this run checks.
    pub fn properties(&self) -> Vec<&'static str> {
        let mut p = match &self.config.cluster.protocol {
            ProtocolConfig::Raft(_) => vec![
                crate::checker::raft::ELECTION_SAFETY,
                crate::checker::raft::LEADER_APPEND_ONLY,
                crate::checker::raft::LOG_MATCHING,
                crate::checker::raft::LEADER_COMPLETENESS,
                crate::checker::raft::STATE_MACHINE_SAFETY,
                crate::checker::client::EXACTLY_ONCE,
                crate::checker::client::DURABILITY,
                LIVENESS,
            ],
            ProtocolConfig::Replication(_) => vec![
                crate::checker::client::EXACTLY_ONCE,
                crate::checker::client::QUORUM_DURABILITY,
                LIVENESS,
                CONVERGENCE,
            ],
        };
        if self.config.linearizability {
            p.push(LINEARIZABILITY);
        }
        p
    }

    /// The client history so far.
    pub fn history(&self) -> &[HistoryOp] {
        self.workload.history()
    }

    /// The linearizability verdict on the history so far (no effect on the run).
    ///
    /// A completion at tick `T` is placed before an invocation at the same tick
    /// ([`linearizability::SameTick::ReturnsFirst`]). That is sound here because every message
    /// takes at least one tick: an operation that completes at `T` took effect at `T - 1` or
    /// earlier, and one invoked at `T` takes effect at `T + 1` or later, so the first really
    /// did precede the second. (The checker's default treats equal ticks as concurrent, which
    /// is right for histories from elsewhere but would miss a stale read that follows a write
    /// in the very next tick.) The checker borrows the history; the witness comes back with
    /// the ticks the trace shows.
    pub fn linearizability_verdict(&self) -> Verdict {
        let limits = Limits {
            steps_max: self.config.linearizability_steps_max,
        };
        linearizability::check_ordered(
            self.workload.history(),
            None,
            &limits,
            linearizability::SameTick::ReturnsFirst,
        )
        .verdict
    }

    /// Record a failure found outside the event loop (a scenario expectation); the first one
    /// wins.
    pub fn record_failure(&mut self, failure: Failure) {
        self.fail(failure);
    }

    /// Check the history for linearizability; a violation fails the run.
    pub fn check_linearizability(&mut self) -> Verdict {
        let verdict = self.linearizability_verdict();
        if let Verdict::NotLinearizable { key, ops } = &verdict {
            let mut detail = format!("key {key:?}: no linearization of these operations:");
            for op in ops {
                detail.push_str(&format!(
                    "\n  c{} {} [{}, {}] {:?}",
                    op.client,
                    op.op,
                    op.invoke_tick,
                    op.complete_tick.map_or("-".to_string(), |t| t.to_string()),
                    op.outcome
                ));
            }
            self.fail(Failure::Violation(Violation {
                property: LINEARIZABILITY,
                tick: self.cluster.now(),
                nodes: Vec::new(),
                detail,
            }));
        }
        verdict
    }

    /// Finish the run: close the history, write the summary, and build the report.
    pub fn finish(
        mut self,
        liveness_ticks: Option<Tick>,
        verdict: Option<Verdict>,
    ) -> (RunReport, Trace) {
        let now = self.cluster.now();
        self.workload.finish(now);
        let stats = self.cluster.stats().clone();
        let clients = self.workload.stats().clone();
        let (lin, unknown) = match &verdict {
            None => ("skipped".to_string(), false),
            Some(Verdict::Linearizable) => ("linearizable".to_string(), false),
            Some(Verdict::NotLinearizable { .. }) => ("not linearizable".to_string(), false),
            Some(Verdict::Unknown { key, .. }) => {
                (format!("unknown (budget spent on key {key:?})"), true)
            }
        };
        let failure = self.failure.clone();
        let failure_tick = failure.as_ref().map(|f| match f {
            Failure::Violation(v) => v.tick,
            Failure::Panic { tick, .. } => *tick,
        });
        let summary = format!(
            "summary events={} ticks={} elections={} leaders={} commits={} ops ok={} fail={} info={} \
             liveness={} linearizability={} verdict={}",
            stats.events,
            now,
            stats.elections,
            stats.leaders_elected,
            stats.commits,
            clients.ops_ok,
            clients.ops_fail,
            clients.ops_info,
            liveness_ticks.map_or("-".to_string(), |t| format!("{t}ticks")),
            lin.split(' ').next().unwrap_or("-"),
            failure.as_ref().map_or("PASS", |_| "FAIL"),
        );
        self.cluster.record(&TraceEvent::Line {
            kind: "summary",
            text: &summary,
        });
        let properties = self.properties();
        let hash = self
            .cluster
            .trace()
            .hash()
            .map_or_else(String::new, |h| format!("{h:016x}"));
        let hash_line = format!("trace-hash={hash}");
        let mut trace = self.cluster.into_trace();
        trace.write_unhashed(now, "hash", &hash_line);
        let report = RunReport {
            seed: self.config.seed,
            events: stats.events,
            ticks: now,
            elections: stats.elections,
            leaders_elected: stats.leaders_elected,
            commits: stats.commits,
            ops_ok: clients.ops_ok,
            ops_fail: clients.ops_fail,
            ops_info: clients.ops_info,
            liveness_ticks,
            linearizability: lin,
            failure: failure.as_ref().map(|f| f.to_string()),
            failed_property: failure.as_ref().map(|f| f.property().to_string()),
            trace_hash: hash,
            cluster: stats,
            clients,
            failure_detail: failure,
            linearizability_unknown: unknown,
            properties,
            max_lag: self.max_lag,
            faults_applied: self.fault_log,
            failure_tick,
        };
        (report, trace)
    }
}

/// The text of a caught panic's payload.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-string payload".to_string()
    }
}

/// The trace header: every setting that shapes the run.
pub fn header_line(config: &RunConfig) -> String {
    let n = &config.cluster.network;
    let f = &config.faults;
    let protocol = match &config.cluster.protocol {
        ProtocolConfig::Raft(r) => format!(
            "protocol=raft nodes={} election={}..{} heartbeat={} pre_vote={} check_quorum={} \
             lease_reads={}",
            r.nodes_count,
            r.election_timeout_ticks_min,
            r.election_timeout_ticks_max,
            r.heartbeat_ticks,
            r.pre_vote,
            r.check_quorum,
            r.lease_reads,
        ),
        ProtocolConfig::Replication(r) => format!(
            "protocol=replication nodes={} leader=n{} quorum={} heartbeat={} keepalive={} \
             pipeline={} read_from_follower={} retain={}",
            r.nodes_count,
            r.leader,
            r.quorum,
            r.heartbeat_ticks,
            r.keepalive_timeout_ticks,
            r.pipeline,
            r.read_from_follower,
            r.wal_retain_records,
        ),
    };
    // Options added after the first snapshots were reviewed print only when on, so older
    // traces keep their header.
    let clients_partitioned = if n.clients_partitioned {
        " client_partitions=true"
    } else {
        ""
    };
    let target_leader = if f.target_leader {
        " target_leader=true"
    } else {
        ""
    };
    format!(
        "seed={} raftsim={} {protocol} ticks={} clients={} keys={} \
         delay={}..{} loss={} dup={} corrupt={} sync={} torn={} partitions={} one_way={} \
         crashes={} pauses={} rot={} drift={}{clients_partitioned}{target_leader}",
        config.seed,
        env!("CARGO_PKG_VERSION"),
        config.fault_ticks,
        config.workload.clients_count,
        config.workload.keys_count,
        n.delay_ticks_min,
        n.delay_ticks_max,
        n.loss_probability,
        n.duplicate_probability,
        n.corrupt_probability,
        config.cluster.disk_sync_ticks,
        config.cluster.torn_writes,
        f.partitions,
        f.one_way,
        f.crashes,
        f.pauses,
        f.rot,
        f.drift_ppm_max,
    )
}

/// Run start to end: fault phase, heal phase, linearizability. Panics are caught and reported.
pub fn run(config: RunConfig, trace: Trace) -> Result<(RunReport, Trace), String> {
    run_then(config, trace, |_| ()).map(|(report, trace, ())| (report, trace))
}

/// [`run`], handing the finished simulation to `inspect` before its report is made (for what
/// the report does not carry, such as the client history).
pub fn run_then<T>(
    config: RunConfig,
    trace: Trace,
    inspect: impl FnOnce(&Sim) -> T,
) -> Result<(RunReport, Trace, T), String> {
    let fault_ticks = config.fault_ticks;
    let lin = config.linearizability;
    let mut sim = Sim::new(config, trace)?;
    let mut liveness = None;
    let mut verdict = None;
    if sim.run_until(fault_ticks).is_ok() {
        if let Ok(t) = sim.run_liveness() {
            liveness = Some(t);
            if lin {
                verdict = Some(sim.check_linearizability());
            }
        }
    }
    let inspected = inspect(&sim);
    let (report, trace) = sim.finish(liveness, verdict);
    Ok((report, trace, inspected))
}
