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

use crate::event::{suppress, AttentionStats, DwellStats, ExpressionStats};
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

/// A facial expression: FER2013's seven classes, in the expression model's output order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Expression {
    Angry,
    Disgust,
    Fear,
    Happy,
    Sad,
    Surprise,
    Neutral,
}

impl Expression {
    /// In the model's output order.
    pub const ALL: [Expression; 7] = [
        Expression::Angry,
        Expression::Disgust,
        Expression::Fear,
        Expression::Happy,
        Expression::Sad,
        Expression::Surprise,
        Expression::Neutral,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Expression::Angry => "angry",
            Expression::Disgust => "disgust",
            Expression::Fear => "fear",
            Expression::Happy => "happy",
            Expression::Sad => "sad",
            Expression::Surprise => "surprise",
            Expression::Neutral => "neutral",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// One reading of a looker's face: the face's size (its box's shorter side, pixels of the
/// analysed frame) and its expression, `None` when it was too small for every display asking.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reading {
    pub face_px: u32,
    pub expression: Option<Expression>,
}

/// The longest gap between two attention observations that still counts as continuous
/// looking (attention runs on detector frames only).
pub const MAX_LOOK_STEP_MS: u64 = 1000;

/// Match faces to person tracks: a face belongs to a person when its centre lies inside the
/// upper half of the person's box (the head); each person gets at most one face (the largest),
/// each face at most one person (the smallest box containing it: the nearer person).
pub fn assign(tracks: &[TrackView], faces: &[Face]) -> Vec<(u64, HeadPose)> {
    assign_faces(tracks, faces)
        .into_iter()
        .map(|(id, f)| (id, faces[f].pose))
        .collect()
}

/// [`assign`], giving each person's face by its index in `faces`.
pub fn assign_faces(tracks: &[TrackView], faces: &[Face]) -> Vec<(u64, usize)> {
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
            out.push((tracks[ti].id, fi));
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
    /// Tracks looking at the display at their last observation (expressions are read only then).
    looking_now: HashSet<u64>,
    /// Per looker in this window: how often each expression was read while looking (votes),
    /// and whether a face was seen too small to read. Only while `expressions` is on.
    readings: HashMap<u64, ([u16; 7], bool)>,
    expressions: bool,
}

impl AttentionAcc {
    /// Expressions are read at this display (opt-in).
    pub fn with_expressions(expressions: bool) -> AttentionAcc {
        AttentionAcc {
            expressions,
            ..AttentionAcc::default()
        }
    }

    /// Whether the person `id` looked at the display at their last observation and this
    /// display reads expressions: only then may their face be read.
    pub fn wants_expression(&self, id: u64) -> bool {
        self.expressions && self.looking_now.contains(&id)
    }

    /// One reading of a looker's face (only counted while they look at the display); a face
    /// under `min_face_px` is not read here, whatever the model said.
    pub fn read(&mut self, id: u64, reading: Reading, min_face_px: u32) {
        if !self.wants_expression(id) {
            return;
        }
        let (votes, small) = self.readings.entry(id).or_insert(([0; 7], false));
        match reading
            .expression
            .filter(|_| reading.face_px >= min_face_px)
        {
            Some(e) => votes[e.index()] = votes[e.index()].saturating_add(1),
            None => *small = true,
        }
    }

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
            self.looking_now.insert(id);
        } else {
            self.looking_now.remove(&id);
        }
        if looking {
            // A first look counts from this frame on; the step measures continued looking.
            *self.looking_ms.entry(id).or_insert(0) += step;
        }
    }

    /// The track ended.
    pub fn forget(&mut self, id: u64) {
        self.last_seen_ms.remove(&id);
        self.looking_now.remove(&id);
    }

    /// Each reader's dominant expression (the class read most often; a tie goes to the later
    /// class in [`Expression::ALL`]: neutral first), counted and k-suppressed.
    fn take_expressions(&mut self, k_min: u32) -> Option<ExpressionStats> {
        if !self.expressions {
            return None;
        }
        let mut counts = [0u32; 7];
        let mut unread = 0u32;
        for (votes, _) in self.readings.values() {
            let best = (0..7).max_by_key(|&i| votes[i]).filter(|&i| votes[i] > 0);
            match best {
                Some(i) => counts[i] += 1,
                None => unread += 1,
            }
        }
        self.readings.clear();
        let c = |e: Expression| suppress(counts[e.index()], k_min);
        let mut s = ExpressionStats {
            neutral: c(Expression::Neutral),
            happy: c(Expression::Happy),
            surprise: c(Expression::Surprise),
            sad: c(Expression::Sad),
            angry: c(Expression::Angry),
            fear: c(Expression::Fear),
            disgust: c(Expression::Disgust),
            unread: suppress(unread, k_min),
            suppressed: false,
        };
        s.suppressed = [
            s.neutral, s.happy, s.surprise, s.sad, s.angry, s.fear, s.disgust, s.unread,
        ]
        .iter()
        .any(Option::is_none);
        Some(s)
    }

    pub fn take(&mut self, k_min: u32) -> AttentionStats {
        let passers = self.passers.len() as u32;
        let mut looks: Vec<u64> = self.looking_ms.values().copied().collect();
        let lookers = looks.len() as u32;
        self.passers.clear();
        self.looking_ms.clear();
        let (p, l) = (suppress(passers, k_min), suppress(lookers, k_min));
        let suppressed = p.is_none() || l.is_none();
        let expressions = self.take_expressions(k_min);
        AttentionStats {
            passers: p,
            lookers: l,
            looking_seconds: if l.is_some() {
                DwellStats::from_ms(&mut looks)
            } else {
                None
            },
            suppressed,
            expressions,
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
            expressions: true,
            expressions_min_face_px: 48,
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
    fn a_lookers_dominant_expression_is_the_one_read_most_and_small_faces_are_unread() {
        let mut a = AttentionAcc::with_expressions(true);
        let read = |e| Reading {
            face_px: 64,
            expression: Some(e),
        };
        for i in 0..5u64 {
            for id in 1..=3 {
                a.passer(id);
                a.observe(i * 200, id, id != 3 || i < 2);
            }
            a.read(
                1,
                read(if i < 3 {
                    Expression::Happy
                } else {
                    Expression::Sad
                }),
                48,
            );
            a.read(
                2,
                Reading {
                    face_px: 30,
                    expression: Some(Expression::Angry),
                },
                48,
            );
            // Person 3 stopped looking after 2 frames: later readings do not count.
            a.read(
                3,
                read(if i < 2 {
                    Expression::Surprise
                } else {
                    Expression::Fear
                }),
                48,
            );
        }
        assert!(!a.wants_expression(3), "not looking any more");
        let e = a.take(1).expressions.expect("on");
        assert_eq!((e.happy, e.sad), (Some(1), Some(0)), "3 happy beat 2 sad");
        assert_eq!(
            e.unread,
            Some(1),
            "a face under the display's size is not read"
        );
        assert_eq!((e.surprise, e.fear), (Some(1), Some(0)));
        let off = AttentionAcc::default().take(1);
        assert!(off.expressions.is_none());
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
