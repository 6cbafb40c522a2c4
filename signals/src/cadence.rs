//! Which frames the detector sees. Detection is the expensive step (tens of ms per frame);
//! between detections the tracker carries people forward:
//! - **Detect**: run the detector (every `detect_every`-th frame while things move, and at
//!   least every `refresh_ms` even in a still scene, so a person who stopped is re-confirmed
//!   and a missed one is found);
//! - **Reuse**: the frame did not change since the last detection (motion gating): the last
//!   detections are still true, fed to the tracker again;
//! - **Predict**: something moves but this is not a detection frame: the tracker's
//!   constant-velocity predictions stand in for detections.
//!
//! **People near the camera** get more detections: while the typical person in view (the
//! median box of a detection, smoothed over detections) is at least [`NEAR_HEIGHT`] of the
//! picture's height — a camera at eye level a few metres from where people walk — the detector
//! runs on every `detect_every_near`-th moving frame instead (2 instead of 3 by default). At
//! eye level people pass in front of each other: a walking group is a stack of boxes that
//! cover each other whole for a few hundred milliseconds, which the tracker's straight-line
//! prediction between detections bridges badly. Seen from higher up and further away, people
//! rarely cover each other, and more detections there mostly detect more merged boxes. On the
//! suite (every phase of the cadence, docs/evaluator.md) every second frame took the three
//! near sequences' grids from 44, 40 and 43 to 46, 49 and 44 lines, and would have taken the
//! two far ones from 66 and 27 to 62 and 26.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CadenceParams {
    /// Run the detector on every n-th moving frame (1 = every frame).
    pub detect_every: u32,
    /// Skip the detector on frames without motion.
    pub motion_gating: bool,
    /// Run the detector on every n-th moving frame while people are near the camera
    /// ([`NEAR_HEIGHT`]); equal to `detect_every` for a fixed cadence.
    pub detect_every_near: u32,
    /// Longest time without a detection, even in a still scene.
    pub refresh_ms: u64,
    /// How many frames early the second detection comes (0 in service). An evaluation runs
    /// every phase: which frames a cadence detects moves a short clip's counts.
    pub phase: u32,
}

/// People whose typical box is at least this share of the picture's height are near the
/// camera: a person 1.7 m tall within about 5 m of an eye-level camera (a 50° vertical field).
/// On the suite, the detected people's smoothed median: 0.33–0.50 on the two street clips,
/// 0.25–0.58 on the pavement (KITTI-17), 0.22–0.28 over the square (MOT17-02, where only the
/// nearer people are detected at all) and 0.11–0.18 above the walkway (PETS09-S2L1).
pub const NEAR_HEIGHT: f32 = 0.3;
/// Below this, people are far again (a margin, so that a scene at the limit does not flap).
pub const FAR_HEIGHT: f32 = 0.24;
/// The weight of one detection's median height in the smoothed typical height.
const HEIGHT_SMOOTHING: f32 = 0.1;

impl Default for CadenceParams {
    fn default() -> Self {
        CadenceParams {
            detect_every: 1,
            detect_every_near: 1,
            motion_gating: true,
            refresh_ms: 5000,
            phase: 0,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Detect,
    Reuse,
    Predict,
}

#[derive(Debug, Clone)]
pub struct Cadence {
    params: CadenceParams,
    last_detect_ms: Option<u64>,
    since_detect: u32,
    /// The typical person's height (smoothed median of the detections' boxes), once seen.
    typical_height: Option<f32>,
    near: bool,
}

impl Cadence {
    pub fn new(params: CadenceParams) -> Cadence {
        Cadence {
            params: CadenceParams {
                detect_every: params.detect_every.max(1),
                detect_every_near: params.detect_every_near.max(1),
                ..params
            },
            last_detect_ms: None,
            since_detect: 0,
            typical_height: None,
            near: false,
        }
    }

    /// The heights (shares of the picture's height) of the people a detection found: they
    /// decide whether people are near the camera.
    pub fn observe_heights(&mut self, heights: impl Iterator<Item = f32>) {
        let mut h: Vec<f32> = heights.filter(|h| h.is_finite()).collect();
        if h.is_empty() {
            return;
        }
        h.sort_by(f32::total_cmp);
        let median = h[h.len() / 2];
        let typical = match self.typical_height {
            Some(t) => t + HEIGHT_SMOOTHING * (median - t),
            None => median,
        };
        self.typical_height = Some(typical);
        if typical >= NEAR_HEIGHT {
            self.near = true;
        } else if typical < FAR_HEIGHT {
            self.near = false;
        }
    }

    /// Whether people are near the camera (the near cadence applies).
    pub fn near(&self) -> bool {
        self.near
    }

    /// Moving frames per detection now.
    fn every(&self) -> u32 {
        if self.near {
            self.params.detect_every_near
        } else {
            self.params.detect_every
        }
    }

    pub fn params(&self) -> CadenceParams {
        self.params
    }

    /// The detector runs on the frame at `now_ms` whatever the cadence (attention needs every
    /// frame's faces while someone stands at a display).
    pub fn detect_now(&mut self, now_ms: u64) -> Step {
        self.last_detect_ms = Some(now_ms);
        self.since_detect = 0;
        Step::Detect
    }

    /// Decide for the frame at `now_ms`; `motion` is whether it changed since the last
    /// detected frame (ignored when gating is off).
    pub fn decide(&mut self, now_ms: u64, motion: bool) -> Step {
        let due = match self.last_detect_ms {
            None => true,
            Some(t) => now_ms.saturating_sub(t) >= self.params.refresh_ms || now_ms < t,
        };
        let step = if due {
            Step::Detect
        } else if self.params.motion_gating && !motion {
            Step::Reuse
        } else if self.since_detect + 1 >= self.every() {
            Step::Detect
        } else {
            Step::Predict
        };
        let first = self.last_detect_ms.is_none();
        match step {
            Step::Detect => {
                self.last_detect_ms = Some(now_ms);
                self.since_detect = if first { self.params.phase } else { 0 };
            }
            Step::Predict => self.since_detect += 1,
            Step::Reuse => {}
        }
        step
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(params: CadenceParams, motion: impl Fn(u64) -> bool, frames: u64) -> Vec<Step> {
        let mut c = Cadence::new(params);
        (0..frames).map(|i| c.decide(i * 100, motion(i))).collect()
    }

    #[test]
    fn without_gating_every_frame_is_detected() {
        let p = CadenceParams {
            motion_gating: false,
            ..Default::default()
        };
        assert!(run(p, |_| false, 50).iter().all(|s| *s == Step::Detect));
    }

    #[test]
    fn a_still_scene_is_detected_only_on_refresh() {
        let steps = run(CadenceParams::default(), |_| false, 101);
        let detects: Vec<usize> = steps
            .iter()
            .enumerate()
            .filter(|(_, s)| **s == Step::Detect)
            .map(|(i, _)| i)
            .collect();
        // 10 fps for 10 s with a 5 s refresh: frames 0, 50, 100.
        assert_eq!(detects, vec![0, 50, 100]);
    }

    #[test]
    fn moving_frames_are_detected_every_nth_and_predicted_between() {
        let p = CadenceParams {
            detect_every: 3,
            ..Default::default()
        };
        let steps = run(p, |_| true, 9);
        use Step::*;
        assert_eq!(
            steps,
            vec![Detect, Predict, Predict, Detect, Predict, Predict, Detect, Predict, Predict]
        );
    }

    #[test]
    fn motion_after_stillness_is_detected_at_once_when_every_frame_counts() {
        let steps = run(CadenceParams::default(), |i| i >= 10, 12);
        assert_eq!(steps[5], Step::Reuse);
        assert_eq!(steps[10], Step::Detect);
        assert_eq!(steps[11], Step::Detect);
    }

    #[test]
    fn a_forced_detection_restarts_the_count() {
        let p = CadenceParams {
            detect_every: 3,
            ..Default::default()
        };
        let mut c = Cadence::new(p);
        assert_eq!(c.decide(0, true), Step::Detect);
        assert_eq!(c.decide(100, true), Step::Predict);
        assert_eq!(c.detect_now(200), Step::Detect);
        assert_eq!(c.decide(300, true), Step::Predict);
        assert_eq!(c.decide(400, true), Step::Predict);
        assert_eq!(c.decide(500, true), Step::Detect);
    }

    #[test]
    fn people_near_the_camera_are_detected_more_often_and_far_ones_less() {
        let p = CadenceParams {
            detect_every: 3,
            detect_every_near: 2,
            ..Default::default()
        };
        let mut c = Cadence::new(p);
        let detects = |c: &mut Cadence, from: u64| -> Vec<u64> {
            (from..from + 12)
                .filter(|i| c.decide(i * 100, true) == Step::Detect)
                .collect()
        };
        assert_eq!(detects(&mut c, 0), vec![0, 3, 6, 9]);
        // An eye-level street: people 0.3–0.45 of the picture tall.
        c.observe_heights([0.3, 0.45, 0.35, 0.05].into_iter());
        assert!(c.near());
        assert_eq!(detects(&mut c, 12), vec![12, 14, 16, 18, 20, 22]);
        // Smoothed: one detection of small people does not switch back.
        c.observe_heights([0.05].into_iter());
        assert!(c.near());
        // People far away for a while: back to every third frame.
        for _ in 0..30 {
            c.observe_heights([0.1, 0.12].into_iter());
        }
        assert!(!c.near());
        // A detection without people changes nothing.
        c.observe_heights(std::iter::empty());
        assert!(!c.near());
    }

    #[test]
    fn the_phase_moves_the_second_detection_earlier() {
        let p = CadenceParams {
            detect_every: 3,
            detect_every_near: 3,
            phase: 1,
            ..Default::default()
        };
        let mut c = Cadence::new(p);
        let detects: Vec<u64> = (0..8)
            .filter(|i| c.decide(i * 100, true) == Step::Detect)
            .collect();
        assert_eq!(detects, vec![0, 2, 5]);
    }

    #[test]
    fn a_clock_going_backwards_forces_a_detection() {
        let mut c = Cadence::new(CadenceParams::default());
        assert_eq!(c.decide(10_000, false), Step::Detect);
        assert_eq!(c.decide(10_100, false), Step::Reuse);
        assert_eq!(c.decide(5_000, false), Step::Detect);
    }
}
