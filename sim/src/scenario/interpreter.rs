//! Runs a parsed scenario against a [`Sim`]: commands in order, expectations checked where they
//! stand, every simulator checker on throughout, and a linearizability check of the client
//! history at the end.
//!
//! Scenario defaults (each can be changed on the `cluster` line): 3 Raft nodes, seed 1,
//! election timeout 150..300 ticks, heartbeat 50, lease 100, message delay 1..3 ticks, no loss,
//! synchronous disk (`sync=0`, so traces stay short), 2 clients that only do what the script
//! says (`workload=off`), client request timeout 400 ticks.

use std::collections::BTreeMap;

use raftsim_protocol::kv::OpResult;
use raftsim_protocol::node::{ClientResponse, Role};
use raftsim_protocol::raft::Config as RaftConfig;
use raftsim_protocol::replication::Config as ReplicationConfig;
use raftsim_protocol::types::{NodeId, Tick};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::ast::{
    ClientOp, ClusterSpec, Command, Condition, Expectation, NodeRef, NodeSet, Protocol, ReplyKind,
    Script, Spanned,
};
use crate::checker::linearizability::Verdict;
use crate::cluster::{ClusterConfig, FaultAction};
use crate::faults::FaultConfig;
use crate::network::NetworkConfig;
use crate::node::ProtocolConfig;
use crate::rng::{stream, Stream};
use crate::run::{Failure, RunConfig, RunReport, Sim};
use crate::trace::{Trace, TraceEvent};
use crate::workload::{OpMix, WorkloadConfig};

/// Bound on commands executed (repeat blocks multiply): a runaway script stops with an error.
pub const COMMANDS_EXECUTED_MAX: u64 = 10_000_000;

/// Why a scenario failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioFailure {
    /// Script line of the command that failed (or that was running when a checker fired).
    pub line: u32,
    /// That line's text.
    pub text: String,
    /// When.
    pub tick: Tick,
    /// What was observed.
    pub message: String,
    /// The simulator property that failed, when a checker (not an expectation) stopped the run.
    pub property: Option<String>,
}

/// The result of a scenario run.
#[derive(Debug)]
pub struct ScenarioOutcome {
    /// The seed used.
    pub seed: u64,
    /// The first failure, if any.
    pub failure: Option<ScenarioFailure>,
    /// Lines printed by `print`.
    pub printed: Vec<String>,
    /// The run report (counters, trace hash).
    pub report: RunReport,
    /// The clients' history (for `raftsim run --history`).
    pub history: Vec<crate::checker::linearizability::HistoryOp>,
}

impl ScenarioOutcome {
    /// Whether every expectation and checker held.
    pub fn passed(&self) -> bool {
        self.failure.is_none()
    }
}

fn parse_on_off(key: &str, value: &str) -> Result<bool, String> {
    match value {
        "on" | "true" | "yes" => Ok(true),
        "off" | "false" | "no" => Ok(false),
        _ => Err(format!(
            "cluster setting `{key}` takes on|off, not `{value}`"
        )),
    }
}

fn parse_number<T: std::str::FromStr>(key: &str, value: &str) -> Result<T, String> {
    value
        .replace('_', "")
        .parse()
        .map_err(|_| format!("cluster setting `{key}` takes a number, not `{value}`"))
}

/// Build the run configuration a scenario's `cluster` line describes.
///
/// Settings beyond the common ones (`extra` in the syntax tree): for every protocol
/// `client-skew=S1,S2,...` (each client's clock skew in ticks, signed), `client-gaps=P`
/// (chance a generated write skips a sequence number) and `client-partitions=on|off`
/// (partitions strand each client with its home node) and `reads=P` (percent of generated
/// operations that are reads); for
/// `protocol=replication` also `keepalive=N`, `pipeline=on|off`, `read-from-follower=on|off`,
/// `retain=N` (records the leader keeps for catch-up), `leader=N` and `client-timestamps=on|off`
/// (order writes by the clients' clocks instead of the leader's); for `protocol=raft` also
/// `snapshot-every=N` (log compaction after N applied entries), `snapshot-chunk=BYTES`
/// (largest InstallSnapshot chunk) and `append-max=N` (most entries per AppendEntries).
pub fn run_config(spec: &ClusterSpec, seed_override: Option<u64>) -> Result<RunConfig, String> {
    let nodes = spec.nodes.unwrap_or(3);
    let protocol_kind = spec.protocol.unwrap_or(Protocol::Raft);
    let mut clock_skew_ticks = Vec::new();
    let mut gap_probability = 0.0;
    let mut clients_partitioned = false;
    let mut read_percent = 30;
    let mut raft_snapshots = RaftConfig::default();
    let mut replication = ReplicationConfig {
        nodes_count: nodes,
        ..ReplicationConfig::default()
    };
    if let Some(q) = spec.quorum {
        replication.quorum = q as usize;
    }
    if let Some(h) = spec.heartbeat_ticks {
        replication.heartbeat_ticks = h;
    }
    for (key, value) in &spec.extra {
        match (key.as_str(), protocol_kind) {
            ("plant", _) => {
                let bug = raftsim_protocol::planted::Bug::from_name(value)
                    .ok_or_else(|| format!("unknown planted bug `{value}`"))?;
                if !raftsim_protocol::planted::set(Some(bug)) {
                    return Err(format!(
                        "plant={value}: this raftsim was built without the planted-bugs feature"
                    ));
                }
            }
            ("client-gaps", _) => {
                gap_probability = parse_number::<f64>(key, value)?;
                if !(0.0..=1.0).contains(&gap_probability) {
                    return Err(format!("client-gaps must be in 0..=1, got {value}"));
                }
            }
            ("client-partitions", _) => clients_partitioned = parse_on_off(key, value)?,
            ("reads", _) => {
                read_percent = parse_number::<u32>(key, value)?;
                if read_percent > 100 {
                    return Err(format!("reads is a percentage, 0..=100, got {value}"));
                }
            }
            ("client-skew", _) => {
                clock_skew_ticks = value
                    .split(',')
                    .map(|v| parse_number::<i64>(key, v.trim()))
                    .collect::<Result<_, _>>()?;
            }
            ("keepalive", Protocol::Replication) => {
                replication.keepalive_timeout_ticks = parse_number(key, value)?
            }
            ("pipeline", Protocol::Replication) => replication.pipeline = parse_on_off(key, value)?,
            ("read-from-follower", Protocol::Replication) => {
                replication.read_from_follower = parse_on_off(key, value)?
            }
            ("client-timestamps", Protocol::Replication) => {
                replication.client_timestamps = parse_on_off(key, value)?
            }
            ("retain", Protocol::Replication) => {
                replication.wal_retain_records = parse_number(key, value)?
            }
            ("leader", Protocol::Replication) => {
                replication.leader = parse_number(key, value.trim_start_matches('n'))?
            }
            ("snapshot-every", Protocol::Raft) => {
                raft_snapshots.snapshot_entries_threshold = parse_number(key, value)?
            }
            ("snapshot-chunk", Protocol::Raft) => {
                raft_snapshots.snapshot_chunk_bytes = parse_number(key, value)?
            }
            ("append-max", Protocol::Raft) => {
                raft_snapshots.entries_per_append_max = parse_number(key, value)?
            }
            _ => {
                return Err(format!(
                    "unknown cluster setting `{key}` for protocol={}",
                    match protocol_kind {
                        Protocol::Raft => "raft",
                        Protocol::Replication => "replication",
                    }
                ))
            }
        }
    }
    let protocol = match protocol_kind {
        Protocol::Raft => {
            let (election_min, election_max) = spec.election_ticks.unwrap_or((150, 300));
            let lease_reads = spec.lease_reads.unwrap_or(false);
            if spec.quorum.is_some() {
                return Err("`quorum` is a protocol=replication setting".into());
            }
            ProtocolConfig::Raft(RaftConfig {
                nodes_count: nodes,
                election_timeout_ticks_min: election_min,
                election_timeout_ticks_max: election_max,
                heartbeat_ticks: spec.heartbeat_ticks.unwrap_or(50),
                pre_vote: spec.pre_vote.unwrap_or(false),
                check_quorum: spec.check_quorum.unwrap_or(lease_reads),
                lease_reads,
                lease_ticks: spec.lease_ticks.unwrap_or(100),
                ..raft_snapshots
            })
        }
        Protocol::Replication => {
            for (set, name) in [
                (spec.election_ticks.is_some(), "election"),
                (spec.pre_vote.is_some(), "pre-vote"),
                (spec.check_quorum.is_some(), "check-quorum"),
                (spec.lease_reads.is_some(), "lease-reads"),
                (spec.lease_ticks.is_some(), "lease"),
            ] {
                if set {
                    return Err(format!("`{name}` is a protocol=raft setting"));
                }
            }
            if spec.quorum.is_none() {
                replication.quorum = nodes as usize / 2 + 1;
            }
            ProtocolConfig::Replication(replication)
        }
    };
    protocol.validate()?;
    let (delay_min, delay_max) = spec.delay_ticks.unwrap_or((1, 3));
    let network = NetworkConfig {
        delay_ticks_min: delay_min,
        delay_ticks_max: delay_max,
        loss_probability: spec.loss.unwrap_or(0.0),
        duplicate_probability: spec.dup.unwrap_or(0.0),
        corrupt_probability: spec.corrupt.unwrap_or(0.0),
        clients_partitioned,
    };
    network.validate()?;
    let workload = WorkloadConfig {
        clients_count: spec.clients.unwrap_or(2),
        nodes_count: nodes,
        keys_count: spec.keys.unwrap_or(4),
        request_timeout_ticks: spec.client_timeout_ticks.unwrap_or(400),
        mix: OpMix::with_read_percent(read_percent),
        clock_skew_ticks,
        gap_probability,
        ..WorkloadConfig::default()
    };
    workload.validate().map_err(|e| e.to_string())?;
    Ok(RunConfig {
        seed: seed_override.or(spec.seed).unwrap_or(1),
        cluster: ClusterConfig {
            protocol,
            network,
            disk_sync_ticks: spec.sync_ticks.unwrap_or(0),
            torn_writes: spec.torn_writes.unwrap_or(false),
        },
        workload,
        faults: FaultConfig::default(),
        fault_ticks: 0,
        liveness_ticks_max: 20_000,
        checkers: true,
        linearizability: true,
        linearizability_steps_max: 5_000_000,
    })
}

struct Interp {
    sim: Sim,
    rng: ChaCha8Rng,
    aliases: BTreeMap<String, NodeId>,
    /// Mark label → per-type message counts at the mark.
    marks: BTreeMap<String, BTreeMap<String, u64>>,
    printed: Vec<String>,
    executed: u64,
    expects_not_linearizable: bool,
}

/// What stopped a command.
enum Stop {
    /// An expectation or command failed.
    Failed(String),
    /// A checker fired during the run.
    Checker(Failure),
    /// A command inside a repeat block failed.
    Nested(ScenarioFailure),
}

impl From<String> for Stop {
    fn from(s: String) -> Stop {
        Stop::Failed(s)
    }
}

/// Run a script. `Err` means it could not start (bad settings); a failing expectation is an
/// `Ok` outcome with `failure` set.
pub fn run_script(
    script: &Script,
    seed_override: Option<u64>,
    trace: Trace,
) -> Result<(ScenarioOutcome, Trace), String> {
    let config = run_config(&script.cluster, seed_override)
        .map_err(|e| format!("{}:{}: {e}", script.file, script.cluster_span.line))?;
    let seed = config.seed;
    let generate = script.cluster.workload.unwrap_or(false);
    let mut sim = Sim::new(config, trace)?;
    sim.workload_mut().set_generating(generate);
    sim.record_applied_counts();
    let mut interp = Interp {
        sim,
        rng: stream(seed, Stream::Scenario),
        aliases: BTreeMap::new(),
        marks: BTreeMap::new(),
        printed: Vec::new(),
        executed: 0,
        expects_not_linearizable: contains_not_linearizable(&script.commands),
    };
    let mut failure = interp.exec_block(&script.commands).err();
    if failure.is_none() {
        // Every scenario ends with the history checked for linearizability.
        let verdict = interp.sim.linearizability_verdict();
        if let Verdict::NotLinearizable { key, .. } = &verdict {
            if !interp.expects_not_linearizable {
                failure = Some(ScenarioFailure {
                    line: script.cluster_span.line,
                    text: "(end of scenario: linearizability of the client history)".into(),
                    tick: interp.sim.cluster().now(),
                    message: format!("the history is not linearizable (key {key:?})"),
                    property: Some(crate::run::LINEARIZABILITY.to_string()),
                });
            }
        }
    }
    if let Some(f) = &failure {
        let text = format!("{}:{}: {} — {}", script.file, f.line, f.text, f.message);
        interp
            .sim
            .cluster_mut()
            .record(&TraceEvent::Violation { text: &text });
    }
    let Interp { sim, printed, .. } = interp;
    let history = sim.history().to_vec();
    let verdict = sim.linearizability_verdict();
    let (report, trace) = sim.finish(None, Some(verdict));
    Ok((
        ScenarioOutcome {
            seed,
            failure,
            printed,
            report,
            history,
        },
        trace,
    ))
}

fn contains_not_linearizable(commands: &[Spanned]) -> bool {
    commands.iter().any(|c| match &c.command {
        Command::Expect(Expectation::Linearizable(false)) => true,
        Command::Repeat { body, .. } => contains_not_linearizable(body),
        _ => false,
    })
}

impl Interp {
    fn exec_block(&mut self, commands: &[Spanned]) -> Result<(), ScenarioFailure> {
        for spanned in commands {
            self.executed += 1;
            let result = if self.executed > COMMANDS_EXECUTED_MAX {
                Err(Stop::Failed(format!(
                    "more than {COMMANDS_EXECUTED_MAX} commands executed; is a repeat too large?"
                )))
            } else {
                self.exec(spanned)
            };
            if let Err(stop) = result {
                let (message, property) = match stop {
                    Stop::Failed(m) => (m, None),
                    Stop::Checker(f) => (
                        format!("checker failed during this command: {f}"),
                        Some(f.property().to_string()),
                    ),
                    Stop::Nested(inner) => (
                        format!(
                            "inside the repeat, line {}: {} — {}",
                            inner.line, inner.text, inner.message
                        ),
                        inner.property,
                    ),
                };
                return Err(ScenarioFailure {
                    line: spanned.span.line,
                    text: spanned.text.clone(),
                    tick: self.sim.cluster().now(),
                    message,
                    property,
                });
            }
        }
        Ok(())
    }

    fn now(&self) -> Tick {
        self.sim.cluster().now()
    }

    fn checked(&mut self, r: Result<(), Failure>) -> Result<(), Stop> {
        r.map_err(Stop::Checker)?;
        match self.sim.failure() {
            Some(f) => Err(Stop::Checker(f.clone())),
            None => Ok(()),
        }
    }

    fn exec(&mut self, spanned: &Spanned) -> Result<(), Stop> {
        match &spanned.command {
            Command::Run { ticks } => {
                let until = self.now() + ticks;
                let r = self.sim.run_until(until);
                self.checked(r)
            }
            Command::Advance { ticks } => {
                let until = self.now() + ticks;
                let r = self.sim.run_before(until);
                self.checked(r)
            }
            Command::RunUntil {
                condition,
                within_ticks,
            } => {
                let deadline = self.now() + within_ticks;
                let start = self.now();
                // Resolve node references once, up front, so `leader not old` means the node
                // `old` named when the command started.
                let condition = self.resolve_condition(condition)?;
                let reached = self.sim.run_while(deadline, |sim| condition.holds(sim));
                match reached {
                    Ok(true) => {
                        self.checked(Ok(()))?;
                        Ok(())
                    }
                    Ok(false) => Err(Stop::Failed(format!(
                        "condition not reached within {within_ticks} ticks (from t={start}); \
                         now: {}",
                        self.describe_state()
                    ))),
                    Err(f) => Err(Stop::Checker(f)),
                }
            }
            Command::Crash { node, torn } => {
                let id = self.resolve(node)?;
                let action = if *torn {
                    FaultAction::CrashTorn(id)
                } else {
                    FaultAction::Crash(id)
                };
                self.fault(action)
            }
            Command::Restart(node) => {
                let id = self.resolve(node)?;
                self.fault(FaultAction::Restart(id))
            }
            Command::Pause(node) => {
                let id = self.resolve(node)?;
                self.fault(FaultAction::Pause(id))
            }
            Command::Resume(node) => {
                let id = self.resolve(node)?;
                self.fault(FaultAction::Resume(id))
            }
            Command::Isolate(node) => {
                let id = self.resolve(node)?;
                self.fault(FaultAction::Partition(vec![vec![id]]))
            }
            Command::Partition(groups) => {
                let mut resolved = Vec::with_capacity(groups.len());
                for g in groups {
                    let mut ids = Vec::with_capacity(g.len());
                    for r in g {
                        ids.push(self.resolve(r)?);
                    }
                    resolved.push(ids);
                }
                // The last group is "the rest": name every group but the last.
                let mut named = resolved.clone();
                let last = named.pop().unwrap_or_default();
                let all: Vec<NodeId> = resolved.iter().flatten().copied().collect();
                for id in 1..=self.sim.cluster().nodes_count() {
                    if !all.contains(&id) {
                        return Err(Stop::Failed(format!(
                            "partition leaves n{id} out; name every node in some group"
                        )));
                    }
                }
                let _ = last;
                self.fault(FaultAction::Partition(named))
            }
            Command::Cut { from, to } => {
                let (a, b) = (self.resolve(from)?, self.resolve(to)?);
                self.fault(FaultAction::Cut(a, b))
            }
            Command::Heal => self.fault(FaultAction::Heal),
            Command::Net(settings) => {
                let mut config = self.sim.cluster().network().config().clone();
                if let Some(p) = settings.loss {
                    config.loss_probability = p;
                }
                if let Some(p) = settings.dup {
                    config.duplicate_probability = p;
                }
                if let Some(p) = settings.corrupt {
                    config.corrupt_probability = p;
                }
                if let Some((a, b)) = settings.delay_ticks {
                    config.delay_ticks_min = a;
                    config.delay_ticks_max = b;
                }
                config.validate()?;
                let text = format!(
                    "net loss={} dup={} corrupt={} delay={}..{}",
                    config.loss_probability,
                    config.duplicate_probability,
                    config.corrupt_probability,
                    config.delay_ticks_min,
                    config.delay_ticks_max
                );
                self.sim.cluster_mut().set_network_config(config);
                self.sim
                    .cluster_mut()
                    .record(&TraceEvent::Fault { text: &text });
                Ok(())
            }
            Command::Rot(node) => {
                let id = self.resolve(node)?;
                self.fault(FaultAction::Rot(id))
            }
            Command::Drift { node, ppm } => {
                let id = self.resolve(node)?;
                self.fault(FaultAction::Drift(id, *ppm))
            }
            Command::Let { name, node } => {
                let id = self.resolve(node)?;
                self.aliases.insert(name.clone(), id);
                Ok(())
            }
            Command::Repeat { count, body } => {
                for _ in 0..*count {
                    self.exec_block(body).map_err(Stop::Nested)?;
                }
                Ok(())
            }
            Command::Client(op) => self.client(op),
            Command::Expect(e) => self.expect(e),
            Command::Mark(label) => {
                let counts = self.message_counts();
                self.marks.insert(label.clone(), counts);
                self.sim
                    .cluster_mut()
                    .record(&TraceEvent::Mark { text: label });
                Ok(())
            }
            Command::PrintLatency { client } => {
                let latency = self
                    .sim
                    .history()
                    .iter()
                    .rev()
                    .find(|op| op.client == u64::from(*client))
                    .and_then(|op| {
                        op.complete_tick
                            .map(|c| (op.op.clone(), c - op.invoke_tick))
                    });
                let line = match latency {
                    Some((op, ticks)) => format!("c{client} {op}: latency {ticks} ticks"),
                    None => format!("c{client}: no completed operation"),
                };
                self.print(line);
                Ok(())
            }
            Command::Print(text) => {
                self.print(text.clone());
                Ok(())
            }
            Command::PrintStat(name) => {
                let value = self.stat(name)?;
                self.print(format!("{name} = {value}"));
                Ok(())
            }
            Command::Liveness { within_ticks } => {
                let r = self.sim.run_liveness_within(*within_ticks);
                match r {
                    Ok(ticks) => {
                        self.print(format!("healed: converged in {ticks} ticks"));
                        Ok(())
                    }
                    Err(f) => Err(Stop::Checker(f)),
                }
            }
        }
    }

    fn print(&mut self, line: String) {
        let text = format!("print {line}");
        self.sim
            .cluster_mut()
            .record(&TraceEvent::Mark { text: &text });
        self.printed.push(line);
    }

    fn fault(&mut self, action: FaultAction) -> Result<(), Stop> {
        self.sim.apply_fault(&action)?;
        self.checked(Ok(()))
    }

    fn message_counts(&self) -> BTreeMap<String, u64> {
        self.sim
            .cluster()
            .messages_sent_by_kind()
            .iter()
            .map(|(k, v)| (k.to_string(), *v))
            .collect()
    }

    fn describe_state(&self) -> String {
        let c = self.sim.cluster();
        let mut parts = Vec::new();
        for id in 1..=c.nodes_count() {
            match c.node(id) {
                None => parts.push(format!("n{id} down")),
                Some(n) => parts.push(format!(
                    "n{id} {} term={} commit={}{}",
                    n.role(),
                    n.term(),
                    n.commit_index(),
                    if c.is_paused(id) { " paused" } else { "" }
                )),
            }
        }
        parts.join(", ")
    }

    // ----- node references -----

    fn stable_leader(&self) -> Option<NodeId> {
        self.sim.stable_leader()
    }

    fn resolve(&mut self, r: &NodeRef) -> Result<NodeId, String> {
        let n = self.sim.cluster().nodes_count();
        match r {
            NodeRef::Id(id) => {
                if *id == 0 || *id > n {
                    Err(format!("no node n{id}: the cluster has n1..n{n}"))
                } else {
                    Ok(*id)
                }
            }
            NodeRef::Leader => self.stable_leader().ok_or_else(|| {
                format!(
                    "`leader`: there is no single leader now ({})",
                    self.describe_state()
                )
            }),
            NodeRef::Follower => (1..=n)
                .find(|&id| {
                    self.sim
                        .cluster()
                        .node(id)
                        .is_some_and(|node| node.role() == Role::Follower)
                        && !self.sim.cluster().is_paused(id)
                })
                .ok_or_else(|| {
                    format!(
                        "`follower`: no running follower ({})",
                        self.describe_state()
                    )
                }),
            NodeRef::Random => Ok(self.rng.gen_range(1..=n)),
            NodeRef::RandomLive => {
                let live: Vec<NodeId> = (1..=n)
                    .filter(|&id| self.sim.cluster().is_up(id) && !self.sim.cluster().is_paused(id))
                    .collect();
                if live.is_empty() {
                    return Err("`random live`: every node is down or paused".into());
                }
                Ok(live[self.rng.gen_range(0..live.len())])
            }
            NodeRef::Alias(name) => self
                .aliases
                .get(name)
                .copied()
                .ok_or_else(|| format!("`{name}` is not bound (use `let {name} = ...` first)")),
        }
    }

    fn resolve_set(&mut self, set: &NodeSet) -> Result<Vec<NodeId>, String> {
        match set {
            NodeSet::All => Ok((1..=self.sim.cluster().nodes_count()).collect()),
            NodeSet::List(refs) => refs.iter().map(|r| self.resolve(r)).collect(),
        }
    }

    fn resolve_condition(&mut self, c: &Condition) -> Result<Resolved, String> {
        Ok(match c {
            Condition::Leader => Resolved::Leader,
            Condition::LeaderIs { node, is } => Resolved::LeaderIs(self.resolve(node)?, *is),
            Condition::NoLeader => Resolved::NoLeader,
            Condition::Committed { index, nodes } => Resolved::Committed(*index, *nodes),
            Condition::Applied => Resolved::Applied,
            Condition::Quiet => Resolved::Quiet,
            Condition::ClientDone { client } => {
                self.check_client(*client)?;
                Resolved::ClientDone(*client)
            }
            Condition::Role { node, role } => Resolved::Role(self.resolve(node)?, *role),
        })
    }

    fn check_client(&self, client: u32) -> Result<(), String> {
        let count = self.sim.config().workload.clients_count;
        if client == 0 || client > count {
            return Err(format!(
                "no client c{client}: the scenario has c1..c{count} (cluster clients=N)"
            ));
        }
        Ok(())
    }

    // ----- clients -----

    fn client(&mut self, op: &ClientOp) -> Result<(), Stop> {
        self.check_client(op.client)?;
        let to = match &op.to {
            Some(r) => Some(self.resolve(r)?),
            None => None,
        };
        self.sim.submit(op.client, op.op.clone(), op.seq, to)?;
        Ok(())
    }

    // ----- expectations -----

    fn expect(&mut self, e: &Expectation) -> Result<(), Stop> {
        let fail = |s: String| Err(Stop::Failed(s));
        match e {
            Expectation::LeaderIs(node) => {
                let want = self.resolve(node)?;
                match self.stable_leader() {
                    Some(l) if l == want => Ok(()),
                    Some(l) => fail(format!(
                        "expected leader n{want}, the leader is n{l} (term {})",
                        self.sim.cluster().node(l).map_or(0, |n| n.term())
                    )),
                    None => fail(format!(
                        "expected leader n{want}, there is no single leader ({})",
                        self.describe_state()
                    )),
                }
            }
            Expectation::LeaderCount(cmp, count) => {
                let leaders = self.sim.cluster().leaders();
                if cmp.holds(leaders.len() as u64, u64::from(*count)) {
                    Ok(())
                } else {
                    fail(format!(
                        "expected leaders {} {count}, found {} ({leaders:?})",
                        cmp.symbol(),
                        leaders.len()
                    ))
                }
            }
            Expectation::NoLeaderAmong(set) => {
                let ids = self.resolve_set(set)?;
                let leaders: Vec<NodeId> = self
                    .sim
                    .cluster()
                    .leaders()
                    .into_iter()
                    .filter(|l| ids.contains(l))
                    .collect();
                if leaders.is_empty() {
                    Ok(())
                } else {
                    fail(format!(
                        "expected no leader among {ids:?}, found {leaders:?}"
                    ))
                }
            }
            Expectation::Term(node, cmp, term) => {
                let id = self.resolve(node)?;
                let Some(n) = self.sim.cluster().node(id) else {
                    return fail(format!("n{id} is down"));
                };
                if cmp.holds(n.term(), *term) {
                    Ok(())
                } else {
                    fail(format!(
                        "expected term of n{id} {} {term}, it is {}",
                        cmp.symbol(),
                        n.term()
                    ))
                }
            }
            Expectation::Role(node, role) => {
                let id = self.resolve(node)?;
                match self.sim.cluster().node(id) {
                    Some(n) if n.role() == *role => Ok(()),
                    Some(n) => fail(format!(
                        "expected n{id} {role}, it is {} (term {})",
                        n.role(),
                        n.term()
                    )),
                    None => fail(format!("expected n{id} {role}, it is down")),
                }
            }
            Expectation::Vote(node, want) => {
                let id = self.resolve(node)?;
                let want = match want {
                    Some(r) => Some(self.resolve(r)?),
                    None => None,
                };
                let Some(n) = self.sim.cluster().node(id) else {
                    return fail(format!("n{id} is down"));
                };
                let view = n.view();
                if view.voted_for == want {
                    Ok(())
                } else {
                    let show =
                        |v: Option<NodeId>| v.map_or("none".to_string(), |n| format!("n{n}"));
                    fail(format!(
                        "expected n{id} to hold a vote for {} in term {}, it holds {}",
                        show(want),
                        view.term,
                        show(view.voted_for)
                    ))
                }
            }
            Expectation::Value { key, value, nodes } => {
                let ids = self.resolve_set(nodes)?;
                for id in ids {
                    let Some(n) = self.sim.cluster().node(id) else {
                        return fail(format!("n{id} is down"));
                    };
                    let got = n.kv().get(key);
                    if got != value.as_deref() {
                        return fail(format!(
                            "expected {key}={} on n{id}, found {}",
                            value.as_deref().unwrap_or("-"),
                            got.unwrap_or("-")
                        ));
                    }
                }
                Ok(())
            }
            Expectation::Committed { index, nodes, yes } => {
                let count = self.committed_on(*index);
                let holds = count >= *nodes;
                if holds == *yes {
                    Ok(())
                } else {
                    fail(format!(
                        "expected index {index} {}committed on {nodes} nodes; it is committed on \
                         {count} ({})",
                        if *yes { "" } else { "not " },
                        self.describe_state()
                    ))
                }
            }
            Expectation::Reply { client, kind } => {
                self.check_client(*client)?;
                let last = self.sim.workload().last_response(*client).cloned();
                let ok = match (kind, &last) {
                    (ReplyKind::Nothing, None) => true,
                    (ReplyKind::Nothing, Some(_)) | (_, None) => false,
                    (ReplyKind::Ok { value }, Some(ClientResponse::Ok { result })) => match value {
                        None => true,
                        Some(None) => *result == OpResult::NotFound,
                        Some(Some(v)) => *result == OpResult::Value(v.clone()),
                    },
                    (ReplyKind::Duplicate, Some(ClientResponse::Duplicate { .. })) => true,
                    (ReplyKind::Gap, Some(ClientResponse::Gap { .. })) => true,
                    (ReplyKind::SessionExpired, Some(ClientResponse::SessionExpired)) => true,
                    (ReplyKind::Overloaded, Some(ClientResponse::Overloaded)) => true,
                    (
                        ReplyKind::NotLeader { hint },
                        Some(ClientResponse::NotLeader { leader_hint }),
                    ) => match hint {
                        None => true,
                        Some(None) => leader_hint.is_none(),
                        Some(Some(r)) => {
                            let want = self.resolve(r)?;
                            *leader_hint == Some(want)
                        }
                    },
                    _ => false,
                };
                if ok {
                    Ok(())
                } else {
                    fail(format!(
                        "expected c{client}'s last reply {}, got {}",
                        reply_kind_text(kind),
                        last.map_or("no reply".to_string(), |r| r.to_string())
                    ))
                }
            }
            Expectation::Messages {
                kind,
                cmp,
                count,
                since,
            } => {
                let now_count = self.sim.cluster().messages_sent_of_kind(kind);
                let base = match since {
                    None => 0,
                    Some(label) => match self.marks.get(label) {
                        Some(counts) => counts.get(kind.as_str()).copied().unwrap_or(0),
                        None => return fail(format!("no mark \"{label}\" before this line")),
                    },
                };
                let n = now_count - base;
                if cmp.holds(n, *count) {
                    Ok(())
                } else {
                    fail(format!(
                        "expected {kind} messages {} {count}{}, counted {n}",
                        cmp.symbol(),
                        since
                            .as_ref()
                            .map_or(String::new(), |l| format!(" since \"{l}\""))
                    ))
                }
            }
            Expectation::AppliedTimes {
                client,
                seq,
                cmp,
                times,
            } => {
                self.check_client(*client)?;
                let client_id = self.sim.workload().client_id(*client).unwrap_or(0);
                for id in 1..=self.sim.cluster().nodes_count() {
                    if !self.sim.cluster().is_up(id) {
                        continue;
                    }
                    let n = self.sim.applied_count(id, client_id, *seq);
                    if !cmp.holds(n, *times) {
                        return fail(format!(
                            "expected c{client}#{seq} applied {} {times} times on n{id}, it was \
                             applied {n} times",
                            cmp.symbol()
                        ));
                    }
                }
                Ok(())
            }
            Expectation::Linearizable(want) => {
                let verdict = self.sim.linearizability_verdict();
                let is = match &verdict {
                    Verdict::Linearizable => true,
                    Verdict::NotLinearizable { .. } => false,
                    Verdict::Unknown { key, .. } => {
                        return fail(format!(
                            "linearizability unknown: the search budget ran out on key {key:?}"
                        ))
                    }
                };
                if is == *want {
                    Ok(())
                } else {
                    fail(format!(
                        "expected the history {}linearizable, it is {}",
                        if *want { "" } else { "not " },
                        if is {
                            "linearizable"
                        } else {
                            "not linearizable"
                        }
                    ))
                }
            }
            Expectation::CheckersOk => self.checked(Ok(())),
            Expectation::Note { node, text } => {
                let node = match node {
                    Some(r) => Some(self.resolve(r)?),
                    None => None,
                };
                let found = self.sim.cluster().notes().iter().any(|(_, n, t)| {
                    node.is_none_or(|want| want == *n) && t.contains(text.as_str())
                });
                if found {
                    Ok(())
                } else {
                    fail(format!(
                        "no note containing \"{text}\"{}; the latest: {:?}",
                        node.map_or(String::new(), |n| format!(" from n{n}")),
                        self.sim
                            .cluster()
                            .notes()
                            .iter()
                            .rev()
                            .take(3)
                            .map(|(t, n, s)| format!("t={t} n{n} {s}"))
                            .collect::<Vec<_>>()
                    ))
                }
            }
            Expectation::Stat { name, cmp, value } => {
                let got = self.stat(name)?;
                if cmp.holds(got, *value) {
                    Ok(())
                } else {
                    fail(format!(
                        "expected {name} {} {value}, it is {got}",
                        cmp.symbol()
                    ))
                }
            }
            Expectation::Converged => {
                let mut digests = Vec::new();
                for id in 1..=self.sim.cluster().nodes_count() {
                    if let Some(n) = self.sim.cluster().node(id) {
                        digests.push((id, n.kv().digest()));
                    }
                }
                if digests.windows(2).all(|w| w[0].1 == w[1].1) {
                    Ok(())
                } else {
                    fail(format!("stores differ between nodes: {digests:x?}"))
                }
            }
        }
    }

    /// A run counter by name (for `expect stat` and `print stat`).
    fn stat(&self, name: &str) -> Result<u64, String> {
        let c = self.sim.cluster().stats();
        let w = self.sim.workload().stats();
        Ok(match name {
            "ticks" => self.now(),
            "events" => c.events,
            "commits" => c.commits,
            "elections" => c.elections,
            "leaders-elected" => c.leaders_elected,
            "messages-sent" => c.messages_sent,
            "messages-dropped" => c.messages_dropped,
            "messages-duplicated" => c.messages_duplicated,
            "messages-corrupted" => c.messages_corrupted,
            "corrupt-rejected" => c.corrupt_rejected,
            "duplicates-applied" => c.duplicates_applied,
            "crashes" => c.crashes,
            "restarts" => c.restarts,
            "torn-writes-recovered" => c.torn_writes_recovered,
            "corruption-detected" => c.corruption_detected,
            "lease-reads" => c.lease_reads,
            "snapshots-taken" => c.snapshots_taken,
            "snapshots-installed" => c.snapshots_installed,
            "disk-bytes-max" => c.disk_bytes_max,
            "ops-ok" => w.ops_ok,
            "ops-fail" => w.ops_fail,
            "ops-info" => w.ops_info,
            "retries" => w.retries,
            "timeouts" => w.timeouts,
            "redirects" => w.redirects_followed,
            _ => {
                return Err(format!(
                    "unknown counter `{name}`; known: ticks, events, commits, elections, \
                     leaders-elected, messages-sent, messages-dropped, messages-duplicated, \
                     messages-corrupted, corrupt-rejected, duplicates-applied, crashes, restarts, \
                     torn-writes-recovered, corruption-detected, lease-reads, snapshots-taken, \
                     snapshots-installed, disk-bytes-max, ops-ok, ops-fail, ops-info, retries, \
                     timeouts, redirects"
                ))
            }
        })
    }

    fn committed_on(&self, index: u64) -> u32 {
        (1..=self.sim.cluster().nodes_count())
            .filter(|&id| {
                self.sim
                    .cluster()
                    .node(id)
                    .is_some_and(|n| n.commit_index() >= index)
            })
            .count() as u32
    }
}

fn reply_kind_text(kind: &ReplyKind) -> String {
    match kind {
        ReplyKind::Ok { value: None } => "ok".into(),
        ReplyKind::Ok { value: Some(None) } => "ok value=-".into(),
        ReplyKind::Ok {
            value: Some(Some(v)),
        } => format!("ok value={v}"),
        ReplyKind::Duplicate => "duplicate".into(),
        ReplyKind::Gap => "gap".into(),
        ReplyKind::NotLeader { hint: None } => "not-leader".into(),
        ReplyKind::NotLeader { hint: Some(None) } => "not-leader hint=none".into(),
        ReplyKind::NotLeader {
            hint: Some(Some(r)),
        } => format!("not-leader hint={r:?}"),
        ReplyKind::SessionExpired => "session-expired".into(),
        ReplyKind::Overloaded => "overloaded".into(),
        ReplyKind::Nothing => "none".into(),
    }
}

/// A condition with its node references resolved.
enum Resolved {
    Leader,
    LeaderIs(NodeId, bool),
    NoLeader,
    Committed(u64, u32),
    Applied,
    Quiet,
    ClientDone(u32),
    Role(NodeId, Role),
}

impl Resolved {
    fn holds(&self, sim: &Sim) -> bool {
        let c = sim.cluster();
        match self {
            Resolved::Leader => sim.has_stable_leader(),
            Resolved::LeaderIs(id, is) => sim.stable_leader().is_some_and(|l| (l == *id) == *is),
            Resolved::NoLeader => c.leaders().is_empty(),
            Resolved::Committed(index, nodes) => {
                (1..=c.nodes_count())
                    .filter(|&id| c.node(id).is_some_and(|n| n.commit_index() >= *index))
                    .count() as u32
                    >= *nodes
            }
            Resolved::Applied => {
                let max_commit = (1..=c.nodes_count())
                    .filter_map(|id| c.node(id).map(|n| n.commit_index()))
                    .max()
                    .unwrap_or(0);
                (1..=c.nodes_count())
                    .filter_map(|id| c.node(id))
                    .all(|n| n.applied_index() >= max_commit)
            }
            Resolved::Quiet => sim.workload().pending_count() == 0,
            Resolved::ClientDone(client) => !sim
                .history()
                .iter()
                .any(|op| op.client == u64::from(*client) && op.complete_tick.is_none()),
            Resolved::Role(id, role) => c.node(*id).is_some_and(|n| n.role() == *role),
        }
    }
}
