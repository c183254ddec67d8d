//! `raftsim fuzz`: swarm-fuzzing of schedules at CI scale.
//!
//! **Swarm testing** (Groce et al., "Swarm Testing", ISSTA 2012): instead of one configuration
//! with every fault on, each seed draws its own configuration from its `swarm` stream
//! ([`Stream::Swarm`]) — cluster size, timing, clients and keys, and a fault mix in which every
//! fault kind is independently on or off by a coin flip, with its rate drawn when on. Leaving
//! features out is the point: a bug that only shows when messages are *not* lost, or when
//! crashes happen without partitions, is hidden by a configuration that always does everything.
//! [`swarm`] expresses a seed's configuration as plain [`SimArgs`], so the failure report's
//! `raftsim replay ...` line (see [`SimArgs::replay_command`]) reproduces it exactly.
//!
//! Each seed is one [`run()`] — fault phase of `--ticks`, heal phase with the liveness check,
//! then linearizability — with every checker on and tracing off. A seed keeps its trace hash
//! only when something compares it later: `--check-determinism` and `--out` (see
//! `Campaign::keeps_hash`); hashing every message sent is work a campaign does not need.
//!
//! # Determinism
//! A seed's result is a function of (seed, protocol, ticks) alone. Seeds run on a local rayon
//! pool of `--jobs` threads; each thread runs whole seeds, results are sorted by seed before
//! anything is reported, and coverage counters are sums (order-independent). Wall time, read
//! only through [`crate::progress`], feeds the progress display, events per second and
//! `--time-budget`; the budget decides how many seeds are *started* (always a prefix of the
//! planned seeds, since seeds are claimed in order), never what a seed does.
//!
//! # Sometimes-coverage
//! A green campaign must prove it exercised something (stateright's *sometimes* properties):
//! the summary sums counters such as leader changes, deduplicated duplicates and fenced stale
//! leaders over all seeds, and flags every row that stayed at zero.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::io::BufWriter;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use clap::{Args, ValueEnum};
use raftsim_protocol::types::Tick;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde_json::json;

use crate::cli::{ProtocolArg, SimArgs, EXIT_FAILED, EXIT_OK, EXIT_USAGE};
use crate::progress::{self, Mode, Progress};
use crate::rng::{stream, Stream};
use crate::run::{panic_message, run, RunReport};
use crate::trace::{Trace, TraceFormat};

/// Default length of each seed's fault phase, in ticks.
pub const TICKS_DEFAULT: Tick = 3_000;
/// Most worker threads a campaign may ask for.
pub const JOBS_MAX: usize = 1_024;
/// Property name of a trace-hash mismatch between two runs of one seed.
pub const DETERMINISM: &str = "Determinism";
/// Property name of a seed whose run could not even be set up (a bug in [`swarm`]).
pub const SETUP: &str = "Setup";
/// Property name of a panic that escaped the run's own panic catching.
pub const PANIC: &str = "panic";
/// With `--check-determinism` (sample), seeds `s` with `s % DETERMINISM_SAMPLE_MODULUS == 0`
/// are run twice.
pub const DETERMINISM_SAMPLE_MODULUS: u64 = 10;

/// A half-open range of seeds, `A..B` with `A < B`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeedRange {
    /// First seed.
    pub start: u64,
    /// One past the last seed.
    pub end: u64,
}

impl FromStr for SeedRange {
    type Err = String;

    fn from_str(s: &str) -> Result<SeedRange, String> {
        let usage = || format!("--seeds wants a half-open range A..B (e.g. 0..1000), got {s:?}");
        let (a, b) = s.split_once("..").ok_or_else(usage)?;
        let start: u64 = a.trim().parse().map_err(|_| usage())?;
        let end: u64 = b.trim().parse().map_err(|_| usage())?;
        if start >= end {
            return Err(format!(
                "--seeds {start}..{end} is empty: the range is half-open, so A must be below B \
                 ({start}..{} runs seed {start} alone)",
                start.saturating_add(1)
            ));
        }
        Ok(SeedRange { start, end })
    }
}

impl fmt::Display for SeedRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}..{}", self.start, self.end)
    }
}

/// One shard of a campaign, `I/N` (0-based `I < N`): the seeds `s` with `s % N == I`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// Which shard, `0..count`.
    pub index: u64,
    /// How many shards.
    pub count: u64,
}

impl FromStr for Shard {
    type Err = String;

    fn from_str(s: &str) -> Result<Shard, String> {
        let usage = || format!("--shard wants I/N with 0 <= I < N (e.g. 0/4), got {s:?}");
        let (i, n) = s.split_once('/').ok_or_else(usage)?;
        let index: u64 = i.trim().parse().map_err(|_| usage())?;
        let count: u64 = n.trim().parse().map_err(|_| usage())?;
        if count == 0 {
            return Err(format!("--shard {s}: the shard count N must be at least 1"));
        }
        if index >= count {
            return Err(format!(
                "--shard {s}: the shard index I is 0-based and must be below N = {count}"
            ));
        }
        Ok(Shard { index, count })
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// Which seeds `--check-determinism` runs a second time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DeterminismCheck {
    /// Seeds divisible by 10 (at least one seed).
    Sample,
    /// Every seed that ran.
    All,
}

impl DeterminismCheck {
    /// Whether `seed` is run a second time (a seed the sample misses is re-run only when the
    /// sample holds no seed that ran at all: see [`Campaign::check_determinism`]).
    fn picks(self, seed: u64) -> bool {
        self == DeterminismCheck::All || seed.is_multiple_of(DETERMINISM_SAMPLE_MODULUS)
    }
}

fn parse_seed_range(s: &str) -> Result<SeedRange, String> {
    s.parse()
}

fn parse_shard(s: &str) -> Result<Shard, String> {
    s.parse()
}

fn parse_jobs(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(n) if (1..=JOBS_MAX).contains(&n) => Ok(n),
        _ => Err(format!("--jobs must be 1..={JOBS_MAX}, got {s:?}")),
    }
}

fn parse_budget(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(x) if x.is_finite() && x > 0.0 => Ok(x),
        _ => Err(format!(
            "--time-budget wants a positive number of seconds, got {s:?}"
        )),
    }
}

/// Flags of `fuzz`.
#[derive(Args, Debug, Clone, PartialEq)]
pub struct FuzzArgs {
    /// Seeds to run, half-open: `0..1000` runs seeds 0 to 999.
    #[arg(long, value_parser = parse_seed_range)]
    pub seeds: SeedRange,
    /// Which protocol to fuzz.
    #[arg(long, value_enum, default_value_t = ProtocolArg::Raft)]
    pub protocol: ProtocolArg,
    /// Worker threads (default: the machine's available parallelism). Results never depend
    /// on it.
    #[arg(long, value_parser = parse_jobs)]
    pub jobs: Option<usize>,
    /// Run only shard I of N (0-based): the seeds s with s % N == I.
    #[arg(long, value_parser = parse_shard)]
    pub shard: Option<Shard>,
    /// Length of each seed's fault phase, in ticks (the heal phase follows).
    #[arg(long, default_value_t = TICKS_DEFAULT)]
    pub ticks: Tick,
    /// Stop starting new seeds after this many wall-clock seconds; report the seeds that ran.
    #[arg(long, value_parser = parse_budget)]
    pub time_budget: Option<f64>,
    /// Re-run seeds and compare trace hashes: bare flag = every seed divisible by 10 (at least
    /// one), `=all` = every seed.
    #[arg(
        long,
        value_enum,
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "sample"
    )]
    pub check_determinism: Option<DeterminismCheck>,
    /// Write a text trace of every failing seed to DIR/seed-N.trace.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// End the output with the summary as one JSON object on one line.
    #[arg(long)]
    pub json: bool,
    /// No progress bar, even on a terminal (a plain status line still goes to stderr every
    /// few seconds).
    #[arg(long)]
    pub no_progress: bool,
    /// Plant a classic Raft bug in every run (builds with the `planted-bugs` feature only):
    /// see that the campaign finds it and which property names it.
    #[cfg(feature = "planted-bugs")]
    #[arg(long, value_parser = crate::cli::parse_bug)]
    pub plant: Option<raftsim_protocol::planted::Bug>,
}

// --- The swarm ----------------------------------------------------------------------------------

fn coin(rng: &mut ChaCha8Rng) -> bool {
    rng.gen_bool(0.5)
}

/// A probability drawn as a whole number of thousandths in `lo..=hi`, so that it prints short
/// and parses back to the same `f64` (both are the nearest double to `n / 1000`).
fn thousandths(rng: &mut ChaCha8Rng, lo: u32, hi: u32) -> f64 {
    f64::from(rng.gen_range(lo..=hi)) / 1000.0
}

/// The swarm configuration of one seed: everything drawn from `stream(seed, Stream::Swarm)`.
///
/// Every fault kind is on or off by its own coin flip, with its rate drawn when on: loss
/// (0.001..=0.2), duplication (0.001..=0.1), corruption in flight (0.001..=0.05),
/// delay/reordering (`delay_max` 2..=20; off means a fixed one-tick delay, so no reordering),
/// symmetric partitions, one-way cuts, crashes, torn writes, rot, pauses, clock drift.
/// Raft draws its cluster size (3 or 5 mostly, sometimes 1, 4 or 7), timing with election
/// timeouts well above a message round trip (§5.6: broadcastTime ≪ electionTimeout) and the
/// heartbeat at most a third of the shortest timeout, and pre-vote, check-quorum and lease
/// reads (only with check-quorum). The leader-follower store draws 2..=5 nodes, heartbeat and
/// keepalive, majority or all-replica quorum, sequential or pipelined shipping, and sometimes a
/// short catch-up window (so lagging followers need a snapshot); reads from followers stay off
/// because they are deliberately not linearizable. Clients (1..=5) and keys (1..=6) are drawn
/// for both; client clocks are never skewed, so every history must be linearizable.
///
/// The result always passes [`SimArgs::to_config`]: a drawn combination it rejects has its
/// offending option turned off (lease reads first), which is itself deterministic.
pub fn swarm(seed: u64, protocol: ProtocolArg, ticks: Tick) -> SimArgs {
    let mut rng = stream(seed, Stream::Swarm);
    let defaults = SimArgs::defaults(seed);
    let mut a = SimArgs {
        protocol,
        ticks,
        ..defaults.clone()
    };
    // Network faults.
    a.loss = if coin(&mut rng) {
        thousandths(&mut rng, 1, 200)
    } else {
        0.0
    };
    a.dup = if coin(&mut rng) {
        thousandths(&mut rng, 1, 100)
    } else {
        0.0
    };
    a.corrupt = if coin(&mut rng) {
        thousandths(&mut rng, 1, 50)
    } else {
        0.0
    };
    if coin(&mut rng) {
        a.delay_max = rng.gen_range(2..=20);
        a.delay_min = rng.gen_range(1..=a.delay_max.min(3));
    } else {
        a.delay_min = 1;
        a.delay_max = 1;
    }
    // Scheduled faults.
    a.partitions = coin(&mut rng);
    a.one_way = coin(&mut rng);
    a.crashes = coin(&mut rng);
    a.torn_writes = coin(&mut rng);
    a.rot = coin(&mut rng);
    a.pauses = coin(&mut rng);
    a.drift = coin(&mut rng);
    // Workload.
    a.clients = rng.gen_range(1..=5);
    a.keys = rng.gen_range(1..=6);
    match protocol {
        ProtocolArg::Raft => swarm_raft(&mut rng, &mut a, &defaults),
        ProtocolArg::Replication => swarm_replication(&mut rng, &mut a),
    }
    // Misbehaving clients that skip sequence numbers, now and then (gap rejection).
    a.client_gaps = if rng.gen_range(0..4) == 0 {
        thousandths(&mut rng, 5, 50)
    } else {
        0.0
    };
    // Impatient clients now and then: a short request timeout sends them to another node
    // while a cut-off leader still believes it leads (stale reads, duplicate retries).
    let client_timeout = rng.gen_range((4 * a.delay_max).max(20)..=400);
    if coin(&mut rng) {
        a.client_timeout = client_timeout;
    }
    // Raft: tiny AppendEntries batches now and then, so a new leader's catch-up takes several
    // round trips and followers acknowledge old-term entries before the leader's no-op (the
    // window of the Figure 8 commit rule).
    // Clients stranded with their home node by partitions, now and then.
    let client_partitions = rng.gen_range(0..3) == 0;
    a.client_partitions = a.partitions && client_partitions;
    // A nemesis that aims at the leader, now and then.
    a.target_leader = coin(&mut rng);
    // Read-heavy or write-heavy workloads now and then.
    let reads = rng.gen_range(0..=95);
    if coin(&mut rng) {
        a.reads = reads;
    }
    let append_max = rng.gen_range(1..=4);
    if protocol == ProtocolArg::Raft && rng.gen_range(0..4) == 0 {
        a.append_max = append_max;
    }
    make_valid(&mut a, &defaults);
    a
}

fn swarm_raft(rng: &mut ChaCha8Rng, a: &mut SimArgs, defaults: &SimArgs) {
    a.nodes = match rng.gen_range(0..100) {
        0..=39 => 3,
        40..=74 => 5,
        75..=79 => 1,
        80..=89 => 4,
        _ => 7,
    };
    // An election timeout of at least six one-way delays leaves room for a vote round trip
    // and a heartbeat; randomization spread of a quarter to a whole minimum (§5.2).
    let election_min = rng.gen_range((6 * a.delay_max).max(60)..=300);
    a.election_min = election_min;
    a.election_max = election_min + rng.gen_range((election_min / 4).max(1)..=election_min);
    a.heartbeat = rng.gen_range(5..=election_min / 3);
    a.pre_vote = coin(rng);
    a.check_quorum = coin(rng);
    a.lease_reads = a.check_quorum && coin(rng);
    // Drawn always, so the draw sequence does not depend on the coin above; used only with
    // lease reads (at most 0.9 of the shortest timeout, which survives the drift allowance).
    let lease = rng.gen_range((election_min / 4).max(1)..=election_min * 9 / 10);
    a.lease = if a.lease_reads { lease } else { defaults.lease };
    // Log compaction: often small enough that lagging followers need InstallSnapshot, with
    // chunks small enough to split a snapshot.
    if rng.gen_range(0..3) == 0 {
        a.snapshot_every = rng.gen_range(2..=60);
        a.snapshot_chunk = rng.gen_range(16..=4096);
    }
}

fn swarm_replication(rng: &mut ChaCha8Rng, a: &mut SimArgs) {
    a.nodes = rng.gen_range(2..=5);
    a.heartbeat = rng.gen_range((2 * a.delay_max).max(10)..=80);
    a.keepalive = a.heartbeat * rng.gen_range(3..=8);
    a.quorum = coin(rng).then_some(a.nodes);
    a.sequential = coin(rng);
    let retain = rng.gen_range(8..=64);
    if coin(rng) {
        a.retain = retain;
    }
    a.read_from_follower = false;
}

/// Turn options off, in a fixed order, until [`SimArgs::to_config`] accepts the flags.
fn make_valid(a: &mut SimArgs, defaults: &SimArgs) {
    // Each pass turns one option off; there are two, so three passes suffice.
    for _ in 0..3 {
        let Err(e) = a.to_config() else {
            return;
        };
        if a.lease_reads {
            a.lease_reads = false;
            a.lease = defaults.lease;
        } else if a.quorum.is_some() {
            a.quorum = None;
        } else {
            panic!(
                "swarm drew flags that no fallback makes valid: {e}\n{}",
                a.replay_command()
            );
        }
    }
    if let Err(e) = a.to_config() {
        panic!(
            "swarm drew flags that no fallback makes valid: {e}\n{}",
            a.replay_command()
        );
    }
}

// --- Coverage -----------------------------------------------------------------------------------

struct CoverageRow {
    name: &'static str,
    raft_only: bool,
    count: fn(&RunReport) -> u64,
}

/// The *sometimes* rows, in display order. Raft-only rows count things a fixed-leader store
/// cannot do (elections, fencing, lease reads, log repair).
const COVERAGE: &[CoverageRow] = &[
    CoverageRow {
        name: "leader changes",
        raft_only: true,
        count: |r| r.cluster.leaders_elected.saturating_sub(1),
    },
    CoverageRow {
        name: "split votes",
        raft_only: true,
        count: |r| r.cluster.split_votes,
    },
    CoverageRow {
        name: "stale leaders fenced",
        raft_only: true,
        count: |r| r.cluster.stale_leaders_fenced,
    },
    CoverageRow {
        name: "duplicates deduplicated",
        raft_only: false,
        count: |r| r.cluster.duplicates_applied + r.clients.duplicates_seen,
    },
    CoverageRow {
        name: "gaps rejected",
        raft_only: false,
        count: |r| r.clients.gaps_seen + r.cluster.rejected_applied,
    },
    CoverageRow {
        name: "redirects followed",
        raft_only: false,
        count: |r| r.clients.redirects_followed,
    },
    CoverageRow {
        name: "corrupt records rejected",
        raft_only: false,
        count: |r| r.cluster.corrupt_rejected,
    },
    CoverageRow {
        name: "torn writes recovered",
        raft_only: false,
        count: |r| r.cluster.torn_writes_recovered,
    },
    CoverageRow {
        name: "corruption detected",
        raft_only: false,
        count: |r| r.cluster.corruption_detected,
    },
    CoverageRow {
        name: "crashes",
        raft_only: false,
        count: |r| r.cluster.crashes,
    },
    CoverageRow {
        name: "pauses",
        raft_only: false,
        count: |r| r.cluster.pauses,
    },
    CoverageRow {
        name: "partitions",
        raft_only: false,
        count: |r| r.cluster.partitions,
    },
    CoverageRow {
        name: "one-way partitions",
        raft_only: false,
        count: |r| r.cluster.one_way_cuts,
    },
    CoverageRow {
        name: "lease reads",
        raft_only: true,
        count: |r| r.cluster.lease_reads,
    },
    CoverageRow {
        name: "client timeouts",
        raft_only: false,
        count: |r| r.clients.timeouts,
    },
    CoverageRow {
        name: "log conflicts repaired",
        raft_only: true,
        count: |r| r.cluster.log_conflicts,
    },
    CoverageRow {
        name: "snapshots installed",
        raft_only: false,
        count: |r| r.cluster.snapshots_installed,
    },
];

fn coverage_table(protocol: ProtocolArg) -> impl Iterator<Item = &'static CoverageRow> {
    COVERAGE
        .iter()
        .filter(move |row| protocol == ProtocolArg::Raft || !row.raft_only)
}

/// The coverage rows reported for `protocol`, in display order.
pub fn coverage_rows(protocol: ProtocolArg) -> Vec<&'static str> {
    coverage_table(protocol).map(|row| row.name).collect()
}

fn coverage_of(report: &RunReport, protocol: ProtocolArg) -> Vec<u64> {
    coverage_table(protocol)
        .map(|row| (row.count)(report))
        .collect()
}

// --- One seed -----------------------------------------------------------------------------------

/// The outcome of one seed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedRun {
    /// The seed.
    pub seed: u64,
    /// Trace hash (hex; empty when the run never started or kept no hash: see
    /// `Campaign::keeps_hash`).
    pub trace_hash: String,
    /// Events handled.
    pub events: u64,
    /// Virtual ticks simulated.
    pub ticks: Tick,
    /// The failed property and the failure's message, if any.
    pub failure: Option<(String, String)>,
    /// Whether the linearizability checker gave up (verdict unknown, not a failure).
    pub linearizability_unknown: bool,
}

/// A failing seed, as reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FuzzFailure {
    /// The seed.
    pub seed: u64,
    /// The failed property (`Determinism` for a trace-hash mismatch).
    pub property: String,
    /// The failure, rendered (may span lines).
    pub message: String,
    /// The command line that reproduces it.
    pub replay: String,
    /// Where its text trace was written (`--out`).
    pub trace: Option<PathBuf>,
    /// Why the trace could not be written.
    pub trace_error: Option<String>,
}

impl FuzzFailure {
    /// The first line of the message, without the property name it may start with.
    pub fn headline(&self) -> &str {
        let first = self.message.lines().next().unwrap_or("");
        first
            .strip_prefix(self.property.as_str())
            .map(str::trim_start)
            .filter(|rest| !rest.is_empty())
            .unwrap_or(first)
    }
}

/// Run one seed's swarm configuration with `trace`; never panics. Returns the outcome, its
/// coverage counts (empty when the run never finished) and whether the trace was written.
fn run_seed(
    seed: u64,
    protocol: ProtocolArg,
    ticks: Tick,
    trace: impl FnOnce() -> Result<Trace, String>,
) -> (SeedRun, Vec<u64>, Result<(), String>) {
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let args = swarm(seed, protocol, ticks);
        let config = args.to_config()?;
        run(config, trace()?)
    }));
    let failed = |property: &str, message: String| SeedRun {
        seed,
        trace_hash: String::new(),
        events: 0,
        ticks: 0,
        failure: Some((property.to_string(), message)),
        linearizability_unknown: false,
    };
    match outcome {
        Ok(Ok((report, trace))) => {
            let written = trace
                .finish()
                .map(|_| ())
                .map_err(|e| format!("writing the trace failed: {e}"));
            let failure = report.failure.as_ref().map(|message| {
                let property = report.failed_property.clone().unwrap_or_default();
                (property, message.clone())
            });
            let run = SeedRun {
                seed,
                trace_hash: report.trace_hash.clone(),
                events: report.events,
                ticks: report.ticks,
                failure,
                linearizability_unknown: report.linearizability_unknown,
            };
            (run, coverage_of(&report, protocol), written)
        }
        Ok(Err(e)) => (failed(SETUP, e.clone()), Vec::new(), Err(e)),
        Err(payload) => {
            let message = format!("panic outside the run loop: {}", panic_message(&*payload));
            (failed(PANIC, message.clone()), Vec::new(), Err(message))
        }
    }
}

// --- The campaign -------------------------------------------------------------------------------

/// The planned seeds: `range`, thinned to one shard.
#[derive(Debug, Clone, Copy)]
struct Plan {
    first: u64,
    step: u64,
    count: u64,
}

impl Plan {
    fn new(range: SeedRange, shard: Option<Shard>) -> Plan {
        let Shard { index, count: n } = shard.unwrap_or(Shard { index: 0, count: 1 });
        // The smallest seed >= start with seed % n == index (no overflow for any n).
        let r = range.start % n;
        let offset = if index >= r { index - r } else { n - r + index };
        match range.start.checked_add(offset) {
            Some(first) if first < range.end => Plan {
                first,
                step: n,
                count: (range.end - 1 - first) / n + 1,
            },
            _ => Plan {
                first: range.start,
                step: n,
                count: 0,
            },
        }
    }

    fn seed(&self, i: u64) -> u64 {
        debug_assert!(i < self.count);
        self.first + i * self.step
    }
}

/// Run `f(i)` for `i` in `0..count` on every thread of `pool`, claiming indices in order, until
/// `stop()` holds before a claim. Every claimed index runs, so the indices done are always a
/// prefix `0..k`, whatever the thread timing; the results come back in index order.
fn par_prefix<T: Send>(
    pool: &rayon::ThreadPool,
    count: u64,
    stop: impl Fn() -> bool + Sync,
    f: impl Fn(u64) -> T + Sync,
) -> Vec<T> {
    let next = AtomicU64::new(0);
    let per_thread: Vec<Vec<(u64, T)>> = pool.broadcast(|_| {
        let mut done = Vec::new();
        while !stop() {
            let i = next.fetch_add(1, Ordering::Relaxed);
            if i >= count {
                break;
            }
            done.push((i, f(i)));
        }
        done
    });
    let mut all: Vec<(u64, T)> = per_thread.into_iter().flatten().collect();
    all.sort_by_key(|(i, _)| *i);
    assert!(
        all.iter().enumerate().all(|(k, (i, _))| k as u64 == *i),
        "the indices done form a prefix"
    );
    all.into_iter().map(|(_, t)| t).collect()
}

/// The result of a campaign.
#[derive(Debug, Clone, PartialEq)]
pub struct FuzzSummary {
    /// The protocol fuzzed.
    pub protocol: ProtocolArg,
    /// The seed range asked for.
    pub range: SeedRange,
    /// The shard, if any.
    pub shard: Option<Shard>,
    /// Length of each seed's fault phase.
    pub fault_ticks: Tick,
    /// Worker threads used (results do not depend on it).
    pub jobs: usize,
    /// Seeds planned (the range, thinned to the shard).
    pub seeds_planned: u64,
    /// Seeds run (fewer than planned when the time budget ran out).
    pub seeds: u64,
    /// The first planned seed that did not run (time budget), if any.
    pub next_seed: Option<u64>,
    /// Every seed run, sorted by seed.
    pub runs: Vec<SeedRun>,
    /// Failures, sorted by seed, then property.
    pub failures: Vec<FuzzFailure>,
    /// Failures counted by property.
    pub failures_by_property: BTreeMap<String, u64>,
    /// Seeds whose linearizability verdict is unknown (checker budget spent).
    pub linearizability_unknown: Vec<u64>,
    /// Virtual ticks simulated, over every seed run.
    pub ticks: u64,
    /// Events handled, over every seed run.
    pub events: u64,
    /// Wall-clock seconds of the campaign (not of the determinism re-runs).
    pub wall_s: f64,
    /// Events per wall-clock second.
    pub events_per_s: f64,
    /// Sometimes-coverage: row → count summed over seeds (see [`coverage_rows`]).
    pub coverage: BTreeMap<&'static str, u64>,
    /// Seeds re-run by `--check-determinism`.
    pub determinism_checked: u64,
}

impl FuzzSummary {
    /// Seeds per wall-clock second.
    pub fn seeds_per_s(&self) -> f64 {
        progress::per_second(self.seeds, self.wall_s)
    }

    /// Seeds of the failures, sorted, each once.
    pub fn failed_seeds(&self) -> Vec<u64> {
        let mut seeds: Vec<u64> = self.failures.iter().map(|f| f.seed).collect();
        seeds.dedup();
        seeds
    }

    /// The campaign as a command line (what CI would run again).
    pub fn command(&self) -> String {
        let mut s = format!(
            "raftsim fuzz --seeds {} --protocol {}",
            self.range, self.protocol
        );
        if let Some(shard) = self.shard {
            s.push_str(&format!(" --shard {shard}"));
        }
        if self.fault_ticks != TICKS_DEFAULT {
            s.push_str(&format!(" --ticks {}", self.fault_ticks));
        }
        s
    }

    /// The summary as one JSON object.
    pub fn to_json(&self) -> serde_json::Value {
        let coverage: serde_json::Map<String, serde_json::Value> = coverage_rows(self.protocol)
            .into_iter()
            .map(|row| (row.to_string(), json!(self.coverage.get(row).copied())))
            .collect();
        let failures: Vec<serde_json::Value> = self
            .failures
            .iter()
            .map(|f| {
                json!({
                    "seed": f.seed,
                    "property": f.property,
                    "message": f.headline(),
                    "replay": f.replay,
                    "trace": f.trace.as_ref().map(|p| p.display().to_string()),
                })
            })
            .collect();
        json!({
            "command": self.command(),
            "protocol": self.protocol.to_string(),
            "seeds_planned": self.seeds_planned,
            "seeds": self.seeds,
            "next_seed": self.next_seed,
            "failures": self.failures.len(),
            "failed_seeds": self.failed_seeds(),
            "failures_by_property": self.failures_by_property,
            "failure_details": failures,
            "linearizability_unknown": self.linearizability_unknown,
            "ticks": self.ticks,
            "events": self.events,
            "wall_s": self.wall_s,
            "events_per_s": self.events_per_s,
            "seeds_per_s": self.seeds_per_s(),
            "jobs": self.jobs,
            "determinism_checked": self.determinism_checked,
            "coverage": coverage,
        })
    }

    /// The human summary (several lines, each ending in a newline).
    pub fn render_text(&self) -> String {
        let mut s = String::new();
        let line = |s: &mut String, text: String| {
            s.push_str(&text);
            s.push('\n');
        };
        line(&mut s, self.command());
        let mut seeds = format!("  seeds          {} run", self.seeds);
        if self.seeds < self.seeds_planned {
            seeds.push_str(&format!(
                " of {} planned (time budget spent; next seed {})",
                self.seeds_planned,
                self.next_seed.map_or("-".into(), |n| n.to_string())
            ));
        }
        line(&mut s, seeds);
        line(
            &mut s,
            format!(
                "  simulated      {} ticks, {} events",
                self.ticks, self.events
            ),
        );
        line(
            &mut s,
            format!(
                "  wall           {:.2} s on {} threads: {} events/s, {:.1} seeds/s",
                self.wall_s,
                self.jobs,
                progress::human_count(self.events_per_s),
                self.seeds_per_s()
            ),
        );
        if self.determinism_checked > 0 {
            let mismatches = self.failures_by_property.get(DETERMINISM).unwrap_or(&0);
            line(
                &mut s,
                format!(
                    "  determinism    {} seeds re-run, {} trace-hash mismatches",
                    self.determinism_checked, mismatches
                ),
            );
        }
        if !self.linearizability_unknown.is_empty() {
            line(
                &mut s,
                format!(
                    "  unknown        linearizability checker gave up on seeds {:?}",
                    self.linearizability_unknown
                ),
            );
        }
        if self.failures_by_property.is_empty() {
            line(&mut s, "  failures       0".into());
        } else {
            line(&mut s, format!("  failures       {}", self.failures.len()));
            for (property, n) in &self.failures_by_property {
                line(&mut s, format!("    {property:<24} {n}"));
            }
        }
        line(
            &mut s,
            format!("sometimes (summed over {} seeds):", self.seeds),
        );
        for row in coverage_rows(self.protocol) {
            let n = self.coverage.get(row).copied().unwrap_or(0);
            let flag = if n == 0 { "  <- never exercised" } else { "" };
            line(&mut s, format!("  {row:<26} {n:>10}{flag}"));
        }
        if self.failures.is_empty() {
            line(&mut s, format!("PASS: {} seeds, no failure", self.seeds));
        } else {
            line(
                &mut s,
                format!(
                    "FAIL: {} failures in {} seeds",
                    self.failures.len(),
                    self.seeds
                ),
            );
        }
        s
    }
}

/// Everything `fuzz` prints on stdout: a `FAIL` block per failure, then the text summary, or
/// with `json` the summary as one JSON object on the last line.
pub fn render(summary: &FuzzSummary, json: bool) -> String {
    let mut s = String::new();
    for f in &summary.failures {
        s.push_str(&format!(
            "FAIL seed {}: {}: {}\n",
            f.seed,
            f.property,
            f.headline()
        ));
        s.push_str(&format!("  replay: {}\n", f.replay));
        if let Some(p) = &f.trace {
            s.push_str(&format!("  trace: {}\n", p.display()));
        }
        if let Some(e) = &f.trace_error {
            s.push_str(&format!("  trace: not written: {e}\n"));
        }
    }
    if json {
        s.push_str(&summary.to_json().to_string());
        s.push('\n');
    } else {
        s.push_str(&summary.render_text());
    }
    s
}

fn default_jobs() -> usize {
    std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(JOBS_MAX)
}

/// Check flags that clap may not have seen (a `FuzzArgs` built in code). Returns the jobs.
fn validate(args: &FuzzArgs) -> Result<usize, String> {
    let range = args.seeds;
    if range.start >= range.end {
        return Err(format!("--seeds {range} is empty: A must be below B"));
    }
    if let Some(s) = args.shard {
        if s.count == 0 || s.index >= s.count {
            return Err(format!("--shard {s}: need 0 <= I < N"));
        }
    }
    if args.ticks == 0 {
        return Err("--ticks must be at least 1".into());
    }
    if let Some(b) = args.time_budget {
        if !(b.is_finite() && b > 0.0) {
            return Err(format!("--time-budget must be positive seconds, got {b}"));
        }
    }
    let jobs = args.jobs.unwrap_or_else(default_jobs);
    if !(1..=JOBS_MAX).contains(&jobs) {
        return Err(format!("--jobs must be 1..={JOBS_MAX}, got {jobs}"));
    }
    Ok(jobs)
}

/// What every phase of a campaign shares.
struct Campaign {
    protocol: ProtocolArg,
    ticks: Tick,
    pool: rayon::ThreadPool,
    mode: Mode,
    /// `--check-determinism`: which seeds run twice, to compare trace hashes.
    determinism: Option<DeterminismCheck>,
    /// `--out`: failing seeds run again with a trace, compared with their first run's hash.
    traces_failures: bool,
}

impl Campaign {
    /// The replay line of `seed` (a `fuzz` line for the one seed if the swarm itself panics).
    fn replay(&self, seed: u64) -> String {
        let (protocol, ticks) = (self.protocol, self.ticks);
        catch_unwind(|| {
            #[allow(unused_mut)]
            let mut args = swarm(seed, protocol, ticks);
            #[cfg(feature = "planted-bugs")]
            {
                args.plant = raftsim_protocol::planted::planted();
            }
            args.replay_command()
        })
        .unwrap_or_else(|_| {
            format!(
                "raftsim fuzz --seeds {seed}..{} --protocol {protocol} --ticks {ticks}",
                seed.saturating_add(1)
            )
        })
    }

    /// Whether the first run of the plan's `index`-th seed keeps its trace hash: only a run
    /// whose hash is compared later does (hashing every message sent is about 3% of a run). That
    /// is every seed with `--out` (a failing seed's traced re-run is compared with it), and with
    /// `--check-determinism` every seed it may re-run: the ones it picks, and the plan's first,
    /// which it re-runs when it picks none that ran.
    fn keeps_hash(&self, index: u64, seed: u64) -> bool {
        self.traces_failures
            || self
                .determinism
                .is_some_and(|check| index == 0 || check.picks(seed))
    }

    /// Run the planned seeds until done or out of budget. Returns the runs (a prefix of the
    /// plan, in seed order), the coverage sums in [`coverage_rows`] order, and the wall time.
    fn run_seeds(&self, plan: Plan, budget_s: Option<f64>) -> (Vec<SeedRun>, Vec<u64>, f64) {
        let rows = coverage_rows(self.protocol).len();
        // Sums commute, so the order in which threads add their seeds does not matter.
        let totals = Mutex::new(vec![0u64; rows]);
        let bar = Progress::new("fuzz", plan.count, self.mode);
        let runs = par_prefix(
            &self.pool,
            plan.count,
            || bar.budget_spent(budget_s),
            |i| {
                let seed = plan.seed(i);
                let trace = || {
                    Ok(if self.keeps_hash(i, seed) {
                        Trace::off()
                    } else {
                        Trace::unhashed()
                    })
                };
                let (run, coverage, _) = run_seed(seed, self.protocol, self.ticks, trace);
                {
                    let mut totals = totals.lock().unwrap_or_else(|e| e.into_inner());
                    for (t, c) in totals.iter_mut().zip(&coverage) {
                        *t += c;
                    }
                }
                bar.seed_done(run.events, run.failure.is_some());
                if let Some((property, message)) = &run.failure {
                    let first = message.lines().next().unwrap_or("");
                    bar.note(&format!("FAIL seed {seed}: {property}: {first}"));
                }
                run
            },
        );
        let wall_s = bar.elapsed_s();
        bar.finish();
        let totals = totals.into_inner().unwrap_or_else(|e| e.into_inner());
        (runs, totals, wall_s)
    }

    /// Run the chosen seeds again and compare; returns how many ran and the mismatches.
    fn check_determinism(
        &self,
        runs: &[SeedRun],
        check: DeterminismCheck,
    ) -> (u64, Vec<FuzzFailure>) {
        let mut chosen: Vec<&SeedRun> = runs.iter().filter(|r| check.picks(r.seed)).collect();
        if chosen.is_empty() {
            chosen.extend(runs.first());
        }
        let count = chosen.len() as u64;
        let bar = Progress::new("fuzz determinism", count, self.mode);
        let again = par_prefix(
            &self.pool,
            count,
            || false,
            |i| {
                let seed = chosen[i as usize].seed;
                let (run, _, _) = run_seed(seed, self.protocol, self.ticks, || Ok(Trace::off()));
                bar.seed_done(run.events, false);
                run
            },
        );
        bar.finish();
        let mismatches = chosen
            .iter()
            .zip(&again)
            .filter(|(first, second)| !same_run(first, second))
            .map(|(first, second)| mismatch(first, second, "re-run", self.replay(first.seed)))
            .collect();
        (count, mismatches)
    }

    /// Run every failing seed once more with a text trace to `dir/seed-N.trace`, note the path
    /// (or why it could not be written) in its failures, and add a determinism failure if the
    /// traced run differs from the first.
    fn write_traces(&self, dir: &Path, runs: &[SeedRun], failures: &mut Vec<FuzzFailure>) {
        let mut seeds: Vec<u64> = failures.iter().map(|f| f.seed).collect();
        seeds.sort_unstable();
        seeds.dedup();
        let traced = par_prefix(
            &self.pool,
            seeds.len() as u64,
            || false,
            |i| {
                let path = dir.join(format!("seed-{}.trace", seeds[i as usize]));
                let open = || {
                    let file = File::create(&path)
                        .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
                    Ok(Trace::writer(
                        TraceFormat::Text,
                        Box::new(BufWriter::new(file)),
                    ))
                };
                let (run, _, written) =
                    run_seed(seeds[i as usize], self.protocol, self.ticks, open);
                (path, run, written)
            },
        );
        for (path, again, written) in traced {
            let mismatch_known = failures
                .iter()
                .any(|f| f.seed == again.seed && f.property == DETERMINISM);
            for f in failures.iter_mut().filter(|f| f.seed == again.seed) {
                match &written {
                    Ok(()) => f.trace = Some(path.clone()),
                    Err(e) => f.trace_error = Some(e.clone()),
                }
            }
            let first = runs
                .binary_search_by_key(&again.seed, |r| r.seed)
                .ok()
                .map(|k| &runs[k]);
            if let Some(first) = first {
                if written.is_ok() && !mismatch_known && !same_run(first, &again) {
                    let replay = self.replay(first.seed);
                    failures.push(mismatch(first, &again, "traced re-run", replay));
                }
            }
        }
    }
}

/// Whether two runs of one seed agree (trace hash and verdict).
fn same_run(a: &SeedRun, b: &SeedRun) -> bool {
    a.trace_hash == b.trace_hash && a.failure == b.failure
}

/// Run a campaign. Errors are usage errors (bad flags, an `--out` directory that cannot be
/// created, a thread pool that cannot start); failures found are in the summary.
pub fn run_campaign(args: &FuzzArgs) -> Result<FuzzSummary, String> {
    let jobs = validate(args)?;
    // Set once, before any run starts; read-only while they execute.
    #[cfg(feature = "planted-bugs")]
    raftsim_protocol::planted::set(args.plant);
    if let Some(dir) = &args.out {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("--out: cannot create directory {}: {e}", dir.display()))?;
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs)
        .thread_name(|i| format!("fuzz-{i}"))
        .build()
        .map_err(|e| format!("cannot start {jobs} worker threads: {e}"))?;
    let campaign = Campaign {
        protocol: args.protocol,
        ticks: args.ticks,
        pool,
        mode: Mode::choose(!args.no_progress),
        determinism: args.check_determinism,
        traces_failures: args.out.is_some(),
    };
    let plan = Plan::new(args.seeds, args.shard);
    let (runs, totals, wall_s) = campaign.run_seeds(plan, args.time_budget);
    let seeds = runs.len() as u64;

    let mut failures: Vec<FuzzFailure> = runs
        .iter()
        .filter_map(|r| {
            let (property, message) = r.failure.clone()?;
            Some(FuzzFailure {
                seed: r.seed,
                property,
                message,
                replay: campaign.replay(r.seed),
                trace: None,
                trace_error: None,
            })
        })
        .collect();
    let mut determinism_checked = 0;
    if let Some(check) = args.check_determinism {
        let (checked, mismatches) = campaign.check_determinism(&runs, check);
        determinism_checked = checked;
        failures.extend(mismatches);
    }
    if let Some(dir) = &args.out {
        campaign.write_traces(dir, &runs, &mut failures);
    }
    failures.sort_by(|a, b| (a.seed, &a.property).cmp(&(b.seed, &b.property)));

    let mut failures_by_property = BTreeMap::new();
    for f in &failures {
        *failures_by_property.entry(f.property.clone()).or_insert(0) += 1;
    }
    let coverage = coverage_rows(args.protocol)
        .into_iter()
        .zip(totals)
        .collect();
    let events: u64 = runs.iter().map(|r| r.events).sum();
    Ok(FuzzSummary {
        protocol: args.protocol,
        range: args.seeds,
        shard: args.shard,
        fault_ticks: args.ticks,
        jobs,
        seeds_planned: plan.count,
        seeds,
        next_seed: (seeds < plan.count).then(|| plan.seed(seeds)),
        failures,
        failures_by_property,
        linearizability_unknown: runs
            .iter()
            .filter(|r| r.linearizability_unknown)
            .map(|r| r.seed)
            .collect(),
        ticks: runs.iter().map(|r| r.ticks).sum(),
        events,
        wall_s,
        events_per_s: progress::per_second(events, wall_s),
        coverage,
        determinism_checked,
        runs,
    })
}

/// A determinism failure: two runs of one seed disagree.
fn mismatch(first: &SeedRun, second: &SeedRun, what: &str, replay: String) -> FuzzFailure {
    let verdict = |r: &SeedRun| {
        r.failure
            .as_ref()
            .map_or("PASS".to_string(), |(p, _)| format!("FAIL {p}"))
    };
    FuzzFailure {
        seed: first.seed,
        property: DETERMINISM.to_string(),
        message: format!(
            "trace hash {} ({}, {} events) on the first run, {} ({}, {} events) on the {what}",
            first.trace_hash,
            verdict(first),
            first.events,
            second.trace_hash,
            verdict(second),
            second.events
        ),
        replay,
        trace: None,
        trace_error: None,
    }
}

/// `raftsim fuzz`: run the campaign and print the report. Exit code 0 when every seed held
/// every property, 1 on any failure (a determinism mismatch included), 2 on bad usage.
pub fn cmd_fuzz(args: &FuzzArgs) -> i32 {
    match run_campaign(args) {
        Err(e) => {
            eprintln!("error: {e}");
            EXIT_USAGE
        }
        Ok(summary) => {
            print!("{}", render(&summary, args.json));
            if summary.failures.is_empty() {
                EXIT_OK
            } else {
                EXIT_FAILED
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_thin_to_the_shard() {
        let r = |a, b| SeedRange { start: a, end: b };
        let seeds = |p: Plan| (0..p.count).map(|i| p.seed(i)).collect::<Vec<_>>();
        assert_eq!(seeds(Plan::new(r(0, 5), None)), vec![0, 1, 2, 3, 4]);
        let shard = |index, count| Some(Shard { index, count });
        assert_eq!(seeds(Plan::new(r(0, 10), shard(1, 3))), vec![1, 4, 7]);
        assert_eq!(seeds(Plan::new(r(5, 12), shard(0, 4))), vec![8]);
        assert_eq!(seeds(Plan::new(r(5, 8), shard(0, 4))), Vec::<u64>::new());
        assert_eq!(seeds(Plan::new(r(7, 8), shard(3, 4))), vec![7]);
        let top = Plan::new(r(u64::MAX - 3, u64::MAX), shard(0, 2));
        assert_eq!(seeds(top), vec![u64::MAX - 3, u64::MAX - 1]);
    }

    #[test]
    fn ranges_and_shards_parse_or_explain() {
        assert_eq!(
            "3..9".parse::<SeedRange>(),
            Ok(SeedRange { start: 3, end: 9 })
        );
        assert!("5..5".parse::<SeedRange>().unwrap_err().contains("empty"));
        assert!("9..3".parse::<SeedRange>().is_err());
        assert!("x".parse::<SeedRange>().unwrap_err().contains("A..B"));
        assert_eq!("1/4".parse::<Shard>(), Ok(Shard { index: 1, count: 4 }));
        assert!("3/2".parse::<Shard>().unwrap_err().contains("below"));
        assert!("0/0".parse::<Shard>().is_err());
    }

    #[test]
    fn headline_drops_the_repeated_property() {
        let f = FuzzFailure {
            seed: 1,
            property: "Liveness".into(),
            message: "Liveness violated at t=5 (nodes n1): stuck\nmore".into(),
            replay: String::new(),
            trace: None,
            trace_error: None,
        };
        assert_eq!(f.headline(), "violated at t=5 (nodes n1): stuck");
    }
}
