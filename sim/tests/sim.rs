//! End-to-end runs through the whole simulator: determinism, and many seeds with every fault
//! on and no violation.

use raftsim::cli::SimArgs;
use raftsim::run::{run, RunReport};
use raftsim::trace::{Trace, TraceFormat};

fn all_faults(seed: u64, ticks: u64) -> SimArgs {
    SimArgs {
        nodes: if seed.is_multiple_of(2) { 3 } else { 5 },
        ticks,
        clients: 3,
        loss: 0.05,
        dup: 0.02,
        corrupt: 0.01,
        delay_max: 8,
        partitions: true,
        one_way: true,
        crashes: true,
        torn_writes: true,
        rot: seed.is_multiple_of(3),
        pauses: true,
        drift: true,
        pre_vote: seed % 4 < 2,
        check_quorum: seed % 5 < 2,
        ..SimArgs::defaults(seed)
    }
}

fn run_args(args: &SimArgs, trace: Trace) -> (RunReport, Option<Vec<u8>>) {
    let (report, trace) = run(args.to_config().expect("valid flags"), trace).expect("run builds");
    (report, trace.finish().expect("in-memory trace"))
}

#[test]
fn same_seed_same_trace_different_seed_different_trace() {
    let mut hashes = Vec::new();
    for seed in [1, 2, 3, 42] {
        let args = all_faults(seed, 4_000);
        let (a, text_a) = run_args(&args, Trace::buffer(TraceFormat::Text));
        let (b, text_b) = run_args(&args, Trace::buffer(TraceFormat::Text));
        let (c, _) = run_args(&args, Trace::off());
        assert_eq!(a.trace_hash, b.trace_hash, "seed {seed}");
        assert_eq!(text_a, text_b, "seed {seed}: byte-identical traces");
        assert_eq!(
            a.trace_hash, c.trace_hash,
            "seed {seed}: tracing off keeps the hash"
        );
        assert!(
            a.events > 500 && a.commits > 10,
            "seed {seed} did something: {} events, {} commits",
            a.events,
            a.commits
        );
        hashes.push(a.trace_hash);
    }
    let mut unique = hashes.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(
        unique.len(),
        hashes.len(),
        "different seeds, different traces"
    );
}

#[test]
fn json_and_text_traces_describe_the_same_run() {
    let args = all_faults(5, 2_000);
    let (a, text) = run_args(&args, Trace::buffer(TraceFormat::Text));
    let (b, json) = run_args(&args, Trace::buffer(TraceFormat::Json));
    assert_eq!(a.trace_hash, b.trace_hash);
    let text = String::from_utf8(text.unwrap()).unwrap();
    let json = String::from_utf8(json.unwrap()).unwrap();
    assert_eq!(text.lines().count(), json.lines().count());
    for line in json.lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("every line is JSON");
        assert!(v["t"].is_u64() && v["type"].is_string());
    }
    assert!(text.starts_with("t=0      seed=5 raftsim="));
    assert!(text.lines().last().unwrap().contains("trace-hash="));
}

#[test]
fn many_seeds_with_every_fault_hold_every_property() {
    let mut totals = (0u64, 0u64, 0u64, 0u64);
    for seed in 0..200 {
        let args = all_faults(seed, 3_000);
        let (report, _) = run_args(&args, Trace::off());
        assert!(
            report.passed(),
            "seed {seed} failed: {}\nreplay: {}",
            report.failure.as_deref().unwrap_or(""),
            args.replay_command()
        );
        assert!(report.liveness_ticks.is_some(), "seed {seed} converged");
        assert_eq!(report.linearizability, "linearizable", "seed {seed}");
        totals.0 += report.commits;
        totals.1 += report.cluster.crashes;
        totals.2 += report.cluster.corrupt_rejected;
        totals.3 += report.ops_ok;
    }
    // The campaign exercised something.
    assert!(totals.0 > 1_000, "commits {}", totals.0);
    assert!(totals.1 > 100, "crashes {}", totals.1);
    assert!(totals.2 > 10, "corrupt messages rejected {}", totals.2);
    assert!(totals.3 > 1_000, "client ops ok {}", totals.3);
}

mod failures {
    use raftsim::cli::SimArgs;
    use raftsim::cluster::{Event, FaultAction, Payload};
    use raftsim::node::AnyMessage;
    use raftsim::run::{Failure, Sim, LIVENESS};
    use raftsim::trace::Trace;
    use raftsim_protocol::kv::Op;
    use raftsim_protocol::raft::Message;

    fn sim(seed: u64) -> Sim {
        let config = SimArgs::defaults(seed).to_config().unwrap();
        Sim::new(config, Trace::off()).unwrap()
    }

    #[test]
    fn a_panic_inside_a_node_is_caught_and_reported() {
        let mut s = sim(3);
        s.run_until(100).unwrap();
        // A message claiming to come from its own receiver breaks a node precondition.
        s.cluster_mut().schedule(
            101,
            Event::Deliver {
                to: 1,
                from: 1,
                payload: Payload::Intact(AnyMessage::Raft(Message::Vote {
                    term: 1,
                    granted: true,
                    pre_vote: false,
                })),
            },
        );
        match s.run_until(200) {
            Err(Failure::Panic { message, tick }) => {
                assert_eq!(tick, 101);
                assert!(message.contains("invalid sender"), "{message}");
            }
            other => panic!("expected a caught panic, got {other:?}"),
        }
        assert!(s.failure().is_some(), "the run remembers its failure");
    }

    #[test]
    fn liveness_fails_when_no_quorum_can_come_back() {
        let mut s = sim(4);
        s.run_until(1_000).unwrap();
        // Let the clients finish what they started, so c1 is free for the write below.
        s.workload_mut().set_generating(false);
        let mut t = 1_000;
        while s.workload().pending_count() > 0 {
            t += 10;
            assert!(t < 5_000, "clients never went quiet");
            s.run_until(t).unwrap();
        }
        // Two of three disks rot and their nodes crash: on heal they refuse to restart from a
        // corrupt WAL, so no quorum exists and a pending write can never complete.
        for id in [1, 2] {
            s.apply_fault(&FaultAction::Rot(id)).unwrap();
            s.apply_fault(&FaultAction::Crash(id)).unwrap();
        }
        s.submit(
            1,
            Op::Put {
                key: "k".into(),
                value: "v".into(),
            },
            None,
            Some(3),
        )
        .unwrap();
        match s.run_liveness_within(2_000) {
            Err(Failure::Violation(v)) => {
                assert_eq!(v.property, LIVENESS);
                assert!(v.detail.contains("pending"), "{}", v.detail);
            }
            other => panic!("expected a liveness violation, got {other:?}"),
        }
        assert!(s.cluster().is_disk_corrupt(1) && s.cluster().is_disk_corrupt(2));
    }
}

mod replication {
    use super::run_args;
    use raftsim::cli::{ProtocolArg, SimArgs};
    use raftsim::trace::{Trace, TraceFormat};

    fn faulty(seed: u64) -> SimArgs {
        SimArgs {
            protocol: ProtocolArg::Replication,
            nodes: 3 + (seed % 3) as u32,
            ticks: 3_000,
            loss: 0.05,
            dup: 0.02,
            corrupt: 0.01,
            delay_max: 10,
            partitions: true,
            one_way: seed.is_multiple_of(2),
            crashes: true,
            torn_writes: true,
            pauses: true,
            sequential: seed % 4 == 1,
            retain: if seed.is_multiple_of(5) { 8 } else { 10_000 },
            ..SimArgs::defaults(seed)
        }
    }

    #[test]
    fn replication_runs_are_deterministic() {
        for seed in [1, 9] {
            let args = faulty(seed);
            let (a, ta) = run_args(&args, Trace::buffer(TraceFormat::Text));
            let (b, tb) = run_args(&args, Trace::buffer(TraceFormat::Text));
            assert_eq!(ta, tb, "seed {seed}");
            assert_eq!(a.trace_hash, b.trace_hash);
            assert!(a.commits > 10, "seed {seed} committed {}", a.commits);
        }
    }

    #[test]
    fn many_replication_seeds_with_faults_hold_every_property() {
        let mut commits = 0;
        for seed in 0..100 {
            let args = faulty(seed);
            let (report, _) = run_args(&args, Trace::off());
            assert!(
                report.passed(),
                "seed {seed} failed: {}\nreplay: {}",
                report.failure.as_deref().unwrap_or(""),
                args.replay_command()
            );
            assert!(report.properties.contains(&"Convergence"));
            commits += report.commits;
        }
        assert!(commits > 2_000, "commits {commits}");
    }
}
