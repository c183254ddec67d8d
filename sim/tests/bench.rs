//! `raftsim bench --json` end to end, at a small scale: every workload prints its line with the
//! fields the issue asks for, and the work each one reports is the work it was given. Speeds
//! are the benchmark's business, never a test's: nothing here looks at a rate's value.

use std::process::Command;

use serde_json::Value;

fn bench(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_raftsim"))
        .arg("bench")
        .args(args)
        .output()
        .expect("raftsim runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).expect("utf-8 stdout"),
        String::from_utf8(out.stderr).expect("utf-8 stderr"),
    )
}

const FIELDS: [&str; 7] = [
    "workload",
    "wall_s",
    "events",
    "events_per_s",
    "commits_per_s",
    "ticks_per_s",
    "peak_rss_bytes",
];

#[test]
fn every_workload_prints_one_json_line_with_the_issue_fields() {
    let (code, stdout, stderr) = bench(&["--json", "--scale", "0.01"]);
    assert_eq!(code, 0, "stderr: {stderr}");
    let lines: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let names: Vec<&str> = lines
        .iter()
        .map(|v| v["workload"].as_str().expect("workload name"))
        .collect();
    assert_eq!(
        names,
        [
            "commit-batch1",
            "commit-batch64",
            "fuzz-standard",
            "fuzz-standard",
            "check-history",
            "check-history",
            "check-history",
            "long-run"
        ]
    );
    for v in &lines {
        for field in FIELDS {
            assert!(v.get(field).is_some(), "no `{field}` in {v}");
        }
        assert!(v["wall_s"].as_f64().expect("wall_s") > 0.0, "{v}");
        assert!(v["events"].as_u64().expect("events") > 0, "{v}");
        assert!(v["peak_rss_bytes"].as_u64().is_some(), "{v}");
        // The build is named, so a debug build's figures are never taken for a release's.
        let build = v["build"].as_str().expect("build");
        if cfg!(debug_assertions) {
            assert_eq!(build, "debug", "{v}");
        } else {
            assert_ne!(build, "debug", "{v}");
        }
    }

    // The commit workloads commit every proposal (1% of 100,000) and batching cuts the
    // events per commit.
    let (c1, c64) = (&lines[0], &lines[1]);
    assert_eq!(c1["commits"], 1_000);
    assert_eq!(c64["commits"], 1_000);
    assert!(c64["events"].as_u64().expect("events") < c1["events"].as_u64().expect("events"));
    assert!(c1["goal_met"].is_boolean(), "{c1}");

    // fuzz-standard: one and two threads run the same seeds, so the same events, and no
    // seed fails.
    let (f1, f2) = (&lines[2], &lines[3]);
    assert_eq!(
        (f1["jobs"].as_u64(), f2["jobs"].as_u64()),
        (Some(1), Some(2))
    );
    assert_eq!(f1["events"], f2["events"]);
    assert_eq!(f1["seeds"], f2["seeds"]);
    assert_eq!(f1["failures"], 0);
    assert_eq!(f2["failures"], 0);
    assert!(f2["speedup_vs_jobs1"].as_f64().is_some(), "{f2}");

    // check-history: 1, 10 and 50 clients, each with a definite verdict.
    for (v, clients) in lines[4..7].iter().zip([1, 10, 50]) {
        assert_eq!(v["clients"], clients);
        assert_eq!(v["verdict"], "Linearizable", "{v}");
    }

    // long-run: ten RSS samples at evenly spaced ticks.
    let long = &lines[7];
    let ticks: Vec<u64> = long["rss"]
        .as_array()
        .expect("rss samples")
        .iter()
        .map(|s| s["tick"].as_u64().expect("tick"))
        .collect();
    assert_eq!(ticks, (1..=10).map(|i| i * 10_000).collect::<Vec<_>>());
    assert_eq!(long["commits"], 100_000);
}

#[test]
fn only_runs_the_named_workloads_and_rejects_unknown_ones() {
    let (code, stdout, _) = bench(&["--json", "--scale", "0.01", "--only", "commit-batch64"]);
    assert_eq!(code, 0);
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(
        stdout.contains("\"workload\":\"commit-batch64\""),
        "{stdout}"
    );

    let (code, stdout, stderr) = bench(&["--only", "commit-batch2"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stdout.is_empty());
    assert!(
        stderr.contains("unknown workload `commit-batch2`") && stderr.contains("long-run"),
        "{stderr}"
    );

    let (code, _, stderr) = bench(&["--scale", "0"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("--scale"), "{stderr}");
}
