//! Proof that the checkers have teeth: with a classic Raft bug planted, fuzzing finds it within a
//! bounded number of seeds, names the right property, and `shrink` turns it into a short script
//! that fails the same way.
//!
//! Runs only with `--features planted-bugs` (CI runs it so). One test walks the bugs in turn,
//! because the planted bug is process-wide.

#![cfg(feature = "planted-bugs")]

use raftsim::cli::{ProtocolArg, SimArgs};
use raftsim::fuzz::swarm;
use raftsim::run::run;
use raftsim::scenario::{parse, run_script};
use raftsim::shrink::shrink;
use raftsim::trace::Trace;
use raftsim_protocol::planted::{self, Bug};

/// How each bug is hunted: the swarm's configuration for a seed, with the knobs the bug needs
/// forced on; the seeds allowed; and the properties that may report it.
struct Hunt {
    bug: Bug,
    seeds: std::ops::Range<u64>,
    properties: &'static [&'static str],
    tune: fn(&mut SimArgs),
    /// Length of each seed's fault phase.
    ticks: u64,
    /// Failing seeds to shrink before keeping the shortest script: a failure that hangs on
    /// the exact timing of one crash among many shrinks poorly from one seed and well from
    /// another, as a user shrinking several failures of a campaign would see.
    failures_shrunk: usize,
    /// Most command lines the shrunk script may keep.
    lines_max: usize,
}

fn hunts() -> Vec<Hunt> {
    vec![
        Hunt {
            bug: Bug::DoubleVote,
            seeds: 0..200,
            properties: &["Election Safety"],
            tune: |a| {
                a.nodes = 5;
            },
            ticks: 3_000,
            failures_shrunk: 1,
            lines_max: 40,
        },
        Hunt {
            bug: Bug::LeaderKeepsLeading,
            seeds: 0..300,
            properties: &["Election Safety"],
            tune: |a| {
                a.partitions = true;
                a.pre_vote = false;
                a.check_quorum = false;
                a.lease_reads = false;
            },
            ticks: 3_000,
            failures_shrunk: 1,
            lines_max: 40,
        },
        Hunt {
            bug: Bug::SkipCrc,
            seeds: 0..200,
            properties: &[
                "Log Matching",
                "State Machine Safety",
                "Leader Completeness",
                "Exactly-Once",
                "Durability",
                "Linearizability",
                "panic",
            ],
            tune: |a| {
                a.corrupt = 0.05;
            },
            ticks: 3_000,
            failures_shrunk: 1,
            lines_max: 40,
        },
        Hunt {
            bug: Bug::DedupOnlyOnLeader,
            seeds: 0..300,
            properties: &["Exactly-Once"],
            tune: |a| {
                a.nodes = 3;
                a.crashes = true;
                a.loss = a.loss.max(0.05);
            },
            ticks: 3_000,
            failures_shrunk: 1,
            lines_max: 40,
        },
        Hunt {
            // The forgotten vote matters only if a second candidate of the same term asks the
            // restarted voter: short crashes, slow messages, near-simultaneous timeouts.
            bug: Bug::VoteNotPersisted,
            seeds: 0..1_500,
            properties: &["Election Safety"],
            tune: |a| {
                a.nodes = 3;
                a.crashes = true;
                a.partitions = false;
                a.one_way = false;
                a.pauses = false;
                a.rot = false;
                a.pre_vote = false;
                a.check_quorum = false;
                a.lease_reads = false;
                a.election_min = 150;
                a.election_max = 156;
                a.delay_min = 5;
                a.delay_max = 40;
                a.fault_duration_min = 1;
                a.fault_duration_max = 30;
                a.fault_interval_min = 5;
                a.fault_interval_max = 60;
                a.no_linearizability = true;
            },
            ticks: 3_000,
            failures_shrunk: 4,
            lines_max: 40,
        },
        Hunt {
            // Figure 8 needs two leaders whose last entries never reached a majority, then the
            // older one re-elected and committing its old entry by counting replicas before its
            // own no-op spreads, then crashing: catch-up in one-entry batches over slow links
            // widens that window, and a nemesis aiming at the leader makes the failovers.
            bug: Bug::CommitPreviousTerm,
            seeds: 0..20_000,
            properties: &["Leader Completeness", "State Machine Safety", "Durability"],
            tune: |a| {
                a.nodes = 3;
                a.crashes = true;
                a.partitions = true;
                a.client_partitions = false;
                a.target_leader = true;
                a.one_way = false;
                a.pauses = false;
                a.rot = false;
                a.append_max = 1;
                a.delay_min = 1;
                a.delay_max = 30;
                a.election_min = 150;
                a.election_max = 300;
                a.heartbeat = 50;
                a.lease_reads = false;
                a.lease = 100;
                a.clients = 4;
                a.fault_interval_min = 20;
                a.fault_interval_max = 80;
                a.fault_duration_min = 10;
                a.fault_duration_max = 150;
                a.no_linearizability = true;
            },
            ticks: 2_000,
            failures_shrunk: 6,
            lines_max: 60,
        },
        Hunt {
            // A leader cut off with the clients next to it keeps serving their reads from its
            // lease after a new leader took writes: read-heavy clients, short client timeouts.
            bug: Bug::LeaseWithoutValidity,
            seeds: 0..300,
            properties: &["Linearizability"],
            tune: |a| {
                a.nodes = 3;
                a.partitions = true;
                a.client_partitions = true;
                a.lease_reads = true;
                a.check_quorum = true;
                a.drift = false;
                a.lease = a.election_min / 2;
                a.crashes = false;
                a.pauses = false;
                a.clients = 6;
                a.keys = 1;
                a.reads = 90;
                a.client_timeout = 60;
                a.no_linearizability = false;
            },
            ticks: 3_000,
            failures_shrunk: 1,
            lines_max: 40,
        },
    ]
}

/// The planted bug is process-wide and the test harness runs tests on threads: each test holds
/// this lock while it sets or relies on the setting.
static PLANTED_SETTING: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn fuzzing_finds_each_planted_bug_and_shrink_reduces_it() {
    let _setting = PLANTED_SETTING.lock().unwrap_or_else(|e| e.into_inner());
    let mut report = Vec::new();
    for hunt in hunts() {
        planted::set(Some(hunt.bug));
        let mut best: Option<(u64, SimArgs, String, raftsim::shrink::Shrunk, usize)> = None;
        let mut failures = 0;
        for seed in hunt.seeds.clone() {
            let mut args = swarm(seed, ProtocolArg::Raft, hunt.ticks);
            (hunt.tune)(&mut args);
            args.plant = Some(hunt.bug);
            let config = args.to_config().expect("tuned swarm config is valid");
            let (r, _) = run(config, Trace::off()).expect("run builds");
            let Some(property) = r.failed_property else {
                continue;
            };
            assert!(
                hunt.properties.contains(&property.as_str()),
                "{}: seed {seed} failed {property}, expected one of {:?}: {}\nreplay: {}",
                hunt.bug.name(),
                hunt.properties,
                r.failure.unwrap_or_default(),
                args.replay_command()
            );
            // Shrink it and replay the script.
            let shrunk = match shrink(&args, 600) {
                Ok(s) => s,
                Err(e) => panic!("{}: shrinking seed {seed} failed: {e}", hunt.bug.name()),
            };
            assert_eq!(shrunk.property, property);
            assert!(shrunk.faults_after <= shrunk.faults_before);
            let script = parse("shrunk.scn", &shrunk.script).expect("shrunk script parses");
            let (outcome, _) = run_script(&script, None, Trace::off()).expect("script runs");
            let failure = outcome.failure.expect("the shrunk script fails");
            assert_eq!(failure.property.as_deref(), Some(property.as_str()));
            let lines = shrunk
                .script
                .lines()
                .filter(|l| !l.starts_with('#'))
                .count();
            if best.as_ref().is_none_or(|b| lines < b.4) {
                best = Some((seed, args, property, shrunk, lines));
            }
            failures += 1;
            if failures == hunt.failures_shrunk {
                break;
            }
        }
        let (seed, args, property, shrunk, lines) = best
            .unwrap_or_else(|| panic!("{} not found in seeds {:?}", hunt.bug.name(), hunt.seeds));
        assert!(
            lines <= hunt.lines_max,
            "{}: the shortest of {failures} shrunk scripts has {lines} command lines:\n{}",
            hunt.bug.name(),
            shrunk.script
        );
        report.push(format!(
            "{}: seed {seed}, {property}, shrunk {} -> {} faults, {lines} lines in {} runs\n  {}",
            hunt.bug.name(),
            shrunk.faults_before,
            shrunk.faults_after,
            shrunk.runs,
            args.replay_command()
        ));
    }
    planted::set(None);
    eprintln!("{}", report.join("\n"));
}

/// With no bug planted the same hunts are clean: the failures above come from the bugs.
#[test]
fn without_a_planted_bug_the_hunts_are_clean() {
    let _setting = PLANTED_SETTING.lock().unwrap_or_else(|e| e.into_inner());
    planted::set(None);
    for hunt in hunts() {
        for seed in hunt.seeds.clone().take(40) {
            let mut args = swarm(seed, ProtocolArg::Raft, hunt.ticks);
            (hunt.tune)(&mut args);
            let (r, _) = run(args.to_config().unwrap(), Trace::off()).unwrap();
            assert!(
                r.passed(),
                "seed {seed} fails without a planted bug: {}\nreplay: {}",
                r.failure.unwrap_or_default(),
                args.replay_command()
            );
        }
    }
}
