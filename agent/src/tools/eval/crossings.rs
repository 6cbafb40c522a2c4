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
            t_used[t[r]] = true;
            o_used[o[c]] = true;
        }
    }
    (t_used, o_used)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(t_ms: u64, inwards: bool) -> Crossing {
        Crossing {
            t_ms,
            key: 0,
            inwards,
        }
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
