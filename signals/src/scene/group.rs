//! Shopping parties at a counting line: a family entering together is one group, the
//! denominator of conversion (transactions ÷ visiting groups).
//!
//! **The rule** (the same for the pipeline's crossings and, in the evaluation, for the
//! annotation's): crossings of one line in the same direction belong to one group when each
//! comes at most [`GROUP_GAP_MS`] after the group's previous one and at most
//! [`GROUP_REACH_HEIGHTS`] body heights from it (the taller of the two; about three shoulder
//! widths), measured where each person was first seen beyond the line. A crossing that joins
//! no open group starts one, and the group is counted then: a window holds a group once, in
//! the window of its first member, and never more groups than people.
//!
//! Single linkage on the last member: a file of people each close behind the next is one
//! group, as a family walking in a line is. Strangers streaming through a door at rush hour
//! within 2.5 s and a body height of each other are grouped too: position and timing alone
//! cannot tell them from a party.

use crate::geom::Point;

/// Longest pause between consecutive members of a group crossing a line.
pub const GROUP_GAP_MS: u64 = 2_500;
/// Farthest a member crosses from the group's previous member, in body heights.
pub const GROUP_REACH_HEIGHTS: f32 = 1.0;

/// Where and when one person crossed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Arrival {
    pub t_ms: u64,
    /// Normalized image position (x by the width, y by the height).
    pub at: Point,
    /// The person's box height (normalized by the image height).
    pub height: f32,
}

/// Open groups of one line, one per direction, and the groups started since the last take.
#[derive(Debug, Default)]
pub struct Groups {
    /// Last member of the open group: `[inwards, outwards]`.
    open: [Option<Arrival>; 2],
    /// Groups started since the last [`Groups::take`]: `(in, out)`.
    started: (u32, u32),
    /// Groups started since the line started (numbers the groups for an evaluation).
    total: u64,
    /// Groups started since the line started, by direction (the store's occupancy reads it).
    running: crate::audit::Tally,
}

impl Groups {
    /// A counted crossing. Returns the number of the group it belongs to (ephemeral: counts
    /// up from 1 for each line; an evaluation compares who was grouped with whom).
    pub fn crossing(&mut self, inwards: bool, a: Arrival, aspect: f32) -> u64 {
        let slot = &mut self.open[usize::from(!inwards)];
        let joins = slot.is_some_and(|last| together(&last, &a, aspect));
        *slot = Some(a);
        if !joins {
            self.total += 1;
            if inwards {
                self.started.0 += 1;
                self.running.ins += 1;
            } else {
                self.started.1 += 1;
                self.running.outs += 1;
            }
        }
        self.total
    }

    /// Groups started since the line started, in and out.
    pub fn running(&self) -> crate::audit::Tally {
        self.running
    }

    /// Groups started since the last call: `(in, out)`.
    pub fn take(&mut self) -> (u32, u32) {
        std::mem::take(&mut self.started)
    }
}

/// Whether `b` crossed with the party whose last member is `a`. `aspect` is the image's
/// width ÷ height, so that distances are measured in one unit (image heights).
pub fn together(a: &Arrival, b: &Arrival, aspect: f32) -> bool {
    let gap = a.t_ms.abs_diff(b.t_ms);
    let dx = (a.at.x - b.at.x) * aspect;
    let dy = a.at.y - b.at.y;
    let reach = GROUP_REACH_HEIGHTS * a.height.max(b.height);
    gap <= GROUP_GAP_MS && dx.hypot(dy) <= reach
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn arrival(t_ms: u64, x: f32) -> Arrival {
        Arrival {
            t_ms,
            at: Point { x, y: 0.5 },
            height: 0.3,
        }
    }

    #[test]
    fn a_family_side_by_side_is_one_group_and_a_stranger_later_is_another() {
        let mut g = Groups::default();
        // Two adults and a child within a second, a body width apart (aspect 16:9).
        let a = g.crossing(true, arrival(1_000, 0.40), 16.0 / 9.0);
        let b = g.crossing(true, arrival(1_400, 0.48), 16.0 / 9.0);
        let c = g.crossing(true, arrival(1_900, 0.55), 16.0 / 9.0);
        assert_eq!((a, b, c), (1, 1, 1));
        // Someone 6 s later is a new party.
        assert_eq!(g.crossing(true, arrival(7_900, 0.50), 16.0 / 9.0), 2);
        assert_eq!(g.take(), (2, 0));
        assert_eq!(g.take(), (0, 0));
    }

    #[test]
    fn people_crossing_at_the_same_time_far_apart_or_in_opposite_directions_are_not_a_group() {
        let mut g = Groups::default();
        g.crossing(true, arrival(1_000, 0.10), 16.0 / 9.0);
        // Same moment, the other end of a wide entrance (0.8 of the width ≈ 1.4 heights).
        g.crossing(true, arrival(1_100, 0.90), 16.0 / 9.0);
        // Same place and moment, but leaving.
        g.crossing(false, arrival(1_200, 0.90), 16.0 / 9.0);
        assert_eq!(g.take(), (2, 1));
    }

    #[test]
    fn a_file_of_people_each_close_behind_the_next_is_one_group() {
        let mut g = Groups::default();
        for i in 0..5 {
            g.crossing(true, arrival(i * 2_000, 0.5), 1.0);
        }
        assert_eq!(g.take(), (1, 0));
    }

    proptest! {
        /// Never more groups than people, never none when someone crossed.
        #[test]
        fn groups_are_at_most_the_people_and_at_least_one(
            xs in proptest::collection::vec((0u64..20_000, 0.0f32..1.0, any::<bool>()), 1..40)
        ) {
            let mut g = Groups::default();
            let mut sorted = xs.clone();
            sorted.sort_by_key(|x| x.0);
            let ins = sorted.iter().filter(|x| x.2).count() as u32;
            for (t, x, inwards) in sorted {
                g.crossing(inwards, arrival(t, x), 1.5);
            }
            let (gi, go) = g.take();
            let outs = xs.len() as u32 - ins;
            prop_assert!(gi <= ins && go <= outs);
            prop_assert!((ins == 0) == (gi == 0) && (outs == 0) == (go == 0));
        }
    }
}
