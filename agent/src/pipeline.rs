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

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::Arc;
use std::thread::JoinHandle;

use anyhow::Context;
use vitrine_config::{AudioSource as AudioCfg, Camera, Config, Microphone, VideoSource};
use vitrine_models::{Detector, Vad};
use vitrine_sensors::audio_file::AudioFile;
use vitrine_sensors::video_file::VideoFile;
use vitrine_sensors::{AudioSource, FrameSource, Pacing};
use vitrine_signals::audio::rms;
use vitrine_signals::{AudioSignals, Body, CameraSignals, Windower};

use crate::queue::{BoundedQueue, Overflow};

/// Capacity of a camera's frame queue (frames held between reader and analysis).
pub const FRAME_QUEUE: usize = 2;
/// Capacity of the closed-window channel shared by all sources.
pub const WINDOW_CHANNEL: usize = 64;

/// A closed window of one source, before it gets its sequence number.
#[derive(Debug, Clone)]
pub struct WindowOut {
    pub source_id: String,
    pub start_ms: u64,
    pub end_ms: u64,
    pub body: Body,
}

impl WindowOut {
    /// The published event for this window, numbered `seq`, for the device of `cfg`.
    pub fn into_event(self, cfg: &Config, seq: u64) -> vitrine_signals::WindowEvent {
        let meta = vitrine_signals::event::EventMeta {
            device_id: &cfg.device.id,
            store_id: &cfg.device.store_id,
            source_id: &self.source_id,
            k_min: cfg.privacy.k_min,
        };
        vitrine_signals::WindowEvent::new(&meta, seq, self.start_ms, self.end_ms, self.body)
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
        }
    }
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
    /// Total inference time, microseconds (mean latency = this / analysed).
    pub infer_us: AtomicU64,
    /// Inference latency distribution (the metrics endpoint's histogram).
    pub latency: crate::metrics::LatencyHistogram,
    /// `status::mono_ms()` of the last step: the watchdog's evidence of progress.
    pub heartbeat_ms: AtomicU64,
    /// Confirmed tracks in view after the last analysed frame (cameras).
    pub occupancy: AtomicU64,
    pub kind: &'static str,
}

impl SourceProgress {
    pub fn new(kind: &'static str) -> SourceProgress {
        let p = SourceProgress {
            kind,
            ..Default::default()
        };
        p.beat();
        p
    }

    /// Record one inference and its latency.
    pub fn inferred(&self, took: std::time::Duration) {
        self.infer_us
            .fetch_add(took.as_micros() as u64, Ordering::Relaxed);
        self.latency.observe(took);
        self.analysed.fetch_add(1, Ordering::Relaxed);
        self.beat();
    }

    pub fn beat(&self) {
        self.heartbeat_ms
            .store(crate::status::mono_ms(), Ordering::Relaxed);
    }
}

#[derive(Debug, Clone)]
pub struct Options {
    /// Wall-clock time (Unix ms) of media time 0.
    pub base_ms: u64,
    pub pacing: Pacing,
    pub window_secs: u32,
    pub k_min: u32,
}

pub struct Running {
    pub source_id: String,
    pub progress: Arc<SourceProgress>,
    pub handle: JoinHandle<anyhow::Result<()>>,
}

/// Start a camera: the detector is loaded and the source opened before the thread starts, so
/// a missing model or file is reported at once, by name.
pub fn start_camera(
    cfg: &Config,
    cam: &Camera,
    input: Option<&Path>,
    opts: &Options,
    tx: SyncSender<WindowOut>,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<Running> {
    let path: PathBuf = match (input, &cam.source) {
        (Some(p), _) => p.to_path_buf(),
        (None, VideoSource::File(p)) => p.clone(),
        (None, VideoSource::Device(d)) => anyhow::bail!("camera {:?}: live V4L2 capture ({}) is not in this build yet; use `file = ...` or `vitrine replay`", cam.id, d.display()),
        (None, VideoSource::Rtsp(_)) => anyhow::bail!("camera {:?}: RTSP capture is not in this build yet; use `file = ...` or `vitrine replay`", cam.id),
    };
    let m = &cfg.models;
    let mut detector = Detector::load(&m.detector, &m.dir, m.detector_threshold, m.nms_iou)
        .with_context(|| format!("camera {:?}", cam.id))?;
    let mut source = VideoFile::open(&path, cam.fps, cam.size, opts.pacing)
        .with_context(|| format!("camera {:?}", cam.id))?;
    let progress = Arc::new(SourceProgress::new("camera"));
    progress
        .duration_ms
        .store(source.info().duration_ms.unwrap_or(0), Ordering::Relaxed);
    let policy = if opts.pacing == Pacing::Realtime {
        Overflow::DropOldest
    } else {
        Overflow::Block
    };
    let queue = Arc::new(BoundedQueue::new(FRAME_QUEUE, policy));
    let (q, st) = (queue.clone(), stop.clone());
    let id = cam.id.clone();
    let reader = std::thread::Builder::new()
        .name(format!("read-{id}"))
        .spawn(move || {
            let result = loop {
                if st.load(Ordering::Relaxed) {
                    break Ok(());
                }
                match source.next_frame() {
                    Ok(Some(f)) => {
                        if !q.push(f) {
                            break Ok(());
                        }
                    }
                    Ok(None) => break Ok(()),
                    Err(e) => break Err(e),
                }
            };
            q.close();
            result
        })?;
    let mut signals = CameraSignals::new(cam);
    let (opts, p) = (opts.clone(), progress.clone());
    let handle = std::thread::Builder::new()
        .name(format!("cam-{id}"))
        .spawn(move || -> anyhow::Result<()> {
            let mut windower = Windower::new(opts.window_secs);
            let send = |w: WindowOut| {
                tx.send(w)
                    .map_err(|_| anyhow::anyhow!("event consumer stopped"))
            };
            let close =
                |signals: &mut CameraSignals, windows: Vec<(u64, u64)>| -> anyhow::Result<()> {
                    for (s, e) in windows {
                        let body = Body::Camera(signals.take_window(s, e, opts.k_min));
                        p.windows.fetch_add(1, Ordering::Relaxed);
                        send(WindowOut {
                            source_id: id.clone(),
                            start_ms: s,
                            end_ms: e,
                            body,
                        })?;
                    }
                    Ok(())
                };
            while let Some((frame, dropped)) = queue.pop() {
                for t in dropped {
                    let t = opts.base_ms + t;
                    close(&mut signals, windower.advance(t))?;
                    signals.frame_dropped(t);
                    p.dropped.fetch_add(1, Ordering::Relaxed);
                }
                let t = opts.base_ms + frame.t_ms;
                close(&mut signals, windower.advance(t))?;
                let started = std::time::Instant::now();
                let dets =
                    detector.detect(&frame.rgb, frame.width as usize, frame.height as usize)?;
                p.inferred(started.elapsed());
                drop(frame);
                let update = signals.observe(t, &dets);
                p.occupancy
                    .store(update.tracks.len() as u64, Ordering::Relaxed);
                p.media_ms.store(t - opts.base_ms, Ordering::Relaxed);
                if stop.load(Ordering::Relaxed) {
                    queue.close();
                }
            }
            signals.finish();
            // The window in progress is published too (its coverage shows the part not seen).
            close(&mut signals, windower.current().into_iter().collect())?;
            p.done.store(true, Ordering::Relaxed);
            match reader.join() {
                Ok(r) => r.map_err(anyhow::Error::from),
                Err(_) => anyhow::bail!("reader thread panicked"),
            }
        })?;
    Ok(Running {
        source_id: cam.id.clone(),
        progress,
        handle,
    })
}

pub fn start_microphone(
    cfg: &Config,
    mic: &Microphone,
    input: Option<&Path>,
    opts: &Options,
    tx: SyncSender<WindowOut>,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<Running> {
    let path: PathBuf = match (input, &mic.source) {
        (Some(p), _) => p.to_path_buf(),
        (None, AudioCfg::File(p)) => p.clone(),
        (None, AudioCfg::Device(d)) => anyhow::bail!("microphone {:?}: live capture ({d}) is not in this build yet; use `file = ...` or `vitrine replay`", mic.id),
    };
    let m = &cfg.models;
    let mut vad = Vad::load(&m.vad, &m.dir).with_context(|| format!("microphone {:?}", mic.id))?;
    let mut source =
        AudioFile::open(&path, opts.pacing).with_context(|| format!("microphone {:?}", mic.id))?;
    let progress = Arc::new(SourceProgress::new("microphone"));
    progress
        .duration_ms
        .store(source.duration_ms().unwrap_or(0), Ordering::Relaxed);
    let mut signals = AudioSignals::new(m.vad_threshold);
    let (opts, p, id) = (opts.clone(), progress.clone(), mic.id.clone());
    let handle = std::thread::Builder::new()
        .name(format!("mic-{id}"))
        .spawn(move || -> anyhow::Result<()> {
            let mut windower = Windower::new(opts.window_secs);
            let window_s = f64::from(opts.window_secs);
            let close =
                |signals: &mut AudioSignals, windows: Vec<(u64, u64)>| -> anyhow::Result<()> {
                    for (s, e) in windows {
                        let body = Body::Microphone(signals.take_window(window_s));
                        p.windows.fetch_add(1, Ordering::Relaxed);
                        tx.send(WindowOut {
                            source_id: id.clone(),
                            start_ms: s,
                            end_ms: e,
                            body,
                        })
                        .map_err(|_| anyhow::anyhow!("event consumer stopped"))?;
                    }
                    Ok(())
                };
            while !stop.load(Ordering::Relaxed) {
                let Some(block) = source.next_block()? else {
                    break;
                };
                let t = opts.base_ms + block.t_ms;
                close(&mut signals, windower.advance(t))?;
                let started = std::time::Instant::now();
                let prob = vad.process(&block.samples)?;
                p.inferred(started.elapsed());
                let seconds =
                    block.samples.len() as f64 / f64::from(vitrine_models::vad::SAMPLE_RATE);
                signals.observe(seconds, prob, rms(&block.samples));
                p.media_ms.store(block.t_ms, Ordering::Relaxed);
            }
            close(&mut signals, windower.current().into_iter().collect())?;
            p.done.store(true, Ordering::Relaxed);
            Ok(())
        })?;
    Ok(Running {
        source_id: mic.id.clone(),
        progress,
        handle,
    })
}
