//! `raftsim fuzz`: the swarm is a pure function of the seed, replay lines reproduce a seed, and
//! campaigns are clean, exercise the basics, and do not depend on the number of threads.

use std::collections::BTreeSet;
use std::sync::OnceLock;

use clap::Parser;
use raftsim::cli::{Cli, Command, ProtocolArg, SimArgs};
use raftsim::fuzz::{
    coverage_rows, render, run_campaign, swarm, DeterminismCheck, FuzzArgs, FuzzSummary, SeedRange,
};
use raftsim::run::run;
use raftsim::trace::Trace;

/// `fuzz`'s flags on their own, as the CLI will parse them.
#[derive(Parser, Debug)]
struct FuzzCli {
    #[command(flatten)]
    fuzz: FuzzArgs,
}

fn parse(words: &str) -> Result<FuzzArgs, String> {
    let argv = std::iter::once("fuzz").chain(words.split_whitespace());
    FuzzCli::try_parse_from(argv)
        .map(|c| c.fuzz)
        .map_err(|e| e.to_string())
}

fn args(words: &str) -> FuzzArgs {
    let mut a = parse(words).unwrap_or_else(|e| panic!("{words}: {e}"));
    a.no_progress = true;
    a
}

fn campaign(words: &str) -> FuzzSummary {
    run_campaign(&args(words)).unwrap_or_else(|e| panic!("{words}: {e}"))
}

/// Fail with every failing seed's replay line, so a real bug is reported, not hidden.
fn assert_clean(s: &FuzzSummary) {
    let report: Vec<String> = s
        .failures
        .iter()
        .map(|f| {
            format!(
                "seed {}: {}: {}\n  replay: {}",
                f.seed,
                f.property,
                f.headline(),
                f.replay
            )
        })
        .collect();
    assert!(
        s.failures.is_empty(),
        "{} failures:\n{}",
        s.failures.len(),
        report.join("\n")
    );
}

fn hash_of(args: &SimArgs) -> String {
    let (report, _) = run(args.to_config().expect("valid"), Trace::off()).expect("runs");
    report.trace_hash
}

/// The campaign of the jobs tests, with two threads (shared by the coverage test).
fn raft_campaign_jobs_2() -> &'static FuzzSummary {
    static S: OnceLock<FuzzSummary> = OnceLock::new();
    S.get_or_init(|| campaign("--seeds 0..40 --ticks 1500 --jobs 2"))
}

#[test]
fn swarm_is_a_function_of_the_seed_and_varies_across_seeds() {
    for protocol in [ProtocolArg::Raft, ProtocolArg::Replication] {
        let mut distinct = BTreeSet::new();
        let mut sizes = BTreeSet::new();
        let (mut on, mut off) = ([0u32; 8], [0u32; 8]);
        for seed in 0..300 {
            let a = swarm(seed, protocol, 2_000);
            assert_eq!(a, swarm(seed, protocol, 2_000), "seed {seed}");
            assert_eq!((a.seed, a.protocol, a.ticks), (seed, protocol, 2_000));
            a.to_config()
                .unwrap_or_else(|e| panic!("seed {seed} {protocol}: {e}"));
            assert!(!a.read_from_follower, "never: not linearizable by design");
            assert!((1..=5).contains(&a.clients) && (1..=6).contains(&a.keys));
            assert!(a.loss <= 0.2 && a.dup <= 0.1 && a.corrupt <= 0.05);
            assert!((1..=20).contains(&a.delay_max));
            if a.lease_reads {
                assert!(a.check_quorum && a.lease < a.election_min);
            }
            sizes.insert(a.nodes);
            let kinds = [
                a.loss > 0.0,
                a.dup > 0.0,
                a.corrupt > 0.0,
                a.delay_max > a.delay_min,
                a.partitions,
                a.crashes,
                a.rot,
                a.drift,
            ];
            for (k, &x) in kinds.iter().enumerate() {
                if x {
                    on[k] += 1;
                } else {
                    off[k] += 1;
                }
            }
            distinct.insert(a.replay_command().replace(&format!("--seed {seed} "), ""));
        }
        assert!(
            distinct.len() > 290,
            "{protocol}: {} configs",
            distinct.len()
        );
        assert!(
            on.iter().chain(&off).all(|&n| n > 50),
            "{protocol}: every fault kind both on and off: on {on:?} off {off:?}"
        );
        match protocol {
            ProtocolArg::Raft => assert_eq!(sizes, BTreeSet::from([1, 3, 4, 5, 7])),
            ProtocolArg::Replication => assert_eq!(sizes, BTreeSet::from([2, 3, 4, 5])),
        }
    }
    let raft: Vec<SimArgs> = (0..300)
        .map(|s| swarm(s, ProtocolArg::Raft, 2_000))
        .collect();
    for feature in [
        |a: &SimArgs| a.pre_vote,
        |a: &SimArgs| a.check_quorum,
        |a: &SimArgs| a.lease_reads,
    ] {
        let n = raft.iter().filter(|a| feature(a)).count();
        assert!((30..270).contains(&n), "a raft feature on in {n} of 300");
    }
    let repl: Vec<SimArgs> = (0..300)
        .map(|s| swarm(s, ProtocolArg::Replication, 2_000))
        .collect();
    assert!(repl.iter().any(|a| a.quorum == Some(a.nodes)));
    assert!(repl.iter().any(|a| a.quorum.is_none()));
    assert!(repl.iter().any(|a| a.sequential) && repl.iter().any(|a| !a.sequential));
}

#[test]
fn a_replay_line_parses_back_to_the_same_run() {
    for (seed, protocol) in [
        (3, ProtocolArg::Raft),
        (17, ProtocolArg::Raft),
        (4, ProtocolArg::Replication),
        (29, ProtocolArg::Replication),
    ] {
        let a = swarm(seed, protocol, 800);
        let line = a.replay_command();
        assert!(line.starts_with(&format!("raftsim replay --seed {seed}")));
        let parsed = match Cli::try_parse_from(line.split(' ')) {
            Ok(Cli {
                command: Command::Replay(p),
            }) => p,
            other => panic!("{line}: {other:?}"),
        };
        assert_eq!(parsed, a, "{line}");
        assert_eq!(hash_of(&parsed), hash_of(&a), "{line}");
    }
}

#[test]
fn a_raft_campaign_is_clean_and_the_same_on_one_or_two_threads() {
    let two = raft_campaign_jobs_2();
    let one = campaign("--seeds 0..40 --ticks 1500 --jobs 1");
    assert_clean(two);
    assert_eq!(two.seeds, 40);
    assert_eq!(
        two.runs.iter().map(|r| r.seed).collect::<Vec<_>>(),
        (0..40).collect::<Vec<_>>()
    );
    assert_eq!(one.runs, two.runs, "per-seed hashes, events and verdicts");
    let normalize = |s: &FuzzSummary| FuzzSummary {
        wall_s: 0.0,
        events_per_s: 0.0,
        jobs: 0,
        ..s.clone()
    };
    assert_eq!(normalize(&one), normalize(two));
    assert!(two.events > 40_000, "{} events", two.events);
}

#[test]
fn a_replication_campaign_is_clean() {
    let s = campaign("--seeds 0..20 --protocol replication --ticks 1500 --jobs 2");
    assert_clean(&s);
    assert_eq!(s.seeds, 20);
    let rows = coverage_rows(ProtocolArg::Replication);
    assert!(!rows.contains(&"leader changes") && rows.contains(&"crashes"));
    assert_eq!(s.coverage.keys().count(), rows.len());
    assert!(s.coverage["crashes"] > 0 && s.coverage["redirects followed"] > 0);
}

#[test]
fn coverage_shows_the_basics_were_exercised() {
    let s = raft_campaign_jobs_2();
    for row in [
        "crashes",
        "leader changes",
        "redirects followed",
        "partitions",
    ] {
        assert!(s.coverage[row] > 0, "{row}: {:?}", s.coverage);
    }
    let text = render(s, false);
    assert!(text.contains("sometimes (summed over 40 seeds):"), "{text}");
    for row in coverage_rows(ProtocolArg::Raft) {
        let line = text
            .lines()
            .find(|l| l.trim_start().starts_with(row))
            .unwrap_or_else(|| panic!("row {row} missing:\n{text}"));
        assert_eq!(
            line.ends_with("<- never exercised"),
            s.coverage[row] == 0,
            "{line}"
        );
    }
    assert!(text.ends_with("PASS: 40 seeds, no failure\n"), "{text}");
}

#[test]
fn the_json_summary_is_the_last_line() {
    let s = campaign("--seeds 100..106 --ticks 800 --jobs 2 --check-determinism --json");
    assert_clean(&s);
    // Seed 100 is the only one divisible by 10.
    assert_eq!(s.determinism_checked, 1);
    let out = render(&s, true);
    let last = out.lines().last().expect("output");
    let v: serde_json::Value = serde_json::from_str(last).expect("one JSON object");
    for key in [
        "seeds",
        "failures",
        "failed_seeds",
        "events",
        "ticks",
        "events_per_s",
        "wall_s",
        "failures_by_property",
        "coverage",
    ] {
        assert!(v.get(key).is_some(), "{key} missing in {last}");
    }
    assert_eq!(v["seeds"], 6);
    assert_eq!(v["failures"], 0);
    assert_eq!(v["failed_seeds"], serde_json::json!([]));
    assert_eq!(v["events"], s.events);
    assert!(v["failures_by_property"].as_object().unwrap().is_empty());
    let coverage = v["coverage"].as_object().unwrap();
    assert_eq!(coverage.len(), coverage_rows(ProtocolArg::Raft).len());
    assert!(coverage["crashes"].is_u64());
}

/// A seed's first run keeps its trace hash only when something compares it later; the
/// determinism check then still compares every seed it re-runs.
#[test]
fn only_runs_compared_later_keep_their_trace_hash() {
    let hashed = |s: &FuzzSummary| -> Vec<u64> {
        s.runs
            .iter()
            .filter(|r| !r.trace_hash.is_empty())
            .map(|r| r.seed)
            .collect()
    };
    let plain = campaign("--seeds 101..105 --ticks 500 --jobs 2");
    assert_clean(&plain);
    assert_eq!(hashed(&plain), Vec::<u64>::new());
    // No seed divisible by 10: the check falls back to the first seed, which kept its hash.
    let sample = campaign("--seeds 101..105 --ticks 500 --jobs 2 --check-determinism");
    assert_clean(&sample);
    assert_eq!(
        (hashed(&sample), sample.determinism_checked),
        (vec![101], 1)
    );
    let sample = campaign("--seeds 108..112 --ticks 500 --jobs 2 --check-determinism");
    assert_clean(&sample);
    assert_eq!(hashed(&sample), [108, 110]);
    let all = campaign("--seeds 101..105 --ticks 500 --jobs 2 --check-determinism=all");
    assert_clean(&all);
    assert_eq!(
        (hashed(&all), all.determinism_checked),
        ((101..105).collect(), 4)
    );
    // The runs are the same ones, hashed or not.
    let events = |s: &FuzzSummary| s.runs.iter().map(|r| r.events).collect::<Vec<_>>();
    assert_eq!(events(&plain), events(&all));
}

#[test]
fn bad_usage_is_a_clean_error() {
    let e = parse("--seeds 5..5").unwrap_err();
    assert!(e.contains("empty") && e.contains("5..5"), "{e}");
    let e = parse("--seeds 0..10 --shard 3/2").unwrap_err();
    assert!(e.contains("3/2") && e.contains("below"), "{e}");
    assert!(parse("--seeds 10").unwrap_err().contains("A..B"));
    assert!(parse("--seeds 0..10 --jobs 0").is_err());
    assert!(parse("--seeds 0..10 --time-budget -1").is_err());
    assert!(parse("--ticks 10").is_err(), "--seeds is required");
    // Struct-built arguments are checked too.
    let mut a = args("--seeds 0..10");
    a.seeds = SeedRange { start: 5, end: 5 };
    assert!(run_campaign(&a).unwrap_err().contains("empty"));
    // An --out directory that cannot be created.
    let file = std::env::temp_dir().join(format!("raftsim-fuzz-test-{}", std::process::id()));
    std::fs::write(&file, b"not a directory").unwrap();
    let mut a = args("--seeds 0..1");
    a.out = Some(file.join("traces"));
    let e = run_campaign(&a).unwrap_err();
    assert!(e.contains("--out") && e.contains("cannot create"), "{e}");
    let _ = std::fs::remove_file(&file);
}

#[test]
fn flags_parse_with_their_defaults() {
    let a = parse("--seeds 3..9").unwrap();
    assert_eq!(a.seeds, SeedRange { start: 3, end: 9 });
    assert_eq!(
        (a.protocol, a.ticks, a.jobs, a.shard, a.check_determinism),
        (ProtocolArg::Raft, 3_000, None, None, None)
    );
    let a = parse("--seeds 0..9 --check-determinism --json").unwrap();
    assert_eq!(a.check_determinism, Some(DeterminismCheck::Sample));
    assert!(a.json);
    let a = parse("--seeds 0..9 --check-determinism=all").unwrap();
    assert_eq!(a.check_determinism, Some(DeterminismCheck::All));
    let a = parse("--seeds 0..9 --shard 1/3 --protocol replication --jobs 3").unwrap();
    assert_eq!(a.shard.map(|s| (s.index, s.count)), Some((1, 3)));
    assert_eq!((a.protocol, a.jobs), (ProtocolArg::Replication, Some(3)));
}

#[test]
fn shards_split_the_seeds_and_the_budget_stops_at_a_prefix() {
    let s = campaign("--seeds 0..9 --shard 1/3 --ticks 500 --jobs 2 --check-determinism=all");
    assert_clean(&s);
    assert_eq!(s.runs.iter().map(|r| r.seed).collect::<Vec<_>>(), [1, 4, 7]);
    assert_eq!(s.determinism_checked, 3);
    // A budget far too small for 5000 seeds: the seeds that ran are the first ones, in order.
    let s = campaign("--seeds 50..5050 --ticks 500 --jobs 2 --time-budget 0.1");
    assert_clean(&s);
    assert!(s.seeds < 5000, "{} seeds", s.seeds);
    assert_eq!(s.seeds_planned, 5000);
    assert_eq!(s.next_seed, Some(50 + s.seeds));
    let seeds: Vec<u64> = s.runs.iter().map(|r| r.seed).collect();
    assert_eq!(seeds, (50..50 + s.seeds).collect::<Vec<_>>());
    assert!(render(&s, false).contains("time budget spent"));
}
