//! The event queue: events ordered by (tick, insertion sequence), nothing else.
//!
//! Ties at the same tick break by insertion order, so the schedule depends only on what was
//! scheduled and when — never on memory addresses or hash order.
//!
//! Events themselves live in a slab; the heap orders small `(tick, seq, slot)` keys, so sifting
//! moves 24 bytes rather than whole events (messages with their entries).

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use raftsim_protocol::types::Tick;

#[derive(Clone, Copy, PartialEq, Eq)]
struct Key {
    tick: Tick,
    seq: u64,
    slot: u32,
}

impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Key {
    fn cmp(&self, other: &Self) -> Ordering {
        // BinaryHeap is a max-heap: reverse so the earliest (tick, seq) pops first.
        (other.tick, other.seq).cmp(&(self.tick, self.seq))
    }
}

/// A deterministic priority queue of events.
pub struct EventQueue<E> {
    heap: BinaryHeap<Key>,
    /// Event storage; `free` lists the empty slots for reuse.
    slab: Vec<Option<E>>,
    free: Vec<u32>,
    next_seq: u64,
    /// Bound on queued events; exceeding it is a simulator bug (a runaway feedback loop).
    events_max: usize,
}

impl<E> EventQueue<E> {
    /// An empty queue holding at most `events_max` events.
    pub fn new(events_max: usize) -> Self {
        EventQueue {
            heap: BinaryHeap::with_capacity(1024),
            slab: Vec::with_capacity(1024),
            free: Vec::new(),
            next_seq: 0,
            events_max,
        }
    }

    /// Schedule `event` at `tick`.
    pub fn push(&mut self, tick: Tick, event: E) {
        assert!(
            self.heap.len() < self.events_max,
            "event queue over its bound of {} events",
            self.events_max
        );
        let slot = match self.free.pop() {
            Some(i) => {
                self.slab[i as usize] = Some(event);
                i
            }
            None => {
                self.slab.push(Some(event));
                (self.slab.len() - 1) as u32
            }
        };
        self.heap.push(Key {
            tick,
            seq: self.next_seq,
            slot,
        });
        self.next_seq += 1;
    }

    /// Remove and return the earliest event.
    pub fn pop(&mut self) -> Option<(Tick, E)> {
        let key = self.heap.pop()?;
        let event = self.slab[key.slot as usize]
            .take()
            .expect("a queued key points at a stored event");
        self.free.push(key.slot);
        Some((key.tick, event))
    }

    /// Tick of the earliest event.
    pub fn peek_tick(&self) -> Option<Tick> {
        self.heap.peek().map(|s| s.tick)
    }

    /// Number of queued events.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pops_by_tick_then_insertion_order() {
        let mut q = EventQueue::new(100);
        q.push(5, "b");
        q.push(3, "a");
        q.push(5, "c");
        q.push(1, "z");
        let order: Vec<_> = std::iter::from_fn(|| q.pop()).collect();
        assert_eq!(order, vec![(1, "z"), (3, "a"), (5, "b"), (5, "c")]);
    }

    #[test]
    #[should_panic(expected = "over its bound")]
    fn bounded() {
        let mut q = EventQueue::new(2);
        for i in 0..3 {
            q.push(i, ());
        }
    }
}
