//! Per-camera signals: zone and display visits with dwell, line crossings, people counts,
//! coverage — accumulated over one aggregation window. Pure: time is passed in.
//!
//! Per analysed frame, every zone, display, line and attention accumulator sees the same
//! people: the tracker's confirmed tracks seen (or, between detections, placed) in the frame.
//! People in view, occupancy and passers never include a guess about someone unseen; someone
//! unseen longer than [`GRACE_MS`] is forgotten ([`presence`]).
//!
//! **Frames between detections** (`detect_every` > 1) wait for the next detection and are then
//! placed by interpolating each person's box between the two detections that enclose them:
//! positions known on both sides beat a constant-velocity guess (a walker who turns or stops).
//! The wait is at most `detect_every - 1` frames (a few hundred ms); a window never closes with
//! frames waiting (they are placed by prediction then), so every frame lands in its own window.

mod area;
pub mod foot;
mod funnel;
pub mod group;
mod heat;
mod line;
pub mod presence;
mod queue;
pub mod staff;

pub use area::AreaState;
pub use foot::{Foot, Footing};
pub use line::{Crossing, LineState, BAND_HEIGHTS, MIN_BAND, SETTLE_MS, SETTLE_OBSERVATIONS};
pub use presence::{Presence, GRACE_MS};
pub use queue::{QueueState, RATE_HORIZON_MS};

use std::collections::VecDeque;

use vitrine_config::{AlertOn, Camera, DisplayArea};

use crate::alert::{AlertChange, AlertState};
use crate::attention::{self, AttentionAcc, Face};
use crate::event::{CameraBody, Coverage, LineStats, PeopleStats};
use crate::geom::in_polygon;
use crate::track::{Detection, TrackUpdate, TrackView, Tracker, TrackerParams};
use funnel::FunnelState;
use heat::HeatAcc;

/// A display: visits and dwell in its viewing area, and attention when faces are analysed.
#[derive(Debug)]
struct DisplayState {
    display: DisplayArea,
    area: AreaState,
    attention: AttentionAcc,
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
    presence: Presence,
    footing: Footing,
    zones: Vec<AreaState>,
    displays: Vec<DisplayState>,
    lines: Vec<LineState>,
    /// Attention is computed (the pipeline loaded a face and a head-pose model).
    attention: bool,
    /// The last frame's people, by person key (attention matches faces against them).
    last_people: Vec<TrackView>,
    people_sum: u64,
    people_max: u32,
    coverage: CoverageAcc,
    /// Frames analysed without a detection, waiting for the next one (their times).
    waiting: Vec<u64>,
    /// The time of the last detection and the tracks it saw (tentative ones included: a track
    /// confirmed by the next detection is placed in the frames between).
    anchor: Option<(u64, Vec<TrackView>)>,
    /// Every placed frame's people, for an evaluation that compares them with annotations.
    recording: Option<Vec<(u64, Vec<TrackView>)>>,
    queues: Vec<QueueState>,
    heat: Option<HeatAcc>,
    funnel: Option<FunnelState>,
    ops: Operations,
    /// The last closed window's totals (see [`CameraSignals::window_totals`]).
    totals: WindowTotals,
    /// Who is staff (`[cameras.staff]`), and their movements.
    staff: Option<staff::StaffState>,
}

/// The real-time side: alert rules, the crossing times their line rates need, the forecast
/// band of each rule for the current hour, and the changes not yet taken by the pipeline.
#[derive(Debug, Default)]
struct Operations {
    alerts: Vec<AlertState>,
    /// Per line: times of its crossings within the last minute.
    crossings: Vec<VecDeque<u64>>,
    /// Per alert rule: its forecast for this hour, in the rule's unit.
    bands: Vec<Option<f64>>,
    changes: Vec<AlertChange>,
    k_min: u32,
}

/// The window a line's rate is measured over (alerts: crossings per minute).
pub const RATE_WINDOW_MS: u64 = 60_000;
/// Alert changes held for the pipeline at most (it takes them after every frame).
const MAX_CHANGES: usize = 64;

/// What the forecast learns from a closed window: unsuppressed counts that never leave the box
/// (the forecast keeps hourly sums of them), by line and zone id.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WindowTotals {
    pub covered_ms: u64,
    /// (line id, crossings in both directions).
    pub lines: Vec<(String, u32)>,
    /// (zone id, visits started, person-seconds inside).
    pub zones: Vec<(String, u32, f64)>,
}

/// Most frames that wait for a detection (beyond, they are placed by prediction at once).
pub const MAX_WAITING: usize = 32;

impl CameraSignals {
    pub fn new(camera: &Camera) -> CameraSignals {
        Self::with_tracker(camera, TrackerParams::default())
    }

    pub fn with_tracker(camera: &Camera, params: TrackerParams) -> CameraSignals {
        CameraSignals {
            fps: camera.fps,
            tracker: Tracker::new(params),
            presence: Presence::default(),
            footing: Footing::default(),
            zones: camera.zones.iter().cloned().map(AreaState::new).collect(),
            displays: camera
                .displays
                .iter()
                .map(|d| DisplayState {
                    display: d.clone(),
                    area: AreaState::new(d.area.clone()),
                    attention: AttentionAcc::with_expressions(d.expressions),
                })
                .collect(),
            attention: false,
            last_people: Vec::new(),
            lines: camera.lines.iter().cloned().map(LineState::new).collect(),
            people_sum: 0,
            people_max: 0,
            coverage: CoverageAcc::default(),
            waiting: Vec::new(),
            anchor: None,
            recording: None,
            queues: camera.queues.iter().cloned().map(QueueState::new).collect(),
            heat: camera.heatmap.map(HeatAcc::new),
            funnel: camera.funnel.as_ref().map(|f| {
                FunnelState::new(f, |id| {
                    camera
                        .zones
                        .iter()
                        .chain(camera.displays.iter().map(|d| &d.area))
                        .chain(camera.queues.iter().map(|q| &q.area))
                        .find(|a| a.id == id)
                        .map(|a| a.polygon.clone())
                })
            }),
            ops: Operations {
                alerts: camera.alerts.iter().cloned().map(AlertState::new).collect(),
                crossings: vec![VecDeque::new(); camera.lines.len()],
                bands: vec![None; camera.alerts.len()],
                changes: Vec::new(),
                k_min: 0,
            },
            totals: WindowTotals::default(),
            staff: camera
                .staff
                .clone()
                .map(|s| staff::StaffState::new(s, &camera.lines)),
        }
    }

    /// For annotated tracks (evaluation): their ids are trusted identities, so no track ever
    /// takes a lost one's visit over.
    pub fn for_ground_truth(camera: &Camera) -> CameraSignals {
        let mut s = Self::new(camera);
        for z in s.areas_mut() {
            z.takeover = false;
        }
        s
    }

    fn frame_interval_ms(&self) -> u64 {
        (1000.0 / self.fps.max(vitrine_config::MIN_FPS as f32)).round() as u64
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
        self.place_waiting();
        self.mark_frame(now_ms);
        self.coverage.dropped += 1;
    }

    /// One analysed frame's detections.
    pub fn observe(&mut self, now_ms: u64, detections: &[Detection]) -> TrackUpdate {
        self.observe_with(now_ms, detections, &mut |_| None)
    }

    /// One analysed frame's detections, with the frame's appearances on demand (`describe`,
    /// see [`crate::track`]): the tracker asks only for the few boxes it needs.
    pub fn observe_with(
        &mut self,
        now_ms: u64,
        detections: &[Detection],
        describe: &mut crate::track::Describe,
    ) -> TrackUpdate {
        let update = self.tracker.update_with(now_ms, detections, describe);
        self.interpolate_waiting(now_ms, &update);
        let seen = update.tracks.iter().chain(&update.tentative).copied();
        self.anchor = Some((now_ms, seen.collect()));
        self.apply(now_ms, update)
    }

    /// One analysed frame the detector skipped (see `cadence`): it waits for the next
    /// detection, which places its people (see the module's documentation).
    pub fn observe_predicted(&mut self, now_ms: u64) {
        if self.waiting.len() >= MAX_WAITING {
            self.place_waiting();
        }
        self.waiting.push(now_ms);
    }

    /// Place the waiting frames by interpolation between the last detection and this one.
    fn interpolate_waiting(&mut self, now_ms: u64, update: &TrackUpdate) {
        let next = &update.tracks;
        let waiting = std::mem::take(&mut self.waiting);
        let Some((t0, before)) = self.anchor.clone() else {
            return;
        };
        for t in waiting {
            let f =
                (t.saturating_sub(t0) as f32 / now_ms.saturating_sub(t0).max(1) as f32).min(1.0);
            let was_person = |id: u64| self.last_people.iter().any(|p| p.id == id);
            let tracks = before
                .iter()
                .filter_map(|a| match next.iter().find(|b| b.id == a.id) {
                    Some(b) => Some(TrackView {
                        id: a.id,
                        bbox: a.bbox.lerp(&b.bbox, f),
                    }),
                    // A person not seen again: kept for the first half of the gap, as if lost
                    // midway (a tentative track that was not confirmed is nobody).
                    None => (f <= 0.5 && was_person(a.id)).then_some(*a),
                })
                .collect();
            // Towards a guess (a person the next detection missed) is a guess too.
            let coasting = update.coasting.clone();
            self.apply(
                t,
                TrackUpdate {
                    tracks,
                    coasting,
                    ..TrackUpdate::default()
                },
            );
        }
    }

    /// Place the waiting frames now, by the tracker's prediction (a window closes, the source
    /// ends, too many wait).
    fn place_waiting(&mut self) {
        for t in std::mem::take(&mut self.waiting) {
            let mut update = self.tracker.predict(t);
            // Predictions count people in view; no line decides on them.
            update.coasting = update.tracks.iter().map(|v| v.id).collect();
            self.apply(t, update);
        }
    }

    /// Keep every placed frame's people for [`CameraSignals::take_recorded`] (evaluation).
    pub fn record(&mut self) {
        self.recording = Some(Vec::new());
        for l in &mut self.lines {
            l.record();
        }
    }

    /// The crossings counted since the last call, per line in the configuration's order
    /// (evaluation only: empty unless [`CameraSignals::record`] was called).
    pub fn take_crossings(&mut self) -> Vec<Vec<Crossing>> {
        self.lines
            .iter_mut()
            .map(LineState::take_recorded)
            .collect()
    }

    /// The frames placed since the last call: time and people (evaluation only).
    pub fn take_recorded(&mut self) -> Vec<(u64, Vec<TrackView>)> {
        self.recording
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// Tracks known from elsewhere (evaluation: annotated ground truth), bypassing the tracker:
    /// the same zone, line and count logic runs on them.
    pub fn observe_tracks(&mut self, now_ms: u64, update: TrackUpdate) -> TrackUpdate {
        self.apply(now_ms, update)
    }

    /// Each line's crossings in and out since the camera started (an audit's agent count), in
    /// the configuration's order of the lines.
    pub fn line_totals(&self) -> impl Iterator<Item = crate::audit::Tally> + '_ {
        self.lines.iter().map(|l| l.total)
    }

    /// Each line's groups in and out since the camera started, in the configuration's order.
    pub fn group_totals(&self) -> impl Iterator<Item = crate::audit::Tally> + '_ {
        self.lines.iter().map(|l| l.groups.running())
    }

    /// People in view after the last analysed frame (confirmed tracks).
    pub fn people_now(&self) -> usize {
        self.last_people.len()
    }

    /// The people of the last analysed frame: person keys and boxes (evaluation compares them
    /// with annotations; nothing else reads them).
    pub fn people(&self) -> &[TrackView] {
        &self.last_people
    }

    fn apply(&mut self, now_ms: u64, update: TrackUpdate) -> TrackUpdate {
        self.mark_frame(now_ms);
        self.coverage.analysed += 1;
        let gone = self
            .presence
            .observe(now_ms, update.tracks.iter().map(|t| t.id));
        let feet = self.footing.place(now_ms, &update.tracks);
        let (people, feet) = self.leave_out_staff(now_ms, &update, feet);
        let visible = people.len() as u32;
        self.people_sum += u64::from(visible);
        self.people_max = self.people_max.max(visible);
        for z in self.areas_mut() {
            z.observe(now_ms, &feet);
        }
        let observed: Vec<Foot> = feet
            .iter()
            .filter(|f| !update.coasting.contains(&f.key))
            .copied()
            .collect();
        for l in &mut self.lines {
            l.observe(now_ms, &observed);
        }
        self.operations(now_ms, &feet);
        if self.attention {
            for d in &mut self.displays {
                for f in &feet {
                    if in_polygon(f.at, &d.display.area.polygon) {
                        d.attention.passer(f.key);
                    }
                }
            }
        }
        if let Some(r) = self.recording.as_mut() {
            r.push((now_ms, people.clone()));
        }
        self.last_people = people;
        self.forget(&gone);
        update
    }

    /// Without a staff rule, everyone; with one, the customers only (people and feet): staff
    /// cross the staff lines, and whoever became staff in this frame leaves every customer
    /// count now.
    fn leave_out_staff(
        &mut self,
        now_ms: u64,
        update: &TrackUpdate,
        feet: Vec<Foot>,
    ) -> (Vec<TrackView>, Vec<Foot>) {
        let Some(staff) = self.staff.as_mut() else {
            return (update.tracks.clone(), feet);
        };
        let split = staff.split(now_ms, &feet);
        let observed: Vec<Foot> = split
            .staff
            .iter()
            .filter(|f| !update.coasting.contains(&f.key))
            .copied()
            .collect();
        staff.observe_lines(now_ms, &observed);
        let people = update
            .tracks
            .iter()
            .filter(|t| !staff.is_staff(t.id))
            .copied()
            .collect();
        for key in split.became_staff {
            self.forget_customer(key);
        }
        (people, split.customers)
    }

    /// Queues, heatmap, funnel and alerts see the frame.
    fn operations(&mut self, now_ms: u64, feet: &[Foot]) {
        let interval = self.frame_interval_ms();
        for q in &mut self.queues {
            q.observe(now_ms, feet);
        }
        if let Some(h) = self.heat.as_mut() {
            h.observe(now_ms, feet, interval);
        }
        if let Some(f) = self.funnel.as_mut() {
            let crossed: Vec<(&str, u64)> = self
                .lines
                .iter()
                .flat_map(|l| l.crossed_in.iter().map(|k| (l.line.id.as_str(), *k)))
                .collect();
            f.observe(now_ms, feet, &crossed);
        }
        for (l, times) in self.lines.iter_mut().zip(&mut self.ops.crossings) {
            l.crossed_in.clear();
            let new = std::mem::take(&mut l.crossings);
            times.extend(std::iter::repeat_n(now_ms, new.min(1024) as usize));
            while times
                .front()
                .is_some_and(|t| now_ms.saturating_sub(*t) > RATE_WINDOW_MS)
            {
                times.pop_front();
            }
            while times.len() > 4096 {
                times.pop_front();
            }
        }
        self.evaluate_alerts(now_ms);
    }

    /// Each alert rule sees its value now.
    fn evaluate_alerts(&mut self, now_ms: u64) {
        for i in 0..self.ops.alerts.len() {
            let value = self.alert_value(now_ms, &self.ops.alerts[i].rule.on);
            let (band, k) = (self.ops.bands[i], self.ops.k_min);
            if let Some(c) = self.ops.alerts[i].observe(now_ms, value, band, k) {
                if self.ops.changes.len() < MAX_CHANGES {
                    self.ops.changes.push(c);
                }
            }
        }
    }

    /// The value an alert watches, now.
    fn alert_value(&self, now_ms: u64, on: &AlertOn) -> Option<f64> {
        match on {
            AlertOn::LineRate(id) => {
                let i = self.lines.iter().position(|l| &l.line.id == id)?;
                Some(self.ops.crossings[i].len() as f64 * 60_000.0 / RATE_WINDOW_MS as f64)
            }
            AlertOn::Occupancy(id) => self
                .zones
                .iter()
                .chain(self.displays.iter().map(|d| &d.area))
                .find(|a| &a.area.id == id)
                .map(|a| f64::from(a.occupancy_now))
                .or_else(|| {
                    self.queues
                        .iter()
                        .find(|q| &q.queue.area.id == id)
                        .map(|q| f64::from(q.length_now()))
                }),
            AlertOn::QueueWait(id) => {
                let q = self.queues.iter().find(|q| &q.queue.area.id == id)?;
                // A wait is published only while at least k people wait.
                if q.length_now() < self.ops.k_min.max(1) {
                    return Some(0.0);
                }
                q.estimated_wait_ms(now_ms).map(|ms| ms as f64 / 1000.0)
            }
        }
    }

    /// Alert rules and their forecast for the current hour (in each rule's unit; `None`
    /// without a forecast). `k_min`: values below it are never published.
    pub fn set_alert_bands(&mut self, bands: Vec<Option<f64>>, k_min: u32) {
        if bands.len() == self.ops.bands.len() {
            self.ops.bands = bands;
        }
        self.ops.k_min = k_min;
    }

    /// The alert rules (what each watches), in configuration order.
    pub fn alert_rules(&self) -> impl Iterator<Item = &vitrine_config::AlertRule> {
        self.ops.alerts.iter().map(|a| &a.rule)
    }

    /// Alert changes since the last call (the pipeline publishes them at once).
    pub fn take_alerts(&mut self) -> Vec<AlertChange> {
        std::mem::take(&mut self.ops.changes)
    }

    fn areas_mut(&mut self) -> impl Iterator<Item = &mut AreaState> {
        self.zones
            .iter_mut()
            .chain(self.displays.iter_mut().map(|d| &mut d.area))
    }

    /// People gone for good: visits end, pending crossings settle, attention forgets them.
    fn forget(&mut self, keys: &[u64]) {
        for &key in keys {
            self.footing.forget(key);
            if let Some(s) = self.staff.as_mut() {
                s.forget(key);
            }
            self.forget_customer(key);
        }
    }

    /// Someone no customer count follows any more (gone, or staff from now on).
    fn forget_customer(&mut self, key: u64) {
        for d in &mut self.displays {
            d.attention.forget(key);
        }
        for z in self.areas_mut() {
            z.close(key);
        }
        for l in &mut self.lines {
            l.forget(key);
        }
        for q in &mut self.queues {
            q.forget(key);
        }
        if let Some(f) = self.funnel.as_mut() {
            f.forget(key);
        }
    }

    /// The image's width over its height (the tracker measures distances in person heights).
    pub fn set_aspect(&mut self, aspect: f32) {
        self.tracker.set_aspect(aspect);
        for l in &mut self.lines {
            l.aspect = aspect;
        }
        if let Some(s) = self.staff.as_mut() {
            s.set_aspect(aspect);
        }
    }

    /// Cameras with displays: attention is analysed, displays report it.
    pub fn enable_attention(&mut self) {
        self.attention = true;
    }

    /// Whether any tracked person stands in a display's area (attention needs faces then).
    pub fn wants_faces(&self) -> bool {
        self.attention
            && self.last_people.iter().any(|t| {
                self.displays
                    .iter()
                    .any(|d| in_polygon(t.bbox.foot(), &d.display.area.polygon))
            })
    }

    /// Faces found in the frame last observed (boxes normalized to the frame, head poses):
    /// matched to people, each person in a display's area counts as looking or not. Returns
    /// the faces whose expression is wanted (their person looks at a display that reads
    /// expressions): (face index, person key, the smallest face that display reads, in px).
    pub fn observe_faces(&mut self, now_ms: u64, faces: &[Face]) -> Vec<(usize, u64, u32)> {
        let mut wanted = Vec::new();
        if !self.attention {
            return wanted;
        }
        let poses = attention::assign_faces(&self.last_people, faces);
        for t in &self.last_people {
            let foot = t.bbox.foot();
            let face = poses.iter().find(|(id, _)| *id == t.id).map(|(_, f)| *f);
            let pose = face.map(|f| faces[f].pose);
            for d in &mut self.displays {
                if in_polygon(foot, &d.display.area.polygon) {
                    let looking = pose.is_some_and(|p| attention::looks_at(p, &d.display));
                    d.attention.observe(now_ms, t.id, looking);
                    if let Some(f) = face.filter(|_| d.attention.wants_expression(t.id)) {
                        let min = d.display.expressions_min_face_px;
                        match wanted.iter_mut().find(|w| w.0 == f) {
                            Some(w) => w.2 = w.2.min(min),
                            None => wanted.push((f, t.id, min)),
                        }
                    }
                }
            }
        }
        wanted
    }

    /// Expressions read on the faces [`Self::observe_faces`] asked for (the smallest face
    /// size any display reads decides whether the model ran): counted at every display the
    /// person looks at that reads faces of that size.
    pub fn observe_expressions(&mut self, readings: &[(u64, attention::Reading)]) {
        for (id, r) in readings {
            for d in &mut self.displays {
                d.attention.read(*id, *r, d.display.expressions_min_face_px);
            }
        }
    }

    /// The source ended: close every visit (dwell counted up to the last time seen inside).
    pub fn finish(&mut self) {
        self.place_waiting();
        for l in &mut self.lines {
            l.finish();
        }
        if let Some(s) = self.staff.as_mut() {
            s.finish();
        }
        self.tracker.finish();
        let keys = self.presence.finish();
        self.forget(&keys);
        self.last_people.clear();
    }

    /// The unsuppressed totals of the window last closed, for the forecast (never published).
    pub fn window_totals(&self) -> &WindowTotals {
        &self.totals
    }

    /// Close the window `[start_ms, end_ms)` and reset the accumulators. Visits still open keep
    /// going; their dwell is reported in the window where they end.
    pub fn take_window(&mut self, start_ms: u64, end_ms: u64, k_min: u32) -> CameraBody {
        self.place_waiting();
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
        self.totals = WindowTotals {
            covered_ms: covered.min(window_ms),
            lines: self
                .lines
                .iter()
                .map(|l| (l.line.id.clone(), l.ins + l.outs))
                .collect(),
            zones: self
                .zones
                .iter()
                .map(|z| (z.area.id.clone(), z.visits, z.person_seconds(interval)))
                .collect(),
        };
        let body = CameraBody {
            queues: self
                .queues
                .iter_mut()
                .map(|q| q.take(frames, k_min))
                .collect(),
            heatmap: self.heat.as_mut().map(|h| h.take(k_min)),
            funnel: self.funnel.as_mut().map(|f| f.take(k_min)),
            staff: self.staff.as_mut().map(|s| s.take(k_min)),
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
                    let (groups_in, groups_out) = l.groups.take();
                    LineStats::new(
                        l.line.id.clone(),
                        (std::mem::take(&mut l.ins), std::mem::take(&mut l.outs)),
                        (groups_in, groups_out),
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
mod tests;
