//! Uniform draws of a tick count, the same draw for draw as `rand` 0.8's
//! `Rng::gen_range(low..=high)` on a `u64`.
//!
//! Recorded seeds replay only while every draw stays what it was, so the draw cannot change
//! with a `rand` upgrade or a rewrite: it is spelled out here, the way rand 0.8 draws it
//! (`UniformInt::sample_single_inclusive`: one `u64` per try, a widening multiply by the
//! range, the same rejection zone), with the range and the zone worked out once instead of
//! at each draw. A Raft node draws an election timeout on every AppendEntries it gets, and the
//! simulated network draws a delay for every message it carries.

use rand::RngCore;

use crate::types::Tick;

/// A uniform draw from `low..=high` ticks. See the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UniformTicks {
    /// The smallest value.
    low: Tick,
    /// How many values there are (`high - low + 1`, at least 1).
    range: u64,
    /// The largest low half of `draw * range` that is accepted.
    zone: u64,
}

impl UniformTicks {
    /// The draw from `low..=high`. Panics if `low > high`, or if the range is every `u64`
    /// (`0..=u64::MAX`, which rand draws without the multiply).
    pub fn new(low: Tick, high: Tick) -> UniformTicks {
        assert!(low <= high, "a uniform draw from {low}..={high}: empty");
        let range = (high - low).wrapping_add(1);
        assert!(range != 0, "a uniform draw over every u64 is not supported");
        UniformTicks {
            low,
            range,
            zone: (range << range.leading_zeros()).wrapping_sub(1),
        }
    }

    /// One value, drawn from `rng` as `rng.gen_range(low..=high)` draws it.
    #[inline]
    pub fn draw(self, rng: &mut impl RngCore) -> Tick {
        loop {
            let wide = u128::from(rng.next_u64()) * u128::from(self.range);
            if wide as u64 <= self.zone {
                return self.low + (wide >> 64) as u64;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// The same values from the same stream as `gen_range`, which is left in the same place
    /// (the traces of recorded seeds depend on it).
    #[test]
    fn draws_match_gen_range() {
        for (min, max) in [
            (150, 300),
            (2, 2),
            (2, 3),
            (5, 68),
            (100, 1123),
            (1, 1_000),
            (7, 1 << 40),
            (1, u64::MAX),
            (0, u64::MAX - 1),
        ] {
            let draw = UniformTicks::new(min, max);
            let mut ours = ChaCha8Rng::seed_from_u64(min ^ max);
            let mut theirs = ours.clone();
            for _ in 0..1000 {
                assert_eq!(
                    draw.draw(&mut ours),
                    theirs.gen_range(min..=max),
                    "{min}..={max}"
                );
            }
            assert_eq!(
                ours.next_u64(),
                theirs.next_u64(),
                "the streams stay in step"
            );
        }
    }

    #[test]
    #[should_panic(expected = "empty")]
    fn an_empty_range_is_refused() {
        let _ = UniformTicks::new(3, 2);
    }
}
