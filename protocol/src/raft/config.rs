//! Raft node configuration, validated up front so impossible timings fail before a run starts.

use std::fmt;

use crate::types::Tick;

/// Largest snapshot chunk a leader may be configured to send (1 MiB): a chunk travels as one
/// nested WAL record inside one message record, which must stay below
/// [`crate::wal::RECORD_PAYLOAD_BYTES_MAX`].
pub const SNAPSHOT_CHUNK_BYTES_MAX: usize = 1 << 20;

/// The largest cluster raftsim models. Nine voters tolerate four failures, which is more than
/// any production Raft deployment runs; the bound keeps per-node tables small.
pub const NODES_COUNT_MAX: u32 = 9;

/// Timing and feature settings of a Raft cluster. Every node of a cluster shares one `Config`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Number of voters, `1..=NODES_COUNT_MAX`; nodes are numbered `1..=nodes_count`.
    pub nodes_count: u32,
    /// Lower bound of the randomized election timeout (§5.2).
    pub election_timeout_ticks_min: Tick,
    /// Upper bound (inclusive) of the randomized election timeout.
    pub election_timeout_ticks_max: Tick,
    /// Interval between leader heartbeats (empty AppendEntries).
    pub heartbeat_ticks: Tick,
    /// Pre-vote (thesis §9.6): a node first checks it could win before raising its term, so a
    /// node rejoining from a partition does not depose a healthy leader.
    pub pre_vote: bool,
    /// Check-quorum and leader stickiness (thesis §6.2, §9.6): a leader steps down when it has
    /// not heard from a majority for an election timeout, and a follower that heard from a leader
    /// within the minimum election timeout ignores vote requests.
    pub check_quorum: bool,
    /// Leader lease reads (thesis §6.4.1): the leader serves a read locally while a majority
    /// acknowledged it within `lease_ticks`. Requires `check_quorum`.
    pub lease_reads: bool,
    /// Lease length, measured from when the acknowledged heartbeat was *sent*.
    pub lease_ticks: Tick,
    /// Bound on clock drift between any two nodes, in parts per million. The lease is only safe
    /// if `lease_ticks` stretched by this drift stays below `election_timeout_ticks_min` shrunk
    /// by it; `validate` checks that.
    pub clock_drift_ppm_max: u32,
    /// Largest number of entries one AppendEntries carries; a follower far behind catches up in
    /// batches of this size.
    pub entries_per_append_max: usize,
    /// Largest number of client requests a leader holds awaiting commit; more get `Overloaded`.
    pub pending_requests_max: usize,
    /// Size of the client dedup table (see [`crate::dedup`]).
    pub clients_max: usize,
    /// Log compaction (§7): once this many entries were applied since the last snapshot, the
    /// node snapshots its state machine and discards the log up to the applied index. Bounds
    /// the log held in memory and on disk.
    pub snapshot_entries_threshold: u64,
    /// Largest payload of one InstallSnapshot chunk, in bytes: a snapshot is sent in chunks of
    /// at most this size, one chunk in flight per follower.
    pub snapshot_chunk_bytes: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            nodes_count: 3,
            election_timeout_ticks_min: 150,
            election_timeout_ticks_max: 300,
            heartbeat_ticks: 50,
            pre_vote: false,
            check_quorum: false,
            lease_reads: false,
            lease_ticks: 100,
            clock_drift_ppm_max: 0,
            entries_per_append_max: 64,
            pending_requests_max: 4096,
            clients_max: 1024,
            snapshot_entries_threshold: 1_000,
            snapshot_chunk_bytes: 16 << 10,
        }
    }
}

/// Why a [`Config`] cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid raft config: {}", self.0)
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Check that the settings describe a cluster that can work. Returns the first problem.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let fail = |s: String| Err(ConfigError(s));
        if self.nodes_count == 0 || self.nodes_count > NODES_COUNT_MAX {
            return fail(format!(
                "nodes_count must be 1..={NODES_COUNT_MAX}, got {}",
                self.nodes_count
            ));
        }
        if self.heartbeat_ticks == 0 {
            return fail("heartbeat_ticks must be at least 1".into());
        }
        if self.election_timeout_ticks_min > self.election_timeout_ticks_max {
            return fail(format!(
                "election_timeout_ticks_min ({}) is above election_timeout_ticks_max ({})",
                self.election_timeout_ticks_min, self.election_timeout_ticks_max
            ));
        }
        if self.heartbeat_ticks >= self.election_timeout_ticks_min {
            return fail(format!(
                "heartbeat_ticks ({}) must be below election_timeout_ticks_min ({}), or followers \
                 time out between heartbeats",
                self.heartbeat_ticks, self.election_timeout_ticks_min
            ));
        }
        if self.clock_drift_ppm_max >= 1_000_000 {
            return fail("clock_drift_ppm_max must be below 1,000,000".into());
        }
        if self.entries_per_append_max == 0 {
            return fail("entries_per_append_max must be at least 1".into());
        }
        if self.pending_requests_max == 0 || self.clients_max == 0 {
            return fail("pending_requests_max and clients_max must be at least 1".into());
        }
        if self.clients_max > crate::dedup::SESSIONS_MAX {
            return fail(format!(
                "clients_max ({}) is above the dedup table's limit ({})",
                self.clients_max,
                crate::dedup::SESSIONS_MAX
            ));
        }
        if self.snapshot_entries_threshold == 0 {
            return fail("snapshot_entries_threshold must be at least 1".into());
        }
        if self.snapshot_chunk_bytes == 0 || self.snapshot_chunk_bytes > SNAPSHOT_CHUNK_BYTES_MAX {
            return fail(format!(
                "snapshot_chunk_bytes must be 1..={SNAPSHOT_CHUNK_BYTES_MAX}, got {}",
                self.snapshot_chunk_bytes
            ));
        }
        if self.lease_reads {
            if !self.check_quorum {
                return fail(
                    "lease_reads needs check_quorum: without leader stickiness a follower may vote \
                     for a new leader while the old leader's lease still runs"
                        .into(),
                );
            }
            // The lease is measured on the leader's clock, the election timeout on a follower's.
            // With relative drift d, a lease of L ticks may last L*(1+d) real ticks and a timeout
            // of E ticks may fire after E*(1-d): require L*(1+d) < E*(1-d).
            let ppm = u128::from(self.clock_drift_ppm_max);
            let lease = u128::from(self.lease_ticks) * (1_000_000 + ppm);
            let election = u128::from(self.election_timeout_ticks_min) * (1_000_000 - ppm);
            if self.lease_ticks == 0 || lease >= election {
                return fail(format!(
                    "lease_ticks ({}) must be positive and below election_timeout_ticks_min ({}) \
                     after allowing for clock drift of {} ppm",
                    self.lease_ticks, self.election_timeout_ticks_min, self.clock_drift_ppm_max
                ));
            }
        }
        Ok(())
    }

    /// Votes needed to win an election or commit an entry: a strict majority of voters.
    pub fn quorum(&self) -> usize {
        self.nodes_count as usize / 2 + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid() {
        assert_eq!(Config::default().validate(), Ok(()));
    }

    #[test]
    fn rejects_impossible_timings() {
        let mut c = Config {
            heartbeat_ticks: 200,
            ..Config::default()
        };
        assert!(c.validate().unwrap_err().0.contains("heartbeat_ticks"));
        c.heartbeat_ticks = 10;
        c.election_timeout_ticks_min = 400;
        assert!(c.validate().unwrap_err().0.contains("above"));
        c.election_timeout_ticks_min = 150;
        c.nodes_count = 10;
        assert!(c.validate().unwrap_err().0.contains("nodes_count"));
        c.nodes_count = 0;
        assert!(c.validate().is_err());
    }

    #[test]
    fn lease_needs_check_quorum_and_fits_under_election_timeout() {
        let mut c = Config {
            lease_reads: true,
            ..Config::default()
        };
        assert!(c.validate().unwrap_err().0.contains("check_quorum"));
        c.check_quorum = true;
        c.lease_ticks = 150;
        assert!(c.validate().unwrap_err().0.contains("lease_ticks"));
        c.lease_ticks = 140;
        assert_eq!(c.validate(), Ok(()));
        // 5% drift: 140*1.05 = 147 > 150*0.95 = 142.5.
        c.clock_drift_ppm_max = 50_000;
        assert!(c.validate().is_err());
    }

    #[test]
    fn snapshot_settings_are_bounded() {
        let mut c = Config {
            snapshot_entries_threshold: 0,
            ..Config::default()
        };
        assert!(c
            .validate()
            .unwrap_err()
            .0
            .contains("snapshot_entries_threshold"));
        c.snapshot_entries_threshold = 1;
        assert_eq!(c.validate(), Ok(()));
        c.snapshot_chunk_bytes = 0;
        assert!(c.validate().unwrap_err().0.contains("snapshot_chunk_bytes"));
        c.snapshot_chunk_bytes = SNAPSHOT_CHUNK_BYTES_MAX + 1;
        assert!(c.validate().unwrap_err().0.contains("snapshot_chunk_bytes"));
        c.snapshot_chunk_bytes = SNAPSHOT_CHUNK_BYTES_MAX;
        assert_eq!(c.validate(), Ok(()));
    }

    #[test]
    fn quorum_is_strict_majority() {
        let q: Vec<usize> = (1..=9)
            .map(|n| {
                Config {
                    nodes_count: n,
                    ..Config::default()
                }
                .quorum()
            })
            .collect();
        assert_eq!(q, vec![1, 2, 2, 3, 3, 4, 4, 5, 5]);
    }
}
