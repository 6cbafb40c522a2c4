//! Staff left out of the customer counts (`[cameras.staff]`). A person whose feet are in a
//! staff-only area (behind the till, the stock-room door) or, with a dwell rule, who has been
//! in view longer than `dwell_secs`, is staff for the rest of their track: from that frame on
//! no zone, line, queue, funnel, heatmap, display or people count sees them. Their crossings of
//! the camera's lines are counted apart (staff movements), and how many different staff
//! tracks were seen; both are counts only, k-suppressed like every count (a small team's
//! movements would otherwise say when one employee came and went).
//!
//! What this cannot do: a staff member who never stands in a staff area (and leaves before the
//! dwell rule) is a customer, and the crossings a person made before they became staff stay
//! customer crossings (a window may already be published). Commercial counters use badges.

use std::collections::{BTreeMap, BTreeSet};

use vitrine_config::{Line, Staff};

use super::foot::Foot;
use super::line::LineState;
use crate::event::{suppress, StaffLineStats, StaffStats};
use crate::geom::in_polygon;

/// Most people the rule follows at once (the tracker's own bound is lower); beyond, the
/// oldest customer is forgotten (they start again as new).
pub const MAX_KNOWN: usize = 1024;

#[derive(Debug)]
pub struct StaffState {
    rule: Staff,
    /// Live person keys: when first seen, and whether they are staff.
    known: BTreeMap<u64, (u64, bool)>,
    /// Staff person keys seen in this window (bounded by `MAX_KNOWN`).
    seen: BTreeSet<u64>,
    /// The camera's lines, counting staff crossings.
    lines: Vec<LineState>,
}

/// One frame's people, split.
#[derive(Debug, Default, PartialEq)]
pub struct Split {
    pub customers: Vec<Foot>,
    pub staff: Vec<Foot>,
    /// People who became staff in this frame (customer counts forget them now).
    pub became_staff: Vec<u64>,
}

impl StaffState {
    pub fn new(rule: Staff, lines: &[Line]) -> StaffState {
        StaffState {
            rule,
            known: BTreeMap::new(),
            seen: BTreeSet::new(),
            lines: lines.iter().cloned().map(LineState::new).collect(),
        }
    }

    /// Mark and split one frame's people.
    pub fn split(&mut self, now_ms: u64, feet: &[Foot]) -> Split {
        let mut out = Split::default();
        for f in feet {
            if !self.known.contains_key(&f.key) && self.known.len() >= MAX_KNOWN {
                self.evict();
            }
            let (first, staff) = *self.known.entry(f.key).or_insert((now_ms, false));
            let now_staff = staff || self.marks(now_ms.saturating_sub(first), f);
            if now_staff && !staff {
                self.known.insert(f.key, (first, true));
                out.became_staff.push(f.key);
            }
            if now_staff {
                if self.seen.len() < MAX_KNOWN {
                    self.seen.insert(f.key);
                }
                out.staff.push(*f);
            } else {
                out.customers.push(*f);
            }
        }
        out
    }

    /// Whether the rule makes someone in view for `in_view_ms`, standing at `f`, staff.
    fn marks(&self, in_view_ms: u64, f: &Foot) -> bool {
        let dwell = self
            .rule
            .dwell_secs
            .is_some_and(|s| in_view_ms as f64 >= f64::from(s) * 1000.0);
        dwell || self.rule.areas.iter().any(|a| in_polygon(f.at, &a.polygon))
    }

    /// Forget the customer seen first (the bound is reached).
    fn evict(&mut self) {
        let oldest = self
            .known
            .iter()
            .filter(|(_, (_, staff))| !staff)
            .min_by_key(|(_, (first, _))| *first)
            .map(|(k, _)| *k);
        match oldest {
            Some(k) => self.known.remove(&k),
            None => self.known.pop_first().map(|(_, v)| v),
        };
    }

    pub fn is_staff(&self, key: u64) -> bool {
        self.known.get(&key).is_some_and(|(_, staff)| *staff)
    }

    /// Staff crossings: the staff of one frame (those the detector saw, not guesses).
    pub fn observe_lines(&mut self, now_ms: u64, observed_staff: &[Foot]) {
        for l in &mut self.lines {
            l.observe(now_ms, observed_staff);
        }
    }

    /// Someone gone for good.
    pub fn forget(&mut self, key: u64) {
        self.known.remove(&key);
        for l in &mut self.lines {
            l.forget(key);
        }
    }

    pub fn finish(&mut self) {
        for l in &mut self.lines {
            l.finish();
        }
    }

    pub fn set_aspect(&mut self, aspect: f32) {
        for l in &mut self.lines {
            l.aspect = aspect;
        }
    }

    /// The window's staff movements, k-suppressed; counting starts again.
    pub fn take(&mut self, k_min: u32) -> StaffStats {
        let people = suppress(self.seen.len() as u32, k_min);
        self.seen.clear();
        let lines: Vec<StaffLineStats> = self
            .lines
            .iter_mut()
            .map(|l| {
                let (i, o) = (std::mem::take(&mut l.ins), std::mem::take(&mut l.outs));
                // Group bookkeeping of staff crossings is not published.
                let _ = l.groups.take();
                StaffLineStats {
                    id: l.line.id.clone(),
                    r#in: suppress(i, k_min),
                    out: suppress(o, k_min),
                }
            })
            .collect();
        let suppressed =
            people.is_none() || lines.iter().any(|l| l.r#in.is_none() || l.out.is_none());
        StaffStats {
            people,
            lines,
            suppressed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geom::Point;
    use vitrine_config::Area;

    fn foot(key: u64, x: f32, y: f32) -> Foot {
        Foot {
            key,
            at: Point { x, y },
            height: 0.3,
        }
    }

    fn till() -> Staff {
        Staff {
            areas: vec![Area {
                id: "till".into(),
                polygon: vec![
                    Point { x: 0.8, y: 0.0 },
                    Point { x: 1.0, y: 0.0 },
                    Point { x: 1.0, y: 1.0 },
                    Point { x: 0.8, y: 1.0 },
                ],
            }],
            dwell_secs: None,
        }
    }

    #[test]
    fn someone_who_steps_behind_the_till_is_staff_from_then_on() {
        let mut s = StaffState::new(till(), &[]);
        let a = s.split(0, &[foot(1, 0.5, 0.5), foot(2, 0.3, 0.5)]);
        assert_eq!(a.customers.len(), 2);
        let b = s.split(100, &[foot(1, 0.9, 0.5), foot(2, 0.3, 0.5)]);
        assert_eq!(b.became_staff, vec![1]);
        assert_eq!(b.staff.len(), 1);
        // Back on the shop floor: still staff.
        let c = s.split(200, &[foot(1, 0.5, 0.5), foot(2, 0.3, 0.5)]);
        assert!(c.became_staff.is_empty());
        assert_eq!(c.staff.iter().map(|f| f.key).collect::<Vec<_>>(), vec![1]);
        assert_eq!(
            c.customers.iter().map(|f| f.key).collect::<Vec<_>>(),
            vec![2]
        );
        assert!(s.is_staff(1) && !s.is_staff(2));
        // Gone: the key is forgotten (ids are ephemeral).
        s.forget(1);
        assert!(!s.is_staff(1));
    }

    #[test]
    fn the_dwell_rule_makes_someone_in_view_for_long_staff() {
        let rule = Staff {
            areas: vec![],
            dwell_secs: Some(600.0),
        };
        let mut s = StaffState::new(rule, &[]);
        assert!(s.split(0, &[foot(1, 0.5, 0.5)]).staff.is_empty());
        assert!(s.split(599_999, &[foot(1, 0.5, 0.5)]).staff.is_empty());
        let late = s.split(600_000, &[foot(1, 0.5, 0.5), foot(2, 0.5, 0.5)]);
        assert_eq!(late.became_staff, vec![1]);
        assert_eq!(late.customers.len(), 1);
    }

    #[test]
    fn staff_counts_are_suppressed_below_k() {
        let mut s = StaffState::new(till(), &[]);
        s.split(0, &[foot(1, 0.9, 0.5)]);
        let w = s.take(3);
        assert_eq!(w.people, None);
        assert!(w.suppressed);
        for k in 0..3 {
            s.split(1000, &[foot(10 + k, 0.9, 0.5)]);
        }
        let w = s.take(3);
        assert_eq!(w.people, Some(3));
        assert!(!w.suppressed);
        assert_eq!(s.take(3).people, Some(0));
    }

    #[test]
    fn the_people_followed_stay_bounded() {
        let mut s = StaffState::new(till(), &[]);
        for k in 0..(MAX_KNOWN as u64 + 50) {
            s.split(k, &[foot(k, 0.5, 0.5)]);
        }
        assert_eq!(s.known.len(), MAX_KNOWN);
        assert!(!s.known.contains_key(&0));
    }
}
