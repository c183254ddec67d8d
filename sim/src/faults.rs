//! The random fault schedule of a run: which fault strikes when, drawn from the seed's faults
//! stream.
//!
//! Every `fault_interval_ticks_min..=max` ticks the scheduler picks one enabled fault kind and
//! a target, applies it, and schedules its end (a restart after a crash, a heal after a
//! partition, a resume after a pause). Faults may pile up — a majority can be down at once —
//! because safety must hold under any schedule; liveness is only demanded after the heal phase.
//! Bit rot strikes few enough nodes that the rest can still make progress (a rotten disk keeps
//! its node down for good, and the liveness phase must mean something): a minority for Raft,
//! `n - quorum` followers and never the fixed leader for the leader-follower store.

use raftsim_protocol::types::{NodeId, Tick};
use rand::seq::SliceRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::cluster::{Cluster, FaultAction, DRIFT_PPM_MAX};

/// Which faults a run injects and how often.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultConfig {
    /// Symmetric partitions into two groups.
    pub partitions: bool,
    /// One-way link cuts.
    pub one_way: bool,
    /// Crashes followed by restarts.
    pub crashes: bool,
    /// Process pauses (GC pauses).
    pub pauses: bool,
    /// Latent bit rot on disks.
    pub rot: bool,
    /// Aim half of the crashes, pauses and partitions at the current leader (Jepsen's
    /// "kill the leader" nemesis): failovers, and the stale state a deposed leader keeps, are
    /// where replication bugs live, and a uniformly random target hits the leader only 1/n of
    /// the time.
    pub target_leader: bool,
    /// Clock drift, drawn per node at the start of the run, up to this many ppm (0: off).
    pub drift_ppm_max: i32,
    /// Shortest gap between two faults.
    pub fault_interval_ticks_min: Tick,
    /// Longest gap between two faults.
    pub fault_interval_ticks_max: Tick,
    /// Shortest time a fault lasts (crash downtime, partition, pause).
    pub fault_ticks_min: Tick,
    /// Longest time a fault lasts.
    pub fault_ticks_max: Tick,
}

impl Default for FaultConfig {
    fn default() -> Self {
        FaultConfig {
            partitions: false,
            one_way: false,
            crashes: false,
            pauses: false,
            rot: false,
            target_leader: false,
            drift_ppm_max: 0,
            fault_interval_ticks_min: 200,
            fault_interval_ticks_max: 1_500,
            fault_ticks_min: 100,
            fault_ticks_max: 2_000,
        }
    }
}

impl FaultConfig {
    /// Whether any scheduled fault kind is on.
    pub fn any(&self) -> bool {
        self.partitions || self.one_way || self.crashes || self.pauses || self.rot
    }

    /// Check the knobs.
    pub fn validate(&self) -> Result<(), String> {
        if self.fault_interval_ticks_min == 0
            || self.fault_interval_ticks_min > self.fault_interval_ticks_max
        {
            return Err("fault interval must be 1 <= min <= max".into());
        }
        if self.fault_ticks_min == 0 || self.fault_ticks_min > self.fault_ticks_max {
            return Err("fault duration must be 1 <= min <= max".into());
        }
        if !(0..=DRIFT_PPM_MAX).contains(&self.drift_ppm_max) {
            return Err(format!("drift must be 0..={DRIFT_PPM_MAX} ppm"));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Partition,
    OneWay,
    Crash,
    Pause,
    Rot,
}

/// Draws the fault schedule.
pub struct FaultScheduler {
    config: FaultConfig,
    rng: ChaCha8Rng,
    rotted: Vec<NodeId>,
    /// Most nodes bit rot may strike (it keeps them down for good).
    rot_max: u32,
    /// Nodes rot never strikes (the leader-follower store's fixed leader: it has no failover).
    rot_spared: Vec<NodeId>,
}

impl FaultScheduler {
    /// A scheduler drawing from `rng` (the run's faults stream). Rot strikes at most `rot_max`
    /// nodes and never those in `rot_spared`, so the nodes left can still make progress in
    /// the liveness phase: for Raft a minority, `(n - 1) / 2`; for the leader-follower store
    /// `n - quorum` followers and never the fixed leader.
    pub fn new(
        config: FaultConfig,
        rng: ChaCha8Rng,
        rot_max: u32,
        rot_spared: Vec<NodeId>,
    ) -> FaultScheduler {
        FaultScheduler {
            config,
            rng,
            rotted: Vec::new(),
            rot_max,
            rot_spared,
        }
    }

    /// Per-node drift for the start of the run (empty when drift is off).
    pub fn initial_drift(&mut self, nodes_count: u32) -> Vec<(NodeId, i32)> {
        if self.config.drift_ppm_max == 0 {
            return Vec::new();
        }
        let max = self.config.drift_ppm_max;
        (1..=nodes_count)
            .map(|n| (n, self.rng.gen_range(-max..=max)))
            .collect()
    }

    /// When the next fault strikes, or None when no fault kind is on.
    pub fn next_fault_tick(&mut self, now: Tick) -> Option<Tick> {
        if !self.config.any() {
            return None;
        }
        Some(
            now + self.rng.gen_range(
                self.config.fault_interval_ticks_min..=self.config.fault_interval_ticks_max,
            ),
        )
    }

    fn duration(&mut self) -> Tick {
        self.rng
            .gen_range(self.config.fault_ticks_min..=self.config.fault_ticks_max)
    }

    /// Pick a fault to apply now and the actions that end it later: `(now_action,
    /// [(delay_ticks, later_action)])`. None when nothing applicable (e.g. every node down).
    pub fn draw(&mut self, cluster: &Cluster) -> Option<(FaultAction, Vec<(Tick, FaultAction)>)> {
        let mut kinds = Vec::with_capacity(5);
        let n = cluster.nodes_count();
        if self.config.partitions && n > 1 {
            kinds.push(Kind::Partition);
        }
        if self.config.one_way && n > 1 {
            kinds.push(Kind::OneWay);
        }
        if self.config.crashes {
            kinds.push(Kind::Crash);
        }
        if self.config.pauses {
            kinds.push(Kind::Pause);
        }
        if self.config.rot && (self.rotted.len() as u32) < self.rot_max {
            kinds.push(Kind::Rot);
        }
        let kind = *kinds.choose(&mut self.rng)?;
        // Drawn only when targeting is on, so runs without it keep their schedules.
        let leader = if self.config.target_leader && self.rng.gen_bool(0.5) {
            cluster.current_leader()
        } else {
            None
        };
        let running: Vec<NodeId> = (1..=n)
            .filter(|&id| cluster.is_up(id) && !cluster.is_paused(id))
            .collect();
        match kind {
            Kind::Partition => {
                let mut nodes: Vec<NodeId> = (1..=n).collect();
                nodes.shuffle(&mut self.rng);
                if let Some(l) = leader {
                    // The leader goes into the named group, which is a minority when the
                    // drawn size is below half: a deposed leader cut off with few nodes.
                    let at = nodes
                        .iter()
                        .position(|&x| x == l)
                        .expect("leader is a node");
                    nodes.swap(0, at);
                }
                let size = self.rng.gen_range(1..n) as usize;
                let mut group = nodes[..size].to_vec();
                group.sort_unstable();
                let d = self.duration();
                Some((
                    FaultAction::Partition(vec![group]),
                    vec![(d, FaultAction::Heal)],
                ))
            }
            Kind::OneWay => {
                let from = self.rng.gen_range(1..=n);
                let mut to = self.rng.gen_range(1..n);
                if to >= from {
                    to += 1;
                }
                let d = self.duration();
                Some((FaultAction::Cut(from, to), vec![(d, FaultAction::Heal)]))
            }
            Kind::Crash => {
                let up: Vec<NodeId> = (1..=n).filter(|&id| cluster.is_up(id)).collect();
                let id = match leader {
                    Some(l) => l,
                    None => *up.choose(&mut self.rng)?,
                };
                let d = self.duration();
                Some((FaultAction::Crash(id), vec![(d, FaultAction::Restart(id))]))
            }
            Kind::Pause => {
                let id = match leader {
                    Some(l) if running.contains(&l) => l,
                    _ => *running.choose(&mut self.rng)?,
                };
                let d = self.duration();
                Some((FaultAction::Pause(id), vec![(d, FaultAction::Resume(id))]))
            }
            Kind::Rot => {
                let candidates: Vec<NodeId> = (1..=n)
                    .filter(|id| !self.rotted.contains(id) && !self.rot_spared.contains(id))
                    .collect();
                let &id = candidates.choose(&mut self.rng)?;
                self.rotted.push(id);
                Some((FaultAction::Rot(id), Vec::new()))
            }
        }
    }
}
