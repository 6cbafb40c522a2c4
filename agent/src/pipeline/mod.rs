//! The pipeline: one analysis thread per source (CPU-heavy inference stays off the async
//! workers), each feeding the pure signal state machines and sending closed windows to a
//! bounded channel.
//!
//! ```text
//! camera: reader thread --BoundedQueue(2)--> analysis thread: detector -> CameraSignals -+
//! microphone: reader+analysis thread: VAD + level -> AudioSignals -----------------------+-> windows (sync_channel 64, Block)
//! ```
//! Windows are never dropped: when the consumer is slow, analysis waits (a window is a few
//! hundred bytes once a minute per source; the frame queue in front absorbs the wait).
//!
//! Live sources (USB/RTSP cameras, microphones) are opened by their reader thread, not before:
//! a camera that is missing at start or unplugged later is retried with backoff (1 s doubling
//! to 30 s) while the agent and the other sources run on. While a live source is down its
//! windows still close on the clock (their coverage shows the blind seconds), the source shows
//! as down in status, display and metrics, and its heartbeat continues (the watchdog is for a
//! stuck pipeline, not a missing camera).

pub mod analyser;
mod camera;
mod live;
mod microphone;
pub mod queue;
pub mod store;
pub mod tap;

pub use camera::start_camera;
#[cfg(feature = "rtsp")]
pub use live::decoder_choice;
pub use microphone::start_microphone;

use std::sync::atomic::Ordering;
use std::sync::mpsc::SyncSender;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use vitrine_config::AlertRule;
use vitrine_config::Config;
use vitrine_models::PeopleDetector;
use vitrine_sensors::Pacing;
use vitrine_signals::alert::AlertChange;
use vitrine_signals::forecast::ForecastBook;
use vitrine_signals::scene::WindowTotals;
use vitrine_signals::Body;

use crate::clock::StoreClock;
use crate::telemetry::SourceProgress;

/// Capacity of a camera's frame queue (frames held between reader and analysis).
pub const FRAME_QUEUE: usize = 2;
/// Capacity of the closed-window channel shared by all sources.
pub const WINDOW_CHANNEL: usize = 64;
/// Longest wait between two attempts to reopen a lost live source.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How often a live source's analysis thread wakes without input (to close windows on time).
const TICK: Duration = Duration::from_millis(500);

/// A closed window of one source, before it gets its sequence number.
#[derive(Debug, Clone)]
pub struct WindowOut {
    pub source_id: String,
    pub start_ms: u64,
    pub end_ms: u64,
    pub body: Body,
    /// A camera's unsuppressed totals, which the forecast learns from (never published).
    pub totals: Option<WindowTotals>,
}

/// An alert rule raised or cleared, before it gets its sequence number.
#[derive(Debug, Clone)]
pub struct AlertOut {
    pub source_id: String,
    pub rule: AlertRule,
    pub change: AlertChange,
    /// When the frame that raised it arrived (`clock::mono_ms`): its delivery latency runs
    /// from here to the broker's PUBACK.
    pub frame_mono_ms: u64,
}

/// What the analysis threads hand to the event writer, in the order they happen.
#[derive(Debug, Clone)]
pub enum Record {
    /// Boxed: a camera's window is large, an alert small.
    Window(Box<WindowOut>),
    Alert(AlertOut),
    /// A camera's entrance lines changed, or it started or stopped seeing people (the store's
    /// occupancy, [`store`]).
    Entrances(EntrancesOut),
}

/// A camera's news for the store's occupancy: its entrance lines' running totals (people and
/// groups) and the people it sees, at the frame `t_ms`.
#[derive(Debug, Clone)]
pub struct EntrancesOut {
    pub source_id: String,
    pub t_ms: u64,
    pub lines: Vec<vitrine_signals::occupancy::EntranceCount>,
    pub people: u32,
    /// When the frame arrived (`clock::mono_ms`): a capacity alert's latency runs from here.
    pub frame_mono_ms: u64,
}

impl Record {
    /// The wall-clock time the record is stamped with (the writer holds records stamped by an
    /// unset clock).
    pub fn stamp_ms(&self) -> u64 {
        match self {
            Record::Window(w) => w.start_ms,
            Record::Alert(a) => a.change.at_ms,
            Record::Entrances(e) => e.t_ms,
        }
    }

    /// Move the record's time by `by_ms` (the clock was stepped since it was stamped).
    pub fn shift(&mut self, by_ms: i64) {
        let moved = |t: u64| (t as i64 + by_ms).max(0) as u64;
        match self {
            Record::Window(w) => {
                w.start_ms = moved(w.start_ms);
                w.end_ms = moved(w.end_ms);
            }
            Record::Alert(a) => a.change.at_ms = moved(a.change.at_ms),
            Record::Entrances(e) => e.t_ms = moved(e.t_ms),
        }
    }
}

/// The traffic forecast every camera's alerts read and the event writer teaches.
pub type SharedForecast = Arc<std::sync::Mutex<ForecastBook>>;

/// Hand a closed window to the event writer (waits while the channel is full: windows are
/// never dropped) and count it.
fn hand_off(
    tx: &SyncSender<Record>,
    p: &SourceProgress,
    source_id: &str,
    (start_ms, end_ms): (u64, u64),
    (body, totals): (Body, Option<WindowTotals>),
) -> anyhow::Result<()> {
    p.windows.fetch_add(1, Ordering::Relaxed);
    tx.send(Record::Window(Box::new(WindowOut {
        source_id: source_id.to_string(),
        start_ms,
        end_ms,
        body,
        totals,
    })))
    .map_err(|_| anyhow::anyhow!("event consumer stopped"))
}

impl WindowOut {
    /// The published event for this window, numbered `seq`, for the device of `cfg`.
    pub fn into_event(self, cfg: &Config, seq: u64) -> vitrine_signals::WindowEvent {
        let meta = vitrine_signals::event::EventMeta::of(cfg, &self.source_id);
        vitrine_signals::WindowEvent::new(&meta, seq, self.start_ms, self.end_ms, self.body)
    }
}

impl AlertOut {
    /// The published alert, numbered `seq`, for the device of `cfg`.
    pub fn to_event(&self, cfg: &Config, seq: u64) -> vitrine_signals::alert::AlertEvent {
        let meta = vitrine_signals::event::EventMeta::of(cfg, &self.source_id);
        vitrine_signals::alert::AlertEvent::new(&meta, seq, &self.rule, &self.change)
    }
}

impl Options {
    pub fn new(cfg: &Config, base_ms: u64, realtime: bool) -> Options {
        Options {
            base_ms,
            pacing: if realtime {
                Pacing::Realtime
            } else {
                Pacing::AsFastAsPossible
            },
            window_secs: cfg.privacy.window_secs,
            k_min: cfg.privacy.k_min,
            epoch: Instant::now(),
            forecast: None,
            taps: None,
        }
    }

    /// Wall-clock ms now on this pipeline's timeline (live sources).
    fn now_ms(&self) -> u64 {
        self.base_ms + self.epoch.elapsed().as_millis() as u64
    }
}

#[derive(Debug, Clone)]
pub struct Options {
    /// Wall-clock time (Unix ms) of media time 0.
    pub base_ms: u64,
    pub pacing: Pacing,
    pub window_secs: u32,
    pub k_min: u32,
    /// Monotonic instant of media time 0 (live sources stamp frames from it, so a source
    /// reopened after an outage continues the same timeline).
    pub epoch: Instant,
    /// The forecast and the store's clock, for alert bands (the daemon; replay has none).
    pub forecast: Option<(SharedForecast, StoreClock)>,
    /// Where the setup view reads each camera (the daemon; replay and evaluation have none).
    pub taps: Option<Arc<tap::Taps>>,
}

pub struct Running {
    pub source_id: String,
    pub progress: Arc<SourceProgress>,
    pub handle: JoinHandle<anyhow::Result<()>>,
}

/// Models every camera of the box shares, loaded once, when the first camera needs them: one
/// people detector (one copy of the weights per input shape) for four cameras, not four.
#[derive(Default)]
pub struct SharedModels {
    detector: std::sync::Mutex<Option<Arc<PeopleDetector>>>,
}

impl SharedModels {
    /// `yolox-nano f16`: the detector loaded and its arithmetic; `None` before a camera
    /// needed it.
    pub fn label(&self) -> Option<String> {
        let slot = self.detector.lock().unwrap_or_else(|p| p.into_inner());
        slot.as_ref()
            .map(|d| format!("{} {}", d.name(), d.arith().name()))
    }

    /// The people detector of `cfg`, loaded on first use (sha256-checked, precision chosen).
    pub fn detector(&self, cfg: &Config) -> anyhow::Result<Arc<PeopleDetector>> {
        let mut slot = self.detector.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(d) = slot.as_ref() {
            return Ok(d.clone());
        }
        let m = &cfg.models;
        let (d, why) = PeopleDetector::load(
            &m.detector,
            &m.dir,
            m.input_size.map(|s| s as usize),
            analyser::LOW_SCORE,
            m.nms_iou,
            analyser::precision(m),
        )?;
        tracing::info!(detector = %m.detector, input = d.size(), "detector precision: {why}");
        *slot = Some(d.clone());
        Ok(d)
    }
}
