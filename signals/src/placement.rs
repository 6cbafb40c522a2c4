//! Camera placement help, from a few minutes of tracks: is the camera close enough for the
//! detector, does each line lie across the way people walk, is each area inside the picture.
//!
//! The thresholds are general rules, not fitted to a clip:
//! - **Too small**: people under [`MIN_HEIGHT_PX`] tall at the detector's input are found
//!   unreliably (measured on the accuracy suite, see the constant). When half the people seen
//!   are under it, or a quarter of those moving near a line (the far end of a long line is
//!   often where people are small), or where a line's far end is under [`TINY_HEIGHT_PX`] by
//!   the perspective (height against the feet's y, a straight-line fit over everyone seen: it
//!   speaks also for the small people the detector missed), the counts do not hold: the
//!   check names the camera's
//!   `input_size` that would bring them to [`GOOD_HEIGHT_PX`] (the detector's cost grows
//!   with the input's pixels), or says that no size can and the camera must come closer. The
//!   heights are of the people the detector found: where it misses the smallest ones, the
//!   check errs on the kind side.
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

/// A person shorter than this at the detector's input is found unreliably: on the accuracy
/// suite YOLOX-nano found 38–70 % of the people 26–52 px tall at its input in street scenes
/// at eye level (KITTI-17, MOT17-02), 92–95 % of those 43–105 px tall (recall by person
/// height, `vitrine-lab eval suite`); from above (PETS09-S2L1), 93 % already at 32–54 px.
pub const MIN_HEIGHT_PX: f32 = 32.0;
/// The height the size check's recommended input size brings people to.
pub const GOOD_HEIGHT_PX: f32 = 40.0;
/// Three cells of the detector's finest (8 px) grid: where the perspective says people at a
/// line's far end are shorter than this, most of them go unseen.
pub const TINY_HEIGHT_PX: f32 = 24.0;
/// The share of people under [`MIN_HEIGHT_PX`] from which the camera's size check warns.
pub const SMALL_SHARE: f64 = 0.5;
/// People seen before a track-based check says anything.
pub const MIN_TRACKS: u64 = 10;
/// Movement near a line (in image heights) before its direction check says anything.
const MIN_NEAR_MOVEMENT: f64 = 2.0;
/// Steps longer than this are a track's gap, not a movement.
const MAX_STEP_MS: u64 = 1_000;
/// Box heights histogram: 2-pixel bins up to 1024 px.
const HEIGHT_BINS: usize = 512;
/// Heights near a line: 2-pixel bins up to 128 px (taller is large enough anyway).
const NEAR_BINS: usize = 64;
/// Observations of people moving on a line before its size check says anything.
const MIN_NEAR_PEOPLE: u64 = 30;
/// A step this close to a line (image heights) is on it, for the line's size check.
const ON_LINE: f64 = 0.05;
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
    /// The camera's detector input size (what the size check would raise).
    input_size: u32,
    lines: Vec<Line>,
    motion: Vec<Motion>,
    /// Person heights at the detector's input.
    heights: Vec<u64>,
    /// Per line: heights (at the detector's input) of the people moving near it, 2-px bins.
    near_heights: Vec<Vec<u32>>,
    /// Height at the detector's input against the feet's y: sums of a least-squares line.
    perspective: Fit,
    /// Where the feet are: a histogram of their y (bins of 1 % of the picture).
    feet_y: Vec<u64>,
    last: HashMap<u64, (u64, Point, f32)>,
    people: u64,
    first_ms: Option<u64>,
    last_ms: u64,
}

impl Placement {
    /// `detector_px`: the size the camera's frames take inside the detector's input, whose
    /// size (`[models]` or the camera's `input_size`) is `input_size`.
    pub fn new(camera: &Camera, detector_px: (f32, f32), input_size: u32) -> Placement {
        Placement {
            detector_px,
            input_size,
            lines: camera.lines.clone(),
            motion: vec![Motion::default(); camera.lines.len()],
            heights: vec![0; HEIGHT_BINS],
            near_heights: vec![vec![0; NEAR_BINS]; camera.lines.len()],
            perspective: Fit::default(),
            feet_y: vec![0; 101],
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
            self.perspective.add(f64::from(foot.y), f64::from(h));
            self.feet_y[((foot.y.clamp(0.0, 1.0) * 100.0) as usize).min(100)] += 1;
            match self.last.insert(t.id, (now_ms, foot, t.bbox.h())) {
                None => self.people += 1,
                Some((then, before, _)) if now_ms.saturating_sub(then) <= MAX_STEP_MS => {
                    self.moved(before, foot, t.bbox.h(), aspect, h);
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

    /// Movement `a`→`b` of someone `h` tall (`px` at the detector's input), credited to every
    /// line it passes near.
    fn moved(&mut self, a: Point, b: Point, h: f32, aspect: f64, px: f32) {
        let bin = ((px / BIN_PX) as usize).min(NEAR_BINS - 1);
        for ((line, m), heights) in self
            .lines
            .iter()
            .zip(&mut self.motion)
            .zip(&mut self.near_heights)
        {
            let d = distance_to_segment(a, line, aspect).min(distance_to_segment(b, line, aspect));
            // Heights on the line itself (a fixed distance: everyone weighs the same).
            if d <= ON_LINE {
                heights[bin] = heights[bin].saturating_add(1);
            }
            if d > (h as f64).max(0.05) {
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
            warnings.extend(self.line_size_warnings());
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

    /// The size check's finding for the camera: `None` when most people are large enough
    /// (or none were seen).
    fn small(&self) -> Option<Small> {
        let n: u64 = self.heights.iter().sum();
        let mut seen = 0;
        let bin = self.heights.iter().position(|c| {
            seen += c;
            seen as f64 >= SMALL_SHARE * n as f64
        })?;
        let height = (bin as f32 + 0.5) * BIN_PX;
        (height < MIN_HEIGHT_PX).then(|| self.advice(height))
    }

    /// What it takes to bring people of `height` px (at the detector's input) to
    /// [`GOOD_HEIGHT_PX`].
    fn advice(&self, height: f32) -> Small {
        let needed = self.input_size as f32 * GOOD_HEIGHT_PX / height.max(1.0);
        let size = vitrine_config::DETECTOR_INPUT_SIZES
            .iter()
            .copied()
            .find(|s| *s as f32 >= needed);
        Small { height, size }
    }

    fn fix(&self, small: &Small, closer: &str) -> String {
        match small.size {
            Some(s) => format!(
                "set input_size = {s} in this camera's [[cameras]] section (about {:.1}x the detector's time), or {closer}",
                (s as f32 / self.input_size as f32).powi(2)
            ),
            None => {
                let largest = vitrine_config::DETECTOR_INPUT_SIZES.last().copied().unwrap_or(640);
                format!(
                    "even input_size = {largest}, the largest, brings them only to about {:.0} px: {closer}",
                    small.height * largest as f32 / self.input_size as f32
                )
            }
        }
    }

    fn size_warning(&self) -> Option<Warning> {
        let small = self.small()?;
        Some(Warning {
            subject: "camera".into(),
            kind: "small_people".into(),
            message: format!(
                "people are small for the detector: half of them are under {:.0} px tall at its input ({:.0}x{:.0}, input size {}); under {MIN_HEIGHT_PX:.0} px many people are missed and the counts do not hold",
                small.height, self.detector_px.0, self.detector_px.1, self.input_size
            ),
            fix: self.fix(&small, "move or zoom the camera closer"),
        })
    }

    /// How tall people are at a line: a quarter of those seen on it are under the first
    /// figure; the second is the perspective's height at the line's far end (where the
    /// farthest twentieth of everyone seen stand, if the line reaches beyond): it speaks also
    /// for the people too small to be found there.
    fn line_heights(&self, i: usize) -> (Option<f32>, Option<f32>) {
        let seen = quantile(&self.near_heights[i], 0.25);
        let far = self.perspective.line().and_then(|(a, b)| {
            let n: u64 = self.feet_y.iter().sum();
            let mut count = 0;
            let twentieth = self.feet_y.iter().position(|c| {
                count += c;
                count * 20 >= n
            })? as f32
                / 100.0;
            let line = &self.lines[i];
            let y = line.from.y.min(line.to.y).max(twentieth);
            Some((a + b * f64::from(y)) as f32)
        });
        (seen, far)
    }

    /// The height that makes a line's count doubtful, if any: a quarter of the people on it
    /// under [`MIN_HEIGHT_PX`], or the perspective's far end under [`TINY_HEIGHT_PX`].
    fn line_small(&self, i: usize) -> Option<f32> {
        let (seen, far) = self.line_heights(i);
        let seen = seen.filter(|h| *h < MIN_HEIGHT_PX);
        let far = far.filter(|h| *h < TINY_HEIGHT_PX);
        match (seen, far) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
        .map(|h| h.max(1.0))
    }

    /// Lines where people are too small for their counts to hold.
    fn line_size_warnings(&self) -> Vec<Warning> {
        let mut out = Vec::new();
        for (i, line) in self.lines.iter().enumerate() {
            let Some(height) = self.line_small(i) else {
                continue;
            };
            let small = self.advice(height);
            out.push(Warning {
                subject: line.id.clone(),
                kind: "small_people".into(),
                message: format!(
                    "people crossing line {:?} are as small as {height:.0} px tall at the detector's input (input size {}); under {MIN_HEIGHT_PX:.0} px many people are missed and the line's count does not hold",
                    line.id, self.input_size
                ),
                fix: self.fix(
                    &small,
                    "move the line nearer the camera, where people are larger, or move or zoom the camera closer",
                ),
            });
        }
        out
    }

    /// The camera input size the size checks recommend (`None`: the camera is fine, too few
    /// people were seen, or no size is enough).
    pub fn recommended_input_size(&self) -> Option<u32> {
        if self.people < MIN_TRACKS {
            return None;
        }
        let mut sizes: Vec<u32> = self.small().and_then(|s| s.size).into_iter().collect();
        for i in 0..self.lines.len() {
            if let Some(h) = self.line_small(i) {
                sizes.extend(self.advice(h).size);
            }
        }
        sizes.into_iter().max()
    }
}

/// The height (px, the middle of its 2-px bin) under which a `share` of a histogram's people
/// are; `None` for fewer than [`MIN_NEAR_PEOPLE`] observations.
fn quantile(bins: &[u32], share: f64) -> Option<f32> {
    let n: u64 = bins.iter().map(|c| u64::from(*c)).sum();
    if n < MIN_NEAR_PEOPLE {
        return None;
    }
    let mut seen = 0u64;
    let bin = bins.iter().position(|c| {
        seen += u64::from(*c);
        seen as f64 >= share * n as f64
    })?;
    Some((bin as f32 + 0.5) * BIN_PX)
}

/// A least-squares straight line through (x, y) points, from running sums (bounded memory).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Fit {
    n: f64,
    x: f64,
    y: f64,
    xx: f64,
    xy: f64,
}

impl Fit {
    fn add(&mut self, x: f64, y: f64) {
        self.n += 1.0;
        self.x += x;
        self.y += y;
        self.xx += x * x;
        self.xy += x * y;
    }

    /// (intercept, slope), once there is enough spread to say; heights must grow downwards.
    fn line(&self) -> Option<(f64, f64)> {
        if self.n < 50.0 {
            return None;
        }
        let var = self.xx / self.n - (self.x / self.n).powi(2);
        if var < 0.05f64.powi(2) {
            return None;
        }
        let slope = (self.xy / self.n - self.x / self.n * self.y / self.n) / var;
        let intercept = self.y / self.n - slope * self.x / self.n;
        (slope > 0.0).then_some((intercept, slope))
    }
}

/// People too small for the detector: how tall (px at its input), and the supported input
/// size that brings them to [`GOOD_HEIGHT_PX`] (if any).
struct Small {
    height: f32,
    size: Option<u32>,
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
            decoder: Default::default(),
            fps: 5.0,
            size: None,
            detect_every: 1,
            detect_every_near: 1,
            input_size: None,
            motion_gating: true,
            zones,
            lines,
            displays: vec![],
            queues: vec![],
            heatmap: None,
            funnel: None,
            alerts: vec![],
            staff: None,
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
        let mut p = Placement::new(&across, (416.0, 234.0), 416);
        walk(&mut p, 12, pt(0.1, 0.6), pt(0.9, 0.6), 0.4);
        let r = p.report(&across);
        assert!(r.warnings.is_empty(), "{r:?}");
        assert_eq!(r.people, 12);

        let along = camera(vec![line(pt(0.2, 0.62), pt(0.8, 0.62))], vec![]);
        let mut p = Placement::new(&along, (416.0, 234.0), 416);
        walk(&mut p, 12, pt(0.1, 0.6), pt(0.9, 0.6), 0.4);
        let r = p.report(&along);
        assert_eq!(r.warnings.len(), 1, "{r:?}");
        assert_eq!(r.warnings[0].kind, "line_along_walkway");
    }

    #[test]
    fn diagonal_walks_within_45_degrees_of_the_normal_pass() {
        let cam = camera(vec![line(pt(0.5, 0.1), pt(0.5, 0.9))], vec![]);
        let mut p = Placement::new(&cam, (416.0, 416.0), 416);
        walk(&mut p, 12, pt(0.2, 0.3), pt(0.8, 0.7), 0.4);
        assert!(p.report(&cam).warnings.is_empty());
    }

    #[test]
    fn small_people_warn_and_large_ones_do_not() {
        let cam = camera(vec![], vec![]);
        let mut far = Placement::new(&cam, (416.0, 234.0), 416);
        // 0.12 of 234 px: 28 px tall; 40 px needs 416 x 40 / 28 = 594: input size 640.
        walk(&mut far, 12, pt(0.1, 0.5), pt(0.9, 0.5), 0.12);
        let r = far.report(&cam);
        assert_eq!(r.warnings.len(), 1);
        assert_eq!(r.warnings[0].kind, "small_people");
        assert!(
            r.warnings[0].fix.starts_with("set input_size = 640"),
            "{r:?}"
        );
        assert_eq!(far.recommended_input_size(), Some(640));
        // Tiny people: no input size is enough.
        let mut tiny = Placement::new(&cam, (416.0, 234.0), 416);
        walk(&mut tiny, 12, pt(0.1, 0.5), pt(0.9, 0.5), 0.05);
        let r = tiny.report(&cam);
        assert!(
            r.warnings[0].fix.starts_with("even input_size = 640"),
            "{r:?}"
        );
        assert_eq!(tiny.recommended_input_size(), None);
        let mut near = Placement::new(&cam, (416.0, 234.0), 416);
        walk(&mut near, 12, pt(0.1, 0.5), pt(0.9, 0.5), 0.5);
        assert!(near.report(&cam).warnings.is_empty());
        assert_eq!(near.recommended_input_size(), None);
    }

    #[test]
    fn a_line_reaching_far_back_where_people_are_small_warns() {
        // Perspective: people walk left to right at every depth, 0.5 of the picture's height
        // tall at the bottom (y = 0.95), 0.13 at y = 0.35 (30 px at a 234 px input: 640
        // brings them to 40). The camera as a whole is fine (most people are large).
        let line = |id: &str, top: f32| Line {
            id: id.into(),
            from: pt(0.5, top),
            to: pt(0.5, 0.95),
            in_side: Side::Left,
        };
        let cam = camera(vec![line("deep", 0.35), line("near", 0.7)], vec![]);
        let mut p = Placement::new(&cam, (416.0, 234.0), 416);
        let far = [0.35f32; 8];
        let rest = [
            0.5f32, 0.65, 0.8, 0.95, 0.9, 0.85, 0.75, 0.7, 0.6, 0.55, 0.45, 0.4,
        ];
        for (i, y) in far.into_iter().chain(rest).enumerate() {
            let h = 0.13 + (y - 0.35) / 0.6 * 0.37;
            walk(&mut p, 1, pt(0.1, y), pt(0.9, y), h);
            p.forget(i as u64 + 1);
        }
        let r = p.report(&cam);
        let small: Vec<&Warning> = r
            .warnings
            .iter()
            .filter(|w| w.kind == "small_people")
            .collect();
        assert_eq!(small.len(), 1, "{r:?}");
        assert_eq!(small[0].subject, "deep");
        assert!(small[0].fix.starts_with("set input_size = 640"), "{r:?}");
        assert_eq!(p.recommended_input_size(), Some(640));
    }

    #[test]
    fn track_checks_wait_for_enough_people() {
        let cam = camera(vec![line(pt(0.2, 0.6), pt(0.8, 0.6))], vec![]);
        let mut p = Placement::new(&cam, (416.0, 234.0), 416);
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
