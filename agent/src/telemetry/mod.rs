//! What the parts of the agent report about themselves: per-source counters (one definition
//! of a source being up), uplink counters, the latency histogram and the point-in-time
//! [`Snapshot`] that the status screen, metrics, health and the watchdog read.
//! A leaf: it imports only the clock.

mod alerts;
mod snapshot;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use vitrine_signals::cadence::Step;

pub use alerts::{AlertLatency, ALERT_LATENCY};
pub use snapshot::{Broker, Snapshot, SourceStatus};

/// The setup view's notice on the status screen (`vitrine setup`'s address and one-time
/// token) and until when it shows (`clock::mono_ms`; the setup command renews it while it runs).
#[derive(Debug, Default)]
pub struct SetupNotice(std::sync::Mutex<Option<(String, u64)>>);

impl SetupNotice {
    pub fn set(&self, text: Option<String>, until_mono_ms: u64) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = text.map(|t| (t, until_mono_ms));
    }

    /// The notice, if it has not expired at `now_mono_ms`.
    pub fn get(&self, now_mono_ms: u64) -> Option<String> {
        let g = self.0.lock().unwrap_or_else(|p| p.into_inner());
        g.as_ref()
            .filter(|(_, until)| now_mono_ms < *until)
            .map(|(t, _)| t.clone())
    }
}

/// The sources running now and those that could not be started; replaced as a whole when a
/// reload restarts sources. Observers and the uplink's health message read it.
#[derive(Debug, Default)]
pub struct SourceList(std::sync::RwLock<Listing>);

#[derive(Debug, Default, Clone)]
pub struct Listing {
    pub running: Vec<(String, std::sync::Arc<SourceProgress>)>,
    pub failed: Vec<String>,
    /// The people detector loaded and the arithmetic it runs in (`yolox-nano f16`), once a
    /// camera has needed it.
    pub models: Option<String>,
}

impl SourceList {
    pub fn new(listing: Listing) -> SourceList {
        SourceList(std::sync::RwLock::new(listing))
    }

    pub fn get(&self) -> Listing {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn set(&self, listing: Listing) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = listing;
    }
}

/// Upper bounds of the latency buckets, milliseconds (a Pi 4 runs a detector in 50–500 ms).
pub const BUCKETS_MS: [u64; 12] = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000];

/// A fixed-bucket latency histogram of atomics: lock-free to observe from analysis threads.
#[derive(Debug, Default)]
pub struct LatencyHistogram {
    /// Per-bucket (not cumulative) counts; the last slot is +Inf.
    buckets: [AtomicU64; BUCKETS_MS.len() + 1],
    sum_us: AtomicU64,
}

impl LatencyHistogram {
    pub fn observe(&self, took: Duration) {
        let ms = took.as_secs_f64() * 1000.0;
        let i = BUCKETS_MS
            .iter()
            .position(|b| ms <= *b as f64)
            .unwrap_or(BUCKETS_MS.len());
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.sum_us
            .fetch_add(took.as_micros() as u64, Ordering::Relaxed);
    }

    /// (sum in seconds, count, per-bucket counts with upper bounds in seconds). The
    /// encoder makes them cumulative, as the exposition format wants.
    pub fn read(&self) -> (f64, u64, Vec<(f64, u64)>) {
        let mut total = 0;
        let mut out = Vec::with_capacity(BUCKETS_MS.len() + 1);
        for (i, b) in self.buckets.iter().enumerate() {
            let n = b.load(Ordering::Relaxed);
            total += n;
            let upper = BUCKETS_MS
                .get(i)
                .map(|ms| *ms as f64 / 1000.0)
                .unwrap_or(f64::INFINITY);
            out.push((upper, n));
        }
        let sum = self.sum_us.load(Ordering::Relaxed) as f64 / 1e6;
        (sum, total, out)
    }
}

/// Delivery counters (for logs, health and tests).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct UplinkStats {
    pub sent: u64,
    pub acked: u64,
    pub rejected: u64,
    pub connections: u64,
    pub connected: bool,
}

/// Live counters of one source, read by progress display and status.
#[derive(Debug, Default)]
pub struct SourceProgress {
    pub media_ms: AtomicU64,
    pub analysed: AtomicU64,
    pub dropped: AtomicU64,
    pub windows: AtomicU64,
    pub duration_ms: AtomicU64,
    pub done: AtomicBool,
    /// Total inference time, microseconds, over `inferences` model runs.
    pub infer_us: AtomicU64,
    /// Frames on which the model actually ran (not those reused or predicted).
    pub inferences: AtomicU64,
    /// Inference latency distribution (the metrics endpoint's histogram).
    pub latency: LatencyHistogram,
    /// `status::mono_ms()` of the last step: the watchdog's evidence of progress.
    pub heartbeat_ms: AtomicU64,
    /// Confirmed tracks in view after the last analysed frame (cameras).
    pub occupancy: AtomicU64,
    /// False while a live source is lost and being reopened (files: always true).
    pub connected: AtomicBool,
    /// Times a live source was lost (unplugged, stream closed or stalled).
    pub lost: AtomicU64,
    /// Samples a microphone dropped because analysis fell behind (counted in its ring).
    pub overflowed: AtomicU64,
    /// Camera frames analysed without the detector: unchanged since the last detection
    /// (motion gating), or between detections (`detect_every`, tracker prediction).
    pub skipped_still: AtomicU64,
    pub skipped_cadence: AtomicU64,
    pub kind: &'static str,
    /// The decoder a compressed stream goes through (`"vaapi (hardware, via ffmpeg)"`).
    decoder: std::sync::Mutex<Option<&'static str>>,
}

impl SourceProgress {
    pub fn new(kind: &'static str) -> SourceProgress {
        let p = SourceProgress {
            kind,
            connected: AtomicBool::new(true),
            ..Default::default()
        };
        p.beat();
        p
    }

    /// The decoder the source uses now (it changes when a hardware decoder is given up).
    pub fn set_decoder(&self, d: Option<&'static str>) {
        let mut g = self.decoder.lock().unwrap_or_else(|p| p.into_inner());
        if *g != d {
            *g = d;
        }
    }

    pub fn decoder(&self) -> Option<&'static str> {
        *self.decoder.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Record one inference and its latency.
    pub fn inferred(&self, took: std::time::Duration) {
        self.infer_us
            .fetch_add(took.as_micros() as u64, Ordering::Relaxed);
        self.latency.observe(took);
        self.inferences.fetch_add(1, Ordering::Relaxed);
        self.analysed.fetch_add(1, Ordering::Relaxed);
        self.beat();
    }

    /// A frame analysed without running the detector.
    pub fn skipped(&self, step: Step) {
        match step {
            Step::Reuse => &self.skipped_still,
            _ => &self.skipped_cadence,
        }
        .fetch_add(1, Ordering::Relaxed);
        self.analysed.fetch_add(1, Ordering::Relaxed);
        self.beat();
    }

    /// The one definition of a source being up: running (not finished) and, for a live
    /// source, connected. Health, status, metrics and the display all ask this.
    pub fn is_up(&self) -> bool {
        !self.done.load(Ordering::Relaxed) && self.connected.load(Ordering::Relaxed)
    }

    pub fn analysed(&self) -> u64 {
        self.analysed.load(Ordering::Relaxed)
    }

    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Mean model latency over the frames the model ran on (frames reused by motion gating
    /// or predicted between detections took no inference and do not dilute it).
    pub fn inference_ms_mean(&self) -> Option<f64> {
        let n = self.inferences.load(Ordering::Relaxed);
        (n > 0).then(|| self.infer_us.load(Ordering::Relaxed) as f64 / n as f64 / 1000.0)
    }

    pub fn beat(&self) {
        self.heartbeat_ms
            .store(crate::clock::mono_ms(), Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lost_live_source_is_not_up() {
        let p = SourceProgress::new("camera");
        assert!(p.is_up());
        p.connected.store(false, Ordering::Relaxed);
        assert!(!p.is_up(), "unplugged camera, reopening");
        p.connected.store(true, Ordering::Relaxed);
        p.done.store(true, Ordering::Relaxed);
        assert!(!p.is_up(), "finished source");
    }

    #[test]
    fn inference_mean_ignores_frames_without_inference() {
        let p = SourceProgress::new("camera");
        assert_eq!(p.inference_ms_mean(), None);
        p.inferred(Duration::from_millis(40));
        for _ in 0..99 {
            p.skipped(Step::Reuse);
        }
        assert_eq!(p.analysed(), 100);
        assert_eq!(p.inference_ms_mean(), Some(40.0));
    }
}
