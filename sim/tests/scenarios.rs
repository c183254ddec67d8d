//! Every scenario under `scenarios/` runs and passes, and its text trace matches the reviewed
//! snapshot under `snapshots/`. A change of behaviour fails here with a diff until a person
//! reviews it (`cargo insta review`) and accepts it.

use std::path::{Path, PathBuf};

use raftsim::scenario::{parse, run_script};
use raftsim::trace::{Trace, TraceFormat};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("sim/ sits in the repository root")
        .to_path_buf()
}

/// Every `.scn` file under `dir`, recursively, sorted.
fn scenario_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "scn") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn every_scenario_passes_and_matches_its_snapshot() {
    let root = repo_root();
    let files = scenario_files(&root.join("scenarios"));
    assert!(files.len() >= 11, "scenarios found: {files:?}");
    let mut failures = Vec::new();
    for path in &files {
        let rel = path.strip_prefix(&root).unwrap().display().to_string();
        let source = std::fs::read_to_string(path).unwrap();
        let script = parse(&rel, &source).unwrap_or_else(|e| panic!("{e}"));
        let (outcome, trace) = run_script(&script, None, Trace::buffer(TraceFormat::Text))
            .unwrap_or_else(|e| panic!("{rel}: {e}"));
        if let Some(f) = &outcome.failure {
            failures.push(format!(
                "{rel}:{}: {} — at t={}: {}",
                f.line, f.text, f.tick, f.message
            ));
        }
        let text = String::from_utf8(trace.finish().unwrap().unwrap()).unwrap();
        // Snapshot name: the path under scenarios/ with separators flattened.
        let name = rel
            .trim_start_matches("scenarios/")
            .trim_end_matches(".scn")
            .replace(['/', '\\'], "__");
        insta::with_settings!({
            snapshot_path => root.join("snapshots"),
            prepend_module_to_snapshot => false,
            description => format!("trace of {rel}"),
            omit_expression => true,
        }, {
            insta::assert_snapshot!(name, text);
        });
    }
    assert!(
        failures.is_empty(),
        "failing scenarios:\n{}",
        failures.join("\n")
    );
}

#[test]
fn scenarios_are_deterministic() {
    let root = repo_root();
    for path in scenario_files(&root.join("scenarios")).iter().take(4) {
        let source = std::fs::read_to_string(path).unwrap();
        let script = parse("x.scn", &source).unwrap();
        let (a, _) = run_script(&script, None, Trace::off()).unwrap();
        let (b, _) = run_script(&script, None, Trace::off()).unwrap();
        assert_eq!(
            a.report.trace_hash,
            b.report.trace_hash,
            "{}",
            path.display()
        );
    }
}

/// A scenario's client history, exported as EDN, is read back by `check-history`'s reader and
/// gets the same verdict from it as from the simulator (issue: histories from scenario files).
#[test]
fn scenario_histories_round_trip_through_check_history() {
    use raftsim::checker::linearizability::Verdict;
    use raftsim::history::{check_history, read_history, render_history, HistoryFormat};
    let root = repo_root();
    for (file, linearizable) in [
        ("scenarios/replication/lww-clock-skew.scn", false),
        ("scenarios/raft/full-pipeline.scn", true),
    ] {
        let source = std::fs::read_to_string(root.join(file)).unwrap();
        let script = parse(file, &source).unwrap();
        let (outcome, _) = run_script(&script, None, Trace::off()).unwrap();
        assert!(!outcome.history.is_empty(), "{file}");
        for format in [HistoryFormat::Edn, HistoryFormat::Json] {
            let text = render_history(&outcome.history, format);
            let parsed = read_history(file, &text, format).expect("our export parses");
            let report = check_history(&parsed, 1_000_000);
            assert_eq!(
                matches!(report.verdict, Verdict::Linearizable),
                linearizable,
                "{file} {format:?}: {:?}",
                report.verdict
            );
        }
    }
}
