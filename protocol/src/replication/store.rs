//! The last-writer-wins store every replica applies effects to, and the snapshot of a replica's
//! whole state.
//!
//! Each key remembers the [`Version`] of the write that last set (or deleted) it. An effect
//! applies only if its [`Stamp`](super::record::Stamp) — (timestamp, value bytes, client, seq) — is greater than the
//! key's; a delete leaves a tombstone carrying its version, so an older set that arrives later
//! cannot resurrect the key. The outcome of applying a set of effects therefore does not depend
//! on their order, which is what makes replicas converge. The price is that order *within* one
//! timestamp is not the log order: at equal timestamps the larger value wins, and a tombstone
//! (empty value bytes) loses to any set.
//!
//! The plain values are mirrored in a [`KvStore`], kept in step through [`KvStore::apply`], so
//! checkers compare replicas with the same store type and digest as Raft's.
//!
//! Bounds: at most [`crate::kv::KEYS_MAX`] keys *including tombstones* (tombstones are never
//! collected: without a known-stable point in time there is no safe moment to forget one).

use std::collections::BTreeMap;

use super::record::{Effect, Version};
use crate::codec::{self, CodecError, Fnv1a64, Reader};
use crate::dedup::DedupTable;
use crate::kv::{KvStore, Op, OpResult, KEYS_MAX};

/// What one key holds: its value (`None`: a tombstone) and the version that wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    /// The current value, or `None` once deleted.
    pub value: Option<String>,
    /// The write that set it.
    pub version: Version,
}

/// What [`LwwStore::apply`] did with an effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LwwOutcome {
    /// The effect won and the key changed (or was re-stamped with the same value).
    Applied,
    /// The key already holds a write with a greater-or-equal stamp; nothing changed.
    Superseded,
    /// The effect was [`Effect::None`].
    NoEffect,
}

/// A last-writer-wins key-value store. See the module docs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LwwStore {
    slots: BTreeMap<String, Slot>,
    kv: KvStore,
}

impl LwwStore {
    /// An empty store.
    pub fn new() -> LwwStore {
        LwwStore::default()
    }

    /// The plain values (tombstones hidden).
    pub fn kv(&self) -> &KvStore {
        &self.kv
    }

    /// Answer a read from the current values.
    ///
    /// # Panics
    /// If `op` is not a read.
    pub fn read(&mut self, op: &Op) -> OpResult {
        assert!(op.is_read(), "replication: {op} is not a read");
        self.kv.apply(op)
    }

    /// The slot of `key`, tombstone included.
    pub fn slot(&self, key: &str) -> Option<&Slot> {
        self.slots.get(key)
    }

    /// Keys held, tombstones included.
    pub fn slots_count(&self) -> usize {
        self.slots.len()
    }

    /// Apply `effect` written by `version` if it wins last-writer-wins against the key's
    /// current stamp.
    pub fn apply(&mut self, effect: &Effect, version: Version) -> LwwOutcome {
        let (key, value) = match effect {
            Effect::None => return LwwOutcome::NoEffect,
            Effect::Set { key, value } => (key, Some(value)),
            Effect::Tombstone { key } => (key, None),
        };
        let new_stamp = version.stamp(value.map(String::as_str));
        if let Some(slot) = self.slots.get(key) {
            if new_stamp <= slot.version.stamp(slot.value.as_deref()) {
                return LwwOutcome::Superseded;
            }
        } else {
            assert!(
                self.slots.len() < KEYS_MAX,
                "replication: key {key:?} would exceed KEYS_MAX ({KEYS_MAX}) counting tombstones"
            );
        }
        // Mirror into the plain store through the state machine itself.
        match value {
            Some(value) => self.kv.apply(&Op::Put {
                key: key.clone(),
                value: value.clone(),
            }),
            None => self.kv.apply(&Op::Delete { key: key.clone() }),
        };
        self.slots.insert(
            key.clone(),
            Slot {
                value: value.cloned(),
                version,
            },
        );
        debug_assert_eq!(
            self.kv.get(key),
            value.map(String::as_str),
            "mirror in step"
        );
        LwwOutcome::Applied
    }

    /// Append the store's encoding: a `u32` slot count, then per key in ascending order the
    /// key, a tag (`0` tombstone, `1` value) and the value, the timestamp, client and seq.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let count = u32::try_from(self.slots.len()).expect("KEYS_MAX fits in u32");
        codec::put_u32(out, count);
        for (key, slot) in &self.slots {
            codec::put_str(out, key);
            codec::put_opt_str(out, slot.value.as_deref());
            codec::put_u64(out, slot.version.timestamp);
            codec::put_u64(out, slot.version.client);
            codec::put_u64(out, slot.version.seq);
        }
    }

    /// Decode a store written by [`LwwStore::encode`]. Keys must be strictly ascending.
    pub fn decode(r: &mut Reader<'_>) -> Result<LwwStore, CodecError> {
        let count = r.u32()? as usize;
        if count > KEYS_MAX {
            return Err(CodecError::TooLong {
                len: count,
                max: KEYS_MAX,
            });
        }
        let mut store = LwwStore::new();
        for _ in 0..count {
            let key = r.string()?;
            let value = r.opt_string()?;
            let version = Version {
                timestamp: r.u64()?,
                client: r.u64()?,
                seq: r.u64()?,
            };
            if let Some((last_key, _)) = store.slots.last_key_value() {
                if key <= *last_key {
                    return Err(CodecError::Invalid {
                        what: "lww snapshot keys are not strictly ascending",
                    });
                }
            }
            if let Some(value) = &value {
                store.kv.apply(&Op::Put {
                    key: key.clone(),
                    value: value.clone(),
                });
            }
            store.slots.insert(key, Slot { value, version });
        }
        Ok(store)
    }

    /// A deterministic hash of every slot, tombstones and versions included: equal digests mean
    /// the replicas converged, not merely that their visible values agree.
    pub fn digest(&self) -> u64 {
        let mut hasher = Fnv1a64::new();
        hasher.write_u64(self.slots.len() as u64);
        for (key, slot) in &self.slots {
            hasher.write_framed(key.as_bytes());
            match &slot.value {
                Some(value) => {
                    hasher.write(&[1]);
                    hasher.write_framed(value.as_bytes());
                }
                None => hasher.write(&[0]),
            }
            hasher.write_u64(slot.version.timestamp);
            hasher.write_u64(slot.version.client);
            hasher.write_u64(slot.version.seq);
        }
        hasher.finish()
    }
}

/// Append a replica's whole state — the LWW store, then the dedup table — as a snapshot
/// payload.
pub fn encode_state(store: &LwwStore, dedup: &DedupTable, out: &mut Vec<u8>) {
    store.encode(out);
    dedup.encode(out);
}

/// Decode a snapshot payload written by [`encode_state`]; the whole payload must be consumed.
pub fn decode_state(payload: &[u8]) -> Result<(LwwStore, DedupTable), CodecError> {
    let mut r = Reader::new(payload);
    let store = LwwStore::decode(&mut r)?;
    let dedup = DedupTable::decode(&mut r)?;
    r.finish()?;
    Ok((store, dedup))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn v(timestamp: u64, client: u64, seq: u64) -> Version {
        Version {
            timestamp,
            client,
            seq,
        }
    }

    fn set(key: &str, value: &str) -> Effect {
        Effect::Set {
            key: key.into(),
            value: value.into(),
        }
    }

    fn tomb(key: &str) -> Effect {
        Effect::Tombstone { key: key.into() }
    }

    #[test]
    fn a_later_timestamp_wins_whatever_the_arrival_order() {
        let mut a = LwwStore::new();
        assert_eq!(a.apply(&set("x", "new"), v(20, 1, 1)), LwwOutcome::Applied);
        assert_eq!(
            a.apply(&set("x", "old"), v(10, 2, 1)),
            LwwOutcome::Superseded
        );
        let mut b = LwwStore::new();
        b.apply(&set("x", "old"), v(10, 2, 1));
        b.apply(&set("x", "new"), v(20, 1, 1));
        assert_eq!(a.kv().get("x"), Some("new"));
        assert_eq!(a, b);
        assert_eq!(a.digest(), b.digest());
    }

    #[test]
    fn ties_break_on_value_then_client_then_seq() {
        let mut s = LwwStore::new();
        s.apply(&set("x", "b"), v(5, 1, 1));
        assert_eq!(s.apply(&set("x", "a"), v(5, 9, 9)), LwwOutcome::Superseded);
        assert_eq!(s.apply(&set("x", "c"), v(5, 1, 2)), LwwOutcome::Applied);
        assert_eq!(s.apply(&set("x", "c"), v(5, 2, 1)), LwwOutcome::Applied);
        assert_eq!(s.apply(&set("x", "c"), v(5, 2, 2)), LwwOutcome::Applied);
        assert_eq!(s.apply(&set("x", "c"), v(5, 2, 1)), LwwOutcome::Superseded);
        assert_eq!(s.slot("x").unwrap().version, v(5, 2, 2));
        // Re-applying the very same write changes nothing (idempotent).
        assert_eq!(s.apply(&set("x", "c"), v(5, 2, 2)), LwwOutcome::Superseded);
    }

    #[test]
    fn a_tombstone_stops_an_older_set_from_resurrecting_the_key() {
        let mut s = LwwStore::new();
        s.apply(&set("x", "1"), v(1, 1, 1));
        assert_eq!(s.apply(&tomb("x"), v(3, 1, 2)), LwwOutcome::Applied);
        assert_eq!(s.kv().get("x"), None);
        assert_eq!(s.apply(&set("x", "2"), v(2, 2, 1)), LwwOutcome::Superseded);
        assert_eq!(s.kv().get("x"), None, "not resurrected");
        assert_eq!(s.slots_count(), 1, "the tombstone is kept");
        assert_eq!(s.apply(&set("x", "3"), v(4, 2, 2)), LwwOutcome::Applied);
        assert_eq!(s.kv().get("x"), Some("3"));
        // A tombstone arriving before the set it deletes still wins.
        let mut t = LwwStore::new();
        t.apply(&tomb("y"), v(9, 1, 2));
        t.apply(&set("y", "zzz"), v(8, 1, 1));
        assert_eq!(t.kv().get("y"), None);
        assert_eq!(t.apply(&Effect::None, v(99, 1, 3)), LwwOutcome::NoEffect);
    }

    #[test]
    fn reads_see_the_plain_values() {
        let mut s = LwwStore::new();
        s.apply(&set("x", "1"), v(1, 1, 1));
        assert_eq!(
            s.read(&Op::Get { key: "x".into() }),
            OpResult::Value("1".into())
        );
        assert_eq!(s.read(&Op::Get { key: "y".into() }), OpResult::NotFound);
    }

    #[test]
    fn state_round_trips_and_rejects_bad_snapshots() {
        let mut s = LwwStore::new();
        s.apply(&set("b", "2"), v(4, 1, 2));
        s.apply(&set("a", "1"), v(3, 1, 1));
        s.apply(&tomb("c"), v(5, 2, 1));
        let mut dedup = DedupTable::new(4);
        dedup.record(1, 1, OpResult::Ok, 1);
        let mut payload = Vec::new();
        encode_state(&s, &dedup, &mut payload);
        let (s2, d2) = decode_state(&payload).unwrap();
        assert_eq!((&s2, &d2), (&s, &dedup));
        assert_eq!(s2.kv(), s.kv());
        for cut in 0..payload.len() {
            assert!(decode_state(&payload[..cut]).is_err(), "cut {cut}");
        }
        let mut unsorted = Vec::new();
        codec::put_u32(&mut unsorted, 2);
        for key in ["b", "a"] {
            codec::put_str(&mut unsorted, key);
            codec::put_opt_str(&mut unsorted, None);
            for _ in 0..3 {
                codec::put_u64(&mut unsorted, 0);
            }
        }
        assert!(matches!(
            LwwStore::decode(&mut Reader::new(&unsorted)),
            Err(CodecError::Invalid { .. })
        ));
    }

    fn effect_strategy() -> impl Strategy<Value = (Effect, Version)> {
        (0u8..3, 0u8..3, 0u8..3, 0u64..4, 1u64..4, 1u64..4).prop_map(
            |(kind, key, value, timestamp, client, seq)| {
                let key = format!("k{key}");
                let effect = match kind {
                    0 => Effect::Tombstone { key },
                    1 => Effect::None,
                    _ => Effect::Set {
                        key,
                        value: format!("v{value}"),
                    },
                };
                (effect, v(timestamp, client, seq))
            },
        )
    }

    proptest! {
        /// Convergence: any two arrival orders of the same effects give the same store.
        #[test]
        fn order_does_not_matter(
            effects in proptest::collection::vec(effect_strategy(), 0..24),
            seed in any::<u64>(),
        ) {
            // (client, seq) names one write: keep the first effect of each version.
            let mut seen = std::collections::BTreeSet::new();
            let effects: Vec<_> = effects
                .into_iter()
                .filter(|(_, ver)| seen.insert((ver.client, ver.seq)))
                .collect();
            let mut forward = LwwStore::new();
            for (e, ver) in &effects {
                forward.apply(e, *ver);
            }
            let mut shuffled = effects.clone();
            // A deterministic Fisher-Yates driven by the seed.
            let mut state = seed | 1;
            for i in (1..shuffled.len()).rev() {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                shuffled.swap(i, (state % (i as u64 + 1)) as usize);
            }
            let mut other = LwwStore::new();
            for (e, ver) in shuffled.iter().rev() {
                other.apply(e, *ver);
            }
            prop_assert_eq!(&forward, &other);
            prop_assert_eq!(forward.digest(), other.digest());
        }

        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
            let _ = decode_state(&bytes);
        }
    }
}
