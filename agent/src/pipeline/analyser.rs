//! One camera frame's analysis, the one definition the daemon's pipeline, `vitrine replay` and
//! `vitrine-lab eval` share: motion gating and the detection cadence decide whether the detector
//! runs, its detections (or the tracker's prediction) feed the camera's signals, and faces are
//! analysed where a display wants them. Synchronous and free of threads and clocks: the caller
//! gives each frame and its time.

use std::time::{Duration, Instant};

use vitrine_config::{Camera, ModelPrecision, Models};
use vitrine_models::Precision;
use vitrine_models::{Detector, ExpressionReader, FaceAnalyser, ModelError, PeopleDetector};
use vitrine_sensors::motion::{MotionDetector, MotionParams};
use vitrine_sensors::Frame;
use vitrine_signals::attention::{Face, Reading};
use vitrine_signals::cadence::{Cadence, CadenceParams, Step};
use vitrine_signals::track::{Appearance, Detection, TrackUpdate, TrackerParams};
use vitrine_signals::CameraSignals;

/// The tracker's parameters for the configured detector threshold: detections at or above it
/// lead the association, tracks start from ones 0.1 surer (ByteTrack's rule), and everything
/// down to 0.1 the detector reports may keep a half-hidden person tracked.
pub fn tracker_params(models: &Models) -> TrackerParams {
    let high = models.detector_threshold;
    TrackerParams {
        high_score: high,
        low_score: LOW_SCORE.min(high),
        new_track_score: (high + 0.1).min(0.95),
        ..TrackerParams::default()
    }
}

/// The detector reports boxes down to this score; the tracker decides what they are worth.
pub const LOW_SCORE: f32 = 0.1;

/// The configured arithmetic (detector and face models).
pub fn precision(models: &Models) -> Precision {
    match models.precision {
        ModelPrecision::Auto => Precision::Auto,
        ModelPrecision::F32 => Precision::F32,
        ModelPrecision::F16 => Precision::F16,
        ModelPrecision::Int8 => Precision::Int8,
    }
}

/// The size to decode a recording at for `cam`: the configured one, else — unless faces are
/// analysed, which want every pixel — the size the frame takes inside the detector's input
/// (decoding straight to it spares piping and resampling pixels the detector drops).
pub fn decode_size(
    cam: &Camera,
    detector: &PeopleDetector,
    path: &std::path::Path,
) -> Result<Option<(u32, u32)>, vitrine_sensors::SourceError> {
    if cam.size.is_some() || !cam.displays.is_empty() {
        return Ok(cam.size);
    }
    let (w, h, _, _) = vitrine_sensors::video_file::probe(path)?;
    let size = detector.size_for(cam.input_size);
    let (cw, ch) = vitrine_models::detector::content_size(size, w as usize, h as usize);
    Ok(Some((cw as u32, ch as u32)))
}

/// What one frame's step did.
#[derive(Debug)]
pub struct Stepped {
    pub step: Step,
    /// The tracker's output (ephemeral track ids; empty for a frame that waits for the next
    /// detection, see `CameraSignals::observe_predicted`).
    pub update: TrackUpdate,
    /// Detector time (preprocessing, model, decoding), when it ran.
    pub inference: Option<Duration>,
    /// Of `inference`, the time in the model itself.
    pub model: Option<Duration>,
}

pub struct CameraAnalyser {
    detector: Detector,
    faces: Option<FaceAnalyser>,
    /// Reads lookers' expressions where a display asks for them (opt-in).
    expressions: Option<ExpressionReader>,
    signals: CameraSignals,
    cadence: Cadence,
    motion: MotionDetector,
    last_dets: Vec<Detection>,
    last_faces: Vec<Face>,
}

impl CameraAnalyser {
    pub fn new(
        cam: &Camera,
        models: &Models,
        detector: Detector,
        faces: Option<FaceAnalyser>,
    ) -> CameraAnalyser {
        let mut signals = CameraSignals::with_tracker(cam, tracker_params(models));
        if faces.is_some() {
            signals.enable_attention();
        }
        CameraAnalyser {
            detector,
            faces,
            expressions: None,
            signals,
            cadence: Cadence::new(CadenceParams {
                detect_every: cam.detect_every,
                detect_every_near: cam.detect_every_near,
                motion_gating: cam.motion_gating,
                ..CadenceParams::default()
            }),
            motion: MotionDetector::new(MotionParams::default()),
            last_dets: Vec::new(),
            last_faces: Vec::new(),
        }
    }

    /// Start the detection cadence `phase` frames early (an evaluation runs every phase).
    pub fn with_phase(mut self, phase: u32) -> CameraAnalyser {
        self.cadence = Cadence::new(CadenceParams {
            phase,
            ..self.cadence.params()
        });
        self
    }

    /// Read the expressions of people looking at displays with `expressions = true`.
    pub fn with_expressions(mut self, reader: Option<ExpressionReader>) -> CameraAnalyser {
        self.expressions = reader;
        self
    }

    pub fn signals(&self) -> &CameraSignals {
        &self.signals
    }

    pub fn signals_mut(&mut self) -> &mut CameraSignals {
        &mut self.signals
    }

    /// The last detector run's detections (evaluation compares them with annotations).
    pub fn last_detections(&self) -> &[Detection] {
        &self.last_dets
    }

    /// Analyse one frame taken at `t_ms` (the pipeline's timeline, Unix ms).
    pub fn step(&mut self, t_ms: u64, frame: &Frame) -> Result<Stepped, ModelError> {
        let (w, h) = (frame.width as usize, frame.height as usize);
        let gating = self.cadence.params().motion_gating;
        let moved = !gating || self.motion.moved(&frame.rgb, w, h);
        // While someone stands at a display, attention wants every frame's faces.
        let step = if self.faces.is_some() && self.signals.wants_faces() && moved {
            self.cadence.detect_now(t_ms)
        } else {
            self.cadence.decide(t_ms, moved)
        };
        let (mut inference, mut model) = (None, None);
        let update = match step {
            Step::Detect => {
                let started = Instant::now();
                self.last_dets = self.detector.detect(&frame.rgb, w, h)?;
                inference = Some(started.elapsed());
                model = Some(self.detector.model_time());
                if gating {
                    self.motion.accept();
                }
                self.signals.set_aspect(w as f32 / h.max(1) as f32);
                let rgb = &frame.rgb;
                let update = self.signals.observe_with(t_ms, &self.last_dets, &mut |b| {
                    Appearance::from_rgb(rgb, w, h, b)
                });
                self.cadence
                    .observe_heights(update.tracks.iter().map(|t| t.bbox.h()));
                self.last_faces.clear();
                if let Some(fa) = self.faces.as_mut().filter(|_| self.signals.wants_faces()) {
                    self.last_faces = fa.analyse(&frame.rgb, w, h)?;
                    let wanted = self.signals.observe_faces(t_ms, &self.last_faces);
                    self.read_expressions(frame, &wanted)?;
                }
                update
            }
            Step::Reuse => {
                // Nothing changed: the last detections and faces still hold.
                let update = self.signals.observe(t_ms, &self.last_dets);
                // Faces of a still frame were read when it was analysed: not read again.
                let _ = self.signals.observe_faces(t_ms, &self.last_faces);
                update
            }
            Step::Predict => {
                self.signals.observe_predicted(t_ms);
                TrackUpdate::default()
            }
        };
        Ok(Stepped {
            step,
            update,
            inference,
            model,
        })
    }

    /// The expressions of the faces the displays asked for (face index, person, smallest
    /// face size read): a face under that size is not given to the model.
    fn read_expressions(
        &mut self,
        frame: &Frame,
        wanted: &[(usize, u64, u32)],
    ) -> Result<(), ModelError> {
        let Some(reader) = self.expressions.as_mut() else {
            return Ok(());
        };
        let (w, h) = (frame.width as usize, frame.height as usize);
        let mut readings = Vec::with_capacity(wanted.len());
        for &(f, id, min_px) in wanted {
            let Some(face) = self.last_faces.get(f) else {
                continue;
            };
            let face_px = (face.bbox.w() * w as f32).min(face.bbox.h() * h as f32) as u32;
            let expression = if face_px >= min_px {
                Some(reader.read(&frame.rgb, w, h, &face.bbox)?)
            } else {
                None
            };
            readings.push((
                id,
                Reading {
                    face_px,
                    expression,
                },
            ));
        }
        self.signals.observe_expressions(&readings);
        Ok(())
    }
}
