//! Planted bugs: classic Raft mistakes that can be switched on, one at a time, to prove that the
//! simulator's checkers have teeth (a checker that never fires proves nothing).
//!
//! Only with the `planted-bugs` cargo feature, which is off by default and never enabled for
//! release builds. Without the feature [`active`] is a constant `false` and every planted branch
//! compiles away. With it, the selection is one process-wide value set by the test or fuzz driver
//! before runs start; it is read-only while runs execute, so it cannot make a run depend on
//! thread timing.

/// A planted bug.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Bug {
    /// A voter grants a second vote in a term it already voted in (breaks Election Safety).
    DoubleVote,
    /// A voter replies before persisting its vote, so a crash can make it forget the vote and
    /// vote again in the same term (Election Safety, under crashes).
    VoteNotPersisted,
    /// A leader commits an entry of an earlier term by counting replicas (Raft paper Figure 8;
    /// breaks Leader Completeness / State Machine Safety under rare schedules).
    CommitPreviousTerm,
    /// A leader that learns of a higher term adopts it but stays leader (two leaders in one
    /// term: Election Safety).
    LeaderKeepsLeading,
    /// A receiver skips the CRC check of shipped records, so a flipped bit is applied.
    SkipCrc,
    /// Only the leader records client sessions; followers apply without deduplication, so a
    /// retry after a leader change is applied twice (Exactly-Once).
    DedupOnlyOnLeader,
    /// A leader serves lease reads without checking that its lease is still valid (stale reads
    /// after a partition: Linearizability).
    LeaseWithoutValidity,
}

impl Bug {
    /// Every planted bug.
    pub const ALL: [Bug; 7] = [
        Bug::DoubleVote,
        Bug::VoteNotPersisted,
        Bug::CommitPreviousTerm,
        Bug::LeaderKeepsLeading,
        Bug::SkipCrc,
        Bug::DedupOnlyOnLeader,
        Bug::LeaseWithoutValidity,
    ];

    /// The bug's command-line name.
    pub fn name(self) -> &'static str {
        match self {
            Bug::DoubleVote => "double-vote",
            Bug::VoteNotPersisted => "vote-not-persisted",
            Bug::CommitPreviousTerm => "commit-previous-term",
            Bug::LeaderKeepsLeading => "leader-keeps-leading",
            Bug::SkipCrc => "skip-crc",
            Bug::DedupOnlyOnLeader => "dedup-only-on-leader",
            Bug::LeaseWithoutValidity => "lease-without-validity",
        }
    }

    /// Parse a command-line name.
    pub fn from_name(name: &str) -> Option<Bug> {
        Bug::ALL.into_iter().find(|b| b.name() == name)
    }
}

#[cfg(feature = "planted-bugs")]
mod imp {
    use super::Bug;
    use std::sync::atomic::{AtomicU8, Ordering};

    static PLANTED: AtomicU8 = AtomicU8::new(0);

    pub fn set(bug: Option<Bug>) {
        let v = bug.map_or(0, |b| {
            Bug::ALL.iter().position(|x| *x == b).unwrap_or(0) as u8 + 1
        });
        PLANTED.store(v, Ordering::SeqCst);
    }

    pub fn planted() -> Option<Bug> {
        match PLANTED.load(Ordering::Relaxed) {
            0 => None,
            v => Bug::ALL.get(v as usize - 1).copied(),
        }
    }
}

/// Plant `bug` (or none) for every run that starts from now on. With the feature off this does
/// nothing and returns `false`.
pub fn set(bug: Option<Bug>) -> bool {
    #[cfg(feature = "planted-bugs")]
    {
        imp::set(bug);
        true
    }
    #[cfg(not(feature = "planted-bugs"))]
    {
        let _ = bug;
        false
    }
}

/// The planted bug, if any.
pub fn planted() -> Option<Bug> {
    #[cfg(feature = "planted-bugs")]
    {
        imp::planted()
    }
    #[cfg(not(feature = "planted-bugs"))]
    {
        None
    }
}

/// Whether `bug` is planted. A constant `false` without the feature.
#[inline(always)]
pub fn active(bug: Bug) -> bool {
    #[cfg(feature = "planted-bugs")]
    {
        imp::planted() == Some(bug)
    }
    #[cfg(not(feature = "planted-bugs"))]
    {
        let _ = bug;
        false
    }
}
