//! Camera placement help, from a few minutes of tracks: is the camera close enough for the
//! detector, does each line lie across the way people walk, is each area inside the picture.
//!
//! The thresholds are general rules, not fitted to a clip:
//! - **Too small**: the detector's finest grid has 8-pixel cells; a person less than three
//!   cells tall at its input (24 px) is found unreliably. When the median person, measured at
//!   the detector's input size, is shorter than that, the camera is too far or `input_size`
//!   too low.
//! - **Along the line**: near a counting line, a person's movement splits into a part across
//!   the line (what counts) and a part along it. When more of the movement near the line runs
//!   along it than across it (people walk within 45° of the line's direction), crossings
//!   become jitter and the count unreliable.
//! - **Outside the image**: an area whose polygon lies more than half outside 0..1.
//!
//! Track-based checks wait for [`MIN_TRACKS`] people (and, per line, for movement near it).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use vitrine_config::{Camera, Line, Point};

use crate::track::TrackView;

/// Three cells of the detector's finest (8 px) grid: a person shorter than this at its input
/// is found unreliably.
pub const MIN_HEIGHT_PX: f32 = 24.0;
/// People seen before a track-based check says anything.
pub const MIN_TRACKS: u64 = 10;
/// Movement near a line (in image heights) before its direction check says anything.
const MIN_NEAR_MOVEMENT: f64 = 2.0;
/// Steps longer than this are a track's gap, not a movement.
const MAX_STEP_MS: u64 = 1_000;
/// Box heights histogram: 2-pixel bins up to 1024 px.
const HEIGHT_BINS: usize = 512;
const BIN_PX: f32 = 2.0;
/// Tracks remembered at most (their last foot); beyond, the oldest is forgotten.
const MAX_TRACKS: usize = 1024;

/// A placement problem, with what to do about it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Warning {
    /// `camera`, or the line/zone/display/queue id it is about.
    pub subject: String,
    /// `small_people`, `line_along_walkway`, `area_outside_image`.
    pub kind: String,
    pub message: String,
    pub fix: String,
}

/// The checks' state after some minutes of tracks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub observed_secs: u64,
    pub people: u64,
    pub warnings: Vec<Warning>,
    /// Checks that cannot say anything yet, and why.
    pub waiting: Vec<String>,
}

/// Movement near one line: how much ran along it and how much across (image heights).
#[derive(Debug, Clone, Copy, Default)]
struct Motion {
    along: f64,
    across: f64,
}

/// Accumulates what the checks need from a camera's tracks (bounded: a histogram, a sum per
/// line, the last foot of each live track).
#[derive(Debug, Clone)]
pub struct Placement {
    /// Pixels the image spans at the detector's input (width, height).
    detector_px: (f32, f32),
    lines: Vec<Line>,
    motion: Vec<Motion>,
    /// Person heights at the detector's input.
    heights: Vec<u64>,
    last: HashMap<u64, (u64, Point, f32)>,
    people: u64,
    first_ms: Option<u64>,
    last_ms: u64,
}

impl Placement {
    /// `detector_px`: the size the camera's frames take inside the detector's input.
    pub fn new(camera: &Camera, detector_px: (f32, f32)) -> Placement {
        Placement {
            detector_px,
            lines: camera.lines.clone(),
            motion: vec![Motion::default(); camera.lines.len()],
            heights: vec![0; HEIGHT_BINS],
            last: HashMap::new(),
            people: 0,
            first_ms: None,
            last_ms: 0,
        }
    }

    /// One frame's people (confirmed tracks, as the tracker placed them).
    pub fn observe(&mut self, now_ms: u64, people: &[TrackView]) {
        self.first_ms.get_or_insert(now_ms);
        self.last_ms = now_ms;
        let (pw, ph) = self.detector_px;
        let aspect = f64::from(pw / ph.max(1.0));
        for t in people {
            let h = (t.bbox.h() * ph).max(0.0);
            self.heights[((h / BIN_PX) as usize).min(HEIGHT_BINS - 1)] += 1;
            let foot = t.bbox.foot();
            match self.last.insert(t.id, (now_ms, foot, t.bbox.h())) {
                None => self.people += 1,
                Some((then, before, _)) if now_ms.saturating_sub(then) <= MAX_STEP_MS => {
                    self.moved(before, foot, t.bbox.h(), aspect);
                }
                Some(_) => {}
            }
        }
        if self.last.len() > MAX_TRACKS {
            let live: Vec<u64> = people.iter().map(|p| p.id).collect();
            self.last.retain(|k, _| live.contains(k));
        }
    }

    /// A track ended: its last foot is forgotten.
    pub fn forget(&mut self, id: u64) {
        self.last.remove(&id);
    }

    /// Movement `a`→`b` of someone `h` tall, credited to every line it passes near.
    fn moved(&mut self, a: Point, b: Point, h: f32, aspect: f64) {
        for (line, m) in self.lines.iter().zip(&mut self.motion) {
            let near = (h as f64).max(0.05);
            if distance_to_segment(a, line, aspect) > near
                && distance_to_segment(b, line, aspect) > near
            {
                continue;
            }
            // In a frame where x and y are the same unit (x scaled by the aspect ratio).
            let (dx, dy) = (f64::from(b.x - a.x) * aspect, f64::from(b.y - a.y));
            let (lx, ly) = (
                f64::from(line.to.x - line.from.x) * aspect,
                f64::from(line.to.y - line.from.y),
            );
            let len = (lx * lx + ly * ly).sqrt().max(1e-9);
            let (ux, uy) = (lx / len, ly / len);
            m.along += (dx * ux + dy * uy).abs();
            m.across += (dx * -uy + dy * ux).abs();
        }
    }

    /// What the checks say now about `camera` (its areas are checked from the geometry alone).
    pub fn report(&self, camera: &Camera) -> Report {
        let mut warnings = area_warnings(camera);
        let mut waiting = Vec::new();
        if self.people < MIN_TRACKS {
            waiting.push(format!(
                "{} people seen so far; the size and direction checks wait for {MIN_TRACKS}",
                self.people
            ));
        } else {
            warnings.extend(self.size_warning());
            for (line, m) in self.lines.iter().zip(&self.motion) {
                if m.along + m.across < MIN_NEAR_MOVEMENT {
                    waiting.push(format!(
                        "line {:?}: too little movement near it yet to judge its direction",
                        line.id
                    ));
                } else if m.along > m.across {
                    let pct = 100.0 * m.along / (m.along + m.across);
                    warnings.push(Warning {
                        subject: line.id.clone(),
                        kind: "line_along_walkway".into(),
                        message: format!(
                            "people near line {:?} walk along it more than across it ({pct:.0} % of their movement runs along the line): crossings there are mostly jitter",
                            line.id
                        ),
                        fix: "turn the line across the way people walk (at a door: across the doorway, not along it)".into(),
                    });
                }
            }
        }
        Report {
            observed_secs: self
                .last_ms
                .saturating_sub(self.first_ms.unwrap_or(self.last_ms))
                / 1000,
            people: self.people,
            warnings,
            waiting,
        }
    }

    fn size_warning(&self) -> Option<Warning> {
        let n: u64 = self.heights.iter().sum();
        let mut seen = 0;
        let median_bin = self.heights.iter().position(|c| {
            seen += c;
            seen * 2 >= n
        })?;
        let median = (median_bin as f32 + 0.5) * BIN_PX;
        (median < MIN_HEIGHT_PX).then(|| Warning {
            subject: "camera".into(),
            kind: "small_people".into(),
            message: format!(
                "people are small for the detector: the median person is about {median:.0} px tall at its input ({:.0}x{:.0}), under the {MIN_HEIGHT_PX:.0} px below which detection is unreliable",
                self.detector_px.0, self.detector_px.1
            ),
            fix: "move or zoom the camera closer, or raise models.input_size (costs CPU)".into(),
        })
    }
}

/// Areas (zones, displays, queues) more than half outside the image.
pub fn area_warnings(camera: &Camera) -> Vec<Warning> {
    let areas = camera
        .zones
        .iter()
        .map(|a| ("zone", a))
        .chain(camera.displays.iter().map(|d| ("display", &d.area)))
        .chain(camera.queues.iter().map(|q| ("queue", &q.area)));
    areas
        .filter_map(|(kind, a)| {
            let inside = inside_fraction(&a.polygon);
            (inside < 0.5).then(|| Warning {
                subject: a.id.clone(),
                kind: "area_outside_image".into(),
                message: format!(
                    "{kind} {:?} is mostly outside the image (only {:.0} % of it is in view): people there are never seen",
                    a.id,
                    inside * 100.0
                ),
                fix: "move its corners into the picture (coordinates between 0 and 1)".into(),
            })
        })
        .collect()
}

/// One coordinate of a point (x or y).
type Coord = fn(Point) -> f32;

/// The fraction of a polygon's area inside the unit square (1 for a degenerate polygon).
pub fn inside_fraction(poly: &[Point]) -> f64 {
    let total = area(poly);
    if total <= 1e-12 {
        return 1.0;
    }
    let mut clipped: Vec<Point> = poly.to_vec();
    // Sutherland–Hodgman against the four edges of the (convex) unit square.
    let edges: [(Coord, bool); 4] = [
        (|p| p.x, true),
        (|p| p.x, false),
        (|p| p.y, true),
        (|p| p.y, false),
    ];
    for (coord, low) in edges {
        let inside = |p: Point| {
            if low {
                coord(p) >= 0.0
            } else {
                coord(p) <= 1.0
            }
        };
        let bound = if low { 0.0 } else { 1.0 };
        let input = std::mem::take(&mut clipped);
        for (i, &cur) in input.iter().enumerate() {
            let prev = input[(i + input.len() - 1) % input.len()];
            let cross = |a: Point, b: Point| {
                let t = (bound - coord(a)) / (coord(b) - coord(a));
                Point {
                    x: a.x + (b.x - a.x) * t,
                    y: a.y + (b.y - a.y) * t,
                }
            };
            match (inside(prev), inside(cur)) {
                (true, true) => clipped.push(cur),
                (true, false) => clipped.push(cross(prev, cur)),
                (false, true) => {
                    clipped.push(cross(prev, cur));
                    clipped.push(cur);
                }
                (false, false) => {}
            }
        }
        if clipped.is_empty() {
            return 0.0;
        }
    }
    (area(&clipped) / total).clamp(0.0, 1.0)
}

/// Shoelace area (absolute).
fn area(poly: &[Point]) -> f64 {
    let n = poly.len();
    let twice: f64 = (0..n)
        .map(|i| {
            let (a, b) = (poly[i], poly[(i + 1) % n]);
            f64::from(a.x) * f64::from(b.y) - f64::from(b.x) * f64::from(a.y)
        })
        .sum();
    twice.abs() / 2.0
}

/// Distance from `p` to the line's segment, x scaled by `aspect` (image heights).
fn distance_to_segment(p: Point, line: &Line, aspect: f64) -> f64 {
    let s = |q: Point| (f64::from(q.x) * aspect, f64::from(q.y));
    let ((px, py), (ax, ay), (bx, by)) = (s(p), s(line.from), s(line.to));
    let (dx, dy) = (bx - ax, by - ay);
    let len2 = (dx * dx + dy * dy).max(1e-12);
    let t = (((px - ax) * dx + (py - ay) * dy) / len2).clamp(0.0, 1.0);
    let (cx, cy) = (ax + t * dx, ay + t * dy);
    ((px - cx).powi(2) + (py - cy).powi(2)).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geom::BBox;
    use vitrine_config::{Area, Side};

    fn pt(x: f32, y: f32) -> Point {
        Point { x, y }
    }

    fn camera(lines: Vec<Line>, zones: Vec<Area>) -> Camera {
        Camera {
            id: "c".into(),
            source: vitrine_config::VideoSource::File("x.mp4".into()),
            format: None,
            rtsp_transport: Default::default(),
            fps: 5.0,
            size: None,
            detect_every: 1,
            motion_gating: true,
            zones,
            lines,
            displays: vec![],
            queues: vec![],
            heatmap: None,
            funnel: None,
            alerts: vec![],
        }
    }

    fn line(from: Point, to: Point) -> Line {
        Line {
            id: "door".into(),
            from,
            to,
            in_side: Side::Left,
        }
    }

    /// `n` people walking from `a` to `b` (normalized feet), boxes `h` tall.
    fn walk(p: &mut Placement, n: u64, a: Point, b: Point, h: f32) {
        for id in 0..n {
            for step in 0..=20u64 {
                let f = step as f32 / 20.0;
                let (x, y) = (a.x + (b.x - a.x) * f, a.y + (b.y - a.y) * f);
                let t = id * 100_000 + step * 200;
                let bbox = BBox::new(x - h * 0.2, y - h, x + h * 0.2, y);
                p.observe(t, &[TrackView { id: id + 1, bbox }]);
            }
            p.forget(id + 1);
        }
    }

    #[test]
    fn a_line_across_the_walkway_passes_and_one_along_it_warns() {
        // People walk left to right along y = 0.6.
        let across = camera(vec![line(pt(0.5, 0.3), pt(0.5, 0.9))], vec![]);
        let mut p = Placement::new(&across, (416.0, 234.0));
        walk(&mut p, 12, pt(0.1, 0.6), pt(0.9, 0.6), 0.4);
        let r = p.report(&across);
        assert!(r.warnings.is_empty(), "{r:?}");
        assert_eq!(r.people, 12);

        let along = camera(vec![line(pt(0.2, 0.62), pt(0.8, 0.62))], vec![]);
        let mut p = Placement::new(&along, (416.0, 234.0));
        walk(&mut p, 12, pt(0.1, 0.6), pt(0.9, 0.6), 0.4);
        let r = p.report(&along);
        assert_eq!(r.warnings.len(), 1, "{r:?}");
        assert_eq!(r.warnings[0].kind, "line_along_walkway");
    }

    #[test]
    fn diagonal_walks_within_45_degrees_of_the_normal_pass() {
        let cam = camera(vec![line(pt(0.5, 0.1), pt(0.5, 0.9))], vec![]);
        let mut p = Placement::new(&cam, (416.0, 416.0));
        walk(&mut p, 12, pt(0.2, 0.3), pt(0.8, 0.7), 0.4);
        assert!(p.report(&cam).warnings.is_empty());
    }

    #[test]
    fn small_people_warn_and_large_ones_do_not() {
        let cam = camera(vec![], vec![]);
        let mut far = Placement::new(&cam, (416.0, 234.0));
        // 0.08 of 234 px: 19 px tall.
        walk(&mut far, 12, pt(0.1, 0.5), pt(0.9, 0.5), 0.08);
        let r = far.report(&cam);
        assert_eq!(r.warnings.len(), 1);
        assert_eq!(r.warnings[0].kind, "small_people");
        let mut near = Placement::new(&cam, (416.0, 234.0));
        walk(&mut near, 12, pt(0.1, 0.5), pt(0.9, 0.5), 0.5);
        assert!(near.report(&cam).warnings.is_empty());
    }

    #[test]
    fn track_checks_wait_for_enough_people() {
        let cam = camera(vec![line(pt(0.2, 0.6), pt(0.8, 0.6))], vec![]);
        let mut p = Placement::new(&cam, (416.0, 234.0));
        walk(&mut p, 3, pt(0.1, 0.6), pt(0.9, 0.6), 0.05);
        let r = p.report(&cam);
        assert!(r.warnings.is_empty());
        assert_eq!(r.waiting.len(), 1);
    }

    #[test]
    fn zones_mostly_outside_the_image_warn() {
        let inside = Area {
            id: "in".into(),
            polygon: vec![pt(0.1, 0.1), pt(0.5, 0.1), pt(0.5, 0.5), pt(0.1, 0.5)],
        };
        let outside = Area {
            id: "out".into(),
            polygon: vec![pt(0.8, 0.8), pt(1.6, 0.8), pt(1.6, 1.6), pt(0.8, 1.6)],
        };
        assert!((inside_fraction(&outside.polygon) - 0.0625).abs() < 1e-6);
        assert!((inside_fraction(&inside.polygon) - 1.0).abs() < 1e-6);
        let cam = camera(vec![], vec![inside, outside]);
        let w = area_warnings(&cam);
        assert_eq!(w.len(), 1);
        assert_eq!(w[0].subject, "out");
    }
}
