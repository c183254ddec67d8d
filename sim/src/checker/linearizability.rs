//! Offline linearizability checker for client histories of the KV store.
//!
//! # Contract
//!
//! [`check`] takes a complete client history — every operation with its invoke tick, its
//! completion tick and how it ended — and decides whether some total order of the operations
//! (a *linearization*) explains every result, where each operation takes effect atomically at
//! one instant between its invoke and its completion. It answers [`Verdict::Linearizable`],
//! [`Verdict::NotLinearizable`] with a small witness, or [`Verdict::Unknown`] when the search
//! budget ([`Limits::steps_max`]) ran out. It is a pure, deterministic function of its inputs:
//! no clock, no randomness, and no hash-map iteration whose order could reach the output.
//!
//! # Model
//!
//! Each key is a register holding `Option<String>` (`None`: absent), starting at `initial`
//! (Jepsen-style tools assume `Some("")`; the simulator's store starts every key absent). The
//! register follows [`raftsim_protocol::kv::KvStore::apply`] exactly: `Get` returns
//! `Value(v)` or `NotFound`; `Put` returns `Ok`; `Append` returns `Ok`, creating the key from
//! its suffix when absent; `Delete` returns `Ok` if the key was present, else `NotFound`;
//! `Cas` returns `Ok` and stores `new` when the current value equals `expected` (`None`:
//! absent), else `CasMismatch { current }` and changes nothing.
//!
//! Linearizability is compositional (Herlihy & Wing, 1990): a history is linearizable iff its
//! restriction to each object is. So the history is split by key, keys are checked one at a
//! time in sorted order, and the first key that cannot be linearized is reported. A key whose
//! search ran out of budget is remembered and reported as `Unknown` only if no key fails.
//!
//! # Algorithm
//!
//! Per key, "just-in-time" linearization (Lowe, "Testing for linearizability", Concurrency
//! Computat.: Pract. Exper. 29, 2017), searched depth first over the key's events, with
//! memoization of the configurations known to fail:
//!
//! - Each operation becomes a call event at its invoke tick and, unless indeterminate, a
//!   return event at its completion tick, in one list sorted by tick. At equal ticks calls
//!   sort before returns, so an operation invoked at the very tick another completes counts
//!   as concurrent with it: a tick is coarser than real time, and this is the permissive
//!   (never falsely failing) choice. A recorder that knows better asks for returns first
//!   ([`SameTick::ReturnsFirst`], via [`check_ordered`]); the checker then places each tick's
//!   returns before its calls on a finer time line, and everything below runs on that line.
//! - A *configuration* between two events is the model state and the set of open operations
//!   already linearized (operations that returned are all linearized, or dropped if they may
//!   be). Nothing else about the past matters to the future, so a configuration that failed
//!   once at an event fails whenever it comes back there.
//! - A call makes its operation a candidate. At the return of an operation not yet
//!   linearized, the search linearizes it, preceded by any sequence of other candidates: that
//!   gives the configurations after the event (the *expansion*, deduplicated). Every
//!   linearization is found this way: cut it at the returns, each piece is one expansion.
//!   The search goes depth first through the events, trying first the configurations with the
//!   fewest indeterminate operations linearized, then the most required ones; it succeeds
//!   when it gets past the last event.
//! - Register values are interned, so a state is a small integer; and a present value that no
//!   operation still to come can see (none compares with it or with a value appends could
//!   make of it) is replaced by one state, `DEAD`: from then on every comparison rejects any
//!   such value alike, and appending keeps it unseen, so all of them have the same futures.
//!
//! The search restricts the moves it tries. Each rule only skips moves for which an
//! equivalent linearization is explored anyway (below), so none changes a verdict; a property
//! test compares the checker with an exhaustive search, and every linearization found is
//! replayed against the model and the real-time order before it is believed.
//!
//! - *Reads at once.* A required operation that never changes the state when its recorded
//!   result holds (a `Get`, a `Cas` answered `CasMismatch`, a `Delete` answered `NotFound`) is
//!   linearized as soon as it is open and the state gives its result, never otherwise: moving
//!   it to the earliest such instant of a linearization changes nothing anyone sees.
//! - *Absorbed writes.* A required `Put` or `Append` (whose `Ok` does not depend on the state)
//!   is never linearized right before an *overwrite* (a required `Put`, or a `Delete`
//!   answered `Ok` when the key was present before the write): its effect would be lost
//!   unseen. Instead, when it returns, it may be *absorbed*: put right before the latest
//!   overwrite linearized after its call, which changes no state and no result. Without this,
//!   every subset of the concurrent writes that a later overwrite hides would be a separate
//!   configuration.
//! - *Interchangeable operations.* Operations of the same class (same role, same recorded
//!   result, same effect, where all writes of values nobody ever sees count as one effect)
//!   behave the same in every state. Among required ones, only the open one due first is a
//!   candidate: it can take the place of any other (its window covers the moment, and it must
//!   be linearized sooner anyway). Among indeterminate ones, only the earliest invoked pending
//!   one is: its window starts earlier and never ends.
//!
//! # Indeterminate and failed operations
//!
//! - [`Outcome::Fail`]: the operation certainly did not take effect, so it is dropped before the
//!   search. Keeping it would only let it explain reads that nothing else can.
//! - [`Outcome::Info`], or no completion at all: the operation may never have taken effect, or
//!   may have taken effect at any instant after its invoke (a request can sit in a leader's log
//!   and commit long after its client gave up), with a result nobody saw. So it has a call
//!   and no return: it stays a candidate until the end, its result matches whatever the model
//!   returns, and it is *optional*: the search succeeds once every `Ok` operation is
//!   linearized, whatever the indeterminate ones did. An indeterminate `Get` has no effect and
//!   no observed result, so it is dropped.
//!
//! Optional operations (indeterminate ones, and those relaxed by witness shrinking) are never
//! linearized for their own sake; only when the very next move needs them:
//!
//! - never when the move changes nothing, or replaces a present value with one nobody can see
//!   (`DEAD`): leaving it out changes nothing that anyone sees, then or later;
//! - only if the next move tells the states before and after it apart: a read that the new
//!   state satisfies, or an operation that behaves differently from the two states. Otherwise
//!   the operation was overwritten unseen, and leaving it out gives the same linearization.
//!   (The condition is part of the configuration, as it constrains the next move.)
//!
//! Since every linearization can be rewritten into one that obeys these rules (drop the
//! optional operations that break them, swap interchangeable operations into due order, move
//! reads earlier; each rewrite keeps it valid and they terminate), the search is complete. And
//! an optional operation's set matters only as far as it goes: a configuration with a
//! *subset* of the optional operations linearized, otherwise equal and with no stricter
//! condition on its next move, can do everything the other can, so the other is pruned.
//!
//! # Witnesses
//!
//! For a key that cannot be linearized, the checker shrinks the key's history greedily. An
//! operation leaves the witness when the history stays unlinearizable with that operation
//! *relaxed*: a relaxed operation may or may not take effect, at any instant within its own
//! window, with any result (a relaxed `Get` is simply gone). Relaxing only ever adds
//! linearizations, so the witness is a proof: its operations cannot be linearized whatever the
//! key's other operations did, which makes the whole history unlinearizable. Plain removal
//! would not be: dropping the write that explains a read leaves a "read of a value never
//! written" that says nothing about the real history.
//!
//! The shrinking first relaxes everything invoked after the latest tick the failed search
//! depended on (free), then everything completed before the latest start that still fails
//! (searched backwards from the end, then bisected, since that relaxation is monotone), then
//! tries each remaining `Ok` operation in invoke order. Each trial searches only from the
//! first unrelaxed operation's invoke on, from every value the register could hold there
//! (see `Shrinker::refutes`), so trials stay cheap however long the history. Indeterminate
//! operations are never in the witness. The witness is sorted by invoke tick.
//!
//! # Bounds
//!
//! One search step is one configuration visited: one reached by an expansion (a move whose
//! result the model accepts and no rule skips), or one whose event the search processes. A
//! step's work is bounded by the key's operation count (the candidates tried, the reads
//! linearized at once). The search of a key takes at most [`Limits::steps_max`] steps and then
//! gives up with `Unknown`; the shrinking of a witness takes at most another `steps_max` steps
//! in total and then returns the smallest witness found so far. Every configuration stored
//! (on the search path, or as failed) was a step, so memory is bounded by the same budget.
//!
//! On simulated histories of 1, 10 and 50 concurrent clients with 5000 operations over 4 keys
//! (`raftsim bench --only check-history`), including indeterminate and failed writes, a check
//! takes 10 ms to half a second in release.

use std::collections::BTreeSet;
use std::sync::Arc;

use raftsim_protocol::kv::{Op, OpResult};
use raftsim_protocol::types::{ClientId, Tick};

use crate::trace::{FixedHashMap, FixedHashSet, TraceHasher};

/// How an operation ended, from the client's point of view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The operation took effect exactly once, atomically, at some instant between its invoke
    /// and its completion, with this result.
    Ok(OpResult),
    /// The operation certainly did not take effect. It is dropped before the search.
    Fail,
    /// Indeterminate (a timeout, a crash): the operation may or may not have taken effect, at
    /// any instant after its invoke, and if it did, its result is unknown.
    Info,
}

/// One client operation of a history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryOp {
    /// The client that issued the operation.
    pub client: ClientId,
    /// The operation; [`Op::key`] says which register it touches. Shared with the request
    /// that carried it, so recording a history copies no key or value.
    pub op: Arc<Op>,
    /// When the client sent it.
    pub invoke_tick: Tick,
    /// When the client learned how it ended; `None` if it never did, which is treated like
    /// [`Outcome::Info`] whatever `outcome` says (unless it says [`Outcome::Fail`]).
    pub complete_tick: Option<Tick>,
    /// How it ended.
    pub outcome: Outcome,
}

/// Search budgets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most search steps spent on one key before its verdict is [`Verdict::Unknown`]; also the
    /// total budget for shrinking a witness.
    pub steps_max: u64,
}

impl Limits {
    /// The default [`Limits::steps_max`]: about 1.5 s of search in release at most (see
    /// `history::STEPS_PER_SECOND`); most histories need far fewer steps.
    pub const STEPS_MAX_DEFAULT: u64 = 2_000_000;
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            steps_max: Limits::STEPS_MAX_DEFAULT,
        }
    }
}

/// What the checker concluded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Every key's history has a linearization.
    Linearizable,
    /// `key`'s history has none. `ops` is a small sub-history of that key (its `Ok` operations
    /// only, sorted by invoke tick) that cannot be linearized whatever the key's other
    /// operations did; see the module documentation.
    NotLinearizable {
        /// The first key, in sorted order, that cannot be linearized.
        key: String,
        /// The witness.
        ops: Vec<HistoryOp>,
    },
    /// No key is known to fail, but the search of `key` ran out of budget after `steps` steps.
    Unknown {
        /// The first key, in sorted order, whose search ran out of budget.
        key: String,
        /// The steps spent on it.
        steps: u64,
    },
}

impl Verdict {
    /// True only for [`Verdict::Linearizable`].
    pub fn is_linearizable(&self) -> bool {
        matches!(self, Verdict::Linearizable)
    }
}

/// The verdict and how much work it took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The verdict.
    pub verdict: Verdict,
    /// Keys searched (all of them, unless a key failed: then the keys up to and including it).
    pub keys_checked: usize,
    /// Operations that took part in those searches (failed operations and indeterminate reads
    /// are dropped before searching and not counted).
    pub ops_checked: usize,
    /// Search steps spent on those keys, witness shrinking excluded.
    pub steps: u64,
    /// Search steps spent shrinking the witness (0 unless the verdict is `NotLinearizable`).
    pub witness_steps: u64,
}

/// How a call and a return recorded at the same tick are ordered in real time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SameTick {
    /// The call may come first: the two operations count as concurrent. A tick is coarser
    /// than real time, so this is the permissive (never falsely failing) choice, and
    /// [`check`]'s.
    CallsFirst,
    /// The return comes first: an operation invoked at the tick another completed follows it
    /// in real time. Right only when the recorder knows that, as the simulator does (see
    /// `Sim::linearizability_verdict`); every operation must then complete at a later tick
    /// than its invoke.
    ReturnsFirst,
}

impl SameTick {
    /// The times of an operation invoked at `invoke_tick` and completed at `complete_tick`
    /// on the checker's time line, where at equal times calls come before returns. With
    /// [`SameTick::ReturnsFirst`] each tick is split in two, its returns at `2 T` and its
    /// calls at `2 T + 1`, so nothing of the history needs copying to refine it.
    fn times(self, invoke_tick: Tick, complete_tick: Option<Tick>) -> (Tick, Option<Tick>) {
        match self {
            SameTick::CallsFirst => (invoke_tick, complete_tick),
            SameTick::ReturnsFirst => {
                let double = |tick: Tick| {
                    tick.checked_mul(2)
                        .expect("linearizability: ticks below 2^63")
                };
                let invoke = double(invoke_tick)
                    .checked_add(1)
                    .expect("linearizability: ticks below 2^63");
                (invoke, complete_tick.map(double))
            }
        }
    }
}

/// Checks `history` for linearizability, every key starting at `initial`. At equal ticks a
/// call counts as concurrent with a return ([`SameTick::CallsFirst`]).
///
/// # Panics
/// If an operation completes before it was invoked: the history itself is broken.
pub fn check(history: &[HistoryOp], initial: Option<&str>, limits: &Limits) -> Report {
    check_ordered(history, initial, limits, SameTick::CallsFirst)
}

/// [`check`], with calls and returns at the same tick ordered as `same_tick` says. The
/// witness's operations are those of `history`, ticks and all.
///
/// # Panics
/// If an operation completes before it was invoked (with [`SameTick::ReturnsFirst`]: at or
/// before the tick it was invoked): the history itself is broken.
pub fn check_ordered(
    history: &[HistoryOp],
    initial: Option<&str>,
    limits: &Limits,
    same_tick: SameTick,
) -> Report {
    let by_key = KeyGroups::new(history, same_tick);

    let mut report = Report {
        verdict: Verdict::Linearizable,
        keys_checked: 0,
        ops_checked: 0,
        steps: 0,
        witness_steps: 0,
    };
    let mut unknown = None;
    // One set of tables for every key and every shrinking trial.
    let mut search = Search::default();
    let mut reserved = false;
    let mut keep = Vec::new();
    for (key, ops) in by_key.iter() {
        if let Some(replayed) = sequential_replay(ops, initial) {
            // One step per operation replayed.
            report.keys_checked += 1;
            report.ops_checked += replayed;
            report.steps += replayed as u64;
            continue;
        }
        if !reserved {
            search.reserve(by_key.ops_max());
            reserved = true;
        }
        keep.clear();
        keep.resize(ops.len(), Treat::Keep);
        search.plan.prepare(ops, &keep, initial);
        report.keys_checked += 1;
        report.ops_checked += search.plan.ops.len();
        let (found, steps) = search.run(limits.steps_max);
        report.steps += steps;
        match found {
            Found::Linearizable => {}
            Found::NotLinearizable { frontier_tick } => {
                let (witness, witness_steps) =
                    shrink(ops, initial, limits.steps_max, frontier_tick, &mut search);
                report.witness_steps = witness_steps;
                report.verdict = Verdict::NotLinearizable {
                    key: key.to_owned(),
                    ops: witness,
                };
                return report;
            }
            Found::OutOfSteps => {
                if unknown.is_none() {
                    unknown = Some(Verdict::Unknown {
                        key: key.to_owned(),
                        steps,
                    });
                }
            }
        }
    }
    if let Some(verdict) = unknown {
        report.verdict = verdict;
    }
    report
}

/// A history's operations grouped by key, the keys in sorted order and each key's operations
/// in history order. A simulated history touches few keys, so an operation's key is found by
/// scanning the distinct keys (compared as integers while they are short, see [`key_word`]),
/// up to [`KEYS_SCANNED_MAX`] of them, then through a map; the operations are filled into one
/// vector by a counting sort: no tree search, string comparison or vector per key for each
/// operation.
struct KeyGroups<'h> {
    /// The distinct keys, sorted, each with its range of `ops`.
    keys: Vec<(&'h str, usize, usize)>,
    /// The operations, key by key.
    ops: Vec<KeyOp<'h>>,
}

impl<'h> KeyGroups<'h> {
    /// Groups `history` by key, with its ticks refined as `same_tick` says.
    ///
    /// # Panics
    /// If an operation completes before it was invoked.
    fn new(history: &'h [HistoryOp], same_tick: SameTick) -> KeyGroups<'h> {
        // The distinct keys in the order they first come, with their word (see `key_word`)
        // and operation count; and per operation, the index of its key there.
        let mut distinct: Vec<(&'h str, u64, usize)> = Vec::new();
        // Only looked up (the keys' order comes from sorting them), and only once there are
        // more than `KEYS_SCANNED_MAX` of them.
        let mut by_text: FixedHashMap<&'h str, usize> = FixedHashMap::default();
        let mut key_of: Vec<u32> = Vec::with_capacity(history.len());
        let mut key_ops: Vec<KeyOp<'h>> = Vec::with_capacity(history.len());
        for op in history {
            let key_op = KeyOp::new(op, same_tick);
            key_ops.push(key_op);
            if let Some(complete_tick) = key_op.complete_tick {
                assert!(
                    complete_tick >= key_op.invoke_tick,
                    "linearizability: operation completes before it was invoked: {op:?}"
                );
            }
            let key = op.op.key();
            let word = key_word(key);
            let found = if distinct.len() <= KEYS_SCANNED_MAX {
                distinct
                    .iter()
                    .position(|&(k, w, _)| w == word && (key.len() <= KEY_WORD_BYTES || k == key))
            } else {
                by_text.get(key).copied()
            };
            let at = found.unwrap_or_else(|| {
                distinct.push((key, word, 0));
                let at = distinct.len() - 1;
                if distinct.len() == KEYS_SCANNED_MAX + 1 {
                    by_text.extend(distinct.iter().enumerate().map(|(at, &(k, ..))| (k, at)));
                } else if distinct.len() > KEYS_SCANNED_MAX {
                    by_text.insert(key, at);
                }
                at
            });
            distinct[at].2 += 1;
            key_of.push(at as u32);
        }
        // Each key's next position in the grouped operations, the keys in sorted order.
        let mut sorted: Vec<usize> = (0..distinct.len()).collect();
        sorted.sort_unstable_by_key(|&at| distinct[at].0);
        let mut next_slot = vec![0; distinct.len()];
        let mut keys = Vec::with_capacity(distinct.len());
        let mut start = 0;
        for &at in &sorted {
            let (key, _, count) = distinct[at];
            next_slot[at] = start;
            keys.push((key, start, start + count));
            start += count;
        }
        // A counting sort of the operations by key, stable.
        let mut order = vec![0; history.len()];
        for (index, &at) in key_of.iter().enumerate() {
            let slot = &mut next_slot[at as usize];
            order[*slot] = index;
            *slot += 1;
        }
        let ops = order.iter().map(|&index| key_ops[index]).collect();
        KeyGroups { keys, ops }
    }

    /// The keys in sorted order, each with its operations in history order.
    fn iter(&self) -> impl Iterator<Item = (&'h str, &[KeyOp<'h>])> + '_ {
        self.keys
            .iter()
            .map(|&(key, start, end)| (key, &self.ops[start..end]))
    }

    /// The most operations of one key.
    fn ops_max(&self) -> usize {
        self.keys
            .iter()
            .map(|&(_, start, end)| end - start)
            .max()
            .unwrap_or(0)
    }
}

/// Distinct keys up to which [`KeyGroups::new`] finds an operation's key by a scan; past it, a
/// map finds it, so a history of many keys (one read from a file) is not grouped in time
/// quadratic in its length.
const KEYS_SCANNED_MAX: usize = 16;

/// The longest keys that [`key_word`] tells apart by itself.
const KEY_WORD_BYTES: usize = 7;

/// A key's length and first [`KEY_WORD_BYTES`] bytes in one word: equal for equal keys, and
/// for keys of at most that many bytes, only for equal keys. Built byte by byte (keys are
/// short), since a short copy of variable length would compile to a `memcpy` call.
fn key_word(key: &str) -> u64 {
    let bytes = key.as_bytes();
    let head = bytes[..bytes.len().min(KEY_WORD_BYTES)]
        .iter()
        .fold(0u64, |word, &b| word << 8 | u64::from(b));
    head | (bytes.len() as u64 & 0xff) << 56
}

/// An operation of one key's history, with its ticks on the checker's time line (see
/// [`SameTick::times`]): from here on every tick is such a time, where at equal times calls
/// come before returns. Borrows the operation: nothing is copied to check a history.
#[derive(Debug, Clone, Copy)]
struct KeyOp<'h> {
    recorded: &'h HistoryOp,
    invoke_tick: Tick,
    complete_tick: Option<Tick>,
}

impl<'h> KeyOp<'h> {
    fn new(op: &'h HistoryOp, same_tick: SameTick) -> KeyOp<'h> {
        let (invoke_tick, complete_tick) = same_tick.times(op.invoke_tick, op.complete_tick);
        KeyOp {
            recorded: op,
            invoke_tick,
            complete_tick,
        }
    }
}

/// The fast path for a key whose operations never overlap: failed operations dropped, no
/// indeterminate one, and each invoked strictly after the previous one completed. Real time
/// then allows one order only, so replaying it through the model decides the key. Returns the
/// number of operations replayed when every recorded result matches; `None` when the fast path
/// does not apply or a result differs (the search then runs and finds the witness). Most keys
/// of a simulated run are like this, and the replay allocates nothing per operation.
fn sequential_replay(ops: &[KeyOp<'_>], initial: Option<&str>) -> Option<usize> {
    // The windows first, which cost no model work and rule out most keys that overlap.
    let mut previous_complete: Option<Tick> = None;
    for op in ops.iter().filter(|op| op.recorded.outcome != Outcome::Fail) {
        let (Outcome::Ok(_), Some(complete_tick)) = (&op.recorded.outcome, op.complete_tick) else {
            return None; // indeterminate
        };
        if previous_complete.is_some_and(|t| op.invoke_tick <= t) {
            return None; // overlaps, or out of invoke order
        }
        previous_complete = Some(complete_tick);
    }
    // Then the model, in that one order.
    let mut register: Option<String> = initial.map(str::to_owned);
    let mut replayed = 0;
    for op in ops {
        match &op.recorded.outcome {
            Outcome::Fail => continue,
            Outcome::Ok(recorded) if register_apply(&mut register, &op.recorded.op, recorded) => {}
            _ => return None,
        }
        replayed += 1;
    }
    Some(replayed)
}

/// Apply `op` to a register (the model of the module docs, as `KvStore::apply` does it, with
/// no size bounds) and say whether it returns `recorded`.
fn register_apply(register: &mut Option<String>, op: &Op, recorded: &OpResult) -> bool {
    match op {
        Op::Get { .. } => match (register.as_deref(), recorded) {
            (Some(v), OpResult::Value(r)) => v == r,
            (None, OpResult::NotFound) => true,
            _ => false,
        },
        Op::Put { value, .. } => {
            *register = Some(value.clone());
            *recorded == OpResult::Ok
        }
        Op::Append { value, .. } => {
            register.get_or_insert_with(String::new).push_str(value);
            *recorded == OpResult::Ok
        }
        Op::Delete { .. } => {
            let expected = if register.take().is_some() {
                OpResult::Ok
            } else {
                OpResult::NotFound
            };
            *recorded == expected
        }
        Op::Cas { expected, new, .. } => {
            if register.as_deref() == expected.as_deref() {
                *register = Some(new.clone());
                *recorded == OpResult::Ok
            } else {
                matches!(recorded, OpResult::CasMismatch { current } if current == register)
            }
        }
    }
}

/// Shrinks the history of one unlinearizable key, whose search never got past
/// `frontier_tick`, to a witness; returns it with the steps spent. The witness is the key's
/// `Ok` operations that could not be relaxed, as the history recorded them.
fn shrink<'h>(
    ops: &[KeyOp<'h>],
    initial: Option<&str>,
    steps_max: u64,
    frontier_tick: Tick,
    search: &mut Search<'h>,
) -> (Vec<HistoryOp>, u64) {
    let mut shrinker = Shrinker {
        ops,
        initial,
        relaxed: vec![false; ops.len()],
        steps_left: steps_max,
        search,
    };
    shrinker.relax_after(frontier_tick);
    shrinker.run();
    let mut witness: Vec<&KeyOp<'h>> = ops
        .iter()
        .zip(&shrinker.relaxed)
        .filter(|(op, relaxed)| !**relaxed && is_definite(op.recorded))
        .map(|(op, _)| op)
        .collect();
    // A stable sort keeps the history's order among operations invoked at the same tick.
    witness.sort_by_key(|op| op.invoke_tick);
    let witness: Vec<HistoryOp> = witness.iter().map(|op| op.recorded.clone()).collect();
    assert!(
        !witness.is_empty(),
        "linearizability: an unlinearizable key has at least one Ok operation"
    );
    (witness, steps_max - shrinker.steps_left)
}

/// True for an operation that took effect with a known result: `Ok` and completed.
fn is_definite(op: &HistoryOp) -> bool {
    matches!(op.outcome, Outcome::Ok(_)) && op.complete_tick.is_some()
}

/// Greedy witness shrinking over one key; see the module documentation.
struct Shrinker<'a, 'h> {
    ops: &'a [KeyOp<'h>],
    initial: Option<&'a str>,
    /// Relaxed operations; the history with these relaxed is known not to be linearizable.
    relaxed: Vec<bool>,
    steps_left: u64,
    /// The tables every trial's search reuses.
    search: &'a mut Search<'h>,
}

impl Shrinker<'_, '_> {
    /// Shrinks until done or out of budget. Every committed state is known unlinearizable.
    fn run(&mut self) {
        let _out_of_steps = self.cut_before().and_then(|()| {
            let mut order: Vec<usize> = self.remaining();
            order.sort_by_key(|&i| self.ops[i].invoke_tick);
            for i in order {
                self.try_relax(|j| j == i)?;
            }
            Some(())
        });
    }

    /// Indices of definite operations not yet relaxed.
    fn remaining(&self) -> Vec<usize> {
        (0..self.ops.len())
            .filter(|&i| !self.relaxed[i] && is_definite(self.ops[i].recorded))
            .collect()
    }

    /// Relaxes every operation invoked after `frontier_tick`, where a failed search never got
    /// past: the search never processed their calls, so they never became candidates, and
    /// the prefix of the history it refuted does not contain them (the search is exact, so
    /// it refutes that prefix however they are treated). This costs no search.
    fn relax_after(&mut self, frontier_tick: Tick) {
        for (relaxed, op) in self.relaxed.iter_mut().zip(self.ops) {
            *relaxed |= op.invoke_tick > frontier_tick;
        }
    }

    /// Relaxes every operation completed at or before the latest start tick that keeps the
    /// history unlinearizable. Monotone: a later start relaxes more and so fails less. The
    /// search goes backwards from the end, doubling its stride, because the latest starts
    /// leave the fewest required operations and so are the cheapest to check; then it
    /// bisects.
    fn cut_before(&mut self) -> Option<()> {
        let mut ticks: Vec<Tick> = self
            .remaining()
            .iter()
            .filter_map(|&i| self.ops[i].complete_tick)
            .collect();
        ticks.sort_unstable_by(|a, b| b.cmp(a));
        ticks.dedup();
        // fails(k): the history still fails with every remaining operation completed at or
        // before ticks[k] relaxed. fails(0) relaxes them all, so it is false; the history as
        // it stands, "fails(len)", is true.
        let ops = self.ops;
        let fails = |shrinker: &mut Self, k: usize| {
            let start_tick = ticks[k];
            shrinker.try_relax(|i| ops[i].complete_tick.is_some_and(|t| t <= start_tick))
        };
        let (mut lo, mut hi, mut stride) = (0, ticks.len(), 1);
        while lo + stride < hi {
            if fails(self, lo + stride)? {
                hi = lo + stride;
                break;
            }
            lo += stride;
            stride *= 2;
        }
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if fails(self, mid)? {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        Some(())
    }

    /// Relaxes the operations selected by `extra` on top of those already relaxed, and keeps
    /// that if the history stays unlinearizable. Returns whether it did; `None` when the
    /// budget ran out (the relaxation is then not kept).
    fn try_relax(&mut self, extra: impl Fn(usize) -> bool) -> Option<bool> {
        let candidate: Vec<bool> = (0..self.ops.len())
            .map(|i| self.relaxed[i] || extra(i))
            .collect();
        if candidate == self.relaxed {
            return Some(true);
        }
        match self.refutes(&candidate)? {
            Some(frontier_tick) => {
                self.relaxed = candidate;
                self.relax_after(frontier_tick);
                Some(true)
            }
            None => Some(false),
        }
    }

    /// Searches the history with the `relaxed` operations relaxed. `Some(Some(frontier))` if it
    /// cannot be linearized, `Some(None)` if it might, `None` if the budget ran out.
    ///
    /// To keep this cheap, the search starts where the first unrelaxed operation is invoked:
    /// the relaxed operations that completed before then are left out, and the register may
    /// hold *any* value there (one search per value that makes a difference to what follows,
    /// see [`Shrinker::start_values`]). That only adds behaviours: a relaxed operation that
    /// completed before then could only have changed that value, and every unrelaxed one takes
    /// effect after it. (Indeterminate operations may take effect later, so they stay.) So a
    /// refutation still refutes the history; at worst, a relaxation is not kept.
    fn refutes(&mut self, relaxed: &[bool]) -> Option<Option<Tick>> {
        let ops = self.ops;
        let Some(cut_tick) = (0..ops.len())
            .filter(|&i| !relaxed[i] && is_definite(ops[i].recorded))
            .map(|i| ops[i].invoke_tick)
            .min()
        else {
            // Nothing left to linearize.
            return Some(None);
        };
        let treat: Vec<Treat> = (0..ops.len())
            .map(|i| match (relaxed[i], is_definite(ops[i].recorded)) {
                (false, _) => Treat::Keep,
                (true, true) if ops[i].complete_tick.is_some_and(|t| t < cut_tick) => Treat::Drop,
                (true, _) => Treat::Relax,
            })
            .collect();
        let starts: Vec<Option<String>> = if treat.contains(&Treat::Drop) {
            self.start_values(&treat, cut_tick).into_iter().collect()
        } else {
            vec![self.initial.map(str::to_owned)]
        };
        self.search.plan.prepare(ops, &treat, None);
        let mut frontier_tick = 0;
        for start in &starts {
            self.search.plan.initial = self.search.plan.states.intern(start.as_deref());
            let (found, steps) = self.search.run(self.steps_left);
            self.steps_left -= steps;
            match found {
                Found::NotLinearizable {
                    frontier_tick: tick,
                } => {
                    frontier_tick = frontier_tick.max(tick);
                }
                Found::Linearizable => return Some(None),
                Found::OutOfSteps => return None,
            }
        }
        Some(Some(frontier_tick))
    }

    /// The values the register may hold at `cut_tick`, one per class of values that the
    /// operations not dropped by `treat` can tell apart: absent; each value they compare
    /// with, and each prefix of one that their appends could extend into it; and one present
    /// value none of them can see (longer than all of those, so a prefix of none). Only
    /// classes that the initial value and the writes invoked before `cut_tick` could produce
    /// are returned (over-approximated: any order, any number of appends), so a read of a
    /// value nobody wrote stays refuted.
    fn start_values(&self, treat: &[Treat], cut_tick: Tick) -> BTreeSet<Option<String>> {
        let mut targets: Vec<&str> = Vec::new();
        let mut later_suffixes: BTreeSet<&str> = BTreeSet::new();
        for (op, &treat) in self.ops.iter().zip(treat) {
            if treat == Treat::Drop {
                continue;
            }
            match &*op.recorded.op {
                Op::Cas {
                    expected: Some(expected),
                    ..
                } => targets.push(expected),
                Op::Append { value, .. } if !value.is_empty() => {
                    later_suffixes.insert(value);
                }
                _ => {}
            }
            if let (
                Outcome::Ok(
                    OpResult::Value(value)
                    | OpResult::CasMismatch {
                        current: Some(value),
                    },
                ),
                Treat::Keep,
            ) = (&op.recorded.outcome, treat)
            {
                targets.push(value);
            }
        }
        // What the writes invoked before the cut could leave behind.
        let mut sets: BTreeSet<&str> = self.initial.into_iter().collect();
        let mut suffixes: BTreeSet<&str> = BTreeSet::new();
        let mut absent = self.initial.is_none();
        for op in self.ops.iter().filter(|op| op.invoke_tick < cut_tick) {
            if matches!(op.recorded.outcome, Outcome::Fail) {
                continue;
            }
            match &*op.recorded.op {
                Op::Put { value, .. } | Op::Cas { new: value, .. } => {
                    sets.insert(value);
                }
                Op::Append { value, .. } => {
                    suffixes.insert(value);
                }
                Op::Delete { .. } => absent = true,
                Op::Get { .. } => {}
            }
        }
        let producible = |value: &str| {
            // reach[i]: value[..i] can be the register's value.
            let mut reach = vec![false; value.len() + 1];
            for set in &sets {
                if value.starts_with(set) {
                    reach[set.len()] = true;
                }
            }
            // From absent, the first append creates the key.
            reach[0] |= absent && !suffixes.is_empty();
            for i in 0..value.len() {
                if reach[i] {
                    for suffix in suffixes.iter().filter(|s| !s.is_empty()) {
                        if value[i..].starts_with(suffix) {
                            reach[i + suffix.len()] = true;
                        }
                    }
                }
            }
            reach[value.len()]
        };
        let mut starts = BTreeSet::new();
        if absent {
            starts.insert(None);
        }
        let longest = targets.iter().map(|t| t.len()).max().unwrap_or(0);
        // Something present that nobody compares with: any write, or appending to anything.
        if !sets.is_empty() || !suffixes.is_empty() {
            starts.insert(Some("?".repeat(longest + 1)));
        }
        for target in targets {
            let prefixes = target
                .char_indices()
                .map(|(i, _)| i)
                .filter(|&i| later_suffixes.iter().any(|s| target[i..].starts_with(s)));
            for end in prefixes.chain([target.len()]) {
                if producible(&target[..end]) {
                    starts.insert(Some(target[..end].to_owned()));
                }
            }
        }
        starts
    }
}

/// A register value, interned: [`ABSENT`] or an index into [`StateTable`].
type StateId = u32;

/// The absent register.
const ABSENT: StateId = 0;

/// Some present value that nothing still to come compares with (see [`Sweep::canonical`]).
const DEAD: StateId = u32::MAX - 1;

/// "None" for operation and state ids.
const NIL: u32 = u32::MAX;

/// The lookup side of an interner whose entries are stored elsewhere, back to back: an
/// open-addressing table (linear probing) of entry numbers, with each entry's hash kept
/// beside it, so that a probe compares entries only when their hashes are equal. No entry is
/// stored twice (once as a key), a lookup hashes its key once, and once the tables have grown
/// nothing is allocated per entry. Only looked up, never iterated.
#[derive(Default)]
struct EntryIndex {
    /// Per slot: an entry, or `NIL` if free. A power of two long, and at most half full.
    slots: Vec<u32>,
    /// Per entry: its hash.
    hashes: Vec<u64>,
}

impl EntryIndex {
    /// The fewest slots a table has.
    const SLOTS_MIN: usize = 16;

    fn clear(&mut self) {
        if !self.hashes.is_empty() {
            self.slots.fill(NIL);
            self.hashes.clear();
        }
    }

    /// Makes room for `entries` entries.
    fn reserve(&mut self, entries: usize) {
        self.hashes.reserve(entries);
        let slots = (2 * entries).next_power_of_two();
        if slots > self.slots.len() {
            self.rebuild(slots);
        }
    }

    /// Files every entry again in a table of `slots` slots.
    fn rebuild(&mut self, slots: usize) {
        self.slots.clear();
        self.slots.resize(slots.max(Self::SLOTS_MIN), NIL);
        for entry in 0..self.hashes.len() {
            self.file(entry as u32);
        }
    }

    /// Puts `entry` in the first free slot from its hash on.
    fn file(&mut self, entry: u32) {
        let mask = self.slots.len() - 1;
        let mut slot = self.hashes[entry as usize] as usize & mask;
        while self.slots[slot] != NIL {
            slot = (slot + 1) & mask;
        }
        self.slots[slot] = entry;
    }

    /// The entry with `hash` that `is` accepts, if any.
    fn find(&self, hash: u64, is: impl Fn(u32) -> bool) -> Option<u32> {
        if self.hashes.is_empty() {
            return None;
        }
        let mask = self.slots.len() - 1;
        let mut slot = hash as usize & mask;
        loop {
            let entry = self.slots[slot];
            if entry == NIL {
                return None;
            }
            if self.hashes[entry as usize] == hash && is(entry) {
                return Some(entry);
            }
            slot = (slot + 1) & mask;
        }
    }

    /// Records the next entry (number `hashes.len()`), which has `hash`.
    fn push(&mut self, hash: u64) {
        let entry = u32::try_from(self.hashes.len())
            .ok()
            .filter(|&entry| entry < NIL)
            .expect("linearizability: fewer than 2^32 - 1 interned entries");
        self.hashes.push(hash);
        if 2 * self.hashes.len() > self.slots.len() {
            self.rebuild(2 * self.slots.len());
        } else {
            self.file(entry);
        }
    }
}

/// The hash an [`EntryIndex`] files `words` under.
fn hash_words(words: impl IntoIterator<Item = u64>) -> u64 {
    let mut hasher = TraceHasher::new();
    let mut len = 0;
    for word in words {
        hasher.write_u64(word);
        len += 1;
    }
    hasher.write_u64(len);
    hasher.finish()
}

/// The hash an [`EntryIndex`] files `text` under.
fn hash_text(text: &str) -> u64 {
    let mut hasher = TraceHasher::new();
    hasher.write_framed(text.as_bytes());
    hasher.finish()
}

/// A [`Plan::extending`] not computed yet.
const EXTENDING_UNKNOWN: (usize, usize) = (usize::MAX, 0);

/// A value's first eight bytes as a big-endian number, zero-padded: if one value's key is
/// below another's, so is the value (in byte order), so a sort by value need compare the text
/// only where the keys are equal.
fn order_key(value: &str) -> u64 {
    let bytes = value.as_bytes();
    let mut word = [0u8; 8];
    let len = bytes.len().min(8);
    word[..len].copy_from_slice(&bytes[..len]);
    u64::from_be_bytes(word)
}

/// Interned register values: id 0 is absent, id `k` the `k`-th present value interned. The
/// values' text is kept back to back in one string, so interning allocates nothing once the
/// table has grown (it is reused from key to key).
#[derive(Default)]
struct StateTable {
    text: String,
    /// Per present value (id - 1): where its text is in `text`.
    spans: Vec<(usize, usize)>,
    /// Finds a present value's id - 1 by its text.
    ids: EntryIndex,
    /// `(state, op)` to the state after that `Append`, so a concatenation is rarely built twice.
    appended: PairMemo,
    /// Where [`StateTable::append`] builds a concatenation to look it up.
    scratch: String,
}

impl StateTable {
    fn clear(&mut self) {
        self.text.clear();
        self.spans.clear();
        self.ids.clear();
        self.appended.clear();
    }

    /// How many present values are interned; their ids are 1 to this.
    fn present_count(&self) -> usize {
        self.spans.len()
    }

    fn intern(&mut self, value: Option<&str>) -> StateId {
        match value {
            None => ABSENT,
            Some(value) => {
                // Hashed once, for the lookup and, if it fails, the insertion.
                let hash = hash_text(value);
                match self.find(hash, value) {
                    Some(id) => id,
                    None => self.insert(hash, value),
                }
            }
        }
    }

    /// The id of present `value`, whose [`hash_text`] is `hash`, if interned.
    fn find(&self, hash: u64, value: &str) -> Option<StateId> {
        let (text, spans) = (&self.text, &self.spans);
        self.ids
            .find(hash, |entry| {
                let (start, end) = spans[entry as usize];
                &text[start..end] == value
            })
            .map(|entry| entry + 1)
    }

    /// Interns present `value`, whose [`hash_text`] is `hash`, which is not interned yet.
    fn insert(&mut self, hash: u64, value: &str) -> StateId {
        let id = StateId::try_from(self.spans.len() + 1)
            .ok()
            .filter(|&id| id < DEAD)
            .expect("linearizability: fewer than 2^32 - 2 distinct values per key");
        let start = self.text.len();
        self.text.push_str(value);
        self.spans.push((start, self.text.len()));
        self.ids.push(hash);
        id
    }

    fn value(&self, id: StateId) -> Option<&str> {
        match id {
            ABSENT => None,
            id => {
                let (start, end) = self.spans[id as usize - 1];
                Some(&self.text[start..end])
            }
        }
    }

    /// The state after appending `suffix` (of operation `op`) to `state`.
    #[inline(never)]
    fn append(&mut self, state: StateId, op: u32, suffix: &str) -> StateId {
        if let Some(id) = self.appended.get(state, op) {
            return id;
        }
        let mut value = std::mem::take(&mut self.scratch);
        value.clear();
        value.push_str(self.value(state).unwrap_or(""));
        value.push_str(suffix);
        let id = self.intern(Some(&value));
        self.scratch = value;
        self.appended.grow_for(self.spans.len());
        self.appended.insert(state, op, id);
        id
    }
}

/// A set of operations, interned: [`EMPTY`], a [`SINGLE`] set, or an index into [`SetTable`].
type SetId = u32;

/// The empty set.
const EMPTY: SetId = 0;

/// The set of operation `op` alone is `SINGLE | op` (operation ids are below `NIL / 2`, so
/// this is below `NIL`), and interned ids are below `SINGLE`. Most sets of a simulated history
/// hold no operation or one: those are made, taken apart and tested without a lookup.
const SINGLE: SetId = 1 << 31;

/// A memo of a function of two ids to an id: [`StateTable::append`]'s, and
/// [`SetTable::with`]'s and [`SetTable::without`]'s. Direct-mapped, so a lookup is one probe
/// and a new entry one store, where a hash map would pay for hashing, probing and growing on
/// every call, and most calls on simulated histories are new. A colliding entry replaces the
/// old one, which is then computed again when next needed, with the same result (the ids are
/// interned): the memo only saves work.
#[derive(Default)]
struct PairMemo {
    /// Per slot: the two arguments, the result, and the generation it was stored in (an
    /// entry of another generation is empty). A power of two long, or empty.
    slots: Vec<[u32; 4]>,
    /// The current generation, never 0 (the generation of the slots as allocated).
    generation: u32,
}

impl PairMemo {
    /// The fewest slots a memo has once it has any.
    const SLOTS_MIN: usize = 64;

    /// The most slots a memo grows to (16 bytes each).
    const SLOTS_MAX: usize = 1 << 16;

    /// Forgets every entry, in constant time.
    fn clear(&mut self) {
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            self.slots.fill([0; 4]);
            self.generation = 1;
        }
    }

    /// Makes room for about `entries` entries, forgetting them all if it grows.
    fn reserve(&mut self, entries: usize) {
        let slots = (2 * entries)
            .next_power_of_two()
            .clamp(Self::SLOTS_MIN, Self::SLOTS_MAX);
        if slots > self.slots.len() {
            self.slots.clear();
            self.slots.resize(slots, [0; 4]);
            self.generation = 1;
        }
    }

    /// Grows to about twice `entries` slots if it has fewer than `entries` (forgetting them
    /// all), so that a long search does not thrash the memo.
    fn grow_for(&mut self, entries: usize) {
        if entries > self.slots.len() {
            self.reserve(entries);
        }
    }

    /// The slot of `(a, b)`: the top bits of a multiplicative hash.
    fn slot(&self, a: u32, b: u32) -> usize {
        let key = (u64::from(a) << 32 | u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        (key >> (64 - self.slots.len().trailing_zeros())) as usize
    }

    fn get(&self, a: u32, b: u32) -> Option<u32> {
        if self.slots.is_empty() {
            return None;
        }
        let [slot_a, slot_b, result, generation] = self.slots[self.slot(a, b)];
        (slot_a == a && slot_b == b && generation == self.generation).then_some(result)
    }

    fn insert(&mut self, a: u32, b: u32, result: u32) {
        if !self.slots.is_empty() {
            let slot = self.slot(a, b);
            self.slots[slot] = [a, b, result, self.generation];
        }
    }
}

/// Sorted sets of operations, interned, so that equal sets have the same id: a configuration
/// is then a few integers, copied, compared and hashed without touching its sets, and adding
/// an operation to a set or taking it out is one lookup once it has been done before. The
/// sets are kept back to back in one vector; every set was made by a search step, so they
/// take no more room than lists of their own in each configuration would. Sets of one
/// operation are not stored (see [`SINGLE`]), so every set has exactly one id all the same.
/// Reused from search to search.
struct SetTable {
    elems: Vec<u32>,
    /// Per set: where its operations are in `elems`.
    spans: Vec<(usize, usize)>,
    /// Finds a set by its operations.
    ids: EntryIndex,
    /// `(set, op)` to the set with `op` added.
    with: PairMemo,
    /// `(set, op)` to the set with `op` taken out, likewise.
    without: PairMemo,
    /// Where [`SetTable::with`] and [`SetTable::without`] build a set to look it up.
    scratch: Vec<u32>,
    /// `units[op] == op`: the operation of a [`SINGLE`] set, for [`SetTable::get`] to lend.
    units: Vec<u32>,
}

impl Default for SetTable {
    fn default() -> Self {
        let mut table = SetTable {
            elems: Vec::new(),
            spans: Vec::new(),
            ids: EntryIndex::default(),
            with: PairMemo::default(),
            without: PairMemo::default(),
            scratch: Vec::new(),
            units: Vec::new(),
        };
        table.clear();
        table
    }
}

impl SetTable {
    /// Forgets every set but [`EMPTY`] and the [`SINGLE`] ones.
    fn clear(&mut self) {
        self.elems.clear();
        self.spans.clear();
        self.ids.clear();
        self.with.clear();
        self.without.clear();
        self.spans.push((0, 0));
        self.ids.push(hash_words([]));
    }

    /// The operations of `set`, sorted.
    fn get(&self, set: SetId) -> &[u32] {
        if set & SINGLE != 0 {
            let op = (set & !SINGLE) as usize;
            return &self.units[op..=op];
        }
        let (start, end) = self.spans[set as usize];
        &self.elems[start..end]
    }

    fn len(&self, set: SetId) -> usize {
        self.get(set).len()
    }

    fn contains(&self, set: SetId, op: u32) -> bool {
        set == SINGLE | op || (set != EMPTY && self.get(set).binary_search(&op).is_ok())
    }

    /// The set of `op` alone.
    #[inline]
    fn single(&mut self, op: u32) -> SetId {
        if op as usize >= self.units.len() {
            self.grow_units(op);
        }
        SINGLE | op
    }

    #[cold]
    #[inline(never)]
    fn grow_units(&mut self, op: u32) {
        let have = self.units.len() as u32;
        self.units.extend(have..=op);
    }

    /// `set` with `op` added.
    #[inline]
    fn with(&mut self, set: SetId, op: u32) -> SetId {
        if set == EMPTY {
            return self.single(op);
        }
        self.with_looked_up(set, op)
    }

    /// [`SetTable::with`] of a set that is not empty: through the memo, or made and interned.
    #[inline(never)]
    fn with_looked_up(&mut self, set: SetId, op: u32) -> SetId {
        if let Some(id) = self.with.get(set, op) {
            return id;
        }
        let id = match self.get(set).binary_search(&op) {
            Ok(_) => set,
            Err(at) => {
                let mut scratch = std::mem::take(&mut self.scratch);
                scratch.clear();
                let elems = self.get(set);
                scratch.extend_from_slice(&elems[..at]);
                scratch.push(op);
                scratch.extend_from_slice(&elems[at..]);
                let id = self.intern(&scratch);
                self.scratch = scratch;
                id
            }
        };
        self.with.insert(set, op, id);
        id
    }

    /// `set` with `op` taken out.
    #[inline]
    fn without(&mut self, set: SetId, op: u32) -> SetId {
        if set == EMPTY || set & SINGLE != 0 {
            return if set == SINGLE | op { EMPTY } else { set };
        }
        self.without_looked_up(set, op)
    }

    /// [`SetTable::without`] of a set of two or more: through the memo, or made and interned.
    #[inline(never)]
    fn without_looked_up(&mut self, set: SetId, op: u32) -> SetId {
        if let Some(id) = self.without.get(set, op) {
            return id;
        }
        let id = match self.get(set).binary_search(&op) {
            Err(_) => set,
            Ok(at) => {
                let mut scratch = std::mem::take(&mut self.scratch);
                scratch.clear();
                let elems = self.get(set);
                scratch.extend_from_slice(&elems[..at]);
                scratch.extend_from_slice(&elems[at + 1..]);
                let id = self.intern(&scratch);
                self.scratch = scratch;
                id
            }
        };
        self.without.insert(set, op, id);
        id
    }

    fn intern(&mut self, elems: &[u32]) -> SetId {
        match *elems {
            [] => return EMPTY,
            [op] => return self.single(op),
            _ => {}
        }
        let hash = hash_words(elems.iter().map(|&op| u64::from(op)));
        let (all, spans) = (&self.elems, &self.spans);
        if let Some(id) = self.ids.find(hash, |id| {
            let (start, end) = spans[id as usize];
            &all[start..end] == elems
        }) {
            return id;
        }
        let id = SetId::try_from(self.spans.len())
            .ok()
            .filter(|&id| id < SINGLE)
            .expect("linearizability: fewer than 2^31 sets per search");
        let start = self.elems.len();
        self.elems.extend_from_slice(elems);
        self.spans.push((start, self.elems.len()));
        self.ids.push(hash);
        self.with.grow_for(self.spans.len());
        self.without.grow_for(self.spans.len());
        id
    }
}

/// What an operation does to the register, with its values interned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Effect<'h> {
    Get,
    Put(StateId),
    Append(&'h str),
    Delete,
    Cas { expected: StateId, new: StateId },
}

/// An [`OpResult`] with its values interned, so results compare as integers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Res {
    Ok,
    Value(StateId),
    NotFound,
    CasMismatch(StateId),
}

/// How an operation takes part in the search.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Role {
    /// Took effect within its window with a known result: must be linearized.
    Required,
    /// Relaxed by witness shrinking: may take effect within its window, or not at all.
    Optional,
    /// Indeterminate: may take effect at any instant after its invoke, or not at all.
    Info,
}

/// How the witness shrinking treats an operation in a search.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Treat {
    /// As the history says.
    Keep,
    /// Relaxed: may or may not take effect within its window, with any result.
    Relax,
    /// Left out (it completed before everything that matters; see [`Shrinker::refutes`]).
    Drop,
}

/// True if an operation expecting `expect` (`None`: anything) accepts `result`.
fn accepts(expect: Option<Res>, result: Res) -> bool {
    match expect {
        Some(expected) => expected == result,
        None => true,
    }
}

/// The role of `op` in a search, or `None` if it is dropped.
fn role_of(op: &KeyOp<'_>, treat: Treat) -> Option<Role> {
    let role = match (&op.recorded.outcome, op.complete_tick, treat) {
        (_, _, Treat::Drop) | (Outcome::Fail, _, _) => return None,
        (Outcome::Ok(_), Some(_), Treat::Keep) => Role::Required,
        (Outcome::Ok(_), Some(_), Treat::Relax) => Role::Optional,
        (Outcome::Ok(_), None, _) | (Outcome::Info, _, _) => Role::Info,
    };
    // A read that may not have happened, or whose result is not checked, constrains nothing.
    if role != Role::Required && op.recorded.op.is_read() {
        return None;
    }
    Some(role)
}

/// One operation of a key's search.
#[derive(Debug, Clone, Copy)]
struct PlanOp<'h> {
    role: Role,
    effect: Effect<'h>,
    /// The recorded result; `None` for operations whose result is not checked.
    expect: Option<Res>,
    invoke_tick: Tick,
    /// `Tick::MAX` (never) for [`Role::Info`].
    complete_tick: Tick,
    /// Position among the key's operations, for deterministic tie-breaking.
    origin: usize,
    /// For a read-only operation: the one state it accepts.
    target: Option<StateId>,
    /// The present values this operation compares the register with for equality, `NIL` for
    /// none: a `Cas` expectation, and a checked `Get` or `CasMismatch` result. A value that no
    /// pending operation's target starts with can never be seen again (see
    /// [`Sweep::canonical`]).
    observes: [StateId; 2],
    /// Operations of the same class behave alike in every state: the same role, the same
    /// recorded result, and the same effect, where a `Put` or `Append` whose value no
    /// operation of the key can ever see counts as one effect ("make the value unseen").
    class: u32,
    /// For an indeterminate operation: the latest indeterminate operation invoked before it
    /// of the same class, or `NIL`. See [`Sweep::is_first_twin`].
    twin_before: u32,
    /// A required operation that leaves the state unchanged in *every* state whose result
    /// matches its recorded one: a `Get`, a `Cas` answered `CasMismatch` (or expecting the
    /// value it sets), a `Delete` answered `NotFound`. (A `Put` of the value already there
    /// is not: elsewhere it would change the state.)
    read_only: bool,
}

impl PlanOp<'_> {
    /// True for a write whose result (`Ok`) does not depend on the state: a `Put` or an
    /// `Append`.
    fn is_blind(&self) -> bool {
        matches!(self.effect, Effect::Put(_) | Effect::Append(_))
    }

    /// True for a required operation that replaces any present value, whatever it was, with
    /// the same state and result: a `Put`, or a `Delete` answered `Ok`. A blind write
    /// linearized right before it is never seen.
    fn is_overwrite(&self) -> bool {
        self.role == Role::Required
            && match self.effect {
                Effect::Put(_) => true,
                Effect::Delete => self.expect == Some(Res::Ok),
                _ => false,
            }
    }

    /// True if the operation may change the state: not a read, nor a read-only result.
    fn is_writer(&self) -> bool {
        !self.read_only && !matches!(self.effect, Effect::Get)
    }
}

/// What defines an operation's class (see [`PlanOp::class`]): its role, its effect (`None`:
/// it makes the value unseen), and its recorded result.
type ClassKey<'h> = (Role, Option<Effect<'h>>, Option<Res>);

/// The classes of a key's operations, interned in an [`EntryIndex`] under a hash of a few
/// words (an `Append`'s suffix hashed once), so a class costs no general-purpose hashing of
/// the whole key. Reused from key to key.
#[derive(Default)]
struct ClassTable<'h> {
    /// Per class: what defines it.
    keys: Vec<ClassKey<'h>>,
    /// Finds a class by its key.
    ids: EntryIndex,
    /// Per class of indeterminate operations: the latest one so far, or `NIL`.
    last_twin: Vec<u32>,
}

impl<'h> ClassTable<'h> {
    fn clear(&mut self) {
        self.keys.clear();
        self.ids.clear();
        self.last_twin.clear();
    }

    /// The class of `key`, numbered in the order classes first come.
    fn intern(&mut self, key: ClassKey<'h>) -> u32 {
        let (role, effect, expect) = key;
        let (effect_kind, effect_words) = match effect {
            None => (0, [0, 0]),
            Some(Effect::Get) => (1, [0, 0]),
            Some(Effect::Put(value)) => (2, [u64::from(value), 0]),
            Some(Effect::Append(suffix)) => (3, [hash_text(suffix), 0]),
            Some(Effect::Delete) => (4, [0, 0]),
            Some(Effect::Cas { expected, new }) => (5, [u64::from(expected), u64::from(new)]),
        };
        let (expect_kind, expect_word) = match expect {
            None => (0, 0),
            Some(Res::Ok) => (1, 0),
            Some(Res::Value(state)) => (2, u64::from(state)),
            Some(Res::NotFound) => (3, 0),
            Some(Res::CasMismatch(state)) => (4, u64::from(state)),
        };
        let kinds = (role as u64) << 16 | effect_kind << 8 | expect_kind;
        let hash = hash_words([kinds, effect_words[0], effect_words[1], expect_word]);
        let keys = &self.keys;
        if let Some(class) = self.ids.find(hash, |class| keys[class as usize] == key) {
            return class;
        }
        let class = self.keys.len() as u32;
        self.keys.push(key);
        self.ids.push(hash);
        self.last_twin.push(NIL);
        class
    }
}

/// A key's history, prepared for the search. Reused from key to key (see [`Search`]).
#[derive(Default)]
struct Plan<'h> {
    states: StateTable,
    initial: StateId,
    /// Operations with a finite window first, then [`Role::Info`] ones; each group sorted by
    /// invoke tick.
    ops: Vec<PlanOp<'h>>,
    /// How many operations have a finite window (the first `finite_count` of `ops`).
    finite_count: usize,
    /// Every value some operation compares the register with for equality (see
    /// [`PlanOp::observes`]), sorted by value, each after its [`order_key`] (so that most
    /// comparisons of values are one of integers).
    targets: Vec<(u64, StateId)>,
    /// The targets' values back to back, each followed by a NUL byte, for
    /// [`Plan::any_target_contains`].
    target_text: String,
    /// Memo of [`Plan::targets_extending`], per state: the range of `targets`, or
    /// [`EXTENDING_UNKNOWN`] if not known yet.
    extending: Vec<(usize, usize)>,
    /// Operation classes (see [`PlanOp::class`]).
    classes: ClassTable<'h>,
}

impl<'h> Plan<'h> {
    /// Prepares `ops` (all of one key), each treated as `treat` says, in place of the key
    /// prepared before.
    fn prepare(&mut self, ops: &[KeyOp<'h>], treat: &[Treat], initial: Option<&str>) {
        assert_eq!(
            ops.len(),
            treat.len(),
            "linearizability: one treatment per op"
        );
        let states = &mut self.states;
        states.clear();
        self.initial = states.intern(initial);
        let plan_ops = &mut self.ops;
        plan_ops.clear();
        for (origin, (op, &treat)) in ops.iter().zip(treat).enumerate() {
            let Some(role) = role_of(op, treat) else {
                continue;
            };
            let effect = match &*op.recorded.op {
                Op::Get { .. } => Effect::Get,
                Op::Put { value, .. } => Effect::Put(states.intern(Some(value))),
                Op::Append { value, .. } => Effect::Append(value),
                Op::Delete { .. } => Effect::Delete,
                Op::Cas { expected, new, .. } => Effect::Cas {
                    expected: states.intern(expected.as_deref()),
                    new: states.intern(Some(new)),
                },
            };
            let expect = match (&op.recorded.outcome, role) {
                (Outcome::Ok(result), Role::Required) => Some(match result {
                    OpResult::Ok => Res::Ok,
                    OpResult::Value(value) => Res::Value(states.intern(Some(value))),
                    OpResult::NotFound => Res::NotFound,
                    OpResult::CasMismatch { current } => {
                        Res::CasMismatch(states.intern(current.as_deref()))
                    }
                }),
                _ => None,
            };
            let read_only = match (effect, expect) {
                (_, None) => false,
                (Effect::Get, _)
                | (Effect::Cas { .. }, Some(Res::CasMismatch(_)))
                | (Effect::Delete, Some(Res::NotFound)) => true,
                (Effect::Cas { expected, new }, Some(_)) => expected == new,
                (Effect::Put(_) | Effect::Append(_) | Effect::Delete, Some(_)) => false,
            };
            let target = match (read_only, effect, expect) {
                (false, _, _) => None,
                (true, _, Some(Res::Value(state) | Res::CasMismatch(state))) => Some(state),
                (true, _, Some(Res::NotFound)) => Some(ABSENT),
                (true, Effect::Cas { expected, .. }, Some(Res::Ok)) => Some(expected),
                // A result this operation can never give (a `Get` answered `Ok`, say).
                (true, _, _) => None,
            };
            // The values this operation compares the register with for equality.
            let observes = [
                match effect {
                    Effect::Cas { expected, .. } if expected != ABSENT => expected,
                    _ => NIL,
                },
                match expect {
                    Some(Res::Value(value) | Res::CasMismatch(value)) if value != ABSENT => value,
                    _ => NIL,
                },
            ];
            plan_ops.push(PlanOp {
                role,
                effect,
                expect,
                target,
                observes,
                class: 0,
                twin_before: NIL,
                read_only,
                invoke_tick: op.invoke_tick,
                complete_tick: match role {
                    Role::Info => Tick::MAX,
                    Role::Required | Role::Optional => op.complete_tick.expect("completed"),
                },
                origin,
            });
        }
        // The keys are distinct (`origin`), so an unstable sort is deterministic.
        plan_ops.sort_unstable_by_key(|op| (op.role == Role::Info, op.invoke_tick, op.origin));
        self.finite_count = plan_ops.iter().filter(|op| op.role != Role::Info).count();
        assert!(
            u32::try_from(plan_ops.len()).is_ok_and(|n| n < NIL / 2),
            "linearizability: too many operations on one key"
        );
        // Sorted by value: by the order keys, and the text where they tie. (No two targets
        // have the same value, so an unstable sort is deterministic.)
        let mut keyed = std::mem::take(&mut self.targets);
        keyed.clear();
        keyed.extend(
            plan_ops
                .iter()
                .flat_map(|op| op.observes)
                .filter(|&target| target != NIL)
                .map(|target| (order_key(states.value(target).unwrap_or("")), target)),
        );
        keyed.sort_unstable_by(|a, b| {
            a.0.cmp(&b.0)
                .then_with(|| states.value(a.1).cmp(&states.value(b.1)))
        });
        keyed.dedup();
        self.target_text.clear();
        for &(_, target) in &keyed {
            self.target_text
                .push_str(states.value(target).unwrap_or(""));
            self.target_text.push('\0');
        }
        self.targets = keyed;
        // Room for every value interned so far, which most searches stay within.
        self.extending.clear();
        self.extending
            .resize(self.states.present_count() + 1, EXTENDING_UNKNOWN);
        // Classes, numbered in operation order.
        self.classes.clear();
        for op in 0..self.ops.len() {
            let PlanOp {
                role,
                effect,
                expect,
                ..
            } = self.ops[op];
            let unseen = match effect {
                Effect::Put(value) => self.targets_extending(value).is_empty(),
                Effect::Append(suffix) => !suffix.is_empty() && !self.any_target_contains(suffix),
                _ => false,
            };
            let effect = (!unseen).then_some(effect);
            let class = self.classes.intern((role, effect, expect));
            self.ops[op].class = class;
            if role == Role::Info {
                let last = &mut self.classes.last_twin[class as usize];
                self.ops[op].twin_before = std::mem::replace(last, op as u32);
            }
        }
    }

    /// True if some target's value contains `text`.
    fn any_target_contains(&self, text: &str) -> bool {
        if text.contains('\0') {
            self.targets.iter().any(|&(_, t)| {
                self.states
                    .value(t)
                    .is_some_and(|target| target.contains(text))
            })
        } else {
            // Without a NUL, a match cannot straddle two targets.
            self.target_text.contains(text)
        }
    }

    /// The targets (see [`PlanOp::observes`]) whose value starts with `state`'s value, which
    /// must be present: those that could see it, directly or after appends. Being sorted by
    /// value, they are a range of [`Plan::targets`].
    fn targets_extending(&mut self, state: StateId) -> &[(u64, StateId)] {
        let slot = state as usize;
        if slot >= self.extending.len() {
            self.extending.resize(slot + 1, EXTENDING_UNKNOWN);
        }
        if self.extending[slot] == EXTENDING_UNKNOWN {
            let value = self.states.value(state).expect("a present value");
            let key = order_key(value);
            let first = self.targets.partition_point(|&(target_key, target)| {
                target_key < key || (target_key == key && self.states.value(target) < Some(value))
            });
            // A target starting with `value` has a key starting with its first bytes: most
            // lists end at the first target, without comparing text.
            let prefix_mask = match value.len() {
                0 => 0,
                len @ 1..8 => !0u64 << (64 - 8 * len),
                _ => !0,
            };
            let count = self.targets[first..]
                .iter()
                .take_while(|&&(target_key, target)| {
                    (target_key ^ key) & prefix_mask == 0
                        && self
                            .states
                            .value(target)
                            .is_some_and(|target| target.starts_with(value))
                })
                .count();
            self.extending[slot] = (first, first + count);
        }
        let (first, end) = self.extending[slot];
        &self.targets[first..end]
    }

    /// Applies operation `op` to `state`: the next state and the result.
    fn apply(&mut self, state: StateId, op: u32) -> (StateId, Res) {
        match self.ops[op as usize].effect {
            Effect::Get if state == ABSENT => (state, Res::NotFound),
            Effect::Get => (state, Res::Value(state)),
            Effect::Put(new) => (new, Res::Ok),
            Effect::Append(suffix) => (self.states.append(state, op, suffix), Res::Ok),

            Effect::Delete if state == ABSENT => (state, Res::NotFound),
            Effect::Delete => (ABSENT, Res::Ok),
            Effect::Cas { expected, new } if state == expected => (new, Res::Ok),
            Effect::Cas { .. } => (state, Res::CasMismatch(state)),
        }
    }
}

/// The tables of a key's search, kept from one key (and one shrinking trial) to the next, so
/// that checking a history allocates little once the first keys have grown them.
#[derive(Default)]
struct Search<'h> {
    plan: Plan<'h>,
    sweep: Sweep,
}

impl Search<'_> {
    /// Makes room for the search of keys of up to `ops` operations each, so that the tables
    /// are allocated once rather than grown by doubling through the first key (a check
    /// starts with fresh tables, and most histories are short).
    fn reserve(&mut self, ops: usize) {
        let (plan, sweep) = (&mut self.plan, &mut self.sweep);
        plan.ops.reserve(ops);
        // Each operation names at most two values, and the search makes a few more.
        plan.states.spans.reserve(2 * ops);
        plan.states.ids.reserve(2 * ops);
        plan.states.appended.reserve(ops);
        plan.targets.reserve(2 * ops);
        plan.extending.reserve(2 * ops);
        plan.classes.ids.reserve(ops);
        plan.classes.keys.reserve(ops);
        plan.classes.last_twin.reserve(ops);
        let events = 2 * ops;
        for list in [
            &mut sweep.events,
            &mut sweep.scratch_calls,
            &mut sweep.scratch_returns,
        ] {
            list.reserve(events);
        }
        sweep.last_use.reserve(2 * ops);
        sweep.live_end.reserve(2 * ops);
        sweep.call_index.reserve(ops);
        sweep.return_index.reserve(ops);
        sweep.frames.reserve(events + 1);
        sweep.children.reserve(2 * events);
        sweep.trail.reserve(events);
        sweep.sets.with.reserve(ops);
        sweep.sets.without.reserve(ops);
        sweep.sets.ids.reserve(ops);
    }

    /// Searches the prepared plan for a linearization within `steps_max` steps; returns what
    /// it found and the steps it took.
    fn run(&mut self, steps_max: u64) -> (Found, u64) {
        self.sweep.reset(&self.plan, steps_max);
        let found = self.sweep.run(&mut self.plan);
        debug_assert!(self.sweep.steps <= steps_max);
        (found, self.sweep.steps)
    }
}

/// The outcome of one search.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Found {
    Linearizable,
    /// No linearization, and the search never had to look at an operation invoked after
    /// `frontier_tick` to find that out: the sweep died at a return at that tick, having
    /// processed only the calls at or before it.
    NotLinearizable {
        frontier_tick: Tick,
    },
    OutOfSteps,
}

/// One event of a key's history: a call, or the return of an operation with a finite window.
/// Indeterminate operations have a call only.
#[derive(Debug, Clone, Copy)]
struct Event {
    op: u32,
    tick: Tick,
    is_return: bool,
}

impl Event {
    /// The events' order: by tick, and at equal ticks calls before returns (see the module
    /// documentation), each kind by operation.
    fn order(&self) -> (Tick, bool, u32) {
        (self.tick, self.is_return, self.op)
    }
}

/// One configuration of the sweep: how a linearization of everything that returned so far
/// can stand. Operations that returned are all linearized (or, if optional, dropped), so
/// only the open ones are listed; indeterminate operations never return, so every one that
/// was linearized stays listed. The lists are interned in the sweep's [`SetTable`], so a
/// configuration is a handful of integers: copied, compared and hashed without allocating.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Config {
    /// The register, canonical (see [`Sweep::canonical`]).
    state: StateId,
    /// Open required operations already linearized.
    required: SetId,
    /// Open optional operations and indeterminate operations already linearized.
    optional: SetId,
    /// When the last move linearized a non-required operation and nothing has told the
    /// states before and after it apart since: the state before it. Else `NIL`.
    unobserved: StateId,
    /// When the last move linearized a required blind write (see [`PlanOp::is_blind`]) that
    /// has not returned yet, and no read has seen its value since: that write. Else `NIL`.
    blind: u32,
    /// With `blind`: whether the register was present before that write.
    blind_from_present: bool,
    /// One more than the index of the event at which the latest overwrite (see
    /// [`PlanOp::is_overwrite`]) of this configuration's linearization was made; 0 if none.
    last_overwrite: usize,
}

impl Config {
    /// The set `op` belongs in while open.
    fn set_of(&mut self, plan: &Plan<'_>, op: u32) -> &mut SetId {
        match plan.ops[op as usize].role {
            Role::Required => &mut self.required,
            Role::Optional | Role::Info => &mut self.optional,
        }
    }

    fn is_done(&self, plan: &Plan<'_>, sets: &SetTable, op: u32) -> bool {
        let set = match plan.ops[op as usize].role {
            Role::Required => self.required,
            Role::Optional | Role::Info => self.optional,
        };
        sets.contains(set, op)
    }

    fn set_done(&mut self, plan: &Plan<'_>, sets: &mut SetTable, op: u32, done: bool) {
        let set = self.set_of(plan, op);
        *set = if done {
            sets.with(*set, op)
        } else {
            sets.without(*set, op)
        };
    }

    /// True if every path from `self` is also a path from `other`: same state and required
    /// operations, a subset of the optional ones (which may always be left out), and no
    /// stricter condition on the next move.
    fn dominates(&self, other: &Config, sets: &SetTable) -> bool {
        (self.unobserved == NIL || self.unobserved == other.unobserved)
            && (self.blind == NIL
                || (self.blind == other.blind
                    && self.blind_from_present == other.blind_from_present))
            && self.last_overwrite >= other.last_overwrite
            && (self.optional == other.optional
                || is_subset(sets.get(self.optional), sets.get(other.optional)))
    }
}

/// One frame of the depth-first search: a configuration before the event of the frame's
/// depth, and once expanded, the configurations after it: `children[first..end]` of the
/// sweep, of which those before `next` have been tried. Every frame's children sit above its
/// parent's in that one stack, so the search allocates nothing per frame.
#[derive(Debug, Clone, Copy)]
struct Frame {
    config: Config,
    trail: u32,
    expanded: bool,
    first: usize,
    end: usize,
    next: usize,
}

impl Frame {
    fn new(config: Config, trail: u32) -> Frame {
        Frame {
            config,
            trail,
            expanded: false,
            first: 0,
            end: 0,
            next: 0,
        }
    }
}

/// One move of the sweep, linked to the one before it.
#[derive(Debug, Clone, Copy)]
struct Move {
    op: u32,
    previous: u32,
    /// The event at which the move was made.
    index: usize,
    /// A blind write absorbed at its return (see [`Sweep::on_return`]).
    absorbed: bool,
}

/// True if sorted `a` is a subset of sorted `b`.
fn is_subset(a: &[u32], b: &[u32]) -> bool {
    let mut b = b.iter();
    a.iter().all(|x| b.any(|y| y == x))
}

/// A configuration with its trail (its last move, see [`Sweep::trail`]).
type Trailed = (Config, u32);

/// How many entries a [`Frontier`] or a [`ConfigSet`] scans through before it files them in
/// a hash table: most hold one or two, and scanning those costs less than hashing.
const SCAN_MAX: usize = 8;

/// A set of configurations with no member dominated by another (see [`Config::dominates`]),
/// in groups by state and required operations (only configurations alike in those can
/// dominate one another). Emptied and refilled at every return: its groups keep their room.
#[derive(Default)]
struct Frontier {
    /// Group by state and required operations: its index in `groups`, for the first
    /// `indexed` groups (none while there are at most [`SCAN_MAX`]). Only looked up.
    index: FixedHashMap<(StateId, SetId), usize>,
    indexed: usize,
    /// The groups in use are the first `live`; the rest are kept for their room.
    groups: Vec<Group>,
    live: usize,
}

/// The configurations of a [`Frontier`] alike in state and required operations, each with
/// its trail, in the order they came.
struct Group {
    state: StateId,
    required: SetId,
    members: Vec<Trailed>,
}

impl Frontier {
    fn clear(&mut self) {
        for group in &mut self.groups[..self.live] {
            group.members.clear();
        }
        if self.indexed > 0 {
            self.index.clear();
            self.indexed = 0;
        }
        self.live = 0;
    }

    /// The index in `groups` of the group of `state` and `required`: `live` if there is none.
    fn group_of(&mut self, state: StateId, required: SetId) -> usize {
        let live = self.live;
        if live < SCAN_MAX {
            return self.groups[..live]
                .iter()
                .position(|group| group.state == state && group.required == required)
                .unwrap_or(live);
        }
        for (at, group) in self.groups[..live].iter().enumerate().skip(self.indexed) {
            self.index.insert((group.state, group.required), at);
        }
        self.indexed = live;
        *self.index.entry((state, required)).or_insert(live)
    }

    fn insert(&mut self, sets: &SetTable, config: Config, trail: u32) {
        let live = self.live;
        let at = self.group_of(config.state, config.required);
        if at == live {
            let group = Group {
                state: config.state,
                required: config.required,
                members: Vec::new(),
            };
            match self.groups.get_mut(live) {
                Some(spare) => {
                    spare.state = group.state;
                    spare.required = group.required;
                }
                None => self.groups.push(group),
            }
            self.live += 1;
        }
        let group = &mut self.groups[at].members;
        if group.iter().any(|(kept, _)| kept.dominates(&config, sets)) {
            return;
        }
        group.retain(|(kept, _)| !config.dominates(kept, sets));
        group.push((config, trail));
    }

    /// Moves the configurations to the end of `out` and empties the frontier. The order is
    /// deterministic, and the one the search has always used: by state, then by the sorted
    /// list of required operations, each group in the order its members came.
    fn drain_into(&mut self, sets: &SetTable, out: &mut Vec<Trailed>) {
        // No two live groups have the same key, so an unstable sort is deterministic.
        if self.live > 1 {
            self.groups[..self.live].sort_unstable_by(|a, b| {
                (a.state, sets.get(a.required)).cmp(&(b.state, sets.get(b.required)))
            });
        }
        for group in &self.groups[..self.live] {
            out.extend_from_slice(&group.members);
        }
        self.clear();
    }
}

/// A set of configurations, scanned while small and hashed once it has grown (see
/// [`SCAN_MAX`]).
#[derive(Default)]
struct ConfigSet {
    /// The members while there are at most [`SCAN_MAX`] of them; then `hashed` holds them.
    scanned: Vec<Config>,
    hashed: FixedHashSet<Config>,
}

impl ConfigSet {
    fn clear(&mut self) {
        self.scanned.clear();
        if !self.hashed.is_empty() {
            self.hashed.clear();
        }
    }

    /// Adds `config`; true if it was not a member yet.
    fn insert(&mut self, config: Config) -> bool {
        if self.hashed.is_empty() {
            if self.scanned.contains(&config) {
                return false;
            }
            if self.scanned.len() < SCAN_MAX {
                self.scanned.push(config);
                return true;
            }
            self.hashed.extend(self.scanned.drain(..));
        }
        self.hashed.insert(config)
    }
}

/// Per event, the configurations known to fail from there (see [`Sweep::run`]): a set with
/// no member dominated by another, like a [`Frontier`], kept as one linked list per event,
/// state and required operations in a single vector, so a failure allocates nothing once the
/// vector has grown. A removed member stays in the vector, unlinked; every member was a
/// popped frame, so they are bounded by the steps.
#[derive(Default)]
struct Failed {
    /// By event, state and required operations: the list's first member. Only looked up.
    heads: FixedHashMap<(usize, StateId, SetId), u32>,
    /// Members: the configuration and the next member of its list, or `NIL`.
    nodes: Vec<(Config, u32)>,
    /// Per event: how many members were ever inserted at it.
    counts: Vec<u32>,
}

impl Failed {
    fn clear(&mut self) {
        self.heads.clear();
        self.nodes.clear();
        self.counts.clear();
    }

    /// True if some member at event `index` dominates `config`.
    #[inline]
    fn dominated(&self, sets: &SetTable, index: usize, config: &Config) -> bool {
        // Nothing failed at this event: the usual case, decided without hashing the key.
        self.counts.get(index).is_some_and(|&count| count > 0)
            && self.dominated_at(sets, index, config)
    }

    /// [`Failed::dominated`] at an event where something failed.
    #[inline(never)]
    fn dominated_at(&self, sets: &SetTable, index: usize, config: &Config) -> bool {
        let mut node = match self.heads.get(&(index, config.state, config.required)) {
            Some(&head) => head,
            None => return false,
        };
        while node != NIL {
            let (kept, next) = &self.nodes[node as usize];
            if kept.dominates(config, sets) {
                return true;
            }
            node = *next;
        }
        false
    }

    fn insert(&mut self, sets: &SetTable, index: usize, config: Config) {
        if self.dominated(sets, index, &config) {
            return;
        }
        let key = (index, config.state, config.required);
        let mut head = self.heads.get(&key).copied().unwrap_or(NIL);
        // Unlink the members `config` dominates.
        let (mut previous, mut node) = (NIL, head);
        while node != NIL {
            let (kept, next) = self.nodes[node as usize];
            if config.dominates(&kept, sets) {
                if previous == NIL {
                    head = next;
                } else {
                    self.nodes[previous as usize].1 = next;
                }
            } else {
                previous = node;
            }
            node = next;
        }
        let id = u32::try_from(self.nodes.len())
            .ok()
            .filter(|&id| id < NIL)
            .expect("linearizability: fewer than 2^32 - 1 failed configurations per search");
        self.nodes.push((config, head));
        self.heads.insert(key, id);
        if index >= self.counts.len() {
            self.counts.resize(index + 1, 0);
        }
        self.counts[index] += 1;
    }
}

/// The search over one key's history; see the module documentation. Its tables are reset,
/// not dropped, from one search to the next (see [`Search`]).
#[derive(Default)]
struct Sweep {
    events: Vec<Event>,
    /// Per state id: the index of the last event at which an operation comparing the register
    /// with that value may still be pending (`usize::MAX`: never returns); 0 for values no
    /// operation compares with.
    last_use: Vec<usize>,
    /// Memo of [`Sweep::canonical`], per state: one more than the last event at which an
    /// operation that could see it may still be pending (see `last_use`), 0 if none, or
    /// [`LIVE_END_UNKNOWN`] if not known yet.
    live_end: Vec<usize>,
    /// Open required read-only operations, in call order.
    open_readers: Vec<u32>,
    /// Open operations with a finite window that may change the state, in call order.
    open_writers: Vec<u32>,
    /// Indeterminate operations called so far, in call order.
    info_called: Vec<u32>,
    /// Every move ever made, as (operation, previous move or `NIL`): a configuration's trail
    /// is its last move, and following the links back gives its linearization.
    trail: Vec<Move>,
    /// Where [`Sweep::reset`] sorts the calls and the returns before merging them into
    /// `events`.
    scratch_calls: Vec<Event>,
    scratch_returns: Vec<Event>,
    /// Per operation: the index of its call event.
    call_index: Vec<usize>,
    /// Per operation: the index of its return event (`usize::MAX`: none).
    return_index: Vec<usize>,
    steps: u64,
    steps_max: u64,
    /// The configurations' operation sets.
    sets: SetTable,
    /// The depth-first search's stack: one frame per event processed, and one more.
    frames: Vec<Frame>,
    /// The frames' children (see [`Frame`]).
    children: Vec<Trailed>,
    /// Configurations known to fail, per event.
    failed: Failed,
    /// The configurations after the return being processed (see [`Sweep::on_return`]).
    next: Frontier,
    /// The configurations reached by the expansions at the return being processed.
    visited: ConfigSet,
    /// The expansion's configurations still to extend (see [`Sweep::expand`]).
    pending: Vec<Trailed>,
    /// The candidates of the configuration being extended.
    candidates: Vec<u32>,
    /// Scratch of [`Sweep::assert_linearization`]: the moves, the operations in order, and
    /// per operation whether it was seen.
    replay: (Vec<Move>, Vec<u32>, Vec<bool>),
}

/// Sorts `events` by [`Event::order`]. Returns listed in call order are nearly sorted (each is
/// only as far out of place as operations overlap), which an insertion sort sorts in about
/// linear time; if they turn out far from sorted, a general sort takes over.
fn sort_nearly_sorted(events: &mut [Event]) {
    let mut moves_left = 8 * events.len();
    for i in 1..events.len() {
        let event = events[i];
        let mut at = i;
        while at > 0 && events[at - 1].order() > event.order() {
            if moves_left == 0 {
                events[at] = event;
                events.sort_unstable_by_key(Event::order);
                return;
            }
            moves_left -= 1;
            events[at] = events[at - 1];
            at -= 1;
        }
        events[at] = event;
    }
}

/// Replaces `out` with the events of `a` and `b`, each sorted by [`Event::order`], in that
/// order.
fn merge_events(a: &[Event], b: &[Event], out: &mut Vec<Event>) {
    out.clear();
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        if a[i].order() <= b[j].order() {
            out.push(a[i]);
            i += 1;
        } else {
            out.push(b[j]);
            j += 1;
        }
    }
    out.extend_from_slice(&a[i..]);
    out.extend_from_slice(&b[j..]);
}

/// A [`Sweep::live_end`] not computed yet (the others are below it, "forever" included).
const LIVE_END_UNKNOWN: usize = usize::MAX;

/// The open-operation list an operation belongs in while it is open: indeterminate ones,
/// required read-only ones, or the writers.
fn open_list<'a>(
    op: &PlanOp<'_>,
    info_called: &'a mut Vec<u32>,
    open_readers: &'a mut Vec<u32>,
    open_writers: &'a mut Vec<u32>,
) -> &'a mut Vec<u32> {
    if op.role == Role::Info {
        info_called
    } else if op.role == Role::Required && op.read_only {
        open_readers
    } else {
        open_writers
    }
}

impl Sweep {
    /// Gets ready to search `plan` within `steps_max` steps, forgetting the last search.
    fn reset(&mut self, plan: &Plan<'_>, steps_max: u64) {
        // The events in [`Event::order`]. The calls of each group of `plan.ops` come sorted
        // so: they are merged, and then with the returns, sorted on their own.
        let event = |op: usize, is_return: bool| Event {
            op: op as u32,
            tick: if is_return {
                plan.ops[op].complete_tick
            } else {
                plan.ops[op].invoke_tick
            },
            is_return,
        };
        let (calls, returns) = (&mut self.scratch_calls, &mut self.scratch_returns);
        let events = &mut self.events;
        let finite = plan.finite_count;
        calls.clear();
        calls.extend((0..finite).map(|op| event(op, false)));
        if finite < plan.ops.len() {
            returns.clear();
            returns.extend((finite..plan.ops.len()).map(|op| event(op, false)));
            merge_events(calls, returns, events);
            std::mem::swap(calls, events);
        }
        returns.clear();
        returns.extend((0..finite).map(|op| event(op, true)));
        sort_nearly_sorted(returns);
        merge_events(calls, returns, events);
        let (call_index, return_index) = (&mut self.call_index, &mut self.return_index);
        call_index.clear();
        call_index.resize(plan.ops.len(), 0);
        return_index.clear();
        return_index.resize(plan.ops.len(), usize::MAX);
        for (index, event) in events.iter().enumerate() {
            if event.is_return {
                return_index[event.op as usize] = index;
            } else {
                call_index[event.op as usize] = index;
            }
        }
        let last_use = &mut self.last_use;
        last_use.clear();
        last_use.resize(plan.states.present_count() + 1, 0);
        for (op, plan_op) in plan.ops.iter().enumerate() {
            for target in plan_op.observes {
                if target != NIL {
                    let last = &mut last_use[target as usize];
                    *last = (*last).max(return_index[op]);
                }
            }
        }
        self.live_end.clear();
        self.open_readers.clear();
        self.open_writers.clear();
        self.info_called.clear();
        self.trail.clear();
        self.steps = 0;
        self.steps_max = steps_max;
        self.sets.clear();
        self.frames.clear();
        self.children.clear();
        self.failed.clear();
        self.next.clear();
        self.visited.clear();
        self.pending.clear();
        self.candidates.clear();
        // A search that goes straight through (the usual one) takes a frame per event, a
        // child or two per frame and a move per operation: room for that at once, rather
        // than grown by doubling from empty in each run's first search.
        let events_count = self.events.len();
        self.frames.reserve(events_count + 1);
        self.children.reserve(2 * events_count);
        self.trail.reserve(events_count);
    }

    /// Counts one step; `None` when the budget is spent.
    fn step(&mut self) -> Option<()> {
        if self.steps >= self.steps_max {
            return None;
        }
        self.steps += 1;
        Some(())
    }

    fn run(&mut self, plan: &mut Plan<'_>) -> Found {
        if let Some(deadline_tick) = unreachable_observer(plan) {
            return Found::NotLinearizable {
                frontier_tick: deadline_tick,
            };
        }
        let start = Config {
            state: self.canonical(plan, plan.initial, 0),
            required: EMPTY,
            optional: EMPTY,
            unobserved: NIL,
            blind: NIL,
            blind_from_present: false,
            last_overwrite: 0,
        };
        // Depth first over the events: each frame holds a configuration before its event and,
        // once expanded, the configurations after it, tried in order.
        self.frames.push(Frame::new(start, NIL));
        let mut deepest = 0;
        loop {
            let index = self.frames.len() - 1;
            if index == self.events.len() {
                let trail = self.frames[index].trail;
                self.assert_linearization(plan, trail);
                return Found::Linearizable;
            }
            if !self.frames[index].expanded {
                // Only the configuration is read and only the child range written: a frame is
                // visited at least once per event, and copying it whole costs more.
                let Frame { config, trail, .. } = self.frames[index];
                deepest = deepest.max(index);
                let first = self.children.len();
                if !self.failed.dominated(&self.sets, index, &config) {
                    let expanded = if self.events[index].is_return {
                        self.on_return(plan, index, config, trail)
                    } else {
                        self.on_call(plan, self.events[index].op, config, trail)
                    };
                    if expanded.is_none() {
                        return Found::OutOfSteps;
                    }
                    // Lazy first: the fewest operations linearized ahead of need.
                    let sets = &self.sets;
                    if self.children.len() - first > 1 {
                        self.children[first..].sort_by_key(|(c, _)| {
                            (
                                sets.len(c.optional),
                                std::cmp::Reverse(sets.len(c.required)),
                            )
                        });
                    }
                }
                let end = self.children.len();
                let frame = &mut self.frames[index];
                frame.expanded = true;
                frame.first = first;
                frame.end = end;
                frame.next = first;
            }
            let frame = &mut self.frames[index];
            if frame.next < frame.end {
                let (config, trail) = self.children[frame.next];
                frame.next += 1;
                self.apply_event(plan, index);
                self.frames.push(Frame::new(config, trail));
            } else {
                let frame = self.frames.pop().expect("a frame");
                self.children.truncate(frame.first);
                self.failed.insert(&self.sets, index, frame.config);
                if self.frames.is_empty() {
                    return Found::NotLinearizable {
                        frontier_tick: self.events[deepest].tick,
                    };
                }
                self.unapply_event(plan, index - 1);
            }
        }
    }

    /// Moves past event `index`: a call makes its operation a candidate, a return takes it
    /// out of the candidates.
    fn apply_event(&mut self, plan: &Plan<'_>, index: usize) {
        let Event { op, is_return, .. } = self.events[index];
        let list = open_list(
            &plan.ops[op as usize],
            &mut self.info_called,
            &mut self.open_readers,
            &mut self.open_writers,
        );
        if is_return {
            // Each open operation is listed once.
            if let Some(at) = list.iter().position(|&o| o == op) {
                list.remove(at);
            }
        } else {
            list.push(op);
        }
    }

    /// Undoes [`Sweep::apply_event`] for event `index`, the last one applied. The lists stay
    /// in call order.
    fn unapply_event(&mut self, plan: &Plan<'_>, index: usize) {
        let Event { op, is_return, .. } = self.events[index];
        let call_index = &self.call_index;
        let list = open_list(
            &plan.ops[op as usize],
            &mut self.info_called,
            &mut self.open_readers,
            &mut self.open_writers,
        );
        if is_return {
            let at = list.partition_point(|&o| call_index[o as usize] < call_index[op as usize]);
            list.insert(at, op);
        } else {
            assert_eq!(
                list.pop(),
                Some(op),
                "linearizability: events undone in order"
            );
        }
    }

    /// A call: the operation becomes a candidate. A required read-only operation is
    /// linearized at once in every configuration whose state it accepts.
    /// The configuration after it goes on [`Sweep::children`].
    fn on_call(
        &mut self,
        plan: &mut Plan<'_>,
        op: u32,
        mut config: Config,
        mut trail: u32,
    ) -> Option<()> {
        let plan_op = plan.ops[op as usize];
        if plan_op.role == Role::Required && plan_op.read_only {
            self.step()?;
            if self.reads(plan, op, config.state) {
                config.set_done(plan, &mut self.sets, op, true);
                config.unobserved = NIL;
                config.blind = NIL;
                trail = self.record(op, trail, 0, false);
            }
        }
        self.children.push((config, trail));
        Some(())
    }

    /// The return of operation `events[index].op`: every configuration must have it
    /// linearized by now. Those that have not get it, preceded by any sequence of other
    /// candidates ([`Sweep::expand`]); an optional operation may also be dropped. The
    /// configurations after it go on [`Sweep::children`].
    fn on_return(
        &mut self,
        plan: &mut Plan<'_>,
        index: usize,
        config: Config,
        trail: u32,
    ) -> Option<()> {
        let op = self.events[index].op;
        let role = plan.ops[op as usize].role;
        // Left over only if the last search ran out of steps.
        self.next.clear();
        self.visited.clear();
        self.step()?;
        if config.is_done(plan, &self.sets, op) {
            // The one configuration after the event: no frontier needed.
            let config = self.settled(plan, config, op, index);
            self.children.push((config, trail));
            return Some(());
        } else {
            if role == Role::Optional {
                self.settle(plan, config, trail, op, index);
            }
            if role == Role::Required
                && plan.ops[op as usize].is_blind()
                && config.last_overwrite > self.call_index[op as usize] + 1
            {
                let trail = self.record(op, trail, index, true);
                self.settle(plan, config, trail, op, index);
            }
            self.expand(plan, index, config, trail)?;
        }
        self.next.drain_into(&self.sets, &mut self.children);
        Some(())
    }

    /// After the return of `op` at event `index`: forgets `op` and adds the configuration to
    /// [`Sweep::next`], with its values made canonical for what may still observe them.
    fn settle(&mut self, plan: &mut Plan<'_>, config: Config, trail: u32, op: u32, index: usize) {
        let config = self.settled(plan, config, op, index);
        self.next.insert(&self.sets, config, trail);
    }

    /// `config` after the return of `op` at event `index`, for [`Sweep::settle`].
    fn settled(
        &mut self,
        plan: &mut Plan<'_>,
        mut config: Config,
        op: u32,
        index: usize,
    ) -> Config {
        config.set_done(plan, &mut self.sets, op, false);
        // A returned write can no longer be absorbed.
        if config.blind == op {
            config.blind = NIL;
        }
        config.state = self.canonical(plan, config.state, index + 1);
        if config.unobserved != NIL {
            config.unobserved = self.canonical(plan, config.unobserved, index + 1);
        }
        config
    }

    /// Every way to linearize the returning operation of event `index` from `start`: any
    /// sequence of candidate moves (see [`Sweep::try_move`]) ending with it. Configurations
    /// where it is linearized go to [`Sweep::next`]; [`Sweep::visited`] is shared by all the
    /// expansions at this event, since a configuration's futures do not depend on how it was
    /// reached.
    fn expand(
        &mut self,
        plan: &mut Plan<'_>,
        index: usize,
        start: Config,
        trail: u32,
    ) -> Option<()> {
        let goal = self.events[index].op;
        // The usual case: no other operation is open that could go first, so the expansion is
        // the one move that linearizes the returning operation (what the loop below does
        // with it as the only candidate, taking the same step).
        if self.info_called.is_empty() && self.open_writers == [goal] {
            if let Some((child, child_trail)) = self.try_move(plan, index, &start, trail, goal) {
                self.step()?;
                if self.next.live == 0 {
                    // The frontier would hold this one configuration alone.
                    let child = self.settled(plan, child, goal, index);
                    self.children.push((child, child_trail));
                } else {
                    self.settle(plan, child, child_trail, goal, index);
                }
            }
            return Some(());
        }
        self.pending.clear();
        self.pending.push((start, trail));
        while let Some((config, trail)) = self.pending.pop() {
            self.candidates.clear();
            for &op in &self.open_writers {
                if !config.is_done(plan, &self.sets, op) && self.is_first_due(plan, &config, op) {
                    self.candidates.push(op);
                }
            }
            for &op in &self.info_called {
                if !config.is_done(plan, &self.sets, op) && self.is_first_twin(plan, &config, op) {
                    self.candidates.push(op);
                }
            }
            for candidate in 0..self.candidates.len() {
                let op = self.candidates[candidate];
                let Some((child, child_trail)) = self.try_move(plan, index, &config, trail, op)
                else {
                    continue;
                };
                self.step()?;
                if child.is_done(plan, &self.sets, goal) {
                    self.settle(plan, child, child_trail, goal, index);
                } else if self.visited.insert(child) {
                    self.pending.push((child, child_trail));
                }
            }
        }
        Some(())
    }

    /// Linearizes `op` in `config` at event `index`, then every open required read-only
    /// operation the new state satisfies; `None` if the model rejects `op`'s recorded result
    /// or a pruning rule (see the module documentation) rules the move out.
    fn try_move(
        &mut self,
        plan: &mut Plan<'_>,
        index: usize,
        config: &Config,
        trail: u32,
        op: u32,
    ) -> Option<(Config, u32)> {
        let plan_op = plan.ops[op as usize];
        let before = config.state;
        let (after, result) = self.apply(plan, before, op);
        if !accepts(plan_op.expect, result) {
            return None;
        }
        let after = self.canonical(plan, after, index);
        let required = plan_op.role == Role::Required;
        // A non-required operation that changes nothing, or that only replaces a present
        // value with one nothing can see, may as well not have taken effect.
        if !required && (after == before || (before != ABSENT && after == DEAD)) {
            return None;
        }
        // A required blind write right before an overwrite is overwritten unseen; the same
        // linearization is found with it absorbed when it returns (see `on_return`). (A
        // `Delete` answered `Ok` needs the key present without the write too.)
        if config.blind != NIL
            && plan_op.is_overwrite()
            && (matches!(plan_op.effect, Effect::Put(_)) || config.blind_from_present)
        {
            return None;
        }
        // The move right after a non-required operation must tell the states before and
        // after it apart; otherwise that operation may as well not have taken effect.
        if config.unobserved != NIL {
            let (after_without, result_without) = self.apply(plan, config.unobserved, op);
            if self.canonical(plan, after_without, index) == after
                && accepts(plan_op.expect, result_without)
            {
                return None;
            }
        }
        let mut child = *config;
        child.set_done(plan, &mut self.sets, op, true);
        child.state = after;
        child.unobserved = if required { NIL } else { before };
        child.blind = if required && plan_op.is_blind() {
            op
        } else {
            NIL
        };
        child.blind_from_present = before != ABSENT;
        if plan_op.is_overwrite() {
            child.last_overwrite = index + 1;
        }
        let mut trail = self.record(op, trail, index, false);
        for i in 0..self.open_readers.len() {
            let reader = self.open_readers[i];
            if !child.is_done(plan, &self.sets, reader) && self.reads(plan, reader, after) {
                child.set_done(plan, &mut self.sets, reader, true);
                child.unobserved = NIL;
                child.blind = NIL;
                trail = self.record(reader, trail, index, false);
            }
        }
        Some((child, trail))
    }

    /// True if read-only operation `reader` can be linearized in `state`: its target, with
    /// its recorded result (some recorded results are impossible, like a `Cas` that reports
    /// a mismatch with the value it expected).
    fn reads(&self, plan: &mut Plan<'_>, reader: u32, state: StateId) -> bool {
        plan.ops[reader as usize].target == Some(state) && {
            let (_, result) = self.apply(plan, state, reader);
            accepts(plan.ops[reader as usize].expect, result)
        }
    }

    /// Records a move at event `index` after move `previous`; returns its id.
    fn record(&mut self, op: u32, previous: u32, index: usize, absorbed: bool) -> u32 {
        let id = u32::try_from(self.trail.len())
            .ok()
            .filter(|&id| id < NIL)
            .expect("linearizability: fewer than 2^32 - 1 moves per search");
        self.trail.push(Move {
            op,
            previous,
            index,
            absorbed,
        });
        id
    }

    /// True unless a required operation of the same class as `op` (see [`PlanOp::class`])
    /// that returns before it is still pending in `config`. Of two such operations, the one
    /// due first may always take the place of the other in a linearization: it is open
    /// wherever the other is linearized before it returns, and behaves the same.
    fn is_first_due(&self, plan: &Plan<'_>, config: &Config, op: u32) -> bool {
        let plan_op = plan.ops[op as usize];
        plan_op.role != Role::Required
            || !self.open_writers.iter().any(|&other| {
                let other_op = plan.ops[other as usize];
                other_op.class == plan_op.class
                    && (other_op.complete_tick, other) < (plan_op.complete_tick, op)
                    && !config.is_done(plan, &self.sets, other)
            })
    }

    /// True unless an indeterminate operation of the same class, invoked before `op`, is
    /// still pending in `config`.
    fn is_first_twin(&self, plan: &Plan<'_>, config: &Config, op: u32) -> bool {
        let twin = plan.ops[op as usize].twin_before;
        twin == NIL || config.is_done(plan, &self.sets, twin)
    }

    /// [`Plan::apply`], extended to [`DEAD`]: a present value nothing compares with, which
    /// appends keep unseen and no comparison accepts.
    fn apply(&self, plan: &mut Plan<'_>, state: StateId, op: u32) -> (StateId, Res) {
        if state != DEAD {
            return plan.apply(state, op);
        }
        match plan.ops[op as usize].effect {
            Effect::Get => (DEAD, Res::Value(DEAD)),
            Effect::Put(new) => (new, Res::Ok),
            Effect::Append(_) => (DEAD, Res::Ok),
            Effect::Delete => (ABSENT, Res::Ok),
            Effect::Cas { .. } => (DEAD, Res::CasMismatch(DEAD)),
        }
    }

    /// `state`, or [`DEAD`] if it is present and no operation that may be pending at event
    /// `index` or later compares the register with it or with a value it could be extended
    /// into by appends.
    #[inline]
    fn canonical(&mut self, plan: &mut Plan<'_>, state: StateId, index: usize) -> StateId {
        if state == ABSENT || state == DEAD {
            return state;
        }
        let live_end = match self.live_end.get(state as usize) {
            Some(&live_end) if live_end != LIVE_END_UNKNOWN => live_end,
            _ => self.find_live_end(plan, state),
        };
        if live_end > index {
            state
        } else {
            DEAD
        }
    }

    /// Computes [`Sweep::live_end`] of present `state` and returns it.
    #[inline(never)]
    fn find_live_end(&mut self, plan: &mut Plan<'_>, state: StateId) -> usize {
        let slot = state as usize;
        if slot >= self.live_end.len() {
            self.live_end.resize(slot + 1, LIVE_END_UNKNOWN);
        }
        let last_use = &self.last_use;
        let live_end = plan
            .targets_extending(state)
            .iter()
            .filter_map(|&(_, target)| last_use.get(target as usize))
            .map(|&last| last.saturating_add(1).min(LIVE_END_UNKNOWN - 1))
            .max()
            .unwrap_or(0);
        self.live_end[slot] = live_end;
        live_end
    }

    /// Replays the linearization that ends with move `trail` against the model and asserts
    /// that it is one: every required operation once, with its recorded result, and no
    /// operation before one that completed before it was invoked. The pruning rules are
    /// subtle; this keeps a bug in them from ever passing a history silently.
    fn assert_linearization(&mut self, plan: &mut Plan<'_>, trail: u32) {
        // Scratch kept from one search to the next.
        let (mut moves, mut order, mut seen) = std::mem::take(&mut self.replay);
        moves.clear();
        let mut cursor = trail;
        while cursor != NIL {
            let step = self.trail[cursor as usize];
            moves.push(step);
            cursor = step.previous;
        }
        moves.reverse();
        order.clear();
        if moves.iter().any(|step| step.absorbed) {
            self.order_with_absorbed(plan, &moves, &mut order);
        } else {
            order.extend(moves.iter().map(|step| step.op));
        }
        seen.clear();
        seen.resize(plan.ops.len(), false);
        let mut state = plan.initial;
        let mut invoke_tick_max = 0;
        for &op in &order {
            // The fields checked, not the whole operation: it is only printed on failure.
            let PlanOp {
                invoke_tick,
                complete_tick,
                expect,
                ..
            } = plan.ops[op as usize];
            assert!(
                !std::mem::replace(&mut seen[op as usize], true),
                "linearizability: linearized {:?} twice",
                plan.ops[op as usize]
            );
            assert!(
                complete_tick >= invoke_tick_max,
                "linearizability: linearized {:?} after an operation invoked after it completed",
                plan.ops[op as usize]
            );
            invoke_tick_max = invoke_tick_max.max(invoke_tick);
            let (next, result) = plan.apply(state, op);
            assert!(
                accepts(expect, result),
                "linearizability: linearized {:?} with the wrong result {result:?}",
                plan.ops[op as usize]
            );
            state = next;
        }
        assert!(
            plan.ops
                .iter()
                .zip(&seen)
                .all(|(op, &seen)| seen || op.role != Role::Required),
            "linearizability: a required operation is missing"
        );
        self.replay = (moves, order, seen);
    }

    /// The order of the operations of `moves`, a linearization's moves of which some absorbed
    /// a write, into `order`.
    #[cold]
    fn order_with_absorbed(&self, plan: &Plan<'_>, moves: &[Move], order: &mut Vec<u32>) {
        // An absorbed operation goes right before the latest overwrite made after its call:
        // `before` lists them as (position in `plain` of that overwrite, operation).
        let mut before: Vec<(usize, u32)> = Vec::new();
        let mut puts: Vec<(usize, usize)> = Vec::new();
        let mut plain = Vec::with_capacity(moves.len());
        for step in moves {
            if step.absorbed {
                let call_index = self.call_index[step.op as usize];
                let &(at, _) = puts
                    .iter()
                    .rev()
                    .find(|&&(_, index)| index > call_index)
                    .expect("linearizability: an absorbed write has a later put");
                before.push((at, step.op));
                continue;
            }
            let plan_op = plan.ops[step.op as usize];
            if plan_op.is_overwrite() {
                puts.push((plain.len(), step.index));
            }
            plain.push(step.op);
        }
        // Stable: the operations absorbed before one overwrite keep the order they came in.
        before.sort_by_key(|&(at, _)| at);
        let mut absorbed = before.iter().peekable();
        for (position, &op) in plain.iter().enumerate() {
            while let Some(&(_, earlier)) = absorbed.next_if(|&&(at, _)| at == position) {
                order.push(earlier);
            }
            order.push(op);
        }
    }
}

/// A cheap check before the search: the earliest deadline (completion tick) of a required
/// read-only operation whose value nothing in the whole history could produce by then (not
/// the initial value, no `Put` or `Cas` setting it, no `Append` of one of its suffixes, no
/// `Delete` for absence), if there is one. Such a history fails at once, whatever the
/// order, and the verdict depends on nothing invoked after that deadline.
fn unreachable_observer(plan: &Plan<'_>) -> Option<Tick> {
    // Per state: the earliest invoke of a `Put` or `Cas` setting it.
    let mut set_tick: Vec<Option<Tick>> = vec![None; plan.states.present_count() + 1];
    // Every append, with its invoke tick: a value is reachable by one of them iff it ends
    // with its suffix. Few appends reach one key, while a value grown by appends has many
    // suffixes, so the appends are tried against the value rather than each suffix looked up;
    // latest first, since a value read usually ends with one appended shortly before (and
    // the appends invoked after the deadline are passed over without comparing text).
    let mut appends: Vec<(&str, Tick)> = Vec::new();
    let mut delete_tick = Tick::MAX;
    for op in plan.ops.iter().filter(|op| op.is_writer()) {
        let earliest = match op.effect {
            Effect::Put(value) | Effect::Cas { new: value, .. } => {
                set_tick[value as usize].get_or_insert(Tick::MAX)
            }
            Effect::Append(suffix) => {
                appends.push((suffix, op.invoke_tick));
                continue;
            }
            Effect::Delete => &mut delete_tick,
            Effect::Get => continue,
        };
        *earliest = (*earliest).min(op.invoke_tick);
    }
    let by = |tick: Option<&Tick>, deadline_tick: Tick| tick.is_some_and(|&t| t <= deadline_tick);
    plan.ops[..plan.finite_count]
        .iter()
        .filter(|op| op.role == Role::Required)
        .filter(|op| {
            let Some(target) = op.target else {
                return false;
            };
            let deadline_tick = op.complete_tick;
            let reachable = target == plan.initial
                || match plan.states.value(target) {
                    None => delete_tick <= deadline_tick,
                    Some(value) => {
                        by(
                            set_tick.get(target as usize).and_then(Option::as_ref),
                            deadline_tick,
                        ) || appends.iter().rev().any(|&(suffix, invoke_tick)| {
                            invoke_tick <= deadline_tick && value.ends_with(suffix)
                        })
                    }
                };
            !reachable
        })
        .map(|op| op.complete_tick)
        .min()
}

#[cfg(test)]
mod tests {
    use super::*;
    use raftsim_protocol::kv::KvStore;

    const NEVER: Option<Tick> = None;

    use raftsim_protocol::kv::ops::{append, cas, delete, get, put};

    fn s(v: &str) -> String {
        v.to_owned()
    }

    fn value(v: &str) -> OpResult {
        OpResult::Value(s(v))
    }

    /// An `Ok` operation of client 1 over `[invoke, complete]`.
    fn ok(op: Op, invoke: Tick, complete: Tick, result: OpResult) -> HistoryOp {
        HistoryOp {
            client: 1,
            op: Arc::new(op),
            invoke_tick: invoke,
            complete_tick: Some(complete),
            outcome: Outcome::Ok(result),
        }
    }

    fn info(op: Op, invoke: Tick, complete: Option<Tick>) -> HistoryOp {
        HistoryOp {
            client: 1,
            op: Arc::new(op),
            invoke_tick: invoke,
            complete_tick: complete,
            outcome: Outcome::Info,
        }
    }

    fn fail(op: Op, invoke: Tick, complete: Tick) -> HistoryOp {
        HistoryOp {
            client: 1,
            op: Arc::new(op),
            invoke_tick: invoke,
            complete_tick: Some(complete),
            outcome: Outcome::Fail,
        }
    }

    /// The fast path decides sequential keys exactly as the search does: every op kind, both
    /// initial values, failed ops ignored; a wrong result falls back to the search and its
    /// witness; touching ticks or an indeterminate op take the search.
    #[test]
    fn sequential_keys_replay_and_agree_with_the_search() {
        let history = vec![
            ok(put("k", "a"), 1, 2, OpResult::Ok),
            fail(put("k", "zz"), 2, 3),
            ok(append("k", "b"), 3, 4, OpResult::Ok),
            ok(get("k"), 5, 6, value("ab")),
            ok(
                cas("k", Some("x"), "c"),
                7,
                8,
                OpResult::CasMismatch {
                    current: Some(s("ab")),
                },
            ),
            ok(cas("k", Some("ab"), "c"), 9, 10, OpResult::Ok),
            ok(delete("k"), 11, 12, OpResult::Ok),
            ok(delete("k"), 13, 14, OpResult::NotFound),
            ok(get("k"), 15, 16, OpResult::NotFound),
        ];
        let refs = key_ops(&history);
        assert_eq!(sequential_replay(&refs, None), Some(8));
        assert_linearizable(&history, None);
        // The same results with the Jepsen initial value "": the first get sees "ab" still.
        assert_eq!(sequential_replay(&refs, Some("")), Some(8));
        // A stale read: the fast path declines, the search finds the violation.
        let mut stale = history.clone();
        stale[3] = ok(get("k"), 5, 6, value("a"));
        let refs = key_ops(&stale);
        assert_eq!(sequential_replay(&refs, None), None);
        assert!(matches!(
            verdict(&stale, None),
            Verdict::NotLinearizable { .. }
        ));
        // Ticks that touch mean concurrency; an indeterminate op is not sequential either.
        let touching = [
            ok(put("k", "a"), 1, 2, OpResult::Ok),
            ok(get("k"), 2, 3, value("a")),
        ];
        let refs = key_ops(&touching);
        assert_eq!(sequential_replay(&refs, None), None);
        assert_linearizable(&touching, None);
        let pending = [
            info(put("k", "a"), 1, NEVER),
            ok(get("k"), 5, 6, value("a")),
        ];
        let refs = key_ops(&pending);
        assert_eq!(sequential_replay(&refs, None), None);
        assert_linearizable(&pending, None);
    }

    /// The operations as [`check`] hands them to the code of one key.
    fn key_ops(history: &[HistoryOp]) -> Vec<KeyOp<'_>> {
        history
            .iter()
            .map(|op| KeyOp::new(op, SameTick::CallsFirst))
            .collect()
    }

    fn verdict(history: &[HistoryOp], initial: Option<&str>) -> Verdict {
        check(history, initial, &Limits::default()).verdict
    }

    fn assert_linearizable(history: &[HistoryOp], initial: Option<&str>) {
        let report = check(history, initial, &Limits::default());
        assert_eq!(report.verdict, Verdict::Linearizable, "{history:#?}");
    }

    /// Asserts `key` fails and returns the witness, checking that it is a sub-history that is
    /// unlinearizable on its own.
    fn assert_fails(history: &[HistoryOp], initial: Option<&str>, key: &str) -> Vec<HistoryOp> {
        let Verdict::NotLinearizable { key: failed, ops } = verdict(history, initial) else {
            panic!("expected NotLinearizable for {history:#?}");
        };
        assert_eq!(failed, key);
        assert!(!ops.is_empty());
        assert!(ops.windows(2).all(|w| w[0].invoke_tick <= w[1].invoke_tick));
        for op in &ops {
            assert!(history.contains(op), "witness op {op:?} not in the history");
            assert_eq!(op.op.key(), key);
            assert!(matches!(op.outcome, Outcome::Ok(_)));
        }
        assert!(
            matches!(verdict(&ops, initial), Verdict::NotLinearizable { .. }),
            "the witness alone must fail: {ops:#?}"
        );
        ops
    }

    #[test]
    fn empty_history_is_linearizable() {
        let report = check(&[], None, &Limits::default());
        assert_eq!(
            report,
            Report {
                verdict: Verdict::Linearizable,
                keys_checked: 0,
                ops_checked: 0,
                steps: 0,
                witness_steps: 0,
            }
        );
    }

    #[test]
    fn sequential_history_is_linearizable() {
        let history = [
            ok(get("x"), 0, 1, OpResult::NotFound),
            ok(put("x", "1"), 2, 3, OpResult::Ok),
            ok(get("x"), 4, 5, value("1")),
            ok(append("x", "2"), 6, 7, OpResult::Ok),
            ok(get("x"), 8, 9, value("12")),
            ok(cas("x", Some("12"), "3"), 10, 11, OpResult::Ok),
            ok(delete("x"), 12, 13, OpResult::Ok),
            ok(get("x"), 14, 15, OpResult::NotFound),
        ];
        let report = check(&history, None, &Limits::default());
        assert_eq!(report.verdict, Verdict::Linearizable);
        assert_eq!(report.keys_checked, 1);
        assert_eq!(report.ops_checked, history.len());
        assert!(report.steps > 0);
    }

    #[test]
    fn stale_read_after_a_completed_write_fails_with_a_small_witness() {
        let history = [
            ok(put("x", "1"), 0, 2, OpResult::Ok),
            ok(get("x"), 3, 4, value("1")),
            ok(put("x", "2"), 5, 6, OpResult::Ok),
            ok(get("x"), 7, 8, value("2")),
            ok(get("x"), 9, 10, value("1")),
            ok(get("x"), 11, 12, value("2")),
        ];
        let witness = assert_fails(&history, None, "x");
        assert!(witness.len() <= 3, "{witness:#?}");
        // The stale read is the heart of it, and whatever wrote 1 cannot explain it.
        assert!(witness.contains(&history[4]));
        assert!(witness.contains(&history[2]) || witness.contains(&history[3]));
    }

    #[test]
    fn read_of_the_initial_value_after_a_write_fails() {
        let history = [
            ok(put("x", "1"), 0, 1, OpResult::Ok),
            ok(get("x"), 2, 3, OpResult::NotFound),
        ];
        let witness = assert_fails(&history, None, "x");
        assert_eq!(witness, history);
    }

    #[test]
    fn concurrent_write_and_read_may_be_ordered_either_way() {
        for seen in [OpResult::NotFound, value("1")] {
            let history = [
                ok(put("x", "1"), 0, 10, OpResult::Ok),
                ok(get("x"), 5, 15, seen),
            ];
            assert_linearizable(&history, None);
        }
        // A read invoked at the tick the write completes is concurrent with it ...
        let history = [
            ok(put("x", "1"), 0, 5, OpResult::Ok),
            ok(get("x"), 5, 8, OpResult::NotFound),
        ];
        assert_linearizable(&history, None);
        // ... one tick later it is not.
        let history = [
            ok(put("x", "1"), 0, 5, OpResult::Ok),
            ok(get("x"), 6, 8, OpResult::NotFound),
        ];
        assert_fails(&history, None, "x");
    }

    #[test]
    fn concurrent_reads_must_agree_with_one_order() {
        // Two writes overlap two reads; the reads may see them in either order, but two
        // later sequential reads cannot see 1, 2, then 1 again.
        let history = [
            ok(put("x", "1"), 0, 10, OpResult::Ok),
            ok(put("x", "2"), 0, 10, OpResult::Ok),
            ok(get("x"), 1, 9, value("2")),
            ok(get("x"), 1, 9, value("1")),
        ];
        assert_linearizable(&history, None);
        let history = [
            ok(put("x", "1"), 0, 10, OpResult::Ok),
            ok(put("x", "2"), 0, 10, OpResult::Ok),
            ok(get("x"), 1, 2, value("1")),
            ok(get("x"), 3, 4, value("2")),
            ok(get("x"), 5, 6, value("1")),
        ];
        assert_fails(&history, None, "x");
    }

    #[test]
    fn info_write_may_or_may_not_have_happened() {
        for complete in [Some(3), NEVER] {
            let write = info(put("x", "1"), 0, complete);
            let seen = [write.clone(), ok(get("x"), 100, 101, value("1"))];
            assert_linearizable(&seen, None);
            let unseen = [write.clone(), ok(get("x"), 100, 101, OpResult::NotFound)];
            assert_linearizable(&unseen, None);
            // It may even take effect long after its client gave up.
            let late = [
                write.clone(),
                ok(get("x"), 100, 101, OpResult::NotFound),
                ok(get("x"), 200, 201, value("1")),
            ];
            assert_linearizable(&late, None);
            // But once seen it cannot be unseen.
            let flicker = [
                write,
                ok(get("x"), 100, 101, value("1")),
                ok(get("x"), 102, 103, OpResult::NotFound),
            ];
            let witness = assert_fails(&flicker, None, "x");
            assert_eq!(witness, flicker[1..]);
        }
    }

    #[test]
    fn a_linearization_may_need_an_info_write_long_after_it_was_invoked() {
        // The info write must take effect after the first read and before the Cas: the Cas
        // succeeds only from "1", and only the info write ever sets "1".
        let history = [
            info(put("x", "1"), 0, Some(2)),
            ok(get("x"), 10, 11, OpResult::NotFound),
            ok(put("x", "0"), 20, 21, OpResult::Ok),
            ok(get("x"), 22, 23, value("0")),
            ok(cas("x", Some("1"), "2"), 30, 40, OpResult::Ok),
            ok(get("x"), 41, 42, value("2")),
        ];
        assert_linearizable(&history, None);
        // Without it, nothing explains the Cas.
        let witness = assert_fails(&history[1..], None, "x");
        assert!(witness.contains(&history[4]), "{witness:#?}");
        // An info write that nothing needs may stay unlinearized, here and there.
        let mut spare = history.to_vec();
        spare.push(info(put("x", "9"), 5, NEVER));
        spare.push(info(append("x", "7"), 25, Some(26)));
        spare.push(info(delete("x"), 31, NEVER));
        assert_linearizable(&spare, None);
    }

    #[test]
    fn a_value_seen_from_an_info_write_cannot_come_back_after_a_later_read() {
        // The info write's value is read, then a newer value, then the older one again:
        // whenever the info write took effect, the last read is stale.
        let history = [
            ok(put("x", "0"), 0, 1, OpResult::Ok),
            info(put("x", "1"), 2, NEVER),
            ok(get("x"), 10, 11, value("1")),
            ok(put("x", "2"), 12, 13, OpResult::Ok),
            ok(get("x"), 14, 15, value("2")),
            ok(get("x"), 16, 17, value("1")),
        ];
        let witness = assert_fails(&history, None, "x");
        assert!(witness.contains(&history[5]), "{witness:#?}");
        // With the stale read concurrent with the newer write, it is fine.
        let mut concurrent = history.to_vec();
        concurrent[5] = ok(get("x"), 12, 17, value("1"));
        concurrent[4] = ok(get("x"), 14, 18, value("2"));
        assert_linearizable(&concurrent, None);
        // A second info write of the same value explains the last read.
        let mut twins = history.to_vec();
        twins.push(info(put("x", "1"), 3, NEVER));
        assert_linearizable(&twins, None);
        // An info append is seen at most once.
        let appended = [
            ok(put("x", "a"), 0, 1, OpResult::Ok),
            info(append("x", "b"), 2, NEVER),
            ok(get("x"), 10, 11, value("ab")),
            ok(append("x", "c"), 12, 13, OpResult::Ok),
            ok(get("x"), 14, 15, value("abcb")),
        ];
        assert_fails(&appended, None, "x");
    }

    #[test]
    fn info_write_cannot_take_effect_before_its_invoke() {
        let history = [
            ok(get("x"), 0, 1, value("1")),
            info(put("x", "1"), 2, NEVER),
        ];
        assert_fails(&history, None, "x");
    }

    #[test]
    fn ok_without_completion_is_treated_as_info() {
        let mut write = ok(put("x", "1"), 0, 0, OpResult::Ok);
        write.complete_tick = None;
        let history = [write.clone(), ok(get("x"), 10, 11, OpResult::NotFound)];
        assert_linearizable(&history, None);
        let history = [write, ok(get("x"), 10, 11, value("1"))];
        assert_linearizable(&history, None);
    }

    #[test]
    fn info_reads_and_fail_ops_are_dropped() {
        let history = [
            info(get("x"), 0, Some(1)),
            fail(put("x", "1"), 2, 3),
            ok(get("x"), 4, 5, OpResult::NotFound),
        ];
        let report = check(&history, None, &Limits::default());
        assert_eq!(report.verdict, Verdict::Linearizable);
        assert_eq!(report.ops_checked, 1);
    }

    #[test]
    fn fail_write_whose_value_is_read_fails() {
        let history = [fail(put("x", "1"), 0, 2), ok(get("x"), 3, 4, value("1"))];
        let witness = assert_fails(&history, None, "x");
        assert_eq!(witness, history[1..]);
        // Even a read concurrent with the failed write may not see it.
        let history = [fail(put("x", "1"), 0, 10), ok(get("x"), 3, 4, value("1"))];
        assert_fails(&history, None, "x");
    }

    #[test]
    fn cas_semantics() {
        let history = [
            ok(
                cas("x", Some("0"), "1"),
                0,
                1,
                OpResult::CasMismatch { current: None },
            ),
            ok(cas("x", None, "1"), 2, 3, OpResult::Ok),
            ok(cas("x", Some("1"), "2"), 4, 5, OpResult::Ok),
            ok(
                cas("x", Some("1"), "3"),
                6,
                7,
                OpResult::CasMismatch {
                    current: Some(s("2")),
                },
            ),
            ok(
                cas("x", None, "4"),
                8,
                9,
                OpResult::CasMismatch {
                    current: Some(s("2")),
                },
            ),
            ok(get("x"), 10, 11, value("2")),
        ];
        assert_linearizable(&history, None);

        // A mismatch must report the value actually there.
        let mut wrong_current = history.clone();
        wrong_current[3].outcome = Outcome::Ok(OpResult::CasMismatch {
            current: Some(s("1")),
        });
        let witness = assert_fails(&wrong_current, None, "x");
        assert!(witness.contains(&wrong_current[3]));

        // A cas cannot succeed against the wrong value.
        let history = [
            ok(put("x", "1"), 0, 1, OpResult::Ok),
            ok(cas("x", Some("0"), "2"), 2, 3, OpResult::Ok),
        ];
        assert_fails(&history, None, "x");
        // Nor against a present key when it expects absence.
        let history = [
            ok(put("x", "1"), 0, 1, OpResult::Ok),
            ok(cas("x", None, "2"), 2, 3, OpResult::Ok),
        ];
        assert_fails(&history, None, "x");

        // Two concurrent cas from the same value: only one may win.
        let both_win = [
            ok(put("x", "0"), 0, 1, OpResult::Ok),
            ok(cas("x", Some("0"), "a"), 2, 10, OpResult::Ok),
            ok(cas("x", Some("0"), "b"), 2, 10, OpResult::Ok),
        ];
        assert_fails(&both_win, None, "x");
        let one_wins = [
            ok(put("x", "0"), 0, 1, OpResult::Ok),
            ok(cas("x", Some("0"), "a"), 2, 10, OpResult::Ok),
            ok(
                cas("x", Some("0"), "b"),
                2,
                10,
                OpResult::CasMismatch {
                    current: Some(s("a")),
                },
            ),
        ];
        assert_linearizable(&one_wins, None);
    }

    #[test]
    fn an_impossible_cas_mismatch_is_never_accepted() {
        // A Cas cannot report a mismatch with the very value it expected, even when the
        // state is that value and reads around it agree.
        let history = [
            ok(get("k"), 0, 0, OpResult::NotFound),
            ok(
                cas("k", None, "0"),
                0,
                0,
                OpResult::CasMismatch { current: None },
            ),
            ok(get("k"), 0, 0, value("0")),
        ];
        assert_fails(&history, None, "k");
        let history = [ok(
            cas("k", Some("1"), "2"),
            0,
            1,
            OpResult::CasMismatch {
                current: Some(s("1")),
            },
        )];
        assert_fails(&history, Some("1"), "k");
    }

    #[test]
    fn append_concatenates_in_linearization_order() {
        for seen in ["ab", "ba"] {
            let history = [
                ok(append("x", "a"), 0, 10, OpResult::Ok),
                ok(append("x", "b"), 0, 10, OpResult::Ok),
                ok(get("x"), 11, 12, value(seen)),
            ];
            assert_linearizable(&history, None);
        }
        for seen in ["a", "aa", "abb", ""] {
            let history = [
                ok(append("x", "a"), 0, 10, OpResult::Ok),
                ok(append("x", "b"), 0, 10, OpResult::Ok),
                ok(get("x"), 11, 12, value(seen)),
            ];
            assert_fails(&history, None, "x");
        }
        // Sequential appends: only one order, and the first creates the key.
        let history = [
            ok(append("x", "a"), 0, 1, OpResult::Ok),
            ok(append("x", "b"), 2, 3, OpResult::Ok),
            ok(get("x"), 4, 5, value("ba")),
        ];
        assert_fails(&history, None, "x");
        let history = [
            ok(append("x", ""), 0, 1, OpResult::Ok),
            ok(get("x"), 2, 3, value("")),
        ];
        assert_linearizable(&history, None);
        // Appending extends the initial value.
        let history = [
            ok(append("x", "a"), 0, 1, OpResult::Ok),
            ok(get("x"), 2, 3, value("a")),
        ];
        assert_linearizable(&history, Some(""));
        let history = [
            ok(append("x", "a"), 0, 1, OpResult::Ok),
            ok(get("x"), 2, 3, value("za")),
        ];
        assert_linearizable(&history, Some("z"));
    }

    #[test]
    fn delete_reports_not_found_on_an_absent_key() {
        let history = [
            ok(delete("x"), 0, 1, OpResult::NotFound),
            ok(put("x", "1"), 2, 3, OpResult::Ok),
            ok(delete("x"), 4, 5, OpResult::Ok),
            ok(get("x"), 6, 7, OpResult::NotFound),
            ok(delete("x"), 8, 9, OpResult::NotFound),
        ];
        assert_linearizable(&history, None);
        let history = [
            ok(put("x", "1"), 0, 1, OpResult::Ok),
            ok(delete("x"), 2, 3, OpResult::NotFound),
        ];
        assert_fails(&history, None, "x");
        let history = [ok(delete("x"), 0, 1, OpResult::Ok)];
        assert_fails(&history, None, "x");
        assert_linearizable(&history, Some(""));
        // Two concurrent deletes of a present key: exactly one finds it.
        let history = [
            ok(put("x", "1"), 0, 1, OpResult::Ok),
            ok(delete("x"), 2, 5, OpResult::Ok),
            ok(delete("x"), 2, 5, OpResult::Ok),
        ];
        assert_fails(&history, None, "x");
    }

    #[test]
    fn initial_value_some_empty_differs_from_absent() {
        let history = [ok(get("x"), 0, 1, value(""))];
        assert_linearizable(&history, Some(""));
        assert_eq!(assert_fails(&history, None, "x"), history);
        let history = [ok(get("x"), 0, 1, OpResult::NotFound)];
        assert_linearizable(&history, None);
        assert_fails(&history, Some(""), "x");
        let history = [ok(cas("x", Some(""), "1"), 0, 1, OpResult::Ok)];
        assert_linearizable(&history, Some(""));
        assert_fails(&history, None, "x");
    }

    /// `clients` clients each run a put and a get, all concurrent: read `c` sees the write of
    /// client `c + 1`, so exactly one cyclic order of the writes works, and a depth-first
    /// search that starts with the wrong write has to exhaust its subtree first.
    fn concurrent_history(key: &str, clients: u64) -> Vec<HistoryOp> {
        let mut history = Vec::new();
        for c in 0..clients {
            let mut write = ok(put(key, &c.to_string()), 0, 100, OpResult::Ok);
            write.client = c;
            let mut read = ok(get(key), 0, 100, value(&((c + 1) % clients).to_string()));
            read.client = c;
            history.push(write);
            history.push(read);
        }
        history
    }

    #[test]
    fn tiny_budget_gives_unknown() {
        let history = concurrent_history("x", 20);
        let report = check(&history, None, &Limits { steps_max: 10 });
        assert_eq!(
            report.verdict,
            Verdict::Unknown {
                key: s("x"),
                steps: 10
            }
        );
        assert_eq!(report.steps, 10);
        assert_eq!(report.witness_steps, 0);
        // A smaller instance of the same shape is decided within the default budget.
        assert_linearizable(&concurrent_history("x", 6), None);
    }

    #[test]
    fn a_failing_key_beats_an_unknown_one() {
        let mut history = concurrent_history("a", 20);
        history.push(ok(get("b"), 0, 1, value("never written")));
        let report = check(&history, None, &Limits { steps_max: 50 });
        assert_eq!(
            report.verdict,
            Verdict::NotLinearizable {
                key: s("b"),
                ops: vec![history[40].clone()],
            }
        );
        assert_eq!(report.keys_checked, 2);
    }

    #[test]
    fn keys_are_independent_and_the_failing_one_is_reported() {
        let history = [
            ok(put("a", "1"), 0, 1, OpResult::Ok),
            ok(put("b", "1"), 0, 1, OpResult::Ok),
            ok(put("c", "1"), 0, 1, OpResult::Ok),
            // Each key is fine on its own, whatever the other keys hold.
            ok(get("a"), 2, 3, value("1")),
            ok(get("c"), 2, 3, value("1")),
            ok(put("b", "2"), 4, 5, OpResult::Ok),
            ok(get("b"), 6, 7, value("1")),
            ok(get("c"), 6, 7, value("1")),
        ];
        let witness = assert_fails(&history, None, "b");
        assert!(witness.iter().all(|op| op.op.key() == "b"));
        // The first failing key in sorted order stops the check.
        let report = check(&history, None, &Limits::default());
        assert_eq!(report.keys_checked, 2);

        let fine: Vec<HistoryOp> = history
            .iter()
            .filter(|op| op.op.key() == "a")
            .cloned()
            .collect();
        let report = check(&fine, None, &Limits::default());
        assert_eq!(report.verdict, Verdict::Linearizable);
        assert_eq!(report.keys_checked, 1);
    }

    #[test]
    #[should_panic(expected = "completes before it was invoked")]
    fn completion_before_invoke_panics() {
        check(
            &[ok(get("x"), 5, 4, OpResult::NotFound)],
            None,
            &Limits::default(),
        );
    }

    /// A deterministic generator for the larger tests (SplitMix64).
    struct Gen(u64);

    impl Gen {
        fn next_u64(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next_u64() % n
        }
    }

    /// A history of `clients` concurrent clients against one linearizable store: each
    /// operation takes effect at a point inside its window. About one write in `info_every`
    /// times out (and then took effect or not), and about one in `info_every` fails.
    fn simulated_history(
        seed: u64,
        clients: u64,
        ops_count: usize,
        keys: &[&str],
        info_every: u64,
    ) -> Vec<HistoryOp> {
        let mut gen = Gen(seed);
        // (point, tiebreak, index, applied)
        let mut planned = Vec::new();
        let mut history = Vec::new();
        let mut clock = vec![0u64; clients as usize];
        for i in 0..ops_count {
            let client = (i as u64) % clients;
            let key = keys[gen.below(keys.len() as u64) as usize];
            let v = gen.below(1000).to_string();
            let op = match gen.below(10) {
                0..=3 => get(key),
                4..=5 => put(key, &v),
                6 => append(key, &v),
                7 => delete(key),
                _ => cas(key, Some(&gen.below(1000).to_string()), &v),
            };
            let invoke = clock[client as usize] + gen.below(5);
            let complete = invoke + 1 + gen.below(20);
            let point = invoke + gen.below(complete - invoke + 1);
            let fate = gen.below(info_every.max(1));
            let (outcome, applied) = if op.is_read() || fate > 1 {
                (Outcome::Ok(OpResult::Ok), true)
            } else if fate == 0 {
                (Outcome::Info, gen.below(2) == 0)
            } else {
                (Outcome::Fail, false)
            };
            clock[client as usize] = complete;
            planned.push((point, gen.next_u64(), i, applied));
            history.push(HistoryOp {
                client,
                op: Arc::new(op),
                invoke_tick: invoke,
                complete_tick: Some(complete),
                outcome,
            });
        }
        planned.sort_unstable();
        let mut store = KvStore::new();
        for (_, _, i, applied) in planned {
            if applied {
                let result = store.apply(&history[i].op);
                if let Outcome::Ok(r) = &mut history[i].outcome {
                    *r = result;
                }
            }
        }
        history
    }

    #[test]
    fn simulated_concurrent_histories_are_linearizable_within_a_modest_budget() {
        for clients in [1, 10, 50] {
            let history = simulated_history(clients, clients, 2000, &["a", "b", "c", "d"], 10);
            let report = check(&history, None, &Limits::default());
            assert_eq!(report.verdict, Verdict::Linearizable, "{clients} clients");
            assert_eq!(report.keys_checked, 4);
            assert!(
                report.steps < 20 * history.len() as u64,
                "{clients} clients: {} steps",
                report.steps
            );
        }
    }

    /// The benchmark's history (`raftsim bench --only check-history`): 50 clients on 4 keys,
    /// about 12 operations open per key and 2% indeterminate ones. Shorter than the
    /// benchmark's 5000 operations in debug builds, where tests run slowly.
    #[test]
    fn generated_history_of_50_clients_is_decided_within_the_default_budget() {
        let ops = if cfg!(debug_assertions) { 1000 } else { 5000 };
        let history = crate::history::generate_history(50, ops, 4, 7);
        assert!(history.iter().any(|op| op.outcome == Outcome::Info));
        let report = check(&history, None, &Limits::default());
        assert_eq!(report.verdict, Verdict::Linearizable);
        assert_eq!(report.keys_checked, 4);
        assert!(report.steps < Limits::STEPS_MAX_DEFAULT);
        // A stale read planted in it is caught.
        let mut stale = history.clone();
        let last_read = stale
            .iter()
            .rposition(|op| op.op.key() == "k0" && is_definite(op) && op.op.is_read())
            .expect("a read of k0");
        stale[last_read].outcome = Outcome::Ok(value("1.1"));
        let report = check(&stale, None, &Limits::default());
        assert!(
            matches!(&report.verdict, Verdict::NotLinearizable { key, .. } if key == "k0"),
            "{:?}",
            report.verdict
        );
    }

    #[test]
    fn simulated_history_with_one_stale_read_is_caught_with_a_small_witness() {
        let mut history = simulated_history(7, 10, 1000, &["a", "b"], 10);
        // A read of a value the key held long ago, after a later write completed.
        let i = history
            .iter()
            .rposition(|op| op.op.key() == "a" && op.op.is_read())
            .expect("some read of a");
        let write = history[..i]
            .iter()
            .position(|op| {
                matches!(*op.op, Op::Put { .. }) && op.op.key() == "a" && is_definite(op)
            })
            .expect("some definite put of a");
        let Op::Put { value: old, .. } = &*history[write].op else {
            unreachable!()
        };
        history[i].outcome = Outcome::Ok(value(&format!("{old}stale")));
        let witness = assert_fails(&history, None, "a");
        assert!(witness.contains(&history[i]));
        assert!(witness.len() <= 3, "{witness:#?}");
    }

    #[test]
    fn checking_is_deterministic() {
        let mut history = simulated_history(3, 10, 500, &["a", "b", "c"], 5);
        assert_eq!(
            check(&history, None, &Limits::default()),
            check(&history, None, &Limits::default())
        );
        let i = history.iter().position(|op| op.op.is_read()).unwrap();
        history[i].outcome = Outcome::Ok(value("never"));
        assert_eq!(
            check(&history, None, &Limits::default()),
            check(&history, None, &Limits::default())
        );
    }

    /// With returns first, an operation invoked at the tick another completed follows it.
    #[test]
    fn returns_first_orders_a_call_after_a_return_at_its_tick() {
        let history = [
            ok(put("k", "a"), 1, 2, OpResult::Ok),
            ok(get("k"), 2, 3, OpResult::NotFound),
        ];
        assert_linearizable(&history, None);
        let report = check_ordered(&history, None, &Limits::default(), SameTick::ReturnsFirst);
        assert_eq!(
            report.verdict,
            Verdict::NotLinearizable {
                key: s("k"),
                ops: history.to_vec(),
            }
        );
    }

    #[test]
    #[should_panic(expected = "completes before it was invoked")]
    fn returns_first_needs_a_completion_after_the_invoke_tick() {
        check_ordered(
            &[ok(get("x"), 4, 4, OpResult::NotFound)],
            None,
            &Limits::default(),
            SameTick::ReturnsFirst,
        );
    }

    /// Asking for returns first is checking the history with each tick split in two, returns
    /// at `2 T` and calls at `2 T + 1` (as the simulator once did by copying the history): the
    /// same report, steps and all, with the witness in the history's own ticks.
    #[test]
    fn returns_first_is_checking_split_ticks() {
        let split = |history: &[HistoryOp]| -> Vec<HistoryOp> {
            history
                .iter()
                .map(|op| HistoryOp {
                    invoke_tick: op.invoke_tick * 2 + 1,
                    complete_tick: op.complete_tick.map(|t| t * 2),
                    ..op.clone()
                })
                .collect()
        };
        let unsplit = |verdict: Verdict| match verdict {
            Verdict::NotLinearizable { key, ops } => Verdict::NotLinearizable {
                key,
                ops: ops
                    .into_iter()
                    .map(|op| HistoryOp {
                        invoke_tick: op.invoke_tick / 2,
                        complete_tick: op.complete_tick.map(|t| t / 2),
                        ..op
                    })
                    .collect(),
            },
            other => other,
        };
        let mut failures = 0;
        for seed in 0..20 {
            let mut history = simulated_history(seed, 10, 300, &["a", "b"], 5);
            if seed % 2 == 1 {
                let i = history.iter().position(|op| op.op.is_read()).unwrap();
                history[i].outcome = Outcome::Ok(value("never written"));
            }
            let ordered = check_ordered(&history, None, &Limits::default(), SameTick::ReturnsFirst);
            let mut expected = check(&split(&history), None, &Limits::default());
            expected.verdict = unsplit(expected.verdict);
            assert_eq!(ordered, expected, "seed {seed}");
            failures += usize::from(!ordered.verdict.is_linearizable());
        }
        assert!(failures >= 10, "{failures}");
    }

    /// Sorting by order key, then by text where keys tie, is sorting by text: short values,
    /// prefixes of one another, NUL bytes (which the zero padding looks like) and long values.
    #[test]
    fn order_keys_sort_like_the_text() {
        let values = [
            "",
            "a",
            "a\0",
            "a\0\0b",
            "ab",
            "abcdefgh",
            "abcdefgh\0",
            "abcdefghi",
            "abcdefgg~",
            "b",
            "\0",
            "\u{ff}",
            "1.10",
            "1.9",
            "1.1/2.2",
        ];
        let mut by_key = values.to_vec();
        by_key.sort_by(|a, b| order_key(a).cmp(&order_key(b)).then_with(|| a.cmp(b)));
        let mut by_text = values.to_vec();
        by_text.sort();
        assert_eq!(by_key, by_text);
    }

    /// Nearly sorted returns are sorted in place; far from sorted ones fall back to a general
    /// sort, with the same result; and merging keeps calls before returns at equal ticks.
    #[test]
    fn events_sort_and_merge_in_event_order() {
        let event = |op: u32, tick: Tick, is_return: bool| Event {
            op,
            tick,
            is_return,
        };
        let sorted = |events: &[Event]| {
            let mut events = events.to_vec();
            events.sort_by_key(Event::order);
            events.iter().map(Event::order).collect::<Vec<_>>()
        };
        let nearly: Vec<Event> = (0..50u32)
            .map(|op| event(op, u64::from(op ^ 3) * 2, true))
            .collect();
        let reversed: Vec<Event> = (0..50u32)
            .map(|op| event(op, u64::from(100 - op), true))
            .collect();
        for events in [nearly, reversed, Vec::new()] {
            let mut got = events.clone();
            sort_nearly_sorted(&mut got);
            assert_eq!(
                got.iter().map(Event::order).collect::<Vec<_>>(),
                sorted(&events)
            );
        }
        let calls = [event(0, 1, false), event(1, 3, false), event(2, 3, false)];
        let returns = [event(1, 3, true), event(0, 4, true)];
        let mut merged = Vec::new();
        merge_events(&calls, &returns, &mut merged);
        let all: Vec<Event> = calls.iter().chain(&returns).copied().collect();
        assert_eq!(
            merged.iter().map(Event::order).collect::<Vec<_>>(),
            sorted(&all)
        );
    }

    /// The interners' index finds every entry through its growth and forgets them all when
    /// cleared.
    #[test]
    fn entry_index_finds_entries_through_growth() {
        let mut states = StateTable::default();
        let values: Vec<String> = (0..100).map(|n| format!("v{n}")).collect();
        let ids: Vec<StateId> = values.iter().map(|v| states.intern(Some(v))).collect();
        for (value, &id) in values.iter().zip(&ids) {
            assert_eq!(states.intern(Some(value)), id);
            assert_eq!(states.value(id), Some(value.as_str()));
        }
        assert_eq!(states.present_count(), values.len());
        states.clear();
        assert_eq!(states.find(hash_text("v7"), "v7"), None);
        assert_eq!(states.intern(Some("v7")), 1);
    }

    /// A pair memo answers what was stored until it is cleared, grown or overwritten by a
    /// colliding entry, and never answers for another pair.
    #[test]
    fn pair_memo_forgets_but_never_lies() {
        let mut memo = PairMemo::default();
        assert_eq!(memo.get(1, 2), None);
        memo.insert(1, 2, 3); // No slots yet: not stored.
        assert_eq!(memo.get(1, 2), None);
        memo.reserve(10);
        memo.insert(1, 2, 3);
        assert_eq!(memo.get(1, 2), Some(3));
        assert_eq!(memo.get(2, 1), None);
        memo.clear();
        assert_eq!(memo.get(1, 2), None);
        // Many entries in few slots: each answer is the last stored for its own pair.
        let mut last = std::collections::BTreeMap::new();
        for a in 0..200u32 {
            for b in 0..5u32 {
                memo.insert(a, b, a * 10 + b);
                last.insert((a, b), a * 10 + b);
            }
        }
        for (&(a, b), &result) in &last {
            assert!(memo.get(a, b).is_none_or(|r| r == result));
        }
        assert!(last.keys().any(|&(a, b)| memo.get(a, b).is_some()));
        memo.grow_for(1000);
        assert!(last.keys().all(|&(a, b)| memo.get(a, b).is_none()));
    }

    /// Grouping by key: keys in sorted order, each key's operations in history order, and keys
    /// longer than a key word told apart by their text.
    #[test]
    fn key_groups_sort_keys_and_keep_history_order() {
        let history: Vec<HistoryOp> = ["k1", "k0", "long-key-a", "k1", "long-key-b", "k0", "k1"]
            .iter()
            .enumerate()
            .map(|(i, key)| {
                ok(
                    put(key, &i.to_string()),
                    i as Tick,
                    i as Tick + 1,
                    OpResult::Ok,
                )
            })
            .collect();
        let groups = KeyGroups::new(&history, SameTick::CallsFirst);
        let grouped: Vec<(&str, Vec<Tick>)> = groups
            .iter()
            .map(|(key, ops)| (key, ops.iter().map(|op| op.invoke_tick).collect()))
            .collect();
        assert_eq!(
            grouped,
            vec![
                ("k0", vec![1, 5]),
                ("k1", vec![0, 3, 6]),
                ("long-key-a", vec![2]),
                ("long-key-b", vec![4]),
            ]
        );
        assert_eq!(groups.ops_max(), 3);

        // Past `KEYS_SCANNED_MAX` keys, the rest are found through a map: the same grouping.
        let keys: Vec<String> = (0..3 * KEYS_SCANNED_MAX)
            .map(|k| format!("key-{k:03}"))
            .collect();
        let history: Vec<HistoryOp> = (0..4 * keys.len())
            .map(|i| {
                let key = &keys[(i * 7) % keys.len()];
                ok(put(key, "v"), i as Tick, i as Tick + 1, OpResult::Ok)
            })
            .collect();
        let groups = KeyGroups::new(&history, SameTick::CallsFirst);
        let grouped: Vec<(&str, Vec<Tick>)> = groups
            .iter()
            .map(|(key, ops)| (key, ops.iter().map(|op| op.invoke_tick).collect()))
            .collect();
        let expected: Vec<(&str, Vec<Tick>)> = keys
            .iter()
            .map(|key| {
                let ticks = history
                    .iter()
                    .filter(|op| op.op.key() == key)
                    .map(|op| op.invoke_tick)
                    .collect();
                (key.as_str(), ticks)
            })
            .collect();
        assert_eq!(grouped, expected);
    }

    fn config(state: StateId, required: SetId, last_overwrite: usize) -> Config {
        Config {
            state,
            required,
            optional: EMPTY,
            unobserved: NIL,
            blind: NIL,
            blind_from_present: false,
            last_overwrite,
        }
    }

    /// A configuration set answers alike while it scans its members and once it has hashed
    /// them.
    #[test]
    fn config_set_answers_alike_scanned_and_hashed() {
        let mut set = ConfigSet::default();
        for round in 0..2 {
            for n in 0..3 * SCAN_MAX {
                assert!(set.insert(config(n as StateId, EMPTY, 0)), "round {round}");
                assert!(!set.insert(config(n as StateId, EMPTY, 0)));
                assert!(!set.insert(config(0, EMPTY, 0)));
            }
            set.clear();
        }
    }

    /// A frontier drops dominated configurations and drains by state and required set, each
    /// group in arrival order, with few groups (scanned) and many (hashed).
    #[test]
    fn frontier_keeps_the_undominated_in_order() {
        let mut sets = SetTable::default();
        for groups in [2, 3 * SCAN_MAX] {
            let mut frontier = Frontier::default();
            for n in (0..groups).rev() {
                let state = n as StateId + 1;
                let required = sets.single(n as u32 % 2);
                frontier.insert(&sets, config(state, required, 1), 10 * n as u32);
                // Dominated by the first (an earlier overwrite), so dropped.
                frontier.insert(&sets, config(state, required, 0), 10 * n as u32 + 1);
                // Dominates the first, which goes.
                frontier.insert(&sets, config(state, required, 2), 10 * n as u32 + 2);
                // Alike in state only: a group of its own.
                frontier.insert(&sets, config(state, EMPTY, 0), 10 * n as u32 + 3);
            }
            let mut out = Vec::new();
            frontier.drain_into(&sets, &mut out);
            let trails: Vec<u32> = out.iter().map(|&(_, trail)| trail).collect();
            let expected: Vec<u32> = (0..groups as u32)
                .flat_map(|n| [10 * n + 3, 10 * n + 2])
                .collect();
            assert_eq!(trails, expected, "{groups} groups");
            assert_eq!(frontier.live, 0);
        }
    }

    /// Whether an append's suffix is seen is decided alike with and without NUL bytes (which
    /// separate the targets in their joined text).
    #[test]
    fn suffixes_are_found_in_targets_with_and_without_nul_bytes() {
        let history = vec![
            ok(get("k"), 1, 2, value("a\0b")),
            ok(get("k"), 3, 4, value("cd")),
        ];
        let ops = key_ops(&history);
        let mut plan = Plan::default();
        plan.prepare(&ops, &[Treat::Keep; 2], None);
        for (text, seen) in [
            ("\0b", true),
            ("a\0", true),
            ("d", true),
            ("b\0c", false),
            ("bc", false),
            ("\0", true),
        ] {
            assert_eq!(plan.any_target_contains(text), seen, "{text:?}");
        }
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        /// What happened to a generated operation.
        #[derive(Debug, Clone, Copy)]
        enum Fate {
            /// Took effect; the client saw the result.
            Ok,
            /// Took effect; the client timed out (writes only).
            InfoApplied,
            /// Never took effect; the client timed out (writes only).
            InfoLost,
            /// Never took effect; the client was told so (writes only).
            Failed,
            /// Took effect; the client never heard back at all (writes only).
            NeverCompleted,
        }

        #[derive(Debug, Clone)]
        struct Step {
            op: Op,
            fate: Fate,
            widen_before: u64,
            widen_after: u64,
        }

        fn any_op() -> impl Strategy<Value = Op> {
            let key = prop_oneof![Just(s("k")), Just(s("j"))];
            let v = "[0-3]";
            prop_oneof![
                3 => key.clone().prop_map(|key| Op::Get { key }),
                2 => (key.clone(), v).prop_map(|(key, value)| Op::Put { key, value }),
                1 => (key.clone(), v).prop_map(|(key, value)| Op::Append { key, value }),
                1 => key.clone().prop_map(|key| Op::Delete { key }),
                2 => (key, proptest::option::of(v), v)
                    .prop_map(|(key, expected, new)| Op::Cas { key, expected, new }),
            ]
        }

        fn any_step() -> impl Strategy<Value = Step> {
            let fate = prop_oneof![
                6 => Just(Fate::Ok),
                1 => Just(Fate::InfoApplied),
                1 => Just(Fate::InfoLost),
                1 => Just(Fate::Failed),
                1 => Just(Fate::NeverCompleted),
            ];
            (any_op(), fate, 0..45u64, 0..45u64).prop_map(
                |(op, fate, widen_before, widen_after)| Step {
                    op,
                    fate,
                    widen_before,
                    widen_after,
                },
            )
        }

        /// Runs `steps` one after another (operation `i` takes effect at tick `100 + 10 i`)
        /// against the real store, then widens each window around that instant.
        fn widened_history(steps: &[Step], initial: Option<&str>) -> Vec<HistoryOp> {
            let mut store = KvStore::new();
            if let Some(initial) = initial {
                for key in ["k", "j"] {
                    store.apply(&put(key, initial));
                }
            }
            steps
                .iter()
                .enumerate()
                .map(|(i, step)| {
                    let point = 100 + 10 * i as u64;
                    let fate = if step.op.is_read() {
                        Fate::Ok
                    } else {
                        step.fate
                    };
                    let applied =
                        matches!(fate, Fate::Ok | Fate::InfoApplied | Fate::NeverCompleted);
                    let result = applied.then(|| store.apply(&step.op));
                    let (outcome, complete_tick) = match fate {
                        Fate::Ok => (Outcome::Ok(result.unwrap()), Some(point + step.widen_after)),
                        Fate::InfoApplied | Fate::InfoLost => {
                            (Outcome::Info, Some(point + step.widen_after))
                        }
                        Fate::Failed => (Outcome::Fail, Some(point + step.widen_after)),
                        Fate::NeverCompleted => (Outcome::Info, None),
                    };
                    HistoryOp {
                        client: i as u64 % 7,
                        op: Arc::new(step.op.clone()),
                        invoke_tick: point - step.widen_before,
                        complete_tick,
                        outcome,
                    }
                })
                .collect()
        }

        fn any_initial() -> impl Strategy<Value = Option<String>> {
            prop_oneof![Just(None), Just(Some(s(""))), Just(Some(s("0")))]
        }

        proptest! {
            #[test]
            fn widened_sequential_executions_are_linearizable(
                steps in proptest::collection::vec(any_step(), 0..60),
                initial in any_initial(),
            ) {
                let history = widened_history(&steps, initial.as_deref());
                let report = check(&history, initial.as_deref(), &Limits::default());
                prop_assert_eq!(report.verdict, Verdict::Linearizable);
            }

            #[test]
            fn a_read_of_a_value_never_written_is_caught(
                steps in proptest::collection::vec(any_step(), 1..60),
                initial in any_initial(),
                pick in any::<prop::sample::Index>(),
            ) {
                let mut history = widened_history(&steps, initial.as_deref());
                let reads: Vec<usize> = (0..history.len())
                    .filter(|&i| history[i].op.is_read())
                    .collect();
                prop_assume!(!reads.is_empty());
                let i = reads[pick.index(reads.len())];
                history[i].outcome = Outcome::Ok(value("never written"));
                let report = check(&history, initial.as_deref(), &Limits::default());
                let expected = Verdict::NotLinearizable {
                    key: history[i].op.key().to_owned(),
                    ops: vec![history[i].clone()],
                };
                prop_assert_eq!(report.verdict, expected);
            }
        }

        /// One operation for [`brute_force`]: `expect: None` accepts any result; an optional
        /// operation may also not take effect at all.
        #[derive(Debug, Clone)]
        struct BruteOp {
            op: Op,
            invoke_tick: Tick,
            /// `None`: never completes.
            complete_tick: Option<Tick>,
            expect: Option<OpResult>,
            optional: bool,
        }

        impl BruteOp {
            /// How `check` sees `op`; `None` if it drops it. Relaxed operations become optional
            /// within their windows.
            fn of(op: &HistoryOp, relaxed: bool) -> Option<BruteOp> {
                let (expect, optional, complete_tick) = match (&op.outcome, op.complete_tick) {
                    (Outcome::Fail, _) => return None,
                    (Outcome::Ok(result), Some(tick)) if !relaxed => {
                        (Some(result.clone()), false, Some(tick))
                    }
                    (Outcome::Ok(_), Some(tick)) => (None, true, Some(tick)),
                    (Outcome::Ok(_), None) | (Outcome::Info, _) => (None, true, None),
                };
                Some(BruteOp {
                    op: (*op.op).clone(),
                    invoke_tick: op.invoke_tick,
                    complete_tick,
                    expect,
                    optional,
                })
            }
        }

        /// Exhaustive reference: tries every order (and every subset of the optional
        /// operations) that respects real time, with calls at a tick before returns at it.
        fn brute_force(ops: &[BruteOp], initial: Option<&str>) -> bool {
            fn search(
                ops: &[BruteOp],
                done: u32,
                store: &KvStore,
                failed: &mut std::collections::BTreeSet<(u32, Option<String>)>,
            ) -> bool {
                if (0..ops.len()).all(|i| done & (1 << i) != 0 || ops[i].optional) {
                    return true;
                }
                let key = (done, store.get("k").map(str::to_owned));
                if failed.contains(&key) {
                    return false;
                }
                for i in (0..ops.len()).filter(|&i| done & (1 << i) == 0) {
                    // An optional operation may be dropped at any time.
                    if ops[i].optional && search(ops, done | 1 << i, store, failed) {
                        return true;
                    }
                    // Nothing still pending may have completed before `i` was invoked.
                    let blocked = (0..ops.len()).any(|j| {
                        j != i
                            && done & (1 << j) == 0
                            && ops[j].complete_tick.is_some_and(|c| c < ops[i].invoke_tick)
                    });
                    if blocked {
                        continue;
                    }
                    let mut next = store.clone();
                    let result = next.apply(&ops[i].op);
                    let accepted = match &ops[i].expect {
                        Some(expected) => *expected == result,
                        None => true,
                    };
                    if accepted && search(ops, done | 1 << i, &next, failed) {
                        return true;
                    }
                }
                failed.insert(key);
                false
            }
            assert!(ops.len() < 32);
            assert!(ops.iter().all(|op| op.op.key() == "k"));
            let mut store = KvStore::new();
            if let Some(initial) = initial {
                store.apply(&put("k", initial));
            }
            search(ops, 0, &store, &mut Default::default())
        }

        fn any_small_op() -> impl Strategy<Value = Op> {
            let v = prop_oneof![Just(s("0")), Just(s("1")), Just(s(""))];
            let expected = proptest::option::of(prop_oneof![
                Just(s("0")),
                Just(s("1")),
                Just(s("")),
                Just(s("01")),
            ]);
            prop_oneof![
                3 => Just(get("k")),
                2 => v.clone().prop_map(|v| put("k", &v)),
                2 => v.clone().prop_map(|v| append("k", &v)),
                1 => Just(delete("k")),
                2 => (expected, v).prop_map(|(e, v)| cas("k", e.as_deref(), &v)),
            ]
        }

        /// A result `op` could plausibly give (`pick` chooses which), so that corrupted
        /// histories are subtly wrong rather than obviously impossible.
        fn plausible_result(op: &Op, pick: u8) -> OpResult {
            const VALUES: [&str; 5] = ["", "0", "1", "01", "10"];
            let some_value = || Some(s(VALUES[usize::from(pick / 2) % VALUES.len()]));
            match (op, pick % 4) {
                (Op::Get { .. }, 0 | 2) => OpResult::NotFound,
                (Op::Get { .. }, _) => OpResult::Value(some_value().unwrap()),
                (Op::Delete { .. }, 0 | 2) => OpResult::NotFound,
                (Op::Cas { .. }, 0) => OpResult::CasMismatch { current: None },
                (Op::Cas { .. }, 2) => OpResult::CasMismatch {
                    current: some_value(),
                },
                _ => OpResult::Ok,
            }
        }

        /// A small history: operations with random windows, executed at a random instant of
        /// their window (so the history is linearizable) unless `corrupt` replaces one result.
        fn any_small_history() -> impl Strategy<Value = (Vec<HistoryOp>, Option<String>)> {
            let one = (
                any_small_op(),
                0..20u64,
                0..12u64,
                0..=100u64,
                0..20u8,
                any::<u8>(),
            );
            (
                proptest::collection::vec(one, 0..9),
                proptest::option::of(any::<prop::sample::Index>()),
                prop_oneof![Just(None), Just(Some(s(""))), Just(Some(s("0")))],
            )
                .prop_map(|(raw, corrupt, initial)| {
                    let mut store = KvStore::new();
                    if let Some(initial) = &initial {
                        store.apply(&put("k", initial));
                    }
                    // (instant, index, applied)
                    let mut order: Vec<(u64, usize, bool)> = Vec::new();
                    let mut history: Vec<HistoryOp> = Vec::new();
                    for (i, (op, invoke, len, at_percent, fate, _)) in raw.iter().enumerate() {
                        let complete = invoke + len;
                        let at = invoke * 100 + len * at_percent;
                        let (outcome, complete_tick, applied) = match fate {
                            0..=13 => (Outcome::Ok(OpResult::Ok), Some(complete), true),
                            14 | 15 => (Outcome::Info, Some(complete), true),
                            16 => (Outcome::Info, Some(complete), false),
                            17 => (Outcome::Fail, Some(complete), false),
                            18 => (Outcome::Info, None, true),
                            _ => (Outcome::Ok(OpResult::Ok), None, false),
                        };
                        order.push((at, i, applied));
                        history.push(HistoryOp {
                            client: i as u64,
                            op: Arc::new(op.clone()),
                            invoke_tick: *invoke,
                            complete_tick,
                            outcome,
                        });
                    }
                    order.sort_unstable();
                    for (_, i, applied) in order {
                        if applied {
                            let result = store.apply(&history[i].op);
                            if let Outcome::Ok(r) = &mut history[i].outcome {
                                *r = result;
                            }
                        }
                    }
                    if let Some(pick) = corrupt {
                        let i = pick.index(raw.len().max(1));
                        if let Some(op) = history.get_mut(i) {
                            if matches!(op.outcome, Outcome::Ok(_)) {
                                op.outcome = Outcome::Ok(plausible_result(&op.op, raw[i].5));
                            }
                        }
                    }
                    (history, initial)
                })
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2000))]

            /// The checker agrees with exhaustive search, both ways, on small histories; and a
            /// witness is a proof: it fails on its own, and with every other operation of the
            /// history relaxed.
            #[test]
            fn agrees_with_brute_force((history, initial) in any_small_history()) {
                let initial = initial.as_deref();
                let report = check(&history, initial, &Limits::default());
                let brute: Vec<BruteOp> =
                    history.iter().filter_map(|op| BruteOp::of(op, false)).collect();
                let expected = brute_force(&brute, initial);
                match &report.verdict {
                    Verdict::Linearizable => prop_assert!(expected, "checker says linearizable"),
                    Verdict::Unknown { .. } => prop_assert!(false, "small history: {:?}", report),
                    Verdict::NotLinearizable { key, ops } => {
                        prop_assert!(!expected, "checker says not linearizable: {:?}", ops);
                        prop_assert_eq!(key.as_str(), "k");
                        let alone: Vec<BruteOp> =
                            ops.iter().filter_map(|op| BruteOp::of(op, false)).collect();
                        prop_assert_eq!(alone.len(), ops.len());
                        prop_assert!(!brute_force(&alone, initial), "witness alone: {:?}", ops);
                        let relaxed: Vec<BruteOp> = history
                            .iter()
                            .filter_map(|op| BruteOp::of(op, !ops.contains(op)))
                            .collect();
                        prop_assert!(!brute_force(&relaxed, initial), "witness in context: {:?}", ops);
                    }
                }
            }
        }
    }
}
