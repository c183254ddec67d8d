//! The command line: clap definitions and the commands behind them. `main.rs` only parses and
//! maps the result to an exit code.
//!
//! Exit codes (every command): 0 success · 1 a property or expectation failed · 2 bad usage or
//! malformed input · 3 a checker gave up (limit hit, verdict unknown).

use std::fs::File;
use std::io::BufWriter;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use raftsim_protocol::raft::Config as RaftConfig;
use raftsim_protocol::replication::Config as ReplicationConfig;
use raftsim_protocol::types::Tick;

use crate::cluster::ClusterConfig;
use crate::faults::FaultConfig;
use crate::network::NetworkConfig;
use crate::node::ProtocolConfig;
use crate::run::{run, RunConfig, RunReport};
use crate::scenario::{
    self,
    embedded::{source_of, Embedded, RAFT, REPLICATION},
};
use crate::trace::{Trace, TraceFormat};
use crate::workload::{OpMix, WorkloadConfig};

/// Exit code: every check held.
pub const EXIT_OK: i32 = 0;
/// Exit code: a property or expectation failed.
pub const EXIT_FAILED: i32 = 1;
/// Exit code: bad usage or malformed input.
pub const EXIT_USAGE: i32 = 2;
/// Exit code: a checker gave up (verdict unknown).
pub const EXIT_UNKNOWN: i32 = 3;

/// raftsim: a deterministic simulator for replicated key-value stores.
///
/// Same seed + same flags ⇒ the same trace, byte for byte, on any machine.
#[derive(Parser, Debug)]
#[command(name = "raftsim", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// One run with a random fault schedule drawn from the seed; prints a summary.
    Sim(SimArgs),
    /// Exactly `sim`: the way to reproduce a reported failure. Every failure report prints the
    /// `replay` command line that reproduces it.
    Replay(SimArgs),
    /// Run one scenario script; print its trace (or write it with --trace) and a verdict.
    Run(RunArgs),
    /// Run the harness scenarios (compiled in; files on disk take precedence).
    Harness(HarnessArgs),
    /// Turn a failing seed into a minimal scenario script that fails the same way.
    Shrink(ShrinkArgs),
    /// Swarm-fuzz a range of seeds, in parallel, with every checker on.
    Fuzz(crate::fuzz::FuzzArgs),
    /// Write a run's client history (EDN as Jepsen/Knossos/porcupine read it, or JSON).
    History(crate::history::HistoryArgs),
    /// Check a history file (ours or another tool's) for linearizability.
    CheckHistory(crate::history::CheckHistoryArgs),
    /// Render a JSON Lines trace as one self-contained HTML space-time diagram.
    View(crate::view::ViewArgs),
    /// Benchmarks: fixed workloads, one JSON line each.
    Bench(crate::bench::BenchArgs),
}

/// Flags of `shrink`: the failing run's flags, and where to write the script.
#[derive(Args, Debug, Clone, PartialEq)]
pub struct ShrinkArgs {
    /// The failing run.
    #[command(flatten)]
    pub sim: SimArgs,
    /// Write the script here (e.g. scenarios/regressions/NAME.scn).
    #[arg(short = 'o', long)]
    pub output: PathBuf,
    /// Bound on candidate runs while minimizing.
    #[arg(long, default_value_t = crate::shrink::SHRINK_RUNS_MAX_DEFAULT)]
    pub max_runs: usize,
}

/// Flags of `run`.
#[derive(Args, Debug, Clone, PartialEq)]
pub struct RunArgs {
    /// The scenario script (`.scn`).
    pub file: PathBuf,
    /// Override the script's seed.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Write the trace to this file instead of printing it.
    #[arg(long)]
    pub trace: Option<PathBuf>,
    /// Trace format (default: json for a .json/.jsonl --trace file, text otherwise).
    #[arg(long, value_enum)]
    pub format: Option<FormatArg>,
    /// Print only the verdict, not the trace.
    #[arg(long, short)]
    pub quiet: bool,
    /// Also write the clients' history here (EDN, or JSON for a .json/.jsonl file), for
    /// `raftsim check-history` or Jepsen's tools.
    #[arg(long)]
    pub history: Option<PathBuf>,
}

/// Which harness set to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum HarnessSet {
    /// The six Raft scenarios (W12 R1–R6).
    Raft,
    /// The six leader-follower scenarios (W11).
    Replication,
    /// Both sets.
    All,
}

/// Flags of `harness`.
#[derive(Args, Debug, Clone, PartialEq)]
pub struct HarnessArgs {
    /// Which set.
    #[arg(value_enum, default_value_t = HarnessSet::All)]
    pub set: HarnessSet,
}

/// Protocol choice on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProtocolArg {
    /// Simplified Raft.
    Raft,
    /// The leader-follower replicated store (W11).
    Replication,
}

impl std::fmt::Display for ProtocolArg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ProtocolArg::Raft => "raft",
            ProtocolArg::Replication => "replication",
        })
    }
}

/// Trace rendering on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    /// One stable text line per event.
    Text,
    /// JSON Lines.
    Json,
}

/// Flags of `sim` and `replay`. Defaults describe a healthy 3-node cluster; each fault is off
/// until asked for.
#[derive(Args, Debug, Clone, PartialEq)]
pub struct SimArgs {
    /// The seed every random choice derives from.
    #[arg(long)]
    pub seed: u64,
    /// Which protocol to simulate.
    #[arg(long, value_enum, default_value_t = ProtocolArg::Raft)]
    pub protocol: ProtocolArg,
    /// Cluster size (1..=9).
    #[arg(long, default_value_t = 3)]
    pub nodes: u32,
    /// Length of the fault phase in ticks (the heal phase follows).
    #[arg(long, default_value_t = 10_000)]
    pub ticks: Tick,
    /// Simulated clients.
    #[arg(long, default_value_t = 3)]
    pub clients: u32,
    /// Keys the clients use (few keys, many conflicts).
    #[arg(long, default_value_t = 4)]
    pub keys: u32,
    /// Message loss probability.
    #[arg(long, default_value_t = 0.0)]
    pub loss: f64,
    /// Message duplication probability.
    #[arg(long, default_value_t = 0.0)]
    pub dup: f64,
    /// Probability a message has a bit flipped in flight.
    #[arg(long, default_value_t = 0.0)]
    pub corrupt: f64,
    /// Fastest message delivery, in ticks.
    #[arg(long, default_value_t = 1)]
    pub delay_min: Tick,
    /// Slowest message delivery, in ticks (different delays reorder messages).
    #[arg(long, default_value_t = 5)]
    pub delay_max: Tick,
    /// Symmetric network partitions.
    #[arg(long)]
    pub partitions: bool,
    /// One-way link cuts.
    #[arg(long)]
    pub one_way: bool,
    /// Partitions strand each client with its home node (client c next to node (c-1)%nodes+1),
    /// so a cut-off leader keeps serving the clients on its side.
    #[arg(long)]
    pub client_partitions: bool,
    /// Node crashes and restarts.
    #[arg(long)]
    pub crashes: bool,
    /// A crash may tear the last unsynced write.
    #[arg(long)]
    pub torn_writes: bool,
    /// Latent bit rot on disks (a rotten node must refuse to restart).
    #[arg(long)]
    pub rot: bool,
    /// Process pauses (GC pauses): the classic way a stale leader returns.
    #[arg(long)]
    pub pauses: bool,
    /// Aim half of the crashes, pauses and partitions at the current leader.
    #[arg(long)]
    pub target_leader: bool,
    /// Chance a client's write skips a sequence number (exercises gap rejection).
    #[arg(long, default_value_t = 0.0)]
    pub client_gaps: f64,
    /// Share of client operations that are reads, percent (the rest are puts, appends, CAS
    /// and deletes in fixed proportions).
    #[arg(long, default_value_t = 30)]
    pub reads: u32,
    /// Ticks a client waits for a reply before it gives up on the node and retries elsewhere.
    #[arg(long, default_value_t = 400)]
    pub client_timeout: Tick,
    /// Shortest gap between two random faults, ticks.
    #[arg(long, default_value_t = 200)]
    pub fault_interval_min: Tick,
    /// Longest gap between two random faults, ticks.
    #[arg(long, default_value_t = 1_500)]
    pub fault_interval_max: Tick,
    /// Shortest time a fault lasts (crash downtime, partition, pause), ticks.
    #[arg(long, default_value_t = 100)]
    pub fault_duration_min: Tick,
    /// Longest time a fault lasts, ticks.
    #[arg(long, default_value_t = 2_000)]
    pub fault_duration_max: Tick,
    /// Clock drift: each node's clock runs at a rate within ±2%.
    #[arg(long)]
    pub drift: bool,
    /// Pre-vote (Raft thesis §9.6).
    #[arg(long)]
    pub pre_vote: bool,
    /// Check-quorum and leader stickiness.
    #[arg(long)]
    pub check_quorum: bool,
    /// Leader lease reads (implies --check-quorum).
    #[arg(long)]
    pub lease_reads: bool,
    /// Minimum election timeout, ticks.
    #[arg(long, default_value_t = 150)]
    pub election_min: Tick,
    /// Maximum election timeout, ticks.
    #[arg(long, default_value_t = 300)]
    pub election_max: Tick,
    /// Heartbeat interval, ticks.
    #[arg(long, default_value_t = 50)]
    pub heartbeat: Tick,
    /// Lease length, ticks (with --lease-reads).
    #[arg(long, default_value_t = 100)]
    pub lease: Tick,
    /// Raft: snapshot the state machine and compact the log after this many applied entries
    /// (small values exercise InstallSnapshot).
    #[arg(long, default_value_t = RaftConfig::default().snapshot_entries_threshold)]
    pub snapshot_every: u64,
    /// Raft: largest InstallSnapshot chunk, bytes (small values split snapshots into many).
    #[arg(long, default_value_t = RaftConfig::default().snapshot_chunk_bytes)]
    pub snapshot_chunk: usize,
    /// Raft: most entries one AppendEntries carries (small values make catch-up take many
    /// round trips, which opens the window of the Figure 8 commit rule).
    #[arg(long, default_value_t = RaftConfig::default().entries_per_append_max)]
    pub append_max: usize,
    /// Replication: acknowledgements a write needs, counting the leader (default: majority).
    #[arg(long)]
    pub quorum: Option<u32>,
    /// Replication: ship one batch at a time per follower instead of pipelining.
    #[arg(long)]
    pub sequential: bool,
    /// Replication: followers serve reads from their own (possibly stale) store.
    #[arg(long)]
    pub read_from_follower: bool,
    /// Replication: ticks of silence after which the leader marks a follower offline.
    #[arg(long, default_value_t = 200)]
    pub keepalive: Tick,
    /// Replication: records the leader keeps for catch-up (older: a snapshot is sent).
    #[arg(long, default_value_t = 10_000)]
    pub retain: usize,
    /// Ticks for a disk sync to complete (messages wait for it).
    #[arg(long, default_value_t = 1)]
    pub sync_ticks: Tick,
    /// Bound on the heal phase: a leader and every pending operation done within it.
    #[arg(long, default_value_t = 20_000)]
    pub liveness_ticks: Tick,
    /// Skip the linearizability check of the client history.
    #[arg(long)]
    pub no_linearizability: bool,
    /// Search budget of the linearizability checker, per key.
    #[arg(long, default_value_t = 5_000_000)]
    pub linearizability_steps: u64,
    /// Plant a classic Raft bug (builds with the `planted-bugs` feature only): double-vote,
    /// vote-not-persisted, commit-previous-term, leader-keeps-leading, skip-crc,
    /// dedup-only-on-leader, lease-without-validity.
    #[cfg(feature = "planted-bugs")]
    #[arg(long, value_parser = parse_bug)]
    pub plant: Option<raftsim_protocol::planted::Bug>,
    /// Write the trace to this file.
    #[arg(long)]
    pub trace: Option<PathBuf>,
    /// Trace format (default: json for a .json/.jsonl --trace file, text otherwise).
    #[arg(long, value_enum)]
    pub format: Option<FormatArg>,
    /// Print the report as one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Parse a planted bug's name.
#[cfg(feature = "planted-bugs")]
pub fn parse_bug(name: &str) -> Result<raftsim_protocol::planted::Bug, String> {
    raftsim_protocol::planted::Bug::from_name(name).ok_or_else(|| {
        let names: Vec<&str> = raftsim_protocol::planted::Bug::ALL
            .iter()
            .map(|b| b.name())
            .collect();
        format!("unknown bug `{name}`; planted bugs: {}", names.join(", "))
    })
}

/// Clock drift bound used by `--drift`, in ppm.
pub const DRIFT_FLAG_PPM: i32 = 20_000;

impl SimArgs {
    /// The run configuration these flags describe; errors name the flag at fault.
    pub fn to_config(&self) -> Result<RunConfig, String> {
        let drift = if self.drift { DRIFT_FLAG_PPM } else { 0 };
        let raft = RaftConfig {
            nodes_count: self.nodes,
            election_timeout_ticks_min: self.election_min,
            election_timeout_ticks_max: self.election_max,
            heartbeat_ticks: self.heartbeat,
            pre_vote: self.pre_vote,
            check_quorum: self.check_quorum || self.lease_reads,
            lease_reads: self.lease_reads,
            lease_ticks: self.lease,
            // Two clocks drifting in opposite directions: relative drift is twice the bound.
            clock_drift_ppm_max: (2 * drift) as u32,
            snapshot_entries_threshold: self.snapshot_every,
            snapshot_chunk_bytes: self.snapshot_chunk,
            entries_per_append_max: self.append_max,
            ..RaftConfig::default()
        };
        let protocol = match self.protocol {
            ProtocolArg::Raft => {
                raft.validate().map_err(|e| {
                    format!(
                        "{e} (flags --nodes, --election-min/--election-max, --heartbeat, --lease, \
                         --drift, --snapshot-every, --snapshot-chunk, --append-max)"
                    )
                })?;
                ProtocolConfig::Raft(raft)
            }
            ProtocolArg::Replication => {
                let c = ReplicationConfig {
                    nodes_count: self.nodes,
                    quorum: self
                        .quorum
                        .map_or(self.nodes as usize / 2 + 1, |q| q as usize),
                    heartbeat_ticks: self.heartbeat,
                    keepalive_timeout_ticks: self.keepalive,
                    pipeline: !self.sequential,
                    read_from_follower: self.read_from_follower,
                    wal_retain_records: self.retain,
                    ..ReplicationConfig::default()
                };
                c.validate().map_err(|e| {
                    format!("{e} (flags --nodes, --quorum, --heartbeat, --keepalive, --retain)")
                })?;
                ProtocolConfig::Replication(c)
            }
        };
        let network = NetworkConfig {
            delay_ticks_min: self.delay_min,
            delay_ticks_max: self.delay_max,
            loss_probability: self.loss,
            duplicate_probability: self.dup,
            corrupt_probability: self.corrupt,
            clients_partitioned: self.client_partitions,
        };
        network.validate().map_err(|e| {
            format!("{e} (flags --delay-min/--delay-max, --loss, --dup, --corrupt)")
        })?;
        if self.clients == 0 || self.clients > 1000 {
            return Err(format!("--clients must be 1..=1000, got {}", self.clients));
        }
        if self.keys == 0 || self.keys > 10_000 {
            return Err(format!("--keys must be 1..=10000, got {}", self.keys));
        }
        if self.reads > 100 {
            return Err(format!("--reads must be 0..=100, got {}", self.reads));
        }
        if !(0.0..=1.0).contains(&self.client_gaps) {
            return Err(format!(
                "--client-gaps must be in 0..=1, got {}",
                self.client_gaps
            ));
        }
        let workload = WorkloadConfig {
            clients_count: self.clients,
            nodes_count: self.nodes,
            keys_count: self.keys,
            gap_probability: self.client_gaps,
            request_timeout_ticks: self.client_timeout,
            mix: OpMix::with_read_percent(self.reads),
            ..WorkloadConfig::default()
        };
        workload.validate().map_err(|e| {
            format!("{e} (flags --clients, --keys, --reads, --client-timeout, --client-gaps)")
        })?;
        let faults = FaultConfig {
            partitions: self.partitions,
            one_way: self.one_way,
            crashes: self.crashes,
            pauses: self.pauses,
            rot: self.rot,
            target_leader: self.target_leader,
            drift_ppm_max: drift,
            fault_interval_ticks_min: self.fault_interval_min,
            fault_interval_ticks_max: self.fault_interval_max,
            fault_ticks_min: self.fault_duration_min,
            fault_ticks_max: self.fault_duration_max,
        };
        faults.validate().map_err(|e| {
            format!("{e} (flags --fault-interval-min/max, --fault-duration-min/max)")
        })?;
        Ok(RunConfig {
            seed: self.seed,
            cluster: ClusterConfig {
                protocol,
                network,
                disk_sync_ticks: self.sync_ticks,
                torn_writes: self.torn_writes,
            },
            workload,
            faults,
            fault_ticks: self.ticks,
            liveness_ticks_max: self.liveness_ticks,
            checkers: true,
            linearizability: !self.no_linearizability,
            linearizability_steps_max: self.linearizability_steps,
        })
    }

    /// The one command line that reproduces this run: `raftsim replay` with every flag that
    /// differs from its default (output flags left out).
    pub fn replay_command(&self) -> String {
        let d = SimArgs::defaults(self.seed);
        let mut s = format!("raftsim replay --seed {}", self.seed);
        macro_rules! value {
            ($field:ident, $flag:expr) => {
                if self.$field != d.$field {
                    s.push_str(&format!(" --{} {}", $flag, self.$field));
                }
            };
        }
        macro_rules! flag {
            ($field:ident, $flag:expr) => {
                if self.$field {
                    s.push_str(&format!(" --{}", $flag));
                }
            };
        }
        if self.protocol != d.protocol {
            s.push_str(&format!(" --protocol {}", self.protocol));
        }
        value!(nodes, "nodes");
        value!(ticks, "ticks");
        value!(clients, "clients");
        value!(keys, "keys");
        value!(loss, "loss");
        value!(dup, "dup");
        value!(corrupt, "corrupt");
        value!(delay_min, "delay-min");
        value!(delay_max, "delay-max");
        flag!(partitions, "partitions");
        flag!(one_way, "one-way");
        flag!(client_partitions, "client-partitions");
        flag!(crashes, "crashes");
        flag!(torn_writes, "torn-writes");
        flag!(rot, "rot");
        flag!(pauses, "pauses");
        flag!(target_leader, "target-leader");
        value!(client_gaps, "client-gaps");
        value!(client_timeout, "client-timeout");
        value!(reads, "reads");
        value!(fault_interval_min, "fault-interval-min");
        value!(fault_interval_max, "fault-interval-max");
        value!(fault_duration_min, "fault-duration-min");
        value!(fault_duration_max, "fault-duration-max");
        flag!(drift, "drift");
        flag!(pre_vote, "pre-vote");
        flag!(check_quorum, "check-quorum");
        flag!(lease_reads, "lease-reads");
        value!(election_min, "election-min");
        value!(election_max, "election-max");
        value!(heartbeat, "heartbeat");
        value!(lease, "lease");
        value!(snapshot_every, "snapshot-every");
        value!(snapshot_chunk, "snapshot-chunk");
        value!(append_max, "append-max");
        if let Some(q) = self.quorum {
            s.push_str(&format!(" --quorum {q}"));
        }
        flag!(sequential, "sequential");
        flag!(read_from_follower, "read-from-follower");
        value!(keepalive, "keepalive");
        value!(retain, "retain");
        value!(sync_ticks, "sync-ticks");
        value!(liveness_ticks, "liveness-ticks");
        flag!(no_linearizability, "no-linearizability");
        value!(linearizability_steps, "linearizability-steps");
        #[cfg(feature = "planted-bugs")]
        if let Some(bug) = self.plant {
            s.push_str(&format!(" --plant {}", bug.name()));
        }
        s
    }

    /// The flags' defaults with the given seed.
    pub fn defaults(seed: u64) -> SimArgs {
        // Parsed once (the fuzzer asks for every seed): clap stays the one source of defaults.
        static DEFAULTS: std::sync::OnceLock<SimArgs> = std::sync::OnceLock::new();
        let defaults =
            DEFAULTS.get_or_init(
                || match Cli::try_parse_from(["raftsim", "sim", "--seed", "0"]) {
                    Ok(Cli {
                        command: Command::Sim(args),
                    }) => args,
                    other => unreachable!("defaults always parse: {other:?}"),
                },
            );
        SimArgs {
            seed,
            ..defaults.clone()
        }
    }
}

/// Run a parsed command line; returns the process exit code.
pub fn execute(cli: Cli) -> i32 {
    match cli.command {
        Command::Sim(args) | Command::Replay(args) => cmd_sim(&args),
        Command::Run(args) => cmd_run(&args),
        Command::Harness(args) => cmd_harness(&args),
        Command::Shrink(args) => cmd_shrink(&args),
        Command::Fuzz(args) => crate::fuzz::cmd_fuzz(&args),
        Command::History(args) => crate::history::cmd_history(&args),
        Command::CheckHistory(args) => crate::history::cmd_check_history(&args),
        Command::View(args) => crate::view::cmd_view(&args),
        Command::Bench(args) => crate::bench::cmd_bench(&args),
    }
}

/// The trace format: as asked, else inferred from the file extension.
fn trace_format(path: &Option<PathBuf>, format: Option<FormatArg>) -> TraceFormat {
    let json_file = path.as_ref().is_some_and(|p| {
        matches!(
            p.extension().and_then(|e| e.to_str()),
            Some("json") | Some("jsonl") | Some("ndjson")
        )
    });
    match format {
        Some(FormatArg::Json) => TraceFormat::Json,
        Some(FormatArg::Text) => TraceFormat::Text,
        None if json_file => TraceFormat::Json,
        None => TraceFormat::Text,
    }
}

fn open_trace(path: &Option<PathBuf>, format: Option<FormatArg>) -> Result<Trace, String> {
    let format = trace_format(path, format);
    match path {
        None => Ok(Trace::off()),
        Some(p) => {
            let file = File::create(p)
                .map_err(|e| format!("cannot create trace file {}: {e}", p.display()))?;
            Ok(Trace::writer(format, Box::new(BufWriter::new(file))))
        }
    }
}

fn cmd_sim(args: &SimArgs) -> i32 {
    #[cfg(feature = "planted-bugs")]
    raftsim_protocol::planted::set(args.plant);
    let config = match args.to_config() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_USAGE;
        }
    };
    let trace = match open_trace(&args.trace, args.format) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_USAGE;
        }
    };
    let (report, trace) = match run(config, trace) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_USAGE;
        }
    };
    if let Err(e) = trace.finish() {
        eprintln!("error: writing the trace failed: {e}");
        return EXIT_USAGE;
    }
    print_report(&report, args);
    if !report.passed() {
        EXIT_FAILED
    } else if report.linearizability_unknown {
        EXIT_UNKNOWN
    } else {
        EXIT_OK
    }
}

fn cmd_run(args: &RunArgs) -> i32 {
    let file = args.file.display().to_string();
    let source = match std::fs::read_to_string(&args.file) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: cannot read scenario {file}: {e}");
            return EXIT_USAGE;
        }
    };
    let script = match scenario::parse(&file, &source) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return EXIT_USAGE;
        }
    };
    let trace = if args.trace.is_some() {
        match open_trace(&args.trace, args.format) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("error: {e}");
                return EXIT_USAGE;
            }
        }
    } else if args.quiet {
        Trace::off()
    } else {
        Trace::buffer(trace_format(&None, args.format))
    };
    let (outcome, trace) = match scenario::run_script(&script, args.seed, trace) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_USAGE;
        }
    };
    match trace.finish() {
        Ok(Some(bytes)) => print!("{}", String::from_utf8_lossy(&bytes)),
        Ok(None) => {}
        Err(e) => {
            eprintln!("error: writing the trace failed: {e}");
            return EXIT_USAGE;
        }
    }
    for line in &outcome.printed {
        println!("{line}");
    }
    if let Some(path) = &args.history {
        use crate::history::{render_history, HistoryFormat};
        let format = HistoryFormat::from_path(path).unwrap_or(HistoryFormat::Edn);
        if let Err(e) = std::fs::write(path, render_history(&outcome.history, format)) {
            eprintln!("error: cannot write the history to {}: {e}", path.display());
            return EXIT_USAGE;
        }
    }
    let replay = format!("raftsim run {file} --seed {}", outcome.seed);
    match &outcome.failure {
        None => {
            println!(
                "PASS {file} (seed {}, {} ticks, trace hash {})",
                outcome.seed, outcome.report.ticks, outcome.report.trace_hash
            );
            EXIT_OK
        }
        Some(f) => {
            println!("FAIL {file}:{}: {}", f.line, f.text);
            println!("  at t={}: {}", f.tick, f.message);
            println!("  replay: {replay}");
            EXIT_FAILED
        }
    }
}

fn cmd_shrink(args: &ShrinkArgs) -> i32 {
    #[cfg(feature = "planted-bugs")]
    raftsim_protocol::planted::set(args.sim.plant);
    match crate::shrink::shrink(&args.sim, args.max_runs) {
        Err(e) => {
            eprintln!("error: {e}");
            EXIT_USAGE
        }
        Ok(shrunk) => {
            if let Err(e) = std::fs::write(&args.output, &shrunk.script) {
                eprintln!("error: cannot write {}: {e}", args.output.display());
                return EXIT_USAGE;
            }
            println!(
                "shrunk {}: {} fault actions -> {}, {} candidate runs",
                shrunk.property, shrunk.faults_before, shrunk.faults_after, shrunk.runs
            );
            println!(
                "wrote {} ({} lines)",
                args.output.display(),
                shrunk.script.lines().count()
            );
            println!("replay: raftsim run {}", args.output.display());
            EXIT_OK
        }
    }
}

fn cmd_harness(args: &HarnessArgs) -> i32 {
    let sets: Vec<(&str, &[Embedded])> = match args.set {
        HarnessSet::Raft => vec![("raft", RAFT)],
        HarnessSet::Replication => vec![("replication", REPLICATION)],
        HarnessSet::All => vec![("raft", RAFT), ("replication", REPLICATION)],
    };
    let mut passed = 0;
    let mut total = 0;
    let mut details = Vec::new();
    for (_, scenarios) in &sets {
        for s in scenarios.iter() {
            total += 1;
            let (source, _) = source_of(s);
            let verdict = match scenario::parse(s.path, &source) {
                Err(e) => Err(e.to_string()),
                Ok(script) => match scenario::run_script(&script, None, Trace::off()) {
                    Err(e) => Err(e),
                    Ok((outcome, _)) => match outcome.failure {
                        None => Ok(()),
                        Some(f) => Err(format!(
                            "{}:{}: {}\n  at t={}: {}\n  replay: raftsim run {} --seed {}",
                            s.path, f.line, f.text, f.tick, f.message, s.path, outcome.seed
                        )),
                    },
                },
            };
            // Titles padded with dots to one column: `election.................. PASS`.
            let dots = ".".repeat(26usize.saturating_sub(s.title.len()).max(2));
            let label = format!("{}{dots}", s.title);
            match verdict {
                Ok(()) => {
                    passed += 1;
                    println!("[test {total}] {label} PASS");
                }
                Err(why) => {
                    println!("[test {total}] {label} FAIL");
                    details.push(why);
                }
            }
        }
    }
    println!("-------------------------------");
    println!("{passed}/{total} tests passed");
    if !details.is_empty() {
        println!();
        for d in &details {
            println!("FAIL {d}");
        }
    }
    if passed < total {
        EXIT_FAILED
    } else if total == 0 {
        EXIT_USAGE
    } else {
        EXIT_OK
    }
}

fn print_report(report: &RunReport, args: &SimArgs) {
    if args.json {
        let mut v = serde_json::to_value(report).unwrap_or_default();
        if let Some(obj) = v.as_object_mut() {
            obj.insert("replay".into(), args.replay_command().into());
        }
        println!("{v}");
        return;
    }
    let c = &report.cluster;
    println!(
        "raftsim sim --seed {} --protocol {}",
        report.seed, args.protocol
    );
    println!("  events           {}", report.events);
    println!("  ticks            {}", report.ticks);
    println!(
        "  elections        {} started, {} leaders elected, {} timed out",
        report.elections, report.leaders_elected, c.split_votes
    );
    println!("  commits          {}", report.commits);
    println!(
        "  client ops       ok={} fail={} indeterminate={}",
        report.ops_ok, report.ops_fail, report.ops_info
    );
    println!(
        "  messages         sent={} delivered={} dropped={} duplicated={} corrupted={} (rejected by CRC: {})",
        c.messages_sent,
        c.messages_delivered,
        c.messages_dropped,
        c.messages_duplicated,
        c.messages_corrupted,
        c.corrupt_rejected
    );
    println!(
        "  faults           crashes={} restarts={} torn-tails={} rot-detected={} pauses={} partitions={} one-way={}",
        c.crashes, c.restarts, c.torn_writes_recovered, c.corruption_detected, c.pauses, c.partitions, c.one_way_cuts
    );
    if !report.max_lag.is_empty() {
        let lags: Vec<String> = report
            .max_lag
            .iter()
            .map(|(n, l)| format!("n{n}={l}"))
            .collect();
        println!(
            "  follower lag     max {} (records behind the leader)",
            lags.join(" ")
        );
    }
    match report.liveness_ticks {
        Some(t) => println!("  liveness         converged {t} ticks after heal"),
        None => println!("  liveness         not reached"),
    }
    println!("  linearizability  {}", report.linearizability);
    println!("  trace hash       {}", report.trace_hash);
    match &report.failure {
        None => println!("PASS: {} held", report.properties.join(", ")),
        Some(f) => {
            println!("FAIL: {f}");
            println!("replay: {}", args.replay_command());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replay_command_round_trips() {
        let args = SimArgs {
            nodes: 5,
            loss: 0.1,
            crashes: true,
            partitions: true,
            ticks: 20_000,
            ..SimArgs::defaults(7)
        };
        let line = args.replay_command();
        assert_eq!(
            line,
            "raftsim replay --seed 7 --nodes 5 --ticks 20000 --loss 0.1 --partitions --crashes"
        );
        let words: Vec<&str> = line.split(' ').collect();
        let parsed = Cli::try_parse_from(words).unwrap();
        match parsed.command {
            Command::Replay(a) => assert_eq!(a, args),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bad_flags_name_themselves() {
        let args = SimArgs {
            heartbeat: 500,
            ..SimArgs::defaults(1)
        };
        assert!(args.to_config().unwrap_err().contains("heartbeat"));
        let args = SimArgs {
            loss: 2.0,
            ..SimArgs::defaults(1)
        };
        assert!(args.to_config().unwrap_err().contains("loss"));
        // Client and batching knobs added with the swarm's new draws: errors, not panics.
        for (args, flag) in [
            (
                SimArgs {
                    client_timeout: 0,
                    ..SimArgs::defaults(1)
                },
                "--client-timeout",
            ),
            (
                SimArgs {
                    reads: 101,
                    ..SimArgs::defaults(1)
                },
                "--reads",
            ),
            (
                SimArgs {
                    append_max: 0,
                    ..SimArgs::defaults(1)
                },
                "--append-max",
            ),
        ] {
            let e = args.to_config().unwrap_err();
            assert!(e.contains(flag), "{flag}: {e}");
        }
    }
}
