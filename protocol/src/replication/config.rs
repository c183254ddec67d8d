//! Leader-follower configuration, validated up front so an impossible cluster fails before a run
//! starts.

use std::fmt;

use super::message::WIRE_RECORDS_COUNT_MAX;
use crate::raft::NODES_COUNT_MAX;
use crate::types::{NodeId, Tick};

/// Settings of a leader-follower cluster. Every node of a cluster shares one `Config`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Number of replicas, `1..=NODES_COUNT_MAX`; nodes are numbered `1..=nodes_count`.
    pub nodes_count: u32,
    /// The fixed leader. There are no elections: if it is down, writes wait for it.
    pub leader: NodeId,
    /// Replicas that must hold a record durably before it commits, counting the leader's own
    /// copy: `1..=nodes_count`. [`Config::majority`] is the usual choice.
    pub quorum: usize,
    /// Interval between the leader's heartbeat rounds (heartbeats, re-shipping, reports).
    pub heartbeat_ticks: Tick,
    /// A follower the leader has not heard from for this long is marked offline: no longer
    /// shipped to nor waited on. Must exceed `heartbeat_ticks`, or a healthy follower whose
    /// answer is one heartbeat away would flap.
    pub keepalive_timeout_ticks: Tick,
    /// `true`: ship every new record at once (many Ships may be unacknowledged). `false`:
    /// sequential shipping, at most one unacknowledged Ship per follower.
    pub pipeline: bool,
    /// Followers answer reads from their own (possibly stale) store instead of redirecting.
    pub read_from_follower: bool,
    /// Most committed records the leader keeps in memory for catch-up; a follower that needs an
    /// older one gets a snapshot instead. Uncommitted records are always kept.
    pub wal_retain_records: usize,
    /// Most records one Ship carries.
    pub records_per_ship_max: usize,
    /// Most client requests (writes awaiting their quorum, reads awaiting commit) the leader
    /// holds; also the most uncommitted records it accepts. More get `Overloaded`.
    pub pending_requests_max: usize,
    /// Size of the client dedup table (see [`crate::dedup`]).
    pub clients_max: usize,
    /// Order writes by the timestamp the *client* put on its request
    /// ([`crate::node::ClientRequest::timestamp`]) instead of the leader's own, strictly
    /// increasing clock. Off by default: client clocks skew, and last-writer-wins then loses
    /// acknowledged writes (a finding raftsim demonstrates, see `lww-clock-skew.scn`).
    pub client_timestamps: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config::for_nodes(3)
    }
}

/// Why a [`Config`] cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid replication config: {}", self.0)
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// The defaults for a cluster of `nodes_count` replicas: leader n1, majority quorum,
    /// heartbeats every 50 ticks, offline after 200 silent ticks, pipelined shipping.
    pub fn for_nodes(nodes_count: u32) -> Config {
        Config {
            nodes_count,
            leader: 1,
            quorum: Config::majority(nodes_count),
            heartbeat_ticks: 50,
            keepalive_timeout_ticks: 200,
            pipeline: true,
            read_from_follower: false,
            wal_retain_records: 10_000,
            records_per_ship_max: 64,
            pending_requests_max: 4096,
            clients_max: 1024,
            client_timestamps: false,
        }
    }

    /// A strict majority of `nodes_count` replicas: `nodes_count / 2 + 1`.
    pub fn majority(nodes_count: u32) -> usize {
        nodes_count as usize / 2 + 1
    }

    /// Number of followers (every replica but the leader).
    pub fn followers_count(&self) -> usize {
        self.nodes_count as usize - 1
    }

    /// Check that the settings describe a cluster that can work. Returns the first problem.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let fail = |s: String| Err(ConfigError(s));
        if self.nodes_count == 0 || self.nodes_count > NODES_COUNT_MAX {
            return fail(format!(
                "nodes_count must be 1..={NODES_COUNT_MAX}, got {}",
                self.nodes_count
            ));
        }
        if self.leader == 0 || self.leader > self.nodes_count {
            return fail(format!(
                "leader must be one of the nodes 1..={}, got {}",
                self.nodes_count, self.leader
            ));
        }
        if self.quorum == 0 || self.quorum > self.nodes_count as usize {
            return fail(format!(
                "quorum must be 1..={} (acks needed counting the leader), got {}",
                self.nodes_count, self.quorum
            ));
        }
        if self.heartbeat_ticks == 0 {
            return fail("heartbeat_ticks must be at least 1".into());
        }
        if self.keepalive_timeout_ticks <= self.heartbeat_ticks {
            return fail(format!(
                "keepalive_timeout_ticks ({}) must exceed heartbeat_ticks ({}), or a healthy \
                 follower is marked offline between two heartbeats",
                self.keepalive_timeout_ticks, self.heartbeat_ticks
            ));
        }
        if self.wal_retain_records == 0 {
            return fail("wal_retain_records must be at least 1".into());
        }
        if self.records_per_ship_max == 0 || self.records_per_ship_max > WIRE_RECORDS_COUNT_MAX {
            return fail(format!(
                "records_per_ship_max must be 1..={WIRE_RECORDS_COUNT_MAX}, got {}",
                self.records_per_ship_max
            ));
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
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_for_every_size() {
        assert_eq!(Config::default().validate(), Ok(()));
        for n in 1..=NODES_COUNT_MAX {
            let c = Config::for_nodes(n);
            assert_eq!(c.validate(), Ok(()), "{n} nodes");
            assert_eq!(c.quorum, n as usize / 2 + 1);
            assert_eq!(c.followers_count(), n as usize - 1);
        }
    }

    #[test]
    fn rejects_impossible_clusters() {
        let base = Config::default();
        let err = |c: Config| c.validate().unwrap_err().0;
        assert!(err(Config {
            nodes_count: 10,
            ..base.clone()
        })
        .contains("nodes_count"));
        assert!(err(Config {
            leader: 4,
            ..base.clone()
        })
        .contains("leader"));
        assert!(err(Config {
            leader: 0,
            ..base.clone()
        })
        .contains("leader"));
        assert!(err(Config {
            quorum: 0,
            ..base.clone()
        })
        .contains("quorum"));
        assert!(err(Config {
            quorum: 4,
            ..base.clone()
        })
        .contains("quorum"));
        assert!(err(Config {
            keepalive_timeout_ticks: 50,
            ..base.clone()
        })
        .contains("keepalive_timeout_ticks"));
        assert!(err(Config {
            heartbeat_ticks: 0,
            ..base.clone()
        })
        .contains("heartbeat_ticks"));
        assert!(err(Config {
            wal_retain_records: 0,
            ..base.clone()
        })
        .contains("wal_retain_records"));
        assert!(err(Config {
            records_per_ship_max: 0,
            ..base.clone()
        })
        .contains("records_per_ship_max"));
        assert!(err(Config {
            clients_max: crate::dedup::SESSIONS_MAX + 1,
            ..base.clone()
        })
        .contains("clients_max"));
        assert!(err(Config {
            pending_requests_max: 0,
            ..base
        })
        .contains("pending_requests_max"));
    }

    #[test]
    fn errors_say_which_protocol() {
        assert_eq!(
            ConfigError("x".into()).to_string(),
            "invalid replication config: x"
        );
    }
}
