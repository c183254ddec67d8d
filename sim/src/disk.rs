//! A node's simulated disk: one append-only WAL file with an explicit sync boundary.
//!
//! ## Fault model
//! - **Writes are volatile until synced.** `write` appends to the file; only `sync_to` makes a
//!   prefix durable. The cluster syncs an input's writes before releasing anything that
//!   depends on them (persist before send), after `disk_sync_ticks`.
//! - **Crash: unsynced data is lost, and the last write may tear.** On a crash the file is cut
//!   back to its durable length, plus — with torn writes enabled — a random prefix of the
//!   unsynced bytes, as if the OS had flushed part of the page cache. That prefix can end in
//!   the middle of a record; recovery must find and drop the torn tail.
//! - **Bit rot.** A latent fault flips one bit in the body of a random durable record (its
//!   checksum, header or payload). The 4-byte length prefix is assumed protected (a real WAL
//!   would guard it with a header checksum or sector ECC); rotting it could make a record look
//!   torn and silently shorten the log, which no checksum scheme of this shape can detect.
//!   Recovery must refuse to start from a disk with a rotten record rather than forget state.

use raftsim_protocol::wal;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// One node's disk.
#[derive(Debug, Clone, Default)]
pub struct Disk {
    data: Vec<u8>,
    durable_len: usize,
}

/// What a crash did to the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CrashLoss {
    /// Unsynced bytes at the moment of the crash.
    pub unsynced_bytes: usize,
    /// How many of those survived (a torn write if it is not 0 and not all of them).
    pub kept_bytes: usize,
}

impl Disk {
    /// An empty disk.
    pub fn new() -> Disk {
        Disk::default()
    }

    /// Append bytes (volatile until synced). Returns the new end offset, the watermark a sync
    /// must reach to make them durable.
    pub fn write(&mut self, bytes: &[u8]) -> usize {
        self.data.extend_from_slice(bytes);
        self.data.len()
    }

    /// Make everything up to `watermark` durable.
    pub fn sync_to(&mut self, watermark: usize) {
        assert!(
            watermark <= self.data.len(),
            "sync past the end of the file"
        );
        self.durable_len = self.durable_len.max(watermark);
    }

    /// Bytes made durable so far.
    pub fn durable_len(&self) -> usize {
        self.durable_len
    }

    /// Bytes written but not yet durable.
    pub fn unsynced_len(&self) -> usize {
        self.data.len() - self.durable_len
    }

    /// The file's contents as a restarting node reads them (after a crash, only durable bytes
    /// and any torn prefix remain).
    pub fn contents(&self) -> &[u8] {
        &self.data
    }

    /// Total file size in bytes.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// True when nothing was ever written.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The node crashed: drop unsynced bytes, keeping a random prefix of them when `tear`.
    pub fn crash(&mut self, rng: &mut ChaCha8Rng, tear: bool) -> CrashLoss {
        let unsynced_bytes = self.unsynced_len();
        let kept_bytes = if tear && unsynced_bytes > 0 {
            rng.gen_range(0..=unsynced_bytes)
        } else {
            0
        };
        self.data.truncate(self.durable_len + kept_bytes);
        // Whatever survived is on the platter now.
        self.durable_len = self.data.len();
        CrashLoss {
            unsynced_bytes,
            kept_bytes,
        }
    }

    /// Recovery found a valid prefix of `valid_bytes`: cut the file there (a torn tail).
    pub fn truncate(&mut self, valid_bytes: usize) {
        self.data.truncate(valid_bytes);
        self.durable_len = self.durable_len.min(valid_bytes);
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
