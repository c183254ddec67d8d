//! Simulated clients: who asks what, of which node, how they retry, and the history they record.
//!
//! [`Workload`] is a pure, deterministic state machine for `clients_count` simulated clients. It
//! has no clock and no I/O: the simulator's single-threaded scheduler hands it time (`now`) and
//! replies, and collects the requests it wants sent ([`ClientSend`]) and the happenings worth a
//! trace line ([`ClientNote`]). Every random choice (think time, operation, key, target node)
//! comes from one `ChaCha8Rng`, the simulator's "clients" stream, so the same seed and the same
//! sequence of inputs give the same sends, notes and history, byte for byte.
//!
//! # Driving it
//! - [`Workload::next_deadline_tick`] is the earliest tick at which some client needs
//!   [`Workload::handle_tick`]: its next operation is due, its request timed out, or its backoff
//!   ended. Clients due at the same tick are served in client order.
//! - [`Workload::handle_reply`] takes a node's [`Reply`] (routed by its `client` id).
//! - [`Workload::submit`] lets a scenario script an operation by hand;
//!   [`Workload::set_generating`]`(false)` stops clients from starting *new* random operations
//!   while pending ones still finish (the liveness phase).
//! - [`Workload::finish`] ends the run: whatever is still pending is recorded as indeterminate.
//!
//! # Client behaviour (W12)
//! Client `cK` (the *logical* client, `1..=clients_count`) has one operation outstanding at a
//! time and talks to the cluster under a *session*: a wire `client_id` with its own sequence
//! numbers. Its first session id is `K`.
//! - **Numbering.** Writes (Put, Append, Cas, Delete) take write numbers 1, 2, 3, ... per
//!   session, with no gaps: a number is consumed when the operation is invoked, whatever its
//!   outcome. Reads (Get) are never deduplicated, so they take no write number: they are sent
//!   as `READ_SEQ_BASE + r` (traced `c1#r1`, `c1#r2`, ...), which keeps every request's
//!   `(client_id, seq)` unique. A reply whose `(client_id, seq)` is not the client's current
//!   request is a late or duplicated answer to an old one and is ignored (`ignore ... stale`).
//!   With `gap_probability`, a write now and then skips ahead to a number from `GAP_SEQ_BASE`
//!   (never reused, so it names one operation only); it must fail with `gap`.
//! - **Target.** The node the client believes leads; when it knows none, a random node. A
//!   definite answer (below) from node `n` teaches the client that `n` leads.
//! - **Redirect.** `NotLeader { leader_hint: Some(n) }` → remember `n` and resend the same
//!   request to `n` at once. At most [`REDIRECT_CHAIN_MAX`] redirects in a row are followed
//!   (nodes with stale views can point at each other); one more, or a hint naming the replying
//!   node itself, counts as "no leader".
//! - **No leader.** `NotLeader { leader_hint: None }` → forget the leader, wait
//!   `backoff_ticks`, then resend to a random node other than the one that answered.
//! - **Overloaded** → wait `backoff_ticks`, then resend to the same node.
//! - **Timeout.** No reply within `request_timeout_ticks` of the last send → forget the leader
//!   and resend the *same* `(client_id, seq)` to a random other node. A client never gives up on
//!   a pending operation (the liveness phase needs every one to complete); only
//!   [`Workload::finish`] does.
//! - `NotLeader` and `Overloaded` count only from the node the client is waiting on; any other
//!   (a late answer to an earlier send of the same request) is ignored (`not-awaited`).
//!   Definite answers count from any node.
//!
//! # Completion and the history
//! | reply | history outcome | why |
//! |---|---|---|
//! | `Ok { result }` | `Ok(result)` | applied once, with this result |
//! | `Duplicate { cached: Some(r) }` | `Ok(r)` | an earlier send was applied once; `r` is its result |
//! | `Duplicate { cached: None }` | `Info` | applied earlier, but the result is gone; `Info` is sound |
//! | `Gap { .. }` | `Fail` | certainly not applied |
//! | `SessionExpired` | `Info` | the cluster cannot tell whether it was applied |
//!
//! After `SessionExpired` the client *renews* its session: it takes a fresh `client_id`
//! (`clients_count + 1`, `+ 2`, ... in order of renewal across all clients) and restarts its
//! write and read numbering at 1. The history's `client` field is always the logical client
//! `K`; requests, replies and trace labels use the current session id. Replies to old session
//! ids are still routed to their logical client (and ignored as stale).
//!
//! The history is in invocation order. An operation's entry is added when it is invoked, as
//! `Info` with no completion tick, and is settled when a definite reply arrives; at
//! [`Workload::finish`] every still-pending entry stays `Info` with `complete_tick: None`.
//!
//! # Operations
//! Kind by the integer weights of [`OpMix`]; key uniform over `k0..k{keys_count-1}` (a small
//! keyspace, so operations collide). Values are unique and readable: the `n`-th fresh value of
//! client `cK` is `K.n`. Put writes `K.n`; Append appends `/K.n`, so a key reads as a history
//! of its writes, e.g. `1.4/2.7/1.9`; Cas expects the value this client last read or wrote for
//! that key (`None`, i.e. absent, when it knows none or last saw it absent) and sets a fresh
//! `K.n`. A `CasMismatch { current }` answer counts as reading `current`; after an Append the
//! client no longer claims to know the key's value. After each completion the client thinks
//! for a uniform `think_ticks_min..=think_ticks_max` ticks before its next operation, unless
//! generation is off or it reached `ops_per_client_max`.
//!
//! # Trace lines
//! Every send is visible in exactly one note: `invoke`, `redirect`, `timeout` or `retry`.
//! ```text
//! c1 invoke c1#3 Put k=k2 v=1.3 -> n2
//! c1 redirect c1#3 -> n1
//! c1 timeout c1#3 retry -> n3
//! c1 backoff c1#3 no-leader until=130 next=n3
//! c1 retry c1#3 -> n3
//! c1 done c1#3 ok
//! c1 done c1#r2 value=1.3
//! c1 done c1#4 ok duplicate
//! c1 done c1#5 fail gap expected=4
//! c1 done c4#2 info session-expired
//! c1 renew c4 -> c6
//! c1 ignore c1#2 from=n3 stale Ok ok
//! ```
//!
//! # Bounds
//! - `1 ..= CLIENTS_COUNT_MAX` clients, `1 ..= NODES_COUNT_MAX` nodes, `1 ..= KEYS_MAX` keys.
//! - One operation in flight per client, so at most `clients_count` pending operations, one
//!   timer each.
//! - History: one entry per invoked operation, at most `clients_count * ops_per_client_max`
//!   generated ones, plus scripted ones, and never more than [`HISTORY_OPS_MAX`] in all (after
//!   that, clients stop generating and [`Workload::submit`] fails).
//! - Values: appends are generated only while the bytes appended to a key stay within
//!   `append_bytes_per_key_max`; past it an Append is generated as a Put. No generated value
//!   exceeds that budget plus [`VALUE_BYTES_FRESH_MAX`], far below the store's value limit.
//!   (Scripted appends count against the budget but are never refused.)
//! - Sessions: one per client plus one per renewal, and a renewal needs a completed operation.
//!
//! # Fault model
//! Clients themselves never crash, lose state or misbehave; all faults are the cluster's and the
//! network's. A client may therefore send the same request several times, to several nodes,
//! and receive any number of late or duplicated replies: exactly the situations the cluster's
//! exactly-once machinery must handle.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use raftsim_protocol::kv::{Op, OpResult, KEYS_MAX, VALUE_BYTES_MAX};
use raftsim_protocol::node::{request_label, ClientRequest, ClientResponse, Reply, READ_SEQ_BASE};
use raftsim_protocol::{ClientId, NodeId, Seq, Tick};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::checker::linearizability::{HistoryOp, Outcome};

/// Most simulated clients a workload may have.
pub const CLIENTS_COUNT_MAX: u32 = 1000;

/// Most nodes a workload may address.
pub const NODES_COUNT_MAX: u32 = 1000;

/// Most operations a history may hold; generation stops there and `submit` fails.
pub const HISTORY_OPS_MAX: usize = 1 << 22;

/// Most consecutive `NotLeader` redirects a client follows for one request before it treats the
/// cluster as leaderless and backs off. Nodes with stale views can point at each other; without
/// this bound a request could bounce between them for as long as their views stay stale.
pub const REDIRECT_CHAIN_MAX: u32 = 3;

/// Longest fresh value a client mints (`"{u32}.{u64}"` plus an Append's `/`).
pub const VALUE_BYTES_FRESH_MAX: usize = 32;

/// Integer weights of the operation kinds a client generates. Their sum must be positive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpMix {
    /// Weight of `Get`.
    pub get: u32,
    /// Weight of `Put`.
    pub put: u32,
    /// Weight of `Append`.
    pub append: u32,
    /// Weight of `Cas`.
    pub cas: u32,
    /// Weight of `Delete`.
    pub delete: u32,
}

impl OpMix {
    /// The default mix with reads making up `read_percent` of operations (0..=100) and the
    /// writes keeping their relative weights. 30 gives exactly the default.
    pub fn with_read_percent(read_percent: u32) -> OpMix {
        let d = OpMix::default();
        if read_percent == 30 {
            return d;
        }
        let read_percent = read_percent.min(100);
        let writes = d.put + d.append + d.cas + d.delete;
        OpMix {
            get: read_percent * writes,
            put: d.put * (100 - read_percent),
            append: d.append * (100 - read_percent),
            cas: d.cas * (100 - read_percent),
            delete: d.delete * (100 - read_percent),
        }
    }

    /// Sum of the weights.
    pub fn total(&self) -> u64 {
        u64::from(self.get)
            + u64::from(self.put)
            + u64::from(self.append)
            + u64::from(self.cas)
            + u64::from(self.delete)
    }
}

impl Default for OpMix {
    fn default() -> Self {
        OpMix {
            get: 30,
            put: 30,
            append: 20,
            cas: 15,
            delete: 5,
        }
    }
}

/// How the simulated clients behave. See the module docs.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkloadConfig {
    /// Number of logical clients, `c1..=cN` (`1..=CLIENTS_COUNT_MAX`).
    pub clients_count: u32,
    /// Number of nodes, `n1..=nN` (`1..=NODES_COUNT_MAX`).
    pub nodes_count: u32,
    /// Number of keys, `k0..k{N-1}` (`1..=KEYS_MAX`); small, so operations collide.
    pub keys_count: u32,
    /// Weights of the operation kinds.
    pub mix: OpMix,
    /// Shortest pause between a completion and the client's next operation.
    pub think_ticks_min: Tick,
    /// Longest such pause (inclusive).
    pub think_ticks_max: Tick,
    /// Resend to another node when no reply came within this many ticks of the last send (≥ 1).
    pub request_timeout_ticks: Tick,
    /// Wait before resending after `NotLeader` without a leader, or `Overloaded` (≥ 1).
    pub backoff_ticks: Tick,
    /// Operations each client invokes at most before it stops generating; 0 = unlimited.
    pub ops_per_client_max: u64,
    /// Bytes that generated appends may add to one key over the whole run; past it, appends to
    /// that key are generated as puts. Bounds every value a key can hold.
    pub append_bytes_per_key_max: usize,
    /// Per-client clock skew in ticks (index `client - 1`; missing entries are 0): a client
    /// stamps each write with `invoke tick + skew`, the timestamp last-writer-wins protocols
    /// order writes by. Skewed clocks are how LWW loses acknowledged writes.
    pub clock_skew_ticks: Vec<i64>,
    /// Chance that a generated write skips a sequence number (a buggy or restarted client), to
    /// exercise the dedup table's gap rejection; the client carries on at its own number. A
    /// skipping write takes a number from `GAP_SEQ_BASE` up, never one the client will reach:
    /// a number must name one operation only, or a late answer to the rejected write (from a
    /// deposed leader's log, say) would be taken as the answer to the write that reused it.
    pub gap_probability: f64,
}

impl Default for WorkloadConfig {
    fn default() -> Self {
        WorkloadConfig {
            clients_count: 3,
            nodes_count: 3,
            keys_count: 5,
            mix: OpMix::default(),
            think_ticks_min: 5,
            think_ticks_max: 50,
            request_timeout_ticks: 400,
            backoff_ticks: 30,
            ops_per_client_max: 0,
            append_bytes_per_key_max: 4096,
            clock_skew_ticks: Vec::new(),
            gap_probability: 0.0,
        }
    }
}

impl WorkloadConfig {
    /// Checks every bound; [`Workload::new`] panics on a config this rejects.
    pub fn validate(&self) -> Result<(), WorkloadError> {
        let invalid = |reason: String| Err(WorkloadError::InvalidConfig { reason });
        if !(1..=CLIENTS_COUNT_MAX).contains(&self.clients_count) {
            return invalid(format!(
                "clients_count {} must be in 1..={CLIENTS_COUNT_MAX}",
                self.clients_count
            ));
        }
        if !(1..=NODES_COUNT_MAX).contains(&self.nodes_count) {
            return invalid(format!(
                "nodes_count {} must be in 1..={NODES_COUNT_MAX}",
                self.nodes_count
            ));
        }
        if self.keys_count == 0 || self.keys_count as usize > KEYS_MAX {
            return invalid(format!(
                "keys_count {} must be in 1..={KEYS_MAX}",
                self.keys_count
            ));
        }
        if self.mix.total() == 0 {
            return invalid("the op mix weights must not all be 0".to_owned());
        }
        if self.think_ticks_min > self.think_ticks_max {
            return invalid(format!(
                "think_ticks_min {} exceeds think_ticks_max {}",
                self.think_ticks_min, self.think_ticks_max
            ));
        }
        if self.request_timeout_ticks == 0 {
            return invalid("request_timeout_ticks must be at least 1".to_owned());
        }
        if self.backoff_ticks == 0 {
            return invalid("backoff_ticks must be at least 1".to_owned());
        }
        let value_bytes_max = VALUE_BYTES_MAX - VALUE_BYTES_FRESH_MAX;
        if self.append_bytes_per_key_max > value_bytes_max {
            return invalid(format!(
                "append_bytes_per_key_max {} exceeds {value_bytes_max}",
                self.append_bytes_per_key_max
            ));
        }
        Ok(())
    }
}

/// A request a client wants delivered to a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientSend {
    /// The node to deliver it to.
    pub to: NodeId,
    /// The request (carrying the client's current session id).
    pub request: ClientRequest,
}

/// Why a client is waiting before it resends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BackoffReason {
    /// `NotLeader` without a usable hint.
    NoLeader,
    /// More than [`REDIRECT_CHAIN_MAX`] redirects in a row.
    RedirectLoop,
    /// `Overloaded`.
    Overloaded,
}

impl BackoffReason {
    /// Stable lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            BackoffReason::NoLeader => "no-leader",
            BackoffReason::RedirectLoop => "redirect-loop",
            BackoffReason::Overloaded => "overloaded",
        }
    }
}

/// Why a reply was ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IgnoreReason {
    /// No client ever had the reply's `client_id`.
    UnknownClient,
    /// `(client_id, seq)` is not the client's current request: a late or duplicated answer.
    Stale,
    /// `NotLeader` / `Overloaded` from a node the client is not waiting on.
    NotAwaited,
}

impl IgnoreReason {
    /// Stable lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            IgnoreReason::UnknownClient => "unknown-client",
            IgnoreReason::Stale => "stale",
            IgnoreReason::NotAwaited => "not-awaited",
        }
    }
}

/// How an operation completed, as its `done` note shows it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Completion {
    /// `Ok { result }`: history `Ok(result)`.
    Ok(OpResult),
    /// `Duplicate { cached: Some(result) }`: history `Ok(result)`.
    DuplicateCached(OpResult),
    /// `Duplicate { cached: None }`: applied earlier, result gone; history `Info`.
    DuplicateStale,
    /// `Gap { expected }`: not applied; history `Fail`.
    Gap {
        /// The sequence number the cluster expected.
        expected: Seq,
    },
    /// `SessionExpired`: unknown; history `Info`, and the client renews its session.
    SessionExpired,
}

impl fmt::Display for Completion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Completion::Ok(result) => write!(f, "{result}"),
            Completion::DuplicateCached(result) => write!(f, "{result} duplicate"),
            Completion::DuplicateStale => f.write_str("info duplicate-stale"),
            Completion::Gap { expected } => write!(f, "fail gap expected={expected}"),
            Completion::SessionExpired => f.write_str("info session-expired"),
        }
    }
}

/// A trace-worthy client happening. `client` is the logical client; `client_id` the session id
/// the request carried. [`fmt::Display`] gives the stable one-liner (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ClientNote {
    /// A new operation was invoked and first sent to `to`.
    Invoke {
        /// Logical client.
        client: u32,
        /// Session id.
        client_id: ClientId,
        /// Request sequence number.
        seq: Seq,
        /// The operation (shared with the request in flight).
        op: Arc<Op>,
        /// The node it was sent to.
        to: NodeId,
    },
    /// `NotLeader` with a hint: the request was resent to the hinted node `to`.
    Redirect {
        /// Logical client.
        client: u32,
        /// Session id.
        client_id: ClientId,
        /// Request sequence number.
        seq: Seq,
        /// The node that redirected.
        from: NodeId,
        /// The hinted leader, where the request went.
        to: NodeId,
    },
    /// No reply in time: the same request was resent to `to`.
    Timeout {
        /// Logical client.
        client: u32,
        /// Session id.
        client_id: ClientId,
        /// Request sequence number.
        seq: Seq,
        /// The node the retry went to.
        to: NodeId,
    },
    /// The client waits until `until_tick`, then resends to `to`.
    Backoff {
        /// Logical client.
        client: u32,
        /// Session id.
        client_id: ClientId,
        /// Request sequence number.
        seq: Seq,
        /// Why.
        reason: BackoffReason,
        /// When the wait ends.
        until_tick: Tick,
        /// The node it will resend to.
        to: NodeId,
    },
    /// A backoff ended: the request was resent to `to`.
    Retry {
        /// Logical client.
        client: u32,
        /// Session id.
        client_id: ClientId,
        /// Request sequence number.
        seq: Seq,
        /// The node it was resent to.
        to: NodeId,
    },
    /// The operation completed.
    Done {
        /// Logical client.
        client: u32,
        /// Session id.
        client_id: ClientId,
        /// Request sequence number.
        seq: Seq,
        /// How.
        completion: Completion,
    },
    /// The client's session expired and it took a fresh session id.
    Renew {
        /// Logical client.
        client: u32,
        /// The expired session id.
        old_client_id: ClientId,
        /// The new session id (its writes start again at seq 1).
        new_client_id: ClientId,
    },
    /// A reply the client did not act on.
    Ignored {
        /// Logical client, if the session id is known.
        client: Option<u32>,
        /// The reply's session id.
        client_id: ClientId,
        /// The reply's sequence number.
        seq: Seq,
        /// The node that sent it.
        from: NodeId,
        /// What it said.
        response: ClientResponse,
        /// Why it was ignored.
        reason: IgnoreReason,
    },
}

impl fmt::Display for ClientNote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientNote::Invoke {
                client,
                client_id,
                seq,
                op,
                to,
            } => write!(
                f,
                "c{client} invoke {} {op} -> n{to}",
                request_label(*client_id, *seq)
            ),
            ClientNote::Redirect {
                client,
                client_id,
                seq,
                from: _,
                to,
            } => write!(
                f,
                "c{client} redirect {} -> n{to}",
                request_label(*client_id, *seq)
            ),
            ClientNote::Timeout {
                client,
                client_id,
                seq,
                to,
            } => write!(
                f,
                "c{client} timeout {} retry -> n{to}",
                request_label(*client_id, *seq)
            ),
            ClientNote::Backoff {
                client,
                client_id,
                seq,
                reason,
                until_tick,
                to,
            } => write!(
                f,
                "c{client} backoff {} {} until={until_tick} next=n{to}",
                request_label(*client_id, *seq),
                reason.name()
            ),
            ClientNote::Retry {
                client,
                client_id,
                seq,
                to,
            } => write!(
                f,
                "c{client} retry {} -> n{to}",
                request_label(*client_id, *seq)
            ),
            ClientNote::Done {
                client,
                client_id,
                seq,
                completion,
            } => write!(
                f,
                "c{client} done {} {completion}",
                request_label(*client_id, *seq)
            ),
            ClientNote::Renew {
                client,
                old_client_id,
                new_client_id,
            } => write!(f, "c{client} renew c{old_client_id} -> c{new_client_id}"),
            ClientNote::Ignored {
                client,
                client_id,
                seq,
                from,
                response,
                reason,
            } => {
                match client {
                    Some(client) => write!(f, "c{client}")?,
                    None => f.write_str("c?")?,
                }
                write!(
                    f,
                    " ignore {} from=n{from} {} {response}",
                    request_label(*client_id, *seq),
                    reason.name()
                )
            }
        }
    }
}

/// Counters over the whole run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkloadStats {
    /// Operations invoked (generated and scripted).
    pub ops_invoked: u64,
    /// Completed `Ok` (including `Duplicate` with a cached result).
    pub ops_ok: u64,
    /// Completed `Fail` (`Gap`).
    pub ops_fail: u64,
    /// Completed `Info`: stale duplicates, expired sessions, and pending at `finish`.
    pub ops_info: u64,
    /// Resends of a request already sent once (redirects, timeouts, ends of backoff).
    pub retries: u64,
    /// Requests that got no reply in time.
    pub timeouts: u64,
    /// `NotLeader` hints followed.
    pub redirects_followed: u64,
    /// Backoffs for want of a leader (no hint, a self-hint, or a redirect loop).
    pub no_leader_backoffs: u64,
    /// Backoffs after `Overloaded`.
    pub overloaded_backoffs: u64,
    /// `Duplicate` replies acted on (cached or stale).
    pub duplicates_seen: u64,
    /// `Gap` replies acted on.
    pub gaps_seen: u64,
    /// `SessionExpired` replies acted on (each one renews a session).
    pub sessions_expired: u64,
    /// Replies ignored (stale, not awaited, unknown client).
    pub replies_ignored: u64,
}

/// Why [`Workload::submit`] (or a config) was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkloadError {
    /// The config breaks a bound.
    InvalidConfig {
        /// Which, in words.
        reason: String,
    },
    /// No such logical client.
    UnknownClient {
        /// The client asked for.
        client: u32,
        /// How many there are.
        clients_count: u32,
    },
    /// No such node.
    UnknownNode {
        /// The node asked for.
        node: NodeId,
        /// How many there are.
        nodes_count: u32,
    },
    /// The client already has an operation in flight.
    ClientBusy {
        /// The client.
        client: u32,
    },
    /// The history holds [`HISTORY_OPS_MAX`] operations.
    HistoryFull,
    /// [`Workload::finish`] was called.
    Finished,
}

impl fmt::Display for WorkloadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WorkloadError::InvalidConfig { reason } => write!(f, "invalid workload: {reason}"),
            WorkloadError::UnknownClient {
                client,
                clients_count,
            } => write!(f, "no client c{client} (clients are c1..=c{clients_count})"),
            WorkloadError::UnknownNode { node, nodes_count } => {
                write!(f, "no node n{node} (nodes are n1..=n{nodes_count})")
            }
            WorkloadError::ClientBusy { client } => {
                write!(f, "client c{client} already has an operation in flight")
            }
            WorkloadError::HistoryFull => {
                write!(f, "the history is full ({HISTORY_OPS_MAX} operations)")
            }
            WorkloadError::Finished => f.write_str("the workload has finished"),
        }
    }
}

impl std::error::Error for WorkloadError {}

/// What an in-flight request is waiting for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wait {
    /// A reply from the target, until the deadline.
    Reply { deadline_tick: Tick },
    /// The end of a backoff, then a resend to the target.
    Backoff { until_tick: Tick },
}

impl Wait {
    fn tick(self) -> Tick {
        match self {
            Wait::Reply { deadline_tick } => deadline_tick,
            Wait::Backoff { until_tick } => until_tick,
        }
    }
}

/// A client's one outstanding operation.
#[derive(Debug, Clone)]
struct InFlight {
    /// Its entry in the history.
    history_index: usize,
    seq: Seq,
    /// Shared with every (re)send of the request: a retry copies no strings.
    op: Arc<Op>,
    /// The node last sent to (or to resend to when a backoff ends).
    target: NodeId,
    /// Redirects followed since the last timeout or backoff.
    redirects_chain: u32,
    wait: Wait,
    /// The client's clock when it invoked the operation; every retry carries the same stamp.
    timestamp: Tick,
}

/// First write number a gap-skipping write uses (see [`WorkloadConfig::gap_probability`]):
/// far above any number a session reaches, far below [`READ_SEQ_BASE`].
pub const GAP_SEQ_BASE: Seq = 1 << 40;

#[derive(Debug, Clone)]
struct Client {
    /// Logical client number, `1..=clients_count`.
    number: u32,
    /// Current session id.
    client_id: ClientId,
    /// Next write number of this session.
    write_seq_next: Seq,
    /// Writes sent with a skipped number so far (numbers `GAP_SEQ_BASE + k`).
    gaps_sent: u64,
    /// Reads sent in this session.
    reads_count: u64,
    /// Fresh values minted over the whole run (the `n` of `K.n`).
    values_count: u64,
    /// Operations invoked over the whole run.
    ops_count: u64,
    leader: Option<NodeId>,
    /// The value this client last read or wrote per key; absent when unknown or absent.
    known_values: KeyTable<KnownValue>,
    /// When idle: when the next generated operation is due (`None`: limit reached).
    next_op_tick: Option<Tick>,
    in_flight: Option<InFlight>,
    last_response: Option<ClientResponse>,
    /// This client's entry in [`Workload::timers`], if any.
    timer_tick: Option<Tick>,
}

#[derive(Debug, Clone, Copy)]
enum OpKind {
    Get,
    Put,
    Append,
    Cas,
    Delete,
}

/// Room the history starts with: more than a typical run invokes.
const HISTORY_CAPACITY_INITIAL: usize = 256;

/// Longest generated key: `k` and the decimal digits of a number below [`KEYS_MAX`].
const KEY_BYTES_GENERATED_MAX: usize = 8;

/// Keys `k0 ..` below this number are tracked per client in a vector indexed by the number;
/// any other key (scripts may name any) in an ordered map. Bounds each vector's length.
const KEY_NUMBERS_DENSE: usize = 256;

/// Appends `n` in decimal to `out`, without going through `fmt`: the higher digits first, by
/// recursion (at most 20 deep). Each digit is pushed as a `char` the compiler can see is
/// ASCII, so the push is one store, with no multi-byte encoding path to carry.
fn push_decimal(out: &mut String, n: u64) {
    if n >= 10 {
        push_decimal(out, n / 10);
    }
    out.push(char::from(b'0' + (n % 10) as u8));
}

/// Where a key's state lives in a [`KeyTable`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyRef<'a> {
    /// `k{n}` written canonically (no leading zero), `n < KEY_NUMBERS_DENSE`.
    Numbered(usize),
    /// Any other key.
    Named(&'a str),
}

/// Where `key` lives: numbered exactly when it is the canonical `k{n}` with a dense `n`, so a
/// key has one place whether it was generated or scripted.
fn key_ref(key: &str) -> KeyRef<'_> {
    let numbered = key.strip_prefix('k').and_then(|digits| {
        let canonical = !digits.is_empty()
            && digits.len() <= 3
            && digits.bytes().all(|b| b.is_ascii_digit())
            && (digits.len() == 1 || !digits.starts_with('0'));
        if !canonical {
            return None;
        }
        let n = digits
            .bytes()
            .fold(0, |n, b| n * 10 + usize::from(b - b'0'));
        (n < KEY_NUMBERS_DENSE).then_some(n)
    });
    match numbered {
        Some(n) => KeyRef::Numbered(n),
        None => KeyRef::Named(key),
    }
}

/// [`key_ref`] of a generated key `key`, which is `k{number}`, without parsing it back.
fn key_number_ref(number: u32, key: &str) -> KeyRef<'_> {
    match usize::try_from(number) {
        Ok(n) if n < KEY_NUMBERS_DENSE => KeyRef::Numbered(n),
        _ => KeyRef::Named(key),
    }
}

/// Per-key state of the workload: a vector for the small keyspace generated operations use,
/// an ordered map for the rest. Lookup only (never iterated), so no order reaches an output.
#[derive(Debug, Clone)]
struct KeyTable<V> {
    /// By key number ([`KeyRef::Numbered`]); grown on demand.
    numbered: Vec<Option<V>>,
    /// By name ([`KeyRef::Named`]).
    named: BTreeMap<String, V>,
}

impl<V> Default for KeyTable<V> {
    fn default() -> Self {
        KeyTable {
            numbered: Vec::new(),
            named: BTreeMap::new(),
        }
    }
}

/// The keys generated operations use are all numbered: the named half of a [`KeyTable`]
/// serves scripts only, so its paths are out of line (and marked cold), keeping the per-key
/// bookkeeping of every completion small in the instruction cache.
impl<V> KeyTable<V> {
    fn get(&self, key: KeyRef<'_>) -> Option<&V> {
        match key {
            KeyRef::Numbered(n) => self.numbered.get(n)?.as_ref(),
            KeyRef::Named(name) => self.named.get(name),
        }
    }

    /// The key's state, set to `default` first if it has none.
    fn get_or_insert(&mut self, key: KeyRef<'_>, default: V) -> &mut V {
        match key {
            KeyRef::Numbered(n) => self.slot(n).get_or_insert(default),
            KeyRef::Named(name) => self.named_get_or_insert(name, default),
        }
    }

    fn insert(&mut self, key: KeyRef<'_>, value: V) {
        match key {
            KeyRef::Numbered(n) => *self.slot(n) = Some(value),
            KeyRef::Named(name) => self.named_insert(name, value),
        }
    }

    fn remove(&mut self, key: KeyRef<'_>) {
        match key {
            KeyRef::Numbered(n) => {
                if let Some(slot) = self.numbered.get_mut(n) {
                    *slot = None;
                }
            }
            KeyRef::Named(name) => self.named_remove(name),
        }
    }

    fn slot(&mut self, n: usize) -> &mut Option<V> {
        if n >= self.numbered.len() {
            self.grow_numbered(n);
        }
        &mut self.numbered[n]
    }

    /// Makes room for key number `n` (once per key number and table).
    #[cold]
    #[inline(never)]
    fn grow_numbered(&mut self, n: usize) {
        self.numbered.resize_with(n + 1, || None);
    }

    #[cold]
    #[inline(never)]
    fn named_get_or_insert(&mut self, name: &str, default: V) -> &mut V {
        self.named.entry(name.to_owned()).or_insert(default)
    }

    #[cold]
    #[inline(never)]
    fn named_insert(&mut self, name: &str, value: V) {
        match self.named.get_mut(name) {
            Some(slot) => *slot = value,
            None => {
                self.named.insert(name.to_owned(), value);
            }
        }
    }

    #[cold]
    #[inline(never)]
    fn named_remove(&mut self, name: &str) {
        self.named.remove(name);
    }
}

/// A value a client knows a key to hold.
#[derive(Debug, Clone)]
enum KnownValue {
    /// Written by this `Put` or `Cas` (its value or `new`): shared with the request rather
    /// than copied at every completion, since few are ever read back (only by a later Cas).
    Written(Arc<Op>),
    /// Read by a `Get`, or reported by a `CasMismatch`.
    Read(String),
}

impl KnownValue {
    fn as_str(&self) -> &str {
        match self {
            KnownValue::Read(value) => value,
            KnownValue::Written(op) => match &**op {
                Op::Put { value, .. } => value,
                Op::Cas { new, .. } => new,
                other => unreachable!("{} writes no whole value", other.name()),
            },
        }
    }
}

/// Every client's pending tick, and the earliest of them (ties to the lowest client index).
///
/// A flat table with its minimum kept at hand: a rearm (one per send and per completion)
/// writes one slot and compares with the minimum, and only when the client holding the
/// minimum moves later or leaves is the table scanned again. Runs have a handful of clients
/// (3 by default, 4 in the fuzz set), for which that scan costs less than sifting a heap;
/// at the [`CLIENTS_COUNT_MAX`] limit it reads a few kilobytes per operation.
#[derive(Debug, Clone)]
struct Timers {
    /// Per client index: its tick, or [`Timers::NONE`].
    ticks: Vec<Tick>,
    /// The least `(tick, index)` in `ticks`; `(NONE, _)` when no client has a tick.
    first: (Tick, usize),
}

impl Timers {
    /// The tick of a client that needs none. Never a real tick: time would have to reach the
    /// end of `u64` first.
    const NONE: Tick = Tick::MAX;

    fn new(clients_count: usize) -> Timers {
        Timers {
            ticks: vec![Timers::NONE; clients_count],
            first: (Timers::NONE, 0),
        }
    }

    /// The earliest entry, ties to the lowest client index.
    fn first(&self) -> Option<(Tick, usize)> {
        (self.first.0 != Timers::NONE).then_some(self.first)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.ticks.iter().filter(|&&t| t != Timers::NONE).count()
    }

    fn is_empty(&self) -> bool {
        self.first.0 == Timers::NONE
    }

    #[cfg(test)]
    fn contains(&self, (tick, index): (Tick, usize)) -> bool {
        self.ticks.get(index) == Some(&tick)
    }

    /// Gives client `index` a timer at `tick`, moves it there, or (`None`) removes it.
    fn set(&mut self, index: usize, tick: Option<Tick>) {
        let tick = tick.unwrap_or(Timers::NONE);
        self.ticks[index] = tick;
        if (tick, index) < self.first {
            self.first = (tick, index);
        } else if index == self.first.1 {
            self.rescan();
        }
    }

    /// Finds the minimum again, after its holder moved later or left.
    #[inline(never)]
    fn rescan(&mut self) {
        let mut first = (Timers::NONE, 0);
        for (index, &tick) in self.ticks.iter().enumerate() {
            if tick < first.0 {
                first = (tick, index);
            }
        }
        self.first = first;
    }
}

/// The simulated clients. See the module docs.
pub struct Workload {
    config: WorkloadConfig,
    rng: ChaCha8Rng,
    clients: Vec<Client>,
    /// Every session id ever issued → index into `clients`, at `session id - 1`. Session ids
    /// are issued densely from 1 (see [`Workload::renew`]), so a vector is the whole map.
    sessions: Vec<usize>,
    /// The id the next renewed session gets.
    session_id_next: ClientId,
    /// `(tick, client index)` of every client that needs a tick: one entry per client at most.
    timers: Timers,
    generating: bool,
    finished: bool,
    history: Vec<HistoryOp>,
    pending_count: usize,
    /// Bytes appended so far per key (generated and scripted appends).
    append_bytes: KeyTable<usize>,
    stats: WorkloadStats,
    /// The latest `now` seen; time never goes backwards.
    now_last: Tick,
}

impl Workload {
    /// Clients `c1..=cN` with session ids `1..=N`; each client's first operation is due at
    /// `now` plus a random think time (drawn in client order).
    ///
    /// # Panics
    /// If `config` fails [`WorkloadConfig::validate`].
    pub fn new(config: WorkloadConfig, rng: ChaCha8Rng, now: Tick) -> Workload {
        if let Err(error) = config.validate() {
            panic!("workload: {error}");
        }
        let clients = (1..=config.clients_count)
            .map(|number| Client {
                number,
                client_id: ClientId::from(number),
                write_seq_next: 1,
                gaps_sent: 0,
                reads_count: 0,
                values_count: 0,
                ops_count: 0,
                leader: None,
                known_values: KeyTable::default(),
                next_op_tick: None,
                in_flight: None,
                last_response: None,
                timer_tick: None,
            })
            .collect();
        let clients_count = config.clients_count as usize;
        let sessions = (0..clients_count).collect();
        let mut workload = Workload {
            session_id_next: ClientId::from(config.clients_count) + 1,
            config,
            rng,
            clients,
            sessions,
            timers: Timers::new(clients_count),
            generating: true,
            finished: false,
            // Room for a typical run's operations up front: the history is never shrunk, and
            // growing it step by step copied it over and over.
            history: Vec::with_capacity(HISTORY_CAPACITY_INITIAL),
            pending_count: 0,
            append_bytes: KeyTable::default(),
            stats: WorkloadStats::default(),
            now_last: now,
        };
        for index in 0..workload.clients.len() {
            let think_ticks = workload.draw_think_ticks();
            workload.clients[index].next_op_tick = Some(now + think_ticks);
            workload.rearm(index);
        }
        workload
    }

    /// The earliest tick at which some client needs [`Workload::handle_tick`].
    pub fn next_deadline_tick(&self) -> Option<Tick> {
        self.timers.first().map(|(tick, _)| tick)
    }

    /// Serves every client due at or before `now`, earliest first, ties in client order: starts
    /// due operations, resends timed-out requests, ends backoffs.
    pub fn handle_tick(
        &mut self,
        now: Tick,
        sends: &mut Vec<ClientSend>,
        notes: &mut Vec<ClientNote>,
    ) {
        self.observe_time(now);
        // Each client fires at most once: whatever a firing schedules lies after `now`.
        for _ in 0..=self.clients.len() {
            let Some((tick, index)) = self.timers.first() else {
                return;
            };
            if tick > now {
                return;
            }
            self.fire(index, now, sends, notes);
            assert!(
                !matches!(self.clients[index].timer_tick, Some(t) if t <= now),
                "workload: c{} fired at t={now} but is still due",
                index + 1
            );
        }
        panic!("workload: more clients due at t={now} than there are clients");
    }

    /// A node's reply to a client. Acted on only if it answers the client's current request
    /// (see the module docs); otherwise noted as ignored.
    pub fn handle_reply(
        &mut self,
        now: Tick,
        from: NodeId,
        reply: Reply,
        sends: &mut Vec<ClientSend>,
        notes: &mut Vec<ClientNote>,
    ) {
        self.observe_time(now);
        let session = usize::try_from(reply.client)
            .ok()
            .and_then(|id| id.checked_sub(1));
        let Some(&index) = session.and_then(|session| self.sessions.get(session)) else {
            self.ignore(None, from, reply, IgnoreReason::UnknownClient, notes);
            return;
        };
        let client = &self.clients[index];
        let (wait, target) = match &client.in_flight {
            Some(f) if client.client_id == reply.client && f.seq == reply.seq => (f.wait, f.target),
            _ => {
                self.ignore(Some(index), from, reply, IgnoreReason::Stale, notes);
                return;
            }
        };
        match reply.response {
            ClientResponse::Ok { .. }
            | ClientResponse::Duplicate { .. }
            | ClientResponse::Gap { .. }
            | ClientResponse::SessionExpired => {
                self.complete(index, now, from, reply.response, notes);
            }
            ClientResponse::NotLeader { .. } | ClientResponse::Overloaded => {
                if !matches!(wait, Wait::Reply { .. }) || target != from {
                    self.ignore(Some(index), from, reply, IgnoreReason::NotAwaited, notes);
                    return;
                }
                let hint = match reply.response {
                    ClientResponse::NotLeader { leader_hint } => Some(leader_hint),
                    _ => None,
                };
                self.clients[index].last_response = Some(reply.response);
                match hint {
                    Some(leader_hint) => {
                        self.handle_not_leader(index, now, from, leader_hint, sends, notes)
                    }
                    None => self.back_off(index, now, BackoffReason::Overloaded, from, notes),
                }
            }
        }
    }

    /// Invokes a scripted operation for logical `client`: `op` as given, `seq` as given (else
    /// the client's next write or read number), sent to `to` (else the usual target). A scripted
    /// `seq` does not consume the client's numbering, but once such a write may have been
    /// applied, the client's next write number is past it.
    #[allow(clippy::too_many_arguments)] // The scenario interpreter's verb, argument for argument.
    pub fn submit(
        &mut self,
        now: Tick,
        client: u32,
        op: Op,
        seq: Option<Seq>,
        to: Option<NodeId>,
        sends: &mut Vec<ClientSend>,
        notes: &mut Vec<ClientNote>,
    ) -> Result<(), WorkloadError> {
        self.observe_time(now);
        if self.finished {
            return Err(WorkloadError::Finished);
        }
        if !(1..=self.config.clients_count).contains(&client) {
            return Err(WorkloadError::UnknownClient {
                client,
                clients_count: self.config.clients_count,
            });
        }
        if let Some(node) = to {
            if !(1..=self.config.nodes_count).contains(&node) {
                return Err(WorkloadError::UnknownNode {
                    node,
                    nodes_count: self.config.nodes_count,
                });
            }
        }
        let index = client as usize - 1;
        if self.clients[index].in_flight.is_some() {
            return Err(WorkloadError::ClientBusy { client });
        }
        if self.history.len() >= HISTORY_OPS_MAX {
            return Err(WorkloadError::HistoryFull);
        }
        self.invoke(index, now, op, seq, to, sends, notes);
        Ok(())
    }

    /// `false`: clients stop starting new random operations (pending ones still finish);
    /// `true`: they resume, each at its scheduled tick (at once if that has passed).
    pub fn set_generating(&mut self, on: bool) {
        self.generating = on;
        for index in 0..self.clients.len() {
            self.rearm(index);
        }
    }

    /// Whether clients start new random operations.
    pub fn is_generating(&self) -> bool {
        self.generating && !self.finished
    }

    /// Operations invoked and not yet completed.
    pub fn pending_count(&self) -> usize {
        self.pending_count
    }

    /// Ends the run: every pending operation stays `Info` with `complete_tick: None`, and no
    /// client needs a tick any more.
    pub fn finish(&mut self, now: Tick) {
        self.observe_time(now);
        for index in 0..self.clients.len() {
            if let Some(in_flight) = self.clients[index].in_flight.take() {
                let entry = &self.history[in_flight.history_index];
                assert!(
                    entry.complete_tick.is_none() && matches!(entry.outcome, Outcome::Info),
                    "workload: c{} pending op already settled in the history",
                    index + 1
                );
                self.pending_count -= 1;
                self.stats.ops_info += 1;
            }
        }
        assert_eq!(self.pending_count, 0, "workload: pending count drifted");
        self.finished = true;
        self.generating = false;
        for index in 0..self.clients.len() {
            self.rearm(index);
        }
        assert!(self.timers.is_empty());
    }

    /// Every operation invoked, in invocation order.
    pub fn history(&self) -> &[HistoryOp] {
        &self.history
    }

    /// Counters.
    pub fn stats(&self) -> &WorkloadStats {
        &self.stats
    }

    /// The configuration.
    pub fn config(&self) -> &WorkloadConfig {
        &self.config
    }

    /// The last reply logical `client` acted on (ignored replies do not count).
    pub fn last_response(&self, client: u32) -> Option<&ClientResponse> {
        let index = (client as usize).checked_sub(1)?;
        self.clients.get(index)?.last_response.as_ref()
    }

    /// The current session id of logical `client`.
    pub fn client_id(&self, client: u32) -> Option<ClientId> {
        let index = (client as usize).checked_sub(1)?;
        Some(self.clients.get(index)?.client_id)
    }

    // ---- timers ----

    fn observe_time(&mut self, now: Tick) {
        assert!(
            now >= self.now_last,
            "workload: time went backwards from t={} to t={now}",
            self.now_last
        );
        self.now_last = now;
    }

    /// The tick at which client `index` needs a tick, if any.
    fn timer_of(&self, index: usize) -> Option<Tick> {
        let client = &self.clients[index];
        match &client.in_flight {
            Some(in_flight) => Some(in_flight.wait.tick()),
            None if self.generating && !self.finished => client.next_op_tick,
            None => None,
        }
    }

    /// Brings client `index`'s entry in `timers` in line with its state. Call after every
    /// change to a client's state.
    fn rearm(&mut self, index: usize) {
        let want = self.timer_of(index);
        let client = &mut self.clients[index];
        if client.timer_tick == want {
            return;
        }
        client.timer_tick = want;
        self.timers.set(index, want);
    }

    fn fire(
        &mut self,
        index: usize,
        now: Tick,
        sends: &mut Vec<ClientSend>,
        notes: &mut Vec<ClientNote>,
    ) {
        let wait = self.clients[index].in_flight.as_ref().map(|f| f.wait);
        match wait {
            None => {
                if self.history.len() >= HISTORY_OPS_MAX {
                    self.clients[index].next_op_tick = None;
                    self.rearm(index);
                    return;
                }
                let op = self.generate_op(index);
                // Draw only when gaps are on, so runs without them keep their streams.
                let gap = !op.is_read()
                    && self.config.gap_probability > 0.0
                    && self.rng.gen_bool(self.config.gap_probability);
                let seq = gap.then(|| {
                    let client = &mut self.clients[index];
                    client.gaps_sent += 1;
                    GAP_SEQ_BASE + client.gaps_sent
                });
                self.invoke(index, now, op, seq, None, sends, notes);
            }
            Some(Wait::Reply { .. }) => self.time_out(index, now, sends, notes),
            Some(Wait::Backoff { .. }) => {
                self.stats.retries += 1;
                let note = self.note_of(index, |client, client_id, seq, f| ClientNote::Retry {
                    client,
                    client_id,
                    seq,
                    to: f.target,
                });
                notes.push(note);
                self.send(index, now, sends);
            }
        }
    }

    // ---- requests ----

    #[allow(clippy::too_many_arguments)]
    fn invoke(
        &mut self,
        index: usize,
        now: Tick,
        op: Op,
        seq: Option<Seq>,
        to: Option<NodeId>,
        sends: &mut Vec<ClientSend>,
        notes: &mut Vec<ClientNote>,
    ) {
        assert!(self.clients[index].in_flight.is_none());
        assert!(self.history.len() < HISTORY_OPS_MAX);
        let seq = match seq {
            Some(seq) => seq,
            None => self.take_seq(index, op.is_read()),
        };
        let target = match to.or(self.clients[index].leader) {
            Some(node) => node,
            None => self.random_node(),
        };
        if let Op::Append { key, value } = &op {
            *self.append_bytes.get_or_insert(key_ref(key), 0) += value.len();
        }
        let client = &mut self.clients[index];
        let op = Arc::new(op);
        self.history.push(HistoryOp {
            client: ClientId::from(client.number),
            op: Arc::clone(&op),
            invoke_tick: now,
            complete_tick: None,
            outcome: Outcome::Info,
        });
        notes.push(ClientNote::Invoke {
            client: client.number,
            client_id: client.client_id,
            seq,
            op: Arc::clone(&op),
            to: target,
        });
        let skew = self
            .config
            .clock_skew_ticks
            .get(index)
            .copied()
            .unwrap_or(0);
        let timestamp = (now as i64).saturating_add(skew).max(0) as Tick;
        client.in_flight = Some(InFlight {
            history_index: self.history.len() - 1,
            seq,
            op,
            target,
            redirects_chain: 0,
            wait: Wait::Reply { deadline_tick: now },
            timestamp,
        });
        client.ops_count += 1;
        client.next_op_tick = None;
        self.stats.ops_invoked += 1;
        self.pending_count += 1;
        self.send(index, now, sends);
    }

    /// The next write or read number of client `index`'s session.
    fn take_seq(&mut self, index: usize, read: bool) -> Seq {
        let client = &mut self.clients[index];
        if read {
            client.reads_count += 1;
            READ_SEQ_BASE + client.reads_count
        } else {
            let seq = client.write_seq_next;
            assert!(seq < READ_SEQ_BASE, "workload: write numbers exhausted");
            client.write_seq_next += 1;
            seq
        }
    }

    /// (Re)sends client `index`'s request to its target and waits for a reply.
    fn send(&mut self, index: usize, now: Tick, sends: &mut Vec<ClientSend>) {
        let timeout_ticks = self.config.request_timeout_ticks;
        let client = &mut self.clients[index];
        let in_flight = client.in_flight.as_mut().expect("send without a request");
        in_flight.wait = Wait::Reply {
            deadline_tick: now + timeout_ticks,
        };
        sends.push(ClientSend {
            to: in_flight.target,
            request: ClientRequest {
                client: client.client_id,
                seq: in_flight.seq,
                op: Arc::clone(&in_flight.op),
                timestamp: in_flight.timestamp,
            },
        });
        self.rearm(index);
    }

    /// Resends a request that got no reply in time to another node (one send in ten).
    #[inline(never)]
    fn time_out(
        &mut self,
        index: usize,
        now: Tick,
        sends: &mut Vec<ClientSend>,
        notes: &mut Vec<ClientNote>,
    ) {
        let old_target = self.in_flight(index).target;
        let target = self.random_other_node(old_target);
        let client = &mut self.clients[index];
        client.leader = None;
        let in_flight = client
            .in_flight
            .as_mut()
            .expect("timeout without a request");
        in_flight.target = target;
        in_flight.redirects_chain = 0;
        self.stats.timeouts += 1;
        self.stats.retries += 1;
        let note = self.note_of(index, |client, client_id, seq, f| ClientNote::Timeout {
            client,
            client_id,
            seq,
            to: f.target,
        });
        notes.push(note);
        self.send(index, now, sends);
    }

    fn handle_not_leader(
        &mut self,
        index: usize,
        now: Tick,
        from: NodeId,
        leader_hint: Option<NodeId>,
        sends: &mut Vec<ClientSend>,
        notes: &mut Vec<ClientNote>,
    ) {
        // A hint naming the replying node itself, or no node at all, is no hint.
        let hint = leader_hint
            .filter(|&node| node != from && (1..=self.config.nodes_count).contains(&node));
        let Some(leader) = hint else {
            self.back_off(index, now, BackoffReason::NoLeader, from, notes);
            return;
        };
        if self.in_flight(index).redirects_chain >= REDIRECT_CHAIN_MAX {
            self.back_off(index, now, BackoffReason::RedirectLoop, from, notes);
            return;
        }
        let client = &mut self.clients[index];
        client.leader = Some(leader);
        let in_flight = client
            .in_flight
            .as_mut()
            .expect("redirect without a request");
        in_flight.target = leader;
        in_flight.redirects_chain += 1;
        self.stats.redirects_followed += 1;
        self.stats.retries += 1;
        let note = self.note_of(index, |client, client_id, seq, f| ClientNote::Redirect {
            client,
            client_id,
            seq,
            from,
            to: f.target,
        });
        notes.push(note);
        self.send(index, now, sends);
    }

    /// Waits `backoff_ticks` before resending: to the same node when it is merely overloaded,
    /// otherwise (no leader known) to a random node other than `from`.
    #[inline(never)]
    fn back_off(
        &mut self,
        index: usize,
        now: Tick,
        reason: BackoffReason,
        from: NodeId,
        notes: &mut Vec<ClientNote>,
    ) {
        let target = match reason {
            BackoffReason::Overloaded => {
                self.stats.overloaded_backoffs += 1;
                from
            }
            BackoffReason::NoLeader | BackoffReason::RedirectLoop => {
                self.stats.no_leader_backoffs += 1;
                self.clients[index].leader = None;
                self.random_other_node(from)
            }
        };
        let until_tick = now + self.config.backoff_ticks;
        let in_flight = self.clients[index]
            .in_flight
            .as_mut()
            .expect("backoff without a request");
        in_flight.target = target;
        in_flight.redirects_chain = 0;
        in_flight.wait = Wait::Backoff { until_tick };
        let note = self.note_of(index, |client, client_id, seq, f| ClientNote::Backoff {
            client,
            client_id,
            seq,
            reason,
            until_tick,
            to: f.target,
        });
        notes.push(note);
        self.rearm(index);
    }

    // ---- completion ----

    fn complete(
        &mut self,
        index: usize,
        now: Tick,
        from: NodeId,
        response: ClientResponse,
        notes: &mut Vec<ClientNote>,
    ) {
        let in_flight = self.clients[index]
            .in_flight
            .take()
            .expect("completion without a request");
        // The response itself becomes the client's last response; the note and the history
        // take a copy of its result each.
        let completion = match &response {
            ClientResponse::Ok { result } => Completion::Ok(result.clone()),
            ClientResponse::Duplicate {
                cached: Some(result),
            } => Completion::DuplicateCached(result.clone()),
            ClientResponse::Duplicate { cached: None } => Completion::DuplicateStale,
            ClientResponse::Gap { expected } => Completion::Gap {
                expected: *expected,
            },
            ClientResponse::SessionExpired => Completion::SessionExpired,
            ClientResponse::NotLeader { .. } | ClientResponse::Overloaded => {
                unreachable!("not a definite response")
            }
        };
        self.clients[index].last_response = Some(response);
        let outcome = match &completion {
            Completion::Ok(result) | Completion::DuplicateCached(result) => {
                self.stats.ops_ok += 1;
                self.learn(index, &in_flight.op, result);
                Outcome::Ok(result.clone())
            }
            Completion::DuplicateStale | Completion::SessionExpired => {
                self.stats.ops_info += 1;
                Outcome::Info
            }
            Completion::Gap { .. } => {
                self.stats.ops_fail += 1;
                Outcome::Fail
            }
        };
        match completion {
            Completion::DuplicateCached(_) | Completion::DuplicateStale => {
                self.stats.duplicates_seen += 1
            }
            Completion::Gap { .. } => self.stats.gaps_seen += 1,
            Completion::SessionExpired => self.stats.sessions_expired += 1,
            Completion::Ok(_) => {}
        }
        let entry = &mut self.history[in_flight.history_index];
        assert!(
            entry.complete_tick.is_none() && entry.invoke_tick <= now,
            "workload: c{} settled a history entry twice or before its invocation",
            index + 1
        );
        entry.complete_tick = Some(now);
        entry.outcome = outcome;
        self.pending_count -= 1;

        let client = &mut self.clients[index];
        // A definite answer comes from the node that leads (it applied or checked the request).
        client.leader = Some(from);
        // A scripted write number that may have been applied must never be reused.
        let maybe_applied = !matches!(
            completion,
            Completion::Gap { .. } | Completion::SessionExpired
        );
        if maybe_applied && !in_flight.op.is_read() && in_flight.seq < READ_SEQ_BASE {
            client.write_seq_next = client.write_seq_next.max(in_flight.seq + 1);
        }
        let expired = completion == Completion::SessionExpired;
        notes.push(ClientNote::Done {
            client: client.number,
            client_id: client.client_id,
            seq: in_flight.seq,
            completion,
        });
        if expired {
            self.renew(index, notes);
        }
        self.schedule_next_op(index, now);
    }

    /// Updates what client `index` knows of a key from a definite result.
    fn learn(&mut self, index: usize, op: &Arc<Op>, result: &OpResult) {
        let known = &mut self.clients[index].known_values;
        let value = match (&**op, result) {
            (Op::Get { .. }, OpResult::Value(value)) => Some(KnownValue::Read(value.clone())),
            (Op::Put { .. } | Op::Cas { .. }, OpResult::Ok) => {
                Some(KnownValue::Written(Arc::clone(op)))
            }
            (_, OpResult::CasMismatch { current }) => current.clone().map(KnownValue::Read),
            // Gets and deletes that found nothing, deletes that removed the key, and appends
            // (which leave a value this client never saw whole).
            _ => None,
        };
        let key = key_ref(op.key());
        match value {
            Some(value) => known.insert(key, value),
            None => known.remove(key),
        }
    }

    /// A fresh session for client `index` after its session expired. Out of line, like the
    /// other rare turns a request takes (timeouts, backoffs, ignored replies): sessions expire
    /// a few times per run, and inlined this would widen every completion's code.
    #[cold]
    #[inline(never)]
    fn renew(&mut self, index: usize, notes: &mut Vec<ClientNote>) {
        let new_client_id = self.session_id_next;
        self.session_id_next += 1;
        let client = &mut self.clients[index];
        let old_client_id = client.client_id;
        client.client_id = new_client_id;
        client.write_seq_next = 1;
        client.reads_count = 0;
        assert_eq!(
            usize::try_from(new_client_id).ok(),
            Some(self.sessions.len() + 1),
            "workload: session id c{new_client_id} out of order"
        );
        self.sessions.push(index);
        notes.push(ClientNote::Renew {
            client: client.number,
            old_client_id,
            new_client_id,
        });
    }

    fn schedule_next_op(&mut self, index: usize, now: Tick) {
        let ops_max = self.config.ops_per_client_max;
        let next_op_tick = if ops_max == 0 || self.clients[index].ops_count < ops_max {
            Some(now + self.draw_think_ticks())
        } else {
            None
        };
        self.clients[index].next_op_tick = next_op_tick;
        self.rearm(index);
    }

    /// Notes a reply the client does not act on (one in a few hundred).
    #[cold]
    #[inline(never)]
    fn ignore(
        &mut self,
        index: Option<usize>,
        from: NodeId,
        reply: Reply,
        reason: IgnoreReason,
        notes: &mut Vec<ClientNote>,
    ) {
        self.stats.replies_ignored += 1;
        notes.push(ClientNote::Ignored {
            client: index.map(|index| self.clients[index].number),
            client_id: reply.client,
            seq: reply.seq,
            from,
            response: reply.response,
            reason,
        });
    }

    fn in_flight(&self, index: usize) -> &InFlight {
        self.clients[index]
            .in_flight
            .as_ref()
            .expect("client has no request in flight")
    }

    /// Builds a note about client `index`'s in-flight request.
    fn note_of(
        &self,
        index: usize,
        build: impl FnOnce(u32, ClientId, Seq, &InFlight) -> ClientNote,
    ) -> ClientNote {
        let client = &self.clients[index];
        let in_flight = self.in_flight(index);
        build(client.number, client.client_id, in_flight.seq, in_flight)
    }

    // ---- random choices (all from the clients stream) ----

    fn draw_think_ticks(&mut self) -> Tick {
        self.rng
            .gen_range(self.config.think_ticks_min..=self.config.think_ticks_max)
    }

    fn random_node(&mut self) -> NodeId {
        self.rng.gen_range(1..=self.config.nodes_count)
    }

    /// A random node other than `exclude` (the only node, when there is just one).
    fn random_other_node(&mut self, exclude: NodeId) -> NodeId {
        let nodes_count = self.config.nodes_count;
        if nodes_count == 1 {
            return 1;
        }
        let node = self.rng.gen_range(1..nodes_count);
        if node >= exclude {
            node + 1
        } else {
            node
        }
    }

    fn draw_kind(&mut self) -> OpKind {
        let mix = self.config.mix;
        let mut draw = self.rng.gen_range(0..mix.total());
        for (weight, kind) in [
            (mix.get, OpKind::Get),
            (mix.put, OpKind::Put),
            (mix.append, OpKind::Append),
            (mix.cas, OpKind::Cas),
            (mix.delete, OpKind::Delete),
        ] {
            if draw < u64::from(weight) {
                return kind;
            }
            draw -= u64::from(weight);
        }
        unreachable!("draw below the total weight")
    }

    /// The `n`-th fresh value of client `index`: `K.n`, after `prefix` (`""` or `"/"`).
    /// Written digit by digit: `format!` cost more than the rest of generating an operation.
    fn fresh_value(&mut self, index: usize, prefix: &str) -> String {
        let client = &mut self.clients[index];
        client.values_count += 1;
        let mut value = String::with_capacity(VALUE_BYTES_FRESH_MAX);
        value.push_str(prefix);
        push_decimal(&mut value, u64::from(client.number));
        value.push('.');
        push_decimal(&mut value, client.values_count);
        assert!(value.len() - prefix.len() < VALUE_BYTES_FRESH_MAX);
        value
    }

    fn generate_op(&mut self, index: usize) -> Op {
        let kind = self.draw_kind();
        let number = self.rng.gen_range(0..self.config.keys_count);
        let mut key = String::with_capacity(KEY_BYTES_GENERATED_MAX);
        key.push('k');
        push_decimal(&mut key, u64::from(number));
        let slot = key_number_ref(number, &key);
        match kind {
            OpKind::Get => Op::Get { key },
            OpKind::Put => Op::Put {
                value: self.fresh_value(index, ""),
                key,
            },
            OpKind::Append => {
                let value = self.fresh_value(index, "/");
                let appended = self.append_bytes.get(slot).copied().unwrap_or(0);
                if appended + value.len() <= self.config.append_bytes_per_key_max {
                    Op::Append { key, value }
                } else {
                    // The key's append budget is spent: write instead, which keeps every value
                    // within its bound.
                    Op::Put {
                        value: value[1..].to_owned(),
                        key,
                    }
                }
            }
            OpKind::Cas => Op::Cas {
                expected: self.clients[index]
                    .known_values
                    .get(slot)
                    .map(|known| known.as_str().to_owned()),
                new: self.fresh_value(index, ""),
                key,
            },
            OpKind::Delete => Op::Delete { key },
        }
    }

    /// Checks the bookkeeping invariants (O(clients)); tests call it after every input.
    #[cfg(test)]
    fn assert_invariants(&self) {
        let pending = self
            .clients
            .iter()
            .filter(|c| c.in_flight.is_some())
            .count();
        assert_eq!(pending, self.pending_count);
        let timers = self
            .clients
            .iter()
            .filter(|c| c.timer_tick.is_some())
            .count();
        assert_eq!(timers, self.timers.len());
        for (index, client) in self.clients.iter().enumerate() {
            assert_eq!(client.timer_tick, self.timer_of(index));
            if let Some(tick) = client.timer_tick {
                assert!(self.timers.contains((tick, index)));
            }
            let session = usize::try_from(client.client_id).unwrap() - 1;
            assert_eq!(self.sessions.get(session), Some(&index));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use raftsim_protocol::dedup::{DedupCheck, DedupTable};
    use raftsim_protocol::kv::KvStore;
    use rand::SeedableRng;
    use std::collections::BTreeSet;

    fn rng(seed: u64) -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(seed)
    }

    fn put(key: &str, value: &str) -> Op {
        Op::Put {
            key: key.to_owned(),
            value: value.to_owned(),
        }
    }

    fn get(key: &str) -> Op {
        Op::Get {
            key: key.to_owned(),
        }
    }

    /// A tiny cluster: `leader` applies requests to a KV store through a real dedup table and
    /// answers; other nodes answer `NotLeader` with the leader as hint. Nodes in `down` drop
    /// requests; every `drop_replies_every`-th reply is lost after the request was applied.
    struct FakeCluster {
        leader: Option<NodeId>,
        down: BTreeSet<NodeId>,
        kv: KvStore,
        dedup: DedupTable,
        applied_index: u64,
        drop_replies_every: u64,
        replies_count: u64,
        delay_ticks: Tick,
        /// `(deliver_tick, from, reply)` in send order.
        in_transit: Vec<(Tick, NodeId, Reply)>,
        /// Every request that reached a node: `(node, request)`.
        received: Vec<(NodeId, ClientRequest)>,
        /// Writes applied: `(client_id, seq)`.
        applied: Vec<(ClientId, Seq)>,
        /// Every operation applied or read, with its result, in order.
        results: Vec<(Op, OpResult)>,
    }

    impl FakeCluster {
        fn new(leader: NodeId) -> Self {
            FakeCluster {
                leader: Some(leader),
                down: BTreeSet::new(),
                kv: KvStore::new(),
                dedup: DedupTable::new(1000),
                applied_index: 0,
                drop_replies_every: 0,
                replies_count: 0,
                delay_ticks: 2,
                in_transit: Vec::new(),
                received: Vec::new(),
                applied: Vec::new(),
                results: Vec::new(),
            }
        }

        fn deliver(&mut self, now: Tick, to: NodeId, request: ClientRequest) {
            self.received.push((to, request.clone()));
            if self.down.contains(&to) {
                return;
            }
            let response = self.respond(to, &request);
            self.replies_count += 1;
            if self.replies_count.checked_rem(self.drop_replies_every) == Some(0) {
                return;
            }
            let reply = Reply {
                client: request.client,
                seq: request.seq,
                response,
            };
            self.in_transit.push((now + self.delay_ticks, to, reply));
        }

        fn respond(&mut self, to: NodeId, request: &ClientRequest) -> ClientResponse {
            if self.leader != Some(to) {
                return ClientResponse::NotLeader {
                    leader_hint: self.leader,
                };
            }
            if request.op.is_read() {
                let result = self.kv.apply(&request.op);
                self.results.push(((*request.op).clone(), result.clone()));
                return ClientResponse::Ok { result };
            }
            match self.dedup.check(request.client, request.seq) {
                DedupCheck::Apply => {
                    self.applied_index += 1;
                    let result = self.kv.apply(&request.op);
                    self.dedup.record(
                        request.client,
                        request.seq,
                        result.clone(),
                        self.applied_index,
                    );
                    self.applied.push((request.client, request.seq));
                    self.results.push(((*request.op).clone(), result.clone()));
                    ClientResponse::Ok { result }
                }
                DedupCheck::Duplicate { cached } => ClientResponse::Duplicate {
                    cached: Some(cached),
                },
                DedupCheck::Stale { .. } => ClientResponse::Duplicate { cached: None },
                DedupCheck::Gap { expected } => ClientResponse::Gap { expected },
                DedupCheck::SessionExpired => ClientResponse::SessionExpired,
            }
        }

        fn take_due(&mut self, now: Tick) -> Vec<(NodeId, Reply)> {
            let (due, later): (Vec<_>, Vec<_>) = self
                .in_transit
                .drain(..)
                .partition(|(tick, _, _)| *tick <= now);
            self.in_transit = later;
            due.into_iter()
                .map(|(_, from, reply)| (from, reply))
                .collect()
        }
    }

    /// Drives `workload` against `cluster` one tick at a time over `from..until`; returns the
    /// notes as trace lines prefixed with their tick.
    fn run(
        workload: &mut Workload,
        cluster: &mut FakeCluster,
        from: Tick,
        until: Tick,
    ) -> Vec<String> {
        let mut lines = Vec::new();
        let mut sends = Vec::new();
        let mut notes = Vec::new();
        for now in from..until {
            for (node, reply) in cluster.take_due(now) {
                workload.handle_reply(now, node, reply, &mut sends, &mut notes);
                workload.assert_invariants();
            }
            if workload.next_deadline_tick().is_some_and(|t| t <= now) {
                workload.handle_tick(now, &mut sends, &mut notes);
                workload.assert_invariants();
            }
            for send in sends.drain(..) {
                cluster.deliver(now, send.to, send.request);
            }
            lines.extend(notes.drain(..).map(|note| format!("t={now} {note}")));
        }
        lines
    }

    fn render(history: &[HistoryOp]) -> Vec<String> {
        history
            .iter()
            .map(|h| {
                let outcome = match &h.outcome {
                    Outcome::Ok(result) => format!("ok {result}"),
                    Outcome::Fail => "fail".to_owned(),
                    Outcome::Info => "info".to_owned(),
                };
                format!(
                    "c{} {} {}..{:?} {outcome}",
                    h.client, h.op, h.invoke_tick, h.complete_tick
                )
            })
            .collect()
    }

    fn config(clients_count: u32, ops_per_client_max: u64) -> WorkloadConfig {
        WorkloadConfig {
            clients_count,
            ops_per_client_max,
            request_timeout_ticks: 40,
            backoff_ticks: 10,
            ..WorkloadConfig::default()
        }
    }

    /// One request by hand: returns the sends and notes it produced.
    fn submit(
        workload: &mut Workload,
        now: Tick,
        client: u32,
        op: Op,
        seq: Option<Seq>,
        to: Option<NodeId>,
    ) -> (Vec<ClientSend>, Vec<ClientNote>) {
        let (mut sends, mut notes) = (Vec::new(), Vec::new());
        workload
            .submit(now, client, op, seq, to, &mut sends, &mut notes)
            .expect("submit");
        (sends, notes)
    }

    fn reply(
        workload: &mut Workload,
        now: Tick,
        from: NodeId,
        client: ClientId,
        seq: Seq,
        response: ClientResponse,
    ) -> (Vec<ClientSend>, Vec<String>) {
        let (mut sends, mut notes) = (Vec::new(), Vec::new());
        let reply = Reply {
            client,
            seq,
            response,
        };
        workload.handle_reply(now, from, reply, &mut sends, &mut notes);
        workload.assert_invariants();
        (sends, notes.iter().map(ToString::to_string).collect())
    }

    fn tick(workload: &mut Workload, now: Tick) -> (Vec<ClientSend>, Vec<String>) {
        let (mut sends, mut notes) = (Vec::new(), Vec::new());
        workload.handle_tick(now, &mut sends, &mut notes);
        workload.assert_invariants();
        (sends, notes.iter().map(ToString::to_string).collect())
    }

    /// A workload whose clients do nothing on their own.
    fn scripted(clients_count: u32) -> Workload {
        let mut workload = Workload::new(config(clients_count, 0), rng(1), 0);
        workload.set_generating(false);
        assert_eq!(workload.next_deadline_tick(), None);
        workload
    }

    #[test]
    fn every_op_completes_and_the_history_is_well_formed() {
        let mut workload = Workload::new(config(3, 40), rng(7), 0);
        let mut cluster = FakeCluster::new(2);
        cluster.drop_replies_every = 7;
        let lines = run(&mut workload, &mut cluster, 0, 20_000);

        assert_eq!(workload.pending_count(), 0);
        assert_eq!(
            workload.next_deadline_tick(),
            None,
            "every client hit its limit"
        );
        let history = workload.history();
        assert_eq!(history.len(), 120);
        let stats = workload.stats().clone();
        assert_eq!(stats.ops_invoked, 120);
        assert_eq!(stats.ops_ok, 120, "{stats:?}");
        assert!(
            stats.timeouts > 0 && stats.retries >= stats.timeouts,
            "{stats:?}"
        );
        assert!(
            stats.duplicates_seen > 0,
            "lost replies are answered from the cache"
        );
        assert!(stats.redirects_followed > 0, "{stats:?}");
        assert!(lines
            .iter()
            .any(|l| l.contains(" done ") && l.ends_with(" duplicate")));

        // Each client has one operation at a time: its invocations follow its completions.
        for client in 1..=3 {
            let ops: Vec<&HistoryOp> = history.iter().filter(|h| h.client == client).collect();
            assert_eq!(ops.len(), 40);
            for pair in ops.windows(2) {
                let complete = pair[0].complete_tick.expect("completed");
                assert!(pair[0].invoke_tick <= complete);
                assert!(complete < pair[1].invoke_tick, "think time is at least 5");
            }
        }
        // Invocation order.
        assert!(history
            .windows(2)
            .all(|p| p[0].invoke_tick <= p[1].invoke_tick));

        // Writes are numbered 1, 2, 3, ... per client id, applied exactly once, in order.
        for client_id in 1..=3u64 {
            let mut first_sent: Vec<Seq> = Vec::new();
            for (_, request) in &cluster.received {
                if request.client == client_id
                    && !request.op.is_read()
                    && !first_sent.contains(&request.seq)
                {
                    first_sent.push(request.seq);
                }
            }
            let writes = history
                .iter()
                .filter(|h| h.client == client_id && !h.op.is_read())
                .count() as u64;
            assert_eq!(first_sent, (1..=writes).collect::<Vec<_>>());
            let applied: Vec<Seq> = cluster
                .applied
                .iter()
                .filter(|(c, _)| *c == client_id)
                .map(|(_, s)| *s)
                .collect();
            assert_eq!(applied, first_sent, "exactly once, in order");
        }
        // Reads carry unique numbers above READ_SEQ_BASE.
        let reads: Vec<&ClientRequest> = cluster
            .received
            .iter()
            .map(|(_, r)| r)
            .filter(|r| r.op.is_read())
            .collect();
        assert!(!reads.is_empty());
        assert!(reads.iter().all(|r| r.seq > READ_SEQ_BASE));
    }

    #[test]
    fn results_in_the_history_are_the_clusters() {
        let mut workload = Workload::new(config(4, 25), rng(3), 0);
        let mut cluster = FakeCluster::new(1);
        cluster.drop_replies_every = 4;
        run(&mut workload, &mut cluster, 0, 20_000);
        assert_eq!(workload.pending_count(), 0);
        // Every (op, result) the history reports is one the cluster produced, once each
        // (fresh values make writes unique; lost replies come back as cached duplicates).
        let mut produced: Vec<(Op, OpResult)> = cluster.results.clone();
        let mut cas_ok = 0;
        for h in workload.history() {
            let Outcome::Ok(result) = &h.outcome else {
                panic!("a single leader settles every op as ok: {}", h.op);
            };
            let position = produced
                .iter()
                .position(|(op, r)| *op == *h.op && r == result)
                .unwrap_or_else(|| panic!("{} -> {result} was never produced", h.op));
            produced.swap_remove(position);
            if matches!(*h.op, Op::Cas { .. }) && *result == OpResult::Ok {
                cas_ok += 1;
            }
        }
        // Left over: only reads whose reply was lost, served again on retry (reads are not
        // deduplicated). Every write applied reached the history.
        assert!(produced.iter().all(|(op, _)| op.is_read()), "{produced:?}");
        assert!(cas_ok > 0, "cas expectations come from what clients saw");
    }

    #[test]
    fn redirects_are_followed_and_the_leader_remembered() {
        let mut workload = scripted(1);
        let mut cluster = FakeCluster::new(2);
        let mut sends = Vec::new();
        let mut notes = Vec::new();
        workload
            .submit(0, 1, put("k0", "a"), None, Some(3), &mut sends, &mut notes)
            .unwrap();
        for send in sends.drain(..) {
            cluster.deliver(0, send.to, send.request);
        }
        let mut lines: Vec<String> = notes.drain(..).map(|n| n.to_string()).collect();
        lines.extend(run(&mut workload, &mut cluster, 1, 20));
        assert_eq!(
            lines,
            [
                "c1 invoke c1#1 Put k=k0 v=a -> n3",
                "t=2 c1 redirect c1#1 -> n2",
                "t=4 c1 done c1#1 ok",
            ]
        );
        assert_eq!(workload.stats().redirects_followed, 1);
        assert_eq!(workload.stats().retries, 1);
        // The next request goes straight to the leader.
        let (sends, notes) = submit(&mut workload, 20, 1, get("k0"), None, None);
        assert_eq!(sends[0].to, 2);
        assert_eq!(sends[0].request.seq, READ_SEQ_BASE + 1);
        assert_eq!(notes[0].to_string(), "c1 invoke c1#r1 Get k=k0 -> n2");
    }

    #[test]
    fn a_redirect_loop_is_cut_by_a_backoff() {
        let mut workload = scripted(1);
        let (sends, _) = submit(&mut workload, 0, 1, put("k0", "a"), None, Some(1));
        assert_eq!(sends[0].to, 1);
        let mut from = 1;
        for step in 0..REDIRECT_CHAIN_MAX {
            let hint = if from == 1 { 2 } else { 1 };
            let (sends, notes) = reply(
                &mut workload,
                1 + u64::from(step),
                from,
                1,
                1,
                not_leader(Some(hint)),
            );
            assert_eq!(sends.len(), 1);
            assert_eq!(sends[0].to, hint);
            assert_eq!(notes, [format!("c1 redirect c1#1 -> n{hint}")]);
            from = hint;
        }
        let (sends, notes) = reply(&mut workload, 9, from, 1, 1, not_leader(Some(3 - from)));
        assert!(sends.is_empty());
        assert!(notes[0].starts_with("c1 backoff c1#1 redirect-loop until=19 next=n"));
        assert_eq!(workload.stats().no_leader_backoffs, 1);
        assert_eq!(workload.next_deadline_tick(), Some(19));
    }

    fn not_leader(leader_hint: Option<NodeId>) -> ClientResponse {
        ClientResponse::NotLeader { leader_hint }
    }

    #[test]
    fn a_timeout_retries_the_same_request_at_another_node() {
        let mut workload = scripted(2);
        let mut cluster = FakeCluster::new(2);
        cluster.down.insert(3);
        let (sends, _) = submit(&mut workload, 0, 2, put("k1", "x"), None, Some(3));
        for send in sends {
            cluster.deliver(0, send.to, send.request);
        }
        let lines = run(&mut workload, &mut cluster, 1, 200);
        assert!(
            lines[0].starts_with("t=40 c2 timeout c2#1 retry -> n"),
            "{lines:?}"
        );
        assert!(
            lines.last().unwrap().ends_with("c2 done c2#1 ok"),
            "{lines:?}"
        );
        // The retry carries the same (client_id, seq) and goes to a different node.
        assert!(cluster.received.len() >= 2);
        let (first_node, first) = &cluster.received[0];
        let (second_node, second) = &cluster.received[1];
        assert_eq!(*first_node, 3);
        assert_ne!(second_node, first_node);
        assert_eq!((second.client, second.seq), (first.client, first.seq));
        assert_eq!(second.op, first.op);
        assert_eq!(workload.stats().timeouts, 1);
        assert_eq!(cluster.applied, [(2, 1)]);
    }

    #[test]
    fn no_leader_backs_off_then_tries_another_node_and_overloaded_the_same() {
        let mut workload = scripted(1);
        submit(&mut workload, 0, 1, put("k0", "a"), None, Some(2));
        let (sends, notes) = reply(&mut workload, 3, 2, 1, 1, not_leader(None));
        assert!(sends.is_empty());
        assert_eq!(notes.len(), 1);
        assert!(notes[0].starts_with("c1 backoff c1#1 no-leader until=13 next=n"));
        assert!(!notes[0].ends_with("next=n2"), "another node");
        assert_eq!(workload.next_deadline_tick(), Some(13));
        let (sends, _) = tick(&mut workload, 12);
        assert!(sends.is_empty(), "still backing off");
        let (sends, notes) = tick(&mut workload, 13);
        assert_eq!(sends.len(), 1);
        let target = sends[0].to;
        assert_ne!(target, 2);
        assert_eq!((sends[0].request.client, sends[0].request.seq), (1, 1));
        assert_eq!(notes, [format!("c1 retry c1#1 -> n{target}")]);

        // Overloaded: back off, then the same node.
        let (_, notes) = reply(&mut workload, 15, target, 1, 1, ClientResponse::Overloaded);
        assert_eq!(
            notes,
            [format!(
                "c1 backoff c1#1 overloaded until=25 next=n{target}"
            )]
        );
        let (sends, _) = tick(&mut workload, 25);
        assert_eq!(sends[0].to, target);
        let stats = workload.stats();
        assert_eq!(
            (
                stats.no_leader_backoffs,
                stats.overloaded_backoffs,
                stats.retries
            ),
            (1, 1, 2)
        );
        assert_eq!(workload.last_response(1), Some(&ClientResponse::Overloaded));
    }

    #[test]
    fn a_self_hint_counts_as_no_leader() {
        let mut workload = scripted(1);
        submit(&mut workload, 0, 1, put("k0", "a"), None, Some(2));
        let (_, notes) = reply(&mut workload, 1, 2, 1, 1, not_leader(Some(2)));
        assert!(
            notes[0].starts_with("c1 backoff c1#1 no-leader"),
            "{notes:?}"
        );
    }

    #[test]
    fn duplicate_with_a_cached_result_completes_ok_and_a_stale_one_as_info() {
        let mut workload = scripted(1);
        submit(&mut workload, 0, 1, put("k0", "a"), None, Some(1));
        reply(
            &mut workload,
            2,
            1,
            1,
            1,
            ClientResponse::Ok {
                result: OpResult::Ok,
            },
        );
        // A scripted retry of seq 1: the cluster answers from its cache.
        let (sends, _) = submit(&mut workload, 5, 1, put("k0", "a"), Some(1), Some(1));
        assert_eq!(sends[0].request.seq, 1);
        let cached = ClientResponse::Duplicate {
            cached: Some(OpResult::Ok),
        };
        let (_, notes) = reply(&mut workload, 7, 1, 1, 1, cached.clone());
        assert_eq!(notes, ["c1 done c1#1 ok duplicate"]);
        assert_eq!(workload.last_response(1), Some(&cached));
        assert!(matches!(
            workload.history()[1].outcome,
            Outcome::Ok(OpResult::Ok)
        ));
        // The client's own numbering continues at 2, and seq 1 again is stale.
        let (sends, _) = submit(&mut workload, 8, 1, put("k0", "b"), None, None);
        assert_eq!(sends[0].request.seq, 2);
        reply(
            &mut workload,
            9,
            1,
            1,
            2,
            ClientResponse::Ok {
                result: OpResult::Ok,
            },
        );
        submit(&mut workload, 10, 1, put("k0", "a"), Some(1), None);
        let stale = ClientResponse::Duplicate { cached: None };
        let (_, notes) = reply(&mut workload, 11, 1, 1, 1, stale);
        assert_eq!(notes, ["c1 done c1#1 info duplicate-stale"]);
        assert!(matches!(workload.history()[3].outcome, Outcome::Info));
        assert_eq!(workload.history()[3].complete_tick, Some(11));
        assert_eq!(workload.stats().duplicates_seen, 2);
    }

    #[test]
    fn a_gap_fails_and_leaves_the_numbering_alone() {
        let mut workload = scripted(1);
        let mut cluster = FakeCluster::new(1);
        let mut sends = Vec::new();
        let mut notes = Vec::new();
        let mut lines = Vec::new();
        for (now, seq) in [(0, None), (10, Some(5)), (20, None)] {
            workload
                .submit(now, 1, put("k0", "v"), seq, Some(1), &mut sends, &mut notes)
                .unwrap();
            for send in sends.drain(..) {
                cluster.deliver(now, send.to, send.request);
            }
            lines.extend(notes.drain(..).map(|n| format!("t={now} {n}")));
            lines.extend(run(&mut workload, &mut cluster, now + 1, now + 10));
        }
        assert_eq!(
            lines,
            [
                "t=0 c1 invoke c1#1 Put k=k0 v=v -> n1",
                "t=2 c1 done c1#1 ok",
                "t=10 c1 invoke c1#5 Put k=k0 v=v -> n1",
                "t=12 c1 done c1#5 fail gap expected=2",
                "t=20 c1 invoke c1#2 Put k=k0 v=v -> n1",
                "t=22 c1 done c1#2 ok",
            ]
        );
        assert!(matches!(workload.history()[1].outcome, Outcome::Fail));
        assert_eq!(workload.stats().gaps_seen, 1);
        assert_eq!(workload.stats().ops_fail, 1);
    }

    #[test]
    fn session_expired_is_info_and_renews_the_session() {
        let mut workload = scripted(2);
        let mut cluster = FakeCluster::new(1);
        // A write numbered 3 from a client the cluster never saw: its session is unknown.
        let (sends, _) = submit(&mut workload, 0, 1, put("k0", "a"), Some(3), Some(1));
        for send in sends {
            cluster.deliver(0, send.to, send.request);
        }
        let lines = run(&mut workload, &mut cluster, 1, 10);
        assert_eq!(
            lines,
            [
                "t=2 c1 done c1#3 info session-expired",
                "t=2 c1 renew c1 -> c3"
            ]
        );
        assert!(matches!(workload.history()[0].outcome, Outcome::Info));
        assert_eq!(workload.history()[0].complete_tick, Some(2));
        assert_eq!(workload.client_id(1), Some(3));
        assert_eq!(workload.stats().sessions_expired, 1);

        // The next write uses the new id and starts again at 1; the history keeps client 1.
        let (sends, notes) = submit(&mut workload, 10, 1, put("k0", "b"), None, None);
        assert_eq!(notes[0].to_string(), "c1 invoke c3#1 Put k=k0 v=b -> n1");
        assert_eq!((sends[0].request.client, sends[0].request.seq), (3, 1));
        for send in sends {
            cluster.deliver(10, send.to, send.request);
        }
        let lines = run(&mut workload, &mut cluster, 11, 20);
        assert_eq!(lines, ["t=12 c1 done c3#1 ok"]);
        assert_eq!(workload.history()[1].client, 1);
        assert_eq!(cluster.applied, [(3, 1)]);

        // A second renewal (client 2) takes the next id; a late reply to an old session is
        // routed to its client and ignored.
        submit(&mut workload, 20, 2, put("k1", "c"), Some(9), Some(1));
        let (_, notes) = reply(&mut workload, 21, 1, 2, 9, ClientResponse::SessionExpired);
        assert_eq!(notes[1], "c2 renew c2 -> c4");
        let (_, notes) = reply(&mut workload, 22, 1, 1, 3, ClientResponse::SessionExpired);
        assert_eq!(notes, ["c1 ignore c1#3 from=n1 stale SessionExpired"]);
        let (_, notes) = reply(&mut workload, 22, 1, 77, 1, ClientResponse::Overloaded);
        assert_eq!(notes, ["c? ignore c77#1 from=n1 unknown-client Overloaded"]);
        assert_eq!(workload.stats().replies_ignored, 2);
    }

    #[test]
    fn late_and_duplicated_replies_are_ignored() {
        let mut workload = scripted(1);
        submit(&mut workload, 0, 1, put("k0", "a"), None, Some(1));
        // Timeout: the retry goes elsewhere, so a late NotLeader from n1 is not awaited.
        let (sends, _) = tick(&mut workload, 40);
        let retry_node = sends[0].to;
        assert_ne!(retry_node, 1);
        let (sends, notes) = reply(&mut workload, 41, 1, 1, 1, not_leader(Some(2)));
        assert!(sends.is_empty());
        assert_eq!(
            notes,
            ["c1 ignore c1#1 from=n1 not-awaited NotLeader hint=n2"]
        );
        // But a definite answer counts from any node, and its duplicate is stale.
        let ok = ClientResponse::Ok {
            result: OpResult::Ok,
        };
        let (_, notes) = reply(&mut workload, 42, 1, 1, 1, ok.clone());
        assert_eq!(notes, ["c1 done c1#1 ok"]);
        let (_, notes) = reply(&mut workload, 43, retry_node, 1, 1, ok);
        assert_eq!(
            notes,
            [format!("c1 ignore c1#1 from=n{retry_node} stale Ok ok")]
        );
        assert_eq!(workload.pending_count(), 0);
        assert_eq!(workload.stats().ops_ok, 1);
    }

    #[test]
    fn submit_uses_the_explicit_seq_and_target_and_refuses_a_busy_client() {
        let mut workload = scripted(2);
        let (sends, notes) = submit(&mut workload, 0, 2, put("k3", "z"), Some(7), Some(3));
        assert_eq!(
            sends,
            [ClientSend {
                to: 3,
                request: ClientRequest {
                    client: 2,
                    seq: 7,
                    op: put("k3", "z").into(),
                    timestamp: 0,
                }
            }]
        );
        assert_eq!(notes[0].to_string(), "c2 invoke c2#7 Put k=k3 v=z -> n3");
        assert_eq!(workload.pending_count(), 1);
        assert_eq!(workload.next_deadline_tick(), Some(40));

        let (mut sends, mut notes) = (Vec::new(), Vec::new());
        let mut try_submit =
            |client, to| workload.submit(1, client, get("k0"), None, to, &mut sends, &mut notes);
        assert_eq!(
            try_submit(2, None),
            Err(WorkloadError::ClientBusy { client: 2 })
        );
        assert_eq!(
            try_submit(3, None),
            Err(WorkloadError::UnknownClient {
                client: 3,
                clients_count: 2
            })
        );
        assert_eq!(
            try_submit(0, None),
            Err(WorkloadError::UnknownClient {
                client: 0,
                clients_count: 2
            })
        );
        assert_eq!(
            try_submit(1, Some(4)),
            Err(WorkloadError::UnknownNode {
                node: 4,
                nodes_count: 3
            })
        );
        assert!(sends.is_empty() && notes.is_empty());
        assert_eq!(workload.history().len(), 1);
    }

    #[test]
    fn finish_records_pending_ops_as_info() {
        let mut workload = Workload::new(config(3, 0), rng(5), 0);
        let mut cluster = FakeCluster::new(1);
        cluster.down.extend([1, 2, 3]);
        run(&mut workload, &mut cluster, 0, 500);
        assert_eq!(workload.pending_count(), 3, "nothing ever answers");
        assert!(workload.stats().timeouts > 3, "and clients keep retrying");
        workload.finish(500);
        assert_eq!(workload.pending_count(), 0);
        assert_eq!(workload.next_deadline_tick(), None);
        assert_eq!(workload.history().len(), 3);
        for h in workload.history() {
            assert!(matches!(h.outcome, Outcome::Info));
            assert_eq!(h.complete_tick, None);
        }
        assert_eq!(workload.stats().ops_info, 3);
        let (mut sends, mut notes) = (Vec::new(), Vec::new());
        let refused = workload.submit(501, 1, get("k0"), None, None, &mut sends, &mut notes);
        assert_eq!(refused, Err(WorkloadError::Finished));
        // A late reply after the end is merely ignored.
        workload.handle_reply(
            502,
            1,
            Reply {
                client: 1,
                seq: 1,
                response: ClientResponse::Ok {
                    result: OpResult::Ok,
                },
            },
            &mut sends,
            &mut notes,
        );
        assert_eq!(
            workload
                .history()
                .iter()
                .filter(|h| h.complete_tick.is_some())
                .count(),
            0
        );
    }

    fn full_run(seed: u64) -> (Vec<String>, Vec<String>) {
        let mut workload = Workload::new(config(4, 30), rng(seed), 0);
        let mut cluster = FakeCluster::new(3);
        cluster.drop_replies_every = 5;
        let lines = run(&mut workload, &mut cluster, 0, 20_000);
        assert_eq!(workload.pending_count(), 0);
        (lines, render(workload.history()))
    }

    #[test]
    fn same_seed_same_run_different_seed_different_run() {
        let (lines_a, history_a) = full_run(11);
        let (lines_b, history_b) = full_run(11);
        assert_eq!(lines_a, lines_b);
        assert_eq!(history_a, history_b);
        let (lines_c, history_c) = full_run(12);
        assert_ne!(history_a, history_c);
        assert_ne!(lines_a, lines_c);
    }

    #[test]
    fn without_generation_only_pending_ops_finish() {
        let mut workload = Workload::new(config(3, 0), rng(9), 0);
        let mut cluster = FakeCluster::new(2);
        cluster.drop_replies_every = 3;
        run(&mut workload, &mut cluster, 0, 300);
        let invoked = workload.stats().ops_invoked;
        assert!(invoked > 3);
        workload.set_generating(false);
        assert!(!workload.is_generating());
        let pending = workload.pending_count();
        run(&mut workload, &mut cluster, 300, 2_000);
        assert_eq!(workload.pending_count(), 0, "pending ops finish");
        assert_eq!(
            workload.stats().ops_invoked,
            invoked,
            "no new op ({pending} were pending)"
        );
        assert_eq!(workload.next_deadline_tick(), None);
        run(&mut workload, &mut cluster, 2_000, 5_000);
        assert_eq!(workload.stats().ops_invoked, invoked);

        // Generation resumes where it left off.
        workload.set_generating(true);
        assert_eq!(
            workload.next_deadline_tick().map(|t| t <= 5_000),
            Some(true)
        );
        run(&mut workload, &mut cluster, 5_000, 5_100);
        assert!(workload.stats().ops_invoked > invoked);
    }

    #[test]
    fn a_request_number_names_one_operation_even_with_gaps() {
        let mut cfg = config(2, 300);
        cfg.gap_probability = 0.3;
        let mut workload = Workload::new(cfg, rng(5), 0);
        let mut cluster = FakeCluster::new(1);
        cluster.drop_replies_every = 5;
        run(&mut workload, &mut cluster, 0, 60_000);
        // Every request that reached a node, retries included: one operation per number.
        let mut ops: BTreeMap<(ClientId, Seq), Op> = BTreeMap::new();
        let mut gaps = 0;
        for (_, request) in &cluster.received {
            if (GAP_SEQ_BASE..READ_SEQ_BASE).contains(&request.seq) {
                gaps += 1;
            }
            let previous = ops.insert((request.client, request.seq), (*request.op).clone());
            if let Some(previous) = previous {
                assert_eq!(
                    previous,
                    *request.op,
                    "{} names two operations",
                    request_label(request.client, request.seq)
                );
            }
        }
        assert!(gaps > 20, "only {gaps} gap requests");
        assert!(workload.stats().gaps_seen > 20);
    }

    #[test]
    fn generated_ops_follow_the_mix_and_values_are_unique() {
        let mut workload = Workload::new(config(2, 200), rng(21), 0);
        let mut cluster = FakeCluster::new(1);
        run(&mut workload, &mut cluster, 0, 40_000);
        let history = workload.history();
        assert_eq!(history.len(), 400);
        let count = |name: &str| history.iter().filter(|h| h.op.name() == name).count();
        // Weights 30/30/20/15/5 of 400: loose bounds that still catch a wrong mapping.
        assert!((80..160).contains(&count("get")), "{}", count("get"));
        assert!((80..160).contains(&count("put")));
        assert!((40..120).contains(&count("append")));
        assert!((30..90).contains(&count("cas")));
        assert!((2..45).contains(&count("delete")));
        assert!(history.iter().all(|h| {
            let key = h.op.key();
            key.starts_with('k') && key[1..].parse::<u32>().is_ok_and(|k| k < 5)
        }));
        let mut values = BTreeSet::new();
        for h in history {
            let value = match &*h.op {
                Op::Put { value, .. } => value.clone(),
                Op::Append { value, .. } => value.trim_start_matches('/').to_owned(),
                Op::Cas { new, .. } => new.clone(),
                _ => continue,
            };
            let (client, n) = value.split_once('.').expect("K.n");
            assert_eq!(client.parse::<u64>().ok(), Some(h.client));
            assert!(n.parse::<u64>().is_ok());
            assert!(values.insert(value.clone()), "value {value} minted twice");
        }
    }

    #[test]
    fn appends_stay_within_the_per_key_budget() {
        let workload_config = WorkloadConfig {
            keys_count: 1,
            mix: OpMix {
                get: 0,
                put: 0,
                append: 1,
                cas: 0,
                delete: 0,
            },
            append_bytes_per_key_max: 20,
            ..config(1, 10)
        };
        let mut workload = Workload::new(workload_config, rng(2), 0);
        let mut cluster = FakeCluster::new(1);
        run(&mut workload, &mut cluster, 0, 5_000);
        let names: Vec<&str> = workload.history().iter().map(|h| h.op.name()).collect();
        // "/1.1" .. "/1.5" are 4 bytes each: five fit in 20, then puts.
        assert_eq!(
            names,
            ["append", "append", "append", "append", "append", "put", "put", "put", "put", "put"]
        );
        assert_eq!(cluster.kv.get("k0"), Some("1.10"));
    }

    #[test]
    fn cas_expects_what_the_client_last_saw() {
        let mut workload = Workload::new(
            WorkloadConfig {
                keys_count: 1,
                mix: OpMix {
                    get: 1,
                    put: 1,
                    append: 0,
                    cas: 2,
                    delete: 0,
                },
                ..config(1, 60)
            },
            rng(4),
            0,
        );
        let mut cluster = FakeCluster::new(1);
        run(&mut workload, &mut cluster, 0, 10_000);
        // One client alone on one key: it always knows the value, so every cas succeeds.
        let mut cas_count = 0;
        for h in workload.history() {
            if let Op::Cas { .. } = *h.op {
                cas_count += 1;
                assert!(matches!(h.outcome, Outcome::Ok(OpResult::Ok)), "{}", h.op);
            }
        }
        assert!(cas_count > 10);
    }

    #[test]
    fn first_ops_are_due_after_a_think_time() {
        let workload = Workload::new(config(5, 0), rng(8), 100);
        let deadline = workload.next_deadline_tick().unwrap();
        assert!((105..=150).contains(&deadline));
        assert_eq!(workload.timers.len(), 5);
        assert_eq!(workload.pending_count(), 0);
    }

    #[test]
    fn configs_out_of_bounds_are_rejected() {
        let ok = WorkloadConfig::default();
        assert_eq!(ok.validate(), Ok(()));
        let bad = [
            WorkloadConfig {
                clients_count: 0,
                ..ok.clone()
            },
            WorkloadConfig {
                clients_count: CLIENTS_COUNT_MAX + 1,
                ..ok.clone()
            },
            WorkloadConfig {
                nodes_count: 0,
                ..ok.clone()
            },
            WorkloadConfig {
                keys_count: 0,
                ..ok.clone()
            },
            WorkloadConfig {
                mix: OpMix {
                    get: 0,
                    put: 0,
                    append: 0,
                    cas: 0,
                    delete: 0,
                },
                ..ok.clone()
            },
            WorkloadConfig {
                think_ticks_min: 9,
                think_ticks_max: 8,
                ..ok.clone()
            },
            WorkloadConfig {
                request_timeout_ticks: 0,
                ..ok.clone()
            },
            WorkloadConfig {
                backoff_ticks: 0,
                ..ok.clone()
            },
            WorkloadConfig {
                append_bytes_per_key_max: VALUE_BYTES_MAX,
                ..ok.clone()
            },
        ];
        for config in bad {
            assert!(
                matches!(config.validate(), Err(WorkloadError::InvalidConfig { .. })),
                "{config:?}"
            );
        }
    }

    #[test]
    #[should_panic(expected = "time went backwards")]
    fn time_never_goes_backwards() {
        let mut workload = scripted(1);
        submit(&mut workload, 10, 1, get("k0"), None, None);
        tick(&mut workload, 9);
    }

    #[test]
    fn timers_agree_with_an_ordered_set() {
        let mut rng = rng(3);
        for clients in [1, 2, 3, 5, 8, 33] {
            let mut timers = Timers::new(clients);
            let mut set: BTreeSet<(Tick, usize)> = BTreeSet::new();
            let mut ticks: Vec<Option<Tick>> = vec![None; clients];
            for _ in 0..2_000 {
                let index = rng.gen_range(0..clients);
                // Few distinct ticks, so ties between clients are common.
                let tick = rng.gen_bool(0.8).then(|| rng.gen_range(0..12));
                if let Some(old) = ticks[index] {
                    set.remove(&(old, index));
                }
                if let Some(tick) = tick {
                    set.insert((tick, index));
                }
                ticks[index] = tick;
                timers.set(index, tick);
                assert_eq!(timers.first(), set.first().copied());
                assert_eq!(timers.len(), set.len());
                assert!(set.iter().all(|&entry| timers.contains(entry)));
            }
        }
    }

    #[test]
    fn keys_have_one_place_whether_generated_or_scripted() {
        assert_eq!(key_ref("k0"), KeyRef::Numbered(0));
        assert_eq!(key_ref("k7"), KeyRef::Numbered(7));
        assert_eq!(key_ref("k255"), KeyRef::Numbered(255));
        for named in [
            "k256", "k01", "k00", "k", "k-1", "k1a", "x1", "", "K1", "k1000",
        ] {
            assert_eq!(key_ref(named), KeyRef::Named(named), "{named}");
        }
        for number in [0, 9, 10, 255, 256, 1_000, 1_048_575] {
            let key = format!("k{number}");
            assert_eq!(key_number_ref(number, &key), key_ref(&key), "{key}");
        }
        let mut table = KeyTable::default();
        table.insert(key_ref("k3"), 1);
        table.insert(key_ref("k03"), 2);
        *table.get_or_insert(key_number_ref(3, "k3"), 0) += 10;
        assert_eq!(table.get(key_ref("k3")), Some(&11));
        assert_eq!(table.get(key_ref("k03")), Some(&2));
        table.remove(key_ref("k3"));
        assert_eq!(table.get(KeyRef::Numbered(3)), None);
        assert_eq!(table.get(KeyRef::Numbered(300)), None);
    }

    #[test]
    fn decimals_are_written_as_display_writes_them() {
        for n in [0, 1, 9, 10, 99, 100, 12_345, u64::from(u32::MAX), u64::MAX] {
            let mut out = String::from("x");
            push_decimal(&mut out, n);
            assert_eq!(out, format!("x{n}"));
        }
    }
}
