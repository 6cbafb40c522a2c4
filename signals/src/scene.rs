//! Per-camera signals: zone and display visits with dwell, line crossings, people counts,
//! coverage — accumulated over one aggregation window. Pure: time is passed in.

use std::collections::HashMap;

use vitrine_config::{Area, Camera, DisplayArea, Line, Side};

use crate::attention::{self, AttentionAcc, Face};

use crate::event::{AreaStats, CameraBody, Coverage, DwellStats, LineStats, PeopleStats};
use crate::geom::{in_polygon, segments_intersect, signed_distance, Point};
use crate::track::{Detection, TrackUpdate, Tracker, TrackerParams};

/// A person must be outside an area this long before the visit ends (jitter at the edge of a
/// zone is not a new visit).
pub const AREA_EXIT_GRACE_MS: u64 = 1000;
/// Half-width of the dead band around a counting line, normalized units: a foot point must be
/// this far on the other side before the side changes (no double counting on jitter).
pub const LINE_DEADBAND: f32 = 0.02;

#[derive(Debug, Clone, Copy)]
struct Visit {
    entered_ms: u64,
    last_inside_ms: u64,
}

/// Visits and dwell for one polygon (a zone or a display's viewing area).
#[derive(Debug)]
pub struct AreaState {
    area: Area,
    open: HashMap<u64, Visit>,
    visits: u32,
    dwell_ms: Vec<u64>,
    occupancy_sum: u64,
    occupancy_max: u32,
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
        }
    }

    fn observe(&mut self, now_ms: u64, feet: &[(u64, Point)]) {
        let mut occupancy = 0;
        for &(id, p) in feet {
            if in_polygon(p, &self.area.polygon) {
                occupancy += 1;
                match self.open.get_mut(&id) {
                    Some(v) => v.last_inside_ms = now_ms,
                    None => {
                        self.visits += 1;
                        self.open.insert(
                            id,
                            Visit {
                                entered_ms: now_ms,
                                last_inside_ms: now_ms,
                            },
                        );
                    }
                }
            }
        }
        // Visits whose person has been outside (or unseen) longer than the grace end now.
        let ended: Vec<u64> = self
            .open
            .iter()
            .filter(|(_, v)| now_ms.saturating_sub(v.last_inside_ms) > AREA_EXIT_GRACE_MS)
            .map(|(id, _)| *id)
            .collect();
        for id in ended {
            self.close(id);
        }
        self.occupancy_sum += occupancy;
        self.occupancy_max = self.occupancy_max.max(occupancy as u32);
    }

    fn close(&mut self, id: u64) {
        if let Some(v) = self.open.remove(&id) {
            self.dwell_ms.push(v.last_inside_ms - v.entered_ms);
        }
    }

    fn take(&mut self, frames: u64, k_min: u32) -> AreaStats {
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
}

/// A display: visits and dwell in its viewing area, and attention when faces are analysed.
#[derive(Debug)]
struct DisplayState {
    display: DisplayArea,
    area: AreaState,
    attention: AttentionAcc,
}

/// Crossings of one counting line.
#[derive(Debug)]
pub struct LineState {
    line: Line,
    /// Per track: the side it was last seen on beyond the dead band, and where.
    side: HashMap<u64, (Side, Point)>,
    pub(crate) ins: u32,
    pub(crate) outs: u32,
}

impl LineState {
    pub fn new(line: Line) -> LineState {
        LineState {
            line,
            side: HashMap::new(),
            ins: 0,
            outs: 0,
        }
    }

    fn observe(&mut self, feet: &[(u64, Point)]) {
        let (a, b) = (self.line.from, self.line.to);
        // Crossings slightly past the ends still count (a foot point is not a precise thing).
        let (dx, dy) = (b.x - a.x, b.y - a.y);
        let ext = 0.05;
        let a_ext = Point {
            x: a.x - dx * ext,
            y: a.y - dy * ext,
        };
        let b_ext = Point {
            x: b.x + dx * ext,
            y: b.y + dy * ext,
        };
        for &(id, p) in feet {
            let d = signed_distance(p, a, b);
            if d.abs() < LINE_DEADBAND {
                continue;
            }
            let side = if d < 0.0 { Side::Left } else { Side::Right };
            // A crossing: the side changed and the path went through the line (not around it).
            let crossed = matches!(self.side.insert(id, (side, p)),
                Some((prev, prev_p)) if prev != side && segments_intersect(prev_p, p, a_ext, b_ext));
            if crossed {
                if side == self.line.in_side {
                    self.ins += 1;
                } else {
                    self.outs += 1;
                }
            }
        }
    }

    fn forget(&mut self, id: u64) {
        self.side.remove(&id);
    }
}

/// Accumulates the coverage of one window: frames seen, analysed, dropped, time without input.
#[derive(Debug, Default)]
struct CoverageAcc {
    analysed: u64,
    dropped: u64,
    covered_ms: u64,
    last_frame_ms: Option<u64>,
}

/// All signals of one camera.
#[derive(Debug)]
pub struct CameraSignals {
    fps: f32,
    tracker: Tracker,
    zones: Vec<AreaState>,
    displays: Vec<DisplayState>,
    lines: Vec<LineState>,
    /// Attention is computed (the pipeline loaded a face and a head-pose model).
    attention: bool,
    /// The last frame's confirmed tracks (attention matches faces against them).
    last_tracks: Vec<crate::track::TrackView>,
    people_sum: u64,
    people_max: u32,
    coverage: CoverageAcc,
}

impl CameraSignals {
    pub fn new(camera: &Camera) -> CameraSignals {
        CameraSignals {
            fps: camera.fps,
            tracker: Tracker::new(TrackerParams::default()),
            zones: camera.zones.iter().cloned().map(AreaState::new).collect(),
            displays: camera
                .displays
                .iter()
                .map(|d| DisplayState {
                    display: d.clone(),
                    area: AreaState::new(d.area.clone()),
                    attention: AttentionAcc::default(),
                })
                .collect(),
            attention: false,
            last_tracks: Vec::new(),
            lines: camera.lines.iter().cloned().map(LineState::new).collect(),
            people_sum: 0,
            people_max: 0,
            coverage: CoverageAcc::default(),
        }
    }

    fn frame_interval_ms(&self) -> u64 {
        (1000.0 / self.fps.max(0.01)).round() as u64
    }

    fn mark_frame(&mut self, now_ms: u64) {
        let interval = self.frame_interval_ms();
        if let Some(prev) = self.coverage.last_frame_ms {
            self.coverage.covered_ms += now_ms.saturating_sub(prev).min(interval);
        }
        self.coverage.last_frame_ms = Some(now_ms);
    }

    /// A frame arrived but was not analysed (inference behind): it still shows the camera works.
    pub fn frame_dropped(&mut self, now_ms: u64) {
        self.mark_frame(now_ms);
        self.coverage.dropped += 1;
    }

    /// One analysed frame's detections.
    pub fn observe(&mut self, now_ms: u64, detections: &[Detection]) -> TrackUpdate {
        let update = self.tracker.update(now_ms, detections);
        self.apply(now_ms, update)
    }

    /// One analysed frame the detector skipped (see `cadence`): tracks move by prediction.
    pub fn observe_predicted(&mut self, now_ms: u64) -> TrackUpdate {
        let update = self.tracker.predict(now_ms);
        self.apply(now_ms, update)
    }

    /// Tracks known from elsewhere (evaluation: annotated ground truth), bypassing the tracker:
    /// the same zone, line and count logic runs on them.
    pub fn observe_tracks(&mut self, now_ms: u64, update: TrackUpdate) -> TrackUpdate {
        self.apply(now_ms, update)
    }

    fn apply(&mut self, now_ms: u64, update: TrackUpdate) -> TrackUpdate {
        self.mark_frame(now_ms);
        self.coverage.analysed += 1;
        let feet: Vec<(u64, Point)> = update
            .tracks
            .iter()
            .map(|t| (t.id, t.bbox.foot()))
            .collect();
        let visible = update.tracks.iter().filter(|t| !t.coasting).count() as u32;
        self.people_sum += u64::from(visible);
        self.people_max = self.people_max.max(visible);
        for z in self
            .zones
            .iter_mut()
            .chain(self.displays.iter_mut().map(|d| &mut d.area))
        {
            z.observe(now_ms, &feet);
        }
        for l in &mut self.lines {
            l.observe(&feet);
        }
        if self.attention {
            for d in &mut self.displays {
                for &(id, p) in &feet {
                    if in_polygon(p, &d.display.area.polygon) {
                        d.attention.passer(id);
                    }
                }
            }
        }
        self.last_tracks.clone_from(&update.tracks);
        for id in &update.ended {
            for d in &mut self.displays {
                d.attention.forget(*id);
            }
            for z in self
                .zones
                .iter_mut()
                .chain(self.displays.iter_mut().map(|d| &mut d.area))
            {
                z.close(*id);
            }
            for l in &mut self.lines {
                l.forget(*id);
            }
        }
        update
    }

    /// Cameras with displays: attention is analysed, displays report it.
    pub fn enable_attention(&mut self) {
        self.attention = true;
    }

    /// Whether any tracked person stands in a display's area (attention needs faces then).
    pub fn wants_faces(&self) -> bool {
        self.attention
            && self.last_tracks.iter().any(|t| {
                self.displays
                    .iter()
                    .any(|d| in_polygon(t.bbox.foot(), &d.display.area.polygon))
            })
    }

    /// Faces found in the frame last observed (boxes normalized to the frame, head poses):
    /// matched to people, each person in a display's area counts as looking or not.
    pub fn observe_faces(&mut self, now_ms: u64, faces: &[Face]) {
        if !self.attention {
            return;
        }
        let poses = attention::assign(&self.last_tracks, faces);
        for t in &self.last_tracks {
            let foot = t.bbox.foot();
            let pose = poses.iter().find(|(id, _)| *id == t.id).map(|(_, p)| *p);
            for d in &mut self.displays {
                if in_polygon(foot, &d.display.area.polygon) {
                    let looking = pose.is_some_and(|p| attention::looks_at(p, &d.display));
                    d.attention.observe(now_ms, t.id, looking);
                }
            }
        }
    }

    /// The source ended: close every visit (dwell counted up to the last time seen inside).
    pub fn finish(&mut self) {
        for id in self.tracker.finish() {
            for z in self
                .zones
                .iter_mut()
                .chain(self.displays.iter_mut().map(|d| &mut d.area))
            {
                z.close(id);
            }
            for l in &mut self.lines {
                l.forget(id);
            }
        }
    }

    /// Close the window `[start_ms, end_ms)` and reset the accumulators. Visits still open keep
    /// going; their dwell is reported in the window where they end.
    pub fn take_window(&mut self, start_ms: u64, end_ms: u64, k_min: u32) -> CameraBody {
        let window_ms = end_ms.saturating_sub(start_ms);
        let interval = self.frame_interval_ms();
        let mut covered = self.coverage.covered_ms;
        if let Some(last) = self.coverage.last_frame_ms {
            if last >= start_ms {
                covered += end_ms.saturating_sub(last).min(interval);
            }
        }
        let frames = self.coverage.analysed;
        let coverage = Coverage::frames(
            window_ms as f64 / 1000.0,
            (window_ms as f64 / 1000.0 * f64::from(self.fps)).round() as u64,
            frames,
            self.coverage.dropped,
            window_ms.saturating_sub(covered.min(window_ms)) as f64 / 1000.0,
        );
        let people = PeopleStats::new(
            if frames == 0 {
                None
            } else {
                Some(self.people_sum as f64 / frames as f64)
            },
            self.people_max,
            k_min,
        );
        let body = CameraBody {
            coverage,
            people,
            zones: self
                .zones
                .iter_mut()
                .map(|z| z.take(frames, k_min))
                .collect(),
            lines: self
                .lines
                .iter_mut()
                .map(|l| {
                    LineStats::new(
                        l.line.id.clone(),
                        std::mem::take(&mut l.ins),
                        std::mem::take(&mut l.outs),
                        k_min,
                    )
                })
                .collect(),
            displays: self
                .displays
                .iter_mut()
                .map(|d| {
                    let mut stats = d.area.take(frames, k_min);
                    if self.attention {
                        stats.attention = Some(d.attention.take(k_min));
                    }
                    stats
                })
                .collect(),
        };
        self.people_sum = 0;
        self.people_max = 0;
        // The last frame stays known, so the next window's first gap is measured from it.
        let last = self.coverage.last_frame_ms;
        self.coverage = CoverageAcc {
            last_frame_ms: last,
            ..Default::default()
        };
        body
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geom::BBox;
    use vitrine_config::VideoSource;

    fn p(x: f32, y: f32) -> Point {
        Point { x, y }
    }

    #[test]
    fn a_person_facing_the_display_is_a_looker_and_one_turned_away_only_passes() {
        let mut cam = camera();
        cam.displays = vec![DisplayArea {
            area: Area {
                id: "shelf".into(),
                polygon: vec![p(0.0, 0.5), p(1.0, 0.5), p(1.0, 1.0), p(0.0, 1.0)],
            },
            gaze_yaw: 0.0,
            gaze_pitch: 0.0,
            gaze_tolerance: 22.5,
        }];
        let mut s = CameraSignals::new(&cam);
        s.enable_attention();
        let person = |x: f32| Detection {
            bbox: BBox::new(x, 0.3, x + 0.1, 0.8),
            score: 0.9,
        };
        let face = |x: f32, yaw: f32| Face {
            bbox: BBox::from_center(x + 0.05, 0.36, 0.04, 0.05),
            pose: attention::HeadPose { yaw, pitch: 5.0 },
        };
        for i in 0..20u64 {
            s.observe(i * 200, &[person(0.2), person(0.6)]);
            if i >= 2 {
                assert!(s.wants_faces());
            }
            s.observe_faces(i * 200, &[face(0.2, 10.0), face(0.6, 60.0)]);
        }
        let body = s.take_window(0, 4000, 1);
        let a = body.displays[0]
            .attention
            .clone()
            .expect("attention figures");
        assert_eq!((a.passers, a.lookers), (Some(2), Some(1)));
        let look = a.looking_seconds.expect("looking time");
        // Confirmed from the second frame (200 ms) to the last (3800 ms).
        assert!((look.max - 3.6).abs() < 1e-9, "{look:?}");
        // No face, no attention: the figures stay absent from zones.
        assert!(body.zones[0].attention.is_none());
    }

    fn camera() -> Camera {
        Camera {
            id: "cam".into(),
            source: VideoSource::File("x.mp4".into()),
            format: None,
            rtsp_transport: Default::default(),
            fps: 5.0,
            size: None,
            detect_every: 1,
            motion_gating: true,
            zones: vec![Area {
                id: "right-half".into(),
                polygon: vec![p(0.5, 0.0), p(1.0, 0.0), p(1.0, 1.0), p(0.5, 1.0)],
            }],
            lines: vec![Line {
                id: "door".into(),
                from: p(0.5, 0.0),
                to: p(0.5, 1.0),
                in_side: Side::Left,
            }],
            displays: vec![],
        }
    }

    /// A person whose feet are at (x, y).
    fn person(x: f32, y: f32) -> Detection {
        Detection {
            bbox: BBox::new(x - 0.03, y - 0.2, x + 0.03, y),
            score: 0.9,
        }
    }

    #[test]
    fn walking_left_to_right_counts_one_out_and_a_visit() {
        // Line from top to bottom with "in" on the left: walking down the screen, left is +x?
        // No: walking from (0.5,0) to (0.5,1) is walking down; the left hand, as seen on the
        // screen, is towards +x. So crossing to the right half of the image is "in".
        let mut s = CameraSignals::new(&camera());
        for i in 0..30u64 {
            s.observe(i * 200, &[person(0.2 + i as f32 * 0.02, 0.6)]);
        }
        s.finish();
        let w = s.take_window(0, 60_000, 0);
        assert_eq!((w.lines[0].r#in, w.lines[0].out), (Some(1), Some(0)));
        assert_eq!(w.zones[0].visits, Some(1));
        let dwell = w.zones[0]
            .dwell_seconds
            .as_ref()
            .expect("one finished visit");
        assert_eq!(dwell.count, 1);
        // Feet cross x=0.5 at frame 15 and are last seen at frame 29: 14 frames × 200 ms.
        assert!((dwell.max - 2.8).abs() < 0.21, "dwell {}", dwell.max);
    }

    #[test]
    fn jitter_on_the_line_counts_nothing() {
        let mut s = CameraSignals::new(&camera());
        for i in 0..100u64 {
            let x = 0.5 + if i % 2 == 0 { 0.015 } else { -0.015 };
            s.observe(i * 200, &[person(x, 0.6)]);
        }
        let w = s.take_window(0, 60_000, 0);
        assert_eq!((w.lines[0].r#in, w.lines[0].out), (Some(0), Some(0)));
    }

    #[test]
    fn zone_edge_jitter_is_one_visit() {
        let mut s = CameraSignals::new(&camera());
        for i in 0..50u64 {
            let x = if i % 3 == 0 { 0.48 } else { 0.52 };
            s.observe(i * 200, &[person(x, 0.6)]);
        }
        s.finish();
        let w = s.take_window(0, 60_000, 0);
        assert_eq!(w.zones[0].visits, Some(1));
    }

    #[test]
    fn leaving_for_less_than_the_grace_continues_the_visit() {
        let mut a = AreaState::new(camera().zones[0].clone());
        let (inside, outside) = (p(0.7, 0.5), p(0.2, 0.5));
        a.observe(0, &[(7, inside)]);
        a.observe(500, &[(7, outside)]);
        a.observe(900, &[(7, inside)]);
        a.observe(1000, &[(7, outside)]);
        a.observe(2500, &[(7, outside)]);
        let w = a.take(5, 0);
        assert_eq!(w.visits, Some(1));
        let d = w.dwell_seconds.expect("the visit ended");
        assert_eq!((d.count, d.max), (1, 0.9));
    }

    #[test]
    fn coverage_tells_blind_from_empty() {
        let mut s = CameraSignals::new(&camera());
        // Frames for the first 30 s of a 60 s window, nobody in view.
        for i in 0..150u64 {
            s.observe(i * 200, &[]);
        }
        let w = s.take_window(0, 60_000, 0);
        assert_eq!(w.coverage.frames_expected, Some(300));
        assert_eq!(w.coverage.frames_analysed, Some(150));
        assert!(
            (w.coverage.seconds_blind - 30.0).abs() < 0.3,
            "{}",
            w.coverage.seconds_blind
        );
        assert_eq!(w.people.max, Some(0));
        // A window with no frame at all is blind, with no people figure at all.
        let w = s.take_window(60_000, 120_000, 0);
        assert_eq!(w.coverage.frames_analysed, Some(0));
        assert!((w.coverage.seconds_blind - 60.0).abs() < 0.3);
        assert_eq!(w.people.mean, None);
        assert_eq!(w.coverage.status, crate::event::CoverageStatus::Blind);
    }

    #[test]
    fn small_counts_are_suppressed_with_k() {
        let mut s = CameraSignals::new(&camera());
        for i in 0..30u64 {
            s.observe(i * 200, &[person(0.2 + i as f32 * 0.02, 0.6)]);
        }
        s.finish();
        let w = s.take_window(0, 60_000, 3);
        assert_eq!(w.lines[0].r#in, None);
        assert_eq!(w.lines[0].out, Some(0), "zero is not a small count");
        assert_eq!(w.zones[0].visits, None);
        assert!(w.zones[0].dwell_seconds.is_none());
        assert!(w.zones[0].suppressed);
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    fn door() -> Line {
        Line {
            id: "door".into(),
            from: Point { x: 0.5, y: 0.0 },
            to: Point { x: 0.5, y: 1.0 },
            in_side: Side::Left,
        }
    }

    proptest! {
        /// One person can never be counted in twice without going out in between: for any
        /// path, |in - out| <= 1, and crossings never exceed the side changes beyond the band.
        #[test]
        fn crossings_alternate_and_never_exceed_real_side_changes(xs in proptest::collection::vec(0.0f32..1.0, 1..200)) {
            let mut l = LineState::new(door());
            let mut changes = 0u32;
            let mut last: Option<bool> = None;
            for &x in &xs {
                l.observe(&[(1, Point { x, y: 0.5 })]);
                if (x - 0.5).abs() >= LINE_DEADBAND {
                    let right = x > 0.5;
                    if last.is_some_and(|r| r != right) {
                        changes += 1;
                    }
                    last = Some(right);
                }
            }
            prop_assert!(l.ins.abs_diff(l.outs) <= 1, "in {} out {}", l.ins, l.outs);
            prop_assert!(l.ins + l.outs <= changes);
        }

        /// Jitter inside the dead band never counts, whatever its pattern.
        #[test]
        fn jitter_inside_the_dead_band_counts_nothing(dx in proptest::collection::vec(-0.0199f32..0.0199, 1..300)) {
            let mut l = LineState::new(door());
            for d in dx {
                l.observe(&[(1, Point { x: 0.5 + d, y: 0.5 })]);
            }
            prop_assert_eq!((l.ins, l.outs), (0, 0));
        }

        /// With many people, total crossings never exceed what each path allows, and
        /// occupancy never exceeds the number of people present.
        #[test]
        fn many_people_bounds(paths in proptest::collection::vec(proptest::collection::vec((0.0f32..1.0, 0.0f32..1.0), 20), 1..8)) {
            let mut l = LineState::new(door());
            let mut a = AreaState::new(Area { id: "z".into(), polygon: vec![Point { x: 0.5, y: 0.0 }, Point { x: 1.0, y: 0.0 }, Point { x: 1.0, y: 1.0 }, Point { x: 0.5, y: 1.0 }] });
            for step in 0..20 {
                let feet: Vec<(u64, Point)> = paths.iter().enumerate().map(|(id, p)| (id as u64, Point { x: p[step].0, y: p[step].1 })).collect();
                l.observe(&feet);
                a.observe(step as u64 * 200, &feet);
            }
            prop_assert!(l.ins + l.outs <= paths.len() as u32 * 19);
            prop_assert!(l.ins.abs_diff(l.outs) <= paths.len() as u32);
            prop_assert!(a.occupancy_max as usize <= paths.len());
            // Each visit needs an entry; a person enters at most once per 2 steps outside/inside.
            prop_assert!(a.visits as usize <= paths.len() * 10);
        }
    }
}
