//! Visits and dwell in one polygon (a zone, or a display's viewing area), per person.
//! A person must be out of the area (or out of sight) longer than [`GRACE_MS`] before their
//! visit ends: jitter at the edge of a zone, or a short occlusion, is not a new visit. When a
//! track breaks inside the area (an occlusion the tracker could not bridge), the track that
//! appears near where the lost one was, within the grace, takes its visit over: one visit,
//! one dwell, not two.

use std::collections::{HashMap, HashSet};

use vitrine_config::Area;

use super::foot::Foot;
use super::presence::GRACE_MS;
use crate::event::{AreaStats, DwellStats};
use crate::geom::{in_polygon, Point};

#[derive(Debug, Clone, Copy)]
struct Visit {
    entered_ms: u64,
    last_inside_ms: u64,
    /// Where the person was last seen inside.
    last_at: Point,
}

/// How far (in box heights of the newcomer) from where a lost visitor was last seen a new
/// track may be to take their visit over: about the walk of the grace period.
pub const TAKEOVER_HEIGHTS: f32 = 1.0;

#[derive(Debug)]
pub struct AreaState {
    pub(crate) area: Area,
    open: HashMap<u64, Visit>,
    pub(crate) visits: u32,
    dwell_ms: Vec<u64>,
    occupancy_sum: u64,
    pub(crate) occupancy_max: u32,
    /// People inside in the last frame (alerts).
    pub(crate) occupancy_now: u32,
    /// New tracks may take a lost one's visit over (off for annotated, trusted identities).
    pub(crate) takeover: bool,
}

impl AreaState {
    pub fn new(area: Area) -> AreaState {
        AreaState {
            area,
            open: HashMap::new(),
            visits: 0,
            dwell_ms: Vec::new(),
            occupancy_sum: 0,
            occupancy_max: 0,
            occupancy_now: 0,
            takeover: true,
        }
    }

    pub fn contains(&self, p: Point) -> bool {
        in_polygon(p, &self.area.polygon)
    }

    /// One frame: where everyone in view stands.
    pub fn observe(&mut self, now_ms: u64, people: &[Foot]) {
        let mut occupancy = 0;
        let in_view: HashSet<u64> = people.iter().map(|f| f.key).collect();
        for &Foot {
            key,
            at: p,
            height: h,
            ..
        } in people
        {
            if !self.contains(p) {
                continue;
            }
            occupancy += 1;
            if let Some(v) = self.open.get_mut(&key) {
                v.last_inside_ms = now_ms;
                v.last_at = p;
                continue;
            }
            let visit = match self.orphan(now_ms, p, h, &in_view) {
                Some(old) if self.takeover => self.open.remove(&old),
                _ => None,
            };
            let mut visit = visit.unwrap_or_else(|| {
                self.visits += 1;
                Visit {
                    entered_ms: now_ms,
                    last_inside_ms: now_ms,
                    last_at: p,
                }
            });
            visit.last_inside_ms = now_ms;
            visit.last_at = p;
            self.open.insert(key, visit);
        }
        // Visits whose person has been outside (or unseen) longer than the grace end now.
        let ended: Vec<u64> = self
            .open
            .iter()
            .filter(|(_, v)| now_ms.saturating_sub(v.last_inside_ms) > GRACE_MS)
            .map(|(k, _)| *k)
            .collect();
        for key in ended {
            self.close(key);
        }
        self.occupancy_sum += occupancy;
        self.occupancy_max = self.occupancy_max.max(occupancy as u32);
        self.occupancy_now = occupancy as u32;
    }

    /// The open visit of someone out of sight within the grace, last seen near `p` (the most
    /// recent such visit, if several).
    fn orphan(&self, now_ms: u64, p: Point, h: f32, in_view: &HashSet<u64>) -> Option<u64> {
        self.open
            .iter()
            .filter(|(k, v)| {
                !in_view.contains(k)
                    && now_ms.saturating_sub(v.last_inside_ms) <= GRACE_MS
                    && (v.last_at.x - p.x).hypot(v.last_at.y - p.y) <= TAKEOVER_HEIGHTS * h
            })
            .max_by_key(|(k, v)| (v.last_inside_ms, **k))
            .map(|(k, _)| *k)
    }

    /// The person is gone for good: their visit, if any, ends at their last time inside.
    pub fn close(&mut self, key: u64) {
        if let Some(v) = self.open.remove(&key) {
            self.dwell_ms.push(v.last_inside_ms - v.entered_ms);
        }
    }

    /// Person-seconds inside so far in this window, frames `interval_ms` apart.
    pub(crate) fn person_seconds(&self, interval_ms: u64) -> f64 {
        self.occupancy_sum as f64 * interval_ms as f64 / 1000.0
    }

    /// The window's figures (`frames` analysed), then a fresh window; open visits go on.
    pub fn take(&mut self, frames: u64, k_min: u32) -> AreaStats {
        let occupancy_mean = if frames == 0 {
            None
        } else {
            Some(self.occupancy_sum as f64 / frames as f64)
        };
        let stats = AreaStats::new(
            self.area.id.clone(),
            occupancy_mean,
            self.occupancy_max,
            self.visits,
            DwellStats::from_ms(&mut self.dwell_ms),
            k_min,
        );
        self.visits = 0;
        self.dwell_ms.clear();
        self.occupancy_sum = 0;
        self.occupancy_max = 0;
        stats
    }

    /// Visits open now (bounded by the people in view plus those within the grace).
    pub fn open_visits(&self) -> usize {
        self.open.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(x: f32, y: f32) -> Point {
        Point { x, y }
    }

    fn f(key: u64, at: Point, height: f32) -> Foot {
        Foot { key, at, height }
    }

    fn right_half() -> Area {
        Area {
            id: "right-half".into(),
            polygon: vec![p(0.5, 0.0), p(1.0, 0.0), p(1.0, 1.0), p(0.5, 1.0)],
        }
    }

    #[test]
    fn leaving_for_less_than_the_grace_continues_the_visit() {
        let mut a = AreaState::new(right_half());
        let (inside, outside) = (f(7, p(0.7, 0.5), 0.2), f(7, p(0.2, 0.5), 0.2));
        a.observe(0, &[inside]);
        a.observe(500, &[outside]);
        a.observe(1900, &[inside]);
        a.observe(2000, &[outside]);
        a.observe(2000 + GRACE_MS + 500, &[outside]);
        let w = a.take(5, 0);
        assert_eq!(w.visits, Some(1));
        let d = w.dwell_seconds.expect("the visit ended");
        assert_eq!((d.count, d.max), (1, 1.9));
        assert_eq!(a.open_visits(), 0);
    }

    #[test]
    fn zone_edge_jitter_is_one_visit() {
        let mut a = AreaState::new(right_half());
        for i in 0..50u64 {
            let x = if i % 3 == 0 { 0.48 } else { 0.52 };
            a.observe(i * 200, &[f(1, p(x, 0.6), 0.2)]);
        }
        a.close(1);
        assert_eq!(a.take(50, 0).visits, Some(1));
    }

    #[test]
    fn a_track_broken_inside_the_area_keeps_one_visit() {
        let mut a = AreaState::new(right_half());
        for i in 0..10u64 {
            a.observe(i * 200, &[f(1, p(0.6 + 0.01 * i as f32, 0.5), 0.2)]);
        }
        // Track 1 lost at (0.69, 0.5); 1 s later track 2 appears a little further on.
        for i in 15..25u64 {
            a.observe(i * 200, &[f(2, p(0.6 + 0.01 * i as f32, 0.5), 0.2)]);
        }
        a.close(1);
        a.close(2);
        let w = a.take(20, 0);
        assert_eq!(w.visits, Some(1));
        let d = w.dwell_seconds.expect("one visit ended");
        assert_eq!((d.count, d.max), (1, 4.8));
    }

    #[test]
    fn a_visitor_still_in_view_is_never_taken_over() {
        let mut a = AreaState::new(right_half());
        // Two people inside, side by side; the second appears while the first is in view.
        a.observe(0, &[f(1, p(0.7, 0.5), 0.2)]);
        a.observe(200, &[f(1, p(0.7, 0.5), 0.2), f(2, p(0.72, 0.5), 0.2)]);
        // Someone appears far from where anyone vanished: a new visit too.
        a.observe(400, &[f(2, p(0.72, 0.5), 0.2)]);
        a.observe(600, &[f(2, p(0.72, 0.5), 0.2), f(3, p(0.95, 0.05), 0.1)]);
        assert_eq!(a.take(4, 0).visits, Some(3));
    }
}
