//! Which frames the detector sees. Detection is the expensive step (tens of ms per frame);
//! between detections the tracker carries people forward:
//! - **Detect**: run the detector (every `detect_every`-th frame while things move, and at
//!   least every `refresh_ms` even in a still scene, so a person who stopped is re-confirmed
//!   and a missed one is found);
//! - **Reuse**: the frame did not change since the last detection (motion gating): the last
//!   detections are still true, fed to the tracker again;
//! - **Predict**: something moves but this is not a detection frame: the tracker's
//!   constant-velocity predictions stand in for detections.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CadenceParams {
    /// Run the detector on every n-th moving frame (1 = every frame).
    pub detect_every: u32,
    /// Skip the detector on frames without motion.
    pub motion_gating: bool,
    /// Longest time without a detection, even in a still scene.
    pub refresh_ms: u64,
}

impl Default for CadenceParams {
    fn default() -> Self {
        CadenceParams {
            detect_every: 1,
            motion_gating: true,
            refresh_ms: 5000,
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
}

impl Cadence {
    pub fn new(params: CadenceParams) -> Cadence {
        Cadence {
            params: CadenceParams {
                detect_every: params.detect_every.max(1),
                ..params
            },
            last_detect_ms: None,
            since_detect: 0,
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
        } else if self.since_detect + 1 >= self.params.detect_every {
            Step::Detect
        } else {
            Step::Predict
        };
        match step {
            Step::Detect => {
                self.last_detect_ms = Some(now_ms);
                self.since_detect = 0;
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
    fn a_clock_going_backwards_forces_a_detection() {
        let mut c = Cadence::new(CadenceParams::default());
        assert_eq!(c.decide(10_000, false), Step::Detect);
        assert_eq!(c.decide(10_100, false), Step::Reuse);
        assert_eq!(c.decide(5_000, false), Step::Detect);
    }
}
