//! Shrinking: turn a failing seed into a short scenario script that still fails the same way.
//!
//! 1. Run the seed and keep what happened to the cluster: every fault action with its tick.
//! 2. Write that as a script: a `cluster` line with every setting of the run (clients keep
//!    generating their operations from the seed, `workload=on`), then `advance N ticks` /
//!    fault lines in time order, then the heal phase (`heal-all within N ticks`).
//! 3. Check that the script fails with the same property. (`advance` puts a fault first in its
//!    tick, where the original run applied it wherever its timer fell among that tick's events,
//!    so a schedule can drift; a failure that does not survive that is reported, not faked.)
//! 4. Minimize while the same property still fails: drop the fault phase after the failure,
//!    remove faults by delta debugging (halves, then quarters, ... down to one), first whole
//!    faults (a crash with its restart, a partition with its heal), then single lines; then try
//!    plainer settings one at a time — no loss, no duplication, no corruption, fixed delays,
//!    fewer clients, fewer keys, no torn writes, no gaps, clients outside partitions, default
//!    read share, client timeout and AppendEntries size.
//!
//! Every candidate is a full run through the scenario interpreter, so what comes out is exactly
//! what `raftsim run` will replay.

use std::fmt::Write as _;

use raftsim_protocol::types::{NodeId, Tick};

use crate::cli::{ProtocolArg, SimArgs};
use crate::cluster::FaultAction;
use crate::run::run;
use crate::scenario::{parse, run_script};
use crate::trace::Trace;

/// Bound on candidate runs during minimization.
pub const SHRINK_RUNS_MAX_DEFAULT: usize = 300;

/// A failing run, reduced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shrunk {
    /// The script.
    pub script: String,
    /// The property that fails.
    pub property: String,
    /// Fault actions in the original run.
    pub faults_before: usize,
    /// Fault actions left in the script.
    pub faults_after: usize,
    /// Candidate runs tried.
    pub runs: usize,
}

/// What a candidate script is made of.
#[derive(Debug, Clone)]
struct Candidate {
    args: SimArgs,
    faults: Vec<(Tick, FaultAction)>,
    /// End of the fault phase.
    ticks: Tick,
}

fn node_list(nodes: &[NodeId]) -> String {
    nodes
        .iter()
        .map(|n| format!("n{n}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// The script command for a fault action.
pub fn fault_line(action: &FaultAction, nodes_count: u32) -> String {
    match action {
        FaultAction::Crash(n) => format!("crash n{n}"),
        FaultAction::CrashTorn(n) => format!("crash n{n} torn"),
        FaultAction::Restart(n) => format!("restart n{n}"),
        FaultAction::Pause(n) => format!("pause n{n}"),
        FaultAction::Resume(n) => format!("resume n{n}"),
        FaultAction::Partition(groups) => {
            let mut parts: Vec<String> = groups.iter().map(|g| node_list(g)).collect();
            let named: Vec<NodeId> = groups.iter().flatten().copied().collect();
            let rest: Vec<NodeId> = (1..=nodes_count).filter(|n| !named.contains(n)).collect();
            if !rest.is_empty() {
                parts.push(node_list(&rest));
            }
            format!("partition {}", parts.join(" | "))
        }
        FaultAction::Cut(a, b) => format!("cut n{a}->n{b}"),
        FaultAction::Heal => "heal".to_string(),
        FaultAction::Rot(n) => format!("rot n{n}"),
        FaultAction::Drift(n, ppm) => format!("drift n{n} {ppm}"),
    }
}

fn on_off(b: bool) -> &'static str {
    if b {
        "on"
    } else {
        "off"
    }
}

/// The `cluster` line that reproduces a run's settings.
fn cluster_line(args: &SimArgs) -> String {
    let mut s = String::from("cluster");
    let _ = write!(
        s,
        " protocol={} nodes={} seed={}",
        args.protocol, args.nodes, args.seed
    );
    match args.protocol {
        ProtocolArg::Raft => {
            let _ = write!(
                s,
                " election={}..{} heartbeat={} lease={} pre-vote={} check-quorum={} lease-reads={}",
                args.election_min,
                args.election_max,
                args.heartbeat,
                args.lease,
                on_off(args.pre_vote),
                on_off(args.check_quorum || args.lease_reads),
                on_off(args.lease_reads)
            );
            let _ = write!(
                s,
                " snapshot-every={} snapshot-chunk={} append-max={}",
                args.snapshot_every, args.snapshot_chunk, args.append_max
            );
        }
        ProtocolArg::Replication => {
            let quorum = args.quorum.unwrap_or(args.nodes / 2 + 1);
            let _ = write!(
                s,
                " heartbeat={} quorum={quorum} keepalive={} pipeline={} read-from-follower={} \
                 retain={}",
                args.heartbeat,
                args.keepalive,
                on_off(!args.sequential),
                on_off(args.read_from_follower),
                args.retain
            );
        }
    }
    let _ = write!(
        s,
        " clients={} keys={} workload=on delay={}..{} loss={} dup={} corrupt={} sync={} \
         torn-writes={} timeout={}",
        args.clients,
        args.keys,
        args.delay_min,
        args.delay_max,
        args.loss,
        args.dup,
        args.corrupt,
        args.sync_ticks,
        on_off(args.torn_writes),
        args.client_timeout
    );
    if args.reads != 30 {
        let _ = write!(s, " reads={}", args.reads);
    }
    if args.client_partitions {
        s.push_str(" client-partitions=on");
    }
    if args.client_gaps > 0.0 {
        let _ = write!(s, " client-gaps={}", args.client_gaps);
    }
    if let Some(bug) = raftsim_protocol::planted::planted() {
        let _ = write!(s, " plant={}", bug.name());
    }
    s
}

fn render(c: &Candidate, property: &str, origin: &str) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# Shrunk failure: {property}.");
    let _ = writeln!(s, "#");
    let _ = writeln!(s, "# Found by: {origin}");
    let _ = writeln!(
        s,
        "# Method: the seed's own clients and timers, with only the fault actions below; then the"
    );
    let _ = writeln!(s, "# heal phase. `raftsim shrink` wrote this file.");
    let _ = writeln!(s, "{}", cluster_line(&c.args));
    let mut cursor: Tick = 0;
    for (tick, action) in &c.faults {
        if *tick > c.ticks {
            break;
        }
        if *tick > cursor {
            let _ = writeln!(s, "advance {} ticks", tick - cursor);
            cursor = *tick;
        }
        let _ = writeln!(s, "{}", fault_line(action, c.args.nodes));
    }
    if c.ticks > cursor {
        let _ = writeln!(s, "run {} ticks", c.ticks - cursor);
    }
    let _ = writeln!(s, "heal-all within {} ticks", c.args.liveness_ticks);
    s
}

struct Shrinker {
    property: String,
    origin: String,
    runs: usize,
    runs_max: usize,
}

impl Shrinker {
    /// Whether the candidate's script fails with the property (and the failure tick).
    fn fails(&mut self, c: &Candidate) -> Option<Tick> {
        if self.runs >= self.runs_max {
            return None;
        }
        self.runs += 1;
        let text = render(c, &self.property, &self.origin);
        let script = parse("shrink.scn", &text).ok()?;
        let (outcome, _) = run_script(&script, None, Trace::off()).ok()?;
        let f = outcome.failure?;
        (f.property.as_deref() == Some(self.property.as_str())).then_some(f.tick)
    }
}

/// Group fault lines into units: each line that starts a fault with the first later line that
/// ends it (restart, resume, heal); everything else alone. Returns each unit's line indices.
fn fault_units(faults: &[(Tick, FaultAction)]) -> Vec<Vec<usize>> {
    let mut units: Vec<Vec<usize>> = Vec::new();
    let mut taken = vec![false; faults.len()];
    for i in 0..faults.len() {
        if taken[i] {
            continue;
        }
        taken[i] = true;
        let ends = |a: &FaultAction| -> bool {
            match (&faults[i].1, a) {
                (FaultAction::Crash(n) | FaultAction::CrashTorn(n), FaultAction::Restart(m)) => {
                    n == m
                }
                (FaultAction::Pause(n), FaultAction::Resume(m)) => n == m,
                (FaultAction::Partition(_) | FaultAction::Cut(..), FaultAction::Heal) => true,
                _ => false,
            }
        };
        let end = (i + 1..faults.len()).find(|&j| !taken[j] && ends(&faults[j].1));
        match end {
            Some(j) => {
                taken[j] = true;
                units.push(vec![i, j]);
            }
            None => units.push(vec![i]),
        }
    }
    units
}

/// Delta debugging: remove chunks of units (whole faults when `paired`, else single lines)
/// while the property still fails, halving the chunk size down to one.
fn ddmin(
    shrinker: &mut Shrinker,
    mut best: Candidate,
    mut failed_at: Tick,
    paired: bool,
) -> (Candidate, Tick) {
    let units_of = |c: &Candidate| -> Vec<Vec<usize>> {
        if paired {
            fault_units(&c.faults)
        } else {
            (0..c.faults.len()).map(|i| vec![i]).collect()
        }
    };
    let mut chunk = units_of(&best).len().div_ceil(2).max(1);
    loop {
        let mut start = 0;
        let mut removed_any = false;
        loop {
            let units = units_of(&best);
            if start >= units.len() || shrinker.runs >= shrinker.runs_max {
                break;
            }
            let end = (start + chunk).min(units.len());
            let mut drop = vec![false; best.faults.len()];
            for unit in &units[start..end] {
                for &i in unit {
                    drop[i] = true;
                }
            }
            let mut c = best.clone();
            let mut index = 0;
            c.faults.retain(|_| {
                index += 1;
                !drop[index - 1]
            });
            match shrinker.fails(&c) {
                Some(t) => {
                    best = c;
                    failed_at = t;
                    removed_any = true;
                }
                None => start += chunk,
            }
        }
        if shrinker.runs >= shrinker.runs_max || best.faults.is_empty() {
            break;
        }
        if chunk == 1 {
            if !removed_any {
                break;
            }
        } else {
            chunk /= 2;
        }
    }
    (best, failed_at)
}

/// Shrink a failing seed into a script. `Err` says why it cannot (the seed passes, or the
/// failure does not reproduce as a script).
pub fn shrink(args: &SimArgs, runs_max: usize) -> Result<Shrunk, String> {
    let config = args.to_config()?;
    let (report, _) = run(config, Trace::off())?;
    let Some(property) = report.failed_property.clone() else {
        return Err(format!(
            "seed {} passes every check: nothing to shrink",
            args.seed
        ));
    };
    let mut shrinker = Shrinker {
        property: property.clone(),
        origin: args.replay_command(),
        runs: 0,
        runs_max,
    };
    let faults_before = report.faults_applied.len();
    let mut best = Candidate {
        args: args.clone(),
        faults: report.faults_applied.clone(),
        ticks: args.ticks,
    };
    let Some(mut failed_at) = shrinker.fails(&best) else {
        return Err(format!(
            "{property} at t={} does not reproduce as a script: applying the faults after the \
             events of their tick changed the schedule (try `raftsim replay`)",
            report.failure_tick.unwrap_or(0)
        ));
    };
    // The fault phase need not outlast the failure.
    if failed_at < best.ticks {
        let mut c = best.clone();
        c.ticks = failed_at;
        c.faults.retain(|(t, _)| *t <= failed_at);
        if let Some(t) = shrinker.fails(&c) {
            best = c;
            failed_at = t;
        }
    }
    // Delta debugging, first over whole faults (a crash with its restart, a pause with its
    // resume, a partition or cut with the heal that ends it: removing half of a pair makes a
    // script that cannot run, such as a restart of a node that is up), then over single lines.
    let (b, t) = ddmin(&mut shrinker, best, failed_at, true);
    best = b;
    failed_at = t;
    let (b, t) = ddmin(&mut shrinker, best, failed_at, false);
    best = b;
    failed_at = t;
    // Plainer settings, one at a time.
    let simplifications: Vec<fn(&mut SimArgs) -> bool> = vec![
        |a| std::mem::replace(&mut a.corrupt, 0.0) != 0.0,
        |a| std::mem::replace(&mut a.dup, 0.0) != 0.0,
        |a| std::mem::replace(&mut a.loss, 0.0) != 0.0,
        |a| {
            let changed = a.delay_max != a.delay_min;
            a.delay_max = a.delay_min;
            changed
        },
        |a| {
            let changed = a.clients > 1;
            a.clients = (a.clients / 2).max(1);
            changed
        },
        |a| {
            let changed = a.clients > 1;
            a.clients = 1;
            changed
        },
        |a| {
            let changed = a.keys > 1;
            a.keys = 1;
            changed
        },
        |a| std::mem::replace(&mut a.torn_writes, false),
        |a| std::mem::replace(&mut a.client_gaps, 0.0) != 0.0,
        |a| std::mem::replace(&mut a.client_partitions, false),
        |a| std::mem::replace(&mut a.reads, 30) != 30,
        |a| std::mem::replace(&mut a.client_timeout, 400) != 400,
        |a| {
            let default = raftsim_protocol::raft::Config::default().entries_per_append_max;
            std::mem::replace(&mut a.append_max, default) != default
        },
    ];
    for simplify in simplifications {
        let mut c = best.clone();
        if simplify(&mut c.args) {
            if let Some(t) = shrinker.fails(&c) {
                best = c;
                failed_at = t;
            }
        }
    }
    let _ = failed_at;
    Ok(Shrunk {
        script: render(&best, &property, &shrinker.origin),
        property,
        faults_before,
        faults_after: best.faults.len(),
        runs: shrinker.runs,
    })
}
