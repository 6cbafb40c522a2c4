//! Frame and audio sources behind two small pull-based traits.
//!
//! A source yields timestamped frames (RGB24) or 16 kHz mono audio blocks, blocking until the
//! next one is due: recorded files (`video_file`, `audio_file`), USB/UVC cameras (`v4l2`,
//! feature `v4l`), IP cameras (`rtsp`, feature `rtsp`) and microphones (`mic`, feature `alsa`).
//! Pixel conversion is `convert`; rate gating, format choice and backoff are `live`; whether a stream is sized for
//! analysis (a camera's substream) is `stream`. Raw data
//! never leaves process memory: sources hand frames to bounded channels in the agent and
//! nothing here writes them.

pub mod audio_file;
pub mod convert;
#[cfg(feature = "rtsp")]
pub mod h264;
pub mod live;
#[cfg(feature = "alsa")]
pub mod mic;
pub mod motion;
#[cfg(feature = "rtsp")]
pub mod onvif;
#[cfg(feature = "rtsp")]
pub mod rtsp;
pub mod stream;
#[cfg(feature = "v4l")]
pub mod v4l2;
pub mod video_file;

use std::time::{Duration, Instant};

/// One video frame: RGB24, row-major, `width*height*3` bytes.
pub struct Frame {
    /// Media time since the source started, milliseconds.
    pub t_ms: u64,
    pub width: u32,
    pub height: u32,
    pub rgb: Vec<u8>,
    /// When the source delivered it (read from the device, or decoded and paced from a
    /// recording): alert latency runs from here.
    pub arrived: Instant,
}

// Frames are never printed: a Debug that dumps pixels would be a privacy leak waiting to happen.
impl std::fmt::Debug for Frame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Frame {{ t_ms: {}, {}x{} }}",
            self.t_ms, self.width, self.height
        )
    }
}

/// One block of audio: 16 kHz mono f32 in [-1, 1].
pub struct AudioBlock {
    pub t_ms: u64,
    pub samples: Vec<f32>,
}

impl std::fmt::Debug for AudioBlock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "AudioBlock {{ t_ms: {}, {} samples }}",
            self.t_ms,
            self.samples.len()
        )
    }
}

/// What a source knows about itself (for coverage and progress).
#[derive(Debug, Clone, PartialEq)]
pub struct SourceInfo {
    pub width: u32,
    pub height: u32,
    /// Frames per second delivered (after any rate selection).
    pub fps: f32,
    /// Length of a recording, when known.
    pub duration_ms: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{what}: {message}; fix: {fix}")]
    Open {
        what: String,
        message: String,
        fix: String,
    },
    #[error("{what}: read failed: {message}")]
    Read { what: String, message: String },
}

pub trait FrameSource: Send {
    fn info(&self) -> &SourceInfo;
    /// The next frame, or `None` at the end of a recording.
    fn next_frame(&mut self) -> Result<Option<Frame>, SourceError>;
    /// The decoder a compressed stream goes through (`"ffmpeg (software)"`), when there is one.
    fn decoder(&self) -> Option<&'static str> {
        None
    }
}

pub trait AudioSource: Send {
    /// The next 512-sample block, or `None` at the end of a recording.
    fn next_block(&mut self) -> Result<Option<AudioBlock>, SourceError>;
    fn duration_ms(&self) -> Option<u64>;
}

/// Deliver media at its native rate, or as fast as it can be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pacing {
    Realtime,
    AsFastAsPossible,
}

/// Sleeps until media time `t_ms` is due (realtime pacing).
#[derive(Debug)]
pub(crate) struct Pacer {
    pacing: Pacing,
    start: Option<Instant>,
}

impl Pacer {
    pub fn new(pacing: Pacing) -> Pacer {
        Pacer {
            pacing,
            start: None,
        }
    }

    pub fn wait(&mut self, t_ms: u64) {
        if self.pacing == Pacing::AsFastAsPossible {
            return;
        }
        let start = *self.start.get_or_insert_with(Instant::now);
        let due = start + Duration::from_millis(t_ms);
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_contains_pixels_or_samples() {
        let f = Frame {
            t_ms: 40,
            width: 2,
            height: 1,
            rgb: vec![201, 202, 203, 204, 205, 206],
            arrived: Instant::now(),
        };
        let s = format!("{f:?}");
        assert_eq!(s, "Frame { t_ms: 40, 2x1 }");
        let a = AudioBlock {
            t_ms: 32,
            samples: vec![0.123_456; 4],
        };
        assert!(!format!("{a:?}").contains("0.123"));
    }
}
