//! The viewer page: self-contained, embeds every trace line exactly, cannot be broken out of,
//! and refuses malformed traces with file:line.

use std::path::PathBuf;

use raftsim::cli::SimArgs;
use raftsim::run::run;
use raftsim::trace::{Trace, TraceFormat};
use raftsim::view::{cmd_view, render_page, ViewArgs};
use serde_json::Value;

const DATA_OPEN: &str = r#"<script type="application/json" id="trace-data">"#;

/// A JSON trace of a run with every kind of fault.
fn faulty_trace() -> String {
    let args = SimArgs {
        nodes: 5,
        ticks: 3_000,
        loss: 0.1,
        dup: 0.05,
        corrupt: 0.02,
        partitions: true,
        one_way: true,
        crashes: true,
        pauses: true,
        ..SimArgs::defaults(7)
    };
    let config = args.to_config().expect("config");
    let (_, trace) = run(config, Trace::buffer(TraceFormat::Json)).expect("run");
    let bytes = trace.finish().expect("trace").expect("buffer");
    String::from_utf8(bytes).expect("utf-8")
}

/// The JSON array embedded in a page.
fn embedded(page: &str) -> Vec<Value> {
    assert_eq!(page.matches(DATA_OPEN).count(), 1);
    let start = page.find(DATA_OPEN).unwrap() + DATA_OPEN.len();
    let end = start + page[start..].find("</script>").expect("closed");
    let data = &page[start..end];
    match serde_json::from_str(data).expect("the embedded trace is JSON") {
        Value::Array(items) => items,
        other => panic!("not an array: {other}"),
    }
}

#[test]
fn the_page_is_self_contained_and_embeds_every_event() {
    let trace = faulty_trace();
    let lines: Vec<&str> = trace.lines().collect();
    assert!(lines.len() > 1_000, "{} lines", lines.len());
    // The run exercised what the page draws.
    for kind in [
        "\"dropped\"",
        "\"corrupt\"",
        "\"type\":\"fault\"",
        "\"role\":\"leader\"",
        "\"type\":\"client\"",
    ] {
        assert!(trace.contains(kind), "no {kind} in the trace");
    }
    assert!(lines
        .iter()
        .any(|l| l.contains("\"arrive\":[") && l.contains(',') && {
            let v: Value = serde_json::from_str(l).unwrap();
            v["arrive"].as_array().is_some_and(|a| a.len() == 2)
        }));

    let page = render_page("runs/t.jsonl", &trace).expect("page");
    assert!(page.starts_with("<!DOCTYPE html>"));
    assert!(page.contains("<title>t.jsonl · raftsim view</title>"));
    assert!(!page.contains("http://") && !page.contains("https://"));
    for external in [" src=", " href=", "@import", "url("] {
        assert!(!page.contains(external), "the page holds {external:?}");
    }
    assert!(page.contains("<canvas id=\"canvas\">"));

    let events = embedded(&page);
    assert_eq!(events.len(), lines.len());
    for (line, event) in lines.iter().zip(&events) {
        let expected: Value = serde_json::from_str(line).unwrap();
        assert_eq!(&expected, event);
    }
    // Sequence numbers of reads are beyond 2^53: kept exactly in the page's text.
    let big = lines
        .iter()
        .find(|l| l.contains("\"seq\":46116"))
        .expect("a read request");
    let escaped = big.replace('>', "\\u003e");
    assert!(page.contains(&escaped), "{escaped}");
}

#[test]
fn nothing_in_a_trace_can_close_the_script_block() {
    let nasty = [
        "</script><script>alert(1)</script>",
        "<!-- <script> -->",
        "</SCRIPT>",
        "a & b > c",
        "line\u{2028}separator\u{2029}",
    ];
    let mut trace = String::from("{\"t\":0,\"type\":\"header\",\"text\":\"nodes=3\"}\n");
    for (i, text) in nasty.iter().enumerate() {
        let line = serde_json::json!({ "t": i + 1, "type": "mark", "text": text });
        trace.push_str(&line.to_string());
        trace.push('\n');
    }
    let page = render_page("<evil>.jsonl", &trace).expect("page");
    let template_scripts = render_page("x.jsonl", "{\"t\":0,\"type\":\"header\",\"text\":\"\"}")
        .unwrap()
        .matches("</script>")
        .count();
    assert_eq!(page.matches("</script>").count(), template_scripts);
    assert_eq!(
        page.to_lowercase().matches("</script").count(),
        template_scripts
    );
    // No `<` at all in the data: not even `<!--`, which would change how the HTML parser
    // looks for the end of the block.
    let start = page.find(DATA_OPEN).unwrap() + DATA_OPEN.len();
    let end = start + page[start..].find("</script>").unwrap();
    assert!(!page[start..end].contains('<'));
    assert!(!page.contains('\u{2028}') && !page.contains('\u{2029}'));
    assert!(page.contains("<title>&lt;evil&gt;.jsonl · raftsim view</title>"));
    let events = embedded(&page);
    for (text, event) in nasty.iter().zip(&events[1..]) {
        assert_eq!(event["text"], *text);
    }
}

#[test]
fn malformed_traces_are_clean_errors_with_a_line() {
    let header = "{\"t\":0,\"type\":\"header\",\"text\":\"x\"}\n";
    let cases = [
        ("not json", "t.jsonl:2: expected a JSON object per line, found `not json`"),
        (
            "t=0      seed=1",
            "t.jsonl:2: expected a JSON object per line (a text trace: write a JSON one with `--trace FILE.jsonl`), found `t=0      seed=1`",
        ),
        ("[1,2]", "t.jsonl:2: expected a JSON object per line, found an array `[1,2]`"),
        (
            "{\"type\":\"send\",\"text\":\"\"}",
            "t.jsonl:2: expected a `t` field (the tick), found none",
        ),
        (
            "{\"t\":-3,\"type\":\"send\",\"text\":\"\"}",
            "t.jsonl:2: expected `t` a non-negative integer tick, found the number `-3`",
        ),
        (
            "{\"t\":3,\"type\":7,\"text\":\"\"}",
            "t.jsonl:2: expected `type` a string, found the number `7`",
        ),
        (
            "{\"t\":3,\"type\":\"send\"}",
            "t.jsonl:2: expected a `text` field, found none",
        ),
        (
            "{\"t\":3,\"type\":\"send\",\"text\":\"\",\"arrive\":5}",
            "t.jsonl:2: expected `arrive` an array of non-negative integer ticks, found the number `5`",
        ),
        (
            "{\"t\":3,\"type\":\"send\",\"text\":\"\",\"from\":1}",
            "t.jsonl:2: expected `from` a string, found the number `1`",
        ),
    ];
    for (line, expected) in cases {
        let text = format!("{header}{line}\n");
        let error = render_page("t.jsonl", &text).expect_err(line).to_string();
        assert!(error.starts_with(expected), "{error}\n  wanted {expected}");
    }
    assert_eq!(
        render_page("t.jsonl", "\n\n").unwrap_err().to_string(),
        "t.jsonl:1: expected at least one trace line, found an empty file"
    );
    // Blank lines are skipped but counted.
    let error = render_page("t.jsonl", &format!("{header}\n\nnope\n")).unwrap_err();
    assert_eq!(error.line, 4);
}

fn temp_path(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("raftsim-view-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

#[test]
fn the_command_writes_the_page_and_exits_2_on_bad_input() {
    let trace = temp_path("ok.jsonl");
    std::fs::write(&trace, faulty_trace()).unwrap();
    let args = ViewArgs {
        trace: trace.clone(),
        output: None,
    };
    assert_eq!(cmd_view(&args), 0);
    let page = std::fs::read_to_string(trace.with_extension("html")).unwrap();
    assert!(page.contains(DATA_OPEN));

    let bad = temp_path("bad.jsonl");
    std::fs::write(&bad, "{\"t\":0,\"type\":\"header\",\"text\":\"\"}\n{oops\n").unwrap();
    let out = temp_path("bad.html");
    let args = ViewArgs {
        trace: bad,
        output: Some(out.clone()),
    };
    assert_eq!(cmd_view(&args), 2);
    assert!(!out.exists(), "no page for a malformed trace");
    let missing = ViewArgs {
        trace: temp_path("missing.jsonl"),
        output: None,
    };
    assert_eq!(cmd_view(&missing), 2);
    // Never overwrite the trace itself.
    let html = temp_path("trace.html");
    std::fs::write(&html, "{\"t\":0,\"type\":\"header\",\"text\":\"\"}\n").unwrap();
    let args = ViewArgs {
        trace: html.clone(),
        output: None,
    };
    assert_eq!(cmd_view(&args), 2);
    assert!(std::fs::read_to_string(&html)
        .unwrap()
        .starts_with("{\"t\""));
}

#[test]
fn the_flags_parse() {
    use clap::{CommandFactory, Parser, Subcommand};

    #[derive(Parser)]
    struct Cli {
        #[command(subcommand)]
        command: Command,
    }
    #[derive(Subcommand)]
    enum Command {
        View(ViewArgs),
    }
    Cli::command().debug_assert();
    let cli = Cli::try_parse_from(["raftsim", "view", "t.jsonl", "-o", "t.html"]).unwrap();
    let Command::View(args) = cli.command;
    assert_eq!(args.trace, PathBuf::from("t.jsonl"));
    assert_eq!(args.output, Some(PathBuf::from("t.html")));
}
