//! Driver-level tests: a tiny deterministic loop (one-tick network, optional cuts, crash and
//! restart from the durable bytes) drives real `RaftNode`s through elections, writes, crashes,
//! deposed leaders, retries, corruption, log compaction and InstallSnapshot.

use raftsim_protocol::kv::{Op, OpResult};
use raftsim_protocol::node::{
    ApplyOutcome, ClientRequest, ClientResponse, Node, NodeEvent, Reply, Role,
};
use raftsim_protocol::raft::{Config, Message, RaftNode};
use raftsim_protocol::types::{NodeId, Tick};
use raftsim_protocol::wal::DecodeError;

struct Cluster {
    config: Config,
    nodes: Vec<Option<RaftNode>>,
    disks: Vec<Vec<u8>>,
    /// (deliver_at, to, from, message)
    in_flight: Vec<(Tick, NodeId, NodeId, Message)>,
    /// Directed links that drop everything: (from, to).
    cut: Vec<(NodeId, NodeId)>,
    replies: Vec<Reply>,
    /// (node, index, outcome) of every client-command application, in order.
    applied: Vec<(NodeId, u64, ApplyOutcome)>,
    events: Vec<(NodeId, NodeEvent)>,
    /// Messages sent, by type name.
    sent: std::collections::BTreeMap<&'static str, u64>,
    /// The largest WAL any node held.
    disk_bytes_max: usize,
    /// Flip a bit in the next message of this kind, which then arrives as corrupt bytes.
    corrupt_next: Option<&'static str>,
    /// (deliver_at, to, from, bytes) of corrupted messages.
    corrupt_in_flight: Vec<(Tick, NodeId, NodeId, Vec<u8>)>,
    now: Tick,
}

impl Cluster {
    fn new(nodes_count: u32) -> Cluster {
        let config = Config {
            nodes_count,
            ..Config::default()
        };
        Cluster::with_config(config)
    }

    fn with_config(config: Config) -> Cluster {
        let n = config.nodes_count;
        Cluster {
            nodes: (1..=n)
                .map(|id| Some(RaftNode::new(id, config.clone(), 77 * u64::from(id), 0)))
                .collect(),
            disks: vec![Vec::new(); n as usize],
            in_flight: Vec::new(),
            cut: Vec::new(),
            replies: Vec::new(),
            applied: Vec::new(),
            events: Vec::new(),
            sent: Default::default(),
            disk_bytes_max: 0,
            corrupt_next: None,
            corrupt_in_flight: Vec::new(),
            now: 0,
            config,
        }
    }

    fn node(&self, id: NodeId) -> &RaftNode {
        self.nodes[id as usize - 1].as_ref().expect("node is up")
    }

    fn drain(&mut self, id: NodeId) {
        let Some(node) = self.nodes[id as usize - 1].as_mut() else {
            return;
        };
        let out = node.output();
        let disk = &mut self.disks[id as usize - 1];
        if out.persist_replace {
            // Log compaction: the persist buffer is the whole new WAL.
            disk.clear();
        }
        disk.extend_from_slice(&out.persist);
        self.disk_bytes_max = self.disk_bytes_max.max(disk.len());
        for (to, m) in out.messages.drain(..) {
            *self.sent.entry(m.kind_name()).or_insert(0) += 1;
            if self.corrupt_next == Some(m.kind_name()) && !self.cut.contains(&(id, to)) {
                self.corrupt_next = None;
                let mut bytes = Vec::new();
                raftsim_protocol::node::WireMessage::encode_wire(&m, &mut bytes);
                let at = bytes.len() / 2;
                bytes[at] ^= 0x04;
                self.corrupt_in_flight.push((self.now + 1, to, id, bytes));
                continue;
            }
            if !self.cut.contains(&(id, to)) {
                self.in_flight.push((self.now + 1, to, id, m));
            }
        }
        self.replies.append(&mut out.replies);
        for a in out.applied.drain(..) {
            if a.command.is_some() {
                self.applied.push((id, a.index, a.outcome));
            }
        }
        for e in out.events.drain(..) {
            self.events.push((id, e));
        }
        out.clear();
    }

    fn step(&mut self) {
        self.now += 1;
        let now = self.now;
        for id in 1..=self.config.nodes_count {
            if let Some(node) = self.nodes[id as usize - 1].as_mut() {
                if node.next_deadline_tick().is_some_and(|t| t <= now) {
                    node.handle_tick(now);
                }
            }
            self.drain(id);
        }
        let due: Vec<_> = {
            let (due, later) = std::mem::take(&mut self.in_flight)
                .into_iter()
                .partition(|m| m.0 <= now);
            self.in_flight = later;
            due
        };
        for (_, to, from, m) in due {
            if let Some(node) = self.nodes[to as usize - 1].as_mut() {
                node.handle_message(now, from, m);
                self.drain(to);
            }
        }
        let (due, later) = std::mem::take(&mut self.corrupt_in_flight)
            .into_iter()
            .partition(|m| m.0 <= now);
        self.corrupt_in_flight = later;
        for (_, to, from, bytes) in due {
            if let Some(node) = self.nodes[to as usize - 1].as_mut() {
                node.handle_wire(now, from, &bytes);
                self.drain(to);
            }
        }
    }

    fn run(&mut self, ticks: Tick) {
        for _ in 0..ticks {
            self.step();
        }
    }

    fn leaders(&self) -> Vec<NodeId> {
        self.nodes
            .iter()
            .flatten()
            .filter(|n| n.is_leader())
            .map(|n| n.id())
            .collect()
    }

    fn run_until_leader(&mut self) -> NodeId {
        for _ in 0..5_000 {
            self.step();
            if let [leader] = self.leaders()[..] {
                return leader;
            }
        }
        panic!("no single leader after 5000 ticks: {:?}", self.leaders());
    }

    fn request(&mut self, to: NodeId, client: u64, seq: u64, op: Op) {
        let now = self.now;
        self.nodes[to as usize - 1]
            .as_mut()
            .expect("node is up")
            .handle_request(
                now,
                ClientRequest {
                    client,
                    seq,
                    op: op.into(),
                    timestamp: now,
                },
            );
        self.drain(to);
    }

    fn crash(&mut self, id: NodeId) {
        self.nodes[id as usize - 1] = None;
        self.in_flight.retain(|m| m.1 != id);
    }

    fn restart(&mut self, id: NodeId) {
        let (node, report) = RaftNode::restore(
            id,
            self.config.clone(),
            999 + u64::from(id),
            self.now,
            &self.disks[id as usize - 1],
        )
        .expect("clean disk restores");
        assert!(!report.torn_tail);
        self.nodes[id as usize - 1] = Some(node);
    }

    fn isolate(&mut self, id: NodeId) {
        for other in 1..=self.config.nodes_count {
            if other != id {
                self.cut.push((id, other));
                self.cut.push((other, id));
            }
        }
    }

    fn heal(&mut self) {
        self.cut.clear();
    }

    fn reply_for(&self, client: u64, seq: u64) -> Vec<&ClientResponse> {
        self.replies
            .iter()
            .filter(|r| r.client == client && r.seq == seq)
            .map(|r| &r.response)
            .collect()
    }
}

fn put(key: &str, value: &str) -> Op {
    Op::Put {
        key: key.into(),
        value: value.into(),
    }
}

fn append(key: &str, value: &str) -> Op {
    Op::Append {
        key: key.into(),
        value: value.into(),
    }
}

#[test]
fn three_and_five_nodes_elect_exactly_one_leader() {
    for n in [3, 5] {
        let mut c = Cluster::new(n);
        let leader = c.run_until_leader();
        // Stays the only leader for a long while on a perfect network.
        for _ in 0..2_000 {
            c.step();
            assert_eq!(c.leaders(), vec![leader], "{n} nodes at tick {}", c.now);
        }
        let term = c.node(leader).term();
        for id in 1..=n {
            assert_eq!(c.node(id).term(), term, "all nodes share the leader's term");
        }
    }
}

#[test]
fn single_node_cluster_commits_alone() {
    let mut c = Cluster::new(1);
    let leader = c.run_until_leader();
    c.request(leader, 1, 1, put("x", "1"));
    c.run(2);
    assert_eq!(
        c.reply_for(1, 1),
        vec![&ClientResponse::Ok {
            result: OpResult::Ok
        }]
    );
}

#[test]
fn a_write_commits_and_is_applied_on_all() {
    let mut c = Cluster::new(3);
    let leader = c.run_until_leader();
    c.request(leader, 1, 1, put("x", "42"));
    c.run(10);
    assert_eq!(
        c.reply_for(1, 1),
        vec![&ClientResponse::Ok {
            result: OpResult::Ok
        }]
    );
    for id in 1..=3 {
        assert_eq!(c.node(id).kv().get("x"), Some("42"), "n{id}");
    }
}

#[test]
fn a_follower_redirects_to_the_leader() {
    let mut c = Cluster::new(3);
    let leader = c.run_until_leader();
    c.run(5); // the first heartbeat tells followers who leads
    let follower = (1..=3).find(|&n| n != leader).unwrap();
    c.request(follower, 1, 1, put("x", "1"));
    assert_eq!(
        c.reply_for(1, 1),
        vec![&ClientResponse::NotLeader {
            leader_hint: Some(leader)
        }]
    );
}

#[test]
fn a_restarted_voter_does_not_vote_twice_in_a_term() {
    let mut c = Cluster::new(3);
    let leader = c.run_until_leader();
    let voter = (1..=3).find(|&n| n != leader).unwrap();
    let term = c.node(voter).term();
    let voted = c.node(voter).view().voted_for;
    assert!(voted.is_some(), "the follower voted in the election");
    c.crash(voter);
    c.restart(voter);
    let view = c.node(voter).view();
    assert_eq!(
        (view.term, view.voted_for),
        (term, voted),
        "vote survived the crash"
    );
    // A different candidate of the same term asks: refused.
    let other = (1..=3)
        .find(|&n| n != voted.unwrap() && n != voter)
        .unwrap();
    let node = c.nodes[voter as usize - 1].as_mut().unwrap();
    node.handle_message(
        c.now,
        other,
        Message::RequestVote {
            term,
            last_index: 100,
            last_term: term,
            pre_vote: false,
        },
    );
    let out = node.output();
    assert!(
        out.messages.iter().any(|(to, m)| *to == other
            && matches!(m, Message::Vote { granted: false, term: t, .. } if *t == term)),
        "second vote in term {term} must be refused: {:?}",
        out.messages
    );
    out.clear();
}

#[test]
fn a_deposed_leader_rejects_writes_and_they_never_commit() {
    let mut c = Cluster::new(3);
    let old = c.run_until_leader();
    let old_term = c.node(old).term();
    c.isolate(old);
    // The majority elects a new leader in a higher term.
    let mut new = None;
    for _ in 0..5_000 {
        c.step();
        if let Some(&l) = c.leaders().iter().find(|&&l| l != old) {
            new = Some(l);
            break;
        }
    }
    let new = new.expect("majority elects a new leader");
    assert!(c.node(new).term() > old_term);
    // The old leader, still isolated, accepts the write into its log but cannot commit it.
    c.request(old, 7, 1, put("x", "stale"));
    c.run(300);
    assert!(c.reply_for(7, 1).is_empty(), "no reply while isolated");
    c.heal();
    c.run(300);
    assert_eq!(c.node(old).role(), Role::Follower, "stepped down on heal");
    assert!(
        matches!(c.reply_for(7, 1)[..], [ClientResponse::NotLeader { .. }]),
        "the pending write is answered NotLeader when the old leader learns the new term"
    );
    for id in 1..=3 {
        assert_eq!(c.node(id).kv().get("x"), None, "stale write never applied");
    }
    // And a new write to the deposed leader is redirected, never accepted.
    c.request(old, 7, 2, put("x", "again"));
    assert_eq!(
        c.reply_for(7, 2),
        vec![&ClientResponse::NotLeader {
            leader_hint: Some(new)
        }]
    );
    assert!(c.events.iter().any(|(n, e)| *n == old
        && matches!(e, NodeEvent::SteppedDown { old_term: t, .. } if *t == old_term)));
}

#[test]
fn a_duplicate_retry_returns_the_cached_reply_without_reapplying() {
    let mut c = Cluster::new(3);
    let leader = c.run_until_leader();
    c.request(leader, 3, 1, append("log", "a"));
    c.run(10);
    c.request(leader, 3, 1, append("log", "a"));
    c.run(10);
    assert_eq!(
        c.reply_for(3, 1),
        vec![
            &ClientResponse::Ok {
                result: OpResult::Ok
            },
            &ClientResponse::Duplicate {
                cached: Some(OpResult::Ok)
            },
        ]
    );
    for id in 1..=3 {
        assert_eq!(
            c.node(id).kv().get("log"),
            Some("a"),
            "applied once on n{id}"
        );
    }
}

#[test]
fn a_retry_to_a_new_leader_is_deduplicated_through_the_log() {
    let mut c = Cluster::new(3);
    let old = c.run_until_leader();
    c.request(old, 3, 1, append("log", "a"));
    c.run(10);
    c.crash(old);
    let mut new = None;
    for _ in 0..5_000 {
        c.step();
        if let [l] = c.leaders()[..] {
            new = Some(l);
            break;
        }
    }
    let new = new.expect("re-election");
    c.request(new, 3, 1, append("log", "a"));
    c.run(20);
    let replies = c.reply_for(3, 1);
    assert!(
        matches!(
            replies.last(),
            Some(ClientResponse::Duplicate {
                cached: Some(OpResult::Ok)
            })
        ),
        "{replies:?}"
    );
    let dup_applies = c
        .applied
        .iter()
        .filter(|(_, _, o)| matches!(o, ApplyOutcome::Applied(_)))
        .count();
    assert_eq!(
        dup_applies, 3,
        "applied once on each of 3 replicas, never twice"
    );
    assert_eq!(c.node(new).kv().get("log"), Some("a"));
}

#[test]
fn a_gap_is_an_error_and_nothing_is_applied() {
    let mut c = Cluster::new(3);
    let leader = c.run_until_leader();
    c.request(leader, 5, 1, put("k", "1"));
    c.run(10);
    c.request(leader, 5, 3, put("k", "3"));
    c.run(10);
    assert_eq!(
        c.reply_for(5, 3),
        vec![&ClientResponse::Gap { expected: 2 }]
    );
    assert_eq!(c.node(leader).kv().get("k"), Some("1"));
    // An unknown client starting past 1 has no session.
    c.request(leader, 6, 4, put("k", "x"));
    c.run(10);
    assert_eq!(c.reply_for(6, 4), vec![&ClientResponse::SessionExpired]);
}

#[test]
fn a_bit_flipped_shipped_record_is_rejected_and_never_applied() {
    let mut c = Cluster::new(3);
    let leader = c.run_until_leader();
    let follower = (1..=3).find(|&n| n != leader).unwrap();
    let term = c.node(leader).term();
    let prev_index = c.node(follower).log().last_index();
    let message = Message::AppendEntries {
        term,
        prev_index,
        prev_term: c.node(follower).log().last_term(),
        entries: vec![raftsim_protocol::raft::Entry::new(
            term,
            raftsim_protocol::raft::Command::Client {
                client: 9,
                seq: 1,
                op: put("evil", "1").into(),
            },
        )]
        .into(),
        commit: prev_index + 1,
        sent_at: c.now,
    };
    let mut bytes = Vec::new();
    raftsim_protocol::node::WireMessage::encode_wire(&message, &mut bytes);
    // Flip one bit in the middle of the shipped entry's payload.
    let at = bytes.len() - 3;
    bytes[at] ^= 0x10;
    let node = c.nodes[follower as usize - 1].as_mut().unwrap();
    node.handle_wire(c.now, leader, &bytes);
    let out = node.output();
    assert!(matches!(
        out.events.as_slice(),
        [NodeEvent::CorruptRejected { from, error: DecodeError::ChecksumMismatch { .. } }] if *from == leader
    ));
    assert!(out.messages.is_empty() && out.persist.is_empty());
    out.clear();
    assert_eq!(c.node(follower).log().last_index(), prev_index);
    assert_eq!(c.node(follower).kv().get("evil"), None);
}

#[test]
fn a_far_behind_follower_catches_up_in_few_round_trips() {
    // Pre-vote keeps the isolated node from raising the term, so the test measures log repair
    // alone, not a disruptive election.
    let mut c = Cluster::with_config(Config {
        pre_vote: true,
        ..Config::default()
    });
    let leader = c.run_until_leader();
    let lagger = (1..=3).find(|&n| n != leader).unwrap();
    c.isolate(lagger);
    for seq in 1..=500 {
        c.request(leader, 1, seq, put("k", &seq.to_string()));
        c.step();
    }
    c.run(10);
    c.heal();
    let responses_before = c.events.len();
    let start = c.now;
    while c.node(lagger).kv().get("k") != Some("500") {
        c.step();
        assert!(
            c.now - start < 200,
            "catch-up took too long: {:?} {:?}",
            c.node(lagger).view(),
            c.events[responses_before..]
                .iter()
                .take(20)
                .collect::<Vec<_>>()
        );
    }
    let conflicts = c.events[responses_before..]
        .iter()
        .filter(|(n, e)| *n == lagger && matches!(e, NodeEvent::LogConflict { .. }))
        .count();
    assert!(conflicts <= 2, "fast backup: {conflicts} rejections");
}

#[test]
fn pre_vote_keeps_a_rejoining_node_from_raising_the_term() {
    for pre_vote in [false, true] {
        let mut c = Cluster::with_config(Config {
            pre_vote,
            ..Config::default()
        });
        let leader = c.run_until_leader();
        let term = c.node(leader).term();
        let loner = (1..=3).find(|&n| n != leader).unwrap();
        c.isolate(loner);
        c.run(2_000);
        c.heal();
        c.run(1_000);
        let new_term = c.node(leader).term();
        if pre_vote {
            assert_eq!(new_term, term, "pre-vote: the term did not move");
            assert_eq!(c.leaders(), vec![leader], "pre-vote: leader kept");
        } else {
            assert!(
                new_term > term,
                "without pre-vote the rejoining node raises the term"
            );
        }
    }
}

#[test]
fn check_quorum_makes_an_isolated_leader_step_down() {
    let mut c = Cluster::with_config(Config {
        check_quorum: true,
        ..Config::default()
    });
    let leader = c.run_until_leader();
    c.isolate(leader);
    c.run(400);
    assert_ne!(c.node(leader).role(), Role::Leader);
    assert!(c
        .events
        .iter()
        .any(|(n, e)| *n == leader && matches!(e, NodeEvent::QuorumLost { .. })));
}

#[test]
fn lease_reads_are_served_locally_only_with_a_valid_lease() {
    let mut c = Cluster::with_config(Config {
        check_quorum: true,
        lease_reads: true,
        lease_ticks: 100,
        ..Config::default()
    });
    let leader = c.run_until_leader();
    c.request(leader, 1, 1, put("x", "1"));
    c.run(60);
    c.request(leader, 1, 0, Op::Get { key: "x".into() });
    // Served at once, from the lease, without a log round trip.
    assert_eq!(
        c.reply_for(1, 0),
        vec![&ClientResponse::Ok {
            result: OpResult::Value("1".into())
        }]
    );
    c.isolate(leader);
    c.run(120);
    if c.node(leader).is_leader() {
        c.request(leader, 2, 0, Op::Get { key: "x".into() });
        assert!(
            c.reply_for(2, 0).is_empty(),
            "expired lease: read goes through the log"
        );
    }
}

#[test]
fn five_nodes_tolerate_two_failures_but_not_three() {
    let mut c = Cluster::new(5);
    let leader = c.run_until_leader();
    let others: Vec<NodeId> = (1..=5).filter(|&n| n != leader).collect();
    c.crash(others[0]);
    c.crash(others[1]);
    c.request(leader, 1, 1, put("a", "1"));
    c.run(20);
    assert_eq!(c.reply_for(1, 1).len(), 1, "commits with 3 of 5");
    c.crash(others[2]);
    c.request(leader, 1, 2, put("a", "2"));
    c.run(100);
    assert!(c.reply_for(1, 2).is_empty(), "no commit with 2 of 5");
    c.restart(others[0]);
    c.run(500);
    assert_eq!(c.reply_for(1, 2).len(), 1, "commits again after recovery");
}

// ----- log compaction and InstallSnapshot (§7) -----

fn snapshot_config(threshold: u64, chunk_bytes: usize) -> Config {
    Config {
        // Pre-vote keeps an isolated node from raising the term, so the tests measure
        // catch-up alone.
        pre_vote: true,
        snapshot_entries_threshold: threshold,
        snapshot_chunk_bytes: chunk_bytes,
        ..Config::default()
    }
}

impl Cluster {
    /// `count` writes from client 1 (seq from `first_seq`), one per tick, over 13 keys.
    fn write_many(&mut self, leader: NodeId, first_seq: u64, count: u64) {
        for seq in first_seq..first_seq + count {
            self.request(
                leader,
                1,
                seq,
                put(&format!("k{}", seq % 13), &seq.to_string()),
            );
            self.step();
        }
    }

    /// Run until `id` has applied what `leader` has, within `ticks_max`.
    fn run_until_caught_up(&mut self, id: NodeId, leader: NodeId, ticks_max: Tick) {
        let start = self.now;
        while self.node(id).applied_index() < self.node(leader).applied_index() {
            self.step();
            assert!(
                self.now - start < ticks_max,
                "n{id} did not catch up: {:?} vs leader {:?}",
                self.node(id).view(),
                self.node(leader).view()
            );
        }
    }

    fn assert_same_state(&self, a: NodeId, b: NodeId) {
        assert_eq!(self.node(a).kv(), self.node(b).kv(), "n{a} and n{b} stores");
        assert_eq!(
            self.node(a).dedup(),
            self.node(b).dedup(),
            "n{a} and n{b} sessions"
        );
        assert_eq!(
            self.node(a).view().store_digest,
            self.node(b).view().store_digest
        );
    }

    fn snapshot_events(&self, id: NodeId) -> (usize, usize) {
        let mine = self.events.iter().filter(|(n, _)| *n == id);
        let taken = mine
            .clone()
            .filter(|(_, e)| matches!(e, NodeEvent::SnapshotTaken { .. }))
            .count();
        let installed = mine
            .filter(|(_, e)| matches!(e, NodeEvent::SnapshotInstalled { .. }))
            .count();
        (taken, installed)
    }
}

#[test]
fn a_lagging_follower_installs_a_snapshot_in_chunks_and_matches() {
    let mut c = Cluster::with_config(snapshot_config(50, 64));
    let leader = c.run_until_leader();
    let lagger = (1..=3).find(|&n| n != leader).unwrap();
    c.isolate(lagger);
    c.write_many(leader, 1, 300);
    c.run(10);
    let snapshot_index = c.node(leader).snapshot_index();
    assert!(
        snapshot_index >= 250,
        "the leader compacted: {snapshot_index}"
    );
    assert!(c.node(leader).log().len() <= 50 + 5);
    assert!(
        c.node(lagger).log().last_index() < snapshot_index,
        "the lagger needs entries the leader no longer holds"
    );
    // One chunk of the first transfer is corrupted in flight: its CRC catches it, and the
    // leader sends it again when the chunk goes unanswered for a heartbeat.
    c.corrupt_next = Some("InstallSnapshot");
    c.heal();
    c.run_until_caught_up(lagger, leader, 1_000);
    c.assert_same_state(lagger, leader);
    assert!(c
        .events
        .iter()
        .any(|(n, e)| *n == lagger && matches!(e, NodeEvent::CorruptRejected { .. })));
    assert_eq!(c.snapshot_events(lagger).1, 1, "installed exactly once");
    let image_bytes = c.node(leader).snapshot().unwrap().image_bytes();
    assert!(
        c.sent["InstallSnapshot"] > image_bytes / 64,
        "{image_bytes} bytes in 64-byte chunks: {:?}",
        c.sent
    );
    // The follower's log restarts after the snapshot and replication resumes normally.
    assert!(c.node(lagger).snapshot_index() >= snapshot_index);
    c.write_many(leader, 301, 20);
    c.run(10);
    c.assert_same_state(lagger, leader);
    assert_eq!(
        c.node(lagger).log().last_index(),
        c.node(leader).log().last_index()
    );
}

#[test]
fn a_crashed_node_restarts_from_a_compacted_wal_and_matches() {
    let mut c = Cluster::with_config(snapshot_config(20, 16 << 10));
    let leader = c.run_until_leader();
    let follower = (1..=3).find(|&n| n != leader).unwrap();
    c.write_many(leader, 1, 107);
    c.run(10);
    assert!(c.node(follower).snapshot_index() >= 100);
    // The follower's WAL was rewritten: it begins with the snapshot.
    let disk = c.disks[follower as usize - 1].clone();
    let (first, _) = raftsim_protocol::wal::decode_record(&disk).expect("valid WAL");
    assert_eq!(first.kind, raftsim_protocol::wal::RecordKind::Snapshot);
    c.crash(follower);
    c.write_many(leader, 108, 30);
    let (node, report) = RaftNode::restore(follower, c.config.clone(), 5, c.now, &disk)
        .expect("a compacted WAL restores");
    assert!(!report.torn_tail);
    assert!(report.records_count < 20 + 5, "a bounded WAL: {report:?}");
    assert!(node.snapshot_index() >= 100);
    assert_eq!(node.applied_index(), node.snapshot_index());
    assert_eq!(node.commit_index(), node.snapshot_index());
    c.restart(follower);
    c.run_until_caught_up(follower, leader, 500);
    c.assert_same_state(follower, leader);
    // The leader itself crashes and comes back from its own compacted WAL.
    c.crash(leader);
    let mut new_leader = None;
    for _ in 0..5_000 {
        c.step();
        if let [l] = c.leaders()[..] {
            new_leader = Some(l);
            break;
        }
    }
    let new_leader = new_leader.expect("re-election");
    c.write_many(new_leader, 138, 30);
    c.restart(leader);
    c.run_until_caught_up(leader, new_leader, 1_000);
    c.assert_same_state(leader, new_leader);
    for id in 1..=3 {
        assert_eq!(c.node(id).kv().get("k8"), Some("164"), "n{id}");
    }
}

/// The acceptance test: over 20,000 writes, every node's log stays within the
/// compaction threshold plus the entries in flight, and so does its WAL.
#[test]
fn memory_and_disk_stay_bounded_over_twenty_thousand_writes() {
    let threshold = 1_000;
    let mut c = Cluster::with_config(snapshot_config(threshold, 16 << 10));
    let leader = c.run_until_leader();
    let in_flight_margin = 16;
    let mut log_len_max = 0;
    for seq in 1..=20_000u64 {
        c.request(
            leader,
            1 + seq % 4,
            1 + seq / 4,
            put(&format!("k{}", seq % 13), "v"),
        );
        c.step();
        for id in 1..=3 {
            let log_len = c.node(id).log().len();
            log_len_max = log_len_max.max(log_len);
            assert!(
                log_len <= threshold as usize + in_flight_margin,
                "n{id} holds {log_len} entries at write {seq}"
            );
        }
    }
    c.run(10);
    assert_eq!(c.leaders(), vec![leader]);
    for id in 1..=3 {
        assert!(c.node(id).applied_index() > 20_000);
        let (taken, installed) = c.snapshot_events(id);
        assert!(taken >= 19, "n{id} took {taken} snapshots");
        assert_eq!(installed, 0, "nobody lagged");
        c.assert_same_state(id, leader);
    }
    // An entry record is about 60 bytes: 20,000 of them would be 1.2 MB.
    assert!(
        c.disk_bytes_max < 2 * (threshold as usize + in_flight_margin) * 64,
        "WAL peaked at {} bytes",
        c.disk_bytes_max
    );
    assert!(log_len_max >= threshold as usize - 1, "{log_len_max}");
}

/// A transfer keeps the snapshot it started with: the leader compacting again (here every 5
/// entries, while writes keep coming) does not restart it, so a follower catches up under load.
#[test]
fn a_snapshot_transfer_survives_compactions_under_load() {
    let mut c = Cluster::with_config(snapshot_config(5, 16));
    let leader = c.run_until_leader();
    let lagger = (1..=3).find(|&n| n != leader).unwrap();
    c.isolate(lagger);
    c.write_many(leader, 1, 100);
    c.heal();
    let sent_before = c.sent.get("InstallSnapshot").copied().unwrap_or(0);
    let mut seq = 101;
    while c.snapshot_events(lagger).1 == 0 {
        c.write_many(leader, seq, 1);
        seq += 1;
        assert!(
            seq < 400,
            "the transfer never finished: {:?}",
            c.node(lagger).view()
        );
    }
    assert!(seq - 101 >= 10, "writes went on during the transfer");
    let chunks_sent = c.sent["InstallSnapshot"] - sent_before;
    let image_bytes = c.node(lagger).snapshot().unwrap().image_bytes();
    assert!(
        chunks_sent <= image_bytes.div_ceil(16) + 2,
        "{chunks_sent} chunks for a {image_bytes}-byte image: the transfer restarted"
    );
    assert!(
        c.snapshot_events(leader).0 > 20 + (seq as usize - 101) / 5 - 2,
        "the leader kept compacting meanwhile"
    );
    c.run(20);
    c.run_until_caught_up(lagger, leader, 1_000);
    c.assert_same_state(lagger, leader);
}
