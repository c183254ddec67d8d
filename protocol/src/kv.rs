//! The replicated key-value state machine: operations, their results, and the store.
//!
//! Contract:
//! - [`KvStore::apply`] is a pure, deterministic function of the store and the operation. Every
//!   replica that applies the same operations in the same (log) order ends in the same state,
//!   which [`KvStore::digest`] makes cheap to compare.
//! - The store is an ordered map (`BTreeMap`-based, see `KeyMap`), never a hash map: iteration
//!   order, encodings and digests must not depend on a per-process random seed.
//! - Sizes are bounded: at most [`KEYS_MAX`] keys, keys of at most [`KEY_BYTES_MAX`] bytes and
//!   values of at most [`VALUE_BYTES_MAX`] bytes. `apply` asserts them, so a store can always
//!   be encoded into a snapshot that decodes again; a workload that breaks them is a bug in the
//!   simulator's workload, not a condition to recover from.
//! - Encodings ([`Op::encode`], [`OpResult::encode`], [`KvStore::encode`]) use [`crate::codec`]
//!   and decode without panicking: they travel in log entries, messages and snapshots, which
//!   may be corrupt.

use std::collections::{btree_map, BTreeMap};
use std::fmt;

use crate::codec::{self, CodecError, Fnv1a64, Reader};

/// Most keys a store may hold (1 Mi). Asserted by [`KvStore::apply`], checked by decode.
pub const KEYS_MAX: usize = 1 << 20;

/// Longest key, in bytes: anything longer could not be encoded.
pub const KEY_BYTES_MAX: usize = codec::STRING_BYTES_MAX;

/// Longest value, in bytes (including values grown by `Append`): anything longer could not be
/// encoded.
pub const VALUE_BYTES_MAX: usize = codec::STRING_BYTES_MAX;

// Wire tags of `Op` variants (stable: they appear in logs and snapshots).
const OP_TAG_GET: u8 = 1;
const OP_TAG_PUT: u8 = 2;
const OP_TAG_APPEND: u8 = 3;
const OP_TAG_DELETE: u8 = 4;
const OP_TAG_CAS: u8 = 5;

// Wire tags of `OpResult` variants (stable: they appear in logs and snapshots).
const RESULT_TAG_OK: u8 = 1;
const RESULT_TAG_VALUE: u8 = 2;
const RESULT_TAG_NOT_FOUND: u8 = 3;
const RESULT_TAG_CAS_MISMATCH: u8 = 4;

/// A client operation on the store.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Op {
    /// Read `key`.
    Get {
        /// The key to read.
        key: String,
    },
    /// Set `key` to `value`, creating or overwriting it.
    Put {
        /// The key to write.
        key: String,
        /// The new value.
        value: String,
    },
    /// Append `value` to the value of `key`, creating the key if absent.
    Append {
        /// The key to append to.
        key: String,
        /// The suffix to append.
        value: String,
    },
    /// Remove `key`.
    Delete {
        /// The key to remove.
        key: String,
    },
    /// Compare-and-set: set `key` to `new` only if its current value equals `expected`, where
    /// `expected: None` means "only if the key is absent".
    Cas {
        /// The key to update.
        key: String,
        /// The value the key must currently hold (`None`: the key must be absent).
        expected: Option<String>,
        /// The value to store on success.
        new: String,
    },
}

impl Op {
    /// The key the operation touches.
    pub fn key(&self) -> &str {
        match self {
            Op::Get { key }
            | Op::Put { key, .. }
            | Op::Append { key, .. }
            | Op::Delete { key }
            | Op::Cas { key, .. } => key,
        }
    }

    /// True only for [`Op::Get`], the one operation that does not change the store.
    pub fn is_read(&self) -> bool {
        matches!(self, Op::Get { .. })
    }

    /// A stable lower-case name: `"get"`, `"put"`, `"append"`, `"delete"` or `"cas"`.
    pub fn name(&self) -> &'static str {
        match self {
            Op::Get { .. } => "get",
            Op::Put { .. } => "put",
            Op::Append { .. } => "append",
            Op::Delete { .. } => "delete",
            Op::Cas { .. } => "cas",
        }
    }

    /// Bytes [`Op::encode`] appends: encoders reserve it once up front instead of growing the
    /// buffer string by string.
    pub fn encoded_len(&self) -> usize {
        // A tag byte, then a `u32` length prefix per string (and a tag byte for the optional
        // one), as `Op::encode` writes them.
        1 + match self {
            Op::Get { key } | Op::Delete { key } => 4 + key.len(),
            Op::Put { key, value } | Op::Append { key, value } => 8 + key.len() + value.len(),
            Op::Cas { key, expected, new } => {
                9 + key.len() + expected.as_ref().map_or(0, |e| 4 + e.len()) + new.len()
            }
        }
    }

    /// Appends the operation's encoding: a tag byte, then its strings.
    ///
    /// # Panics
    /// If a string exceeds [`codec::STRING_BYTES_MAX`].
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Op::Get { key } => {
                codec::put_u8(out, OP_TAG_GET);
                codec::put_str(out, key);
            }
            Op::Put { key, value } => {
                codec::put_u8(out, OP_TAG_PUT);
                codec::put_str(out, key);
                codec::put_str(out, value);
            }
            Op::Append { key, value } => {
                codec::put_u8(out, OP_TAG_APPEND);
                codec::put_str(out, key);
                codec::put_str(out, value);
            }
            Op::Delete { key } => {
                codec::put_u8(out, OP_TAG_DELETE);
                codec::put_str(out, key);
            }
            Op::Cas { key, expected, new } => {
                codec::put_u8(out, OP_TAG_CAS);
                codec::put_str(out, key);
                codec::put_opt_str(out, expected.as_deref());
                codec::put_str(out, new);
            }
        }
    }

    /// Decodes one operation written by [`Op::encode`]. Does not require the reader to be
    /// exhausted afterwards (call [`Reader::finish`] for that).
    pub fn decode(r: &mut Reader<'_>) -> Result<Op, CodecError> {
        let op = match r.u8()? {
            OP_TAG_GET => Op::Get { key: r.string()? },
            OP_TAG_PUT => Op::Put {
                key: r.string()?,
                value: r.string()?,
            },
            OP_TAG_APPEND => Op::Append {
                key: r.string()?,
                value: r.string()?,
            },
            OP_TAG_DELETE => Op::Delete { key: r.string()? },
            OP_TAG_CAS => Op::Cas {
                key: r.string()?,
                expected: r.opt_string()?,
                new: r.string()?,
            },
            tag => return Err(CodecError::InvalidTag { what: "op", tag }),
        };
        Ok(op)
    }
}

impl fmt::Display for Op {
    /// A stable one-liner for traces: `Get k=x`, `Put k=x v=1`, `Append k=x v=ab`,
    /// `Delete k=x`, `Cas k=x expect=1 new=2` (`expect=-` when the key must be absent).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::Get { key } => write!(f, "Get k={key}"),
            Op::Put { key, value } => write!(f, "Put k={key} v={value}"),
            Op::Append { key, value } => write!(f, "Append k={key} v={value}"),
            Op::Delete { key } => write!(f, "Delete k={key}"),
            Op::Cas { key, expected, new } => write!(
                f,
                "Cas k={key} expect={} new={new}",
                expected.as_deref().unwrap_or("-")
            ),
        }
    }
}

/// The outcome of applying an [`Op`].
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OpResult {
    /// The write succeeded.
    Ok,
    /// The value read by a `Get`.
    Value(String),
    /// `Get` or `Delete` of an absent key.
    NotFound,
    /// A `Cas` whose expectation did not hold; `current` is the value found (`None`: absent).
    CasMismatch {
        /// The key's value at the time of the `Cas`.
        current: Option<String>,
    },
}

impl OpResult {
    /// Appends the result's encoding: a tag byte, then its strings.
    ///
    /// # Panics
    /// If a string exceeds [`codec::STRING_BYTES_MAX`].
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            OpResult::Ok => codec::put_u8(out, RESULT_TAG_OK),
            OpResult::Value(value) => {
                codec::put_u8(out, RESULT_TAG_VALUE);
                codec::put_str(out, value);
            }
            OpResult::NotFound => codec::put_u8(out, RESULT_TAG_NOT_FOUND),
            OpResult::CasMismatch { current } => {
                codec::put_u8(out, RESULT_TAG_CAS_MISMATCH);
                codec::put_opt_str(out, current.as_deref());
            }
        }
    }

    /// Decodes one result written by [`OpResult::encode`].
    pub fn decode(r: &mut Reader<'_>) -> Result<OpResult, CodecError> {
        let result = match r.u8()? {
            RESULT_TAG_OK => OpResult::Ok,
            RESULT_TAG_VALUE => OpResult::Value(r.string()?),
            RESULT_TAG_NOT_FOUND => OpResult::NotFound,
            RESULT_TAG_CAS_MISMATCH => OpResult::CasMismatch {
                current: r.opt_string()?,
            },
            tag => {
                return Err(CodecError::InvalidTag {
                    what: "op result",
                    tag,
                })
            }
        };
        Ok(result)
    }
}

impl fmt::Display for OpResult {
    /// A stable one-liner for traces: `ok`, `value=1`, `not-found`, `cas-mismatch current=1`
    /// (`current=-` when the key was absent).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpResult::Ok => f.write_str("ok"),
            OpResult::Value(value) => write!(f, "value={value}"),
            OpResult::NotFound => f.write_str("not-found"),
            OpResult::CasMismatch { current } => write!(
                f,
                "cas-mismatch current={}",
                current.as_deref().unwrap_or("-")
            ),
        }
    }
}

/// The key-value store: an ordered map from key to value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KvStore {
    entries: KeyMap,
}

/// An ordered map from key to value, for [`KvStore`]: every replica applies every operation,
/// and a `BTreeMap<String, String>` pays a `memcmp` call per tree level to find the key. Keys
/// are found by their [`key_head`] instead, compared as integers; the keys that share a head
/// (none, for the short keys a workload uses) share one [`Bucket`], ascending.
///
/// Iterating the buckets in head order, each in key order, visits the keys in ascending byte
/// order: a head is the key cut to 8 bytes and padded with zero bytes, which never puts a
/// greater key before a smaller one (see [`key_head`]).
#[derive(Clone, Default, PartialEq, Eq)]
struct KeyMap {
    /// Keys by head (a bucket is never empty, so equal contents make equal maps).
    buckets: BTreeMap<u64, Bucket>,
    /// Number of keys in all buckets.
    len: usize,
}

/// The keys that share one [`key_head`], ascending. The first sits inline: nearly every head
/// has one key, which then costs no allocation of its own and no pointer to follow.
#[derive(Clone, PartialEq, Eq)]
struct Bucket {
    first: (String, String),
    /// The other keys, each greater than `first`'s (empty, so not allocated, until needed).
    more: Vec<(String, String)>,
}

impl Bucket {
    fn iter(&self) -> impl Iterator<Item = &(String, String)> {
        std::iter::once(&self.first).chain(&self.more)
    }

    fn get_mut(&mut self, key: &str) -> Option<&mut String> {
        if same_key_of_head(&self.first.0, key) {
            return Some(&mut self.first.1);
        }
        self.more
            .iter_mut()
            .find(|(k, _)| same_key_of_head(k, key))
            .map(|(_, value)| value)
    }
}

/// The first 8 bytes of `key` as a big-endian integer, zero-padded when shorter. For keys `a <
/// b` (byte order), `key_head(a) <= key_head(b)`: where `a` is a prefix of `b`, the padding
/// zeros are the smallest bytes; otherwise the first difference is either within the head or
/// cut off. Keys of at most 8 bytes with equal heads differ only in length (trailing zeros).
fn key_head(key: &str) -> u64 {
    let bytes = key.as_bytes();
    match bytes.first_chunk::<8>() {
        Some(&head) => u64::from_be_bytes(head),
        None => bytes
            .iter()
            .enumerate()
            .fold(0, |head, (i, &byte)| head | u64::from(byte) << (56 - 8 * i)),
    }
}

/// Whether `a` and `b`, two keys with equal [`key_head`]s, are the same key: their first 8
/// bytes agree already, so only the lengths and whatever follows those bytes are compared.
fn same_key_of_head(a: &str, b: &str) -> bool {
    a.len() == b.len() && (a.len() <= 8 || same_bytes(&a.as_bytes()[8..], &b.as_bytes()[8..]))
}

/// `a == b` for byte strings of equal length, compared 8 bytes at a time in line: the rest of
/// a key is short, where a `memcmp` call costs more than the comparison.
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    let (mut a_words, mut b_words) = (a.chunks_exact(8), b.chunks_exact(8));
    a_words.by_ref().zip(b_words.by_ref()).all(|(x, y)| x == y)
        && a_words.remainder().iter().eq(b_words.remainder())
}

impl KeyMap {
    fn len(&self) -> usize {
        self.len
    }

    #[inline]
    fn get(&self, key: &str) -> Option<&String> {
        let bucket = self.buckets.get(&key_head(key))?;
        bucket
            .iter()
            .find(|(k, _)| same_key_of_head(k, key))
            .map(|(_, value)| value)
    }

    #[inline]
    fn get_mut(&mut self, key: &str) -> Option<&mut String> {
        self.buckets.get_mut(&key_head(key))?.get_mut(key)
    }

    /// Insert `key`, which the map does not hold (the caller's lookup found it absent).
    fn insert_new(&mut self, key: String, value: String) {
        self.len += 1;
        let bucket = match self.buckets.entry(key_head(&key)) {
            btree_map::Entry::Vacant(vacant) => {
                vacant.insert(Bucket {
                    first: (key, value),
                    more: Vec::new(),
                });
                return;
            }
            btree_map::Entry::Occupied(occupied) => occupied.into_mut(),
        };
        debug_assert!(bucket.iter().all(|(k, _)| *k != key), "kv: {key:?} is held");
        let pair = if key < bucket.first.0 {
            std::mem::replace(&mut bucket.first, (key, value))
        } else {
            (key, value)
        };
        let at = bucket.more.partition_point(|(k, _)| *k < pair.0);
        bucket.more.insert(at, pair);
    }

    /// Remove `key`, returning its value if it was held.
    fn remove(&mut self, key: &str) -> Option<String> {
        let btree_map::Entry::Occupied(mut entry) = self.buckets.entry(key_head(key)) else {
            return None;
        };
        let bucket = entry.get_mut();
        let (_, value) = if same_key_of_head(&bucket.first.0, key) {
            if bucket.more.is_empty() {
                self.len -= 1;
                return Some(entry.remove().first.1);
            }
            let next = bucket.more.remove(0);
            std::mem::replace(&mut bucket.first, next)
        } else {
            let at = bucket
                .more
                .iter()
                .position(|(k, _)| same_key_of_head(k, key))?;
            bucket.more.remove(at)
        };
        self.len -= 1;
        Some(value)
    }

    /// The last key in order, if any.
    fn last_key(&self) -> Option<&str> {
        let (_, bucket) = self.buckets.last_key_value()?;
        Some(bucket.more.last().unwrap_or(&bucket.first).0.as_str())
    }

    /// All `(key, value)` pairs in ascending key order.
    fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.buckets
            .values()
            .flat_map(Bucket::iter)
            .map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

/// Shown as the map it is: `{"key": "value", ...}`.
impl fmt::Debug for KeyMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl KvStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Asserts that a key and a value stay within their byte bounds.
    fn assert_sizes(key: &str, value_bytes: usize) {
        assert!(
            key.len() <= KEY_BYTES_MAX,
            "kv: key of {} bytes exceeds KEY_BYTES_MAX ({KEY_BYTES_MAX})",
            key.len()
        );
        assert!(
            value_bytes <= VALUE_BYTES_MAX,
            "kv: value of {value_bytes} bytes for key {key:?} exceeds VALUE_BYTES_MAX ({VALUE_BYTES_MAX})"
        );
    }

    /// Asserts that inserting the new key `key` keeps the store within [`KEYS_MAX`]. Only a key
    /// the store does not hold yet is checked, where the caller's own lookup already found it
    /// absent, so the bound costs no search of its own.
    fn assert_room_for_new_key(&self, key: &str) {
        assert!(
            self.entries.len() < KEYS_MAX,
            "kv: inserting key {key:?} would exceed KEYS_MAX ({KEYS_MAX})"
        );
    }

    /// Applies `op` and returns its result:
    /// - `Get` → `Value(v)` or `NotFound`;
    /// - `Put` → `Ok`;
    /// - `Append` → `Ok`, creating the key (as `value`) if absent;
    /// - `Delete` → `Ok` if the key existed, else `NotFound`;
    /// - `Cas` → `Ok` and stores `new` when the current value equals `expected` (`None`:
    ///   absent), else `CasMismatch { current }` and no change.
    ///
    /// Each operation looks its key up once: every write is applied on every replica, so a
    /// second search of the tree (and a string comparison per level) would be paid on each.
    ///
    /// # Panics
    /// If the operation would break [`KEYS_MAX`], [`KEY_BYTES_MAX`] or [`VALUE_BYTES_MAX`].
    pub fn apply(&mut self, op: &Op) -> OpResult {
        match op {
            Op::Get { key } => match self.entries.get(key) {
                Some(value) => OpResult::Value(value.clone()),
                None => OpResult::NotFound,
            },
            Op::Put { key, value } => {
                Self::assert_sizes(key, value.len());
                self.set(key, value);
                OpResult::Ok
            }
            Op::Append { key, value } => {
                match self.entries.get_mut(key) {
                    Some(current) => {
                        Self::assert_sizes(key, current.len().saturating_add(value.len()));
                        current.push_str(value);
                    }
                    None => {
                        Self::assert_sizes(key, value.len());
                        self.assert_room_for_new_key(key);
                        self.entries.insert_new(key.clone(), value.clone());
                    }
                }
                OpResult::Ok
            }
            Op::Delete { key } => match self.entries.remove(key) {
                Some(_) => OpResult::Ok,
                None => OpResult::NotFound,
            },
            Op::Cas { key, expected, new } => match self.entries.get_mut(key) {
                Some(current) if Some(current.as_str()) == expected.as_deref() => {
                    Self::assert_sizes(key, new.len());
                    current.clear();
                    current.push_str(new);
                    OpResult::Ok
                }
                None if expected.is_none() => {
                    Self::assert_sizes(key, new.len());
                    self.assert_room_for_new_key(key);
                    self.entries.insert_new(key.clone(), new.clone());
                    OpResult::Ok
                }
                current => OpResult::CasMismatch {
                    current: current.cloned(),
                },
            },
        }
    }

    /// Overwrite in place when the key exists (no new allocation for the key, and the value's
    /// buffer is reused), insert otherwise.
    fn set(&mut self, key: &str, value: &str) {
        match self.entries.get_mut(key) {
            Some(current) => {
                current.clear();
                current.push_str(value);
            }
            None => {
                self.assert_room_for_new_key(key);
                self.entries.insert_new(key.to_owned(), value.to_owned());
            }
        }
    }

    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries.get(key).map(String::as_str)
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True if the store holds no keys.
    pub fn is_empty(&self) -> bool {
        self.entries.len() == 0
    }

    /// All `(key, value)` pairs in ascending key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter()
    }

    /// A deterministic 64-bit FNV-1a hash of the ordered `(key, value)` pairs, each string
    /// framed by its length. Equal stores have equal digests on every platform; replicas
    /// compare digests instead of whole stores.
    pub fn digest(&self) -> u64 {
        let mut hasher = Fnv1a64::new();
        for (key, value) in self.entries.iter() {
            hasher.write_framed(key.as_bytes());
            hasher.write_framed(value.as_bytes());
        }
        hasher.finish()
    }

    /// Appends a snapshot encoding: a `u32` key count, then each key and value in ascending
    /// key order.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let count = u32::try_from(self.entries.len()).expect("KEYS_MAX fits in u32");
        codec::put_u32(out, count);
        for (key, value) in self.entries.iter() {
            codec::put_str(out, key);
            codec::put_str(out, value);
        }
    }

    /// Decodes a snapshot written by [`KvStore::encode`]. A count over [`KEYS_MAX`] is
    /// [`CodecError::TooLong`]; keys that are not strictly ascending (so not a canonical
    /// encoding, possibly with duplicates) are [`CodecError::Invalid`].
    pub fn decode(r: &mut Reader<'_>) -> Result<KvStore, CodecError> {
        let count = r.u32()? as usize;
        if count > KEYS_MAX {
            return Err(CodecError::TooLong {
                len: count,
                max: KEYS_MAX,
            });
        }
        let mut entries = KeyMap::default();
        for _ in 0..count {
            let key = r.string()?;
            let value = r.string()?;
            if entries
                .last_key()
                .is_some_and(|last_key| key.as_str() <= last_key)
            {
                return Err(CodecError::Invalid {
                    what: "kv snapshot keys are not strictly ascending",
                });
            }
            entries.insert_new(key, value);
        }
        Ok(KvStore { entries })
    }
}

/// Short constructors for operations, for tests and scripts: `put("k", "v")` rather than a
/// struct literal with two `String`s.
pub mod ops {
    use super::Op;

    /// `Get key`.
    pub fn get(key: &str) -> Op {
        Op::Get { key: key.into() }
    }

    /// `Put key=value`.
    pub fn put(key: &str, value: &str) -> Op {
        Op::Put {
            key: key.into(),
            value: value.into(),
        }
    }

    /// `Append key+=value`.
    pub fn append(key: &str, value: &str) -> Op {
        Op::Append {
            key: key.into(),
            value: value.into(),
        }
    }

    /// `Delete key`.
    pub fn delete(key: &str) -> Op {
        Op::Delete { key: key.into() }
    }

    /// `Cas key expected new` (`expected: None` means the key must be absent).
    pub fn cas(key: &str, expected: Option<&str>, new: &str) -> Op {
        Op::Cas {
            key: key.into(),
            expected: expected.map(Into::into),
            new: new.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    use super::ops::{append, cas, delete, get, put};

    fn s(v: &str) -> String {
        v.to_owned()
    }

    fn round_trip_op(op: &Op) -> Result<Op, CodecError> {
        let mut buf = Vec::new();
        op.encode(&mut buf);
        assert_eq!(buf.len(), op.encoded_len(), "encoded_len of {op:?}");
        let mut r = Reader::new(&buf);
        let decoded = Op::decode(&mut r)?;
        r.finish()?;
        Ok(decoded)
    }

    #[test]
    fn get_reads_value_or_not_found() {
        let mut kv = KvStore::new();
        assert_eq!(kv.apply(&get("x")), OpResult::NotFound);
        kv.apply(&put("x", "1"));
        assert_eq!(kv.apply(&get("x")), OpResult::Value(s("1")));
        assert_eq!(kv.len(), 1, "get does not create keys");
    }

    #[test]
    fn put_creates_and_overwrites() {
        let mut kv = KvStore::new();
        assert_eq!(kv.apply(&put("x", "1")), OpResult::Ok);
        assert_eq!(kv.get("x"), Some("1"));
        assert_eq!(kv.apply(&put("x", "2")), OpResult::Ok);
        assert_eq!(kv.get("x"), Some("2"));
        assert_eq!(kv.len(), 1);
    }

    #[test]
    fn append_creates_then_extends() {
        let mut kv = KvStore::new();
        assert_eq!(kv.apply(&append("x", "a")), OpResult::Ok);
        assert_eq!(kv.get("x"), Some("a"));
        assert_eq!(kv.apply(&append("x", "bc")), OpResult::Ok);
        assert_eq!(kv.get("x"), Some("abc"));
    }

    #[test]
    fn delete_reports_whether_the_key_existed() {
        let mut kv = KvStore::new();
        assert_eq!(kv.apply(&delete("x")), OpResult::NotFound);
        kv.apply(&put("x", "1"));
        assert_eq!(kv.apply(&delete("x")), OpResult::Ok);
        assert_eq!(kv.get("x"), None);
        assert!(kv.is_empty());
        assert_eq!(kv.apply(&delete("x")), OpResult::NotFound);
    }

    #[test]
    fn cas_on_absent_key() {
        let mut kv = KvStore::new();
        assert_eq!(
            kv.apply(&cas("x", Some("1"), "2")),
            OpResult::CasMismatch { current: None }
        );
        assert!(kv.is_empty(), "a failed cas changes nothing");
        assert_eq!(kv.apply(&cas("x", None, "1")), OpResult::Ok);
        assert_eq!(kv.get("x"), Some("1"));
    }

    #[test]
    fn cas_on_present_key() {
        let mut kv = KvStore::new();
        kv.apply(&put("x", "1"));
        assert_eq!(
            kv.apply(&cas("x", None, "9")),
            OpResult::CasMismatch {
                current: Some(s("1"))
            }
        );
        assert_eq!(
            kv.apply(&cas("x", Some("0"), "9")),
            OpResult::CasMismatch {
                current: Some(s("1"))
            }
        );
        assert_eq!(kv.get("x"), Some("1"));
        assert_eq!(kv.apply(&cas("x", Some("1"), "2")), OpResult::Ok);
        assert_eq!(kv.get("x"), Some("2"));
    }

    #[test]
    fn op_accessors() {
        let ops = [
            get("a"),
            put("b", "1"),
            append("c", "2"),
            delete("d"),
            cas("e", None, "3"),
        ];
        let keys: Vec<&str> = ops.iter().map(Op::key).collect();
        assert_eq!(keys, ["a", "b", "c", "d", "e"]);
        let names: Vec<&str> = ops.iter().map(Op::name).collect();
        assert_eq!(names, ["get", "put", "append", "delete", "cas"]);
        let reads: Vec<bool> = ops.iter().map(Op::is_read).collect();
        assert_eq!(reads, [true, false, false, false, false]);
    }

    #[test]
    fn op_display_is_stable() {
        assert_eq!(get("x").to_string(), "Get k=x");
        assert_eq!(put("x", "1").to_string(), "Put k=x v=1");
        assert_eq!(append("x", "ab").to_string(), "Append k=x v=ab");
        assert_eq!(delete("x").to_string(), "Delete k=x");
        assert_eq!(
            cas("x", Some("1"), "2").to_string(),
            "Cas k=x expect=1 new=2"
        );
        assert_eq!(cas("x", None, "2").to_string(), "Cas k=x expect=- new=2");
    }

    #[test]
    fn result_display_is_stable() {
        assert_eq!(OpResult::Ok.to_string(), "ok");
        assert_eq!(OpResult::Value(s("1")).to_string(), "value=1");
        assert_eq!(OpResult::NotFound.to_string(), "not-found");
        assert_eq!(
            OpResult::CasMismatch { current: None }.to_string(),
            "cas-mismatch current=-"
        );
        assert_eq!(
            OpResult::CasMismatch {
                current: Some(s("7"))
            }
            .to_string(),
            "cas-mismatch current=7"
        );
    }

    #[test]
    fn every_op_round_trips() {
        for op in [
            get("k"),
            put("k", "v"),
            append("", ""),
            delete("ключ"),
            cas("k", None, "n"),
            cas("k", Some("e"), "n"),
        ] {
            assert_eq!(round_trip_op(&op), Ok(op));
        }
    }

    #[test]
    fn every_result_round_trips() {
        for result in [
            OpResult::Ok,
            OpResult::Value(s("v")),
            OpResult::NotFound,
            OpResult::CasMismatch { current: None },
            OpResult::CasMismatch {
                current: Some(s("c")),
            },
        ] {
            let mut buf = Vec::new();
            result.encode(&mut buf);
            let mut r = Reader::new(&buf);
            assert_eq!(OpResult::decode(&mut r), Ok(result));
            assert_eq!(r.finish(), Ok(()));
        }
    }

    #[test]
    fn bad_tags_and_truncation_are_errors() {
        assert_eq!(
            Op::decode(&mut Reader::new(&[0])),
            Err(CodecError::InvalidTag { what: "op", tag: 0 })
        );
        assert_eq!(
            OpResult::decode(&mut Reader::new(&[9])),
            Err(CodecError::InvalidTag {
                what: "op result",
                tag: 9
            })
        );
        let mut buf = Vec::new();
        put("key", "value").encode(&mut buf);
        for cut in 0..buf.len() {
            assert!(
                Op::decode(&mut Reader::new(&buf[..cut])).is_err(),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn digest_tracks_content_not_history() {
        let mut a = KvStore::new();
        let mut b = KvStore::new();
        assert_eq!(a.digest(), b.digest());
        a.apply(&put("x", "1"));
        a.apply(&put("y", "2"));
        b.apply(&append("y", "2"));
        b.apply(&put("x", "0"));
        assert_ne!(a.digest(), b.digest(), "different values differ");
        b.apply(&cas("x", Some("0"), "1"));
        assert_eq!(a, b);
        assert_eq!(a.digest(), b.digest(), "same content, different history");
        b.apply(&delete("y"));
        assert_ne!(a.digest(), b.digest());
    }

    #[test]
    fn digest_frames_lengths() {
        let mut a = KvStore::new();
        a.apply(&put("ab", "c"));
        let mut b = KvStore::new();
        b.apply(&put("a", "bc"));
        assert_ne!(a.digest(), b.digest());
        assert_ne!(KvStore::new().digest(), {
            let mut c = KvStore::new();
            c.apply(&put("", ""));
            c.digest()
        });
    }

    #[test]
    fn iter_is_in_key_order() {
        let mut kv = KvStore::new();
        for key in ["m", "a", "z", "b"] {
            kv.apply(&put(key, key));
        }
        let keys: Vec<&str> = kv.iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["a", "b", "m", "z"]);
    }

    #[test]
    fn store_snapshot_rejects_bad_counts_and_unsorted_keys() {
        let mut too_many = Vec::new();
        codec::put_u32(&mut too_many, KEYS_MAX as u32 + 1);
        assert_eq!(
            KvStore::decode(&mut Reader::new(&too_many)),
            Err(CodecError::TooLong {
                len: KEYS_MAX + 1,
                max: KEYS_MAX
            })
        );

        for keys in [["b", "a"], ["a", "a"]] {
            let mut buf = Vec::new();
            codec::put_u32(&mut buf, 2);
            for key in keys {
                codec::put_str(&mut buf, key);
                codec::put_str(&mut buf, "v");
            }
            assert_eq!(
                KvStore::decode(&mut Reader::new(&buf)),
                Err(CodecError::Invalid {
                    what: "kv snapshot keys are not strictly ascending"
                }),
                "{keys:?}"
            );
        }
    }

    #[test]
    #[should_panic(expected = "exceeds VALUE_BYTES_MAX")]
    fn append_past_the_value_bound_panics() {
        let mut kv = KvStore::new();
        kv.apply(&put("x", &"a".repeat(VALUE_BYTES_MAX)));
        kv.apply(&append("x", "b"));
    }

    fn any_op() -> impl Strategy<Value = Op> {
        any_op_on("[a-e]{0,3}")
    }

    /// Operations on keys drawn from `key` (a regex strategy).
    fn any_op_on(key: &'static str) -> impl Strategy<Value = Op> {
        let value = ".{0,8}";
        prop_oneof![
            key.prop_map(|key| Op::Get { key }),
            (key, value).prop_map(|(key, value)| Op::Put { key, value }),
            (key, value).prop_map(|(key, value)| Op::Append { key, value }),
            key.prop_map(|key| Op::Delete { key }),
            (key, proptest::option::of(value), value).prop_map(|(key, expected, new)| Op::Cas {
                key,
                expected,
                new
            }),
        ]
    }

    /// `op` applied to a plain ordered map: the semantics `KvStore::apply` is checked against.
    fn model_apply(model: &mut BTreeMap<String, String>, op: &Op) -> OpResult {
        match op {
            Op::Get { key } => model
                .get(key)
                .cloned()
                .map_or(OpResult::NotFound, OpResult::Value),
            Op::Put { key, value } => {
                model.insert(key.clone(), value.clone());
                OpResult::Ok
            }
            Op::Append { key, value } => {
                model.entry(key.clone()).or_default().push_str(value);
                OpResult::Ok
            }
            Op::Delete { key } => model
                .remove(key)
                .map_or(OpResult::NotFound, |_| OpResult::Ok),
            Op::Cas { key, expected, new } => {
                let current = model.get(key).cloned();
                if current == *expected {
                    model.insert(key.clone(), new.clone());
                    OpResult::Ok
                } else {
                    OpResult::CasMismatch { current }
                }
            }
        }
    }

    /// Applies `ops` to a store and to the model map, which must agree on every result and
    /// size; then the store must list and show the model's pairs, and round-trip through its
    /// snapshot encoding with its digest.
    fn check_store_against_model(ops: &[Op]) -> Result<(), TestCaseError> {
        let mut kv = KvStore::new();
        let mut model = BTreeMap::<String, String>::new();
        for op in ops {
            prop_assert_eq!(kv.apply(op), model_apply(&mut model, op));
            prop_assert_eq!(kv.len(), model.len());
        }
        let pairs: Vec<(&str, &str)> = model
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        prop_assert_eq!(kv.iter().collect::<Vec<_>>(), pairs);
        prop_assert_eq!(
            format!("{kv:?}"),
            format!("KvStore {{ entries: {model:?} }}")
        );

        let mut buf = Vec::new();
        kv.encode(&mut buf);
        let mut r = Reader::new(&buf);
        let decoded = KvStore::decode(&mut r)?;
        r.finish()?;
        prop_assert_eq!(decoded.digest(), kv.digest());
        prop_assert_eq!(decoded, kv);
        Ok(())
    }

    proptest! {
        #[test]
        fn op_round_trips(op in any_op()) {
            prop_assert_eq!(round_trip_op(&op)?, op);
        }

        #[test]
        fn key_heads_keep_key_order(a in "[ab\\x00]{0,10}|.{0,12}", b in "[ab\\x00]{0,10}|.{0,12}") {
            let (small, great) = if a <= b { (&a, &b) } else { (&b, &a) };
            prop_assert!(key_head(small) <= key_head(great));
            if key_head(&a) == key_head(&b) {
                prop_assert_eq!(same_key_of_head(&a, &b), a == b);
            }
        }

        /// Keys that share their first 8 bytes, or differ only in trailing zero bytes, share a
        /// bucket: the store still behaves as an ordered map of them.
        #[test]
        fn store_with_shared_key_heads_matches_a_btree_map(
            ops in proptest::collection::vec(any_op_on("(abcdefgh)?[ab\\x00]{0,3}"), 0..64)
        ) {
            check_store_against_model(&ops)?;
        }

        #[test]
        fn store_round_trips_and_keeps_its_digest(ops in proptest::collection::vec(any_op(), 0..64)) {
            check_store_against_model(&ops)?;
        }

        #[test]
        fn decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
            let _ = Op::decode(&mut Reader::new(&bytes));
            let _ = OpResult::decode(&mut Reader::new(&bytes));
            let _ = KvStore::decode(&mut Reader::new(&bytes));
        }
    }
}
