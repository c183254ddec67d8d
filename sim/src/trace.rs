//! The trace: every event of a run as a structured record, rendered as a stable text line (for
//! people and snapshots) or a JSON line (for tools), plus a running hash.
//!
//! The hash is computed whether or not the trace is written, over a compact fingerprint of each
//! event (numbers for the hot events — sends and applications — and the rendered text for the
//! rare ones), so two runs can be compared by hash alone and tracing off costs no formatting on
//! the hot path. A run whose hash nobody will compare (a fuzz seed that is not re-run) takes a
//! trace that keeps nothing ([`Trace::unhashed`]), and costs no hashing either. Text lines look
//! like `t=120    n1->n2 AppendEntries term=3 prev=3/17 entries=2 commit=16 arrive=122`.

use std::fmt::Write as _;
use std::io::{self, Write};

use raftsim_protocol::node::{
    request_label, Applied, ApplyOutcome, ClientRequest, NodeEvent, Reply,
};
use raftsim_protocol::raft::Message;
use raftsim_protocol::types::{ClientId, NodeId, Tick};
use serde_json::json;

use crate::network::{DropReason, Fate};
use crate::node::AnyMessage;
use crate::workload::ClientNote;

/// How a trace is rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceFormat {
    /// One stable text line per event.
    Text,
    /// One JSON object per line (JSON Lines).
    Json,
}

/// One traced event. Borrowed, so building one costs nothing when tracing is off.
#[derive(Debug, Clone, Copy)]
pub enum TraceEvent<'a> {
    /// Header or summary line (`kind` is "header" or "summary").
    Line {
        /// "header", "summary", "verdict", ...
        kind: &'static str,
        /// The rendered text.
        text: &'a str,
    },
    /// A node sent a message to a peer, and what the network decided for it.
    Send {
        /// Sender.
        from: NodeId,
        /// Receiver.
        to: NodeId,
        /// The message.
        message: &'a AnyMessage,
        /// Its fate.
        fate: Fate,
        /// The tick it was sent at (arrival ticks are `sent + delay`).
        now: Tick,
    },
    /// A message in flight was lost on arrival (partition formed, receiver down).
    LostInFlight {
        /// Sender.
        from: NodeId,
        /// Receiver.
        to: NodeId,
        /// Message type name.
        kind: &'static str,
        /// Why.
        reason: DropReason,
    },
    /// A node reported an event.
    Node {
        /// The node.
        node: NodeId,
        /// What happened.
        event: &'a NodeEvent,
    },
    /// A node applied a committed entry.
    Apply {
        /// The node.
        node: NodeId,
        /// The application.
        applied: &'a Applied,
    },
    /// A client sent a request.
    Request {
        /// The client id on the wire.
        client: ClientId,
        /// Target node.
        to: NodeId,
        /// The request.
        request: &'a ClientRequest,
        /// Its fate.
        fate: Fate,
        /// Send tick.
        now: Tick,
    },
    /// A node answered a client.
    Response {
        /// The node.
        from: NodeId,
        /// The reply.
        reply: &'a Reply,
        /// Its fate.
        fate: Fate,
        /// Send tick.
        now: Tick,
    },
    /// A client-side happening (invoke, timeout, completion, ...).
    Client {
        /// The note; rendered only when the trace is written, hashed field by field.
        note: &'a ClientNote,
    },
    /// A fault or operator action (crash, restart, partition, heal, ...), already rendered.
    Fault {
        /// The rendered action.
        text: &'a str,
    },
    /// A scenario's `mark "..."` label.
    Mark {
        /// The label.
        text: &'a str,
    },
    /// A checker or expectation failed.
    Violation {
        /// The rendered violation.
        text: &'a str,
    },
}

/// The trace hash: one multiply-rotate-xor round per 64-bit word (in the style of FxHash) —
/// an eighth of the cost of byte-wise FNV on the hot path — finished with a 64-bit avalanche.
/// Only integer arithmetic, so it is the same on every platform and build.
#[derive(Debug, Clone, Copy)]
pub struct TraceHasher(u64);

impl TraceHasher {
    const K: u64 = 0x517c_c1b7_2722_0a95;

    /// A fresh hasher.
    pub fn new() -> TraceHasher {
        TraceHasher(0x9e37_79b9_7f4a_7c15)
    }

    /// Mix in one word.
    #[inline]
    pub fn write_u64(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(Self::K);
    }

    /// Mix in bytes with their length.
    pub fn write_framed(&mut self, bytes: &[u8]) {
        self.write_u64(bytes.len() as u64);
        let mut words = bytes.chunks_exact(8);
        for chunk in &mut words {
            self.write_u64(u64::from_le_bytes(
                chunk.try_into().expect("chunks_exact gives 8 bytes"),
            ));
        }
        // The tail, zero-padded, byte by byte: a short copy here compiles to a `memcpy` call.
        let tail = words.remainder();
        if !tail.is_empty() {
            let word = tail
                .iter()
                .rev()
                .fold(0u64, |word, &b| word << 8 | u64::from(b));
            self.write_u64(word);
        }
    }

    /// The hash so far.
    pub fn finish(&self) -> u64 {
        let mut x = self.0;
        x ^= x >> 33;
        x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
        x ^= x >> 33;
        x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        x ^ (x >> 33)
    }
}

/// A map for lookups only (nothing iterates it, so no order of its reaches an output), hashed
/// with [`TraceHasher`]: fast on the word-sized keys the checkers use, and seeded the same in
/// every process, unlike `RandomState`.
pub type FixedHashMap<K, V> =
    std::collections::HashMap<K, V, std::hash::BuildHasherDefault<TraceHasher>>;

/// The set form of [`FixedHashMap`], under the same rule.
pub type FixedHashSet<K> = std::collections::HashSet<K, std::hash::BuildHasherDefault<TraceHasher>>;

/// Derived `Hash` impls feed the trace hash through this. Widths are fixed at 64 bits, so the
/// hash of a value is the same on every platform.
impl std::hash::Hasher for TraceHasher {
    fn write(&mut self, bytes: &[u8]) {
        self.write_framed(bytes);
    }

    fn write_u8(&mut self, v: u8) {
        TraceHasher::write_u64(self, u64::from(v));
    }

    fn write_u32(&mut self, v: u32) {
        TraceHasher::write_u64(self, u64::from(v));
    }

    fn write_u64(&mut self, v: u64) {
        TraceHasher::write_u64(self, v);
    }

    fn write_usize(&mut self, v: usize) {
        TraceHasher::write_u64(self, v as u64);
    }

    fn write_isize(&mut self, v: isize) {
        TraceHasher::write_u64(self, v as i64 as u64);
    }

    fn write_i64(&mut self, v: i64) {
        TraceHasher::write_u64(self, v as u64);
    }

    fn finish(&self) -> u64 {
        TraceHasher::finish(self)
    }
}

impl Default for TraceHasher {
    fn default() -> Self {
        TraceHasher::new()
    }
}

enum Sink {
    Off,
    Buffer(Vec<u8>),
    Writer(Box<dyn Write>),
}

/// The trace of one run.
pub struct Trace {
    sink: Sink,
    format: TraceFormat,
    /// Whether `hash` is kept (see [`Trace::unhashed`]).
    hashed: bool,
    hash: TraceHasher,
    events_count: u64,
    line: String,
    io_error: Option<io::Error>,
}

fn fate_text(fate: &Fate, now: Tick, out: &mut String) {
    match fate {
        Fate::Dropped(reason) => {
            let _ = write!(out, " dropped={}", reason.name());
        }
        Fate::Deliver(a, b) => {
            let _ = write!(out, " arrive={}", now + a.delay_ticks);
            if a.corrupt {
                out.push_str(" corrupt");
            }
            if let Some(b) = b {
                let _ = write!(out, " dup={}", now + b.delay_ticks);
                if b.corrupt {
                    out.push_str(" corrupt");
                }
            }
        }
    }
}

fn fate_hash(fate: &Fate, h: &mut TraceHasher) {
    match fate {
        Fate::Dropped(reason) => h.write_u64(1 + *reason as u64),
        Fate::Deliver(a, b) => {
            h.write_u64(10 + a.delay_ticks * 2 + u64::from(a.corrupt));
            if let Some(b) = b {
                h.write_u64(b.delay_ticks * 2 + u64::from(b.corrupt));
            }
        }
    }
}

#[inline(always)]
fn message_hash(m: &AnyMessage, h: &mut TraceHasher, scratch: &mut String) {
    let m = match m {
        AnyMessage::Raft(m) => m,
        AnyMessage::Replication(m) => return replication_message_hash(m, h, scratch),
    };
    match m {
        Message::RequestVote {
            term,
            last_index,
            last_term,
            pre_vote,
        } => {
            h.write_u64(1 + u64::from(*pre_vote));
            h.write_u64(*term);
            h.write_u64(*last_index);
            h.write_u64(*last_term);
        }
        Message::Vote {
            term,
            granted,
            pre_vote,
        } => {
            h.write_u64(3 + u64::from(*pre_vote) * 2 + u64::from(*granted));
            h.write_u64(*term);
        }
        Message::AppendEntries {
            term,
            prev_index,
            prev_term,
            entries,
            commit,
            ..
        } => {
            h.write_u64(7);
            h.write_u64(*term);
            h.write_u64(*prev_index);
            h.write_u64(*prev_term);
            h.write_u64(entries.len() as u64);
            h.write_u64(*commit);
        }
        Message::AppendResponse {
            term,
            success,
            match_index,
            hint,
            ..
        } => {
            h.write_u64(8 + u64::from(*success));
            h.write_u64(*term);
            h.write_u64(*match_index);
            if let Some(hint) = hint {
                h.write_u64(hint.index);
                h.write_u64(hint.term.map_or(u64::MAX, |t| t));
            }
        }
        Message::InstallSnapshot { term, chunk } => {
            h.write_u64(10 + u64::from(chunk.done));
            h.write_u64(*term);
            h.write_u64(chunk.last_index);
            h.write_u64(chunk.last_term);
            h.write_u64(chunk.offset);
            h.write_u64(chunk.data.len() as u64);
        }
        Message::SnapshotResponse {
            term,
            last_index,
            last_term,
            installed,
            next_offset,
        } => {
            h.write_u64(12 + u64::from(*installed));
            h.write_u64(*term);
            h.write_u64(*last_index);
            h.write_u64(*last_term);
            h.write_u64(*next_offset);
        }
    }
}

/// The leader-follower protocol's messages, rarer, have a simpler fingerprint: the rendered
/// line. Out of line, so the formatting machinery stays out of [`Trace::record`]'s callers.
#[inline(never)]
fn replication_message_hash(
    m: &raftsim_protocol::replication::Message,
    h: &mut TraceHasher,
    scratch: &mut String,
) {
    scratch.clear();
    let _ = write!(scratch, "{m}");
    h.write_u64(9);
    h.write_framed(scratch.as_bytes());
}

/// Render a node event as the text after the node name.
pub fn node_event_text(event: &NodeEvent, out: &mut String) {
    let _ = match event {
        NodeEvent::RoleChanged { role, term } => write!(out, "{role} term={term}"),
        NodeEvent::Voted { candidate, term } => write!(out, "votes for n{candidate} term={term}"),
        NodeEvent::CorruptRejected { from, error } => {
            write!(
                out,
                "rejects corrupt message from n{from} ({})",
                error.kind_name()
            )
        }
        NodeEvent::StaleTermRejected { from, term } => {
            write!(out, "rejects stale term={term} from n{from}")
        }
        NodeEvent::SteppedDown { old_term, new_term } => {
            write!(
                out,
                "steps down: term={old_term} superseded by term={new_term}"
            )
        }
        NodeEvent::QuorumLost { term } => write!(out, "lost quorum, steps down term={term}"),
        NodeEvent::ElectionTimedOut { term } => write!(out, "election timed out term={term}"),
        NodeEvent::LogConflict {
            prev_index,
            hint_index,
        } => write!(
            out,
            "log conflict at prev={prev_index}, resume at {hint_index}"
        ),
        NodeEvent::LeaseRead { client } => write!(out, "lease read for c{client}"),
        NodeEvent::LeaseExpired => write!(out, "no valid lease, read goes through the log"),
        NodeEvent::SnapshotTaken { index } => {
            write!(out, "snapshot at index {index}, log compacted up to it")
        }
        NodeEvent::SnapshotInstalled { index } => {
            write!(out, "snapshot installed, state machine at index {index}")
        }
        NodeEvent::Note(text) => write!(out, "{text}"),
    };
}

fn applied_text(a: &Applied, out: &mut String) {
    let _ = write!(out, "apply {} term={}", a.index, a.term);
    match &a.command {
        None => out.push_str(" noop"),
        Some((client, seq, op)) => {
            let _ = write!(out, " {} {op} ->", request_label(*client, *seq));
            let _ = match &a.outcome {
                ApplyOutcome::Applied(r) => write!(out, " {r}"),
                ApplyOutcome::Duplicate => write!(out, " duplicate"),
                ApplyOutcome::Rejected => write!(out, " rejected"),
            };
        }
    }
}

impl TraceEvent<'_> {
    /// The event's type name in JSON (`"type"` field).
    pub fn type_name(&self) -> &'static str {
        match self {
            TraceEvent::Line { kind, .. } => kind,
            TraceEvent::Send { .. } => "send",
            TraceEvent::LostInFlight { .. } => "lost",
            TraceEvent::Node { .. } => "node",
            TraceEvent::Apply { .. } => "apply",
            TraceEvent::Request { .. } => "request",
            TraceEvent::Response { .. } => "response",
            TraceEvent::Client { .. } => "client",
            TraceEvent::Fault { .. } => "fault",
            TraceEvent::Mark { .. } => "mark",
            TraceEvent::Violation { .. } => "violation",
        }
    }

    /// Render the text line body (without the `t=` prefix) into `out`.
    pub fn render_text(&self, out: &mut String) {
        match self {
            TraceEvent::Line { text, .. } | TraceEvent::Fault { text } => out.push_str(text),
            TraceEvent::Client { note } => {
                let _ = write!(out, "{note}");
            }
            TraceEvent::Mark { text } => {
                let _ = write!(out, "mark \"{text}\"");
            }
            TraceEvent::Violation { text } => {
                let _ = write!(out, "VIOLATION {text}");
            }
            TraceEvent::Send {
                from,
                to,
                message,
                fate,
                now,
            } => {
                let _ = write!(out, "n{from}->n{to} {message}");
                fate_text(fate, *now, out);
            }
            TraceEvent::LostInFlight {
                from,
                to,
                kind,
                reason,
            } => {
                let _ = write!(
                    out,
                    "n{from}->n{to} {kind} lost in flight ({})",
                    reason.name()
                );
            }
            TraceEvent::Node { node, event } => {
                let _ = write!(out, "n{node} ");
                node_event_text(event, out);
            }
            TraceEvent::Apply { node, applied } => {
                let _ = write!(out, "n{node} ");
                applied_text(applied, out);
            }
            TraceEvent::Request {
                client,
                to,
                request,
                fate,
                now,
            } => {
                let _ = write!(
                    out,
                    "c{client}->n{to} {} {}",
                    request_label(request.client, request.seq),
                    request.op
                );
                fate_text(fate, *now, out);
            }
            TraceEvent::Response {
                from,
                reply,
                fate,
                now,
            } => {
                let _ = write!(
                    out,
                    "n{from}->c{} {} {}",
                    reply.client,
                    request_label(reply.client, reply.seq),
                    reply.response
                );
                fate_text(fate, *now, out);
            }
        }
    }

    /// Feed the event's fingerprint to the trace hash. Inlined into [`Trace::record`] (see
    /// there).
    #[inline(always)]
    fn hash_into(&self, h: &mut TraceHasher, scratch: &mut String) {
        match self {
            TraceEvent::Send {
                from,
                to,
                message,
                fate,
                ..
            } => {
                h.write_u64(1);
                h.write_u64(u64::from(*from) << 8 | u64::from(*to));
                message_hash(message, h, scratch);
                fate_hash(fate, h);
            }
            TraceEvent::Apply { node, applied } => {
                h.write_u64(2);
                h.write_u64(u64::from(*node));
                h.write_u64(applied.index);
                h.write_u64(applied.term);
                if let Some((c, s, _)) = &applied.command {
                    h.write_u64(*c);
                    h.write_u64(*s);
                }
            }
            TraceEvent::Request {
                client,
                to,
                request,
                fate,
                ..
            } => {
                h.write_u64(4);
                h.write_u64(*client << 8 | u64::from(*to));
                h.write_u64(request.client);
                h.write_u64(request.seq);
                h.write_u64(request.timestamp);
                std::hash::Hash::hash(&request.op, h);
                fate_hash(fate, h);
            }
            TraceEvent::Client { note } => {
                h.write_u64(6);
                std::hash::Hash::hash(*note, h);
            }
            TraceEvent::Response {
                from, reply, fate, ..
            } => {
                h.write_u64(5);
                h.write_u64(u64::from(*from));
                h.write_u64(reply.client);
                h.write_u64(reply.seq);
                std::hash::Hash::hash(&reply.response, h);
                fate_hash(fate, h);
            }
            TraceEvent::Node { node, event } => {
                h.write_u64(7);
                h.write_u64(u64::from(*node));
                std::hash::Hash::hash(*event, h);
            }
            TraceEvent::LostInFlight {
                from,
                to,
                kind,
                reason,
            } => {
                h.write_u64(8);
                h.write_u64(u64::from(*from) << 8 | u64::from(*to));
                h.write_framed(kind.as_bytes());
                h.write_u64(*reason as u64);
            }
            // Rare lines (faults, marks, headers): their rendered text.
            _ => {
                scratch.clear();
                self.render_text(scratch);
                h.write_u64(3);
                h.write_framed(scratch.as_bytes());
            }
        }
    }

    fn json(&self, tick: Tick, text: &str) -> serde_json::Value {
        let mut v = json!({ "t": tick, "type": self.type_name(), "text": text });
        let obj = v.as_object_mut().expect("object");
        match self {
            TraceEvent::Send {
                from,
                to,
                message,
                fate,
                now,
            } => {
                obj.insert("from".into(), json!(format!("n{from}")));
                obj.insert("to".into(), json!(format!("n{to}")));
                obj.insert("msg".into(), json!(message.kind_name()));
                obj.insert("term".into(), json!(message.term()));
                fate_json(fate, *now, obj);
            }
            TraceEvent::LostInFlight {
                from,
                to,
                kind,
                reason,
            } => {
                obj.insert("from".into(), json!(format!("n{from}")));
                obj.insert("to".into(), json!(format!("n{to}")));
                obj.insert("msg".into(), json!(kind));
                obj.insert("reason".into(), json!(reason.name()));
            }
            TraceEvent::Node { node, event } => {
                obj.insert("node".into(), json!(format!("n{node}")));
                if let NodeEvent::RoleChanged { role, term } = event {
                    obj.insert("role".into(), json!(role.name()));
                    obj.insert("term".into(), json!(term));
                }
            }
            TraceEvent::Apply { node, applied } => {
                obj.insert("node".into(), json!(format!("n{node}")));
                obj.insert("index".into(), json!(applied.index));
                obj.insert("term".into(), json!(applied.term));
            }
            TraceEvent::Request {
                client,
                to,
                request,
                fate,
                now,
            } => {
                obj.insert("from".into(), json!(format!("c{client}")));
                obj.insert("to".into(), json!(format!("n{to}")));
                obj.insert("msg".into(), json!(request.op.name()));
                obj.insert("seq".into(), json!(request.seq));
                fate_json(fate, *now, obj);
            }
            TraceEvent::Response {
                from,
                reply,
                fate,
                now,
            } => {
                obj.insert("from".into(), json!(format!("n{from}")));
                obj.insert("to".into(), json!(format!("c{}", reply.client)));
                obj.insert("msg".into(), json!(reply.response.kind_name()));
                obj.insert("seq".into(), json!(reply.seq));
                fate_json(fate, *now, obj);
            }
            _ => {}
        }
        v
    }
}

fn fate_json(fate: &Fate, now: Tick, obj: &mut serde_json::Map<String, serde_json::Value>) {
    match fate {
        Fate::Dropped(reason) => {
            obj.insert("dropped".into(), json!(reason.name()));
        }
        Fate::Deliver(a, b) => {
            let mut arrive = vec![now + a.delay_ticks];
            let mut corrupt = vec![a.corrupt];
            if let Some(b) = b {
                arrive.push(now + b.delay_ticks);
                corrupt.push(b.corrupt);
            }
            obj.insert("arrive".into(), json!(arrive));
            if corrupt.iter().any(|&c| c) {
                obj.insert("corrupt".into(), json!(corrupt));
            }
        }
    }
}

impl Trace {
    /// A trace that renders nothing (the hash is still kept).
    pub fn off() -> Trace {
        Trace::with_sink(Sink::Off, TraceFormat::Text)
    }

    /// A trace that keeps nothing: no lines and no hash ([`Trace::hash`] is `None`). For a run
    /// whose hash nobody compares — a fuzz seed that no determinism check re-runs — where
    /// hashing every message sent was about 3% of the run's instructions.
    pub fn unhashed() -> Trace {
        Trace {
            hashed: false,
            ..Trace::off()
        }
    }

    /// A trace kept in memory (tests, snapshots, failure reports).
    pub fn buffer(format: TraceFormat) -> Trace {
        Trace::with_sink(Sink::Buffer(Vec::new()), format)
    }

    /// A trace streamed to a writer (a file).
    pub fn writer(format: TraceFormat, writer: Box<dyn Write>) -> Trace {
        Trace::with_sink(Sink::Writer(writer), format)
    }

    fn with_sink(sink: Sink, format: TraceFormat) -> Trace {
        Trace {
            sink,
            format,
            hashed: true,
            hash: TraceHasher::new(),
            events_count: 0,
            line: String::with_capacity(256),
            io_error: None,
        }
    }

    /// Whether lines are rendered at all.
    pub fn enabled(&self) -> bool {
        !matches!(self.sink, Sink::Off)
    }

    /// Record one event at `tick`.
    ///
    /// Inlined, with the hash: at a call site the event's variant is known, so its fingerprint
    /// compiles to a few multiply-rotates there (a send, an application) instead of a call
    /// and a jump on the variant; rendering, off in benchmarks and fuzzing, stays out of line.
    ///
    /// The hash is worked on in a local and stored once: hashed in place, it was stored back
    /// after each branch of a message's fingerprint, as the compiler could not tell the
    /// hasher's memory from the message's.
    #[inline(always)]
    pub fn record(&mut self, tick: Tick, event: &TraceEvent<'_>) {
        self.events_count += 1;
        if self.hashed {
            let mut hash = self.hash;
            hash.write_u64(tick);
            event.hash_into(&mut hash, &mut self.line);
            self.hash = hash;
        }
        if self.enabled() {
            // By value: the event is then built in memory on this cold path only. Handing its
            // address to a call made every caller write all its fields out before hashing
            // (a dozen stores per message sent), tracing on or off.
            self.render(tick, *event);
        }
    }

    /// Render a recorded event and hand the line to the sink.
    #[cold]
    #[inline(never)]
    fn render(&mut self, tick: Tick, event: TraceEvent<'_>) {
        let event = &event;
        self.line.clear();
        if self.format == TraceFormat::Text {
            let _ = write!(self.line, "t={tick:<6} ");
            event.render_text(&mut self.line);
        } else {
            let mut text = String::new();
            event.render_text(&mut text);
            self.line = event.json(tick, &text).to_string();
        }
        self.emit_line();
    }

    /// Write a line that is not part of the hash (the closing `trace-hash=` line itself).
    pub fn write_unhashed(&mut self, tick: Tick, kind: &'static str, text: &str) {
        if !self.enabled() {
            return;
        }
        self.line.clear();
        if self.format == TraceFormat::Text {
            let _ = write!(self.line, "t={tick:<6} {text}");
        } else {
            self.line = json!({ "t": tick, "type": kind, "text": text }).to_string();
        }
        self.emit_line();
    }

    /// Terminate the rendered line and hand it to the sink; the first write error is kept for
    /// [`Trace::finish`].
    fn emit_line(&mut self) {
        self.line.push('\n');
        let result = match &mut self.sink {
            Sink::Off => Ok(()),
            Sink::Buffer(buf) => {
                buf.extend_from_slice(self.line.as_bytes());
                Ok(())
            }
            Sink::Writer(w) => w.write_all(self.line.as_bytes()),
        };
        if let Err(e) = result {
            self.io_error.get_or_insert(e);
        }
    }

    /// The running hash of every event recorded so far.
    pub fn hash(&self) -> Option<u64> {
        self.hashed.then(|| self.hash.finish())
    }

    /// Events recorded.
    pub fn events_count(&self) -> u64 {
        self.events_count
    }

    /// Flush and hand back the in-memory buffer, if any. Reports the first write error.
    pub fn finish(self) -> io::Result<Option<Vec<u8>>> {
        if let Some(e) = self.io_error {
            return Err(e);
        }
        match self.sink {
            Sink::Off => Ok(None),
            Sink::Buffer(buf) => Ok(Some(buf)),
            Sink::Writer(mut w) => {
                w.flush()?;
                Ok(None)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::Copy;

    /// Framed bytes hash as their length, then little-endian words, the last one zero-padded:
    /// the definition traces were hashed with, whatever the loop looks like.
    #[test]
    fn framed_bytes_hash_as_padded_little_endian_words() {
        let bytes: Vec<u8> = (1..=21u8).map(|b| b.wrapping_mul(37)).collect();
        for len in 0..=bytes.len() {
            let part = &bytes[..len];
            let mut expected = TraceHasher::new();
            expected.write_u64(len as u64);
            for chunk in part.chunks(8) {
                let mut word = [0u8; 8];
                word[..chunk.len()].copy_from_slice(chunk);
                expected.write_u64(u64::from_le_bytes(word));
            }
            let mut h = TraceHasher::new();
            h.write_framed(part);
            assert_eq!(h.finish(), expected.finish(), "{len} bytes");
        }
    }

    fn send() -> AnyMessage {
        AnyMessage::Raft(Message::AppendEntries {
            term: 3,
            prev_index: 17,
            prev_term: 3,
            entries: Default::default(),
            commit: 16,
            sent_at: 120,
        })
    }

    #[test]
    fn text_line_shape() {
        let mut t = Trace::buffer(TraceFormat::Text);
        let m = send();
        let fate = Fate::Deliver(
            Copy {
                delay_ticks: 2,
                corrupt: false,
                duplicate: false,
            },
            None,
        );
        t.record(
            120,
            &TraceEvent::Send {
                from: 1,
                to: 2,
                message: &m,
                fate,
                now: 120,
            },
        );
        let out = String::from_utf8(t.finish().unwrap().unwrap()).unwrap();
        assert_eq!(
            out,
            "t=120    n1->n2 AppendEntries term=3 prev=3/17 entries=0 commit=16 arrive=122\n"
        );
    }

    #[test]
    fn hash_is_the_same_with_tracing_on_or_off_and_sees_differences() {
        let m = send();
        let fate = Fate::Dropped(DropReason::Loss);
        let ev = TraceEvent::Send {
            from: 1,
            to: 2,
            message: &m,
            fate,
            now: 5,
        };
        let mut on = Trace::buffer(TraceFormat::Json);
        let mut off = Trace::off();
        on.record(5, &ev);
        off.record(5, &ev);
        on.record(6, &TraceEvent::Mark { text: "x" });
        off.record(6, &TraceEvent::Mark { text: "x" });
        assert_eq!(on.hash(), off.hash());
        off.record(7, &TraceEvent::Mark { text: "y" });
        on.record(7, &TraceEvent::Mark { text: "z" });
        assert_ne!(on.hash(), off.hash());
        assert!(on.hash().is_some());
        // An unhashed trace counts events and keeps no hash.
        let mut unhashed = Trace::unhashed();
        unhashed.record(5, &ev);
        assert_eq!((unhashed.hash(), unhashed.events_count()), (None, 1));
        let json = String::from_utf8(on.finish().unwrap().unwrap()).unwrap();
        let first: serde_json::Value = serde_json::from_str(json.lines().next().unwrap()).unwrap();
        assert_eq!(first["type"], "send");
        assert_eq!(first["dropped"], "loss");
        assert_eq!(first["msg"], "AppendEntries");
    }
}
