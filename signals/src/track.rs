//! Multi-object tracking by detection (SORT-like): constant-velocity prediction, greedy IoU
//! matching with a centre-distance fallback, tentative → confirmed after `min_hits`, coasting
//! through occlusions up to `max_age_ms`.
//!
//! Track ids are ephemeral: a counter that restarts with the process, never published.

use crate::geom::BBox;

/// One detection fed to the tracker.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Detection {
    pub bbox: BBox,
    pub score: f32,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrackerParams {
    /// Matches needed before a track counts (filters one-frame false positives).
    pub min_hits: u32,
    /// How long an unmatched confirmed track is kept (predicted forward) before it ends.
    pub max_age_ms: u64,
    /// Minimum IoU between a prediction and a detection to match.
    pub min_iou: f32,
}

impl Default for TrackerParams {
    fn default() -> Self {
        TrackerParams {
            min_hits: 2,
            max_age_ms: 1500,
            min_iou: 0.2,
        }
    }
}

#[derive(Debug, Clone)]
struct Track {
    id: u64,
    bbox: BBox,
    /// Velocity of the box centre, normalized units per second.
    vx: f32,
    vy: f32,
    last_seen_ms: u64,
    hits: u32,
    confirmed: bool,
}

impl Track {
    fn predict(&self, now_ms: u64) -> BBox {
        let dt = now_ms.saturating_sub(self.last_seen_ms) as f32 / 1000.0;
        let c = self.bbox.center();
        BBox::from_center(
            c.x + self.vx * dt,
            c.y + self.vy * dt,
            self.bbox.w(),
            self.bbox.h(),
        )
    }
}

/// What the tracker reports for one frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrackView {
    pub id: u64,
    pub bbox: BBox,
    /// Not matched in this frame: the box is a prediction.
    pub coasting: bool,
}

#[derive(Debug, Default, Clone, PartialEq)]
pub struct TrackUpdate {
    /// Confirmed tracks, matched or coasting.
    pub tracks: Vec<TrackView>,
    /// Confirmed tracks that ended in this update (out of sight longer than `max_age_ms`).
    pub ended: Vec<u64>,
}

#[derive(Debug)]
pub struct Tracker {
    params: TrackerParams,
    tracks: Vec<Track>,
    next_id: u64,
}

impl Tracker {
    pub fn new(params: TrackerParams) -> Tracker {
        Tracker {
            params,
            tracks: Vec::new(),
            next_id: 1,
        }
    }

    /// Number of live tracks (tentative included): bounded by detections per frame × max age.
    pub fn len(&self) -> usize {
        self.tracks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tracks.is_empty()
    }

    pub fn update(&mut self, now_ms: u64, detections: &[Detection]) -> TrackUpdate {
        let predicted: Vec<BBox> = self.tracks.iter().map(|t| t.predict(now_ms)).collect();
        // Candidate pairs, best first: IoU, then (for small fast boxes) closeness of centres.
        let mut pairs: Vec<(f32, usize, usize)> = Vec::new();
        for (ti, p) in predicted.iter().enumerate() {
            for (di, d) in detections.iter().enumerate() {
                let iou = p.iou(&d.bbox);
                let score = if iou >= self.params.min_iou {
                    1.0 + iou
                } else {
                    let (pc, dc) = (p.center(), d.bbox.center());
                    let dist = (pc.x - dc.x).hypot(pc.y - dc.y);
                    let scale = p.h().max(d.bbox.h()).max(1e-3);
                    let size_ratio =
                        (p.h() / d.bbox.h().max(1e-3)).max(d.bbox.h() / p.h().max(1e-3));
                    if dist < 0.5 * scale && size_ratio < 1.5 {
                        1.0 - dist / scale
                    } else {
                        continue;
                    }
                };
                pairs.push((score, ti, di));
            }
        }
        pairs.sort_by(|a, b| b.0.total_cmp(&a.0));
        let mut track_used = vec![false; self.tracks.len()];
        let mut det_used = vec![false; detections.len()];
        let mut matched = vec![false; self.tracks.len()];
        for (_, ti, di) in pairs {
            if track_used[ti] || det_used[di] {
                continue;
            }
            track_used[ti] = true;
            det_used[di] = true;
            matched[ti] = true;
            let t = &mut self.tracks[ti];
            let d = detections[di].bbox;
            let dt = now_ms.saturating_sub(t.last_seen_ms) as f32 / 1000.0;
            if dt > 0.0 {
                let (oc, nc) = (t.bbox.center(), d.center());
                let (vx, vy) = ((nc.x - oc.x) / dt, (nc.y - oc.y) / dt);
                // Smooth the velocity; the first match sets it.
                let a = if t.hits <= 1 { 1.0 } else { 0.3 };
                t.vx = a * vx + (1.0 - a) * t.vx;
                t.vy = a * vy + (1.0 - a) * t.vy;
            }
            t.bbox = d;
            t.last_seen_ms = now_ms;
            t.hits += 1;
            if t.hits >= self.params.min_hits {
                t.confirmed = true;
            }
        }
        let mut out = TrackUpdate::default();
        let max_age = self.params.max_age_ms;
        let mut keep = Vec::with_capacity(self.tracks.len());
        for (i, t) in self.tracks.drain(..).enumerate() {
            let age = now_ms.saturating_sub(t.last_seen_ms);
            let alive = matched[i] || (t.confirmed && age <= max_age) || (!t.confirmed && age == 0);
            if alive {
                if t.confirmed {
                    out.tracks.push(TrackView {
                        id: t.id,
                        bbox: if matched[i] { t.bbox } else { predicted[i] },
                        coasting: !matched[i],
                    });
                }
                keep.push(t);
            } else if t.confirmed {
                out.ended.push(t.id);
            }
        }
        self.tracks = keep;
        for (di, d) in detections.iter().enumerate() {
            if det_used[di] {
                continue;
            }
            let confirmed = self.params.min_hits <= 1;
            let id = self.next_id;
            self.next_id += 1;
            self.tracks.push(Track {
                id,
                bbox: d.bbox,
                vx: 0.0,
                vy: 0.0,
                last_seen_ms: now_ms,
                hits: 1,
                confirmed,
            });
            if confirmed {
                out.tracks.push(TrackView {
                    id,
                    bbox: d.bbox,
                    coasting: false,
                });
            }
        }
        out
    }

    /// Where the confirmed tracks are at `now_ms` by constant-velocity prediction, without a
    /// detection: used between detector runs. Changes nothing (the next `update` matches
    /// against predictions from the last real sighting) and never ends a track.
    pub fn predict(&self, now_ms: u64) -> TrackUpdate {
        TrackUpdate {
            tracks: self
                .tracks
                .iter()
                .filter(|t| t.confirmed)
                .map(|t| TrackView {
                    id: t.id,
                    bbox: t.predict(now_ms),
                    coasting: false,
                })
                .collect(),
            ended: Vec::new(),
        }
    }

    /// End every track (source closed): returns the ids of confirmed ones.
    pub fn finish(&mut self) -> Vec<u64> {
        self.tracks
            .drain(..)
            .filter(|t| t.confirmed)
            .map(|t| t.id)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn det(cx: f32, cy: f32) -> Detection {
        Detection {
            bbox: BBox::from_center(cx, cy, 0.05, 0.15),
            score: 0.9,
        }
    }

    #[test]
    fn a_walking_person_keeps_one_id() {
        let mut t = Tracker::new(TrackerParams::default());
        let mut ids = std::collections::HashSet::new();
        for i in 0..50u64 {
            let u = t.update(i * 200, &[det(0.1 + i as f32 * 0.015, 0.5)]);
            for tr in &u.tracks {
                ids.insert(tr.id);
            }
        }
        assert_eq!(ids.len(), 1);
    }

    #[test]
    fn keeps_id_through_a_short_occlusion() {
        let mut t = Tracker::new(TrackerParams::default());
        let mut ids = std::collections::HashSet::new();
        for i in 0..30u64 {
            let dets = if (10..15).contains(&i) {
                vec![]
            } else {
                vec![det(0.1 + i as f32 * 0.02, 0.5)]
            };
            let u = t.update(i * 200, &dets);
            assert!(
                u.ended.is_empty(),
                "track ended during a 1 s occlusion at frame {i}"
            );
            for tr in &u.tracks {
                ids.insert(tr.id);
            }
        }
        assert_eq!(ids.len(), 1);
    }

    #[test]
    fn prediction_between_detections_follows_the_walk_and_keeps_the_id() {
        let mut t = Tracker::new(TrackerParams::default());
        let mut id = None;
        for i in 0..30u64 {
            let x = 0.1 + i as f32 * 0.02;
            let u = if i % 3 == 0 {
                t.update(i * 100, &[det(x, 0.5)])
            } else {
                t.predict(i * 100)
            };
            if let Some(v) = u.tracks.first() {
                assert!(
                    (v.bbox.center().x - x).abs() < 0.02,
                    "frame {i}: {v:?} vs {x}"
                );
                assert_eq!(*id.get_or_insert(v.id), v.id);
                assert!(!v.coasting);
            }
        }
        assert!(id.is_some());
    }

    #[test]
    fn a_long_absence_ends_the_track() {
        let mut t = Tracker::new(TrackerParams::default());
        t.update(0, &[det(0.5, 0.5)]);
        t.update(200, &[det(0.5, 0.5)]);
        let u = t.update(2000, &[]);
        assert_eq!(u.ended.len(), 1);
        assert!(u.tracks.is_empty());
        assert!(t.is_empty());
    }

    #[test]
    fn one_frame_false_positive_never_confirms() {
        let mut t = Tracker::new(TrackerParams::default());
        let u = t.update(0, &[det(0.5, 0.5)]);
        assert!(u.tracks.is_empty());
        let u = t.update(200, &[]);
        assert!(u.tracks.is_empty() && u.ended.is_empty());
        assert!(t.is_empty());
    }

    #[test]
    fn two_people_crossing_paths_keep_their_ids() {
        let mut t = Tracker::new(TrackerParams::default());
        let mut last: Option<(u64, u64)> = None;
        for i in 0..40u64 {
            let x = i as f32 * 0.02;
            let u = t.update(i * 200, &[det(0.1 + x, 0.3), det(0.9 - x, 0.7)]);
            if u.tracks.len() == 2 {
                let mut v = u.tracks.clone();
                v.sort_by(|a, b| a.bbox.y1.total_cmp(&b.bbox.y1));
                let pair = (v[0].id, v[1].id);
                if let Some(l) = last {
                    assert_eq!(l, pair);
                }
                last = Some(pair);
            }
        }
        assert!(last.is_some());
    }
}
