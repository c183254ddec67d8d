//! `raftsim view`: a JSON Lines trace turned into one self-contained HTML page with a
//! space-time (Lamport) diagram of the run.
//!
//! # Contract
//!
//! - The page is a single file that works offline: the stylesheet and the script are inline
//!   (the template is `view.html`, compiled in), nothing is fetched from the network, and the
//!   trace is embedded as one JSON array in a `<script type="application/json">` block.
//! - Every trace line is embedded unchanged, in file order, as one element of that array. Text
//!   is escaped so that nothing in the trace can close the block early: every `<`, `>` and `&`
//!   becomes a `\u003c`-style escape, as do U+2028 and U+2029. These characters can occur in a
//!   JSON text only inside strings, where the escape means the same character, so the array a
//!   script parses is exactly the trace.
//! - Each line must be a JSON object with a non-negative integer `t`, a string `type` and a
//!   string `text` (what [`crate::trace`] writes); `arrive`, when present, must be an array of
//!   non-negative integers, and `from`, `to` and `node` strings. Anything else is refused with
//!   `FILE:LINE: expected ..., found ...` (exit 2), never rendered half-way.
//!
//! # The page
//!
//! One horizontal lane per node (`n1..nN`) and one lane for the clients (a row per client);
//! time in ticks flows left to right. Messages are arrows from their send to each arrival
//! (a duplicated message has two), dropped ones end in ✕, corrupted ones are dashed with a
//! warning mark; leader and candidate spans are shaded with their term, crashed and paused
//! spans hatched, partitions and one-way cuts drawn as coloured strips, client operations as
//! bars coloured by outcome. Zoom with the wheel or the buttons, drag to pan, filter by tick
//! range, lane and message type, click anything to see its full record in the side panel. The
//! URL fragment `#from=T1&to=T2` opens the page on a tick range.
//!
//! Large traces stay responsive: events are sorted by tick once, and each frame draws only the
//! visible window into a `<canvas>`, found by binary search; past a few tens of thousands of
//! visible messages the frame draws their density instead of each arrow.

use std::fmt::Write as _;
use std::path::PathBuf;

use clap::Args;
use serde_json::Value;

use crate::cli::{EXIT_OK, EXIT_USAGE};

/// The page template: `{{TITLE}}` and `{{TRACE}}` are filled in.
const TEMPLATE: &str = include_str!("view.html");

/// Most trace lines a page may embed.
pub const EVENTS_MAX: usize = 5_000_000;

/// Longest excerpt of a bad line quoted in an error, in characters.
const FOUND_CHARS_MAX: usize = 60;

/// Flags of `raftsim view`.
#[derive(Args, Debug, Clone, PartialEq)]
pub struct ViewArgs {
    /// The JSON Lines trace (`raftsim sim --trace t.jsonl`, `raftsim run --trace t.jsonl`).
    pub trace: PathBuf,
    /// The page to write (default: the trace's path with the extension `.html`).
    #[arg(long, short = 'o')]
    pub output: Option<PathBuf>,
}

/// A trace line the viewer cannot use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewError {
    /// The file name as given.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// What was expected.
    pub expected: String,
    /// What was found.
    pub found: String,
}

impl std::fmt::Display for ViewError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}: expected {}, found {}",
            self.file, self.line, self.expected, self.found
        )
    }
}

impl std::error::Error for ViewError {}

fn excerpt(s: &str) -> String {
    let mut out: String = s.chars().take(FOUND_CHARS_MAX).collect();
    if s.chars().count() > FOUND_CHARS_MAX {
        out.push('…');
    }
    format!("`{out}`")
}

fn describe(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(_) => format!("a boolean {}", excerpt(&v.to_string())),
        Value::Number(_) => format!("the number {}", excerpt(&v.to_string())),
        Value::String(_) => format!("the string {}", excerpt(&v.to_string())),
        Value::Array(_) => format!("an array {}", excerpt(&v.to_string())),
        Value::Object(_) => format!("an object {}", excerpt(&v.to_string())),
    }
}

/// Checks one trace line; `Err((expected, found))` says what is wrong with it.
fn check_line(text: &str) -> Result<(), (String, String)> {
    let value: Value = serde_json::from_str(text).map_err(|e| {
        let hint = if text.starts_with("t=") {
            " (a text trace: write a JSON one with `--trace FILE.jsonl`)"
        } else {
            ""
        };
        (
            format!("a JSON object per line{hint}"),
            format!("{} ({e})", excerpt(text)),
        )
    })?;
    let Value::Object(obj) = &value else {
        return Err(("a JSON object per line".into(), describe(&value)));
    };
    let field = |name: &str| obj.get(name);
    match field("t") {
        Some(t) if t.as_u64().is_some() => {}
        Some(t) => return Err(("`t` a non-negative integer tick".into(), describe(t))),
        None => return Err(("a `t` field (the tick)".into(), "none".into())),
    }
    for name in ["type", "text"] {
        match field(name) {
            Some(Value::String(_)) => {}
            Some(v) => return Err((format!("`{name}` a string"), describe(v))),
            None => return Err((format!("a `{name}` field"), "none".into())),
        }
    }
    for name in ["from", "to", "node"] {
        if let Some(v) = field(name) {
            if !v.is_string() {
                return Err((format!("`{name}` a string"), describe(v)));
            }
        }
    }
    if let Some(a) = field("arrive") {
        let ok = a
            .as_array()
            .is_some_and(|items| items.iter().all(|i| i.as_u64().is_some()));
        if !ok {
            return Err((
                "`arrive` an array of non-negative integer ticks".into(),
                describe(a),
            ));
        }
    }
    Ok(())
}

/// Appends `json` to `out` with `<`, `>`, `&`, U+2028 and U+2029 escaped (see the module
/// documentation for why that is exact).
fn push_escaped(out: &mut String, json: &str) {
    for c in json.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
}

fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The page for the JSON Lines trace `text`; `file` names it in the title and in errors.
/// Blank lines are skipped.
pub fn render_page(file: &str, text: &str) -> Result<String, ViewError> {
    let mut data = String::with_capacity(text.len() + 64);
    data.push('[');
    let mut count = 0usize;
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let error = |expected: String, found: String| ViewError {
            file: file.to_string(),
            line: i + 1,
            expected,
            found,
        };
        if count >= EVENTS_MAX {
            return Err(error(
                format!("at most {EVENTS_MAX} trace lines"),
                "more".into(),
            ));
        }
        check_line(line).map_err(|(expected, found)| error(expected, found))?;
        if count > 0 {
            data.push_str(",\n");
        }
        push_escaped(&mut data, line);
        count += 1;
    }
    data.push(']');
    if count == 0 {
        return Err(ViewError {
            file: file.to_string(),
            line: 1,
            expected: "at least one trace line".into(),
            found: "an empty file".into(),
        });
    }
    let (head, tail) = TEMPLATE
        .split_once("{{TRACE}}")
        .expect("view.html holds the {{TRACE}} placeholder");
    let name = file.rsplit(['/', '\\']).next().unwrap_or(file);
    let head = head.replace("{{TITLE}}", &escape_html(name));
    let mut page = String::with_capacity(head.len() + data.len() + tail.len());
    page.push_str(&head);
    page.push_str(&data);
    page.push_str(tail);
    Ok(page)
}

/// `raftsim view`: exit 0 when the page was written, 2 on a malformed trace or an I/O error.
pub fn cmd_view(args: &ViewArgs) -> i32 {
    let file = args.trace.display().to_string();
    let bytes = match std::fs::read(&args.trace) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: cannot read {file}: {e}");
            return EXIT_USAGE;
        }
    };
    let text = match String::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            let bytes = e.as_bytes();
            let valid = e.utf8_error().valid_up_to();
            let line = 1 + bytes[..valid].iter().filter(|&&b| b == b'\n').count();
            eprintln!("{file}:{line}: expected UTF-8 text, found invalid bytes");
            return EXIT_USAGE;
        }
    };
    let page = match render_page(&file, &text) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e}");
            return EXIT_USAGE;
        }
    };
    let output = args
        .output
        .clone()
        .unwrap_or_else(|| args.trace.with_extension("html"));
    if output == args.trace {
        eprintln!("error: the page would overwrite the trace {file}; name it with -o FILE.html");
        return EXIT_USAGE;
    }
    if let Err(e) = std::fs::write(&output, page.as_bytes()) {
        eprintln!("error: cannot write {}: {e}", output.display());
        return EXIT_USAGE;
    }
    let mut note = String::new();
    let _ = write!(
        note,
        "wrote {} ({} trace lines, {} KiB); open it in a browser",
        output.display(),
        text.lines().filter(|l| !l.trim().is_empty()).count(),
        page.len() / 1024
    );
    println!("{note}");
    EXIT_OK
}
