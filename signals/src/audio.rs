//! Per-microphone signals over a window: share of speech and sound level. Pure: blocks arrive
//! with their time; only aggregates leave.

use crate::event::{round3, AudioBody, Coverage, Level, SoundShares};

/// Content-free sound categories (from an audio-event classifier's top class).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sound {
    Speech,
    Music,
    /// Crowd noise, chatter, babble: many voices, no single speaker.
    Crowd,
    Silence,
    Other,
}

/// Below this level a stretch is silence, whatever the classifier says.
pub const SILENCE_DBFS: f64 = -60.0;

/// Level of digital silence; keeps dBFS finite.
pub const FLOOR_DBFS: f64 = -120.0;

/// dBFS of an RMS value, full scale = 1.0 RMS (a full-scale square wave reads 0 dBFS).
pub fn dbfs(rms: f64) -> f64 {
    if rms <= 1e-6 {
        FLOOR_DBFS
    } else {
        (20.0 * rms.log10()).max(FLOOR_DBFS)
    }
}

/// Root mean square of samples in [-1, 1].
pub fn rms(samples: &[f32]) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    (samples
        .iter()
        .map(|s| f64::from(*s) * f64::from(*s))
        .sum::<f64>()
        / samples.len() as f64)
        .sqrt()
}

#[derive(Debug)]
pub struct AudioSignals {
    speech_threshold: f32,
    analysed_s: f64,
    speech_s: f64,
    energy: f64,
    max_db: f64,
    min_db: f64,
    /// Sound categories are classified (a classifier is loaded).
    sounds: bool,
    /// Seconds per category: speech, music, crowd, silence, other.
    sound_s: [f64; 5],
}

impl AudioSignals {
    pub fn new(speech_threshold: f32) -> AudioSignals {
        AudioSignals {
            speech_threshold,
            analysed_s: 0.0,
            speech_s: 0.0,
            energy: 0.0,
            max_db: f64::NEG_INFINITY,
            min_db: f64::INFINITY,
            sounds: false,
            sound_s: [0.0; 5],
        }
    }

    /// Windows carry sound-category shares.
    pub fn enable_sounds(&mut self) {
        self.sounds = true;
    }

    /// A stretch of `seconds` classified as `sound`.
    pub fn observe_sound(&mut self, seconds: f64, sound: Sound) {
        let i = match sound {
            Sound::Speech => 0,
            Sound::Music => 1,
            Sound::Crowd => 2,
            Sound::Silence => 3,
            Sound::Other => 4,
        };
        self.sound_s[i] += seconds;
    }

    /// One analysed block: its length, the VAD's speech probability, its RMS level.
    pub fn observe(&mut self, seconds: f64, speech_prob: f32, rms: f64) {
        self.analysed_s += seconds;
        if speech_prob >= self.speech_threshold {
            self.speech_s += seconds;
        }
        self.energy += rms * rms * seconds;
        let db = dbfs(rms);
        self.max_db = self.max_db.max(db);
        self.min_db = self.min_db.min(db);
    }

    pub fn take_window(&mut self, window_secs: f64) -> AudioBody {
        let a = self.analysed_s;
        let body = AudioBody {
            coverage: Coverage::audio(window_secs, a, (window_secs - a).max(0.0)),
            speech_ratio: if a > 0.0 {
                Some(round3((self.speech_s / a).min(1.0)))
            } else {
                None
            },
            speech_seconds: round3(self.speech_s),
            level_dbfs: if a > 0.0 {
                Some(Level {
                    mean: round1(dbfs((self.energy / a).sqrt())),
                    max: round1(self.max_db),
                    min: round1(self.min_db),
                })
            } else {
                None
            },
            sounds: self.sounds.then(|| SoundShares::from_seconds(self.sound_s)),
        };
        let sounds = self.sounds;
        *self = AudioSignals::new(self.speech_threshold);
        self.sounds = sounds;
        body
    }
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_scale_square_is_zero_dbfs_and_half_is_minus_six() {
        assert!(dbfs(rms(&[1.0, -1.0, 1.0, -1.0])).abs() < 1e-9);
        assert!((dbfs(rms(&[0.5, -0.5])) + 6.02).abs() < 0.01);
        assert_eq!(dbfs(0.0), FLOOR_DBFS);
    }

    #[test]
    fn speech_ratio_and_blind_time() {
        let mut a = AudioSignals::new(0.5);
        for i in 0..100 {
            a.observe(0.1, if i < 25 { 0.9 } else { 0.1 }, 0.1);
        }
        let w = a.take_window(60.0);
        assert_eq!(w.speech_ratio, Some(0.25));
        assert!((w.coverage.seconds_blind - 50.0).abs() < 1e-6);
        assert_eq!(w.level_dbfs.unwrap().mean, -20.0);
        assert!(w.sounds.is_none(), "no classifier, no categories");
        let w = a.take_window(60.0);
        assert_eq!(w.speech_ratio, None);
        assert_eq!(w.coverage.status, crate::event::CoverageStatus::Blind);
    }
}

#[cfg(test)]
mod sound_tests {
    use super::*;

    #[test]
    fn sound_shares_are_fractions_of_classified_time() {
        let mut a = AudioSignals::new(0.5);
        a.enable_sounds();
        for _ in 0..6 {
            a.observe_sound(0.48, Sound::Speech);
        }
        a.observe_sound(0.48, Sound::Music);
        a.observe_sound(1.44, Sound::Silence);
        let s = a.take_window(10.0).sounds.expect("shares");
        assert_eq!(s.speech, Some(0.6));
        assert_eq!(s.music, Some(0.1));
        assert_eq!(s.silence, Some(0.3));
        assert_eq!((s.crowd, s.other), (Some(0.0), Some(0.0)));
        let s = a.take_window(10.0).sounds.expect("still enabled");
        assert_eq!(s.speech, None, "nothing classified: unknown, not zero");
    }
}
