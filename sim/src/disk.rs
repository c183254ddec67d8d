//! A node's simulated disk: one WAL file with an explicit sync boundary, which a node may
//! replace whole (log compaction).
//!
//! ## Fault model
//! - **Writes are volatile until synced.** `write` appends to the file; only `sync_to` makes a
//!   prefix durable. The cluster syncs an input's writes before releasing anything that
//!   depends on them (persist before send), after `disk_sync_ticks`.
//! - **Crash: unsynced data is lost, and the last write may tear.** On a crash the file is cut
//!   back to its durable length, plus — with torn writes enabled — a random prefix of the
//!   unsynced bytes, as if the OS had flushed part of the page cache. That prefix can end in
//!   the middle of a record; recovery must find and drop the torn tail.
//! - **Replacement is atomic, at the sync.** `replace` models what a real WAL does after log
//!   compaction: write the new content to a temporary file, fsync it, rename it over the old
//!   file. The new content becomes *the* file only when a sync covers it (the rename after the
//!   fsync); until then the old file — with its durable bytes and any appends made before the
//!   replacement — is what a crash leaves, and appends made after the replacement belong to
//!   the new file and are lost with it. A crash never leaves a mixture of the two files, and
//!   never tears the replacement itself (the rename either happened or not). Several
//!   replacements may wait for their sync at once; a sync installs the newest one it covers.
//! - **Bit rot.** A latent fault flips one bit in the body of a random durable record (its
//!   checksum, header or payload). The 4-byte length prefix is assumed protected (a real WAL
//!   would guard it with a header checksum or sector ECC); rotting it could make a record look
//!   torn and silently shorten the log, which no checksum scheme of this shape can detect.
//!   Recovery must refuse to start from a disk with a rotten record rather than forget state.
//!
//! ## Watermarks
//! Every write — append or replacement — moves a *watermark*: the count of bytes ever written
//! to this disk in this incarnation. `write` and `replace` return the watermark a sync must
//! reach to make them durable, and [`Disk::synced_watermark`] says how far syncs have gone.
//! Watermarks only grow, even though a replacement makes the file shorter.

use std::collections::VecDeque;

use raftsim_protocol::wal;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// A replacement file waiting for the sync that renames it over the current one.
#[derive(Debug, Clone)]
struct Replacement {
    /// Watermark at which its content begins.
    start: usize,
    /// Watermark at which its content ends: a sync reaching it installs the file.
    content_end: usize,
    /// The new file: its content, then any appends made after it (before a newer replacement).
    bytes: Vec<u8>,
}

/// One node's disk.
#[derive(Debug, Clone, Default)]
pub struct Disk {
    /// The current file: its durable prefix, then unsynced appends.
    data: Vec<u8>,
    /// Watermark of `data[0]`.
    data_start: usize,
    /// Bytes of `data` that are durable.
    durable_len: usize,
    /// Replacements not yet synced, oldest first; writes go to the newest.
    replacements: VecDeque<Replacement>,
    /// Watermark of everything written.
    written: usize,
    /// Watermark of everything synced.
    synced: usize,
}

/// What a crash did to the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CrashLoss {
    /// Unsynced bytes at the moment of the crash (appends and replacement files).
    pub unsynced_bytes: usize,
    /// How many of those survived (a torn write if it is not 0 and not all of them).
    pub kept_bytes: usize,
}

impl Disk {
    /// An empty disk.
    pub fn new() -> Disk {
        Disk::default()
    }

    /// Append bytes (volatile until synced). Returns the watermark a sync must reach to make
    /// them durable.
    pub fn write(&mut self, bytes: &[u8]) -> usize {
        match self.replacements.back_mut() {
            Some(r) => r.bytes.extend_from_slice(bytes),
            None => self.data.extend_from_slice(bytes),
        }
        self.written += bytes.len();
        self.written
    }

    /// Replace the whole file with `bytes` — atomically, once a sync reaches the returned
    /// watermark (see the fault model). Later writes append to the new file.
    pub fn replace(&mut self, bytes: &[u8]) -> usize {
        let start = self.written;
        self.written += bytes.len();
        // The new file starts with the old one's room: appends until the next compaction grow
        // it back to about the same size, and growing from the snapshot's size would copy
        // it over and over.
        let mut content = Vec::with_capacity(self.data.capacity().max(bytes.len()));
        content.extend_from_slice(bytes);
        self.replacements.push_back(Replacement {
            start,
            content_end: self.written,
            bytes: content,
        });
        self.written
    }

    /// Make everything up to `watermark` durable: a replacement whose content it covers
    /// becomes the file (the newest such one; older ones were superseded).
    pub fn sync_to(&mut self, watermark: usize) {
        assert!(
            watermark <= self.written,
            "sync past the end of what was written ({watermark} > {})",
            self.written
        );
        while self
            .replacements
            .front()
            .is_some_and(|r| r.content_end <= watermark)
        {
            let r = self.replacements.pop_front().expect("checked");
            self.data = r.bytes;
            self.data_start = r.start;
            self.durable_len = 0;
        }
        let covered = watermark
            .saturating_sub(self.data_start)
            .min(self.data.len());
        self.durable_len = self.durable_len.max(covered);
        self.synced = self.synced.max(watermark);
    }

    /// Watermark of everything synced so far: a write is durable once this reaches the
    /// watermark `write` or `replace` returned for it.
    pub fn synced_watermark(&self) -> usize {
        self.synced
    }

    /// Bytes of the current file that are durable.
    pub fn durable_len(&self) -> usize {
        self.durable_len
    }

    /// Bytes written but not yet durable (appends and replacement files).
    pub fn unsynced_len(&self) -> usize {
        self.written - self.synced
    }

    /// The file as the node sees it now: the newest replacement if one is pending, else the
    /// current file (after a crash, only durable bytes and any torn prefix remain).
    pub fn contents(&self) -> &[u8] {
        match self.replacements.back() {
            Some(r) => &r.bytes,
            None => &self.data,
        }
    }

    /// Size of the file as the node sees it now, in bytes.
    pub fn len(&self) -> usize {
        self.contents().len()
    }

    /// Bytes the disk holds in all: the current file and every pending replacement (the
    /// simulator's memory for this disk).
    pub fn held_bytes(&self) -> usize {
        self.data.len()
            + self
                .replacements
                .iter()
                .map(|r| r.bytes.len())
                .sum::<usize>()
    }

    /// True when the file is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The node crashed: drop unsynced writes, keeping a random prefix of the unsynced appends
    /// to the current file when `tear`. Pending replacements are lost whole (never renamed).
    pub fn crash(&mut self, rng: &mut ChaCha8Rng, tear: bool) -> CrashLoss {
        let appended_bytes = self.data.len() - self.durable_len;
        let replaced_bytes: usize = self.replacements.iter().map(|r| r.bytes.len()).sum();
        let kept_bytes = if tear && appended_bytes > 0 {
            rng.gen_range(0..=appended_bytes)
        } else {
            0
        };
        self.replacements.clear();
        self.data.truncate(self.durable_len + kept_bytes);
        // Whatever survived is on the platter now.
        self.durable_len = self.data.len();
        self.written = self.data_start + self.data.len();
        self.synced = self.written;
        CrashLoss {
            unsynced_bytes: appended_bytes + replaced_bytes,
            kept_bytes,
        }
    }

    /// Recovery found a valid prefix of `valid_bytes`: cut the file there (a torn tail).
    pub fn truncate(&mut self, valid_bytes: usize) {
        assert!(
            self.replacements.is_empty(),
            "recovery reads a disk with no replacement pending"
        );
        self.data.truncate(valid_bytes);
        self.durable_len = self.durable_len.min(valid_bytes);
        self.written = self.data_start + self.data.len();
        self.synced = self.synced.min(self.written);
    }

    /// Flip one bit in the body of a random durable record. Returns the byte offset, or `None`
    /// when the disk holds no complete record.
    pub fn rot(&mut self, rng: &mut ChaCha8Rng) -> Option<usize> {
        let mut starts = Vec::new();
        let mut iter = wal::iter_records(&self.data[..self.durable_len]);
        let mut offset = 0;
        while let Some(Ok(record)) = iter.next() {
            starts.push((offset, record.encoded_len()));
            offset += record.encoded_len();
        }
        if starts.is_empty() {
            return None;
        }
        let (start, len) = starts[rng.gen_range(0..starts.len())];
        // Skip the 4-byte length prefix (see the fault model).
        let at = start + rng.gen_range(4..len);
        self.data[at] ^= 1 << rng.gen_range(0..8);
        Some(at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::{stream, Stream};
    use raftsim_protocol::wal::{encode_record, recover, RecordKind};

    fn record(i: u64) -> Vec<u8> {
        let mut out = Vec::new();
        encode_record(i, 1, RecordKind::Entry, b"payload", &mut out);
        out
    }

    #[test]
    fn crash_loses_unsynced_writes() {
        let mut rng = stream(1, Stream::Disk);
        let mut d = Disk::new();
        let w = d.write(&record(1));
        d.sync_to(w);
        d.write(&record(2));
        let loss = d.crash(&mut rng, false);
        assert_eq!(loss.kept_bytes, 0);
        assert_eq!(recover(d.contents()).records.len(), 1);
    }

    #[test]
    fn torn_write_is_found_by_recovery() {
        let mut saw_torn = false;
        for seed in 0..50 {
            let mut rng = stream(seed, Stream::Disk);
            let mut d = Disk::new();
            let w = d.write(&record(1));
            d.sync_to(w);
            d.write(&record(2));
            let loss = d.crash(&mut rng, true);
            let rec = recover(d.contents());
            assert!(!rec.records.is_empty(), "synced record always survives");
            if loss.kept_bytes > 0 && loss.kept_bytes < loss.unsynced_bytes {
                saw_torn = true;
                assert!(rec.stop.is_some(), "a torn tail is reported");
                assert_eq!(rec.records.len(), 1);
            }
        }
        assert!(saw_torn);
    }

    fn records(range: std::ops::RangeInclusive<u64>) -> Vec<u8> {
        range.flat_map(record).collect()
    }

    #[test]
    fn a_synced_replacement_becomes_the_file() {
        let mut rng = stream(1, Stream::Disk);
        let mut d = Disk::new();
        let w = d.write(&records(1..=3));
        d.sync_to(w);
        let w = d.replace(&records(7..=7));
        assert_eq!(
            d.contents(),
            &records(7..=7)[..],
            "the node sees the new file"
        );
        d.write(&record(8));
        d.sync_to(w);
        assert_eq!(d.durable_len(), record(7).len(), "the rename is durable");
        assert_eq!(d.contents(), &records(7..=8)[..]);
        // The append after the replacement was not synced: a crash loses it, not the rename.
        let loss = d.crash(&mut rng, false);
        assert_eq!(loss.unsynced_bytes, record(8).len());
        let rec = recover(d.contents());
        assert_eq!(
            rec.records.iter().map(|r| r.index).collect::<Vec<_>>(),
            vec![7]
        );
        // Writes go on after the crash, watermarks keep growing.
        let w2 = d.write(&record(9));
        assert!(w2 > w);
        d.sync_to(w2);
        assert_eq!(recover(d.contents()).records.len(), 2);
    }

    /// The compaction crash test: a replacement written but not synced when the node crashes
    /// leaves the old file whole — never the new one, never a mixture — even with torn writes.
    #[test]
    fn a_crash_before_the_sync_keeps_the_old_file() {
        for seed in 0..50 {
            let mut rng = stream(seed, Stream::Disk);
            let mut d = Disk::new();
            let w = d.write(&records(1..=4));
            d.sync_to(w);
            d.write(&record(5)); // an unsynced append to the old file: may tear
            let w_replace = d.replace(&records(10..=12));
            d.write(&record(13));
            assert_eq!(d.synced_watermark(), w);
            let loss = d.crash(&mut rng, true);
            assert_eq!(
                loss.unsynced_bytes,
                record(5).len() + records(10..=13).len()
            );
            assert!(loss.kept_bytes <= record(5).len());
            let rec = recover(d.contents());
            let indexes: Vec<u64> = rec.records.iter().map(|r| r.index).collect();
            assert!(
                indexes == [1, 2, 3, 4] || indexes == [1, 2, 3, 4, 5],
                "seed {seed}: {indexes:?}"
            );
            assert!(d.synced_watermark() < w_replace);
        }
    }

    #[test]
    fn the_newest_covered_replacement_wins() {
        let mut rng = stream(3, Stream::Disk);
        let mut d = Disk::new();
        let w0 = d.write(&records(1..=2));
        let w1 = d.replace(&records(3..=3));
        let w2 = d.write(&record(4));
        let w3 = d.replace(&records(5..=6));
        assert!(w0 < w1 && w1 < w2 && w2 < w3);
        assert_eq!(d.held_bytes(), records(1..=6).len());
        // A sync through the first replacement and its append: that file is durable.
        d.sync_to(w2);
        assert_eq!(
            d.contents(),
            &records(5..=6)[..],
            "the node still sees the newest"
        );
        let mut crashed = d.clone();
        crashed.crash(&mut rng, true);
        assert_eq!(crashed.contents(), &records(3..=4)[..]);
        // A sync through the second: it becomes the file.
        d.sync_to(w3);
        assert_eq!(d.contents(), &records(5..=6)[..]);
        assert_eq!(d.durable_len(), records(5..=6).len());
        assert_eq!(d.held_bytes(), records(5..=6).len(), "old files are gone");
        d.crash(&mut rng, true);
        assert_eq!(d.contents(), &records(5..=6)[..]);
    }

    #[test]
    fn rot_is_detected() {
        for seed in 0..50 {
            let mut rng = stream(seed, Stream::Disk);
            let mut d = Disk::new();
            for i in 1..=3 {
                let w = d.write(&record(i));
                d.sync_to(w);
            }
            d.rot(&mut rng).expect("records to rot");
            let rec = recover(d.contents());
            assert!(rec.stop.is_some(), "seed {seed}: rot went unnoticed");
        }
    }
}
