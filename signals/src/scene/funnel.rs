//! The shopper funnel of one camera: passed by → entered → engaged → reached checkout.
//!
//! Each person climbs the stages in order: a stage counts only after every earlier one, so
//! each stage's count is at most the previous one's (conversion rates between stages are
//! meaningful). "Passed by" is reaching the configured line or area (or, without one, being
//! seen at all); "entered" crossing the entrance line inwards (or being inside the entrance
//! area); "engaged" staying `engaged_secs` in one of the engagement areas; "checkout" reaching
//! the checkout area (or line). Counts are of people reaching a stage within the window; only
//! the counts leave the camera. A track broken by an occlusion is continued by the track that
//! appears where it was within the grace, so a person's progress is not lost with their id.

use std::collections::HashMap;

use vitrine_config::{Funnel, StageAt};

use super::area::TAKEOVER_HEIGHTS;
use super::foot::Foot;
use super::presence::GRACE_MS;
use crate::event::{suppress, FunnelStats};
use crate::geom::{in_polygon, Point};

/// Stages after "none": passed, entered, engaged, checkout.
pub const STAGES: usize = 4;

#[derive(Debug, Clone, Copy)]
struct Progress {
    /// Stages reached (0: none yet).
    reached: usize,
    /// Since when the person has been in an engagement area (continuously, within the grace).
    engaging_since: Option<u64>,
    last_engaging_ms: u64,
    last_at: Point,
    last_seen_ms: u64,
}

/// Where each stage is, resolved to polygons and line ids.
#[derive(Debug, Clone)]
pub enum Place {
    Line(String),
    Area(Vec<Point>),
    /// Anywhere in view.
    Anywhere,
}

#[derive(Debug)]
pub struct FunnelState {
    passed: Place,
    entered: Place,
    engaged: Vec<Vec<Point>>,
    engaged_ms: u64,
    checkout: Place,
    people: HashMap<u64, Progress>,
    /// People gone within the grace, whose progress a new track nearby continues.
    orphans: Vec<Progress>,
    counts: [u32; STAGES],
}

impl FunnelState {
    /// `area` finds an area's polygon by id (zones, displays and queues of the camera).
    pub fn new(f: &Funnel, area: impl Fn(&str) -> Option<Vec<Point>>) -> FunnelState {
        let place = |s: &StageAt| match s {
            StageAt::Line(id) => Place::Line(id.clone()),
            StageAt::Area(id) => area(id).map(Place::Area).unwrap_or(Place::Anywhere),
        };
        FunnelState {
            passed: f.passed.as_ref().map(place).unwrap_or(Place::Anywhere),
            entered: place(&f.entered),
            engaged: f.engaged.iter().filter_map(|id| area(id)).collect(),
            engaged_ms: (f.engaged_secs * 1000.0) as u64,
            checkout: place(&f.checkout),
            people: HashMap::new(),
            orphans: Vec::new(),
            counts: [0; STAGES],
        }
    }

    fn at(place: &Place, f: &Foot, crossed_in: &[(&str, u64)]) -> bool {
        match place {
            Place::Anywhere => true,
            Place::Area(poly) => in_polygon(f.at, poly),
            Place::Line(id) => crossed_in.iter().any(|(l, k)| l == id && *k == f.key),
        }
    }

    /// One frame: where everyone in view stands, and who crossed which line inwards.
    pub fn observe(&mut self, now_ms: u64, feet: &[Foot], crossed_in: &[(&str, u64)]) {
        self.orphans
            .retain(|o| now_ms.saturating_sub(o.last_seen_ms) <= GRACE_MS);
        for f in feet {
            let mut p = match self.people.remove(&f.key) {
                Some(p) => p,
                None => self.adopt(f).unwrap_or(Progress {
                    reached: 0,
                    engaging_since: None,
                    last_engaging_ms: now_ms,
                    last_at: f.at,
                    last_seen_ms: now_ms,
                }),
            };
            p.last_at = f.at;
            p.last_seen_ms = now_ms;
            self.climb(now_ms, f, &mut p, crossed_in);
            self.people.insert(f.key, p);
        }
    }

    fn climb(&mut self, now_ms: u64, f: &Foot, p: &mut Progress, crossed_in: &[(&str, u64)]) {
        if self.engaged.iter().any(|poly| in_polygon(f.at, poly)) {
            p.engaging_since.get_or_insert(now_ms);
            p.last_engaging_ms = now_ms;
        } else if now_ms.saturating_sub(p.last_engaging_ms) > GRACE_MS {
            p.engaging_since = None;
        }
        loop {
            let next = match p.reached {
                0 => Self::at(&self.passed, f, crossed_in),
                1 => Self::at(&self.entered, f, crossed_in),
                2 => p
                    .engaging_since
                    .is_some_and(|s| now_ms.saturating_sub(s) >= self.engaged_ms),
                3 => Self::at(&self.checkout, f, crossed_in),
                _ => false,
            };
            if !next {
                break;
            }
            self.counts[p.reached] += 1;
            p.reached += 1;
        }
    }

    /// The progress of someone gone within the grace, last seen near `f`.
    fn adopt(&mut self, f: &Foot) -> Option<Progress> {
        let i = self
            .orphans
            .iter()
            .enumerate()
            .filter(|(_, o)| {
                (o.last_at.x - f.at.x).hypot(o.last_at.y - f.at.y) <= TAKEOVER_HEIGHTS * f.height
            })
            .max_by_key(|(_, o)| o.last_seen_ms)
            .map(|(i, _)| i)?;
        Some(self.orphans.swap_remove(i))
    }

    /// The person is gone for good; a new track nearby within the grace continues them.
    pub fn forget(&mut self, key: u64) {
        if let Some(p) = self.people.remove(&key) {
            if self.orphans.len() < 256 {
                self.orphans.push(p);
            }
        }
    }

    pub fn take(&mut self, k_min: u32) -> FunnelStats {
        let c = self.counts.map(|n| suppress(n, k_min));
        self.counts = [0; STAGES];
        FunnelStats {
            passed: c[0],
            entered: c[1],
            engaged: c[2],
            checkout: c[3],
            suppressed: c.iter().any(Option::is_none),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(x: f32, y: f32) -> Point {
        Point { x, y }
    }

    fn rect(x0: f32, x1: f32) -> Vec<Point> {
        vec![p(x0, 0.0), p(x1, 0.0), p(x1, 1.0), p(x0, 1.0)]
    }

    /// Street x < 0.2, door line "door", promo 0.4–0.6, till x > 0.8.
    fn funnel() -> FunnelState {
        let f = Funnel {
            passed: Some(StageAt::Area("street".into())),
            entered: StageAt::Line("door".into()),
            engaged: vec!["promo".into()],
            engaged_secs: 5.0,
            checkout: StageAt::Area("till".into()),
        };
        FunnelState::new(&f, |id| match id {
            "street" => Some(rect(0.0, 0.2)),
            "promo" => Some(rect(0.4, 0.6)),
            "till" => Some(rect(0.8, 1.0)),
            _ => None,
        })
    }

    fn at(key: u64, x: f32) -> Foot {
        Foot {
            key,
            at: p(x, 0.5),
            height: 0.2,
        }
    }

    #[test]
    fn stages_count_in_order_and_never_grow_down_the_funnel() {
        let mut f = funnel();
        // 1: passes by only. 2: enters, browses 2 s, leaves. 3: enters, engages 6 s, pays.
        for key in 1..=3 {
            f.observe(0, &[at(key, 0.1)], &[]);
        }
        f.observe(1000, &[at(2, 0.3), at(3, 0.3)], &[("door", 2), ("door", 3)]);
        for s in 2..10 {
            f.observe(s * 1000, &[at(3, 0.5)], &[]);
            if s < 4 {
                f.observe(s * 1000, &[at(2, 0.5)], &[]);
            }
        }
        f.observe(10_000, &[at(3, 0.9)], &[]);
        let s = f.take(0);
        assert_eq!(
            (s.passed, s.entered, s.engaged, s.checkout),
            (Some(3), Some(2), Some(1), Some(1))
        );
    }

    #[test]
    fn reaching_the_till_without_the_earlier_stages_does_not_count() {
        let mut f = funnel();
        f.observe(0, &[at(9, 0.9)], &[]);
        let s = f.take(0);
        assert_eq!((s.passed, s.checkout), (Some(0), Some(0)));
    }

    #[test]
    fn a_broken_track_keeps_its_progress() {
        let mut f = funnel();
        f.observe(0, &[at(1, 0.1)], &[]);
        f.observe(1000, &[at(1, 0.3)], &[("door", 1)]);
        f.forget(1);
        f.observe(1500, &[at(2, 0.32)], &[]);
        for s in 2..9 {
            f.observe(s * 1000, &[at(2, 0.5)], &[]);
        }
        let s = f.take(0);
        assert_eq!(
            (s.passed, s.entered, s.engaged),
            (Some(1), Some(1), Some(1))
        );
    }

    #[test]
    fn small_counts_are_suppressed() {
        let mut f = funnel();
        f.observe(0, &[at(1, 0.1)], &[]);
        let s = f.take(3);
        assert!(s.suppressed);
        assert_eq!((s.passed, s.entered), (None, Some(0)));
    }
}
