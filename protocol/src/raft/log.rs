//! The in-memory Raft log: entries at indices `1..=last_index`.
//!
//! The log is a `Vec` with its first index stored beside it, so that log compaction (which
//! discards a prefix) only has to move `first_index` forward and keep the term of the entry just
//! before it.

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
            log.push(Entry {
                term: t,
                command: Command::Noop,
            });
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
    fn term_runs_for_fast_backup() {
        let log = log_of(&[1, 1, 2, 2, 2, 4]);
        assert_eq!(log.first_index_of_term_run(5), 3);
        assert_eq!(log.first_index_of_term_run(2), 1);
        assert_eq!(log.last_index_of_term(2), Some(5));
        assert_eq!(log.last_index_of_term(3), None);
        assert_eq!(log.last_index_of_term(4), Some(6));
    }

    #[test]
    fn truncation() {
        let mut log = log_of(&[1, 1, 2]);
        log.truncate_from(2);
        assert_eq!(log.last_index(), 1);
        assert_eq!(log.last_term(), 1);
    }
}
