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
//! 7. new tracks start tentative from unmatched high detections and are confirmed after
//!    `min_hits` matches; a tentative track that misses a frame is dropped; a lost track is
//!    kept `lost_ms` (time, not frames) before it ends.
//!
//! Only confirmed tracks seen in this frame are reported, and established ones the detector
//! missed for at most `coast_ms` (one missed detection does not take a person out of view). Track ids are ephemeral: a counter
//! that restarts with the process, never published.

mod kalman;

pub use kalman::{BoxFilter, Noise};

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
}

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

    /// Number of live tracks (tentative and lost included): bounded by
    /// [`MAX_DETECTIONS`] new tracks per update, each kept at most `lost_ms` unseen.
    pub fn len(&self) -> usize {
        self.tracks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tracks.is_empty()
    }

    /// One frame's detections at `now_ms`.
    pub fn update(&mut self, now_ms: u64, detections: &[Detection]) -> TrackUpdate {
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
        };
        for stage in &self.stages() {
            self.associate(stage, &dets, &mut used);
        }
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
    fn associate(&mut self, stage: &Stage, dets: &[Detection], used: &mut Used) {
        let high = self.params.high_score;
        let rows: Vec<usize> = (0..self.tracks.len())
            .filter(|&i| !used.tracks[i] && (stage.tracks)(self.tracks[i].state))
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
        let min_hits = self.params.min_hits;
        for (r, c) in assign::min_cost(&cost, rows.len(), cols.len(), stage.limit) {
            used.tracks[rows[r]] = true;
            used.dets[cols[c]] = true;
            self.tracks[rows[r]].observe(dets[cols[c]].bbox, min_hits);
        }
    }

    /// Unmatched tracks: tentative ones are dropped, confirmed ones become lost and end after
    /// `lost_ms` unseen.
    fn age(&mut self, now_ms: u64, track_used: &[bool], out: &mut TrackUpdate) {
        let lost_ms = self.params.lost_ms;
        let mut keep = Vec::with_capacity(self.tracks.len());
        for (i, mut t) in std::mem::take(&mut self.tracks).into_iter().enumerate() {
            if !track_used[i] {
                t.missed += 1;
                match t.state {
                    State::Tentative => continue,
                    State::Tracked => t.state = State::Lost,
                    State::Lost => {}
                }
                let b = t.last_box;
                let at_border = b.x1 <= BORDER || b.x2 >= 1.0 - BORDER || b.y2 >= 1.0 - BORDER;
                let keep_ms = if at_border {
                    BORDER_LOST_MS.min(lost_ms)
                } else {
                    lost_ms
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
    /// A detection was assigned to this track (its filter is at the detection's time).
    fn observe(&mut self, b: BBox, min_hits: u32) {
        let now = self.t_ms;
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
