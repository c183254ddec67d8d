//! The harness scenarios, compiled into the binary so `raftsim harness` works from a fresh
//! clone or an installed binary with no scenario files around. When the file exists on disk
//! (relative to the current directory) the harness runs that instead, so edits take effect
//! without a rebuild.

/// One harness scenario.
#[derive(Debug, Clone, Copy)]
pub struct Embedded {
    /// The harness set: "raft" or "replication".
    pub set: &'static str,
    /// The test number printed by the harness.
    pub number: u32,
    /// The name printed by the harness.
    pub title: &'static str,
    /// Path relative to the repository root.
    pub path: &'static str,
    /// The script text compiled in.
    pub source: &'static str,
}

macro_rules! scenario {
    ($set:literal, $number:literal, $title:literal, $file:literal) => {
        Embedded {
            set: $set,
            number: $number,
            title: $title,
            path: concat!("scenarios/", $set, "/", $file),
            source: include_str!(concat!("../../../scenarios/", $set, "/", $file)),
        }
    };
}

/// The Raft harness (W12 R1–R6).
pub const RAFT: &[Embedded] = &[
    scenario!("raft", 1, "election", "election.scn"),
    scenario!("raft", 2, "heartbeats", "heartbeats.scn"),
    scenario!("raft", 3, "idempotency", "idempotency.scn"),
    scenario!("raft", 4, "redirect", "redirect.scn"),
    scenario!("raft", 5, "fencing", "fencing.scn"),
    scenario!("raft", 6, "full pipeline", "full-pipeline.scn"),
];

/// The leader-follower harness (W11 R1–R7).
pub const REPLICATION: &[Embedded] = &[
    scenario!("replication", 1, "connectivity", "connectivity.scn"),
    scenario!("replication", 2, "log shipping", "log-shipping.scn"),
    scenario!("replication", 3, "quorum ack", "quorum-ack.scn"),
    scenario!("replication", 4, "conflict lww", "conflict-lww.scn"),
    scenario!("replication", 5, "failure rejoin", "failure-rejoin.scn"),
    scenario!("replication", 6, "full pipeline", "full-pipeline.scn"),
];

/// Further Raft scenarios (not part of the harness count, but snapshotted and run by tests).
pub const RAFT_BONUS: &[Embedded] = &[
    scenario!("raft", 7, "prevote", "prevote.scn"),
    scenario!("raft", 8, "prevote off", "prevote-off.scn"),
    scenario!("raft", 9, "lease reads", "lease-reads.scn"),
    scenario!("raft", 10, "persistent vote", "persistent-vote.scn"),
    scenario!(
        "raft",
        11,
        "five nodes two failures",
        "five-nodes-two-failures.scn"
    ),
    scenario!("raft", 12, "figure 8", "figure8.scn"),
];

/// The source of a scenario: the file on disk if present, else the compiled-in copy.
pub fn source_of(scenario: &Embedded) -> (String, bool) {
    match std::fs::read_to_string(scenario.path) {
        Ok(text) => (text, true),
        Err(_) => (scenario.source.to_string(), false),
    }
}
