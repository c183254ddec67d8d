//! `raftsim bench`: fixed, documented workloads that measure how many schedules raftsim checks
//! per CPU-second. Each workload prints one JSON line with at least `workload`, `wall_s`,
//! `events`, `events_per_s`, `commits_per_s`, `ticks_per_s` and `peak_rss_bytes` (that
//! workload's own peak: see [`reset_peak_rss`]).
//!
//! Wall-clock time is read here (and in `progress.rs`) only: never on a simulation path.
//!
//! 1. `commit-batch1`: 3 Raft nodes, reliable network, 1-tick delivery, synchronous disk,
//!    100,000 proposals (16-byte key, 16-byte value), one per tick, sent straight to the leader
//!    through the full scheduler (queue, network, disks, nodes), checkers and tracing off.
//! 2. `commit-batch64`: the same with 64 proposals per tick.
//!
//!    Both run five times; the median run is reported (`commits_per_s_runs` lists all five).
//! 3. `fuzz-standard`: 5-node runs with every fault on and every checker on, over a fixed seed
//!    set (`0..FUZZ_STANDARD_SEEDS`), with one thread and with two (`jobs`), reporting events/s
//!    and seeds/s. Each is measured three times, interleaved, and the median run is reported.
//! 4. `check-history`: the linearizability checker on generated histories of 1, 10 and 50
//!    clients.
//! 5. `long-run`: `commit-batch1`'s workload for 10,000,000 ticks, reporting RSS every
//!    1,000,000 ticks (from 1M to 10M): with log compaction memory must stay flat.

use std::sync::Arc;
use std::time::Instant;

use clap::Args;
use raftsim_protocol::kv::Op;
use raftsim_protocol::node::ClientRequest;
use raftsim_protocol::raft::Config as RaftConfig;
use raftsim_protocol::types::Tick;
use rayon::prelude::*;
use serde_json::json;

use crate::cli::{SimArgs, EXIT_OK, EXIT_USAGE};
use crate::cluster::{Cluster, ClusterConfig, Event, Popped};
use crate::network::NetworkConfig;
use crate::node::ProtocolConfig;
use crate::run::run;
use crate::trace::Trace;

/// The speed and memory goals, reported with each workload (`goal`, `goal_met`): a
/// benchmark, never a test, judges them.
const COMMIT_BATCH1_GOAL: f64 = 500_000.0;
const FUZZ_EVENTS_PER_S_GOAL: f64 = 5_000_000.0;
const FUZZ_SPEEDUP_GOAL: f64 = 1.8;
const LONG_RUN_RSS_GOAL_BYTES: u64 = 64 << 20;

/// Flags of `bench`.
#[derive(Args, Debug, Clone, PartialEq)]
pub struct BenchArgs {
    /// Print JSON lines only (one per workload).
    #[arg(long)]
    pub json: bool,
    /// Run only these workloads (comma-separated names).
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
    /// Scale every workload's size by this factor (e.g. 0.1 for a quick look).
    #[arg(long, default_value_t = 1.0)]
    pub scale: f64,
}

/// Peak resident set size of this process since the last [`reset_peak_rss`] (or since it
/// started), from `/proc/self/status` (`VmHWM`); 0 where that file does not exist.
pub fn peak_rss_bytes() -> u64 {
    proc_status_bytes("VmHWM:")
}

/// Start a new peak-RSS measurement, so each workload's `peak_rss_bytes` is its own and not the
/// high-water mark of whatever ran before it in this process. Writing `5` to
/// `/proc/self/clear_refs` resets `VmHWM` to the current RSS (Linux 4.0 and later); where that
/// is not possible the peak stays cumulative, which overstates and never understates it.
pub fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Current resident set size (`VmRSS`); 0 where `/proc/self/status` does not exist.
pub fn rss_bytes() -> u64 {
    proc_status_bytes("VmRSS:")
}

/// A `/proc/self/status` field given in kB (`field` with its colon), in bytes; 0 when the file
/// or the field is missing.
fn proc_status_bytes(field: &str) -> u64 {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return 0;
    };
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// The result of one commit workload.
#[derive(Debug, Clone, Copy)]
pub struct CommitRun {
    /// Seconds of wall time.
    pub wall_s: f64,
    /// Events handled.
    pub events: u64,
    /// Client commands committed (applied by the leader).
    pub commits: u64,
    /// Virtual ticks simulated.
    pub ticks: Tick,
}

fn commit_cluster() -> Cluster {
    let config = ClusterConfig {
        protocol: ProtocolConfig::Raft(RaftConfig {
            nodes_count: 3,
            pending_requests_max: 1 << 20,
            ..RaftConfig::default()
        }),
        network: NetworkConfig {
            delay_ticks_min: 1,
            delay_ticks_max: 1,
            ..NetworkConfig::default()
        },
        disk_sync_ticks: 0,
        torn_writes: false,
    };
    Cluster::new(config, 1, Trace::off()).expect("bench config is valid")
}

/// Handle the next event the way a run's loop does (`Cluster::pop_and_dispatch`), dropping
/// what belongs to a caller (the replies: no client waits for them here). Returns false when
/// nothing is queued.
#[inline(always)]
fn step(cluster: &mut Cluster) -> bool {
    match cluster.pop_and_dispatch() {
        None => false,
        Some(Popped::Caller) => {
            drop(cluster.take_caller_event());
            true
        }
        Some(Popped::Node { .. }) => true,
    }
}

/// Drive `proposals` client commands through the full scheduler, `per_tick` at a time, and
/// call `sample(tick)` every `sample_every` ticks.
pub fn commit_workload(
    proposals: u64,
    per_tick: u64,
    sample_every: Tick,
    mut sample: impl FnMut(Tick),
) -> CommitRun {
    reset_peak_rss();
    let mut cluster = commit_cluster();
    // Elect a leader first (not timed).
    while cluster.leaders().is_empty() {
        if !step(&mut cluster) {
            break;
        }
    }
    let leader = cluster.leaders()[0];
    let key = "0123456789abcdef".to_string();
    let value = "fedcba9876543210".to_string();
    let start = Instant::now();
    let events_before = cluster.stats().events;
    let commits_before = cluster.stats().commits;
    let tick0 = cluster.now();
    let mut seq = 0u64;
    let mut tick = tick0;
    while seq < proposals {
        tick += 1;
        for _ in 0..per_tick.min(proposals - seq) {
            seq += 1;
            cluster.schedule(
                tick,
                Event::Request {
                    to: leader,
                    request: ClientRequest {
                        client: 1,
                        seq,
                        op: Arc::new(Op::Put {
                            key: key.clone(),
                            value: value.clone(),
                        }),
                        timestamp: tick,
                    },
                },
            );
        }
        while cluster.next_event_tick().is_some_and(|t| t <= tick) {
            step(&mut cluster);
        }
        // No checkers here: drop what they would have read.
        cluster.drain_observations();
        if sample_every > 0 && (tick - tick0).is_multiple_of(sample_every) {
            sample(tick - tick0);
        }
    }
    // Let the last commits land.
    let end = tick + 10;
    while cluster.next_event_tick().is_some_and(|t| t <= end) {
        step(&mut cluster);
    }
    CommitRun {
        wall_s: start.elapsed().as_secs_f64(),
        events: cluster.stats().events - events_before,
        commits: cluster.stats().commits - commits_before,
        ticks: end - tick0,
    }
}

/// Times the commit workloads are repeated; the median run is reported. One run takes a few
/// tenths of a second, short enough for a neighbour on a shared machine to halve it.
const COMMIT_REPEATS: usize = 5;

/// Run the commit workload [`COMMIT_REPEATS`] times (each on a fresh cluster, so every run
/// does the same work) and return the median run by wall time, with every run's commits/s in
/// run order.
fn median_commit_run(proposals: u64, per_tick: u64) -> (CommitRun, Vec<f64>) {
    let runs: Vec<CommitRun> = (0..COMMIT_REPEATS)
        .map(|_| commit_workload(proposals, per_tick, 0, |_| {}))
        .collect();
    let rates = runs.iter().map(|r| r.commits as f64 / r.wall_s).collect();
    (median_by_wall(runs, |r| r.wall_s), rates)
}

/// The run with the median wall time (of an odd count, the middle one).
fn median_by_wall<T>(mut runs: Vec<T>, wall_s: impl Fn(&T) -> f64) -> T {
    runs.sort_by(|a, b| wall_s(a).total_cmp(&wall_s(b)));
    runs.swap_remove(runs.len() / 2)
}

fn line(workload: &str, r: &CommitRun, extra: serde_json::Value) -> serde_json::Value {
    let mut v = json!({
        "workload": workload,
        "wall_s": r.wall_s,
        "events": r.events,
        "events_per_s": r.events as f64 / r.wall_s,
        "commits": r.commits,
        "commits_per_s": r.commits as f64 / r.wall_s,
        "ticks": r.ticks,
        "ticks_per_s": r.ticks as f64 / r.wall_s,
        "peak_rss_bytes": peak_rss_bytes(),
    });
    if let (Some(obj), Some(more)) = (v.as_object_mut(), extra.as_object()) {
        for (k, x) in more {
            obj.insert(k.clone(), x.clone());
        }
    }
    v
}

/// The fixed fuzz-standard seed set's flags: 5 nodes, every fault, every checker.
pub fn fuzz_standard_args(seed: u64) -> SimArgs {
    SimArgs {
        nodes: 5,
        ticks: 5_000,
        clients: 4,
        loss: 0.05,
        dup: 0.02,
        corrupt: 0.01,
        delay_max: 8,
        partitions: true,
        one_way: true,
        crashes: true,
        torn_writes: true,
        pauses: true,
        drift: true,
        pre_vote: seed.is_multiple_of(2),
        ..SimArgs::defaults(seed)
    }
}

/// Seeds in the fuzz-standard set (`0..FUZZ_STANDARD_SEEDS`): about a second of one thread's
/// work, long enough that the jobs-2 speedup measures the simulator and not thread start-up,
/// the last seed's tail or a neighbour's burst on a shared machine.
pub const FUZZ_STANDARD_SEEDS: u64 = 480;

/// Times each fuzz-standard measurement is repeated; the median run is reported.
const FUZZ_REPEATS: usize = 3;

/// The fuzz run with the median `wall_s`, with every run's `events_per_s` added (run order).
fn median_fuzz_run(runs: Vec<serde_json::Value>) -> serde_json::Value {
    let rates: Vec<f64> = runs
        .iter()
        .map(|r| r["events_per_s"].as_f64().unwrap_or(0.0))
        .collect();
    let mut median = median_by_wall(runs, |v| v["wall_s"].as_f64().unwrap_or(0.0));
    if let Some(o) = median.as_object_mut() {
        o.insert("repeats".into(), json!(rates.len()));
        o.insert("events_per_s_runs".into(), json!(rates));
    }
    median
}

fn fuzz_standard(seeds: u64, jobs: usize) -> serde_json::Value {
    reset_peak_rss();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs)
        .build()
        .expect("thread pool");
    let start = Instant::now();
    let results: Vec<(u64, u64, u64, bool)> = pool.install(|| {
        (0..seeds)
            .into_par_iter()
            .map(|seed| {
                let config = fuzz_standard_args(seed)
                    .to_config()
                    .expect("fuzz-standard flags are valid");
                // Kept as `raftsim fuzz` keeps a seed it does not re-run: no trace, no hash.
                let (report, _) = run(config, Trace::unhashed()).expect("run builds");
                (report.events, report.ticks, report.commits, report.passed())
            })
            .collect()
    });
    let wall_s = start.elapsed().as_secs_f64();
    let events: u64 = results.iter().map(|r| r.0).sum();
    let ticks: u64 = results.iter().map(|r| r.1).sum();
    let commits: u64 = results.iter().map(|r| r.2).sum();
    let failures = results.iter().filter(|r| !r.3).count();
    json!({
        "workload": "fuzz-standard",
        "jobs": jobs,
        "seeds": seeds,
        "failures": failures,
        "wall_s": wall_s,
        "events": events,
        "events_per_s": events as f64 / wall_s,
        "events_per_s_per_job": events as f64 / wall_s / jobs as f64,
        "seeds_per_s": seeds as f64 / wall_s,
        "commits_per_s": commits as f64 / wall_s,
        "ticks_per_s": ticks as f64 / wall_s,
        "peak_rss_bytes": peak_rss_bytes(),
    })
}

fn check_history(scale: f64) -> Vec<serde_json::Value> {
    use crate::checker::linearizability::{check, Limits};
    let ops = ((5_000.0 * scale) as usize).max(100);
    [1u32, 10, 50]
        .iter()
        .map(|&clients| {
            reset_peak_rss();
            let history = crate::history::generate_history(clients, ops, 4, 7);
            let start = Instant::now();
            let report = check(&history, None, &Limits::default());
            let wall_s = start.elapsed().as_secs_f64();
            json!({
                "workload": "check-history",
                "clients": clients,
                "ops": history.len(),
                "verdict": format!("{:?}", report.verdict).split(' ').next().unwrap_or("").to_string(),
                "goal": "a definite verdict (the histories are linearizable)",
                "goal_met": matches!(report.verdict, crate::checker::linearizability::Verdict::Linearizable),
                "steps": report.steps,
                "wall_s": wall_s,
                "events": history.len(),
                "events_per_s": history.len() as f64 / wall_s,
                "commits_per_s": 0.0,
                "ticks_per_s": 0.0,
                "peak_rss_bytes": peak_rss_bytes(),
            })
        })
        .collect()
}

/// How this binary was built, reported with every workload so figures from different builds
/// are never compared by mistake: `debug` (debug assertions on: not a speed measurement),
/// `release` (`cargo build --release`), or what the build set in `RAFTSIM_BUILD` at compile
/// time (`tools/pgo-build.sh` sets `pgo` for its profile-guided build).
pub fn build_kind() -> &'static str {
    if cfg!(debug_assertions) {
        "debug"
    } else {
        option_env!("RAFTSIM_BUILD").unwrap_or("release")
    }
}

/// Run the benchmarks; returns the exit code.
pub fn cmd_bench(args: &BenchArgs) -> i32 {
    let known = [
        "commit-batch1",
        "commit-batch64",
        "fuzz-standard",
        "check-history",
        "long-run",
    ];
    for name in &args.only {
        if !known.contains(&name.as_str()) {
            eprintln!(
                "error: unknown workload `{name}`; workloads: {}",
                known.join(", ")
            );
            return EXIT_USAGE;
        }
    }
    if !(args.scale > 0.0 && args.scale <= 100.0) {
        eprintln!("error: --scale must be in (0, 100]");
        return EXIT_USAGE;
    }
    let want = |name: &str| args.only.is_empty() || args.only.iter().any(|o| o == name);
    let scaled = |n: u64| ((n as f64 * args.scale) as u64).max(1);
    let emit = |mut v: serde_json::Value| {
        if let Some(o) = v.as_object_mut() {
            o.insert("build".into(), json!(build_kind()));
        }
        if args.json {
            println!("{v}");
        } else {
            println!(
                "{:<16} {}",
                v["workload"].as_str().unwrap_or(""),
                serde_json::to_string(&v).unwrap_or_default()
            );
        }
    };
    if want("commit-batch1") {
        let (r, runs) = median_commit_run(scaled(100_000), 1);
        let commits_per_s = r.commits as f64 / r.wall_s;
        emit(line(
            "commit-batch1",
            &r,
            json!({
                "proposals_per_tick": 1,
                "repeats": runs.len(),
                "commits_per_s_runs": runs,
                "goal": format!("commits_per_s >= {COMMIT_BATCH1_GOAL}"),
                "goal_met": commits_per_s >= COMMIT_BATCH1_GOAL,
            }),
        ));
    }
    if want("commit-batch64") {
        let (r, runs) = median_commit_run(scaled(100_000), 64);
        emit(line(
            "commit-batch64",
            &r,
            json!({
                "proposals_per_tick": 64,
                "repeats": runs.len(),
                "commits_per_s_runs": runs,
            }),
        ));
    }
    if want("fuzz-standard") {
        let seeds = scaled(FUZZ_STANDARD_SEEDS);
        // Interleaved, so a busy spell on a shared machine hits both thread counts alike.
        let (mut ones, mut twos) = (Vec::new(), Vec::new());
        for _ in 0..FUZZ_REPEATS {
            ones.push(fuzz_standard(seeds, 1));
            twos.push(fuzz_standard(seeds, 2));
        }
        let one = median_fuzz_run(ones);
        let two = median_fuzz_run(twos);
        let speedup = two["events_per_s"].as_f64().unwrap_or(0.0)
            / one["events_per_s"].as_f64().unwrap_or(1.0);
        let per_core = one["events_per_s"].as_f64().unwrap_or(0.0);
        emit(one);
        let mut two = two;
        if let Some(o) = two.as_object_mut() {
            o.insert("speedup_vs_jobs1".into(), json!(speedup));
            o.insert(
                "goal".into(),
                json!(format!(
                    "events_per_s per core (jobs 1) >= {FUZZ_EVENTS_PER_S_GOAL}, speedup_vs_jobs1 \
                     >= {FUZZ_SPEEDUP_GOAL}"
                )),
            );
            o.insert(
                "goal_met".into(),
                json!(per_core >= FUZZ_EVENTS_PER_S_GOAL && speedup >= FUZZ_SPEEDUP_GOAL),
            );
        }
        emit(two);
    }
    if want("check-history") {
        for v in check_history(args.scale) {
            emit(v);
        }
    }
    if want("long-run") {
        let ticks = scaled(10_000_000);
        let mut rss_at = Vec::new();
        let sample_every = (ticks / 10).max(1);
        let mut rss_max = 0;
        let r = commit_workload(ticks, 1, sample_every, |t| {
            let rss = rss_bytes();
            rss_max = rss_max.max(rss);
            rss_at.push(json!({ "tick": t, "rss_bytes": rss }));
            // The longest workload (about 20 s): a person watching sees it move. JSON mode
            // keeps stderr quiet for scripts.
            if !args.json {
                eprintln!("long-run: tick {t} of {ticks}, rss {} MiB", rss >> 20);
            }
        });
        emit(line(
            "long-run",
            &r,
            json!({
                "rss": rss_at,
                "goal": format!("rss_bytes <= {LONG_RUN_RSS_GOAL_BYTES} at every sample"),
                "goal_met": rss_max <= LONG_RUN_RSS_GOAL_BYTES,
            }),
        ));
    }
    EXIT_OK
}
