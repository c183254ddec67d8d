//! Driver-level tests of the leader-follower protocol: a tiny deterministic loop (one-tick
//! network, cuts, held and reordered messages, one-shot bit flips, crash and restart from the
//! durable bytes) drives real `ReplicaNode`s. Every message crosses the "wire" as bytes
//! (`encode_wire` → `handle_wire`), so the codec and its CRCs are exercised on every delivery.

use std::collections::{BTreeMap, BTreeSet};

use raftsim_protocol::kv::{Op, OpResult};
use raftsim_protocol::node::{
    Applied, ApplyOutcome, ClientRequest, ClientResponse, Node, NodeEvent, Reply, Role,
    WireMessage, READ_SEQ_BASE,
};
use raftsim_protocol::replication::{Config, LogRecord, Message, ReplicaNode, RestoreError, EPOCH};
use raftsim_protocol::types::{NodeId, Tick};
use raftsim_protocol::wal::{self, DecodeError, RecordKind};

struct Cluster {
    config: Config,
    nodes: Vec<Option<ReplicaNode>>,
    disks: Vec<Vec<u8>>,
    /// (deliver_at, to, from, wire bytes), delivered in insertion order.
    in_flight: Vec<(Tick, NodeId, NodeId, Vec<u8>)>,
    /// Directed links that drop everything: (from, to).
    cut: BTreeSet<(NodeId, NodeId)>,
    /// Messages of this kind on this link are held back until released: (from, to, kind).
    hold: Option<(NodeId, NodeId, &'static str)>,
    held: Vec<(NodeId, NodeId, Vec<u8>)>,
    /// One-shot corruption: flip a bit in the next message of this kind on this link.
    flips: Vec<(NodeId, NodeId, &'static str)>,
    /// Deliver each tick's due messages in reverse order.
    reverse_delivery: bool,
    /// Seeded message faults, when set.
    chaos: Option<Chaos>,
    /// Every message a node produced: (tick, from, to, message).
    sent: Vec<(Tick, NodeId, NodeId, Message)>,
    /// Per follower: Ships/Snapshots sent by the leader minus Acks/Nacks delivered back.
    unanswered: BTreeMap<NodeId, i64>,
    unanswered_max: BTreeMap<NodeId, i64>,
    replies: Vec<(Tick, Reply)>,
    applied: Vec<(NodeId, Applied)>,
    events: Vec<(Tick, NodeId, NodeEvent)>,
    now: Tick,
}

impl Cluster {
    fn new(config: Config) -> Cluster {
        config.validate().expect("test configs are valid");
        let n = config.nodes_count;
        Cluster {
            nodes: (1..=n)
                .map(|id| Some(ReplicaNode::new(id, config.clone(), 0)))
                .collect(),
            disks: vec![Vec::new(); n as usize],
            in_flight: Vec::new(),
            cut: BTreeSet::new(),
            hold: None,
            held: Vec::new(),
            flips: Vec::new(),
            reverse_delivery: false,
            chaos: None,
            sent: Vec::new(),
            unanswered: BTreeMap::new(),
            unanswered_max: BTreeMap::new(),
            replies: Vec::new(),
            applied: Vec::new(),
            events: Vec::new(),
            now: 0,
            config,
        }
    }

    fn three() -> Cluster {
        Cluster::new(Config::default())
    }

    fn leader(&self) -> NodeId {
        self.config.leader
    }

    fn node(&self, id: NodeId) -> &ReplicaNode {
        self.nodes[id as usize - 1].as_ref().expect("node is up")
    }

    fn node_mut(&mut self, id: NodeId) -> &mut ReplicaNode {
        self.nodes[id as usize - 1].as_mut().expect("node is up")
    }

    fn drain(&mut self, id: NodeId) {
        let now = self.now;
        let leader = self.config.leader;
        let Some(node) = self.nodes[id as usize - 1].as_mut() else {
            return;
        };
        let out = node.output();
        // Persist first: the driver syncs before releasing anything else.
        self.disks[id as usize - 1].extend_from_slice(&out.persist);
        let messages: Vec<_> = out.messages.drain(..).collect();
        for r in out.replies.drain(..) {
            self.replies.push((now, r));
        }
        for a in out.applied.drain(..) {
            self.applied.push((id, a));
        }
        for e in out.events.drain(..) {
            self.events.push((now, id, e));
        }
        out.clear();
        for (to, m) in messages {
            self.sent.push((now, id, to, m.clone()));
            if self.cut.contains(&(id, to)) {
                continue;
            }
            if id == leader && matches!(m, Message::Ship { .. } | Message::Snapshot { .. }) {
                let n = self.unanswered.entry(to).or_default();
                *n += 1;
                let max = self.unanswered_max.entry(to).or_default();
                *max = (*max).max(*n);
            }
            let mut bytes = Vec::new();
            m.encode_wire(&mut bytes);
            if let Some(at) = self
                .flips
                .iter()
                .position(|&(f, t, kind)| (f, t) == (id, to) && kind == m.kind_name())
            {
                self.flips.remove(at);
                let byte = bytes.len() - 3;
                bytes[byte] ^= 0x10;
            }
            if self.hold == Some((id, to, m.kind_name())) {
                self.held.push((id, to, bytes));
                continue;
            }
            if let Some(chaos) = self.chaos.as_mut() {
                for (delay, bytes) in chaos.fates(bytes) {
                    self.in_flight.push((now + delay, to, id, bytes));
                }
                continue;
            }
            self.in_flight.push((now + 1, to, id, bytes));
        }
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
        let mut due: Vec<_> = {
            let (due, later) = std::mem::take(&mut self.in_flight)
                .into_iter()
                .partition(|m| m.0 <= now);
            self.in_flight = later;
            due
        };
        if self.reverse_delivery {
            due.reverse();
        }
        let leader = self.config.leader;
        for (_, to, from, bytes) in due {
            if to == leader {
                if let Ok(Message::Ack { .. } | Message::Nack { .. }) = Message::decode_wire(&bytes)
                {
                    *self.unanswered.entry(from).or_default() -= 1;
                }
            }
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

    fn request_at(&mut self, to: NodeId, client: u64, seq: u64, op: Op, timestamp: Tick) {
        let now = self.now;
        self.node_mut(to).handle_request(
            now,
            ClientRequest {
                client,
                seq,
                op: op.into(),
                timestamp,
            },
        );
        self.drain(to);
    }

    fn request(&mut self, to: NodeId, client: u64, seq: u64, op: Op) {
        let now = self.now;
        self.request_at(to, client, seq, op, now);
    }

    fn crash(&mut self, id: NodeId) {
        self.nodes[id as usize - 1] = None;
        self.in_flight.retain(|m| m.1 != id);
    }

    fn restart(&mut self, id: NodeId) {
        let (node, report) = ReplicaNode::restore(
            id,
            self.config.clone(),
            self.now,
            &self.disks[id as usize - 1],
        )
        .expect("clean disk restores");
        assert!(!report.torn_tail);
        assert_eq!(report.valid_bytes, self.disks[id as usize - 1].len());
        self.nodes[id as usize - 1] = Some(node);
    }

    fn isolate(&mut self, id: NodeId) {
        for other in 1..=self.config.nodes_count {
            if other != id {
                self.cut.insert((id, other));
                self.cut.insert((other, id));
            }
        }
    }

    fn heal(&mut self) {
        self.cut.clear();
    }

    fn release_held_reversed(&mut self) {
        self.hold = None;
        let now = self.now;
        for (from, to, bytes) in std::mem::take(&mut self.held).into_iter().rev() {
            self.in_flight.push((now + 1, to, from, bytes));
        }
    }

    fn reply_for(&self, client: u64, seq: u64) -> Vec<&ClientResponse> {
        self.replies
            .iter()
            .filter(|(_, r)| r.client == client && r.seq == seq)
            .map(|(_, r)| &r.response)
            .collect()
    }

    fn notes(&self, id: NodeId) -> Vec<(Tick, &str)> {
        self.events
            .iter()
            .filter_map(|(t, n, e)| match e {
                NodeEvent::Note(s) if *n == id => Some((*t, s.as_str())),
                _ => None,
            })
            .collect()
    }

    fn has_note(&self, id: NodeId, text: &str) -> bool {
        self.notes(id).iter().any(|(_, s)| *s == text)
    }

    fn ships_to(&self, to: NodeId) -> usize {
        self.sent
            .iter()
            .filter(|(_, _, t, m)| *t == to && matches!(m, Message::Ship { .. }))
            .count()
    }

    /// Every live replica holds exactly the leader's state: same LSNs, values, LWW versions
    /// and dedup sessions.
    fn assert_converged(&self) {
        let leader = self.node(self.leader());
        for node in self.nodes.iter().flatten() {
            let id = node.id();
            assert_eq!(node.last_lsn(), leader.last_lsn(), "n{id} last lsn");
            assert_eq!(node.store(), leader.store(), "n{id} values");
            assert_eq!(node.lww_store(), leader.lww_store(), "n{id} LWW versions");
            assert_eq!(node.dedup(), leader.dedup(), "n{id} dedup table");
            assert_eq!(
                node.view().store_digest,
                leader.view().store_digest,
                "n{id} digest"
            );
        }
    }
}

/// Seeded message faults: loss, duplication, delay (hence reordering) and single-bit flips.
struct Chaos {
    rng: u64,
    loss_pct: u64,
    dup_pct: u64,
    flip_pct: u64,
    delay_ticks_max: u64,
}

impl Chaos {
    fn next(&mut self) -> u64 {
        // xorshift64*: tiny, seeded, deterministic.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn roll(&mut self, pct: u64) -> bool {
        self.next() % 100 < pct
    }

    /// What becomes of one message: zero, one or two deliveries `(delay, bytes)`.
    fn fates(&mut self, mut bytes: Vec<u8>) -> Vec<(Tick, Vec<u8>)> {
        if self.roll(self.loss_pct) {
            return Vec::new();
        }
        if self.roll(self.flip_pct) {
            let bit = self.next() as usize % (bytes.len() * 8);
            bytes[bit / 8] ^= 1 << (bit % 8);
        }
        let mut fates = vec![(1 + self.next() % self.delay_ticks_max, bytes.clone())];
        if self.roll(self.dup_pct) {
            fates.push((1 + self.next() % self.delay_ticks_max, bytes));
        }
        fates
    }
}

fn put(key: &str, value: &str) -> Op {
    Op::Put {
        key: key.into(),
        value: value.into(),
    }
}

fn get(key: &str) -> Op {
    Op::Get { key: key.into() }
}

fn ok() -> ClientResponse {
    ClientResponse::Ok {
        result: OpResult::Ok,
    }
}

fn value(v: &str) -> ClientResponse {
    ClientResponse::Ok {
        result: OpResult::Value(v.into()),
    }
}

#[test]
fn connectivity_is_reported_when_it_changes() {
    let mut c = Cluster::three();
    c.run(120);
    let responded: Vec<&str> = c
        .notes(1)
        .into_iter()
        .map(|(_, s)| s)
        .filter(|s| s.ends_with("followers responded"))
        .collect();
    assert_eq!(responded, vec!["2/2 followers responded"]);
    c.isolate(3);
    c.run(100);
    assert!(c.has_note(1, "1/2 followers responded"));
    c.heal();
    c.run(100);
    let last = c
        .notes(1)
        .into_iter()
        .rfind(|(_, s)| s.ends_with("followers responded"))
        .unwrap();
    assert_eq!(last.1, "2/2 followers responded");
    assert_eq!(c.node(1).online_followers(), vec![2, 3]);
}

#[test]
fn ten_writes_ship_and_every_follower_matches_the_leader() {
    let mut c = Cluster::three();
    c.run(5);
    let ops = [
        put("a", "1"),
        put("b", "2"),
        Op::Append {
            key: "a".into(),
            value: "x".into(),
        },
        Op::Delete { key: "b".into() },
        Op::Cas {
            key: "a".into(),
            expected: Some("1x".into()),
            new: "3".into(),
        },
        Op::Cas {
            key: "a".into(),
            expected: Some("nope".into()),
            new: "4".into(),
        },
        Op::Delete { key: "zz".into() },
        put("c", "5"),
        put("d", "6"),
        put("c", "7"),
    ];
    for (k, op) in ops.into_iter().enumerate() {
        c.request(1, 1, k as u64 + 1, op);
        c.step();
    }
    c.run(10);
    for seq in 1..=10 {
        let replies = c.reply_for(1, seq);
        assert_eq!(replies.len(), 1, "c1#{seq}: {replies:?}");
        assert!(matches!(replies[0], ClientResponse::Ok { .. }));
    }
    assert_eq!(
        c.reply_for(1, 6),
        vec![&ClientResponse::Ok {
            result: OpResult::CasMismatch {
                current: Some("3".into())
            }
        }]
    );
    c.assert_converged();
    let leader = c.node(1);
    assert_eq!((leader.last_lsn(), leader.commit_lsn()), (10, 10));
    assert_eq!(leader.store().get("a"), Some("3"));
    assert_eq!(leader.store().get("b"), None);
    assert_eq!(leader.store().get("c"), Some("7"));
    for id in 1..=3 {
        // Every replica reported all ten records in LSN order, once.
        let lsns: Vec<u64> = c
            .applied
            .iter()
            .filter(|(n, _)| *n == id)
            .map(|(_, a)| a.index)
            .collect();
        assert_eq!(lsns, (1..=10).collect::<Vec<_>>(), "n{id}");
        let view = c.node(id).view();
        assert_eq!(
            (view.term, view.last_index, view.leader_hint),
            (1, 10, Some(1))
        );
    }
    assert_eq!(c.node(2).role(), Role::Follower);
    assert_eq!(c.node(1).view().role, Role::Leader);
}

#[test]
fn a_bit_flipped_ship_is_rejected_and_the_record_reshipped() {
    let mut c = Cluster::three();
    c.run(5);
    c.flips.push((1, 2, "Ship"));
    c.request(1, 1, 1, put("x", "good"));
    c.run(2);
    assert!(
        c.events.iter().any(|(_, n, e)| *n == 2
            && matches!(
                e,
                NodeEvent::CorruptRejected {
                    from: 1,
                    error: DecodeError::ChecksumMismatch { .. }
                }
            )),
        "the flipped Ship was rejected"
    );
    assert_eq!(c.node(2).last_lsn(), 0, "nothing corrupt was applied");
    assert_eq!(c.reply_for(1, 1), vec![&ok()], "n3's ack makes the quorum");
    c.run(150);
    assert!(c.ships_to(2) >= 2, "re-shipped");
    assert_eq!(c.node(2).store().get("x"), Some("good"));
    let applied_on_2: Vec<&Applied> = c
        .applied
        .iter()
        .filter(|(n, _)| *n == 2)
        .map(|(_, a)| a)
        .collect();
    assert_eq!(applied_on_2.len(), 1, "applied once, intact");
    assert_eq!(
        applied_on_2[0].command,
        Some((1, 1, put("x", "good").into())),
        "the applied record is the one the leader wrote"
    );
    c.assert_converged();
}

#[test]
fn a_corrupt_record_inside_an_intact_ship_is_nacked() {
    let mut c = Cluster::three();
    c.run(5);
    c.request(1, 1, 1, put("x", "1"));
    c.run(5);
    assert_eq!(c.node(2).last_lsn(), 1);
    let record = LogRecord::execute(c.node(1).store(), 1, 2, c.now, put("x", "2"));
    let ship = Message::Ship {
        from_lsn: 2,
        records: vec![record],
        commit_lsn: 1,
    };
    let mut bytes = Vec::new();
    ship.encode_wire(&mut bytes);
    // Corrupt the nested record, then re-frame the message so its own CRC holds again.
    let (outer, _) = wal::decode_record(&bytes).unwrap();
    let mut payload = outer.payload.to_vec();
    let at = payload.len() - 2;
    payload[at] ^= 0x01;
    let mut reframed = Vec::new();
    wal::encode_record(0, EPOCH, RecordKind::Message, &payload, &mut reframed);
    let now = c.now;
    let node = c.node_mut(2);
    node.handle_wire(now, 1, &reframed);
    let out = node.output();
    assert!(matches!(
        out.events.as_slice(),
        [NodeEvent::CorruptRejected {
            from: 1,
            error: DecodeError::ChecksumMismatch { .. }
        }]
    ));
    assert_eq!(
        out.messages,
        vec![(1, Message::Nack { expected_lsn: 2 })],
        "the follower asks for the record again"
    );
    assert!(out.persist.is_empty() && out.applied.is_empty());
    out.clear();
    assert_eq!(c.node(2).last_lsn(), 1);
}

#[test]
fn a_write_needs_quorum_acks() {
    let mut c = Cluster::new(Config {
        quorum: 3,
        ..Config::default()
    });
    c.run(5);
    c.isolate(3);
    c.request(1, 1, 1, put("x", "1"));
    c.run(100);
    assert!(c.reply_for(1, 1).is_empty(), "2 of 3 acks are not enough");
    assert_eq!(c.node(1).commit_lsn(), 0);
    assert_eq!(c.node(2).last_lsn(), 1, "n2 holds it");
    // A read queued behind the write waits too (it must see it).
    c.request(1, 2, READ_SEQ_BASE, get("x"));
    c.run(200);
    assert!(c.reply_for(1, 1).is_empty());
    assert!(c.reply_for(2, READ_SEQ_BASE).is_empty());
    assert!(c.has_note(1, "n3 offline: silent for 200 ticks"));
    c.heal();
    c.run(60);
    assert!(c.has_note(1, "n3 online"));
    assert_eq!(c.reply_for(1, 1), vec![&ok()]);
    assert_eq!(c.reply_for(2, READ_SEQ_BASE), vec![&value("1")]);
    assert_eq!(c.node(1).commit_lsn(), 1);
    c.assert_converged();
}

#[test]
fn a_silent_follower_goes_offline_and_is_no_longer_waited_on() {
    let mut c = Cluster::three();
    c.run(60);
    c.crash(3);
    let crashed_at = c.now;
    c.run(260);
    let (offline_at, _) = *c
        .notes(1)
        .iter()
        .find(|(_, s)| *s == "n3 offline: silent for 200 ticks")
        .expect("marked offline");
    assert!(
        offline_at <= crashed_at + c.config.keepalive_timeout_ticks,
        "offline at {offline_at}, crashed at {crashed_at}"
    );
    assert_eq!(c.node(1).online_followers(), vec![2]);
    let ships_before = c.ships_to(3);
    for seq in 1..=5 {
        c.request(1, 1, seq, put("k", &seq.to_string()));
        c.step();
    }
    c.run(5);
    for seq in 1..=5 {
        assert_eq!(
            c.reply_for(1, seq),
            vec![&ok()],
            "Q=2 of 3 keeps committing"
        );
    }
    c.run(100);
    assert_eq!(
        c.ships_to(3),
        ships_before,
        "nothing shipped to an offline follower"
    );
    c.restart(3);
    c.run(60);
    assert!(c.has_note(1, "n3 online"));
    assert_eq!(c.node(1).online_followers(), vec![2, 3]);
    c.assert_converged();
}

#[test]
fn a_restarted_follower_rejoins_from_its_last_lsn() {
    let mut c = Cluster::three();
    c.run(5);
    for seq in 1..=3 {
        c.request(1, 1, seq, put("k", &seq.to_string()));
        c.step();
    }
    c.run(5);
    c.crash(3);
    for seq in 4..=8 {
        c.request(1, 1, seq, put("k", &seq.to_string()));
        c.step();
    }
    c.run(5);
    c.restart(3);
    assert_eq!(c.node(3).last_lsn(), 3, "recovered its WAL");
    assert_eq!(c.node(3).store().get("k"), Some("3"));
    c.run(10);
    assert!(c.has_note(1, "n3 rejoined at lsn 3, catching up from 4"));
    c.assert_converged();
    assert_eq!(c.node(3).store().get("k"), Some("8"));
}

#[test]
fn a_follower_behind_the_retained_wal_gets_a_snapshot() {
    let mut c = Cluster::new(Config {
        wal_retain_records: 5,
        ..Config::default()
    });
    c.run(5);
    c.request(1, 1, 1, put("a", "1"));
    // A later timestamp: at an equal one the tombstone (empty value bytes) would lose the tie.
    let later = c.now + 1;
    c.request_at(1, 1, 2, Op::Delete { key: "a".into() }, later);
    c.run(5);
    c.crash(3);
    for seq in 1..=20 {
        c.request(1, 5, seq, put(&format!("k{seq}"), "v"));
        c.step();
    }
    c.run(5);
    assert_eq!(c.node(1).last_lsn(), 22);
    c.restart(3);
    c.run(10);
    assert!(
        c.has_note(
            1,
            "n3 is behind the retained WAL (first 18): sending snapshot at lsn 22"
        ),
        "{:?}",
        c.notes(1)
    );
    assert!(c.has_note(3, "installed snapshot at lsn 22"));
    c.assert_converged();
    // The tombstone travelled with the snapshot.
    assert!(c
        .node(3)
        .lww_store()
        .slot("a")
        .is_some_and(|s| s.value.is_none()));
    // Shipping resumes normally after the snapshot.
    c.request(1, 9, 1, put("after", "snap"));
    c.run(5);
    c.assert_converged();
    // The snapshot record is in n3's WAL: a second restart recovers from it.
    c.crash(3);
    c.restart(3);
    c.run(10);
    c.assert_converged();
    assert_eq!(
        c.sent
            .iter()
            .filter(|(_, _, _, m)| matches!(m, Message::Snapshot { .. }))
            .count(),
        1,
        "one snapshot was enough"
    );
}

#[test]
fn out_of_order_delivery_converges() {
    let mut c = Cluster::three();
    c.run(5);
    // Ships to n2 are held, then delivered newest first.
    c.hold = Some((1, 2, "Ship"));
    for seq in 1..=5 {
        c.request(1, 1, seq, put("k", &seq.to_string()));
        c.step();
    }
    assert!(c.held.len() >= 5);
    c.release_held_reversed();
    c.run(10);
    assert!(c
        .sent
        .iter()
        .any(|(_, from, _, m)| *from == 2 && matches!(m, Message::Nack { .. })));
    c.assert_converged();
    // And with every tick's deliveries reversed, several writes per tick.
    c.reverse_delivery = true;
    for seq in 6..=20 {
        c.request(1, 1, seq, put("k", &seq.to_string()));
        c.request(1, 2, seq - 5, put(&format!("j{seq}"), "v"));
        if seq % 3 == 0 {
            c.step();
        }
    }
    c.run(120);
    c.assert_converged();
    assert_eq!(c.node(2).store().get("k"), Some("20"));
}

#[test]
fn leader_stamps_keep_lww_in_log_order_whatever_the_clients_say() {
    let mut c = Cluster::three();
    c.run(5);
    c.request_at(1, 1, 1, put("x", "first"), 1000);
    c.run(5);
    // The client's stamp is ignored by default: the leader's own, increasing stamps decide.
    c.request_at(1, 2, 1, put("x", "second"), 500);
    c.run(5);
    for id in 1..=3 {
        assert_eq!(c.node(id).store().get("x"), Some("second"), "n{id}");
    }
}

#[test]
fn lww_with_a_skewed_writer_clock_loses_the_later_write() {
    let mut c = Cluster::new(Config {
        client_timestamps: true,
        ..Config::for_nodes(3)
    });
    c.run(5);
    // c1's clock is ahead: its write carries timestamp 1000.
    c.request_at(1, 1, 1, put("x", "newer-clock"), 1000);
    c.run(5);
    // c2 writes later (a later LSN) but its clock says 500.
    c.request_at(1, 2, 1, put("x", "older-clock"), 500);
    c.run(5);
    assert_eq!(c.reply_for(1, 1), vec![&ok()]);
    assert_eq!(
        c.reply_for(2, 1),
        vec![&ok()],
        "the later write is acknowledged ..."
    );
    for id in 1..=3 {
        assert_eq!(
            c.node(id).store().get("x"),
            Some("newer-clock"),
            "... but lost on n{id}"
        );
        let slot = c.node(id).lww_store().slot("x").unwrap();
        assert_eq!(slot.version.timestamp, 1000);
    }
    assert_eq!(c.node(1).last_lsn(), 2, "both writes were logged");
    c.request(1, 3, READ_SEQ_BASE, get("x"));
    assert_eq!(c.reply_for(3, READ_SEQ_BASE), vec![&value("newer-clock")]);
    c.assert_converged();
}

#[test]
fn a_duplicate_retry_returns_the_cached_reply_once_committed() {
    let mut c = Cluster::three();
    c.run(5);
    let append = Op::Append {
        key: "log".into(),
        value: "a".into(),
    };
    c.request(1, 3, 1, append.clone());
    c.run(5);
    c.request(1, 3, 1, append.clone());
    c.run(5);
    assert_eq!(
        c.reply_for(3, 1),
        vec![
            &ok(),
            &ClientResponse::Duplicate {
                cached: Some(OpResult::Ok)
            }
        ]
    );
    let applications = c
        .applied
        .iter()
        .filter(|(_, a)| {
            a.command
                .as_ref()
                .is_some_and(|(cl, s, _)| (*cl, *s) == (3, 1))
                && matches!(a.outcome, ApplyOutcome::Applied(_))
        })
        .count();
    assert_eq!(applications, 3, "once per replica");
    for id in 1..=3 {
        assert_eq!(c.node(id).store().get("log"), Some("a"), "n{id}");
    }
    // A retry of a write that has not committed yet waits for it.
    c.isolate(2);
    c.isolate(3);
    c.request(1, 4, 1, append.clone());
    c.request(1, 4, 1, append);
    c.run(20);
    assert!(c.reply_for(4, 1).is_empty(), "no quorum, no answer");
    c.heal();
    c.run(60);
    assert_eq!(
        c.reply_for(4, 1),
        vec![
            &ok(),
            &ClientResponse::Duplicate {
                cached: Some(OpResult::Ok)
            }
        ]
    );
    assert_eq!(c.node(2).store().get("log"), Some("aa"));
    // Older than the latest: stale.
    c.request(1, 3, 2, put("y", "1"));
    c.run(5);
    c.request(1, 3, 1, put("y", "0"));
    assert_eq!(
        c.reply_for(3, 1).last(),
        Some(&&ClientResponse::Duplicate { cached: None })
    );
    c.assert_converged();
}

#[test]
fn sequential_shipping_keeps_one_ship_unacknowledged_per_follower() {
    for pipeline in [false, true] {
        let mut c = Cluster::new(Config {
            pipeline,
            ..Config::default()
        });
        c.run(5);
        for round in 0..4u64 {
            for k in 1..=10 {
                c.request(
                    1,
                    1,
                    round * 10 + k,
                    put(&format!("k{k}"), &round.to_string()),
                );
            }
            c.step();
        }
        c.run(10);
        for seq in 1..=40 {
            assert_eq!(
                c.reply_for(1, seq),
                vec![&ok()],
                "pipeline={pipeline} c1#{seq}"
            );
        }
        c.assert_converged();
        for f in [2, 3] {
            let max = c.unanswered_max[&f];
            if pipeline {
                assert!(max >= 10, "pipelined: {max} Ships in flight to n{f}");
            } else {
                assert_eq!(
                    max, 1,
                    "sequential: at most one unacknowledged Ship to n{f}"
                );
            }
        }
        if !pipeline {
            assert!(
                c.ships_to(2) < 10,
                "sequential shipping batches: {} Ships",
                c.ships_to(2)
            );
        }
    }
}

#[test]
fn follower_reads_redirect_or_serve_stale_values() {
    let mut c = Cluster::three();
    c.run(5);
    c.request(2, 1, 1, put("x", "1"));
    c.request(2, 1, READ_SEQ_BASE, get("x"));
    assert_eq!(
        c.reply_for(1, 1),
        vec![&ClientResponse::NotLeader {
            leader_hint: Some(1)
        }]
    );
    assert_eq!(
        c.reply_for(1, READ_SEQ_BASE),
        vec![&ClientResponse::NotLeader {
            leader_hint: Some(1)
        }]
    );

    let mut c = Cluster::new(Config {
        read_from_follower: true,
        ..Config::default()
    });
    c.run(5);
    c.request(1, 1, 1, put("x", "1"));
    c.run(5);
    c.cut.insert((1, 3)); // n3 stops hearing from the leader
    c.request(1, 1, 2, put("x", "2"));
    c.run(5);
    assert_eq!(c.reply_for(1, 2), vec![&ok()], "committed with n2");
    c.request(3, 5, READ_SEQ_BASE, get("x"));
    c.request(1, 5, READ_SEQ_BASE + 1, get("x"));
    c.request(3, 5, 1, put("x", "3"));
    assert_eq!(
        c.reply_for(5, READ_SEQ_BASE),
        vec![&value("1")],
        "stale follower read"
    );
    assert_eq!(c.reply_for(5, READ_SEQ_BASE + 1), vec![&value("2")]);
    assert_eq!(
        c.reply_for(5, 1),
        vec![&ClientResponse::NotLeader {
            leader_hint: Some(1)
        }],
        "writes at a follower are always redirected"
    );
    c.heal();
    c.run(60);
    c.request(3, 5, READ_SEQ_BASE + 2, get("x"));
    assert_eq!(c.reply_for(5, READ_SEQ_BASE + 2), vec![&value("2")]);
}

#[test]
fn lags_are_reported() {
    let mut c = Cluster::three();
    c.run(5);
    assert_eq!(c.node(1).follower_lags(), vec![(2, 0), (3, 0)]);
    c.isolate(3);
    for seq in 1..=7 {
        c.request(1, 1, seq, put("k", &seq.to_string()));
        c.step();
    }
    c.run(5);
    assert_eq!(c.node(1).follower_lags(), vec![(2, 0), (3, 7)]);
    assert!(c.node(2).follower_lags().is_empty());
    c.run(50);
    assert!(c.has_note(1, "lag n2=0 n3=7"), "{:?}", c.notes(1));
    c.heal();
    c.run(110);
    assert_eq!(c.node(1).follower_lags(), vec![(2, 0), (3, 0)]);
    assert!(c.has_note(1, "lag n2=0 n3=0"));
}

#[test]
fn a_restarted_leader_rebuilds_its_state_and_dedup_from_the_wal() {
    let mut c = Cluster::three();
    c.run(5);
    for seq in 1..=3 {
        c.request(1, 1, seq, put("k", &seq.to_string()));
        c.step();
    }
    c.run(5);
    let digest = c.node(1).view().store_digest;
    c.crash(1);
    c.run(20);
    c.restart(1);
    assert_eq!(
        c.node(1).view().store_digest,
        digest,
        "store and dedup rebuilt"
    );
    assert_eq!((c.node(1).last_lsn(), c.node(1).commit_lsn()), (3, 0));
    // A retry of the last write is answered from the rebuilt dedup table once followers
    // confirm it (commit resumes with the first heartbeat round).
    c.request(1, 1, 3, put("k", "3"));
    assert!(
        c.reply_for(1, 3).len() == 1,
        "only the original reply so far"
    );
    c.run(5);
    assert_eq!(
        c.reply_for(1, 3).last(),
        Some(&&ClientResponse::Duplicate {
            cached: Some(OpResult::Ok)
        })
    );
    assert_eq!(c.node(1).commit_lsn(), 3);
    c.request(1, 1, 4, put("k", "4"));
    c.run(5);
    assert_eq!(c.reply_for(1, 4), vec![&ok()]);
    c.assert_converged();
    // The restarted leader reports each record applied again, in LSN order.
    let leader_lsns: Vec<u64> = c
        .applied
        .iter()
        .filter(|(n, _)| *n == 1)
        .map(|(_, a)| a.index)
        .collect();
    assert_eq!(leader_lsns, vec![1, 2, 3, 1, 2, 3, 4]);
}

#[test]
fn writes_wait_while_the_leader_is_down_and_retries_are_deduplicated() {
    let mut c = Cluster::new(Config {
        quorum: 3,
        ..Config::default()
    });
    c.run(5);
    c.isolate(3);
    c.request(1, 1, 1, put("x", "1"));
    c.run(5);
    c.crash(1); // the pending request is lost with the leader
    c.heal();
    c.run(50);
    c.request(2, 1, 1, put("x", "1"));
    assert_eq!(
        c.reply_for(1, 1),
        vec![&ClientResponse::NotLeader {
            leader_hint: Some(1)
        }],
        "no failover: followers only redirect"
    );
    c.restart(1);
    c.request(1, 1, 1, put("x", "1"));
    c.run(20);
    assert_eq!(
        c.reply_for(1, 1).last(),
        Some(&&ClientResponse::Duplicate {
            cached: Some(OpResult::Ok)
        }),
        "the retry finds the write in the rebuilt dedup table and waits for its commit"
    );
    c.assert_converged();
    assert_eq!(c.node(3).store().get("x"), Some("1"));
}

#[test]
fn requests_are_bounded_and_sessions_checked() {
    let mut c = Cluster::new(Config {
        quorum: 3,
        pending_requests_max: 2,
        ..Config::default()
    });
    c.run(5);
    c.request(1, 1, 1, put("x", "1"));
    c.run(5);
    c.request(1, 1, 3, put("x", "3"));
    assert_eq!(
        c.reply_for(1, 3),
        vec![&ClientResponse::Gap { expected: 2 }]
    );
    c.request(1, 9, 4, put("x", "4"));
    assert_eq!(c.reply_for(9, 4), vec![&ClientResponse::SessionExpired]);
    c.isolate(3);
    c.request(1, 2, 1, put("a", "1"));
    c.request(1, 3, 1, put("b", "1"));
    c.request(1, 4, 1, put("c", "1"));
    c.request(1, 5, READ_SEQ_BASE, get("a"));
    assert_eq!(c.reply_for(4, 1), vec![&ClientResponse::Overloaded]);
    assert_eq!(
        c.reply_for(5, READ_SEQ_BASE),
        vec![&ClientResponse::Overloaded]
    );
    assert_eq!(c.node(1).last_lsn(), 3, "an overloaded write is not logged");
    c.heal();
    c.run(60);
    assert_eq!(c.reply_for(2, 1), vec![&ok()]);
    assert_eq!(c.reply_for(3, 1), vec![&ok()]);
}

#[test]
fn a_single_replica_commits_alone() {
    let mut c = Cluster::new(Config::for_nodes(1));
    c.request(1, 1, 1, put("x", "1"));
    assert_eq!(
        c.reply_for(1, 1),
        vec![&ok()],
        "answered in the same output"
    );
    c.request(1, 1, READ_SEQ_BASE, get("x"));
    assert_eq!(c.reply_for(1, READ_SEQ_BASE), vec![&value("1")]);
    c.run(200);
    assert!(c.node(1).online_followers().is_empty());
    assert!(c
        .notes(1)
        .iter()
        .all(|(_, s)| !s.contains("followers responded")));
}

#[test]
fn restore_drops_a_torn_tail_and_refuses_corruption() {
    let mut c = Cluster::three();
    c.run(5);
    for seq in 1..=3 {
        c.request(1, 1, seq, put("k", &seq.to_string()));
    }
    c.run(5);
    let disk = c.disks[1].clone();
    let config = c.config.clone();
    let (node, report) = ReplicaNode::restore(2, config.clone(), 0, &disk[..disk.len() - 3])
        .expect("a torn tail is not corruption");
    assert!(report.torn_tail);
    assert_eq!(report.records_count, 2);
    assert_eq!(node.last_lsn(), 2);
    assert_eq!(node.store().get("k"), Some("2"));
    let mut rotten = disk.clone();
    rotten[30] ^= 0x01;
    assert!(matches!(
        ReplicaNode::restore(2, config.clone(), 0, &rotten),
        Err(RestoreError::Corrupt { offset: 0, .. })
    ));
    // A WAL whose LSNs skip is inconsistent.
    let (first, used) = wal::decode_record(&disk).unwrap();
    let mut skipping = disk[..used].to_vec();
    wal::encode_record(3, EPOCH, RecordKind::Entry, first.payload, &mut skipping);
    assert!(matches!(
        ReplicaNode::restore(2, config, 0, &skipping),
        Err(RestoreError::Inconsistent { .. })
    ));
}

/// A client that writes one request at a time to the leader and retries it (same seq) until it
/// gets a definite answer.
struct TestClient {
    id: u64,
    clock_skew: i64,
    next_seq: u64,
    outstanding: Option<(u64, Op, Tick)>,
    replies_seen: usize,
}

#[test]
fn chaos_runs_converge_and_apply_every_write_exactly_once() {
    // "Sometimes" goals: proof that the runs exercised what they claim to.
    let mut reached: BTreeMap<&str, u64> = BTreeMap::new();
    for seed in 1..=12u64 {
        let mut c = Cluster::new(Config {
            pipeline: seed % 2 == 0,
            wal_retain_records: if seed % 3 == 0 { 8 } else { 10_000 },
            records_per_ship_max: 4,
            ..Config::for_nodes(if seed % 4 == 0 { 5 } else { 3 })
        });
        let n = c.config.nodes_count;
        c.chaos = Some(Chaos {
            rng: seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1,
            loss_pct: 10,
            dup_pct: 5,
            flip_pct: 5,
            delay_ticks_max: 6,
        });
        let mut clients: Vec<TestClient> = (1..=3)
            .map(|id| TestClient {
                id,
                clock_skew: [0, -40, 25][id as usize - 1],
                next_seq: 1,
                outstanding: None,
                replies_seen: 0,
            })
            .collect();
        let mut down: BTreeMap<NodeId, Tick> = BTreeMap::new();
        let drive_clients = |c: &mut Cluster, clients: &mut Vec<TestClient>, issue: bool| {
            let leader = c.leader();
            for client in clients.iter_mut() {
                let replies: Vec<ClientResponse> = c
                    .replies
                    .iter()
                    .filter(|(_, r)| r.client == client.id)
                    .skip(client.replies_seen)
                    .map(|(_, r)| r.response.clone())
                    .collect();
                client.replies_seen += replies.len();
                for response in replies {
                    assert!(
                        !matches!(
                            response,
                            ClientResponse::Gap { .. } | ClientResponse::SessionExpired
                        ),
                        "seed {seed}: c{} got {response}",
                        client.id
                    );
                    if response.is_definite() {
                        client.outstanding = None;
                    }
                }
                let now = c.now;
                let timestamp = now.saturating_add_signed(client.clock_skew);
                let due = match &client.outstanding {
                    Some((_, _, sent_at)) => now >= sent_at + 40,
                    // Every 7 ticks, staggered by client.
                    None => issue && (now + client.id) % 7 == 3,
                };
                if !due || c.nodes[leader as usize - 1].is_none() {
                    continue;
                }
                let (seq, op) = match client.outstanding.take() {
                    Some((seq, op, _)) => (seq, op),
                    None => {
                        let seq = client.next_seq;
                        client.next_seq += 1;
                        let key = format!("k{}", (now / 7) % 4);
                        let op = if seq % 5 == 0 {
                            Op::Delete { key }
                        } else {
                            Op::Append {
                                key,
                                value: format!("{}.{seq}", client.id),
                            }
                        };
                        (seq, op)
                    }
                };
                client.outstanding = Some((seq, op.clone(), now));
                c.request_at(leader, client.id, seq, op, timestamp);
            }
        };
        // Fault phase: message faults, crashes and restarts of any node.
        for _ in 0..2_500 {
            c.step();
            drive_clients(&mut c, &mut clients, true);
            let roll = c.chaos.as_mut().unwrap().next() % 1_000;
            if roll < 3 && down.len() < (n as usize - 1) / 2 {
                let victim = 1 + (c.chaos.as_mut().unwrap().next() % u64::from(n)) as NodeId;
                if c.nodes[victim as usize - 1].is_some() {
                    let what = if victim == c.leader() {
                        "leader restarted"
                    } else {
                        "follower restarted"
                    };
                    *reached.entry(what).or_default() += 1;
                    c.crash(victim);
                    down.insert(victim, c.now);
                }
            }
            let restart: Vec<NodeId> = down
                .iter()
                .filter(|(_, &at)| c.now >= at + 150)
                .map(|(&id, _)| id)
                .collect();
            for id in restart {
                down.remove(&id);
                c.restart(id);
            }
        }
        // Heal: no more faults, every node up; every request must finish and replicas agree.
        c.chaos = None;
        for (id, _) in std::mem::take(&mut down) {
            c.restart(id);
        }
        for _ in 0..2_000 {
            c.step();
            drive_clients(&mut c, &mut clients, false);
            if clients.iter().all(|cl| cl.outstanding.is_none()) && c.in_flight.is_empty() {
                break;
            }
        }
        c.run(200);
        for client in &clients {
            assert!(
                client.outstanding.is_none(),
                "seed {seed}: c{} still waits for {:?}",
                client.id,
                client.outstanding
            );
            assert!(
                client.next_seq > 10,
                "seed {seed}: c{} made progress",
                client.id
            );
            for id in 1..=n {
                assert_eq!(
                    c.node(id).dedup().last_seq(client.id),
                    Some(client.next_seq - 1),
                    "seed {seed}: n{id} holds c{}'s last write",
                    client.id
                );
            }
        }
        c.assert_converged();
        assert_eq!(c.node(1).commit_lsn(), c.node(1).last_lsn(), "seed {seed}");
        for (_, _, e) in &c.events {
            let goal = match e {
                NodeEvent::CorruptRejected { .. } => "corrupt message rejected",
                NodeEvent::Note(s) if s.contains("sending snapshot") => "snapshot sent",
                NodeEvent::Note(s) if s.contains("offline") => "follower marked offline",
                NodeEvent::Note(s) if s.contains("rejoined") => "follower rejoined",
                _ => continue,
            };
            *reached.entry(goal).or_default() += 1;
        }
        for (_, from, _, m) in &c.sent {
            if *from != 1 && matches!(m, Message::Nack { .. }) {
                *reached.entry("gap nacked").or_default() += 1;
            }
        }
        for (_, r) in &c.replies {
            if matches!(r.response, ClientResponse::Duplicate { .. }) {
                *reached.entry("retry deduplicated").or_default() += 1;
            }
        }
        // Exactly once: within one incarnation a replica applies each (client, seq) once, and
        // the log holds each once (the LSNs of one client's writes are its seqs in order).
        let leader_records: Vec<_> = c
            .applied
            .iter()
            .filter(|(id, _)| *id == 1)
            .filter_map(|(_, a)| a.command.clone().map(|cmd| (a.index, cmd)))
            .collect::<BTreeMap<_, _>>()
            .into_values()
            .collect();
        for client in &clients {
            let seqs: Vec<u64> = leader_records
                .iter()
                .filter(|(cl, _, _)| *cl == client.id)
                .map(|(_, s, _)| *s)
                .collect();
            assert_eq!(
                seqs,
                (1..client.next_seq).collect::<Vec<_>>(),
                "seed {seed}: c{} logged once each",
                client.id
            );
        }
    }
    for goal in [
        "corrupt message rejected",
        "snapshot sent",
        "follower marked offline",
        "follower rejoined",
        "gap nacked",
        "retry deduplicated",
        "leader restarted",
        "follower restarted",
    ] {
        assert!(
            reached.contains_key(goal),
            "never reached: {goal}; {reached:?}"
        );
    }
}
