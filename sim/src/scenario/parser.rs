//! The scenario parser: script text → [`Script`], or the first error with its file, line and
//! column.
//!
//! Contract:
//! - [`parse`] never panics, whatever the input; every rejection is a [`ParseError`] naming
//!   the 1-based line and column of the offending token, what was expected there and, for a
//!   misspelt keyword, the nearest valid one.
//! - The language is line-oriented (one command per line, `#` comments, `repeat N {` ... `}`
//!   blocks) and documented for users in `scenarios/README.md`; each [`ast`] variant's doc
//!   comment gives its surface syntax.
//! - Parsing is purely syntactic plus one scope rule: a node alias must have been bound by a
//!   `let` earlier in the text. Whether `n7` exists in the cluster, or whether a setting in
//!   `ClusterSpec::extra` means anything, is the interpreter's call.
//! - Bounds: `repeat` blocks nest at most [`REPEAT_DEPTH_MAX`] deep and run at most
//!   [`REPEAT_COUNT_MAX`] iterations; keys and values fit the store's limits; numbers that
//!   overflow their type are errors, never wrapped.
//!
//! [`ast`]: crate::scenario::ast

// `ParseError` is the specified public error (plain public fields, source line included); a
// parse ends at its first error, so the error's size costs nothing where it matters.
#![allow(clippy::result_large_err)]

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use raftsim_protocol::kv::{Op, KEY_BYTES_MAX, VALUE_BYTES_MAX};
use raftsim_protocol::node::Role;

use crate::cluster::DRIFT_PPM_MAX;
use crate::scenario::ast::{
    ClientOp, ClusterSpec, Cmp, Command, Condition, Expectation, NetSettings, NodeRef, NodeSet,
    Protocol, ReplyKind, Script, Span, Spanned,
};
use crate::scenario::lexer::{self, LexedLine, Token, TokenKind};

/// Every command verb, in the order help texts list them.
pub const COMMANDS: &[&str] = &[
    "cluster",
    "run",
    "advance",
    "crash",
    "restart",
    "pause",
    "resume",
    "isolate",
    "partition",
    "cut",
    "heal",
    "heal-all",
    "net",
    "rot",
    "drift",
    "let",
    "repeat",
    "client",
    "expect",
    "mark",
    "print",
];

/// The words that may follow `expect`.
pub const EXPECTATIONS: &[&str] = &[
    "leader",
    "leaders",
    "no",
    "term",
    "role",
    "vote",
    "value",
    "committed",
    "not",
    "reply",
    "messages",
    "applied",
    "linearizable",
    "checkers",
    "converged",
    "note",
    "stat",
];

/// The words a `run until` condition starts with.
pub const CONDITIONS: &[&str] = &[
    "leader",
    "no",
    "committed",
    "applied",
    "quiet",
    "client",
    "role",
];

/// The reply kinds of `expect reply`.
pub const REPLY_KINDS: &[&str] = &[
    "ok",
    "duplicate",
    "gap",
    "not-leader",
    "session-expired",
    "overloaded",
    "none",
];

/// The settings of the `cluster` line this parser types; any other key goes to `extra`.
pub const CLUSTER_KEYS: &[&str] = &[
    "protocol",
    "nodes",
    "seed",
    "election",
    "heartbeat",
    "lease",
    "pre-vote",
    "check-quorum",
    "lease-reads",
    "clients",
    "keys",
    "workload",
    "delay",
    "loss",
    "dup",
    "corrupt",
    "sync",
    "torn-writes",
    "timeout",
    "quorum",
];

/// Deepest nesting of `repeat` blocks.
pub const REPEAT_DEPTH_MAX: usize = 8;

/// Largest `repeat` count.
pub const REPEAT_COUNT_MAX: u32 = 1_000_000;

const NET_KEYS: &[&str] = &["loss", "dup", "corrupt", "delay"];
const CLIENT_OPS: &[&str] = &["put", "get", "append", "delete", "cas"];
const ROLES: &[&str] = &[
    "follower",
    "candidate",
    "precandidate",
    "pre-candidate",
    "leader",
];
const BOOLS: &[&str] = &["on", "off", "true", "false", "yes", "no"];
const PROTOCOLS: &[&str] = &["raft", "replication"];
const NODE_WORDS: &[&str] = &["leader", "follower", "random"];

/// Words that can never name a `let` alias: they mean something where a node is expected, or
/// would make a script read ambiguously.
const RESERVED: &[&str] = &[
    "leader", "follower", "random", "live", "all", "none", "no", "not", "is", "on", "within",
    "until", "tick", "ticks", "torn", "since", "among", "ppm",
];

const EXPECTED_COMMAND: &str = "a command (run, crash, restart, pause, resume, isolate, \
     partition, cut, heal, heal-all, net, rot, drift, let, repeat, client, expect, mark, print)";
const EXPECTED_NODE: &str =
    "a node: n1, n2, ..., leader, follower, random, random live, or a name bound by `let`";
const EXPECTED_CLUSTER: &str =
    "`cluster` with optional settings as the first command, e.g. `cluster nodes=3 seed=7`";
const EXPECTED_CONDITION: &str = "a condition: leader, leader is <node>, leader not <node>, \
     no leader, committed <index> on <k>, applied, quiet, client <c> done, role <node> <role>";
const EXPECTED_EXPECTATION: &str = "an expectation: leader, leaders, no leader among, term, \
     role, vote, value, committed, not committed, reply, messages, applied, linearizable, \
     not linearizable, checkers ok, converged";
const EXPECTED_ROLE: &str = "a role: follower, candidate, precandidate, leader";
const EXPECTED_CLIENT: &str = "a client: c1, c2, ...";
const EXPECTED_CMP: &str = "a comparison (=, ==, !=, <, <=, >, >=) then a number";
const EXPECTED_EOL: &str = "end of line";
const SECOND_CLUSTER: &str = "a second `cluster` line: only the first command sets up the cluster";

/// A script that could not be parsed: where, what, and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// The file name as given to [`parse`].
    pub file: String,
    /// Line of the offending token, from 1 (one past the last line for "end of file").
    pub line: u32,
    /// Column of the offending token, from 1 (in characters).
    pub col: u32,
    /// What is wrong.
    pub message: String,
    /// What would have been valid there.
    pub expected: Option<String>,
    /// The nearest valid word or fix, if there is a plausible one.
    pub suggestion: Option<String>,
    /// The offending line as written (empty at end of file).
    pub source_line: String,
}

impl ParseError {
    fn with_expected(mut self, expected: impl Into<String>) -> Self {
        self.expected = Some(expected.into());
        self
    }

    fn with_suggestion(mut self, suggestion: Option<String>) -> Self {
        self.suggestion = suggestion;
        self
    }
}

impl fmt::Display for ParseError {
    /// ```text
    /// scenarios/raft/election.scn:12:1: error: unknown command `crsh`
    ///    12 | crsh n1
    ///       | ^
    ///   expected: a command (run, crash, restart, ...)
    ///   help: did you mean `crash`?
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{}:{}:{}: error: {}",
            self.file, self.line, self.col, self.message
        )?;
        let number = self.line.to_string();
        writeln!(f, "   {number} | {}", self.source_line)?;
        // Keep tabs so the caret lines up under the token however the terminal renders them.
        let before = usize::try_from(self.col.saturating_sub(1)).unwrap_or(0);
        let mut pad: String = self
            .source_line
            .chars()
            .take(before)
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        // Errors from `parse` point at most one past the line; a hand-made one is capped.
        let missing = before.saturating_sub(pad.chars().count()).min(256);
        pad.extend(std::iter::repeat_n(' ', missing));
        write!(f, "   {} | {pad}^", " ".repeat(number.len()))?;
        if let Some(expected) = &self.expected {
            write!(f, "\n  expected: {expected}")?;
        }
        if let Some(suggestion) = &self.suggestion {
            write!(f, "\n  help: did you mean `{suggestion}`?")?;
        }
        Ok(())
    }
}

impl std::error::Error for ParseError {}

/// Parses a scenario script. `file` is only used in error messages and [`Script::file`].
pub fn parse(file: &str, source: &str) -> Result<Script, ParseError> {
    let mut state = State {
        file,
        header: Vec::new(),
        in_header: true,
        cluster: None,
        blocks: Vec::new(),
        top: Vec::new(),
        aliases: BTreeSet::new(),
    };
    let mut lines_count = 0;
    for (number, raw) in lexer::lines(source) {
        lines_count = number;
        let line = lexer::lex_line(number, raw).map_err(|e| ParseError {
            file: file.to_string(),
            line: number,
            col: e.col,
            message: e.message,
            expected: Some(e.expected),
            suggestion: None,
            source_line: raw.to_string(),
        })?;
        state.handle_line(&line)?;
    }
    let result = state.finish(lines_count.saturating_add(1));
    if let Err(e) = &result {
        debug_assert!(
            e.line >= 1 && e.col >= 1,
            "parser: positions are 1-based: {e:?}"
        );
        debug_assert!(e.line <= lines_count.saturating_add(1), "parser: {e:?}");
    }
    result
}

/// An open `repeat` block.
struct Block {
    span: Span,
    text: String,
    source_line: String,
    count: u32,
    body: Vec<Spanned>,
}

/// The parser's state between lines.
struct State<'f> {
    file: &'f str,
    header: Vec<String>,
    in_header: bool,
    cluster: Option<(ClusterSpec, Span)>,
    blocks: Vec<Block>,
    top: Vec<Spanned>,
    aliases: BTreeSet<String>,
}

/// What a command line does to the block structure.
enum Step {
    Command(Command),
    Open(u32),
    Close,
}

impl State<'_> {
    fn handle_line(&mut self, line: &LexedLine<'_>) -> Result<(), ParseError> {
        if line.is_blank_or_comment() {
            if self.in_header {
                match line.comment {
                    Some(text) => {
                        let text = text.strip_prefix(' ').unwrap_or(text).trim_end();
                        self.header.push(text.to_string());
                    }
                    // A blank line inside the header separates paragraphs; leading ones go.
                    None if !self.header.is_empty() => self.header.push(String::new()),
                    None => {}
                }
            }
            return Ok(());
        }
        if self.in_header {
            self.in_header = false;
            while self.header.last().is_some_and(|l| l.is_empty()) {
                self.header.pop();
            }
        }
        let mut cursor = Cursor {
            file: self.file,
            line,
            pos: 0,
            aliases: &self.aliases,
        };
        let first = line.tokens.first().map(|t| (t.kind.clone(), t.text, t.col));
        let Some((kind, verb, col)) = first else {
            return Ok(());
        };
        let span = Span {
            line: line.number,
            col,
        };
        if self.cluster.is_none() {
            if kind == TokenKind::Word && verb == "cluster" {
                cursor.pos = 1;
                let spec = cursor.cluster()?;
                self.cluster = Some((spec, span));
                return Ok(());
            }
            let message = if kind == TokenKind::Word && COMMANDS.contains(&verb) {
                format!("the first command must be `cluster`, found `{verb}`")
            } else {
                format!(
                    "the first command must be `cluster`, found {}",
                    cursor.found()
                )
            };
            return Err(cursor
                .error(col, message)
                .with_expected(EXPECTED_CLUSTER)
                .with_suggestion(nearest(verb, ["cluster"])));
        }
        let step = cursor.command(kind, verb, col)?;
        match step {
            Step::Command(command) => {
                if let Command::Let { name, .. } = &command {
                    self.aliases.insert(name.clone());
                }
                let spanned = Spanned {
                    span,
                    text: line.code.to_string(),
                    command,
                };
                self.body().push(spanned);
            }
            Step::Open(count) => {
                if self.blocks.len() >= REPEAT_DEPTH_MAX {
                    return Err(cursor
                        .error(
                            col,
                            format!(
                                "`repeat` blocks nest too deep (at most {REPEAT_DEPTH_MAX} levels)"
                            ),
                        )
                        .with_expected("a command other than `repeat` at this depth"));
                }
                self.blocks.push(Block {
                    span,
                    text: line.code.to_string(),
                    source_line: line.raw.to_string(),
                    count,
                    body: Vec::new(),
                });
            }
            Step::Close => {
                let Some(block) = self.blocks.pop() else {
                    return Err(cursor
                        .error(col, "`}` without an open `repeat` block")
                        .with_expected(EXPECTED_COMMAND));
                };
                let spanned = Spanned {
                    span: block.span,
                    text: block.text,
                    command: Command::Repeat {
                        count: block.count,
                        body: block.body,
                    },
                };
                self.body().push(spanned);
            }
        }
        Ok(())
    }

    /// The command list new commands go to: the innermost open block's body, or the top level.
    fn body(&mut self) -> &mut Vec<Spanned> {
        match self.blocks.last_mut() {
            Some(block) => &mut block.body,
            None => &mut self.top,
        }
    }

    fn finish(mut self, eof_line: u32) -> Result<Script, ParseError> {
        if let Some(block) = self.blocks.pop() {
            return Err(ParseError {
                file: self.file.to_string(),
                line: block.span.line,
                col: block.span.col,
                message: "unclosed `repeat` block: no `}` closes it".to_string(),
                expected: Some("a line with `}` alone after the block's commands".to_string()),
                suggestion: None,
                source_line: block.source_line,
            });
        }
        let Some((cluster, cluster_span)) = self.cluster else {
            return Err(ParseError {
                file: self.file.to_string(),
                line: eof_line,
                col: 1,
                message: "missing `cluster` line: the script has no commands".to_string(),
                expected: Some(EXPECTED_CLUSTER.to_string()),
                suggestion: None,
                source_line: String::new(),
            });
        };
        while self.header.last().is_some_and(|l| l.is_empty()) {
            self.header.pop();
        }
        Ok(Script {
            file: self.file.to_string(),
            header: self.header,
            cluster,
            cluster_span,
            commands: self.top,
        })
    }
}

/// A position in one lexed line.
struct Cursor<'p, 'a> {
    file: &'p str,
    line: &'p LexedLine<'a>,
    pos: usize,
    aliases: &'p BTreeSet<String>,
}

/// A key or value as written: its text, whether it was quoted, and its column.
struct Text {
    value: String,
    quoted: bool,
    col: u32,
}

impl<'p, 'a> Cursor<'p, 'a> {
    // ----- Token access and errors -----

    fn peek(&self) -> Option<&'p Token<'a>> {
        self.line.tokens.get(self.pos)
    }

    fn peek_kind(&self) -> Option<&'p TokenKind> {
        self.peek().map(|t| &t.kind)
    }

    fn peek_word(&self) -> Option<&'a str> {
        self.peek()
            .filter(|t| t.kind == TokenKind::Word)
            .map(|t| t.text)
    }

    /// Column of the next token, or just past the code at the end of the line.
    fn here(&self) -> u32 {
        self.peek().map_or(self.line.end_col, |t| t.col)
    }

    /// The next token, described for a message.
    fn found(&self) -> String {
        match self.peek() {
            None => "end of line".to_string(),
            Some(Token {
                kind: TokenKind::Str(_),
                ..
            }) => "a quoted string".to_string(),
            Some(t) => format!("`{}`", t.text),
        }
    }

    fn error(&self, col: u32, message: impl Into<String>) -> ParseError {
        ParseError {
            file: self.file.to_string(),
            line: self.line.number,
            col,
            message: message.into(),
            expected: None,
            suggestion: None,
            source_line: self.line.raw.to_string(),
        }
    }

    /// "expected `what`, found ..." at the next token.
    fn unexpected(&self, what: &str, expected: &str) -> ParseError {
        self.error(
            self.here(),
            format!("expected {what}, found {}", self.found()),
        )
        .with_expected(expected)
    }

    fn eat_word(&mut self, word: &str) -> bool {
        if self.peek_word() == Some(word) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn eat(&mut self, kind: &TokenKind) -> bool {
        if self.peek_kind() == Some(kind) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// A required keyword (`ticks`, `on`, `within`, ...); `alternatives` are accepted too.
    fn keyword(&mut self, word: &str, alternatives: &[&str]) -> Result<(), ParseError> {
        if self.eat_word(word) || alternatives.iter().any(|alt| self.eat_word(alt)) {
            return Ok(());
        }
        let what = format!("`{word}`");
        let suggestion = self.peek_word().and_then(|w| nearest(w, [word]));
        Err(self.unexpected(&what, &what).with_suggestion(suggestion))
    }

    /// One of `choices`, as a word; `what` names the category in messages.
    fn choice(
        &mut self,
        choices: &[&'static str],
        what: &str,
        expected: &str,
    ) -> Result<(&'static str, u32), ParseError> {
        let Some(token) = self.peek().filter(|t| t.kind == TokenKind::Word) else {
            return Err(self.unexpected(what, expected));
        };
        match choices.iter().find(|c| **c == token.text) {
            Some(choice) => {
                self.pos += 1;
                Ok((choice, token.col))
            }
            None => Err(self
                .error(token.col, format!("unknown {what} `{}`", token.text))
                .with_expected(expected)
                .with_suggestion(nearest(token.text, choices.iter().copied()))),
        }
    }

    /// Requires the end of the line.
    fn end(&self) -> Result<(), ParseError> {
        match self.peek() {
            None => Ok(()),
            Some(token) => Err(self
                .error(
                    token.col,
                    format!("unexpected {} after the command", self.found()),
                )
                .with_expected(EXPECTED_EOL)),
        }
    }

    /// Requires the end of the line, or one of the optional `words` (for a better message).
    fn end_or(&self, words: &[&str]) -> Result<(), ParseError> {
        let Some(token) = self.peek() else {
            return Ok(());
        };
        let listed: Vec<String> = words.iter().map(|w| format!("`{w}`")).collect();
        // Suggest the option's name (`value` of `value=V`): that is the part one misspells.
        let names = words.iter().map(|w| w.split('=').next().unwrap_or(w));
        let suggestion = self.peek_word().and_then(|w| nearest(w, names));
        Err(self
            .error(token.col, format!("unexpected {}", self.found()))
            .with_expected(format!("{} or end of line", listed.join(", ")))
            .with_suggestion(suggestion))
    }

    // ----- Numbers -----

    /// An unsigned decimal number (with optional `_` separators); `what` names it.
    fn number(&mut self, what: &str) -> Result<(u64, u32), ParseError> {
        let expected = format!("{what} (a whole number such as 100 or 20_000)");
        let Some(token) = self.peek().filter(|t| t.kind == TokenKind::Word) else {
            return Err(self.unexpected(what, &expected));
        };
        match parse_u64(token.text) {
            Ok(n) => {
                self.pos += 1;
                Ok((n, token.col))
            }
            Err(NumberError::Invalid) => Err(self
                .error(token.col, format!("`{}` is not a number", token.text))
                .with_expected(expected)),
            Err(NumberError::Overflow) => Err(self
                .error(
                    token.col,
                    format!("`{}` is too large (at most {})", token.text, u64::MAX),
                )
                .with_expected(expected)),
        }
    }

    /// A number that must fit a `u32`.
    fn number_u32(&mut self, what: &str) -> Result<(u32, u32), ParseError> {
        let (n, col) = self.number(what)?;
        match u32::try_from(n) {
            Ok(n) => Ok((n, col)),
            Err(_) => Err(self
                .error(col, format!("`{n}` is too large (at most {})", u32::MAX))
                .with_expected(format!("{what} (at most {})", u32::MAX))),
        }
    }

    /// `N ticks` (or `N tick`).
    fn ticks(&mut self) -> Result<u64, ParseError> {
        let (n, _) = self.number("a number of ticks")?;
        self.keyword("ticks", &["tick"])?;
        Ok(n)
    }

    /// `within N ticks`.
    fn within(&mut self) -> Result<u64, ParseError> {
        self.keyword("within", &[])?;
        self.ticks()
    }

    /// An optional comparison (default `=`).
    fn cmp(&mut self) -> Cmp {
        let cmp = match self.peek_kind() {
            Some(TokenKind::Eq | TokenKind::EqEq) => Cmp::Eq,
            Some(TokenKind::Ne) => Cmp::Ne,
            Some(TokenKind::Lt) => Cmp::Lt,
            Some(TokenKind::Le) => Cmp::Le,
            Some(TokenKind::Gt) => Cmp::Gt,
            Some(TokenKind::Ge) => Cmp::Ge,
            _ => return Cmp::Eq,
        };
        self.pos += 1;
        cmp
    }

    /// `MIN..MAX`, with MIN <= MAX.
    fn range(&mut self, what: &str) -> Result<(u64, u64), ParseError> {
        let expected = format!("{what} as `MIN..MAX` with MIN <= MAX, e.g. 1..3");
        let (min, col) = self.number(what).map_err(|e| e.with_expected(&expected))?;
        if !self.eat(&TokenKind::DotDot) {
            return Err(self.unexpected("`..` between MIN and MAX", &expected));
        }
        let (max, _) = self.number(what).map_err(|e| e.with_expected(&expected))?;
        if min > max {
            return Err(self
                .error(
                    col,
                    format!("empty range `{min}..{max}`: MIN is greater than MAX"),
                )
                .with_expected(expected)
                .with_suggestion(Some(format!("{max}..{min}"))));
        }
        Ok((min, max))
    }

    /// A probability from 0 to 1 (`0`, `0.05`, `1`, `.5`).
    fn probability(&mut self, what: &str) -> Result<f64, ParseError> {
        let expected = format!("{what}: a probability from 0 to 1, such as 0 or 0.05");
        let Some(token) = self.peek().filter(|t| t.kind == TokenKind::Word) else {
            return Err(self.unexpected("a probability", &expected));
        };
        let text = token.text;
        let (int, frac) = text.split_once('.').unwrap_or((text, ""));
        let well_formed = !(int.is_empty() && frac.is_empty())
            && int.bytes().all(|b| b.is_ascii_digit())
            && frac.bytes().all(|b| b.is_ascii_digit())
            && text.len() <= 64;
        let value = if well_formed {
            text.parse::<f64>().ok()
        } else {
            None
        };
        match value {
            Some(p) if (0.0..=1.0).contains(&p) => {
                self.pos += 1;
                Ok(p)
            }
            Some(_) => Err(self
                .error(
                    token.col,
                    format!("probability `{text}` is out of range (greater than 1)"),
                )
                .with_expected(expected)),
            None => Err(self
                .error(token.col, format!("`{text}` is not a probability"))
                .with_expected(expected)),
        }
    }

    /// `on|off` (also `true|false`, `yes|no`).
    fn boolean(&mut self, what: &str) -> Result<bool, ParseError> {
        let expected = format!("{what}: `on` or `off`");
        let (word, _) = self.choice(BOOLS, "switch value", &expected)?;
        Ok(matches!(word, "on" | "true" | "yes"))
    }

    // ----- Nodes and clients -----

    /// A node reference.
    fn node(&mut self) -> Result<NodeRef, ParseError> {
        let Some(token) = self.peek().filter(|t| t.kind == TokenKind::Word) else {
            return Err(self.unexpected("a node", EXPECTED_NODE));
        };
        let text = token.text;
        let col = token.col;
        match text {
            "leader" => {
                self.pos += 1;
                return Ok(NodeRef::Leader);
            }
            "follower" => {
                self.pos += 1;
                return Ok(NodeRef::Follower);
            }
            "random" => {
                self.pos += 1;
                return Ok(if self.eat_word("live") {
                    NodeRef::RandomLive
                } else {
                    NodeRef::Random
                });
            }
            "all" => {
                return Err(self
                    .error(col, "`all` is a set of nodes; one node is expected here")
                    .with_expected(EXPECTED_NODE))
            }
            _ => {}
        }
        if let Some(digits) = numbered(text, 'n') {
            return match parse_u64(digits).map(u32::try_from) {
                Ok(Ok(0)) => Err(self
                    .error(col, "nodes are numbered from 1: `n0` does not exist")
                    .with_expected(EXPECTED_NODE)
                    .with_suggestion(Some("n1".to_string()))),
                Ok(Ok(id)) => {
                    self.pos += 1;
                    Ok(NodeRef::Id(id))
                }
                _ => Err(self
                    .error(col, format!("node number `{text}` is too large"))
                    .with_expected(EXPECTED_NODE)),
            };
        }
        if self.aliases.contains(text) {
            self.pos += 1;
            return Ok(NodeRef::Alias(text.to_string()));
        }
        let candidates = NODE_WORDS
            .iter()
            .copied()
            .chain(self.aliases.iter().map(String::as_str));
        let suggestion = nearest(text, candidates);
        let message = if is_identifier(text) && !RESERVED.contains(&text) {
            format!("unknown node `{text}`: no `let {text} = ...` above this line binds it")
        } else {
            format!("`{text}` is not a node")
        };
        Err(self
            .error(col, message)
            .with_expected(EXPECTED_NODE)
            .with_suggestion(suggestion))
    }

    /// `n1,n2,leader` (spaces after commas allowed).
    fn node_list(&mut self) -> Result<Vec<NodeRef>, ParseError> {
        let mut nodes = vec![self.node()?];
        while self.eat(&TokenKind::Comma) {
            nodes.push(self.node()?);
        }
        Ok(nodes)
    }

    /// `all` or a node list.
    fn node_set(&mut self) -> Result<NodeSet, ParseError> {
        if self.eat_word("all") {
            return Ok(NodeSet::All);
        }
        self.node_list().map(NodeSet::List).map_err(|e| {
            e.with_expected(format!(
                "`all` or a comma-separated list of nodes; {EXPECTED_NODE}"
            ))
        })
    }

    /// `c1`, `c2`, ...
    fn client(&mut self) -> Result<u32, ParseError> {
        let Some(token) = self.peek().filter(|t| t.kind == TokenKind::Word) else {
            return Err(self.unexpected("a client", EXPECTED_CLIENT));
        };
        let Some(digits) = numbered(token.text, 'c') else {
            return Err(self
                .error(token.col, format!("`{}` is not a client", token.text))
                .with_expected(EXPECTED_CLIENT));
        };
        match parse_u64(digits).map(u32::try_from) {
            Ok(Ok(0)) => Err(self
                .error(
                    token.col,
                    "clients are numbered from 1: `c0` does not exist",
                )
                .with_expected(EXPECTED_CLIENT)
                .with_suggestion(Some("c1".to_string()))),
            Ok(Ok(id)) => {
                self.pos += 1;
                Ok(id)
            }
            _ => Err(self
                .error(
                    token.col,
                    format!("client number `{}` is too large", token.text),
                )
                .with_expected(EXPECTED_CLIENT)),
        }
    }

    fn role(&mut self) -> Result<Role, ParseError> {
        let (word, _) = self.choice(ROLES, "role", EXPECTED_ROLE)?;
        Ok(match word {
            "follower" => Role::Follower,
            "candidate" => Role::Candidate,
            "leader" => Role::Leader,
            _ => Role::PreCandidate,
        })
    }

    // ----- Strings, keys and values -----

    /// A double-quoted string.
    fn quoted(&mut self, what: &str, example: &str) -> Result<String, ParseError> {
        match self.peek() {
            Some(Token {
                kind: TokenKind::Str(s),
                ..
            }) => {
                self.pos += 1;
                Ok(s.clone())
            }
            Some(token) if token.kind == TokenKind::Word => Err(self
                .unexpected(
                    &format!("{what} in double quotes"),
                    &format!("a quoted string, e.g. {example}"),
                )
                .with_suggestion(Some(format!("\"{}\"", token.text)))),
            _ => Err(self.unexpected(
                &format!("{what} in double quotes"),
                &format!("a quoted string, e.g. {example}"),
            )),
        }
    }

    /// A key or value: a quoted string, or a bare word (every token up to the next whitespace;
    /// with `stop_at_eq`, up to the next `=` as well).
    fn text(&mut self, what: &str, stop_at_eq: bool) -> Result<Text, ParseError> {
        let expected = format!("{what}: a bare word or a \"quoted string\"");
        let Some(first) = self.peek() else {
            return Err(self.unexpected(what, &expected));
        };
        if let TokenKind::Str(s) = &first.kind {
            self.pos += 1;
            return Ok(Text {
                value: s.clone(),
                quoted: true,
                col: first.col,
            });
        }
        if stop_at_eq && first.kind == TokenKind::Eq {
            return Err(self.unexpected(what, &expected));
        }
        let mut end = first.end;
        self.pos += 1;
        while let Some(next) = self.peek() {
            let stops = next.spaced
                || matches!(next.kind, TokenKind::Str(_))
                || (stop_at_eq && next.kind == TokenKind::Eq);
            if stops {
                break;
            }
            end = next.end;
            self.pos += 1;
        }
        let value = self
            .line
            .raw
            .get(first.start..end)
            .unwrap_or("")
            .to_string();
        Ok(Text {
            value,
            quoted: false,
            col: first.col,
        })
    }

    /// A key, within the store's key size limit.
    fn key(&mut self, stop_at_eq: bool) -> Result<String, ParseError> {
        let text = self.text("a key", stop_at_eq)?;
        self.check_size(&text, "key", KEY_BYTES_MAX)?;
        Ok(text.value)
    }

    /// A value, within the store's value size limit.
    fn value(&mut self) -> Result<String, ParseError> {
        let text = self.text("a value", false)?;
        self.check_size(&text, "value", VALUE_BYTES_MAX)?;
        Ok(text.value)
    }

    /// A value where a bare `-` means "absent" (`"-"` quoted is the one-character value).
    fn value_or_absent(&mut self) -> Result<Option<String>, ParseError> {
        let text = self.text("a value (or `-` for absent)", false)?;
        self.check_size(&text, "value", VALUE_BYTES_MAX)?;
        Ok(if !text.quoted && text.value == "-" {
            None
        } else {
            Some(text.value)
        })
    }

    fn check_size(&self, text: &Text, what: &str, max: usize) -> Result<(), ParseError> {
        if text.value.len() > max {
            return Err(self
                .error(
                    text.col,
                    format!("{what} of {} bytes is too long", text.value.len()),
                )
                .with_expected(format!("a {what} of at most {max} bytes")));
        }
        Ok(())
    }

    /// `=` after a setting or option name.
    fn equals(&mut self, name: &str) -> Result<(), ParseError> {
        if self.eat(&TokenKind::Eq) {
            return Ok(());
        }
        Err(self.unexpected(&format!("`=` after `{name}`"), &format!("`{name}=<value>`")))
    }

    /// A setting name (`nodes`, `pre-vote`, ...): lower-case letters, digits and `-`.
    fn setting_name(
        &mut self,
        choices: &[&str],
        expected: &str,
    ) -> Result<(&'a str, u32), ParseError> {
        let Some(token) = self.peek().filter(|t| t.kind == TokenKind::Word) else {
            return Err(self.unexpected("a setting `key=value`", expected));
        };
        let valid = token
            .text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !valid {
            let lower = token.text.to_ascii_lowercase();
            return Err(self
                .error(token.col, format!("`{}` is not a setting name", token.text))
                .with_expected(expected)
                .with_suggestion(nearest(&lower, choices.iter().copied())));
        }
        self.pos += 1;
        Ok((token.text, token.col))
    }

    // ----- Commands -----

    /// The `cluster` line's settings (the verb is already consumed).
    fn cluster(&mut self) -> Result<ClusterSpec, ParseError> {
        const EXPECTED: &str = "a setting `key=value` (protocol, nodes, seed, election, \
             heartbeat, lease, pre-vote, check-quorum, lease-reads, clients, keys, workload, \
             delay, loss, dup, corrupt, sync, torn-writes, timeout, quorum, or another \
             protocol-specific key) or end of line";
        let mut spec = ClusterSpec::default();
        let mut seen: BTreeMap<&str, u32> = BTreeMap::new();
        while self.peek().is_some() {
            let (key, col) = self.setting_name(CLUSTER_KEYS, EXPECTED)?;
            if let Some(first) = seen.insert(key, col) {
                return Err(self
                    .error(
                        col,
                        format!("duplicate setting `{key}` (first set at column {first})"),
                    )
                    .with_expected("each setting at most once"));
            }
            self.equals(key)?;
            match key {
                "protocol" => {
                    let (p, _) = self.choice(PROTOCOLS, "protocol", "`raft` or `replication`")?;
                    spec.protocol = Some(if p == "raft" {
                        Protocol::Raft
                    } else {
                        Protocol::Replication
                    });
                }
                "nodes" => spec.nodes = Some(self.at_least_one("a number of nodes")?),
                "seed" => spec.seed = Some(self.number("a seed")?.0),
                "election" => spec.election_ticks = Some(self.range("election timeout ticks")?),
                "heartbeat" => spec.heartbeat_ticks = Some(self.number("heartbeat ticks")?.0),
                "lease" => spec.lease_ticks = Some(self.number("lease ticks")?.0),
                "pre-vote" => spec.pre_vote = Some(self.boolean("pre-vote")?),
                "check-quorum" => spec.check_quorum = Some(self.boolean("check-quorum")?),
                "lease-reads" => spec.lease_reads = Some(self.boolean("lease-reads")?),
                "clients" => spec.clients = Some(self.number_u32("a number of clients")?.0),
                "keys" => spec.keys = Some(self.number_u32("a number of keys")?.0),
                "workload" => spec.workload = Some(self.boolean("workload")?),
                "delay" => spec.delay_ticks = Some(self.range("message delay ticks")?),
                "loss" => spec.loss = Some(self.probability("loss")?),
                "dup" => spec.dup = Some(self.probability("dup")?),
                "corrupt" => spec.corrupt = Some(self.probability("corrupt")?),
                "sync" => spec.sync_ticks = Some(self.number("disk sync ticks")?.0),
                "torn-writes" => spec.torn_writes = Some(self.boolean("torn-writes")?),
                "timeout" => {
                    spec.client_timeout_ticks = Some(self.number("client timeout ticks")?.0)
                }
                "quorum" => spec.quorum = Some(self.at_least_one("a quorum size")?),
                _ => {
                    let text = self.text(&format!("a value for `{key}`"), false)?;
                    spec.extra.push((key.to_string(), text.value));
                }
            }
        }
        Ok(spec)
    }

    /// A `u32` of at least 1.
    fn at_least_one(&mut self, what: &str) -> Result<u32, ParseError> {
        let (n, col) = self.number_u32(what)?;
        if n == 0 {
            return Err(self
                .error(col, format!("{what} must be at least 1"))
                .with_expected(format!("{what}, at least 1")));
        }
        Ok(n)
    }

    /// One command line; `verb` is its first token's text (of kind `kind`) at `col`.
    fn command(&mut self, kind: TokenKind, verb: &str, col: u32) -> Result<Step, ParseError> {
        match kind {
            TokenKind::Word => {}
            TokenKind::RBrace => {
                self.pos = 1;
                self.end()?;
                return Ok(Step::Close);
            }
            _ => {
                return Err(self
                    .error(col, format!("expected a command, found {}", self.found()))
                    .with_expected(EXPECTED_COMMAND))
            }
        }
        self.pos = 1;
        let command = match verb {
            "run" => self.run()?,
            "advance" => Command::Advance {
                ticks: self.ticks()?,
            },
            "crash" => {
                let node = self.node()?;
                let torn = self.eat_word("torn");
                if !torn {
                    self.end_or(&["torn"])?;
                }
                Command::Crash { node, torn }
            }
            "restart" => Command::Restart(self.node()?),
            "pause" => Command::Pause(self.node()?),
            "resume" => Command::Resume(self.node()?),
            "isolate" => Command::Isolate(self.node()?),
            "partition" => self.partition()?,
            "cut" => {
                let from = self.node()?;
                if !self.eat(&TokenKind::Arrow) {
                    return Err(self.unexpected(
                        "`->` between the two nodes",
                        "`cut <node> -> <node>`, e.g. `cut n1->n2`",
                    ));
                }
                let to = self.node()?;
                Command::Cut { from, to }
            }
            "heal" => Command::Heal,
            "heal-all" => Command::Liveness {
                within_ticks: self.within()?,
            },
            "net" => self.net()?,
            "rot" => Command::Rot(self.node()?),
            "drift" => self.drift()?,
            "let" => self.let_()?,
            "repeat" => return self.repeat(),
            "client" => self.client_op()?,
            "expect" => Command::Expect(self.expectation()?),
            "mark" => Command::Mark(self.quoted("the label", "mark \"partitioned\"")?),
            "print" => self.print()?,
            "cluster" => {
                return Err(self
                    .error(col, SECOND_CLUSTER)
                    .with_expected(EXPECTED_COMMAND))
            }
            _ => {
                return Err(self
                    .error(col, format!("unknown command `{verb}`"))
                    .with_expected(EXPECTED_COMMAND)
                    .with_suggestion(nearest(verb, COMMANDS.iter().copied())))
            }
        };
        self.end()?;
        Ok(Step::Command(command))
    }

    /// `print latency c<N>` or `print "text"`.
    fn print(&mut self) -> Result<Command, ParseError> {
        const EXPECTED: &str = "`latency <client>` or a quoted string, e.g. print \"phase two\"";
        if self.eat_word("latency") {
            return Ok(Command::PrintLatency {
                client: self.client()?,
            });
        }
        if self.eat_word("stat") {
            return Ok(Command::PrintStat(self.key(false)?));
        }
        let text = self
            .quoted("`latency <client>` or text", "print \"phase two\"")
            .map_err(|e| e.with_expected(EXPECTED))?;
        Ok(Command::Print(text))
    }

    /// `run N ticks` or `run until <condition> within N ticks`.
    fn run(&mut self) -> Result<Command, ParseError> {
        if self.eat_word("until") {
            let condition = self.condition()?;
            let within_ticks = self.within()?;
            return Ok(Command::RunUntil {
                condition,
                within_ticks,
            });
        }
        // A word that does not even start like a number is more likely a misspelt `until`.
        if let Some(word) = self.peek_word() {
            if !word.starts_with(|c: char| c.is_ascii_digit()) {
                let col = self.here();
                return Err(self
                    .error(col, format!("`{word}` is not a number of ticks"))
                    .with_expected(
                        "a number of ticks (`run 100 ticks`) or `until <condition> within N ticks`",
                    )
                    .with_suggestion(nearest(word, ["until"])));
            }
        }
        let ticks = self.ticks()?;
        Ok(Command::Run { ticks })
    }

    fn condition(&mut self) -> Result<Condition, ParseError> {
        let (word, _) = self.choice(CONDITIONS, "condition", EXPECTED_CONDITION)?;
        Ok(match word {
            "leader" => {
                if self.eat_word("is") {
                    Condition::LeaderIs {
                        node: self.node()?,
                        is: true,
                    }
                } else if self.eat_word("not") {
                    Condition::LeaderIs {
                        node: self.node()?,
                        is: false,
                    }
                } else {
                    Condition::Leader
                }
            }
            "no" => {
                self.keyword("leader", &[])?;
                Condition::NoLeader
            }
            "committed" => {
                let (index, _) = self.number("a log index")?;
                self.keyword("on", &[])?;
                let (nodes, _) = self.number_u32("a number of nodes")?;
                Condition::Committed { index, nodes }
            }
            "applied" => Condition::Applied,
            "quiet" => Condition::Quiet,
            "client" => {
                let client = self.client()?;
                self.keyword("done", &[])?;
                Condition::ClientDone { client }
            }
            _ => {
                let node = self.node()?;
                let role = self.role()?;
                Condition::Role { node, role }
            }
        })
    }

    /// `partition n1,n2 | n3,n4 [| ...]`.
    fn partition(&mut self) -> Result<Command, ParseError> {
        let mut groups = vec![self.node_list()?];
        while self.eat(&TokenKind::Pipe) {
            groups.push(self.node_list()?);
        }
        if groups.len() < 2 {
            let message = if self.peek().is_none() {
                "a partition needs at least two groups separated by `|`".to_string()
            } else {
                format!("expected `|` or `,`, found {}", self.found())
            };
            return Err(self
                .error(self.here(), message)
                .with_expected("`partition <nodes> | <nodes>`, e.g. `partition n1,n2 | n3`"));
        }
        Ok(Command::Partition(groups))
    }

    /// `net loss=P dup=P corrupt=P delay=MIN..MAX` (at least one).
    fn net(&mut self) -> Result<Command, ParseError> {
        const EXPECTED: &str = "a setting: loss=P, dup=P, corrupt=P or delay=MIN..MAX";
        let mut settings = NetSettings::default();
        let mut seen: BTreeMap<&str, u32> = BTreeMap::new();
        if self.peek().is_none() {
            return Err(self.unexpected("at least one setting", EXPECTED));
        }
        while self.peek().is_some() {
            let (key, col) = self.setting_name(NET_KEYS, EXPECTED)?;
            if !NET_KEYS.contains(&key) {
                return Err(self
                    .error(col, format!("unknown network setting `{key}`"))
                    .with_expected(EXPECTED)
                    .with_suggestion(nearest(key, NET_KEYS.iter().copied())));
            }
            if let Some(first) = seen.insert(key, col) {
                return Err(self
                    .error(
                        col,
                        format!("duplicate setting `{key}` (first set at column {first})"),
                    )
                    .with_expected("each setting at most once"));
            }
            self.equals(key)?;
            match key {
                "loss" => settings.loss = Some(self.probability("loss")?),
                "dup" => settings.dup = Some(self.probability("dup")?),
                "corrupt" => settings.corrupt = Some(self.probability("corrupt")?),
                _ => settings.delay_ticks = Some(self.range("message delay ticks")?),
            }
        }
        Ok(Command::Net(settings))
    }

    /// `drift <node> <ppm> [ppm]`.
    fn drift(&mut self) -> Result<Command, ParseError> {
        let node = self.node()?;
        let expected = format!(
            "a signed drift in parts per million, from -{DRIFT_PPM_MAX} to +{DRIFT_PPM_MAX} \
             (e.g. +20000 or -5000)"
        );
        let Some(token) = self.peek().filter(|t| t.kind == TokenKind::Word) else {
            return Err(self.unexpected("a drift in ppm", &expected));
        };
        let text = token.text;
        let (negative, digits) = match text.as_bytes().first() {
            Some(b'-') => (true, text.get(1..).unwrap_or("")),
            Some(b'+') => (false, text.get(1..).unwrap_or("")),
            _ => (false, text),
        };
        let magnitude = match parse_u64(digits) {
            Ok(m) => m,
            Err(_) => {
                return Err(self
                    .error(token.col, format!("`{text}` is not a drift in ppm"))
                    .with_expected(expected))
            }
        };
        let limit = u64::from(DRIFT_PPM_MAX.unsigned_abs());
        let ppm = match i32::try_from(magnitude) {
            Ok(m) if magnitude <= limit => {
                if negative {
                    -m
                } else {
                    m
                }
            }
            _ => {
                return Err(self
                    .error(token.col, format!("drift `{text}` ppm is out of range"))
                    .with_expected(expected))
            }
        };
        self.pos += 1;
        if !self.eat_word("ppm") {
            self.end_or(&["ppm"])?;
        }
        Ok(Command::Drift { node, ppm })
    }

    /// `let <name> = <node>`.
    fn let_(&mut self) -> Result<Command, ParseError> {
        const EXPECTED: &str =
            "a name: a letter, then letters, digits, `_` or `-` (not a keyword, not like n1 or c1)";
        let Some(token) = self.peek().filter(|t| t.kind == TokenKind::Word) else {
            return Err(self.unexpected("a name to bind", EXPECTED));
        };
        let name = token.text;
        if !is_identifier(name) {
            return Err(self
                .error(token.col, format!("`{name}` is not a valid name"))
                .with_expected(EXPECTED));
        }
        if RESERVED.contains(&name) || COMMANDS.contains(&name) {
            return Err(self
                .error(
                    token.col,
                    format!("`{name}` is a keyword and cannot be a name"),
                )
                .with_expected(EXPECTED));
        }
        if numbered(name, 'n').is_some() || numbered(name, 'c').is_some() {
            return Err(self
                .error(
                    token.col,
                    format!("`{name}` looks like a node or client and cannot be a name"),
                )
                .with_expected(EXPECTED));
        }
        self.pos += 1;
        if !self.eat(&TokenKind::Eq) {
            return Err(self.unexpected("`=`", "`let <name> = <node>`, e.g. `let old = leader`"));
        }
        let node = self.node()?;
        Ok(Command::Let {
            name: name.to_string(),
            node,
        })
    }

    /// `repeat N {`.
    fn repeat(&mut self) -> Result<Step, ParseError> {
        let what = format!("an iteration count from 1 to {REPEAT_COUNT_MAX}");
        let (count, col) = self.number_u32(&what)?;
        if !(1..=REPEAT_COUNT_MAX).contains(&count) {
            return Err(self
                .error(col, format!("repeat count {count} is out of range"))
                .with_expected(what));
        }
        if !self.eat(&TokenKind::LBrace) {
            return Err(self.unexpected(
                "`{`",
                "`repeat N {` with the block's commands on the following lines",
            ));
        }
        if let Some(token) = self.peek() {
            return Err(self
                .error(token.col, format!("unexpected {} after `{{`", self.found()))
                .with_expected(
                    "end of line: the block's commands go on the following lines, \
                     and `}` alone on the last",
                ));
        }
        Ok(Step::Open(count))
    }

    /// `client c<N> <op> ... [seq=N] [to=<node>]`.
    fn client_op(&mut self) -> Result<Command, ParseError> {
        const EXPECTED_OP: &str =
            "an operation: put K V, get K, append K V, delete K, cas K EXPECTED NEW";
        let client = self.client()?;
        let (name, _) = self.choice(CLIENT_OPS, "operation", EXPECTED_OP)?;
        let op = match name {
            "put" => Op::Put {
                key: self.key(false)?,
                value: self.value()?,
            },
            "get" => Op::Get {
                key: self.key(false)?,
            },
            "append" => Op::Append {
                key: self.key(false)?,
                value: self.value()?,
            },
            "delete" => Op::Delete {
                key: self.key(false)?,
            },
            _ => Op::Cas {
                key: self.key(false)?,
                expected: self.value_or_absent()?,
                new: self.value()?,
            },
        };
        let mut seq = None;
        let mut to = None;
        while let Some(token) = self.peek() {
            match self.peek_word() {
                Some("seq") if seq.is_none() => {
                    self.pos += 1;
                    self.equals("seq")?;
                    seq = Some(self.number("a sequence number")?.0);
                }
                Some("to") if to.is_none() => {
                    self.pos += 1;
                    self.equals("to")?;
                    to = Some(self.node()?);
                }
                Some(word @ ("seq" | "to")) => {
                    return Err(self
                        .error(token.col, format!("duplicate option `{word}`"))
                        .with_expected("each option at most once"))
                }
                word => {
                    let suggestion = word.and_then(|w| nearest(w, ["seq", "to"]));
                    return Err(self
                        .error(token.col, format!("unexpected {}", self.found()))
                        .with_expected("`seq=N`, `to=<node>` or end of line")
                        .with_suggestion(suggestion));
                }
            }
        }
        Ok(Command::Client(ClientOp {
            client,
            op,
            seq,
            to,
        }))
    }

    /// The words after `expect`.
    fn expectation(&mut self) -> Result<Expectation, ParseError> {
        let (word, _) = self.choice(EXPECTATIONS, "expectation", EXPECTED_EXPECTATION)?;
        Ok(match word {
            "leader" => Expectation::LeaderIs(self.node()?),
            "leaders" => {
                let cmp = self.cmp();
                let (n, _) = self
                    .number_u32("a number of leaders")
                    .map_err(|e| e.with_expected(EXPECTED_CMP))?;
                Expectation::LeaderCount(cmp, n)
            }
            "no" => {
                self.keyword("leader", &[])?;
                self.keyword("among", &[])?;
                Expectation::NoLeaderAmong(self.node_set()?)
            }
            "term" => {
                let node = self.node()?;
                let cmp = self.cmp();
                let (n, _) = self
                    .number("a term")
                    .map_err(|e| e.with_expected(EXPECTED_CMP))?;
                Expectation::Term(node, cmp, n)
            }
            "role" => {
                let node = self.node()?;
                Expectation::Role(node, self.role()?)
            }
            "vote" => {
                let node = self.node()?;
                if !(self.eat(&TokenKind::Eq) || self.eat(&TokenKind::EqEq)) {
                    return Err(self.unexpected(
                        "`=` after the node",
                        "`expect vote <node> = <node>` or `expect vote <node> = none`",
                    ));
                }
                let voted_for = if self.eat_word("none") {
                    None
                } else {
                    Some(
                        self.node()
                            .map_err(|e| e.with_expected(format!("`none` or {EXPECTED_NODE}")))?,
                    )
                };
                Expectation::Vote(node, voted_for)
            }
            "value" => {
                let key = self.key(true)?;
                if !self.eat(&TokenKind::Eq) {
                    return Err(
                        self.unexpected("`=` after the key", "`expect value K=V on <nodes>`")
                    );
                }
                let value = self.value_or_absent()?;
                self.keyword("on", &[])?;
                Expectation::Value {
                    key,
                    value,
                    nodes: self.node_set()?,
                }
            }
            "committed" => self.expect_committed(true)?,
            "not" => {
                let (word, _) = self.choice(
                    &["committed", "linearizable"],
                    "negated expectation",
                    "`not committed <index> on <k>` or `not linearizable`",
                )?;
                if word == "committed" {
                    self.expect_committed(false)?
                } else {
                    Expectation::Linearizable(false)
                }
            }
            "reply" => {
                let client = self.client()?;
                Expectation::Reply {
                    client,
                    kind: self.reply_kind()?,
                }
            }
            "messages" => self.expect_messages()?,
            "applied" => {
                let client = self.client()?;
                self.keyword("seq", &[])?;
                self.equals("seq")?;
                let (seq, _) = self.number("a sequence number")?;
                let cmp = self.cmp();
                let (times, _) = self
                    .number("a number of applications")
                    .map_err(|e| e.with_expected(EXPECTED_CMP))?;
                Expectation::AppliedTimes {
                    client,
                    seq,
                    cmp,
                    times,
                }
            }
            "linearizable" => Expectation::Linearizable(true),
            "checkers" => {
                self.keyword("ok", &[])?;
                Expectation::CheckersOk
            }
            "note" => {
                let node = if matches!(self.peek_kind(), Some(TokenKind::Str(_))) {
                    None
                } else {
                    Some(self.node()?)
                };
                let text = self.quoted("the note's text", "expect note \"2/2 followers\"")?;
                Expectation::Note { node, text }
            }
            "stat" => {
                let name = self.key(false)?;
                let cmp = self.cmp();
                let (value, _) = self
                    .number("a counter value")
                    .map_err(|e| e.with_expected(EXPECTED_CMP))?;
                Expectation::Stat { name, cmp, value }
            }
            _ => Expectation::Converged,
        })
    }

    fn expect_committed(&mut self, yes: bool) -> Result<Expectation, ParseError> {
        let (index, _) = self.number("a log index")?;
        self.keyword("on", &[])?;
        let (nodes, _) = self.number_u32("a number of nodes")?;
        Ok(Expectation::Committed { index, nodes, yes })
    }

    fn reply_kind(&mut self) -> Result<ReplyKind, ParseError> {
        const EXPECTED: &str = "a reply kind: ok [value=V|value=-], duplicate, gap, \
             not-leader [hint=<node>|hint=none], session-expired, overloaded, none";
        let (word, _) = self.choice(REPLY_KINDS, "reply kind", EXPECTED)?;
        Ok(match word {
            "ok" => {
                let value = if self.eat_word("value") {
                    self.equals("value")?;
                    Some(self.value_or_absent()?)
                } else {
                    self.end_or(&["value=V"])?;
                    None
                };
                ReplyKind::Ok { value }
            }
            "duplicate" => ReplyKind::Duplicate,
            "gap" => ReplyKind::Gap,
            "not-leader" => {
                let hint = if self.eat_word("hint") {
                    self.equals("hint")?;
                    if self.eat_word("none") {
                        Some(None)
                    } else {
                        Some(Some(self.node()?))
                    }
                } else {
                    self.end_or(&["hint=<node>", "hint=none"])?;
                    None
                };
                ReplyKind::NotLeader { hint }
            }
            "session-expired" => ReplyKind::SessionExpired,
            "overloaded" => ReplyKind::Overloaded,
            _ => ReplyKind::Nothing,
        })
    }

    /// `messages <Type> [cmp] N [since "<mark>"]`.
    fn expect_messages(&mut self) -> Result<Expectation, ParseError> {
        const EXPECTED: &str = "a message type such as AppendEntries, RequestVote or Vote";
        let Some(token) = self.peek().filter(|t| t.kind == TokenKind::Word) else {
            return Err(self.unexpected("a message type", EXPECTED));
        };
        if !is_identifier(token.text) {
            return Err(self
                .error(token.col, format!("`{}` is not a message type", token.text))
                .with_expected(EXPECTED));
        }
        let kind = token.text.to_string();
        self.pos += 1;
        let cmp = self.cmp();
        let (count, _) = self
            .number("a number of messages")
            .map_err(|e| e.with_expected(EXPECTED_CMP))?;
        let since = if self.eat_word("since") {
            Some(self.quoted("a mark's label", "since \"partitioned\"")?)
        } else {
            self.end_or(&["since"])?;
            None
        };
        Ok(Expectation::Messages {
            kind,
            cmp,
            count,
            since,
        })
    }
}

// ----- Pure helpers -----

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NumberError {
    /// Not digits (with `_` separators).
    Invalid,
    /// Does not fit in a `u64`.
    Overflow,
}

/// Parses `20_000`-style decimal numbers: digits, `_` only between digits.
fn parse_u64(text: &str) -> Result<u64, NumberError> {
    let bytes = text.as_bytes();
    let starts_and_ends_with_digit = bytes.first().is_some_and(u8::is_ascii_digit)
        && bytes.last().is_some_and(u8::is_ascii_digit);
    if !starts_and_ends_with_digit || !bytes.iter().all(|b| b.is_ascii_digit() || *b == b'_') {
        return Err(NumberError::Invalid);
    }
    let mut n: u64 = 0;
    for b in bytes.iter().filter(|b| b.is_ascii_digit()) {
        n = n
            .checked_mul(10)
            .and_then(|n| n.checked_add(u64::from(b - b'0')))
            .ok_or(NumberError::Overflow)?;
    }
    Ok(n)
}

/// `n12` → `Some("12")` for `prefix = 'n'`: the prefix then only ASCII digits.
fn numbered(text: &str, prefix: char) -> Option<&str> {
    text.strip_prefix(prefix)
        .filter(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
}

/// A letter, then letters, digits, `_` or `-` (ASCII).
fn is_identifier(text: &str) -> bool {
    let mut chars = text.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Levenshtein distance over characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        current[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

/// The candidate nearest to `word` by edit distance (ignoring case), if it is close enough:
/// at most 2 edits or a third of the word's length, and fewer edits than the word has
/// characters. Ties go to the earlier candidate.
fn nearest<'c>(word: &str, candidates: impl IntoIterator<Item = &'c str>) -> Option<String> {
    // Suggestions are for typos; a very long word is not one, and bounds the work.
    const WORD_CHARS_MAX: usize = 64;
    let length = word.chars().count();
    if length == 0 || length > WORD_CHARS_MAX {
        return None;
    }
    let lower = word.to_lowercase();
    let limit = (length / 3).max(2);
    let mut best: Option<(usize, &str)> = None;
    for candidate in candidates {
        let distance = edit_distance(&lower, candidate);
        if distance <= limit && distance < length && best.is_none_or(|(d, _)| distance < d) {
            best = Some((distance, candidate));
        }
    }
    best.map(|(_, c)| c.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ok(source: &str) -> Script {
        match parse("test.scn", source) {
            Ok(script) => script,
            Err(e) => panic!("unexpected parse error:\n{e}"),
        }
    }

    fn err(source: &str) -> ParseError {
        match parse("test.scn", source) {
            Ok(script) => panic!("expected an error, parsed {script:?}"),
            Err(e) => e,
        }
    }

    /// The single command of `cluster` + `line`.
    fn one(line: &str) -> Command {
        let script = ok(&format!("cluster\n{line}\n"));
        assert_eq!(script.commands.len(), 1, "{line}");
        script
            .commands
            .into_iter()
            .next()
            .map(|c| c.command)
            .unwrap()
    }

    fn expect(line: &str) -> Expectation {
        match one(line) {
            Command::Expect(e) => e,
            other => panic!("not an expectation: {other:?}"),
        }
    }

    fn at(line: u32, col: u32) -> Span {
        Span { line, col }
    }

    const FULL: &str = r#"# Goal: a partitioned leader is fenced; its writes are not lost.
#
# Method: partition the leader into the minority, write on both sides,
# heal, and check that the majority's history wins.

cluster protocol=raft nodes=5 seed=42 election=150..300 heartbeat=50 lease=100 pre-vote=on check-quorum=yes lease-reads=off clients=2 keys=4 workload=off delay=1..3 loss=0.05 dup=0 corrupt=0.001 sync=2 torn-writes=on timeout=20_000 quorum=3 keepalive=7

run until leader within 2_000 ticks   # first election
let old = leader
expect leader old
expect leaders >= 1
expect term old > 0
expect role old leader
client c1 put x 1 seq=1 to=old
client c2 put "a key" "a # value \"q\""
client c1 get x
client c1 append x ,2
client c1 delete gone to=n2
client c1 cas x - "v 1"
client c1 cas x 1 2 seq=7
run 100 ticks
mark "partitioned"
partition old | follower, n5
partition n1,n2|n3,n4|n5
cut n1->n2
cut n2 -> random live
isolate random
net loss=0.5 delay=5..10
drift n3 +20000 ppm
drift n4 -5000
repeat 3 {
    crash follower torn
    run 1 tick
    repeat 2 {
        restart n2
        run until role n2 follower within 500 ticks
    }
    pause n4
    resume n4
}
rot n1
crash n3
heal
run until leader not old within 1000 ticks
run until leader is n1 within 10 ticks
run until no leader within 10 ticks
run until committed 7 on 3 within 400 ticks
run until applied within 10 ticks
run until quiet within 10 ticks
run until client c1 done within 10 ticks
run until role old pre-candidate within 10 ticks
expect no leader among n1, old
expect vote old = old
expect vote n3 == none
expect value x=1,2 on all
expect value "a key" = "a # value \"q\"" on n1,n2
expect value gone=- on leader
expect committed 7 on 3
expect not committed 9 on 5
expect reply c1 ok value=1
expect reply c1 ok value=-
expect reply c2 ok
expect reply c1 duplicate
expect reply c1 gap
expect reply c1 not-leader hint=n2
expect reply c1 not-leader hint=none
expect reply c2 not-leader
expect reply c1 session-expired
expect reply c1 overloaded
expect reply c2 none
expect messages AppendEntries < 100 since "partitioned"
expect messages RequestVote 0
expect applied c1 seq=1 = 1
expect applied c1 seq=7 <= 1
expect linearizable
expect not linearizable
expect checkers ok
expect converged
print latency c1
print "done # not a comment"
heal-all within 5_000 ticks
"#;

    #[test]
    fn full_script_parses_to_the_expected_tree() {
        let script = ok(FULL);
        assert_eq!(script.file, "test.scn");
        assert_eq!(
            script.header,
            [
                "Goal: a partitioned leader is fenced; its writes are not lost.",
                "",
                "Method: partition the leader into the minority, write on both sides,",
                "heal, and check that the majority's history wins.",
            ]
        );
        assert_eq!(script.cluster_span, at(6, 1));
        assert_eq!(
            script.cluster,
            ClusterSpec {
                protocol: Some(Protocol::Raft),
                nodes: Some(5),
                seed: Some(42),
                election_ticks: Some((150, 300)),
                heartbeat_ticks: Some(50),
                lease_ticks: Some(100),
                pre_vote: Some(true),
                check_quorum: Some(true),
                lease_reads: Some(false),
                clients: Some(2),
                keys: Some(4),
                workload: Some(false),
                delay_ticks: Some((1, 3)),
                loss: Some(0.05),
                dup: Some(0.0),
                corrupt: Some(0.001),
                sync_ticks: Some(2),
                torn_writes: Some(true),
                client_timeout_ticks: Some(20_000),
                quorum: Some(3),
                extra: vec![("keepalive".to_string(), "7".to_string())],
            }
        );

        let c = &script.commands;
        let old = || NodeRef::Alias("old".to_string());
        assert_eq!(c[0].span, at(8, 1));
        assert_eq!(c[0].text, "run until leader within 2_000 ticks");
        assert_eq!(
            c[0].command,
            Command::RunUntil {
                condition: Condition::Leader,
                within_ticks: 2000
            }
        );
        assert_eq!(
            c[1].command,
            Command::Let {
                name: "old".into(),
                node: NodeRef::Leader
            }
        );
        assert_eq!(c[2].command, Command::Expect(Expectation::LeaderIs(old())));
        assert_eq!(
            c[3].command,
            Command::Expect(Expectation::LeaderCount(Cmp::Ge, 1))
        );
        assert_eq!(
            c[4].command,
            Command::Expect(Expectation::Term(old(), Cmp::Gt, 0))
        );
        assert_eq!(
            c[5].command,
            Command::Expect(Expectation::Role(old(), Role::Leader))
        );
        assert_eq!(
            c[6].command,
            Command::Client(ClientOp {
                client: 1,
                op: Op::Put {
                    key: "x".into(),
                    value: "1".into()
                },
                seq: Some(1),
                to: Some(old()),
            })
        );
        assert_eq!(
            c[7].command,
            Command::Client(ClientOp {
                client: 2,
                op: Op::Put {
                    key: "a key".into(),
                    value: "a # value \"q\"".into()
                },
                seq: None,
                to: None,
            })
        );
        assert_eq!(c[7].text, r#"client c2 put "a key" "a # value \"q\"""#);
        let op = |i: usize| match &c[i].command {
            Command::Client(op) => op.clone(),
            other => panic!("{other:?}"),
        };
        assert_eq!(op(8).op, Op::Get { key: "x".into() });
        assert_eq!(
            op(9).op,
            Op::Append {
                key: "x".into(),
                value: ",2".into()
            }
        );
        assert_eq!(op(10).op, Op::Delete { key: "gone".into() });
        assert_eq!(op(10).to, Some(NodeRef::Id(2)));
        assert_eq!(
            op(11).op,
            Op::Cas {
                key: "x".into(),
                expected: None,
                new: "v 1".into()
            }
        );
        assert_eq!(
            op(12).op,
            Op::Cas {
                key: "x".into(),
                expected: Some("1".into()),
                new: "2".into()
            }
        );
        assert_eq!(op(12).seq, Some(7));
        assert_eq!(c[13].command, Command::Run { ticks: 100 });
        assert_eq!(c[14].command, Command::Mark("partitioned".into()));
        assert_eq!(
            c[15].command,
            Command::Partition(vec![vec![old()], vec![NodeRef::Follower, NodeRef::Id(5)]])
        );
        assert_eq!(
            c[16].command,
            Command::Partition(vec![
                vec![NodeRef::Id(1), NodeRef::Id(2)],
                vec![NodeRef::Id(3), NodeRef::Id(4)],
                vec![NodeRef::Id(5)],
            ])
        );
        assert_eq!(
            c[17].command,
            Command::Cut {
                from: NodeRef::Id(1),
                to: NodeRef::Id(2)
            }
        );
        assert_eq!(
            c[18].command,
            Command::Cut {
                from: NodeRef::Id(2),
                to: NodeRef::RandomLive
            }
        );
        assert_eq!(c[19].command, Command::Isolate(NodeRef::Random));
        assert_eq!(
            c[20].command,
            Command::Net(NetSettings {
                loss: Some(0.5),
                dup: None,
                corrupt: None,
                delay_ticks: Some((5, 10)),
            })
        );
        assert_eq!(
            c[21].command,
            Command::Drift {
                node: NodeRef::Id(3),
                ppm: 20_000
            }
        );
        assert_eq!(
            c[22].command,
            Command::Drift {
                node: NodeRef::Id(4),
                ppm: -5000
            }
        );

        // The nested repeat.
        assert_eq!(c[23].span, at(31, 1));
        assert_eq!(c[23].text, "repeat 3 {");
        let Command::Repeat { count: 3, body } = &c[23].command else {
            panic!("{:?}", c[23].command)
        };
        assert_eq!(body.len(), 5);
        assert_eq!(body[0].span, at(32, 5));
        assert_eq!(
            body[0].command,
            Command::Crash {
                node: NodeRef::Follower,
                torn: true
            }
        );
        assert_eq!(body[1].command, Command::Run { ticks: 1 });
        let Command::Repeat {
            count: 2,
            body: inner,
        } = &body[2].command
        else {
            panic!("{:?}", body[2].command)
        };
        assert_eq!(body[2].span, at(34, 5));
        assert_eq!(
            inner.as_slice(),
            [
                Spanned {
                    span: at(35, 9),
                    text: "restart n2".into(),
                    command: Command::Restart(NodeRef::Id(2)),
                },
                Spanned {
                    span: at(36, 9),
                    text: "run until role n2 follower within 500 ticks".into(),
                    command: Command::RunUntil {
                        condition: Condition::Role {
                            node: NodeRef::Id(2),
                            role: Role::Follower
                        },
                        within_ticks: 500
                    },
                },
            ]
        );
        assert_eq!(body[3].command, Command::Pause(NodeRef::Id(4)));
        assert_eq!(body[4].command, Command::Resume(NodeRef::Id(4)));

        assert_eq!(c[24].command, Command::Rot(NodeRef::Id(1)));
        assert_eq!(c[24].span, at(41, 1));
        assert_eq!(
            c[25].command,
            Command::Crash {
                node: NodeRef::Id(3),
                torn: false
            }
        );
        assert_eq!(c[26].command, Command::Heal);
        let until = |i: usize| match &c[i].command {
            Command::RunUntil { condition, .. } => condition.clone(),
            other => panic!("{other:?}"),
        };
        assert_eq!(
            until(27),
            Condition::LeaderIs {
                node: old(),
                is: false
            }
        );
        assert_eq!(
            until(28),
            Condition::LeaderIs {
                node: NodeRef::Id(1),
                is: true
            }
        );
        assert_eq!(until(29), Condition::NoLeader);
        assert_eq!(until(30), Condition::Committed { index: 7, nodes: 3 });
        assert_eq!(until(31), Condition::Applied);
        assert_eq!(until(32), Condition::Quiet);
        assert_eq!(until(33), Condition::ClientDone { client: 1 });
        assert_eq!(
            until(34),
            Condition::Role {
                node: old(),
                role: Role::PreCandidate
            }
        );

        let expects: Vec<Expectation> = c[35..]
            .iter()
            .filter_map(|s| match &s.command {
                Command::Expect(e) => Some(e.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(
            expects,
            vec![
                Expectation::NoLeaderAmong(NodeSet::List(vec![NodeRef::Id(1), old()])),
                Expectation::Vote(old(), Some(old())),
                Expectation::Vote(NodeRef::Id(3), None),
                Expectation::Value {
                    key: "x".into(),
                    value: Some("1,2".into()),
                    nodes: NodeSet::All
                },
                Expectation::Value {
                    key: "a key".into(),
                    value: Some("a # value \"q\"".into()),
                    nodes: NodeSet::List(vec![NodeRef::Id(1), NodeRef::Id(2)])
                },
                Expectation::Value {
                    key: "gone".into(),
                    value: None,
                    nodes: NodeSet::List(vec![NodeRef::Leader])
                },
                Expectation::Committed {
                    index: 7,
                    nodes: 3,
                    yes: true
                },
                Expectation::Committed {
                    index: 9,
                    nodes: 5,
                    yes: false
                },
                Expectation::Reply {
                    client: 1,
                    kind: ReplyKind::Ok {
                        value: Some(Some("1".into()))
                    }
                },
                Expectation::Reply {
                    client: 1,
                    kind: ReplyKind::Ok { value: Some(None) }
                },
                Expectation::Reply {
                    client: 2,
                    kind: ReplyKind::Ok { value: None }
                },
                Expectation::Reply {
                    client: 1,
                    kind: ReplyKind::Duplicate
                },
                Expectation::Reply {
                    client: 1,
                    kind: ReplyKind::Gap
                },
                Expectation::Reply {
                    client: 1,
                    kind: ReplyKind::NotLeader {
                        hint: Some(Some(NodeRef::Id(2)))
                    }
                },
                Expectation::Reply {
                    client: 1,
                    kind: ReplyKind::NotLeader { hint: Some(None) }
                },
                Expectation::Reply {
                    client: 2,
                    kind: ReplyKind::NotLeader { hint: None }
                },
                Expectation::Reply {
                    client: 1,
                    kind: ReplyKind::SessionExpired
                },
                Expectation::Reply {
                    client: 1,
                    kind: ReplyKind::Overloaded
                },
                Expectation::Reply {
                    client: 2,
                    kind: ReplyKind::Nothing
                },
                Expectation::Messages {
                    kind: "AppendEntries".into(),
                    cmp: Cmp::Lt,
                    count: 100,
                    since: Some("partitioned".into())
                },
                Expectation::Messages {
                    kind: "RequestVote".into(),
                    cmp: Cmp::Eq,
                    count: 0,
                    since: None
                },
                Expectation::AppliedTimes {
                    client: 1,
                    seq: 1,
                    cmp: Cmp::Eq,
                    times: 1
                },
                Expectation::AppliedTimes {
                    client: 1,
                    seq: 7,
                    cmp: Cmp::Le,
                    times: 1
                },
                Expectation::Linearizable(true),
                Expectation::Linearizable(false),
                Expectation::CheckersOk,
                Expectation::Converged,
            ]
        );
        let tail: Vec<&Command> = c.iter().rev().take(3).map(|s| &s.command).collect();
        assert_eq!(
            tail,
            [
                &Command::Liveness { within_ticks: 5000 },
                &Command::Print("done # not a comment".into()),
                &Command::PrintLatency { client: 1 },
            ]
        );
        assert_eq!(c.len(), 35 + expects.len() + 3);
    }

    #[test]
    fn header_is_the_leading_comment_block() {
        let script =
            ok("\n\n#   indented\n#no space\n\n# after blank\n\ncluster\n# not header\nheal\n");
        assert_eq!(script.header, ["  indented", "no space", "", "after blank"]);
        assert_eq!(script.cluster_span, at(8, 1));
        assert_eq!(script.commands[0].span, at(10, 1));
        let script = ok("cluster nodes=3 # comment\n");
        assert!(script.header.is_empty());
        assert!(script.commands.is_empty());
    }

    #[test]
    fn spellings_the_language_accepts() {
        assert_eq!(one("run 5 tick"), Command::Run { ticks: 5 });
        assert_eq!(
            one("run 1_000_000 ticks"),
            Command::Run { ticks: 1_000_000 }
        );
        assert_eq!(
            one("cut n1 ->n3"),
            Command::Cut {
                from: NodeRef::Id(1),
                to: NodeRef::Id(3)
            }
        );
        assert_eq!(
            one("partition n1 , n2 |n3"),
            Command::Partition(vec![
                vec![NodeRef::Id(1), NodeRef::Id(2)],
                vec![NodeRef::Id(3)]
            ])
        );
        assert_eq!(
            one("drift n1 250"),
            Command::Drift {
                node: NodeRef::Id(1),
                ppm: 250
            }
        );
        assert_eq!(
            expect("expect leaders 1"),
            Expectation::LeaderCount(Cmp::Eq, 1)
        );
        assert_eq!(
            expect("expect leaders == 1"),
            Expectation::LeaderCount(Cmp::Eq, 1)
        );
        assert_eq!(
            expect("expect leaders != 2"),
            Expectation::LeaderCount(Cmp::Ne, 2)
        );
        assert_eq!(
            expect("expect term n2 <2"),
            Expectation::Term(NodeRef::Id(2), Cmp::Lt, 2)
        );
        assert_eq!(
            expect("expect role n1 precandidate"),
            Expectation::Role(NodeRef::Id(1), Role::PreCandidate)
        );
        assert_eq!(
            expect("expect role n1 candidate"),
            Expectation::Role(NodeRef::Id(1), Role::Candidate)
        );
        assert_eq!(
            expect(r#"expect value "-"=- on all"#),
            Expectation::Value {
                key: "-".into(),
                value: None,
                nodes: NodeSet::All
            }
        );
        assert_eq!(
            expect(r#"expect value k="-" on all"#),
            Expectation::Value {
                key: "k".into(),
                value: Some("-".into()),
                nodes: NodeSet::All
            }
        );
        assert_eq!(
            expect(r#"expect reply c3 ok value="a b""#),
            Expectation::Reply {
                client: 3,
                kind: ReplyKind::Ok {
                    value: Some(Some("a b".into()))
                }
            }
        );
        assert_eq!(
            expect("expect applied c1 seq=2 3"),
            Expectation::AppliedTimes {
                client: 1,
                seq: 2,
                cmp: Cmp::Eq,
                times: 3
            }
        );
        // Bare values keep every non-space character, punctuation included.
        assert_eq!(
            one("client c1 put k=v a->b|c{d}"),
            Command::Client(ClientOp {
                client: 1,
                op: Op::Put {
                    key: "k=v".into(),
                    value: "a->b|c{d}".into()
                },
                seq: None,
                to: None
            })
        );
        let script = ok("cluster\nlet a-b_2 = random live\nlet a-b_2 = a-b_2\ncrash a-b_2\n");
        assert_eq!(
            script.commands[2].command,
            Command::Crash {
                node: NodeRef::Alias("a-b_2".into()),
                torn: false
            }
        );
        let spec = ok(concat!(
            "cluster workload=true torn-writes=no pre-vote=false ",
            "protocol=replication nodes=1 x=\"a b\"\n"
        ))
        .cluster;
        assert_eq!(spec.workload, Some(true));
        assert_eq!(spec.torn_writes, Some(false));
        assert_eq!(spec.pre_vote, Some(false));
        assert_eq!(spec.protocol, Some(Protocol::Replication));
        assert_eq!(spec.extra, [("x".to_string(), "a b".to_string())]);
        let script = ok("cluster\r\nrepeat 1 {\r\n}\r\nrepeat 1_000_000 {\n}");
        assert_eq!(script.commands.len(), 2);
    }

    /// Asserts the error's position, message fragment and expected-text fragment.
    #[track_caller]
    fn assert_error(
        source: &str,
        line: u32,
        col: u32,
        message: &str,
        expected: &str,
    ) -> ParseError {
        let e = err(source);
        assert_eq!((e.line, e.col), (line, col), "position of: {e}");
        assert!(e.message.contains(message), "message of: {e}");
        let got = e.expected.clone().unwrap_or_default();
        assert!(got.contains(expected), "expected-text of: {e}");
        assert_eq!(e.file, "test.scn");
        e
    }

    #[test]
    fn unknown_command_suggests_the_nearest() {
        let e = assert_error(
            "# header\ncluster\n\ncrsh n1\n",
            4,
            1,
            "unknown command `crsh`",
            "a command (run, crash",
        );
        assert_eq!(e.suggestion.as_deref(), Some("crash"));
        assert_eq!(e.source_line, "crsh n1");
        assert_eq!(
            e.to_string(),
            "test.scn:4:1: error: unknown command `crsh`\n   \
             4 | crsh n1\n     \
             | ^\n  \
             expected: a command (run, crash, restart, pause, resume, isolate, partition, cut, \
             heal, heal-all, net, rot, drift, let, repeat, client, expect, mark, print)\n  \
             help: did you mean `crash`?"
        );
        for (typo, fix) in [
            ("expct", "expect"),
            ("parition", "partition"),
            ("Crash", "crash"),
            ("heal-al", "heal-all"),
            ("restrat", "restart"),
        ] {
            let e = err(&format!("cluster\n  {typo} n1\n"));
            assert_eq!((e.line, e.col), (2, 3));
            assert_eq!(e.suggestion.as_deref(), Some(fix), "{typo}");
        }
        let e = err("cluster\nxyzzy\n");
        assert_eq!(e.suggestion, None);
    }

    #[test]
    fn keyword_typos_suggest_the_nearest() {
        let cases = [
            ("expect leadr n1", 8, "leader"),
            ("expect linearizabel", 8, "linearizable"),
            ("expect not comitted 1 on 1", 12, "committed"),
            ("run until leadr within 5 ticks", 11, "leader"),
            ("run until quite within 5 ticks", 11, "quiet"),
            ("run untl leader within 5 ticks", 5, "until"),
            ("run 5 tiks", 7, "ticks"),
            ("run until leader withn 5 ticks", 18, "within"),
            ("crash leadr", 7, "leader"),
            ("expect role n1 folower", 16, "follower"),
            ("expect reply c1 duplicat", 17, "duplicate"),
            ("client c1 pt k v", 11, "put"),
            ("client c1 put k v sq=1", 19, "seq"),
            ("crash n1 tron", 10, "torn"),
            ("net los=0.1", 5, "loss"),
        ];
        for (line, col, fix) in cases {
            let e = err(&format!("cluster\n{line}\n"));
            assert_eq!((e.line, e.col), (2, col), "{line}: {e}");
            assert_eq!(e.suggestion.as_deref(), Some(fix), "{line}: {e}");
            assert!(e.expected.is_some(), "{line}");
        }
        // Unknown settings are protocol-specific extras for the interpreter, not errors.
        let extra = ok("cluster protocl=raft\n").cluster.extra;
        assert_eq!(extra, [("protocl".to_string(), "raft".to_string())]);
        let e = err("cluster protocol=rafft\n");
        assert_eq!((e.col, e.suggestion.as_deref()), (18, Some("raft")));
    }

    #[test]
    fn cluster_must_come_first_and_once() {
        assert_error(
            "# only a header\nrun 5 ticks\n",
            2,
            1,
            "the first command must be `cluster`, found `run`",
            "`cluster`",
        );
        let e = assert_error(
            "clustr nodes=3\n",
            1,
            1,
            "the first command must be `cluster`",
            "cluster nodes=3",
        );
        assert_eq!(e.suggestion.as_deref(), Some("cluster"));
        assert_error("", 1, 1, "missing `cluster` line", "`cluster`");
        let e = assert_error("# a\n# b\n", 3, 1, "missing `cluster` line", "`cluster`");
        assert_eq!(e.source_line, "");
        assert_error(
            "cluster\nheal\n  cluster nodes=3\n",
            3,
            3,
            "a second `cluster` line",
            "a command",
        );
        assert_error(
            "cluster\n= 3\n",
            2,
            1,
            "expected a command, found `=`",
            "a command",
        );
    }

    #[test]
    fn bad_numbers() {
        assert_error(
            "cluster\nrun 1x ticks\n",
            2,
            5,
            "`1x` is not a number",
            "ticks",
        );
        assert_error(
            "cluster\nrun 99999999999999999999 ticks\n",
            2,
            5,
            "too large",
            "a number of ticks",
        );
        assert_error("cluster\nrun 1__ ticks\n", 2, 5, "not a number", "20_000");
        assert_error(
            "cluster\nrun _1 ticks\n",
            2,
            5,
            "`_1` is not a number of ticks",
            "run 100 ticks",
        );
        assert_error(
            "cluster nodes=4294967296\n",
            1,
            15,
            "too large",
            "at most 4294967295",
        );
        assert_error("cluster nodes=0\n", 1, 15, "at least 1", "at least 1");
        assert_error(
            "cluster\nrun ticks\n",
            2,
            5,
            "`ticks` is not a number of ticks",
            "run 100 ticks",
        );
        assert_error(
            "cluster\nrun 5\n",
            2,
            6,
            "expected `ticks`, found end of line",
            "`ticks`",
        );
        assert_error(
            "cluster\nexpect leaders >=\n",
            2,
            18,
            "expected a number of leaders",
            "a comparison",
        );
        assert_error(
            "cluster\ndrift n1 +100001\n",
            2,
            10,
            "out of range",
            "-100000 to +100000",
        );
        assert_error(
            "cluster\ndrift n1 --5\n",
            2,
            10,
            "not a drift",
            "parts per million",
        );
        assert_error(
            "cluster\nrepeat 0 {\n}\n",
            2,
            8,
            "out of range",
            "from 1 to 1000000",
        );
        assert_error(
            "cluster\nrepeat 1_000_001 {\n}\n",
            2,
            8,
            "out of range",
            "from 1 to 1000000",
        );
    }

    #[test]
    fn node_and_client_numbers_start_at_one() {
        let e = assert_error(
            "cluster\ncrash n0\n",
            2,
            7,
            "`n0` does not exist",
            "a node: n1",
        );
        assert_eq!(e.suggestion.as_deref(), Some("n1"));
        assert_error(
            "cluster\npartition n1,n0 | n2\n",
            2,
            14,
            "`n0` does not exist",
            "a node",
        );
        let e = assert_error(
            "cluster\nclient c0 get k\n",
            2,
            8,
            "`c0` does not exist",
            "c1, c2",
        );
        assert_eq!(e.suggestion.as_deref(), Some("c1"));
        assert_error("cluster\ncrash n99999999999\n", 2, 7, "too large", "a node");
        assert_error(
            "cluster\nprint latency n1\n",
            2,
            15,
            "`n1` is not a client",
            "c1",
        );
        assert_error(
            "cluster\ncrash all\n",
            2,
            7,
            "`all` is a set of nodes",
            "a node",
        );
        assert_error(
            "cluster\ncrash\n",
            2,
            6,
            "expected a node, found end of line",
            "a node",
        );
    }

    #[test]
    fn repeat_blocks_must_balance() {
        let e = assert_error(
            "cluster\nrepeat 2 {\n  run 1 ticks\n  repeat 3 {\n  }\n",
            2,
            1,
            "unclosed `repeat` block",
            "`}` alone",
        );
        assert_eq!(e.source_line, "repeat 2 {");
        assert_error(
            "cluster\nrun 1 ticks\n}\n",
            3,
            1,
            "`}` without an open `repeat` block",
            "a command",
        );
        assert_error(
            "cluster\nrepeat 2 {\n} x\n",
            3,
            3,
            "unexpected `x`",
            "end of line",
        );
        assert_error("cluster\nrepeat 2\n", 2, 9, "expected `{`", "repeat N {");
        assert_error(
            "cluster\nrepeat 2 { heal }\n",
            2,
            12,
            "after `{`",
            "following lines",
        );
        let mut deep = String::from("cluster\n");
        for _ in 0..REPEAT_DEPTH_MAX {
            deep.push_str("repeat 2 {\n");
        }
        deep.push_str("heal\n");
        for _ in 0..REPEAT_DEPTH_MAX {
            deep.push_str("}\n");
        }
        assert_eq!(ok(&deep).commands.len(), 1);
        let deeper = deep.replacen("heal\n", "repeat 2 {\nheal\n}\n", 1);
        assert_error(&deeper, 10, 1, "nest too deep", "other than `repeat`");
    }

    #[test]
    fn aliases_must_be_bound_above() {
        let e = assert_error(
            "cluster\ncrash old\nlet old = leader\n",
            2,
            7,
            "unknown node `old`: no `let old = ...` above this line",
            "a name bound by `let`",
        );
        assert_eq!(e.suggestion, None);
        let e = err("cluster\nlet old = leader\nrestart odl\n");
        assert_eq!(
            (e.line, e.col, e.suggestion.as_deref()),
            (3, 9, Some("old"))
        );
        let e = err("cluster\nrestart leadr\n");
        assert_eq!(e.suggestion.as_deref(), Some("leader"));
        // A binding inside a block counts for the text below it.
        let script = ok("cluster\nrepeat 2 {\nlet x = random\n}\ncrash x\n");
        assert_eq!(script.commands.len(), 2);
        assert_error("cluster\nlet leader = n1\n", 2, 5, "is a keyword", "a name");
        assert_error(
            "cluster\nlet n4 = n1\n",
            2,
            5,
            "looks like a node",
            "a name",
        );
        assert_error("cluster\nlet 4x = n1\n", 2, 5, "not a valid name", "a name");
        assert_error(
            "cluster\nlet x n1\n",
            2,
            7,
            "expected `=`",
            "let <name> = <node>",
        );
    }

    #[test]
    fn bad_probabilities_and_ranges() {
        assert_error(
            "cluster loss=1.5\n",
            1,
            14,
            "probability `1.5` is out of range",
            "from 0 to 1",
        );
        assert_error(
            "cluster dup=-0.1\n",
            1,
            13,
            "not a probability",
            "from 0 to 1",
        );
        assert_error(
            "cluster\nnet corrupt=abc\n",
            2,
            13,
            "not a probability",
            "from 0 to 1",
        );
        assert_error(
            "cluster\nnet corrupt=\n",
            2,
            13,
            "expected a probability",
            "from 0 to 1",
        );
        let e = assert_error(
            "cluster election=300..150\n",
            1,
            18,
            "empty range `300..150`",
            "MIN <= MAX",
        );
        assert_eq!(e.suggestion.as_deref(), Some("150..300"));
        assert_error(
            "cluster\nnet delay=5..2\n",
            2,
            11,
            "MIN is greater than MAX",
            "MIN <= MAX",
        );
        assert_error("cluster delay=5\n", 1, 16, "expected `..`", "MIN..MAX");
        assert_error(
            "cluster delay=5..\n",
            1,
            18,
            "expected message delay ticks",
            "MIN..MAX",
        );
    }

    #[test]
    fn malformed_settings_and_arguments() {
        assert_error(
            "cluster nodes=3 seed=1 nodes=4\n",
            1,
            24,
            "duplicate setting `nodes`",
            "at most once",
        );
        assert_error(
            "cluster nodes 3\n",
            1,
            15,
            "expected `=` after `nodes`",
            "nodes=",
        );
        assert_error("cluster Nodes=3\n", 1, 9, "not a setting name", "a setting");
        assert_error(
            "cluster pre-vote=maybe\n",
            1,
            18,
            "unknown switch value `maybe`",
            "`on` or `off`",
        );
        assert_error(
            "cluster keepalive=\n",
            1,
            19,
            "expected a value for `keepalive`",
            "bare word",
        );
        assert_error(
            "cluster\nnet\n",
            2,
            4,
            "expected at least one setting",
            "loss=P",
        );
        assert_error(
            "cluster\nnet loss=0 loss=1\n",
            2,
            12,
            "duplicate setting `loss`",
            "at most once",
        );
        assert_error(
            "cluster\npartition n1,n2\n",
            2,
            16,
            "at least two groups",
            "partition n1,n2 | n3",
        );
        assert_error(
            "cluster\npartition n1 n2\n",
            2,
            14,
            "expected `|` or `,`",
            "partition",
        );
        assert_error(
            "cluster\npartition all | n1\n",
            2,
            11,
            "`all` is a set",
            "a node",
        );
        assert_error(
            "cluster\npartition n1, | n2\n",
            2,
            15,
            "expected a node, found `|`",
            "a node",
        );
        assert_error("cluster\ncut n1 n2\n", 2, 8, "expected `->`", "cut n1->n2");
        assert_error(
            "cluster\nheal now\n",
            2,
            6,
            "unexpected `now` after the command",
            "end of line",
        );
        assert_error(
            "cluster\nheal-all 5 ticks\n",
            2,
            10,
            "expected `within`",
            "`within`",
        );
        assert_error(
            "cluster\nmark partitioned\n",
            2,
            6,
            "in double quotes",
            "quoted string",
        );
        assert_error(
            "cluster\nprint hello\n",
            2,
            7,
            "in double quotes",
            "`latency <client>`",
        );
        assert_error(
            "cluster\nmark \"open\n",
            2,
            6,
            "unterminated string",
            "closing `\"`",
        );
        assert_error(
            "cluster\nclient c1 put k\n",
            2,
            16,
            "expected a value",
            "quoted string",
        );
        assert_error(
            "cluster\nclient c1 get k seq=1 seq=2\n",
            2,
            23,
            "duplicate option `seq`",
            "at most once",
        );
        assert_error(
            "cluster\nclient c1 get k to=n1 x\n",
            2,
            23,
            "unexpected `x`",
            "`seq=N`, `to=<node>`",
        );
        assert_error(
            "cluster\nexpect value k on all\n",
            2,
            16,
            "expected `=` after the key",
            "K=V",
        );
        assert_error(
            "cluster\nexpect value =v on all\n",
            2,
            14,
            "expected a key",
            "a key",
        );
        assert_error(
            "cluster\nexpect messages 9Lives 3\n",
            2,
            17,
            "not a message type",
            "AppendEntries",
        );
        assert_error(
            "cluster\nexpect messages Vote 3 since m\n",
            2,
            30,
            "in double quotes",
            "quoted string",
        );
        let e = assert_error(
            "cluster\nexpect reply c1 ok vlaue=1\n",
            2,
            20,
            "unexpected `vlaue`",
            "value=V",
        );
        assert_eq!(e.suggestion.as_deref(), Some("value"));
        assert_error(
            "cluster\nexpect reply c1 not-leader hint=\n",
            2,
            33,
            "expected a node",
            "a node",
        );
        assert_error("cluster\nexpect checkers\n", 2, 16, "expected `ok`", "`ok`");
        assert_error(
            "cluster\nexpect vote n1 n2\n",
            2,
            16,
            "expected `=` after the node",
            "= none",
        );
        assert_error(
            "cluster\nexpect vote n1 = nobody\n",
            2,
            18,
            "unknown node `nobody`",
            "`none` or a node",
        );
        assert_error(
            "cluster\nexpect no leader among\n",
            2,
            23,
            "expected a node",
            "`all` or a comma-separated list",
        );
        assert_error(
            "cluster\nexpect\n",
            2,
            7,
            "expected expectation",
            "an expectation: leader",
        );
        assert_error(
            "cluster\nrun until\n",
            2,
            10,
            "expected condition",
            "a condition: leader",
        );
        assert_error(
            "cluster\nrun until client c1 within 5 ticks\n",
            2,
            21,
            "expected `done`",
            "`done`",
        );
    }

    #[test]
    fn display_points_at_the_column_and_keeps_tabs() {
        let e = err("cluster\n\tcrash  n0 # x\n");
        assert_eq!((e.line, e.col), (2, 9));
        let shown = e.to_string();
        let lines: Vec<&str> = shown.lines().collect();
        assert_eq!(
            lines[0],
            "test.scn:2:9: error: nodes are numbered from 1: `n0` does not exist"
        );
        assert_eq!(lines[1], "   2 | \tcrash  n0 # x");
        assert_eq!(lines[2], "     | \t       ^");
        assert_eq!(lines[4], "  help: did you mean `n1`?");
        let e = err("\n\n\n\n\n\n\n\n\ncluster\nheal x\n");
        assert!(
            e.to_string().contains("\n   11 | heal x\n      |      ^\n"),
            "{e}"
        );
    }

    #[test]
    fn suggestions_need_a_close_match() {
        assert_eq!(nearest("x", COMMANDS.iter().copied()), None);
        assert_eq!(nearest("ab", ["gap"]), None);
        assert_eq!(
            nearest("rn", COMMANDS.iter().copied()).as_deref(),
            Some("run")
        );
        assert_eq!(
            nearest("linearisable", ["linearizable"]).as_deref(),
            Some("linearizable")
        );
        assert_eq!(
            nearest("sessionexpird", REPLY_KINDS.iter().copied()).as_deref(),
            Some("session-expired")
        );
        assert_eq!(nearest(&"a".repeat(100), ["a"]), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
    }

    /// Each ```scn block of the language reference must parse: the README's examples are tested.
    #[test]
    fn readme_examples_parse() {
        let readme = include_str!("../../../scenarios/README.md");
        let mut blocks = 0;
        let mut block: Option<(usize, String)> = None;
        for (i, line) in readme.lines().enumerate() {
            match &mut block {
                None if line.trim() == "```scn" => block = Some((i + 1, String::new())),
                None => {}
                Some((start, text)) if line.trim() == "```" => {
                    let source = if text.lines().any(|l| l.trim_start().starts_with("cluster")) {
                        text.clone()
                    } else {
                        format!("cluster\n{text}")
                    };
                    if let Err(e) = parse("README.md", &source) {
                        panic!("README block at line {start} does not parse:\n{e}");
                    }
                    blocks += 1;
                    block = None;
                }
                Some((_, text)) => {
                    text.push_str(line);
                    text.push('\n');
                }
            }
        }
        assert!(blocks >= 5, "found only {blocks} scn blocks");
    }

    /// The commands with every column set to 1 (lines and everything else kept).
    fn without_columns(commands: Vec<Spanned>) -> Vec<Spanned> {
        commands
            .into_iter()
            .map(|mut spanned| {
                spanned.span.col = 1;
                if let Command::Repeat { count, body } = spanned.command {
                    spanned.command = Command::Repeat {
                        count,
                        body: without_columns(body),
                    };
                }
                spanned
            })
            .collect()
    }

    fn line_count(source: &str) -> u32 {
        u32::try_from(source.lines().count()).unwrap_or(u32::MAX)
    }

    /// Words, punctuation and fragments of the language, so random scripts get deep into the
    /// grammar: the words of `VOCABULARY_WORDS`, then a few fragments with spaces or quotes.
    const VOCABULARY_WORDS: &str = "cluster run until within ticks tick crash torn restart pause \
        resume isolate partition cut heal heal-all net rot drift ppm let repeat client expect \
        mark print latency leader leaders follower random live all no not is on among term role \
        vote value committed reply messages applied linearizable checkers ok converged quiet \
        done since seq to hint none put get append delete cas duplicate gap not-leader \
        session-expired overloaded candidate precandidate pre-candidate n1 n2 n0 n10 c1 c0 c2 x \
        old 0 1 3 20_000 99999999999999999999999 0.5 1.5 - +20000 -5000 = == != < <= > >= , | \
        { } -> .. \\ # nodes=3 election=10..5 loss=0.1 keys= seed= AppendEntries value=- k=v \
        é ✓";
    const VOCABULARY_FRAGMENTS: &[&str] = &["\"", "\"q\"", "\"a # b\"", "# c", "\t", "\"\\\"\""];

    fn vocabulary() -> Vec<&'static str> {
        VOCABULARY_WORDS
            .split_whitespace()
            .chain(VOCABULARY_FRAGMENTS.iter().copied())
            .collect()
    }

    /// A line of random vocabulary tokens, sometimes glued together.
    fn vocabulary_line() -> impl Strategy<Value = String> {
        prop::collection::vec(
            (
                prop::sample::select(vocabulary()),
                prop::sample::select(&[" ", " ", "", "  "][..]),
            ),
            0..10,
        )
        .prop_map(|parts| {
            parts
                .into_iter()
                .map(|(word, sep)| format!("{word}{sep}"))
                .collect()
        })
    }

    /// A valid line of the full script (a command, `repeat N {` or `}`), or random tokens.
    fn script_line() -> impl Strategy<Value = String> {
        let valid: Vec<String> = FULL
            .lines()
            .filter(|line| !line.starts_with("cluster"))
            .map(str::to_string)
            .collect();
        prop_oneof![
            3 => prop::sample::select(valid),
            2 => vocabulary_line(),
        ]
    }

    /// Random scripts: a valid `cluster` line (usually) then a mix of valid and random lines.
    fn vocabulary_script() -> impl Strategy<Value = String> {
        (
            prop::bool::weighted(0.9),
            prop::collection::vec(script_line(), 0..24),
            prop::sample::select(&["\n", "\r\n"][..]),
        )
            .prop_map(|(with_cluster, lines, newline)| {
                let mut script = if with_cluster {
                    format!("# header{newline}cluster nodes=3{newline}")
                } else {
                    String::new()
                };
                script.push_str(&lines.join(newline));
                script
            })
    }

    fn check_error_position(source: &str) -> Result<(), TestCaseError> {
        if let Err(e) = parse("fuzz.scn", source) {
            prop_assert!(e.line >= 1 && e.col >= 1, "{e:?}");
            prop_assert!(e.line <= line_count(source) + 1, "{e:?}");
            prop_assert!(!e.message.is_empty());
            prop_assert!(e.expected.is_some(), "{e:?}");
            let shown = e.to_string();
            let prefix = format!("fuzz.scn:{}:{}: error: ", e.line, e.col);
            prop_assert!(shown.starts_with(&prefix), "{}", shown);
            if e.line <= line_count(source) {
                let raw = source.lines().nth((e.line - 1) as usize).unwrap_or("");
                prop_assert_eq!(&e.source_line, raw);
                prop_assert!(e.col as usize <= raw.chars().count() + 1, "{:?}", e);
            }
        }
        Ok(())
    }

    proptest! {
        // No regression files: this module must not write into the source tree.
        #![proptest_config(ProptestConfig {
            cases: 2000,
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        #[test]
        fn never_panics_on_arbitrary_text(source in "\\PC*(\n\\PC*){0,8}") {
            check_error_position(&source)?;
        }

        #[test]
        fn never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
            let source = String::from_utf8_lossy(&bytes);
            check_error_position(&source)?;
        }

        #[test]
        fn never_panics_on_vocabulary_scripts(source in vocabulary_script()) {
            check_error_position(&source)?;
        }

        /// A valid script stays valid, and keeps its shape, whatever its spacing and comments.
        #[test]
        fn spacing_and_comments_do_not_change_the_tree(
            indent in "[ \t]{0,3}",
            trailing in "[ \t]{0,3}",
            comment in "(# [a-z \"#]{0,10})?",
        ) {
            let decorated: String = FULL
                .lines()
                .map(|line| {
                    if line.is_empty() || line.starts_with('#') {
                        line.to_string()
                    } else {
                        let spaced = if line.contains('#') {
                            String::new()
                        } else {
                            comment.clone()
                        };
                        format!("{indent}{line}{trailing}{spaced}")
                    }
                })
                .collect::<Vec<_>>()
                .join("\n");
            let plain = ok(FULL);
            let script = parse("test.scn", &decorated)
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(&script.cluster, &plain.cluster);
            prop_assert_eq!(without_columns(script.commands), without_columns(plain.commands));
        }
    }
}
