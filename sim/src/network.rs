//! The simulated network: links between nodes (and between clients and nodes) with seeded
//! delay, loss, duplication and corruption, plus partitions and one-way cuts.
//!
//! ## Fault model
//! - **Delay**: each copy of a message takes a uniform `delay_ticks_min..=delay_ticks_max`;
//!   different delays reorder messages, as UDP or a reconnecting TCP stream would.
//! - **Loss**: each message is dropped with `loss_probability`.
//! - **Duplication**: a delivered message gets a second, independently delayed copy with
//!   `duplicate_probability` (retransmission after a lost ack).
//! - **Corruption**: a copy has one random bit of its encoded bytes flipped with
//!   `corrupt_probability`; the receiver's CRC check must catch it. Client links carry no CRC
//!   framing in this model, so they are never corrupted.
//! - **Partitions**: nodes are split into groups; messages cross groups in neither direction.
//!   **One-way cuts** drop one direction of one link. Both are checked when a message is sent
//!   and again when it would arrive, so a partition also eats what was in flight.
//! - Clients sit outside the partitions (they can reach every node) unless
//!   `clients_partitioned` is set, but their messages always suffer delay, loss and duplication.
//!   With `clients_partitioned`, each client lives next to a *home* node (client `c` next to
//!   node `(c - 1) % nodes + 1`, as Jepsen binds a client to one node's host) and reaches
//!   exactly the nodes its home reaches: a partition strands clients with the nodes on their
//!   side, which is how a cut-off leader keeps serving the clients near it. Client links are
//!   checked when a message is sent, not again on arrival.
//!
//! Every decision draws from the network's own ChaCha stream, in a fixed order per message.

use std::collections::BTreeSet;

use raftsim_protocol::draw::UniformTicks;
use raftsim_protocol::types::{NodeId, Tick};
use rand::distributions::Bernoulli;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// Network knobs. Probabilities are in `0.0..=1.0`.
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkConfig {
    /// Fastest delivery, in ticks (≥ 1: nothing arrives in the tick it was sent).
    pub delay_ticks_min: Tick,
    /// Slowest delivery, in ticks.
    pub delay_ticks_max: Tick,
    /// Chance a message is lost.
    pub loss_probability: f64,
    /// Chance a delivered message arrives twice.
    pub duplicate_probability: f64,
    /// Chance a node-to-node message copy has a bit flipped.
    pub corrupt_probability: f64,
    /// Partitions and cuts strand each client with its home node (see the module docs).
    pub clients_partitioned: bool,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        NetworkConfig {
            delay_ticks_min: 1,
            delay_ticks_max: 5,
            loss_probability: 0.0,
            duplicate_probability: 0.0,
            corrupt_probability: 0.0,
            clients_partitioned: false,
        }
    }
}

impl NetworkConfig {
    /// Check the knobs; the error names the bad one.
    pub fn validate(&self) -> Result<(), String> {
        if self.delay_ticks_min == 0 {
            return Err("delay_ticks_min must be at least 1".into());
        }
        if self.delay_ticks_min > self.delay_ticks_max {
            return Err(format!(
                "delay_ticks_min ({}) is above delay_ticks_max ({})",
                self.delay_ticks_min, self.delay_ticks_max
            ));
        }
        for (name, p) in [
            ("loss", self.loss_probability),
            ("duplication", self.duplicate_probability),
            ("corruption", self.corrupt_probability),
        ] {
            if !(0.0..=1.0).contains(&p) {
                return Err(format!("{name} probability must be in 0..=1, got {p}"));
            }
        }
        Ok(())
    }
}

/// Why a message was not delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// Random loss.
    Loss,
    /// The link is partitioned or cut.
    Partition,
    /// The receiver is down.
    Crashed,
}

impl DropReason {
    /// Stable name for traces.
    pub fn name(self) -> &'static str {
        match self {
            DropReason::Loss => "loss",
            DropReason::Partition => "partition",
            DropReason::Crashed => "crashed",
        }
    }
}

/// One copy of a message on its way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Copy {
    /// Ticks until it arrives.
    pub delay_ticks: Tick,
    /// Whether one bit of it is flipped.
    pub corrupt: bool,
    /// Whether this is the extra copy of a duplicated message.
    pub duplicate: bool,
}

/// What happens to a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// It never arrives.
    Dropped(DropReason),
    /// One copy, or two when duplicated.
    Deliver(Copy, Option<Copy>),
}

/// Link state and the network's random stream.
pub struct Network {
    config: NetworkConfig,
    /// The three per-message coin flips, built once per config (`None` when the chance is 0,
    /// which draws nothing). Sampling a prebuilt `Bernoulli` draws exactly what `gen_bool`
    /// draws, without converting the probability for every message.
    coins: Coins,
    /// The per-copy delay, set up once per config.
    delay: Delay,
    rng: ChaCha8Rng,
    /// Partition group of each node (index `id - 1`); all 0 when whole.
    group: Vec<u8>,
    /// Directed links that drop everything: (from, to).
    cuts: BTreeSet<(NodeId, NodeId)>,
    /// Whether `from` reaches `to`, at `(from - 1) * nodes + (to - 1)`: the groups and the cuts
    /// worked out once per change, since every message asks twice (when sent and when it
    /// arrives) and a cut made each asking a search of `cuts`.
    links: Vec<bool>,
}

/// See [`Network::coins`].
#[derive(Debug, Clone, Copy)]
struct Coins {
    loss: Option<Bernoulli>,
    duplicate: Option<Bernoulli>,
    corrupt: Option<Bernoulli>,
}

impl Coins {
    fn of(config: &NetworkConfig) -> Coins {
        let coin = |p: f64| {
            (p > 0.0).then(|| Bernoulli::new(p).expect("validated probabilities are in 0..=1"))
        };
        Coins {
            loss: coin(config.loss_probability),
            duplicate: coin(config.duplicate_probability),
            corrupt: coin(config.corrupt_probability),
        }
    }
}

/// A copy's delay in `delay_ticks_min..=delay_ticks_max`, drawn as `Rng::gen_range` draws
/// it (see [`UniformTicks`]), or not drawn at all when the two are equal.
#[derive(Debug, Clone, Copy)]
enum Delay {
    /// Minimum and maximum are equal: no draw (the stream is left to the draws that matter).
    Fixed(Tick),
    /// A uniform draw.
    Uniform(UniformTicks),
}

impl Delay {
    fn of(config: &NetworkConfig) -> Delay {
        let (low, high) = (config.delay_ticks_min, config.delay_ticks_max);
        if low == high {
            return Delay::Fixed(low);
        }
        Delay::Uniform(UniformTicks::new(low, high))
    }

    #[inline]
    fn draw(self, rng: &mut ChaCha8Rng) -> Tick {
        match self {
            Delay::Fixed(ticks) => ticks,
            Delay::Uniform(uniform) => uniform.draw(rng),
        }
    }
}

impl Network {
    /// A whole network of `nodes_count` nodes.
    pub fn new(config: NetworkConfig, rng: ChaCha8Rng, nodes_count: u32) -> Network {
        Network {
            coins: Coins::of(&config),
            delay: Delay::of(&config),
            config,
            rng,
            group: vec![0; nodes_count as usize],
            cuts: BTreeSet::new(),
            links: vec![true; nodes_count as usize * nodes_count as usize],
        }
    }

    /// Work out `links` again from the groups and the cuts.
    fn relink(&mut self) {
        let nodes = self.group.len();
        for (i, reaches) in self.links.iter_mut().enumerate() {
            let (from, to) = (i / nodes, i % nodes);
            *reaches = self.group[from] == self.group[to]
                && !self.cuts.contains(&(from as NodeId + 1, to as NodeId + 1));
        }
    }

    /// Current knobs.
    pub fn config(&self) -> &NetworkConfig {
        &self.config
    }

    /// Replace the knobs (scenarios change them mid-run; the heal phase zeroes the faults).
    pub fn set_config(&mut self, config: NetworkConfig) {
        self.coins = Coins::of(&config);
        self.delay = Delay::of(&config);
        self.config = config;
    }

    /// Whether `from` can currently reach `to`.
    #[inline]
    pub fn connected(&self, from: NodeId, to: NodeId) -> bool {
        let nodes = self.group.len();
        let (from, to) = ((from - 1) as usize, (to - 1) as usize);
        debug_assert!(from < nodes && to < nodes, "no such node");
        self.links[from * nodes + to]
    }

    /// Split the nodes into groups; nodes not named form one more group together.
    pub fn partition(&mut self, groups: &[Vec<NodeId>]) {
        let rest = groups.len() as u8 + 1;
        for g in self.group.iter_mut() {
            *g = rest;
        }
        for (i, members) in groups.iter().enumerate() {
            for &n in members {
                self.group[(n - 1) as usize] = i as u8 + 1;
            }
        }
        self.relink();
    }

    /// Drop one direction of one link.
    pub fn cut(&mut self, from: NodeId, to: NodeId) {
        self.cuts.insert((from, to));
        self.relink();
    }

    /// Remove all partitions and cuts.
    pub fn heal(&mut self) {
        for g in self.group.iter_mut() {
            *g = 0;
        }
        self.cuts.clear();
        self.relink();
    }

    /// True when no partition or cut is in force.
    pub fn is_whole(&self) -> bool {
        self.cuts.is_empty() && self.group.iter().all(|&g| g == self.group[0])
    }

    #[inline(always)]
    fn draw_copy(&mut self, corruptible: bool, duplicate: bool) -> Copy {
        let delay_ticks = self.delay.draw(&mut self.rng);
        let corrupt = corruptible && self.coins.corrupt.is_some_and(|coin| self.rng.sample(coin));
        Copy {
            delay_ticks,
            corrupt,
            duplicate,
        }
    }

    #[inline(always)]
    fn route_any(&mut self, corruptible: bool) -> Fate {
        if self.coins.loss.is_some_and(|coin| self.rng.sample(coin)) {
            return Fate::Dropped(DropReason::Loss);
        }
        let first = self.draw_copy(corruptible, false);
        let second = self
            .coins
            .duplicate
            .is_some_and(|coin| self.rng.sample(coin))
            .then(|| self.draw_copy(corruptible, true));
        Fate::Deliver(first, second)
    }

    /// Decide the fate of a node-to-node message sent now.
    ///
    /// Inlined, with the draws, into the cluster's send: a handful of coin flips and a delay
    /// per message, cheaper than the two calls they sat behind (measured: -0.9% instructions
    /// on fuzz-standard, -0.7% on commit-batch1).
    #[inline(always)]
    pub fn route(&mut self, from: NodeId, to: NodeId) -> Fate {
        if !self.connected(from, to) {
            return Fate::Dropped(DropReason::Partition);
        }
        self.route_any(true)
    }

    /// Decide the fate of a message between client `client` (1-based) and node `node`, in the
    /// direction `to_node`.
    pub fn route_client(&mut self, client: u64, node: NodeId, to_node: bool) -> Fate {
        if self.config.clients_partitioned {
            let home = self.client_home(client);
            let (from, to) = if to_node { (home, node) } else { (node, home) };
            if from != to && !self.connected(from, to) {
                return Fate::Dropped(DropReason::Partition);
            }
        }
        self.route_any(false)
    }

    /// The node a client lives next to when clients are partitioned.
    pub fn client_home(&self, client: u64) -> NodeId {
        let nodes = self.group.len() as u64;
        (client.saturating_sub(1) % nodes) as NodeId + 1
    }

    /// Flip one random bit of an encoded message.
    pub fn flip_bit(&mut self, bytes: &mut [u8]) -> usize {
        let bit = self.rng.gen_range(0..bytes.len() * 8);
        bytes[bit / 8] ^= 1 << (bit % 8);
        bit
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::{stream, Stream};

    #[test]
    fn partitions_and_cuts() {
        let mut n = Network::new(NetworkConfig::default(), stream(1, Stream::Network), 5);
        assert!(n.connected(1, 5));
        n.partition(&[vec![1, 2]]);
        assert!(n.connected(1, 2) && n.connected(3, 5));
        assert!(!n.connected(1, 3) && !n.connected(4, 2));
        n.heal();
        n.cut(1, 2);
        assert!(!n.connected(1, 2) && n.connected(2, 1));
        assert_eq!(n.route(1, 2), Fate::Dropped(DropReason::Partition));
        // Cuts and partitions together: a link works when both allow it.
        n.partition(&[vec![1, 2, 3]]);
        n.cut(3, 1);
        for from in 1..=5 {
            for to in 1..=5 {
                let same_side = (from <= 3) == (to <= 3);
                let cut = (from, to) == (1, 2) || (from, to) == (3, 1);
                assert_eq!(n.connected(from, to), same_side && !cut, "n{from}->n{to}");
            }
        }
        n.heal();
        assert!(n.is_whole());
        assert!((1..=5).all(|from| (1..=5).all(|to| n.connected(from, to))));
    }

    #[test]
    fn partitioned_clients_reach_only_their_home_side() {
        let config = NetworkConfig {
            clients_partitioned: true,
            ..NetworkConfig::default()
        };
        let mut n = Network::new(config, stream(1, Stream::Network), 3);
        // Clients 1, 4 live next to n1; 2 next to n2; 3 next to n3.
        assert_eq!(
            (n.client_home(1), n.client_home(2), n.client_home(4)),
            (1, 2, 1)
        );
        n.partition(&[vec![1]]);
        let partition = Fate::Dropped(DropReason::Partition);
        assert_ne!(n.route_client(1, 1, true), partition);
        assert_ne!(n.route_client(4, 1, false), partition);
        assert_eq!(n.route_client(1, 2, true), partition);
        assert_eq!(n.route_client(2, 1, true), partition);
        assert_eq!(n.route_client(2, 1, false), partition);
        assert_ne!(n.route_client(2, 3, true), partition);
        // A one-way cut n1 -> n2 drops replies from n1 to n2's clients only.
        n.heal();
        n.cut(1, 2);
        assert_eq!(n.route_client(2, 1, false), partition);
        assert_ne!(n.route_client(2, 1, true), partition);
        // Without the option clients reach everyone.
        n.set_config(NetworkConfig::default());
        assert_ne!(n.route_client(2, 1, false), partition);
    }

    #[test]
    fn rates_are_roughly_honoured() {
        let config = NetworkConfig {
            delay_ticks_min: 2,
            delay_ticks_max: 9,
            loss_probability: 0.2,
            duplicate_probability: 0.1,
            corrupt_probability: 0.05,
            clients_partitioned: false,
        };
        let mut n = Network::new(config, stream(3, Stream::Network), 3);
        let (mut lost, mut dup, mut corrupt) = (0, 0, 0);
        for _ in 0..10_000 {
            match n.route(1, 2) {
                Fate::Dropped(_) => lost += 1,
                Fate::Deliver(a, b) => {
                    assert!((2..=9).contains(&a.delay_ticks));
                    corrupt += usize::from(a.corrupt);
                    dup += usize::from(b.is_some());
                }
            }
        }
        assert!((1_800..2_200).contains(&lost), "lost {lost}");
        assert!((600..1_000).contains(&dup), "dup {dup}");
        assert!((300..500).contains(&corrupt), "corrupt {corrupt}");
        // Client links are never corrupted.
        for _ in 0..1_000 {
            if let Fate::Deliver(a, _) = n.route_client(1, 2, true) {
                assert!(!a.corrupt);
            }
        }
    }

    /// The delay is drawn as `gen_range` draws it: the same values from the same stream,
    /// which is left in the same place (the traces of recorded seeds depend on it).
    #[test]
    fn delays_are_drawn_as_gen_range_draws_them() {
        let ranges = [
            (1, 2),
            (1, 5),
            (2, 9),
            (3, 3),
            (1, 1_000),
            (7, 1 << 40),
            (1, u64::MAX),
        ];
        for (seed, &(min, max)) in ranges.iter().enumerate() {
            let config = NetworkConfig {
                delay_ticks_min: min,
                delay_ticks_max: max,
                ..NetworkConfig::default()
            };
            let delay = Delay::of(&config);
            let mut ours = stream(seed as u64, Stream::Network);
            let mut theirs = ours.clone();
            for _ in 0..2_000 {
                let expected = if min == max {
                    min
                } else {
                    theirs.gen_range(min..=max)
                };
                assert_eq!(delay.draw(&mut ours), expected, "{min}..={max}");
            }
            assert_eq!(ours.gen::<u64>(), theirs.gen::<u64>(), "streams in step");
        }
    }

    #[test]
    fn validate_names_the_bad_knob() {
        let bad = NetworkConfig {
            loss_probability: 1.5,
            ..NetworkConfig::default()
        };
        assert!(bad.validate().unwrap_err().contains("loss"));
    }
}
