//! Leader-follower messages and their wire form.
//!
//! On the simulated wire every message is one WAL record of kind `Message` (see [`crate::wal`])
//! with `term` = [`EPOCH`], so a flipped bit anywhere fails its CRC. A Ship carries its log
//! records as nested WAL records of kind `Entry` — the very framing the WAL uses on disk — and a
//! Snapshot carries the replica state as one nested WAL record of kind `Snapshot`, so every
//! shipped record is checksummed on its own as well.
//!
//! [`decode_message`] tells an outer-frame failure (the message cannot be trusted at all) from a
//! nested-record failure inside an intact frame ([`WireError::NestedRecord`]); the replica node
//! answers the latter with a `Nack` so the leader re-ships at once. [`WireMessage::decode_wire`]
//! rejects both.

use std::fmt;

use super::record::{LogRecord, EPOCH};
use crate::codec::{self, CodecError, Reader};
use crate::node::WireMessage;
use crate::types::{LogIndex, Term};
use crate::wal::{self, DecodeError, RecordKind, RECORD_HEADER_BYTES, RECORD_PAYLOAD_BYTES_MAX};

/// Largest number of records a decoded Ship may claim; bounds work on hostile input.
pub const WIRE_RECORDS_COUNT_MAX: usize = 1 << 16;

/// Bytes of a Ship's payload before its nested records: tag, `from_lsn`, `commit_lsn`, count.
const SHIP_HEADER_BYTES: usize = 1 + 8 + 8 + 4;

/// Most bytes of nested records one Ship carries. The leader stops adding records to a batch
/// before crossing it (a single record always fits, see
/// [`super::record::RECORD_BYTES_MAX`]).
pub const SHIP_RECORDS_BYTES_MAX: usize = RECORD_PAYLOAD_BYTES_MAX - SHIP_HEADER_BYTES;

/// Largest snapshot payload (store and dedup table) that can be shipped and persisted: the
/// nested `Snapshot` record plus the message header must fit in one message record.
pub const SNAPSHOT_PAYLOAD_BYTES_MAX: usize = RECORD_PAYLOAD_BYTES_MAX - RECORD_HEADER_BYTES - 16;

/// A leader-follower message. The sender's id travels in the transport, not in the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// Leader → every follower, every `heartbeat_ticks`: liveness and progress.
    Heartbeat {
        /// The leader's last LSN.
        leader_lsn: LogIndex,
        /// The leader's commit LSN.
        commit_lsn: LogIndex,
    },
    /// Follower → leader: answer to a heartbeat.
    HeartbeatAck {
        /// The highest contiguous LSN the follower holds durably.
        last_lsn: LogIndex,
    },
    /// Leader → follower: consecutive log records starting at `from_lsn`.
    Ship {
        /// LSN of the first record.
        from_lsn: LogIndex,
        /// The records, at `from_lsn, from_lsn + 1, ...`.
        records: Vec<LogRecord>,
        /// The leader's commit LSN.
        commit_lsn: LogIndex,
    },
    /// Follower → leader: everything up to `lsn` is durable here.
    Ack {
        /// The highest contiguous LSN the follower holds durably.
        lsn: LogIndex,
    },
    /// Follower → leader: a Ship started past the next record expected (a gap: an earlier Ship
    /// was lost, corrupted or overtaken), or a nested record failed its check.
    Nack {
        /// The LSN the follower needs next.
        expected_lsn: LogIndex,
    },
    /// A restarted follower → leader: "I recovered up to `last_lsn`, ship me the rest".
    Rejoin {
        /// The highest LSN recovered from the WAL.
        last_lsn: LogIndex,
    },
    /// Leader → a follower behind the retained WAL: the whole state at `lsn`.
    Snapshot {
        /// The LSN the state reflects.
        lsn: LogIndex,
        /// One WAL record of kind `Snapshot` at index `lsn` (CRC-framed), whose payload is
        /// [`super::store::encode_state`]'s output. The follower persists it as is.
        bytes: Vec<u8>,
    },
}

impl Message {
    /// The epoch the message carries: always [`EPOCH`] (the leader is fixed).
    pub fn term(&self) -> Term {
        EPOCH
    }

    /// A short stable type name, used by traces and scenario message counts.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Message::Heartbeat { .. } => "Heartbeat",
            Message::HeartbeatAck { .. } => "HeartbeatAck",
            Message::Ship { .. } => "Ship",
            Message::Ack { .. } => "Ack",
            Message::Nack { .. } => "Nack",
            Message::Rejoin { .. } => "Rejoin",
            Message::Snapshot { .. } => "Snapshot",
        }
    }
}

impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Message::Heartbeat {
                leader_lsn,
                commit_lsn,
            } => write!(f, "Heartbeat lsn={leader_lsn} commit={commit_lsn}"),
            Message::HeartbeatAck { last_lsn } => write!(f, "HeartbeatAck lsn={last_lsn}"),
            Message::Ship {
                from_lsn,
                records,
                commit_lsn,
            } => write!(
                f,
                "Ship from={from_lsn} records={} commit={commit_lsn}",
                records.len()
            ),
            Message::Ack { lsn } => write!(f, "Ack lsn={lsn}"),
            Message::Nack { expected_lsn } => write!(f, "Nack expected={expected_lsn}"),
            Message::Rejoin { last_lsn } => write!(f, "Rejoin lsn={last_lsn}"),
            Message::Snapshot { lsn, bytes } => {
                write!(f, "Snapshot lsn={lsn} bytes={}", bytes.len())
            }
        }
    }
}

/// Why wire bytes did not decode into a [`Message`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WireError {
    /// The message record itself is torn, corrupt or malformed: nothing in it can be trusted,
    /// not even which kind of message it was.
    Frame(DecodeError),
    /// The message record is intact, but a record nested in it (a shipped entry, a snapshot)
    /// failed its own check. The receiver knows a Ship or Snapshot was meant for it.
    NestedRecord(DecodeError),
}

impl WireError {
    /// The underlying decode error.
    pub fn decode_error(&self) -> &DecodeError {
        match self {
            WireError::Frame(e) | WireError::NestedRecord(e) => e,
        }
    }
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::Frame(e) => write!(f, "message frame: {e}"),
            WireError::NestedRecord(e) => write!(f, "nested record: {e}"),
        }
    }
}

impl std::error::Error for WireError {}

const TAG_HEARTBEAT: u8 = 1;
const TAG_HEARTBEAT_ACK: u8 = 2;
const TAG_SHIP: u8 = 3;
const TAG_ACK: u8 = 4;
const TAG_NACK: u8 = 5;
const TAG_REJOIN: u8 = 6;
const TAG_SNAPSHOT: u8 = 7;

fn frame_err(_: CodecError) -> WireError {
    WireError::Frame(DecodeError::Malformed {
        reason: "message payload does not parse",
    })
}

fn nested_malformed(reason: &'static str) -> WireError {
    WireError::NestedRecord(DecodeError::Malformed { reason })
}

impl WireMessage for Message {
    fn encode_wire(&self, out: &mut Vec<u8>) {
        let mut payload = Vec::with_capacity(64);
        match self {
            Message::Heartbeat {
                leader_lsn,
                commit_lsn,
            } => {
                codec::put_u8(&mut payload, TAG_HEARTBEAT);
                codec::put_u64(&mut payload, *leader_lsn);
                codec::put_u64(&mut payload, *commit_lsn);
            }
            Message::HeartbeatAck { last_lsn } => {
                codec::put_u8(&mut payload, TAG_HEARTBEAT_ACK);
                codec::put_u64(&mut payload, *last_lsn);
            }
            Message::Ship {
                from_lsn,
                records,
                commit_lsn,
            } => {
                assert!(
                    records.len() <= WIRE_RECORDS_COUNT_MAX,
                    "replication: a Ship of {} records exceeds WIRE_RECORDS_COUNT_MAX",
                    records.len()
                );
                codec::put_u8(&mut payload, TAG_SHIP);
                codec::put_u64(&mut payload, *from_lsn);
                codec::put_u64(&mut payload, *commit_lsn);
                codec::put_u32(&mut payload, records.len() as u32);
                let mut scratch = Vec::new();
                for (k, record) in records.iter().enumerate() {
                    record.encode_record(*from_lsn + k as LogIndex, &mut scratch, &mut payload);
                }
            }
            Message::Ack { lsn } => {
                codec::put_u8(&mut payload, TAG_ACK);
                codec::put_u64(&mut payload, *lsn);
            }
            Message::Nack { expected_lsn } => {
                codec::put_u8(&mut payload, TAG_NACK);
                codec::put_u64(&mut payload, *expected_lsn);
            }
            Message::Rejoin { last_lsn } => {
                codec::put_u8(&mut payload, TAG_REJOIN);
                codec::put_u64(&mut payload, *last_lsn);
            }
            Message::Snapshot { lsn, bytes } => {
                codec::put_u8(&mut payload, TAG_SNAPSHOT);
                codec::put_u64(&mut payload, *lsn);
                // The nested record frames itself: no length prefix needed.
                payload.extend_from_slice(bytes);
            }
        }
        wal::encode_record(0, EPOCH, RecordKind::Message, &payload, out);
    }

    fn decode_wire(bytes: &[u8]) -> Result<Message, DecodeError> {
        decode_message(bytes).map_err(|e| e.decode_error().clone())
    }
}

/// Decode a message from its wire form, verifying the message record's CRC and then every
/// nested record's. Never panics.
pub fn decode_message(bytes: &[u8]) -> Result<Message, WireError> {
    let (record, used) = wal::decode_record(bytes).map_err(WireError::Frame)?;
    let malformed = |reason| Err(WireError::Frame(DecodeError::Malformed { reason }));
    if used != bytes.len() {
        return malformed("bytes after the message record");
    }
    if record.kind != RecordKind::Message {
        return malformed("record is not a message");
    }
    if record.term != EPOCH {
        return malformed("message from another epoch");
    }
    let mut r = Reader::new(record.payload);
    let message = match r.u8().map_err(frame_err)? {
        TAG_HEARTBEAT => Message::Heartbeat {
            leader_lsn: r.u64().map_err(frame_err)?,
            commit_lsn: r.u64().map_err(frame_err)?,
        },
        TAG_HEARTBEAT_ACK => Message::HeartbeatAck {
            last_lsn: r.u64().map_err(frame_err)?,
        },
        TAG_SHIP => {
            let from_lsn = r.u64().map_err(frame_err)?;
            let commit_lsn = r.u64().map_err(frame_err)?;
            let count = r.u32().map_err(frame_err)? as usize;
            if count > WIRE_RECORDS_COUNT_MAX {
                return malformed("too many records in a Ship");
            }
            let mut rest = &record.payload[record.payload.len() - r.remaining()..];
            let records = decode_shipped(&mut rest, from_lsn, count)?;
            if !rest.is_empty() {
                return Err(nested_malformed("bytes after the last shipped record"));
            }
            return Ok(Message::Ship {
                from_lsn,
                records,
                commit_lsn,
            });
        }
        TAG_ACK => Message::Ack {
            lsn: r.u64().map_err(frame_err)?,
        },
        TAG_NACK => Message::Nack {
            expected_lsn: r.u64().map_err(frame_err)?,
        },
        TAG_REJOIN => Message::Rejoin {
            last_lsn: r.u64().map_err(frame_err)?,
        },
        TAG_SNAPSHOT => {
            let lsn = r.u64().map_err(frame_err)?;
            let rest = &record.payload[record.payload.len() - r.remaining()..];
            let (nested, nested_used) =
                wal::decode_record(rest).map_err(WireError::NestedRecord)?;
            if nested_used != rest.len() {
                return Err(nested_malformed("bytes after the snapshot record"));
            }
            if nested.kind != RecordKind::Snapshot || nested.index != lsn || nested.term != EPOCH {
                return Err(nested_malformed(
                    "snapshot record has the wrong kind, lsn or epoch",
                ));
            }
            return Ok(Message::Snapshot {
                lsn,
                bytes: rest.to_vec(),
            });
        }
        _ => return malformed("unknown message tag"),
    };
    r.finish().map_err(frame_err)?;
    Ok(message)
}

/// Decode `count` nested `Entry` records at `from_lsn, from_lsn + 1, ...` from the front of
/// `rest`, advancing it.
fn decode_shipped(
    rest: &mut &[u8],
    from_lsn: LogIndex,
    count: usize,
) -> Result<Vec<LogRecord>, WireError> {
    let mut records = Vec::with_capacity(count.min(1024));
    for k in 0..count as u64 {
        let (nested, used) = wal::decode_record(rest).map_err(WireError::NestedRecord)?;
        if nested.kind != RecordKind::Entry
            || nested.term != EPOCH
            || Some(nested.index) != from_lsn.checked_add(k)
        {
            return Err(nested_malformed(
                "shipped record has the wrong kind, lsn or epoch",
            ));
        }
        let record = LogRecord::decode(nested.payload)
            .map_err(|_| nested_malformed("shipped record payload does not parse"))?;
        records.push(record);
        *rest = &rest[used..];
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dedup::DedupTable;
    use crate::kv::{KvStore, Op};
    use crate::replication::store::{encode_state, LwwStore};
    use proptest::prelude::*;

    fn records() -> Vec<LogRecord> {
        let store = KvStore::new();
        vec![
            LogRecord::execute(
                &store,
                1,
                9,
                120,
                Op::Put {
                    key: "x".into(),
                    value: "hello".into(),
                },
            ),
            LogRecord::execute(&store, 2, 1, 3, Op::Delete { key: "y".into() }),
            LogRecord::execute(
                &store,
                2,
                2,
                4,
                Op::Append {
                    key: "z".into(),
                    value: "ab".into(),
                },
            ),
        ]
    }

    fn snapshot_bytes(lsn: LogIndex) -> Vec<u8> {
        let mut store = LwwStore::new();
        for record in records() {
            store.apply(&record.effect, record.version());
        }
        let mut payload = Vec::new();
        encode_state(&store, &DedupTable::new(8), &mut payload);
        let mut bytes = Vec::new();
        wal::encode_record(lsn, EPOCH, RecordKind::Snapshot, &payload, &mut bytes);
        bytes
    }

    fn samples() -> Vec<Message> {
        vec![
            Message::Heartbeat {
                leader_lsn: 12,
                commit_lsn: 11,
            },
            Message::HeartbeatAck { last_lsn: 12 },
            Message::Ship {
                from_lsn: 5,
                records: records(),
                commit_lsn: 4,
            },
            Message::Ship {
                from_lsn: 1,
                records: vec![],
                commit_lsn: 0,
            },
            Message::Ack { lsn: 7 },
            Message::Nack { expected_lsn: 5 },
            Message::Rejoin { last_lsn: 3 },
            Message::Snapshot {
                lsn: 900,
                bytes: snapshot_bytes(900),
            },
        ]
    }

    fn encode(m: &Message) -> Vec<u8> {
        let mut bytes = Vec::new();
        m.encode_wire(&mut bytes);
        bytes
    }

    #[test]
    fn wire_round_trip() {
        for m in samples() {
            assert_eq!(Message::decode_wire(&encode(&m)), Ok(m.clone()), "{m}");
            assert_eq!(m.term(), EPOCH);
        }
    }

    #[test]
    fn display_and_kind_names_are_stable() {
        let samples = samples();
        let snapshot_len = snapshot_bytes(900).len();
        let lines: Vec<String> = samples.iter().map(|m| m.to_string()).collect();
        assert_eq!(
            lines,
            vec![
                "Heartbeat lsn=12 commit=11".to_owned(),
                "HeartbeatAck lsn=12".into(),
                "Ship from=5 records=3 commit=4".into(),
                "Ship from=1 records=0 commit=0".into(),
                "Ack lsn=7".into(),
                "Nack expected=5".into(),
                "Rejoin lsn=3".into(),
                format!("Snapshot lsn=900 bytes={snapshot_len}"),
            ]
        );
        let kinds: Vec<&str> = samples.iter().map(Message::kind_name).collect();
        assert_eq!(
            kinds,
            [
                "Heartbeat",
                "HeartbeatAck",
                "Ship",
                "Ship",
                "Ack",
                "Nack",
                "Rejoin",
                "Snapshot"
            ]
        );
    }

    /// W11 R3: a single flipped bit anywhere in any message is caught by a CRC before anything
    /// in it can be used.
    #[test]
    fn every_single_bit_flip_is_detected() {
        for m in samples() {
            let bytes = encode(&m);
            for bit in 0..bytes.len() * 8 {
                let mut corrupt = bytes.clone();
                corrupt[bit / 8] ^= 1 << (bit % 8);
                assert!(
                    decode_message(&corrupt).is_err(),
                    "{m}: bit {bit} flip went undetected"
                );
            }
        }
    }

    /// Re-frame a message's payload after `mutate` so the outer CRC is valid again: the
    /// corruption now sits only inside a nested record.
    fn reframe(bytes: &[u8], mutate: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
        let (record, _) = wal::decode_record(bytes).unwrap();
        let mut payload = record.payload.to_vec();
        mutate(&mut payload);
        let mut out = Vec::new();
        wal::encode_record(
            record.index,
            record.term,
            RecordKind::Message,
            &payload,
            &mut out,
        );
        out
    }

    #[test]
    fn a_corrupt_nested_record_inside_an_intact_frame_is_told_apart() {
        let ship = encode(&samples()[2]);
        let bad = reframe(&ship, |p| {
            let at = p.len() - 2;
            p[at] ^= 0x04;
        });
        assert!(matches!(
            decode_message(&bad),
            Err(WireError::NestedRecord(
                DecodeError::ChecksumMismatch { .. }
            ))
        ));
        assert!(matches!(
            Message::decode_wire(&bad),
            Err(DecodeError::ChecksumMismatch { .. })
        ));
        let snapshot = encode(&samples()[7]);
        let bad = reframe(&snapshot, |p| p[40] ^= 0x80);
        assert!(matches!(
            decode_message(&bad),
            Err(WireError::NestedRecord(_))
        ));
        // A nested record at the wrong LSN.
        let bad = reframe(&ship, |p| p[1] ^= 0x01);
        assert!(matches!(
            decode_message(&bad),
            Err(WireError::NestedRecord(_))
        ));
        // The outer frame itself flipped.
        let mut flipped = ship.clone();
        flipped[30] ^= 1;
        assert!(matches!(decode_message(&flipped), Err(WireError::Frame(_))));
    }

    #[test]
    fn truncations_and_trailing_bytes_are_rejected() {
        for m in samples() {
            let bytes = encode(&m);
            for cut in 0..bytes.len() {
                assert!(decode_message(&bytes[..cut]).is_err(), "{m} cut {cut}");
            }
            let mut longer = bytes.clone();
            longer.push(0);
            assert!(decode_message(&longer).is_err(), "{m} trailing byte");
        }
    }

    proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = decode_message(&bytes);
        }

        /// Valid frames around arbitrary payloads reach the payload parser: it must not panic
        /// either.
        #[test]
        fn payload_decode_never_panics(
            tag in 0u8..9,
            body in proptest::collection::vec(any::<u8>(), 0..300),
        ) {
            let mut payload = vec![tag];
            payload.extend_from_slice(&body);
            let mut bytes = Vec::new();
            wal::encode_record(0, EPOCH, RecordKind::Message, &payload, &mut bytes);
            let _ = decode_message(&bytes);
        }

        #[test]
        fn mutated_valid_messages_never_panic(
            which in 0usize..8,
            edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4),
        ) {
            let m = &samples()[which];
            let bytes = encode(m);
            let mutated = reframe(&bytes, |p| {
                for (at, v) in edits {
                    if !p.is_empty() {
                        let at = at % p.len();
                        p[at] = v;
                    }
                }
            });
            let _ = decode_message(&mutated);
        }
    }
}
