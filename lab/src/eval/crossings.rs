//! Crossing by crossing: the annotation's crossings of a line matched to a pipeline's, so the
//! suite can say which ones were counted — in particular those made while the person was
//! hidden (behind a post, a sign, another person), which a count total hides.
//!
//! A pipeline's crossing matches an annotated one on the same line, in the same direction,
//! at most [`TOLERANCE_MS`] apart (a crossing made out of sight is counted when the person is
//! seen again); the matching is the largest one, then the closest in time.

use vitrine_signals::assign;
use vitrine_signals::scene::Crossing;

/// Largest time between an annotated crossing and the pipeline's count of it.
pub const TOLERANCE_MS: u64 = 4000;

/// An annotated crossing and whether the person was hidden when making it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TruthCrossing {
    pub crossing: Crossing,
    pub hidden: bool,
}

/// Crossings of one line (or many, summed).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CrossingScore {
    /// Annotated crossings, and of them the ones the pipeline counted.
    pub truth: u64,
    pub counted: u64,
    /// Annotated crossings made while hidden, and of them the ones counted.
    pub hidden: u64,
    pub hidden_counted: u64,
    /// The pipeline's crossings that match no annotated one.
    pub false_: u64,
}

impl std::ops::AddAssign for CrossingScore {
    fn add_assign(&mut self, o: CrossingScore) {
        self.truth += o.truth;
        self.counted += o.counted;
        self.hidden += o.hidden;
        self.hidden_counted += o.hidden_counted;
        self.false_ += o.false_;
    }
}

/// Match one line's crossings.
pub fn score(truth: &[TruthCrossing], ours: &[Crossing]) -> CrossingScore {
    let (t_used, o_used) = matching(truth, ours);
    let both = |hidden: bool| {
        truth
            .iter()
            .zip(&t_used)
            .filter(|(t, m)| **m && t.hidden == hidden)
            .count() as u64
    };
    CrossingScore {
        truth: truth.len() as u64,
        counted: both(false) + both(true),
        hidden: truth.iter().filter(|t| t.hidden).count() as u64,
        hidden_counted: both(true),
        false_: o_used.iter().filter(|m| !**m).count() as u64,
    }
}

/// Which annotated crossings and which of the pipeline's were matched.
pub fn matching(truth: &[TruthCrossing], ours: &[Crossing]) -> (Vec<bool>, Vec<bool>) {
    let mut t_used = vec![false; truth.len()];
    let mut o_used = vec![false; ours.len()];
    for (i, j) in pairs(truth, ours) {
        t_used[i] = true;
        o_used[j] = true;
    }
    (t_used, o_used)
}

/// The matched crossings: `(annotated index, pipeline index)`.
pub fn pairs(truth: &[TruthCrossing], ours: &[Crossing]) -> Vec<(usize, usize)> {
    let mut matched = Vec::new();
    for inwards in [true, false] {
        let t: Vec<usize> = (0..truth.len())
            .filter(|&i| truth[i].crossing.inwards == inwards)
            .collect();
        let o: Vec<usize> = (0..ours.len())
            .filter(|&j| ours[j].inwards == inwards)
            .collect();
        if t.is_empty() || o.is_empty() {
            continue;
        }
        let mut cost = Vec::with_capacity(t.len() * o.len());
        for &i in &t {
            for &j in &o {
                cost.push(truth[i].crossing.t_ms.abs_diff(ours[j].t_ms) as f32);
            }
        }
        for (r, c) in assign::max_matching(&cost, t.len(), o.len(), TOLERANCE_MS as f32) {
            matched.push((t[r], o[c]));
        }
    }
    matched
}

/// Grouping (`vitrine_signals::scene::group`) judged pair by pair. True groups are the rule
/// applied to the annotation's own tracks (exact identities and positions); among the
/// crossings both counted, a pair is grouped by the truth, by the pipeline, or by both.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GroupScore {
    /// Groups formed: by the annotation's crossings, by the pipeline's.
    pub truth_groups: u64,
    pub our_groups: u64,
    /// Pairs of matched crossings grouped by the truth, by the pipeline, by both.
    pub truth_pairs: u64,
    pub our_pairs: u64,
    pub both_pairs: u64,
}

impl std::ops::AddAssign for GroupScore {
    fn add_assign(&mut self, o: GroupScore) {
        self.truth_groups += o.truth_groups;
        self.our_groups += o.our_groups;
        self.truth_pairs += o.truth_pairs;
        self.our_pairs += o.our_pairs;
        self.both_pairs += o.both_pairs;
    }
}

impl GroupScore {
    /// Of the pairs the pipeline grouped, the share the truth groups too.
    pub fn precision(&self) -> Option<f64> {
        (self.our_pairs > 0).then(|| self.both_pairs as f64 / self.our_pairs as f64)
    }

    /// Of the pairs the truth groups, the share the pipeline grouped too.
    pub fn recall(&self) -> Option<f64> {
        (self.truth_pairs > 0).then(|| self.both_pairs as f64 / self.truth_pairs as f64)
    }
}

/// Score one line's grouping; `None` when the pipeline does not group (an anchor: its
/// crossings carry group 0).
pub fn grouping(truth: &[TruthCrossing], ours: &[Crossing]) -> Option<GroupScore> {
    if ours.iter().any(|c| c.group == 0) {
        return None;
    }
    let groups = |g: &mut dyn Iterator<Item = (bool, u64)>| {
        g.collect::<std::collections::BTreeSet<_>>().len() as u64
    };
    let matched = pairs(truth, ours);
    let mut score = GroupScore {
        truth_groups: groups(&mut truth.iter().map(|t| (t.crossing.inwards, t.crossing.group))),
        our_groups: groups(&mut ours.iter().map(|c| (c.inwards, c.group))),
        ..GroupScore::default()
    };
    for (a, &(ta, oa)) in matched.iter().enumerate() {
        for &(tb, ob) in &matched[a + 1..] {
            let (t1, t2) = (truth[ta].crossing, truth[tb].crossing);
            let (o1, o2) = (ours[oa], ours[ob]);
            let by_truth = t1.inwards == t2.inwards && t1.group == t2.group;
            let by_us = o1.inwards == o2.inwards && o1.group == o2.group;
            score.truth_pairs += u64::from(by_truth);
            score.our_pairs += u64::from(by_us);
            score.both_pairs += u64::from(by_truth && by_us);
        }
    }
    Some(score)
}

/// The store's occupancy with one line as its only entrance, followed second by second from
/// the annotation's crossings and from a pipeline's, both through the product's own count
/// (`vitrine_signals::occupancy`: never below zero): how many seconds the pipeline's count is
/// within max(2 people, 5 %) of the truth's, and the worst difference.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OccupancyScore {
    pub seconds: u64,
    pub within: u64,
    pub worst: u64,
    /// The most people the truth has inside.
    pub peak: u64,
}

pub fn occupancy(truth: &[TruthCrossing], ours: &[Crossing], end_ms: u64) -> OccupancyScore {
    let t: Vec<Crossing> = truth.iter().map(|c| c.crossing).collect();
    let (mut a, mut b) = (Follow::new(&t), Follow::new(ours));
    let mut s = OccupancyScore::default();
    for second in 0..=end_ms / 1000 {
        let at = second * 1000;
        let (truth_now, ours_now) = (a.at(at), b.at(at));
        let diff = truth_now.abs_diff(ours_now);
        s.seconds += 1;
        s.within += u64::from(diff as f64 <= (0.05 * truth_now as f64).max(2.0));
        s.worst = s.worst.max(diff);
        s.peak = s.peak.max(truth_now);
    }
    s
}

/// One stream of crossings through the product's occupancy count.
struct Follow {
    crossings: Vec<Crossing>,
    next: usize,
    tally: vitrine_signals::audit::Tally,
    count: vitrine_signals::occupancy::Occupancy,
}

impl Follow {
    /// A crossing made out of sight is counted later with the time it was made: in time order.
    fn new(crossings: &[Crossing]) -> Follow {
        let mut crossings = crossings.to_vec();
        crossings.sort_by_key(|c| c.t_ms);
        let p = vitrine_config::StoreOccupancy {
            entrances: vec![vitrine_config::Entrance {
                camera: "c".into(),
                line: "l".into(),
            }],
            capacity: None,
            opens_minute: 0,
            closes_minute: None,
            empty_after_secs: None,
        };
        Follow {
            crossings,
            next: 0,
            tally: Default::default(),
            count: vitrine_signals::occupancy::Occupancy::new(p),
        }
    }

    /// People inside at `t_ms` (crossings up to it applied).
    fn at(&mut self, t_ms: u64) -> u64 {
        let day = vitrine_signals::occupancy::LocalTime { day: 0, minute: 0 };
        while let Some(c) = self.crossings.get(self.next).filter(|c| c.t_ms <= t_ms) {
            if c.inwards {
                self.tally.ins += 1;
            } else {
                self.tally.outs += 1;
            }
            let lines = [vitrine_signals::occupancy::EntranceCount {
                line: "l".to_string(),
                people: self.tally,
                groups: self.tally,
            }];
            self.count.observe(c.t_ms, day, "c", &lines, 1, 0);
            self.next += 1;
        }
        self.count.now()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(t_ms: u64, inwards: bool) -> Crossing {
        g(t_ms, inwards, 0)
    }

    fn g(t_ms: u64, inwards: bool, group: u64) -> Crossing {
        Crossing {
            t_ms,
            key: 0,
            inwards,
            group,
        }
    }

    #[test]
    fn grouping_is_scored_pair_by_pair_on_the_crossings_both_counted() {
        let truth: Vec<TruthCrossing> = [g(1_000, true, 1), g(1_500, true, 1), g(9_000, true, 2)]
            .into_iter()
            .map(|crossing| TruthCrossing {
                crossing,
                hidden: false,
            })
            .collect();
        // The pipeline split the couple and joined the third person to the second.
        let ours = [g(1_100, true, 7), g(1_600, true, 8), g(9_100, true, 8)];
        let s = grouping(&truth, &ours).unwrap();
        assert_eq!((s.truth_groups, s.our_groups), (2, 2));
        assert_eq!((s.truth_pairs, s.our_pairs, s.both_pairs), (1, 1, 0));
        assert_eq!((s.precision(), s.recall()), (Some(0.0), Some(0.0)));
        let same = grouping(
            &truth,
            &[g(1_100, true, 1), g(1_600, true, 1), g(9_100, true, 2)],
        )
        .unwrap();
        assert_eq!((same.precision(), same.recall()), (Some(1.0), Some(1.0)));
        // A pipeline that does not group is not scored.
        assert_eq!(grouping(&truth, &[c(1_100, true)]), None);
    }

    fn t(t_ms: u64, inwards: bool, hidden: bool) -> TruthCrossing {
        TruthCrossing {
            crossing: c(t_ms, inwards),
            hidden,
        }
    }

    #[test]
    fn crossings_match_by_direction_and_time() {
        let truth = [
            t(1000, true, false),
            t(5000, true, true),
            t(9000, false, true),
        ];
        // The hidden inwards crossing counted 3 s late; the outwards one counted inwards
        // (wrong way: false, and missed); one more far from any truth.
        let ours = [
            c(1100, true),
            c(8000, true),
            c(9500, true),
            c(30_000, false),
        ];
        let s = score(&truth, &ours);
        assert_eq!(s.truth, 3);
        assert_eq!(s.hidden, 2);
        assert_eq!(s.counted, 2, "{s:?}");
        assert_eq!(s.hidden_counted, 1, "{s:?}");
        assert_eq!(s.false_, 2, "{s:?}");
    }

    #[test]
    fn the_largest_matching_wins_over_the_closest_pair() {
        // Closest first would pair 2000 with 3000 and leave both 6500 and 500 unmatched.
        let truth = [t(2000, true, false), t(6500, true, false)];
        let ours = [c(3000, true), c(500, true)];
        let s = score(&truth, &ours);
        assert_eq!(s.counted, 2, "{s:?}");
    }
}
