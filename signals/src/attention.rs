//! Attention to displays: which tracked people look at a display, and for how long.
//!
//! The model step (face detector with landmarks, head-pose net) hands over faces as a box and a
//! head pose only; nothing else about a face reaches this module, and nothing about a face
//! leaves it: faces are matched to person tracks, turned into "looking / not looking" and
//! accumulated as looking time per track within the window. The published figures are
//! `passers` (people seen in the display's area), `lookers` (of them, those who looked) and
//! the distribution of looking time per looker.
//!
//! "Looking" follows Intel's shopper-gaze monitor: head yaw and pitch both within ±22.5° (the
//! display's `gaze_tolerance`) of the display's direction as seen from the camera.

use std::collections::{HashMap, HashSet};

use vitrine_config::DisplayArea;

use crate::event::{suppress, AttentionStats, DwellStats};
use crate::geom::BBox;
use crate::track::TrackView;

/// Head orientation in degrees as seen by the camera: 0/0 looks straight into the lens;
/// positive yaw turns to the image's left, positive pitch up (FSA-Net's convention).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HeadPose {
    pub yaw: f32,
    pub pitch: f32,
}

/// A face found in a frame: its box (normalized to the frame) and head pose.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Face {
    pub bbox: BBox,
    pub pose: HeadPose,
}

/// The longest gap between two attention observations that still counts as continuous
/// looking (attention runs on detector frames only).
pub const MAX_LOOK_STEP_MS: u64 = 1000;

/// Match faces to person tracks: a face belongs to a person when its centre lies inside the
/// upper half of the person's box (the head); each person gets at most one face (the largest),
/// each face at most one person (the smallest box containing it: the nearer person).
pub fn assign(tracks: &[TrackView], faces: &[Face]) -> Vec<(u64, HeadPose)> {
    let mut pairs: Vec<(f32, usize, usize)> = Vec::new();
    for (ti, t) in tracks.iter().enumerate() {
        let b = t.bbox;
        let head = BBox::new(b.x1, b.y1, b.x2, b.y1 + 0.5 * b.h());
        for (fi, f) in faces.iter().enumerate() {
            let c = f.bbox.center();
            if c.x >= head.x1 && c.x <= head.x2 && c.y >= head.y1 && c.y <= head.y2 {
                // Prefer large faces in small (near, unambiguous) person boxes.
                pairs.push((f.bbox.area() / b.area().max(1e-6), ti, fi));
            }
        }
    }
    pairs.sort_by(|a, b| b.0.total_cmp(&a.0));
    let (mut used_t, mut used_f) = (vec![false; tracks.len()], vec![false; faces.len()]);
    let mut out = Vec::new();
    for (_, ti, fi) in pairs {
        if !used_t[ti] && !used_f[fi] {
            used_t[ti] = true;
            used_f[fi] = true;
            out.push((tracks[ti].id, faces[fi].pose));
        }
    }
    out
}

/// Whether a head pose points at the display.
pub fn looks_at(pose: HeadPose, d: &DisplayArea) -> bool {
    (pose.yaw - d.gaze_yaw).abs() <= d.gaze_tolerance
        && (pose.pitch - d.gaze_pitch).abs() <= d.gaze_tolerance
}

/// Per display, per window: who passed, who looked, and for how long.
#[derive(Debug, Default)]
pub struct AttentionAcc {
    passers: HashSet<u64>,
    looking_ms: HashMap<u64, u64>,
    /// Track → time of its last attention observation (kept across windows).
    last_seen_ms: HashMap<u64, u64>,
}

impl AttentionAcc {
    /// A person (track) was seen in the display's area.
    pub fn passer(&mut self, id: u64) {
        self.passers.insert(id);
    }

    /// One attention observation of a person in the area at `now_ms`.
    pub fn observe(&mut self, now_ms: u64, id: u64, looking: bool) {
        let step = match self.last_seen_ms.insert(id, now_ms) {
            Some(prev) => now_ms.saturating_sub(prev).min(MAX_LOOK_STEP_MS),
            None => 0,
        };
        if looking {
            // A first look counts from this frame on; the step measures continued looking.
            *self.looking_ms.entry(id).or_insert(0) += step;
        }
    }

    /// The track ended.
    pub fn forget(&mut self, id: u64) {
        self.last_seen_ms.remove(&id);
    }

    pub fn take(&mut self, k_min: u32) -> AttentionStats {
        let passers = self.passers.len() as u32;
        let mut looks: Vec<u64> = self.looking_ms.values().copied().collect();
        let lookers = looks.len() as u32;
        self.passers.clear();
        self.looking_ms.clear();
        let (p, l) = (suppress(passers, k_min), suppress(lookers, k_min));
        let suppressed = p.is_none() || l.is_none();
        AttentionStats {
            passers: p,
            lookers: l,
            looking_seconds: if l.is_some() {
                DwellStats::from_ms(&mut looks)
            } else {
                None
            },
            suppressed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vitrine_config::{Area, DisplayArea};

    fn display(tol: f32) -> DisplayArea {
        DisplayArea {
            area: Area {
                id: "d".into(),
                polygon: vec![],
            },
            gaze_yaw: 0.0,
            gaze_pitch: 0.0,
            gaze_tolerance: tol,
        }
    }

    fn person(id: u64, x: f32) -> TrackView {
        TrackView {
            id,
            bbox: BBox::new(x, 0.2, x + 0.2, 0.9),
        }
    }

    fn face(x: f32, y: f32, yaw: f32) -> Face {
        Face {
            bbox: BBox::from_center(x, y, 0.05, 0.07),
            pose: HeadPose { yaw, pitch: 0.0 },
        }
    }

    #[test]
    fn the_looker_rule_is_plus_minus_22_5_degrees_on_both_axes() {
        let d = display(22.5);
        assert!(looks_at(
            HeadPose {
                yaw: 22.0,
                pitch: -22.0
            },
            &d
        ));
        assert!(!looks_at(
            HeadPose {
                yaw: 23.0,
                pitch: 0.0
            },
            &d
        ));
        assert!(!looks_at(
            HeadPose {
                yaw: 0.0,
                pitch: -30.0
            },
            &d
        ));
    }

    #[test]
    fn faces_go_to_the_person_whose_head_they_are() {
        let tracks = [person(1, 0.1), person(2, 0.5)];
        let faces = [
            face(0.6, 0.3, 40.0),
            face(0.2, 0.3, 5.0),
            face(0.2, 0.8, 0.0),
        ];
        let mut got = assign(&tracks, &faces);
        got.sort_by_key(|g| g.0);
        assert_eq!(got.len(), 2, "a face at the feet belongs to nobody");
        assert_eq!(
            got[0],
            (
                1,
                HeadPose {
                    yaw: 5.0,
                    pitch: 0.0
                }
            )
        );
        assert_eq!(got[1].0, 2);
    }

    #[test]
    fn looking_time_accumulates_per_looker_and_gaps_are_capped() {
        let mut a = AttentionAcc::default();
        for i in 0..10u64 {
            a.passer(1);
            a.passer(2);
            a.observe(i * 200, 1, true);
            a.observe(i * 200, 2, i < 3);
        }
        // Track 1 then vanishes for 5 s and looks again: the gap counts 1 s at most.
        a.observe(6800, 1, true);
        let s = a.take(1);
        assert_eq!((s.passers, s.lookers), (Some(2), Some(2)));
        let d = s.looking_seconds.expect("looking times");
        assert_eq!(d.count, 2);
        assert_eq!(d.max, 2.8, "1.8 s of looking plus one capped 1 s step");
        assert_eq!(d.mean, 1.6);
        let next = a.take(1);
        assert_eq!((next.passers, next.lookers), (Some(0), Some(0)));
    }

    #[test]
    fn small_counts_are_suppressed() {
        let mut a = AttentionAcc::default();
        a.passer(1);
        a.observe(0, 1, true);
        let s = a.take(3);
        assert!(s.suppressed);
        assert_eq!(
            (s.passers, s.lookers, s.looking_seconds),
            (None, None, None)
        );
    }
}
