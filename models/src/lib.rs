//! Vitrine's models in tract: the pinned manifest and fetch (`manifest`), the person detector
//! (`detector`: letterbox, YOLOX decode, NMS) and voice activity (`vad`: Silero).
//!
//! Every model file is checked against its pinned sha256 before tract sees it, so a wrong,
//! truncated or corrupt file is reported by name instead of failing deep inside the graph.

pub mod audio_events;
pub mod bench;
pub mod detector;
pub mod expressions;
pub mod faces;
pub mod manifest;
pub mod precision;
pub mod preprocess;
pub mod vad;

use std::path::PathBuf;

pub use audio_events::AudioEvents;
pub use detector::{Detector, PeopleDetector};
pub use expressions::ExpressionReader;
pub use faces::FaceAnalyser;
pub use precision::{Arith, Cpu, Precision};
pub use vad::Vad;

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("unknown model {0:?}: not in the pinned manifest (models/manifest.toml)")]
    Unknown(String),
    #[error("model {name:?} not found at {path}: {source}; fix: run `vitrine models fetch --dir {dir}`", dir = path.parent().map(|p| p.display().to_string()).unwrap_or_default())]
    Missing {
        name: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("model file {path} is not the pinned one (sha256 {got}, expected {expected}): it is corrupt, truncated or replaced; fix: delete it and run `vitrine models fetch`")]
    Checksum {
        path: PathBuf,
        expected: String,
        got: String,
    },
    #[error("model file {path} could not be loaded by tract: {message}")]
    Load { path: PathBuf, message: String },
    #[error("inference failed in {model}: {message}")]
    Run { model: String, message: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("could not fetch model {name:?}; tried: {}. fix: set VITRINE_MODEL_MIRROR to a directory holding the model files, or check network access", tried.join("; "))]
    FetchFailed { name: String, tried: Vec<String> },
}
