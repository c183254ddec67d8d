//! Histories: export a run's history, read it back (EDN and JSON), check hand-made histories,
//! and read real Jepsen-style EDN.

use raftsim::checker::linearizability::{self, Limits, Outcome, Verdict};
use raftsim::cli::SimArgs;
use raftsim::history::{
    check_history, generate_history, history_events, read_history, render_history,
    run_with_history, witness_lines, Event, EventType, HistoryFormat, ParsedHistory,
};
use raftsim::trace::Trace;
use raftsim_protocol::kv::{Op, OpResult};

const BUDGET: u64 = 50_000_000;

fn edn(text: &str) -> ParsedHistory {
    read_history("h.edn", text, HistoryFormat::Edn).unwrap_or_else(|e| panic!("{e}"))
}

fn verdict(text: &str) -> Verdict {
    check_history(&edn(text), BUDGET).verdict
}

fn edn_error(text: &str) -> String {
    read_history("bad.edn", text, HistoryFormat::Edn)
        .expect_err("malformed")
        .to_string()
}

/// A faulty run with every fault on: a history with retries, failures and concurrency.
fn faulty_run(seed: u64) -> Vec<linearizability::HistoryOp> {
    let args = SimArgs {
        nodes: 5,
        clients: 5,
        ticks: 6_000,
        loss: 0.15,
        dup: 0.1,
        crashes: true,
        partitions: true,
        pauses: true,
        ..SimArgs::defaults(seed)
    };
    let (report, _, history) = run_with_history(&args, Trace::off()).expect("run");
    assert!(report.passed(), "{:?}", report.failure);
    assert_eq!(report.linearizability, "linearizable");
    assert!(history.len() > 40, "{} operations", history.len());
    history
}

#[test]
fn a_run_history_round_trips_through_edn_and_json() {
    for seed in [3, 11] {
        let history = faulty_run(seed);
        for format in [HistoryFormat::Edn, HistoryFormat::Json] {
            let text = render_history(&history, format);
            let parsed = read_history("run", &text, format).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(parsed.ops.len(), history.len(), "{format:?}");
            assert_eq!(parsed.events.len(), 2 * history.len());
            let unlined: Vec<_> = parsed
                .events
                .iter()
                .cloned()
                .map(|e| Event { line: 0, ..e })
                .collect();
            assert_eq!(unlined, history_events(&history));
            assert!(parsed
                .events
                .iter()
                .enumerate()
                .all(|(i, e)| e.line == i as u32 + 1));
            let report = check_history(&parsed, BUDGET);
            assert_eq!(
                report.verdict,
                Verdict::Linearizable,
                "seed {seed} {format:?}"
            );
            // The same operations, in the checker's model.
            for (read, op) in parsed.ops.iter().zip(
                history_events(&history)
                    .iter()
                    .filter(|e| e.kind == EventType::Invoke),
            ) {
                assert_eq!(read.op.key(), op.key);
            }
        }
    }
}

#[test]
fn generated_histories_are_linearizable_in_both_models_and_deterministic() {
    let a = generate_history(6, 3_000, 3, 42);
    assert_eq!(a, generate_history(6, 3_000, 3, 42));
    assert_ne!(a, generate_history(6, 3_000, 3, 43));
    assert_eq!(a.len(), 3_000);
    let info = a.iter().filter(|h| h.outcome == Outcome::Info).count();
    let fail = a.iter().filter(|h| h.outcome == Outcome::Fail).count();
    assert!(info > 10 && fail > 30, "info={info} fail={fail}");
    assert!(a.iter().any(|h| h.complete_tick.is_none()));
    assert!(a
        .iter()
        .any(|h| matches!(h.outcome, Outcome::Ok(OpResult::CasMismatch { .. }))));
    let limits = Limits { steps_max: BUDGET };
    let report = linearizability::check(&a, None, &limits);
    assert_eq!(report.verdict, Verdict::Linearizable);
    // Concurrent: some operations overlap.
    let overlapping = a.windows(2).any(|w| {
        w[0].complete_tick
            .is_some_and(|t| t > w[1].invoke_tick && w[0].client != w[1].client)
    });
    assert!(overlapping);
    // Through EDN and the empty-string model, still linearizable.
    for format in [HistoryFormat::Edn, HistoryFormat::Json] {
        let text = render_history(&a, format);
        let parsed = read_history("gen", &text, format).unwrap();
        assert_eq!(
            check_history(&parsed, BUDGET).verdict,
            Verdict::Linearizable
        );
    }
}

#[test]
fn export_orders_completions_before_invocations_and_renumbers_after_info() {
    let op = |client, op, invoke, complete, outcome| linearizability::HistoryOp {
        client,
        op: std::sync::Arc::new(op),
        invoke_tick: invoke,
        complete_tick: complete,
        outcome,
    };
    let put = |v: &str| Op::Put {
        key: "k".into(),
        value: v.into(),
    };
    let get = || Op::Get { key: "k".into() };
    let history = vec![
        op(1, put("a"), 0, Some(5), Outcome::Info),
        op(2, get(), 1, Some(5), Outcome::Ok(OpResult::NotFound)),
        op(
            2,
            get(),
            5,
            Some(9),
            Outcome::Ok(OpResult::Value("a".into())),
        ),
        op(1, put("b"), 6, None, Outcome::Info),
    ];
    let text = render_history(&history, HistoryFormat::Edn);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines,
        [
            r#"{:process 0, :type :invoke, :f :put, :key "k", :value "a", :time 0}"#,
            r#"{:process 1, :type :invoke, :f :get, :key "k", :value nil, :time 1}"#,
            r#"{:process 0, :type :info, :f :put, :key "k", :value "a", :time 5}"#,
            r#"{:process 1, :type :ok, :f :get, :key "k", :value nil, :time 5}"#,
            r#"{:process 1, :type :invoke, :f :get, :key "k", :value nil, :time 5}"#,
            r#"{:process 2, :type :invoke, :f :put, :key "k", :value "b", :time 6}"#,
            r#"{:process 1, :type :ok, :f :get, :key "k", :value "a", :time 9}"#,
            r#"{:process 2, :type :info, :f :put, :key "k", :value "b", :time 9}"#,
        ]
    );
    let json = render_history(&history, HistoryFormat::Json);
    assert_eq!(
        json.lines().next().unwrap(),
        r#"{"process":0,"type":"invoke","f":"put","key":"k","value":"a","time":0}"#
    );
    assert_eq!(verdict(&text), Verdict::Linearizable);
}

#[test]
fn hand_made_linearizable_histories() {
    // Sequential put, append, get; a read of nil is the initial empty string.
    assert_eq!(
        verdict(
            r#"
            {:process 0, :type :invoke, :f :get, :key "x", :value nil}
            {:process 0, :type :ok, :f :get, :key "x", :value nil}
            {:process 0, :type :invoke, :f :put, :key "x", :value "a"}
            {:process 0, :type :ok, :f :put, :key "x", :value "a"}
            {:process 1, :type :invoke, :f :append, :key "x", :value "b"}
            {:process 1, :type :ok, :f :append, :key "x", :value "b"}
            {:process 0, :type :invoke, :f :cas, :key "x", :value ["ab" "c"]}
            {:process 0, :type :ok, :f :cas, :key "x", :value ["ab" "c"]}
            {:process 1, :type :invoke, :f :get, :key "x", :value nil}
            {:process 1, :type :ok, :f :get, :key "x", :value "c"}
            {:process 1, :type :invoke, :f :delete, :key "x", :value nil}
            {:process 1, :type :ok, :f :delete, :key "x", :value nil}
            {:process 1, :type :invoke, :f :get, :key "x", :value nil}
            {:process 1, :type :ok, :f :get, :key "x", :value nil}
            {:process 0, :type :invoke, :f :cas, :key "x", :value [nil "d"]}
            {:process 0, :type :ok, :f :cas, :key "x", :value [nil "d"]}
            "#
        ),
        Verdict::Linearizable
    );
    // Concurrent writes: the read may see either, and a failed cas took no effect.
    assert_eq!(
        verdict(
            r#"
            {:process 0, :type :invoke, :f :put, :key "x", :value "1"}
            {:process 1, :type :invoke, :f :put, :key "x", :value "2"}
            {:process 2, :type :invoke, :f :cas, :key "x", :value ["0" "3"]}
            {:process 1, :type :ok, :f :put, :key "x", :value "2"}
            {:process 0, :type :ok, :f :put, :key "x", :value "1"}
            {:process 2, :type :fail, :f :cas, :key "x", :value ["0" "3"]}
            {:process 2, :type :invoke, :f :get, :key "x", :value nil}
            {:process 2, :type :ok, :f :get, :key "x", :value "2"}
            "#
        ),
        Verdict::Linearizable
    );
}

#[test]
fn info_operations_may_or_may_not_have_taken_effect() {
    // The :info put took effect: a later read sees it.
    let took_effect = r#"
        {:process 0, :type :invoke, :f :put, :key "x", :value "a"}
        {:process 0, :type :info, :f :put, :key "x", :value "a"}
        {:process 1, :type :invoke, :f :get, :key "x", :value nil}
        {:process 1, :type :ok, :f :get, :key "x", :value "a"}
    "#;
    assert_eq!(verdict(took_effect), Verdict::Linearizable);
    // It did not: the read still sees the initial value.
    let did_not = r#"
        {:process 0, :type :invoke, :f :put, :key "x", :value "a"}
        {:process 0, :type :info, :f :put, :key "x", :value "a"}
        {:process 1, :type :invoke, :f :get, :key "x", :value nil}
        {:process 1, :type :ok, :f :get, :key "x", :value nil}
    "#;
    assert_eq!(verdict(did_not), Verdict::Linearizable);
    // It may take effect late, even after a read that did not see it (never completed).
    assert_eq!(
        verdict(
            r#"
            {:process 0, :type :invoke, :f :append, :key "x", :value "a"}
            {:process 1, :type :invoke, :f :get, :key "x", :value nil}
            {:process 1, :type :ok, :f :get, :key "x", :value nil}
            {:process 1, :type :invoke, :f :get, :key "x", :value nil}
            {:process 1, :type :ok, :f :get, :key "x", :value "a"}
            "#
        ),
        Verdict::Linearizable
    );
    // But a :fail never took effect.
    let failed = r#"
        {:process 0, :type :invoke, :f :put, :key "x", :value "a"}
        {:process 0, :type :fail, :f :put, :key "x", :value "a"}
        {:process 1, :type :invoke, :f :get, :key "x", :value nil}
        {:process 1, :type :ok, :f :get, :key "x", :value "a"}
    "#;
    assert!(matches!(verdict(failed), Verdict::NotLinearizable { .. }));
}

#[test]
fn hand_made_non_linearizable_histories_come_with_a_witness() {
    // A stale read: "b" was written, completed, and then a read sees the older "a".
    let text = r#"
        {:process 0, :type :invoke, :f :put, :key "y", :value "z"}
        {:process 0, :type :ok, :f :put, :key "y", :value "z"}
        {:process 0, :type :invoke, :f :put, :key "x", :value "a"}
        {:process 0, :type :ok, :f :put, :key "x", :value "a"}
        {:process 1, :type :invoke, :f :put, :key "x", :value "b"}
        {:process 1, :type :ok, :f :put, :key "x", :value "b"}
        {:process 2, :type :invoke, :f :get, :key "x", :value nil}
        {:process 2, :type :ok, :f :get, :key "x", :value "a"}
    "#;
    let parsed = edn(text);
    let report = check_history(&parsed, BUDGET);
    let Verdict::NotLinearizable { key, ops } = &report.verdict else {
        panic!("{:?}", report.verdict);
    };
    assert_eq!(key, "x");
    let lines = witness_lines(&parsed, ops);
    assert!(lines.len() >= 4, "{lines:#?}");
    assert!(
        lines.iter().all(|l| l.contains(r#":key "x""#)),
        "{lines:#?}"
    );
    assert!(lines.iter().any(|l| l.ends_with("; line 9")), "{lines:#?}");

    // An append lost: two appends completed, a later read holds only one.
    assert!(matches!(
        verdict(
            r#"
            {:process 0, :type :invoke, :f :append, :key "x", :value "a"}
            {:process 1, :type :invoke, :f :append, :key "x", :value "b"}
            {:process 0, :type :ok, :f :append, :key "x", :value "a"}
            {:process 1, :type :ok, :f :append, :key "x", :value "b"}
            {:process 0, :type :invoke, :f :get, :key "x", :value nil}
            {:process 0, :type :ok, :f :get, :key "x", :value "b"}
            "#
        ),
        Verdict::NotLinearizable { .. }
    ));
    // Two cas from the same expected value both succeed.
    assert!(matches!(
        verdict(
            r#"
            {:process 0, :type :invoke, :f :cas, :key "x", :value [nil "1"]}
            {:process 1, :type :invoke, :f :cas, :key "x", :value [nil "2"]}
            {:process 0, :type :ok, :f :cas, :key "x", :value [nil "1"]}
            {:process 1, :type :ok, :f :cas, :key "x", :value [nil "2"]}
            "#
        ),
        Verdict::NotLinearizable { .. }
    ));
    // An :info write is no excuse for a read of a value never written.
    assert!(matches!(
        verdict(
            r#"
            {:process 0, :type :invoke, :f :put, :key "x", :value "a"}
            {:process 0, :type :info, :f :put, :key "x", :value "a"}
            {:process 1, :type :invoke, :f :get, :key "x", :value nil}
            {:process 1, :type :ok, :f :get, :key "x", :value "q"}
            "#
        ),
        Verdict::NotLinearizable { .. }
    ));
}

#[test]
fn a_tiny_budget_gives_unknown() {
    let history = generate_history(8, 2_000, 1, 5);
    let parsed = read_history(
        "gen",
        &render_history(&history, HistoryFormat::Edn),
        HistoryFormat::Edn,
    )
    .unwrap();
    assert!(matches!(
        check_history(&parsed, 10).verdict,
        Verdict::Unknown { .. }
    ));
}

#[test]
fn real_jepsen_style_edn_parses() {
    // Commas, keys in any order, extra keys, keyword values, a nemesis, comments, a record
    // tag, integers (Knossos registers), :read/:write, and no :key (one register).
    let text = r#"
        ; a Jepsen history
        {:type :invoke, :f :write, :value 3, :process 0, :time 1395, :index 0}
        {:type :info, :f :start, :value nil, :process :nemesis, :time 1400, :index 1}
        {:type :invoke, :f :read, :value nil, :process 1, :time 1500, :index 2}
        #jepsen.history.Op{:type :ok, :f :write, :value 3, :process 0, :time 2000, :index 3}
        {:type :ok, :f :read, :value 3, :process 1, :time 2100, :index 4, :error nil}
        {:index 5, :time 2200, :process 2, :type :invoke, :f :cas, :value [3 4]}
        {:index 6, :time 2300, :process 2, :type :fail, :f :cas, :value [3 4],
         :error [:unavailable "leader \"n1\" down"]}
        #_{:process 9, :type :ok}
        {:index 7, :time 2400, :process 2 :type :invoke :f :cas :value [3 4]}
        {:index 8, :time 2500, :process 2 :type :ok :f :cas :value [3 4] :node "n1" :tags #{:a :b}}
        {:process 5, :type :invoke, :f :put, :key "other", :value "v"}
        {:process 5, :type :ok, :f :put, :value "v"}
    "#;
    let parsed = edn(text);
    assert_eq!(parsed.skipped, 1);
    assert_eq!(parsed.events.len(), 10);
    assert_eq!(parsed.ops.len(), 5);
    assert_eq!(parsed.events[0].time, Some(1395));
    assert_eq!(parsed.events[0].line, 3);
    assert_eq!(parsed.events[6].line, 12);
    assert!(matches!(parsed.ops[2].outcome, Outcome::Fail));
    assert_eq!(
        *parsed.ops[3].op,
        Op::Cas {
            key: String::new(),
            expected: Some("3".into()),
            new: "4".into()
        }
    );
    assert_eq!(
        check_history(&parsed, BUDGET).verdict,
        Verdict::Linearizable
    );
    // Knossos test data: one vector of events.
    let knossos = r#"[{:process 0, :type :invoke, :f :write, :value 1}
        {:process 0, :type :ok, :f :write, :value 1}
        {:process 1, :type :invoke, :f :read, :value nil}
        {:process 1, :type :ok, :f :read, :value 2}]"#;
    assert!(matches!(verdict(knossos), Verdict::NotLinearizable { .. }));
    // Strings with escapes.
    let escaped =
        edn(r#"{:process 0 :type :invoke :f :put :key "k\"\\\n\u00e9" :value "tab\there"}"#);
    assert_eq!(escaped.events[0].key, "k\"\\\n\u{e9}");
}

#[test]
fn malformed_edn_is_a_line_numbered_error() {
    let cases = [
        (
            "{:process 0, :type :invoke, :f :get, :key \"x\"}\n{:process 0 :type :ok",
            "bad.edn:2: expected `}` to close the collection opened at line 2, found end of file",
        ),
        (
            "\n\n{:process 0, :type :invoke, :f :frobnicate, :key \"x\"}",
            "bad.edn:3: expected :f :get, :put, :append, :cas or :delete (or :read, :write), found `:frobnicate`",
        ),
        (
            "{:process 0, :type :invoke, :f :get}\n{:process 0, :type :invoke, :f :get}",
            "bad.edn:2: expected a completion of process 0's invocation at line 1 before it invokes again, found another :invoke",
        ),
        (
            "{:process 3, :type :ok, :f :get, :value nil}",
            "bad.edn:1: expected an :invoke by process 3 before its completion, found :ok with none pending",
        ),
        (
            "{:type :invoke, :f :get}",
            "bad.edn:1: expected a :process key in the event, found none",
        ),
        (
            "{:process 0, :type :invoke, :f :cas, :value \"x\"}",
            "bad.edn:1: expected a :cas value `[expected new]`, found `\"x\"`",
        ),
        (
            "{:process 0, :type :invoke, :f :put, :value \"a\\qb\"}",
            "bad.edn:1: expected a string escape (\\\" \\\\ \\n \\t \\r \\b \\f \\uXXXX), found `\\q`",
        ),
        (
            "{:process 0, :type :invoke, :f :put, :value \"abc",
            "bad.edn:1: expected `\"` to close the string opened at line 1, found end of file",
        ),
        (
            "{:process 0, :type :invoke, :f :put :value}",
            "bad.edn:1: expected a value after the key `:value`, found `}`",
        ),
        (
            "{:process 0, :type :invoke, :f :put, :value \"a\"]",
            "bad.edn:1: expected `}` to close the collection opened at line 1, found `]`",
        ),
        ("\n:just-a-keyword", "bad.edn:2: expected an event map `{:process .., :type .., :f .., ..}`, found `:just-a-keyword`"),
        (
            "{:process -1, :type :invoke, :f :get}",
            "bad.edn:1: expected a :process that is a non-negative integer (or :nemesis), found `-1`",
        ),
        (
            "{:process 0, :type :invoke, :f :put, :key \"x\" :value 12ab}",
            "bad.edn:1: expected a number, found `12ab`",
        ),
        (
            "{:process 0, :type :invoke, :f :put, :key \"x\"}\n{:process 0, :type :ok, :f :put, :key \"y\"}",
            "bad.edn:2: expected the completion of :put on \"x\" invoked at line 1, found :put on \"y\"",
        ),
    ];
    for (text, expected) in cases {
        assert_eq!(edn_error(text), expected, "input: {text}");
    }
    // Deep nesting is refused, not a stack overflow.
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    assert!(edn_error(&deep).contains("nested at most"));
}

#[test]
fn malformed_json_is_a_line_numbered_error() {
    let err = read_history(
        "h.json",
        "{\"process\":0,\"type\":\"invoke\",\"f\":\"get\",\"key\":\"x\",\"value\":null}\n{\"process\":0,",
        HistoryFormat::Json,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.starts_with("h.json:2: expected one JSON object per line, found `{\"process\":0,`"),
        "{err}"
    );
    let err = read_history(
        "h.json",
        "\n\n{\"process\":0,\"type\":\"done\",\"f\":\"get\"}",
        HistoryFormat::Json,
    )
    .unwrap_err()
    .to_string();
    assert_eq!(
        err,
        "h.json:3: expected :type :invoke, :ok, :fail or :info, found `\"done\"`"
    );
}

#[test]
fn format_from_path_and_sniffing() {
    use std::path::Path;
    assert_eq!(
        HistoryFormat::from_path(Path::new("a.edn")),
        Some(HistoryFormat::Edn)
    );
    assert_eq!(
        HistoryFormat::from_path(Path::new("a.jsonl")),
        Some(HistoryFormat::Json)
    );
    assert_eq!(HistoryFormat::from_path(Path::new("a.txt")), None);
    assert_eq!(HistoryFormat::sniff("{\"process\":0}"), HistoryFormat::Json);
    assert_eq!(
        HistoryFormat::sniff("; c\n{:process 0}"),
        HistoryFormat::Edn
    );
}

#[test]
fn mangled_histories_never_panic() {
    let history = generate_history(3, 40, 2, 9);
    let valid = render_history(&history, HistoryFormat::Edn);
    let alphabet: Vec<char> = "{}[]()\"\\:#_;, \n0-9anil:process:type:invoke:ok:cas\u{e9}"
        .chars()
        .collect();
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = |n: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % n as u64) as usize
    };
    let (mut ok, mut errors) = (0, 0);
    for _ in 0..3_000 {
        let mut chars: Vec<char> = valid.chars().collect();
        for _ in 0..1 + next(4) {
            let at = next(chars.len() + 1);
            match next(3) {
                0 if at < chars.len() => {
                    chars.remove(at);
                }
                1 => chars.insert(at, alphabet[next(alphabet.len())]),
                _ if at < chars.len() => chars[at] = alphabet[next(alphabet.len())],
                _ => {}
            }
        }
        let text: String = chars.into_iter().collect();
        for format in [HistoryFormat::Edn, HistoryFormat::Json] {
            match read_history("m", &text, format) {
                Ok(parsed) => {
                    ok += 1;
                    check_history(&parsed, 10_000);
                }
                Err(e) => {
                    errors += 1;
                    assert!(e.line >= 1 && e.to_string().starts_with("m:"), "{e}");
                }
            }
        }
    }
    assert!(ok > 0 && errors > 0, "ok={ok} errors={errors}");
}

#[test]
fn the_flags_parse_without_clashing_with_the_sim_flags() {
    use clap::{CommandFactory, Parser, Subcommand};
    use raftsim::history::{CheckHistoryArgs, HistoryArgs};

    #[derive(Parser)]
    struct Cli {
        #[command(subcommand)]
        command: Command,
    }
    #[derive(Subcommand)]
    #[allow(clippy::large_enum_variant)]
    enum Command {
        History(HistoryArgs),
        CheckHistory(CheckHistoryArgs),
    }
    Cli::command().debug_assert();
    let cli = Cli::try_parse_from([
        "raftsim",
        "history",
        "--seed",
        "3",
        "--crashes",
        "-o",
        "h.json",
        "--history-format",
        "edn",
        "--trace",
        "t.jsonl",
        "--format",
        "json",
    ])
    .unwrap();
    let Command::History(args) = cli.command else {
        panic!("not history");
    };
    assert_eq!(args.sim.seed, 3);
    assert!(args.sim.crashes);
    assert_eq!(args.history_format, Some(HistoryFormat::Edn));
    assert_eq!(args.output.as_deref(), Some(std::path::Path::new("h.json")));
    let cli = Cli::try_parse_from([
        "raftsim",
        "check-history",
        "h.edn",
        "--format",
        "json",
        "--time-limit",
        "2.5",
    ])
    .unwrap();
    let Command::CheckHistory(args) = cli.command else {
        panic!("not check-history");
    };
    assert_eq!(args.format, Some(HistoryFormat::Json));
    assert_eq!(args.time_limit, 2.5);
}
