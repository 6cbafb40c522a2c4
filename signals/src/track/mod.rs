//! Multi-object tracking by detection, ByteTrack's way with OC-SORT's recovery:
//!
//! 1. every track's [`BoxFilter`] (constant-velocity Kalman filter) is moved to `now`;
//! 2. **high-score** detections are assigned to tracked and lost tracks by IoU (weighted by
//!    the detection's score), optimally ([`crate::assign`]);
//! 3. **low-score** detections (a person half hidden behind another) keep the remaining
//!    *tracked* tracks alive, by IoU;
//! 4. tentative tracks get the remaining high detections;
//! 5. what is left is matched by the track's **last observation** (OC-SORT's recovery: the
//!    filter's drift during an occlusion no longer decides) and, for small fast boxes whose
//!    predicted box barely overlaps anything at a low frame rate, by centre distance relative
//!    to the box's height;
//! 6. a lost track found again has its filter re-run along a straight path from its last
//!    observation (OC-SORT's observation-centric re-update), so the occlusion does not leave a
//!    wrong velocity behind;
//! 7. a track lost away from the image's border for longer than the IoU stages look
//!    (`lost_ms`) may still be **re-linked** to a sure detection that would otherwise start a
//!    new track, up to [`Relink::max_gap_ms`]: by where the person can have walked meanwhile,
//!    their full height and, where both have one, their colours ([`relink`],
//!    [`appearance`]) — people come out from behind a post or a group seconds later, with a
//!    box unlike their last one;
//! 8. new tracks start tentative from unmatched high detections and are confirmed after
//!    `min_hits` matches; a tentative track that misses a frame is dropped; a lost track is
//!    kept `lost_ms` (time, not frames), or up to the re-link's gap away from the border,
//!    before it ends.
//!
//! Appearance is computed lazily, through a closure the caller gives (it holds the frame):
//! for candidates of a re-link that pass its motion gate, and for tracked people's
//! unoccluded boxes at most once per [`LOOK_REFRESH_MS`]. Descriptors live in the tracks only.
//!
//! Only confirmed tracks seen in this frame are reported, and established ones the detector
//! missed for at most `coast_ms` (one missed detection does not take a person out of view). Track ids are ephemeral: a counter
//! that restarts with the process, never published.

pub mod appearance;
mod kalman;
pub mod relink;

pub use appearance::Appearance;
pub use kalman::{BoxFilter, Noise};
pub use relink::Relink;

use crate::assign;
use crate::geom::BBox;

/// One detection fed to the tracker.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Detection {
    pub bbox: BBox,
    pub score: f32,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrackerParams {
    /// Detections at or above this score lead the association and may start tracks.
    pub high_score: f32,
    /// Detections below this score are ignored; between it and `high_score` they only keep
    /// existing tracks alive.
    pub low_score: f32,
    /// A new track needs a detection at least this sure.
    pub new_track_score: f32,
    /// Matches needed before a track counts.
    pub min_hits: u32,
    /// How long a confirmed track that is not seen is kept for re-identification.
    pub lost_ms: u64,
    /// How long an established track (seen [`ESTABLISHED_HITS`] times) that the detector
    /// missed is still reported, at its predicted place: one missed detection does not take a
    /// person out of view.
    pub coast_ms: u64,
    /// Largest association cost (1 - IoU·score) of a high-score match.
    pub high_match_cost: f32,
    /// Largest association cost (1 - IoU) of a low-score match.
    pub low_match_cost: f32,
    /// Largest association cost (1 - IoU) of a tentative track's match.
    pub tentative_match_cost: f32,
    /// Largest centre distance, in box heights, of the proximity match (step 5).
    pub max_centre_distance: f32,
    pub noise: Noise,
    /// Re-linking tracks lost away from the border (step 7).
    pub relink: Relink,
    /// The image's width over its height (distances in the re-link are in person heights).
    pub aspect: f32,
}

impl Default for TrackerParams {
    fn default() -> Self {
        TrackerParams {
            high_score: 0.5,
            low_score: 0.1,
            new_track_score: 0.6,
            min_hits: 2,
            lost_ms: 1500,
            coast_ms: 300,
            high_match_cost: 0.8,
            low_match_cost: 0.5,
            tentative_match_cost: 0.7,
            max_centre_distance: 0.5,
            noise: Noise::default(),
            relink: Relink::default(),
            aspect: 4.0 / 3.0,
        }
    }
}

/// A lost track last seen at the image's left, right or bottom border (within this distance)
/// has most likely left the view: it ends after [`BORDER_LOST_MS`] instead of `lost_ms`, so
/// the next person entering there is not taken for it.
pub const BORDER: f32 = 0.02;
pub const BORDER_LOST_MS: u64 = 500;

/// Matches after which a track is established (may coast, see `coast_ms`).
pub const ESTABLISHED_HITS: u32 = 3;

/// A tracked person's appearance is refreshed at most this often (from an unoccluded box).
pub const LOOK_REFRESH_MS: u64 = 1000;

/// Observations a track remembers (the velocity it had when it was lost is measured on them).
const HISTORY: usize = 8;

/// The velocity before a loss is measured over at most this long.
const VELOCITY_SPAN_MS: u64 = 1000;

/// At most this many detections per frame are considered (the highest scores): bounds the
/// tracker's memory and the assignment's cost whatever the detector emits.
pub const MAX_DETECTIONS: usize = 128;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Not yet confirmed.
    Tentative,
    /// Confirmed and seen in the last update.
    Tracked,
    /// Confirmed, not seen since `last_ms`.
    Lost,
}

#[derive(Debug, Clone)]
struct Track {
    id: u64,
    state: State,
    filter: BoxFilter,
    /// Time of the filter's state.
    t_ms: u64,
    /// The filter right after the last observation (to re-run it after an occlusion).
    at_last: BoxFilter,
    last_box: BBox,
    last_ms: u64,
    /// Updates since the last observation.
    missed: u32,
    hits: u32,
    /// The person's full height: the last observed box's, unless that box was cut short all
    /// of a sudden (an occluder took the legs: the height before is kept). Walking away
    /// shrinks a box gradually, and the full height follows.
    tall: f32,
    /// The last observations (time, box), oldest first, at most [`HISTORY`].
    history: std::collections::VecDeque<(u64, BBox)>,
    /// What the person looks like (see [`appearance`]), and when it was last refreshed.
    look: Option<Appearance>,
    look_ms: u64,
}

/// What the tracker reports for one frame: an ephemeral id and the (smoothed) box.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrackView {
    pub id: u64,
    pub bbox: BBox,
}

#[derive(Debug, Default, Clone, PartialEq)]
pub struct TrackUpdate {
    /// Confirmed tracks seen (or, between detections, predicted) in this frame.
    pub tracks: Vec<TrackView>,
    /// Confirmed tracks that ended in this update (unseen longer than `lost_ms`).
    pub ended: Vec<u64>,
    /// Tracks seen in this frame but not confirmed yet (not people yet: nothing counts them;
    /// frames waiting between two detections may place them once they are confirmed).
    pub tentative: Vec<TrackView>,
    /// Of `tracks`, those the detector missed in this frame (placed by prediction): counted
    /// in view, but no line decides on a guess.
    pub coasting: Vec<u64>,
}

#[derive(Debug)]
pub struct Tracker {
    params: TrackerParams,
    tracks: Vec<Track>,
    next_id: u64,
}

/// How an association stage compares a track with a detection.
#[derive(Debug, Clone, Copy)]
enum By {
    /// The track's predicted box, by IoU (weighted by the detection's score, or not).
    Iou { weighted: bool },
    /// The track's last observed box, by IoU (OC-SORT's recovery).
    LastObservation,
    /// Centre distance in box heights (small fast people at a low frame rate).
    Proximity,
}

/// One association stage: which tracks, which detections (sure ones or the rest), how
/// compared, and the largest cost of a match.
struct Stage {
    sure: bool,
    tracks: fn(State) -> bool,
    by: By,
    limit: f32,
}

/// Tracks and detections already matched in this update.
struct Used {
    dets: Vec<bool>,
    tracks: Vec<bool>,
    /// (track, detection) pairs matched.
    pairs: Vec<(usize, usize)>,
}

/// Computes a box's appearance on the current frame (the caller holds the frame).
pub type Describe<'a> = dyn FnMut(&BBox) -> Option<Appearance> + 'a;

/// IoU-based cost matrix (rows: the given tracks' boxes, cols: detections).
fn iou_costs(boxes: &[BBox], dets: &[Detection], weigh_by_score: bool) -> Vec<f32> {
    let mut cost = Vec::with_capacity(boxes.len() * dets.len());
    for b in boxes {
        for d in dets {
            let sim = b.iou(&d.bbox) * if weigh_by_score { d.score } else { 1.0 };
            cost.push(1.0 - sim);
        }
    }
    cost
}

/// Centre distance in box heights, for boxes of similar size (else forbidden).
fn proximity_costs(boxes: &[BBox], dets: &[Detection]) -> Vec<f32> {
    let mut cost = Vec::with_capacity(boxes.len() * dets.len());
    for b in boxes {
        for d in dets {
            let (bc, dc) = (b.center(), d.bbox.center());
            let h = b.h().max(d.bbox.h()).max(1e-3);
            let ratio = b.h().max(1e-3) / d.bbox.h().max(1e-3);
            let similar = (2.0 / 3.0..=1.5).contains(&ratio);
            let dist = (bc.x - dc.x).hypot(bc.y - dc.y) / h;
            cost.push(if similar { dist } else { f32::INFINITY });
        }
    }
    cost
}

impl Tracker {
    pub fn new(params: TrackerParams) -> Tracker {
        Tracker {
            params,
            tracks: Vec::new(),
            next_id: 1,
        }
    }

    pub fn params(&self) -> &TrackerParams {
        &self.params
    }

    /// The image's width over its height, once the frames are known.
    pub fn set_aspect(&mut self, aspect: f32) {
        if aspect.is_finite() && aspect > 0.0 {
            self.params.aspect = aspect;
        }
    }

    /// Number of live tracks (tentative and lost included): bounded by
    /// [`MAX_DETECTIONS`] new tracks per update, each kept at most `lost_ms` unseen.
    pub fn len(&self) -> usize {
        self.tracks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tracks.is_empty()
    }

    /// Appearance descriptors held (personal data: one at most per live track, dropped with
    /// it).
    pub fn appearances(&self) -> usize {
        self.tracks.iter().filter(|t| t.look.is_some()).count()
    }

    /// One frame's detections at `now_ms`, without appearance (re-links go by motion and
    /// height alone).
    pub fn update(&mut self, now_ms: u64, detections: &[Detection]) -> TrackUpdate {
        self.update_with(now_ms, detections, &mut |_| None)
    }

    /// One frame's detections at `now_ms`; `describe` gives a box's appearance on this frame
    /// when the tracker asks (see the module's documentation).
    pub fn update_with(
        &mut self,
        now_ms: u64,
        detections: &[Detection],
        describe: &mut Describe,
    ) -> TrackUpdate {
        for t in &mut self.tracks {
            let dt = now_ms.saturating_sub(t.t_ms) as f32 / 1000.0;
            t.filter.predict(dt, t.state == State::Lost);
            t.t_ms = t.t_ms.max(now_ms);
        }
        let p = self.params;
        let mut dets: Vec<Detection> = detections
            .iter()
            .filter(|d| d.score >= p.low_score && d.bbox.area() > 0.0)
            .copied()
            .collect();
        dets.sort_by(|a, b| b.score.total_cmp(&a.score));
        dets.truncate(MAX_DETECTIONS);
        let mut used = Used {
            dets: vec![false; dets.len()],
            tracks: vec![false; self.tracks.len()],
            pairs: Vec::new(),
        };
        for stage in &self.stages() {
            self.associate(now_ms, stage, &dets, &mut used);
        }
        self.relink(now_ms, &dets, &mut used, describe);
        self.refresh_looks(now_ms, &dets, &used, describe);
        let mut out = TrackUpdate::default();
        self.age(now_ms, &used.tracks, &mut out);
        self.spawn(now_ms, &dets, &used.dets);
        self.report(&mut out);
        out
    }

    /// The association stages, in order (see the module's documentation).
    fn stages(&self) -> [Stage; 5] {
        let p = &self.params;
        [
            // Sure detections ↔ tracked and lost tracks, IoU weighted by the score.
            Stage {
                sure: true,
                tracks: |s| s != State::Tentative,
                by: By::Iou { weighted: true },
                limit: p.high_match_cost,
            },
            // Unsure detections keep the remaining tracked tracks alive.
            Stage {
                sure: false,
                tracks: |s| s == State::Tracked,
                by: By::Iou { weighted: false },
                limit: p.low_match_cost,
            },
            // Tentative tracks ↔ the remaining sure detections.
            Stage {
                sure: true,
                tracks: |s| s == State::Tentative,
                by: By::Iou { weighted: false },
                limit: p.tentative_match_cost,
            },
            // Recovery by the last observation, then by proximity.
            Stage {
                sure: true,
                tracks: |_| true,
                by: By::LastObservation,
                limit: p.tentative_match_cost,
            },
            Stage {
                sure: true,
                tracks: |_| true,
                by: By::Proximity,
                limit: p.max_centre_distance,
            },
        ]
    }

    /// One association stage: the free tracks it takes against the free detections of its
    /// kind, optimally.
    fn associate(&mut self, now_ms: u64, stage: &Stage, dets: &[Detection], used: &mut Used) {
        let high = self.params.high_score;
        let lost_ms = self.params.lost_ms;
        // Tracks lost longer than `lost_ms` are only re-linked (step 7): overlap with a box
        // predicted that far ahead means nothing.
        let recent =
            |t: &Track| t.state != State::Lost || now_ms.saturating_sub(t.last_ms) <= lost_ms;
        let rows: Vec<usize> = (0..self.tracks.len())
            .filter(|&i| {
                !used.tracks[i] && (stage.tracks)(self.tracks[i].state) && recent(&self.tracks[i])
            })
            .collect();
        let cols: Vec<usize> = (0..dets.len())
            .filter(|&j| !used.dets[j] && (dets[j].score >= high) == stage.sure)
            .collect();
        if rows.is_empty() || cols.is_empty() {
            return;
        }
        let boxes: Vec<BBox> = rows
            .iter()
            .map(|&i| match stage.by {
                By::LastObservation => self.tracks[i].last_box,
                _ => self.tracks[i].filter.bbox(),
            })
            .collect();
        let cand: Vec<Detection> = cols.iter().map(|&j| dets[j]).collect();
        let cost = match stage.by {
            By::Iou { weighted } => iou_costs(&boxes, &cand, weighted),
            By::LastObservation => iou_costs(&boxes, &cand, false),
            By::Proximity => proximity_costs(&boxes, &cand),
        };
        for (r, c) in assign::min_cost(&cost, rows.len(), cols.len(), stage.limit) {
            self.take(rows[r], cols[c], dets, used);
        }
    }

    /// Track `i` takes detection `j`.
    fn take(&mut self, i: usize, j: usize, dets: &[Detection], used: &mut Used) {
        used.tracks[i] = true;
        used.dets[j] = true;
        used.pairs.push((i, j));
        self.tracks[i].observe(dets[j].bbox, self.params.min_hits);
    }

    /// Step 7: tracks lost away from the border ↔ the sure detections that would start new
    /// tracks, by where the person can be now, their height and their appearance.
    fn relink(
        &mut self,
        now_ms: u64,
        dets: &[Detection],
        used: &mut Used,
        describe: &mut Describe,
    ) {
        let p = self.params;
        let rows: Vec<usize> = (0..self.tracks.len())
            .filter(|&i| {
                let t = &self.tracks[i];
                !used.tracks[i] && t.state == State::Lost && !t.at_border()
            })
            .collect();
        let cols: Vec<usize> = (0..dets.len())
            .filter(|&j| !used.dets[j] && dets[j].score >= p.new_track_score.max(p.high_score))
            .collect();
        if rows.is_empty() || cols.is_empty() {
            return;
        }
        // Appearance of a candidate, computed once and only if a track could take it.
        let mut looks: Vec<Option<Option<Appearance>>> = vec![None; cols.len()];
        let mut cost = Vec::with_capacity(rows.len() * cols.len());
        for &i in &rows {
            let lost = self.tracks[i].lost_view();
            for (k, &j) in cols.iter().enumerate() {
                let b = &dets[j].bbox;
                let c = relink::cost(&lost, b, None, now_ms, p.aspect, &p.relink).and_then(|c| {
                    if lost.appearance.is_none() {
                        return Some(c);
                    }
                    let look = looks[k].get_or_insert_with(|| describe(b));
                    relink::cost(&lost, b, look.as_ref(), now_ms, p.aspect, &p.relink)
                });
                cost.push(c.unwrap_or(f32::MAX));
            }
        }
        let limit = 1.0 + p.relink.appearance_weight * p.relink.max_appearance;
        for (r, c) in assign::min_cost(&cost, rows.len(), cols.len(), limit) {
            self.take(rows[r], cols[c], dets, used);
        }
    }

    /// Tracked people seen unoccluded (no other detection overlaps them, full height) have
    /// their appearance refreshed, at most once per [`LOOK_REFRESH_MS`].
    fn refresh_looks(
        &mut self,
        now_ms: u64,
        dets: &[Detection],
        used: &Used,
        describe: &mut Describe,
    ) {
        for &(i, j) in &used.pairs {
            let t = &self.tracks[i];
            let due = t.look.is_none() || now_ms.saturating_sub(t.look_ms) >= LOOK_REFRESH_MS;
            if t.state != State::Tracked || !due {
                continue;
            }
            let b = dets[j].bbox;
            let alone = dets
                .iter()
                .enumerate()
                .all(|(k, d)| k == j || d.bbox.iou(&b) <= 0.0);
            if !alone || b.h() < 0.9 * t.tall {
                continue;
            }
            let Some(look) = describe(&b) else { continue };
            let t = &mut self.tracks[i];
            match t.look.as_mut() {
                Some(l) => l.blend(&look, 0.3),
                None => t.look = Some(look),
            }
            t.look_ms = now_ms;
        }
    }

    /// Unmatched tracks: tentative ones are dropped, confirmed ones become lost and end after
    /// `lost_ms` unseen.
    fn age(&mut self, now_ms: u64, track_used: &[bool], out: &mut TrackUpdate) {
        let lost_ms = self.params.lost_ms;
        let relink_ms = self.params.relink.max_gap_ms;
        let mut keep = Vec::with_capacity(self.tracks.len());
        for (i, mut t) in std::mem::take(&mut self.tracks).into_iter().enumerate() {
            if !track_used[i] {
                t.missed += 1;
                match t.state {
                    State::Tentative => continue,
                    State::Tracked => t.state = State::Lost,
                    State::Lost => {}
                }
                let keep_ms = if t.at_border() {
                    BORDER_LOST_MS.min(lost_ms)
                } else {
                    lost_ms.max(relink_ms)
                };
                if now_ms.saturating_sub(t.last_ms) > keep_ms {
                    out.ended.push(t.id);
                    continue;
                }
            }
            keep.push(t);
        }
        self.tracks = keep;
    }

    fn spawn(&mut self, now_ms: u64, dets: &[Detection], det_used: &[bool]) {
        let p = self.params;
        for (d, _) in dets.iter().zip(det_used).filter(|(_, used)| !**used) {
            if d.score < p.new_track_score.max(p.high_score) {
                continue;
            }
            let filter = BoxFilter::new(&d.bbox, p.noise);
            let state = if p.min_hits <= 1 {
                State::Tracked
            } else {
                State::Tentative
            };
            self.tracks.push(Track {
                id: self.next_id,
                state,
                filter,
                t_ms: now_ms,
                at_last: filter,
                last_box: d.bbox,
                last_ms: now_ms,
                missed: 0,
                hits: 1,
                tall: d.bbox.h(),
                history: std::iter::once((now_ms, d.bbox)).collect(),
                look: None,
                look_ms: 0,
            });
            self.next_id += 1;
        }
    }

    fn report(&self, out: &mut TrackUpdate) {
        let view = |t: &Track| TrackView {
            id: t.id,
            bbox: t.filter.bbox(),
        };
        let is = |s: State| move |t: &&Track| t.state == s;
        let coast = self.params.coast_ms;
        let coasting = |t: &&Track| {
            t.state == State::Lost
                && t.hits >= ESTABLISHED_HITS
                && t.t_ms.saturating_sub(t.last_ms) <= coast
        };
        out.tracks = self
            .tracks
            .iter()
            .filter(|t| is(State::Tracked)(t) || coasting(t))
            .map(view)
            .collect();
        out.coasting = self.tracks.iter().filter(coasting).map(|t| t.id).collect();
        out.tentative = self
            .tracks
            .iter()
            .filter(is(State::Tentative))
            .map(view)
            .collect();
    }

    /// Where the tracked people are at `now_ms`, without a detection (between detector runs):
    /// the filters' predictions. Changes nothing and never ends a track.
    pub fn predict(&self, now_ms: u64) -> TrackUpdate {
        TrackUpdate {
            tracks: self
                .tracks
                .iter()
                .filter(|t| t.state == State::Tracked)
                .map(|t| TrackView {
                    id: t.id,
                    bbox: t.filter.peek(now_ms.saturating_sub(t.t_ms) as f32 / 1000.0),
                })
                .collect(),
            ended: Vec::new(),
            tentative: Vec::new(),
            coasting: Vec::new(),
        }
    }

    /// End every track (source closed): returns the ids of confirmed ones.
    pub fn finish(&mut self) -> Vec<u64> {
        self.tracks
            .drain(..)
            .filter(|t| t.state != State::Tentative)
            .map(|t| t.id)
            .collect()
    }
}

impl Track {
    /// Last seen at the image's left, right or bottom border: most likely gone from view.
    fn at_border(&self) -> bool {
        let b = self.last_box;
        b.x1 <= BORDER || b.x2 >= 1.0 - BORDER || b.y2 >= 1.0 - BORDER
    }

    /// What the re-link needs of a lost track.
    fn lost_view(&self) -> relink::LostView {
        relink::LostView {
            last_ms: self.last_ms,
            foot: relink::foot_of(&self.last_box, self.tall),
            height: self.tall,
            velocity: self.foot_velocity(),
            appearance: self.look,
        }
    }

    /// The feet's velocity over the last observations (at most [`VELOCITY_SPAN_MS`]), from
    /// the observations themselves: an occluder eating into the box bends a filter, not this.
    fn foot_velocity(&self) -> (f32, f32) {
        let Some(&(t1, b1)) = self.history.back() else {
            return (0.0, 0.0);
        };
        let Some(&(t0, b0)) = self
            .history
            .iter()
            .find(|(t, _)| t1.saturating_sub(*t) <= VELOCITY_SPAN_MS)
        else {
            return (0.0, 0.0);
        };
        if t1 <= t0 {
            return (0.0, 0.0);
        }
        let dt = (t1 - t0) as f32 / 1000.0;
        let (f0, f1) = (
            relink::foot_of(&b0, self.tall),
            relink::foot_of(&b1, self.tall),
        );
        ((f1.x - f0.x) / dt, (f1.y - f0.y) / dt)
    }

    /// A detection was assigned to this track (its filter is at the detection's time).
    fn observe(&mut self, b: BBox, min_hits: u32) {
        let now = self.t_ms;
        if !relink::cut_short(&b, self.tall) {
            self.tall = b.h();
        }
        if self.history.len() >= HISTORY {
            self.history.pop_front();
        }
        self.history.push_back((now, b));
        if self.missed > 0 {
            // Observation-centric re-update: re-run the filter from the last observation along
            // a straight path to this one, one virtual observation per missed update.
            let steps = self.missed + 1;
            let dt = now.saturating_sub(self.last_ms) as f32 / 1000.0 / steps as f32;
            self.filter = self.at_last;
            for k in 1..=steps {
                let v = self.last_box.lerp(&b, k as f32 / steps as f32);
                self.filter.predict(dt, false);
                self.filter.update(&v);
            }
        } else {
            self.filter.update(&b);
        }
        self.at_last = self.filter;
        self.last_box = b;
        self.last_ms = now;
        self.missed = 0;
        self.hits += 1;
        match self.state {
            State::Tentative if self.hits >= min_hits => self.state = State::Tracked,
            State::Tentative => {}
            _ => self.state = State::Tracked,
        }
    }
}

#[cfg(test)]
mod tests;
