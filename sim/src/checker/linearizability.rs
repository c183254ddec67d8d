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
//! Per key, the search of Wing & Gong ("Testing and verifying concurrent objects", J. Parallel
//! Distrib. Comput. 17, 1993) with Lowe's memoization ("Testing for linearizability",
//! Concurrency Computat.: Pract. Exper. 29, 2017), laid out as the Go checker porcupine
//! (github.com/anishathalye/porcupine) lays it out:
//!
//! - Each operation becomes a call event at its invoke tick and a return event at its
//!   completion tick, in one list sorted by tick. At equal ticks calls sort before returns, so
//!   an operation invoked at the very tick another completes counts as concurrent with it: a
//!   tick is coarser than real time, and this is the permissive (never falsely failing) choice.
//! - A depth-first search over an explicit stack (no recursion) linearizes an operation only
//!   if its call precedes the first pending return (otherwise that return's operation would be
//!   linearized after it completed), applies it to the model, and checks the model's result
//!   against the recorded one. Linearized operations are unlinked from the list and relinked on
//!   backtrack ("dancing links"), so the candidates are always the calls before the first
//!   return still in the list.
//! - A cache of visited nodes (set of linearized operations, model state) prunes every node
//!   already explored: two paths reaching the same node have the same futures. The set is a
//!   bitset, stored with its all-ones prefix and all-zeros suffix trimmed, and register values
//!   are interned, so a model state is a small integer and the hot loop neither clones nor
//!   compares strings.
//!
//! Plain WGL is exponential in the number of concurrent writes whose order nobody observed, so
//! the search adds pruning rules. Each one only skips moves for which an equivalent path is
//! explored anyway, so none changes a verdict (a property test compares the checker with an
//! exhaustive search, and every linearization found is replayed against the model and the
//! real-time order before it is believed):
//!
//! - *Forced moves.* A required operation that never changes the state when its recorded
//!   result holds (a `Get`, a `Cas` answered `CasMismatch`, a `Delete` answered `NotFound`) and
//!   that the model accepts now is linearized at once, with no alternative: moving it earlier
//!   in any linearization changes nothing anyone sees.
//! - *Lookahead.* After each move, every read-only operation that is pending or due within the
//!   next `LOOKAHEAD_RETURNS_MAX` returns must still be able to see its value before its
//!   deadline, given the writers not yet linearized (over-approximated: an overwrite, then any
//!   appends). A wrong guess among concurrent writes is caught when an observer rules it out,
//!   not when that observer's deadline comes. A quick check before the search fails a history
//!   at once when a read's value could not have been produced by anything.
//! - *Order.* Moves that set the register to (a prefix of) a value a pending read expects are
//!   tried first, so the search follows the observations.
//! - *Unseen values.* Present values that no pending operation compares with (nor could after
//!   appends) are one state for the cache: every comparison rejects them alike.
//!
//! # Indeterminate and failed operations
//!
//! - [`Outcome::Fail`]: the operation certainly did not take effect, so it is dropped before the
//!   search. Keeping it would only let it explain reads that nothing else can.
//! - [`Outcome::Info`], or no completion at all: the operation may never have taken effect, or
//!   may have taken effect at any instant after its invoke (a request can sit in a leader's log
//!   and commit long after its client gave up), with a result nobody saw. So its return is at
//!   +infinity, its result matches whatever the model returns, and it is *optional*: the search
//!   succeeds as soon as every `Ok` operation is linearized, whatever the indeterminate ones
//!   did. An indeterminate `Get` has no effect and no observed result, so it is dropped.
//!
//! Optional operations would otherwise multiply the search by every subset of them, so they
//! are linearized only when it can matter: only after every `Ok` candidate at a node has
//! failed; never when the move changes nothing, or sets a value no pending operation can see
//! (unless it makes the key present or absent); and only if the next move tells the states
//! before and after it apart (otherwise it was overwritten unobserved, and the path without it
//! is explored too). Indeterminate operations with the same effect are interchangeable, so
//! only the earliest pending one is tried; and a visited node with a *subset* of the
//! indeterminate operations linearized subsumes a new one, since they may always be left out.
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
//! One search step is one move of the search: trying a candidate, moving past a return, or
//! backtracking once. A step's work is bounded by the key's operation count (the lookahead and
//! the scan over indeterminate operations that cannot matter are part of the step they serve).
//! The search of a key takes at most [`Limits::steps_max`] steps and then gives up with
//! `Unknown`; the shrinking of a witness takes at most another `steps_max` steps in total and
//! then returns the smallest witness found so far. The memo cache gains at most one entry per
//! step, so memory is bounded by the same budget.
//!
//! On simulated histories of 1, 10 and 50 concurrent clients with 5000 operations over 4 keys,
//! including indeterminate and failed writes, a check takes 10 to 100 ms in release.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::{BuildHasherDefault, Hasher};

use raftsim_protocol::kv::{Op, OpResult};
use raftsim_protocol::types::{ClientId, Tick};

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
    /// The operation; [`Op::key`] says which register it touches.
    pub op: Op,
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
    /// The default [`Limits::steps_max`]: a few hundred milliseconds of search in release.
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

/// Checks `history` for linearizability, every key starting at `initial`.
///
/// # Panics
/// If an operation completes before it was invoked: the history itself is broken.
pub fn check(history: &[HistoryOp], initial: Option<&str>, limits: &Limits) -> Report {
    let mut by_key: BTreeMap<&str, Vec<&HistoryOp>> = BTreeMap::new();
    for op in history {
        if let Some(complete_tick) = op.complete_tick {
            assert!(
                complete_tick >= op.invoke_tick,
                "linearizability: operation completes before it was invoked: {op:?}"
            );
        }
        by_key.entry(op.op.key()).or_default().push(op);
    }

    let mut report = Report {
        verdict: Verdict::Linearizable,
        keys_checked: 0,
        ops_checked: 0,
        steps: 0,
        witness_steps: 0,
    };
    let mut unknown = None;
    for (key, ops) in &by_key {
        let mut plan = Plan::new(ops, &vec![Treat::Keep; ops.len()], initial);
        report.keys_checked += 1;
        report.ops_checked += plan.ops.len();
        let (found, steps) = plan.search(limits.steps_max);
        report.steps += steps;
        match found {
            Found::Linearizable => {}
            Found::NotLinearizable { frontier_tick } => {
                let (witness, witness_steps) =
                    shrink(ops, initial, limits.steps_max, frontier_tick);
                report.witness_steps = witness_steps;
                report.verdict = Verdict::NotLinearizable {
                    key: (*key).to_owned(),
                    ops: witness,
                };
                return report;
            }
            Found::OutOfSteps => {
                if unknown.is_none() {
                    unknown = Some(Verdict::Unknown {
                        key: (*key).to_owned(),
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

/// Shrinks the history of one unlinearizable key, whose search never got past
/// `frontier_tick`, to a witness; returns it with the steps spent. The witness is the key's
/// `Ok` operations that could not be relaxed.
fn shrink(
    ops: &[&HistoryOp],
    initial: Option<&str>,
    steps_max: u64,
    frontier_tick: Tick,
) -> (Vec<HistoryOp>, u64) {
    let mut shrinker = Shrinker {
        ops,
        initial,
        relaxed: vec![false; ops.len()],
        steps_left: steps_max,
    };
    shrinker.relax_after(frontier_tick);
    shrinker.run();
    let mut witness: Vec<HistoryOp> = ops
        .iter()
        .zip(&shrinker.relaxed)
        .filter(|(op, relaxed)| !**relaxed && is_definite(op))
        .map(|(op, _)| (*op).clone())
        .collect();
    // A stable sort keeps the history's order among operations invoked at the same tick.
    witness.sort_by_key(|op| op.invoke_tick);
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
    ops: &'a [&'h HistoryOp],
    initial: Option<&'a str>,
    /// Relaxed operations; the history with these relaxed is known not to be linearizable.
    relaxed: Vec<bool>,
    steps_left: u64,
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
            .filter(|&i| !self.relaxed[i] && is_definite(self.ops[i]))
            .collect()
    }

    /// Relaxes every operation invoked after `frontier_tick`, where a failed search never got
    /// past: those operations never became candidates (a candidate's call precedes the first
    /// pending return, and no return the search waited on was later) nor observers the
    /// lookahead relied on, so the same search fails without them. This costs no search.
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
            .filter(|&i| !relaxed[i] && is_definite(ops[i]))
            .map(|i| ops[i].invoke_tick)
            .min()
        else {
            // Nothing left to linearize.
            return Some(None);
        };
        let treat: Vec<Treat> = (0..ops.len())
            .map(|i| match (relaxed[i], is_definite(ops[i])) {
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
        let mut plan = Plan::new(ops, &treat, None);
        let mut frontier_tick = 0;
        for start in &starts {
            plan.initial = plan.states.intern(start.as_deref());
            let (found, steps) = plan.search(self.steps_left);
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
    /// are returned (over-approximated like [`Search::can_reach`]), so a read of a value
    /// nobody wrote stays refuted.
    fn start_values(&self, treat: &[Treat], cut_tick: Tick) -> BTreeSet<Option<String>> {
        let mut targets: Vec<&str> = Vec::new();
        let mut later_suffixes: BTreeSet<&str> = BTreeSet::new();
        for (op, &treat) in self.ops.iter().zip(treat) {
            if treat == Treat::Drop {
                continue;
            }
            match &op.op {
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
            ) = (&op.outcome, treat)
            {
                targets.push(value);
            }
        }
        // What the writes invoked before the cut could leave behind.
        let mut sets: BTreeSet<&str> = self.initial.into_iter().collect();
        let mut suffixes: BTreeSet<&str> = BTreeSet::new();
        let mut absent = self.initial.is_none();
        for op in self.ops.iter().filter(|op| op.invoke_tick < cut_tick) {
            if matches!(op.outcome, Outcome::Fail) {
                continue;
            }
            match &op.op {
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

/// How far past the first pending return the lookahead looks for observers, in returns
/// (see [`Search::observers_can_succeed`]). Further means more pruning but more work per move;
/// 8 was the sweet spot on simulated histories of 1 to 50 clients.
const LOOKAHEAD_RETURNS_MAX: u32 = 8;

/// Most entries of one cache chain compared before a node is taken as new. Missing a visited
/// node only costs search, never correctness; this bounds the work of one step.
const CACHE_CHAIN_LENGTH_MAX: u32 = 64;

/// In a cache key: some present value no pending operation can see (see [`Search::enter`]).
const DEAD: StateId = u32::MAX - 1;

/// "No node" in the intrusive lists and cache chains.
const NIL: u32 = u32::MAX;

/// A small, fast, deterministic hasher (the multiply-rotate of rustc's FxHasher). Used only for
/// lookups: nothing iterates a map that uses it.
#[derive(Default)]
struct WordHasher(u64);

impl Hasher for WordHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }

    fn write_u8(&mut self, n: u8) {
        self.write_u64(u64::from(n));
    }

    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }

    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
}

type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<WordHasher>>;

/// Interned register values: id 0 is absent, id `k` is `values[k - 1]`.
#[derive(Default)]
struct StateTable {
    values: Vec<String>,
    ids: FastMap<String, StateId>,
    /// `(state, op)` to the state after that `Append`, so each concatenation is built once.
    appended: FastMap<(StateId, u32), StateId>,
}

impl StateTable {
    fn intern(&mut self, value: Option<&str>) -> StateId {
        match value {
            None => ABSENT,
            Some(value) => match self.ids.get(value) {
                Some(&id) => id,
                None => self.insert(value.to_owned()),
            },
        }
    }

    fn insert(&mut self, value: String) -> StateId {
        let id = StateId::try_from(self.values.len() + 1)
            .ok()
            .filter(|&id| id < DEAD)
            .expect("linearizability: fewer than 2^32 - 2 distinct values per key");
        self.ids.insert(value.clone(), id);
        self.values.push(value);
        id
    }

    fn value(&self, id: StateId) -> Option<&str> {
        match id {
            ABSENT => None,
            id => Some(&self.values[id as usize - 1]),
        }
    }

    /// The state after appending `suffix` (of operation `op`) to `state`.
    fn append(&mut self, state: StateId, op: u32, suffix: &str) -> StateId {
        if let Some(&id) = self.appended.get(&(state, op)) {
            return id;
        }
        let mut value = self.value(state).unwrap_or("").to_owned();
        value.push_str(suffix);
        let id = match self.ids.get(value.as_str()) {
            Some(&id) => id,
            None => self.insert(value),
        };
        self.appended.insert((state, op), id);
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Res {
    Ok,
    Value(StateId),
    NotFound,
    CasMismatch(StateId),
}

/// How an operation takes part in the search.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
fn role_of(op: &HistoryOp, treat: Treat) -> Option<Role> {
    let role = match (&op.outcome, op.complete_tick, treat) {
        (_, _, Treat::Drop) | (Outcome::Fail, _, _) => return None,
        (Outcome::Ok(_), Some(_), Treat::Keep) => Role::Required,
        (Outcome::Ok(_), Some(_), Treat::Relax) => Role::Optional,
        (Outcome::Ok(_), None, _) | (Outcome::Info, _, _) => Role::Info,
    };
    // A read that may not have happened, or whose result is not checked, constrains nothing.
    if role != Role::Required && op.op.is_read() {
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
    /// [`Search::is_observable`]).
    observes: [StateId; 2],
    /// For an indeterminate operation: the latest indeterminate operation invoked before it
    /// with the same effect, or `NIL`. See [`Search::run`]'s indeterminate phase.
    twin_before: u32,
    /// A required operation that leaves the state unchanged in *every* state whose result
    /// matches its recorded one: a `Get`, a `Cas` answered `CasMismatch` (or expecting the
    /// value it sets), a `Delete` answered `NotFound`. (A `Put` of the value already there
    /// is not: elsewhere it would change the state.)
    read_only: bool,
}

impl PlanOp<'_> {
    /// True if the operation may change the state: not a read, nor a read-only result.
    fn is_writer(&self) -> bool {
        !self.read_only && !matches!(self.effect, Effect::Get)
    }
}

/// One event of the main list: a call or a return of an operation with a finite window.
#[derive(Debug, Clone, Copy)]
struct Event {
    op: u32,
    tick: Tick,
    is_return: bool,
}

/// A key's history, prepared for the search.
struct Plan<'h> {
    states: StateTable,
    initial: StateId,
    /// Operations with a finite window first, then [`Role::Info`] ones; each group sorted by
    /// invoke tick.
    ops: Vec<PlanOp<'h>>,
    /// How many operations have a finite window (the first `finite_count` of `ops`).
    finite_count: usize,
    /// Every value some operation compares the register with for equality (see
    /// [`PlanOp::observes`]), sorted by value.
    targets: Vec<StateId>,
    /// Memo of [`Plan::targets_extending`].
    extending: FastMap<StateId, Vec<StateId>>,
}

impl<'h> Plan<'h> {
    /// Prepares `ops` (all of one key), each treated as `treat` says.
    fn new(ops: &[&'h HistoryOp], treat: &[Treat], initial: Option<&str>) -> Plan<'h> {
        assert_eq!(
            ops.len(),
            treat.len(),
            "linearizability: one treatment per op"
        );
        let mut states = StateTable::default();
        let initial = states.intern(initial);
        let mut plan_ops = Vec::with_capacity(ops.len());
        for (origin, (&op, &treat)) in ops.iter().zip(treat).enumerate() {
            let Some(role) = role_of(op, treat) else {
                continue;
            };
            let effect = match &op.op {
                Op::Get { .. } => Effect::Get,
                Op::Put { value, .. } => Effect::Put(states.intern(Some(value))),
                Op::Append { value, .. } => Effect::Append(value),
                Op::Delete { .. } => Effect::Delete,
                Op::Cas { expected, new, .. } => Effect::Cas {
                    expected: states.intern(expected.as_deref()),
                    new: states.intern(Some(new)),
                },
            };
            let expect = match (&op.outcome, role) {
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
        plan_ops.sort_by_key(|op| (op.role == Role::Info, op.invoke_tick, op.origin));
        let finite_count = plan_ops.iter().filter(|op| op.role != Role::Info).count();
        let mut last_twin: FastMap<Effect<'h>, u32> = FastMap::default();
        for (op, plan_op) in plan_ops.iter_mut().enumerate().skip(finite_count) {
            plan_op.twin_before = last_twin.insert(plan_op.effect, op as u32).unwrap_or(NIL);
        }
        assert!(
            u32::try_from(plan_ops.len()).is_ok_and(|n| n < NIL / 2),
            "linearizability: too many operations on one key"
        );
        let mut targets: Vec<StateId> = plan_ops
            .iter()
            .flat_map(|op| op.observes)
            .filter(|&target| target != NIL)
            .collect();
        targets.sort_unstable_by_key(|&target| states.value(target));
        targets.dedup();
        Plan {
            states,
            initial,
            ops: plan_ops,
            finite_count,
            targets,
            extending: FastMap::default(),
        }
    }

    /// The targets (see [`PlanOp::observes`]) whose value starts with `state`'s value, which
    /// must be present: those that could see it, directly or after appends.
    fn targets_extending(&mut self, state: StateId) -> &[StateId] {
        if !self.extending.contains_key(&state) {
            let value = self.states.value(state).expect("a present value");
            let first = self
                .targets
                .partition_point(|&target| self.states.value(target) < Some(value));
            let extending: Vec<StateId> = self.targets[first..]
                .iter()
                .copied()
                .take_while(|&target| {
                    self.states
                        .value(target)
                        .is_some_and(|target| target.starts_with(value))
                })
                .collect();
            self.extending.insert(state, extending);
        }
        &self.extending[&state]
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

    /// Searches for a linearization within `steps_max` steps; returns what it found and the
    /// steps it took.
    fn search(&mut self, steps_max: u64) -> (Found, u64) {
        let mut search = Search::new(self);
        let found = search.run(self, steps_max);
        debug_assert!(search.steps <= steps_max);
        (found, search.steps)
    }
}

/// The outcome of one search.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Found {
    Linearizable,
    /// No linearization, and the search never had to look at an operation invoked after
    /// `frontier_tick` to find that out: no candidate, and no writer or observer that the
    /// lookahead relied on to prune.
    NotLinearizable {
        frontier_tick: Tick,
    },
    OutOfSteps,
}

/// A doubly linked list over nodes `1..=len`, with sentinels `0` (head) and `len + 1` (tail).
/// Unlinked nodes keep their own links, so relinking in reverse order restores the list.
struct Links {
    next: Vec<u32>,
    prev: Vec<u32>,
}

impl Links {
    fn new(len: usize) -> Links {
        let last = u32::try_from(len + 1).expect("linearizability: list fits in u32");
        Links {
            next: (1..=last).chain([NIL]).collect(),
            prev: [NIL].into_iter().chain(0..last).collect(),
        }
    }

    fn first(&self) -> u32 {
        self.next[0]
    }

    fn tail(&self) -> u32 {
        (self.next.len() - 1) as u32
    }

    fn next(&self, node: u32) -> u32 {
        self.next[node as usize]
    }

    fn unlink(&mut self, node: u32) {
        let (prev, next) = (self.prev[node as usize], self.next[node as usize]);
        self.next[prev as usize] = next;
        self.prev[next as usize] = prev;
    }

    fn relink(&mut self, node: u32) {
        let (prev, next) = (self.prev[node as usize], self.next[node as usize]);
        self.next[prev as usize] = node;
        self.prev[next as usize] = node;
    }
}

/// The memo cache of visited search nodes. A node is the set of finished operations with a
/// finite window (encoded by [`encode_set`], with the pruning rule's `unobserved` state
/// appended), the model state, and the set of linearized indeterminate operations.
///
/// A node is pruned if a visited node has the same finite part and state and a *subset* of
/// its indeterminate operations: indeterminate operations may always be left out, so every
/// way to finish from the new node was also a way to finish from the visited one.
/// Entries are chained per hash and live in one arena, so a lookup allocates nothing.
struct Cache {
    heads: FastMap<u64, u32>,
    entries: Vec<CacheEntry>,
    arena: Vec<u64>,
    /// Length of every indeterminate set, in words.
    info_words: usize,
}

struct CacheEntry {
    state: StateId,
    /// The finite part at `arena[start..start + len]`, then the indeterminate set.
    start: usize,
    len: usize,
    next: u32,
}

impl Cache {
    fn new(info_words: usize) -> Cache {
        Cache {
            heads: FastMap::default(),
            entries: Vec::new(),
            arena: Vec::new(),
            info_words,
        }
    }

    /// Records the node and returns true, unless a visited node subsumes it.
    fn insert(&mut self, finite: &[u64], state: StateId, info: &[u64]) -> bool {
        debug_assert_eq!(info.len(), self.info_words);
        let mut hasher = WordHasher::default();
        hasher.write_u32(state);
        for &word in finite {
            hasher.write_u64(word);
        }
        let hash = hasher.finish();
        let head = self.heads.get(&hash).copied().unwrap_or(NIL);
        let mut cursor = head;
        let mut compared = 0;
        while cursor != NIL && compared < CACHE_CHAIN_LENGTH_MAX {
            compared += 1;
            let entry = &self.entries[cursor as usize];
            let (finite_end, info_end) = (
                entry.start + entry.len,
                entry.start + entry.len + self.info_words,
            );
            if entry.state == state
                && self.arena[entry.start..finite_end] == *finite
                && self.arena[finite_end..info_end]
                    .iter()
                    .zip(info)
                    .all(|(visited, new)| visited & !new == 0)
            {
                return false;
            }
            cursor = entry.next;
        }
        let id = u32::try_from(self.entries.len()).expect("linearizability: cache fits in u32");
        self.entries.push(CacheEntry {
            state,
            start: self.arena.len(),
            len: finite.len(),
            next: head,
        });
        self.arena.extend_from_slice(finite);
        self.arena.extend_from_slice(info);
        self.heads.insert(hash, id);
        true
    }
}

/// Appends a canonical encoding of a bitset of fixed length: the count of leading all-ones
/// words and of the words kept, then the words between those and the trailing zero words.
/// Operations are numbered in invoke order, so a deep search node has a long all-ones prefix
/// and a long all-zeros suffix, and its encoding is short.
fn encode_set(words: &[u64], out: &mut Vec<u64>) {
    let lo = words.iter().take_while(|&&w| w == u64::MAX).count();
    let hi = words
        .iter()
        .rposition(|&w| w != 0)
        .map_or(0, |last| last + 1)
        .max(lo);
    out.push(((lo as u64) << 32) | (hi - lo) as u64);
    out.extend_from_slice(&words[lo..hi]);
}

/// Where the search resumes at a node after backtracking to it.
#[derive(Debug, Clone, Copy)]
enum Resume {
    /// Nowhere: the operation was a forced move, so the node has no other alternative.
    Forced,
    /// After this call in the main list, in the same pass.
    Main { node: u32, promising: bool },
    /// After this call in the indeterminate list, bounded by the node's first return.
    Info { node: u32, first_return: u32 },
    /// The node's last alternative (skipping an optional operation) was taken.
    Skipped,
}

/// One linearized (or skipped) operation on the search path.
#[derive(Debug, Clone, Copy)]
struct Frame {
    op: u32,
    state_before: StateId,
    unobserved_before: StateId,
    resume: Resume,
}

/// What the search does next at the current node.
#[derive(Debug, Clone, Copy)]
enum Cursor {
    /// Look for a forced move among the calls of the main list from this node on, up to the
    /// first return; then go on with `Main` from the first call.
    Forced(u32),
    /// Try the calls of the main list from this node on, up to the first return: first the
    /// promising ones (see [`Search::is_promising`]), then in a second pass the others.
    Main { node: u32, promising: bool },
    /// Try the indeterminate calls from this node on that precede the first return.
    Info { node: u32, first_return: u32 },
    /// Skip the operation of the first return if it is optional, else backtrack.
    Skip { first_return: u32 },
    /// Undo the last frame.
    Backtrack,
}

/// The state of one depth-first search.
struct Search {
    /// Calls and returns of the operations with a finite window, sorted by (tick, returns
    /// after calls, operation).
    main: Links,
    events: Vec<Event>,
    /// Calls of the indeterminate operations, in invoke order.
    info: Links,
    /// Per operation: its call node (in `main` or `info`) and return node (`NIL` for info).
    call_node: Vec<u32>,
    return_node: Vec<u32>,
    /// Linearized or skipped operations: finite ones, then indeterminate ones.
    done_finite: Vec<u64>,
    done_info: Vec<u64>,
    cache: Cache,
    /// Scratch space for the cache key.
    key: Vec<u64>,
    stack: Vec<Frame>,
    state: StateId,
    /// When the last move linearized an optional or indeterminate operation: the state before
    /// it, which the next linearized operation must tell apart from `state`. Else `NIL`.
    unobserved: StateId,
    /// Counts moves and undos, so that `targets` knows when it is stale.
    generation: u64,
    /// The targets of the pending read-only operations at the node of `targets_generation`.
    targets: Vec<StateId>,
    targets_generation: u64,
    /// Scratch space for [`Search::observers_can_succeed`].
    observers: Vec<(StateId, Tick, Tick)>,
    writers: Vec<u32>,
    reach: Vec<bool>,
    /// The latest tick the search depended on: see [`Found::NotLinearizable`].
    frontier_tick: Tick,
    /// Per target (see [`PlanOp::observes`]): how many operations not yet done compare with it.
    live: Vec<u32>,
    required_left: usize,
    steps: u64,
}

impl Search {
    fn new(plan: &Plan<'_>) -> Search {
        let finite = &plan.ops[..plan.finite_count];
        let mut events = Vec::with_capacity(2 * finite.len() + 2);
        for (op, plan_op) in finite.iter().enumerate() {
            let op = op as u32;
            events.push(Event {
                op,
                tick: plan_op.invoke_tick,
                is_return: false,
            });
            events.push(Event {
                op,
                tick: plan_op.complete_tick,
                is_return: true,
            });
        }
        events.sort_by_key(|e| (e.tick, e.is_return, e.op));
        // Sentinels at both ends, so real events are nodes 1..=len like the list's.
        let sentinel = Event {
            op: NIL,
            tick: Tick::MAX,
            is_return: true,
        };
        events.insert(0, sentinel);
        events.push(sentinel);

        let mut call_node = vec![NIL; plan.ops.len()];
        let mut return_node = vec![NIL; plan.ops.len()];
        for (node, event) in events.iter().enumerate().skip(1).take(2 * finite.len()) {
            let slot = if event.is_return {
                &mut return_node
            } else {
                &mut call_node
            };
            slot[event.op as usize] = node as u32;
        }
        let info_count = plan.ops.len() - plan.finite_count;
        for (i, node) in call_node[plan.finite_count..].iter_mut().enumerate() {
            *node = i as u32 + 1;
        }

        let mut live = vec![0; plan.states.values.len() + 1];
        for target in plan.ops.iter().flat_map(|op| op.observes) {
            if target != NIL {
                live[target as usize] += 1;
            }
        }
        Search {
            main: Links::new(2 * finite.len()),
            events,
            info: Links::new(info_count),
            call_node,
            return_node,
            done_finite: vec![0; plan.finite_count.div_ceil(64)],
            done_info: vec![0; info_count.div_ceil(64)],
            cache: Cache::new(info_count.div_ceil(64)),
            key: Vec::new(),
            stack: Vec::new(),
            state: plan.initial,
            unobserved: NIL,
            generation: 0,
            targets: Vec::new(),
            targets_generation: u64::MAX,
            observers: Vec::new(),
            writers: Vec::new(),
            reach: Vec::new(),
            frontier_tick: 0,
            live,
            required_left: plan
                .ops
                .iter()
                .filter(|op| op.role == Role::Required)
                .count(),
            steps: 0,
        }
    }

    fn run(&mut self, plan: &mut Plan<'_>, steps_max: u64) -> Found {
        if let Some(deadline_tick) = self.unreachable_observer(plan) {
            return Found::NotLinearizable {
                frontier_tick: deadline_tick,
            };
        }
        let mut cursor = Cursor::Forced(self.main.first());
        loop {
            // Success is every required operation linearized: the optional and indeterminate
            // ones left may simply not have taken effect.
            if self.required_left == 0 {
                self.assert_linearization(plan);
                return Found::Linearizable;
            }
            if self.steps >= steps_max {
                return Found::OutOfSteps;
            }
            self.steps += 1;
            cursor = match cursor {
                Cursor::Forced(node) => {
                    assert_ne!(
                        node,
                        self.main.tail(),
                        "linearizability: a return is pending"
                    );
                    let event = self.events[node as usize];
                    if event.is_return {
                        self.frontier_tick = self.frontier_tick.max(event.tick);
                        Cursor::Main {
                            node: self.main.first(),
                            promising: true,
                        }
                    } else {
                        match self.try_force(plan, event.op) {
                            None => Cursor::Forced(self.main.next(node)),
                            Some(true) => Cursor::Forced(self.main.first()),
                            // The node it leads to failed before, so this one fails too.
                            Some(false) => Cursor::Backtrack,
                        }
                    }
                }
                Cursor::Main { node, promising } => {
                    // A required operation is still pending, so its return is still listed.
                    assert_ne!(
                        node,
                        self.main.tail(),
                        "linearizability: a return is pending"
                    );
                    let event = self.events[node as usize];
                    if event.is_return && promising {
                        Cursor::Main {
                            node: self.main.first(),
                            promising: false,
                        }
                    } else if event.is_return {
                        Cursor::Info {
                            node: self.info.first(),
                            first_return: node,
                        }
                    } else if self.try_mutate(plan, event.op, node, promising) {
                        Cursor::Forced(self.main.first())
                    } else {
                        Cursor::Main {
                            node: self.main.next(node),
                            promising,
                        }
                    }
                }
                Cursor::Info { node, first_return } => {
                    let node = self.next_info_candidate(plan, node, first_return);
                    if node == self.info.tail() {
                        Cursor::Skip { first_return }
                    } else if self.try_linearize(
                        plan,
                        plan.finite_count as u32 + node - 1,
                        Resume::Info { node, first_return },
                    ) {
                        Cursor::Forced(self.main.first())
                    } else {
                        Cursor::Info {
                            node: self.info.next(node),
                            first_return,
                        }
                    }
                }
                Cursor::Skip { first_return } => {
                    let op = self.events[first_return as usize].op;
                    if plan.ops[op as usize].role == Role::Optional && self.try_skip(plan, op) {
                        Cursor::Forced(self.main.first())
                    } else {
                        Cursor::Backtrack
                    }
                }
                Cursor::Backtrack => {
                    let Some(frame) = self.stack.pop() else {
                        return Found::NotLinearizable {
                            frontier_tick: self.frontier_tick,
                        };
                    };
                    self.undo(plan, frame);
                    match frame.resume {
                        Resume::Main { node, promising } => Cursor::Main {
                            node: self.main.next(node),
                            promising,
                        },
                        Resume::Info { node, first_return } => Cursor::Info {
                            node: self.info.next(node),
                            first_return,
                        },
                        Resume::Forced | Resume::Skipped => Cursor::Backtrack,
                    }
                }
            };
        }
    }

    /// In the main pass `promising`, linearizes `op` if it belongs to that pass and
    /// [`Search::try_linearize`] allows it.
    fn try_mutate(&mut self, plan: &mut Plan<'_>, op: u32, node: u32, promising: bool) -> bool {
        let Some(state) = self.check_move(plan, op) else {
            return false;
        };
        if self.is_promising(plan, state) != promising {
            return false;
        }
        self.enter_linearized(plan, op, state, Resume::Main { node, promising })
    }

    /// True if `state` is, or could be extended by appends into, the value some pending
    /// read-only operation expects. Moves to promising states are tried first: they follow the
    /// observations, so a depth-first search that orders them first rarely has to backtrack
    /// over the many orders of concurrent writes that nobody observed. This is only an order;
    /// every move is still tried.
    fn is_promising(&mut self, plan: &Plan<'_>, state: StateId) -> bool {
        if self.targets_generation != self.generation {
            self.targets.clear();
            let mut node = self.main.first();
            while !self.events[node as usize].is_return {
                let op = &plan.ops[self.events[node as usize].op as usize];
                if let Some(target) = op.target {
                    self.targets.push(target);
                }
                node = self.main.next(node);
            }
            self.targets_generation = self.generation;
        }
        let value = plan.states.value(state);
        self.targets.iter().any(|&target| {
            target == state
                || value.is_some_and(|value| {
                    plan.states
                        .value(target)
                        .is_some_and(|target| target.starts_with(value))
                })
        })
    }

    /// The state after linearizing `op` at the current node, if the model agrees with its
    /// recorded result and the pruning rules allow it.
    fn check_move(&mut self, plan: &mut Plan<'_>, op: u32) -> Option<StateId> {
        let (state, result) = plan.apply(self.state, op);
        let plan_op = plan.ops[op as usize];
        if !accepts(plan_op.expect, result) {
            return None;
        }
        // An optional operation that changes nothing may as well not have taken effect, and
        // one whose effect nothing can observe may as well not have either.
        if plan_op.role != Role::Required
            && (state == self.state
                || ((state == ABSENT) == (self.state == ABSENT)
                    && !self.is_observable(plan, state)))
        {
            return None;
        }
        // The operation right after an optional one must tell the states before and after it
        // apart. If it behaves the same from both, the optional operation was overwritten
        // unobserved, and the same path without it is explored elsewhere.
        if self.unobserved != NIL {
            let (state_without, result_without) = plan.apply(self.unobserved, op);
            if state_without == state && accepts(plan_op.expect, result_without) {
                return None;
            }
        }
        Some(state)
    }

    /// Linearizes `op` at the current node if [`Search::check_move`] allows it and the node it
    /// leads to is new.
    fn try_linearize(&mut self, plan: &mut Plan<'_>, op: u32, resume: Resume) -> bool {
        match self.check_move(plan, op) {
            Some(state) => self.enter_linearized(plan, op, state, resume),
            None => false,
        }
    }

    /// Makes a forced move with `op` if it is one: a required read-only operation (see
    /// [`PlanOp::read_only`]) that the model accepts now. Such an operation can be linearized
    /// right now without losing any solution: taking it out of a later position changes no
    /// state, since it changed none there, and moving it earlier only relaxes the real-time
    /// order. So the node has no other alternative worth trying. `None`: not a forced move;
    /// `Some(entered)`: a forced move, `false` if the node it leads to failed before.
    fn try_force(&mut self, plan: &mut Plan<'_>, op: u32) -> Option<bool> {
        if !plan.ops[op as usize].read_only {
            return None;
        }
        let state = self.check_move(plan, op)?;
        assert_eq!(
            state, self.state,
            "linearizability: a read-only op changed the state"
        );
        Some(self.enter_linearized(plan, op, state, Resume::Forced))
    }

    fn enter_linearized(
        &mut self,
        plan: &mut Plan<'_>,
        op: u32,
        state: StateId,
        resume: Resume,
    ) -> bool {
        let required = plan.ops[op as usize].role == Role::Required;
        let unobserved = if required { NIL } else { self.state };
        if !self.enter(plan, op, state, unobserved, resume) {
            return false;
        }
        if required {
            self.required_left -= 1;
        }
        if !self.observers_can_succeed(plan) {
            let frame = self.stack.pop().expect("just pushed");
            self.undo(plan, frame);
            return false;
        }
        true
    }

    /// Lookahead after a move: false if some read-only operation, pending or invoked before the
    /// [`LOOKAHEAD_RETURNS_MAX`]-th pending return, can no longer see the value it expects
    /// before it completes, whatever the operations still to be linearized do. The register's value can
    /// only be reached by overwriting it (`Put`, a successful `Cas`, `Delete`) and then
    /// appending, so the check asks whether the expected value is the current value, or a
    /// value some pending writer sets, followed by suffixes of pending appends (in any number
    /// and order: an over-approximation, so a node is never pruned wrongly). This catches a
    /// wrong guess among concurrent writes as soon as an observer rules it out, instead of
    /// when that observer's deadline arrives.
    fn observers_can_succeed(&mut self, plan: &Plan<'_>) -> bool {
        let mut observers = std::mem::take(&mut self.observers);
        observers.clear();
        let mut node = self.main.first();
        let mut extra = 0;
        while node != self.main.tail() && extra < LOOKAHEAD_RETURNS_MAX {
            let event = self.events[node as usize];
            if event.is_return {
                extra += 1;
            } else {
                let op = &plan.ops[event.op as usize];
                if let Some(target) = op.target.filter(|&target| target != self.state) {
                    observers.push((target, op.invoke_tick, op.complete_tick));
                }
            }
            node = self.main.next(node);
        }
        let Some(horizon_tick) = observers.iter().map(|&(_, _, tick)| tick).max() else {
            self.observers = observers;
            return true;
        };
        // Writers not yet linearized that are invoked by the horizon.
        self.writers.clear();
        let mut node = self.main.first();
        while node != self.main.tail() && self.events[node as usize].tick <= horizon_tick {
            let event = self.events[node as usize];
            if !event.is_return && plan.ops[event.op as usize].is_writer() {
                self.writers.push(event.op);
            }
            node = self.main.next(node);
        }
        let mut node = self.info.first();
        while node != self.info.tail() {
            let op = plan.finite_count as u32 + node - 1;
            if plan.ops[op as usize].invoke_tick > horizon_tick {
                break;
            }
            self.writers.push(op);
            node = self.info.next(node);
        }
        let dead = observers
            .iter()
            .find(|&&(target, _, deadline_tick)| !self.can_reach(plan, target, deadline_tick))
            .copied();
        self.observers = observers;
        match dead {
            // The verdict now depends on this observer and on every writer invoked by its
            // deadline: see `Found::NotLinearizable`.
            Some((_, _, deadline_tick)) => {
                self.frontier_tick = self.frontier_tick.max(deadline_tick);
                false
            }
            None => true,
        }
    }

    /// A cheap check before the search: the earliest deadline (completion tick) of a required
    /// read-only operation whose value nothing in the whole history could produce by then (not
    /// the initial value, no `Put` or `Cas` setting it, no `Append` of one of its suffixes, no
    /// `Delete` for absence), if there is one. Such a history fails at once, whatever the
    /// order, and the verdict depends on nothing invoked after that deadline.
    fn unreachable_observer(&self, plan: &Plan<'_>) -> Option<Tick> {
        let mut set_tick: FastMap<StateId, Tick> = FastMap::default();
        let mut append_tick: FastMap<&str, Tick> = FastMap::default();
        let mut delete_tick = Tick::MAX;
        for op in plan.ops.iter().filter(|op| op.is_writer()) {
            let earliest = match op.effect {
                Effect::Put(value) | Effect::Cas { new: value, .. } => {
                    set_tick.entry(value).or_insert(Tick::MAX)
                }
                Effect::Append(suffix) => append_tick.entry(suffix).or_insert(Tick::MAX),
                Effect::Delete => &mut delete_tick,
                Effect::Get => continue,
            };
            *earliest = (*earliest).min(op.invoke_tick);
        }
        let by =
            |tick: Option<&Tick>, deadline_tick: Tick| tick.is_some_and(|&t| t <= deadline_tick);
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
                            by(set_tick.get(&target), deadline_tick)
                                || value
                                    .char_indices()
                                    .map(|(i, _)| &value[i..])
                                    .chain([""])
                                    .any(|suffix| by(append_tick.get(suffix), deadline_tick))
                        }
                    };
                !reachable
            })
            .map(|op| op.complete_tick)
            .min()
    }

    /// True if the writers in `self.writers` invoked by `deadline_tick` could take the register
    /// from its current state to `target` (over-approximated: see
    /// [`Search::observers_can_succeed`]).
    fn can_reach(&mut self, plan: &Plan<'_>, target: StateId, deadline_tick: Tick) -> bool {
        let writers = self
            .writers
            .iter()
            .map(|&op| &plan.ops[op as usize])
            .filter(|op| op.invoke_tick <= deadline_tick);
        let Some(target) = plan.states.value(target) else {
            return writers
                .clone()
                .any(|op| matches!(op.effect, Effect::Delete));
        };
        let target = target.as_bytes();
        // reach[i]: the register can hold target[..i] (as a present value).
        self.reach.clear();
        self.reach.resize(target.len() + 1, false);
        let seed = |reach: &mut Vec<bool>, value: &[u8]| {
            if target.starts_with(value) {
                reach[value.len()] = true;
            }
        };
        // Starting from absent, the first append creates the key.
        let mut from_absent = match plan.states.value(self.state) {
            Some(value) => {
                seed(&mut self.reach, value.as_bytes());
                false
            }
            None => true,
        };
        for op in writers.clone() {
            match op.effect {
                Effect::Put(value) | Effect::Cas { new: value, .. } => {
                    let value = plan.states.value(value).expect("writes a value");
                    seed(&mut self.reach, value.as_bytes());
                }
                Effect::Delete => from_absent = true,
                Effect::Get | Effect::Append(_) => {}
            }
        }
        let suffixes = writers.filter_map(|op| match op.effect {
            Effect::Append(suffix) => Some(suffix.as_bytes()),
            _ => None,
        });
        if from_absent {
            for suffix in suffixes.clone() {
                seed(&mut self.reach, suffix);
            }
        }
        for i in 0..target.len() {
            if self.reach[i] {
                for suffix in suffixes.clone().filter(|s| !s.is_empty()) {
                    if target[i..].starts_with(suffix) {
                        self.reach[i + suffix.len()] = true;
                    }
                }
            }
        }
        self.reach[target.len()]
    }

    /// Decides that optional `op` never took effect, if the node that leads to is new.
    fn try_skip(&mut self, plan: &mut Plan<'_>, op: u32) -> bool {
        self.enter(plan, op, self.state, NIL, Resume::Skipped)
    }

    /// Marks `op` done and moves to (`state`, `unobserved`), unless that node was visited
    /// before.
    fn enter(
        &mut self,
        plan: &mut Plan<'_>,
        op: u32,
        state: StateId,
        unobserved: StateId,
        resume: Resume,
    ) -> bool {
        self.toggle_done(plan, op);
        self.key.clear();
        encode_set(&self.done_finite, &mut self.key);
        // The pruning rule makes the allowed futures depend on it, so it is part of the node.
        self.key.push(u64::from(unobserved));
        // All present values that no pending operation can see behave alike from here on:
        // every comparison rejects them and appending keeps them unseen. So they are one node.
        let key_state = if state != ABSENT && !self.is_observable(plan, state) {
            DEAD
        } else {
            state
        };
        if !self.cache.insert(&self.key, key_state, &self.done_info) {
            self.toggle_done(plan, op);
            return false;
        }
        self.stack.push(Frame {
            op,
            state_before: self.state,
            unobserved_before: self.unobserved,
            resume,
        });
        self.state = state;
        self.unobserved = unobserved;
        self.generation += 1;
        if (op as usize) < plan.finite_count {
            self.main.unlink(self.call_node[op as usize]);
            self.main.unlink(self.return_node[op as usize]);
        } else {
            self.info.unlink(self.call_node[op as usize]);
        }
        true
    }

    /// Undoes `frame`, the top of the stack, restoring the lists in reverse order.
    fn undo(&mut self, plan: &Plan<'_>, frame: Frame) {
        let op = frame.op as usize;
        if op < plan.finite_count {
            self.main.relink(self.return_node[op]);
            self.main.relink(self.call_node[op]);
        } else {
            self.info.relink(self.call_node[op]);
        }
        self.toggle_done(plan, frame.op);
        self.state = frame.state_before;
        self.unobserved = frame.unobserved_before;
        self.generation += 1;
        if plan.ops[op].role == Role::Required {
            self.required_left += 1;
        }
    }

    /// The first node of the indeterminate list, from `node` on, whose operation is invoked
    /// before `first_return` and is worth a try; the list's tail if none. The operations
    /// passed over are those [`Search::check_move`] would refuse for reasons known without
    /// applying them, or twins (below); skipping them is cheap, so it costs no search step.
    fn next_info_candidate(
        &mut self,
        plan: &mut Plan<'_>,
        mut node: u32,
        first_return: u32,
    ) -> u32 {
        let bound_tick = self.events[first_return as usize].tick;
        while node != self.info.tail() {
            let op = plan.finite_count as u32 + node - 1;
            let plan_op = plan.ops[op as usize];
            if plan_op.invoke_tick > bound_tick {
                return self.info.tail();
            }
            // Indeterminate operations with the same effect are interchangeable, and the
            // earliest invoked may stand in for any later one (its window starts earlier and
            // never ends). So only the earliest pending one is tried, which spares the search
            // every other choice among twins.
            let worth = self.is_first_twin(plan, op)
                && match plan_op.effect {
                    // A blind write never tells the states before and after an optional
                    // operation apart, never changes a state into itself, and must be seen.
                    Effect::Put(value) => {
                        self.unobserved == NIL
                            && value != self.state
                            && (self.state == ABSENT || self.is_observable(plan, value))
                    }
                    Effect::Delete => self.unobserved == NIL && self.state != ABSENT,
                    Effect::Get | Effect::Append(_) | Effect::Cas { .. } => true,
                };
            if worth {
                return node;
            }
            node = self.info.next(node);
        }
        node
    }

    /// Replays the linearization on the stack against the model and asserts that it is one:
    /// every required operation once, with its recorded result, and no operation before one
    /// that completed before it was invoked. The pruning rules are subtle; this keeps a bug
    /// in them from ever passing a history silently.
    fn assert_linearization(&self, plan: &mut Plan<'_>) {
        let mut state = plan.initial;
        let mut invoke_tick_max = 0;
        let mut required = 0;
        for frame in self
            .stack
            .iter()
            .filter(|f| !matches!(f.resume, Resume::Skipped))
        {
            let op = plan.ops[frame.op as usize];
            assert!(
                op.complete_tick >= invoke_tick_max,
                "linearizability: linearized {op:?} after an operation invoked after it completed"
            );
            invoke_tick_max = invoke_tick_max.max(op.invoke_tick);
            let (next, result) = plan.apply(state, frame.op);
            assert!(
                accepts(op.expect, result),
                "linearizability: linearized {op:?} with the wrong result {result:?}"
            );
            state = next;
            required += usize::from(op.role == Role::Required);
        }
        let required_total = plan
            .ops
            .iter()
            .filter(|op| op.role == Role::Required)
            .count();
        assert_eq!(
            required, required_total,
            "linearizability: a required operation is missing"
        );
    }

    /// True unless an indeterminate twin of `op` invoked before it is still pending.
    fn is_first_twin(&self, plan: &Plan<'_>, op: u32) -> bool {
        let twin = plan.ops[op as usize].twin_before;
        twin == NIL || self.is_done(plan, twin)
    }

    fn is_done(&self, plan: &Plan<'_>, op: u32) -> bool {
        let op = op as usize;
        let (set, bit) = if op < plan.finite_count {
            (&self.done_finite, op)
        } else {
            (&self.done_info, op - plan.finite_count)
        };
        set[bit / 64] & (1 << (bit % 64)) != 0
    }

    /// Marks `op` done or not done, and counts the targets it can still see.
    fn toggle_done(&mut self, plan: &Plan<'_>, op: u32) {
        let index = op as usize;
        let (set, bit) = if index < plan.finite_count {
            (&mut self.done_finite, index)
        } else {
            (&mut self.done_info, index - plan.finite_count)
        };
        set[bit / 64] ^= 1 << (bit % 64);
        let now_done = set[bit / 64] & (1 << (bit % 64)) != 0;
        for target in plan.ops[index].observes {
            if target != NIL {
                let live = &mut self.live[target as usize];
                *live = if now_done { *live - 1 } else { *live + 1 };
            }
        }
    }

    /// True if some pending operation could still see `state`'s value: it is a prefix of
    /// (appends may extend it into) a value a pending operation compares with. An optional
    /// operation that produces an unseeable value without changing whether the key is present
    /// can only matter through appends, presence checks and overwrites, all of which would
    /// behave the same without it; so the search leaves it out.
    fn is_observable(&self, plan: &mut Plan<'_>, state: StateId) -> bool {
        state != ABSENT
            && plan
                .targets_extending(state)
                .iter()
                .any(|&target| self.live[target as usize] > 0)
    }
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
            op,
            invoke_tick: invoke,
            complete_tick: Some(complete),
            outcome: Outcome::Ok(result),
        }
    }

    fn info(op: Op, invoke: Tick, complete: Option<Tick>) -> HistoryOp {
        HistoryOp {
            client: 1,
            op,
            invoke_tick: invoke,
            complete_tick: complete,
            outcome: Outcome::Info,
        }
    }

    fn fail(op: Op, invoke: Tick, complete: Tick) -> HistoryOp {
        HistoryOp {
            client: 1,
            op,
            invoke_tick: invoke,
            complete_tick: Some(complete),
            outcome: Outcome::Fail,
        }
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
                op,
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
            .position(|op| matches!(op.op, Op::Put { .. }) && op.op.key() == "a" && is_definite(op))
            .expect("some definite put of a");
        let Op::Put { value: old, .. } = &history[write].op else {
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
                        op: step.op.clone(),
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
                    op: op.op.clone(),
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
                            op: op.clone(),
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
