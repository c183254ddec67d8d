//! [`DenseMap`]: records keyed by a number that is dense from 1 (log indexes, client session
//! ids), for the checkers' per-event lookups.

use std::collections::BTreeMap;

/// How far past the dense part of a [`DenseMap`] a key may land and still extend it. Logs grow
/// and sessions open by steps far smaller than this; only a corrupted record lands further.
pub const DENSE_GAP_MAX: u64 = 1 << 16;

/// Records keyed by a number dense from 1. Every key a correct run reaches lies just past the
/// last one (a leader's log grows a batch at a time; sessions are numbered in order), so a
/// vector indexed by the key replaces a map's search (its depth grows with the run) by one
/// bounds check. A key far beyond the vector (only a corrupted record — planted `SkipCrc` —
/// can carry one) goes to a map instead, so a wild key never allocates without bound; when
/// the vector grows over such a key, its record moves into the vector. Every key below
/// `dense.len()` is in `dense`, every other one in `far`, so a lookup knows where to look.
#[derive(Debug, Clone)]
pub struct DenseMap<T> {
    dense: Vec<Option<T>>,
    far: BTreeMap<u64, T>,
}

impl<T> Default for DenseMap<T> {
    fn default() -> Self {
        DenseMap {
            dense: Vec::new(),
            far: BTreeMap::new(),
        }
    }
}

impl<T> DenseMap<T> {
    /// The record at `key`, if any.
    pub fn get(&self, key: u64) -> Option<&T> {
        match usize::try_from(key).ok().filter(|&k| k < self.dense.len()) {
            Some(k) => self.dense[k].as_ref(),
            None => self.far.get(&key),
        }
    }

    /// The record at `key`, or `make`'s, inserted there first if there was none.
    ///
    /// Inlined: the checkers call it per application, and nearly every key is already inside
    /// the vector; growing it is out of line ([`DenseMap::get_or_insert_past`]).
    #[inline]
    pub fn get_or_insert_with(&mut self, key: u64, make: impl FnOnce() -> T) -> &mut T {
        // Compared here, where the index follows, so the vector's own bounds check folds in.
        if key < self.dense.len() as u64 {
            return self.dense[key as usize].get_or_insert_with(make);
        }
        self.get_or_insert_past(key, make)
    }

    /// [`DenseMap::get_or_insert_with`] of a key at or past the vector's end.
    #[cold]
    #[inline(never)]
    fn get_or_insert_past(&mut self, key: u64, make: impl FnOnce() -> T) -> &mut T {
        if !self.extend_over(key) {
            return self.far.entry(key).or_insert_with(make);
        }
        self.dense[key as usize].get_or_insert_with(make)
    }

    /// Grows the vector to cover `key`, which lies at or past its end, unless `key` is too far
    /// past it (then `false`: its record belongs in the map). Slots past `key` stay empty.
    #[inline(never)]
    fn extend_over(&mut self, key: u64) -> bool {
        let len = self.dense.len() as u64;
        if key - len > DENSE_GAP_MAX {
            return false;
        }
        // At least twofold, so a map whose keys come one past the last (a log growing entry by
        // entry) grows a logarithmic number of times, not once per key.
        let new_len = (key + 1).max(2 * len);
        self.dense.resize_with(new_len as usize, || None);
        // Records the vector now covers move into it, keeping the split by `dense.len()`.
        if self
            .far
            .first_key_value()
            .is_some_and(|(&k, _)| k < new_len)
        {
            let above = self.far.split_off(&new_len);
            for (k, record) in std::mem::replace(&mut self.far, above) {
                self.dense[k as usize] = Some(record);
            }
        }
        true
    }

    /// Sets the record at `key`, and hands back the one it replaces, if any: what a checker
    /// that compares each record with the one before wants, in one lookup and without a
    /// closure to build.
    #[inline]
    pub fn replace(&mut self, key: u64, value: T) -> Option<T> {
        if key < self.dense.len() as u64 {
            return self.dense[key as usize].replace(value);
        }
        self.replace_past(key, value)
    }

    /// [`DenseMap::replace`] of a key at or past the vector's end.
    #[cold]
    #[inline(never)]
    fn replace_past(&mut self, key: u64, value: T) -> Option<T> {
        if !self.extend_over(key) {
            return self.far.insert(key, value);
        }
        self.dense[key as usize].replace(value)
    }

    /// Forget every record (the vector keeps its capacity).
    pub fn clear(&mut self) {
        self.dense.clear();
        self.far.clear();
    }

    /// Every record at `from` or above, by ascending key.
    pub fn iter_from(&self, from: u64) -> impl Iterator<Item = (u64, &T)> {
        let start = usize::try_from(from).map_or(self.dense.len(), |f| f.min(self.dense.len()));
        let dense = self.dense[start..]
            .iter()
            .enumerate()
            .filter_map(move |(k, r)| r.as_ref().map(|r| ((start + k) as u64, r)));
        let far = self
            .far
            .range(from.max(self.dense.len() as u64)..)
            .map(|(&k, r)| (k, r));
        dense.chain(far)
    }
}

/// Records of client writes, keyed by `(client, seq)`: a [`DenseMap`] by session id of
/// [`DenseMap`]s by sequence number. Session ids are issued densely from 1 and a session numbers
/// its writes densely from 1, so the checkers' per-application lookup is two bounds checks
/// rather than a hash and a probe. (Gap-skipping writes, numbered far above the rest, land in
/// the inner map's ordered part.) Lookup only: never iterated, so no order reaches an output.
#[derive(Debug, Clone)]
pub struct WriteTable<T> {
    by_client: DenseMap<DenseMap<T>>,
}

impl<T> Default for WriteTable<T> {
    fn default() -> Self {
        WriteTable {
            by_client: DenseMap::default(),
        }
    }
}

impl<T> WriteTable<T> {
    /// The record of write `seq` of session `client`, if any.
    pub fn get(&self, client: u64, seq: u64) -> Option<&T> {
        self.by_client.get(client)?.get(seq)
    }

    /// The record of write `seq` of session `client`, or `make`'s, inserted there first if
    /// there was none.
    pub fn get_or_insert_with(
        &mut self,
        client: u64,
        seq: u64,
        make: impl FnOnce() -> T,
    ) -> &mut T {
        self.by_client
            .get_or_insert_with(client, DenseMap::default)
            .get_or_insert_with(seq, make)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `DenseMap` keeps an index far past its vector in its map, moves it into the vector once
    /// the vector grows over it, and iterates by ascending index throughout.
    #[test]
    fn keeps_far_indexes_aside_and_moves_them_in() {
        let mut m = DenseMap::<u64>::default();
        let far = 2 + DENSE_GAP_MAX + 10;
        let farther = 5 * DENSE_GAP_MAX;
        for index in [1, far, far + 5, far - 1, farther] {
            assert_eq!(*m.get_or_insert_with(index, || index * 10), index * 10);
        }
        assert_eq!(m.dense.len(), 2);
        assert_eq!(m.far.len(), 4);
        *m.get_or_insert_with(DENSE_GAP_MAX, || 7) += 1;
        assert_eq!(m.dense.len() as u64, DENSE_GAP_MAX + 1);
        assert_eq!(
            *m.get_or_insert_with(far, || 0),
            far * 10,
            "found in the map"
        );
        m.get_or_insert_with(far + 1, || 1);
        assert_eq!(
            m.dense.len() as u64,
            2 * (DENSE_GAP_MAX + 1),
            "grown twofold"
        );
        assert_eq!(m.far.keys().copied().collect::<Vec<_>>(), vec![farther]);
        assert_eq!(
            *m.get_or_insert_with(far - 1, || 0),
            (far - 1) * 10,
            "moved"
        );
        let all: Vec<(u64, u64)> = m.iter_from(0).map(|(i, &r)| (i, r)).collect();
        assert_eq!(
            all,
            vec![
                (1, 10),
                (DENSE_GAP_MAX, 8),
                (far - 1, (far - 1) * 10),
                (far, far * 10),
                (far + 1, 1),
                (far + 5, (far + 5) * 10),
                (farther, farther * 10),
            ]
        );
        let tail: Vec<u64> = m.iter_from(far).map(|(i, _)| i).collect();
        assert_eq!(tail, vec![far, far + 1, far + 5, farther]);
        let beyond: Vec<u64> = m.iter_from(far + 3).map(|(i, _)| i).collect();
        assert_eq!(beyond, vec![far + 5, farther]);
    }

    #[test]
    fn write_table_keeps_each_write_apart() {
        let mut t = WriteTable::<u64>::default();
        let gap_seq = 1 << 40;
        assert_eq!(t.get(1, 1), None);
        *t.get_or_insert_with(1, 1, || 10) += 1;
        t.get_or_insert_with(2, 1, || 20);
        t.get_or_insert_with(2, gap_seq, || 30);
        assert_eq!(
            *t.get_or_insert_with(1, 1, || 0),
            11,
            "found, not made again"
        );
        assert_eq!(
            (
                t.get(1, 1),
                t.get(2, 1),
                t.get(2, gap_seq),
                t.get(1, 2),
                t.get(3, 1)
            ),
            (Some(&11), Some(&20), Some(&30), None, None)
        );
    }

    #[test]
    fn get_and_insert_find_what_was_stored_on_either_side() {
        let mut m = DenseMap::<&str>::default();
        let far = DENSE_GAP_MAX * 3;
        assert_eq!(m.get(1), None);
        assert_eq!(m.replace(1, "one"), None);
        assert_eq!(m.replace(far, "far"), None);
        assert_eq!(m.replace(1, "uno"), Some("one"));
        assert_eq!(
            (m.get(1), m.get(far), m.get(2)),
            (Some(&"uno"), Some(&"far"), None)
        );
        assert_eq!(m.replace(far, "lejos"), Some("far"));
        assert_eq!(m.get(far), Some(&"lejos"));
        m.clear();
        assert_eq!((m.get(1), m.get(far)), (None, None));
    }
}
