//! Raft snapshots (§7): the state-machine image, its chunks, and their reassembly.
//!
//! A snapshot is the state machine — the KV store, then the client dedup table, each in its
//! canonical encoding ([`KvStore::encode`], [`DedupTable::encode`]) — as of its last included
//! entry (`last_index`, `last_term`). Its bytes, the *image*, travel and rest as a run of
//! **chunks**, each one WAL record of kind [`RecordKind::Snapshot`]:
//!
//! ```text
//! record index = last_index, record term = last_term, payload:
//! [image_bytes: u64][image_crc: u32][offset: u64][done: u8][data: the rest]
//! ```
//!
//! The same framing is used on the wire (one chunk nested in each `InstallSnapshot` message) and
//! on disk (a compacted WAL begins with the chunks of the node's snapshot), so:
//! - every chunk is CRC-checked on its own, like every other record, before any byte is used;
//! - the reassembled image is checked once more against `image_crc` (CRC32 of the whole image),
//!   so chunks of two different images can never be spliced into one;
//! - `done` is redundant on purpose — it must agree with `offset + data.len() == image_bytes`,
//!   and a chunk where it does not is malformed.
//!
//! Contract: decoding never panics; sizes are bounded ([`SNAPSHOT_IMAGE_BYTES_MAX`]), so a
//! corrupt length can never make a receiver reserve gigabytes; a reassembly accepts chunks only
//! in order, from offset 0, and holds at most one image.

use crate::codec::{self, CodecError, Reader};
use crate::dedup::DedupTable;
use crate::kv::KvStore;
use crate::types::{LogIndex, Term};
use crate::wal::{self, DecodeError, RecordKind, RecordRef};

/// Largest snapshot image raftsim handles (256 MiB): far above any store the simulator's
/// workloads build, and a bound on what a receiver accumulates.
pub const SNAPSHOT_IMAGE_BYTES_MAX: u64 = 256 << 20;

/// Data bytes per chunk record when a snapshot is written to disk (1 MiB): large records, few
/// of them; well below [`wal::RECORD_PAYLOAD_BYTES_MAX`].
pub const SNAPSHOT_DISK_CHUNK_BYTES: usize = 1 << 20;

/// Bytes of a chunk payload before its data: `image_bytes`, `image_crc`, `offset`, `done`.
pub const CHUNK_HEADER_BYTES: usize = 8 + 4 + 8 + 1;

/// A whole snapshot: the image of the state machine after applying `1..=last_index`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// Index of the last entry the snapshot covers.
    pub last_index: LogIndex,
    /// Term of that entry.
    pub last_term: Term,
    /// The encoded state machine: KV store, then dedup table.
    image: Vec<u8>,
    /// CRC32 of `image`.
    image_crc: u32,
}

impl Snapshot {
    /// Capture the state machine as of `last_index`/`last_term`.
    ///
    /// # Panics
    /// If `last_index` is 0 (there is nothing to snapshot) or the image exceeds
    /// [`SNAPSHOT_IMAGE_BYTES_MAX`] (a store beyond anything the simulator models).
    pub fn capture(
        last_index: LogIndex,
        last_term: Term,
        kv: &KvStore,
        dedup: &DedupTable,
    ) -> Snapshot {
        let mut image = Vec::new();
        kv.encode(&mut image);
        dedup.encode(&mut image);
        Snapshot::from_image(last_index, last_term, image)
    }

    /// Wrap an image (reassembled, or read from disk) whose checksum is to be computed here.
    ///
    /// # Panics
    /// As [`Snapshot::capture`].
    pub fn from_image(last_index: LogIndex, last_term: Term, image: Vec<u8>) -> Snapshot {
        assert!(last_index > 0, "a snapshot covers at least entry 1");
        assert!(
            image.len() as u64 <= SNAPSHOT_IMAGE_BYTES_MAX,
            "snapshot image of {} bytes exceeds SNAPSHOT_IMAGE_BYTES_MAX ({SNAPSHOT_IMAGE_BYTES_MAX})",
            image.len()
        );
        assert!(!image.is_empty(), "a state machine image is never empty");
        let image_crc = crc32fast::hash(&image);
        Snapshot {
            last_index,
            last_term,
            image,
            image_crc,
        }
    }

    /// Size of the image in bytes.
    pub fn image_bytes(&self) -> u64 {
        self.image.len() as u64
    }

    /// CRC32 of the image.
    pub fn image_crc(&self) -> u32 {
        self.image_crc
    }

    /// The image itself.
    pub fn image(&self) -> &[u8] {
        &self.image
    }

    /// Decode the state machine the image holds. The whole image must be consumed.
    pub fn decode_state(&self) -> Result<(KvStore, DedupTable), CodecError> {
        let mut r = Reader::new(&self.image);
        let kv = KvStore::decode(&mut r)?;
        let dedup = DedupTable::decode(&mut r)?;
        r.finish()?;
        Ok((kv, dedup))
    }

    /// The chunk starting at `offset`, at most `max_bytes` of data (the last one may be
    /// shorter). `offset` is clamped to the image, so a stale offset yields the last chunk.
    ///
    /// # Panics
    /// If `max_bytes` is 0.
    pub fn chunk(&self, offset: u64, max_bytes: usize) -> SnapshotChunk {
        assert!(max_bytes > 0, "chunks carry data");
        // Never start at the very end: every chunk carries at least one byte.
        let start = offset.min(self.image_bytes() - 1) as usize;
        let end = (start + max_bytes).min(self.image.len());
        SnapshotChunk {
            last_index: self.last_index,
            last_term: self.last_term,
            image_bytes: self.image_bytes(),
            image_crc: self.image_crc,
            offset: start as u64,
            done: end == self.image.len(),
            data: self.image[start..end].to_vec(),
        }
    }

    /// Append the whole snapshot as chunk records of at most `chunk_bytes` data each (the form
    /// a compacted WAL begins with).
    pub fn encode_records(&self, chunk_bytes: usize, out: &mut Vec<u8>) {
        let mut offset = 0u64;
        loop {
            let chunk = self.chunk(offset, chunk_bytes);
            chunk.encode_record(out);
            if chunk.done {
                break;
            }
            offset += chunk.data.len() as u64;
        }
    }
}

/// One piece of a snapshot image, as framed in one WAL `Snapshot` record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotChunk {
    /// The snapshot's last included index.
    pub last_index: LogIndex,
    /// The snapshot's last included term.
    pub last_term: Term,
    /// Size of the whole image.
    pub image_bytes: u64,
    /// CRC32 of the whole image.
    pub image_crc: u32,
    /// Where `data` starts in the image.
    pub offset: u64,
    /// Whether this is the last chunk (`offset + data.len() == image_bytes`).
    pub done: bool,
    /// The bytes.
    pub data: Vec<u8>,
}

impl SnapshotChunk {
    /// Append this chunk as one WAL record of kind `Snapshot`.
    pub fn encode_record(&self, out: &mut Vec<u8>) {
        let mut payload = Vec::with_capacity(CHUNK_HEADER_BYTES + self.data.len());
        codec::put_u64(&mut payload, self.image_bytes);
        codec::put_u32(&mut payload, self.image_crc);
        codec::put_u64(&mut payload, self.offset);
        codec::put_u8(&mut payload, u8::from(self.done));
        payload.extend_from_slice(&self.data);
        wal::encode_record(
            self.last_index,
            self.last_term,
            RecordKind::Snapshot,
            &payload,
            out,
        );
    }

    /// Parse a decoded (so CRC-checked) record as a chunk; every field is validated.
    pub fn from_record(record: &RecordRef<'_>) -> Result<SnapshotChunk, DecodeError> {
        let malformed = |reason| Err(DecodeError::Malformed { reason });
        if record.kind != RecordKind::Snapshot {
            return malformed("record is not a snapshot chunk");
        }
        if record.index == 0 {
            return malformed("snapshot chunk for index 0");
        }
        let mut r = Reader::new(record.payload);
        let header = (|| Ok::<_, CodecError>((r.u64()?, r.u32()?, r.u64()?, r.u8()?)))();
        let Ok((image_bytes, image_crc, offset, done)) = header else {
            return malformed("snapshot chunk header is cut short");
        };
        let data = &record.payload[CHUNK_HEADER_BYTES..];
        let done = match done {
            0 => false,
            1 => true,
            _ => return malformed("snapshot chunk done flag is not 0 or 1"),
        };
        if image_bytes == 0 || image_bytes > SNAPSHOT_IMAGE_BYTES_MAX {
            return malformed("snapshot image size out of range");
        }
        if data.is_empty() {
            return malformed("snapshot chunk carries no data");
        }
        let Some(end) = offset.checked_add(data.len() as u64) else {
            return malformed("snapshot chunk offset overflows");
        };
        if end > image_bytes {
            return malformed("snapshot chunk runs past the image");
        }
        if done != (end == image_bytes) {
            return malformed("snapshot chunk done flag disagrees with its offset");
        }
        Ok(SnapshotChunk {
            last_index: record.index,
            last_term: record.term,
            image_bytes,
            image_crc,
            offset,
            done,
            data: data.to_vec(),
        })
    }

    /// Whether two chunks belong to the same image.
    fn same_image(&self, a: &SnapshotAssembly) -> bool {
        (
            self.last_index,
            self.last_term,
            self.image_bytes,
            self.image_crc,
        ) == (a.last_index, a.last_term, a.image_bytes, a.image_crc)
    }
}

/// A snapshot image being reassembled from chunks that arrive in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotAssembly {
    last_index: LogIndex,
    last_term: Term,
    image_bytes: u64,
    image_crc: u32,
    data: Vec<u8>,
}

/// What [`SnapshotAssembly::offer`] did with a chunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Offer {
    /// Accepted; the image continues at `next_offset`.
    Partial {
        /// The offset of the next chunk wanted.
        next_offset: u64,
    },
    /// Not the next chunk of the image being assembled (a duplicate, a gap, another image):
    /// ignored. The sender should resume at `next_offset`.
    Ignored {
        /// The offset of the next chunk wanted (0: start over).
        next_offset: u64,
    },
    /// The last chunk arrived and the whole image matches its checksum.
    Complete(Snapshot),
    /// The last chunk arrived but the image fails its checksum; the assembly was dropped.
    Corrupt(DecodeError),
}

impl SnapshotAssembly {
    /// The snapshot being assembled: its last included index.
    pub fn last_index(&self) -> LogIndex {
        self.last_index
    }

    /// Bytes received so far.
    pub fn received_bytes(&self) -> u64 {
        self.data.len() as u64
    }

    /// Offer `chunk` to the assembly in `slot`. A chunk at offset 0 starts a new assembly
    /// (dropping any other); any other chunk must continue the one in progress exactly where
    /// it ends. The slot is emptied when the image completes (or fails its checksum).
    pub fn offer(slot: &mut Option<SnapshotAssembly>, chunk: SnapshotChunk) -> Offer {
        if chunk.offset == 0 {
            *slot = Some(SnapshotAssembly {
                last_index: chunk.last_index,
                last_term: chunk.last_term,
                image_bytes: chunk.image_bytes,
                image_crc: chunk.image_crc,
                // Reserve only what arrived: a chunk's claimed size is not trusted with memory.
                data: Vec::with_capacity(chunk.data.len()),
            });
        }
        let next_offset = match slot.as_ref() {
            Some(a) if chunk.same_image(a) => a.received_bytes(),
            _ => 0,
        };
        let Some(assembly) = slot
            .as_mut()
            .filter(|a| chunk.same_image(a) && chunk.offset == next_offset)
        else {
            return Offer::Ignored { next_offset };
        };
        assembly.data.extend_from_slice(&chunk.data);
        debug_assert!(assembly.received_bytes() <= assembly.image_bytes);
        if !chunk.done {
            return Offer::Partial {
                next_offset: assembly.received_bytes(),
            };
        }
        let assembly = slot.take().expect("checked above");
        let actual = crc32fast::hash(&assembly.data);
        if actual != assembly.image_crc {
            return Offer::Corrupt(DecodeError::ChecksumMismatch {
                expected: assembly.image_crc,
                actual,
            });
        }
        Offer::Complete(Snapshot::from_image(
            assembly.last_index,
            assembly.last_term,
            assembly.data,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::{Op, OpResult};
    use proptest::prelude::*;

    fn state(keys: usize) -> (KvStore, DedupTable) {
        let mut kv = KvStore::new();
        let mut dedup = DedupTable::new(16);
        for k in 0..keys {
            kv.apply(&Op::Put {
                key: format!("key-{k}"),
                value: format!("value-{k}-{}", "x".repeat(k % 50)),
            });
            let k = k as u64;
            dedup.record(1 + k % 5, 1 + k / 5, OpResult::Ok, 1 + k);
        }
        (kv, dedup)
    }

    fn decode_chunk(bytes: &[u8]) -> Result<(SnapshotChunk, usize), DecodeError> {
        let (record, used) = wal::decode_record(bytes)?;
        Ok((SnapshotChunk::from_record(&record)?, used))
    }

    #[test]
    fn capture_and_decode_round_trip() {
        let (kv, dedup) = state(40);
        let snap = Snapshot::capture(120, 3, &kv, &dedup);
        assert_eq!((snap.last_index, snap.last_term), (120, 3));
        assert_eq!(snap.image_crc(), crc32fast::hash(snap.image()));
        let (kv2, dedup2) = snap.decode_state().expect("valid image");
        assert_eq!(kv2, kv);
        assert_eq!(dedup2, dedup);
        // An image with a trailing byte is not a state machine.
        let mut image = snap.image().to_vec();
        image.push(0);
        assert!(Snapshot::from_image(120, 3, image).decode_state().is_err());
    }

    #[test]
    fn chunks_cover_the_image_in_order_and_reassemble() {
        let (kv, dedup) = state(60);
        let snap = Snapshot::capture(77, 2, &kv, &dedup);
        for chunk_bytes in [1, 7, 64, 1000, 1 << 20] {
            let mut slot = None;
            let mut offset = 0;
            let mut chunks = 0;
            let done = loop {
                let chunk = snap.chunk(offset, chunk_bytes);
                assert_eq!(chunk.offset, offset);
                assert!(chunk.data.len() <= chunk_bytes);
                // Through the wire framing and back.
                let mut bytes = Vec::new();
                chunk.encode_record(&mut bytes);
                let (decoded, used) = decode_chunk(&bytes).expect("valid chunk");
                assert_eq!(used, bytes.len());
                assert_eq!(decoded, chunk);
                chunks += 1;
                match SnapshotAssembly::offer(&mut slot, decoded) {
                    Offer::Partial { next_offset } => offset = next_offset,
                    Offer::Complete(s) => break s,
                    other => panic!("chunk {chunks} at {offset}: {other:?}"),
                }
            };
            assert_eq!(done, snap, "chunk size {chunk_bytes}");
            assert!(slot.is_none(), "the slot empties when the image completes");
            assert_eq!(
                chunks,
                snap.image_bytes().div_ceil(chunk_bytes as u64),
                "chunk size {chunk_bytes}"
            );
        }
    }

    #[test]
    fn disk_records_decode_back_to_the_snapshot() {
        let (kv, dedup) = state(30);
        let snap = Snapshot::capture(9, 1, &kv, &dedup);
        let mut bytes = Vec::new();
        snap.encode_records(100, &mut bytes);
        let mut slot = None;
        let mut rest = &bytes[..];
        let mut complete = None;
        while !rest.is_empty() {
            let (chunk, used) = decode_chunk(rest).expect("valid");
            rest = &rest[used..];
            if let Offer::Complete(s) = SnapshotAssembly::offer(&mut slot, chunk) {
                complete = Some(s);
            }
        }
        assert_eq!(complete, Some(snap));
    }

    #[test]
    fn out_of_order_duplicate_and_foreign_chunks_are_ignored() {
        let (kv, dedup) = state(20);
        let snap = Snapshot::capture(50, 2, &kv, &dedup);
        let other = Snapshot::capture(60, 2, &kv, &dedup);
        let mut slot = None;
        // Nothing in progress: a middle chunk asks for a restart.
        assert_eq!(
            SnapshotAssembly::offer(&mut slot, snap.chunk(64, 64)),
            Offer::Ignored { next_offset: 0 }
        );
        assert_eq!(
            SnapshotAssembly::offer(&mut slot, snap.chunk(0, 64)),
            Offer::Partial { next_offset: 64 }
        );
        // A duplicate of the first chunk restarts (offset 0 always does); a gap is refused.
        assert_eq!(
            SnapshotAssembly::offer(&mut slot, snap.chunk(0, 64)),
            Offer::Partial { next_offset: 64 }
        );
        assert_eq!(
            SnapshotAssembly::offer(&mut slot, snap.chunk(128, 64)),
            Offer::Ignored { next_offset: 64 }
        );
        // A chunk of another image at the right offset is refused and does not disturb.
        assert_eq!(
            SnapshotAssembly::offer(&mut slot, other.chunk(64, 64)),
            Offer::Ignored { next_offset: 0 }
        );
        assert_eq!(slot.as_ref().map(|a| a.received_bytes()), Some(64));
        assert_eq!(
            SnapshotAssembly::offer(&mut slot, snap.chunk(64, 1 << 20)),
            Offer::Complete(snap)
        );
    }

    /// A chunk whose bytes were flipped in flight never reaches the assembly: its record CRC
    /// fails. And chunks of two images that claim the same identity but differ in content are
    /// caught by the whole-image CRC.
    #[test]
    fn a_corrupt_chunk_is_rejected() {
        let (kv, dedup) = state(25);
        let snap = Snapshot::capture(40, 2, &kv, &dedup);
        let chunk = snap.chunk(0, 128);
        let mut bytes = Vec::new();
        chunk.encode_record(&mut bytes);
        for bit in 0..bytes.len() * 8 {
            let mut corrupt = bytes.clone();
            corrupt[bit / 8] ^= 1 << (bit % 8);
            assert!(
                decode_chunk(&corrupt).is_err(),
                "bit {bit} flip went undetected"
            );
        }
        // Splice: the second half of a different image under the first image's identity.
        let (kv2, _) = state(26);
        let forged_source = Snapshot::capture(40, 2, &kv2, &dedup);
        let mut slot = None;
        assert!(matches!(
            SnapshotAssembly::offer(&mut slot, chunk),
            Offer::Partial { .. }
        ));
        let mut forged = forged_source.chunk(128, 1 << 20);
        forged.image_bytes = snap.image_bytes();
        forged.image_crc = snap.image_crc();
        forged.data.truncate((snap.image_bytes() - 128) as usize);
        forged.done = true;
        match SnapshotAssembly::offer(&mut slot, forged) {
            Offer::Corrupt(DecodeError::ChecksumMismatch { .. }) => {}
            other => panic!("a spliced image must fail its checksum: {other:?}"),
        }
        assert!(slot.is_none(), "the failed assembly is dropped");
    }

    #[test]
    fn malformed_chunks_are_refused() {
        let good = SnapshotChunk {
            last_index: 5,
            last_term: 1,
            image_bytes: 10,
            image_crc: 0,
            offset: 4,
            done: false,
            data: vec![1, 2],
        };
        let check = |c: &SnapshotChunk| {
            let mut bytes = Vec::new();
            c.encode_record(&mut bytes);
            decode_chunk(&bytes).map(|(c, _)| c)
        };
        assert_eq!(check(&good), Ok(good.clone()));
        let bad = [
            SnapshotChunk {
                done: true,
                ..good.clone()
            },
            SnapshotChunk {
                offset: 9,
                ..good.clone()
            },
            SnapshotChunk {
                data: vec![],
                ..good.clone()
            },
            SnapshotChunk {
                image_bytes: SNAPSHOT_IMAGE_BYTES_MAX + 1,
                ..good.clone()
            },
            SnapshotChunk {
                offset: u64::MAX,
                ..good.clone()
            },
            SnapshotChunk {
                last_index: 0,
                ..good.clone()
            },
        ];
        for c in &bad {
            assert!(
                matches!(check(c), Err(DecodeError::Malformed { .. })),
                "{c:?}"
            );
        }
        // A record of another kind, and a cut-short header.
        let mut bytes = Vec::new();
        wal::encode_record(5, 1, RecordKind::Entry, &[0; 30], &mut bytes);
        assert!(decode_chunk(&bytes).is_err());
        let mut bytes = Vec::new();
        wal::encode_record(5, 1, RecordKind::Snapshot, &[0; 20], &mut bytes);
        assert!(decode_chunk(&bytes).is_err());
    }

    proptest! {
        #[test]
        fn chunk_decoding_never_panics(
            index in any::<u64>(),
            term in any::<u64>(),
            payload in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let mut bytes = Vec::new();
            wal::encode_record(index, term, RecordKind::Snapshot, &payload, &mut bytes);
            if let Ok((chunk, _)) = decode_chunk(&bytes) {
                prop_assert!(chunk.offset + chunk.data.len() as u64 <= chunk.image_bytes);
                let mut slot = None;
                let _ = SnapshotAssembly::offer(&mut slot, chunk);
            }
        }
    }
}
