//! A camera's two threads: the reader (a recording, or a live camera reopened after loss)
//! and the analysis (the frame step, windows closed on time).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context;
use vitrine_config::{AlertOn, Camera, Config, VideoSource};
use vitrine_models::{ExpressionReader, FaceAnalyser};
use vitrine_sensors::video_file::VideoFile;
use vitrine_sensors::{FrameSource, Pacing, SourceError};
use vitrine_signals::forecast::Measure;
use vitrine_signals::occupancy::EntranceCount;
use vitrine_signals::{Body, CameraSignals, Windower};

use super::analyser::{self, CameraAnalyser};
use super::live::{live_camera, live_reader, Opener};
use super::queue::{BoundedQueue, Overflow, Popped};
use super::*;
use crate::telemetry::SourceProgress;

/// How a camera's frames arrive.
enum Input {
    /// A recording, opened now (a missing file is an error at start).
    File(VideoFile),
    /// A live camera, opened (and reopened) by the reader thread.
    Live(Opener),
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
    tx: SyncSender<Record>,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<Running> {
    let detector = models
        .detector(cfg)
        .with_context(|| format!("camera {:?}", cam.id))?;
    let faces = load_faces(cfg, cam)?;
    let source = open_input(cam, input, &detector, opts)?;
    let live = matches!(source, Input::Live(_));
    let (fw, fh) = match &source {
        Input::File(f) => (f.info().width, f.info().height),
        Input::Live(_) => cam.size.unwrap_or((640, 480)),
    };
    let size = detector.size_for(cam.input_size);
    let session = detector
        .session_sized(size, fw as usize, fh as usize)
        .with_context(|| format!("camera {:?}", cam.id))?;
    let tap = opts.taps.as_ref().map(|t| {
        let (cw, ch) = vitrine_models::detector::content_size(size, fw as usize, fh as usize);
        t.attach(cam, (cw as f32, ch as f32), size as u32)
    });
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
    let reader = spawn_reader(&cam.id, source, &queue, &stop, &progress)?;
    let analysis = Analysis {
        id: cam.id.clone(),
        analyser: CameraAnalyser::new(cam, &cfg.models, session, faces)
            .with_expressions(load_expressions(cfg, cam)?),
        windower: Windower::new(opts.window_secs),
        opts: opts.clone(),
        p: progress.clone(),
        tx,
        queue,
        stop,
        live,
        arrivals: std::collections::VecDeque::with_capacity(ARRIVALS),
        tap,
        entrances: EntranceWatch::of(cfg, cam),
    };
    let mut analysis = analysis;
    analysis.update_bands(crate::clock::now_ms());
    let handle = std::thread::Builder::new()
        .name(format!("cam-{}", cam.id))
        .spawn(move || analysis.run(reader))?;
    Ok(Running {
        source_id: cam.id.clone(),
        progress,
        handle,
    })
}

/// Attention needs faces only where displays are configured.
fn load_faces(cfg: &Config, cam: &Camera) -> anyhow::Result<Option<FaceAnalyser>> {
    if cam.displays.is_empty() {
        return Ok(None);
    }
    let m = &cfg.models;
    let (f, why) = FaceAnalyser::load_in(&m.faces, &m.head_pose, &m.dir, analyser::precision(m))
        .with_context(|| format!("camera {:?}: attention to its displays", cam.id))?;
    tracing::info!(camera = %cam.id, model = %m.faces, "face models precision: {why}");
    Ok(Some(f))
}

/// Expressions are read only where a display asks for them (`expressions = true`).
fn load_expressions(cfg: &Config, cam: &Camera) -> anyhow::Result<Option<ExpressionReader>> {
    let Some(d) = cam.displays.iter().find(|d| d.expressions) else {
        return Ok(None);
    };
    let r = ExpressionReader::load(&cfg.models.dir).with_context(|| {
        format!(
            "camera {:?}: display {:?} has expressions = true and needs the model {:?}",
            cam.id,
            d.area.id,
            vitrine_models::expressions::MODEL
        )
    })?;
    tracing::info!(camera = %cam.id, display = %d.area.id, "expressions on: lookers' faces are read, counts only");
    Ok(Some(r))
}

/// A recording (`input`, or the configured file) is opened now, decoded at the size the
/// detector wants; a live camera is opened later, by its reader.
fn open_input(
    cam: &Camera,
    input: Option<&Path>,
    detector: &PeopleDetector,
    opts: &Options,
) -> anyhow::Result<Input> {
    let path: Option<PathBuf> = match (input, &cam.source) {
        (Some(p), _) => Some(p.to_path_buf()),
        (None, VideoSource::File(p)) => Some(p.clone()),
        (None, _) => None,
    };
    let Some(path) = path else {
        return Ok(Input::Live(live_camera(cam, opts)?));
    };
    let open = || {
        let size = analyser::decode_size(cam, detector, &path)?;
        VideoFile::open(&path, cam.fps, size, opts.pacing)
    };
    Ok(Input::File(
        open().with_context(|| format!("camera {:?}", cam.id))?,
    ))
}

/// The reader thread: frames into the bounded queue until the input ends or a stop.
fn spawn_reader(
    id: &str,
    source: Input,
    q: &Arc<BoundedQueue<vitrine_sensors::Frame>>,
    stop: &Arc<AtomicBool>,
    p: &Arc<SourceProgress>,
) -> std::io::Result<JoinHandle<Result<(), SourceError>>> {
    let (q, stop, p, id) = (q.clone(), stop.clone(), p.clone(), id.to_string());
    std::thread::Builder::new()
        .name(format!("read-{id}"))
        .spawn(move || match source {
            Input::File(f) => read_file(f, &q, &stop),
            Input::Live(open) => {
                live_reader(&id, open, &q, &stop, &p);
                Ok(())
            }
        })
}

fn read_file(
    mut source: VideoFile,
    q: &BoundedQueue<vitrine_sensors::Frame>,
    stop: &AtomicBool,
) -> Result<(), SourceError> {
    let result = loop {
        if stop.load(Ordering::Relaxed) {
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
}

/// The analysis thread of a camera: every frame through the frame step, windows closed on the
/// frames' time (and on the clock for a live camera, so an outage still closes windows).
struct Analysis {
    id: String,
    analyser: CameraAnalyser,
    windower: Windower,
    opts: Options,
    p: Arc<SourceProgress>,
    tx: SyncSender<Record>,
    queue: Arc<BoundedQueue<vitrine_sensors::Frame>>,
    stop: Arc<AtomicBool>,
    live: bool,
    /// The last frames' times and arrivals (`clock::mono_ms`): an alert's latency runs from the
    /// arrival of the frame that raised it.
    arrivals: std::collections::VecDeque<(u64, u64)>,
    /// What the setup view reads (the daemon only).
    tap: Option<Arc<super::tap::CameraTap>>,
    /// The store's occupancy wants this camera's news (`[occupancy]` configured).
    entrances: Option<EntranceWatch>,
}

/// What the store's occupancy is told by a camera: its entrance lines' running totals when
/// they change, and whether it sees anyone when that changes.
struct EntranceWatch {
    /// (index in the camera's lines, line id) of its entrances.
    lines: Vec<(usize, String)>,
    last: Vec<EntranceCount>,
    seeing: Option<bool>,
}

impl EntranceWatch {
    fn of(cfg: &Config, cam: &Camera) -> Option<EntranceWatch> {
        let occ = cfg.occupancy.as_ref()?;
        let lines: Vec<(usize, String)> = cam
            .lines
            .iter()
            .enumerate()
            .filter(|(_, l)| {
                occ.entrances
                    .iter()
                    .any(|e| e.camera == cam.id && e.line == l.id)
            })
            .map(|(i, l)| (i, l.id.clone()))
            .collect();
        Some(EntranceWatch {
            last: Vec::new(),
            lines,
            seeing: None,
        })
    }

    /// The news after a frame, if any.
    fn news(&mut self, signals: &CameraSignals) -> Option<(Vec<EntranceCount>, u32)> {
        let people: Vec<_> = signals.line_totals().collect();
        let groups: Vec<_> = signals.group_totals().collect();
        let now: Vec<EntranceCount> = self
            .lines
            .iter()
            .map(|(i, id)| EntranceCount {
                line: id.clone(),
                people: people.get(*i).copied().unwrap_or_default(),
                groups: groups.get(*i).copied().unwrap_or_default(),
            })
            .collect();
        let in_view = signals.people_now() as u32;
        let seeing = in_view > 0;
        if now == self.last && self.seeing == Some(seeing) {
            return None;
        }
        self.seeing = Some(seeing);
        self.last.clone_from(&now);
        Some((now, in_view))
    }
}

/// Frames whose arrival is remembered (an alert is raised at most a few frames after its
/// frame arrived: the frames waiting for a detection).
const ARRIVALS: usize = 64;

impl Analysis {
    fn run(mut self, reader: JoinHandle<Result<(), SourceError>>) -> anyhow::Result<()> {
        loop {
            match self.queue.pop_timeout(TICK) {
                Popped::Item(frame, dropped) => self.frame(frame, dropped)?,
                Popped::Closed => break,
                Popped::Timeout => self.tick()?,
            }
            if self.stop.load(Ordering::Relaxed) {
                self.queue.close();
            }
        }
        self.analyser.signals_mut().finish();
        if self.live {
            // The live timeline ends now, not at the last frame.
            self.close_until(self.opts.now_ms())?;
        }
        // The window in progress is published too (its coverage shows the part not seen).
        let current = self.windower.current().into_iter().collect();
        self.close(current)?;
        self.p.done.store(true, Ordering::Relaxed);
        join_reader(reader, self.live)
    }

    /// No frame within a tick (camera lost, or slower than the tick): a live camera's
    /// windows still close on time, and the analysis thread says it is alive.
    fn tick(&mut self) -> anyhow::Result<()> {
        if self.live {
            self.close_until(self.opts.now_ms())?;
            self.p.beat();
        }
        Ok(())
    }

    fn frame(&mut self, frame: vitrine_sensors::Frame, dropped: Vec<u64>) -> anyhow::Result<()> {
        for t in dropped {
            let t = self.opts.base_ms + t;
            self.close_until(t)?;
            self.analyser.signals_mut().frame_dropped(t);
            self.p.dropped.fetch_add(1, Ordering::Relaxed);
        }
        let t = self.opts.base_ms + frame.t_ms;
        if self.arrivals.len() >= ARRIVALS {
            self.arrivals.pop_front();
        }
        let waited = frame.arrived.elapsed().as_millis() as u64;
        self.arrivals
            .push_back((t, crate::clock::mono_ms().saturating_sub(waited)));
        self.close_until(t)?;
        let stepped = self.analyser.step(t, &frame)?;
        if let Some(tap) = &self.tap {
            tap.frame(&frame, &stepped.update, self.analyser.signals(), t);
        }
        drop(frame);
        self.send_alerts()?;
        self.send_entrances(t)?;
        match stepped.inference {
            Some(took) => self.p.inferred(took),
            None => self.p.skipped(stepped.step),
        }
        let people = self.analyser.signals().people_now() as u64;
        self.p.occupancy.store(people, Ordering::Relaxed);
        self.p
            .media_ms
            .store(t - self.opts.base_ms, Ordering::Relaxed);
        Ok(())
    }

    /// Close every window that ended before `t_ms`.
    fn close_until(&mut self, t_ms: u64) -> anyhow::Result<()> {
        let windows = self.windower.advance(t_ms);
        self.close(windows)
    }

    fn close(&mut self, windows: Vec<(u64, u64)>) -> anyhow::Result<()> {
        for (s, e) in windows {
            let signals = self.analyser.signals_mut();
            let body = Body::Camera(signals.take_window(s, e, self.opts.k_min));
            let totals = signals.window_totals().clone();
            hand_off(&self.tx, &self.p, &self.id, (s, e), (body, Some(totals)))?;
            self.update_bands(e);
        }
        Ok(())
    }

    /// The store's occupancy hears of this camera's entrances and people when they change.
    fn send_entrances(&mut self, t_ms: u64) -> anyhow::Result<()> {
        let Some(watch) = self.entrances.as_mut() else {
            return Ok(());
        };
        let Some((lines, people)) = watch.news(self.analyser.signals()) else {
            return Ok(());
        };
        let frame_mono_ms = self
            .arrivals
            .back()
            .map_or_else(crate::clock::mono_ms, |(_, m)| *m);
        self.tx
            .send(Record::Entrances(EntrancesOut {
                source_id: self.id.clone(),
                t_ms,
                lines,
                people,
                frame_mono_ms,
            }))
            .map_err(|_| anyhow::anyhow!("event consumer stopped"))
    }

    /// Alerts raised or cleared by the frames just placed go to the writer at once.
    fn send_alerts(&mut self) -> anyhow::Result<()> {
        let changes = self.analyser.signals_mut().take_alerts();
        if changes.is_empty() {
            return Ok(());
        }
        let rules: Vec<_> = self.analyser.signals().alert_rules().cloned().collect();
        for change in changes {
            let Some(rule) = rules.iter().find(|r| r.id == change.rule).cloned() else {
                continue;
            };
            let frame_mono_ms = self
                .arrivals
                .iter()
                .find(|(t, _)| *t == change.at_ms)
                .map_or_else(crate::clock::mono_ms, |(_, m)| *m);
            self.tx
                .send(Record::Alert(AlertOut {
                    source_id: self.id.clone(),
                    rule,
                    change,
                    frame_mono_ms,
                }))
                .map_err(|_| anyhow::anyhow!("event consumer stopped"))?;
        }
        Ok(())
    }

    /// Each alert rule's forecast for the hour of `now_ms`, in the rule's unit (crossings per
    /// minute, people inside); none for queue waits.
    fn update_bands(&mut self, now_ms: u64) {
        let k_min = self.opts.k_min;
        let Some((book, clock)) = &self.opts.forecast else {
            self.analyser.signals_mut().set_alert_bands(vec![], k_min);
            return;
        };
        let hour = clock.local_hour(now_ms);
        let book = book.lock().unwrap_or_else(|p| p.into_inner());
        let bands = self
            .analyser
            .signals()
            .alert_rules()
            .map(|r| match &r.on {
                AlertOn::LineRate(id) => book
                    .forecast(&self.id, id, Measure::Crossings, hour)
                    .map(|v| v / 60.0),
                AlertOn::Occupancy(id) => book
                    .forecast(&self.id, id, Measure::PersonSeconds, hour)
                    .map(|v| v / 3600.0),
                AlertOn::QueueWait(_) => None,
            })
            .collect();
        drop(book);
        self.analyser.signals_mut().set_alert_bands(bands, k_min);
    }
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
