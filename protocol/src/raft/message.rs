//! Raft log entries and messages, and their wire form.
//!
//! On the simulated wire every message is one WAL record of kind `Message` (see [`crate::wal`]),
//! so a flipped bit anywhere fails its CRC. AppendEntries carries its entries as nested WAL
//! records of kind `Entry` — the very framing the log uses on disk, as W11 R2 asks ("ship
//! length-prefixed WAL records") — so each shipped entry is checksummed on its own as well, and
//! the receiver verifies every one before any of them can reach its log. InstallSnapshot nests
//! its chunk the same way, as one WAL record of kind `Snapshot` (see [`super::snapshot`]).

use std::fmt;
use std::sync::Arc;

use super::snapshot::SnapshotChunk;
use crate::codec::{self, CodecError, Reader};
use crate::kv::Op;
use crate::node::WireMessage;
use crate::types::{ClientId, LogIndex, Seq, Term, Tick};
use crate::wal::{self, DecodeError, RecordKind};

/// What a log entry asks the state machine to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// The empty entry a new leader appends to commit its predecessors' entries (§5.4.2, §8).
    Noop,
    /// A client operation, deduplicated by `(client, seq)` when applied.
    Client {
        /// The client that sent it.
        client: ClientId,
        /// Its sequence number.
        seq: Seq,
        /// The operation, shared: an entry is copied into every AppendEntries that carries it,
        /// and into the applied record, without copying its strings.
        op: Arc<Op>,
    },
}

impl Command {
    /// Bytes [`Command::encode`] appends (the payload size of an `Entry` record).
    pub fn encoded_len(&self) -> usize {
        match self {
            Command::Noop => 1,
            Command::Client { op, .. } => 17 + op.encoded_len(),
        }
    }

    /// Append the command's encoding (the payload of an `Entry` record).
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Command::Noop => codec::put_u8(out, 0),
            Command::Client { client, seq, op } => {
                // Tag, client and seq as one fixed-size copy (as `put_u8`, `put_u64` × 2).
                let mut head = [1u8; 17];
                head[1..9].copy_from_slice(&client.to_le_bytes());
                head[9..17].copy_from_slice(&seq.to_le_bytes());
                out.extend_from_slice(&head);
                op.encode(out);
            }
        }
    }

    /// Decode a command; the whole payload must be consumed.
    pub fn decode(payload: &[u8]) -> Result<Command, CodecError> {
        let mut r = Reader::new(payload);
        let command = match r.u8()? {
            0 => Command::Noop,
            1 => Command::Client {
                client: r.u64()?,
                seq: r.u64()?,
                op: Arc::new(Op::decode(&mut r)?),
            },
            tag => {
                return Err(CodecError::InvalidTag {
                    what: "command",
                    tag,
                })
            }
        };
        r.finish()?;
        Ok(command)
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Command::Noop => f.write_str("noop"),
            Command::Client { client, seq, op } => write!(f, "c{client}#{seq} {op}"),
        }
    }
}

/// One log entry. Its index is its position in the log, so it is not stored.
///
/// An entry can keep its own WAL record: the same bytes are written on every node that appends
/// it (and again whenever a compacted WAL is rewritten), so the leader frames and checksums a
/// new entry once and every copy of it — in its log, in each AppendEntries, in each follower's
/// log — writes the kept bytes instead of encoding the command and computing the CRC again.
/// The record is shared, not copied, and does not take part in equality or `Debug`.
/// An entry is never changed once it is in a log or a message, which is what keeps the record
/// true to its fields (debug builds check each use against a fresh framing).
#[derive(Clone)]
pub struct Entry {
    /// The term of the leader that created it.
    pub term: Term,
    /// What it does when applied.
    pub command: Command,
    /// The entry's WAL record, when it was framed by [`Entry::encode_record_and_keep`].
    record: Option<Arc<[u8]>>,
}

impl Entry {
    /// An entry that keeps no record yet.
    pub fn new(term: Term, command: Command) -> Entry {
        Entry {
            term,
            command,
            record: None,
        }
    }

    /// Append the entry as one WAL `Entry` record at `index`: the kept record when it was
    /// framed at `index`, else a fresh framing.
    pub fn encode_record(&self, index: LogIndex, out: &mut Vec<u8>) {
        match self.kept_record(index) {
            Some(record) => out.extend_from_slice(record),
            None => self.frame_record(index, out),
        }
    }

    /// [`Entry::encode_record`], and keep the record when none was kept yet. A node calls this
    /// when it appends the entry to its log, so the entries it ships carry their record.
    pub(crate) fn encode_record_and_keep(&mut self, index: LogIndex, out: &mut Vec<u8>) {
        if let Some(record) = self.kept_record(index) {
            out.extend_from_slice(record);
            return;
        }
        let start = out.len();
        self.frame_record(index, out);
        self.record = Some(Arc::from(&out[start..]));
    }

    /// The kept record, if it was framed at `index` with this entry's term.
    fn kept_record(&self, index: LogIndex) -> Option<&[u8]> {
        let record = self.record.as_deref()?;
        if wal::encoded_index_and_term(record) != (index, self.term) {
            return None;
        }
        debug_assert!(
            {
                let mut fresh = Vec::new();
                self.frame_record(index, &mut fresh);
                fresh == record
            },
            "the record kept with entry {index} no longer matches the entry"
        );
        Some(record)
    }

    /// Frame the entry as one WAL `Entry` record at `index`. The command is encoded straight
    /// into `out`, in the record's payload position, with no buffer of its own to copy.
    fn frame_record(&self, index: LogIndex, out: &mut Vec<u8>) {
        wal::encode_record_with(
            index,
            self.term,
            RecordKind::Entry,
            self.command.encoded_len(),
            out,
            |out| self.command.encode(out),
        );
    }
}

/// Entries are equal when their terms and commands are; a kept record is only a cache.
impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.term == other.term && self.command == other.command
    }
}

impl Eq for Entry {}

impl fmt::Debug for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Entry")
            .field("term", &self.term)
            .field("command", &self.command)
            .finish()
    }
}

/// The entries an AppendEntries carries: an immutable run shared by every copy of the message.
/// A leader sends the same run to each follower that stands at the same index, and the network
/// may duplicate a message, so a copy never copies (or allocates) the entries; an empty run (a
/// heartbeat) holds no allocation at all. Compares, prints and reads as the slice it holds.
///
/// The run is behind a thin pointer (an `Arc<[_]>` would carry the length in the pointer too):
/// every message moves through the simulator's queues by value, and this keeps AppendEntries
/// (and so every message) at 56 bytes instead of 64. A run of one entry, as a leader ships
/// each new entry when it arrives, is held inline, so it costs one allocation, as before.
#[derive(Clone, Default)]
pub struct Entries(Option<Arc<Run>>);

/// The entries of a non-empty [`Entries`].
enum Run {
    One(Entry),
    Many(Vec<Entry>),
}

impl std::ops::Deref for Entries {
    type Target = [Entry];

    fn deref(&self) -> &[Entry] {
        match self.0.as_deref() {
            None => &[],
            Some(Run::One(entry)) => std::slice::from_ref(entry),
            Some(Run::Many(entries)) => entries,
        }
    }
}

impl Entries {
    /// Make this run hold `entries` (a copy of each, sharing its command and record). The run's
    /// allocation is reused when nothing else holds it any more — every message that carried
    /// it was delivered — and it has the right shape: a leader that ships each new entry as it
    /// arrives then allocates (and later frees) no run per entry.
    pub(crate) fn refill(&mut self, entries: &[Entry]) {
        if let Some(run) = self.0.as_mut().and_then(Arc::get_mut) {
            match (run, entries) {
                (Run::One(entry), [new]) => {
                    *entry = new.clone();
                    return;
                }
                (Run::Many(held), [_, _, ..]) => {
                    held.clear();
                    held.extend_from_slice(entries);
                    return;
                }
                _ => {}
            }
        }
        *self = Entries::from(entries);
    }
}

impl From<&[Entry]> for Entries {
    fn from(entries: &[Entry]) -> Entries {
        Entries(match entries {
            [] => None,
            [entry] => Some(Arc::new(Run::One(entry.clone()))),
            _ => Some(Arc::new(Run::Many(entries.to_vec()))),
        })
    }
}

impl From<Vec<Entry>> for Entries {
    fn from(mut entries: Vec<Entry>) -> Entries {
        Entries(match entries.len() {
            0 => None,
            1 => entries.pop().map(|entry| Arc::new(Run::One(entry))),
            _ => Some(Arc::new(Run::Many(entries))),
        })
    }
}

impl PartialEq for Entries {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl Eq for Entries {}

impl fmt::Debug for Entries {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

/// Where a follower tells the leader to resume after a failed consistency check (the
/// "fast backup" of §5.3's closing paragraph): one round trip per conflicting *term* instead of
/// one per entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConflictHint {
    /// The term of the follower's entry at `prev_index`, if it has one there.
    pub term: Option<Term>,
    /// The first index the follower holds with `term`, or its last index + 1 when it has no
    /// entry at `prev_index`.
    pub index: LogIndex,
}

/// A Raft message. The sender's id travels in the transport, not in the message.
///
/// `repr(u8)` lays every variant out as a C struct after the tag, so the term, which comes
/// first in each variant but for a flag packed beside the tag, sits at the same offset in all
/// of them: the fencing check every message goes through ([`Message::term`]) is one load rather
/// than a jump on the variant. Every message is 56 bytes; see also [`Entries`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[repr(u8)]
pub enum Message {
    /// Ask for a vote (§5.2), or with `pre_vote` ask whether a vote *would* be granted in
    /// `term` without anyone changing term (thesis §9.6).
    RequestVote {
        /// The candidate's term (for a pre-vote: the term it would campaign in).
        term: Term,
        /// Index of the candidate's last log entry (§5.4.1).
        last_index: LogIndex,
        /// Term of the candidate's last log entry.
        last_term: Term,
        /// Whether this is a pre-vote probe.
        pre_vote: bool,
    },
    /// Answer to [`Message::RequestVote`].
    Vote {
        /// For a real vote, the voter's current term; for a pre-vote, the term asked about when
        /// granted, the voter's term when refused.
        term: Term,
        /// Whether the vote was granted.
        granted: bool,
        /// Whether it answers a pre-vote.
        pre_vote: bool,
    },
    /// Replicate entries and carry heartbeats (§5.3).
    AppendEntries {
        /// The leader's term: the fencing token every receiver checks.
        term: Term,
        /// Index of the entry preceding `entries`.
        prev_index: LogIndex,
        /// Term of that entry.
        prev_term: Term,
        /// Entries to append, at `prev_index + 1 ..`.
        entries: Entries,
        /// The leader's commit index.
        commit: LogIndex,
        /// The leader's clock when it sent this; echoed back so the leader can date its lease
        /// from the send, not from the (later) receipt.
        sent_at: Tick,
    },
    /// Answer to [`Message::AppendEntries`].
    AppendResponse {
        /// Whether the consistency check passed and the entries were appended. Declared
        /// before the term so that it packs beside the tag (see the `repr` note above).
        success: bool,
        /// The responder's current term.
        term: Term,
        /// On success, the index up to which the follower's log matches the leader's.
        match_index: LogIndex,
        /// On failure, where the leader should resume.
        hint: Option<ConflictHint>,
        /// `sent_at` of the request this answers.
        echo_sent_at: Tick,
    },
    /// Send a follower the leader's snapshot, one chunk at a time, because it needs entries the
    /// leader has compacted away (§7).
    InstallSnapshot {
        /// The leader's term.
        term: Term,
        /// The chunk: the snapshot's last included index and term, the offset, the data, and
        /// whether it is the last one. Boxed: inline it would make every message a third
        /// larger, and snapshot chunks are rare.
        chunk: Box<SnapshotChunk>,
    },
    /// Answer to [`Message::InstallSnapshot`].
    SnapshotResponse {
        /// The responder's current term.
        term: Term,
        /// The snapshot's last included index, as the chunk said.
        last_index: LogIndex,
        /// The snapshot's last included term.
        last_term: Term,
        /// The follower holds the snapshot's state: it installed it, or its commit index had
        /// already reached `last_index`.
        installed: bool,
        /// When not `installed`: the offset of the next chunk the follower wants (0: start
        /// over).
        next_offset: u64,
    },
}

// Messages move by value through the simulator's queues: keep them small (see above).
const _: () = assert!(std::mem::size_of::<Message>() <= 56);

impl Message {
    /// The term the message carries (its fencing token).
    pub fn term(&self) -> Term {
        match self {
            Message::RequestVote { term, .. }
            | Message::Vote { term, .. }
            | Message::AppendEntries { term, .. }
            | Message::AppendResponse { term, .. }
            | Message::InstallSnapshot { term, .. }
            | Message::SnapshotResponse { term, .. } => *term,
        }
    }

    /// A short stable type name, used by traces and scenario message counts.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Message::RequestVote {
                pre_vote: false, ..
            } => "RequestVote",
            Message::RequestVote { pre_vote: true, .. } => "PreVote",
            Message::Vote {
                pre_vote: false, ..
            } => "Vote",
            Message::Vote { pre_vote: true, .. } => "PreVoteResponse",
            Message::AppendEntries { .. } => "AppendEntries",
            Message::AppendResponse { .. } => "AppendResponse",
            Message::InstallSnapshot { .. } => "InstallSnapshot",
            Message::SnapshotResponse { .. } => "SnapshotResponse",
        }
    }
}

impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Message::RequestVote {
                term,
                last_index,
                last_term,
                ..
            } => write!(
                f,
                "{} term={term} last={last_term}/{last_index}",
                self.kind_name()
            ),
            Message::Vote { term, granted, .. } => write!(
                f,
                "{} term={term} {}",
                self.kind_name(),
                if *granted { "granted" } else { "refused" }
            ),
            Message::AppendEntries {
                term,
                prev_index,
                prev_term,
                entries,
                commit,
                ..
            } => write!(
                f,
                "AppendEntries term={term} prev={prev_term}/{prev_index} entries={} commit={commit}",
                entries.len()
            ),
            Message::AppendResponse {
                term,
                success: true,
                match_index,
                ..
            } => write!(f, "AppendResponse term={term} ok match={match_index}"),
            Message::AppendResponse { term, hint, .. } => {
                write!(f, "AppendResponse term={term} reject")?;
                if let Some(h) = hint {
                    match h.term {
                        Some(t) => write!(f, " hint={t}/{}", h.index)?,
                        None => write!(f, " hint=-/{}", h.index)?,
                    }
                }
                Ok(())
            }
            Message::InstallSnapshot { term, chunk } => write!(
                f,
                "InstallSnapshot term={term} last={}/{} offset={} bytes={} done={}",
                chunk.last_term,
                chunk.last_index,
                chunk.offset,
                chunk.data.len(),
                chunk.done
            ),
            Message::SnapshotResponse {
                term,
                last_index,
                last_term,
                installed: true,
                ..
            } => write!(
                f,
                "SnapshotResponse term={term} last={last_term}/{last_index} installed"
            ),
            Message::SnapshotResponse {
                term,
                last_index,
                last_term,
                next_offset,
                ..
            } => write!(
                f,
                "SnapshotResponse term={term} last={last_term}/{last_index} next={next_offset}"
            ),
        }
    }
}

const TAG_REQUEST_VOTE: u8 = 1;
const TAG_VOTE: u8 = 2;
const TAG_APPEND: u8 = 3;
const TAG_APPEND_RESPONSE: u8 = 4;
const TAG_INSTALL_SNAPSHOT: u8 = 5;
const TAG_SNAPSHOT_RESPONSE: u8 = 6;

/// Largest number of entries a decoded AppendEntries may claim; bounds work on hostile input.
pub const WIRE_ENTRIES_COUNT_MAX: u32 = 1 << 16;

fn codec_err(_: CodecError) -> DecodeError {
    DecodeError::Malformed {
        reason: "message payload does not parse",
    }
}

impl WireMessage for Message {
    fn encode_wire(&self, out: &mut Vec<u8>) {
        // The payload is written in place inside the record (no buffer of its own to copy).
        wal::encode_record_with(
            0,
            self.term(),
            RecordKind::Message,
            64,
            out,
            |payload| match self {
                Message::RequestVote {
                    last_index,
                    last_term,
                    pre_vote,
                    ..
                } => {
                    codec::put_u8(payload, TAG_REQUEST_VOTE);
                    codec::put_u64(payload, *last_index);
                    codec::put_u64(payload, *last_term);
                    codec::put_u8(payload, u8::from(*pre_vote));
                }
                Message::Vote {
                    granted, pre_vote, ..
                } => {
                    codec::put_u8(payload, TAG_VOTE);
                    codec::put_u8(payload, u8::from(*granted));
                    codec::put_u8(payload, u8::from(*pre_vote));
                }
                Message::AppendEntries {
                    prev_index,
                    prev_term,
                    entries,
                    commit,
                    sent_at,
                    ..
                } => {
                    codec::put_u8(payload, TAG_APPEND);
                    codec::put_u64(payload, *prev_index);
                    codec::put_u64(payload, *prev_term);
                    codec::put_u64(payload, *commit);
                    codec::put_u64(payload, *sent_at);
                    codec::put_u32(payload, entries.len() as u32);
                    for (k, entry) in entries.iter().enumerate() {
                        entry.encode_record(*prev_index + 1 + k as u64, payload);
                    }
                }
                Message::AppendResponse {
                    success,
                    match_index,
                    hint,
                    echo_sent_at,
                    ..
                } => {
                    codec::put_u8(payload, TAG_APPEND_RESPONSE);
                    codec::put_u8(payload, u8::from(*success));
                    codec::put_u64(payload, *match_index);
                    match hint {
                        None => codec::put_u8(payload, 0),
                        Some(h) => {
                            codec::put_u8(payload, 1);
                            codec::put_u64(payload, h.term.unwrap_or(0));
                            codec::put_u8(payload, u8::from(h.term.is_some()));
                            codec::put_u64(payload, h.index);
                        }
                    }
                    codec::put_u64(payload, *echo_sent_at);
                }
                Message::InstallSnapshot { chunk, .. } => {
                    codec::put_u8(payload, TAG_INSTALL_SNAPSHOT);
                    chunk.encode_record(payload);
                }
                Message::SnapshotResponse {
                    last_index,
                    last_term,
                    installed,
                    next_offset,
                    ..
                } => {
                    codec::put_u8(payload, TAG_SNAPSHOT_RESPONSE);
                    codec::put_u64(payload, *last_index);
                    codec::put_u64(payload, *last_term);
                    codec::put_u8(payload, u8::from(*installed));
                    codec::put_u64(payload, *next_offset);
                }
            },
        );
    }

    fn decode_wire(bytes: &[u8]) -> Result<Message, DecodeError> {
        let (record, used) = wal::decode_record(bytes)?;
        if used != bytes.len() {
            return Err(DecodeError::Malformed {
                reason: "bytes after the message record",
            });
        }
        if record.kind != RecordKind::Message {
            return Err(DecodeError::Malformed {
                reason: "record is not a message",
            });
        }
        let term = record.term;
        let mut r = Reader::new(record.payload);
        let flag = |r: &mut Reader| -> Result<bool, DecodeError> {
            match r.u8().map_err(codec_err)? {
                0 => Ok(false),
                1 => Ok(true),
                _ => Err(DecodeError::Malformed {
                    reason: "boolean flag is not 0 or 1",
                }),
            }
        };
        let message = match r.u8().map_err(codec_err)? {
            TAG_REQUEST_VOTE => Message::RequestVote {
                term,
                last_index: r.u64().map_err(codec_err)?,
                last_term: r.u64().map_err(codec_err)?,
                pre_vote: flag(&mut r)?,
            },
            TAG_VOTE => Message::Vote {
                term,
                granted: flag(&mut r)?,
                pre_vote: flag(&mut r)?,
            },
            TAG_APPEND => {
                let prev_index = r.u64().map_err(codec_err)?;
                let prev_term = r.u64().map_err(codec_err)?;
                let commit = r.u64().map_err(codec_err)?;
                let sent_at = r.u64().map_err(codec_err)?;
                let count = r.u32().map_err(codec_err)?;
                if count > WIRE_ENTRIES_COUNT_MAX {
                    return Err(DecodeError::Malformed {
                        reason: "too many entries in AppendEntries",
                    });
                }
                let start = record.payload.len() - r.remaining();
                let mut rest = &record.payload[start..];
                let mut entries = Vec::with_capacity(count.min(1024) as usize);
                for k in 0..u64::from(count) {
                    let (entry_record, used) = wal::decode_record(rest)?;
                    if entry_record.kind != RecordKind::Entry
                        || entry_record.index != prev_index.wrapping_add(1 + k)
                    {
                        return Err(DecodeError::Malformed {
                            reason: "shipped entry has the wrong kind or index",
                        });
                    }
                    let command = Command::decode(entry_record.payload).map_err(codec_err)?;
                    entries.push(Entry::new(entry_record.term, command));
                    rest = &rest[used..];
                }
                if !rest.is_empty() {
                    return Err(DecodeError::Malformed {
                        reason: "bytes after the last shipped entry",
                    });
                }
                return Ok(Message::AppendEntries {
                    term,
                    prev_index,
                    prev_term,
                    entries: entries.into(),
                    commit,
                    sent_at,
                });
            }
            TAG_APPEND_RESPONSE => {
                let success = flag(&mut r)?;
                let match_index = r.u64().map_err(codec_err)?;
                let hint = if flag(&mut r)? {
                    let hint_term = r.u64().map_err(codec_err)?;
                    let has_term = flag(&mut r)?;
                    let index = r.u64().map_err(codec_err)?;
                    Some(ConflictHint {
                        term: has_term.then_some(hint_term),
                        index,
                    })
                } else {
                    None
                };
                Message::AppendResponse {
                    term,
                    success,
                    match_index,
                    hint,
                    echo_sent_at: r.u64().map_err(codec_err)?,
                }
            }
            TAG_INSTALL_SNAPSHOT => {
                let start = record.payload.len() - r.remaining();
                let rest = &record.payload[start..];
                let (chunk_record, used) = wal::decode_record(rest)?;
                if used != rest.len() {
                    return Err(DecodeError::Malformed {
                        reason: "bytes after the snapshot chunk",
                    });
                }
                return Ok(Message::InstallSnapshot {
                    term,
                    chunk: Box::new(SnapshotChunk::from_record(&chunk_record)?),
                });
            }
            TAG_SNAPSHOT_RESPONSE => Message::SnapshotResponse {
                term,
                last_index: r.u64().map_err(codec_err)?,
                last_term: r.u64().map_err(codec_err)?,
                installed: flag(&mut r)?,
                next_offset: r.u64().map_err(codec_err)?,
            },
            _ => {
                return Err(DecodeError::Malformed {
                    reason: "unknown message tag",
                })
            }
        };
        r.finish().map_err(codec_err)?;
        Ok(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn samples() -> Vec<Message> {
        vec![
            Message::RequestVote {
                term: 3,
                last_index: 7,
                last_term: 2,
                pre_vote: false,
            },
            Message::RequestVote {
                term: 4,
                last_index: 0,
                last_term: 0,
                pre_vote: true,
            },
            Message::Vote {
                term: 3,
                granted: true,
                pre_vote: false,
            },
            Message::AppendEntries {
                term: 3,
                prev_index: 17,
                prev_term: 3,
                entries: vec![
                    Entry::new(3, Command::Noop),
                    Entry::new(
                        3,
                        Command::Client {
                            client: 1,
                            seq: 9,
                            op: Arc::new(Op::Put {
                                key: "x".into(),
                                value: "hello".into(),
                            }),
                        },
                    ),
                ]
                .into(),
                commit: 16,
                sent_at: 120,
            },
            Message::AppendResponse {
                term: 3,
                success: false,
                match_index: 0,
                hint: Some(ConflictHint {
                    term: Some(2),
                    index: 5,
                }),
                echo_sent_at: 99,
            },
            Message::AppendResponse {
                term: 3,
                success: true,
                match_index: 19,
                hint: None,
                echo_sent_at: 120,
            },
            Message::InstallSnapshot {
                term: 3,
                chunk: Box::new(SnapshotChunk {
                    last_index: 1200,
                    last_term: 3,
                    image_bytes: 40_000,
                    image_crc: 0xdead_beef,
                    offset: 0,
                    done: false,
                    data: (0..=255u8).cycle().take(300).collect(),
                }),
            },
            Message::InstallSnapshot {
                term: 4,
                chunk: Box::new(SnapshotChunk {
                    last_index: 1200,
                    last_term: 3,
                    image_bytes: 40_000,
                    image_crc: 0xdead_beef,
                    offset: 39_990,
                    done: true,
                    data: vec![7; 10],
                }),
            },
            Message::SnapshotResponse {
                term: 3,
                last_index: 1200,
                last_term: 3,
                installed: false,
                next_offset: 16_384,
            },
            Message::SnapshotResponse {
                term: 4,
                last_index: 1200,
                last_term: 3,
                installed: true,
                next_offset: 0,
            },
        ]
    }

    #[test]
    fn wire_round_trip() {
        for m in samples() {
            let mut bytes = Vec::new();
            m.encode_wire(&mut bytes);
            assert_eq!(Message::decode_wire(&bytes), Ok(m));
        }
    }

    /// An entry's record is the command framed as a WAL `Entry` record, whether the command is
    /// encoded in place or into a payload buffer first; `encoded_len` is its payload size.
    #[test]
    fn entry_records_frame_the_encoded_command() {
        for m in samples() {
            let Message::AppendEntries { entries, .. } = m else {
                continue;
            };
            for (k, entry) in entries.iter().enumerate() {
                let mut payload = Vec::new();
                entry.command.encode(&mut payload);
                assert_eq!(payload.len(), entry.command.encoded_len());
                let mut expected = vec![7];
                wal::encode_record(
                    k as u64 + 1,
                    entry.term,
                    RecordKind::Entry,
                    &payload,
                    &mut expected,
                );
                let mut actual = vec![7];
                entry.encode_record(k as u64 + 1, &mut actual);
                assert_eq!(actual, expected);
            }
        }
    }

    /// A kept record is the fresh framing, reused only at the index and term it was framed
    /// with; copies of the entry share it.
    #[test]
    fn a_kept_record_is_the_fresh_framing_at_its_own_index() {
        let Message::AppendEntries { entries, .. } = &samples()[3] else {
            unreachable!()
        };
        let mut entry = entries[1].clone();
        let mut fresh = Vec::new();
        entry.encode_record(5, &mut fresh);
        let mut kept = vec![7];
        entry.encode_record_and_keep(5, &mut kept);
        assert_eq!(kept[1..], fresh[..]);
        let copy = entry.clone();
        assert_eq!(
            copy, entries[1],
            "the kept record takes no part in equality"
        );
        assert_eq!(format!("{copy:?}"), format!("{:?}", entries[1]));
        let mut reused = Vec::new();
        copy.encode_record(5, &mut reused);
        assert_eq!(reused, fresh);
        // At another index, or with another term, the entry is framed afresh.
        let mut elsewhere = Vec::new();
        copy.encode_record(6, &mut elsewhere);
        let mut expected = Vec::new();
        entries[1].encode_record(6, &mut expected);
        assert_eq!(elsewhere, expected);
        let mut later = copy.clone();
        later.term = 4;
        let mut retermed = Vec::new();
        later.encode_record(5, &mut retermed);
        let mut expected = Vec::new();
        Entry::new(4, later.command.clone()).encode_record(5, &mut expected);
        assert_eq!(retermed, expected);
    }

    /// A run of entries reads, compares and prints as the slice it holds; an empty one is the
    /// default (a heartbeat's, with nothing allocated).
    #[test]
    fn entries_behave_as_their_slice() {
        let Message::AppendEntries { entries, .. } = &samples()[3] else {
            unreachable!()
        };
        let vec: Vec<Entry> = entries.to_vec();
        assert_eq!(entries.len(), 2);
        assert_eq!(*entries, Entries::from(&vec[..]));
        assert_eq!(format!("{entries:?}"), format!("{vec:?}"));
        assert_ne!(*entries, Entries::from(&vec[..1]));
        assert_eq!(Entries::from(Vec::new()), Entries::default());
        assert!(Entries::from(&vec[..0]).is_empty());
    }

    #[test]
    fn display_is_stable() {
        let lines: Vec<String> = samples().iter().map(|m| m.to_string()).collect();
        assert_eq!(lines[0], "RequestVote term=3 last=2/7");
        assert_eq!(lines[1], "PreVote term=4 last=0/0");
        assert_eq!(lines[2], "Vote term=3 granted");
        assert_eq!(
            lines[3],
            "AppendEntries term=3 prev=3/17 entries=2 commit=16"
        );
        assert_eq!(lines[4], "AppendResponse term=3 reject hint=2/5");
        assert_eq!(lines[5], "AppendResponse term=3 ok match=19");
        assert_eq!(
            lines[6],
            "InstallSnapshot term=3 last=3/1200 offset=0 bytes=300 done=false"
        );
        assert_eq!(
            lines[7],
            "InstallSnapshot term=4 last=3/1200 offset=39990 bytes=10 done=true"
        );
        assert_eq!(lines[8], "SnapshotResponse term=3 last=3/1200 next=16384");
        assert_eq!(lines[9], "SnapshotResponse term=4 last=3/1200 installed");
        let kinds: Vec<&str> = samples().iter().map(Message::kind_name).collect();
        assert_eq!(
            kinds[6..],
            [
                "InstallSnapshot",
                "InstallSnapshot",
                "SnapshotResponse",
                "SnapshotResponse"
            ]
        );
    }

    /// W11 R3 / issue acceptance: a single flipped bit anywhere in a shipped AppendEntries is
    /// caught by a CRC before any entry can be used.
    #[test]
    fn every_bit_flip_in_append_entries_is_rejected() {
        let m = &samples()[3];
        let mut bytes = Vec::new();
        m.encode_wire(&mut bytes);
        for bit in 0..bytes.len() * 8 {
            let mut corrupt = bytes.clone();
            corrupt[bit / 8] ^= 1 << (bit % 8);
            assert!(
                Message::decode_wire(&corrupt).is_err(),
                "bit {bit} flip went undetected"
            );
        }
    }

    /// Every message, snapshot chunks and responses included: one flipped bit anywhere is
    /// caught before the message can be used.
    #[test]
    fn every_bit_flip_in_every_message_is_rejected() {
        for m in samples() {
            let mut bytes = Vec::new();
            m.encode_wire(&mut bytes);
            for bit in 0..bytes.len() * 8 {
                let mut corrupt = bytes.clone();
                corrupt[bit / 8] ^= 1 << (bit % 8);
                assert!(
                    Message::decode_wire(&corrupt).is_err(),
                    "{m}: bit {bit} flip went undetected"
                );
            }
        }
    }

    #[test]
    fn a_chunk_with_inconsistent_fields_is_malformed_even_with_valid_crcs() {
        let Message::InstallSnapshot { chunk, .. } = &samples()[6] else {
            unreachable!()
        };
        let forged = Message::InstallSnapshot {
            term: 3,
            chunk: Box::new(SnapshotChunk {
                done: true,
                ..(**chunk).clone()
            }),
        };
        let mut bytes = Vec::new();
        forged.encode_wire(&mut bytes);
        assert!(matches!(
            Message::decode_wire(&bytes),
            Err(DecodeError::Malformed { .. })
        ));
    }

    fn any_chunk() -> impl Strategy<Value = SnapshotChunk> {
        (
            1..u64::MAX,
            any::<u64>(),
            any::<u32>(),
            proptest::collection::vec(any::<u8>(), 1..200),
            0u64..1_000,
            0u64..1_000,
        )
            .prop_map(|(last_index, last_term, crc, data, offset, tail)| {
                let image_bytes = offset + data.len() as u64 + tail;
                SnapshotChunk {
                    last_index,
                    last_term,
                    image_bytes,
                    image_crc: crc,
                    offset,
                    done: tail == 0,
                    data,
                }
            })
    }

    fn any_message() -> impl Strategy<Value = Message> {
        prop_oneof![
            (any::<u64>(), any::<u64>(), any::<u64>(), any::<bool>()).prop_map(
                |(term, last_index, last_term, pre_vote)| Message::RequestVote {
                    term,
                    last_index,
                    last_term,
                    pre_vote
                }
            ),
            (any::<u64>(), any::<bool>(), any::<bool>()).prop_map(|(term, granted, pre_vote)| {
                Message::Vote {
                    term,
                    granted,
                    pre_vote,
                }
            }),
            (any::<u64>(), any_chunk()).prop_map(|(term, chunk)| Message::InstallSnapshot {
                term,
                chunk: Box::new(chunk)
            }),
            (
                any::<u64>(),
                any::<u64>(),
                any::<u64>(),
                any::<bool>(),
                any::<u64>()
            )
                .prop_map(|(term, last_index, last_term, installed, next_offset)| {
                    Message::SnapshotResponse {
                        term,
                        last_index,
                        last_term,
                        installed,
                        next_offset,
                    }
                }),
        ]
    }

    proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = Message::decode_wire(&bytes);
        }

        #[test]
        fn messages_round_trip_and_survive_any_flip(m in any_message(), bit in any::<usize>()) {
            let mut bytes = Vec::new();
            m.encode_wire(&mut bytes);
            prop_assert_eq!(Message::decode_wire(&bytes), Ok(m.clone()));
            let bit = bit % (bytes.len() * 8);
            bytes[bit / 8] ^= 1 << (bit % 8);
            prop_assert!(Message::decode_wire(&bytes).is_err(), "{}: bit {}", m, bit);
        }
    }
}
