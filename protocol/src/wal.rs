//! The write-ahead-log record codec: framing, checksums and crash recovery of a byte image.
//!
//! Wire layout of one record, all little-endian:
//!
//! ```text
//! [payload_len: u32][crc32: u32][index: u64][term: u64][kind: u8][payload: payload_len bytes]
//! ```
//!
//! The header is [`RECORD_HEADER_BYTES`] (25) bytes. The CRC32 (IEEE, via `crc32fast`) covers
//! everything after the crc field — index, term, kind and payload — so any single-bit flip in
//! those bytes is detected. The length field is not covered by the CRC, but a corrupted length
//! either exceeds [`RECORD_PAYLOAD_BYTES_MAX`] (malformed), runs past the end of the image
//! (torn), or shifts which bytes the CRC is computed over (checksum mismatch).
//!
//! Contract:
//! - Encoding is infallible; a payload over [`RECORD_PAYLOAD_BYTES_MAX`] is a caller bug and
//!   panics.
//! - Decoding never panics: a WAL image is real-world input that a simulated crash may have torn
//!   or a simulated disk fault may have corrupted, so every defect is a [`DecodeError`].
//! - [`recover`] keeps the longest prefix of whole, valid records and reports where and why it
//!   stopped. Why stop at the first bad record instead of skipping it: records after a torn or
//!   corrupt one cannot be trusted to be the ones that were acknowledged in order, and a log
//!   with a hole would silently violate the prefix property Raft relies on.

use std::fmt;
use std::sync::OnceLock;

/// Size of a record header: `payload_len` (4) + `crc32` (4) + `index` (8) + `term` (8) +
/// `kind` (1).
pub const RECORD_HEADER_BYTES: usize = 25;

/// Largest payload a record may carry: 4 MiB.
pub const RECORD_PAYLOAD_BYTES_MAX: usize = 4 << 20;

/// Bytes needed before the length and checksum fields can be read.
const RECORD_PREFIX_BYTES: usize = 8;

/// Byte offset of the first checksummed byte (the `index` field) within a record.
const RECORD_CRC_START_BYTES: usize = 8;

/// What a WAL record holds. The discriminant is the on-disk `kind` byte.
#[repr(u8)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum RecordKind {
    /// A log entry.
    Entry = 1,
    /// Durable Raft state (current term, vote).
    HardState = 2,
    /// A log truncation marker (entries at and after `index` are discarded).
    Truncate = 3,
    /// A message (used by protocols that log what they send or receive).
    Message = 4,
    /// A state-machine snapshot.
    Snapshot = 5,
    /// A checkpoint marker.
    Checkpoint = 6,
}

impl RecordKind {
    /// Every kind, in discriminant order.
    pub const ALL: [RecordKind; 6] = [
        RecordKind::Entry,
        RecordKind::HardState,
        RecordKind::Truncate,
        RecordKind::Message,
        RecordKind::Snapshot,
        RecordKind::Checkpoint,
    ];

    /// The kind whose on-disk byte is `v`, or `None` if no kind uses it.
    pub fn from_u8(v: u8) -> Option<Self> {
        match v {
            1 => Some(RecordKind::Entry),
            2 => Some(RecordKind::HardState),
            3 => Some(RecordKind::Truncate),
            4 => Some(RecordKind::Message),
            5 => Some(RecordKind::Snapshot),
            6 => Some(RecordKind::Checkpoint),
            _ => None,
        }
    }

    /// A stable lower-case name for traces: `"entry"`, `"hard-state"`, `"truncate"`,
    /// `"message"`, `"snapshot"`, `"checkpoint"`.
    pub fn name(self) -> &'static str {
        match self {
            RecordKind::Entry => "entry",
            RecordKind::HardState => "hard-state",
            RecordKind::Truncate => "truncate",
            RecordKind::Message => "message",
            RecordKind::Snapshot => "snapshot",
            RecordKind::Checkpoint => "checkpoint",
        }
    }
}

impl fmt::Display for RecordKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An owned WAL record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Log index (or LSN) the record belongs to.
    pub index: u64,
    /// Term (or epoch) the record was written in.
    pub term: u64,
    /// What the payload means.
    pub kind: RecordKind,
    /// Opaque payload, at most [`RECORD_PAYLOAD_BYTES_MAX`] bytes.
    pub payload: Vec<u8>,
}

impl Record {
    /// Appends this record's framed encoding to `out`.
    ///
    /// # Panics
    /// If the payload exceeds [`RECORD_PAYLOAD_BYTES_MAX`].
    pub fn encode(&self, out: &mut Vec<u8>) {
        encode_record(self.index, self.term, self.kind, &self.payload, out);
    }

    /// Bytes this record occupies when encoded.
    pub fn encoded_len(&self) -> usize {
        record_encoded_len(self.payload.len())
    }

    /// A borrowed view of this record.
    pub fn as_record_ref(&self) -> RecordRef<'_> {
        RecordRef {
            index: self.index,
            term: self.term,
            kind: self.kind,
            payload: &self.payload,
        }
    }
}

/// A record decoded in place: the payload borrows from the WAL image (zero copy).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordRef<'a> {
    /// Log index (or LSN) the record belongs to.
    pub index: u64,
    /// Term (or epoch) the record was written in.
    pub term: u64,
    /// What the payload means.
    pub kind: RecordKind,
    /// The payload, borrowed from the decoded bytes.
    pub payload: &'a [u8],
}

impl RecordRef<'_> {
    /// Copies the record into an owned [`Record`].
    pub fn to_owned(&self) -> Record {
        Record {
            index: self.index,
            term: self.term,
            kind: self.kind,
            payload: self.payload.to_vec(),
        }
    }

    /// Bytes this record occupies when encoded.
    pub fn encoded_len(&self) -> usize {
        record_encoded_len(self.payload.len())
    }
}

/// Bytes a record with a payload of `payload_bytes` occupies when encoded.
pub fn record_encoded_len(payload_bytes: usize) -> usize {
    RECORD_HEADER_BYTES + payload_bytes
}

/// The CRC32 (IEEE) of `bytes`, as `crc32fast::hash` computes it. `crc32fast::hash` detects
/// the CPU's features to pick an implementation on every call, which for records of a few
/// dozen bytes was a fifth of the checksum's cost; the hasher is picked once and copied instead.
fn crc32(bytes: &[u8]) -> u32 {
    static PROTOTYPE: OnceLock<crc32fast::Hasher> = OnceLock::new();
    let mut hasher = PROTOTYPE.get_or_init(crc32fast::Hasher::new).clone();
    hasher.update(bytes);
    hasher.finalize()
}

/// The header of a record with its length and CRC fields zeroed (filled in once the payload
/// is in place), written with one copy instead of five.
fn header_without_len_and_crc(
    index: u64,
    term: u64,
    kind: RecordKind,
) -> [u8; RECORD_HEADER_BYTES] {
    let mut header = [0u8; RECORD_HEADER_BYTES];
    header[8..16].copy_from_slice(&index.to_le_bytes());
    header[16..24].copy_from_slice(&term.to_le_bytes());
    header[24] = kind as u8;
    header
}

/// The CRC32 of a record's checksummed fields, computed exactly as the encoder frames them.
fn record_crc(index: u64, term: u64, kind: u8, payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&index.to_le_bytes());
    hasher.update(&term.to_le_bytes());
    hasher.update(&[kind]);
    hasher.update(payload);
    hasher.finalize()
}

/// Appends one framed record to `out`. Reserves exactly the record's size up front, so the
/// only allocation is `out`'s own growth.
///
/// # Panics
/// If `payload` exceeds [`RECORD_PAYLOAD_BYTES_MAX`]: the decoder would reject it as malformed,
/// so writing it is a bug in the caller.
pub fn encode_record(index: u64, term: u64, kind: RecordKind, payload: &[u8], out: &mut Vec<u8>) {
    encode_record_with(index, term, kind, payload.len(), out, |out| {
        out.extend_from_slice(payload)
    });
}

/// Appends one framed record whose payload `write_payload` appends straight into `out`: the
/// same bytes as [`encode_record`] with that payload, without encoding the payload into a
/// buffer of its own first and copying it over (log entries are framed this way on the hot
/// path). `payload_bytes_hint` is reserved up front; it only sizes the reservation.
///
/// # Panics
/// If the payload written exceeds [`RECORD_PAYLOAD_BYTES_MAX`] (see [`encode_record`]).
pub fn encode_record_with(
    index: u64,
    term: u64,
    kind: RecordKind,
    payload_bytes_hint: usize,
    out: &mut Vec<u8>,
    write_payload: impl FnOnce(&mut Vec<u8>),
) {
    out.reserve(record_encoded_len(payload_bytes_hint));
    let start = out.len();
    out.extend_from_slice(&header_without_len_and_crc(index, term, kind));
    write_payload(out);
    let payload_bytes = out.len() - start - RECORD_HEADER_BYTES;
    assert!(
        payload_bytes <= RECORD_PAYLOAD_BYTES_MAX,
        "wal: {} record at index {index} has a {payload_bytes}-byte payload, over RECORD_PAYLOAD_BYTES_MAX ({RECORD_PAYLOAD_BYTES_MAX})",
        kind.name(),
    );
    let payload_len = u32::try_from(payload_bytes).expect("RECORD_PAYLOAD_BYTES_MAX fits in u32");
    let crc = crc32(&out[start + RECORD_CRC_START_BYTES..]);
    debug_assert_eq!(
        crc,
        record_crc(index, term, kind as u8, &out[start + RECORD_HEADER_BYTES..])
    );
    out[start..start + 4].copy_from_slice(&payload_len.to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// Why a record could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DecodeError {
    /// The bytes end inside the record: typically a write torn by a crash.
    Truncated {
        /// Bytes the record needs (the header size if the length is not yet readable).
        needed: usize,
        /// Bytes that were available.
        available: usize,
    },
    /// The stored CRC does not match the CRC of the bytes: corruption.
    ChecksumMismatch {
        /// The CRC stored in the record header.
        expected: u32,
        /// The CRC computed over the record's bytes.
        actual: u32,
    },
    /// The header is structurally impossible (length over the maximum, unknown kind).
    Malformed {
        /// What is wrong, in plain English.
        reason: &'static str,
    },
}

impl DecodeError {
    /// A short stable class for traces and metrics: `"torn"`, `"checksum"` or `"malformed"`.
    pub fn kind_name(&self) -> &'static str {
        match self {
            DecodeError::Truncated { .. } => "torn",
            DecodeError::ChecksumMismatch { .. } => "checksum",
            DecodeError::Malformed { .. } => "malformed",
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Truncated { needed, available } => write!(
                f,
                "torn record: needed {needed} bytes, only {available} available"
            ),
            DecodeError::ChecksumMismatch { expected, actual } => write!(
                f,
                "checksum mismatch: record header says {expected:#010x}, bytes hash to {actual:#010x}"
            ),
            DecodeError::Malformed { reason } => write!(f, "malformed record: {reason}"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// Reads a little-endian `u32` at `offset`; the caller has checked the bounds.
fn le_u32(bytes: &[u8], offset: usize) -> u32 {
    let mut array = [0u8; 4];
    array.copy_from_slice(&bytes[offset..offset + 4]);
    u32::from_le_bytes(array)
}

/// Reads a little-endian `u64` at `offset`; the caller has checked the bounds.
fn le_u64(bytes: &[u8], offset: usize) -> u64 {
    let mut array = [0u8; 8];
    array.copy_from_slice(&bytes[offset..offset + 8]);
    u64::from_le_bytes(array)
}

/// The index and term fields of a record this process encoded (a whole record, so no check):
/// what a kept copy of a record is matched against before it is reused.
///
/// # Panics
/// If `record` is shorter than a record header.
pub fn encoded_index_and_term(record: &[u8]) -> (u64, u64) {
    (
        le_u64(record, RECORD_CRC_START_BYTES),
        le_u64(record, RECORD_CRC_START_BYTES + 8),
    )
}

/// Decodes the record at the start of `bytes`, returning it and the number of bytes consumed.
///
/// Checks, in order: fewer than 8 bytes → [`DecodeError::Truncated`]; `payload_len` over
/// [`RECORD_PAYLOAD_BYTES_MAX`] → [`DecodeError::Malformed`]; fewer than header + payload bytes
/// → [`DecodeError::Truncated`]; CRC mismatch → [`DecodeError::ChecksumMismatch`]; unknown kind
/// byte → [`DecodeError::Malformed`]. Never panics.
pub fn decode_record(bytes: &[u8]) -> Result<(RecordRef<'_>, usize), DecodeError> {
    if bytes.len() < RECORD_PREFIX_BYTES {
        return Err(DecodeError::Truncated {
            needed: RECORD_HEADER_BYTES,
            available: bytes.len(),
        });
    }
    let payload_len = le_u32(bytes, 0) as usize;
    if payload_len > RECORD_PAYLOAD_BYTES_MAX {
        return Err(DecodeError::Malformed {
            reason: "payload length exceeds RECORD_PAYLOAD_BYTES_MAX",
        });
    }
    let record_bytes = record_encoded_len(payload_len);
    if bytes.len() < record_bytes {
        return Err(DecodeError::Truncated {
            needed: record_bytes,
            available: bytes.len(),
        });
    }
    let expected = le_u32(bytes, 4);
    let actual = crc32(&bytes[RECORD_CRC_START_BYTES..record_bytes]);
    if expected != actual && !crate::planted::active(crate::planted::Bug::SkipCrc) {
        return Err(DecodeError::ChecksumMismatch { expected, actual });
    }
    let kind_byte = bytes[RECORD_HEADER_BYTES - 1];
    let Some(kind) = RecordKind::from_u8(kind_byte) else {
        return Err(DecodeError::Malformed {
            reason: "unknown record kind byte",
        });
    };
    let record = RecordRef {
        index: le_u64(bytes, 8),
        term: le_u64(bytes, 16),
        kind,
        payload: &bytes[RECORD_HEADER_BYTES..record_bytes],
    };
    Ok((record, record_bytes))
}

/// Iterator over the records of a WAL image; see [`iter_records`].
#[derive(Debug, Clone)]
pub struct RecordIter<'a> {
    bytes: &'a [u8],
    offset: usize,
    failed: bool,
}

impl RecordIter<'_> {
    /// Bytes of whole, valid records yielded so far (the offset of the next record, or of the
    /// record that failed).
    pub fn offset(&self) -> usize {
        self.offset
    }
}

impl<'a> Iterator for RecordIter<'a> {
    type Item = Result<RecordRef<'a>, (usize, DecodeError)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.offset == self.bytes.len() {
            return None;
        }
        match decode_record(&self.bytes[self.offset..]) {
            Ok((record, consumed)) => {
                self.offset += consumed;
                Some(Ok(record))
            }
            Err(error) => {
                self.failed = true;
                Some(Err((self.offset, error)))
            }
        }
    }
}

impl std::iter::FusedIterator for RecordIter<'_> {}

/// Iterates over the records of `bytes` from the start without copying payloads. Yields
/// `Ok(record)` for each valid record; the first failure is yielded as
/// `Err((byte_offset, error))` and ends the iteration.
pub fn iter_records(bytes: &[u8]) -> RecordIter<'_> {
    RecordIter {
        bytes,
        offset: 0,
        failed: false,
    }
}

/// Where and why [`recover`] stopped reading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveryStop {
    /// Byte offset of the record that failed to decode (equals `Recovery::valid_bytes`).
    pub offset: usize,
    /// Why it failed.
    pub error: DecodeError,
}

/// The result of recovering a WAL image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovery {
    /// The longest prefix of valid records, in order.
    pub records: Vec<Record>,
    /// Bytes occupied by `records`; everything after this offset should be discarded.
    pub valid_bytes: usize,
    /// `None` if the whole image decoded cleanly, else the first failure.
    pub stop: Option<RecoveryStop>,
}

/// Reads records from the start of `bytes` and stops at the first one that fails to decode,
/// returning the longest valid prefix and where and why it stopped. Never panics.
pub fn recover(bytes: &[u8]) -> Recovery {
    let mut records = Vec::new();
    let mut iter = iter_records(bytes);
    let mut stop = None;
    for item in iter.by_ref() {
        match item {
            Ok(record) => records.push(record.to_owned()),
            Err((offset, error)) => stop = Some(RecoveryStop { offset, error }),
        }
    }
    Recovery {
        records,
        valid_bytes: iter.offset(),
        stop,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample_records() -> Vec<Record> {
        vec![
            Record {
                index: 1,
                term: 1,
                kind: RecordKind::Entry,
                payload: b"put x=1".to_vec(),
            },
            Record {
                index: 1,
                term: 2,
                kind: RecordKind::HardState,
                payload: vec![],
            },
            Record {
                index: u64::MAX,
                term: u64::MAX - 1,
                kind: RecordKind::Checkpoint,
                payload: (0..=255u8).collect(),
            },
            Record {
                index: 7,
                term: 3,
                kind: RecordKind::Truncate,
                payload: vec![0],
            },
        ]
    }

    fn encode_all(records: &[Record]) -> Vec<u8> {
        let mut out = Vec::new();
        for r in records {
            r.encode(&mut out);
        }
        out
    }

    #[test]
    fn kinds_round_trip_through_their_byte() {
        for kind in RecordKind::ALL {
            assert_eq!(RecordKind::from_u8(kind as u8), Some(kind));
        }
        assert_eq!(RecordKind::from_u8(0), None);
        assert_eq!(RecordKind::from_u8(7), None);
        assert_eq!(RecordKind::HardState.name(), "hard-state");
        assert_eq!(RecordKind::Snapshot.to_string(), "snapshot");
    }

    #[test]
    fn layout_matches_the_documented_wire_format() {
        let mut out = Vec::new();
        encode_record(0x0102, 0x0304, RecordKind::Message, b"hi", &mut out);
        assert_eq!(out.len(), RECORD_HEADER_BYTES + 2);
        assert_eq!(&out[0..4], &2u32.to_le_bytes());
        assert_eq!(&out[8..16], &0x0102u64.to_le_bytes());
        assert_eq!(&out[16..24], &0x0304u64.to_le_bytes());
        assert_eq!(out[24], 4);
        assert_eq!(&out[25..], b"hi");
        // The CRC covers exactly index, term, kind and payload.
        assert_eq!(&out[4..8], &crc32fast::hash(&out[8..]).to_le_bytes());
    }

    #[test]
    fn several_records_round_trip() {
        let records = sample_records();
        let bytes = encode_all(&records);
        assert_eq!(
            bytes.len(),
            records.iter().map(Record::encoded_len).sum::<usize>()
        );
        let mut offset = 0;
        for want in &records {
            let (got, consumed) = decode_record(&bytes[offset..]).expect("valid record");
            assert_eq!(&got.to_owned(), want);
            assert_eq!(got, want.as_record_ref());
            assert_eq!(consumed, want.encoded_len());
            assert_eq!(got.encoded_len(), consumed);
            offset += consumed;
        }
        assert_eq!(offset, bytes.len());

        let recovery = recover(&bytes);
        assert_eq!(
            recovery,
            Recovery {
                records: records.clone(),
                valid_bytes: bytes.len(),
                stop: None
            }
        );
        let scanned: Vec<Record> = iter_records(&bytes)
            .map(|r| r.expect("valid").to_owned())
            .collect();
        assert_eq!(scanned, records);
    }

    #[test]
    fn empty_image_recovers_cleanly() {
        assert_eq!(
            recover(&[]),
            Recovery {
                records: vec![],
                valid_bytes: 0,
                stop: None
            }
        );
        assert_eq!(iter_records(&[]).next(), None);
    }

    #[test]
    fn every_single_bit_flip_is_detected() {
        for record in sample_records() {
            let mut bytes = Vec::new();
            record.encode(&mut bytes);
            for bit in 0..bytes.len() * 8 {
                let mut flipped = bytes.clone();
                flipped[bit / 8] ^= 1 << (bit % 8);
                let result = decode_record(&flipped);
                assert!(
                    result.is_err(),
                    "flipping bit {bit} of {record:?} decoded as {result:?}"
                );
                // recover() must also refuse it: no records, stop at offset 0.
                let recovery = recover(&flipped);
                assert!(recovery.records.is_empty(), "bit {bit}: {recovery:?}");
                assert_eq!(recovery.valid_bytes, 0);
                assert_eq!(recovery.stop.map(|s| s.offset), Some(0));
            }
        }
    }

    #[test]
    fn flips_are_classified() {
        let mut bytes = Vec::new();
        encode_record(5, 6, RecordKind::Entry, b"abc", &mut bytes);

        let mut high_len = bytes.clone();
        high_len[3] ^= 0x80; // payload_len becomes huge
        assert_eq!(
            decode_record(&high_len).map(|(r, _)| r.to_owned()),
            Err(DecodeError::Malformed {
                reason: "payload length exceeds RECORD_PAYLOAD_BYTES_MAX"
            })
        );

        let mut longer = bytes.clone();
        longer[0] ^= 0x10; // payload_len 3 -> 19, past the end
        assert_eq!(
            decode_record(&longer).map(|(r, _)| r.to_owned()),
            Err(DecodeError::Truncated {
                needed: RECORD_HEADER_BYTES + 19,
                available: RECORD_HEADER_BYTES + 3
            })
        );

        let mut body = bytes.clone();
        body[RECORD_HEADER_BYTES] ^= 1;
        let err = decode_record(&body).unwrap_err();
        assert_eq!(err.kind_name(), "checksum");
        assert!(matches!(err, DecodeError::ChecksumMismatch { .. }));
    }

    #[test]
    fn unknown_kind_with_valid_crc_is_malformed() {
        let mut bytes = Vec::new();
        encode_record(1, 1, RecordKind::Entry, b"x", &mut bytes);
        bytes[RECORD_HEADER_BYTES - 1] = 99;
        let crc = crc32fast::hash(&bytes[8..]);
        bytes[4..8].copy_from_slice(&crc.to_le_bytes());
        let err = decode_record(&bytes).unwrap_err();
        assert_eq!(
            err,
            DecodeError::Malformed {
                reason: "unknown record kind byte"
            }
        );
        assert_eq!(err.kind_name(), "malformed");
    }

    #[test]
    fn every_truncation_keeps_exactly_the_whole_record_prefix() {
        let records = sample_records();
        let bytes = encode_all(&records);
        // Record boundaries: 0, end of record 1, ..., bytes.len().
        let mut boundaries = vec![0usize];
        for r in &records {
            boundaries.push(boundaries.last().unwrap() + r.encoded_len());
        }
        for cut in 0..=bytes.len() {
            let image = &bytes[..cut];
            let whole = boundaries.iter().rposition(|&b| b <= cut).unwrap();
            let prefix_bytes = boundaries[whole];
            let recovery = recover(image);
            assert_eq!(recovery.records, records[..whole], "cut at {cut}");
            assert_eq!(recovery.valid_bytes, prefix_bytes, "cut at {cut}");
            if cut == prefix_bytes {
                assert_eq!(recovery.stop, None, "cut at boundary {cut}");
            } else {
                let stop = recovery.stop.expect("torn tail must be reported");
                assert_eq!(stop.offset, prefix_bytes);
                let tail_len = cut - prefix_bytes;
                let expected_needed = if tail_len < 8 {
                    RECORD_HEADER_BYTES
                } else {
                    records[whole].encoded_len()
                };
                assert_eq!(
                    stop.error,
                    DecodeError::Truncated {
                        needed: expected_needed,
                        available: tail_len
                    },
                    "cut at {cut}"
                );
                assert_eq!(stop.error.kind_name(), "torn");
                assert_eq!(
                    decode_record(&image[prefix_bytes..]).map(|(r, n)| (r.to_owned(), n)),
                    Err(stop.error.clone())
                );
            }
        }
    }

    #[test]
    fn iteration_stops_after_the_first_error() {
        let records = sample_records();
        let mut bytes = encode_all(&records);
        let second_start = records[0].encoded_len();
        bytes[second_start + 4] ^= 0xff; // corrupt the second record's CRC
        let mut iter = iter_records(&bytes);
        assert_eq!(iter.next(), Some(Ok(records[0].as_record_ref())));
        match iter.next() {
            Some(Err((offset, DecodeError::ChecksumMismatch { .. }))) => {
                assert_eq!(offset, second_start)
            }
            other => panic!("expected a checksum error, got {other:?}"),
        }
        assert_eq!(
            iter.next(),
            None,
            "valid records after a bad one are not read"
        );
        assert_eq!(iter.offset(), second_start);

        let recovery = recover(&bytes);
        assert_eq!(recovery.records, records[..1]);
        assert_eq!(recovery.valid_bytes, second_start);
        assert_eq!(recovery.stop.unwrap().offset, second_start);
    }

    #[test]
    fn decode_errors_display_in_plain_english() {
        assert_eq!(
            DecodeError::Truncated {
                needed: 30,
                available: 12
            }
            .to_string(),
            "torn record: needed 30 bytes, only 12 available"
        );
        assert_eq!(
            DecodeError::ChecksumMismatch {
                expected: 0xdead_beef,
                actual: 1
            }
            .to_string(),
            "checksum mismatch: record header says 0xdeadbeef, bytes hash to 0x00000001"
        );
        assert_eq!(
            DecodeError::Malformed { reason: "bad" }.to_string(),
            "malformed record: bad"
        );
    }

    #[test]
    fn maximum_payload_round_trips() {
        let payload = vec![0x5a; RECORD_PAYLOAD_BYTES_MAX];
        let mut bytes = Vec::new();
        encode_record(1, 1, RecordKind::Snapshot, &payload, &mut bytes);
        let (record, consumed) = decode_record(&bytes).expect("max payload is valid");
        assert_eq!(consumed, bytes.len());
        assert_eq!(record.payload.len(), RECORD_PAYLOAD_BYTES_MAX);
    }

    #[test]
    #[should_panic(expected = "over RECORD_PAYLOAD_BYTES_MAX")]
    fn oversized_payload_panics() {
        encode_record(
            1,
            1,
            RecordKind::Entry,
            &vec![0; RECORD_PAYLOAD_BYTES_MAX + 1],
            &mut Vec::new(),
        );
    }

    fn any_kind() -> impl Strategy<Value = RecordKind> {
        proptest::sample::select(RecordKind::ALL.to_vec())
    }

    proptest! {
        #[test]
        fn decode_and_recover_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let decoded = decode_record(&bytes);
            if let Ok((record, consumed)) = decoded {
                prop_assert!(consumed <= bytes.len());
                prop_assert_eq!(consumed, record.encoded_len());
            }
            let recovery = recover(&bytes);
            prop_assert!(recovery.valid_bytes <= bytes.len());
            prop_assert_eq!(
                recovery.valid_bytes,
                recovery.records.iter().map(Record::encoded_len).sum::<usize>()
            );
            prop_assert_eq!(recovery.stop.is_none(), recovery.valid_bytes == bytes.len());
        }

        #[test]
        fn encode_decode_round_trips(
            index in any::<u64>(),
            term in any::<u64>(),
            kind in any_kind(),
            payload in proptest::collection::vec(any::<u8>(), 0..256),
        ) {
            let mut bytes = Vec::new();
            encode_record(index, term, kind, &payload, &mut bytes);
            let (record, consumed) = decode_record(&bytes)?;
            prop_assert_eq!(consumed, bytes.len());
            prop_assert_eq!(
                record.to_owned(),
                Record { index, term, kind, payload: payload.clone() }
            );
        }

        #[test]
        fn writing_the_payload_in_place_frames_the_same_bytes(
            index in any::<u64>(),
            term in any::<u64>(),
            kind in any_kind(),
            prefix in proptest::collection::vec(any::<u8>(), 0..64),
            payload in proptest::collection::vec(any::<u8>(), 0..256),
            hint in 0usize..512,
        ) {
            let mut expected = prefix.clone();
            encode_record(index, term, kind, &payload, &mut expected);
            let mut actual = prefix;
            encode_record_with(index, term, kind, hint, &mut actual, |out| {
                out.extend_from_slice(&payload)
            });
            prop_assert_eq!(actual, expected);
        }
    }
}
