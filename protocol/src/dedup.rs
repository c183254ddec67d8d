//! The client dedup (session) table: exactly-once application of retried client requests.
//!
//! Every client request carries `(client_id, seq)`, with `seq` starting at 1 and growing by one
//! per request. A client retries a request (same `seq`) until it gets an answer, so the same
//! request can reach the log more than once — through a retry to a new leader, say.
//!
//! Contract:
//! - The table is part of the replicated state machine. Each replica calls [`DedupTable::check`]
//!   and then (on [`DedupCheck::Apply`]) [`DedupTable::record`] while applying committed entries
//!   in log order. It therefore depends only on the log, is identical on every replica, and
//!   survives a leader change; it travels in snapshots via [`DedupTable::encode`].
//! - For a client whose last applied request is `L`, [`DedupTable::check`] answers:
//!   `seq == L + 1` → `Apply`; `seq == L` → `Duplicate` with the cached result of `L` (the
//!   reply to a retry, without applying twice); `seq < L` (including the invalid `seq == 0`) →
//!   `Stale` (the client already has that answer); `seq > L + 1` → `Gap { expected: L + 1 }`
//!   (the client skipped a request).
//! - For a client the table does not know: `seq == 1` → `Apply` (opens a session);
//!   `seq > 1` → `SessionExpired`; `seq == 0` → `Gap { expected: 1 }`. Why `SessionExpired`:
//!   with no record of the client — it was evicted, or never opened a session — the table cannot
//!   tell whether requests `1..seq` were applied, so applying `seq` could apply a retried request
//!   twice. The client must be told its session is gone rather than be given a guess.
//! - The table holds at most `clients_max` sessions. Opening a session when full evicts the
//!   session with the smallest last `applied_index`, ties broken by the smallest client id.
//!   This is deterministic on every replica because it depends only on the log, and it evicts
//!   the client that has been idle the longest (in log time). Eviction is amortized `O(1)` via
//!   a queue of `(applied_index, client)` in ascending order: entries are appended as requests
//!   are applied (log order, so already sorted) and a superseded entry is skipped when it
//!   reaches the front, rather than removed at once — recording a request, the hot path,
//!   never searches a tree. Only a full table can evict, and a table never shrinks once full
//!   (an eviction makes room for the session that replaces it), so the queue is kept only
//!   from the moment the table fills: it is then built from the sessions at once. Until
//!   then — with a `clients_max` above the number of clients, always — recording a request
//!   touches no queue at all.
//! - Only ordered maps are used, so encodings and digests are identical across replicas.

use std::collections::{BTreeMap, VecDeque};

use crate::codec::{self, CodecError, Fnv1a64, Reader};
use crate::kv::OpResult;
use crate::types::{ClientId, LogIndex, Seq};

/// Upper bound on any table's `clients_max` (1 Mi sessions); also bounds decoded snapshots.
pub const SESSIONS_MAX: usize = 1 << 20;

/// What to do with a request, decided by [`DedupTable::check`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DedupCheck {
    /// The request is the client's next one: apply it, then [`DedupTable::record`] the result.
    Apply,
    /// The request was already applied and was the client's latest: answer with `cached`.
    Duplicate {
        /// The result recorded when the request was applied.
        cached: OpResult,
    },
    /// The request is older than the client's latest applied request (or has the invalid
    /// `seq == 0`); its result is no longer cached and the client has already moved on.
    Stale {
        /// The client's last applied sequence number.
        last_seq: Seq,
    },
    /// The request skips ahead: the client must send `expected` first.
    Gap {
        /// The sequence number the table would apply next.
        expected: Seq,
    },
    /// The table has no session for this client and `seq > 1`: the session was evicted (or
    /// never opened), so whether earlier requests were applied is unknown.
    SessionExpired,
}

/// One client's session: its last applied request and that request's result.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Session {
    last_seq: Seq,
    result: OpResult,
    applied_index: LogIndex,
}

/// The replicated table of client sessions. See the module docs for the rules.
#[derive(Debug, Clone)]
pub struct DedupTable {
    clients_max: usize,
    sessions: BTreeMap<ClientId, Session>,
    /// Eviction order: `(applied_index, client)` ascending, holding every session's current
    /// pair plus superseded ones (a pair is live when the client's session still has that
    /// applied index). Kept within `2 × sessions + EVICTION_SLACK` entries by
    /// [`DedupTable::compact_eviction_order`]. Empty while the table is not full (see
    /// [`DedupTable::is_full`]): only a full table evicts.
    eviction_order: VecDeque<(LogIndex, ClientId)>,
    evictions_total: u64,
}

/// Superseded eviction entries tolerated beyond one per session before they are swept.
const EVICTION_SLACK: usize = 64;

/// Two tables are equal when their sessions, bounds and eviction counts are: the eviction
/// queue is derived from the sessions (its superseded entries are bookkeeping).
impl PartialEq for DedupTable {
    fn eq(&self, other: &Self) -> bool {
        self.clients_max == other.clients_max
            && self.evictions_total == other.evictions_total
            && self.sessions == other.sessions
    }
}

impl Eq for DedupTable {}

impl DedupTable {
    /// An empty table holding at most `clients_max` sessions.
    ///
    /// # Panics
    /// If `clients_max` is 0 or exceeds [`SESSIONS_MAX`].
    pub fn new(clients_max: usize) -> Self {
        assert!(
            (1..=SESSIONS_MAX).contains(&clients_max),
            "dedup: clients_max {clients_max} must be in 1..={SESSIONS_MAX}"
        );
        DedupTable {
            clients_max,
            sessions: BTreeMap::new(),
            eviction_order: VecDeque::new(),
            evictions_total: 0,
        }
    }

    /// Decides what to do with request `seq` of `client` (see the module docs for the rules).
    /// Does not change the table.
    pub fn check(&self, client: ClientId, seq: Seq) -> DedupCheck {
        match self.sessions.get(&client) {
            None => Self::check_unknown(seq),
            Some(session) => Self::check_session(session, seq),
        }
    }

    /// [`DedupTable::check`] for a client without a session.
    fn check_unknown(seq: Seq) -> DedupCheck {
        match seq {
            0 => DedupCheck::Gap { expected: 1 },
            1 => DedupCheck::Apply,
            _ => DedupCheck::SessionExpired,
        }
    }

    /// [`DedupTable::check`] for a client with `session`.
    fn check_session(session: &Session, seq: Seq) -> DedupCheck {
        let last_seq = session.last_seq;
        if seq < last_seq {
            DedupCheck::Stale { last_seq }
        } else if seq == last_seq {
            DedupCheck::Duplicate {
                cached: session.result.clone(),
            }
        } else if seq - last_seq == 1 {
            DedupCheck::Apply
        } else {
            DedupCheck::Gap {
                expected: last_seq + 1,
            }
        }
    }

    /// [`DedupTable::check`] and, on [`DedupCheck::Apply`], `apply` followed by
    /// [`DedupTable::record`] of its result, with one search of the table instead of two:
    /// every replica runs this for every committed write. Returns the result applied, or the
    /// check's verdict when the request is not the client's next one (then `apply` is not
    /// called and the table is unchanged).
    ///
    /// # Panics
    /// As [`DedupTable::record`]: if `applied_index` goes backwards for the client.
    pub fn apply_next(
        &mut self,
        client: ClientId,
        seq: Seq,
        applied_index: LogIndex,
        apply: impl FnOnce() -> OpResult,
    ) -> Result<OpResult, DedupCheck> {
        let Some(session) = self.sessions.get_mut(&client) else {
            return match Self::check_unknown(seq) {
                DedupCheck::Apply => {
                    let result = apply();
                    self.open_session(client, seq, result.clone(), applied_index);
                    Ok(result)
                }
                verdict => Err(verdict),
            };
        };
        match Self::check_session(session, seq) {
            DedupCheck::Apply => {
                let result = apply();
                let moved =
                    Self::advance_session(session, client, seq, result.clone(), applied_index);
                self.requeue_session(applied_index, client, moved);
                Ok(result)
            }
            verdict => Err(verdict),
        }
    }

    /// Records that request `seq` of `client` was applied at log index `applied_index` with
    /// `result`. Opening a session when the table is full first evicts the session with the
    /// smallest last `applied_index` (ties: smallest client id).
    ///
    /// # Panics
    /// If the request is not the client's next one (`seq != L + 1` for a known client,
    /// `seq != 1` for an unknown one), or if `applied_index` goes backwards for the client:
    /// both mean the caller skipped [`DedupTable::check`] or applied out of log order.
    pub fn record(
        &mut self,
        client: ClientId,
        seq: Seq,
        result: OpResult,
        applied_index: LogIndex,
    ) {
        if let Some(session) = self.sessions.get_mut(&client) {
            let moved = Self::advance_session(session, client, seq, result, applied_index);
            self.requeue_session(applied_index, client, moved);
            return;
        }
        self.open_session(client, seq, result, applied_index);
    }
    /// Move `client`'s `session` on to request `seq`, applied at `applied_index` with
    /// `result`. Returns the session's previous applied index when it moved (its eviction
    /// entry is superseded), `None` when it stayed.
    ///
    /// # Panics
    /// See [`DedupTable::record`].
    // Inlined: every replica runs it for every committed write, and its result (an `OpResult`
    // passed by value) is cheaper written in place than moved through a call.
    #[inline]
    fn advance_session(
        session: &mut Session,
        client: ClientId,
        seq: Seq,
        result: OpResult,
        applied_index: LogIndex,
    ) -> Option<LogIndex> {
        assert!(
            session.last_seq.checked_add(1) == Some(seq),
            "dedup: client {client} recorded seq {seq} after seq {}; expected {}",
            session.last_seq,
            session.last_seq.saturating_add(1)
        );
        assert!(
            applied_index >= session.applied_index,
            "dedup: client {client} seq {seq} applied at index {applied_index}, before its previous request at index {}",
            session.applied_index
        );
        let previous = session.applied_index;
        session.last_seq = seq;
        session.result = result;
        session.applied_index = applied_index;
        (previous != applied_index).then_some(previous)
    }

    /// Open a session for `client`, whose first request `seq` was applied at `applied_index`
    /// with `result`, evicting the longest-idle session when the table is full.
    ///
    /// # Panics
    /// If `seq` is not 1 (see [`DedupTable::record`]).
    fn open_session(
        &mut self,
        client: ClientId,
        seq: Seq,
        result: OpResult,
        applied_index: LogIndex,
    ) {
        assert!(
            seq == 1,
            "dedup: client {client} has no session; a new session must start at seq 1, got {seq}"
        );
        let was_full = self.is_full();
        if was_full {
            let evicted = loop {
                let (index, client) = self
                    .eviction_order
                    .pop_front()
                    .expect("dedup: a full table has a session to evict");
                if self.is_live(index, client) {
                    break client;
                }
            };
            self.sessions.remove(&evicted);
            self.evictions_total += 1;
        }
        self.sessions.insert(
            client,
            Session {
                last_seq: seq,
                result,
                applied_index,
            },
        );
        if was_full {
            self.push_eviction_order(applied_index, client, None);
        } else if self.is_full() {
            // The table just filled: from now on it can evict, and the queue is kept.
            self.rebuild_eviction_order();
        }
    }

    /// Whether the table holds `clients_max` sessions: the next new client evicts one. A full
    /// table stays full (see the module docs), and only a full one keeps its eviction queue.
    fn is_full(&self) -> bool {
        self.sessions.len() >= self.clients_max
    }

    /// A session moved on to `applied_index` (`moved` is its previous applied index, `None`
    /// when it stayed there): queue its new eviction entry, if the table keeps a queue.
    // Inlined: every replica runs it for every committed write, and while the table is not
    // full it is one comparison.
    #[inline]
    fn requeue_session(
        &mut self,
        applied_index: LogIndex,
        client: ClientId,
        moved: Option<LogIndex>,
    ) {
        if let Some(previous) = moved {
            if self.is_full() {
                self.push_eviction_order(applied_index, client, Some(previous));
            }
        }
    }

    /// Whether an eviction entry is a session's current one (not superseded or evicted).
    fn is_live(&self, applied_index: LogIndex, client: ClientId) -> bool {
        self.sessions
            .get(&client)
            .is_some_and(|s| s.applied_index == applied_index)
    }

    /// Add a session's new eviction entry, keeping the queue ascending: requests are applied
    /// in log order, so it nearly always goes at the back. `superseded` is the client's previous
    /// applied index, when it had one: if that entry is the one at the back (the client applied
    /// the request before this one too, as a lone or busy client does), the new entry takes its
    /// place instead of queueing behind it. That entry can never be evicted any more, so which
    /// session an eviction picks is the same, and the queue needs sweeping far less often.
    // Inlined for that common case (every replica records every committed write); queueing a
    // new entry is out of line.
    #[inline]
    fn push_eviction_order(
        &mut self,
        applied_index: LogIndex,
        client: ClientId,
        superseded: Option<LogIndex>,
    ) {
        let entry = (applied_index, client);
        if let Some(back) = self.eviction_order.back_mut() {
            if superseded.is_some_and(|previous| *back == (previous, client)) {
                // Ascending still: the new index is at least the previous one (asserted by the
                // caller), which was at least every entry before it.
                debug_assert!(*back <= entry);
                *back = entry;
                return;
            }
        }
        self.queue_eviction_entry(entry);
    }

    /// Add `entry` to the eviction queue in its ascending place (nearly always the back), and
    /// sweep superseded entries when there are too many.
    #[inline(never)]
    fn queue_eviction_entry(&mut self, entry: (LogIndex, ClientId)) {
        if self.eviction_order.back().is_none_or(|&last| last <= entry) {
            self.eviction_order.push_back(entry);
        } else {
            let at = self.eviction_order.partition_point(|&e| e < entry);
            self.eviction_order.insert(at, entry);
        }
        if self.eviction_order.len() > 2 * self.sessions.len() + EVICTION_SLACK {
            self.compact_eviction_order();
        }
    }

    /// Drop superseded eviction entries (amortized: runs after `sessions + EVICTION_SLACK`
    /// records at the least).
    ///
    /// The queue's live entries are exactly the sessions' current pairs, once each, and it is
    /// ascending: so what is left after dropping the others is those pairs in ascending order,
    /// which is built from the sessions directly instead of testing each queued entry against
    /// the table (a search per entry).
    fn compact_eviction_order(&mut self) {
        #[cfg(debug_assertions)]
        let live: Vec<(LogIndex, ClientId)> = self.live_eviction_entries().collect();
        self.rebuild_eviction_order();
        #[cfg(debug_assertions)]
        debug_assert!(
            self.eviction_order.iter().eq(live.iter()),
            "dedup: the swept eviction queue must hold the live entries, in order"
        );
    }

    /// The eviction queue's live entries, in queue order.
    #[cfg(any(test, debug_assertions))]
    fn live_eviction_entries(&self) -> impl Iterator<Item = (LogIndex, ClientId)> + '_ {
        self.eviction_order
            .iter()
            .copied()
            .filter(|&(index, client)| self.is_live(index, client))
    }

    /// Set the eviction queue to every session's `(applied_index, client)`, ascending.
    fn rebuild_eviction_order(&mut self) {
        let mut order = std::mem::take(&mut self.eviction_order);
        order.clear();
        order.extend(
            self.sessions
                .iter()
                .map(|(&client, s)| (s.applied_index, client)),
        );
        order.make_contiguous().sort_unstable();
        self.eviction_order = order;
    }

    /// The last applied sequence number of `client`, or `None` if it has no session.
    pub fn last_seq(&self, client: ClientId) -> Option<Seq> {
        self.sessions.get(&client).map(|s| s.last_seq)
    }

    /// The log index at which `client`'s last request was applied, if it has a session.
    pub fn applied_index(&self, client: ClientId) -> Option<LogIndex> {
        self.sessions.get(&client).map(|s| s.applied_index)
    }

    /// Number of open sessions.
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    /// True if no session is open.
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// Most sessions the table holds before evicting.
    pub fn clients_max(&self) -> usize {
        self.clients_max
    }

    /// Sessions evicted since the table was created (carried through snapshots).
    pub fn evictions_total(&self) -> u64 {
        self.evictions_total
    }

    /// Appends a snapshot encoding: `clients_max: u64`, `evictions_total: u64`,
    /// `count: u32`, then per session in client order `client: u64`, `last_seq: u64`,
    /// `applied_index: u64` and the encoded result.
    pub fn encode(&self, out: &mut Vec<u8>) {
        codec::put_u64(out, self.clients_max as u64);
        codec::put_u64(out, self.evictions_total);
        let count = u32::try_from(self.sessions.len()).expect("SESSIONS_MAX fits in u32");
        codec::put_u32(out, count);
        for (&client, session) in &self.sessions {
            codec::put_u64(out, client);
            codec::put_u64(out, session.last_seq);
            codec::put_u64(out, session.applied_index);
            session.result.encode(out);
        }
    }

    /// Decodes a snapshot written by [`DedupTable::encode`]. Out-of-range `clients_max` or
    /// session counts are [`CodecError::TooLong`] or [`CodecError::Invalid`]; client ids that
    /// are not strictly ascending and `last_seq == 0` are [`CodecError::Invalid`].
    pub fn decode(r: &mut Reader<'_>) -> Result<DedupTable, CodecError> {
        let clients_max = r.u64()?;
        if clients_max == 0 {
            return Err(CodecError::Invalid {
                what: "dedup snapshot clients_max is 0",
            });
        }
        let clients_max = usize::try_from(clients_max)
            .ok()
            .filter(|&n| n <= SESSIONS_MAX)
            .ok_or(CodecError::TooLong {
                len: usize::try_from(clients_max).unwrap_or(usize::MAX),
                max: SESSIONS_MAX,
            })?;
        let evictions_total = r.u64()?;
        let count = r.u32()? as usize;
        if count > clients_max {
            return Err(CodecError::TooLong {
                len: count,
                max: clients_max,
            });
        }
        let mut table = DedupTable::new(clients_max);
        table.evictions_total = evictions_total;
        for _ in 0..count {
            let client = r.u64()?;
            let last_seq = r.u64()?;
            let applied_index = r.u64()?;
            let result = OpResult::decode(r)?;
            if last_seq == 0 {
                return Err(CodecError::Invalid {
                    what: "dedup snapshot session has seq 0",
                });
            }
            if let Some((&last_client, _)) = table.sessions.last_key_value() {
                if client <= last_client {
                    return Err(CodecError::Invalid {
                        what: "dedup snapshot clients are not strictly ascending",
                    });
                }
            }
            table.sessions.insert(
                client,
                Session {
                    last_seq,
                    result,
                    applied_index,
                },
            );
        }
        if table.is_full() {
            table.rebuild_eviction_order();
        }
        Ok(table)
    }

    /// A deterministic 64-bit FNV-1a hash of the whole table (bounds, eviction count and every
    /// session in client order), for cheap comparison of replicas.
    pub fn digest(&self) -> u64 {
        let mut hasher = Fnv1a64::new();
        hasher.write_u64(self.clients_max as u64);
        hasher.write_u64(self.evictions_total);
        hasher.write_u64(self.sessions.len() as u64);
        let mut result_bytes = Vec::new();
        for (&client, session) in &self.sessions {
            hasher.write_u64(client);
            hasher.write_u64(session.last_seq);
            hasher.write_u64(session.applied_index);
            result_bytes.clear();
            session.result.encode(&mut result_bytes);
            hasher.write_framed(&result_bytes);
        }
        hasher.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    fn value(v: &str) -> OpResult {
        OpResult::Value(v.to_owned())
    }

    /// The eviction queue is ascending, bounded, and its live entries are exactly the
    /// sessions' current pairs once the table is full; before, it is empty.
    fn assert_consistent(table: &DedupTable) {
        let expected: BTreeSet<(LogIndex, ClientId)> = if table.is_full() {
            table
                .sessions
                .iter()
                .map(|(&c, s)| (s.applied_index, c))
                .collect()
        } else {
            assert!(
                table.eviction_order.is_empty(),
                "a table not full keeps no queue"
            );
            BTreeSet::new()
        };
        let live: BTreeSet<(LogIndex, ClientId)> = table.live_eviction_entries().collect();
        assert_eq!(live, expected);
        assert!(table
            .eviction_order
            .iter()
            .zip(table.eviction_order.iter().skip(1))
            .all(|(a, b)| a <= b));
        assert!(table.eviction_order.len() <= 2 * table.sessions.len() + EVICTION_SLACK);
        assert!(table.sessions.len() <= table.clients_max);
    }

    fn round_trip(table: &DedupTable) -> DedupTable {
        let mut buf = Vec::new();
        table.encode(&mut buf);
        let mut r = Reader::new(&buf);
        let decoded = DedupTable::decode(&mut r).expect("valid snapshot");
        r.finish().expect("no trailing bytes");
        decoded
    }

    #[test]
    fn unknown_client_rules() {
        let table = DedupTable::new(4);
        assert_eq!(table.check(7, 1), DedupCheck::Apply);
        assert_eq!(table.check(7, 2), DedupCheck::SessionExpired);
        assert_eq!(table.check(7, u64::MAX), DedupCheck::SessionExpired);
        assert_eq!(table.check(7, 0), DedupCheck::Gap { expected: 1 });
        assert_eq!(table.last_seq(7), None);
    }

    #[test]
    fn known_client_rules() {
        let mut table = DedupTable::new(4);
        table.record(1, 1, OpResult::Ok, 10);
        table.record(1, 2, OpResult::NotFound, 11);
        table.record(1, 3, value("v3"), 12);
        assert_eq!(table.last_seq(1), Some(3));
        assert_eq!(table.applied_index(1), Some(12));
        assert_eq!(table.check(1, 4), DedupCheck::Apply);
        assert_eq!(
            table.check(1, 3),
            DedupCheck::Duplicate {
                cached: value("v3")
            }
        );
        assert_eq!(table.check(1, 2), DedupCheck::Stale { last_seq: 3 });
        assert_eq!(table.check(1, 1), DedupCheck::Stale { last_seq: 3 });
        assert_eq!(table.check(1, 0), DedupCheck::Stale { last_seq: 3 });
        assert_eq!(table.check(1, 5), DedupCheck::Gap { expected: 4 });
        assert_eq!(table.check(1, u64::MAX), DedupCheck::Gap { expected: 4 });
        assert_consistent(&table);
    }

    #[test]
    fn the_largest_seq_is_a_duplicate_not_an_overflow() {
        let mut table = DedupTable::new(1);
        table.record(1, 1, OpResult::Ok, 1);
        // Force the extreme through a snapshot, the only way to reach it.
        let mut buf = Vec::new();
        table.encode(&mut buf);
        let seq_offset = 8 + 8 + 4 + 8;
        buf[seq_offset..seq_offset + 8].copy_from_slice(&u64::MAX.to_le_bytes());
        let table = DedupTable::decode(&mut Reader::new(&buf)).unwrap();
        assert_eq!(
            table.check(1, u64::MAX),
            DedupCheck::Duplicate {
                cached: OpResult::Ok
            }
        );
        assert_eq!(
            table.check(1, u64::MAX - 1),
            DedupCheck::Stale { last_seq: u64::MAX }
        );
    }

    #[test]
    fn duplicate_returns_the_latest_cached_result() {
        let mut table = DedupTable::new(2);
        table.record(5, 1, value("a"), 1);
        assert_eq!(
            table.check(5, 1),
            DedupCheck::Duplicate { cached: value("a") }
        );
        table.record(5, 2, OpResult::CasMismatch { current: None }, 2);
        assert_eq!(
            table.check(5, 2),
            DedupCheck::Duplicate {
                cached: OpResult::CasMismatch { current: None }
            }
        );
    }

    #[test]
    fn eviction_removes_the_smallest_applied_index() {
        let mut table = DedupTable::new(3);
        table.record(1, 1, OpResult::Ok, 10);
        table.record(2, 1, OpResult::Ok, 11);
        table.record(3, 1, OpResult::Ok, 12);
        // Client 1 is active again, so client 2 is now the least recently applied.
        table.record(1, 2, OpResult::Ok, 13);
        table.record(4, 1, OpResult::Ok, 14);
        assert_eq!(table.len(), 3);
        assert_eq!(table.evictions_total(), 1);
        assert_eq!(table.last_seq(2), None, "client 2 was evicted");
        assert_eq!(table.last_seq(1), Some(2));
        table.record(5, 1, OpResult::Ok, 15);
        assert_eq!(table.last_seq(3), None, "client 3 was next");
        assert_eq!(table.evictions_total(), 2);
        assert_consistent(&table);
    }

    #[test]
    fn eviction_ties_break_on_the_smallest_client_id() {
        let mut table = DedupTable::new(2);
        table.record(9, 1, OpResult::Ok, 5);
        table.record(3, 1, OpResult::Ok, 5);
        table.record(6, 1, OpResult::Ok, 6);
        assert_eq!(
            table.last_seq(3),
            None,
            "client 3 < client 9 at the same index"
        );
        assert_eq!(table.last_seq(9), Some(1));
        assert_eq!(table.last_seq(6), Some(1));
        assert_consistent(&table);
    }

    #[test]
    fn evicted_client_sees_session_expired_and_can_reopen() {
        let mut table = DedupTable::new(1);
        table.record(1, 1, OpResult::Ok, 1);
        table.record(1, 2, OpResult::Ok, 2);
        table.record(2, 1, OpResult::Ok, 3);
        assert_eq!(table.check(1, 3), DedupCheck::SessionExpired);
        assert_eq!(
            table.check(1, 2),
            DedupCheck::SessionExpired,
            "even a retry of an applied request cannot be answered once evicted"
        );
        assert_eq!(
            table.check(1, 1),
            DedupCheck::Apply,
            "a new session may open"
        );
        table.record(1, 1, OpResult::Ok, 4);
        assert_eq!(table.last_seq(2), None);
        assert_eq!(table.evictions_total(), 2);
        assert_consistent(&table);
    }

    #[test]
    fn updating_a_known_client_never_evicts() {
        let mut table = DedupTable::new(1);
        for seq in 1..=5 {
            assert_eq!(table.check(1, seq), DedupCheck::Apply);
            table.record(1, seq, OpResult::Ok, seq * 10);
        }
        assert_eq!(table.evictions_total(), 0);
        assert_eq!(table.len(), 1);
        assert_consistent(&table);
    }

    #[test]
    #[should_panic(expected = "recorded seq 3 after seq 1")]
    fn recording_a_gap_panics() {
        let mut table = DedupTable::new(2);
        table.record(1, 1, OpResult::Ok, 1);
        table.record(1, 3, OpResult::Ok, 2);
    }

    #[test]
    #[should_panic(expected = "must start at seq 1")]
    fn opening_a_session_past_seq_1_panics() {
        DedupTable::new(2).record(1, 2, OpResult::Ok, 1);
    }

    #[test]
    #[should_panic(expected = "clients_max 0")]
    fn zero_capacity_panics() {
        DedupTable::new(0);
    }

    #[test]
    fn snapshot_round_trips() {
        let mut table = DedupTable::new(3);
        assert_eq!(round_trip(&table), table);
        table.record(4, 1, value("x"), 1);
        table.record(2, 1, OpResult::CasMismatch { current: None }, 2);
        table.record(4, 2, OpResult::NotFound, 3);
        table.record(8, 1, OpResult::Ok, 4);
        table.record(1, 1, OpResult::Ok, 5); // evicts client 2
        let decoded = round_trip(&table);
        assert_eq!(decoded, table);
        assert_eq!(decoded.digest(), table.digest());
        assert_eq!(decoded.evictions_total(), 1);
        assert_consistent(&decoded);
        // The restored table keeps deciding and evicting exactly like the original.
        let mut a = table;
        let mut b = decoded;
        a.record(3, 1, OpResult::Ok, 6);
        b.record(3, 1, OpResult::Ok, 6);
        assert_eq!(a, b);
        assert_eq!(a.last_seq(4), None);
    }

    #[test]
    fn bad_snapshots_are_errors() {
        let mut zero = Vec::new();
        codec::put_u64(&mut zero, 0);
        assert!(matches!(
            DedupTable::decode(&mut Reader::new(&zero)),
            Err(CodecError::Invalid { .. })
        ));

        let mut huge = Vec::new();
        codec::put_u64(&mut huge, SESSIONS_MAX as u64 + 1);
        assert_eq!(
            DedupTable::decode(&mut Reader::new(&huge)),
            Err(CodecError::TooLong {
                len: SESSIONS_MAX + 1,
                max: SESSIONS_MAX
            })
        );

        let mut over = Vec::new();
        codec::put_u64(&mut over, 1);
        codec::put_u64(&mut over, 0);
        codec::put_u32(&mut over, 2);
        assert_eq!(
            DedupTable::decode(&mut Reader::new(&over)),
            Err(CodecError::TooLong { len: 2, max: 1 })
        );

        let mut unsorted = DedupTable::new(2);
        unsorted.record(1, 1, OpResult::Ok, 1);
        unsorted.record(2, 1, OpResult::Ok, 2);
        let mut buf = Vec::new();
        unsorted.encode(&mut buf);
        // Rename the second client to 1: a duplicate id.
        let second_client = 8 + 8 + 4 + (8 * 3 + 1);
        buf[second_client..second_client + 8].copy_from_slice(&1u64.to_le_bytes());
        assert_eq!(
            DedupTable::decode(&mut Reader::new(&buf)),
            Err(CodecError::Invalid {
                what: "dedup snapshot clients are not strictly ascending"
            })
        );

        let mut buf = Vec::new();
        unsorted.encode(&mut buf);
        for cut in 0..buf.len() {
            assert!(
                DedupTable::decode(&mut Reader::new(&buf[..cut])).is_err(),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn digest_differs_when_state_differs() {
        let mut a = DedupTable::new(2);
        let mut b = DedupTable::new(2);
        assert_eq!(a.digest(), b.digest());
        a.record(1, 1, OpResult::Ok, 1);
        b.record(1, 1, OpResult::NotFound, 1);
        assert_ne!(a.digest(), b.digest(), "cached results differ");
        let mut c = DedupTable::new(2);
        c.record(1, 1, OpResult::Ok, 2);
        assert_ne!(a.digest(), c.digest(), "applied indices differ");
        assert_ne!(DedupTable::new(1).digest(), DedupTable::new(2).digest());
    }

    proptest! {
        /// Drive a table with a random request stream the way a replica would (check, then
        /// record on Apply): invariants hold and snapshots round-trip at every step.
        #[test]
        fn random_streams_keep_invariants(
            clients_max in 1usize..4,
            requests in proptest::collection::vec((1u64..6, 0u64..5), 0..64),
        ) {
            let mut table = DedupTable::new(clients_max);
            // The same stream through `apply_next`, the one-lookup form a replica uses.
            let mut twin = DedupTable::new(clients_max);
            let mut index: LogIndex = 0;
            for (client, seq) in requests {
                index += 1;
                let before = table.last_seq(client);
                let check = table.check(client, seq);
                let mut applied = false;
                let next = twin.apply_next(client, seq, index, || {
                    applied = true;
                    OpResult::Value(format!("{client}/{seq}"))
                });
                prop_assert_eq!(applied, check == DedupCheck::Apply);
                match &next {
                    Ok(result) => prop_assert_eq!(result, &OpResult::Value(format!("{client}/{seq}"))),
                    Err(verdict) => prop_assert_eq!(verdict, &check),
                }
                match (&check, before) {
                    (DedupCheck::Apply, None) => prop_assert_eq!(seq, 1),
                    (DedupCheck::Apply, Some(last)) => prop_assert_eq!(seq, last + 1),
                    (DedupCheck::Duplicate { .. }, Some(last)) => prop_assert_eq!(seq, last),
                    (DedupCheck::Stale { last_seq }, Some(last)) => {
                        prop_assert_eq!(*last_seq, last);
                        prop_assert!(seq < last);
                    }
                    (DedupCheck::Gap { expected }, last) => {
                        prop_assert_eq!(*expected, last.unwrap_or(0) + 1);
                        prop_assert!(seq != *expected);
                    }
                    (DedupCheck::SessionExpired, None) => prop_assert!(seq > 1),
                    (other, last) => prop_assert!(false, "{other:?} with last {last:?}"),
                }
                if check == DedupCheck::Apply {
                    table.record(client, seq, OpResult::Value(format!("{client}/{seq}")), index);
                    prop_assert_eq!(table.last_seq(client), Some(seq));
                }
                assert_consistent(&table);
                assert_consistent(&twin);
                prop_assert_eq!(&twin, &table);
                prop_assert_eq!(twin.digest(), table.digest());
                let decoded = round_trip(&table);
                prop_assert_eq!(decoded.digest(), table.digest());
                prop_assert_eq!(&decoded, &table);
            }
        }

        /// Long streams (long enough for the eviction queue to be swept many times) evict
        /// exactly the session an ordered set of `(applied_index, client)` names, and a
        /// table decoded mid-stream goes on evicting the same sessions.
        #[test]
        fn evictions_match_an_ordered_set_model(
            clients_max in 1usize..5,
            clients in proptest::collection::vec(1u64..9, 0..700),
            restore_at in 0usize..700,
        ) {
            let mut table = DedupTable::new(clients_max);
            // client -> (last seq, applied index)
            let mut model: BTreeMap<ClientId, (Seq, LogIndex)> = BTreeMap::new();
            for (i, client) in clients.into_iter().enumerate() {
                if i == restore_at {
                    table = round_trip(&table);
                }
                let index = i as LogIndex + 1;
                // The client's next request (an evicted client reopens with 1).
                let seq = table.last_seq(client).map_or(1, |s| s + 1);
                prop_assert_eq!(table.check(client, seq), DedupCheck::Apply);
                if !model.contains_key(&client) && model.len() >= clients_max {
                    let (&evicted, _) = model
                        .iter()
                        .min_by_key(|(&c, &(_, at))| (at, c))
                        .expect("full");
                    model.remove(&evicted);
                }
                model.insert(client, (seq, index));
                table.record(client, seq, OpResult::Ok, index);
                assert_consistent(&table);
                let sessions: BTreeMap<ClientId, (Seq, LogIndex)> = model
                    .keys()
                    .map(|&c| (c, (table.last_seq(c).unwrap_or(0), table.applied_index(c).unwrap_or(0))))
                    .collect();
                prop_assert_eq!(&sessions, &model);
                prop_assert_eq!(table.len(), model.len());
            }
        }

        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
            if let Ok(table) = DedupTable::decode(&mut Reader::new(&bytes)) {
                assert_consistent(&table);
            }
        }
    }
}
