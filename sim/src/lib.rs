//! # raftsim: a deterministic discrete-event simulator for replicated key-value stores
//!
//! Layering, bottom to top (arrows only point down):
//! `protocol` (the node state machines) · [`rng`], [`queue`], [`trace`] · [`network`],
//! [`disk`], [`workload`], [`checker`] · [`cluster`], [`faults`] · [`run`] · [`cli`].
//!
//! One event, start to end: the queue pops it, the cluster hands it to a node, the node's
//! outputs are persisted to its disk, sent through the network (which draws delay, loss,
//! duplication and corruption from its own stream) or handed to the clients, everything is
//! traced, and every checker looks at what changed before the next event.
//!
//! Determinism: nothing on the simulation path reads wall time, OS randomness, thread ids or
//! the environment, and only ordered collections are iterated.

pub mod bench;
pub mod checker;
pub mod cli;
pub mod cluster;
pub mod disk;
pub mod faults;
pub mod fuzz;
pub mod history;
pub mod network;
pub mod node;
pub mod progress;
pub mod queue;
pub mod rng;
pub mod run;
pub mod scenario;
pub mod shrink;
pub mod trace;
pub mod view;
pub mod workload;
