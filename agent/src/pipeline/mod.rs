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
pub mod queue;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context;
use vitrine_config::{AudioSource as AudioCfg, Camera, Config, Microphone, VideoSource};
use vitrine_models::{AudioEvents, FaceAnalyser, ModelError, PeopleDetector, Vad};
use vitrine_sensors::audio_file::AudioFile;
use vitrine_sensors::live::{Backoff, LiveRequest};
use vitrine_sensors::video_file::VideoFile;
use vitrine_sensors::{AudioSource, FrameSource, Pacing, SourceError};
use vitrine_signals::audio::rms;
use vitrine_signals::{AudioSignals, Body, CameraSignals, Windower};

use crate::telemetry::SourceProgress;
use analyser::CameraAnalyser;
use queue::{BoundedQueue, Overflow, Popped};

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
            epoch: Instant::now(),
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
}

pub struct Running {
    pub source_id: String,
    pub progress: Arc<SourceProgress>,
    pub handle: JoinHandle<anyhow::Result<()>>,
}

/// Opens a live camera (again): what the reader thread calls after each loss.
type Opener = Box<dyn FnMut() -> Result<Box<dyn FrameSource>, SourceError> + Send>;

/// How a camera's frames arrive.
enum Input {
    /// A recording, opened now (a missing file is an error at start).
    File(VideoFile),
    /// A live camera, opened (and reopened) by the reader thread.
    Live(Opener),
}

#[cfg_attr(
    not(all(feature = "v4l", feature = "rtsp")),
    allow(unused_variables, unused_assignments, unused_mut)
)]
fn live_camera(cam: &Camera, opts: &Options) -> anyhow::Result<Opener> {
    let mut req = LiveRequest::new(cam.fps, cam.size, opts.epoch);
    req.format = cam
        .format
        .as_deref()
        .and_then(vitrine_sensors::convert::PixelFormat::parse);
    match &cam.source {
        #[cfg(feature = "v4l")]
        VideoSource::Device(d) => {
            let d = d.clone();
            Ok(Box::new(move || {
                vitrine_sensors::v4l2::V4l2Camera::open(&d, &req)
                    .map(|c| Box::new(c) as Box<dyn FrameSource>)
            }))
        }
        #[cfg(feature = "rtsp")]
        VideoSource::Rtsp(u) => {
            let u = u.clone();
            let t = match cam.rtsp_transport {
                vitrine_config::RtspTransport::Tcp => vitrine_sensors::rtsp::RtspTransport::Tcp,
                vitrine_config::RtspTransport::Udp => vitrine_sensors::rtsp::RtspTransport::Udp,
            };
            Ok(Box::new(move || {
                vitrine_sensors::rtsp::RtspCamera::open(&u, t, &req)
                    .map(|c| Box::new(c) as Box<dyn FrameSource>)
            }))
        }
        #[allow(unreachable_patterns)]
        other => anyhow::bail!(
            "camera {:?}: {} capture is not in this build (built without the `{}` feature)",
            cam.id,
            match other {
                VideoSource::Rtsp(_) => "RTSP",
                _ => "V4L2",
            },
            match other {
                VideoSource::Rtsp(_) => "rtsp",
                _ => "v4l",
            }
        ),
    }
}

/// The reopen bookkeeping every live source shares: backoff between attempts, the up/down flag
/// and loss counter in its progress, and logs that do not flood the journal (a failing open is
/// logged on attempts 1, 2, 4, 8 ...: a camera missing all night stays readable).
struct Reopen<'a> {
    id: &'a str,
    /// "camera" or "microphone", for the logs.
    what: &'static str,
    p: &'a SourceProgress,
    backoff: Backoff,
    failures: u64,
}

impl<'a> Reopen<'a> {
    fn new(id: &'a str, what: &'static str, p: &'a SourceProgress) -> Reopen<'a> {
        p.connected.store(false, Ordering::Relaxed);
        Reopen {
            id,
            what,
            p,
            backoff: Backoff::new(MAX_BACKOFF),
            failures: 0,
        }
    }

    fn opened(&mut self) {
        if self.failures > 0 {
            tracing::info!(source = %self.id, attempts = self.failures, "{} is back", self.what);
        }
        self.failures = 0;
        self.backoff.reset();
        self.p.connected.store(true, Ordering::Relaxed);
    }

    fn failed(&mut self, e: &dyn std::fmt::Display) {
        self.failures += 1;
        if self.failures.is_power_of_two() {
            tracing::error!(source = %self.id, attempts = self.failures, error = %e, "{} not available; retrying", self.what);
        }
    }

    /// The source stopped delivering: `Some(why)` if it was lost (then reopen), `None` if the
    /// agent is stopping. Returns whether to reopen.
    fn ended(&mut self, lost: Option<String>) -> bool {
        self.p.connected.store(false, Ordering::Relaxed);
        match lost {
            None => false,
            Some(e) => {
                self.p.lost.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(source = %self.id, error = %e, "{} lost; reopening (the outage shows as blind time in coverage)", self.what);
                true
            }
        }
    }

    /// Wait for the next attempt in small steps, calling `tick` (closing windows on the clock)
    /// and stamping the heartbeat meanwhile; false if asked to stop.
    fn wait(
        &mut self,
        stop: &AtomicBool,
        tick: &mut dyn FnMut() -> anyhow::Result<()>,
    ) -> anyhow::Result<bool> {
        let until = Instant::now() + self.backoff.next_wait();
        while Instant::now() < until {
            if stop.load(Ordering::Relaxed) {
                return Ok(false);
            }
            tick()?;
            self.p.beat();
            std::thread::sleep(Duration::from_millis(100).min(until - Instant::now()));
        }
        Ok(!stop.load(Ordering::Relaxed))
    }
}

/// The reader of a live camera: open, read until lost, reopen with backoff; never gives up
/// (a camera plugged in an hour later is picked up), stops only when asked.
fn live_reader(
    id: &str,
    mut open: Opener,
    q: &BoundedQueue<vitrine_sensors::Frame>,
    stop: &AtomicBool,
    p: &SourceProgress,
) {
    let mut reopen = Reopen::new(id, "camera", p);
    while !stop.load(Ordering::Relaxed) {
        match open() {
            Ok(mut src) => {
                reopen.opened();
                let lost = loop {
                    if stop.load(Ordering::Relaxed) {
                        break None;
                    }
                    match src.next_frame() {
                        Ok(Some(f)) => {
                            if !q.push(f) {
                                break None;
                            }
                        }
                        Ok(None) => break Some("the stream ended".to_string()),
                        Err(e) => break Some(e.to_string()),
                    }
                };
                drop(src);
                if !reopen.ended(lost) {
                    break;
                }
            }
            Err(e) => reopen.failed(&e),
        }
        // The analysis thread closes this camera's windows on its own tick.
        if !matches!(reopen.wait(stop, &mut || Ok(())), Ok(true)) {
            break;
        }
    }
    q.close();
}

/// Models every camera of the box shares, loaded once, when the first camera needs them: one
/// people detector (one copy of the weights per input shape) for four cameras, not four.
#[derive(Default)]
pub struct SharedModels {
    detector: std::sync::Mutex<Option<Arc<PeopleDetector>>>,
}

impl SharedModels {
    /// The people detector of `cfg`, loaded on first use (sha256-checked, variant chosen).
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
            analyser::variant(m),
        )?;
        tracing::info!(detector = %m.detector, input = d.size(), "detector variant: {why}");
        *slot = Some(d.clone());
        Ok(d)
    }
}

/// Start a camera: the detector is loaded (and a recording opened) before the thread starts,
/// so a missing model or file is reported at once, by name. A live camera is opened by its
/// reader thread and retried until it answers.
pub fn start_camera(
    cfg: &Config,
    cam: &Camera,
    input: Option<&Path>,
    opts: &Options,
    models: &SharedModels,
    tx: SyncSender<WindowOut>,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<Running> {
    let path: Option<PathBuf> = match (input, &cam.source) {
        (Some(p), _) => Some(p.to_path_buf()),
        (None, VideoSource::File(p)) => Some(p.clone()),
        (None, _) => None,
    };
    let m = &cfg.models;
    let detector = models
        .detector(cfg)
        .with_context(|| format!("camera {:?}", cam.id))?;
    // Attention needs faces only where displays are configured.
    let faces = if cam.displays.is_empty() {
        None
    } else {
        let (f, why) =
            FaceAnalyser::load_variant(&m.faces, &m.head_pose, &m.dir, analyser::variant(m))
                .with_context(|| format!("camera {:?}: attention to its displays", cam.id))?;
        tracing::info!(camera = %cam.id, model = %m.faces, "face detector variant: {why}");
        Some(f)
    };
    let source = match &path {
        Some(path) => {
            let open = || {
                let size = analyser::decode_size(cam, &detector, path)?;
                VideoFile::open(path, cam.fps, size, opts.pacing)
            };
            Input::File(open().with_context(|| format!("camera {:?}", cam.id))?)
        }
        None => Input::Live(live_camera(cam, opts)?),
    };
    let live = matches!(source, Input::Live(_));
    let (fw, fh) = match &source {
        Input::File(f) => (f.info().width, f.info().height),
        Input::Live(_) => cam.size.unwrap_or((640, 480)),
    };
    let session = detector
        .session(fw as usize, fh as usize)
        .with_context(|| format!("camera {:?}", cam.id))?;
    let progress = Arc::new(SourceProgress::new("camera"));
    if let Input::File(f) = &source {
        progress
            .duration_ms
            .store(f.info().duration_ms.unwrap_or(0), Ordering::Relaxed);
    }
    let policy = if opts.pacing == Pacing::Realtime || live {
        Overflow::DropOldest
    } else {
        Overflow::Block
    };
    let queue = Arc::new(BoundedQueue::new(FRAME_QUEUE, policy));
    let (q, st, rp) = (queue.clone(), stop.clone(), progress.clone());
    let id = cam.id.clone();
    let rid = id.clone();
    let reader = std::thread::Builder::new()
        .name(format!("read-{id}"))
        .spawn(move || -> Result<(), SourceError> {
            let mut source = match source {
                Input::File(f) => f,
                Input::Live(open) => {
                    live_reader(&rid, open, &q, &st, &rp);
                    return Ok(());
                }
            };
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
    let mut analyser = CameraAnalyser::new(cam, m, session, faces);
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
            loop {
                let (frame, dropped) = match queue.pop_timeout(TICK) {
                    Popped::Item(f, d) => (f, d),
                    Popped::Closed => break,
                    Popped::Timeout => {
                        if live {
                            // No frame (camera lost, or slower than the tick): windows still
                            // close on time, the analysis thread is alive.
                            close(analyser.signals_mut(), windower.advance(opts.now_ms()))?;
                            p.beat();
                        }
                        if stop.load(Ordering::Relaxed) {
                            queue.close();
                        }
                        continue;
                    }
                };
                for t in dropped {
                    let t = opts.base_ms + t;
                    close(analyser.signals_mut(), windower.advance(t))?;
                    analyser.signals_mut().frame_dropped(t);
                    p.dropped.fetch_add(1, Ordering::Relaxed);
                }
                let t = opts.base_ms + frame.t_ms;
                close(analyser.signals_mut(), windower.advance(t))?;
                let stepped = analyser.step(t, &frame)?;
                drop(frame);
                match stepped.inference {
                    Some(took) => p.inferred(took),
                    None => p.skipped(stepped.step),
                }
                p.occupancy
                    .store(analyser.signals().people_now() as u64, Ordering::Relaxed);
                p.media_ms.store(t - opts.base_ms, Ordering::Relaxed);
                if stop.load(Ordering::Relaxed) {
                    queue.close();
                }
            }
            let signals = analyser.signals_mut();
            signals.finish();
            if live {
                // The live timeline ends now, not at the last frame.
                close(signals, windower.advance(opts.now_ms()))?;
            }
            // The window in progress is published too (its coverage shows the part not seen).
            close(signals, windower.current().into_iter().collect())?;
            p.done.store(true, Ordering::Relaxed);
            join_reader(reader, live)
        })?;
    Ok(Running {
        source_id: cam.id.clone(),
        progress,
        handle,
    })
}

/// Join a reader thread. A live reader may sit in a driver call that has no timeout (a V4L2
/// camera that stopped sending): after 2 s it is left to end with the process.
fn join_reader(reader: JoinHandle<Result<(), SourceError>>, live: bool) -> anyhow::Result<()> {
    if live {
        let until = Instant::now() + Duration::from_secs(2);
        while !reader.is_finished() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(20));
        }
        if !reader.is_finished() {
            tracing::warn!(
                "a camera reader did not stop within 2 s (blocked in its driver); leaving it"
            );
            return Ok(());
        }
    }
    match reader.join() {
        Ok(r) => r.map_err(anyhow::Error::from),
        Err(_) => anyhow::bail!("reader thread panicked"),
    }
}

/// A microphone's input: a recording, or a live device (reopened after loss).
enum AudioInput {
    File(Box<AudioFile>),
    #[cfg(feature = "alsa")]
    Live(String),
}

pub fn start_microphone(
    cfg: &Config,
    mic: &Microphone,
    input: Option<&Path>,
    opts: &Options,
    tx: SyncSender<WindowOut>,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<Running> {
    let m = &cfg.models;
    let mut vad = Vad::load(&m.vad, &m.dir).with_context(|| format!("microphone {:?}", mic.id))?;
    let file_audio = |p: &Path| -> anyhow::Result<AudioInput> {
        Ok(AudioInput::File(Box::new(
            AudioFile::open(p, opts.pacing).with_context(|| format!("microphone {:?}", mic.id))?,
        )))
    };
    let source = match (input, &mic.source) {
        (Some(p), _) => file_audio(p)?,
        (None, AudioCfg::File(p)) => file_audio(p)?,
        #[cfg(feature = "alsa")]
        (None, AudioCfg::Device(d)) => AudioInput::Live(d.clone()),
        #[cfg(not(feature = "alsa"))]
        (None, AudioCfg::Device(d)) => anyhow::bail!(
            "microphone {:?}: live capture ({d}) is not in this build (built without the `alsa` feature)",
            mic.id
        ),
    };
    let progress = Arc::new(SourceProgress::new("microphone"));
    #[allow(irrefutable_let_patterns)] // without the `alsa` feature there are only files
    if let AudioInput::File(f) = &source {
        progress
            .duration_ms
            .store(f.duration_ms().unwrap_or(0), Ordering::Relaxed);
    }
    let mut signals = AudioSignals::new(m.vad_threshold);
    let mut sounds = match &m.audio_events {
        None => None,
        Some(name) => match AudioEvents::load(name, &m.dir) {
            Ok(a) => Some(a),
            // Optional model (no public upstream): without it the microphone still reports
            // speech and level; the windows simply carry no `sounds`.
            Err(e @ ModelError::Missing { .. }) => {
                tracing::warn!(microphone = %mic.id, "sound categories OFF: {e}; set `audio_events = \"none\"` in [models] to silence this");
                None
            }
            Err(e) => return Err(anyhow::Error::new(e).context(format!("microphone {:?}", mic.id))),
        },
    };
    if sounds.is_some() {
        signals.enable_sounds();
    }
    let (opts, p, id) = (opts.clone(), progress.clone(), mic.id.clone());
    let handle = std::thread::Builder::new()
        .name(format!("mic-{id}"))
        .spawn(move || -> anyhow::Result<()> {
            let mut windower = Windower::new(opts.window_secs);
            let window_s = f64::from(opts.window_secs);
            let mut close =
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
            type Close<'a> =
                dyn FnMut(&mut AudioSignals, Vec<(u64, u64)>) -> anyhow::Result<()> + 'a;
            let mut analyse = |signals: &mut AudioSignals,
                               windower: &mut Windower,
                               close: &mut Close<'_>,
                               block: vitrine_sensors::AudioBlock|
             -> anyhow::Result<()> {
                let t = opts.base_ms + block.t_ms;
                close(signals, windower.advance(t))?;
                let started = std::time::Instant::now();
                let prob = vad.process(&block.samples)?;
                p.inferred(started.elapsed());
                let seconds =
                    block.samples.len() as f64 / f64::from(vitrine_models::vad::SAMPLE_RATE);
                signals.observe(seconds, prob, rms(&block.samples));
                if let Some(a) = sounds.as_mut() {
                    for sound in a.push(&block.samples)? {
                        signals.observe_sound(
                            vitrine_models::audio_events::SECONDS_PER_CLASSIFICATION,
                            sound,
                        );
                    }
                }
                p.media_ms.store(block.t_ms, Ordering::Relaxed);
                Ok(())
            };
            match source {
                AudioInput::File(mut source) => {
                    while !stop.load(Ordering::Relaxed) {
                        let Some(block) = source.next_block()? else {
                            break;
                        };
                        analyse(&mut signals, &mut windower, &mut close, block)?;
                    }
                }
                #[cfg(feature = "alsa")]
                AudioInput::Live(device) => {
                    live_microphone(&id, &device, &opts, &stop, &p, &mut |block| match block {
                        Some(b) => analyse(&mut signals, &mut windower, &mut close, b),
                        None => close(&mut signals, windower.advance(opts.now_ms())),
                    })?;
                    close(&mut signals, windower.advance(opts.now_ms()))?;
                }
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

/// Capture from a live microphone until asked to stop, reopening it with backoff after loss.
/// `each` gets every block, and `None` on a clock tick while the device is down.
#[cfg(feature = "alsa")]
fn live_microphone(
    id: &str,
    device: &str,
    opts: &Options,
    stop: &AtomicBool,
    p: &SourceProgress,
    each: &mut dyn FnMut(Option<vitrine_sensors::AudioBlock>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    use vitrine_sensors::mic::{Microphone as Mic, Ring};
    let mut ring = Some(Ring::new());
    let mut reopen = Reopen::new(id, "microphone", p);
    while !stop.load(Ordering::Relaxed) {
        let Some(r) = ring.take() else { break };
        match Mic::open(device, r, opts.epoch) {
            Ok(mut mic) => {
                reopen.opened();
                let lost = loop {
                    if stop.load(Ordering::Relaxed) {
                        break None;
                    }
                    match mic.next_block() {
                        Ok(Some(b)) => {
                            p.overflowed.store(mic.overflowed(), Ordering::Relaxed);
                            each(Some(b))?;
                        }
                        Ok(None) => break Some("the stream ended".to_string()),
                        Err(e) => break Some(e.to_string()),
                    }
                };
                ring = Some(mic.close());
                if !reopen.ended(lost) {
                    break;
                }
            }
            Err((e, r)) => {
                ring = Some(r);
                reopen.failed(&e);
            }
        }
        // While the device is down, windows still close on the clock.
        if !reopen.wait(stop, &mut || each(None))? {
            break;
        }
    }
    Ok(())
}
