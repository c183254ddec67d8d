//! The replicated log's records: what the leader executed, and the effect every replica applies.
//!
//! The leader *executes* a client write against its own store when it accepts it and logs the
//! outcome, so no replica ever re-executes an operation: a record carries the original request
//! (`client`, `seq`, the writer's `timestamp`, the [`Op`]), the [`OpResult`] the client is told,
//! and the [`Effect`] to apply. Effects are ordered by last-writer-wins [`Stamp`]s, which is what
//! lets replicas converge whatever order effects reach them in.
//!
//! On disk and on the wire a record is the payload of one WAL record of kind `Entry` whose
//! `index` is the record's LSN and whose `term` is the constant [`EPOCH`].

use std::fmt;

use crate::codec::{self, CodecError, Reader};
use crate::kv::{KvStore, Op, OpResult};
use crate::types::{ClientId, LogIndex, Seq, Term, Tick};
use crate::wal::{self, RecordKind, RECORD_HEADER_BYTES, RECORD_PAYLOAD_BYTES_MAX};

/// The leader's epoch. The leader is fixed, so there is exactly one: every record, message and
/// view carries term 1.
pub const EPOCH: Term = 1;

/// Largest payload of one log record. It leaves room for a Ship's own header around the nested
/// record, so any record the leader writes can always be shipped alone.
///
/// A record carries the op *and* its effect, so a write whose key and values come close to the
/// KV store's per-string limits could exceed this; [`LogRecord::encode`] asserts it, as
/// [`KvStore::apply`] asserts its own bounds (a workload that breaks them is a workload bug).
pub const RECORD_BYTES_MAX: usize = RECORD_PAYLOAD_BYTES_MAX - RECORD_HEADER_BYTES - 64;

/// Which write last set a key, for last-writer-wins: the writer's clock and the request's
/// identity. Together with the value written it forms the key's [`Stamp`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    /// The writer's clock ([`crate::node::ClientRequest::timestamp`]).
    pub timestamp: Tick,
    /// The writing client.
    pub client: ClientId,
    /// The write's sequence number.
    pub seq: Seq,
}

impl Version {
    /// The last-writer-wins stamp of this write when it leaves the key holding `value`
    /// (`None`: a tombstone).
    pub fn stamp<'a>(&self, value: Option<&'a str>) -> Stamp<'a> {
        Stamp {
            timestamp: self.timestamp,
            value: value.map_or(&[][..], str::as_bytes),
            client: self.client,
            seq: self.seq,
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ts={} c{}#{}", self.timestamp, self.client, self.seq)
    }
}

/// The last-writer-wins order of writes to one key. The derived order compares the fields in
/// declaration order: the writer's timestamp first, then the tiebreak — the value bytes
/// (a tombstone's are empty), the client id, the sequence number. `(client, seq)` names one
/// write, so two different writes never compare equal and the order is total: every replica
/// picks the same winner whatever order the writes arrive in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Stamp<'a> {
    /// The writer's clock.
    pub timestamp: Tick,
    /// The value written (empty for a tombstone).
    pub value: &'a [u8],
    /// The writing client.
    pub client: ClientId,
    /// The write's sequence number.
    pub seq: Seq,
}

/// What a write does to the store, decided once by the leader when it executed the write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// The key now holds `value` (a put, an append — carrying the whole new value — or a
    /// successful cas).
    Set {
        /// The key written.
        key: String,
        /// Its new value.
        value: String,
    },
    /// The key was deleted; replicas keep a tombstone with the write's stamp so that an older
    /// set arriving later cannot resurrect it.
    Tombstone {
        /// The key deleted.
        key: String,
    },
    /// The write changed nothing (a failed cas, a delete of an absent key).
    None,
}

impl Effect {
    /// The key the effect touches, if any.
    pub fn key(&self) -> Option<&str> {
        match self {
            Effect::Set { key, .. } | Effect::Tombstone { key } => Some(key),
            Effect::None => None,
        }
    }
}

impl fmt::Display for Effect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Effect::Set { key, value } => write!(f, "set k={key} v={value}"),
            Effect::Tombstone { key } => write!(f, "tombstone k={key}"),
            Effect::None => f.write_str("none"),
        }
    }
}

// Wire tags of the effect (stable: they appear in WALs). The key is never stored twice: it is
// always the op's key. "Set from op" saves storing a value the op already carries.
const EFFECT_TAG_NONE: u8 = 0;
const EFFECT_TAG_TOMBSTONE: u8 = 1;
const EFFECT_TAG_SET: u8 = 2;
const EFFECT_TAG_SET_FROM_OP: u8 = 3;

/// One record of the replicated log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    /// The client that sent the write.
    pub client: ClientId,
    /// Its sequence number.
    pub seq: Seq,
    /// The writer's clock when it sent the write; orders the effect by last-writer-wins.
    pub timestamp: Tick,
    /// The write as the client sent it.
    pub op: Op,
    /// What the leader told (or will tell) the client.
    pub result: OpResult,
    /// What every replica applies.
    pub effect: Effect,
}

impl LogRecord {
    /// Execute write `op` against `store` (the leader's current values) without changing it:
    /// the result and effect are those of [`KvStore::apply`] on the key's current value.
    ///
    /// Effects: put, append and a successful cas set the key's whole new value; a delete of a
    /// present key is a tombstone; a failed cas or a delete of an absent key changes nothing.
    ///
    /// # Panics
    /// If `op` is a read (reads are never logged), or if it breaks the store's size bounds.
    pub fn execute(
        store: &KvStore,
        client: ClientId,
        seq: Seq,
        timestamp: Tick,
        op: Op,
    ) -> LogRecord {
        assert!(
            !op.is_read(),
            "replication: c{client}#{seq} {op} is a read; reads are never logged"
        );
        let key = op.key().to_owned();
        // Run the op through the real state machine on a one-key copy, so the semantics of
        // every operation stay defined in exactly one place (`KvStore::apply`).
        let mut scratch = KvStore::new();
        if let Some(value) = store.get(&key) {
            scratch.apply(&Op::Put {
                key: key.clone(),
                value: value.to_owned(),
            });
        }
        let result = scratch.apply(&op);
        let effect = match (&op, &result) {
            (Op::Delete { .. }, OpResult::Ok) => Effect::Tombstone { key },
            (Op::Put { .. } | Op::Append { .. } | Op::Cas { .. }, OpResult::Ok) => {
                let value = scratch
                    .get(&key)
                    .expect("a successful put/append/cas leaves the key present")
                    .to_owned();
                Effect::Set { key, value }
            }
            _ => Effect::None,
        };
        LogRecord {
            client,
            seq,
            timestamp,
            op,
            result,
            effect,
        }
    }

    /// The record's last-writer-wins version.
    pub fn version(&self) -> Version {
        Version {
            timestamp: self.timestamp,
            client: self.client,
            seq: self.seq,
        }
    }

    /// The value the op itself carries and a `Set` effect may reuse (put value, cas new value).
    fn op_value(&self) -> Option<&str> {
        match &self.op {
            Op::Put { value, .. } => Some(value),
            Op::Cas { new, .. } => Some(new),
            _ => None,
        }
    }

    /// Append the record's encoding (the payload of an `Entry` WAL record):
    /// `client u64, seq u64, timestamp u64, op, result, effect tag [, value]`.
    ///
    /// # Panics
    /// If the effect's key is not the op's key (a caller bug), or if the encoding exceeds
    /// [`RECORD_BYTES_MAX`].
    pub fn encode(&self, out: &mut Vec<u8>) {
        let start = out.len();
        codec::put_u64(out, self.client);
        codec::put_u64(out, self.seq);
        codec::put_u64(out, self.timestamp);
        self.op.encode(out);
        self.result.encode(out);
        if let Some(key) = self.effect.key() {
            assert_eq!(
                key,
                self.op.key(),
                "replication: the effect of c{}#{} touches another key than its op",
                self.client,
                self.seq
            );
        }
        match &self.effect {
            Effect::None => codec::put_u8(out, EFFECT_TAG_NONE),
            Effect::Tombstone { .. } => codec::put_u8(out, EFFECT_TAG_TOMBSTONE),
            Effect::Set { value, .. } if self.op_value() == Some(value.as_str()) => {
                codec::put_u8(out, EFFECT_TAG_SET_FROM_OP)
            }
            Effect::Set { value, .. } => {
                codec::put_u8(out, EFFECT_TAG_SET);
                codec::put_str(out, value);
            }
        }
        let bytes = out.len() - start;
        assert!(
            bytes <= RECORD_BYTES_MAX,
            "replication: record of c{}#{} is {bytes} bytes, over RECORD_BYTES_MAX \
             ({RECORD_BYTES_MAX}); the workload's keys and values are too large",
            self.client,
            self.seq
        );
    }

    /// Decode a record written by [`LogRecord::encode`]; the whole payload must be consumed.
    pub fn decode(payload: &[u8]) -> Result<LogRecord, CodecError> {
        let mut r = Reader::new(payload);
        let client = r.u64()?;
        let seq = r.u64()?;
        let timestamp = r.u64()?;
        let op = Op::decode(&mut r)?;
        if op.is_read() {
            return Err(CodecError::Invalid {
                what: "a log record holds a read",
            });
        }
        let result = OpResult::decode(&mut r)?;
        let key = op.key().to_owned();
        let mut record = LogRecord {
            client,
            seq,
            timestamp,
            op,
            result,
            effect: Effect::None,
        };
        record.effect = match r.u8()? {
            EFFECT_TAG_NONE => Effect::None,
            EFFECT_TAG_TOMBSTONE => Effect::Tombstone { key },
            EFFECT_TAG_SET => Effect::Set {
                key,
                value: r.string()?,
            },
            EFFECT_TAG_SET_FROM_OP => match record.op_value() {
                Some(value) => Effect::Set {
                    value: value.to_owned(),
                    key,
                },
                None => {
                    return Err(CodecError::Invalid {
                        what: "effect reuses the value of an op that carries none",
                    })
                }
            },
            tag => {
                return Err(CodecError::InvalidTag {
                    what: "effect",
                    tag,
                })
            }
        };
        r.finish()?;
        Ok(record)
    }

    /// Append the record as one WAL `Entry` record at `lsn`. `scratch` is a reusable buffer for
    /// the payload.
    pub fn encode_record(&self, lsn: LogIndex, scratch: &mut Vec<u8>, out: &mut Vec<u8>) {
        assert!(lsn >= 1, "replication: LSNs start at 1");
        scratch.clear();
        self.encode(scratch);
        wal::encode_record(lsn, EPOCH, RecordKind::Entry, scratch, out);
    }
}

impl fmt::Display for LogRecord {
    /// `c1#3 ts=120 Put k=x v=1 -> ok (set k=x v=1)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "c{}#{} ts={} {} -> {} ({})",
            self.client, self.seq, self.timestamp, self.op, self.result, self.effect
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> String {
        v.to_owned()
    }

    fn store_with(key: &str, value: &str) -> KvStore {
        let mut store = KvStore::new();
        store.apply(&Op::Put {
            key: s(key),
            value: s(value),
        });
        store
    }

    #[test]
    fn execution_reuses_the_store_semantics() {
        let store = store_with("x", "ab");
        let cases = [
            (
                Op::Put {
                    key: s("x"),
                    value: s("1"),
                },
                OpResult::Ok,
                Effect::Set {
                    key: s("x"),
                    value: s("1"),
                },
            ),
            (
                Op::Append {
                    key: s("x"),
                    value: s("c"),
                },
                OpResult::Ok,
                Effect::Set {
                    key: s("x"),
                    value: s("abc"),
                },
            ),
            (
                Op::Delete { key: s("x") },
                OpResult::Ok,
                Effect::Tombstone { key: s("x") },
            ),
            (Op::Delete { key: s("y") }, OpResult::NotFound, Effect::None),
            (
                Op::Cas {
                    key: s("x"),
                    expected: Some(s("ab")),
                    new: s("z"),
                },
                OpResult::Ok,
                Effect::Set {
                    key: s("x"),
                    value: s("z"),
                },
            ),
            (
                Op::Cas {
                    key: s("x"),
                    expected: None,
                    new: s("z"),
                },
                OpResult::CasMismatch {
                    current: Some(s("ab")),
                },
                Effect::None,
            ),
        ];
        for (op, result, effect) in cases {
            let record = LogRecord::execute(&store, 4, 2, 99, op.clone());
            assert_eq!((&record.result, &record.effect), (&result, &effect), "{op}");
            assert_eq!(
                record.version(),
                Version {
                    timestamp: 99,
                    client: 4,
                    seq: 2
                }
            );
            let mut payload = Vec::new();
            record.encode(&mut payload);
            assert_eq!(LogRecord::decode(&payload), Ok(record.clone()), "{op}");
            for cut in 0..payload.len() {
                assert!(
                    LogRecord::decode(&payload[..cut]).is_err(),
                    "{op} cut {cut}"
                );
            }
        }
        assert_eq!(
            store.get("x"),
            Some("ab"),
            "execution does not change the store"
        );
    }

    #[test]
    #[should_panic(expected = "reads are never logged")]
    fn reads_are_not_executed() {
        LogRecord::execute(&KvStore::new(), 1, 1, 0, Op::Get { key: s("x") });
    }

    #[test]
    fn decode_rejects_inconsistent_records() {
        let record = LogRecord::execute(
            &KvStore::new(),
            1,
            1,
            0,
            Op::Append {
                key: s("k"),
                value: s("v"),
            },
        );
        let mut payload = Vec::new();
        record.encode(&mut payload);
        // An append's effect carries its value explicitly; claiming "from op" is invalid.
        let last_tag = payload.len() - (4 + 1) - 1;
        assert_eq!(payload[last_tag], EFFECT_TAG_SET);
        let mut bad = payload[..last_tag].to_vec();
        bad.push(EFFECT_TAG_SET_FROM_OP);
        assert!(matches!(
            LogRecord::decode(&bad),
            Err(CodecError::Invalid { .. })
        ));
        let mut trailing = payload.clone();
        trailing.push(0);
        assert!(LogRecord::decode(&trailing).is_err());
    }

    #[test]
    fn stamps_order_by_timestamp_then_value_then_client_then_seq() {
        let v = |timestamp, client, seq| Version {
            timestamp,
            client,
            seq,
        };
        // The timestamp dominates everything.
        assert!(v(2, 1, 1).stamp(Some("a")) > v(1, 9, 9).stamp(Some("zzz")));
        // Same timestamp: the larger value wins, whoever wrote it.
        assert!(v(5, 1, 1).stamp(Some("b")) > v(5, 9, 9).stamp(Some("a")));
        assert!(v(5, 1, 1).stamp(Some("ab")) > v(5, 9, 9).stamp(Some("a")));
        // A tombstone ranks as the empty value.
        assert!(v(5, 1, 1).stamp(Some("a")) > v(5, 9, 9).stamp(None));
        // Same timestamp and value: client id, then seq.
        assert!(v(5, 2, 1).stamp(Some("a")) > v(5, 1, 9).stamp(Some("a")));
        assert!(v(5, 2, 3).stamp(Some("a")) > v(5, 2, 2).stamp(Some("a")));
        assert_eq!(v(5, 2, 3).stamp(Some("a")), v(5, 2, 3).stamp(Some("a")));
    }
}
