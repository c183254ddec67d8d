//! Client histories in the formats other tools read: EDN (Jepsen, Knossos, porcupine's
//! Jepsen importer) and JSON Lines; reading them back, robustly, and checking them with the
//! simulator's linearizability checker.
//!
//! # The event form
//!
//! A history is a sequence of *events*, one per line, in real-time order. Each operation is an
//! `:invoke` event followed, later, by its completion: `:ok` (it took effect, with this
//! result), `:fail` (it certainly did not take effect) or `:info` (unknown: it may or may not
//! have taken effect). For example
//!
//! ```text
//! {:process 0, :type :invoke, :f :append, :key "k0", :value "/1.1", :time 13}
//! {:process 1, :type :invoke, :f :get, :key "k0", :value nil, :time 15}
//! {:process 0, :type :ok, :f :append, :key "k0", :value "/1.1", :time 22}
//! {:process 1, :type :ok, :f :get, :key "k0", :value "/1.1", :time 24}
//! ```
//!
//! The JSON form has the same fields, one object per line:
//! `{"process":0,"type":"invoke","f":"append","key":"k0","value":"/1.1","time":13}`.
//!
//! | `:f` | invoke `:value` | `:ok` `:value` |
//! |---|---|---|
//! | `:get` | `nil` | the string read, or `nil` when the key is absent |
//! | `:put` | the string written | the same |
//! | `:append` | the suffix | the same |
//! | `:cas` | `["expected" "new"]` (`nil` expected: the key must be absent) | the same |
//! | `:delete` | `nil` | `nil` |
//!
//! # Writing a run's history ([`history_events`])
//!
//! - `:process` is the client number minus one. A client whose operation ended `:info` takes a
//!   new process id for its next operation, as Jepsen's workers do: process `p` becomes
//!   `p + clients`, where `clients` is the largest client number in the history. A process
//!   therefore never has two operations whose windows could overlap.
//! - `:time` is the tick. Events are sorted by tick; at equal ticks completions come before
//!   invocations. That is sound here, and the only faithful order for tools that read the file
//!   order as real time: every message takes at least one tick (`delay_ticks_min >= 1`), so an
//!   operation completed at tick `T` took effect at `T - 1` or before, and an operation invoked
//!   at `T` cannot reach any node before `T + 1`.
//! - A `Cas` that found another value (`CasMismatch`) had no effect: it is written `:fail`, the
//!   way Jepsen's registers report a failed compare-and-set (the value it saw is not kept).
//! - An operation still pending when the run ended is completed `:info` after every other
//!   event, at the last tick.
//!
//! # Reading a history ([`read_history`]) and the empty string
//!
//! Jepsen, Knossos and porcupine assume every key starts as the empty string, and their
//! histories write a read of a never-written key as `nil` or `""`. The simulator's store
//! instead distinguishes an absent key from one holding `""`. A history is therefore checked
//! in the model those tools use, where *absent and `""` are the same value*, with the
//! simulator's checker started at `initial = Some("")`:
//!
//! - a `:get` that read `nil` read `""` (`Value("")`, not `NotFound`: in this model the
//!   register is never absent, so a `NotFound` result could never be explained);
//! - `:delete` is checked as a `:put` of `""` (it makes the key read as `nil`, which is `""`);
//!   its `Ok`/`NotFound` answer is not in the history, so nothing is lost;
//! - a `:cas` expecting `nil` expects `""`; a `:put` or `:cas` of `nil` writes `""`;
//! - integer values (Knossos registers) are their decimal strings.
//!
//! This model is sound for the simulator's own histories: mapping "absent" to `""` turns every
//! step of the simulator's store into a step of this model with the translated result (an
//! `Append` to an absent key creates it from its suffix, which is `"" + suffix`), as long as no
//! operation writes `""` itself, which the simulated clients never do. So a history the
//! simulator found linearizable is linearizable here; the converse may miss a violation only
//! through the dropped information (a delete's answer, a failed cas's value).
//!
//! Reading is forgiving where real files vary: maps with keyword keys in any order, commas as
//! whitespace, `;` comments, `#_` discards, tagged maps (`#jepsen.history.Op{...}`), extra keys
//! (`:index`, `:error`, ...) ignored, a whole file that is one vector of events (Knossos's test
//! data), `:read`/`:write` for `:get`/`:put`, a missing `:key` (one register, named `""`), and
//! events of non-integer processes (`:nemesis`) skipped. Events are paired per process: an
//! invocation must complete before the same process invokes again; an invocation never
//! completed is `:info`. The file order is taken as real time (each event gets its position as
//! its tick), so `:time` is only carried along for display.
//!
//! # Checking ([`check_history`]) and its budget
//!
//! The checker ([`linearizability::check`]) bounds its search in steps, not seconds, so that a
//! verdict never depends on the machine. `check-history --time-limit SECS` becomes a step
//! budget of `SECS * STEPS_PER_SECOND` ([`STEPS_PER_SECOND`], measured on the release build),
//! shared by the keys in sorted order: each key may spend an equal share of what is left, so a
//! key that finishes early leaves its steps to the next. A key that runs out of budget makes the
//! verdict `unknown` unless another key is not linearizable.

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::{Args, ValueEnum};
use raftsim_protocol::kv::{KvStore, Op, OpResult};
use raftsim_protocol::types::{ClientId, Tick};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::checker::linearizability::{self, HistoryOp, Limits, Outcome, Verdict};
use crate::cli::{FormatArg, SimArgs, EXIT_FAILED, EXIT_OK, EXIT_UNKNOWN, EXIT_USAGE};
use crate::trace::{Trace, TraceFormat};

/// Search steps of the linearizability checker per second of `--time-limit`. A step is one
/// search configuration visited. Measured on the release build on one AMD EPYC core: 1.3–1.4
/// million steps a second, both on the benchmark's 50-client [`generate_history`] history and
/// on a simulated 50-client, 30,000-operation history.
pub const STEPS_PER_SECOND: u64 = 1_400_000;

/// Default `--time-limit`, in seconds.
pub const TIME_LIMIT_SECS_DEFAULT: f64 = 10.0;

/// Deepest nesting of EDN collections the reader accepts (it recurses once per level).
pub const EDN_DEPTH_MAX: usize = 64;

/// Most events a history file may hold.
pub const EVENTS_MAX: usize = 50_000_000;

/// Longest excerpt of the input quoted in an error message, in characters.
const FOUND_CHARS_MAX: usize = 40;

/// A history file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum HistoryFormat {
    /// EDN, one map per line (Jepsen, Knossos).
    Edn,
    /// JSON Lines, one object per line.
    Json,
}

impl HistoryFormat {
    /// The format a file name implies: `.json`, `.jsonl` and `.ndjson` are JSON, `.edn` is EDN,
    /// anything else is unknown.
    pub fn from_path(path: &Path) -> Option<HistoryFormat> {
        match path.extension().and_then(|e| e.to_str()) {
            Some("json") | Some("jsonl") | Some("ndjson") => Some(HistoryFormat::Json),
            Some("edn") => Some(HistoryFormat::Edn),
            _ => None,
        }
    }

    /// Guesses the format from the text: JSON when the first value opens an object with a
    /// string key (`{"`), EDN otherwise.
    pub fn sniff(text: &str) -> HistoryFormat {
        let mut chars = text
            .lines()
            .map(str::trim_start)
            .filter(|l| !l.is_empty() && !l.starts_with(';'))
            .flat_map(|l| l.chars())
            .filter(|c| !c.is_whitespace());
        match (chars.next(), chars.next()) {
            (Some('{'), Some('"')) => HistoryFormat::Json,
            _ => HistoryFormat::Edn,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Events
// ---------------------------------------------------------------------------------------------

/// The kind of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// The operation was invoked.
    Invoke,
    /// It took effect, with the event's value as its result.
    Ok,
    /// It certainly did not take effect.
    Fail,
    /// Unknown whether it took effect.
    Info,
}

impl EventType {
    /// `invoke`, `ok`, `fail` or `info`.
    pub fn name(self) -> &'static str {
        match self {
            EventType::Invoke => "invoke",
            EventType::Ok => "ok",
            EventType::Fail => "fail",
            EventType::Info => "info",
        }
    }

    fn parse(name: &str) -> Option<EventType> {
        match name {
            "invoke" => Some(EventType::Invoke),
            "ok" => Some(EventType::Ok),
            "fail" => Some(EventType::Fail),
            "info" => Some(EventType::Info),
            _ => None,
        }
    }
}

/// The function of an event (`:f`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Func {
    /// Read a key (`:get`; `:read` is accepted too).
    Get,
    /// Write a key (`:put`; `:write` is accepted too).
    Put,
    /// Append to a key.
    Append,
    /// Compare-and-set.
    Cas,
    /// Remove a key.
    Delete,
}

impl Func {
    /// `get`, `put`, `append`, `cas` or `delete`.
    pub fn name(self) -> &'static str {
        match self {
            Func::Get => "get",
            Func::Put => "put",
            Func::Append => "append",
            Func::Cas => "cas",
            Func::Delete => "delete",
        }
    }

    fn parse(name: &str) -> Option<Func> {
        match name {
            "get" | "read" => Some(Func::Get),
            "put" | "write" => Some(Func::Put),
            "append" => Some(Func::Append),
            "cas" => Some(Func::Cas),
            "delete" => Some(Func::Delete),
            _ => None,
        }
    }

    fn of(op: &Op) -> Func {
        match op {
            Op::Get { .. } => Func::Get,
            Op::Put { .. } => Func::Put,
            Op::Append { .. } => Func::Append,
            Op::Cas { .. } => Func::Cas,
            Op::Delete { .. } => Func::Delete,
        }
    }
}

/// An event's `:value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventValue {
    /// `nil`.
    Nil,
    /// A string.
    Str(String),
    /// A cas's `[expected new]`; `None` is `nil`.
    Cas(Option<String>, Option<String>),
}

/// One event of a history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The process (a client, renumbered after an `:info`).
    pub process: u64,
    /// Invoke or completion.
    pub kind: EventType,
    /// The function.
    pub f: Func,
    /// The key.
    pub key: String,
    /// The value.
    pub value: EventValue,
    /// The tick (or the file's `:time`), if known.
    pub time: Option<u64>,
    /// The line of the file it was read from (0 if it was not read from a file).
    pub line: u32,
}

fn push_edn_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn push_edn_opt(out: &mut String, s: &Option<String>) {
    match s {
        None => out.push_str("nil"),
        Some(s) => push_edn_str(out, s),
    }
}

fn push_json_opt(out: &mut String, s: &Option<String>) {
    match s {
        None => out.push_str("null"),
        Some(s) => out.push_str(&serde_json::Value::from(s.as_str()).to_string()),
    }
}

impl Event {
    /// The event as one EDN map: `{:process 0, :type :ok, :f :get, :key "k0", :value "1.1",
    /// :time 12}`.
    pub fn to_edn(&self) -> String {
        let mut out = String::with_capacity(80);
        let _ = write!(
            out,
            "{{:process {}, :type :{}, :f :{}, :key ",
            self.process,
            self.kind.name(),
            self.f.name()
        );
        push_edn_str(&mut out, &self.key);
        out.push_str(", :value ");
        match &self.value {
            EventValue::Nil => out.push_str("nil"),
            EventValue::Str(s) => push_edn_str(&mut out, s),
            EventValue::Cas(expected, new) => {
                out.push('[');
                push_edn_opt(&mut out, expected);
                out.push(' ');
                push_edn_opt(&mut out, new);
                out.push(']');
            }
        }
        if let Some(t) = self.time {
            let _ = write!(out, ", :time {t}");
        }
        out.push('}');
        out
    }

    /// The event as one JSON object with the same fields, in the same order.
    pub fn to_json(&self) -> String {
        let mut out = String::with_capacity(80);
        let _ = write!(
            out,
            "{{\"process\":{},\"type\":\"{}\",\"f\":\"{}\",\"key\":",
            self.process,
            self.kind.name(),
            self.f.name()
        );
        push_json_opt(&mut out, &Some(self.key.clone()));
        out.push_str(",\"value\":");
        match &self.value {
            EventValue::Nil => out.push_str("null"),
            EventValue::Str(s) => push_json_opt(&mut out, &Some(s.clone())),
            EventValue::Cas(expected, new) => {
                out.push('[');
                push_json_opt(&mut out, expected);
                out.push(',');
                push_json_opt(&mut out, new);
                out.push(']');
            }
        }
        if let Some(t) = self.time {
            let _ = write!(out, ",\"time\":{t}");
        }
        out.push('}');
        out
    }
}

// ---------------------------------------------------------------------------------------------
// Writing a run's history
// ---------------------------------------------------------------------------------------------

fn invoke_value(op: &Op) -> EventValue {
    match op {
        Op::Get { .. } | Op::Delete { .. } => EventValue::Nil,
        Op::Put { value, .. } | Op::Append { value, .. } => EventValue::Str(value.clone()),
        Op::Cas { expected, new, .. } => EventValue::Cas(expected.clone(), Some(new.clone())),
    }
}

/// The events of a simulator history (see the module documentation for the mapping), in
/// real-time order.
pub fn history_events(history: &[HistoryOp]) -> Vec<Event> {
    let clients = history.iter().map(|h| h.client).max().unwrap_or(1).max(1);
    let end_tick = history
        .iter()
        .map(|h| h.complete_tick.unwrap_or(h.invoke_tick))
        .max()
        .unwrap_or(0);
    // (tick, rank, event): rank 0 completions, 1 invocations, 2 completions of operations
    // still pending at the end. The sort is stable, so ties keep the history's order.
    let mut keyed: Vec<(Tick, u8, Event)> = Vec::with_capacity(history.len() * 2);
    let mut infos: BTreeMap<ClientId, u64> = BTreeMap::new();
    for h in history {
        let generation = infos.get(&h.client).copied().unwrap_or(0);
        let process = h.client.saturating_sub(1) + clients * generation;
        let f = Func::of(&h.op);
        let key = h.op.key().to_owned();
        let value = invoke_value(&h.op);
        keyed.push((
            h.invoke_tick,
            1,
            Event {
                process,
                kind: EventType::Invoke,
                f,
                key: key.clone(),
                value: value.clone(),
                time: Some(h.invoke_tick),
                line: 0,
            },
        ));
        let (kind, value) = match &h.outcome {
            Outcome::Ok(OpResult::CasMismatch { .. }) | Outcome::Fail => (EventType::Fail, value),
            Outcome::Ok(OpResult::Value(v)) => (EventType::Ok, EventValue::Str(v.clone())),
            Outcome::Ok(OpResult::NotFound) if f == Func::Get => (EventType::Ok, EventValue::Nil),
            Outcome::Ok(_) => (EventType::Ok, value),
            Outcome::Info => (EventType::Info, value),
        };
        let (kind, tick, rank) = match h.complete_tick {
            Some(t) => (kind, t, 0),
            // Never completed: indeterminate, whatever the outcome says (unless a failure).
            None if kind == EventType::Fail => (kind, end_tick, 2),
            None => (EventType::Info, end_tick, 2),
        };
        if kind == EventType::Info {
            *infos.entry(h.client).or_insert(0) += 1;
        }
        keyed.push((
            tick,
            rank,
            Event {
                process,
                kind,
                f,
                key,
                value,
                time: Some(tick),
                line: 0,
            },
        ));
    }
    keyed.sort_by_key(|(tick, rank, _)| (*tick, *rank));
    keyed.into_iter().map(|(_, _, e)| e).collect()
}

/// A simulator history rendered in `format`, one event per line.
pub fn render_history(history: &[HistoryOp], format: HistoryFormat) -> String {
    let mut out = String::with_capacity(history.len() * 160);
    for event in history_events(history) {
        match format {
            HistoryFormat::Edn => out.push_str(&event.to_edn()),
            HistoryFormat::Json => out.push_str(&event.to_json()),
        }
        out.push('\n');
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// A malformed history: where, what was expected and what was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryError {
    /// The file name as given.
    pub file: String,
    /// 1-based line.
    pub line: u32,
    /// What the reader expected.
    pub expected: String,
    /// What it found instead.
    pub found: String,
}

impl fmt::Display for HistoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: expected {}, found {}",
            self.file, self.line, self.expected, self.found
        )
    }
}

impl std::error::Error for HistoryError {}

fn quote_excerpt(s: &str) -> String {
    let mut excerpt: String = s.chars().take(FOUND_CHARS_MAX).collect();
    if s.chars().count() > FOUND_CHARS_MAX {
        excerpt.push('…');
    }
    format!("`{excerpt}`")
}

// ---------------------------------------------------------------------------------------------
// A small EDN reader
// ---------------------------------------------------------------------------------------------

/// An EDN value, as far as histories need one.
#[derive(Debug, Clone, PartialEq)]
enum Edn {
    Nil,
    Bool(bool),
    Int(i64),
    /// Any other number (float, big integer, ratio, decimal), as written.
    Num(String),
    Str(String),
    Char(char),
    Keyword(String),
    Symbol(String),
    /// A vector or a list.
    Seq(Vec<Node>),
    Set(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

/// An EDN value and the line it starts on.
#[derive(Debug, Clone, PartialEq)]
struct Node {
    value: Edn,
    line: u32,
}

impl Edn {
    /// A short rendering for error messages.
    fn describe(&self) -> String {
        let text = match self {
            Edn::Nil => "nil".to_string(),
            Edn::Bool(b) => b.to_string(),
            Edn::Int(i) => i.to_string(),
            Edn::Num(s) | Edn::Symbol(s) => s.clone(),
            Edn::Str(s) => {
                let mut out = String::new();
                push_edn_str(&mut out, s);
                out
            }
            Edn::Char(c) => format!("\\{c}"),
            Edn::Keyword(k) => format!(":{k}"),
            Edn::Seq(items) => format!("a vector of {} items", items.len()),
            Edn::Set(items) => format!("a set of {} items", items.len()),
            Edn::Map(entries) => format!("a map of {} entries", entries.len()),
        };
        match self {
            Edn::Seq(_) | Edn::Set(_) | Edn::Map(_) => text,
            _ => quote_excerpt(&text),
        }
    }
}

struct EdnReader<'a> {
    file: &'a str,
    text: &'a str,
    pos: usize,
    line: u32,
}

fn is_delimiter(c: char) -> bool {
    c.is_whitespace() || matches!(c, ',' | '"' | ';' | '(' | ')' | '[' | ']' | '{' | '}')
}

impl<'a> EdnReader<'a> {
    fn new(file: &'a str, text: &'a str) -> Self {
        EdnReader {
            file,
            text,
            pos: 0,
            line: 1,
        }
    }

    fn error(
        &self,
        line: u32,
        expected: impl Into<String>,
        found: impl Into<String>,
    ) -> HistoryError {
        HistoryError {
            file: self.file.to_string(),
            line,
            expected: expected.into(),
            found: found.into(),
        }
    }

    fn peek(&self) -> Option<char> {
        self.text[self.pos..].chars().next()
    }

    fn peek2(&self) -> Option<char> {
        let mut it = self.text[self.pos..].chars();
        it.next();
        it.next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        if c == '\n' {
            self.line += 1;
        }
        Some(c)
    }

    fn found_here(&self) -> String {
        match self.peek() {
            None => "end of file".to_string(),
            Some(_) => {
                let rest = &self.text[self.pos..];
                let token: String = rest
                    .chars()
                    .enumerate()
                    .take_while(|(i, c)| *i == 0 || !is_delimiter(*c))
                    .map(|(_, c)| c)
                    .collect();
                quote_excerpt(&token)
            }
        }
    }

    /// Skips whitespace, commas, `;` comments and `#_` discarded forms.
    fn skip_blank(&mut self, depth: usize) -> Result<(), HistoryError> {
        loop {
            match self.peek() {
                Some(c) if c.is_whitespace() || c == ',' => {
                    self.bump();
                }
                Some(';') => {
                    while self.peek().is_some_and(|c| c != '\n') {
                        self.bump();
                    }
                }
                Some('#') if self.peek2() == Some('_') => {
                    self.bump();
                    self.bump();
                    self.read(depth)?;
                }
                _ => return Ok(()),
            }
        }
    }

    /// The next top-level form, or `None` at the end of the text.
    fn next_form(&mut self) -> Result<Option<Node>, HistoryError> {
        self.skip_blank(0)?;
        if self.peek().is_none() {
            return Ok(None);
        }
        self.read(0).map(Some)
    }

    /// Reads one form (after blanks).
    fn read(&mut self, depth: usize) -> Result<Node, HistoryError> {
        if depth >= EDN_DEPTH_MAX {
            return Err(self.error(
                self.line,
                format!("collections nested at most {EDN_DEPTH_MAX} deep"),
                "deeper nesting",
            ));
        }
        self.skip_blank(depth)?;
        let line = self.line;
        let Some(c) = self.peek() else {
            return Err(self.error(line, "a value", "end of file"));
        };
        let value = match c {
            '"' => Edn::Str(self.read_string()?),
            '[' | '(' => {
                let close = if c == '[' { ']' } else { ')' };
                self.bump();
                Edn::Seq(self.read_items(close, line, depth)?)
            }
            '{' => {
                self.bump();
                self.read_map(line, depth)?
            }
            '#' => self.read_dispatch(line, depth)?,
            '\\' => self.read_char(line)?,
            ':' => {
                self.bump();
                let token = self.read_token();
                if token.is_empty() {
                    return Err(self.error(line, "a keyword name after `:`", self.found_here()));
                }
                Edn::Keyword(token.trim_start_matches(':').to_string())
            }
            ')' | ']' | '}' => {
                return Err(self.error(line, "a value", format!("`{c}`")));
            }
            c if c.is_ascii_digit()
                || ((c == '-' || c == '+') && self.peek2().is_some_and(|d| d.is_ascii_digit())) =>
            {
                let token = self.read_token();
                parse_number(&token)
                    .ok_or_else(|| self.error(line, "a number", quote_excerpt(&token)))?
            }
            _ => {
                let token = self.read_token();
                match token.as_str() {
                    "" => return Err(self.error(line, "a value", self.found_here())),
                    "nil" => Edn::Nil,
                    "true" => Edn::Bool(true),
                    "false" => Edn::Bool(false),
                    _ => Edn::Symbol(token),
                }
            }
        };
        Ok(Node { value, line })
    }

    /// A token: everything up to the next delimiter.
    fn read_token(&mut self) -> String {
        let start = self.pos;
        while self.peek().is_some_and(|c| !is_delimiter(c)) {
            self.bump();
        }
        self.text[start..self.pos].to_string()
    }

    fn read_items(
        &mut self,
        close: char,
        open_line: u32,
        depth: usize,
    ) -> Result<Vec<Node>, HistoryError> {
        let mut items = Vec::new();
        loop {
            self.skip_blank(depth + 1)?;
            match self.peek() {
                None => {
                    return Err(self.error(
                        self.line,
                        format!("`{close}` to close the collection opened at line {open_line}"),
                        "end of file",
                    ))
                }
                Some(c) if c == close => {
                    self.bump();
                    return Ok(items);
                }
                Some(c @ (')' | ']' | '}')) => {
                    return Err(self.error(
                        self.line,
                        format!("`{close}` to close the collection opened at line {open_line}"),
                        format!("`{c}`"),
                    ))
                }
                Some(_) => items.push(self.read(depth + 1)?),
            }
        }
    }

    fn read_map(&mut self, open_line: u32, depth: usize) -> Result<Edn, HistoryError> {
        let items = self.read_items('}', open_line, depth)?;
        if items.len() % 2 == 1 {
            let last = &items[items.len() - 1];
            return Err(self.error(
                last.line,
                format!("a value after the key {}", last.value.describe()),
                "`}`",
            ));
        }
        let mut entries = Vec::with_capacity(items.len() / 2);
        let mut it = items.into_iter();
        while let (Some(k), Some(v)) = (it.next(), it.next()) {
            entries.push((k, v));
        }
        Ok(Edn::Map(entries))
    }

    fn read_dispatch(&mut self, line: u32, depth: usize) -> Result<Edn, HistoryError> {
        self.bump(); // '#'
        match self.peek() {
            Some('{') => {
                self.bump();
                Ok(Edn::Set(self.read_items('}', line, depth)?))
            }
            Some('#') => {
                // ##Inf, ##-Inf, ##NaN
                self.bump();
                let token = self.read_token();
                Ok(Edn::Num(format!("##{token}")))
            }
            Some(c) if c.is_alphabetic() => {
                // A tagged element, `#inst "..."` or a record `#jepsen.history.Op{...}`: the
                // tag is dropped and the element kept.
                let _tag = self.read_token();
                Ok(self.read(depth + 1)?.value)
            }
            _ => Err(self.error(line, "`#{`, `#_` or a tag after `#`", self.found_here())),
        }
    }

    fn read_char(&mut self, line: u32) -> Result<Edn, HistoryError> {
        self.bump(); // '\'
        let Some(first) = self.bump() else {
            return Err(self.error(line, "a character after `\\`", "end of file"));
        };
        let mut token = first.to_string();
        while self.peek().is_some_and(|c| !is_delimiter(c)) {
            token.push(self.bump().unwrap_or(' '));
        }
        let c = match token.as_str() {
            "newline" => '\n',
            "space" => ' ',
            "tab" => '\t',
            "return" => '\r',
            "formfeed" => '\u{c}',
            "backspace" => '\u{8}',
            t if t.chars().count() == 1 => first,
            t if t.starts_with('u') && t.len() == 5 => u32::from_str_radix(&t[1..], 16)
                .ok()
                .and_then(char::from_u32)
                .ok_or_else(|| self.error(line, "a character", quote_excerpt(&format!("\\{t}"))))?,
            t => return Err(self.error(line, "a character", quote_excerpt(&format!("\\{t}")))),
        };
        Ok(Edn::Char(c))
    }

    fn read_string(&mut self) -> Result<String, HistoryError> {
        let open_line = self.line;
        self.bump(); // '"'
        let mut out = String::new();
        loop {
            let Some(c) = self.bump() else {
                return Err(self.error(
                    self.line,
                    format!("`\"` to close the string opened at line {open_line}"),
                    "end of file",
                ));
            };
            match c {
                '"' => return Ok(out),
                '\\' => {
                    let line = self.line;
                    let escaped = match self.bump() {
                        Some('"') => '"',
                        Some('\\') => '\\',
                        Some('n') => '\n',
                        Some('t') => '\t',
                        Some('r') => '\r',
                        Some('b') => '\u{8}',
                        Some('f') => '\u{c}',
                        Some('u') => {
                            let start = self.pos;
                            for _ in 0..4 {
                                if self.peek().is_some_and(|c| c.is_ascii_hexdigit()) {
                                    self.bump();
                                }
                            }
                            let hex = &self.text[start..self.pos];
                            hex.len()
                                .eq(&4)
                                .then(|| u32::from_str_radix(hex, 16).ok())
                                .flatten()
                                .and_then(char::from_u32)
                                .ok_or_else(|| {
                                    self.error(
                                        line,
                                        "four hex digits of a \\u escape (a whole character)",
                                        quote_excerpt(&format!("\\u{hex}")),
                                    )
                                })?
                        }
                        Some(other) => {
                            return Err(self.error(
                                line,
                                "a string escape (\\\" \\\\ \\n \\t \\r \\b \\f \\uXXXX)",
                                quote_excerpt(&format!("\\{other}")),
                            ))
                        }
                        None => return Err(self.error(line, "a string escape", "end of file")),
                    };
                    out.push(escaped);
                }
                c => out.push(c),
            }
        }
    }
}

fn parse_number(token: &str) -> Option<Edn> {
    let digits = token.strip_suffix('N').unwrap_or(token);
    let unsigned = digits.strip_prefix(['-', '+']).unwrap_or(digits);
    if !unsigned.is_empty() && unsigned.bytes().all(|b| b.is_ascii_digit()) {
        return Some(match digits.parse::<i64>() {
            Ok(i) => Edn::Int(i),
            Err(_) => Edn::Num(token.to_string()),
        });
    }
    // Floats (1.5, 1e3, 2.5M) and ratios (1/2): kept as written.
    let body = token.strip_suffix('M').unwrap_or(token);
    let float_like = body
        .trim_start_matches(['-', '+'])
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'-' | b'+' | b'/'));
    let number = body.parse::<f64>().is_ok() || (body.contains('/') && float_like);
    (number && float_like).then(|| Edn::Num(token.to_string()))
}

fn json_to_node(value: &serde_json::Value, line: u32) -> Node {
    use serde_json::Value as J;
    let value = match value {
        J::Null => Edn::Nil,
        J::Bool(b) => Edn::Bool(*b),
        J::Number(n) => match n.as_i64() {
            Some(i) => Edn::Int(i),
            None => Edn::Num(n.to_string()),
        },
        J::String(s) => Edn::Str(s.clone()),
        J::Array(items) => Edn::Seq(items.iter().map(|v| json_to_node(v, line)).collect()),
        J::Object(map) => Edn::Map(
            map.iter()
                .map(|(k, v)| {
                    (
                        Node {
                            value: Edn::Keyword(k.clone()),
                            line,
                        },
                        json_to_node(v, line),
                    )
                })
                .collect(),
        ),
    };
    Node { value, line }
}

// ---------------------------------------------------------------------------------------------
// Reading a history
// ---------------------------------------------------------------------------------------------

/// A history read from a file: its events and the operations they pair into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedHistory {
    /// The events kept, in file order (events of non-integer processes are skipped).
    pub events: Vec<Event>,
    /// One operation per invocation, in the checker's model (see the module documentation).
    /// Ticks are positions in [`ParsedHistory::events`]: an operation's `invoke_tick` is the
    /// index of its `:invoke` event, its `complete_tick` that of its completion.
    pub ops: Vec<HistoryOp>,
    /// Events skipped because their process was not an integer (`:nemesis`).
    pub skipped: usize,
}

impl ParsedHistory {
    /// The events of the operation whose `:invoke` is `events[invoke_tick]`: the invoke and,
    /// if any, its completion.
    pub fn events_of(&self, op: &HistoryOp) -> Vec<&Event> {
        let mut out = Vec::with_capacity(2);
        if let Some(e) = self.events.get(op.invoke_tick as usize) {
            out.push(e);
        }
        if let Some(e) = op.complete_tick.and_then(|t| self.events.get(t as usize)) {
            out.push(e);
        }
        out
    }
}

/// Parses a history in `format`. `file` names the input in error messages.
pub fn read_history(
    file: &str,
    text: &str,
    format: HistoryFormat,
) -> Result<ParsedHistory, HistoryError> {
    let mut events = Vec::new();
    let mut skipped = 0;
    let mut push = |node: &Node| -> Result<(), HistoryError> {
        if events.len() >= EVENTS_MAX {
            return Err(HistoryError {
                file: file.to_string(),
                line: node.line,
                expected: format!("at most {EVENTS_MAX} events"),
                found: "more".to_string(),
            });
        }
        match event_of(file, node)? {
            Some(e) => events.push(e),
            None => skipped += 1,
        }
        Ok(())
    };
    match format {
        HistoryFormat::Edn => {
            let mut reader = EdnReader::new(file, text);
            while let Some(node) = reader.next_form()? {
                match &node.value {
                    // A file that is one vector of events (Knossos's test data).
                    Edn::Seq(items) => {
                        for item in items {
                            push(item)?;
                        }
                    }
                    _ => push(&node)?,
                }
            }
        }
        HistoryFormat::Json => {
            for (i, line_text) in text.lines().enumerate() {
                let line = i as u32 + 1;
                let trimmed = line_text.trim();
                if trimmed.is_empty() {
                    continue;
                }
                let value: serde_json::Value =
                    serde_json::from_str(trimmed).map_err(|e| HistoryError {
                        file: file.to_string(),
                        line,
                        expected: "one JSON object per line".to_string(),
                        found: format!("{} ({e})", quote_excerpt(trimmed)),
                    })?;
                push(&json_to_node(&value, line))?;
            }
        }
    }
    let ops = pair(file, &events)?;
    Ok(ParsedHistory {
        events,
        ops,
        skipped,
    })
}

/// The name of a keyword, or of a string (JSON), with any leading `:` removed.
fn name_of(value: &Edn) -> Option<&str> {
    match value {
        Edn::Keyword(k) | Edn::Str(k) | Edn::Symbol(k) => Some(k.trim_start_matches(':')),
        _ => None,
    }
}

fn string_of(value: &Edn) -> Option<Option<String>> {
    match value {
        Edn::Nil => Some(None),
        Edn::Str(s) => Some(Some(s.clone())),
        Edn::Int(i) => Some(Some(i.to_string())),
        Edn::Num(n) => Some(Some(n.clone())),
        _ => None,
    }
}

/// One event from one map; `None` for an event to skip (a `:nemesis` event).
fn event_of(file: &str, node: &Node) -> Result<Option<Event>, HistoryError> {
    let err = |line: u32, expected: &str, found: String| HistoryError {
        file: file.to_string(),
        line,
        expected: expected.to_string(),
        found,
    };
    let Edn::Map(entries) = &node.value else {
        return Err(err(
            node.line,
            "an event map `{:process .., :type .., :f .., ..}`",
            node.value.describe(),
        ));
    };
    let mut fields: BTreeMap<&str, &Node> = BTreeMap::new();
    for (k, v) in entries {
        let Some(name) = name_of(&k.value) else {
            continue; // Not a keyword key: nothing of ours.
        };
        if fields.insert(name, v).is_some() {
            return Err(err(
                k.line,
                "each key once per event",
                format!("a second :{name}"),
            ));
        }
    }
    let field = |name: &str| -> Result<&Node, HistoryError> {
        fields.get(name).copied().ok_or_else(|| {
            err(
                node.line,
                &format!("a :{name} key in the event"),
                "none".to_string(),
            )
        })
    };
    let process = field("process")?;
    let process = match &process.value {
        Edn::Int(p) if *p >= 0 => *p as u64,
        Edn::Keyword(_) | Edn::Str(_) | Edn::Symbol(_) => return Ok(None),
        other => {
            return Err(err(
                process.line,
                "a :process that is a non-negative integer (or :nemesis)",
                other.describe(),
            ))
        }
    };
    let kind_node = field("type")?;
    let kind = name_of(&kind_node.value)
        .and_then(EventType::parse)
        .ok_or_else(|| {
            err(
                kind_node.line,
                ":type :invoke, :ok, :fail or :info",
                kind_node.value.describe(),
            )
        })?;
    let f_node = field("f")?;
    let f = name_of(&f_node.value)
        .and_then(Func::parse)
        .ok_or_else(|| {
            err(
                f_node.line,
                ":f :get, :put, :append, :cas or :delete (or :read, :write)",
                f_node.value.describe(),
            )
        })?;
    let key = match fields.get("key") {
        None => String::new(),
        Some(k) => match &k.value {
            Edn::Str(s) | Edn::Keyword(s) | Edn::Symbol(s) => s.clone(),
            Edn::Int(i) => i.to_string(),
            other => {
                return Err(err(
                    k.line,
                    "a :key that is a string, keyword or integer",
                    other.describe(),
                ))
            }
        },
    };
    let value_node = fields.get("value").copied();
    let value = match value_node {
        None => EventValue::Nil,
        Some(v) => match (&v.value, f) {
            (Edn::Seq(items), Func::Cas) if items.len() == 2 => {
                let part = |n: &Node| {
                    string_of(&n.value).ok_or_else(|| {
                        err(
                            n.line,
                            "a string, integer or nil inside a :cas value",
                            n.value.describe(),
                        )
                    })
                };
                EventValue::Cas(part(&items[0])?, part(&items[1])?)
            }
            // A read's or delete's invoke value carries nothing; ignore whatever it is.
            (_, Func::Get | Func::Delete) if kind == EventType::Invoke => EventValue::Nil,
            (other, Func::Cas) if kind == EventType::Invoke || !matches!(other, Edn::Nil) => {
                return Err(err(
                    v.line,
                    "a :cas value `[expected new]`",
                    other.describe(),
                ))
            }
            (other, _) => match string_of(other) {
                Some(None) => EventValue::Nil,
                Some(Some(s)) => EventValue::Str(s),
                None => {
                    return Err(err(
                        v.line,
                        "a :value that is a string, integer or nil",
                        other.describe(),
                    ))
                }
            },
        },
    };
    if f == Func::Cas && kind == EventType::Invoke && !matches!(value, EventValue::Cas(..)) {
        let line = value_node.map_or(node.line, |v| v.line);
        let found = value_node.map_or("no :value".to_string(), |v| v.value.describe());
        return Err(err(line, "a :cas value `[expected new]`", found));
    }
    let time = match fields.get("time") {
        Some(Node {
            value: Edn::Int(t), ..
        }) if *t >= 0 => Some(*t as u64),
        _ => None,
    };
    Ok(Some(Event {
        process,
        kind,
        f,
        key,
        value,
        time,
        line: node.line,
    }))
}

fn opt_text(s: &Option<String>) -> String {
    s.clone().unwrap_or_default()
}

/// The checker's operation for an invocation (see the module documentation).
fn op_of(event: &Event) -> Op {
    let key = event.key.clone();
    let text = match &event.value {
        EventValue::Str(s) => s.clone(),
        _ => String::new(),
    };
    match (event.f, &event.value) {
        (Func::Get, _) => Op::Get { key },
        (Func::Put, _) => Op::Put { key, value: text },
        (Func::Append, _) => Op::Append { key, value: text },
        (Func::Delete, _) => Op::Put {
            key,
            value: String::new(),
        },
        (Func::Cas, EventValue::Cas(expected, new)) => Op::Cas {
            key,
            expected: Some(opt_text(expected)),
            new: opt_text(new),
        },
        (Func::Cas, _) => unreachable!("a :cas invocation always has a pair value"),
    }
}

/// Pairs invocations with completions per process.
fn pair(file: &str, events: &[Event]) -> Result<Vec<HistoryOp>, HistoryError> {
    let err = |line: u32, expected: String, found: String| HistoryError {
        file: file.to_string(),
        line,
        expected,
        found,
    };
    let mut ops: Vec<HistoryOp> = Vec::new();
    // process → (index in ops, index of its invoke event)
    let mut pending: BTreeMap<u64, (usize, usize)> = BTreeMap::new();
    for (i, e) in events.iter().enumerate() {
        if e.kind == EventType::Invoke {
            if let Some(&(_, at)) = pending.get(&e.process) {
                return Err(err(
                    e.line,
                    format!(
                        "a completion of process {}'s invocation at line {} before it invokes again",
                        e.process, events[at].line
                    ),
                    "another :invoke".to_string(),
                ));
            }
            pending.insert(e.process, (ops.len(), i));
            ops.push(HistoryOp {
                client: e.process + 1,
                op: Arc::new(op_of(e)),
                invoke_tick: i as Tick,
                complete_tick: None,
                outcome: Outcome::Info,
            });
            continue;
        }
        let Some((op_index, at)) = pending.remove(&e.process) else {
            return Err(err(
                e.line,
                format!("an :invoke by process {} before its completion", e.process),
                format!(":{} with none pending", e.kind.name()),
            ));
        };
        let invoke = &events[at];
        // A completion may leave out the key (it is the invocation's).
        if invoke.f != e.f || (!e.key.is_empty() && invoke.key != e.key) {
            return Err(err(
                e.line,
                format!(
                    "the completion of :{} on {:?} invoked at line {}",
                    invoke.f.name(),
                    invoke.key,
                    invoke.line
                ),
                format!(":{} on {:?}", e.f.name(), e.key),
            ));
        }
        let op = &mut ops[op_index];
        op.complete_tick = Some(i as Tick);
        op.outcome = match e.kind {
            EventType::Ok => Outcome::Ok(match (e.f, &e.value) {
                (Func::Get, EventValue::Str(s)) => OpResult::Value(s.clone()),
                (Func::Get, _) => OpResult::Value(String::new()),
                _ => OpResult::Ok,
            }),
            EventType::Fail => Outcome::Fail,
            EventType::Info | EventType::Invoke => Outcome::Info,
        };
    }
    Ok(ops)
}

// ---------------------------------------------------------------------------------------------
// Checking
// ---------------------------------------------------------------------------------------------

/// The verdict on a history read from a file, and the work it took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryReport {
    /// The verdict; a witness's operations index [`ParsedHistory::events`] by their ticks.
    pub verdict: Verdict,
    /// Keys searched.
    pub keys_checked: usize,
    /// Search steps spent, witness shrinking included.
    pub steps: u64,
}

/// Checks a parsed history, key by key in sorted order, within `steps_budget` search steps in
/// all (see the module documentation); every key starts as `""`.
pub fn check_history(parsed: &ParsedHistory, steps_budget: u64) -> HistoryReport {
    let mut by_key: BTreeMap<&str, Vec<HistoryOp>> = BTreeMap::new();
    for op in &parsed.ops {
        by_key.entry(op.op.key()).or_default().push(op.clone());
    }
    let mut report = HistoryReport {
        verdict: Verdict::Linearizable,
        keys_checked: 0,
        steps: 0,
    };
    let mut unknown = None;
    let mut keys_left = by_key.len() as u64;
    for ops in by_key.values() {
        let left = steps_budget.saturating_sub(report.steps);
        let share = (left / keys_left.max(1)).max(1);
        keys_left -= 1;
        let checked = linearizability::check(ops, Some(""), &Limits { steps_max: share });
        report.keys_checked += 1;
        report.steps += checked.steps + checked.witness_steps;
        match checked.verdict {
            Verdict::Linearizable => {}
            v @ Verdict::NotLinearizable { .. } => {
                report.verdict = v;
                return report;
            }
            v @ Verdict::Unknown { .. } => {
                unknown.get_or_insert(v);
            }
        }
    }
    if let Some(v) = unknown {
        report.verdict = v;
    }
    report
}

/// The step budget for a time limit in seconds.
pub fn steps_for_time_limit(secs: f64) -> u64 {
    let steps = secs.max(0.0) * STEPS_PER_SECOND as f64;
    if steps >= u64::MAX as f64 {
        u64::MAX
    } else {
        steps as u64
    }
}

// ---------------------------------------------------------------------------------------------
// Commands
// ---------------------------------------------------------------------------------------------

/// Flags of `raftsim history`: run one simulation (every `sim` flag) and write its client
/// history.
#[derive(Args, Debug, Clone, PartialEq)]
pub struct HistoryArgs {
    /// The simulation, as `raftsim sim` takes it (`--trace` also writes the run's trace).
    #[command(flatten)]
    pub sim: SimArgs,
    /// Write the history to this file instead of standard output.
    #[arg(long, short = 'o')]
    pub output: Option<PathBuf>,
    /// History format (default: json for a .json/.jsonl -o file, edn otherwise). Named
    /// `--history-format` because `--format` is the trace's.
    #[arg(long = "history-format", value_enum)]
    pub history_format: Option<HistoryFormat>,
}

/// Flags of `raftsim check-history`: check a history file for linearizability.
#[derive(Args, Debug, Clone, PartialEq)]
pub struct CheckHistoryArgs {
    /// The history (EDN or JSON Lines, as `raftsim history` writes or Jepsen records).
    pub file: PathBuf,
    /// Its format (default: by extension, .edn or .json/.jsonl; else guessed from the text).
    #[arg(long, value_enum)]
    pub format: Option<HistoryFormat>,
    /// Search budget, in seconds of search on a typical core; turned into a step count so
    /// the verdict does not depend on the machine.
    #[arg(long, default_value_t = TIME_LIMIT_SECS_DEFAULT)]
    pub time_limit: f64,
}

/// Runs the simulation `args` describe and returns its report and history (the history as
/// it stands when the run ends; operations still pending are `Info` with no completion).
pub fn run_with_history(
    args: &SimArgs,
    trace: Trace,
) -> Result<(crate::run::RunReport, Trace, Vec<HistoryOp>), String> {
    crate::run::run_then(args.to_config()?, trace, |sim| sim.history().to_vec())
}

fn open_trace(args: &SimArgs) -> Result<Trace, String> {
    let Some(path) = &args.trace else {
        return Ok(Trace::off());
    };
    let json_file = matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("json") | Some("jsonl") | Some("ndjson")
    );
    let format = match args.format {
        Some(FormatArg::Json) => TraceFormat::Json,
        Some(FormatArg::Text) => TraceFormat::Text,
        None if json_file => TraceFormat::Json,
        None => TraceFormat::Text,
    };
    let file = File::create(path)
        .map_err(|e| format!("cannot create trace file {}: {e}", path.display()))?;
    Ok(Trace::writer(format, Box::new(BufWriter::new(file))))
}

/// `raftsim history`: exit 0 when the run held every check, 1 when one failed (the history is
/// written anyway), 2 on bad flags or an unwritable file, 3 when the linearizability checker
/// gave up.
pub fn cmd_history(args: &HistoryArgs) -> i32 {
    #[cfg(feature = "planted-bugs")]
    raftsim_protocol::planted::set(args.sim.plant);
    let trace = match open_trace(&args.sim) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_USAGE;
        }
    };
    let (report, trace, history) = match run_with_history(&args.sim, trace) {
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
    let format = args
        .history_format
        .or_else(|| args.output.as_deref().and_then(HistoryFormat::from_path))
        .unwrap_or(HistoryFormat::Edn);
    let text = render_history(&history, format);
    let written = match &args.output {
        None => std::io::stdout().lock().write_all(text.as_bytes()),
        Some(path) => std::fs::write(path, text.as_bytes()),
    };
    if let Err(e) = written {
        let target = args
            .output
            .as_ref()
            .map_or("standard output".to_string(), |p| p.display().to_string());
        eprintln!("error: cannot write the history to {target}: {e}");
        return EXIT_USAGE;
    }
    let target = args
        .output
        .as_ref()
        .map_or("standard output".to_string(), |p| p.display().to_string());
    eprintln!(
        "history: {} operations (ok={} fail={} info={}) of seed {} written to {target}; \
         linearizability {}",
        history.len(),
        report.ops_ok,
        report.ops_fail,
        report.ops_info,
        report.seed,
        report.linearizability
    );
    if let Some(f) = &report.failure {
        eprintln!("FAIL: {f}");
        eprintln!("replay: {}", args.sim.replay_command());
        EXIT_FAILED
    } else if report.linearizability_unknown {
        EXIT_UNKNOWN
    } else {
        EXIT_OK
    }
}

/// The events of a witness, as EDN lines with their source lines.
pub fn witness_lines(parsed: &ParsedHistory, ops: &[HistoryOp]) -> Vec<String> {
    let mut lines = Vec::new();
    for op in ops {
        for e in parsed.events_of(op) {
            let mut line = e.to_edn();
            if e.line > 0 {
                let _ = write!(line, "  ; line {}", e.line);
            }
            lines.push(line);
        }
    }
    lines
}

/// `raftsim check-history`: exit 0 linearizable, 1 not, 2 malformed input, 3 unknown.
pub fn cmd_check_history(args: &CheckHistoryArgs) -> i32 {
    let file = args.file.display().to_string();
    if !(args.time_limit.is_finite() && args.time_limit > 0.0) {
        eprintln!(
            "error: --time-limit must be a positive number of seconds, got {}",
            args.time_limit
        );
        return EXIT_USAGE;
    }
    let text = match std::fs::read(&args.file) {
        Ok(bytes) => match String::from_utf8(bytes) {
            Ok(t) => t,
            Err(e) => {
                let line = 1 + e.as_bytes()[..e.utf8_error().valid_up_to()]
                    .iter()
                    .filter(|&&b| b == b'\n')
                    .count();
                eprintln!("{file}:{line}: expected UTF-8 text, found invalid bytes");
                return EXIT_USAGE;
            }
        },
        Err(e) => {
            eprintln!("error: cannot read {file}: {e}");
            return EXIT_USAGE;
        }
    };
    let format = args
        .format
        .or_else(|| HistoryFormat::from_path(&args.file))
        .unwrap_or_else(|| HistoryFormat::sniff(&text));
    let parsed = match read_history(&file, &text, format) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e}");
            return EXIT_USAGE;
        }
    };
    let budget = steps_for_time_limit(args.time_limit);
    let report = check_history(&parsed, budget);
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    let summary = format!(
        "{}, {}{}, {} checked, {} search steps (budget {budget})",
        plural(parsed.ops.len(), "operation"),
        plural(parsed.events.len(), "event"),
        if parsed.skipped > 0 {
            format!(" ({} non-client events skipped)", parsed.skipped)
        } else {
            String::new()
        },
        plural(report.keys_checked, "key"),
        report.steps
    );
    match &report.verdict {
        Verdict::Linearizable => {
            println!("linearizable");
            println!("  {summary}");
            EXIT_OK
        }
        Verdict::NotLinearizable { key, ops } => {
            println!("not linearizable");
            println!(
                "  key {key:?}: these {} operations cannot be ordered, whatever the key's \
                 other operations did:",
                ops.len()
            );
            for line in witness_lines(&parsed, ops) {
                println!("{line}");
            }
            println!("  {summary}");
            EXIT_FAILED
        }
        Verdict::Unknown { key, steps } => {
            println!("unknown");
            println!(
                "  the search of key {key:?} ran out of budget after {steps} steps; \
                 try a larger --time-limit"
            );
            println!("  {summary}");
            EXIT_UNKNOWN
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Generated histories (benchmarks)
// ---------------------------------------------------------------------------------------------

/// ChaCha stream id of [`generate_history`] (distinct from the simulator's streams).
const GENERATE_STREAM: u64 = 0x6869_7374; // "hist"

/// Longest value a generated append may grow a key to, in bytes; longer keys get a put.
const GENERATED_VALUE_BYTES_MAX: usize = 256;

/// A linearizable concurrent history of `ops` operations by `clients` clients on `keys` keys,
/// the same for the same arguments. Every key starts absent (check it with `initial = None`).
///
/// Each client runs operations one after another, with think times of 0–3 ticks and latencies
/// of 1–20 ticks (one in twenty up to 200), so about `clients` operations overlap at any time.
/// Each operation takes effect at a random instant strictly inside its window, and results come from
/// applying the operations in the order of those instants to a real store, so the history is
/// linearizable by construction. Mix: 40% get, 25% put, 15% append, 15% cas (most expecting the
/// current value), 5% delete. About 3% of operations fail (no effect) and 2% end `Info`, half of
/// which took effect; a third of the clients' last operations are still pending at the end (`Info`
/// with no completion). (Every
/// `Info` operation stays a candidate to the end of the search, so their share is what makes a
/// history hard to check.)
///
/// # Panics
/// If `clients` or `keys` is 0.
pub fn generate_history(clients: u32, ops: usize, keys: u32, seed: u64) -> Vec<HistoryOp> {
    assert!(clients > 0, "generate_history: at least one client");
    assert!(keys > 0, "generate_history: at least one key");
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(GENERATE_STREAM);

    struct Planned {
        client: u32,
        key: String,
        kind: u32,
        invoke_tick: Tick,
        complete_tick: Tick,
        effect_half_tick: Tick,
        /// 0 ok, 1 fail, 2 info with effect, 3 info without.
        fate: u32,
    }
    // Plan the windows: the client free earliest goes next (ties: lowest number).
    let mut free_at: Vec<Tick> = vec![0; clients as usize];
    let mut planned: Vec<Planned> = Vec::with_capacity(ops);
    for _ in 0..ops {
        let (index, &at) = free_at
            .iter()
            .enumerate()
            .min_by_key(|(i, t)| (**t, *i))
            .expect("clients > 0");
        let invoke_tick = at + rng.gen_range(0..=3);
        let latency = if rng.gen_ratio(1, 20) {
            rng.gen_range(20..=200)
        } else {
            rng.gen_range(1..=20)
        };
        let complete_tick = invoke_tick + latency;
        let fate = match rng.gen_range(0..100) {
            0..=2 => 1,
            3 => 2,
            4 => 3,
            _ => 0,
        };
        planned.push(Planned {
            client: index as u32 + 1,
            key: format!("k{}", rng.gen_range(0..keys)),
            kind: rng.gen_range(0..100),
            invoke_tick,
            complete_tick,
            // In half ticks, strictly inside the window: like the simulator's operations
            // (every message takes a tick), an operation completed at `T` took effect before
            // one invoked at `T`, which is what the exported event order says.
            effect_half_tick: rng.gen_range(2 * invoke_tick + 1..2 * complete_tick),
            fate,
        });
        free_at[index] = complete_tick;
    }

    // Apply in the order of the instants the operations take effect.
    let mut order: Vec<usize> = (0..planned.len()).collect();
    order.sort_by_key(|&i| (planned[i].effect_half_tick, i));
    let mut store = KvStore::new();
    let mut minted: BTreeMap<u32, u64> = BTreeMap::new();
    let mut history: Vec<Option<HistoryOp>> = vec![None; planned.len()];
    for i in order {
        let p = &planned[i];
        let mut mint = |client: u32| {
            let n = minted.entry(client).or_insert(0);
            *n += 1;
            format!("{client}.{n}")
        };
        let key = p.key.clone();
        let current = store.get(&key).map(str::to_owned);
        let op = match p.kind {
            0..=39 => Op::Get { key },
            40..=64 => Op::Put {
                key,
                value: mint(p.client),
            },
            65..=79 => {
                let value = mint(p.client);
                if current.as_ref().map_or(0, |c| c.len()) + value.len() + 1
                    > GENERATED_VALUE_BYTES_MAX
                {
                    Op::Put { key, value }
                } else {
                    Op::Append {
                        key,
                        value: format!("/{value}"),
                    }
                }
            }
            80..=94 => {
                let expected = if rng.gen_ratio(2, 3) {
                    current
                } else {
                    Some(format!("{}.0", p.client))
                };
                Op::Cas {
                    key,
                    expected,
                    new: mint(p.client),
                }
            }
            _ => Op::Delete { key },
        };
        let (outcome, complete_tick) = match p.fate {
            0 => (Outcome::Ok(store.apply(&op)), Some(p.complete_tick)),
            1 => (Outcome::Fail, Some(p.complete_tick)),
            2 => {
                store.apply(&op);
                (Outcome::Info, Some(p.complete_tick))
            }
            _ => (Outcome::Info, Some(p.complete_tick)),
        };
        history[i] = Some(HistoryOp {
            client: ClientId::from(p.client),
            op: Arc::new(op),
            invoke_tick: p.invoke_tick,
            complete_tick,
            outcome,
        });
    }
    let mut history: Vec<HistoryOp> = history.into_iter().flatten().collect();
    // A client's last operation may still be pending when the history ends: indeterminate
    // with no completion (whatever it did, `Info` allows it).
    let mut last_of: BTreeMap<ClientId, usize> = BTreeMap::new();
    for (i, h) in history.iter().enumerate() {
        last_of.insert(h.client, i);
    }
    for &i in last_of.values() {
        if rng.gen_ratio(1, 3) {
            history[i].outcome = Outcome::Info;
            history[i].complete_tick = None;
        }
    }
    history.sort_by_key(|h| (h.invoke_tick, h.client));
    history
}
