//! The in-memory Raft log: entries at indices `1..=last_index`.
//!
//! The log is a `Vec` with its first index stored beside it, so that log compaction (which
//! discards a prefix, Raft §7) only has to move `first_index` forward and keep the term of the
//! entry just before it. The discarded prefix `1..=prefix_index` is covered by the node's
//! snapshot; `prefix_index`/`prefix_term` are the snapshot's last included index and term.

use super::message::Entry;
use crate::types::{LogIndex, Term};

/// An ordered run of entries starting at `first_index`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Log {
    entries: Vec<Entry>,
    /// Index of the entry just before `entries[0]` (0 for an uncompacted log).
    prefix_index: LogIndex,
    /// Term of the entry at `prefix_index` (0 for an uncompacted log).
    prefix_term: Term,
}

impl Log {
    /// An empty log.
    pub fn new() -> Self {
        Log::default()
    }

    /// Index of the last entry (0 if empty).
    pub fn last_index(&self) -> LogIndex {
        self.prefix_index + self.entries.len() as LogIndex
    }

    /// Term of the last entry (0 if empty).
    pub fn last_term(&self) -> Term {
        self.entries.last().map_or(self.prefix_term, |e| e.term)
    }

    /// Index of the first entry held in memory.
    pub fn first_index(&self) -> LogIndex {
        self.prefix_index + 1
    }

    /// Index of the last entry discarded by compaction: the snapshot's last included index (0
    /// for an uncompacted log).
    pub fn prefix_index(&self) -> LogIndex {
        self.prefix_index
    }

    /// Term of the entry at [`Log::prefix_index`] (0 for an uncompacted log).
    pub fn prefix_term(&self) -> Term {
        self.prefix_term
    }

    /// Term of the entry at `index`; `Some(0)` for index 0, `None` beyond the end or before the
    /// compacted prefix.
    pub fn term(&self, index: LogIndex) -> Option<Term> {
        if index == self.prefix_index {
            return Some(self.prefix_term);
        }
        self.entry(index).map(|e| e.term)
    }

    /// The entry at `index`, if held.
    pub fn entry(&self, index: LogIndex) -> Option<&Entry> {
        if index <= self.prefix_index {
            return None;
        }
        self.entries.get((index - self.prefix_index - 1) as usize)
    }

    /// Entries from `from` through `to` inclusive (clamped to what is held).
    pub fn slice(&self, from: LogIndex, to: LogIndex) -> &[Entry] {
        let from = from.max(self.first_index());
        let to = to.min(self.last_index());
        if from > to {
            return &[];
        }
        let start = (from - self.prefix_index - 1) as usize;
        let end = (to - self.prefix_index) as usize;
        &self.entries[start..end]
    }

    /// The term of the entry at `prev_index` and the entries after it through `last`, for an
    /// AppendEntries: [`Log::term`] and [`Log::slice`] in one, for a range a leader knows it
    /// holds, so with none of their checks for indexes outside the log.
    ///
    /// # Panics
    /// Unless `prefix_index ≤ prev_index ≤ last ≤ last_index`.
    pub fn run_after(&self, prev_index: LogIndex, last: LogIndex) -> (Term, &[Entry]) {
        let start = (prev_index - self.prefix_index) as usize;
        let run = &self.entries[start..(last - self.prefix_index) as usize];
        let prev_term = match start.checked_sub(1) {
            Some(at) => self.entries[at].term,
            None => self.prefix_term,
        };
        (prev_term, run)
    }

    /// Append one entry at `last_index() + 1`.
    pub fn push(&mut self, entry: Entry) {
        debug_assert!(
            entry.term >= self.last_term(),
            "log terms must not decrease: {} after {}",
            entry.term,
            self.last_term()
        );
        self.entries.push(entry);
    }

    /// Remove every entry at `index` and after.
    pub fn truncate_from(&mut self, index: LogIndex) {
        assert!(
            index > self.prefix_index,
            "cannot truncate into the compacted prefix (index {index}, prefix {})",
            self.prefix_index
        );
        self.entries
            .truncate((index - self.prefix_index - 1) as usize);
    }

    /// Log compaction (§7): discard every entry up to and including `index`, which a snapshot
    /// now covers; `index` becomes the prefix, with `term`.
    ///
    /// # Panics
    /// If `index` is below the current prefix (compaction never moves back) or the log does not
    /// hold `index` with `term` (a snapshot only covers entries the node has applied).
    pub fn compact(&mut self, index: LogIndex, term: Term) {
        assert!(
            index >= self.prefix_index,
            "compaction moves forward: index {index} is below the prefix {}",
            self.prefix_index
        );
        assert_eq!(
            self.term(index),
            Some(term),
            "compacting through index {index}: the log must hold it with term {term}"
        );
        self.entries.drain(..(index - self.prefix_index) as usize);
        self.prefix_index = index;
        self.prefix_term = term;
        debug_assert_eq!(self.term(index), Some(term));
    }

    /// Discard every entry and start the log over after a snapshot ending at `index`/`term`
    /// (§7: the node's log does not hold the snapshot's last entry, so none of it can be kept).
    /// Returns how many entries were discarded.
    pub fn reset_to(&mut self, index: LogIndex, term: Term) -> usize {
        let discarded = self.entries.len();
        self.entries.clear();
        self.prefix_index = index;
        self.prefix_term = term;
        discarded
    }

    /// The first index at or before `index` whose entry has the same term as `index`'s, never
    /// going below the first held entry: the start of that term's run, used for the conflict
    /// hint.
    pub fn first_index_of_term_run(&self, index: LogIndex) -> LogIndex {
        let Some(term) = self.term(index) else {
            return index;
        };
        let mut i = index;
        while i > self.first_index() && self.term(i - 1) == Some(term) {
            i -= 1;
        }
        i
    }

    /// The last index holding an entry of `term`, if any (searching back from the end; terms
    /// only grow along the log, so the search stops once it passes below `term`).
    pub fn last_index_of_term(&self, term: Term) -> Option<LogIndex> {
        let mut i = self.last_index();
        while i >= self.first_index() {
            let t = self.term(i)?;
            if t == term {
                return Some(i);
            }
            if t < term {
                return None;
            }
            i -= 1;
        }
        None
    }

    /// Number of entries held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when no entries are held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::message::Command;

    fn log_of(terms: &[Term]) -> Log {
        let mut log = Log::new();
        for &t in terms {
            log.push(Entry::new(t, Command::Noop));
        }
        log
    }

    #[test]
    fn indexing_and_terms() {
        let log = log_of(&[1, 1, 2, 3, 3]);
        assert_eq!(log.last_index(), 5);
        assert_eq!(log.last_term(), 3);
        assert_eq!(log.term(0), Some(0));
        assert_eq!(log.term(3), Some(2));
        assert_eq!(log.term(6), None);
        assert_eq!(log.slice(2, 4).len(), 3);
        assert_eq!(log.slice(5, 100).len(), 1);
        assert!(log.slice(6, 9).is_empty());
    }

    #[test]
    fn run_after_is_term_and_slice() {
        let mut log = log_of(&[1, 1, 2, 2, 3, 3]);
        log.compact(2, 1);
        for prev in 2..=6 {
            for last in prev..=6 {
                let (term, run) = log.run_after(prev, last);
                assert_eq!(Some(term), log.term(prev), "prev {prev}");
                assert_eq!(run, log.slice(prev + 1, last), "prev {prev}, last {last}");
            }
        }
    }

    #[test]
    #[should_panic]
    fn run_after_refuses_the_compacted_prefix() {
        let mut log = log_of(&[1, 1, 2]);
        log.compact(2, 1);
        let _ = log.run_after(1, 3);
    }

    #[test]
    fn term_runs_for_fast_backup() {
        let log = log_of(&[1, 1, 2, 2, 2, 4]);
        assert_eq!(log.first_index_of_term_run(5), 3);
        assert_eq!(log.first_index_of_term_run(2), 1);
        assert_eq!(log.last_index_of_term(2), Some(5));
        assert_eq!(log.last_index_of_term(3), None);
        assert_eq!(log.last_index_of_term(4), Some(6));
    }

    #[test]
    fn compaction_keeps_indexes_and_the_prefix_term() {
        let mut log = log_of(&[1, 1, 2, 2, 3]);
        log.compact(3, 2);
        assert_eq!((log.prefix_index(), log.prefix_term()), (3, 2));
        assert_eq!(log.first_index(), 4);
        assert_eq!(log.len(), 2);
        assert_eq!(log.last_index(), 5);
        assert_eq!(log.last_term(), 3);
        assert_eq!(log.term(3), Some(2), "the prefix keeps its term");
        assert_eq!(log.term(2), None, "compacted");
        assert_eq!(log.entry(3), None);
        assert_eq!(log.entry(4).map(|e| e.term), Some(2));
        assert_eq!(log.slice(1, 5).len(), 2, "slices clamp to what is held");
        assert_eq!(
            log.first_index_of_term_run(4),
            4,
            "never below the first held entry"
        );
        assert_eq!(log.last_index_of_term(1), None);
        // Compacting again at the same index is a no-op; through the end empties the log.
        log.compact(3, 2);
        assert_eq!(log.len(), 2);
        log.compact(5, 3);
        assert!(log.is_empty());
        assert_eq!((log.last_index(), log.last_term()), (5, 3));
        log.push(Entry::new(4, Command::Noop));
        assert_eq!(log.last_index(), 6);
        log.truncate_from(6);
        assert_eq!((log.last_index(), log.last_term()), (5, 3));
    }

    #[test]
    #[should_panic(expected = "must hold it")]
    fn compaction_needs_the_entry() {
        log_of(&[1, 1]).compact(2, 7);
    }

    #[test]
    #[should_panic(expected = "moves forward")]
    fn compaction_never_moves_back() {
        let mut log = log_of(&[1, 1, 1]);
        log.compact(2, 1);
        log.compact(1, 1);
    }

    #[test]
    #[should_panic(expected = "compacted prefix")]
    fn truncation_into_the_prefix_panics() {
        let mut log = log_of(&[1, 1, 1]);
        log.compact(2, 1);
        log.truncate_from(2);
    }

    #[test]
    fn reset_discards_everything() {
        let mut log = log_of(&[1, 1, 2]);
        assert_eq!(log.reset_to(10, 4), 3);
        assert_eq!(
            (log.first_index(), log.last_index(), log.last_term()),
            (11, 10, 4)
        );
        assert_eq!(log.term(10), Some(4));
        assert_eq!(log.term(3), None);
    }

    #[test]
    fn truncation() {
        let mut log = log_of(&[1, 1, 2]);
        log.truncate_from(2);
        assert_eq!(log.last_index(), 1);
        assert_eq!(log.last_term(), 1);
    }
}
